//! VNI, the EVPN label field that carries it, and MAC addresses.
//!
//! RFC 8365 §5.1.3: for VXLAN "the MPLS label field [...] will be referred to as the
//! VNI/VSID field [...] the entire 24-bit field is used to encode the VNI/VSID
//! value". So the 3-octet label field is the VNI, big-endian, with no
//! bottom-of-stack bit and no shift by 4.
//!
//! ```text
//!  0                   1                   2
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          VNI (24 bits), most significant first |   VXLAN (RFC 8365)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Label (20 bits)            |Exp|S|   MPLS (RFC 3032)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Both real peers agree: FRR 8.4 (`bgpd/bgp_evpn.h` `vni2label`/`label2vni`, used
//! for the type-2 labels and for the PMSI_TUNNEL label) writes `vni >> 16`,
//! `vni >> 8`, `vni` into the three octets; GoBGP 3.x (`pkg/packet/bgp/bgp.go`
//! `labelDecode`/`labelSerialize`, used for EVPN labels and the PMSI label) reads
//! and writes the 24-bit value the same way. [`Label`] keeps the three raw octets
//! so that a route is reflected exactly whatever a peer put there.

use std::fmt;
use std::str::FromStr;

use bytes::BytesMut;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{array, PResult, ParseTextError};

/// A VXLAN Network Identifier: 24 bits (RFC 7348 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Vni(u32);

impl Vni {
    /// Largest VNI, 2^24 - 1.
    pub const MAX: u32 = 0x00ff_ffff;

    /// A VNI, if `v` fits in 24 bits.
    pub const fn new(v: u32) -> Option<Vni> {
        if v <= Self::MAX {
            Some(Vni(v))
        } else {
            None
        }
    }

    /// The VNI as a number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Vni {
    type Error = ParseTextError;

    fn try_from(v: u32) -> Result<Self, Self::Error> {
        Vni::new(v).ok_or_else(|| ParseTextError::new("VNI", &v.to_string(), "must be < 2^24"))
    }
}

impl From<Vni> for u32 {
    fn from(v: Vni) -> u32 {
        v.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Vni {
    type Err = ParseTextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: u32 = s
            .parse()
            .map_err(|_| ParseTextError::new("VNI", s, "expected a number below 2^24"))?;
        Vni::new(v).ok_or_else(|| ParseTextError::new("VNI", s, "must be < 2^24"))
    }
}

/// The 3-octet label field of EVPN routes and of PMSI_TUNNEL, kept raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub [u8; 3]);

impl Label {
    /// On-wire size.
    pub const LEN: usize = 3;

    /// The label field carrying `vni` (RFC 8365 §5.1.3: all 24 bits).
    pub const fn from_vni(vni: Vni) -> Label {
        let v = vni.get();
        Label([(v >> 16) as u8, (v >> 8) as u8, v as u8])
    }

    /// The VNI in this field (RFC 8365 §5.1.3: all 24 bits).
    pub const fn vni(&self) -> Vni {
        Vni(self.value())
    }

    /// The 24-bit field as a number.
    pub const fn value(&self) -> u32 {
        ((self.0[0] as u32) << 16) | ((self.0[1] as u32) << 8) | self.0[2] as u32
    }

    /// The 20-bit MPLS label, for a peer using MPLS encapsulation (RFC 3032).
    pub const fn mpls_label(&self) -> u32 {
        self.value() >> 4
    }

    pub(crate) fn decode<'a>(input: &'a [u8], field: &'static str) -> PResult<'a, Label> {
        let (rest, raw) = array::<3>(input, field)?;
        Ok((rest, Label(raw)))
    }

    pub fn encode(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.0);
    }
}

/// Serialized as the 24-bit number (which is the VNI for VXLAN).
impl Serialize for Label {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.value())
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vni::deserialize(d)?;
        Ok(Label::from_vni(v))
    }
}

/// A 48-bit MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// On-wire size.
    pub const LEN: usize = 6;
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Parses `count` colon-separated two-digit hex octets into `out`.
pub(crate) fn parse_hex_octets(
    s: &str,
    out: &mut [u8],
    what: &'static str,
    form: &'static str,
) -> Result<(), ParseTextError> {
    let mut parts = s.split(':');
    for slot in out.iter_mut() {
        let part = parts
            .next()
            .ok_or_else(|| ParseTextError::new(what, s, form))?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseTextError::new(what, s, form));
        }
        *slot = u8::from_str_radix(part, 16).map_err(|_| ParseTextError::new(what, s, form))?;
    }
    if parts.next().is_some() {
        return Err(ParseTextError::new(what, s, form));
    }
    Ok(())
}

impl FromStr for MacAddr {
    type Err = ParseTextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut m = [0u8; 6];
        parse_hex_octets(
            s,
            &mut m,
            "MAC address",
            "expected six two-digit hex octets separated by ':', e.g. aa:bb:cc:dd:ee:ff",
        )?;
        Ok(MacAddr(m))
    }
}

crate::error::serde_as_text!(MacAddr);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vni_is_24_bits() {
        assert_eq!(Vni::new(42).map(Vni::get), Some(42));
        assert_eq!(Vni::new(0xff_ffff).map(Vni::get), Some(0xff_ffff));
        assert_eq!(Vni::new(0x100_0000), None);
        assert!("16777216".parse::<Vni>().is_err());
        assert_eq!("100".parse::<Vni>().ok().map(Vni::get), Some(100));
    }

    #[test]
    fn label_is_the_whole_field() {
        // VNI 42 as FRR's vni2label and GoBGP's labelSerialize write it.
        let vni = Vni::new(42).unwrap_or_else(|| unreachable!());
        assert_eq!(Label::from_vni(vni).0, [0x00, 0x00, 0x2a]);
        assert_eq!(Label([0x01, 0x86, 0xa0]).vni().get(), 100_000);
        assert_eq!(Label([0x00, 0x06, 0x41]).mpls_label(), 100);
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "aa:bb:cc:dd:ee:0f".parse().unwrap_or_default();
        assert_eq!(m.0, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f]);
        assert_eq!(m.to_string(), "aa:bb:cc:dd:ee:0f");
        assert_eq!(
            "AA:BB:CC:DD:EE:FF"
                .parse::<MacAddr>()
                .map(|m| m.to_string()),
            Ok("aa:bb:cc:dd:ee:ff".to_owned())
        );
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:f",
            "aa:bb:cc:dd:ee:fg",
            "aabb.ccdd.eeff",
            "+a:bb:cc:dd:ee:ff",
        ] {
            let e = bad.parse::<MacAddr>();
            assert!(e.is_err(), "{bad}");
            if let Err(e) = e {
                assert!(e.to_string().contains("aa:bb:cc:dd:ee:ff"), "{e}");
            }
        }
    }

    #[test]
    fn serde_forms() {
        let m = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(
            serde_json::to_string(&m).ok().as_deref(),
            Some("\"aa:bb:cc:dd:ee:ff\"")
        );
        assert_eq!(
            serde_json::from_str::<MacAddr>("\"aa:bb:cc:dd:ee:ff\"").ok(),
            Some(m)
        );
        assert_eq!(serde_json::from_str::<Vni>("42").ok(), Vni::new(42));
        assert!(serde_json::from_str::<Vni>("16777216").is_err());
        assert_eq!(
            serde_json::to_string(&Label([0, 0, 42])).ok().as_deref(),
            Some("42")
        );
    }

    proptest! {
        #[test]
        fn mac_round_trip(m in any::<[u8; 6]>()) {
            let mac = MacAddr(m);
            prop_assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        }

        #[test]
        fn label_vni_round_trip(v in 0u32..=Vni::MAX) {
            let vni = Vni::new(v).unwrap_or_else(|| unreachable!());
            prop_assert_eq!(Label::from_vni(vni).vni(), vni);
        }

        #[test]
        fn label_raw_round_trip(raw in any::<[u8; 3]>()) {
            let l = Label(raw);
            prop_assert_eq!(Label::from_vni(l.vni()), l);
        }
    }
}
