//! A route-reflector client that stops reading holds up nobody for long, and gets
//! everything once it reads again.
//!
//! vxbgp reflects for three clients on loopback (127.0.0.2-4, a listen range; no
//! namespace needed): one announces many routes, one reads them, one does not read at
//! all. The reader must get the whole table while the stalled client's session stays
//! up; then the stalled one reads and must get the whole table too.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bgp::af::AddressFamily;
use bgp::wire::{
    header, Capability, DecodeCtx, EncodeCtx, Message, MpNextHop, MpReach, OpenMsg, UpdateMsg,
    HEADER_LEN,
};
use bytes::BytesMut;
use evpn::{originate, Esi, EvpnRoute, L2vpnEvpn, Label, MacAddr, MacIpRoute, Vni};

const ASN: u32 = 65001;
/// About 13 MB of UPDATEs towards each receiver: more than loopback's socket buffers
/// and the reflector's per-peer queue together, so the stalled client really blocks.
const ROUTES: u32 = 300_000;
const PER_UPDATE: u32 = 100;
const WAIT: Duration = Duration::from_secs(120);
const ENC: EncodeCtx = EncodeCtx { as4: true };
const DEC: DecodeCtx = DecodeCtx {
    as4: true,
    ibgp: true,
};

struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            if let Some(dir) = self.log.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Daemon {
    fn start(port: u16) -> Daemon {
        let dir = std::env::temp_dir().join(format!("vxbgp-slow-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("rr.toml");
        std::fs::write(
            &cfg,
            format!(
                "asn = {ASN}\nrouter-id = \"198.19.0.1\"\nroute-reflector = true\n\
                 listen-range = [\"127.0.0.0/8\"]\nport = {port}\nno-fib = true\n"
            ),
        )
        .unwrap();
        let socket = dir.join("rr.sock");
        let log = dir.join("rr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_vxbgp"))
            .args(["--config", cfg.to_str().unwrap()])
            .args(["--socket", socket.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, socket, log }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn neighbor_state(&self, addr: &str) -> Option<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_vxbgp"))
            .args(["show", "neighbors", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["neighbors"].as_array()?.iter().find_map(|n| {
            (n["address"].as_str() == Some(addr)).then(|| n["state"].as_str().map(String::from))?
        })
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A BGP client from its own loopback address (the reflector tells peers apart by it).
struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    fn connect(src: Ipv4Addr, port: u16, daemon: &Daemon) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let stream = loop {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(IpAddr::V4(src), 0)).unwrap();
            let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            match rt.block_on(socket.connect(to)) {
                Ok(s) => break s.into_std().unwrap(),
                // The daemon may not listen yet.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("connect from {src}: {e}\n{}", daemon.logs()),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Client {
            stream,
            buf: BytesMut::new(),
        };
        let caps = vec![
            Capability::MultiProtocol { afi: 25, safi: 70 },
            Capability::RouteRefresh,
            Capability::FourOctetAs(ASN),
        ];
        c.send(&Message::Open(OpenMsg::new(ASN, 240, src, caps)));
        assert!(matches!(c.next(), Message::Open(_)), "OPEN expected");
        c.send(&Message::Keepalive);
        c
    }

    fn send(&mut self, m: &Message) {
        self.stream.write_all(&m.to_bytes(&ENC)).unwrap();
    }

    fn next(&mut self) -> Message {
        loop {
            if let Ok(Some(len)) = header::frame_len(&self.buf) {
                if self.buf.len() >= len {
                    let frame = self.buf.split_to(len);
                    return Message::decode(&frame, &DEC).expect("decodes").value;
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "the reflector closed the session");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until `want` type-2 routes have arrived; returns how many.
    fn count_routes(&mut self, want: usize) -> usize {
        let mut got = 0;
        while got < want {
            if let Message::Update(u) = self.next() {
                if let Some(r) = u.mp_reach {
                    got += L2vpnEvpn::decode_nlri(&r.nlri).expect("NLRI").len();
                }
            }
        }
        got
    }
}

fn announce(c: &mut Client, nh: Ipv4Addr) {
    let vni = Vni::new(42).unwrap();
    let rd = evpn::RouteDistinguisher::ipv4(nh, 42);
    let rt = originate::auto_rt(ASN, vni);
    let (_, mut attrs) = originate::mac_ip(rd, vni, MacAddr([2, 0, 0, 0, 0, 0]), None, &[rt], None);
    attrs.local_pref = Some(100);
    let mut out = BytesMut::new();
    for first in (0..ROUTES).step_by(PER_UPDATE as usize) {
        let mut nlri = BytesMut::new();
        for r in first..(first + PER_UPDATE).min(ROUTES) {
            let [_, a, b, d] = r.to_be_bytes();
            let route = EvpnRoute::MacIp(MacIpRoute {
                rd,
                esi: Esi::ZERO,
                eth_tag: 0,
                mac: MacAddr([2, 0x55, 0, a, b, d]),
                ip: None,
                label1: Label::from_vni(vni),
                label2: None,
            });
            L2vpnEvpn::encode_nlri(&route, &mut nlri);
        }
        let u = UpdateMsg {
            attrs: attrs.clone(),
            mp_reach: Some(MpReach {
                afi: 25,
                safi: 70,
                next_hop: MpNextHop::V4(nh),
                nlri: nlri.freeze(),
            }),
            ..UpdateMsg::default()
        };
        Message::Update(u).encode(&ENC, &mut out);
    }
    assert!(out.len() > 4 * HEADER_LEN);
    c.stream.write_all(&out).unwrap();
}

#[test]
fn a_stalled_client_holds_up_nobody_and_gets_everything_when_it_reads() {
    let port = free_port();
    let d = Daemon::start(port);
    let (stalled_ip, reader_ip, source_ip) = (
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    );
    let mut stalled = Client::connect(stalled_ip, port, &d);
    let mut reader = Client::connect(reader_ip, port, &d);
    let mut source = Client::connect(source_ip, port, &d);
    // From here on the stalled client reads nothing.
    let reading = std::thread::spawn(move || {
        let n = reader.count_routes(ROUTES as usize);
        (n, reader)
    });
    announce(&mut source, source_ip);
    let (n, _reader) = reading.join().expect("reader thread");
    assert_eq!(n, ROUTES as usize, "the reading client got the whole table");
    assert_eq!(
        d.neighbor_state("127.0.0.2").as_deref(),
        Some("Established"),
        "the stalled client's session is still up\n{}",
        d.logs()
    );
    // It reads again: everything reaches it.
    let n = stalled.count_routes(ROUTES as usize);
    assert_eq!(n, ROUTES as usize);
    drop(source);
}
