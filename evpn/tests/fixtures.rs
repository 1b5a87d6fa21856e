//! Real FRR 8.4 and GoBGP 3.10 UPDATEs (evpn/tests/fixtures/**/*.hex): every EVPN
//! NLRI decodes, re-encodes byte for byte, and says what the capture's comments say
//! it says; the communities and PMSI_TUNNEL read as expected; and what vxbgp
//! originates matches what FRR sends.
//!
//! The UPDATE is walked by a small scanner here (header, withdrawn routes, path
//! attributes) so that this test depends on nothing but the evpn crate. The captures
//! are committed, so a missing one fails the test: it never passes with nothing to check.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use bgp::af::AddressFamily;
use bgp::wire::{ExtCommunity, PmsiTunnel};
use bytes::BytesMut;
use evpn::ext_comm::RouteTarget;
use evpn::{
    classify, decode_pmsi, originate, EvpnExtCommunity, EvpnRoute, L2vpnEvpn, MacAddr,
    RouteDistinguisher, Vni,
};

/// One fixture: its comment lines and the message bytes.
struct Fixture {
    name: String,
    comments: Vec<String>,
    bytes: Vec<u8>,
}

/// What the scanner finds in an UPDATE.
#[derive(Default)]
struct Scanned {
    /// EVPN NLRI blocks of MP_REACH_NLRI (true) / MP_UNREACH_NLRI (false), in order.
    blocks: Vec<(bool, Vec<u8>)>,
    ext_communities: Vec<ExtCommunity>,
    pmsi: Option<PmsiTunnel>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn find_hex(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_hex(&p, out);
        } else if p.extension().is_some_and(|x| x == "hex") {
            out.push(p);
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let pairs = digits.chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd number of hex digits");
    pairs
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn load() -> Vec<Fixture> {
    let mut paths = Vec::new();
    find_hex(&fixtures_dir(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let (comments, hex): (Vec<&str>, Vec<&str>) =
                text.lines().partition(|l| l.trim_start().starts_with('#'));
            Fixture {
                name: p
                    .strip_prefix(fixtures_dir())
                    .unwrap()
                    .display()
                    .to_string(),
                comments: comments.into_iter().map(str::to_owned).collect(),
                bytes: unhex(&hex.concat()),
            }
        })
        .collect()
}

fn load_all() -> Option<Vec<Fixture>> {
    let fixtures = load();
    assert!(
        !fixtures.is_empty(),
        "no *.hex fixture under {}",
        fixtures_dir().display()
    );
    Some(fixtures)
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

/// Walks one whole UPDATE (RFC 4271 §4.3, RFC 4760 §3-4).
fn scan(name: &str, msg: &[u8]) -> Scanned {
    assert!(msg.len() >= 23, "{name}: too short");
    assert_eq!(&msg[..16], &[0xff; 16], "{name}: marker");
    assert_eq!(be16(msg, 16), msg.len(), "{name}: header length");
    assert_eq!(msg[18], 2, "{name}: not an UPDATE");
    let body = &msg[19..];
    let withdrawn = be16(body, 0);
    let attrs_len = be16(body, 2 + withdrawn);
    let attrs = &body[4 + withdrawn..4 + withdrawn + attrs_len];
    let mut found = Scanned::default();
    let mut pos = 0;
    while pos < attrs.len() {
        let flags = attrs[pos];
        let code = attrs[pos + 1];
        let (len, hdr) = if flags & 0x10 != 0 {
            (be16(attrs, pos + 2), 4)
        } else {
            (usize::from(attrs[pos + 2]), 3)
        };
        let value = &attrs[pos + hdr..pos + hdr + len];
        pos += hdr + len;
        match code {
            // AFI(2) SAFI(1) NH len(1) NH Reserved(1) NLRI
            14 if be16(value, 0) == 25 && value[2] == 70 => {
                let nh = usize::from(value[3]);
                found.blocks.push((true, value[5 + nh..].to_vec()));
            }
            // AFI(2) SAFI(1) NLRI
            15 if be16(value, 0) == 25 && value[2] == 70 => {
                found.blocks.push((false, value[3..].to_vec()));
            }
            16 => {
                assert_eq!(value.len() % 8, 0, "{name}: extended communities length");
                found.ext_communities = value
                    .chunks(8)
                    .map(|c| ExtCommunity(c.try_into().unwrap()))
                    .collect();
            }
            22 => {
                found.pmsi = Some(PmsiTunnel {
                    flags: value[0],
                    tunnel_type: value[1],
                    label: value[2..5].try_into().unwrap(),
                    tunnel_id: value[5..].into(),
                });
            }
            _ => {}
        }
    }
    assert_eq!(pos, attrs.len(), "{name}: attribute framing");
    found
}

/// Decodes every EVPN block of a fixture, checking the byte-exact re-encoding.
fn routes_of(f: &Fixture) -> (Scanned, Vec<(bool, EvpnRoute)>) {
    let scanned = scan(&f.name, &f.bytes);
    let mut routes = Vec::new();
    for (reach, block) in &scanned.blocks {
        let decoded = L2vpnEvpn::decode_nlri(block).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let mut out = BytesMut::new();
        for r in &decoded {
            L2vpnEvpn::encode_nlri(r, &mut out);
        }
        assert_eq!(&out[..], &block[..], "{}: re-encoding differs", f.name);
        let len: usize = decoded.iter().map(L2vpnEvpn::nlri_len).sum();
        assert_eq!(len, block.len(), "{}: nlri_len", f.name);
        routes.extend(decoded.into_iter().map(|r| (*reach, r)));
    }
    (scanned, routes)
}

/// The value after `label` in a comment's comma-separated description.
fn field<'a>(desc: &'a str, label: &str) -> &'a str {
    desc.split(", ")
        .find_map(|part| part.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {desc:?}"))
        .trim()
}

fn label_bytes(desc: &str) -> [u8; 3] {
    let s = desc.split("label bytes ").nth(1).unwrap();
    let b = unhex(&s[..8]);
    [b[0], b[1], b[2]]
}

/// Checks one decoded route against the comment line describing it, e.g.
/// `type-2 MAC/IP (len 37): RD type 1 198.19.7.1:2, ESI 0 (single-homed),
/// eth-tag 0, MAC 02:00:00:00:00:07 (len 48), IP len 32 198.18.7.2, label1 label
/// bytes 00 00 2a (...)`.
fn check_against_comment(name: &str, line: &str, reach: bool, route: &EvpnRoute) {
    let line = line.trim_start_matches('#').trim();
    let withdraw = line.starts_with("withdraw ");
    assert_eq!(withdraw, !reach, "{name}: {line}");
    let line = line.trim_start_matches("withdraw ");
    let route_type: u8 = line[5..6].parse().unwrap();
    assert_eq!(route.route_type(), route_type, "{name}: {line}");
    let len: usize = line
        .split("(len ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(route.encoded_len(), len + 2, "{name}: {line}");
    let desc = line.split_once("): ").unwrap().1;
    let rd = field(desc, "RD type ");
    let rd_text = rd.split_once(' ').unwrap().1;
    assert_eq!(
        route.rd().map(|r| r.to_string()).as_deref(),
        Some(rd_text),
        "{name}"
    );
    match route {
        EvpnRoute::MacIp(r) => {
            assert_eq!(
                r.mac.to_string(),
                field(desc, "MAC ").trim_end_matches(" (len 48)")
            );
            let ip = field(desc, "IP len ");
            match ip.split_once(' ') {
                Some(("0", _)) => assert_eq!(r.ip, None, "{name}"),
                Some((_, addr)) => assert_eq!(r.ip, Some(addr.parse().unwrap()), "{name}"),
                None => panic!("{name}: {ip}"),
            }
            let esi = field(desc, "ESI ");
            if esi.starts_with("0 ") {
                assert!(r.esi.is_zero(), "{name}");
            } else {
                assert_eq!(r.esi.to_string(), esi, "{name}");
            }
            assert_eq!(r.eth_tag.to_string(), field(desc, "eth-tag "), "{name}");
            assert_eq!(r.label1.0, label_bytes(desc), "{name}");
            assert_eq!(route.vni().map(Vni::get), Some(r.label1.value()));
        }
        EvpnRoute::Imet(r) => {
            assert_eq!(r.eth_tag.to_string(), field(desc, "eth-tag "), "{name}");
            let orig = field(desc, "originator IP len ");
            let addr = orig.split_once(' ').unwrap().1;
            assert_eq!(r.originator, addr.parse::<IpAddr>().unwrap(), "{name}");
        }
        EvpnRoute::Opaque { route_type, body } => {
            assert!(matches!(route_type, 1 | 4 | 5), "{name}: {line}");
            if *route_type != 4 {
                assert_eq!(
                    route.eth_tag().map(|t| t.to_string()).as_deref(),
                    Some(field(desc, "eth-tag "))
                );
                assert_eq!(&body[body.len() - 3..], &label_bytes(desc), "{name}");
            }
        }
    }
}

/// The comment's wording for an extended community.
fn comment_text(c: &EvpnExtCommunity) -> String {
    match c {
        EvpnExtCommunity::RouteTarget(RouteTarget::As2 { asn, value }) => {
            format!("route-target 2-octet-AS {asn}:{value}")
        }
        EvpnExtCommunity::Encapsulation { tunnel_type: 8 } => {
            "encapsulation tunnel type 8 (VXLAN)".to_owned()
        }
        EvpnExtCommunity::RouterMac(mac) => format!("EVPN router's MAC {mac}"),
        other => format!("{other}"),
    }
}

#[test]
fn every_fixture_decodes_reencodes_and_matches_its_comments() {
    let Some(fixtures) = load_all() else {
        return;
    };
    let mut routes_seen = 0;
    for f in &fixtures {
        let (scanned, routes) = routes_of(f);
        let route_lines: Vec<&String> = f
            .comments
            .iter()
            .filter(|l| {
                // `type-N <name> (len L): ...`, not a wrapped line of prose.
                let t = l.trim_start_matches('#').trim_start();
                let t = t.strip_prefix("withdraw ").unwrap_or(t);
                t.starts_with("type-") && t.contains(" (len ") && t.contains("): ")
            })
            .collect();
        assert_eq!(route_lines.len(), routes.len(), "{}: route count", f.name);
        for (line, (reach, route)) in route_lines.iter().zip(&routes) {
            check_against_comment(&f.name, line, *reach, route);
        }
        routes_seen += routes.len();

        if let Some(line) = f
            .comments
            .iter()
            .find(|l| l.contains("EXTENDED_COMMUNITIES ("))
        {
            let listed = line.split_once("): ").unwrap().1.trim();
            let ours: Vec<String> = scanned
                .ext_communities
                .iter()
                .map(|c| comment_text(&classify(c)))
                .collect();
            assert_eq!(ours.join(", "), listed, "{}", f.name);
        }
        if let Some(p) = &scanned.pmsi {
            let line = f
                .comments
                .iter()
                .find(|l| l.contains("PMSI_TUNNEL ("))
                .unwrap();
            let view = decode_pmsi(p);
            assert_eq!(view.tunnel_type_name, "ingress-replication", "{}", f.name);
            assert_eq!(view.label.0, label_bytes(line), "{}", f.name);
            let id = line.rsplit("tunnel id ").next().unwrap().trim();
            assert_eq!(view.endpoint, Some(id.parse().unwrap()), "{}", f.name);
        }
    }
    assert!(routes_seen > 0, "no EVPN route in any fixture");
}

fn fixture(fixtures: &[Fixture], name: &str) -> Option<(Scanned, Vec<(bool, EvpnRoute)>)> {
    // The named captures are committed: a missing one is a failure, not a skip.
    let f = fixtures.iter().find(|f| f.name == name);
    assert!(f.is_some(), "fixture {name} is missing");
    f.map(routes_of)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn frr_and_gobgp_type2_type3_values() {
    let Some(fx) = load_all() else {
        return;
    };
    let vni42 = Vni::new(42).unwrap();
    // (file, RD, MAC, IP) of the type-2 routes.
    let type2 = [
        (
            "frr/type2_mac_ip_v4.hex",
            "198.19.7.1:2",
            "02:00:00:00:00:07",
            Some(v4(198, 18, 7, 2)),
        ),
        (
            "frr/type2_mac.hex",
            "198.19.7.1:2",
            "02:00:00:00:00:07",
            None,
        ),
        (
            "gobgp/type2_mac_ip_v4.hex",
            "198.19.7.2:42",
            "02:00:00:00:07:03",
            Some(v4(198, 18, 7, 3)),
        ),
        (
            "gobgp/type2_mac.hex",
            "198.19.7.2:42",
            "02:00:00:00:07:04",
            None,
        ),
    ];
    for (name, rd, mac, ip) in type2 {
        let Some((_, routes)) = fixture(&fx, name) else {
            continue;
        };
        let [(true, EvpnRoute::MacIp(r))] = &routes[..] else {
            panic!("{name}: {routes:?}");
        };
        assert_eq!(r.rd, rd.parse::<RouteDistinguisher>().unwrap(), "{name}");
        assert_eq!(r.mac, mac.parse::<MacAddr>().unwrap(), "{name}");
        assert_eq!(r.ip, ip, "{name}");
        assert_eq!(r.label1.vni(), vni42, "{name}");
        assert_eq!(r.label2, None, "{name}");
    }
    // (file, RD, originator) of the type-3 routes; PMSI label = VNI 42.
    let type3 = [
        ("frr/type3_imet.hex", "198.19.7.1:2", v4(198, 19, 7, 1)),
        ("gobgp/type3_imet.hex", "198.19.7.2:42", v4(198, 19, 7, 2)),
    ];
    for (name, rd, originator) in type3 {
        let Some((scanned, routes)) = fixture(&fx, name) else {
            continue;
        };
        let [(true, EvpnRoute::Imet(r))] = &routes[..] else {
            panic!("{name}: {routes:?}");
        };
        assert_eq!(r.rd.to_string(), rd, "{name}");
        assert_eq!(r.originator, originator, "{name}");
        assert_eq!(routes[0].1.vni(), None, "{name}");
        let pmsi = decode_pmsi(scanned.pmsi.as_ref().unwrap());
        assert_eq!(pmsi.vni, vni42, "{name}");
        assert_eq!(pmsi.endpoint, Some(originator), "{name}");
    }
}

/// vxbgp's type-3 route and attributes for VNI 42 equal FRR's (communities as a
/// set: FRR lists the encapsulation first, we sort by octets), including the auto
/// RT rule for 2- and 4-octet ASNs.
#[test]
fn originated_routes_match_frr() {
    let Some(fx) = load_all() else {
        return;
    };
    let vni42 = Vni::new(42).unwrap();
    for (name, asn, router_id) in [
        ("frr/type3_imet.hex", 65001u32, Ipv4Addr::new(198, 19, 7, 1)),
        (
            "frr/as4_type3_imet.hex",
            4_200_000_001,
            Ipv4Addr::new(198, 19, 9, 1),
        ),
    ] {
        let Some((scanned, routes)) = fixture(&fx, name) else {
            continue;
        };
        let rt = originate::auto_rt(asn, vni42);
        let (route, attrs) = originate::imet(
            originate::auto_rd(router_id, 2),
            vni42,
            IpAddr::V4(router_id),
            &[rt],
        );
        assert_eq!(routes[0].1, route, "{name}");
        let mut theirs = scanned.ext_communities.clone();
        theirs.sort();
        assert_eq!(attrs.ext_communities, Some(theirs), "{name}");
        assert_eq!(attrs.pmsi_tunnel, scanned.pmsi, "{name}");
    }
    // FRR with a 4-octet ASN sends a 2-octet-AS RT with the low 16 bits.
    assert_eq!(
        originate::auto_rt(4_200_000_001, vni42).to_string(),
        "59905:42"
    );
}

/// A withdrawal names the same destination as the announcement even though FRR
/// writes label 0 in withdrawn NLRI (and GoBGP keeps the label).
#[test]
fn withdrawals_match_announcements_by_key() {
    let Some(fx) = load_all() else {
        return;
    };
    for (announce, withdraw) in [
        ("frr/type2_mac_ip_v4.hex", "frr/withdraw_type2.hex"),
        ("frr/type2_mac.hex", "frr/withdraw_type2.hex"),
        ("frr/type2_mac_ip_v6.hex", "frr/withdraw_type2.hex"),
        ("gobgp/type2_mac.hex", "gobgp/withdraw_type2_mac.hex"),
    ] {
        let (Some((_, ann)), Some((_, wd))) = (fixture(&fx, announce), fixture(&fx, withdraw))
        else {
            continue;
        };
        let key = L2vpnEvpn::key(&ann[0].1);
        assert!(
            wd.iter()
                .any(|(reach, r)| !reach && L2vpnEvpn::key(r) == key),
            "{withdraw} does not withdraw {announce}"
        );
    }
}

/// Opaque types (1, 4, 5) from GoBGP keep their RD and re-encode exactly (the
/// byte-exact part is checked for every fixture above).
#[test]
fn opaque_types_from_gobgp() {
    let Some(fx) = load_all() else {
        return;
    };
    for (name, route_type) in [
        ("gobgp/type1_ethernet_ad.hex", 1u8),
        ("gobgp/type4_ethernet_segment.hex", 4),
        ("gobgp/type5_prefix_v4.hex", 5),
        ("gobgp/type5_prefix_v6.hex", 5),
    ] {
        let Some((_, routes)) = fixture(&fx, name) else {
            continue;
        };
        let [(true, r @ EvpnRoute::Opaque { .. })] = &routes[..] else {
            panic!("{name}: {routes:?}");
        };
        assert_eq!(r.route_type(), route_type, "{name}");
        assert_eq!(
            r.rd().map(|rd| rd.to_string()).as_deref(),
            Some("198.19.7.2:42")
        );
        assert!(r.to_string().starts_with(&format!("[{route_type}]:")));
    }
}
