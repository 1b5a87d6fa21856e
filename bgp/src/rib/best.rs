//! Best-path selection (RFC 4271 §9.1.2.2 with the RFC 4456 §9 tie-breaks), and why a
//! path lost.
//!
//! The order, first difference wins:
//! 1. family preference, higher (EVPN: MAC-mobility sequence, RFC 7432 §15.2);
//! 2. LOCAL_PREF, higher (absent = 100);
//! 3. locally originated over learned;
//! 4. AS_PATH, shorter;
//! 5. ORIGIN, lower;
//! 6. MED, lower, only between paths from the same neighbouring AS;
//! 7. eBGP-learned over iBGP-learned;
//! 8. BGP identifier, lower — the ORIGINATOR_ID where present (RFC 4456 §9);
//! 9. CLUSTER_LIST, shorter (RFC 4456 §9);
//! 10. peer address, lower.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use crate::peer::PeerKind;
use crate::wire::{Origin, PathAttrs};

/// LOCAL_PREF assumed when absent (the common default; RFC 4271 leaves it local).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Why a path is not the best one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectReason {
    LowerMobilitySeq,
    LocalPrefLower,
    NotLocal,
    AsPathLonger,
    OriginWorse,
    MedHigher,
    IbgpVsEbgp,
    HigherRouterId,
    ClusterListLonger,
    HigherPeerAddress,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::LowerMobilitySeq => "lower MAC-mobility sequence",
            RejectReason::LocalPrefLower => "lower LOCAL_PREF",
            RejectReason::NotLocal => "locally originated path preferred",
            RejectReason::AsPathLonger => "longer AS_PATH",
            RejectReason::OriginWorse => "worse ORIGIN",
            RejectReason::MedHigher => "higher MED",
            RejectReason::IbgpVsEbgp => "eBGP path preferred",
            RejectReason::HigherRouterId => "higher router id",
            RejectReason::ClusterListLonger => "longer CLUSTER_LIST",
            RejectReason::HigherPeerAddress => "higher peer address",
        }
    }
}

/// What the decision process looks at for one path.
pub struct Candidate<'a> {
    pub attrs: &'a PathAttrs,
    /// Family preference (higher wins).
    pub preference: u32,
    /// `None` for a locally originated path.
    pub source: Option<Source>,
}

/// The peer a path was learned from.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub kind: PeerKind,
    pub asn: u32,
    pub bgp_id: Ipv4Addr,
    pub addr: IpAddr,
}

fn origin_rank(o: Option<Origin>) -> u8 {
    match o {
        Some(Origin::Igp) => 0,
        Some(Origin::Egp) => 1,
        Some(Origin::Incomplete) | None => 2,
    }
}

fn neighbour_as(c: &Candidate<'_>) -> Option<u32> {
    c.attrs.as_path.as_ref().and_then(|p| p.first_asn())
}

/// Compares two paths: `Ordering::Greater` means `a` is better. When `b` wins, the
/// reason names the step `a` lost at (and vice versa).
pub fn compare(a: &Candidate<'_>, b: &Candidate<'_>) -> (Ordering, RejectReason) {
    use RejectReason::*;
    let steps: [(Ordering, RejectReason); 10] = [
        (a.preference.cmp(&b.preference), LowerMobilitySeq),
        (
            a.attrs
                .local_pref
                .unwrap_or(DEFAULT_LOCAL_PREF)
                .cmp(&b.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)),
            LocalPrefLower,
        ),
        (a.source.is_none().cmp(&b.source.is_none()), NotLocal),
        (as_path_len(b).cmp(&as_path_len(a)), AsPathLonger),
        (
            origin_rank(b.attrs.origin).cmp(&origin_rank(a.attrs.origin)),
            OriginWorse,
        ),
        (
            if neighbour_as(a) == neighbour_as(b) {
                b.attrs.med.unwrap_or(0).cmp(&a.attrs.med.unwrap_or(0))
            } else {
                Ordering::Equal
            },
            MedHigher,
        ),
        (is_ebgp(a).cmp(&is_ebgp(b)), IbgpVsEbgp),
        (router_id(b).cmp(&router_id(a)), HigherRouterId),
        (cluster_len(b).cmp(&cluster_len(a)), ClusterListLonger),
        (peer_addr(b).cmp(&peer_addr(a)), HigherPeerAddress),
    ];
    for (ord, why) in steps {
        if ord != Ordering::Equal {
            return (ord, why);
        }
    }
    (Ordering::Equal, HigherPeerAddress)
}

fn as_path_len(c: &Candidate<'_>) -> usize {
    c.attrs.as_path.as_ref().map_or(0, |p| p.len())
}

fn is_ebgp(c: &Candidate<'_>) -> bool {
    matches!(
        c.source,
        Some(Source {
            kind: PeerKind::Ebgp,
            ..
        })
    )
}

fn router_id(c: &Candidate<'_>) -> u32 {
    match (c.attrs.originator_id, c.source) {
        (Some(id), _) => u32::from(id),
        (None, Some(s)) => u32::from(s.bgp_id),
        (None, None) => 0,
    }
}

fn cluster_len(c: &Candidate<'_>) -> usize {
    c.attrs.cluster_list.as_ref().map_or(0, Vec::len)
}

fn peer_addr(c: &Candidate<'_>) -> IpAddr {
    c.source
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |s| s.addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AsPath, AsSegment, SegmentKind};

    fn src(kind: PeerKind, id: u8) -> Option<Source> {
        Some(Source {
            kind,
            asn: 65001,
            bgp_id: Ipv4Addr::new(198, 19, 0, id),
            addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, id)),
        })
    }

    fn path(asns: &[u32]) -> Option<AsPath> {
        Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns: asns.to_vec(),
            }],
        })
    }

    #[test]
    fn rfc7432_15_2_higher_mobility_sequence_wins_over_local_pref() {
        let hi_lp = PathAttrs {
            local_pref: Some(500),
            ..Default::default()
        };
        let lo_lp = PathAttrs {
            local_pref: Some(50),
            ..Default::default()
        };
        let a = Candidate {
            attrs: &lo_lp,
            preference: 3,
            source: src(PeerKind::Ibgp, 1),
        };
        let b = Candidate {
            attrs: &hi_lp,
            preference: 2,
            source: src(PeerKind::Ibgp, 2),
        };
        assert_eq!(
            compare(&a, &b),
            (Ordering::Greater, RejectReason::LowerMobilitySeq)
        );
    }

    #[test]
    fn rfc4271_9_1_2_2_shorter_as_path_then_origin() {
        let short = PathAttrs {
            as_path: path(&[1]),
            ..Default::default()
        };
        let long = PathAttrs {
            as_path: path(&[1, 2]),
            ..Default::default()
        };
        let a = Candidate {
            attrs: &long,
            preference: 0,
            source: src(PeerKind::Ebgp, 1),
        };
        let b = Candidate {
            attrs: &short,
            preference: 0,
            source: src(PeerKind::Ebgp, 2),
        };
        assert_eq!(
            compare(&a, &b),
            (Ordering::Less, RejectReason::AsPathLonger)
        );
        let igp = PathAttrs {
            origin: Some(Origin::Igp),
            ..Default::default()
        };
        let inc = PathAttrs {
            origin: Some(Origin::Incomplete),
            ..Default::default()
        };
        let a = Candidate {
            attrs: &igp,
            preference: 0,
            source: src(PeerKind::Ibgp, 9),
        };
        let b = Candidate {
            attrs: &inc,
            preference: 0,
            source: src(PeerKind::Ibgp, 1),
        };
        assert_eq!(compare(&a, &b).0, Ordering::Greater);
        assert_eq!(compare(&b, &a).1, RejectReason::OriginWorse);
    }

    #[test]
    fn rfc4456_9_originator_id_replaces_router_id_then_cluster_list_length() {
        let from_low = PathAttrs {
            originator_id: Some(Ipv4Addr::new(198, 19, 0, 1)),
            cluster_list: Some(vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)]),
            ..Default::default()
        };
        let from_high = PathAttrs {
            originator_id: Some(Ipv4Addr::new(198, 19, 0, 9)),
            cluster_list: Some(vec![]),
            ..Default::default()
        };
        // The advertising peers' ids point the other way; ORIGINATOR_ID decides.
        let a = Candidate {
            attrs: &from_low,
            preference: 0,
            source: src(PeerKind::Ibgp, 200),
        };
        let b = Candidate {
            attrs: &from_high,
            preference: 0,
            source: src(PeerKind::Ibgp, 2),
        };
        assert_eq!(
            compare(&a, &b),
            (Ordering::Greater, RejectReason::HigherRouterId)
        );
        let same_id = PathAttrs {
            cluster_list: Some(vec![]),
            ..from_low.clone()
        };
        let a = Candidate {
            attrs: &from_low,
            preference: 0,
            source: src(PeerKind::Ibgp, 1),
        };
        let b = Candidate {
            attrs: &same_id,
            preference: 0,
            source: src(PeerKind::Ibgp, 1),
        };
        assert_eq!(
            compare(&a, &b),
            (Ordering::Less, RejectReason::ClusterListLonger)
        );
    }

    #[test]
    fn local_beats_learned_and_ebgp_beats_ibgp() {
        let attrs = PathAttrs::default();
        let local = Candidate {
            attrs: &attrs,
            preference: 0,
            source: None,
        };
        let ibgp = Candidate {
            attrs: &attrs,
            preference: 0,
            source: src(PeerKind::Ibgp, 1),
        };
        let ebgp = Candidate {
            attrs: &attrs,
            preference: 0,
            source: src(PeerKind::Ebgp, 2),
        };
        assert_eq!(compare(&local, &ibgp).0, Ordering::Greater);
        assert_eq!(
            compare(&ibgp, &ebgp),
            (Ordering::Less, RejectReason::IbgpVsEbgp)
        );
    }

    #[test]
    fn med_compared_only_within_the_same_neighbour_as() {
        let a1 = PathAttrs {
            as_path: path(&[7]),
            med: Some(10),
            ..Default::default()
        };
        let a2 = PathAttrs {
            as_path: path(&[7]),
            med: Some(5),
            ..Default::default()
        };
        let b = PathAttrs {
            as_path: path(&[8]),
            med: Some(1),
            ..Default::default()
        };
        let c1 = Candidate {
            attrs: &a1,
            preference: 0,
            source: src(PeerKind::Ebgp, 1),
        };
        let c2 = Candidate {
            attrs: &a2,
            preference: 0,
            source: src(PeerKind::Ebgp, 2),
        };
        let c3 = Candidate {
            attrs: &b,
            preference: 0,
            source: src(PeerKind::Ebgp, 3),
        };
        assert_eq!(compare(&c1, &c2), (Ordering::Less, RejectReason::MedHigher));
        // Different neighbour AS: MED is skipped, router id decides (1 < 3).
        assert_eq!(
            compare(&c1, &c3),
            (Ordering::Greater, RejectReason::HigherRouterId)
        );
    }
}
