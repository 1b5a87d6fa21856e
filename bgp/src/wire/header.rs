//! The message header (RFC 4271 §4.1).
