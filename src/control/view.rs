//! The JSON schema of `show ... --json` (documented in README.md; keep it stable:
//! add fields, never rename or remove them).

use std::net::{IpAddr, Ipv4Addr};

use bgp::rib::{RibStats, RouteSnapshot};
use bgp::wire::Origin;
use evpn::{classify, decode_pmsi, EvpnExtCommunity, EvpnRoute, L2vpnEvpn, PmsiView};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct RoutesView {
    pub routes: Vec<RouteView>,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    /// FRR-style prefix, e.g. `[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[198.18.0.2]`.
    pub prefix: String,
    #[serde(rename = "type")]
    pub route_type: u8,
    pub rd: Option<String>,
    pub eth_tag: Option<u32>,
    pub mac: Option<String>,
    pub ip: Option<IpAddr>,
    /// Type 2: label 1; type 3: the PMSI label of the best path.
    pub vni: Option<u32>,
    /// Type 3: the originating router's address.
    pub originator: Option<IpAddr>,
    /// Type 2: "frozen" when duplicate address detection froze the MAC on this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<&'static str>,
    pub paths: Vec<PathView>,
}

#[derive(Debug, Serialize)]
pub struct PathView {
    pub best: bool,
    /// Address of the peer it came from, or "local".
    pub peer: String,
    pub next_hop: IpAddr,
    pub origin: Option<&'static str>,
    pub as_path: String,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub route_targets: Vec<String>,
    /// "vxlan" for tunnel type 8, else the number.
    pub encapsulation: Option<String>,
    pub mac_mobility: Option<MobilityView>,
    pub router_mac: Option<String>,
    pub default_gateway: bool,
    pub esi: Option<String>,
    /// Label fields read as VNIs (type 2).
    pub labels: Vec<u32>,
    pub pmsi: Option<PmsiView>,
    /// Every extended community, FRR-style ("RT:65001:42", "ET:8", "MM:1").
    pub ext_communities: Vec<String>,
    /// Why this path is not the best one.
    pub reject_reason: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct MobilityView {
    pub seq: u32,
    pub sticky: bool,
}

fn origin_str(o: Option<Origin>) -> Option<&'static str> {
    o.map(|o| match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    })
}

/// The VNI a route belongs to, read from its best path.
pub fn route_vni(route: &EvpnRoute, attrs: &bgp::wire::PathAttrs) -> Option<u32> {
    match route {
        EvpnRoute::MacIp(r) => Some(r.label1.vni().get()),
        _ => attrs.pmsi_tunnel.as_ref().map(|p| decode_pmsi(p).vni.get()),
    }
}

pub fn route_view(snap: &RouteSnapshot<L2vpnEvpn>) -> Option<RouteView> {
    let best = snap.paths.first()?;
    let r = &best.nlri;
    let (mac, ip, originator) = match r {
        EvpnRoute::MacIp(m) => (Some(m.mac.to_string()), m.ip, None),
        EvpnRoute::Imet(i) => (None, None, Some(i.originator)),
        _ => (None, None, None),
    };
    Some(RouteView {
        prefix: r.to_string(),
        route_type: r.route_type(),
        rd: r.rd().map(|rd| rd.to_string()),
        eth_tag: r.eth_tag(),
        mac,
        ip,
        vni: route_vni(r, &best.attrs.attrs),
        originator,
        duplicate: None,
        paths: snap.paths.iter().map(path_view).collect(),
    })
}

fn path_view(p: &bgp::rib::PathSnapshot<L2vpnEvpn>) -> PathView {
    let a = &p.attrs.attrs;
    let mut v = PathView {
        best: p.best,
        peer: p
            .peer_addr
            .map_or_else(|| "local".to_string(), |a| a.to_string()),
        next_hop: p.attrs.next_hop,
        origin: origin_str(a.origin),
        as_path: a
            .as_path
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        local_pref: a.local_pref,
        med: a.med,
        originator_id: a.originator_id,
        cluster_list: a.cluster_list.clone().unwrap_or_default(),
        route_targets: Vec::new(),
        encapsulation: None,
        mac_mobility: None,
        router_mac: None,
        default_gateway: false,
        esi: None,
        labels: Vec::new(),
        pmsi: a.pmsi_tunnel.as_ref().map(decode_pmsi),
        ext_communities: Vec::new(),
        reject_reason: p.reject.map(|r| r.as_str()),
    };
    if let EvpnRoute::MacIp(m) = &p.nlri {
        v.esi = Some(m.esi.to_string());
        v.labels.push(m.label1.vni().get());
        if let Some(l2) = m.label2 {
            v.labels.push(l2.vni().get());
        }
    }
    for c in a.ext_communities.iter().flatten() {
        let typed = classify(c);
        v.ext_communities.push(typed.to_string());
        match typed {
            EvpnExtCommunity::RouteTarget(rt) => v.route_targets.push(rt.to_string()),
            EvpnExtCommunity::Encapsulation { tunnel_type } => {
                v.encapsulation = Some(if tunnel_type == evpn::TUNNEL_TYPE_VXLAN {
                    "vxlan".to_string()
                } else {
                    tunnel_type.to_string()
                });
            }
            EvpnExtCommunity::MacMobility { sticky, seq } => {
                v.mac_mobility = Some(MobilityView { seq, sticky });
            }
            EvpnExtCommunity::RouterMac(m) => v.router_mac = Some(m.to_string()),
            EvpnExtCommunity::DefaultGateway => v.default_gateway = true,
            _ => {}
        }
    }
    v
}

#[derive(Debug, Serialize)]
pub struct NeighborsView {
    pub local: LocalView,
    pub rib: RibStats,
    pub neighbors: Vec<NeighborView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LocalView {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub cluster_id: Ipv4Addr,
    pub route_reflector: bool,
    pub vtep_ip: IpAddr,
    pub port: u16,
}

#[derive(Debug, Serialize)]
pub struct NeighborView {
    pub address: IpAddr,
    pub port: u16,
    /// The configured AS, or the one the peer announced (listen ranges).
    pub remote_as: Option<u32>,
    /// "ibgp", "ibgp-client" (our route-reflector client) or "ebgp".
    pub kind: Option<&'static str>,
    pub description: Option<String>,
    pub passive: bool,
    /// Admitted through a listen range.
    pub dynamic: bool,
    /// Idle, Connect, Active, OpenSent, OpenConfirm or Established.
    pub state: &'static str,
    pub uptime_secs: Option<u64>,
    pub remote_id: Option<Ipv4Addr>,
    pub hold_time: Option<u16>,
    pub prefixes_received: usize,
    pub prefixes_sent: usize,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    pub established_transitions: u32,
    pub last_error: Option<String>,
}

pub fn kind_str(k: bgp::peer::PeerKind) -> &'static str {
    match k {
        bgp::peer::PeerKind::Ibgp => "ibgp",
        bgp::peer::PeerKind::IbgpClient => "ibgp-client",
        bgp::peer::PeerKind::Ebgp => "ebgp",
    }
}
