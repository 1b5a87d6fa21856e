//! Capabilities advertised in OPEN (RFC 5492).

/// Per-family entry of the graceful-restart capability (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    pub flags: u8,
}

/// Per-family entry of the ADD-PATH capability (RFC 7911 §4); send_receive is 1
/// (receive), 2 (send) or 3 (both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddPathFamily {
    pub afi: u16,
    pub safi: u8,
    pub send_receive: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    /// Code 1 (RFC 4760).
    MultiProtocol { afi: u16, safi: u8 },
    /// Code 2 (RFC 2918).
    RouteRefresh,
    /// Code 64 (RFC 4724): restart flags (upper 4 bits of the first octet), restart
    /// time (12 bits) and families.
    GracefulRestart { flags: u8, time: u16, families: Vec<GrFamily> },
    /// Code 65 (RFC 6793).
    FourOctetAs(u32),
    /// Code 69 (RFC 7911).
    AddPath(Vec<AddPathFamily>),
    /// Anything else, kept as received.
    Unknown { code: u8, value: Box<[u8]> },
}
