//! (d) vxbgp with real GoBGP 3.10 (`gobgpd`, driven with the `gobgp` CLI), both directions,
//! type-2 and type-3, iBGP and eBGP; and vxbgp as route reflector between two GoBGPs for
//! the route types it does not interpret (1, 4, 5). In namespaces this test creates.
//!
//! What GoBGP sends (seen with `gobgp global rib -a evpn -j` and vxbgp's view):
//! - locally added routes carry ORIGIN incomplete, the EXT_COMMUNITIES given (`rt`,
//!   `encap vxlan` = tunnel type 8) and over iBGP LOCAL_PREF 100; next hop = its address;
//! - `multicast` WITHOUT `pmsi ...` carries NO PMSI_TUNNEL attribute at all (so the route
//!   has no VNI); with `pmsi ingress-repl 42 <ip>` it carries flags 0, tunnel type 6,
//!   label field 00 00 2a (the VNI, RFC 8365) and the IPv4 tunnel endpoint.
//!
//! IPv6 addresses in type-2 NLRI are 2001:db8::/32 documentation values: they are only
//! data inside BGP messages, never configured on an interface.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::gobgp::path_attr;
use support::*;

const WAIT: Duration = Duration::from_secs(30);

/// GoBGP route key of a type-2 route (`ip` "<nil>" for MAC-only).
fn macadv_key(rd: &str, mac: &str, ip: &str) -> String {
    format!("[type:macadv][rd:{rd}][etag:0][mac:{mac}][ip:{ip}]")
}

fn multicast_key(rd: &str, ip: &str) -> String {
    format!("[type:multicast][rd:{rd}][etag:0][ip:{ip}]")
}

/// `gobgp global rib add/del -a evpn macadv ...` arguments.
fn macadv_args<'a>(mac: &'a str, ip: &'a str, rd: &'a str) -> Vec<&'a str> {
    vec![
        "macadv", mac, ip, "etag", "0", "label", "42", "rd", rd, "rt", "65001:42", "encap", "vxlan",
    ]
}

/// The route-target strings of GoBGP's EXT_COMMUNITIES attribute, and whether it has
/// the VXLAN encapsulation (type 3 subtype 12, tunnel type 8).
fn gobgp_ext(path: &Value) -> (Vec<String>, bool) {
    let ext = path_attr(path, 16).unwrap_or_else(|| panic!("no EXT_COMMUNITIES: {path:#}"));
    let list = ext["value"].as_array().cloned().unwrap_or_default();
    let rts = list
        .iter()
        .filter(|c| c["type"] == 0 && c["subtype"] == 2)
        .filter_map(|c| c["value"].as_str().map(String::from))
        .collect();
    let vxlan = list
        .iter()
        .any(|c| c["type"] == 3 && c["subtype"] == 12 && c["tunnel_type"] == 8);
    (rts, vxlan)
}

/// The checks common to every route vxbgp originated, as GoBGP received it.
fn assert_from_vxbgp(path: &Value, vx_ip: &str) {
    let mp = path_attr(path, 14).unwrap_or_else(|| panic!("no MP_REACH: {path:#}"));
    assert_eq!(mp["nexthop"], vx_ip, "next hop: {path:#}");
    assert_eq!(
        (mp["afi"].as_u64(), mp["safi"].as_u64()),
        (Some(25), Some(70))
    );
    assert_eq!(path["neighbor-ip"], vx_ip, "{path:#}");
    let (rts, vxlan) = gobgp_ext(path);
    assert_eq!(rts, vec!["65001:42".to_string()], "{path:#}");
    assert!(vxlan, "no VXLAN encapsulation: {path:#}");
    assert_eq!(
        path_attr(path, 1).map(|a| &a["value"]),
        Some(&json!(0)),
        "ORIGIN igp"
    );
}

/// GoBGP and vxbgp in an underlay of two; iBGP AS 65001 unless `ebgp`.
struct Pair {
    u: Underlay,
    vx: Vxbgp,
    gobgp: Gobgp,
}

impl Pair {
    fn new(ebgp: bool) -> Pair {
        let u = Underlay::new(2);
        let (vx_ip, go_ip) = (u.ip(0).to_string(), u.ip(1).to_string());
        let go_as = if ebgp { 65002 } else { 65001 };
        let gobgp = Gobgp::start(
            u.host(1),
            &gobgp_evpn_config(go_as, &go_ip, &[(&vx_ip, 65001)]),
        );
        let vx = if ebgp {
            let path = u.host(0).log_dir().join("vxbgp.toml");
            std::fs::write(
                &path,
                format!("[[neighbor]]\naddress = \"{go_ip}\"\nremote-as = 65002\n"),
            )
            .expect("write vxbgp.toml");
            let conf = path.to_string_lossy().into_owned();
            Vxbgp::start(u.host(0), &["--asn", "65001", "--config", &conf])
        } else {
            Vxbgp::start(u.host(0), &["--asn", "65001", "--neighbor", &go_ip])
        };
        vx.wait_established(&go_ip, WAIT);
        gobgp.wait_established(&vx_ip, WAIT);
        Pair { u, vx, gobgp }
    }

    fn vx_ip(&self) -> String {
        self.u.ip(0).to_string()
    }

    fn go_ip(&self) -> String {
        self.u.ip(1).to_string()
    }

    fn wait_vx(&self, prefix: &str) -> Value {
        assert!(
            wait_until(WAIT, || self.vx.route(prefix).is_some()),
            "vxbgp never got {prefix}: {:?}\n{}",
            self.vx.prefixes(),
            self.gobgp.cli(&["global", "rib", "-a", "evpn"])
        );
        self.vx.route(prefix).expect("route")
    }

    fn wait_vx_gone(&self, prefix: &str) {
        assert!(
            wait_until(WAIT, || self.vx.route(prefix).is_none()),
            "vxbgp kept {prefix} after GoBGP withdrew it: {:#}",
            self.vx.route(prefix).unwrap_or_default()
        );
    }

    fn wait_go(&self, key: &str) -> Value {
        assert!(
            wait_until(WAIT, || self.gobgp.evpn_path(key).is_some()),
            "GoBGP never got {key}:\n{}\nvxbgp:\n{}",
            self.gobgp.cli(&["global", "rib", "-a", "evpn"]),
            self.vx.logs()
        );
        self.gobgp.evpn_path(key).expect("path")
    }

    fn wait_go_gone(&self, key: &str) {
        assert!(
            wait_until(WAIT, || self.gobgp.evpn_path(key).is_none()),
            "GoBGP kept {key} after vxbgp withdrew it:\n{}",
            self.gobgp.cli(&["global", "rib", "-a", "evpn"])
        );
    }
}

/// A type-2 route from GoBGP, as vxbgp shows it: RD, RT, VNI 42, MAC, IP, next hop
/// (GoBGP's address), VXLAN encapsulation, ORIGIN incomplete.
fn check_vx_type2(r: &Value, go_ip: &str, rd: &str, mac: &str, ip: Option<&str>) {
    assert_eq!(r["type"], 2, "{r:#}");
    assert_eq!(r["rd"], rd, "{r:#}");
    assert_eq!(r["eth_tag"], 0, "{r:#}");
    assert_eq!(r["mac"], mac, "{r:#}");
    assert_eq!(r["ip"], ip.map_or(Value::Null, |i| json!(i)), "{r:#}");
    assert_eq!(r["vni"], 42, "{r:#}");
    let paths = r["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1, "{r:#}");
    let p = &paths[0];
    assert_eq!(p["peer"], go_ip, "{r:#}");
    assert_eq!(p["next_hop"], go_ip, "{r:#}");
    assert_eq!(p["route_targets"], json!(["65001:42"]), "{r:#}");
    assert_eq!(p["encapsulation"], "vxlan", "{r:#}");
    assert_eq!(p["labels"], json!([42]), "{r:#}");
    assert_eq!(p["esi"], "00:00:00:00:00:00:00:00:00:00", "{r:#}");
    assert_eq!(p["origin"], "incomplete", "{r:#}");
    assert_eq!(p["pmsi"], Value::Null, "{r:#}");
    assert_eq!(p["best"], true, "{r:#}");
}

/// GoBGP → vxbgp, iBGP: macadv with IPv4, MAC-only, with IPv6; multicast without and
/// with PMSI; then withdrawal of each.
#[test]
fn gobgp_to_vxbgp_type2_and_type3() {
    if !require_root() {
        return;
    }
    let t = Pair::new(false);
    let go_ip = t.go_ip();
    let rd = format!("{go_ip}:42");
    let s = t.u.subnet();
    let mac4 = format!("02:00:00:02:{s:02x}:01");
    let mac0 = format!("02:00:00:02:{s:02x}:02");
    let mac6 = format!("02:00:00:02:{s:02x}:03");
    let ip4 = t.u.overlay_ip(61).to_string();
    let ip6 = format!("2001:db8:{s:x}::63");

    t.gobgp.add_evpn(&macadv_args(&mac4, &ip4, &rd));
    t.gobgp.add_evpn(&macadv_args(&mac0, "0.0.0.0", &rd));
    t.gobgp.add_evpn(&macadv_args(&mac6, &ip6, &rd));
    let p4 = format!("[2]:[0]:[48]:[{mac4}]:[32]:[{ip4}]");
    let p0 = format!("[2]:[0]:[48]:[{mac0}]");
    let p6 = format!("[2]:[0]:[48]:[{mac6}]:[128]:[{ip6}]");
    check_vx_type2(&t.wait_vx(&p4), &go_ip, &rd, &mac4, Some(&ip4));
    check_vx_type2(&t.wait_vx(&p0), &go_ip, &rd, &mac0, None);
    check_vx_type2(&t.wait_vx(&p6), &go_ip, &rd, &mac6, Some(&ip6));

    // The table shows GoBGP's ORIGIN incomplete as "?", not as "i" (IGP).
    let table = t.vx.cli(&["show", "routes"]);
    let line = table
        .lines()
        .find(|l| l.contains(&p4))
        .unwrap_or_else(|| panic!("{p4} not in the table:\n{table}"));
    assert_eq!(
        line.split_whitespace().nth(7),
        Some("?"),
        "origin column: {line}"
    );

    // `multicast` without `pmsi`: GoBGP sends no PMSI_TUNNEL, so the route has an
    // originator but no VNI.
    let mcast = [
        "multicast",
        go_ip.as_str(),
        "etag",
        "0",
        "rd",
        rd.as_str(),
        "rt",
        "65001:42",
        "encap",
        "vxlan",
    ];
    t.gobgp.add_evpn(&mcast);
    let p3 = format!("[3]:[0]:[32]:[{go_ip}]");
    let r = t.wait_vx(&p3);
    assert_eq!(r["type"], 3, "{r:#}");
    assert_eq!(r["rd"], rd.as_str(), "{r:#}");
    assert_eq!(r["originator"], go_ip.as_str(), "{r:#}");
    let p = &r["paths"][0];
    assert_eq!(p["next_hop"], go_ip.as_str(), "{r:#}");
    assert_eq!(p["route_targets"], json!(["65001:42"]), "{r:#}");
    assert_eq!(p["encapsulation"], "vxlan", "{r:#}");
    assert_eq!(p["pmsi"], Value::Null, "GoBGP sent a PMSI after all: {r:#}");
    assert_eq!(r["vni"], Value::Null, "{r:#}");

    // With `pmsi ingress-repl 42 <ip>`: ingress replication to GoBGP, VNI 42. Same NLRI,
    // so this replaces the path.
    let mut with_pmsi = mcast.to_vec();
    with_pmsi.extend_from_slice(&["pmsi", "ingress-repl", "42", go_ip.as_str()]);
    t.gobgp.add_evpn(&with_pmsi);
    assert!(
        wait_until(WAIT, || t
            .vx
            .route(&p3)
            .is_some_and(|r| r["paths"][0]["pmsi"].is_object())),
        "no PMSI on {p3}: {:#}",
        t.vx.route(&p3).unwrap_or_default()
    );
    let r = t.vx.route(&p3).expect("type 3");
    assert_eq!(r["paths"].as_array().map(Vec::len), Some(1), "{r:#}");
    let pmsi = &r["paths"][0]["pmsi"];
    assert_eq!(pmsi["tunnel_type"], 6, "{r:#}");
    assert_eq!(pmsi["tunnel_type_name"], "ingress-replication", "{r:#}");
    assert_eq!(pmsi["flags"], 0, "{r:#}");
    assert_eq!(pmsi["vni"], 42, "{r:#}");
    assert_eq!(pmsi["label"], 42, "{r:#}");
    assert_eq!(pmsi["endpoint"], go_ip.as_str(), "{r:#}");
    assert_eq!(r["vni"], 42, "{r:#}");
    assert_eq!(r["paths"][0]["encapsulation"], "vxlan", "{r:#}");

    // `del` on GoBGP withdraws each from vxbgp.
    t.gobgp.del_evpn(&macadv_args(&mac4, &ip4, &rd));
    t.wait_vx_gone(&p4);
    assert!(t.vx.route(&p0).is_some() && t.vx.route(&p6).is_some());
    t.gobgp.del_evpn(&macadv_args(&mac0, "0.0.0.0", &rd));
    t.gobgp.del_evpn(&macadv_args(&mac6, &ip6, &rd));
    t.gobgp.del_evpn(&with_pmsi);
    for p in [&p0, &p6, &p3] {
        t.wait_vx_gone(p);
    }
    assert!(t.vx.routes().is_empty(), "{:?}", t.vx.prefixes());
    assert_eq!(t.vx.neighbor_state(&go_ip).as_deref(), Some("Established"));
}

/// vxbgp → GoBGP, iBGP: `route add mac-ip` with IPv4, IPv6 and MAC-only, and `route add
/// multicast`, as GoBGP's JSON shows them; then `route del`.
#[test]
fn vxbgp_to_gobgp_type2_and_type3() {
    if !require_root() {
        return;
    }
    let t = Pair::new(false);
    let vx_ip = t.vx_ip();
    let rd = format!("{vx_ip}:42");
    let s = t.u.subnet();
    let mac4 = format!("02:00:00:03:{s:02x}:01");
    let mac6 = format!("02:00:00:03:{s:02x}:02");
    let mac0 = format!("02:00:00:03:{s:02x}:03");
    let ip4 = t.u.overlay_ip(71).to_string();
    let ip6 = format!("2001:db8:{s:x}::72");
    let add = |mac: &str, ip: Option<&str>| {
        let mut a = vec!["route", "add", "mac-ip", "--vni", "42", "--mac", mac];
        if let Some(ip) = ip {
            a.extend_from_slice(&["--ip", ip]);
        }
        t.vx.cli(&a);
    };
    add(&mac4, Some(&ip4));
    add(&mac6, Some(&ip6));
    add(&mac0, None);
    t.vx.cli(&["route", "add", "multicast", "--vni", "42"]);

    let k4 = macadv_key(&rd, &mac4, &ip4);
    let k6 = macadv_key(&rd, &mac6, &ip6);
    let k0 = macadv_key(&rd, &mac0, "<nil>");
    let k3 = multicast_key(&rd, &vx_ip);
    for (key, mac, ip) in [
        (&k4, &mac4, ip4.as_str()),
        (&k6, &mac6, ip6.as_str()),
        (&k0, &mac0, "<nil>"),
    ] {
        let path = t.wait_go(key);
        assert_from_vxbgp(&path, &vx_ip);
        let v = &path["nlri"]["value"];
        assert_eq!(path["nlri"]["type"], 2, "{path:#}");
        assert_eq!(
            v["rd"],
            json!({"type": 1, "admin": vx_ip, "assigned": 42}),
            "{path:#}"
        );
        assert_eq!(v["mac"], mac.as_str(), "{path:#}");
        assert_eq!(v["ip"], ip, "{path:#}");
        assert_eq!(v["etag"], 0, "{path:#}");
        assert_eq!(v["esi"], "single-homed", "{path:#}");
        assert_eq!(v["labels"], json!([42]), "{path:#}");
        assert_eq!(path_attr(&path, 5).map(|a| &a["value"]), Some(&json!(100)));
        assert!(path_attr(&path, 22).is_none(), "PMSI on a type-2: {path:#}");
    }
    let path = t.wait_go(&k3);
    assert_from_vxbgp(&path, &vx_ip);
    assert_eq!(path["nlri"]["type"], 3, "{path:#}");
    let v = &path["nlri"]["value"];
    assert_eq!(
        v["rd"],
        json!({"type": 1, "admin": vx_ip, "assigned": 42}),
        "{path:#}"
    );
    assert_eq!(v["ip"], vx_ip.as_str(), "{path:#}");
    assert_eq!(v["etag"], 0, "{path:#}");
    let pmsi = path_attr(&path, 22).unwrap_or_else(|| panic!("no PMSI: {path:#}"));
    assert_eq!(pmsi["tunnel-type"], 6, "{path:#}");
    assert_eq!(pmsi["label"], 42, "{path:#}");
    assert_eq!(pmsi["tunnel-id"], vx_ip.as_str(), "{path:#}");
    assert_eq!(pmsi["is-leaf-info-required"], false, "{path:#}");

    // Withdrawal, one at a time: the others stay.
    t.vx.cli(&[
        "route", "del", "mac-ip", "--vni", "42", "--mac", &mac4, "--ip", &ip4,
    ]);
    t.wait_go_gone(&k4);
    for k in [&k6, &k0, &k3] {
        assert!(t.gobgp.evpn_path(k).is_some(), "{k} went too");
    }
    t.vx.cli(&[
        "route", "del", "mac-ip", "--vni", "42", "--mac", &mac6, "--ip", &ip6,
    ]);
    t.vx.cli(&["route", "del", "mac-ip", "--vni", "42", "--mac", &mac0]);
    t.vx.cli(&["route", "del", "multicast", "--vni", "42"]);
    for k in [&k6, &k0, &k3] {
        t.wait_go_gone(k);
    }
    assert!(
        t.gobgp.evpn_routes().is_empty(),
        "{:?}",
        t.gobgp.evpn_routes()
    );
}

/// eBGP (GoBGP AS 65002, vxbgp AS 65001 from its config file), both directions: each
/// side sees the other's AS in the AS_PATH and its address as next hop.
#[test]
fn ebgp_with_gobgp_as_path() {
    if !require_root() {
        return;
    }
    let t = Pair::new(true);
    let (vx_ip, go_ip) = (t.vx_ip(), t.go_ip());
    let n = t.vx.neighbor(&go_ip).expect("neighbor");
    assert_eq!(n["kind"], "ebgp", "{n:#}");
    assert_eq!(n["remote_as"], 65002, "{n:#}");

    // GoBGP → vxbgp.
    let s = t.u.subnet();
    let rd = format!("{go_ip}:42");
    let mac = format!("02:00:00:04:{s:02x}:01");
    let ip = t.u.overlay_ip(81).to_string();
    t.gobgp.add_evpn(&macadv_args(&mac, &ip, &rd));
    let p = format!("[2]:[0]:[48]:[{mac}]:[32]:[{ip}]");
    let r = t.wait_vx(&p);
    let path = &r["paths"][0];
    assert_eq!(path["as_path"], "65002", "{r:#}");
    assert_eq!(path["next_hop"], go_ip.as_str(), "{r:#}");
    assert_eq!(path["route_targets"], json!(["65001:42"]), "{r:#}");
    assert_eq!(r["vni"], 42, "{r:#}");

    // vxbgp → GoBGP.
    let mac2 = format!("02:00:00:04:{s:02x}:02");
    let ip2 = t.u.overlay_ip(82).to_string();
    t.vx.cli(&[
        "route", "add", "mac-ip", "--vni", "42", "--mac", &mac2, "--ip", &ip2,
    ]);
    t.vx.cli(&["route", "add", "multicast", "--vni", "42"]);
    let vrd = format!("{vx_ip}:42");
    for key in [macadv_key(&vrd, &mac2, &ip2), multicast_key(&vrd, &vx_ip)] {
        let path = t.wait_go(&key);
        assert_from_vxbgp(&path, &vx_ip);
        let asp = path_attr(&path, 2).unwrap_or_else(|| panic!("no AS_PATH: {path:#}"));
        let asns: Vec<u64> = asp["as_paths"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|seg| seg["asns"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_u64())
            .collect();
        assert_eq!(asns, vec![65001], "{path:#}");
        assert!(
            path_attr(&path, 5).is_none(),
            "LOCAL_PREF over eBGP: {path:#}"
        );
    }
    t.gobgp.del_evpn(&macadv_args(&mac, &ip, &rd));
    t.wait_vx_gone(&p);
    t.vx.cli(&[
        "route", "del", "mac-ip", "--vni", "42", "--mac", &mac2, "--ip", &ip2,
    ]);
    t.wait_go_gone(&macadv_key(&vrd, &mac2, &ip2));
}

/// vxbgp as route reflector between two GoBGP clients: type-5 (prefix), type-1 (A-D) and
/// type-4 (ES) routes, which vxbgp keeps opaque, reach the second GoBGP with the same
/// NLRI values and extended communities, plus ORIGINATOR_ID and CLUSTER_LIST.
#[test]
fn reflects_type1_4_5_between_gobgps_intact() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(3);
    let (rr, g1_ip, g2_ip) = (
        u.ip(0).to_string(),
        u.ip(1).to_string(),
        u.ip(2).to_string(),
    );
    let g1 = Gobgp::start(
        u.host(1),
        &gobgp_evpn_config(65001, &g1_ip, &[(&rr, 65001)]),
    );
    let g2 = Gobgp::start(
        u.host(2),
        &gobgp_evpn_config(65001, &g2_ip, &[(&rr, 65001)]),
    );
    let vx = Vxbgp::start(
        u.host(0),
        &[
            "--asn",
            "65001",
            "--route-reflector",
            "--neighbor",
            &g1_ip,
            "--neighbor",
            &g2_ip,
        ],
    );
    vx.wait_established(&g1_ip, WAIT);
    vx.wait_established(&g2_ip, WAIT);
    g2.wait_established(&rr, WAIT);

    let s = u.subnet();
    let prefix = format!("{}/24", u.overlay_ip(0));
    let rd5 = format!("{g1_ip}:5");
    let rd1 = format!("{g1_ip}:6");
    let rd4 = format!("{g1_ip}:7");
    let sysmac = format!("02:00:00:05:{s:02x}:aa");
    let rmac = format!("02:00:00:05:{s:02x}:bb");
    let routes: Vec<Vec<String>> = vec![
        format!("prefix {prefix} gw {g1_ip} etag 0 label 42 rd {rd5} rt 65001:5 encap vxlan router-mac {rmac}"),
        format!("a-d esi LACP {sysmac} 1 etag 0 label 42 rd {rd1} rt 65001:42 encap vxlan"),
        format!("esi {g1_ip} esi LACP {sysmac} 1 rd {rd4} rt 65001:42 encap vxlan"),
        format!("macadv 02:00:00:05:{s:02x}:01 {} etag 0 label 42 rd {g1_ip}:42 rt 65001:42 encap vxlan", u.overlay_ip(91)),
    ]
    .into_iter()
    .map(|r| r.split_whitespace().map(String::from).collect())
    .collect();
    for r in &routes {
        let args: Vec<&str> = r.iter().map(String::as_str).collect();
        g1.add_evpn(&args);
    }
    // vxbgp holds all four, type 1/4/5 as opaque routes.
    assert!(
        wait_until(WAIT, || vx.routes().len() == 4),
        "vxbgp: {:?}",
        vx.prefixes()
    );
    let types: Vec<u64> = vx
        .routes()
        .iter()
        .filter_map(|r| r["type"].as_u64())
        .collect();
    for ty in [1, 2, 4, 5] {
        assert!(types.contains(&ty), "no type {ty} in {types:?}");
    }

    let sent = g1.rib_evpn_json();
    let sent = sent.as_object().expect("object");
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert!(
        wait_until(WAIT, || g2.evpn_routes().len() == 4),
        "g2 got {:?}\n{}",
        g2.evpn_routes(),
        vx.logs()
    );
    let got = g2.rib_evpn_json();
    for (key, paths) in sent {
        let a = &paths[0];
        let b = got
            .get(key)
            .and_then(|p| p.get(0))
            .unwrap_or_else(|| panic!("g2 lacks {key}: {got:#}"));
        // Same NLRI (every field GoBGP decodes, labels and ESI included) and the same
        // extended communities (router's MAC, ES-import, RT, encapsulation).
        assert_eq!(a["nlri"], b["nlri"], "{key}");
        assert_eq!(path_attr(a, 16), path_attr(b, 16), "{key}");
        let mp = path_attr(b, 14).expect("MP_REACH");
        assert_eq!(
            mp["nexthop"],
            g1_ip.as_str(),
            "{key}: next hop unchanged: {b:#}"
        );
        assert_eq!(b["neighbor-ip"], rr.as_str(), "{key}");
        // RFC 4456: ORIGINATOR_ID = g1's router id, CLUSTER_LIST = [cluster id].
        let orig = path_attr(b, 9).unwrap_or_else(|| panic!("no ORIGINATOR_ID: {b:#}"));
        assert_eq!(orig["value"], g1_ip.as_str(), "{b:#}");
        let cl = path_attr(b, 10).unwrap_or_else(|| panic!("no CLUSTER_LIST: {b:#}"));
        assert_eq!(cl["value"], json!([rr]), "{b:#}");
    }

    // Withdrawals are reflected too.
    for r in &routes {
        let args: Vec<&str> = r.iter().map(String::as_str).collect();
        g1.del_evpn(&args);
    }
    assert!(
        wait_until(WAIT, || g2.evpn_routes().is_empty()),
        "g2 kept {:?}",
        g2.evpn_routes()
    );
    assert!(vx.routes().is_empty(), "{:?}", vx.prefixes());
}
