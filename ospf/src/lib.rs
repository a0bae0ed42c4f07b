//! OSPFv2 (RFC 2328), sans-IO.
//!
//! What this crate does:
//! - encodes and decodes every OSPFv2 packet and LSA ([`packet`], [`lsa`]) with the LSA
//!   Fletcher checksum and the packet Internet checksum ([`checksum`]), and authenticates
//!   packets with null, simple, keyed-MD5 and HMAC-SHA-256 (RFC 5709) keys, rejecting
//!   replayed cryptographic sequence numbers ([`auth`]);
//! - checks received packets per §8.2 ([`validate`]) and names every drop with a `Copy`
//!   [`DropReason`] the daemon can count;
//! - keeps the link-state database with aging, MaxAge flushing, LSRefreshTime refresh,
//!   sequence wrap, MinLSArrival and MinLSInterval ([`lsdb`]);
//! - computes the routing table with SPF: intra-area (incl. stub links), inter-area (as a
//!   non-ABR), AS-external E1/E2 with forwarding addresses, ECMP, a diff against the
//!   previous table, and a route-only recomputation when the tree is unchanged ([`spf`]);
//! - runs broadcast and point-to-point interfaces (DR/BDR election, passive interfaces),
//!   neighbors (DD exchange, requests, retransmission, delayed and direct acks), flooding,
//!   origination of router, network and AS-external LSAs, stub-router (RFC 6987) and
//!   graceful shutdown in [`Instance`], driven with `(now, input)` and polled for packets,
//!   the next deadline and events.
//!
//! What it does not do: open sockets, read clocks, spawn tasks or install routes. The
//! daemon sends each [`Transmit`] on a raw IP socket (protocol 89, TTL 1, multicast
//! 224.0.0.5/6 joined per interface), passes received IP payloads to
//! [`Instance::handle_packet`], calls [`Instance::handle_timeout`] at
//! [`Instance::poll_timeout`], and programs the kernel/RIB from [`Event::RoutesChanged`].
//! Not implemented: more than one area per instance (every interface is in
//! [`InstanceConfig::area_id`]; no ABR function, no summary origination), virtual links,
//! stub/NSSA areas, NBMA and point-to-multipoint networks, TOS routing (TOS metrics are
//! parsed and carried, only TOS 0 is used), demand circuits, graceful restart (RFC 3623),
//! originating opaque LSAs (received ones are stored and flooded), and Appendix E host-bit
//! handling for AS-external Link State IDs of overlapping prefixes.

pub mod auth;
pub mod checksum;
pub mod instance;
pub mod lsa;
pub mod lsdb;
pub mod packet;
pub mod spf;
#[cfg(test)]
mod tests_capture;

pub use instance::{
    Event, ExternalSpec, Instance, InstanceConfig, InterfaceConfig, NetworkType, Transmit,
};
pub use spf::{PathType, Route, RouteDiff};

use std::fmt;
use std::net::Ipv4Addr;

/// Errors from decoding OSPF packets and LSAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the structure it should hold.
    #[error("buffer too short")]
    Truncated,
    /// A length field is inconsistent with the data.
    #[error("inconsistent length field")]
    BadLength,
    /// The OSPF version is not 2.
    #[error("unsupported OSPF version {0}")]
    BadVersion(u8),
    /// Unknown OSPF packet type.
    #[error("unknown packet type {0}")]
    UnknownPacketType(u8),
    /// Unknown authentication type.
    #[error("unknown authentication type {0}")]
    UnknownAuType(u16),
    /// Unknown LS type.
    #[error("unknown LS type {0}")]
    UnknownLsaType(u8),
    /// The LSA's Fletcher checksum is wrong.
    #[error("bad LSA checksum")]
    BadLsaChecksum,
}

/// Result alias for decoding.
pub type Result<T> = core::result::Result<T, Error>;

/// The options field (§A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Options(pub u8);

impl Options {
    /// MT / TOS bit.
    pub const MT: u8 = 0x01;
    /// E: AS-external-LSAs are flooded (not a stub area).
    pub const E: u8 = 0x02;
    /// MC: multicast extensions.
    pub const MC: u8 = 0x04;
    /// N/P: NSSA.
    pub const NP: u8 = 0x08;
    /// EA: external attributes.
    pub const EA: u8 = 0x10;
    /// DC: demand circuits.
    pub const DC: u8 = 0x20;
    /// O: opaque LSAs (RFC 5250).
    pub const O: u8 = 0x40;
    /// DN (RFC 4576).
    pub const DN: u8 = 0x80;
    /// True when `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    /// E bit.
    pub fn e(self) -> bool {
        self.has(Self::E)
    }
    /// MC bit.
    pub fn mc(self) -> bool {
        self.has(Self::MC)
    }
    /// N/P bit.
    pub fn np(self) -> bool {
        self.has(Self::NP)
    }
    /// DC bit.
    pub fn dc(self) -> bool {
        self.has(Self::DC)
    }
    /// O bit.
    pub fn o(self) -> bool {
        self.has(Self::O)
    }
}

/// Why a received packet was dropped; the daemon counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than its header or length field.
    Truncated,
    /// Length field inconsistent.
    BadLength,
    /// Version is not 2.
    BadVersion,
    /// Unknown packet type or malformed body.
    Malformed,
    /// Packet checksum wrong.
    BadChecksum,
    /// Area ID does not match the receiving interface (§8.2).
    AreaMismatch,
    /// Source not on the interface's subnet on a broadcast network (§8.2).
    SourceNotOnSubnet,
    /// Destination is AllDRouters but this router is not DR/BDR, or otherwise wrong (§8.2).
    BadDestination,
    /// AuType differs from the interface's.
    AuthTypeMismatch,
    /// Password, key id or digest wrong.
    AuthFailure,
    /// Cryptographic sequence number lower than the last accepted (§D.5.2).
    ReplayedSequence,
    /// Sent by this router.
    OwnPacket,
    /// Received on an interface not configured, down or passive.
    UnknownInterface,
    /// Hello parameters (mask, intervals, E bit) mismatch (§10.5).
    HelloMismatch,
    /// Non-hello from a router that is not a neighbor in a suitable state.
    NoNeighbor,
    /// Database Description MTU larger than the interface's (§10.6).
    MtuMismatch,
}

/// An IPv4 prefix (address masked to its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Net {
    /// A prefix; host bits are cleared. `None` when `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        Some(Self {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask_u32(len)),
            len,
        })
    }
    /// A prefix from an address and a netmask; `None` when the mask is not contiguous.
    pub fn from_mask(addr: Ipv4Addr, mask: Ipv4Addr) -> Option<Self> {
        Self::new(addr, lsa::mask_len(mask)?)
    }
    fn mask_u32(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }
    /// Network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }
    /// True for the default route 0.0.0.0/0.
    pub fn is_default(&self) -> bool {
        self.len == 0
    }
    /// Netmask.
    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_u32(self.len))
    }
    /// True when `a` is inside the prefix.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & Self::mask_u32(self.len) == u32::from(self.addr)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// AllSPFRouters (224.0.0.5).
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
/// AllDRouters (224.0.0.6).
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);

/// What §8.2 needs to know about the receiving interface.
#[derive(Debug, Clone, Copy)]
pub struct RxContext<'a> {
    /// This router's ID.
    pub router_id: Ipv4Addr,
    /// Area of the interface.
    pub area_id: Ipv4Addr,
    /// Interface address and prefix.
    pub if_net: Ipv4Net,
    /// Interface address.
    pub if_addr: Ipv4Addr,
    /// True for point-to-point interfaces (no subnet check).
    pub point_to_point: bool,
    /// True when this router is DR or BDR on the interface (may receive AllDRouters).
    pub dr_or_bdr: bool,
    /// The interface's authentication.
    pub auth: &'a AuthKeyRef,
}

/// Alias used by [`RxContext`].
pub type AuthKeyRef = auth::AuthKey;

/// Checks a received packet per §8.2 and §D and parses it. `last_seq(router_id, src)`
/// returns the neighbor's last accepted cryptographic sequence number. Returns the parsed
/// packet and, for AuType 2, its sequence number.
pub fn validate(
    ctx: &RxContext<'_>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    bytes: &[u8],
    last_seq: impl Fn(Ipv4Addr, Ipv4Addr) -> Option<u32>,
) -> core::result::Result<(packet::Repr, Option<u32>), DropReason> {
    let p = packet::Packet::new_checked(bytes).map_err(|e| match e {
        Error::Truncated => DropReason::Truncated,
        _ => DropReason::BadLength,
    })?;
    if p.version() != 2 {
        return Err(DropReason::BadVersion);
    }
    if p.area_id() != ctx.area_id {
        return Err(DropReason::AreaMismatch);
    }
    if p.router_id() == ctx.router_id || src == ctx.if_addr {
        return Err(DropReason::OwnPacket);
    }
    if dst == ALL_D_ROUTERS && !ctx.dr_or_bdr {
        return Err(DropReason::BadDestination);
    }
    if dst != ALL_D_ROUTERS && dst != ALL_SPF_ROUTERS && dst != ctx.if_addr {
        return Err(DropReason::BadDestination);
    }
    if !ctx.point_to_point && !ctx.if_net.contains(src) {
        return Err(DropReason::SourceNotOnSubnet);
    }
    let seq = auth::verify(bytes, ctx.auth, last_seq(p.router_id(), src))?;
    let repr = packet::Repr::parse(&p).map_err(|e| match e {
        Error::Truncated => DropReason::Truncated,
        Error::BadLength => DropReason::BadLength,
        Error::BadVersion(_) => DropReason::BadVersion,
        _ => DropReason::Malformed,
    })?;
    Ok((repr, seq))
}
