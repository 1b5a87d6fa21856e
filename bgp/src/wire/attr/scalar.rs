//! Fixed-size attributes: NEXT_HOP (RFC 4271 §5.1.3), MULTI_EXIT_DISC (§5.1.4),
//! LOCAL_PREF (§5.1.5), ORIGINATOR_ID (RFC 4456 §8), ATOMIC_AGGREGATE (§5.1.6).
//!
//! ```text
//! NEXT_HOP, ORIGINATOR_ID: 4-octet IPv4 address
//! MED, LOCAL_PREF:         4-octet unsigned integer
//! ATOMIC_AGGREGATE:        empty
//! ```
//! RFC 7606 §7.3, §7.4, §7.5, §7.9: wrong length → treat-as-withdraw; §7.6:
//! ATOMIC_AGGREGATE of non-zero length → attribute discard.

use std::net::Ipv4Addr;

use crate::wire::{WireError, WireErrorKind};

fn bad_len(what: &'static str, value: &[u8]) -> WireError {
    WireError::new(
        WireErrorKind::BadLength {
            what,
            got: value.len(),
        },
        value.len(),
    )
}

/// A 4-octet unsigned integer value (MED, LOCAL_PREF).
pub fn decode_u32(what: &'static str, value: &[u8]) -> Result<u32, WireError> {
    let b: [u8; 4] = value.try_into().map_err(|_| bad_len(what, value))?;
    Ok(u32::from_be_bytes(b))
}

/// A 4-octet IPv4 address value (NEXT_HOP, ORIGINATOR_ID).
pub fn decode_ipv4(what: &'static str, value: &[u8]) -> Result<Ipv4Addr, WireError> {
    let b: [u8; 4] = value.try_into().map_err(|_| bad_len(what, value))?;
    Ok(Ipv4Addr::from(b))
}

/// The empty value of ATOMIC_AGGREGATE.
pub fn decode_empty(what: &'static str, value: &[u8]) -> Result<(), WireError> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(bad_len(what, value))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fixed_sizes() {
        assert_eq!(decode_u32("med", &[0, 0, 1, 0]).unwrap(), 256);
        assert!(decode_u32("med", &[0, 0, 1]).is_err());
        assert!(decode_u32("med", &[0, 0, 1, 0, 0]).is_err());
        assert_eq!(
            decode_ipv4("next_hop", &[198, 19, 0, 1]).unwrap(),
            Ipv4Addr::new(198, 19, 0, 1)
        );
        assert!(decode_ipv4("next_hop", &[1, 2, 3]).is_err());
        assert!(decode_empty("atomic_aggregate", &[]).is_ok());
        assert!(decode_empty("atomic_aggregate", &[1]).is_err());
    }
}
