//! The host agent: turns what the FIB found on this host into routes.
//!
//! Per VNI a type-3 route (PMSI ingress replication to the vxlan device's `local`
//! address, VNI as label, encapsulation VXLAN, RD `router-id:n` with n the VNI, or
//! for a VNI above 65535 a number no other VNI of the host has
//! (`evpn::originate::rd_numbers`), RT `ASN:VNI`); per
//! local MAC a type-2 route, per local MAC/IP pair a type-2 route with the IP
//! (RFC 7432 §7.2, §7.3; RFC 8365 §5.1). What goes away is withdrawn.
//!
//! ```text
//!  FIB ──Vec<KernelEvent> (cap EVENT_QUEUE)──► agent ──RibCmd (await)──► RIB
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use bgp::peer::LOCAL_PEER;
use bgp::rib::task::RibCmd;
use bgp::rib::{RibInput, RouteAttrs};
use evpn::{originate, EvpnKey, EvpnRoute, L2vpnEvpn, MacAddr, Vni};
use fib::discover::VniDevice;
use fib::model::Mac;
use fib::task::KernelEvent;
use tokio::sync::mpsc;

use crate::origin::default_rd;

pub struct Agent {
    asn: u32,
    router_id: Ipv4Addr,
    rib_tx: mpsc::Sender<RibCmd<L2vpnEvpn>>,
    /// VNI → our VTEP address for it.
    vteps: HashMap<u32, IpAddr>,
    /// Local MACs: (MAC-mobility sequence, sticky).
    macs: HashMap<(u32, Mac), (u32, bool)>,
    ips: HashMap<(u32, IpAddr), Mac>,
    /// What we originated, to withdraw exactly that.
    originated: HashMap<EvpnKey, (u32, EvpnRoute)>,
    /// The RD number of each VNI (`router-id:n`), from the set of VNIs up.
    rd_numbers: BTreeMap<Vni, u16>,
}

impl Agent {
    pub fn new(asn: u32, router_id: Ipv4Addr, rib_tx: mpsc::Sender<RibCmd<L2vpnEvpn>>) -> Self {
        Agent {
            asn,
            router_id,
            rib_tx,
            vteps: HashMap::new(),
            macs: HashMap::new(),
            ips: HashMap::new(),
            originated: HashMap::new(),
            rd_numbers: BTreeMap::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<Vec<KernelEvent>>) {
        while let Some(events) = rx.recv().await {
            let mut out = Vec::new();
            for e in events {
                self.event(e, &mut out);
            }
            for input in out {
                if self.rib_tx.send(RibCmd::Input(input)).await.is_err() {
                    return;
                }
            }
        }
    }

    fn event(&mut self, e: KernelEvent, out: &mut Vec<RibInput<L2vpnEvpn>>) {
        match e {
            KernelEvent::VniUp(dev) => self.vni_up(&dev, out),
            KernelEvent::VniDown(vni) => {
                self.vteps.remove(&vni);
                self.withdraw_vni(vni, out);
                self.macs.retain(|(v, _), _| *v != vni);
                self.ips.retain(|(v, _), _| *v != vni);
                self.renumber(out);
            }
            KernelEvent::LocalMac {
                vni,
                mac,
                present,
                seq,
                sticky,
            } => {
                if present {
                    let old = self.macs.insert((vni, mac), (seq, sticky));
                    self.originate_mac(vni, mac, None, out);
                    if old != Some((seq, sticky)) {
                        // Re-advertise its addresses with the new sequence too (also
                        // when they were learned before the MAC: they went out without
                        // the MAC's sequence, RFC 7432 §15 wants it on every route).
                        let ips: Vec<IpAddr> = self
                            .ips
                            .iter()
                            .filter(|((v, _), m)| *v == vni && **m == mac)
                            .map(|((_, ip), _)| *ip)
                            .collect();
                        for ip in ips {
                            self.originate_mac(vni, mac, Some(ip), out);
                        }
                    }
                } else {
                    self.macs.remove(&(vni, mac));
                    self.withdraw_mac(vni, mac, None, out);
                }
            }
            KernelEvent::LocalIp {
                vni,
                mac,
                ip,
                present,
            } => {
                if present {
                    if let Some(old) = self.ips.insert((vni, ip), mac) {
                        if old != mac {
                            self.withdraw_mac(vni, old, Some(ip), out);
                        }
                    }
                    self.originate_mac(vni, mac, Some(ip), out);
                } else {
                    self.ips.remove(&(vni, ip));
                    self.withdraw_mac(vni, mac, Some(ip), out);
                }
            }
        }
    }

    fn vni_up(&mut self, dev: &VniDevice, out: &mut Vec<RibInput<L2vpnEvpn>>) {
        let Some(vtep) = dev.local.filter(|_| dev.up) else {
            // Without `local` there is no next hop to advertise (discover.rs warns);
            // a device that is down forwards nothing, so others must not send to it.
            self.vteps.remove(&dev.vni);
            self.withdraw_vni(dev.vni, out);
            return;
        };
        if self.vteps.insert(dev.vni, vtep) == Some(vtep) {
            return;
        }
        self.renumber(out);
        self.originate_vni(dev.vni, vtep, out);
    }

    /// Gives the VNIs up their RD numbers again after the set changed; a VNI whose
    /// number changed (only where low 16 bits collide) is originated again.
    fn renumber(&mut self, out: &mut Vec<RibInput<L2vpnEvpn>>) {
        let vnis = self.vteps.keys().filter_map(|&v| Vni::new(v)).collect();
        let old = std::mem::replace(&mut self.rd_numbers, originate::rd_numbers(&vnis));
        let moved: Vec<(u32, IpAddr)> = self
            .vteps
            .iter()
            .filter(|(v, _)| {
                Vni::new(**v).is_some_and(|v| {
                    old.get(&v)
                        .is_some_and(|n| self.rd_numbers.get(&v) != Some(n))
                })
            })
            .map(|(v, ip)| (*v, *ip))
            .collect();
        for (vni, vtep) in moved {
            tracing::info!(
                vni,
                "RD number changed with the set of VNIs: routes re-originated"
            );
            self.originate_vni(vni, vtep, out);
        }
    }

    /// (Re)originates everything of a VNI: its type-3 route, its MACs and addresses.
    fn originate_vni(&mut self, dev_vni: u32, vtep: IpAddr, out: &mut Vec<RibInput<L2vpnEvpn>>) {
        self.withdraw_vni(dev_vni, out);
        let Some(vni) = Vni::new(dev_vni) else { return };
        let (route, attrs) = originate::imet(
            self.rd(vni),
            vni,
            vtep,
            &[originate::auto_rt(self.asn, vni)],
        );
        self.push(dev_vni, route, attrs, vtep, out);
        let macs: Vec<Mac> = self
            .macs
            .keys()
            .filter(|(v, _)| *v == dev_vni)
            .map(|(_, m)| *m)
            .collect();
        for mac in macs {
            self.originate_mac(dev_vni, mac, None, out);
        }
        let ips: Vec<(IpAddr, Mac)> = self
            .ips
            .iter()
            .filter(|((v, _), _)| *v == dev_vni)
            .map(|((_, ip), m)| (*ip, *m))
            .collect();
        for (ip, mac) in ips {
            self.originate_mac(dev_vni, mac, Some(ip), out);
        }
    }

    fn rd(&self, vni: Vni) -> evpn::RouteDistinguisher {
        match self.rd_numbers.get(&vni) {
            Some(&n) => originate::auto_rd(self.router_id, n),
            None => default_rd(self.router_id, vni),
        }
    }

    fn mac_route(
        &self,
        vni: u32,
        mac: Mac,
        ip: Option<IpAddr>,
    ) -> Option<(EvpnRoute, bgp::wire::PathAttrs)> {
        let v = Vni::new(vni)?;
        Some(originate::mac_ip(
            self.rd(v),
            v,
            MacAddr(mac.0),
            ip,
            &[originate::auto_rt(self.asn, v)],
            // RFC 7432 §15: the MAC's sequence goes on all its routes.
            // A static local MAC is sticky (RFC 7432 §15.2).
            self.macs.get(&(vni, mac)).copied(),
        ))
    }

    fn originate_mac(
        &mut self,
        vni: u32,
        mac: Mac,
        ip: Option<IpAddr>,
        out: &mut Vec<RibInput<L2vpnEvpn>>,
    ) {
        let Some(&vtep) = self.vteps.get(&vni) else {
            return;
        };
        if let Some((route, attrs)) = self.mac_route(vni, mac, ip) {
            self.push(vni, route, attrs, vtep, out);
        }
    }

    fn withdraw_mac(
        &mut self,
        vni: u32,
        mac: Mac,
        ip: Option<IpAddr>,
        out: &mut Vec<RibInput<L2vpnEvpn>>,
    ) {
        if let Some((route, _)) = self.mac_route(vni, mac, ip) {
            if let Some((_, r)) = self.originated.remove(&route.key()) {
                out.push(RibInput::Withdraw {
                    peer: LOCAL_PEER,
                    nlri: vec![r],
                });
            }
        }
    }

    fn withdraw_vni(&mut self, vni: u32, out: &mut Vec<RibInput<L2vpnEvpn>>) {
        let keys: Vec<EvpnKey> = self
            .originated
            .iter()
            .filter(|(_, (v, _))| *v == vni)
            .map(|(k, _)| k.clone())
            .collect();
        let mut nlri = Vec::new();
        for k in keys {
            if let Some((_, r)) = self.originated.remove(&k) {
                nlri.push(r);
            }
        }
        if !nlri.is_empty() {
            out.push(RibInput::Withdraw {
                peer: LOCAL_PEER,
                nlri,
            });
        }
    }

    fn push(
        &mut self,
        vni: u32,
        route: EvpnRoute,
        attrs: bgp::wire::PathAttrs,
        vtep: IpAddr,
        out: &mut Vec<RibInput<L2vpnEvpn>>,
    ) {
        self.originated.insert(route.key(), (vni, route.clone()));
        out.push(RibInput::Update {
            peer: LOCAL_PEER,
            attrs: RouteAttrs {
                attrs,
                next_hop: vtep,
            },
            reach: vec![route],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        let (tx, _rx) = mpsc::channel(1);
        Agent::new(65001, Ipv4Addr::new(198, 19, 0, 1), tx)
    }

    fn dev(up: bool) -> VniDevice {
        VniDevice {
            vni: 42,
            name: "vxlan0".into(),
            ifindex: 5,
            bridge_ifindex: Some(4),
            local: Some("198.19.0.1".parse().unwrap()),
            group: None,
            learning: false,
            dstport: 4789,
            up,
            port_learning: Some(false),
            neigh_suppress: Some(true),
        }
    }

    /// (prefix, next hop) of every update, and the prefixes withdrawn.
    fn summary(out: &[RibInput<L2vpnEvpn>]) -> (Vec<String>, Vec<String>) {
        let mut adds = Vec::new();
        let mut dels = Vec::new();
        for i in out {
            match i {
                RibInput::Update { attrs, reach, .. } => {
                    adds.extend(reach.iter().map(|r| format!("{r} via {}", attrs.next_hop)))
                }
                RibInput::Withdraw { nlri, .. } => dels.extend(nlri.iter().map(|r| r.to_string())),
                _ => {}
            }
        }
        (adds, dels)
    }

    const MAC: Mac = Mac([2, 0, 0, 0, 0, 7]);

    fn dev_vni(vni: u32) -> VniDevice {
        VniDevice {
            vni,
            ifindex: vni,
            ..dev(true)
        }
    }

    /// The RD of each VNI's type-3 route the agent holds originated.
    fn imet_rds(a: &Agent) -> BTreeMap<u32, String> {
        a.originated
            .values()
            .filter_map(|(v, r)| match r {
                EvpnRoute::Imet(i) => Some((*v, i.rd.to_string())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rds_are_unique_per_vni_and_the_same_whatever_order_vnis_appear_in() {
        let mut a = agent();
        let mut out = Vec::new();
        a.event(KernelEvent::VniUp(dev_vni(65636)), &mut out);
        a.event(KernelEvent::VniUp(dev_vni(100)), &mut out);
        let want: BTreeMap<u32, String> = [
            (100, "198.19.0.1:100".to_string()),
            (65636, "198.19.0.1:101".to_string()),
        ]
        .into();
        assert_eq!(imet_rds(&a), want, "VNI 65636 does not take VNI 100's RD");
        // 65636 had 198.19.0.1:100 until VNI 100 came: withdrawn and re-originated.
        let (_, dels) = summary(&out);
        assert_eq!(dels, vec!["[3]:[0]:[32]:[198.19.0.1]"]);
        let mut b = agent();
        let mut out = Vec::new();
        b.event(KernelEvent::VniUp(dev_vni(100)), &mut out);
        b.event(KernelEvent::VniUp(dev_vni(65636)), &mut out);
        assert_eq!(
            imet_rds(&b),
            want,
            "the same after a restart that finds them in another order"
        );
    }

    #[test]
    fn vni_and_local_macs_become_routes_and_go_with_the_vni() {
        let mut a = agent();
        let mut out = Vec::new();
        // A MAC learned before its VNI is known waits for the VTEP address.
        a.event(
            KernelEvent::LocalMac {
                vni: 42,
                mac: MAC,
                present: true,
                seq: 0,
                sticky: false,
            },
            &mut out,
        );
        assert!(out.is_empty());
        a.event(KernelEvent::VniUp(dev(true)), &mut out);
        let ip: IpAddr = "198.18.0.7".parse().unwrap();
        a.event(
            KernelEvent::LocalIp {
                vni: 42,
                mac: MAC,
                ip,
                present: true,
            },
            &mut out,
        );
        let (adds, dels) = summary(&out);
        assert_eq!(
            adds,
            vec![
                "[3]:[0]:[32]:[198.19.0.1] via 198.19.0.1",
                "[2]:[0]:[48]:[02:00:00:00:00:07] via 198.19.0.1",
                "[2]:[0]:[48]:[02:00:00:00:00:07]:[32]:[198.18.0.7] via 198.19.0.1",
            ]
        );
        assert!(dels.is_empty());
        out.clear();
        // The device goes down: everything of the VNI is withdrawn.
        a.event(KernelEvent::VniUp(dev(false)), &mut out);
        let (adds, dels) = summary(&out);
        assert!(adds.is_empty());
        assert_eq!(dels.len(), 3, "{dels:?}");
        out.clear();
        // Up again: all of it comes back.
        a.event(KernelEvent::VniUp(dev(true)), &mut out);
        assert_eq!(summary(&out).0.len(), 3);
    }

    #[test]
    fn rfc7432_15_address_learned_before_its_moved_in_mac_gets_the_sequence() {
        let mut a = agent();
        let mut out = Vec::new();
        a.event(KernelEvent::VniUp(dev(true)), &mut out);
        out.clear();
        let ip: IpAddr = "198.18.0.7".parse().unwrap();
        // The FIB's events of one batch may come in any order: the address first.
        a.event(
            KernelEvent::LocalIp {
                vni: 42,
                mac: MAC,
                ip,
                present: true,
            },
            &mut out,
        );
        a.event(
            KernelEvent::LocalMac {
                vni: 42,
                mac: MAC,
                present: true,
                seq: 2,
                sticky: false,
            },
            &mut out,
        );
        let last_seq = |prefix: &str| {
            out.iter()
                .rev()
                .find_map(|i| match i {
                    RibInput::Update { attrs, reach, .. }
                        if reach.iter().any(|r| r.to_string() == prefix) =>
                    {
                        Some(evpn::mobility::seq_of(&attrs.attrs))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{prefix} not advertised: {out:?}"))
        };
        assert_eq!(last_seq("[2]:[0]:[48]:[02:00:00:00:00:07]"), 2);
        assert_eq!(
            last_seq("[2]:[0]:[48]:[02:00:00:00:00:07]:[32]:[198.18.0.7]"),
            2
        );
    }

    /// RFC 7432 §15.2: a static local MAC is advertised sticky, on its MAC/IP routes too.
    #[test]
    fn rfc7432_15_2_static_local_mac_is_advertised_sticky() {
        let mut a = agent();
        let mut out = Vec::new();
        a.event(KernelEvent::VniUp(dev(true)), &mut out);
        out.clear();
        a.event(
            KernelEvent::LocalMac {
                vni: 42,
                mac: MAC,
                present: true,
                seq: 0,
                sticky: true,
            },
            &mut out,
        );
        let ip: IpAddr = "198.18.0.7".parse().unwrap();
        a.event(
            KernelEvent::LocalIp {
                vni: 42,
                mac: MAC,
                ip,
                present: true,
            },
            &mut out,
        );
        let stickies: Vec<bool> = out
            .iter()
            .filter_map(|i| match i {
                RibInput::Update { attrs, .. } => {
                    Some(evpn::mobility::mobility(&attrs.attrs).is_some_and(|m| m.sticky))
                }
                _ => None,
            })
            .collect();
        assert_eq!(stickies, vec![true, true], "{out:?}");
    }

    #[test]
    fn rfc7432_15_moved_in_mac_carries_its_sequence_on_every_route() {
        let mut a = agent();
        let mut out = Vec::new();
        a.event(KernelEvent::VniUp(dev(true)), &mut out);
        out.clear();
        a.event(
            KernelEvent::LocalMac {
                vni: 42,
                mac: MAC,
                present: true,
                seq: 3,
                sticky: false,
            },
            &mut out,
        );
        let RibInput::Update { attrs, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(evpn::mobility::seq_of(&attrs.attrs), 3);
        out.clear();
        a.event(
            KernelEvent::LocalMac {
                vni: 42,
                mac: MAC,
                present: false,
                seq: 3,
                sticky: false,
            },
            &mut out,
        );
        assert_eq!(summary(&out).1, vec!["[2]:[0]:[48]:[02:00:00:00:00:07]"]);
    }
}
