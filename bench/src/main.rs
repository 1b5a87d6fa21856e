//! vxbgp-bench: route reflectors under test — vxbgp, FRR bgpd and GoBGP — side by side,
//! each started fresh in a network namespace and driven by simulated EVPN clients that speak
//! BGP with the project's own codec. See `--help` and the README's "Benchmark" section.
//!
//! ```text
//!   main ── Topology (netns RR + CL, veth, K client addresses; removed on drop)
//!     └─ scenario::run_all ── per (scenario, parameter, run, reflector):
//!          Reflector::start (fresh daemon, stopped by PID on drop)
//!          Fleet::spawn (K client tasks, sockets made in CL by the NsWorker thread)
//!          measure → Sample → Results → report.md / report.json / plot.svg
//! ```
//! Ctrl-C / SIGTERM drop the running scenario, so every guard cleans up on the way out.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

mod client;
mod count;
mod kwatch;
mod netns;
mod reflector;
mod report;
mod routes;
mod scenario;
mod sys;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::netns::Topology;
use crate::reflector::Peer;
use crate::report::{Meta, Results};
use crate::scenario::{Ctx, Plan, Scenario};
use crate::sys::Result;

/// Benchmark route reflectors (vxbgp, FRR, GoBGP) with simulated BGP EVPN clients.
///
/// Needs root (network namespaces). Writes report.md, report.json and plot.svg to --out.
#[derive(Parser, Debug)]
#[command(name = "vxbgp-bench", version)]
struct Opts {
    /// Scenarios to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<Scenario>,
    /// Client counts for fan-out and reconnect.
    #[arg(long, value_delimiter = ',', default_value = "100,200,1000")]
    k: Vec<u32>,
    /// Route counts for reflection.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    n: Vec<u32>,
    /// Route counts for the kernel scenario (at most 131072: two bridges of 65 536
    /// overlay addresses).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    kernel_n: Vec<u32>,
    /// MAC moves per migration run.
    #[arg(long, default_value_t = 20)]
    moves: u32,
    /// Repetitions of every measurement (fresh daemons each time); the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Reflectors to measure (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "vxbgp,frr,gobgp"
    )]
    peers: Vec<Peer>,
    /// Quick check for CI: tiny K and N, vxbgp only, one run; exits non-zero if any route
    /// is missing or anything fails. Timings are not asserted.
    #[arg(long)]
    smoke: bool,
    /// Where the report goes (default: bench/results; with --smoke: a temporary directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The vxbgp binary (default: build target/release/vxbgp with cargo).
    #[arg(long)]
    vxbgp: Option<PathBuf>,
    /// Seconds each phase (set-up, convergence, withdrawal) may take before the run is
    /// reported as not converged.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// GoBGP is run only where the table has at most this many routes (its time grows
    /// quadratically with type-2 routes).
    #[arg(long, default_value_t = 10_100)]
    gobgp_max_routes: u64,
    /// RLIMIT_NOFILE for the daemons (default: inherit the bench's, raised to fit K).
    #[arg(long)]
    daemon_nofile: Option<u64>,
    /// The VNI of all routes (at most 65535: it is the RD's number).
    #[arg(long, default_value_t = 100)]
    vni: u32,
    /// Type-2 routes per client in fan-out.
    #[arg(long, default_value_t = 100)]
    type2_per_client: u32,
    /// Keep the daemons' configs and logs (else kept only when a run failed).
    #[arg(long)]
    keep_logs: bool,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vxbgp-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("SIGTERM handler: {e}"))?;
        // Whichever comes first; dropping `run` drops every guard in it (daemons,
        // clients, namespaces).
        tokio::select! {
            r = run(opts) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted; cleaned up".to_string()),
            _ = term.recv() => Err("terminated; cleaned up".to_string()),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vxbgp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plan(o: &Opts) -> Result<Plan> {
    let all = o.scenario.contains(&Scenario::All);
    let has = |s| all || o.scenario.contains(&s);
    let mut p = Plan {
        fanout: has(Scenario::Fanout),
        reconnect: has(Scenario::Reconnect),
        reflect: has(Scenario::Reflect),
        kernel: has(Scenario::Kernel),
        k: o.k.clone(),
        n: o.n.clone(),
        kernel_n: o.kernel_n.clone(),
        migration: has(Scenario::Migration),
        moves: o.moves,
        runs: o.runs,
        peers: o.peers.clone(),
        timeout_s: o.timeout,
        gobgp_max_routes: o.gobgp_max_routes,
        daemon_nofile: o.daemon_nofile,
        vni: o.vni,
        type2: o.type2_per_client,
        settle_ms: 1000,
    };
    if o.smoke {
        p.fanout = true;
        p.reconnect = true;
        p.reflect = true;
        p.kernel = true;
        // Three hosts and a reflector with FRR or vxbgp take longer than CI should wait.
        p.migration = false;
        p.k = vec![4];
        p.n = vec![1000];
        p.kernel_n = vec![100];
        p.runs = 1;
        p.peers = vec![Peer::Vxbgp];
        p.timeout_s = o.timeout.min(20);
        p.settle_ms = 200;
    }
    p.peers.dedup();
    if p.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if (p.fanout || p.reconnect) && p.k.iter().any(|&k| k < 3) {
        return Err("--k: fan-out and reconnect need at least 3 clients".into());
    }
    if p.reflect && p.n.contains(&0) {
        return Err("--n: at least 1 route".into());
    }
    if p.migration && p.moves == 0 {
        return Err("--moves: at least 1".into());
    }
    if p.kernel
        && p.kernel_n
            .iter()
            .any(|&n| n == 0 || n > scenario::kernel::MAX_N)
    {
        return Err(format!(
            "--kernel-n: 1 to {} routes",
            scenario::kernel::MAX_N
        ));
    }
    routes::RouteSpace::new(p.clients().max(1), p.type2, p.vni)?;
    Ok(p)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// `--vxbgp`, or `cargo build --release --locked --bin vxbgp` into the target directory the
/// bench itself was built in (`<target>/release/vxbgp`).
fn vxbgp_binary(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return std::fs::canonicalize(p).map_err(|e| format!("--vxbgp {}: {e}", p.display()));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("vxbgp");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("Building vxbgp (cargo build --release --locked --bin vxbgp) ...");
    let built = std::process::Command::new(cargo)
        .args(["build", "--release", "--locked", "--bin", "vxbgp"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&root)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    match (built, bin.exists()) {
        (true, true) => Ok(bin),
        (false, true) => {
            println!("  (build failed; using the existing {})", bin.display());
            Ok(bin)
        }
        (_, false) => Err(format!(
            "{} not found: build it with `cargo build --release --bin vxbgp` or pass --vxbgp",
            bin.display()
        )),
    }
}

/// The run's scratch directory (configs, sockets, logs); removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            println!("configs and logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn run(opts: Opts) -> Result<bool> {
    if !is_root() {
        return Err("needs root: it creates network namespaces (run it with sudo)".into());
    }
    let plan = plan(&opts)?;
    let clients = plan.clients();
    let nofile = sys::raise_nofile(u64::from(clients) * 2 + 256)?;
    for (peer, bin, pkg) in [
        (Peer::Frr, "/usr/lib/frr/bgpd", "frr"),
        (Peer::Gobgp, "/usr/bin/gobgpd", "gobgpd"),
    ] {
        if plan.peers.contains(&peer) && !Path::new(bin).exists() {
            return Err(format!(
                "{bin} not found: install the Debian package `{pkg}`"
            ));
        }
    }
    let vxbgp = vxbgp_binary(opts.vxbgp.as_deref())?;
    netns::remove_stale();
    let mut work = WorkDir {
        path: std::env::temp_dir().join(format!("vxbgp-bench.{}", std::process::id())),
        keep: opts.keep_logs,
    };
    std::fs::create_dir_all(&work.path).map_err(|e| format!("{}: {e}", work.path.display()))?;
    let out = match (&opts.out, opts.smoke) {
        (Some(o), _) => o.clone(),
        (None, true) => work.path.join("report"),
        (None, false) => Path::new(env!("CARGO_MANIFEST_DIR")).join("results"),
    };

    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let versions = reflector::versions(&vxbgp).await;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let notes =
        vec![
        "As a route reflector (fanout, reconnect, reflect, and the migration's reflector) FRR is \
         bgpd alone (`-Z`, no zebra): a reflector does no kernel work; its RSS and CPU are \
         bgpd's. As a VTEP (kernel, migration hosts) FRR is zebra + bgpd, CPU and RSS summed."
            .to_string(),
        "Kernel and migration: vxbgp runs as host agent (no --no-fib), FRR's zebra and vxbgp \
         install the same entries per MAC/IP route (vxlan FDB `dst` entry, bridge FDB entry, \
         neighbour on the bridge, all extern_learn; checked by dumps). Migration times come from \
         two `bridge monitor fdb` processes read as lines arrive: their scheduling jitter (about \
         0.1-0.5 ms on 2 cores) bounds the resolution, and a move faster than it reads as 0."
            .to_string(),
        format!(
            "GoBGP runs only where the table has at most {} routes (--gobgp-max-routes): its time \
             grows quadratically with type-2 routes.",
            plan.gobgp_max_routes
        ),
        format!(
            "The simulated clients run in the bench process on the same machine (tokio, 2 worker \
             threads) and compete with the reflector for the CPUs; the bench's own CPU time during \
             fan-out is `bench_cpu_s` in report.json. Load average at start: {}. Every run \
             starts once the machine is quiet (under 15 % CPU busy over 200 ms, at most 10 s \
             of waiting), so what the kernel still does for the last run is not on its clock.",
            loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ),
        format!(
            "RLIMIT_NOFILE: {} for the daemons (the bench's soft limit is {nofile}).",
            plan.daemon_nofile
                .map_or("inherited from the bench".to_string(), |n| n.to_string())
        ),
        "Reflector at 198.19.0.1 in its own network namespace, clients at 198.19.1.0+ in another, \
         one veth between them; every client a real BGP session (OPEN with L2VPN EVPN, 4-octet AS, \
         route refresh), 100 NLRI per UPDATE."
            .to_string(),
    ];
    let meta = Meta {
        date: report::utc(unix),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        versions,
        plan: plan.clone(),
        notes,
        duration_s: 0.0,
    };
    println!("Creating namespaces with {clients} client addresses ...");
    let topo = Topology::create(clients).await?;
    println!(
        "namespaces {} (reflector) and {} (clients); work directory {}",
        topo.rr.name(),
        topo.cl.name(),
        work.path.display()
    );
    let ctx = Ctx {
        topo,
        opts: plan,
        vxbgp,
        work: work.path.clone(),
    };
    let mut results = Results::new(meta);
    let start = Instant::now();
    let out_dir = out.clone();
    scenario::run_all(&ctx, &mut results, |r| {
        let mut r = r.clone();
        r.meta.duration_s = start.elapsed().as_secs_f64();
        if let Err(e) = r.write(&out_dir) {
            eprintln!("cannot write the report: {e}");
        }
    })
    .await;
    results.meta.duration_s = start.elapsed().as_secs_f64();
    results.write(&out)?;
    drop(ctx);

    let failures = results.failures();
    println!(
        "\nDone in {:.0} s. Report: {}/report.md (also report.json, plot.svg)",
        results.meta.duration_s,
        out.display()
    );
    if opts.smoke {
        println!("\n{}", report::md::render(&results));
    }
    if failures.is_empty() {
        return Ok(true);
    }
    work.keep = true;
    println!("{} failed run(s):", failures.len());
    for (e, run, why) in &failures {
        println!(
            "  {} {}={} {} run {run}: {why}",
            e.scenario,
            e.spec().map_or("?", |s| s.param),
            e.param,
            e.peer.title()
        );
    }
    if opts.smoke && out.starts_with(&work.path) {
        println!("smoke report kept in {}", out.display());
    }
    Ok(!opts.smoke)
}
