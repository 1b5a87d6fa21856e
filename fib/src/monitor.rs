//! The kernel's link and neighbour events, read on a thread of their own.
//!
//! The socket gets a receive buffer of several MiB (SO_RCVBUFFORCE), so a burst of
//! events (ours: every entry we program comes back as a notification) waits there
//! rather than being dropped. The reader drops our own echoes before parsing them:
//! entries marked `extern_learn` (NTF_EXT_LEARNED) are what vxbgp programs and never
//! teach the FIB anything when they appear, nor when an FDB entry of them goes (see
//! [`is_echo`]; a kernel filter does it when it can). vxbgp puts FDB entries on vxlan
//! devices only ([`VxlanPorts`]): one marked `extern_learn` on another port is not ours
//! but a local MAC (`bridge fdb replace MAC dev PORT master` keeps the mark of the
//! remote entry it replaces), and is read. Deleting a suppression entry is
//! reported without that mark (RTM_NEWNEIGH in state FAILED, then RTM_DELNEIGH): the
//! FIB names the entries it is deleting in [`Deleting`], and their notifications are
//! echoes too (the FIB does itself what reading them would have done). If the kernel
//! still drops events (ENOBUFS: the socket overflowed), one
//! [`Event::Overrun`] says so, with the count, so the FIB resyncs from a dump instead
//! of carrying a silent gap.

use crate::ne::{u16_at, u32_at, u8_at};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use tokio::sync::mpsc;

/// Receive buffer asked for the event socket.
pub const EVENT_RCVBUF: usize = 8 << 20;

const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const AF_BRIDGE: u8 = 7;
const NTF_EXT_LEARNED: u8 = 0x10;
const NUD_FAILED: u16 = 0x20;
const NDA_DST: u16 = 1;
/// Vxlan devices the kernel filter names one by one; with more, the FDB echoes on
/// them are dropped after reading (a BPF jump reaches 255 instructions ahead).
const FILTERED_PORTS_MAX: usize = 200;

/// Suppression entries (bridge ifindex, IP) being deleted by the FIB, with the number
/// of deletions whose RTM_DELNEIGH has not been read yet.
#[derive(Clone, Debug, Default)]
pub struct Deleting(Arc<Mutex<HashMap<(u32, IpAddr), u32>>>);

impl Deleting {
    /// Deletions about to be sent.
    pub fn expect(&self, keys: impl IntoIterator<Item = (u32, IpAddr)>) {
        if let Ok(mut m) = self.0.lock() {
            for k in keys {
                *m.entry(k).or_default() += 1;
            }
        }
    }

    /// Deletions that found nothing (or failed): no notification will come.
    pub fn forget(&self, keys: impl IntoIterator<Item = (u32, IpAddr)>) {
        if let Ok(mut m) = self.0.lock() {
            for k in keys {
                if let Some(n) = m.get_mut(&k) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(&k);
                    }
                }
            }
        }
    }

    /// Whether a FAILED (`gone` false) or deleted (`gone` true) neighbour is one of
    /// ours being deleted; the deletion is done once it is gone.
    fn echo(&self, key: (u32, IpAddr), gone: bool) -> bool {
        let Ok(mut m) = self.0.lock() else {
            return false;
        };
        let Some(n) = m.get_mut(&key) else {
            return false;
        };
        if gone {
            *n -= 1;
            if *n == 0 {
                m.remove(&key);
            }
        }
        true
    }

    /// Forgets every deletion (their notifications may have been dropped with an
    /// overrun; any still queued are then read as ordinary events, which is harmless).
    pub fn clear(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
    }

    /// Deletions outstanding.
    pub fn len(&self) -> usize {
        self.0
            .lock()
            .map_or(0, |m| m.values().map(|n| *n as usize).sum())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// (ifindex, IP, deleted) of an IP neighbour notification that may be a deletion of
/// ours: RTM_NEWNEIGH in state FAILED, or RTM_DELNEIGH, of AF_INET/AF_INET6.
fn ip_neigh_going(msg: &[u8]) -> Option<(u32, IpAddr, bool)> {
    if msg.len() < 28 {
        return None;
    }
    let kind = u16_at(msg, 4)?;
    let family = u8_at(msg, 16)?;
    let state = u16_at(msg, 24)?;
    let gone = match kind {
        RTM_DELNEIGH => true,
        RTM_NEWNEIGH if state == NUD_FAILED => false,
        _ => return None,
    };
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    let ifindex = u32_at(msg, 20)?;
    let mut off = 28;
    while msg.len() >= off + 4 {
        let len = usize::from(u16_at(msg, off)?);
        let kind = u16_at(msg, off + 2)? & 0x3fff;
        if len < 4 || off + len > msg.len() {
            return None;
        }
        let v = msg.get(off + 4..off + len)?;
        if kind == NDA_DST {
            let ip = match v.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(v).ok()?),
                16 => IpAddr::from(<[u8; 16]>::try_from(v).ok()?),
                _ => return None,
            };
            return Some((ifindex, ip, gone));
        }
        off += (len + 3) & !3;
    }
    None
}

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
    /// The vxlan devices' interface indexes, sorted.
    vxlan: RwLock<Vec<u32>>,
}

/// Tells the reader which interfaces are vxlan devices, the only ports whose
/// `extern_learn` FDB entries are vxbgp's own.
#[derive(Clone, Debug)]
pub struct VxlanPorts {
    shared: Arc<Shared>,
    /// The event socket (a second descriptor of it), to replace its kernel filter.
    sock: Option<Arc<OwnedFd>>,
}

impl VxlanPorts {
    /// Sets the vxlan devices; the kernel filter is rebuilt when they changed.
    pub fn set(&self, ports: impl IntoIterator<Item = u32>) {
        let mut ports: Vec<u32> = ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        {
            let Ok(mut cur) = self.shared.vxlan.write() else {
                return;
            };
            if *cur == ports {
                return;
            }
            cur.clone_from(&ports);
        }
        if let Some(fd) = &self.sock {
            if let Err(e) = socket2::SockRef::from(fd.as_ref()).attach_filter(&echo_filter(&ports))
            {
                tracing::debug!(error = %e, "netlink event filter not updated: echoes dropped after reading");
            }
        }
    }
}

/// The receiving end; the reader thread stops when this is dropped.
pub struct Monitor {
    rx: mpsc::UnboundedReceiver<Event>,
    shared: Arc<Shared>,
    deleting: Deleting,
    vxlan_ports: VxlanPorts,
    rcvbuf: usize,
}

/// Whether a notification (one netlink message, header included) is one of our own
/// entries coming back: a new neighbour entry marked `extern_learn`, or such an FDB
/// entry on a vxlan device (`vxlan`, sorted), new or going. (A suppression entry
/// going is parsed: the kernel flushes those on its own and the FIB may put it back.)
pub fn is_echo(msg: &[u8], vxlan: &[u32]) -> bool {
    let (Some(kind), Some(family), Some(ifindex), Some(flags)) = (
        u16_at(msg, 4),
        u8_at(msg, 16),
        u32_at(msg, 20),
        u8_at(msg, 26),
    ) else {
        return false;
    };
    if flags & NTF_EXT_LEARNED == 0 {
        return false;
    }
    match (kind, family) {
        (RTM_NEWNEIGH | RTM_DELNEIGH, AF_BRIDGE) => vxlan.binary_search(&ifindex).is_ok(),
        (RTM_NEWNEIGH, _) => true,
        _ => false,
    }
}

/// Classic BPF doing [`is_echo`] in the kernel: drop RTM_NEWNEIGH with
/// NTF_EXT_LEARNED of IP families, and RTM_NEWNEIGH or RTM_DELNEIGH of AF_BRIDGE with
/// it on one of the `vxlan` devices; accept everything else. With more devices than
/// [`FILTERED_PORTS_MAX`], FDB entries are accepted and [`is_echo`] decides.
/// (A notification is one netlink message; `nlmsg_type` is in host byte order and
/// below 256, so its low byte is all there is to compare. Loads of a word are in
/// network byte order: the ifindex constants are swapped to match.)
pub fn echo_filter(vxlan: &[u32]) -> Vec<socket2::SockFilter> {
    echo_program(vxlan)
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
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

fn echo_program(vxlan: &[u32]) -> Vec<Insn> {
    const ACCEPT: u32 = u32::MAX;
    let type_lo = if cfg!(target_endian = "little") { 4 } else { 5 };
    let ports = if vxlan.len() <= FILTERED_PORTS_MAX {
        vxlan
    } else {
        &[]
    };
    let ext = u32::from(NTF_EXT_LEARNED);
    let mut f = vec![
        op(LD_LEN, 0, 0, 0),                      // 0: length
        op(JGE_K, 0, 11, 28),                     // 1: too short → accept (13)
        op(LDB_ABS, 0, 0, type_lo),               // 2: nlmsg_type
        op(JEQ_K, 3, 0, u32::from(RTM_NEWNEIGH)), // 3: new → 7
        op(JEQ_K, 0, 8, u32::from(RTM_DELNEIGH)), // 4: not del → accept (13)
        op(LDB_ABS, 0, 0, 16),                    // 5: ndm_family of a deletion
        op(JEQ_K, 4, 6, u32::from(AF_BRIDGE)),    // 6: FDB → 11, else accept (13)
        op(LDB_ABS, 0, 0, 16),                    // 7: ndm_family of a new entry
        op(JEQ_K, 2, 0, u32::from(AF_BRIDGE)),    // 8: FDB → 11
        op(LDB_ABS, 0, 0, 26),                    // 9: ndm_flags, IP neighbour
        op(JSET_K, 3, 2, ext),                    // 10: ours → drop (14), else accept
        op(LDB_ABS, 0, 0, 26),                    // 11: ndm_flags, FDB entry
        op(JSET_K, 2, 0, ext),                    // 12: extern_learn → ports (15)
        op(RET_K, 0, 0, ACCEPT),                  // 13: accept
        op(RET_K, 0, 0, 0),                       // 14: drop
    ];
    f.push(op(LDW_ABS, 0, 0, 20)); // 15: ndm_ifindex
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
    f.push(op(RET_K, 0, 0, ACCEPT)); // no vxlan device: not ours
    f.push(op(RET_K, 0, 0, 0)); // ours: drop
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
        if let Err(e) = socket2::SockRef::from(&sock).attach_filter(&echo_filter(&[])) {
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
        let deleting = Deleting::default();
        let d = deleting.clone();
        let vxlan_ports = VxlanPorts {
            shared: shared.clone(),
            sock: filter_fd,
        };
        std::thread::Builder::new()
            .name("fib-events".into())
            .spawn(move || read_loop(sock, tx, s, d))?;
        Ok(Monitor {
            rx,
            shared,
            deleting,
            vxlan_ports,
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

    /// Where the FIB names the vxlan devices.
    pub fn vxlan_ports(&self) -> VxlanPorts {
        self.vxlan_ports.clone()
    }

    /// Where the FIB names the suppression entries it deletes.
    pub fn deleting(&self) -> Deleting {
        self.deleting.clone()
    }

    /// The receive buffer in effect (bytes, as the kernel reports it).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }
}

fn read_loop(
    sock: Socket,
    tx: mpsc::UnboundedSender<Event>,
    shared: Arc<Shared>,
    deleting: Deleting,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        match sock.recv_from(&mut buf, 0) {
            Ok((_, from)) if from.port_number() != 0 => {}
            Ok(_) => {
                if !forward(&buf, &tx, &shared, &deleting) {
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
fn forward(
    buf: &[u8],
    tx: &mpsc::UnboundedSender<Event>,
    shared: &Shared,
    deleting: &Deleting,
) -> bool {
    let guard = shared.vxlan.read().ok();
    let vxlan = guard.as_ref().map_or(&[][..], |v| v.as_slice());
    let mut off = 0;
    while buf.len() >= off + 16 {
        let Some(len) = u32_at(buf, off).map(|l| l as usize) else {
            break;
        };
        let Some(msg) = buf.get(off..off + len).filter(|_| len >= 16) else {
            break;
        };
        off += (len + 3) & !3;
        let ours_going = || {
            ip_neigh_going(msg)
                .is_some_and(|(ifindex, ip, gone)| deleting.echo((ifindex, ip), gone))
        };
        if is_echo(msg, vxlan) || ours_going() {
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

    #[test]
    fn own_entries_are_recognised_without_parsing() {
        let vxlan = [3, 7];
        let ext = NeighbourFlags::ExtLearned | NeighbourFlags::Own;
        let ours = [
            bytes(true, AddressFamily::Bridge, ext),
            bytes(true, AddressFamily::Inet, NeighbourFlags::ExtLearned),
            bytes(false, AddressFamily::Bridge, ext),
            on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 7),
        ];
        let not_ours = [
            // A suppression entry going may have to be put back; local entries teach.
            bytes(false, AddressFamily::Inet, NeighbourFlags::ExtLearned),
            bytes(true, AddressFamily::Bridge, NeighbourFlags::Controller),
            bytes(true, AddressFamily::Inet6, NeighbourFlags::empty()),
            // `bridge fdb replace MAC dev vm0 master` over our remote entry keeps
            // extern_learn: on a port that is no vxlan device it is a local MAC.
            on_port(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 5),
            on_port(false, AddressFamily::Bridge, NeighbourFlags::ExtLearned, 5),
            vec![0; 20],
        ];
        for m in &ours {
            assert!(is_echo(m, &vxlan), "{m:?}");
        }
        for m in &not_ours {
            assert!(!is_echo(m, &vxlan), "{m:?}");
        }
        // The kernel filter agrees, with the ports named in it or (too many) not.
        let many: Vec<u32> = (1..=FILTERED_PORTS_MAX as u32 + 1).collect();
        for (prog, ports) in [
            (echo_program(&vxlan), &vxlan[..]),
            (echo_program(&many), &many),
        ] {
            for m in ours.iter().chain(&not_ours).filter(|m| m.len() >= 28) {
                let echo = is_echo(m, ports);
                let named = ports.len() <= FILTERED_PORTS_MAX;
                let fdb = u8_at(m, 16) == Some(AF_BRIDGE);
                assert_eq!(run_filter(&prog, m), !echo || (fdb && !named), "{m:?}");
            }
        }
        // Every port of a full list is matched, the jumps reach the drop.
        let full: Vec<u32> = (100..100 + FILTERED_PORTS_MAX as u32).collect();
        let prog = echo_program(&full);
        for &p in &full {
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
            vxlan: RwLock::new(vec![3]),
            ..Shared::default()
        };
        let mut d = bytes(true, AddressFamily::Bridge, NeighbourFlags::ExtLearned);
        d.extend(bytes(
            true,
            AddressFamily::Bridge,
            NeighbourFlags::Controller,
        ));
        d.extend(bytes(false, AddressFamily::Inet, NeighbourFlags::empty()));
        d.extend([1, 2, 3]); // a truncated tail is ignored
        assert!(forward(&d, &tx, &shared, &Deleting::default()));
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

    #[test]
    fn deletions_of_our_suppression_entries_are_echoes_until_gone() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shared = Shared::default();
        let deleting = Deleting::default();
        let ip: IpAddr = "198.18.0.1".parse().unwrap();
        deleting.expect([(3, ip), (3, "198.18.0.9".parse().unwrap())]);
        assert_eq!(deleting.len(), 2);
        let failed = ip_neigh(true, NeighbourState::Failed, "198.18.0.1");
        let gone = ip_neigh(false, NeighbourState::Failed, "198.18.0.1");
        assert_eq!(ip_neigh_going(&failed), Some((3, ip, false)));
        assert_eq!(ip_neigh_going(&gone), Some((3, ip, true)));
        let mut d = failed.clone();
        d.extend(&gone);
        assert!(forward(&d, &tx, &shared, &deleting));
        assert!(rx.try_recv().is_err(), "both were echoes");
        assert_eq!(shared.echoes.load(Ordering::Relaxed), 2);
        // Done with it: the next ones are the kernel's news again.
        assert!(forward(&gone, &tx, &shared, &deleting));
        assert!(rx.try_recv().is_ok());
        // Another address, or a reachable entry, is never taken for an echo.
        let other = ip_neigh(true, NeighbourState::Failed, "198.18.0.2");
        let reachable = ip_neigh(true, NeighbourState::Reachable, "198.18.0.9");
        assert_eq!(ip_neigh_going(&reachable), None);
        assert!(forward(&other, &tx, &shared, &deleting));
        assert!(forward(&reachable, &tx, &shared, &deleting));
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
        // A deletion that found nothing is forgotten.
        deleting.forget([(3, "198.18.0.9".parse().unwrap())]);
        assert!(deleting.is_empty());
    }
}
