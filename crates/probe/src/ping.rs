//! `PING_CHECK`: an ICMP (or ICMPv6) echo gets its reply.
//!
//! The probe uses an unprivileged ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`, allowed for the groups in `net.ipv4.ping_group_range`, which also
//! governs ICMPv6), where the kernel picks the identifier and hands back only the
//! replies to it; when that is refused it falls back to a raw socket (root or
//! CAP_NET_RAW), where replies are matched by identifier here. Either way a reply must
//! carry this probe's sequence number and payload.
//!
//! Requests are built and replies decoded ([`parse_reply`]) with [`wire`]'s ICMPv4 and
//! ICMPv6 echo codecs.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use health::{FailureKind, PingCheck, ProbeOutcome};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use wire::{Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet};

use crate::net::source;

/// What an ICMP socket hands to `recv`, which depends on the family and socket kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// An ICMPv4 datagram socket: the ICMP message alone.
    Icmpv4,
    /// A raw IPv4 socket: the IPv4 header, then the ICMP message.
    Ipv4,
    /// An ICMPv6 socket, datagram or raw: the ICMPv6 message alone (RFC 3542 §3).
    Icmpv6,
}

/// An echo reply decoded from what an ICMP socket returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// The identifier.
    pub ident: u16,
    /// The sequence number.
    pub seq_no: u16,
    /// The echo data.
    pub data: &'a [u8],
}

/// Decodes one message received on an ICMP socket as an echo reply. ICMPv4 checksums
/// are verified (RFC 792); ICMPv6 ones cover a pseudo-header and were checked by the
/// kernel. Anything else (an echo request seen on loopback, an error, an IPv4 packet
/// that is not ICMP, a malformed buffer) is an error.
pub fn parse_reply(msg: &[u8], received: Received) -> Result<EchoReply<'_>, wire::Error> {
    let icmp = match received {
        Received::Icmpv4 | Received::Icmpv6 => msg,
        Received::Ipv4 => {
            let ip = Ipv4Packet::new_checked(msg)?;
            if ip.version() != 4 {
                return Err(wire::Error::Malformed("ipv4: version"));
            }
            if ip.protocol() != IpProtocol::Icmp {
                return Err(wire::Error::Unsupported("ipv4: not ICMP"));
            }
            ip.into_payload()
        }
    };
    let not_reply = wire::Error::Unsupported("icmp: not an echo reply");
    let (ident, seq_no, data) = if received == Received::Icmpv6 {
        match Icmpv6Repr::parse(&Icmpv6Packet::new_checked(icmp)?)? {
            Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (ident, seq_no, data),
            Icmpv6Repr::EchoRequest { .. } => return Err(not_reply),
        }
    } else {
        match Icmpv4Repr::parse(&Icmpv4Packet::new_checked(icmp)?)? {
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (ident, seq_no, data),
            _ => return Err(not_reply),
        }
    };
    Ok(EchoReply {
        ident,
        seq_no,
        data,
    })
}

/// Writes an echo request (ICMPv6 when `v6`, with the checksum left to the kernel;
/// ICMPv4 with its checksum otherwise) into `buf`; returns its length.
fn emit_request(
    v6: bool,
    ident: u16,
    seq_no: u16,
    data: &[u8],
    buf: &mut [u8],
) -> Result<usize, wire::Error> {
    if v6 {
        let r = Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut *buf))?;
    } else {
        let r = Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        };
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut *buf))?;
    }
    // Both echo messages are an 8-byte header and the data.
    Ok(Icmpv4Packet::<&[u8]>::HEADER_LEN + data.len())
}

/// Which kind of ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingSocket {
    /// Try a datagram (ping) socket, then a raw one.
    Auto,
    /// Only an unprivileged datagram socket.
    Datagram,
    /// Only a raw socket.
    Raw,
}

/// Sequence numbers, so that concurrent probes on raw sockets do not take each
/// other's replies.
static SEQ: AtomicU16 = AtomicU16::new(1);

/// Runs one `PING_CHECK` attempt against `server` (or `connect_ip`), from `bindto` when
/// set: success on a matching echo reply within `timeout`.
pub async fn ping_check(check: &PingCheck, server: IpAddr, timeout: Duration) -> ProbeOutcome {
    ping_with(check, server, timeout, PingSocket::Auto).await
}

/// [`ping_check`] with a chosen socket kind.
pub async fn ping_with(
    check: &PingCheck,
    server: IpAddr,
    timeout: Duration,
    kind: PingSocket,
) -> ProbeOutcome {
    let dest = SocketAddr::new(check.conn.connect_ip.unwrap_or(server), 0);
    let deadline = Instant::now() + timeout;
    let (sock, raw) = match open(&check.conn, dest, kind) {
        Ok(s) => s,
        Err(_) => return ProbeOutcome::Failure(FailureKind::Connect),
    };
    let v6 = dest.is_ipv6();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    // A raw socket sees every echo reply of the host: identify ours by process and seq.
    let ident = (std::process::id() & 0xffff) as u16;
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(b"fulcrum ");
    payload[8..10].copy_from_slice(&seq.to_be_bytes());
    let mut buf = [0u8; 8 + 16];
    let Ok(len) = emit_request(v6, ident, seq, &payload, &mut buf) else {
        // Unreachable: `buf` holds the 8-byte header and the payload.
        return ProbeOutcome::Failure(FailureKind::Connect);
    };
    let request = buf.get(..len).unwrap_or_default();
    let sent = tokio::time::timeout_at(deadline, sock.send(request)).await;
    match sent {
        Err(_) => return ProbeOutcome::Failure(FailureKind::Timeout),
        Ok(Err(_)) => return ProbeOutcome::Failure(FailureKind::Connect),
        Ok(Ok(_)) => {}
    }
    let received = match (v6, raw) {
        (true, _) => Received::Icmpv6,
        (false, true) => Received::Ipv4,
        (false, false) => Received::Icmpv4,
    };
    let mut rx = vec![0u8; 1500];
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv(&mut rx)).await;
        let n = match got {
            Err(_) => return ProbeOutcome::Failure(FailureKind::Timeout),
            Ok(Err(_)) => return ProbeOutcome::Failure(FailureKind::Connect),
            Ok(Ok(n)) => n,
        };
        // Not an echo reply, or someone else's: keep waiting until the deadline.
        let Ok(r) = parse_reply(rx.get(..n).unwrap_or_default(), received) else {
            continue;
        };
        if r.seq_no == seq && (!raw || r.ident == ident) && r.data == payload {
            return ProbeOutcome::Success;
        }
    }
}

fn open(
    conn: &health::ConnectOptions,
    dest: SocketAddr,
    kind: PingSocket,
) -> io::Result<(UdpSocket, bool)> {
    let proto = if dest.is_ipv6() {
        Protocol::ICMPV6
    } else {
        Protocol::ICMPV4
    };
    let domain = Domain::for_address(dest);
    let (sock, raw) = match kind {
        PingSocket::Datagram => (Socket::new(domain, Type::DGRAM, Some(proto))?, false),
        PingSocket::Raw => (Socket::new(domain, Type::RAW, Some(proto))?, true),
        PingSocket::Auto => match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => (s, false),
            Err(_) => (Socket::new(domain, Type::RAW, Some(proto))?, true),
        },
    };
    sock.set_nonblocking(true)?;
    sock.set_cloexec(true)?;
    if let Some(mark) = conn.fwmark {
        sock.set_mark(mark)?;
    }
    if let Some(src) = source(conn, dest) {
        sock.bind(&SockAddr::from(SocketAddr::new(src.ip(), 0)))?;
    }
    sock.connect(&SockAddr::from(dest))?;
    // tokio's UDP socket only issues send(2)/recv(2) on the descriptor, which is what
    // an ICMP socket (datagram or raw) takes too.
    Ok((UdpSocket::from_std(sock.into())?, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ping -c1 -s 8 -p 61626364 127.0.0.1` on a namespace's loopback, captured with
    // tcpdump: the IPv4 packets of the request and the reply (id 0x0c7e, seq 1).
    const V4_REQUEST: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x5f, 0x88, 0x40, 0x00, 0x40, 0x01, 0xdd, 0x4e, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, 0x08, 0x00, 0x26, 0xba, 0x0c, 0x7e, 0x00, 0x01, 0x61, 0x62,
        0x63, 0x64, 0x00, 0x00, 0x00, 0x00,
    ];
    const V4_REPLY: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x5f, 0x89, 0x00, 0x00, 0x40, 0x01, 0x1d, 0x4e, 0x7f, 0x00, 0x00,
        0x01, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x00, 0x2e, 0xba, 0x0c, 0x7e, 0x00, 0x01, 0x61, 0x62,
        0x63, 0x64, 0x00, 0x00, 0x00, 0x00,
    ];
    // `ping -6 -c1 -s 8 -p 61626364 fd00:77::1` to itself: the ICMPv6 reply.
    const V6_REPLY: [u8; 16] = [
        0x81, 0x00, 0xb7, 0x6a, 0x07, 0x91, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x00, 0x00, 0x00,
        0x00,
    ];
    const DATA: &[u8] = b"abcd\0\0\0\0";

    #[test]
    fn request_as_sent() {
        let mut buf = [0u8; 24];
        let n = emit_request(false, 0x1234, 1, b"abcd", &mut buf).unwrap();
        assert_eq!(
            buf[..n],
            [0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd']
        );
        // The captured request, rebuilt byte for byte.
        let n = emit_request(false, 0x0c7e, 1, DATA, &mut buf).unwrap();
        assert_eq!(buf[..n], V4_REQUEST[20..]);
        // ICMPv6: the kernel fills the checksum in.
        let n = emit_request(true, 0x0791, 1, DATA, &mut buf).unwrap();
        assert_eq!(
            buf[..n],
            [0x80, 0, 0, 0, 0x07, 0x91, 0, 1, b'a', b'b', b'c', b'd', 0, 0, 0, 0]
        );
        assert_eq!(
            emit_request(true, 1, 1, &[0; 17], &mut buf),
            Err(wire::Error::BufferTooSmall)
        );
    }

    #[test]
    fn replies_from_each_socket_kind() {
        let v4 = EchoReply {
            ident: 0x0c7e,
            seq_no: 1,
            data: DATA,
        };
        assert_eq!(parse_reply(&V4_REPLY, Received::Ipv4), Ok(v4));
        assert_eq!(parse_reply(&V4_REPLY[20..], Received::Icmpv4), Ok(v4));
        assert_eq!(
            parse_reply(&V6_REPLY, Received::Icmpv6),
            Ok(EchoReply {
                ident: 0x0791,
                seq_no: 1,
                data: DATA,
            })
        );
    }

    #[test]
    fn rejects_what_is_not_a_reply() {
        // A raw socket on loopback also sees the request.
        assert!(parse_reply(&V4_REQUEST, Received::Ipv4).is_err());
        assert!(parse_reply(&V4_REQUEST[20..], Received::Icmpv4).is_err());
        let mut v6_request = V6_REPLY;
        v6_request[0] = 128;
        assert!(parse_reply(&v6_request, Received::Icmpv6).is_err());
        // A corrupted ICMPv4 reply fails its checksum.
        let mut bad = V4_REPLY;
        bad[30] ^= 1;
        assert_eq!(
            parse_reply(&bad, Received::Ipv4),
            Err(wire::Error::Checksum)
        );
        // Not IPv4, not ICMP, too short.
        let mut v5 = V4_REPLY;
        v5[0] = 0x55;
        assert!(parse_reply(&v5, Received::Ipv4).is_err());
        let mut udp = V4_REPLY;
        udp[9] = 17;
        assert!(parse_reply(&udp, Received::Ipv4).is_err());
        assert_eq!(
            parse_reply(&V4_REPLY[..19], Received::Ipv4),
            Err(wire::Error::Truncated)
        );
        assert_eq!(
            parse_reply(&V6_REPLY[..7], Received::Icmpv6),
            Err(wire::Error::Truncated)
        );
        // Destination unreachable, port unreachable.
        assert!(parse_reply(&[3, 3, 0xfc, 0xfc, 0, 0, 0, 0], Received::Icmpv4).is_err());
        assert!(parse_reply(&[], Received::Icmpv4).is_err());
    }
}
