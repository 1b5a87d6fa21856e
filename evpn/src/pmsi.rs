//! The PMSI_TUNNEL attribute as EVPN uses it (RFC 6514 §5, RFC 7432 §11.1,
//! RFC 8365 §5.1.3). The raw attribute is `bgp::wire::PmsiTunnel`; this is its view.
//!
//! ```text
//! +---------------------------------+
//! |  Flags (1 octet)                |   bit 7 (0x01): Leaf Information Required
//! +---------------------------------+
//! |  Tunnel Type (1 octet)          |   6 = Ingress Replication
//! +---------------------------------+
//! |  MPLS Label (3 octets)          |   VXLAN: the VNI, all 24 bits (RFC 8365 §5.1.3)
//! +---------------------------------+
//! |  Tunnel Identifier (variable)   |   Ingress Replication: the endpoint address
//! +---------------------------------+
//! ```
//!
//! A type-3 route of a VTEP carries Ingress Replication with its VXLAN address as
//! the tunnel identifier; that is where the flood list's `dst` comes from. FRR 8.4
//! sends flags 0, type 6, `vni2label(vni)` and the IPv4 next hop (9 octets); GoBGP
//! 3.x reads and writes the same.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp::wire::PmsiTunnel;
use serde::Serialize;

use crate::vni::{Label, Vni};

/// RFC 6514 §5: tunnel type 6.
pub const TUNNEL_TYPE_INGRESS_REPLICATION: u8 = 6;

/// The IANA name of a PMSI tunnel type (RFC 6514 §5, RFC 7524).
pub fn tunnel_type_name(tunnel_type: u8) -> &'static str {
    match tunnel_type {
        0 => "no-tunnel-info",
        1 => "rsvp-te-p2mp",
        2 => "mldp-p2mp",
        3 => "pim-ssm",
        4 => "pim-sm",
        5 => "bidir-pim",
        6 => "ingress-replication",
        7 => "mldp-mp2mp",
        _ => "unknown",
    }
}

/// PMSI_TUNNEL for a VTEP's inclusive multicast route: Ingress Replication to
/// `endpoint`, label = `vni`, flags 0.
pub fn ingress_replication(vni: Vni, endpoint: IpAddr) -> PmsiTunnel {
    let tunnel_id: Box<[u8]> = match endpoint {
        IpAddr::V4(a) => Box::new(a.octets()),
        IpAddr::V6(a) => Box::new(a.octets()),
    };
    PmsiTunnel {
        flags: 0,
        tunnel_type: TUNNEL_TYPE_INGRESS_REPLICATION,
        label: Label::from_vni(vni).0,
        tunnel_id,
    }
}

/// What a PMSI_TUNNEL says, for EVPN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PmsiView {
    pub flags: u8,
    pub tunnel_type: u8,
    /// [`tunnel_type_name`] of `tunnel_type`.
    pub tunnel_type_name: &'static str,
    /// The label field read as a VNI (RFC 8365 §5.1.3).
    pub vni: Vni,
    /// The raw label field.
    pub label: Label,
    /// For Ingress Replication, the endpoint (tunnel identifier of 4 or 16
    /// octets); `None` for other types or a malformed identifier.
    pub endpoint: Option<IpAddr>,
}

impl PmsiView {
    /// Whether this is Ingress Replication with a usable endpoint: what a VTEP's
    /// flood list needs.
    pub fn is_ingress_replication(&self) -> bool {
        self.tunnel_type == TUNNEL_TYPE_INGRESS_REPLICATION && self.endpoint.is_some()
    }
}

/// Reads a PMSI_TUNNEL attribute.
pub fn decode_pmsi(p: &PmsiTunnel) -> PmsiView {
    let endpoint = if p.tunnel_type == TUNNEL_TYPE_INGRESS_REPLICATION {
        if let Ok(a) = <[u8; 4]>::try_from(p.tunnel_id.as_ref()) {
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        } else if let Ok(a) = <[u8; 16]>::try_from(p.tunnel_id.as_ref()) {
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        } else {
            None
        }
    } else {
        None
    };
    let label = Label(p.label);
    PmsiView {
        flags: p.flags,
        tunnel_type: p.tunnel_type,
        tunnel_type_name: tunnel_type_name(p.tunnel_type),
        vni: label.vni(),
        label,
        endpoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_replication_as_frr_sends_it() {
        let vni = Vni::new(42).unwrap();
        let vtep = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1));
        let p = ingress_replication(vni, vtep);
        // FRR 8.4: flags 0, type 6, label 00 00 2a, endpoint.
        assert_eq!(p.flags, 0);
        assert_eq!(p.tunnel_type, 6);
        assert_eq!(p.label, [0, 0, 42]);
        assert_eq!(&p.tunnel_id[..], &[198, 19, 0, 1]);
        let v = decode_pmsi(&p);
        assert_eq!(v.vni, vni);
        assert_eq!(v.endpoint, Some(vtep));
        assert_eq!(v.tunnel_type_name, "ingress-replication");
        assert!(v.is_ingress_replication());
    }

    #[test]
    fn ipv6_and_odd_identifiers() {
        let vni = Vni::new(0xff_ffff).unwrap();
        let vtep: IpAddr = "2001:db8::1".parse().unwrap();
        let v = decode_pmsi(&ingress_replication(vni, vtep));
        assert_eq!((v.vni, v.endpoint), (vni, Some(vtep)));

        let odd = PmsiTunnel {
            flags: 1,
            tunnel_type: 6,
            label: [0, 0, 1],
            tunnel_id: Box::new([1, 2, 3]),
        };
        let v = decode_pmsi(&odd);
        assert_eq!(v.endpoint, None);
        assert!(!v.is_ingress_replication());

        let pim = PmsiTunnel {
            tunnel_type: 3,
            ..odd
        };
        let v = decode_pmsi(&pim);
        assert_eq!((v.tunnel_type_name, v.endpoint), ("pim-ssm", None));
    }
}
