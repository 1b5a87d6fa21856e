//! The command line and the config file as a user meets them: errors that say what is
//! wrong and where, and two daemons on loopback exchanging static routes from their
//! config files. No root needed: everything runs on 127.0.0.1 with ports and socket
//! paths unique to this test process.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vxbgp")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run vxbgp")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vxbgp-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A port free right now on loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon killed on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, config: &str) -> Daemon {
        Daemon::start_under(Command::new(bin()), dir, name, config)
    }

    /// Starts the daemon as the last arguments of `cmd` (a wrapper, or the binary).
    fn start_under(cmd: Command, dir: &Path, name: &str, config: &str) -> Daemon {
        Daemon::start_under_until(cmd, dir, name, config, |d| {
            d.cli(&["show", "neighbors"]).status.success()
        })
    }

    /// As [`Daemon::start_under`], `ready` saying when it is up.
    fn start_under_until(
        mut cmd: Command,
        dir: &Path,
        name: &str,
        config: &str,
        ready: impl Fn(&Daemon) -> bool,
    ) -> Daemon {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        // A socket in the config file stays; else one in `dir`.
        let socket = match config.lines().find_map(|l| l.strip_prefix("socket = ")) {
            Some(p) => PathBuf::from(p.trim_matches('"')),
            None => dir.join(format!("{name}.sock")),
        };
        let log = dir.join(format!("{name}.log"));
        if !cmd.get_args().any(|a| a == "--log") {
            cmd.args(["--log", "debug"]);
        }
        let child = cmd
            .args(["--config", cfg.to_str().unwrap()])
            .args(["--socket", socket.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, socket, log };
        assert!(
            wait(|| d.socket.exists() && ready(&d)),
            "daemon {name} did not start: {}",
            d.logs()
        );
        d
    }

    fn cli(&self, args: &[&str]) -> Output {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--socket", self.socket.to_str().unwrap()]);
        run(&a)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let o = self.cli(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn bad_flags_say_which_flag() {
    let o = run(&["--asn", "sixty-five"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--asn"), "{}", stderr(&o));
    let o = run(&["--asn", "65001", "--listen-range", "198.19.0.0/99"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("prefix length"), "{}", stderr(&o));
    let o = run(&["--asn", "65001", "--hold-time", "2"]);
    assert!(stderr(&o).contains("hold time"), "{}", stderr(&o));
    let o = run(&["show", "routes", "--type", "x"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--type"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_asn_and_router_id_are_explained() {
    let dir = tmpdir("noasn");
    let sock = dir.join("s.sock");
    let o = run(&["--socket", sock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no ASN"), "{}", stderr(&o));
    let o = run(&["--asn", "65001", "--socket", sock.to_str().unwrap()]);
    assert!(stderr(&o).contains("--router-id"), "{}", stderr(&o));
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tmpdir("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "asn = 65001\n\n[[neighbor]]\naddress = \"198.19.0.256\"\n",
    )
    .unwrap();
    let o = run(&["--config", cfg.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml") && e.contains("line 4") && e.contains("address"),
        "{e}"
    );
    std::fs::write(&cfg, "asn = 65001\nneighbour = []\n").unwrap();
    let e = stderr(&run(&["--config", cfg.to_str().unwrap()]));
    assert!(e.contains("line 2") && e.contains("neighbour"), "{e}");
    let e = stderr(&run(&[
        "--config",
        dir.join("missing.toml").to_str().unwrap(),
    ]));
    assert!(
        e.contains("cannot read config file") && e.contains("missing.toml"),
        "{e}"
    );
}

#[test]
fn client_without_daemon_says_where_it_looked() {
    let o = run(&["show", "neighbors", "--socket", "/nonexistent/vxbgp.sock"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("cannot reach the vxbgp daemon") && e.contains("/nonexistent/vxbgp.sock"),
        "{e}"
    );
}

/// Two daemons on loopback: static routes from one's config file reach the other,
/// `route add`/`route del` work, and bad route arguments get a clear error.
#[test]
fn two_daemons_exchange_static_routes_from_config() {
    let dir = tmpdir("pair");
    let (pa, pb) = (free_port(), free_port());
    let a = Daemon::start(
        &dir,
        "a",
        &format!(
            "asn = 65001\nrouter-id = \"198.19.0.1\"\nport = {pa}\nhold-time = 9\nno-fib = true\n\
             [[neighbor]]\naddress = \"127.0.0.1\"\nport = {pb}\n\
             [[route]]\ntype = \"multicast\"\nvni = 42\n\
             [[route]]\ntype = \"mac-ip\"\nvni = 42\nmac = \"02:00:00:00:00:0a\"\nip = \"198.18.0.10\"\n"
        ),
    );
    let b = Daemon::start(
        &dir,
        "b",
        &format!(
            "asn = 65001\nrouter-id = \"198.19.0.2\"\nport = {pb}\nhold-time = 9\nno-fib = true\n\
             [[neighbor]]\naddress = \"127.0.0.1\"\nport = {pa}\ndescription = \"daemon a\"\n"
        ),
    );
    let established = || b.json(&["show", "neighbors"])["neighbors"][0]["state"] == "Established";
    assert!(wait(established), "no session:\n{}\n{}", a.logs(), b.logs());
    let prefixes = |d: &Daemon| -> Vec<String> {
        d.json(&["show", "routes"])["routes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["prefix"].as_str().unwrap().to_string())
            .collect()
    };
    let t2 = "[2]:[0]:[48]:[02:00:00:00:00:0a]:[32]:[198.18.0.10]".to_string();
    let t3 = "[3]:[0]:[32]:[198.19.0.1]".to_string();
    assert!(
        wait(|| {
            let p = prefixes(&b);
            p.contains(&t2) && p.contains(&t3)
        }),
        "{:?}",
        prefixes(&b)
    );
    let r = b.json(&["show", "routes", "--type", "2", "--vni", "42"]);
    assert_eq!(r["routes"].as_array().unwrap().len(), 1);
    assert_eq!(r["routes"][0]["rd"], "198.19.0.1:42");
    assert_eq!(r["routes"][0]["paths"][0]["next_hop"], "198.19.0.1");
    assert_eq!(
        b.json(&["show", "routes", "--vni", "43"])["routes"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Counters add up: every UPDATE plus at least the OPEN and a KEEPALIVE.
    let n = &a.json(&["show", "neighbors"])["neighbors"][0];
    let (sent, updates) = (
        n["messages_sent"].as_u64().unwrap(),
        n["updates_sent"].as_u64().unwrap(),
    );
    assert!(updates >= 1 && sent >= updates + 2, "{n:#}");

    // The tables a person reads.
    let table = String::from_utf8(b.cli(&["show", "routes"]).stdout).unwrap();
    assert!(
        table.contains(&t2) && table.contains("RT:65001:42"),
        "{table}"
    );
    let table = String::from_utf8(b.cli(&["show", "neighbors"]).stdout).unwrap();
    assert!(
        table.contains("Established") && table.contains("daemon a"),
        "{table}"
    );

    // Added and withdrawn over the control socket.
    let o = b.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        "02:00:00:00:00:0b",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mac_only = "[2]:[0]:[48]:[02:00:00:00:00:0b]".to_string();
    assert!(
        wait(|| prefixes(&a).contains(&mac_only)),
        "{:?}",
        prefixes(&a)
    );
    let o = b.cli(&[
        "route",
        "del",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        "02:00:00:00:00:0b",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        wait(|| !prefixes(&a).contains(&mac_only)),
        "{:?}",
        prefixes(&a)
    );

    // Bad input over the socket: clear errors, daemon unharmed.
    let o = b.cli(&[
        "route",
        "add",
        "mac-ip",
        "--vni",
        "42",
        "--mac",
        "02:00:zz:00:00:0b",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad MAC address"), "{}", stderr(&o));
    // A reflector-style daemon without kernel access says so.
    let o = b.cli(&["show", "fib"]);
    assert!(stderr(&o).contains("--no-fib"), "{}", stderr(&o));
    let o = b.cli(&["route", "del", "multicast", "--vni", "7"]);
    assert!(stderr(&o).contains("no such route"), "{}", stderr(&o));
    assert!(established());
}

/// A reflector for a thousand clients needs more descriptors than a shell gives: the
/// daemon raises its soft open-file limit to the hard one by itself.
#[test]
fn daemon_raises_its_open_file_limit() {
    let dir = tmpdir("nofile");
    let config = format!(
        "asn = 65001\nrouter-id = \"198.19.0.1\"\nport = {}\nno-fib = true\n",
        free_port()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\"", bin()]);
    let d = Daemon::start_under(sh, &dir, "n", &config);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "soft limit raised to the hard one: {line}");
    assert_ne!(soft, "256", "{line}");
}

/// A panic in any task is not survived half-alive: the daemon logs the cause and exits
/// non-zero (a service manager restarts it).
#[test]
fn a_panicking_task_stops_the_daemon_with_its_cause() {
    let dir = tmpdir("panic");
    let config = format!(
        "asn = 65001\nrouter-id = \"198.19.0.1\"\nport = {}\nno-fib = true\n",
        free_port()
    );
    let mut cmd = Command::new(bin());
    cmd.env("VXBGP_FAILPOINT", "control-panic");
    let started = Instant::now();
    let mut d = Daemon::start_under_until(cmd, &dir, "p", &config, |d| {
        // The first request panics the control task.
        let _ = d.cli(&["show", "neighbors"]);
        true
    });
    let mut status = None;
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(s) = d.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status.unwrap_or_else(|| panic!("daemon still running: {}", d.logs()));
    assert_eq!(status.code(), Some(70), "{}", d.logs());
    let logs = d.logs();
    assert!(
        logs.contains("a task panicked") && logs.contains("failpoint control-panic"),
        "{logs}"
    );
}

/// `--log` sets what the daemon writes: at `warn` a session coming up is not logged,
/// at `debug` it is, with debug lines beside it; a filter that cannot be read is an
/// error that names the option, not a daemon that silently logs nothing.
#[test]
fn log_filter_sets_what_the_daemon_writes() {
    let dir = tmpdir("log");
    let (pa, pb) = (free_port(), free_port());
    let bad = run(&[
        "--asn",
        "65001",
        "--router-id",
        "198.19.0.1",
        "--no-fib",
        "--port",
        &pa.to_string(),
        "--log",
        "bgp=loud",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("bad --log filter"),
        "{}",
        stderr(&bad)
    );

    let conf = |me: u8, port: u16, peer: u16| {
        format!(
            "asn = 65001\nrouter-id = \"198.19.0.{me}\"\nport = {port}\nno-fib = true\n\
             [[neighbor]]\naddress = \"127.0.0.1\"\nport = {peer}\n"
        )
    };
    let mut quiet = Command::new(bin());
    quiet.args(["--log", "warn"]);
    let a = Daemon::start_under(quiet, &dir, "a", &conf(1, pa, pb));
    let b = Daemon::start(&dir, "b", &conf(2, pb, pa));
    let up = |d: &Daemon| d.json(&["show", "neighbors"])["neighbors"][0]["state"] == "Established";
    assert!(wait(|| up(&a) && up(&b)), "{}\n{}", a.logs(), b.logs());
    assert!(
        wait(|| b.logs().contains("session established")),
        "{}",
        b.logs()
    );
    assert!(b.logs().contains("DEBUG"), "{}", b.logs());
    let quiet_log = a.logs();
    assert!(
        !quiet_log.contains("session established") && !quiet_log.contains(" INFO "),
        "--log warn wrote info lines:\n{quiet_log}"
    );
}

/// Runs as root, else skips (fails under CI=true).
fn root_or_skip() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        });
    if uid == Some(0) {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "this test needs root and CI=true: refusing to skip"
    );
    eprintln!("skipping: needs root");
    false
}

/// The control socket is root's and the daemon user's (0600); `--socket-group` opens it
/// to one group (0660, the directory 0750, both of that group). Checked with a real
/// other user: `nobody` (primary group `nogroup`) is refused without the option and
/// served with `--socket-group nogroup`; an unknown group stops the daemon with an error.
#[test]
fn socket_group_lets_that_group_use_the_control_socket() {
    if !root_or_skip() {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tmpdir("group");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A copy of the client that `nobody` may run wherever the build tree is.
    let client = dir.join("vxbgp");
    std::fs::copy(bin(), &client).unwrap();
    let as_nobody = |sock: &Path| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&client)
            .args(["show", "neighbors", "--socket"])
            .arg(sock)
            .output()
            .expect("setpriv")
    };
    let config = |port: u16| {
        format!("asn = 65001\nrouter-id = \"198.19.0.1\"\nport = {port}\nno-fib = true\n")
    };

    let closed = Daemon::start(&dir, "closed", &config(free_port()));
    let m = std::fs::metadata(&closed.socket).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600, "{:o}", m.mode());
    let o = as_nobody(&closed.socket);
    assert!(
        !o.status.success(),
        "nobody was served: {}",
        String::from_utf8_lossy(&o.stdout)
    );

    // In a directory of its own that the daemon creates: 0750 and of the group.
    let sub = dir.join("run");
    let mut cmd = Command::new(bin());
    cmd.args(["--socket-group", "nogroup"]);
    let cfg = config(free_port()) + &format!("socket = \"{}/open.sock\"\n", sub.display());
    let open =
        Daemon::start_under_until(cmd, &dir, "open", &cfg, |_| sub.join("open.sock").exists());
    let sock = sub.join("open.sock");
    let (ms, md) = (
        std::fs::metadata(&sock).unwrap(),
        std::fs::metadata(&sub).unwrap(),
    );
    assert_eq!(
        (ms.mode() & 0o777, ms.gid()),
        (0o660, 65534),
        "socket {:o}",
        ms.mode()
    );
    assert_eq!(
        (md.mode() & 0o777, md.gid()),
        (0o750, 65534),
        "dir {:o}",
        md.mode()
    );
    let o = as_nobody(&sock);
    assert!(
        o.status.success(),
        "nobody refused: {}\n{}",
        stderr(&o),
        open.logs()
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("AS 65001"),
        "{:?}",
        o
    );

    let bad = run(&[
        "--asn",
        "65001",
        "--router-id",
        "198.19.0.1",
        "--no-fib",
        "--port",
        &free_port().to_string(),
        "--socket-group",
        "no-such-group-here",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("no such group"), "{}", stderr(&bad));
}
