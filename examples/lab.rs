//! The vxbgp lab: `cargo run --example lab` (as root).
//!
//! It builds the seed's three-host VXLAN network in network namespaces, runs vxbgp on every
//! host (the host agent: VNI discovery, MAC learning, ARP snooping, route origination, kernel
//! programming) and as the dedicated BGP route reflector, and checks, step by step and in
//! words, that the overlay does what the seed asks for:
//!
//! 1. topology: an underlay segment 198.19.0.0/24 (bridge `sw0` in `lab-sw`), the route
//!    reflector `lab-rr` (198.19.0.1) and three hosts `lab-h1..3` (198.19.0.2..4), each with
//!    bridge `br0` (no address), `vxlan0` (VNI 42, dstport 4789, unicast only) and one "VM"
//!    namespace `lab-vm1..3` (198.18.0.2..4/24) joined to `br0` by a veth;
//! 2. vxbgp starts on the reflector (`--no-fib`) and on the three hosts; three iBGP sessions
//!    reach Established; host 1 shows the VNI it discovered;
//! 3. convergence: every host has flood entries to the other two and their VMs' MACs; the VMs
//!    announce themselves (gratuitous ARP), vxbgp snoops their MAC/IP pairs, and every host
//!    gets ARP-suppression entries for the other VMs;
//! 4. every VM pings every other; a broadcast and a multicast ping reach all VMs while the
//!    underlay carries only unicast VXLAN, one copy per remote VTEP;
//! 5. ARP suppression: ARP for a known VM is answered on host 1 (no ARP crosses the
//!    underlay), ARP for an unknown address is flooded once to each remote VTEP;
//! 6. migration: vm3 moves from host 3 to host 2 while vm1 pings it every 10 ms; MAC mobility
//!    moves every FDB entry and the route to host 2;
//! 7. a summary, clean-up; exit 0 when every check passed, 1 otherwise.
//!
//! `--frr` runs FRR instead of vxbgp on host 3 (interoperability: the same checks where they
//! apply; vm2 migrates between the two vxbgp hosts). `--keep` leaves the lab running,
//! `--clean` removes a kept (or interrupted) lab.
//!
//! Clean-up: the namespaces, FRR and vxbgp are owned by guards of the test harness
//! (`tests/support`), which remove them on drop, also when a step panics. Ctrl-C, SIGTERM and
//! SIGHUP are caught (tokio's signal handling): the lab then removes everything by name. The
//! names are fixed (`lab-sw`, `lab-rr`, `lab-h1..3`, `lab-vm1..3`, FRR's `/etc/frr/lab-h3` and
//! `/var/run/frr/lab-h3`, the log directory), so a run that was killed outright (SIGKILL)
//! leaves nothing that the next run, or `--clean`, does not remove first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

// The parts of the test harness (`tests/support`) the lab uses, as modules of this crate's
// root, where they find the few functions they need from the harness's `mod.rs`, defined
// below. `tests/support/mod.rs` itself cannot be included: it reads
// `env!("CARGO_BIN_EXE_vxbgp")`, which cargo defines for integration tests only.
#[allow(dead_code)]
#[path = "../tests/support/frr.rs"]
mod frr;
#[allow(dead_code)]
#[path = "../tests/support/netns.rs"]
mod netns;
#[allow(dead_code)]
#[path = "../tests/support/proc.rs"]
mod proc;

/// For `Netns::new`: the harness makes unique names, the lab's are fixed, so that `--keep`
/// can say how to reach them and `--clean` (or the next run) can find them.
fn unique(name: &str) -> String {
    name.to_string()
}

/// Used by the harness's `Underlay`, which the lab does not use.
#[allow(dead_code)]
fn subnet_id() -> u8 {
    0
}

/// Polls `f` every 100 ms until it returns true (→ `true`) or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Logs of a namespace's processes: `<lab dir>/<namespace>`.
fn log_dir_for(name: &str) -> PathBuf {
    lab_dir().join(name)
}

use frr::{evpn_config, Frr};
use netns::{netns_list, Netns};
use proc::Child;

const ASN: u32 = 65001;
const VNI: u32 = 42;
const SW: &str = "lab-sw";
const RR: &str = "lab-rr";
const RR_IP: &str = "198.19.0.1";
const UNDERLAY: &str = "198.19.0.0/24";
/// `--frr`: host 3's bridge gets this overlay address, so that FRR learns vm3's MAC/IP.
const FRR_SVI_IP: &str = "198.18.0.254";
/// An overlay address no VM has (step 5).
const UNKNOWN_IP: &str = "198.18.0.99";
/// The host that runs FRR with `--frr` (host 3).
const FRR_HOST: usize = 2;

/// One VTEP host and the VM it starts with.
struct HostDef {
    ns: &'static str,
    vtep: &'static str,
    vm_ns: &'static str,
    vm_ip: &'static str,
    vm_mac: &'static str,
    /// The bridge's MAC address (fixed, see `build_topology`).
    br_mac: &'static str,
}

impl HostDef {
    /// "vm1": the VM's short name, also the name of its port on the host's bridge.
    fn vm(&self) -> &'static str {
        &self.vm_ns[4..]
    }
}

const HOSTS: [HostDef; 3] = [
    HostDef {
        ns: "lab-h1",
        vtep: "198.19.0.2",
        vm_ns: "lab-vm1",
        vm_ip: "198.18.0.2",
        vm_mac: "02:00:00:00:00:02",
        br_mac: "02:00:00:00:01:01",
    },
    HostDef {
        ns: "lab-h2",
        vtep: "198.19.0.3",
        vm_ns: "lab-vm2",
        vm_ip: "198.18.0.3",
        vm_mac: "02:00:00:00:00:03",
        br_mac: "02:00:00:00:01:02",
    },
    HostDef {
        ns: "lab-h3",
        vtep: "198.19.0.4",
        vm_ns: "lab-vm3",
        vm_ip: "198.18.0.4",
        vm_mac: "02:00:00:00:00:04",
        br_mac: "02:00:00:00:01:03",
    },
];

/// Every namespace the lab creates, in the order they are removed by name.
const LAB_NAMESPACES: [&str; 8] = [
    "lab-vm1", "lab-vm2", "lab-vm3", "lab-h1", "lab-h2", "lab-h3", RR, SW,
];

/// Where the lab keeps logs and vxbgp's control sockets.
fn lab_dir() -> PathBuf {
    std::env::temp_dir().join("vxbgp-lab")
}

/// The control socket of the vxbgp daemon in namespace `ns`.
fn socket_of(ns: &str) -> PathBuf {
    lab_dir().join(ns).join("vxbgp.sock")
}

/// Set when a signal arrived: from then on the signal thread owns the clean-up and the main
/// thread must not print or create anything more.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Called by the main thread between actions: parks it for good once the lab is interrupted
/// (the signal thread cleans up and exits the process).
fn checkpoint() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Output

fn heading(n: u32, title: &str) {
    checkpoint();
    println!("\n━━━ Step {n}/7: {title} ━━━");
}

fn say(text: &str) {
    checkpoint();
    for l in text.lines() {
        println!("  {l}");
    }
}

fn show_cmd(cmd: &str) {
    checkpoint();
    println!("  $ {cmd}");
}

fn show_output(text: &str) {
    checkpoint();
    for l in text.trim_end().lines() {
        println!("      {l}");
    }
}

/// The checks made so far, for the summary and the exit status.
#[derive(Default)]
struct Checks(Vec<(String, bool)>);

impl Checks {
    fn check(&mut self, ok: bool, what: &str) -> bool {
        checkpoint();
        println!("  {} {what}", if ok { "✓" } else { "✗" });
        self.0.push((what.to_string(), ok));
        ok
    }

    fn failed(&self) -> usize {
        self.0.iter().filter(|(_, ok)| !ok).count()
    }
}

// ---------------------------------------------------------------------------------------
// Commands

/// Runs a whitespace-separated command line (no quoting needed for the lab's commands),
/// printing it first when `echo`. Panics with its output if it fails: the guards then remove
/// what was built.
fn sh(cmd: &str, echo: bool) -> String {
    if echo {
        show_cmd(cmd);
    }
    checkpoint();
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    proc::run_ok(Command::new(argv[0]).args(&argv[1..]))
}

/// Runs a command line and returns (success, stdout + stderr), whatever the exit status.
fn try_sh(cmd: &str) -> (bool, String) {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    let out = proc::run(Command::new(argv[0]).args(&argv[1..]));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The vxbgp binary of this build (`target/<profile>/vxbgp`, next to `examples/`). Cargo
/// does not build a package's binaries for `cargo run --example`, so the lab builds it
/// (a no-op when it is up to date; it also avoids running a stale one).
fn vxbgp_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate myself: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected location {}", exe.display()))?;
    let bin = profile_dir.join("vxbgp");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("Building the vxbgp binary (cargo build --bin vxbgp --profile {profile}) ...");
    let built = Command::new(&cargo)
        .args(["build", "--quiet", "--bin", "vxbgp", "--profile", &profile])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    match (built, bin.exists()) {
        (true, true) => Ok(bin),
        (false, true) => {
            println!("  (build failed; using the existing {})", bin.display());
            Ok(bin)
        }
        (_, false) => Err(format!(
            "{} not found: build it with `cargo build --bin vxbgp` and run the lab again",
            bin.display()
        )),
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

// ---------------------------------------------------------------------------------------
// Clean-up by name (Ctrl-C, --clean, leftovers of an earlier run)

/// The lab's namespaces that exist now.
fn existing_lab_namespaces() -> Vec<&'static str> {
    let list = netns_list();
    LAB_NAMESPACES
        .into_iter()
        .filter(|n| list.iter().any(|l| l == n))
        .collect()
}

fn frr_dirs() -> Vec<PathBuf> {
    HOSTS
        .iter()
        .flat_map(|h| {
            [
                PathBuf::from(format!("/etc/frr/{}", h.ns)),
                PathBuf::from(format!("/var/run/frr/{}", h.ns)),
            ]
        })
        .collect()
}

/// Stops every process in the lab's namespaces (FRR, vxbgp, pings, tcpdump), deletes the
/// namespaces, FRR's directories and the lab directory. Returns what it removed.
fn clean_by_name() -> Vec<String> {
    let mut removed = Vec::new();
    let namespaces = existing_lab_namespaces();
    let mut pids = Vec::new();
    for ns in &namespaces {
        let out = proc::run(Command::new("ip").args(["netns", "pids", ns]));
        pids.extend(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    for &pid in &pids {
        proc::signal(pid, "TERM");
    }
    for &pid in &pids {
        proc::terminate(pid, proc::GRACE);
    }
    if !pids.is_empty() {
        removed.push(format!("{} processes", pids.len()));
    }
    for ns in &namespaces {
        let _ = proc::run(Command::new("ip").args(["netns", "del", ns]));
        removed.push(format!("namespace {ns}"));
    }
    for d in frr_dirs() {
        if d.exists() {
            let _ = std::fs::remove_dir_all(&d);
            removed.push(d.display().to_string());
        }
    }
    let dir = lab_dir();
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        removed.push(dir.display().to_string());
    }
    removed
}

/// Ctrl-C, SIGTERM and SIGHUP: park the main thread (also when a child killed by the same
/// Ctrl-C makes it panic), remove the lab by name, exit 130.
fn install_signal_handler() {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (mut int, mut term, mut hup) = {
        let _guard = rt.enter();
        (
            signal(SignalKind::interrupt()).expect("SIGINT handler"),
            signal(SignalKind::terminate()).expect("SIGTERM handler"),
            signal(SignalKind::hangup()).expect("SIGHUP handler"),
        )
    };
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        checkpoint();
        default_hook(info);
    }));
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nInterrupted: removing the lab ...");
        let mut removed = clean_by_name();
        // A command the main thread had started may have created something meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        removed.extend(clean_by_name());
        eprintln!("Removed: {}", removed.join(", "));
        std::process::exit(130);
    });
}

// ---------------------------------------------------------------------------------------
// The lab

/// Everything the lab started, removed on drop in field order: capture and pings first,
/// then the daemons, then the namespaces (VMs, hosts, route reflector, switch).
struct Lab {
    tcpdump: Option<Child>,
    background: Vec<Child>,
    rr_daemon: Option<Child>,
    /// vxbgp on the hosts, by host index (`None` for the FRR host).
    agents: Vec<Option<Child>>,
    frr: Option<Frr>,
    vms: Vec<Netns>,
    hosts: Vec<Netns>,
    rr: Option<Netns>,
    sw: Option<Netns>,
    bin: PathBuf,
    /// `--frr`: host 3 runs FRR instead of vxbgp.
    with_frr: bool,
    /// The host each VM is on now (the migration step moves one).
    vm_on: [usize; 3],
    /// When the hosts' daemons were started.
    started: Option<Instant>,
}

impl Lab {
    fn new(bin: PathBuf, with_frr: bool) -> Lab {
        Lab {
            tcpdump: None,
            background: Vec::new(),
            rr_daemon: None,
            agents: Vec::new(),
            frr: None,
            vms: Vec::new(),
            hosts: Vec::new(),
            rr: None,
            sw: None,
            bin,
            with_frr,
            vm_on: [0, 1, 2],
            started: None,
        }
    }

    /// Whether host `h` runs vxbgp (all do, except host 3 with `--frr`).
    fn runs_vxbgp(&self, h: usize) -> bool {
        !(self.with_frr && h == FRR_HOST)
    }

    fn agent_name(&self, h: usize) -> &'static str {
        if self.runs_vxbgp(h) {
            "vxbgp"
        } else {
            "FRR"
        }
    }

    /// `vxbgp <args> --socket <socket>` run in namespace `ns`; (printed form, result).
    fn cli(&self, ns: &str, args: &str) -> (String, Result<String, String>) {
        let sock = socket_of(ns);
        let shown = format!(
            "ip netns exec {ns} vxbgp {args} --socket {}",
            sock.display()
        );
        let real = format!(
            "ip netns exec {ns} {} {args} --socket {}",
            self.bin.display(),
            sock.display()
        );
        let (ok, out) = try_sh(&real);
        (shown, if ok { Ok(out) } else { Err(out) })
    }

    /// Runs a `vxbgp show` command and prints it with its output.
    fn show(&self, ns: &str, args: &str) {
        let (shown, out) = self.cli(ns, args);
        show_cmd(&shown);
        show_output(&out.unwrap_or_else(|e| e));
    }

    fn json(&self, ns: &str, args: &str) -> Option<Value> {
        let (_, r) = self.cli(ns, &format!("{args} --json"));
        serde_json::from_str(&r.ok()?).ok()
    }

    /// The route reflector's neighbours.
    fn neighbors(&self) -> Vec<Value> {
        self.json(RR, "show neighbors")
            .and_then(|v| v["neighbors"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The route reflector's routes.
    fn rr_routes(&self) -> Vec<Value> {
        self.json(RR, "show routes")
            .and_then(|v| v["routes"].as_array().cloned())
            .unwrap_or_default()
    }

    /// VNI 42's entry of `vxbgp show <what> --json` on host `h` (`what`: "fib" or "vnis").
    fn vni_view(&self, h: usize, what: &str) -> Option<Value> {
        let v = self.json(HOSTS[h].ns, &format!("show {what}"))?;
        v["vnis"]
            .as_array()?
            .iter()
            .find(|x| x["vni"] == VNI)
            .cloned()
    }

    /// What host `h` still lacks: a flood entry to each other host, the MAC of each VM on
    /// another host (at that host's VTEP) and, with `ips`, a suppression entry for each such
    /// VM. From `vxbgp show fib --json` on vxbgp hosts, from the kernel on the FRR host.
    fn missing(&self, h: usize, ips: bool) -> Vec<String> {
        let mut missing = Vec::new();
        let remote_vms: Vec<usize> = (0..3).filter(|&v| self.vm_on[v] != h).collect();
        if self.runs_vxbgp(h) {
            let fib = self.vni_view(h, "fib").unwrap_or(Value::Null);
            let list = |k: &str| fib[k].as_array().cloned().unwrap_or_default();
            let flood = list("flood");
            for oh in HOSTS
                .iter()
                .enumerate()
                .filter(|(o, _)| *o != h)
                .map(|x| x.1)
            {
                if !flood.iter().any(|f| f == oh.vtep) {
                    missing.push(format!("flood entry to {}", oh.vtep));
                }
            }
            let macs = list("remote_macs");
            let sup = list("suppress");
            for &v in &remote_vms {
                let (vm, at) = (&HOSTS[v], HOSTS[self.vm_on[v]].vtep);
                if !macs
                    .iter()
                    .any(|m| m["mac"] == vm.vm_mac && m["vtep"] == at)
                {
                    missing.push(format!("MAC {} at {at}", vm.vm_mac));
                }
                if ips
                    && !sup
                        .iter()
                        .any(|n| n["ip"] == vm.vm_ip && n["mac"] == vm.vm_mac)
                {
                    missing.push(format!("suppression entry {} {}", vm.vm_ip, vm.vm_mac));
                }
            }
        } else {
            let fdb = fdb_text(HOSTS[h].ns);
            for oh in HOSTS
                .iter()
                .enumerate()
                .filter(|(o, _)| *o != h)
                .map(|x| x.1)
            {
                if !has_flood(&fdb, oh.vtep) {
                    missing.push(format!("flood entry to {}", oh.vtep));
                }
            }
            let neigh = if ips {
                neigh_text(HOSTS[h].ns)
            } else {
                String::new()
            };
            for &v in &remote_vms {
                let (vm, at) = (&HOSTS[v], HOSTS[self.vm_on[v]].vtep);
                if !has_remote_mac(&fdb, vm.vm_mac, at) {
                    missing.push(format!("MAC {} at {at}", vm.vm_mac));
                }
                if ips && !has_neigh(&neigh, vm.vm_ip, vm.vm_mac) {
                    missing.push(format!("suppression entry {} {}", vm.vm_ip, vm.vm_mac));
                }
            }
        }
        missing
    }

    /// The daemons' log tails and whether they still run (a failure is easier to read).
    fn logs(&self) -> String {
        let mut s = String::new();
        let daemons = self.rr_daemon.iter().map(|c| (RR, c)).chain(
            self.agents
                .iter()
                .zip(&HOSTS)
                .filter_map(|(c, h)| c.as_ref().map(|c| (h.ns, c))),
        );
        for (ns, c) in daemons {
            let state = if proc::pid_alive(c.pid()) {
                "still running"
            } else {
                "NO LONGER RUNNING (stopped or crashed)"
            };
            s.push_str(&format!("=== vxbgp in {ns}: {state}\n{}\n", c.logs()));
        }
        if let Some(f) = &self.frr {
            s.push_str(&format!("=== FRR in {}\n{}", f.ns(), f.logs()));
        }
        s
    }

    /// Starts tcpdump on the underlay switch (VXLAN only), waits until it listens: a
    /// capture that never started would make every "nothing crossed" check pass.
    fn capture_start(&mut self, echo: bool, checks: &mut Checks) {
        if echo {
            show_cmd(&format!(
                "ip netns exec {SW} tcpdump -i sw0 -n -e -l udp port 4789 &"
            ));
        }
        let sw = self.sw.as_ref().expect("switch namespace");
        let child = sw.spawn(
            "tcpdump",
            &[
                "tcpdump",
                "-i",
                "sw0",
                "-n",
                "-e",
                "-l",
                "-U",
                "--immediate-mode",
                "udp",
                "port",
                "4789",
            ],
        );
        let err = child.stderr_path().to_path_buf();
        let listening = wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&err).is_ok_and(|t| t.contains("listening on"))
        });
        if !listening {
            say(&std::fs::read_to_string(&err).unwrap_or_default());
        }
        checks.check(
            listening,
            "tcpdump is capturing the underlay (it said \"listening on sw0\")",
        );
        self.tcpdump = Some(child);
    }

    /// Stops the capture and returns what it saw.
    fn capture_stop(&mut self) -> Vec<Captured> {
        let Some(mut td) = self.tcpdump.take() else {
            return Vec::new();
        };
        std::thread::sleep(Duration::from_millis(300));
        td.stop();
        let text = std::fs::read_to_string(td.stdout_path()).unwrap_or_default();
        parse_capture(&text)
    }
}

/// `bridge fdb show dev vxlan0` in `ns`.
fn fdb_text(ns: &str) -> String {
    try_sh(&format!("ip netns exec {ns} bridge fdb show dev vxlan0")).1
}

/// `ip neigh show dev br0` in `ns`.
fn neigh_text(ns: &str) -> String {
    try_sh(&format!("ip netns exec {ns} ip neigh show dev br0")).1
}

/// An all-zero (flood) entry towards `vtep` in `bridge fdb show` output.
fn has_flood(fdb: &str, vtep: &str) -> bool {
    fdb.lines()
        .any(|l| l.starts_with("00:00:00:00:00:00") && l.contains(&format!("dst {vtep} ")))
}

/// `<mac> dst <vtep> ... extern_learn` in `bridge fdb show` output.
fn has_remote_mac(fdb: &str, mac: &str, vtep: &str) -> bool {
    fdb.lines().any(|l| {
        l.starts_with(mac) && l.contains(&format!("dst {vtep} ")) && l.contains("extern_learn")
    })
}

/// `<mac> dev vxlan0 master br0 extern_learn` (the bridge's own entry) in `bridge fdb show`.
fn has_bridge_mac(fdb: &str, mac: &str) -> bool {
    fdb.lines().any(|l| {
        l.starts_with(mac)
            && l.contains("master br0")
            && l.contains("extern_learn")
            && !l.contains(" dst ")
    })
}

/// Where `bridge fdb show dev vxlan0` sends `mac` (the `dst` of its entries).
fn fdb_dsts(fdb: &str, mac: &str) -> Vec<String> {
    fdb.lines()
        .filter(|l| l.starts_with(mac))
        .filter_map(|l| l.split(" dst ").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `<ip> lladdr <mac> ... NOARP` (a suppression entry) in `ip neigh show` output.
fn has_neigh(neigh: &str, ip: &str, mac: &str) -> bool {
    neigh.lines().any(|l| {
        l.starts_with(&format!("{ip} "))
            && l.contains(&format!("lladdr {mac}"))
            && l.contains("NOARP")
    })
}

/// Step 1: namespaces, links, addresses.
fn build_topology(lab: &mut Lab) {
    heading(1, "Build the topology");
    say(
        "Eight network namespaces stand in for the machines: a switch, the route reflector,\n\
         three VXLAN hosts (VTEPs) and one VM on each host.",
    );
    let h3_agent = if lab.with_frr {
        "FRR (VTEP)"
    } else {
        "vxbgp (VTEP)"
    };
    println!(
        r#"
                    lab-sw: bridge sw0 = the underlay, 198.19.0.0/24 (the "physical" network)
       ┌──────────────────┬───────────┴──────────┬──────────────────────┐
    lab-rr             lab-h1                  lab-h2                 lab-h3
  198.19.0.1         198.19.0.2              198.19.0.3             198.19.0.4
  vxbgp: BGP route   vxbgp (VTEP)            vxbgp (VTEP)           {h3_agent}
  reflector, no      br0 ── vxlan0 (VNI 42)  br0 ── vxlan0 (VNI 42) br0 ── vxlan0 (VNI 42)
  kernel access       │ veth "vm1"            │ veth "vm2"           │ veth "vm3"
                     lab-vm1                 lab-vm2                lab-vm3
                     198.18.0.2/24           198.18.0.3/24          198.18.0.4/24
                     02:00:00:00:00:02       02:00:00:00:00:03      02:00:00:00:00:04

  The VMs share one layer-2 network, 198.18.0.0/24 (the overlay), carried between the
  hosts inside VXLAN (UDP port 4789, unicast only). The bridges have no IP address."#
    );
    if lab.with_frr {
        say(&format!(
            "  (--frr: except br0 on lab-h3, which gets {FRR_SVI_IP}/24: FRR learns a VM's IP\n\
             \x20 address only from the kernel's neighbour table of the bridge, which needs one.)"
        ));
    }
    say("\nCommands (host 1 and its VM shown; hosts 2 and 3 are the same with their addresses):");

    let start = Instant::now();
    lab.sw = Some(Netns::new(SW));
    sh(&format!("ip -n {SW} link add sw0 type bridge"), false);
    sh(&format!("ip -n {SW} link set sw0 up"), false);

    // The route reflector and the hosts on the underlay.
    let mut port = 0;
    let mut underlay = |ns: &str, addr: &str, echo: bool| {
        port += 1;
        sh(
            &format!("ip link add u0 netns {ns} type veth peer name p{port} netns {SW}"),
            echo,
        );
        sh(&format!("ip -n {SW} link set p{port} master sw0 up"), echo);
        sh(&format!("ip -n {ns} addr add {addr}/24 dev u0"), echo);
        sh(&format!("ip -n {ns} link set u0 up"), echo);
    };
    lab.rr = Some(Netns::new(RR));
    underlay(RR, RR_IP, false);
    for (i, h) in HOSTS.iter().enumerate() {
        let echo = i == 0;
        if echo {
            show_cmd(&format!("ip netns add {}", h.ns));
        }
        lab.hosts.push(Netns::new(h.ns));
        underlay(h.ns, h.vtep, echo);
    }
    for (i, h) in HOSTS.iter().enumerate() {
        let echo = i == 0;
        let ns = h.ns;
        // A fixed bridge MAC: an unset one follows the lowest MAC of the ports, and each
        // change makes the kernel flush the bridge's neighbour table, suppression entries
        // included. vxbgp does not notice its entries being deleted by others and does not
        // put them back (its `show fib` still lists them), so with a random MAC, moving a VM
        // (step 6) would lose ARP suppression on a host in about one run of three.
        sh(
            &format!("ip -n {ns} link add br0 address {} type bridge", h.br_mac),
            echo,
        );
        sh(&format!("ip -n {ns} link set br0 up"), echo);
        sh(
            &format!(
                "ip -n {ns} link add vxlan0 type vxlan id {VNI} local {} dstport 4789 nolearning",
                h.vtep
            ),
            echo,
        );
        sh(&format!("ip -n {ns} link set vxlan0 master br0"), echo);
        sh(
            &format!(
                "ip netns exec {ns} bridge link set dev vxlan0 learning off neigh_suppress on"
            ),
            echo,
        );
        sh(&format!("ip -n {ns} link set vxlan0 up"), echo);
        if echo {
            show_cmd(&format!("ip netns add {}", h.vm_ns));
        }
        lab.vms.push(Netns::new(h.vm_ns));
        plug_vm(h, i, echo);
    }
    if lab.with_frr {
        sh(
            &format!(
                "ip -n {} addr add {FRR_SVI_IP}/24 dev br0",
                HOSTS[FRR_HOST].ns
            ),
            true,
        );
    }
    say(&format!(
        "\nbr0 gets a fixed MAC address, as systemd gives bridges: without one a bridge borrows\n\
         the lowest MAC of its ports and changes it when ports come and go (a VM moves in\n\
         step 6), and the kernel empties the bridge's neighbour table at each change.\n\
         Built 8 namespaces in {:.1} s. vxlan0 has no `group` and no `remote`: where to send\n\
         its frames is exactly what BGP EVPN will tell each host.",
        start.elapsed().as_secs_f64()
    ));
}

/// Joins VM `vm` to host `h`'s bridge by a new veth (port named after the VM), with the VM's
/// MAC and address, up.
fn plug_vm(vm: &HostDef, h: usize, echo: bool) {
    let (ns, port, vm_ns) = (HOSTS[h].ns, vm.vm(), vm.vm_ns);
    sh(
        &format!("ip link add {port} netns {ns} type veth peer name eth0 netns {vm_ns}"),
        echo,
    );
    sh(&format!("ip -n {ns} link set {port} master br0 up"), echo);
    sh(
        &format!("ip -n {vm_ns} link set eth0 address {}", vm.vm_mac),
        echo,
    );
    sh(
        &format!("ip -n {vm_ns} addr add {}/24 dev eth0", vm.vm_ip),
        echo,
    );
    sh(&format!("ip -n {vm_ns} link set eth0 up"), echo);
}

/// Step 2: vxbgp on the reflector and the hosts (FRR on host 3 with `--frr`); sessions up.
fn start_control_plane(lab: &mut Lab, checks: &mut Checks) {
    heading(
        2,
        if lab.with_frr {
            "Start the control plane: vxbgp (reflector, hosts 1-2) and FRR (host 3)"
        } else {
            "Start the control plane: vxbgp as route reflector and on every host"
        },
    );
    say(
        "vxbgp runs in lab-rr as an iBGP route reflector (RFC 4456): each host peers only with\n\
         it, and it passes every host's routes on to the others, so no full mesh is needed.\n\
         `--no-fib`: a dedicated reflector has no VMs and never touches its kernel.",
    );
    let sock = socket_of(RR);
    show_cmd(&format!(
        "ip netns exec {RR} vxbgp --asn {ASN} --router-id {RR_IP} --route-reflector --listen-range {UNDERLAY} --no-fib --socket {} &",
        sock.display()
    ));
    let bin = lab.bin.to_string_lossy().into_owned();
    let asn = ASN.to_string();
    let sock_s = sock.to_string_lossy().into_owned();
    let rr = lab.rr.as_ref().expect("rr namespace");
    let argv = [
        bin.as_str(),
        "--asn",
        &asn,
        "--router-id",
        RR_IP,
        "--route-reflector",
        "--listen-range",
        UNDERLAY,
        "--no-fib",
        "--socket",
        &sock_s,
        "--log",
        "info",
    ];
    lab.rr_daemon = Some(rr.spawn("vxbgp", &argv));
    let up = wait_until(Duration::from_secs(10), || {
        lab.cli(RR, "show neighbors").1.is_ok()
    });
    if !checks.check(
        up,
        "vxbgp (reflector) is up and answers on its control socket",
    ) {
        say(&lab.logs());
        return;
    }

    say(
        "\nOn each host vxbgp is the host agent: one neighbour (the reflector), nothing else to\n\
         configure. It finds the VNIs itself (vxlan devices that are bridge ports), learns the\n\
         MACs of local VMs from the bridge and their IP addresses by snooping ARP, advertises\n\
         them, and programs what the other hosts advertise into the kernel.",
    );
    let start = Instant::now();
    lab.started = Some(start);
    for (h, host) in HOSTS.iter().enumerate() {
        if !lab.runs_vxbgp(h) {
            lab.agents.push(None);
            continue;
        }
        let ns = host.ns;
        let sock = socket_of(ns).to_string_lossy().into_owned();
        show_cmd(&format!(
            "ip netns exec {ns} vxbgp --asn {ASN} --neighbor {RR_IP} --socket {sock} &"
        ));
        let argv = [
            bin.as_str(),
            "--asn",
            &asn,
            "--neighbor",
            RR_IP,
            "--socket",
            &sock,
            "--log",
            "info",
        ];
        let child = lab.hosts[h].spawn("vxbgp", &argv);
        lab.agents.push(Some(child));
    }
    if lab.with_frr {
        let h = &HOSTS[FRR_HOST];
        let conf = evpn_config(h.ns, ASN, h.vtep, &[(RR_IP, ASN)]);
        say(&format!(
            "\nHost 3 runs FRR instead (zebra talks to the kernel, bgpd speaks BGP): AS {ASN}, one\n\
             neighbour, the reflector; `advertise-all-vni` makes it advertise its VNIs and the MACs\n\
             (and MAC/IPs) it learns, and install what it receives. /etc/frr/{}/frr.conf:",
            h.ns
        ));
        show_output(&conf);
        show_cmd(&format!(
            "ip netns exec {0} /usr/lib/frr/zebra -d -N {0} -f /etc/frr/{0}/frr.conf   (then bgpd, the same)",
            h.ns
        ));
        lab.frr = Some(Frr::start(&lab.hosts[FRR_HOST], &conf));
    }
    let agents_up = (0..HOSTS.len()).filter(|&h| lab.runs_vxbgp(h)).all(|h| {
        wait_until(Duration::from_secs(10), || {
            lab.cli(HOSTS[h].ns, "show neighbors").1.is_ok()
        })
    });
    checks.check(agents_up, "vxbgp is up on the hosts");

    say("\nWaiting until the reflector has an Established BGP session with each of the 3 hosts\n(polling `vxbgp show neighbors --json`) ...");
    let established = |lab: &Lab| {
        let ns = lab.neighbors();
        HOSTS.iter().all(|h| {
            ns.iter()
                .any(|n| n["address"] == h.vtep && n["state"] == "Established")
        })
    };
    let ok = wait_until(Duration::from_secs(20), || established(lab));
    lab.show(RR, "show neighbors");
    checks.check(
        ok,
        &format!(
            "3 iBGP sessions Established ({:.1} s after the hosts' daemons started)",
            start.elapsed().as_secs_f64()
        ),
    );
    if !ok {
        say(&lab.logs());
        return;
    }

    say("\nWhat vxbgp found on host 1 by itself (no VNI was configured):");
    lab.show(HOSTS[0].ns, "show vnis");
    let v = lab.vni_view(0, "vnis").unwrap_or(Value::Null);
    let problems = v["problems"].as_array().map_or(0, Vec::len);
    checks.check(
        v["device"] == "vxlan0"
            && v["bridge"] == "br0"
            && v["local"] == HOSTS[0].vtep
            && v["up"] == true
            && problems == 0,
        &format!(
            "host 1 discovered VNI {VNI} on vxlan0 (bridge br0, VTEP {}), no problems",
            HOSTS[0].vtep
        ),
    );
    say(
        "VTEP is vxlan0's `local` address, the next hop other hosts will send VXLAN to.\n\
         LocalMACs/LocalIPs: VMs found on this host; Remote*: what the other hosts advertise.",
    );
}

/// Step 3: routes converge, the VMs announce themselves, suppression entries appear.
/// One check per host: what it must hold (`Lab::missing`) is there, or what it lacks.
fn check_hosts(lab: &Lab, checks: &mut Checks, ips: bool, ok: &str) {
    for (h, host) in HOSTS.iter().enumerate() {
        let missing = lab.missing(h, ips);
        let who = format!("{} ({})", host.ns, lab.agent_name(h));
        if missing.is_empty() {
            checks.check(true, &format!("{who} {ok}"));
        } else {
            checks.check(false, &format!("{who} lacks {}", missing.join(", ")));
        }
    }
}

fn converge(lab: &mut Lab, checks: &mut Checks) {
    heading(3, "Convergence: routes, MACs, ARP-suppression entries");
    say(
        "Each host advertises, through the reflector, two kinds of EVPN route:\n\
         \x20 type 3 (inclusive multicast): \"I am a VTEP for VNI 42 at 198.19.0.x: send me\n\
         \x20        broadcast, unknown-unicast and multicast frames of that VNI\" (one per host);\n\
         \x20 type 2 (MAC/IP advertisement): \"MAC 02:00:00:00:00:0x is behind VTEP 198.19.0.x\".\n\
         The agent learned its VM's MAC from the bridge's forwarding table: the bridge learns\n\
         it from the first frame the VM sends (here the IPv6 neighbour discovery every\n\
         interface does when it comes up).\n\
         Checked: every host has flood entries to the two others and the other VMs' MACs\n\
         (polling `vxbgp show fib --json` on each host)...",
    );
    let hosts = 0..HOSTS.len();
    let ok = wait_until(Duration::from_secs(15), || {
        hosts.clone().all(|h| lab.missing(h, false).is_empty())
    });
    check_hosts(
        lab,
        checks,
        false,
        "floods to the 2 other VTEPs and knows the 2 other VMs' MACs",
    );
    if ok {
        say(&format!(
            "Converged {:.1} s after the hosts' daemons started.",
            lab.started.map_or(0.0, |t| t.elapsed().as_secs_f64())
        ));
    } else {
        say(&lab.logs());
    }

    say(&format!(
        "\nA MAC alone does not give ARP suppression: for that every host must know which IP\n\
         address goes with which MAC. {}, so the kernel keeps no neighbour\n\
         table for the VMs; vxbgp snoops the ARP packets the VMs send instead.\n\
         Each VM announces itself once, as a hypervisor does for a VM it starts or moves\n\
         (a gratuitous ARP: \"198.18.0.x is at 02:00:00:00:00:0x\"):",
        if lab.with_frr {
            "The bridges of hosts 1 and 2 have no IP address"
        } else {
            "The bridges have no IP address"
        }
    ));
    let announced = Instant::now();
    show_cmd("ip netns exec lab-vm1 arping -U -c1 -I eth0 198.18.0.2");
    // In the background: arping -U waits a second after sending before it exits.
    let arpings: Vec<_> = HOSTS
        .iter()
        .enumerate()
        .filter(|&(i, _)| lab.runs_vxbgp(i))
        .map(|(_, vm)| {
            std::thread::spawn(move || {
                try_sh(&format!(
                    "ip netns exec {} arping -U -c1 -I eth0 {}",
                    vm.vm_ns, vm.vm_ip
                ))
            })
        })
        .collect();
    if lab.with_frr {
        say("  (and the same in lab-vm2)");
        let vm3 = &HOSTS[FRR_HOST];
        say(&format!(
            "FRR does not snoop ARP: it learns a MAC/IP pair only from the kernel's neighbour\n\
             table of the bridge, which needs an address ({FRR_SVI_IP} on lab-h3's br0). So\n\
             vm3 pings it, and host 3's kernel records vm3's MAC and IP:"
        ));
        let cmd = format!("ip netns exec {} ping -n -c 1 -W 2 {FRR_SVI_IP}", vm3.vm_ns);
        show_cmd(&cmd);
        let (pinged, _) = try_sh(&cmd);
        checks.check(
            pinged,
            &format!("vm3 reached host 3's bridge at {FRR_SVI_IP}"),
        );
    } else {
        say("  (and the same in lab-vm2 and lab-vm3)");
    }

    say("Checked: every host has an ARP-suppression entry for each of the other VMs ...");
    let ok = wait_until(Duration::from_secs(10), || {
        hosts.clone().all(|h| lab.missing(h, true).is_empty())
    });
    let took = announced.elapsed();
    for a in arpings {
        let _ = a.join();
    }
    check_hosts(
        lab,
        checks,
        true,
        "has suppression entries for the 2 other VMs' IP addresses",
    );
    if ok {
        say(&format!(
            "All there {:.2} s after the announcements were sent.",
            took.as_secs_f64()
        ));
    } else {
        say(&lab.logs());
    }

    say("\nWhat the reflector holds and passes on:");
    lab.show(RR, "show routes");
    let routes = lab.rr_routes();
    let v6 = routes
        .iter()
        .any(|r| r["ip"].as_str().is_some_and(|ip| ip.contains(':')));
    let mut legend = String::from(
        "How to read it:\n\
         \x20 [3]:[0]:[32]:[198.19.0.x]: a host's type-3 route; its PMSI attribute says\n\
         \x20   \"ingress-replication\": send me my own copy of every flooded frame.\n\
         \x20 [2]:[0]:[48]:[MAC]: type 2 without IP: where a MAC lives (learned from the bridge).\n\
         \x20 [2]:[0]:[48]:[MAC]:[32]:[IP]: type 2 with IP: the same MAC and its IPv4 address\n\
         \x20   (from the snooped ARP): what ARP suppression needs.\n",
    );
    if lab.with_frr {
        legend.push_str("\x20   Host 3's (FRR) come from its kernel's neighbour table.\n");
    }
    if v6 {
        legend.push_str(
            "\x20 [2]:...:[128]:[fe80::...]: the same for IPv6 (snooped neighbour discovery).\n",
        );
    }
    legend.push_str(
        "\x20 RD 198.19.0.x:42 = originating host : VNI; RT:65001:42 = the VNI's route target;\n\
         \x20 ET:8 = VXLAN encapsulation. Next hop = the originating host's VTEP: the reflector\n\
         \x20 does not change it, so traffic goes host to host, never through lab-rr.",
    );
    if lab.with_frr {
        legend.push_str("\n\x20 (FRR numbers its RDs its own way: 198.19.0.4:2.)");
    }
    say(&legend);
    let h1 = &HOSTS[0];
    say("\nWhat vxbgp programmed on host 1:");
    lab.show(h1.ns, "show fib");

    say("\nThe same, as the kernel has it:");
    let fdb_cmd = format!("ip netns exec {} bridge fdb show dev vxlan0", h1.ns);
    show_cmd(&fdb_cmd);
    let fdb = fdb_text(h1.ns);
    show_output(&fdb);
    let neigh_cmd = format!("ip netns exec {} ip neigh show dev br0", h1.ns);
    show_cmd(&neigh_cmd);
    let neigh = neigh_text(h1.ns);
    show_output(&neigh);
    say("How to read it:\n\
         \x20 00:00:00:00:00:00 dst <VTEP>: the flood list, one entry per remote VTEP (from their\n\
         \x20   type-3 routes). A broadcast, multicast or unknown frame is copied once to each of\n\
         \x20   them (head-end replication), so the underlay needs no multicast.\n\
         \x20 <MAC> dst <VTEP> self extern_learn: a remote VM's MAC (type 2): vxlan0 sends frames\n\
         \x20   for it to that host only. extern_learn marks entries a control plane installed\n\
         \x20   (the kernel never ages them out, and vxbgp only ever removes entries marked so).\n\
         \x20 <MAC> master br0 extern_learn: the same MAC in the bridge's own table: the bridge\n\
         \x20   sends it to vxlan0 (which does not learn) and knows the MAC is behind a port with\n\
         \x20   neigh_suppress, which ARP suppression requires.\n\
         \x20 <MAC> master br0 permanent: vxlan0's own address.\n\
         \x20 <IP> lladdr <MAC> extern_learn NOARP (ip neigh): a suppression entry (type 2 with\n\
         \x20   IP): the bridge answers ARP for that IP itself instead of flooding it.");
    for (v, vm) in HOSTS.iter().enumerate().skip(1) {
        let at = HOSTS[lab.vm_on[v]].vtep;
        checks.check(
            has_flood(&fdb, at)
                && has_remote_mac(&fdb, vm.vm_mac, at)
                && has_bridge_mac(&fdb, vm.vm_mac)
                && has_neigh(&neigh, vm.vm_ip, vm.vm_mac),
            &format!(
                "host 1's kernel: flood to {at}, {} → {at} (vxlan0 and bridge), {} NOARP",
                vm.vm_mac, vm.vm_ip
            ),
        );
    }
}

/// (received, transmitted) from ping's summary line.
fn ping_counts(out: &str) -> (u32, u32) {
    let line = out.lines().find(|l| l.contains("packets transmitted"));
    let num = |key: &str| {
        line.and_then(|l| {
            l.split(',')
                .find(|p| p.contains(key))
                .and_then(|p| p.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
    };
    (num("received"), num("transmitted"))
}

/// One captured VXLAN packet: outer source, outer destination (IP), outer destination MAC,
/// and the inner frame's description.
struct Captured {
    src: String,
    dst: String,
    dst_mac: String,
    inner: String,
}

/// Parses `tcpdump -n -e -l` output of VXLAN packets: a line for the outer packet
/// ("<time> <src mac> > <dst mac>, ethertype IPv4 (0x0800), length 148: 198.19.0.2.39064 >
/// 198.19.0.3.4789: VXLAN, flags [I] (0x08), vni 42"), then a line for the inner frame.
fn parse_capture(text: &str) -> Vec<Captured> {
    let mut out: Vec<Captured> = Vec::new();
    for l in text.lines() {
        if !l.contains(": VXLAN") {
            if let Some(last) = out.last_mut().filter(|p| p.inner.is_empty()) {
                last.inner = l.trim().to_string();
            }
            continue;
        }
        let Some((eth, rest)) = l.split_once(": ") else {
            continue;
        };
        let dst_mac = eth
            .split_whitespace()
            .nth(3)
            .unwrap_or("")
            .trim_end_matches(',')
            .to_string();
        let mut parts = rest.split_whitespace();
        let (Some(src), Some(">"), Some(dst)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let strip_port = |a: &str| {
            let a = a.trim_end_matches(':');
            a.rsplit_once('.')
                .map(|(ip, _)| ip.to_string())
                .unwrap_or_default()
        };
        out.push(Captured {
            src: strip_port(src),
            dst: strip_port(dst),
            dst_mac,
            inner: String::new(),
        });
    }
    out
}

/// The inner frame in short: "<src mac> > <dst mac>  <what>" without ids and lengths.
fn short_inner(inner: &str) -> String {
    let (macs, rest) = match inner.split_once(", ethertype") {
        Some((macs, rest)) => (macs, rest.split_once(": ").map_or("", |(_, r)| r)),
        None => ("", inner),
    };
    let what = rest.split(", id ").next().unwrap_or(rest);
    let what = what.split(", length").next().unwrap_or(what);
    format!("{macs}  {what}")
}

fn is_unicast_mac(mac: &str) -> bool {
    u8::from_str_radix(mac.get(0..2).unwrap_or("ff"), 16).is_ok_and(|b| b & 1 == 0)
}

fn print_packets<'a>(pkts: impl IntoIterator<Item = &'a Captured>) {
    for p in pkts {
        checkpoint();
        println!(
            "      {:<10} > {:<10}  {}",
            p.src,
            p.dst,
            short_inner(&p.inner)
        );
    }
}

/// A ping's output without the broadcast warning.
fn without_warning(out: &str) -> String {
    out.lines()
        .filter(|l| !l.contains("WARNING: pinging broadcast"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Step 4: the ping matrix, broadcast and multicast pings with the underlay captured.
fn traffic(lab: &mut Lab, checks: &mut Checks) {
    heading(
        4,
        "Traffic: unicast, broadcast and multicast across the overlay",
    );
    say("Every VM pings every other VM (6 pairs, at the same time):");
    show_cmd("ip netns exec lab-vm1 ping -c 2 -W 2 198.18.0.3   (and the other 5 pairs)");
    let pairs: Vec<(usize, usize)> = (0..3)
        .flat_map(|a| (0..3).filter(move |&b| b != a).map(move |b| (a, b)))
        .collect();
    let results: Vec<(u32, u32)> = std::thread::scope(|s| {
        let hs: Vec<_> = pairs
            .iter()
            .map(|&(a, b)| {
                s.spawn(move || {
                    let cmd = format!(
                        "ip netns exec {} ping -n -c 2 -W 2 {}",
                        HOSTS[a].vm_ns, HOSTS[b].vm_ip
                    );
                    ping_counts(&try_sh(&cmd).1)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or((0, 0))).collect()
    });
    checkpoint();
    println!();
    let mut header = format!("      {:<16}", "from \\ to");
    for h in &HOSTS {
        header.push_str(&format!("  {:<16}", format!("{} {}", h.vm(), h.vm_ip)));
    }
    println!("{}", header.trim_end());
    for (a, ha) in HOSTS.iter().enumerate() {
        let mut row = format!("      {:<16}", format!("{} {}", ha.vm(), ha.vm_ip));
        for b in 0..HOSTS.len() {
            let cell = if a == b {
                "-".to_string()
            } else {
                let k = pairs.iter().position(|&p| p == (a, b)).expect("pair");
                let (rx, tx) = results[k];
                format!("{} {rx}/{tx} replies", if rx > 0 { "✓" } else { "✗" })
            };
            row.push_str(&format!("  {cell:<16}"));
        }
        println!("{}", row.trim_end());
    }
    println!();
    let all = results.iter().filter(|(rx, _)| *rx > 0).count();
    checks.check(
        all == 6,
        &format!("{all} of 6 VM pairs can ping each other"),
    );

    say(
        "\nNow frames every VM must get: a broadcast ping (to ff:ff:ff:ff:ff:ff) and a multicast\n\
         ping to 224.0.0.1, \"all hosts\" (to 01:00:5e:00:00:01), both from vm1. Host 1 must\n\
         copy each to both other hosts. Meanwhile tcpdump on the underlay switch records every\n\
         VXLAN packet, to see where they go. Linux ignores broadcast and multicast pings by\n\
         default, so the VMs are told to answer them:",
    );
    for v in &HOSTS {
        sh(
            &format!(
                "ip netns exec {} sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0",
                v.vm_ns
            ),
            v.vm_ns == HOSTS[0].vm_ns,
        );
    }
    say("  (and the same in lab-vm2, lab-vm3)");
    lab.capture_start(true, checks);
    let vm1 = HOSTS[0].vm_ns;
    let mut answered = |what: &str, cmd: &str| {
        show_cmd(cmd);
        let out = without_warning(&try_sh(cmd).1);
        show_output(&out);
        for o in &HOSTS[1..] {
            checks.check(
                out.contains(&format!("from {}:", o.vm_ip)),
                &format!("the {what} reached {} ({} answered)", o.vm(), o.vm_ip),
            );
        }
    };
    answered(
        "broadcast",
        &format!("ip netns exec {vm1} ping -n -b -c 2 -W 2 198.18.0.255"),
    );
    say(
        "  (-I eth0: the VM has no route for multicast, so the interface is named; -t 1: a TTL\n\
         \x20 of 1, as for any multicast that must stay on the local network.)",
    );
    answered(
        "multicast",
        &format!("ip netns exec {vm1} ping -n -t 1 -c 2 -W 2 -I eth0 224.0.0.1"),
    );
    let pkts = lab.capture_stop();
    let is_ping = |p: &Captured| p.inner.contains("ICMP echo");
    say(&format!(
        "\nCaptured {} VXLAN packets on the underlay. Those of the two pings (outer IP\n\
         source > destination, then the frame inside, between the VMs):",
        pkts.len()
    ));
    print_packets(pkts.iter().filter(|p| is_ping(p)));
    let others = pkts.iter().filter(|p| !is_ping(p)).count();
    if others > 0 {
        say(&format!(
            "  and {others} others (ARP, IPv6 neighbour discovery and the like)."
        ));
    }
    say(
        "Each echo request leaves host 1 twice, once to each remote VTEP (head-end\n\
         replication), as unicast UDP; the replies come back as ordinary unicast.",
    );
    let vteps: Vec<&str> = HOSTS.iter().map(|h| h.vtep).collect();
    let unicast = pkts
        .iter()
        .all(|p| vteps.contains(&p.dst.as_str()) && is_unicast_mac(&p.dst_mac));
    checks.check(
        !pkts.is_empty() && unicast,
        &format!(
            "all {} VXLAN packets went to a VTEP's unicast address (no multicast group)",
            pkts.len()
        ),
    );
    for (what, dst) in [("broadcast", "198.18.0.255"), ("multicast", "224.0.0.1")] {
        let copies: Vec<usize> = HOSTS[1..]
            .iter()
            .map(|o| {
                pkts.iter()
                    .filter(|p| {
                        p.src == HOSTS[0].vtep
                            && p.dst == o.vtep
                            && p.inner.contains(&format!("> {dst}: ICMP echo request"))
                    })
                    .count()
            })
            .collect();
        checks.check(
            copies.iter().all(|&c| c == 2),
            &format!(
                "each {what} echo request was sent once to each remote VTEP ({} copies to {}, \
                 {} to {}, for 2 requests)",
                copies[0], HOSTS[1].vtep, copies[1], HOSTS[2].vtep
            ),
        );
    }
}

/// Step 5: ARP for known addresses is answered on host 1; for unknown ones it is flooded.
fn arp_suppression(lab: &mut Lab, checks: &mut Checks) {
    heading(5, "ARP suppression");
    say(
        "Before vm1 can send to 198.18.0.3 it asks, by ARP broadcast, \"who has 198.18.0.3?\".\n\
         Without suppression that broadcast is copied to every host, and every VM sees it.\n\
         With it, host 1's bridge answers from the suppression entry vxbgp installed, and\n\
         the request never leaves host 1. vm1 forgets what it knows, then asks vm2's and\n\
         vm3's addresses three times each, while tcpdump watches the underlay (`-b`: every\n\
         request broadcast, as when a VM resolves an address; only those are suppressed, a\n\
         unicast ARP request, e.g. a VM re-checking an entry, goes to the VM it names):",
    );
    let vm1 = HOSTS[0].vm_ns;
    sh(
        &format!("ip netns exec {vm1} ip neigh flush dev eth0"),
        true,
    );
    lab.capture_start(true, checks);
    let targets = &HOSTS[1..];
    let outs: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = targets
            .iter()
            .map(|t| {
                s.spawn(move || {
                    let cmd = format!("ip netns exec {vm1} arping -b -c 3 -I eth0 {}", t.vm_ip);
                    let out = try_sh(&cmd).1;
                    (cmd, out)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let pkts = lab.capture_stop();
    for ((cmd, out), t) in outs.iter().zip(targets) {
        show_cmd(cmd);
        show_output(out);
        let replies = out
            .lines()
            .filter(|l| {
                l.contains(&format!(
                    "reply from {} [{}]",
                    t.vm_ip,
                    t.vm_mac.to_uppercase()
                ))
            })
            .count();
        checks.check(
            replies == 3,
            &format!(
                "{} ({}) answered: {replies} of 3 replies, with MAC {}",
                t.vm_ip,
                t.vm(),
                t.vm_mac
            ),
        );
    }
    let arp: Vec<&Captured> = pkts
        .iter()
        .filter(|p| p.inner.contains("ethertype ARP"))
        .collect();
    say(&format!(
        "ARP frames inside VXLAN on the underlay meanwhile: {}",
        arp.len()
    ));
    print_packets(arp.iter().copied());
    for t in targets {
        let n = arp.iter().filter(|p| p.inner.contains(t.vm_ip)).count();
        checks.check(
            n == 0,
            &format!(
                "{n} ARP frames about {} crossed the underlay: answered by host 1's bridge",
                t.vm_ip
            ),
        );
    }

    say(&format!(
        "\nAn address nobody has, {UNKNOWN_IP}: no host knows it, so the request must reach\n\
         every VTEP (perhaps a VM there has it): it is flooded like any broadcast, one copy\n\
         per remote VTEP."
    ));
    lab.capture_start(false, checks);
    let cmd = format!("ip netns exec {vm1} arping -c 2 -w 3 -I eth0 {UNKNOWN_IP}");
    show_cmd(&cmd);
    let out = try_sh(&cmd).1;
    show_output(&out);
    let pkts = lab.capture_stop();
    let arp: Vec<&Captured> = pkts
        .iter()
        .filter(|p| p.inner.contains(&format!("who-has {UNKNOWN_IP}")))
        .collect();
    say(&format!(
        "ARP requests for {UNKNOWN_IP} inside VXLAN on the underlay: {}",
        arp.len()
    ));
    print_packets(arp.iter().copied());
    let per_vtep: Vec<usize> = HOSTS[1..]
        .iter()
        .map(|o| arp.iter().filter(|p| p.dst == o.vtep).count())
        .collect();
    checks.check(
        per_vtep.iter().all(|&n| n == 2),
        &format!(
            "each of the 2 requests went once to each remote VTEP ({} to {}, {} to {}: 2 per \
             request)",
            per_vtep[0], HOSTS[1].vtep, per_vtep[1], HOSTS[2].vtep
        ),
    );
}

/// icmp_seq numbers answered, from ping's per-reply lines.
fn answered_seqs(out: &str) -> BTreeSet<u32> {
    out.lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.split("icmp_seq=").nth(1))
        .filter_map(|r| r.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Step 6: a VM moves to another host while it is pinged.
fn migrate(lab: &mut Lab, checks: &mut Checks) {
    // vm3 from host 3 to host 2, pinged from vm1; with --frr (host 3 runs FRR) vm2 from
    // host 2 to host 1, pinged from vm3: between the two vxbgp hosts, watched from FRR's.
    let (m, from, to, pinger) = if lab.with_frr {
        (1, 1, 0, 2)
    } else {
        (2, 2, 1, 0)
    };
    let (vm, src, dst, p) = (&HOSTS[m], &HOSTS[from], &HOSTS[to], &HOSTS[pinger]);
    heading(
        6,
        &format!(
            "Migration: {} moves from host {} to host {}",
            vm.vm(),
            from + 1,
            to + 1
        ),
    );
    say(&format!(
        "A VM that moves keeps its MAC and IP address. Here {vm_name} is unplugged from host\n\
         {f}'s bridge and plugged into host {t}'s, then announces itself with a gratuitous ARP,\n\
         as a hypervisor does after a live migration. Host {f}'s bridge forgets the MAC as its\n\
         port goes, so vxbgp there withdraws the VM's routes; host {t}'s bridge learns the MAC on\n\
         a local port, so vxbgp there advertises them (the IP from the snooped ARP). Every\n\
         other host must switch to host {t}. Meanwhile {pn} pings {vm_name} every 10 ms.",
        vm_name = vm.vm(),
        f = from + 1,
        t = to + 1,
        pn = p.vm(),
    ));
    let count = 300;
    let ping_cmd = format!(
        "ip netns exec {} ping -n -i 0.01 -c {count} -W 1 {}",
        p.vm_ns, vm.vm_ip
    );
    show_cmd(&format!("{ping_cmd} &"));
    let argv: Vec<&str> = ping_cmd.split_whitespace().collect();
    let ping = Child::spawn(
        {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            c
        },
        "migration-ping",
        &lab_dir().join(p.vm_ns),
    );
    lab.background.push(ping);
    std::thread::sleep(Duration::from_millis(500));

    // The VM's routes' MAC-mobility sequence before the move (RFC 7432 §15).
    let seqs_of = |lab: &Lab| -> Vec<u64> {
        lab.rr_routes()
            .iter()
            .filter(|r| r["type"] == 2 && r["mac"] == vm.vm_mac)
            .flat_map(|r| r["paths"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["best"] == true)
            .map(|p| p["mac_mobility"]["seq"].as_u64().unwrap_or(0))
            .collect()
    };
    let seq_before = seqs_of(lab).into_iter().max().unwrap_or(0);
    let moved_at = Instant::now();
    show_cmd(&format!(
        "ip -n {} link del {}      (the veth's other end, eth0 in {}, goes with it)",
        src.ns,
        vm.vm(),
        vm.vm_ns
    ));
    sh(&format!("ip -n {} link del {}", src.ns, vm.vm()), false);
    plug_vm(vm, to, true);
    lab.vm_on[m] = to;
    let garp = format!(
        "ip netns exec {} arping -U -c1 -I eth0 {}",
        vm.vm_ns, vm.vm_ip
    );
    show_cmd(&garp);
    // In the background: arping waits a second after sending before it exits.
    let garp = std::thread::spawn(move || try_sh(&garp));

    say(&format!(
        "Waiting until the reflector and every other host point at host {} ...",
        to + 1
    ));
    // The reflector's type-2 routes for the VM: (with an IP, best path's next hop).
    let rr_view = |lab: &Lab| -> Vec<(bool, String)> {
        lab.rr_routes()
            .iter()
            .filter(|r| r["type"] == 2 && r["mac"] == vm.vm_mac)
            .flat_map(|r| {
                let with_ip = r["ip"].as_str().is_some();
                r["paths"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|p| p["best"] == true)
                    .filter_map(move |p| p["next_hop"].as_str().map(|n| (with_ip, n.to_string())))
            })
            .collect()
    };
    // Both routes (MAC, MAC/IP), all from the new host.
    let rr_ok = |v: &[(bool, String)]| {
        v.iter().any(|(ip, _)| !ip)
            && v.iter().any(|(ip, _)| *ip)
            && v.iter().all(|(_, n)| n == dst.vtep)
    };
    let others: Vec<usize> = (0..HOSTS.len()).filter(|&h| h != to).collect();
    let ok = wait_until(Duration::from_secs(10), || {
        rr_ok(&rr_view(lab))
            && others.iter().all(|&h| lab.missing(h, true).is_empty())
            && others
                .iter()
                .all(|&h| fdb_dsts(&fdb_text(HOSTS[h].ns), vm.vm_mac) == [dst.vtep])
    });
    say(&format!(
        "{} {:.2} s after {} was unplugged.",
        if ok { "Done" } else { "NOT done" },
        moved_at.elapsed().as_secs_f64(),
        vm.vm()
    ));
    let _ = garp.join();

    // The ping ends by itself after `count` packets (3 s) and at most 1 s of waiting.
    let mut ping = lab.background.pop().expect("migration ping");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ping.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    ping.stop();
    let out = std::fs::read_to_string(ping.stdout_path()).unwrap_or_default();
    let (rx, tx) = ping_counts(&out);
    let got = answered_seqs(&out);
    let lost: Vec<u32> = (1..=tx).filter(|s| !got.contains(s)).collect();
    say(&format!("\nThe pings from {} to {}:", p.vm(), vm.vm()));
    show_output(
        out.lines()
            .filter(|l| l.contains("packets transmitted") || l.starts_with("rtt"))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    );
    let gap = match (lost.first(), lost.last()) {
        (Some(a), Some(b)) => format!(
            ": icmp_seq {a}..{b}, about {} ms without connectivity",
            (b - a + 1) * 10
        ),
        _ => String::new(),
    };
    say(&format!(
        "{} of {tx} pings lost{gap}.\n\
         Pings go unanswered about as long as {vm_name} has no network interface at all: once\n\
         host {f}'s withdrawal arrives, frames for a MAC no host advertises are flooded to every\n\
         host, so they find {vm_name} at host {t} even before host {t}'s route arrives.",
        tx.saturating_sub(rx),
        vm_name = vm.vm(),
        f = from + 1,
        t = to + 1,
    ));
    let tail_ok = tx > 50 && (tx - 50 + 1..=tx).all(|s| got.contains(&s));
    checks.check(
        tail_ok,
        &format!(
            "{} answers again after the move (the last 50 pings all answered)",
            vm.vm()
        ),
    );
    let lost_n = tx.saturating_sub(rx);
    checks.check(
        tx > 0 && lost_n < 100,
        &format!(
            "{lost_n} pings lost in the move (< 100, i.e. under a second without connectivity)"
        ),
    );

    let ph = lab.vm_on[pinger];
    let fdb_cmd = format!("ip netns exec {} bridge fdb show dev vxlan0", HOSTS[ph].ns);
    say(&format!(
        "\nHost {}'s vxlan FDB ({}'s host) now sends {} to host {}:",
        ph + 1,
        p.vm(),
        vm.vm_mac,
        to + 1
    ));
    show_cmd(&fdb_cmd);
    show_output(&fdb_text(HOSTS[ph].ns));
    for &h in &others {
        let dsts = fdb_dsts(&fdb_text(HOSTS[h].ns), vm.vm_mac);
        checks.check(
            dsts == [dst.vtep],
            &format!(
                "{} ({}): {} → {} (vxlan0 FDB: {})",
                HOSTS[h].ns,
                lab.agent_name(h),
                vm.vm_mac,
                dst.vtep,
                if dsts.is_empty() {
                    "no entry".to_string()
                } else {
                    dsts.join(", ")
                }
            ),
        );
    }
    let local = try_sh(&format!("ip netns exec {} bridge fdb show br br0", dst.ns)).1;
    let on_port = local
        .lines()
        .any(|l| l.starts_with(vm.vm_mac) && l.contains(&format!("dev {} master br0", vm.vm())));
    let vx = fdb_dsts(&fdb_text(dst.ns), vm.vm_mac);
    checks.check(
        on_port && vx.is_empty(),
        &format!(
            "{} ({}): {} is local, on port {} (vxlan0 FDB: {})",
            dst.ns,
            lab.agent_name(to),
            vm.vm_mac,
            vm.vm(),
            if vx.is_empty() {
                "no entry".to_string()
            } else {
                vx.join(", ")
            }
        ),
    );
    // Plugging and unplugging ports must not have cost any host its suppression entries.
    let lost: Vec<String> = (0..HOSTS.len())
        .flat_map(|h| {
            let neigh = neigh_text(HOSTS[h].ns);
            let vm_on = lab.vm_on;
            HOSTS
                .iter()
                .enumerate()
                .filter(move |&(v, _)| vm_on[v] != h)
                .filter(move |(_, o)| !has_neigh(&neigh, o.vm_ip, o.vm_mac))
                .map(move |(_, o)| format!("{} on {}", o.vm_ip, HOSTS[h].ns))
        })
        .collect();
    checks.check(
        lost.is_empty(),
        &if lost.is_empty() {
            "every host's kernel still has its ARP-suppression entries for the VMs on other hosts"
                .to_string()
        } else {
            format!(
                "suppression entries missing from the kernel (ip neigh show dev br0): {}",
                lost.join(", ")
            )
        },
    );
    let (shown, out) = lab.cli(RR, "show routes --type 2");
    say("\nThe reflector's type-2 routes:");
    show_cmd(&shown);
    show_output(&out.unwrap_or_else(|e| e));
    let view = rr_view(lab);
    checks.check(
        rr_ok(&view),
        &format!(
            "the reflector's routes for {} (MAC and MAC/IP) have next hop {} (host {}) only \
             (now: {})",
            vm.vm_mac,
            dst.vtep,
            to + 1,
            view.iter()
                .map(|(ip, n)| format!("{} via {n}", if *ip { "MAC/IP" } else { "MAC" }))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let seqs = seqs_of(lab);
    let seq = seqs.iter().copied().max();
    // RFC 7432 §15: the MAC and the MAC/IP route carry one sequence, and the new host
    // advertises either one above the old host's (its route was still there when the
    // MAC was learned) or 0 (it was withdrawn first): nothing else.
    checks.check(
        seqs.len() == 2
            && seqs.iter().all(|&n| Some(n) == seq)
            && seq.is_some_and(|n| n == 0 || n == seq_before + 1),
        &format!(
            "the routes of {} from host {} carry one MAC-mobility sequence, 0 or one above \
             host {}'s {seq_before} (now: {seqs:?})",
            vm.vm_mac,
            to + 1,
            from + 1
        ),
    );
    say(&match seq {
        Some(n) if n > 0 => format!(
            "Host {t}'s routes carry MAC-mobility sequence number {n} (RFC 7432 §15): host {t}\n\
             learned the MAC while host {f}'s route was still there, so it advertised it with a\n\
             higher sequence, which every host prefers to the old location.",
            t = to + 1,
            f = from + 1
        ),
        _ => format!(
            "Host {t}'s routes carry no MAC-mobility sequence number (i.e. 0): host {f}'s\n\
             withdrawal arrived before host {t} learned the MAC, so there was no older route to\n\
             outbid. (Had host {f}'s route still been there, host {t} would have advertised\n\
             sequence 1, RFC 7432 §15, and every host would have preferred it.)",
            t = to + 1,
            f = from + 1
        ),
    });
    if !ok {
        say(&lab.logs());
    }
}

/// Step 7: what vxbgp did, from its own counters.
fn summary(lab: &Lab, checks: &mut Checks) {
    heading(7, "Summary and clean-up");
    let ns = lab.neighbors();
    let sum = |k: &str| ns.iter().filter_map(|n| n[k].as_u64()).sum::<u64>();
    say(&format!(
        "What vxbgp did:\n\
         \x20 lab-rr (route reflector, --no-fib): {} sessions; received {} routes, sent {},\n\
         \x20   holds {} (the next hops unchanged); it never touched a kernel.",
        ns.len(),
        sum("prefixes_received"),
        sum("prefixes_sent"),
        lab.rr_routes().len(),
    ));
    let mut failures = 0;
    for h in (0..HOSTS.len()).filter(|&h| lab.runs_vxbgp(h)) {
        let vnis = lab.vni_view(h, "vnis").unwrap_or(Value::Null);
        let fib = lab.vni_view(h, "fib").unwrap_or(Value::Null);
        let n = |v: &Value, k: &str| v[k].as_array().map_or(0, Vec::len);
        let f = fib["failures"].as_u64().unwrap_or(0);
        failures += f;
        say(&format!(
            "\x20 {} (host agent): found VNI {VNI} on {} (bridge {}); local VMs: MACs {}, IPs {};\n\
             \x20   programmed: flood list {} VTEPs, remote MACs {}, suppression entries {}; \
             kernel failures {f}.",
            HOSTS[h].ns,
            vnis["device"].as_str().unwrap_or("?"),
            vnis["bridge"].as_str().unwrap_or("?"),
            vnis["local_macs"],
            vnis["local_ips"],
            n(&fib, "flood"),
            n(&fib, "remote_macs"),
            n(&fib, "suppress"),
        ));
    }
    if lab.with_frr {
        say("\x20 lab-h3 ran FRR: vxbgp and FRR exchanged their routes through the reflector.");
    }
    checks.check(
        failures == 0,
        "the kernel accepted every entry vxbgp programmed (0 failures)",
    );
    say(&format!(
        "The VMs talk across the overlay with unicast VXLAN only, broadcast and multicast\n\
         reach every VM by head-end replication, ARP for known VMs stays on the local host,\n\
         and a VM that moves is followed within a fraction of a second. vxbgp was told\n\
         nothing on the {} but the reflector's address.",
        if lab.with_frr { "vxbgp hosts" } else { "hosts" }
    ));
    let failed = checks.failed();
    if failed == 0 {
        say(&format!("\nAll {} checks passed ✓", checks.0.len()));
    } else {
        say(&format!(
            "\n{failed} of {} checks FAILED ✗:",
            checks.0.len()
        ));
        for (what, ok) in &checks.0 {
            if !ok {
                say(&format!("  ✗ {what}"));
            }
        }
    }
}

fn usage() {
    println!(
        "Usage: cargo run --example lab [-- [--frr] [--keep | --clean]]  (as root)\n\n\
         Builds a VXLAN lab in network namespaces (vxbgp on three hosts and as their BGP EVPN\n\
         route reflector), checks it step by step and removes it again.\n\n\
         \x20 --frr    host 3 runs FRR instead of vxbgp (interoperability)\n\
         \x20 --keep   leave the lab running afterwards, to explore it\n\
         \x20 --clean  remove a lab left by --keep or by an interrupted run"
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut keep, mut clean, mut with_frr) = (false, false, false);
    for a in &args {
        match a.as_str() {
            "--keep" => keep = true,
            "--clean" => clean = true,
            "--frr" => with_frr = true,
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n");
                usage();
                return ExitCode::from(2);
            }
        }
    }
    if effective_uid() != Some(0) {
        eprintln!(
            "The lab needs root (it creates network namespaces): run it as root,\n\
             e.g. `sudo -E cargo run --example lab`."
        );
        return ExitCode::from(2);
    }
    if clean {
        let removed = clean_by_name();
        if removed.is_empty() {
            println!("Nothing to remove: no lab is running.");
        } else {
            println!("Removed: {}", removed.join(", "));
        }
        return ExitCode::SUCCESS;
    }
    let mut tools = vec!["ip", "bridge", "ping", "arping", "tcpdump"];
    if with_frr {
        tools.push("vtysh");
    }
    let mut missing: Vec<&str> = tools.into_iter().filter(|p| !on_path(p)).collect();
    if with_frr {
        for f in ["/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"] {
            if !Path::new(f).exists() {
                missing.push(f);
            }
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "Missing: {}. Install them with\n  apt-get install -y iproute2 iputils-ping iputils-arping tcpdump{}",
            missing.join(", "),
            if with_frr { " frr" } else { "" }
        );
        return ExitCode::from(2);
    }

    install_signal_handler();
    let t0 = Instant::now();
    let leftovers = clean_by_name();
    if !leftovers.is_empty() {
        println!(
            "Removed an earlier lab first (left by --keep or an interrupted run): {}",
            leftovers.join(", ")
        );
    }
    let bin = match vxbgp_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if with_frr {
        println!(
            "\nvxbgp lab, --frr: vxbgp on hosts 1 and 2 and as route reflector, FRR on host 3."
        );
    } else {
        println!("\nvxbgp lab: three VXLAN hosts and their BGP EVPN route reflector, all vxbgp.");
    }

    let mut lab = Lab::new(bin, with_frr);
    let mut checks = Checks::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_topology(&mut lab);
        start_control_plane(&mut lab, &mut checks);
        if checks.failed() == 0 {
            converge(&mut lab, &mut checks);
            traffic(&mut lab, &mut checks);
            arp_suppression(&mut lab, &mut checks);
            migrate(&mut lab, &mut checks);
        }
        summary(&lab, &mut checks);
    }));
    checkpoint();
    let mut passed = outcome.is_ok() && checks.failed() == 0;
    if outcome.is_err() {
        println!("\nA step failed (see the message above).");
    }

    if keep && outcome.is_ok() {
        say("\nLeaving the lab running (--keep). Explore it, for example:");
        let bin = lab.bin.display().to_string();
        let sock = |ns: &str| socket_of(ns).display().to_string();
        say(&format!(
            "\x20 ip netns exec {RR} {bin} show routes --socket {}\n\
             \x20 ip netns exec {RR} {bin} show neighbors --socket {}\n\
             \x20 ip netns exec lab-h1 {bin} show fib --socket {}\n\
             \x20 ip netns exec lab-h1 {bin} show vnis --socket {}\n\
             \x20 ip netns exec lab-h1 bridge fdb show dev vxlan0\n\
             \x20 ip netns exec lab-h1 ip neigh show dev br0\n\
             \x20 ip netns exec lab-vm1 ping 198.18.0.3\n\
             \x20 ip netns exec lab-sw tcpdump -i sw0 -n -e udp port 4789",
            sock(RR),
            sock(RR),
            sock("lab-h1"),
            sock("lab-h1"),
        ));
        if with_frr {
            say("\x20 vtysh -N lab-h3 -c 'show bgp l2vpn evpn'\n\
                 \x20 vtysh -N lab-h3 -c 'show evpn mac vni 42'");
        }
        let moved = if with_frr {
            "vm2 is on host 1 now"
        } else {
            "vm3 is on host 2 now"
        };
        say(&format!(
            "({moved}, after the migration.) A bridge forgets a MAC after 5 minutes without\n\
             traffic; its host then withdraws that VM's routes until the VM sends again.\n\
             Logs: {logs}\n\
             Remove it with:\n\
             \x20 cargo run --example lab -- --clean",
            logs = lab_dir().display(),
        ));
        std::mem::forget(lab);
    } else {
        say("\nClean up: stopping vxbgp, deleting the 8 namespaces ...");
        drop(lab);
        let left = existing_lab_namespaces();
        let dirs_left: Vec<PathBuf> = frr_dirs().into_iter().filter(|d| d.exists()).collect();
        let _ = std::fs::remove_dir_all(lab_dir());
        let clean = left.is_empty() && dirs_left.is_empty();
        // Something left behind breaks the next run: the lab failed.
        passed &= clean;
        say(&if clean {
            "✓ nothing left behind (`ip netns list` shows no lab-* namespace)".to_string()
        } else {
            format!(
                "✗ left behind: {left:?} {dirs_left:?}; run `cargo run --example lab -- --clean`"
            )
        });
    }
    println!("\nTotal time: {:.1} s", t0.elapsed().as_secs_f64());
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
