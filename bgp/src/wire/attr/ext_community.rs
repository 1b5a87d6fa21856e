//! EXTENDED_COMMUNITIES (RFC 4360 §2): a list of 8-octet values, kept raw so that
//! reflection is byte-exact; typed views live in the family crates.
//!
//! ```text
//! +---------+---------+---------------------------------------+
//! | type(1) | subtype | value (6)                             |
//! +---------+---------+---------------------------------------+
//! ```
//! RFC 7606 §7.14: a length that is not a non-zero multiple of 8 → treat-as-withdraw.

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;

use super::ExtCommunity;
use crate::wire::{In, Res, Wire, WireError, WireErrorKind};

impl ExtCommunity {
    /// The type octet (high-order octet, with the IANA-authority and transitive bits).
    pub fn type_high(&self) -> u8 {
        self.0[0]
    }

    /// The sub-type octet.
    pub fn subtype(&self) -> u8 {
        self.0[1]
    }

    /// Whether the community is transitive across ASes (RFC 4360 §2: bit 0x40 clear).
    pub fn is_transitive(&self) -> bool {
        self.0[0] & 0x40 == 0
    }
}

impl Wire for ExtCommunity {
    fn decode(input: In<'_>) -> Res<'_, Self> {
        let (rest, b) = take(8usize)(input)?;
        let mut v = [0u8; 8];
        v.copy_from_slice(b);
        Ok((rest, ExtCommunity(v)))
    }

    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_slice(&self.0);
    }
}

/// Decodes the attribute value.
pub fn decode(value: &[u8]) -> Result<Vec<ExtCommunity>, WireError> {
    if value.is_empty() || !value.len().is_multiple_of(8) {
        return Err(WireError::new(
            WireErrorKind::BadLength {
                what: "extended_communities",
                got: value.len(),
            },
            value.len(),
        ));
    }
    crate::wire::exact(value, nom::multi::many0(ExtCommunity::decode))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn route_target_and_encapsulation() {
        // RT 65001:100 and encapsulation VXLAN (RFC 9012 type 0x03/0x0c, tunnel 8).
        let v = [
            0x00, 0x02, 0xfd, 0xe9, 0, 0, 0, 100, 0x03, 0x0c, 0, 0, 0, 0, 0, 8,
        ];
        let l = decode(&v).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].type_high(), 0);
        assert_eq!(l[0].subtype(), 2);
        assert!(l[0].is_transitive());
        let mut out = BytesMut::new();
        for c in &l {
            c.encode(&mut out);
        }
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn bad_lengths() {
        assert!(decode(&[0; 7]).is_err());
        assert!(decode(&[0; 9]).is_err());
        assert!(decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(v in proptest::collection::vec(any::<[u8; 8]>(), 1..10)) {
            let l: Vec<ExtCommunity> = v.into_iter().map(ExtCommunity).collect();
            let mut out = BytesMut::new();
            for c in &l { c.encode(&mut out); }
            prop_assert_eq!(out.len(), l.iter().map(Wire::encoded_len).sum::<usize>());
            prop_assert_eq!(decode(&out).unwrap(), l);
        }
    }
}
