//! The kernel state the host agent programs, read back with iproute2 and compared to
//! exactly what the routes ask for (SPEC.md "Kernel state the FIB must produce",
//! "Ownership").
//!
//! Host A (under test): vxbgp with bridge `br0` and `vxlan0` (VNI 42, `local` = A's
//! underlay address). Host B: a second vxbgp with `--no-fib`, a "route feeder" peered
//! with A, on which routes are added and withdrawn with `vxbgp route add|del` and whose
//! next hops are made-up remote VTEPs (198.19.<s>.10, .11, ...; nothing is sent to
//! them). A's kernel is read with `bridge -j fdb show br br0` and
//! `ip -j neigh show dev br0`; entries marked `extern_learn` are vxbgp's ("ours") and
//! must be exactly the expected set, the all-zero (flood) entries exactly the expected
//! VTEPs, and entries vxbgp did not create must be left as they were.

mod support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const VNI: u32 = 42;
const WAIT: Duration = Duration::from_secs(15);
/// What vxbgp waits after a start before removing stale entries it owns
/// (`RECONCILE_AFTER` in src/daemon.rs), plus margin.
const RECONCILE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------
// The lab

/// Fields drop in order: daemons before the namespaces.
struct Lab {
    a: Vxbgp,
    b: Vxbgp,
    u: Underlay,
}

impl Lab {
    /// Host A (vxbgp under test, br0 + vxlan0) and host B (feeder, `--no-fib`),
    /// Established. `extra` is given to both daemons.
    fn new(extra: &[&str]) -> Lab {
        let u = Underlay::new(2);
        let ha = u.host(0);
        bridge_add(ha, "br0");
        vxlan_add(ha, "vxlan0", VNI, u.ip(0), "br0");
        let (ip_a, ip_b) = (u.ip(0).to_string(), u.ip(1).to_string());
        let mut args_a = vec!["--asn", "65001", "--neighbor", &ip_b, "--router-id", &ip_a];
        args_a.extend_from_slice(extra);
        let mut args_b = vec![
            "--asn",
            "65001",
            "--neighbor",
            &ip_a,
            "--router-id",
            &ip_b,
            "--no-fib",
        ];
        args_b.extend_from_slice(extra);
        let a = Vxbgp::start(ha, &args_a);
        let b = Vxbgp::start(u.host(1), &args_b);
        a.wait_established(&ip_b, WAIT);
        b.wait_established(&ip_a, WAIT);
        Lab { a, b, u }
    }

    fn ha(&self) -> &Netns {
        self.u.host(0)
    }

    /// A made-up remote VTEP in this test's underlay /24: 198.19.<s>.<n>.
    fn vtep(&self, n: u8) -> String {
        Ipv4Addr::new(198, 19, self.u.subnet(), n).to_string()
    }

    /// An overlay IPv4 address: 198.18.<s>.<n>.
    fn ip4(&self, n: u8) -> String {
        self.u.overlay_ip(n).to_string()
    }

    /// An overlay IPv6 address: fd00:18:<s>::<n> (the form `ip -j` prints).
    fn ip6(&self, n: u8) -> String {
        format!("fd00:18:{:x}::{n:x}", self.u.subnet())
    }

    /// A MAC of this test: 02:00:00:<s>:00:<n>.
    fn mac(&self, n: u8) -> String {
        format!("02:00:00:{:02x}:00:{n:02x}", self.u.subnet())
    }

    /// `vxbgp route add|del mac-ip` on the feeder.
    fn mac_ip(&self, op: &str, mac: &str, ip: Option<&str>, vtep: &str) {
        let mut args = vec![
            "route",
            op,
            "mac-ip",
            "--vni",
            "42",
            "--mac",
            mac,
            "--next-hop",
            vtep,
        ];
        if let Some(ip) = ip {
            args.extend_from_slice(&["--ip", ip]);
        }
        self.b.cli(&args);
    }

    /// `vxbgp route add|del multicast` on the feeder (a remote VTEP's type-3).
    fn multicast(&self, op: &str, vtep: &str) {
        self.b
            .cli(&["route", op, "multicast", "--vni", "42", "--next-hop", vtep]);
    }

    /// Waits until A's kernel holds exactly `want`, else fails showing the difference.
    fn wait_kernel(&self, want: &Expect, what: &str) {
        wait_kernel(self.ha(), &self.a, want, what);
    }
}

// ---------------------------------------------------------------------------------
// Reading the kernel

/// A's bridge FDB and bridge neighbours, one normalised line per entry:
/// `<port> <mac> [dst <ip>] [self] [master <br>] [extern_learn] [permanent]` and
/// `neigh <ip> lladdr <mac> [extern_learn] <STATE...>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Kernel {
    fdb: BTreeSet<String>,
    neigh: BTreeSet<String>,
    /// `dst` of every all-zero (flood) entry on vxlan0, whoever made it.
    flood: BTreeSet<String>,
}

fn json_lines(host: &impl RunOk, cmd: &str) -> Vec<Value> {
    let out = host.run_ok(cmd);
    if out.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("bad JSON from `{cmd}`: {e}\n{out}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_flag(e: &Value, flag: &str) -> bool {
    e["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

fn read_kernel(host: &impl RunOk) -> Kernel {
    let mut k = Kernel::default();
    for e in json_lines(host, "bridge -j fdb show br br0") {
        let port = e["ifname"].as_str().unwrap_or("?");
        if port == "br0" {
            continue; // the bridge's own multicast entries
        }
        let mac = e["mac"].as_str().unwrap_or("?");
        let mut s = format!("{port} {mac}");
        if let Some(dst) = e["dst"].as_str() {
            s += &format!(" dst {dst}");
            if mac == "00:00:00:00:00:00" && port == "vxlan0" {
                k.flood.insert(dst.to_string());
            }
        }
        if has_flag(&e, "self") {
            s += " self";
        }
        if let Some(m) = e["master"].as_str() {
            s += &format!(" master {m}");
        }
        if has_flag(&e, "extern_learn") {
            s += " extern_learn";
        }
        if e["state"] == "permanent" {
            s += " permanent";
        }
        k.fdb.insert(s);
    }
    for e in json_lines(host, "ip -j neigh show dev br0") {
        let mut s = format!(
            "neigh {} lladdr {}",
            e["dst"].as_str().unwrap_or("?"),
            e["lladdr"].as_str().unwrap_or("-")
        );
        if e.get("extern_learn").is_some() {
            s += " extern_learn";
        }
        for st in e["state"].as_array().into_iter().flatten() {
            s += &format!(" {}", st.as_str().unwrap_or("?"));
        }
        k.neigh.insert(s);
    }
    k
}

impl Kernel {
    /// Entries vxbgp owns (`extern_learn`), FDB and neighbours together.
    fn ours(&self) -> BTreeSet<String> {
        self.fdb
            .iter()
            .chain(&self.neigh)
            .filter(|s| s.contains(" extern_learn"))
            .cloned()
            .collect()
    }

    /// Everything else, except the all-zero entries and the vxlan port's own address.
    fn foreign(&self) -> BTreeSet<String> {
        self.fdb
            .iter()
            .chain(&self.neigh)
            .filter(|s| !s.contains(" extern_learn"))
            .filter(|s| !s.starts_with("vxlan0 00:00:00:00:00:00 "))
            .filter(|s| !(s.starts_with("vxlan0 ") && s.ends_with(" master br0 permanent")))
            .cloned()
            .collect()
    }
}

/// What the routes ask of A's kernel.
#[derive(Clone, Debug, Default)]
struct Expect {
    flood: BTreeSet<String>,
    /// MAC → VTEP.
    macs: Vec<(String, String)>,
    /// (IP, MAC).
    neighs: Vec<(String, String)>,
}

impl Expect {
    fn flood(mut self, vtep: &str) -> Self {
        self.flood.insert(vtep.to_string());
        self
    }
    fn mac(mut self, mac: &str, vtep: &str) -> Self {
        self.macs.push((mac.to_string(), vtep.to_string()));
        self
    }
    fn neigh(mut self, ip: &str, mac: &str) -> Self {
        self.neighs.push((ip.to_string(), mac.to_string()));
        self
    }

    /// The `extern_learn` entries, in [`read_kernel`]'s form. With `flood_owned`, the
    /// all-zero entries too (they lose `extern_learn` when someone else appends to the
    /// all-zero entry: the kernel keeps one flag set per MAC, not per destination).
    fn ours(&self, flood_owned: bool) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        if flood_owned {
            for v in &self.flood {
                s.insert(format!(
                    "vxlan0 00:00:00:00:00:00 dst {v} self extern_learn permanent"
                ));
            }
        }
        for (m, v) in &self.macs {
            s.insert(format!("vxlan0 {m} dst {v} self extern_learn"));
            s.insert(format!("vxlan0 {m} master br0 extern_learn"));
        }
        for (ip, m) in &self.neighs {
            s.insert(format!("neigh {ip} lladdr {m} extern_learn NOARP"));
        }
        s
    }

    /// Whether `k` is exactly this (flood entries: their destinations, and with
    /// `flood_owned` also their flags).
    fn matches(&self, k: &Kernel, flood_owned: bool) -> bool {
        let ours: BTreeSet<String> = k
            .ours()
            .into_iter()
            .filter(|s| flood_owned || !s.starts_with("vxlan0 00:00:00:00:00:00 "))
            .collect();
        ours == self.ours(flood_owned) && k.flood == self.flood
    }

    /// Whether every entry of this is in `k` (others may be there too).
    fn present_in(&self, k: &Kernel) -> bool {
        self.ours(false).is_subset(&k.ours()) && self.flood.is_subset(&k.flood)
    }
}

fn diff(want: &BTreeSet<String>, got: &BTreeSet<String>) -> String {
    let missing: Vec<_> = want.difference(got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    format!("missing {missing:#?}\nextra {extra:#?}")
}

fn wait_kernel_with(host: &Netns, vx: &Vxbgp, want: &Expect, flood_owned: bool, what: &str) {
    let mut k = Kernel::default();
    let ok = wait_until(WAIT, || {
        k = read_kernel(host);
        want.matches(&k, flood_owned)
    });
    assert!(
        ok,
        "{what}: A's kernel is not what the routes ask for\n{}\nflood: want {:?} got {:?}\n\
         full kernel: {k:#?}\nshow fib: {:#}\n{}",
        diff(&want.ours(flood_owned), &k.ours()),
        want.flood,
        k.flood,
        vx.json(&["show", "fib"]),
        vx.logs()
    );
}

fn wait_kernel(host: &Netns, vx: &Vxbgp, want: &Expect, what: &str) {
    wait_kernel_with(host, vx, want, true, what);
}

/// `show fib --json` for VNI 42 says the same as `want`.
fn assert_show_fib(vx: &Vxbgp, want: &Expect) {
    let v = vx.json(&["show", "fib", "--vni", "42"]);
    let vni = v["vnis"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["vni"] == VNI))
        .unwrap_or_else(|| panic!("show fib has no VNI 42: {v:#}"))
        .clone();
    assert_eq!(vni["device"], "vxlan0", "{vni:#}");
    assert_eq!(vni["bridge"], "br0", "{vni:#}");
    assert_eq!(vni["failures"], 0, "the kernel refused operations: {vni:#}");
    let flood: BTreeSet<String> = vni["flood"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect();
    assert_eq!(flood, want.flood, "{vni:#}");
    let macs: BTreeSet<(String, String)> = vni["remote_macs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["mac"].as_str().unwrap().into(),
                m["vtep"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(macs, want.macs.iter().cloned().collect(), "{vni:#}");
    let neighs: BTreeSet<(String, String)> = vni["suppress"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["ip"].as_str().unwrap().into(),
                m["mac"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(neighs, want.neighs.iter().cloned().collect(), "{vni:#}");
}

/// The feeder's view of a route: the path learnt from `peer`, if any.
fn path_from(vx: &Vxbgp, prefix: &str, peer: &str) -> Option<Value> {
    vx.route(prefix)?["paths"]
        .as_array()?
        .iter()
        .find(|p| p["peer"] == peer)
        .cloned()
}

fn imet_prefix(vtep: &str) -> String {
    format!("[3]:[0]:[32]:[{vtep}]")
}

// ---------------------------------------------------------------------------------
// Tests

/// Type-3 routes of two VTEPs and type-2 routes (MAC only, MAC + IPv4, MAC + IPv6)
/// become exactly their flood, MAC (`self` and `master`) and neighbour entries;
/// withdrawals remove exactly theirs.
#[test]
fn routes_become_exactly_these_kernel_entries() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let (v1, v2) = (lab.vtep(10), lab.vtep(11));
    let (m1, m2, m3) = (lab.mac(1), lab.mac(2), lab.mac(3));
    let (m1_ip4, m1_ip6, m3_ip4) = (lab.ip4(11), lab.ip6(0x11), lab.ip4(13));

    // Nothing yet: no entry of ours.
    lab.wait_kernel(&Expect::default(), "before any route");

    lab.multicast("add", &v1);
    lab.multicast("add", &v2);
    lab.mac_ip("add", &m1, Some(&m1_ip4), &v1);
    lab.mac_ip("add", &m1, Some(&m1_ip6), &v1);
    lab.mac_ip("add", &m2, None, &v2);
    lab.mac_ip("add", &m3, Some(&m3_ip4), &v2);
    let all = Expect::default()
        .flood(&v1)
        .flood(&v2)
        .mac(&m1, &v1)
        .mac(&m2, &v2)
        .mac(&m3, &v2)
        .neigh(&m1_ip4, &m1)
        .neigh(&m1_ip6, &m1)
        .neigh(&m3_ip4, &m3);
    lab.wait_kernel(&all, "after adding 2 type-3 and 4 type-2 routes");
    assert_show_fib(&lab.a, &all);
    let before = read_kernel(lab.ha());
    assert_eq!(
        before.foreign(),
        BTreeSet::new(),
        "entries without extern_learn appeared"
    );

    // Withdrawals: exactly those entries go.
    lab.multicast("del", &v2);
    lab.mac_ip("del", &m1, Some(&m1_ip6), &v1);
    lab.mac_ip("del", &m3, Some(&m3_ip4), &v2); // m3's only route: MAC and neighbour go
    let rest = Expect::default()
        .flood(&v1)
        .mac(&m1, &v1)
        .mac(&m2, &v2)
        .neigh(&m1_ip4, &m1);
    lab.wait_kernel(&rest, "after withdrawing one type-3 and two type-2 routes");
    assert_show_fib(&lab.a, &rest);
    // A MAC whose MAC/IP route goes keeps its entry while another route wants it.
    lab.mac_ip("del", &m1, Some(&m1_ip4), &v1);
    lab.mac_ip("add", &m1, None, &v1);
    let rest = Expect::default().flood(&v1).mac(&m1, &v1).mac(&m2, &v2);
    lab.wait_kernel(&rest, "after replacing m1's MAC/IP route by a MAC-only one");

    // Everything withdrawn: nothing of ours is left.
    lab.multicast("del", &v1);
    lab.mac_ip("del", &m1, None, &v1);
    lab.mac_ip("del", &m2, None, &v2);
    lab.wait_kernel(&Expect::default(), "after withdrawing every route");
    assert_eq!(read_kernel(lab.ha()).foreign(), BTreeSet::new());
}

/// A MAC re-advertised with another next hop: its `self` entry's dst changes in place
/// (never two, never none), the bridge entry and the neighbour stay throughout.
#[test]
fn next_hop_change_replaces_in_place() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let (v1, v2) = (lab.vtep(10), lab.vtep(11));
    let (m1, m2) = (lab.mac(1), lab.mac(2));
    let ip1 = lab.ip4(11);
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    lab.mac_ip("add", &m2, None, &v1);
    let first = Expect::default()
        .flood(&v1)
        .mac(&m1, &v1)
        .mac(&m2, &v1)
        .neigh(&ip1, &m1);
    lab.wait_kernel(&first, "before the next-hop change");

    // The same routes again with another next hop (an implicit replace on the feeder).
    lab.mac_ip("add", &m1, Some(&ip1), &v2);
    lab.mac_ip("add", &m2, None, &v2);
    let second = Expect::default()
        .flood(&v1)
        .mac(&m1, &v2)
        .mac(&m2, &v2)
        .neigh(&ip1, &m1);
    // While it changes, every sample has exactly one `self` entry per MAC (old or new
    // VTEP, never both, never none), and the bridge entries and the neighbour stay.
    let deadline = Instant::now() + WAIT;
    let mut samples = 0;
    loop {
        let k = read_kernel(lab.ha());
        samples += 1;
        for m in [&m1, &m2] {
            let selfs: Vec<&String> = k
                .fdb
                .iter()
                .filter(|s| s.starts_with(&format!("vxlan0 {m} dst ")))
                .collect();
            assert_eq!(selfs.len(), 1, "sample {samples}: {m}: {selfs:?}\n{k:#?}");
            assert!(
                k.fdb
                    .contains(&format!("vxlan0 {m} master br0 extern_learn")),
                "sample {samples}: the bridge entry of {m} went away: {k:#?}"
            );
        }
        assert!(
            k.neigh
                .contains(&format!("neigh {ip1} lladdr {m1} extern_learn NOARP")),
            "sample {samples}: the neighbour entry went away: {k:#?}"
        );
        if second.matches(&k, true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "next hop change not programmed: {}\n{}",
            diff(&second.ours(true), &k.ours()),
            lab.a.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_show_fib(&lab.a, &second);

    // And back: the entry follows again.
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    lab.wait_kernel(
        &Expect::default()
            .flood(&v1)
            .mac(&m1, &v1)
            .mac(&m2, &v2)
            .neigh(&ip1, &m1),
        "after moving m1 back",
    );
}

/// The feeder killed, stopped with Cease, or cut off the underlay (hold timer): every
/// entry learnt from it goes.
#[test]
fn peer_loss_removes_its_entries() {
    if !require_root() {
        return;
    }
    // A short hold time so a peer that vanishes is noticed quickly.
    let mut lab = Lab::new(&["--hold-time", "9"]);
    let (v1, v2) = (lab.vtep(10), lab.vtep(11));
    let (m1, m2) = (lab.mac(1), lab.mac(2));
    let ip1 = lab.ip4(11);
    let feed = |lab: &Lab| {
        lab.multicast("add", &v1);
        lab.multicast("add", &v2);
        lab.mac_ip("add", &m1, Some(&ip1), &v1);
        lab.mac_ip("add", &m2, None, &v2);
        lab.wait_kernel(&all(&v1, &v2, &m1, &m2, &ip1), "routes from the feeder");
    };
    fn all(v1: &str, v2: &str, m1: &str, m2: &str, ip1: &str) -> Expect {
        Expect::default()
            .flood(v1)
            .flood(v2)
            .mac(m1, v1)
            .mac(m2, v2)
            .neigh(ip1, m1)
    }
    let (ip_a, ip_b) = (lab.u.ip(0).to_string(), lab.u.ip(1).to_string());
    let reconnect = |lab: &mut Lab| {
        let hb = lab.u.host(1);
        lab.b.restart(hb);
        lab.a.wait_established(&ip_b, WAIT);
        lab.b.wait_established(&ip_a, WAIT);
    };

    // 1. The feeder is killed (kill -9): its kernel closes the TCP connection, A's
    //    session goes down and the feeder's entries go, well within the hold time.
    feed(&lab);
    let t = Instant::now();
    lab.b.stop(true);
    lab.wait_kernel(&Expect::default(), "after the feeder was killed");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_ne!(lab.a.neighbor_state(&ip_b).as_deref(), Some("Established"));

    // 2. It comes back and stops cleanly (Cease): its entries go at once.
    reconnect(&mut lab);
    feed(&lab);
    let t = Instant::now();
    lab.b.stop(false);
    lab.wait_kernel(&Expect::default(), "after the feeder sent Cease");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );

    // 3. It comes back and then vanishes from the underlay (its switch port goes
    //    down: no FIN, no NOTIFICATION): the entries stay until A's hold timer (9 s)
    //    expires, then go.
    reconnect(&mut lab);
    feed(&lab);
    lab.u.switch().run_ok("ip link set p1 down");
    let t = Instant::now();
    let entries = all(&v1, &v2, &m1, &m2, &ip1);
    let mut first_change = None;
    while t.elapsed() < Duration::from_secs(9 + 5) {
        if !entries.matches(&read_kernel(lab.ha()), true) {
            first_change = Some(t.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let first_change = first_change.unwrap_or_else(|| {
        panic!(
            "entries of an unreachable peer still there {:?} later\n{}",
            t.elapsed(),
            lab.a.logs()
        )
    });
    lab.wait_kernel(&Expect::default(), "after the hold timer expired");
    let gone_after = t.elapsed();
    // Whatever the phase of the keepalives, the peer was silent for most of a hold
    // time before anything changed.
    assert!(
        first_change >= Duration::from_secs(5),
        "entries changed after {first_change:?}, before the hold timer could expire"
    );
    eprintln!("entries of the unreachable feeder gone after {gone_after:?}");
    // Whatever the phase of the keepalives, the peer was silent for most of a hold time.
    assert!(
        gone_after >= Duration::from_secs(5),
        "entries went after {gone_after:?}, before the hold timer could expire"
    );
    let n = lab.a.neighbor(&ip_b).expect("neighbour");
    assert_ne!(n["state"], "Established", "{n:#}");
}

/// `show vnis --json` → the VNI 42 entry, if any.
fn vni42(vx: &Vxbgp) -> Option<Value> {
    vx.json(&["show", "vnis"])["vnis"]
        .as_array()?
        .iter()
        .find(|v| v["vni"] == VNI)
        .cloned()
}

/// vxlan0 down/up and deleted/re-created: `show vnis` follows, A's type-3 is withdrawn
/// meanwhile, nothing of ours stays behind and everything is programmed again after.
#[test]
fn vxlan_device_recreated_is_reprogrammed() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let ha = lab.ha();
    // A second port keeps br0's carrier up while vxlan0 is gone, and a fixed bridge
    // address keeps it from changing with the ports, so the kernel does not flush the
    // bridge's neighbours by itself: what goes, vxbgp removes.
    ha.run_ok(&format!("ip link set br0 address {}", lab.mac(0xb0)));
    ha.run_ok("ip link add d0 type veth peer name d1 && ip link set d1 up && ip link set d0 master br0 up");
    let (v1, m1, m2, ip1) = (lab.vtep(10), lab.mac(1), lab.mac(2), lab.ip4(11));
    let ip6 = lab.ip6(0x11);
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    lab.mac_ip("add", &m1, Some(&ip6), &v1);
    lab.mac_ip("add", &m2, None, &v1);
    let all = Expect::default()
        .flood(&v1)
        .mac(&m1, &v1)
        .mac(&m2, &v1)
        .neigh(&ip1, &m1)
        .neigh(&ip6, &m1);
    lab.wait_kernel(&all, "before deleting vxlan0");
    let a_ip = lab.u.ip(0).to_string();
    let our_imet = imet_prefix(&a_ip);
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &our_imet, &a_ip).is_some()),
        "the feeder lacks A's type-3 {our_imet}: {:?}",
        lab.b.prefixes()
    );

    // Down and up: the VNI is followed (up=false) and its type-3 withdrawn meanwhile.
    ha.run_ok("ip link set vxlan0 down");
    assert!(
        wait_until(WAIT, || vni42(&lab.a).is_some_and(|v| v["up"] == false)),
        "show vnis does not say vxlan0 is down: {:?}",
        vni42(&lab.a)
    );
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &our_imet, &a_ip).is_none()),
        "A's type-3 not withdrawn while vxlan0 is down"
    );
    ha.run_ok("ip link set vxlan0 up");
    assert!(
        wait_until(WAIT, || vni42(&lab.a).is_some_and(|v| v["up"] == true)),
        "show vnis does not say vxlan0 is up again: {:?}",
        vni42(&lab.a)
    );
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &our_imet, &a_ip).is_some()),
        "A's type-3 not back after vxlan0 came up"
    );
    lab.wait_kernel(&all, "after vxlan0 went down and up");

    // Deleted: the VNI goes, A's type-3 is withdrawn, nothing of ours stays behind
    // (the FDB went with the device; the bridge's suppression entries must go too).
    ha.run_ok("ip link del vxlan0");
    assert!(
        wait_until(WAIT, || vni42(&lab.a).is_none()),
        "show vnis still lists VNI 42: {:#}",
        lab.a.json(&["show", "vnis"])
    );
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &our_imet, &a_ip).is_none()),
        "A's type-3 still on the feeder after vxlan0 was deleted: {:?}",
        lab.b.route(&our_imet)
    );
    let fib = lab.a.json(&["show", "fib", "--vni", "42"]);
    assert_eq!(fib["vnis"][0]["device"], Value::Null, "{fib:#}");
    lab.wait_kernel(&Expect::default(), "while vxlan0 does not exist");

    // Re-created the same way: everything is programmed again.
    vxlan_add(ha, "vxlan0", VNI, lab.u.ip(0), "br0");
    assert!(
        wait_until(WAIT, || vni42(&lab.a)
            .is_some_and(|v| v["device"] == "vxlan0" && v["up"] == true)),
        "show vnis does not list the new vxlan0: {:#}",
        lab.a.json(&["show", "vnis"])
    );
    lab.wait_kernel(&all, "after vxlan0 was re-created");
    assert_show_fib(&lab.a, &all);
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &our_imet, &a_ip).is_some()),
        "A's type-3 not back on the feeder after vxlan0 was re-created"
    );
    assert_eq!(vni42(&lab.a).unwrap()["problems"], serde_json::json!([]));
}

/// kill -9 and restart: the entries stay in place throughout, the stale ones vxbgp owns
/// go at reconcile, entries it did not create (flood destination, static MAC,
/// permanent neighbour) are left alone and not advertised.
#[test]
fn kill_9_restart_keeps_the_data_plane_and_removes_only_stale_owned_entries() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new(&[]);
    let (v1, v2) = (lab.vtep(10), lab.vtep(11));
    let (m1, m2, m3) = (lab.mac(1), lab.mac(2), lab.mac(3));
    let (ip1, ip3) = (lab.ip4(11), lab.ip4(13));
    lab.multicast("add", &v1);
    lab.multicast("add", &v2);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    lab.mac_ip("add", &m2, None, &v2);
    lab.mac_ip("add", &m3, Some(&ip3), &v2);
    let all = Expect::default()
        .flood(&v1)
        .flood(&v2)
        .mac(&m1, &v1)
        .mac(&m2, &v2)
        .mac(&m3, &v2)
        .neigh(&ip1, &m1)
        .neigh(&ip3, &m3);
    lab.wait_kernel(&all, "before the kill");

    // Entries vxbgp did not create: a static remote MAC and a permanent neighbour.
    let ha = lab.u.host(0);
    let (fmac, fvtep, fip) = (lab.mac(0xf1), lab.vtep(251), lab.ip4(250));
    ha.run_ok(&format!(
        "bridge fdb add {fmac} dev vxlan0 dst {fvtep} self permanent"
    ));
    ha.run_ok(&format!(
        "ip neigh add {fip} lladdr {fmac} dev br0 nud permanent"
    ));
    let foreign = read_kernel(ha).foreign();
    assert_eq!(
        foreign,
        BTreeSet::from([
            format!("vxlan0 {fmac} dst {fvtep} self permanent"),
            format!("neigh {fip} lladdr {fmac} PERMANENT"),
        ])
    );

    // kill -9: the data plane stays as it was.
    lab.a.stop(true);
    let k = read_kernel(ha);
    assert!(
        all.matches(&k, true),
        "entries changed when vxbgp was killed: {}",
        diff(&all.ours(true), &k.ours())
    );
    // Meanwhile one type-3 and one type-2 route are withdrawn: their entries are stale.
    lab.multicast("del", &v2);
    lab.mac_ip("del", &m3, Some(&ip3), &v2);
    let still = Expect::default()
        .flood(&v1)
        .mac(&m1, &v1)
        .mac(&m2, &v2)
        .neigh(&ip1, &m1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        all.matches(&read_kernel(ha), true),
        "kernel changed with vxbgp dead"
    );

    // Restart, sampling the kernel all along: the entries still advertised never go.
    let a_name = ha.name().to_string();
    let sampler = std::thread::spawn({
        let still = still.clone();
        move || {
            let ns = netns_handle(&a_name);
            let end = Instant::now() + Duration::from_secs(6);
            let mut n = 0;
            while Instant::now() < end {
                let k = read_kernel(&ns);
                n += 1;
                if !still.present_in(&k) {
                    return Err(format!(
                        "sample {n}: {}",
                        diff(&still.ours(true), &k.ours())
                    ));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Ok(n)
        }
    });
    let restarted = Instant::now();
    lab.a.restart(ha);
    let samples = sampler.join().expect("sampler panicked");
    let samples = samples.unwrap_or_else(|e| {
        panic!(
            "an entry of a route still advertised went away after the restart: {e}\n{}",
            lab.a.logs()
        )
    });
    eprintln!("{samples} samples in the 6 s after the restart, every entry present");
    lab.a.wait_established(&lab.u.ip(1).to_string(), WAIT);

    // After reconcile: the stale entries it owned are gone, the foreign ones untouched.
    let until_reconcile = RECONCILE.saturating_sub(restarted.elapsed());
    std::thread::sleep(until_reconcile);
    wait_kernel_with(ha, &lab.a, &still, true, "after reconcile");
    assert_eq!(
        read_kernel(ha).foreign(),
        foreign,
        "foreign entries changed"
    );
    assert_show_fib(&lab.a, &still);
    // A static neighbour for a MAC that is not on a local port is not ours to
    // advertise: the feeder has no route for it from A.
    let bogus: Vec<Value> = lab
        .b
        .routes()
        .into_iter()
        .filter(|r| r["mac"] == fmac.as_str())
        .collect();
    assert!(
        bogus.is_empty(),
        "A advertised the foreign neighbour {fip} ({fmac}) as local: {bogus:#?}"
    );

    // The all-zero entry is one kernel entry with one flag set for all its
    // destinations: a destination appended by someone else (no extern_learn) clears the
    // flag, and must survive the next restart however the flag looks.
    let fflood = lab.vtep(250);
    ha.run_ok(&format!(
        "bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst {fflood}"
    ));
    lab.a.stop(true);
    lab.a.restart(ha);
    lab.a.wait_established(&lab.u.ip(1).to_string(), WAIT);
    std::thread::sleep(RECONCILE);
    let want = still.clone().flood(&fflood);
    wait_kernel_with(ha, &lab.a, &want, false, "after a second restart");
    assert_eq!(
        read_kernel(ha).foreign(),
        foreign,
        "foreign entries changed"
    );
}

/// A [`Netns`]-like handle for a namespace owned elsewhere (the sampler thread reads
/// A's kernel while the test thread restarts vxbgp).
fn netns_handle(name: &str) -> ForeignNs {
    ForeignNs(name.to_string())
}

struct ForeignNs(String);

trait RunOk {
    fn run_ok(&self, cmd: &str) -> String;
}

impl RunOk for Netns {
    fn run_ok(&self, cmd: &str) -> String {
        Netns::run_ok(self, cmd)
    }
}

impl RunOk for ForeignNs {
    fn run_ok(&self, cmd: &str) -> String {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.0, "sh", "-c", cmd])
            .output()
            .expect("ip netns exec");
        assert!(out.status.success(), "`{cmd}` failed: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `show vnis --json` → the problems of `vni` (None if the VNI is not listed).
fn problems(vx: &Vxbgp, vni: u32) -> Option<Vec<String>> {
    let v = vx.json(&["show", "vnis"]);
    let e = v["vnis"]
        .as_array()?
        .iter()
        .find(|x| x["vni"] == vni)?
        .clone();
    Some(
        e["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(String::from))
            .collect(),
    )
}

fn any_says(problems: &[String], words: &[&str]) -> bool {
    problems.iter().any(|p| words.iter().all(|w| p.contains(w)))
}

/// The bridge-port flags of `dev`: (learning, neigh_suppress).
fn port_flags(host: &Netns, dev: &str) -> (Option<bool>, Option<bool>) {
    let v = json_lines(host, &format!("bridge -d -j link show dev {dev}"));
    let e = v.first().cloned().unwrap_or_default();
    (e["learning"].as_bool(), e["neigh_suppress"].as_bool())
}

/// A vxlan device made a port of a new bridge `br`, up, with the port flags as the
/// kernel sets them for a new port (learning on, neigh_suppress off).
fn raw_vxlan(host: &Netns, dev: &str, br: &str, params: &str) {
    bridge_add(host, br);
    host.run_ok(&format!(
        "ip link add {dev} type vxlan {params} dstport 4789 && ip link set {dev} master {br} up"
    ));
}

/// Devices the overlay cannot use are reported (show vnis and the log) with what to
/// change; `--fix-ports` sets the bridge ports right, also later and for new devices.
#[test]
fn unusable_devices_get_clear_warnings_and_fix_ports_fixes_them() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(1);
    let h = u.host(0);
    let a = u.ip(0).to_string();
    // vxlan0: learns from data packets, its port has learning on and neigh_suppress off.
    raw_vxlan(h, "vxlan0", "br0", &format!("id 42 local {a}"));
    // vxlan1: a multicast group.
    raw_vxlan(
        h,
        "vxlan1",
        "br1",
        &format!("id 43 local {a} group 239.1.1.43 dev u0 nolearning"),
    );
    // vxlan2: no local address.
    raw_vxlan(h, "vxlan2", "br2", "id 44 nolearning");
    for dev in ["vxlan1", "vxlan2"] {
        h.run_ok(&format!(
            "bridge link set dev {dev} learning off neigh_suppress on"
        ));
    }
    assert_eq!(port_flags(h, "vxlan0"), (Some(true), Some(false)));

    let vx = Vxbgp::start(h, &["--asn", "65001", "--router-id", &a]);
    let p42 = problems(&vx, 42).expect("VNI 42 not listed");
    assert!(any_says(&p42, &["vxlan0", "nolearning"]), "{p42:#?}");
    assert!(any_says(&p42, &["vxlan0", "learning off"]), "{p42:#?}");
    assert!(any_says(&p42, &["vxlan0", "neigh_suppress on"]), "{p42:#?}");
    assert!(any_says(&p42, &["--fix-ports"]), "{p42:#?}");
    assert_eq!(p42.len(), 3, "{p42:#?}");
    let p43 = problems(&vx, 43).expect("VNI 43 not listed");
    assert!(
        any_says(&p43, &["vxlan1", "group", "239.1.1.43"]),
        "{p43:#?}"
    );
    assert_eq!(p43.len(), 1, "{p43:#?}");
    let p44 = problems(&vx, 44).expect("VNI 44 not listed");
    assert!(any_says(&p44, &["vxlan2", "local"]), "{p44:#?}");
    assert_eq!(p44.len(), 1, "{p44:#?}");
    // Without --fix-ports the ports are left alone.
    assert_eq!(port_flags(h, "vxlan0"), (Some(true), Some(false)));

    // A device that appears while vxbgp runs is found and warned about too.
    raw_vxlan(h, "vxlan3", "br3", &format!("id 45 local {a} nolearning"));
    let mut p45 = Vec::new();
    assert!(
        wait_until(WAIT, || {
            p45 = problems(&vx, 45).unwrap_or_default();
            p45.len() == 2
        }),
        "VNI 45 (added at run time): {p45:#?}\n{}",
        vx.json(&["show", "vnis"])
    );
    assert!(any_says(&p45, &["vxlan3", "learning off"]), "{p45:#?}");
    assert!(any_says(&p45, &["vxlan3", "neigh_suppress on"]), "{p45:#?}");
    // And a port fixed by hand while it runs stops being reported.
    h.run_ok("bridge link set dev vxlan3 learning off neigh_suppress on");
    assert!(
        wait_until(WAIT, || problems(&vx, 45).is_some_and(|p| p.is_empty())),
        "VNI 45 still has problems after the port was fixed: {:?}",
        problems(&vx, 45)
    );

    // Every problem is in the log as a warning, in the same words.
    let log = std::fs::read_to_string(h.log_dir().join("vxbgp1.stderr")).unwrap();
    for p in p42.iter().chain(&p43).chain(&p44).chain(&p45) {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(p.as_str())),
            "no warning {p:?} in the log:\n{log}"
        );
    }
    drop(vx);

    // With --fix-ports: vxbgp sets learning off, neigh_suppress on itself, at start and
    // for ports that appear or change later.
    h.run_ok("bridge link set dev vxlan3 learning on neigh_suppress off");
    let vx = Vxbgp::start(h, &["--asn", "65001", "--router-id", &a, "--fix-ports"]);
    for dev in ["vxlan0", "vxlan3"] {
        assert!(
            wait_until(WAIT, || port_flags(h, dev) == (Some(false), Some(true))),
            "--fix-ports left {dev} at {:?}\n{}",
            port_flags(h, dev),
            vx.logs()
        );
    }
    assert!(
        wait_until(WAIT, || problems(&vx, 42)
            .is_some_and(|p| p.len() == 1 && any_says(&p, &["nolearning"]))),
        "VNI 42 after --fix-ports: {:?}",
        problems(&vx, 42)
    );
    h.run_ok("bridge link set dev vxlan0 learning on");
    assert!(
        wait_until(WAIT, || port_flags(h, "vxlan0")
            == (Some(false), Some(true))),
        "a port set back to learning on was not fixed again: {:?}",
        port_flags(h, "vxlan0")
    );
    raw_vxlan(h, "vxlan4", "br4", &format!("id 46 local {a} nolearning"));
    assert!(
        wait_until(WAIT, || port_flags(h, "vxlan4")
            == (Some(false), Some(true))),
        "a port that appeared at run time was not fixed: {:?}",
        port_flags(h, "vxlan4")
    );
    assert!(
        wait_until(WAIT, || problems(&vx, 46).is_some_and(|p| p.is_empty())),
        "VNI 46: {:?}",
        problems(&vx, 46)
    );
}

/// A's VNI and a local VM become type-3 and type-2 routes on the feeder; they go when
/// the VM's port goes.
#[test]
fn local_macs_and_vni_become_routes() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let a = lab.u.ip(0).to_string();
    let (mac, ip) = (lab.mac(0x21), lab.ip4(21));
    let vm = vm_add(lab.ha(), "br0", "vm0", &format!("{ip}/24"), Some(&mac));

    // A's type-3: next hop A, PMSI ingress replication to A, VNI 42.
    let imet = imet_prefix(&a);
    let mut p = None;
    assert!(
        wait_until(WAIT, || {
            p = path_from(&lab.b, &imet, &a);
            p.is_some()
        }),
        "the feeder lacks A's type-3 {imet}: {:#?}",
        lab.b.routes()
    );
    let p = p.unwrap();
    let r = lab.b.route(&imet).unwrap();
    assert_eq!(r["vni"], VNI, "{r:#}");
    assert_eq!(p["next_hop"], a.as_str(), "{p:#}");
    assert_eq!(p["pmsi"]["endpoint"], a.as_str(), "{p:#}");
    assert_eq!(p["pmsi"]["vni"], VNI, "{p:#}");
    assert_eq!(
        p["pmsi"]["tunnel_type_name"], "ingress-replication",
        "{p:#}"
    );
    assert_eq!(p["encapsulation"], "vxlan", "{p:#}");
    assert_eq!(p["route_targets"], serde_json::json!(["65001:42"]), "{p:#}");

    // The VM's MAC, learnt from the bridge.
    let mac_prefix = format!("[2]:[0]:[48]:[{mac}]");
    let mut p = None;
    assert!(
        wait_until(WAIT, || {
            p = path_from(&lab.b, &mac_prefix, &a);
            p.is_some()
        }),
        "the feeder lacks the VM's MAC route {mac_prefix}: {:?}\n{}",
        lab.b.prefixes(),
        lab.a.logs()
    );
    let p = p.unwrap();
    assert_eq!(p["next_hop"], a.as_str(), "{p:#}");
    assert_eq!(p["labels"], serde_json::json!([VNI]), "{p:#}");
    assert_eq!(lab.b.route(&mac_prefix).unwrap()["vni"], VNI);

    // The VM announces its address (gratuitous ARP): the MAC/IP route follows.
    let _ = vm.exec(&["arping", "-U", "-c", "2", "-w", "2", "-I", "eth0", &ip]);
    let macip_prefix = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
    assert!(
        wait_until(WAIT, || path_from(&lab.b, &macip_prefix, &a)
            .is_some_and(|p| p["next_hop"] == a.as_str())),
        "the feeder lacks the VM's MAC/IP route {macip_prefix}: {:?}\n{}",
        lab.b.prefixes(),
        lab.a.logs()
    );
    let vnis = vni42(&lab.a).unwrap();
    assert!(vnis["local_macs"].as_u64() >= Some(1), "{vnis:#}");
    assert!(vnis["local_ips"].as_u64() >= Some(1), "{vnis:#}");
    // Local entries are the kernel's, none of them ours.
    lab.wait_kernel(&Expect::default(), "with only a local VM");

    // The VM's port goes: both type-2 routes are withdrawn, the type-3 stays.
    lab.ha().run_ok("ip link del vm0");
    assert!(
        wait_until(WAIT, || {
            let ps = lab.b.prefixes();
            !ps.contains(&mac_prefix) && !ps.contains(&macip_prefix)
        }),
        "the VM's routes stayed after its port was deleted: {:?}",
        lab.b.prefixes()
    );
    assert!(
        path_from(&lab.b, &imet, &a).is_some(),
        "A's type-3 went too"
    );
    drop(vm);
}

/// A clean stop (SIGTERM) closes the sessions with Cease but leaves the kernel as it
/// is: the data plane keeps forwarding until the next start reconciles.
#[test]
fn sigterm_leaves_the_kernel_entries_in_place() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new(&[]);
    let v1 = lab.vtep(10);
    let (m1, ip1) = (lab.mac(1), lab.ip4(11));
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    let all = Expect::default().flood(&v1).mac(&m1, &v1).neigh(&ip1, &m1);
    lab.wait_kernel(&all, "before the stop");
    lab.a.stop(false);
    // Give a wrongly ordered shutdown time to show: withdrawals would be programmed
    // within milliseconds.
    std::thread::sleep(Duration::from_secs(1));
    let k = read_kernel(lab.u.host(0));
    assert!(
        all.matches(&k, true),
        "SIGTERM removed kernel entries: {}",
        diff(&all.ours(true), &k.ours())
    );
}

/// The kernel flushes a bridge's neighbour table when the bridge's MAC changes (a port
/// joins or leaves a bridge without a fixed MAC) or it goes down, and an operator may
/// delete an entry: vxbgp puts back the suppression entries routes still ask for.
#[test]
fn entries_the_kernel_flushes_are_put_back() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let v1 = lab.vtep(10);
    let (m1, ip1, ip6) = (lab.mac(1), lab.ip4(11), lab.ip6(11));
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    lab.mac_ip("add", &m1, Some(&ip6), &v1);
    let all = Expect::default()
        .flood(&v1)
        .mac(&m1, &v1)
        .neigh(&ip1, &m1)
        .neigh(&ip6, &m1);
    lab.wait_kernel(&all, "before the flush");
    let ha = lab.u.host(0);
    ha.run_ok("ip link set br0 address 02:00:00:00:0b:01");
    lab.wait_kernel(&all, "after the bridge's MAC changed");
    ha.run_ok("ip link set br0 down && ip link set br0 up");
    lab.wait_kernel(&all, "after the bridge went down and up");
    // An operator deleting one (reported FAILED by `ip`, then gone in state FAILED,
    // which looks like our own deletions).
    ha.run_ok(&format!(
        "ip neigh del {ip1} dev br0 && ip -6 neigh del {ip6} dev br0"
    ));
    lab.wait_kernel(&all, "after `ip neigh del`");
}

/// A local MAC that ages out and comes back brings its snooped address back too,
/// without the VM having to ARP again.
#[test]
fn a_relearnt_mac_brings_back_its_address() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let a = lab.u.ip(0).to_string();
    let (mac, ip) = (lab.mac(0x31), lab.ip4(31));
    let vm = vm_add(lab.ha(), "br0", "vm0", &format!("{ip}/24"), Some(&mac));
    let _ = vm.exec(&["arping", "-U", "-c", "2", "-w", "2", "-I", "eth0", &ip]);
    let mac_prefix = format!("[2]:[0]:[48]:[{mac}]");
    let macip_prefix = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
    let both = |want: bool| {
        wait_until(WAIT, || {
            path_from(&lab.b, &mac_prefix, &a).is_some() == want
                && path_from(&lab.b, &macip_prefix, &a).is_some() == want
        })
    };
    assert!(both(true), "routes missing: {:?}", lab.b.prefixes());
    // The bridge forgets the MAC (as when it ages out): both routes go.
    lab.ha()
        .run_ok(&format!("bridge fdb del {mac} dev vm0 master"));
    assert!(both(false), "routes not withdrawn: {:?}", lab.b.prefixes());
    // The VM sends a frame that is no ARP (a broadcast ping): the bridge relearns the
    // MAC, and the MAC/IP route comes back with it.
    let bcast = format!("{}.255", ip.rsplit_once('.').unwrap().0);
    let _ = vm.exec(&["ping", "-b", "-c", "1", "-W", "1", &bcast]);
    assert!(
        both(true),
        "routes not back: {:?}\n{}",
        lab.b.prefixes(),
        lab.a.logs()
    );
}

/// Thousands of routes at once (the feeder's config file holds 3000 MAC routes, 200 of
/// them with an address, over 30 VTEPs): all of them end up in A's kernel, and go again
/// when the feeder goes. Programming is pipelined, so this takes seconds, not a round trip per route.
#[test]
fn thousands_of_routes_are_programmed_and_removed() {
    if !require_root() {
        return;
    }
    const MACS: u32 = 3000;
    const VTEPS: u32 = 30;
    let u = Underlay::new(2);
    let ha = u.host(0);
    bridge_add(ha, "br0");
    vxlan_add(ha, "vxlan0", VNI, u.ip(0), "br0");
    let (ip_a, ip_b, s) = (u.ip(0).to_string(), u.ip(1).to_string(), u.subnet());
    let mut cfg = format!(
        "asn = 65001\nrouter-id = \"{ip_b}\"\nno-fib = true\n[[neighbor]]\naddress = \"{ip_a}\"\n"
    );
    for v in 0..VTEPS {
        cfg.push_str(&format!(
            "[[route]]\ntype = \"multicast\"\nvni = 42\nnext-hop = \"198.19.{s}.{}\"\n",
            100 + v
        ));
    }
    for i in 0..MACS {
        // The first 200 MACs also carry an address (a suppression entry each).
        let ip = if i < 200 {
            format!("ip = \"198.18.{s}.{}\"\n", 1 + i)
        } else {
            String::new()
        };
        cfg.push_str(&format!(
            "[[route]]\ntype = \"mac-ip\"\nvni = 42\nmac = \"02:01:{s:02x}:{:02x}:{:02x}:{:02x}\"\n\
             {ip}next-hop = \"198.19.{s}.{}\"\n",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff,
            100 + i % VTEPS
        ));
    }
    let path = u.host(1).log_dir().join("feeder.toml");
    std::fs::write(&path, cfg).unwrap();
    let a = Vxbgp::start(
        ha,
        &["--asn", "65001", "--neighbor", &ip_b, "--router-id", &ip_a],
    );
    let mut b = Vxbgp::start(u.host(1), &["--config", path.to_str().unwrap()]);
    a.wait_established(&ip_b, WAIT);
    let t0 = Instant::now();
    let counts = || {
        let k = read_kernel(ha);
        let macs = k
            .fdb
            .iter()
            .filter(|l| l.contains(" dst ") && !l.contains(" 00:00:00:00:00:00 "))
            .count();
        let flood = k
            .fdb
            .iter()
            .filter(|l| l.contains(" 00:00:00:00:00:00 "))
            .count();
        let masters = k
            .fdb
            .iter()
            .filter(|l| l.contains("master br0") && l.contains("extern_learn"))
            .count();
        let neighs = k
            .neigh
            .iter()
            .filter(|l| l.contains("extern_learn"))
            .count();
        (macs, flood, masters, neighs)
    };
    let full = (MACS as usize, VTEPS as usize, MACS as usize, 200);
    assert!(
        wait_until(Duration::from_secs(60), || counts() == full),
        "not all entries programmed: (remote MACs, flood entries, bridge entries, suppression entries) = {:?}, want {full:?}\n{}",
        counts(),
        a.logs()
    );
    eprintln!(
        "{MACS} MACs over {VTEPS} VTEPs programmed in {:?}",
        t0.elapsed()
    );
    let fib = a.json(&["show", "fib", "--vni", "42"]);
    assert_eq!(
        fib["vnis"][0]["failures"], 0,
        "the kernel refused operations"
    );
    assert_eq!(
        fib["vnis"][0]["remote_macs"].as_array().map(Vec::len),
        Some(MACS as usize)
    );
    // The feeder goes (Cease): everything it gave goes from the kernel.
    b.stop(false);
    assert!(
        wait_until(Duration::from_secs(60), || counts() == (0, 0, 0, 0)),
        "entries left after the feeder went: {:?}",
        counts()
    );
}

/// Duplicate address detection (FRR's defaults: 5 moves in 180 s). A MAC flaps
/// between a port of A's bridge (`bridge fdb replace`, as when a VM moves in) and a
/// remote VTEP that advertises it with ever higher sequences: on the fifth move A
/// freezes it where it was (remote), says so in `show duplicates`, `show fib` and
/// `show routes` (tables and JSON), no longer advertises it, and after
/// `vxbgp clear duplicates` learns and advertises it again above the remote sequence.
#[test]
fn a_flapping_mac_is_frozen_then_cleared() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let a = lab.u.ip(0).to_string();
    let (m, vtep) = (lab.mac(7), lab.vtep(20));
    let _vm = vm_add(lab.ha(), "br0", "vm0", &format!("{}/24", lab.ip4(7)), None);
    let prefix = format!("[2]:[0]:[48]:[{m}]");
    let remote = |seq: u32| {
        lab.b.cli(&[
            "route",
            "add",
            "mac-ip",
            "--vni",
            "42",
            "--mac",
            &m,
            "--next-hop",
            &vtep,
            "--mobility-seq",
            &seq.to_string(),
        ]);
    };
    let local = || {
        lab.ha()
            .run_ok(&format!("bridge fdb replace {m} dev vm0 master dynamic"));
    };
    // A's advertisement of the MAC as the feeder sees it: its sequence.
    let a_seq =
        || path_from(&lab.b, &prefix, &a).map(|p| p["mac_mobility"]["seq"].as_u64().unwrap_or(0));
    let wait_a = |want: Option<u64>, what: &str| {
        assert!(
            wait_until(WAIT, || a_seq() == want),
            "{what}: A advertises {:?}, expected {want:?}\n{}",
            a_seq(),
            lab.a.logs()
        );
    };

    remote(0);
    lab.wait_kernel(&Expect::default().mac(&m, &vtep), "the remote MAC");
    local(); // move 1: in, advertised above the remote's 0
    wait_a(Some(1), "move 1");
    remote(2); // move 2: away
    wait_a(None, "move 2");
    local(); // move 3
    wait_a(Some(3), "move 3");
    remote(4); // move 4
    wait_a(None, "move 4");
    local(); // move 5: frozen where it was, remote; not advertised
    let frozen = wait_until(WAIT, || {
        lab.a.json(&["show", "duplicates"])["duplicates"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["mac"] == m.as_str()))
    });
    assert!(frozen, "not frozen after 5 moves:\n{}", lab.a.logs());
    let d = lab.a.json(&["show", "duplicates"])["duplicates"][0].clone();
    assert_eq!(d["vni"], 42, "{d:#}");
    assert_eq!(d["moves"], 5, "{d:#}");
    assert_eq!(d["frozen_as"], "remote", "{d:#}");
    let thaws = d["thaws_in_secs"].as_u64().unwrap_or(0);
    assert!((1790..=1800).contains(&thaws), "{d:#}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(a_seq(), None, "a frozen MAC was advertised");
    // Shown in every view.
    let table = lab.a.cli(&["show", "duplicates"]);
    assert!(table.contains(&m) && table.contains("remote"), "{table}");
    let fib = lab.a.json(&["show", "fib", "--vni", "42"]);
    assert_eq!(
        fib["vnis"][0]["duplicates"][0]["mac"],
        m.as_str(),
        "{fib:#}"
    );
    assert!(lab
        .a
        .cli(&["show", "fib"])
        .contains("duplicate MACs, frozen"));
    let r = lab.a.route(&prefix).expect("the remote's route");
    assert_eq!(r["duplicate"], "frozen", "{r:#}");
    assert!(lab.a.cli(&["show", "routes"]).contains("DUPLICATE:frozen"));
    // Frozen: the remote moving on changes nothing here.
    remote(6);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(a_seq(), None);

    // Cleared: the MAC on A's port is learned again, above the remote's 6.
    let out = lab
        .a
        .json(&["clear", "duplicates", "--vni", "42", "--mac", &m]);
    assert_eq!(out["cleared"][0]["mac"], m.as_str(), "{out:#}");
    wait_a(Some(7), "after clear");
    assert!(lab.a.json(&["show", "duplicates"])["duplicates"]
        .as_array()
        .is_some_and(|d| d.is_empty()));
    assert!(
        lab.a
            .cli(&["clear", "duplicates"])
            .contains("No duplicate MACs"),
        "nothing left to clear"
    );
}

/// RFC 7432 §15.2: a static entry on a local port (`bridge fdb add ... static`) is a
/// sticky MAC: advertised with the sticky flag, and it never moves away, not even to a
/// remote VTEP that advertises it with a higher sequence (the bridge keeps it on the
/// local port, the route stays).
#[test]
fn a_static_local_mac_is_sticky_and_never_moves() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let a = lab.u.ip(0).to_string();
    let (m, vtep) = (lab.mac(9), lab.vtep(21));
    let _vm = vm_add(lab.ha(), "br0", "vm0", &format!("{}/24", lab.ip4(9)), None);
    let prefix = format!("[2]:[0]:[48]:[{m}]");
    lab.ha()
        .run_ok(&format!("bridge fdb add {m} dev vm0 master static"));
    let mut p = None;
    assert!(
        wait_until(WAIT, || {
            p = path_from(&lab.b, &prefix, &a);
            p.is_some()
        }),
        "the static MAC is not advertised\n{}",
        lab.a.logs()
    );
    let p = p.unwrap();
    assert_eq!(p["mac_mobility"]["sticky"], true, "{p:#}");
    // A remote VTEP claims it with a higher sequence: it stays here.
    lab.b.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &m,
        "--next-hop",
        &vtep,
        "--mobility-seq",
        "5",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        path_from(&lab.b, &prefix, &a).is_some(),
        "the sticky MAC was withdrawn\n{}",
        lab.a.logs()
    );
    let br = lab.ha().run_ok("bridge fdb show br br0");
    assert!(
        br.lines()
            .any(|l| l.starts_with(&m) && l.contains("dev vm0") && l.contains("static")),
        "the bridge no longer has the MAC on its port:\n{br}"
    );
}

/// The bridge removed (its ports leave it, the kernel drops its neighbours) and made
/// again with the vxlan device as a port: the VNI goes and comes back, and every entry
/// the routes want is programmed again; nothing of ours is left while it is gone.
#[test]
fn bridge_removed_and_recreated_is_reprogrammed() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&[]);
    let ha = lab.ha();
    let (v1, m1, ip1) = (lab.vtep(10), lab.mac(1), lab.ip4(11));
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    let all = Expect::default().flood(&v1).mac(&m1, &v1).neigh(&ip1, &m1);
    lab.wait_kernel(&all, "before removing br0");

    ha.run_ok("ip link del br0");
    assert!(
        wait_until(WAIT, || vni42(&lab.a).is_none_or(|v| v["bridge"].is_null())),
        "show vnis still has VNI 42 on a bridge: {:#}",
        lab.a.json(&["show", "vnis"])
    );
    // The vxlan device keeps its own entries (flood list, remote MAC); the bridge's
    // entries went with it. vxbgp must not have crashed or stopped following.
    bridge_add(ha, "br0");
    ha.run_ok("ip link set vxlan0 master br0");
    ha.run_ok("bridge link set dev vxlan0 learning off neigh_suppress on");
    assert!(
        wait_until(WAIT, || vni42(&lab.a)
            .is_some_and(|v| v["bridge"] == "br0" && v["up"] == true)),
        "show vnis does not find VNI 42 on the new br0: {:#}",
        lab.a.json(&["show", "vnis"])
    );
    lab.wait_kernel(&all, "after br0 was made again");
    assert_show_fib(&lab.a, &all);
}

/// The underlay link cut (hold timer 3 s) and restored: the routes learnt over it go
/// with the session, and come back into the kernel when it is up again.
#[test]
fn link_cut_and_restored_withdraws_then_reprograms() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&["--hold-time", "3"]);
    let (v1, m1, ip1) = (lab.vtep(10), lab.mac(1), lab.ip4(11));
    lab.multicast("add", &v1);
    lab.mac_ip("add", &m1, Some(&ip1), &v1);
    let all = Expect::default().flood(&v1).mac(&m1, &v1).neigh(&ip1, &m1);
    lab.wait_kernel(&all, "before the cut");
    let b = lab.u.ip(1).to_string();

    lab.u.switch().run_ok("ip link set p1 down");
    assert!(
        wait_until(WAIT, || lab.a.neighbor_state(&b).as_deref()
            != Some("Established")),
        "the session outlived the cut link (hold time 3 s)"
    );
    lab.wait_kernel(&Expect::default(), "while the link is cut");

    lab.u.switch().run_ok("ip link set p1 up");
    lab.a.wait_established(&b, WAIT);
    lab.wait_kernel(&all, "after the link came back");
}

/// `--no-fib` (a dedicated reflector) never touches the kernel, even on a host with a
/// VNI: routes it holds program nothing, a MAC on its bridge is not learned or
/// advertised, the bridge port's flags are left as they are, and `show fib` says why.
#[test]
fn no_fib_never_touches_the_kernel() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let ha = u.host(0);
    bridge_add(ha, "br0");
    vxlan_add(ha, "vxlan0", VNI, u.ip(0), "br0");
    ha.run_ok("bridge link set dev vxlan0 learning on neigh_suppress off");
    let before = read_kernel(ha);
    let (a, b) = (u.ip(0).to_string(), u.ip(1).to_string());
    let va = Vxbgp::start(
        ha,
        &[
            "--asn",
            "65001",
            "--router-id",
            &a,
            "--neighbor",
            &b,
            "--no-fib",
            "--fix-ports",
        ],
    );
    let vb = Vxbgp::start(
        u.host(1),
        &[
            "--asn",
            "65001",
            "--router-id",
            &b,
            "--neighbor",
            &a,
            "--no-fib",
        ],
    );
    va.wait_established(&b, WAIT);
    let m = format!("02:00:00:{:02x}:00:31", u.subnet());
    let vtep = Ipv4Addr::new(198, 19, u.subnet(), 40).to_string();
    vb.cli(&[
        "route",
        "add",
        "multicast",
        "--vni",
        "42",
        "--next-hop",
        &vtep,
    ]);
    vb.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &m,
        "--ip",
        &u.overlay_ip(31).to_string(),
        "--next-hop",
        &vtep,
    ]);
    let prefix = format!("[2]:[0]:[48]:[{m}]:[32]:[{}]", u.overlay_ip(31));
    assert!(
        wait_until(WAIT, || va.route(&prefix).is_some()),
        "A lacks the feeder's route: {:?}",
        va.prefixes()
    );
    // A VM on A's bridge.
    let vm_mac = format!("02:00:00:{:02x}:00:32", u.subnet());
    let vm = vm_add(
        ha,
        "br0",
        "vm0",
        &format!("{}/24", u.overlay_ip(32)),
        Some(&vm_mac),
    );
    let _ = vm.exec(&[
        "arping",
        "-U",
        "-c1",
        "-I",
        "eth0",
        &u.overlay_ip(32).to_string(),
    ]);
    std::thread::sleep(Duration::from_secs(2));

    let after = read_kernel(ha);
    assert!(
        after.ours().is_empty(),
        "entries programmed: {:?}",
        after.ours()
    );
    assert_eq!(
        port_flags(ha, "vxlan0"),
        (Some(true), Some(false)),
        "--no-fib changed the bridge port"
    );
    assert_eq!(before.ours(), after.ours());
    assert!(
        !vb.prefixes().iter().any(|p| p.contains(&vm_mac)),
        "A advertised its VM's MAC: {:?}",
        vb.prefixes()
    );
    let e = va.try_cli(&["show", "fib"]).unwrap_err();
    assert!(e.contains("--no-fib"), "{e}");
}

// ---------------------------------------------------------------------------------
// The JSON scripts read

/// The shape of a JSON value: every object's keys with the shape of their values,
/// an array as the union of its elements' shapes, a scalar as its type name (two
/// types seen at one place: both, e.g. "null|string").
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let merged = items.iter().map(shape).reduce(|a, b| merge(&a, &b));
            Value::Array(merged.into_iter().collect())
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}

fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut out = x.clone();
            for (k, v) in y {
                let m = match x.get(k) {
                    Some(old) => merge(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), m);
            }
            Value::Object(out)
        }
        (Value::Array(x), Value::Array(y)) => {
            let all = x.iter().chain(y).cloned().reduce(|a, b| merge(&a, &b));
            Value::Array(all.into_iter().collect())
        }
        (Value::String(x), Value::String(y)) => {
            let mut t: BTreeSet<&str> = x.split('|').chain(y.split('|')).collect();
            if t.len() > 1 {
                t.remove("null");
                let joined = t.into_iter().collect::<Vec<_>>().join("|");
                return format!("null|{joined}").into();
            }
            x.clone().into()
        }
        // An object or array where another element has null: nullable.
        (Value::String(n), other) | (other, Value::String(n)) if n == "null" => other.clone(),
        (x, _) => x.clone(),
    }
}

/// Where `got` differs from the golden shape `want`: keys added or gone, a value of
/// another type. A value seen only as null here or there (an unset option) says
/// nothing about its type and matches anything; empty arrays likewise.
fn same_shape(want: &Value, got: &Value, at: &str, wrong: &mut Vec<String>) {
    let types = |v: &str| -> BTreeSet<String> {
        v.split('|')
            .filter(|t| *t != "null")
            .map(String::from)
            .collect()
    };
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for k in w.keys().filter(|k| !g.contains_key(*k)) {
                wrong.push(format!("{at}.{k}: gone"));
            }
            for (k, gv) in g {
                match w.get(k) {
                    Some(wv) => same_shape(wv, gv, &format!("{at}.{k}"), wrong),
                    None => wrong.push(format!("{at}.{k}: new ({gv})")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let (Some(w), Some(g)) = (w.first(), g.first()) {
                same_shape(w, g, &format!("{at}[]"), wrong);
            }
        }
        (Value::String(w), Value::String(g)) => {
            let (w, g) = (types(w), types(g));
            if !w.is_empty() && !g.is_empty() && w != g {
                wrong.push(format!("{at}: {w:?} became {g:?}"));
            }
        }
        (Value::String(n), _) | (_, Value::String(n)) if types(n).is_empty() => {}
        (w, g) => wrong.push(format!("{at}: {w} became {g}")),
    }
}

/// Every `show ... --json` keeps the shape scripts rely on: the keys and value types
/// of neighbors, routes (type 2 and 3, with MAC mobility, PMSI, sticky and frozen
/// duplicates), fib, vnis and duplicates are those of `tests/golden/show_json.json`.
/// A change to them is a change for every script: run with VXBGP_BLESS=1 to write the
/// new shape, and say so in the README.
#[test]
fn show_json_keeps_its_shape() {
    if !require_root() {
        return;
    }
    let lab = Lab::new(&["--dad-max-moves", "1"]);
    let (m, vtep) = (lab.mac(9), lab.vtep(20));
    let _vm = vm_add(
        lab.ha(),
        "br0",
        "vm0",
        &format!("{}/24", lab.ip4(9)),
        Some(&m),
    );
    let _vm2 = vm_add(lab.ha(), "br0", "vm1", &format!("{}/24", lab.ip4(8)), None);
    lab.ha()
        .run_ok(&format!("bridge fdb replace {m} dev vm0 master dynamic"));
    lab.mac_ip("add", &lab.mac(0x30), Some(&lab.ip4(0x30)), &lab.vtep(21));
    lab.mac_ip("add", &lab.mac(0x31), None, &lab.vtep(21));
    lab.multicast("add", &lab.vtep(21));
    let a = lab.u.ip(0).to_string();
    let local_seen = || path_from(&lab.b, &format!("[2]:[0]:[48]:[{m}]"), &a).is_some();
    assert!(wait_until(WAIT, local_seen), "{:#?}", lab.b.routes());
    // One move with --dad-max-moves 1 freezes the MAC: `show duplicates` has an entry.
    lab.b.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &m,
        "--next-hop",
        &vtep,
        "--mobility-seq",
        "5",
    ]);
    let frozen = || {
        lab.a.json(&["show", "duplicates"])["duplicates"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    };
    assert!(
        wait_until(WAIT, frozen),
        "{:#}\n{}",
        lab.a.json(&["show", "duplicates"]),
        lab.a.logs()
    );
    let remote_in_fib = || lab.a.cli(&["show", "fib"]).contains(&lab.mac(0x30));
    assert!(
        wait_until(WAIT, remote_in_fib),
        "{}",
        lab.a.cli(&["show", "fib"])
    );
    let mut got = serde_json::Map::new();
    for cmd in ["neighbors", "routes", "fib", "vnis", "duplicates"] {
        got.insert(cmd.into(), shape(&lab.a.json(&["show", cmd])));
    }
    let got = Value::Object(got);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/show_json.json");
    let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
    if std::env::var_os("VXBGP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (VXBGP_BLESS=1 writes it)", path.display()));
    let want: Value = serde_json::from_str(&want).unwrap();
    let mut wrong = Vec::new();
    same_shape(&want, &got, "", &mut wrong);
    assert!(
        wrong.is_empty(),
        "the JSON of show commands changed shape (VXBGP_BLESS=1 to accept):\n{}\nnow:\n{text}",
        wrong.join("\n")
    );
}
