//! The batched writer against a real kernel, in a network namespace of its own (needs
//! root; under `CI=true` a non-root run fails instead of skipping): thousands of MAC/IP
//! entries go in through it with one deliberately failing request among them; a dump
//! (`bridge fdb`, `ip neigh`) shows every other entry, and the failure is reported for
//! exactly that request (op).

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use fib::model::{FibOp, FloodEntry, Mac, RemoteMac, SuppressNeigh};
use fib::netlink::{self, VniDevices};
use fib::writer::{Request, Writer};

const VNI: u32 = 42;

fn require_root() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        })
        == Some(0);
    if root {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("this test needs root (network namespaces) and CI=true: refusing to skip");
    }
    eprintln!("skipping: needs root (network namespaces)");
    false
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace with `br0` (`vxlan0`, VNI 42, as a port with learning off and
/// neigh_suppress on), deleted on drop, also when the test fails.
struct Ns {
    name: String,
}

impl Ns {
    fn new() -> Ns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fibw-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        sh(&format!("ip netns add {name}"));
        let ns = Ns { name };
        let n = &ns.name;
        sh(&format!(
            "ip -n {n} link set lo up && \
             ip -n {n} link add br0 type bridge && \
             ip -n {n} link add vxlan0 type vxlan id {VNI} local 198.19.1.1 dstport 4789 nolearning && \
             ip -n {n} link set vxlan0 master br0 && \
             bridge -n {n} link set dev vxlan0 learning off neigh_suppress on && \
             ip -n {n} link set br0 up && ip -n {n} link set vxlan0 up"
        ));
        ns
    }

    fn ifindex(&self, dev: &str) -> u32 {
        let out = sh(&format!("ip -n {} -o link show {dev}", self.name));
        out.split(':')
            .next()
            .and_then(|i| i.trim().parse().ok())
            .unwrap_or_else(|| panic!("no ifindex for {dev}: {out}"))
    }

    fn devices(&self) -> VniDevices {
        VniDevices {
            vxlan_ifindex: self.ifindex("vxlan0"),
            bridge_ifindex: self.ifindex("br0"),
        }
    }

    /// Runs `f` on a thread inside the namespace (sockets it opens live there).
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// `bridge fdb show dev vxlan0` entries we own: "MAC dst VTEP" and "MAC master".
    fn fdb(&self) -> BTreeSet<String> {
        sh(&format!("bridge -n {} fdb show dev vxlan0", self.name))
            .lines()
            .filter(|l| l.contains("extern_learn"))
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let mac = *w.first()?;
                if let Some(i) = w.iter().position(|x| *x == "dst") {
                    Some(format!("{mac} dst {}", w.get(i + 1)?))
                } else if w.contains(&"master") {
                    Some(format!("{mac} master"))
                } else {
                    None
                }
            })
            .collect()
    }

    /// `ip neigh show dev br0` entries we own: "IP MAC".
    fn neigh(&self) -> BTreeSet<String> {
        sh(&format!("ip -n {} neigh show dev br0", self.name))
            .lines()
            .filter(|l| l.contains("extern_learn"))
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                Some(format!("{} {}", w.first()?, w.get(2)?))
            })
            .collect()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([2, 0x42, b[0], b[1], b[2], b[3]])
}

fn vtep(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, 2, 10 + (i % 20) as u8))
}

fn overlay(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// `n` MAC/IP routes' worth of ops (a remote MAC and its suppression entry each)
/// and 20 flood entries.
fn install_ops(n: u32) -> Vec<FibOp> {
    let mut ops: Vec<FibOp> = (0..20)
        .map(|i| {
            FibOp::FloodAdd(FloodEntry {
                vni: VNI,
                vtep: vtep(i),
            })
        })
        .collect();
    for i in 0..n {
        let m = RemoteMac {
            vni: VNI,
            mac: mac(i),
            vtep: vtep(i),
        };
        ops.push(FibOp::MacSet(m));
        ops.push(FibOp::NeighSet(SuppressNeigh {
            vni: VNI,
            ip: overlay(i),
            mac: m.mac,
        }));
    }
    ops
}

/// What the dumps must show for `install_ops(n)`.
fn expected(n: u32) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut fdb: BTreeSet<String> = (0..20)
        .map(|i| format!("00:00:00:00:00:00 dst {}", vtep(i)))
        .collect();
    let mut neigh = BTreeSet::new();
    for i in 0..n {
        fdb.insert(format!("{} dst {}", mac(i), vtep(i)));
        fdb.insert(format!("{} master", mac(i)));
        neigh.insert(format!("{} {}", overlay(i), mac(i)));
    }
    (fdb, neigh)
}

#[test]
fn thousands_of_entries_with_one_failing_op_among_them() {
    if !require_root() {
        return;
    }
    const N: u32 = 2000;
    let ns = Ns::new();
    let dev = ns.devices();
    let mut ops = install_ops(N);
    // An IPv6 VTEP on an IPv4 vxlan device: the kernel refuses the remote-MAC entry
    // (EAFNOSUPPORT), in the middle of the batch.
    let bad = FibOp::MacSet(RemoteMac {
        vni: VNI,
        mac: mac(900_000),
        vtep: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    });
    ops.insert(1234, bad);
    let (report, empty, again) = ns.run(|| {
        let mut w = Writer::open().expect("netlink socket");
        let empty = netlink::apply(&mut w, &[], |_| Some(dev));
        let report = netlink::apply(&mut w, &ops, |_| Some(dev));
        // The same entries again: replace and append of what is there succeed.
        let again = netlink::apply(&mut w, &ops, |_| Some(dev));
        (report, empty, again)
    });
    assert_eq!(empty, netlink::ApplyReport::default());
    assert_eq!(
        report.failed.iter().map(|(op, _)| *op).collect::<Vec<_>>(),
        vec![bad],
        "exactly the bad op fails: {:?}",
        report.failed
    );
    assert_eq!(report.done, ops.len() - 1);
    assert_eq!(again.failed.len(), 1, "{:?}", again.failed);
    let (mut fdb, neigh) = expected(N);
    // The bad op's bridge-side entry is a request of its own, and it succeeded.
    fdb.insert(format!("{} master", mac(900_000)));
    assert_eq!(ns.fdb(), fdb, "FDB entries");
    assert_eq!(ns.neigh(), neigh, "suppression entries");

    // All of it removed; removing it again is no failure ("already gone").
    let dels: Vec<FibOp> = ops
        .iter()
        .map(|op| match *op {
            FibOp::FloodAdd(e) => FibOp::FloodDel(e),
            FibOp::MacSet(m) => FibOp::MacDel(m),
            FibOp::NeighSet(n) => FibOp::NeighDel(n),
            other => other,
        })
        .rev()
        .collect();
    let (first, second) = ns.run(|| {
        let mut w = Writer::open().expect("netlink socket");
        (
            netlink::apply(&mut w, &dels, |_| Some(dev)),
            netlink::apply(&mut w, &dels, |_| Some(dev)),
        )
    });
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(second.done, dels.len());
    assert!(ns.fdb().is_empty(), "left: {:?}", ns.fdb());
    assert!(ns.neigh().is_empty(), "left: {:?}", ns.neigh());
}

#[test]
fn a_request_on_a_missing_device_fails_alone() {
    if !require_root() {
        return;
    }
    const N: u32 = 1500;
    let ns = Ns::new();
    let dev = ns.devices();
    let ops = install_ops(N);
    let mut reqs: Vec<Request> = ops
        .iter()
        .flat_map(|op| netlink::requests(op, dev))
        .map(|(m, f)| Request::new(m, f))
        .collect();
    let bad_at = 2345;
    let missing = VniDevices {
        vxlan_ifindex: 999_999,
        bridge_ifindex: 999_999,
    };
    let extra = FibOp::MacSet(RemoteMac {
        vni: VNI,
        mac: mac(800_000),
        vtep: vtep(1),
    });
    let (m, f) = netlink::requests(&extra, missing).remove(0);
    reqs.insert(bad_at, Request::new(m, f));
    let results = ns.run(|| Writer::open().expect("netlink socket").send(&reqs));
    assert_eq!(results.len(), reqs.len());
    for (i, r) in results.iter().enumerate() {
        if i == bad_at {
            assert_eq!(*r, Err(nix::libc::ENODEV), "request {i}");
        } else {
            assert_eq!(*r, Ok(()), "request {i}");
        }
    }
    let (fdb, neigh) = expected(N);
    assert_eq!(ns.fdb(), fdb, "FDB entries");
    assert_eq!(ns.neigh(), neigh, "suppression entries");
}

#[test]
fn an_overflowing_event_socket_reports_an_overrun() {
    if !require_root() {
        return;
    }
    let ns = Ns::new();
    let dev = ns.devices();
    // Bridge entries without `extern_learn` (not echoes: the monitor passes them on),
    // thousands in one burst, into the smallest receive buffer the kernel allows.
    let reqs: Vec<Request> = (0..3000)
        .map(|i| {
            let (m, f) = netlink::requests(
                &FibOp::MacSet(RemoteMac {
                    vni: VNI,
                    mac: mac(i),
                    vtep: vtep(i),
                }),
                dev,
            )
            .remove(1);
            let mut m = m;
            if let netlink_packet_route::RouteNetlinkMessage::NewNeighbour(n) = &mut m {
                n.header.flags = netlink_packet_route::neighbour::NeighbourFlags::Controller;
            }
            Request::new(m, f)
        })
        .collect();
    let (overruns, events) = ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut m = fib::monitor::Monitor::open_with_rcvbuf(4, 0).expect("monitor");
            let failures = Writer::open().expect("writer").send(&reqs);
            assert!(failures.iter().all(|r| r.is_ok()));
            let mut events = 0;
            let mut overruns = 0;
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, m.next()).await {
                match e {
                    fib::monitor::Event::Overrun => {
                        overruns += m.take_overruns();
                        break;
                    }
                    fib::monitor::Event::Message(_) => events += 1,
                }
            }
            (overruns, events)
        })
    });
    assert!(
        overruns >= 1,
        "no overrun reported ({events} of 3000 events read)"
    );
}
