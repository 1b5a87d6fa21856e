//! vxbgp: BGP EVPN control plane for Linux VXLAN hosts.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)
)]

mod agent;
mod cli;
mod config;
mod control;
mod daemon;
mod origin;
mod render;

use std::process::ExitCode;

use clap::Parser;

use cli::{Clear, Cli, Command, RouteCmd, RouteSpecCmd, Show};
use control::protocol::{Request, RouteKind, RouteSpec};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(cmd) => client(cmd, &cli.daemon),
        None => daemon_main(cli.daemon),
    }
}

fn daemon_main(args: cli::DaemonArgs) -> ExitCode {
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    // A filter that cannot be read would silently log nothing: say so and stop.
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(f) => f,
        Err(e) => {
            let hint = "try error, warn, info, debug, trace, or bgp=debug";
            return fail(&format!("bad --log filter {filter:?}: {e} ({hint})"));
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let file = match &args.config {
        Some(path) => match config::load(path) {
            Ok(f) => f,
            Err(e) => return fail(&e),
        },
        None => Default::default(),
    };
    let settings = match config::merge(&args, file) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    exit_on_panic();
    raise_open_file_limit();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(daemon::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// A panic in any task (a session, the RIB, the FIB) would leave a daemon that looks
/// alive and does part of its job: log it with its cause and exit non-zero, so the
/// service manager restarts vxbgp (which then adopts the kernel entries it left).
fn exit_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "a task panicked: vxbgp stops");
        default(info);
        std::process::exit(70);
    }));
}

/// Every session is a socket: a reflector for a thousand clients needs more than the
/// 1024 descriptors a shell usually gives, so the soft limit goes up to the hard one.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "open-file limit raised"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("vxbgp: error: {msg}");
    ExitCode::from(2)
}

fn spec(kind: RouteSpecCmd) -> RouteSpec {
    match kind {
        RouteSpecCmd::MacIp(a) => RouteSpec {
            kind: RouteKind::MacIp,
            vni: a.vni,
            mac: Some(a.mac),
            ip: a.ip,
            rd: a.common.rd,
            rts: a.common.rts,
            next_hop: a.common.next_hop,
            mobility_seq: a.mobility_seq,
            sticky: a.sticky,
        },
        RouteSpecCmd::Multicast(a) => RouteSpec {
            kind: RouteKind::Multicast,
            vni: a.vni,
            mac: None,
            ip: None,
            rd: a.common.rd,
            rts: a.common.rts,
            next_hop: a.common.next_hop,
            mobility_seq: None,
            sticky: false,
        },
    }
}

fn client(cmd: Command, args: &cli::DaemonArgs) -> ExitCode {
    let (req, json, render): (Request, bool, fn(&serde_json::Value) -> String) = match cmd {
        Command::Show(Show::Neighbors { json }) => {
            (Request::ShowNeighbors, json, render::neighbors)
        }
        Command::Show(Show::Routes {
            vni,
            route_type,
            json,
        }) => (
            Request::ShowRoutes { vni, route_type },
            json,
            render::routes,
        ),
        Command::Show(Show::Fib { vni, json }) => (Request::ShowFib { vni }, json, render::fib),
        Command::Show(Show::Vnis { json }) => (Request::ShowVnis, json, render::vnis),
        Command::Show(Show::Duplicates { vni, json }) => {
            (Request::ShowDuplicates { vni }, json, render::duplicates)
        }
        Command::Clear(Clear::Duplicates { vni, mac, json }) => {
            (Request::ClearDuplicates { vni, mac }, json, render::cleared)
        }
        Command::Route(RouteCmd::Add(k)) => (Request::RouteAdd(spec(k)), false, added),
        Command::Route(RouteCmd::Del(k)) => (Request::RouteDel(spec(k)), false, added),
    };
    let socket = args.socket.clone().unwrap_or_else(control::default_socket);
    match control::client::request(&socket, &req) {
        Ok(resp) if resp.ok => {
            let data = resp.data.unwrap_or_default();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&data).unwrap_or_default()
                );
            } else {
                print!("{}", render(&data));
            }
            ExitCode::SUCCESS
        }
        Ok(resp) => {
            eprintln!("vxbgp: error: {}", resp.error.unwrap_or_default());
            ExitCode::from(1)
        }
        Err(e) => fail(&e),
    }
}

fn added(data: &serde_json::Value) -> String {
    match (data.get("added"), data.get("withdrawn")) {
        (Some(r), _) => format!("added {}\n", r.as_str().unwrap_or_default()),
        (_, Some(r)) => format!("withdrawn {}\n", r.as_str().unwrap_or_default()),
        _ => format!("{data}\n"),
    }
}
