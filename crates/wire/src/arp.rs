//! ARP for Ethernet and IPv4 (RFC 826), including gratuitous ARP (RFC 5227 §3).

use std::net::Ipv4Addr;

use crate::ethernet::MacAddr;
use crate::ip::{get16, put16};
use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const LEN: usize = 28;
}

/// The ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Request (1).
    Request,
    /// Reply (2).
    Reply,
    /// Any other code.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::Request,
            2 => Self::Reply,
            o => Self::Unknown(o),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(v: ArpOperation) -> u16 {
        match v {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(o) => o,
        }
    }
}

/// A view of an ARP packet laid out for Ethernet/IPv4 (28 bytes).
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = field::LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than 28 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }
    /// Wraps a buffer after checking it holds 28 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }
    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Hardware type (1 = Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        get16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type (0x0800 = IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        get16(self.buffer.as_ref(), field::PTYPE)
    }
    /// Hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    #[inline]
    pub fn operation(&self) -> ArpOperation {
        get16(self.buffer.as_ref(), field::OPER).into()
    }
    /// Sender hardware address.
    #[inline]
    pub fn source_hardware_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        MacAddr(a)
    }
    /// Sender protocol address.
    #[inline]
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::SPA]);
        Ipv4Addr::from(a)
    }
    /// Target hardware address.
    #[inline]
    pub fn target_hardware_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        MacAddr(a)
    }
    /// Target protocol address.
    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buffer.as_ref()[field::TPA]);
        Ipv4Addr::from(a)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets hardware type, protocol type and both lengths for Ethernet/IPv4.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let d = self.buffer.as_mut();
        put16(d, field::HTYPE, 1);
        put16(d, field::PTYPE, 0x0800);
        d[field::HLEN] = 6;
        d[field::PLEN] = 4;
    }
    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: ArpOperation) {
        put16(self.buffer.as_mut(), field::OPER, op.into());
    }
    /// Sets the sender hardware address.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }
    /// Sets the sender protocol address.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }
    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }
    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

/// A parsed Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request, reply or another code.
    pub operation: ArpOperation,
    /// Sender MAC.
    pub source_hardware_addr: MacAddr,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in requests).
    pub target_hardware_addr: MacAddr,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// A who-has request for `target` from `(mac, ip)`.
    pub fn request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: MacAddr::ZERO,
            target_protocol_addr: target,
        }
    }

    /// The reply to `request` saying `ip` is at `mac`.
    pub fn reply_to(request: &ArpRepr, mac: MacAddr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: request.target_protocol_addr,
            target_hardware_addr: request.source_hardware_addr,
            target_protocol_addr: request.source_protocol_addr,
        }
    }

    /// A gratuitous ARP announcing `ip` at `mac` (a request whose sender and target IP are
    /// both `ip`, RFC 5227 §3), as sent after a VIP moves.
    pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> ArpRepr {
        ArpRepr::request(mac, ip, ip)
    }

    /// True when sender and target protocol addresses are equal (gratuitous request or reply).
    pub fn is_gratuitous(&self) -> bool {
        self.source_protocol_addr == self.target_protocol_addr
    }

    /// Parses a packet; only Ethernet/IPv4 ARP is supported.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &ArpPacket<&T>) -> Result<ArpRepr> {
        if p.buffer.as_ref().len() < field::LEN {
            return Err(Error::Truncated);
        }
        if p.hardware_type() != 1 || p.hardware_len() != 6 {
            return Err(Error::Unsupported("arp: hardware is not ethernet"));
        }
        if p.protocol_type() != 0x0800 || p.protocol_len() != 4 {
            return Err(Error::Unsupported("arp: protocol is not ipv4"));
        }
        Ok(ArpRepr {
            operation: p.operation(),
            source_hardware_addr: p.source_hardware_addr(),
            source_protocol_addr: p.source_protocol_addr(),
            target_hardware_addr: p.target_hardware_addr(),
            target_protocol_addr: p.target_protocol_addr(),
        })
    }

    /// Bytes this representation emits (28).
    pub const fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Writes the packet.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut ArpPacket<&mut T>,
    ) -> Result<()> {
        if p.buffer.as_ref().len() < field::LEN {
            return Err(Error::BufferTooSmall);
        }
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_source_hardware_addr(self.source_hardware_addr);
        p.set_source_protocol_addr(self.source_protocol_addr);
        p.set_target_hardware_addr(self.target_hardware_addr);
        p.set_target_protocol_addr(self.target_protocol_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use proptest::prelude::*;

    #[test]
    fn lab_request_and_reply() {
        let req =
            ArpRepr::parse(&ArpPacket::new_checked(&testdata::ARP_REQUEST[14..]).unwrap()).unwrap();
        let mac_a: MacAddr = "02:00:00:00:00:0a".parse().unwrap();
        let mac_r: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(
            req,
            ArpRepr::request(
                mac_a,
                Ipv4Addr::new(10, 99, 1, 1),
                Ipv4Addr::new(10, 99, 1, 254)
            )
        );
        assert!(!req.is_gratuitous());
        let rep =
            ArpRepr::parse(&ArpPacket::new_checked(&testdata::ARP_REPLY[14..]).unwrap()).unwrap();
        assert_eq!(rep, ArpRepr::reply_to(&req, mac_r));
        let mut out = [0u8; 28];
        rep.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(&out[..], &testdata::ARP_REPLY[14..]);
        req.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(&out[..], &testdata::ARP_REQUEST[14..]);
    }

    #[test]
    fn gratuitous_and_errors() {
        let g = ArpRepr::gratuitous(
            MacAddr([2, 0, 0, 0, 0, 1]),
            Ipv4Addr::new(100, 96, 122, 210),
        );
        assert!(g.is_gratuitous());
        assert_eq!(g.target_hardware_addr, MacAddr::ZERO);
        let mut b = testdata::ARP_REQUEST;
        assert_eq!(
            ArpPacket::new_checked(&b[14..41]).err(),
            Some(Error::Truncated)
        );
        b[14 + 1] = 6; // hardware type 6 (IEEE 802)
        let p = ArpPacket::new_checked(&b[14..]).unwrap();
        assert!(matches!(ArpRepr::parse(&p), Err(Error::Unsupported(_))));
        let mut small = [0u8; 27];
        assert_eq!(
            g.emit(&mut ArpPacket::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = ArpPacket::new_checked(&d[..]) {
                let _ = ArpRepr::parse(&p);
            }
        }

        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(), tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let r = ArpRepr {
                operation: op.into(), source_hardware_addr: MacAddr(sha), source_protocol_addr: spa.into(),
                target_hardware_addr: MacAddr(tha), target_protocol_addr: tpa.into(),
            };
            let mut b = [0u8; 28];
            r.emit(&mut ArpPacket::new_unchecked(&mut b[..])).unwrap();
            prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap(), r);
        }
    }
}
