//! Ethernet II frames with up to two 802.1Q / 802.1ad VLAN tags.

use core::fmt;

use crate::ip::{get16, put16};
use crate::{Error, Result};

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the "unknown" target of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address from the first six bytes of `b`; `None` if `b` is shorter.
    #[inline]
    pub fn from_bytes(b: &[u8]) -> Option<MacAddr> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(MacAddr(a))
    }
    /// The six bytes.
    #[inline]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
    /// True for ff:ff:ff:ff:ff:ff.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// True when the group bit is set (includes broadcast).
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// True for an individual (non-group) address.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
    /// True when the locally-administered bit is set.
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl core::str::FromStr for MacAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for b in out.iter_mut() {
            let p = parts
                .next()
                .ok_or(Error::Malformed("mac address: too few octets"))?;
            if p.len() != 2 {
                return Err(Error::Malformed("mac address: octet is not two hex digits"));
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed("mac address: not hex"))?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed("mac address: too many octets"));
        }
        Ok(MacAddr(out))
    }
}

/// The EtherType field (IEEE 802.3 / IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EtherType {
    /// IPv4 (0x0800).
    Ipv4,
    /// ARP (0x0806).
    Arp,
    /// IPv6 (0x86dd).
    Ipv6,
    /// 802.1Q customer VLAN tag (0x8100).
    Vlan,
    /// 802.1ad service VLAN tag, QinQ outer tag (0x88a8).
    QinQ,
    /// Any other value.
    Unknown(u16),
}

impl EtherType {
    /// True for the TPIDs that introduce a VLAN tag (0x8100, 0x88a8).
    #[inline]
    pub fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x86dd => Self::Ipv6,
            0x8100 => Self::Vlan,
            0x88a8 => Self::QinQ,
            other => Self::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(v: EtherType) -> u16 {
        match v {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(o) => o,
        }
    }
}

/// One VLAN tag: its TPID and the tag control information (PCP, DEI, VID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The tag protocol identifier ([`EtherType::Vlan`] or [`EtherType::QinQ`]).
    pub tpid: EtherType,
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

impl VlanTag {
    /// An 802.1Q (0x8100) tag with priority 0.
    pub fn dot1q(vid: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::Vlan,
            pcp: 0,
            dei: false,
            vid: vid & 0x0fff,
        }
    }
    /// The 16-bit TCI.
    #[inline]
    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
    #[inline]
    fn from_parts(tpid: u16, tci: u16) -> VlanTag {
        VlanTag {
            tpid: EtherType::from(tpid),
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    pub const TAG_LEN: usize = 4;
}

/// A read/write view of an Ethernet II frame, VLAN tags included.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of an untagged header.
    pub const HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than the header.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking it holds the whole header, tags included.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the buffer holds the header and every VLAN tag it announces.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let d = self.buffer.as_ref();
        if d.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
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

    /// Number of VLAN tags (0, 1 or 2). Reads past the end count as no tag.
    #[inline]
    pub fn vlan_count(&self) -> usize {
        let d = self.buffer.as_ref();
        let tpid = |at: usize| {
            d.get(at..at + 2)
                .map(|b| EtherType::from(u16::from_be_bytes([b[0], b[1]])))
        };
        match tpid(field::ETHERTYPE) {
            Some(t) if t.is_vlan_tpid() => match tpid(field::ETHERTYPE + field::TAG_LEN) {
                Some(EtherType::Vlan) => 2,
                _ => 1,
            },
            _ => 0,
        }
    }

    /// Header length: 14 plus 4 per VLAN tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + field::TAG_LEN * self.vlan_count()
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(a)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(a)
    }

    /// The EtherType at offset 12 (a TPID when the frame is tagged).
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from(get16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// The EtherType of the payload, after any VLAN tags.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(get16(self.buffer.as_ref(), self.header_len() - 2))
    }

    /// The outer (or only) VLAN tag.
    #[inline]
    pub fn vlan(&self) -> Option<VlanTag> {
        self.tag(0)
    }

    /// The inner (customer) tag of a QinQ frame.
    #[inline]
    pub fn inner_vlan(&self) -> Option<VlanTag> {
        self.tag(1)
    }

    fn tag(&self, i: usize) -> Option<VlanTag> {
        if self.vlan_count() <= i {
            return None;
        }
        let d = self.buffer.as_ref();
        let at = field::ETHERTYPE + i * field::TAG_LEN;
        Some(VlanTag::from_parts(get16(d, at), get16(d, at + 2)))
    }

    /// The payload after the header (and tags).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }
    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }
    /// Sets the EtherType at offset 12 (the TPID of a tagged frame).
    #[inline]
    pub fn set_outer_ethertype(&mut self, t: EtherType) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, t.into());
    }
    /// Sets the payload EtherType (after any tags).
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        let at = self.header_len() - 2;
        put16(self.buffer.as_mut(), at, t.into());
    }
    /// Rewrites the TCI (PCP, DEI, VID) of the outer tag in place; `false` if untagged.
    #[inline]
    pub fn set_vlan_tci(&mut self, tag: VlanTag) -> bool {
        if self.vlan_count() == 0 {
            return false;
        }
        put16(self.buffer.as_mut(), field::ETHERTYPE + 2, tag.tci());
        true
    }
    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// A parsed Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// Outer (or only) VLAN tag.
    pub vlan: Option<VlanTag>,
    /// Inner tag of a QinQ frame; requires `vlan`.
    pub inner_vlan: Option<VlanTag>,
    /// Payload EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses a checked frame.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EthernetFrame<&T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan(),
            inner_vlan: frame.inner_vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// Header length this representation emits.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
            + field::TAG_LEN
                * (usize::from(self.vlan.is_some()) + usize::from(self.inner_vlan.is_some()))
    }

    /// Writes the header (not the payload) into `frame`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        frame: &mut EthernetFrame<&mut T>,
    ) -> Result<()> {
        if self.inner_vlan.is_some() && self.vlan.is_none() {
            return Err(Error::Malformed("ethernet: inner vlan without outer vlan"));
        }
        for t in [self.vlan, self.inner_vlan].into_iter().flatten() {
            if !t.tpid.is_vlan_tpid() {
                return Err(Error::Malformed("ethernet: vlan tpid is not 0x8100/0x88a8"));
            }
        }
        if let Some(inner) = self.inner_vlan {
            if inner.tpid != EtherType::Vlan {
                return Err(Error::Malformed("ethernet: inner vlan tpid must be 0x8100"));
            }
        } else if self.vlan.is_some() && self.ethertype == EtherType::Vlan {
            return Err(Error::Malformed(
                "ethernet: single-tagged frame carrying 0x8100",
            ));
        }
        if self.vlan.is_none() && self.ethertype.is_vlan_tpid() {
            return Err(Error::Malformed(
                "ethernet: untagged frame with a vlan ethertype",
            ));
        }
        let d: &mut [u8] = frame.buffer.as_mut();
        if d.len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        d[field::DST].copy_from_slice(&self.dst_addr.0);
        d[field::SRC].copy_from_slice(&self.src_addr.0);
        let mut at = field::ETHERTYPE;
        for t in [self.vlan, self.inner_vlan].into_iter().flatten() {
            put16(d, at, t.tpid.into());
            put16(d, at + 2, t.tci());
            at += field::TAG_LEN;
        }
        put16(d, at, self.ethertype.into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;
    use proptest::prelude::*;

    #[test]
    fn parse_lab_arp_frame() {
        let f = EthernetFrame::new_checked(&testdata::ARP_REQUEST[..]).unwrap();
        let r = EthernetRepr::parse(&f).unwrap();
        assert_eq!(r.dst_addr, MacAddr::BROADCAST);
        assert_eq!(r.src_addr, "02:00:00:00:00:0a".parse().unwrap());
        assert_eq!(r.ethertype, EtherType::Arp);
        assert_eq!(r.vlan, None);
        assert_eq!(f.payload().len(), 28);
        let mut out = [0u8; 42];
        out[14..].copy_from_slice(f.payload());
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, testdata::ARP_REQUEST);
    }

    /// 802.1Q frame, VID 100, PCP 5, carrying IPv4 (checked with text2pcap + tshark -V:
    /// "802.1Q Virtual LAN, PRI: 5, DEI: 0, ID: 100", "Type: IPv4 (0x0800)").
    const DOT1Q: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x00, 0x45, 0x00, 0x00, 0x14,
    ];
    /// QinQ: S-tag 0x88a8 VID 200, C-tag 0x8100 VID 100, ARP (tshark -V shows both tags).
    const QINQ: [u8; 22] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x88, 0xa8, 0x00,
        0xc8, 0x81, 0x00, 0x00, 0x64, 0x08, 0x06,
    ];

    #[test]
    fn dot1q_tag() {
        let f = EthernetFrame::new_checked(&DOT1Q[..]).unwrap();
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.outer_ethertype(), EtherType::Vlan);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        let tag = f.vlan().unwrap();
        assert_eq!((tag.pcp, tag.dei, tag.vid), (5, false, 100));
        assert_eq!(f.inner_vlan(), None);
        assert_eq!(f.payload(), &[0x45, 0x00, 0x00, 0x14]);
        let r = EthernetRepr::parse(&f).unwrap();
        let mut out = DOT1Q;
        out[..18].fill(0);
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, DOT1Q);
        // Retag in place.
        let mut f = EthernetFrame::new_unchecked(out);
        assert!(f.set_vlan_tci(VlanTag::dot1q(42)));
        assert_eq!(f.vlan().unwrap().vid, 42);
    }

    #[test]
    fn qinq_tags() {
        let f = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(f.header_len(), 22);
        assert_eq!(f.vlan().unwrap().vid, 200);
        assert_eq!(f.vlan().unwrap().tpid, EtherType::QinQ);
        assert_eq!(f.inner_vlan().unwrap().vid, 100);
        assert_eq!(f.ethertype(), EtherType::Arp);
        let r = EthernetRepr::parse(&f).unwrap();
        let mut out = [0u8; 22];
        r.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
            .unwrap();
        assert_eq!(out, QINQ);
    }

    #[test]
    fn truncated_tags() {
        assert_eq!(
            EthernetFrame::new_checked(&DOT1Q[..13]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            EthernetFrame::new_checked(&DOT1Q[..17]).err(),
            Some(Error::Truncated)
        );
        assert_eq!(
            EthernetFrame::new_checked(&QINQ[..21]).err(),
            Some(Error::Truncated)
        );
        assert!(EthernetFrame::new_checked(&DOT1Q[..18]).is_ok());
    }

    #[test]
    fn mac_text() {
        let m: MacAddr = "02:00:00:00:00:0A".parse().unwrap();
        assert_eq!(m.to_string(), "02:00:00:00:00:0a");
        assert!(m.is_local() && m.is_unicast());
        assert!("02:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("02:00:00:00:00:00:00".parse::<MacAddr>().is_err());
        assert!("0g:00:00:00:00:00".parse::<MacAddr>().is_err());
    }

    fn arb_tag(tpid: EtherType) -> impl Strategy<Value = VlanTag> {
        (0u8..8, any::<bool>(), 0u16..4096).prop_map(move |(pcp, dei, vid)| VlanTag {
            tpid,
            pcp,
            dei,
            vid,
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(f) = EthernetFrame::new_checked(&d[..]) {
                let _ = EthernetRepr::parse(&f);
                let _ = f.payload();
            }
        }

        #[test]
        fn round_trip(
            src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(),
            tags in 0usize..3,
            outer in arb_tag(EtherType::QinQ), inner in arb_tag(EtherType::Vlan),
            et in prop_oneof![Just(0x0800u16), Just(0x0806), Just(0x86dd), 0x0600u16..0x8000],
        ) {
            let r = EthernetRepr {
                src_addr: MacAddr(src), dst_addr: MacAddr(dst),
                vlan: (tags >= 1).then_some(outer), inner_vlan: (tags == 2).then_some(inner),
                ethertype: EtherType::from(et),
            };
            let mut buf = vec![0u8; r.buffer_len() + 3];
            r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..])).unwrap();
            let f = EthernetFrame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
            prop_assert_eq!(f.payload().len(), 3);
        }
    }
}
