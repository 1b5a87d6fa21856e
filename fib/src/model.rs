//! Plain data: the kernel entries vxbgp owns, and the operations that change them.
//! (SPEC.md "Kernel state the FIB must produce" has the table these follow.)

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const ZERO: Mac = Mac([0; 6]);

    /// Group (multicast/broadcast) addresses are flooded, never learned or
    /// advertised (RFC 7432 §7.2 carries unicast MACs).
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Head-end replication: an all-zero FDB entry on the VNI's vxlan device towards one
/// remote VTEP (`bridge fdb append 00:00:00:00:00:00 dev vxlanN dst VTEP`), from a
/// type-3 route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FloodEntry {
    pub vni: u32,
    pub vtep: IpAddr,
}

/// A remote MAC, from a type-2 route: `self extern_learn` on the vxlan device with
/// dst = VTEP, and `master extern_learn` on the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RemoteMac {
    pub vni: u32,
    pub mac: Mac,
    pub vtep: IpAddr,
}

/// A suppression entry, from a type-2 route with an IP: `ip neigh replace IP lladdr MAC
/// dev BRIDGE nud noarp extern_learn`, so the bridge answers ARP/ND itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SuppressNeigh {
    pub vni: u32,
    pub ip: IpAddr,
    pub mac: Mac,
}

/// One change to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FibOp {
    FloodAdd(FloodEntry),
    FloodDel(FloodEntry),
    /// Add, or move to another VTEP in place (replace).
    MacSet(RemoteMac),
    MacDel(RemoteMac),
    NeighSet(SuppressNeigh),
    NeighDel(SuppressNeigh),
}

impl FibOp {
    pub fn vni(&self) -> u32 {
        match self {
            FibOp::FloodAdd(e) | FibOp::FloodDel(e) => e.vni,
            FibOp::MacSet(m) | FibOp::MacDel(m) => m.vni,
            FibOp::NeighSet(n) | FibOp::NeighDel(n) => n.vni,
        }
    }
}
