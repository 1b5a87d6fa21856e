//! The address-family seam: what the RIB and the sessions need to know of a route
//! without knowing what it means.

use std::fmt::Debug;
use std::hash::Hash;

use bytes::BytesMut;

use crate::wire::PathAttrs;

/// Why a block of NLRI could not be decoded. NLRI carried in MP_REACH/MP_UNREACH
/// cannot be withdrawn route by route once the block is unreadable, so the session
/// resets (RFC 7606 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NlriError {
    /// Offset into the NLRI block where decoding failed.
    pub offset: usize,
    /// What was wrong, for the log and the NOTIFICATION data.
    pub reason: String,
}

impl std::fmt::Display for NlriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad NLRI at offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for NlriError {}

/// One address family (AFI/SAFI) that the RIB can carry.
pub trait AddressFamily: Send + Sync + 'static {
    /// IANA AFI (25 for L2VPN).
    const AFI: u16;
    /// IANA SAFI (70 for EVPN).
    const SAFI: u8;
    /// A route as carried on the wire (the NLRI, with any labels it carries).
    type Nlri: Clone + Debug + PartialEq + Eq + Hash + Send + Sync + 'static;
    /// What identifies a destination in the RIB: two NLRI with the same key are two
    /// paths to the same destination (for EVPN type 2, labels and ESI are not part
    /// of the key, RFC 7432 §7.2).
    type Key: Clone + Debug + PartialEq + Eq + Hash + Ord + Send + Sync + 'static;

    /// Decodes a whole NLRI block (the NLRI field of MP_REACH or MP_UNREACH).
    fn decode_nlri(block: &[u8]) -> Result<Vec<Self::Nlri>, NlriError>;
    /// Appends one NLRI in wire form.
    fn encode_nlri(nlri: &Self::Nlri, out: &mut BytesMut);
    /// Exactly the number of bytes `encode_nlri` appends.
    fn nlri_len(nlri: &Self::Nlri) -> usize;
    /// The RIB key of an NLRI.
    fn key(nlri: &Self::Nlri) -> Self::Key;
    /// A family-specific preference compared before the RFC 4271 decision process;
    /// higher wins. EVPN uses the MAC-mobility sequence number (RFC 7432 §15.2).
    fn preference(_nlri: &Self::Nlri, _attrs: &PathAttrs) -> u32 {
        0
    }
}
