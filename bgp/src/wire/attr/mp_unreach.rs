//! MP_UNREACH_NLRI (RFC 4760 §4): optional non-transitive, code 15.
//!
//! ```text
//! +---------------------------------------------------------+
//! | Address Family Identifier (2 octets)                    |
//! +---------------------------------------------------------+
//! | Subsequent Address Family Identifier (1 octet)          |
//! +---------------------------------------------------------+
//! | Withdrawn Routes (variable)                             |
//! +---------------------------------------------------------+
//! ```
//! An empty one is the End-of-RIB marker of its family (RFC 4724 §2). RFC 7606 §7.12:
//! malformed → session reset (we do not disable AFI/SAFI).

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u16, u8 as be_u8};

use super::{code, flags, MpUnreach};
use crate::wire::{exact, WireError};

impl MpUnreach {
    /// Decodes the attribute value.
    pub fn decode_value(value: &[u8]) -> Result<MpUnreach, WireError> {
        exact(value, |i| {
            let (i, afi) = be_u16(i)?;
            let (i, safi) = be_u8(i)?;
            Ok((
                &[][..],
                MpUnreach {
                    afi,
                    safi,
                    nlri: Bytes::copy_from_slice(i),
                },
            ))
        })
    }

    /// Bytes of the attribute without its NLRI (flags, code, 2-octet length, AFI,
    /// SAFI).
    pub fn header_len(&self) -> usize {
        4 + 3
    }

    /// Exactly the number of bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        self.header_len() + self.nlri.len()
    }

    /// Appends the whole attribute, always with the extended length flag.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
        out.put_u8(code::MP_UNREACH_NLRI);
        out.put_u16(u16::try_from(3 + self.nlri.len()).unwrap_or(u16::MAX));
        out.put_u16(self.afi);
        out.put_u8(self.safi);
        out.put_slice(&self.nlri);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn end_of_rib_value() {
        let m = MpUnreach::decode_value(&[0, 25, 70]).unwrap();
        assert_eq!(
            m,
            MpUnreach {
                afi: 25,
                safi: 70,
                nlri: Bytes::new()
            }
        );
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(&out[..], &[0x90, 15, 0, 3, 0, 25, 70]);
    }

    #[test]
    fn rfc7606_7_12_truncated() {
        assert!(MpUnreach::decode_value(&[0, 25]).is_err());
        assert!(MpUnreach::decode_value(&[]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(afi: u16, safi: u8, nlri in proptest::collection::vec(any::<u8>(), 0..300)) {
            let m = MpUnreach { afi, safi, nlri: nlri.into() };
            let mut out = BytesMut::new();
            m.encode(&mut out);
            prop_assert_eq!(out.len(), m.encoded_len());
            prop_assert_eq!(MpUnreach::decode_value(&out[4..]).unwrap(), m);
        }
    }
}
