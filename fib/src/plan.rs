//! Best routes in, kernel operations out — pure, so it is tested without a kernel.
//!
//! Several routes can ask for the same kernel entry: the type-3 routes of one VTEP
//! under two RDs give one flood entry, a MAC-only and a MAC/IP route give one MAC
//! entry, and during a move two VTEPs advertise one MAC under their own RDs. So each
//! entry keeps the routes that want it, and the kernel gets the winner by RFC 7432
//! §15 (a sticky MAC first, then the highest MAC-mobility sequence, then the lowest
//! VTEP address: `evpn::mobility`, the rule the host agent uses too). A
//! batch of changes is planned as a whole, so an add and a delete of the same entry
//! in one batch cancel out and a move is one replace.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashSet};
use std::net::IpAddr;

use bgp::rib::BestChange;
use evpn::mobility::{self, MacMobility};
use evpn::{decode_pmsi, EvpnKey, EvpnRoute, L2vpnEvpn};

use crate::model::{FibOp, FloodEntry, Mac, RemoteMac, SuppressNeigh};

/// What one route asks of the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Want {
    Flood(FloodEntry),
    Mac {
        mac: RemoteMac,
        mobility: MacMobility,
        neigh: Option<SuppressNeigh>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate<T> {
    key: EvpnKey,
    mobility: MacMobility,
    entry: T,
}

/// The routes wanting one entry; the first after sorting wins.
type Candidates<T> = Vec<Candidate<T>>;

fn winner<T: Copy + Ord>(c: &Candidates<T>) -> Option<T> {
    // Sticky first, then the highest sequence, then the smallest entry (for a MAC, the
    // lowest VTEP address): deterministic, so every host picks the same one.
    c.iter()
        .max_by(|a, b| {
            (a.mobility.sticky, a.mobility.seq)
                .cmp(&(b.mobility.sticky, b.mobility.seq))
                .then(b.entry.cmp(&a.entry))
        })
        .map(|c| c.entry)
}

/// Desired kernel state, derived from best routes.
#[derive(Default)]
pub struct Planner {
    /// Our own VTEP addresses: routes pointing at them are ours, not programmed.
    local_vteps: HashSet<IpAddr>,
    wants: HashMap<EvpnKey, Want>,
    flood: HashMap<FloodEntry, u32>,
    macs: HashMap<(u32, Mac), Candidates<RemoteMac>>,
    neighs: HashMap<(u32, IpAddr), Candidates<SuppressNeigh>>,
}

/// Entries touched by a batch, with what the kernel had before it.
#[derive(Default)]
struct Touched {
    flood: HashMap<FloodEntry, bool>,
    /// With the winner's mobility: a higher sequence from the same VTEP is news too
    /// (a local MAC may lose to it, RFC 7432 §15.1), so it is programmed again.
    macs: HashMap<(u32, Mac), Option<(RemoteMac, MacMobility)>>,
    neighs: HashMap<(u32, IpAddr), Option<SuppressNeigh>>,
}

impl Planner {
    pub fn new(local_vteps: impl IntoIterator<Item = IpAddr>) -> Self {
        Planner {
            local_vteps: local_vteps.into_iter().collect(),
            ..Default::default()
        }
    }

    /// Our VTEP addresses changed (a vxlan device appeared or went).
    pub fn set_local_vteps(&mut self, vteps: impl IntoIterator<Item = IpAddr>) {
        self.local_vteps = vteps.into_iter().collect();
    }

    fn want_of(&self, change: &BestChange<L2vpnEvpn>) -> Option<Want> {
        let best = change.best.as_ref()?;
        let attrs = &best.attrs.attrs;
        match &best.nlri {
            EvpnRoute::Imet(_) => {
                // RFC 8365 §5.1.3: ingress replication to the PMSI endpoint, with the
                // VNI in the PMSI label.
                let pmsi = decode_pmsi(attrs.pmsi_tunnel.as_ref()?);
                if !pmsi.is_ingress_replication() {
                    return None;
                }
                let vtep = pmsi.endpoint.unwrap_or(best.attrs.next_hop);
                if self.local_vteps.contains(&vtep) {
                    return None;
                }
                Some(Want::Flood(FloodEntry {
                    vni: pmsi.vni.get(),
                    vtep,
                }))
            }
            EvpnRoute::MacIp(r) => {
                let vtep = best.attrs.next_hop;
                if self.local_vteps.contains(&vtep) {
                    return None;
                }
                let vni = r.label1.vni().get();
                let mac = Mac(r.mac.octets());
                if mac.is_group() {
                    return None; // not programmable as a unicast FDB entry
                }
                let neigh = r.ip.map(|ip| SuppressNeigh { vni, ip, mac });
                Some(Want::Mac {
                    mac: RemoteMac { vni, mac, vtep },
                    mobility: mobility::mobility(attrs).unwrap_or_default(),
                    neigh,
                })
            }
            EvpnRoute::Opaque { .. } => None,
        }
    }

    /// Applies a batch of best-path changes; returns the kernel operations, deletes
    /// first.
    pub fn apply(&mut self, changes: &[BestChange<L2vpnEvpn>]) -> Vec<FibOp> {
        let mut t = Touched::default();
        for change in changes {
            let new = self.want_of(change);
            if let Some(old) = self.wants.remove(&change.key) {
                self.unwant(&change.key, &old, &mut t);
            }
            if let Some(new) = new {
                self.want(&change.key, &new, &mut t);
                self.wants.insert(change.key.clone(), new);
            }
        }
        self.ops(t)
    }

    fn touch(&self, want: &Want, t: &mut Touched) {
        match want {
            Want::Flood(e) => {
                t.flood
                    .entry(*e)
                    .or_insert_with(|| self.flood.contains_key(e));
            }
            Want::Mac { mac, neigh, .. } => {
                let k = (mac.vni, mac.mac);
                t.macs.entry(k).or_insert_with(|| self.mac_winner(k.0, k.1));
                if let Some(n) = neigh {
                    let k = (n.vni, n.ip);
                    t.neighs
                        .entry(k)
                        .or_insert_with(|| self.neighs.get(&k).and_then(winner));
                }
            }
        }
    }

    fn want(&mut self, key: &EvpnKey, want: &Want, t: &mut Touched) {
        self.touch(want, t);
        match want {
            Want::Flood(e) => *self.flood.entry(*e).or_default() += 1,
            Want::Mac {
                mac,
                mobility,
                neigh,
            } => {
                let c = Candidate {
                    key: key.clone(),
                    mobility: *mobility,
                    entry: *mac,
                };
                push_candidate(self.macs.entry((mac.vni, mac.mac)).or_default(), c);
                if let Some(n) = neigh {
                    let c = Candidate {
                        key: key.clone(),
                        mobility: *mobility,
                        entry: *n,
                    };
                    push_candidate(self.neighs.entry((n.vni, n.ip)).or_default(), c);
                }
            }
        }
    }

    fn unwant(&mut self, key: &EvpnKey, want: &Want, t: &mut Touched) {
        self.touch(want, t);
        match want {
            Want::Flood(e) => {
                if let Some(n) = self.flood.get_mut(e) {
                    *n -= 1;
                    if *n == 0 {
                        self.flood.remove(e);
                    }
                }
            }
            Want::Mac { mac, neigh, .. } => {
                remove_candidate(&mut self.macs, (mac.vni, mac.mac), key);
                if let Some(n) = neigh {
                    remove_candidate(&mut self.neighs, (n.vni, n.ip), key);
                }
            }
        }
    }

    fn ops(&self, t: Touched) -> Vec<FibOp> {
        let mut ops = Vec::new();
        for (e, was) in t.flood {
            match (was, self.flood.contains_key(&e)) {
                (false, true) => ops.push(FibOp::FloodAdd(e)),
                (true, false) => ops.push(FibOp::FloodDel(e)),
                _ => {}
            }
        }
        for (k, was) in t.macs {
            match (was, self.mac_winner(k.0, k.1)) {
                (Some((old, _)), None) => ops.push(FibOp::MacDel(old)),
                (old, Some(new)) if old != Some(new) => ops.push(FibOp::MacSet(new.0)),
                _ => {}
            }
        }
        for (k, was) in t.neighs {
            match (was, self.neighs.get(&k).and_then(winner)) {
                (Some(old), None) => ops.push(FibOp::NeighDel(old)),
                (old, Some(new)) if old != Some(new) => ops.push(FibOp::NeighSet(new)),
                _ => {}
            }
        }
        // Deletes before adds; a MAC before the suppression entry that names it.
        // (Each entry appears once, so an unstable sort gives the same order.)
        fn rank(op: &FibOp) -> u8 {
            match op {
                FibOp::NeighDel(_) => 0,
                FibOp::MacDel(_) => 1,
                FibOp::FloodDel(_) => 2,
                FibOp::FloodAdd(_) => 3,
                FibOp::MacSet(_) => 4,
                FibOp::NeighSet(_) => 5,
            }
        }
        ops.sort_unstable_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        ops
    }

    /// Everything the kernel should hold for `vni` (to program a VNI whose device
    /// just appeared, or to reconcile at start).
    pub fn desired(&self, vni: Option<u32>) -> DesiredState {
        let keep = |v: u32| vni.is_none_or(|want| want == v);
        let mut d = DesiredState {
            flood: self.flood.keys().filter(|e| keep(e.vni)).copied().collect(),
            macs: self
                .macs
                .values()
                .filter_map(winner)
                .filter(|m| keep(m.vni))
                .collect(),
            neighs: self
                .neighs
                .values()
                .filter_map(winner)
                .filter(|n| keep(n.vni))
                .collect(),
        };
        d.flood.sort();
        d.macs.sort();
        d.neighs.sort();
        d
    }

    /// The suppression entry routes ask for at (vni, ip).
    pub fn neigh_winner(&self, vni: u32, ip: IpAddr) -> Option<SuppressNeigh> {
        self.neighs.get(&(vni, ip)).and_then(winner)
    }

    /// The remote route that wins for a MAC, with its mobility sequence.
    /// The remote entry the kernel gets for a MAC, with the strongest mobility any of
    /// the routes wanting it carries.
    pub fn mac_winner(&self, vni: u32, mac: Mac) -> Option<(RemoteMac, MacMobility)> {
        let c = self.macs.get(&(vni, mac))?;
        let w = winner(c)?;
        let m = c
            .iter()
            .filter(|c| c.entry == w)
            .map(|c| c.mobility)
            .max_by_key(|m| (m.sticky, m.seq))?;
        Some((w, m))
    }

    /// Two remote VTEPs claim a MAC as sticky (RFC 7432 §15.2: a misconfiguration).
    pub fn sticky_conflict(&self, vni: u32, mac: Mac) -> bool {
        // Checked for every MAC the kernel gets: no allocation, and one candidate (the
        // usual case) is answered at once.
        let Some(c) = self.macs.get(&(vni, mac)) else {
            return false;
        };
        let mut sticky = c.iter().filter(|c| c.mobility.sticky).map(|c| c.entry);
        match sticky.next() {
            Some(first) => sticky.any(|e| e != first),
            None => false,
        }
    }
}

/// Most entries are wanted by one route: no room for more until a second comes.
fn push_candidate<T>(c: &mut Candidates<T>, new: Candidate<T>) {
    c.reserve_exact(1);
    c.push(new);
}

fn remove_candidate<K: std::hash::Hash + Eq, T>(
    map: &mut HashMap<K, Candidates<T>>,
    k: K,
    key: &EvpnKey,
) {
    if let Some(v) = map.get_mut(&k) {
        v.retain(|c| &c.key != key);
        if v.is_empty() {
            map.remove(&k);
        }
    }
}

/// The kernel state the routes ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DesiredState {
    pub flood: Vec<FloodEntry>,
    pub macs: Vec<RemoteMac>,
    pub neighs: Vec<SuppressNeigh>,
}

impl DesiredState {
    /// The operations that install all of it.
    pub fn install_ops(&self) -> Vec<FibOp> {
        let mut ops: Vec<FibOp> = self.flood.iter().map(|e| FibOp::FloodAdd(*e)).collect();
        ops.extend(self.macs.iter().map(|m| FibOp::MacSet(*m)));
        ops.extend(self.neighs.iter().map(|n| FibOp::NeighSet(*n)));
        ops
    }

    /// Per VNI, for `show fib`.
    pub fn by_vni(&self) -> BTreeMap<u32, DesiredState> {
        let mut m: BTreeMap<u32, DesiredState> = BTreeMap::new();
        for e in &self.flood {
            m.entry(e.vni).or_default().flood.push(*e);
        }
        for e in &self.macs {
            m.entry(e.vni).or_default().macs.push(*e);
        }
        for e in &self.neighs {
            m.entry(e.vni).or_default().neighs.push(*e);
        }
        m
    }
}

#[cfg(test)]
pub(crate) mod tests;
