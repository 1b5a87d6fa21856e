//! Tests of the namespace harness in `tests/support` itself: the underlay really forwards, the
//! vxlan/bridge devices are built as SPEC.md says, FRR and GoBGP really exchange EVPN routes
//! through it, and everything (namespaces, processes, FRR's files) is gone afterwards — also
//! after a panic. Needs root; under CI=true a missing root is a failure, not a skip.

mod support;

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn assert_namespaces_gone(names: &[String]) {
    let list = netns_list();
    for n in names {
        assert!(
            !list.contains(n),
            "namespace {n} still exists after drop: {list:?}"
        );
    }
}

#[test]
fn unique_names_fit_ifnamsiz_and_differ() {
    let a = unique("vxlan");
    let b = unique("vxlan");
    assert_ne!(a, b);
    assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
    assert!(a.starts_with("vxlan-"));
}

#[test]
fn underlay_hosts_ping_each_other() {
    if !require_root() {
        return;
    }
    let names;
    {
        let u = Underlay::new(3);
        names = u.names();
        for n in &names {
            assert!(netns_exists(n), "{n} missing from `ip netns list`");
        }
        for i in 0..3 {
            let dst = u.ip((i + 1) % 3).to_string();
            assert!(
                u.host(i).ping(&dst, 2),
                "{} cannot ping {dst}",
                u.host(i).name()
            );
        }
        // The address plan: 198.19.<subnet>.<i+1>/24 on u0.
        let addrs = u.host(1).run_ok("ip -4 -o addr show dev u0");
        assert!(
            addrs.contains(&format!("198.19.{}.2/24", u.subnet())),
            "{addrs}"
        );
    }
    assert_namespaces_gone(&names);
}

/// The vxlan device and its bridge port carry exactly the settings SPEC.md requires, and a VM
/// behind the bridge reaches the bridge's address.
#[test]
fn vtep_devices_match_spec() {
    if !require_root() {
        return;
    }
    let names;
    {
        let u = Underlay::new(1);
        let host = u.host(0);
        bridge_add(host, "br42");
        vxlan_add(host, "vxlan42", 42, u.ip(0), "br42");
        let vm = vm_add(
            host,
            "br42",
            "vm0",
            &format!("{}/24", u.overlay_ip(2)),
            Some("02:00:00:00:00:02"),
        );
        host.addr_add("br42", &format!("{}/24", u.overlay_ip(1)));
        names = [u.names(), vec![vm.name().to_string()]].concat();

        let link: Value =
            serde_json::from_str(&host.run_ok("ip -d -j link show dev vxlan42")).unwrap();
        let info = &link[0]["linkinfo"]["info_data"];
        assert_eq!(info["id"], 42, "{info}");
        assert_eq!(info["port"], 4789, "{info}");
        assert_eq!(info["learning"], false, "{info}");
        assert_eq!(info["local"], u.ip(0).to_string(), "{info}");
        assert!(
            info.get("group").is_none() && info.get("remote").is_none(),
            "{info}"
        );
        assert_eq!(link[0]["master"], "br42");

        let port: Value =
            serde_json::from_str(&host.run_ok("bridge -d -j link show dev vxlan42")).unwrap();
        assert_eq!(port[0]["learning"], false, "{port}");
        assert_eq!(port[0]["neigh_suppress"], true, "{port}");

        assert!(
            vm.ping(&u.overlay_ip(1).to_string(), 2),
            "VM cannot reach the bridge address"
        );
        let fdb = host.run_ok("bridge fdb show dev vm0");
        assert!(
            fdb.contains("02:00:00:00:00:02"),
            "VM MAC not learned on vm0: {fdb}"
        );
    }
    assert_namespaces_gone(&names);
}

/// A panicking test still removes its namespace and kills what it spawned, including a
/// process that detached itself (found through `ip netns pids`).
#[test]
fn namespace_and_processes_removed_on_panic() {
    if !require_root() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let ns = Netns::new("pan");
        let child = ns.spawn("sleeper", &["sleep", "600"]);
        ns.run_ok("setsid sleep 601 >/dev/null 2>&1 < /dev/null &");
        assert!(wait_until(Duration::from_secs(5), || ns.pids().len() >= 2));
        tx.send((ns.name().to_string(), ns.pids(), child.pid()))
            .unwrap();
        panic!("deliberate panic to test cleanup");
    })
    .join();
    assert!(joined.is_err(), "the thread should have panicked");
    let (name, pids, child_pid) = rx.recv().unwrap();
    assert!(pids.contains(&child_pid));
    assert_namespaces_gone(std::slice::from_ref(&name));
    // The logs of a panicking test are kept on purpose; this panic was deliberate.
    assert!(
        log_dir_for(&name).exists(),
        "logs of the panicking test were not kept"
    );
    let _ = std::fs::remove_dir_all(log_dir_for(&name));
    for pid in pids {
        assert!(
            !support::proc::pid_alive(pid),
            "process {pid} survived its namespace"
        );
    }
}

/// FRR and GoBGP peer over the underlay: FRR's type-3 for VNI 42 shows in GoBGP's RIB, GoBGP's
/// macadv route shows in FRR's table and FRR installs it in the kernel (SPEC.md: remote MACs
/// as `extern_learn` FDB entries).
#[test]
fn frr_and_gobgp_exchange_evpn_routes() {
    if !require_root() {
        return;
    }
    let names;
    let frr_ns;
    {
        let u = Underlay::new(2);
        let (frr_ip, gobgp_ip) = (u.ip(0).to_string(), u.ip(1).to_string());
        let host = u.host(0);
        bridge_add(host, "br42");
        vxlan_add(host, "vxlan42", 42, u.ip(0), "br42");
        frr_ns = host.name().to_string();
        names = u.names();

        let t0 = Instant::now();
        let frr = Frr::start(
            host,
            &support::frr::evpn_config("vtep1", 65001, &frr_ip, &[(&gobgp_ip, 65001)]),
        );
        let gobgp = Gobgp::start(
            u.host(1),
            &support::gobgp::evpn_config(65001, &gobgp_ip, &[(&frr_ip, 65001)]),
        );
        let started = t0.elapsed();
        frr.wait_established(&gobgp_ip, Duration::from_secs(30));
        gobgp.wait_established(&frr_ip, Duration::from_secs(10));
        let established = t0.elapsed();

        // FRR's type-3 (RD router-id:n, originator = its VTEP address) reaches GoBGP.
        let imet_from_frr =
            |rib: &Value| {
                rib.as_object().into_iter().flatten().any(|(_, paths)| {
                    paths.as_array().into_iter().flatten().any(|p| {
                        p["nlri"]["type"] == 3 && p["nlri"]["value"]["ip"] == frr_ip.as_str()
                    })
                })
            };
        assert!(
            wait_until(Duration::from_secs(20), || imet_from_frr(
                &gobgp.rib_evpn_json()
            )),
            "no type-3 from FRR in GoBGP: {:#}",
            gobgp.rib_evpn_json()
        );
        let imet_seen = t0.elapsed();

        // GoBGP's MAC/IP route reaches FRR's BGP table and the kernel.
        let mac = "02:00:00:00:42:03";
        let ip = u.overlay_ip(3).to_string();
        let rd = format!("{gobgp_ip}:42");
        gobgp.add_evpn(&[
            "macadv", mac, &ip, "etag", "0", "label", "42", "rd", &rd, "rt", "65001:42", "encap",
            "vxlan",
        ]);
        let want = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
        assert!(
            wait_until(Duration::from_secs(20), || frr
                .evpn_prefixes()
                .iter()
                .any(|(r, p)| *r == rd && *p == want)),
            "{want} (RD {rd}) not in FRR: {:?}",
            frr.evpn_prefixes()
        );
        let mac_seen = t0.elapsed();
        assert!(
            wait_until(Duration::from_secs(10), || {
                let fdb = host.run_ok("bridge fdb show dev vxlan42");
                fdb.lines()
                    .any(|l| l.starts_with(mac) && l.contains(&format!("dst {gobgp_ip}")))
            }),
            "FRR did not install {mac} dst {gobgp_ip}: {}",
            host.run_ok("bridge fdb show dev vxlan42")
        );
        eprintln!(
            "timings: daemons started {started:?}, established {established:?}, type-3 in GoBGP {imet_seen:?}, \
             type-2 in FRR {mac_seen:?}"
        );
    }
    assert_namespaces_gone(&names);
    assert!(
        !std::path::Path::new(&format!("/etc/frr/{frr_ns}")).exists(),
        "FRR config dir left behind"
    );
    assert!(
        !std::path::Path::new(&format!("/var/run/frr/{frr_ns}")).exists(),
        "FRR run dir left behind"
    );
    // No daemon of this namespace survives (their PID files are gone with the run dir, so look
    // for the pathspace argument on command lines).
    let ps = String::from_utf8_lossy(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !ps.lines()
            .any(|l| l.split_whitespace().any(|arg| arg == frr_ns)),
        "a process of {frr_ns} survived:\n{ps}"
    );
}
