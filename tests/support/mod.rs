//! Test harness for integration tests that run vxbgp, FRR and GoBGP in network namespaces.
//!
//! Every resource is owned by a guard that removes it on `Drop`, also when the test panics:
//! [`Netns`] deletes its namespace and kills whatever still runs in it, [`Child`] kills its
//! process, [`Frr`] and [`Gobgp`] stop their daemons and remove their files. Logs of the
//! processes are kept under `$TMPDIR/vxbgp-tests/<namespace>/` and printed when a test fails.
//!
//! Addresses (SPEC.md "Addresses in tests"): underlay 198.19.<subnet>.0/24 and overlay
//! 198.18.<subnet>.0/24 inside namespaces the test creates; `<subnet>` comes from
//! [`subnet_id`] so tests running side by side pick different ones.
//!
//! Usage from `tests/<name>.rs`:
//! ```ignore
//! mod support;
//! use support::*;
//!
//! #[test]
//! fn something() {
//!     if !require_root() { return; }
//!     let u = Underlay::new(2);
//!     ...
//! }
//! ```
#![allow(dead_code)] // each test binary uses a different subset of the harness

pub mod frr;
pub mod gobgp;
pub mod loopback;
pub mod netns;
pub mod proc;
pub mod vxbgp;

#[allow(unused_imports)]
pub use frr::Frr;
#[allow(unused_imports)]
pub use gobgp::Gobgp;
#[allow(unused_imports)] // re-exported for test binaries; not every one uses all
pub use netns::{
    addr_add, bridge_add, link_up, netns_exists, netns_list, veth_pair, vm_add, vtep_with_vm,
    vxlan_add, vxlan_fdb, vxlan_fdb_has, Netns, Underlay,
};
#[allow(unused_imports)]
pub use proc::Child;
#[allow(unused_imports)]
pub use vxbgp::Vxbgp;
#[allow(unused_imports)]
pub use {frr::evpn_config as frr_evpn_config, gobgp::evpn_config as gobgp_evpn_config};

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this process may create namespaces. Without root: under `CI=true` this panics (a
/// CI run that skips the namespace tests would pass while proving nothing), otherwise it prints
/// "skipping: needs root" and returns `false` so the test can return early.
pub fn require_root() -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!(
            "this test needs root (network namespaces, FRR, GoBGP) and CI=true: refusing to skip"
        );
    }
    eprintln!("skipping: needs root (network namespaces); run as root or with sudo");
    false
}

/// The effective UID, read from `/proc/self/status` (std has no getuid).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process (starts at 0).
pub fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A name unique per process and call: `<prefix>-<pid base 36>-<counter base 36>`, at most 15
/// bytes (IFNAMSIZ - 1) so it also works as an interface name. `prefix` must be 1..=5 bytes
/// of `[a-z0-9]`.
pub fn unique(prefix: &str) -> String {
    assert!(
        !prefix.is_empty()
            && prefix.len() <= 5
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "unique(): prefix {prefix:?} must be 1..=5 chars of [a-z0-9]"
    );
    let name = format!(
        "{prefix}-{}-{}",
        base36(std::process::id()),
        base36(next_id())
    );
    assert!(
        name.len() <= 15,
        "unique(): {name:?} is longer than IFNAMSIZ-1"
    );
    name
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// A /24 index in 1..=250 for this test: 198.19.<id>.0/24 (underlay) and 198.18.<id>.0/24
/// (overlay). Derived from the PID and a counter, so parallel tests and parallel test binaries
/// usually differ; they never share a namespace anyway, so a repeat is harmless.
pub fn subnet_id() -> u8 {
    ((std::process::id().wrapping_mul(7).wrapping_add(next_id())) % 250 + 1) as u8
}

/// Polls `f` every 100 ms until it returns true (→ `true`) or `timeout` passes (→ `false`).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Directory for the logs of one namespace's processes: `$TMPDIR/vxbgp-tests/<name>`.
pub fn log_dir_for(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join("vxbgp-tests").join(name)
}
