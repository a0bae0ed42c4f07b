//! ICMPv4 (RFC 792): echo, destination unreachable (with RFC 1191 next-hop MTU) and time
//! exceeded, with access to the quoted IPv4 header and transport ports of error messages.

use crate::checksum;
use crate::ip::{get16, put16};
use crate::ipv4::Ipv4Packet;
use crate::{Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const MTU: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// Any other value.
            Unknown(u8),
        }
        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                match v { $($n => Self::$v,)* o => Self::Unknown(o) }
            }
        }
        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                match v { $($name::$v => $n,)* $name::Unknown(o) => o }
            }
        }
    };
}

code_enum! {
    /// The ICMPv4 message type.
    Icmpv4Message {
        /// Echo reply (0).
        EchoReply = 0,
        /// Destination unreachable (3).
        DstUnreachable = 3,
        /// Redirect (5).
        Redirect = 5,
        /// Echo request (8).
        EchoRequest = 8,
        /// Time exceeded (11).
        TimeExceeded = 11,
        /// Parameter problem (12).
        ParamProblem = 12,
        /// Timestamp request (13).
        Timestamp = 13,
        /// Timestamp reply (14).
        TimestampReply = 14,
    }
}

code_enum! {
    /// Codes of destination unreachable (RFC 792, RFC 1122, RFC 1812).
    Icmpv4DstUnreachable {
        /// Network unreachable (0).
        NetUnreachable = 0,
        /// Host unreachable (1).
        HostUnreachable = 1,
        /// Protocol unreachable (2).
        ProtoUnreachable = 2,
        /// Port unreachable (3).
        PortUnreachable = 3,
        /// Fragmentation needed and DF set (4); carries the next-hop MTU (RFC 1191).
        FragRequired = 4,
        /// Source route failed (5).
        SrcRouteFailed = 5,
        /// Destination network unknown (6).
        DstNetUnknown = 6,
        /// Destination host unknown (7).
        DstHostUnknown = 7,
        /// Source host isolated (8).
        SrcHostIsolated = 8,
        /// Network administratively prohibited (9).
        NetProhibited = 9,
        /// Host administratively prohibited (10).
        HostProhibited = 10,
        /// Network unreachable for TOS (11).
        NetUnreachToS = 11,
        /// Host unreachable for TOS (12).
        HostUnreachToS = 12,
        /// Communication administratively prohibited (13).
        CommProhibited = 13,
        /// Host precedence violation (14).
        HostPrecedViol = 14,
        /// Precedence cutoff in effect (15).
        PrecedCutoff = 15,
    }
}

code_enum! {
    /// Codes of time exceeded.
    Icmpv4TimeExceeded {
        /// TTL expired in transit (0).
        TtlExpired = 0,
        /// Fragment reassembly time exceeded (1).
        FragExpired = 1,
    }
}

/// A view of an ICMPv4 message (the whole IPv4 payload).
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than 8 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }
    /// Wraps a buffer after checking it holds the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
        self.buffer.as_ref()[field::TYPE].into()
    }
    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_IDENT)
    }
    /// Echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }
    /// Next-hop MTU of a fragmentation-needed message (RFC 1191 §4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        get16(self.buffer.as_ref(), field::MTU)
    }
    /// Bytes after the 8-byte header: echo data, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }
    /// True when the checksum over the whole message verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
    /// True for destination unreachable, time exceeded, parameter problem and redirect:
    /// messages that quote the datagram that caused them.
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            Icmpv4Message::DstUnreachable
                | Icmpv4Message::TimeExceeded
                | Icmpv4Message::ParamProblem
                | Icmpv4Message::Redirect
        )
    }
    /// The quoted (invoking) IPv4 packet of an error message, usually truncated.
    pub fn invoking_packet(&self) -> Result<Ipv4Packet<&[u8]>> {
        if !self.is_error() {
            return Err(Error::Unsupported("icmpv4: not an error message"));
        }
        Ipv4Packet::new_checked_truncated(self.data())
    }
    /// Source and destination ports of the quoted TCP/UDP header (its first 4 bytes).
    pub fn invoking_ports(&self) -> Result<(u16, u16)> {
        let ip = self.invoking_packet()?;
        match ip.payload() {
            [a, b, c, d, ..] => Ok((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
            _ => Err(Error::Truncated),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = t.into();
    }
    /// Sets the code.
    #[inline]
    pub fn set_msg_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the echo identifier (the "port" of ICMP echo under NAT).
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }
    /// Rewrites the echo identifier with an incremental checksum update (RFC 1624), as
    /// NAT does for ICMP echo, where the identifier plays the role of a port.
    #[inline]
    pub fn rewrite_echo_ident(&mut self, v: u16) {
        let c = checksum::update16(self.checksum(), self.echo_ident(), v);
        self.set_echo_ident(v);
        self.set_checksum(c);
    }
    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO, v);
    }
    /// Sets bytes 4..8 as unused (0) and the next-hop MTU.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        let d = self.buffer.as_mut();
        put16(d, field::ECHO_IDENT, 0);
        put16(d, field::MTU, v);
    }
    /// Data after the header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_LEN..]
    }
    /// The quoted IPv4 packet of an error message, mutable (for NAT of ICMP errors).
    pub fn invoking_packet_mut(&mut self) -> Result<Ipv4Packet<&mut [u8]>> {
        if !self.is_error() {
            return Err(Error::Unsupported("icmpv4: not an error message"));
        }
        Ipv4Packet::new_checked_truncated(self.data_mut())
    }
    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::data(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// A parsed ICMPv4 message of a supported type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// The code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU (meaningful for `FragRequired`, 0 otherwise).
        next_hop_mtu: u16,
        /// The quoted datagram: IPv4 header plus at least 8 bytes.
        data: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// The code.
        reason: Icmpv4TimeExceeded,
        /// The quoted datagram: IPv4 header plus at least 8 bytes.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message, verifying its checksum. Error messages must quote a whole IPv4
    /// header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        let bytes: &'a [u8] = <T as AsRef<[u8]>>::as_ref(p.buffer);
        let p = Icmpv4Packet::new_checked(bytes)?;
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        let data: &'a [u8] = bytes.get(field::HEADER_LEN..).unwrap_or(&[]);
        let repr = match p.msg_type() {
            Icmpv4Message::EchoRequest if p.msg_code() == 0 => Icmpv4Repr::EchoRequest {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            Icmpv4Message::EchoReply if p.msg_code() == 0 => Icmpv4Repr::EchoReply {
                ident: p.echo_ident(),
                seq_no: p.echo_seq_no(),
                data,
            },
            Icmpv4Message::DstUnreachable => Icmpv4Repr::DstUnreachable {
                reason: p.msg_code().into(),
                next_hop_mtu: p.next_hop_mtu(),
                data,
            },
            Icmpv4Message::TimeExceeded => Icmpv4Repr::TimeExceeded {
                reason: p.msg_code().into(),
                data,
            },
            _ => return Err(Error::Unsupported("icmpv4: message type")),
        };
        if let Icmpv4Repr::DstUnreachable { data, .. } | Icmpv4Repr::TimeExceeded { data, .. } =
            repr
        {
            Ipv4Packet::new_checked_truncated(data)
                .map_err(|_| Error::Malformed("icmpv4: quoted header"))?;
        }
        Ok(repr)
    }

    /// Message length this representation emits.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data().len()
    }

    /// The data after the header.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. } => data,
        }
    }

    /// Writes the message (header, data and checksum); the buffer must be exactly
    /// [`Icmpv4Repr::buffer_len`] bytes or longer (the checksum covers `buffer_len` bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut Icmpv4Packet<&mut T>,
    ) -> Result<()> {
        let len = self.buffer_len();
        let d = p
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        let mut p = Icmpv4Packet::new_unchecked(d);
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                let t = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    Icmpv4Message::EchoRequest
                } else {
                    Icmpv4Message::EchoReply
                };
                p.set_msg_type(t);
                p.set_msg_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                p.set_msg_type(Icmpv4Message::DstUnreachable);
                p.set_msg_code(reason.into());
                p.set_next_hop_mtu(next_hop_mtu);
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                p.set_msg_type(Icmpv4Message::TimeExceeded);
                p.set_msg_code(reason.into());
                p.set_next_hop_mtu(0);
            }
        }
        p.data_mut().copy_from_slice(self.data());
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip::IpProtocol;
    use crate::ipv4::{Ipv4Packet, Ipv4Repr};
    use crate::testdata;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn icmp_of(frame: &[u8]) -> &[u8] {
        Ipv4Packet::new_checked(&frame[14..])
            .unwrap()
            .into_payload()
    }

    fn assert_emits_same(bytes: &[u8]) {
        let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(bytes).unwrap()).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn lab_echo() {
        let req = icmp_of(&testdata::ICMP_ECHO_REQUEST);
        let r = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(req).unwrap()).unwrap();
        let Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!((ident, seq_no, data.len()), (0x2ea1, 1, 24));
        assert_eq!(&data[16..], b"ABCDABCD");
        assert_emits_same(req);
        let rep = icmp_of(&testdata::ICMP_ECHO_REPLY);
        let r2 = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(rep).unwrap()).unwrap();
        assert_eq!(
            r2,
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data
            }
        );
        assert_emits_same(rep);
    }

    #[test]
    fn lab_time_exceeded_quotes_the_echo() {
        let b = icmp_of(&testdata::ICMP_TIME_EXCEEDED);
        let p = Icmpv4Packet::new_checked(b).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert!(matches!(
            r,
            Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                ..
            }
        ));
        let q = p.invoking_packet().unwrap();
        assert_eq!(q.src_addr(), Ipv4Addr::new(10, 99, 1, 1));
        assert_eq!(q.dst_addr(), Ipv4Addr::new(10, 99, 2, 2));
        assert_eq!(q.protocol(), IpProtocol::Icmp);
        assert_eq!(q.ttl(), 1);
        assert!(q.verify_checksum());
        assert_emits_same(b);
    }

    #[test]
    fn lab_fragmentation_needed_mtu() {
        let b = icmp_of(&testdata::ICMP_FRAG_NEEDED);
        let p = Icmpv4Packet::new_checked(b).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        let Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            data,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(reason, Icmpv4DstUnreachable::FragRequired);
        assert_eq!(next_hop_mtu, 1000);
        // Linux quotes as much as fits in 576 bytes: 576 - 20 - 8.
        assert_eq!(data.len(), 548);
        let q = p.invoking_packet().unwrap();
        assert_eq!(q.total_len(), 1428);
        assert!(q.dont_frag());
        assert_eq!(q.payload().len(), 528);
        assert!(Ipv4Packet::new_checked(data).is_err(), "quote is truncated");
        assert_emits_same(b);
    }

    #[test]
    fn lab_port_unreachable_quotes_udp_ports() {
        let b = icmp_of(&testdata::ICMP_PORT_UNREACHABLE);
        let p = Icmpv4Packet::new_checked(b).unwrap();
        let r = Icmpv4Repr::parse(&p).unwrap();
        assert!(matches!(
            r,
            Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::PortUnreachable,
                ..
            }
        ));
        assert_eq!(p.invoking_ports().unwrap(), (40000, 9999));
        let q = Ipv4Repr::parse(&p.invoking_packet().unwrap());
        // The whole UDP datagram is quoted, so the quoted header parses completely.
        assert_eq!(q.unwrap().protocol, IpProtocol::Udp);
        assert_emits_same(b);
    }

    #[test]
    fn nat_of_quoted_header() {
        let mut b = icmp_of(&testdata::ICMP_PORT_UNREACHABLE).to_vec();
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        {
            let mut q = p.invoking_packet_mut().unwrap();
            q.rewrite_src_addr(Ipv4Addr::new(100, 96, 122, 210));
            assert!(q.verify_checksum());
        }
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            p.invoking_packet().unwrap().src_addr(),
            Ipv4Addr::new(100, 96, 122, 210)
        );
    }

    #[test]
    fn echo_ident_rewrite() {
        let mut b = icmp_of(&testdata::ICMP_ECHO_REQUEST).to_vec();
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.rewrite_echo_ident(0xbeef);
        assert_eq!(p.echo_ident(), 0xbeef);
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), c);
    }

    #[test]
    fn errors() {
        let b = icmp_of(&testdata::ICMP_ECHO_REQUEST).to_vec();
        assert_eq!(
            Icmpv4Packet::new_checked(&b[..7]).err(),
            Some(Error::Truncated)
        );
        let mut bad = b.clone();
        bad[10] ^= 1;
        assert_eq!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&bad[..]).unwrap()),
            Err(Error::Checksum)
        );
        // A time exceeded quoting only 10 bytes.
        let mut te = [11u8, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut p = Icmpv4Packet::new_unchecked(&mut te[..]);
        p.fill_checksum();
        assert!(matches!(
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&te[..]).unwrap()),
            Err(Error::Malformed(_))
        ));
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.invoking_packet().is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Icmpv4Packet::new_checked(&d[..]) {
                let _ = Icmpv4Repr::parse(&p);
                let _ = (p.invoking_packet().map(|q| q.payload().len()), p.invoking_ports());
            }
        }

        #[test]
        fn round_trip(kind in 0u8..4, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut quote = vec![0x45u8; 20];
            quote.extend_from_slice(&data);
            let r = match kind {
                0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: &data },
                1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: &data },
                2 => Icmpv4Repr::DstUnreachable { reason: code.into(), next_hop_mtu: a, data: &quote },
                _ => Icmpv4Repr::TimeExceeded { reason: code.into(), data: &quote },
            };
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
            prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }
    }
}
