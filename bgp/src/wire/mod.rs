//! BGP-4 messages on the wire (RFC 4271 §4) with RFC 7606 error handling.
//!
//! Decoding frames first and parses each value from its exact sub-slice; it never
//! panics and never allocates more than the input justifies. Encoding appends to a
//! `BytesMut` and cannot fail.

pub mod attr;
pub mod capability;
pub mod error;
pub mod header;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod update;

pub use attr::{
    AsPath, AsSegment, ExtCommunity, MpNextHop, MpReach, MpUnreach, Origin, PathAttrs,
    PmsiTunnel, RawAttr, SegmentKind,
};
pub use capability::{AddPathFamily, Capability, GrFamily};
pub use error::{Action, AttrError, WireError, WireErrorKind};
pub use notification::NotificationMsg;
pub use open::OpenMsg;
pub use route_refresh::RouteRefreshMsg;
pub use update::UpdateMsg;

/// Largest message without the extended-message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;

/// What decoding needs to know about the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeCtx {
    /// Both sides announced the 4-octet AS capability (RFC 6793).
    pub as4: bool,
    /// The peer is internal: LOCAL_PREF is expected, and RFC 7606 treats some
    /// attributes differently for external peers.
    pub ibgp: bool,
}

/// What encoding needs to know about the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodeCtx {
    /// Both sides announced the 4-octet AS capability (RFC 6793).
    pub as4: bool,
}

/// One BGP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(OpenMsg),
    Update(UpdateMsg),
    Notification(NotificationMsg),
    Keepalive,
    RouteRefresh(RouteRefreshMsg),
}

/// A decoded value together with the non-fatal problems found in it (RFC 7606).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<T> {
    pub value: T,
    pub errors: Vec<AttrError>,
}

impl<T> Decoded<T> {
    /// The strongest action any problem asks for (RFC 7606 §2: the most severe wins).
    pub fn verdict(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }
}
