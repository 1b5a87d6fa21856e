//! Migration: a MAC moves between two VTEPs, a third follows. Three hosts (namespaces
//! h0..h2, VNI `--vni`, the same devices as the kernel scenario plus a "VM" port `vm0`
//! on the bridge) and a route reflector (mrr), on one underlay segment (switch msw):
//! vxbgp hosts with a vxbgp reflector, or FRR hosts (zebra + bgpd) with an FRR bgpd
//! reflector.
//!
//! A move is what the bridge sees when a VM's MAC goes from one port to another: the
//! entry leaves h_old's bridge and takes over h_new's (`bridge fdb replace`) as a dynamic (learned-like, not
//! static: FRR would take a static one as sticky) entry on `vm0`, the same `bridge fdb`
//! commands for both daemons. Timed from h_new's own netlink notification of the local
//! entry (`bridge monitor fdb` in h_new) to the one on h2 that points the MAC at h_new's
//! VTEP (`bridge monitor fdb` in h2, read as it comes). The MAC moves h0 → h1 → h0 ...,
//! `--moves` times; median and worst per run.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use super::{since, Ctx, Metric, Sample, Spec, Unit};
use crate::netns::Netns;
use crate::reflector::{Peer, Reflector, Role, StartCfg};
use crate::sys::{self, Result, Usage};

pub const SPEC: Spec = Spec {
    name: "migration",
    title: "MAC migration (three VTEPs and a reflector)",
    about: "A MAC moves between host A and host B (removed from A's bridge, added on B's VM \
            port as a dynamic entry: what the bridge holds when a VM moves), M times; time \
            from B's own netlink notification of the local entry to host C's vxlan FDB \
            entry pointing the MAC at B's VTEP (both read from `bridge monitor fdb` as they \
            come). vxbgp hosts with a vxbgp reflector; FRR hosts (zebra + bgpd) with an FRR \
            reflector (`no dup-addr-detection`, which would freeze the MAC after 5 moves). \
            Median and worst move per run (the table: medians over the runs); CPU = all four \
            daemons' utime+stime over the moves, peak RSS summed over them.",
    param: "moves",
    role: "daemons",
    metrics: &[
        Metric {
            key: "median_s",
            header: "median move",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "worst_s",
            header: "worst move",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "cpu_s",
            header: "CPU",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "peak_rss_kib",
            header: "peak RSS",
            unit: Unit::Kib,
            ratio: true,
        },
    ],
    plots: &[],
};

const RR: Ipv4Addr = Ipv4Addr::new(198, 19, 4, 1);
/// The moving MAC and the port it is seen on.
const MAC: &str = "02:00:00:4d:00:01";
const VM_PORT: &str = "vm0";

fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 4, 11 + u8::try_from(i).unwrap_or(0))
}

/// The namespaces: `vxb<pid>m{sw,rr,h0,h1,h2}`; dropped hosts first, the switch last.
struct Topo {
    hosts: Vec<Netns>,
    rr: Netns,
    _sw: Netns,
}

impl Topo {
    async fn create(vni: u32) -> Result<Topo> {
        let pid = std::process::id();
        let sw = Netns::create(&format!("vxb{pid}msw"))?;
        let rr = Netns::create(&format!("vxb{pid}mrr"))?;
        let mut hosts = Vec::new();
        for i in 0..3 {
            hosts.push(Netns::create(&format!("vxb{pid}mh{i}"))?);
        }
        let swn = sw.name().to_string();
        sys::run(&["ip", "-n", &swn, "link", "add", "sw", "type", "bridge"]).await?;
        sys::run(&["ip", "-n", &swn, "link", "set", "sw", "up"]).await?;
        let mut plug = vec![(rr.name().to_string(), RR, "p0".to_string())];
        for (i, h) in hosts.iter().enumerate() {
            plug.push((h.name().to_string(), host_addr(i), format!("p{}", i + 1)));
        }
        for (ns, addr, port) in &plug {
            sys::run(&[
                "ip", "link", "add", port, "netns", &swn, "type", "veth", "peer", "name", "u0",
                "netns", ns,
            ])
            .await?;
            sys::run(&["ip", "-n", &swn, "link", "set", port, "master", "sw", "up"]).await?;
            let cmds = format!("addr add {addr}/24 dev u0\nlink set u0 up\n");
            sys::run_input(&["ip", "-n", ns, "-batch", "-"], Some(&cmds)).await?;
        }
        for (i, h) in hosts.iter().enumerate() {
            let ns = h.name();
            let cmds = format!(
                "link add br0 address 02:b0:00:00:01:0{i} type bridge\n\
                 link set br0 up\n\
                 link add vx0 type vxlan id {vni} local {} dstport 4789 nolearning\n\
                 link set vx0 master br0\n\
                 link set vx0 up\n\
                 link add {VM_PORT} type veth peer name vm0p\n\
                 link set {VM_PORT} master br0\n\
                 link set {VM_PORT} up\n\
                 link set vm0p up\n",
                host_addr(i)
            );
            sys::run_input(&["ip", "-n", ns, "-batch", "-"], Some(&cmds)).await?;
            sys::run(&[
                "bridge",
                "-n",
                ns,
                "link",
                "set",
                "dev",
                "vx0",
                "learning",
                "off",
                "neigh_suppress",
                "on",
            ])
            .await?;
        }
        Ok(Topo { hosts, rr, _sw: sw })
    }
}

/// `bridge monitor fdb` in one namespace, its lines timestamped as read. Stopped (by its
/// PID, through tokio's kill-on-drop) when dropped.
struct FdbMonitor {
    _child: tokio::process::Child,
    rx: mpsc::UnboundedReceiver<(Instant, String)>,
}

impl FdbMonitor {
    fn start(ns: &str) -> Result<FdbMonitor> {
        let mut child = tokio::process::Command::new("bridge")
            .args(["-n", ns, "monitor", "fdb"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("bridge monitor fdb in {ns}: {e}"))?;
        let out = child.stdout.take().ok_or("bridge monitor: no stdout")?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        Ok(FdbMonitor { _child: child, rx })
    }

    fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// The time of the first line (from now on) that `want` accepts.
    async fn wait(&mut self, want: impl Fn(&str) -> bool, timeout: Duration) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((t, l))) if want(&l) => return Ok(t),
                Ok(Some(_)) => {}
                Ok(None) => return Err("bridge monitor ended".into()),
                Err(_) => return Err(format!("not seen within {:.0} s", timeout.as_secs_f64())),
            }
        }
    }
}

/// A monitor line adding MAC on `dev` (with `dst` if given).
fn added(line: &str, dev: &str, dst: Option<Ipv4Addr>) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    let at = |k: &str| w.iter().position(|x| *x == k).and_then(|i| w.get(i + 1));
    w.first() == Some(&MAC)
        && at("dev") == Some(&dev)
        && match dst {
            Some(d) => at("dst").and_then(|a| a.parse::<Ipv4Addr>().ok()) == Some(d),
            None => at("dst").is_none(),
        }
}

pub async fn run(ctx: &Ctx, peer: Peer, moves: u32, dir: &Path) -> Sample {
    let mut s = Sample::default();
    if let Err(e) = measure(ctx, peer, moves, dir, &mut s).await {
        s.fail(e);
    }
    s
}

/// Waits until `ns`'s bridge has the MAC on vx0 and its vxlan entry points at `vtep`.
async fn follows(ns: &str, vtep: Ipv4Addr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = sys::run(&["bridge", "-n", ns, "fdb", "show"]).await?;
        let mine: Vec<&str> = out.lines().filter(|l| l.starts_with(MAC)).collect();
        let remote = mine.iter().any(|l| added(l, "vx0", Some(vtep)));
        let bridge = mine
            .iter()
            .any(|l| l.contains(" master ") && added(l, "vx0", None));
        if remote && bridge {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "after {:.0} s it holds {mine:?}",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn start(ctx: &Ctx, peer: Peer, ns: &Netns, role: Role, dir: &Path) -> Result<Reflector> {
    let cfg = StartCfg {
        ns,
        dir,
        vxbgp: &ctx.vxbgp,
        nofile: ctx.opts.daemon_nofile,
        role,
    };
    Reflector::start(peer, &cfg).await
}

fn mon(mons: &mut [FdbMonitor], i: usize) -> Result<&mut FdbMonitor> {
    mons.get_mut(i).ok_or("no such monitor".to_string())
}

fn usage(daemons: &[Reflector]) -> Result<Usage> {
    let pids: Vec<u32> = daemons.iter().flat_map(Reflector::pids).collect();
    sys::usage_sum(&pids)
}

async fn measure(ctx: &Ctx, peer: Peer, moves: u32, dir: &Path, s: &mut Sample) -> Result<()> {
    let topo = Topo::create(ctx.opts.vni).await?;
    let timeout = ctx.timeout();
    // Dropped before the namespaces (declared after them).
    let mut daemons = vec![
        start(
            ctx,
            peer,
            &topo.rr,
            Role::Reflector { router_id: RR },
            &dir.join("rr"),
        )
        .await?,
    ];
    for (i, h) in topo.hosts.iter().enumerate() {
        let role = Role::Vtep {
            router_id: host_addr(i),
            neighbor: Some(RR),
        };
        daemons.push(start(ctx, peer, h, role, &dir.join(format!("h{i}"))).await?);
    }
    if let Some(rr) = daemons.first_mut() {
        rr.wait_established(3, timeout).await?;
    }
    let mut mons = Vec::new();
    for h in &topo.hosts {
        mons.push(FdbMonitor::start(h.name())?);
    }
    let ns = |i: usize| topo.hosts.get(i).map(|h| h.name().to_string());
    let fdb = |i: usize, verb: &'static str| {
        let ns = ns(i);
        async move {
            let ns = ns.ok_or("no such host")?;
            let mut argv = vec![
                "bridge", "-n", &ns, "fdb", verb, MAC, "dev", VM_PORT, "master",
            ];
            // `replace`: on the new host the MAC is already in the bridge (the remote
            // entry on vx0); a learned MAC takes the entry over the same way.
            if verb == "replace" {
                argv.push("dynamic");
            }
            sys::run(&argv).await
        }
    };
    // The MAC starts on h0; everyone else learns it first.
    fdb(0, "replace").await?;
    for i in [1, 2] {
        let m = mons.get_mut(i).ok_or("no monitor")?;
        let deadline = Instant::now() + timeout;
        loop {
            let out =
                sys::run(&["bridge", "-n", &ns(i).unwrap_or_default(), "fdb", "show"]).await?;
            if out.lines().any(|l| added(l, "vx0", Some(host_addr(0)))) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("host {i} never learned {MAC} at host 0"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        m.drain();
    }
    tokio::time::sleep(Duration::from_millis(ctx.opts.settle_ms)).await;
    let before = usage(&daemons)?;
    let mut times = Vec::new();
    for k in 0..moves {
        let (old, new) = if k % 2 == 0 { (0, 1) } else { (1, 0) };
        for m in &mut mons {
            m.drain();
        }
        fdb(old, "del").await?;
        fdb(new, "replace").await?;
        let t0 = mon(&mut mons, new)?
            .wait(|l| added(l, VM_PORT, None), timeout)
            .await
            .map_err(|e| format!("move {}: host {new}'s local entry: {e}", k + 1))?;
        let t1 = mon(&mut mons, 2)?
            .wait(|l| added(l, "vx0", Some(host_addr(new))), timeout)
            .await
            .map_err(|e| format!("move {}: host 2 to host {new}: {e}", k + 1))?;
        // The old host follows too before the next move (no overlapping moves). Read
        // from a dump: its vxlan entry may already point there (one the daemon left in
        // place while the MAC was local), so no notification need come.
        follows(&ns(old).unwrap_or_default(), host_addr(new), timeout)
            .await
            .map_err(|e| format!("move {}: host {old} to host {new}: {e}", k + 1))?;
        let d = since(t1, t0);
        s.secs(&format!("move_{:02}_s", k + 1), d);
        times.push(d.as_secs_f64());
        for d in daemons.iter_mut() {
            d.check_alive()?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = usage(&daemons)?;
    s.set("cpu_s", after.cpu_s - before.cpu_s);
    s.set("peak_rss_kib", after.hwm_kib as f64);
    if let Some(m) = crate::report::median(times.clone()) {
        s.set("median_s", m);
    }
    if let Some(w) = times.iter().copied().reduce(f64::max) {
        s.set("worst_s", w);
    }
    drop(mons);
    drop(daemons);
    Ok(())
}
