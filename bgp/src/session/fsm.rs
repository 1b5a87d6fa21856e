//! The RFC 4271 §8 state machine of one BGP connection, from OpenSent on, as a pure
//! value: `handle(input, now)` and `poll(now)` return what to do, time is an argument,
//! timers are deadlines. The driver (`session/mod.rs`) owns the socket and the Idle /
//! Connect / Active part (connect retry with back-off).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::notification::codes;
use crate::wire::{Capability, Message, NotificationMsg, OpenMsg};

/// RFC 4271 §8.2.2: the hold timer while waiting for OPEN ("a large value", 4 minutes).
pub const OPEN_HOLD: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum State {
    OpenSent,
    OpenConfirm,
    Established,
    Closed,
}

/// What this side proposes and accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsmConfig {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    /// Hold time we propose (0 or >= 3, RFC 4271 §4.2).
    pub hold_time: u16,
    /// The AS the peer must have; `None` accepts any (a listen range of eBGP peers).
    pub remote_asn: Option<u32>,
    /// Address families we carry, as (AFI, SAFI).
    pub families: Vec<(u16, u8)>,
}

/// What both sides agreed on in the OPEN exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_asn: u32,
    pub remote_id: Ipv4Addr,
    pub hold_time: u16,
    pub as4: bool,
    pub route_refresh: bool,
    pub families: Vec<(u16, u8)>,
    pub peer_open: OpenMsg,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send(Message),
    /// OpenConfirm → Established.
    Established(Negotiated),
    /// The peer's OPEN was accepted (OpenSent → OpenConfirm); the driver resolves
    /// connection collisions now that the peer's BGP identifier is known.
    OpenReceived {
        remote_id: Ipv4Addr,
        remote_asn: u32,
    },
    /// An UPDATE in Established, for the driver to decode into routes.
    Update(crate::wire::UpdateMsg),
    /// The peer asked for our routes again (RFC 2918).
    RouteRefresh {
        afi: u16,
        safi: u8,
    },
    /// The connection ends; `notify` is sent first if present.
    Close {
        notify: Option<NotificationMsg>,
        reason: String,
    },
}

#[derive(Debug)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    keepalive_every: Option<Duration>,
    negotiated: Option<Negotiated>,
}

impl Fsm {
    /// A new connection: sends our OPEN and enters OpenSent.
    pub fn start(cfg: FsmConfig, now: Instant) -> (Fsm, Vec<Output>) {
        let open = Self::our_open(&cfg);
        let fsm = Fsm {
            cfg,
            state: State::OpenSent,
            hold: Some(now + OPEN_HOLD),
            keepalive: None,
            keepalive_every: None,
            negotiated: None,
        };
        (fsm, vec![Output::Send(Message::Open(open))])
    }

    fn our_open(cfg: &FsmConfig) -> OpenMsg {
        let mut caps: Vec<Capability> = cfg
            .families
            .iter()
            .map(|&(afi, safi)| Capability::MultiProtocol { afi, safi })
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(cfg.local_asn));
        OpenMsg::new(cfg.local_asn, cfg.hold_time, cfg.router_id, caps)
    }

    pub fn config(&self) -> &FsmConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The earliest deadline; the driver sleeps until then and calls `poll`.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.hold, self.keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the timers that are due.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::Closed {
            return out;
        }
        if self.hold.is_some_and(|h| now >= h) {
            return self.close(
                Some(NotificationMsg::new(
                    codes::HOLD_TIMER_EXPIRED,
                    0,
                    Vec::new(),
                )),
                "hold timer expired",
            );
        }
        if let (Some(k), Some(every)) = (self.keepalive, self.keepalive_every) {
            if now >= k {
                out.push(Output::Send(Message::Keepalive));
                self.keepalive = Some(now + every);
            }
        }
        out
    }

    /// The driver calls this after sending anything: a sent UPDATE counts as a
    /// KEEPALIVE (RFC 4271 §4.4), so the next one can wait.
    pub fn sent_message(&mut self, now: Instant) {
        if let (Some(_), Some(every)) = (self.keepalive, self.keepalive_every) {
            self.keepalive = Some(now + every);
        }
    }

    /// A message arrived on this connection.
    pub fn handle(&mut self, msg: Message, now: Instant) -> Vec<Output> {
        if self.state == State::Closed {
            return Vec::new();
        }
        if let Message::Notification(n) = msg {
            self.state = State::Closed;
            return vec![Output::Close {
                notify: None,
                reason: format!("peer sent NOTIFICATION: {n}"),
            }];
        }
        match (self.state, msg) {
            (State::OpenSent, Message::Open(open)) => self.on_open(open, now),
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now);
                self.state = State::Established;
                match self.negotiated.clone() {
                    Some(n) => vec![Output::Established(n)],
                    None => self.close(None, "internal: no negotiated parameters"),
                }
            }
            (State::Established, Message::Keepalive) => {
                self.restart_hold(now);
                Vec::new()
            }
            (State::Established, Message::Update(u)) => {
                self.restart_hold(now);
                vec![Output::Update(u)]
            }
            (State::Established, Message::RouteRefresh(r)) => {
                self.restart_hold(now);
                let rr_ok = self.negotiated.as_ref().is_some_and(|n| n.route_refresh);
                if !rr_ok {
                    // RFC 2918 §4: must not be sent unless advertised; RFC 7313 §5.
                    return self.close(
                        Some(NotificationMsg::new(
                            codes::ROUTE_REFRESH_MESSAGE_ERROR,
                            1,
                            Vec::new(),
                        )),
                        "ROUTE-REFRESH without the capability",
                    );
                }
                vec![Output::RouteRefresh {
                    afi: r.afi,
                    safi: r.safi,
                }]
            }
            (state, msg) => {
                // RFC 6608: the FSM error subcode says in which state it happened.
                let sub = match state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    _ => 3,
                };
                let what = match msg {
                    Message::Open(_) => "OPEN",
                    Message::Update(_) => "UPDATE",
                    Message::Keepalive => "KEEPALIVE",
                    Message::RouteRefresh(_) => "ROUTE-REFRESH",
                    Message::Notification(_) => "NOTIFICATION",
                };
                self.close(
                    Some(NotificationMsg::new(codes::FSM_ERROR, sub, Vec::new())),
                    &format!("unexpected {what} in {state:?}"),
                )
            }
        }
    }

    /// The connection must end (collision loser, shutdown, decode error).
    pub fn close(&mut self, notify: Option<NotificationMsg>, reason: &str) -> Vec<Output> {
        self.state = State::Closed;
        self.hold = None;
        self.keepalive = None;
        vec![Output::Close {
            notify,
            reason: reason.to_string(),
        }]
    }

    fn restart_hold(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated {
            if n.hold_time > 0 {
                self.hold = Some(now + Duration::from_secs(n.hold_time.into()));
            }
        }
    }

    fn on_open(&mut self, open: OpenMsg, now: Instant) -> Vec<Output> {
        if let Some(why) = as_contradiction(&open) {
            return self.close(
                Some(NotificationMsg::new(
                    codes::OPEN_MESSAGE_ERROR,
                    codes::open::BAD_PEER_AS,
                    open.my_as.to_be_bytes().to_vec(),
                )),
                &why,
            );
        }
        let asn = open.asn();
        if let Some(want) = self.cfg.remote_asn {
            if asn != want {
                return self.close(
                    Some(NotificationMsg::new(
                        codes::OPEN_MESSAGE_ERROR,
                        codes::open::BAD_PEER_AS,
                        open.my_as.to_be_bytes().to_vec(),
                    )),
                    &format!("peer is AS {asn}, expected AS {want}"),
                );
            }
        }
        // RFC 6286 §2.1: within one AS the identifiers must differ.
        if asn == self.cfg.local_asn && open.bgp_id == self.cfg.router_id {
            return self.close(
                Some(NotificationMsg::new(
                    codes::OPEN_MESSAGE_ERROR,
                    codes::open::BAD_BGP_IDENTIFIER,
                    open.bgp_id.octets().to_vec(),
                )),
                "peer has our BGP identifier",
            );
        }
        let theirs = open.multiprotocol();
        let families: Vec<(u16, u8)> = self
            .cfg
            .families
            .iter()
            .copied()
            .filter(|f| theirs.contains(f))
            .collect();
        if families.is_empty() && !self.cfg.families.is_empty() {
            let mut data = Vec::new();
            for &(afi, safi) in &self.cfg.families {
                // Capability 1, length 4: AFI, reserved, SAFI (RFC 5492 §3).
                data.extend_from_slice(&[1, 4]);
                data.extend_from_slice(&afi.to_be_bytes());
                data.extend_from_slice(&[0, safi]);
            }
            return self.close(
                Some(NotificationMsg::new(
                    codes::OPEN_MESSAGE_ERROR,
                    codes::open::UNSUPPORTED_CAPABILITY,
                    data,
                )),
                "peer does not carry any of our address families",
            );
        }
        // RFC 4271 §4.2: the smaller hold time; keepalives at a third of it.
        let hold_time = self.cfg.hold_time.min(open.hold_time);
        let neg = Negotiated {
            remote_asn: asn,
            remote_id: open.bgp_id,
            hold_time,
            as4: open.four_octet_as().is_some(),
            route_refresh: open.route_refresh(),
            families,
            peer_open: open,
        };
        let (remote_id, remote_asn) = (neg.remote_id, neg.remote_asn);
        self.negotiated = Some(neg);
        self.state = State::OpenConfirm;
        if hold_time > 0 {
            let every = Duration::from_secs(u64::from(hold_time) / 3).max(Duration::from_secs(1));
            self.keepalive_every = Some(every);
            self.keepalive = Some(now + every);
            self.hold = Some(now + Duration::from_secs(hold_time.into()));
        } else {
            self.hold = None;
        }
        vec![
            Output::OpenReceived {
                remote_id,
                remote_asn,
            },
            Output::Send(Message::Keepalive),
        ]
    }
}

/// What is wrong with the AS numbers of an OPEN, if anything: AS 0 in My AS or in the
/// four-octet AS capability (RFC 7607 §2), or a capability that contradicts My AS —
/// My AS must be the AS itself when it fits two octets and AS_TRANS otherwise (RFC
/// 6793 §4.1). All are Bad Peer AS.
fn as_contradiction(open: &OpenMsg) -> Option<String> {
    if open.my_as == 0 {
        return Some("peer's OPEN says AS 0 (RFC 7607)".into());
    }
    let as4 = open.four_octet_as()?;
    let expected = u16::try_from(as4).unwrap_or(crate::wire::open::AS_TRANS);
    if as4 == 0 {
        Some("peer's four-octet AS capability says AS 0 (RFC 7607)".into())
    } else if open.my_as != expected {
        Some(format!(
            "peer's OPEN says My AS {} but four-octet AS {as4} (RFC 6793)",
            open.my_as
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
