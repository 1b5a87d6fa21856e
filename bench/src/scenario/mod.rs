//! Scenarios: each a module that runs one measurement against one freshly started
//! reflector and returns a [`Sample`] of named metrics, and a [`Spec`] that says which
//! metrics its report table shows. The runner repeats every (parameter, reflector) point
//! `--runs` times, interleaving the reflectors so background load drifts hit all alike.
//!
//! Adding a scenario (the planned `kernel` one: routes into a VTEP's kernel FDB;
//! `migration`: a MAC moving between VTEPs) means a module with a `SPEC` and a `run`, a
//! [`Scenario`] variant, and a line in [`run_all`]; reports and plots pick it up from the
//! spec.

pub mod fanout;
pub mod kernel;
pub mod migration;
pub mod reconnect;
pub mod reflect;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::Topology;
use crate::reflector::{Peer, Role, StartCfg};
use crate::report::{Entry, Results};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Fanout,
    Reconnect,
    Reflect,
    /// Type-2 routes into one VTEP's kernel: vxbgp, FRR (zebra) and the netlink floor.
    Kernel,
    /// A MAC moving between two of three VTEPs, the third following.
    Migration,
    /// All of the above.
    All,
}

/// How a metric is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    /// Stored in KiB, shown in MiB.
    Kib,
    Bytes,
    Count,
}

/// A column of a scenario's table.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub key: &'static str,
    pub header: &'static str,
    pub unit: Unit,
    /// Also show this metric's ratio to FRR's.
    pub ratio: bool,
}

/// What a scenario reports.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    /// What it means, for the report.
    pub about: &'static str,
    /// The parameter's name ("K", "N").
    pub param: &'static str,
    /// What the daemon under test is here (the column's heading: "reflector", "VTEP").
    pub role: &'static str,
    pub metrics: &'static [Metric],
    /// (metric, plot title) pairs drawn against the parameter in plot.svg.
    pub plots: &'static [(&'static str, &'static str)],
}

/// One measurement: metrics by key, or why it failed.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Sample {
    pub metrics: BTreeMap<String, f64>,
    pub failure: Option<String>,
    pub notes: Vec<String>,
}

impl Sample {
    pub fn set(&mut self, key: &str, v: f64) {
        self.metrics.insert(key.to_string(), v);
    }

    pub fn secs(&mut self, key: &str, d: Duration) {
        self.set(key, d.as_secs_f64());
    }

    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(why);
        }
    }
}

/// `later - earlier`, zero if negative.
pub fn since(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

/// What every scenario run gets.
pub struct Ctx {
    pub topo: Topology,
    pub opts: Plan,
    pub vxbgp: PathBuf,
    pub work: PathBuf,
}

impl Ctx {
    /// Where run `tag` keeps its configs and logs.
    pub fn dir(&self, tag: &str) -> PathBuf {
        self.work.join(tag)
    }

    pub fn start_cfg<'a>(&'a self, dir: &'a Path) -> StartCfg<'a> {
        StartCfg {
            ns: &self.topo.rr,
            dir,
            vxbgp: &self.vxbgp,
            nofile: self.opts.daemon_nofile,
            role: Role::Reflector {
                router_id: crate::netns::RR_ADDR,
            },
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.opts.timeout_s)
    }
}

/// What to run (the options, resolved).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    pub fanout: bool,
    pub reconnect: bool,
    pub reflect: bool,
    pub kernel: bool,
    pub k: Vec<u32>,
    pub n: Vec<u32>,
    /// Route counts of the kernel scenario.
    pub kernel_n: Vec<u32>,
    pub migration: bool,
    /// MAC moves per migration run.
    pub moves: u32,
    pub runs: u32,
    pub peers: Vec<Peer>,
    pub timeout_s: u64,
    pub gobgp_max_routes: u64,
    pub daemon_nofile: Option<u64>,
    pub vni: u32,
    /// Type-2 routes per client in fan-out.
    pub type2: u32,
    /// Pause between "all sessions up" and the first UPDATE, so idle RSS is idle.
    pub settle_ms: u64,
}

impl Plan {
    /// The most clients any scenario needs.
    pub fn clients(&self) -> u32 {
        let fan = if self.fanout || self.reconnect {
            self.k.iter().copied().max().unwrap_or(0)
        } else {
            0
        };
        let refl = if self.reflect { 2 } else { 0 };
        let kern = u32::from(self.kernel);
        fan.max(refl).max(kern)
    }
}

/// Why `peer` is not run with a table of `routes` routes, if it is not.
fn skip(plan: &Plan, peer: Peer, routes: u64) -> Option<String> {
    (peer == Peer::Gobgp && routes > plan.gobgp_max_routes).then(|| {
        format!(
            "not run: {routes} routes > --gobgp-max-routes {} (GoBGP's time grows quadratically with type-2 routes)",
            plan.gobgp_max_routes
        )
    })
}

/// The longest wait for a quiet machine before each run.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs everything the plan asks for, calling `progress` after every sample (the report is
/// rewritten there, so an interrupted run keeps what it measured).
pub async fn run_all(ctx: &Ctx, results: &mut Results, mut progress: impl FnMut(&Results)) {
    let plan = &ctx.opts;
    if plan.fanout || plan.reconnect {
        for &k in &plan.k {
            let routes = u64::from(k) * (u64::from(plan.type2) + 1);
            for run in 1..=plan.runs {
                for &peer in &plan.peers {
                    if let Some(why) = skip(plan, peer, routes) {
                        if plan.fanout {
                            results.skip(&fanout::SPEC, u64::from(k), peer, &why);
                        }
                        if plan.reconnect {
                            results.skip(&reconnect::SPEC, u64::from(k), peer, &why);
                        }
                        continue;
                    }
                    crate::sys::settle(SETTLE).await;
                    let tag = format!("fanout-k{k}-{}-{run}", peer.name());
                    println!("[{tag}] ...");
                    let (fan, rec) =
                        fanout::run(ctx, peer, k, &ctx.dir(&tag), plan.reconnect).await;
                    if plan.fanout {
                        announce(&tag, "fan-out", &fan);
                        results.add(&fanout::SPEC, u64::from(k), peer, fan);
                    }
                    if let Some(rec) = rec {
                        announce(&tag, "reconnect", &rec);
                        results.add(&reconnect::SPEC, u64::from(k), peer, rec);
                    }
                    progress(results);
                }
            }
        }
    }
    if plan.reflect {
        for &n in &plan.n {
            for run in 1..=plan.runs {
                for &peer in &plan.peers {
                    if let Some(why) = skip(plan, peer, u64::from(n)) {
                        results.skip(&reflect::SPEC, u64::from(n), peer, &why);
                        continue;
                    }
                    crate::sys::settle(SETTLE).await;
                    let tag = format!("reflect-n{n}-{}-{run}", peer.name());
                    println!("[{tag}] ...");
                    let s = reflect::run(ctx, peer, n, &ctx.dir(&tag)).await;
                    announce(&tag, "reflection", &s);
                    results.add(&reflect::SPEC, u64::from(n), peer, s);
                    progress(results);
                }
            }
        }
    }
    if plan.kernel {
        // GoBGP has no kernel programming; the floor is measured in every run.
        let mut peers: Vec<Peer> = plan
            .peers
            .iter()
            .copied()
            .filter(|&p| p != Peer::Gobgp)
            .collect();
        peers.push(Peer::Floor);
        for &n in &plan.kernel_n {
            if plan.peers.contains(&Peer::Gobgp) {
                results.skip(
                    &kernel::SPEC,
                    u64::from(n),
                    Peer::Gobgp,
                    "not run: gobgpd programs no kernel",
                );
            }
            for run in 1..=plan.runs {
                for &peer in &peers {
                    crate::sys::settle(SETTLE).await;
                    let tag = format!("kernel-n{n}-{}-{run}", peer.name());
                    println!("[{tag}] ...");
                    let s = kernel::run(ctx, peer, n, &ctx.dir(&tag)).await;
                    announce(&tag, "kernel", &s);
                    results.add(&kernel::SPEC, u64::from(n), peer, s);
                    progress(results);
                }
            }
        }
    }
    if plan.migration {
        let m = u64::from(plan.moves);
        if plan.peers.contains(&Peer::Gobgp) {
            results.skip(
                &migration::SPEC,
                m,
                Peer::Gobgp,
                "not run: gobgpd programs no kernel",
            );
        }
        for run in 1..=plan.runs {
            for &peer in plan.peers.iter().filter(|&&p| p != Peer::Gobgp) {
                crate::sys::settle(SETTLE).await;
                let tag = format!("migration-{}-{run}", peer.name());
                println!("[{tag}] ...");
                let s = migration::run(ctx, peer, plan.moves, &ctx.dir(&tag)).await;
                announce(&tag, "migration", &s);
                results.add(&migration::SPEC, m, peer, s);
                progress(results);
            }
        }
    }
}

fn announce(tag: &str, what: &str, s: &Sample) {
    match &s.failure {
        None => {
            let m: Vec<String> = s
                .metrics
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::report::num(*v)))
                .collect();
            println!("[{tag}] {what}: {}", m.join(" "));
        }
        Some(f) => println!("[{tag}] {what} FAILED: {f}"),
    }
}

/// Every scenario's spec, in report order.
pub const SPECS: [&Spec; 5] = [
    &fanout::SPEC,
    &reconnect::SPEC,
    &reflect::SPEC,
    &kernel::SPEC,
    &migration::SPEC,
];

impl Entry {
    /// The spec of this entry's scenario.
    pub fn spec(&self) -> Option<&'static Spec> {
        SPECS.iter().copied().find(|s| s.name == self.scenario)
    }
}
