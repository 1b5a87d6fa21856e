//! The TOML configuration file, merged with the command-line flags.
//!
//! ```toml
//! asn = 65001
//! router-id = "198.19.0.1"
//! route-reflector = true
//! listen-range = ["198.19.0.0/24"]
//!
//! [[neighbor]]
//! address = "198.19.0.2"
//! remote-as = 65002          # eBGP; iBGP (our ASN) when left out
//! port = 179
//! passive = false
//! hold-time = 90
//! description = "leaf 2"
//!
//! [[route]]                  # static routes, originated at start
//! type = "mac-ip"            # or "multicast"
//! vni = 42
//! mac = "02:00:00:00:00:01"
//! ip = "198.18.0.10"
//! ```
//! Unknown keys are errors, and every error names the file, line and key.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bgp::peer::Prefix;
use serde::{Deserialize, Deserializer};

use crate::cli::DaemonArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub asn: Option<u32>,
    pub router_id: Option<Ipv4Addr>,
    pub cluster_id: Option<Ipv4Addr>,
    #[serde(default)]
    pub route_reflector: bool,
    pub port: Option<u16>,
    pub vtep_ip: Option<IpAddr>,
    pub hold_time: Option<u16>,
    pub socket: Option<PathBuf>,
    pub socket_group: Option<String>,
    /// Do not program the kernel (dedicated route reflector).
    #[serde(default)]
    pub no_fib: bool,
    /// Fix vxlan bridge ports (`learning off neigh_suppress on`).
    #[serde(default)]
    pub fix_ports: bool,
    /// The most routes any peer may give (RFC 4486), unless its neighbour entry says.
    pub max_prefixes: Option<u32>,
    /// Duplicate address detection: moves within `dad_time` seconds that freeze a
    /// MAC (0: off), and how long it stays frozen (seconds, 0: until cleared).
    pub dad_max_moves: Option<u32>,
    pub dad_time: Option<u64>,
    pub dad_freeze: Option<u64>,
    /// Learning limits: local MACs per VNI, addresses per local MAC.
    pub max_macs_per_vni: Option<u32>,
    pub max_addresses_per_mac: Option<u32>,
    #[serde(default, deserialize_with = "prefixes")]
    pub listen_range: Vec<Prefix>,
    #[serde(default)]
    pub neighbor: Vec<NeighborConfig>,
    #[serde(default)]
    pub route: Vec<StaticRoute>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NeighborConfig {
    pub address: IpAddr,
    pub remote_as: Option<u32>,
    pub port: Option<u16>,
    #[serde(default)]
    pub passive: bool,
    pub hold_time: Option<u16>,
    pub description: Option<String>,
    /// Whether an internal neighbour is our route-reflector client; by default it
    /// is when we are a route reflector.
    pub route_reflector_client: Option<bool>,
    /// The most routes this neighbour may give (RFC 4486); the global one if unset.
    pub max_prefixes: Option<u32>,
    /// Only log when the limit is passed, instead of closing the session.
    #[serde(default)]
    pub max_prefixes_warning_only: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StaticKind {
    MacIp,
    Multicast,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticRoute {
    #[serde(rename = "type")]
    pub kind: StaticKind,
    pub vni: u32,
    pub mac: Option<String>,
    pub ip: Option<IpAddr>,
    pub rd: Option<String>,
    #[serde(default)]
    pub rt: Vec<String>,
    pub next_hop: Option<IpAddr>,
    pub mobility_seq: Option<u32>,
    #[serde(default)]
    pub sticky: bool,
}

fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Prefix>, D::Error> {
    let v: Vec<String> = Vec::deserialize(d)?;
    v.iter()
        .map(|s| s.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// The settings the daemon runs with, flags over file over defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub cluster_id: Option<Ipv4Addr>,
    pub route_reflector: bool,
    pub port: u16,
    pub vtep_ip: Option<IpAddr>,
    pub hold_time: u16,
    pub socket: Option<PathBuf>,
    /// The group that may use the control socket besides root and our user.
    pub socket_group: Option<String>,
    pub listen_ranges: Vec<Prefix>,
    pub neighbors: Vec<NeighborConfig>,
    pub routes: Vec<StaticRoute>,
    pub fib: bool,
    pub fix_ports: bool,
    pub limits: fib::local::LearnLimits,
    pub dad: fib::dad::DadConfig,
    pub max_prefixes: Option<u32>,
}

pub const DEFAULT_PORT: u16 = 179;
pub const DEFAULT_HOLD_TIME: u16 = 90;

/// Reads `path`; the error says where and what.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<FileConfig, String> {
    let cfg: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    for (i, n) in cfg.neighbor.iter().enumerate() {
        check_hold(n.hold_time, &format!("neighbor[{i}].hold-time"))?;
    }
    check_hold(cfg.hold_time, "hold-time")?;
    Ok(cfg)
}

fn check_hold(v: Option<u16>, key: &str) -> Result<(), String> {
    match v {
        Some(1 | 2) => Err(format!(
            "{key}: must be 0 or at least 3 seconds (RFC 4271 §4.2)"
        )),
        _ => Ok(()),
    }
}

/// Merges flags over the file; `--neighbor` entries the file does not list are iBGP.
pub fn merge(args: &DaemonArgs, file: FileConfig) -> Result<Settings, String> {
    let asn = args
        .asn
        .or(file.asn)
        .ok_or("no ASN: give --asn ASN or `asn = ...` in the config file")?;
    let mut neighbors = file.neighbor;
    for &addr in &args.neighbors {
        if !neighbors.iter().any(|n| n.address == addr) {
            neighbors.push(NeighborConfig {
                address: addr,
                remote_as: None,
                port: None,
                passive: false,
                hold_time: None,
                description: None,
                route_reflector_client: None,
                max_prefixes: None,
                max_prefixes_warning_only: false,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for n in &neighbors {
        if !seen.insert(n.address) {
            return Err(format!("neighbor {} is configured twice", n.address));
        }
    }
    let mut listen_ranges = file.listen_range;
    listen_ranges.extend(args.listen_ranges.iter().copied());
    Ok(Settings {
        asn,
        router_id: args.router_id.or(file.router_id),
        cluster_id: args.cluster_id.or(file.cluster_id),
        route_reflector: args.route_reflector || file.route_reflector,
        port: args.port.or(file.port).unwrap_or(DEFAULT_PORT),
        vtep_ip: args.vtep_ip.or(file.vtep_ip),
        hold_time: args
            .hold_time
            .or(file.hold_time)
            .unwrap_or(DEFAULT_HOLD_TIME),
        socket: args.socket.clone().or(file.socket),
        socket_group: args.socket_group.clone().or(file.socket_group),
        listen_ranges,
        neighbors,
        routes: file.route,
        fib: !(args.no_fib || file.no_fib),
        fix_ports: args.fix_ports || file.fix_ports,
        max_prefixes: args.max_prefixes.or(file.max_prefixes),
        dad: {
            let d = fib::dad::DadConfig::default();
            fib::dad::DadConfig {
                max_moves: args
                    .dad_max_moves
                    .or(file.dad_max_moves)
                    .unwrap_or(d.max_moves),
                window: args
                    .dad_time
                    .or(file.dad_time)
                    .map_or(d.window, |s| Duration::from_secs(s.max(1))),
                freeze_for: match args.dad_freeze.or(file.dad_freeze) {
                    None => d.freeze_for,
                    Some(0) => None,
                    Some(s) => Some(Duration::from_secs(s)),
                },
            }
        },
        limits: {
            let d = fib::local::LearnLimits::default();
            let pick = |arg: Option<u32>, file: Option<u32>, default: usize| {
                arg.or(file).map_or(default, |n| n.max(1) as usize)
            };
            fib::local::LearnLimits {
                macs_per_vni: pick(args.max_macs_per_vni, file.max_macs_per_vni, d.macs_per_vni),
                addresses_per_mac: pick(
                    args.max_addresses_per_mac,
                    file.max_addresses_per_mac,
                    d.addresses_per_mac,
                ),
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let cfg = parse(
            r#"
asn = 65001
router-id = "198.19.0.1"
route-reflector = true
listen-range = ["198.19.0.0/24"]

[[neighbor]]
address = "198.19.0.2"
remote-as = 65002
passive = true
hold-time = 30
description = "leaf 2"

[[route]]
type = "mac-ip"
vni = 42
mac = "02:00:00:00:00:01"
ip = "198.18.0.10"
"#,
        )
        .unwrap();
        assert_eq!(cfg.asn, Some(65001));
        assert_eq!(cfg.listen_range[0].to_string(), "198.19.0.0/24");
        assert_eq!(cfg.neighbor[0].remote_as, Some(65002));
        assert!(cfg.neighbor[0].passive);
        assert_eq!(cfg.route[0].kind, StaticKind::MacIp);
    }

    #[test]
    fn duplicate_detection_from_the_file_flags_win() {
        let file =
            parse("asn = 65001\ndad-max-moves = 3\ndad-time = 60\ndad-freeze = 0\n").unwrap();
        let s = merge(&DaemonArgs::default(), file).unwrap();
        assert_eq!(s.dad.max_moves, 3);
        assert_eq!(s.dad.window, Duration::from_secs(60));
        assert_eq!(s.dad.freeze_for, None, "0: until cleared");
        let args = DaemonArgs {
            asn: Some(65001),
            dad_max_moves: Some(0),
            dad_freeze: Some(30),
            ..Default::default()
        };
        let s = merge(&args, parse("dad-max-moves = 3\n").unwrap()).unwrap();
        assert_eq!(s.dad.max_moves, 0, "the flag wins: detection off");
        assert_eq!(s.dad.freeze_for, Some(Duration::from_secs(30)));
        let d = merge(&args, parse("").unwrap()).unwrap().dad.window;
        assert_eq!(d, Duration::from_secs(180), "FRR's default window");
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let e = parse("asn = 65001\n[[neighbor]]\naddress = \"198.19.0.300\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("address"), "{e}");
        let e = parse("asn = 65001\nrouter_id = \"1.2.3.4\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("router_id"), "{e}");
        let e = parse("listen-range = [\"198.19.0.0/40\"]\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("prefix length"), "{e}");
        let e = parse("[[neighbor]]\naddress = \"198.19.0.2\"\nhold-time = 2\n").unwrap_err();
        assert!(e.contains("neighbor[0].hold-time"), "{e}");
    }

    #[test]
    fn flags_override_the_file_and_add_ibgp_neighbors() {
        let args = DaemonArgs {
            asn: Some(65010),
            neighbors: vec!["198.19.0.9".parse().unwrap(), "198.19.0.2".parse().unwrap()],
            ..Default::default()
        };
        let file = parse(
            "asn = 65001\nport = 1179\n[[neighbor]]\naddress = \"198.19.0.2\"\nremote-as = 65002\n",
        )
        .unwrap();
        let s = merge(&args, file).unwrap();
        assert_eq!(s.asn, 65010);
        assert_eq!(s.port, 1179);
        assert_eq!(s.neighbors.len(), 2);
        assert_eq!(s.neighbors[0].remote_as, Some(65002));
        assert_eq!(s.neighbors[1].remote_as, None);
        let e = merge(&DaemonArgs::default(), FileConfig::default()).unwrap_err();
        assert!(e.contains("--asn"), "{e}");
    }
}
