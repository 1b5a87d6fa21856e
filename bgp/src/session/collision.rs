//! Connection collision resolution (RFC 4271 §6.8, RFC 6286 §2.3) as pure functions:
//! the session asks [`loser`] whenever it holds two connections to one peer and
//! knows the peer's BGP identifier, and closes the one named.

use std::net::Ipv4Addr;

/// Which of two connections to the same peer survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The connection this speaker opened (active).
    Outgoing,
    /// The connection the peer opened (passive).
    Incoming,
}

/// Both speakers' identities, once the peer's OPEN is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub local_id: Ipv4Addr,
    pub local_asn: u32,
    pub remote_id: Ipv4Addr,
    pub remote_asn: u32,
}

/// RFC 4271 §6.8: "the connection initiated by the BGP speaker with the larger value
/// of the BGP Identifier is preserved". RFC 6286 §2.3: with equal identifiers (allowed
/// between ASes), the one initiated by the speaker with the larger AS number. (Equal
/// identifiers within one AS never get here: the OPEN is refused, RFC 6286 §2.1.)
pub fn resolve(ids: Ids) -> Keep {
    let ours = (u32::from(ids.local_id), ids.local_asn);
    let theirs = (u32::from(ids.remote_id), ids.remote_asn);
    if ours > theirs {
        Keep::Outgoing
    } else {
        Keep::Incoming
    }
}

/// How far a connection got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Our TCP connect is still under way: no connection yet.
    Connect,
    /// Our OPEN is sent, the peer's not received.
    OpenSent,
    /// Both OPENs exchanged, waiting for the peer's KEEPALIVE.
    OpenConfirm,
    Established,
}

/// One of the two connections, as collision resolution sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// We opened it.
    pub outgoing: bool,
    pub stage: Stage,
}

/// One of two connections, by position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    First,
    Second,
}

/// Which of two connections to one peer to close (`first` is the older one).
///
/// - An Established connection always wins (RFC 4271 §6.8: a collision with an
///   Established connection is resolved in its favour).
/// - A connect still under way has nothing to lose and gives way to a connection
///   that exists.
/// - Otherwise the identifiers decide between ours and theirs ([`resolve`]); two
///   connections opened by the same side (the peer connected twice) keep the one
///   further along, else the older.
pub fn loser(ids: Ids, first: Conn, second: Conn) -> Which {
    match (first.stage, second.stage) {
        (Stage::Established, _) => return Which::Second,
        (_, Stage::Established) => return Which::First,
        (Stage::Connect, Stage::Connect) => return Which::Second,
        (Stage::Connect, _) => return Which::First,
        (_, Stage::Connect) => return Which::Second,
        _ => {}
    }
    if first.outgoing == second.outgoing {
        return if second.stage > first.stage {
            Which::First
        } else {
            Which::Second
        };
    }
    let keep_outgoing = resolve(ids) == Keep::Outgoing;
    if first.outgoing == keep_outgoing {
        Which::Second
    } else {
        Which::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    const HI: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

    fn ids(local_id: Ipv4Addr, local_asn: u32, remote_id: Ipv4Addr, remote_asn: u32) -> Ids {
        Ids {
            local_id,
            local_asn,
            remote_id,
            remote_asn,
        }
    }

    /// The two speakers' views of one pair of identities.
    fn both_sides(a: Ids) -> (Ids, Ids) {
        let b = ids(a.remote_id, a.remote_asn, a.local_id, a.local_asn);
        (a, b)
    }

    #[test]
    fn larger_identifier_keeps_its_own_connection() {
        assert_eq!(resolve(ids(HI, 65000, LO, 65000)), Keep::Outgoing);
        assert_eq!(resolve(ids(LO, 65000, HI, 65000)), Keep::Incoming);
        // RFC 6286 §2.3: equal identifiers, the larger AS keeps its own.
        assert_eq!(resolve(ids(LO, 65002, LO, 65001)), Keep::Outgoing);
        assert_eq!(resolve(ids(LO, 65001, LO, 65002)), Keep::Incoming);
    }

    #[test]
    fn both_sides_agree_on_the_survivor() {
        for a in [
            ids(HI, 65000, LO, 65000),
            ids(LO, 65000, HI, 65000),
            ids(LO, 65001, LO, 65002),
            ids(LO, 65002, LO, 65001),
        ] {
            let (a, b) = both_sides(a);
            // a's outgoing connection is b's incoming one: the same TCP connection.
            let a_keeps_its_own = resolve(a) == Keep::Outgoing;
            let b_keeps_a_s = resolve(b) == Keep::Incoming;
            assert_eq!(a_keeps_its_own, b_keeps_a_s, "{a:?}");
        }
    }

    /// Every order (inbound first, outbound first) × local identifier higher, lower,
    /// equal (AS higher, lower) × the first connection's stage: who is closed.
    #[test]
    fn every_collision_order() {
        let stages = [
            Stage::Connect,
            Stage::OpenSent,
            Stage::OpenConfirm,
            Stage::Established,
        ];
        let cases = [
            ("local id higher", ids(HI, 65000, LO, 65000), Keep::Outgoing),
            ("local id lower", ids(LO, 65000, HI, 65000), Keep::Incoming),
            (
                "equal ids, local AS higher",
                ids(LO, 65002, LO, 65001),
                Keep::Outgoing,
            ),
            (
                "equal ids, local AS lower",
                ids(LO, 65001, LO, 65002),
                Keep::Incoming,
            ),
        ];
        for (what, ids, keep) in cases {
            for outbound_first in [true, false] {
                for &stage in &stages {
                    // The second connection is the other direction, just past its OPEN.
                    let first = Conn {
                        outgoing: outbound_first,
                        stage,
                    };
                    for second_stage in [Stage::OpenSent, Stage::OpenConfirm] {
                        let second = Conn {
                            outgoing: !outbound_first,
                            stage: second_stage,
                        };
                        let got = loser(ids, first, second);
                        let want = match stage {
                            Stage::Established => Which::Second,
                            Stage::Connect => Which::First,
                            _ if (keep == Keep::Outgoing) == outbound_first => Which::Second,
                            _ => Which::First,
                        };
                        assert_eq!(
                            got, want,
                            "{what}, outbound first: {outbound_first}, first {stage:?}, \
                             second {second_stage:?}"
                        );
                        // Order does not matter: the same connection loses.
                        let swapped = loser(ids, second, first);
                        let same = matches!(
                            (got, swapped),
                            (Which::First, Which::Second) | (Which::Second, Which::First)
                        );
                        assert!(same, "{what}: {stage:?}, {second_stage:?} swapped");
                    }
                }
            }
        }
    }

    #[test]
    fn the_two_speakers_close_the_same_tcp_connection() {
        // A simultaneous open: each side has its outgoing and its incoming connection,
        // both in OpenConfirm. Whatever order each side saw them in, the connection
        // one side keeps is the one the other keeps.
        for a in [ids(HI, 65000, LO, 65000), ids(LO, 65001, LO, 65002)] {
            let (a, b) = both_sides(a);
            let out = Conn {
                outgoing: true,
                stage: Stage::OpenConfirm,
            };
            let inc = Conn {
                outgoing: false,
                stage: Stage::OpenConfirm,
            };
            for (a_first, b_first) in [(out, out), (out, inc), (inc, out), (inc, inc)] {
                let a_second = if a_first == out { inc } else { out };
                let b_second = if b_first == out { inc } else { out };
                let a_kept = match loser(a, a_first, a_second) {
                    Which::First => a_second,
                    Which::Second => a_first,
                };
                let b_kept = match loser(b, b_first, b_second) {
                    Which::First => b_second,
                    Which::Second => b_first,
                };
                // a's outgoing is b's incoming.
                assert_eq!(a_kept.outgoing, !b_kept.outgoing, "{a:?}");
            }
        }
    }

    #[test]
    fn the_peer_connecting_twice_keeps_the_connection_further_along() {
        let ids = ids(HI, 65000, LO, 65000);
        let older = Conn {
            outgoing: false,
            stage: Stage::OpenConfirm,
        };
        let newer = Conn {
            outgoing: false,
            stage: Stage::OpenSent,
        };
        assert_eq!(loser(ids, older, newer), Which::Second);
        assert_eq!(loser(ids, newer, older), Which::First);
        assert_eq!(loser(ids, newer, newer), Which::Second);
    }
}
