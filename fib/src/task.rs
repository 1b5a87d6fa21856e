//! The FIB task: follows the kernel (links and neighbours, dump then events), plans
//! kernel entries from best routes and programs them, and reports what lives on this
//! host upwards.
//!
//! ```text
//!  RIB ──FibCmd::Best (await, cap FIB_QUEUE)──► FIB task ──jobs──► writer thread ──netlink──► kernel
//!  control ──FibCmd::Show* + oneshot──────────►    │  ◄──link/neigh events (monitor thread)── kernel
//!                                                  └──Vec<KernelEvent> (try_send; coalesced by key)──► agent
//! ```
//! Kernel programming goes through [`crate::writer`] on a socket of its own, on a
//! thread of its own ([`crate::kernel_writer`]: the FIB plans while the kernel works,
//! at most one job of best-path changes in flight); events
//! come from [`crate::monitor`], which drops our own echoes unparsed and reports an
//! overflow of its socket, after which the FIB resyncs from a dump.
//! What the kernel's reports mean for local learning and MAC mobility is decided in
//! [`crate::learner`] (no netlink there; unit-tested), what routes want in the kernel
//! in [`crate::plan`]. The FIB never awaits the agent (which awaits the RIB, which
//! awaits the FIB): what the agent cannot take yet waits in the learner, keyed by
//! entry, so a later state of the same MAC replaces an earlier one.

use crate::dad::DadConfig;
use crate::learner::Learner;
use crate::local::LearnLimits;
use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::net::IpAddr;
use std::time::Duration;

use bgp::rib::BestChange;
use evpn::L2vpnEvpn;
use netlink_packet_route::link::InfoBridgePort;
use netlink_packet_route::RouteNetlinkMessage;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::discover::{self, LinkView, VniDevice};
use crate::kernel_writer::{Devices, KernelWriter, Pending, Written};
use crate::learn::{self, NeighView};
use crate::model::{FibOp, FloodEntry, Mac, RemoteMac, SuppressNeigh};
use crate::monitor::{Event, Monitor, OwnEntries};
use crate::netlink::{ApplyReport, VniDevices};
use crate::plan::Planner;
use crate::snoop::{Binding, Snooper};
use crate::writer::Writer;

/// Best-path batches queued towards the FIB.
pub const FIB_QUEUE: usize = 16;
/// Event batches queued towards the agent.
pub const EVENT_QUEUE: usize = 16;

/// rtnetlink multicast groups (RTMGRP_LINK, RTMGRP_NEIGH).
const RTMGRP_LINK: u32 = 1;
const RTMGRP_NEIGH: u32 = 4;

#[derive(Clone, Debug)]
pub struct FibConfig {
    /// Set `learning off neigh_suppress on` on vxlan bridge ports that lack it.
    pub fix_ports: bool,
    /// After this long, entries we own that no route wants are removed (routes from
    /// peers have had time to come back after a restart).
    pub reconcile_after: Duration,
    /// How much local learning may take in.
    pub limits: LearnLimits,
    /// Duplicate address detection.
    pub dad: DadConfig,
}

pub use crate::learner::{DuplicateView, KernelEvent};

pub enum FibCmd {
    Best(Vec<BestChange<L2vpnEvpn>>),
    ShowVnis {
        reply: oneshot::Sender<Vec<VniView>>,
    },
    ShowFib {
        vni: Option<u32>,
        reply: oneshot::Sender<Vec<FibVniView>>,
    },
    /// `vxbgp clear duplicates`: thaws frozen MACs (of `vni`, or `mac`, or all) and
    /// answers with those it thawed.
    ClearDuplicates {
        vni: Option<u32>,
        mac: Option<Mac>,
        reply: oneshot::Sender<Vec<DuplicateView>>,
    },
}

impl From<Vec<BestChange<L2vpnEvpn>>> for FibCmd {
    fn from(v: Vec<BestChange<L2vpnEvpn>>) -> Self {
        FibCmd::Best(v)
    }
}

/// `vxbgp show vnis`.
#[derive(Clone, Debug, Serialize)]
pub struct VniView {
    pub vni: u32,
    pub device: String,
    pub bridge: Option<String>,
    pub local: Option<IpAddr>,
    pub dstport: u16,
    pub up: bool,
    pub local_macs: usize,
    pub local_ips: usize,
    pub remote_vteps: usize,
    pub remote_macs: usize,
    pub problems: Vec<String>,
}

/// `vxbgp show fib`: what is programmed for one VNI.
#[derive(Clone, Debug, Serialize)]
pub struct FibVniView {
    pub vni: u32,
    /// The vxlan device; `None` when the VNI has no local device (nothing programmed).
    pub device: Option<String>,
    pub bridge: Option<String>,
    /// Head-end replication list: remote VTEPs that get a copy of BUM traffic.
    pub flood: Vec<IpAddr>,
    pub remote_macs: Vec<RemoteMac>,
    /// ARP/ND suppression entries on the bridge.
    pub suppress: Vec<SuppressNeigh>,
    /// Operations the kernel refused since start.
    pub failures: usize,
    /// MACs frozen by duplicate address detection: the kernel and the routes keep
    /// them as they were when they froze, whatever `remote_macs` says.
    pub duplicates: Vec<DuplicateView>,
}

struct Fib {
    cfg: FibConfig,
    /// Dumps and link changes.
    handle: rtnetlink::Handle,
    /// FIB entries.
    writer: KernelWriter,
    /// Best-path changes being written, whose report is not taken in yet.
    in_flight: Option<Pending>,
    /// The vxlan devices and the writer, named to the event reader (what they make
    /// comes back as echoes).
    own_entries: OwnEntries,
    // From discovery, which keys by interface index: few entries, std maps.
    links: std::collections::HashMap<u32, LinkView>,
    vnis: std::collections::HashMap<u32, VniDevice>,
    planner: Planner,
    /// Local learning and MAC mobility.
    learn: Learner,
    failures: HashMap<u32, usize>,
    /// Entries we own found at start, removed at reconcile time unless wanted.
    found_owned: Vec<FibOp>,
    reconcile_at: Option<Instant>,
}

/// Runs the FIB until the command channel closes. Fails only if netlink cannot be
/// opened at all (then the daemon runs without kernel programming).
pub async fn run(
    cfg: FibConfig,
    mut rx: mpsc::Receiver<FibCmd>,
    events_tx: mpsc::Sender<Vec<KernelEvent>>,
) -> Result<(), String> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| format!("netlink: {e}"))?;
    tokio::spawn(conn);
    let writer = Writer::open().map_err(|e| format!("netlink: {e}"))?;
    let mut monitor =
        Monitor::open(RTMGRP_LINK | RTMGRP_NEIGH).map_err(|e| format!("netlink events: {e}"))?;
    tracing::debug!(rcvbuf = monitor.rcvbuf(), "netlink event socket open");
    monitor.own_entries().set_writer(writer.port_id());
    let writer = KernelWriter::spawn(writer).map_err(|e| format!("FIB writer thread: {e}"))?;

    let mut fib = Fib {
        reconcile_at: Some(Instant::now() + cfg.reconcile_after),
        learn: Learner::new(cfg.limits, cfg.dad),
        cfg,
        handle,
        writer,
        in_flight: None,
        own_entries: monitor.own_entries(),
        links: std::collections::HashMap::new(),
        vnis: std::collections::HashMap::new(),
        planner: Planner::default(),

        failures: HashMap::new(),
        found_owned: Vec::new(),
    };
    fib.links = discover::dump_links(&fib.handle).await?;
    fib.vnis_changed().await;
    let neighbours = learn::dump_neighbours(&fib.handle).await?;
    for n in &neighbours {
        fib.found_owned.extend(fib.owned_op(n));
        fib.neigh_event(n, true);
    }
    tracing::info!(
        vnis = fib.vnis.len(),
        local_macs = fib.learn.local.mac_count(),
        owned_entries = fib.found_owned.len(),
        "kernel state read"
    );

    let mut snooper = match Snooper::open() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no ARP/ND snooping: MAC/IP pairs come only from neighbour entries");
            None
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        fib.learn.flush_events(&events_tx);
        let busy =
            fib.learn.busy() || fib.reconcile_at.is_some() || fib.learn.dad.next_thaw().is_some();
        tokio::select! {
            n = rx.recv_many(&mut batch, 64) => {
                if n == 0 {
                    fib.drain().await;
                    return Ok(());
                }
                let mut best = Vec::new();
                for cmd in batch.drain(..) {
                    match cmd {
                        FibCmd::Best(b) => best.extend(b),
                        FibCmd::ShowVnis { reply } => { let _ = reply.send(fib.vni_views()); }
                        FibCmd::ShowFib { vni, reply } => { let _ = reply.send(fib.fib_views(vni)); }
                        FibCmd::ClearDuplicates { vni, mac, reply } => {
                            let now = std::time::Instant::now();
                            let views: Vec<DuplicateView> = fib.learn.duplicates(vni, now)
                                .into_iter()
                                .filter(|d| mac.is_none_or(|m| m == d.mac))
                                .collect();
                            let thawed = fib.learn.dad.clear(vni, mac);
                            let _ = reply.send(views);
                            if !thawed.is_empty() {
                                tracing::info!(thawed = thawed.len(), "duplicate MACs cleared: learning them again");
                                fib.resync().await;
                            }
                        }
                    }
                }
                if !best.is_empty() {
                    fib.program_best(&best).await;
                }
            }
            w = written(&mut fib.in_flight) => { fib.written(w); }
            ev = monitor.next() => match ev {
                None => return Err("netlink event stream ended".into()),
                Some(Event::Message(m)) => fib.kernel_event(m).await,
                Some(Event::Overrun) => {
                    let lost = monitor.take_overruns();
                    tracing::warn!(
                        overruns = lost,
                        echoes = monitor.echoes(),
                        "the kernel dropped netlink events (event socket full): reading its state again"
                    );
                    fib.resync().await;
                }
            },
            b = snoop_next(&mut snooper) => match b {
                Ok(b) => fib.learn.snooped(b),
                Err(e) => {
                    tracing::warn!(error = %e, "ARP/ND snooping stopped");
                    snooper = None;
                }
            },
            _ = tick.tick(), if busy => {
                let ops = fib.learn.take_deferred();
                if !ops.is_empty() {
                    fib.program(&ops).await;
                }
                if fib.reconcile_at.is_some_and(|t| Instant::now() >= t) {
                    fib.reconcile().await;
                }
                let thawed = fib.learn.dad.thaw_expired(std::time::Instant::now());
                if !thawed.is_empty() {
                    tracing::info!(thawed = thawed.len(), "duplicate MACs thawed: learning them again");
                    fib.resync().await;
                }
            }
        }
    }
}

async fn snoop_next(s: &mut Option<Snooper>) -> std::io::Result<Binding> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

fn devices_of(vnis: &std::collections::HashMap<u32, VniDevice>, vni: u32) -> Option<VniDevices> {
    let d = vnis.get(&vni)?;
    Some(VniDevices {
        vxlan_ifindex: d.ifindex,
        bridge_ifindex: d.bridge_ifindex?,
    })
}

/// Best-path changes planned per chunk: one chunk is written while the next is planned.
const PLAN_CHUNK: usize = 4096;
/// The chunk planned while the writer has nothing to do.
const FIRST_CHUNK: usize = 256;

/// The report of the job in flight, once it is back (never, if there is none).
async fn written(in_flight: &mut Option<Pending>) -> Written {
    match in_flight {
        Some(p) => {
            let w = p.wait().await;
            *in_flight = None;
            w
        }
        None => std::future::pending().await,
    }
}

impl Fib {
    /// Queues `ops` for the writer thread, to the devices of their VNI (or all to
    /// `fixed`).
    fn submit(&self, ops: Vec<FibOp>, fixed: Option<VniDevices>) -> Pending {
        let devices = match fixed {
            Some(d) => Devices::Fixed(d),
            None => Devices::ByVni(
                self.vnis
                    .keys()
                    .filter_map(|&vni| devices_of(&self.vnis, vni).map(|d| (vni, d)))
                    .collect(),
            ),
        };
        self.writer.submit(ops, devices)
    }

    /// Waits for the job in flight, if any, and takes in its report.
    async fn drain(&mut self) {
        if let Some(mut p) = self.in_flight.take() {
            let w = p.wait().await;
            self.written(w);
        }
    }

    /// Writes `ops` to the devices of their VNI (or all to `fixed`), after the job in
    /// flight, and waits for them.
    async fn write(&mut self, ops: Vec<FibOp>, fixed: Option<VniDevices>) -> ApplyReport {
        self.drain().await;
        let w = self.submit(ops, fixed).wait().await;
        self.written(w)
    }

    /// Takes in what the kernel did with a job. The kernel's reports of our deletions
    /// of suppression entries are dropped as echoes (see `monitor`): what reading them
    /// would do is done here (a local address a neighbour entry taught goes; an entry
    /// routes still want is put back).
    fn written(&mut self, w: Written) -> ApplyReport {
        let Written {
            ops,
            devices,
            report,
        } = w;
        for (op, _) in &report.failed {
            *self.failures.entry(op.vni()).or_default() += 1;
        }
        tracing::debug!(
            ops = ops.len(),
            done = report.done,
            skipped = report.skipped,
            failed = report.failed.len(),
            "programmed"
        );
        let not_done: HashSet<FibOp> = report
            .failed
            .iter()
            .map(|(op, _)| *op)
            .chain(report.absent.iter().copied())
            .collect();
        for op in &ops {
            let FibOp::NeighDel(n) = op else { continue };
            let Some(d) = devices.of(n.vni) else { continue };
            if not_done.contains(op) {
                continue;
            }
            let v = NeighView::Ip {
                ifindex: d.bridge_ifindex,
                ip: n.ip,
                mac: None,
                ext_learned: false,
                usable: false,
            };
            self.neigh_event(&v, false);
            if let Some(op) = self.restore(&v) {
                self.learn.defer(op);
            }
        }
        report
    }

    async fn program(&mut self, ops: &[FibOp]) {
        if ops.is_empty() {
            return;
        }
        self.write(ops.to_vec(), None).await;
    }

    /// Best-path changes into the kernel, pipelined: each chunk's ops go to the writer
    /// thread while the next chunk is planned, and the last chunk's report is taken
    /// in when it comes (or before anything else is written).
    async fn program_best(&mut self, best: &[BestChange<L2vpnEvpn>]) {
        let mut rest = best;
        while !rest.is_empty() {
            // With the writer idle, a small first chunk sets the kernel to work at once
            // (what a few hundred routes take to plan, not thousands); while it writes,
            // the next chunks are planned at full size.
            let size = if self.in_flight.is_none() {
                FIRST_CHUNK
            } else {
                PLAN_CHUNK
            };
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let ops = self.planner.apply(chunk);
            let vnis = &self.vnis;
            let ops =
                self.learn
                    .mobility(&self.planner, |v| vnis.get(&v).and_then(|d| d.local), ops);
            if ops.is_empty() {
                continue;
            }
            let next = self.submit(ops, None);
            if let Some(mut p) = self.in_flight.replace(next) {
                let w = p.wait().await;
                self.written(w);
            }
        }
    }

    /// Recomputes the VNIs from the links and acts on what changed.
    async fn vnis_changed(&mut self) {
        // Before anything is programmed on a new device: its entries are echoes.
        self.own_entries.set_vxlan(
            self.links
                .values()
                .filter(|l| l.vxlan.is_some())
                .map(|l| l.ifindex),
        );
        let new = discover::vnis(&self.links);
        let old = std::mem::replace(&mut self.vnis, new);
        for (vni, dev) in &self.vnis.clone() {
            if old.get(vni) == Some(dev) {
                continue;
            }
            let problems = dev.problems();
            for p in &problems {
                tracing::warn!(vni, device = %dev.name, "{p}");
            }
            if self.cfg.fix_ports
                && (dev.port_learning == Some(true) || dev.neigh_suppress == Some(false))
            {
                self.fix_port(dev).await;
            }
            let appeared = old.get(vni).map(|o| o.ifindex) != Some(dev.ifindex);
            // A vxlan device that goes down loses its FDB entries that are not
            // permanent (our remote MACs), and a bridge that loses its last port up
            // loses its neighbours: program everything again when it comes back up.
            let came_up = dev.up && old.get(vni).is_some_and(|o| !o.up);
            // The same device moved to another bridge: the old bridge keeps our
            // suppression entries unless we remove them; the new one needs them.
            let moved = !appeared
                && old
                    .get(vni)
                    .is_some_and(|o| o.bridge_ifindex != dev.bridge_ifindex);
            if let Some(o) = old.get(vni).filter(|_| moved || appeared) {
                self.unprogram_neighs(*vni, o).await;
            }
            if appeared || moved {
                tracing::info!(vni, device = %dev.name, local = ?dev.local, "VNI found");
            } else if came_up {
                tracing::info!(vni, device = %dev.name, "VNI up again: reprogramming it");
            }
            if appeared || came_up || moved {
                let ops = self.planner.desired(Some(*vni)).install_ops();
                self.program(&ops).await;
            }
            self.learn.up(KernelEvent::VniUp(dev.clone()));
        }
        for (vni, dev) in &old {
            if !self.vnis.contains_key(vni) {
                tracing::info!(vni, "VNI gone");
                self.unprogram_neighs(*vni, dev).await;
                self.learn.vni_gone(*vni);
            }
        }
        let vteps: HashSet<IpAddr> = self.vnis.values().filter_map(|d| d.local).collect();
        self.planner.set_local_vteps(vteps);
    }

    /// Removes the suppression entries of `vni` from the bridge `old` was a port of,
    /// now that the VNI's device is gone from it: nothing stays programmed for a VNI
    /// without a device there (the FDB entries go with the device or the port).
    async fn unprogram_neighs(&mut self, vni: u32, old: &VniDevice) {
        let Some(bridge) = old.bridge_ifindex else {
            return;
        };
        if !self.links.contains_key(&bridge) {
            return; // the bridge is gone, and its neighbours with it
        }
        let ops: Vec<FibOp> = self
            .planner
            .desired(Some(vni))
            .neighs
            .into_iter()
            .map(FibOp::NeighDel)
            .collect();
        if ops.is_empty() {
            return;
        }
        let dev = VniDevices {
            vxlan_ifindex: old.ifindex,
            bridge_ifindex: bridge,
        };
        let report = self.write(ops, Some(dev)).await;
        tracing::debug!(
            vni,
            removed = report.done,
            "suppression entries of a VNI that left its bridge"
        );
    }

    async fn fix_port(&self, dev: &VniDevice) {
        use rtnetlink::LinkBridgePort;
        let msg = LinkBridgePort::new(dev.ifindex)
            .append_info_data(InfoBridgePort::Learning(false))
            .append_info_data(InfoBridgePort::NeighSupress(true))
            .build();
        // Bridge-port attributes (IFLA_INFO_PORT_DATA) are applied by RTM_NEWLINK
        // only; RTM_SETLINK (`link().set()`) ignores them and still acks.
        match self.handle.link().set_port(msg).execute().await {
            Ok(()) => {
                tracing::info!(device = %dev.name, "bridge port set to learning off, neigh_suppress on")
            }
            Err(e) => tracing::warn!(device = %dev.name, error = %e, "cannot fix bridge port"),
        }
    }

    fn vni_of_bridge(&self, bridge: u32) -> Option<u32> {
        self.vnis
            .values()
            .find(|d| d.bridge_ifindex == Some(bridge))
            .map(|d| d.vni)
    }

    fn is_vxlan(&self, ifindex: u32) -> bool {
        self.links.get(&ifindex).is_some_and(|l| l.vxlan.is_some())
    }

    /// The (VNI, MAC) of an FDB entry that is a local MAC: learned on a local port of a
    /// VNI's bridge. Entries on the vxlan device are remote; permanent ones are the
    /// ports' own addresses. One marked `extern_learn` is local too: vxbgp puts its
    /// entries on vxlan devices only, and `bridge fdb replace MAC dev PORT master`
    /// (a VM moved in by hand or by an orchestrator) keeps the mark of the remote
    /// entry it replaces.
    fn local_mac_key(&self, n: &NeighView) -> Option<(u32, Mac)> {
        let NeighView::Fdb {
            ifindex,
            mac,
            own,
            permanent,
            ..
        } = *n
        else {
            return None;
        };
        if own || permanent || mac.is_group() || self.is_vxlan(ifindex) {
            return None;
        }
        let bridge = self.links.get(&ifindex).and_then(|l| l.master)?;
        Some((self.vni_of_bridge(bridge)?, mac))
    }

    /// A neighbour message: local learning (entries that are not ours).
    fn neigh_event(&mut self, n: &NeighView, present: bool) {
        match *n {
            NeighView::Fdb { static_entry, .. } => {
                let Some((vni, mac)) = self.local_mac_key(n) else {
                    return;
                };
                if present {
                    self.learn.mac_seen(&self.planner, vni, mac, static_entry);
                } else {
                    // Anything to program now is done on the next best-path batch or
                    // by the remote entry the kernel already holds.
                    self.learn.mac_left(&self.planner, vni, mac);
                }
            }
            NeighView::Ip {
                ifindex,
                ip,
                mac,
                ext_learned,
                usable,
            } => {
                // Multicast groups get NOARP neighbour entries of their own; they are
                // no host.
                if ext_learned
                    || ip.is_multicast()
                    || ip.is_unspecified()
                    || mac.is_some_and(|m| m.is_group())
                {
                    return;
                }
                let Some(vni) = self.vni_of_bridge(ifindex) else {
                    return;
                };
                self.learn.neigh_ip(vni, ip, mac, present && usable);
            }
        }
    }

    /// An entry the kernel deleted that routes still ask for, as the op that puts it
    /// back. The kernel flushes entries on its own: a bridge forgets its neighbours
    /// when its MAC address changes (a port joined or left) or it goes down. Our own
    /// deletions never come back here: the planner no longer wants those entries.
    fn restore(&self, n: &NeighView) -> Option<FibOp> {
        // Only the bridge's neighbour table is flushed behind our back while the
        // devices stay; FDB entries go when the vxlan device goes down or away, and
        // the VNI is reprogrammed when it comes back (see `vnis_changed`).
        let NeighView::Ip { ifindex, ip, .. } = *n else {
            return None;
        };
        let vni = self.vni_of_bridge(ifindex)?;
        let op = FibOp::NeighSet(self.planner.neigh_winner(vni, ip)?);
        tracing::info!(
            ?op,
            "kernel deleted an entry routes still want: putting it back"
        );
        Some(op)
    }

    /// An entry vxbgp installed in an earlier life, as the op that removes it.
    fn owned_op(&self, n: &NeighView) -> Option<FibOp> {
        match *n {
            NeighView::Fdb {
                ifindex,
                mac,
                dst,
                ext_learned: true,
                own: true,
                ..
            } => {
                let dev = self.vnis.values().find(|d| d.ifindex == ifindex)?;
                let vtep = dst?;
                Some(if mac == Mac::ZERO {
                    FibOp::FloodDel(FloodEntry { vni: dev.vni, vtep })
                } else {
                    FibOp::MacDel(RemoteMac {
                        vni: dev.vni,
                        mac,
                        vtep,
                    })
                })
            }
            NeighView::Ip {
                ifindex,
                ip,
                mac: Some(mac),
                ext_learned: true,
                ..
            } => {
                let vni = self.vni_of_bridge(ifindex)?;
                Some(FibOp::NeighDel(SuppressNeigh { vni, ip, mac }))
            }
            _ => None,
        }
    }

    /// Removes entries we own that no route wants any more (after a restart).
    async fn reconcile(&mut self) {
        self.reconcile_at = None;
        self.drain().await;
        let want = self.planner.desired(None);
        let flood: HashSet<FloodEntry> = want.flood.iter().copied().collect();
        let macs: HashSet<(u32, Mac)> = want.macs.iter().map(|m| (m.vni, m.mac)).collect();
        let neighs: HashSet<SuppressNeigh> = want.neighs.iter().copied().collect();
        let stale: Vec<FibOp> = std::mem::take(&mut self.found_owned)
            .into_iter()
            .filter(|op| match op {
                FibOp::FloodDel(e) => !flood.contains(e),
                FibOp::MacDel(m) => !macs.contains(&(m.vni, m.mac)),
                FibOp::NeighDel(n) => !neighs.contains(n),
                _ => false,
            })
            .collect();
        tracing::info!(stale = stale.len(), "reconciled kernel entries with routes");
        self.program(&stale).await;
    }

    /// The kernel dropped events (the event socket overflowed): read links and
    /// neighbours again and reconcile. Local MACs and addresses follow the dump;
    /// entries routes want that the kernel lacks (or holds differently) are
    /// programmed; stale entries we own are removed (kept for the start-up
    /// reconcile while it is pending).
    async fn resync(&mut self) {
        // The dump must see what was written.
        self.drain().await;
        match discover::dump_links(&self.handle).await {
            Ok(links) => {
                self.links = links;
                self.vnis_changed().await;
            }
            Err(e) => tracing::warn!(error = %e, "resync: cannot read links"),
        }
        let neighbours = match learn::dump_neighbours(&self.handle).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "resync: cannot read neighbours");
                return;
            }
        };
        // Local learning: what is there now, and what went unnoticed.
        let mut macs = HashSet::new();
        let mut ips = HashSet::new();
        for n in &neighbours {
            macs.extend(self.local_mac_key(n));
            if let NeighView::Ip {
                ifindex,
                ip,
                mac: Some(_),
                ext_learned: false,
                usable: true,
            } = *n
            {
                if let Some(vni) = self.vni_of_bridge(ifindex) {
                    ips.insert((vni, ip));
                }
            }
            self.neigh_event(n, true);
        }
        self.learn.keep_only(&self.planner, &macs, &ips);
        // Our entries against what routes want.
        let mut flood = HashSet::new();
        let mut have_macs = HashMap::new();
        let mut have_neighs = HashMap::new();
        let mut owned = Vec::new();
        for n in &neighbours {
            let Some(op) = self.owned_op(n) else { continue };
            match op {
                FibOp::FloodDel(e) => {
                    flood.insert(e);
                }
                FibOp::MacDel(m) => {
                    have_macs.insert((m.vni, m.mac), m.vtep);
                }
                FibOp::NeighDel(x) => {
                    have_neighs.insert((x.vni, x.ip), x.mac);
                }
                _ => {}
            }
            owned.push(op);
        }
        let want = self.planner.desired(None);
        let wanted_flood: HashSet<FloodEntry> = want.flood.iter().copied().collect();
        let wanted_macs: HashSet<(u32, Mac)> = want.macs.iter().map(|m| (m.vni, m.mac)).collect();
        let wanted_neighs: HashSet<SuppressNeigh> = want.neighs.iter().copied().collect();
        let stale = owned.into_iter().filter(|op| match op {
            FibOp::FloodDel(e) => !wanted_flood.contains(e),
            FibOp::MacDel(m) => !wanted_macs.contains(&(m.vni, m.mac)),
            FibOp::NeighDel(n) => !wanted_neighs.contains(n),
            _ => false,
        });
        let mut ops: Vec<FibOp> = Vec::new();
        if self.reconcile_at.is_some() {
            self.found_owned.extend(stale);
        } else {
            ops.extend(stale);
        }
        let missing = want
            .flood
            .iter()
            .filter(|e| !flood.contains(*e))
            .map(|e| FibOp::FloodAdd(*e));
        ops.extend(missing);
        let missing = want
            .macs
            .iter()
            .filter(|m| have_macs.get(&(m.vni, m.mac)) != Some(&m.vtep))
            .map(|m| FibOp::MacSet(*m));
        ops.extend(missing);
        let missing = want
            .neighs
            .iter()
            .filter(|n| have_neighs.get(&(n.vni, n.ip)) != Some(&n.mac))
            .map(|n| FibOp::NeighSet(*n));
        ops.extend(missing);
        tracing::info!(ops = ops.len(), "resynced with the kernel");
        let vnis = &self.vnis;
        let ops = self
            .learn
            .mobility(&self.planner, |v| vnis.get(&v).and_then(|d| d.local), ops);
        self.program(&ops).await;
    }

    async fn kernel_event(&mut self, m: RouteNetlinkMessage) {
        match m {
            // Bridge-port notifications (AF_BRIDGE; e.g. the port entering forwarding
            // state) lack the link info: they only update port flags, and a port
            // leaving its bridge is also reported by an AF_UNSPEC message.
            RouteNetlinkMessage::NewLink(l) if discover::is_bridge_port_msg(&l) => {
                if let Some(v) = self.links.get_mut(&l.header.index) {
                    discover::apply_bridge_port(v, &l);
                    self.vnis_changed().await;
                }
            }
            RouteNetlinkMessage::DelLink(l) if discover::is_bridge_port_msg(&l) => {}
            RouteNetlinkMessage::NewLink(l) => {
                let v = discover::link_view(&l);
                self.links.insert(v.ifindex, v);
                self.vnis_changed().await;
            }
            RouteNetlinkMessage::DelLink(l) => {
                self.links.remove(&l.header.index);
                self.vnis_changed().await;
            }
            RouteNetlinkMessage::NewNeighbour(n) => {
                if let Some(v) = learn::neigh_view(&n) {
                    self.neigh_event(&v, true);
                    // Someone else deleting one of our suppression entries: reported
                    // FAILED (the deletion that follows is dropped as an echo).
                    if matches!(v, NeighView::Ip { usable: false, .. }) {
                        if let Some(op) = self.restore(&v) {
                            self.learn.defer(op);
                        }
                    }
                }
            }
            RouteNetlinkMessage::DelNeighbour(n) => {
                if let Some(v) = learn::neigh_view(&n) {
                    self.neigh_event(&v, false);
                    if let Some(op) = self.restore(&v) {
                        self.learn.defer(op);
                    }
                }
            }
            _ => {}
        }
    }

    fn vni_views(&self) -> Vec<VniView> {
        let desired = self.planner.desired(None).by_vni();
        let mut v: Vec<VniView> = self
            .vnis
            .values()
            .map(|d| {
                let want = desired.get(&d.vni);
                VniView {
                    vni: d.vni,
                    device: d.name.clone(),
                    bridge: d
                        .bridge_ifindex
                        .and_then(|b| self.links.get(&b))
                        .map(|l| l.name.clone()),
                    local: d.local,
                    dstport: d.dstport,
                    up: d.up,
                    local_macs: self.learn.local.macs_in(d.vni),
                    local_ips: self.learn.local.ips_in(d.vni),
                    remote_vteps: want.map_or(0, |w| w.flood.len()),
                    remote_macs: want.map_or(0, |w| w.macs.len()),
                    problems: d.problems(),
                }
            })
            .collect();
        v.sort_by_key(|x| x.vni);
        v
    }

    fn fib_views(&self, vni: Option<u32>) -> Vec<FibVniView> {
        let desired: BTreeMap<u32, _> = self.planner.desired(vni).by_vni();
        let mut all: BTreeMap<u32, FibVniView> = BTreeMap::new();
        for d in self
            .vnis
            .values()
            .filter(|d| vni.is_none_or(|v| v == d.vni))
        {
            all.insert(d.vni, self.fib_view(d.vni));
        }
        for (v, want) in desired {
            let mut view = all.remove(&v).unwrap_or_else(|| self.fib_view(v));
            view.flood = want.flood.iter().map(|e| e.vtep).collect();
            view.remote_macs = want.macs;
            view.suppress = want.neighs;
            all.insert(v, view);
        }
        all.into_values().collect()
    }

    fn fib_view(&self, vni: u32) -> FibVniView {
        let d = self.vnis.get(&vni);
        FibVniView {
            vni,
            device: d.map(|d| d.name.clone()),
            bridge: d
                .and_then(|d| d.bridge_ifindex)
                .and_then(|b| self.links.get(&b))
                .map(|l| l.name.clone()),
            flood: Vec::new(),
            remote_macs: Vec::new(),
            suppress: Vec::new(),
            failures: self.failures.get(&vni).copied().unwrap_or(0),
            duplicates: self.learn.duplicates(Some(vni), std::time::Instant::now()),
        }
    }
}
