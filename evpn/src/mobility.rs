//! MAC mobility (RFC 7432 §15), as pure functions over attributes and numbers.
//!
//! RFC 7432 §15.1: "If the PE detecting a locally attached MAC address for which
//! it had previously received a MAC/IP Advertisement route [...] the PE advertises
//! the MAC address in a MAC/IP Advertisement route tagged with a MAC Mobility
//! extended community attribute. The value of the Sequence Number field in this
//! attribute is set to the maximum of the sequence number received in the remote
//! MAC/IP Advertisement route, plus one." A route without the community counts as
//! sequence number 0. "A PE receiving a MAC/IP Advertisement route for a MAC
//! address with a different Ethernet segment identifier and a higher sequence
//! number than that which it had previously advertised withdraws its MAC/IP
//! Advertisement route. If two (or more) PEs advertise the same MAC address with
//! the same sequence number but different Ethernet segment identifiers, a PE that
//! receives these routes selects the route advertised by the PE with the lowest
//! IP address as the best route."
//!
//! RFC 7432 §15.2: a MAC advertised with the sticky/static flag "MUST NOT" move:
//! a PE that sees a static MAC elsewhere does not take over the MAC, and two PEs
//! both claiming it static is a misconfiguration to alert on.

use std::net::IpAddr;

use bgp::wire::PathAttrs;
use serde::{Deserialize, Serialize};

use crate::ext_comm::{classify, EvpnExtCommunity};

/// The MAC Mobility extended community's content (RFC 7432 §7.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MacMobility {
    pub seq: u32,
    pub sticky: bool,
}

/// The MAC Mobility community of a path, if it carries one. RFC 7432 does not
/// say what to do with several; like FRR (`bgp_attr_mac_mobility_seqnum`) the
/// first one counts.
pub fn mobility(attrs: &PathAttrs) -> Option<MacMobility> {
    attrs
        .ext_communities
        .as_deref()?
        .iter()
        .find_map(|c| match classify(c) {
            EvpnExtCommunity::MacMobility { sticky, seq } => Some(MacMobility { seq, sticky }),
            _ => None,
        })
}

/// The sequence number of a path: that of its MAC Mobility community, or 0
/// without one (RFC 7432 §15.1).
pub fn seq_of(attrs: &PathAttrs) -> u32 {
    mobility(attrs).map_or(0, |m| m.seq)
}

/// The sequence number to advertise for a MAC learned locally, given the best
/// sequence number among the remote routes for that MAC (`None` when there is no
/// remote route: a first advertisement, sequence 0 and no community needed).
/// RFC 7432 §15.1: the maximum received, plus one. The RFC says nothing of the
/// wrap at 2^32 - 1; we stay there rather than wrap to a value every peer would
/// consider older.
pub fn next_local_seq(remote_best_seq: Option<u32>) -> u32 {
    remote_best_seq.map_or(0, |s| s.saturating_add(1))
}

/// Whether our local route for a MAC must give way to a remote one (and be
/// withdrawn), RFC 7432 §15.1/§15.2:
/// - a local sticky MAC never gives way (two sticky claimants: both stay and the
///   operator is alerted — see [`sticky_conflict`]);
/// - a remote sticky MAC wins over a local dynamic one;
/// - otherwise the higher sequence number wins, and on equal numbers the lower
///   VTEP address wins.
pub fn local_loses(
    local: MacMobility,
    local_vtep: IpAddr,
    remote: MacMobility,
    remote_vtep: IpAddr,
) -> bool {
    if local.sticky {
        return false;
    }
    if remote.sticky {
        return true;
    }
    match remote.seq.cmp(&local.seq) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => remote_vtep < local_vtep,
    }
}

/// RFC 7432 §15.2: the same MAC advertised as static by two PEs is a
/// misconfiguration the operator must be told of.
pub fn sticky_conflict(a: MacMobility, b: MacMobility) -> bool {
    a.sticky && b.sticky
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::ExtCommunity;
    use std::net::Ipv4Addr;

    fn attrs(comms: &[[u8; 8]]) -> PathAttrs {
        PathAttrs {
            ext_communities: Some(comms.iter().map(|c| ExtCommunity(*c)).collect()),
            ..PathAttrs::default()
        }
    }

    #[test]
    fn reads_the_first_mobility_community() {
        let a = attrs(&[
            [0, 2, 0xfd, 0xe9, 0, 0, 0, 42],
            [6, 0, 1, 0, 0, 0, 0, 7],
            [6, 0, 0, 0, 0, 0, 0, 9],
        ]);
        assert_eq!(
            mobility(&a),
            Some(MacMobility {
                seq: 7,
                sticky: true
            })
        );
        assert_eq!(seq_of(&a), 7);
        assert_eq!(mobility(&PathAttrs::default()), None);
        assert_eq!(seq_of(&attrs(&[[3, 0x0c, 0, 0, 0, 0, 0, 8]])), 0);
    }

    #[test]
    fn next_seq() {
        assert_eq!(next_local_seq(None), 0);
        assert_eq!(next_local_seq(Some(0)), 1);
        assert_eq!(next_local_seq(Some(41)), 42);
        assert_eq!(next_local_seq(Some(u32::MAX)), u32::MAX);
    }

    #[test]
    fn who_loses() {
        let low = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1));
        let high = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
        let m = |seq, sticky| MacMobility { seq, sticky };
        assert!(local_loses(m(1, false), low, m(2, false), high));
        assert!(!local_loses(m(2, false), low, m(1, false), high));
        // Equal sequence numbers: the lowest VTEP address wins.
        assert!(local_loses(m(3, false), high, m(3, false), low));
        assert!(!local_loses(m(3, false), low, m(3, false), high));
        // Sticky.
        assert!(local_loses(m(9, false), low, m(0, true), high));
        assert!(!local_loses(m(0, true), high, m(9, false), low));
        assert!(!local_loses(m(0, true), high, m(0, true), low));
        assert!(sticky_conflict(m(0, true), m(0, true)));
        assert!(!sticky_conflict(m(0, true), m(0, false)));
    }
}
