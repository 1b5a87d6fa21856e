//! What lives on this host: local MACs (with the mobility sequence they are advertised
//! with) and their addresses, with the limits that keep forged ARP/ND or a MAC flood
//! from making vxbgp advertise an unbounded number of routes.
//!
//! Every lookup the learning path makes per packet or per kernel event is a hash
//! lookup: the MACs of a VNI and the addresses of a MAC are counted, not scanned.

use std::net::IpAddr;

use foldhash::{HashMap, HashMapExt};

use crate::model::Mac;

/// How much a host may learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnLimits {
    /// Local MACs per VNI; more are not advertised.
    pub macs_per_vni: usize,
    /// Addresses (IPv4 and IPv6, from neighbour entries or snooping) per local MAC.
    pub addresses_per_mac: usize,
}

impl Default for LearnLimits {
    fn default() -> Self {
        LearnLimits {
            macs_per_vni: 16384,
            addresses_per_mac: 32,
        }
    }
}

/// A limit refused what was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    MacsPerVni,
    AddressesPerMac,
}

#[derive(Debug)]
pub struct Local {
    limits: LearnLimits,
    macs: HashMap<(u32, Mac), u32>,
    ips: HashMap<(u32, IpAddr), Mac>,
    macs_in_vni: HashMap<u32, usize>,
    ips_of_mac: HashMap<(u32, Mac), usize>,
    /// A VNI each local MAC is in (snooping sees a MAC, not its VNI).
    vni_of_mac: HashMap<Mac, u32>,
    /// How often a limit refused something.
    pub refused: u64,
}

impl Local {
    pub fn new(limits: LearnLimits) -> Local {
        Local {
            limits,
            macs: HashMap::new(),
            ips: HashMap::new(),
            macs_in_vni: HashMap::new(),
            ips_of_mac: HashMap::new(),
            vni_of_mac: HashMap::new(),
            refused: 0,
        }
    }

    pub fn seq(&self, vni: u32, mac: Mac) -> Option<u32> {
        self.macs.get(&(vni, mac)).copied()
    }

    pub fn has_mac(&self, vni: u32, mac: Mac) -> bool {
        self.macs.contains_key(&(vni, mac))
    }

    pub fn vni_of(&self, mac: Mac) -> Option<u32> {
        self.vni_of_mac.get(&mac).copied()
    }

    pub fn mac_of(&self, vni: u32, ip: IpAddr) -> Option<Mac> {
        self.ips.get(&(vni, ip)).copied()
    }

    /// Adds a local MAC, unless its VNI is full.
    pub fn add_mac(&mut self, vni: u32, mac: Mac, seq: u32) -> Result<(), Refused> {
        if let Some(s) = self.macs.get_mut(&(vni, mac)) {
            *s = seq;
            return Ok(());
        }
        let n = self.macs_in_vni.entry(vni).or_default();
        if *n >= self.limits.macs_per_vni {
            self.refused += 1;
            return Err(Refused::MacsPerVni);
        }
        *n += 1;
        self.macs.insert((vni, mac), seq);
        self.vni_of_mac.entry(mac).or_insert(vni);
        Ok(())
    }

    /// Removes a local MAC (not its addresses); returns its sequence.
    pub fn remove_mac(&mut self, vni: u32, mac: Mac) -> Option<u32> {
        let seq = self.macs.remove(&(vni, mac))?;
        if let Some(n) = self.macs_in_vni.get_mut(&vni) {
            *n = n.saturating_sub(1);
        }
        if self.vni_of_mac.get(&mac) == Some(&vni) {
            self.vni_of_mac.remove(&mac);
            // The same MAC may be local in another VNI too.
            if let Some(&(v, _)) = self.macs.keys().find(|(_, m)| *m == mac) {
                self.vni_of_mac.insert(mac, v);
            }
        }
        Some(seq)
    }

    /// Binds `ip` to `mac`, unless the MAC has its fill of addresses. Returns the MAC
    /// the address had before.
    pub fn add_ip(&mut self, vni: u32, ip: IpAddr, mac: Mac) -> Result<Option<Mac>, Refused> {
        let old = self.ips.get(&(vni, ip)).copied();
        if old == Some(mac) {
            return Ok(old);
        }
        let n = self.ips_of_mac.get(&(vni, mac)).copied().unwrap_or(0);
        if n >= self.limits.addresses_per_mac {
            self.refused += 1;
            return Err(Refused::AddressesPerMac);
        }
        self.remove_ip(vni, ip);
        self.ips.insert((vni, ip), mac);
        *self.ips_of_mac.entry((vni, mac)).or_default() += 1;
        Ok(old)
    }

    pub fn remove_ip(&mut self, vni: u32, ip: IpAddr) -> Option<Mac> {
        let mac = self.ips.remove(&(vni, ip))?;
        if let Some(n) = self.ips_of_mac.get_mut(&(vni, mac)) {
            *n -= 1;
            if *n == 0 {
                self.ips_of_mac.remove(&(vni, mac));
            }
        }
        Some(mac)
    }

    /// The addresses of a local MAC.
    pub fn ips_of(&self, vni: u32, mac: Mac) -> Vec<IpAddr> {
        if !self.ips_of_mac.contains_key(&(vni, mac)) {
            return Vec::new();
        }
        self.ips
            .iter()
            .filter(|((v, _), m)| *v == vni && **m == mac)
            .map(|((_, ip), _)| *ip)
            .collect()
    }

    /// Forgets everything of a VNI.
    pub fn drop_vni(&mut self, vni: u32) {
        self.macs.retain(|(v, _), _| *v != vni);
        self.ips.retain(|(v, _), _| *v != vni);
        self.ips_of_mac.retain(|(v, _), _| *v != vni);
        self.macs_in_vni.remove(&vni);
        self.vni_of_mac.retain(|_, v| *v != vni);
    }

    pub fn macs(&self) -> impl Iterator<Item = (u32, Mac)> + '_ {
        self.macs.keys().copied()
    }

    pub fn mac_count(&self) -> usize {
        self.macs.len()
    }

    pub fn macs_in(&self, vni: u32) -> usize {
        self.macs_in_vni.get(&vni).copied().unwrap_or(0)
    }

    pub fn ips_in(&self, vni: u32) -> usize {
        self.ips_of_mac
            .iter()
            .filter(|((v, _), _)| *v == vni)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M1: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const M2: Mac = Mac([2, 0, 0, 0, 0, 2]);

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, n])
    }

    #[test]
    fn limits_refuse_and_count_and_free_up_again() {
        let mut l = Local::new(LearnLimits {
            macs_per_vni: 1,
            addresses_per_mac: 2,
        });
        assert_eq!(l.add_mac(42, M1, 0), Ok(()));
        assert_eq!(l.add_mac(42, M2, 0), Err(Refused::MacsPerVni));
        assert_eq!(l.add_mac(43, M2, 0), Ok(()), "another VNI has its own room");
        assert_eq!(l.add_ip(42, ip(1), M1), Ok(None));
        assert_eq!(l.add_ip(42, ip(2), M1), Ok(None));
        assert_eq!(l.add_ip(42, ip(3), M1), Err(Refused::AddressesPerMac));
        assert_eq!(
            l.add_ip(42, ip(1), M1),
            Ok(Some(M1)),
            "a known binding is no new one"
        );
        assert_eq!(l.refused, 2);
        assert_eq!((l.macs_in(42), l.ips_in(42)), (1, 2));
        assert_eq!(l.vni_of(M1), Some(42));
        l.remove_ip(42, ip(2));
        assert_eq!(l.add_ip(42, ip(3), M1), Ok(None));
        assert_eq!(l.remove_mac(42, M1), Some(0));
        assert_eq!(l.vni_of(M1), None);
        assert_eq!(l.add_mac(42, M2, 1), Ok(()));
        assert_eq!(l.vni_of(M2), Some(43), "the first VNI it was learned in");
        l.drop_vni(42);
        assert_eq!((l.macs_in(42), l.ips_in(42)), (0, 0));
        assert_eq!(l.mac_count(), 1);
    }

    #[test]
    fn an_address_that_moves_to_another_mac_is_counted_there() {
        let mut l = Local::new(LearnLimits::default());
        l.add_mac(42, M1, 0).unwrap();
        l.add_mac(42, M2, 0).unwrap();
        l.add_ip(42, ip(1), M1).unwrap();
        assert_eq!(l.add_ip(42, ip(1), M2), Ok(Some(M1)));
        assert!(l.ips_of(42, M1).is_empty());
        assert_eq!(l.ips_of(42, M2), vec![ip(1)]);
    }
}
