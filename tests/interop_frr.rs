//! vxbgp with real FRR 8.4 (zebra + bgpd, `advertise-all-vni` on a real vxlan device),
//! in network namespaces this test creates and removes.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// An FRR VTEP in `host`: bridge br42 with vxlan42 (VNI 42) and one VM whose MAC FRR
/// learns and advertises.
fn frr_vtep(u: &Underlay, i: usize, asn: u32, neighbors: &[(&str, u32)]) -> (Frr, Netns) {
    let host = u.host(i);
    bridge_add(host, "br42");
    vxlan_add(host, "vxlan42", 42, u.ip(i), "br42");
    let vm_mac = format!("02:00:00:00:{:02x}:{:02x}", u.subnet(), i + 1);
    let vm_ip = format!("{}/24", u.overlay_ip(i as u8 + 1));
    let vm = vm_add(host, "br42", "vm0", &vm_ip, Some(&vm_mac));
    let frr = Frr::start(
        host,
        &frr_evpn_config(&format!("frr{i}"), asn, &u.ip(i).to_string(), neighbors),
    );
    (frr, vm)
}

fn vm_mac(u: &Underlay, i: usize) -> String {
    format!("02:00:00:00:{:02x}:{:02x}", u.subnet(), i + 1)
}

/// FRR's EVPN table as (prefix, path) pairs.
fn frr_paths(frr: &Frr) -> Vec<(String, Value)> {
    let rib = frr.evpn_rib_json();
    let mut out = Vec::new();
    for (rd, v) in rib.as_object().into_iter().flatten() {
        if !rd.contains(':') {
            continue;
        }
        for (prefix, p) in v.as_object().into_iter().flatten() {
            for path in p["paths"].as_array().into_iter().flatten().flat_map(|a| {
                // FRR nests paths as [[path]] in 8.4.
                a.as_array().cloned().unwrap_or_else(|| vec![a.clone()])
            }) {
                out.push((prefix.clone(), path));
            }
        }
    }
    out
}

fn frr_has(frr: &Frr, prefix: &str) -> bool {
    frr_paths(frr).iter().any(|(p, _)| p == prefix)
}

fn fdb(host: &Netns) -> String {
    host.run_ok("bridge fdb show dev vxlan42")
}

/// (a) vxbgp <-> FRR, iBGP, both directions, down to FRR's kernel FDB.
#[test]
fn ibgp_with_frr_both_directions() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let (frr_ip, vx_ip) = (u.ip(0).to_string(), u.ip(1).to_string());
    let (frr, _vm) = frr_vtep(&u, 0, 65001, &[(&vx_ip, 65001)]);
    let vx = Vxbgp::start(u.host(1), &["--asn", "65001", "--neighbor", &frr_ip]);
    vx.wait_established(&frr_ip, WAIT);

    // FRR's type-3 and the type-2 of the MAC on its bridge reach vxbgp, with RD, RT,
    // VNI, next hop, encapsulation and PMSI as FRR sent them.
    let imet = format!("[3]:[0]:[32]:[{frr_ip}]");
    assert!(
        wait_until(WAIT, || vx.route(&imet).is_some()),
        "no {imet}: {:?}\n{}",
        vx.prefixes(),
        vx.logs()
    );
    let r = vx.route(&imet).unwrap();
    assert_eq!(r["type"], 3);
    assert_eq!(r["vni"], 42);
    assert!(
        r["rd"].as_str().unwrap().starts_with(&format!("{frr_ip}:")),
        "{r:#}"
    );
    let p = &r["paths"][0];
    assert_eq!(p["next_hop"], frr_ip.as_str());
    assert_eq!(p["encapsulation"], "vxlan");
    assert_eq!(p["route_targets"], serde_json::json!(["65001:42"]));
    assert_eq!(p["pmsi"]["tunnel_type_name"], "ingress-replication");
    assert_eq!(p["pmsi"]["endpoint"], frr_ip.as_str());
    assert_eq!(p["pmsi"]["vni"], 42);
    assert_eq!(p["peer"], frr_ip.as_str());

    let mac = vm_mac(&u, 0);
    let mac_route = format!("[2]:[0]:[48]:[{mac}]");
    assert!(
        wait_until(WAIT, || vx.route(&mac_route).is_some()),
        "no {mac_route}: {:?}",
        vx.prefixes()
    );
    let r = vx.route(&mac_route).unwrap();
    assert_eq!(r["vni"], 42);
    assert_eq!(r["mac"], mac.as_str());
    assert_eq!(r["paths"][0]["next_hop"], frr_ip.as_str());
    assert_eq!(
        r["paths"][0]["route_targets"],
        serde_json::json!(["65001:42"])
    );

    // Routes added with `vxbgp route add` reach FRR's table and FRR's kernel FDB.
    let remote_mac = format!("02:00:00:01:{:02x}:50", u.subnet());
    let remote_ip = u.overlay_ip(50).to_string();
    vx.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &remote_mac,
        "--ip",
        &remote_ip,
    ]);
    vx.cli(&["route", "add", "multicast", "--vni", "42"]);
    let want2 = format!("[2]:[0]:[48]:[{remote_mac}]:[32]:[{remote_ip}]");
    let want3 = format!("[3]:[0]:[32]:[{vx_ip}]");
    assert!(
        wait_until(WAIT, || frr_has(&frr, &want2) && frr_has(&frr, &want3)),
        "FRR lacks {want2} or {want3}: {:#}",
        frr.evpn_rib_json()
    );
    let host = u.host(0);
    assert!(
        wait_until(WAIT, || fdb(host)
            .lines()
            .any(|l| l.starts_with(&remote_mac)
                && l.contains(&format!("dst {vx_ip}"))
                && l.contains("extern_learn"))),
        "FRR did not install {remote_mac} dst {vx_ip} extern_learn:\n{}",
        fdb(host)
    );
    assert!(
        wait_until(WAIT, || fdb(host).lines().any(|l| l
            .starts_with("00:00:00:00:00:00")
            && l.contains(&format!("dst {vx_ip}")))),
        "FRR has no flood entry towards {vx_ip}:\n{}",
        fdb(host)
    );

    // Withdrawal removes it from FRR and its kernel.
    vx.cli(&[
        "route",
        "del",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &remote_mac,
        "--ip",
        &remote_ip,
    ]);
    assert!(
        wait_until(WAIT, || !frr_has(&frr, &want2)),
        "FRR still has {want2}"
    );
    assert!(
        wait_until(WAIT, || !fdb(host).contains(&remote_mac)),
        "FRR kept {remote_mac} in its FDB:\n{}",
        fdb(host)
    );
}
