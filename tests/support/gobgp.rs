//! GoBGP (`gobgpd`) in a namespace, its gRPC API on 127.0.0.1:<port> inside that namespace,
//! driven with the `gobgp -p <port>` CLI run in the same namespace.

use super::netns::Netns;
use super::proc::{self, Child};
use serde_json::Value;
use std::time::{Duration, Instant};

/// GoBGP's numeric `session_state` for Established (`gobgp neighbor -j`).
const ESTABLISHED: i64 = 6;

/// A running gobgpd (a [`Child`]: killed on drop, logs printed if the test panics).
pub struct Gobgp {
    ns: String,
    port: u16,
    // Declared last so the daemon stops after everything above is used.
    child: Child,
}

impl Gobgp {
    /// Writes `config_toml` to the namespace's log dir, starts `gobgpd` and waits until its API
    /// answers. The config is GoBGP's TOML (`[global.config]`, `[[neighbors]]`, ...); see
    /// [`evpn_config`] for the usual one.
    pub fn start(ns: &Netns, config_toml: &str) -> Gobgp {
        let path = ns.log_dir().join("gobgpd.toml");
        std::fs::write(&path, config_toml).expect("write gobgpd.toml");
        // One loopback per namespace, so any port works; a per-test one keeps logs unambiguous.
        let port = 50051 + (super::next_id() % 10000) as u16;
        let api = format!("127.0.0.1:{port}");
        let child = ns.spawn(
            "gobgpd",
            &[
                "gobgpd",
                "-f",
                path.to_str().expect("utf-8 path"),
                "-t",
                "toml",
                "--api-hosts",
                &api,
                "--pprof-disable",
                "--log-plain",
            ],
        );
        let mut g = Gobgp {
            ns: ns.name().to_string(),
            port,
            child,
        };
        if !super::wait_until(Duration::from_secs(10), || g.try_cli(&["global"]).is_ok()) {
            let running = g.child.is_running();
            panic!(
                "gobgpd in {} (running: {running}) does not answer on {api}\n{}",
                g.ns,
                g.child.logs()
            );
        }
        g
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// `gobgp -p <port> args...` inside the namespace; `Err(stdout+stderr)` unless it exits 0.
    pub fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let port = self.port.to_string();
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns, "gobgp", "-p", &port])
            .args(args);
        let out = proc::run(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// `gobgp -p <port> args...`; panics with the output if it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("gobgp {} (in {}) failed:\n{e}", args.join(" "), self.ns))
    }

    /// `gobgp global rib -a evpn -j`: an object whose keys are GoBGP's route strings, e.g.
    /// `[type:multicast][rd:198.19.1.1:2][etag:0][ip:198.19.1.1]`, each a list of paths with
    /// `nlri` (`{"type":3,"value":{"rd":..,"ip":..}}`), `attrs`, `neighbor-ip` and so on.
    pub fn rib_evpn_json(&self) -> Value {
        let text = self.cli(&["global", "rib", "-a", "evpn", "-j"]);
        if text.trim().is_empty() || text.trim() == "null" {
            return Value::Object(Default::default());
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("gobgp global rib -a evpn -j is not JSON ({e}):\n{text}"))
    }

    /// The keys of [`Self::rib_evpn_json`].
    pub fn evpn_routes(&self) -> Vec<String> {
        self.rib_evpn_json()
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `gobgp global rib add -a evpn args...`, e.g. `["macadv", "02:00:00:00:00:01",
    /// "198.18.1.3", "etag", "0", "label", "42", "rd", "198.19.1.2:42", "rt", "65001:42",
    /// "encap", "vxlan"]` or `["multicast", "198.19.1.2", "etag", "0", "rd", ..., "encap",
    /// "vxlan", "pmsi", "ingress-repl", "42", "198.19.1.2"]`. A MAC-only route uses IP 0.0.0.0.
    pub fn add_evpn(&self, args: &[&str]) {
        let mut v = vec!["global", "rib", "add", "-a", "evpn"];
        v.extend_from_slice(args);
        self.cli(&v);
    }

    /// `gobgp global rib del -a evpn args...` (same arguments as [`Self::add_evpn`]).
    pub fn del_evpn(&self, args: &[&str]) {
        let mut v = vec!["global", "rib", "del", "-a", "evpn"];
        v.extend_from_slice(args);
        self.cli(&v);
    }

    /// GoBGP's numeric session state for `peer` (6 = Established), `None` if unknown.
    pub fn neighbor_state(&self, peer: &str) -> Option<i64> {
        let text = self.try_cli(&["neighbor", peer, "-j"]).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v.get("state")?.get("session_state")?.as_i64()
    }

    /// Waits until the session with `peer` is Established; panics with `gobgp neighbor` and the
    /// daemon's logs after `timeout`. Returns how long it took.
    pub fn wait_established(&self, peer: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        if super::wait_until(timeout, || self.neighbor_state(peer) == Some(ESTABLISHED)) {
            return start.elapsed();
        }
        panic!(
            "GoBGP in {}: no Established session with {peer} after {timeout:?}\n{}\n{}",
            self.ns,
            self.try_cli(&["neighbor"]).unwrap_or_else(|e| e),
            self.child.logs()
        );
    }

    pub fn logs(&self) -> String {
        self.child.logs()
    }
}

/// A GoBGP TOML config: `global.config` with `asn`/`router_id` (listening on port 179), and
/// one neighbor per `(address, peer_as)` with afi-safi `l2vpn-evpn` and a 1 s connect retry.
pub fn evpn_config(asn: u32, router_id: &str, neighbors: &[(&str, u32)]) -> String {
    let mut c = format!(
        "[global.config]\n  as = {asn}\n  router-id = \"{router_id}\"\n  port = 179\n  local-address-list = [\"{router_id}\"]\n"
    );
    for (addr, peer_as) in neighbors {
        c.push_str(&format!(
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {peer_as}\n  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n"
        ));
    }
    c
}

impl Gobgp {
    /// The first path of route `key` (a key of [`Self::rib_evpn_json`]), if present.
    pub fn evpn_path(&self, key: &str) -> Option<Value> {
        self.rib_evpn_json().get(key)?.get(0).cloned()
    }
}

/// The attribute of type `code` in a GoBGP path's `attrs` list (1 ORIGIN, 2 AS_PATH,
/// 5 LOCAL_PREF, 9 ORIGINATOR_ID, 10 CLUSTER_LIST, 14 MP_REACH, 16 EXT_COMMUNITIES,
/// 22 PMSI_TUNNEL).
pub fn path_attr(path: &Value, code: u64) -> Option<&Value> {
    path["attrs"]
        .as_array()?
        .iter()
        .find(|a| a["type"].as_u64() == Some(code))
}
