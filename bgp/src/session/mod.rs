//! One BGP session: the task that owns a peer's connections.
//!
//! ```text
//!  listener ──SessionCmd::Accepted──►┐
//!  daemon   ──SessionCmd::Stop──────►│ session task ──RibCmd (reserve, cap RIB_QUEUE)──► RIB
//!  RIB ──OutBatch (cap PEER_QUEUE)──►│   │  up to two connections (collision, RFC 4271 §6.8)
//!                                    └───┴─► writer task per connection (Bytes, cap WRITE_QUEUE)
//! ```
//! The task drives the pure [`fsm::Fsm`] of each connection and does the I/O. It
//! reads the socket only while the RIB has room for what it decoded, so a slow RIB
//! stops the peer through TCP while timers keep running; writes go through a writer
//! task so a peer that does not read cannot stall our reads and keepalives.

pub mod collision;
mod conn;
pub mod fsm;
pub mod timers;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::af::AddressFamily;
use crate::peer::{PeerId, PeerInfo, PeerKind};
use crate::rib::task::{OutQueue, RibCmd, SessionOut};
use crate::rib::RibInput;
use crate::wire::notification::codes;
use crate::wire::NotificationMsg;
use conn::{Conn, ConnEvent};
use fsm::{FsmConfig, Output};
use timers::Backoff;

/// How long one TCP connect attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP connect to the peer, under way.
type Connecting = std::pin::Pin<Box<dyn std::future::Future<Output = Option<TcpStream>> + Send>>;

/// A connect to `target`, giving up after [`CONNECT_TIMEOUT`] (`None`: failed).
fn connect(target: SocketAddr) -> Connecting {
    Box::pin(async move {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "connect failed");
                None
            }
            Err(_) => None,
        }
    })
}

/// Everything a session needs to know about its peer.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub id: PeerId,
    pub addr: IpAddr,
    pub port: u16,
    /// Never connect, only accept.
    pub passive: bool,
    /// The peer is our route-reflector client (when internal).
    pub rr_client: bool,
    /// Admitted from a listen range: the session ends with its connection.
    pub dynamic: bool,
    pub description: Option<String>,
    /// The most routes the peer may give (RFC 4486).
    pub max_prefixes: Option<crate::peer::MaxPrefixes>,
    pub fsm: FsmConfig,
}

impl SessionConfig {
    fn kind(&self, remote_asn: u32) -> PeerKind {
        if remote_asn != self.fsm.local_asn {
            PeerKind::Ebgp
        } else if self.rr_client {
            PeerKind::IbgpClient
        } else {
            PeerKind::Ibgp
        }
    }
}

#[derive(Debug)]
pub enum SessionCmd {
    /// The listener accepted a connection from this peer.
    Accepted(TcpStream),
    /// Send Cease and stop (RFC 4486 subcode, e.g. 2 = administrative shutdown).
    Stop { subcode: u8 },
}

/// What `show neighbors` reports of a session.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NeighborStatus {
    pub state: &'static str,
    pub remote_id: Option<Ipv4Addr>,
    pub remote_asn: Option<u32>,
    pub kind: Option<PeerKind>,
    pub hold_time: Option<u16>,
    #[serde(skip)]
    pub established_at: Option<SystemTime>,
    pub established_transitions: u32,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub last_error: Option<String>,
}

impl NeighborStatus {
    fn new() -> Self {
        NeighborStatus {
            state: "Idle",
            remote_id: None,
            remote_asn: None,
            kind: None,
            hold_time: None,
            established_at: None,
            established_transitions: 0,
            messages_received: 0,
            messages_sent: 0,
            updates_received: 0,
            updates_sent: 0,
            last_error: None,
        }
    }
}

/// The daemon's side of a session. Dropping it aborts the task.
pub struct SessionHandle {
    pub config: SessionConfig,
    pub cmd_tx: mpsc::Sender<SessionCmd>,
    pub status: watch::Receiver<NeighborStatus>,
    task: JoinHandle<()>,
}

impl SessionHandle {
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks the session to send Cease and waits (briefly) for it to finish.
    pub async fn shutdown(self, subcode: u8) {
        let _ = self.cmd_tx.send(SessionCmd::Stop { subcode }).await;
        // Drop aborts the task if it has not finished by then.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.task.is_finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the task of one peer.
pub fn spawn<A: AddressFamily>(
    config: SessionConfig,
    rib_tx: mpsc::Sender<RibCmd<A>>,
) -> SessionHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(4);
    let (status_tx, status) = watch::channel(NeighborStatus::new());
    let span = tracing::info_span!("peer", addr = %config.addr, id = config.id);
    let session = Session::<A> {
        cfg: config.clone(),
        rib_tx,
        cmd_rx,
        status: status_tx,
        inbox: VecDeque::new(),
        backoff: Backoff::new(seed(config.addr)),
        _af: std::marker::PhantomData,
    };
    let task = tokio::spawn(tracing::Instrument::instrument(session.run(), span));
    SessionHandle {
        config,
        cmd_tx,
        status,
        task,
    }
}

fn seed(addr: IpAddr) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let a = match addr {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) as u64,
    };
    a ^ now.as_nanos() as u64
}

/// Why a connection ended, for the session loop.
enum Ended {
    /// Stop was asked for: leave the session.
    Stop,
    /// The connection failed or closed; try again after back-off.
    Retry,
}

struct Session<A: AddressFamily> {
    cfg: SessionConfig,
    rib_tx: mpsc::Sender<RibCmd<A>>,
    cmd_rx: mpsc::Receiver<SessionCmd>,
    status: watch::Sender<NeighborStatus>,
    /// Decoded input waiting for room in the RIB queue.
    inbox: VecDeque<RibCmd<A>>,
    backoff: Backoff,
    _af: std::marker::PhantomData<A>,
}

impl<A: AddressFamily> Session<A> {
    async fn run(mut self) {
        let mut pending_accept: Option<TcpStream> = None;
        loop {
            let first = match pending_accept.take() {
                Some(s) => Some((s, false, None)),
                None => match self.obtain_connection().await {
                    Ok(x) => Some(x),
                    Err(Ended::Stop) => return,
                    Err(Ended::Retry) => None,
                },
            };
            if let Some((stream, outgoing, connecting)) = first {
                match self.serve(stream, outgoing, connecting).await {
                    (Ended::Stop, _) => return,
                    (Ended::Retry, next) => pending_accept = next,
                }
                if self.cfg.dynamic {
                    return;
                }
            }
            if pending_accept.is_none() {
                match self.idle_wait().await {
                    Ok(s) => pending_accept = s,
                    Err(()) => return,
                }
            }
        }
    }

    fn set_state(&self, state: &'static str) {
        self.status.send_modify(|s| s.state = state);
    }

    /// Connect (unless passive) while also accepting; returns the stream, whether we
    /// opened it, and our connect if it is still under way (the peer connected first:
    /// both go on, and the collision is resolved when the OPENs tell the identifiers,
    /// RFC 4271 §6.8; dropping ours would leave nothing if the peer dropped its own).
    async fn obtain_connection(&mut self) -> Result<(TcpStream, bool, Option<Connecting>), Ended> {
        let target = SocketAddr::new(self.cfg.addr, self.cfg.port);
        if self.cfg.passive {
            self.set_state("Active");
            return match self.cmd_rx.recv().await {
                Some(SessionCmd::Accepted(s)) => Ok((s, false, None)),
                Some(SessionCmd::Stop { .. }) | None => Err(Ended::Stop),
            };
        }
        self.set_state("Connect");
        let mut connecting = connect(target);
        tokio::select! {
            r = &mut connecting => match r {
                Some(s) => Ok((s, true, None)),
                None => {
                    self.status.send_modify(|s| {
                        s.last_error = Some(format!("connect to {target} failed"));
                    });
                    Err(Ended::Retry)
                }
            },
            cmd = self.cmd_rx.recv() => match cmd {
                Some(SessionCmd::Accepted(s)) => Ok((s, false, Some(connecting))),
                Some(SessionCmd::Stop { .. }) | None => Err(Ended::Stop),
            },
        }
    }

    /// Waits out the back-off (Active state), unless the peer connects first.
    async fn idle_wait(&mut self) -> Result<Option<TcpStream>, ()> {
        self.set_state("Active");
        let wait = self.backoff.next_wait();
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(None),
            cmd = self.cmd_rx.recv() => match cmd {
                Some(SessionCmd::Accepted(s)) => Ok(Some(s)),
                Some(SessionCmd::Stop { .. }) | None => Err(()),
            },
        }
    }

    /// Runs connections until none is left. Returns why, and a connection accepted
    /// meanwhile that should be served next.
    async fn serve(
        &mut self,
        stream: TcpStream,
        outgoing: bool,
        mut connecting: Option<Connecting>,
    ) -> (Ended, Option<TcpStream>) {
        let peer_id = self.cfg.id;
        let mut slots: [Option<Conn>; 2] = [
            Some(Conn::new(stream, outgoing, &self.cfg.fsm, &self.status)),
            None,
        ];
        self.set_state("OpenSent");
        // Unbounded, but the RIB paces what it puts here by `queue`'s byte count.
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<SessionOut>();
        let mut queue = Arc::new(OutQueue::default());
        let mut out_tx = Some(out_tx);
        let mut established: Option<usize> = None;
        // The peer's (BGP identifier, AS) from the first OPEN received.
        let mut remote: Option<(Ipv4Addr, u32)> = None;
        let mut result = Ended::Retry;
        loop {
            if slots.iter().all(Option::is_none) {
                break;
            }
            let can_read = self.inbox.is_empty();
            let can_write = established
                .and_then(|i| slots.get(i).and_then(Option::as_ref))
                .is_some_and(|c| c.writer_has_room());
            let deadline = slots
                .iter()
                .flatten()
                .filter_map(|c| c.fsm.next_deadline())
                .min();
            let ev = {
                let [s0, s1] = &mut slots;
                tokio::select! {
                    ev = conn_event(s0.as_mut()), if s0.is_some() && can_read => (0, ev),
                    ev = conn_event(s1.as_mut()), if s1.is_some() && can_read => (1, ev),
                    _ = sleep_until(deadline) => (2, ConnEvent::Tick),
                    r = until_connected(&mut connecting) => (2, match r {
                        Some(s) => ConnEvent::Connected(s),
                        None => ConnEvent::Tick,
                    }),
                    permit = self.rib_tx.reserve(), if !self.inbox.is_empty() => {
                        match (permit, self.inbox.pop_front()) {
                            (Ok(p), Some(cmd)) => {
                                p.send(cmd);
                                continue;
                            }
                            (Ok(_), None) => continue,
                            (Err(_), _) => {
                                tracing::error!("RIB is gone; stopping session");
                                result = Ended::Stop;
                                (2, ConnEvent::Shutdown(codes::cease::ADMINISTRATIVE_SHUTDOWN))
                            }
                        }
                    }
                    batch = out_rx.recv(), if can_write => (3, match batch {
                        Some(b) => ConnEvent::Out(b),
                        None => ConnEvent::Tick,
                    }),
                    cmd = self.cmd_rx.recv() => (2, match cmd {
                        Some(SessionCmd::Accepted(s)) => ConnEvent::Accepted(s),
                        Some(SessionCmd::Stop { subcode }) => {
                            result = Ended::Stop;
                            ConnEvent::Shutdown(subcode)
                        }
                        None => {
                            result = Ended::Stop;
                            ConnEvent::Shutdown(codes::cease::ADMINISTRATIVE_SHUTDOWN)
                        }
                    }),
                }
            };
            let now = Instant::now();
            let (slot, ev) = ev;
            // Our own connect that made it is handled as the peer's is, but ours.
            let (ev, ours) = match ev {
                ConnEvent::Connected(s) => (ConnEvent::Accepted(s), true),
                ev => (ev, false),
            };
            // Turn the event into FSM outputs per connection.
            let mut outputs: Vec<(usize, Output)> = Vec::new();
            match ev {
                ConnEvent::Frame(frame) => {
                    if let Some(c) = slots.get_mut(slot).and_then(Option::as_mut) {
                        self.status.send_modify(|s| s.messages_received += 1);
                        for o in c.on_frame(&frame, now) {
                            outputs.push((slot, o));
                        }
                    }
                }
                ConnEvent::BadHeader(n) => {
                    if let Some(c) = slots.get_mut(slot).and_then(Option::as_mut) {
                        for o in c.fsm.close(Some(n), "bad message header") {
                            outputs.push((slot, o));
                        }
                    }
                }
                ConnEvent::Failed(reason) => {
                    if let Some(c) = slots.get_mut(slot).and_then(Option::as_mut) {
                        for o in c.fail(reason) {
                            outputs.push((slot, o));
                        }
                    }
                }
                ConnEvent::Tick => {
                    for (i, c) in slots.iter_mut().enumerate() {
                        if let Some(c) = c {
                            for o in c.fsm.poll(now) {
                                outputs.push((i, o));
                            }
                        }
                    }
                }
                ConnEvent::Out(SessionOut::Batch(batch)) => {
                    if let Some(i) = established {
                        if let Some(c) = slots.get_mut(i).and_then(Option::as_mut) {
                            let n = c.send_shared(batch, peer_id, &queue, now);
                            self.status.send_modify(|s| {
                                s.updates_sent += n;
                            });
                        }
                    }
                }
                ConnEvent::Out(SessionOut::OverLimit(limit)) => {
                    if let Some(i) = established {
                        if let Some(c) = slots.get_mut(i).and_then(Option::as_mut) {
                            // RFC 4486 §4: AFI, SAFI and the upper bound.
                            let mut data = A::AFI.to_be_bytes().to_vec();
                            data.push(A::SAFI);
                            data.extend_from_slice(
                                &u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes(),
                            );
                            let n = NotificationMsg::new(
                                codes::CEASE,
                                codes::cease::MAXIMUM_PREFIXES_REACHED,
                                data,
                            );
                            let why = format!("more than {limit} prefixes");
                            for o in c.fsm.close(Some(n), &why) {
                                outputs.push((i, o));
                            }
                        }
                    }
                }
                ConnEvent::Connected(_) => {}
                ConnEvent::Accepted(stream) => {
                    let free = slots.iter().position(Option::is_none);
                    match (established, free) {
                        (None, Some(i)) => {
                            tracing::info!(ours, "second connection to the peer: collision check");
                            let c = Conn::new(stream, ours, &self.cfg.fsm, &self.status);
                            if let Some(s) = slots.get_mut(i) {
                                *s = Some(c);
                            }
                            // The peer's identifier is known from the other connection's
                            // OPEN: decide now (RFC 4271 §6.8 allows it), else on this
                            // one's OPEN.
                            if let Some(ids) = remote.map(|r| self.ids(r)) {
                                self.resolve_collision(&mut slots, ids);
                            }
                        }
                        _ => {
                            // RFC 4271 §6.8: a collision with an Established connection
                            // is resolved in favour of the Established one.
                            tracing::info!(
                                ours,
                                "connection collision: the Established connection stays"
                            );
                            Conn::new(stream, ours, &self.cfg.fsm, &self.status).reject_collision();
                        }
                    }
                }
                ConnEvent::Shutdown(subcode) => {
                    for (i, c) in slots.iter_mut().enumerate() {
                        if let Some(c) = c {
                            let n = NotificationMsg::new(codes::CEASE, subcode, Vec::new());
                            for o in c.fsm.close(Some(n), "shutdown") {
                                outputs.push((i, o));
                            }
                        }
                    }
                }
            }
            for (i, o) in outputs {
                match o {
                    Output::Send(msg) => {
                        if let Some(c) = slots.get_mut(i).and_then(Option::as_mut) {
                            c.send(&msg, now);
                        }
                    }
                    Output::OpenReceived {
                        remote_id,
                        remote_asn,
                    } => {
                        remote = Some((remote_id, remote_asn));
                        if let Some(c) = slots.get(i).and_then(Option::as_ref) {
                            if c.fsm.state() == fsm::State::OpenConfirm {
                                self.set_state("OpenConfirm");
                            }
                        }
                        self.resolve_collision(&mut slots, self.ids((remote_id, remote_asn)));
                    }
                    Output::Established(n) => {
                        established = Some(i);
                        self.backoff.reset();
                        let kind = self.cfg.kind(n.remote_asn);
                        let info = PeerInfo {
                            id: peer_id,
                            addr: self.cfg.addr,
                            asn: n.remote_asn,
                            bgp_id: n.remote_id,
                            kind,
                            as4: n.as4,
                            max_prefixes: self.cfg.max_prefixes,
                        };
                        tracing::info!(remote_id = %n.remote_id, asn = n.remote_asn, ?kind, hold = n.hold_time, "session established");
                        if let Some(c) = slots.get_mut(i).and_then(Option::as_mut) {
                            c.on_established(&n);
                        }
                        self.status.send_modify(|s| {
                            s.state = "Established";
                            s.remote_id = Some(n.remote_id);
                            s.remote_asn = Some(n.remote_asn);
                            s.kind = Some(kind);
                            s.hold_time = Some(n.hold_time);
                            s.established_at = Some(SystemTime::now());
                            s.established_transitions += 1;
                            s.last_error = None;
                        });
                        if out_tx.is_none() {
                            // A connection that replaced one the RIB saw come up: the
                            // old one's routes go, and ours are sent again on this one.
                            self.inbox
                                .push_back(RibCmd::Input(RibInput::PeerDown(peer_id)));
                            let (tx, rx) = mpsc::unbounded_channel::<SessionOut>();
                            out_tx = Some(tx);
                            out_rx = rx;
                            queue = Arc::new(OutQueue::default());
                        }
                        if let Some(tx) = out_tx.take() {
                            self.inbox.push_back(RibCmd::PeerUp {
                                info,
                                out_tx: tx,
                                queue: queue.clone(),
                            });
                        }
                    }
                    Output::Update(update) => {
                        self.status.send_modify(|s| s.updates_received += 1);
                        match conn::routes_of::<A>(peer_id, update) {
                            Ok(cmds) => self.inbox.extend(cmds),
                            Err(n) => {
                                if let Some(mut c) = slots.get_mut(i).and_then(Option::take) {
                                    for o in c.fsm.close(Some(n.clone()), "malformed UPDATE") {
                                        if let Output::Close { notify, reason } = o {
                                            c.close(notify.as_ref(), &reason);
                                        }
                                    }
                                }
                                self.note_close(&format!("sent NOTIFICATION: {n}"));
                                if established == Some(i) {
                                    // The session is down: nothing that was waiting
                                    // for it survives, and nothing says Established.
                                    established = None;
                                    slots = [None, None];
                                    self.set_state("Idle");
                                }
                            }
                        }
                    }
                    Output::RouteRefresh { afi, safi } => {
                        if (afi, safi) == (A::AFI, A::SAFI) {
                            self.inbox
                                .push_back(RibCmd::Input(RibInput::RouteRefresh(peer_id)));
                        }
                    }
                    Output::Close { notify, reason } => {
                        if let Some(mut c) = slots.get_mut(i).and_then(Option::take) {
                            c.close(notify.as_ref(), &reason);
                            let what = match &notify {
                                Some(n) => format!("{reason} (sent NOTIFICATION: {n})"),
                                None => reason.clone(),
                            };
                            self.note_close(&what);
                        }
                        if established == Some(i) {
                            established = None;
                            // Everything that survives this connection is stale.
                            slots = [None, None];
                        }
                    }
                }
            }
            if established.is_some() && slots.iter().all(Option::is_none) {
                established = None;
            }
        }
        // Connection(s) gone: the peer's routes go with them.
        let was_up = out_tx.is_none();
        self.inbox.clear();
        if was_up {
            let _ = self
                .rib_tx
                .send(RibCmd::Input(RibInput::PeerDown(peer_id)))
                .await;
        }
        self.status.send_modify(|s| {
            s.state = "Idle";
            s.established_at = None;
        });
        (result, None)
    }

    fn ids(&self, (remote_id, remote_asn): (Ipv4Addr, u32)) -> collision::Ids {
        collision::Ids {
            local_id: self.cfg.fsm.router_id,
            local_asn: self.cfg.fsm.local_asn,
            remote_id,
            remote_asn,
        }
    }

    /// With two connections, closes the one [`collision::loser`] names.
    fn resolve_collision(&self, slots: &mut [Option<Conn>; 2], ids: collision::Ids) {
        let [Some(a), Some(b)] = &*slots else {
            return;
        };
        let loser = match collision::loser(ids, a.collision_view(), b.collision_view()) {
            collision::Which::First => 0,
            collision::Which::Second => 1,
        };
        tracing::info!(
            closed = if slots
                .get(loser)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.outgoing)
            {
                "ours"
            } else {
                "theirs"
            },
            "connection collision resolved"
        );
        if let Some(mut c) = slots.get_mut(loser).and_then(Option::take) {
            c.reject_collision();
        }
    }

    fn note_close(&self, reason: &str) {
        tracing::warn!(reason, "connection closed");
        let reason = reason.to_string();
        self.status.send_modify(|s| s.last_error = Some(reason));
    }
}

async fn conn_event<B>(c: Option<&mut Conn>) -> ConnEvent<B> {
    match c {
        Some(c) => c.next_event().await,
        None => std::future::pending().await,
    }
}

/// Our connect attempt's result, once (never, if there is none).
async fn until_connected(connecting: &mut Option<Connecting>) -> Option<TcpStream> {
    match connecting {
        Some(c) => {
            let r = c.await;
            *connecting = None;
            r
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
