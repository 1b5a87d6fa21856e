//! Route type 2, MAC/IP Advertisement (RFC 7432 §7.2).
//!
//! ```text
//! +---------------------------------------+
//! |  RD (8 octets)                        |
//! +---------------------------------------+
//! |Ethernet Segment Identifier (10 octets)|
//! +---------------------------------------+
//! |  Ethernet Tag ID (4 octets)           |
//! +---------------------------------------+
//! |  MAC Address Length (1 octet)         |   48
//! +---------------------------------------+
//! |  MAC Address (6 octets)               |
//! +---------------------------------------+
//! |  IP Address Length (1 octet)          |   0, 32 or 128 (bits)
//! +---------------------------------------+
//! |  IP Address (0, 4, or 16 octets)      |
//! +---------------------------------------+
//! |  MPLS Label1 (3 octets)               |   VXLAN: the L2 VNI (RFC 8365 §5.1.3)
//! +---------------------------------------+
//! |  MPLS Label2 (0 or 3 octets)          |   VXLAN: the L3 VNI (RFC 9135)
//! +---------------------------------------+
//! ```
//!
//! §7.2: "For the purpose of BGP route key processing, only the Ethernet Tag ID,
//! MAC Address Length, MAC Address, IP Address Length, and IP Address fields are
//! considered to be part of the prefix in the NLRI" — with the RD, as for every
//! VPN route. The ESI and labels are properties of the path.

use std::fmt;
use std::net::IpAddr;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::error::{
    decode_exact, fail, ip_bits, ip_of_len, put_ip, u32_field, u8_field, ErrorKind, EvpnError,
    PResult,
};
use crate::esi::Esi;
use crate::rd::RouteDistinguisher;
use crate::vni::{Label, MacAddr};

/// MAC Address Length, in bits (RFC 7432 §7.2).
const MAC_BITS: u8 = 48;

/// A MAC/IP Advertisement route.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MacIpRoute {
    pub rd: RouteDistinguisher,
    pub esi: Esi,
    pub eth_tag: u32,
    pub mac: MacAddr,
    pub ip: Option<IpAddr>,
    pub label1: Label,
    pub label2: Option<Label>,
}

/// What identifies a type-2 destination: (RD, Ethernet Tag, MAC, IP).
pub type MacIpKey = (RouteDistinguisher, u32, MacAddr, Option<IpAddr>);

impl MacIpRoute {
    /// Route type code (RFC 7432 §7).
    pub const ROUTE_TYPE: u8 = 2;

    /// Decodes exactly one route body (after the type and length octets).
    pub fn decode(body: &[u8]) -> Result<Self, EvpnError> {
        decode_exact(body, Self::decode_fields)
    }

    fn decode_fields(input: &[u8]) -> PResult<'_, Self> {
        let (input, rd) = RouteDistinguisher::decode(input)?;
        let (input, esi) = Esi::decode(input)?;
        let (input, eth_tag) = u32_field(input, "Ethernet Tag ID")?;
        let mac_len_at = input;
        let (input, mac_len) = u8_field(input, "MAC Address Length")?;
        if mac_len != MAC_BITS {
            return fail(mac_len_at, ErrorKind::BadMacLength(mac_len));
        }
        let (input, mac) = crate::error::array::<6>(input, "MAC Address")?;
        let ip_len_at = input;
        let (input, ip_len) = u8_field(input, "IP Address Length")?;
        let (input, ip) = match ip_len {
            0 => (input, None),
            bits => {
                let (input, ip) = ip_of_len(input, bits, ip_len_at, "IP Address")?;
                (input, Some(ip))
            }
        };
        let (input, label1) = Label::decode(input, "MPLS Label1")?;
        let (input, label2) = if input.is_empty() {
            (input, None)
        } else {
            let (input, l) = Label::decode(input, "MPLS Label2")?;
            (input, Some(l))
        };
        let route = Self {
            rd,
            esi,
            eth_tag,
            mac: MacAddr(mac),
            ip,
            label1,
            label2,
        };
        Ok((input, route))
    }

    /// Exactly the number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        let ip = self
            .ip
            .as_ref()
            .map_or(0, |ip| usize::from(ip_bits(ip) / 8));
        let label2 = if self.label2.is_some() { Label::LEN } else { 0 };
        RouteDistinguisher::LEN + Esi::LEN + 4 + 1 + MacAddr::LEN + 1 + ip + Label::LEN + label2
    }

    /// Appends the route body (without type and length).
    pub fn encode(&self, out: &mut BytesMut) {
        self.rd.encode(out);
        self.esi.encode(out);
        out.extend_from_slice(&self.eth_tag.to_be_bytes());
        out.extend_from_slice(&[MAC_BITS]);
        out.extend_from_slice(&self.mac.0);
        match &self.ip {
            None => out.extend_from_slice(&[0]),
            Some(ip) => {
                out.extend_from_slice(&[ip_bits(ip)]);
                put_ip(ip, out);
            }
        }
        self.label1.encode(out);
        if let Some(l) = &self.label2 {
            l.encode(out);
        }
    }

    /// The RIB key (RFC 7432 §7.2).
    pub fn key(&self) -> MacIpKey {
        (self.rd, self.eth_tag, self.mac, self.ip)
    }
}

/// FRR's prefix text: `[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[198.18.0.2]`, or
/// without the IP part when there is no IP.
impl fmt::Display for MacIpRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[2]:[{}]:[{MAC_BITS}]:[{}]", self.eth_tag, self.mac)?;
        if let Some(ip) = &self.ip {
            write!(f, ":[{}]:[{ip}]", ip_bits(ip))?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vni::Vni;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    pub(crate) fn sample() -> MacIpRoute {
        MacIpRoute {
            rd: RouteDistinguisher::ipv4(Ipv4Addr::new(198, 19, 0, 1), 3),
            esi: Esi::ZERO,
            eth_tag: 0,
            mac: MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
            ip: Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))),
            label1: Label::from_vni(Vni::new(42).unwrap()),
            label2: None,
        }
    }

    /// The body above, written out by hand from the RFC diagram.
    pub(crate) const SAMPLE_BODY: [u8; 37] = [
        0, 1, 198, 19, 0, 1, 0, 3, // RD 198.19.0.1:3
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ESI 0
        0, 0, 0, 0, // Ethernet Tag 0
        48, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, // MAC
        32, 198, 18, 0, 2, // IP
        0, 0, 42, // Label1 = VNI 42
    ];

    fn encode(r: &MacIpRoute) -> BytesMut {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn deconstruct_and_construct() {
        assert_eq!(MacIpRoute::decode(&SAMPLE_BODY), Ok(sample()));
        assert_eq!(&encode(&sample())[..], &SAMPLE_BODY[..]);
        assert_eq!(sample().encoded_len(), SAMPLE_BODY.len());
        assert_eq!(
            sample().to_string(),
            "[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[198.18.0.2]"
        );
        let no_ip = MacIpRoute {
            ip: None,
            ..sample()
        };
        assert_eq!(no_ip.to_string(), "[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]");
        assert_eq!(no_ip.encoded_len(), 33);
    }

    #[test]
    fn bad_mac_length() {
        let mut body = SAMPLE_BODY;
        body[22] = 47;
        assert_eq!(
            MacIpRoute::decode(&body),
            Err(EvpnError {
                offset: 22,
                kind: ErrorKind::BadMacLength(47)
            })
        );
    }

    #[test]
    fn bad_ip_length() {
        let mut body = SAMPLE_BODY;
        body[29] = 24;
        assert_eq!(
            MacIpRoute::decode(&body),
            Err(EvpnError {
                offset: 29,
                kind: ErrorKind::BadIpLength(24)
            })
        );
    }

    #[test]
    fn trailing_bytes() {
        let mut body = SAMPLE_BODY.to_vec();
        body.extend_from_slice(&[0, 0, 7, 1, 2, 3]);
        assert_eq!(
            MacIpRoute::decode(&body),
            Err(EvpnError {
                offset: 40,
                kind: ErrorKind::TrailingBytes(3)
            })
        );
        // Two extra bytes: neither a label2 nor nothing.
        let mut body = SAMPLE_BODY.to_vec();
        body.extend_from_slice(&[0, 0]);
        assert_eq!(
            MacIpRoute::decode(&body).map_err(|e| e.kind),
            Err(ErrorKind::Truncated {
                field: "MPLS Label2"
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for n in 0..SAMPLE_BODY.len() {
            let r = MacIpRoute::decode(&SAMPLE_BODY[..n]);
            // Cutting the IPv4 address to 0..4 bytes changes its meaning only if the
            // length octet were 0; with 32 it must fail.
            assert!(r.is_err(), "prefix of {n} bytes decoded: {r:?}");
        }
    }

    fn any_ip() -> impl Strategy<Value = Option<IpAddr>> {
        prop_oneof![
            Just(None),
            any::<[u8; 4]>().prop_map(|a| Some(IpAddr::V4(Ipv4Addr::from(a)))),
            any::<[u8; 16]>().prop_map(|a| Some(IpAddr::V6(Ipv6Addr::from(a)))),
        ]
    }

    pub(crate) fn any_mac_ip() -> impl Strategy<Value = MacIpRoute> {
        (
            any::<[u8; 8]>(),
            any::<[u8; 10]>(),
            any::<u32>(),
            any::<[u8; 6]>(),
            any_ip(),
            any::<[u8; 3]>(),
            proptest::option::of(any::<[u8; 3]>()),
        )
            .prop_map(|(rd, esi, eth_tag, mac, ip, l1, l2)| MacIpRoute {
                rd: RouteDistinguisher(rd),
                esi: Esi(esi),
                eth_tag,
                mac: MacAddr(mac),
                ip,
                label1: Label(l1),
                label2: l2.map(Label),
            })
    }

    proptest! {
        #[test]
        fn round_trip(r in any_mac_ip()) {
            let bytes = encode(&r);
            prop_assert_eq!(bytes.len(), r.encoded_len());
            prop_assert_eq!(MacIpRoute::decode(&bytes), Ok(r));
        }

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(r) = MacIpRoute::decode(&body) {
                prop_assert_eq!(&encode(&r)[..], &body[..]);
            }
        }
    }
}
