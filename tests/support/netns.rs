//! Network namespaces and links, created with iproute2 and removed on `Drop` (also on panic).
//!
//! The kernel objects follow SPEC.md "Kernel state the FIB must produce": a vxlan device is
//! `nolearning`, has `local <vtep-ip>`, `dstport 4789`, no group and no remote, and is a
//! bridge port with `learning off` and `neigh_suppress on`.

use super::proc::{self, Child};
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A network namespace owned by the test. `Drop` kills every process still inside it (the
/// harness spawned them all: daemons, children of `ip netns exec`, their forks), deletes the
/// namespace, and removes its log directory unless the test is panicking, in which case it
/// prints where the logs were kept.
pub struct Netns {
    name: String,
    log_dir: PathBuf,
}

impl Netns {
    /// `ip netns add <unique(prefix)>` and brings `lo` up. `prefix`: 1..=5 chars of [a-z0-9].
    pub fn new(prefix: &str) -> Netns {
        let name = super::unique(prefix);
        proc::run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            log_dir: super::log_dir_for(&name),
            name,
        };
        std::fs::create_dir_all(&ns.log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", ns.log_dir.display()));
        link_up(&ns, "lo");
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where this namespace's process logs go (kept when the test fails).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// `ip netns exec <name> argv...` as a `Command`, not yet run. `ip netns exec` execs the
    /// program in place, so the spawned PID is the program's own.
    pub fn cmd(&self, argv: &[&str]) -> Command {
        assert!(!argv.is_empty(), "Netns::cmd needs a program");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace and returns its output, whatever the exit status.
    pub fn exec(&self, argv: &[&str]) -> Output {
        proc::run(&mut self.cmd(argv))
    }

    /// Runs `sh -c <cmd>` inside the namespace; panics with stdout/stderr unless it exits 0.
    /// Returns stdout.
    pub fn run_ok(&self, cmd: &str) -> String {
        proc::run_ok(&mut self.cmd(&["sh", "-c", cmd]))
    }

    /// Spawns `argv` inside the namespace as a [`Child`] (killed on drop) with its output in
    /// `<log_dir>/<name>.stdout|.stderr`.
    pub fn spawn(&self, name: &str, argv: &[&str]) -> Child {
        Child::spawn(self.cmd(argv), name, &self.log_dir)
    }

    /// PIDs of all processes in the namespace (`ip netns pids`).
    pub fn pids(&self) -> Vec<u32> {
        let out = proc::run(Command::new("ip").args(["netns", "pids", &self.name]));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    pub fn addr_add(&self, dev: &str, cidr: &str) {
        addr_add(self, dev, cidr);
    }

    pub fn link_up(&self, dev: &str) {
        link_up(self, dev);
    }

    /// `ping -c 1` from this namespace; true if a reply came within `wait_s` seconds.
    pub fn ping(&self, dst: &str, wait_s: u32) -> bool {
        let v6 = dst.contains(':');
        let w = wait_s.to_string();
        let mut argv = vec!["ping", "-n", "-q", "-c", "1", "-W", &w];
        if v6 {
            argv.push("-6");
        }
        argv.push(dst);
        self.exec(&argv).status.success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Everything inside was started by this harness for this test: stop it all, by PID,
        // before deleting the namespace (a namespace with live processes outlives `ip netns
        // del` together with its veths).
        // A listed PID is signalled only while it still lives in this namespace: under load
        // PIDs wrap, and a reused one may belong to another test by the time we get to it.
        let ns_inode = std::fs::metadata(format!("/run/netns/{}", self.name))
            .map(|m| m.ino())
            .ok();
        let in_ns = |pid: u32| {
            let ino = std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .map(|m| m.ino())
                .ok();
            ino.is_some() && ino == ns_inode
        };
        let pids = self.pids();
        for &pid in &pids {
            if in_ns(pid) {
                proc::signal(pid, "TERM");
            }
        }
        for pid in pids {
            proc::terminate_if(pid, proc::GRACE, in_ns);
        }
        let out = proc::run(Command::new("ip").args(["netns", "del", &self.name]));
        if !out.status.success() {
            eprintln!(
                "warning: `ip netns del {}` failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if std::thread::panicking() {
            eprintln!(
                "logs of namespace {} kept in {}",
                self.name,
                self.log_dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// Names from `ip netns list` (the first word of each line).
pub fn netns_list() -> Vec<String> {
    let out = proc::run(Command::new("ip").args(["netns", "list"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

pub fn netns_exists(name: &str) -> bool {
    netns_list().iter().any(|n| n == name)
}

/// Runs `ip -n <ns> args...`, panicking on failure.
fn ip(ns: &Netns, args: &[&str]) -> String {
    proc::run_ok(Command::new("ip").args(["-n", ns.name()]).args(args))
}

/// A veth pair created directly in the two namespaces (never in the caller's namespace, so
/// names only need to be unique inside each namespace), both ends up.
pub fn veth_pair(a: &Netns, name_a: &str, b: &Netns, name_b: &str) {
    proc::run_ok(Command::new("ip").args([
        "link",
        "add",
        name_a,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        name_b,
        "netns",
        b.name(),
    ]));
    link_up(a, name_a);
    link_up(b, name_b);
}

/// `ip addr add <cidr> dev <dev>` (IPv6 addresses with `nodad`, so they are usable at once).
pub fn addr_add(ns: &Netns, dev: &str, cidr: &str) {
    if cidr.contains(':') {
        ip(ns, &["addr", "add", cidr, "dev", dev, "nodad"]);
    } else {
        ip(ns, &["addr", "add", cidr, "dev", dev]);
    }
}

pub fn link_up(ns: &Netns, dev: &str) {
    ip(ns, &["link", "set", dev, "up"]);
}

/// A VLAN-unaware Linux bridge, up.
pub fn bridge_add(ns: &Netns, name: &str) {
    ip(ns, &["link", "add", name, "type", "bridge"]);
    link_up(ns, name);
}

/// A vxlan device as SPEC.md requires — `id <vni> local <local> dstport 4789 nolearning`, no
/// group, no remote — made a port of `bridge` with `learning off neigh_suppress on`, up.
pub fn vxlan_add(ns: &Netns, name: &str, vni: u32, local: Ipv4Addr, bridge: &str) {
    let (vni, local) = (vni.to_string(), local.to_string());
    ip(
        ns,
        &[
            "link",
            "add",
            name,
            "type",
            "vxlan",
            "id",
            &vni,
            "local",
            &local,
            "dstport",
            "4789",
            "nolearning",
        ],
    );
    ip(ns, &["link", "set", name, "master", bridge]);
    proc::run_ok(&mut ns.cmd(&[
        "bridge",
        "link",
        "set",
        "dev",
        name,
        "learning",
        "off",
        "neigh_suppress",
        "on",
    ]));
    link_up(ns, name);
}

/// A "VM": a new namespace whose `eth0` (address `cidr`, MAC `mac` if given) is joined by a
/// veth to `bridge` in `host`, where the port is called `port`.
pub fn vm_add(host: &Netns, bridge: &str, port: &str, cidr: &str, mac: Option<&str>) -> Netns {
    let vm = Netns::new("vm");
    veth_pair(host, port, &vm, "eth0");
    ip(host, &["link", "set", port, "master", bridge]);
    if let Some(mac) = mac {
        ip(&vm, &["link", "set", "eth0", "address", mac]);
    }
    addr_add(&vm, "eth0", cidr);
    vm
}

/// N host namespaces on one L2 segment: each host's `u0` is a veth to a port of bridge `sw0` in
/// a "switch" namespace, with address 198.19.<subnet>.<i+1>/24. Hosts are dropped before the
/// switch.
pub struct Underlay {
    hosts: Vec<Netns>,
    switch: Netns,
    subnet: u8,
}

impl Underlay {
    pub fn new(n: usize) -> Underlay {
        assert!((1..=200).contains(&n), "Underlay::new: 1..=200 hosts");
        let switch = Netns::new("sw");
        bridge_add(&switch, "sw0");
        let subnet = super::subnet_id();
        let mut hosts = Vec::with_capacity(n);
        for i in 0..n {
            let host = Netns::new("h");
            let port = format!("p{i}");
            veth_pair(&host, "u0", &switch, &port);
            ip(&switch, &["link", "set", &port, "master", "sw0"]);
            addr_add(&host, "u0", &format!("198.19.{subnet}.{}/24", i + 1));
            hosts.push(host);
        }
        Underlay {
            hosts,
            switch,
            subnet,
        }
    }

    pub fn host(&self, i: usize) -> &Netns {
        &self.hosts[i]
    }

    pub fn hosts(&self) -> &[Netns] {
        &self.hosts
    }

    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The /24 index: underlay 198.19.<subnet>.0/24; tests use 198.18.<subnet>.0/24 as overlay.
    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    /// Host `i`'s underlay (VTEP) address, 198.19.<subnet>.<i+1>.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.hosts.len());
        Ipv4Addr::new(198, 19, self.subnet, (i + 1) as u8)
    }

    /// An overlay address in this test's overlay /24: 198.18.<subnet>.<host>.
    pub fn overlay_ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, host)
    }

    /// Names of all namespaces (hosts and switch), e.g. to check they are gone after drop.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.hosts.iter().map(|h| h.name().to_string()).collect();
        v.push(self.switch.name().to_string());
        v
    }
}

/// A VTEP host as the lab builds one: `br0` with `vxlan0` (VNI `vni`, `local` = `vtep`,
/// IPv4 or IPv6, unicast only, no learning, ARP/ND suppression) and a VM at `cidr` with
/// MAC `mac` on port `vm0`.
pub fn vtep_with_vm(host: &Netns, vni: u32, vtep: &str, cidr: &str, mac: &str) -> Netns {
    bridge_add(host, "br0");
    host.run_ok(&format!(
        "ip link add vxlan0 type vxlan id {vni} local {vtep} dstport 4789 nolearning"
    ));
    host.run_ok("ip link set vxlan0 master br0");
    host.run_ok("bridge link set dev vxlan0 learning off neigh_suppress on");
    host.link_up("vxlan0");
    vm_add(host, "br0", "vm0", cidr, Some(mac))
}

/// `bridge fdb show dev vxlan0` of `host`.
pub fn vxlan_fdb(host: &Netns) -> String {
    host.run_ok("bridge fdb show dev vxlan0")
}

/// `vxlan0` has an entry for `mac` towards `dst`.
pub fn vxlan_fdb_has(host: &Netns, mac: &str, dst: &str) -> bool {
    vxlan_fdb(host)
        .lines()
        .any(|l| l.starts_with(&format!("{mac} ")) && l.contains(&format!("dst {dst} ")))
}
