//! The route reflectors under test, each started fresh in namespace RR at 198.19.0.1,
//! AS 65001, accepting iBGP sessions from 198.19.0.0/16 and reflecting L2VPN EVPN to all:
//!
//! - vxbgp: `vxbgp --asn 65001 --router-id 198.19.0.1 --route-reflector --listen-range
//!   198.19.0.0/16 --no-fib --socket <dir>/vxbgp.sock`;
//! - FRR: bgpd alone (`-Z`, no zebra: a reflector does no kernel work), with its own
//!   pathspace `-N <ns>` (config in `/etc/frr/<ns>/`, sockets in `/var/run/frr/<ns>/`, owned
//!   by user frr), a listen range into peer group C;
//! - GoBGP: `gobgpd` with a dynamic-neighbors prefix into a route-reflector-client peer group.
//!
//! Each answers "how many sessions are Established" in its own words (vxbgp's control
//! socket, vtysh, the gobgp CLI), so the bench checks the daemon's view before timing.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::netns::{Netns, LISTEN_RANGE, RR_ADDR};
use crate::routes::ASN;
use crate::sys::{self, Daemon, Result, Usage};

const BGPD: &str = "/usr/lib/frr/bgpd";
const ZEBRA: &str = "/usr/lib/frr/zebra";
/// gobgpd's gRPC API, on RR's loopback.
const GOBGP_API_PORT: u16 = 50051;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Peer {
    Vxbgp,
    Frr,
    Gobgp,
    /// Not a daemon: the kernel scenario's reference, the same entries written straight
    /// through `fib::floor` (measured whenever that scenario runs; not a `--peers` choice).
    #[value(skip)]
    Floor,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Peer::Vxbgp => "vxbgp",
            Peer::Frr => "frr",
            Peer::Gobgp => "gobgp",
            Peer::Floor => "floor",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Peer::Vxbgp => "vxbgp",
            Peer::Frr => "FRR",
            Peer::Gobgp => "GoBGP",
            Peer::Floor => "netlink floor",
        }
    }
}

/// What starting a reflector needs.
pub struct StartCfg<'a> {
    pub ns: &'a Netns,
    /// Where configs, sockets and logs of this run go.
    pub dir: &'a Path,
    pub vxbgp: &'a Path,
    /// RLIMIT_NOFILE for the daemon (`None`: inherit the bench's).
    pub nofile: Option<u64>,
    pub role: Role,
}

/// What the daemon is there for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A route reflector for every address of the listen range, without kernel access
    /// (FRR: bgpd alone, `-Z`).
    Reflector { router_id: Ipv4Addr },
    /// A VTEP that programs its kernel from the routes it gets (vxbgp as host agent; FRR as
    /// zebra + bgpd with `advertise-all-vni`), peering with `neighbor` or, without one,
    /// accepting sessions from the listen range (the bench's client connects to it).
    Vtep {
        router_id: Ipv4Addr,
        neighbor: Option<Ipv4Addr>,
    },
}

impl Role {
    fn router_id(self) -> Ipv4Addr {
        match self {
            Role::Reflector { router_id } | Role::Vtep { router_id, .. } => router_id,
        }
    }
}

enum Ctl {
    Vxbgp { bin: PathBuf, socket: PathBuf },
    Frr { pathspace: String },
    Gobgp { ns: String },
}

/// A running reflector. `Drop` stops it by PID and removes the directories it was given.
pub struct Reflector {
    pub peer: Peer,
    /// In start order (FRR VTEP: zebra, then bgpd); stopped in reverse.
    daemons: Vec<Daemon>,
    ctl: Ctl,
    remove: Vec<PathBuf>,
}

impl Drop for Reflector {
    fn drop(&mut self) {
        while let Some(d) = self.daemons.pop() {
            drop(d);
        }
        for d in &self.remove {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn s(v: &str) -> String {
    v.to_string()
}

impl Reflector {
    pub async fn start(peer: Peer, cfg: &StartCfg<'_>) -> Result<Reflector> {
        std::fs::create_dir_all(cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
        let rid = cfg.role.router_id().to_string();
        // (name, argv, file whose existence says it is up) of daemons started before the
        // main one: FRR's zebra.
        let mut before: Vec<(&str, Vec<String>, PathBuf)> = Vec::new();
        let (argv, ctl, remove) = match peer {
            Peer::Vxbgp => {
                let socket = cfg.dir.join("vxbgp.sock");
                let mut argv = vec![
                    cfg.vxbgp.display().to_string(),
                    s("--asn"),
                    ASN.to_string(),
                    s("--router-id"),
                    rid.clone(),
                ];
                match cfg.role {
                    Role::Reflector { .. } => argv.extend([
                        s("--route-reflector"),
                        s("--listen-range"),
                        s(LISTEN_RANGE),
                        s("--no-fib"),
                    ]),
                    Role::Vtep {
                        neighbor: Some(n), ..
                    } => argv.extend([s("--neighbor"), n.to_string()]),
                    Role::Vtep { neighbor: None, .. } => {
                        argv.extend([s("--listen-range"), s(LISTEN_RANGE)])
                    }
                }
                argv.extend([s("--socket"), socket.display().to_string()]);
                let ctl = Ctl::Vxbgp {
                    bin: cfg.vxbgp.to_path_buf(),
                    socket,
                };
                (argv, ctl, Vec::new())
            }
            Peer::Frr => {
                let name = cfg.ns.name().to_string();
                let etc = PathBuf::from(format!("/etc/frr/{name}"));
                let run = PathBuf::from(format!("/var/run/frr/{name}"));
                for d in [&etc, &run] {
                    let _ = std::fs::remove_dir_all(d);
                    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                }
                let conf = etc.join("frr.conf");
                std::fs::write(&conf, frr_config(cfg.role))
                    .and_then(|()| {
                        std::fs::write(etc.join("vtysh.conf"), "service integrated-vtysh-config\n")
                    })
                    .map_err(|e| format!("{}: {e}", conf.display()))?;
                for d in [&etc, &run] {
                    sys::run(&["chown", "-R", "frr:frr", &d.display().to_string()]).await?;
                }
                let frr_argv = |bin: &str, daemon: &str| {
                    vec![
                        s(bin),
                        s("-N"),
                        name.clone(),
                        s("-f"),
                        conf.display().to_string(),
                        s("-i"),
                        run.join(format!("{daemon}.pid")).display().to_string(),
                        s("--log"),
                        format!("file:{}", run.join(format!("{daemon}.log")).display()),
                    ]
                };
                let mut argv = frr_argv(BGPD, "bgpd");
                match cfg.role {
                    // A reflector does no kernel work: no zebra.
                    Role::Reflector { .. } => argv.push(s("-Z")),
                    // zebra runs in the foreground (no -d), so it is our child and its
                    // PID is the one we stop; bgpd waits for its API socket.
                    // `-s 90000000`: the netlink receive buffer Debian's /etc/frr/daemons
                    // gives zebra (without it zebra can overrun and exit while withdrawing).
                    Role::Vtep { .. } => {
                        let mut zebra = frr_argv(ZEBRA, "zebra");
                        zebra.extend([s("-s"), s("90000000")]);
                        before.push(("zebra", zebra, run.join("zserv.api")))
                    }
                }
                (argv, Ctl::Frr { pathspace: name }, vec![etc, run])
            }
            Peer::Floor => return Err("the netlink floor is not a daemon".into()),
            Peer::Gobgp => {
                let conf = cfg.dir.join("gobgpd.toml");
                std::fs::write(&conf, gobgp_config())
                    .map_err(|e| format!("{}: {e}", conf.display()))?;
                let argv = vec![
                    s("gobgpd"),
                    s("-f"),
                    conf.display().to_string(),
                    s("-t"),
                    s("toml"),
                    s("--api-hosts"),
                    format!("127.0.0.1:{GOBGP_API_PORT}"),
                    s("--pprof-disable"),
                    s("--log-plain"),
                    s("-l"),
                    s("warn"),
                ];
                (
                    argv,
                    Ctl::Gobgp {
                        ns: cfg.ns.name().to_string(),
                    },
                    Vec::new(),
                )
            }
        };
        let wrap = |argv: &[String]| {
            let mut argv = cfg.ns.exec_argv(argv);
            if let Some(n) = cfg.nofile {
                let mut wrapped = vec![s("prlimit"), format!("--nofile={n}:{n}")];
                wrapped.append(&mut argv);
                argv = wrapped;
            }
            argv
        };
        // The guard exists before anything starts, so a failure below stops what did.
        let mut rr = Reflector {
            peer,
            daemons: Vec::new(),
            ctl,
            remove,
        };
        for (name, argv, ready) in before {
            rr.daemons.push(Daemon::spawn(name, &wrap(&argv), cfg.dir)?);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !ready.exists() {
                rr.check_alive()?;
                if Instant::now() >= deadline {
                    return Err(format!("{name} is not up after 10 s ({})", ready.display()));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        rr.daemons
            .push(Daemon::spawn(peer.name(), &wrap(&argv), cfg.dir)?);
        rr.wait_ready().await?;
        Ok(rr)
    }

    /// Waits until the daemon answers its control interface (10 s).
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.check_alive()?;
            match self.established().await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "{} does not answer after 10 s: {e}\n{}",
                        self.peer.title(),
                        self.stderr_tail()
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.daemons.iter().map(Daemon::pid).collect()
    }

    /// RSS, peak RSS and CPU time of the reflector's process(es).
    pub fn usage(&self) -> Result<Usage> {
        sys::usage_sum(&self.pids())
    }

    pub fn check_alive(&mut self) -> Result<()> {
        if self.daemons.is_empty() {
            return Err("not running".into());
        }
        self.daemons.iter_mut().try_for_each(Daemon::check_alive)
    }

    fn stderr_tail(&self) -> String {
        self.daemons
            .iter()
            .map(|d| format!("end of {} stderr:\n{}", d.name(), d.stderr_tail(15)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many sessions the daemon itself reports as Established.
    pub async fn established(&self) -> Result<usize> {
        match &self.ctl {
            Ctl::Vxbgp { bin, socket } => {
                let out = sys::run(&[
                    &bin.display().to_string(),
                    "show",
                    "neighbors",
                    "--json",
                    "--socket",
                    &socket.display().to_string(),
                ])
                .await?;
                Ok(count_vxbgp(&parse(&out)?))
            }
            Ctl::Frr { pathspace } => {
                let out = sys::run(&[
                    "vtysh",
                    "-N",
                    pathspace,
                    "-c",
                    "show bgp l2vpn evpn summary json",
                ])
                .await?;
                Ok(count_frr(&parse(&out)?))
            }
            Ctl::Gobgp { ns } => {
                let out = sys::run(&[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "gobgp",
                    "-p",
                    &GOBGP_API_PORT.to_string(),
                    "neighbor",
                    "-j",
                ])
                .await?;
                Ok(count_gobgp(&parse(&out)?))
            }
        }
    }

    /// Waits until the daemon reports exactly `n` Established sessions.
    pub async fn wait_established(&mut self, n: usize, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let got = self.established().await;
            if got.as_ref().ok() == Some(&n) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} reports {} Established sessions after {:.0} s, expected {n}",
                    self.peer.title(),
                    got.map_or_else(|e| format!("? ({e})"), |g| g.to_string()),
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn parse(text: &str) -> Result<Value> {
    if text.trim().is_empty() || text.trim() == "null" {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {:.200}", text))
}

/// `vxbgp show neighbors --json`: `{"neighbors": [{"state": "Established", ...}]}`.
pub fn count_vxbgp(v: &Value) -> usize {
    v["neighbors"].as_array().map_or(0, |a| {
        a.iter().filter(|n| n["state"] == "Established").count()
    })
}

/// `show bgp l2vpn evpn summary json`: `{"peers": {"<addr>": {"state": "Established"}}}`,
/// possibly one level down under a family key.
pub fn count_frr(v: &Value) -> usize {
    let peers = |o: &Value| {
        o["peers"]
            .as_object()
            .map(|p| p.values().filter(|n| n["state"] == "Established").count())
    };
    peers(v).unwrap_or_else(|| {
        v.as_object()
            .map_or(0, |m| m.values().filter_map(peers).sum())
    })
}

/// `gobgp neighbor -j`: a list of `{"state": {"session_state": 6, ...}}` (6 = Established).
pub fn count_gobgp(v: &Value) -> usize {
    v.as_array().map_or(0, |a| {
        a.iter()
            .filter(|n| {
                let st = n.get("state").and_then(|s| s.get("session_state"));
                st.and_then(Value::as_i64) == Some(6)
                    || st.and_then(Value::as_str) == Some("established")
            })
            .count()
    })
}

/// FRR: iBGP route reflector for every address of the listen range (peer group C); as a
/// VTEP, `advertise-all-vni` with peer group C holding the one neighbour or the listen range.
pub fn frr_config(role: Role) -> String {
    let rid = role.router_id();
    let (peers, af) = match role {
        Role::Reflector { .. } => (
            format!(" bgp listen limit 5000\n bgp listen range {LISTEN_RANGE} peer-group C\n"),
            "  neighbor C route-reflector-client\n".to_string(),
        ),
        Role::Vtep { neighbor, .. } => (
            match neighbor {
                Some(n) => format!(" neighbor {n} peer-group C\n neighbor C timers connect 1\n"),
                None => format!(" bgp listen range {LISTEN_RANGE} peer-group C\n"),
            },
            // Duplicate-address detection would freeze a MAC after 5 moves in 180 s; the
            // migration scenario moves one 20 times on purpose (vxbgp has no such check).
            "  advertise-all-vni\n  no dup-addr-detection\n".to_string(),
        ),
    };
    format!(
        "frr defaults traditional\n\
         hostname vxbgp-bench\n\
         !\n\
         router bgp {ASN}\n \
         bgp router-id {rid}\n \
         no bgp default ipv4-unicast\n \
         neighbor C peer-group\n \
         neighbor C remote-as {ASN}\n\
         {peers} \
         !\n \
         address-family l2vpn evpn\n  \
         neighbor C activate\n\
         {af} \
         exit-address-family\n\
         exit\n\
         !\n"
    )
}

/// GoBGP: the same, as dynamic neighbours of a route-reflector-client peer group.
pub fn gobgp_config() -> String {
    format!(
        "[global.config]\n  as = {ASN}\n  router-id = \"{RR_ADDR}\"\n  port = 179\n\n\
         [[peer-groups]]\n  [peer-groups.config]\n    peer-group-name = \"C\"\n    peer-as = {ASN}\n\
         \x20 [peer-groups.route-reflector.config]\n    route-reflector-client = true\n    route-reflector-cluster-id = \"{RR_ADDR}\"\n\
         \x20 [[peer-groups.afi-safis]]\n    [peer-groups.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n\n\
         [[dynamic-neighbors]]\n  [dynamic-neighbors.config]\n    prefix = \"{LISTEN_RANGE}\"\n    peer-group = \"C\"\n"
    )
}

/// Versions of what is measured, for the report header.
pub async fn versions(vxbgp: &Path) -> Vec<(String, String)> {
    let first_line = |r: Result<String>| {
        r.map(|s| s.lines().next().unwrap_or("").trim().to_string())
            .unwrap_or_else(|e| format!("unavailable ({e})"))
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.display().to_string();
    let rev = first_line(sys::run(&["git", "-C", &repo, "rev-parse", "--short=12", "HEAD"]).await);
    let dirty = sys::run(&[
        "git",
        "-C",
        &repo,
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "bgp",
        "evpn",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .await
    .map(|s| !s.trim().is_empty())
    .unwrap_or(false);
    let built = std::fs::metadata(vxbgp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| crate::report::utc(d.as_secs()))
        .unwrap_or_default();
    vec![
        (
            s("vxbgp"),
            format!(
                "{} (git {rev}{}; {} built {built})",
                first_line(sys::run(&[&vxbgp.display().to_string(), "--version"]).await),
                if dirty {
                    ", with uncommitted changes"
                } else {
                    ""
                },
                vxbgp.display()
            ),
        ),
        (s("FRR"), first_line(sys::run(&[BGPD, "--version"]).await)),
        (
            s("GoBGP"),
            first_line(sys::run(&["gobgpd", "--version"]).await),
        ),
        (s("kernel"), first_line(sys::run(&["uname", "-r"]).await)),
        (
            s("CPUs"),
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn established_counts() {
        let v = json!({"neighbors": [{"state": "Established"}, {"state": "Active"}, {"state": "Established"}]});
        assert_eq!(count_vxbgp(&v), 2);
        let f = json!({"routerId": "198.19.0.1", "peers": {"198.19.1.0": {"state": "Established"}, "198.19.1.1": {"state": "Connect"}}});
        assert_eq!(count_frr(&f), 1);
        let nested = json!({"l2VpnEvpn": f});
        assert_eq!(count_frr(&nested), 1);
        assert_eq!(count_frr(&json!({})), 0);
        let g = json!([{"state": {"session_state": 6}}, {"state": {"session_state": 3}}]);
        assert_eq!(count_gobgp(&g), 1);
        assert_eq!(count_gobgp(&Value::Null), 0);
    }

    #[test]
    fn configs_name_the_listen_range() {
        let rr = frr_config(Role::Reflector { router_id: RR_ADDR });
        assert!(
            rr.contains("bgp listen range 198.19.0.0/16 peer-group C"),
            "{rr}"
        );
        assert!(
            rr.contains("\n  neighbor C route-reflector-client\n"),
            "{rr}"
        );
        let vtep = frr_config(Role::Vtep {
            router_id: RR_ADDR,
            neighbor: Some(Ipv4Addr::new(198, 19, 4, 1)),
        });
        assert!(
            vtep.contains("\n neighbor 198.19.4.1 peer-group C\n"),
            "{vtep}"
        );
        assert!(vtep.contains("\n  advertise-all-vni\n"), "{vtep}");
        assert!(!vtep.contains("listen range"), "{vtep}");
        assert!(gobgp_config().contains("prefix = \"198.19.0.0/16\""));
    }
}
