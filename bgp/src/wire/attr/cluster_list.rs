//! CLUSTER_LIST (RFC 4456 §8): a sequence of 4-octet CLUSTER_IDs.
//!
//! ```text
//! +------------+------------+-----
//! | cluster id | cluster id | ...
//! +------------+------------+-----
//! ```
//! RFC 7606 §7.10: a length that is not a non-zero multiple of 4 → treat-as-withdraw.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::wire::{WireError, WireErrorKind};

/// Decodes the value.
pub fn decode(value: &[u8]) -> Result<Vec<Ipv4Addr>, WireError> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return Err(WireError::new(
            WireErrorKind::BadLength {
                what: "cluster_list",
                got: value.len(),
            },
            value.len(),
        ));
    }
    Ok(value
        .chunks_exact(4)
        .map(|c| Ipv4Addr::from(<[u8; 4]>::try_from(c).unwrap_or_default()))
        .collect())
}

/// Bytes of the value.
pub fn value_len(list: &[Ipv4Addr]) -> usize {
    4 * list.len()
}

/// Appends the value.
pub fn encode(list: &[Ipv4Addr], out: &mut BytesMut) {
    for id in list {
        out.put_slice(&id.octets());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let l = vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)];
        let mut out = BytesMut::new();
        encode(&l, &mut out);
        assert_eq!(out.len(), value_len(&l));
        assert_eq!(decode(&out).unwrap(), l);
        assert!(decode(&[1, 2, 3, 4, 5]).is_err());
        assert!(decode(&[]).is_err());
    }
}
