//! ICMPv6 echo request and reply (RFC 4443 §4), the only ICMPv6 messages this crate
//! decodes: what a `PING_CHECK` over IPv6 sends and gets back.
//!
//! The header has the ICMPv4 echo layout (type, code, checksum, identifier, sequence
//! number, then data), but the checksum also covers an IPv6 pseudo-header (RFC 4443
//! §2.3, RFC 8200 §8.1), so computing or verifying it needs the two addresses. On Linux
//! ICMPv6 sockets (datagram and raw, RFC 3542 §3.1) the kernel fills it in on send and
//! checks it on receive: [`Icmpv6Repr::emit`] leaves it 0 and [`Icmpv6Repr::parse`] does
//! not check it; [`Icmpv6Packet::fill_checksum`] and [`Icmpv6Packet::verify_checksum`]
//! are there for callers that build or read whole IPv6 packets.

use std::net::Ipv6Addr;

use crate::checksum;
use crate::ip::{get16, put16};
use crate::{Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

/// The ICMPv6 "next header" value (58) in the pseudo-header.
const NEXT_HEADER_ICMPV6: u64 = 58;

/// The ICMPv6 message type, as far as this crate knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Message {
    /// Echo request (128), RFC 4443 §4.1.
    EchoRequest,
    /// Echo reply (129), RFC 4443 §4.2.
    EchoReply,
    /// Any other type (errors, neighbour discovery, MLD, …): not decoded here.
    Unknown(u8),
}

impl From<u8> for Icmpv6Message {
    fn from(v: u8) -> Self {
        match v {
            128 => Self::EchoRequest,
            129 => Self::EchoReply,
            o => Self::Unknown(o),
        }
    }
}

impl From<Icmpv6Message> for u8 {
    fn from(v: Icmpv6Message) -> u8 {
        match v {
            Icmpv6Message::EchoRequest => 128,
            Icmpv6Message::EchoReply => 129,
            Icmpv6Message::Unknown(o) => o,
        }
    }
}

/// A view of an ICMPv6 message (the whole IPv6 payload) with echo accessors.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Length of the echo header.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than 8 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
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
    pub fn msg_type(&self) -> Icmpv6Message {
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
    /// Bytes after the 8-byte header: the echo data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }
    /// True when the checksum over the pseudo-header of `src` → `dst` and the whole
    /// message verifies (RFC 4443 §2.3).
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        sum_with_pseudo_header(src, dst, self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: Icmpv6Message) {
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
    /// Sets the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }
    /// Sets the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO, v);
    }
    /// Data after the header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_LEN..]
    }
    /// Computes and stores the checksum for a message sent from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = !sum_with_pseudo_header(src, dst, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The folded sum of the IPv6 pseudo-header (RFC 8200 §8.1) and `msg`.
fn sum_with_pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut acc = checksum::accumulate(0, &src.octets());
    acc = checksum::accumulate(acc, &dst.octets());
    acc = checksum::accumulate(acc, msg);
    // The 32-bit upper-layer length and the next header, added to the folded sum so
    // that nothing can overflow.
    let len = u64::try_from(msg.len()).unwrap_or(u64::from(u32::MAX));
    checksum::fold(u64::from(checksum::fold(acc)) + len + NEXT_HEADER_ICMPV6)
}

/// A parsed ICMPv6 echo message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Echo request (RFC 4443 §4.1).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (RFC 4443 §4.2).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses an echo request or reply with code 0. The checksum is not checked (it
    /// needs the addresses: see [`Icmpv6Packet::verify_checksum`]); any other type is
    /// [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Icmpv6Packet<&'a T>) -> Result<Icmpv6Repr<'a>> {
        let bytes: &'a [u8] = <T as AsRef<[u8]>>::as_ref(p.buffer);
        let p = Icmpv6Packet::new_checked(bytes)?;
        let data: &'a [u8] = bytes.get(field::HEADER_LEN..).unwrap_or(&[]);
        let (ident, seq_no) = (p.echo_ident(), p.echo_seq_no());
        match (p.msg_type(), p.msg_code()) {
            (Icmpv6Message::EchoRequest, 0) => Ok(Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            (Icmpv6Message::EchoReply, 0) => Ok(Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            (Icmpv6Message::EchoRequest | Icmpv6Message::EchoReply, _) => {
                Err(Error::Malformed("icmpv6: echo code not 0"))
            }
            (Icmpv6Message::Unknown(_), _) => Err(Error::Unsupported("icmpv6: message type")),
        }
    }

    /// Message length this representation emits.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.data().len()
    }

    /// The echo data.
    pub fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => data,
        }
    }

    /// Writes the message with a zero checksum (the kernel fills it in on ICMPv6
    /// sockets; otherwise call [`Icmpv6Packet::fill_checksum`]). The buffer must hold
    /// [`Icmpv6Repr::buffer_len`] bytes; bytes past that are left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut Icmpv6Packet<&mut T>,
    ) -> Result<()> {
        let len = self.buffer_len();
        let d = p
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        let mut p = Icmpv6Packet::new_unchecked(d);
        let (t, ident, seq_no) = match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, .. } => {
                (Icmpv6Message::EchoRequest, ident, seq_no)
            }
            Icmpv6Repr::EchoReply { ident, seq_no, .. } => {
                (Icmpv6Message::EchoReply, ident, seq_no)
            }
        };
        p.set_msg_type(t);
        p.set_msg_code(0);
        p.set_checksum(0);
        p.set_echo_ident(ident);
        p.set_echo_seq_no(seq_no);
        p.data_mut().copy_from_slice(self.data());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `ping -6 -c1 -s 8 -p 61626364 fd00:77::1` to itself on a namespace's loopback,
    /// captured with tcpdump: the ICMPv6 part of the request and of the reply.
    const ADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x77, 0, 0, 0, 0, 0, 1);
    const REQUEST: [u8; 16] = [
        0x80, 0x00, 0xb8, 0x6a, 0x07, 0x91, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x00, 0x00, 0x00,
        0x00,
    ];
    const REPLY: [u8; 16] = [
        0x81, 0x00, 0xb7, 0x6a, 0x07, 0x91, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64, 0x00, 0x00, 0x00,
        0x00,
    ];

    #[test]
    fn lab_echo() {
        let p = Icmpv6Packet::new_checked(&REQUEST[..]).unwrap();
        assert!(p.verify_checksum(ADDR, ADDR));
        let r = Icmpv6Repr::parse(&p).unwrap();
        let data = b"abcd\0\0\0\0";
        assert_eq!(
            r,
            Icmpv6Repr::EchoRequest {
                ident: 0x0791,
                seq_no: 1,
                data
            }
        );
        let p = Icmpv6Packet::new_checked(&REPLY[..]).unwrap();
        assert!(p.verify_checksum(ADDR, ADDR));
        assert!(!p.verify_checksum(ADDR, Ipv6Addr::LOCALHOST));
        assert_eq!(
            Icmpv6Repr::parse(&p).unwrap(),
            Icmpv6Repr::EchoReply {
                ident: 0x0791,
                seq_no: 1,
                data
            }
        );
    }

    #[test]
    fn emit_then_fill_checksum_matches_the_kernel() {
        for bytes in [REQUEST, REPLY] {
            let r = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&bytes[..]).unwrap()).unwrap();
            let mut out = [0xffu8; 16];
            let mut p = Icmpv6Packet::new_unchecked(&mut out[..]);
            r.emit(&mut p).unwrap();
            assert_eq!(p.checksum(), 0);
            p.fill_checksum(ADDR, ADDR);
            assert_eq!(out, bytes);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            Icmpv6Packet::new_checked(&REQUEST[..7]).err(),
            Some(Error::Truncated)
        );
        // Destination unreachable (1), port unreachable (4).
        let unreach = [1u8, 4, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&unreach[..])),
            Err(Error::Unsupported("icmpv6: message type"))
        );
        let mut odd = REPLY;
        odd[1] = 1;
        assert!(matches!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&odd[..])),
            Err(Error::Malformed(_))
        ));
        // parse checks the length itself, also on an unchecked view.
        assert_eq!(
            Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&REPLY[..3])),
            Err(Error::Truncated)
        );
        let r = Icmpv6Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        };
        let mut small = [0u8; 10];
        assert_eq!(
            r.emit(&mut Icmpv6Packet::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&d[..]));
        }

        #[test]
        fn round_trip(reply in any::<bool>(), ident in any::<u16>(), seq_no in any::<u16>(),
                      data in proptest::collection::vec(any::<u8>(), 0..64),
                      a in any::<[u8; 16]>(), b in any::<[u8; 16]>()) {
            let r = if reply {
                Icmpv6Repr::EchoReply { ident, seq_no, data: &data }
            } else {
                Icmpv6Repr::EchoRequest { ident, seq_no, data: &data }
            };
            let mut buf = vec![0u8; r.buffer_len()];
            let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p).unwrap();
            let (src, dst) = (Ipv6Addr::from(a), Ipv6Addr::from(b));
            p.fill_checksum(src, dst);
            let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum(src, dst));
            prop_assert_eq!(Icmpv6Repr::parse(&p).unwrap(), r);
        }
    }
}
