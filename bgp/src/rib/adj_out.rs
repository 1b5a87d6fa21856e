//! The Adj-RIB-Out side of the RIB: update groups, their flushes, and each new peer's
//! full table.
//!
//! A flush takes a group's dirty routes, works out what the group's policy exports
//! for each once (one export per attribute set and source, not per route and peer),
//! commits it to the group's Adj-RIB-Out, packs the differences by attribute set and
//! encodes them once; every member gets the same bytes and skips the pieces that
//! split horizon keeps from it.
//!
//! Pace: a group flushes while its members have less than [`HIGH_WATER`] bytes
//! queued, so the bytes a group holds are bounded and shared, whatever the number of
//! members. A member that holds the others up (it is above the mark while another is
//! nearly idle) for longer than [`HOLD_UP`] is split off into a group of its own,
//! which coalesces changes at that peer's pace; so a stalled peer holds up nobody for
//! long, and what waits for it is bounded by the routes, not by the churn.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::group::{GroupKey, Member, Sent, UpdateGroup};
use super::out::{Audience, Encoded, OutPiece, PeerSink};
use super::{encode, export, AttrId, Rib, RouteId};
use crate::af::AddressFamily;
use crate::peer::{PeerId, PeerInfo};
use crate::wire::EncodeCtx;

/// A member with this many bytes queued is not given more.
pub const HIGH_WATER: usize = 2 << 20;
/// A member below this is keeping up.
pub const LOW_WATER: usize = 512 << 10;
/// How long a member may hold its group up before it is served on its own.
pub const HOLD_UP: Duration = Duration::from_secs(5);
/// Routes per flush step of a group (a few hundred KiB encoded).
const FLUSH_ROUTES: usize = 8192;
/// Routes per step of a peer's full table.
const DUMP_ROUTES: usize = 8192;

/// Exported attribute sets of one flush, by (received set, source).
type ExportCache = HashMap<(AttrId, PeerId), Option<AttrId>>;

impl<A: AddressFamily> Rib<A> {
    /// Puts a new peer in the group of its policy (made, and filled from the Loc-RIB,
    /// if it is the first); its full table follows in steps, then End-of-RIB.
    pub(super) fn join(&mut self, info: PeerInfo, sink: Box<dyn PeerSink>) {
        let key = GroupKey::of(&info);
        let gi = match self.open_groups.get(&key) {
            Some(&gi) => gi,
            None => {
                let mut g = UpdateGroup::new(key, &info);
                self.seed(&mut g);
                let gi = match self.groups.iter_mut().position(|s| s.is_none()) {
                    Some(free) => {
                        if let Some(slot) = self.groups.get_mut(free) {
                            *slot = Some(g);
                        }
                        free
                    }
                    None => {
                        self.groups.push(Some(g));
                        self.groups.len() - 1
                    }
                };
                self.open_groups.insert(key, gi);
                gi
            }
        };
        if let Some(Some(g)) = self.groups.get_mut(gi) {
            g.members.push(Member {
                id: info.id,
                sink,
                dump: Some(0),
                holding_up_since: None,
            });
            self.group_of.insert(info.id, gi);
        }
    }

    /// Takes a peer out of its group; a group left empty is dropped.
    pub(super) fn leave(&mut self, peer: PeerId) {
        let Some(gi) = self.group_of.remove(&peer) else {
            return;
        };
        let Some(slot) = self.groups.get_mut(gi) else {
            return;
        };
        let empty = match slot {
            Some(g) => {
                g.members.retain(|m| m.id != peer);
                g.members.is_empty()
            }
            None => false,
        };
        if !empty {
            return;
        }
        let Some(g) = slot.take() else { return };
        self.open_groups.retain(|_, &mut i| i != gi);
        for s in &g.sent {
            if s.slot != 0 {
                self.attrs.release(AttrId::from_slot(s.slot));
            }
        }
        for &rid in &g.dirty {
            if let Some(Some(d)) = self.dests.get_mut(rid as usize) {
                d.dirty_in = d.dirty_in.saturating_sub(1);
            }
            self.free_if_gone(rid);
        }
    }

    /// Sends `peer` its full table again (route refresh, RFC 2918).
    pub(super) fn restart_dump(&mut self, peer: PeerId) {
        let Some(&gi) = self.group_of.get(&peer) else {
            return;
        };
        if let Some(Some(g)) = self.groups.get_mut(gi) {
            if let Some(m) = g.members.iter_mut().find(|m| m.id == peer) {
                m.dump = Some(0);
            }
        }
    }

    /// Fills a new group's Adj-RIB-Out with what its policy exports of the Loc-RIB,
    /// without sending anything: its first member gets it as its full table.
    fn seed(&mut self, g: &mut UpdateGroup) {
        let mut cache = ExportCache::new();
        for rid in 0..self.dests.len() as RouteId {
            let new = self.exported(g, rid, &mut cache);
            if new.slot != 0 {
                self.attrs.retain(AttrId::from_slot(new.slot));
                g.set_sent(rid, new);
            }
        }
        self.release_cache(cache);
    }

    /// Hands every group's changes and every pending full table to the peers, as far
    /// as their queues allow. True if something waits for a peer to catch up.
    pub fn flush(&mut self, now: Instant) -> bool {
        let mut waiting = false;
        let mut gi = 0;
        // Groups split off during the loop are appended and flushed in it too.
        while gi < self.groups.len() {
            if let Some(mut g) = self.groups.get_mut(gi).and_then(Option::take) {
                waiting |= self.flush_group(&mut g, now);
                waiting |= self.dump_group(&mut g);
                if let Some(slot) = self.groups.get_mut(gi) {
                    *slot = Some(g);
                }
            }
            gi += 1;
        }
        waiting
    }

    fn flush_group(&mut self, g: &mut UpdateGroup, now: Instant) -> bool {
        while !g.dirty.is_empty() {
            let someone_idle = g.members.iter().any(|m| m.sink.queued() < LOW_WATER);
            let alone = g.members.len() == 1;
            let mut stalled = Vec::new();
            let mut busy = false;
            for m in &mut g.members {
                if m.sink.queued() < HIGH_WATER {
                    m.holding_up_since = None;
                    continue;
                }
                busy = true;
                if !someone_idle {
                    continue; // everyone is behind: nobody is holding anyone up
                }
                let since = *m.holding_up_since.get_or_insert(now);
                if now.duration_since(since) >= HOLD_UP && !alone {
                    stalled.push(m.id);
                }
            }
            if busy && stalled.is_empty() {
                return true; // wait for the slowest; changes coalesce meanwhile
            }
            for peer in stalled {
                self.split(g, peer);
            }
            if g.members.iter().any(|m| m.sink.queued() >= HIGH_WATER) {
                return true;
            }
            self.flush_step(g);
        }
        false
    }

    /// Moves a member that fell behind into a group of its own.
    fn split(&mut self, g: &mut UpdateGroup, peer: PeerId) {
        let Some(slow) = g.split_off(peer) else {
            return;
        };
        for s in &slow.sent {
            if s.slot != 0 {
                self.attrs.retain(AttrId::from_slot(s.slot));
            }
        }
        for &rid in &slow.dirty {
            if let Some(Some(d)) = self.dests.get_mut(rid as usize) {
                d.dirty_in += 1;
            }
        }
        tracing::info!(
            peer,
            "peer fell behind its update group: it is served on its own"
        );
        self.groups.push(Some(slow));
        self.group_of.insert(peer, self.groups.len() - 1);
    }

    /// What `g`'s policy sends for `rid` now.
    fn exported(&mut self, g: &UpdateGroup, rid: RouteId, cache: &mut ExportCache) -> Sent {
        let Some(Some(dest)) = self.dests.get(rid as usize) else {
            return Sent::default();
        };
        let Some(path) = dest.best_path() else {
            return Sent::default();
        };
        let (attrs, src) = (path.attrs, path.peer);
        let id = match cache.get(&(attrs, src)) {
            Some(&id) => id,
            None => {
                let out = export::export(
                    &self.local,
                    self.sources.get(&src),
                    src,
                    &g.template,
                    self.attrs.get(attrs),
                );
                let id = out.map(|ra| self.attrs.intern(ra));
                cache.insert((attrs, src), id);
                id
            }
        };
        match id {
            Some(id) => Sent {
                slot: id.to_slot(),
                src,
            },
            None => Sent::default(),
        }
    }

    fn release_cache(&mut self, cache: ExportCache) {
        for id in cache.into_values().flatten() {
            self.attrs.release(id);
        }
    }

    /// The NLRI to send for `rid`: its best path's, or the one to withdraw with.
    fn nlri_of(&self, rid: RouteId) -> Option<A::Nlri> {
        let dest = self.dests.get(rid as usize)?.as_ref()?;
        match dest.best_path() {
            Some(p) => Some(p.nlri.clone()),
            None => dest.gone.as_deref().cloned(),
        }
    }

    /// One step of a group's changes: up to `FLUSH_ROUTES` routes, encoded once.
    fn flush_step(&mut self, g: &mut UpdateGroup) {
        let n = g.dirty.len().min(FLUSH_ROUTES);
        let ids = g.dirty.split_off(g.dirty.len() - n);
        let mut cache = ExportCache::new();
        let mut pieces: Vec<OutPiece<A>> = Vec::new();
        let mut piece_of: HashMap<(Audience, u32), usize> = HashMap::new();
        let mut add = |pieces: &mut Vec<OutPiece<A>>, audience, slot: u32, nlri| {
            let i = *piece_of.entry((audience, slot)).or_insert_with(|| {
                pieces.push(OutPiece {
                    audience,
                    attrs: None,
                    nlri: Vec::new(),
                });
                pieces.len() - 1
            });
            if let Some(p) = pieces.get_mut(i) {
                p.nlri.push(nlri);
            }
        };
        for rid in ids {
            g.unmark(rid);
            let new = self.exported(g, rid, &mut cache);
            let old = g.sent(rid);
            if new != old {
                if let Some(nlri) = self.nlri_of(rid) {
                    if new.slot != 0 {
                        // The new source held the old best from another peer: it
                        // must drop it, and will not be sent its own route back.
                        if old.slot != 0 && old.src != new.src && g.has_member(new.src) {
                            add(&mut pieces, Audience::Only(new.src), 0, nlri.clone());
                        }
                        add(&mut pieces, Audience::AllBut(new.src), new.slot, nlri);
                    } else {
                        add(&mut pieces, Audience::AllBut(old.src), 0, nlri);
                    }
                }
                if new.slot != 0 {
                    self.attrs.retain(AttrId::from_slot(new.slot));
                }
                g.set_sent(rid, new);
                if old.slot != 0 {
                    self.attrs.release(AttrId::from_slot(old.slot));
                }
            }
            if let Some(Some(d)) = self.dests.get_mut(rid as usize) {
                d.dirty_in = d.dirty_in.saturating_sub(1);
            }
            self.free_if_gone(rid);
        }
        for ((_, slot), i) in piece_of {
            if slot != 0 {
                if let Some(p) = pieces.get_mut(i) {
                    p.attrs = Some(self.attrs.get(AttrId::from_slot(slot)).clone());
                }
            }
        }
        // The pieces hold the sets by `Arc` now; the cache's references can go.
        self.release_cache(cache);
        let ctx = EncodeCtx { as4: g.key.as4 };
        let batch = Arc::new(encode::encode::<A>(pieces, false, &ctx));
        for m in &mut g.members {
            deliver(m, &batch);
        }
    }

    /// Steps the full tables that members of `g` are waiting for. True if one is left.
    fn dump_group(&mut self, g: &mut UpdateGroup) -> bool {
        let mut left = false;
        let ctx = EncodeCtx { as4: g.key.as4 };
        for i in 0..g.members.len() {
            while let Some(m) = g.members.get(i) {
                let Some(from) = m.dump else { break };
                if m.sink.queued() >= HIGH_WATER {
                    left = true;
                    break;
                }
                let (pieces, next) = self.dump_step(g, m.id, from);
                let batch = Arc::new(encode::encode::<A>(pieces, next.is_none(), &ctx));
                if let Some(m) = g.members.get_mut(i) {
                    m.dump = next;
                    deliver(m, &batch);
                }
            }
        }
        left
    }

    /// The next routes of `peer`'s full table from `from` on, and where to go on.
    fn dump_step(
        &self,
        g: &UpdateGroup,
        peer: PeerId,
        from: RouteId,
    ) -> (Vec<OutPiece<A>>, Option<RouteId>) {
        let mut pieces: Vec<OutPiece<A>> = Vec::new();
        let mut piece_of: HashMap<u32, usize> = HashMap::new();
        let mut routes = 0;
        let mut rid = from;
        while (rid as usize) < g.sent.len() {
            let s = g.sent(rid);
            rid += 1;
            if s.slot == 0 || s.src == peer {
                continue;
            }
            // A destination whose best path is gone is withdrawn by the next flush.
            let Some(nlri) = self.best_nlri(rid - 1) else {
                continue;
            };
            let i = *piece_of.entry(s.slot).or_insert_with(|| {
                pieces.push(OutPiece {
                    audience: Audience::All,
                    attrs: Some(self.attrs.get(AttrId::from_slot(s.slot)).clone()),
                    nlri: Vec::new(),
                });
                pieces.len() - 1
            });
            if let Some(p) = pieces.get_mut(i) {
                p.nlri.push(nlri);
            }
            routes += 1;
            if routes == DUMP_ROUTES {
                let more = (rid as usize) < g.sent.len();
                return (pieces, more.then_some(rid));
            }
        }
        (pieces, None)
    }

    fn best_nlri(&self, rid: RouteId) -> Option<A::Nlri> {
        let dest = self.dests.get(rid as usize)?.as_ref()?;
        dest.best_path().map(|p| p.nlri.clone())
    }
}

fn deliver(m: &mut Member, batch: &Arc<Encoded>) {
    let bytes = batch.bytes_for(m.id);
    if bytes > 0 {
        // A sink that is gone belongs to a peer whose PeerDown is on the way.
        let _ = m.sink.deliver(batch.clone(), bytes);
    }
}
