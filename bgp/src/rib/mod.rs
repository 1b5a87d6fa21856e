//! The RIB: Adj-RIB-In per peer, Loc-RIB with best path, Adj-RIB-Out per peer.
//!
//! Plain data, no tokio: `Rib::apply` takes one [`RibInput`] and updates every
//! structure; what each peer must be sent accumulates in a per-peer pending map keyed
//! by route (so churn coalesces) and is taken out in batches grouped by attribute set
//! with [`Rib::take_out`]. Tests drive it directly.
//!
//! Memory layout, chosen for a million routes and hundreds of peers:
//! - each destination gets a dense [`RouteId`]; a path is (peer, NLRI, [`AttrId`]);
//! - Adj-RIB-In of a peer is the set of route ids it gave us (exact peer-down);
//! - Adj-RIB-Out of a peer is a `Vec<u32>` indexed by route id holding the id of the
//!   attribute set last advertised (0 = nothing), 4 bytes per route per peer.

pub mod attrs;
pub mod best;
mod export;
pub mod task;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::Arc;

pub use attrs::{AttrId, AttrTable, RouteAttrs};
pub use best::RejectReason;

use crate::af::AddressFamily;
use crate::peer::{LocalInfo, PeerId, PeerInfo, LOCAL_PEER};
use best::{Candidate, Source};

/// Dense index of a destination.
pub type RouteId = u32;

/// What the RIB is told.
#[derive(Debug)]
pub enum RibInput<A: AddressFamily> {
    /// A session reached Established (or the local pseudo-peer registers).
    PeerUp(PeerInfo),
    /// A session left Established: everything the peer gave is withdrawn.
    PeerDown(PeerId),
    /// Routes received (or originated, with `LOCAL_PEER`) with these attributes.
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

/// What one peer must be sent next, grouped by attribute set.
#[derive(Debug)]
pub struct OutBatch<A: AddressFamily> {
    pub advertise: Vec<(Arc<RouteAttrs>, Vec<A::Nlri>)>,
    pub withdraw: Vec<A::Nlri>,
    /// Send End-of-RIB (RFC 4724 §2) after this batch: the initial table is sent.
    pub end_of_rib: bool,
}

impl<A: AddressFamily> OutBatch<A> {
    pub fn route_count(&self) -> usize {
        self.advertise.iter().map(|(_, n)| n.len()).sum::<usize>() + self.withdraw.len()
    }
}

struct Path<A: AddressFamily> {
    peer: PeerId,
    nlri: A::Nlri,
    attrs: AttrId,
}

struct Dest<A: AddressFamily> {
    key: A::Key,
    paths: Vec<Path<A>>,
    best: Option<usize>,
}

enum Pending<A: AddressFamily> {
    Advertise { nlri: A::Nlri, attrs: AttrId },
    Withdraw { nlri: A::Nlri },
}

/// Per established peer: what we told it and what we still have to tell it.
struct PeerOut<A: AddressFamily> {
    info: PeerInfo,
    /// Adj-RIB-Out: attribute set id + 1 per route id, 0 = not advertised.
    adj_out: Vec<u32>,
    advertised: usize,
    pending: HashMap<A::Key, Pending<A>>,
    eor_pending: bool,
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
}

pub struct Rib<A: AddressFamily> {
    local: LocalInfo,
    attrs: AttrTable,
    index: HashMap<A::Key, RouteId>,
    dests: Vec<Option<Dest<A>>>,
    free: Vec<RouteId>,
    paths: usize,
    /// Adj-RIB-In: route ids per source (the local pseudo-peer included).
    adj_in: HashMap<PeerId, HashSet<RouteId>>,
    /// Sources' identities, for best-path selection and export rules.
    sources: HashMap<PeerId, PeerInfo>,
    out: HashMap<PeerId, PeerOut<A>>,
    /// Collect best-path changes (only a host agent programming a FIB needs them).
    track_best: bool,
    best_changes: Vec<BestChange<A>>,
    peer_scratch: Vec<PeerId>,
}

impl<A: AddressFamily> Rib<A> {
    pub fn new(local: LocalInfo) -> Self {
        Rib {
            local,
            attrs: AttrTable::default(),
            index: HashMap::new(),
            dests: Vec::new(),
            free: Vec::new(),
            paths: 0,
            adj_in: HashMap::new(),
            sources: HashMap::new(),
            out: HashMap::new(),
            track_best: false,
            best_changes: Vec::new(),
            peer_scratch: Vec::new(),
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
            RibInput::PeerUp(info) => self.peer_up(info),
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

    fn peer_up(&mut self, info: PeerInfo) {
        let id = info.id;
        if id == LOCAL_PEER {
            return;
        }
        // A peer that comes back without a PeerDown (should not happen) starts clean.
        if self.out.contains_key(&id) {
            self.peer_down(id);
        }
        self.sources.insert(id, info.clone());
        self.out.insert(
            id,
            PeerOut {
                info,
                adj_out: Vec::new(),
                advertised: 0,
                pending: HashMap::new(),
                eor_pending: true,
            },
        );
        self.export_all_to(id, false);
    }

    fn peer_down(&mut self, peer: PeerId) {
        if let Some(out) = self.out.remove(&peer) {
            for slot in out.adj_out {
                if slot != 0 {
                    self.attrs.release(AttrId::from_slot(slot));
                }
            }
            for p in out.pending.into_values() {
                if let Pending::Advertise { attrs, .. } = p {
                    self.attrs.release(attrs);
                }
            }
        }
        let rids = self.adj_in.remove(&peer).unwrap_or_default();
        for rid in rids {
            if let Some(nlri) = self.remove_path(rid, peer) {
                self.changed(rid, nlri);
            }
        }
        self.sources.remove(&peer);
    }

    fn update(&mut self, peer: PeerId, mut attrs: RouteAttrs, reach: Vec<A::Nlri>) {
        if peer != LOCAL_PEER && !self.sources.contains_key(&peer) {
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
                self.adj_in.entry(peer).or_default().insert(rid);
            }
            self.changed(rid, nlri);
        }
        self.attrs.release(id);
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
        let Some(&rid) = self.index.get(&key) else {
            return;
        };
        if let Some(old) = self.remove_path(rid, peer) {
            if let Some(set) = self.adj_in.get_mut(&peer) {
                set.remove(&rid);
            }
            self.changed(rid, old);
        }
    }

    fn refresh(&mut self, peer: PeerId) {
        if self.out.contains_key(&peer) {
            self.export_all_to(peer, true);
        }
    }

    fn route_id(&mut self, key: A::Key) -> RouteId {
        if let Some(&rid) = self.index.get(&key) {
            return rid;
        }
        let dest = Dest {
            key: key.clone(),
            paths: Vec::new(),
            best: None,
        };
        let rid = match self.free.pop() {
            Some(rid) => {
                self.dests[rid as usize] = Some(dest);
                rid
            }
            None => {
                self.dests.push(Some(dest));
                (self.dests.len() - 1) as RouteId
            }
        };
        self.index.insert(key, rid);
        rid
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
        let source = if p.peer == LOCAL_PEER {
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
                    let (cur, _) = self.candidate(&dest.paths[b]);
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
            dest.best = best;
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
        // A scratch list reused across calls: this runs once per route change.
        let mut peers = std::mem::take(&mut self.peer_scratch);
        peers.clear();
        peers.extend(self.out.keys().copied());
        for &peer in &peers {
            self.export_route(peer, rid, best_path.as_ref(), &fallback, false);
        }
        self.peer_scratch = peers;
        // A destination with no path left is gone once every peer has been told.
        let empty = matches!(self.dests.get(rid as usize), Some(Some(d)) if d.paths.is_empty());
        if empty {
            if let Some(slot) = self.dests.get_mut(rid as usize) {
                if let Some(dest) = slot.take() {
                    self.index.remove(&dest.key);
                    self.free.push(rid);
                }
            }
        }
    }

    fn best_of(&self, rid: RouteId) -> Option<BestPath<A>> {
        let dest = self.dests.get(rid as usize)?.as_ref()?;
        let p = dest.paths.get(dest.best?)?;
        Some(BestPath {
            nlri: p.nlri.clone(),
            attrs: self.attrs.get(p.attrs).clone(),
            peer: p.peer,
        })
    }

    fn export_all_to(&mut self, peer: PeerId, force: bool) {
        let rids: Vec<RouteId> = (0..self.dests.len() as RouteId)
            .filter(|&r| matches!(self.dests.get(r as usize), Some(Some(_))))
            .collect();
        for rid in rids {
            if let Some(best) = self.best_of(rid) {
                let fallback = best.nlri.clone();
                self.export_route(peer, rid, Some(&best), &fallback, force);
            }
        }
        if let Some(out) = self.out.get_mut(&peer) {
            out.eor_pending = true;
        }
    }

    /// Brings the Adj-RIB-Out of `peer` for `rid` in line with `best`, queueing the
    /// difference. `force` re-sends an unchanged route (route refresh).
    fn export_route(
        &mut self,
        peer: PeerId,
        rid: RouteId,
        best: Option<&BestPath<A>>,
        fallback: &A::Nlri,
        force: bool,
    ) {
        let Some(out) = self.out.get(&peer) else {
            return;
        };
        let wanted = best.and_then(|b| {
            let src = self.sources.get(&b.peer);
            export::export(&self.local, src, b.peer, &out.info, &b.attrs)
        });
        let new_id = wanted.map(|ra| self.attrs.intern(ra));
        let Some(out) = self.out.get_mut(&peer) else {
            return;
        };
        if out.adj_out.len() <= rid as usize {
            out.adj_out.resize(rid as usize + 1, 0);
        }
        let old_slot = out.adj_out[rid as usize];
        let new_slot = new_id.map_or(0, AttrId::to_slot);
        if old_slot == new_slot && !force {
            if let Some(id) = new_id {
                self.attrs.release(id);
            }
            return;
        }
        let key = A::key(fallback);
        out.adj_out[rid as usize] = new_slot;
        match (old_slot != 0, new_slot != 0) {
            (false, true) => out.advertised += 1,
            (true, false) => out.advertised -= 1,
            _ => {}
        }
        let pending = match (new_id, best) {
            (Some(id), Some(b)) => {
                // One reference for the Adj-RIB-Out (from intern), one for pending.
                self.attrs.retain(id);
                Some(Pending::Advertise {
                    nlri: b.nlri.clone(),
                    attrs: id,
                })
            }
            _ if old_slot != 0 => Some(Pending::Withdraw {
                nlri: fallback.clone(),
            }),
            _ => None,
        };
        let replaced = match pending {
            Some(p) => out.pending.insert(key, p),
            None => out.pending.remove(&key),
        };
        if let Some(Pending::Advertise { attrs, .. }) = replaced {
            self.attrs.release(attrs);
        }
        if old_slot != 0 {
            self.attrs.release(AttrId::from_slot(old_slot));
        }
    }

    /// Peers with something waiting to be sent.
    pub fn peers_with_output(&self) -> Vec<PeerId> {
        self.out
            .iter()
            .filter(|(_, o)| !o.pending.is_empty() || o.eor_pending)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Takes up to `max_routes` pending changes for `peer`, grouped by attribute set.
    pub fn take_out(&mut self, peer: PeerId, max_routes: usize) -> Option<OutBatch<A>> {
        let out = self.out.get_mut(&peer)?;
        if out.pending.is_empty() && !out.eor_pending {
            return None;
        }
        let keys: Vec<A::Key> = out.pending.keys().take(max_routes).cloned().collect();
        let mut adds: Vec<(AttrId, A::Nlri)> = Vec::new();
        let mut withdraw = Vec::new();
        for k in keys {
            match out.pending.remove(&k) {
                Some(Pending::Advertise { nlri, attrs }) => adds.push((attrs, nlri)),
                Some(Pending::Withdraw { nlri }) => withdraw.push(nlri),
                None => {}
            }
        }
        let end_of_rib = out.pending.is_empty() && out.eor_pending;
        if end_of_rib {
            out.eor_pending = false;
        }
        if out.pending.capacity() > 1024 && out.pending.len() < out.pending.capacity() / 4 {
            out.pending.shrink_to_fit();
        }
        adds.sort_by_key(|(id, _)| *id);
        let mut advertise: Vec<(Arc<RouteAttrs>, Vec<A::Nlri>)> = Vec::new();
        let mut last: Option<AttrId> = None;
        for (id, nlri) in adds {
            if last == Some(id) {
                if let Some((_, v)) = advertise.last_mut() {
                    v.push(nlri);
                }
            } else {
                advertise.push((self.attrs.get(id).clone(), vec![nlri]));
                last = Some(id);
            }
            self.attrs.release(id);
        }
        Some(OutBatch {
            advertise,
            withdraw,
            end_of_rib,
        })
    }

    /// All destinations that pass `filter`, each with its paths (best first) and the
    /// reason every other path lost.
    pub fn routes(&self, filter: &dyn Fn(&A::Nlri, &RouteAttrs) -> bool) -> Vec<RouteSnapshot<A>> {
        let mut v = Vec::new();
        for dest in self.dests.iter().flatten() {
            let Some(best) = dest.best.and_then(|b| dest.paths.get(b)) else {
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
        self.adj_in.get(&peer).map_or(0, HashSet::len)
    }

    /// Routes currently advertised to `peer` (its Adj-RIB-Out size).
    pub fn advertised_count(&self, peer: PeerId) -> usize {
        self.out.get(&peer).map_or(0, |o| o.advertised)
    }

    pub fn stats(&self) -> RibStats {
        RibStats {
            destinations: self.index.len(),
            paths: self.paths,
            attr_sets: self.attrs.len(),
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
