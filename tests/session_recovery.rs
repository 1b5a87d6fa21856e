//! Sessions between vxbgp and real FRR 8.4 (iBGP, FRR a VTEP with a VM so it has routes)
//! that break and come back: a peer restart, a TCP reset, a hold-timer expiry and a vxbgp
//! restart. After each, the routes that went away while the session was down are back.
//! Between two vxbgp VTEPs: a peer killed with SIGKILL and a TCP reset, each ending with
//! the kernel entries back and the overlay carrying pings.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn frr_config(u: &Underlay) -> String {
    let vx_ip = u.ip(1).to_string();
    frr_evpn_config("frr0", 65001, &u.ip(0).to_string(), &[(&vx_ip, 65001)])
}

/// Host 0: an FRR VTEP (br42, vxlan42, one VM) peering with host 1 over iBGP.
fn frr_vtep(u: &Underlay) -> (Frr, Netns) {
    let host = u.host(0);
    bridge_add(host, "br42");
    vxlan_add(host, "vxlan42", 42, u.ip(0), "br42");
    let vm_ip = format!("{}/24", u.overlay_ip(1));
    let vm = vm_add(host, "br42", "vm0", &vm_ip, Some(&vm_mac(u)));
    (Frr::start(host, &frr_config(u)), vm)
}

fn vm_mac(u: &Underlay) -> String {
    format!("02:00:00:00:{:02x}:01", u.subnet())
}

/// The prefixes FRR originates: its type-3 and the type-2 of its VM's MAC.
fn frr_routes(u: &Underlay) -> [String; 2] {
    [
        format!("[3]:[0]:[32]:[{}]", u.ip(0)),
        format!("[2]:[0]:[48]:[{}]", vm_mac(u)),
    ]
}

/// Whether vxbgp has every route FRR originates, learnt from FRR.
fn vx_has_frr_routes(vx: &Vxbgp, u: &Underlay) -> bool {
    let routes = vx.routes();
    let frr_ip = u.ip(0).to_string();
    frr_routes(u).iter().all(|want| {
        routes.iter().any(|r| {
            r["prefix"] == want.as_str()
                && r["paths"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["peer"] == frr_ip.as_str()))
        })
    })
}

/// Whether vxbgp has none of the routes learnt from FRR.
fn vx_has_no_frr_routes(vx: &Vxbgp, u: &Underlay) -> bool {
    let frr_ip = u.ip(0).to_string();
    !vx.routes().iter().any(|r| {
        r["paths"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["peer"] == frr_ip.as_str()))
    })
}

/// Prefixes in FRR's EVPN table.
fn frr_prefixes(frr: &Frr) -> Vec<String> {
    frr.evpn_prefixes().into_iter().map(|(_, p)| p).collect()
}

fn fdb(host: &Netns) -> String {
    host.run_ok("bridge fdb show dev vxlan42")
}

fn fdb_has(host: &Netns, mac: &str, dst: &str) -> bool {
    fdb(host)
        .lines()
        .any(|l| l.starts_with(mac) && l.contains(&format!("dst {dst} ")))
}

fn neighbor(vx: &Vxbgp, addr: &str) -> Value {
    vx.neighbor(addr)
        .unwrap_or_else(|| panic!("vxbgp has no neighbour {addr}"))
}

/// The lab every test starts from: FRR (host 0) and vxbgp (host 1, extra daemon flags
/// `extra`) Established, and FRR's routes in vxbgp.
fn lab(extra: &[&str]) -> (Underlay, Frr, Netns, Vxbgp) {
    let u = Underlay::new(2);
    let (frr, vm) = frr_vtep(&u);
    let frr_ip = u.ip(0).to_string();
    let mut args = vec!["--asn", "65001", "--neighbor", &frr_ip];
    args.extend_from_slice(extra);
    let vx = Vxbgp::start(u.host(1), &args);
    vx.wait_established(&frr_ip, WAIT);
    frr.wait_established(&u.ip(1).to_string(), WAIT);
    assert!(
        wait_until(WAIT, || vx_has_frr_routes(&vx, &u)),
        "vxbgp lacks FRR's routes {:?}: {:?}\n{}",
        frr_routes(&u),
        vx.prefixes(),
        vx.logs()
    );
    assert_eq!(neighbor(&vx, &frr_ip)["established_transitions"], 1);
    (u, frr, vm, vx)
}

/// Waits for the session to come back after an outage and checks it counts as a second
/// Established and that FRR's routes are back.
fn assert_recovered(u: &Underlay, frr: &Frr, vx: &Vxbgp) {
    let frr_ip = u.ip(0).to_string();
    vx.wait_established(&frr_ip, WAIT);
    frr.wait_established(&u.ip(1).to_string(), WAIT);
    // Down once and up again; a connection collision while both sides reconnect may
    // add a transition (both sides connect at once), which is no failure: the user
    // checks that the session is up and the routes are back.
    let n = neighbor(vx, &frr_ip);
    assert!(n["established_transitions"].as_u64() >= Some(2), "{n:#}");
    assert!(
        wait_until(WAIT, || vx_has_frr_routes(vx, u)
            && neighbor(vx, &frr_ip)["state"] == "Established"),
        "FRR's routes did not come back: {:?}\n{}",
        vx.prefixes(),
        vx.logs()
    );
    let n = neighbor(vx, &frr_ip);
    assert!(n["prefixes_received"].as_u64() >= Some(2), "{n:#}");
    assert_eq!(n["last_error"], Value::Null, "{n:#}");
}

/// FRR (zebra + bgpd) stops and starts again: vxbgp leaves Established and drops FRR's
/// routes while it is down, then relearns them.
#[test]
fn peer_restart_withdraws_then_relearns() {
    if !require_root() {
        return;
    }
    let (u, frr, _vm, vx) = lab(&[]);
    let frr_ip = u.ip(0).to_string();

    drop(frr); // stops bgpd and zebra
    assert!(
        wait_until(WAIT, || vx.neighbor_state(&frr_ip).as_deref()
            != Some("Established")),
        "vxbgp still Established with a stopped FRR: {:#}",
        neighbor(&vx, &frr_ip)
    );
    assert!(
        wait_until(WAIT, || vx_has_no_frr_routes(&vx, &u)),
        "vxbgp kept FRR's routes after FRR went away: {:?}",
        vx.prefixes()
    );
    // Still down (nothing to connect to) and still without FRR's routes a moment later.
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(vx.neighbor_state(&frr_ip).as_deref(), Some("Established"));
    assert!(vx_has_no_frr_routes(&vx, &u), "{:?}", vx.prefixes());

    let frr = Frr::start(u.host(0), &frr_config(&u));
    assert_recovered(&u, &frr, &vx);
}

/// The TCP connection is reset under BGP (`ss -K` destroys the socket and sends RST)
/// without a NOTIFICATION: the session comes back and so do the routes.
#[test]
fn tcp_reset_brings_the_session_back() {
    if !require_root() {
        return;
    }
    let (u, frr, _vm, vx) = lab(&[]);
    let frr_ip = u.ip(0).to_string();

    let killed = u.host(1).run_ok(&format!(
        "ss -K -t -n dst {frr_ip} and '( dport = :179 or sport = :179 )'"
    ));
    assert!(
        killed.contains(&frr_ip),
        "ss -K found no BGP connection to {frr_ip}:\n{killed}"
    );
    assert!(
        wait_until(WAIT, || neighbor(&vx, &frr_ip)["last_error"] != Value::Null
            || neighbor(&vx, &frr_ip)["established_transitions"] == 2),
        "vxbgp did not notice the reset: {:#}",
        neighbor(&vx, &frr_ip)
    );
    assert_recovered(&u, &frr, &vx);
}

/// With 9 s hold time, the path between FRR and vxbgp is blackholed both ways: vxbgp's
/// hold timer expires, the session goes down and FRR's routes go; when the path is back,
/// so are the session and the routes.
#[test]
fn hold_timer_expiry_brings_the_session_back() {
    if !require_root() {
        return;
    }
    let (u, frr, _vm, vx) = lab(&["--hold-time", "9"]);
    let (frr_ip, vx_ip) = (u.ip(0).to_string(), u.ip(1).to_string());
    assert_eq!(neighbor(&vx, &frr_ip)["hold_time"], 9);

    u.host(0)
        .run_ok(&format!("ip route add blackhole {vx_ip}/32"));
    u.host(1)
        .run_ok(&format!("ip route add blackhole {frr_ip}/32"));
    let cut = Instant::now();
    assert!(
        wait_until(WAIT, || vx.neighbor_state(&frr_ip).as_deref()
            != Some("Established")),
        "vxbgp still Established 30 s after the path was cut: {:#}",
        neighbor(&vx, &frr_ip)
    );
    let down_after = cut.elapsed();
    // Hold time 9 s, counted from the last KEEPALIVE (at most 3 s before the cut).
    assert!(
        down_after >= Duration::from_secs(5) && down_after <= Duration::from_secs(15),
        "session went down {down_after:?} after the cut, expected the 9 s hold time"
    );
    let n = neighbor(&vx, &frr_ip);
    let err = n["last_error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        err.contains("hold"),
        "last_error should name the hold timer: {n:#}"
    );
    assert!(
        wait_until(WAIT, || vx_has_no_frr_routes(&vx, &u)),
        "vxbgp kept FRR's routes after the hold timer expired: {:?}",
        vx.prefixes()
    );

    u.host(0)
        .run_ok(&format!("ip route del blackhole {vx_ip}/32"));
    u.host(1)
        .run_ok(&format!("ip route del blackhole {frr_ip}/32"));
    assert_recovered(&u, &frr, &vx);
}

/// vxbgp stops (SIGTERM): FRR sees a Cease and removes vxbgp's routes from its table and
/// its kernel FDB. vxbgp starts again and re-originates: FRR has them again.
#[test]
fn vxbgp_restart_frr_relearns() {
    if !require_root() {
        return;
    }
    let (u, frr, _vm, mut vx) = lab(&[]);
    let vx_ip = u.ip(1).to_string();
    let host = u.host(0);
    let mac = format!("02:00:00:04:{:02x}:01", u.subnet());
    let ip = u.overlay_ip(70).to_string();
    let t2 = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
    let t3 = format!("[3]:[0]:[32]:[{vx_ip}]");
    let originate = |vx: &Vxbgp| {
        vx.cli(&[
            "route", "add", "mac-ip", "--vni", "42", "--mac", &mac, "--ip", &ip,
        ]);
        vx.cli(&["route", "add", "multicast", "--vni", "42"]);
    };
    let frr_has_all = |frr: &Frr| {
        let p = frr_prefixes(frr);
        p.contains(&t2) && p.contains(&t3)
    };
    let fdb_has_all = || fdb_has(host, &mac, &vx_ip) && fdb_has(host, "00:00:00:00:00:00", &vx_ip);

    originate(&vx);
    assert!(
        wait_until(WAIT, || frr_has_all(&frr)),
        "FRR lacks {t2} or {t3}: {:?}",
        frr_prefixes(&frr)
    );
    assert!(wait_until(WAIT, fdb_has_all), "FDB:\n{}", fdb(host));

    vx.stop(false);
    assert!(
        wait_until(WAIT, || frr.neighbor_state(&vx_ip).as_deref()
            != Some("Established")),
        "FRR still Established with a stopped vxbgp"
    );
    let nb = frr.vtysh_json(&format!("show bgp neighbors {vx_ip} json"));
    let nb = &nb[&vx_ip];
    let reason = format!(
        "{} {}",
        nb["lastResetDueTo"].as_str().unwrap_or_default(),
        nb["lastNotificationReason"].as_str().unwrap_or_default()
    );
    assert!(
        reason.contains("Cease"),
        "FRR should have received a Cease NOTIFICATION: {nb:#}"
    );
    assert!(
        wait_until(WAIT, || {
            let p = frr_prefixes(&frr);
            !p.contains(&t2) && !p.contains(&t3)
        }),
        "FRR kept vxbgp's routes: {:?}",
        frr_prefixes(&frr)
    );
    assert!(
        wait_until(WAIT, || {
            let f = fdb(host);
            !f.contains(&mac) && !f.contains(&format!("dst {vx_ip} "))
        }),
        "FRR kept vxbgp's entries in its FDB:\n{}",
        fdb(host)
    );

    vx.restart(u.host(1));
    vx.wait_established(&u.ip(0).to_string(), WAIT);
    originate(&vx);
    assert!(
        wait_until(WAIT, || frr_has_all(&frr)),
        "FRR did not relearn {t2} / {t3}: {:?}",
        frr_prefixes(&frr)
    );
    assert!(wait_until(WAIT, fdb_has_all), "FDB:\n{}", fdb(host));
    // FRR's own routes reach the new vxbgp too.
    assert!(
        wait_until(WAIT, || vx_has_frr_routes(&vx, &u)),
        "{:?}",
        vx.prefixes()
    );
}

/// Two vxbgp VTEPs peering directly, one VM each. What a user checks after each fault:
/// the session is back, each kernel points the other VM's MAC at the other VTEP again,
/// and the VMs ping each other.
/// - B's vxbgp killed with SIGKILL: A leaves Established and removes what B's routes
///   put in its kernel; B started again: everything comes back.
/// - the TCP connection reset under BGP (`ss -K`, no NOTIFICATION): the same.
#[test]
fn vxbgp_peer_killed_and_tcp_reset_the_overlay_comes_back() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let s = u.subnet();
    let mac = |i: usize| format!("02:00:00:{s:02x}:08:{:02x}", i + 1);
    let ips = [u.ip(0).to_string(), u.ip(1).to_string()];
    let vms: Vec<Netns> = (0..2)
        .map(|i| {
            let cidr = format!("{}/24", u.overlay_ip(i as u8 + 1));
            vtep_with_vm(u.host(i), 42, &ips[i], &cidr, &mac(i))
        })
        .collect();
    let mut vx: Vec<Vxbgp> = (0..2)
        .map(|i| {
            let args = [
                "--asn",
                "65001",
                "--neighbor",
                &ips[1 - i],
                "--hold-time",
                "9",
            ];
            Vxbgp::start(u.host(i), &args)
        })
        .collect();
    let overlay_works = |vx: &[Vxbgp], what: &str| {
        for (i, v) in vx.iter().enumerate() {
            v.wait_established(&ips[1 - i], WAIT);
        }
        for (i, vm) in vms.iter().enumerate() {
            // Speaking once makes the VM known to its host.
            let _ = vm.ping(&u.overlay_ip(2 - i as u8).to_string(), 1);
        }
        for (i, v) in vx.iter().enumerate() {
            let (host, other) = (u.host(i), 1 - i);
            assert!(
                wait_until(WAIT, || vxlan_fdb_has(host, &mac(other), &ips[other])
                    && vxlan_fdb_has(host, "00:00:00:00:00:00", &ips[other])),
                "{what}: host {i} does not point at the other VTEP:\n{}\n{}",
                vxlan_fdb(host),
                v.logs()
            );
        }
        let dst = u.overlay_ip(2).to_string();
        assert!(
            wait_until(WAIT, || vms[0].ping(&dst, 1)),
            "{what}: VM A cannot ping VM B:\n{}\n{}",
            vxlan_fdb(u.host(0)),
            vx[0].logs()
        );
    };
    overlay_works(&vx, "at start");

    vx[1].stop(true);
    assert!(
        wait_until(WAIT, || vx[0].neighbor_state(&ips[1]).as_deref()
            != Some("Established")),
        "A still Established with a killed peer"
    );
    assert!(
        wait_until(WAIT, || !vxlan_fdb_has(u.host(0), &mac(1), &ips[1])
            && !vxlan_fdb_has(u.host(0), "00:00:00:00:00:00", &ips[1])),
        "A kept the killed peer's entries:\n{}",
        vxlan_fdb(u.host(0))
    );
    vx[1].restart(u.host(1));
    overlay_works(&vx, "after B was killed and restarted");

    let killed = u.host(0).run_ok(&format!(
        "ss -K -t -n dst {} and '( dport = :179 or sport = :179 )'",
        ips[1]
    ));
    assert!(
        killed.contains(&ips[1]),
        "ss -K found no BGP connection:\n{killed}"
    );
    let before = vx[0]
        .neighbor(&ips[1])
        .map(|n| n["established_transitions"].clone());
    assert!(
        wait_until(WAIT, || {
            let n = vx[0].neighbor(&ips[1]);
            n.as_ref().map(|n| n["established_transitions"].clone()) != before
                || n.is_some_and(|n| n["state"] != "Established")
        }),
        "A did not notice the reset: {:?}",
        vx[0].neighbor(&ips[1])
    );
    overlay_works(&vx, "after a TCP reset");
}
