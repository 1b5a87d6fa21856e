//! UPDATE (RFC 4271 §4.3).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//! IPv4 prefixes (withdrawn, NLRI): `length in bits (1) | prefix (ceil(len/8))`.

use bytes::{BufMut, Bytes, BytesMut};

use super::attr::{check_mandatory, MpReach, MpUnreach, PathAttrs};
use super::notification::{codes, NotificationMsg};
use super::{DecodeCtx, Decoded, EncodeCtx};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateMsg {
    /// IPv4 unicast withdrawn routes, kept as bytes (vxbgp does not carry IPv4 unicast).
    pub withdrawn: Bytes,
    pub attrs: PathAttrs,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 unicast NLRI, kept as bytes.
    pub nlri: Bytes,
}

fn malformed_attribute_list() -> NotificationMsg {
    NotificationMsg::new(
        codes::UPDATE_MESSAGE_ERROR,
        codes::update::MALFORMED_ATTRIBUTE_LIST,
        Vec::new(),
    )
}

/// Checks that `block` is a well-formed run of IPv4 prefixes (RFC 4271 §4.3).
fn ipv4_prefixes_ok(mut block: &[u8]) -> bool {
    while let Some((bits, rest)) = block.split_first() {
        if *bits > 32 {
            return false;
        }
        let n = usize::from(*bits).div_ceil(8);
        let Some(next) = rest.get(n..) else {
            return false;
        };
        block = next;
    }
    true
}

/// Splits a 2-octet-length-prefixed field off the front of `input`.
fn length_prefixed(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// The End-of-RIB marker of a family (RFC 4724 §2); same as [`UpdateMsg::end_of_rib`].
pub fn end_of_rib(afi: u16, safi: u8) -> UpdateMsg {
    UpdateMsg::end_of_rib(afi, safi)
}

impl UpdateMsg {
    /// The End-of-RIB marker of a family (RFC 4724 §2): for IPv4 unicast an empty
    /// UPDATE, otherwise an UPDATE with only an empty MP_UNREACH_NLRI.
    pub fn end_of_rib(afi: u16, safi: u8) -> UpdateMsg {
        if (afi, safi) == (1, 1) {
            return UpdateMsg::default();
        }
        UpdateMsg {
            mp_unreach: Some(MpUnreach {
                afi,
                safi,
                nlri: Bytes::new(),
            }),
            ..UpdateMsg::default()
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one.
    pub fn is_end_of_rib(&self) -> Option<(u16, u8)> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || self.attrs != PathAttrs::default()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some((1, 1)),
            Some(u) if u.nlri.is_empty() => Some((u.afi, u.safi)),
            Some(_) => None,
        }
    }

    /// Decodes the body (after the header). `Err` is the NOTIFICATION to send; the
    /// non-fatal problems (RFC 7606) are in `errors`, and `verdict()` says what to do
    /// with the routes.
    pub fn decode(body: &[u8], ctx: &DecodeCtx) -> Result<Decoded<UpdateMsg>, NotificationMsg> {
        // RFC 4271 §6.3 / RFC 7606 §3(a): lengths inconsistent with the message
        // → Malformed Attribute List, session reset.
        let (withdrawn, rest) = length_prefixed(body).ok_or_else(malformed_attribute_list)?;
        let (attr_block, nlri) = length_prefixed(rest).ok_or_else(malformed_attribute_list)?;
        // RFC 7606 §5.3: unparseable IPv4 prefixes cannot be withdrawn one by one →
        // Invalid Network Field, session reset.
        if !ipv4_prefixes_ok(withdrawn) || !ipv4_prefixes_ok(nlri) {
            return Err(NotificationMsg::new(
                codes::UPDATE_MESSAGE_ERROR,
                codes::update::INVALID_NETWORK_FIELD,
                Vec::new(),
            ));
        }
        let (attrs, mp_reach, mp_unreach, mut errors) = PathAttrs::decode(attr_block, ctx)?;
        check_mandatory(
            &attrs,
            mp_reach.is_some(),
            !nlri.is_empty(),
            ctx.ibgp,
            &mut errors,
        );
        Ok(Decoded {
            value: UpdateMsg {
                withdrawn: Bytes::copy_from_slice(withdrawn),
                attrs,
                mp_reach,
                mp_unreach,
                nlri: Bytes::copy_from_slice(nlri),
            },
            errors,
        })
    }

    /// Bytes of the path-attribute block `encode` writes.
    pub fn attrs_len(&self, ctx: &EncodeCtx) -> usize {
        self.mp_reach.as_ref().map_or(0, MpReach::encoded_len)
            + self.mp_unreach.as_ref().map_or(0, MpUnreach::encoded_len)
            + self.attrs.encoded_len(ctx)
    }

    /// Exactly the number of body bytes `encode` appends.
    pub fn encoded_len(&self, ctx: &EncodeCtx) -> usize {
        2 + self.withdrawn.len() + 2 + self.attrs_len(ctx) + self.nlri.len()
    }

    /// Appends the body: MP_REACH_NLRI and MP_UNREACH_NLRI first (RFC 7606 §5.1), then
    /// the other attributes in type-code order.
    pub fn encode(&self, ctx: &EncodeCtx, out: &mut BytesMut) {
        out.put_u16(u16::try_from(self.withdrawn.len()).unwrap_or(u16::MAX));
        out.put_slice(&self.withdrawn);
        let at = out.len();
        out.put_u16(0);
        if let Some(m) = &self.mp_reach {
            m.encode(out);
        }
        if let Some(m) = &self.mp_unreach {
            m.encode(out);
        }
        self.attrs.encode(ctx, out);
        super::patch_u16(out, at, out.len() - at - 2);
        out.put_slice(&self.nlri);
    }
}

#[cfg(test)]
#[path = "update_tests.rs"]
mod tests;
