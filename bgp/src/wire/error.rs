//! Typed decode errors, each carrying where it happened and what RFC 7606 says to do.

/// RFC 7606 approaches, least to most severe; the verdict of a message is the max.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// RFC 7606 §2 "attribute discard": drop the attribute, keep the route.
    AttributeDiscard,
    /// RFC 7606 §2 "treat-as-withdraw": every NLRI of the UPDATE is withdrawn.
    TreatAsWithdraw,
    /// RFC 7606 §2 "AFI/SAFI disable".
    AfiSafiDisable,
    /// RFC 4271 §6: NOTIFICATION and close.
    SessionReset,
}

/// What was wrong with a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WireErrorKind {
    /// The input ended before the value did.
    Truncated,
    /// The value was followed by this many unexpected bytes.
    TrailingBytes(usize),
    /// A length field or a fixed-size value had the wrong length.
    BadLength { what: &'static str, got: usize },
    /// A field had a value the RFC does not allow.
    BadValue { what: &'static str, got: u64 },
    /// The attribute flags do not match the attribute type (RFC 7606 §3 c).
    BadFlags { flags: u8 },
    /// The same attribute appeared twice (RFC 7606 §3 g).
    Duplicate,
    /// A well-known mandatory attribute is missing (RFC 7606 §3 d).
    Missing { code: u8 },
}

/// A located decode error: `rest` is how many bytes were left when it failed, so the
/// offset is `frame.len() - rest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub kind: WireErrorKind,
    pub rest: usize,
}

/// A problem with one path attribute and the RFC 7606 action it calls for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrError {
    /// Attribute type code.
    pub code: u8,
    /// Attribute flags as received.
    pub flags: u8,
    /// Offset of the attribute in the path-attribute block.
    pub offset: usize,
    pub kind: WireErrorKind,
    pub action: Action,
}
