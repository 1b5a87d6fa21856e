//! Bad input never takes down the daemon or another session (RFC 7606, RFC 4271 §6).
//!
//! Lab: vxbgp (host 0, AS 65001) with two iBGP neighbours: a good one, real GoBGP (host 1)
//! with a route, and a raw BGP peer written here (host 2) that sends hand-built bytes.
//!
//! The raw peer's TCP connection must start inside host 2's namespace, and the test
//! process cannot enter a namespace without `unsafe` (forbidden in this workspace). So
//! each connection is made by a relay: this test binary re-run inside the namespace
//! (`ip netns exec <host2> <this binary> relay_helper --ignored`) connects to vxbgp and
//! copies bytes between that TCP connection and a Unix socket the test listens on
//! (Unix sockets are not per network namespace). The relay passes EOF both ways, so the
//! test sees vxbgp closing the session as EOF.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use bgp::wire::header;
use bgp::wire::notification::codes;
use bgp::wire::{Capability, DecodeCtx, EncodeCtx, Message, NotificationMsg, OpenMsg, HEADER_LEN};
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(30);
const RELAY_ENV: &str = "VXBGP_TEST_RELAY";
const ASN: u32 = 65001;

// ---------------------------------------------------------------------------------------
// The relay (runs in the raw peer's namespace).

/// Not a test: the relay process the raw peer uses (see the module docs). Does nothing
/// unless started by [`RawPeer::connect`] with `VXBGP_TEST_RELAY=<target>|<unix path>`.
#[test]
#[ignore = "helper process started by the other tests"]
fn relay_helper() {
    let Ok(spec) = std::env::var(RELAY_ENV) else {
        return;
    };
    let (target, path) = spec.split_once('|').expect("target|path");
    let ux = UnixStream::connect(path).expect("connect to the test's unix socket");
    let target: SocketAddr = target.parse().expect("target address");
    let tcp = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("relay: connect {target}: {e}");
            return; // dropping `ux` tells the test: EOF
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut ux_r, mut tcp_w) = (
        ux.try_clone().expect("clone"),
        tcp.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut ux_r, &mut tcp_w);
        let _ = tcp_w.shutdown(Shutdown::Write);
    });
    let (mut tcp_r, mut ux_w) = (tcp, ux);
    let r = std::io::copy(&mut tcp_r, &mut ux_w);
    eprintln!("relay: from {target}: {r:?}");
    let _ = ux_w.shutdown(Shutdown::Write);
}

// ---------------------------------------------------------------------------------------
// Message building (literal bytes, so malformed variants are easy to make).

fn frame(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = header::MARKER.to_vec();
    v.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(body);
    v
}

fn keepalive() -> Vec<u8> {
    frame(4, &[])
}

/// Our OPEN: AS 65001 (4-octet AS capability), hold 240 s, MP L2VPN/EVPN, route refresh.
fn open(id: Ipv4Addr) -> Vec<u8> {
    let caps = vec![
        Capability::MultiProtocol { afi: 25, safi: 70 },
        Capability::RouteRefresh,
    ];
    Message::Open(OpenMsg::new(ASN, 240, id, caps))
        .to_bytes(&EncodeCtx::default())
        .to_vec()
}

/// One path attribute (extended length when the value needs it).
fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    if value.len() > 255 {
        let mut v = vec![flags | 0x10, code];
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    } else {
        let mut v = vec![flags & !0x10, code, value.len() as u8];
        v.extend_from_slice(value);
        v
    }
}

fn mp_reach(next_hop: Ipv4Addr, nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 25, 70, 4];
    v.extend_from_slice(&next_hop.octets());
    v.push(0);
    v.extend_from_slice(nlri);
    attr(0x80, 14, &v)
}

fn origin(value: u8) -> Vec<u8> {
    attr(0x40, 1, &[value])
}

fn as_path_empty() -> Vec<u8> {
    attr(0x40, 2, &[])
}

fn local_pref(v: u32) -> Vec<u8> {
    attr(0x40, 5, &v.to_be_bytes())
}

/// RT 65001:42 and the VXLAN encapsulation (tunnel type 8).
fn ext_communities() -> Vec<u8> {
    attr(
        0xc0,
        16,
        &[
            0x00, 0x02, 0xfd, 0xe9, 0, 0, 0, 42, // RT 65001:42
            0x03, 0x0c, 0, 0, 0, 0, 0, 8, // encapsulation: VXLAN
        ],
    )
}

/// An UPDATE with no withdrawn routes and no IPv4 NLRI: just these attributes.
fn update(attrs: &[Vec<u8>]) -> Vec<u8> {
    let block: Vec<u8> = attrs.concat();
    let mut body = vec![0, 0];
    body.extend_from_slice(&(block.len() as u16).to_be_bytes());
    body.extend_from_slice(&block);
    frame(2, &body)
}

/// EVPN type-2 NLRI: RD <rd_ip>:42 (type 1), ESI 0, etag 0, MAC, IPv4, label = VNI 42.
fn mac_ip_nlri(rd_ip: Ipv4Addr, mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0, 1];
    v.extend_from_slice(&rd_ip.octets());
    v.extend_from_slice(&[0, 42]);
    v.extend_from_slice(&[0; 10]); // ESI
    v.extend_from_slice(&[0; 4]); // Ethernet tag
    v.push(48);
    v.extend_from_slice(&mac);
    v.push(32);
    v.extend_from_slice(&ip.octets());
    v.extend_from_slice(&[0, 0, 42]); // label 1 = VNI 42
    let mut n = vec![2, v.len() as u8];
    n.extend_from_slice(&v);
    n
}

/// The attributes of a well-formed iBGP announcement of `nlri` with next hop `nh`.
fn good_attrs(nh: Ipv4Addr, nlri: &[u8]) -> Vec<Vec<u8>> {
    vec![
        mp_reach(nh, nlri),
        origin(0),
        as_path_empty(),
        local_pref(100),
        ext_communities(),
    ]
}

/// What vxbgp's own codec makes of `msg` on an iBGP AS4 session: the strongest RFC 7606
/// action (`Ok(None)` = clean) or the NOTIFICATION. Checks the test's bytes mean what
/// the test says before sending them.
fn codec_verdict(msg: &[u8]) -> Result<Option<bgp::wire::Action>, NotificationMsg> {
    let ctx = DecodeCtx {
        as4: true,
        ibgp: true,
    };
    Message::decode(msg, &ctx).map(|d| d.verdict())
}

fn mac(s: u8, n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0x06, s, n]
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------------------------------
// The raw peer.

#[derive(Debug)]
enum ReadEnd {
    Eof,
    Timeout,
}

struct RawPeer {
    stream: UnixStream,
    buf: Vec<u8>,
    // Dropped after the stream: the relay sees EOF first and exits by itself.
    _relay: Child,
}

impl RawPeer {
    /// A new TCP connection from `host` to `target`, through a relay.
    fn connect(host: &Netns, target: SocketAddr) -> RawPeer {
        let n = next_id();
        let path = host.log_dir().join(format!("relay{n}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind relay socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let exe = std::env::current_exe().expect("test binary");
        let mut cmd = host.cmd(&[
            exe.to_str().expect("utf-8 path"),
            "relay_helper",
            "--exact",
            "--ignored",
            "--quiet",
            "--nocapture",
            "--test-threads",
            "1",
        ]);
        cmd.env(
            RELAY_ENV,
            format!("{target}|{}", path.to_str().expect("utf-8 path")),
        );
        let mut relay = Child::spawn(cmd, &format!("relay{n}"), host.log_dir());
        let deadline = Instant::now() + Duration::from_secs(15);
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() > deadline || !relay.is_running() {
                        panic!("relay did not connect back:\n{}", relay.logs());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept on relay socket: {e}"),
            }
        };
        let _ = std::fs::remove_file(&path);
        stream.set_nonblocking(false).expect("blocking");
        RawPeer {
            stream,
            buf: Vec::new(),
            _relay: relay,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // The peer may have closed already (it is allowed to, after a NOTIFICATION).
        let _ = self.stream.write_all(bytes);
    }

    /// No more from us: the relay half-closes the TCP connection.
    fn finish(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// The next whole message from vxbgp.
    fn read_frame(&mut self, timeout: Duration) -> Result<Vec<u8>, ReadEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            match header::frame_len(&self.buf) {
                Ok(Some(len)) if self.buf.len() >= len => {
                    return Ok(self.buf.drain(..len).collect());
                }
                Ok(_) => {}
                Err(n) => panic!("vxbgp sent a bad header ({n}): {:02x?}", self.buf),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadEnd::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadEnd::Eof),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ReadEnd::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("raw peer: read error {e:?}");
                    return Err(ReadEnd::Eof);
                }
            }
        }
    }

    fn read_msg(&mut self, timeout: Duration) -> Result<Message, ReadEnd> {
        let f = self.read_frame(timeout)?;
        let ctx = DecodeCtx {
            as4: true,
            ibgp: true,
        };
        match Message::decode(&f, &ctx) {
            Ok(d) => Ok(d.value),
            Err(n) => panic!("vxbgp sent a message its own codec rejects ({n}): {f:02x?}"),
        }
    }

    /// Reads past KEEPALIVEs and UPDATEs to the NOTIFICATION; panics on EOF or timeout
    /// before one.
    fn expect_notification(&mut self) -> NotificationMsg {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_msg(left) {
                Ok(Message::Notification(n)) => return n,
                Ok(Message::Keepalive | Message::Update(_)) => {}
                Ok(m) => panic!(
                    "unexpected {:?} while waiting for NOTIFICATION",
                    m.msg_type()
                ),
                Err(e) => panic!("no NOTIFICATION from vxbgp: {e:?}"),
            }
        }
    }

    /// After the NOTIFICATION the connection must end.
    fn expect_eof(&mut self) {
        match self.read_frame(WAIT) {
            Err(ReadEnd::Eof) => {}
            Err(ReadEnd::Timeout) => panic!("vxbgp did not close the connection"),
            Ok(f) => panic!("vxbgp sent more after its NOTIFICATION: {f:02x?}"),
        }
    }

    /// For `dur`, only KEEPALIVEs and UPDATEs arrive, and the connection stays open.
    fn expect_quiet(&mut self, dur: Duration) {
        let deadline = Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_msg(left) {
                Err(ReadEnd::Timeout) => return,
                Err(ReadEnd::Eof) => panic!("vxbgp closed the session"),
                Ok(Message::Notification(n)) => panic!("vxbgp sent NOTIFICATION {n}"),
                Ok(_) => {}
            }
        }
    }

    /// Reads until EOF or `timeout`, ignoring what comes; true on EOF.
    fn drain_to_eof(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                Ok(_) => {}
                Err(ReadEnd::Eof) => return true,
                Err(ReadEnd::Timeout) => return false,
            }
        }
    }

    /// The OPEN exchange: read vxbgp's OPEN (AS4 65001, MP 25/70), send ours and a
    /// KEEPALIVE, read vxbgp's KEEPALIVE.
    fn handshake(&mut self, id: Ipv4Addr) {
        match self.read_msg(WAIT) {
            Ok(Message::Open(o)) => {
                assert_eq!(o.four_octet_as(), Some(ASN), "{o:?}");
                assert!(o.multiprotocol().contains(&(25, 70)), "{o:?}");
            }
            other => panic!("expected vxbgp's OPEN, got {other:?}"),
        }
        self.send(&open(id));
        self.send(&keepalive());
        match self.read_msg(WAIT) {
            Ok(Message::Keepalive) => {}
            other => panic!("expected KEEPALIVE, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The lab.

struct Lab {
    u: Underlay,
    vx: Vxbgp,
    gobgp: Gobgp,
    /// GoBGP's route as vxbgp shows it before the bad input.
    good_prefix: String,
    good_route: Value,
}

impl Lab {
    fn new() -> Lab {
        let u = Underlay::new(3);
        let (vx_ip, go_ip, raw_ip) = (u.ip(0), u.ip(1), u.ip(2));
        let gobgp = Gobgp::start(
            u.host(1),
            &gobgp_evpn_config(ASN, &go_ip.to_string(), &[(&vx_ip.to_string(), ASN)]),
        );
        let conf = u.host(0).log_dir().join("vxbgp.toml");
        std::fs::write(
            &conf,
            format!(
                "asn = {ASN}\nrouter-id = \"{vx_ip}\"\n\n[[neighbor]]\naddress = \"{go_ip}\"\n\n\
                 [[neighbor]]\naddress = \"{raw_ip}\"\npassive = true\ndescription = \"raw test peer\"\n"
            ),
        )
        .expect("write vxbgp.toml");
        let vx = Vxbgp::start(u.host(0), &["--config", conf.to_str().expect("utf-8")]);
        vx.wait_established(&go_ip.to_string(), WAIT);
        gobgp.wait_established(&vx_ip.to_string(), WAIT);

        let s = u.subnet();
        let gmac = format!("02:00:00:07:{s:02x}:01");
        let gip = u.overlay_ip(101).to_string();
        let rd = format!("{go_ip}:42");
        gobgp.add_evpn(&[
            "macadv", &gmac, &gip, "etag", "0", "label", "42", "rd", &rd, "rt", "65001:42",
            "encap", "vxlan",
        ]);
        let good_prefix = format!("[2]:[0]:[48]:[{gmac}]:[32]:[{gip}]");
        assert!(
            wait_until(WAIT, || vx.route(&good_prefix).is_some()),
            "GoBGP's route never reached vxbgp: {:?}",
            vx.prefixes()
        );
        let good_route = vx.route(&good_prefix).expect("good route");
        Lab {
            u,
            vx,
            gobgp,
            good_prefix,
            good_route,
        }
    }

    fn raw_ip(&self) -> Ipv4Addr {
        self.u.ip(2)
    }

    fn target(&self) -> SocketAddr {
        SocketAddr::new(self.u.ip(0).into(), 179)
    }

    fn connect(&self) -> RawPeer {
        RawPeer::connect(self.u.host(2), self.target())
    }

    /// A raw peer with an Established session.
    fn established(&self) -> RawPeer {
        let mut p = self.connect();
        p.handshake(self.raw_ip());
        self.vx.wait_established(&self.raw_ip().to_string(), WAIT);
        p
    }

    fn raw_state(&self) -> Option<String> {
        self.vx.neighbor_state(&self.raw_ip().to_string())
    }

    /// A type-2 route of the raw peer: (NLRI bytes, vxbgp prefix).
    fn raw_route(&self, n: u8) -> (Vec<u8>, String) {
        let m = mac(self.u.subnet(), n);
        let ip = self.u.overlay_ip(150 + n);
        (
            mac_ip_nlri(self.raw_ip(), m, ip),
            format!("[2]:[0]:[48]:[{}]:[32]:[{ip}]", mac_str(m)),
        )
    }

    /// Sends a good announcement of route `n` and waits until vxbgp has it.
    fn announce(&self, p: &mut RawPeer, n: u8) -> (Vec<u8>, String) {
        let (nlri, prefix) = self.raw_route(n);
        let msg = update(&good_attrs(self.raw_ip(), &nlri));
        assert_eq!(
            codec_verdict(&msg),
            Ok(None),
            "the good UPDATE is not clean"
        );
        p.send(&msg);
        self.wait_present(&prefix);
        let r = self.vx.route(&prefix).expect("route");
        assert_eq!(r["paths"][0]["peer"], self.raw_ip().to_string(), "{r:#}");
        assert_eq!(
            r["paths"][0]["next_hop"],
            self.raw_ip().to_string(),
            "{r:#}"
        );
        (nlri, prefix)
    }

    fn wait_present(&self, prefix: &str) {
        assert!(
            wait_until(WAIT, || self.vx.route(prefix).is_some()),
            "vxbgp does not have {prefix}: {:?}\n{}",
            self.vx.prefixes(),
            self.vx.logs()
        );
    }

    fn wait_absent(&self, prefix: &str) {
        assert!(
            wait_until(WAIT, || self.vx.route(prefix).is_none()),
            "vxbgp still has {prefix}: {:#}\n{}",
            self.vx.route(prefix).unwrap_or_default(),
            self.vx.logs()
        );
    }

    /// The daemon runs and answers; the GoBGP session never went down and its route is
    /// exactly as before.
    fn assert_good_intact(&mut self) {
        assert!(self.vx.is_running(), "vxbgp died:\n{}", self.vx.logs());
        let go_ip = self.u.ip(1).to_string();
        let n = self.vx.neighbor(&go_ip).expect("GoBGP neighbour");
        assert_eq!(n["state"], "Established", "{n:#}");
        assert_eq!(
            n["established_transitions"], 1,
            "GoBGP session flapped: {n:#}"
        );
        assert_eq!(
            self.vx.route(&self.good_prefix).as_ref(),
            Some(&self.good_route),
            "GoBGP's route changed"
        );
        assert_eq!(
            self.gobgp.neighbor_state(&self.u.ip(0).to_string()),
            Some(6),
            "GoBGP's side of the session is not Established"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

/// RFC 7606 §7.9 (ORIGINATOR_ID length 5) and §7.1 (ORIGIN value 3): treat-as-withdraw.
/// The route goes, the session stays (no NOTIFICATION, still Established, still takes
/// routes), GoBGP's session and route are untouched.
#[test]
fn treat_as_withdraw_keeps_the_session() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let nh = lab.raw_ip();

    // Malformed ORIGINATOR_ID (length 5).
    let (nlri, prefix) = lab.announce(&mut p, 1);
    let mut attrs = good_attrs(nh, &nlri);
    attrs.push(attr(0x80, 9, &[198, 19, 0, 9, 9]));
    let bad = update(&attrs);
    assert_eq!(
        codec_verdict(&bad),
        Ok(Some(bgp::wire::Action::TreatAsWithdraw))
    );
    p.send(&bad);
    lab.wait_absent(&prefix);
    p.expect_quiet(Duration::from_secs(1));
    assert_eq!(lab.raw_state().as_deref(), Some("Established"));

    // Undefined ORIGIN value.
    let (nlri2, prefix2) = lab.announce(&mut p, 2);
    let mut attrs = good_attrs(nh, &nlri2);
    attrs[1] = origin(3);
    let bad = update(&attrs);
    assert_eq!(
        codec_verdict(&bad),
        Ok(Some(bgp::wire::Action::TreatAsWithdraw))
    );
    p.send(&bad);
    lab.wait_absent(&prefix2);
    p.expect_quiet(Duration::from_secs(1));

    // The same error beside an MP_UNREACH of another family (IPv4 unicast
    // 198.18.0.0/24): the EVPN route announced in the UPDATE is withdrawn all the same.
    let (nlri4, prefix4) = lab.announce(&mut p, 4);
    let mut attrs = good_attrs(nh, &nlri4);
    attrs[1] = origin(3);
    attrs.push(attr(0x80, 15, &[0, 1, 1, 24, 198, 18, 0]));
    let bad = update(&attrs);
    assert_eq!(
        codec_verdict(&bad),
        Ok(Some(bgp::wire::Action::TreatAsWithdraw))
    );
    p.send(&bad);
    lab.wait_absent(&prefix4);
    p.expect_quiet(Duration::from_secs(1));

    // Same session, still working: a good UPDATE is taken.
    lab.announce(&mut p, 3);
    let n = lab.vx.neighbor(&nh.to_string()).expect("raw neighbour");
    assert_eq!(n["state"], "Established", "{n:#}");
    assert_eq!(n["established_transitions"], 1, "{n:#}");
    lab.assert_good_intact();
}

/// RFC 7606 §7.6 (ATOMIC_AGGREGATE length 1) and §7.7 (AGGREGATOR of bad length):
/// attribute discard, the route is kept and the session stays.
#[test]
fn attribute_discard_keeps_the_route() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let nh = lab.raw_ip();

    let (nlri, prefix) = lab.raw_route(1);
    let mut attrs = good_attrs(nh, &nlri);
    attrs.push(attr(0x40, 6, &[0]));
    let msg = update(&attrs);
    assert_eq!(
        codec_verdict(&msg),
        Ok(Some(bgp::wire::Action::AttributeDiscard))
    );
    p.send(&msg);
    lab.wait_present(&prefix);

    let (nlri2, prefix2) = lab.raw_route(2);
    let mut attrs = good_attrs(nh, &nlri2);
    attrs.push(attr(0xc0, 7, &[0xfd, 0xe9, 198, 19, 0]));
    let msg = update(&attrs);
    assert_eq!(
        codec_verdict(&msg),
        Ok(Some(bgp::wire::Action::AttributeDiscard))
    );
    p.send(&msg);
    lab.wait_present(&prefix2);

    // Both stay (no late treat-as-withdraw), and the session too.
    p.expect_quiet(Duration::from_secs(1));
    assert!(lab.vx.route(&prefix).is_some() && lab.vx.route(&prefix2).is_some());
    let r = lab.vx.route(&prefix2).expect("route");
    assert_eq!(
        r["paths"][0]["route_targets"],
        serde_json::json!(["65001:42"])
    );
    assert_eq!(r["vni"], 42);
    assert_eq!(lab.raw_state().as_deref(), Some("Established"));
    lab.assert_good_intact();
}

/// RFC 4271 §6.1: a header whose marker is not all ones → NOTIFICATION 1/1 (Connection
/// Not Synchronized) and close; the raw peer's routes go, nothing else changes, and the
/// raw peer can connect again.
#[test]
fn bad_marker_gets_notification_and_reset() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let (_, prefix) = lab.announce(&mut p, 1);

    let mut bad = keepalive();
    bad[5] = 0x00;
    p.send(&bad);
    let n = p.expect_notification();
    assert_eq!(
        (n.code, n.subcode),
        (
            codes::MESSAGE_HEADER_ERROR,
            codes::header::CONNECTION_NOT_SYNCHRONIZED
        ),
        "{n}"
    );
    p.expect_eof();
    drop(p);
    lab.wait_absent(&prefix);
    assert!(
        wait_until(WAIT, || lab.raw_state().as_deref() != Some("Established")),
        "raw session still Established"
    );
    let n = lab.vx.neighbor(&lab.raw_ip().to_string()).expect("raw");
    assert!(
        n["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{n:#}"
    );
    lab.assert_good_intact();

    // The raw peer comes back.
    let mut p = lab.established();
    lab.announce(&mut p, 2);
    let n = lab.vx.neighbor(&lab.raw_ip().to_string()).expect("raw");
    assert_eq!(n["established_transitions"], 2, "{n:#}");
    lab.assert_good_intact();
}

/// RFC 7606 §5.3 / §7.11: an EVPN NLRI whose length runs past the MP_REACH_NLRI cannot
/// be withdrawn route by route: NOTIFICATION 3/9 (UPDATE error, Optional Attribute
/// Error), that session reset and its routes withdrawn; GoBGP untouched.
#[test]
fn undecodable_evpn_nlri_resets_only_that_session() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let (_, prefix) = lab.announce(&mut p, 1);

    let (mut nlri, _) = lab.raw_route(2);
    nlri[1] = 60; // says 60 octets, 37 follow
    let bad = update(&good_attrs(lab.raw_ip(), &nlri));
    // The codec frames MP_REACH fine; the EVPN family rejects the NLRI.
    assert_eq!(codec_verdict(&bad), Ok(None));
    p.send(&bad);
    let n = p.expect_notification();
    assert_eq!(
        (n.code, n.subcode),
        (
            codes::UPDATE_MESSAGE_ERROR,
            codes::update::OPTIONAL_ATTRIBUTE_ERROR
        ),
        "{n}"
    );
    p.expect_eof();
    lab.wait_absent(&prefix);
    assert!(
        wait_until(WAIT, || lab.raw_state().as_deref() != Some("Established")),
        "raw session still Established"
    );
    lab.assert_good_intact();
}

/// RFC 7606 §3(d): an UPDATE without ORIGIN is treat-as-withdraw, not a reset.
#[test]
fn missing_mandatory_attribute_treat_as_withdraw() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let (nlri, prefix) = lab.announce(&mut p, 1);
    let mut attrs = good_attrs(lab.raw_ip(), &nlri);
    attrs.remove(1); // ORIGIN
    let bad = update(&attrs);
    assert_eq!(
        codec_verdict(&bad),
        Ok(Some(bgp::wire::Action::TreatAsWithdraw))
    );
    p.send(&bad);
    lab.wait_absent(&prefix);
    p.expect_quiet(Duration::from_secs(1));
    lab.announce(&mut p, 2);
    let n = lab.vx.neighbor(&lab.raw_ip().to_string()).expect("raw");
    assert_eq!(n["state"], "Established", "{n:#}");
    assert_eq!(n["established_transitions"], 1, "{n:#}");
    lab.assert_good_intact();
}

/// RFC 7606 §5.2: an UPDATE with path attributes but no NLRI at all (no NLRI field, no
/// MP_REACH, no MP_UNREACH) whose attributes are malformed has nothing to withdraw:
/// no NOTIFICATION, the session and every route stay.
#[test]
fn attribute_errors_without_nlri_change_nothing() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let (_, prefix) = lab.announce(&mut p, 1);
    let bad = update(&[
        attr(0x40, 1, &[0, 0]), // ORIGIN of length 2
        as_path_empty(),
        local_pref(100),
        attr(0x80, 9, &[198, 19, 0, 9, 9]), // ORIGINATOR_ID of length 5
        ext_communities(),
    ]);
    assert_eq!(
        codec_verdict(&bad),
        Ok(Some(bgp::wire::Action::TreatAsWithdraw))
    );
    p.send(&bad);
    p.expect_quiet(Duration::from_secs(1));
    lab.wait_present(&prefix);
    let n = lab.vx.neighbor(&lab.raw_ip().to_string()).expect("raw");
    assert_eq!(n["state"], "Established", "{n:#}");
    assert_eq!(n["established_transitions"], 1, "{n:#}");
    lab.announce(&mut p, 2);
    lab.assert_good_intact();
}

/// RFC 7606 §3(g): two MP_REACH_NLRI in one UPDATE → NOTIFICATION 3/1 (Malformed
/// Attribute List), session reset, the peer's routes withdrawn.
#[test]
fn duplicate_mp_reach_session_reset() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let mut p = lab.established();
    let (_, prefix) = lab.announce(&mut p, 1);
    let (nlri2, prefix2) = lab.raw_route(2);
    let (nlri3, _) = lab.raw_route(3);
    let mut attrs = good_attrs(lab.raw_ip(), &nlri2);
    attrs.insert(1, mp_reach(lab.raw_ip(), &nlri3));
    let bad = update(&attrs);
    assert_eq!(
        codec_verdict(&bad).map_err(|n| (n.code, n.subcode)),
        Err((
            codes::UPDATE_MESSAGE_ERROR,
            codes::update::MALFORMED_ATTRIBUTE_LIST
        ))
    );
    p.send(&bad);
    let n = p.expect_notification();
    assert_eq!(
        (n.code, n.subcode),
        (
            codes::UPDATE_MESSAGE_ERROR,
            codes::update::MALFORMED_ATTRIBUTE_LIST
        ),
        "{n}"
    );
    p.expect_eof();
    lab.wait_absent(&prefix);
    assert!(lab.vx.route(&prefix2).is_none());
    lab.assert_good_intact();
}

/// xorshift64*: a seeded pseudo-random sequence (reproducible failures, no new crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Several hundred random, truncated and mutated messages, each on a fresh connection
/// (some before the OPEN exchange, some after): afterwards the daemon is alive, the
/// GoBGP session never flapped and its route is intact, and a well-behaved raw peer
/// still gets a session.
#[test]
fn garbage_and_truncated_messages_never_crash() {
    if !require_root() {
        return;
    }
    let mut lab = Lab::new();
    let seed = 0x7606_4271_0000_0000u64 ^ u64::from(lab.u.subnet());
    eprintln!("garbage seed: {seed:#x}");
    let mut rng = Rng(seed);
    let raw_ip = lab.raw_ip();
    let (nlri, _) = lab.raw_route(1);
    let good = update(&good_attrs(raw_ip, &nlri));
    let iterations = 300;
    let mut not_closed = 0;
    for i in 0..iterations {
        let kind = rng.below(6);
        let mut p = lab.connect();
        let payload = match kind {
            // Random bytes instead of an OPEN.
            0 => {
                let n = rng.below(120);
                rng.bytes(n)
            }
            // A valid marker, random length/type, random body.
            1 => {
                let mut v = header::MARKER.to_vec();
                let n = rng.below(80);
                v.extend_from_slice(&rng.bytes(3));
                v.extend_from_slice(&rng.bytes(n));
                v
            }
            // Our OPEN cut short, or with random bytes flipped.
            2 => {
                let mut o = open(raw_ip);
                if rng.below(2) == 0 {
                    let cut = rng.below(o.len());
                    o.truncate(cut);
                } else {
                    for _ in 0..1 + rng.below(4) {
                        let at = HEADER_LEN + rng.below(o.len() - HEADER_LEN);
                        o[at] = rng.next() as u8;
                    }
                }
                o
            }
            // Established, then an UPDATE cut short (the header promises more).
            3 => {
                p.handshake(raw_ip);
                let cut = HEADER_LEN + rng.below(good.len() - HEADER_LEN);
                good[..cut].to_vec()
            }
            // Established, then the good UPDATE with random bytes flipped.
            4 => {
                p.handshake(raw_ip);
                let mut u = good.clone();
                for _ in 0..1 + rng.below(6) {
                    let at = 16 + rng.below(u.len() - 16);
                    u[at] = rng.next() as u8;
                }
                u
            }
            // Established, then an UPDATE with a random body of the stated length.
            _ => {
                p.handshake(raw_ip);
                let n = 4 + rng.below(200);
                frame(2, &rng.bytes(n))
            }
        };
        p.send(&payload);
        p.finish();
        if !p.drain_to_eof(Duration::from_secs(10)) {
            not_closed += 1;
            eprintln!("iteration {i} (kind {kind}): connection not closed after our EOF");
        }
        drop(p);
        if i % 50 == 49 {
            assert!(
                lab.vx.is_running(),
                "vxbgp died at iteration {i}:\n{}",
                lab.vx.logs()
            );
        }
    }
    assert_eq!(not_closed, 0, "vxbgp kept connections open after EOF");
    lab.assert_good_intact();

    // Phase 2: UPDATEs of every route type with bytes flipped (mostly in the NLRI, which
    // sits last) over Established sessions, so that odd but decodable routes reach the
    // RIB, and `show routes` (JSON and table) and `show neighbors` render them.
    let bases = phase2_bases(raw_ip, lab.u.subnet());
    let mut p = lab.established();
    let mut resets = 0;
    for i in 0..200 {
        let (msg, nlri_len) = &bases[rng.below(bases.len())];
        let mut u = msg.clone();
        for _ in 0..1 + rng.below(3) {
            let at = if rng.below(4) == 0 {
                HEADER_LEN + rng.below(u.len() - HEADER_LEN)
            } else {
                u.len() - 1 - rng.below(*nlri_len)
            };
            u[at] = rng.next() as u8;
        }
        p.send(&u);
        let ended = match p.read_msg(Duration::from_millis(20)) {
            Ok(Message::Notification(n)) => {
                eprintln!("phase 2 iteration {i}: NOTIFICATION {n}");
                true
            }
            Err(ReadEnd::Eof) => {
                eprintln!("phase 2 iteration {i}: EOF");
                true
            }
            Ok(_) | Err(ReadEnd::Timeout) => false,
        };
        if ended {
            resets += 1;
            p.finish();
            assert!(
                p.drain_to_eof(WAIT),
                "no close after a reset (iteration {i})"
            );
            drop(p);
            p = lab.established();
        }
        if i % 10 == 9 {
            let _ = lab.vx.routes();
            let _ = lab.vx.cli(&["show", "routes"]);
            let _ = lab.vx.json(&["show", "neighbors"]);
        }
    }
    eprintln!("phase 2: {resets} session resets in 200 mutated UPDATEs");
    let _ = lab.vx.routes();
    let _ = lab.vx.cli(&["show", "routes"]);
    p.finish();
    assert!(p.drain_to_eof(WAIT), "raw session did not close");
    drop(p);
    lab.assert_good_intact();
    // None of the raw peer's routes survive its closed connections.
    assert!(
        wait_until(WAIT, || lab
            .vx
            .routes()
            .iter()
            .all(|r| r["paths"][0]["peer"] != raw_ip.to_string())),
        "raw peer routes left: {:?}",
        lab.vx.prefixes()
    );
    // And the raw peer still gets a working session.
    let mut p = lab.established();
    lab.announce(&mut p, 9);
    lab.assert_good_intact();
}

/// Well-formed UPDATEs of route types 1 to 5 from the raw peer, MP_REACH_NLRI last, with
/// the length of their NLRI (the tail of the message).
fn phase2_bases(raw_ip: Ipv4Addr, s: u8) -> Vec<(Vec<u8>, usize)> {
    let rd = |n: u8| {
        let mut v = vec![0, 1];
        v.extend_from_slice(&raw_ip.octets());
        v.extend_from_slice(&[0, n]);
        v
    };
    let tlv = |t: u8, body: Vec<u8>| {
        let mut v = vec![t, body.len() as u8];
        v.extend_from_slice(&body);
        v
    };
    let esi = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let type1 = tlv(
        1,
        [rd(1), esi.to_vec(), vec![0; 4], vec![0, 0, 42]].concat(),
    );
    let type2v6 = tlv(
        2,
        [
            rd(42),
            vec![0; 14],
            vec![48, 2, 0, 0, 8, s, 1, 128],
            vec![0x20, 0x01, 0x0d, 0xb8, 0, s],
            vec![0; 9],
            vec![1, 0, 0, 42],
        ]
        .concat(),
    );
    let type2 = mac_ip_nlri(raw_ip, mac(s, 0x80), Ipv4Addr::new(198, 18, s, 200));
    let type3 = tlv(
        3,
        [rd(42), vec![0; 4], vec![32], raw_ip.octets().to_vec()].concat(),
    );
    let type4 = tlv(
        4,
        [rd(4), esi.to_vec(), vec![32], raw_ip.octets().to_vec()].concat(),
    );
    let type5 = tlv(
        5,
        [
            rd(5),
            vec![0; 14],
            vec![24, 198, 18, s, 0],
            raw_ip.octets().to_vec(),
            vec![0, 0, 42],
        ]
        .concat(),
    );
    let pmsi = {
        let mut v = vec![0, 6, 0, 0, 42];
        v.extend_from_slice(&raw_ip.octets());
        attr(0xc0, 22, &v)
    };
    [type1, type2, type2v6, type3, type4, type5]
        .into_iter()
        .map(|nlri| {
            let mut attrs = vec![
                origin(0),
                as_path_empty(),
                local_pref(100),
                ext_communities(),
            ];
            if nlri[0] == 3 {
                attrs.push(pmsi.clone());
            }
            attrs.push(mp_reach(raw_ip, &nlri));
            let msg = update(&attrs);
            assert_eq!(codec_verdict(&msg), Ok(None), "phase 2 base is not clean");
            let routes = evpn::EvpnRoute::decode_all(&nlri)
                .unwrap_or_else(|e| panic!("phase 2 base NLRI {nlri:02x?}: {e}"));
            assert_eq!(routes.len(), 1);
            (msg, nlri.len())
        })
        .collect()
}
