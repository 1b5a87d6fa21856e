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

impl WireError {
    /// An error of `kind` with `rest` bytes left.
    pub fn new(kind: WireErrorKind, rest: usize) -> Self {
        WireError { kind, rest }
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for WireError {
    fn from_error_kind(input: &'a [u8], kind: nom::error::ErrorKind) -> Self {
        let kind = match kind {
            nom::error::ErrorKind::Eof if !input.is_empty() => {
                WireErrorKind::TrailingBytes(input.len())
            }
            _ => WireErrorKind::Truncated,
        };
        WireError {
            kind,
            rest: input.len(),
        }
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

impl std::fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireErrorKind::Truncated => write!(f, "truncated"),
            WireErrorKind::TrailingBytes(n) => write!(f, "{n} trailing bytes"),
            WireErrorKind::BadLength { what, got } => write!(f, "bad {what} length {got}"),
            WireErrorKind::BadValue { what, got } => write!(f, "bad {what} value {got}"),
            WireErrorKind::BadFlags { flags } => write!(f, "bad flags {flags:#04x}"),
            WireErrorKind::Duplicate => write!(f, "duplicate"),
            WireErrorKind::Missing { code } => write!(f, "missing attribute {code}"),
        }
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes left)", self.kind, self.rest)
    }
}

impl std::error::Error for WireError {}

impl std::fmt::Display for AttrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "attribute {} (flags {:#04x}) at offset {}: {} -> {:?}",
            self.code, self.flags, self.offset, self.kind, self.action
        )
    }
}
