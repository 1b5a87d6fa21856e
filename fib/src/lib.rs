//! The FIB: the only crate of vxbgp that touches the kernel.
//!
//! It turns best EVPN routes into vxlan FDB and neighbour entries over rtnetlink and
//! learns local MACs from the kernel. It is filled by the host-agent issue; the speaker
//! (route reflector, static origination) runs without it.
