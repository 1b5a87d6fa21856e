//! Reconnect, after fan-out converged: client 0 sends a Cease and disconnects (the others
//! must lose its routes), then reconnects. Timed from its session reaching Established to
//! it holding the full table again, (K-1) x 101 routes. (FRR waits for its update-group
//! timers here, several seconds.)

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{since, Ctx, Metric, Sample, Spec, Unit};
use crate::client::{instant, Fleet};
use crate::reflector::Reflector;
use crate::sys::Result;

pub const SPEC: Spec = Spec {
    name: "reconnect",
    title: "Reconnect",
    about:
        "After fan-out with K clients: one client disconnects (Cease) and reconnects; time from \
            its session reaching Established until it holds the full table ((K-1) x 101) again. \
            peer down = from the disconnect until every other client has withdrawn its routes; \
            re-learn = from its Established until every other client holds its routes again; \
            CPU over the whole disconnect/reconnect.",
    param: "K",
    role: "reflector",
    metrics: &[
        Metric {
            key: "time_s",
            header: "full table",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "peer_down_s",
            header: "peer down",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "relearn_s",
            header: "re-learn",
            unit: Unit::Seconds,
            ratio: true,
        },
        Metric {
            key: "cpu_s",
            header: "CPU",
            unit: Unit::Seconds,
            ratio: false,
        },
    ],
    plots: &[],
};

pub async fn measure(
    ctx: &Ctx,
    rr: &mut Reflector,
    fleet: &Fleet,
    k: u32,
    per: u64,
    s: &mut Sample,
) -> Result<()> {
    let full = (u64::from(k) - 1) * per;
    let less = (u64::from(k) - 2) * per;
    let u0 = rr.usage()?;

    let t_down = Instant::now();
    fleet.set_up(0, false);
    fleet
        .wait_held(
            |i| if i == 0 { 0 } else { less },
            ctx.timeout(),
            || rr.check_alive(),
        )
        .await
        .map_err(|e| format!("after client 0 disconnected: {e}"))?;
    s.secs("peer_down_s", since(fleet.last_change(|i| i != 0), t_down));
    rr.wait_established(k as usize - 1, ctx.timeout()).await?;

    fleet.set_up(0, true);
    fleet
        .wait_established(|i| i == 0, ctx.timeout())
        .await
        .map_err(|e| format!("client 0 reconnecting: {e}"))?;
    let c0 = fleet.stats(0).ok_or("no client 0")?;
    let t_est = instant(c0.established_at_ns.load(Relaxed));
    fleet
        .wait_held(|_| full, ctx.timeout(), || rr.check_alive())
        .await
        .map_err(|e| format!("after client 0 reconnected: {e}"))?;
    s.secs("time_s", since(fleet.last_change(|i| i == 0), t_est));
    s.secs("relearn_s", since(fleet.last_change(|i| i != 0), t_est));
    s.set("cpu_s", rr.usage()?.cpu_s - u0.cpu_s);
    if let Some(p) = fleet.totals().problems() {
        s.fail(format!("converged, but the clients saw {p}"));
    }
    Ok(())
}
