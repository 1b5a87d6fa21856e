//! BGP-4 messages on the wire (RFC 4271 §4) with RFC 7606 error handling.
//!
//! Decoding frames first and parses each value from its exact sub-slice; it never
//! panics and never allocates more than the input justifies. Encoding appends to a
//! `BytesMut` and cannot fail.
//!
//! Entry points: [`header::frame_len`] finds a whole message in a receive buffer,
//! [`Message::decode`] turns it into a value (`Err` = the NOTIFICATION to send before
//! closing), [`Message::encode`] / [`Message::to_bytes`] write one.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

pub mod attr;
pub mod capability;
pub mod error;
pub mod header;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod update;

use bytes::{BufMut, Bytes, BytesMut};

pub use attr::{
    AsPath, AsSegment, ExtCommunity, MpNextHop, MpReach, MpUnreach, Origin, PathAttrs, PmsiTunnel,
    RawAttr, SegmentKind,
};
pub use capability::{AddPathFamily, Capability, GrFamily};
pub use error::{Action, AttrError, WireError, WireErrorKind};
pub use notification::NotificationMsg;
pub use open::OpenMsg;
pub use route_refresh::RouteRefreshMsg;
pub use update::UpdateMsg;

use header::MsgType;
use notification::codes;

/// Largest message without the extended-message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Marker (16) + length (2) + type (1).
pub const HEADER_LEN: usize = 19;

/// Input of the nom decoders.
pub type In<'a> = &'a [u8];
/// Result of the nom decoders.
pub type Res<'a, T> = nom::IResult<In<'a>, T, WireError>;

/// Context-free wire values: decode one from the front, encode it, and say exactly
/// how long the encoding is.
pub trait Wire: Sized {
    /// Decodes one value from the front of `input`.
    fn decode(input: In<'_>) -> Res<'_, Self>;
    /// Exactly the number of bytes `encode` appends.
    fn encoded_len(&self) -> usize;
    /// Appends the value; infallible.
    fn encode(&self, out: &mut BytesMut);
}

/// Runs `parser` over exactly `value` and requires every byte consumed (STYLE rule 2).
pub fn exact<'a, T>(
    value: In<'a>,
    mut parser: impl FnMut(In<'a>) -> Res<'a, T>,
) -> Result<T, WireError> {
    match parser(value) {
        Ok(([], v)) => Ok(v),
        Ok((rest, _)) => Err(WireError {
            kind: WireErrorKind::TrailingBytes(rest.len()),
            rest: rest.len(),
        }),
        Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(e),
        Err(nom::Err::Incomplete(_)) => Err(WireError {
            kind: WireErrorKind::Truncated,
            rest: 0,
        }),
    }
}

/// A nom failure of the given kind located at `input`.
pub fn fail<T>(input: In<'_>, kind: WireErrorKind) -> Res<'_, T> {
    Err(nom::Err::Failure(WireError {
        kind,
        rest: input.len(),
    }))
}

/// What decoding needs to know about the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeCtx {
    /// Both sides announced the 4-octet AS capability (RFC 6793).
    pub as4: bool,
    /// The peer is internal: LOCAL_PREF is expected, and RFC 7606 treats some
    /// attributes differently for external peers.
    pub ibgp: bool,
}

/// What encoding needs to know about the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodeCtx {
    /// Both sides announced the 4-octet AS capability (RFC 6793).
    pub as4: bool,
}

/// One BGP message. (UPDATE is the large, common variant: boxing it would cost an
/// allocation per message for nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(OpenMsg),
    Update(UpdateMsg),
    Notification(NotificationMsg),
    Keepalive,
    RouteRefresh(RouteRefreshMsg),
}

/// A decoded value together with the non-fatal problems found in it (RFC 7606).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<T> {
    pub value: T,
    pub errors: Vec<AttrError>,
}

impl<T> Decoded<T> {
    /// The strongest action any problem asks for (RFC 7606 §2: the most severe wins).
    pub fn verdict(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }

    /// A value without problems.
    pub fn clean(value: T) -> Self {
        Decoded {
            value,
            errors: Vec::new(),
        }
    }
}

impl Message {
    /// The message type code (RFC 4271 §4.1).
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::Open(_) => MsgType::Open,
            Message::Update(_) => MsgType::Update,
            Message::Notification(_) => MsgType::Notification,
            Message::Keepalive => MsgType::Keepalive,
            Message::RouteRefresh(_) => MsgType::RouteRefresh,
        }
    }

    /// Decodes one whole message, header included (as delimited by
    /// [`header::frame_len`]). `Err` is the NOTIFICATION to send before closing.
    pub fn decode(frame: &[u8], ctx: &DecodeCtx) -> Result<Decoded<Message>, NotificationMsg> {
        let len = match header::frame_len(frame)? {
            Some(len) => len,
            None => {
                let got = u16::try_from(frame.len()).unwrap_or(0);
                return Err(NotificationMsg::new(
                    codes::MESSAGE_HEADER_ERROR,
                    codes::header::BAD_MESSAGE_LENGTH,
                    got.to_be_bytes(),
                ));
            }
        };
        let (Some(typ), Some(body)) = (frame.get(18).copied(), frame.get(HEADER_LEN..len)) else {
            return Err(bad_length(len));
        };
        if len != frame.len() {
            // The caller handed more (or less) than one message.
            return Err(bad_length(frame.len()));
        }
        let msg_type = MsgType::from_u8(typ).ok_or_else(|| {
            NotificationMsg::new(
                codes::MESSAGE_HEADER_ERROR,
                codes::header::BAD_MESSAGE_TYPE,
                [typ],
            )
        })?;
        // RFC 4271 §6.1: per-type length limits are a Bad Message Length.
        if !msg_type.len_ok(len) {
            return Err(bad_length(len));
        }
        Ok(match msg_type {
            MsgType::Open => Decoded::clean(Message::Open(OpenMsg::decode(body)?)),
            MsgType::Update => {
                let d = UpdateMsg::decode(body, ctx)?;
                Decoded {
                    value: Message::Update(d.value),
                    errors: d.errors,
                }
            }
            MsgType::Notification => {
                Decoded::clean(Message::Notification(NotificationMsg::decode(body)?))
            }
            MsgType::Keepalive => Decoded::clean(Message::Keepalive),
            MsgType::RouteRefresh => match RouteRefreshMsg::decode(body) {
                Some(rr) => Decoded::clean(Message::RouteRefresh(rr)),
                // RFC 7313 §5: a ROUTE-REFRESH of bad length → code 7, subcode 1,
                // data = the complete message.
                None => {
                    return Err(NotificationMsg::new(
                        codes::ROUTE_REFRESH_MESSAGE_ERROR,
                        codes::route_refresh::INVALID_MESSAGE_LENGTH,
                        frame,
                    ))
                }
            },
        })
    }

    /// Exactly the number of bytes [`Message::encode`] appends.
    pub fn encoded_len(&self, ctx: &EncodeCtx) -> usize {
        HEADER_LEN
            + match self {
                Message::Open(m) => m.encoded_len(),
                Message::Update(m) => m.encoded_len(ctx),
                Message::Notification(m) => m.encoded_len(),
                Message::Keepalive => 0,
                Message::RouteRefresh(m) => m.encoded_len(),
            }
    }

    /// Appends the whole message, header included. The length field is back-patched;
    /// keeping a message within [`MAX_MESSAGE_LEN`] is the sender's job (split UPDATEs
    /// by `encoded_len`).
    pub fn encode(&self, ctx: &EncodeCtx, out: &mut BytesMut) {
        let start = out.len();
        out.put_slice(&header::MARKER);
        out.put_u16(0);
        out.put_u8(self.msg_type() as u8);
        match self {
            Message::Open(m) => m.encode(out),
            Message::Update(m) => m.encode(ctx, out),
            Message::Notification(m) => m.encode(out),
            Message::Keepalive => {}
            Message::RouteRefresh(m) => m.encode(out),
        }
        patch_u16(out, start + 16, out.len() - start);
    }

    /// The message as one buffer.
    pub fn to_bytes(&self, ctx: &EncodeCtx) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len(ctx));
        self.encode(ctx, &mut out);
        out.freeze()
    }
}

fn bad_length(len: usize) -> NotificationMsg {
    let got = u16::try_from(len).unwrap_or(u16::MAX);
    NotificationMsg::new(
        codes::MESSAGE_HEADER_ERROR,
        codes::header::BAD_MESSAGE_LENGTH,
        got.to_be_bytes(),
    )
}

/// Writes `value` (saturated to u16) as a big-endian u16 at `at` in `out`, if there.
pub(crate) fn patch_u16(out: &mut BytesMut, at: usize, value: usize) {
    let v = u16::try_from(value).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&v);
    }
}

/// Writes `value` as one octet at `at` in `out`, if there.
pub(crate) fn patch_u8(out: &mut BytesMut, at: usize, value: usize) {
    let v = u8::try_from(value).unwrap_or(u8::MAX);
    if let Some(slot) = out.get_mut(at) {
        *slot = v;
    }
}

/// Lowercase hex of `data` (for logs and `Display`).
pub fn hex(data: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    /// Hex text (any separators) to bytes, for hand-written test messages.
    pub(crate) fn hexdec(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn keepalive_decodes_and_encodes() {
        let frame = hexdec("ffffffffffffffffffffffffffffffff 0013 04");
        let d = Message::decode(&frame, &DecodeCtx::default()).unwrap();
        assert_eq!(d.value, Message::Keepalive);
        assert!(d.errors.is_empty());
        let ctx = EncodeCtx::default();
        assert_eq!(&Message::Keepalive.to_bytes(&ctx)[..], &frame[..]);
        assert_eq!(Message::Keepalive.encoded_len(&ctx), 19);
    }

    #[test]
    fn keepalive_with_body_is_bad_length() {
        let frame = hexdec("ffffffffffffffffffffffffffffffff 0014 04 00");
        let e = Message::decode(&frame, &DecodeCtx::default()).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 2));
        assert_eq!(&e.data[..], &[0, 20]);
    }

    #[test]
    fn route_refresh_bad_length_is_code_7() {
        let frame = hexdec("ffffffffffffffffffffffffffffffff 0016 05 0019 00");
        let e = Message::decode(&frame, &DecodeCtx::default()).unwrap_err();
        // 22 bytes is below the ROUTE-REFRESH minimum: header error first.
        assert_eq!((e.code, e.subcode), (1, 2));
    }

    #[test]
    fn rfc7313_5_long_route_refresh_is_code_7_with_message() {
        let frame = hexdec("ffffffffffffffffffffffffffffffff 0018 05 0019 00 46 00");
        let e = Message::decode(&frame, &DecodeCtx::default()).unwrap_err();
        assert_eq!((e.code, e.subcode), (7, 1));
        assert_eq!(&e.data[..], &frame[..]);
    }

    #[test]
    fn route_refresh_round_trip() {
        let m = Message::RouteRefresh(RouteRefreshMsg {
            afi: 25,
            subtype: 0,
            safi: 70,
        });
        let ctx = EncodeCtx::default();
        let b = m.to_bytes(&ctx);
        assert_eq!(b.len(), m.encoded_len(&ctx));
        assert_eq!(&b[16..], &hexdec("0017 05 0019 00 46")[..]);
        assert_eq!(Message::decode(&b, &DecodeCtx::default()).unwrap().value, m);
    }

    #[test]
    fn notification_round_trip() {
        let m = Message::Notification(NotificationMsg::new(6, 2, &b"bye"[..]));
        let ctx = EncodeCtx::default();
        let b = m.to_bytes(&ctx);
        assert_eq!(b.len(), m.encoded_len(&ctx));
        assert_eq!(Message::decode(&b, &DecodeCtx::default()).unwrap().value, m);
    }

    proptest! {
        #[test]
        fn message_decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), typ in 0u8..7, as4: bool, ibgp: bool) {
            let mut frame = vec![0xffu8; 16];
            let len = (body.len() + 19) as u16;
            frame.extend_from_slice(&len.to_be_bytes());
            frame.push(typ);
            frame.extend_from_slice(&body);
            let ctx = DecodeCtx { as4, ibgp };
            if let Ok(d) = Message::decode(&frame, &ctx) {
                // Whatever decodes must encode without panicking.
                let e = EncodeCtx { as4 };
                let b = d.value.to_bytes(&e);
                prop_assert_eq!(b.len(), d.value.encoded_len(&e));
            }
        }

        #[test]
        fn message_decode_raw_bytes_never_panics(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode(&frame, &DecodeCtx::default());
            let _ = header::frame_len(&frame);
        }
    }
}
