//! Attributes carried as bytes (RFC 4271 §5): AGGREGATOR (held in 4-octet form),
//! COMMUNITIES, LARGE_COMMUNITY and unknown optional transitive attributes (kept
//! with PARTIAL set, re-emitted as is).
//!
//! AGGREGATOR (RFC 4271 §5.1.7, RFC 6793 §4): `AS (2 or 4 octets) | IPv4 (4)`.
//! `RawAttr` for code 7 always holds the 8-octet form; a 2-octet session receives
//! 6 octets (merged with AS4_AGGREGATOR when the AS is AS_TRANS) and is sent 6 octets
//! plus AS4_AGGREGATOR when the AS does not fit.

use std::net::Ipv4Addr;

use super::{code, flags, RawAttr};
use crate::wire::open::AS_TRANS;
use crate::wire::{WireError, WireErrorKind};

impl RawAttr {
    /// The (AS, address) of an AGGREGATOR held in 4-octet form.
    pub fn aggregator(&self) -> Option<(u32, Ipv4Addr)> {
        if self.code != code::AGGREGATOR {
            return None;
        }
        decode_aggregator(&self.value, true).ok()
    }

    /// An AGGREGATOR in the 4-octet form held in `PathAttrs::other`.
    pub fn new_aggregator(asn: u32, addr: Ipv4Addr) -> RawAttr {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(&asn.to_be_bytes());
        v.extend_from_slice(&addr.octets());
        RawAttr {
            flags: flags::OPTIONAL | flags::TRANSITIVE,
            code: code::AGGREGATOR,
            value: v.into(),
        }
    }
}

/// Decodes an AGGREGATOR (or AS4_AGGREGATOR with `as4`) value.
pub fn decode_aggregator(value: &[u8], as4: bool) -> Result<(u32, Ipv4Addr), WireError> {
    let bad = || {
        WireError::new(
            WireErrorKind::BadLength {
                what: "aggregator",
                got: value.len(),
            },
            value.len(),
        )
    };
    if as4 {
        let b: [u8; 8] = value.try_into().map_err(|_| bad())?;
        let [a0, a1, a2, a3, i0, i1, i2, i3] = b;
        Ok((
            u32::from_be_bytes([a0, a1, a2, a3]),
            Ipv4Addr::new(i0, i1, i2, i3),
        ))
    } else {
        let b: [u8; 6] = value.try_into().map_err(|_| bad())?;
        let [a0, a1, i0, i1, i2, i3] = b;
        Ok((
            u32::from(u16::from_be_bytes([a0, a1])),
            Ipv4Addr::new(i0, i1, i2, i3),
        ))
    }
}

/// The 2-octet AGGREGATOR value for a 2-octet session (AS_TRANS if it does not fit).
pub fn aggregator_value_2(asn: u32, addr: Ipv4Addr) -> [u8; 6] {
    let a = u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes();
    let o = addr.octets();
    [a[0], a[1], o[0], o[1], o[2], o[3]]
}

/// Validates values we carry but do not interpret: COMMUNITIES must be a multiple of
/// 4 (RFC 7606 §7.8), LARGE_COMMUNITY of 12 (RFC 8092 §5); both non-empty.
pub fn check_multiple(what: &'static str, value: &[u8], unit: usize) -> Result<(), WireError> {
    if value.is_empty() || !value.len().is_multiple_of(unit) {
        return Err(WireError::new(
            WireErrorKind::BadLength {
                what,
                got: value.len(),
            },
            value.len(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn aggregator_forms() {
        let a = RawAttr::new_aggregator(4_200_000_000, Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(
            a.aggregator(),
            Some((4_200_000_000, Ipv4Addr::new(1, 2, 3, 4)))
        );
        assert_eq!(
            aggregator_value_2(4_200_000_000, Ipv4Addr::new(1, 2, 3, 4)),
            [0x5b, 0xa0, 1, 2, 3, 4]
        );
        assert_eq!(
            decode_aggregator(&[0xfd, 0xe9, 1, 2, 3, 4], false).unwrap(),
            (65001, Ipv4Addr::new(1, 2, 3, 4))
        );
        assert!(decode_aggregator(&[0; 7], true).is_err());
        assert!(check_multiple("communities", &[0; 8], 4).is_ok());
        assert!(check_multiple("communities", &[0; 5], 4).is_err());
    }
}
