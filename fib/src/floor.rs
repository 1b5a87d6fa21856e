//! The netlink floor: FIB ops turned into requests beforehand, then written through
//! [`Writer`] with nothing else in the way (no planner, no RIB). What the kernel costs
//! for a set of entries; `fib/examples/fib_floor.rs` and the benchmark's `kernel`
//! scenario both time the daemon against it, so both build the requests here.

use std::time::{Duration, Instant};

use crate::model::FibOp;
use crate::netlink::{self, VniDevices};
use crate::writer::{Errno, Request, Transport, Writer};

/// The requests for `ops`, in order; ops of a VNI that `devices` does not know are left
/// out (as the FIB skips them).
pub fn requests(ops: &[FibOp], devices: impl Fn(u32) -> Option<VniDevices>) -> Vec<Request> {
    ops.iter()
        .filter_map(|op| Some((op, devices(op.vni())?)))
        .flat_map(|(op, dev)| netlink::requests(op, dev))
        .map(|(m, f)| Request::new(m, f))
        .collect()
}

/// Writes `reqs` and waits for every answer: the time it took and the requests that
/// failed (index, errno).
pub fn write<T: Transport>(w: &mut Writer<T>, reqs: &[Request]) -> (Duration, Vec<(usize, Errno)>) {
    let t = Instant::now();
    let failed = w.send_iter(reqs);
    (t.elapsed(), failed)
}
