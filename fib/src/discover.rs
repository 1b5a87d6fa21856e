//! VNI discovery: every vxlan device that is a bridge port is a VNI. Reads link
//! messages (from a dump at start, then from link events) into [`VniDevice`] values,
//! and says what is wrong with a device the overlay cannot use.

use std::collections::HashMap;
use std::net::IpAddr;

use futures_util::stream::TryStreamExt;
use netlink_packet_core::Nla;
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::AddressFamily;
use serde::Serialize;

/// A vxlan device and the bridge it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VniDevice {
    pub vni: u32,
    pub name: String,
    pub ifindex: u32,
    /// The bridge it is a port of; `None` if it is no bridge port (then it is no VNI).
    pub bridge_ifindex: Option<u32>,
    /// Our VTEP address for this VNI (`local`).
    pub local: Option<IpAddr>,
    /// A multicast group: the overlay must be unicast only.
    pub group: Option<IpAddr>,
    /// The vxlan device learns remote MACs from data packets (`learning`).
    pub learning: bool,
    pub dstport: u16,
    pub up: bool,
    /// Bridge-port `learning` flag.
    pub port_learning: Option<bool>,
    /// Bridge-port `neigh_suppress` flag.
    pub neigh_suppress: Option<bool>,
}

/// Any link: name, master, MAC and whether it is a vxlan device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkView {
    pub ifindex: u32,
    pub name: String,
    pub master: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub is_bridge: bool,
    pub vxlan: Option<VniDevice>,
}

/// Reads one link message.
pub fn link_view(msg: &LinkMessage) -> LinkView {
    let mut v = LinkView {
        ifindex: msg.header.index,
        name: String::new(),
        master: None,
        mac: None,
        is_bridge: false,
        vxlan: None,
    };
    let mut vx: Option<VniDevice> = None;
    let mut port: Vec<InfoBridgePort> = Vec::new();
    for a in &msg.attributes {
        match a {
            LinkAttribute::IfName(n) => v.name = n.clone(),
            LinkAttribute::Controller(m) => v.master = Some(*m),
            LinkAttribute::Address(b) => v.mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(InfoKind::Bridge) => v.is_bridge = true,
                        LinkInfo::Data(InfoData::Vxlan(data)) => vx = Some(vxlan_data(data)),
                        LinkInfo::PortData(InfoPortData::BridgePort(p)) => port = p.clone(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(mut d) = vx {
        d.name = v.name.clone();
        d.ifindex = v.ifindex;
        d.bridge_ifindex = v.master;
        d.up = msg.header.flags.contains(LinkFlags::Up);
        for p in port {
            match p {
                InfoBridgePort::Learning(b) => d.port_learning = Some(b),
                InfoBridgePort::NeighSupress(b) => d.neigh_suppress = Some(b),
                _ => {}
            }
        }
        v.vxlan = Some(d);
    }
    v
}

/// Whether `msg` is a bridge-port notification (AF_BRIDGE: port state or port flags
/// changed, port added to or removed from a bridge). Those carry no IFLA_LINKINFO, so
/// they must never replace what an AF_UNSPEC link message said about the link.
pub fn is_bridge_port_msg(msg: &LinkMessage) -> bool {
    msg.header.interface_family == AddressFamily::Bridge
}

/// Applies a bridge-port notification (AF_BRIDGE RTM_NEWLINK) to a known link: only
/// the port flags it carries (IFLA_PROTINFO) change.
pub fn apply_bridge_port(v: &mut LinkView, msg: &LinkMessage) {
    const IFLA_BRPORT_LEARNING: u16 = 8;
    const IFLA_BRPORT_NEIGH_SUPPRESS: u16 = 32;
    let Some(d) = v.vxlan.as_mut() else { return };
    for a in &msg.attributes {
        let LinkAttribute::ProtoInfoBridge(infos) = a else {
            continue;
        };
        for i in infos {
            let LinkProtoInfoBridge::Other(nla) = i else {
                continue;
            };
            let mut value = vec![0u8; nla.value_len()];
            nla.emit_value(&mut value);
            let Some(&b) = value.first() else { continue };
            match nla.kind() {
                IFLA_BRPORT_LEARNING => d.port_learning = Some(b != 0),
                IFLA_BRPORT_NEIGH_SUPPRESS => d.neigh_suppress = Some(b != 0),
                _ => {}
            }
        }
    }
}

fn vxlan_data(data: &[InfoVxlan]) -> VniDevice {
    let mut d = VniDevice {
        vni: 0,
        name: String::new(),
        ifindex: 0,
        bridge_ifindex: None,
        local: None,
        group: None,
        learning: true,
        dstport: 4789,
        up: false,
        port_learning: None,
        neigh_suppress: None,
    };
    for x in data {
        match x {
            InfoVxlan::Id(id) => d.vni = *id,
            InfoVxlan::Local(a) => d.local = Some(IpAddr::V4(*a)),
            InfoVxlan::Local6(a) => d.local = Some(IpAddr::V6(*a)),
            InfoVxlan::Group(a) if !a.is_unspecified() => d.group = Some(IpAddr::V4(*a)),
            InfoVxlan::Group6(a) if !a.is_unspecified() => d.group = Some(IpAddr::V6(*a)),
            InfoVxlan::Learning(b) => d.learning = *b,
            InfoVxlan::Port(p) => d.dstport = *p,
            _ => {}
        }
    }
    d
}

impl VniDevice {
    /// What keeps this device from working as a unicast EVPN VTEP, in words that say
    /// what to change. Empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let n = &self.name;
        if self.bridge_ifindex.is_none() {
            p.push(format!(
                "{n} is not a bridge port: `ip link set {n} master <bridge>`"
            ));
        }
        if self.local.is_none() {
            p.push(format!(
                "{n} has no local address: recreate it with `local <vtep-ip>` (it is the next hop others send to)"
            ));
        }
        if let Some(g) = self.group {
            p.push(format!(
                "{n} floods to multicast group {g}: recreate it without `group` (vxbgp replicates over unicast)"
            ));
        }
        if self.learning {
            p.push(format!(
                "{n} learns from data packets: set `ip link set {n} type vxlan nolearning`"
            ));
        }
        if self.port_learning == Some(true) {
            p.push(format!(
                "bridge port {n} has learning on: `bridge link set dev {n} learning off` (or run with --fix-ports)"
            ));
        }
        if self.neigh_suppress == Some(false) {
            p.push(format!(
                "bridge port {n} has neigh_suppress off, so ARP/ND floods the underlay: \
                 `bridge link set dev {n} neigh_suppress on` (or run with --fix-ports)"
            ));
        }
        p
    }
}

/// Every link, by ifindex.
pub async fn dump_links(handle: &rtnetlink::Handle) -> Result<HashMap<u32, LinkView>, String> {
    let mut links = HashMap::new();
    let mut s = handle.link().get().execute();
    while let Some(msg) = s.try_next().await.map_err(|e| format!("link dump: {e}"))? {
        let v = link_view(&msg);
        links.insert(v.ifindex, v);
    }
    Ok(links)
}

/// The VNIs among `links`, by VNI.
pub fn vnis(links: &HashMap<u32, LinkView>) -> HashMap<u32, VniDevice> {
    links
        .values()
        .filter_map(|l| l.vxlan.clone())
        .filter(|d| d.bridge_ifindex.is_some() && d.vni != 0)
        .map(|d| (d.vni, d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::DefaultNla;

    fn vxlan_view() -> LinkView {
        let mut d = vxlan_data(&[InfoVxlan::Id(42), InfoVxlan::Learning(false)]);
        d.name = "vxlan0".into();
        d.ifindex = 4;
        d.bridge_ifindex = Some(3);
        d.port_learning = Some(false);
        d.neigh_suppress = Some(true);
        LinkView {
            ifindex: 4,
            name: "vxlan0".into(),
            master: Some(3),
            mac: None,
            is_bridge: false,
            vxlan: Some(d),
        }
    }

    #[test]
    fn bridge_port_notification_keeps_the_vni_and_updates_port_flags() {
        // What the kernel sends when the port enters forwarding state or its flags
        // change: AF_BRIDGE, no IFLA_LINKINFO.
        let mut msg = LinkMessage::default();
        msg.header.interface_family = AddressFamily::Bridge;
        msg.header.index = 4;
        msg.attributes.push(LinkAttribute::IfName("vxlan0".into()));
        msg.attributes.push(LinkAttribute::Controller(3));
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(32, vec![0])),
        ]));
        assert!(is_bridge_port_msg(&msg));
        let mut links = HashMap::from([(4, vxlan_view())]);
        apply_bridge_port(links.get_mut(&4).unwrap(), &msg);
        let vnis = vnis(&links);
        assert_eq!(vnis[&42].neigh_suppress, Some(false));
        assert_eq!(vnis[&42].port_learning, Some(false));
        assert!(!is_bridge_port_msg(&LinkMessage::default()));
    }
}
