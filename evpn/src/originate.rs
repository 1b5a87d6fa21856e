//! What a VTEP originates (RFC 8365 §5.1.2, §5.1.3; RFC 7432 §7.2, §7.3, §11).
//!
//! RD: RFC 7432 §7.9 and RFC 8365 §5.1.2 auto-derive a type-1 RD
//! `router-id:n`; FRR 8.4 (`bgp_evpn_derive_auto_rd`) uses the router id and a
//! small per-VNI index it allocates.
//!
//! RT: FRR 8.4 (`bgpd/bgp_evpn.c` `form_auto_rt`) encodes
//! `encode_route_target_as(bgp->as & 0xFFFF, vni)`: a type-0 (2-octet AS) Route
//! Target whose administrator is the *low 16 bits* of the local ASN and whose
//! 4-octet value is the VNI — for 4-octet ASNs too ("We use only the lower 16 bits
//! of the AS. This is sufficient as the need is to get a RT value that will be
//! unique across different VNIs but the same across routers (in the same AS)").
//! With `autort rfc8365-compatible` FRR ORs `0x10000000` into the value, which is
//! RFC 8365 §5.1.2.1's A=0 / Type=1 (VXLAN) / D-ID=0 layout: [`auto_rt_rfc8365`].
//!
//! Attributes: ORIGIN IGP, empty AS_PATH, no LOCAL_PREF (the RIB adds it for
//! iBGP), extended communities = RT(s) + Encapsulation VXLAN (RFC 8365 §5.1.3)
//! [+ MAC Mobility], sorted by their octets so equal routes get equal attribute
//! sets; type 3 also carries PMSI_TUNNEL Ingress Replication (RFC 8365 §5.1.3:
//! label = VNI, endpoint = the VTEP). The MP_REACH next hop (the VTEP) is set by
//! whoever builds the UPDATE.

use std::net::{IpAddr, Ipv4Addr};

use bgp::wire::{AsPath, ExtCommunity, Origin, PathAttrs};

use crate::esi::Esi;
use crate::ext_comm::{EvpnExtCommunity, RouteTarget};
use crate::imet::ImetRoute;
use crate::mac_ip::MacIpRoute;
use crate::pmsi::ingress_replication;
use crate::rd::RouteDistinguisher;
use crate::route::EvpnRoute;
use crate::vni::{Label, MacAddr, Vni};

/// RFC 8365 §5.1.2.1 value bits: A = 0 (auto), Type = 1 (VXLAN), D-ID = 0.
const RFC8365_VXLAN_TYPE: u32 = 0x1000_0000;

/// Auto RD: type 1, `router_id:n` (RFC 8365 §5.1.2, RFC 7432 §7.9).
pub fn auto_rd(router_id: Ipv4Addr, n: u16) -> RouteDistinguisher {
    RouteDistinguisher::ipv4(router_id, n)
}

/// The RD numbers (`router_id:n`) of a host's VNIs: unique per VNI on the host, and
/// the same for the same set of VNIs whatever order they were found in (so stable
/// across restarts). A VNI that fits 16 bits is its own number; a larger one takes
/// its low 16 bits, or the next number after them no other VNI of the set has (VNI
/// 100 and VNI 65636 would otherwise share `router_id:100`). Numbers are given in
/// ascending VNI order; 0 is never used.
pub fn rd_numbers(vnis: &std::collections::BTreeSet<Vni>) -> std::collections::BTreeMap<Vni, u16> {
    let mut out = std::collections::BTreeMap::new();
    let mut used = std::collections::BTreeSet::new();
    for &v in vnis {
        if let Ok(n) = u16::try_from(v.get()) {
            if n != 0 {
                out.insert(v, n);
                used.insert(n);
            }
        }
    }
    for &v in vnis {
        if out.contains_key(&v) {
            continue;
        }
        let [_, _, hi, lo] = v.get().to_be_bytes();
        let mut n = u16::from_be_bytes([hi, lo]);
        // At most 2^16 - 1 VNIs can have a number; past that a VNI gets none.
        for _ in 0..=u16::MAX {
            if n != 0 && !used.contains(&n) {
                break;
            }
            n = n.wrapping_add(1);
        }
        if n != 0 && used.insert(n) {
            out.insert(v, n);
        }
    }
    out
}

/// Auto RT as FRR 8.4 derives it by default: type 0, `(asn & 0xffff):vni`.
pub fn auto_rt(asn: u32, vni: Vni) -> RouteTarget {
    RouteTarget::As2 {
        asn: low16(asn),
        value: vni.get(),
    }
}

/// Auto RT in RFC 8365 §5.1.2.1 form (FRR's `autort rfc8365-compatible`).
pub fn auto_rt_rfc8365(asn: u32, vni: Vni) -> RouteTarget {
    RouteTarget::As2 {
        asn: low16(asn),
        value: RFC8365_VXLAN_TYPE | vni.get(),
    }
}

fn low16(asn: u32) -> u16 {
    let [_, _, hi, lo] = asn.to_be_bytes();
    u16::from_be_bytes([hi, lo])
}

/// The attributes every local route shares.
fn base_attrs(mut comms: Vec<ExtCommunity>) -> PathAttrs {
    comms.sort_unstable();
    comms.dedup();
    PathAttrs {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        ext_communities: Some(comms),
        ..PathAttrs::default()
    }
}

fn rt_and_encap(rts: &[RouteTarget]) -> Vec<ExtCommunity> {
    rts.iter()
        .map(|rt| rt.to_ext_community())
        .chain(std::iter::once(EvpnExtCommunity::VXLAN.into()))
        .collect()
}

/// A VTEP's type-3 route for `vni` (RFC 7432 §7.3, §11.1; RFC 8365 §5.1.3):
/// Ethernet Tag 0, originator = `vtep`, PMSI Ingress Replication to `vtep` with
/// label = VNI.
pub fn imet(
    rd: RouteDistinguisher,
    vni: Vni,
    vtep: IpAddr,
    rts: &[RouteTarget],
) -> (EvpnRoute, PathAttrs) {
    let route = EvpnRoute::Imet(ImetRoute {
        rd,
        eth_tag: 0,
        originator: vtep,
    });
    let mut attrs = base_attrs(rt_and_encap(rts));
    attrs.pmsi_tunnel = Some(ingress_replication(vni, vtep));
    (route, attrs)
}

/// A VTEP's type-2 route for a local MAC (and IP) in `vni` (RFC 7432 §7.2;
/// RFC 8365 §5.1.3): ESI 0 (single-homed), Ethernet Tag 0, label1 = VNI. The MAC
/// Mobility community is added when `mobility_seq` is `Some((seq, sticky))` with
/// `seq > 0` or `sticky` (RFC 7432 §15.1: a first advertisement carries none).
pub fn mac_ip(
    rd: RouteDistinguisher,
    vni: Vni,
    mac: MacAddr,
    ip: Option<IpAddr>,
    rts: &[RouteTarget],
    mobility_seq: Option<(u32, bool)>,
) -> (EvpnRoute, PathAttrs) {
    let route = EvpnRoute::MacIp(MacIpRoute {
        rd,
        esi: Esi::ZERO,
        eth_tag: 0,
        mac,
        ip,
        label1: Label::from_vni(vni),
        label2: None,
    });
    let mut comms = rt_and_encap(rts);
    if let Some((seq, sticky)) = mobility_seq.filter(|&(seq, sticky)| seq > 0 || sticky) {
        comms.push(EvpnExtCommunity::MacMobility { sticky, seq }.into());
    }
    (route, base_attrs(comms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext_comm::classify;
    use crate::mobility::mobility;
    use crate::pmsi::decode_pmsi;

    const VTEP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1));

    fn vni42() -> Vni {
        Vni::new(42).unwrap()
    }

    #[test]
    fn rd_numbers_are_unique_per_vni_and_independent_of_order() {
        use std::collections::BTreeSet;
        let v = |n| Vni::new(n).unwrap();
        let set: BTreeSet<Vni> = [v(100), v(65636), v(65536 + 101), v(7)].into();
        let n = rd_numbers(&set);
        assert_eq!(n[&v(100)], 100, "a 16-bit VNI is its own number");
        assert_eq!(n[&v(7)], 7);
        assert_eq!(n[&v(65636)], 101, "100 is taken: the next free");
        assert_eq!(n[&v(65637)], 102);
        let distinct: BTreeSet<u16> = n.values().copied().collect();
        assert_eq!(distinct.len(), set.len());
        // Built again from the same VNIs found in another order: the same numbers.
        let again: BTreeSet<Vni> = [v(65636), v(7), v(65536 + 101), v(100)].into();
        assert_eq!(rd_numbers(&again), n);
        // 65536 (low bits 0) never gets number 0.
        let n = rd_numbers(&[v(65536)].into());
        assert_eq!(n[&v(65536)], 1);
    }

    #[test]
    fn auto_rd_and_rt_match_frr() {
        assert_eq!(
            auto_rd(Ipv4Addr::new(198, 19, 0, 1), 3).to_string(),
            "198.19.0.1:3"
        );
        let rt = auto_rt(65001, vni42());
        assert_eq!(rt.to_string(), "65001:42");
        assert_eq!(rt.to_ext_community().0, [0, 2, 0xfd, 0xe9, 0, 0, 0, 42]);
        // 4-octet ASN 4200000000 = 0xFA56EA00: FRR keeps the low 16 bits, 0xEA00.
        assert_eq!(auto_rt(4_200_000_000, vni42()).to_string(), "59904:42");
        assert_eq!(
            auto_rt_rfc8365(65001, vni42()).to_ext_community().0,
            [0, 2, 0xfd, 0xe9, 0x10, 0, 0, 42]
        );
    }

    #[test]
    fn imet_route_and_attrs() {
        let rd = auto_rd(Ipv4Addr::new(198, 19, 0, 1), 3);
        let rt = auto_rt(65001, vni42());
        let (route, attrs) = imet(rd, vni42(), VTEP, &[rt, rt]);
        assert_eq!(route.to_string(), "[3]:[0]:[32]:[198.19.0.1]");
        assert_eq!(route.rd(), Some(rd));
        assert_eq!(attrs.origin, Some(Origin::Igp));
        assert_eq!(attrs.as_path, Some(AsPath::default()));
        assert_eq!(attrs.local_pref, None);
        let comms: Vec<String> = attrs
            .ext_communities
            .iter()
            .flatten()
            .map(|c| classify(c).to_string())
            .collect();
        assert_eq!(comms, ["RT:65001:42", "ET:8"]);
        let pmsi = decode_pmsi(attrs.pmsi_tunnel.as_ref().unwrap());
        assert_eq!(
            (pmsi.tunnel_type, pmsi.vni, pmsi.endpoint),
            (6, vni42(), Some(VTEP))
        );
    }

    #[test]
    fn mac_ip_route_and_attrs() {
        let rd = auto_rd(Ipv4Addr::new(198, 19, 0, 1), 3);
        let rts = [auto_rt(65001, vni42())];
        let mac = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        let ip = Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        let (route, attrs) = mac_ip(rd, vni42(), mac, ip, &rts, None);
        assert_eq!(
            route.to_string(),
            "[2]:[0]:[48]:[aa:bb:cc:dd:ee:ff]:[32]:[198.18.0.2]"
        );
        assert_eq!(route.vni(), Some(vni42()));
        assert_eq!(mobility(&attrs), None);
        assert_eq!(attrs.pmsi_tunnel, None);
        let (_, no_mm) = mac_ip(rd, vni42(), mac, ip, &rts, Some((0, false)));
        assert_eq!(mobility(&no_mm), None);
        let (_, moved) = mac_ip(rd, vni42(), mac, ip, &rts, Some((3, false)));
        let comms: Vec<String> = moved
            .ext_communities
            .iter()
            .flatten()
            .map(|c| classify(c).to_string())
            .collect();
        assert_eq!(comms, ["RT:65001:42", "ET:8", "MM:3"]);
        let (_, sticky) = mac_ip(rd, vni42(), mac, None, &rts, Some((0, true)));
        assert_eq!(
            mobility(&sticky).map(|m| (m.seq, m.sticky)),
            Some((0, true))
        );
    }
}
