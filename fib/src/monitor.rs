//! The kernel's link and neighbour events, read on a thread of their own.
//!
//! The socket gets a receive buffer of several MiB (SO_RCVBUFFORCE), so a burst of
//! events (ours: every entry we program comes back as a notification) waits there
//! rather than being dropped. The reader drops our own echoes before parsing them:
//! entries marked `extern_learn` (NTF_EXT_LEARNED) are what vxbgp programs and never
//! teach the FIB anything when they appear, nor when an FDB entry of them goes (see
//! [`is_echo`]; a kernel filter does it when it can). Deleting a suppression entry is
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

#[derive(Default)]
struct Shared {
    echoes: AtomicU64,
    overruns: AtomicU64,
    /// An `Overrun` is queued and not yet taken: more overruns only count.
    overrun_queued: AtomicBool,
}

/// The receiving end; the reader thread stops when this is dropped.
pub struct Monitor {
    rx: mpsc::UnboundedReceiver<Event>,
    shared: Arc<Shared>,
    deleting: Deleting,
    rcvbuf: usize,
}

/// Whether a notification (one netlink message, header included) is one of our own
/// entries coming back: a new neighbour or FDB entry marked `extern_learn`, or such an
/// FDB entry going. (A suppression entry going is parsed: the kernel flushes those
/// on its own and the FIB may put it back.)
pub fn is_echo(msg: &[u8]) -> bool {
    let (Some(kind), Some(family), Some(flags)) = (u16_at(msg, 4), u8_at(msg, 16), u8_at(msg, 26))
    else {
        return false;
    };
    flags & NTF_EXT_LEARNED != 0
        && (kind == RTM_NEWNEIGH || (kind == RTM_DELNEIGH && family == AF_BRIDGE))
}

/// Classic BPF doing [`is_echo`] in the kernel: drop RTM_NEWNEIGH with
/// NTF_EXT_LEARNED, and RTM_DELNEIGH of AF_BRIDGE with it; accept everything else.
/// (A notification is one netlink message; `nlmsg_type` is in host byte order and
/// below 256, so its low byte is all there is to compare.)
pub fn echo_filter() -> Vec<socket2::SockFilter> {
    use socket2::SockFilter as F;
    const LD_LEN: u16 = 0x80;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    let type_lo = if cfg!(target_endian = "little") { 4 } else { 5 };
    vec![
        F::new(LD_LEN, 0, 0, 0),                          // 0: length
        F::new(JGE_K, 0, 8, 28),                          // 1: too short → accept
        F::new(LDB_ABS, 0, 0, type_lo),                   // 2: nlmsg_type
        F::new(JEQ_K, 3, 0, u32::from(RTM_NEWNEIGH)),     // 3: new → flags
        F::new(JEQ_K, 0, 5, u32::from(RTM_DELNEIGH)),     // 4: not del → accept
        F::new(LDB_ABS, 0, 0, 16),                        // 5: ndm_family
        F::new(JEQ_K, 0, 3, u32::from(AF_BRIDGE)),        // 6: not bridge → accept
        F::new(LDB_ABS, 0, 0, 26),                        // 7: ndm_flags
        F::new(JSET_K, 0, 1, u32::from(NTF_EXT_LEARNED)), // 8: ours → drop
        F::new(RET_K, 0, 0, 0),                           // 9: drop
        F::new(RET_K, 0, 0, u32::MAX),                    // 10: accept
    ]
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
        if let Err(e) = socket2::SockRef::from(&sock).attach_filter(&echo_filter()) {
            tracing::debug!(error = %e, "no netlink event filter: echoes dropped after reading");
        }
        // Woken now and then to notice that the FIB is gone.
        socket2::SockRef::from(&sock).set_read_timeout(Some(Duration::from_secs(1)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let deleting = Deleting::default();
        let d = deleting.clone();
        std::thread::Builder::new()
            .name("fib-events".into())
            .spawn(move || read_loop(sock, tx, s, d))?;
        Ok(Monitor {
            rx,
            shared,
            deleting,
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
        if is_echo(msg) || ours_going() {
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
        let mut n = NeighbourMessage::default();
        n.header.family = family;
        n.header.ifindex = 3;
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

    #[test]
    fn own_entries_are_recognised_without_parsing() {
        let ext = NeighbourFlags::ExtLearned | NeighbourFlags::Own;
        assert!(is_echo(&bytes(true, AddressFamily::Bridge, ext)));
        assert!(is_echo(&bytes(
            true,
            AddressFamily::Inet,
            NeighbourFlags::ExtLearned
        )));
        assert!(is_echo(&bytes(false, AddressFamily::Bridge, ext)));
        // A suppression entry going may have to be put back; local entries teach.
        assert!(!is_echo(&bytes(
            false,
            AddressFamily::Inet,
            NeighbourFlags::ExtLearned
        )));
        assert!(!is_echo(&bytes(
            true,
            AddressFamily::Bridge,
            NeighbourFlags::Controller
        )));
        assert!(!is_echo(&bytes(
            true,
            AddressFamily::Inet6,
            NeighbourFlags::empty()
        )));
        assert!(!is_echo(&[0; 20]));
    }

    #[test]
    fn a_datagram_of_several_messages_is_passed_on_without_the_echoes() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shared = Shared::default();
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
