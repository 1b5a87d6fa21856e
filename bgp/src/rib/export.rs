//! What a peer may be sent, and with which attributes (RFC 4271 §9.2, RFC 4456 §8).

use crate::peer::{LocalInfo, PeerId, PeerInfo, PeerKind};
use crate::rib::attrs::RouteAttrs;
use crate::rib::best::DEFAULT_LOCAL_PREF;
use crate::wire::{AsPath, AsSegment, SegmentKind};

/// The attributes `to` must be sent for a best path learned from `src` (None when
/// locally originated), or `None` if the route must not be sent to it.
///
/// Next hops are never rewritten: an EVPN next hop is the VTEP that owns the MAC,
/// and a reflector or an eBGP neighbour in the middle is not on the data path.
pub fn export(
    local: &LocalInfo,
    src: Option<&PeerInfo>,
    src_id: PeerId,
    to: &PeerInfo,
    best: &RouteAttrs,
) -> Option<RouteAttrs> {
    if src_id == to.id {
        return None; // never back to where it came from
    }
    let reflect = match (src.map(|s| s.kind), to.kind) {
        (None, _) | (Some(PeerKind::Ebgp), _) | (Some(_), PeerKind::Ebgp) => false,
        // RFC 4456 §8: from a non-client, reflect to clients only.
        (Some(PeerKind::Ibgp), PeerKind::IbgpClient) => true,
        (Some(PeerKind::Ibgp), PeerKind::Ibgp) => return None,
        // From a client, reflect to clients and non-clients.
        (Some(PeerKind::IbgpClient), _) => true,
    };
    let mut out = best.clone();
    let a = &mut out.attrs;
    if to.kind == PeerKind::Ebgp {
        let path = a.as_path.take().unwrap_or_default();
        // Sender-side loop prevention: the peer would drop it anyway.
        if path.contains(to.asn) {
            return None;
        }
        a.as_path = Some(prepend(&path, local.asn));
        a.local_pref = None;
        a.originator_id = None;
        a.cluster_list = None;
        // RFC 4271 §5.1.4: a MED learned from a neighbouring AS is not passed on.
        if src.is_some_and(|s| s.kind == PeerKind::Ebgp) {
            a.med = None;
        }
    } else {
        if a.as_path.is_none() {
            a.as_path = Some(AsPath::default());
        }
        a.local_pref = Some(a.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
        if reflect {
            // RFC 4456 §8: ORIGINATOR_ID names the route's injector into the AS and is
            // set once; our CLUSTER_ID goes in front of the CLUSTER_LIST.
            if a.originator_id.is_none() {
                a.originator_id = src.map(|s| s.bgp_id);
            }
            let mut list = vec![local.cluster_id];
            list.extend(a.cluster_list.take().unwrap_or_default());
            a.cluster_list = Some(list);
        }
    }
    Some(out)
}

fn prepend(path: &AsPath, asn: u32) -> AsPath {
    let mut segments = path.segments.clone();
    match segments.first_mut() {
        Some(seg) if seg.kind == SegmentKind::Sequence && seg.asns.len() < 255 => {
            seg.asns.insert(0, asn);
        }
        _ => segments.insert(
            0,
            AsSegment {
                kind: SegmentKind::Sequence,
                asns: vec![asn],
            },
        ),
    }
    AsPath { segments }
}
