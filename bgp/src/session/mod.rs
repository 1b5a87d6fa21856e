//! One BGP session: the task that owns a peer's connections.
//!
//! ```text
//!  listener ──SessionCmd::Accepted──►┐
//!  daemon   ──SessionCmd::Stop──────►│ session task ──RibCmd (reserve, cap RIB_QUEUE)──► RIB
//!  RIB ──OutBatch (cap PEER_QUEUE)──►│   │  up to two connections (collision, RFC 4271 §6.8)
//!                                    └───┴─► writer task per connection (Bytes, cap WRITE_QUEUE)
//! ```
//! Every decision is the pure [`machine::SessionMachine`]'s (connections, their
//! [`fsm::Fsm`]s, collisions, what the RIB hears); this task only does its I/O. It
//! reads the socket only while the RIB has room for what it decoded, so a slow RIB
//! stops the peer through TCP while timers keep running; writes go through a writer
//! task so a peer that does not read cannot stall our reads and keepalives.

pub mod collision;
mod conn;
pub mod fsm;
mod inbound;
pub mod machine;
pub mod timers;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::af::AddressFamily;
use crate::peer::{PeerId, PeerKind};
use crate::rib::task::{OutQueue, RibCmd, SessionOut};
use crate::rib::RibInput;
use crate::wire::notification::codes;
use conn::{Conn, Read};
use fsm::FsmConfig;
use machine::{Action, ConnId, Event, SessionMachine};
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

    /// Runs connections until none is left: the sockets, timers and channels around
    /// the [`SessionMachine`], which decides everything. Returns why, and a connection
    /// accepted meanwhile that should be served next.
    async fn serve(
        &mut self,
        stream: TcpStream,
        outgoing: bool,
        mut connecting: Option<Connecting>,
    ) -> (Ended, Option<TcpStream>) {
        let mut io = Io {
            conns: [None, None],
            out: None,
        };
        let mut m = SessionMachine::<A>::new(self.cfg.clone());
        let mut result = Ended::Retry;
        let acts = m.handle(Event::Connected { outgoing }, Instant::now());
        self.act(acts, &mut io, Some(stream));
        while !m.is_done() {
            let can_read = self.inbox.is_empty();
            let sending = m
                .established()
                .filter(|&i| io.conn(i).is_some_and(|c| c.writer_has_room()));
            let wake = {
                let [c0, c1] = &mut io.conns;
                let out_rx = io.out.as_mut().map(|(rx, _)| rx);
                tokio::select! {
                    r = next_frame(c0.as_mut()), if can_read => Wake::Read(0, r),
                    r = next_frame(c1.as_mut()), if can_read => Wake::Read(1, r),
                    _ = sleep_until(m.next_deadline()) => Wake::Tick,
                    r = until_connected(&mut connecting) => match r {
                        Some(s) => Wake::Connection(s, true),
                        None => Wake::Tick,
                    },
                    permit = self.rib_tx.reserve(), if !self.inbox.is_empty() => {
                        match (permit, self.inbox.pop_front()) {
                            (Ok(p), Some(cmd)) => {
                                p.send(cmd);
                                continue;
                            }
                            (Ok(_), None) => continue,
                            (Err(_), _) => {
                                tracing::error!("RIB is gone; stopping session");
                                self.inbox.clear();
                                result = Ended::Stop;
                                Wake::Stop(codes::cease::ADMINISTRATIVE_SHUTDOWN)
                            }
                        }
                    }
                    batch = recv_out(out_rx), if sending.is_some() => Wake::Out(batch),
                    cmd = self.cmd_rx.recv() => match cmd {
                        Some(SessionCmd::Accepted(s)) => Wake::Connection(s, false),
                        Some(SessionCmd::Stop { subcode }) => {
                            result = Ended::Stop;
                            Wake::Stop(subcode)
                        }
                        None => {
                            result = Ended::Stop;
                            Wake::Stop(codes::cease::ADMINISTRATIVE_SHUTDOWN)
                        }
                    },
                }
            };
            let now = Instant::now();
            let ev_frame;
            let ev = match wake {
                Wake::Read(conn, Read::Frame(bytes)) => {
                    self.status.send_modify(|s| s.messages_received += 1);
                    ev_frame = bytes;
                    Event::Frame {
                        conn,
                        bytes: &ev_frame,
                    }
                }
                Wake::Read(conn, Read::BadHeader(notify)) => Event::BadHeader { conn, notify },
                Wake::Read(conn, Read::Failed(reason)) => Event::Failed { conn, reason },
                Wake::Tick => Event::Tick,
                Wake::Stop(subcode) => Event::Stop { subcode },
                Wake::Connection(s, outgoing) => {
                    let acts = m.handle(Event::Connected { outgoing }, now);
                    self.act(acts, &mut io, Some(s));
                    continue;
                }
                Wake::Out(Some(SessionOut::Batch(batch))) => {
                    if let Some((i, c, queue)) = sending.and_then(|i| io.sender(i)) {
                        let n = c.send_shared(batch, self.cfg.id, &queue);
                        self.status.send_modify(|s| s.updates_sent += n);
                        m.sent(i, now);
                    }
                    continue;
                }
                Wake::Out(Some(SessionOut::OverLimit(limit))) => Event::OverLimit(limit),
                Wake::Out(None) => continue,
            };
            let acts = m.handle(ev, now);
            self.act(acts, &mut io, None);
        }
        // Connection(s) gone: what the RIB must still hear (the peer's routes go).
        while let Some(cmd) = self.inbox.pop_front() {
            if self.rib_tx.send(cmd).await.is_err() {
                break;
            }
        }
        self.inbox.clear();
        self.status.send_modify(|s| {
            s.state = "Idle";
            s.established_at = None;
        });
        (result, None)
    }

    /// Does what the machine says, in its order. `new_stream`: the connection the
    /// actions `Adopt` or `Refuse` are about.
    fn act(&mut self, acts: Vec<Action<A>>, io: &mut Io, mut new_stream: Option<TcpStream>) {
        let peer = self.cfg.id;
        for a in acts {
            match a {
                Action::Adopt { conn } => {
                    if let (Some(slot), Some(s)) = (io.conns.get_mut(conn), new_stream.take()) {
                        *slot = Some(Conn::new(s, &self.status));
                    }
                }
                Action::Refuse { notify } => {
                    if let Some(s) = new_stream.take() {
                        Conn::new(s, &self.status).close(Some(&notify));
                    }
                }
                Action::Send { conn, msg } => {
                    if let Some(c) = io.conn(conn) {
                        c.send(&msg);
                    }
                }
                Action::Close {
                    conn,
                    notify,
                    reason,
                } => {
                    if let Some(c) = io.conns.get_mut(conn).and_then(Option::take) {
                        c.close(notify.as_ref());
                    }
                    if notify.as_ref() == Some(&machine::collision_cease()) {
                        tracing::info!(reason, "connection closed");
                    } else {
                        let what = match &notify {
                            Some(n) => format!("{reason} (sent NOTIFICATION: {n})"),
                            None => reason,
                        };
                        self.note_close(&what);
                    }
                }
                Action::Established {
                    conn,
                    negotiated: n,
                } => {
                    if let Some(c) = io.conn(conn) {
                        c.set_as4(n.as4);
                    }
                    self.backoff.reset();
                    let kind = self.cfg.kind(n.remote_asn);
                    tracing::info!(remote_id = %n.remote_id, asn = n.remote_asn, ?kind, hold = n.hold_time, "session established");
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
                }
                Action::PeerUp(info) => {
                    // Unbounded, but the RIB paces what it puts here by `queue`'s bytes.
                    let (out_tx, rx) = mpsc::unbounded_channel::<SessionOut>();
                    let queue = Arc::new(OutQueue::default());
                    io.out = Some((rx, queue.clone()));
                    self.inbox.push_back(RibCmd::PeerUp {
                        info,
                        out_tx,
                        queue,
                    });
                }
                Action::Update(inputs) => {
                    self.status.send_modify(|s| s.updates_received += 1);
                    self.inbox.extend(inputs.into_iter().map(RibCmd::Input));
                }
                Action::RouteRefresh => {
                    self.inbox
                        .push_back(RibCmd::Input(RibInput::RouteRefresh(peer)));
                }
                Action::PeerDown => {
                    // What was decoded and not yet taken by the RIB would be undone.
                    self.inbox.clear();
                    self.inbox
                        .push_back(RibCmd::Input(RibInput::PeerDown(peer)));
                    io.out = None;
                }
                Action::State(state) => {
                    if state == "Idle" {
                        self.status.send_modify(|s| s.established_at = None);
                    }
                    self.set_state(state);
                }
            }
        }
    }

    fn note_close(&self, reason: &str) {
        tracing::warn!(reason, "connection closed");
        let reason = reason.to_string();
        self.status.send_modify(|s| s.last_error = Some(reason));
    }
}

/// The sockets and the RIB's output channel of one `serve`.
struct Io {
    conns: [Option<Conn>; 2],
    /// What the RIB sends this peer, while it knows the peer is up.
    out: Option<(mpsc::UnboundedReceiver<SessionOut>, Arc<OutQueue>)>,
}

impl Io {
    fn conn(&mut self, i: ConnId) -> Option<&mut Conn> {
        self.conns.get_mut(i).and_then(Option::as_mut)
    }

    fn sender(&mut self, i: ConnId) -> Option<(ConnId, &mut Conn, Arc<OutQueue>)> {
        let queue = self.out.as_ref().map(|(_, q)| q.clone())?;
        Some((i, self.conn(i)?, queue))
    }
}

/// What woke the task.
enum Wake {
    Read(ConnId, Read),
    Tick,
    /// A TCP connection: the peer's (accepted) or ours (`true`).
    Connection(TcpStream, bool),
    Out(Option<SessionOut>),
    Stop(u8),
}

async fn next_frame(c: Option<&mut Conn>) -> Read {
    match c {
        Some(c) => c.next_frame().await,
        None => std::future::pending().await,
    }
}

async fn recv_out(rx: Option<&mut mpsc::UnboundedReceiver<SessionOut>>) -> Option<SessionOut> {
    match rx {
        Some(rx) => rx.recv().await,
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
