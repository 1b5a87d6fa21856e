//! The RIB task: owns the [`Rib`], drains inputs in batches, flushes update groups.
//!
//! ```text
//!  sessions ──RibCmd (await, cap RIB_QUEUE)──► RIB task ──Vec<BestChange> (await)──► FIB
//!  control  ──RibCmd::Query + oneshot ───────►    │
//!                                                 └─Arc<Encoded> (unbounded, paced by bytes)──► session[peer]
//! ```
//! The RIB never awaits a session: each session's queue counts the bytes it holds
//! ([`OutQueue`]), the RIB gives a peer more only below a high-water mark and the
//! writer wakes the RIB when it drains, so one slow peer holds up nobody else and
//! memory is bounded by the number of routes, not by churn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

use super::adj_out::LOW_WATER;
use super::{BestChange, Encoded, PeerSink, Rib, RibInput, RibStats, RouteSnapshot};
use crate::af::AddressFamily;
use crate::peer::{PeerId, PeerInfo};

/// Inputs queued towards the RIB; a full queue makes sessions stop reading their
/// sockets (TCP pushes back on the peer) instead of growing memory.
pub const RIB_QUEUE: usize = 1024;
/// A backlog is retried at least this often even if no writer wakes the RIB.
const RETRY: Duration = Duration::from_millis(50);

/// The bytes queued towards one peer's socket, shared by the RIB (which adds what it
/// delivers) and the connection's writer (which takes off what it wrote).
#[derive(Debug, Default)]
pub struct OutQueue {
    bytes: AtomicUsize,
    /// Set by the RIB task: woken when the queue drains below the low-water mark.
    wake: OnceLock<Arc<Notify>>,
}

impl OutQueue {
    pub fn queued(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `n` bytes were written to the socket.
    pub fn written(&self, n: usize) {
        let before = self.bytes.fetch_sub(n, Ordering::Relaxed);
        if before >= LOW_WATER && before - n < LOW_WATER {
            if let Some(w) = self.wake.get() {
                w.notify_one();
            }
        }
    }
}

/// What the RIB tells a session.
#[derive(Debug)]
pub enum SessionOut {
    /// UPDATEs to send (the pieces for this peer).
    Batch(Arc<Encoded>),
    /// The peer passed its prefix limit: close with Cease / Maximum Number of Prefixes
    /// Reached (RFC 4486), the limit in the data.
    OverLimit(usize),
}

/// The RIB's end of a session's output queue.
#[derive(Debug)]
struct SessionSink {
    tx: mpsc::UnboundedSender<SessionOut>,
    queue: Arc<OutQueue>,
}

impl PeerSink for SessionSink {
    fn queued(&self) -> usize {
        self.queue.queued()
    }
    fn deliver(&mut self, batch: Arc<Encoded>, bytes: usize) -> bool {
        self.queue.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.tx.send(SessionOut::Batch(batch)).is_ok()
    }
    fn over_limit(&mut self, limit: usize) {
        let _ = self.tx.send(SessionOut::OverLimit(limit));
    }
}

/// Selects routes for `show routes` by their best path.
pub type RouteFilter<A> =
    Box<dyn Fn(&<A as AddressFamily>::Nlri, &super::RouteAttrs) -> bool + Send>;

/// Per-peer counters the control socket shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounts {
    pub received: usize,
    pub advertised: usize,
}

pub enum RibCmd<A: AddressFamily> {
    Input(RibInput<A>),
    /// A session is Established; what it must send goes to `out_tx`, counted in
    /// `queue`.
    PeerUp {
        info: PeerInfo,
        out_tx: mpsc::UnboundedSender<SessionOut>,
        queue: Arc<OutQueue>,
    },
    Routes {
        filter: RouteFilter<A>,
        reply: oneshot::Sender<Vec<RouteSnapshot<A>>>,
    },
    Counts {
        reply: oneshot::Sender<(HashMap<PeerId, PeerCounts>, RibStats)>,
    },
}

/// Runs the RIB until every sender is gone. Best-path changes go to `fib_tx` if given,
/// as whatever the FIB's command type makes of them.
pub async fn run<A: AddressFamily, F: From<Vec<BestChange<A>>> + Send + 'static>(
    mut rib: Rib<A>,
    mut rx: mpsc::Receiver<RibCmd<A>>,
    fib_tx: Option<mpsc::Sender<F>>,
) {
    rib.track_best_changes(fib_tx.is_some());
    let wake = Arc::new(Notify::new());
    let mut buf = Vec::with_capacity(256);
    let mut backlog = false;
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, 256) => {
                if n == 0 {
                    break;
                }
                for cmd in buf.drain(..) {
                    handle(&mut rib, &wake, cmd);
                }
            }
            _ = wake.notified(), if backlog => {}
            _ = tokio::time::sleep(RETRY), if backlog => {}
        }
        backlog = rib.flush(std::time::Instant::now());
        if let Some(fib) = &fib_tx {
            let changes = rib.take_best_changes();
            if !changes.is_empty() && fib.send(F::from(changes)).await.is_err() {
                tracing::warn!("FIB task is gone; best-path changes are no longer programmed");
            }
        }
    }
}

fn handle<A: AddressFamily>(rib: &mut Rib<A>, wake: &Arc<Notify>, cmd: RibCmd<A>) {
    match cmd {
        RibCmd::Input(input) => rib.apply(input),
        RibCmd::PeerUp {
            info,
            out_tx,
            queue,
        } => {
            let _ = queue.wake.set(wake.clone());
            let sink = SessionSink { tx: out_tx, queue };
            rib.apply(RibInput::PeerUp(info, Box::new(sink)));
        }
        RibCmd::Routes { filter, reply } => {
            let _ = reply.send(rib.routes(&*filter));
        }
        RibCmd::Counts { reply } => {
            let counts = rib
                .peers()
                .into_iter()
                .map(|id| {
                    let c = PeerCounts {
                        received: rib.received_count(id),
                        advertised: rib.advertised_count(id),
                    };
                    (id, c)
                })
                .collect();
            let _ = reply.send((counts, rib.stats()));
        }
    }
}
