//! Update groups: peers with the same export policy share one Adj-RIB-Out.
//!
//! Every RR client (or every plain iBGP peer, or every eBGP peer of one AS) gets the
//! same attributes for a route, except that a route is never sent back to the peer it
//! came from. So a group keeps, per route id, what its members were last sent as
//! (attribute set, source peer): a member holds the route unless it is the source.
//! Changes are computed once per group and encoded once; memory grows with routes ×
//! groups, not routes × peers.

use foldhash::{HashMap, HashMapExt};

use crate::peer::{PeerId, PeerInfo, PeerKind};

use super::out::PeerSink;
use super::RouteId;

/// What decides the attributes a peer is sent, and their encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct GroupKey {
    pub kind: PeerKind,
    /// The peer's AS for eBGP (export loop check and prepend); 0 for iBGP.
    pub asn: u32,
    /// Four-octet AS numbers negotiated (RFC 6793): AS_PATH encoding.
    pub as4: bool,
}

impl GroupKey {
    pub fn of(info: &PeerInfo) -> GroupKey {
        GroupKey {
            kind: info.kind,
            asn: if info.kind == PeerKind::Ebgp {
                info.asn
            } else {
                0
            },
            as4: info.as4,
        }
    }
}

/// What the group's members were last sent for one route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Sent {
    /// Attribute set id + 1; 0 = not advertised.
    pub slot: u32,
    /// The peer the route came from (it is not sent the route).
    pub src: PeerId,
}

/// A peer in a group.
#[derive(Debug)]
pub(super) struct Member {
    pub id: PeerId,
    pub sink: Box<dyn PeerSink>,
    /// The next route id of the full table (initial or route refresh) still to be
    /// sent to this peer alone, End-of-RIB after it; `None` once sent.
    pub dump: Option<RouteId>,
    /// Since when this peer's full queue has kept the others waiting.
    pub holding_up_since: Option<std::time::Instant>,
}

pub(super) struct UpdateGroup {
    pub key: GroupKey,
    /// Stands for every member in export decisions (an id no peer has, so the
    /// split-horizon check of `export` never fires; the group applies it per source).
    pub template: PeerInfo,
    pub members: Vec<Member>,
    /// Adj-RIB-Out, indexed by route id.
    pub sent: Vec<Sent>,
    /// Route ids whose best path changed since the last flush, each once.
    pub dirty: Vec<RouteId>,
    dirty_bits: Vec<u64>,
    /// Routes advertised (slot != 0), and how many of those each source gave.
    pub advertised: usize,
    pub by_src: HashMap<PeerId, usize>,
}

impl UpdateGroup {
    pub fn new(key: GroupKey, info: &PeerInfo) -> UpdateGroup {
        let mut template = info.clone();
        template.id = PeerId::MAX;
        UpdateGroup {
            key,
            template,
            members: Vec::new(),
            sent: Vec::new(),
            dirty: Vec::new(),
            dirty_bits: Vec::new(),
            advertised: 0,
            by_src: HashMap::new(),
        }
    }

    /// A group for `member` alone (split off because it fell behind: it coalesces at
    /// its own pace, and new peers do not join it) that starts where this one is: same Adj-RIB-Out,
    /// same changes pending. The caller takes the references the copy holds.
    pub fn split_off(&mut self, member: PeerId) -> Option<UpdateGroup> {
        let pos = self.members.iter().position(|m| m.id == member)?;
        let mut m = self.members.swap_remove(pos);
        m.holding_up_since = None;
        Some(UpdateGroup {
            key: self.key,
            template: self.template.clone(),
            members: vec![m],
            sent: self.sent.clone(),
            dirty: self.dirty.clone(),
            dirty_bits: self.dirty_bits.clone(),
            advertised: self.advertised,
            by_src: self.by_src.clone(),
        })
    }

    pub fn has_member(&self, peer: PeerId) -> bool {
        self.members.iter().any(|m| m.id == peer)
    }

    #[cfg(test)]
    pub fn is_dirty(&self, rid: RouteId) -> bool {
        let (w, b) = (rid as usize / 64, rid % 64);
        self.dirty_bits.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    /// Marks `rid` for the next flush; false if it already was.
    pub fn mark(&mut self, rid: RouteId) -> bool {
        let (w, b) = (rid as usize / 64, rid % 64);
        if self.dirty_bits.len() <= w {
            self.dirty_bits.resize(w + 1, 0);
        }
        let Some(word) = self.dirty_bits.get_mut(w) else {
            return false;
        };
        if *word & (1 << b) != 0 {
            return false;
        }
        *word |= 1 << b;
        self.dirty.push(rid);
        true
    }

    pub fn unmark(&mut self, rid: RouteId) {
        if let Some(word) = self.dirty_bits.get_mut(rid as usize / 64) {
            *word &= !(1 << (rid % 64));
        }
    }

    pub fn sent(&self, rid: RouteId) -> Sent {
        self.sent.get(rid as usize).copied().unwrap_or_default()
    }

    /// Records what was sent for `rid`; returns the previous record.
    pub fn set_sent(&mut self, rid: RouteId, new: Sent) -> Sent {
        let i = rid as usize;
        if self.sent.len() <= i {
            self.sent.resize(i + 1, Sent::default());
        }
        let Some(entry) = self.sent.get_mut(i) else {
            return Sent::default();
        };
        let old = std::mem::replace(entry, new);
        if old.slot != 0 {
            self.advertised -= 1;
            if let Some(n) = self.by_src.get_mut(&old.src) {
                *n -= 1;
                if *n == 0 {
                    self.by_src.remove(&old.src);
                }
            }
        }
        if new.slot != 0 {
            self.advertised += 1;
            *self.by_src.entry(new.src).or_default() += 1;
        }
        old
    }

    /// Routes `peer` holds from this group.
    pub fn advertised_to(&self, peer: PeerId) -> usize {
        self.advertised - self.by_src.get(&peer).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn info() -> PeerInfo {
        PeerInfo {
            id: 7,
            addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 7)),
            asn: 65000,
            bgp_id: Ipv4Addr::new(198, 19, 0, 7),
            kind: PeerKind::IbgpClient,
            as4: true,
            max_prefixes: None,
        }
    }

    #[test]
    fn marks_once_and_counts_per_source() {
        let mut g = UpdateGroup::new(GroupKey::of(&info()), &info());
        assert_eq!(g.template.id, PeerId::MAX);
        assert!(g.mark(130));
        assert!(!g.mark(130));
        assert!(g.is_dirty(130));
        assert!(!g.is_dirty(129));
        g.unmark(130);
        assert!(!g.is_dirty(130));
        g.set_sent(3, Sent { slot: 1, src: 1 });
        g.set_sent(4, Sent { slot: 1, src: 2 });
        assert_eq!(g.advertised_to(1), 1);
        assert_eq!(g.advertised_to(9), 2);
        let old = g.set_sent(3, Sent::default());
        assert_eq!(old, Sent { slot: 1, src: 1 });
        assert_eq!(g.advertised, 1);
        assert!(!g.by_src.contains_key(&1));
    }
}
