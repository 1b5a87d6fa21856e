//! The only place vxbgp speaks netlink: `FibOp`s become RTM_NEWNEIGH/RTM_DELNEIGH
//! requests, written in batches by [`crate::writer`] (many requests per `sendmsg`, one
//! ack per batch, errors matched to their op by sequence number), with "already there"
//! / "already gone" answers taken as success.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::model::{FibOp, Mac};
use crate::writer::{Request, Transport, Writer};

/// The devices of one VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniDevices {
    pub vxlan_ifindex: u32,
    pub bridge_ifindex: u32,
}

/// What happened to a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Ops the kernel now holds as asked.
    pub done: usize,
    /// Ops for VNIs without a local device (kept desired; programmed when it appears).
    pub skipped: usize,
    pub failed: Vec<(FibOp, String)>,
    /// Deletes that found nothing to delete (already gone, or the device went).
    pub absent: Vec<FibOp>,
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

/// An AF_BRIDGE FDB message on `ifindex`.
fn fdb(ifindex: u32, mac: Mac, flags: NeighbourFlags, dst: Option<IpAddr>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    m.header.flags = flags;
    // Entries learned externally do not age (NTF_EXT_LEARNED); REACHABLE is what FRR
    // and iproute2 use for them, PERMANENT for the static flood list.
    m.header.state = NeighbourState::Reachable;
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.0.to_vec()));
    if let Some(dst) = dst {
        m.attributes
            .push(NeighbourAttribute::Destination(neigh_addr(dst)));
    }
    m
}

/// The netlink requests for one op, in order: (message, header flags).
pub fn requests(op: &FibOp, dev: VniDevices) -> Vec<(RouteNetlinkMessage, u16)> {
    let new = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    let del = NLM_F_REQUEST | NLM_F_ACK;
    let own = NeighbourFlags::Own | NeighbourFlags::ExtLearned;
    let master = NeighbourFlags::Controller | NeighbourFlags::ExtLearned;
    match *op {
        FibOp::FloodAdd(e) => {
            // `bridge fdb append 00:00:00:00:00:00 dev vxlanN dst VTEP self extern_learn`:
            // APPEND adds one more destination to the all-zero entry (head-end
            // replication); the rtnetlink builder cannot set it, hence this message.
            let mut m = fdb(dev.vxlan_ifindex, Mac::ZERO, own, Some(e.vtep));
            m.header.state = NeighbourState::Permanent;
            vec![(
                RouteNetlinkMessage::NewNeighbour(m),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
            )]
        }
        FibOp::FloodDel(e) => {
            let m = fdb(
                dev.vxlan_ifindex,
                Mac::ZERO,
                NeighbourFlags::Own,
                Some(e.vtep),
            );
            vec![(RouteNetlinkMessage::DelNeighbour(m), del)]
        }
        FibOp::MacSet(r) => vec![
            (
                RouteNetlinkMessage::NewNeighbour(fdb(dev.vxlan_ifindex, r.mac, own, Some(r.vtep))),
                new,
            ),
            // The bridge's own entry: with learning off on the vxlan port the bridge
            // would never know the MAC, and neigh_suppress answers only for MACs it knows.
            (
                RouteNetlinkMessage::NewNeighbour(fdb(dev.vxlan_ifindex, r.mac, master, None)),
                new,
            ),
        ],
        FibOp::MacDel(r) => vec![
            (
                RouteNetlinkMessage::DelNeighbour(fdb(
                    dev.vxlan_ifindex,
                    r.mac,
                    NeighbourFlags::Own,
                    None,
                )),
                del,
            ),
            (
                RouteNetlinkMessage::DelNeighbour(fdb(
                    dev.vxlan_ifindex,
                    r.mac,
                    NeighbourFlags::Controller,
                    None,
                )),
                del,
            ),
        ],
        FibOp::NeighSet(n) | FibOp::NeighDel(n) => {
            let mut m = NeighbourMessage::default();
            m.header.family = match n.ip {
                IpAddr::V4(_) => AddressFamily::Inet,
                IpAddr::V6(_) => AddressFamily::Inet6,
            };
            m.header.ifindex = dev.bridge_ifindex;
            m.header.flags = NeighbourFlags::ExtLearned;
            m.header.state = NeighbourState::Noarp;
            m.attributes
                .push(NeighbourAttribute::Destination(neigh_addr(n.ip)));
            if matches!(op, FibOp::NeighSet(_)) {
                m.attributes
                    .push(NeighbourAttribute::LinkLayerAddress(n.mac.0.to_vec()));
                vec![(RouteNetlinkMessage::NewNeighbour(m), new)]
            } else {
                vec![(RouteNetlinkMessage::DelNeighbour(m), del)]
            }
        }
    }
}

/// errno values that mean the kernel is already as we want it.
pub fn benign(op: &FibOp, errno: i32) -> bool {
    const ENOENT: i32 = 2;
    const ESRCH: i32 = 3;
    const EEXIST: i32 = 17;
    // The device went away between planning and sending: its entries went with it,
    // and the VNI is programmed afresh if the device comes back.
    const ENODEV: i32 = 19;
    if errno == ENODEV {
        return true;
    }
    match op {
        FibOp::FloodAdd(_) => errno == EEXIST,
        FibOp::FloodDel(_) | FibOp::MacDel(_) | FibOp::NeighDel(_) => {
            errno == ENOENT || errno == ESRCH
        }
        _ => false,
    }
}

/// Applies `ops` through `writer` (batched, pipelined; see [`crate::writer`]);
/// `devices` maps a VNI to its local devices (ops of VNIs without one are skipped and
/// reported). An op fails if one of its requests fails for a reason other than the
/// kernel already being as asked ([`benign`]); it is reported once, with the first
/// error.
pub fn apply<T: Transport>(
    writer: &mut Writer<T>,
    ops: &[FibOp],
    devices: impl Fn(u32) -> Option<VniDevices>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    // The op of each request, by request index.
    let mut owner: Vec<usize> = Vec::with_capacity(ops.len() * 2);
    let reqs = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match devices(op.vni()) {
            Some(dev) => Some((i, dev)),
            None => {
                report.skipped += 1;
                None
            }
        })
        .flat_map(|(i, dev)| {
            ops.get(i)
                .map(|op| requests(op, dev))
                .unwrap_or_default()
                .into_iter()
                .map(move |(msg, flags)| (i, Request::new(msg, flags)))
        })
        .map(|(i, r)| {
            owner.push(i);
            r
        });
    let failures = writer.send_iter(reqs);
    let mut last_failed = None;
    let mut last_absent = None;
    for (req, errno) in failures {
        let Some((i, op)) = owner.get(req).and_then(|&i| ops.get(i).map(|op| (i, *op))) else {
            continue;
        };
        if benign(&op, errno) {
            let delete = matches!(
                op,
                FibOp::FloodDel(_) | FibOp::MacDel(_) | FibOp::NeighDel(_)
            );
            if delete && last_absent != Some(i) {
                last_absent = Some(i);
                report.absent.push(op);
            }
            continue;
        }
        if last_failed == Some(i) {
            continue;
        }
        last_failed = Some(i);
        let e = io::Error::from_raw_os_error(errno);
        tracing::warn!(?op, error = %e, "kernel refused a FIB operation");
        report.failed.push((op, e.to_string()));
    }
    report.done = ops.len() - report.skipped - report.failed.len();
    report
}
