//! The FIB: the only crate of vxbgp that touches the kernel.
//!
//! Best EVPN routes become vxlan FDB and neighbour entries (SPEC.md "Kernel state the
//! FIB must produce"): `model` names the entries, `plan` derives them from routes
//! (pure), and only `netlink` speaks to the kernel.

pub mod discover;
pub mod learn;
pub mod model;
pub mod monitor;
pub mod netlink;
pub mod plan;
pub mod snoop;
pub mod task;
pub mod writer;
