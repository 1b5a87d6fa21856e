//! BGP-4 for vxbgp: wire codec, session state machine, RIB and route reflection.
//!
//! This crate knows nothing of EVPN beyond "an address family with opaque NLRI": the
//! NLRI of MP_REACH/MP_UNREACH are kept as bytes here and turned into routes by an
//! [`af::AddressFamily`] implementation (the `evpn` crate provides L2VPN EVPN).
//!
//! Nothing here may panic on what a peer or a user sends: no indexing, no unwrap.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod af;
pub mod listener;
pub mod peer;
pub mod rib;
pub mod session;
pub mod wire;
