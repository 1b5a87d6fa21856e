//! The control socket: `vxbgp show ...` and `vxbgp route ...` talk to the daemon here.

pub mod client;
pub mod protocol;
pub mod server;
pub mod view;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Where control sockets live by default.
pub const SOCKET_DIR: &str = "/run/vxbgp";

/// `/run/vxbgp/<netns>.sock`: a daemon started with `ip netns exec NS` and a `vxbgp
/// show` run the same way meet without flags, and daemons in different namespaces
/// never collide. Outside a named namespace the name is `default`.
pub fn default_socket() -> PathBuf {
    PathBuf::from(SOCKET_DIR).join(format!("{}.sock", netns_name()))
}

fn netns_name() -> String {
    let Ok(own) = std::fs::metadata("/proc/self/ns/net") else {
        return "default".into();
    };
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for entry in dir.flatten() {
            if let Ok(m) = std::fs::metadata(entry.path()) {
                if m.ino() == own.ino() && m.dev() == own.dev() {
                    return entry.file_name().to_string_lossy().into_owned();
                }
            }
        }
    }
    "default".into()
}
