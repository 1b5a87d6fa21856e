//! Local learning and MAC mobility, without netlink: what the kernel's reports (a MAC
//! on a local port, a neighbour entry, a snooped ARP/ND binding) mean for the routes
//! this host originates, and whether a remote route takes a local MAC away (RFC 7432
//! §15). The FIB task feeds it decoded reports and best-path operations; it answers
//! with events for the agent (coalesced by entry) and with the operations to apply.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::dad::{Dad, DadConfig, Frozen};
use crate::discover::VniDevice;
use crate::local::{LearnLimits, Local, Refused};
use crate::model::{FibOp, Mac};
use crate::plan::Planner;
use crate::snoop::Binding;

/// Snooped bindings kept for MACs not (yet) on a local port, at most.
const MAX_UNPLACED: usize = 4096;

/// What the agent needs to know to originate routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// A VNI appeared or changed.
    VniUp(VniDevice),
    VniDown(u32),
    /// A MAC on a local port; `seq` is the MAC-mobility sequence to advertise it
    /// with (RFC 7432 §15.1: one more than a remote VTEP's, 0 if none has it).
    LocalMac {
        vni: u32,
        mac: Mac,
        present: bool,
        seq: u32,
        /// A static entry on the local port: advertised sticky (RFC 7432 §15.2), it
        /// never moves away.
        sticky: bool,
    },
    LocalIp {
        vni: u32,
        mac: Mac,
        ip: IpAddr,
        present: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum EventKey {
    Vni(u32),
    Mac(u32, Mac),
    Ip(u32, IpAddr),
}

fn event_key(e: &KernelEvent) -> EventKey {
    match e {
        KernelEvent::VniUp(d) => EventKey::Vni(d.vni),
        KernelEvent::VniDown(v) => EventKey::Vni(*v),
        KernelEvent::LocalMac { vni, mac, .. } => EventKey::Mac(*vni, *mac),
        KernelEvent::LocalIp { vni, ip, .. } => EventKey::Ip(*vni, *ip),
    }
}

/// A MAC frozen by duplicate address detection.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DuplicateView {
    pub vni: u32,
    pub mac: Mac,
    /// The moves that froze it.
    pub moves: u32,
    /// Where it stays while frozen: "local" (advertised from here) or "remote".
    pub frozen_as: &'static str,
    pub frozen_for_secs: u64,
    /// When it thaws by itself; `None`: when cleared.
    pub thaws_in_secs: Option<u64>,
}

pub struct Learner {
    /// Local MACs with the sequence they are advertised with, and their addresses.
    pub local: Local,
    /// MACs that move too often, frozen.
    pub dad: Dad,
    /// Local MACs from static bridge entries: sticky.
    sticky: HashSet<(u32, Mac)>,
    /// The local IPs that a kernel neighbour entry taught (not snooping): only these
    /// go when a neighbour entry fails or is deleted.
    neigh_ips: HashSet<(u32, IpAddr)>,
    /// Kernel operations decided outside a best-path batch (a local MAC left and a
    /// remote entry should take over), applied with the next batch or tick.
    deferred: Vec<FibOp>,
    /// Snooped bindings whose MAC is not (yet) known on a local port.
    unplaced: HashMap<Mac, Vec<IpAddr>>,
    /// Events the agent has not taken yet, the latest per entry.
    pending: HashMap<EventKey, KernelEvent>,
}

impl Learner {
    pub fn new(limits: LearnLimits, dad: DadConfig) -> Learner {
        Learner {
            local: Local::new(limits),
            dad: Dad::new(dad),
            sticky: HashSet::new(),
            neigh_ips: HashSet::new(),
            deferred: Vec::new(),
            unplaced: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// Events wait for the agent, or operations for the kernel: come back soon.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || !self.deferred.is_empty()
    }

    /// An operation for the next batch or tick (decided outside a best-path batch).
    pub fn defer(&mut self, op: FibOp) {
        self.deferred.push(op);
    }

    /// The operations decided outside a best-path batch, to apply now.
    pub fn take_deferred(&mut self) -> Vec<FibOp> {
        std::mem::take(&mut self.deferred)
    }

    pub fn up(&mut self, e: KernelEvent) {
        self.pending.insert(event_key(&e), e);
    }

    /// Hands the pending events to the agent if it has room (never waits: the agent
    /// waits on the RIB, which waits on the FIB).
    pub fn flush_events(&mut self, tx: &mpsc::Sender<Vec<KernelEvent>>) {
        if self.pending.is_empty() {
            return;
        }
        if let Ok(permit) = tx.try_reserve() {
            permit.send(self.take_events());
        }
    }

    /// The pending events, VNIs first (the agent must know the VTEP address before
    /// the MACs), MACs before their addresses (which go out with the MAC's sequence).
    fn take_events(&mut self) -> Vec<KernelEvent> {
        let mut v: Vec<KernelEvent> = self.pending.drain().map(|(_, e)| e).collect();
        v.sort_by_key(|e| match e {
            KernelEvent::VniUp(_) | KernelEvent::VniDown(_) => 0,
            KernelEvent::LocalMac { .. } => 1,
            KernelEvent::LocalIp { .. } => 2,
        });
        v
    }

    /// A MAC/IP pair seen in ARP/ND: local if the MAC lives on a local port.
    pub fn snooped(&mut self, b: Binding) {
        match self.local.vni_of(b.mac) {
            Some(vni) => self.local_ip(vni, b.ip, b.mac),
            None => self.unplace(b.mac, b.ip),
        }
    }

    /// Keeps an address seen for a MAC not (yet) on a local port.
    fn unplace(&mut self, mac: Mac, ip: IpAddr) {
        if self.unplaced.len() >= MAX_UNPLACED {
            self.unplaced.clear();
        }
        let ips = self.unplaced.entry(mac).or_default();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }

    /// A limit refused a local MAC or address: counted, and logged at the 1st, 2nd,
    /// 4th, 8th... time (forged ARP must not flood the log either).
    fn refused(&mut self, vni: u32, mac: Mac, ip: Option<IpAddr>, why: Refused) {
        let n = self.local.refused;
        if n.is_power_of_two() {
            let limit = match why {
                Refused::MacsPerVni => "MACs per VNI",
                Refused::AddressesPerMac => "addresses per MAC",
            };
            tracing::warn!(vni, %mac, ip = ?ip, limit, refused = n,
                "learning limit reached: not advertised");
        }
    }

    /// A MAC appeared on a local port (`sticky`: a static bridge entry).
    pub fn mac_seen(&mut self, planner: &Planner, vni: u32, mac: Mac, sticky: bool) {
        if self.local.has_mac(vni, mac) {
            return;
        }
        let remote = planner.mac_winner(vni, mac);
        let now = std::time::Instant::now();
        if self.dad.is_frozen(vni, mac, now) {
            tracing::debug!(vni, %mac, "duplicate MAC, frozen: seen here, not advertised");
            return;
        }
        if let Some((r, m)) = remote.filter(|(_, m)| m.sticky && !sticky) {
            // RFC 7432 §15.2: a sticky (static) MAC never moves; seeing it here is a
            // loop or a misconfiguration, not a move.
            tracing::warn!(vni, %mac, vtep = %r.vtep, seq = m.seq,
                "MAC is sticky at another VTEP: seen here, not advertised");
            return;
        }
        if sticky && remote.is_some_and(|(_, m)| m.sticky) {
            tracing::warn!(vni, %mac, "MAC is static here and sticky at another VTEP \
                (RFC 7432 §15.2): a misconfiguration; the sequence decides");
        }
        // A move here; one too many freezes it where it was (remote).
        if remote.is_some() && !sticky {
            if let Some(f) = self.dad.moved(vni, mac, false, now) {
                self.froze(vni, mac, f);
                return;
            }
        }
        // RFC 7432 §15.1: a MAC a remote VTEP advertises has moved here: advertised
        // with a sequence above the highest seen.
        let seq = remote.map_or(0, |(_, m)| evpn::mobility::next_local_seq(Some(m.seq)));
        if let Err(why) = self.local.add_mac(vni, mac, seq) {
            self.refused(vni, mac, None, why);
            return;
        }
        if sticky {
            self.sticky.insert((vni, mac));
        }
        self.up(KernelEvent::LocalMac {
            vni,
            mac,
            present: true,
            seq,
            sticky,
        });
        for ip in self.unplaced.remove(&mac).unwrap_or_default() {
            self.local_ip(vni, ip, mac);
        }
    }

    /// A MAC left its local port: withdrawn; a remote entry that should take over in
    /// the kernel does so with the next batch.
    pub fn mac_left(&mut self, planner: &Planner, vni: u32, mac: Mac) {
        let ops = self.local_mac_gone(planner, vni, mac);
        self.deferred.extend(ops);
    }

    /// A local MAC left this host (deleted, aged out, or moved: a remote VTEP
    /// advertises it with a higher sequence): withdraw it and its addresses, and let
    /// the remote entry, if any, take over in the kernel.
    fn local_mac_gone(&mut self, planner: &Planner, vni: u32, mac: Mac) -> Vec<FibOp> {
        let Some(seq) = self.local.remove_mac(vni, mac) else {
            return Vec::new();
        };
        let sticky = self.sticky.remove(&(vni, mac));
        self.up(KernelEvent::LocalMac {
            vni,
            mac,
            present: false,
            seq,
            sticky,
        });
        for ip in self.local.ips_of(vni, mac) {
            self.local.remove_ip(vni, ip);
            // A snooped address is kept with its MAC: if the MAC comes back (aged out
            // and relearned, or moved back), so does its MAC/IP route.
            if !self.neigh_ips.remove(&(vni, ip)) {
                self.unplace(mac, ip);
            }
            self.up(KernelEvent::LocalIp {
                vni,
                mac,
                ip,
                present: false,
            });
        }
        planner
            .mac_winner(vni, mac)
            .map(|(m, _)| FibOp::MacSet(m))
            .into_iter()
            .collect()
    }

    /// An address a kernel neighbour entry on a local bridge teaches (`usable`: the
    /// entry is present and reachable, `mac` its link-layer address), or unteaches.
    pub fn neigh_ip(&mut self, vni: u32, ip: IpAddr, mac: Option<Mac>, usable: bool) {
        let key = (vni, ip);
        match (usable, mac) {
            (true, Some(mac)) => {
                self.neigh_ips.insert(key);
                self.local_ip(vni, ip, mac);
            }
            _ => {
                // Only an address a neighbour entry taught goes with it. When we
                // delete one of our own suppression entries the kernel reports it
                // FAILED, then deleted, without NTF_EXT_LEARNED: that must not withdraw
                // the same address that snooping just learned here (a VM that moved in
                // from the route's VTEP).
                if !self.neigh_ips.remove(&key) {
                    return;
                }
                if let Some(mac) = self.local.remove_ip(vni, ip) {
                    self.up(KernelEvent::LocalIp {
                        vni,
                        mac,
                        ip,
                        present: false,
                    });
                }
            }
        }
    }

    fn local_ip(&mut self, vni: u32, ip: IpAddr, mac: Mac) {
        // Only a MAC on a local port makes an address local: a neighbour entry for a
        // remote host (the bridge talked to it, or one added by hand) is not ours to
        // advertise. It is kept until its MAC shows up on a local port.
        if !self.local.has_mac(vni, mac) {
            if let Some(old) = self.local.remove_ip(vni, ip) {
                self.up(KernelEvent::LocalIp {
                    vni,
                    mac: old,
                    ip,
                    present: false,
                });
            }
            self.unplace(mac, ip);
            return;
        }
        match self.local.add_ip(vni, ip, mac) {
            Ok(old) if old != Some(mac) => self.up(KernelEvent::LocalIp {
                vni,
                mac,
                ip,
                present: true,
            }),
            Ok(_) => {}
            Err(why) => self.refused(vni, mac, Some(ip), why),
        }
    }

    /// A dump found these local MACs and neighbour-taught addresses: whatever we knew
    /// besides went unnoticed (an overflow of the event socket) and is gone.
    pub fn keep_only(
        &mut self,
        planner: &Planner,
        macs: &HashSet<(u32, Mac)>,
        ips: &HashSet<(u32, IpAddr)>,
    ) {
        let gone: Vec<(u32, Mac)> = self.local.macs().filter(|k| !macs.contains(k)).collect();
        for (vni, mac) in gone {
            self.mac_left(planner, vni, mac);
        }
        let gone: Vec<(u32, IpAddr)> = self
            .neigh_ips
            .iter()
            .filter(|k| !ips.contains(k))
            .copied()
            .collect();
        for (vni, ip) in gone {
            self.neigh_ip(vni, ip, None, false);
        }
    }

    /// The VNI's device is gone: so is what was learned on it.
    pub fn vni_gone(&mut self, vni: u32) {
        self.local.drop_vni(vni);
        self.neigh_ips.retain(|(v, _)| *v != vni);
        self.pending
            .retain(|k, _| !matches!(k, EventKey::Mac(v, _) | EventKey::Ip(v, _) if *v == vni));
        self.up(KernelEvent::VniDown(vni));
    }

    /// RFC 7432 §15, by the one rule of `evpn::mobility::local_loses`: a remote MAC
    /// entry overrides a local MAC only if its route is sticky, or has a higher
    /// sequence than ours, or an equal one from a lower VTEP address; then the VM has
    /// moved away. `local_vtep`: this host's VTEP address in a VNI. Returns the
    /// operations to apply (with the deferred ones first).
    pub fn mobility(
        &mut self,
        planner: &Planner,
        local_vtep: impl Fn(u32) -> Option<IpAddr>,
        ops: Vec<FibOp>,
    ) -> Vec<FibOp> {
        let mut out = std::mem::take(&mut self.deferred);
        let now = std::time::Instant::now();
        for op in ops {
            if let FibOp::MacSet(m) = op {
                if self.dad.is_frozen(m.vni, m.mac, now) {
                    // A duplicate stays where it froze: no more moves in the kernel.
                    tracing::debug!(vni = m.vni, mac = %m.mac, vtep = %m.vtep, "duplicate MAC, frozen: not moved");
                    continue;
                }
                if planner.sticky_conflict(m.vni, m.mac) {
                    tracing::warn!(vni = m.vni, mac = %m.mac,
                        "MAC advertised as sticky by two VTEPs (RFC 7432 §15.2): misconfiguration");
                }
                if let Some(local_seq) = self.local.seq(m.vni, m.mac) {
                    let remote = planner
                        .mac_winner(m.vni, m.mac)
                        .map_or_else(Default::default, |(_, r)| r);
                    let local = evpn::MacMobility {
                        seq: local_seq,
                        sticky: self.sticky.contains(&(m.vni, m.mac)),
                    };
                    // Without a known local address, an equal sequence keeps ours.
                    let here = local_vtep(m.vni).unwrap_or(m.vtep);
                    if !evpn::mobility::local_loses(local, here, remote, m.vtep) {
                        continue; // ours wins: the local port stays
                    }
                    // A move away; one too many freezes it here (local).
                    if let Some(f) = self.dad.moved(m.vni, m.mac, true, now) {
                        self.froze(m.vni, m.mac, f);
                        continue;
                    }
                    tracing::info!(vni = m.vni, mac = %m.mac, vtep = %m.vtep, "MAC moved to another VTEP");
                    self.local_mac_gone(planner, m.vni, m.mac);
                }
            }
            out.push(op);
        }
        out
    }

    /// Duplicate address detection froze `mac`.
    fn froze(&self, vni: u32, mac: Mac, f: Frozen) {
        let cfg = self.dad.config();
        tracing::warn!(
            vni,
            %mac,
            moves = f.moves,
            window_secs = cfg.window.as_secs(),
            frozen_as = if f.local { "local" } else { "remote" },
            thaws_in_secs = cfg.freeze_for.map(|d| d.as_secs()),
            "duplicate MAC: it moved too often; frozen where it is (no more advertisements \
             or moves) until `vxbgp clear duplicates` or the freeze runs out"
        );
    }

    /// The frozen MACs (of `vni`, if given).
    pub fn duplicates(&self, vni: Option<u32>, now: std::time::Instant) -> Vec<DuplicateView> {
        self.dad
            .frozen(vni, now)
            .into_iter()
            .map(|((vni, mac), f)| DuplicateView {
                vni,
                mac,
                moves: f.moves,
                frozen_as: if f.local { "local" } else { "remote" },
                frozen_for_secs: now.saturating_duration_since(f.since).as_secs(),
                thaws_in_secs: f.until.map(|u| u.saturating_duration_since(now).as_secs()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
