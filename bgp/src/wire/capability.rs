//! Capabilities advertised in OPEN (RFC 5492).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! ~                              ~
//! +------------------------------+
//! ```
//!
//! Values: MP (RFC 4760 §8) `AFI(2) reserved(1) SAFI(1)`; route refresh (RFC 2918)
//! empty; graceful restart (RFC 4724 §3) `flags(4 bits) time(12 bits)` then
//! `AFI(2) SAFI(1) flags(1)` per family; 4-octet AS (RFC 6793) `AS(4)`; ADD-PATH
//! (RFC 7911 §4) `AFI(2) SAFI(1) send/receive(1)` per family. Anything else is kept
//! as received.

use bytes::{BufMut, BytesMut};
use nom::multi::many0;
use nom::number::complete::{be_u16, be_u32, u8 as be_u8};
use nom::sequence::tuple;

use super::{exact, fail, In, Res, WireError, WireErrorKind};

/// Capability codes (IANA "Capability Codes").
pub mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const FQDN: u8 = 73;
}

/// Per-family entry of the graceful-restart capability (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    pub flags: u8,
}

/// Per-family entry of the ADD-PATH capability (RFC 7911 §4); send_receive is 1
/// (receive), 2 (send) or 3 (both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddPathFamily {
    pub afi: u16,
    pub safi: u8,
    pub send_receive: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760).
    MultiProtocol { afi: u16, safi: u8 },
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 64 (RFC 4724): restart flags (upper 4 bits of the first octet, held
    /// shifted down: 0x8 = Restart State, 0x4 = Notification, RFC 8538), restart
    /// time (12 bits) and families.
    GracefulRestart {
        flags: u8,
        time: u16,
        families: Vec<GrFamily>,
    },
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911).
    AddPath(Vec<AddPathFamily>),
    /// Anything else, kept as received.
    Unknown { code: u8, value: Box<[u8]> },
}

fn gr_family(i: In<'_>) -> Res<'_, GrFamily> {
    let (i, (afi, safi, flags)) = tuple((be_u16, be_u8, be_u8))(i)?;
    Ok((i, GrFamily { afi, safi, flags }))
}

fn add_path_family(i: In<'_>) -> Res<'_, AddPathFamily> {
    let (i, (afi, safi, send_receive)) = tuple((be_u16, be_u8, be_u8))(i)?;
    Ok((
        i,
        AddPathFamily {
            afi,
            safi,
            send_receive,
        },
    ))
}

/// Repeats a 4-octet entry parser over a value whose length must be a multiple of 4.
fn entries4<'a, T>(
    what: &'static str,
    f: fn(In<'a>) -> Res<'a, T>,
) -> impl FnMut(In<'a>) -> Res<'a, Vec<T>> {
    move |i: In<'a>| {
        if !i.len().is_multiple_of(4) {
            return fail(i, WireErrorKind::BadLength { what, got: i.len() });
        }
        many0(f)(i)
    }
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::MultiProtocol { .. } => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::GracefulRestart { .. } => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes the value of capability `code` (exactly `value`).
    pub fn decode_value(code: u8, value: In<'_>) -> Result<Capability, WireError> {
        match code {
            code::MULTIPROTOCOL => exact(value, |i| {
                let (i, (afi, _reserved, safi)) = tuple((be_u16, be_u8, be_u8))(i)?;
                Ok((i, Capability::MultiProtocol { afi, safi }))
            }),
            code::ROUTE_REFRESH => exact(value, |i| Ok((i, Capability::RouteRefresh))),
            code::GRACEFUL_RESTART => exact(value, |i| {
                let (i, word) = be_u16(i)?;
                let (i, families) = entries4("graceful restart", gr_family)(i)?;
                Ok((
                    i,
                    Capability::GracefulRestart {
                        flags: u8::try_from(word >> 12).unwrap_or(0),
                        time: word & 0x0fff,
                        families,
                    },
                ))
            }),
            code::FOUR_OCTET_AS => exact(value, |i| {
                let (i, asn) = be_u32(i)?;
                Ok((i, Capability::FourOctetAs(asn)))
            }),
            code::ADD_PATH => exact(value, |i| {
                let (i, fams) = entries4("add-path", add_path_family)(i)?;
                Ok((i, Capability::AddPath(fams)))
            }),
            _ => Ok(Capability::Unknown {
                code,
                value: value.into(),
            }),
        }
    }

    /// Decodes one capability (code, length, value) from the front of `input`.
    pub fn decode(input: In<'_>) -> Res<'_, Capability> {
        let (i, (code, len)) = tuple((be_u8, be_u8))(input)?;
        let (i, value) = nom::bytes::complete::take(len)(i)?;
        match Capability::decode_value(code, value) {
            Ok(c) => Ok((i, c)),
            Err(e) => Err(nom::Err::Failure(WireError::new(e.kind, input.len()))),
        }
    }

    /// Decodes a whole capabilities optional parameter (RFC 5492 §4: one parameter
    /// may carry several capabilities).
    pub fn decode_all(value: In<'_>) -> Result<Vec<Capability>, WireError> {
        exact(value, many0(Capability::decode))
    }

    fn value_len(&self) -> usize {
        match self {
            Capability::MultiProtocol { .. } => 4,
            Capability::RouteRefresh => 0,
            Capability::GracefulRestart { families, .. } => 2 + 4 * families.len(),
            Capability::FourOctetAs(_) => 4,
            Capability::AddPath(f) => 4 * f.len(),
            Capability::Unknown { value, .. } => value.len(),
        }
    }

    /// Exactly the number of bytes `encode` appends (code, length, value).
    pub fn encoded_len(&self) -> usize {
        2 + self.value_len().min(255)
    }

    /// Appends code, length and value. A value longer than 255 octets cannot be
    /// represented and is cut at 255 (only a hand-built `Unknown` or a list of more
    /// than 63 families can be that long).
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u8(self.code());
        out.put_u8(0);
        match self {
            Capability::MultiProtocol { afi, safi } => {
                out.put_u16(*afi);
                out.put_u8(0);
                out.put_u8(*safi);
            }
            Capability::RouteRefresh => {}
            Capability::GracefulRestart {
                flags,
                time,
                families,
            } => {
                out.put_u16((u16::from(*flags & 0x0f) << 12) | (*time & 0x0fff));
                for f in families.iter().take(63) {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(f.flags);
                }
            }
            Capability::FourOctetAs(asn) => out.put_u32(*asn),
            Capability::AddPath(fams) => {
                for f in fams.iter().take(63) {
                    out.put_u16(f.afi);
                    out.put_u8(f.safi);
                    out.put_u8(f.send_receive);
                }
            }
            Capability::Unknown { value, .. } => {
                out.put_slice(value.get(..255).unwrap_or(value));
            }
        }
        let len = out.len() - start - 2;
        super::patch_u8(out, start + 1, len);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    pub fn arb_capability() -> impl Strategy<Value = Capability> {
        prop_oneof![
            (any::<u16>(), any::<u8>())
                .prop_map(|(afi, safi)| Capability::MultiProtocol { afi, safi }),
            Just(Capability::RouteRefresh),
            (
                0u8..16,
                0u16..4096,
                proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 0..5)
            )
                .prop_map(|(flags, time, f)| Capability::GracefulRestart {
                    flags,
                    time,
                    families: f
                        .into_iter()
                        .map(|(afi, safi, flags)| GrFamily { afi, safi, flags })
                        .collect()
                }),
            any::<u32>().prop_map(Capability::FourOctetAs),
            proptest::collection::vec((any::<u16>(), any::<u8>(), 1u8..4), 0..5).prop_map(|f| {
                Capability::AddPath(
                    f.into_iter()
                        .map(|(afi, safi, send_receive)| AddPathFamily {
                            afi,
                            safi,
                            send_receive,
                        })
                        .collect(),
                )
            }),
            (
                prop_oneof![Just(73u8), Just(128u8), Just(70u8), 100u8..=255],
                proptest::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(code, v)| Capability::Unknown {
                    code,
                    value: v.into()
                }),
        ]
    }

    #[test]
    fn several_capabilities_in_one_parameter() {
        // MP L2VPN EVPN, route refresh, AS4 65001.
        let v = [1, 4, 0, 25, 0, 70, 2, 0, 65, 4, 0, 0, 0xfd, 0xe9];
        let caps = Capability::decode_all(&v).unwrap();
        assert_eq!(
            caps,
            vec![
                Capability::MultiProtocol { afi: 25, safi: 70 },
                Capability::RouteRefresh,
                Capability::FourOctetAs(65001)
            ]
        );
        let mut out = BytesMut::new();
        for c in &caps {
            c.encode(&mut out);
        }
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn graceful_restart_flags_and_time() {
        // R bit set, time 120, L2VPN EVPN with F bit.
        let v = [64, 6, 0x80, 120, 0, 25, 70, 0x80];
        let (_, c) = Capability::decode(&v).unwrap();
        assert_eq!(
            c,
            Capability::GracefulRestart {
                flags: 8,
                time: 120,
                families: vec![GrFamily {
                    afi: 25,
                    safi: 70,
                    flags: 0x80
                }]
            }
        );
        let mut out = BytesMut::new();
        c.encode(&mut out);
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn hostname_capability_kept_byte_exact() {
        // FRR's FQDN capability (73): hostname "r1", domain "".
        let v = [73, 4, 2, b'r', b'1', 0];
        let (_, c) = Capability::decode(&v).unwrap();
        assert_eq!(
            c,
            Capability::Unknown {
                code: 73,
                value: vec![2, b'r', b'1', 0].into()
            }
        );
        let mut out = BytesMut::new();
        c.encode(&mut out);
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn malformed_known_capability_is_error() {
        assert!(Capability::decode(&[1, 3, 0, 25, 0]).is_err());
        assert!(Capability::decode(&[65, 2, 0, 1]).is_err());
        assert!(Capability::decode(&[2, 1, 0]).is_err());
        assert!(Capability::decode(&[69, 5, 0, 25, 70, 3, 0]).is_err());
        assert!(Capability::decode(&[65, 4, 0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(c in arb_capability()) {
            let mut out = BytesMut::new();
            c.encode(&mut out);
            prop_assert_eq!(out.len(), c.encoded_len());
            let (rest, d) = Capability::decode(&out).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(d, c);
        }

        #[test]
        fn decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Capability::decode_all(&v);
        }
    }
}
