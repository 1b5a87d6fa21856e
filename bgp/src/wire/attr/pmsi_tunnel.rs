//! PMSI_TUNNEL (RFC 6514 §5): optional transitive, code 22.
//!
//! ```text
//! +---------------------------------+
//! |  Flags (1 octet)                |
//! +---------------------------------+
//! |  Tunnel Type (1 octet)          |
//! +---------------------------------+
//! |  MPLS Label (3 octets)          |
//! +---------------------------------+
//! |  Tunnel Identifier (variable)   |
//! +---------------------------------+
//! ```
//! For EVPN over VXLAN: tunnel type 6 (ingress replication), label = VNI, identifier
//! = the VTEP address (RFC 8365 §5.1.3). Malformed → treat-as-withdraw: shorter than 5
//! octets, or an ingress-replication identifier that is no IPv4 or IPv6 address
//! (RFC 6514 §5: "the unicast tunnel endpoint IP address"; a route pointing at an
//! endpoint it does not name must not be used, nor guessed from the next hop).

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::u8 as be_u8;

use super::PmsiTunnel;
use crate::wire::{exact, WireError, WireErrorKind};

/// RFC 6514 §5 tunnel type 6.
pub const TUNNEL_TYPE_INGRESS_REPLICATION: u8 = 6;

impl PmsiTunnel {
    /// Decodes the attribute value.
    pub fn decode_value(value: &[u8]) -> Result<PmsiTunnel, WireError> {
        let p = Self::decode_fields(value)?;
        if p.tunnel_type == TUNNEL_TYPE_INGRESS_REPLICATION && !matches!(p.tunnel_id.len(), 4 | 16)
        {
            let got = p.tunnel_id.len();
            return Err(WireError::new(
                WireErrorKind::BadLength {
                    what: "ingress-replication tunnel identifier",
                    got,
                },
                0,
            ));
        }
        Ok(p)
    }

    fn decode_fields(value: &[u8]) -> Result<PmsiTunnel, WireError> {
        exact(value, |i| {
            let (i, flags) = be_u8(i)?;
            let (i, tunnel_type) = be_u8(i)?;
            let (i, label) = take(3usize)(i)?;
            let mut l = [0u8; 3];
            l.copy_from_slice(label);
            Ok((
                &[][..],
                PmsiTunnel {
                    flags,
                    tunnel_type,
                    label: l,
                    tunnel_id: i.into(),
                },
            ))
        })
    }

    /// Bytes of the value.
    pub fn value_len(&self) -> usize {
        5 + self.tunnel_id.len()
    }

    /// Appends the value.
    pub fn encode_value(&self, out: &mut BytesMut) {
        out.put_u8(self.flags);
        out.put_u8(self.tunnel_type);
        out.put_slice(&self.label);
        out.put_slice(&self.tunnel_id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ingress_replication() {
        let v = [0, 6, 0, 0, 100, 198, 19, 0, 1];
        let p = PmsiTunnel::decode_value(&v).unwrap();
        assert_eq!(p.tunnel_type, 6);
        assert_eq!(p.label, [0, 0, 100]);
        assert_eq!(&p.tunnel_id[..], &[198, 19, 0, 1]);
        assert!(PmsiTunnel::decode_value(&[0, 6, 0, 0]).is_err());
        let v6 = [[0, 6, 0, 0, 100].as_slice(), &[0x20; 16]].concat();
        assert_eq!(PmsiTunnel::decode_value(&v6).unwrap().tunnel_id.len(), 16);
    }

    #[test]
    fn ingress_replication_needs_an_address() {
        for id in [&[][..], &[198, 19], &[198, 19, 0, 1, 0], &[0; 15]] {
            let v = [[0, 6, 0, 0, 100].as_slice(), id].concat();
            assert!(PmsiTunnel::decode_value(&v).is_err(), "{id:?}");
        }
        // Other tunnel types carry identifiers of their own kinds.
        assert!(PmsiTunnel::decode_value(&[0, 0, 0, 0, 0]).is_ok());
        assert!(PmsiTunnel::decode_value(&[0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]).is_ok());
    }

    proptest! {
        #[test]
        fn round_trip(flags: u8, tt: u8, label: [u8; 3], id in proptest::collection::vec(any::<u8>(), 0..20)) {
            let tt = if tt == TUNNEL_TYPE_INGRESS_REPLICATION && !matches!(id.len(), 4 | 16) { 7 } else { tt };
            let p = PmsiTunnel { flags, tunnel_type: tt, label, tunnel_id: id.into() };
            let mut out = BytesMut::new();
            p.encode_value(&mut out);
            prop_assert_eq!(out.len(), p.value_len());
            prop_assert_eq!(PmsiTunnel::decode_value(&out).unwrap(), p);
        }
    }
}
