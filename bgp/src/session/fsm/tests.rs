//! The connection FSM without sockets: messages and instants in, actions out.

use super::*;

fn cfg() -> FsmConfig {
    FsmConfig {
        local_asn: 65001,
        router_id: Ipv4Addr::new(198, 19, 0, 1),
        hold_time: 90,
        remote_asn: Some(65001),
        families: vec![(25, 70)],
    }
}

fn peer_open(asn: u32, hold: u16, id: u8) -> OpenMsg {
    OpenMsg::new(
        asn,
        hold,
        Ipv4Addr::new(198, 19, 0, id),
        vec![
            Capability::MultiProtocol { afi: 25, safi: 70 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    )
}

fn established(now: Instant) -> Fsm {
    let (mut fsm, _) = Fsm::start(cfg(), now);
    fsm.handle(Message::Open(peer_open(65001, 60, 2)), now);
    let out = fsm.handle(Message::Keepalive, now);
    assert!(matches!(out.as_slice(), [Output::Established(_)]));
    fsm
}

fn notification_of(out: &[Output]) -> Option<(u8, u8)> {
    out.iter().find_map(|o| match o {
        Output::Close {
            notify: Some(n), ..
        } => Some((n.code, n.subcode)),
        _ => None,
    })
}

#[test]
fn open_exchange_reaches_established_with_smaller_hold_time() {
    let now = Instant::now();
    let (mut fsm, out) = Fsm::start(cfg(), now);
    let Output::Send(Message::Open(open)) = &out[0] else {
        panic!("expected OPEN: {out:?}")
    };
    assert_eq!(open.asn(), 65001);
    assert_eq!(open.multiprotocol(), vec![(25, 70)]);
    let out = fsm.handle(Message::Open(peer_open(65001, 60, 2)), now);
    assert!(out.contains(&Output::Send(Message::Keepalive)));
    assert_eq!(fsm.state(), State::OpenConfirm);
    let out = fsm.handle(Message::Keepalive, now);
    let [Output::Established(n)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(n.hold_time, 60);
    assert!(n.as4 && n.route_refresh);
    // Keepalive every third of the negotiated hold time.
    assert_eq!(fsm.next_deadline(), Some(now + Duration::from_secs(20)));
}

#[test]
fn keepalive_sent_when_due_and_hold_timer_expiry_sends_notification() {
    let now = Instant::now();
    let mut fsm = established(now);
    let out = fsm.poll(now + Duration::from_secs(20));
    assert_eq!(out, vec![Output::Send(Message::Keepalive)]);
    let out = fsm.poll(now + Duration::from_secs(61));
    assert_eq!(notification_of(&out), Some((codes::HOLD_TIMER_EXPIRED, 0)));
    assert_eq!(fsm.state(), State::Closed);
}

#[test]
fn messages_restart_the_hold_timer() {
    let now = Instant::now();
    let mut fsm = established(now);
    fsm.handle(Message::Keepalive, now + Duration::from_secs(50));
    assert!(notification_of(&fsm.poll(now + Duration::from_secs(70))).is_none());
    assert!(notification_of(&fsm.poll(now + Duration::from_secs(111))).is_some());
}

#[test]
fn wrong_peer_as_is_bad_peer_as() {
    let (mut fsm, _) = Fsm::start(cfg(), Instant::now());
    let out = fsm.handle(Message::Open(peer_open(65002, 90, 2)), Instant::now());
    assert_eq!(
        notification_of(&out),
        Some((codes::OPEN_MESSAGE_ERROR, codes::open::BAD_PEER_AS))
    );
}

#[test]
fn same_bgp_identifier_inside_one_as_is_refused() {
    let (mut fsm, _) = Fsm::start(cfg(), Instant::now());
    let out = fsm.handle(Message::Open(peer_open(65001, 90, 1)), Instant::now());
    assert_eq!(
        notification_of(&out),
        Some((codes::OPEN_MESSAGE_ERROR, codes::open::BAD_BGP_IDENTIFIER))
    );
}

#[test]
fn peer_without_evpn_gets_unsupported_capability() {
    let (mut fsm, _) = Fsm::start(cfg(), Instant::now());
    let open = OpenMsg::new(65001, 90, Ipv4Addr::new(198, 19, 0, 2), vec![]);
    let out = fsm.handle(Message::Open(open), Instant::now());
    assert_eq!(
        notification_of(&out),
        Some((
            codes::OPEN_MESSAGE_ERROR,
            codes::open::UNSUPPORTED_CAPABILITY
        ))
    );
}

#[test]
fn rfc6608_update_before_established_is_fsm_error_in_that_state() {
    let (mut fsm, _) = Fsm::start(cfg(), Instant::now());
    let out = fsm.handle(Message::Update(Default::default()), Instant::now());
    assert_eq!(notification_of(&out), Some((codes::FSM_ERROR, 1)));
    let now = Instant::now();
    let mut fsm = established(now);
    let out = fsm.handle(Message::Open(peer_open(65001, 90, 2)), now);
    assert_eq!(notification_of(&out), Some((codes::FSM_ERROR, 3)));
}

#[test]
fn notification_from_peer_closes_without_answering() {
    let now = Instant::now();
    let mut fsm = established(now);
    let out = fsm.handle(
        Message::Notification(NotificationMsg::new(6, 2, Vec::new())),
        now,
    );
    assert!(matches!(
        out.as_slice(),
        [Output::Close { notify: None, .. }]
    ));
}

#[test]
fn open_sent_waits_four_minutes_for_the_open() {
    let now = Instant::now();
    let (mut fsm, _) = Fsm::start(cfg(), now);
    assert_eq!(fsm.next_deadline(), Some(now + OPEN_HOLD));
    assert!(fsm.poll(now + Duration::from_secs(239)).is_empty());
    assert!(notification_of(&fsm.poll(now + OPEN_HOLD)).is_some());
}

#[test]
fn zero_hold_time_means_no_keepalives_and_no_hold_timer() {
    let now = Instant::now();
    let (mut fsm, _) = Fsm::start(cfg(), now);
    fsm.handle(Message::Open(peer_open(65001, 0, 2)), now);
    fsm.handle(Message::Keepalive, now);
    assert_eq!(fsm.state(), State::Established);
    assert_eq!(fsm.next_deadline(), None);
}

#[test]
fn route_refresh_is_passed_to_the_driver() {
    let now = Instant::now();
    let mut fsm = established(now);
    let rr = crate::wire::RouteRefreshMsg {
        afi: 25,
        subtype: 0,
        safi: 70,
    };
    let out = fsm.handle(Message::RouteRefresh(rr), now);
    assert_eq!(out, vec![Output::RouteRefresh { afi: 25, safi: 70 }]);
}

#[test]
fn rfc6793_rfc7607_as_numbers_that_contradict_or_are_zero_are_bad_peer_as() {
    let bad = |my_as: u16, as4: u32| {
        let mut open = peer_open(65001, 90, 2);
        open.my_as = my_as;
        open.capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
        open.capabilities.push(Capability::FourOctetAs(as4));
        let (mut fsm, _) = Fsm::start(cfg(), Instant::now());
        notification_of(&fsm.handle(Message::Open(open), Instant::now()))
    };
    let bad_peer_as = Some((codes::OPEN_MESSAGE_ERROR, codes::open::BAD_PEER_AS));
    assert_eq!(
        bad(65002, 65001),
        bad_peer_as,
        "2-octet AS that is not the AS"
    );
    assert_eq!(bad(65001, 0), bad_peer_as, "capability AS 0");
    assert_eq!(bad(0, 65001), bad_peer_as, "My AS 0");
    assert_eq!(
        bad(65001, 4_200_000_000),
        bad_peer_as,
        "large AS without AS_TRANS"
    );
    assert_eq!(bad(65001, 65001), None, "consistent");
}
