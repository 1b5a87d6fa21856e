//! What the RIB hands to sessions: UPDATEs encoded once per update group and shared
//! by reference among its members, each piece addressed to a set of them.

use std::sync::Arc;

use bytes::Bytes;

use crate::af::AddressFamily;
use crate::peer::PeerId;
use crate::rib::RouteAttrs;

/// Which members of a group a piece is for.
///
/// A reflected route is never sent back to the peer it came from (split horizon), so
/// the routes of one source go to "everyone but the source"; the rare withdrawal that
/// only the new source of a route needs (it held another peer's path that it must now
/// drop) goes to that peer alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    All,
    AllBut(PeerId),
    Only(PeerId),
}

impl Audience {
    pub fn admits(self, peer: PeerId) -> bool {
        match self {
            Audience::All => true,
            Audience::AllBut(p) => p != peer,
            Audience::Only(p) => p == peer,
        }
    }
}

/// Routes with one attribute set (an advertisement) or none (a withdrawal), before
/// encoding.
#[derive(Debug)]
pub(crate) struct OutPiece<A: AddressFamily> {
    pub audience: Audience,
    /// `None`: the NLRI are withdrawn.
    pub attrs: Option<Arc<RouteAttrs>>,
    pub nlri: Vec<A::Nlri>,
}

/// Whole UPDATE messages for one audience.
#[derive(Debug)]
pub struct EncodedPiece {
    pub audience: Audience,
    pub bytes: Bytes,
    pub messages: u32,
    /// Routes advertised or withdrawn in these messages.
    pub routes: u32,
}

/// One flush of an update group (or one step of a peer's initial table), encoded.
#[derive(Debug, Default)]
pub struct Encoded {
    pub pieces: Vec<EncodedPiece>,
}

impl Encoded {
    /// The pieces `peer` is to be sent.
    pub fn for_peer(&self, peer: PeerId) -> impl Iterator<Item = &EncodedPiece> {
        self.pieces.iter().filter(move |p| p.audience.admits(peer))
    }

    /// Bytes of this batch that `peer` is sent.
    pub fn bytes_for(&self, peer: PeerId) -> usize {
        self.for_peer(peer).map(|p| p.bytes.len()).sum()
    }
}

/// Where the RIB puts what one peer must be sent: in the daemon, the session's queue
/// towards its socket writer; in tests, a buffer.
pub trait PeerSink: Send + std::fmt::Debug {
    /// Bytes delivered and not yet written to the peer's socket.
    fn queued(&self) -> usize;
    /// Queues `batch`, of which `bytes` are for this peer. False if the peer is gone.
    fn deliver(&mut self, batch: Arc<Encoded>, bytes: usize) -> bool;
    /// The peer passed its prefix limit: its session must close with Cease / Maximum
    /// Number of Prefixes Reached (RFC 4486), `limit` in the data.
    fn over_limit(&mut self, limit: usize);
}
