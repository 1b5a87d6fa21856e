//! RIB behaviour, driven without sockets: inputs in, batches and snapshots out.

use std::net::{IpAddr, Ipv4Addr};

use bytes::{BufMut, BytesMut};

use super::*;
use crate::af::{AddressFamily, NlriError};
use crate::peer::PeerKind;
use crate::wire::PathAttrs;

/// A toy family: a route is a number, with a "sequence" standing in for MAC mobility.
struct Toy;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ToyRoute {
    id: u32,
    seq: u32,
}

impl AddressFamily for Toy {
    const AFI: u16 = 65535;
    const SAFI: u8 = 255;
    type Nlri = ToyRoute;
    type Key = u32;
    fn decode_nlri(block: &[u8]) -> Result<Vec<ToyRoute>, NlriError> {
        Ok(block
            .chunks_exact(8)
            .map(|c| ToyRoute {
                id: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                seq: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect())
    }
    fn encode_nlri(n: &ToyRoute, out: &mut BytesMut) {
        out.put_u32(n.id);
        out.put_u32(n.seq);
    }
    fn nlri_len(_: &ToyRoute) -> usize {
        8
    }
    fn key(n: &ToyRoute) -> u32 {
        n.id
    }
    fn preference(n: &ToyRoute, _: &PathAttrs) -> u32 {
        n.seq
    }
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, n)
}

fn local() -> LocalInfo {
    LocalInfo {
        asn: 65000,
        router_id: ip(100),
        cluster_id: ip(100),
    }
}

fn peer(id: PeerId, kind: PeerKind, asn: u32) -> PeerInfo {
    PeerInfo {
        id,
        addr: IpAddr::V4(ip(id as u8)),
        asn,
        bgp_id: ip(id as u8),
        kind,
    }
}

fn route(id: u32) -> ToyRoute {
    ToyRoute { id, seq: 0 }
}

fn attrs_from(vtep: u8) -> RouteAttrs {
    RouteAttrs {
        attrs: PathAttrs {
            origin: Some(crate::wire::Origin::Igp),
            as_path: Some(Default::default()),
            local_pref: Some(100),
            ..Default::default()
        },
        next_hop: IpAddr::V4(ip(vtep)),
    }
}

fn add(rib: &mut Rib<Toy>, peer: PeerId, ids: &[u32], vtep: u8) {
    rib.apply(RibInput::Update {
        peer,
        attrs: attrs_from(vtep),
        reach: ids.iter().map(|&i| route(i)).collect(),
    });
}

/// What `drain` found: (advertised (id, attrs), withdrawn ids, end-of-RIB seen).
type Drained = (Vec<(u32, Arc<RouteAttrs>)>, Vec<u32>, bool);

/// Everything pending for `peer`.
fn drain(rib: &mut Rib<Toy>, peer: PeerId) -> Drained {
    let mut adv = Vec::new();
    let mut wd = Vec::new();
    let mut eor = false;
    while let Some(b) = rib.take_out(peer, 2) {
        for (a, ns) in b.advertise {
            adv.extend(ns.into_iter().map(|n| (n.id, a.clone())));
        }
        wd.extend(b.withdraw.into_iter().map(|n| n.id));
        eor |= b.end_of_rib;
    }
    adv.sort_by_key(|(i, _)| *i);
    wd.sort();
    (adv, wd, eor)
}

fn reflector_with_two_clients() -> Rib<Toy> {
    let mut rib = Rib::new(local());
    rib.apply(RibInput::PeerUp(peer(1, PeerKind::IbgpClient, 65000)));
    rib.apply(RibInput::PeerUp(peer(2, PeerKind::IbgpClient, 65000)));
    drain(&mut rib, 1);
    drain(&mut rib, 2);
    rib
}

#[test]
fn rfc4456_client_routes_reflected_with_originator_id_and_cluster_list() {
    let mut rib = reflector_with_two_clients();
    add(&mut rib, 1, &[10, 11], 1);
    let (adv, wd, _) = drain(&mut rib, 2);
    assert_eq!(
        adv.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![10, 11]
    );
    assert!(wd.is_empty());
    let a = &adv[0].1;
    assert_eq!(a.attrs.originator_id, Some(ip(1)));
    assert_eq!(a.attrs.cluster_list, Some(vec![ip(100)]));
    assert_eq!(
        a.next_hop,
        IpAddr::V4(ip(1)),
        "EVPN next hop passes through unchanged"
    );
    // Not reflected back to the client it came from.
    let (adv, _, _) = drain(&mut rib, 1);
    assert!(adv.is_empty());
}

#[test]
fn withdrawal_and_peer_loss_reach_the_other_client() {
    let mut rib = reflector_with_two_clients();
    add(&mut rib, 1, &[10, 11, 12], 1);
    drain(&mut rib, 2);
    rib.apply(RibInput::Withdraw {
        peer: 1,
        nlri: vec![route(11)],
    });
    let (adv, wd, _) = drain(&mut rib, 2);
    assert!(adv.is_empty());
    assert_eq!(wd, vec![11]);
    rib.apply(RibInput::PeerDown(1));
    let (_, wd, _) = drain(&mut rib, 2);
    assert_eq!(wd, vec![10, 12]);
    assert_eq!(rib.stats(), RibStats::default(), "nothing left behind");
}

#[test]
fn peer_loss_removes_exactly_what_that_peer_gave() {
    let mut rib = reflector_with_two_clients();
    rib.apply(RibInput::PeerUp(peer(3, PeerKind::IbgpClient, 65000)));
    add(&mut rib, 1, &[10, 20], 1);
    add(&mut rib, 2, &[20, 30], 2);
    drain(&mut rib, 3);
    rib.apply(RibInput::PeerDown(1));
    let (adv, wd, _) = drain(&mut rib, 3);
    assert_eq!(wd, vec![10]);
    // Destination 20 switches to client 2's path.
    assert_eq!(adv.len(), 1);
    assert_eq!(adv[0].0, 20);
    assert_eq!(adv[0].1.next_hop, IpAddr::V4(ip(2)));
    assert_eq!(rib.received_count(2), 2);
    assert_eq!(rib.stats().destinations, 2);
}

#[test]
fn rfc4456_non_client_routes_go_to_clients_only() {
    let mut rib = reflector_with_two_clients();
    rib.apply(RibInput::PeerUp(peer(3, PeerKind::Ibgp, 65000)));
    rib.apply(RibInput::PeerUp(peer(4, PeerKind::Ibgp, 65000)));
    add(&mut rib, 3, &[7], 3);
    assert_eq!(drain(&mut rib, 1).0.len(), 1);
    assert!(
        drain(&mut rib, 4).0.is_empty(),
        "non-client to non-client is not reflected"
    );
    // A client's route goes to non-clients too.
    add(&mut rib, 1, &[8], 1);
    assert_eq!(drain(&mut rib, 4).0.len(), 1);
}

#[test]
fn plain_ibgp_speaker_does_not_pass_ibgp_routes_on() {
    let mut rib = Rib::<Toy>::new(local());
    rib.apply(RibInput::PeerUp(peer(1, PeerKind::Ibgp, 65000)));
    rib.apply(RibInput::PeerUp(peer(2, PeerKind::Ibgp, 65000)));
    add(&mut rib, 1, &[1], 1);
    assert!(drain(&mut rib, 2).0.is_empty());
    // But locally originated routes go to every iBGP peer, with LOCAL_PREF.
    add(&mut rib, LOCAL_PEER, &[2], 100);
    let (adv, _, _) = drain(&mut rib, 2);
    assert_eq!(adv.len(), 1);
    assert_eq!(adv[0].1.attrs.local_pref, Some(100));
    assert_eq!(adv[0].1.attrs.originator_id, None);
}

#[test]
fn rfc4456_8_own_originator_id_or_cluster_id_is_a_loop() {
    let mut rib = reflector_with_two_clients();
    let mut looped = attrs_from(1);
    looped.attrs.originator_id = Some(ip(100));
    rib.apply(RibInput::Update {
        peer: 1,
        attrs: looped,
        reach: vec![route(1)],
    });
    let mut looped = attrs_from(1);
    looped.attrs.cluster_list = Some(vec![ip(9), ip(100)]);
    rib.apply(RibInput::Update {
        peer: 1,
        attrs: looped,
        reach: vec![route(2)],
    });
    assert_eq!(rib.stats().destinations, 0);
    assert!(drain(&mut rib, 2).0.is_empty());
}

#[test]
fn ebgp_export_prepends_our_as_and_drops_ibgp_only_attributes() {
    let mut rib = Rib::<Toy>::new(local());
    rib.apply(RibInput::PeerUp(peer(1, PeerKind::IbgpClient, 65000)));
    rib.apply(RibInput::PeerUp(peer(2, PeerKind::Ebgp, 65002)));
    drain(&mut rib, 2);
    add(&mut rib, 1, &[5], 1);
    let (adv, _, _) = drain(&mut rib, 2);
    let a = &adv[0].1.attrs;
    assert_eq!(
        a.as_path.as_ref().map(|p| p.to_string()),
        Some("65000".to_string())
    );
    assert_eq!(a.local_pref, None);
    assert_eq!(a.originator_id, None);
    assert_eq!(a.cluster_list, None);
}

#[test]
fn rfc4271_9_1_2_ebgp_route_with_our_as_is_dropped() {
    let mut rib = Rib::<Toy>::new(local());
    rib.apply(RibInput::PeerUp(peer(2, PeerKind::Ebgp, 65002)));
    let mut a = attrs_from(2);
    a.attrs.as_path = Some(crate::wire::AsPath {
        segments: vec![crate::wire::AsSegment {
            kind: crate::wire::SegmentKind::Sequence,
            asns: vec![65002, 65000],
        }],
    });
    rib.apply(RibInput::Update {
        peer: 2,
        attrs: a,
        reach: vec![route(1)],
    });
    assert_eq!(rib.stats().destinations, 0);
}

#[test]
fn rfc7432_15_higher_sequence_wins_and_losers_say_why() {
    let mut rib = reflector_with_two_clients();
    add(&mut rib, 1, &[1], 1);
    rib.apply(RibInput::Update {
        peer: 2,
        attrs: attrs_from(2),
        reach: vec![ToyRoute { id: 1, seq: 1 }],
    });
    let snap = rib.routes(&|_, _| true);
    assert_eq!(snap.len(), 1);
    let paths = &snap[0].paths;
    assert!(paths[0].best);
    assert_eq!(paths[0].peer, 2);
    assert_eq!(paths[1].reject, Some(RejectReason::LowerMobilitySeq));
    // Client 1 now hears of client 2's newer path.
    let (adv, _, _) = drain(&mut rib, 1);
    assert_eq!(adv.len(), 1);
    assert_eq!(adv[0].1.next_hop, IpAddr::V4(ip(2)));
}

#[test]
fn routes_sharing_attributes_share_one_set_and_one_batch_group() {
    let mut rib = reflector_with_two_clients();
    let ids: Vec<u32> = (0..1000).collect();
    add(&mut rib, 1, &ids, 1);
    // One set received, one exported towards client 2.
    assert_eq!(rib.stats().attr_sets, 2);
    let b = rib.take_out(2, 5000).expect("batch");
    assert_eq!(b.advertise.len(), 1);
    assert_eq!(b.advertise[0].1.len(), 1000);
    assert_eq!(rib.advertised_count(2), 1000);
}

#[test]
fn initial_table_then_end_of_rib_and_route_refresh_resends() {
    let mut rib = Rib::<Toy>::new(local());
    add(&mut rib, LOCAL_PEER, &[1, 2, 3], 100);
    rib.apply(RibInput::PeerUp(peer(1, PeerKind::Ibgp, 65000)));
    let (adv, _, eor) = drain(&mut rib, 1);
    assert_eq!(adv.len(), 3);
    assert!(eor);
    assert!(drain(&mut rib, 1).0.is_empty());
    rib.apply(RibInput::RouteRefresh(1));
    let (adv, _, _) = drain(&mut rib, 1);
    assert_eq!(adv.len(), 3);
}

#[test]
fn churn_coalesces_by_route() {
    let mut rib = reflector_with_two_clients();
    for vtep in 1..=50 {
        add(&mut rib, 1, &[1], vtep);
    }
    let (adv, _, _) = drain(&mut rib, 2);
    assert_eq!(
        adv.len(),
        1,
        "50 changes of one route, one UPDATE worth of work"
    );
    assert_eq!(adv[0].1.next_hop, IpAddr::V4(ip(50)));
    // Attribute sets of superseded versions were released.
    assert_eq!(rib.stats().attr_sets, 2);
}

#[test]
fn peer_down_releases_everything_it_held() {
    let mut rib = reflector_with_two_clients();
    add(&mut rib, 1, &[1, 2], 1);
    add(&mut rib, 2, &[3], 2);
    rib.apply(RibInput::PeerDown(1));
    rib.apply(RibInput::PeerDown(2));
    assert_eq!(rib.stats(), RibStats::default());
}
