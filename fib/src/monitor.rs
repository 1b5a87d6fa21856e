//! The kernel's link and neighbour events, read on a thread of their own.
//!
//! The socket gets a receive buffer of several MiB (SO_RCVBUFFORCE), so a burst of
//! events (ours: every entry we program comes back as a notification) waits there
//! rather than being dropped. The reader drops our own echoes before parsing them:
//! entries marked `extern_learn` (NTF_EXT_LEARNED) are what vxbgp programs and never
//! teach the FIB anything when they appear, nor when an FDB entry of them goes (see
//! [`is_echo`]). If the kernel still drops events (ENOBUFS: the socket overflowed), one
//! [`Event::Overrun`] says so, with the count, so the FIB resyncs from a dump instead
//! of carrying a silent gap.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
    rcvbuf: usize,
}

/// Whether a notification (one netlink message, header included) is one of our own
/// entries coming back: a new neighbour or FDB entry marked `extern_learn`, or such an
/// FDB entry going. (A suppression entry going is parsed: the kernel flushes those
/// on its own and the FIB may put it back.)
pub fn is_echo(msg: &[u8]) -> bool {
    if msg.len() < 16 + 12 {
        return false;
    }
    let kind = u16::from_ne_bytes([msg[4], msg[5]]);
    let family = msg[16];
    let flags = msg[26];
    flags & NTF_EXT_LEARNED != 0
        && (kind == RTM_NEWNEIGH || (kind == RTM_DELNEIGH && family == AF_BRIDGE))
}

impl Monitor {
    /// Subscribes to `groups` (RTMGRP_* bits) in the calling thread's network
    /// namespace and starts the reader thread.
    pub fn open(groups: u32) -> io::Result<Monitor> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, groups))?;
        let rcvbuf = crate::writer::set_rcvbuf(&sock, EVENT_RCVBUF);
        // Woken now and then to notice that the FIB is gone.
        socket2::SockRef::from(&sock).set_read_timeout(Some(Duration::from_secs(1)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("fib-events".into())
            .spawn(move || read_loop(sock, tx, s))?;
        Ok(Monitor { rx, shared, rcvbuf })
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
    let mut off = 0;
    while buf.len() >= off + 16 {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let msg = &buf[off..off + len];
        off += (len + 3) & !3;
        if is_echo(msg) {
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
    use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourMessage};
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
}
