//! UDP (RFC 768) with the IPv4 pseudo-header checksum.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::ip::{get16, put16, IpProtocol};
use crate::{Error, Result};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

/// A view of a UDP datagram (header and payload).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Header length.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than 8 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }
    /// Wraps a buffer after checking the header and that the length field (≥ 8) fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let d = buffer.as_ref();
        if d.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(get16(d, field::LENGTH));
        if len < field::HEADER_LEN {
            return Err(Error::Malformed("udp: length below 8"));
        }
        if len > d.len() {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Length field (header and payload).
    #[inline]
    pub fn len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::LENGTH)
    }
    /// True when the length field says the datagram has no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() <= field::HEADER_LEN as u16
    }
    /// Checksum field (0 = not computed).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Payload up to the length field, clamped to the buffer.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        let end = usize::from(self.len()).min(d.len());
        d.get(field::HEADER_LEN..end).unwrap_or(&[])
    }
    /// True when the checksum is absent (0) or verifies over the pseudo-header and the
    /// `len` bytes of the datagram.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.buffer.as_ref();
        match d.get(..usize::from(self.len())) {
            Some(seg) => checksum::transport_v4(src, dst, IpProtocol::Udp, seg) == 0,
            None => false,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let d: &'a [u8] = <T as AsRef<[u8]>>::as_ref(self.buffer);
        let end = usize::from(self.len()).min(d.len());
        d.get(field::HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }
    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }
    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Payload, mutable (clamped like [`UdpPacket::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len()).min(self.buffer.as_ref().len());
        self.buffer
            .as_mut()
            .get_mut(field::HEADER_LEN..end)
            .unwrap_or(&mut [])
    }
    /// Computes the checksum over the pseudo-header and `len` bytes (clamped to the
    /// buffer); a computed 0 is sent as `0xffff`.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let end = usize::from(self.len()).min(self.buffer.as_ref().len());
        let c = checksum::transport_v4(src, dst, IpProtocol::Udp, &self.buffer.as_ref()[..end]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
    /// Rewrites the source port, updating a present checksum incrementally.
    #[inline]
    pub fn rewrite_src_port(&mut self, v: u16) {
        let c = checksum::update_udp16(self.checksum(), self.src_port(), v);
        self.set_src_port(v);
        self.set_checksum(c);
    }
    /// Rewrites the destination port, updating a present checksum incrementally.
    #[inline]
    pub fn rewrite_dst_port(&mut self, v: u16) {
        let c = checksum::update_udp16(self.checksum(), self.dst_port(), v);
        self.set_dst_port(v);
        self.set_checksum(c);
    }
    /// Updates a present checksum for a pseudo-header address change (after the IPv4
    /// header's address was rewritten).
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_udp32(self.checksum(), old.into(), new.into());
        self.set_checksum(c);
    }
}

/// A parsed UDP header. The payload stays in the buffer (zero copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses a checked datagram, verifying a present checksum against the addresses.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &UdpPacket<&T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<UdpRepr> {
        let p = UdpPacket::new_checked(p.buffer.as_ref())?;
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(UdpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.len()) - field::HEADER_LEN,
        })
    }

    /// Header plus payload length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN + self.payload_len
    }

    /// Writes the header and the checksum. The payload must already be in the buffer
    /// after the header (or call [`UdpPacket::fill_checksum`] after writing it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut UdpPacket<&mut T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let len = u16::try_from(self.buffer_len())
            .map_err(|_| Error::Malformed("udp: datagram longer than 65535"))?;
        if p.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len);
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipv4::Ipv4Packet;
    use crate::testdata;
    use proptest::prelude::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 2);

    #[test]
    fn lab_datagram() {
        let ip = Ipv4Packet::new_checked(&testdata::UDP_HELLO[14..]).unwrap();
        let bytes = ip.into_payload();
        let p = UdpPacket::new_checked(bytes).unwrap();
        assert!(p.checksum() != 0);
        assert!(p.verify_checksum(A, B));
        assert!(!p.verify_checksum(A, Ipv4Addr::new(10, 99, 2, 3)));
        let r = UdpRepr::parse(&p, A, B).unwrap();
        assert_eq!(
            r,
            UdpRepr {
                src_port: 40000,
                dst_port: 9999,
                payload_len: 14
            }
        );
        assert_eq!(p.payload(), b"hello fulcrum\n");
        let mut out = bytes.to_vec();
        out[..8].fill(0);
        r.emit(&mut UdpPacket::new_unchecked(&mut out[..]), A, B)
            .unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn nat_rewrites_keep_checksum_valid() {
        let mut b = Ipv4Packet::new_checked(&testdata::UDP_HELLO[14..])
            .unwrap()
            .into_payload()
            .to_vec();
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        let vip = Ipv4Addr::new(100, 96, 122, 210);
        p.rewrite_src_port(1234);
        p.rewrite_dst_port(53);
        p.update_checksum_for_addr(B, vip);
        assert!(p.verify_checksum(A, vip));
        let c = p.checksum();
        p.fill_checksum(A, vip);
        assert_eq!(p.checksum(), c);
        // No checksum stays no checksum.
        p.set_checksum(0);
        p.rewrite_src_port(99);
        assert_eq!(p.checksum(), 0);
        assert_eq!(
            UdpRepr::parse(&UdpPacket::new_checked(&b[..]).unwrap(), A, B)
                .unwrap()
                .src_port,
            99
        );
    }

    #[test]
    fn errors() {
        let b = Ipv4Packet::new_checked(&testdata::UDP_HELLO[14..])
            .unwrap()
            .into_payload()
            .to_vec();
        assert_eq!(
            UdpPacket::new_checked(&b[..7]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            UdpPacket::new_checked(&b[..21]).err(),
            Some(Error::Truncated)
        );
        let mut m = b.clone();
        m[5] = 7;
        assert!(matches!(
            UdpPacket::new_checked(&m[..]).err(),
            Some(Error::Malformed(_))
        ));
        let mut c = b.clone();
        c[9] ^= 0x20;
        assert_eq!(
            UdpRepr::parse(&UdpPacket::new_checked(&c[..]).unwrap(), A, B),
            Err(Error::Checksum)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = UdpPacket::new_checked(&d[..]) {
                let _ = UdpRepr::parse(&p, A, B);
                let _ = p.payload();
            }
        }

        #[test]
        fn round_trip(sp in any::<u16>(), dp in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64), s in any::<u32>(), d in any::<u32>()) {
            let (s, d) = (Ipv4Addr::from(s), Ipv4Addr::from(d));
            let r = UdpRepr { src_port: sp, dst_port: dp, payload_len: payload.len() };
            let mut b = vec![0u8; r.buffer_len()];
            b[8..].copy_from_slice(&payload);
            r.emit(&mut UdpPacket::new_unchecked(&mut b[..]), s, d).unwrap();
            let p = UdpPacket::new_checked(&b[..]).unwrap();
            prop_assert!(p.checksum() != 0);
            prop_assert_eq!(UdpRepr::parse(&p, s, d).unwrap(), r);
            prop_assert_eq!(p.payload(), &payload[..]);
        }
    }
}
