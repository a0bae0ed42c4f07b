//! TCP (RFC 9293) headers and options: MSS, window scale (RFC 7323), SACK (RFC 2018),
//! timestamps (RFC 7323) and TOA (kind 254, length 8: the client address carried by
//! FullNAT balancers, as in DPVS / Alibaba TOA), plus in-place NAT helpers.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, BitOr, BitOrAssign, Sub};
use std::net::Ipv4Addr;

use crate::checksum;
use crate::ip::{get16, get32, put16, put32, IpProtocol};
use crate::{Error, Result};

/// Maximum length of the TCP options area (data offset 15).
pub const TCP_MAX_OPTIONS: usize = 40;

/// A TCP sequence number: arithmetic wraps and comparisons are modulo 2³² (RFC 9293 §3.4),
/// so only `PartialOrd` is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpSeqNumber(pub u32);

impl TcpSeqNumber {
    /// The later of two sequence numbers.
    #[inline]
    pub fn max(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
    /// The earlier of two sequence numbers.
    #[inline]
    pub fn min(self, other: Self) -> Self {
        if self < other {
            self
        } else {
            other
        }
    }
}

impl Add<u32> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    #[inline]
    fn add(self, rhs: u32) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_add(rhs))
    }
}

impl AddAssign<u32> for TcpSeqNumber {
    #[inline]
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl Sub<u32> for TcpSeqNumber {
    type Output = TcpSeqNumber;
    #[inline]
    fn sub(self, rhs: u32) -> TcpSeqNumber {
        TcpSeqNumber(self.0.wrapping_sub(rhs))
    }
}

impl Sub for TcpSeqNumber {
    /// Signed distance `self - rhs` modulo 2³².
    type Output = i32;
    #[inline]
    fn sub(self, rhs: TcpSeqNumber) -> i32 {
        self.0.wrapping_sub(rhs.0) as i32
    }
}

impl PartialOrd for TcpSeqNumber {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some((*self - *other).cmp(&0))
    }
}

impl fmt::Display for TcpSeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The TCP control bits (9 bits: NS/AE, CWR, ECE, URG, ACK, PSH, RST, SYN, FIN).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(u16);

impl TcpFlags {
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECE (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// CWR (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// NS / AE (RFC 3540, accurate ECN).
    pub const NS: TcpFlags = TcpFlags(0x100);
    /// No flags.
    pub const EMPTY: TcpFlags = TcpFlags(0);

    /// Flags from the low 9 bits of `bits`.
    #[inline]
    pub const fn from_bits(bits: u16) -> TcpFlags {
        TcpFlags(bits & 0x1ff)
    }
    /// The 9 flag bits.
    #[inline]
    pub const fn bits(self) -> u16 {
        self.0
    }
    /// True when every flag of `other` is set.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any flag of `other` is set.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpFlags({self})")
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump style: `S`, `S.`, `P.`, `F.`, `R` …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(TcpFlags, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::ACK, '.'),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        for (fl, c) in NAMES {
            if self.contains(fl) {
                write!(f, "{c}")?;
            }
        }
        if self.contains(TcpFlags::NS) {
            write!(f, "N")?;
        }
        Ok(())
    }
}

/// Up to four SACK blocks (left edge, right edge), stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    blocks: [(u32, u32); 4],
    len: u8,
}

impl SackBlocks {
    /// Blocks from a slice of 1 to 4 `(left, right)` pairs.
    pub fn new(blocks: &[(u32, u32)]) -> Result<SackBlocks> {
        if blocks.is_empty() || blocks.len() > 4 {
            return Err(Error::Malformed("tcp: sack needs 1 to 4 blocks"));
        }
        let mut s = SackBlocks::default();
        s.blocks[..blocks.len()].copy_from_slice(blocks);
        s.len = blocks.len() as u8;
        Ok(s)
    }
    /// The blocks.
    #[inline]
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }
}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); the rest of the area is padding.
    EndOfList,
    /// No-operation (kind 1), used for alignment.
    NoOperation,
    /// Maximum segment size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks (kind 5, length 2 + 8n, n = 1..4).
    SackRange(SackBlocks),
    /// Timestamps (kind 8, length 10).
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// TOA: the original client address inserted by a FullNAT balancer (kind 254, length
    /// 8: 2-byte port then 4-byte IPv4 address, network order).
    Toa {
        /// Client port.
        port: u16,
        /// Client address.
        addr: Ipv4Addr,
    },
    /// Any other kind, with its value bytes (after kind and length).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Value bytes.
        data: &'a [u8],
    },
}

mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TS: u8 = 8;
    pub const TOA: u8 = 254;
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `buf`; returns it and its length.
    pub fn parse(buf: &'a [u8]) -> Result<(TcpOption<'a>, usize)> {
        let (&k, rest) = buf.split_first().ok_or(Error::Truncated)?;
        match k {
            kind::EOL => return Ok((TcpOption::EndOfList, 1)),
            kind::NOP => return Ok((TcpOption::NoOperation, 1)),
            _ => {}
        }
        let len = usize::from(
            *rest
                .first()
                .ok_or(Error::Malformed("tcp option: missing length"))?,
        );
        if len < 2 {
            return Err(Error::Malformed("tcp option: length below 2"));
        }
        let v = buf
            .get(2..len)
            .ok_or(Error::Malformed("tcp option: runs past the header"))?;
        let opt = match (k, v) {
            (kind::MSS, [a, b]) => TcpOption::MaxSegmentSize(u16::from_be_bytes([*a, *b])),
            (kind::MSS, _) => return Err(Error::Malformed("tcp option: mss length is not 4")),
            (kind::WS, [s]) => TcpOption::WindowScale(*s),
            (kind::WS, _) => {
                return Err(Error::Malformed("tcp option: window scale length is not 3"))
            }
            (kind::SACK_PERM, []) => TcpOption::SackPermitted,
            (kind::SACK_PERM, _) => {
                return Err(Error::Malformed(
                    "tcp option: sack-permitted length is not 2",
                ))
            }
            (kind::SACK, v) => {
                if v.is_empty() || v.len() % 8 != 0 || v.len() > 32 {
                    return Err(Error::Malformed(
                        "tcp option: sack length is not 2+8n (n=1..4)",
                    ));
                }
                let mut s = SackBlocks::default();
                for (i, c) in v.chunks_exact(8).enumerate() {
                    s.blocks[i] = (get32(c, 0), get32(c, 4));
                }
                s.len = (v.len() / 8) as u8;
                TcpOption::SackRange(s)
            }
            (kind::TS, v) if v.len() == 8 => TcpOption::Timestamps {
                tsval: get32(v, 0),
                tsecr: get32(v, 4),
            },
            (kind::TS, _) => {
                return Err(Error::Malformed("tcp option: timestamps length is not 10"))
            }
            (kind::TOA, v) if v.len() == 6 => TcpOption::Toa {
                port: get16(v, 0),
                addr: Ipv4Addr::from(get32(v, 2)),
            },
            (kind, data) => TcpOption::Unknown { kind, data },
        };
        Ok((opt, len))
    }

    /// Bytes this option occupies.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(s) => 2 + 8 * s.as_slice().len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Toa { .. } => 8,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > TCP_MAX_OPTIONS {
            return Err(Error::Malformed("tcp option: longer than the option area"));
        }
        let b = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        match *self {
            TcpOption::EndOfList => b[0] = kind::EOL,
            TcpOption::NoOperation => b[0] = kind::NOP,
            TcpOption::MaxSegmentSize(m) => {
                b[..2].copy_from_slice(&[kind::MSS, 4]);
                put16(b, 2, m);
            }
            TcpOption::WindowScale(s) => b.copy_from_slice(&[kind::WS, 3, s]),
            TcpOption::SackPermitted => b.copy_from_slice(&[kind::SACK_PERM, 2]),
            TcpOption::SackRange(s) => {
                b[0] = kind::SACK;
                b[1] = len as u8;
                for (i, (l, r)) in s.as_slice().iter().enumerate() {
                    put32(b, 2 + 8 * i, *l);
                    put32(b, 6 + 8 * i, *r);
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                b[..2].copy_from_slice(&[kind::TS, 10]);
                put32(b, 2, tsval);
                put32(b, 6, tsecr);
            }
            TcpOption::Toa { port, addr } => {
                b[..2].copy_from_slice(&[kind::TOA, 8]);
                put16(b, 2, port);
                put32(b, 4, addr.into());
            }
            TcpOption::Unknown { kind, data } => {
                if kind == kind::EOL || kind == kind::NOP {
                    return Err(Error::Malformed(
                        "tcp option: unknown option with kind 0 or 1",
                    ));
                }
                b[0] = kind;
                b[1] = len as u8;
                b[2..].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

/// Iterator over an options area, yielding each option or the first error (then stops).
/// Iteration ends after an end-of-list option. Does not allocate.
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptionsIter<'a> {
    /// Iterates over the options in `area` (the bytes between the fixed header and the
    /// data offset).
    #[inline]
    pub fn new(area: &'a [u8]) -> Self {
        TcpOptionsIter { rest: area }
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((opt, len)) => {
                self.rest = if opt == TcpOption::EndOfList {
                    &[]
                } else {
                    self.rest.get(len..).unwrap_or(&[])
                };
                Some(Ok(opt))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Writes options into a buffer, then pads them to a multiple of 4 bytes.
#[derive(Debug)]
pub struct TcpOptionWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> TcpOptionWriter<'a> {
    /// A writer at the start of `buf` (at most 40 bytes of it are used).
    pub fn new(buf: &'a mut [u8]) -> Self {
        TcpOptionWriter { buf, len: 0 }
    }
    /// Appends one option.
    pub fn push(&mut self, opt: &TcpOption<'_>) -> Result<()> {
        if self.len + opt.buffer_len() > TCP_MAX_OPTIONS {
            return Err(Error::Malformed("tcp: options longer than 40 bytes"));
        }
        let b = self.buf.get_mut(self.len..).ok_or(Error::BufferTooSmall)?;
        self.len += opt.emit(b)?;
        Ok(())
    }
    /// Bytes written so far (unpadded).
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Pads with end-of-list (zero) bytes to a multiple of 4 and returns the padded length.
    pub fn finish(self) -> Result<usize> {
        let padded = self.len.next_multiple_of(4);
        self.buf
            .get_mut(self.len..padded)
            .ok_or(Error::BufferTooSmall)?
            .fill(0);
        Ok(padded)
    }
}

/// A validated TCP options area stored inline (at most 40 bytes, a multiple of 4): the
/// options of a [`TcpRepr`], kept as bytes so that re-emitting reproduces them exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpOptions {
    bytes: [u8; TCP_MAX_OPTIONS],
    len: u8,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions::NONE
    }
}

impl fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl TcpOptions {
    /// No options.
    pub const NONE: TcpOptions = TcpOptions {
        bytes: [0; TCP_MAX_OPTIONS],
        len: 0,
    };

    /// Validates a raw options area and pads it with zero bytes to a multiple of 4.
    pub fn from_bytes(raw: &[u8]) -> Result<TcpOptions> {
        if raw.len() > TCP_MAX_OPTIONS {
            return Err(Error::Malformed("tcp: options longer than 40 bytes"));
        }
        for o in TcpOptionsIter::new(raw) {
            o?;
        }
        let mut t = TcpOptions::NONE;
        t.bytes[..raw.len()].copy_from_slice(raw);
        t.len = raw.len().next_multiple_of(4) as u8;
        Ok(t)
    }

    /// Encodes `opts` in order, padded to a multiple of 4.
    pub fn from_options(opts: &[TcpOption<'_>]) -> Result<TcpOptions> {
        let mut t = TcpOptions::NONE;
        let mut w = TcpOptionWriter::new(&mut t.bytes);
        for o in opts {
            w.push(o)?;
        }
        t.len = w.finish()? as u8;
        Ok(t)
    }

    /// The bytes, padding included.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Iterates over the options (they were validated, so every item is `Ok`).
    #[inline]
    pub fn iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.as_bytes())
    }
    fn find<R>(&self, f: impl Fn(&TcpOption<'_>) -> Option<R>) -> Option<R> {
        self.iter().filter_map(|o| o.ok()).find_map(|o| f(&o))
    }
    /// The MSS option.
    pub fn max_seg_size(&self) -> Option<u16> {
        self.find(|o| {
            if let TcpOption::MaxSegmentSize(m) = o {
                Some(*m)
            } else {
                None
            }
        })
    }
    /// The window scale option.
    pub fn window_scale(&self) -> Option<u8> {
        self.find(|o| {
            if let TcpOption::WindowScale(s) = o {
                Some(*s)
            } else {
                None
            }
        })
    }
    /// True when SACK-permitted is present.
    pub fn sack_permitted(&self) -> bool {
        self.find(|o| matches!(o, TcpOption::SackPermitted).then_some(()))
            .is_some()
    }
    /// The SACK blocks.
    pub fn sack_blocks(&self) -> Option<SackBlocks> {
        self.find(|o| {
            if let TcpOption::SackRange(s) = o {
                Some(*s)
            } else {
                None
            }
        })
    }
    /// The timestamps `(tsval, tsecr)`.
    pub fn timestamps(&self) -> Option<(u32, u32)> {
        self.find(|o| {
            if let TcpOption::Timestamps { tsval, tsecr } = o {
                Some((*tsval, *tsecr))
            } else {
                None
            }
        })
    }
    /// The TOA client address.
    pub fn toa(&self) -> Option<std::net::SocketAddrV4> {
        self.find(|o| {
            if let TcpOption::Toa { port, addr } = o {
                Some(std::net::SocketAddrV4::new(*addr, *port))
            } else {
                None
            }
        })
    }
}

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const FLAGS: usize = 12;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const HEADER_LEN: usize = 20;
}

/// A view of a TCP segment. The buffer must be exactly the segment (the IPv4 payload):
/// TCP has no length field, so the checksum covers the whole buffer.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Length of the fixed header.
    pub const MIN_HEADER_LEN: usize = field::HEADER_LEN;

    /// Wraps a buffer without checks; accessors panic if it is shorter than the header.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }
    /// Wraps a buffer after checking the data offset (≥ 5) and that the header fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        let d = p.buffer.as_ref();
        if d.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = p.header_len();
        if hl < field::HEADER_LEN {
            return Err(Error::Malformed("tcp: data offset below 5"));
        }
        if d.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(p)
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
    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(get32(self.buffer.as_ref(), field::SEQ))
    }
    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> TcpSeqNumber {
        TcpSeqNumber(get32(self.buffer.as_ref(), field::ACK))
    }
    /// Header length in bytes (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS] >> 4) * 4
    }
    /// Control bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits(get16(self.buffer.as_ref(), field::FLAGS))
    }
    /// Window.
    #[inline]
    pub fn window_len(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WINDOW)
    }
    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Urgent pointer.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        get16(self.buffer.as_ref(), field::URGENT)
    }
    /// The options area.
    #[inline]
    pub fn options(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::HEADER_LEN..self.header_len())
            .unwrap_or(&[])
    }
    /// Iterates over the options without allocating.
    #[inline]
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }
    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(self.header_len()..).unwrap_or(&[])
    }
    /// Sequence space the segment occupies: payload length plus one for SYN and for FIN.
    #[inline]
    pub fn segment_len(&self) -> usize {
        let f = self.flags();
        self.payload().len()
            + usize::from(f.contains(TcpFlags::SYN))
            + usize::from(f.contains(TcpFlags::FIN))
    }
    /// True when the checksum verifies over the pseudo-header and the whole buffer.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::transport_v4(src, dst, IpProtocol::Tcp, self.buffer.as_ref()) == 0
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let d: &'a [u8] = <T as AsRef<[u8]>>::as_ref(self.buffer);
        d.get(self.header_len()..).unwrap_or(&[])
    }
    /// Iterates over the options with the lifetime of the underlying buffer.
    #[inline]
    pub fn into_options_iter(self) -> TcpOptionsIter<'a> {
        let d: &'a [u8] = <T as AsRef<[u8]>>::as_ref(self.buffer);
        TcpOptionsIter::new(d.get(field::HEADER_LEN..self.header_len()).unwrap_or(&[]))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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
    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: TcpSeqNumber) {
        put32(self.buffer.as_mut(), field::SEQ, v.0);
    }
    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: TcpSeqNumber) {
        put32(self.buffer.as_mut(), field::ACK, v.0);
    }
    /// Sets the header length in bytes (multiple of 4, at most 60), keeping the flags.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let doff = (len / 4).min(15) as u8;
        let d = self.buffer.as_mut();
        d[field::FLAGS] = (d[field::FLAGS] & 0x0f) | (doff << 4);
    }
    /// Sets the control bits, keeping the data offset (reserved bits are cleared).
    #[inline]
    pub fn set_flags(&mut self, f: TcpFlags) {
        let d = self.buffer.as_mut();
        let v = (u16::from(d[field::FLAGS] & 0xf0) << 8) | f.bits();
        put16(d, field::FLAGS, v);
    }
    /// Sets the window.
    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::WINDOW, v);
    }
    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::URGENT, v);
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
    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }
    /// Computes the checksum over the pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::transport_v4(src, dst, IpProtocol::Tcp, self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Rewrites the source port with an incremental checksum update (RFC 1624).
    #[inline]
    pub fn rewrite_src_port(&mut self, v: u16) {
        let c = checksum::update16(self.checksum(), self.src_port(), v);
        self.set_src_port(v);
        self.set_checksum(c);
    }
    /// Rewrites the destination port with an incremental checksum update.
    #[inline]
    pub fn rewrite_dst_port(&mut self, v: u16) {
        let c = checksum::update16(self.checksum(), self.dst_port(), v);
        self.set_dst_port(v);
        self.set_checksum(c);
    }
    /// Rewrites the sequence number with an incremental checksum update.
    #[inline]
    pub fn rewrite_seq_number(&mut self, v: TcpSeqNumber) {
        let c = checksum::update32(self.checksum(), self.seq_number().0, v.0);
        self.set_seq_number(v);
        self.set_checksum(c);
    }
    /// Rewrites the acknowledgment number with an incremental checksum update.
    #[inline]
    pub fn rewrite_ack_number(&mut self, v: TcpSeqNumber) {
        let c = checksum::update32(self.checksum(), self.ack_number().0, v.0);
        self.set_ack_number(v);
        self.set_checksum(c);
    }
    /// Updates the checksum for a pseudo-header address change (after the IPv4 header's
    /// source or destination address was rewritten from `old` to `new`).
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }
    /// Lowers an MSS option above `max` to `max` (incremental checksum update), as a
    /// FullNAT balancer does to make room for TOA. Returns the old MSS when it was changed.
    pub fn clamp_mss(&mut self, max: u16) -> Option<u16> {
        let hl = self.header_len();
        let mut at = field::HEADER_LEN;
        let (old, pos) = loop {
            let area = self.buffer.as_ref().get(at..hl)?;
            let (opt, len) = TcpOption::parse(area).ok()?;
            match opt {
                TcpOption::EndOfList => return None,
                TcpOption::MaxSegmentSize(m) => break (m, at + 2),
                _ => at += len,
            }
        };
        if old <= max {
            return None;
        }
        // A 16-bit field at an odd offset is not word aligned: update the two words it
        // straddles (or the one it occupies) rather than the field itself.
        let d = self.buffer.as_ref();
        let w0 = pos & !1;
        let straddles = pos % 2 == 1;
        let old_words = (
            get16(d, w0),
            if straddles {
                Some(get16(d, w0 + 2))
            } else {
                None
            },
        );
        put16(self.buffer.as_mut(), pos, max);
        let d = self.buffer.as_ref();
        let mut c = checksum::update16(self.checksum(), old_words.0, get16(d, w0));
        if let Some(o) = old_words.1 {
            c = checksum::update16(c, o, get16(d, w0 + 2));
        }
        self.set_checksum(c);
        Some(old)
    }
}

/// Inserts `option` at the start of the options area of the segment in
/// `buf[..seg_len]`, moving the existing options and payload up (NOP-padded to a multiple
/// of 4), and updates the data offset. `buf` must have room after `seg_len`. Returns the
/// new segment length. The checksum is not updated: call
/// [`TcpPacket::fill_checksum`], and grow the IPv4 total length by the difference.
pub fn insert_tcp_option(buf: &mut [u8], seg_len: usize, option: &TcpOption<'_>) -> Result<usize> {
    let seg = buf.get(..seg_len).ok_or(Error::Truncated)?;
    let hl = TcpPacket::new_checked(seg)?.header_len();
    let add = option.buffer_len().next_multiple_of(4);
    if hl + add > field::HEADER_LEN + TCP_MAX_OPTIONS {
        return Err(Error::BufferTooSmall);
    }
    let new_len = seg_len + add;
    if buf.len() < new_len {
        return Err(Error::BufferTooSmall);
    }
    buf.copy_within(field::HEADER_LEN..seg_len, field::HEADER_LEN + add);
    let pad = add - option.buffer_len();
    buf[field::HEADER_LEN..field::HEADER_LEN + pad].fill(kind::NOP);
    option.emit(&mut buf[field::HEADER_LEN + pad..field::HEADER_LEN + add])?;
    TcpPacket::new_unchecked(&mut buf[..]).set_header_len(hl + add);
    Ok(new_len)
}

/// A parsed TCP header. The payload stays in the buffer (zero copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: TcpSeqNumber,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack_number: TcpSeqNumber,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_pointer: u16,
    /// Options, validated.
    pub options: TcpOptions,
    /// Payload length.
    pub payload_len: usize,
}

impl TcpRepr {
    /// Parses a checked segment, verifying the checksum and the options.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &TcpPacket<&T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<TcpRepr> {
        let p = TcpPacket::new_checked(p.buffer.as_ref())?;
        if !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_pointer: p.urgent_at(),
            options: TcpOptions::from_bytes(p.options())?,
            payload_len: p.payload().len(),
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

    /// Writes the header and the checksum over `buffer_len` bytes. The payload must already
    /// be in place after the header (or call [`TcpPacket::fill_checksum`] after writing it).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        p: &mut TcpPacket<&mut T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let len = self.buffer_len();
        let d = p
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall)?;
        let mut p = TcpPacket::new_unchecked(d);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq_number);
        p.set_ack_number(self.ack_number);
        p.buffer[field::FLAGS] = 0;
        p.set_header_len(self.header_len());
        p.set_flags(self.flags);
        p.set_window_len(self.window_len);
        p.set_urgent_at(self.urgent_pointer);
        p.options_mut().copy_from_slice(self.options.as_bytes());
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

    fn seg(frame: &[u8]) -> &[u8] {
        Ipv4Packet::new_checked(&frame[14..])
            .unwrap()
            .into_payload()
    }

    fn assert_emits_same(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> TcpRepr {
        let r = TcpRepr::parse(&TcpPacket::new_checked(bytes).unwrap(), src, dst).unwrap();
        let mut out = bytes.to_vec();
        out[..r.header_len()].fill(0);
        r.emit(&mut TcpPacket::new_unchecked(&mut out[..]), src, dst)
            .unwrap();
        assert_eq!(out, bytes);
        r
    }

    #[test]
    fn lab_syn_options() {
        let b = seg(&testdata::TCP_SYN);
        let p = TcpPacket::new_checked(b).unwrap();
        assert!(p.verify_checksum(A, B));
        assert_eq!(p.dst_port(), 8000);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.flags().to_string(), "S");
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.window_len(), 65280);
        assert_eq!(p.segment_len(), 1);
        let opts: Vec<_> = p.options_iter().collect::<Result<_>>().unwrap();
        assert_eq!(opts.len(), 5);
        assert_eq!(opts[0], TcpOption::MaxSegmentSize(960));
        assert_eq!(opts[1], TcpOption::SackPermitted);
        assert!(matches!(opts[2], TcpOption::Timestamps { tsecr: 0, .. }));
        assert_eq!(opts[3], TcpOption::NoOperation);
        assert_eq!(opts[4], TcpOption::WindowScale(10));
        let r = assert_emits_same(b, A, B);
        assert_eq!(r.options.max_seg_size(), Some(960));
        assert_eq!(r.options.window_scale(), Some(10));
        assert!(r.options.sack_permitted());
        assert_eq!(r.payload_len, 0);
        // The same options written by the writer in Linux's order give the same bytes.
        assert_eq!(
            TcpOptions::from_options(&opts).unwrap().as_bytes(),
            p.options()
        );
    }

    #[test]
    fn lab_handshake_and_data() {
        let syn = TcpRepr::parse(
            &TcpPacket::new_checked(seg(&testdata::TCP_SYN)).unwrap(),
            A,
            B,
        )
        .unwrap();
        let sa = assert_emits_same(seg(&testdata::TCP_SYN_ACK), B, A);
        assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(sa.ack_number, syn.seq_number + 1);
        let (tsval, _) = syn.options.timestamps().unwrap();
        assert_eq!(sa.options.timestamps().unwrap().1, tsval);
        let get = assert_emits_same(seg(&testdata::TCP_HTTP_GET), A, B);
        assert_eq!(get.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(get.seq_number, syn.seq_number + 1);
        assert_eq!(get.header_len(), 32);
        let p = TcpPacket::new_checked(seg(&testdata::TCP_HTTP_GET)).unwrap();
        assert!(p.payload().starts_with(b"GET / HTTP/1.1\r\n"));
        assert_eq!(p.payload().len(), get.payload_len);
        assert!(TcpRepr::parse(&p, A, Ipv4Addr::new(10, 99, 2, 3)) == Err(Error::Checksum));
    }

    #[test]
    fn seq_number_wraps() {
        let a = TcpSeqNumber(u32::MAX - 1);
        let b = a + 5;
        assert_eq!(b, TcpSeqNumber(3));
        assert!(b > a);
        assert!(a < b);
        assert_eq!(a.partial_cmp(&b), Some(Ordering::Less));
        assert_eq!(b - a, 5);
        assert_eq!(a - b, -5);
        assert_eq!(a.max(b), b);
        assert_eq!(b.min(a), a);
        assert_eq!(b - 5u32, a);
    }

    #[test]
    fn option_errors() {
        let bad: [&[u8]; 8] = [
            &[2, 4, 1], // mss runs past the area
            &[2, 3, 1], // mss length 3
            &[3, 2],    // window scale length 2
            &[5, 2],    // sack with no block
            &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[8, 9, 0, 0, 0, 0, 0, 0, 0],
            &[9, 1], // length below 2
            &[9],    // missing length
        ];
        for b in bad {
            assert!(
                matches!(TcpOptions::from_bytes(b), Err(Error::Malformed(_))),
                "{b:?}"
            );
        }
        // Bytes after end-of-list are padding and are not parsed.
        let t = TcpOptions::from_bytes(&[1, 0, 0xff, 0xff]).unwrap();
        assert_eq!(t.iter().count(), 2);
        // Kind 254 with another length is an experimental option, not TOA.
        let t = TcpOptions::from_bytes(&[254, 4, 0xf9, 0x89]).unwrap();
        assert_eq!(
            t.iter().next().unwrap().unwrap(),
            TcpOption::Unknown {
                kind: 254,
                data: &[0xf9, 0x89]
            }
        );
        assert_eq!(t.toa(), None);
        let mut big = [0u8; 64];
        let mut w = TcpOptionWriter::new(&mut big);
        for _ in 0..4 {
            w.push(&TcpOption::Timestamps { tsval: 1, tsecr: 2 })
                .unwrap();
        }
        assert!(w
            .push(&TcpOption::Timestamps { tsval: 1, tsecr: 2 })
            .is_err());
        let mut small = [0u8; 5];
        let mut w = TcpOptionWriter::new(&mut small);
        assert_eq!(
            w.push(&TcpOption::Timestamps { tsval: 1, tsecr: 2 }),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn writer_pads_to_four() {
        let mut buf = [0xffu8; 40];
        let mut w = TcpOptionWriter::new(&mut buf);
        w.push(&TcpOption::MaxSegmentSize(1460)).unwrap();
        w.push(&TcpOption::WindowScale(7)).unwrap();
        assert_eq!(w.len(), 7);
        assert_eq!(w.finish().unwrap(), 8);
        assert_eq!(&buf[..9], &[2, 4, 0x05, 0xb4, 3, 3, 7, 0, 0xff]);
        let sack = SackBlocks::new(&[(1, 2), (3, 4)]).unwrap();
        let t = TcpOptions::from_options(&[
            TcpOption::NoOperation,
            TcpOption::NoOperation,
            TcpOption::SackRange(sack),
        ])
        .unwrap();
        assert_eq!(t.len(), 20);
        assert_eq!(t.sack_blocks().unwrap().as_slice(), &[(1, 2), (3, 4)]);
        assert!(SackBlocks::new(&[(0, 0); 5]).is_err());
    }

    #[test]
    fn nat_rewrites_keep_checksum_valid() {
        let mut b = seg(&testdata::TCP_HTTP_GET).to_vec();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        let (lip, rs) = (
            Ipv4Addr::new(192, 168, 7, 188),
            Ipv4Addr::new(192, 168, 7, 27),
        );
        p.rewrite_src_port(5001);
        p.rewrite_dst_port(80);
        p.update_checksum_for_addr(A, lip);
        p.update_checksum_for_addr(B, rs);
        p.rewrite_seq_number(p.seq_number() + 0x8000_0000);
        p.rewrite_ack_number(TcpSeqNumber(0));
        assert!(p.verify_checksum(lip, rs));
        let c = p.checksum();
        p.fill_checksum(lip, rs);
        assert_eq!(p.checksum(), c);
    }

    #[test]
    fn clamp_mss_updates_checksum() {
        let mut b = seg(&testdata::TCP_SYN).to_vec();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.clamp_mss(1460), None);
        assert_eq!(p.clamp_mss(952), Some(960));
        assert!(p.verify_checksum(A, B));
        let t = TcpOptions::from_bytes(p.options()).unwrap();
        assert_eq!(t.max_seg_size(), Some(952));
        // MSS at an odd offset (after one NOP) straddles two checksum words.
        let r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: TcpSeqNumber(7),
            ack_number: TcpSeqNumber(0),
            flags: TcpFlags::SYN,
            window_len: 100,
            urgent_pointer: 0,
            options: TcpOptions::from_options(&[
                TcpOption::NoOperation,
                TcpOption::MaxSegmentSize(0xffff),
            ])
            .unwrap(),
            payload_len: 0,
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), A, B)
            .unwrap();
        let mut p = TcpPacket::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.clamp_mss(1000), Some(0xffff));
        assert!(p.verify_checksum(A, B));
    }

    /// TCP_SYN with a TOA option (client 203.0.113.7:40000) inserted first, built
    /// independently in Python; tshark -V reads "Kind: RFC3692-style Experiment 2 (254),
    /// Length: 8", TCP checksum 0x06ad [correct], IPv4 checksum 0x5b2d [correct].
    const SYN_WITH_TOA: [u8; 82] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x45,
        0x00, 0x00, 0x44, 0xc7, 0xbe, 0x40, 0x00, 0x40, 0x06, 0x5b, 0x2d, 0x0a, 0x63, 0x01, 0x01,
        0x0a, 0x63, 0x02, 0x02, 0x91, 0xcc, 0x1f, 0x40, 0xb3, 0x1f, 0x85, 0x57, 0x00, 0x00, 0x00,
        0x00, 0xc0, 0x02, 0xff, 0x00, 0x06, 0xad, 0x00, 0x00, 0xfe, 0x08, 0x9c, 0x40, 0xcb, 0x00,
        0x71, 0x07, 0x02, 0x04, 0x03, 0xc0, 0x04, 0x02, 0x08, 0x0a, 0x7c, 0x29, 0xd0, 0x73, 0x00,
        0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
    ];

    #[test]
    fn toa_parse_and_insert() {
        let b = seg(&SYN_WITH_TOA);
        let r = assert_emits_same(b, A, B);
        let toa = std::net::SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 7), 40000);
        assert_eq!(r.options.toa(), Some(toa));
        assert_eq!(r.options.max_seg_size(), Some(960));
        // Insert the same option into the captured SYN, as the FullNAT dataplane does.
        let mut frame = testdata::TCP_SYN.to_vec();
        frame.resize(frame.len() + 8, 0);
        let seg_len = testdata::TCP_SYN.len() - 34;
        let opt = TcpOption::Toa {
            port: 40000,
            addr: Ipv4Addr::new(203, 0, 113, 7),
        };
        let new_len = insert_tcp_option(&mut frame[34..], seg_len, &opt).unwrap();
        assert_eq!(new_len, seg_len + 8);
        TcpPacket::new_unchecked(&mut frame[34..]).fill_checksum(A, B);
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[14..]);
        ip.rewrite_total_len((20 + new_len) as u16);
        assert_eq!(frame, SYN_WITH_TOA);
        // A header with 40 bytes of options has no room.
        let mut full = [0u8; 80];
        full[12] = 0xf0;
        assert_eq!(
            insert_tcp_option(&mut full, 60, &opt),
            Err(Error::BufferTooSmall)
        );
        // A 3-byte option is NOP-padded to 4.
        let mut s = seg(&testdata::TCP_SYN).to_vec();
        s.resize(s.len() + 4, 0);
        let n = insert_tcp_option(&mut s, 40, &TcpOption::WindowScale(2)).unwrap();
        assert_eq!(&s[20..24], &[1, 3, 3, 2]);
        assert_eq!(TcpPacket::new_checked(&s[..n]).unwrap().header_len(), 44);
    }

    proptest! {
        #[test]
        fn parse_never_panics(d in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = TcpPacket::new_checked(&d[..]) {
                let _ = TcpRepr::parse(&p, A, B);
                for o in p.options_iter() { let _ = o; }
                let _ = (p.payload(), p.segment_len());
            }
            for o in TcpOptionsIter::new(&d) { let _ = o; }
            let mut buf = d.clone();
            buf.resize(d.len() + 12, 0);
            let _ = insert_tcp_option(&mut buf, d.len(), &TcpOption::Toa { port: 1, addr: A });
            let mut m = d.clone();
            if let Ok(mut p) = TcpPacket::new_checked(&mut m[..]) { let _ = p.clamp_mss(500); }
        }

        #[test]
        fn round_trip(
            (sp, dp, seq, ack, flags, win, urg) in (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), 0u16..0x200, any::<u16>(), any::<u16>()),
            mss in proptest::option::of(any::<u16>()), ws in proptest::option::of(0u8..15),
            ts in proptest::option::of((any::<u32>(), any::<u32>())),
            toa in proptest::option::of((any::<u16>(), any::<u32>())),
            sack in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..3),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut opts = Vec::new();
            if let Some(m) = mss { opts.push(TcpOption::MaxSegmentSize(m)); }
            if let Some(w) = ws { opts.push(TcpOption::NoOperation); opts.push(TcpOption::WindowScale(w)); }
            if let Some((a, b)) = ts { opts.push(TcpOption::Timestamps { tsval: a, tsecr: b }); }
            if let Some((p, a)) = toa { opts.push(TcpOption::Toa { port: p, addr: a.into() }); }
            if !sack.is_empty() { opts.push(TcpOption::SackRange(SackBlocks::new(&sack).unwrap())); }
            let options = match TcpOptions::from_options(&opts) { Ok(o) => o, Err(_) => return Ok(()) };
            let r = TcpRepr {
                src_port: sp, dst_port: dp, seq_number: TcpSeqNumber(seq), ack_number: TcpSeqNumber(ack),
                flags: TcpFlags::from_bits(flags), window_len: win, urgent_pointer: urg, options, payload_len: payload.len(),
            };
            let mut b = vec![0u8; r.buffer_len()];
            b[r.header_len()..].copy_from_slice(&payload);
            r.emit(&mut TcpPacket::new_unchecked(&mut b[..]), A, B).unwrap();
            let p = TcpPacket::new_checked(&b[..]).unwrap();
            prop_assert_eq!(TcpRepr::parse(&p, A, B).unwrap(), r);
            let parsed: Vec<_> = p.options_iter().filter(|o| !matches!(o, Ok(TcpOption::EndOfList))).collect::<Result<_>>().unwrap();
            prop_assert_eq!(parsed, opts);
        }

        #[test]
        fn seq_order_matches_signed_distance(a in any::<u32>(), d in 1u32..0x7fff_ffff) {
            let x = TcpSeqNumber(a);
            prop_assert!(x + d > x);
            prop_assert!(x < x + d);
            prop_assert_eq!((x + d) - x, d as i32);
        }
    }
}
