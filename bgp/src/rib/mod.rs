//! The RIB: Adj-RIB-In per peer, Loc-RIB with best path, Adj-RIB-Out per update group.
//!
//! Plain data, no tokio: `Rib::apply` takes one [`RibInput`] and updates every
//! structure; a changed destination is marked dirty in every update group (so churn
//! coalesces), and [`Rib::flush`] works each group's changes out once, encodes them
//! once and hands the shared bytes to every member's [`PeerSink`]. Tests drive it
//! directly with sinks that buffer.
//!
//! Memory layout, chosen for a million routes and hundreds of peers:
//! - each destination gets a dense [`RouteId`]; a path is (peer, NLRI, [`AttrId`]);
//! - Adj-RIB-In of a peer is its paths in the destinations (a count per peer; peer-down
//!   scans the destinations, as rare as it is cheap next to what it withdraws);
//! - Adj-RIB-Out of an update group (all peers with one export policy) is a `Vec`
//!   indexed by route id of (attribute set, source), 8 bytes per route per group —
//!   not per peer.

mod adj_out;
pub mod attrs;
pub mod best;
mod encode;
mod export;
mod group;
pub mod out;
pub mod task;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use hashbrown::HashTable;
use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;

pub use attrs::{AttrId, AttrTable, RouteAttrs};
pub use best::RejectReason;

use crate::af::AddressFamily;
use crate::peer::{is_local, LocalInfo, PeerId, PeerInfo};
use best::{Candidate, Source};
use group::{GroupKey, UpdateGroup};
pub use out::{Audience, Encoded, EncodedPiece, PeerSink};

/// Dense index of a destination.
pub type RouteId = u32;

/// What the RIB is told.
#[derive(Debug)]
pub enum RibInput<A: AddressFamily> {
    /// A session reached Established; what it must be sent goes to the sink.
    PeerUp(PeerInfo, Box<dyn PeerSink>),
    /// A session left Established: everything the peer gave is withdrawn.
    PeerDown(PeerId),
    /// Routes received (or originated, with `LOCAL_PEER` or `STATIC_PEER`) with these
    /// attributes.
    Update {
        peer: PeerId,
        attrs: RouteAttrs,
        reach: Vec<A::Nlri>,
    },
    /// Routes withdrawn (explicitly or by RFC 7606 treat-as-withdraw).
    Withdraw { peer: PeerId, nlri: Vec<A::Nlri> },
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh(PeerId),
}

/// A change of best path, for whoever programs the forwarding plane.
#[derive(Debug)]
pub struct BestChange<A: AddressFamily> {
    pub key: A::Key,
    /// The new best path, or `None` when the destination is gone.
    pub best: Option<BestPath<A>>,
}

#[derive(Debug)]
pub struct BestPath<A: AddressFamily> {
    pub nlri: A::Nlri,
    pub attrs: Arc<RouteAttrs>,
    pub peer: PeerId,
}

// Derived Clone would demand `A: Clone`; only the fields need it.
impl<A: AddressFamily> Clone for BestPath<A> {
    fn clone(&self) -> Self {
        BestPath {
            nlri: self.nlri.clone(),
            attrs: self.attrs.clone(),
            peer: self.peer,
        }
    }
}

struct Path<A: AddressFamily> {
    peer: PeerId,
    nlri: A::Nlri,
    attrs: AttrId,
}

/// A destination: 88 bytes for EVPN, plus its paths (most have one, allocated
/// exactly).
struct Dest<A: AddressFamily> {
    key: A::Key,
    paths: Vec<Path<A>>,
    best: Option<u32>,
    /// Update groups that have this destination marked dirty. A destination with no
    /// path left stays (its id not reused) until all of them have sent its withdrawal,
    /// and keeps an NLRI to withdraw it with (boxed: 8 bytes while it has paths).
    dirty_in: u32,
    gone: Option<Box<A::Nlri>>,
}

impl<A: AddressFamily> Dest<A> {
    fn best_path(&self) -> Option<&Path<A>> {
        self.paths.get(self.best? as usize)
    }
}

/// One path as `show routes` presents it.
#[derive(Debug)]
pub struct PathSnapshot<A: AddressFamily> {
    pub peer: PeerId,
    /// The peer's address; `None` for a locally originated path.
    pub peer_addr: Option<IpAddr>,
    pub nlri: A::Nlri,
    pub attrs: Arc<RouteAttrs>,
    pub best: bool,
    pub reject: Option<RejectReason>,
}

/// One destination with all its paths, best first.
#[derive(Debug)]
pub struct RouteSnapshot<A: AddressFamily> {
    pub key: A::Key,
    pub paths: Vec<PathSnapshot<A>>,
}

/// Counters for `show` and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RibStats {
    pub destinations: usize,
    pub paths: usize,
    pub attr_sets: usize,
    /// Update groups: peers that share one Adj-RIB-Out and one encoding.
    pub update_groups: usize,
}

pub struct Rib<A: AddressFamily> {
    local: LocalInfo,
    attrs: AttrTable,
    /// Route id by key; the key itself is stored once, in the destination.
    index: HashTable<RouteId>,
    hasher: foldhash::fast::RandomState,
    dests: Vec<Option<Dest<A>>>,
    free: Vec<RouteId>,
    /// Destinations with no path left whose withdrawal some group has yet to send.
    tombstones: usize,
    paths: usize,
    /// Adj-RIB-In sizes: paths per source (the local pseudo-peer included). The paths
    /// themselves are in the destinations; a peer going down is rare enough to scan.
    received: HashMap<PeerId, usize>,
    /// Sources' identities, for best-path selection and export rules.
    sources: HashMap<PeerId, PeerInfo>,
    /// Update groups (a slot is `None` once its last member left).
    groups: Vec<Option<UpdateGroup>>,
    /// The group each established peer is in.
    group_of: HashMap<PeerId, usize>,
    /// The group new peers of a policy join (not one split off for a slow peer).
    open_groups: HashMap<GroupKey, usize>,
    /// Peers past their prefix limit (told once per session).
    over_limit: HashSet<PeerId>,
    /// Collect best-path changes (only a host agent programming a FIB needs them).
    track_best: bool,
    best_changes: Vec<BestChange<A>>,
}

impl<A: AddressFamily> Rib<A> {
    pub fn new(local: LocalInfo) -> Self {
        Rib {
            local,
            attrs: AttrTable::default(),
            index: HashTable::new(),
            hasher: Default::default(),
            dests: Vec::new(),
            free: Vec::new(),
            tombstones: 0,
            paths: 0,
            received: HashMap::new(),
            sources: HashMap::new(),
            groups: Vec::new(),
            group_of: HashMap::new(),
            open_groups: HashMap::new(),
            over_limit: HashSet::new(),
            track_best: false,
            best_changes: Vec::new(),
        }
    }

    /// Makes [`Rib::take_best_changes`] report best-path changes.
    pub fn track_best_changes(&mut self, on: bool) {
        self.track_best = on;
    }

    pub fn local(&self) -> &LocalInfo {
        &self.local
    }

    pub fn apply(&mut self, input: RibInput<A>) {
        match input {
            RibInput::PeerUp(info, sink) => self.peer_up(info, sink),
            RibInput::PeerDown(peer) => self.peer_down(peer),
            RibInput::Update { peer, attrs, reach } => self.update(peer, attrs, reach),
            RibInput::Withdraw { peer, nlri } => {
                for n in nlri {
                    self.withdraw(peer, &n);
                }
            }
            RibInput::RouteRefresh(peer) => self.refresh(peer),
        }
    }

    /// Best-path changes since the last call (empty unless tracking is on).
    pub fn take_best_changes(&mut self) -> Vec<BestChange<A>> {
        std::mem::take(&mut self.best_changes)
    }

    fn peer_up(&mut self, info: PeerInfo, sink: Box<dyn PeerSink>) {
        let id = info.id;
        if is_local(id) {
            return;
        }
        // A peer that comes back without a PeerDown (should not happen) starts clean.
        if self.group_of.contains_key(&id) {
            self.peer_down(id);
        }
        self.sources.insert(id, info.clone());
        self.join(info, sink);
    }

    fn peer_down(&mut self, peer: PeerId) {
        self.leave(peer);
        self.over_limit.remove(&peer);
        self.received.remove(&peer);
        let rids: Vec<RouteId> = (0..self.dests.len() as RouteId)
            .filter(|&r| {
                matches!(self.dests.get(r as usize), Some(Some(d)) if d.paths.iter().any(|p| p.peer == peer))
            })
            .collect();
        for rid in rids {
            if let Some(nlri) = self.remove_path(rid, peer) {
                self.changed(rid, nlri);
            }
        }
        self.sources.remove(&peer);
    }

    fn update(&mut self, peer: PeerId, mut attrs: RouteAttrs, reach: Vec<A::Nlri>) {
        if !is_local(peer) && !self.sources.contains_key(&peer) {
            return; // not established: nothing to attach the paths to
        }
        if let Some(src) = self.sources.get(&peer) {
            if !self.import_ok(src, &mut attrs) {
                // Looped or not ours to take: RFC 4271 §9.1.2 / RFC 4456 §8 say
                // ignore it, which for a path we may already hold means withdraw.
                for n in &reach {
                    self.withdraw(peer, n);
                }
                return;
            }
        }
        if reach.is_empty() {
            return;
        }
        let id = self.attrs.intern(attrs);
        for nlri in reach {
            self.attrs.retain(id);
            let key = A::key(&nlri);
            let rid = self.route_id(key);
            let replaced = self.set_path(rid, peer, nlri.clone(), id);
            if !replaced {
                *self.received.entry(peer).or_default() += 1;
                self.check_limit(peer);
            }
            self.changed(rid, nlri);
        }
        self.attrs.release(id);
    }

    /// RFC 4486: a peer that gives more routes than allowed is told once (its session
    /// closes), or logged once when the limit only warns.
    fn check_limit(&mut self, peer: PeerId) {
        let Some(max) = self.sources.get(&peer).and_then(|s| s.max_prefixes) else {
            return;
        };
        if self.received_count(peer) <= max.limit || !self.over_limit.insert(peer) {
            return;
        }
        if max.warn_only {
            tracing::warn!(
                peer,
                limit = max.limit,
                "peer passed its prefix limit (warning only)"
            );
            return;
        }
        tracing::warn!(
            peer,
            limit = max.limit,
            "peer passed its prefix limit: session closed (RFC 4486)"
        );
        if let Some(m) = self.member_mut(peer) {
            m.sink.over_limit(max.limit);
        }
    }

    /// Import rules; may rewrite what must not be kept.
    fn import_ok(&self, src: &PeerInfo, attrs: &mut RouteAttrs) -> bool {
        let a = &mut attrs.attrs;
        if src.kind.is_ibgp() {
            // RFC 4456 §8: our own ORIGINATOR_ID or CLUSTER_ID means a loop.
            if a.originator_id == Some(self.local.router_id) {
                return false;
            }
            if a.cluster_list
                .as_ref()
                .is_some_and(|l| l.contains(&self.local.cluster_id))
            {
                return false;
            }
        } else {
            // RFC 4271 §9.1.2: our own AS in the path means a loop.
            if a.as_path
                .as_ref()
                .is_some_and(|p| p.contains(self.local.asn))
            {
                return false;
            }
            // RFC 4271 §5.1.5: LOCAL_PREF of an external peer is ignored; RFC 4456's
            // attributes are meaningful inside the AS only.
            a.local_pref = None;
            a.originator_id = None;
            a.cluster_list = None;
        }
        true
    }

    fn withdraw(&mut self, peer: PeerId, nlri: &A::Nlri) {
        let key = A::key(nlri);
        let Some(rid) = self.find(&key) else {
            return;
        };
        if let Some(old) = self.remove_path(rid, peer) {
            if let Some(n) = self.received.get_mut(&peer) {
                *n = n.saturating_sub(1);
            }
            self.changed(rid, old);
        }
    }

    fn refresh(&mut self, peer: PeerId) {
        self.restart_dump(peer);
    }

    fn route_id(&mut self, key: A::Key) -> RouteId {
        if let Some(rid) = self.find(&key) {
            return rid;
        }
        let hash = self.hasher.hash_one(&key);
        let dest = Dest {
            key,
            paths: Vec::new(),
            best: None,
            dirty_in: 0,
            gone: None,
        };
        let reused = self.free.pop();
        let rid = match reused.and_then(|r| self.dests.get_mut(r as usize).map(|s| (r, s))) {
            Some((rid, slot)) => {
                *slot = Some(dest);
                rid
            }
            None => {
                self.dests.push(Some(dest));
                (self.dests.len() - 1) as RouteId
            }
        };
        let (dests, hasher) = (&self.dests, &self.hasher);
        self.index
            .insert_unique(hash, rid, |&r| match dests.get(r as usize) {
                Some(Some(d)) => hasher.hash_one(&d.key),
                _ => 0,
            });
        rid
    }

    fn find(&self, key: &A::Key) -> Option<RouteId> {
        let hash = self.hasher.hash_one(key);
        let dests = &self.dests;
        self.index
            .find(
                hash,
                |&r| matches!(dests.get(r as usize), Some(Some(d)) if d.key == *key),
            )
            .copied()
    }

    /// Adds or replaces the path of `peer`; true if it replaced one.
    fn set_path(&mut self, rid: RouteId, peer: PeerId, nlri: A::Nlri, attrs: AttrId) -> bool {
        let Some(Some(dest)) = self.dests.get_mut(rid as usize) else {
            return false;
        };
        if let Some(p) = dest.paths.iter_mut().find(|p| p.peer == peer) {
            let old = std::mem::replace(&mut p.attrs, attrs);
            p.nlri = nlri;
            self.attrs.release(old);
            true
        } else {
            // Most destinations have one path: no room for more until needed.
            dest.paths.reserve_exact(1);
            dest.paths.push(Path { peer, nlri, attrs });
            self.paths += 1;
            false
        }
    }

    /// Removes the path of `peer`, returning its NLRI.
    fn remove_path(&mut self, rid: RouteId, peer: PeerId) -> Option<A::Nlri> {
        let dest = self.dests.get_mut(rid as usize)?.as_mut()?;
        let pos = dest.paths.iter().position(|p| p.peer == peer)?;
        let path = dest.paths.swap_remove(pos);
        dest.best = None; // indices moved; recomputed by `changed`
        self.paths -= 1;
        self.attrs.release(path.attrs);
        Some(path.nlri)
    }

    fn candidate<'a>(&'a self, p: &'a Path<A>) -> (Candidate<'a>, &'a Arc<RouteAttrs>) {
        let ra = self.attrs.get(p.attrs);
        let source = if is_local(p.peer) {
            None
        } else {
            self.sources.get(&p.peer).map(|s| Source {
                kind: s.kind,
                asn: s.asn,
                bgp_id: s.bgp_id,
                addr: s.addr,
            })
        };
        let c = Candidate {
            attrs: &ra.attrs,
            preference: A::preference(&p.nlri, &ra.attrs),
            source,
        };
        (c, ra)
    }

    fn select_best(&self, dest: &Dest<A>) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, p) in dest.paths.iter().enumerate() {
            best = match best {
                None => Some(i),
                Some(b) => {
                    let (cand, _) = self.candidate(p);
                    let Some(cur) = dest.paths.get(b) else {
                        return Some(i);
                    };
                    let (cur, _) = self.candidate(cur);
                    if best::compare(&cand, &cur).0 == Ordering::Greater {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        best
    }

    /// Recomputes the best path of `rid` and tells every peer what changed.
    /// `fallback` is an NLRI of the destination for withdrawals when no path is left.
    fn changed(&mut self, rid: RouteId, fallback: A::Nlri) {
        let Some(Some(dest)) = self.dests.get(rid as usize) else {
            return;
        };
        let best = self.select_best(dest);
        if let Some(Some(dest)) = self.dests.get_mut(rid as usize) {
            dest.best = best.map(|b| b as u32);
        }
        let best_path = self.best_of(rid);
        if self.track_best {
            if let Some(Some(dest)) = self.dests.get(rid as usize) {
                self.best_changes.push(BestChange {
                    key: dest.key.clone(),
                    best: best_path.clone(),
                });
            }
        }
        let mut marked = 0;
        for g in self.groups.iter_mut().flatten() {
            if g.mark(rid) {
                marked += 1;
            }
        }
        if let Some(Some(dest)) = self.dests.get_mut(rid as usize) {
            dest.dirty_in += marked;
            let now_gone = dest.paths.is_empty();
            match (dest.gone.is_some(), now_gone) {
                (false, true) => self.tombstones += 1,
                (true, false) => self.tombstones -= 1,
                _ => {}
            }
            dest.gone = now_gone.then(|| Box::new(fallback));
        }
        self.free_if_gone(rid);
    }

    /// Forgets a destination with no path left that no group still has to withdraw.
    fn free_if_gone(&mut self, rid: RouteId) {
        let Some(slot) = self.dests.get_mut(rid as usize) else {
            return;
        };
        if slot
            .as_ref()
            .is_some_and(|d| d.paths.is_empty() && d.dirty_in == 0)
        {
            if let Some(dest) = slot.take() {
                if dest.gone.is_some() {
                    self.tombstones -= 1;
                }
                let hash = self.hasher.hash_one(&dest.key);
                if let Ok(entry) = self.index.find_entry(hash, |&r| r == rid) {
                    entry.remove();
                }
                self.free.push(rid);
            }
        }
    }

    fn best_of(&self, rid: RouteId) -> Option<BestPath<A>> {
        let dest = self.dests.get(rid as usize)?.as_ref()?;
        let p = dest.best_path()?;
        Some(BestPath {
            nlri: p.nlri.clone(),
            attrs: self.attrs.get(p.attrs).clone(),
            peer: p.peer,
        })
    }

    /// All destinations that pass `filter`, each with its paths (best first) and the
    /// reason every other path lost.
    pub fn routes(&self, filter: &dyn Fn(&A::Nlri, &RouteAttrs) -> bool) -> Vec<RouteSnapshot<A>> {
        let mut v = Vec::new();
        for dest in self.dests.iter().flatten() {
            let Some(best) = dest.best_path() else {
                continue;
            };
            if !filter(&best.nlri, self.attrs.get(best.attrs)) {
                continue;
            }
            let (best_c, _) = self.candidate(best);
            let mut paths = Vec::with_capacity(dest.paths.len());
            for p in &dest.paths {
                let is_best = std::ptr::eq(p, best);
                let (c, ra) = self.candidate(p);
                let reject = (!is_best).then(|| best::compare(&c, &best_c).1);
                paths.push(PathSnapshot {
                    peer: p.peer,
                    peer_addr: self.sources.get(&p.peer).map(|s| s.addr),
                    nlri: p.nlri.clone(),
                    attrs: ra.clone(),
                    best: is_best,
                    reject,
                });
            }
            paths.sort_by_key(|p| !p.best);
            v.push(RouteSnapshot {
                key: dest.key.clone(),
                paths,
            });
        }
        v.sort_by(|a: &RouteSnapshot<A>, b: &RouteSnapshot<A>| a.key.cmp(&b.key));
        v
    }

    /// Routes received from `peer` (its Adj-RIB-In size).
    pub fn received_count(&self, peer: PeerId) -> usize {
        self.received.get(&peer).copied().unwrap_or(0)
    }

    /// Routes currently advertised to `peer` (its Adj-RIB-Out size).
    pub fn advertised_count(&self, peer: PeerId) -> usize {
        self.group(peer).map_or(0, |g| g.advertised_to(peer))
    }

    /// The established peers.
    pub fn peers(&self) -> Vec<PeerId> {
        self.group_of.keys().copied().collect()
    }

    fn group(&self, peer: PeerId) -> Option<&UpdateGroup> {
        let &gi = self.group_of.get(&peer)?;
        self.groups.get(gi)?.as_ref()
    }

    fn member_mut(&mut self, peer: PeerId) -> Option<&mut group::Member> {
        let &gi = self.group_of.get(&peer)?;
        self.groups
            .get_mut(gi)?
            .as_mut()?
            .members
            .iter_mut()
            .find(|m| m.id == peer)
    }

    pub fn stats(&self) -> RibStats {
        RibStats {
            destinations: self.index.len() - self.tombstones,
            paths: self.paths,
            attr_sets: self.attrs.len(),
            update_groups: self.groups.iter().flatten().count(),
        }
    }
}

impl AttrId {
    fn to_slot(self) -> u32 {
        self.index() + 1
    }
    fn from_slot(slot: u32) -> AttrId {
        AttrId::from_index(slot - 1)
    }
}

#[cfg(test)]
mod tests;
