//! One EVPN NLRI (RFC 7432 §7): the framing, and dispatch to the route types.
//!
//! ```text
//! +-----------------------------------+
//! |    Route Type (1 octet)           |
//! +-----------------------------------+
//! |     Length (1 octet)              |   octets of Route Type specific
//! +-----------------------------------+
//! | Route Type specific (variable)    |
//! +-----------------------------------+
//! ```
//!
//! Types 2 and 3 are decoded ([`MacIpRoute`], [`ImetRoute`]); a body of those types
//! that does not parse is an error, not an opaque route. Every other type
//! (1 Ethernet A-D, 4 Ethernet Segment, 5 IP Prefix, and types not yet assigned)
//! is kept as its bytes and re-encoded byte for byte (STYLE rule 4; BIRD does the
//! same, GoBGP and rustybgp reject them).

use std::fmt;
use std::net::IpAddr;

use bytes::BytesMut;
use serde::{Serialize, Serializer};

use crate::error::{hex, ErrorKind, EvpnError};
use crate::imet::ImetRoute;
use crate::mac_ip::MacIpRoute;
use crate::rd::RouteDistinguisher;
use crate::vni::{MacAddr, Vni};

/// Route types this crate names (RFC 7432 §7, RFC 9136 §3).
pub mod route_type {
    pub const ETHERNET_AD: u8 = 1;
    pub const MAC_IP: u8 = 2;
    pub const IMET: u8 = 3;
    pub const ETHERNET_SEGMENT: u8 = 4;
    pub const IP_PREFIX: u8 = 5;
}

/// The largest body one length octet can frame.
const MAX_BODY: usize = u8::MAX as usize;

/// An EVPN route as carried in MP_REACH_NLRI / MP_UNREACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvpnRoute {
    MacIp(MacIpRoute),
    Imet(ImetRoute),
    /// A route kept as bytes. A body longer than 255 octets cannot come from the
    /// wire; if one is built by hand, only its first 255 octets are encoded.
    Opaque {
        route_type: u8,
        #[serde(serialize_with = "ser_hex")]
        body: Box<[u8]>,
    },
}

/// What identifies an EVPN destination in the RIB.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvpnKey {
    /// RFC 7432 §7.2: RD, Ethernet Tag, MAC, IP (not ESI, not labels).
    MacIp(RouteDistinguisher, u32, MacAddr, Option<IpAddr>),
    /// RFC 7432 §7.3: RD, Ethernet Tag, originator.
    Imet(RouteDistinguisher, u32, IpAddr),
    /// The route type and its key octets (see [`EvpnRoute::key`]).
    Opaque(u8, #[serde(serialize_with = "ser_hex")] Box<[u8]>),
}

fn ser_hex<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

impl EvpnRoute {
    /// Decodes a route of `route_type` from exactly its body.
    pub fn decode_body(route_type: u8, body: &[u8]) -> Result<Self, EvpnError> {
        match route_type {
            route_type::MAC_IP => MacIpRoute::decode(body).map(Self::MacIp),
            route_type::IMET => ImetRoute::decode(body).map(Self::Imet),
            _ => Ok(Self::Opaque {
                route_type,
                body: body.into(),
            }),
        }
    }

    /// Decodes the framed route at the start of `input`; returns it and the number
    /// of octets it took. Offsets in errors are relative to `input`.
    pub fn decode(input: &[u8]) -> Result<(Self, usize), EvpnError> {
        let (&route_type, rest) = input.split_first().ok_or(EvpnError {
            offset: 0,
            kind: ErrorKind::Truncated {
                field: "Route Type",
            },
        })?;
        let (&len, rest) = rest.split_first().ok_or(EvpnError {
            offset: 1,
            kind: ErrorKind::Truncated { field: "Length" },
        })?;
        let body = rest.get(..usize::from(len)).ok_or(EvpnError {
            offset: 1,
            kind: ErrorKind::BadRouteLength {
                declared: len,
                available: rest.len(),
            },
        })?;
        let route = Self::decode_body(route_type, body).map_err(|e| e.shifted(2))?;
        Ok((route, 2 + usize::from(len)))
    }

    /// Decodes a whole block of NLRI (the NLRI field of MP_REACH/MP_UNREACH).
    pub fn decode_all(block: &[u8]) -> Result<Vec<Self>, EvpnError> {
        let mut routes = Vec::new();
        let mut pos = 0usize;
        while let Some(rest) = block.get(pos..).filter(|r| !r.is_empty()) {
            let (route, used) = Self::decode(rest).map_err(|e| e.shifted(pos))?;
            routes.push(route);
            pos = pos.saturating_add(used);
        }
        Ok(routes)
    }

    fn opaque_body(body: &[u8]) -> &[u8] {
        body.get(..MAX_BODY).unwrap_or(body)
    }

    fn body_len(&self) -> usize {
        match self {
            Self::MacIp(r) => r.encoded_len(),
            Self::Imet(r) => r.encoded_len(),
            Self::Opaque { body, .. } => Self::opaque_body(body).len(),
        }
    }

    /// Exactly the number of bytes [`encode`](Self::encode) appends (type and
    /// length octets included).
    pub fn encoded_len(&self) -> usize {
        2 + self.body_len()
    }

    /// Appends the framed route: type, length, body.
    pub fn encode(&self, out: &mut BytesMut) {
        // Every body is at most 255 octets: types 2/3 are at most 52 and opaque
        // bodies are cut by `opaque_body`.
        let len = u8::try_from(self.body_len()).unwrap_or(u8::MAX);
        out.extend_from_slice(&[self.route_type(), len]);
        match self {
            Self::MacIp(r) => r.encode(out),
            Self::Imet(r) => r.encode(out),
            Self::Opaque { body, .. } => out.extend_from_slice(Self::opaque_body(body)),
        }
    }

    /// The route type code.
    pub fn route_type(&self) -> u8 {
        match self {
            Self::MacIp(_) => route_type::MAC_IP,
            Self::Imet(_) => route_type::IMET,
            Self::Opaque { route_type, .. } => *route_type,
        }
    }

    /// The RD: every route type 1-5 starts with one, so an opaque route of those
    /// types gives its first 8 octets; unknown types give none.
    pub fn rd(&self) -> Option<RouteDistinguisher> {
        match self {
            Self::MacIp(r) => Some(r.rd),
            Self::Imet(r) => Some(r.rd),
            Self::Opaque { route_type, body } => {
                if !(1..=5).contains(route_type) {
                    return None;
                }
                let raw = body.get(..RouteDistinguisher::LEN)?;
                <[u8; 8]>::try_from(raw).ok().map(RouteDistinguisher)
            }
        }
    }

    /// The VNI of the route: label1 for type 2. A type-3 route's VNI is the label
    /// of its PMSI_TUNNEL attribute, so `None` here, as for opaque routes.
    pub fn vni(&self) -> Option<Vni> {
        match self {
            Self::MacIp(r) => Some(r.label1.vni()),
            _ => None,
        }
    }

    /// The Ethernet Tag ID, where the type has one at a known place (types 1, 2,
    /// 3, 5; type 4 has none).
    pub fn eth_tag(&self) -> Option<u32> {
        match self {
            Self::MacIp(r) => Some(r.eth_tag),
            Self::Imet(r) => Some(r.eth_tag),
            Self::Opaque { route_type, body }
                if *route_type == route_type::ETHERNET_AD
                    || *route_type == route_type::IP_PREFIX =>
            {
                // RD(8) ESI(10) Ethernet Tag(4)
                let raw = body.get(18..22)?;
                <[u8; 4]>::try_from(raw).ok().map(u32::from_be_bytes)
            }
            Self::Opaque { .. } => None,
        }
    }

    /// The RIB key.
    ///
    /// Opaque routes key on their type and the octets their RFC names as the
    /// route key, so that a withdrawal carrying a different label still matches:
    /// type 1 (RFC 7432 §7.1, 25 octets): RD, ESI, Ethernet Tag — not the label;
    /// type 5 (RFC 9136 §3.2, 34 or 58 octets): "the RD, Ethernet Tag ID, IP
    /// prefix length, and IP prefix are part of the route key"; type 4 and any
    /// other type or length: the whole body.
    pub fn key(&self) -> EvpnKey {
        match self {
            Self::MacIp(r) => {
                let (rd, tag, mac, ip) = r.key();
                EvpnKey::MacIp(rd, tag, mac, ip)
            }
            Self::Imet(r) => {
                let (rd, tag, ip) = r.key();
                EvpnKey::Imet(rd, tag, ip)
            }
            Self::Opaque { route_type, body } => EvpnKey::Opaque(
                *route_type,
                opaque_key(*route_type, Self::opaque_body(body)),
            ),
        }
    }
}

/// The key octets of an opaque route (see [`EvpnRoute::key`]).
fn opaque_key(route_type: u8, body: &[u8]) -> Box<[u8]> {
    let key: Option<Vec<u8>> = match (route_type, body.len()) {
        (route_type::ETHERNET_AD, 25) => body.get(..22).map(<[u8]>::to_vec),
        (route_type::IP_PREFIX, 34 | 58) => {
            // RD(8) ESI(10) Tag(4) PrefixLen(1) Prefix(4|16) GW(4|16) Label(3)
            let addr_len = if body.len() == 34 { 4 } else { 16 };
            match (body.get(..8), body.get(18..23 + addr_len)) {
                (Some(rd), Some(tag_prefix)) => Some([rd, tag_prefix].concat()),
                _ => None,
            }
        }
        _ => None,
    };
    key.unwrap_or_else(|| body.to_vec()).into_boxed_slice()
}

/// FRR's prefix notation for types 2 and 3; `[T]:<hex body>` for opaque routes.
impl fmt::Display for EvpnRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MacIp(r) => r.fmt(f),
            Self::Imet(r) => r.fmt(f),
            Self::Opaque { route_type, body } => write!(f, "[{route_type}]:{}", hex(body)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::imet::tests as imet;
    use crate::mac_ip::tests as mac_ip;
    use proptest::prelude::*;

    fn framed(route_type: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![route_type, body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    fn encode(r: &EvpnRoute) -> BytesMut {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        out
    }

    /// A type-5 route (RFC 9136 §3.1): RD 65001:5, ESI 0, tag 0, 10.0.0.0/24
    /// (documentation only; never sent), GW 0, label/VNI 1000.
    pub(crate) const TYPE5_BODY: [u8; 34] = [
        0, 0, 0xfd, 0xe9, 0, 0, 0, 5, // RD
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ESI
        0, 0, 0, 0, // tag
        24, 198, 18, 1, 0, // prefix
        0, 0, 0, 0, // GW
        0, 0x03, 0xe8, // label
    ];

    /// A type-1 route (RFC 7432 §7.1): RD 198.19.0.1:3, ESI type 3, tag
    /// 0xffffffff (per-ES), label 0.
    pub(crate) const TYPE1_BODY: [u8; 25] = [
        0, 1, 198, 19, 0, 1, 0, 3, // RD
        3, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 1, // ESI
        0xff, 0xff, 0xff, 0xff, // tag
        0, 0, 0, // label
    ];

    /// A type-4 route (RFC 7432 §7.4): RD, ESI, IP length 32, originator.
    pub(crate) const TYPE4_BODY: [u8; 23] = [
        0, 1, 198, 19, 0, 1, 0, 3, // RD
        3, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0, 1, // ESI
        32, 198, 19, 0, 1, // originator
    ];

    #[test]
    fn typed_routes_frame_and_display() {
        let wire = framed(2, &mac_ip::SAMPLE_BODY);
        let (r, used) = EvpnRoute::decode(&wire).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(r, EvpnRoute::MacIp(mac_ip::sample()));
        assert_eq!(&encode(&r)[..], &wire[..]);
        assert_eq!(r.encoded_len(), wire.len());
        assert_eq!(r.route_type(), 2);
        assert_eq!(r.vni().map(Vni::get), Some(42));
        assert_eq!(r.eth_tag(), Some(0));
        assert_eq!(
            r.rd().map(|rd| rd.to_string()).as_deref(),
            Some("198.19.0.1:3")
        );
        assert_eq!(
            r.to_string(),
            "[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[198.18.0.2]"
        );

        let wire = framed(3, &imet::SAMPLE_BODY);
        let (r, _) = EvpnRoute::decode(&wire).unwrap();
        assert_eq!(r, EvpnRoute::Imet(imet::sample()));
        assert_eq!(r.vni(), None);
        assert_eq!(r.to_string(), "[3]:[0]:[32]:[198.19.0.1]");
        assert_eq!(&encode(&r)[..], &wire[..]);
    }

    #[test]
    fn opaque_types_reencode_exactly() {
        for (t, body) in [
            (1u8, &TYPE1_BODY[..]),
            (4, &TYPE4_BODY[..]),
            (5, &TYPE5_BODY[..]),
            (9, &[1u8, 2, 3][..]),
            (5, &[][..]),
        ] {
            let wire = framed(t, body);
            let (r, used) = EvpnRoute::decode(&wire).unwrap();
            assert_eq!(used, wire.len());
            assert!(matches!(r, EvpnRoute::Opaque { route_type, .. } if route_type == t));
            assert_eq!(&encode(&r)[..], &wire[..]);
            assert_eq!(r.encoded_len(), wire.len());
        }
        let (r, _) = EvpnRoute::decode(&framed(5, &TYPE5_BODY)).unwrap();
        assert_eq!(r.rd(), Some(RouteDistinguisher::as2(65001, 5)));
        assert_eq!(r.eth_tag(), Some(0));
        assert!(r.to_string().starts_with("[5]:0000fde900000005"));
        let (r, _) = EvpnRoute::decode(&framed(9, &[0; 8])).unwrap();
        assert_eq!(r.rd(), None);
        let (r, _) = EvpnRoute::decode(&framed(4, &[0; 7])).unwrap();
        assert_eq!(r.rd(), None);
    }

    #[test]
    fn opaque_keys_ignore_labels() {
        let mut other_label = TYPE5_BODY;
        other_label[33] = 0;
        let key = |b: &[u8]| EvpnRoute::decode_body(5, b).unwrap().key();
        assert_eq!(key(&TYPE5_BODY), key(&other_label));
        let mut other_prefix = TYPE5_BODY;
        other_prefix[25] = 2;
        assert_ne!(key(&TYPE5_BODY), key(&other_prefix));

        let mut t1 = TYPE1_BODY;
        t1[24] = 7;
        let key1 = |b: &[u8]| EvpnRoute::decode_body(1, b).unwrap().key();
        assert_eq!(key1(&TYPE1_BODY), key1(&t1));
        // Type-2 keys ignore labels and ESI.
        let a = EvpnRoute::MacIp(mac_ip::sample());
        let mut b = mac_ip::sample();
        b.label1 = crate::vni::Label([0, 0, 1]);
        b.esi = crate::esi::Esi([1; 10]);
        assert_eq!(a.key(), EvpnRoute::MacIp(b).key());
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            EvpnRoute::decode(&[]).map_err(|e| e.kind),
            Err(ErrorKind::Truncated {
                field: "Route Type"
            })
        );
        assert_eq!(
            EvpnRoute::decode(&[2]).map_err(|e| (e.offset, e.kind)),
            Err((1, ErrorKind::Truncated { field: "Length" }))
        );
        assert_eq!(
            EvpnRoute::decode(&[5, 3, 0, 0]).map_err(|e| (e.offset, e.kind)),
            Err((
                1,
                ErrorKind::BadRouteLength {
                    declared: 3,
                    available: 2
                }
            ))
        );
        // A type-2 body that does not parse is an error, located in the block.
        let mut body = mac_ip::SAMPLE_BODY;
        body[22] = 0;
        assert_eq!(
            EvpnRoute::decode(&framed(2, &body)).map_err(|e| (e.offset, e.kind)),
            Err((24, ErrorKind::BadMacLength(0)))
        );
    }

    #[test]
    fn block_errors_are_located() {
        let mut block = framed(3, &imet::SAMPLE_BODY);
        let second = block.len();
        block.extend_from_slice(&[2, 40, 0]);
        assert_eq!(
            EvpnRoute::decode_all(&block).map_err(|e| e.offset),
            Err(second + 1)
        );
        assert_eq!(EvpnRoute::decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn oversized_opaque_stays_framed() {
        let r = EvpnRoute::Opaque {
            route_type: 5,
            body: vec![7u8; 300].into(),
        };
        let out = encode(&r);
        assert_eq!(out.len(), r.encoded_len());
        assert_eq!(out.len(), 257);
        assert_eq!(out[1], 255);
    }

    #[test]
    fn serde_json_shape() {
        let r = EvpnRoute::MacIp(mac_ip::sample());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mac_ip"]["mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(v["mac_ip"]["rd"], "198.19.0.1:3");
        assert_eq!(v["mac_ip"]["label1"], 42);
        let k = serde_json::to_value(EvpnRoute::decode_body(9, &[1, 2]).unwrap().key()).unwrap();
        assert_eq!(k["opaque"][1], "0102");
    }

    pub(crate) fn any_route() -> impl Strategy<Value = EvpnRoute> {
        prop_oneof![
            mac_ip::any_mac_ip().prop_map(EvpnRoute::MacIp),
            imet::any_imet().prop_map(EvpnRoute::Imet),
            (
                any::<u8>().prop_filter("typed", |t| *t != 2 && *t != 3),
                proptest::collection::vec(any::<u8>(), 0..=255)
            )
                .prop_map(|(route_type, body)| EvpnRoute::Opaque {
                    route_type,
                    body: body.into()
                }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(r in any_route()) {
            let bytes = encode(&r);
            prop_assert_eq!(bytes.len(), r.encoded_len());
            let (back, used) = EvpnRoute::decode(&bytes).unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(&back, &r);
            prop_assert_eq!(back.key(), r.key());
        }

        #[test]
        fn random_blocks_never_panic(block in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(routes) = EvpnRoute::decode_all(&block) {
                let mut out = BytesMut::new();
                for r in &routes {
                    r.encode(&mut out);
                    let _ = (r.key(), r.rd(), r.vni(), r.eth_tag(), r.to_string());
                }
                prop_assert_eq!(&out[..], &block[..]);
            }
        }
    }
}
