//! Real-peer captures (FRR 8.4, GoBGP 3.10) decode cleanly and re-encode.
//!
//! Every `*.hex` under `bgp/tests/fixtures` and `evpn/tests/fixtures/**` is one whole
//! message. Each must decode without any RFC 7606 problem (on an iBGP or an eBGP
//! 4-octet-AS session, whichever the capture came from) and re-encode:
//! - byte-exact for OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH and for UPDATEs
//!   whose layout is vxbgp's own (MP attributes first, extended length only when
//!   needed);
//! - OPENs whose capabilities were packed differently (GoBGP puts all in one
//!   optional parameter, FRR one each) must give the same capability bytes in order;
//! - otherwise (FRR always sets Extended Length on AS_PATH; GoBGP puts MP_REACH in
//!   type-code order without Extended Length) every attribute's value must come out
//!   byte-exact, the withdrawn routes and NLRI too, and the re-encoded message must
//!   decode to the same value. A canonical encoder cannot reproduce both peers'
//!   layouts at once.

use std::path::{Path, PathBuf};

use bgp::wire::{DecodeCtx, EncodeCtx, Message};

fn hex_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            hex_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "hex") {
            out.push(p);
        }
    }
}

fn read_hex(p: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(p).unwrap();
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| c.is_ascii_hexdigit()))
        .collect();
    assert!(
        hex.len().is_multiple_of(2),
        "{}: odd number of hex digits",
        p.display()
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// (flags without Extended Length, code, value) of every attribute in a block.
fn attributes(mut block: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut v = Vec::new();
    while !block.is_empty() {
        let (f, c) = (block[0], block[1]);
        let (len, hdr) = if f & 0x10 != 0 {
            (u16::from_be_bytes([block[2], block[3]]) as usize, 4)
        } else {
            (block[2] as usize, 3)
        };
        v.push((f & !0x10, c, block[hdr..hdr + len].to_vec()));
        block = &block[hdr + len..];
    }
    v.sort();
    v
}

/// (withdrawn, sorted attributes, nlri) of an UPDATE frame.
#[allow(clippy::type_complexity)]
fn update_parts(frame: &[u8]) -> (Vec<u8>, Vec<(u8, u8, Vec<u8>)>, Vec<u8>) {
    let body = &frame[19..];
    let wl = u16::from_be_bytes([body[0], body[1]]) as usize;
    let withdrawn = body[2..2 + wl].to_vec();
    let rest = &body[2 + wl..];
    let al = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    (
        withdrawn,
        attributes(&rest[2..2 + al]),
        rest[2 + al..].to_vec(),
    )
}

/// The capability TLVs of an OPEN frame, concatenated in order (GoBGP packs them
/// in one optional parameter, FRR sends one parameter each; vxbgp does as FRR).
fn open_capabilities(frame: &[u8]) -> Vec<u8> {
    let mut params = &frame[29..];
    let mut caps = Vec::new();
    while !params.is_empty() {
        assert_eq!(params[0], 2, "only capabilities parameters expected");
        let len = params[1] as usize;
        caps.extend_from_slice(&params[2..2 + len]);
        params = &params[2 + len..];
    }
    caps
}

#[test]
fn fixtures_decode_and_reencode() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    hex_files(&root.join("tests/fixtures"), &mut files);
    hex_files(&root.join("../evpn/tests/fixtures"), &mut files);
    files.sort();
    // The captures are committed: finding none means the test would prove nothing.
    assert!(
        files.len() >= 10,
        "only {} fixture files under tests/fixtures and ../evpn/tests/fixtures",
        files.len()
    );
    let enc = EncodeCtx { as4: true };
    let mut exact = 0;
    for p in &files {
        let frame = read_hex(p);
        let name = p.display();
        let decoded = [true, false].iter().find_map(|&ibgp| {
            let ctx = DecodeCtx { as4: true, ibgp };
            match Message::decode(&frame, &ctx) {
                Ok(d) if d.errors.is_empty() => Some((d.value, ctx)),
                _ => None,
            }
        });
        let Some((msg, ctx)) = decoded else {
            panic!(
                "{name}: does not decode cleanly: {:?}",
                Message::decode(
                    &frame,
                    &DecodeCtx {
                        as4: true,
                        ibgp: true
                    }
                )
            );
        };
        let again = msg.to_bytes(&enc);
        assert_eq!(again.len(), msg.encoded_len(&enc), "{name}");
        if again[..] == frame[..] {
            exact += 1;
            continue;
        }
        match msg {
            Message::Update(_) => {
                assert_eq!(update_parts(&again), update_parts(&frame), "{name}")
            }
            Message::Open(_) => {
                assert_eq!(again[19..28], frame[19..28], "{name}");
                assert_eq!(
                    open_capabilities(&again),
                    open_capabilities(&frame),
                    "{name}"
                );
            }
            _ => panic!(
                "{name}: re-encoded differently:\n{frame:02x?}\n{:02x?}",
                &again[..]
            ),
        }
        assert_eq!(Message::decode(&again, &ctx).unwrap().value, msg, "{name}");
    }
    eprintln!("{} fixtures, {exact} byte-exact", files.len());
}
