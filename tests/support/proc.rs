//! Processes started by tests: [`Child`] owns one spawned process and kills it on `Drop`;
//! [`terminate`] stops a process known only by PID (daemons that fork, like FRR's).
//! Signals go through `/usr/bin/kill` because the harness uses std only (no libc).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a process gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// `program arg arg ...` for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion and returns its output; panics only if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(cmd)))
}

/// Runs `cmd`, panics with its stdout and stderr unless it exits 0, returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "`{}` failed ({}):\n--- stdout\n{}--- stderr\n{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The process state letter from `/proc/<pid>/stat` (`R`, `S`, `Z`, ...), `None` if gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ..." — comm may contain spaces or ')', so split at the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// The command name of `pid` (`/proc/<pid>/comm`), if it exists.
pub fn pid_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Sends `signal` (e.g. "TERM", "KILL") to `pid`; false if `kill` reported an error.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// SIGTERM, wait up to `grace`, then SIGKILL and wait up to 2 s more. For processes that are
/// not our children (daemons that forked), so it can only watch `/proc`, not reap them.
pub fn terminate(pid: u32, grace: Duration) {
    if !pid_alive(pid) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while pid_alive(pid) && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        signal(pid, "KILL");
        let deadline = Instant::now() + Duration::from_secs(2);
        while pid_alive(pid) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
    }
}

/// Like [`terminate`], but signals `pid` only while `still_ours(pid)` holds: a PID read
/// from a list may exit and be reused by another test's process before we get to it.
pub fn terminate_if(pid: u32, grace: Duration, still_ours: impl Fn(u32) -> bool) {
    let ours = |p| pid_alive(p) && still_ours(p);
    if !ours(pid) {
        return;
    }
    signal(pid, "TERM");
    let deadline = Instant::now() + grace;
    while ours(pid) && Instant::now() < deadline {
        sleep(Duration::from_millis(50));
    }
    if ours(pid) {
        signal(pid, "KILL");
        let deadline = Instant::now() + Duration::from_secs(2);
        while ours(pid) && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
    }
}

/// The last `max_lines` lines of a file, or a note that it could not be read.
pub fn tail(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A spawned process that is killed (SIGTERM, then SIGKILL after [`GRACE`]) and reaped on
/// `Drop`. Its stdout and stderr go to `<log_dir>/<name>.stdout|.stderr`; when the test is
/// panicking, `Drop` prints their tails first.
pub struct Child {
    name: String,
    child: std::process::Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

impl Child {
    /// Spawns `cmd` with stdin closed and output redirected to files in `log_dir`.
    pub fn spawn(mut cmd: Command, name: &str, log_dir: &Path) -> Child {
        std::fs::create_dir_all(log_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
        let stdout_path = log_dir.join(format!("{name}.stdout"));
        let stderr_path = log_dir.join(format!("{name}.stderr"));
        let out = File::create(&stdout_path).expect("create stdout log");
        let err = File::create(&stderr_path).expect("create stderr log");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{}`: {e}", describe(&cmd)));
        Child {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout_path
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of stdout and stderr, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "--- {} stdout ({})\n{}\n--- {} stderr ({})\n{}",
            self.name,
            self.stdout_path.display(),
            tail(&self.stdout_path, 40),
            self.name,
            self.stderr_path.display(),
            tail(&self.stderr_path, 40)
        )
    }

    /// Stops the process now (what `Drop` does); returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        signal(self.pid(), "TERM");
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.stop();
    }
}
