//! Batched netlink writer: the "netlink floor" way of programming the kernel.
//!
//! Requests are serialized back to back into buffers of about [`BATCH_BYTES`], each
//! with its own sequence number; only the last request of a buffer asks for an ack
//! (`NLM_F_ACK`). The kernel answers a failing request with an NLMSG_ERROR carrying its
//! sequence number whether or not it asked for an ack, so one `sendmsg` per buffer and,
//! when all goes well, one reply per buffer is all it takes. Replies are read until the
//! ack (or error) of each buffer's last request has arrived, and every error is matched
//! to its request by sequence number: one failing request never fails the others.
//!
//! NETLINK_ROUTE requests are processed inside `sendmsg`, so by the time it returns the
//! replies are queued on the socket; [`DEFAULT_WINDOW`] buffers may be sent before
//! their replies are read (measured: more buys nothing, see `examples/fib_floor.rs`).
//!
//! The writer is synchronous (a blocking socket with a receive timeout), opened in the
//! network namespace of the calling thread.

use crate::ne::{i32_at, put, u16_at, u32_at};
use std::borrow::Borrow;
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use netlink_packet_core::{NetlinkSerializable, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Bytes of requests per `sendmsg`.
pub const BATCH_BYTES: usize = 16 * 1024;
/// Buffers sent before their replies are read.
pub const DEFAULT_WINDOW: usize = 1;
/// Receive buffer of the writer's socket: room for the errors of every request of the
/// buffers in flight (each error is its own datagram).
const RCVBUF: usize = 4 << 20;
/// How long to wait for a reply before giving a buffer's requests up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_OVERRUN: u16 = 4;
const ETIMEDOUT: i32 = nix::libc::ETIMEDOUT;
const ENOBUFS: i32 = nix::libc::ENOBUFS;

/// An errno (positive), as the kernel reported it for one request.
pub type Errno = i32;

/// One netlink request: a message and its header flags (`NLM_F_REQUEST` is added and
/// `NLM_F_ACK` is managed by the writer, whatever is given here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub message: RouteNetlinkMessage,
    pub flags: u16,
}

impl Request {
    pub fn new(message: RouteNetlinkMessage, flags: u16) -> Self {
        Request { message, flags }
    }
}

/// What the writer needs of a socket: a datagram out, a datagram in.
pub trait Transport {
    /// Sends one buffer of requests (all or nothing).
    fn send(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Receives one datagram into `buf` (cleared first). `wait`: block (up to a
    /// timeout, then `WouldBlock`/`TimedOut`) rather than return `WouldBlock` at once.
    fn recv(&mut self, buf: &mut Vec<u8>, wait: bool) -> io::Result<()>;
}

/// A NETLINK_ROUTE socket of its own.
pub struct NetlinkTransport {
    sock: Socket,
    /// The socket's netlink port id: the kernel's notifications of a neighbour update
    /// carry it as their `nlmsg_pid` (see `monitor`).
    port_id: u32,
}

impl NetlinkTransport {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        let port_id = sock.bind_auto()?.port_number();
        // Errors carry only the failing request's header, not the whole request.
        let _ = sock.set_cap_ack(true);
        set_rcvbuf(&sock, RCVBUF);
        socket2::SockRef::from(&sock).set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(NetlinkTransport { sock, port_id })
    }
}

/// Sets a socket's receive buffer: beyond `rmem_max` if allowed (SO_RCVBUFFORCE, needs
/// CAP_NET_ADMIN), else as large as `rmem_max` lets it be. Returns the size in effect.
pub fn set_rcvbuf(sock: &Socket, bytes: usize) -> usize {
    use nix::sys::socket::{setsockopt, sockopt::RcvBufForce};
    if setsockopt(sock, RcvBufForce, &bytes).is_err() {
        let _ = sock.set_rx_buf_sz(bytes);
    }
    sock.get_rx_buf_sz().unwrap_or(0)
}

impl Transport for NetlinkTransport {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(buf, &kernel, 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&mut self, buf: &mut Vec<u8>, wait: bool) -> io::Result<()> {
        let flags = if wait { 0 } else { nix::libc::MSG_DONTWAIT };
        loop {
            buf.clear();
            match self.sock.recv_from(buf, flags) {
                // Only the kernel (port 0) answers requests.
                Ok((_, from)) if from.port_number() != 0 => continue,
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A buffer sent and not yet fully answered: requests `base_index..base_index+count`
/// (of the current call) with sequence numbers `base_seq..`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    base_seq: u32,
    count: u32,
    base_index: usize,
}

impl InFlight {
    fn last_seq(&self) -> u32 {
        self.base_seq.wrapping_add(self.count - 1)
    }

    fn index_of(&self, seq: u32) -> Option<usize> {
        let off = seq.wrapping_sub(self.base_seq);
        (off < self.count).then(|| self.base_index + off as usize)
    }
}

/// Matches replies to requests: the buffers in flight, and the failures so far.
#[derive(Debug, Default)]
struct Tracker {
    inflight: VecDeque<InFlight>,
    /// (request index, errno), in the order the kernel reported them.
    failures: Vec<(usize, Errno)>,
    /// Replies were dropped (the receive buffer overflowed): what is still queued is
    /// read without waiting, and requests left without an answer fail.
    lost: bool,
}

impl Tracker {
    /// One reply: `errno` 0 is an ack. A reply for no request in flight (a stale one,
    /// from a buffer given up earlier) is ignored.
    fn reply(&mut self, seq: u32, errno: Errno) {
        let Some(pos) = self.inflight.iter().position(|b| b.index_of(seq).is_some()) else {
            return;
        };
        let Some(&b) = self.inflight.get(pos) else {
            return;
        };
        if errno != 0 {
            if let Some(i) = b.index_of(seq) {
                self.failures.push((i, errno));
            }
        }
        if seq == b.last_seq() {
            // The kernel handles requests in order: every buffer sent before this one
            // is done too.
            self.inflight.drain(..=pos);
        }
    }

    /// The replies of the buffers in flight cannot all be known any more (lost or
    /// never sent): their requests without a reported error fail with `errno`.
    fn give_up(&mut self, errno: Errno) {
        while let Some(b) = self.inflight.pop_front() {
            let known: Vec<usize> = self
                .failures
                .iter()
                .filter(|(i, _)| (b.base_index..b.base_index + b.count as usize).contains(i))
                .map(|(i, _)| *i)
                .collect();
            for i in b.base_index..b.base_index + b.count as usize {
                if !known.contains(&i) {
                    self.failures.push((i, errno));
                }
            }
        }
    }
}

/// Calls `f(seq, errno)` for every NLMSG_ERROR in a datagram (errno 0 for an ack).
/// Returns false if the kernel reported an overrun. Stops at the first malformed header.
fn parse_replies(buf: &[u8], mut f: impl FnMut(u32, Errno)) -> bool {
    let mut off = 0;
    let mut ok = true;
    while let Some(h) = buf.get(off..).filter(|h| h.len() >= NLMSG_HDRLEN) {
        let (Some(len), Some(kind), Some(seq)) = (u32_at(h, 0), u16_at(h, 4), u32_at(h, 8)) else {
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > h.len() {
            break;
        }
        if kind == NLMSG_ERROR && len >= NLMSG_HDRLEN + 4 {
            let code = i32_at(h, 16).unwrap_or(0);
            f(seq, code.checked_neg().unwrap_or(i32::MAX));
        } else if kind == NLMSG_OVERRUN {
            ok = false;
        }
        off += (len + 3) & !3;
    }
    ok
}

/// Appends one request to `buf` with sequence number `seq` (no `NLM_F_ACK`); returns
/// the offset of its header.
fn encode(buf: &mut Vec<u8>, msg: &RouteNetlinkMessage, flags: u16, seq: u32) -> usize {
    let start = buf.len();
    let payload = NetlinkSerializable::buffer_len(msg);
    let len = NLMSG_HDRLEN + payload;
    let flags = (flags | NLM_F_REQUEST) & !NLM_F_ACK;
    buf.resize(start + ((len + 3) & !3), 0);
    put(buf, start, &(len as u32).to_ne_bytes());
    put(
        buf,
        start + 4,
        &NetlinkSerializable::message_type(msg).to_ne_bytes(),
    );
    put(buf, start + 6, &flags.to_ne_bytes());
    put(buf, start + 8, &seq.to_ne_bytes());
    put(buf, start + 12, &0u32.to_ne_bytes());
    if let Some(payload) = buf.get_mut(start + NLMSG_HDRLEN..start + len) {
        NetlinkSerializable::serialize(msg, payload);
    }
    start
}

/// Sets `NLM_F_ACK` on the request whose header is at `at`.
fn ask_ack(buf: &mut [u8], at: usize) {
    if let Some(flags) = u16_at(buf, at + 6) {
        put(buf, at + 6, &(flags | NLM_F_ACK).to_ne_bytes());
    }
}

/// Writes requests in batches; see the module docs.
pub struct Writer<T: Transport = NetlinkTransport> {
    transport: T,
    next_seq: u32,
    batch_bytes: usize,
    window: usize,
    out: Vec<u8>,
    inbuf: Vec<u8>,
}

impl Writer<NetlinkTransport> {
    /// A writer on a socket of its own, in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        Ok(Writer::with_transport(NetlinkTransport::open()?))
    }

    /// The socket's netlink port id.
    pub fn port_id(&self) -> u32 {
        self.transport.port_id
    }
}

impl<T: Transport> Writer<T> {
    pub fn with_transport(transport: T) -> Self {
        Writer {
            transport,
            next_seq: 1,
            batch_bytes: BATCH_BYTES,
            window: DEFAULT_WINDOW,
            out: Vec::with_capacity(BATCH_BYTES + 1024),
            inbuf: Vec::with_capacity(64 * 1024),
        }
    }

    /// Bytes of requests per `sendmsg` (at least one request goes in each).
    pub fn set_batch_bytes(&mut self, bytes: usize) {
        self.batch_bytes = bytes.max(1);
    }

    /// Buffers sent before their replies are read (at least 1).
    pub fn set_window(&mut self, window: usize) {
        self.window = window.max(1);
    }

    /// Sends `requests`; one result per request, in order.
    pub fn send(&mut self, requests: &[Request]) -> Vec<Result<(), Errno>> {
        let mut out = vec![Ok(()); requests.len()];
        for (i, e) in self.send_iter(requests) {
            if let Some(r) = out.get_mut(i) {
                *r = Err(e);
            }
        }
        out
    }

    /// Sends every request of `requests` (streamed: they are serialized as they come);
    /// returns the failures as (index of the request, errno), by index.
    pub fn send_iter<I, R>(&mut self, requests: I) -> Vec<(usize, Errno)>
    where
        I: IntoIterator<Item = R>,
        R: Borrow<Request>,
    {
        let mut t = Tracker::default();
        let mut batch = InFlight {
            base_seq: self.next_seq,
            count: 0,
            base_index: 0,
        };
        let mut last_at = 0;
        self.out.clear();
        for (i, r) in requests.into_iter().enumerate() {
            let r = r.borrow();
            let before = self.out.len();
            let at = encode(&mut self.out, &r.message, r.flags, self.next_seq);
            if batch.count > 0 && self.out.len() > self.batch_bytes {
                // Full: send what was there, and start the next buffer with this one.
                self.out.truncate(before);
                self.flush(&mut t, batch, last_at);
                self.out.clear();
                batch = InFlight {
                    base_seq: self.next_seq,
                    count: 0,
                    base_index: i,
                };
                last_at = encode(&mut self.out, &r.message, r.flags, self.next_seq);
            } else {
                last_at = at;
            }
            self.next_seq = self.next_seq.wrapping_add(1);
            batch.count += 1;
        }
        if batch.count > 0 {
            self.flush(&mut t, batch, last_at);
        }
        self.drain(&mut t, 0);
        t.failures.sort_unstable();
        t.failures
    }

    /// Sends the buffer (its last request asking for an ack), then reads replies until
    /// fewer than `window` buffers are in flight.
    fn flush(&mut self, t: &mut Tracker, batch: InFlight, last_at: usize) {
        ask_ack(&mut self.out, last_at);
        t.inflight.push_back(batch);
        if let Err(e) = self.transport.send(&self.out) {
            // Nothing of this buffer reached the kernel (a datagram is all or nothing).
            let errno = e.raw_os_error().unwrap_or(ENOBUFS);
            if let Some(b) = t.inflight.pop_back() {
                t.failures
                    .extend((b.base_index..b.base_index + b.count as usize).map(|i| (i, errno)));
            }
        }
        self.drain(t, self.window - 1);
    }

    /// Reads replies until at most `keep` buffers are in flight.
    fn drain(&mut self, t: &mut Tracker, keep: usize) {
        while t.inflight.len() > keep {
            match self.transport.recv(&mut self.inbuf, !t.lost) {
                Ok(()) => {
                    if !parse_replies(&self.inbuf, |seq, errno| t.reply(seq, errno)) {
                        t.lost = true;
                    }
                }
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                    tracing::warn!("netlink replies lost (receive buffer full)");
                    t.lost = true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !t.lost {
                        tracing::warn!(
                            buffers = t.inflight.len(),
                            "no netlink reply in time: requests given up"
                        );
                    }
                    t.give_up(if t.lost { ENOBUFS } else { ETIMEDOUT });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "netlink receive failed");
                    t.give_up(e.raw_os_error().unwrap_or(ENOBUFS));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
