//! Running the vxbgp binary under test in a namespace: [`Vxbgp`] starts the daemon
//! (killed on drop), runs `vxbgp show ... --json` and `vxbgp route ...` against its
//! own control socket.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use super::netns::Netns;
use super::proc::Child;
use super::wait_until;

/// The binary cargo built for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_vxbgp")
}

pub struct Vxbgp {
    ns: String,
    socket: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    log_dir: PathBuf,
    starts: u32,
}

impl Vxbgp {
    /// Starts `vxbgp <args>` in `ns` with a control socket of its own, and waits until
    /// the socket answers.
    pub fn start(ns: &Netns, args: &[&str]) -> Vxbgp {
        let socket = ns.log_dir().join("vxbgp.sock");
        let mut v = Vxbgp {
            ns: ns.name().to_string(),
            socket,
            args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            log_dir: ns.log_dir().to_path_buf(),
            starts: 0,
        };
        v.launch(ns);
        v
    }

    fn launch(&mut self, ns: &Netns) {
        self.starts += 1;
        let sock = self.socket.to_string_lossy().into_owned();
        let mut argv: Vec<&str> = vec![binary(), "--socket", &sock, "--log", "debug"];
        argv.extend(self.args.iter().map(String::as_str));
        let child = ns.spawn(&format!("vxbgp{}", self.starts), &argv);
        self.child = Some(child);
        let ok = wait_until(Duration::from_secs(10), || {
            self.try_cli(&["show", "neighbors"]).is_ok()
        });
        assert!(ok, "vxbgp did not come up in {}:\n{}", self.ns, self.logs());
    }

    /// Stops the daemon (SIGKILL when `hard`, else SIGTERM).
    pub fn stop(&mut self, hard: bool) {
        if let Some(c) = self.child.take() {
            if hard {
                super::proc::signal(c.pid(), "KILL");
            }
            drop(c);
        }
    }

    /// Starts the daemon again with the same arguments.
    pub fn restart(&mut self, ns: &Netns) {
        self.stop(false);
        self.launch(ns);
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn run(&self, args: &[&str]) -> Output {
        let sock = self.socket.to_string_lossy().into_owned();
        let mut argv = vec!["ip", "netns", "exec", &self.ns, binary()];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--socket", &sock]);
        std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run vxbgp: {e}"))
    }

    /// Runs a CLI command; Err(stderr) if it fails.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self.run(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("vxbgp {args:?} failed: {e}\n{}", self.logs()))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("bad JSON from vxbgp {args:?}: {e}\n{out}"))
    }

    /// `show routes --json` → the `routes` array.
    pub fn routes(&self) -> Vec<Value> {
        self.json(&["show", "routes"])["routes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Prefixes (FRR notation) of every route in the Loc-RIB.
    pub fn prefixes(&self) -> Vec<String> {
        self.routes()
            .iter()
            .filter_map(|r| r["prefix"].as_str().map(String::from))
            .collect()
    }

    /// The route with this prefix, if present.
    pub fn route(&self, prefix: &str) -> Option<Value> {
        self.routes().into_iter().find(|r| r["prefix"] == prefix)
    }

    /// `show neighbors --json` → the neighbour entry for `addr`.
    pub fn neighbor(&self, addr: &str) -> Option<Value> {
        let v = self.json(&["show", "neighbors"]);
        v["neighbors"]
            .as_array()?
            .iter()
            .find(|n| n["address"] == addr)
            .cloned()
    }

    pub fn neighbor_state(&self, addr: &str) -> Option<String> {
        self.neighbor(addr)
            .and_then(|n| n["state"].as_str().map(String::from))
    }

    pub fn wait_established(&self, addr: &str, timeout: Duration) {
        let ok = wait_until(timeout, || {
            self.neighbor_state(addr).as_deref() == Some("Established")
        });
        assert!(
            ok,
            "vxbgp in {} did not reach Established with {addr}:\n{}",
            self.ns,
            self.logs()
        );
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for i in 1..=self.starts {
            let p = self.log_dir.join(format!("vxbgp{i}.stderr"));
            s.push_str(&format!("--- {}\n", p.display()));
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            // The tail is what explains a failure.
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(80);
            for l in &lines[start..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Vxbgp {
    /// PID of the running daemon, if started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }

    /// True while the daemon process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(Child::is_running)
    }
}
