//! The OSPF packet socket: a raw IPv4 socket for protocol 89 bound to one interface.
//!
//! Bound with SO_BINDTODEVICE, joined to AllSPFRouters (224.0.0.5) and, on demand,
//! AllDRouters (224.0.0.6); multicast TTL 1 (RFC 2328 A.1), multicast loop off, TOS 0xC0
//! (internetwork control), IP_PKTINFO for the ingress interface and destination.
//! Receiving returns the source, destination, ingress ifindex and the bytes after the IP
//! header; the OSPF codec (crate `ospf`) parses them. This module does not look inside.

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

/// IP protocol number of OSPF.
pub const IPPROTO_OSPF: i32 = 89;
/// AllSPFRouters.
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
/// AllDRouters.
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);
/// TOS of OSPF packets: precedence internetwork control.
pub const OSPF_TOS: u8 = 0xC0;
/// Largest IPv4 packet.
const MAX_PACKET: usize = 65535;

/// Errors of the OSPF socket.
#[derive(Debug, thiserror::Error)]
pub enum OspfSocketError {
    /// The interface does not exist.
    #[error("interface {name}: {source}")]
    NoInterface {
        /// Interface name.
        name: String,
        /// The lookup error.
        source: nix::Error,
    },
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A received packet had no valid IPv4 header (counted and dropped by the caller).
    #[error("malformed IPv4 packet: {0}")]
    Malformed(&'static str),
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> OspfSocketError {
    move |source| OspfSocketError::Io { op, source }
}

/// A packet received on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination (the header's, e.g. 224.0.0.5).
    pub dst: Ipv4Addr,
    /// Ingress interface index (IP_PKTINFO).
    pub ifindex: u32,
    /// IP TOS byte.
    pub tos: u8,
    /// IP TTL.
    pub ttl: u8,
    /// The OSPF packet: the bytes after the IP header.
    pub payload: Vec<u8>,
}

/// A raw OSPF socket on one interface.
pub struct OspfSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
    name: String,
    all_d_routers: bool,
}

impl OspfSocket {
    /// Opens the socket on interface `name` and joins AllSPFRouters.
    pub fn open(name: &str) -> Result<OspfSocket, OspfSocketError> {
        let ifindex =
            nix::net::if_::if_nametoindex(name).map_err(|source| OspfSocketError::NoInterface {
                name: name.to_string(),
                source,
            })?;
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_OSPF)))
            .map_err(io("socket(AF_INET, SOCK_RAW, 89)"))?;
        sock.bind_device(Some(name.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
        sock.set_multicast_ttl_v4(1)
            .map_err(io("IP_MULTICAST_TTL"))?;
        sock.set_multicast_loop_v4(false)
            .map_err(io("IP_MULTICAST_LOOP"))?;
        sock.set_ttl(1).map_err(io("IP_TTL"))?;
        sock.set_tos(u32::from(OSPF_TOS)).map_err(io("IP_TOS"))?;
        setsockopt(&sock, sockopt::Ipv4PacketInfo, &true).map_err(|e| OspfSocketError::Io {
            op: "IP_PKTINFO",
            source: e.into(),
        })?;
        sock.join_multicast_v4_n(&ALL_SPF_ROUTERS, &InterfaceIndexOrAddress::Index(ifindex))
            .map_err(io("join 224.0.0.5"))?;
        sock.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
        // `AsyncFd::new` is deprecated for types that do not own their descriptor; a
        // `socket2::Socket` does, and the replacement `register` is `unsafe`, which this
        // workspace denies.
        #[allow(deprecated)]
        let fd = AsyncFd::new(sock).map_err(io("register with tokio"))?;
        Ok(OspfSocket {
            fd,
            ifindex,
            name: name.to_string(),
            all_d_routers: false,
        })
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Joins or leaves AllDRouters (224.0.0.6): joined while the router is DR or Backup.
    pub fn set_all_d_routers(&mut self, member: bool) -> Result<(), OspfSocketError> {
        if member == self.all_d_routers {
            return Ok(());
        }
        let iface = InterfaceIndexOrAddress::Index(self.ifindex);
        if member {
            self.fd
                .get_ref()
                .join_multicast_v4_n(&ALL_D_ROUTERS, &iface)
                .map_err(io("join 224.0.0.6"))?;
        } else {
            self.fd
                .get_ref()
                .leave_multicast_v4_n(&ALL_D_ROUTERS, &iface)
                .map_err(io("leave 224.0.0.6"))?;
        }
        self.all_d_routers = member;
        Ok(())
    }

    /// Receives the next packet.
    pub async fn recv(&self) -> Result<Received, OspfSocketError> {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let mut guard = self.fd.readable().await.map_err(io("poll"))?;
            let res = guard.try_io(|inner| {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
                let msg = recvmsg::<SockaddrIn>(
                    inner.get_ref().as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
                let mut ifindex = 0u32;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                            ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(0);
                        }
                    }
                }
                Ok((msg.bytes, ifindex))
            });
            match res {
                Ok(Ok((n, ifindex))) => {
                    let data = buf.get(..n).ok_or(OspfSocketError::Malformed("length"))?;
                    return parse_ipv4(data, ifindex);
                }
                Ok(Err(e)) => {
                    return Err(OspfSocketError::Io {
                        op: "recvmsg",
                        source: e,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends an OSPF packet to `dst` (unicast or 224.0.0.5/6) out of interface `ifindex`.
    pub async fn send(
        &self,
        dst: Ipv4Addr,
        ifindex: u32,
        packet: &[u8],
    ) -> Result<(), OspfSocketError> {
        let info = libc::in_pktinfo {
            ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
            ipi_spec_dst: libc::in_addr { s_addr: 0 },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let addr = SockaddrIn::from(SocketAddrV4::new(dst, 0));
        loop {
            let mut guard = self.fd.writable().await.map_err(io("poll"))?;
            let res = guard.try_io(|inner| {
                sendmsg(
                    inner.get_ref().as_raw_fd(),
                    &[IoSlice::new(packet)],
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(std::io::Error::from)
            });
            match res {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => {
                    return Err(OspfSocketError::Io {
                        op: "sendmsg",
                        source: e,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// Splits a received IPv4 packet into header fields and payload.
fn parse_ipv4(data: &[u8], ifindex: u32) -> Result<Received, OspfSocketError> {
    let first = *data.first().ok_or(OspfSocketError::Malformed("empty"))?;
    if first >> 4 != 4 {
        return Err(OspfSocketError::Malformed("not IPv4"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || data.len() < ihl {
        return Err(OspfSocketError::Malformed("bad header length"));
    }
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let total = usize::from(u16::from_be_bytes([byte(2), byte(3)]));
    let end = if total >= ihl {
        total.min(data.len())
    } else {
        data.len()
    };
    let addr = |i: usize| Ipv4Addr::new(byte(i), byte(i + 1), byte(i + 2), byte(i + 3));
    Ok(Received {
        src: addr(12),
        dst: addr(16),
        ifindex,
        tos: byte(1),
        ttl: byte(8),
        payload: data.get(ihl..end).unwrap_or_default().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testns::{require_root, Netns};
    use std::time::Duration;

    #[test]
    fn parse_header() {
        let pkt = [
            0x45, 0xc0, 0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x01, 0x59, 0x00, 0x00, 10, 0, 0, 1,
            224, 0, 0, 5, 2, 1, 0, 4, 0xff, 0xff,
        ];
        let r = parse_ipv4(&pkt, 3).expect("parse");
        assert_eq!(r.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.dst, ALL_SPF_ROUTERS);
        assert_eq!((r.tos, r.ttl, r.ifindex), (0xc0, 1, 3));
        // Total length 24 cuts the trailing bytes.
        assert_eq!(r.payload, [2, 1, 0, 4]);
        assert!(matches!(
            parse_ipv4(&[], 1),
            Err(OspfSocketError::Malformed(_))
        ));
        assert!(matches!(
            parse_ipv4(&[0x65; 20], 1),
            Err(OspfSocketError::Malformed(_))
        ));
        assert!(matches!(
            parse_ipv4(&[0x46; 20], 1),
            Err(OspfSocketError::Malformed(_))
        ));
        assert!(matches!(
            parse_ipv4(&[0x44; 20], 1),
            Err(OspfSocketError::Malformed(_))
        ));
    }

    #[test]
    fn multicast_and_unicast_across_a_veth() {
        require_root();
        let a = Netns::new("oa");
        let b = Netns::new("ob");
        a.ip(&[
            "link", "add", "oa0", "type", "veth", "peer", "name", "ob0", "netns", &b.name,
        ]);
        a.ip(&["addr", "add", "10.98.0.1/24", "dev", "oa0"]);
        b.ip(&["addr", "add", "10.98.0.2/24", "dev", "ob0"]);
        a.ip(&["link", "set", "oa0", "up"]);
        b.ip(&["link", "set", "ob0", "up"]);
        a.wait_up("oa0");
        b.wait_up("ob0");

        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let receiver = b.run(move || {
            Box::pin(async move {
                let mut s = OspfSocket::open("ob0").expect("open ob0");
                s.set_all_d_routers(true).expect("join 224.0.0.6");
                ready_tx.send(s.ifindex()).expect("ready");
                let mut got = Vec::new();
                while got.len() < 3 {
                    match tokio::time::timeout(Duration::from_secs(20), s.recv()).await {
                        Ok(Ok(r)) => got.push(r),
                        Ok(Err(e)) => panic!("recv: {e}"),
                        Err(_) => break,
                    }
                }
                got
            })
        });
        let b_ifindex = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("receiver ready");
        let sender = a.run(move || {
            Box::pin(async move {
                let s = OspfSocket::open("oa0").expect("open oa0");
                let ifx = s.ifindex();
                s.send(ALL_SPF_ROUTERS, ifx, &[2, 1, 0, 44, 0xaa])
                    .await
                    .expect("send 224.0.0.5");
                s.send(ALL_D_ROUTERS, ifx, &[2, 2, 0, 32, 0xbb])
                    .await
                    .expect("send 224.0.0.6");
                s.send(Ipv4Addr::new(10, 98, 0, 2), ifx, &[2, 3, 0, 24, 0xcc])
                    .await
                    .expect("send unicast");
            })
        });
        sender.join().expect("sender");
        let got = receiver.join().expect("receiver");
        assert_eq!(got.len(), 3, "{got:?}");
        let src = Ipv4Addr::new(10, 98, 0, 1);
        let dsts: Vec<Ipv4Addr> = got.iter().map(|r| r.dst).collect();
        assert_eq!(
            dsts,
            [ALL_SPF_ROUTERS, ALL_D_ROUTERS, Ipv4Addr::new(10, 98, 0, 2)]
        );
        for r in &got {
            assert_eq!(r.src, src);
            assert_eq!(r.ifindex, b_ifindex);
            assert_eq!(r.tos, OSPF_TOS);
            assert_eq!(r.ttl, 1);
        }
        assert_eq!(got[0].payload, [2, 1, 0, 44, 0xaa]);
        assert_eq!(got[1].payload, [2, 2, 0, 32, 0xbb]);
        assert_eq!(got[2].payload, [2, 3, 0, 24, 0xcc]);
    }
}
