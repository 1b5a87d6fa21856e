//! One TCP connection of a session, as I/O only: framing on the read side, a writer
//! task on the other. What the bytes mean is the session machine's business.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::peer::PeerId;
use crate::rib::task::OutQueue;
use crate::rib::Encoded;
use crate::wire::{header, EncodeCtx, Message, NotificationMsg};

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

/// What reading a connection gives.
pub(super) enum Read {
    /// One whole message, header included.
    Frame(Bytes),
    /// The header was bad: send this NOTIFICATION and close.
    BadHeader(NotificationMsg),
    Failed(String),
}

pub(super) struct Conn {
    reader: OwnedReadHalf,
    rbuf: BytesMut,
    writer: Option<mpsc::Sender<WriteItem>>,
    ectx: EncodeCtx,
    /// The session's status, for counting every message this connection sends.
    status: watch::Sender<super::NeighborStatus>,
}

impl Conn {
    /// Takes the stream and starts its writer.
    pub fn new(stream: TcpStream, status: &watch::Sender<super::NeighborStatus>) -> Conn {
        let _ = stream.set_nodelay(true);
        let (reader, mut write_half) = stream.into_split();
        let (tx, rx) = mpsc::channel::<WriteItem>(WRITE_QUEUE);
        tokio::spawn(async move {
            if write_all_items(rx, &mut write_half).await {
                let _ = write_half.shutdown().await;
            }
        });
        Conn {
            reader,
            rbuf: BytesMut::with_capacity(8192),
            writer: Some(tx),
            ectx: EncodeCtx { as4: false },
            status: status.clone(),
        }
    }

    /// Reads until a whole message is buffered. Cancel-safe: bytes read stay in `rbuf`.
    pub async fn next_frame(&mut self) -> Read {
        loop {
            match header::frame_len(&self.rbuf) {
                Err(n) => return Read::BadHeader(n),
                Ok(Some(len)) if self.rbuf.len() >= len => {
                    return Read::Frame(self.rbuf.split_to(len).freeze());
                }
                Ok(_) => {}
            }
            match self.reader.read_buf(&mut self.rbuf).await {
                Ok(0) => return Read::Failed("peer closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Read::Failed(format!("read: {e}")),
            }
        }
    }

    /// Encoding follows what the OPEN exchange agreed.
    pub fn set_as4(&mut self, as4: bool) {
        self.ectx.as4 = as4;
    }

    pub fn writer_has_room(&self) -> bool {
        self.writer
            .as_ref()
            .is_some_and(|w| w.capacity() >= WRITE_ROOM)
    }

    pub fn send(&mut self, msg: &Message) {
        let bytes = msg.to_bytes(&self.ectx);
        if let Some(w) = &self.writer {
            // Full only if the peer stopped reading; a dropped KEEPALIVE then does not
            // matter (the write timeout ends the connection).
            if w.try_send(WriteItem::Message(bytes)).is_ok() {
                self.status.send_modify(|s| s.messages_sent += 1);
            }
        }
    }

    /// Queues the pieces of a RIB batch meant for `peer`; returns how many UPDATEs.
    pub fn send_shared(&mut self, batch: Arc<Encoded>, peer: PeerId, queue: &Arc<OutQueue>) -> u64 {
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
        n
    }

    /// Sends the NOTIFICATION (if any) and closes; the writer flushes what is queued.
    pub fn close(mut self, notify: Option<&NotificationMsg>) {
        if let Some(n) = notify {
            self.send(&Message::Notification(n.clone()));
        }
        self.writer = None;
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
