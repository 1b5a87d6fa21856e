//! Route Distinguisher (RFC 4364 §4.2), the first field of every EVPN route.
//!
//! ```text
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! |  Type (2 octets) |          Value (6 octets)                   |
//! +-------+-------+-------+-------+-------+-------+-------+-------+
//! type 0: Administrator = 2-octet ASN,   Assigned Number = 4 octets
//! type 1: Administrator = IPv4 address,  Assigned Number = 2 octets
//! type 2: Administrator = 4-octet ASN,   Assigned Number = 2 octets
//! ```
//!
//! The eight octets are kept raw, so an RD of a type this crate does not know is
//! still carried and reflected exactly. Text is FRR's: `65001:10` (type 0),
//! `198.19.0.1:3` (type 1), `4200000000:10` (type 2). FRR prints a type-2 RD whose
//! ASN fits 16 bits the same way as a type-0 RD, so that text parses back as type 0;
//! unknown types print as `0xTTTT:0xVVVVVVVVVVVV` and parse back exactly.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use bytes::BytesMut;

use crate::error::{array, hex, PResult, ParseTextError};

/// A Route Distinguisher as its 8 wire octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouteDistinguisher(pub [u8; 8]);

impl RouteDistinguisher {
    /// On-wire size.
    pub const LEN: usize = 8;

    /// Type 0: 2-octet ASN and a 4-octet number.
    pub const fn as2(asn: u16, n: u32) -> Self {
        let a = asn.to_be_bytes();
        let v = n.to_be_bytes();
        Self([0, 0, a[0], a[1], v[0], v[1], v[2], v[3]])
    }

    /// Type 1: IPv4 address and a 2-octet number (RFC 8365 §5.1.2 auto RD).
    pub const fn ipv4(addr: Ipv4Addr, n: u16) -> Self {
        let a = addr.octets();
        let v = n.to_be_bytes();
        Self([0, 1, a[0], a[1], a[2], a[3], v[0], v[1]])
    }

    /// Type 2: 4-octet ASN and a 2-octet number.
    pub const fn as4(asn: u32, n: u16) -> Self {
        let a = asn.to_be_bytes();
        let v = n.to_be_bytes();
        Self([0, 2, a[0], a[1], a[2], a[3], v[0], v[1]])
    }

    /// The RD type field.
    pub const fn rd_type(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    pub(crate) fn decode(input: &[u8]) -> PResult<'_, Self> {
        let (rest, raw) = array::<8>(input, "route distinguisher")?;
        Ok((rest, Self(raw)))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.0);
    }
}

impl fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [t0, t1, a, b, c, d, e, g] = self.0;
        match self.rd_type() {
            0 => write!(
                f,
                "{}:{}",
                u16::from_be_bytes([a, b]),
                u32::from_be_bytes([c, d, e, g])
            ),
            1 => write!(
                f,
                "{}:{}",
                Ipv4Addr::new(a, b, c, d),
                u16::from_be_bytes([e, g])
            ),
            2 => write!(
                f,
                "{}:{}",
                u32::from_be_bytes([a, b, c, d]),
                u16::from_be_bytes([e, g])
            ),
            _ => write!(f, "0x{}:0x{}", hex(&[t0, t1]), hex(&[a, b, c, d, e, g])),
        }
    }
}

const RD_FORM: &str =
    "expected ASN:NN (e.g. 65001:10, 4200000000:10) or IPv4:NN (e.g. 198.19.0.1:3)";

impl FromStr for RouteDistinguisher {
    type Err = ParseTextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseTextError::new("route distinguisher", s, RD_FORM);
        let (admin, assigned) = s.rsplit_once(':').ok_or_else(err)?;
        if let (Some(t), Some(v)) = (admin.strip_prefix("0x"), assigned.strip_prefix("0x")) {
            // The form Display gives an unknown type.
            let hex_digits =
                |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex_digits(t, 4) || !hex_digits(v, 12) {
                return Err(err());
            }
            let t = u16::from_str_radix(t, 16).map_err(|_| err())?.to_be_bytes();
            // 12 hex digits: at most 48 bits, so the top two octets are zero.
            let v = u64::from_str_radix(v, 16).map_err(|_| err())?.to_be_bytes();
            return Ok(Self([t[0], t[1], v[2], v[3], v[4], v[5], v[6], v[7]]));
        }
        if admin.contains('.') {
            let addr: Ipv4Addr = admin.parse().map_err(|_| err())?;
            let n: u16 = parse_dec(assigned).ok_or_else(err)?;
            return Ok(Self::ipv4(addr, n));
        }
        let asn: u32 = parse_dec(admin).ok_or_else(err)?;
        match u16::try_from(asn) {
            Ok(asn16) => Ok(Self::as2(asn16, parse_dec(assigned).ok_or_else(err)?)),
            Err(_) => Ok(Self::as4(asn, parse_dec(assigned).ok_or_else(err)?)),
        }
    }
}

/// A decimal number with digits only (no sign, no spaces).
pub(crate) fn parse_dec<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

crate::error::serde_as_text!(RouteDistinguisher);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::decode_exact;
    use proptest::prelude::*;

    #[test]
    fn constructors_and_text() {
        let rd = RouteDistinguisher::as2(65001, 10);
        assert_eq!(rd.0, [0, 0, 0xfd, 0xe9, 0, 0, 0, 10]);
        assert_eq!(rd.to_string(), "65001:10");
        let rd = RouteDistinguisher::ipv4(Ipv4Addr::new(198, 19, 0, 1), 3);
        assert_eq!(rd.0, [0, 1, 198, 19, 0, 1, 0, 3]);
        assert_eq!(rd.to_string(), "198.19.0.1:3");
        let rd = RouteDistinguisher::as4(4_200_000_000, 10);
        assert_eq!(rd.to_string(), "4200000000:10");
        assert_eq!(rd.rd_type(), 2);
    }

    #[test]
    fn parse() {
        assert_eq!("65001:10".parse(), Ok(RouteDistinguisher::as2(65001, 10)));
        assert_eq!(
            "65001:4294967295".parse(),
            Ok(RouteDistinguisher::as2(65001, u32::MAX))
        );
        assert_eq!(
            "198.19.0.1:3".parse(),
            Ok(RouteDistinguisher::ipv4(Ipv4Addr::new(198, 19, 0, 1), 3))
        );
        assert_eq!(
            "4200000000:10".parse(),
            Ok(RouteDistinguisher::as4(4_200_000_000, 10))
        );
        for bad in [
            "",
            "65001",
            ":1",
            "65001:",
            "4200000000:65536",
            "198.19.0.1:65536",
            "198.19.0:1",
            "-1:1",
            "65001:+1",
            "0x0003:0x01",
        ] {
            assert!(bad.parse::<RouteDistinguisher>().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_type_round_trips() {
        let rd = RouteDistinguisher([0, 7, 1, 2, 3, 4, 5, 6]);
        assert_eq!(rd.to_string(), "0x0007:0x010203040506");
        assert_eq!(rd.to_string().parse(), Ok(rd));
    }

    #[test]
    fn serde_is_the_string() {
        let rd = RouteDistinguisher::ipv4(Ipv4Addr::new(198, 19, 0, 1), 3);
        let json = serde_json::to_string(&rd).unwrap();
        assert_eq!(json, "\"198.19.0.1:3\"");
        assert_eq!(
            serde_json::from_str::<RouteDistinguisher>(&json).unwrap(),
            rd
        );
    }

    #[test]
    fn decode_truncated() {
        let r = decode_exact(&[0u8; 7], RouteDistinguisher::decode);
        assert!(r.is_err());
    }

    fn canonical() -> impl Strategy<Value = RouteDistinguisher> {
        prop_oneof![
            (any::<u16>(), any::<u32>()).prop_map(|(a, n)| RouteDistinguisher::as2(a, n)),
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(a, n)| RouteDistinguisher::ipv4(Ipv4Addr::from(a), n)),
            (65536u32.., any::<u16>()).prop_map(|(a, n)| RouteDistinguisher::as4(a, n)),
            (3u16.., any::<[u8; 6]>()).prop_map(|(t, v)| {
                let mut raw = [0u8; 8];
                raw[..2].copy_from_slice(&t.to_be_bytes());
                raw[2..].copy_from_slice(&v);
                RouteDistinguisher(raw)
            }),
        ]
    }

    proptest! {
        #[test]
        fn text_round_trip(rd in canonical()) {
            prop_assert_eq!(rd.to_string().parse::<RouteDistinguisher>(), Ok(rd));
        }

        #[test]
        fn wire_round_trip(raw in any::<[u8; 8]>()) {
            let rd = decode_exact(&raw, RouteDistinguisher::decode).unwrap();
            let mut out = BytesMut::new();
            rd.encode(&mut out);
            prop_assert_eq!(&out[..], &raw[..]);
        }
    }
}
