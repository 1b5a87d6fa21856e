//! Kernel: N remote MAC/IP type-2 routes from one BGP peer (the bench's client) into a
//! VTEP's kernel, vxbgp (host agent) against FRR (zebra + bgpd, `advertise-all-vni`) and
//! against the netlink floor (the same entries written by `fib::floor`, nothing else).
//!
//! The VTEP is namespace RR (198.19.0.1) with two VNIs, `kvx0`/`kbr0` and `kvx1`/`kbr1`
//! (vxlan `nolearning`, `local 198.19.0.1`, no group; bridge port `learning off
//! neigh_suppress on`): half the routes in each, because one bridge's overlay addresses
//! (198.18.0.0/16) hold only 65 536 neighbours. Every route becomes three kernel entries,
//! for both daemons (checked: FRR 8.4's zebra installs exactly these):
//! `MAC dev kvxK dst 198.19.1.0 self extern_learn`, `MAC dev kvxK master kbrK extern_learn`
//! and `IP dev kbrK lladdr MAC extern_learn nud noarp`.
//!
//! Timed from the first UPDATE sent to the netlink notification that completes the set
//! ([`KernelWatch`]), checked afterwards by a dump entry by entry; then all are withdrawn,
//! timed until the kernel holds none of them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp::af::AddressFamily;
use bgp::wire::{MpNextHop, MpReach, MpUnreach, UpdateMsg};
use bytes::{Bytes, BytesMut};
use evpn::{originate, L2vpnEvpn, MacAddr, Vni};
use fib::model::{FibOp, Mac, RemoteMac, SuppressNeigh};
use fib::netlink::VniDevices;

use super::{since, Ctx, Metric, Sample, Spec, Unit};
use crate::client::{Fleet, Outbox};
use crate::count::Templates;
use crate::kwatch::{self, Counts, Dump, KernelWatch};
use crate::netns::{client_addr, NsWorker, RR_ADDR};
use crate::reflector::{Peer, Reflector, Role};
use crate::routes::{self, RouteSpace, ASN};
use crate::sys::{self, Result};

/// Most routes: two bridges of 65 536 overlay addresses.
pub const MAX_N: u32 = 2 * 65_536;

pub const SPEC: Spec = Spec {
    name: "kernel",
    title: "Kernel programming (one VTEP)",
    about: "One BGP peer announces N MAC/IP type-2 routes (100 per UPDATE) to a VTEP; each \
            becomes a remote FDB entry on the vxlan device (dst = next hop), the bridge's FDB \
            entry for the MAC and a neighbour entry on the bridge, all `extern_learn` (what \
            vxbgp and FRR's zebra both install). Time from the first UPDATE sent to the last \
            entry's netlink notification, checked by a dump (0 missing, 0 extra); then all \
            withdrawn, until none is left. CPU = daemon utime+stime while installing (FRR: \
            zebra + bgpd); peak RSS summed over the daemons. `netlink floor`: the same entries \
            written by `fib::floor` (requests built beforehand, one pipelined socket; CPU = \
            its thread's).",
    param: "N",
    role: "VTEP",
    metrics: &[
        Metric {
            key: "time_s",
            header: "install",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "withdraw_s",
            header: "withdraw",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "cpu_s",
            header: "CPU",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "peak_rss_kib",
            header: "peak RSS",
            unit: Unit::Kib,
            ratio: true,
        },
    ],
    plots: &[("time_s", "kernel: time to install N MAC/IP routes")],
};

/// The bench's devices in the VTEP namespace; `Drop` deletes them (and with them every
/// entry on them).
struct Devices {
    ns: String,
    vx: Vec<String>,
    br: Vec<String>,
    vx_index: Vec<u32>,
    br_index: Vec<u32>,
}

impl Drop for Devices {
    fn drop(&mut self) {
        for d in self.vx.iter().chain(&self.br) {
            let _ = sys::run_sync(&["ip", "-n", &self.ns, "link", "del", d]);
        }
    }
}

fn ifindex(ns: &str, dev: &str) -> Result<u32> {
    let out = sys::run_sync(&["ip", "-n", ns, "-o", "link", "show", "dev", dev])?;
    out.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .ok_or(format!("no ifindex for {dev} in {ns}"))
}

impl Devices {
    /// `kbrK` + `kvxK` (VNI `vni0 + K`) for K in 0..2, set up as both daemons expect.
    async fn create(ns: &str, vni0: u32) -> Result<Devices> {
        let mut d = Devices {
            ns: ns.to_string(),
            vx: Vec::new(),
            br: Vec::new(),
            vx_index: Vec::new(),
            br_index: Vec::new(),
        };
        let mut cmds = String::new();
        for k in 0..2u32 {
            let (br, vx) = (format!("kbr{k}"), format!("kvx{k}"));
            // A fixed bridge MAC: one that follows its ports changes (and flushes the
            // bridge's neighbours) when a port comes or goes.
            cmds.push_str(&format!(
                "link add {br} address 02:b0:00:00:00:0{k} type bridge\n\
                 link set {br} up\n\
                 link add {vx} type vxlan id {} local {RR_ADDR} dstport 4789 nolearning\n\
                 link set {vx} master {br}\n\
                 link set {vx} up\n",
                vni0 + k
            ));
            d.vx.push(vx);
            d.br.push(br);
        }
        sys::run_input(&["ip", "-n", ns, "-batch", "-"], Some(&cmds)).await?;
        for vx in &d.vx {
            sys::run(&[
                "bridge",
                "-n",
                ns,
                "link",
                "set",
                "dev",
                vx,
                "learning",
                "off",
                "neigh_suppress",
                "on",
            ])
            .await?;
        }
        for k in 0..2 {
            let (vx, br) = (d.vx.get(k), d.br.get(k));
            if let (Some(vx), Some(br)) = (vx, br) {
                d.vx_index.push(ifindex(ns, vx)?);
                d.br_index.push(ifindex(ns, br)?);
            }
        }
        Ok(d)
    }

    async fn dump(&self) -> Result<Dump> {
        kwatch::dump(&self.ns, &self.vx, &self.br).await
    }

    async fn watch(&self, worker: &NsWorker) -> Result<KernelWatch> {
        KernelWatch::open(worker, self.vx_index.clone(), self.br_index.clone()).await
    }
}

/// The routes: route `i` in VNI index `k` (first half 0, rest 1), MAC `02:00:00` + i,
/// IP 198.18.x.y counting within its VNI, next hop the client (198.19.1.0).
struct Routes {
    n: u32,
    vni0: u32,
}

impl Routes {
    fn half(&self) -> u32 {
        self.n.div_ceil(2)
    }

    /// (VNI index, MAC, IP) of route `i`.
    fn route(&self, i: u32) -> (u32, [u8; 6], Ipv4Addr) {
        let k = u32::from(i >= self.half());
        let j = i - k * self.half();
        let [_, _, x, y] = j.to_be_bytes();
        (k, RouteSpace::mac(0, i).0, Ipv4Addr::new(198, 18, x, y))
    }

    fn vni(&self, k: u32) -> Result<Vni> {
        Vni::new(self.vni0 + k)
            .filter(|v| v.get() <= u32::from(u16::MAX))
            .ok_or(format!("VNI {} does not fit an RD", self.vni0 + k))
    }

    fn nh() -> Ipv4Addr {
        client_addr(0)
    }

    /// The type-3 routes (one per VNI) then, with `type2`, every type-2 route, as UPDATEs.
    fn announce(&self, type2: bool) -> Result<Bytes> {
        let mut out = BytesMut::new();
        for k in 0..2 {
            let vni = self.vni(k)?;
            let rd = originate::auto_rd(Self::nh(), u16::try_from(vni.get()).unwrap_or(0));
            let rt = [originate::auto_rt(ASN, vni)];
            let (t3, mut a3) = originate::imet(rd, vni, IpAddr::V4(Self::nh()), &rt);
            a3.local_pref = Some(100);
            routes::pack(
                std::iter::once(t3),
                |nlri| reach(a3.clone(), nlri),
                &mut out,
            );
            if !type2 {
                continue;
            }
            let (_, mut attrs) =
                originate::mac_ip(rd, vni, MacAddr([2, 0, 0, 0, 0, 0]), None, &rt, None);
            attrs.local_pref = Some(100);
            let mine = (0..self.n).filter(|&i| self.route(i).0 == k);
            let nlri = mine.map(|i| {
                let (_, mac, ip) = self.route(i);
                originate::mac_ip(rd, vni, MacAddr(mac), Some(IpAddr::V4(ip)), &rt, None).0
            });
            routes::pack(nlri, |b| reach(attrs.clone(), b), &mut out);
        }
        Ok(out.freeze())
    }

    /// Withdrawals of every type-2 route (the type-3 routes stay).
    fn withdraw(&self) -> Result<Bytes> {
        let mut out = BytesMut::new();
        for k in 0..2 {
            let vni = self.vni(k)?;
            let rd = originate::auto_rd(Self::nh(), u16::try_from(vni.get()).unwrap_or(0));
            let rt = [originate::auto_rt(ASN, vni)];
            let nlri = (0..self.n).filter(|&i| self.route(i).0 == k).map(|i| {
                let (_, mac, ip) = self.route(i);
                originate::mac_ip(rd, vni, MacAddr(mac), Some(IpAddr::V4(ip)), &rt, None).0
            });
            routes::pack(
                nlri,
                |b| UpdateMsg {
                    mp_unreach: Some(MpUnreach {
                        afi: L2vpnEvpn::AFI,
                        safi: L2vpnEvpn::SAFI,
                        nlri: b,
                    }),
                    ..UpdateMsg::default()
                },
                &mut out,
            );
        }
        Ok(out.freeze())
    }

    /// What the kernel must hold once all are installed.
    fn expected(&self, d: &Devices) -> Dump {
        let mut want = Dump::default();
        for i in 0..self.n {
            let (k, mac, ip) = self.route(i);
            let (Some(vx), Some(br)) = (d.vx.get(k as usize), d.br.get(k as usize)) else {
                continue;
            };
            let mac = Mac(mac).to_string();
            want.remote.insert((vx.clone(), mac.clone(), Self::nh()));
            want.master.insert((vx.clone(), mac.clone()));
            want.neigh.insert((br.clone(), ip, mac));
        }
        want
    }

    /// The FIB ops for the floor: install (MAC, then its neighbour) and remove.
    fn ops(&self) -> (Vec<FibOp>, Vec<FibOp>) {
        let (mut add, mut del) = (Vec::new(), Vec::new());
        for i in 0..self.n {
            let (k, mac, ip) = self.route(i);
            let vni = self.vni0 + k;
            let m = RemoteMac {
                vni,
                mac: Mac(mac),
                vtep: IpAddr::V4(Self::nh()),
            };
            let s = SuppressNeigh {
                vni,
                ip: IpAddr::V4(ip),
                mac: Mac(mac),
            };
            add.extend([FibOp::MacSet(m), FibOp::NeighSet(s)]);
            del.extend([FibOp::NeighDel(s), FibOp::MacDel(m)]);
        }
        (add, del)
    }
}

fn reach(attrs: bgp::wire::PathAttrs, nlri: Bytes) -> UpdateMsg {
    UpdateMsg {
        attrs,
        mp_reach: Some(MpReach {
            afi: L2vpnEvpn::AFI,
            safi: L2vpnEvpn::SAFI,
            next_hop: MpNextHop::V4(Routes::nh()),
            nlri,
        }),
        ..UpdateMsg::default()
    }
}

pub async fn run(ctx: &Ctx, peer: Peer, n: u32, dir: &Path) -> Sample {
    let mut s = Sample::default();
    let r = if n == 0 || n > MAX_N {
        Err(format!("N must be 1..={MAX_N}"))
    } else if peer == Peer::Floor {
        floor(ctx, n, &mut s).await
    } else {
        daemon(ctx, peer, n, dir, &mut s).await
    };
    if let Err(e) = r {
        s.fail(e);
    }
    s
}

fn n_counts(n: u32) -> Counts {
    let n = n as usize;
    Counts {
        remote: n,
        master: n,
        neigh: n,
    }
}

/// Waits for `want` by the listener or, after an overrun, by dumps every 100 ms.
async fn until(
    w: &KernelWatch,
    d: &Devices,
    want: Counts,
    timeout: Duration,
    check: impl FnMut() -> Result<()>,
    s: &mut Sample,
) -> Result<Instant> {
    match w.wait(want, timeout, check).await {
        Err(e) if e == "overrun" => {
            s.notes
                .push("the netlink listener overran; timed by dumps (100 ms)".into());
            let deadline = Instant::now() + timeout;
            loop {
                let got = d.dump().await?.counts();
                if got == want {
                    return Ok(Instant::now());
                }
                if Instant::now() >= deadline {
                    return Err(format!("the kernel holds {got}, expected {want}"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        r => r,
    }
}

async fn daemon(ctx: &Ctx, peer: Peer, n: u32, dir: &Path, s: &mut Sample) -> Result<()> {
    let routes = Routes {
        n,
        vni0: ctx.opts.vni,
    };
    let (type3, all, withdraw) = (
        routes.announce(false)?,
        routes.announce(true)?,
        routes.withdraw()?,
    );
    let ns = ctx.topo.rr.name();
    // Declared first, dropped last: the daemon stops before its devices go.
    let devs = Devices::create(ns, ctx.opts.vni).await?;
    let worker = NsWorker::start(&ctx.topo.rr)?;
    let watch = devs.watch(&worker).await?;
    let mut cfg = ctx.start_cfg(dir);
    cfg.role = Role::Vtep {
        router_id: RR_ADDR,
        neighbor: None,
    };
    let mut vtep = Reflector::start(peer, &cfg).await?;
    let space = RouteSpace::new(1, 1, ctx.opts.vni)?;
    let fleet = Fleet::spawn(ctx.topo.worker.clone(), Templates::new(&space), 1, 179);
    fleet.set_outbox(0, Outbox::Announce(type3));
    fleet.connect_all();
    fleet.wait_established(|_| true, ctx.timeout()).await?;
    vtep.wait_established(1, ctx.timeout()).await?;
    // The flood entries show the VTEP found both VNIs and programs them.
    let deadline = Instant::now() + ctx.timeout();
    loop {
        vtep.check_alive()?;
        let fdb = sys::run(&["bridge", "-n", ns, "fdb", "show"]).await?;
        let flood = fdb
            .lines()
            .filter(|l| l.starts_with("00:00:00:00:00:00") && l.contains(" dst "))
            .count();
        if flood == 2 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not program the flood entries of the 2 VNIs ({flood} of 2)",
                peer.title()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(ctx.opts.settle_ms)).await;
    let idle = vtep.usage()?;

    let t0 = Instant::now();
    fleet.set_outbox(0, Outbox::Announce(all));
    let done = until(
        &watch,
        &devs,
        n_counts(n),
        ctx.timeout(),
        || vtep.check_alive(),
        s,
    )
    .await
    .map_err(|e| format!("installing: {e}"))?;
    s.secs("time_s", since(done, t0));
    let full = vtep.usage()?;
    if let Some(d) = devs.dump().await?.diff(&routes.expected(&devs)) {
        return Err(format!("installed, but the dump differs: {d}"));
    }

    let t1 = Instant::now();
    fleet.set_outbox(0, Outbox::Withdraw(withdraw));
    let done = until(
        &watch,
        &devs,
        Counts::default(),
        ctx.timeout(),
        || vtep.check_alive(),
        s,
    )
    .await
    .map_err(|e| format!("withdrawing: {e}"))?;
    s.secs("withdraw_s", since(done, t1));
    let end = vtep.usage()?;
    if let Some(d) = devs.dump().await?.diff(&Dump::default()) {
        return Err(format!("withdrawn, but the dump differs: {d}"));
    }
    s.set("cpu_s", full.cpu_s - idle.cpu_s);
    s.set("withdraw_cpu_s", end.cpu_s - full.cpu_s);
    s.set("idle_rss_kib", idle.rss_kib as f64);
    s.set("rss_kib", full.rss_kib as f64);
    s.set("peak_rss_kib", end.hwm_kib as f64);
    s.set("entries", (3 * u64::from(n)) as f64);
    Ok(())
}

/// CPU time of the calling thread.
fn thread_cpu() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// The same entries through `fib::floor` (what the kernel costs): (time, CPU).
async fn floor_write(worker: &NsWorker, reqs: Vec<fib::writer::Request>) -> Result<(f64, f64)> {
    worker
        .run(move || -> Result<(f64, f64)> {
            let mut w = fib::writer::Writer::open().map_err(|e| format!("netlink: {e}"))?;
            let c0 = thread_cpu();
            let (d, failed) = fib::floor::write(&mut w, &reqs);
            let cpu = thread_cpu() - c0;
            match failed.first() {
                Some((i, errno)) => Err(format!(
                    "{} of {} requests failed, e.g. #{i}: errno {errno}",
                    failed.len(),
                    reqs.len()
                )),
                None => Ok((d.as_secs_f64(), cpu)),
            }
        })
        .await?
}

async fn floor(ctx: &Ctx, n: u32, s: &mut Sample) -> Result<()> {
    let routes = Routes {
        n,
        vni0: ctx.opts.vni,
    };
    let devs = Devices::create(ctx.topo.rr.name(), ctx.opts.vni).await?;
    let worker = NsWorker::start(&ctx.topo.rr)?;
    // A listener is there as with the daemons (the kernel's notification work the same).
    let watch = devs.watch(&worker).await?;
    let (add, del) = routes.ops();
    let d = (ctx.opts.vni..ctx.opts.vni + 2)
        .zip(devs.vx_index.iter().zip(&devs.br_index))
        .map(|(vni, (&vx, &br))| {
            (
                vni,
                VniDevices {
                    vxlan_ifindex: vx,
                    bridge_ifindex: br,
                },
            )
        })
        .collect::<Vec<_>>();
    let lookup = |vni: u32| d.iter().find(|(v, _)| *v == vni).map(|(_, x)| *x);
    let (add, del) = (
        fib::floor::requests(&add, lookup),
        fib::floor::requests(&del, lookup),
    );
    let (t, cpu) = floor_write(&worker, add).await?;
    s.set("time_s", t);
    s.set("cpu_s", cpu);
    // Every entry was acknowledged; the listener must have seen them all too.
    until(&watch, &devs, n_counts(n), ctx.timeout(), || Ok(()), s).await?;
    if let Some(d) = devs.dump().await?.diff(&routes.expected(&devs)) {
        return Err(format!("installed, but the dump differs: {d}"));
    }
    let (t, cpu) = floor_write(&worker, del).await?;
    s.set("withdraw_s", t);
    s.set("withdraw_cpu_s", cpu);
    until(
        &watch,
        &devs,
        Counts::default(),
        ctx.timeout(),
        || Ok(()),
        s,
    )
    .await?;
    if let Some(d) = devs.dump().await?.diff(&Dump::default()) {
        return Err(format!("removed, but the dump differs: {d}"));
    }
    s.set("entries", (3 * u64::from(n)) as f64);
    Ok(())
}
