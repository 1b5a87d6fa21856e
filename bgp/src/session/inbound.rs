//! What arrives on a connection, made into what the RIB takes: one frame decoded
//! (RFC 7606 verdicts applied), one UPDATE of our family turned into RIB inputs.
//! Pure functions, no I/O.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};

use crate::af::AddressFamily;
use crate::peer::PeerId;
use crate::rib::{RibInput, RouteAttrs};
use crate::wire::notification::codes;
use crate::wire::{Action, DecodeCtx, Message, MpNextHop, MpUnreach, NotificationMsg, UpdateMsg};

/// Decodes one whole message. Attribute errors are logged; an UPDATE whose verdict is
/// treat-as-withdraw (or worse, short of a reset) comes back as the withdrawal of all
/// it reaches. `Err`: the NOTIFICATION that ends the connection.
pub(super) fn decode_frame(
    frame: &[u8],
    ctx: &DecodeCtx,
    families: &[(u16, u8)],
) -> Result<Message, NotificationMsg> {
    let decoded = Message::decode(frame, ctx)?;
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
    Ok(match (decoded.value, verdict) {
        (Message::Update(u), Some(a)) if a >= Action::TreatAsWithdraw => {
            Message::Update(treat_as_withdraw(u, families))
        }
        (m, _) => m,
    })
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
    peer: PeerId,
    u: UpdateMsg,
) -> Result<Vec<RibInput<A>>, NotificationMsg> {
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
                cmds.push(RibInput::Withdraw { peer, nlri });
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
                cmds.push(RibInput::Update {
                    peer,
                    attrs,
                    reach: nlri,
                });
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
