//! NOTIFICATION (RFC 4271 §4.5) and the error codes of §6.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Cease with Administrative Shutdown or Reset may carry a shutdown communication
//! (RFC 8203 / RFC 9003): one length octet, then that many octets of UTF-8.

use bytes::{BufMut, BytesMut};

/// Error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 7313).
pub mod codes {
    pub const MESSAGE_HEADER_ERROR: u8 = 1;
    pub const OPEN_MESSAGE_ERROR: u8 = 2;
    pub const UPDATE_MESSAGE_ERROR: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM_ERROR: u8 = 5;
    pub const CEASE: u8 = 6;
    /// RFC 7313 §5.
    pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;

    /// Subcode 0 of any code: no more specific subcode applies.
    pub const UNSPECIFIC: u8 = 0;

    /// Message Header Error subcodes.
    pub mod header {
        pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
        pub const BAD_MESSAGE_LENGTH: u8 = 2;
        pub const BAD_MESSAGE_TYPE: u8 = 3;
    }

    /// OPEN Message Error subcodes.
    pub mod open {
        pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
        pub const BAD_PEER_AS: u8 = 2;
        pub const BAD_BGP_IDENTIFIER: u8 = 3;
        pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
        /// Deprecated (RFC 4271 §6.2).
        pub const AUTHENTICATION_FAILURE: u8 = 5;
        pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
        /// RFC 5492 §5.
        pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    }

    /// UPDATE Message Error subcodes.
    pub mod update {
        pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
        pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
        pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
        pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
        pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
        pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
        /// Deprecated (RFC 4271 §6.3).
        pub const AS_ROUTING_LOOP: u8 = 7;
        pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
        pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
        pub const INVALID_NETWORK_FIELD: u8 = 10;
        pub const MALFORMED_AS_PATH: u8 = 11;
    }

    /// FSM Error subcodes (RFC 6608).
    pub mod fsm {
        pub const UNEXPECTED_IN_OPENSENT: u8 = 1;
        pub const UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
        pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
    }

    /// Cease subcodes (RFC 4486).
    pub mod cease {
        pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
        pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
        pub const PEER_DECONFIGURED: u8 = 3;
        pub const ADMINISTRATIVE_RESET: u8 = 4;
        pub const CONNECTION_REJECTED: u8 = 5;
        pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
        pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
        pub const OUT_OF_RESOURCES: u8 = 8;
    }

    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    pub mod route_refresh {
        pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationMsg {
    pub code: u8,
    pub subcode: u8,
    pub data: Box<[u8]>,
}

impl NotificationMsg {
    pub fn new(code: u8, subcode: u8, data: impl Into<Box<[u8]>>) -> Self {
        NotificationMsg {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// Cease / Administrative Shutdown with an RFC 8203 shutdown communication
    /// (truncated to 255 bytes on a character boundary).
    pub fn shutdown(subcode: u8, text: &str) -> Self {
        let mut end = text.len().min(255);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let msg = text.as_bytes().get(..end).unwrap_or_default();
        let mut data = Vec::with_capacity(1 + msg.len());
        data.push(u8::try_from(msg.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(msg);
        NotificationMsg::new(codes::CEASE, subcode, data)
    }

    /// Decodes the message body (after the header): code, subcode, data. The header
    /// check guarantees the 2 octets; a shorter body is a Bad Message Length.
    pub fn decode(body: &[u8]) -> Result<NotificationMsg, NotificationMsg> {
        match body {
            [code, subcode, data @ ..] => Ok(NotificationMsg::new(*code, *subcode, data)),
            _ => Err(NotificationMsg::new(
                codes::MESSAGE_HEADER_ERROR,
                codes::header::BAD_MESSAGE_LENGTH,
                u16::try_from(body.len() + super::HEADER_LEN)
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
            )),
        }
    }

    /// Exactly the number of body bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Appends the body (after the header).
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    /// The RFC 8203 shutdown communication, if this is a Cease shutdown/reset that
    /// carries a well-formed one.
    pub fn shutdown_communication(&self) -> Option<String> {
        if self.code != codes::CEASE
            || !matches!(
                self.subcode,
                codes::cease::ADMINISTRATIVE_SHUTDOWN | codes::cease::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (len, text) = self.data.split_first()?;
        if usize::from(*len) != text.len() || text.is_empty() {
            return None;
        }
        std::str::from_utf8(text).ok().map(str::to_owned)
    }

    /// The error code in words.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            codes::MESSAGE_HEADER_ERROR => "Message Header Error",
            codes::OPEN_MESSAGE_ERROR => "OPEN Message Error",
            codes::UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
            codes::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            codes::FSM_ERROR => "Finite State Machine Error",
            codes::CEASE => "Cease",
            codes::ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH Message Error",
            _ => "Unknown Error",
        }
    }

    /// The subcode in words.
    pub fn subcode_name(&self) -> &'static str {
        use codes::*;
        if self.subcode == UNSPECIFIC {
            return "Unspecific";
        }
        match (self.code, self.subcode) {
            (MESSAGE_HEADER_ERROR, 1) => "Connection Not Synchronized",
            (MESSAGE_HEADER_ERROR, 2) => "Bad Message Length",
            (MESSAGE_HEADER_ERROR, 3) => "Bad Message Type",
            (OPEN_MESSAGE_ERROR, 1) => "Unsupported Version Number",
            (OPEN_MESSAGE_ERROR, 2) => "Bad Peer AS",
            (OPEN_MESSAGE_ERROR, 3) => "Bad BGP Identifier",
            (OPEN_MESSAGE_ERROR, 4) => "Unsupported Optional Parameter",
            (OPEN_MESSAGE_ERROR, 5) => "Authentication Failure",
            (OPEN_MESSAGE_ERROR, 6) => "Unacceptable Hold Time",
            (OPEN_MESSAGE_ERROR, 7) => "Unsupported Capability",
            (UPDATE_MESSAGE_ERROR, 1) => "Malformed Attribute List",
            (UPDATE_MESSAGE_ERROR, 2) => "Unrecognized Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 3) => "Missing Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 4) => "Attribute Flags Error",
            (UPDATE_MESSAGE_ERROR, 5) => "Attribute Length Error",
            (UPDATE_MESSAGE_ERROR, 6) => "Invalid ORIGIN Attribute",
            (UPDATE_MESSAGE_ERROR, 7) => "AS Routing Loop",
            (UPDATE_MESSAGE_ERROR, 8) => "Invalid NEXT_HOP Attribute",
            (UPDATE_MESSAGE_ERROR, 9) => "Optional Attribute Error",
            (UPDATE_MESSAGE_ERROR, 10) => "Invalid Network Field",
            (UPDATE_MESSAGE_ERROR, 11) => "Malformed AS_PATH",
            (FSM_ERROR, 1) => "Receive Unexpected Message in OpenSent State",
            (FSM_ERROR, 2) => "Receive Unexpected Message in OpenConfirm State",
            (FSM_ERROR, 3) => "Receive Unexpected Message in Established State",
            (CEASE, 1) => "Maximum Number of Prefixes Reached",
            (CEASE, 2) => "Administrative Shutdown",
            (CEASE, 3) => "Peer De-configured",
            (CEASE, 4) => "Administrative Reset",
            (CEASE, 5) => "Connection Rejected",
            (CEASE, 6) => "Other Configuration Change",
            (CEASE, 7) => "Connection Collision Resolution",
            (CEASE, 8) => "Out of Resources",
            (ROUTE_REFRESH_MESSAGE_ERROR, 1) => "Invalid Message Length",
            _ => "Unknown Subcode",
        }
    }
}

impl std::fmt::Display for NotificationMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.code_name(), self.subcode_name())?;
        if self.code_name() == "Unknown Error" || self.subcode_name() == "Unknown Subcode" {
            write!(f, " ({}/{})", self.code, self.subcode)?;
        }
        if let Some(text) = self.shutdown_communication() {
            write!(f, ": \"{}\"", text.escape_debug())?;
        } else if !self.data.is_empty() {
            write!(f, " [data {}]", super::hex(&self.data))?;
        }
        Ok(())
    }
}

impl std::error::Error for NotificationMsg {}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_names_code_and_subcode() {
        let n = NotificationMsg::new(3, 1, vec![0x40, 1]);
        assert_eq!(
            n.to_string(),
            "UPDATE Message Error / Malformed Attribute List [data 4001]"
        );
        let n = NotificationMsg::new(6, 2, Vec::new());
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown");
        let n = NotificationMsg::new(9, 9, Vec::new());
        assert_eq!(n.to_string(), "Unknown Error / Unknown Subcode (9/9)");
    }

    #[test]
    fn rfc8203_shutdown_communication_shown() {
        let n = NotificationMsg::shutdown(codes::cease::ADMINISTRATIVE_SHUTDOWN, "maintenance");
        assert_eq!(n.data[0], 11);
        assert_eq!(n.shutdown_communication().as_deref(), Some("maintenance"));
        assert_eq!(
            n.to_string(),
            "Cease / Administrative Shutdown: \"maintenance\""
        );
        // Bad length octet: shown as hex instead.
        let bad = NotificationMsg::new(6, 2, vec![5, b'a']);
        assert_eq!(bad.shutdown_communication(), None);
        assert!(bad.to_string().ends_with("[data 0561]"));
    }

    #[test]
    fn shutdown_truncates_on_char_boundary() {
        let long = "é".repeat(200);
        let n = NotificationMsg::shutdown(2, &long);
        assert!(n.data.len() <= 256);
        assert!(n.shutdown_communication().is_some());
    }

    #[test]
    fn decode_short_body_is_error() {
        assert!(NotificationMsg::decode(&[6]).is_err());
        assert_eq!(
            NotificationMsg::decode(&[6, 4]).unwrap(),
            NotificationMsg::new(6, 4, Vec::new())
        );
    }

    proptest! {
        #[test]
        fn round_trip(code: u8, subcode: u8, data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let n = NotificationMsg::new(code, subcode, data);
            let mut out = BytesMut::new();
            n.encode(&mut out);
            prop_assert_eq!(out.len(), n.encoded_len());
            prop_assert_eq!(NotificationMsg::decode(&out).unwrap(), n.clone());
            let _ = n.to_string();
        }
    }
}
