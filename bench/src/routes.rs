//! The routes the simulated clients originate, and the messages that carry them, all built
//! with the project's codec (`bgp::wire`, `evpn`).
//!
//! Client `c` (address 198.19.1.0 + c) originates, in one VNI:
//! - type-2 routes `r = 0..type2`: MAC `02:cc:cc:rr:rr:rr` (the client and route index, so
//!   a receiver can count exactly without keeping the routes), IPv4 198.18.x.y, RD
//!   `client-address:VNI`, label = VNI, RT 65001:VNI, encapsulation VXLAN;
//! - one type-3 route (index `type2`): originator = its address, PMSI ingress replication;
//!
//! with next hop = its address, packed 100 NLRI per UPDATE as a real speaker does.

use std::net::{IpAddr, Ipv4Addr};

use bgp::wire::{
    Capability, EncodeCtx, Message, MpNextHop, MpReach, MpUnreach, NotificationMsg, OpenMsg,
    PathAttrs, UpdateMsg, HEADER_LEN, MAX_MESSAGE_LEN,
};
use bytes::{Bytes, BytesMut};
use evpn::{originate, Esi, ImetRoute, Label, MacAddr, MacIpRoute, RouteTarget, Vni};
use evpn::{EvpnRoute, L2vpnEvpn, RouteDistinguisher};

use bgp::af::AddressFamily;

use crate::netns::{client_addr, MAX_CLIENTS};
use crate::sys::Result;

/// Our AS and the reflector's (iBGP).
pub const ASN: u32 = 65001;
/// NLRI per UPDATE.
pub const ROUTES_PER_UPDATE: usize = 100;
/// Largest route index a MAC can carry (24 bits).
pub const MAX_TYPE2: u32 = 1 << 24;
/// Both sides use 4-octet AS numbers (we announce the capability; so do all three reflectors).
pub const ENCODE: EncodeCtx = EncodeCtx { as4: true };

/// Which routes exist: `clients` clients with `type2` type-2 routes and one type-3 route each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpace {
    pub clients: u32,
    pub type2: u32,
    pub vni: Vni,
}

impl RouteSpace {
    pub fn new(clients: u32, type2: u32, vni: u32) -> Result<RouteSpace> {
        if clients == 0 || clients > MAX_CLIENTS {
            return Err(format!("clients must be 1..={MAX_CLIENTS}, not {clients}"));
        }
        if type2 >= MAX_TYPE2 {
            return Err(format!(
                "at most {} type-2 routes per client",
                MAX_TYPE2 - 1
            ));
        }
        // The RD is client-address:VNI, a type-1 RD with a 2-octet number.
        let vni = Vni::new(vni)
            .filter(|v| v.get() <= u32::from(u16::MAX))
            .ok_or(format!("VNI {vni} does not fit an RD's 2-octet number"))?;
        Ok(RouteSpace {
            clients,
            type2,
            vni,
        })
    }

    /// Routes per client (type-2 and the type-3).
    pub fn per_client(&self) -> u64 {
        u64::from(self.type2) + 1
    }

    /// Routes of all clients.
    pub fn size(&self) -> u64 {
        u64::from(self.clients) * self.per_client()
    }

    /// The dense index of route `r` of client `c` (`r == type2` is the type-3 route).
    pub fn index(&self, c: u32, r: u32) -> u64 {
        u64::from(c) * self.per_client() + u64::from(r)
    }

    fn vni16(&self) -> u16 {
        u16::try_from(self.vni.get()).unwrap_or(u16::MAX)
    }

    /// RD `client-address:VNI`.
    pub fn rd(&self, c: u32) -> RouteDistinguisher {
        RouteDistinguisher::ipv4(client_addr(c), self.vni16())
    }

    /// RT 65001:VNI.
    pub fn rt(&self) -> RouteTarget {
        originate::auto_rt(ASN, self.vni)
    }

    /// `02:cc:cc:rr:rr:rr`.
    pub fn mac(c: u32, r: u32) -> MacAddr {
        let [_, _, c1, c0] = c.to_be_bytes();
        let [_, r2, r1, r0] = r.to_be_bytes();
        MacAddr([0x02, c1, c0, r2, r1, r0])
    }

    /// 198.18.x.y, counting through the routes of all clients (repeats after 65 536; the
    /// MAC keeps every route distinct).
    pub fn ip(&self, c: u32, r: u32) -> Ipv4Addr {
        let g = self.index(c, r) & 0xffff;
        let [_, _, _, _, _, _, x, y] = g.to_be_bytes();
        Ipv4Addr::new(198, 18, x, y)
    }

    pub fn type2(&self, c: u32, r: u32) -> EvpnRoute {
        EvpnRoute::MacIp(MacIpRoute {
            rd: self.rd(c),
            esi: Esi::ZERO,
            eth_tag: 0,
            mac: Self::mac(c, r),
            ip: Some(IpAddr::V4(self.ip(c, r))),
            label1: Label::from_vni(self.vni),
            label2: None,
        })
    }

    pub fn type3(&self, c: u32) -> EvpnRoute {
        EvpnRoute::Imet(ImetRoute {
            rd: self.rd(c),
            eth_tag: 0,
            originator: IpAddr::V4(client_addr(c)),
        })
    }

    /// What an iBGP speaker attaches to its type-2 routes: `evpn::originate`'s attributes
    /// (ORIGIN IGP, empty AS_PATH, RT, encapsulation VXLAN) and LOCAL_PREF 100.
    pub fn type2_attrs(&self, c: u32) -> PathAttrs {
        let (_, mut attrs) = originate::mac_ip(
            self.rd(c),
            self.vni,
            Self::mac(c, 0),
            None,
            &[self.rt()],
            None,
        );
        attrs.local_pref = Some(100);
        attrs
    }

    /// The type-3 attributes: as for type 2, plus PMSI ingress replication to the client.
    pub fn type3_attrs(&self, c: u32) -> PathAttrs {
        let (_, mut attrs) = originate::imet(
            self.rd(c),
            self.vni,
            IpAddr::V4(client_addr(c)),
            &[self.rt()],
        );
        attrs.local_pref = Some(100);
        attrs
    }

    /// UPDATEs announcing all of client `c`'s type-2 routes (and its type-3 route if
    /// `type3`), as one buffer of whole messages.
    pub fn announce(&self, c: u32, type3: bool) -> Bytes {
        let nh = MpNextHop::V4(client_addr(c));
        let mut out = BytesMut::new();
        let attrs = self.type2_attrs(c);
        pack(
            (0..self.type2).map(|r| self.type2(c, r)),
            |nlri| UpdateMsg {
                attrs: attrs.clone(),
                mp_reach: Some(MpReach {
                    afi: L2vpnEvpn::AFI,
                    safi: L2vpnEvpn::SAFI,
                    next_hop: nh.clone(),
                    nlri,
                }),
                ..UpdateMsg::default()
            },
            &mut out,
        );
        if type3 {
            let attrs = self.type3_attrs(c);
            pack(
                std::iter::once(self.type3(c)),
                |nlri| UpdateMsg {
                    attrs: attrs.clone(),
                    mp_reach: Some(MpReach {
                        afi: L2vpnEvpn::AFI,
                        safi: L2vpnEvpn::SAFI,
                        next_hop: nh.clone(),
                        nlri,
                    }),
                    ..UpdateMsg::default()
                },
                &mut out,
            );
        }
        out.freeze()
    }

    /// UPDATEs withdrawing what [`Self::announce`] announced (MP_UNREACH_NLRI only).
    pub fn withdraw(&self, c: u32, type3: bool) -> Bytes {
        let mut out = BytesMut::new();
        let routes = (0..self.type2)
            .map(|r| self.type2(c, r))
            .chain(type3.then(|| self.type3(c)));
        pack(
            routes,
            |nlri| UpdateMsg {
                mp_unreach: Some(MpUnreach {
                    afi: L2vpnEvpn::AFI,
                    safi: L2vpnEvpn::SAFI,
                    nlri,
                }),
                ..UpdateMsg::default()
            },
            &mut out,
        );
        out.freeze()
    }
}

/// Appends UPDATEs made by `make` from NLRI blocks of at most [`ROUTES_PER_UPDATE`] routes,
/// fewer if a message would exceed 4096 octets.
pub fn pack(
    routes: impl Iterator<Item = EvpnRoute>,
    make: impl Fn(Bytes) -> UpdateMsg,
    out: &mut BytesMut,
) {
    let base = HEADER_LEN + make(Bytes::new()).encoded_len(&ENCODE);
    let mut block = BytesMut::new();
    let mut n = 0;
    let flush = |block: &mut BytesMut, n: &mut usize, out: &mut BytesMut| {
        if *n > 0 {
            Message::Update(make(block.split().freeze())).encode(&ENCODE, out);
            *n = 0;
        }
    };
    for route in routes {
        if n == ROUTES_PER_UPDATE || base + block.len() + route.encoded_len() > MAX_MESSAGE_LEN {
            flush(&mut block, &mut n, out);
        }
        route.encode(&mut block);
        n += 1;
    }
    flush(&mut block, &mut n, out);
}

/// Our OPEN: BGP id = the client's address, MP L2VPN EVPN, route refresh, 4-octet AS.
pub fn open(bgp_id: Ipv4Addr, hold_time: u16) -> Bytes {
    Message::Open(OpenMsg::new(
        ASN,
        hold_time,
        bgp_id,
        vec![
            Capability::MultiProtocol {
                afi: L2vpnEvpn::AFI,
                safi: L2vpnEvpn::SAFI,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(ASN),
        ],
    ))
    .to_bytes(&ENCODE)
}

pub fn keepalive() -> Bytes {
    Message::Keepalive.to_bytes(&ENCODE)
}

/// End-of-RIB of L2VPN EVPN (RFC 4724 §2).
pub fn end_of_rib() -> Bytes {
    Message::Update(UpdateMsg::end_of_rib(L2vpnEvpn::AFI, L2vpnEvpn::SAFI)).to_bytes(&ENCODE)
}

/// Cease / Administrative Shutdown (RFC 4486), sent before a deliberate disconnect.
pub fn cease() -> Bytes {
    Message::Notification(NotificationMsg::new(6, 2, Vec::new())).to_bytes(&ENCODE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bgp::wire::{header, DecodeCtx};

    /// Splits a buffer of whole messages and decodes each with the codec.
    pub(crate) fn decode_all(mut buf: &[u8]) -> Vec<Message> {
        let ctx = DecodeCtx {
            as4: true,
            ibgp: true,
        };
        let mut out = Vec::new();
        while !buf.is_empty() {
            let len = header::frame_len(buf).unwrap().unwrap();
            let d = Message::decode(&buf[..len], &ctx).unwrap();
            assert!(d.errors.is_empty(), "{:?}", d.errors);
            out.push(d.value);
            buf = &buf[len..];
        }
        out
    }

    #[test]
    fn type2_route_is_what_originate_builds() {
        let s = RouteSpace::new(10, 100, 100).unwrap();
        let (want, _) = originate::mac_ip(
            s.rd(3),
            s.vni,
            RouteSpace::mac(3, 7),
            Some(IpAddr::V4(s.ip(3, 7))),
            &[s.rt()],
            None,
        );
        assert_eq!(s.type2(3, 7), want);
        assert_eq!(
            want.to_string(),
            "[2]:[0]:[48]:[02:00:03:00:00:07]:[32]:[198.18.1.54]"
        );
        assert_eq!(s.rd(3).to_string(), "198.19.1.3:100");
        assert_eq!(s.rt().to_string(), "65001:100");
    }

    #[test]
    fn announce_round_trips_through_the_codec() {
        let s = RouteSpace::new(4, 250, 100).unwrap();
        let msgs = decode_all(&s.announce(2, true));
        // 250 type-2 → 100 + 100 + 50, then one type-3 UPDATE.
        assert_eq!(msgs.len(), 4);
        let mut routes = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let Message::Update(u) = m else {
                panic!("not an UPDATE: {m:?}")
            };
            let mp = u.mp_reach.as_ref().unwrap();
            assert_eq!((mp.afi, mp.safi), (25, 70));
            assert_eq!(mp.next_hop, MpNextHop::V4(client_addr(2)));
            assert_eq!(u.attrs.local_pref, Some(100));
            assert_eq!(u.attrs.pmsi_tunnel.is_some(), i == 3);
            let comms = u.attrs.ext_communities.as_ref().unwrap();
            let text: Vec<String> = comms
                .iter()
                .map(|c| evpn::classify(c).to_string())
                .collect();
            assert_eq!(text, ["RT:65001:100", "ET:8"]);
            routes.extend(L2vpnEvpn::decode_nlri(&mp.nlri).unwrap());
        }
        assert_eq!(routes.len(), 251);
        assert_eq!(routes[0], s.type2(2, 0));
        assert_eq!(routes[249], s.type2(2, 249));
        assert_eq!(routes[250], s.type3(2));
    }

    #[test]
    fn a_full_update_fits_in_4096() {
        let s = RouteSpace::new(1, 100, 100).unwrap();
        let b = s.announce(0, false);
        assert!(b.len() <= MAX_MESSAGE_LEN, "{}", b.len());
        assert_eq!(decode_all(&b).len(), 1);
        let w = s.withdraw(0, false);
        assert!(w.len() <= MAX_MESSAGE_LEN);
    }

    #[test]
    fn withdraw_round_trips() {
        let s = RouteSpace::new(2, 150, 100).unwrap();
        let msgs = decode_all(&s.withdraw(1, true));
        assert_eq!(msgs.len(), 2);
        let mut routes = Vec::new();
        for m in msgs {
            let Message::Update(u) = m else { panic!() };
            assert!(u.mp_reach.is_none());
            assert_eq!(u.attrs, PathAttrs::default());
            routes.extend(L2vpnEvpn::decode_nlri(&u.mp_unreach.unwrap().nlri).unwrap());
        }
        assert_eq!(routes.len(), 151);
        assert_eq!(routes[150], s.type3(1));
    }

    #[test]
    fn session_messages_round_trip() {
        let msgs = decode_all(&open(client_addr(5), 90));
        let Message::Open(o) = &msgs[0] else { panic!() };
        assert_eq!(o.asn(), ASN);
        assert_eq!(o.bgp_id, client_addr(5));
        assert_eq!(o.multiprotocol(), [(25, 70)]);
        assert!(o.route_refresh());
        assert_eq!(decode_all(&keepalive()), [Message::Keepalive]);
        let Message::Update(u) = &decode_all(&end_of_rib())[0] else {
            panic!()
        };
        assert_eq!(u.is_end_of_rib(), Some((25, 70)));
        assert!(matches!(decode_all(&cease())[0], Message::Notification(_)));
    }

    #[test]
    fn bad_spaces_are_refused() {
        assert!(RouteSpace::new(0, 1, 100).is_err());
        assert!(RouteSpace::new(1, MAX_TYPE2, 100).is_err());
        assert!(RouteSpace::new(1, 1, 70000).is_err());
    }
}
