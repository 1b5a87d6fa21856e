//! UPDATE (RFC 4271 §4.3).

use bytes::Bytes;

use super::attr::{MpReach, MpUnreach, PathAttrs};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateMsg {
    /// IPv4 unicast withdrawn routes, kept as bytes (vxbgp does not carry IPv4 unicast).
    pub withdrawn: Bytes,
    pub attrs: PathAttrs,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 unicast NLRI, kept as bytes.
    pub nlri: Bytes,
}
