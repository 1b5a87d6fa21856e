//! ROUTE-REFRESH (RFC 2918 §3; the subtype octet of RFC 7313).
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Res.  | SAFI  |
//! +-------+-------+-------+-------+
//! ```

use bytes::{BufMut, BytesMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRefreshMsg {
    pub afi: u16,
    /// 0 = normal request (the "reserved" octet of RFC 2918).
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefreshMsg {
    /// Decodes the 4-octet body; `None` if the body is not exactly 4 octets (the
    /// caller sends RFC 7313's ROUTE-REFRESH Message Error / Invalid Message Length).
    pub fn decode(body: &[u8]) -> Option<RouteRefreshMsg> {
        match body {
            [a, b, subtype, safi] => Some(RouteRefreshMsg {
                afi: u16::from_be_bytes([*a, *b]),
                subtype: *subtype,
                safi: *safi,
            }),
            _ => None,
        }
    }

    /// Exactly the number of body bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        4
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u16(self.afi);
        out.put_u8(self.subtype);
        out.put_u8(self.safi);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evpn_refresh() {
        let rr = RouteRefreshMsg::decode(&[0, 25, 0, 70]).unwrap();
        assert_eq!(
            rr,
            RouteRefreshMsg {
                afi: 25,
                subtype: 0,
                safi: 70
            }
        );
        assert!(RouteRefreshMsg::decode(&[0, 25, 0]).is_none());
        assert!(RouteRefreshMsg::decode(&[0, 25, 0, 70, 0]).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(afi: u16, subtype: u8, safi: u8) {
            let rr = RouteRefreshMsg { afi, subtype, safi };
            let mut out = BytesMut::new();
            rr.encode(&mut out);
            prop_assert_eq!(out.len(), rr.encoded_len());
            prop_assert_eq!(RouteRefreshMsg::decode(&out), Some(rr));
        }
    }
}
