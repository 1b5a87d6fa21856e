//! Planner behaviour: routes in, exactly the kernel operations a user expects out.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp::rib::{BestChange, BestPath, RouteAttrs};
use evpn::{originate, EvpnRoute, MacAddr, Vni};

use super::*;

pub(crate) const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1));

pub(crate) fn vtep(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, 0, n))
}

pub(crate) fn vni() -> Vni {
    Vni::new(42).unwrap()
}

pub(crate) fn rd(n: u8) -> evpn::RouteDistinguisher {
    originate::auto_rd(Ipv4Addr::new(198, 19, 0, n), 42)
}

pub(crate) fn rt() -> Vec<evpn::RouteTarget> {
    vec![originate::auto_rt(65001, vni())]
}

pub(crate) fn best(
    route: EvpnRoute,
    attrs: bgp::wire::PathAttrs,
    nh: IpAddr,
) -> BestChange<L2vpnEvpn> {
    BestChange {
        key: route.key(),
        best: Some(BestPath {
            nlri: route,
            attrs: Arc::new(RouteAttrs {
                attrs,
                next_hop: nh,
            }),
            peer: 1,
        }),
    }
}

pub(crate) fn gone(route: &EvpnRoute) -> BestChange<L2vpnEvpn> {
    BestChange {
        key: route.key(),
        best: None,
    }
}

pub(crate) fn imet(n: u8) -> BestChange<L2vpnEvpn> {
    let (r, a) = originate::imet(rd(n), vni(), vtep(n), &rt());
    best(r, a, vtep(n))
}

pub(crate) fn mac(n: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, n])
}

pub(crate) fn mac_ip(
    from: u8,
    m: u8,
    ip: Option<u8>,
    seq: u32,
) -> (EvpnRoute, BestChange<L2vpnEvpn>) {
    mac_ip_sticky(from, m, ip, seq, false)
}

pub(crate) fn mac_ip_sticky(
    from: u8,
    m: u8,
    ip: Option<u8>,
    seq: u32,
    sticky: bool,
) -> (EvpnRoute, BestChange<L2vpnEvpn>) {
    let ip = ip.map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 0, i)));
    let (r, a) = originate::mac_ip(
        rd(from),
        vni(),
        MacAddr(mac(m).0),
        ip,
        &rt(),
        Some((seq, sticky)),
    );
    (r.clone(), best(r, a, vtep(from)))
}

#[test]
fn type3_from_remote_vteps_gives_one_flood_entry_each() {
    let mut p = Planner::new([LOCAL]);
    let ops = p.apply(&[imet(2), imet(3), imet(1)]);
    // Our own type-3 (VTEP 1) is not programmed.
    assert_eq!(
        ops,
        vec![
            FibOp::FloodAdd(FloodEntry {
                vni: 42,
                vtep: vtep(2)
            }),
            FibOp::FloodAdd(FloodEntry {
                vni: 42,
                vtep: vtep(3)
            }),
        ]
    );
}

#[test]
fn type2_with_ip_gives_mac_then_suppression_entry_and_withdrawal_removes_both() {
    let mut p = Planner::new([LOCAL]);
    let (r, c) = mac_ip(2, 7, Some(7), 0);
    let ops = p.apply(&[c]);
    let m = RemoteMac {
        vni: 42,
        mac: mac(7),
        vtep: vtep(2),
    };
    let n = SuppressNeigh {
        vni: 42,
        ip: "198.18.0.7".parse().unwrap(),
        mac: mac(7),
    };
    assert_eq!(ops, vec![FibOp::MacSet(m), FibOp::NeighSet(n)]);
    let ops = p.apply(&[gone(&r)]);
    assert_eq!(ops, vec![FibOp::NeighDel(n), FibOp::MacDel(m)]);
    assert_eq!(p.desired(None), DesiredState::default());
}

#[test]
fn mac_only_and_mac_ip_routes_share_one_mac_entry() {
    let mut p = Planner::new([LOCAL]);
    let (r1, c1) = mac_ip(2, 7, None, 0);
    let (_, c2) = mac_ip(2, 7, Some(7), 0);
    let ops = p.apply(&[c1, c2]);
    assert_eq!(
        ops.iter().filter(|o| matches!(o, FibOp::MacSet(_))).count(),
        1
    );
    // The MAC-only route goes; the MAC stays because the MAC/IP route still wants it.
    assert!(p.apply(&[gone(&r1)]).is_empty());
}

#[test]
fn rfc7432_15_move_to_a_higher_sequence_replaces_in_place() {
    let mut p = Planner::new([LOCAL]);
    let (old, c_old) = mac_ip(2, 7, Some(7), 0);
    p.apply(&[c_old]);
    // The VM moved to VTEP 3, which advertises under its own RD with sequence 1.
    let (_, c_new) = mac_ip(3, 7, Some(7), 1);
    let ops = p.apply(&[c_new]);
    assert_eq!(
        ops,
        vec![FibOp::MacSet(RemoteMac {
            vni: 42,
            mac: mac(7),
            vtep: vtep(3)
        })]
    );
    // VTEP 2 withdraws its stale route: nothing more to do.
    assert!(p.apply(&[gone(&old)]).is_empty());
}

/// The same VTEP advertising a MAC again with a higher sequence (it took the MAC
/// back from us before withdrawing): the entry is set again, so the FIB checks its
/// local MAC against the new sequence (RFC 7432 §15.1).
#[test]
fn rfc7432_15_a_higher_sequence_from_the_same_vtep_is_set_again() {
    let mut p = Planner::new([LOCAL]);
    let (_, c0) = mac_ip(2, 7, None, 0);
    assert_eq!(p.apply(&[c0]).len(), 1);
    let (_, c2) = mac_ip(2, 7, None, 2);
    let set = FibOp::MacSet(RemoteMac {
        vni: 42,
        mac: mac(7),
        vtep: vtep(2),
    });
    assert_eq!(p.apply(&[c2]), vec![set]);
    // The same sequence again changes nothing.
    let (_, again) = mac_ip(2, 7, None, 2);
    assert!(p.apply(&[again]).is_empty());
}

#[test]
fn add_and_delete_in_one_batch_cancel() {
    let mut p = Planner::new([LOCAL]);
    let (r, c) = mac_ip(2, 9, None, 0);
    assert!(p.apply(&[c, gone(&r)]).is_empty());
}

#[test]
fn next_hop_change_is_one_replace() {
    let mut p = Planner::new([LOCAL]);
    let (r, c) = mac_ip(2, 7, None, 0);
    p.apply(&[c]);
    let mut moved = best(r.clone(), Default::default(), vtep(4));
    moved.key = r.key();
    let ops = p.apply(&[moved]);
    assert_eq!(
        ops,
        vec![FibOp::MacSet(RemoteMac {
            vni: 42,
            mac: mac(7),
            vtep: vtep(4)
        })]
    );
}

#[test]
fn desired_state_per_vni_for_a_device_that_appears_later() {
    let mut p = Planner::new([LOCAL]);
    let (_, c) = mac_ip(2, 7, Some(7), 0);
    p.apply(&[imet(2), c]);
    let d = p.desired(Some(42));
    assert_eq!(d.flood.len(), 1);
    assert_eq!(d.macs.len(), 1);
    assert_eq!(d.neighs.len(), 1);
    assert_eq!(d.install_ops().len(), 3);
    assert_eq!(p.desired(Some(43)), DesiredState::default());
}

fn kernel_mac(p: &Planner, m: u8) -> Option<IpAddr> {
    p.mac_winner(42, mac(m)).map(|(e, _)| e.vtep)
}

#[test]
fn rfc7432_15_every_combination_of_sequence_and_sticky() {
    // (seq, sticky) of VTEP 2 and VTEP 3 claiming one MAC, and who the kernel points at.
    let cases = [
        ((0, false), (0, false), 2), // equal: the lower VTEP address
        ((1, false), (0, false), 2), // higher sequence
        ((0, false), (1, false), 3),
        ((0, true), (5, false), 2), // sticky beats any sequence
        ((5, false), (0, true), 3),
        ((1, true), (0, true), 2), // both sticky: the sequence, and it is reported
        ((0, true), (0, true), 2),
    ];
    for ((s2, k2), (s3, k3), want) in cases {
        let mut p = Planner::new([LOCAL]);
        let (_, a) = mac_ip_sticky(2, 7, None, s2, k2);
        let (_, b) = mac_ip_sticky(3, 7, None, s3, k3);
        p.apply(&[a, b]);
        assert_eq!(
            kernel_mac(&p, 7),
            Some(vtep(want)),
            "VTEP 2 {s2}/{k2} vs VTEP 3 {s3}/{k3}"
        );
        assert_eq!(p.sticky_conflict(42, mac(7)), k2 && k3);
        let (_, m) = p.mac_winner(42, mac(7)).unwrap();
        assert_eq!(m.sticky, k2 || k3);
    }
}
