//! Reflection: client 0 announces N type-2 routes (100 per UPDATE), client 1 receives them.
//! Timed from the first UPDATE sent to the last route at the receiver; then client 0
//! withdraws them all, timed the same way. Memory per route = RSS growth from idle to the
//! full table, divided by N.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{since, Ctx, Metric, Sample, Spec, Unit};
use crate::client::{Fleet, Outbox};
use crate::count::Templates;
use crate::reflector::{Peer, Reflector};
use crate::routes::RouteSpace;
use crate::sys::{self, Result};

pub const SPEC: Spec = Spec {
    name: "reflect",
    title: "Reflection",
    about: "One client announces N type-2 routes (100 per UPDATE), another receives them: time \
            from the first UPDATE sent to the last route at the receiver; then all are withdrawn \
            (time to the last withdrawal at the receiver). CPU = reflector utime+stime while \
            announcing; per route = (RSS with the full table - idle RSS) / N.",
    param: "N",
    role: "reflector",
    metrics: &[
        Metric {
            key: "time_s",
            header: "announce",
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
            key: "idle_rss_kib",
            header: "idle RSS",
            unit: Unit::Kib,
            ratio: false,
        },
        Metric {
            key: "peak_rss_kib",
            header: "peak RSS",
            unit: Unit::Kib,
            ratio: true,
        },
        Metric {
            key: "bytes_per_route",
            header: "per route",
            unit: Unit::Bytes,
            ratio: true,
        },
    ],
    plots: &[
        ("time_s", "reflection: time to announce N"),
        ("peak_rss_kib", "reflection: peak RSS"),
    ],
};

pub async fn run(ctx: &Ctx, peer: Peer, n: u32, dir: &Path) -> Sample {
    let mut s = Sample::default();
    if let Err(e) = measure(ctx, peer, n, dir, &mut s).await {
        s.fail(e);
    }
    s
}

async fn measure(ctx: &Ctx, peer: Peer, n: u32, dir: &Path, s: &mut Sample) -> Result<()> {
    let plan = &ctx.opts;
    if n == 0 {
        return Err("N must be at least 1".into());
    }
    let space = RouteSpace::new(2, n, plan.vni)?;
    let tmpl = Templates::new(&space);
    let announce = space.announce(0, false);
    let withdraw = space.withdraw(0, false);
    let want = u64::from(n);

    let mut rr = Reflector::start(peer, &ctx.start_cfg(dir)).await?;
    let fleet = Fleet::spawn(ctx.topo.worker.clone(), tmpl, 2, 179);
    fleet.connect_all();
    fleet.wait_established(|_| true, ctx.timeout()).await?;
    rr.wait_established(2, ctx.timeout()).await?;
    tokio::time::sleep(Duration::from_millis(plan.settle_ms)).await;
    let idle = rr.usage()?;

    let t0 = Instant::now();
    fleet.set_outbox(0, Outbox::Announce(announce));
    fleet
        .wait_held(
            |i| if i == 1 { want } else { 0 },
            ctx.timeout(),
            || rr.check_alive(),
        )
        .await
        .map_err(|e| format!("announcing: {e}"))?;
    s.secs("time_s", since(fleet.last_change(|i| i == 1), t0));
    let full = rr.usage()?;

    let t1 = Instant::now();
    fleet.set_outbox(0, Outbox::Withdraw(withdraw));
    fleet
        .wait_held(|_| 0, ctx.timeout(), || rr.check_alive())
        .await
        .map_err(|e| format!("withdrawing: {e}"))?;
    s.secs("withdraw_s", since(fleet.last_change(|i| i == 1), t1));
    let end = rr.usage()?;

    s.set("cpu_s", full.cpu_s - idle.cpu_s);
    s.set("withdraw_cpu_s", end.cpu_s - full.cpu_s);
    s.set("idle_rss_kib", idle.rss_kib as f64);
    s.set("rss_kib", full.rss_kib as f64);
    s.set("end_rss_kib", end.rss_kib as f64);
    s.set("peak_rss_kib", end.hwm_kib as f64);
    s.set(
        "bytes_per_route",
        (full.rss_kib.saturating_sub(idle.rss_kib) * 1024) as f64 / want as f64,
    );
    let t = fleet.totals();
    s.set("session_drops", t.drops as f64);
    if let Some(p) = t.problems() {
        s.fail(format!("converged, but the clients saw {p}"));
    }
    if t.drops > 0 {
        s.notes
            .push(format!("{} sessions lost during the run", t.drops));
    }
    if let Some(pid) = rr.pids().first() {
        if let Some(l) = sys::nofile_limit(*pid) {
            s.set("daemon_nofile", l as f64);
        }
    }
    Ok(())
}
