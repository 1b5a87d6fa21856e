//! RFC 4486: a peer that gives more routes than `max-prefixes` allows is told so with
//! Cease / Maximum Number of Prefixes Reached (AFI, SAFI and the limit in the data),
//! and its routes go; another peer's session is untouched.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::notification::codes;
use bgp::wire::Message;
use support::loopback::*;

#[test]
fn rfc4486_a_peer_past_max_prefixes_gets_cease_and_its_routes_go() {
    let port = free_port();
    let d = Daemon::start(port, "max-prefixes = 100\n");
    let (greedy_ip, other_ip) = (Ipv4Addr::new(127, 0, 0, 5), Ipv4Addr::new(127, 0, 0, 6));
    let mut other = Client::connect(other_ip, port, &d);
    let mut greedy = Client::connect(greedy_ip, port, &d);
    announce(&mut greedy, greedy_ip, 150);
    let deadline = Instant::now() + Duration::from_secs(30);
    let notification = loop {
        assert!(Instant::now() < deadline, "no NOTIFICATION\n{}", d.logs());
        if let Message::Notification(n) = greedy.next() {
            break n;
        }
    };
    assert_eq!(
        (notification.code, notification.subcode),
        (codes::CEASE, codes::cease::MAXIMUM_PREFIXES_REACHED),
        "{notification}"
    );
    assert_eq!(notification.data[..], [0, 25, 70, 0, 0, 0, 100]);
    // The other client saw the routes come and go, and its session stays up.
    let mut seen = 0usize;
    let mut withdrawn = 0usize;
    while withdrawn < seen || seen == 0 {
        if let Message::Update(u) = other.next() {
            use bgp::af::AddressFamily;
            if let Some(r) = u.mp_reach {
                seen += evpn::L2vpnEvpn::decode_nlri(&r.nlri).expect("NLRI").len();
            }
            if let Some(w) = u.mp_unreach {
                withdrawn += evpn::L2vpnEvpn::decode_nlri(&w.nlri).expect("NLRI").len();
            }
        }
    }
    assert!(seen >= 100, "{seen} routes reflected before the limit");
    assert_eq!(
        d.neighbor_state("127.0.0.6").as_deref(),
        Some("Established"),
        "{}",
        d.logs()
    );
}
