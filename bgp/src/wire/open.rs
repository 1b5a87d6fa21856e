//! OPEN (RFC 4271 §4.2) with optional parameters (RFC 5492).

use std::net::Ipv4Addr;

use super::capability::Capability;

/// AS_TRANS, put in the 2-octet My AS field when the real AS does not fit (RFC 6793).
pub const AS_TRANS: u16 = 23456;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenMsg {
    pub version: u8,
    /// The 2-octet My AS field as sent (AS_TRANS for large ASNs).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}
