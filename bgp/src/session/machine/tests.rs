//! The session without sockets: connections, frames and instants in, actions out.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::*;
use crate::af::NlriError;
use crate::session::fsm::FsmConfig;
use crate::wire::{Capability, EncodeCtx, MpNextHop, MpReach, OpenMsg, PathAttrs, UpdateMsg};

/// A route is 8 octets; a block of another length cannot be read (a reset, RFC 7606 §5.3).
#[derive(Debug)]
struct Toy;

impl AddressFamily for Toy {
    const AFI: u16 = 65535;
    const SAFI: u8 = 255;
    type Nlri = u64;
    type Key = u64;
    fn decode_nlri(block: &[u8]) -> Result<Vec<u64>, NlriError> {
        if !block.len().is_multiple_of(8) {
            return Err(NlriError {
                offset: block.len() / 8 * 8,
                reason: "short route".into(),
            });
        }
        Ok(block
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect())
    }
    fn encode_nlri(n: &u64, out: &mut BytesMut) {
        out.put_u64(*n);
    }
    fn nlri_len(_: &u64) -> usize {
        8
    }
    fn key(n: &u64) -> u64 {
        *n
    }
}

const LOCAL_ASN: u32 = 65000;

fn id(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, n)
}

fn config(local_id: Ipv4Addr, remote_asn: u32) -> SessionConfig {
    SessionConfig {
        id: 7,
        addr: IpAddr::V4(id(2)),
        port: 179,
        passive: false,
        rr_client: false,
        dynamic: false,
        description: None,
        max_prefixes: None,
        fsm: FsmConfig {
            local_asn: LOCAL_ASN,
            router_id: local_id,
            hold_time: 9,
            remote_asn: Some(remote_asn),
            families: vec![(Toy::AFI, Toy::SAFI)],
        },
    }
}

fn bytes(msg: Message) -> Bytes {
    msg.to_bytes(&EncodeCtx { as4: true })
}

fn open_from(remote_id: Ipv4Addr, asn: u32) -> Bytes {
    bytes(Message::Open(OpenMsg::new(
        asn,
        9,
        remote_id,
        vec![
            Capability::MultiProtocol {
                afi: Toy::AFI,
                safi: Toy::SAFI,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    )))
}

fn update(nlri: &[u8]) -> Bytes {
    bytes(Message::Update(UpdateMsg {
        withdrawn: Bytes::new(),
        attrs: PathAttrs::default(),
        mp_reach: Some(MpReach {
            afi: Toy::AFI,
            safi: Toy::SAFI,
            next_hop: MpNextHop::V4(id(2)),
            nlri: Bytes::copy_from_slice(nlri),
        }),
        mp_unreach: None,
        nlri: Bytes::new(),
    }))
}

struct Run {
    m: SessionMachine<Toy>,
    now: Instant,
    remote_id: Ipv4Addr,
    remote_asn: u32,
}

impl Run {
    fn new(local_id: Ipv4Addr, remote_id: Ipv4Addr, remote_asn: u32) -> Run {
        Run {
            m: SessionMachine::new(config(local_id, remote_asn)),
            now: Instant::now(),
            remote_id,
            remote_asn,
        }
    }

    fn ev(&mut self, ev: Event<'_>) -> Vec<Action<Toy>> {
        self.m.handle(ev, self.now)
    }

    fn connect(&mut self, outgoing: bool) -> Vec<Action<Toy>> {
        self.ev(Event::Connected { outgoing })
    }

    fn frame(&mut self, conn: ConnId, b: &[u8]) -> Vec<Action<Toy>> {
        self.ev(Event::Frame { conn, bytes: b })
    }

    fn open(&mut self, conn: ConnId) -> Vec<Action<Toy>> {
        let o = open_from(self.remote_id, self.remote_asn);
        self.frame(conn, &o)
    }

    fn keepalive(&mut self, conn: ConnId) -> Vec<Action<Toy>> {
        self.frame(conn, &bytes(Message::Keepalive))
    }

    /// Takes `conn` from OpenSent to Established.
    fn establish(&mut self, conn: ConnId) -> Vec<Action<Toy>> {
        let mut acts = self.open(conn);
        acts.extend(self.keepalive(conn));
        acts
    }
}

fn adopted(acts: &[Action<Toy>]) -> Option<ConnId> {
    acts.iter().find_map(|a| match a {
        Action::Adopt { conn } => Some(*conn),
        _ => None,
    })
}

/// The connections closed, with the (code, subcode) of what they were sent.
fn closed(acts: &[Action<Toy>]) -> Vec<(ConnId, Option<(u8, u8)>)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Close { conn, notify, .. } => {
                Some((*conn, notify.as_ref().map(|n| (n.code, n.subcode))))
            }
            _ => None,
        })
        .collect()
}

fn peer_ups(acts: &[Action<Toy>]) -> usize {
    acts.iter()
        .filter(|a| matches!(a, Action::PeerUp(_)))
        .count()
}

fn peer_downs(acts: &[Action<Toy>]) -> usize {
    acts.iter()
        .filter(|a| matches!(a, Action::PeerDown))
        .count()
}

const COLLISION: Option<(u8, u8)> =
    Some((codes::CEASE, codes::cease::CONNECTION_COLLISION_RESOLUTION));

#[derive(Clone, Copy, Debug)]
enum Stage {
    OpenSent,
    OpenConfirm,
    Established,
}

/// Every order of a collision (RFC 4271 §6.8, RFC 6286 §2.3): the first connection
/// inbound or outbound × the local identifier higher, lower or equal (then between
/// two ASes) × the first connection OpenSent, OpenConfirm or Established when the
/// second comes. One connection survives, it is never one that was Established, it is
/// the one the winner opened, and the RIB hears of the peer exactly once.
#[test]
fn every_collision_order_leaves_one_connection_and_one_peer_up() {
    // (local id, remote id, remote AS, does our side win?)
    let ids = [
        (id(9), id(2), LOCAL_ASN, true),
        (id(1), id(2), LOCAL_ASN, false),
        (id(2), id(2), LOCAL_ASN - 1, true),
        (id(2), id(2), LOCAL_ASN + 1, false),
    ];
    for (local, remote, remote_asn, we_win) in ids {
        for first_outgoing in [true, false] {
            for stage in [Stage::OpenSent, Stage::OpenConfirm, Stage::Established] {
                let what = format!(
                    "local {local} remote {remote} AS {remote_asn}, first {}, {stage:?}",
                    if first_outgoing { "ours" } else { "theirs" }
                );
                let mut r = Run::new(local, remote, remote_asn);
                let mut all = r.connect(first_outgoing);
                assert_eq!(adopted(&all), Some(0), "{what}");
                match stage {
                    Stage::OpenSent => {}
                    Stage::OpenConfirm => all.extend(r.open(0)),
                    Stage::Established => all.extend(r.establish(0)),
                }
                let second = r.connect(!first_outgoing);
                if let Stage::Established = stage {
                    assert!(
                        matches!(second.as_slice(), [Action::Refuse { notify }] if notify == &collision_cease()),
                        "{what}: the Established connection stays: {second:?}"
                    );
                    assert_eq!(r.m.established(), Some(0), "{what}");
                    assert!(closed(&all).is_empty(), "{what}");
                    assert_eq!(peer_ups(&all), 1, "{what}");
                    continue;
                }
                assert_eq!(adopted(&second), Some(1), "{what}");
                all.extend(second);
                if let Stage::OpenSent = stage {
                    // The identifiers are known at the first OPEN, on either connection.
                    all.extend(r.open(1));
                }
                let losers = closed(&all);
                let ours_is_first = first_outgoing;
                let survivor = if we_win == ours_is_first { 0 } else { 1 };
                let loser = 1 - survivor;
                assert_eq!(losers, vec![(loser, COLLISION)], "{what}: {all:?}");
                assert!(r.m.has(survivor) && !r.m.has(loser), "{what}");
                // The survivor goes on to Established.
                let mut rest = Vec::new();
                if !matches!(
                    (stage, survivor),
                    (Stage::OpenConfirm, 0) | (Stage::OpenSent, 1)
                ) {
                    rest.extend(r.open(survivor));
                }
                rest.extend(r.keepalive(survivor));
                assert_eq!(r.m.established(), Some(survivor), "{what}: {rest:?}");
                all.extend(rest);
                assert_eq!(peer_ups(&all), 1, "{what}");
                assert_eq!(peer_downs(&all), 0, "{what}");
            }
        }
    }
}

/// A third connection while two are being resolved has no place.
#[test]
fn a_third_connection_is_refused() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    r.connect(false);
    let third = r.connect(false);
    assert!(
        matches!(third.as_slice(), [Action::Refuse { .. }]),
        "{third:?}"
    );
}

/// A reset for a malformed UPDATE (an NLRI block that cannot be read, RFC 7606 §5.3)
/// leaves nothing that says Established: the connection is closed with an UPDATE
/// Message Error, the RIB forgets the peer, the state is Idle, no connection is left.
#[test]
fn a_malformed_update_leaves_nothing_established() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    let up = r.establish(0);
    assert_eq!(peer_ups(&up), 1);
    let good = r.frame(0, &update(&[0, 0, 0, 0, 0, 0, 0, 1]));
    assert!(
        matches!(good.as_slice(), [Action::Update(inputs)] if inputs.len() == 1),
        "{good:?}"
    );
    let bad = r.frame(0, &update(&[0, 0, 0]));
    assert_eq!(
        closed(&bad),
        vec![(
            0,
            Some((
                codes::UPDATE_MESSAGE_ERROR,
                codes::update::OPTIONAL_ATTRIBUTE_ERROR
            ))
        )]
    );
    assert_eq!(peer_downs(&bad), 1, "{bad:?}");
    assert!(
        bad.iter().any(|a| matches!(a, Action::State("Idle"))),
        "{bad:?}"
    );
    assert!(!bad.iter().any(|a| matches!(a, Action::Update(_))));
    assert_eq!(r.m.established(), None);
    assert!(r.m.is_done());
}

/// The Established connection failing ends the session: PeerDown once, Idle; a
/// connection that fails before Established tells the RIB nothing.
#[test]
fn only_an_established_connection_failing_tells_the_rib() {
    let failed = |r: &mut Run| {
        r.ev(Event::Failed {
            conn: 0,
            reason: "peer closed the connection".into(),
        })
    };
    let mut r = Run::new(id(1), id(2), LOCAL_ASN);
    r.connect(false);
    r.establish(0);
    let gone = failed(&mut r);
    assert_eq!(closed(&gone), vec![(0, None)]);
    assert_eq!(peer_downs(&gone), 1);
    assert!(gone.iter().any(|a| matches!(a, Action::State("Idle"))));
    assert!(r.m.is_done());

    let mut r = Run::new(id(1), id(2), LOCAL_ASN);
    r.connect(true);
    r.open(0);
    let gone = failed(&mut r);
    assert_eq!(closed(&gone), vec![(0, None)]);
    assert_eq!(peer_downs(&gone), 0);
    assert!(r.m.is_done());
}

/// The hold timer (RFC 4271 §6.5): no message within the negotiated time closes the
/// connection with Hold Timer Expired and the peer's routes go.
#[test]
fn hold_timer_expiry_closes_and_the_routes_go() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    r.establish(0);
    let deadline = r.m.next_deadline().expect("keepalive and hold timers");
    assert!(deadline <= r.now + Duration::from_secs(9));
    // Before the hold time, a tick only sends KEEPALIVEs.
    r.now += Duration::from_secs(4);
    let early = r.ev(Event::Tick);
    assert!(closed(&early).is_empty(), "{early:?}");
    assert!(early
        .iter()
        .any(|a| matches!(a, Action::Send { msg, .. } if **msg == Message::Keepalive)));
    r.now += Duration::from_secs(6);
    let late = r.ev(Event::Tick);
    assert_eq!(
        closed(&late),
        vec![(0, Some((codes::HOLD_TIMER_EXPIRED, 0)))]
    );
    assert_eq!(peer_downs(&late), 1);
}

/// Stop sends Cease with the subcode asked for on every connection.
#[test]
fn stop_sends_cease_on_every_connection() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    r.connect(false);
    let acts = r.ev(Event::Stop { subcode: 2 });
    assert_eq!(
        closed(&acts),
        vec![(0, Some((codes::CEASE, 2))), (1, Some((codes::CEASE, 2)))]
    );
    assert!(r.m.is_done());
}

/// RFC 4486 §4: over the prefix limit, Cease / Maximum Number of Prefixes Reached,
/// with AFI, SAFI and the limit as data.
#[test]
fn over_the_limit_sends_cease_with_the_limit() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    r.establish(0);
    let acts = r.ev(Event::OverLimit(1000));
    match acts.first() {
        Some(Action::Close {
            conn: 0,
            notify: Some(n),
            ..
        }) => {
            assert_eq!(
                (n.code, n.subcode),
                (codes::CEASE, codes::cease::MAXIMUM_PREFIXES_REACHED)
            );
            assert_eq!(&n.data[..], &[0xff, 0xff, 0xff, 0, 0, 0x03, 0xe8]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(peer_downs(&acts), 1);
}

/// Routes and refreshes go to the RIB only once the session is Established, and in
/// the order they came; a ROUTE-REFRESH of another family is not ours.
#[test]
fn routes_reach_the_rib_in_order_after_peer_up() {
    let mut r = Run::new(id(9), id(2), LOCAL_ASN);
    r.connect(true);
    let up = r.establish(0);
    let kinds: Vec<&str> = up
        .iter()
        .filter_map(|a| match a {
            Action::Established { .. } => Some("established"),
            Action::PeerUp(_) => Some("up"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["established", "up"]);
    let rr = |afi, safi| {
        bytes(Message::RouteRefresh(crate::wire::RouteRefreshMsg {
            afi,
            subtype: 0,
            safi,
        }))
    };
    let acts = r.frame(0, &rr(Toy::AFI, Toy::SAFI));
    assert!(
        matches!(acts.as_slice(), [Action::RouteRefresh]),
        "{acts:?}"
    );
    let acts = r.frame(0, &rr(1, 1));
    assert!(acts.is_empty(), "{acts:?}");
}
