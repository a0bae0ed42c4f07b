//! LSA formats (RFC 2328 §A.4): the LSA header view and the typed bodies of router (1),
//! network (2), summary (3, 4) and AS-external (5) LSAs. Opaque LSAs (9–11, RFC 5250) are
//! kept as raw bytes. Unknown LS types are rejected with [`Error::UnknownLsaType`].

use crate::checksum::{lsa_checksum, lsa_checksum_valid};
use crate::{Error, Options, Result};
use std::net::Ipv4Addr;

/// Byte ranges of the LSA header fields.
pub mod field {
    use core::ops::Range;
    /// LS age (seconds).
    pub const AGE: Range<usize> = 0..2;
    /// Options.
    pub const OPTIONS: usize = 2;
    /// LS type.
    pub const LS_TYPE: usize = 3;
    /// Link State ID.
    pub const LS_ID: Range<usize> = 4..8;
    /// Advertising router.
    pub const ADV_ROUTER: Range<usize> = 8..12;
    /// LS sequence number (signed).
    pub const SEQ: Range<usize> = 12..16;
    /// Fletcher checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Length of the whole LSA.
    pub const LENGTH: Range<usize> = 18..20;
}

/// Length of the LSA header.
pub const LSA_HEADER_LEN: usize = 20;
/// MaxAge (§B): one hour.
pub const MAX_AGE: u16 = 3600;
/// InitialSequenceNumber (§12.1.6).
pub const INITIAL_SEQ: i32 = i32::MIN + 1;
/// MaxSequenceNumber (§12.1.6).
pub const MAX_SEQ: i32 = i32::MAX;
/// Largest LSA this implementation accepts (the length field is 16 bits).
pub const MAX_LSA_LEN: usize = 65535;

fn ip(b: &[u8], at: usize) -> Result<Ipv4Addr> {
    let s = b.get(at..at + 4).ok_or(Error::Truncated)?;
    Ok(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
}
fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b.get(at..at + 2).ok_or(Error::Truncated)?;
    Ok(u16::from_be_bytes([s[0], s[1]]))
}
fn u24_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 3).ok_or(Error::Truncated)?;
    Ok(u32::from_be_bytes([0, s[0], s[1], s[2]]))
}

/// LS types (§A.4.1 and RFC 5250).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LsaType {
    /// Router-LSA.
    Router,
    /// Network-LSA.
    Network,
    /// Summary-LSA for an IP network.
    SummaryNetwork,
    /// Summary-LSA for an AS boundary router.
    SummaryAsbr,
    /// AS-external-LSA.
    AsExternal,
    /// Link-local opaque LSA.
    OpaqueLink,
    /// Area-local opaque LSA.
    OpaqueArea,
    /// AS-scoped opaque LSA.
    OpaqueAs,
}

impl LsaType {
    /// Decodes an LS type octet; `None` for types this router does not know.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Router,
            2 => Self::Network,
            3 => Self::SummaryNetwork,
            4 => Self::SummaryAsbr,
            5 => Self::AsExternal,
            9 => Self::OpaqueLink,
            10 => Self::OpaqueArea,
            11 => Self::OpaqueAs,
            _ => return None,
        })
    }
    /// The LS type octet.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Router => 1,
            Self::Network => 2,
            Self::SummaryNetwork => 3,
            Self::SummaryAsbr => 4,
            Self::AsExternal => 5,
            Self::OpaqueLink => 9,
            Self::OpaqueArea => 10,
            Self::OpaqueAs => 11,
        }
    }
    /// True for AS-flooding-scope types (5 and 11).
    pub fn is_as_scope(self) -> bool {
        matches!(self, Self::AsExternal | Self::OpaqueAs)
    }
}

/// An LSA's identity in the database (§12.1): LS type, Link State ID, advertising router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsaKey {
    /// LS type.
    pub ls_type: LsaType,
    /// Link State ID.
    pub id: Ipv4Addr,
    /// Advertising router.
    pub adv_router: Ipv4Addr,
}

/// A read/write view of an LSA header over a buffer.
#[derive(Debug, Clone)]
pub struct LsaHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> LsaHeader<T> {
    /// Wraps a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    /// Wraps a buffer, checking that it holds a full header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }
    /// Checks that the buffer holds a full header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < LSA_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }
    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// LS age.
    pub fn age(&self) -> u16 {
        u16::from_be_bytes([self.b()[0], self.b()[1]])
    }
    /// Options.
    pub fn options(&self) -> Options {
        Options(self.b()[field::OPTIONS])
    }
    /// Raw LS type.
    pub fn ls_type(&self) -> u8 {
        self.b()[field::LS_TYPE]
    }
    /// Link State ID.
    pub fn ls_id(&self) -> Ipv4Addr {
        let b = &self.b()[field::LS_ID];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Advertising router.
    pub fn adv_router(&self) -> Ipv4Addr {
        let b = &self.b()[field::ADV_ROUTER];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// LS sequence number.
    pub fn seq(&self) -> i32 {
        let b = &self.b()[field::SEQ];
        i32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// LS checksum.
    pub fn checksum(&self) -> u16 {
        let b = &self.b()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Length of the whole LSA.
    pub fn length(&self) -> u16 {
        let b = &self.b()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> LsaHeader<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets the LS age.
    pub fn set_age(&mut self, v: u16) {
        self.bm()[field::AGE].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the options.
    pub fn set_options(&mut self, v: Options) {
        self.bm()[field::OPTIONS] = v.0;
    }
    /// Sets the LS type.
    pub fn set_ls_type(&mut self, v: u8) {
        self.bm()[field::LS_TYPE] = v;
    }
    /// Sets the Link State ID.
    pub fn set_ls_id(&mut self, v: Ipv4Addr) {
        self.bm()[field::LS_ID].copy_from_slice(&v.octets());
    }
    /// Sets the advertising router.
    pub fn set_adv_router(&mut self, v: Ipv4Addr) {
        self.bm()[field::ADV_ROUTER].copy_from_slice(&v.octets());
    }
    /// Sets the LS sequence number.
    pub fn set_seq(&mut self, v: i32) {
        self.bm()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.bm()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the length field.
    pub fn set_length(&mut self, v: u16) {
        self.bm()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
}

/// A parsed LSA header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LsaHeaderRepr {
    /// LS age in seconds.
    pub age: u16,
    /// Options.
    pub options: Options,
    /// LS type.
    pub ls_type: LsaType,
    /// Link State ID.
    pub id: Ipv4Addr,
    /// Advertising router.
    pub adv_router: Ipv4Addr,
    /// LS sequence number.
    pub seq: i32,
    /// Fletcher checksum.
    pub checksum: u16,
    /// Length of the whole LSA including the header.
    pub length: u16,
}

impl LsaHeaderRepr {
    /// Parses a header; unknown LS types are an error.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(h: &LsaHeader<&T>) -> Result<Self> {
        h.check_len()?;
        let ls_type = LsaType::from_u8(h.ls_type()).ok_or(Error::UnknownLsaType(h.ls_type()))?;
        let length = h.length();
        if usize::from(length) < LSA_HEADER_LEN {
            return Err(Error::BadLength);
        }
        Ok(Self {
            age: h.age(),
            options: h.options(),
            ls_type,
            id: h.ls_id(),
            adv_router: h.adv_router(),
            seq: h.seq(),
            checksum: h.checksum(),
            length,
        })
    }
    /// Parses a header from the first 20 bytes of `bytes`.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self> {
        Self::parse(&LsaHeader::new_checked(bytes)?)
    }
    /// Writes the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, h: &mut LsaHeader<&mut T>) {
        h.set_age(self.age);
        h.set_options(self.options);
        h.set_ls_type(self.ls_type.to_u8());
        h.set_ls_id(self.id);
        h.set_adv_router(self.adv_router);
        h.set_seq(self.seq);
        h.set_checksum(self.checksum);
        h.set_length(self.length);
    }
    /// Header length (20).
    pub fn buffer_len(&self) -> usize {
        LSA_HEADER_LEN
    }
    /// The database key of this LSA.
    pub fn key(&self) -> LsaKey {
        LsaKey {
            ls_type: self.ls_type,
            id: self.id,
            adv_router: self.adv_router,
        }
    }
    /// Writes the header into the first 20 bytes of `out` (which must be long enough).
    pub fn write_to(&self, out: &mut [u8]) -> Result<()> {
        let b = out.get_mut(..LSA_HEADER_LEN).ok_or(Error::Truncated)?;
        self.emit(&mut LsaHeader::new_unchecked(b));
        Ok(())
    }
}

/// Router-LSA flag bits (§A.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouterFlags(pub u8);

impl RouterFlags {
    /// B: area border router.
    pub const B: u8 = 0x01;
    /// E: AS boundary router.
    pub const E: u8 = 0x02;
    /// V: virtual link endpoint.
    pub const V: u8 = 0x04;
    /// True when this router is an ABR.
    pub fn border(self) -> bool {
        self.0 & Self::B != 0
    }
    /// True when this router is an ASBR.
    pub fn external(self) -> bool {
        self.0 & Self::E != 0
    }
}

/// Router link types (§A.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouterLinkType {
    /// Point-to-point connection to another router.
    PointToPoint,
    /// Connection to a transit network.
    Transit,
    /// Connection to a stub network.
    Stub,
    /// Virtual link.
    Virtual,
    /// A type this router does not know (ignored by SPF).
    Unknown(u8),
}

impl RouterLinkType {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::PointToPoint,
            2 => Self::Transit,
            3 => Self::Stub,
            4 => Self::Virtual,
            x => Self::Unknown(x),
        }
    }
    fn to_u8(self) -> u8 {
        match self {
            Self::PointToPoint => 1,
            Self::Transit => 2,
            Self::Stub => 3,
            Self::Virtual => 4,
            Self::Unknown(x) => x,
        }
    }
}

/// A TOS metric entry (kept for fidelity; only TOS 0 is used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TosMetric {
    /// TOS value.
    pub tos: u8,
    /// Metric for that TOS.
    pub metric: u16,
}

/// One link of a router-LSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterLink {
    /// Link ID.
    pub id: Ipv4Addr,
    /// Link Data.
    pub data: Ipv4Addr,
    /// Link type.
    pub link_type: RouterLinkType,
    /// TOS 0 metric.
    pub metric: u16,
    /// Additional TOS metrics.
    pub tos: Vec<TosMetric>,
}

/// Router-LSA body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterLsa {
    /// V/E/B flags.
    pub flags: RouterFlags,
    /// Links.
    pub links: Vec<RouterLink>,
}

/// Network-LSA body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLsa {
    /// Network mask.
    pub mask: Ipv4Addr,
    /// Routers attached to the network (including the DR).
    pub attached: Vec<Ipv4Addr>,
}

/// Summary-LSA body (types 3 and 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryLsa {
    /// Network mask (0 for type 4).
    pub mask: Ipv4Addr,
    /// 24-bit metric.
    pub metric: u32,
    /// Additional TOS entries, raw 32-bit words.
    pub tos: Vec<u32>,
}

/// LSInfinity for summary and external metrics (§B).
pub const LS_INFINITY: u32 = 0x00ff_ffff;

/// AS-external-LSA body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLsa {
    /// Network mask.
    pub mask: Ipv4Addr,
    /// True for a type 2 external metric (E bit).
    pub type2: bool,
    /// 24-bit metric.
    pub metric: u32,
    /// Forwarding address (0.0.0.0: the ASBR itself).
    pub forwarding: Ipv4Addr,
    /// External route tag.
    pub tag: u32,
    /// Additional TOS entries, raw 12-byte records.
    pub tos: Vec<[u8; 12]>,
}

/// A typed LSA body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LsaBody {
    /// Type 1.
    Router(RouterLsa),
    /// Type 2.
    Network(NetworkLsa),
    /// Types 3 and 4.
    Summary(SummaryLsa),
    /// Type 5.
    External(ExternalLsa),
    /// Types 9–11, raw body bytes.
    Opaque(Vec<u8>),
}

/// A complete LSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lsa {
    /// Header (its `length` and `checksum` are recomputed by [`Lsa::to_bytes`]).
    pub header: LsaHeaderRepr,
    /// Body.
    pub body: LsaBody,
}

impl LsaBody {
    fn parse(ls_type: LsaType, b: &[u8]) -> Result<Self> {
        Ok(match ls_type {
            LsaType::Router => {
                let flags = RouterFlags(*b.first().ok_or(Error::Truncated)?);
                let n = u16_at(b, 2)?;
                let mut at = 4;
                let mut links = Vec::with_capacity(usize::from(n).min(b.len() / 12));
                for _ in 0..n {
                    let id = ip(b, at)?;
                    let data = ip(b, at + 4)?;
                    let t = *b.get(at + 8).ok_or(Error::Truncated)?;
                    let ntos = *b.get(at + 9).ok_or(Error::Truncated)?;
                    let metric = u16_at(b, at + 10)?;
                    at += 12;
                    let mut tos = Vec::new();
                    for _ in 0..ntos {
                        let t = *b.get(at).ok_or(Error::Truncated)?;
                        let m = u16_at(b, at + 2)?;
                        tos.push(TosMetric { tos: t, metric: m });
                        at += 4;
                    }
                    links.push(RouterLink {
                        id,
                        data,
                        link_type: RouterLinkType::from_u8(t),
                        metric,
                        tos,
                    });
                }
                if at != b.len() {
                    return Err(Error::BadLength);
                }
                LsaBody::Router(RouterLsa { flags, links })
            }
            LsaType::Network => {
                let mask = ip(b, 0)?;
                if (b.len() - 4) % 4 != 0 {
                    return Err(Error::BadLength);
                }
                let attached = b[4..]
                    .chunks_exact(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                    .collect();
                LsaBody::Network(NetworkLsa { mask, attached })
            }
            LsaType::SummaryNetwork | LsaType::SummaryAsbr => {
                let mask = ip(b, 0)?;
                let metric = u24_at(b, 5)?;
                if (b.len() - 8) % 4 != 0 {
                    return Err(Error::BadLength);
                }
                let tos = b[8..]
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                LsaBody::Summary(SummaryLsa { mask, metric, tos })
            }
            LsaType::AsExternal => {
                let mask = ip(b, 0)?;
                let e = *b.get(4).ok_or(Error::Truncated)?;
                let metric = u24_at(b, 5)?;
                let forwarding = ip(b, 8)?;
                let tag_b = b.get(12..16).ok_or(Error::Truncated)?;
                let tag = u32::from_be_bytes([tag_b[0], tag_b[1], tag_b[2], tag_b[3]]);
                if (b.len() - 16) % 12 != 0 {
                    return Err(Error::BadLength);
                }
                let tos = b[16..]
                    .chunks_exact(12)
                    .map(|c| {
                        let mut a = [0u8; 12];
                        a.copy_from_slice(c);
                        a
                    })
                    .collect();
                LsaBody::External(ExternalLsa {
                    mask,
                    type2: e & 0x80 != 0,
                    metric,
                    forwarding,
                    tag,
                    tos,
                })
            }
            LsaType::OpaqueLink | LsaType::OpaqueArea | LsaType::OpaqueAs => {
                LsaBody::Opaque(b.to_vec())
            }
        })
    }

    /// Length of the encoded body.
    pub fn buffer_len(&self) -> usize {
        match self {
            LsaBody::Router(r) => 4 + r.links.iter().map(|l| 12 + 4 * l.tos.len()).sum::<usize>(),
            LsaBody::Network(n) => 4 + 4 * n.attached.len(),
            LsaBody::Summary(s) => 8 + 4 * s.tos.len(),
            LsaBody::External(e) => 16 + 12 * e.tos.len(),
            LsaBody::Opaque(v) => v.len(),
        }
    }

    fn emit(&self, out: &mut Vec<u8>) {
        match self {
            LsaBody::Router(r) => {
                out.extend_from_slice(&[r.flags.0, 0]);
                out.extend_from_slice(&(r.links.len() as u16).to_be_bytes());
                for l in &r.links {
                    out.extend_from_slice(&l.id.octets());
                    out.extend_from_slice(&l.data.octets());
                    out.push(l.link_type.to_u8());
                    out.push(l.tos.len() as u8);
                    out.extend_from_slice(&l.metric.to_be_bytes());
                    for t in &l.tos {
                        out.extend_from_slice(&[t.tos, 0]);
                        out.extend_from_slice(&t.metric.to_be_bytes());
                    }
                }
            }
            LsaBody::Network(n) => {
                out.extend_from_slice(&n.mask.octets());
                for a in &n.attached {
                    out.extend_from_slice(&a.octets());
                }
            }
            LsaBody::Summary(s) => {
                out.extend_from_slice(&s.mask.octets());
                out.extend_from_slice(&(s.metric & LS_INFINITY).to_be_bytes());
                for t in &s.tos {
                    out.extend_from_slice(&t.to_be_bytes());
                }
            }
            LsaBody::External(e) => {
                out.extend_from_slice(&e.mask.octets());
                let mut w = (e.metric & LS_INFINITY).to_be_bytes();
                w[0] = if e.type2 { 0x80 } else { 0 };
                out.extend_from_slice(&w);
                out.extend_from_slice(&e.forwarding.octets());
                out.extend_from_slice(&e.tag.to_be_bytes());
                for t in &e.tos {
                    out.extend_from_slice(t);
                }
            }
            LsaBody::Opaque(v) => out.extend_from_slice(v),
        }
    }
}

impl Lsa {
    /// Parses one LSA at the start of `bytes`, verifying its Fletcher checksum. Returns the
    /// LSA and the number of bytes it occupies.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize)> {
        let header = LsaHeaderRepr::parse_bytes(bytes)?;
        let len = usize::from(header.length);
        let raw = bytes.get(..len).ok_or(Error::Truncated)?;
        if !lsa_checksum_valid(raw) {
            return Err(Error::BadLsaChecksum);
        }
        let body = LsaBody::parse(header.ls_type, &raw[LSA_HEADER_LEN..])?;
        Ok((Self { header, body }, len))
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        LSA_HEADER_LEN + self.body.buffer_len()
    }

    /// Encodes the LSA, setting the length and Fletcher checksum (in the returned bytes and
    /// in `self.header`). Fails when the body is longer than an LSA can be.
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.buffer_len();
        if len > MAX_LSA_LEN {
            return Err(Error::BadLength);
        }
        self.header.length = len as u16;
        self.header.checksum = 0;
        let mut out = vec![0u8; LSA_HEADER_LEN];
        self.header.write_to(&mut out)?;
        self.body.emit(&mut out);
        let c = lsa_checksum(&out);
        out[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        self.header.checksum = c;
        Ok(out)
    }

    /// Key of this LSA.
    pub fn key(&self) -> LsaKey {
        self.header.key()
    }
}

/// A netmask as a prefix length, when it is contiguous.
pub fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let l = m.leading_ones();
    if m.checked_shl(l).unwrap_or(0) == 0 {
        Some(l as u8)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_router() -> Lsa {
        Lsa {
            header: LsaHeaderRepr {
                age: 1,
                options: Options(Options::E),
                ls_type: LsaType::Router,
                id: Ipv4Addr::new(10, 0, 0, 1),
                adv_router: Ipv4Addr::new(10, 0, 0, 1),
                seq: INITIAL_SEQ,
                checksum: 0,
                length: 0,
            },
            body: LsaBody::Router(RouterLsa {
                flags: RouterFlags(0),
                links: vec![
                    RouterLink {
                        id: Ipv4Addr::new(10, 99, 0, 1),
                        data: Ipv4Addr::new(10, 99, 0, 1),
                        link_type: RouterLinkType::Transit,
                        metric: 10,
                        tos: vec![],
                    },
                    RouterLink {
                        id: Ipv4Addr::new(192, 0, 2, 1),
                        data: Ipv4Addr::new(255, 255, 255, 255),
                        link_type: RouterLinkType::Stub,
                        metric: 0,
                        tos: vec![TosMetric { tos: 2, metric: 5 }],
                    },
                ],
            }),
        }
    }

    #[test]
    fn router_lsa_round_trip() {
        let mut l = sample_router();
        let b = l.to_bytes().unwrap();
        assert_eq!(b.len(), 20 + 4 + 12 + 16);
        assert_eq!(&b[0..4], &[0, 1, 0x02, 1]);
        assert_eq!(&b[18..20], &[0, 52]);
        assert!(crate::checksum::lsa_checksum_valid(&b));
        let (p, n) = Lsa::parse(&b).unwrap();
        assert_eq!(n, b.len());
        assert_eq!(p, l);
    }

    #[test]
    fn rejects_unknown_type_bad_checksum_and_short() {
        let mut l = sample_router();
        let mut b = l.to_bytes().unwrap();
        let mut bad = b.clone();
        bad[30] ^= 0x01;
        assert_eq!(Lsa::parse(&bad), Err(Error::BadLsaChecksum));
        assert_eq!(Lsa::parse(&b[..30]), Err(Error::Truncated));
        b[3] = 7;
        assert_eq!(Lsa::parse(&b), Err(Error::UnknownLsaType(7)));
    }

    #[test]
    fn external_and_summary_bytes() {
        let mut e = Lsa {
            header: LsaHeaderRepr {
                age: 0,
                options: Options(Options::E),
                ls_type: LsaType::AsExternal,
                id: Ipv4Addr::new(100, 96, 122, 210),
                adv_router: Ipv4Addr::new(10, 0, 0, 1),
                seq: INITIAL_SEQ,
                checksum: 0,
                length: 0,
            },
            body: LsaBody::External(ExternalLsa {
                mask: Ipv4Addr::new(255, 255, 255, 255),
                type2: true,
                metric: 20,
                forwarding: Ipv4Addr::UNSPECIFIED,
                tag: 7,
                tos: vec![],
            }),
        };
        let b = e.to_bytes().unwrap();
        assert_eq!(
            &b[20..],
            &[255, 255, 255, 255, 0x80, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 7]
        );
        assert_eq!(Lsa::parse(&b).unwrap().0, e);
        let mut s = e.clone();
        s.header.ls_type = LsaType::SummaryNetwork;
        s.body = LsaBody::Summary(SummaryLsa {
            mask: Ipv4Addr::new(255, 255, 255, 0),
            metric: 0x010203,
            tos: vec![],
        });
        let b = s.to_bytes().unwrap();
        assert_eq!(&b[20..], &[255, 255, 255, 0, 0, 1, 2, 3]);
        assert_eq!(Lsa::parse(&b).unwrap().0, s);
    }

    #[test]
    fn mask_lengths() {
        assert_eq!(mask_len(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_len(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_len(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_len(Ipv4Addr::new(255, 0, 255, 0)), None);
    }
}
