//! The FIB's netlink writer on a thread of its own.
//!
//! The kernel programs each request inside `sendmsg`, on the sending thread: that is
//! most of the FIB's work. On a thread of its own it runs beside the FIB task, so the
//! FIB plans the next batch of routes while the kernel programs the last one (the FIB
//! and the kernel in turn on one core was 1.2–1.4× the netlink floor). Jobs are
//! written in the order they are submitted; each gets its report back on a oneshot.

use std::collections::HashMap;
use std::io;
use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

use crate::model::FibOp;
use crate::netlink::{self, ApplyReport, VniDevices};
use crate::writer::Writer;

/// Which devices a job's ops go to.
#[derive(Clone, Debug)]
pub enum Devices {
    /// Every op to these (a VNI's old devices, while they are being left).
    Fixed(VniDevices),
    /// By the op's VNI; ops of VNIs without devices are skipped.
    ByVni(HashMap<u32, VniDevices>),
}

impl Devices {
    pub fn of(&self, vni: u32) -> Option<VniDevices> {
        match self {
            Devices::Fixed(d) => Some(*d),
            Devices::ByVni(m) => m.get(&vni).copied(),
        }
    }
}

/// A job done: its ops and devices, given back, and what the kernel did with them.
#[derive(Debug)]
pub struct Written {
    pub ops: Vec<FibOp>,
    pub devices: Devices,
    pub report: ApplyReport,
}

struct Job {
    ops: Vec<FibOp>,
    devices: Devices,
    done: oneshot::Sender<Written>,
}

/// A submitted job, until its report is back.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Written>);

impl Pending {
    /// Waits for the report (cancel-safe: awaiting again after a drop of the future
    /// still gets it). If the writer thread is gone, nothing was written.
    pub async fn wait(&mut self) -> Written {
        match (&mut self.0).await {
            Ok(w) => w,
            Err(_) => {
                tracing::error!("the FIB's writer thread is gone: nothing written");
                Written {
                    ops: Vec::new(),
                    devices: Devices::ByVni(HashMap::new()),
                    report: ApplyReport::default(),
                }
            }
        }
    }
}

/// The handle of the writer thread; the thread ends when this is dropped.
pub struct KernelWriter {
    jobs: std_mpsc::Sender<Job>,
    port_id: u32,
}

impl KernelWriter {
    /// Moves `writer` (its socket stays in the namespace it was opened in) to a thread
    /// named `fib-writer`.
    pub fn spawn(mut writer: Writer) -> io::Result<KernelWriter> {
        let port_id = writer.port_id();
        let (jobs, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("fib-writer".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let report = netlink::apply(&mut writer, &job.ops, |vni| job.devices.of(vni));
                    let _ = job.done.send(Written {
                        ops: job.ops,
                        devices: job.devices,
                        report,
                    });
                }
            })?;
        Ok(KernelWriter { jobs, port_id })
    }

    /// The netlink port id of the writer's socket.
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Queues `ops` for the kernel.
    pub fn submit(&self, ops: Vec<FibOp>, devices: Devices) -> Pending {
        let (done, rx) = oneshot::channel();
        // A send fails only if the thread is gone; then `wait` reports nothing done.
        let _ = self.jobs.send(Job { ops, devices, done });
        Pending(rx)
    }
}
