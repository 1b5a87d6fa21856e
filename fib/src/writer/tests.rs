//! The writer against a fake kernel: batching, sequence numbers, and errors matched to
//! their requests, without root.

use std::collections::{HashSet, VecDeque};
use std::io;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::*;

/// One request as the fake kernel read it.
#[derive(Clone, Debug)]
struct Seen {
    seq: u32,
    flags: u16,
    ifindex: u32,
}

/// A kernel that handles each buffer at once, like NETLINK_ROUTE does in `sendmsg`:
/// requests on an ifindex in `bad` fail with ENODEV, others succeed; an ack only when
/// asked for.
#[derive(Default)]
struct FakeKernel {
    bad: HashSet<u32>,
    buffers: Vec<Vec<Seen>>,
    sizes: Vec<usize>,
    queue: VecDeque<Vec<u8>>,
    /// Replies dropped (as a full receive buffer drops them) from this many on.
    drop_after: Option<usize>,
    dropped: bool,
    replies: usize,
    /// `send` fails for the buffer with this number.
    fail_send: Option<usize>,
}

fn error_datagram(seq: u32, code: i32) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&36u32.to_ne_bytes());
    d.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    d.extend_from_slice(&0u16.to_ne_bytes());
    d.extend_from_slice(&seq.to_ne_bytes());
    d.extend_from_slice(&7u32.to_ne_bytes());
    d.extend_from_slice(&code.to_ne_bytes());
    d.extend_from_slice(&[0u8; 16]); // the request's header (NETLINK_CAP_ACK)
    d
}

impl Transport for FakeKernel {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.fail_send == Some(self.buffers.len()) {
            self.buffers.push(Vec::new());
            self.sizes.push(buf.len());
            return Err(io::Error::from_raw_os_error(nix::libc::EMSGSIZE));
        }
        let mut seen = Vec::new();
        let mut off = 0;
        while off < buf.len() {
            let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
                .map_err(|e| io::Error::other(format!("bad request: {e}")))?;
            let ifindex = match &m.payload {
                netlink_packet_core::NetlinkPayload::InnerMessage(
                    RouteNetlinkMessage::NewNeighbour(n),
                ) => n.header.ifindex,
                _ => 0,
            };
            let h: NetlinkHeader = m.header;
            assert_eq!(h.length as usize % 4, 0, "requests are 4-byte aligned");
            off += h.length as usize;
            seen.push(Seen {
                seq: h.sequence_number,
                flags: h.flags,
                ifindex,
            });
        }
        for s in &seen {
            let code = if self.bad.contains(&s.ifindex) {
                -nix::libc::ENODEV
            } else if s.flags & NLM_F_ACK != 0 {
                0
            } else {
                continue;
            };
            if self.drop_after.is_some_and(|n| self.replies >= n) {
                self.dropped = true;
            } else {
                self.queue.push_back(error_datagram(s.seq, code));
            }
            self.replies += 1;
        }
        self.buffers.push(seen);
        self.sizes.push(buf.len());
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, _wait: bool) -> io::Result<()> {
        if std::mem::take(&mut self.dropped) {
            return Err(io::Error::from_raw_os_error(ENOBUFS));
        }
        match self.queue.pop_front() {
            Some(d) => {
                buf.clear();
                buf.extend_from_slice(&d);
                Ok(())
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

fn req(ifindex: u32, n: u32) -> Request {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    let b = n.to_be_bytes();
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![
        2, 0, b[0], b[1], b[2], b[3],
    ]));
    Request::new(
        RouteNetlinkMessage::NewNeighbour(m),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
    )
}

/// Bytes of one request from [`req`].
fn req_len() -> usize {
    let r = req(5, 0);
    let mut b = Vec::new();
    encode(&mut b, &r.message, r.flags, 0);
    b.len()
}

fn writer(bad: &[u32]) -> Writer<FakeKernel> {
    Writer::with_transport(FakeKernel {
        bad: bad.iter().copied().collect(),
        ..Default::default()
    })
}

#[test]
fn no_requests_send_nothing() {
    let mut w = writer(&[]);
    assert!(w.send(&[]).is_empty());
    assert!(w.send_iter(std::iter::empty::<Request>()).is_empty());
    assert!(w.transport.buffers.is_empty());
}

#[test]
fn requests_go_in_buffers_of_at_most_16k_with_an_ack_only_on_the_last() {
    let mut w = writer(&[]);
    let reqs: Vec<Request> = (0..3000).map(|i| req(5, i)).collect();
    let res = w.send(&reqs);
    assert!(res.iter().all(|r| r.is_ok()));
    let k = &w.transport;
    assert!(k.buffers.len() > 1, "3000 requests need several buffers");
    assert!(k.sizes.iter().all(|&s| s <= BATCH_BYTES));
    // Full buffers: all but the last are within one request of the limit.
    let one = k.sizes[0] / k.buffers[0].len();
    assert!(k.sizes[..k.sizes.len() - 1]
        .iter()
        .all(|&s| s + one > BATCH_BYTES));
    let all: Vec<&Seen> = k.buffers.iter().flatten().collect();
    assert_eq!(all.len(), 3000);
    for (i, s) in all.iter().enumerate() {
        assert_eq!(s.seq, all[0].seq + i as u32, "one sequence number each");
        assert_ne!(s.flags & NLM_F_REQUEST, 0);
        assert_eq!(s.flags & NLM_F_CREATE, NLM_F_CREATE, "flags kept");
    }
    for b in &k.buffers {
        let (last, rest) = b.split_last().expect("no empty buffer");
        assert_ne!(last.flags & NLM_F_ACK, 0);
        assert!(rest.iter().all(|s| s.flags & NLM_F_ACK == 0));
    }
    // A second call goes on with fresh sequence numbers.
    let first_again = all[0].seq;
    w.send(&reqs[..1]);
    let s = &w.transport.buffers.last().expect("sent")[0];
    assert_eq!(s.seq, first_again + 3000);
}

#[test]
fn one_failing_request_fails_alone() {
    let mut reqs: Vec<Request> = (0..2000).map(|i| req(5, i)).collect();
    reqs[777] = req(99, 777);
    for window in [1, 3] {
        let mut w = writer(&[99]);
        w.set_window(window);
        let res = w.send(&reqs);
        for (i, r) in res.iter().enumerate() {
            if i == 777 {
                assert_eq!(*r, Err(nix::libc::ENODEV));
            } else {
                assert_eq!(*r, Ok(()), "request {i}");
            }
        }
    }
}

#[test]
fn failures_of_last_requests_and_of_whole_buffers_are_matched() {
    // The last request of every buffer fails (its error is its buffer's only reply),
    // and one buffer fails entirely: still one result per request.
    let mut w = writer(&[99]);
    w.set_batch_bytes(10 * req_len());
    let reqs: Vec<Request> = (0..95)
        .map(|i| {
            req(
                if i % 10 == 9 || (40..50).contains(&i) {
                    99
                } else {
                    5
                },
                i,
            )
        })
        .collect();
    let res = w.send(&reqs);
    let per_buffer = w.transport.buffers[0].len();
    assert_eq!(per_buffer, 10, "10 requests a buffer");
    for (i, r) in res.iter().enumerate() {
        let bad = i % 10 == 9 || (40..50).contains(&i);
        assert_eq!(r.is_err(), bad, "request {i}");
    }
}

#[test]
fn a_buffer_the_kernel_refuses_fails_its_requests_only() {
    let mut w = writer(&[]);
    w.set_batch_bytes(10 * req_len());
    w.transport.fail_send = Some(1);
    let reqs: Vec<Request> = (0..30).map(|i| req(5, i)).collect();
    let res = w.send(&reqs);
    for (i, r) in res.iter().enumerate() {
        if (10..20).contains(&i) {
            assert_eq!(*r, Err(nix::libc::EMSGSIZE));
        } else {
            assert_eq!(*r, Ok(()), "request {i}");
        }
    }
}

#[test]
fn lost_replies_fail_only_the_requests_left_unanswered() {
    let mut w = writer(&[99]);
    w.set_batch_bytes(10 * req_len());
    w.set_window(3);
    // Replies: buffer 0 ack, buffer 1 error (request 12) + ack, then nothing.
    w.transport.drop_after = Some(3);
    let mut reqs: Vec<Request> = (0..30).map(|i| req(5, i)).collect();
    reqs[12] = req(99, 12);
    let res = w.send(&reqs);
    for (i, r) in res.iter().enumerate() {
        match i {
            0..=9 => assert_eq!(*r, Ok(()), "request {i}"),
            12 => assert_eq!(*r, Err(nix::libc::ENODEV)),
            10..=19 => assert_eq!(*r, Ok(()), "request {i}"),
            _ => assert_eq!(*r, Err(ENOBUFS), "request {i}"),
        }
    }
}

#[test]
fn reply_stream_is_matched_by_sequence_number() {
    // A synthetic reply stream: two buffers in flight, errors out of the blue (stale
    // sequence numbers) ignored, several messages in one datagram.
    let mut t = Tracker::default();
    t.inflight.push_back(InFlight {
        base_seq: u32::MAX - 2,
        count: 5,
        base_index: 0,
    });
    t.inflight.push_back(InFlight {
        base_seq: 2,
        count: 3,
        base_index: 5,
    });
    let mut stream = Vec::new();
    stream.extend(error_datagram(1000, -nix::libc::EINVAL)); // stale
    stream.extend(error_datagram(u32::MAX, -nix::libc::EEXIST)); // index 2
    stream.extend(error_datagram(1, 0)); // last of buffer 1: done
    stream.extend(error_datagram(3, -nix::libc::ENOENT)); // index 6
    assert!(parse_replies(&stream, |s, e| t.reply(s, e)));
    assert_eq!(t.inflight.len(), 1);
    assert_eq!(
        t.failures,
        vec![(2, nix::libc::EEXIST), (6, nix::libc::ENOENT)]
    );
    // The last of buffer 2 fails: it ends the buffer too.
    parse_replies(&error_datagram(4, -nix::libc::EPERM), |s, e| t.reply(s, e));
    assert!(t.inflight.is_empty());
    assert_eq!(t.failures.last(), Some(&(7, nix::libc::EPERM)));
    // Truncated input is no reply (and no panic).
    let d = error_datagram(5, 0);
    for n in 0..d.len() {
        parse_replies(&d[..n], |_, _| panic!("a truncated reply was read"));
    }
}

#[test]
fn a_later_ack_completes_earlier_buffers() {
    let mut t = Tracker::default();
    for b in 0..3u32 {
        t.inflight.push_back(InFlight {
            base_seq: 10 * b,
            count: 10,
            base_index: 10 * b as usize,
        });
    }
    t.reply(29, 0);
    assert!(t.inflight.is_empty());
    assert!(t.failures.is_empty());
}
