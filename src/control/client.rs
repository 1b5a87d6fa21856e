//! The `vxbgp show ...` / `vxbgp route ...` side of the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::protocol::{Request, Response};

/// Sends one request and returns the daemon's answer.
pub fn request(socket: &Path, req: &Request) -> Result<Response, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot reach the vxbgp daemon at {}: {e}\n(is it running in this network namespace? \
             use --socket PATH to name its control socket)",
            socket.display()
        )
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| format!("control socket: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("control socket: {e}"))?;
    if answer.is_empty() {
        return Err("the daemon closed the control connection without answering".into());
    }
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from the daemon: {e}"))
}
