//! Counting the EVPN routes a client holds, exactly and cheaply.
//!
//! At K = 1000 the reflector delivers ~100 M routes, so the receive path walks the NLRI
//! block by type and length and allocates nothing per route. Every route the bench
//! originates is identified by (client, index), carried in its MAC (type 2) or originator
//! (type 3), so a bit per possible route — [`RouteSpace::index`] — is an exact set: a
//! duplicate never counts twice, a withdrawal of something not held changes nothing.
//!
//! A route is counted only if it is byte for byte what its originator sent (for a
//! withdrawal: its key fields, RFC 7432 §7.2 — labels and ESI are not part of it) and, when
//! announced, its next hop is the originator's address. Anything else is counted as
//! `unexpected` or `bad_next_hop`, never silently taken.
//!
//! Offsets into a type-2 body (RFC 7432 §7.2, IPv4, one label — what the bench sends):
//! RD 0..8, ESI 8..18, Ethernet Tag 18..22, MAC length 22, MAC 23..29, IP length 29,
//! IP 30..34, label 34..37. Type 3 (§7.3): RD 0..8, Ethernet Tag 8..12, IP length 12,
//! originator 13..17. The reference bodies come from the codec ([`Templates::new`]); a test
//! checks these offsets against it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::BytesMut;

use crate::netns::{client_addr, CLIENT_BASE};
use crate::routes::RouteSpace;

const T2_LEN: usize = 37;
const T3_LEN: usize = 17;
const MAC_AT: usize = 23;
const IP_AT: usize = 30;
/// Key fields of a type-2 body: the RD, then Ethernet Tag through IP.
const T2_KEY: [std::ops::Range<usize>; 2] = [0..8, 18..34];
const T3_ORIGINATOR_AT: usize = 13;

/// The bodies (without type and length octets) the bench's clients originate.
pub struct Templates {
    space: RouteSpace,
    /// Per client: the body of its type-2 route 0 (MAC and IP are patched per route).
    type2: Vec<[u8; T2_LEN]>,
    /// Per client: the body of its type-3 route.
    type3: Vec<[u8; T3_LEN]>,
}

/// The body of `route` as the codec encodes it (type and length octets dropped).
fn body<const N: usize>(route: &evpn::EvpnRoute) -> [u8; N] {
    let mut b = BytesMut::new();
    route.encode(&mut b);
    let mut out = [0u8; N];
    if let Some(src) = b.get(2..) {
        if src.len() == N {
            out.copy_from_slice(src);
        }
    }
    out
}

impl Templates {
    pub fn new(space: &RouteSpace) -> Arc<Templates> {
        Arc::new(Templates {
            type2: (0..space.clients)
                .map(|c| body(&space.type2(c, 0)))
                .collect(),
            type3: (0..space.clients).map(|c| body(&space.type3(c))).collect(),
            space: space.clone(),
        })
    }

    /// The exact body of type-2 route `r` of client `c`.
    fn type2_body(&self, c: u32, r: u32) -> Option<[u8; T2_LEN]> {
        let mut b = *self.type2.get(usize::try_from(c).ok()?)?;
        let mac = RouteSpace::mac(c, r).octets();
        b.get_mut(MAC_AT..MAC_AT + 6)?.copy_from_slice(&mac);
        b.get_mut(IP_AT..IP_AT + 4)?
            .copy_from_slice(&self.space.ip(c, r).octets());
        Some(b)
    }

    /// (client, dense index) of a route, if it is one of ours, unaltered. `key_only`: compare
    /// the key fields only (withdrawals).
    fn identify(&self, route_type: u8, body: &[u8], key_only: bool) -> Option<(u32, u64)> {
        match route_type {
            2 => {
                if body.len() != T2_LEN && !(key_only && body.len() >= T2_KEY[1].end) {
                    return None;
                }
                let mac = body.get(MAC_AT..MAC_AT + 6)?;
                let c = u32::from(u16::from_be_bytes([*mac.get(1)?, *mac.get(2)?]));
                let r = u32::from_be_bytes([0, *mac.get(3)?, *mac.get(4)?, *mac.get(5)?]);
                if r >= self.space.type2 {
                    return None;
                }
                let want = self.type2_body(c, r)?;
                let same = if key_only {
                    T2_KEY
                        .iter()
                        .all(|k| body.get(k.clone()) == want.get(k.clone()))
                } else {
                    body == want
                };
                same.then(|| (c, self.space.index(c, r)))
            }
            3 => {
                let ip = body.get(T3_ORIGINATOR_AT..T3_ORIGINATOR_AT + 4)?;
                let ip = u32::from_be_bytes(ip.try_into().ok()?);
                let c = ip.checked_sub(u32::from(CLIENT_BASE))?;
                let want = self.type3.get(usize::try_from(c).ok()?)?;
                (body == want).then(|| (c, self.space.index(c, self.space.type2)))
            }
            _ => None,
        }
    }
}

/// A malformed NLRI block: the framing does not add up (RFC 7606 §5.3 would reset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadNlri {
    pub offset: usize,
}

impl std::fmt::Display for BadNlri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EVPN NLRI block truncated at offset {}", self.offset)
    }
}

/// The routes one client holds.
pub struct Holdings {
    tmpl: Arc<Templates>,
    /// The client's own index: its own routes, if a reflector sends them back, are counted
    /// apart (`own`), not as held.
    me: Option<u32>,
    bits: Vec<u64>,
    /// Routes of other clients held.
    pub held: u64,
    /// Own routes sent back to us.
    pub own: u64,
    /// NLRI that are not ours or were altered.
    pub unexpected: u64,
    /// Announced routes whose next hop is not their originator.
    pub bad_next_hop: u64,
}

impl Holdings {
    pub fn new(tmpl: Arc<Templates>, me: Option<u32>) -> Holdings {
        let words = usize::try_from(tmpl.space.size().div_ceil(64)).unwrap_or(0);
        Holdings {
            tmpl,
            me,
            bits: vec![0; words],
            held: 0,
            own: 0,
            unexpected: 0,
            bad_next_hop: 0,
        }
    }

    /// Forgets everything (the session went down).
    pub fn clear(&mut self) {
        self.bits.fill(0);
        self.held = 0;
        self.own = 0;
    }

    /// Sets or clears the bit of `idx`; true if it changed.
    fn flip(&mut self, idx: u64, on: bool) -> bool {
        let Some(word) = usize::try_from(idx / 64)
            .ok()
            .and_then(|w| self.bits.get_mut(w))
        else {
            return false;
        };
        let bit = 1u64 << (idx % 64);
        let was = *word & bit != 0;
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
        was != on
    }

    fn count(&mut self, c: u32, delta_on: bool) {
        let slot = if Some(c) == self.me {
            &mut self.own
        } else {
            &mut self.held
        };
        if delta_on {
            *slot += 1;
        } else {
            *slot = slot.saturating_sub(1);
        }
    }

    /// The NLRI of an MP_REACH_NLRI with next hop `nh` (`None`: not an IPv4 next hop).
    pub fn reach(&mut self, nlri: &[u8], nh: Option<Ipv4Addr>) -> Result<(), BadNlri> {
        self.walk(
            nlri,
            |h, c, idx| {
                if nh != Some(client_addr(c)) {
                    h.bad_next_hop += 1;
                    return;
                }
                if h.flip(idx, true) {
                    h.count(c, true);
                }
            },
            false,
        )
    }

    /// The NLRI of an MP_UNREACH_NLRI.
    pub fn unreach(&mut self, nlri: &[u8]) -> Result<(), BadNlri> {
        self.walk(
            nlri,
            |h, c, idx| {
                if h.flip(idx, false) {
                    h.count(c, false);
                }
            },
            true,
        )
    }

    fn walk(
        &mut self,
        block: &[u8],
        mut each: impl FnMut(&mut Holdings, u32, u64),
        key_only: bool,
    ) -> Result<(), BadNlri> {
        let mut rest = block;
        while let [route_type, len, tail @ ..] = rest {
            let offset = block.len() - rest.len();
            let (body, next) = tail
                .split_at_checked(usize::from(*len))
                .ok_or(BadNlri { offset })?;
            match self.tmpl.identify(*route_type, body, key_only) {
                Some((c, idx)) => each(self, c, idx),
                None => self.unexpected += 1,
            }
            rest = next;
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(BadNlri {
                offset: block.len() - rest.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::tests::decode_all;
    use bgp::wire::{Message, MpNextHop};

    fn space() -> RouteSpace {
        RouteSpace::new(5, 120, 100).unwrap()
    }

    /// Feeds every UPDATE in `buf` to `h`, as the client's receive path does.
    fn feed(h: &mut Holdings, buf: &[u8]) {
        for m in decode_all(buf) {
            let Message::Update(u) = m else { continue };
            if let Some(mu) = &u.mp_unreach {
                h.unreach(&mu.nlri).unwrap();
            }
            if let Some(mp) = &u.mp_reach {
                let nh = match mp.next_hop {
                    MpNextHop::V4(a) => Some(a),
                    _ => None,
                };
                h.reach(&mp.nlri, nh).unwrap();
            }
        }
    }

    #[test]
    fn offsets_match_the_codec() {
        let s = space();
        let t = Templates::new(&s);
        for (c, r) in [(0, 0), (4, 119), (2, 77)] {
            assert_eq!(t.type2_body(c, r).unwrap(), body::<T2_LEN>(&s.type2(c, r)));
            assert_eq!(
                t.identify(2, &body::<T2_LEN>(&s.type2(c, r)), false),
                Some((c, s.index(c, r)))
            );
        }
        assert_eq!(
            t.identify(3, &t.type3[3], false),
            Some((3, s.index(3, 120)))
        );
        assert_eq!(s.type2(1, 2).encoded_len(), 2 + T2_LEN);
        assert_eq!(s.type3(1).encoded_len(), 2 + T3_LEN);
    }

    #[test]
    fn counts_announcements_exactly_once() {
        let s = space();
        let t = Templates::new(&s);
        let mut h = Holdings::new(t, Some(0));
        for c in 1..5 {
            feed(&mut h, &s.announce(c, true));
        }
        assert_eq!(h.held, 4 * 121);
        // Duplicates (a reflector re-sending) change nothing.
        feed(&mut h, &s.announce(3, true));
        assert_eq!(h.held, 4 * 121);
        // Our own routes are kept apart.
        feed(&mut h, &s.announce(0, true));
        assert_eq!((h.held, h.own), (4 * 121, 121));
        assert_eq!((h.unexpected, h.bad_next_hop), (0, 0));
    }

    #[test]
    fn withdrawals_remove_and_unknown_withdrawals_do_nothing() {
        let s = space();
        let mut h = Holdings::new(Templates::new(&s), None);
        feed(&mut h, &s.announce(1, true));
        feed(&mut h, &s.announce(2, false));
        assert_eq!(h.held, 121 + 120);
        feed(&mut h, &s.withdraw(1, true));
        assert_eq!(h.held, 120);
        feed(&mut h, &s.withdraw(1, true));
        feed(&mut h, &s.withdraw(3, true));
        assert_eq!(h.held, 120);
        feed(&mut h, &s.withdraw(2, false));
        assert_eq!(h.held, 0);
        assert_eq!(h.unexpected, 0);
    }

    #[test]
    fn withdrawal_with_other_label_still_matches_the_key() {
        let s = space();
        let mut h = Holdings::new(Templates::new(&s), None);
        feed(&mut h, &s.announce(1, false));
        let mut b = body::<T2_LEN>(&s.type2(1, 5));
        b[34..37].copy_from_slice(&[0, 0, 0]);
        let mut nlri = vec![2, T2_LEN as u8];
        nlri.extend_from_slice(&b);
        h.unreach(&nlri).unwrap();
        assert_eq!(h.held, 119);
        // ... but an announcement with another label is not ours.
        h.reach(&nlri, Some(client_addr(1))).unwrap();
        assert_eq!((h.held, h.unexpected), (119, 1));
    }

    #[test]
    fn foreign_altered_and_misdirected_routes_are_not_counted() {
        let s = space();
        let mut h = Holdings::new(Templates::new(&s), None);
        let mut b = body::<T2_LEN>(&s.type2(1, 5));
        let good = b;
        b[5] ^= 1; // another RD
        let mut nlri = vec![2, T2_LEN as u8];
        nlri.extend_from_slice(&b);
        nlri.extend_from_slice(&[5, 3, 1, 2, 3]); // a type-5 route
                                                  // Client index 9 does not exist; route index 200 neither.
        let mut far = good;
        far[23..29].copy_from_slice(&RouteSpace::mac(9, 0).octets());
        nlri.extend_from_slice(&[2, T2_LEN as u8]);
        nlri.extend_from_slice(&far);
        h.reach(&nlri, Some(client_addr(1))).unwrap();
        assert_eq!((h.held, h.unexpected), (0, 3));
        let mut ok = vec![2, T2_LEN as u8];
        ok.extend_from_slice(&good);
        h.reach(&ok, Some(client_addr(2))).unwrap();
        assert_eq!((h.held, h.bad_next_hop), (0, 1));
        h.reach(&ok, Some(client_addr(1))).unwrap();
        assert_eq!(h.held, 1);
    }

    #[test]
    fn truncated_blocks_are_errors_not_panics() {
        let s = space();
        let mut h = Holdings::new(Templates::new(&s), None);
        assert_eq!(h.reach(&[2], None), Err(BadNlri { offset: 0 }));
        assert_eq!(h.reach(&[2, 37, 0, 0], None), Err(BadNlri { offset: 0 }));
        let mut block = vec![3, T3_LEN as u8];
        block.extend_from_slice(&body::<T3_LEN>(&s.type3(1)));
        block.extend_from_slice(&[2, 200, 1]);
        assert_eq!(h.unreach(&block), Err(BadNlri { offset: 19 }));
        // Random bytes never panic.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut v = Vec::new();
            for _ in 0..(x % 90) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((x >> 16) as u8);
            }
            let _ = h.reach(&v, Some(client_addr(1)));
            let _ = h.unreach(&v);
        }
    }

    #[test]
    fn clear_forgets() {
        let s = space();
        let mut h = Holdings::new(Templates::new(&s), None);
        feed(&mut h, &s.announce(4, true));
        assert_eq!(h.held, 121);
        h.clear();
        assert_eq!(h.held, 0);
        feed(&mut h, &s.announce(4, true));
        assert_eq!(h.held, 121);
    }
}
