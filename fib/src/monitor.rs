//! The kernel's link and neighbour events, read on a thread of their own.
//!
//! The socket gets a receive buffer of several MiB (SO_RCVBUFFORCE), so a burst of
//! events (ours: every entry we program comes back as a notification) waits there
//! rather than being dropped. Our own echoes are dropped before they are parsed, by a
//! kernel filter when it can be set ([`echo_filter`]) and again after reading
//! ([`is_echo`]); they never teach the FIB anything:
//! - FDB entries on a vxlan device are remote by definition and teach the FIB nothing
//!   (ours come with two reports each for the vxlan device: the device's own, marked
//!   `extern_learn`, and the generic one rtnetlink adds for every `self` request,
//!   without the mark; the bridge's report of our entry names the vxlan port too). An
//!   FDB entry on any other port is read, with or without the mark: one marked there
//!   is a local MAC (`bridge fdb replace MAC dev PORT master` keeps the mark of the
//!   remote entry it replaces). The FIB names its vxlan devices ([`OwnEntries`]);
//! - a new neighbour entry marked `extern_learn` is one of our suppression entries;
//! - deleting a suppression entry clears the mark: the kernel reports it FAILED with
//!   the deleting socket's port id as `nlmsg_pid` (ours: the FIB's writer), then
//!   deleted, still FAILED. A deletion in state FAILED teaches nothing the FAILED
//!   report did not already (every entry is reported when it turns FAILED), so it is
//!   dropped whoever deleted it; the kernel's own flushes (the bridge's MAC changed, it
//!   went down) delete entries in their state, NOARP for ours, and are read. The FIB
//!   does itself what reading its own deletions would have done.
//!
//! If the kernel still drops events (ENOBUFS: the socket overflowed), one
//! [`Event::Overrun`] says so, with the count, so the FIB resyncs from a dump instead
//! of carrying a silent gap.

use crate::ne::{u16_at, u32_at, u8_at};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::sync::mpsc;

/// Receive buffer asked for the event socket.
pub const EVENT_RCVBUF: usize = 8 << 20;

const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const AF_BRIDGE: u8 = 7;
const NTF_EXT_LEARNED: u8 = 0x10;
const NUD_FAILED: u16 = 0x20;
/// Vxlan devices the kernel filter names one by one; with more, the FDB echoes on
/// them are dropped after reading (a BPF jump reaches 255 instructions ahead).
const FILTERED_PORTS_MAX: usize = 200;

/// One thing the kernel told us.
#[derive(Debug)]
pub enum Event {
    Message(RouteNetlinkMessage),
    /// The kernel dropped events since the last overrun was taken (the count is in
    /// [`Monitor::take_overruns`]): state must be read again.
    Overrun,
}

#[derive(Debug, Default)]
struct Shared {
    echoes: AtomicU64,
    overruns: AtomicU64,
    /// An `Overrun` is queued and not yet taken: more overruns only count.
    overrun_queued: AtomicBool,
    own: RwLock<Own>,
}

/// What marks a notification as the echo of our own entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Own {
    /// The vxlan devices' interface indexes, sorted.
    pub vxlan: Vec<u32>,
    /// The FIB writer's netlink port id (0: none).
    pub writer: u32,
}

/// Tells the reader which interfaces are vxlan devices, the only ports whose
/// `extern_learn` FDB entries are vxbgp's own, and which socket writes our entries.
#[derive(Clone, Debug)]
pub struct OwnEntries {
    shared: Arc<Shared>,
    /// The event socket (a second descriptor of it), to replace its kernel filter.
    sock: Option<Arc<OwnedFd>>,
}

impl OwnEntries {
    /// Sets the vxlan devices; the kernel filter is rebuilt when they changed.
    pub fn set_vxlan(&self, ports: impl IntoIterator<Item = u32>) {
        let mut ports: Vec<u32> = ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        self.update(|own| own.vxlan = ports);
    }

    /// Sets the port id of the socket that writes our entries.
    pub fn set_writer(&self, port_id: u32) {
        self.update(|own| own.writer = port_id);
    }

    fn update(&self, change: impl FnOnce(&mut Own)) {
        let own = {
            let Ok(mut cur) = self.shared.own.write() else {
                return;
            };
            let old = cur.clone();
            change(&mut cur);
            if *cur == old {
                return;
            }
            cur.clone()
        };
        if let Some(fd) = &self.sock {
            if let Err(e) = socket2::SockRef::from(fd.as_ref()).attach_filter(&echo_filter(&own)) {
                tracing::debug!(error = %e, "netlink event filter not updated: echoes dropped after reading");
            }
        }
    }
}

/// The receiving end; the reader thread stops when this is dropped.
pub struct Monitor {
    rx: mpsc::UnboundedReceiver<Event>,
    shared: Arc<Shared>,
    own_entries: OwnEntries,
    rcvbuf: usize,
}

/// Whether a notification (one netlink message, header included) is one of our own
/// entries coming back, or nothing the FIB learns from (see the module's comment): a
/// new neighbour entry marked `extern_learn` or reported to our writer's port id, a
/// neighbour deleted in state FAILED, or an FDB entry on a vxlan device, new or going.
pub fn is_echo(msg: &[u8], own: &Own) -> bool {
    let (Some(kind), Some(pid), Some(family), Some(ifindex), Some(state), Some(flags)) = (
        u16_at(msg, 4),
        u32_at(msg, 12),
        u8_at(msg, 16),
        u32_at(msg, 20),
        u16_at(msg, 24),
        u8_at(msg, 26),
    ) else {
        return false;
    };
    let ext = flags & NTF_EXT_LEARNED != 0;
    match (kind, family) {
        (RTM_NEWNEIGH | RTM_DELNEIGH, AF_BRIDGE) => own.vxlan.binary_search(&ifindex).is_ok(),
        (RTM_NEWNEIGH, _) => ext || (own.writer != 0 && pid == own.writer),
        (RTM_DELNEIGH, _) => state == NUD_FAILED,
        _ => false,
    }
}

/// Classic BPF doing [`is_echo`] in the kernel. With more vxlan devices than
/// [`FILTERED_PORTS_MAX`], FDB entries are accepted and [`is_echo`] decides. (A notification is one netlink message; `nlmsg_type` is in host byte
/// order and below 256, so its low byte is all there is to compare. Loads of a word
/// or half-word are in network byte order: the constants are swapped to match.)
pub fn echo_filter(own: &Own) -> Vec<socket2::SockFilter> {
    echo_program(own)
        .into_iter()
        .map(|i| socket2::SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

/// One classic BPF instruction.
#[derive(Clone, Copy, Debug)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const fn op(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

const LD_LEN: u16 = 0x80;
const LDB_ABS: u16 = 0x30;
const LDW_ABS: u16 = 0x20;
const LDH_ABS: u16 = 0x28;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

fn echo_program(own: &Own) -> Vec<Insn> {
    const ACCEPT: u32 = u32::MAX;
    let type_lo = if cfg!(target_endian = "little") { 4 } else { 5 };
    let ports = if own.vxlan.len() <= FILTERED_PORTS_MAX {
        &own.vxlan[..]
    } else {
        &[]
    };
    let ext = u32::from(NTF_EXT_LEARNED);
    // The writer's port id (never 0 for a bound socket: 0 is the kernel's).
    let writer = u32::from_be_bytes(own.writer.to_ne_bytes());
    let failed = u32::from(u16::from_be_bytes(NUD_FAILED.to_ne_bytes()));
    let mut f = vec![
        op(LD_LEN, 0, 0, 0),                       // 0: length
        op(JGE_K, 0, 13, 28),                      // 1: too short → accept (15)
        op(LDB_ABS, 0, 0, type_lo),                // 2: nlmsg_type
        op(JEQ_K, 5, 0, u32::from(RTM_NEWNEIGH)),  // 3: new → 9
        op(JEQ_K, 0, 10, u32::from(RTM_DELNEIGH)), // 4: not del → accept (15)
        op(LDB_ABS, 0, 0, 16),                     // 5: ndm_family of a deletion
        op(JEQ_K, 10, 0, u32::from(AF_BRIDGE)),    // 6: FDB → ports (17)
        op(LDH_ABS, 0, 0, 24),                     // 7: ndm_state, IP neighbour
        op(JEQ_K, 7, 6, failed),                   // 8: FAILED → drop (16), else accept
        op(LDB_ABS, 0, 0, 16),                     // 9: ndm_family of a new entry
        op(JEQ_K, 6, 0, u32::from(AF_BRIDGE)),     // 10: FDB → ports (17)
        op(LDB_ABS, 0, 0, 26),                     // 11: ndm_flags, IP neighbour
        op(JSET_K, 3, 0, ext),                     // 12: extern_learn → drop (16)
        op(LDW_ABS, 0, 0, 12),                     // 13: nlmsg_pid
        op(JEQ_K, 1, 0, writer),                   // 14: our writer → drop (16), else accept
        op(RET_K, 0, 0, ACCEPT),                   // 15: accept
        op(RET_K, 0, 0, 0),                        // 16: drop
        op(LDW_ABS, 0, 0, 20),                     // 17: ndm_ifindex, FDB entry
    ];
    if own.writer == 0 {
        // No writer named: nothing is ours by its port id.
        if let Some(i) = f.get_mut(14) {
            *i = op(JEQ_K, 0, 0, 0);
        }
    }
    let n = ports.len();
    for (j, &ifindex) in ports.iter().enumerate() {
        // A match jumps to the drop after the list.
        let to_drop = u8::try_from(n - j).unwrap_or(u8::MAX);
        f.push(op(
            JEQ_K,
            to_drop,
            0,
            u32::from_be_bytes(ifindex.to_ne_bytes()),
        ));
    }
    f.push(op(RET_K, 0, 0, ACCEPT)); // not on a vxlan device: read it
    f.push(op(RET_K, 0, 0, 0)); // on a vxlan device: drop
    f
}

impl Monitor {
    /// Subscribes to `groups` (RTMGRP_* bits) in the calling thread's network
    /// namespace and starts the reader thread.
    pub fn open(groups: u32) -> io::Result<Monitor> {
        Monitor::open_with_rcvbuf(groups, EVENT_RCVBUF)
    }

    /// [`Monitor::open`] with a receive buffer of `rcvbuf` bytes.
    pub fn open_with_rcvbuf(groups: u32, rcvbuf: usize) -> io::Result<Monitor> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, groups))?;
        let rcvbuf = crate::writer::set_rcvbuf(&sock, rcvbuf);
        // Our echoes are dropped by the kernel before they take room in the buffer or
        // wake the reader; `is_echo` below catches them if the filter cannot be set.
        if let Err(e) = socket2::SockRef::from(&sock).attach_filter(&echo_filter(&Own::default())) {
            tracing::debug!(error = %e, "no netlink event filter: echoes dropped after reading");
        }
        let filter_fd = match sock.as_fd().try_clone_to_owned() {
            Ok(fd) => Some(Arc::new(fd)),
            Err(e) => {
                tracing::debug!(error = %e, "netlink event filter cannot follow the vxlan devices");
                None
            }
        };
        // Woken now and then to notice that the FIB is gone.
        socket2::SockRef::from(&sock).set_read_timeout(Some(Duration::from_secs(1)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let own_entries = OwnEntries {
            shared: shared.clone(),
            sock: filter_fd,
        };
        std::thread::Builder::new()
            .name("fib-events".into())
            .spawn(move || read_loop(sock, tx, s))?;
        Ok(Monitor {
            rx,
            shared,
            own_entries,
            rcvbuf,
        })
    }

    /// The next event; `None` if the reader stopped (the socket failed).
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Overruns since the last call (clears the count and lets the next overrun
    /// queue an [`Event::Overrun`] again).
    pub fn take_overruns(&self) -> u64 {
        self.shared.overrun_queued.store(false, Ordering::SeqCst);
        self.shared.overruns.swap(0, Ordering::SeqCst)
    }

    /// Our own entries' notifications dropped unparsed so far.
    pub fn echoes(&self) -> u64 {
        self.shared.echoes.load(Ordering::Relaxed)
    }

    /// Where the FIB names its vxlan devices and its writer.
    pub fn own_entries(&self) -> OwnEntries {
        self.own_entries.clone()
    }

    /// The receive buffer in effect (bytes, as the kernel reports it).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }
}

fn read_loop(sock: Socket, tx: mpsc::UnboundedSender<Event>, shared: Arc<Shared>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        match sock.recv_from(&mut buf, 0) {
            Ok((_, from)) if from.port_number() != 0 => {}
            Ok(_) => {
                if !forward(&buf, &tx, &shared) {
                    return;
                }
            }
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                shared.overruns.fetch_add(1, Ordering::SeqCst);
                if !shared.overrun_queued.swap(true, Ordering::SeqCst)
                    && tx.send(Event::Overrun).is_err()
                {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if tx.is_closed() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "netlink event socket failed");
                return;
            }
        }
    }
}

/// Passes on the messages of one datagram; false once the receiver is gone.
fn forward(buf: &[u8], tx: &mpsc::UnboundedSender<Event>, shared: &Shared) -> bool {
    let guard = shared.own.read().ok();
    let no_own = Own::default();
    let own = guard.as_deref().unwrap_or(&no_own);
    let mut off = 0;
    while buf.len() >= off + 16 {
        let Some(len) = u32_at(buf, off).map(|l| l as usize) else {
            break;
        };
        let Some(msg) = buf.get(off..off + len).filter(|_| len >= 16) else {
            break;
        };
        off += (len + 3) & !3;
        if is_echo(msg, own) {
            shared.echoes.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg) {
            Ok(m) => {
                if let NetlinkPayload::InnerMessage(m) = m.payload {
                    if tx.send(Event::Message(m)).is_err() {
                        return false;
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "unreadable netlink event"),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
    };
    use netlink_packet_route::AddressFamily;

    fn bytes(new: bool, family: AddressFamily, flags: NeighbourFlags) -> Vec<u8> {
        on_port(new, family, flags, 3)
    }

    fn on_port(new: bool, family: AddressFamily, flags: NeighbourFlags, ifindex: u32) -> Vec<u8> {
        let mut n = NeighbourMessage::default();
        n.header.family = family;
        n.header.ifindex = ifindex;
        n.header.flags = flags;
        let inner = if new {
            RouteNetlinkMessage::NewNeighbour(n)
        } else {
            RouteNetlinkMessage::DelNeighbour(n)
        };
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(inner));
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        b
    }

    /// The classic BPF of [`echo_program`], run as the kernel runs it: true = accepted.
    fn run_filter(prog: &[Insn], msg: &[u8]) -> bool {
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = prog[pc];
            let k = i.k as usize;
            pc += 1;
            match i.code {
                LD_LEN => a = msg.len() as u32,
                LDB_ABS => a = u32::from(msg[k]),
                LDH_ABS => a = u32::from(u16::from_be_bytes([msg[k], msg[k + 1]])),
                LDW_ABS => a = u32::from_be_bytes(msg[k..k + 4].try_into().unwrap()),
                JEQ_K | JGE_K | JSET_K => {
                    let taken = match i.code {
                        JEQ_K => a == i.k,
                        JGE_K => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET_K => return i.k != 0,
                c => panic!("opcode {c:#x} not expected"),
            }
        }
    }

    /// `msg` as if the socket with port id `pid` had asked for it.
    fn from_pid(mut msg: Vec<u8>, pid: u32) -> Vec<u8> {
        msg[12..16].copy_from_slice(&pid.to_ne_bytes());
        msg
    }

    #[test]
    fn own_entries_are_recognised_without_parsing() {
        let own = Own {
            vxlan: vec![3, 7],
            writer: 4242,
        };
        let ext = NeighbourFlags::ExtLearned | NeighbourFlags::Own;
        let failed = ip_neigh(true, NeighbourState::Failed, "198.18.0.1");
        let ours = [
            bytes(true, AddressFamily::Bridge, ext),
            bytes(true, AddressFamily::Inet, NeighbourFlags::ExtLearned),
            bytes(false, AddressFamily::Bridge, ext),
            on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 7),
            // rtnetlink's own report of a `self` request, without the mark; any FDB
            // entry on a vxlan device, going or coming.
            on_port(true, AddressFamily::Bridge, NeighbourFlags::Own, 7),
            on_port(false, AddressFamily::Bridge, NeighbourFlags::empty(), 3),
            // Our writer deleting a suppression entry: FAILED first, with its port id,
            // then gone in state FAILED (with the kernel's port id, 0).
            from_pid(failed.clone(), 4242),
            ip_neigh(false, NeighbourState::Failed, "198.18.0.1"),
            // Anyone's deletion in state FAILED: the FAILED report said it all.
            from_pid(ip_neigh(false, NeighbourState::Failed, "198.18.0.1"), 4243),
        ];
        let not_ours = [
            // A suppression entry going may have to be put back; local entries teach.
            bytes(false, AddressFamily::Inet, NeighbourFlags::ExtLearned),
            on_port(true, AddressFamily::Bridge, NeighbourFlags::Controller, 5),
            on_port(false, AddressFamily::Bridge, NeighbourFlags::empty(), 5),
            bytes(true, AddressFamily::Inet6, NeighbourFlags::empty()),
            // `bridge fdb replace MAC dev vm0 master` over our remote entry keeps
            // extern_learn: on a port that is no vxlan device it is a local MAC.
            on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 5),
            on_port(false, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 5),
            // The kernel's own (pid 0), or another program's (`ip neigh del`).
            failed.clone(),
            from_pid(failed.clone(), 4243),
            // The kernel flushing our entry (it keeps its state), or ageing out a
            // local one.
            ip_neigh(false, NeighbourState::Noarp, "198.18.0.1"),
            ip_neigh(false, NeighbourState::Stale, "198.18.0.1"),
            vec![0; 20],
        ];
        for m in &ours {
            assert!(is_echo(m, &own), "{m:?}");
        }
        for m in &not_ours {
            assert!(!is_echo(m, &own), "{m:?}");
        }
        // The kernel filter agrees, with the ports named in it or (too many) not, and
        // with a writer or none.
        let many = Own {
            vxlan: (1..=FILTERED_PORTS_MAX as u32 + 1).collect(),
            writer: 4242,
        };
        let no_writer = Own {
            writer: 0,
            ..own.clone()
        };
        for o in [&own, &many, &no_writer] {
            let prog = echo_program(o);
            for m in ours.iter().chain(&not_ours).filter(|m| m.len() >= 28) {
                let echo = is_echo(m, o);
                let named = o.vxlan.len() <= FILTERED_PORTS_MAX;
                let fdb = u8_at(m, 16) == Some(AF_BRIDGE);
                assert_eq!(run_filter(&prog, m), !echo || (fdb && !named), "{m:?}");
            }
        }
        assert!(!is_echo(&from_pid(failed.clone(), 0), &no_writer));
        // Every port of a full list is matched, the jumps reach the drop.
        let full = Own {
            vxlan: (100..100 + FILTERED_PORTS_MAX as u32).collect(),
            writer: 4242,
        };
        let prog = echo_program(&full);
        for &p in &full.vxlan {
            let m = on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, p);
            assert!(!run_filter(&prog, &m), "port {p}");
        }
        let m = on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 99);
        assert!(run_filter(&prog, &m));
    }

    #[test]
    fn a_datagram_of_several_messages_is_passed_on_without_the_echoes() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shared = Shared {
            own: RwLock::new(Own {
                vxlan: vec![3],
                writer: 0,
            }),
            ..Shared::default()
        };
        let mut d = bytes(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned);
        d.extend(on_port(
            true,
            AddressFamily::Bridge,
            NeighbourFlags::Controller,
            5,
        ));
        d.extend(bytes(false, AddressFamily::Inet, NeighbourFlags::empty()));
        d.extend([1, 2, 3]); // a truncated tail is ignored
        assert!(forward(&d, &tx, &shared));
        assert_eq!(shared.echoes.load(Ordering::Relaxed), 1);
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::Message(RouteNetlinkMessage::NewNeighbour(_)))
        ));
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::Message(RouteNetlinkMessage::DelNeighbour(_)))
        ));
        assert!(rx.try_recv().is_err());
    }

    fn ip_neigh(new: bool, state: NeighbourState, ip: &str) -> Vec<u8> {
        let mut n = NeighbourMessage::default();
        n.header.family = AddressFamily::Inet;
        n.header.ifindex = 3;
        n.header.state = state;
        n.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                ip.parse().unwrap(),
            )));
        let inner = if new {
            RouteNetlinkMessage::NewNeighbour(n)
        } else {
            RouteNetlinkMessage::DelNeighbour(n)
        };
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(inner));
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        b
    }
}
