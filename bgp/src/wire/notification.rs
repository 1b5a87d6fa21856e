//! NOTIFICATION (RFC 4271 §4.5) and the error codes of §6.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationMsg {
    pub code: u8,
    pub subcode: u8,
    pub data: Box<[u8]>,
}
