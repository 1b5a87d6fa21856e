//! What a VTEP's kernel holds, seen two ways:
//!
//! - [`KernelWatch`]: a netlink listener (RTMGRP_NEIGH) in the VTEP's namespace that keeps
//!   the set of `extern_learn` entries on the bench's devices as the notifications come,
//!   with the time of the last change. Convergence times come from it: a dump of 300 000
//!   entries takes longer than some of the installs it would time.
//! - [`dump`]: `bridge fdb show` and `ip neigh show` afterwards, compared entry by entry
//!   with what should be there (the check that nothing is missing and nothing extra).
//!
//! Whoever programs them (vxbgp, zebra, the floor), the kernel reports the same entries:
//! a vxlan FDB entry with `dst` (`self`), the bridge's entry for the MAC on the vxlan port
//! (`master`), and the neighbour entry on the bridge.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fib::ne::{u16_at, u32_at, u8_at};

use crate::netns::NsWorker;
use crate::sys::{self, Result};

const RTMGRP_NEIGH: u32 = 4;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const AF_INET: u8 = 2;
const AF_BRIDGE: u8 = 7;
const NTF_EXT_LEARNED: u8 = 0x10;
const NUD_FAILED: u16 = 0x20;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NDA_MASTER: u16 = 9;
/// Enough for a burst of 300 000 notifications to wait while the thread catches up.
const RCVBUF: usize = 64 << 20;

/// Entry counts, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `MAC dev VX dst VTEP self extern_learn` (the all-zero flood entries not counted).
    pub remote: usize,
    /// `MAC dev VX master BR extern_learn`.
    pub master: usize,
    /// `IP dev BR lladdr MAC extern_learn`.
    pub neigh: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} remote FDB, {} bridge FDB, {} neighbour entries",
            self.remote, self.master, self.neigh
        )
    }
}

#[derive(Default)]
struct State {
    remote: HashSet<(u32, [u8; 6])>,
    master: HashSet<(u32, [u8; 6])>,
    neigh: HashSet<(u32, [u8; 4])>,
    last_change: Option<Instant>,
    overrun: bool,
}

impl State {
    fn counts(&self) -> Counts {
        Counts {
            remote: self.remote.len(),
            master: self.master.len(),
            neigh: self.neigh.len(),
        }
    }
}

/// The listener. `Drop` stops its thread.
pub struct KernelWatch {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KernelWatch {
    /// Listens in `worker`'s namespace for entries on the vxlan devices `vx` and the
    /// bridges `br` (ifindexes).
    pub async fn open(worker: &NsWorker, vx: Vec<u32>, br: Vec<u32>) -> Result<KernelWatch> {
        // The socket belongs to the namespace it is created in; it is read from anywhere.
        let sock = worker
            .run(|| -> std::io::Result<netlink_sys::Socket> {
                let mut s = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
                s.bind(&netlink_sys::SocketAddr::new(0, RTMGRP_NEIGH))?;
                fib::writer::set_rcvbuf(&s, RCVBUF);
                s.set_non_blocking(true)?;
                Ok(s)
            })
            .await?
            .map_err(|e| format!("netlink listener: {e}"))?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, halt) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("kernel-watch".into())
            .spawn(move || listen(&sock, &st, &halt, &vx, &br))
            .map_err(|e| format!("cannot start the listener thread: {e}"))?;
        Ok(KernelWatch {
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits until the counts are `want`; returns the time of the notification that made
    /// them so. `Err` with the counts after `timeout`, or at once after an overrun.
    pub async fn wait(
        &self,
        want: Counts,
        timeout: Duration,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut next_check = Instant::now();
        loop {
            let (counts, last, overrun) = match self.state.lock() {
                Ok(s) => (s.counts(), s.last_change, s.overrun),
                Err(_) => return Err("the listener thread panicked".into()),
            };
            if overrun {
                return Err("overrun".into());
            }
            if counts == want {
                return Ok(last.unwrap_or_else(Instant::now));
            }
            let now = Instant::now();
            if now >= next_check {
                check()?;
                next_check = now + Duration::from_millis(100);
            }
            if now >= deadline {
                return Err(format!(
                    "not there within {:.0} s: the kernel holds {counts}, expected {want}",
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for KernelWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn listen(
    sock: &netlink_sys::Socket,
    state: &Mutex<State>,
    stop: &AtomicBool,
    vx: &[u32],
    br: &[u32],
) {
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        match sock.recv(&mut buf, 0) {
            Ok(_) => {
                let Ok(mut s) = state.lock() else { return };
                let mut changed = false;
                let mut at = 0;
                // Whole netlink messages, 4-byte aligned, one datagram holding several.
                while let Some(len) = u32_at(&buf, at).and_then(|l| usize::try_from(l).ok()) {
                    if len < 16 {
                        break;
                    }
                    if let Some(msg) = buf.get(at..at + len) {
                        changed |= apply(&mut s, msg, vx, br);
                    }
                    at += (len + 3) & !3;
                }
                if changed {
                    s.last_change = Some(Instant::now());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                // ENOBUFS: notifications were dropped; the waits fall back to dumps.
                if let Ok(mut s) = state.lock() {
                    s.overrun = true;
                }
            }
        }
    }
}

/// Applies one RTM_NEWNEIGH/RTM_DELNEIGH; true if a set changed.
fn apply(s: &mut State, msg: &[u8], vx: &[u32], br: &[u32]) -> bool {
    let (Some(kind), Some(family), Some(ifindex), Some(state), Some(flags)) = (
        u16_at(msg, 4),
        u8_at(msg, 16),
        u32_at(msg, 20),
        u16_at(msg, 24),
        u8_at(msg, 26),
    ) else {
        return false;
    };
    let add = match kind {
        RTM_NEWNEIGH => state != NUD_FAILED,
        RTM_DELNEIGH => false,
        _ => return false,
    };
    // A deletion may come without the extern_learn mark; an addition must carry it.
    if add && flags & NTF_EXT_LEARNED == 0 {
        return false;
    }
    let (mut dst, mut lladdr, mut master) = (None, None, false);
    let mut off = 28;
    while let (Some(len), Some(t)) = (u16_at(msg, off), u16_at(msg, off + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        let v = msg.get(off + 4..off + len);
        match t & 0x3fff {
            NDA_DST => dst = v.map(<[u8]>::to_vec),
            NDA_LLADDR => lladdr = v.and_then(|v| <[u8; 6]>::try_from(v).ok()),
            NDA_MASTER => master = true,
            _ => {}
        }
        off += (len + 3) & !3;
    }
    fn set<K: std::hash::Hash + Eq>(set: &mut HashSet<K>, k: K, add: bool) -> bool {
        if add {
            set.insert(k)
        } else {
            set.remove(&k)
        }
    }
    match family {
        AF_BRIDGE if vx.contains(&ifindex) => {
            let Some(mac) = lladdr.filter(|m| *m != [0; 6]) else {
                return false;
            };
            if dst.is_some() {
                set(&mut s.remote, (ifindex, mac), add)
            } else if master {
                set(&mut s.master, (ifindex, mac), add)
            } else {
                false
            }
        }
        AF_INET if br.contains(&ifindex) => {
            let Some(ip) = dst.and_then(|d| <[u8; 4]>::try_from(d).ok()) else {
                return false;
            };
            set(&mut s.neigh, (ifindex, ip), add)
        }
        _ => false,
    }
}

/// The `extern_learn` entries of a dump, as text keys comparable with what is expected.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dump {
    /// (device, MAC, dst)
    pub remote: HashSet<(String, String, Ipv4Addr)>,
    /// (device, MAC)
    pub master: HashSet<(String, String)>,
    /// (bridge, IP, MAC)
    pub neigh: HashSet<(String, Ipv4Addr, String)>,
}

impl Dump {
    pub fn counts(&self) -> Counts {
        Counts {
            remote: self.remote.len(),
            master: self.master.len(),
            neigh: self.neigh.len(),
        }
    }

    /// "0 missing, 0 extra" or what differs from `want`, with an example of each.
    pub fn diff(&self, want: &Dump) -> Option<String> {
        fn one<K: std::hash::Hash + Eq + std::fmt::Debug>(
            what: &str,
            got: &HashSet<K>,
            want: &HashSet<K>,
            out: &mut Vec<String>,
        ) {
            let missing: Vec<&K> = want.difference(got).collect();
            let extra: Vec<&K> = got.difference(want).collect();
            if !missing.is_empty() || !extra.is_empty() {
                out.push(format!(
                    "{what}: {} missing (e.g. {:?}), {} extra (e.g. {:?})",
                    missing.len(),
                    missing.first(),
                    extra.len(),
                    extra.first()
                ));
            }
        }
        let mut out = Vec::new();
        one("remote FDB", &self.remote, &want.remote, &mut out);
        one("bridge FDB", &self.master, &want.master, &mut out);
        one("neighbours", &self.neigh, &want.neigh, &mut out);
        (!out.is_empty()).then(|| out.join("; "))
    }
}

/// `bridge fdb show` and `ip neigh show` in namespace `ns`: the `extern_learn` entries on
/// the devices named in `vx` and `br`.
pub async fn dump(ns: &str, vx: &[String], br: &[String]) -> Result<Dump> {
    let fdb = sys::run(&["bridge", "-n", ns, "fdb", "show"]).await?;
    let neigh = sys::run(&["ip", "-n", ns, "-4", "neigh", "show"]).await?;
    Ok(parse_dump(&fdb, &neigh, vx, br))
}

/// The value after `key` in a line's words.
fn after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    let at = words.iter().position(|w| *w == key)?;
    words.get(at + 1).copied()
}

pub fn parse_dump(fdb: &str, neigh: &str, vx: &[String], br: &[String]) -> Dump {
    let mut d = Dump::default();
    for line in fdb.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(mac), Some(dev)) = (w.first(), after(&w, "dev")) else {
            continue;
        };
        if !w.contains(&"extern_learn") || !vx.iter().any(|v| v == dev) {
            continue;
        }
        if *mac == "00:00:00:00:00:00" {
            continue;
        }
        if let Some(dst) = after(&w, "dst").and_then(|a| a.parse().ok()) {
            d.remote.insert((dev.to_string(), mac.to_string(), dst));
        } else if after(&w, "master").is_some() {
            d.master.insert((dev.to_string(), mac.to_string()));
        }
    }
    for line in neigh.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (Some(ip), Some(dev), Some(mac)) = (
            w.first().and_then(|a| a.parse().ok()),
            after(&w, "dev"),
            after(&w, "lladdr"),
        ) else {
            continue;
        };
        if w.contains(&"extern_learn") && br.iter().any(|b| b == dev) {
            d.neigh.insert((dev.to_string(), ip, mac.to_string()));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_keep_only_extern_learn_entries_on_our_devices() {
        let fdb = "02:00:00:00:00:01 dev kvx0 extern_learn master kbr0 \n\
                   a6:1c:a6:0e:8e:b4 dev kvx0 master kbr0 permanent\n\
                   00:00:00:00:00:00 dev kvx0 dst 198.19.1.0 self permanent\n\
                   02:00:00:00:00:01 dev kvx0 dst 198.19.1.0 self extern_learn \n\
                   02:00:00:00:00:09 dev other dst 198.19.1.0 self extern_learn \n";
        let neigh = "198.19.0.2 dev rr0 lladdr 46:49:83:a0:dc:d5 REACHABLE \n\
                     198.18.0.5 dev kbr0 lladdr 02:00:00:00:00:01 extern_learn NOARP proto zebra \n";
        let d = parse_dump(fdb, neigh, &["kvx0".into()], &["kbr0".into()]);
        assert_eq!(
            d.counts(),
            Counts {
                remote: 1,
                master: 1,
                neigh: 1
            }
        );
        assert!(d.remote.contains(&(
            "kvx0".into(),
            "02:00:00:00:00:01".into(),
            Ipv4Addr::new(198, 19, 1, 0)
        )));
        assert_eq!(d.diff(&d), None);
        let empty = Dump::default();
        let why = empty.diff(&d).unwrap_or_default();
        assert!(why.contains("remote FDB: 1 missing"), "{why}");
    }

    #[test]
    fn notifications_add_and_remove() {
        // RTM_NEWNEIGH, AF_BRIDGE on ifindex 7, extern_learn, NDA_LLADDR + NDA_DST.
        let mut m = vec![0u8; 28];
        m[4..6].copy_from_slice(&RTM_NEWNEIGH.to_ne_bytes());
        m[16] = AF_BRIDGE;
        m[20..24].copy_from_slice(&7u32.to_ne_bytes());
        m[24..26].copy_from_slice(&2u16.to_ne_bytes());
        m[26] = NTF_EXT_LEARNED | 2;
        m.extend_from_slice(&10u16.to_ne_bytes());
        m.extend_from_slice(&NDA_LLADDR.to_ne_bytes());
        m.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&NDA_DST.to_ne_bytes());
        m.extend_from_slice(&[198, 19, 1, 0]);
        let mut s = State::default();
        assert!(apply(&mut s, &m, &[7], &[8]));
        assert!(!apply(&mut s, &m, &[7], &[8]));
        assert_eq!(s.counts().remote, 1);
        assert!(!apply(&mut s, &m, &[9], &[8]), "not our device");
        m[4..6].copy_from_slice(&RTM_DELNEIGH.to_ne_bytes());
        m[26] = 2;
        assert!(apply(&mut s, &m, &[7], &[8]));
        assert_eq!(s.counts(), Counts::default());
        assert!(!apply(&mut s, &m[..20], &[7], &[8]), "short message");
    }
}
