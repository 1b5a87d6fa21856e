//! Errors of the EVPN codec and the small nom field readers every wire object uses.
//!
//! Decoding follows STYLE rule 2: the NLRI loop frames a route (type, length), then
//! the route's decoder runs on exactly that body through `decode_exact`, which
//! turns left-over bytes into [`ErrorKind::TrailingBytes`]. Every error carries the
//! offset of the field that failed, so `decode_nlri` can report where in the block
//! the problem is.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp::af::NlriError;
use nom::bytes::complete::take;
use nom::error::ParseError;
use nom::number::complete::{be_u32, be_u8};
use nom::IResult;

/// What was wrong with an EVPN route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside this field.
    Truncated { field: &'static str },
    /// The route's length octet claims more bytes than the block holds.
    BadRouteLength { declared: u8, available: usize },
    /// MAC Address Length other than 48 bits (RFC 7432 §7.2).
    BadMacLength(u8),
    /// IP Address Length not allowed here (RFC 7432 §7.2: 0, 32 or 128; §7.3: 32
    /// or 128).
    BadIpLength(u8),
    /// Bytes left over after the last field of the route.
    TrailingBytes(usize),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { field } => write!(f, "truncated in {field}"),
            Self::BadRouteLength {
                declared,
                available,
            } => write!(
                f,
                "route length {declared} exceeds the {available} bytes left"
            ),
            Self::BadMacLength(len) => write!(f, "MAC address length {len} (must be 48)"),
            Self::BadIpLength(len) => write!(f, "bad IP address length {len}"),
            Self::TrailingBytes(n) => write!(f, "{n} trailing bytes after the route"),
        }
    }
}

/// A decoding error with the offset (into the decoded slice) of the bad field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvpnError {
    pub offset: usize,
    pub kind: ErrorKind,
}

impl EvpnError {
    /// The same error, located `by` bytes further into an enclosing slice.
    pub fn shifted(self, by: usize) -> Self {
        Self {
            offset: self.offset.saturating_add(by),
            kind: self.kind,
        }
    }
}

impl fmt::Display for EvpnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for EvpnError {}

impl From<EvpnError> for NlriError {
    fn from(e: EvpnError) -> Self {
        NlriError {
            offset: e.offset,
            reason: e.kind.to_string(),
        }
    }
}

/// Text that is not a valid RD, RT, MAC, ESI or VNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseTextError {
    /// What was being parsed ("route distinguisher", "MAC address", ...).
    pub what: &'static str,
    /// The text given.
    pub text: String,
    /// Why it was refused, with the expected form.
    pub reason: &'static str,
}

impl ParseTextError {
    pub(crate) fn new(what: &'static str, text: &str, reason: &'static str) -> Self {
        Self {
            what,
            text: text.to_owned(),
            reason,
        }
    }
}

impl fmt::Display for ParseTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.what, self.text, self.reason)
    }
}

impl std::error::Error for ParseTextError {}

/// The nom error of this crate: where it happened (the rest of the input at the
/// failing field) and what it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PError<'a> {
    pub rest: &'a [u8],
    pub kind: ErrorKind,
}

impl<'a> ParseError<&'a [u8]> for PError<'a> {
    fn from_error_kind(input: &'a [u8], _kind: nom::error::ErrorKind) -> Self {
        Self {
            rest: input,
            kind: ErrorKind::Truncated { field: "input" },
        }
    }

    fn append(_input: &'a [u8], _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T, PError<'a>>;

/// A failure of `kind` at the field starting at `rest`.
pub(crate) fn fail<T>(rest: &[u8], kind: ErrorKind) -> PResult<'_, T> {
    Err(nom::Err::Error(PError { rest, kind }))
}

fn truncated<'a>(rest: &'a [u8], field: &'static str) -> nom::Err<PError<'a>> {
    nom::Err::Error(PError {
        rest,
        kind: ErrorKind::Truncated { field },
    })
}

/// Reads `N` bytes as an array.
pub(crate) fn array<'a, const N: usize>(
    input: &'a [u8],
    field: &'static str,
) -> PResult<'a, [u8; N]> {
    let (rest, bytes) =
        take::<usize, &[u8], PError<'_>>(N)(input).map_err(|_| truncated(input, field))?;
    let arr = <[u8; N]>::try_from(bytes).map_err(|_| truncated(input, field))?;
    Ok((rest, arr))
}

/// Reads one octet.
pub(crate) fn u8_field<'a>(input: &'a [u8], field: &'static str) -> PResult<'a, u8> {
    be_u8::<&[u8], PError<'_>>(input).map_err(|_| truncated(input, field))
}

/// Reads a big-endian u32.
pub(crate) fn u32_field<'a>(input: &'a [u8], field: &'static str) -> PResult<'a, u32> {
    be_u32::<&[u8], PError<'_>>(input).map_err(|_| truncated(input, field))
}

/// Reads an IP address of `bits` length (32 or 128); any other length is
/// `BadIpLength`, reported at `len_at` (the length octet).
pub(crate) fn ip_of_len<'a>(
    input: &'a [u8],
    bits: u8,
    len_at: &'a [u8],
    field: &'static str,
) -> PResult<'a, IpAddr> {
    match bits {
        32 => {
            let (rest, a) = array::<4>(input, field)?;
            Ok((rest, IpAddr::V4(Ipv4Addr::from(a))))
        }
        128 => {
            let (rest, a) = array::<16>(input, field)?;
            Ok((rest, IpAddr::V6(Ipv6Addr::from(a))))
        }
        other => fail(len_at, ErrorKind::BadIpLength(other)),
    }
}

/// Length in bits of an address as carried in EVPN routes.
pub(crate) fn ip_bits(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Appends an address's octets.
pub(crate) fn put_ip(ip: &IpAddr, out: &mut bytes::BytesMut) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// Runs `parser` over exactly `body` and requires every byte consumed.
pub(crate) fn decode_exact<'a, T>(
    body: &'a [u8],
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, EvpnError> {
    let offset_of = |rest: &[u8]| body.len().saturating_sub(rest.len());
    match parser(body) {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(EvpnError {
            offset: offset_of(rest),
            kind: ErrorKind::TrailingBytes(rest.len()),
        }),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(EvpnError {
            offset: offset_of(e.rest),
            kind: e.kind,
        }),
        // Only streaming parsers return Incomplete; ours are all `complete`.
        Err(nom::Err::Incomplete(_)) => Err(EvpnError {
            offset: body.len(),
            kind: ErrorKind::Truncated { field: "input" },
        }),
    }
}

/// Lower-case hex of `bytes`, for displaying what is kept raw.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Serialize as the `Display` text and deserialize through `FromStr`, so JSON carries
/// identifiers the way a person writes them ("65001:42", "aa:bb:cc:dd:ee:ff").
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_as_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reports_trailing_bytes_and_offsets() {
        let body = [1u8, 2, 3, 4, 5];
        let r = decode_exact(&body, |i| array::<3>(i, "x"));
        assert_eq!(
            r,
            Err(EvpnError {
                offset: 3,
                kind: ErrorKind::TrailingBytes(2)
            })
        );
        let r = decode_exact(&body[..4], |i| {
            let (i, _) = u8_field(i, "a")?;
            u32_field(i, "b")
        });
        assert_eq!(
            r,
            Err(EvpnError {
                offset: 1,
                kind: ErrorKind::Truncated { field: "b" }
            })
        );
    }

    #[test]
    fn ip_lengths() {
        let body = [198u8, 19, 0, 1];
        let r = decode_exact(&body, |i| ip_of_len(i, 32, i, "ip"));
        assert_eq!(r, Ok(IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1))));
        let r = decode_exact(&body, |i| ip_of_len(i, 24, i, "ip"));
        assert_eq!(r.map_err(|e| e.kind), Err(ErrorKind::BadIpLength(24)));
        let r = decode_exact(&body, |i| ip_of_len(i, 128, i, "ip"));
        assert_eq!(
            r.map_err(|e| e.kind),
            Err(ErrorKind::Truncated { field: "ip" })
        );
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
    }
}
