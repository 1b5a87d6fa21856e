//! Routes the user originates (`vxbgp route add`, `[[route]]` in the config file),
//! with the RFC 8365 defaults: RD `router-id:N`, RT `ASN:VNI`, encapsulation VXLAN.

use std::net::{IpAddr, Ipv4Addr};

use bgp::rib::RouteAttrs;
use evpn::{originate, EvpnRoute, MacAddr, RouteDistinguisher, RouteTarget, Vni};

use crate::control::protocol::{RouteKind, RouteSpec};

/// What origination needs to know about the speaker.
#[derive(Clone, Debug)]
pub struct OriginDefaults {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub vtep_ip: IpAddr,
}

/// RFC 8365 §5.1.2: the RD is `router-id:N` with N unique per EVI on this router;
/// the VNI's low 16 bits serve as N.
pub fn default_rd(router_id: Ipv4Addr, vni: Vni) -> RouteDistinguisher {
    originate::auto_rd(router_id, (vni.get() & 0xffff) as u16)
}

/// Builds the route and its attributes, or says what is wrong with the request.
pub fn build(spec: &RouteSpec, d: &OriginDefaults) -> Result<(EvpnRoute, RouteAttrs), String> {
    let vni = Vni::new(spec.vni)
        .ok_or_else(|| format!("VNI {} is out of range (1..=16777215)", spec.vni))?;
    if vni.get() == 0 {
        return Err("VNI 0 is not usable".into());
    }
    let rd = match &spec.rd {
        Some(s) => s
            .parse::<RouteDistinguisher>()
            .map_err(|e| format!("bad route distinguisher '{s}': {e}"))?,
        None => default_rd(d.router_id, vni),
    };
    let rts = if spec.rts.is_empty() {
        vec![originate::auto_rt(d.asn, vni)]
    } else {
        spec.rts
            .iter()
            .map(|s| {
                s.parse::<RouteTarget>()
                    .map_err(|e| format!("bad route target '{s}': {e}"))
            })
            .collect::<Result<_, _>>()?
    };
    let next_hop = spec.next_hop.unwrap_or(d.vtep_ip);
    let (route, attrs) = match spec.kind {
        RouteKind::MacIp => {
            let mac = spec.mac.as_deref().ok_or("a mac-ip route needs --mac")?;
            let mac: MacAddr = mac
                .parse()
                .map_err(|e| format!("bad MAC address '{mac}': {e}"))?;
            let mobility = spec
                .mobility_seq
                .map(|s| (s, spec.sticky))
                .or(spec.sticky.then_some((0, true)));
            originate::mac_ip(rd, vni, mac, spec.ip, &rts, mobility)
        }
        RouteKind::Multicast => {
            if spec.mac.is_some() || spec.ip.is_some() {
                return Err("a multicast route takes no --mac or --ip".into());
            }
            originate::imet(rd, vni, next_hop, &rts)
        }
    };
    Ok((route, RouteAttrs { attrs, next_hop }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> OriginDefaults {
        OriginDefaults {
            asn: 65001,
            router_id: Ipv4Addr::new(198, 19, 0, 1),
            vtep_ip: "198.19.0.1".parse().unwrap(),
        }
    }

    fn spec(kind: RouteKind) -> RouteSpec {
        RouteSpec {
            kind,
            vni: 42,
            mac: None,
            ip: None,
            rd: None,
            rts: vec![],
            next_hop: None,
            mobility_seq: None,
            sticky: false,
        }
    }

    #[test]
    fn rfc8365_defaults_rd_router_id_n_and_rt_asn_vni() {
        let mut s = spec(RouteKind::MacIp);
        s.mac = Some("02:00:00:00:00:01".into());
        s.ip = Some("198.18.0.2".parse().unwrap());
        let (route, attrs) = build(&s, &defaults()).unwrap();
        assert_eq!(route.rd().unwrap().to_string(), "198.19.0.1:42");
        assert_eq!(
            route.to_string(),
            "[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[198.18.0.2]"
        );
        let rts: Vec<String> = attrs
            .attrs
            .ext_communities
            .iter()
            .flatten()
            .filter_map(RouteTarget::from_ext_community)
            .map(|r| r.to_string())
            .collect();
        assert_eq!(rts, vec!["65001:42"]);
        assert_eq!(attrs.next_hop, defaults().vtep_ip);
    }

    #[test]
    fn multicast_route_carries_pmsi_to_the_next_hop() {
        let mut s = spec(RouteKind::Multicast);
        s.next_hop = Some("198.19.0.9".parse().unwrap());
        let (route, attrs) = build(&s, &defaults()).unwrap();
        assert_eq!(route.route_type(), 3);
        let pmsi = evpn::decode_pmsi(attrs.attrs.pmsi_tunnel.as_ref().unwrap());
        assert_eq!(pmsi.endpoint, Some("198.19.0.9".parse().unwrap()));
        assert_eq!(pmsi.vni.get(), 42);
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let mut s = spec(RouteKind::MacIp);
        assert!(build(&s, &defaults()).unwrap_err().contains("--mac"));
        s.mac = Some("02:00:00:00:00".into());
        assert!(build(&s, &defaults()).unwrap_err().contains("bad MAC"));
        s.mac = Some("02:00:00:00:00:01".into());
        s.vni = 1 << 24;
        assert!(build(&s, &defaults()).unwrap_err().contains("out of range"));
        s.vni = 42;
        s.rd = Some("nonsense".into());
        assert!(build(&s, &defaults())
            .unwrap_err()
            .contains("route distinguisher"));
        s.rd = None;
        s.rts = vec!["65001".into()];
        assert!(build(&s, &defaults()).unwrap_err().contains("route target"));
    }
}
