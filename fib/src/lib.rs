//! The FIB: the only crate of vxbgp that touches the kernel.
//!
//! Best EVPN routes become vxlan FDB and neighbour entries (SPEC.md "Kernel state the
//! FIB must produce"): `model` names the entries, `plan` derives them from routes
//! (pure), and only `netlink` speaks to the kernel. Nothing here may panic on what the
//! kernel or a peer sends: no indexing, no unwrap.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

pub mod dad;
pub mod discover;
pub mod floor;
pub mod kernel_writer;
pub mod learn;
pub mod learner;
pub mod local;
pub mod model;
pub mod monitor;
pub mod ne;
pub mod netlink;
pub mod plan;
pub mod snoop;
pub mod task;
pub mod writer;
