//! Any bytes as UPDATE messages from a route-reflector client, processed as a session
//! does (RFC 7606 verdict, EVPN NLRI decoding) into a RIB with two more clients, then
//! flushed towards them: never a panic, and the RIB stays consistent (the routes it
//! holds are the paths it counts, and everything goes when the peer does).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bgp::af::AddressFamily;
use bgp::peer::{LocalInfo, PeerInfo, PeerKind};
use bgp::rib::{Encoded, PeerSink, Rib, RibInput, RouteAttrs};
use bgp::wire::{header, Action, DecodeCtx, Message, MpNextHop};
use evpn::L2vpnEvpn;
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Drop;

impl PeerSink for Drop {
    fn queued(&self) -> usize {
        0
    }
    fn deliver(&mut self, _: Arc<Encoded>, _: usize) -> bool {
        true
    }
    fn over_limit(&mut self, _: usize) {}
}

fn peer(id: u32) -> PeerInfo {
    PeerInfo {
        id,
        addr: IpAddr::V4(Ipv4Addr::new(198, 19, 0, id as u8)),
        asn: 65001,
        bgp_id: Ipv4Addr::new(198, 19, 0, id as u8),
        kind: PeerKind::IbgpClient,
        as4: true,
        max_prefixes: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let ip = Ipv4Addr::new(198, 19, 0, 100);
    let mut rib = Rib::<L2vpnEvpn>::new(LocalInfo {
        asn: 65001,
        router_id: ip,
        cluster_id: ip,
    });
    for id in 1..=3 {
        rib.apply(RibInput::PeerUp(peer(id), Box::new(Drop)));
    }
    let ctx = DecodeCtx {
        as4: true,
        ibgp: true,
    };
    let mut rest = data;
    // Frames as the session cuts them; a bad header ends the session.
    while let Ok(Some(len)) = header::frame_len(rest) {
        let Some((frame, tail)) = rest.split_at_checked(len) else {
            break;
        };
        rest = tail;
        let Ok(d) = Message::decode(frame, &ctx) else {
            break; // NOTIFICATION and reset
        };
        let withdraw_all = d.verdict().is_some_and(|a| a >= Action::TreatAsWithdraw);
        let Message::Update(u) = d.value else {
            continue;
        };
        if let Some(un) = &u.mp_unreach {
            match L2vpnEvpn::decode_nlri(&un.nlri) {
                Ok(nlri) => rib.apply(RibInput::Withdraw { peer: 1, nlri }),
                Err(_) => break,
            }
        }
        if let Some(r) = u.mp_reach {
            let Ok(nlri) = L2vpnEvpn::decode_nlri(&r.nlri) else {
                break;
            };
            if withdraw_all {
                rib.apply(RibInput::Withdraw { peer: 1, nlri });
            } else {
                let next_hop = match r.next_hop {
                    MpNextHop::V4(a) => IpAddr::V4(a),
                    MpNextHop::V6(a) | MpNextHop::V6LinkLocal(a, _) => IpAddr::V6(a),
                };
                rib.apply(RibInput::Update {
                    peer: 1,
                    attrs: RouteAttrs {
                        attrs: u.attrs,
                        next_hop,
                    },
                    reach: nlri,
                });
            }
        }
        rib.flush(std::time::Instant::now());
    }
    let stats = rib.stats();
    assert_eq!(stats.destinations, rib.received_count(1));
    assert!(rib.advertised_count(2) <= stats.destinations);
    rib.apply(RibInput::PeerDown(1));
    rib.flush(std::time::Instant::now());
    let stats = rib.stats();
    assert_eq!(
        (stats.destinations, stats.paths),
        (0, 0),
        "all gone with the peer"
    );
    assert_eq!(rib.advertised_count(2), 0);
});
