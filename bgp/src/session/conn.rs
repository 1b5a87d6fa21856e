//! One TCP connection of a session: framing, decoding, the FSM, and a writer task.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::fsm::{Fsm, FsmConfig, Output};
use crate::af::AddressFamily;
use crate::peer::PeerId;
use crate::rib::task::{OutQueue, RibCmd};
use crate::rib::{Encoded, RibInput, RouteAttrs};
use crate::wire::notification::codes;
use crate::wire::{
    header, Action, DecodeCtx, EncodeCtx, Message, MpNextHop, MpUnreach, NotificationMsg, UpdateMsg,
};

/// Items queued towards the writer task. Route batches are only taken from the RIB
/// while at least `WRITE_ROOM` places are free, so control messages always fit.
const WRITE_QUEUE: usize = 32;
const WRITE_ROOM: usize = 4;
/// A peer that does not take a write within this time is considered dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the writer task sends.
enum WriteItem {
    /// One message of this connection (OPEN, KEEPALIVE, NOTIFICATION, ...).
    Message(Bytes),
    /// A batch the RIB encoded once for an update group: the pieces for `peer`,
    /// whose bytes are taken off `queue` once written.
    Shared {
        batch: Arc<Encoded>,
        peer: PeerId,
        queue: Arc<OutQueue>,
    },
}

pub(super) enum ConnEvent<B> {
    Frame(Bytes),
    /// The header was bad: send this NOTIFICATION and close.
    BadHeader(NotificationMsg),
    Failed(String),
    Tick,
    Out(B),
    Accepted(TcpStream),
    /// Our connect attempt, still under way when the peer's connection came, made it.
    Connected(TcpStream),
    Shutdown(u8),
}

pub(super) struct Conn {
    pub fsm: Fsm,
    /// We opened this connection.
    pub outgoing: bool,
    reader: OwnedReadHalf,
    rbuf: BytesMut,
    writer: Option<mpsc::Sender<WriteItem>>,
    dctx: DecodeCtx,
    ectx: EncodeCtx,
    /// The session's status, for counting every message this connection sends.
    status: watch::Sender<super::NeighborStatus>,
}

impl Conn {
    /// Takes the stream, starts its writer and sends our OPEN.
    pub fn new(
        stream: TcpStream,
        outgoing: bool,
        cfg: &FsmConfig,
        status: &watch::Sender<super::NeighborStatus>,
    ) -> Conn {
        let _ = stream.set_nodelay(true);
        let (reader, mut write_half) = stream.into_split();
        let (tx, rx) = mpsc::channel::<WriteItem>(WRITE_QUEUE);
        tokio::spawn(async move {
            if write_all_items(rx, &mut write_half).await {
                let _ = write_half.shutdown().await;
            }
        });
        let ibgp = cfg.remote_asn == Some(cfg.local_asn);
        let (fsm, outputs) = Fsm::start(cfg.clone(), Instant::now());
        let mut c = Conn {
            fsm,
            outgoing,
            reader,
            rbuf: BytesMut::with_capacity(8192),
            writer: Some(tx),
            dctx: DecodeCtx { as4: false, ibgp },
            ectx: EncodeCtx { as4: false },
            status: status.clone(),
        };
        for o in outputs {
            if let Output::Send(m) = o {
                c.send(&m, Instant::now());
            }
        }
        c
    }

    /// Reads until a whole message is buffered. Cancel-safe: bytes read stay in `rbuf`.
    pub async fn next_event<B>(&mut self) -> ConnEvent<B> {
        loop {
            match header::frame_len(&self.rbuf) {
                Err(n) => return ConnEvent::BadHeader(n),
                Ok(Some(len)) if self.rbuf.len() >= len => {
                    return ConnEvent::Frame(self.rbuf.split_to(len).freeze());
                }
                Ok(_) => {}
            }
            match self.reader.read_buf(&mut self.rbuf).await {
                Ok(0) => return ConnEvent::Failed("peer closed the connection".into()),
                Ok(_) => {}
                Err(e) => return ConnEvent::Failed(format!("read: {e}")),
            }
        }
    }

    /// Decodes one message and feeds it to the FSM.
    pub fn on_frame(&mut self, frame: &[u8], now: Instant) -> Vec<Output> {
        let decoded = match Message::decode(frame, &self.dctx) {
            Ok(d) => d,
            Err(n) => return self.fsm.close(Some(n), "malformed message"),
        };
        let verdict = decoded.verdict();
        for e in &decoded.errors {
            tracing::warn!(
                attr = e.code,
                flags = e.flags,
                offset = e.offset,
                kind = ?e.kind,
                action = ?e.action,
                "malformed attribute (RFC 7606)"
            );
        }
        let msg = match (decoded.value, verdict) {
            (Message::Update(u), Some(a)) if a >= Action::TreatAsWithdraw => {
                Message::Update(treat_as_withdraw(u, &self.fsm.config().families))
            }
            (m, _) => m,
        };
        self.fsm.handle(msg, now)
    }

    /// The connection failed underneath the FSM.
    pub fn fail(&mut self, reason: String) -> Vec<Output> {
        self.fsm.close(None, &reason)
    }

    /// Decoding and encoding follow what the OPEN exchange agreed.
    pub fn on_established(&mut self, n: &super::fsm::Negotiated) {
        self.dctx.as4 = n.as4;
        self.ectx.as4 = n.as4;
        self.dctx.ibgp = n.remote_asn == self.fsm.config().local_asn;
    }

    pub fn writer_has_room(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|w| w.capacity() >= WRITE_ROOM)
    }

    pub fn send(&mut self, msg: &Message, now: Instant) {
        let bytes = msg.to_bytes(&self.ectx);
        if let Some(w) = &self.writer {
            // Full only if the peer stopped reading; a dropped KEEPALIVE then does not
            // matter (the write timeout ends the connection).
            if w.try_send(WriteItem::Message(bytes)).is_ok() {
                self.status.send_modify(|s| s.messages_sent += 1);
            }
        }
        self.fsm.sent_message(now);
    }

    /// Queues the pieces of a RIB batch meant for `peer`; returns how many UPDATEs.
    pub fn send_shared(
        &mut self,
        batch: Arc<Encoded>,
        peer: PeerId,
        queue: &Arc<OutQueue>,
        now: Instant,
    ) -> u64 {
        let n: u64 = batch.for_peer(peer).map(|p| u64::from(p.messages)).sum();
        if let Some(w) = &self.writer {
            let item = WriteItem::Shared {
                batch,
                peer,
                queue: queue.clone(),
            };
            // `writer_has_room` was checked before the batch was taken.
            if w.try_send(item).is_ok() {
                self.status.send_modify(|s| s.messages_sent += n);
            }
        }
        self.fsm.sent_message(now);
        n
    }

    /// Sends the NOTIFICATION (if any) and closes; the writer flushes what is queued.
    pub fn close(&mut self, notify: Option<&NotificationMsg>, _reason: &str) {
        if let Some(n) = notify {
            let bytes = Message::Notification(n.clone()).to_bytes(&self.ectx);
            if let Some(w) = &self.writer {
                if w.try_send(WriteItem::Message(bytes)).is_ok() {
                    self.status.send_modify(|s| s.messages_sent += 1);
                }
            }
        }
        self.writer = None;
    }

    /// RFC 4271 §6.8: the loser of a collision gets Cease / Connection Collision
    /// Resolution.
    /// This connection as collision resolution sees it.
    pub fn collision_view(&self) -> super::collision::Conn {
        use super::collision::Stage;
        let stage = match self.fsm.state() {
            super::fsm::State::OpenSent | super::fsm::State::Closed => Stage::OpenSent,
            super::fsm::State::OpenConfirm => Stage::OpenConfirm,
            super::fsm::State::Established => Stage::Established,
        };
        super::collision::Conn {
            outgoing: self.outgoing,
            stage,
        }
    }

    pub fn reject_collision(&mut self) {
        let n = NotificationMsg::new(
            codes::CEASE,
            codes::cease::CONNECTION_COLLISION_RESOLUTION,
            Vec::new(),
        );
        self.fsm.close(Some(n.clone()), "connection collision");
        self.close(Some(&n), "connection collision");
    }
}

/// Writes what is queued, many messages per system call: the shared pieces are
/// written in place (vectored writes), never copied per peer. False if the socket
/// failed (nothing more to do with it).
async fn write_all_items(
    mut rx: mpsc::Receiver<WriteItem>,
    out: &mut tokio::net::tcp::OwnedWriteHalf,
) -> bool {
    let mut items = Vec::with_capacity(WRITE_QUEUE);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut written: Vec<(Arc<OutQueue>, usize)> = Vec::new();
    while rx.recv_many(&mut items, WRITE_QUEUE).await > 0 {
        for item in items.drain(..) {
            match item {
                WriteItem::Message(b) => chunks.push(b),
                WriteItem::Shared { batch, peer, queue } => {
                    let mut n = 0;
                    for p in batch.for_peer(peer) {
                        chunks.push(p.bytes.clone());
                        n += p.bytes.len();
                    }
                    written.push((queue, n));
                }
            }
        }
        let ok = tokio::time::timeout(WRITE_TIMEOUT, write_chunks(out, &mut chunks)).await;
        chunks.clear();
        match ok {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                return false;
            }
            Err(_) => {
                tracing::warn!("peer does not read: write timed out");
                return false;
            }
        }
        for (q, n) in written.drain(..) {
            q.written(n);
        }
    }
    true
}

/// Writes every chunk, up to `IOV_MAX` slices per call.
async fn write_chunks(
    out: &mut tokio::net::tcp::OwnedWriteHalf,
    chunks: &mut [Bytes],
) -> std::io::Result<()> {
    const SLICES: usize = 256;
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks
            .iter()
            .skip(first)
            .take(SLICES)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut n = out.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        // Drop what was written: whole chunks, then the front of a partial one.
        while let Some(c) = chunks.get_mut(first) {
            if n >= c.len() {
                n -= c.len();
                first += 1;
            } else {
                bytes::Buf::advance(c, n);
                break;
            }
        }
    }
    Ok(())
}

/// RFC 7606 §2 treat-as-withdraw: every NLRI the UPDATE reaches becomes withdrawn.
/// The UPDATE carries at most one MP_REACH and one MP_UNREACH, maybe of two families:
/// what stays is the withdrawal of `ours` (the families of the session), so routes of
/// ours announced in MP_REACH are withdrawn even when the MP_UNREACH beside them is of
/// another family.
fn treat_as_withdraw(mut u: UpdateMsg, ours: &[(u16, u8)]) -> UpdateMsg {
    if let Some(reach) = u.mp_reach.take() {
        let family = (reach.afi, reach.safi);
        let mut nlri = BytesMut::new();
        match u.mp_unreach.take() {
            Some(un) if (un.afi, un.safi) == family => {
                // EVPN and other MP NLRI are self-delimiting: the blocks concatenate.
                nlri.extend_from_slice(&un.nlri);
            }
            // The withdrawal of another family than ours goes; ours is made below.
            Some(un) if ours.contains(&family) && !ours.contains(&(un.afi, un.safi)) => {}
            other => u.mp_unreach = other,
        }
        if u.mp_unreach.is_none() {
            nlri.extend_from_slice(&reach.nlri);
            u.mp_unreach = Some(MpUnreach {
                afi: reach.afi,
                safi: reach.safi,
                nlri: nlri.freeze(),
            });
        }
    }
    u.nlri = Bytes::new();
    u
}

/// The RIB inputs carried by one UPDATE of our family. An NLRI block that cannot be
/// decoded cannot be withdrawn route by route: RFC 7606 §5.3 resets the session.
pub(super) fn routes_of<A: AddressFamily>(
    peer: crate::peer::PeerId,
    u: UpdateMsg,
) -> Result<Vec<RibCmd<A>>, NotificationMsg> {
    let mut cmds = Vec::new();
    let bad_nlri = |e: crate::af::NlriError| {
        tracing::warn!(error = %e, "undecodable NLRI: session reset (RFC 7606 §5.3)");
        NotificationMsg::new(
            codes::UPDATE_MESSAGE_ERROR,
            codes::update::OPTIONAL_ATTRIBUTE_ERROR,
            Vec::new(),
        )
    };
    if let Some(un) = &u.mp_unreach {
        if (un.afi, un.safi) == (A::AFI, A::SAFI) {
            let nlri = A::decode_nlri(&un.nlri).map_err(bad_nlri)?;
            if nlri.is_empty() {
                tracing::debug!("End-of-RIB received");
            } else {
                cmds.push(RibCmd::Input(RibInput::Withdraw { peer, nlri }));
            }
        }
    }
    if let Some(reach) = u.mp_reach {
        if (reach.afi, reach.safi) == (A::AFI, A::SAFI) {
            let nlri = A::decode_nlri(&reach.nlri).map_err(bad_nlri)?;
            let next_hop = match reach.next_hop {
                MpNextHop::V4(a) => IpAddr::V4(a),
                MpNextHop::V6(a) | MpNextHop::V6LinkLocal(a, _) => IpAddr::V6(a),
            };
            if !nlri.is_empty() {
                let attrs = RouteAttrs {
                    attrs: u.attrs,
                    next_hop,
                };
                cmds.push(RibCmd::Input(RibInput::Update {
                    peer,
                    attrs,
                    reach: nlri,
                }));
            }
        }
    }
    if !u.nlri.is_empty() || !u.withdrawn.is_empty() {
        tracing::debug!("IPv4 unicast routes ignored: vxbgp carries L2VPN EVPN only");
    }
    Ok(cmds)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::wire::{MpReach, PathAttrs};

    const EVPN: (u16, u8) = (25, 70);

    fn update(reach: Option<((u16, u8), &[u8])>, unreach: Option<((u16, u8), &[u8])>) -> UpdateMsg {
        UpdateMsg {
            withdrawn: Bytes::new(),
            attrs: PathAttrs::default(),
            mp_reach: reach.map(|((afi, safi), n)| MpReach {
                afi,
                safi,
                next_hop: MpNextHop::V4(std::net::Ipv4Addr::new(198, 19, 0, 1)),
                nlri: Bytes::copy_from_slice(n),
            }),
            mp_unreach: unreach.map(|((afi, safi), n)| MpUnreach {
                afi,
                safi,
                nlri: Bytes::copy_from_slice(n),
            }),
            nlri: Bytes::new(),
        }
    }

    fn withdrawn(u: &UpdateMsg) -> Option<((u16, u8), Vec<u8>)> {
        assert!(u.mp_reach.is_none(), "nothing stays announced");
        u.mp_unreach
            .as_ref()
            .map(|w| ((w.afi, w.safi), w.nlri.to_vec()))
    }

    #[test]
    fn treat_as_withdraw_withdraws_what_was_announced_and_withdrawn() {
        let u = treat_as_withdraw(update(Some((EVPN, &[1])), Some((EVPN, &[2]))), &[EVPN]);
        assert_eq!(withdrawn(&u), Some((EVPN, vec![2, 1])));
        let u = treat_as_withdraw(update(Some((EVPN, &[1])), None), &[EVPN]);
        assert_eq!(withdrawn(&u), Some((EVPN, vec![1])));
    }

    /// RFC 7606 §2 with two families in one UPDATE: ours is withdrawn whichever of
    /// MP_REACH and MP_UNREACH carries it.
    #[test]
    fn treat_as_withdraw_keeps_our_family_beside_another() {
        const V4: (u16, u8) = (1, 1);
        // Our routes announced beside another family's withdrawal: ours go.
        let u = treat_as_withdraw(
            update(Some((EVPN, &[1])), Some((V4, &[24, 198, 18, 0]))),
            &[EVPN],
        );
        assert_eq!(withdrawn(&u), Some((EVPN, vec![1])));
        // Our withdrawal beside another family's (erroneous) announcement: it stays.
        let u = treat_as_withdraw(
            update(Some((V4, &[24, 198, 18, 0])), Some((EVPN, &[2]))),
            &[EVPN],
        );
        assert_eq!(withdrawn(&u), Some((EVPN, vec![2])));
    }
}
