//! Who a peer is to us: the facts the RIB needs to apply RFC 4271 / RFC 4456 rules.

use std::net::{IpAddr, Ipv4Addr};

/// A peer's slot in the RIB. [`LOCAL_PEER`] and [`STATIC_PEER`] are the speaker
/// itself (routes the host agent, and routes the user originates).
pub type PeerId = u32;

/// Routes the host agent originates (what lives on this host) come from this
/// pseudo-peer.
pub const LOCAL_PEER: PeerId = 0;

/// Routes the user originates (`vxbgp route add`, the config file) come from this
/// one: the same MAC originated both ways is two paths, and removing one leaves the
/// other. (Session ids count up from 1 and never get here; `PeerId::MAX` stands for
/// an update group.)
pub const STATIC_PEER: PeerId = PeerId::MAX - 1;

/// Whether `peer` is this speaker (one of the local pseudo-peers).
pub fn is_local(peer: PeerId) -> bool {
    peer == LOCAL_PEER || peer == STATIC_PEER
}

/// How a peer relates to us (RFC 4456 §6 terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    /// Internal peer that is not a route-reflector client.
    Ibgp,
    /// Internal peer that is our route-reflector client.
    IbgpClient,
    /// External peer.
    Ebgp,
}

impl PeerKind {
    pub fn is_ibgp(self) -> bool {
        !matches!(self, PeerKind::Ebgp)
    }
}

/// An established peer as the RIB sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: PeerId,
    pub addr: IpAddr,
    pub asn: u32,
    /// The peer's BGP identifier from its OPEN.
    pub bgp_id: Ipv4Addr,
    pub kind: PeerKind,
    /// Four-octet AS numbers negotiated (RFC 6793): how AS_PATH is encoded to it.
    pub as4: bool,
    /// The most routes it may give us.
    pub max_prefixes: Option<MaxPrefixes>,
}

/// A limit on the routes a peer gives (RFC 4486 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    pub limit: usize,
    /// Only log when it is passed; otherwise the session is closed with Cease /
    /// Maximum Number of Prefixes Reached.
    pub warn_only: bool,
}

/// Facts about the local speaker that shape import and export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalInfo {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// CLUSTER_ID (RFC 4456 §7); the router id unless configured.
    pub cluster_id: Ipv4Addr,
}

/// An address range such as `198.19.0.0/24` (for `--listen-range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl std::str::FromStr for Prefix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s.split_once('/').ok_or_else(|| {
            format!("'{s}' is not a prefix: expected ADDRESS/LENGTH, e.g. 198.19.0.0/24")
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{addr}' in '{s}' is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("'{len}' in '{s}' is not a prefix length (0..={max})"))?;
        Ok(Prefix { addr, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parses_and_matches() {
        let p: Prefix = "198.19.0.0/24".parse().unwrap();
        assert!(p.contains("198.19.0.77".parse().unwrap()));
        assert!(!p.contains("198.19.1.1".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("198.18.3.4".parse().unwrap()));
        assert!("198.19.0.0/33"
            .parse::<Prefix>()
            .unwrap_err()
            .contains("prefix length"));
        assert!("198.19.0.0".parse::<Prefix>().is_err());
        assert!("fd00::/8"
            .parse::<Prefix>()
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
    }
}
