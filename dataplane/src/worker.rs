//! The packet path of one forwarding worker.
//!
//! A [`Worker`] takes a burst of [`Frame`]s (Ethernet frames in caller-owned buffers with
//! headroom and tailroom, like an mbuf) and a `now`, rewrites each frame in place and
//! returns an [`Action`] per frame. The stages are: Ethernet → ARP or IPv4 validation →
//! connection lookup (both directions) → new connection (service, scheduler, local
//! address) → rewrite (FullNAT, NAT, DR, TUN; checksums updated incrementally; TOA) →
//! route (FIB, neighbor) — or ICMP echo on a VIP, ICMP error translation, transit
//! forwarding with TTL decrement and ICMP time exceeded, punt to the kernel, or a drop
//! with a [`DropReason`] counted per reason. Nothing allocates or locks per packet.
//!
//! Established fast path: a pure ACK / data segment of an established FullNAT
//! connection is recognised from fixed offsets of an option-less IPv4 header, looked up
//! from the wire words of its tuple (home index slot inline, probing in a call), checked
//! against its real server's slot in a per-worker table direct-mapped by server id (the
//! service's client-address policy and timeout, both counters: no service lookup),
//! rewritten with one fused RFC 1624 update per checksum and sent to a next hop taken
//! from a small per-worker cache (single-path routes with a resolved neighbor; emptied
//! when the FIB is swapped or the neighbor table changes). A burst's consecutive
//! fast-path frames run in one loop; the first frame it declines goes through the
//! general path before the loop resumes, so frames are handled in order. Worker
//! counters are added once per burst.
//! Its IPv4 header checksum check is skipped only for frames whose
//! [`Frame::ip_csum_ok`] the receive path set (the NIC verified it); by default it is
//! verified in software, and the general path always verifies. Anything else — or any check that fails — goes through the general path above, which
//! produces the same bytes and counts.
//!
//! SYN proxy: data carried by the client's cookie-validating ACK is held (a fixed pool,
//! [`SYNPROXY_HELD`] slots) and delivered with the ACK that completes the server
//! handshake, as DPVS replays its saved ACK mbuf; repeated identical server ACKs are cut
//! after [`SYNPROXY_DUP_ACK_THRESH`] (DPVS ACK-storm defence).
//!
//! Ownership between workers: inbound flows belong to the worker [`flow_owner`] picks
//! (the stand-in for NIC RSS), FullNAT replies to the worker owning the local port
//! ([`crate::laddr::owner_of_port`]). A packet that reaches another worker and has no
//! entry there is returned as [`Action::Handover`] with the owner's id, and counted.

use crate::conn::{flags as cflags, Conn, ConnId, ConnTable, Dir, NewConn, TcpState, Timeouts};
use crate::fib::{Fib, FibHandle};
use crate::flow::{FlowKey, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use crate::laddr::owner_of_port;
use crate::neigh::{NeighEvent, NeighTable, Resolve, QUEUE_LEN};
use crate::service::{ClientAddr, Command, Forward, SchedFail, ServiceTable, SvcError};
use crate::synproxy::{CookieData, SynCookies};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use wire::{checksum, Ipv4Packet, TcpOption, TcpPacket, TcpSeqNumber, UdpPacket};

const ETH_LEN: usize = 14;
const ETH_IPV4: [u8; 2] = [0x08, 0x00];
const ETH_ARP: [u8; 2] = [0x08, 0x06];
const TOA_LEN: usize = 8;
const DEFAULT_TTL: u8 = 64;
const SYN_SECRET_SALT: u64 = 0x5359_4e43_4f4f_4b49;
/// SYN proxy: SYN resends to a silent server before client segments are dropped.
pub const SYNPROXY_MAX_RETRIES: u16 = 3;
/// SYN proxy: window scale advertised to clients in the cookie SYN-ACK (real servers are
/// expected to use the same, as with DPVS).
pub const SYNPROXY_WSCALE: u8 = 7;
/// SYN proxy ACK-storm defence (DPVS `dup_ack_thresh`): after this many consecutive
/// server→client ACKs of a SYN-proxied connection with the same sequence and
/// acknowledgment numbers, further identical ones are dropped and counted
/// ([`DropReason::AckStorm`]) until the numbers move.
pub const SYNPROXY_DUP_ACK_THRESH: u16 = 10;
/// SYN proxy: connections whose cookie-validating ACK carried data that can be held at
/// once (per worker); the data goes to the server with our ACK completing its handshake.
pub const SYNPROXY_HELD: usize = 64;
/// SYN proxy: largest payload held from a cookie-validating ACK (one MSS).
pub const SYNPROXY_HELD_MAX: usize = 1460;
/// Slots of the ACK-storm side table (direct-mapped by connection id).
const STORM_SLOTS: usize = 1024;
const NO_CONN: u32 = u32::MAX;

/// One frame in a caller-owned buffer: the frame occupies `buf[start..start + len]`; the
/// bytes before are headroom (for encapsulation), the bytes after tailroom (for TOA).
#[derive(Debug)]
pub struct Frame<'a> {
    buf: &'a mut [u8],
    start: usize,
    len: usize,
    /// Port the frame was received on.
    pub port: u16,
    /// Caller's handle for the buffer (e.g. an mbuf index), queued while a neighbor
    /// resolves and handed back by [`Worker::drain_released`].
    pub ticket: u32,
    /// Set by the receive path when the NIC has verified the IPv4 header checksum of
    /// this frame (DPDK: `RTE_MBUF_F_RX_IP_CKSUM_GOOD` in the mbuf's `ol_flags`). The
    /// established fast path then skips its own verification. False from
    /// [`Frame::new`]: without the flag every header checksum is verified in software.
    /// Only the IPv4 header checksum is covered (the TCP checksum is updated
    /// incrementally and never verified on the forwarding path).
    pub ip_csum_ok: bool,
}

impl<'a> Frame<'a> {
    /// A frame of `len` bytes at `start` in `buf`; `None` when it does not fit.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize, port: u16) -> Option<Self> {
        if start.checked_add(len)? > buf.len() {
            return None;
        }
        Some(Frame {
            buf,
            start,
            len,
            port,
            ticket: 0,
            ip_csum_ok: false,
        })
    }

    /// The frame bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or(&[])
    }

    /// The frame bytes, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buf
            .get_mut(self.start..self.start + self.len)
            .unwrap_or(&mut [])
    }

    /// Frame length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes before the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.start - self.len
    }

    /// Grows the frame at the front by `n` bytes (uninitialised content).
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    /// Changes the length (within the buffer).
    fn set_len(&mut self, len: usize) -> bool {
        if self.start + len > self.buf.len() {
            return false;
        }
        self.len = len;
        true
    }

    /// Bytes from the frame start to the end of the buffer (frame + tailroom).
    fn with_tail(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..).unwrap_or(&mut [])
    }
}

macro_rules! reasons {
    ($($(#[$m:meta])* $v:ident,)*) => {
        /// Why a frame was dropped; each reason has its own counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($(#[$m])* $v,)* }
        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$v,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// A short snake_case name (metric label).
            pub fn name(self) -> &'static str {
                match self { $(DropReason::$v => stringify!($v),)* }
            }
        }
    };
}

reasons! {
    /// Shorter than an Ethernet header, or a header length / total length that lies.
    Malformed,
    /// Destination MAC is neither ours nor broadcast / multicast.
    NotForUs,
    /// Neither IPv4 nor ARP (and not punted).
    UnsupportedEtherType,
    /// IPv4 header checksum wrong.
    BadChecksum,
    /// Fragment addressed to a virtual service.
    Fragment,
    /// TCP / UDP header missing or truncated.
    BadL4,
    /// Virtual address but no service for this protocol and port.
    NoService,
    /// TCP segment without SYN and no connection.
    NotSyn,
    /// Refused by the service's allow / deny lists.
    Denied,
    /// No usable real server.
    NoServer,
    /// Connection table full.
    TableFull,
    /// FullNAT local ports of this worker exhausted.
    LaddrExhausted,
    /// Packet to a local (FullNAT) address with no connection.
    NoConnection,
    /// No route to the destination.
    NoRoute,
    /// TTL expired in transit and no ICMP could be sent.
    TtlExpired,
    /// Neighbor queue or table full, or resolution failed.
    NeighFull,
    /// No headroom / tailroom or MTU for an encapsulation.
    NoRoom,
    /// ARP that is not ours to answer.
    ArpIgnored,
    /// ICMP error quoting no tracked connection.
    IcmpNoConnection,
    /// ICMP message the dataplane does not handle on a VIP.
    IcmpUnhandled,
    /// SYN proxy: an ACK whose cookie does not verify (ACK flood or stale).
    BadCookie,
    /// SYN proxy: client segment while the server handshake is pending, retries spent.
    SynProxyPending,
    /// SYN proxy: repeated server ACK beyond [`SYNPROXY_DUP_ACK_THRESH`] (ACK storm).
    AckStorm,
    /// New connection to a virtual address VRRP does not hold on this node (Backup,
    /// Fault): see [`crate::service::Command::SetVipOwned`].
    VipNotOwned,
}

/// What the caller does with a processed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Transmit the rewritten frame on `port`.
    Forward {
        /// Output port.
        port: u16,
    },
    /// Transmit the frame, turned into an answer (ARP reply, ICMP), on `port`.
    Reply {
        /// Output port (the input port).
        port: u16,
    },
    /// Give the unchanged frame to the kernel twin of its port.
    Punt,
    /// Free the frame.
    Drop(DropReason),
    /// The frame belongs to another worker's connection: pass it there, unchanged.
    Handover {
        /// The owning worker.
        worker: u16,
    },
    /// Rewritten but the next hop is unresolved: the worker keeps the frame's ticket;
    /// keep the frame until [`Worker::drain_released`] returns it (with its MAC) or
    /// [`Worker::tick`] drops it. When `request`, send an ARP request for `neighbor`
    /// (built by [`Worker::arp_request`]).
    Pending {
        /// Output port.
        port: u16,
        /// Next hop being resolved.
        neighbor: Ipv4Addr,
        /// An ARP request is due now.
        request: bool,
    },
}

/// Outcome of the PROXY header stage.
enum ProxyStep {
    /// Nothing to insert.
    None,
    /// Header inserted in this segment.
    Inserted,
    /// No room in the buffer or the MTU.
    NoRoom,
}

/// One port of the worker's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Addresses owned by the kernel twin (traffic to them is punted); the first one is
    /// the source of ICMP errors and tunnels sent from this port.
    pub addrs: Vec<Ipv4Addr>,
    /// MTU (IP bytes).
    pub mtu: u16,
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's id.
    pub id: u16,
    /// Number of workers.
    pub workers: u16,
    /// Ports, indexed by port number.
    pub ports: Vec<PortConfig>,
    /// Maximum connections (and templates) of this worker.
    pub conn_capacity: u32,
    /// Hash seed of the connection table.
    pub seed: u64,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Neighbor table size.
    pub neigh_capacity: usize,
}

/// Per-worker outcome counters (written by the worker, read by anyone).
#[derive(Debug)]
pub struct WorkerCounters {
    /// Frames received.
    pub rx: crate::service::Counter,
    /// Forwarded.
    pub forwarded: crate::service::Counter,
    /// Answered (ARP, ICMP).
    pub replied: crate::service::Counter,
    /// Punted.
    pub punted: crate::service::Counter,
    /// Handed to another worker.
    pub handed_over: crate::service::Counter,
    /// Held for neighbor resolution.
    pub pending: crate::service::Counter,
    /// SYN cookies sent by the SYN proxy (a subset of `replied`).
    pub syn_cookies: crate::service::Counter,
    /// SYN proxy: data carried by a cookie-validating ACK, held for the server.
    pub syn_data_held: crate::service::Counter,
    /// SYN proxy: data carried by a cookie-validating ACK that could not be held or
    /// delivered (too long, no free slot, PROXY protocol service, no room): the client
    /// retransmits it.
    pub syn_data_lost: crate::service::Counter,
    /// Drops by reason, indexed by `DropReason as usize`.
    pub drops: [crate::service::Counter; DropReason::COUNT],
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx: Default::default(),
            forwarded: Default::default(),
            replied: Default::default(),
            punted: Default::default(),
            handed_over: Default::default(),
            pending: Default::default(),
            syn_cookies: Default::default(),
            syn_data_held: Default::default(),
            syn_data_lost: Default::default(),
            drops: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl WorkerCounters {
    /// Total drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|c| c.get()).sum()
    }

    /// Drops for one reason.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops.get(r as usize).map_or(0, |c| c.get())
    }
}

/// Events from [`Worker::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEvent {
    /// Send an ARP request for `target` on `port` (see [`Worker::arp_request`]).
    ArpRequest {
        /// Port.
        port: u16,
        /// Address to resolve.
        target: Ipv4Addr,
    },
    /// Free the frame with this ticket (its neighbor did not resolve).
    DropTicket(u32),
}

/// The worker an inbound flow belongs to (stand-in for the NIC's RSS hash).
#[inline]
pub fn flow_owner(key: &FlowKey, workers: u16) -> u16 {
    ((u64::from(key.ecmp_hash()) * u64::from(workers.max(1))) >> 32) as u16
}

/// A forwarding worker (see the module documentation).
#[derive(Debug)]
pub struct Worker {
    cfg: WorkerConfig,
    conns: ConnTable,
    services: ServiceTable,
    fib: Arc<FibHandle>,
    neigh: NeighTable<(u32, u16)>,
    released: Vec<(u32, u16, [u8; 6])>,
    counters: Arc<WorkerCounters>,
    cookies: SynCookies,
    /// Next hops of recent destinations for the established fast path (see
    /// [`RouteSlot`]); valid for `route_fib` and until the neighbor table changes.
    route_cache: Box<[RouteSlot; ROUTE_CACHE]>,
    route_fib: Option<Arc<Fib>>,
    /// Each port's MAC as [`mac_word`] packs it, shifted left by 16 bits: the first 8
    /// bytes of a frame to it read natively and shifted the same way (the fast path's
    /// destination check).
    port_macs: Box<[u64]>,
    /// SYN proxy ACK-storm state of recent connections (see [`StormSlot`]).
    storm: Box<[StormSlot; STORM_SLOTS]>,
    /// SYN proxy: data of cookie-validating ACKs waiting for the server handshake.
    held: Vec<HeldData>,
    /// `SYNPROXY_HELD` buffers of `SYNPROXY_HELD_MAX` bytes for `held`.
    held_bytes: Vec<u8>,
    /// Frames the fast path took (tests check which path a frame went).
    #[cfg(test)]
    fast_hits: u64,
}

/// Last server ACK of one SYN-proxied connection (DPVS `last_seq`, `last_ack_seq`,
/// `dup_ack_cnt`), kept beside the 64-byte entry; two connections sharing a slot
/// overwrite each other, which only restarts the count.
#[derive(Debug, Clone, Copy)]
struct StormSlot {
    conn: u32,
    seq: u32,
    ack: u32,
    dup: u16,
}

/// Payload of a cookie-validating ACK held until the server's SYN-ACK.
#[derive(Debug, Clone, Copy)]
struct HeldData {
    /// Connection id, or `NO_CONN` when free.
    conn: u32,
    /// Client address and port (guards against a reused connection id).
    caddr: u32,
    cport: u16,
    len: u16,
    /// Tick after which the slot is free again (the pending connection's timeout).
    expires: u32,
}

/// Slots of the per-worker next-hop cache (direct-mapped by destination address).
const ROUTE_CACHE: usize = 256;

/// One cached next hop: a single-path route to `dst` (ECMP routes are never cached, the
/// choice depends on the flow) whose neighbor MAC was known.
#[derive(Debug, Clone, Copy, Default)]
struct RouteSlot {
    dst: u32,
    valid: bool,
    port: u16,
    /// Destination MAC then source MAC: the first 12 bytes of the Ethernet header.
    macs: [u8; 12],
}

struct Ctx<'f> {
    fib: &'f Fib,
    now: Duration,
}

/// True when an IPv4 header (at most 60 bytes) sums to 0xffff (RFC 1071).
#[inline]
fn header_sum_ok(h: &[u8]) -> bool {
    let mut acc = 0u32;
    for w in h.chunks_exact(2) {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    !h.is_empty() && acc == 0xffff
}

/// A MAC address as one word (little-endian, two high bytes zero), to compare a
/// frame's destination with one instruction.
#[inline(always)]
fn mac_word(m: &[u8; 6]) -> u64 {
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
}

/// Folds a 64-bit ones'-complement accumulator to 16 bits; the same value as
/// `checksum::fold` for every input, in fewer steps: adding a word to itself rotated by
/// half its width leaves the end-around-carry sum of its halves in the high half (the
/// carry out of the low half lands in the high one, which cannot overflow again).
#[inline(always)]
fn fold_fast(acc: u64) -> u16 {
    let s = (acc.wrapping_add(acc.rotate_left(32)) >> 32) as u32;
    (s.wrapping_add(s.rotate_left(16)) >> 16) as u16
}

/// [`header_sum_ok`] for an option-less IPv4 header in a fixed-size frame head: the
/// RFC 1071 sum taken over five 32-bit words in native byte order (the ones'-complement
/// sum is independent of byte order and word size once folded, RFC 1071 §2), compared
/// with 0xffff, which reads the same in either order.
#[inline(always)]
fn ip_header_ok(h: &[u8; ETH_LEN + 40]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = w(ETH_LEN) + w(ETH_LEN + 4) + w(ETH_LEN + 8) + w(ETH_LEN + 12) + w(ETH_LEN + 16);
    fold_fast(acc) == 0xffff
}

/// FullNAT rewrite of an option-less IPv4 + TCP head: source and destination address
/// and port, sequence and (the ACK flag being set) acknowledgment shifts, with one fused
/// RFC 1624 update per checksum (HC' = ~(~HC + ~m + m'), the 32-bit fields taken whole:
/// a 32-bit word folds to the sum of its halves). The sums are taken on the bytes as
/// they lie, in native byte order (RFC 1071 §2: the ones'-complement sum of byte-swapped
/// words is the byte-swapped sum, and folding keeps the unique representative), so old
/// fields and checksums are read and the checksums written without byte swaps. The
/// bytes are the ones `Worker::nat_rewrite_fast` writes: both sums are zero only when
/// no field changes from all-ones to zero, the same condition there.
#[inline(always)]
fn rewrite_fixed(
    h: &mut [u8; ETH_LEN + 40],
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    seq_add: u32,
    ack_add: u32,
) {
    const IP: usize = ETH_LEN;
    const L4: usize = ETH_LEN + 20;
    #[inline(always)]
    fn ne32(h: &[u8; ETH_LEN + 40], at: usize) -> u32 {
        u32::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
    }
    #[inline(always)]
    fn delta32(old: u32, new: u32) -> u64 {
        u64::from(!old) + u64::from(new)
    }
    // New fields as they will lie in memory (big-endian bytes read natively).
    let src_ne = u32::from_ne_bytes(src.to_be_bytes());
    let dst_ne = u32::from_ne_bytes(dst.to_be_bytes());
    let ports_new = (u32::from(sport) << 16) | u32::from(dport);
    let ports_ne = u32::from_ne_bytes(ports_new.to_be_bytes());
    let ip_acc = delta32(ne32(h, IP + 12), src_ne) + delta32(ne32(h, IP + 16), dst_ne);
    let mut l4_acc = ip_acc + delta32(ne32(h, L4), ports_ne);
    h[IP + 12..IP + 16].copy_from_slice(&src_ne.to_ne_bytes());
    h[IP + 16..IP + 20].copy_from_slice(&dst_ne.to_ne_bytes());
    h[L4..L4 + 4].copy_from_slice(&ports_ne.to_ne_bytes());
    if seq_add != 0 {
        let old = ne32(h, L4 + 4);
        let new = u32::from_be_bytes(old.to_ne_bytes()).wrapping_add(seq_add);
        let new_ne = u32::from_ne_bytes(new.to_be_bytes());
        l4_acc += delta32(old, new_ne);
        h[L4 + 4..L4 + 8].copy_from_slice(&new_ne.to_ne_bytes());
    }
    if ack_add != 0 && h[L4 + 13] & 0x10 != 0 {
        let old = ne32(h, L4 + 8);
        let new = u32::from_be_bytes(old.to_ne_bytes()).wrapping_add(ack_add);
        let new_ne = u32::from_ne_bytes(new.to_be_bytes());
        l4_acc += delta32(old, new_ne);
        h[L4 + 8..L4 + 12].copy_from_slice(&new_ne.to_ne_bytes());
    }
    let fold = |hc: u16, acc: u64| -> u16 { !fold_fast(u64::from(!hc) + acc) };
    let ihc = u16::from_ne_bytes([h[IP + 10], h[IP + 11]]);
    h[IP + 10..IP + 12].copy_from_slice(&fold(ihc, ip_acc).to_ne_bytes());
    let thc = u16::from_ne_bytes([h[L4 + 16], h[L4 + 17]]);
    h[L4 + 16..L4 + 18].copy_from_slice(&fold(thc, l4_acc).to_ne_bytes());
}

/// Ports of a TCP/UDP header at `l4`.
fn ports(l4: &[u8]) -> Option<(u16, u16)> {
    match l4 {
        [a, b, c, d, ..] => Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
        _ => None,
    }
}

impl Worker {
    /// A worker with an empty service table, publishing nothing yet.
    pub fn new(cfg: WorkerConfig, fib: Arc<FibHandle>) -> Self {
        let conns = ConnTable::new(cfg.conn_capacity, cfg.seed);
        let services = ServiceTable::new(cfg.id, cfg.workers);
        let neigh = NeighTable::new(cfg.neigh_capacity);
        Worker {
            conns,
            services,
            fib,
            neigh,
            released: Vec::with_capacity(cfg.neigh_capacity.max(1) * QUEUE_LEN),
            counters: Arc::new(WorkerCounters::default()),
            cookies: SynCookies::new(crate::flow::mix64(cfg.seed ^ SYN_SECRET_SALT)),
            route_cache: Box::new([RouteSlot::default(); ROUTE_CACHE]),
            route_fib: None,
            port_macs: cfg.ports.iter().map(|p| mac_word(&p.mac) << 16).collect(),
            storm: Box::new(
                [StormSlot {
                    conn: NO_CONN,
                    seq: 0,
                    ack: 0,
                    dup: 0,
                }; STORM_SLOTS],
            ),
            held: vec![
                HeldData {
                    conn: NO_CONN,
                    caddr: 0,
                    cport: 0,
                    len: 0,
                    expires: 0,
                };
                SYNPROXY_HELD
            ],
            held_bytes: vec![0; SYNPROXY_HELD * SYNPROXY_HELD_MAX],
            #[cfg(test)]
            fast_hits: 0,
            cfg,
        }
    }

    /// Applies a control-plane command to the service table (between bursts).
    pub fn apply(&mut self, cmd: Command) -> Result<(), SvcError> {
        self.services.apply(cmd)
    }

    /// Seeds where the FullNAT local-address pools of services added from now on start
    /// handing out ports ([`crate::laddr::LaddrPool::new_seeded`]). The daemon passes a
    /// random seed per run so a restarted node does not reuse its previous run's ports in
    /// the same order (the real servers may still hold them in TIME_WAIT). Without it
    /// (seed 0) pools start at their lowest port.
    pub fn set_laddr_seed(&mut self, seed: u64) {
        self.services.set_laddr_seed(seed);
    }

    /// ipvsadm `--set tcp tcpfin udp`.
    pub fn set_timeouts(&mut self, t: Timeouts) {
        self.cfg.timeouts = t;
    }

    /// The services.
    pub fn services(&self) -> &ServiceTable {
        &self.services
    }

    /// The connection table.
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// The counters (share the `Arc` with readers).
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Records a neighbor (e.g. a static entry or one the kernel twin learned).
    pub fn learn_neighbor(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Duration) {
        let q = self.neigh.learn(u32::from(ip), mac, now, true);
        self.flush_routes();
        self.release(q, mac);
    }

    fn release(&mut self, q: [Option<(u32, u16)>; QUEUE_LEN], mac: [u8; 6]) {
        for (t, p) in q.into_iter().flatten() {
            if self.released.len() < self.released.capacity() {
                self.released.push((t, p, mac));
            }
        }
    }

    /// Hands back the tickets of pending frames whose neighbor resolved, with the output
    /// port and MAC: write the MAC into the frame's destination and transmit.
    pub fn drain_released(&mut self, mut f: impl FnMut(u32, u16, [u8; 6])) {
        for (t, p, m) in self.released.drain(..) {
            f(t, p, m);
        }
    }

    /// Timers: expires connections (releasing their ports and counts) and ages
    /// neighbors. Call every tick (e.g. 100 ms).
    pub fn tick(&mut self, now: Duration, mut ev: impl FnMut(WorkerEvent)) -> usize {
        let services = &mut self.services;
        let n = self.conns.expire(now, |c| {
            if c.is_template() {
                return;
            }
            if let Some(s) = services.conn_released(c.svc) {
                s.conn_closed(c.rs, c.flags & cflags::ACTIVE != 0);
                if Forward::from_u8(c.mode()) == Forward::FullNat {
                    s.laddr().release(c.laddr, c.lport);
                }
            }
        });
        let fib = self.fib.load();
        self.flush_routes();
        self.neigh.tick(now, |e| match e {
            NeighEvent::Request(ip) => {
                let port = fib.select(ip, 0).map_or(0, |n| n.port);
                ev(WorkerEvent::ArpRequest {
                    port,
                    target: Ipv4Addr::from(ip),
                });
            }
            NeighEvent::Drop((t, _)) => ev(WorkerEvent::DropTicket(t)),
        });
        n
    }

    /// Writes an ARP request for `target` from `port` into `buf`; returns its length
    /// (42) or `None` when `buf` is too short or the port unknown.
    pub fn arp_request(&self, port: u16, target: Ipv4Addr, buf: &mut [u8]) -> Option<usize> {
        let p = self.cfg.ports.get(usize::from(port))?;
        let src = p.addrs.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let b = buf.get_mut(..ETH_LEN + 28)?;
        b[0..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&p.mac);
        b[12..14].copy_from_slice(&ETH_ARP);
        let repr = wire::ArpRepr::request(wire::MacAddr(p.mac), src, target);
        repr.emit(&mut wire::ArpPacket::new_unchecked(&mut b[ETH_LEN..]))
            .ok()?;
        Some(ETH_LEN + 28)
    }

    fn count(&self, a: Action) -> Action {
        let c = &self.counters;
        match a {
            Action::Forward { .. } => c.forwarded.add(1),
            Action::Reply { .. } => c.replied.add(1),
            Action::Punt => c.punted.add(1),
            Action::Handover { .. } => c.handed_over.add(1),
            Action::Pending { .. } => c.pending.add(1),
            Action::Drop(r) => {
                if let Some(d) = c.drops.get(r as usize) {
                    d.add(1);
                }
            }
        }
        a
    }

    /// Processes a burst: `actions[i]` receives the fate of `frames[i]` (the shorter of
    /// the two slices bounds the burst).
    pub fn process(&mut self, now: Duration, frames: &mut [Frame<'_>], actions: &mut [Action]) {
        let handle = Arc::clone(&self.fib);
        let fib = handle.load();
        self.check_fib(&fib);
        let ctx = Ctx { fib: &fib, now };
        let now_ticks = crate::conn::ticks(now);
        let est = crate::conn::ticks(self.cfg.timeouts.tcp(TcpState::Established));
        // The wheel does not move during a burst: the default deadline is computed once.
        let est_deadline = self.conns.deadline_at(now_ticks, est);
        let n = frames.len().min(actions.len());
        let (frames, actions) = (&mut frames[..n], &mut actions[..n]);
        let mut fast = 0u64;
        let mut i = 0;
        while i < n {
            // A run of fast-path frames, up to the first that is not one (order kept).
            let (done, fwd) = self.fast_run(&ctx, now_ticks, est_deadline, i, frames, actions);
            fast += fwd;
            i = done;
            if let (Some(f), Some(a)) = (frames.get_mut(i), actions.get_mut(i)) {
                let r = self.frame(&ctx, f);
                *a = self.count(r);
            }
            i += 1;
        }
        self.counters.rx.add(n as u64);
        self.counters.forwarded.add(fast);
    }

    /// The fast path over `frames[from..]` while it applies: returns the index of the
    /// first frame it left alone (or the length) and how many it forwarded (counted by
    /// the caller); other outcomes of fast-path frames are counted here.
    #[inline(never)]
    fn fast_run(
        &mut self,
        ctx: &Ctx<'_>,
        now_ticks: u32,
        est_deadline: u32,
        from: usize,
        frames: &mut [Frame<'_>],
        actions: &mut [Action],
    ) -> (usize, u64) {
        let mut fwd = 0u64;
        let mut i = from;
        while let (Some(f), Some(a)) = (frames.get_mut(i), actions.get_mut(i)) {
            *a = match self.fast(ctx, now_ticks, est_deadline, f) {
                Some(Action::Forward { port }) => {
                    fwd += 1;
                    // Rebuilt rather than copied: two stores instead of the whole enum.
                    Action::Forward { port }
                }
                Some(r) => self.count(r),
                None => break,
            };
            i += 1;
        }
        (i, fwd)
    }

    /// Processes one frame.
    pub fn process_one(&mut self, now: Duration, frame: &mut Frame<'_>) -> Action {
        let handle = Arc::clone(&self.fib);
        let fib = handle.load();
        self.check_fib(&fib);
        let ctx = Ctx { fib: &fib, now };
        self.counters.rx.add(1);
        let est = crate::conn::ticks(self.cfg.timeouts.tcp(TcpState::Established));
        let now_ticks = crate::conn::ticks(now);
        let est_deadline = self.conns.deadline_at(now_ticks, est);
        let r = match self.fast(&ctx, now_ticks, est_deadline, frame) {
            Some(r) => r,
            None => self.frame(&ctx, frame),
        };
        self.count(r)
    }

    /// Empties the next-hop cache when a different FIB has been published (the cache
    /// holds the FIB it was filled from, so its address cannot be reused meanwhile).
    #[inline]
    fn check_fib(&mut self, fib: &Arc<Fib>) {
        if !self.route_fib.as_ref().is_some_and(|a| Arc::ptr_eq(a, fib)) {
            self.route_fib = Some(Arc::clone(fib));
            self.flush_routes();
        }
    }

    /// Empties the next-hop cache (the neighbor table changed).
    fn flush_routes(&mut self) {
        for s in self.route_cache.iter_mut() {
            s.valid = false;
        }
    }

    /// The established fast path: a unicast IPv4 TCP segment without options beyond
    /// what the general path ignores, carrying only ACK (PSH, URG, ECE, CWR allowed), of
    /// an established FullNAT connection whose service needs no TOA or PROXY header on
    /// it. Checks everything first and returns `None`, with nothing changed, for any
    /// other frame: the general path ([`frame`](Self::frame)) then handles it. The
    /// bytes written and counters moved are the ones the general path would produce.
    #[inline(always)]
    fn fast(
        &mut self,
        ctx: &Ctx<'_>,
        now_ticks: u32,
        est_deadline: u32,
        f: &mut Frame<'_>,
    ) -> Option<Action> {
        const HDR: usize = ETH_LEN + 20 + 20;
        let mine = *self.port_macs.get(usize::from(f.port))?;
        // The head, borrowed once for checks and rewrite (the frame's fields are split so
        // its length can be trimmed while the head is held).
        let frame_len = f.len;
        if frame_len < HDR {
            return None;
        }
        // `start + len` is within the buffer (`Frame` keeps it so), hence so is the head.
        let h: &mut [u8; HDR] = f.buf.get_mut(f.start..)?.first_chunk_mut()?;
        let (a, ports) = {
            // Only ACK among SYN/FIN/RST/ACK (checked first: SYN floods leave here).
            if h[47] & 0x17 != 0x10 {
                return None;
            }
            // Ethertype IPv4, version 4 with a 20-byte header (bytes 12..15), and not a
            // fragment: MF clear, offset 0 (bytes 20..22, DF ignored), TCP (byte 23).
            let be = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
            if be(12) & 0xffff_ff00 != 0x0800_4500
                || be(20) & 0x3fff_00ff != u32::from(PROTO_TCP)
                || u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) << 16
                    != mine
            {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
            if total < 40 || ETH_LEN + total > frame_len {
                return None;
            }
            // The NIC's verdict when it gave one, else verified here.
            if !f.ip_csum_ok && !ip_header_ok(h) {
                return None;
            }
            // The key as the table packs it: addresses, then ports.
            (
                u64::from_be_bytes([h[26], h[27], h[28], h[29], h[30], h[31], h[32], h[33]]),
                u32::from_be_bytes([h[34], h[35], h[36], h[37]]),
            )
        };
        let (ent, c) = self.conns.lookup_tcp(a, ports)?;
        let id = ent >> 1;
        let inbound = ent & 1 == 0;
        // Read again rather than kept across the lookup (fewer values live in it).
        let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
        let doff = h[46] >> 4;
        if c.mode() != Forward::FullNat as u8 || c.state() != TcpState::Established {
            return None;
        }
        // Sequence shifts with options present need the SACK blocks adjusted too.
        if (c.syn_delta != 0 || c.proxy_len != 0) && doff != 5 {
            return None;
        }
        // The server's fast-path slot: its service's policy and both counters, found
        // from the entry's server id (none: deleted or displaced, the general path).
        let fs = self.services.fast_slot(c.rs)?;
        if fs.svc != c.svc {
            return None;
        }
        // Inbound: the client address delivery is done (TOA sent, no PROXY header);
        // outbound: server segments of SYN-proxied connections pass the ACK-storm check.
        let blocked = if inbound {
            (c.flags & fs.need_in) ^ fs.need_in
        } else {
            c.flags & cflags::SYNPROXY
        };
        if blocked != 0 {
            return None;
        }
        // Committed: from here on the frame is ours. The deadline is refreshed in place;
        // a service's own established timeout (rare) replaces it once the entry is
        // released, and so does a re-link when the deadline moved earlier.
        #[cfg(test)]
        {
            self.fast_hits += 1;
        }
        let est_ticks = fs.est_ticks;
        let fixup = c.refresh(est_deadline) | (est_ticks != 0);
        let len = total as u64;
        for st in [&fs.svc_stats, &fs.rs_stats] {
            if inbound {
                st.pkts_in.add(1);
                st.bytes_in.add(len);
            } else {
                st.pkts_out.add(1);
                st.bytes_out.add(len);
            }
        }
        // Rewritten straight from the entry, one copy per direction.
        let next = if inbound {
            rewrite_fixed(
                h,
                c.laddr,
                c.lport,
                c.raddr,
                c.rport,
                u32::from(c.proxy_len),
                c.syn_delta,
            );
            c.raddr
        } else {
            rewrite_fixed(
                h,
                c.vaddr,
                c.vport,
                c.caddr,
                c.cport,
                c.syn_delta.wrapping_neg(),
                u32::from(c.proxy_len).wrapping_neg(),
            );
            c.caddr
        };
        if fixup {
            self.fast_deadline_fixup(id, now_ticks, est_deadline, est_ticks);
        }
        let slot = &self.route_cache[crate::flow::hash_32(next, 8) as usize % ROUTE_CACHE];
        let hit = slot.valid && slot.dst == next;
        if hit {
            h[0..12].copy_from_slice(&slot.macs);
        }
        // Ethernet padding trimmed as on the general path (`total` fits the frame).
        f.len = ETH_LEN + total;
        if hit {
            return Some(Action::Forward { port: slot.port });
        }
        // Cache miss: the ECMP hash of the rewritten flow, from the entry (still there:
        // it was just found and touched).
        let hash = self.conns.get(ConnId(id)).map_or(0, |c| {
            if inbound { c.out_key() } else { c.in_key() }.ecmp_hash()
        });
        Some(self.route_and_cache(ctx, f, next, hash))
    }

    /// The fast path's deadline when [`Conn::refresh`] was not the whole story: the
    /// service's own established timeout (`est_ticks` non-zero), or a re-link.
    #[cold]
    #[inline(never)]
    fn fast_deadline_fixup(&mut self, id: u32, now_ticks: u32, est_deadline: u32, est_ticks: u32) {
        if est_ticks != 0 {
            self.conns.touch_ticks(ConnId(id), now_ticks, est_ticks);
        } else {
            self.conns.relink(id, est_deadline);
        }
    }

    /// [`route`](Self::route), remembering a single-path next hop with a known MAC.
    #[cold]
    #[inline(never)]
    fn route_and_cache(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>, dst: u32, hash: u32) -> Action {
        let a = self.route(ctx, f, dst, hash);
        if let (Action::Forward { port }, Some([nh])) = (a, ctx.fib.lookup(dst)) {
            if let Some(mac) = self.neigh.mac(nh.neighbor(dst)) {
                let mut macs = [0u8; 12];
                macs[..6].copy_from_slice(&mac);
                macs[6..].copy_from_slice(&self.port_mac(port));
                self.route_cache[crate::flow::hash_32(dst, 8) as usize % ROUTE_CACHE] = RouteSlot {
                    dst,
                    valid: true,
                    port,
                    macs,
                };
            }
        }
        a
    }

    fn port_mac(&self, port: u16) -> [u8; 6] {
        self.cfg
            .ports
            .get(usize::from(port))
            .map_or([0; 6], |p| p.mac)
    }

    fn is_kernel_addr(&self, a: u32) -> bool {
        self.cfg
            .ports
            .iter()
            .any(|p| p.addrs.iter().any(|x| u32::from(*x) == a))
            || self.services.is_runtime_kernel_addr(a)
    }

    fn frame(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>) -> Action {
        let d = f.data();
        if d.len() < ETH_LEN {
            return Action::Drop(DropReason::Malformed);
        }
        let dst_mac = [d[0], d[1], d[2], d[3], d[4], d[5]];
        let mine = self.port_mac(f.port);
        let group = dst_mac[0] & 1 == 1;
        if dst_mac != mine && !group {
            return Action::Drop(DropReason::NotForUs);
        }
        match [d[12], d[13]] {
            ETH_ARP => self.arp(ctx, f),
            ETH_IPV4 if !group || dst_mac == [0xff; 6] => self.ipv4(ctx, f),
            // Multicast IPv4 (OSPF), VLAN tags, IPv6, LLDP...: the kernel's business.
            _ => Action::Punt,
        }
    }

    fn arp(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>) -> Action {
        let port = f.port;
        let mac = self.port_mac(port);
        let repr = {
            let Some(b) = f.data().get(ETH_LEN..) else {
                return Action::Drop(DropReason::Malformed);
            };
            let Ok(p) = wire::ArpPacket::new_checked(b) else {
                return Action::Drop(DropReason::Malformed);
            };
            match wire::ArpRepr::parse(&p) {
                Ok(r) => r,
                Err(_) => return Action::Drop(DropReason::Malformed),
            }
        };
        let spa = u32::from(repr.source_protocol_addr);
        let tpa = u32::from(repr.target_protocol_addr);
        let ours = (self.services.is_vip(tpa) && self.services.vip_owned(tpa))
            || self.services.is_local_addr(tpa);
        if spa != 0 {
            // RFC 826 merge: update a known sender; create it only when it asks for us.
            let q = self
                .neigh
                .learn(spa, repr.source_hardware_addr.0, ctx.now, ours);
            self.flush_routes();
            self.release(q, repr.source_hardware_addr.0);
        }
        if self.is_kernel_addr(tpa) || !ours {
            // The kernel twin answers for its own addresses and learns too.
            return if self.is_kernel_addr(tpa) || repr.operation == wire::ArpOperation::Reply {
                Action::Punt
            } else {
                Action::Drop(DropReason::ArpIgnored)
            };
        }
        if repr.operation != wire::ArpOperation::Request {
            return Action::Drop(DropReason::ArpIgnored);
        }
        let reply = wire::ArpRepr::reply_to(&repr, wire::MacAddr(mac));
        let d = f.data_mut();
        let Some(b) = d.get_mut(..ETH_LEN + 28) else {
            return Action::Drop(DropReason::Malformed);
        };
        b[0..6].copy_from_slice(&repr.source_hardware_addr.0);
        b[6..12].copy_from_slice(&mac);
        if reply
            .emit(&mut wire::ArpPacket::new_unchecked(&mut b[ETH_LEN..]))
            .is_err()
        {
            return Action::Drop(DropReason::Malformed);
        }
        Action::Reply { port }
    }

    fn ipv4(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>) -> Action {
        // Validate and trim Ethernet padding.
        let (hl, total, proto, src, dst, frag) = {
            let Some(b) = f.data().get(ETH_LEN..) else {
                return Action::Drop(DropReason::Malformed);
            };
            let Ok(ip) = Ipv4Packet::new_checked(b) else {
                return Action::Drop(DropReason::Malformed);
            };
            if ip.version() != 4 {
                return Action::Drop(DropReason::Malformed);
            }
            if !header_sum_ok(b.get(..ip.header_len()).unwrap_or(&[])) {
                return Action::Drop(DropReason::BadChecksum);
            }
            (
                ip.header_len(),
                usize::from(ip.total_len()),
                u8::from(ip.protocol()),
                u32::from(ip.src_addr()),
                u32::from(ip.dst_addr()),
                ip.is_fragment(),
            )
        };
        if !f.set_len(ETH_LEN + total) {
            return Action::Drop(DropReason::Malformed);
        }
        let l4off = ETH_LEN + hl;
        if (proto == PROTO_TCP || proto == PROTO_UDP) && !frag {
            let Some((sport, dport)) = f.data().get(l4off..).and_then(ports) else {
                return Action::Drop(DropReason::BadL4);
            };
            let min = if proto == PROTO_TCP { 20 } else { 8 };
            if total < hl + min {
                return Action::Drop(DropReason::BadL4);
            }
            let key = FlowKey {
                saddr: src,
                daddr: dst,
                sport,
                dport,
                proto,
            };
            if let Some((id, dir)) = self.conns.lookup(&key) {
                return self.conn_packet(ctx, f, id, dir, l4off);
            }
            if let Some(svc) = self.services.find(proto, dst, dport) {
                let owner = flow_owner(&key, self.cfg.workers);
                if owner != self.cfg.id {
                    return Action::Handover { worker: owner };
                }
                // The owner's table may hold the connection; only a new one is refused.
                if !self.services.vip_owned(dst) {
                    return Action::Drop(DropReason::VipNotOwned);
                }
                return self.new_conn(ctx, f, svc, key, l4off);
            }
            if self.services.is_vip(dst) {
                return Action::Drop(DropReason::NoService);
            }
            if self.services.is_local_addr(dst) {
                let owner = owner_of_port(dport, self.cfg.workers);
                if owner != self.cfg.id {
                    return Action::Handover { worker: owner };
                }
                return Action::Drop(DropReason::NoConnection);
            }
        } else if frag && self.services.is_vip(dst) {
            return Action::Drop(DropReason::Fragment);
        } else if proto == PROTO_ICMP {
            if let Some(a) = self.icmp(ctx, f, l4off, src, dst) {
                return a;
            }
        }
        if self.is_kernel_addr(dst) {
            return Action::Punt;
        }
        self.transit(ctx, f, l4off)
    }

    fn ip_mut<'b>(f: &'b mut Frame<'_>) -> Ipv4Packet<&'b mut [u8]> {
        Ipv4Packet::new_unchecked(f.data_mut().get_mut(ETH_LEN..).unwrap_or(&mut []))
    }

    fn transit(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>, l4off: usize) -> Action {
        let (dst, src) = {
            let ip = Self::ip_mut(f);
            (u32::from(ip.dst_addr()), u32::from(ip.src_addr()))
        };
        let mut ip = Self::ip_mut(f);
        if ip.decrement_ttl().is_none() {
            return self.icmp_error(ctx, f, 11, 0, 0, l4off);
        }
        let key = FlowKey {
            saddr: src,
            daddr: dst,
            ..FlowKey::default()
        };
        self.route(ctx, f, dst, key.ecmp_hash())
    }

    /// Resolves the next hop for `dst` and writes the Ethernet header.
    fn route(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>, dst: u32, hash: u32) -> Action {
        let Some(nh) = ctx.fib.select(dst, hash) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let neighbor = nh.neighbor(dst);
        let src_mac = self.port_mac(nh.port);
        let d = f.data_mut();
        if d.len() < ETH_LEN {
            return Action::Drop(DropReason::Malformed);
        }
        d[6..12].copy_from_slice(&src_mac);
        d[12..14].copy_from_slice(&ETH_IPV4);
        let mac = match self.neigh.mac(neighbor) {
            Some(m) => m,
            None => match self.neigh.resolve(neighbor, (f.ticket, nh.port), ctx.now) {
                Resolve::Known(m) => m,
                Resolve::Queued { request } => {
                    return Action::Pending {
                        port: nh.port,
                        neighbor: Ipv4Addr::from(neighbor),
                        request,
                    };
                }
                Resolve::Dropped(_) => return Action::Drop(DropReason::NeighFull),
            },
        };
        if let Some(dm) = f.data_mut().get_mut(0..6) {
            dm.copy_from_slice(&mac);
        }
        Action::Forward { port: nh.port }
    }

    fn new_conn(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        svc: u16,
        key: FlowKey,
        l4off: usize,
    ) -> Action {
        let tcp_flags = if key.proto == PROTO_TCP {
            f.data().get(l4off + 13).copied().unwrap_or(0)
        } else {
            0
        };
        let syn_proxy = self.services.get(svc).is_some_and(|s| s.config().syn_proxy);
        if key.proto == PROTO_TCP && syn_proxy {
            return self.synproxy_new(ctx, f, svc, key, l4off, tcp_flags);
        }
        if key.proto == PROTO_TCP && (tcp_flags & 0x12 != 0x02 || tcp_flags & 0x05 != 0) {
            return Action::Drop(DropReason::NotSyn);
        }
        let timeout = if key.proto == PROTO_TCP {
            self.cfg.timeouts.tcp(TcpState::None)
        } else {
            self.cfg.timeouts.udp
        };
        match self.open_conn(ctx, svc, key, TcpState::None, 0, timeout) {
            Ok(id) => self.conn_packet(ctx, f, id, Dir::In, l4off),
            Err(r) => Action::Drop(r),
        }
    }

    /// Schedules a real server, takes a local port (FullNAT) and creates the entry.
    fn open_conn(
        &mut self,
        ctx: &Ctx<'_>,
        svc: u16,
        key: FlowKey,
        state: TcpState,
        flags: u8,
        timeout: Duration,
    ) -> Result<ConnId, DropReason> {
        let Some(s) = self.services.get_mut(svc) else {
            return Err(DropReason::NoService);
        };
        let sched = match s.schedule(&mut self.conns, &key, ctx.now) {
            Ok(x) => x,
            Err(SchedFail::Denied) => return Err(DropReason::Denied),
            Err(SchedFail::NoServer) => return Err(DropReason::NoServer),
        };
        if flags & cflags::SYNPROXY != 0
            && !matches!(sched.forward, Forward::FullNat | Forward::Nat)
        {
            // The SYN proxy translates sequence numbers both ways: FullNAT and NAT only.
            return Err(DropReason::NoServer);
        }
        let (out_key, index_out) = match sched.forward {
            Forward::FullNat => {
                let Some((laddr, lport)) = s.laddr().alloc() else {
                    return Err(DropReason::LaddrExhausted);
                };
                let k = FlowKey {
                    saddr: sched.raddr,
                    daddr: laddr,
                    sport: sched.rport,
                    dport: lport,
                    proto: key.proto,
                };
                (k, true)
            }
            Forward::Nat => {
                let k = FlowKey {
                    saddr: sched.raddr,
                    daddr: key.saddr,
                    sport: sched.rport,
                    dport: key.sport,
                    proto: key.proto,
                };
                (k, true)
            }
            Forward::Dr | Forward::Tun => {
                let k = FlowKey {
                    saddr: sched.raddr,
                    daddr: 0,
                    sport: sched.rport,
                    dport: 0,
                    proto: key.proto,
                };
                (k, false)
            }
        };
        let n = NewConn {
            in_key: key,
            out_key,
            index_out,
            svc,
            rs: sched.rs,
            mode: sched.forward as u8,
            state,
            flags,
            timeout,
            template: sched.template,
        };
        match self.conns.insert(n, ctx.now) {
            Ok(id) => {
                s.conn_opened(sched.rs);
                self.services.conn_created(svc);
                Ok(id)
            }
            Err(_) => {
                if sched.forward == Forward::FullNat {
                    s.laddr().release(out_key.daddr, out_key.dport);
                }
                Err(DropReason::TableFull)
            }
        }
    }

    /// Writes a whole Ethernet + IPv4 + TCP frame (no payload) over the frame's bytes.
    #[allow(clippy::too_many_arguments)]
    fn emit_tcp(
        f: &mut Frame<'_>,
        macs: ([u8; 6], [u8; 6]),
        src: (u32, u16),
        dst: (u32, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        opts: &[u8],
        payload: &[u8],
    ) -> bool {
        let hdr_len = 20 + opts.len();
        let tcp_len = hdr_len + payload.len();
        let total = ETH_LEN + 20 + tcp_len;
        if !f.set_len(total) {
            return false;
        }
        let d = f.data_mut();
        let Some(eth) = d.get_mut(..ETH_LEN) else {
            return false;
        };
        eth[0..6].copy_from_slice(&macs.0);
        eth[6..12].copy_from_slice(&macs.1);
        eth[12..14].copy_from_slice(&ETH_IPV4);
        let (sa, da) = (Ipv4Addr::from(src.0), Ipv4Addr::from(dst.0));
        let repr = wire::Ipv4Repr {
            src_addr: sa,
            dst_addr: da,
            protocol: wire::IpProtocol::Tcp,
            payload_len: tcp_len,
            ttl: DEFAULT_TTL,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: wire::Ipv4Options::NONE,
        };
        let Some(ipb) = d.get_mut(ETH_LEN..) else {
            return false;
        };
        let mut ip = Ipv4Packet::new_unchecked(&mut *ipb);
        if repr.emit(&mut ip).is_err() {
            return false;
        }
        ip.fill_checksum();
        let Some(t) = d.get_mut(ETH_LEN + 20..total) else {
            return false;
        };
        t[0..2].copy_from_slice(&src.1.to_be_bytes());
        t[2..4].copy_from_slice(&dst.1.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = ((hdr_len / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&window.to_be_bytes());
        t[16..20].copy_from_slice(&[0; 4]);
        t[20..hdr_len].copy_from_slice(opts);
        t[hdr_len..].copy_from_slice(payload);
        TcpPacket::new_unchecked(&mut *t).fill_checksum(sa, da);
        true
    }

    /// SYN options: MSS, then SACK-permitted and window scale when present.
    fn syn_options(d: &CookieData, wscale: Option<u8>, buf: &mut [u8; 12]) -> usize {
        buf[0..4].copy_from_slice(&[2, 4, (d.mss >> 8) as u8, d.mss as u8]);
        let mut n = 4;
        if d.sack {
            buf[n..n + 4].copy_from_slice(&[1, 1, 4, 2]);
            n += 4;
        }
        if let Some(w) = wscale {
            buf[n..n + 4].copy_from_slice(&[1, 3, 3, w]);
            n += 4;
        }
        n
    }

    /// SYN proxy, no entry yet: answer a SYN with a cookie, or turn a valid cookie ACK
    /// into a connection and a SYN to the chosen server (DPVS `dp_vs_synproxy_syn_rcv` /
    /// `dp_vs_synproxy_ack_rcv`).
    fn synproxy_new(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        svc: u16,
        key: FlowKey,
        l4off: usize,
        flags: u8,
    ) -> Action {
        let (seq, ack, window, mss, ws, sack) = {
            let Some(b) = f.data().get(l4off..) else {
                return Action::Drop(DropReason::BadL4);
            };
            let Ok(t) = TcpPacket::new_checked(b) else {
                return Action::Drop(DropReason::BadL4);
            };
            let (mut mss, mut ws, mut sack) = (None, None, false);
            for o in wire::TcpOptionsIter::new(t.options()).flatten() {
                match o {
                    TcpOption::MaxSegmentSize(m) => mss = Some(m),
                    TcpOption::WindowScale(w) => ws = Some(w),
                    TcpOption::SackPermitted => sack = true,
                    _ => {}
                }
            }
            (
                t.seq_number().0,
                t.ack_number().0,
                t.window_len(),
                mss,
                ws,
                sack,
            )
        };
        if flags & 0x17 == 0x02 {
            if !self.services.get(svc).is_some_and(|s| s.permits(key.saddr)) {
                return Action::Drop(DropReason::Denied);
            }
            let data = CookieData::from_syn(mss, ws, sack);
            let cookie = self.cookies.make(&key, ctx.now, data);
            let mut ob = [0u8; 12];
            let wscale = data.wscale.map(|_| SYNPROXY_WSCALE);
            let n = Self::syn_options(&data, wscale, &mut ob);
            let macs = {
                let d = f.data();
                let mut m = ([0u8; 6], [0u8; 6]);
                m.0.copy_from_slice(&d[6..12]);
                m.1.copy_from_slice(&d[0..6]);
                m
            };
            let port = f.port;
            let ok = Self::emit_tcp(
                f,
                macs,
                (key.daddr, key.dport),
                (key.saddr, key.sport),
                cookie,
                seq.wrapping_add(1),
                0x12,
                u16::MAX,
                ob.get(..n).unwrap_or(&[]),
                &[],
            );
            if !ok {
                return Action::Drop(DropReason::NoRoom);
            }
            self.counters.syn_cookies.add(1);
            return Action::Reply { port };
        }
        if flags & 0x17 != 0x10 {
            return Action::Drop(DropReason::NotSyn);
        }
        let cookie = ack.wrapping_sub(1);
        if self.cookies.check(&key, cookie, ctx.now).is_none() {
            return Action::Drop(DropReason::BadCookie);
        }
        let timeout = self.cfg.timeouts.tcp(TcpState::SynSent);
        let id = match self.open_conn(ctx, svc, key, TcpState::SynSent, cflags::SYNPROXY, timeout) {
            Ok(id) => id,
            Err(r) => return Action::Drop(r),
        };
        if let Some(e) = self.conns.get_mut(id) {
            e.syn_delta = cookie;
            e.proxy_seq = seq.wrapping_sub(1);
        }
        self.hold_data(ctx, f, id, l4off, timeout);
        self.synproxy_syn(ctx, f, id, window)
    }

    /// Keeps the payload of a cookie-validating ACK (as DPVS saves the ACK mbuf) so it
    /// reaches the server with the ACK that completes the server handshake, instead of
    /// waiting for the client's retransmission. Not for PROXY protocol services (the
    /// header must precede the first data byte: their client retransmits).
    fn hold_data(
        &mut self,
        ctx: &Ctx<'_>,
        f: &Frame<'_>,
        id: ConnId,
        l4off: usize,
        timeout: Duration,
    ) {
        let d = f.data();
        let doff = usize::from(d.get(l4off + 12).copied().unwrap_or(0) >> 4) * 4;
        let Some(payload) = d.get(l4off + doff.max(20)..).filter(|p| !p.is_empty()) else {
            return;
        };
        let Some(c) = self.conns.get(id).copied() else {
            return;
        };
        let proxy = self.services.get(c.svc).is_some_and(|s| {
            matches!(
                s.config().client_addr,
                ClientAddr::ProxyV1 | ClientAddr::ProxyV2
            )
        });
        let now = crate::conn::ticks(ctx.now);
        let slot = self
            .held
            .iter()
            .position(|h| h.conn == NO_CONN || h.expires <= now);
        let (Some(i), false, true) = (slot, proxy, payload.len() <= SYNPROXY_HELD_MAX) else {
            self.counters.syn_data_lost.add(1);
            return;
        };
        let at = i * SYNPROXY_HELD_MAX;
        let (Some(dst), Some(h)) = (
            self.held_bytes.get_mut(at..at + payload.len()),
            self.held.get_mut(i),
        ) else {
            return;
        };
        dst.copy_from_slice(payload);
        *h = HeldData {
            conn: id.0,
            caddr: c.caddr,
            cport: c.cport,
            len: payload.len() as u16,
            expires: now.saturating_add(crate::conn::ticks(timeout).max(1)),
        };
        self.counters.syn_data_held.add(1);
    }

    /// Takes the held data of connection `c` (`id`): its byte range in `held_bytes`.
    fn take_held(&mut self, id: ConnId, c: &Conn, now: Duration) -> Option<(usize, usize)> {
        let now = crate::conn::ticks(now);
        let i = self.held.iter().position(|h| {
            h.conn == id.0 && h.caddr == c.caddr && h.cport == c.cport && h.expires > now
        })?;
        let h = self.held.get_mut(i)?;
        h.conn = NO_CONN;
        let at = i * SYNPROXY_HELD_MAX;
        Some((at, at + usize::from(h.len)))
    }

    /// DPVS `syn_proxy_is_ack_storm` for a server→client ACK of a SYN-proxied
    /// connection: true when it repeats the previous one's sequence and acknowledgment
    /// numbers for the [`SYNPROXY_DUP_ACK_THRESH`]th time or more (drop it).
    fn ack_storm(&mut self, id: ConnId, f: &Frame<'_>, l4off: usize) -> bool {
        let Some(t) = f.data().get(l4off + 4..l4off + 12) else {
            return false;
        };
        let seq = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        let ack = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
        let Some(s) = self.storm.get_mut(id.0 as usize % STORM_SLOTS) else {
            return false;
        };
        if s.conn == id.0 && s.seq == seq && s.ack == ack {
            s.dup = s.dup.saturating_add(1).min(SYNPROXY_DUP_ACK_THRESH);
            return s.dup >= SYNPROXY_DUP_ACK_THRESH;
        }
        *s = StormSlot {
            conn: id.0,
            seq,
            ack,
            dup: 0,
        };
        false
    }

    /// Sends (or resends) the SYN of a SYN-proxied connection to its server.
    fn synproxy_syn(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        id: ConnId,
        window: u16,
    ) -> Action {
        let Some(c) = self.conns.get(id).copied() else {
            return Action::Drop(DropReason::NoConnection);
        };
        if let Some(s) = self.services.get(c.svc) {
            s.count_packet(c.rs, true, f.len().saturating_sub(ETH_LEN));
        }
        let data = SynCookies::data_of(c.syn_delta);
        let mut ob = [0u8; 12];
        let n = Self::syn_options(&data, data.wscale, &mut ob);
        let src = match Forward::from_u8(c.mode()) {
            Forward::FullNat => (c.laddr, c.lport),
            _ => (c.caddr, c.cport),
        };
        let opts = ob.get(..n).unwrap_or(&[]);
        let syn = c.proxy_seq;
        if !Self::emit_tcp(
            f,
            ([0; 6], [0; 6]),
            src,
            (c.raddr, c.rport),
            syn,
            0,
            0x02,
            window,
            opts,
            &[],
        ) {
            return Action::Drop(DropReason::NoRoom);
        }
        self.route(ctx, f, c.raddr, c.out_key().ecmp_hash())
    }

    /// A SYN-proxied connection whose server handshake is pending.
    fn synproxy_pending(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        id: ConnId,
        dir: Dir,
        l4off: usize,
        flags: u8,
    ) -> Option<Action> {
        let c = *self.conns.get(id)?;
        let (seq, ack, window) = {
            let t = TcpPacket::new_checked(f.data().get(l4off..)?).ok()?;
            (t.seq_number().0, t.ack_number().0, t.window_len())
        };
        if dir == Dir::In {
            if c.syn_retries() >= SYNPROXY_MAX_RETRIES {
                return Some(Action::Drop(DropReason::SynProxyPending));
            }
            if let Some(e) = self.conns.get_mut(id) {
                e.bump_syn_retries();
            }
            return Some(self.synproxy_syn(ctx, f, id, window));
        }
        if flags & 0x04 != 0 {
            // The server refused: let the client see the reset in its own numbering.
            if let Some(e) = self.conns.get_mut(id) {
                e.syn_delta = seq.wrapping_sub(c.syn_delta.wrapping_add(1));
            }
            return None;
        }
        if flags & 0x12 != 0x12 || ack != c.proxy_seq.wrapping_add(1) {
            return Some(Action::Drop(DropReason::SynProxyPending));
        }
        // Server SYN-ACK: fix the sequence offset, complete its handshake ourselves.
        let cookie = c.syn_delta;
        let data = SynCookies::data_of(cookie);
        if let Some(e) = self.conns.get_mut(id) {
            e.syn_delta = seq.wrapping_sub(cookie);
            e.flags |= cflags::ACTIVE;
        }
        self.conns.set_state(id, TcpState::Established);
        let est = self
            .services
            .get(c.svc)
            .and_then(|s| s.config().est_timeout);
        self.conns.touch(
            id,
            est.unwrap_or(self.cfg.timeouts.tcp(TcpState::Established)),
            ctx.now,
        );
        if let Some(s) = self.services.get_mut(c.svc) {
            s.conn_activity(c.rs, false, true);
            s.count_packet(c.rs, false, f.len().saturating_sub(ETH_LEN));
        }
        let macs = {
            let d = f.data();
            let mut m = ([0u8; 6], [0u8; 6]);
            m.0.copy_from_slice(d.get(6..12)?);
            m.1.copy_from_slice(d.get(0..6)?);
            m
        };
        let src = match Forward::from_u8(c.mode()) {
            Forward::FullNat => (c.laddr, c.lport),
            _ => (c.caddr, c.cport),
        };
        let win = u16::MAX >> data.wscale.unwrap_or(0).min(14);
        let port = f.port;
        let held = self.take_held(id, &c, ctx.now);
        let payload = held
            .and_then(|(a, b)| self.held_bytes.get(a..b))
            .unwrap_or(&[]);
        // With held client data: PSH|ACK carrying it (it starts at the client's ISN + 1,
        // which is what the server acknowledged). Without room for it: a bare ACK.
        let mut ok = !payload.is_empty()
            && Self::emit_tcp(
                f,
                macs,
                src,
                (c.raddr, c.rport),
                ack,
                seq.wrapping_add(1),
                0x18,
                win,
                &[],
                payload,
            );
        if !ok {
            if held.is_some() {
                self.counters.syn_data_lost.add(1);
            }
            ok = Self::emit_tcp(
                f,
                macs,
                src,
                (c.raddr, c.rport),
                ack,
                seq.wrapping_add(1),
                0x10,
                win,
                &[],
                &[],
            );
        }
        Some(if ok {
            Action::Reply { port }
        } else {
            Action::Drop(DropReason::NoRoom)
        })
    }

    /// A packet of a tracked connection.
    fn conn_packet(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        id: ConnId,
        dir: Dir,
        l4off: usize,
    ) -> Action {
        let Some(c) = self.conns.get(id).copied() else {
            return Action::Drop(DropReason::NoConnection);
        };
        let fwd = Forward::from_u8(c.mode());
        let proto = c.proto;
        let tcp_flags = if proto == PROTO_TCP {
            f.data().get(l4off + 13).copied().unwrap_or(0)
        } else {
            0
        };
        if proto == PROTO_TCP && c.flags & cflags::SYNPROXY != 0 && c.state() == TcpState::SynSent {
            if let Some(a) = self.synproxy_pending(ctx, f, id, dir, l4off, tcp_flags) {
                return a;
            }
        }
        let c = match self.conns.get(id) {
            Some(c) => *c,
            None => return Action::Drop(DropReason::NoConnection),
        };
        // TIME_WAIT / CLOSE reuse: a fresh SYN from the client starts a new connection
        // (IPVS conn_reuse_mode).
        if proto == PROTO_TCP
            && dir == Dir::In
            && tcp_flags & 0x17 == 0x02
            && matches!(c.state(), TcpState::TimeWait | TcpState::Close)
        {
            let key = c.in_key();
            if let Some(old) = self.conns.remove(id) {
                if let Some(s) = self.services.conn_released(old.svc) {
                    s.conn_closed(old.rs, old.flags & cflags::ACTIVE != 0);
                    if fwd == Forward::FullNat {
                        s.laddr().release(old.laddr, old.lport);
                    }
                }
            }
            return match self.services.find(proto, key.daddr, key.dport) {
                Some(svc) => self.new_conn(ctx, f, svc, key, l4off),
                None => Action::Drop(DropReason::NoService),
            };
        }
        // DPVS ACK-storm defence on the server side of SYN-proxied connections.
        if proto == PROTO_TCP
            && dir == Dir::Out
            && c.flags & cflags::SYNPROXY != 0
            && tcp_flags & 0x10 != 0
            && self.ack_storm(id, f, l4off)
        {
            return Action::Drop(DropReason::AckStorm);
        }
        // State and timeout.
        let sdir = if dir == Dir::In && matches!(fwd, Forward::Dr | Forward::Tun) {
            Dir::InOnly
        } else {
            dir
        };
        let svc = self.services.get(c.svc);
        let est = svc.and_then(|s| s.config().est_timeout);
        let client_addr = svc.map_or(ClientAddr::None, |s| s.config().client_addr);
        if proto == PROTO_TCP {
            if let Some((old, new)) =
                self.conns
                    .tcp_update(id, sdir, tcp_flags, &self.cfg.timeouts, est, ctx.now)
            {
                let (was, is) = (old == TcpState::Established, new == TcpState::Established);
                if was != is {
                    if let Some(e) = self.conns.get_mut(id) {
                        if is {
                            e.flags |= cflags::ACTIVE;
                        } else {
                            e.flags &= !cflags::ACTIVE;
                        }
                    }
                    if let Some(s) = self.services.get_mut(c.svc) {
                        s.conn_activity(c.rs, was, is);
                    }
                }
            }
        } else {
            let t = if proto == PROTO_UDP {
                self.cfg.timeouts.udp
            } else {
                self.cfg.timeouts.icmp
            };
            self.conns.touch(id, t, ctx.now);
        }
        if let Some(s) = self.services.get(c.svc) {
            s.count_packet(c.rs, dir == Dir::In, f.len() - ETH_LEN);
        }
        let (caddr, vaddr, raddr, laddr) = (
            Ipv4Addr::from(c.caddr),
            Ipv4Addr::from(c.vaddr),
            Ipv4Addr::from(c.raddr),
            Ipv4Addr::from(c.laddr),
        );
        match (fwd, dir) {
            (Forward::FullNat, Dir::In) => {
                // TOA on the first ACK without SYN (the handshake's last segment or the
                // first data), as DPVS tcp_in_add_toa.
                let mut grown = 0usize;
                if proto == PROTO_TCP
                    && client_addr == ClientAddr::Toa
                    && c.flags & cflags::CLIENT_ADDR_SENT == 0
                    && tcp_flags & 0x12 == 0x10
                {
                    if let Some(e) = self.conns.get_mut(id) {
                        e.flags |= cflags::CLIENT_ADDR_SENT;
                    }
                    grown = Self::insert_toa(f, l4off, caddr, c.cport, self.out_mtu(ctx, c.raddr));
                }
                let mut seq_add = u32::from(c.proxy_len);
                if proto == PROTO_TCP
                    && matches!(client_addr, ClientAddr::ProxyV1 | ClientAddr::ProxyV2)
                {
                    match self.proxy_header(ctx, f, id, l4off, client_addr) {
                        ProxyStep::Inserted => {
                            grown = 1;
                            seq_add = 0;
                        }
                        ProxyStep::NoRoom => return Action::Drop(DropReason::NoRoom),
                        ProxyStep::None => {}
                    }
                }
                let laddr_port = Some((laddr, c.lport));
                let raddr_port = Some((raddr, c.rport));
                let ack_add = c.syn_delta;
                self.nat_rewrite(
                    f,
                    l4off,
                    proto,
                    laddr_port,
                    raddr_port,
                    seq_add,
                    ack_add,
                    grown > 0,
                );
                if proto == PROTO_TCP && c.syn_delta != 0 {
                    Self::adjust_sack(f, l4off, c.syn_delta.wrapping_neg());
                }
                let hash = c.out_key().ecmp_hash();
                self.route(ctx, f, c.raddr, hash)
            }
            (Forward::FullNat, _) => {
                if proto == PROTO_TCP && client_addr == ClientAddr::Toa && tcp_flags & 0x12 == 0x12
                {
                    // Make room for TOA in the client's segments (tcp_out_adjust_mss).
                    Self::shrink_mss(f, l4off);
                }
                let vaddr_port = Some((vaddr, c.vport));
                let caddr_port = Some((caddr, c.cport));
                let (seq_add, ack_add) = (
                    c.syn_delta.wrapping_neg(),
                    u32::from(c.proxy_len).wrapping_neg(),
                );
                self.nat_rewrite(
                    f, l4off, proto, vaddr_port, caddr_port, seq_add, ack_add, false,
                );
                if proto == PROTO_TCP && c.proxy_len != 0 {
                    Self::adjust_sack(f, l4off, u32::from(c.proxy_len));
                }
                let hash = c.in_key().ecmp_hash();
                self.route(ctx, f, c.caddr, hash)
            }
            (Forward::Nat, Dir::In) => {
                let rs = Some((raddr, c.rport));
                self.nat_rewrite(f, l4off, proto, None, rs, 0, c.syn_delta, false);
                if proto == PROTO_TCP && c.syn_delta != 0 {
                    Self::adjust_sack(f, l4off, c.syn_delta.wrapping_neg());
                }
                self.route(ctx, f, c.raddr, c.in_key().ecmp_hash())
            }
            (Forward::Nat, _) => {
                let vs = Some((vaddr, c.vport));
                self.nat_rewrite(
                    f,
                    l4off,
                    proto,
                    vs,
                    None,
                    c.syn_delta.wrapping_neg(),
                    0,
                    false,
                );
                self.route(ctx, f, c.caddr, c.in_key().ecmp_hash())
            }
            (Forward::Dr, _) => {
                // Only the MAC changes: the real server holds the VIP on a loopback.
                let hash = c.in_key().ecmp_hash();
                self.route(ctx, f, c.raddr, hash)
            }
            (Forward::Tun, _) => self.tunnel(ctx, f, c.raddr, l4off, c.in_key().ecmp_hash()),
        }
    }

    /// PROXY protocol: put the header in front of the first client data (or of its
    /// retransmission), as DPVS `proxy_proto.c`. Later client segments are shifted by the
    /// header length (`seq_delta`); server acknowledgments are shifted back.
    fn proxy_header(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        id: ConnId,
        l4off: usize,
        mode: ClientAddr,
    ) -> ProxyStep {
        let Some(c) = self.conns.get(id).copied() else {
            return ProxyStep::None;
        };
        let (seq, doff, flags) = {
            let Some(t) = f.data().get(l4off..) else {
                return ProxyStep::None;
            };
            let Ok(t) = TcpPacket::new_checked(t) else {
                return ProxyStep::None;
            };
            (t.seq_number().0, t.header_len(), t.flags())
        };
        let payload_at = l4off + doff;
        let payload_len = f.len().saturating_sub(payload_at);
        if payload_len == 0
            || flags.contains(wire::TcpFlags::SYN)
            || flags.contains(wire::TcpFlags::RST)
        {
            return ProxyStep::None;
        }
        let sent = c.flags & cflags::CLIENT_ADDR_SENT != 0;
        if sent && seq != c.proxy_seq {
            return ProxyStep::None;
        }
        let src = std::net::SocketAddrV4::new(Ipv4Addr::from(c.caddr), c.cport);
        let dst = std::net::SocketAddrV4::new(Ipv4Addr::from(c.vaddr), c.vport);
        let addresses = wire::ProxyAddresses::Ipv4 { src, dst };
        let mut hdr = [0u8; wire::PROXY_V1_MAX_LEN];
        let emitted = match mode {
            ClientAddr::ProxyV1 => wire::ProxyV1Repr { addresses }.emit(&mut hdr),
            _ => wire::ProxyV2Repr {
                command: wire::ProxyCommand::Proxy,
                transport: wire::ProxyTransport::Stream,
                addresses,
                tlvs: &[],
            }
            .emit(&mut hdr),
        };
        let Ok(hlen) = emitted else {
            return ProxyStep::None;
        };
        if f.len() - ETH_LEN + hlen > self.out_mtu(ctx, c.raddr) || f.tailroom() < hlen {
            return ProxyStep::NoRoom;
        }
        let end = f.len();
        let buf = f.with_tail();
        let Some(area) = buf.get_mut(payload_at..end + hlen) else {
            return ProxyStep::NoRoom;
        };
        area.copy_within(0..payload_len, hlen);
        if let (Some(d), Some(h)) = (area.get_mut(..hlen), hdr.get(..hlen)) {
            d.copy_from_slice(h);
        }
        if !f.set_len(end + hlen) {
            return ProxyStep::NoRoom;
        }
        let mut ip = Self::ip_mut(f);
        let old = ip.total_len();
        let newl = old.wrapping_add(hlen as u16);
        let cs = checksum::update16(ip.checksum(), old, newl);
        ip.set_total_len(newl);
        ip.set_checksum(cs);
        if let Some(e) = self.conns.get_mut(id) {
            e.flags |= cflags::CLIENT_ADDR_SENT;
            e.proxy_seq = seq;
            e.proxy_len = hlen as u8;
        }
        ProxyStep::Inserted
    }

    /// Shifts SACK block edges of a server segment back by `delta` (the PROXY header
    /// the client never sent) and recomputes the TCP checksum when any changed.
    fn adjust_sack(f: &mut Frame<'_>, l4off: usize, delta: u32) {
        let (src, dst) = {
            let ip = Self::ip_mut(f);
            (ip.src_addr(), ip.dst_addr())
        };
        let Some(seg) = f.data_mut().get_mut(l4off..) else {
            return;
        };
        let Ok(mut t) = TcpPacket::new_checked(&mut *seg) else {
            return;
        };
        let mut changed = false;
        let opts = t.options_mut();
        let mut i = 0usize;
        while let Some(&kind) = opts.get(i) {
            match kind {
                0 => break,
                1 => i += 1,
                _ => {
                    let len = usize::from(opts.get(i + 1).copied().unwrap_or(0));
                    if len < 2 || i + len > opts.len() {
                        break;
                    }
                    if kind == 5 {
                        let mut j = i + 2;
                        while j + 4 <= i + len {
                            if let Some(w) = opts.get_mut(j..j + 4) {
                                let v = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                                w.copy_from_slice(&v.wrapping_sub(delta).to_be_bytes());
                                changed = true;
                            }
                            j += 4;
                        }
                    }
                    i += len;
                }
            }
        }
        if changed {
            t.fill_checksum(src, dst);
        }
    }

    fn out_mtu(&self, ctx: &Ctx<'_>, dst: u32) -> usize {
        ctx.fib
            .select(dst, 0)
            .and_then(|n| self.cfg.ports.get(usize::from(n.port)))
            .map_or(1500, |p| usize::from(p.mtu))
    }

    /// Inserts TOA after the TCP base header; returns the bytes added (0 when there is
    /// no room in the header, the buffer or the MTU: the segment goes without it).
    fn insert_toa(
        f: &mut Frame<'_>,
        l4off: usize,
        caddr: Ipv4Addr,
        cport: u16,
        mtu: usize,
    ) -> usize {
        let total = f.len() - ETH_LEN;
        if total + TOA_LEN > mtu || f.tailroom() < TOA_LEN {
            return 0;
        }
        let seg_len = f.len() - l4off;
        let opt = TcpOption::Toa {
            port: cport,
            addr: caddr,
        };
        let Some(seg) = f.with_tail().get_mut(l4off..) else {
            return 0;
        };
        let Ok(new_len) = wire::insert_tcp_option(seg, seg_len, &opt) else {
            return 0;
        };
        let add = new_len - seg_len;
        if !f.set_len(f.len() + add) {
            return 0;
        }
        let mut ip = Self::ip_mut(f);
        let old = ip.total_len();
        let newl = old + add as u16;
        let c = checksum::update16(ip.checksum(), old, newl);
        ip.set_total_len(newl);
        ip.set_checksum(c);
        add
    }

    fn shrink_mss(f: &mut Frame<'_>, l4off: usize) {
        let Some(seg) = f.data_mut().get_mut(l4off..) else {
            return;
        };
        let Ok(mut tcp) = TcpPacket::new_checked(seg) else {
            return;
        };
        let mss = wire::TcpOptionsIter::new(tcp.options()).find_map(|o| match o {
            Ok(TcpOption::MaxSegmentSize(m)) => Some(m),
            _ => None,
        });
        if let Some(m) = mss {
            tcp.clamp_mss(m.saturating_sub(TOA_LEN as u16));
        }
    }

    /// Rewrites addresses and ports (and TCP sequence / acknowledgment numbers by the
    /// wrapping deltas `seq_add` / `ack_add`), updating
    /// the IPv4 and transport checksums incrementally. `full_l4` recomputes the TCP
    /// checksum instead (after TOA insertion moved bytes).
    #[allow(clippy::too_many_arguments)]
    fn nat_rewrite(
        &self,
        f: &mut Frame<'_>,
        l4off: usize,
        proto: u8,
        src: Option<(Ipv4Addr, u16)>,
        dst: Option<(Ipv4Addr, u16)>,
        seq_add: u32,
        ack_add: u32,
        full_l4: bool,
    ) {
        if !full_l4 && Self::nat_rewrite_fast(f, l4off, proto, src, dst, seq_add, ack_add) {
            return;
        }
        let d = f.data_mut();
        let (iph, l4) = d.split_at_mut(l4off.min(d.len()));
        let mut ip = Ipv4Packet::new_unchecked(iph.get_mut(ETH_LEN..).unwrap_or(&mut []));
        let old_src = src.map(|(a, _)| ip.rewrite_src_addr(a));
        let old_dst = dst.map(|(a, _)| ip.rewrite_dst_addr(a));
        let (s_now, d_now) = (ip.src_addr(), ip.dst_addr());
        let l4len = usize::from(ip.total_len())
            .saturating_sub(ip.header_len())
            .min(l4.len());
        let l4 = &mut l4[..l4len];
        match proto {
            PROTO_TCP => {
                if l4.len() < 20 {
                    return;
                }
                let mut t = TcpPacket::new_unchecked(&mut *l4);
                if full_l4 {
                    if let Some((_, p)) = src {
                        t.set_src_port(p);
                    }
                    if let Some((_, p)) = dst {
                        t.set_dst_port(p);
                    }
                    if seq_add != 0 {
                        let s = t.seq_number().0.wrapping_add(seq_add);
                        t.set_seq_number(TcpSeqNumber(s));
                    }
                    if ack_add != 0 && t.flags().contains(wire::TcpFlags::ACK) {
                        let a = t.ack_number().0.wrapping_add(ack_add);
                        t.set_ack_number(TcpSeqNumber(a));
                    }
                    t.fill_checksum(s_now, d_now);
                    return;
                }
                if let (Some(o), Some((a, p))) = (old_src, src) {
                    t.update_checksum_for_addr(o, a);
                    t.rewrite_src_port(p);
                }
                if let (Some(o), Some((a, p))) = (old_dst, dst) {
                    t.update_checksum_for_addr(o, a);
                    t.rewrite_dst_port(p);
                }
                if seq_add != 0 {
                    let s = t.seq_number().0.wrapping_add(seq_add);
                    t.rewrite_seq_number(TcpSeqNumber(s));
                }
                if ack_add != 0 && t.flags().contains(wire::TcpFlags::ACK) {
                    let a = t.ack_number().0.wrapping_add(ack_add);
                    t.rewrite_ack_number(TcpSeqNumber(a));
                }
            }
            PROTO_UDP => {
                if l4.len() < 8 {
                    return;
                }
                let mut u = UdpPacket::new_unchecked(&mut *l4);
                if let (Some(o), Some((a, p))) = (old_src, src) {
                    u.update_checksum_for_addr(o, a);
                    u.rewrite_src_port(p);
                }
                if let (Some(o), Some((a, p))) = (old_dst, dst) {
                    u.update_checksum_for_addr(o, a);
                    u.rewrite_dst_port(p);
                }
            }
            _ => {}
        }
    }

    /// The common case of [`nat_rewrite`](Self::nat_rewrite) with one fused RFC 1624
    /// update per checksum (all changed 16-bit words summed, one fold) instead of one per
    /// field. Returns false (nothing changed) when the segment is too short; the caller
    /// then takes the general path.
    #[inline]
    fn nat_rewrite_fast(
        f: &mut Frame<'_>,
        l4off: usize,
        proto: u8,
        src: Option<(Ipv4Addr, u16)>,
        dst: Option<(Ipv4Addr, u16)>,
        seq_add: u32,
        ack_add: u32,
    ) -> bool {
        let d = f.data_mut();
        let need = match proto {
            PROTO_TCP => 20,
            PROTO_UDP => 8,
            _ => return false,
        };
        if d.len() < l4off + need || l4off < ETH_LEN + 20 {
            return false;
        }
        let (head, l4) = d.split_at_mut(l4off);
        let Some(ip) = head.get_mut(ETH_LEN..ETH_LEN + 20) else {
            return false;
        };
        let mut ip_acc = 0u64; // sum of (new - old) words, ones' complement
        let mut l4_acc = 0u64;
        #[inline(always)]
        fn word(b: &[u8], at: usize) -> u16 {
            u16::from_be_bytes([b[at], b[at + 1]])
        }
        #[inline(always)]
        fn swap16(b: &mut [u8], at: usize, new: u16, acc: &mut u64) {
            let old = word(b, at);
            *acc += u64::from(!old) + u64::from(new);
            b[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        #[inline(always)]
        fn swap32(b: &mut [u8], at: usize, new: u32, acc: &mut u64, acc2: &mut u64) {
            let old = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let delta = u64::from(!(old >> 16) as u16)
                + u64::from(!(old as u16))
                + u64::from((new >> 16) as u16)
                + u64::from(new as u16);
            *acc += delta;
            *acc2 += delta;
            b[at..at + 4].copy_from_slice(&new.to_be_bytes());
        }
        if let Some((a, p)) = src {
            swap32(ip, 12, u32::from(a), &mut ip_acc, &mut l4_acc);
            swap16(l4, 0, p, &mut l4_acc);
        }
        if let Some((a, p)) = dst {
            swap32(ip, 16, u32::from(a), &mut ip_acc, &mut l4_acc);
            swap16(l4, 2, p, &mut l4_acc);
        }
        let fold = |hc: u16, acc: u64| -> u16 { !checksum::fold(u64::from(!hc) + acc) };
        let ihc = word(ip, 10);
        ip[10..12].copy_from_slice(&fold(ihc, ip_acc).to_be_bytes());
        if proto == PROTO_TCP {
            let mut dummy = 0u64;
            if seq_add != 0 {
                let old = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
                swap32(l4, 4, old.wrapping_add(seq_add), &mut l4_acc, &mut dummy);
            }
            if ack_add != 0 && l4[13] & 0x10 != 0 {
                let old = u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]);
                swap32(l4, 8, old.wrapping_add(ack_add), &mut l4_acc, &mut dummy);
            }
            let hc = word(l4, 16);
            l4[16..18].copy_from_slice(&fold(hc, l4_acc).to_be_bytes());
        } else {
            let hc = word(l4, 6);
            if hc != 0 {
                let c = match fold(hc, l4_acc) {
                    0 => 0xffff,
                    c => c,
                };
                l4[6..8].copy_from_slice(&c.to_be_bytes());
            }
        }
        true
    }

    /// IP-in-IP encapsulation toward `raddr` (RFC 2003 §3.1), clamping the MSS of SYNs
    /// to the tunnel MTU.
    fn tunnel(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        raddr: u32,
        l4off: usize,
        hash: u32,
    ) -> Action {
        const OUTER: usize = 20;
        let Some(nh) = ctx.fib.select(raddr, hash) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let Some(pc) = self.cfg.ports.get(usize::from(nh.port)) else {
            return Action::Drop(DropReason::NoRoute);
        };
        let mtu = usize::from(pc.mtu);
        let src = pc.addrs.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let inner_len = f.len() - ETH_LEN;
        // MSS clamp: inner IP + TCP headers (40) + the outer header must fit the MTU.
        if let Some(seg) = f.data_mut().get_mut(l4off..) {
            if let Ok(mut t) = TcpPacket::new_checked(seg) {
                if t.flags().contains(wire::TcpFlags::SYN) {
                    t.clamp_mss(mtu.saturating_sub(40 + OUTER) as u16);
                }
            }
        }
        let df = Self::ip_mut(f).dont_frag();
        if inner_len + OUTER > mtu {
            return Action::Drop(DropReason::NoRoom);
        }
        if !f.prepend(OUTER) {
            return Action::Drop(DropReason::NoRoom);
        }
        let d = f.data_mut();
        d.copy_within(OUTER..OUTER + ETH_LEN, 0);
        let Some(hdr) = d.get_mut(ETH_LEN..) else {
            return Action::Drop(DropReason::NoRoom);
        };
        let repr = wire::Ipv4Repr {
            src_addr: src,
            dst_addr: Ipv4Addr::from(raddr),
            protocol: wire::IpProtocol::IpIp,
            payload_len: inner_len,
            ttl: DEFAULT_TTL,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            options: wire::Ipv4Options::NONE,
        };
        let mut ip = Ipv4Packet::new_unchecked(&mut *hdr);
        if repr.emit(&mut ip).is_err() {
            return Action::Drop(DropReason::NoRoom);
        }
        ip.fill_checksum();
        self.route(ctx, f, raddr, hash)
    }

    /// ICMP to us: echo on a VIP, or an error about a tracked connection. `None` when
    /// the message is not ours (punt or transit).
    fn icmp(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        l4off: usize,
        src: u32,
        dst: u32,
    ) -> Option<Action> {
        let (ty, code) = {
            let b = f.data().get(l4off..)?;
            (*b.first()?, *b.get(1)?)
        };
        let _ = code;
        match ty {
            8 if self.services.is_vip(dst) => Some(self.echo_reply(f, l4off, src, dst)),
            3 | 4 | 11 | 12 => self.icmp_error_in(ctx, f, l4off),
            _ if self.services.is_vip(dst) => Some(Action::Drop(DropReason::IcmpUnhandled)),
            _ => None,
        }
    }

    fn echo_reply(&mut self, f: &mut Frame<'_>, l4off: usize, src: u32, dst: u32) -> Action {
        let port = f.port;
        let d = f.data_mut();
        let mut macs = [0u8; 12];
        macs.copy_from_slice(&d[0..12]);
        d[0..6].copy_from_slice(&macs[6..12]);
        d[6..12].copy_from_slice(&macs[0..6]);
        {
            let mut ip = Ipv4Packet::new_unchecked(d.get_mut(ETH_LEN..).unwrap_or(&mut []));
            ip.set_src_addr(Ipv4Addr::from(dst));
            ip.set_dst_addr(Ipv4Addr::from(src));
            ip.set_ttl(DEFAULT_TTL);
            ip.fill_checksum();
        }
        let Some(icmp) = d.get_mut(l4off..) else {
            return Action::Drop(DropReason::Malformed);
        };
        if icmp.len() < 8 {
            return Action::Drop(DropReason::Malformed);
        }
        // Type 8 -> 0 in the first word (RFC 792; RFC 1624 update).
        let old = u16::from_be_bytes([icmp[0], icmp[1]]);
        icmp[0] = 0;
        let new = u16::from_be_bytes([icmp[0], icmp[1]]);
        let c = checksum::update16(u16::from_be_bytes([icmp[2], icmp[3]]), old, new);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        Action::Reply { port }
    }

    /// An ICMP error quoting a packet of a tracked connection: translate the quoted
    /// packet and the outer header back through the connection (RFC 5508 §4 behaviour
    /// of a NAT, as IPVS `ip_vs_nat_icmp`) and send it on to the other side.
    fn icmp_error_in(&mut self, ctx: &Ctx<'_>, f: &mut Frame<'_>, l4off: usize) -> Option<Action> {
        let (key, ihl) = {
            let b = f.data().get(l4off + 8..)?;
            let inner = Ipv4Packet::new_checked_truncated(b).ok()?;
            let ihl = inner.header_len();
            let p = u8::from(inner.protocol());
            if p != PROTO_TCP && p != PROTO_UDP {
                return None;
            }
            let (sp, dp) = ports(inner.payload())?;
            (
                FlowKey {
                    saddr: u32::from(inner.src_addr()),
                    daddr: u32::from(inner.dst_addr()),
                    sport: sp,
                    dport: dp,
                    proto: p,
                },
                ihl,
            )
        };
        // The quoted packet went out of us; the reply direction of it is a table key.
        let Some((id, dir)) = self.conns.lookup(&key.reversed()) else {
            return Some(Action::Drop(DropReason::IcmpNoConnection));
        };
        let c = *self.conns.get(id)?;
        let fwd = Forward::from_u8(c.mode());
        // (quoted src, quoted dst, outer src, outer dst, route to)
        let (qs, qd, os, od) = match dir {
            // Quoted = what we sent to the server side: restore the client's packet; the
            // error goes to the client from the VIP.
            Dir::Out | Dir::InOnly => (
                (c.caddr, c.cport),
                (c.vaddr, c.vport),
                Some(c.vaddr),
                c.caddr,
            ),
            // Quoted = what we sent to the client: restore the server's packet.
            Dir::In => match fwd {
                Forward::FullNat => (
                    (c.raddr, c.rport),
                    (c.laddr, c.lport),
                    Some(c.laddr),
                    c.raddr,
                ),
                _ => ((c.raddr, c.rport), (c.caddr, c.cport), None, c.raddr),
            },
        };
        let qoff = l4off + 8;
        {
            let d = f.data_mut();
            let q = d.get_mut(qoff..)?;
            let qlen = q.len();
            let mut inner = Ipv4Packet::new_unchecked(&mut *q);
            let old_s = inner.rewrite_src_addr(Ipv4Addr::from(qs.0));
            let old_d = inner.rewrite_dst_addr(Ipv4Addr::from(qd.0));
            let l4 = q.get_mut(ihl..)?;
            // Ports always; the transport checksum only when quoted in full.
            if l4.len() >= 4 {
                let (osp, odp) = ports(l4)?;
                l4[0..2].copy_from_slice(&qs.1.to_be_bytes());
                l4[2..4].copy_from_slice(&qd.1.to_be_bytes());
                let csum_at = if key.proto == PROTO_TCP { 16 } else { 6 };
                if l4.len() >= csum_at + 2 {
                    let mut cs = u16::from_be_bytes([l4[csum_at], l4[csum_at + 1]]);
                    if !(key.proto == PROTO_UDP && cs == 0) {
                        cs = checksum::update_addr(cs, old_s, Ipv4Addr::from(qs.0));
                        cs = checksum::update_addr(cs, old_d, Ipv4Addr::from(qd.0));
                        cs = checksum::update16(cs, osp, qs.1);
                        cs = checksum::update16(cs, odp, qd.1);
                        l4[csum_at..csum_at + 2].copy_from_slice(&cs.to_be_bytes());
                    }
                }
            }
            let _ = qlen;
            // The ICMP checksum covers everything after the outer header: recompute.
            let icmp = d.get_mut(l4off..)?;
            icmp[2] = 0;
            icmp[3] = 0;
            let cs = !checksum::data(icmp);
            icmp[2..4].copy_from_slice(&cs.to_be_bytes());
        }
        {
            let mut ip = Self::ip_mut(f);
            if let Some(s) = os {
                ip.rewrite_src_addr(Ipv4Addr::from(s));
            }
            ip.rewrite_dst_addr(Ipv4Addr::from(od));
        }
        let hash = c.in_key().ecmp_hash();
        Some(self.route(ctx, f, od, hash))
    }

    /// Turns the frame into an ICMP error (`ty`, `code`) about itself, sent back from the
    /// input port's first address (RFC 792; RFC 1812 §4.3.2.3: header + 8 bytes).
    fn icmp_error(
        &mut self,
        ctx: &Ctx<'_>,
        f: &mut Frame<'_>,
        ty: u8,
        code: u8,
        mtu: u16,
        l4off: usize,
    ) -> Action {
        let port = f.port;
        let Some(pc) = self.cfg.ports.get(usize::from(port)) else {
            return Action::Drop(DropReason::TtlExpired);
        };
        let Some(me) = pc.addrs.first().copied() else {
            return Action::Drop(DropReason::TtlExpired);
        };
        let quote_len = (l4off - ETH_LEN + 8).min(f.len() - ETH_LEN);
        let mut quote = [0u8; 68];
        let Some(q) = f.data().get(ETH_LEN..ETH_LEN + quote_len) else {
            return Action::Drop(DropReason::Malformed);
        };
        let Some(qdst) = quote.get_mut(..quote_len) else {
            return Action::Drop(DropReason::Malformed);
        };
        qdst.copy_from_slice(q);
        let orig_src = Ipv4Addr::new(quote[12], quote[13], quote[14], quote[15]);
        let new_len = ETH_LEN + 20 + 8 + quote_len;
        if !f.set_len(new_len) {
            return Action::Drop(DropReason::NoRoom);
        }
        let d = f.data_mut();
        let mut macs = [0u8; 12];
        macs.copy_from_slice(&d[0..12]);
        d[0..6].copy_from_slice(&macs[6..12]);
        d[6..12].copy_from_slice(&macs[0..6]);
        let repr = wire::Ipv4Repr {
            src_addr: me,
            dst_addr: orig_src,
            protocol: wire::IpProtocol::Icmp,
            payload_len: 8 + quote_len,
            ttl: DEFAULT_TTL,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            options: wire::Ipv4Options::NONE,
        };
        let Some(iph) = d.get_mut(ETH_LEN..) else {
            return Action::Drop(DropReason::Malformed);
        };
        if repr
            .emit(&mut Ipv4Packet::new_unchecked(&mut *iph))
            .is_err()
        {
            return Action::Drop(DropReason::Malformed);
        }
        Ipv4Packet::new_unchecked(&mut *iph).fill_checksum();
        let Some(icmp) = d.get_mut(ETH_LEN + 20..) else {
            return Action::Drop(DropReason::Malformed);
        };
        icmp[0] = ty;
        icmp[1] = code;
        icmp[2..4].copy_from_slice(&[0, 0]);
        icmp[4..6].copy_from_slice(&[0, 0]);
        icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
        icmp[8..8 + quote_len].copy_from_slice(&quote[..quote_len]);
        let cs = !checksum::data(icmp);
        icmp[2..4].copy_from_slice(&cs.to_be_bytes());
        let _ = ctx;
        Action::Reply { port }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
