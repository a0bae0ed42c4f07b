//! `PING_CHECK`: an ICMP (or ICMPv6) echo gets its reply.
//!
//! The probe uses an unprivileged ICMP datagram socket (`socket(AF_INET, SOCK_DGRAM,
//! IPPROTO_ICMP)`, allowed for the groups in `net.ipv4.ping_group_range`, which also
//! governs ICMPv6), where the kernel picks the identifier and hands back only the
//! replies to it; when that is refused it falls back to a raw socket (root or
//! CAP_NET_RAW), where replies are matched by identifier here. Either way a reply must
//! carry this probe's sequence number and payload.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use health::{FailureKind, PingCheck, ProbeOutcome};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::net::source;

/// Errors decoding an ICMP echo message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IcmpError {
    /// Shorter than an echo header.
    #[error("truncated ICMP message")]
    Truncated,
    /// Not an echo request or reply.
    #[error("not an echo message")]
    NotEcho,
}

/// Field offsets of an ICMP / ICMPv6 echo message (RFC 792, RFC 4443 §4).
mod field {
    use std::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ: Range<usize> = 6..8;
    pub const DATA: RangeFrom<usize> = 8..;
}

/// ICMPv4 echo request type (RFC 792).
pub const V4_REQUEST: u8 = 8;
/// ICMPv4 echo reply type (RFC 792).
pub const V4_REPLY: u8 = 0;
/// ICMPv6 echo request type (RFC 4443 §4.1).
pub const V6_REQUEST: u8 = 128;
/// ICMPv6 echo reply type (RFC 4443 §4.2).
pub const V6_REPLY: u8 = 129;

/// A view of an ICMP echo message.
#[derive(Debug, Clone)]
pub struct EchoPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EchoPacket<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Self {
        EchoPacket { buffer }
    }

    /// Wraps a buffer at least as long as an echo header.
    pub fn new_checked(buffer: T) -> Result<Self, IcmpError> {
        if buffer.as_ref().len() < field::DATA.start {
            return Err(IcmpError::Truncated);
        }
        Ok(EchoPacket { buffer })
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        match self.buffer.as_ref().get(r) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref().get(field::TYPE).copied().unwrap_or(0)
    }

    /// The code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref().get(field::CODE).copied().unwrap_or(0)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The identifier.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// The sequence number.
    pub fn seq(&self) -> u16 {
        self.u16_at(field::SEQ)
    }

    /// The data after the header.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA).unwrap_or_default()
    }

    /// Whether the ICMPv4 checksum over the whole message is right.
    pub fn verify_checksum_v4(&self) -> bool {
        internet_checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EchoPacket<T> {
    fn set_u16_at(&mut self, r: std::ops::Range<usize>, v: u16) {
        if let Some(s) = self.buffer.as_mut().get_mut(r) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::TYPE) {
            *b = v;
        }
    }

    /// Sets the code.
    pub fn set_code(&mut self, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::CODE) {
            *b = v;
        }
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16_at(field::CHECKSUM, v);
    }

    /// Sets the identifier.
    pub fn set_ident(&mut self, v: u16) {
        self.set_u16_at(field::IDENT, v);
    }

    /// Sets the sequence number.
    pub fn set_seq(&mut self, v: u16) {
        self.set_u16_at(field::SEQ, v);
    }

    /// The data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::DATA)
            .unwrap_or_default()
    }

    /// Computes and stores the ICMPv4 checksum (ICMPv6's covers a pseudo-header; the
    /// kernel fills it in for ICMPv6 sockets).
    pub fn fill_checksum_v4(&mut self) {
        self.set_checksum(0);
        let c = internet_checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A high-level echo message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    /// The message type (one of the `V4_*` / `V6_*` constants).
    pub msg_type: u8,
    /// The identifier.
    pub ident: u16,
    /// The sequence number.
    pub seq: u16,
    /// The data.
    pub data: &'a [u8],
}

impl<'a> EchoRepr<'a> {
    /// Parses an echo request or reply (either family; the checksum is not checked,
    /// the kernel has done that for datagram sockets).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &'a EchoPacket<&'a T>) -> Result<Self, IcmpError> {
        let buf = p.buffer.as_ref();
        if buf.len() < field::DATA.start {
            return Err(IcmpError::Truncated);
        }
        let t = p.msg_type();
        if ![V4_REQUEST, V4_REPLY, V6_REQUEST, V6_REPLY].contains(&t) || p.code() != 0 {
            return Err(IcmpError::NotEcho);
        }
        Ok(EchoRepr {
            msg_type: t,
            ident: p.ident(),
            seq: p.seq(),
            data: buf.get(field::DATA).unwrap_or_default(),
        })
    }

    /// The length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        field::DATA.start + self.data.len()
    }

    /// Writes the message into `p` (at least `buffer_len()` long), with an ICMPv4
    /// checksum for the v4 types and 0 for the v6 ones.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, p: &mut EchoPacket<&mut T>) {
        p.set_msg_type(self.msg_type);
        p.set_code(0);
        p.set_ident(self.ident);
        p.set_seq(self.seq);
        let n = self.data.len();
        if let Some(d) = p.data_mut().get_mut(..n) {
            d.copy_from_slice(self.data);
        }
        if self.msg_type == V4_REQUEST || self.msg_type == V4_REPLY {
            p.fill_checksum_v4();
        } else {
            p.set_checksum(0);
        }
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [a, b] = c {
            sum += u32::from(u16::from_be_bytes([*a, *b]));
        }
    }
    if let [a] = chunks.remainder() {
        sum += u32::from(*a) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop folded the carries: sum fits in 16 bits.
    !(sum as u16)
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
    let repr = EchoRepr {
        msg_type: if v6 { V6_REQUEST } else { V4_REQUEST },
        ident,
        seq,
        data: &payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut EchoPacket::new_unchecked(&mut buf[..]));
    let sent = tokio::time::timeout_at(deadline, sock.send(&buf)).await;
    match sent {
        Err(_) => return ProbeOutcome::Failure(FailureKind::Timeout),
        Ok(Err(_)) => return ProbeOutcome::Failure(FailureKind::Connect),
        Ok(Ok(_)) => {}
    }
    let want = if v6 { V6_REPLY } else { V4_REPLY };
    let mut rx = vec![0u8; 1500];
    loop {
        let got = tokio::time::timeout_at(deadline, sock.recv(&mut rx)).await;
        let n = match got {
            Err(_) => return ProbeOutcome::Failure(FailureKind::Timeout),
            Ok(Err(_)) => return ProbeOutcome::Failure(FailureKind::Connect),
            Ok(Ok(n)) => n,
        };
        let msg = rx.get(..n).unwrap_or_default();
        // Raw IPv4 sockets deliver the IP header too.
        let msg = if raw && !v6 {
            strip_ipv4(msg)
        } else {
            Some(msg)
        };
        let Some(msg) = msg else { continue };
        let p = EchoPacket::new_unchecked(msg);
        let Ok(r) = EchoRepr::parse(&p) else { continue };
        if r.msg_type == want && r.seq == seq && (!raw || r.ident == ident) && r.data == payload {
            return ProbeOutcome::Success;
        }
    }
}

/// The payload of an IPv4 datagram, if the header is well formed.
fn strip_ipv4(pkt: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    if ihl < 20 || pkt.first()? >> 4 != 4 {
        return None;
    }
    pkt.get(ihl..)
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

    #[test]
    fn echo_round_trip() {
        // An echo request as `ping -c1 -p 61` would send, id 0x1234 seq 1, data "abcd".
        let repr = EchoRepr {
            msg_type: V4_REQUEST,
            ident: 0x1234,
            seq: 1,
            data: b"abcd",
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut EchoPacket::new_unchecked(&mut buf[..]));
        assert_eq!(
            buf,
            [0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd']
        );
        let p = EchoPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum_v4());
        assert_eq!(EchoRepr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn rejects_bad_messages() {
        assert_eq!(
            EchoPacket::new_checked(&[0u8; 7][..]).unwrap_err(),
            IcmpError::Truncated
        );
        // Destination unreachable, port unreachable.
        let unreach = [3u8, 3, 0, 0, 0, 0, 0, 0];
        let p = EchoPacket::new_unchecked(&unreach[..]);
        assert_eq!(EchoRepr::parse(&p), Err(IcmpError::NotEcho));
        let short = [0u8, 0, 0];
        let p = EchoPacket::new_unchecked(&short[..]);
        assert_eq!(EchoRepr::parse(&p), Err(IcmpError::Truncated));
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (checksum 0x220d).
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(internet_checksum(&[0xff]), 0x00ff);
    }

    #[test]
    fn ipv4_header_stripping() {
        let mut pkt = vec![0x45u8; 20];
        pkt.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(strip_ipv4(&pkt).unwrap().len(), 8);
        assert_eq!(strip_ipv4(&[0x44, 0, 0]), None);
        assert_eq!(strip_ipv4(&[0x65; 20]), None);
        assert_eq!(strip_ipv4(&[]), None);
    }
}
