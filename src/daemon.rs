//! The daemon: builds the channels, starts the tasks in order, stops them in order.
//!
//! ```text
//!  listener ─► sessions ─► RIB task ◄─ control socket (show, route add/del)
//! ```
//! Start: RIB, then the listener (so a peer that connects early finds its session),
//! then configured sessions, the control socket and static routes. Stop (SIGTERM or
//! SIGINT): every session sends Cease / Administrative Shutdown, then the socket goes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use bgp::listener::{self, ListenRange, PeerTable};
use bgp::peer::{LocalInfo, MaxPrefixes};
use bgp::rib::task::{self as rib_task, RIB_QUEUE};
use bgp::rib::Rib;
use bgp::session::fsm::FsmConfig;
use bgp::session::SessionConfig;
use bgp::wire::notification::codes;
use evpn::L2vpnEvpn;
use std::future::Future;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use fib::task::{self as fib_task, FibConfig, EVENT_QUEUE, FIB_QUEUE};

use crate::agent::Agent;
use crate::config::{Settings, StaticKind};
use crate::control::protocol::{RouteKind, RouteSpec};
use crate::control::server::{self, ControlState, SocketGuard};
use crate::control::view::LocalView;
use crate::origin::OriginDefaults;

const EVPN: (u16, u8) = (25, 70);

/// After a restart, routes from peers have this long to come back before kernel
/// entries we own that no route wants are removed (the data plane keeps running
/// meanwhile).
const RECONCILE_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

/// The router id: given, or the address this host uses towards the first neighbour
/// (a connected UDP socket sends nothing; it only asks the kernel for a route).
fn router_id(settings: &Settings) -> Result<Ipv4Addr, String> {
    if let Some(id) = settings.router_id {
        return Ok(id);
    }
    let first = settings
        .neighbors
        .first()
        .ok_or("no --router-id, and no --neighbor to derive one from: give --router-id IPV4")?;
    let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
        .and_then(|s| s.connect(SocketAddr::new(first.address, 179)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| {
            format!(
                "cannot derive a router id towards {}: {e}; give --router-id IPV4",
                first.address
            )
        })?;
    match sock.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => Ok(a),
        _ => Err("cannot derive an IPv4 router id; give --router-id IPV4".into()),
    }
}

pub async fn run(settings: Settings) -> Result<(), String> {
    let router_id = router_id(&settings)?;
    let cluster_id = settings.cluster_id.unwrap_or(router_id);
    let vtep_ip = settings.vtep_ip.unwrap_or(IpAddr::V4(router_id));
    let local = LocalInfo {
        asn: settings.asn,
        router_id,
        cluster_id,
    };

    let (rib_tx, rib_rx) = mpsc::channel(RIB_QUEUE);
    let rib = Rib::<L2vpnEvpn>::new(local.clone());
    // The host agent: the FIB follows and programs the kernel, the agent turns what
    // lives on this host into routes.
    let mut kernel_tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
    let fib_tx = if settings.fib {
        let (fib_tx, fib_rx) = mpsc::channel(FIB_QUEUE);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let cfg = FibConfig {
            fix_ports: settings.fix_ports,
            limits: settings.limits,
            dad: settings.dad,
            reconcile_after: RECONCILE_AFTER,
        };
        kernel_tasks.push((
            "FIB",
            tokio::spawn(async move {
                if let Err(e) = fib_task::run(cfg, fib_rx, ev_tx).await {
                    tracing::error!(error = %e, "kernel programming stopped");
                }
            }),
        ));
        let agent = Agent::new(settings.asn, router_id, rib_tx.clone());
        kernel_tasks.push(("host agent", tokio::spawn(agent.run(ev_rx))));
        Some(fib_tx)
    } else {
        None
    };
    let rib_task = tokio::spawn(rib_task::run(rib, rib_rx, fib_tx.clone()));

    let tcp = listener::bind(settings.port).await.map_err(|e| {
        format!(
            "cannot listen on BGP port {}: {e} (is another BGP daemon running here? --port picks another)",
            settings.port
        )
    })?;
    let peers = Arc::new(Mutex::new(PeerTable::<L2vpnEvpn>::new(rib_tx.clone())));
    let listener_task = tokio::spawn(listener::run(tcp, peers.clone()));

    let fsm = |remote_asn: Option<u32>, hold: Option<u16>| FsmConfig {
        local_asn: settings.asn,
        router_id,
        hold_time: hold.unwrap_or(settings.hold_time),
        remote_asn,
        families: vec![EVPN],
    };
    if let Ok(mut table) = peers.lock() {
        for n in &settings.neighbors {
            let remote_as = n.remote_as.unwrap_or(settings.asn);
            let ibgp = remote_as == settings.asn;
            table.add_neighbor(SessionConfig {
                id: 0,
                addr: n.address,
                port: n.port.unwrap_or(settings.port),
                passive: n.passive,
                rr_client: ibgp && n.route_reflector_client.unwrap_or(settings.route_reflector),
                dynamic: false,
                description: n.description.clone(),
                max_prefixes: n
                    .max_prefixes
                    .or(settings.max_prefixes)
                    .map(|limit| MaxPrefixes {
                        limit: limit as usize,
                        warn_only: n.max_prefixes_warning_only,
                    }),
                fsm: fsm(Some(remote_as), n.hold_time),
            });
        }
        for &prefix in &settings.listen_ranges {
            table.add_range(ListenRange {
                prefix,
                template: SessionConfig {
                    id: 0,
                    addr: prefix.addr,
                    port: settings.port,
                    passive: true,
                    rr_client: settings.route_reflector,
                    dynamic: true,
                    description: Some(format!("from {prefix}")),
                    max_prefixes: settings.max_prefixes.map(|limit| MaxPrefixes {
                        limit: limit as usize,
                        warn_only: false,
                    }),
                    fsm: fsm(Some(settings.asn), None),
                },
            });
        }
    }

    let socket_path = settings
        .socket
        .clone()
        .unwrap_or_else(crate::control::default_socket);
    let access = match &settings.socket_group {
        Some(name) => server::Access::group(name)?,
        None => server::Access::owner(),
    };
    let unix = server::bind(&socket_path, &access).await?;
    let _guard = SocketGuard(socket_path.clone());
    let state = Arc::new(ControlState {
        rib_tx: rib_tx.clone(),
        fib_tx,
        peers: peers.clone(),
        local: LocalView {
            asn: settings.asn,
            router_id,
            cluster_id,
            route_reflector: settings.route_reflector,
            vtep_ip,
            port: settings.port,
        },
        origin: OriginDefaults {
            asn: settings.asn,
            router_id,
            vtep_ip,
        },
        originated: Mutex::new(Default::default()),
    });
    for (i, r) in settings.routes.iter().enumerate() {
        let spec = RouteSpec {
            kind: match r.kind {
                StaticKind::MacIp => RouteKind::MacIp,
                StaticKind::Multicast => RouteKind::Multicast,
            },
            vni: r.vni,
            mac: r.mac.clone(),
            ip: r.ip,
            rd: r.rd.clone(),
            rts: r.rt.clone(),
            next_hop: r.next_hop,
            mobility_seq: r.mobility_seq,
            sticky: r.sticky,
        };
        server::originate(&state, &spec)
            .await
            .map_err(|e| format!("config route[{i}]: {e}"))?;
    }
    let control_task = tokio::spawn(server::run(unix, state, access));

    tracing::info!(
        asn = settings.asn,
        %router_id,
        port = settings.port,
        socket = %socket_path.display(),
        neighbors = settings.neighbors.len(),
        listen_ranges = settings.listen_ranges.len(),
        route_reflector = settings.route_reflector,
        "vxbgp running"
    );

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    // Every long-lived task is watched: one that ends (or panics; the panic hook in
    // main exits first) leaves a daemon that looks alive and does nothing, so it
    // stops with the cause instead, for the service manager to restart it.
    let mut tasks = kernel_tasks;
    tasks.push(("RIB", rib_task));
    tasks.push(("BGP listener", listener_task));
    tasks.push(("control socket", control_task));
    let ended = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        ended = first_to_end(&mut tasks) => Some(ended),
    };
    if let Some((name, result)) = ended {
        let cause = match result {
            Ok(()) => "it returned".to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(task = name, cause, "a task ended: vxbgp stops");
        for (_, t) in &tasks {
            t.abort();
        }
        return Err(format!("the {name} task ended unexpectedly ({cause})"));
    }
    tracing::info!("shutting down");
    // The kernel keeps what is programmed: the FIB stops before the sessions, so their
    // withdrawals never reach it, and the data plane runs on until the next start
    // reconciles (as after kill -9).
    let (rib, others): (Vec<_>, Vec<_>) = tasks.into_iter().partition(|(name, _)| *name == "RIB");
    for (_, t) in others {
        t.abort();
    }
    let sessions = peers.lock().map(|mut t| t.take_all()).unwrap_or_default();
    let stops = sessions
        .into_iter()
        .map(|s| s.shutdown(codes::cease::ADMINISTRATIVE_SHUTDOWN));
    for stop in stops {
        stop.await;
    }
    drop(rib_tx);
    for (_, t) in rib {
        t.abort();
    }
    Ok(())
}

/// Waits until one of `tasks` ends; says which, and how.
async fn first_to_end(
    tasks: &mut [(&'static str, JoinHandle<()>)],
) -> (&'static str, Result<(), tokio::task::JoinError>) {
    std::future::poll_fn(|cx| {
        for (name, t) in tasks.iter_mut() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(t).poll(cx) {
                return std::task::Poll::Ready((*name, r));
            }
        }
        std::task::Poll::Pending
    })
    .await
}
