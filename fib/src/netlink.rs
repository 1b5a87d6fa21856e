//! The only place vxbgp speaks netlink: `FibOp`s become RTM_NEWNEIGH/RTM_DELNEIGH
//! requests, sent pipelined (a window of requests in flight, never one awaited round
//! trip per route), with "already there" / "already gone" answers taken as success.

use std::io;
use std::net::IpAddr;

use futures_util::stream::{FuturesUnordered, StreamExt};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::model::{FibOp, Mac};

/// Requests in flight at once.
const WINDOW: usize = 256;

/// The devices of one VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniDevices {
    pub vxlan_ifindex: u32,
    pub bridge_ifindex: u32,
}

/// What happened to a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub done: usize,
    /// Ops for VNIs without a local device (kept desired; programmed when it appears).
    pub skipped: usize,
    pub failed: Vec<(FibOp, String)>,
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

/// The netlink requests for one op: (message, is a delete, header flags).
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
fn benign(op: &FibOp, errno: i32) -> bool {
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

async fn send(handle: rtnetlink::Handle, msg: RouteNetlinkMessage, flags: u16) -> Result<(), i32> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = flags;
    let mut resp = match handle.clone().request(req) {
        Ok(r) => r,
        Err(_) => return Err(-1),
    };
    while let Some(m) = resp.next().await {
        if let NetlinkPayload::Error(e) = m.payload {
            return match e.code {
                None => Ok(()),
                Some(code) => Err(-code.get()),
            };
        }
    }
    Ok(())
}

/// Applies `ops` with up to [`WINDOW`] requests in flight; `devices` maps a VNI to its
/// local devices (ops of VNIs without one are skipped and reported).
pub async fn apply(
    handle: &rtnetlink::Handle,
    ops: &[FibOp],
    devices: impl Fn(u32) -> Option<VniDevices>,
) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut inflight = FuturesUnordered::new();
    for op in ops {
        let Some(dev) = devices(op.vni()) else {
            report.skipped += 1;
            continue;
        };
        for (msg, flags) in requests(op, dev) {
            let h = handle.clone();
            let op = *op;
            inflight.push(async move { (op, send(h, msg, flags).await) });
            if inflight.len() >= WINDOW {
                if let Some(r) = inflight.next().await {
                    record(&mut report, r);
                }
            }
        }
    }
    while let Some(r) = inflight.next().await {
        record(&mut report, r);
    }
    report
}

fn record(report: &mut ApplyReport, (op, r): (FibOp, Result<(), i32>)) {
    match r {
        Ok(()) => report.done += 1,
        Err(errno) if benign(&op, errno) => report.done += 1,
        Err(errno) => {
            let e = io::Error::from_raw_os_error(errno);
            tracing::warn!(?op, error = %e, "kernel refused a FIB operation");
            report.failed.push((op, e.to_string()));
        }
    }
}
