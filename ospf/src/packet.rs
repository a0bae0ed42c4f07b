//! OSPFv2 packets (RFC 2328 §A.3): the common header view and the Hello, Database
//! Description, Link State Request, Link State Update and Link State Acknowledgment bodies.
//!
//! [`Repr::parse`] checks structure only; checksums and authentication are checked by
//! [`crate::auth::verify`] and [`crate::validate`].

use crate::lsa::{Lsa, LsaHeaderRepr, LsaType, LSA_HEADER_LEN};
use crate::{Error, Options, Result};
use std::net::Ipv4Addr;

/// Byte ranges of the OSPF header fields (§A.3.1).
pub mod field {
    use core::ops::Range;
    /// Version (2).
    pub const VERSION: usize = 0;
    /// Packet type.
    pub const TYPE: usize = 1;
    /// Packet length (header included, digest excluded).
    pub const LENGTH: Range<usize> = 2..4;
    /// Router ID.
    pub const ROUTER_ID: Range<usize> = 4..8;
    /// Area ID.
    pub const AREA_ID: Range<usize> = 8..12;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 12..14;
    /// Authentication type.
    pub const AUTYPE: Range<usize> = 14..16;
    /// Authentication field.
    pub const AUTH: Range<usize> = 16..24;
}

/// Length of the OSPF header.
pub const HEADER_LEN: usize = 24;

/// OSPF packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// Hello (1).
    Hello,
    /// Database Description (2).
    DbDescription,
    /// Link State Request (3).
    LsRequest,
    /// Link State Update (4).
    LsUpdate,
    /// Link State Acknowledgment (5).
    LsAck,
}

impl PacketType {
    /// Decodes a type octet.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::DbDescription,
            3 => Self::LsRequest,
            4 => Self::LsUpdate,
            5 => Self::LsAck,
            _ => return None,
        })
    }
    /// The type octet.
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Hello => 1,
            Self::DbDescription => 2,
            Self::LsRequest => 3,
            Self::LsUpdate => 4,
            Self::LsAck => 5,
        }
    }
}

/// A view of an OSPF packet over a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    /// Wraps a buffer, checking that the header fits and the length field is consistent.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// Checks that the buffer holds the header and `length` bytes.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.length());
        if l < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if l > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    fn ip(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.b()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Version.
    pub fn version(&self) -> u8 {
        self.b()[field::VERSION]
    }
    /// Raw packet type.
    pub fn packet_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    /// Packet length.
    pub fn length(&self) -> u16 {
        u16::from_be_bytes([self.b()[2], self.b()[3]])
    }
    /// Router ID.
    pub fn router_id(&self) -> Ipv4Addr {
        self.ip(field::ROUTER_ID)
    }
    /// Area ID.
    pub fn area_id(&self) -> Ipv4Addr {
        self.ip(field::AREA_ID)
    }
    /// Checksum.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.b()[12], self.b()[13]])
    }
    /// Authentication type.
    pub fn autype(&self) -> u16 {
        u16::from_be_bytes([self.b()[14], self.b()[15]])
    }
    /// The 8-byte authentication field.
    pub fn auth(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b()[field::AUTH]);
        a
    }
    /// The packet body (after the header, up to `length`).
    pub fn body(&self) -> &[u8] {
        let l = usize::from(self.length()).min(self.b().len());
        self.b().get(HEADER_LEN..l).unwrap_or(&[])
    }
    /// Bytes after `length` (the cryptographic digest, if any).
    pub fn trailer(&self) -> &[u8] {
        let l = usize::from(self.length()).min(self.b().len());
        &self.b()[l..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets the version.
    pub fn set_version(&mut self, v: u8) {
        self.bm()[field::VERSION] = v;
    }
    /// Sets the type.
    pub fn set_packet_type(&mut self, v: u8) {
        self.bm()[field::TYPE] = v;
    }
    /// Sets the length.
    pub fn set_length(&mut self, v: u16) {
        self.bm()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the router ID.
    pub fn set_router_id(&mut self, v: Ipv4Addr) {
        self.bm()[field::ROUTER_ID].copy_from_slice(&v.octets());
    }
    /// Sets the area ID.
    pub fn set_area_id(&mut self, v: Ipv4Addr) {
        self.bm()[field::AREA_ID].copy_from_slice(&v.octets());
    }
    /// Sets the checksum.
    pub fn set_checksum(&mut self, v: u16) {
        self.bm()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the authentication type.
    pub fn set_autype(&mut self, v: u16) {
        self.bm()[field::AUTYPE].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the authentication field.
    pub fn set_auth(&mut self, v: [u8; 8]) {
        self.bm()[field::AUTH].copy_from_slice(&v);
    }
    /// Mutable body.
    pub fn body_mut(&mut self) -> &mut [u8] {
        let l = usize::from(self.length()).min(self.b().len());
        &mut self.bm()[HEADER_LEN.min(l)..l]
    }
}

/// Authentication field contents, by AuType (§D.3, §D.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthField {
    /// AuType 0; the field is carried as-is (normally zero).
    Null([u8; 8]),
    /// AuType 1: the 8-byte password.
    Simple([u8; 8]),
    /// AuType 2: key id, digest length and cryptographic sequence number.
    Crypto {
        /// Key ID.
        key_id: u8,
        /// Length of the appended digest.
        auth_len: u8,
        /// Cryptographic sequence number.
        seq: u32,
    },
}

impl AuthField {
    /// AuType value.
    pub fn autype(&self) -> u16 {
        match self {
            Self::Null(_) => 0,
            Self::Simple(_) => 1,
            Self::Crypto { .. } => 2,
        }
    }
    fn bytes(&self) -> [u8; 8] {
        match *self {
            Self::Null(b) | Self::Simple(b) => b,
            Self::Crypto {
                key_id,
                auth_len,
                seq,
            } => {
                let s = seq.to_be_bytes();
                [0, 0, key_id, auth_len, s[0], s[1], s[2], s[3]]
            }
        }
    }
}

/// Hello packet body (§A.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Network mask of the sending interface.
    pub mask: Ipv4Addr,
    /// HelloInterval in seconds.
    pub hello_interval: u16,
    /// Options.
    pub options: Options,
    /// Router priority.
    pub priority: u8,
    /// RouterDeadInterval in seconds.
    pub dead_interval: u32,
    /// Designated router (interface address), 0 if none.
    pub dr: Ipv4Addr,
    /// Backup designated router, 0 if none.
    pub bdr: Ipv4Addr,
    /// Router IDs of neighbors heard from recently.
    pub neighbors: Vec<Ipv4Addr>,
}

/// Database Description flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DdFlags(pub u8);

impl DdFlags {
    /// Master/slave bit.
    pub const MS: u8 = 0x01;
    /// More bit.
    pub const M: u8 = 0x02;
    /// Init bit.
    pub const I: u8 = 0x04;
    /// True when `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Database Description body (§A.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbDescription {
    /// Interface MTU.
    pub mtu: u16,
    /// Options.
    pub options: Options,
    /// I / M / MS flags.
    pub flags: DdFlags,
    /// DD sequence number.
    pub seq: u32,
    /// LSA headers.
    pub headers: Vec<LsaHeaderRepr>,
}

/// One Link State Request entry (§A.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LsRequestEntry {
    /// LS type (raw: requests for unknown types are answered with BadLSReq).
    pub ls_type: u32,
    /// Link State ID.
    pub id: Ipv4Addr,
    /// Advertising router.
    pub adv_router: Ipv4Addr,
}

/// One LSA carried in a Link State Update: the typed LSA and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireLsa {
    /// Typed LSA.
    pub lsa: Lsa,
    /// The LSA's bytes as received or originated (flooded unchanged but for the age).
    pub bytes: Vec<u8>,
}

/// Link State Update body (§A.3.5). LSAs that fail their checksum or have an unknown type
/// are not kept; they are counted in `discarded` (§13 steps 1–3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LsUpdate {
    /// LSAs that parsed.
    pub lsas: Vec<WireLsa>,
    /// Number of LSAs discarded while parsing.
    pub discarded: u32,
}

/// A typed packet body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Hello.
    Hello(Hello),
    /// Database Description.
    DbDescription(DbDescription),
    /// Link State Request.
    LsRequest(Vec<LsRequestEntry>),
    /// Link State Update.
    LsUpdate(LsUpdate),
    /// Link State Acknowledgment.
    LsAck(Vec<LsaHeaderRepr>),
}

impl Body {
    /// The packet type of this body.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Body::Hello(_) => PacketType::Hello,
            Body::DbDescription(_) => PacketType::DbDescription,
            Body::LsRequest(_) => PacketType::LsRequest,
            Body::LsUpdate(_) => PacketType::LsUpdate,
            Body::LsAck(_) => PacketType::LsAck,
        }
    }
}

/// A parsed OSPF packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// Router ID of the sender.
    pub router_id: Ipv4Addr,
    /// Area ID.
    pub area_id: Ipv4Addr,
    /// Authentication field.
    pub auth: AuthField,
    /// Body.
    pub body: Body,
}

fn ip_at(b: &[u8], at: usize) -> Result<Ipv4Addr> {
    let s = b.get(at..at + 4).ok_or(Error::Truncated)?;
    Ok(Ipv4Addr::new(s[0], s[1], s[2], s[3]))
}

fn parse_headers(b: &[u8]) -> Result<Vec<LsaHeaderRepr>> {
    if b.len() % LSA_HEADER_LEN != 0 {
        return Err(Error::BadLength);
    }
    b.chunks_exact(LSA_HEADER_LEN)
        .map(LsaHeaderRepr::parse_bytes)
        .collect()
}

impl Repr {
    /// Parses the packet's structure (version, type, lengths, fields). Does not check the
    /// checksum or authentication.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Self> {
        p.check_len()?;
        if p.version() != 2 {
            return Err(Error::BadVersion(p.version()));
        }
        let ptype = PacketType::from_u8(p.packet_type())
            .ok_or(Error::UnknownPacketType(p.packet_type()))?;
        let auth_b = p.auth();
        let auth = match p.autype() {
            0 => AuthField::Null(auth_b),
            1 => AuthField::Simple(auth_b),
            2 => AuthField::Crypto {
                key_id: auth_b[2],
                auth_len: auth_b[3],
                seq: u32::from_be_bytes([auth_b[4], auth_b[5], auth_b[6], auth_b[7]]),
            },
            x => return Err(Error::UnknownAuType(x)),
        };
        let b = p.body();
        let body = match ptype {
            PacketType::Hello => {
                if b.len() < 20 || (b.len() - 20) % 4 != 0 {
                    return Err(Error::BadLength);
                }
                Body::Hello(Hello {
                    mask: ip_at(b, 0)?,
                    hello_interval: u16::from_be_bytes([b[4], b[5]]),
                    options: Options(b[6]),
                    priority: b[7],
                    dead_interval: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    dr: ip_at(b, 12)?,
                    bdr: ip_at(b, 16)?,
                    neighbors: b[20..]
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        .collect(),
                })
            }
            PacketType::DbDescription => {
                if b.len() < 8 {
                    return Err(Error::Truncated);
                }
                Body::DbDescription(DbDescription {
                    mtu: u16::from_be_bytes([b[0], b[1]]),
                    options: Options(b[2]),
                    flags: DdFlags(b[3] & 0x07),
                    seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    headers: parse_headers(&b[8..])?,
                })
            }
            PacketType::LsRequest => {
                if b.len() % 12 != 0 {
                    return Err(Error::BadLength);
                }
                Body::LsRequest(
                    b.chunks_exact(12)
                        .map(|c| LsRequestEntry {
                            ls_type: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                            id: Ipv4Addr::new(c[4], c[5], c[6], c[7]),
                            adv_router: Ipv4Addr::new(c[8], c[9], c[10], c[11]),
                        })
                        .collect(),
                )
            }
            PacketType::LsUpdate => {
                let n = b.get(0..4).ok_or(Error::Truncated)?;
                let n = u32::from_be_bytes([n[0], n[1], n[2], n[3]]);
                let mut at = 4;
                let mut u = LsUpdate::default();
                for _ in 0..n {
                    let rest = b.get(at..).ok_or(Error::Truncated)?;
                    // The length field tells us where the next LSA starts even when this one
                    // is bad; a length that runs past the packet ends parsing.
                    let hdr = rest.get(..LSA_HEADER_LEN).ok_or(Error::Truncated)?;
                    let len = usize::from(u16::from_be_bytes([hdr[18], hdr[19]]));
                    if len < LSA_HEADER_LEN || len > rest.len() {
                        return Err(Error::BadLength);
                    }
                    match Lsa::parse(&rest[..len]) {
                        Ok((lsa, _)) => u.lsas.push(WireLsa {
                            lsa,
                            bytes: rest[..len].to_vec(),
                        }),
                        Err(_) => u.discarded += 1,
                    }
                    at += len;
                }
                Body::LsUpdate(u)
            }
            PacketType::LsAck => Body::LsAck(parse_headers(b)?),
        };
        Ok(Self {
            router_id: p.router_id(),
            area_id: p.area_id(),
            auth,
            body,
        })
    }

    /// Length of the packet without any cryptographic digest.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match &self.body {
                Body::Hello(h) => 20 + 4 * h.neighbors.len(),
                Body::DbDescription(d) => 8 + LSA_HEADER_LEN * d.headers.len(),
                Body::LsRequest(r) => 12 * r.len(),
                Body::LsUpdate(u) => 4 + u.lsas.iter().map(|l| l.bytes.len()).sum::<usize>(),
                Body::LsAck(a) => LSA_HEADER_LEN * a.len(),
            }
    }

    /// Writes the packet into `p` (whose buffer must be at least `buffer_len()` long). The
    /// checksum is left zero: [`crate::auth::sign`] fills it or appends the digest.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, p: &mut Packet<&mut T>) {
        let len = self.buffer_len();
        p.set_version(2);
        p.set_packet_type(self.body.packet_type().to_u8());
        p.set_length(len as u16);
        p.set_router_id(self.router_id);
        p.set_area_id(self.area_id);
        p.set_checksum(0);
        p.set_autype(self.auth.autype());
        p.set_auth(self.auth.bytes());
        let b = p.body_mut();
        match &self.body {
            Body::Hello(h) => {
                b[0..4].copy_from_slice(&h.mask.octets());
                b[4..6].copy_from_slice(&h.hello_interval.to_be_bytes());
                b[6] = h.options.0;
                b[7] = h.priority;
                b[8..12].copy_from_slice(&h.dead_interval.to_be_bytes());
                b[12..16].copy_from_slice(&h.dr.octets());
                b[16..20].copy_from_slice(&h.bdr.octets());
                for (c, n) in b[20..].chunks_exact_mut(4).zip(&h.neighbors) {
                    c.copy_from_slice(&n.octets());
                }
            }
            Body::DbDescription(d) => {
                b[0..2].copy_from_slice(&d.mtu.to_be_bytes());
                b[2] = d.options.0;
                b[3] = d.flags.0;
                b[4..8].copy_from_slice(&d.seq.to_be_bytes());
                for (c, h) in b[8..].chunks_exact_mut(LSA_HEADER_LEN).zip(&d.headers) {
                    let _ = h.write_to(c);
                }
            }
            Body::LsRequest(r) => {
                for (c, e) in b.chunks_exact_mut(12).zip(r) {
                    c[0..4].copy_from_slice(&e.ls_type.to_be_bytes());
                    c[4..8].copy_from_slice(&e.id.octets());
                    c[8..12].copy_from_slice(&e.adv_router.octets());
                }
            }
            Body::LsUpdate(u) => {
                b[0..4].copy_from_slice(&(u.lsas.len() as u32).to_be_bytes());
                let mut at = 4;
                for l in &u.lsas {
                    b[at..at + l.bytes.len()].copy_from_slice(&l.bytes);
                    at += l.bytes.len();
                }
            }
            Body::LsAck(a) => {
                for (c, h) in b.chunks_exact_mut(LSA_HEADER_LEN).zip(a) {
                    let _ = h.write_to(c);
                }
            }
        }
    }

    /// Encodes into a new vector (checksum zero, no digest).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut v[..]));
        v
    }
}

impl LsRequestEntry {
    /// The database key, when the type is known.
    pub fn key(&self) -> Option<crate::lsa::LsaKey> {
        let t = u8::try_from(self.ls_type).ok().and_then(LsaType::from_u8)?;
        Some(crate::lsa::LsaKey {
            ls_type: t,
            id: self.id,
            adv_router: self.adv_router,
        })
    }
}
