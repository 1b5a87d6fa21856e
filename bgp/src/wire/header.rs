//! The message header (RFC 4271 §4.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                                                               |
//! +                           Marker                              +
//! |                                                               |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::notification::{codes, NotificationMsg};
use super::{HEADER_LEN, MAX_MESSAGE_LEN};

/// The all-ones marker.
pub const MARKER: [u8; 16] = [0xff; 16];

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MsgType {
    pub fn from_u8(v: u8) -> Option<MsgType> {
        Some(match v {
            1 => MsgType::Open,
            2 => MsgType::Update,
            3 => MsgType::Notification,
            4 => MsgType::Keepalive,
            5 => MsgType::RouteRefresh,
            _ => return None,
        })
    }

    /// Whether a whole message of `len` bytes is long enough (RFC 4271 §4.2-4.5,
    /// RFC 2918 §3): OPEN >= 29, UPDATE >= 23, KEEPALIVE == 19, NOTIFICATION >= 21,
    /// ROUTE-REFRESH == 23 (a longer ROUTE-REFRESH is RFC 7313's code 7).
    pub fn len_ok(self, len: usize) -> bool {
        match self {
            MsgType::Open => len >= 29,
            MsgType::Update => len >= 23,
            MsgType::Notification => len >= 21,
            MsgType::Keepalive => len == 19,
            MsgType::RouteRefresh => len >= 23,
        }
    }
}

/// How long the message at the front of `buf` is, once its header is buffered.
///
/// `Ok(None)`: fewer than 19 bytes so far. `Err`: the header is bad (RFC 4271 §6.1) and
/// the NOTIFICATION to send: marker not all ones → Connection Not Synchronized; length
/// outside 19..=4096 → Bad Message Length (data = the length field); unknown type →
/// Bad Message Type (data = the type).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, NotificationMsg> {
    let Some(hdr) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let (marker, rest) = hdr.split_at(16);
    if marker != MARKER {
        return Err(NotificationMsg::new(
            codes::MESSAGE_HEADER_ERROR,
            codes::header::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
        ));
    }
    let (len_bytes, typ) = rest.split_at(2);
    let len_bytes: [u8; 2] = len_bytes.try_into().unwrap_or([0, 0]);
    let len = usize::from(u16::from_be_bytes(len_bytes));
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(NotificationMsg::new(
            codes::MESSAGE_HEADER_ERROR,
            codes::header::BAD_MESSAGE_LENGTH,
            len_bytes,
        ));
    }
    let typ = typ.first().copied().unwrap_or(0);
    if MsgType::from_u8(typ).is_none() {
        return Err(NotificationMsg::new(
            codes::MESSAGE_HEADER_ERROR,
            codes::header::BAD_MESSAGE_TYPE,
            [typ],
        ));
    }
    Ok(Some(len))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hdr(len: u16, typ: u8) -> Vec<u8> {
        let mut v = MARKER.to_vec();
        v.extend_from_slice(&len.to_be_bytes());
        v.push(typ);
        v
    }

    #[test]
    fn short_buffer_is_none() {
        assert_eq!(frame_len(&[0xff; 18]), Ok(None));
        assert_eq!(frame_len(&[]), Ok(None));
    }

    #[test]
    fn good_header_gives_length() {
        assert_eq!(frame_len(&hdr(19, 4)), Ok(Some(19)));
        assert_eq!(frame_len(&hdr(4096, 2)), Ok(Some(4096)));
    }

    #[test]
    fn bad_marker_is_not_synchronized() {
        let mut h = hdr(19, 4);
        h[3] = 0;
        let e = frame_len(&h).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 1));
    }

    #[test]
    fn bad_length_carries_length_field() {
        for len in [0u16, 18, 4097, 65535] {
            let e = frame_len(&hdr(len, 4)).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 2));
            assert_eq!(&e.data[..], &len.to_be_bytes());
        }
    }

    #[test]
    fn bad_type_carries_type() {
        for t in [0u8, 6, 255] {
            let e = frame_len(&hdr(19, t)).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 3));
            assert_eq!(&e.data[..], &[t]);
        }
    }
}
