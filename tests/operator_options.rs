//! Options operators set on real hosts, checked end to end in namespaces: the overlay
//! must carry pings and the kernel and routes must say what the options asked for.
//!
//! - an IPv6 underlay: sessions over IPv6, IPv6 VTEP addresses (`--vtep-ip`) as next
//!   hops of type-2 and type-3 routes and as `dst` of the vxlan FDB entries;
//! - a VTEP address other than the router id, a route reflector with `--cluster-id`
//!   and `--listen-range`, everyone on a BGP port of its own (`--port`).

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use support::*;

const VNI: u32 = 42;
const WAIT: Duration = Duration::from_secs(20);

fn routes(v: &Vxbgp) -> Vec<Value> {
    v.json(&["show", "routes"])["routes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The route of `kind` ("2" or "3") whose prefix mentions `needle`.
fn route_with(v: &Vxbgp, kind: &str, needle: &str) -> Option<Value> {
    routes(v).into_iter().find(|r| {
        r["prefix"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("[{kind}]")) && p.contains(needle))
    })
}

/// Two VTEPs on an IPv6-only underlay (fd00:19:<s>::1 and ::2), vxbgp peering over
/// IPv6 and advertising IPv6 VTEP addresses: the routes carry them as next hops and
/// type-3 originators, the kernel points the flood entry and the remote VM's MAC at
/// them, and the VMs (IPv4 overlay) ping each other over VXLAN on IPv6.
#[test]
fn ipv6_underlay_peers_and_next_hops_carry_the_overlay() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let s = u.subnet();
    // In the form vxbgp and iproute2 print.
    let v6 = |i: usize| {
        let a: std::net::Ipv6Addr = format!("fd00:19:{s:x}::{}", i + 1).parse().unwrap();
        a.to_string()
    };
    let mac = |i: usize| format!("02:00:00:{s:02x}:06:{:02x}", i + 1);
    let mut vms = Vec::new();
    for i in 0..2 {
        let h = u.host(i);
        h.run_ok(&format!("ip -6 addr add {}/64 dev u0 nodad", v6(i)));
        let cidr = format!("{}/24", u.overlay_ip(i as u8 + 1));
        vms.push(vtep_with_vm(h, VNI, &v6(i), &cidr, &mac(i)));
    }
    let daemons: Vec<Vxbgp> = (0..2)
        .map(|i| {
            let (me, peer, id) = (v6(i), v6(1 - i), u.ip(i).to_string());
            let args = [
                "--asn",
                "65001",
                "--router-id",
                &id,
                "--neighbor",
                &peer,
                "--vtep-ip",
                &me,
            ];
            Vxbgp::start(u.host(i), &args)
        })
        .collect();
    for (i, d) in daemons.iter().enumerate() {
        d.wait_established(&v6(1 - i), WAIT);
    }
    // Each VM speaks once so that its host learns it.
    for (i, vm) in vms.iter().enumerate() {
        let _ = vm.ping(&u.overlay_ip(2 - i as u8).to_string(), 1);
    }
    let a = &daemons[0];
    let ok = wait_until(WAIT, || {
        vxlan_fdb_has(u.host(0), "00:00:00:00:00:00", &v6(1))
            && vxlan_fdb_has(u.host(0), &mac(1), &v6(1))
    });
    assert!(
        ok,
        "A's vxlan FDB does not point at B's IPv6 VTEP:\n{}\nroutes: {:#?}\nlogs:\n{}",
        vxlan_fdb(u.host(0)),
        routes(a),
        a.logs()
    );
    let imet = route_with(a, "3", &v6(1)).expect("B's type-3 with its IPv6 originator");
    assert_eq!(imet["paths"][0]["next_hop"], v6(1), "{imet:#}");
    let mac_route = route_with(a, "2", &mac(1)).expect("B's VM's type-2");
    assert_eq!(mac_route["paths"][0]["next_hop"], v6(1), "{mac_route:#}");
    let n = a
        .neighbor(&v6(1))
        .expect("the IPv6 neighbour in show neighbors");
    assert_eq!(n["state"], "Established", "{n:#}");
    let dst = u.overlay_ip(2).to_string();
    assert!(
        wait_until(WAIT, || vms[0].ping(&dst, 1)),
        "VM A cannot ping VM B over the IPv6 underlay:\n{}\n{}",
        vxlan_fdb(u.host(0)),
        a.logs()
    );
}

/// A route reflector with `--cluster-id` and a listen range, on port 1790 like its
/// clients (`--port`); the clients' router ids (198.19.254.x) are not addresses of
/// theirs and their VTEP address is given with `--vtep-ip`. The reflected routes carry
/// the originator and the cluster id, the next hop is the VTEP address (never the
/// router id), the RD is made of the router id, nothing listens on 179, and the VMs
/// ping each other.
#[test]
fn reflector_cluster_id_port_and_a_vtep_address_other_than_the_router_id() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(3);
    let s = u.subnet();
    let port = "1790";
    let router_id = |i: usize| Ipv4Addr::new(198, 19, 254, i as u8 + 1).to_string();
    let mac = |i: usize| format!("02:00:00:{s:02x}:07:{:02x}", i + 1);
    let cluster = "198.19.253.9";
    let rr_ip = u.ip(2).to_string();
    let range = format!("198.19.{s}.0/24");
    let rr = Vxbgp::start(
        u.host(2),
        &[
            "--asn",
            "65001",
            "--router-id",
            &rr_ip,
            "--route-reflector",
            "--cluster-id",
            cluster,
            "--listen-range",
            &range,
            "--port",
            port,
            "--no-fib",
        ],
    );
    let mut vms = Vec::new();
    let mut clients = Vec::new();
    for i in 0..2 {
        let h = u.host(i);
        let cidr = format!("{}/24", u.overlay_ip(i as u8 + 1));
        vms.push(vtep_with_vm(h, VNI, &u.ip(i).to_string(), &cidr, &mac(i)));
        let (id, vtep) = (router_id(i), u.ip(i).to_string());
        clients.push(Vxbgp::start(
            h,
            &[
                "--asn",
                "65001",
                "--router-id",
                &id,
                "--vtep-ip",
                &vtep,
                "--neighbor",
                &rr_ip,
                "--port",
                port,
            ],
        ));
    }
    for c in &clients {
        c.wait_established(&rr_ip, WAIT);
    }
    let listening = u.host(2).run_ok("ss -Hltn");
    assert!(
        listening.contains(":1790 ") && !listening.contains(":179 "),
        "the reflector listens on:\n{listening}"
    );
    for (i, vm) in vms.iter().enumerate() {
        let _ = vm.ping(&u.overlay_ip(2 - i as u8).to_string(), 1);
    }
    let a = &clients[0];
    let b_vtep = u.ip(1).to_string();
    let got = wait_until(WAIT, || route_with(a, "2", &mac(1)).is_some());
    assert!(
        got,
        "B's VM never reached A: {:#?}\n{}",
        routes(a),
        rr.logs()
    );
    let r = route_with(a, "2", &mac(1)).expect("checked above");
    let path = &r["paths"][0];
    assert_eq!(
        path["next_hop"], b_vtep,
        "next hop is the VTEP address: {r:#}"
    );
    assert_eq!(
        path["originator_id"],
        router_id(1),
        "RFC 4456 ORIGINATOR_ID: {r:#}"
    );
    assert_eq!(
        path["cluster_list"],
        serde_json::json!([cluster]),
        "CLUSTER_LIST: {r:#}"
    );
    assert_eq!(
        r["rd"],
        format!("{}:{VNI}", router_id(1)),
        "RD from the router id: {r:#}"
    );
    let imet = route_with(a, "3", &b_vtep).expect("B's type-3 names its VTEP address");
    assert_eq!(imet["paths"][0]["next_hop"], b_vtep, "{imet:#}");
    assert!(
        wait_until(WAIT, || vxlan_fdb_has(u.host(0), &mac(1), &b_vtep)),
        "{}",
        vxlan_fdb(u.host(0))
    );
    let dst = u.overlay_ip(2).to_string();
    assert!(
        wait_until(WAIT, || vms[0].ping(&dst, 1)),
        "VM A cannot ping VM B:\n{}\n{}",
        vxlan_fdb(u.host(0)),
        a.logs()
    );
}
