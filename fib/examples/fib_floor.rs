//! Timing harness (no timed assertions): N MAC/IP remote routes (a remote MAC, its
//! bridge entry and its suppression entry each: 3 requests) into two VNIs (vxlan
//! devices on their bridges) in a network namespace of its own, programmed and
//! removed by
//!
//! - `old`: the per-request path vxbgp had before the batched writer (rtnetlink's
//!   handle, 256 requests in flight, an ack for each);
//! - `fib`: `fib::netlink::apply` through `fib::writer::Writer` (what vxbgp does now);
//! - `floor`: the requests serialized beforehand, written 16 KiB per `sendmsg`, one
//!   ack per buffer, errors read back (the kernel's cost and nothing else);
//! - `writer`: `Writer::send_iter` on requests built beforehand (serialization and
//!   reply matching on top of the floor);
//! - `iproute2`: `bridge -batch` + `ip -batch` (install only; removed by `floor`);
//! - with `--agent`, `agent`: the FIB task itself (`fib::task::run`, with its own
//!   event monitor), fed the routes as best-path batches of 1000, as from the RIB.
//!
//! Rounds interleave the variants, so times of one round are comparable; the
//! medians and their ratios to `floor` are printed. With `--monitor` a
//! `fib::monitor::Monitor` listens meanwhile (as in the daemon) and its counts are
//! printed (`fib` then names its vxlan devices and writer to it, as the FIB does).
//!
//! ```sh
//! cargo run --release -p fib --example fib_floor -- [ROUTES] [ROUNDS] [--monitor] [--agent] [--sweep] [--only=floor,agent]
//! ```
//! Needs root. Underlay 198.19.0.0/16, overlay 198.18.0.0/16, inside the namespace.

use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Arc;

use bgp::rib::{BestChange, BestPath, RouteAttrs};
use evpn::{originate, L2vpnEvpn, MacAddr, Vni};
use fib::model::{FibOp, Mac, RemoteMac, SuppressNeigh};
use fib::netlink::{self, VniDevices};
use fib::task::FibCmd;
use fib::writer::{Request, Writer};
use futures_util::stream::{FuturesUnordered, StreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    if !out.status.success() {
        panic!("{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ifindex(dev: &str) -> u32 {
    sh(&format!("ip -o link show {dev}"))
        .split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {dev}"))
}

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([2, 0x42, b[0], b[1], b[2], b[3]])
}

fn vtep(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, 2, 10 + (i % 50) as u8))
}

fn overlay(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8))
}

/// VNI 42 gets the first half of the routes, VNI 43 the rest (a /16 of overlay
/// addresses is too small for 100 000 routes on one bridge).
fn vni_of(i: u32, n: u32) -> u32 {
    if i < n.div_ceil(2) {
        42
    } else {
        43
    }
}

fn ops(n: u32) -> (Vec<FibOp>, Vec<FibOp>) {
    let mut add = Vec::new();
    let mut del = Vec::new();
    for i in 0..n {
        let vni = vni_of(i, n);
        let m = RemoteMac {
            vni,
            mac: mac(i),
            vtep: vtep(i),
        };
        let s = SuppressNeigh {
            vni,
            ip: overlay(i % n.div_ceil(2)),
            mac: m.mac,
        };
        add.push(FibOp::MacSet(m));
        add.push(FibOp::NeighSet(s));
        del.push(FibOp::NeighDel(s));
        del.push(FibOp::MacDel(m));
    }
    (add, del)
}

/// Entries we own in the kernel: (remote MACs, suppression entries).
fn count() -> (usize, usize) {
    let fdb = sh("bridge fdb show dev vxlan0; bridge fdb show dev vxlan1");
    let n = sh("ip neigh show dev br0; ip neigh show dev br1");
    (
        fdb.lines()
            .filter(|l| l.contains("extern_learn") && l.contains(" dst "))
            .count(),
        n.lines().filter(|l| l.contains("extern_learn")).count(),
    )
}

/// The old path: rtnetlink's handle, a window of 256 requests each acked.
async fn old_apply(handle: &rtnetlink::Handle, ops: &[FibOp], devs: &[VniDevices]) -> usize {
    let mut failed = 0;
    let mut inflight = FuturesUnordered::new();
    for op in ops {
        for (msg, flags) in netlink::requests(op, devs[(op.vni() - 42) as usize]) {
            let h = handle.clone();
            let op = *op;
            inflight.push(async move {
                let mut req = NetlinkMessage::from(msg);
                req.header.flags = flags;
                let Ok(mut resp) = h.clone().request(req) else {
                    return false;
                };
                while let Some(m) = resp.next().await {
                    if let NetlinkPayload::Error(e) = m.payload {
                        return e.code.is_none_or(|c| netlink::benign(&op, -c.get()));
                    }
                }
                true
            });
            if inflight.len() >= 256 {
                if let Some(false) = inflight.next().await {
                    failed += 1;
                }
            }
        }
    }
    while let Some(ok) = inflight.next().await {
        failed += usize::from(!ok);
    }
    failed
}

/// Requests serialized into buffers of about 16 KiB, only the last of each acked:
/// (buffer, sequence number of its last request).
fn floor_buffers(reqs: &[Request], seq0: u32) -> Vec<(Vec<u8>, u32)> {
    fn ack_at(buf: &mut [u8], at: usize) {
        let f = u16::from_ne_bytes([buf[at + 6], buf[at + 7]]) | NLM_F_ACK;
        buf[at + 6..at + 8].copy_from_slice(&f.to_ne_bytes());
    }
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut last = 0;
    for (i, r) in reqs.iter().enumerate() {
        let seq = seq0 + i as u32;
        let mut m = NetlinkMessage::from(r.message.clone());
        m.header.flags = (r.flags | NLM_F_REQUEST) & !NLM_F_ACK;
        m.header.sequence_number = seq;
        m.finalize();
        let len = m.buffer_len();
        if !buf.is_empty() && buf.len() + len > 16 * 1024 {
            ack_at(&mut buf, last);
            out.push((std::mem::take(&mut buf), seq - 1));
        }
        last = buf.len();
        buf.resize(last + len, 0);
        m.serialize(&mut buf[last..]);
    }
    if !buf.is_empty() {
        ack_at(&mut buf, last);
        out.push((buf, seq0 + reqs.len() as u32 - 1));
    }
    out
}

/// The floor loop: send each buffer, read replies until its last request's.
fn floor_raw(sock: &netlink_sys::Socket, bufs: &[(Vec<u8>, u32)]) -> (Duration, usize) {
    let kernel = netlink_sys::SocketAddr::new(0, 0);
    let mut rbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    let t = Instant::now();
    for (b, last) in bufs {
        sock.send_to(b, &kernel, 0).expect("send");
        loop {
            rbuf.clear();
            sock.recv(&mut rbuf, 0).expect("recv");
            let seq = u32::from_ne_bytes([rbuf[8], rbuf[9], rbuf[10], rbuf[11]]);
            let code = i32::from_ne_bytes([rbuf[16], rbuf[17], rbuf[18], rbuf[19]]);
            if code != 0 {
                errors += 1;
            }
            if seq == *last {
                break;
            }
        }
    }
    (t.elapsed(), errors)
}

/// Best-path changes for the routes (adds, or withdrawals), in batches of 1000 as
/// a RIB hands them over.
fn best_changes(n: u32, add: bool) -> Vec<Vec<BestChange<L2vpnEvpn>>> {
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        out.push(
            chunk
                .iter()
                .map(|&i| {
                    let vni = Vni::new(vni_of(i, n)).expect("vni");
                    let IpAddr::V4(v) = vtep(i) else {
                        unreachable!()
                    };
                    let (route, attrs) = originate::mac_ip(
                        originate::auto_rd(v, 1),
                        vni,
                        MacAddr(mac(i).0),
                        Some(overlay(i % n.div_ceil(2))),
                        &[originate::auto_rt(65001, vni)],
                        None,
                    );
                    BestChange {
                        key: route.key(),
                        best: add.then(|| BestPath {
                            nlri: route,
                            attrs: Arc::new(RouteAttrs {
                                attrs,
                                next_hop: vtep(i),
                            }),
                            peer: 1,
                        }),
                    }
                })
                .collect(),
        );
    }
    out
}

/// The FIB task as the daemon runs it, fed best-path batches: (install, remove).
fn agent_round(rt: &tokio::runtime::Runtime, n: u32) -> (Duration, Duration) {
    let (adds, dels) = (best_changes(n, true), best_changes(n, false));
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(fib::task::FIB_QUEUE);
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(fib::task::EVENT_QUEUE);
        let cfg = fib::task::FibConfig {
            fix_ports: false,
            reconcile_after: Duration::from_secs(3600),
            // 100 000 MACs in two VNIs: room for all of them.
            limits: fib::local::LearnLimits {
                macs_per_vni: usize::MAX,
                addresses_per_mac: usize::MAX,
            },
            dad: Default::default(),
        };
        let task = tokio::spawn(fib::task::run(cfg, rx, ev_tx));
        tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
        // Two round trips: the second answer comes after the batches before it
        // are programmed.
        let settle = |tx: tokio::sync::mpsc::Sender<FibCmd>| async move {
            for _ in 0..2 {
                // (A VNI without routes: the answer costs next to nothing.)
                let (reply, rx) = tokio::sync::oneshot::channel();
                let _ = tx
                    .send(FibCmd::ShowFib {
                        vni: Some(1),
                        reply,
                    })
                    .await;
                let _ = rx.await;
            }
        };
        settle(tx.clone()).await;
        let t = Instant::now();
        for b in adds {
            let _ = tx.send(FibCmd::Best(b)).await;
        }
        settle(tx.clone()).await;
        let ti = t.elapsed();
        assert_eq!(count(), (n as usize, n as usize), "agent: entries");
        let t = Instant::now();
        for b in dels {
            let _ = tx.send(FibCmd::Best(b)).await;
        }
        settle(tx.clone()).await;
        let td = t.elapsed();
        drop(tx);
        let _ = task.await;
        (ti, td)
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let n = nums.first().copied().unwrap_or(100_000);
    let rounds = nums.get(1).copied().unwrap_or(3);
    let with_monitor = args.iter().any(|a| a == "--monitor");
    let sweep = args.iter().any(|a| a == "--sweep");

    let name = format!("fibfloor-{}", std::process::id());
    sh(&format!("ip netns add {name}"));
    let _ns = Ns(name.clone());
    let f = File::open(format!("/run/netns/{name}")).expect("netns file");
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    sh("ip link set lo up");
    for (k, vni) in [(0, 42), (1, 43)] {
        sh(&format!(
            "ip link add br{k} type bridge && \
             ip link add vxlan{k} type vxlan id {vni} local 198.19.1.1 dstport 4789 nolearning && \
             ip link set vxlan{k} master br{k} && \
             bridge link set dev vxlan{k} learning off neigh_suppress on && \
             ip link set br{k} up && ip link set vxlan{k} up"
        ));
    }
    let devs = [0, 1].map(|k| VniDevices {
        vxlan_ifindex: ifindex(&format!("vxlan{k}")),
        bridge_ifindex: ifindex(&format!("br{k}")),
    });
    let devices = move |vni: u32| Some(devs[(vni - 42) as usize]);
    let (add, del) = ops(n);
    let (add_reqs, del_reqs) = (
        fib::floor::requests(&add, devices),
        fib::floor::requests(&del, devices),
    );
    println!(
        "{n} MAC/IP routes: {} requests to install, {} to remove",
        add_reqs.len(),
        del_reqs.len()
    );
    // iproute2 batch files.
    let dir = std::env::temp_dir();
    let (bf, nf) = (
        dir.join(format!("{name}.fdb")),
        dir.join(format!("{name}.neigh")),
    );
    {
        let mut b = File::create(&bf).expect("batch file");
        let mut i = File::create(&nf).expect("batch file");
        for k in 0..n {
            let d = vni_of(k, n) - 42;
            let _ = writeln!(
                b,
                "fdb replace {} dev vxlan{d} dst {} self extern_learn",
                mac(k),
                vtep(k)
            );
            let _ = writeln!(b, "fdb replace {} dev vxlan{d} master extern_learn", mac(k));
            let _ = writeln!(
                i,
                "neigh replace {} lladdr {} dev br{d} nud noarp extern_learn",
                overlay(k % n.div_ceil(2)),
                mac(k)
            );
        }
    }

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let handle = rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
        tokio::spawn(conn);
        handle
    });
    let monitor = with_monitor.then(|| {
        let m = fib::monitor::Monitor::open(1 | 4).expect("monitor");
        println!("monitor receive buffer: {} bytes", m.rcvbuf());
        m
    });
    let own = monitor.as_ref().map(|m| m.own_entries());
    if let Some(o) = &own {
        o.set_vxlan(devs.iter().map(|d| d.vxlan_ifindex));
    }
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(mut m) = monitor {
        let c = counted.clone();
        rt.spawn(async move {
            while let Some(e) = m.next().await {
                if let fib::monitor::Event::Overrun = e {
                    println!("monitor: overrun ({} so far)", m.take_overruns());
                }
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }

    let mut floor_writer = Writer::open().expect("writer");
    let raw = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE).expect("socket");
    let _ = raw.set_cap_ack(true);
    fib::writer::set_rcvbuf(&raw, 4 << 20);
    let (add_bufs, del_bufs) = (
        floor_buffers(&add_reqs, 1),
        floor_buffers(&del_reqs, 1 << 30),
    );
    // The writer on requests built beforehand.
    let floor = |w: &mut Writer, reqs: &[Request]| -> Duration {
        let (d, failed) = fib::floor::write(w, reqs);
        assert_eq!(failed.len(), 0, "floor: failures");
        d
    };
    let mut names: Vec<&str> = if args.iter().any(|a| a == "--agent") {
        vec!["floor", "writer", "fib", "agent", "old", "iproute2"]
    } else {
        vec!["floor", "writer", "fib", "old", "iproute2"]
    };
    // `--only=floor,agent`: just these (the first is the reference).
    if let Some(only) = args.iter().find_map(|a| a.strip_prefix("--only=")) {
        names = only.split(',').collect();
    }
    let mut times: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); names.len()];
    let full = (n as usize, n as usize);
    for round in 0..rounds {
        for (v, name) in names.iter().enumerate() {
            let before = counted.load(std::sync::atomic::Ordering::Relaxed);
            let (ti, td) = match *name {
                "floor" => {
                    let (ti, e) = floor_raw(&raw, &add_bufs);
                    assert_eq!(e, 0, "floor: errors");
                    assert_eq!(count(), full);
                    let (td, e) = floor_raw(&raw, &del_bufs);
                    assert_eq!(e, 0, "floor: errors");
                    (ti, td)
                }
                "writer" => {
                    let ti = floor(&mut floor_writer, &add_reqs);
                    assert_eq!(count(), full);
                    let td = floor(&mut floor_writer, &del_reqs);
                    (ti, td)
                }
                "fib" => {
                    let mut w = Writer::open().expect("writer");
                    // As the FIB does: the monitor is told which socket writes ours.
                    if let Some(o) = &own {
                        o.set_writer(w.port_id());
                    }
                    let t = Instant::now();
                    let r = netlink::apply(&mut w, &add, devices);
                    let ti = t.elapsed();
                    assert!(r.failed.is_empty());
                    assert_eq!(count(), full);
                    let t = Instant::now();
                    let r = netlink::apply(&mut w, &del, devices);
                    let td = t.elapsed();
                    assert!(r.failed.is_empty());
                    (ti, td)
                }
                "agent" => agent_round(&rt, n),
                "old" => rt.block_on(async {
                    let t = Instant::now();
                    assert_eq!(old_apply(&handle, &add, &devs).await, 0);
                    let ti = t.elapsed();
                    assert_eq!(count(), full);
                    let t = Instant::now();
                    assert_eq!(old_apply(&handle, &del, &devs).await, 0);
                    (ti, t.elapsed())
                }),
                _ => {
                    let t = Instant::now();
                    sh(&format!("bridge -batch {}", bf.display()));
                    sh(&format!("ip -batch {}", nf.display()));
                    let ti = t.elapsed();
                    assert_eq!(count(), full);
                    (ti, floor(&mut floor_writer, &del_reqs))
                }
            };
            assert_eq!(count(), (0, 0), "{name}: entries left");
            std::thread::sleep(Duration::from_millis(300));
            let events = counted.load(std::sync::atomic::Ordering::Relaxed) - before;
            println!(
                "round {round} {name:>9}: install {:>8.3} s  remove {:>8.3} s{}",
                ti.as_secs_f64(),
                td.as_secs_f64(),
                if with_monitor {
                    format!("  (monitor passed on {events} events)")
                } else {
                    String::new()
                }
            );
            times[v].0.push(ti);
            times[v].1.push(td);
        }
    }
    let f = (median(&mut times[0].0), median(&mut times[0].1));
    println!("medians over {rounds} rounds, ratio to floor:");
    for (v, name) in names.iter().enumerate() {
        let (i, d) = (median(&mut times[v].0), median(&mut times[v].1));
        println!(
            "{name:>9}: install {:>7.3} s ({:>5.2}x)  remove {:>7.3} s ({:>5.2}x)",
            i.as_secs_f64(),
            i.as_secs_f64() / f.0.as_secs_f64(),
            d.as_secs_f64(),
            d.as_secs_f64() / f.1.as_secs_f64()
        );
    }
    if sweep {
        // Interleaved like the main rounds: buffer size and buffers in flight.
        let configs = [
            (4096, 1),
            (16384, 1),
            (16384, 2),
            (16384, 4),
            (65536, 1),
            (200_000, 1),
        ];
        let mut ti: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
        for _ in 0..rounds {
            for (c, &(bytes, window)) in configs.iter().enumerate().rev() {
                let mut w = Writer::open().expect("writer");
                w.set_batch_bytes(bytes);
                w.set_window(window);
                ti[c].push(floor(&mut w, &add_reqs));
                floor(&mut w, &del_reqs);
            }
        }
        for (c, (bytes, window)) in configs.iter().enumerate() {
            println!(
                "writer {bytes:>6} B a buffer, window {window}: install {:.3} s",
                median(&mut ti[c]).as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_file(bf);
    let _ = std::fs::remove_file(nf);
}
