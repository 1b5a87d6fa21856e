//! Accepting connections, and the table of sessions they are handed to.
//!
//! A connection from a configured neighbour goes to its session; one from an address
//! inside a listen range (`--listen-range`) gets a new passive, dynamic session (a
//! route reflector's clients need no per-client configuration); anything else is
//! refused. The table is shared with the control socket behind a mutex that is only
//! ever held for a lookup, never across an await.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::af::AddressFamily;
use crate::peer::{PeerId, Prefix};
use crate::rib::task::RibCmd;
use crate::session::{self, NeighborStatus, SessionCmd, SessionConfig, SessionHandle};

/// A listen range and the configuration its dynamic peers get.
#[derive(Clone, Debug)]
pub struct ListenRange {
    pub prefix: Prefix,
    /// Template: `id`, `addr`, `passive` and `dynamic` are filled per peer.
    pub template: SessionConfig,
}

pub struct PeerTable<A: AddressFamily> {
    sessions: HashMap<IpAddr, SessionHandle>,
    ranges: Vec<ListenRange>,
    next_id: PeerId,
    rib_tx: mpsc::Sender<RibCmd<A>>,
}

pub type SharedPeerTable<A> = Arc<Mutex<PeerTable<A>>>;

/// One row of `show neighbors`.
#[derive(Clone, Debug)]
pub struct NeighborRow {
    pub config: SessionConfig,
    pub status: NeighborStatus,
}

impl<A: AddressFamily> PeerTable<A> {
    pub fn new(rib_tx: mpsc::Sender<RibCmd<A>>) -> Self {
        PeerTable {
            sessions: HashMap::new(),
            ranges: Vec::new(),
            next_id: 1,
            rib_tx,
        }
    }

    fn alloc_id(&mut self) -> PeerId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts the session of a configured neighbour; its `id` is assigned here.
    pub fn add_neighbor(&mut self, mut cfg: SessionConfig) -> PeerId {
        cfg.id = self.alloc_id();
        let id = cfg.id;
        let handle = session::spawn::<A>(cfg.clone(), self.rib_tx.clone());
        self.sessions.insert(cfg.addr, handle);
        id
    }

    pub fn add_range(&mut self, range: ListenRange) {
        self.ranges.push(range);
    }

    /// Where a connection from `ip` goes, starting a dynamic session if a range
    /// admits it.
    pub fn admit(&mut self, ip: IpAddr) -> Option<mpsc::Sender<SessionCmd>> {
        if let Some(h) = self.sessions.get(&ip) {
            if !h.is_finished() {
                return Some(h.cmd_tx.clone());
            }
            if !h.config.dynamic {
                return None; // a configured session never ends on its own
            }
            self.sessions.remove(&ip);
        }
        let range = self.ranges.iter().find(|r| r.prefix.contains(ip))?.clone();
        let mut cfg = range.template;
        cfg.id = self.alloc_id();
        cfg.addr = ip;
        cfg.passive = true;
        cfg.dynamic = true;
        let handle = session::spawn::<A>(cfg, self.rib_tx.clone());
        let tx = handle.cmd_tx.clone();
        self.sessions.insert(ip, handle);
        Some(tx)
    }

    /// Every session, configured ones and live dynamic ones, by address.
    pub fn rows(&mut self) -> Vec<NeighborRow> {
        self.sessions
            .retain(|_, h| !(h.config.dynamic && h.is_finished()));
        let mut rows: Vec<NeighborRow> = self
            .sessions
            .values()
            .map(|h| NeighborRow {
                config: h.config.clone(),
                status: h.status.borrow().clone(),
            })
            .collect();
        rows.sort_by_key(|r| r.config.addr);
        rows
    }

    /// Takes every session out, for an orderly shutdown.
    pub fn take_all(&mut self) -> Vec<SessionHandle> {
        self.sessions.drain().map(|(_, h)| h).collect()
    }
}

/// IPv4 peers reach a dual-stack socket as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Connections the kernel queues before they are accepted: room for a fleet that
/// connects at once (a reflector's thousand clients after it restarts).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the BGP port on every address (dual stack where the kernel has IPv6).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    match listen(SocketAddr::from(([0u16; 8], port))) {
        Ok(l) => Ok(l),
        Err(_) => listen(SocketAddr::from(([0, 0, 0, 0], port))),
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts forever, handing each connection to its session.
pub async fn run<A: AddressFamily>(listener: TcpListener, table: SharedPeerTable<A>) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = canonical(addr.ip());
        let tx = match table.lock() {
            Ok(mut t) => t.admit(ip),
            Err(_) => None,
        };
        match tx {
            Some(tx) => {
                if tx.try_send(SessionCmd::Accepted(stream)).is_err() {
                    tracing::warn!(peer = %ip, "session busy; connection dropped");
                }
            }
            None => {
                tracing::warn!(peer = %ip, "connection refused: not a neighbour and in no listen range");
            }
        }
    }
}
