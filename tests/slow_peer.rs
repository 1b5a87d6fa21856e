//! A route-reflector client that stops reading holds up nobody for long, and gets
//! everything once it reads again.
//!
//! vxbgp reflects for three clients on loopback (127.0.0.2-4, a listen range; no
//! namespace needed): one announces many routes, one reads them, one does not read at
//! all. The reader must get the whole table while the stalled client's session stays
//! up; then the stalled one reads and must get the whole table too.

mod support;

use std::net::Ipv4Addr;

use support::loopback::*;

/// About 13 MB of UPDATEs towards each receiver: more than loopback's socket buffers
/// and the reflector's per-peer queue together, so the stalled client really blocks.
const ROUTES: u32 = 300_000;

#[test]
fn a_stalled_client_holds_up_nobody_and_gets_everything_when_it_reads() {
    let port = free_port();
    let d = Daemon::start(port, "");
    let (stalled_ip, reader_ip, source_ip) = (
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 3),
        Ipv4Addr::new(127, 0, 0, 4),
    );
    let mut stalled = Client::connect(stalled_ip, port, &d);
    let mut reader = Client::connect(reader_ip, port, &d);
    let mut source = Client::connect(source_ip, port, &d);
    // From here on the stalled client reads nothing.
    let reading = std::thread::spawn(move || {
        let n = reader.count_routes(ROUTES as usize);
        (n, reader)
    });
    announce(&mut source, source_ip, ROUTES);
    let (n, _reader) = reading.join().expect("reader thread");
    assert_eq!(n, ROUTES as usize, "the reading client got the whole table");
    assert_eq!(
        d.neighbor_state("127.0.0.2").as_deref(),
        Some("Established"),
        "the stalled client's session is still up\n{}",
        d.logs()
    );
    // It reads again: everything reaches it.
    let n = stalled.count_routes(ROUTES as usize);
    assert_eq!(n, ROUTES as usize);
    drop(source);
}
