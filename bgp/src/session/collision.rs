//! Connection collision resolution (RFC 4271 §6.8) as a pure function.

use std::net::Ipv4Addr;

/// Which of two connections to the same peer survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The connection this speaker opened (active).
    Outgoing,
    /// The connection the peer opened (passive).
    Incoming,
}

/// RFC 4271 §6.8: "the connection initiated by the BGP speaker with the larger value
/// of the BGP Identifier is preserved" — ours if our identifier is larger.
pub fn resolve(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> Keep {
    if u32::from(local_id) > u32::from(remote_id) {
        Keep::Outgoing
    } else {
        Keep::Incoming
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_identifier_keeps_its_own_connection() {
        let lo = Ipv4Addr::new(198, 19, 0, 1);
        let hi = Ipv4Addr::new(198, 19, 0, 2);
        assert_eq!(resolve(hi, lo), Keep::Outgoing);
        assert_eq!(resolve(lo, hi), Keep::Incoming);
    }

    #[test]
    fn both_sides_agree_on_the_survivor() {
        let a = Ipv4Addr::new(198, 19, 0, 7);
        let b = Ipv4Addr::new(198, 19, 0, 3);
        // a keeps its outgoing connection = b's incoming one: the same TCP connection.
        assert_eq!(resolve(a, b), Keep::Outgoing);
        assert_eq!(resolve(b, a), Keep::Incoming);
    }
}
