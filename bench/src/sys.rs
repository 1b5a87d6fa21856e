//! Processes the bench starts (stopped by PID, never by name), commands it runs, and what
//! `/proc` says about the reflector: RSS, peak RSS, CPU time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Any error of the bench, as text for the report.
pub type Error = String;
pub type Result<T> = std::result::Result<T, Error>;

/// How long a daemon gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// A daemon the bench started. `Drop` stops it by its PID: SIGTERM, then SIGKILL after
/// [`GRACE`], and reaps it. Its stdout and stderr go to files in the run's work directory.
pub struct Daemon {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    /// Spawns `argv` (`argv[0]` is the program) with its output in `<dir>/<name>.out|.err`.
    pub fn spawn(name: &str, argv: &[String], dir: &Path) -> Result<Daemon> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| format!("{name}: empty command"))?;
        let out_path = dir.join(format!("{name}.out"));
        let err_path = dir.join(format!("{name}.err"));
        let out = File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
        let err = File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
        let child = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {name} ({prog}): {e}"))?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            stderr: err_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Err` with the exit status and the end of its stderr once the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); end of its stderr:\n{}",
                self.name,
                tail(&self.stderr, 15)
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// The last lines of its stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr, lines)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let Ok(raw) = i32::try_from(self.child.id()) else {
            return;
        };
        let pid = Pid::from_raw(raw);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} (pid {raw}) still running {} s after SIGTERM; killing it",
            self.name,
            GRACE.as_secs()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a text file ("" if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines
        .iter()
        .skip(skip)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs a command to completion (async, killed if the future is dropped); `Err` with its
/// output unless it exits 0. Returns stdout.
pub async fn run(argv: &[&str]) -> Result<String> {
    run_input(argv, None).await
}

/// [`run`] with `input` written to its stdin.
pub async fn run_input(argv: &[&str], input: Option<&str>) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| format!("{}: writing stdin: {e}", argv.join(" ")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            argv.join(" "),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Blocking [`run`], for `Drop` and for the set-up before the runtime exists.
pub fn run_sync(argv: &[&str]) -> Result<String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            argv.join(" "),
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Memory and CPU of a set of processes, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
    /// utime + stime, seconds.
    pub cpu_s: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ; 100 on every Linux we run on).
pub fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        run_sync(&["getconf", "CLK_TCK"])
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// [`Usage`] of one process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn usage(pid: u32) -> Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let (utime, stime) = parse_stat_cpu(&stat).ok_or(format!("/proc/{pid}/stat: unparsable"))?;
    Ok(Usage {
        rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
        hwm_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
        cpu_s: (utime + stime) as f64 / clock_ticks(),
    })
}

/// The sum of [`usage`] over `pids`.
pub fn usage_sum(pids: &[u32]) -> Result<Usage> {
    let mut u = Usage::default();
    for &pid in pids {
        let p = usage(pid)?;
        u.rss_kib += p.rss_kib;
        u.hwm_kib += p.hwm_kib;
        u.cpu_s += p.cpu_s;
    }
    Ok(u)
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted after the last ')'.
pub fn parse_stat_cpu(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': field 3 (state) is the first; utime is field 14 → index 11.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// A `Key:   123 kB` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft RLIMIT_NOFILE of a process, from `/proc/<pid>/limits`.
pub fn nofile_limit(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises the soft RLIMIT_NOFILE to at least `need` (and the hard limit if it is lower and we
/// may). Returns the soft limit in force afterwards.
pub fn raise_nofile(need: u64) -> Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    if soft >= need {
        return Ok(soft);
    }
    let new_hard = hard.max(need);
    setrlimit(Resource::RLIMIT_NOFILE, need, new_hard)
        .or_else(|_| setrlimit(Resource::RLIMIT_NOFILE, hard.min(need), hard))
        .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {need}): {e}"))?;
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    Ok(soft)
}

/// True if a process with this PID exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Busy and total jiffies of all CPUs, from the first line of /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Waits (at most `max`) until the machine is quiet: under `SETTLED` of its CPU busy
/// over 200 ms. What the last run left to the kernel (a namespace torn down, its
/// entries freed by a kernel worker) then does not land on the next daemon's clock.
pub async fn settle(max: Duration) {
    const SETTLED: f64 = 0.15;
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        let Some((b0, t0)) = cpu_jiffies() else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some((b1, t1)) = cpu_jiffies() else {
            return;
        };
        let (busy, total) = (b1.saturating_sub(b0), t1.saturating_sub(t0));
        if total > 0 && (busy as f64) < SETTLED * total as f64 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let line = "1234 (bgp d) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat_cpu(line), Some((250, 75)));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn status_values() {
        let s = "Name:\tbgpd\nVmHWM:\t   12345 kB\nVmRSS:\t    2345 kB\n";
        assert_eq!(status_kib(s, "VmHWM:"), Some(12345));
        assert_eq!(status_kib(s, "VmRSS:"), Some(2345));
        assert_eq!(status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn own_usage_is_readable() {
        let u = usage(std::process::id()).expect("own /proc entry");
        assert!(u.rss_kib > 0 && u.hwm_kib >= u.rss_kib);
    }
}
