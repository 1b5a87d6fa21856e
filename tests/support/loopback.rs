//! A vxbgp reflector on loopback and raw BGP clients built on the project's codec, for
//! tests that need real TCP but no namespace: the clients bind 127.0.0.x source
//! addresses, which the reflector tells apart (a listen range of 127.0.0.0/8).

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

pub const ASN: u32 = 65001;
const PER_UPDATE: u32 = 100;
pub const WAIT: Duration = Duration::from_secs(120);
const ENC: EncodeCtx = EncodeCtx { as4: true };
const DEC: DecodeCtx = DecodeCtx {
    as4: true,
    ibgp: true,
};

pub struct Daemon {
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
    /// A route reflector for 127.0.0.0/8 on `port`; `extra` lines go into its config.
    pub fn start(port: u16, extra: &str) -> Daemon {
        let dir =
            std::env::temp_dir().join(format!("vxbgp-loopback-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("rr.toml");
        std::fs::write(
            &cfg,
            format!(
                "asn = {ASN}\nrouter-id = \"198.19.0.1\"\nroute-reflector = true\n\
                 listen-range = [\"127.0.0.0/8\"]\nport = {port}\nno-fib = true\n{extra}"
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

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A BGP client from its own loopback address (the reflector tells peers apart by it).
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
}

impl Client {
    pub fn connect(src: Ipv4Addr, port: u16, daemon: &Daemon) -> Client {
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

    pub fn send(&mut self, m: &Message) {
        self.stream.write_all(&m.to_bytes(&ENC)).unwrap();
    }

    pub fn next(&mut self) -> Message {
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
    pub fn count_routes(&mut self, want: usize) -> usize {
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

/// Announces `routes` type-2 routes (MAC only), 100 per UPDATE, next hop `nh`.
pub fn announce(c: &mut Client, nh: Ipv4Addr, routes: u32) {
    let vni = Vni::new(42).unwrap();
    let rd = evpn::RouteDistinguisher::ipv4(nh, 42);
    let rt = originate::auto_rt(ASN, vni);
    let (_, mut attrs) = originate::mac_ip(rd, vni, MacAddr([2, 0, 0, 0, 0, 0]), None, &[rt], None);
    attrs.local_pref = Some(100);
    let mut out = BytesMut::new();
    for first in (0..routes).step_by(PER_UPDATE as usize) {
        let mut nlri = BytesMut::new();
        for r in first..(first + PER_UPDATE).min(routes) {
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
