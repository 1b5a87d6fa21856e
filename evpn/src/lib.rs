//! BGP EVPN (RFC 7432, RFC 8365) for vxbgp: the L2VPN/EVPN address family.
//!
//! What this crate knows and `bgp` does not:
//! - the EVPN NLRI ([`EvpnRoute`]): type 2 MAC/IP ([`MacIpRoute`]) and type 3
//!   inclusive multicast ([`ImetRoute`]) decoded; types 1, 4, 5 and unknown types
//!   kept as bytes and reflected byte for byte;
//! - the identifiers: [`RouteDistinguisher`], [`Esi`], [`Vni`] and the [`Label`]
//!   field that carries it (RFC 8365 §5.1.3: all 24 bits), [`MacAddr`];
//! - typed views over the raw extended communities and PMSI_TUNNEL that `bgp`
//!   keeps ([`ext_comm`], [`pmsi`]);
//! - the rules: MAC mobility ([`mobility`], RFC 7432 §15) and what a VTEP
//!   originates ([`originate`], RFC 8365 §5.1.2).
//!
//! Decoding never panics and never allocates more than its input justifies;
//! encoding appends to a `BytesMut` and cannot fail.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

use bgp::af::{AddressFamily, NlriError};
use bgp::wire::PathAttrs;
use bytes::BytesMut;

pub mod error;
pub mod esi;
pub mod ext_comm;
pub mod imet;
pub mod mac_ip;
pub mod mobility;
pub mod originate;
pub mod pmsi;
pub mod rd;
pub mod route;
pub mod vni;

pub use error::{ErrorKind, EvpnError, ParseTextError};
pub use esi::Esi;
pub use ext_comm::{classify, EvpnExtCommunity, RouteTarget, TUNNEL_TYPE_VXLAN};
pub use imet::ImetRoute;
pub use mac_ip::MacIpRoute;
pub use mobility::MacMobility;
pub use pmsi::{decode_pmsi, ingress_replication, PmsiView};
pub use rd::RouteDistinguisher;
pub use route::{EvpnKey, EvpnRoute};
pub use vni::{Label, MacAddr, Vni};

/// The L2VPN EVPN address family: AFI 25, SAFI 70 (RFC 7432 §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L2vpnEvpn;

impl AddressFamily for L2vpnEvpn {
    const AFI: u16 = 25;
    const SAFI: u8 = 70;
    type Nlri = EvpnRoute;
    type Key = EvpnKey;

    /// Frames each route (type, length), then parses its exact body. A truncated
    /// block, a length past the end, or a type-2/3 body that does not parse is an
    /// error located in the block.
    fn decode_nlri(block: &[u8]) -> Result<Vec<EvpnRoute>, NlriError> {
        EvpnRoute::decode_all(block).map_err(NlriError::from)
    }

    fn encode_nlri(nlri: &EvpnRoute, out: &mut BytesMut) {
        nlri.encode(out);
    }

    fn nlri_len(nlri: &EvpnRoute) -> usize {
        nlri.encoded_len()
    }

    fn key(nlri: &EvpnRoute) -> EvpnKey {
        nlri.key()
    }

    /// RFC 7432 §15.2: for type-2 routes the higher MAC Mobility sequence number
    /// wins before anything else (0 without the community); other types 0.
    fn preference(nlri: &EvpnRoute, attrs: &PathAttrs) -> u32 {
        match nlri {
            EvpnRoute::MacIp(_) => mobility::seq_of(attrs),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::ExtCommunity;
    use proptest::prelude::*;

    #[test]
    fn family_codes() {
        assert_eq!((L2vpnEvpn::AFI, L2vpnEvpn::SAFI), (25, 70));
    }

    #[test]
    fn decode_nlri_reports_offsets() {
        let mut block = vec![3, 17];
        block.extend_from_slice(&crate::imet::tests::SAMPLE_BODY);
        let routes = L2vpnEvpn::decode_nlri(&block).unwrap();
        assert_eq!(routes.len(), 1);
        block.extend_from_slice(&[2, 33, 0, 0]);
        let e = L2vpnEvpn::decode_nlri(&block).unwrap_err();
        assert_eq!(e.offset, 20);
        assert!(e.reason.contains("33"), "{e}");
    }

    #[test]
    fn preference_is_mobility_seq_for_type2_only() {
        let attrs = PathAttrs {
            ext_communities: Some(vec![ExtCommunity([6, 0, 0, 0, 0, 0, 0, 5])]),
            ..PathAttrs::default()
        };
        let t2 = EvpnRoute::MacIp(crate::mac_ip::tests::sample());
        let t3 = EvpnRoute::Imet(crate::imet::tests::sample());
        assert_eq!(L2vpnEvpn::preference(&t2, &attrs), 5);
        assert_eq!(L2vpnEvpn::preference(&t2, &PathAttrs::default()), 0);
        assert_eq!(L2vpnEvpn::preference(&t3, &attrs), 0);
    }

    proptest! {
        #[test]
        fn blocks_round_trip(routes in proptest::collection::vec(crate::route::tests::any_route(), 0..8)) {
            let mut out = BytesMut::new();
            for r in &routes {
                L2vpnEvpn::encode_nlri(r, &mut out);
            }
            let len: usize = routes.iter().map(L2vpnEvpn::nlri_len).sum();
            prop_assert_eq!(out.len(), len);
            prop_assert_eq!(L2vpnEvpn::decode_nlri(&out), Ok(routes));
        }

        #[test]
        fn random_bytes_never_panic(block in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = L2vpnEvpn::decode_nlri(&block);
        }
    }
}
