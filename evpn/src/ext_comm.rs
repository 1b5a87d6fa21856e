//! Typed views over the extended communities EVPN uses (the raw 8 octets live in
//! `bgp::wire::ExtCommunity`, RFC 4360 §2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Type high    |  Type low     |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+          Value (6 octets)     |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! type/sub-type  what                          value
//! 0x00/0x02      Route Target, 2-octet AS      ASN(2) Local(4)      RFC 4360 §4
//! 0x01/0x02      Route Target, IPv4            Addr(4) Local(2)     RFC 4360 §4
//! 0x02/0x02      Route Target, 4-octet AS      ASN(4) Local(2)      RFC 5668 §2
//! 0x03/0x0c      Encapsulation                 Reserved(4) Tunnel Type(2)
//!                                              (8 = VXLAN)          RFC 9012 §4.1
//! 0x03/0x0d      Default Gateway               Reserved(6)          RFC 7432 §7.8
//! 0x06/0x00      MAC Mobility                  Flags(1, bit 7 = sticky/static)
//!                                              Reserved(1) Seq(4)   RFC 7432 §7.7
//! 0x06/0x03      Router's MAC                  MAC(6)               RFC 9135 §8.1
//! 0x06/0x08      ARP/ND                        Flags(1) Reserved(5) RFC 9047 §2
//!                 Flags: 0x01 R (router), 0x02 O (override), 0x08 I (immutable);
//!                 FRR also sends 0x04 as its "proxy" flag.
//! ```
//!
//! [`classify`] gives a typed value only when turning it back into an
//! [`ExtCommunity`] yields the very same eight octets (reserved bits zero, known
//! flags only); anything else is [`EvpnExtCommunity::Other`], so reflection stays
//! exact. Text follows FRR's `show bgp l2vpn evpn` ("RT:65001:42", "ET:8", "MM:5",
//! "MM:5, sticky MAC", "Rmac:..", "ND:Router Flag", "Default Gateway").

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use bgp::wire::ExtCommunity;
use serde::{Serialize, Serializer};

use crate::error::{hex, ParseTextError};
use crate::rd::parse_dec;
use crate::vni::MacAddr;

/// Type high octets (RFC 4360 §3, RFC 5668, RFC 7153).
const TYPE_AS2: u8 = 0x00;
const TYPE_IPV4: u8 = 0x01;
const TYPE_AS4: u8 = 0x02;
const TYPE_OPAQUE: u8 = 0x03;
const TYPE_EVPN: u8 = 0x06;
/// Sub-types.
const SUB_ROUTE_TARGET: u8 = 0x02;
const SUB_ENCAPSULATION: u8 = 0x0c;
const SUB_DEFAULT_GATEWAY: u8 = 0x0d;
const SUB_MAC_MOBILITY: u8 = 0x00;
const SUB_ROUTER_MAC: u8 = 0x03;
const SUB_ARP_ND: u8 = 0x08;

/// RFC 9012 §4.1 / IANA "BGP Tunnel Encapsulation Attribute Tunnel Types": VXLAN.
pub const TUNNEL_TYPE_VXLAN: u16 = 8;

/// MAC Mobility flag: sticky/static MAC (RFC 7432 §7.7).
const MM_STICKY: u8 = 0x01;
/// ARP/ND flags (RFC 9047 §2; proxy is FRR's `ECOMMUNITY_EVPN_SUBTYPE_PROXY_FLAG`).
const ND_ROUTER: u8 = 0x01;
const ND_OVERRIDE: u8 = 0x02;
const ND_PROXY: u8 = 0x04;
const ND_IMMUTABLE: u8 = 0x08;

/// A Route Target (RFC 4360 §4, RFC 5668 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteTarget {
    /// Type 0x00: `asn:value`.
    As2 { asn: u16, value: u32 },
    /// Type 0x02: `asn:value` with a 4-octet ASN.
    As4 { asn: u32, value: u16 },
    /// Type 0x01: `addr:value`.
    Ipv4 { addr: Ipv4Addr, value: u16 },
}

impl RouteTarget {
    /// The Route Target in `c`, if it is one (transitive types 0x00/0x01/0x02,
    /// sub-type 0x02).
    pub fn from_ext_community(c: &ExtCommunity) -> Option<RouteTarget> {
        let [t, sub, a, b, c2, d, e, f] = c.0;
        if sub != SUB_ROUTE_TARGET {
            return None;
        }
        match t {
            TYPE_AS2 => Some(Self::As2 {
                asn: u16::from_be_bytes([a, b]),
                value: u32::from_be_bytes([c2, d, e, f]),
            }),
            TYPE_IPV4 => Some(Self::Ipv4 {
                addr: Ipv4Addr::new(a, b, c2, d),
                value: u16::from_be_bytes([e, f]),
            }),
            TYPE_AS4 => Some(Self::As4 {
                asn: u32::from_be_bytes([a, b, c2, d]),
                value: u16::from_be_bytes([e, f]),
            }),
            _ => None,
        }
    }

    /// The eight octets of this Route Target.
    pub fn to_ext_community(&self) -> ExtCommunity {
        let (t, admin_value): (u8, [u8; 6]) = match *self {
            Self::As2 { asn, value } => {
                let a = asn.to_be_bytes();
                let v = value.to_be_bytes();
                (TYPE_AS2, [a[0], a[1], v[0], v[1], v[2], v[3]])
            }
            Self::Ipv4 { addr, value } => {
                let a = addr.octets();
                let v = value.to_be_bytes();
                (TYPE_IPV4, [a[0], a[1], a[2], a[3], v[0], v[1]])
            }
            Self::As4 { asn, value } => {
                let a = asn.to_be_bytes();
                let v = value.to_be_bytes();
                (TYPE_AS4, [a[0], a[1], a[2], a[3], v[0], v[1]])
            }
        };
        let [a, b, c, d, e, f] = admin_value;
        ExtCommunity([t, SUB_ROUTE_TARGET, a, b, c, d, e, f])
    }
}

impl From<RouteTarget> for ExtCommunity {
    fn from(rt: RouteTarget) -> Self {
        rt.to_ext_community()
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::As2 { asn, value } => write!(f, "{asn}:{value}"),
            Self::As4 { asn, value } => write!(f, "{asn}:{value}"),
            Self::Ipv4 { addr, value } => write!(f, "{addr}:{value}"),
        }
    }
}

/// `ASN:NN` (2-octet ASN: type 0 with a 4-octet value; larger ASN: type 2 with a
/// 2-octet value) or `A.B.C.D:NN` (type 1), as FRR's `route-target` takes them.
impl FromStr for RouteTarget {
    type Err = ParseTextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ParseTextError::new(
                "route target",
                s,
                "expected ASN:NN (e.g. 65001:42, 4200000000:42) or IPv4:NN (e.g. 198.19.0.1:42)",
            )
        };
        let (admin, value) = s.rsplit_once(':').ok_or_else(err)?;
        if admin.contains('.') {
            let addr: Ipv4Addr = admin.parse().map_err(|_| err())?;
            return Ok(Self::Ipv4 {
                addr,
                value: parse_dec(value).ok_or_else(err)?,
            });
        }
        let asn: u32 = parse_dec(admin).ok_or_else(err)?;
        match u16::try_from(asn) {
            Ok(asn) => Ok(Self::As2 {
                asn,
                value: parse_dec(value).ok_or_else(err)?,
            }),
            Err(_) => Ok(Self::As4 {
                asn,
                value: parse_dec(value).ok_or_else(err)?,
            }),
        }
    }
}

crate::error::serde_as_text!(RouteTarget);

/// An extended community as EVPN reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvpnExtCommunity {
    RouteTarget(RouteTarget),
    /// RFC 9012 §4.1; `tunnel_type` 8 is VXLAN (RFC 8365 §5.1.3).
    Encapsulation {
        tunnel_type: u16,
    },
    /// RFC 7432 §7.7.
    MacMobility {
        sticky: bool,
        seq: u32,
    },
    /// RFC 9047 §2 (`proxy` is FRR's extension).
    ArpNd {
        router: bool,
        override_flag: bool,
        immutable: bool,
        proxy: bool,
    },
    /// RFC 7432 §7.8.
    DefaultGateway,
    /// RFC 9135 §8.1.
    RouterMac(MacAddr),
    /// Anything else, including the above with non-zero reserved bits.
    Other(ExtCommunity),
}

impl EvpnExtCommunity {
    /// Encapsulation VXLAN (RFC 8365 §5.1.3).
    pub const VXLAN: EvpnExtCommunity = EvpnExtCommunity::Encapsulation {
        tunnel_type: TUNNEL_TYPE_VXLAN,
    };
}

/// Reads `c`; the typed value always converts back to exactly `c`.
pub fn classify(c: &ExtCommunity) -> EvpnExtCommunity {
    if let Some(rt) = RouteTarget::from_ext_community(c) {
        return EvpnExtCommunity::RouteTarget(rt);
    }
    match c.0 {
        [TYPE_OPAQUE, SUB_ENCAPSULATION, 0, 0, 0, 0, t0, t1] => EvpnExtCommunity::Encapsulation {
            tunnel_type: u16::from_be_bytes([t0, t1]),
        },
        [TYPE_OPAQUE, SUB_DEFAULT_GATEWAY, 0, 0, 0, 0, 0, 0] => EvpnExtCommunity::DefaultGateway,
        [TYPE_EVPN, SUB_MAC_MOBILITY, flags, 0, s0, s1, s2, s3] if flags & !MM_STICKY == 0 => {
            EvpnExtCommunity::MacMobility {
                sticky: flags & MM_STICKY != 0,
                seq: u32::from_be_bytes([s0, s1, s2, s3]),
            }
        }
        [TYPE_EVPN, SUB_ROUTER_MAC, a, b, c2, d, e, f] => {
            EvpnExtCommunity::RouterMac(MacAddr([a, b, c2, d, e, f]))
        }
        [TYPE_EVPN, SUB_ARP_ND, flags, 0, 0, 0, 0, 0]
            if flags & !(ND_ROUTER | ND_OVERRIDE | ND_PROXY | ND_IMMUTABLE) == 0 =>
        {
            EvpnExtCommunity::ArpNd {
                router: flags & ND_ROUTER != 0,
                override_flag: flags & ND_OVERRIDE != 0,
                immutable: flags & ND_IMMUTABLE != 0,
                proxy: flags & ND_PROXY != 0,
            }
        }
        _ => EvpnExtCommunity::Other(*c),
    }
}

impl From<EvpnExtCommunity> for ExtCommunity {
    fn from(e: EvpnExtCommunity) -> Self {
        match e {
            EvpnExtCommunity::RouteTarget(rt) => rt.to_ext_community(),
            EvpnExtCommunity::Encapsulation { tunnel_type } => {
                let [t0, t1] = tunnel_type.to_be_bytes();
                ExtCommunity([TYPE_OPAQUE, SUB_ENCAPSULATION, 0, 0, 0, 0, t0, t1])
            }
            EvpnExtCommunity::DefaultGateway => {
                ExtCommunity([TYPE_OPAQUE, SUB_DEFAULT_GATEWAY, 0, 0, 0, 0, 0, 0])
            }
            EvpnExtCommunity::MacMobility { sticky, seq } => {
                let [s0, s1, s2, s3] = seq.to_be_bytes();
                let flags = if sticky { MM_STICKY } else { 0 };
                ExtCommunity([TYPE_EVPN, SUB_MAC_MOBILITY, flags, 0, s0, s1, s2, s3])
            }
            EvpnExtCommunity::RouterMac(MacAddr([a, b, c, d, e, f])) => {
                ExtCommunity([TYPE_EVPN, SUB_ROUTER_MAC, a, b, c, d, e, f])
            }
            EvpnExtCommunity::ArpNd {
                router,
                override_flag,
                immutable,
                proxy,
            } => {
                let flag = |on: bool, bit: u8| if on { bit } else { 0 };
                let flags = flag(router, ND_ROUTER)
                    | flag(override_flag, ND_OVERRIDE)
                    | flag(immutable, ND_IMMUTABLE)
                    | flag(proxy, ND_PROXY);
                ExtCommunity([TYPE_EVPN, SUB_ARP_ND, flags, 0, 0, 0, 0, 0])
            }
            EvpnExtCommunity::Other(c) => c,
        }
    }
}

impl fmt::Display for EvpnExtCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RouteTarget(rt) => write!(f, "RT:{rt}"),
            Self::Encapsulation { tunnel_type } => write!(f, "ET:{tunnel_type}"),
            Self::MacMobility { sticky, seq } => {
                write!(f, "MM:{seq}")?;
                if *sticky {
                    f.write_str(", sticky MAC")?;
                }
                Ok(())
            }
            Self::ArpNd {
                router,
                override_flag,
                immutable,
                proxy,
            } => {
                // FRR prints "ND:Proxy" over "ND:Router Flag" and nothing else.
                if *proxy {
                    f.write_str("ND:Proxy")
                } else if *router {
                    f.write_str("ND:Router Flag")
                } else {
                    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
                    let flags = flag(*override_flag, ND_OVERRIDE) | flag(*immutable, ND_IMMUTABLE);
                    write!(f, "ND:flags 0x{flags:02x}")
                }
            }
            Self::DefaultGateway => f.write_str("Default Gateway"),
            Self::RouterMac(mac) => write!(f, "Rmac:{mac}"),
            Self::Other(c) => write!(f, "0x{}", hex(&c.0)),
        }
    }
}

/// Serialized as its text.
impl Serialize for EvpnExtCommunity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn route_target_wire_and_text() {
        let rt = RouteTarget::As2 {
            asn: 65001,
            value: 42,
        };
        assert_eq!(rt.to_ext_community().0, [0, 2, 0xfd, 0xe9, 0, 0, 0, 42]);
        assert_eq!(rt.to_string(), "65001:42");
        assert_eq!("65001:42".parse(), Ok(rt));
        assert_eq!(
            "4200000000:42".parse(),
            Ok(RouteTarget::As4 {
                asn: 4_200_000_000,
                value: 42
            })
        );
        assert_eq!(
            "198.19.0.1:7".parse(),
            Ok(RouteTarget::Ipv4 {
                addr: Ipv4Addr::new(198, 19, 0, 1),
                value: 7
            })
        );
        assert_eq!(EvpnExtCommunity::RouteTarget(rt).to_string(), "RT:65001:42");
        for bad in [
            "",
            "65001",
            "4200000000:70000",
            "1.2.3:4",
            "a:b",
            "65001:-1",
        ] {
            assert!(bad.parse::<RouteTarget>().is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_string(&rt).unwrap(),
            "\"65001:42\"".to_owned()
        );
    }

    #[test]
    fn evpn_communities_as_frr_sends_them() {
        // Captured forms: encapsulation VXLAN, MAC mobility seq 5 sticky, router MAC.
        let cases: [([u8; 8], EvpnExtCommunity, &str); 7] = [
            ([3, 0x0c, 0, 0, 0, 0, 0, 8], EvpnExtCommunity::VXLAN, "ET:8"),
            (
                [6, 0, 1, 0, 0, 0, 0, 5],
                EvpnExtCommunity::MacMobility {
                    sticky: true,
                    seq: 5,
                },
                "MM:5, sticky MAC",
            ),
            (
                [6, 0, 0, 0, 0, 0, 1, 0],
                EvpnExtCommunity::MacMobility {
                    sticky: false,
                    seq: 256,
                },
                "MM:256",
            ),
            (
                [6, 3, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
                EvpnExtCommunity::RouterMac(MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])),
                "Rmac:aa:bb:cc:dd:ee:ff",
            ),
            (
                [6, 8, 1, 0, 0, 0, 0, 0],
                EvpnExtCommunity::ArpNd {
                    router: true,
                    override_flag: false,
                    immutable: false,
                    proxy: false,
                },
                "ND:Router Flag",
            ),
            (
                [3, 0x0d, 0, 0, 0, 0, 0, 0],
                EvpnExtCommunity::DefaultGateway,
                "Default Gateway",
            ),
            (
                [6, 0, 2, 0, 0, 0, 0, 5],
                EvpnExtCommunity::Other(ExtCommunity([6, 0, 2, 0, 0, 0, 0, 5])),
                "0x0600020000000005",
            ),
        ];
        for (raw, typed, text) in cases {
            let c = ExtCommunity(raw);
            assert_eq!(classify(&c), typed);
            assert_eq!(ExtCommunity::from(typed), c);
            assert_eq!(typed.to_string(), text);
        }
    }

    fn any_rt() -> impl Strategy<Value = RouteTarget> {
        prop_oneof![
            (any::<u16>(), any::<u32>()).prop_map(|(asn, value)| RouteTarget::As2 { asn, value }),
            (65536u32.., any::<u16>()).prop_map(|(asn, value)| RouteTarget::As4 { asn, value }),
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, value)| RouteTarget::Ipv4 {
                addr: Ipv4Addr::from(a),
                value
            }),
        ]
    }

    fn any_typed() -> impl Strategy<Value = EvpnExtCommunity> {
        prop_oneof![
            any_rt().prop_map(EvpnExtCommunity::RouteTarget),
            any::<u16>().prop_map(|tunnel_type| EvpnExtCommunity::Encapsulation { tunnel_type }),
            (any::<bool>(), any::<u32>())
                .prop_map(|(sticky, seq)| EvpnExtCommunity::MacMobility { sticky, seq }),
            any::<[bool; 4]>().prop_map(|[router, override_flag, immutable, proxy]| {
                EvpnExtCommunity::ArpNd {
                    router,
                    override_flag,
                    immutable,
                    proxy,
                }
            }),
            Just(EvpnExtCommunity::DefaultGateway),
            any::<[u8; 6]>().prop_map(|m| EvpnExtCommunity::RouterMac(MacAddr(m))),
        ]
    }

    proptest! {
        #[test]
        fn any_eight_octets_reflect_exactly(raw in any::<[u8; 8]>()) {
            let c = ExtCommunity(raw);
            prop_assert_eq!(ExtCommunity::from(classify(&c)), c);
        }

        #[test]
        fn typed_round_trip(t in any_typed()) {
            prop_assert_eq!(classify(&ExtCommunity::from(t)), t);
        }

        #[test]
        fn rt_text_round_trip(rt in any_rt()) {
            prop_assert_eq!(rt.to_string().parse::<RouteTarget>(), Ok(rt));
            prop_assert_eq!(RouteTarget::from_ext_community(&rt.into()), Some(rt));
        }
    }
}
