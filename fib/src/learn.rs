//! What lives on this host: MACs from the bridge FDB (entries on the bridge's local
//! ports), MAC/IP pairs from neighbour entries on the bridge. Reads neighbour
//! messages (from dumps at start, then events) into plain values.

use std::net::IpAddr;

use futures_util::stream::TryStreamExt;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;

use crate::model::Mac;

/// One neighbour message, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighView {
    /// An FDB entry (AF_BRIDGE) on port `ifindex`.
    Fdb {
        ifindex: u32,
        mac: Mac,
        dst: Option<IpAddr>,
        ext_learned: bool,
        own: bool,
        permanent: bool,
        /// `bridge fdb add ... static` (NUD_NOARP): a static MAC, sticky when local
        /// (RFC 7432 §15.2).
        static_entry: bool,
    },
    /// An IP neighbour on device `ifindex`.
    Ip {
        ifindex: u32,
        ip: IpAddr,
        mac: Option<Mac>,
        ext_learned: bool,
        usable: bool,
    },
}

pub fn neigh_view(m: &NeighbourMessage) -> Option<NeighView> {
    let mut mac = None;
    let mut dst = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::LinkLayerAddress(b) => {
                mac = <[u8; 6]>::try_from(b.as_slice()).ok().map(Mac);
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                dst = Some(IpAddr::V4(*a));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                dst = Some(IpAddr::V6(*a));
            }
            // AF_BRIDGE (vxlan FDB) messages: the packet crate parses NDA_DST by the
            // message's family, so the remote VTEP arrives as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                dst = ip_of_bytes(b);
            }
            _ => {}
        }
    }
    let ext_learned = m.header.flags.contains(NeighbourFlags::ExtLearned);
    match m.header.family {
        AddressFamily::Bridge => Some(NeighView::Fdb {
            ifindex: m.header.ifindex,
            mac: mac?,
            dst,
            ext_learned,
            own: m.header.flags.contains(NeighbourFlags::Own),
            permanent: m.header.state == NeighbourState::Permanent,
            static_entry: m.header.state == NeighbourState::Noarp,
        }),
        AddressFamily::Inet | AddressFamily::Inet6 => {
            let usable = matches!(
                m.header.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
                    | NeighbourState::Noarp
            );
            Some(NeighView::Ip {
                ifindex: m.header.ifindex,
                ip: dst?,
                mac,
                ext_learned,
                usable,
            })
        }
        _ => None,
    }
}

/// An IPv4 or IPv6 address from its 4 or 16 octets.
fn ip_of_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::from(a));
    }
    <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
}

/// The bridge FDB and the IP neighbours, as they are now.
pub async fn dump_neighbours(handle: &rtnetlink::Handle) -> Result<Vec<NeighView>, String> {
    let mut out = Vec::new();
    for family in [
        AddressFamily::Bridge,
        AddressFamily::Inet,
        AddressFamily::Inet6,
    ] {
        let mut s = handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| format!("neighbour dump: {e}"))?
        {
            out.extend(neigh_view(&m));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_fdb_entry_keeps_its_remote_vtep() {
        // An AF_BRIDGE message as the kernel dumps a vxlan FDB entry: NDA_DST comes
        // back from the packet crate as raw bytes.
        let mut m = NeighbourMessage::default();
        m.header.family = AddressFamily::Bridge;
        m.header.ifindex = 6;
        m.header.flags = NeighbourFlags::Own | NeighbourFlags::ExtLearned;
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 1]));
        m.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Other(
                vec![198, 19, 0, 3],
            )));
        let Some(NeighView::Fdb {
            dst,
            own,
            ext_learned,
            ..
        }) = neigh_view(&m)
        else {
            panic!("not an FDB entry");
        };
        assert_eq!(dst, Some("198.19.0.3".parse().unwrap()));
        assert!(own && ext_learned);
        let v6: std::net::Ipv6Addr = "2001:db8::3".parse().unwrap();
        m.attributes[1] =
            NeighbourAttribute::Destination(NeighbourAddress::Other(v6.octets().to_vec()));
        let Some(NeighView::Fdb { dst, .. }) = neigh_view(&m) else {
            panic!("not an FDB entry");
        };
        assert_eq!(dst, Some(IpAddr::V6(v6)));
    }
}
