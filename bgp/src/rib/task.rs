//! The RIB task: owns the [`Rib`], drains inputs in batches, fans out per-peer output.
//!
//! ```text
//!  sessions ──RibCmd (await, cap RIB_QUEUE)──► RIB task ──Vec<BestChange> (await)──► FIB
//!  control  ──RibCmd::Query + oneshot ───────►    │
//!                                                 └─OutBatch (try_reserve, cap PEER_QUEUE)──► session[peer]
//! ```
//! The RIB never awaits a session: when a session's queue is full its changes stay in
//! the RIB's pending map for that peer (coalesced by route) and are retried on the
//! next turn, so one slow peer holds up nobody else and memory is bounded by the
//! number of routes, not by churn.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{BestChange, OutBatch, Rib, RibInput, RibStats, RouteSnapshot};
use crate::af::AddressFamily;
use crate::peer::{PeerId, PeerInfo};

/// Inputs queued towards the RIB; a full queue makes sessions stop reading their
/// sockets (TCP pushes back on the peer) instead of growing memory.
pub const RIB_QUEUE: usize = 1024;
/// Batches queued towards one session; small, because the RIB coalesces behind it.
pub const PEER_QUEUE: usize = 8;
/// Routes per batch: about what a few dozen full UPDATEs carry.
pub const BATCH_ROUTES: usize = 2048;
/// How often a backlog towards a full session is retried.
const RETRY: Duration = Duration::from_millis(20);

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
    /// A session is Established; batches for it go to `out_tx`.
    PeerUp {
        info: PeerInfo,
        out_tx: mpsc::Sender<OutBatch<A>>,
    },
    Routes {
        filter: RouteFilter<A>,
        reply: oneshot::Sender<Vec<RouteSnapshot<A>>>,
    },
    Counts {
        reply: oneshot::Sender<(HashMap<PeerId, PeerCounts>, RibStats)>,
    },
}

/// Runs the RIB until every sender is gone. Best-path changes go to `fib_tx` if given.
/// Best-path changes go to `fib_tx` as whatever the FIB's command type makes of them.
pub async fn run<A: AddressFamily, F: From<Vec<BestChange<A>>> + Send + 'static>(
    mut rib: Rib<A>,
    mut rx: mpsc::Receiver<RibCmd<A>>,
    fib_tx: Option<mpsc::Sender<F>>,
) {
    rib.track_best_changes(fib_tx.is_some());
    let mut sessions: HashMap<PeerId, mpsc::Sender<OutBatch<A>>> = HashMap::new();
    let mut buf = Vec::with_capacity(256);
    let mut backlog = false;
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut buf, 256) => {
                if n == 0 {
                    break;
                }
                for cmd in buf.drain(..) {
                    handle(&mut rib, &mut sessions, cmd);
                }
            }
            _ = retry.tick(), if backlog => {}
        }
        backlog = flush(&mut rib, &sessions);
        if let Some(fib) = &fib_tx {
            let changes = rib.take_best_changes();
            if !changes.is_empty() && fib.send(F::from(changes)).await.is_err() {
                tracing::warn!("FIB task is gone; best-path changes are no longer programmed");
            }
        }
    }
}

fn handle<A: AddressFamily>(
    rib: &mut Rib<A>,
    sessions: &mut HashMap<PeerId, mpsc::Sender<OutBatch<A>>>,
    cmd: RibCmd<A>,
) {
    match cmd {
        RibCmd::Input(input) => {
            if let RibInput::PeerDown(id) = &input {
                sessions.remove(id);
            }
            rib.apply(input);
        }
        RibCmd::PeerUp { info, out_tx } => {
            sessions.insert(info.id, out_tx);
            rib.apply(RibInput::PeerUp(info));
        }
        RibCmd::Routes { filter, reply } => {
            let _ = reply.send(rib.routes(&*filter));
        }
        RibCmd::Counts { reply } => {
            let counts = sessions
                .keys()
                .map(|&id| {
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

/// Moves pending output into the sessions' queues as far as they have room; true if
/// something is left for later.
fn flush<A: AddressFamily>(
    rib: &mut Rib<A>,
    sessions: &HashMap<PeerId, mpsc::Sender<OutBatch<A>>>,
) -> bool {
    let mut left = false;
    for peer in rib.peers_with_output() {
        let Some(tx) = sessions.get(&peer) else {
            continue;
        };
        loop {
            match tx.try_reserve() {
                Ok(permit) => match rib.take_out(peer, BATCH_ROUTES) {
                    Some(batch) => permit.send(batch),
                    None => break,
                },
                Err(mpsc::error::TrySendError::Full(())) => {
                    left = true;
                    break;
                }
                // The session is going away; its PeerDown is on the way.
                Err(mpsc::error::TrySendError::Closed(())) => break,
            }
        }
    }
    left
}
