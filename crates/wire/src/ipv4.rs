//! IPv4 headers (RFC 791), with options kept as validated raw bytes.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::ip::{get16, get32, put16, put32, IpProtocol};
use crate::{Error, Result};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const HEADER_LEN: usize = 20;
}

/// Maximum length of the options area (IHL 15).
pub const IPV4_MAX_OPTIONS: usize = 40;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const MIN_HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than the header.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking the header (IHL ≥ 5, fits) and that the buffer holds
    /// `total_len` bytes (it may hold more, e.g. Ethernet padding).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        let len = p.buffer.as_ref().len();
        let total = usize::from(p.total_len());
        if total < p.header_len() {
            return Err(Error::Malformed("ipv4: total length below header length"));
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Wraps a possibly truncated packet, e.g. the header quoted inside an ICMP error:
    /// checks only that the whole header is present. [`Ipv4Packet::payload`] then returns
    /// what the buffer holds up to `total_len`.
    #[inline]
    pub fn new_checked_truncated(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        Ok(p)
    }

    #[inline]
    fn check_header(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.header_len() < field::HEADER_LEN {
            return Err(Error::Malformed("ipv4: header length below 20"));
        }
        if d.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    /// Explicit congestion notification bits.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }
    /// Total length (header and payload).
    #[inline]
    pub fn total_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }
    /// The reserved (evil) bit.
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF] & 0x80 != 0
    }
    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF] & 0x40 != 0
    }
    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLG_OFF] & 0x20 != 0
    }
    /// Fragment offset in bytes (the field × 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) << 3
    }
    /// True for any fragment (MF set or offset nonzero).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & 0x3fff != 0
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[field::PROTOCOL].into()
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        get32(self.buffer.as_ref(), field::SRC).into()
    }
    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        get32(self.buffer.as_ref(), field::DST).into()
    }
    /// The options area (bytes 20..header_len).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        d.get(field::HEADER_LEN..self.header_len()).unwrap_or(&[])
    }
    /// True when the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let d = self.buffer.as_ref();
        d.get(..self.header_len())
            .is_some_and(|h| checksum::data(h) == 0xffff)
    }
    /// The payload: bytes from the header end to `total_len`, clamped to the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(d.len());
        d.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let d: &'a [u8] = <T as AsRef<[u8]>>::as_ref(self.buffer);
        let end = usize::from(self.total_len()).min(d.len());
        d.get(self.header_len()..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0x0f) | (v << 4);
    }
    /// Sets the header length in bytes (rounded down to a multiple of 4, at most 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let ihl = ((len / 4).min(15)) as u8;
        let d = self.buffer.as_mut();
        d[field::VER_IHL] = (d[field::VER_IHL] & 0xf0) | ihl;
    }
    /// Sets the DSCP (6 bits).
    #[inline]
    pub fn set_dscp(&mut self, v: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0x03) | (v << 2);
    }
    /// Sets the ECN bits.
    #[inline]
    pub fn set_ecn(&mut self, v: u8) {
        let d = self.buffer.as_mut();
        d[field::DSCP_ECN] = (d[field::DSCP_ECN] & 0xfc) | (v & 0x03);
    }
    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT, v);
    }
    /// Clears flags and fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        put16(self.buffer.as_mut(), field::FLG_OFF, 0);
    }
    /// Sets or clears the don't-fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, v: bool) {
        let d = self.buffer.as_mut();
        d[field::FLG_OFF] = (d[field::FLG_OFF] & !0x40) | if v { 0x40 } else { 0 };
    }
    /// Sets or clears the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, v: bool) {
        let d = self.buffer.as_mut();
        d[field::FLG_OFF] = (d[field::FLG_OFF] & !0x20) | if v { 0x20 } else { 0 };
    }
    /// Sets the fragment offset in bytes (must be a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let d = self.buffer.as_mut();
        let v = (get16(d, field::FLG_OFF) & 0xe000) | ((bytes >> 3) & 0x1fff);
        put16(d, field::FLG_OFF, v);
    }
    /// Sets the TTL.
    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SRC, a.into());
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::DST, a.into());
    }
    /// Recomputes the header checksum over `header_len` bytes.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let sum = checksum::data(&self.buffer.as_ref()[..hl]);
        self.set_checksum(!sum);
    }
    /// Rewrites the source address and updates the header checksum incrementally
    /// (RFC 1624). Returns the old address (for the transport pseudo-header update).
    #[inline]
    pub fn rewrite_src_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.src_addr();
        let c = checksum::update_addr(self.checksum(), old, a);
        self.set_src_addr(a);
        self.set_checksum(c);
        old
    }
    /// Rewrites the destination address with an incremental checksum update; returns the
    /// old address.
    #[inline]
    pub fn rewrite_dst_addr(&mut self, a: Ipv4Addr) -> Ipv4Addr {
        let old = self.dst_addr();
        let c = checksum::update_addr(self.checksum(), old, a);
        self.set_dst_addr(a);
        self.set_checksum(c);
        old
    }
    /// Rewrites the total length with an incremental checksum update (e.g. after inserting
    /// a TCP option into the payload).
    #[inline]
    pub fn rewrite_total_len(&mut self, v: u16) {
        let c = checksum::update16(self.checksum(), self.total_len(), v);
        self.set_total_len(v);
        self.set_checksum(c);
    }
    /// Decrements the TTL with an incremental checksum update (RFC 1624). Returns the new
    /// TTL, or `None` (packet unchanged) when the TTL is already 0 or 1 and the packet must
    /// not be forwarded.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        let d = self.buffer.as_ref();
        let old = get16(d, field::TTL);
        let new = old - 0x0100;
        let c = checksum::update16(self.checksum(), old, new);
        put16(self.buffer.as_mut(), field::TTL, new);
        self.set_checksum(c);
        Some(ttl - 1)
    }
    /// The options area, mutable.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(field::HEADER_LEN..hl)
            .unwrap_or(&mut [])
    }
    /// The payload, mutable (clamped like [`Ipv4Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        self.buffer.as_mut().get_mut(hl..end).unwrap_or(&mut [])
    }
}

/// IPv4 options as raw bytes (at most 40, a multiple of 4), stored inline: no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Options {
    bytes: [u8; IPV4_MAX_OPTIONS],
    len: u8,
}

impl core::fmt::Debug for Ipv4Options {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Ipv4Options")
            .field(&self.as_bytes())
            .finish()
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Ipv4Options::NONE
    }
}

impl Ipv4Options {
    /// No options.
    pub const NONE: Ipv4Options = Ipv4Options {
        bytes: [0; IPV4_MAX_OPTIONS],
        len: 0,
    };

    /// Validates `raw` (each option is EOL, NOP or a TLV that fits; RFC 791 §3.1) and
    /// pads it with zero (end-of-list) bytes to a multiple of 4.
    pub fn new(raw: &[u8]) -> Result<Ipv4Options> {
        if raw.len() > IPV4_MAX_OPTIONS {
            return Err(Error::Malformed("ipv4: options longer than 40 bytes"));
        }
        let mut i = 0;
        while let Some(&kind) = raw.get(i) {
            match kind {
                0 => break,
                1 => i += 1,
                _ => {
                    let len = usize::from(
                        *raw.get(i + 1)
                            .ok_or(Error::Malformed("ipv4: option length missing"))?,
                    );
                    if len < 2 || i + len > raw.len() {
                        return Err(Error::Malformed("ipv4: bad option length"));
                    }
                    i += len;
                }
            }
        }
        let mut o = Ipv4Options::NONE;
        o.bytes[..raw.len()].copy_from_slice(raw);
        o.len = raw.len().next_multiple_of(4) as u8;
        Ok(o)
    }
    /// The option bytes, padding included.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Length in bytes (a multiple of 4).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// True when there are no options.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A parsed IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP (6 bits).
    pub dscp: u8,
    /// ECN (2 bits).
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_offset: u16,
    /// Options (raw, validated).
    pub options: Ipv4Options,
}

impl Ipv4Repr {
    /// Parses a checked packet: version 4, checksum verified, reserved flag clear, options
    /// well formed.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Ipv4Packet<&T>) -> Result<Ipv4Repr> {
        let p = Ipv4Packet::new_checked(p.buffer.as_ref())?;
        if p.version() != 4 {
            return Err(Error::Malformed("ipv4: version is not 4"));
        }
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        if p.reserved_flag() {
            return Err(Error::Malformed("ipv4: reserved flag set"));
        }
        Ok(Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - p.header_len(),
            ttl: p.ttl(),
            dscp: p.dscp(),
            ecn: p.ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            options: Ipv4Options::new(p.options())?,
        })
    }

    /// Header length this representation emits.
    #[inline]
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.options.len()
    }

    /// Header plus payload length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (with checksum) into a buffer of at least
    /// [`Ipv4Repr::buffer_len`] bytes; the payload bytes are left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut Ipv4Packet<&mut T>,
    ) -> Result<()> {
        let total = u16::try_from(self.buffer_len())
            .map_err(|_| Error::Malformed("ipv4: packet longer than 65535"))?;
        if self.dscp > 63 || self.ecn > 3 {
            return Err(Error::Malformed("ipv4: dscp or ecn out of range"));
        }
        if self.frag_offset % 8 != 0 || self.frag_offset > 0x1fff * 8 {
            return Err(Error::Malformed(
                "ipv4: fragment offset not a multiple of 8 or too large",
            ));
        }
        if p.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        p.buffer.as_mut()[0] = 0x40;
        p.set_header_len(self.header_len());
        p.buffer.as_mut()[field::DSCP_ECN] = (self.dscp << 2) | self.ecn;
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.clear_flags();
        p.set_dont_frag(self.dont_frag);
        p.set_more_frags(self.more_frags);
        p.set_frag_offset(self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.options_mut().copy_from_slice(self.options.as_bytes());
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use proptest::prelude::*;

    #[test]
    fn lab_echo_request_header() {
        let ip = &testdata::ICMP_ECHO_REQUEST[14..];
        let p = Ipv4Packet::new_checked(ip).unwrap();
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.src_addr, Ipv4Addr::new(10, 99, 1, 1));
        assert_eq!(r.dst_addr, Ipv4Addr::new(10, 99, 2, 2));
        assert_eq!(r.protocol, IpProtocol::Icmp);
        assert_eq!(r.ttl, 64);
        assert!(r.dont_frag && !r.more_frags);
        assert_eq!(r.frag_offset, 0);
        assert_eq!(r.payload_len, 32);
        assert_eq!(r.ident, 0xe893);
        assert_eq!(p.checksum(), 0x3a6d);
        let mut out = [0u8; 52];
        out[20..].copy_from_slice(p.payload());
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(&out[..], ip);
    }

    #[test]
    fn errors() {
        let ip = testdata::ICMP_ECHO_REQUEST;
        let ip = &ip[14..];
        assert_eq!(
            Ipv4Packet::new_checked(&ip[..19]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            Ipv4Packet::new_checked(&ip[..51]).err(),
            Some(Error::Truncated)
        );
        let mut b = ip.to_vec();
        b[0] = 0x44;
        assert!(matches!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::Malformed(_))
        ));
        let mut b = ip.to_vec();
        b[3] = 10; // total length 10 < 20
        assert!(matches!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(Error::Malformed(_))
        ));
        let mut b = ip.to_vec();
        b[8] = 63; // TTL changed, checksum stale
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()),
            Err(Error::Checksum)
        );
        let mut b = ip.to_vec();
        b[0] = 0x65;
        assert!(matches!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()),
            Err(Error::Malformed(_))
        ));
    }

    /// An IPv4 header with a Router Alert option (RFC 2113: 94 04 00 00), checksum set by
    /// hand and verified with text2pcap + tshark ("Header checksum: 0xf965 [correct]").
    const WITH_RA: [u8; 24] = [
        0x46, 0x00, 0x00, 0x18, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0xf9, 0x65, 0x0a, 0x63, 0x01,
        0x01, 0xe0, 0x00, 0x00, 0x16, 0x94, 0x04, 0x00, 0x00,
    ];

    #[test]
    fn options_router_alert() {
        let p = Ipv4Packet::new_checked(&WITH_RA[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.protocol, IpProtocol::Igmp);
        assert_eq!(r.payload_len, 0);
        let mut out = [0u8; 24];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, WITH_RA);
        assert!(Ipv4Options::new(&[0x94, 0x05, 0, 0]).is_err());
        assert!(Ipv4Options::new(&[0x94]).is_err());
        assert_eq!(
            Ipv4Options::new(&[1, 1, 1]).unwrap().as_bytes(),
            &[1, 1, 1, 0]
        );
    }

    #[test]
    fn nat_helpers_keep_checksum_valid() {
        let mut b = testdata::ICMP_ECHO_REQUEST[14..].to_vec();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        let old = p.rewrite_src_addr(Ipv4Addr::new(192, 168, 7, 188));
        assert_eq!(old, Ipv4Addr::new(10, 99, 1, 1));
        p.rewrite_dst_addr(Ipv4Addr::new(192, 168, 7, 27));
        assert_eq!(p.decrement_ttl(), Some(63));
        assert!(p.verify_checksum());
        p.rewrite_total_len(60);
        assert_eq!(p.total_len(), 60);
        assert!(p.verify_checksum());
        let c = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), c);
        p.set_ttl(1);
        p.fill_checksum();
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
    }

    fn arb_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            (
                any::<u32>(),
                any::<u32>(),
                any::<u8>(),
                0usize..200,
                any::<u8>(),
            ),
            (
                0u8..64,
                0u8..4,
                any::<u16>(),
                any::<bool>(),
                any::<bool>(),
                0u16..0x2000,
            ),
            proptest::collection::vec(1u8..2, 0..=40),
        )
            .prop_map(
                |((s, d, proto, pl, ttl), (dscp, ecn, ident, df, mf, off), opts)| Ipv4Repr {
                    src_addr: s.into(),
                    dst_addr: d.into(),
                    protocol: proto.into(),
                    payload_len: pl,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off * 8,
                    options: Ipv4Options::new(&opts).unwrap(),
                },
            )
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Ipv4Packet::new_checked(&d[..]) {
                let _ = Ipv4Repr::parse(&p);
                let _ = (p.payload(), p.options(), p.verify_checksum());
            }
            if let Ok(p) = Ipv4Packet::new_checked_truncated(&d[..]) {
                let _ = (p.payload(), p.options());
            }
        }

        #[test]
        fn round_trip(r in arb_repr()) {
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut b[..])).unwrap();
            let p = Ipv4Packet::new_checked(&b[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), r);
        }
    }
}
