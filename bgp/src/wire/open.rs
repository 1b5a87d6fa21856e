//! OPEN (RFC 4271 §4.2) with optional parameters (RFC 5492) and extended optional
//! parameters length (RFC 9072).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Optional parameter: Parm. Type (1) | Parm. Length (1) | Parm. Value
//! RFC 9072: Opt Parm Len = 255 and first octet 255 → Extended Opt. Parm. Length (2)
//! follows, and every parameter's length is then 2 octets.
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use super::capability::Capability;
use super::notification::{codes, NotificationMsg};

/// AS_TRANS, put in the 2-octet My AS field when the real AS does not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Optional parameter type of capabilities (RFC 5492 §4).
pub const PARAM_CAPABILITIES: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenMsg {
    pub version: u8,
    /// The 2-octet My AS field as sent (AS_TRANS for large ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

fn open_error(subcode: u8, data: impl Into<Box<[u8]>>) -> NotificationMsg {
    NotificationMsg::new(codes::OPEN_MESSAGE_ERROR, subcode, data)
}

impl OpenMsg {
    /// A version-4 OPEN. `my_as` is AS_TRANS when `asn` does not fit in 2 octets; the
    /// 4-octet AS capability is added with `asn` if `capabilities` lacks one (RFC 6793
    /// §3: a NEW speaker always announces it).
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> OpenMsg {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        OpenMsg {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The speaker's AS: the 4-octet AS capability if present, else My AS.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The AS of the 4-octet AS capability (RFC 6793), if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The (AFI, SAFI) pairs of the multiprotocol capabilities (RFC 4760 §8).
    pub fn multiprotocol(&self) -> Vec<(u16, u8)> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::MultiProtocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .collect()
    }

    /// Whether the route-refresh capability (RFC 2918) is announced.
    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// The graceful-restart capability (RFC 4724), if announced.
    pub fn graceful_restart(&self) -> Option<&Capability> {
        self.capabilities
            .iter()
            .find(|c| matches!(c, Capability::GracefulRestart { .. }))
    }

    /// The ADD-PATH send/receive value for (afi, safi) (RFC 7911), if announced.
    pub fn add_path(&self, afi: u16, safi: u8) -> Option<u8> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::AddPath(f) => f
                .iter()
                .find(|f| f.afi == afi && f.safi == safi)
                .map(|f| f.send_receive),
            _ => None,
        })
    }

    /// Whether any capability has this code.
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// Decodes the body (after the header) with the checks of RFC 4271 §6.2.
    pub fn decode(body: &[u8]) -> Result<OpenMsg, NotificationMsg> {
        let bad_len = || {
            NotificationMsg::new(
                codes::MESSAGE_HEADER_ERROR,
                codes::header::BAD_MESSAGE_LENGTH,
                u16::try_from(body.len() + super::HEADER_LEN)
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            )
        };
        let Some((fixed, params)) = body.split_first_chunk::<10>() else {
            return Err(bad_len());
        };
        let [version, a0, a1, h0, h1, i0, i1, i2, i3, opt_len] = *fixed;
        if version != 4 {
            // RFC 4271 §6.2: data = the largest supported version, as 2 octets.
            return Err(open_error(codes::open::UNSUPPORTED_VERSION_NUMBER, [0, 4]));
        }
        let hold_time = u16::from_be_bytes([h0, h1]);
        if hold_time == 1 || hold_time == 2 {
            return Err(open_error(codes::open::UNACCEPTABLE_HOLD_TIME, Vec::new()));
        }
        let bgp_id = Ipv4Addr::new(i0, i1, i2, i3);
        if bgp_id.is_unspecified() {
            return Err(open_error(codes::open::BAD_BGP_IDENTIFIER, Vec::new()));
        }
        let malformed = || open_error(codes::UNSPECIFIC, Vec::new());

        // RFC 9072 §2: 255 followed by type 255 announces the extended format.
        let (extended, mut params) = match (opt_len, params) {
            (255, [255, l0, l1, rest @ ..]) => {
                if usize::from(u16::from_be_bytes([*l0, *l1])) != rest.len() {
                    return Err(malformed());
                }
                (true, rest)
            }
            _ => {
                if usize::from(opt_len) != params.len() {
                    return Err(malformed());
                }
                (false, params)
            }
        };
        let mut capabilities = Vec::new();
        while !params.is_empty() {
            let (ptype, len, rest) = match (extended, params) {
                (false, [t, l, rest @ ..]) => (*t, usize::from(*l), rest),
                (true, [t, l0, l1, rest @ ..]) => {
                    (*t, usize::from(u16::from_be_bytes([*l0, *l1])), rest)
                }
                _ => return Err(malformed()),
            };
            let (Some(value), Some(next)) = (rest.get(..len), rest.get(len..)) else {
                return Err(malformed());
            };
            if ptype != PARAM_CAPABILITIES {
                return Err(open_error(
                    codes::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                ));
            }
            let caps = Capability::decode_all(value).map_err(|_| malformed())?;
            capabilities.extend(caps);
            params = next;
        }
        Ok(OpenMsg {
            version,
            my_as: u16::from_be_bytes([a0, a1]),
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    fn params_len(&self) -> usize {
        // One optional parameter per capability, as FRR and GoBGP send them.
        self.capabilities.iter().map(|c| 2 + c.encoded_len()).sum()
    }

    fn extended(&self) -> bool {
        self.params_len() > 255
    }

    /// Exactly the number of body bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        if self.extended() {
            10 + 3 + self.params_len() + self.capabilities.len()
        } else {
            10 + self.params_len()
        }
    }

    /// Appends the body: one capabilities parameter per capability; the RFC 9072
    /// extended format only when the parameters do not fit in 255 octets.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.put_slice(&self.bgp_id.octets());
        let extended = self.extended();
        let start = out.len();
        if extended {
            out.put_u8(255);
            out.put_u8(255);
            out.put_u16(0);
        } else {
            out.put_u8(0);
        }
        for c in &self.capabilities {
            out.put_u8(PARAM_CAPABILITIES);
            if extended {
                out.put_u16(u16::try_from(c.encoded_len()).unwrap_or(u16::MAX));
            } else {
                out.put_u8(u8::try_from(c.encoded_len()).unwrap_or(u8::MAX));
            }
            c.encode(out);
        }
        if extended {
            super::patch_u16(out, start + 2, out.len() - start - 4);
        } else {
            super::patch_u8(out, start, out.len() - start - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::wire::capability::tests::arb_capability;
    use crate::wire::capability::{AddPathFamily, GrFamily};
    use crate::wire::tests::hexdec;
    use crate::wire::{DecodeCtx, EncodeCtx, Message};
    use proptest::prelude::*;

    /// An OPEN as FRR 8.4 sends it for an EVPN neighbor (hand-built, one capability per
    /// optional parameter): MP L2VPN EVPN, route refresh (Cisco 128 and 2), AS4 65001,
    /// ADD-PATH EVPN receive, hostname (73), graceful restart (R bit, 120 s).
    const FRR_LIKE_OPEN: &str = "
        ffffffffffffffffffffffffffffffff 004d 01
        04 fde9 00b4 c6130001 30
        02 06 01 04 0019 00 46
        02 02 80 00
        02 02 02 00
        02 06 41 04 0000fde9
        02 06 45 04 0019 46 01
        02 08 49 06 02 7231 02 6c6e
        02 04 40 02 8078
    ";

    #[test]
    fn frr_like_open_decodes() {
        let frame = hexdec(FRR_LIKE_OPEN);
        let d = Message::decode(&frame, &DecodeCtx::default()).unwrap();
        let Message::Open(open) = &d.value else {
            panic!("not an OPEN")
        };
        assert_eq!(open.version, 4);
        assert_eq!(open.asn(), 65001);
        assert_eq!(open.four_octet_as(), Some(65001));
        assert_eq!(open.hold_time, 180);
        assert_eq!(open.bgp_id, Ipv4Addr::new(198, 19, 0, 1));
        assert_eq!(open.multiprotocol(), vec![(25, 70)]);
        assert!(open.route_refresh());
        assert_eq!(open.add_path(25, 70), Some(1));
        assert!(open.has_capability(73));
        assert_eq!(
            open.capabilities,
            vec![
                Capability::MultiProtocol { afi: 25, safi: 70 },
                Capability::Unknown {
                    code: 128,
                    value: Box::new([])
                },
                Capability::RouteRefresh,
                Capability::FourOctetAs(65001),
                Capability::AddPath(vec![AddPathFamily {
                    afi: 25,
                    safi: 70,
                    send_receive: 1
                }]),
                Capability::Unknown {
                    code: 73,
                    value: vec![2, b'r', b'1', 2, b'l', b'n'].into()
                },
                Capability::GracefulRestart {
                    flags: 8,
                    time: 120,
                    families: vec![]
                },
            ]
        );
        // Re-encodes byte-exact.
        let ctx = EncodeCtx::default();
        assert_eq!(&d.value.to_bytes(&ctx)[..], &frame[..]);
        assert_eq!(d.value.encoded_len(&ctx), frame.len());
    }

    /// FRR 8.4.4's OPEN as captured (bgp/tests/fixtures/frr_open.hex).
    #[test]
    fn frr_8_4_open_capture_decodes() {
        let frame = hexdec(
            "ffffffffffffffffffffffffffffffff00600104fde900b4c613070143020601
             0400190046020280000202020002024600020641040000fde902020600020645
             04001946010208490604667866370002044002c0780209470700194680000000",
        );
        let d = Message::decode(&frame, &DecodeCtx::default()).unwrap();
        let Message::Open(open) = &d.value else {
            panic!("not an OPEN")
        };
        assert_eq!(open.asn(), 65001);
        assert_eq!(open.hold_time, 180);
        assert_eq!(open.bgp_id, Ipv4Addr::new(198, 19, 7, 1));
        assert_eq!(open.multiprotocol(), vec![(25, 70)]);
        assert!(open.route_refresh());
        assert_eq!(open.add_path(25, 70), Some(1));
        assert_eq!(
            open.graceful_restart(),
            Some(&Capability::GracefulRestart {
                flags: 0xc,
                time: 120,
                families: vec![]
            })
        );
        assert!(open.has_capability(73) && open.has_capability(71) && open.has_capability(6));
        assert_eq!(&d.value.to_bytes(&EncodeCtx::default())[..], &frame[..]);
    }

    #[test]
    fn several_capabilities_in_one_parameter() {
        let body = hexdec("04 fde9 005a 01020304 10 02 0e 01040019 0046 0200 41040000fde9");
        let open = OpenMsg::decode(&body).unwrap();
        assert_eq!(open.capabilities.len(), 3);
        assert_eq!(open.asn(), 65001);
    }

    #[test]
    fn new_uses_as_trans_for_large_asn() {
        let o = OpenMsg::new(4_200_000_000, 90, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        assert_eq!(o.my_as, AS_TRANS);
        assert_eq!(o.asn(), 4_200_000_000);
        let o = OpenMsg::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        assert_eq!(o.my_as, 65001);
        assert_eq!(o.four_octet_as(), Some(65001));
    }

    #[test]
    fn rfc4271_6_2_unsupported_version() {
        let body = hexdec("03 fde9 005a 01020304 00");
        let e = OpenMsg::decode(&body).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 1));
        assert_eq!(&e.data[..], &[0, 4]);
    }

    #[test]
    fn rfc4271_6_2_unacceptable_hold_time() {
        for h in ["0001", "0002"] {
            let body = hexdec(&format!("04 fde9 {h} 01020304 00"));
            let e = OpenMsg::decode(&body).unwrap_err();
            assert_eq!((e.code, e.subcode), (2, 6));
        }
        assert!(OpenMsg::decode(&hexdec("04 fde9 0000 01020304 00")).is_ok());
        assert!(OpenMsg::decode(&hexdec("04 fde9 0003 01020304 00")).is_ok());
    }

    #[test]
    fn rfc4271_6_2_bad_bgp_identifier() {
        let e = OpenMsg::decode(&hexdec("04 fde9 005a 00000000 00")).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 3));
    }

    #[test]
    fn rfc4271_6_2_unsupported_optional_parameter() {
        let e = OpenMsg::decode(&hexdec("04 fde9 005a 01020304 03 01 01 00")).unwrap_err();
        assert_eq!((e.code, e.subcode), (2, 4));
    }

    #[test]
    fn malformed_parameter_lengths() {
        // Opt Parm Len larger than the rest.
        let e = OpenMsg::decode(&hexdec("04 fde9 005a 01020304 05 02 02 02 00")).unwrap_err();
        assert_eq!(e.code, 2);
        // Parameter length overruns.
        assert!(OpenMsg::decode(&hexdec("04 fde9 005a 01020304 04 02 05 02 00")).is_err());
        // Capability inside overruns the parameter.
        assert!(OpenMsg::decode(&hexdec("04 fde9 005a 01020304 04 02 02 41 04")).is_err());
        // Short body.
        assert_eq!(OpenMsg::decode(&hexdec("04 fde9")).unwrap_err().code, 1);
    }

    #[test]
    fn rfc9072_extended_parameters_decode() {
        // 255, 255, ext len 8: one parameter type 2, 2-octet length 4: route refresh +
        // ... (a 2-octet-length param holding two capabilities).
        let body = hexdec("04 fde9 005a 01020304 ff ff 0007 02 0004 0200 4600");
        let open = OpenMsg::decode(&body).unwrap();
        assert_eq!(
            open.capabilities,
            vec![
                Capability::RouteRefresh,
                Capability::Unknown {
                    code: 70,
                    value: Box::new([])
                }
            ]
        );
    }

    #[test]
    fn rfc9072_extended_parameters_encode_when_long() {
        let caps: Vec<Capability> = (0..40)
            .map(|i| Capability::MultiProtocol { afi: i, safi: 1 })
            .collect();
        let o = OpenMsg::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), caps);
        let mut out = BytesMut::new();
        o.encode(&mut out);
        assert_eq!(out.len(), o.encoded_len());
        assert_eq!(&out[9..11], &[255, 255]);
        assert_eq!(OpenMsg::decode(&out).unwrap(), o);
    }

    #[test]
    fn gr_family_round_trip() {
        let o = OpenMsg::new(
            65001,
            90,
            Ipv4Addr::new(1, 2, 3, 4),
            vec![Capability::GracefulRestart {
                flags: 4,
                time: 300,
                families: vec![GrFamily {
                    afi: 25,
                    safi: 70,
                    flags: 0x80,
                }],
            }],
        );
        let mut out = BytesMut::new();
        o.encode(&mut out);
        assert_eq!(OpenMsg::decode(&out).unwrap(), o);
    }

    proptest! {
        #[test]
        fn round_trip(asn: u32, hold in prop_oneof![Just(0u16), 3u16..], id in 1u32.., caps in proptest::collection::vec(arb_capability(), 0..70)) {
            let o = OpenMsg::new(asn, hold, Ipv4Addr::from(id), caps);
            let mut out = BytesMut::new();
            o.encode(&mut out);
            prop_assert_eq!(out.len(), o.encoded_len());
            prop_assert_eq!(OpenMsg::decode(&out).unwrap(), o);
        }

        #[test]
        fn decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = OpenMsg::decode(&v);
        }
    }
}
