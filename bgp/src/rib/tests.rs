//! RIB behaviour, driven without sockets: inputs in, batches and snapshots out.

use std::net::{IpAddr, Ipv4Addr};

use bytes::{BufMut, BytesMut};

use super::*;
use crate::af::{AddressFamily, NlriError};
use crate::peer::{PeerKind, LOCAL_PEER};
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
        as4: true,
        max_prefixes: None,
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

fn add(rib: &mut Lab, peer: PeerId, ids: &[u32], vtep: u8) {
    rib.apply(RibInput::Update {
        peer,
        attrs: attrs_from(vtep),
        reach: ids.iter().map(|&i| route(i)).collect(),
    });
}

/// What one test peer was delivered: the encoded batches, still to be decoded.
#[derive(Debug, Default)]
struct Inbox {
    batches: Vec<Arc<Encoded>>,
    /// Stands for bytes not yet written to the peer's socket.
    queued: usize,
    /// The prefix limit the RIB said the peer passed.
    over_limit: Option<usize>,
}

#[derive(Debug)]
struct TestSink(Arc<std::sync::Mutex<Inbox>>);

impl PeerSink for TestSink {
    fn queued(&self) -> usize {
        self.0.lock().map_or(0, |i| i.queued)
    }
    fn deliver(&mut self, batch: Arc<Encoded>, bytes: usize) -> bool {
        if let Ok(mut i) = self.0.lock() {
            i.batches.push(batch);
            i.queued += bytes;
        }
        true
    }
    fn over_limit(&mut self, limit: usize) {
        if let Ok(mut i) = self.0.lock() {
            i.over_limit = Some(limit);
        }
    }
}

/// A RIB with buffering sinks for its peers.
struct Lab {
    rib: Rib<Toy>,
    inboxes: std::collections::HashMap<PeerId, Arc<std::sync::Mutex<Inbox>>>,
    ibgp: std::collections::HashMap<PeerId, bool>,
    clock: std::time::Instant,
}

impl std::ops::Deref for Lab {
    type Target = Rib<Toy>;
    fn deref(&self) -> &Rib<Toy> {
        &self.rib
    }
}

impl std::ops::DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut Rib<Toy> {
        &mut self.rib
    }
}

impl Lab {
    fn new() -> Lab {
        Lab {
            rib: Rib::new(local()),
            inboxes: Default::default(),
            ibgp: Default::default(),
            clock: std::time::Instant::now(),
        }
    }

    fn up(&mut self, info: PeerInfo) {
        let inbox = Arc::new(std::sync::Mutex::new(Inbox::default()));
        self.inboxes.insert(info.id, inbox.clone());
        self.ibgp.insert(info.id, info.kind.is_ibgp());
        self.rib
            .apply(RibInput::PeerUp(info, Box::new(TestSink(inbox))));
    }

    fn flush(&mut self) -> bool {
        self.rib.flush(self.clock)
    }

    fn advance(&mut self, d: std::time::Duration) {
        self.clock += d;
    }

    /// Pretends `peer`'s socket holds `bytes` unwritten.
    fn set_queued(&mut self, peer: PeerId, bytes: usize) {
        if let Some(Ok(mut i)) = self.inboxes.get(&peer).map(|i| i.lock()) {
            i.queued = bytes;
        }
    }

    /// The batches delivered to `peer` since the last call.
    fn take(&mut self, peer: PeerId) -> Vec<Arc<Encoded>> {
        match self.inboxes.get(&peer).map(|i| i.lock()) {
            Some(Ok(mut i)) => std::mem::take(&mut i.batches),
            _ => Vec::new(),
        }
    }
}

/// What `drain` found: (advertised (id, attrs), withdrawn ids, end-of-RIB seen).
type Drained = (Vec<(u32, Arc<RouteAttrs>)>, Vec<u32>, bool);

/// Flushes the RIB and decodes the UPDATEs `peer` was sent, as the peer would.
fn drain(rib: &mut Lab, peer: PeerId) -> Drained {
    rib.flush();
    let mut adv = Vec::new();
    let mut wd = Vec::new();
    let mut eor = false;
    let ctx = crate::wire::DecodeCtx {
        as4: true,
        ibgp: rib.ibgp.get(&peer).copied().unwrap_or(true),
    };
    for batch in rib.take(peer) {
        for piece in batch.for_peer(peer) {
            let mut rest = &piece.bytes[..];
            while !rest.is_empty() {
                let len = match crate::wire::header::frame_len(rest) {
                    Ok(Some(len)) => len,
                    other => panic!("bad frame: {other:?}"),
                };
                let (frame, tail) = rest.split_at(len);
                rest = tail;
                let msg = crate::wire::Message::decode(frame, &ctx).expect("decodes");
                assert!(msg.errors.is_empty(), "{:?}", msg.errors);
                let crate::wire::Message::Update(u) = msg.value else {
                    panic!("not an UPDATE")
                };
                if let Some(un) = &u.mp_unreach {
                    let ns = Toy::decode_nlri(&un.nlri).expect("NLRI");
                    eor |= ns.is_empty();
                    wd.extend(ns.into_iter().map(|n| n.id));
                }
                if let Some(r) = u.mp_reach {
                    let next_hop = match r.next_hop {
                        crate::wire::MpNextHop::V4(a) => IpAddr::V4(a),
                        crate::wire::MpNextHop::V6(a)
                        | crate::wire::MpNextHop::V6LinkLocal(a, _) => IpAddr::V6(a),
                    };
                    let a = Arc::new(RouteAttrs {
                        attrs: u.attrs,
                        next_hop,
                    });
                    for n in Toy::decode_nlri(&r.nlri).expect("NLRI") {
                        adv.push((n.id, a.clone()));
                    }
                }
            }
        }
    }
    adv.sort_by_key(|(i, _)| *i);
    wd.sort();
    (adv, wd, eor)
}

fn reflector_with_two_clients() -> Lab {
    let mut rib = Lab::new();
    rib.up(peer(1, PeerKind::IbgpClient, 65000));
    rib.up(peer(2, PeerKind::IbgpClient, 65000));
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
    let left = RibStats {
        update_groups: 1,
        ..RibStats::default()
    };
    assert_eq!(
        rib.stats(),
        left,
        "nothing left behind but client 2's group"
    );
}

#[test]
fn peer_loss_removes_exactly_what_that_peer_gave() {
    let mut rib = reflector_with_two_clients();
    rib.up(peer(3, PeerKind::IbgpClient, 65000));
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
    rib.up(peer(3, PeerKind::Ibgp, 65000));
    rib.up(peer(4, PeerKind::Ibgp, 65000));
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
    let mut rib = Lab::new();
    rib.up(peer(1, PeerKind::Ibgp, 65000));
    rib.up(peer(2, PeerKind::Ibgp, 65000));
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
    let mut rib = Lab::new();
    rib.up(peer(1, PeerKind::IbgpClient, 65000));
    rib.up(peer(2, PeerKind::Ebgp, 65002));
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
    let mut rib = Lab::new();
    rib.up(peer(2, PeerKind::Ebgp, 65002));
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
    rib.flush();
    // One set received, one exported towards the clients.
    assert_eq!(rib.stats().attr_sets, 2);
    let batches = rib.take(2);
    let pieces: Vec<_> = batches.iter().flat_map(|b| b.for_peer(2)).collect();
    assert_eq!(pieces.len(), 1, "one attribute set, one piece");
    assert_eq!(pieces[0].routes, 1000);
    // 8-byte toy NLRI: about 500 fit in one 4096-byte UPDATE.
    assert_eq!(pieces[0].messages, 2);
    assert_eq!(rib.advertised_count(2), 1000);
}

#[test]
fn initial_table_then_end_of_rib_and_route_refresh_resends() {
    let mut rib = Lab::new();
    add(&mut rib, LOCAL_PEER, &[1, 2, 3], 100);
    rib.up(peer(1, PeerKind::Ibgp, 65000));
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

fn reflector_with_clients(n: PeerId) -> Lab {
    let mut rib = Lab::new();
    for id in 1..=n {
        rib.up(peer(id, PeerKind::IbgpClient, 65000));
    }
    for id in 1..=n {
        drain(&mut rib, id);
    }
    rib
}

#[test]
fn clients_share_one_update_group_and_one_encoding() {
    let mut rib = reflector_with_clients(3);
    rib.up(peer(4, PeerKind::Ebgp, 65004));
    drain(&mut rib, 4);
    assert_eq!(
        rib.stats().update_groups,
        2,
        "RR clients, and the eBGP peer"
    );
    add(&mut rib, 1, &[10, 11], 1);
    rib.flush();
    let (to2, to3) = (rib.take(2), rib.take(3));
    assert_eq!((to2.len(), to3.len()), (1, 1));
    assert!(
        Arc::ptr_eq(&to2[0], &to3[0]),
        "the same encoded bytes go to both clients"
    );
    assert!(rib.take(1).is_empty(), "nothing goes back to the source");
    assert_eq!(rib.take(4).len(), 1, "the eBGP group has its own");
    assert_eq!(rib.advertised_count(2), 2);
    assert_eq!(rib.advertised_count(1), 0);
}

#[test]
fn best_path_moving_between_clients_withdraws_from_the_new_source() {
    let mut rib = reflector_with_clients(3);
    add(&mut rib, 1, &[5], 1);
    assert_eq!(drain(&mut rib, 2).0.len(), 1);
    drain(&mut rib, 3);
    // Client 2 now has the newer path (a MAC that moved to it).
    rib.apply(RibInput::Update {
        peer: 2,
        attrs: attrs_from(2),
        reach: vec![ToyRoute { id: 5, seq: 1 }],
    });
    let (adv, wd, _) = drain(&mut rib, 2);
    assert!(adv.is_empty(), "its own route is not reflected back to it");
    assert_eq!(wd, vec![5], "it drops client 1's path it was sent");
    for other in [1, 3] {
        let (adv, wd, _) = drain(&mut rib, other);
        assert_eq!(adv.len(), 1);
        assert_eq!(adv[0].1.next_hop, IpAddr::V4(ip(2)));
        assert!(wd.is_empty());
    }
    assert_eq!(rib.advertised_count(1), 1);
    assert_eq!(rib.advertised_count(2), 0);
}

#[test]
fn a_peer_that_falls_behind_is_split_off_and_gets_the_changes_coalesced() {
    let mut rib = reflector_with_clients(3);
    rib.set_queued(3, adj_out::HIGH_WATER);
    add(&mut rib, 1, &[1, 2, 3], 1);
    assert!(
        rib.flush(),
        "the group waits for its slowest member a while"
    );
    assert!(rib.take(2).is_empty());
    rib.advance(adj_out::HOLD_UP);
    let (adv, _, _) = drain(&mut rib, 2);
    assert_eq!(adv.len(), 3, "then the others are not held up");
    assert_eq!(rib.stats().update_groups, 2, "client 3 is on its own");
    assert!(rib.take(3).is_empty(), "nothing more for the full queue");
    // Churn while it is behind: 20 versions of route 1, route 2 withdrawn, 3 stays.
    for vtep in 10..30 {
        add(&mut rib, 1, &[1], vtep);
    }
    rib.apply(RibInput::Withdraw {
        peer: 1,
        nlri: vec![route(2)],
    });
    assert!(rib.flush(), "something waits for client 3");
    assert_eq!(rib.take(3).len(), 0);
    let (adv, wd, _) = drain(&mut rib, 2);
    assert_eq!((adv.len(), wd), (1, vec![2]), "client 2 is not held up");
    rib.set_queued(3, 0);
    let (adv, wd, _) = drain(&mut rib, 3);
    let ids: Vec<u32> = adv.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, vec![1, 3], "the latest of each, once");
    assert_eq!(adv[0].1.next_hop, IpAddr::V4(ip(29)));
    assert!(
        wd.is_empty(),
        "route 2 was never sent, so nothing to withdraw"
    );
    assert!(!rib.flush());
}

#[test]
fn a_withdrawn_route_waits_for_the_slow_group_before_its_id_is_reused() {
    let mut rib = reflector_with_clients(3);
    add(&mut rib, 1, &[1], 1);
    drain(&mut rib, 2);
    drain(&mut rib, 3);
    rib.set_queued(3, adj_out::HIGH_WATER);
    add(&mut rib, 1, &[7], 1);
    rib.flush();
    rib.advance(adj_out::HOLD_UP);
    drain(&mut rib, 2); // splits client 3 off
    rib.apply(RibInput::Withdraw {
        peer: 1,
        nlri: vec![route(1)],
    });
    drain(&mut rib, 2);
    assert_eq!(
        rib.stats().destinations,
        1,
        "route 1 is gone from the Loc-RIB"
    );
    add(&mut rib, 1, &[9], 1);
    rib.set_queued(3, 0);
    let (adv, wd, _) = drain(&mut rib, 3);
    assert_eq!(wd, vec![1]);
    let ids: Vec<u32> = adv.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, vec![7, 9]);
}

#[test]
fn a_peer_joining_a_busy_group_gets_the_whole_table_then_end_of_rib() {
    let mut rib = reflector_with_clients(2);
    let ids: Vec<u32> = (0..20_000).collect();
    add(&mut rib, 1, &ids, 1);
    // Joins before the group has flushed those changes.
    rib.up(peer(3, PeerKind::IbgpClient, 65000));
    add(&mut rib, 2, &[50_000], 2);
    let (adv, wd, eor) = drain(&mut rib, 3);
    let mut got: Vec<u32> = adv.iter().map(|(i, _)| *i).collect();
    got.dedup();
    assert_eq!(got.len(), 20_001);
    assert!(wd.is_empty());
    assert!(eor);
    assert_eq!(rib.advertised_count(3), 20_001);
    assert_eq!(rib.stats().update_groups, 1);
    // Nothing was left over to send again.
    assert!(drain(&mut rib, 3).0.is_empty());
}

#[test]
fn every_peer_down_releases_every_group() {
    let mut rib = reflector_with_clients(3);
    rib.set_queued(3, adj_out::HIGH_WATER);
    add(&mut rib, 1, &[1, 2], 1);
    add(&mut rib, 2, &[3], 2);
    rib.flush();
    rib.advance(adj_out::HOLD_UP);
    rib.flush();
    assert_eq!(rib.stats().update_groups, 2);
    for p in 1..=3 {
        rib.apply(RibInput::PeerDown(p));
    }
    assert_eq!(rib.stats(), RibStats::default());
}

#[test]
fn when_every_member_is_behind_the_group_waits_and_nobody_is_split() {
    let mut rib = reflector_with_clients(3);
    for p in 1..=3 {
        rib.set_queued(p, adj_out::HIGH_WATER);
    }
    add(&mut rib, 1, &[1], 1);
    assert!(rib.flush());
    rib.advance(adj_out::HOLD_UP * 10);
    assert!(rib.flush());
    assert_eq!(rib.stats().update_groups, 1);
    for p in 1..=3 {
        rib.set_queued(p, 0);
    }
    assert_eq!(drain(&mut rib, 2).0.len(), 1);
    assert_eq!(drain(&mut rib, 3).0.len(), 1);
}

#[test]
fn the_same_route_from_the_agent_and_the_user_is_two_paths() {
    let mut rib = reflector_with_clients(1);
    add(&mut rib, LOCAL_PEER, &[5], 100);
    add(&mut rib, crate::peer::STATIC_PEER, &[5], 100);
    assert_eq!(drain(&mut rib, 1).0.len(), 1);
    assert_eq!(rib.stats().paths, 2);
    // The user removes theirs: the agent's keeps the route advertised.
    rib.apply(RibInput::Withdraw {
        peer: crate::peer::STATIC_PEER,
        nlri: vec![route(5)],
    });
    let (adv, wd, _) = drain(&mut rib, 1);
    assert!(wd.is_empty(), "still originated by the agent");
    assert!(adv.is_empty(), "nothing changed for the peer");
    assert_eq!(rib.advertised_count(1), 1);
    rib.apply(RibInput::Withdraw {
        peer: LOCAL_PEER,
        nlri: vec![route(5)],
    });
    assert_eq!(drain(&mut rib, 1).1, vec![5]);
}

#[test]
fn rfc4486_a_peer_past_its_prefix_limit_is_told_once_or_only_logged() {
    for warn_only in [false, true] {
        let mut rib = reflector_with_clients(1);
        let mut p = peer(2, PeerKind::IbgpClient, 65000);
        p.max_prefixes = Some(crate::peer::MaxPrefixes {
            limit: 3,
            warn_only,
        });
        rib.up(p);
        add(&mut rib, 2, &[1, 2, 3], 2);
        let told = |rib: &Lab| rib.inboxes[&2].lock().map(|i| i.over_limit).ok().flatten();
        assert_eq!(told(&rib), None, "at the limit is not past it");
        add(&mut rib, 2, &[4, 5], 2);
        assert_eq!(told(&rib), (!warn_only).then_some(3));
        assert_eq!(
            rib.received_count(2),
            5,
            "the routes are kept until the session closes"
        );
    }
}
