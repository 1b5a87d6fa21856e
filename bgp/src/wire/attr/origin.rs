//! ORIGIN (RFC 4271 §4.3 a, §5.1.1): well-known mandatory, one octet.
//!
//! ```text
//! +--------+
//! | origin |   0 = IGP, 1 = EGP, 2 = INCOMPLETE
//! +--------+
//! ```
//! RFC 7606 §7.1: length other than 1 or an undefined value → treat-as-withdraw.

use bytes::{BufMut, BytesMut};

use super::Origin;
use crate::wire::{WireError, WireErrorKind};

impl Origin {
    /// Decodes the attribute value (exactly one octet, 0..=2).
    pub fn decode_value(value: &[u8]) -> Result<Origin, WireError> {
        match value {
            [0] => Ok(Origin::Igp),
            [1] => Ok(Origin::Egp),
            [2] => Ok(Origin::Incomplete),
            [v] => Err(WireError::new(
                WireErrorKind::BadValue {
                    what: "origin",
                    got: u64::from(*v),
                },
                1,
            )),
            _ => Err(WireError::new(
                WireErrorKind::BadLength {
                    what: "origin",
                    got: value.len(),
                },
                value.len(),
            )),
        }
    }

    /// Appends the value octet.
    pub fn encode_value(self, out: &mut BytesMut) {
        out.put_u8(self as u8);
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Igp => "igp",
            Origin::Egp => "egp",
            Origin::Incomplete => "incomplete",
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trip() {
        for o in [Origin::Igp, Origin::Egp, Origin::Incomplete] {
            let mut out = BytesMut::new();
            o.encode_value(&mut out);
            assert_eq!(Origin::decode_value(&out).unwrap(), o);
        }
    }

    #[test]
    fn bad_value_and_length() {
        assert!(matches!(
            Origin::decode_value(&[3]).unwrap_err().kind,
            WireErrorKind::BadValue { .. }
        ));
        assert!(matches!(
            Origin::decode_value(&[0, 0]).unwrap_err().kind,
            WireErrorKind::BadLength { .. }
        ));
        assert!(Origin::decode_value(&[]).is_err());
    }
}
