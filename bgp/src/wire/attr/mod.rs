//! Path attributes (RFC 4271 §4.3, §5) and the RFC 7606 treatment of each.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

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
