//! Ethernet Segment Identifier (RFC 7432 §5).
//!
//! ```text
//! +---+---+---+---+---+---+---+---+---+---+
//! | T |          ESI Value (9 octets)     |
//! +---+---+---+---+---+---+---+---+---+---+
//! ```
//!
//! Kept as its ten raw octets: vxbgp originates single-homed routes only (ESI 0,
//! RFC 7432 §5 "a single-homed CE [...] ESI 0") and reflects any other ESI as is.
//! Text is FRR's: ten two-digit hex octets separated by `:`.

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;

use crate::error::{array, PResult, ParseTextError};
use crate::vni::parse_hex_octets;

/// An Ethernet Segment Identifier as its 10 wire octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Esi(pub [u8; 10]);

impl Esi {
    /// On-wire size.
    pub const LEN: usize = 10;
    /// The ESI of a single-homed site.
    pub const ZERO: Esi = Esi([0; 10]);

    /// The ESI type (first octet, RFC 7432 §5).
    pub const fn esi_type(&self) -> u8 {
        self.0[0]
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    pub(crate) fn decode(input: &[u8]) -> PResult<'_, Self> {
        let (rest, raw) = array::<10>(input, "ESI")?;
        Ok((rest, Self(raw)))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.0);
    }
}

impl fmt::Display for Esi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Esi {
    type Err = ParseTextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut raw = [0u8; 10];
        parse_hex_octets(
            s,
            &mut raw,
            "ESI",
            "expected ten two-digit hex octets separated by ':'",
        )?;
        Ok(Esi(raw))
    }
}

crate::error::serde_as_text!(Esi);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::decode_exact;
    use proptest::prelude::*;

    #[test]
    fn zero_text() {
        assert_eq!(Esi::ZERO.to_string(), "00:00:00:00:00:00:00:00:00:00");
        assert!(Esi::ZERO.is_zero());
        assert!("00:00:00:00:00:00:00:00:00".parse::<Esi>().is_err());
    }

    proptest! {
        #[test]
        fn round_trips(raw in any::<[u8; 10]>()) {
            let esi = Esi(raw);
            prop_assert_eq!(esi.to_string().parse::<Esi>(), Ok(esi));
            let decoded = decode_exact(&raw, Esi::decode).unwrap();
            let mut out = BytesMut::new();
            decoded.encode(&mut out);
            prop_assert_eq!(&out[..], &raw[..]);
        }
    }
}
