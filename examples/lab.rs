//! The vxbgp lab: `cargo run --example lab` (as root).
//!
//! It builds the seed's three-host VXLAN network in network namespaces, with vxbgp as the
//! BGP route reflector of three FRR VTEPs, and checks, step by step and in words, that the
//! control plane does its job:
//!
//! 1. topology: an underlay segment 198.19.0.0/24 (bridge `sw0` in `lab-sw`), the route
//!    reflector `lab-rr` (198.19.0.1) and three hosts `lab-h1..3` (198.19.0.2..4), each with
//!    bridge `br0` (no address), `vxlan0` (VNI 42, dstport 4789, unicast only) and one "VM"
//!    namespace `lab-vm1..3` (198.18.0.2..4/24) joined to `br0` by a veth;
//! 2. vxbgp and FRR start, the three iBGP sessions reach Established;
//! 3. the EVPN routes converge (every host knows the others' type-3 and VM MACs);
//! 4. FRR on host 1 programmed the vxlan FDB from them;
//! 5. every VM pings every other, a broadcast ping reaches both others, and a capture of the
//!    underlay shows only unicast VXLAN;
//! 6. a summary, exit 0 when every check passed, 1 otherwise;
//! 7. everything is removed again.
//!
//! `--keep` leaves the lab running, `--clean` removes a kept (or interrupted) lab.
//!
//! Clean-up: the namespaces, FRR and vxbgp are owned by guards of the test harness
//! (`tests/support`), which remove them on drop, also when a step panics. Ctrl-C, SIGTERM and
//! SIGHUP are caught (tokio's signal handling): the lab then removes everything by name. The
//! names are fixed (`lab-sw`, `lab-rr`, `lab-h1..3`, `lab-vm1..3`, FRR's `/etc/frr/lab-hN` and
//! `/var/run/frr/lab-hN`, the log directory), so a run that was killed outright (SIGKILL)
//! leaves nothing that the next run, or `--clean`, does not remove first.

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

/// One VTEP host and its VM.
struct HostDef {
    ns: &'static str,
    vtep: &'static str,
    vm_ns: &'static str,
    vm_ip: &'static str,
    vm_mac: &'static str,
}

const HOSTS: [HostDef; 3] = [
    HostDef {
        ns: "lab-h1",
        vtep: "198.19.0.2",
        vm_ns: "lab-vm1",
        vm_ip: "198.18.0.2",
        vm_mac: "02:00:00:00:00:02",
    },
    HostDef {
        ns: "lab-h2",
        vtep: "198.19.0.3",
        vm_ns: "lab-vm2",
        vm_ip: "198.18.0.3",
        vm_mac: "02:00:00:00:00:03",
    },
    HostDef {
        ns: "lab-h3",
        vtep: "198.19.0.4",
        vm_ns: "lab-vm3",
        vm_ip: "198.18.0.4",
        vm_mac: "02:00:00:00:00:04",
    },
];

/// Every namespace the lab creates, in the order they are removed by name.
const LAB_NAMESPACES: [&str; 8] = [
    "lab-vm1", "lab-vm2", "lab-vm3", "lab-h1", "lab-h2", "lab-h3", RR, SW,
];

/// Where the lab keeps logs and vxbgp's control socket.
fn lab_dir() -> PathBuf {
    std::env::temp_dir().join("vxbgp-lab")
}

fn rr_socket() -> PathBuf {
    lab_dir().join(RR).join("vxbgp.sock")
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

/// Everything the lab started, removed on drop in field order: daemons first, then the
/// namespaces (VMs, hosts, route reflector, switch).
#[derive(Default)]
struct Lab {
    tcpdump: Option<Child>,
    vxbgp: Option<Child>,
    frr: Vec<Frr>,
    vms: Vec<Netns>,
    hosts: Vec<Netns>,
    rr: Option<Netns>,
    sw: Option<Netns>,
    bin: PathBuf,
}

impl Lab {
    /// `vxbgp <args> --socket <rr socket>` run in `lab-rr`; (printed form, result).
    fn vxbgp_cli(&self, args: &str) -> (String, Result<String, String>) {
        let sock = rr_socket();
        let shown = format!(
            "ip netns exec {RR} vxbgp {args} --socket {}",
            sock.display()
        );
        let real = format!(
            "ip netns exec {RR} {} {args} --socket {}",
            self.bin.display(),
            sock.display()
        );
        let (ok, out) = try_sh(&real);
        (shown, if ok { Ok(out) } else { Err(out) })
    }

    fn vxbgp_json(&self, args: &str) -> Option<Value> {
        let (_, r) = self.vxbgp_cli(&format!("{args} --json"));
        serde_json::from_str(&r.ok()?).ok()
    }

    fn neighbors(&self) -> Vec<Value> {
        self.vxbgp_json("show neighbors")
            .and_then(|v| v["neighbors"].as_array().cloned())
            .unwrap_or_default()
    }

    /// vxbgp's log tail, and whether it still runs (a failure is easier to read with both).
    fn vxbgp_logs(&self) -> String {
        let Some(c) = self.vxbgp.as_ref() else {
            return String::new();
        };
        let state = if proc::pid_alive(c.pid()) {
            "vxbgp is still running".to_string()
        } else {
            format!(
                "vxbgp (pid {}) is no longer running: it stopped (\"shutting down\" = it got \
                 SIGTERM or SIGINT from some other process) or crashed",
                c.pid()
            )
        };
        format!("{state}\n{}", c.logs())
    }
}

/// Step 1: namespaces, links, addresses.
fn build_topology(lab: &mut Lab) {
    heading(1, "Build the topology");
    say(
        "Eight network namespaces stand in for the machines: a switch, the route reflector,\n\
         three VXLAN hosts (VTEPs) and one VM on each host.",
    );
    println!(
        r#"
                    lab-sw: bridge sw0 = the underlay, 198.19.0.0/24 (the "physical" network)
       ┌──────────────────┬───────────┴──────────┬──────────────────────┐
    lab-rr             lab-h1                  lab-h2                 lab-h3
  198.19.0.1         198.19.0.2              198.19.0.3             198.19.0.4
  vxbgp: BGP route   FRR (VTEP)              FRR (VTEP)             FRR (VTEP)
  reflector          br0 ── vxlan0 (VNI 42)  br0 ── vxlan0 (VNI 42) br0 ── vxlan0 (VNI 42)
                      │ veth                  │ veth                 │ veth
                     lab-vm1                 lab-vm2                lab-vm3
                     198.18.0.2/24           198.18.0.3/24          198.18.0.4/24
                     02:00:00:00:00:02       02:00:00:00:00:03      02:00:00:00:00:04

  The VMs share one layer-2 network, 198.18.0.0/24 (the overlay), carried between the
  hosts inside VXLAN (UDP port 4789, unicast only). The bridges have no IP address."#
    );
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
        sh(&format!("ip -n {ns} link add br0 type bridge"), echo);
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
        let vm = h.vm_ns;
        sh(
            &format!("ip link add vm0 netns {ns} type veth peer name eth0 netns {vm}"),
            echo,
        );
        sh(&format!("ip -n {ns} link set vm0 master br0 up"), echo);
        sh(
            &format!("ip -n {vm} link set eth0 address {}", h.vm_mac),
            echo,
        );
        sh(
            &format!("ip -n {vm} addr add {}/24 dev eth0", h.vm_ip),
            echo,
        );
        sh(&format!("ip -n {vm} link set eth0 up"), echo);
    }
    say(&format!(
        "\nBuilt 8 namespaces in {:.1} s. vxlan0 has no `group` and no `remote`: where to send\n\
         its frames is exactly what BGP EVPN will tell each host.",
        start.elapsed().as_secs_f64()
    ));
}

/// Step 2: vxbgp and FRR, sessions Established.
fn start_control_plane(lab: &mut Lab, checks: &mut Checks) {
    heading(
        2,
        "Start the control plane: vxbgp (route reflector) and FRR on the hosts",
    );
    say(
        "vxbgp runs in lab-rr as an iBGP route reflector (RFC 4456): each host peers only with\n\
         it, and it passes every host's routes on to the others, so no full mesh is needed.",
    );
    let sock = rr_socket();
    let argv_shown = format!(
        "vxbgp --asn {ASN} --router-id {RR_IP} --route-reflector --listen-range {UNDERLAY} --no-fib --socket {}",
        sock.display()
    );
    show_cmd(&format!("ip netns exec {RR} {argv_shown} &"));
    let bin = lab.bin.to_string_lossy().into_owned();
    let sock_s = sock.to_string_lossy().into_owned();
    let asn = ASN.to_string();
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
        // A dedicated reflector programs no kernel.
        "--no-fib",
        "--socket",
        &sock_s,
        "--log",
        "info",
    ];
    lab.vxbgp = Some(rr.spawn("vxbgp", &argv));
    let up = wait_until(Duration::from_secs(10), || {
        lab.vxbgp_cli("show neighbors").1.is_ok()
    });
    if !checks.check(up, "vxbgp is up and answers on its control socket") {
        say(&lab.vxbgp_logs());
        return;
    }

    say("\nFRR on each host: zebra (talks to the kernel) and bgpd, AS 65001, one neighbour, the\nroute reflector. `advertise-all-vni` makes FRR advertise every local VNI (here 42) and\nthe MACs learned on its bridge, and install what it learns into the kernel.");
    let configs: Vec<String> = HOSTS
        .iter()
        .map(|h| evpn_config(h.ns, ASN, h.vtep, &[(RR_IP, ASN)]))
        .collect();
    say(&format!("/etc/frr/{}/frr.conf:", HOSTS[0].ns));
    show_output(&configs[0]);
    for h in &HOSTS {
        show_cmd(&format!(
            "ip netns exec {0} /usr/lib/frr/zebra -d -N {0} -f /etc/frr/{0}/frr.conf   (then bgpd, the same)",
            h.ns
        ));
    }
    let start = Instant::now();
    let hosts = &lab.hosts;
    lab.frr = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .zip(&configs)
            .map(|(ns, conf)| s.spawn(move || Frr::start(ns, conf)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    say(&format!(
        "FRR is running on the 3 hosts ({:.1} s).",
        start.elapsed().as_secs_f64()
    ));
    let frr_started = start;

    say("\nWaiting until vxbgp has an Established BGP session with each of the 3 hosts\n(polling `vxbgp show neighbors --json`) ...");
    let established = |lab: &Lab| {
        let ns = lab.neighbors();
        HOSTS.iter().all(|h| {
            ns.iter()
                .any(|n| n["address"] == h.vtep && n["state"] == "Established")
        })
    };
    let ok = wait_until(Duration::from_secs(20), || established(lab));
    let (shown, out) = lab.vxbgp_cli("show neighbors");
    show_cmd(&shown);
    show_output(&out.unwrap_or_else(|e| e));
    checks.check(
        ok,
        &format!(
            "3 iBGP sessions Established ({:.1} s after FRR started)",
            frr_started.elapsed().as_secs_f64()
        ),
    );
    if !ok {
        say(&lab.vxbgp_logs());
    }
}

/// FRR's EVPN prefixes on host `i`.
fn frr_prefixes(frr: &Frr) -> Vec<String> {
    frr.try_vtysh("show bgp l2vpn evpn json")
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| {
            v.as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, r)| r.as_object())
                .flat_map(|r| r.keys().filter(|k| k.starts_with('[')).cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// What host `i` must have learned: the type-3 route and the VM MAC of each other host.
fn missing_routes(frr: &Frr, i: usize) -> Vec<String> {
    let have = frr_prefixes(frr);
    let mut missing = Vec::new();
    for (j, o) in HOSTS.iter().enumerate() {
        if j == i {
            continue;
        }
        let t3 = format!("[3]:[0]:[32]:[{}]", o.vtep);
        let t2 = format!("[2]:[0]:[48]:[{}]", o.vm_mac);
        if !have.contains(&t3) {
            missing.push(t3);
        }
        if !have
            .iter()
            .any(|p| *p == t2 || p.starts_with(&format!("{t2}:")))
        {
            missing.push(t2);
        }
    }
    missing
}

/// Step 3: routes converge.
fn converge(lab: &Lab, checks: &mut Checks) {
    heading(3, "Wait until the EVPN routes converge");
    say(
        "Each host advertises two kinds of EVPN route to vxbgp, which reflects them to the\n\
         other two hosts:\n\
         \x20 type 3 (inclusive multicast): \"I am a VTEP for VNI 42 at 198.19.0.x; send me\n\
         \x20        broadcast, unknown-unicast and multicast frames of that VNI\" (one per host);\n\
         \x20 type 2 (MAC/IP advertisement): \"MAC 02:00:00:00:00:0x is behind VTEP 198.19.0.x\"\n\
         \x20        (FRR learns its VM's MAC from the bridge and advertises it).\n\
         Checked: every host's FRR has the other two hosts' type-3 routes and VM MACs\n\
         (polling `vtysh -N lab-hN -c 'show bgp l2vpn evpn json'`).",
    );
    let start = Instant::now();
    let ok = wait_until(Duration::from_secs(30), || {
        lab.frr
            .iter()
            .enumerate()
            .all(|(i, f)| missing_routes(f, i).is_empty())
    });
    for (i, (f, h)) in lab.frr.iter().zip(&HOSTS).enumerate() {
        let missing = missing_routes(f, i);
        checks.check(
            missing.is_empty(),
            &if missing.is_empty() {
                format!(
                    "{} (FRR) learned the 2 type-3 routes and 2 VM MACs of the other hosts",
                    h.ns
                )
            } else {
                format!("{} (FRR) lacks {}", h.ns, missing.join(", "))
            },
        );
    }
    if ok {
        say(&format!(
            "Converged {:.1} s after the sessions came up.",
            start.elapsed().as_secs_f64()
        ));
    }
    say("\nWhat vxbgp holds and reflects:");
    let (shown, out) = lab.vxbgp_cli("show routes");
    show_cmd(&shown);
    show_output(&out.unwrap_or_else(|e| e));
    say(
        "Each route keeps the next hop of the host that originated it (a route reflector does\n\
         not change it): traffic goes host to host, never through lab-rr.",
    );
    if !ok {
        say(&lab.vxbgp_logs());
        for f in &lab.frr {
            say(&f.logs());
        }
    }
}

/// Step 4: host 1's kernel FDB.
fn kernel_state(checks: &mut Checks) {
    heading(4, "Look at what FRR programmed into host 1's kernel");
    say("From those routes FRR (zebra) writes the vxlan forwarding table (FDB) of vxlan0:");
    let h1 = &HOSTS[0];
    let fdb_cmd = format!("ip netns exec {} bridge fdb show dev vxlan0", h1.ns);
    let fdb = || try_sh(&fdb_cmd).1;
    let want_flood = |text: &str, vtep: &str| {
        text.lines()
            .any(|l| l.starts_with("00:00:00:00:00:00") && l.contains(&format!("dst {vtep} ")))
    };
    let want_mac = |text: &str, h: &HostDef| {
        text.lines().any(|l| {
            l.starts_with(h.vm_mac)
                && l.contains(&format!("dst {} ", h.vtep))
                && l.contains("extern_learn")
        })
    };
    let others = &HOSTS[1..];
    wait_until(Duration::from_secs(10), || {
        let t = fdb();
        others
            .iter()
            .all(|o| want_flood(&t, o.vtep) && want_mac(&t, o))
    });
    let text = fdb();
    show_cmd(&fdb_cmd);
    show_output(&text);
    say("How to read it:\n\
         \x20 00:00:00:00:00:00 dst <VTEP>: the flood list, one entry per remote VTEP (from\n\
         \x20   their type-3 routes). A broadcast or unknown frame is copied once to each of\n\
         \x20   them (head-end replication), so the underlay needs no multicast.\n\
         \x20 <MAC> dst <VTEP> self extern_learn: a remote VM's MAC (from a type-2 route); the\n\
         \x20   vxlan device sends frames for it to that host only. extern_learn marks entries\n\
         \x20   that a control plane installed (the kernel never ages them out).\n\
         \x20 <MAC> master br0 extern_learn: the same MAC in the bridge's own table, so the\n\
         \x20   bridge sends it to vxlan0 instead of flooding (vxlan0 does not learn).\n\
         \x20 <MAC> master br0 permanent: vxlan0's own address.");
    for o in others {
        checks.check(
            want_flood(&text, o.vtep),
            &format!("host 1 floods BUM traffic to {} (all-zero entry)", o.vtep),
        );
    }
    for o in others {
        checks.check(
            want_mac(&text, o),
            &format!(
                "host 1 sends frames for {} to {} (extern_learn)",
                o.vm_mac, o.vtep
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

/// Step 5: pings and the underlay capture.
fn traffic(lab: &mut Lab, checks: &mut Checks) {
    heading(5, "Send traffic across the overlay");
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
        header.push_str(&format!(
            "  {:<16}",
            format!("{} {}", &h.vm_ns[4..], h.vm_ip)
        ));
    }
    println!("{}", header.trim_end());
    for (a, ha) in HOSTS.iter().enumerate() {
        let mut row = format!("      {:<16}", format!("{} {}", &ha.vm_ns[4..], ha.vm_ip));
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
        "\nA broadcast ping from vm1 to 198.18.0.255: the frame goes to ff:ff:ff:ff:ff:ff, so\n\
         host 1 must copy it to both other hosts. Meanwhile tcpdump on the underlay switch\n\
         records every VXLAN packet, to see where they go.",
    );
    let tcpdump_ok = on_path("tcpdump");
    for v in &HOSTS {
        sh(
            &format!(
                "ip netns exec {} sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0",
                v.vm_ns
            ),
            v.vm_ns == HOSTS[0].vm_ns,
        );
    }
    say("  (and the same in lab-vm2, lab-vm3: Linux ignores broadcast pings by default)");
    if tcpdump_ok {
        show_cmd(&format!(
            "ip netns exec {SW} tcpdump -i sw0 -n -e -l udp port 4789 &"
        ));
        let sw = lab.sw.as_ref().expect("switch namespace");
        let child = sw.spawn(
            "tcpdump",
            &[
                "tcpdump", "-i", "sw0", "-n", "-e", "-l", "-U", "udp", "port", "4789",
            ],
        );
        let err = child.stderr_path().to_path_buf();
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&err).is_ok_and(|t| t.contains("listening on"))
        });
        lab.tcpdump = Some(child);
    } else {
        say("  (tcpdump is not installed: `apt-get install tcpdump` to see the capture)");
    }
    let bcmd = format!(
        "ip netns exec {} ping -n -b -c 2 -W 2 198.18.0.255",
        HOSTS[0].vm_ns
    );
    show_cmd(&bcmd);
    let (_, out) = try_sh(&bcmd);
    let out: String = out
        .lines()
        .filter(|l| !l.contains("WARNING: pinging broadcast"))
        .map(|l| format!("{l}\n"))
        .collect();
    show_output(&out);
    for o in &HOSTS[1..] {
        checks.check(
            out.contains(&format!("from {}:", o.vm_ip)),
            &format!("the broadcast reached {} ({} answered)", o.vm_ns, o.vm_ip),
        );
    }

    let Some(mut td) = lab.tcpdump.take() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(300));
    td.stop();
    let text = std::fs::read_to_string(td.stdout_path()).unwrap_or_default();
    let pkts = parse_capture(&text);
    let is_ping = |p: &Captured| p.inner.contains("ICMP echo");
    say(&format!(
        "\nCaptured {} VXLAN packets on the underlay. Those of the broadcast ping (outer IP\n\
         source > destination, then the frame inside, between the VMs):",
        pkts.len()
    ));
    for p in pkts.iter().filter(|p| is_ping(p)) {
        checkpoint();
        println!(
            "      {:<10} > {:<10}  {}",
            p.src,
            p.dst,
            short_inner(&p.inner)
        );
    }
    let others = pkts.iter().filter(|p| !is_ping(p)).count();
    if others > 0 {
        say(&format!(
            "  and {others} others (ARP, and IPv6 router solicitations the interfaces send by\n\
             \x20 themselves: multicast inside, so replicated like the broadcast)."
        ));
    }
    say(
        "Each echo request to ff:ff:ff:ff:ff:ff leaves host 1 twice, once to each remote VTEP,\n\
         and the replies come back as ordinary unicast.",
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
    for o in &HOSTS[1..] {
        let copies = pkts
            .iter()
            .filter(|p| {
                p.src == HOSTS[0].vtep
                    && p.dst == o.vtep
                    && p.inner.contains("198.18.0.255: ICMP echo request")
            })
            .count();
        checks.check(
            copies > 0,
            &format!(
                "host 1 sent its own copy of each broadcast to {} ({copies} copies for 2 pings)",
                o.vtep
            ),
        );
    }
    drop(td);
}

/// Step 6: the summary, from vxbgp's counters.
fn summary(lab: &Lab, checks: &Checks) {
    heading(6, "Summary");
    let ns = lab.neighbors();
    let sum = |k: &str| ns.iter().filter_map(|n| n[k].as_u64()).sum::<u64>();
    let routes = lab
        .vxbgp_json("show routes")
        .and_then(|v| v["routes"].as_array().map(Vec::len))
        .unwrap_or(0);
    say(&format!(
        "vxbgp, the route reflector, reflected {routes} routes between {} clients: it received\n\
         {} (each host's type-3 and its VM's MAC) and sent {} (each host got the other two\n\
         hosts' routes). FRR turned them into kernel FDB entries, and the VMs talk across the\n\
         overlay with unicast VXLAN only.",
        ns.len(),
        sum("prefixes_received"),
        sum("prefixes_sent"),
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
        "Usage: cargo run --example lab [-- --keep | --clean]  (as root)\n\n\
         Builds a VXLAN lab in network namespaces (three FRR VTEPs, vxbgp as their BGP EVPN\n\
         route reflector), checks it step by step and removes it again.\n\n\
         \x20 --keep   leave the lab running afterwards, to explore it\n\
         \x20 --clean  remove a lab left by --keep or by an interrupted run"
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut keep, mut clean) = (false, false);
    for a in &args {
        match a.as_str() {
            "--keep" => keep = true,
            "--clean" => clean = true,
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
            "The lab needs root (it creates network namespaces and runs FRR): run it as root,\n\
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
    let mut missing: Vec<&str> = ["ip", "bridge", "ping", "vtysh"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    for f in ["/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"] {
        if !Path::new(f).exists() {
            missing.push(f);
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "Missing: {}. Install them with\n  apt-get install -y frr iproute2 iputils-ping tcpdump",
            missing.join(", ")
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
    println!("\nvxbgp lab: three VXLAN hosts (FRR) and vxbgp as their BGP EVPN route reflector.");

    let mut lab = Lab {
        bin,
        ..Lab::default()
    };
    let mut checks = Checks::default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_topology(&mut lab);
        start_control_plane(&mut lab, &mut checks);
        if checks.failed() == 0 {
            converge(&lab, &mut checks);
            kernel_state(&mut checks);
            traffic(&mut lab, &mut checks);
        }
        summary(&lab, &checks);
    }));
    checkpoint();
    let passed = outcome.is_ok() && checks.failed() == 0;
    if outcome.is_err() {
        println!("\nA step failed (see the message above).");
    }

    if keep && outcome.is_ok() {
        heading(7, "Leave the lab running (--keep)");
        let sock = rr_socket();
        say(&format!(
            "Explore it, for example:\n\
             \x20 ip netns exec {RR} {bin} show routes --socket {sock}\n\
             \x20 ip netns exec {RR} {bin} show neighbors --socket {sock}\n\
             \x20 vtysh -N lab-h1 -c 'show bgp l2vpn evpn'\n\
             \x20 vtysh -N lab-h1 -c 'show evpn mac vni 42'\n\
             \x20 ip netns exec lab-h1 bridge fdb show dev vxlan0\n\
             \x20 ip netns exec lab-vm1 ping 198.18.0.4\n\
             \x20 ip netns exec lab-sw tcpdump -i sw0 -n udp port 4789\n\
             The bridges forget a MAC after 5 minutes without traffic; FRR then withdraws\n\
             that VM's type-2 route (watch `show routes`) until the VM sends again.\n\
             Logs: {logs}\n\
             Remove it with:\n\
             \x20 cargo run --example lab -- --clean",
            bin = lab.bin.display(),
            sock = sock.display(),
            logs = lab_dir().display(),
        ));
        std::mem::forget(lab);
    } else {
        heading(7, "Clean up");
        say("Stopping FRR and vxbgp, deleting the 8 namespaces and FRR's directories ...");
        drop(lab);
        let left = existing_lab_namespaces();
        let dirs_left: Vec<PathBuf> = frr_dirs().into_iter().filter(|d| d.exists()).collect();
        let _ = std::fs::remove_dir_all(lab_dir());
        let clean = left.is_empty() && dirs_left.is_empty();
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
