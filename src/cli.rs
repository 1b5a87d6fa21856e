//! Command-line interface: the daemon's flags and the control-socket subcommands.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use bgp::peer::Prefix;
use clap::{Args, Parser, Subcommand};

/// vxbgp: a BGP EVPN speaker and route reflector for Linux VXLAN hosts.
///
/// Without a subcommand, runs the daemon:
///   vxbgp --asn 65001 --neighbor 192.168.0.3
/// With one, talks to a running daemon over its control socket:
///   vxbgp show routes --vni 42
#[derive(Debug, Parser)]
#[command(name = "vxbgp", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub daemon: DaemonArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Default, Clone)]
pub struct DaemonArgs {
    /// Our autonomous system number.
    #[arg(long, value_name = "ASN")]
    pub asn: Option<u32>,

    /// BGP identifier; by default the address this host uses to reach the first
    /// neighbour.
    #[arg(long, value_name = "IPV4")]
    pub router_id: Option<Ipv4Addr>,

    /// A BGP neighbour (repeat for several); iBGP unless the config file says otherwise.
    #[arg(long = "neighbor", value_name = "ADDR")]
    pub neighbors: Vec<IpAddr>,

    /// Accept sessions from any address in this range, as a route reflector would
    /// (repeat for several).
    #[arg(long = "listen-range", value_name = "CIDR", value_parser = parse_prefix)]
    pub listen_ranges: Vec<Prefix>,

    /// Act as route reflector: internal peers are its clients (RFC 4456).
    #[arg(long)]
    pub route_reflector: bool,

    /// CLUSTER_ID when reflecting; the router id by default.
    #[arg(long, value_name = "IPV4")]
    pub cluster_id: Option<Ipv4Addr>,

    /// TCP port to listen on and to connect to.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Next hop (VTEP address) of the routes this host originates; the router id
    /// by default.
    #[arg(long, value_name = "ADDR")]
    pub vtep_ip: Option<IpAddr>,

    /// Hold time to propose (0, or 3 to 65535 seconds).
    #[arg(long, value_name = "SECONDS", value_parser = parse_hold_time)]
    pub hold_time: Option<u16>,

    /// Control socket. Default: /run/vxbgp/<network namespace>.sock, so daemons in
    /// different namespaces never collide.
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Members of this group may use the control socket too (socket 0660, its
    /// directory 0750, both of this group); by default only root and the daemon's user.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,

    /// Configuration file (TOML); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Do not touch the kernel: no VNI discovery, no local learning, no FDB or
    /// neighbour programming (for a dedicated route reflector).
    #[arg(long)]
    pub no_fib: bool,

    /// Set `learning off neigh_suppress on` on vxlan bridge ports that lack it.
    #[arg(long)]
    pub fix_ports: bool,

    /// The most routes a peer may give (RFC 4486): past it its session is closed with
    /// Cease / Maximum Number of Prefixes Reached. Per neighbour in the config file.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_prefixes: Option<u32>,

    /// Duplicate address detection: a MAC that moves between this host and another
    /// VTEP this many times within --dad-time is frozen where it is (0: off)
    /// [default: 5].
    #[arg(long, value_name = "N")]
    pub dad_max_moves: Option<u32>,

    /// The window of --dad-max-moves, in seconds [default: 180].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub dad_time: Option<u64>,

    /// How long a duplicate MAC stays frozen, in seconds; 0: until
    /// `vxbgp clear duplicates` [default: 1800].
    #[arg(long, value_name = "SECS")]
    pub dad_freeze: Option<u64>,

    /// Local MACs learned and advertised per VNI at most [default: 16384].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_macs_per_vni: Option<u32>,

    /// Addresses (from ARP/ND or neighbour entries) per local MAC at most [default: 32].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_addresses_per_mac: Option<u32>,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive);
    /// RUST_LOG works too.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what the daemon knows.
    #[command(subcommand)]
    Show(Show),
    /// Originate or withdraw routes.
    #[command(subcommand)]
    Route(RouteCmd),
    /// Clear state the daemon keeps.
    #[command(subcommand)]
    Clear(Clear),
}

#[derive(Debug, Subcommand)]
pub enum Clear {
    /// Thaw MACs frozen by duplicate address detection (all, or those of --vni and
    /// --mac): they are learned and advertised again.
    Duplicates {
        #[arg(long)]
        vni: Option<u32>,
        #[arg(long)]
        mac: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum Show {
    /// BGP neighbours and their sessions.
    Neighbors {
        #[arg(long)]
        json: bool,
    },
    /// EVPN routes in the Loc-RIB, with every path.
    Routes {
        /// Only routes of this VNI.
        #[arg(long)]
        vni: Option<u32>,
        /// Only routes of this EVPN type (2 = MAC/IP, 3 = inclusive multicast).
        #[arg(long = "type", value_name = "TYPE", value_parser = clap::value_parser!(u8).range(1..=255))]
        route_type: Option<u8>,
        #[arg(long)]
        json: bool,
    },
    /// What is programmed in the kernel, per VNI: flood list, remote MACs,
    /// suppression entries.
    Fib {
        #[arg(long)]
        vni: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// The VNIs found on this host (vxlan devices that are bridge ports).
    Vnis {
        #[arg(long)]
        json: bool,
    },
    /// MACs frozen by duplicate address detection.
    Duplicates {
        #[arg(long)]
        vni: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// Add (originate) a route.
    #[command(subcommand)]
    Add(RouteSpecCmd),
    /// Withdraw a route added before.
    #[command(subcommand, alias = "delete")]
    Del(RouteSpecCmd),
}

#[derive(Debug, Subcommand)]
pub enum RouteSpecCmd {
    /// Type-2 MAC/IP advertisement route.
    MacIp(MacIpArgs),
    /// Type-3 inclusive multicast Ethernet tag route (joins the VNI's flood list).
    Multicast(MulticastArgs),
}

#[derive(Debug, Args)]
pub struct MacIpArgs {
    #[arg(long)]
    pub vni: u32,
    #[arg(long)]
    pub mac: String,
    #[arg(long)]
    pub ip: Option<IpAddr>,
    #[command(flatten)]
    pub common: CommonRouteArgs,
    /// MAC mobility sequence number (RFC 7432 §15).
    #[arg(long)]
    pub mobility_seq: Option<u32>,
    /// Sticky (static) MAC.
    #[arg(long)]
    pub sticky: bool,
}

#[derive(Debug, Args)]
pub struct MulticastArgs {
    #[arg(long)]
    pub vni: u32,
    #[command(flatten)]
    pub common: CommonRouteArgs,
}

#[derive(Debug, Args)]
pub struct CommonRouteArgs {
    /// Route distinguisher (e.g. 198.19.0.1:42); router-id:VNI-index by default.
    #[arg(long)]
    pub rd: Option<String>,
    /// Route target (repeat for several); ASN:VNI by default.
    #[arg(long = "rt")]
    pub rts: Vec<String>,
    /// Next hop (VTEP address); the daemon's VTEP address by default.
    #[arg(long)]
    pub next_hop: Option<IpAddr>,
}

fn parse_prefix(s: &str) -> Result<Prefix, String> {
    s.parse()
}

fn parse_hold_time(s: &str) -> Result<u16, String> {
    let v: u16 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v == 1 || v == 2 {
        return Err("hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)".into());
    }
    Ok(v)
}
