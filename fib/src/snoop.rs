//! ARP and IPv6 neighbour-discovery snooping: MAC/IP pairs of local VMs when the
//! bridge has no address (so the kernel keeps no neighbour entries for them), which
//! is what makes ARP/ND suppression work in the seed's lab.
//!
//! One AF_PACKET socket with a classic BPF filter lets only ARP and ICMPv6 neighbour
//! solicitations/advertisements through; the parsers below read the frames without
//! ever panicking, whatever the bytes. Which VNI a pair belongs to is known from the
//! MAC: only MACs learned on a local bridge port count.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::model::Mac;

const ETH_HDR: usize = 14;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IPV6_HDR: usize = 40;
const ICMPV6: u8 = 58;
const ND_NS: u8 = 135;
const ND_NA: u8 = 136;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn mac_at(b: &[u8], at: usize) -> Option<Mac> {
    Some(Mac(b.get(at..at + 6)?.try_into().ok()?))
}

/// A MAC/IP binding seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub mac: Mac,
    pub ip: IpAddr,
}

/// Reads an Ethernet frame: ARP request/reply (RFC 826) → sender's binding; IPv6
/// neighbour solicitation (RFC 4861 §4.3) → source's binding; neighbour
/// advertisement (§4.4) → target's binding. Anything else, or malformed: `None`.
pub fn binding(frame: &[u8]) -> Option<Binding> {
    let eth_src = mac_at(frame, 6)?;
    let b = match be16(frame, 12)? {
        ETHERTYPE_ARP => arp(frame.get(ETH_HDR..)?)?,
        ETHERTYPE_IPV6 => nd(frame.get(ETH_HDR..)?, eth_src)?,
        _ => return None,
    };
    usable(b).then_some(b)
}

fn usable(b: Binding) -> bool {
    let ip_ok = match b.ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    };
    ip_ok && !b.mac.is_group() && b.mac != Mac::ZERO
}

fn arp(p: &[u8]) -> Option<Binding> {
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, oper 1 or 2.
    if be16(p, 0)? != 1 || be16(p, 2)? != 0x0800 || *p.get(4)? != 6 || *p.get(5)? != 4 {
        return None;
    }
    if !matches!(be16(p, 6)?, 1 | 2) {
        return None;
    }
    let sha = mac_at(p, 8)?;
    let spa: [u8; 4] = p.get(14..18)?.try_into().ok()?;
    // An ARP probe (sender 0.0.0.0, RFC 5227) says nothing yet.
    Some(Binding {
        mac: sha,
        ip: IpAddr::V4(Ipv4Addr::from(spa)),
    })
}

fn nd(p: &[u8], eth_src: Mac) -> Option<Binding> {
    if *p.get(6)? != ICMPV6 {
        return None; // extension headers are not expected before ND
    }
    let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
    let icmp = p.get(IPV6_HDR..)?;
    let kind = *icmp.first()?;
    let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
    // Options after the 24-byte NS/NA body: source (1) / target (2) link-layer address.
    let lladdr = |want: u8| -> Option<Mac> {
        let mut opts = icmp.get(24..)?;
        while opts.len() >= 8 {
            let (t, len) = (*opts.first()?, usize::from(*opts.get(1)?) * 8);
            if len == 0 || len > opts.len() {
                return None;
            }
            if t == want && len >= 8 {
                return mac_at(opts, 2);
            }
            opts = opts.get(len..)?;
        }
        None
    };
    match kind {
        ND_NS => {
            let mac = lladdr(1).unwrap_or(eth_src);
            Some(Binding {
                mac,
                ip: IpAddr::V6(Ipv6Addr::from(src)),
            })
        }
        ND_NA => {
            let mac = lladdr(2).unwrap_or(eth_src);
            Some(Binding {
                mac,
                ip: IpAddr::V6(Ipv6Addr::from(target)),
            })
        }
        _ => None,
    }
}

/// Classic BPF: accept ARP, and IPv6 whose next header is ICMPv6 with type 135/136.
fn filter() -> Vec<SockFilter> {
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    vec![
        SockFilter::new(LDH_ABS, 0, 0, 12), // 0: ethertype
        SockFilter::new(JEQ_K, 6, 0, u32::from(ETHERTYPE_ARP)), // 1: ARP → accept
        SockFilter::new(JEQ_K, 0, 6, u32::from(ETHERTYPE_IPV6)), // 2: not IPv6 → drop
        SockFilter::new(LDB_ABS, 0, 0, 20), // 3: next header
        SockFilter::new(JEQ_K, 0, 4, u32::from(ICMPV6)), // 4: not ICMPv6 → drop
        SockFilter::new(LDB_ABS, 0, 0, 54), // 5: ICMPv6 type
        SockFilter::new(JEQ_K, 1, 0, u32::from(ND_NS)), // 6: NS → accept
        SockFilter::new(JEQ_K, 0, 1, u32::from(ND_NA)), // 7: not NA → drop
        SockFilter::new(RET_K, 0, 0, 65535), // 8: accept
        SockFilter::new(RET_K, 0, 0, 0),    // 9: drop
    ]
}

/// The snooping socket (all interfaces of this network namespace).
pub struct Snooper {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
}

impl Snooper {
    pub fn open() -> io::Result<Snooper> {
        // ETH_P_ALL in network byte order; the BPF filter keeps this cheap.
        let proto = Protocol::from(i32::from(0x0003u16.to_be()));
        let s = Socket::new(Domain::PACKET, Type::RAW, Some(proto))?;
        s.attach_filter(&filter())?;
        s.set_nonblocking(true)?;
        // `AsyncFd::new` is deprecated for types that might close their descriptor
        // while registered (tokio #8587); a `socket2::Socket` owns its descriptor
        // for its whole life and the AsyncFd owns the Socket, so that cannot happen
        // (and the alternative, `register`, is `unsafe`, which vxbgp forbids).
        #[allow(deprecated)]
        let fd = AsyncFd::new(s)?;
        Ok(Snooper {
            fd,
            buf: vec![0; 2048],
        })
    }

    /// The next binding seen.
    pub async fn next(&mut self) -> io::Result<Binding> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|s| (&mut s.get_ref()).read(&mut self.buf)) {
                Ok(Ok(n)) => {
                    if let Some(b) = self.buf.get(..n).and_then(binding) {
                        return Ok(b);
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const VM: [u8; 6] = [2, 0, 0, 0, 0, 7];

    fn arp_frame(oper: u16, spa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend_from_slice(&oper.to_be_bytes());
        a.extend_from_slice(&VM);
        a.extend_from_slice(&spa);
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&[198, 18, 0, 9]);
        eth(VM, ETHERTYPE_ARP, &a)
    }

    fn nd_frame(kind: u8, src: Ipv6Addr, target: Ipv6Addr, opt: Option<(u8, [u8; 6])>) -> Vec<u8> {
        let mut icmp = vec![kind, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if let Some((t, mac)) = opt {
            icmp.extend_from_slice(&[t, 1]);
            icmp.extend_from_slice(&mac);
        }
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[ICMPV6, 255]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 9).octets());
        ip.extend_from_slice(&icmp);
        eth(VM, ETHERTYPE_IPV6, &ip)
    }

    #[test]
    fn arp_request_and_reply_give_the_sender() {
        for oper in [1, 2] {
            let b = binding(&arp_frame(oper, [198, 18, 0, 7])).unwrap();
            assert_eq!(
                b,
                Binding {
                    mac: Mac(VM),
                    ip: "198.18.0.7".parse().unwrap()
                }
            );
        }
    }

    #[test]
    fn rfc5227_arp_probe_teaches_nothing() {
        assert_eq!(binding(&arp_frame(1, [0, 0, 0, 0])), None);
        assert_eq!(binding(&arp_frame(3, [198, 18, 0, 7])), None, "RARP opcode");
    }

    #[test]
    fn rfc4861_ns_gives_source_and_na_gives_target() {
        let me: Ipv6Addr = "fd00:18::7".parse().unwrap();
        let other: Ipv6Addr = "fd00:18::9".parse().unwrap();
        let b = binding(&nd_frame(ND_NS, me, other, Some((1, VM)))).unwrap();
        assert_eq!(
            b,
            Binding {
                mac: Mac(VM),
                ip: IpAddr::V6(me)
            }
        );
        let b = binding(&nd_frame(ND_NA, me, me, Some((2, VM)))).unwrap();
        assert_eq!(b.ip, IpAddr::V6(me));
        // DAD: NS from :: says nothing.
        assert_eq!(
            binding(&nd_frame(ND_NS, Ipv6Addr::UNSPECIFIED, me, None)),
            None
        );
        // Without the option the Ethernet source counts.
        assert_eq!(
            binding(&nd_frame(ND_NA, me, me, None)).unwrap().mac,
            Mac(VM)
        );
    }

    #[test]
    fn truncated_or_garbage_frames_never_panic() {
        let full = nd_frame(
            ND_NS,
            "fd00::7".parse().unwrap(),
            "fd00::9".parse().unwrap(),
            Some((1, VM)),
        );
        for n in 0..full.len() {
            let _ = binding(&full[..n]);
        }
        let arp = arp_frame(1, [198, 18, 0, 7]);
        for n in 0..arp.len() {
            let _ = binding(&arp[..n]);
        }
        // A zero-length ND option must not loop forever.
        let mut bad = full.clone();
        let opt_at = bad.len() - 8;
        bad[opt_at + 1] = 0;
        let _ = binding(&bad);
        let mut x: u64 = 7;
        for _ in 0..2000 {
            let len = (x % 120) as usize;
            let frame: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = binding(&frame);
        }
    }
}
