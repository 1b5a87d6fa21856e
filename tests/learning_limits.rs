//! Forged ARP cannot make vxbgp advertise an unbounded number of routes: a VM that
//! claims many addresses gets only `--max-addresses-per-mac` of them advertised, and
//! the daemon says so in its log.
//!
//! Lab: one VTEP host (bridge + unicast vxlan, vxbgp as host agent, no peer needed:
//! its own routes show in `show routes`) and one VM that announces ten addresses with
//! gratuitous ARP.

mod support;

use std::time::Duration;

use support::*;

const VNI: u32 = 42;
const WAIT: Duration = Duration::from_secs(20);
const LIMIT: usize = 3;

#[test]
fn addresses_per_mac_are_limited_and_the_limit_is_logged() {
    if !require_root() {
        return;
    }
    let u = Underlay::new(1);
    let host = u.host(0);
    bridge_add(host, "br0");
    vxlan_add(host, "vxlan0", VNI, u.ip(0), "br0");
    let mac = format!("02:00:00:{:02x}:07:01", u.subnet());
    let first = u.overlay_ip(20);
    let vm = vm_add(host, "br0", "vm0", &format!("{first}/24"), Some(&mac));
    let me = u.ip(0).to_string();
    let vx = Vxbgp::start(
        host,
        &[
            "--asn",
            "65001",
            "--router-id",
            &me,
            "--max-addresses-per-mac",
            &LIMIT.to_string(),
        ],
    );
    let ips: Vec<String> = (20..30).map(|n| u.overlay_ip(n).to_string()).collect();
    for ip in ips.iter().skip(1) {
        vm.addr_add("eth0", &format!("{ip}/32"));
    }
    let with_ip = |vx: &Vxbgp| -> Vec<String> {
        vx.prefixes()
            .into_iter()
            .filter(|p| p.starts_with("[2]") && p.contains(&mac) && p.contains("[32]"))
            .collect()
    };
    let announce = || {
        for ip in &ips {
            vm.run_ok(&format!("arping -q -U -c 1 -I eth0 {ip} || true"));
        }
    };
    // The MAC is learned from the first frames; then every address is claimed.
    announce();
    assert!(
        wait_until(WAIT, || {
            announce();
            vx.logs().contains("learning limit reached")
        }),
        "no limit reached; routes {:?}\n{}",
        vx.prefixes(),
        vx.logs()
    );
    assert!(
        wait_until(WAIT, || with_ip(&vx).len() == LIMIT),
        "{:?}",
        vx.prefixes()
    );
    let vnis = vx.json(&["show", "vnis"]);
    assert_eq!(
        vnis["vnis"][0]["local_ips"], LIMIT,
        "show vnis counts what is advertised: {vnis:#}"
    );
}
