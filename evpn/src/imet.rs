//! Route type 3, Inclusive Multicast Ethernet Tag (RFC 7432 §7.3).
//!
//! ```text
//! +---------------------------------------+
//! |  RD (8 octets)                        |
//! +---------------------------------------+
//! |  Ethernet Tag ID (4 octets)           |
//! +---------------------------------------+
//! |  IP Address Length (1 octet)          |   32 or 128 (bits)
//! +---------------------------------------+
//! |  Originating Router's IP Address      |
//! |          (4 or 16 octets)             |
//! +---------------------------------------+
//! ```
//!
//! The VNI of a type-3 route is not in the NLRI: it is the label of the
//! PMSI_TUNNEL attribute (RFC 8365 §5.1.3), see [`crate::pmsi`]. Every field is
//! part of the route key.

use std::fmt;
use std::net::IpAddr;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::error::{
    decode_exact, ip_bits, ip_of_len, put_ip, u32_field, u8_field, EvpnError, PResult,
};
use crate::rd::RouteDistinguisher;

/// An Inclusive Multicast Ethernet Tag route.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImetRoute {
    pub rd: RouteDistinguisher,
    pub eth_tag: u32,
    pub originator: IpAddr,
}

/// What identifies a type-3 destination: (RD, Ethernet Tag, originator).
pub type ImetKey = (RouteDistinguisher, u32, IpAddr);

impl ImetRoute {
    /// Route type code (RFC 7432 §7).
    pub const ROUTE_TYPE: u8 = 3;

    /// Decodes exactly one route body (after the type and length octets).
    pub fn decode(body: &[u8]) -> Result<Self, EvpnError> {
        decode_exact(body, Self::decode_fields)
    }

    fn decode_fields(input: &[u8]) -> PResult<'_, Self> {
        let (input, rd) = RouteDistinguisher::decode(input)?;
        let (input, eth_tag) = u32_field(input, "Ethernet Tag ID")?;
        let ip_len_at = input;
        let (input, ip_len) = u8_field(input, "IP Address Length")?;
        let (input, originator) =
            ip_of_len(input, ip_len, ip_len_at, "Originating Router's IP Address")?;
        Ok((
            input,
            Self {
                rd,
                eth_tag,
                originator,
            },
        ))
    }

    /// Exactly the number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        RouteDistinguisher::LEN + 4 + 1 + usize::from(ip_bits(&self.originator) / 8)
    }

    /// Appends the route body (without type and length).
    pub fn encode(&self, out: &mut BytesMut) {
        self.rd.encode(out);
        out.extend_from_slice(&self.eth_tag.to_be_bytes());
        out.extend_from_slice(&[ip_bits(&self.originator)]);
        put_ip(&self.originator, out);
    }

    /// The RIB key: every field.
    pub fn key(&self) -> ImetKey {
        (self.rd, self.eth_tag, self.originator)
    }
}

/// FRR's prefix text: `[3]:[0]:[32]:[198.19.0.1]`.
impl fmt::Display for ImetRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[3]:[{}]:[{}]:[{}]",
            self.eth_tag,
            ip_bits(&self.originator),
            self.originator
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub(crate) fn sample() -> ImetRoute {
        ImetRoute {
            rd: RouteDistinguisher::ipv4(Ipv4Addr::new(198, 19, 0, 1), 3),
            eth_tag: 0,
            originator: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1)),
        }
    }

    pub(crate) const SAMPLE_BODY: [u8; 17] = [
        0, 1, 198, 19, 0, 1, 0, 3, // RD 198.19.0.1:3
        0, 0, 0, 0, // Ethernet Tag 0
        32, 198, 19, 0, 1, // originator
    ];

    fn encode(r: &ImetRoute) -> BytesMut {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn deconstruct_and_construct() {
        assert_eq!(ImetRoute::decode(&SAMPLE_BODY), Ok(sample()));
        assert_eq!(&encode(&sample())[..], &SAMPLE_BODY[..]);
        assert_eq!(sample().encoded_len(), 17);
        assert_eq!(sample().to_string(), "[3]:[0]:[32]:[198.19.0.1]");
    }

    #[test]
    fn malformed() {
        let mut body = SAMPLE_BODY;
        body[12] = 0;
        assert_eq!(
            ImetRoute::decode(&body),
            Err(EvpnError {
                offset: 12,
                kind: ErrorKind::BadIpLength(0)
            })
        );
        let mut long = SAMPLE_BODY.to_vec();
        long.push(9);
        assert_eq!(
            ImetRoute::decode(&long),
            Err(EvpnError {
                offset: 17,
                kind: ErrorKind::TrailingBytes(1)
            })
        );
        for n in 0..SAMPLE_BODY.len() {
            assert!(ImetRoute::decode(&SAMPLE_BODY[..n]).is_err());
        }
    }

    pub(crate) fn any_imet() -> impl Strategy<Value = ImetRoute> {
        let ip = prop_oneof![
            any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        ];
        (any::<[u8; 8]>(), any::<u32>(), ip).prop_map(|(rd, eth_tag, originator)| ImetRoute {
            rd: RouteDistinguisher(rd),
            eth_tag,
            originator,
        })
    }

    proptest! {
        #[test]
        fn round_trip(r in any_imet()) {
            let bytes = encode(&r);
            prop_assert_eq!(bytes.len(), r.encoded_len());
            prop_assert_eq!(ImetRoute::decode(&bytes), Ok(r));
        }

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(r) = ImetRoute::decode(&body) {
                prop_assert_eq!(&encode(&r)[..], &body[..]);
            }
        }
    }
}
