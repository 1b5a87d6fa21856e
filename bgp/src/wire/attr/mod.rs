//! Path attributes (RFC 4271 §4.3, §5) and the RFC 7606 treatment of each.
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|  then Attribute Length: 1 octet, or 2 octets
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+  when the Extended Length bit is set; then value
//!
//! Flags: 0x80 Optional, 0x40 Transitive, 0x20 Partial, 0x10 Extended Length.
//! ```
//!
//! [`PathAttrs::decode`] frames every attribute (flags, code, length, exact value
//! slice) before parsing its value, so a bad value never desynchronises the loop;
//! what to do about each problem comes from one table, [`action_for`].

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::notification::{codes, NotificationMsg};
use super::{Action, AttrError, DecodeCtx, EncodeCtx, WireError, WireErrorKind};

pub mod as_path;
pub mod cluster_list;
pub mod ext_community;
pub mod mp_reach;
pub mod mp_unreach;
pub mod origin;
pub mod pmsi_tunnel;
pub mod scalar;
pub mod unknown;

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const PMSI_TUNNEL: u8 = 22;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// ORIGIN (RFC 4271 §5.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

/// One AS_PATH segment; AS numbers are always held as 4 octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// AS_PATH with 4-octet AS numbers (RFC 6793).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

/// One extended community, kept as its 8 raw bytes so that reflection is
/// byte-exact; typed views live with the family that defines them (RFC 4360).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

/// PMSI_TUNNEL (RFC 6514 §5), kept raw; the EVPN crate gives the typed view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PmsiTunnel {
    pub flags: u8,
    pub tunnel_type: u8,
    /// 3-octet MPLS label field (for VXLAN: the VNI, RFC 8365 §5.1.3).
    pub label: [u8; 3],
    pub tunnel_id: Box<[u8]>,
}

/// An attribute carried but not interpreted: AGGREGATOR, COMMUNITIES, LARGE
/// COMMUNITY, and unknown optional transitive attributes (which get PARTIAL set,
/// RFC 4271 §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttr {
    pub flags: u8,
    pub code: u8,
    pub value: Box<[u8]>,
}

/// The attributes of a path, without MP_REACH/MP_UNREACH (those carry the routes,
/// not their properties). This is the value the RIB interns and shares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttrs {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Option<Vec<Ipv4Addr>>,
    pub ext_communities: Option<Vec<ExtCommunity>>,
    pub pmsi_tunnel: Option<PmsiTunnel>,
    /// Attributes carried as bytes, in the order received.
    pub other: Vec<RawAttr>,
}

/// MP_REACH_NLRI next hop (RFC 4760 §3; for EVPN the VTEP address, RFC 8365 §5.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// Global and link-local (length 32).
    V6LinkLocal(Ipv6Addr, Ipv6Addr),
}

/// MP_REACH_NLRI (RFC 4760 §3); the NLRI stay bytes for the family to decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpReach {
    pub afi: u16,
    pub safi: u8,
    pub next_hop: MpNextHop,
    pub nlri: Bytes,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpUnreach {
    pub afi: u16,
    pub safi: u8,
    pub nlri: Bytes,
}

/// The O and T bits each recognised attribute must carry (RFC 4271 §5, RFC 4456 §8,
/// RFC 4760, RFC 4360, RFC 6793, RFC 6514, RFC 8092). `None`: not checked.
pub fn expected_flags(code: u8) -> Option<u8> {
    use flags::{OPTIONAL as O, TRANSITIVE as T};
    Some(match code {
        code::ORIGIN
        | code::AS_PATH
        | code::NEXT_HOP
        | code::LOCAL_PREF
        | code::ATOMIC_AGGREGATE => T,
        code::MULTI_EXIT_DISC
        | code::ORIGINATOR_ID
        | code::CLUSTER_LIST
        | code::MP_REACH_NLRI
        | code::MP_UNREACH_NLRI => O,
        code::AGGREGATOR
        | code::COMMUNITIES
        | code::EXTENDED_COMMUNITIES
        | code::AS4_PATH
        | code::AS4_AGGREGATOR
        | code::PMSI_TUNNEL
        | code::LARGE_COMMUNITY => O | T,
        _ => return None,
    })
}

/// The RFC 7606 action for a problem `kind` with attribute `code`: one row per
/// attribute, the clause it follows beside it.
pub fn action_for(code: u8, kind: &WireErrorKind, ibgp: bool) -> Action {
    use Action::*;
    match (code, kind) {
        // §3(g): a repeated MP_REACH_NLRI/MP_UNREACH_NLRI is "Malformed Attribute
        // List" and reset; any other repeated attribute: later copies discarded.
        (code::MP_REACH_NLRI | code::MP_UNREACH_NLRI, WireErrorKind::Duplicate) => SessionReset,
        (_, WireErrorKind::Duplicate) => AttributeDiscard,
        // §3(d): a missing well-known mandatory attribute → treat-as-withdraw.
        (_, WireErrorKind::Missing { .. }) => TreatAsWithdraw,
        // §7.1 ORIGIN: bad length or undefined value → treat-as-withdraw.
        (code::ORIGIN, _) => TreatAsWithdraw,
        // §7.2 AS_PATH: malformed segments (or confed segments from eBGP) → t-a-w.
        (code::AS_PATH, _) => TreatAsWithdraw,
        // §7.3 NEXT_HOP: length not 4 → treat-as-withdraw.
        (code::NEXT_HOP, _) => TreatAsWithdraw,
        // §7.4 MULTI_EXIT_DISC: length not 4 → treat-as-withdraw.
        (code::MULTI_EXIT_DISC, _) => TreatAsWithdraw,
        // §7.5 LOCAL_PREF: from an external peer it is discarded; from an internal
        // peer a length other than 4 → treat-as-withdraw.
        (code::LOCAL_PREF, _) if !ibgp => AttributeDiscard,
        (code::LOCAL_PREF, _) => TreatAsWithdraw,
        // §7.6 ATOMIC_AGGREGATE: length not 0 → attribute discard.
        (code::ATOMIC_AGGREGATE, _) => AttributeDiscard,
        // §7.7 AGGREGATOR: length not 6/8 → attribute discard.
        (code::AGGREGATOR, _) => AttributeDiscard,
        // §7.8 COMMUNITIES: length not a non-zero multiple of 4 → treat-as-withdraw.
        (code::COMMUNITIES, _) => TreatAsWithdraw,
        // §7.9 ORIGINATOR_ID: length not 4 → treat-as-withdraw.
        (code::ORIGINATOR_ID, _) => TreatAsWithdraw,
        // §7.10 CLUSTER_LIST: length not a non-zero multiple of 4 → treat-as-withdraw.
        (code::CLUSTER_LIST, _) => TreatAsWithdraw,
        // §7.11 MP_REACH_NLRI / §7.12 MP_UNREACH_NLRI: the NLRI cannot be withdrawn
        // one by one when the attribute is unreadable: session reset (the stronger of
        // the two approaches allowed; vxbgp does not disable single AFI/SAFIs).
        (code::MP_REACH_NLRI | code::MP_UNREACH_NLRI, _) => SessionReset,
        // §7.14 EXTENDED_COMMUNITIES: length not a non-zero multiple of 8 → t-a-w.
        (code::EXTENDED_COMMUNITIES, _) => TreatAsWithdraw,
        // RFC 6793 §6 (as updated by RFC 7606 §1): malformed AS4_PATH or
        // AS4_AGGREGATOR → attribute discard.
        (code::AS4_PATH | code::AS4_AGGREGATOR, _) => AttributeDiscard,
        // RFC 6514 §5 PMSI_TUNNEL: shorter than its fixed part → treat-as-withdraw
        // (RFC 7606 §3 b default for attributes that affect route selection).
        (code::PMSI_TUNNEL, _) => TreatAsWithdraw,
        // RFC 8092 §5 LARGE_COMMUNITY: length not a non-zero multiple of 12 → t-a-w.
        (code::LARGE_COMMUNITY, _) => TreatAsWithdraw,
        // §3(b): treat-as-withdraw is the default replacement for session reset.
        _ => TreatAsWithdraw,
    }
}

/// The NOTIFICATION for an attribute problem whose action is a session reset
/// (RFC 4271 §6.3: data = the offending attribute where it says so).
fn reset_notification(code: u8, kind: &WireErrorKind, attribute: &[u8]) -> NotificationMsg {
    use codes::update::*;
    match kind {
        // RFC 7606 §3(g).
        WireErrorKind::Duplicate => NotificationMsg::new(
            codes::UPDATE_MESSAGE_ERROR,
            MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
        ),
        WireErrorKind::BadFlags { .. } => NotificationMsg::new(
            codes::UPDATE_MESSAGE_ERROR,
            ATTRIBUTE_FLAGS_ERROR,
            attribute,
        ),
        _ if code == code::MP_REACH_NLRI || code == code::MP_UNREACH_NLRI => NotificationMsg::new(
            codes::UPDATE_MESSAGE_ERROR,
            OPTIONAL_ATTRIBUTE_ERROR,
            attribute,
        ),
        _ => NotificationMsg::new(
            codes::UPDATE_MESSAGE_ERROR,
            MALFORMED_ATTRIBUTE_LIST,
            Vec::new(),
        ),
    }
}

/// One framed attribute.
struct Framed<'a> {
    flags: u8,
    code: u8,
    value: &'a [u8],
    /// The whole attribute, header included (NOTIFICATION data).
    whole: &'a [u8],
}

/// Splits the attribute at the front of `block`: `Ok(None)` at the end, `Err(code,
/// flags)` when the header or value overruns the block (RFC 7606 §4).
#[allow(clippy::type_complexity)]
fn frame(block: &[u8]) -> Result<Option<(Framed<'_>, &[u8])>, (u8, u8)> {
    let (flags, code, len, hdr) = match block {
        [] => return Ok(None),
        [f, c, l0, l1, ..] if f & flags::EXTENDED_LENGTH != 0 => {
            (*f, *c, usize::from(u16::from_be_bytes([*l0, *l1])), 4)
        }
        [f, c, l, ..] if f & flags::EXTENDED_LENGTH == 0 => (*f, *c, usize::from(*l), 3),
        [f, c, ..] => return Err((*c, *f)),
        [f] => return Err((0, *f)),
    };
    let (Some(whole), Some(rest)) = (block.get(..hdr + len), block.get(hdr + len..)) else {
        return Err((code, flags));
    };
    let value = whole.get(hdr..).unwrap_or_default();
    Ok(Some((
        Framed {
            flags,
            code,
            value,
            whole,
        },
        rest,
    )))
}

/// What PathAttrs::decode found.
pub type DecodedAttrs = (
    PathAttrs,
    Option<MpReach>,
    Option<MpUnreach>,
    Vec<AttrError>,
);

impl PathAttrs {
    /// Decodes a path-attribute block (RFC 4271 §4.3) with the RFC 7606 rules.
    ///
    /// `Ok` holds the attributes, MP_REACH/MP_UNREACH, and the non-fatal problems
    /// (attribute discard, treat-as-withdraw); `Err` is the NOTIFICATION for a problem
    /// that needs a session reset. Missing well-known attributes are checked by
    /// [`check_mandatory`], which needs to know whether the UPDATE has NLRI.
    pub fn decode(block: &[u8], ctx: &DecodeCtx) -> Result<DecodedAttrs, NotificationMsg> {
        let mut attrs = PathAttrs::default();
        let mut mp_reach = None;
        let mut mp_unreach = None;
        let mut errors = Vec::new();
        let mut seen = [false; 256];
        let mut as4_path: Option<AsPath> = None;
        let mut as4_aggregator: Option<(u32, Ipv4Addr)> = None;
        let mut aggregator_as: Option<u32> = None;
        let mut rest = block;
        loop {
            let offset = block.len() - rest.len();
            let (a, next) = match frame(rest) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err((code, flags)) => {
                    // RFC 7606 §4: an attribute overrunning the block (or fewer octets
                    // left than an attribute header) → treat-as-withdraw, the NLRI
                    // located by Total Attribute Length. RFC 7606 §5.1/§5.2: if no
                    // MP_REACH/MP_UNREACH was found before it, one may be hidden in the
                    // unreadable rest, so the routes cannot be withdrawn: reset.
                    if mp_reach.is_none() && mp_unreach.is_none() {
                        return Err(NotificationMsg::new(
                            codes::UPDATE_MESSAGE_ERROR,
                            codes::update::MALFORMED_ATTRIBUTE_LIST,
                            Vec::new(),
                        ));
                    }
                    errors.push(AttrError {
                        code,
                        flags,
                        offset,
                        kind: WireErrorKind::Truncated,
                        action: Action::TreatAsWithdraw,
                    });
                    break;
                }
            };
            rest = next;
            let problem = |kind: WireErrorKind, errors: &mut Vec<AttrError>| {
                let action = action_for(a.code, &kind, ctx.ibgp);
                if action == Action::SessionReset {
                    return Err(reset_notification(a.code, &kind, a.whole));
                }
                errors.push(AttrError {
                    code: a.code,
                    flags: a.flags,
                    offset,
                    kind,
                    action,
                });
                Ok(())
            };
            let seen_slot = seen.get_mut(usize::from(a.code));
            if let Some(s) = seen_slot {
                if *s {
                    problem(WireErrorKind::Duplicate, &mut errors)?;
                    continue;
                }
                *s = true;
            }
            // RFC 7606 §3(c): O/T bits in conflict with the attribute's definition →
            // the row's action (treat-as-withdraw unless the attribute says otherwise).
            if let Some(exp) = expected_flags(a.code) {
                if a.flags & (flags::OPTIONAL | flags::TRANSITIVE) != exp {
                    problem(WireErrorKind::BadFlags { flags: a.flags }, &mut errors)?;
                    continue;
                }
            }
            let v = a.value;
            let raw = |value: Box<[u8]>| RawAttr {
                flags: a.flags & !flags::EXTENDED_LENGTH,
                code: a.code,
                value,
            };
            let r: Result<(), WireError> = match a.code {
                code::ORIGIN => Origin::decode_value(v).map(|o| attrs.origin = Some(o)),
                code::AS_PATH => AsPath::decode_value(v, ctx.as4).and_then(|p| {
                    // RFC 7606 §7.2 / RFC 5065 §5.3: confederation segments from an
                    // external peer make the path malformed.
                    if !ctx.ibgp && p.has_confed() {
                        return Err(WireError::new(
                            WireErrorKind::BadValue {
                                what: "as_path confed segment from ebgp",
                                got: 0,
                            },
                            v.len(),
                        ));
                    }
                    attrs.as_path = Some(p);
                    Ok(())
                }),
                code::NEXT_HOP => {
                    scalar::decode_ipv4("next_hop", v).map(|a| attrs.next_hop = Some(a))
                }
                code::MULTI_EXIT_DISC => scalar::decode_u32("med", v).map(|m| attrs.med = Some(m)),
                code::LOCAL_PREF => scalar::decode_u32("local_pref", v).and_then(|l| {
                    if !ctx.ibgp {
                        // RFC 7606 §7.5: from an external peer → discarded.
                        return Err(WireError::new(
                            WireErrorKind::BadValue {
                                what: "local_pref from ebgp",
                                got: u64::from(l),
                            },
                            v.len(),
                        ));
                    }
                    attrs.local_pref = Some(l);
                    Ok(())
                }),
                code::ATOMIC_AGGREGATE => scalar::decode_empty("atomic_aggregate", v)
                    .map(|()| attrs.atomic_aggregate = true),
                code::AGGREGATOR => unknown::decode_aggregator(v, ctx.as4).map(|(asn, ip)| {
                    aggregator_as = Some(asn);
                    let mut r = RawAttr::new_aggregator(asn, ip);
                    r.flags = a.flags & !flags::EXTENDED_LENGTH;
                    attrs.other.push(r);
                }),
                code::COMMUNITIES => unknown::check_multiple("communities", v, 4)
                    .map(|()| attrs.other.push(raw(v.into()))),
                code::LARGE_COMMUNITY => unknown::check_multiple("large_community", v, 12)
                    .map(|()| attrs.other.push(raw(v.into()))),
                code::ORIGINATOR_ID => {
                    scalar::decode_ipv4("originator_id", v).map(|a| attrs.originator_id = Some(a))
                }
                code::CLUSTER_LIST => cluster_list::decode(v).map(|l| attrs.cluster_list = Some(l)),
                code::MP_REACH_NLRI => MpReach::decode_value(v).map(|m| mp_reach = Some(m)),
                code::MP_UNREACH_NLRI => MpUnreach::decode_value(v).map(|m| mp_unreach = Some(m)),
                code::EXTENDED_COMMUNITIES => {
                    ext_community::decode(v).map(|l| attrs.ext_communities = Some(l))
                }
                // RFC 6793 §3: AS4_PATH/AS4_AGGREGATOR between NEW speakers are
                // discarded silently; from an OLD session they are merged below.
                code::AS4_PATH if ctx.as4 => Ok(()),
                code::AS4_AGGREGATOR if ctx.as4 => Ok(()),
                code::AS4_PATH => AsPath::decode_value(v, true).map(|p| as4_path = Some(p)),
                code::AS4_AGGREGATOR => {
                    unknown::decode_aggregator(v, true).map(|x| as4_aggregator = Some(x))
                }
                code::PMSI_TUNNEL => {
                    PmsiTunnel::decode_value(v).map(|p| attrs.pmsi_tunnel = Some(p))
                }
                _ => {
                    if a.flags & flags::OPTIONAL == 0 {
                        // RFC 4271 §6.3: an unrecognized well-known attribute.
                        return Err(NotificationMsg::new(
                            codes::UPDATE_MESSAGE_ERROR,
                            codes::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                            a.whole,
                        ));
                    }
                    if a.flags & flags::TRANSITIVE != 0 {
                        // RFC 4271 §5: passed on with the Partial bit set.
                        let mut r = raw(v.into());
                        r.flags |= flags::PARTIAL;
                        attrs.other.push(r);
                    }
                    // Unrecognized optional non-transitive: quietly ignored (§9).
                    Ok(())
                }
            };
            if let Err(e) = r {
                problem(e.kind, &mut errors)?;
            }
        }
        // RFC 6793 §4.2.3: rebuild the 4-octet path on a 2-octet session. If the
        // AGGREGATOR's AS is not AS_TRANS, AS4_AGGREGATOR and AS4_PATH are ignored.
        let trans = u32::from(super::open::AS_TRANS);
        if !ctx.as4 && aggregator_as.is_none_or(|asn| asn == trans) {
            if let (Some((asn, ip)), Some(agg)) = (
                as4_aggregator,
                attrs.other.iter_mut().find(|r| r.code == code::AGGREGATOR),
            ) {
                let f = agg.flags;
                *agg = RawAttr::new_aggregator(asn, ip);
                agg.flags = f;
            }
            if let (Some(p4), Some(p)) = (&as4_path, &attrs.as_path) {
                attrs.as_path = Some(p.merge_as4(p4));
            }
        }
        Ok((attrs, mp_reach, mp_unreach, errors))
    }

    /// The attributes to write, in type-code order (RFC 4271 §5 recommends
    /// ascending order; RFC 7606 §5.1 puts MP_REACH/MP_UNREACH first, which
    /// [`UpdateMsg`](super::UpdateMsg) does).
    fn emits(&self, ctx: &EncodeCtx) -> Vec<Emit<'_>> {
        let mut v = Vec::with_capacity(12 + self.other.len());
        if let Some(o) = self.origin {
            v.push(Emit::Origin(o));
        }
        if let Some(p) = &self.as_path {
            v.push(Emit::AsPath(p, ctx.as4));
            if !ctx.as4 && p.needs_as4_path() {
                v.push(Emit::As4Path(p));
            }
        }
        if let Some(a) = self.next_hop {
            v.push(Emit::NextHop(a));
        }
        if let Some(m) = self.med {
            v.push(Emit::Med(m));
        }
        if let Some(l) = self.local_pref {
            v.push(Emit::LocalPref(l));
        }
        if self.atomic_aggregate {
            v.push(Emit::AtomicAggregate);
        }
        if let Some(a) = self.originator_id {
            v.push(Emit::OriginatorId(a));
        }
        if let Some(l) = &self.cluster_list {
            v.push(Emit::ClusterList(l));
        }
        if let Some(l) = &self.ext_communities {
            v.push(Emit::ExtCommunities(l));
        }
        if let Some(p) = &self.pmsi_tunnel {
            v.push(Emit::Pmsi(p));
        }
        for r in &self.other {
            match (r.code, r.aggregator()) {
                (code::AGGREGATOR, Some((asn, ip))) if !ctx.as4 => {
                    v.push(Emit::Aggregator2(
                        r.flags,
                        unknown::aggregator_value_2(asn, ip),
                    ));
                    if asn > 0xffff {
                        v.push(Emit::As4Aggregator(r));
                    }
                }
                _ => v.push(Emit::Raw(r)),
            }
        }
        v.sort_by_key(Emit::code);
        v
    }

    /// Exactly the number of bytes `encode` appends.
    pub fn encoded_len(&self, ctx: &EncodeCtx) -> usize {
        self.emits(ctx).iter().map(Emit::len).sum()
    }

    /// Appends every attribute in type-code order, each with the extended-length
    /// flag only when its value is longer than 255 octets. On a 2-octet session
    /// (`!ctx.as4`) AS_PATH and AGGREGATOR are written with AS_TRANS and AS4_PATH /
    /// AS4_AGGREGATOR are added when needed (RFC 6793 §4.2.2).
    pub fn encode(&self, ctx: &EncodeCtx, out: &mut BytesMut) {
        for e in self.emits(ctx) {
            e.encode(out);
        }
    }
}

/// RFC 7606 §3(d): the well-known mandatory attributes an UPDATE with reachable NLRI
/// must carry: ORIGIN and AS_PATH always, LOCAL_PREF from internal peers, NEXT_HOP
/// only when the IPv4 NLRI field is non-empty (RFC 4760 §3 makes it discretionary
/// otherwise). An UPDATE without reachable NLRI needs none (RFC 7606 §3 e).
/// Attributes already reported malformed are not reported missing again.
pub fn check_mandatory(
    attrs: &PathAttrs,
    has_mp_reach: bool,
    has_ipv4_nlri: bool,
    ibgp: bool,
    errors: &mut Vec<AttrError>,
) {
    if !has_mp_reach && !has_ipv4_nlri {
        return;
    }
    let mut missing = Vec::new();
    if attrs.origin.is_none() {
        missing.push(code::ORIGIN);
    }
    if attrs.as_path.is_none() {
        missing.push(code::AS_PATH);
    }
    if has_ipv4_nlri && attrs.next_hop.is_none() {
        missing.push(code::NEXT_HOP);
    }
    if ibgp && attrs.local_pref.is_none() {
        missing.push(code::LOCAL_PREF);
    }
    for c in missing {
        if errors.iter().any(|e| e.code == c) {
            continue;
        }
        let kind = WireErrorKind::Missing { code: c };
        errors.push(AttrError {
            code: c,
            flags: 0,
            offset: 0,
            action: action_for(c, &kind, ibgp),
            kind,
        });
    }
}

/// One attribute to write.
enum Emit<'a> {
    Origin(Origin),
    AsPath(&'a AsPath, bool),
    NextHop(Ipv4Addr),
    Med(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator2(u8, [u8; 6]),
    OriginatorId(Ipv4Addr),
    ClusterList(&'a [Ipv4Addr]),
    ExtCommunities(&'a [ExtCommunity]),
    As4Path(&'a AsPath),
    As4Aggregator(&'a RawAttr),
    Pmsi(&'a PmsiTunnel),
    Raw(&'a RawAttr),
}

impl Emit<'_> {
    fn code(&self) -> u8 {
        match self {
            Emit::Origin(_) => code::ORIGIN,
            Emit::AsPath(..) => code::AS_PATH,
            Emit::NextHop(_) => code::NEXT_HOP,
            Emit::Med(_) => code::MULTI_EXIT_DISC,
            Emit::LocalPref(_) => code::LOCAL_PREF,
            Emit::AtomicAggregate => code::ATOMIC_AGGREGATE,
            Emit::Aggregator2(..) => code::AGGREGATOR,
            Emit::OriginatorId(_) => code::ORIGINATOR_ID,
            Emit::ClusterList(_) => code::CLUSTER_LIST,
            Emit::ExtCommunities(_) => code::EXTENDED_COMMUNITIES,
            Emit::As4Path(_) => code::AS4_PATH,
            Emit::As4Aggregator(_) => code::AS4_AGGREGATOR,
            Emit::Pmsi(_) => code::PMSI_TUNNEL,
            Emit::Raw(r) => r.code,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            Emit::Aggregator2(f, _) => *f & !flags::EXTENDED_LENGTH,
            Emit::Raw(r) => r.flags & !flags::EXTENDED_LENGTH,
            _ => expected_flags(self.code()).unwrap_or(flags::OPTIONAL | flags::TRANSITIVE),
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Emit::Origin(_) => 1,
            Emit::AsPath(p, as4) => p.value_len(*as4),
            Emit::NextHop(_) | Emit::Med(_) | Emit::LocalPref(_) | Emit::OriginatorId(_) => 4,
            Emit::AtomicAggregate => 0,
            Emit::Aggregator2(..) => 6,
            Emit::ClusterList(l) => cluster_list::value_len(l),
            Emit::ExtCommunities(l) => 8 * l.len(),
            Emit::As4Path(p) => p.as4_path().value_len(true),
            Emit::As4Aggregator(_) => 8,
            Emit::Pmsi(p) => p.value_len(),
            Emit::Raw(r) => r.value.len(),
        }
    }

    fn len(&self) -> usize {
        let v = self.value_len().min(usize::from(u16::MAX));
        if v > 255 {
            4 + v
        } else {
            3 + v
        }
    }

    fn encode(&self, out: &mut BytesMut) {
        let len = self.value_len().min(usize::from(u16::MAX));
        let ext = len > 255;
        out.put_u8(if ext {
            self.flags() | flags::EXTENDED_LENGTH
        } else {
            self.flags()
        });
        out.put_u8(self.code());
        let start = out.len() + if ext { 2 } else { 1 };
        if ext {
            out.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
        } else {
            out.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
        }
        match self {
            Emit::Origin(o) => o.encode_value(out),
            Emit::AsPath(p, as4) => p.encode_value(*as4, out),
            Emit::NextHop(a) | Emit::OriginatorId(a) => out.put_slice(&a.octets()),
            Emit::Med(v) | Emit::LocalPref(v) => out.put_u32(*v),
            Emit::AtomicAggregate => {}
            Emit::Aggregator2(_, v) => out.put_slice(v),
            Emit::ClusterList(l) => cluster_list::encode(l, out),
            Emit::ExtCommunities(l) => {
                for c in l.iter() {
                    out.put_slice(&c.0);
                }
            }
            Emit::As4Path(p) => p.as4_path().encode_value(true, out),
            Emit::As4Aggregator(r) => out.put_slice(&r.value),
            Emit::Pmsi(p) => p.encode_value(out),
            Emit::Raw(r) => out.put_slice(&r.value),
        }
        // Never write more than the length field says (a >65535 value is cut).
        out.truncate(start + len);
    }
}
