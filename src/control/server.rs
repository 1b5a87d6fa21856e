//! The control socket's server: one task per client, JSON lines.
//!
//! The socket lives in a directory only root (or the daemon's user) can enter, so
//! there is no window between bind and chmod; peer credentials are checked on
//! every connection as well.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bgp::listener::SharedPeerTable;
use bgp::peer::STATIC_PEER;
use bgp::rib::task::RibCmd;
use bgp::rib::RibInput;
use evpn::{EvpnKey, EvpnRoute, L2vpnEvpn};
use fib::task::{DuplicateView, FibCmd};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{Request, Response, RouteSpec};
use super::view::{self, LocalView, NeighborView, NeighborsView, RoutesView};
use crate::origin::{self, OriginDefaults};

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

pub struct ControlState {
    pub rib_tx: mpsc::Sender<RibCmd<L2vpnEvpn>>,
    /// The FIB task, unless kernel programming is off (`--no-fib`).
    pub fib_tx: Option<mpsc::Sender<FibCmd>>,
    pub peers: SharedPeerTable<L2vpnEvpn>,
    pub local: LocalView,
    pub origin: OriginDefaults,
    /// Routes originated through the control socket or the config file.
    pub originated: Mutex<HashMap<EvpnKey, EvpnRoute>>,
}

/// Who may use the control socket: root, the daemon's user, and the members of a
/// group if one is named. The file modes say it to the kernel (it refuses a connect
/// without write permission on the socket); peer credentials are checked as well.
#[derive(Clone, Debug)]
pub struct Access {
    own_uid: u32,
    /// The group's id and its members' names, from /etc/group.
    group: Option<(u32, Vec<String>)>,
}

impl Access {
    pub fn owner() -> Access {
        let own_uid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0);
        Access {
            own_uid,
            group: None,
        }
    }

    /// `name` from /etc/group; an unknown group is an error at start.
    pub fn group(name: &str) -> Result<Access, String> {
        let groups = std::fs::read_to_string("/etc/group")
            .map_err(|e| format!("--socket-group {name}: cannot read /etc/group: {e}"))?;
        let entry = groups
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let (n, _, gid, members) = (f.next()?, f.next()?, f.next()?, f.next()?);
                Some((n, gid.parse::<u32>().ok()?, members))
            })
            .find(|(n, _, _)| *n == name);
        let Some((_, gid, members)) = entry else {
            return Err(format!(
                "--socket-group {name}: no such group in /etc/group"
            ));
        };
        let members = members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        Ok(Access {
            group: Some((gid, members)),
            ..Access::owner()
        })
    }

    fn gid(&self) -> Option<u32> {
        self.group.as_ref().map(|(g, _)| *g)
    }

    /// May a process with these credentials use the socket?
    fn allows(&self, uid: u32, gid: u32) -> bool {
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some((group, members)) = &self.group else {
            return false;
        };
        // The primary group comes with the credentials; a supplementary membership is
        // in /etc/group by user name.
        gid == *group || user_name(uid).is_some_and(|n| members.contains(&n))
    }
}

/// The name of `uid` in /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// Binds the socket, refusing to steal one a running daemon still answers on; sets
/// the modes `access` asks for (0600 in a 0700 directory, or 0660 in 0750 with a group).
pub async fn bind(path: &Path, access: &Access) -> Result<UnixListener, String> {
    let (dir_mode, sock_mode) = if access.group.is_some() {
        (0o750, 0o660)
    } else {
        (0o700, 0o600)
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dir_mode));
            if let Some(gid) = access.gid() {
                std::os::unix::fs::chown(dir, None, Some(gid))
                    .map_err(|e| format!("cannot give {} to group {gid}: {e}", dir.display()))?;
            }
        }
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "control socket {} is in use by a running daemon (use --socket for another)",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot bind control socket {}: {e}", path.display()))?;
    if let Some(gid) = access.gid() {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| format!("cannot give {} to group {gid}: {e}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(sock_mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    Ok(l)
}

pub async fn run(listener: UnixListener, state: Arc<ControlState>, access: Access) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning a core.
                tracing::warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match stream.peer_cred() {
            Ok(c) if access.allows(c.uid(), c.gid()) => {}
            Ok(c) => {
                tracing::warn!(
                    uid = c.uid(),
                    gid = c.gid(),
                    "control connection refused: not allowed"
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "control connection refused: no peer credentials");
                continue;
            }
        }
        let state = state.clone();
        tokio::spawn(async move { serve(stream, state).await });
    }
}

async fn serve(stream: UnixStream, state: Arc<ControlState>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let resp = match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => handle(req, &state).await,
            Err(e) => Response::error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_vec(&resp).unwrap_or_default();
        out.push(b'\n');
        if w.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn handle(req: Request, state: &ControlState) -> Response {
    // A failure injected by the tests (tests/cli.rs): a panic in a running daemon. The
    // environment is read once, not per request.
    static PANIC_FAILPOINT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *PANIC_FAILPOINT
        .get_or_init(|| std::env::var_os("VXBGP_FAILPOINT").is_some_and(|v| v == "control-panic"))
    {
        panic!("failpoint control-panic");
    }
    match req {
        Request::ShowNeighbors => show_neighbors(state).await,
        Request::ShowRoutes { vni, route_type } => show_routes(state, vni, route_type).await,
        Request::ShowFib { vni } => fib_query(state, |reply| FibCmd::ShowFib { vni, reply }).await,
        Request::ShowVnis => fib_query(state, |reply| FibCmd::ShowVnis { reply }).await,
        Request::ShowDuplicates { vni } => match duplicates(state, vni).await {
            Ok(d) => Response::data(serde_json::json!({ "duplicates": d })),
            Err(e) => Response::error(e),
        },
        Request::ClearDuplicates { vni, mac } => clear_duplicates(state, vni, mac).await,
        Request::RouteAdd(spec) => route_add(state, &spec).await,
        Request::RouteDel(spec) => route_del(state, &spec).await,
    }
}

/// Asks the FIB task and wraps its answer.
async fn fib_query<T: serde::Serialize>(
    state: &ControlState,
    cmd: impl FnOnce(oneshot::Sender<T>) -> FibCmd,
) -> Response {
    let Some(fib) = &state.fib_tx else {
        return Response::error("kernel programming is off in this daemon (--no-fib)");
    };
    let (reply, rx) = oneshot::channel();
    if fib.send(cmd(reply)).await.is_err() {
        return Response::error("the FIB task is not running (see the daemon's log)");
    }
    match rx.await {
        Ok(v) => Response::data(serde_json::json!({ "vnis": v })),
        Err(_) => Response::error("the FIB task is not running (see the daemon's log)"),
    }
}

/// The MACs duplicate address detection froze (of `vni`, if given).
async fn duplicates(state: &ControlState, vni: Option<u32>) -> Result<Vec<DuplicateView>, String> {
    let Some(fib) = &state.fib_tx else {
        return Err("kernel programming is off in this daemon (--no-fib)".into());
    };
    let gone = || "the FIB task is not running (see the daemon's log)".to_string();
    let (reply, rx) = oneshot::channel();
    fib.send(FibCmd::ShowFib { vni, reply })
        .await
        .map_err(|_| gone())?;
    let views = rx.await.map_err(|_| gone())?;
    Ok(views.into_iter().flat_map(|v| v.duplicates).collect())
}

async fn clear_duplicates(state: &ControlState, vni: Option<u32>, mac: Option<String>) -> Response {
    let mac = match mac.as_deref().map(str::parse::<evpn::MacAddr>) {
        None => None,
        Some(Ok(m)) => Some(fib::model::Mac(m.octets())),
        Some(Err(e)) => return Response::error(format!("bad --mac: {e}")),
    };
    let Some(fib) = &state.fib_tx else {
        return Response::error("kernel programming is off in this daemon (--no-fib)");
    };
    let (reply, rx) = oneshot::channel();
    if fib
        .send(FibCmd::ClearDuplicates { vni, mac, reply })
        .await
        .is_err()
    {
        return Response::error("the FIB task is not running (see the daemon's log)");
    }
    match rx.await {
        Ok(v) => Response::data(serde_json::json!({ "cleared": v })),
        Err(_) => Response::error("the FIB task is not running (see the daemon's log)"),
    }
}

async fn show_neighbors(state: &ControlState) -> Response {
    let rows = match state.peers.lock() {
        Ok(mut t) => t.rows(),
        Err(_) => return Response::error("internal: peer table unavailable"),
    };
    let (reply, rx) = oneshot::channel();
    if state.rib_tx.send(RibCmd::Counts { reply }).await.is_err() {
        return Response::error("internal: RIB is gone");
    }
    let Ok((counts, stats)) = rx.await else {
        return Response::error("internal: RIB is gone");
    };
    let now = SystemTime::now();
    let neighbors = rows
        .into_iter()
        .map(|r| {
            let c = counts.get(&r.config.id).copied().unwrap_or_default();
            NeighborView {
                address: r.config.addr,
                port: r.config.port,
                remote_as: r.config.fsm.remote_asn.or(r.status.remote_asn),
                kind: r.status.kind.map(view::kind_str),
                description: r.config.description.clone(),
                passive: r.config.passive,
                dynamic: r.config.dynamic,
                state: r.status.state,
                uptime_secs: r
                    .status
                    .established_at
                    .and_then(|t| now.duration_since(t).ok())
                    .map(|d| d.as_secs()),
                remote_id: r.status.remote_id,
                hold_time: r.status.hold_time,
                prefixes_received: c.received,
                prefixes_sent: c.advertised,
                messages_received: r.status.messages_received,
                messages_sent: r.status.messages_sent,
                updates_received: r.status.updates_received,
                updates_sent: r.status.updates_sent,
                established_transitions: r.status.established_transitions,
                last_error: r.status.last_error.clone(),
            }
        })
        .collect();
    Response::data(NeighborsView {
        local: state.local.clone(),
        rib: stats,
        neighbors,
    })
}

async fn show_routes(state: &ControlState, vni: Option<u32>, route_type: Option<u8>) -> Response {
    let (reply, rx) = oneshot::channel();
    let filter = Box::new(move |r: &EvpnRoute, a: &bgp::rib::RouteAttrs| {
        route_type.is_none_or(|t| r.route_type() == t)
            && vni.is_none_or(|v| view::route_vni(r, &a.attrs) == Some(v))
    });
    if state
        .rib_tx
        .send(RibCmd::Routes { filter, reply })
        .await
        .is_err()
    {
        return Response::error("internal: RIB is gone");
    }
    let Ok(snaps) = rx.await else {
        return Response::error("internal: RIB is gone");
    };
    let mut routes: Vec<view::RouteView> = snaps.iter().filter_map(view::route_view).collect();
    // MACs frozen here are marked (a daemon without a FIB freezes nothing).
    let frozen: std::collections::HashSet<(u32, String)> = match &state.fib_tx {
        Some(_) => duplicates(state, vni)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.vni, d.mac.to_string()))
            .collect(),
        None => Default::default(),
    };
    for r in &mut routes {
        if let (Some(v), Some(m)) = (r.vni, &r.mac) {
            if frozen.contains(&(v, m.to_lowercase())) {
                r.duplicate = Some("frozen");
            }
        }
    }
    Response::data(RoutesView { routes })
}

async fn route_add(state: &ControlState, spec: &RouteSpec) -> Response {
    match originate(state, spec).await {
        Ok(route) => Response::data(serde_json::json!({ "added": route.to_string() })),
        Err(e) => Response::error(e),
    }
}

/// Originates `spec` (also used for the config file's static routes).
pub async fn originate(state: &ControlState, spec: &RouteSpec) -> Result<EvpnRoute, String> {
    let (route, attrs) = origin::build(spec, &state.origin)?;
    if let Ok(mut o) = state.originated.lock() {
        o.insert(route.key(), route.clone());
    }
    let input = RibInput::Update {
        peer: STATIC_PEER,
        attrs,
        reach: vec![route.clone()],
    };
    state
        .rib_tx
        .send(RibCmd::Input(input))
        .await
        .map_err(|_| "internal: RIB is gone")?;
    Ok(route)
}

async fn route_del(state: &ControlState, spec: &RouteSpec) -> Response {
    let (route, _) = match origin::build(spec, &state.origin) {
        Ok(x) => x,
        Err(e) => return Response::error(e),
    };
    let known = state
        .originated
        .lock()
        .ok()
        .and_then(|mut o| o.remove(&route.key()));
    let Some(route) = known else {
        return Response::error(format!("no such route was added: {route}"));
    };
    let input = RibInput::Withdraw {
        peer: STATIC_PEER,
        nlri: vec![route.clone()],
    };
    if state.rib_tx.send(RibCmd::Input(input)).await.is_err() {
        return Response::error("internal: RIB is gone");
    }
    Response::data(serde_json::json!({ "withdrawn": route.to_string() }))
}

/// Removes the socket file when the daemon stops.
pub struct SocketGuard(pub PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;

    #[test]
    fn only_root_our_user_and_the_group_are_let_in() {
        let own = Access {
            own_uid: 1000,
            group: None,
        };
        assert!(own.allows(0, 0) && own.allows(1000, 1000));
        assert!(
            !own.allows(1001, 1000),
            "our group alone opens nothing without the option"
        );
        let grp = Access {
            own_uid: 1000,
            group: Some((4242, vec!["someone-listed".into()])),
        };
        assert!(grp.allows(1001, 4242), "primary group");
        assert!(!grp.allows(1001, 4243));
        assert!(Access::group("no-such-group-here").is_err());
    }
}
