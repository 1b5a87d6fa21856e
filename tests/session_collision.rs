//! Two vxbgp speakers that connect to each other at once (RFC 4271 §6.8). Each one's
//! SYN is held in a black hole (the peer's address resolves to a MAC nobody has) until
//! both connects are under way; then the path opens and the SYN retransmissions cross,
//! so each speaker holds its own connection and the peer's. What a user checks: the
//! session comes up once and stays up, one TCP connection is left (the one opened by
//! the speaker with the larger BGP identifier, or the one that was Established first),
//! and routes cross it both ways.

mod support;

use std::time::Duration;

use support::*;

const WAIT: Duration = Duration::from_secs(30);

fn established_bgp_connections(host: &Netns) -> Vec<String> {
    host.run_ok("ss -Htn state established '( sport = :179 or dport = :179 )'")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn simultaneous_open_leaves_one_connection_and_one_session() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(2);
    let (a, b) = (u.ip(0).to_string(), u.ip(1).to_string());
    // The black hole: each host sends to the other at a MAC no host has.
    for (i, peer) in [(0, &b), (1, &a)] {
        u.host(i).run_ok(&format!(
            "ip neigh replace {peer} lladdr 02:00:00:00:de:ad dev u0 nud permanent"
        ));
    }
    let va = Vxbgp::start(
        u.host(0),
        &[
            "--asn",
            "65001",
            "--router-id",
            &a,
            "--neighbor",
            &b,
            "--no-fib",
        ],
    );
    let vb = Vxbgp::start(
        u.host(1),
        &[
            "--asn",
            "65001",
            "--router-id",
            &b,
            "--neighbor",
            &a,
            "--no-fib",
        ],
    );
    // Both connects are waiting for their SYN's retransmission (1 s, then 3 s).
    std::thread::sleep(Duration::from_millis(200));
    for (i, peer) in [(0, &b), (1, &a)] {
        u.host(i).run_ok(&format!("ip neigh del {peer} dev u0"));
    }
    va.wait_established(&b, WAIT);
    vb.wait_established(&a, WAIT);

    // Both speakers saw the second connection and resolved the collision (the later
    // SYN crosses one retransmission after the first).
    for (name, vx) in [("A", &va), ("B", &vb)] {
        let seen = wait_until(Duration::from_secs(5), || vx.logs().contains("collision"));
        assert!(
            seen,
            "{name} never held two connections to its peer: the test did not make a \
             collision\n{}",
            vx.logs()
        );
    }
    // Settled: one TCP connection, one session on each side, up once.
    let settled = wait_until(Duration::from_secs(10), || {
        established_bgp_connections(u.host(0)).len() == 1
            && established_bgp_connections(u.host(1)).len() == 1
    });
    assert!(
        settled,
        "BGP connections left: A {:?}, B {:?}",
        established_bgp_connections(u.host(0)),
        established_bgp_connections(u.host(1))
    );
    std::thread::sleep(Duration::from_secs(2));
    for (name, vx, peer) in [("A", &va, &b), ("B", &vb, &a)] {
        let n = vx.neighbor(peer).expect("neighbor shown");
        assert_eq!(n["state"], "Established", "{name}: {n}");
        assert_eq!(
            n["established_transitions"], 1,
            "{name}'s session came up more than once: {n}"
        );
    }
    assert_eq!(
        established_bgp_connections(u.host(0)).len(),
        1,
        "a second connection came back"
    );

    // Routes cross the surviving connection both ways.
    va.cli(&["route", "add", "multicast", "--vni", "42"]);
    vb.cli(&["route", "add", "multicast", "--vni", "43"]);
    let crossed = wait_until(WAIT, || {
        vb.prefixes().contains(&format!("[3]:[0]:[32]:[{a}]"))
            && va.prefixes().contains(&format!("[3]:[0]:[32]:[{b}]"))
    });
    assert!(
        crossed,
        "routes did not cross: A has {:?}, B has {:?}",
        va.prefixes(),
        vb.prefixes()
    );
}
