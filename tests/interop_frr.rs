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
    paths_of(&frr.evpn_rib_json())
}

/// (prefix, path) pairs of an FRR EVPN table dump (`show bgp l2vpn evpn [route detail] json`).
fn paths_of(rib: &Value) -> Vec<(String, Value)> {
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

/// FRR's detailed paths for `prefix` (`show bgp l2vpn evpn route detail json`, which has
/// `originatorId` and `clusterList`), under any RD.
fn frr_detail_paths(frr: &Frr, prefix: &str) -> Vec<Value> {
    paths_of(&frr.vtysh_json("show bgp l2vpn evpn route detail json"))
        .into_iter()
        .filter(|(p, _)| p == prefix)
        .map(|(_, path)| path)
        .collect()
}

/// Whether `host`'s vxlan42 FDB has `mac` towards `dst`.
fn fdb_has(host: &Netns, mac: &str, dst: &str) -> bool {
    fdb(host)
        .lines()
        .any(|l| l.starts_with(mac) && l.contains(&format!("dst {dst} ")))
}

/// (b) vxbgp as route reflector (listen-range, dynamic neighbours) for two FRR VTEPs that
/// are not peered with each other: each learns the other's routes with ORIGINATOR_ID and
/// CLUSTER_LIST, programs its FDB, their VMs ping each other across the overlay, and a
/// withdrawal on one reaches the other.
#[test]
fn vxbgp_reflects_between_two_frr_clients() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(3);
    let rr_ip = u.ip(0).to_string();
    let (ip1, ip2) = (u.ip(1).to_string(), u.ip(2).to_string());
    let range = format!("198.19.{}.0/24", u.subnet());
    let vx = Vxbgp::start(
        u.host(0),
        &[
            "--asn",
            "65001",
            "--route-reflector",
            "--router-id",
            &rr_ip,
            "--listen-range",
            &range,
        ],
    );
    let (frr1, vm1) = frr_vtep(&u, 1, 65001, &[(&rr_ip, 65001)]);
    let (frr2, _vm2) = frr_vtep(&u, 2, 65001, &[(&rr_ip, 65001)]);
    frr1.wait_established(&rr_ip, WAIT);
    frr2.wait_established(&rr_ip, WAIT);
    vx.wait_established(&ip1, WAIT);
    vx.wait_established(&ip2, WAIT);

    let (mac1, mac2) = (vm_mac(&u, 1), vm_mac(&u, 2));
    let both = [
        (&frr1, u.host(1), &ip2, &mac2),
        (&frr2, u.host(2), &ip1, &mac1),
    ];
    for (me, host, other_ip, other_mac) in both {
        let imet = format!("[3]:[0]:[32]:[{other_ip}]");
        let mac_route = format!("[2]:[0]:[48]:[{other_mac}]");
        assert!(
            wait_until(WAIT, || frr_has(me, &imet) && frr_has(me, &mac_route)),
            "FRR {} lacks {imet} or {mac_route}: {:#}\nvxbgp has {:?}\n{}",
            me.ns(),
            me.evpn_rib_json(),
            vx.prefixes(),
            vx.logs()
        );
        // Reflected, not originated by vxbgp: ORIGINATOR_ID is the other FRR, CLUSTER_LIST
        // holds vxbgp's cluster id (its router id), the next hop is the other VTEP.
        for prefix in [&imet, &mac_route] {
            let paths = frr_detail_paths(me, prefix);
            assert_eq!(paths.len(), 1, "{prefix} in {}: {paths:#?}", me.ns());
            let p = &paths[0];
            assert_eq!(p["originatorId"], other_ip.as_str(), "{prefix}: {p:#}");
            let clusters = p["clusterList"]["list"].as_array().cloned();
            assert_eq!(
                clusters,
                Some(vec![Value::from(rr_ip.as_str())]),
                "{prefix}: {p:#}"
            );
            assert_eq!(p["nexthops"][0]["ip"], other_ip.as_str(), "{prefix}: {p:#}");
            assert_eq!(p["peer"]["peerId"], rr_ip.as_str(), "{prefix}: {p:#}");
            assert!(
                p["extendedCommunity"]["string"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("RT:65001:42"),
                "{prefix}: {p:#}"
            );
        }
        // The other VTEP's MAC and the flood entry are in this host's kernel.
        assert!(
            wait_until(WAIT, || fdb_has(host, other_mac, other_ip)
                && fdb_has(host, "00:00:00:00:00:00", other_ip)),
            "{} has no {other_mac} / flood entry dst {other_ip}:\n{}",
            me.ns(),
            fdb(host)
        );
    }

    // vxbgp shows both FRRs as dynamic route-reflector clients with routes both ways.
    let n = vx.json(&["show", "neighbors"]);
    assert_eq!(n["local"]["route_reflector"], true, "{n:#}");
    assert_eq!(n["local"]["cluster_id"], rr_ip.as_str(), "{n:#}");
    for ip in [&ip1, &ip2] {
        let nb = vx
            .neighbor(ip)
            .unwrap_or_else(|| panic!("no neighbor {ip}: {n:#}"));
        assert_eq!(nb["kind"], "ibgp-client", "{nb:#}");
        assert_eq!(nb["dynamic"], true, "{nb:#}");
        assert_eq!(nb["state"], "Established", "{nb:#}");
        assert_eq!(nb["remote_as"], 65001, "{nb:#}");
        assert_eq!(nb["remote_id"], ip.as_str(), "{nb:#}");
        assert!(nb["prefixes_received"].as_u64() >= Some(2), "{nb:#}");
        assert!(nb["prefixes_sent"].as_u64() >= Some(2), "{nb:#}");
    }

    // The overlay works end to end: VM on FRR1 pings VM on FRR2.
    let vm2_ip = u.overlay_ip(3).to_string();
    assert!(
        wait_until(WAIT, || vm1.ping(&vm2_ip, 1)),
        "VM on {} cannot ping {vm2_ip}\nFDB 1:\n{}\nFDB 2:\n{}",
        frr1.ns(),
        fdb(u.host(1)),
        fdb(u.host(2))
    );

    // Withdrawal: the VM leaves FRR1's bridge; FRR1 withdraws its MAC, vxbgp reflects the
    // withdrawal, FRR2 drops it from its table and kernel. The type-3 stays.
    u.host(1).run_ok("ip link del vm0");
    let mac1_route = format!("[2]:[0]:[48]:[{mac1}]");
    assert!(
        wait_until(WAIT, || !frr_has(&frr2, &mac1_route)),
        "FRR2 still has {mac1_route}; vxbgp has {:?}",
        vx.prefixes()
    );
    assert!(
        !vx.prefixes().contains(&mac1_route),
        "vxbgp kept {mac1_route}"
    );
    assert!(
        wait_until(WAIT, || !fdb(u.host(2)).contains(&mac1)),
        "FRR2 kept {mac1} in its FDB:\n{}",
        fdb(u.host(2))
    );
    assert!(frr_has(&frr2, &format!("[3]:[0]:[32]:[{ip1}]")));
    assert!(fdb_has(u.host(2), "00:00:00:00:00:00", &ip1));
}

/// An FRR route reflector (no VTEP) for iBGP clients in AS `asn`.
fn frr_rr_config(router_id: &str, asn: u32, clients: &[&str]) -> String {
    let mut c = format!(
        "frr defaults traditional\nhostname rr\n!\nrouter bgp {asn}\n bgp router-id {router_id}\n no bgp default ipv4-unicast\n"
    );
    for addr in clients {
        c.push_str(&format!(
            " neighbor {addr} remote-as {asn}\n neighbor {addr} timers 3 9\n neighbor {addr} timers connect 1\n"
        ));
    }
    c.push_str(" !\n address-family l2vpn evpn\n");
    for addr in clients {
        c.push_str(&format!(
            "  neighbor {addr} activate\n  neighbor {addr} route-reflector-client\n"
        ));
    }
    c.push_str(" exit-address-family\nexit\n!\n");
    c
}

/// `vxbgp route add|del mac-ip --vni 42 --mac MAC --ip IP`.
fn mac_ip(vx: &Vxbgp, op: &str, mac: &str, ip: &str) {
    vx.cli(&[
        "route", op, "mac-ip", "--vni", "42", "--mac", mac, "--ip", ip,
    ]);
}

/// (c) FRR as route reflector for two vxbgp clients: what one originates reaches the other
/// with its next hop unchanged, ORIGINATOR_ID = the originator's router id and a
/// CLUSTER_LIST; and withdrawals go through.
#[test]
fn frr_reflects_between_two_vxbgp_clients() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(3);
    let rr_ip = u.ip(0).to_string();
    let (ip1, ip2) = (u.ip(1).to_string(), u.ip(2).to_string());
    let rr = Frr::start(u.host(0), &frr_rr_config(&rr_ip, 65001, &[&ip1, &ip2]));
    let vx1 = Vxbgp::start(u.host(1), &["--asn", "65001", "--neighbor", &rr_ip]);
    let vx2 = Vxbgp::start(u.host(2), &["--asn", "65001", "--neighbor", &rr_ip]);
    vx1.wait_established(&rr_ip, WAIT);
    vx2.wait_established(&rr_ip, WAIT);
    rr.wait_established(&ip1, WAIT);
    rr.wait_established(&ip2, WAIT);

    let routes = |i: u8| {
        let mac = format!("02:00:00:02:{:02x}:{i:02x}", u.subnet());
        let ip = u.overlay_ip(100 + i).to_string();
        (mac, ip)
    };
    let (mac1, oip1) = routes(1);
    let (mac2, oip2) = routes(2);
    for (vx, mac, ip) in [(&vx1, &mac1, &oip1), (&vx2, &mac2, &oip2)] {
        mac_ip(vx, "add", mac, ip);
        vx.cli(&["route", "add", "multicast", "--vni", "42"]);
    }

    for (me, other, other_ip, mac, ip) in [
        (&vx2, &vx1, &ip1, &mac1, &oip1),
        (&vx1, &vx2, &ip2, &mac2, &oip2),
    ] {
        let t2 = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
        let t3 = format!("[3]:[0]:[32]:[{other_ip}]");
        assert!(
            wait_until(WAIT, || me.route(&t2).is_some() && me.route(&t3).is_some()),
            "no {t2} / {t3}: {:?}\nFRR RR: {:#}\n{}",
            me.prefixes(),
            rr.evpn_rib_json(),
            me.logs()
        );
        for prefix in [&t2, &t3] {
            let r = me.route(prefix).unwrap();
            let paths = r["paths"].as_array().cloned().unwrap_or_default();
            assert_eq!(paths.len(), 1, "{r:#}");
            let p = &paths[0];
            assert_eq!(p["best"], true, "{r:#}");
            assert_eq!(p["peer"], rr_ip.as_str(), "{r:#}");
            assert_eq!(
                p["next_hop"],
                other_ip.as_str(),
                "next hop rewritten: {r:#}"
            );
            assert_eq!(p["originator_id"], other_ip.as_str(), "{r:#}");
            assert_eq!(
                p["cluster_list"],
                serde_json::json!([rr_ip.as_str()]),
                "{r:#}"
            );
            assert_eq!(p["route_targets"], serde_json::json!(["65001:42"]), "{r:#}");
            assert_eq!(p["as_path"], "", "{r:#}");
            assert_eq!(r["vni"], 42, "{r:#}");
            assert_eq!(r["rd"], format!("{other_ip}:42").as_str(), "{r:#}");
        }
        // The originator sees its own routes only as local ones (the reflector does not
        // send them back, or vxbgp drops them by ORIGINATOR_ID).
        let own = other.route(&t2).expect("originated route");
        assert_eq!(own["paths"].as_array().map(Vec::len), Some(1), "{own:#}");
        assert_eq!(own["paths"][0]["peer"], "local", "{own:#}");
    }

    // A withdrawal on vxbgp1 reaches vxbgp2; vxbgp2's own route and vxbgp1's type-3 stay.
    mac_ip(&vx1, "del", &mac1, &oip1);
    let t2 = format!("[2]:[0]:[48]:[{mac1}]:[32]:[{oip1}]");
    assert!(
        wait_until(WAIT, || vx2.route(&t2).is_none()),
        "vxbgp2 still has {t2}"
    );
    assert!(vx2.route(&format!("[3]:[0]:[32]:[{ip1}]")).is_some());
    assert!(vx1
        .route(&format!("[2]:[0]:[48]:[{mac2}]:[32]:[{oip2}]"))
        .is_some());
    // And the other way.
    mac_ip(&vx2, "del", &mac2, &oip2);
    let t2 = format!("[2]:[0]:[48]:[{mac2}]:[32]:[{oip2}]");
    assert!(
        wait_until(WAIT, || vx1.route(&t2).is_none()),
        "vxbgp1 still has {t2}"
    );
}

/// (e) eBGP: FRR in AS 65001 (a VTEP) and vxbgp in AS 65002 with the neighbour from a
/// config file. Each side's routes reach the other with the other's AS in the path and
/// the next hop as originated; FRR installs vxbgp's MACs in its kernel.
#[test]
fn ebgp_with_frr_both_directions() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let (frr_ip, vx_ip) = (u.ip(0).to_string(), u.ip(1).to_string());
    let (frr, _vm) = frr_vtep(&u, 0, 65001, &[(&vx_ip, 65002)]);
    let conf = u.host(1).log_dir().join("vxbgp.toml");
    std::fs::write(
        &conf,
        format!("[[neighbor]]\naddress = \"{frr_ip}\"\nremote-as = 65001\n"),
    )
    .expect("write vxbgp.toml");
    let vx = Vxbgp::start(
        u.host(1),
        &["--asn", "65002", "--config", conf.to_str().unwrap()],
    );
    vx.wait_established(&frr_ip, WAIT);
    frr.wait_established(&vx_ip, WAIT);
    let nb = vx.neighbor(&frr_ip).unwrap();
    assert_eq!(nb["kind"], "ebgp", "{nb:#}");
    assert_eq!(nb["remote_as"], 65001, "{nb:#}");

    // FRR -> vxbgp: AS path 65001, next hop FRR's VTEP.
    let imet = format!("[3]:[0]:[32]:[{frr_ip}]");
    let mac_route = format!("[2]:[0]:[48]:[{}]", vm_mac(&u, 0));
    assert!(
        wait_until(WAIT, || vx.route(&imet).is_some()
            && vx.route(&mac_route).is_some()),
        "vxbgp lacks {imet} or {mac_route}: {:?}\n{}",
        vx.prefixes(),
        vx.logs()
    );
    for prefix in [&imet, &mac_route] {
        let r = vx.route(prefix).unwrap();
        let p = &r["paths"][0];
        assert_eq!(p["as_path"], "65001", "{r:#}");
        assert_eq!(p["next_hop"], frr_ip.as_str(), "{r:#}");
        assert_eq!(p["peer"], frr_ip.as_str(), "{r:#}");
        assert_eq!(p["best"], true, "{r:#}");
        assert_eq!(p["route_targets"], serde_json::json!(["65001:42"]), "{r:#}");
    }

    // vxbgp -> FRR, with FRR's RT so that FRR imports it into VNI 42. One MAC with the
    // default next hop (vxbgp's address), one with a third-party next hop on the same
    // segment: neither vxbgp nor FRR may rewrite it.
    let third = format!("198.19.{}.200", u.subnet());
    let mac_a = format!("02:00:00:03:{:02x}:0a", u.subnet());
    let mac_b = format!("02:00:00:03:{:02x}:0b", u.subnet());
    let ip_a = u.overlay_ip(60).to_string();
    let ip_b = u.overlay_ip(61).to_string();
    let rt = ["--rt", "65001:42"];
    let add = |extra: &[&str]| {
        let mut a = vec!["route", "add"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&rt);
        vx.cli(&a);
    };
    add(&["mac-ip", "--vni", "42", "--mac", &mac_a, "--ip", &ip_a]);
    add(&[
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        &mac_b,
        "--ip",
        &ip_b,
        "--next-hop",
        &third,
    ]);
    add(&["multicast", "--vni", "42"]);
    let want = [
        (format!("[2]:[0]:[48]:[{mac_a}]:[32]:[{ip_a}]"), &vx_ip),
        (format!("[2]:[0]:[48]:[{mac_b}]:[32]:[{ip_b}]"), &third),
        (format!("[3]:[0]:[32]:[{vx_ip}]"), &vx_ip),
    ];
    assert!(
        wait_until(WAIT, || want.iter().all(|(p, _)| frr_has(&frr, p))),
        "FRR lacks some of {:?}: {:#}",
        want.iter().map(|w| &w.0).collect::<Vec<_>>(),
        frr.evpn_rib_json()
    );
    for (prefix, nh) in &want {
        let paths: Vec<Value> = frr_paths(&frr)
            .into_iter()
            .filter(|(p, _)| p == prefix)
            .map(|(_, p)| p)
            .collect();
        assert_eq!(paths.len(), 1, "{prefix}: {paths:#?}");
        let p = &paths[0];
        assert_eq!(p["path"], "65002", "{prefix}: {p:#}");
        assert_eq!(p["pathFrom"], "external", "{prefix}: {p:#}");
        assert_eq!(p["nexthops"][0]["ip"], nh.as_str(), "{prefix}: {p:#}");
    }
    let host = u.host(0);
    assert!(
        wait_until(WAIT, || fdb_has(host, &mac_a, &vx_ip)
            && fdb_has(host, &mac_b, &third)
            && fdb_has(host, "00:00:00:00:00:00", &vx_ip)),
        "FRR did not install {mac_a} dst {vx_ip}, {mac_b} dst {third} and the flood entry:\n{}",
        fdb(host)
    );

    // Withdrawal over eBGP.
    vx.cli(&[
        "route", "del", "mac-ip", "--vni", "42", "--mac", &mac_a, "--ip", &ip_a, "--rt", "65001:42",
    ]);
    assert!(
        wait_until(WAIT, || !frr_has(&frr, &want[0].0)),
        "FRR still has {}",
        want[0].0
    );
    assert!(
        wait_until(WAIT, || !fdb(host).contains(&mac_a)),
        "FRR kept {mac_a} in its FDB:\n{}",
        fdb(host)
    );
    assert!(fdb_has(host, &mac_b, &third));
}
