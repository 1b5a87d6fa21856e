//! FRR (zebra + bgpd) in a namespace, with its own pathspace (`-N <namespace>`), so several
//! instances run side by side: config in `/etc/frr/<ns>/`, sockets, PID files and logs in
//! `/var/run/frr/<ns>/`, both owned by user `frr` (FRR drops privileges to it and refuses
//! otherwise). `vtysh -N <ns>` talks to it from any namespace through those sockets.

use super::netns::Netns;
use super::proc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";

/// A running zebra + bgpd. `Drop` stops both by PID, prints their logs if the test is
/// panicking (and copies them into the namespace's log directory), then removes
/// `/etc/frr/<ns>` and `/var/run/frr/<ns>`.
pub struct Frr {
    ns: String,
    etc_dir: PathBuf,
    run_dir: PathBuf,
    log_dir: PathBuf,
    zebra_pid: u32,
    bgpd_pid: u32,
}

impl Frr {
    /// Writes `config` as `/etc/frr/<ns>/frr.conf`, starts zebra, waits for its API socket,
    /// starts bgpd and waits until vtysh can reach it. Panics (with the logs) if either fails.
    pub fn start(ns: &Netns, config: &str) -> Frr {
        for bin in [ZEBRA, BGPD] {
            assert!(
                Path::new(bin).exists(),
                "{bin} not found: install the `frr` package"
            );
        }
        let name = ns.name().to_string();
        let etc_dir = PathBuf::from(format!("/etc/frr/{name}"));
        let run_dir = PathBuf::from(format!("/var/run/frr/{name}"));
        for d in [&etc_dir, &run_dir] {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        }
        let conf = etc_dir.join("frr.conf");
        std::fs::write(&conf, config).expect("write frr.conf");
        std::fs::write(
            etc_dir.join("vtysh.conf"),
            "service integrated-vtysh-config\n",
        )
        .expect("write vtysh.conf");
        for d in [&etc_dir, &run_dir] {
            proc::run_ok(Command::new("chown").args(["-R", "frr:frr"]).arg(d));
        }
        proc::run_ok(Command::new("chmod").arg("640").arg(&conf));

        // Build the guard first so that a failure below still cleans up.
        let mut frr = Frr {
            ns: name.clone(),
            etc_dir,
            run_dir: run_dir.clone(),
            log_dir: ns.log_dir().to_path_buf(),
            zebra_pid: 0,
            bgpd_pid: 0,
        };
        frr.zebra_pid = frr.start_daemon(ns, ZEBRA, "zebra", &run_dir.join("zserv.api"));
        frr.bgpd_pid = frr.start_daemon(ns, BGPD, "bgpd", &run_dir.join("bgpd.vty"));
        if !super::wait_until(Duration::from_secs(10), || {
            frr.try_vtysh("show bgp summary").is_ok()
        }) {
            panic!("bgpd in {name} does not answer vtysh\n{}", frr.logs());
        }
        frr
    }

    /// Starts one daemon with `-d` (it forks; `ip netns exec` returns when the parent exits),
    /// then waits for its PID file and for `ready` (a socket it creates when it is up).
    fn start_daemon(&self, ns: &Netns, bin: &str, daemon: &str, ready: &Path) -> u32 {
        let conf = self.etc_dir.join("frr.conf");
        let pidfile = self.run_dir.join(format!("{daemon}.pid"));
        let log = format!(
            "file:{}",
            self.run_dir.join(format!("{daemon}.log")).display()
        );
        let out = proc::run(&mut ns.cmd(&[
            bin,
            "-d",
            "-N",
            &self.ns,
            "-f",
            conf.to_str().expect("utf-8 path"),
            "-i",
            pidfile.to_str().expect("utf-8 path"),
            "--log",
            &log,
        ]));
        if !out.status.success() {
            panic!(
                "{daemon} in {} failed to start ({}):\n{}{}\n{}",
                self.ns,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
        }
        let mut pid = None;
        let up = super::wait_until(Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            pid.is_some() && ready.exists()
        });
        match pid {
            Some(pid) if up && proc::pid_alive(pid) => pid,
            _ => panic!("{daemon} in {} did not come up\n{}", self.ns, self.logs()),
        }
    }

    /// The namespace (and FRR pathspace) name.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// `vtysh -N <ns> -c <cmd>`, `Err(stdout+stderr)` unless it exits 0.
    pub fn try_vtysh(&self, cmd: &str) -> Result<String, String> {
        let out = proc::run(Command::new("vtysh").args(["-N", &self.ns, "-c", cmd]));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// `vtysh -N <ns> -c <cmd>`; panics with the output if vtysh fails.
    pub fn vtysh(&self, cmd: &str) -> String {
        self.try_vtysh(cmd)
            .unwrap_or_else(|e| panic!("vtysh -N {} -c {cmd:?} failed:\n{e}", self.ns))
    }

    /// `vtysh -c <cmd>` parsed as JSON (`cmd` should end in `json`); panics if it is not JSON.
    pub fn vtysh_json(&self, cmd: &str) -> Value {
        let text = self.vtysh(cmd);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("vtysh {cmd:?} did not return JSON ({e}):\n{text}"))
    }

    /// Runs config lines in `configure terminal`, e.g. `["router bgp 65001", "neighbor X shutdown"]`.
    pub fn configure(&self, lines: &[&str]) {
        let mut cmd = Command::new("vtysh");
        cmd.args(["-N", &self.ns, "-c", "configure terminal"]);
        for l in lines {
            cmd.args(["-c", l]);
        }
        proc::run_ok(&mut cmd);
    }

    /// FRR's `bgpState` for `peer` ("Established", "Active", ...), `None` if unknown.
    pub fn neighbor_state(&self, peer: &str) -> Option<String> {
        let text = self
            .try_vtysh(&format!("show bgp neighbors {peer} json"))
            .ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v.get(peer)?.get("bgpState")?.as_str().map(str::to_string)
    }

    /// Waits until the session with `peer` is Established; panics with the summary and logs
    /// after `timeout`. Returns how long it took.
    pub fn wait_established(&self, peer: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        if super::wait_until(timeout, || {
            self.neighbor_state(peer).as_deref() == Some("Established")
        }) {
            return start.elapsed();
        }
        panic!(
            "FRR in {}: no Established session with {peer} after {timeout:?}\n{}\n{}",
            self.ns,
            self.try_vtysh("show bgp summary").unwrap_or_else(|e| e),
            self.logs()
        );
    }

    /// `show bgp l2vpn evpn json`.
    pub fn evpn_rib_json(&self) -> Value {
        self.vtysh_json("show bgp l2vpn evpn json")
    }

    /// Every EVPN prefix in the BGP table as `(rd, prefix)`, e.g.
    /// `("198.19.1.2:42", "[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[198.18.1.2]")`.
    pub fn evpn_prefixes(&self) -> Vec<(String, String)> {
        let v = self.evpn_rib_json();
        let mut out = Vec::new();
        if let Some(map) = v.as_object() {
            for (rd, routes) in map {
                let Some(routes) = routes.as_object() else {
                    continue;
                };
                for key in routes.keys().filter(|k| k.starts_with('[')) {
                    out.push((rd.clone(), key.clone()));
                }
            }
        }
        out
    }

    /// zebra's and bgpd's log tails.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for d in ["zebra", "bgpd"] {
            let p = self.run_dir.join(format!("{d}.log"));
            s.push_str(&format!(
                "--- FRR {d} log ({})\n{}\n",
                p.display(),
                proc::tail(&p, 60)
            ));
        }
        s
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for (pid, comm) in [(self.bgpd_pid, "bgpd"), (self.zebra_pid, "zebra")] {
            // Only signal the PID if it still is that daemon (PIDs get reused).
            if pid != 0 && proc::pid_comm(pid).as_deref() == Some(comm) {
                proc::terminate(pid, proc::GRACE);
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
            for d in ["zebra", "bgpd"] {
                let _ = std::fs::copy(
                    self.run_dir.join(format!("{d}.log")),
                    self.log_dir.join(format!("frr-{d}.log")),
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.etc_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// A minimal FRR config: `router bgp <asn>` with router-id, short timers, one neighbor per
/// entry of `neighbors` as `(address, remote_as)`, activated in `l2vpn evpn` with
/// `advertise-all-vni`. Tests can write their own; this is the common case.
pub fn evpn_config(hostname: &str, asn: u32, router_id: &str, neighbors: &[(&str, u32)]) -> String {
    let mut c = format!(
        "frr defaults traditional\nhostname {hostname}\n!\nrouter bgp {asn}\n bgp router-id {router_id}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n"
    );
    for (addr, remote_as) in neighbors {
        c.push_str(&format!(
            " neighbor {addr} remote-as {remote_as}\n neighbor {addr} timers 3 9\n neighbor {addr} timers connect 1\n"
        ));
    }
    c.push_str(" !\n address-family l2vpn evpn\n");
    for (addr, _) in neighbors {
        c.push_str(&format!("  neighbor {addr} activate\n"));
    }
    c.push_str("  advertise-all-vni\n exit-address-family\nexit\n!\n");
    c
}
