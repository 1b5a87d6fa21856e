//! Route changes to UPDATE messages: as many NLRI per UPDATE as fit (RFC 4271 §4.3,
//! 4096 bytes), the attributes of a piece encoded once per message.

use std::net::IpAddr;

use bytes::BytesMut;

use crate::af::AddressFamily;
use crate::rib::out::{Audience, Encoded, EncodedPiece, OutPiece};
use crate::wire::{
    update, EncodeCtx, Message, MpNextHop, MpReach, MpUnreach, UpdateMsg, HEADER_LEN,
    MAX_MESSAGE_LEN,
};

/// Withdrawn-routes length (2) + total path attribute length (2).
const UPDATE_FIXED: usize = 4;
/// MP_(UN)REACH attribute header with the extended length: flags, code, length (2).
const ATTR_HEADER: usize = 4;

fn mp_next_hop(ip: IpAddr) -> MpNextHop {
    match ip {
        IpAddr::V4(a) => MpNextHop::V4(a),
        IpAddr::V6(a) => MpNextHop::V6(a),
    }
}

/// Encodes `pieces` (and End-of-RIB after them, for everyone, if asked).
pub(crate) fn encode<A: AddressFamily>(
    pieces: Vec<OutPiece<A>>,
    end_of_rib: bool,
    ctx: &EncodeCtx,
) -> Encoded {
    let mut out = Encoded {
        pieces: Vec::with_capacity(pieces.len() + usize::from(end_of_rib)),
    };
    for p in pieces {
        if p.nlri.is_empty() {
            continue;
        }
        let mut buf = BytesMut::new();
        let messages = match &p.attrs {
            None => encode_withdraw::<A>(&p.nlri, ctx, &mut buf),
            Some(ra) => encode_reach::<A>(ra, &p.nlri, ctx, &mut buf),
        };
        out.pieces.push(EncodedPiece {
            audience: p.audience,
            bytes: buf.freeze(),
            messages,
            routes: p.nlri.len() as u32,
        });
    }
    if end_of_rib {
        let mut buf = BytesMut::new();
        Message::Update(update::end_of_rib(A::AFI, A::SAFI)).encode(ctx, &mut buf);
        out.pieces.push(EncodedPiece {
            audience: Audience::All,
            bytes: buf.freeze(),
            messages: 1,
            routes: 0,
        });
    }
    out
}

fn encode_withdraw<A: AddressFamily>(nlri: &[A::Nlri], ctx: &EncodeCtx, out: &mut BytesMut) -> u32 {
    // MP_UNREACH: AFI (2) + SAFI (1) before the NLRI.
    let room = MAX_MESSAGE_LEN - HEADER_LEN - UPDATE_FIXED - ATTR_HEADER - 3;
    let mut count = 0;
    for chunk in pack::<A>(nlri, room) {
        let u = UpdateMsg {
            mp_unreach: Some(MpUnreach {
                afi: A::AFI,
                safi: A::SAFI,
                nlri: chunk.freeze(),
            }),
            ..Default::default()
        };
        Message::Update(u).encode(ctx, out);
        count += 1;
    }
    count
}

fn encode_reach<A: AddressFamily>(
    ra: &crate::rib::RouteAttrs,
    nlri: &[A::Nlri],
    ctx: &EncodeCtx,
    out: &mut BytesMut,
) -> u32 {
    let next_hop = mp_next_hop(ra.next_hop);
    let nh_len = match next_hop {
        MpNextHop::V4(_) => 4,
        MpNextHop::V6(_) => 16,
        MpNextHop::V6LinkLocal(..) => 32,
    };
    // AFI (2) + SAFI (1) + next-hop length (1) + next hop + reserved (1).
    let mp_fixed = ATTR_HEADER + 5 + nh_len;
    let attrs_len = ra.attrs.encoded_len(ctx);
    let room = MAX_MESSAGE_LEN
        .saturating_sub(HEADER_LEN + UPDATE_FIXED + attrs_len + mp_fixed)
        .max(1);
    let mut count = 0;
    for chunk in pack::<A>(nlri, room) {
        let u = UpdateMsg {
            attrs: ra.attrs.clone(),
            mp_reach: Some(MpReach {
                afi: A::AFI,
                safi: A::SAFI,
                next_hop: next_hop.clone(),
                nlri: chunk.freeze(),
            }),
            ..Default::default()
        };
        Message::Update(u).encode(ctx, out);
        count += 1;
    }
    count
}

/// Splits NLRI into encoded blocks of at most `room` bytes (one NLRI always fits).
fn pack<A: AddressFamily>(nlri: &[A::Nlri], room: usize) -> Vec<BytesMut> {
    let mut blocks = Vec::new();
    let mut cur = BytesMut::new();
    for n in nlri {
        if !cur.is_empty() && cur.len() + A::nlri_len(n) > room {
            blocks.push(std::mem::take(&mut cur));
        }
        A::encode_nlri(n, &mut cur);
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}
