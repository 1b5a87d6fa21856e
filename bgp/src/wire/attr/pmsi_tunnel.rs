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
//! = the VTEP address (RFC 8365 §5.1.3). Shorter than 5 octets → treat-as-withdraw.

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::u8 as be_u8;

use super::PmsiTunnel;
use crate::wire::{exact, WireError};

impl PmsiTunnel {
    /// Decodes the attribute value.
    pub fn decode_value(value: &[u8]) -> Result<PmsiTunnel, WireError> {
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
    }

    proptest! {
        #[test]
        fn round_trip(flags: u8, tt: u8, label: [u8; 3], id in proptest::collection::vec(any::<u8>(), 0..20)) {
            let p = PmsiTunnel { flags, tunnel_type: tt, label, tunnel_id: id.into() };
            let mut out = BytesMut::new();
            p.encode_value(&mut out);
            prop_assert_eq!(out.len(), p.value_len());
            prop_assert_eq!(PmsiTunnel::decode_value(&out).unwrap(), p);
        }
    }
}
