//! Interned attribute sets.
//!
//! Most routes of one VTEP carry the same attributes, so a path stores a 4-byte
//! [`AttrId`] and the set itself is stored once. Sets are reference counted
//! explicitly (retain/release by the RIB structures that hold an id), not by
//! `Arc::strong_count`, so the count is exact whatever else holds an `Arc` for a while
//! (an UPDATE being encoded, a `show` snapshot).

use foldhash::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::PathAttrs;

/// The attributes of a path plus its next hop: what makes two paths share a set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub attrs: PathAttrs,
    /// The MP_REACH next hop (for EVPN, the VTEP address, RFC 8365 §5.1.3).
    pub next_hop: IpAddr,
}

/// Index of an interned set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(u32);

impl AttrId {
    pub(crate) fn index(self) -> u32 {
        self.0
    }
    pub(crate) fn from_index(i: u32) -> AttrId {
        AttrId(i)
    }
}

struct Slot {
    attrs: Arc<RouteAttrs>,
    refs: u32,
}

/// The intern table.
#[derive(Default)]
pub struct AttrTable {
    index: HashMap<Arc<RouteAttrs>, AttrId>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
}

impl AttrTable {
    /// Returns the id of `attrs`, adding it if new, and takes one reference.
    pub fn intern(&mut self, attrs: RouteAttrs) -> AttrId {
        if let Some(&id) = self.index.get(&attrs) {
            self.retain(id);
            return id;
        }
        let attrs = Arc::new(attrs);
        let slot = Some(Slot {
            attrs: attrs.clone(),
            refs: 1,
        });
        let reused = self.free.pop();
        let id = match reused.and_then(|i| self.slots.get_mut(i as usize).map(|s| (i, s))) {
            Some((i, s)) => {
                *s = slot;
                AttrId(i)
            }
            None => {
                self.slots.push(slot);
                AttrId((self.slots.len() - 1) as u32)
            }
        };
        self.index.insert(attrs, id);
        id
    }

    /// Takes one more reference on `id`.
    pub fn retain(&mut self, id: AttrId) {
        if let Some(Some(slot)) = self.slots.get_mut(id.0 as usize) {
            slot.refs += 1;
        }
    }

    /// Drops one reference; the set is freed with its last reference.
    pub fn release(&mut self, id: AttrId) {
        let Some(entry) = self.slots.get_mut(id.0 as usize) else {
            return;
        };
        let Some(slot) = entry else { return };
        slot.refs -= 1;
        if slot.refs == 0 {
            if let Some(slot) = entry.take() {
                self.index.remove(&slot.attrs);
                self.free.push(id.0);
            }
        }
    }

    /// The set behind `id`. Ids handed out by `intern` stay valid until released.
    pub fn get(&self, id: AttrId) -> &Arc<RouteAttrs> {
        match self.slots.get(id.0 as usize) {
            Some(Some(slot)) => &slot.attrs,
            _ => panic!("attribute set {id:?} used after release"),
        }
    }

    /// Number of distinct live sets.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn attrs(med: u32) -> RouteAttrs {
        RouteAttrs {
            attrs: PathAttrs {
                med: Some(med),
                ..Default::default()
            },
            next_hop: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1)),
        }
    }

    #[test]
    fn equal_sets_share_one_id_and_free_with_last_reference() {
        let mut t = AttrTable::default();
        let a = t.intern(attrs(1));
        let b = t.intern(attrs(1));
        let c = t.intern(attrs(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(t.len(), 2);
        t.release(a);
        assert_eq!(t.len(), 2);
        t.release(b);
        assert_eq!(t.len(), 1);
        // The freed slot is reused.
        let d = t.intern(attrs(3));
        assert_eq!(d, a);
        assert_eq!(t.get(d).attrs.med, Some(3));
    }
}
