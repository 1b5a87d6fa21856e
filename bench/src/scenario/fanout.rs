//! Fan-out: K clients each announce 100 type-2 and 1 type-3 route; the reflector reflects
//! all to all. Timed from the first UPDATE sent to every client holding every other
//! client's routes, (K-1) x 101 each.
//!
//! Also measured: session set-up (all K connecting at once, from the clients' view, with
//! connection attempts and sessions lost), the reflector's RSS once all sessions are up and
//! idle, its peak RSS (VmHWM), and its CPU time (utime + stime) over the timed phase.

use std::path::Path;
use std::time::Instant;

use super::{reconnect, since, Ctx, Metric, Sample, Spec, Unit};
use crate::client::{Fleet, Outbox};
use crate::count::Templates;
use crate::reflector::{Peer, Reflector};
use crate::routes::RouteSpace;
use crate::sys::{self, Result};

pub const SPEC: Spec = Spec {
    name: "fanout",
    title: "Fan-out",
    about: "K clients each announce 100 type-2 + 1 type-3 route at once; time from the first \
            UPDATE sent until every client holds every other client's routes ((K-1) x 101). \
            CPU = reflector utime+stime over that time; idle RSS = all K sessions up, no routes; \
            peak RSS = VmHWM at convergence; set-up = all K clients connecting at once until all \
            are Established.",
    param: "K",
    role: "reflector",
    metrics: &[
        Metric {
            key: "time_s",
            header: "time",
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
            key: "setup_s",
            header: "set-up",
            unit: Unit::Seconds,
            ratio: false,
        },
        Metric {
            key: "session_drops",
            header: "sessions lost",
            unit: Unit::Count,
            ratio: false,
        },
        Metric {
            key: "routes_per_update",
            header: "NLRI/UPDATE rx",
            unit: Unit::Count,
            ratio: false,
        },
    ],
    plots: &[
        ("time_s", "fan-out: time to converge"),
        ("peak_rss_kib", "fan-out: peak RSS"),
    ],
};

/// Runs fan-out with K clients against a fresh `peer`; with `reconnect`, goes on with the
/// reconnect measurement on the same converged reflector.
pub async fn run(
    ctx: &Ctx,
    peer: Peer,
    k: u32,
    dir: &Path,
    reconnect: bool,
) -> (Sample, Option<Sample>) {
    let mut fan = Sample::default();
    let mut rec = reconnect.then(Sample::default);
    if k < 3 {
        let why = format!("K = {k}: fan-out and reconnect need at least 3 clients");
        fan.fail(why.clone());
        if let Some(r) = rec.as_mut() {
            r.fail(why);
        }
        return (fan, rec);
    }
    let r = measure(ctx, peer, k, dir, &mut fan, rec.as_mut()).await;
    if let Err(e) = r {
        if fan.ok() && fan.metrics.contains_key("time_s") {
            // Fan-out was measured; the failure is the reconnect's.
            if let Some(r) = rec.as_mut() {
                r.fail(e);
            }
        } else {
            fan.fail(e.clone());
            if let Some(r) = rec.as_mut() {
                r.fail(format!("fan-out did not complete: {e}"));
            }
        }
    }
    (fan, rec)
}

async fn measure(
    ctx: &Ctx,
    peer: Peer,
    k: u32,
    dir: &Path,
    fan: &mut Sample,
    rec: Option<&mut Sample>,
) -> Result<()> {
    let plan = &ctx.opts;
    let space = RouteSpace::new(k, plan.type2, plan.vni)?;
    let per = space.per_client();
    let tmpl = Templates::new(&space);
    // Encoded before anything is timed.
    let outboxes: Vec<Outbox> = (0..k)
        .map(|c| Outbox::Announce(space.announce(c, true)))
        .collect();
    let mut rr = Reflector::start(peer, &ctx.start_cfg(dir)).await?;
    let started = rr.usage()?;
    let fleet = Fleet::spawn(ctx.topo.worker.clone(), tmpl, k, 179);

    let t_connect = Instant::now();
    fleet.connect_all();
    fleet
        .wait_established(|_| true, ctx.timeout())
        .await
        .map_err(|e| format!("{e}\n{}", rr_tail(&mut rr)))?;
    fan.secs("setup_s", since(Instant::now(), t_connect));
    fan.set("setup_attempts", fleet.totals().attempts as f64);
    rr.wait_established(k as usize, ctx.timeout()).await?;
    tokio::time::sleep(std::time::Duration::from_millis(plan.settle_ms)).await;
    if let Some(i) = (0..fleet.len()).find(|&i| {
        fleet
            .stats(i)
            .is_some_and(|s| s.held.load(std::sync::atomic::Ordering::Relaxed) > 0)
    }) {
        return Err(format!("client {i} holds routes before any was sent"));
    }
    let idle = rr.usage()?;
    let before = fleet.totals();
    let bench0 = sys::usage(std::process::id())?;

    let t0 = Instant::now();
    for (c, o) in outboxes.into_iter().enumerate() {
        fleet.set_outbox(c, o);
    }
    let want = (u64::from(k) - 1) * per;
    fleet
        .wait_held(|_| want, ctx.timeout(), || rr.check_alive())
        .await?;
    let t_end = fleet.last_change(|_| true);
    let done = rr.usage()?;
    let bench1 = sys::usage(std::process::id())?;
    let after = fleet.totals();

    fan.secs("time_s", since(t_end, t0));
    fan.set("cpu_s", done.cpu_s - idle.cpu_s);
    fan.set("cpu_total_s", done.cpu_s - started.cpu_s);
    fan.set("idle_rss_kib", idle.rss_kib as f64);
    fan.set("rss_kib", done.rss_kib as f64);
    fan.set("peak_rss_kib", done.hwm_kib as f64);
    fan.set("bench_cpu_s", bench1.cpu_s - bench0.cpu_s);
    fan.set("session_drops", after.drops as f64);
    let updates = after.updates_rx - before.updates_rx;
    if updates > 0 {
        fan.set(
            "routes_per_update",
            (u64::from(k) * want) as f64 / updates as f64,
        );
    }
    if let Some(p) = after.problems() {
        fan.fail(format!("converged, but the clients saw {p}"));
    }
    if after.own > 0 {
        fan.notes.push(format!(
            "{} of the clients' own routes were sent back to them",
            after.own
        ));
    }
    if let Some(pids) = rr.pids().first() {
        if let Some(n) = sys::nofile_limit(*pids) {
            fan.set("daemon_nofile", n as f64);
        }
    }
    if let Some(rec) = rec {
        reconnect::measure(ctx, &mut rr, &fleet, k, per, rec).await?;
    }
    Ok(())
}

/// The end of the reflector's stderr, or why it is gone, for a failure message.
pub fn rr_tail(rr: &mut Reflector) -> String {
    match rr.check_alive() {
        Ok(()) => String::new(),
        Err(e) => e,
    }
}
