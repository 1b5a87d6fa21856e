//! One session as a pure state machine: the (at most two, RFC 4271 §6.8) connections
//! to a peer, the FSM of each, collision resolution, and what the RIB must be told.
//! Events in, actions out: no sockets, no channels, time is an argument. The task in
//! `session/mod.rs` owns the sockets and does what the actions say, in their order.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use super::collision;
use super::fsm::{Fsm, Negotiated, Output, State};
use super::inbound;
use super::SessionConfig;
use crate::af::AddressFamily;
use crate::peer::PeerInfo;
use crate::rib::RibInput;
use crate::wire::notification::codes;
use crate::wire::{DecodeCtx, Message, NotificationMsg};

/// A connection's place: 0 or 1.
pub type ConnId = usize;

/// What happened to the session.
#[derive(Debug)]
pub enum Event<'a> {
    /// A TCP connection to the peer is up; `outgoing`: we opened it.
    Connected { outgoing: bool },
    /// One whole message (header included) arrived on a connection.
    Frame { conn: ConnId, bytes: &'a [u8] },
    /// The next message's header is bad (RFC 4271 §6.1): send this and close.
    BadHeader {
        conn: ConnId,
        notify: NotificationMsg,
    },
    /// The connection failed or the peer closed it.
    Failed { conn: ConnId, reason: String },
    /// Time passed: the timers that are due fire.
    Tick,
    /// The RIB found more prefixes from the peer than it may send (RFC 4486).
    OverLimit(usize),
    /// Leave: Cease with this subcode on every connection.
    Stop { subcode: u8 },
}

/// What the task must do, in this order.
#[derive(Debug)]
pub enum Action<A: AddressFamily> {
    /// Put the connection just reported `Connected` in this place.
    Adopt { conn: ConnId },
    /// Refuse the connection just reported `Connected`: send this and close it.
    Refuse { notify: NotificationMsg },
    Send {
        conn: ConnId,
        /// Boxed: an OPEN or UPDATE is large beside the other actions.
        msg: Box<Message>,
    },
    /// Send `notify` (if any) and close the connection.
    Close {
        conn: ConnId,
        notify: Option<NotificationMsg>,
        reason: String,
    },
    /// The connection reached Established: encode as negotiated from now on.
    Established {
        conn: ConnId,
        negotiated: Negotiated,
    },
    /// Tell the RIB the peer is up (after `PeerDown`, if a connection replaced one).
    PeerUp(PeerInfo),
    /// The routes of one UPDATE, for the RIB in arrival order.
    Update(Vec<RibInput<A>>),
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh,
    /// The peer's routes go: what is queued for the RIB from it is stale.
    PeerDown,
    /// What `show neighbors` says from now on.
    State(&'static str),
}

/// One connection as the machine sees it.
#[derive(Debug)]
struct Link {
    fsm: Fsm,
    outgoing: bool,
    dctx: DecodeCtx,
}

impl Link {
    fn collision_view(&self) -> collision::Conn {
        use collision::Stage;
        let stage = match self.fsm.state() {
            State::OpenSent | State::Closed => Stage::OpenSent,
            State::OpenConfirm => Stage::OpenConfirm,
            State::Established => Stage::Established,
        };
        collision::Conn {
            outgoing: self.outgoing,
            stage,
        }
    }
}

#[derive(Debug)]
pub struct SessionMachine<A: AddressFamily> {
    cfg: SessionConfig,
    links: [Option<Link>; 2],
    established: Option<ConnId>,
    /// The peer's (BGP identifier, AS) from the first OPEN it sent.
    remote: Option<(Ipv4Addr, u32)>,
    /// The RIB was told PeerUp and not PeerDown since.
    announced: bool,
    _af: std::marker::PhantomData<A>,
}

impl<A: AddressFamily> SessionMachine<A> {
    pub fn new(cfg: SessionConfig) -> Self {
        SessionMachine {
            cfg,
            links: [None, None],
            established: None,
            remote: None,
            announced: false,
            _af: std::marker::PhantomData,
        }
    }

    /// No connection is left: the session is over (until the next connect).
    pub fn is_done(&self) -> bool {
        self.links.iter().all(Option::is_none)
    }

    pub fn has(&self, conn: ConnId) -> bool {
        self.links.get(conn).is_some_and(Option::is_some)
    }

    /// The connection routes go out on.
    pub fn established(&self) -> Option<ConnId> {
        self.established
    }

    /// When to come back with `Event::Tick`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .iter()
            .flatten()
            .filter_map(|l| l.fsm.next_deadline())
            .min()
    }

    /// The task sent routes on `conn`: they count as a KEEPALIVE (RFC 4271 §4.4).
    pub fn sent(&mut self, conn: ConnId, now: Instant) {
        if let Some(l) = self.link(conn) {
            l.fsm.sent_message(now);
        }
    }

    pub fn handle(&mut self, ev: Event<'_>, now: Instant) -> Vec<Action<A>> {
        let mut acts = Vec::new();
        let mut work: VecDeque<(ConnId, Output)> = VecDeque::new();
        match ev {
            Event::Connected { outgoing } => self.connected(outgoing, now, &mut acts, &mut work),
            Event::Frame { conn, bytes } => {
                if let Some(l) = self.link(conn) {
                    let out = match inbound::decode_frame(bytes, &l.dctx, &l.fsm.config().families)
                    {
                        Ok(msg) => l.fsm.handle(msg, now),
                        Err(n) => l.fsm.close(Some(n), "malformed message"),
                    };
                    work.extend(out.into_iter().map(|o| (conn, o)));
                }
            }
            Event::BadHeader { conn, notify } => {
                if let Some(l) = self.link(conn) {
                    let out = l.fsm.close(Some(notify), "bad message header");
                    work.extend(out.into_iter().map(|o| (conn, o)));
                }
            }
            Event::Failed { conn, reason } => {
                if let Some(l) = self.link(conn) {
                    work.extend(l.fsm.close(None, &reason).into_iter().map(|o| (conn, o)));
                }
            }
            Event::Tick => {
                for (i, l) in self.links.iter_mut().enumerate() {
                    if let Some(l) = l {
                        work.extend(l.fsm.poll(now).into_iter().map(|o| (i, o)));
                    }
                }
            }
            Event::OverLimit(limit) => {
                if let Some(i) = self.established {
                    if let Some(l) = self.link(i) {
                        // RFC 4486 §4: AFI, SAFI and the upper bound.
                        let mut data = A::AFI.to_be_bytes().to_vec();
                        data.push(A::SAFI);
                        data.extend_from_slice(
                            &u32::try_from(limit).unwrap_or(u32::MAX).to_be_bytes(),
                        );
                        let n = NotificationMsg::new(
                            codes::CEASE,
                            codes::cease::MAXIMUM_PREFIXES_REACHED,
                            data,
                        );
                        let why = format!("more than {limit} prefixes");
                        work.extend(l.fsm.close(Some(n), &why).into_iter().map(|o| (i, o)));
                    }
                }
            }
            Event::Stop { subcode } => {
                for (i, l) in self.links.iter_mut().enumerate() {
                    if let Some(l) = l {
                        let n = NotificationMsg::new(codes::CEASE, subcode, Vec::new());
                        work.extend(l.fsm.close(Some(n), "shutdown").into_iter().map(|o| (i, o)));
                    }
                }
            }
        }
        while let Some((i, o)) = work.pop_front() {
            self.output(i, o, now, &mut acts, &mut work);
        }
        acts
    }

    fn link(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.links.get_mut(conn).and_then(Option::as_mut)
    }

    fn connected(
        &mut self,
        outgoing: bool,
        now: Instant,
        acts: &mut Vec<Action<A>>,
        work: &mut VecDeque<(ConnId, Output)>,
    ) {
        let free = self.links.iter().position(Option::is_none);
        let (None, Some(i)) = (self.established, free) else {
            // RFC 4271 §6.8: a collision with an Established connection is resolved
            // in favour of the Established one (and a third connection has no place).
            tracing::info!(
                outgoing,
                "connection collision: the Established connection stays"
            );
            acts.push(Action::Refuse {
                notify: collision_cease(),
            });
            return;
        };
        let first = self.is_done();
        let ibgp = self.cfg.fsm.remote_asn == Some(self.cfg.fsm.local_asn);
        let (fsm, out) = Fsm::start(self.cfg.fsm.clone(), now);
        if let Some(slot) = self.links.get_mut(i) {
            *slot = Some(Link {
                fsm,
                outgoing,
                dctx: DecodeCtx { as4: false, ibgp },
            });
        }
        acts.push(Action::Adopt { conn: i });
        work.extend(out.into_iter().map(|o| (i, o)));
        if first {
            acts.push(Action::State("OpenSent"));
        } else {
            tracing::info!(outgoing, "second connection to the peer: collision check");
            // The peer's identifier is known from the other connection's OPEN: decide
            // now (RFC 4271 §6.8 allows it), else on this one's OPEN.
            if self.remote.is_some() {
                self.resolve_collision(work);
            }
        }
    }

    fn output(
        &mut self,
        i: ConnId,
        o: Output,
        now: Instant,
        acts: &mut Vec<Action<A>>,
        work: &mut VecDeque<(ConnId, Output)>,
    ) {
        if !self.has(i) {
            return;
        }
        match o {
            Output::Send(msg) => {
                if let Some(l) = self.link(i) {
                    l.fsm.sent_message(now);
                    acts.push(Action::Send {
                        conn: i,
                        msg: Box::new(msg),
                    });
                }
            }
            Output::OpenReceived {
                remote_id,
                remote_asn,
            } => {
                self.remote = Some((remote_id, remote_asn));
                if self
                    .link(i)
                    .is_some_and(|l| l.fsm.state() == State::OpenConfirm)
                {
                    acts.push(Action::State("OpenConfirm"));
                }
                self.resolve_collision(work);
            }
            Output::Established(n) => {
                let ibgp = n.remote_asn == self.cfg.fsm.local_asn;
                let Some(l) = self.link(i) else { return };
                l.dctx.as4 = n.as4;
                l.dctx.ibgp = ibgp;
                self.established = Some(i);
                let info = PeerInfo {
                    id: self.cfg.id,
                    addr: self.cfg.addr,
                    asn: n.remote_asn,
                    bgp_id: n.remote_id,
                    kind: self.cfg.kind(n.remote_asn),
                    as4: n.as4,
                    max_prefixes: self.cfg.max_prefixes,
                };
                acts.push(Action::Established {
                    conn: i,
                    negotiated: n,
                });
                if self.announced {
                    // A connection that replaced one the RIB saw come up: the old
                    // one's routes go, and ours are sent again on this one.
                    acts.push(Action::PeerDown);
                }
                acts.push(Action::PeerUp(info));
                self.announced = true;
            }
            Output::Update(update) => match inbound::routes_of::<A>(self.cfg.id, update) {
                Ok(inputs) => acts.push(Action::Update(inputs)),
                Err(n) => {
                    if let Some(l) = self.link(i) {
                        let out = l.fsm.close(Some(n), "malformed UPDATE");
                        work.extend(out.into_iter().map(|o| (i, o)));
                    }
                }
            },
            Output::RouteRefresh { afi, safi } => {
                if (afi, safi) == (A::AFI, A::SAFI) {
                    acts.push(Action::RouteRefresh);
                }
            }
            Output::Close { notify, reason } => {
                if self.links.get_mut(i).and_then(Option::take).is_none() {
                    return;
                }
                acts.push(Action::Close {
                    conn: i,
                    notify,
                    reason,
                });
                if self.established == Some(i) {
                    self.session_down(acts, work);
                }
            }
        }
    }

    /// The Established connection is gone: everything that waited for it is stale
    /// (a second connection included), the RIB forgets the peer's routes, and
    /// nothing says Established.
    fn session_down(&mut self, acts: &mut Vec<Action<A>>, work: &mut VecDeque<(ConnId, Output)>) {
        self.established = None;
        for (i, slot) in self.links.iter_mut().enumerate() {
            if slot.take().is_some() {
                acts.push(Action::Close {
                    conn: i,
                    notify: None,
                    reason: "the session went down".into(),
                });
            }
        }
        // What the FSMs still had to say is about connections that are gone.
        work.clear();
        if self.announced {
            self.announced = false;
            acts.push(Action::PeerDown);
        }
        acts.push(Action::State("Idle"));
    }

    /// With two connections and the peer's identifier known, closes the one
    /// [`collision::loser`] names with Cease / Connection Collision Resolution.
    fn resolve_collision(&mut self, work: &mut VecDeque<(ConnId, Output)>) {
        let ([Some(a), Some(b)], Some((remote_id, remote_asn))) = (&self.links, self.remote) else {
            return;
        };
        let ids = collision::Ids {
            local_id: self.cfg.fsm.router_id,
            local_asn: self.cfg.fsm.local_asn,
            remote_id,
            remote_asn,
        };
        let loser = match collision::loser(ids, a.collision_view(), b.collision_view()) {
            collision::Which::First => 0,
            collision::Which::Second => 1,
        };
        if let Some(l) = self.link(loser) {
            let ours = if l.outgoing { "ours" } else { "theirs" };
            tracing::info!(closed = ours, "connection collision resolved");
            let out = l.fsm.close(Some(collision_cease()), "connection collision");
            work.extend(out.into_iter().map(|o| (loser, o)));
        }
    }
}

/// RFC 4271 §6.8: the loser of a collision gets Cease / Connection Collision Resolution.
pub fn collision_cease() -> NotificationMsg {
    NotificationMsg::new(
        codes::CEASE,
        codes::cease::CONNECTION_COLLISION_RESOLUTION,
        Vec::new(),
    )
}

#[cfg(test)]
mod tests;
