//! AS_PATH (RFC 4271 §4.3 b, §5.1.2) with 2- or 4-octet AS numbers (RFC 6793), and
//! the AS4_PATH merge of RFC 6793 §4.2.3.
//!
//! ```text
//! +--------------+----------------+-----------------------------+
//! | segment type | segment length | AS numbers (2 or 4 octets   |
//! |   (1 octet)  | (1 octet, ASNs)|   each, `length` of them)   |
//! +--------------+----------------+-----------------------------+  ... repeated
//! ```
//! Segment types: 1 AS_SET, 2 AS_SEQUENCE, 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET
//! (RFC 5065). RFC 7606 §7.2: an unrecognized segment type, a segment overrun, a
//! zero-length segment or a trailing partial segment header → treat-as-withdraw.

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, u8 as be_u8};

use super::{AsPath, AsSegment, SegmentKind};
use crate::wire::open::AS_TRANS;
use crate::wire::{exact, fail, In, Res, WireErrorKind};

impl SegmentKind {
    pub fn from_u8(v: u8) -> Option<SegmentKind> {
        Some(match v {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }

    /// Confederation segments (RFC 5065).
    pub fn is_confed(self) -> bool {
        matches!(self, SegmentKind::ConfedSequence | SegmentKind::ConfedSet)
    }
}

fn segment(as4: bool) -> impl FnMut(In<'_>) -> Res<'_, AsSegment> {
    move |input: In<'_>| {
        let (i, typ) = be_u8(input)?;
        let Some(kind) = SegmentKind::from_u8(typ) else {
            return fail(
                input,
                WireErrorKind::BadValue {
                    what: "as_path segment type",
                    got: u64::from(typ),
                },
            );
        };
        let (i, count) = be_u8(i)?;
        if count == 0 {
            return fail(
                input,
                WireErrorKind::BadLength {
                    what: "as_path segment",
                    got: 0,
                },
            );
        }
        let width = if as4 { 4 } else { 2 };
        let (i, body) = take(usize::from(count) * width)(i)?;
        let mut asns = Vec::with_capacity(usize::from(count));
        let mut b = body;
        while !b.is_empty() {
            let (rest, asn) = if as4 {
                be_u32(b)?
            } else {
                let (rest, a) = be_u16(b)?;
                (rest, u32::from(a))
            };
            asns.push(asn);
            b = rest;
        }
        Ok((i, AsSegment { kind, asns }))
    }
}

impl AsPath {
    /// Decodes an AS_PATH (or AS4_PATH, with `as4` = true) value.
    pub fn decode_value(value: &[u8], as4: bool) -> Result<AsPath, crate::wire::WireError> {
        exact(value, |i| {
            let (i, segments) = nom::multi::many0(segment(as4))(i)?;
            Ok((i, AsPath { segments }))
        })
    }

    /// A path of one AS_SEQUENCE.
    pub fn from_sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Bytes of the value with 4- or 2-octet ASNs (segments longer than 255 ASNs are
    /// split, empty segments are not written).
    pub fn value_len(&self, as4: bool) -> usize {
        let width = if as4 { 4 } else { 2 };
        self.segments
            .iter()
            .map(|s| 2 * s.asns.len().div_ceil(255) + width * s.asns.len())
            .sum()
    }

    /// Appends the value with 4- or 2-octet ASNs; in 2-octet form an ASN above 65535
    /// becomes AS_TRANS (RFC 6793 §4.2.2).
    pub fn encode_value(&self, as4: bool, out: &mut BytesMut) {
        for s in &self.segments {
            for chunk in s.asns.chunks(255) {
                out.put_u8(s.kind as u8);
                out.put_u8(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
                for asn in chunk {
                    if as4 {
                        out.put_u32(*asn);
                    } else {
                        out.put_u16(u16::try_from(*asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }

    /// Whether a 2-octet session needs AS4_PATH to carry this path (RFC 6793 §4.2.2).
    pub fn needs_as4_path(&self) -> bool {
        self.segments
            .iter()
            .filter(|s| !s.kind.is_confed())
            .any(|s| s.asns.iter().any(|a| *a > 0xffff))
    }

    /// The AS4_PATH to send: this path without confederation segments (RFC 6793 §3).
    pub fn as4_path(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned()
                .collect(),
        }
    }

    /// RFC 6793 §4.2.3: rebuild the path from the AS_PATH of a 2-octet session and
    /// the AS4_PATH. If AS_PATH counts fewer ASNs than AS4_PATH, AS4_PATH is ignored;
    /// otherwise the leading (count(AS_PATH) - count(AS4_PATH)) ASNs of AS_PATH are
    /// kept and AS4_PATH is appended. Confederation segments in AS4_PATH are dropped.
    pub fn merge_as4(&self, as4_path: &AsPath) -> AsPath {
        let as4_path = as4_path.as4_path();
        let (n, n4) = (self.len(), as4_path.len());
        if n < n4 {
            return self.clone();
        }
        let mut keep = n - n4;
        let mut segments = Vec::new();
        for s in &self.segments {
            match s.kind {
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => segments.push(s.clone()),
                SegmentKind::Set if keep > 0 => {
                    segments.push(s.clone());
                    keep -= 1;
                }
                SegmentKind::Sequence if keep > 0 => {
                    let take = keep.min(s.asns.len());
                    segments.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns.iter().take(take).copied().collect(),
                    });
                    keep -= take;
                }
                _ => {}
            }
        }
        // Join a trailing sequence with a leading AS4 sequence, as they were one.
        let mut rest = as4_path.segments.into_iter();
        if let (Some(last), Some(first)) = (segments.last_mut(), rest.as_slice().first()) {
            if last.kind == SegmentKind::Sequence && first.kind == SegmentKind::Sequence {
                last.asns.extend_from_slice(&first.asns);
                rest.next();
            }
        }
        segments.extend(rest);
        AsPath { segments }
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): each ASN of a
    /// sequence counts 1, a set counts 1, confederation segments count 0 (RFC 5065
    /// §5.3).
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .sum()
    }

    /// Whether the path has no segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// The path with `asn` prepended to the leading AS_SEQUENCE (or a new one),
    /// as a speaker does when sending to an external peer (RFC 4271 §5.1.2).
    pub fn prepend(&self, asn: u32) -> AsPath {
        let mut p = self.clone();
        match p.segments.first_mut() {
            Some(s) if s.kind == SegmentKind::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => p.segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn],
                },
            ),
        }
        p
    }

    /// The first ASN of a leading AS_SEQUENCE: the neighbouring AS that sent the path.
    pub fn first_asn(&self) -> Option<u32> {
        self.segments
            .iter()
            .find(|s| !s.kind.is_confed())
            .filter(|s| s.kind == SegmentKind::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    /// The last ASN of the last AS_SEQUENCE: the originating AS.
    pub fn origin_asn(&self) -> Option<u32> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.kind == SegmentKind::Sequence)
            .and_then(|s| s.asns.last().copied())
    }

    /// Whether any confederation segment is present.
    pub fn has_confed(&self) -> bool {
        self.segments.iter().any(|s| s.kind.is_confed())
    }
}

impl std::fmt::Display for AsPath {
    /// `65001 65002 {1 2} (3 4) [5]`: sets in braces, confed sequences in
    /// parentheses, confed sets in brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.segments {
            let (open, close) = match s.kind {
                SegmentKind::Sequence => ("", ""),
                SegmentKind::Set => ("{", "}"),
                SegmentKind::ConfedSequence => ("(", ")"),
                SegmentKind::ConfedSet => ("[", "]"),
            };
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            f.write_str(open)?;
            for (i, a) in s.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    pub fn arb_as_path() -> impl Strategy<Value = AsPath> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just(SegmentKind::Set),
                    Just(SegmentKind::Sequence),
                    Just(SegmentKind::ConfedSequence),
                    Just(SegmentKind::ConfedSet)
                ],
                proptest::collection::vec(any::<u32>(), 1..8),
            ),
            0..4,
        )
        .prop_map(|segs| AsPath {
            segments: segs
                .into_iter()
                .map(|(kind, asns)| AsSegment { kind, asns })
                .collect(),
        })
    }

    fn seq(a: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentKind::Sequence,
            asns: a.to_vec(),
        }
    }

    fn set(a: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentKind::Set,
            asns: a.to_vec(),
        }
    }

    #[test]
    fn helpers() {
        let p = AsPath {
            segments: vec![seq(&[65001, 65002]), set(&[1, 2])],
        };
        assert_eq!(p.to_string(), "65001 65002 {1 2}");
        assert_eq!(p.len(), 3);
        assert!(p.contains(2));
        assert!(!p.contains(3));
        assert_eq!(p.first_asn(), Some(65001));
        assert_eq!(p.prepend(7).to_string(), "7 65001 65002 {1 2}");
        assert_eq!(AsPath::default().prepend(7).to_string(), "7");
        assert_eq!(AsPath::default().first_asn(), None);
        let c = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![1, 2],
                },
                seq(&[3]),
            ],
        };
        assert_eq!(c.len(), 1);
        assert_eq!(c.to_string(), "(1 2) 3");
        assert_eq!(c.first_asn(), Some(3));
    }

    #[test]
    fn two_octet_decode() {
        let v = [2, 2, 0xfd, 0xe9, 0xfd, 0xea];
        let p = AsPath::decode_value(&v, false).unwrap();
        assert_eq!(p, AsPath::from_sequence(vec![65001, 65002]));
        let mut out = BytesMut::new();
        p.encode_value(false, &mut out);
        assert_eq!(&out[..], &v[..]);
    }

    #[test]
    fn rfc7606_7_2_malformed_segments() {
        // Bad segment type.
        assert!(AsPath::decode_value(&[5, 1, 0, 1], false).is_err());
        // Overrun.
        assert!(AsPath::decode_value(&[2, 2, 0, 1], false).is_err());
        // Zero-length segment.
        assert!(AsPath::decode_value(&[2, 0], false).is_err());
        // Partial segment header at the end.
        assert!(AsPath::decode_value(&[2, 1, 0, 1, 2], false).is_err());
        // Empty value is a valid empty path.
        assert_eq!(AsPath::decode_value(&[], true).unwrap(), AsPath::default());
    }

    #[test]
    fn long_sequence_split_on_encode() {
        let p = AsPath::from_sequence((0..300).collect());
        let mut out = BytesMut::new();
        p.encode_value(true, &mut out);
        assert_eq!(out.len(), p.value_len(true));
        let d = AsPath::decode_value(&out, true).unwrap();
        assert_eq!(d.segments.len(), 2);
        assert_eq!(d.len(), 300);
    }

    #[test]
    fn rfc6793_4_2_3_merge() {
        // AS_PATH 65001 23456 23456, AS4_PATH 4200000001 4200000002.
        let p = AsPath::from_sequence(vec![65001, 23456, 23456]);
        let p4 = AsPath::from_sequence(vec![4_200_000_001, 4_200_000_002]);
        assert_eq!(
            p.merge_as4(&p4),
            AsPath::from_sequence(vec![65001, 4_200_000_001, 4_200_000_002])
        );
        // AS4_PATH longer than AS_PATH: ignored.
        let short = AsPath::from_sequence(vec![23456]);
        assert_eq!(short.merge_as4(&p4), short);
        // A set in AS_PATH counts one.
        let p = AsPath {
            segments: vec![seq(&[1]), set(&[2, 3]), seq(&[23456])],
        };
        let p4 = AsPath::from_sequence(vec![4_200_000_000]);
        assert_eq!(
            p.merge_as4(&p4),
            AsPath {
                segments: vec![seq(&[1]), set(&[2, 3]), seq(&[4_200_000_000])]
            }
        );
    }

    proptest! {
        #[test]
        fn round_trip_as4(p in arb_as_path()) {
            let mut out = BytesMut::new();
            p.encode_value(true, &mut out);
            prop_assert_eq!(out.len(), p.value_len(true));
            prop_assert_eq!(AsPath::decode_value(&out, true).unwrap(), p);
        }

        #[test]
        fn two_octet_plus_as4_path_recovers_path(p in arb_as_path()) {
            // What a 2-octet session carries: AS_PATH with AS_TRANS, plus AS4_PATH.
            let mut out = BytesMut::new();
            p.encode_value(false, &mut out);
            prop_assert_eq!(out.len(), p.value_len(false));
            let two = AsPath::decode_value(&out, false).unwrap();
            let merged = if p.needs_as4_path() { two.merge_as4(&p.as4_path()) } else { two };
            prop_assert_eq!(merged.len(), p.len());
            prop_assert_eq!(merged.as4_path().to_string(), p.as4_path().to_string());
        }

        #[test]
        fn decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64), as4: bool) {
            let _ = AsPath::decode_value(&v, as4);
        }
    }
}
