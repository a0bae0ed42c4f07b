//! The PROXY protocol (HAProxy, versions 1 and 2): the header a FullNAT balancer or proxy
//! puts in front of a TCP stream to carry the client's address to the real server.
//!
//! Parsing takes the first bytes of a stream and returns the header and how many bytes
//! it consumed; [`Error::Truncated`] means "need more bytes". Emitting writes into a
//! caller's buffer. Neither allocates. The CRC32C TLV is carried, not verified.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::ip::{get16, put16};
use crate::{Error, Result};

/// Longest v1 header, CRLF included.
pub const PROXY_V1_MAX_LEN: usize = 107;
/// The 12-byte v2 signature.
pub const PROXY_V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Length of the fixed v2 header (signature, version/command, family, length).
pub const PROXY_V2_HEADER_LEN: usize = 16;

const V1_PREFIX: &[u8] = b"PROXY ";

/// The addresses a PROXY header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyAddresses {
    /// Unknown / unspecified (v1 `UNKNOWN`, v2 `AF_UNSPEC`): use the connection's own.
    Unknown,
    /// IPv4 source (client) and destination.
    Ipv4 {
        /// Client.
        src: SocketAddrV4,
        /// Original destination (the VIP).
        dst: SocketAddrV4,
    },
    /// IPv6 source (client) and destination.
    Ipv6 {
        /// Client.
        src: SocketAddrV6,
        /// Original destination (the VIP).
        dst: SocketAddrV6,
    },
}

/// A PROXY protocol v1 header (a text line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyV1Repr {
    /// The addresses (`TCP4`, `TCP6` or `UNKNOWN`).
    pub addresses: ProxyAddresses,
}

fn parse_port(s: &str) -> Result<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Malformed("proxy v1: bad port"));
    }
    s.parse()
        .map_err(|_| Error::Malformed("proxy v1: port out of range"))
}

/// A `fmt::Write` over a byte slice that fails when full.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(s.as_bytes());
                self.len = end;
                Ok(())
            }
            None => {
                self.overflow = true;
                Err(fmt::Error)
            }
        }
    }
}

/// Counts bytes written through `fmt::Write`.
struct Counter(usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

impl ProxyV1Repr {
    /// Parses a v1 header at the start of `buf`; returns it and the bytes consumed (CRLF
    /// included). `Truncated` when `buf` may still grow into a valid header.
    pub fn parse(buf: &[u8]) -> Result<(ProxyV1Repr, usize)> {
        let n = buf.len().min(V1_PREFIX.len());
        if buf[..n] != V1_PREFIX[..n] {
            return Err(Error::Malformed("proxy v1: no \"PROXY \" prefix"));
        }
        let window = &buf[..buf.len().min(PROXY_V1_MAX_LEN)];
        let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
            return Err(if buf.len() < PROXY_V1_MAX_LEN {
                Error::Truncated
            } else {
                Error::Malformed("proxy v1: no CRLF within 107 bytes")
            });
        };
        if cr < V1_PREFIX.len() {
            return Err(Error::Malformed("proxy v1: no \"PROXY \" prefix"));
        }
        let line = core::str::from_utf8(&buf[V1_PREFIX.len()..cr])
            .map_err(|_| Error::Malformed("proxy v1: not text"))?;
        let mut it = line.split(' ');
        let proto = it.next().unwrap_or("");
        let addresses = match proto {
            "UNKNOWN" => ProxyAddresses::Unknown,
            "TCP4" | "TCP6" => {
                let (Some(s), Some(d), Some(sp), Some(dp), None) =
                    (it.next(), it.next(), it.next(), it.next(), it.next())
                else {
                    return Err(Error::Malformed(
                        "proxy v1: expected 4 fields after the protocol",
                    ));
                };
                let (sp, dp) = (parse_port(sp)?, parse_port(dp)?);
                if proto == "TCP4" {
                    let s: Ipv4Addr = s
                        .parse()
                        .map_err(|_| Error::Malformed("proxy v1: bad ipv4 address"))?;
                    let d: Ipv4Addr = d
                        .parse()
                        .map_err(|_| Error::Malformed("proxy v1: bad ipv4 address"))?;
                    ProxyAddresses::Ipv4 {
                        src: SocketAddrV4::new(s, sp),
                        dst: SocketAddrV4::new(d, dp),
                    }
                } else {
                    let s: Ipv6Addr = s
                        .parse()
                        .map_err(|_| Error::Malformed("proxy v1: bad ipv6 address"))?;
                    let d: Ipv6Addr = d
                        .parse()
                        .map_err(|_| Error::Malformed("proxy v1: bad ipv6 address"))?;
                    ProxyAddresses::Ipv6 {
                        src: SocketAddrV6::new(s, sp, 0, 0),
                        dst: SocketAddrV6::new(d, dp, 0, 0),
                    }
                }
            }
            _ => {
                return Err(Error::Malformed(
                    "proxy v1: protocol is not TCP4, TCP6 or UNKNOWN",
                ))
            }
        };
        Ok((ProxyV1Repr { addresses }, cr + 2))
    }

    fn write_to(&self, w: &mut impl fmt::Write) -> fmt::Result {
        match self.addresses {
            ProxyAddresses::Unknown => w.write_str("PROXY UNKNOWN\r\n"),
            ProxyAddresses::Ipv4 { src, dst } => {
                write!(
                    w,
                    "PROXY TCP4 {} {} {} {}\r\n",
                    src.ip(),
                    dst.ip(),
                    src.port(),
                    dst.port()
                )
            }
            ProxyAddresses::Ipv6 { src, dst } => {
                write!(
                    w,
                    "PROXY TCP6 {} {} {} {}\r\n",
                    src.ip(),
                    dst.ip(),
                    src.port(),
                    dst.port()
                )
            }
        }
    }

    /// Length of the emitted line.
    pub fn buffer_len(&self) -> usize {
        let mut c = Counter(0);
        // Writing to a counter cannot fail.
        let _ = self.write_to(&mut c);
        c.0
    }

    /// Writes the line into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = SliceWriter {
            buf,
            len: 0,
            overflow: false,
        };
        match self.write_to(&mut w) {
            Ok(()) => Ok(w.len),
            Err(_) if w.overflow => Err(Error::BufferTooSmall),
            Err(_) => Err(Error::Malformed("proxy v1: formatting failed")),
        }
    }
}

/// The v2 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyCommand {
    /// LOCAL (0): the connection was made by the proxy itself (e.g. a health check).
    Local,
    /// PROXY (1): relayed on behalf of the client in the address block.
    Proxy,
}

/// The v2 transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyTransport {
    /// UNSPEC (0), only with unknown addresses.
    Unspec,
    /// STREAM (1): TCP.
    Stream,
    /// DGRAM (2): UDP.
    Dgram,
}

/// Well-known v2 TLV types.
pub mod tlv {
    /// Application-Layer Protocol Negotiation.
    pub const ALPN: u8 = 0x01;
    /// Host name (SNI).
    pub const AUTHORITY: u8 = 0x02;
    /// CRC32C of the header.
    pub const CRC32C: u8 = 0x03;
    /// Padding.
    pub const NOOP: u8 = 0x04;
    /// Connection unique ID.
    pub const UNIQUE_ID: u8 = 0x05;
    /// TLS information.
    pub const SSL: u8 = 0x20;
    /// Network namespace.
    pub const NETNS: u8 = 0x30;
}

/// One v2 TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyTlv<'a> {
    /// Type.
    pub kind: u8,
    /// Value.
    pub value: &'a [u8],
}

impl ProxyTlv<'_> {
    /// Bytes this TLV occupies.
    pub fn buffer_len(&self) -> usize {
        3 + self.value.len()
    }
    /// Writes the TLV at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = u16::try_from(self.value.len())
            .map_err(|_| Error::Malformed("proxy v2: tlv longer than 65535"))?;
        let b = buf
            .get_mut(..self.buffer_len())
            .ok_or(Error::BufferTooSmall)?;
        b[0] = self.kind;
        put16(b, 1, len);
        b[3..].copy_from_slice(self.value);
        Ok(self.buffer_len())
    }
}

/// Iterator over v2 TLVs, yielding each or the first error (then stops). No allocation.
#[derive(Debug, Clone)]
pub struct ProxyTlvIter<'a> {
    rest: &'a [u8],
}

impl<'a> ProxyTlvIter<'a> {
    /// Iterates over a TLV area.
    pub fn new(area: &'a [u8]) -> Self {
        ProxyTlvIter { rest: area }
    }
}

impl<'a> Iterator for ProxyTlvIter<'a> {
    type Item = Result<ProxyTlv<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = match self.rest {
            [kind, a, b, rest @ ..] => {
                let len = usize::from(u16::from_be_bytes([*a, *b]));
                match (rest.get(..len), rest.get(len..)) {
                    (Some(value), Some(after)) => {
                        self.rest = after;
                        return Some(Ok(ProxyTlv { kind: *kind, value }));
                    }
                    _ => Err(Error::Malformed("proxy v2: tlv runs past the header")),
                }
            }
            _ => Err(Error::Malformed("proxy v2: partial tlv header")),
        };
        self.rest = &[];
        Some(r)
    }
}

/// A PROXY protocol v2 header (binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyV2Repr<'a> {
    /// LOCAL or PROXY.
    pub command: ProxyCommand,
    /// Transport; `Unspec` exactly when `addresses` is `Unknown`.
    pub transport: ProxyTransport,
    /// The address block.
    pub addresses: ProxyAddresses,
    /// Bytes after the address block: TLVs (validated for IPv4/IPv6; opaque for
    /// `AF_UNSPEC`, whose block receivers must skip).
    pub tlvs: &'a [u8],
}

impl<'a> ProxyV2Repr<'a> {
    /// Parses a v2 header at the start of `buf`; returns it and the bytes consumed.
    /// `Truncated` when `buf` may still grow into a valid header.
    pub fn parse(buf: &'a [u8]) -> Result<(ProxyV2Repr<'a>, usize)> {
        let n = buf.len().min(PROXY_V2_SIGNATURE.len());
        if buf[..n] != PROXY_V2_SIGNATURE[..n] {
            return Err(Error::Malformed("proxy v2: bad signature"));
        }
        let Some(hdr) = buf.get(..PROXY_V2_HEADER_LEN) else {
            return Err(Error::Truncated);
        };
        if hdr[12] >> 4 != 2 {
            return Err(Error::Malformed("proxy v2: version is not 2"));
        }
        let command = match hdr[12] & 0x0f {
            0 => ProxyCommand::Local,
            1 => ProxyCommand::Proxy,
            _ => return Err(Error::Malformed("proxy v2: unknown command")),
        };
        let transport = match hdr[13] & 0x0f {
            0 => ProxyTransport::Unspec,
            1 => ProxyTransport::Stream,
            2 => ProxyTransport::Dgram,
            _ => return Err(Error::Malformed("proxy v2: unknown transport")),
        };
        let family = hdr[13] >> 4;
        let len = usize::from(get16(hdr, 14));
        let body = buf
            .get(PROXY_V2_HEADER_LEN..PROXY_V2_HEADER_LEN + len)
            .ok_or(Error::Truncated)?;
        let consumed = PROXY_V2_HEADER_LEN + len;
        let (addresses, tlvs) = match (family, transport) {
            (0, ProxyTransport::Unspec) => (ProxyAddresses::Unknown, body),
            (0, _) | (1..=3, ProxyTransport::Unspec) => {
                return Err(Error::Malformed(
                    "proxy v2: family and transport do not match",
                ))
            }
            (1, _) => {
                let a = body
                    .get(..12)
                    .ok_or(Error::Malformed("proxy v2: ipv4 address block too short"))?;
                let ip = |at: usize| Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]);
                let src = SocketAddrV4::new(ip(0), get16(a, 8));
                let dst = SocketAddrV4::new(ip(4), get16(a, 10));
                (ProxyAddresses::Ipv4 { src, dst }, &body[12..])
            }
            (2, _) => {
                let a = body
                    .get(..36)
                    .ok_or(Error::Malformed("proxy v2: ipv6 address block too short"))?;
                let ip = |at: usize| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&a[at..at + 16]);
                    Ipv6Addr::from(o)
                };
                let src = SocketAddrV6::new(ip(0), get16(a, 32), 0, 0);
                let dst = SocketAddrV6::new(ip(16), get16(a, 34), 0, 0);
                (ProxyAddresses::Ipv6 { src, dst }, &body[36..])
            }
            (3, _) => return Err(Error::Unsupported("proxy v2: AF_UNIX addresses")),
            _ => return Err(Error::Malformed("proxy v2: unknown address family")),
        };
        if !matches!(addresses, ProxyAddresses::Unknown) {
            for t in ProxyTlvIter::new(tlvs) {
                t?;
            }
        }
        Ok((
            ProxyV2Repr {
                command,
                transport,
                addresses,
                tlvs,
            },
            consumed,
        ))
    }

    /// Iterates over the TLVs.
    pub fn tlvs(&self) -> ProxyTlvIter<'a> {
        ProxyTlvIter::new(self.tlvs)
    }

    fn addr_len(&self) -> usize {
        match self.addresses {
            ProxyAddresses::Unknown => 0,
            ProxyAddresses::Ipv4 { .. } => 12,
            ProxyAddresses::Ipv6 { .. } => 36,
        }
    }

    /// Length of the emitted header.
    pub fn buffer_len(&self) -> usize {
        PROXY_V2_HEADER_LEN + self.addr_len() + self.tlvs.len()
    }

    /// Writes the header into `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let family = match (self.addresses, self.transport) {
            (ProxyAddresses::Unknown, ProxyTransport::Unspec) => 0u8,
            (ProxyAddresses::Ipv4 { .. }, ProxyTransport::Stream | ProxyTransport::Dgram) => 1,
            (ProxyAddresses::Ipv6 { .. }, ProxyTransport::Stream | ProxyTransport::Dgram) => 2,
            _ => {
                return Err(Error::Malformed(
                    "proxy v2: family and transport do not match",
                ))
            }
        };
        let transport = match self.transport {
            ProxyTransport::Unspec => 0u8,
            ProxyTransport::Stream => 1,
            ProxyTransport::Dgram => 2,
        };
        let len = u16::try_from(self.addr_len() + self.tlvs.len())
            .map_err(|_| Error::Malformed("proxy v2: header longer than 65535"))?;
        let total = self.buffer_len();
        let b = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        b[..12].copy_from_slice(&PROXY_V2_SIGNATURE);
        b[12] = 0x20
            | if self.command == ProxyCommand::Proxy {
                1
            } else {
                0
            };
        b[13] = (family << 4) | transport;
        put16(b, 14, len);
        let at = PROXY_V2_HEADER_LEN;
        match self.addresses {
            ProxyAddresses::Unknown => {}
            ProxyAddresses::Ipv4 { src, dst } => {
                b[at..at + 4].copy_from_slice(&src.ip().octets());
                b[at + 4..at + 8].copy_from_slice(&dst.ip().octets());
                put16(b, at + 8, src.port());
                put16(b, at + 10, dst.port());
            }
            ProxyAddresses::Ipv6 { src, dst } => {
                b[at..at + 16].copy_from_slice(&src.ip().octets());
                b[at + 16..at + 32].copy_from_slice(&dst.ip().octets());
                put16(b, at + 32, src.port());
                put16(b, at + 34, dst.port());
            }
        }
        b[at + self.addr_len()..].copy_from_slice(self.tlvs);
        Ok(total)
    }
}

/// A PROXY header of either version, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyHeader<'a> {
    /// Version 1 (text).
    V1(ProxyV1Repr),
    /// Version 2 (binary).
    V2(ProxyV2Repr<'a>),
}

impl<'a> ProxyHeader<'a> {
    /// Parses a header of either version; returns it and the bytes consumed.
    pub fn parse(buf: &'a [u8]) -> Result<(ProxyHeader<'a>, usize)> {
        match buf.first() {
            None => Err(Error::Truncated),
            Some(b'P') => ProxyV1Repr::parse(buf).map(|(r, n)| (ProxyHeader::V1(r), n)),
            Some(b'\r') => ProxyV2Repr::parse(buf).map(|(r, n)| (ProxyHeader::V2(r), n)),
            Some(_) => Err(Error::Malformed("proxy: not a PROXY protocol header")),
        }
    }

    /// The addresses carried.
    pub fn addresses(&self) -> ProxyAddresses {
        match self {
            ProxyHeader::V1(r) => r.addresses,
            ProxyHeader::V2(r) => r.addresses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::Ipv4Packet;
    use crate::tcp::TcpPacket;
    use crate::testdata;
    use proptest::prelude::*;

    /// Sent by HAProxy 2.6 (`send-proxy-v2 proxy-v2-options unique-id`) and captured by
    /// `lab/proxy_v2_capture.sh`, followed by the start of the relayed HTTP request.
    const HAPROXY_V2: [u8; 70] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00,
        0x26, 0x7f, 0x00, 0x00, 0x01, 0x7f, 0x00, 0x00, 0x01, 0x8b, 0xf6, 0x23, 0x28, 0x05, 0x00,
        0x17, 0x66, 0x75, 0x6c, 0x63, 0x72, 0x75, 0x6d, 0x2d, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e,
        0x30, 0x2e, 0x31, 0x2d, 0x33, 0x35, 0x38, 0x33, 0x30, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20,
        0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a,
    ];

    fn v4(a: [u8; 4], p: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), p)
    }

    #[test]
    fn curl_v1_from_lab() {
        let ip = Ipv4Packet::new_checked(&testdata::TCP_PROXY_V1[14..]).unwrap();
        let stream = TcpPacket::new_checked(ip.into_payload())
            .unwrap()
            .into_payload();
        let (r, n) = ProxyV1Repr::parse(stream).unwrap();
        assert_eq!(n, stream.len());
        let ProxyAddresses::Ipv4 { src, dst } = r.addresses else {
            panic!("{r:?}")
        };
        assert_eq!(src.ip(), &Ipv4Addr::new(10, 99, 1, 1));
        assert_eq!(dst, v4([10, 99, 2, 2], 8000));
        let mut out = [0u8; PROXY_V1_MAX_LEN];
        let len = r.emit(&mut out).unwrap();
        assert_eq!(&out[..len], stream);
        assert_eq!(r.buffer_len(), len);
        assert_eq!(ProxyHeader::parse(stream).unwrap(), (ProxyHeader::V1(r), n));
        // Every proper prefix asks for more bytes.
        for i in 0..stream.len() {
            assert_eq!(
                ProxyV1Repr::parse(&stream[..i]),
                Err(Error::Truncated),
                "prefix {i}"
            );
        }
    }

    #[test]
    fn v1_variants_and_errors() {
        let (r, n) = ProxyV1Repr::parse(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\nGET").unwrap();
        assert_eq!(n, 36);
        assert!(
            matches!(r.addresses, ProxyAddresses::Ipv6 { src, dst } if src.port() == 65535 && dst.ip().is_loopback())
        );
        // Leading zeros in ports are tolerated.
        let (r, _) = ProxyV1Repr::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 080 00443\r\n").unwrap();
        assert_eq!(
            r.addresses,
            ProxyAddresses::Ipv4 {
                src: v4([1, 2, 3, 4], 80),
                dst: v4([5, 6, 7, 8], 443)
            }
        );
        let (r, n) = ProxyV1Repr::parse(b"PROXY UNKNOWN whatever\r\n").unwrap();
        assert_eq!((r.addresses, n), (ProxyAddresses::Unknown, 24));
        let mut out = [0u8; 15];
        assert_eq!(r.emit(&mut out), Ok(15));
        assert_eq!(&out, b"PROXY UNKNOWN\r\n");
        assert_eq!(r.emit(&mut out[..14]), Err(Error::BufferTooSmall));
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
            b"PROXY TCP4 \xff 5.6.7.8 1 2\r\n",
        ] {
            assert!(
                matches!(ProxyV1Repr::parse(bad), Err(Error::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b' '; 200];
        let mut l = long;
        l[..6].copy_from_slice(b"PROXY ");
        assert!(matches!(ProxyV1Repr::parse(&l), Err(Error::Malformed(_))));
        assert_eq!(ProxyV1Repr::parse(&l[..106]), Err(Error::Truncated));
    }

    #[test]
    fn haproxy_v2_from_lab() {
        let (r, n) = ProxyV2Repr::parse(&HAPROXY_V2).unwrap();
        assert_eq!(n, 54);
        assert_eq!(&HAPROXY_V2[n..], b"GET / HTTP/1.1\r\n");
        assert_eq!(r.command, ProxyCommand::Proxy);
        assert_eq!(r.transport, ProxyTransport::Stream);
        assert_eq!(
            r.addresses,
            ProxyAddresses::Ipv4 {
                src: v4([127, 0, 0, 1], 35830),
                dst: v4([127, 0, 0, 1], 9000)
            }
        );
        let tlvs: Vec<_> = r.tlvs().collect::<Result<_>>().unwrap();
        assert_eq!(
            tlvs,
            vec![ProxyTlv {
                kind: tlv::UNIQUE_ID,
                value: b"fulcrum-127.0.0.1-35830"
            }]
        );
        let mut out = [0u8; 64];
        assert_eq!(r.emit(&mut out), Ok(54));
        assert_eq!(&out[..54], &HAPROXY_V2[..54]);
        assert_eq!(
            ProxyHeader::parse(&HAPROXY_V2).unwrap(),
            (ProxyHeader::V2(r), 54)
        );
        for i in 0..54 {
            assert_eq!(
                ProxyV2Repr::parse(&HAPROXY_V2[..i]),
                Err(Error::Truncated),
                "prefix {i}"
            );
        }
    }

    #[test]
    fn v2_errors() {
        let mut b = HAPROXY_V2;
        b[3] = 0;
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Malformed(_))));
        let mut b = HAPROXY_V2;
        b[12] = 0x11;
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Malformed(_))));
        let mut b = HAPROXY_V2;
        b[13] = 0x10; // AF_INET with UNSPEC transport
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Malformed(_))));
        let mut b = HAPROXY_V2;
        b[13] = 0x31;
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Unsupported(_))));
        let mut b = HAPROXY_V2;
        b[30] = 0x18; // TLV longer than the header
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Malformed(_))));
        let mut b = HAPROXY_V2;
        b[15] = 0x0b; // address block of 11 bytes
        assert!(matches!(ProxyV2Repr::parse(&b), Err(Error::Malformed(_))));
        // LOCAL with no addresses, as HAProxy sends for health checks.
        let local = ProxyV2Repr {
            command: ProxyCommand::Local,
            transport: ProxyTransport::Unspec,
            addresses: ProxyAddresses::Unknown,
            tlvs: &[],
        };
        let mut out = [0u8; 16];
        assert_eq!(local.emit(&mut out), Ok(16));
        assert_eq!(&out[12..], &[0x20, 0x00, 0x00, 0x00]);
        assert_eq!(ProxyV2Repr::parse(&out).unwrap(), (local, 16));
        let bad = ProxyV2Repr {
            transport: ProxyTransport::Stream,
            ..local
        };
        assert!(bad.emit(&mut out).is_err());
        assert_eq!(ProxyHeader::parse(b""), Err(Error::Truncated));
        assert!(ProxyHeader::parse(b"HTTP").is_err());
    }

    fn arb_addresses() -> impl Strategy<Value = ProxyAddresses> {
        prop_oneof![
            Just(ProxyAddresses::Unknown),
            (any::<u32>(), any::<u16>(), any::<u32>(), any::<u16>()).prop_map(|(a, p, b, q)| {
                ProxyAddresses::Ipv4 {
                    src: SocketAddrV4::new(a.into(), p),
                    dst: SocketAddrV4::new(b.into(), q),
                }
            }),
            (any::<u128>(), any::<u16>(), any::<u128>(), any::<u16>()).prop_map(|(a, p, b, q)| {
                ProxyAddresses::Ipv6 {
                    src: SocketAddrV6::new(a.into(), p, 0, 0),
                    dst: SocketAddrV6::new(b.into(), q, 0, 0),
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..120), v1 in any::<bool>()) {
            let mut d = d;
            if v1 && d.len() >= 6 { d[..6].copy_from_slice(b"PROXY "); }
            if !v1 && d.len() >= 12 { d[..12].copy_from_slice(&PROXY_V2_SIGNATURE); }
            if let Ok((h, n)) = ProxyHeader::parse(&d) {
                prop_assert!(n <= d.len());
                if let ProxyHeader::V2(r) = h { for t in r.tlvs() { let _ = t; } }
            }
        }

        #[test]
        fn v1_round_trip(addresses in arb_addresses(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let r = ProxyV1Repr { addresses };
            let mut buf = [0u8; PROXY_V1_MAX_LEN + 8];
            let n = r.emit(&mut buf).unwrap();
            prop_assert!(n <= PROXY_V1_MAX_LEN);
            prop_assert_eq!(n, r.buffer_len());
            buf[n..n + tail.len()].copy_from_slice(&tail);
            prop_assert_eq!(ProxyV1Repr::parse(&buf[..n + tail.len()]).unwrap(), (r, n));
        }

        #[test]
        fn v2_round_trip(addresses in arb_addresses(), dgram in any::<bool>(), local in any::<bool>(),
                         tlvs in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..4)) {
            let mut area = vec![0u8; 256];
            let mut len = 0;
            for (k, v) in &tlvs {
                len += ProxyTlv { kind: *k, value: v }.emit(&mut area[len..]).unwrap();
            }
            let transport = match (addresses, dgram) {
                (ProxyAddresses::Unknown, _) => ProxyTransport::Unspec,
                (_, true) => ProxyTransport::Dgram,
                _ => ProxyTransport::Stream,
            };
            let command = if local { ProxyCommand::Local } else { ProxyCommand::Proxy };
            let r = ProxyV2Repr { command, transport, addresses, tlvs: &area[..len] };
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&mut buf).unwrap(), buf.len());
            let (p, n) = ProxyV2Repr::parse(&buf).unwrap();
            prop_assert_eq!(p, r);
            prop_assert_eq!(n, buf.len());
            let got: Vec<_> = p.tlvs().map(|t| t.map(|t| (t.kind, t.value.to_vec()))).collect::<Result<_>>().unwrap();
            prop_assert_eq!(got, tlvs);
        }
    }
}
