//! Local learning and mobility decisions, driven without a kernel: reports and routes
//! in, the events the agent gets and the kernel operations out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::*;
use crate::plan::tests::{mac, mac_ip_sticky, vtep};

const VNI: u32 = 42;

fn learner() -> Learner {
    Learner::new(LearnLimits::default(), DadConfig::default())
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, n))
}

/// The LocalMac events: (present, seq, sticky).
fn mac_events(l: &mut Learner) -> Vec<(bool, u32, bool)> {
    l.take_events()
        .into_iter()
        .filter_map(|e| match e {
            KernelEvent::LocalMac {
                present,
                seq,
                sticky,
                ..
            } => Some((present, seq, sticky)),
            _ => None,
        })
        .collect()
}

/// A planner holding one remote route for mac(1) from VTEP `from`; the kernel
/// operations it asked for.
fn remote(p: &mut Planner, from: u8, seq: u32, sticky: bool) -> Vec<FibOp> {
    let (_, change) = mac_ip_sticky(from, 1, None, seq, sticky);
    p.apply(&[change])
}

fn moved_away(ops: &[FibOp]) -> bool {
    ops.iter()
        .any(|o| matches!(o, FibOp::MacSet(m) if m.mac == mac(1)))
}

/// RFC 7432 §15.1: a MAC that a remote VTEP advertises with sequence 3 and now shows up
/// on a local port has moved here: it is advertised with sequence 4.
#[test]
fn a_mac_that_moved_here_is_advertised_one_above_the_remote_sequence() {
    let mut p = Planner::default();
    remote(&mut p, 2, 3, false);
    let mut l = learner();
    l.mac_seen(&p, VNI, mac(1), false);
    assert_eq!(mac_events(&mut l), vec![(true, 4, false)]);
    // Unknown elsewhere: sequence 0.
    l.mac_seen(&Planner::default(), VNI, mac(2), false);
    assert_eq!(mac_events(&mut l), vec![(true, 0, false)]);
}

/// A remote route with a higher sequence takes a local MAC away: the local route is
/// withdrawn and the kernel points the MAC at the remote VTEP. A lower one changes
/// nothing here and is not programmed.
#[test]
fn a_higher_remote_sequence_takes_the_local_mac_away() {
    let mut p = Planner::default();
    let mut l = learner();
    l.mac_seen(&p, VNI, mac(1), false);
    mac_events(&mut l);
    let ops = remote(&mut p, 2, 1, false);
    let out = l.mobility(&p, |_| Some(vtep(1)), ops);
    assert!(moved_away(&out), "{out:?}");
    assert_eq!(mac_events(&mut l), vec![(false, 0, false)]);
    assert!(!l.local.has_mac(VNI, mac(1)));
}

/// Equal sequences: the lower VTEP address wins (RFC 7432 §15.1).
#[test]
fn on_equal_sequences_the_lower_vtep_address_wins() {
    for (here, stays) in [(vtep(1), true), (vtep(9), false)] {
        let mut p = Planner::default();
        let mut l = learner();
        l.mac_seen(&p, VNI, mac(1), false);
        mac_events(&mut l);
        let ops = remote(&mut p, 2, 0, false);
        let out = l.mobility(&p, |_| Some(here), ops);
        assert_eq!(!moved_away(&out), stays, "local {here}: {out:?}");
        assert_eq!(l.local.has_mac(VNI, mac(1)), stays);
    }
}

/// RFC 7432 §15.2: a static (sticky) local MAC never moves, whatever the sequence.
#[test]
fn a_sticky_local_mac_never_moves() {
    let mut p = Planner::default();
    let mut l = learner();
    l.mac_seen(&p, VNI, mac(1), true);
    assert_eq!(mac_events(&mut l), vec![(true, 0, true)]);
    let ops = remote(&mut p, 2, 9, false);
    let out = l.mobility(&p, |_| Some(vtep(9)), ops);
    assert!(!moved_away(&out), "{out:?}");
    assert!(l.local.has_mac(VNI, mac(1)));
    assert!(mac_events(&mut l).is_empty());
}

/// A MAC sticky at a remote VTEP that shows up here (dynamically) is not advertised:
/// a sticky MAC does not move.
#[test]
fn a_mac_sticky_elsewhere_is_not_taken_over() {
    let mut p = Planner::default();
    remote(&mut p, 2, 0, true);
    let mut l = learner();
    l.mac_seen(&p, VNI, mac(1), false);
    assert!(mac_events(&mut l).is_empty());
    assert!(!l.local.has_mac(VNI, mac(1)));
}

/// Duplicate address detection: with one move allowed, a MAC that moves here and
/// back is frozen and no more advertised.
#[test]
fn a_mac_that_moves_too_often_is_frozen() {
    let dad = DadConfig {
        max_moves: 2,
        window: Duration::from_secs(180),
        freeze_for: None,
    };
    let mut l = Learner::new(LearnLimits::default(), dad);
    let mut p = Planner::default();
    remote(&mut p, 2, 0, false);
    l.mac_seen(&p, VNI, mac(1), false); // move 1: here
    assert_eq!(mac_events(&mut l), vec![(true, 1, false)]);
    let ops = remote(&mut p, 2, 2, false);
    let out = l.mobility(&p, |_| Some(vtep(1)), ops); // move 2: away, frozen here
    assert!(!moved_away(&out), "frozen where it was: {out:?}");
    assert_eq!(l.duplicates(None, std::time::Instant::now()).len(), 1);
    assert!(l.local.has_mac(VNI, mac(1)));
}

/// Addresses snooped before their MAC is local wait for it; a neighbour-taught
/// address goes with its entry, a snooped one does not.
#[test]
fn addresses_follow_their_mac_and_their_source() {
    let p = Planner::default();
    let mut l = learner();
    l.snooped(Binding {
        mac: mac(1),
        ip: ip(1),
    });
    assert!(l.take_events().is_empty(), "not local yet");
    l.mac_seen(&p, VNI, mac(1), false);
    let ev = l.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, KernelEvent::LocalIp { ip: a, present: true, .. } if *a == ip(1))),
        "{ev:?}"
    );
    // Snooped: a failed neighbour entry for it does not withdraw it.
    l.neigh_ip(VNI, ip(1), None, false);
    assert!(l.take_events().is_empty());
    // Taught by a neighbour entry: it goes with the entry.
    l.neigh_ip(VNI, ip(2), Some(mac(1)), true);
    assert_eq!(l.take_events().len(), 1);
    l.neigh_ip(VNI, ip(2), None, false);
    let ev = l.take_events();
    assert!(
        matches!(ev.as_slice(), [KernelEvent::LocalIp { present: false, .. }]),
        "{ev:?}"
    );
}

/// Events wait coalesced by entry (the latest state wins) and go VNIs first, then
/// MACs, then addresses.
#[test]
fn events_coalesce_and_go_vnis_macs_addresses() {
    let p = Planner::default();
    let mut l = learner();
    l.mac_seen(&p, VNI, mac(1), false);
    l.neigh_ip(VNI, ip(1), Some(mac(1)), true);
    l.mac_left(&p, VNI, mac(1));
    l.up(KernelEvent::VniDown(7));
    let ev = l.take_events();
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            KernelEvent::VniUp(_) | KernelEvent::VniDown(_) => "vni",
            KernelEvent::LocalMac { present: false, .. } => "mac gone",
            KernelEvent::LocalMac { .. } => "mac",
            KernelEvent::LocalIp { present: false, .. } => "ip gone",
            KernelEvent::LocalIp { .. } => "ip",
        })
        .collect();
    assert_eq!(kinds, ["vni", "mac gone", "ip gone"]);
}

/// Learning limits hold: more MACs than a VNI may have are not advertised.
#[test]
fn the_mac_limit_holds() {
    let limits = LearnLimits {
        macs_per_vni: 2,
        addresses_per_mac: 1,
    };
    let mut l = Learner::new(limits, DadConfig::default());
    let p = Planner::default();
    for n in 1..=3 {
        l.mac_seen(&p, VNI, mac(n), false);
    }
    assert_eq!(mac_events(&mut l).len(), 2);
    assert!(l.local.refused >= 1);
}
