//! MP_REACH_NLRI (RFC 4760 §3): optional non-transitive, code 14.
//!
//! ```text
//! +---------------------------------------------------------+
//! | Address Family Identifier (2 octets)                    |
//! +---------------------------------------------------------+
//! | Subsequent Address Family Identifier (1 octet)          |
//! +---------------------------------------------------------+
//! | Length of Next Hop Network Address (1 octet)            |
//! +---------------------------------------------------------+
//! | Network Address of Next Hop (variable)                  |
//! +---------------------------------------------------------+
//! | Reserved (1 octet)                                      |
//! +---------------------------------------------------------+
//! | Network Layer Reachability Information (variable)       |
//! +---------------------------------------------------------+
//! ```
//! Next hop: 4 octets IPv4, 16 IPv6, 32 IPv6 global + link-local (RFC 2545 §3; for
//! EVPN the VTEP address, RFC 8365 §5.1.3). RFC 7606 §7.11: an inconsistent next-hop
//! length makes the NLRI unusable → session reset (we do not disable AFI/SAFI).
//! The NLRI stay bytes for the address family to decode.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, u8 as be_u8};

use super::{code, flags, MpNextHop, MpReach};
use crate::wire::{exact, fail, WireError, WireErrorKind};

impl MpNextHop {
    /// Bytes of the next-hop field.
    pub fn len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6(_) => 16,
            MpNextHop::V6LinkLocal(..) => 32,
        }
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn encode(&self, out: &mut BytesMut) {
        match self {
            MpNextHop::V4(a) => out.put_slice(&a.octets()),
            MpNextHop::V6(a) => out.put_slice(&a.octets()),
            MpNextHop::V6LinkLocal(g, l) => {
                out.put_slice(&g.octets());
                out.put_slice(&l.octets());
            }
        }
    }

    fn decode(b: &[u8]) -> Option<MpNextHop> {
        if let Ok(a) = <[u8; 4]>::try_from(b) {
            return Some(MpNextHop::V4(Ipv4Addr::from(a)));
        }
        if let Ok(a) = <[u8; 16]>::try_from(b) {
            return Some(MpNextHop::V6(Ipv6Addr::from(a)));
        }
        let (g, l) = b.split_first_chunk::<16>()?;
        let l = <[u8; 16]>::try_from(l).ok()?;
        Some(MpNextHop::V6LinkLocal(
            Ipv6Addr::from(*g),
            Ipv6Addr::from(l),
        ))
    }
}

impl MpReach {
    /// Decodes the attribute value. `nlri` shares `frame` if the value lies inside it
    /// (zero copy while the message is in flight), else it is copied.
    pub fn decode_value(value: &[u8]) -> Result<MpReach, WireError> {
        exact(value, |i| {
            let (i, afi) = be_u16(i)?;
            let (i, safi) = be_u8(i)?;
            let (i, nh_len) = be_u8(i)?;
            let nh_at = i;
            let (i, nh) = take(nh_len)(i)?;
            let Some(next_hop) = MpNextHop::decode(nh) else {
                return fail(
                    nh_at,
                    WireErrorKind::BadLength {
                        what: "mp_reach next hop",
                        got: usize::from(nh_len),
                    },
                );
            };
            let (i, _reserved) = be_u8(i)?;
            Ok((
                &[][..],
                MpReach {
                    afi,
                    safi,
                    next_hop,
                    nlri: Bytes::copy_from_slice(i),
                },
            ))
        })
    }

    /// Bytes of the whole attribute except its NLRI: flags, code, 2-octet length
    /// (always extended), AFI, SAFI, next-hop length, next hop, reserved. A sender
    /// fills a message up to 4096 with NLRI after this.
    pub fn header_len(&self) -> usize {
        4 + 2 + 1 + 1 + self.next_hop.len() + 1
    }

    /// Exactly the number of bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        self.header_len() + self.nlri.len()
    }

    /// Appends the whole attribute (header included), always with the extended
    /// length flag, as FRR does.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
        out.put_u8(code::MP_REACH_NLRI);
        let at = out.len();
        out.put_u16(0);
        out.put_u16(self.afi);
        out.put_u8(self.safi);
        out.put_u8(u8::try_from(self.next_hop.len()).unwrap_or(0));
        self.next_hop.encode(out);
        out.put_u8(0);
        out.put_slice(&self.nlri);
        crate::wire::patch_u16(out, at, out.len() - at - 2);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    pub fn arb_next_hop() -> impl Strategy<Value = MpNextHop> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|a| MpNextHop::V4(a.into())),
            any::<[u8; 16]>().prop_map(|a| MpNextHop::V6(a.into())),
            (any::<[u8; 16]>(), any::<[u8; 16]>())
                .prop_map(|(a, b)| MpNextHop::V6LinkLocal(a.into(), b.into())),
        ]
    }

    #[test]
    fn evpn_v4_next_hop() {
        let v = [0, 25, 70, 4, 198, 19, 0, 1, 0, 3, 17, 0];
        let m = MpReach::decode_value(&v).unwrap();
        assert_eq!(m.afi, 25);
        assert_eq!(m.safi, 70);
        assert_eq!(m.next_hop, MpNextHop::V4(Ipv4Addr::new(198, 19, 0, 1)));
        assert_eq!(&m.nlri[..], &[3, 17, 0]);
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(&out[..4], &[0x90, 14, 0, 12]);
        assert_eq!(&out[4..], &v[..]);
        assert_eq!(m.header_len(), 4 + 9);
    }

    #[test]
    fn rfc7606_7_11_bad_next_hop_length() {
        assert!(MpReach::decode_value(&[0, 25, 70, 5, 1, 2, 3, 4, 5, 0]).is_err());
        assert!(MpReach::decode_value(&[0, 25, 70, 0, 0]).is_err());
        // Truncated before the reserved octet.
        assert!(MpReach::decode_value(&[0, 25, 70, 4, 1, 2, 3, 4]).is_err());
        assert!(MpReach::decode_value(&[0, 25]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(afi: u16, safi: u8, nh in arb_next_hop(), nlri in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = MpReach { afi, safi, next_hop: nh, nlri: nlri.into() };
            let mut out = BytesMut::new();
            m.encode(&mut out);
            prop_assert_eq!(out.len(), m.encoded_len());
            prop_assert_eq!(MpReach::decode_value(&out[4..]).unwrap(), m);
        }
    }
}
