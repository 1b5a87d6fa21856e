//! The simulated clients: one tokio task per client, each a real BGP speaker built on the
//! project's codec (OPEN with MP L2VPN EVPN, 4-octet AS and route refresh; KEEPALIVEs; a
//! hold timer), its TCP socket bound to its own address in namespace CL.
//!
//! A client does what it is told through a `watch` channel ([`Desired`]): be connected or
//! not, and which pre-encoded UPDATEs to send. Announcements are sent again after every
//! reconnection, as a real speaker would. What it holds is counted by [`Holdings`] and
//! published in [`ClientStats`] (atomics), together with the time of the last change, so
//! convergence times come from the clients' own clocks, not from polling.
//!
//! Nothing read from the network is trusted: malformed input ends the session with an
//! error (recorded), never a panic.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bgp::af::AddressFamily;
use bgp::wire::{header, DecodeCtx, Message, MpNextHop};
use bytes::{Bytes, BytesMut};
use evpn::L2vpnEvpn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::count::{Holdings, Templates};
use crate::netns::{client_addr, NsWorker, RR_ADDR};
use crate::routes::{self, ASN};
use crate::sys::Result;

/// Hold time we propose (the usual 90 s; the negotiated one is the smaller).
pub const HOLD_TIME: u16 = 90;
/// Pause before reconnecting after a failed or lost session (a connect-retry timer).
const RETRY: Duration = Duration::from_millis(500);
/// Time allowed from TCP connect to Established.
const HANDSHAKE: Duration = Duration::from_secs(30);
/// How often waits look at the clients.
const POLL: Duration = Duration::from_millis(5);

const DECODE: DecodeCtx = DecodeCtx {
    as4: true,
    ibgp: true,
};

/// Nanoseconds since the bench started: timestamps the clients publish.
pub fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The [`Instant`] of a [`now_ns`] timestamp.
pub fn instant(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// What to send.
#[derive(Clone, Debug, Default)]
pub enum Outbox {
    #[default]
    Nothing,
    /// Whole UPDATE messages announcing routes; sent again after a reconnection.
    Announce(Bytes),
    /// Whole UPDATE messages withdrawing them (nothing is announced any more).
    Withdraw(Bytes),
}

/// What a client is told to do.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    pub up: bool,
    pub outbox: Outbox,
    /// Changes whenever `outbox` does, so that it is sent once.
    pub generation: u64,
}

/// What a client publishes.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub held: AtomicU64,
    pub own: AtomicU64,
    pub unexpected: AtomicU64,
    pub bad_next_hop: AtomicU64,
    /// UPDATEs with RFC 7606 errors.
    pub malformed: AtomicU64,
    pub updates_rx: AtomicU64,
    /// [`now_ns`] of the last change of `held`.
    pub last_change_ns: AtomicU64,
    pub established: AtomicBool,
    /// [`now_ns`] of the last transition to Established.
    pub established_at_ns: AtomicU64,
    /// TCP connection attempts.
    pub attempts: AtomicU32,
    /// Sessions that reached Established.
    pub sessions: AtomicU32,
    /// Established sessions lost without being asked to close.
    pub drops: AtomicU32,
    pub last_error: Mutex<Option<String>>,
}

impl ClientStats {
    fn set_error(&self, e: String) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(e);
        }
    }

    pub fn error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn publish(&self, h: &Holdings, changed: bool) {
        self.held.store(h.held, Relaxed);
        self.own.store(h.own, Relaxed);
        self.unexpected.store(h.unexpected, Relaxed);
        self.bad_next_hop.store(h.bad_next_hop, Relaxed);
        if changed {
            self.last_change_ns.store(now_ns(), Relaxed);
        }
    }
}

struct ClientCfg {
    index: u32,
    addr: Ipv4Addr,
    rr: SocketAddr,
    tmpl: Arc<Templates>,
    worker: Arc<NsWorker>,
}

/// How a session ended when nothing went wrong.
enum End {
    /// We were told to disconnect (and sent a Cease).
    Asked,
}

/// Whole BGP messages off a read half.
struct Framer {
    rd: OwnedReadHalf,
    buf: BytesMut,
}

impl Framer {
    /// The next complete message already buffered.
    fn pop(&mut self) -> Result<Option<BytesMut>> {
        match header::frame_len(&self.buf) {
            Err(n) => Err(format!("bad message header from the reflector: {n}")),
            Ok(Some(len)) if self.buf.len() >= len => Ok(Some(self.buf.split_to(len))),
            Ok(_) => Ok(None),
        }
    }

    /// Reads more; `Err` at end of stream or when nothing comes within `hold`.
    async fn fill(&mut self, hold: Option<Duration>) -> Result<()> {
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(256 * 1024);
        }
        let read = self.rd.read_buf(&mut self.buf);
        let n = match hold {
            Some(h) => tokio::time::timeout(h, read)
                .await
                .map_err(|_| "hold timer expired".to_string())?,
            None => read.await,
        }
        .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed by the reflector".into());
        }
        Ok(())
    }

    /// The next message, decoded.
    async fn next(&mut self, hold: Option<Duration>) -> Result<Message> {
        loop {
            if let Some(frame) = self.pop()? {
                return Message::decode(&frame, &DECODE)
                    .map(|d| d.value)
                    .map_err(|n| format!("undecodable message from the reflector: {n}"));
            }
            self.fill(hold).await?;
        }
    }
}

/// Connects and runs one session until it ends.
async fn session(
    cfg: &ClientCfg,
    stats: &ClientStats,
    ctrl: &mut watch::Receiver<Desired>,
    h: &mut Holdings,
) -> Result<End> {
    let sock = cfg.worker.tcp_socket(cfg.addr).await?;
    let stream = tokio::time::timeout(HANDSHAKE, sock.connect(cfg.rr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut fr = Framer {
        rd,
        buf: BytesMut::with_capacity(256 * 1024),
    };
    let hold = tokio::time::timeout(HANDSHAKE, handshake(cfg, &mut fr, &mut wr))
        .await
        .map_err(|_| "no Established session within 30 s".to_string())??;
    stats.established_at_ns.store(now_ns(), Relaxed);
    stats.established.store(true, Relaxed);
    stats.sessions.fetch_add(1, Relaxed);
    tokio::select! {
        r = receive(&mut fr, hold, stats, h) => r,
        r = send(&mut wr, hold, ctrl) => r,
    }
}

/// OPEN, OPEN, KEEPALIVE, KEEPALIVE; returns the negotiated hold time (`None`: 0).
async fn handshake(
    cfg: &ClientCfg,
    fr: &mut Framer,
    wr: &mut OwnedWriteHalf,
) -> Result<Option<Duration>> {
    let w = |e: std::io::Error| format!("write: {e}");
    wr.write_all(&routes::open(cfg.addr, HOLD_TIME))
        .await
        .map_err(w)?;
    let open = match fr.next(None).await? {
        Message::Open(o) => o,
        Message::Notification(n) => return Err(format!("NOTIFICATION in reply to OPEN: {n}")),
        m => return Err(format!("expected OPEN, got {:?}", m.msg_type())),
    };
    if open.asn() != ASN {
        return Err(format!("reflector is AS {}, expected {ASN}", open.asn()));
    }
    if !open
        .multiprotocol()
        .contains(&(L2vpnEvpn::AFI, L2vpnEvpn::SAFI))
    {
        return Err("reflector does not announce L2VPN EVPN".into());
    }
    wr.write_all(&routes::keepalive()).await.map_err(w)?;
    match fr.next(None).await? {
        Message::Keepalive => {}
        Message::Notification(n) => return Err(format!("NOTIFICATION in OpenConfirm: {n}")),
        m => return Err(format!("expected KEEPALIVE, got {:?}", m.msg_type())),
    }
    let hold = HOLD_TIME.min(open.hold_time);
    Ok((hold > 0).then(|| Duration::from_secs(u64::from(hold))))
}

/// The receive path: count routes until the session fails.
async fn receive(
    fr: &mut Framer,
    hold: Option<Duration>,
    stats: &ClientStats,
    h: &mut Holdings,
) -> Result<End> {
    loop {
        let before = (h.held, h.own);
        let mut updates = 0u64;
        let mut malformed = 0u64;
        let mut result = Ok(());
        while let Some(frame) = fr.pop()? {
            match apply(&frame, h) {
                Ok(Applied::Update { clean }) => {
                    updates += 1;
                    if !clean {
                        malformed += 1;
                    }
                }
                Ok(Applied::Other) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        stats.updates_rx.fetch_add(updates, Relaxed);
        stats.malformed.fetch_add(malformed, Relaxed);
        stats.publish(h, (h.held, h.own) != before);
        result?;
        fr.fill(hold).await?;
    }
}

enum Applied {
    Update { clean: bool },
    Other,
}

/// Decodes one message with the codec and applies it to `h`.
fn apply(frame: &[u8], h: &mut Holdings) -> Result<Applied> {
    let d = Message::decode(frame, &DECODE)
        .map_err(|n| format!("undecodable message from the reflector: {n}"))?;
    match d.value {
        Message::Update(u) => {
            if !d.errors.is_empty() {
                // RFC 7606 problems: the routes are not taken; the UPDATE is counted.
                return Ok(Applied::Update { clean: false });
            }
            if let Some(mu) = &u.mp_unreach {
                if (mu.afi, mu.safi) == (L2vpnEvpn::AFI, L2vpnEvpn::SAFI) {
                    h.unreach(&mu.nlri).map_err(|e| e.to_string())?;
                } else {
                    h.unexpected += 1;
                }
            }
            if let Some(mp) = &u.mp_reach {
                if (mp.afi, mp.safi) == (L2vpnEvpn::AFI, L2vpnEvpn::SAFI) {
                    let nh = match mp.next_hop {
                        MpNextHop::V4(a) => Some(a),
                        _ => None,
                    };
                    h.reach(&mp.nlri, nh).map_err(|e| e.to_string())?;
                } else {
                    h.unexpected += 1;
                }
            }
            if !u.nlri.is_empty() || !u.withdrawn.is_empty() {
                h.unexpected += 1;
            }
            Ok(Applied::Update { clean: true })
        }
        Message::Keepalive | Message::RouteRefresh(_) => Ok(Applied::Other),
        Message::Notification(n) => Err(format!("NOTIFICATION from the reflector: {n}")),
        Message::Open(_) => Err("OPEN on an established session".into()),
    }
}

/// The send path: announcements (again after every reconnection), then whatever the
/// scenario asks for, and KEEPALIVEs.
async fn send(
    wr: &mut OwnedWriteHalf,
    hold: Option<Duration>,
    ctrl: &mut watch::Receiver<Desired>,
) -> Result<End> {
    let w = |e: std::io::Error| format!("write: {e}");
    let first = ctrl.borrow_and_update().clone();
    if let Outbox::Announce(b) = &first.outbox {
        wr.write_all(b).await.map_err(w)?;
    }
    wr.write_all(&routes::end_of_rib()).await.map_err(w)?;
    let mut sent = first.generation;
    let keepalive = hold.map_or(Duration::from_secs(3600), |h| h / 3);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    loop {
        tokio::select! {
            changed = ctrl.changed() => {
                let d = ctrl.borrow_and_update().clone();
                if changed.is_err() || !d.up {
                    let _ = wr.write_all(&routes::cease()).await;
                    let _ = wr.shutdown().await;
                    return Ok(End::Asked);
                }
                if d.generation != sent {
                    sent = d.generation;
                    match &d.outbox {
                        Outbox::Announce(b) | Outbox::Withdraw(b) => {
                            wr.write_all(b).await.map_err(w)?;
                        }
                        Outbox::Nothing => {}
                    }
                }
            }
            _ = tick.tick() => {
                wr.write_all(&routes::keepalive()).await.map_err(w)?;
            }
        }
    }
}

/// One client's life: connect when told, run the session, reconnect after failures.
async fn client_task(cfg: ClientCfg, stats: Arc<ClientStats>, mut ctrl: watch::Receiver<Desired>) {
    let mut h = Holdings::new(cfg.tmpl.clone(), Some(cfg.index));
    loop {
        loop {
            if ctrl.borrow_and_update().up {
                break;
            }
            if ctrl.changed().await.is_err() {
                return;
            }
        }
        stats.attempts.fetch_add(1, Relaxed);
        let r = session(&cfg, &stats, &mut ctrl, &mut h).await;
        let was_up = stats.established.swap(false, Relaxed);
        // The session is gone and with it every route learned over it.
        let had = h.held + h.own;
        h.clear();
        stats.publish(&h, had > 0);
        match r {
            Ok(End::Asked) => {}
            Err(e) => {
                if was_up {
                    stats.drops.fetch_add(1, Relaxed);
                }
                stats.set_error(e);
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// K clients and their tasks; dropping it aborts them (closing their sockets).
pub struct Fleet {
    stats: Vec<Arc<ClientStats>>,
    ctrl: Vec<watch::Sender<Desired>>,
    _tasks: JoinSet<()>,
}

/// Why a wait ended without convergence.
pub type NotConverged = String;

impl Fleet {
    /// Spawns `k` clients (indices `0..k` of the templates' route space), not yet connected.
    pub fn spawn(worker: Arc<NsWorker>, tmpl: Arc<Templates>, k: u32, port: u16) -> Fleet {
        let mut tasks = JoinSet::new();
        let mut stats = Vec::new();
        let mut ctrl = Vec::new();
        for index in 0..k {
            let (tx, rx) = watch::channel(Desired::default());
            let st = Arc::new(ClientStats::default());
            let cfg = ClientCfg {
                index,
                addr: client_addr(index),
                rr: SocketAddr::V4(SocketAddrV4::new(RR_ADDR, port)),
                tmpl: tmpl.clone(),
                worker: worker.clone(),
            };
            tasks.spawn(client_task(cfg, st.clone(), rx));
            stats.push(st);
            ctrl.push(tx);
        }
        Fleet {
            stats,
            ctrl,
            _tasks: tasks,
        }
    }

    pub fn len(&self) -> usize {
        self.stats.len()
    }

    pub fn stats(&self, i: usize) -> Option<&ClientStats> {
        self.stats.get(i).map(|s| &**s)
    }

    pub fn all(&self) -> impl Iterator<Item = &ClientStats> {
        self.stats.iter().map(|s| &**s)
    }

    /// Connects (`true`) or disconnects client `i`.
    pub fn set_up(&self, i: usize, up: bool) {
        if let Some(tx) = self.ctrl.get(i) {
            tx.send_modify(|d| d.up = up);
        }
    }

    pub fn connect_all(&self) {
        for i in 0..self.len() {
            self.set_up(i, true);
        }
    }

    /// Gives client `i` something to send (now, if connected; announcements also later).
    pub fn set_outbox(&self, i: usize, outbox: Outbox) {
        if let Some(tx) = self.ctrl.get(i) {
            tx.send_modify(|d| {
                d.outbox = outbox;
                d.generation += 1;
            });
        }
    }

    /// Waits until every client for which `which(i)` holds is Established.
    pub async fn wait_established(
        &self,
        which: impl Fn(usize) -> bool,
        timeout: Duration,
    ) -> std::result::Result<(), NotConverged> {
        let deadline = Instant::now() + timeout;
        loop {
            let down: Vec<usize> = (self.stats.iter().enumerate())
                .filter(|&(i, st)| which(i) && !st.established.load(Relaxed))
                .map(|(i, _)| i)
                .collect();
            let Some(&first) = down.first() else {
                return Ok(());
            };
            if Instant::now() >= deadline {
                let why = self
                    .stats
                    .get(first)
                    .and_then(|st| st.error())
                    .unwrap_or_else(|| "no error recorded".into());
                return Err(format!(
                    "sessions not established after {:.0} s: {} of {} clients down, e.g. {} ({why})",
                    timeout.as_secs_f64(),
                    down.len(),
                    self.len(),
                    client_addr(u32::try_from(first).unwrap_or(0)),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until every client `i` holds exactly `expect(i)` routes; `check` is called
    /// every 100 ms (e.g. "is the reflector still running") and ends the wait with its error.
    pub async fn wait_held(
        &self,
        expect: impl Fn(usize) -> u64,
        timeout: Duration,
        mut check: impl FnMut() -> Result<()>,
    ) -> std::result::Result<(), NotConverged> {
        let deadline = Instant::now() + timeout;
        let mut next_check = Instant::now();
        loop {
            let short: Vec<(usize, u64, u64)> = (self.stats.iter().enumerate())
                .map(|(i, st)| (i, st.held.load(Relaxed), expect(i)))
                .filter(|&(_, held, want)| held != want)
                .collect();
            if short.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= next_check {
                check()?;
                next_check = now + Duration::from_millis(100);
            }
            if now >= deadline {
                // Name the client that is furthest off.
                let (i, held, want) = short
                    .iter()
                    .copied()
                    .max_by_key(|&(_, held, want)| held.abs_diff(want))
                    .unwrap_or((0, 0, 0));
                let down = match self.stats.get(i) {
                    Some(st) if !st.established.load(Relaxed) => format!(
                        ", its session is down ({})",
                        st.error().unwrap_or_else(|| "no error recorded".into())
                    ),
                    _ => String::new(),
                };
                return Err(format!(
                    "did not converge within {:.0} s: client {} holds {held} of {want} routes{down} ({} of {} clients incomplete)",
                    timeout.as_secs_f64(),
                    client_addr(u32::try_from(i).unwrap_or(0)),
                    short.len(),
                    self.len()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The latest "held changed" time over the clients for which `which(i)` holds.
    pub fn last_change(&self, which: impl Fn(usize) -> bool) -> Instant {
        instant(
            (self.stats.iter().enumerate())
                .filter(|&(i, _)| which(i))
                .map(|(_, st)| st.last_change_ns.load(Relaxed))
                .max()
                .unwrap_or(0),
        )
    }

    /// Sums over all clients, for the report's sanity columns.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.all() {
            t.unexpected += s.unexpected.load(Relaxed);
            t.bad_next_hop += s.bad_next_hop.load(Relaxed);
            t.malformed += s.malformed.load(Relaxed);
            t.own += s.own.load(Relaxed);
            t.updates_rx += s.updates_rx.load(Relaxed);
            t.drops += u64::from(s.drops.load(Relaxed));
            t.attempts += u64::from(s.attempts.load(Relaxed));
        }
        t
    }
}

/// Fleet-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub unexpected: u64,
    pub bad_next_hop: u64,
    pub malformed: u64,
    pub own: u64,
    pub updates_rx: u64,
    pub drops: u64,
    pub attempts: u64,
}

impl Totals {
    /// Problems a correct reflector never causes (an own route sent back is allowed).
    pub fn problems(&self) -> Option<String> {
        let mut p = Vec::new();
        if self.unexpected > 0 {
            p.push(format!("{} unexpected or altered NLRI", self.unexpected));
        }
        if self.bad_next_hop > 0 {
            p.push(format!(
                "{} routes with a wrong next hop",
                self.bad_next_hop
            ));
        }
        if self.malformed > 0 {
            p.push(format!("{} malformed UPDATEs", self.malformed));
        }
        (!p.is_empty()).then(|| p.join(", "))
    }
}
