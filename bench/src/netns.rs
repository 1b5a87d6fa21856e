//! The bench's network: namespace RR (the reflector under test, 198.19.0.1) and namespace CL
//! (the simulated clients, one address each), joined by a veth pair. Both namespaces are
//! named after the bench's PID and removed on `Drop` — after an error, a panic or Ctrl-C too.
//!
//! ```text
//!   RR: rr0 198.19.0.1/24, route 198.19.0.0/16 via 198.19.0.2
//!    │ veth
//!   CL: cl0 198.19.0.2/24 + 198.19.1.0/32, 198.19.1.1/32, ... (one per client)
//! ```
//! The reflector reaches every client through one next hop, so its neighbour table holds one
//! entry whatever K is (1000 ARP entries would run into the kernel's gc_thresh limits).
//!
//! Sockets of the simulated clients must be created inside CL; [`NsWorker`] is a thread that
//! entered CL with `setns` and creates them on request, so the rest of the bench (the tokio
//! runtime included) stays in the namespace it was started in.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::net::TcpSocket;
use tokio::sync::oneshot;

use crate::sys::{self, Result};

/// The reflector's address (and router id).
pub const RR_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// CL's own address on the link.
pub const CL_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// The first client address; client `i` has `CLIENT_BASE + i`.
pub const CLIENT_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 0);
/// The range the reflector accepts sessions from.
pub const LISTEN_RANGE: &str = "198.19.0.0/16";
/// Most clients that fit between CLIENT_BASE and 198.19.255.255.
pub const MAX_CLIENTS: u32 = 255 * 256;

/// Client `i`'s address.
pub fn client_addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(CLIENT_BASE).wrapping_add(i))
}

/// A network namespace the bench created. `Drop` stops what still runs inside it (only the
/// bench starts processes there), then deletes it.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns> {
        sys::run_sync(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        sys::run_sync(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec <ns> argv...` as an argument vector.
    pub fn exec_argv(&self, argv: &[String]) -> Vec<String> {
        let mut v = vec![
            "ip".to_string(),
            "netns".to_string(),
            "exec".to_string(),
            self.name.clone(),
        ];
        v.extend(argv.iter().cloned());
        v
    }

    /// PIDs of the processes inside, that are really in this namespace now (PIDs get reused).
    fn pids(&self) -> Vec<u32> {
        let Ok(ino) = std::fs::metadata(format!("/run/netns/{}", self.name)).map(|m| m.ino())
        else {
            return Vec::new();
        };
        sys::run_sync(&["ip", "netns", "pids", &self.name])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}/ns/net"))
                    .map(|m| m.ino())
                    .ok()
                    == Some(ino)
            })
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Daemons are stopped by their own guards first; anything left is a child of one of
        // them (started by the bench all the same).
        let left = self.pids();
        if !left.is_empty() {
            eprintln!(
                "namespace {}: stopping leftover processes {left:?}",
                self.name
            );
            for pid in left {
                if let Ok(raw) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(raw),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        if let Err(e) = sys::run_sync(&["ip", "netns", "del", &self.name]) {
            eprintln!("warning: {e}");
        }
    }
}

/// Something to run on the worker thread inside the namespace.
type Job = Box<dyn FnOnce() + Send>;

/// A thread that entered a namespace and runs jobs there (creating sockets, for now; netlink
/// sockets of a later kernel scenario would be made the same way).
pub struct NsWorker {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsWorker {
    pub fn start(ns: &Netns) -> Result<NsWorker> {
        let path = format!("/run/netns/{}", ns.name());
        let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let thread = std::thread::Builder::new()
            .name(format!("ns-{}", ns.name()))
            .spawn(move || {
                let entered = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("setns({path}): {e}"));
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                }
            })
            .map_err(|e| format!("cannot start the namespace thread: {e}"))?;
        let worker = NsWorker {
            tx: Some(tx),
            thread: Some(thread),
        };
        ready_rx
            .recv()
            .map_err(|_| "the namespace thread died".to_string())??;
        Ok(worker)
    }

    /// Runs `f` inside the namespace and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.tx
            .as_ref()
            .ok_or("namespace thread stopped")?
            .send(job)
            .map_err(|_| "namespace thread stopped".to_string())?;
        rx.await
            .map_err(|_| "namespace thread dropped a job".to_string())
    }

    /// An unconnected TCP socket bound to `local` (port chosen by the kernel), created
    /// inside the namespace; `connect` it from anywhere.
    pub async fn tcp_socket(&self, local: Ipv4Addr) -> Result<TcpSocket> {
        self.run(move || -> std::io::Result<TcpSocket> {
            let s = TcpSocket::new_v4()?;
            s.bind(SocketAddr::V4(SocketAddrV4::new(local, 0)))?;
            Ok(s)
        })
        .await?
        .map_err(|e| format!("socket bound to {local}: {e}"))
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// RR and CL, linked, with the client addresses on CL. Dropped: the worker thread
/// first, then CL, then RR.
pub struct Topology {
    pub worker: std::sync::Arc<NsWorker>,
    pub cl: Netns,
    pub rr: Netns,
}

impl Topology {
    /// Names: `vxb<pid>rr` and `vxb<pid>cl`.
    pub async fn create(clients: u32) -> Result<Topology> {
        if clients > MAX_CLIENTS {
            return Err(format!("at most {MAX_CLIENTS} clients"));
        }
        let pid = std::process::id();
        let rr = Netns::create(&format!("vxb{pid}rr"))?;
        let cl = Netns::create(&format!("vxb{pid}cl"))?;
        sys::run_sync(&[
            "ip",
            "link",
            "add",
            "rr0",
            "netns",
            rr.name(),
            "type",
            "veth",
            "peer",
            "name",
            "cl0",
            "netns",
            cl.name(),
        ])?;
        let rr_cmds = format!(
            "link set rr0 up\naddr add {RR_ADDR}/24 dev rr0\nroute add {LISTEN_RANGE} via {CL_ADDR}\n"
        );
        let mut cl_cmds = format!("link set cl0 up\naddr add {CL_ADDR}/24 dev cl0\n");
        for i in 0..clients {
            cl_cmds.push_str(&format!("addr add {}/32 dev cl0\n", client_addr(i)));
        }
        sys::run_input(&["ip", "-n", rr.name(), "-batch", "-"], Some(&rr_cmds)).await?;
        sys::run_input(&["ip", "-n", cl.name(), "-batch", "-"], Some(&cl_cmds)).await?;
        let worker = std::sync::Arc::new(NsWorker::start(&cl)?);
        Ok(Topology { worker, cl, rr })
    }
}

/// Removes namespaces left by an earlier bench that was killed (`vxb<pid>rr|cl` whose PID is
/// gone and that hold no process), so names never pile up.
pub fn remove_stale() {
    let Ok(list) = sys::run_sync(&["ip", "netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix("vxb")
            .and_then(|r| {
                // Reflect/kernel (rr, cl) and migration (msw, mrr, mh0..mh2) namespaces.
                ["msw", "mrr", "mh0", "mh1", "mh2", "rr", "cl"]
                    .iter()
                    .find_map(|s| r.strip_suffix(s))
            })
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || sys::pid_alive(pid) {
            continue;
        }
        let busy = sys::run_sync(&["ip", "netns", "pids", name])
            .map(|s| !s.trim().is_empty())
            .unwrap_or(true);
        if busy {
            eprintln!("note: stale namespace {name} still has processes; left alone");
            continue;
        }
        eprintln!("removing stale namespace {name} (bench pid {pid} is gone)");
        let _ = sys::run_sync(&["ip", "netns", "del", name]);
        let _ = std::fs::remove_dir_all(format!("/etc/frr/{name}"));
        let _ = std::fs::remove_dir_all(format!("/var/run/frr/{name}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses() {
        assert_eq!(client_addr(0), Ipv4Addr::new(198, 19, 1, 0));
        assert_eq!(client_addr(257), Ipv4Addr::new(198, 19, 2, 1));
        assert_eq!(
            client_addr(MAX_CLIENTS - 1),
            Ipv4Addr::new(198, 19, 255, 255)
        );
    }
}
