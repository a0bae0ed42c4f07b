//! The per-worker connection table.
//!
//! Entries live in a fixed-capacity slab (64 bytes each). An open-addressing index
//! (linear probing, backward-shift deletion, 8-byte slots holding a 32-bit hash and the
//! entry number with its direction) finds one entry from both directions: the inbound
//! tuple client→VIP and the outbound tuple RS→LIP (FullNAT) or RS→client (NAT). The index
//! has 4 slots per entry of capacity, so it stays at most half full. A key is hashed by
//! one multiplication (multiply-shift) of its tuple folded into a word
//! ([`FlowKey::table_word`]) by an odd multiplier drawn from the table's seed; its home
//! slot is the top bits of the product, which every bit of the word reaches.
//!
//! Expiry uses a hashed timer wheel (Varghese & Lauck, scheme 6) of 100 ms ticks: each
//! entry is linked into the slot of the tick at which it is armed; refreshing a connection
//! only moves its deadline (the entry is re-linked lazily when its slot fires), so the
//! per-packet cost is one store. The table never reads a clock: [`ConnTable::expire`] is
//! driven by the `now` the caller passes.
//!
//! The TCP state machine and timeouts follow DPVS (`ip_vs_proto_tcp.c`), which follows
//! Linux IPVS; persistence templates follow IPVS (`ip_vs_conn_new` with
//! `IP_VS_CONN_F_TEMPLATE`): a template lives while it controls connections.

use crate::flow::FlowKey;
use std::time::Duration;

/// Wheel tick length.
pub const TICK: Duration = Duration::from_millis(100);
const WHEEL_BITS: u32 = 12;
const WHEEL_SIZE: usize = 1 << WHEEL_BITS;
const NIL: u32 = u32::MAX;
/// Marks template keys in the index (never a real IP protocol we track).
const TEMPLATE_PROTO_BIT: u8 = 0x80;

/// Converts a time since the caller's epoch to wheel ticks (saturating).
#[inline]
pub fn ticks(t: Duration) -> u32 {
    // 100 ms ticks without a 128-bit division.
    let t = t.as_secs().saturating_mul(10) + u64::from(t.subsec_millis() / 100);
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// TCP connection states of IPVS / DPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum TcpState {
    /// No packet seen yet (also the state of UDP / ICMP entries).
    #[default]
    None = 0,
    /// Three-way handshake complete.
    Established = 1,
    /// SYN seen from the server side.
    SynSent = 2,
    /// SYN seen from the client.
    SynRecv = 3,
    /// Server sent FIN.
    FinWait = 4,
    /// Both sides closed.
    TimeWait = 5,
    /// Reset or closed.
    Close = 6,
    /// Client sent FIN.
    CloseWait = 7,
    /// Waiting for the last ACK.
    LastAck = 8,
    /// Listening (IPVS sync state).
    Listen = 9,
    /// SYN+ACK seen (SYN proxy).
    SynAck = 10,
}

impl TcpState {
    const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    fn from_u8(v: u8) -> TcpState {
        TcpState::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(TcpState::Close)
    }

    /// The name ipvsadm prints.
    pub fn name(&self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }
}

/// Which way a packet goes relative to the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client → virtual service (IPVS `INPUT`).
    In,
    /// Real server → client or local address (IPVS `OUTPUT`).
    Out,
    /// Client → service when the return path bypasses us (DR / TUN: `INPUT-ONLY`).
    InOnly,
}

/// The TCP event a segment represents (IPVS `tcp_state_idx`: RST, then SYN, FIN, ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEvent {
    /// SYN set.
    Syn,
    /// FIN set.
    Fin,
    /// Only ACK set.
    Ack,
    /// RST set.
    Rst,
}

impl TcpEvent {
    /// The event of a segment with TCP `flags` (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10);
    /// `None` for a segment with none of them (IPVS ignores it for state).
    pub fn from_flags(flags: u8) -> Option<TcpEvent> {
        if flags & 0x04 != 0 {
            Some(TcpEvent::Rst)
        } else if flags & 0x02 != 0 {
            Some(TcpEvent::Syn)
        } else if flags & 0x01 != 0 {
            Some(TcpEvent::Fin)
        } else if flags & 0x10 != 0 {
            Some(TcpEvent::Ack)
        } else {
            None
        }
    }
}

/// The DPVS / IPVS TCP transition table (`tcp_states[]` in `ip_vs_proto_tcp.c`), an
/// approximation of the RFC 793 §3.2 state diagram as seen by a middlebox that observes
/// both (or, for `InOnly`, one) directions.
pub const fn tcp_transition(state: TcpState, dir: Dir, ev: TcpEvent) -> TcpState {
    use Dir::*;
    use TcpEvent::*;
    use TcpState::*;
    match (dir, ev, state) {
        // INPUT, SYN: a client opening (RFC 793 §3.4); a repeated SYN on an
        // established connection keeps it.
        (In | InOnly, Syn, Established | SynSent) => Established,
        (In | InOnly, Syn, _) => SynRecv,
        // INPUT, FIN: client closes (RFC 793 §3.5).
        (In | InOnly, Fin, None) => Close,
        (In, Fin, Established) => CloseWait,
        (InOnly, Fin, Established) => FinWait,
        (In | InOnly, Fin, SynSent) => SynSent,
        (In, Fin, SynRecv | FinWait | TimeWait | SynAck) => TimeWait,
        (InOnly, Fin, SynRecv | TimeWait | SynAck) => TimeWait,
        (InOnly, Fin, FinWait) => FinWait,
        (In | InOnly, Fin, Close) => Close,
        (In | InOnly, Fin, CloseWait) => CloseWait,
        (In | InOnly, Fin, LastAck) => LastAck,
        (In | InOnly, Fin, Listen) => Listen,
        // INPUT, ACK: handshake completion (RFC 793 §3.4 step 3).
        (In | InOnly, Ack, None) => Close,
        (In | InOnly, Ack, Established | SynRecv | SynAck) => Established,
        (In | InOnly, Ack, SynSent) => SynSent,
        (In | InOnly, Ack, FinWait) => FinWait,
        (In | InOnly, Ack, TimeWait) => TimeWait,
        (In | InOnly, Ack, Close | LastAck) => Close,
        (In | InOnly, Ack, CloseWait) => CloseWait,
        (In | InOnly, Ack, Listen) => Listen,
        // INPUT, RST: abort (RFC 793 §3.4 "Reset Processing").
        (In | InOnly, Rst, SynRecv) => SynRecv,
        (In, Rst, SynAck) => SynRecv,
        (InOnly, Rst, SynAck) => Close,
        (In | InOnly, Rst, LastAck) => LastAck,
        (In | InOnly, Rst, Listen) => Listen,
        (In | InOnly, Rst, _) => Close,
        // OUTPUT, SYN: the server side opening.
        (Out, Syn, Established) => Established,
        (Out, Syn, SynRecv | SynAck) => SynRecv,
        (Out, Syn, Listen) => Listen,
        (Out, Syn, _) => SynSent,
        // OUTPUT, FIN: server closes (RFC 793 §3.5).
        (Out, Fin, None | SynRecv | TimeWait | CloseWait | SynAck) => TimeWait,
        (Out, Fin, Established | FinWait) => FinWait,
        (Out, Fin, SynSent) => SynSent,
        (Out, Fin, Close) => Close,
        (Out, Fin, LastAck) => LastAck,
        (Out, Fin, Listen) => Listen,
        // OUTPUT, ACK.
        (Out, Ack, None | Established | SynRecv | Listen | SynAck) => Established,
        (Out, Ack, SynSent) => SynSent,
        (Out, Ack, FinWait) => FinWait,
        (Out, Ack, TimeWait) => TimeWait,
        (Out, Ack, Close) => Close,
        (Out, Ack, CloseWait) => CloseWait,
        (Out, Ack, LastAck) => LastAck,
        // OUTPUT, RST.
        (Out, Rst, SynSent) => SynSent,
        (Out, Rst, TimeWait) => TimeWait,
        (Out, Rst, _) => Close,
    }
}

const fn build_table() -> [[[TcpState; 11]; 4]; 3] {
    let mut t = [[[TcpState::None; 11]; 4]; 3];
    let dirs = [Dir::In, Dir::Out, Dir::InOnly];
    let evs = [TcpEvent::Syn, TcpEvent::Fin, TcpEvent::Ack, TcpEvent::Rst];
    let mut d = 0;
    while d < 3 {
        let mut e = 0;
        while e < 4 {
            let mut s = 0;
            while s < 11 {
                t[d][e][s] = tcp_transition(TcpState::ALL[s], dirs[d], evs[e]);
                s += 1;
            }
            e += 1;
        }
        d += 1;
    }
    t
}

/// [`tcp_transition`] evaluated for every input at compile time (one load per segment).
static TCP_TABLE: [[[TcpState; 11]; 4]; 3] = build_table();

/// Table lookup equivalent to [`tcp_transition`].
#[inline]
pub fn tcp_next(state: TcpState, dir: Dir, ev: TcpEvent) -> TcpState {
    let d = match dir {
        Dir::In => 0,
        Dir::Out => 1,
        Dir::InOnly => 2,
    };
    let e = match ev {
        TcpEvent::Syn => 0,
        TcpEvent::Fin => 1,
        TcpEvent::Ack => 2,
        TcpEvent::Rst => 3,
    };
    TCP_TABLE[d][e][state as usize]
}

/// Per-state timeouts (DPVS defaults) with ipvsadm `--set tcp tcpfin udp` overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [Duration; 11],
    /// UDP entries.
    pub udp: Duration,
    /// ICMP query entries.
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::dpvs()
    }
}

impl Timeouts {
    /// DPVS defaults (seconds): none 2, established 90, syn_sent 3, syn_recv 30,
    /// fin_wait 7, time_wait 7, close 3, close_wait 7, last_ack 7, listen 120, synack 30;
    /// UDP 300; ICMP 60.
    pub fn dpvs() -> Self {
        let s = Duration::from_secs;
        Timeouts {
            tcp: [
                s(2),
                s(90),
                s(3),
                s(30),
                s(7),
                s(7),
                s(3),
                s(7),
                s(7),
                s(120),
                s(30),
            ],
            udp: s(300),
            icmp: s(60),
        }
    }

    /// ipvsadm `--set tcp tcpfin udp`: established, fin_wait and UDP timeouts; a zero
    /// keeps the current value (as ipvsadm).
    pub fn set(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        if !tcp.is_zero() {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if !tcpfin.is_zero() {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if !udp.is_zero() {
            self.udp = udp;
        }
    }

    /// The timeout of a TCP state.
    pub fn tcp(&self, st: TcpState) -> Duration {
        self.tcp
            .get(st as usize)
            .copied()
            .unwrap_or(Duration::from_secs(2))
    }

    /// Sets the timeout of one TCP state.
    pub fn set_tcp(&mut self, st: TcpState, d: Duration) {
        if let Some(t) = self.tcp.get_mut(st as usize) {
            *t = d;
        }
    }
}

/// Connection flags.
pub mod flags {
    /// The entry is a persistence template (one index slot, no traffic).
    pub const TEMPLATE: u8 = 0x01;
    /// The client address (TOA or PROXY header) has been sent to the server.
    pub const CLIENT_ADDR_SENT: u8 = 0x02;
    /// The connection was set up by the SYN proxy.
    pub const SYNPROXY: u8 = 0x04;
    /// Counted as active on its real server (TCP established).
    pub const ACTIVE: u8 = 0x08;
    /// The outbound tuple is not indexed (DR, TUN, templates).
    pub const NO_OUT: u8 = 0x10;
    /// Slab slot is free.
    pub(crate) const FREE: u8 = 0x80;
}

/// One connection (64 bytes). Addresses and ports in host order.
///
/// The layout is fixed (`repr(C)`, no padding): each direction's addresses are one
/// aligned 8-byte word and its ports one 4-byte word (client, virtual; real server,
/// local), which the fast-path lookup compares whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Conn {
    /// Client address.
    pub caddr: u32,
    /// Virtual address.
    pub vaddr: u32,
    /// Real-server address.
    pub raddr: u32,
    /// Local (FullNAT) address, or the client address in other modes.
    pub laddr: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real-server port.
    pub rport: u16,
    /// Local port (FullNAT) or the client port.
    pub lport: u16,
    /// IP protocol.
    pub proto: u8,
    state: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// Length of the PROXY protocol header inserted toward the server (client sequence
    /// numbers after it are shifted by this much).
    pub proxy_len: u8,
    /// Service id.
    pub svc: u16,
    /// Connections controlled by this entry when it is a template; SYN retries to the
    /// server for a SYN-proxied connection.
    n_control: u16,
    /// Real-server id within the service.
    pub rs: u32,
    deadline: u32,
    armed: u32,
    next: u32,
    prev: u32,
    template: u32,
    /// SYN proxy: the server's initial sequence number minus the cookie we gave the
    /// client (server sequence numbers are shifted back by it toward the client).
    pub syn_delta: u32,
    /// Client sequence number at which a PROXY protocol header was inserted (its first
    /// data byte); a retransmission starting there gets the header again.
    pub proxy_seq: u32,
}

impl Conn {
    /// The TCP state.
    pub fn state(&self) -> TcpState {
        TcpState::from_u8(self.state & 0x0f)
    }

    /// Forwarding mode (opaque to the table; see `service::Forward`), 0..=3.
    pub fn mode(&self) -> u8 {
        self.state >> 4
    }

    /// SYN retries sent to the server (SYN proxy).
    pub fn syn_retries(&self) -> u16 {
        if self.is_template() {
            0
        } else {
            self.n_control
        }
    }

    /// Counts one more SYN retry (SYN proxy).
    pub fn bump_syn_retries(&mut self) {
        if !self.is_template() {
            self.n_control = self.n_control.saturating_add(1);
        }
    }

    /// The inbound key (client → VIP).
    pub fn in_key(&self) -> FlowKey {
        FlowKey {
            saddr: self.caddr,
            daddr: self.vaddr,
            sport: self.cport,
            dport: self.vport,
            proto: self.proto,
        }
    }

    /// The outbound key (RS → local address).
    pub fn out_key(&self) -> FlowKey {
        FlowKey {
            saddr: self.raddr,
            daddr: self.laddr,
            sport: self.rport,
            dport: self.lport,
            proto: self.proto,
        }
    }

    /// True for a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    /// Expiry deadline in ticks.
    pub fn deadline_ticks(&self) -> u32 {
        self.deadline
    }

    /// True for a live TCP entry whose inbound (`out` false) or outbound key has the
    /// addresses `aw` = source | destination << 32 and the ports `pw` = source |
    /// destination << 16: the two words as they lie in the entry (one load each).
    #[inline(always)]
    pub(crate) fn tcp_key_is(&self, out: bool, aw: u64, pw: u32) -> bool {
        let (ca, cp) = if out {
            (
                u64::from(self.raddr) | (u64::from(self.laddr) << 32),
                u32::from(self.rport) | (u32::from(self.lport) << 16),
            )
        } else {
            (
                u64::from(self.caddr) | (u64::from(self.vaddr) << 32),
                u32::from(self.cport) | (u32::from(self.vport) << 16),
            )
        };
        ca == aw
            && cp == pw
            && self.proto == crate::flow::PROTO_TCP
            && self.flags & flags::FREE == 0
    }

    /// Sets the deadline (ticks, from [`ConnTable::deadline_at`]) as
    /// [`ConnTable::touch_deadline`] does; true when it is earlier than the wheel slot
    /// the entry is linked in, and [`ConnTable::relink`] must follow.
    #[inline(always)]
    pub(crate) fn refresh(&mut self, d: u32) -> bool {
        self.deadline = d;
        d < self.armed
    }
}

/// What a new connection is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewConn {
    /// Inbound tuple client → VIP.
    pub in_key: FlowKey,
    /// Outbound tuple RS → local address (FullNAT) or RS → client (NAT). For DR and TUN
    /// it only records the real server (source address and port).
    pub out_key: FlowKey,
    /// Index the outbound tuple (false for DR and TUN, whose replies bypass us).
    pub index_out: bool,
    /// Service id.
    pub svc: u16,
    /// Real-server id.
    pub rs: u32,
    /// Forwarding mode (opaque, 0..=3).
    pub mode: u8,
    /// Initial state.
    pub state: TcpState,
    /// Initial flags.
    pub flags: u8,
    /// Initial timeout.
    pub timeout: Duration,
    /// Persistence template controlling this connection.
    pub template: Option<ConnId>,
}

/// Index of an entry in its worker's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Errors of the connection table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The table holds its configured maximum of entries.
    #[error("connection table full")]
    Full,
    /// An entry with the same inbound or outbound key exists.
    #[error("connection key already present")]
    Exists,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// 0 = empty; else the key's 32-bit hash (never 0).
    hash: u32,
    /// Entry number << 1 | (1 for the outbound key).
    ent: u32,
}

/// Table counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnStats {
    /// Entries created.
    pub created: u64,
    /// Entries expired by the timer wheel.
    pub expired: u64,
    /// Entries removed explicitly.
    pub removed: u64,
    /// Creations refused because the table was full.
    pub refused_full: u64,
}

/// The per-worker connection table (see the module documentation).
#[derive(Debug)]
pub struct ConnTable {
    entries: Vec<Conn>,
    free: u32,
    index: Vec<Slot>,
    mask: usize,
    /// The index slot of a hash is its top bits: `hash >> shift`.
    shift: u32,
    /// Odd multiplier of the key hash, drawn from the seed.
    mult: u64,
    wheel: Vec<u32>,
    cur: u32,
    started: bool,
    len: u32,
    cap: u32,
    stats: ConnStats,
}

#[inline]
fn hash32(key: &FlowKey, mult: u64) -> u32 {
    let (a, b) = key.packed();
    hash32_word(FlowKey::table_word(a, b), mult)
}

/// The index hash of a key folded by [`FlowKey::table_word`]: the high half of the
/// multiply-shift product, its lowest bit set so that it is never 0 (the index slot is
/// taken from the top bits, at most 31 of them, which the lowest bit never reaches).
#[inline(always)]
fn hash32_word(word: u64, mult: u64) -> u32 {
    ((FlowKey::table_hash_mul(word, mult) >> 32) as u32) | 1
}

impl ConnTable {
    /// A table holding at most `capacity` entries (connections and templates), hashing
    /// with `seed`. Allocates the index (32 bytes per entry) now and entries lazily.
    pub fn new(capacity: u32, seed: u64) -> Self {
        let cap = capacity.clamp(1, 1 << 29);
        let slots = (cap as usize * 4).next_power_of_two();
        ConnTable {
            entries: Vec::with_capacity(cap as usize),
            free: NIL,
            index: vec![Slot::default(); slots],
            mask: slots - 1,
            shift: 32 - slots.trailing_zeros(),
            mult: FlowKey::table_multiplier(seed),
            wheel: vec![NIL; WHEEL_SIZE],
            cur: 0,
            started: false,
            len: 0,
            cap,
            stats: ConnStats::default(),
        }
    }

    /// Entries in use (connections and templates).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Counters.
    pub fn stats(&self) -> ConnStats {
        self.stats
    }

    /// Bytes of memory the table holds per entry of capacity (entry + index slots), once
    /// every entry is in use.
    pub fn bytes_per_entry(&self) -> usize {
        std::mem::size_of::<Conn>()
            + self.index.len() * std::mem::size_of::<Slot>() / self.cap as usize
    }

    /// The entry `id`, if in use.
    #[inline]
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.entries
            .get(id.0 as usize)
            .filter(|c| c.flags & flags::FREE == 0)
    }

    /// The entry `id` for update, if in use. Do not change its keys.
    #[inline]
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.entries
            .get_mut(id.0 as usize)
            .filter(|c| c.flags & flags::FREE == 0)
    }

    /// Finds the entry for a packet with `key`, and the direction the key matched.
    /// Templates are not returned (see [`lookup_template`](Self::lookup_template)).
    #[inline(always)]
    pub fn lookup(&self, key: &FlowKey) -> Option<(ConnId, Dir)> {
        if key.proto & TEMPLATE_PROTO_BIT != 0 {
            return None;
        }
        self.find(key).map(|ent| {
            let dir = if ent & 1 == 0 { Dir::In } else { Dir::Out };
            (ConnId(ent >> 1), dir)
        })
    }

    /// The entry with key `key` in the index: the key is packed into two words once,
    /// hashed from them and compared with the candidates' packed keys (two word
    /// compares instead of five field compares).
    /// [`lookup`](Self::lookup) returning the entry too (found by the probe, so it is
    /// not looked up a second time).
    #[inline(always)]
    pub fn lookup_conn(&self, key: &FlowKey) -> Option<(ConnId, Dir, &Conn)> {
        if key.proto & TEMPLATE_PROTO_BIT != 0 {
            return None;
        }
        let ent = self.find(key)?;
        let c = self
            .entries
            .get((ent >> 1) as usize)
            .filter(|c| c.flags & flags::FREE == 0)?;
        let dir = if ent & 1 == 0 { Dir::In } else { Dir::Out };
        Some((ConnId(ent >> 1), dir, c))
    }

    /// The established fast path's lookup of a TCP segment from the words it reads off
    /// the wire: `a` = source address << 32 | destination address, `ports` = source
    /// port << 16 | destination port (host order). Returns the index word (entry
    /// number << 1 | 1 for the outbound key) and the entry, mutable so that its
    /// deadline is refreshed in place ([`Conn::refresh`]). Finds what
    /// [`lookup_conn`](Self::lookup_conn) finds for the TCP key, or `None` (never another
    /// entry). The key's home slot is tried inline; probing further is left to a call.
    #[inline(always)]
    pub(crate) fn lookup_tcp(&mut self, a: u64, ports: u32) -> Option<(u32, &mut Conn)> {
        // The key as the entry holds it (see `Conn::tcp_key_is`).
        let (aw, pw) = (a.rotate_left(32), ports.rotate_left(16));
        // `FlowKey::table_word(a, b)`, from the words at hand (`pw` is destination
        // port << 16 | source port).
        let h = hash32_word(
            a ^ u64::from(pw) ^ (u64::from(crate::flow::PROTO_TCP) << 56),
            self.mult,
        );
        let pos = (h >> self.shift) as usize;
        let ent = match self.index.get(pos) {
            Some(s) if s.hash == h => s.ent,
            _ => self.probe_tcp(pos, h, aw, pw)?,
        };
        // A home slot with the same 32-bit hash but another key (a full-hash collision,
        // chance 2^-31 per probe) answers `None` here: the caller's general path then
        // finds the entry further on.
        let c = self.entries.get_mut((ent >> 1) as usize)?;
        c.tcp_key_is(ent & 1 != 0, aw, pw).then_some((ent, c))
    }

    /// [`lookup_tcp`](Self::lookup_tcp) when the home slot `pos` holds another hash
    /// (or none): the probe goes on from there.
    #[cold]
    #[inline(never)]
    fn probe_tcp(&self, mut pos: usize, h: u32, aw: u64, pw: u32) -> Option<u32> {
        loop {
            let s = self.index.get(pos)?;
            if s.hash == 0 {
                return None;
            }
            if s.hash == h
                && self
                    .entries
                    .get((s.ent >> 1) as usize)
                    .is_some_and(|c| c.tcp_key_is(s.ent & 1 != 0, aw, pw))
            {
                return Some(s.ent);
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// Re-links entry `id` after [`Conn::refresh`] asked for it.
    #[cold]
    #[inline(never)]
    pub(crate) fn relink(&mut self, id: u32, d: u32) {
        if self.get(ConnId(id)).is_some() {
            self.unlink(id);
            self.link(id, d);
        }
    }

    #[inline(always)]
    fn find(&self, key: &FlowKey) -> Option<u32> {
        let (a, b) = key.packed();
        let h = hash32_word(FlowKey::table_word(a, b), self.mult);
        let mut pos = (h >> self.shift) as usize;
        loop {
            let s = self.index.get(pos)?;
            if s.hash == 0 {
                return None;
            }
            if s.hash == h {
                let c = self.entries.get((s.ent >> 1) as usize)?;
                let k = if s.ent & 1 == 0 {
                    c.in_key()
                } else {
                    c.out_key()
                };
                if k.packed() == (a, b) {
                    return Some(s.ent);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    fn index_insert(&mut self, key: &FlowKey, ent: u32) {
        let h = hash32(key, self.mult);
        let mut pos = (h >> self.shift) as usize;
        // Never full: at most 2 keys per entry, 4 slots per entry.
        while let Some(s) = self.index.get_mut(pos) {
            if s.hash == 0 {
                *s = Slot { hash: h, ent };
                return;
            }
            pos = (pos + 1) & self.mask;
        }
    }

    fn index_remove(&mut self, key: &FlowKey, ent: u32) {
        let h = hash32(key, self.mult);
        let mut pos = (h >> self.shift) as usize;
        loop {
            match self.index.get(pos) {
                Some(s) if s.hash == 0 => return,
                Some(s) if s.ent == ent && s.hash == h => break,
                Some(_) => pos = (pos + 1) & self.mask,
                None => return,
            }
        }
        // Backward-shift deletion (Knuth 6.4 algorithm R): move later members of the
        // cluster into the hole when their home position allows it.
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & self.mask;
            let s = match self.index.get(j) {
                Some(s) if s.hash != 0 => *s,
                _ => break,
            };
            let home = (s.hash >> self.shift) as usize;
            let dist_j = j.wrapping_sub(home) & self.mask;
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            if dist_hole < dist_j {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = s;
                }
                hole = j;
            }
        }
        if let Some(h) = self.index.get_mut(hole) {
            *h = Slot::default();
        }
    }

    fn alloc(&mut self) -> Option<u32> {
        if self.len >= self.cap {
            return None;
        }
        if self.free != NIL {
            let id = self.free;
            self.free = self.entries.get(id as usize).map_or(NIL, |c| c.next);
            return Some(id);
        }
        let id = self.entries.len() as u32;
        self.entries.push(Conn {
            flags: flags::FREE,
            ..Conn::default()
        });
        Some(id)
    }

    fn deadline_for(&self, now: Duration, timeout: Duration) -> u32 {
        let d = ticks(now).saturating_add(ticks(timeout).max(1));
        d.max(self.cur.saturating_add(1))
    }

    /// Creates a connection. Fails with `Full` at capacity (counted) or `Exists` when
    /// either key is present.
    pub fn insert(&mut self, n: NewConn, now: Duration) -> Result<ConnId, ConnError> {
        if self.find(&n.in_key).is_some() || (n.index_out && self.find(&n.out_key).is_some()) {
            return Err(ConnError::Exists);
        }
        let Some(id) = self.alloc() else {
            self.stats.refused_full += 1;
            return Err(ConnError::Full);
        };
        let out = FlowKey {
            proto: n.in_key.proto,
            ..n.out_key
        };
        let template = match n.template {
            Some(t) => match self.get_mut(t) {
                Some(tc) if tc.is_template() => {
                    tc.n_control = tc.n_control.saturating_add(1);
                    t.0
                }
                _ => NIL,
            },
            None => NIL,
        };
        let deadline = self.deadline_for(now, n.timeout);
        let c = Conn {
            caddr: n.in_key.saddr,
            vaddr: n.in_key.daddr,
            cport: n.in_key.sport,
            vport: n.in_key.dport,
            raddr: out.saddr,
            laddr: out.daddr,
            rport: out.sport,
            lport: out.dport,
            proto: n.in_key.proto,
            state: (n.state as u8 & 0x0f) | ((n.mode & 0x03) << 4),
            flags: (n.flags & !(flags::FREE | flags::NO_OUT))
                | if n.index_out { 0 } else { flags::NO_OUT },
            proxy_len: 0,
            svc: n.svc,
            n_control: 0,
            rs: n.rs,
            deadline,
            armed: deadline,
            next: NIL,
            prev: NIL,
            template,
            syn_delta: 0,
            proxy_seq: 0,
        };
        if let Some(e) = self.entries.get_mut(id as usize) {
            *e = c;
        }
        self.index_insert(&n.in_key, id << 1);
        if n.index_out {
            self.index_insert(&out, (id << 1) | 1);
        }
        self.link(id, deadline);
        self.len += 1;
        self.stats.created += 1;
        Ok(ConnId(id))
    }

    /// The template key for client `caddr` (already masked), service `vaddr:vport`.
    fn template_key(proto: u8, caddr: u32, vaddr: u32, vport: u16) -> FlowKey {
        FlowKey {
            saddr: caddr,
            daddr: vaddr,
            sport: 0,
            dport: vport,
            proto: proto | TEMPLATE_PROTO_BIT,
        }
    }

    /// Finds the persistence template for a masked client address and service.
    pub fn lookup_template(&self, proto: u8, caddr: u32, vaddr: u32, vport: u16) -> Option<ConnId> {
        self.find(&Self::template_key(proto, caddr, vaddr, vport))
            .map(|e| ConnId(e >> 1))
    }

    /// Creates a persistence template binding a masked client address to real server
    /// `rs` of service `svc` for `timeout` after its last controlled connection.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_template(
        &mut self,
        proto: u8,
        caddr: u32,
        vaddr: u32,
        vport: u16,
        svc: u16,
        rs: u32,
        timeout: Duration,
        now: Duration,
    ) -> Result<ConnId, ConnError> {
        let key = Self::template_key(proto, caddr, vaddr, vport);
        self.insert(
            NewConn {
                in_key: key,
                out_key: FlowKey::default(),
                index_out: false,
                svc,
                rs,
                mode: 0,
                state: TcpState::None,
                flags: flags::TEMPLATE,
                timeout,
                template: None,
            },
            now,
        )
    }

    fn link(&mut self, id: u32, at: u32) {
        let slot = at as usize & (WHEEL_SIZE - 1);
        let head = self.wheel.get(slot).copied().unwrap_or(NIL);
        if let Some(c) = self.entries.get_mut(id as usize) {
            c.armed = at;
            c.next = head;
            c.prev = NIL;
        }
        if head != NIL {
            if let Some(h) = self.entries.get_mut(head as usize) {
                h.prev = id;
            }
        }
        if let Some(w) = self.wheel.get_mut(slot) {
            *w = id;
        }
    }

    fn unlink(&mut self, id: u32) {
        let Some(c) = self.entries.get(id as usize) else {
            return;
        };
        let (next, prev, armed) = (c.next, c.prev, c.armed);
        if prev == NIL {
            if let Some(w) = self.wheel.get_mut(armed as usize & (WHEEL_SIZE - 1)) {
                if *w == id {
                    *w = next;
                }
            }
        } else if let Some(p) = self.entries.get_mut(prev as usize) {
            p.next = next;
        }
        if next != NIL {
            if let Some(n) = self.entries.get_mut(next as usize) {
                n.prev = prev;
            }
        }
    }

    /// Restarts the entry's timeout at `now`. A longer deadline costs one store (the
    /// entry is re-linked when its slot fires); a shorter one re-links now.
    #[inline]
    pub fn touch(&mut self, id: ConnId, timeout: Duration, now: Duration) {
        let d = self.deadline_for(now, timeout);
        let Some(c) = self.get_mut(id) else { return };
        c.deadline = d;
        if d < c.armed {
            self.unlink(id.0);
            self.link(id.0, d);
        }
    }

    /// [`touch`](Self::touch) with `now` and the timeout already converted by
    /// [`ticks`] (the packet path converts them once per burst).
    #[inline(always)]
    pub fn touch_ticks(&mut self, id: ConnId, now_ticks: u32, timeout_ticks: u32) {
        let d = self.deadline_at(now_ticks, timeout_ticks);
        self.touch_deadline(id, d);
    }

    /// The deadline [`touch_ticks`](Self::touch_ticks) sets for `now_ticks` and
    /// `timeout_ticks`; it stays valid until the wheel next advances
    /// ([`expire`](Self::expire)), so a burst computes it once.
    #[inline(always)]
    pub fn deadline_at(&self, now_ticks: u32, timeout_ticks: u32) -> u32 {
        now_ticks
            .saturating_add(timeout_ticks.max(1))
            .max(self.cur.saturating_add(1))
    }

    /// [`touch_ticks`](Self::touch_ticks) with the deadline from
    /// [`deadline_at`](Self::deadline_at) (computed since the last
    /// [`expire`](Self::expire)).
    #[inline(always)]
    pub fn touch_deadline(&mut self, id: ConnId, d: u32) {
        let Some(c) = self.get_mut(id) else { return };
        c.deadline = d;
        if d < c.armed {
            self.touch_relink(id.0, d);
        }
    }

    #[cold]
    #[inline(never)]
    fn touch_relink(&mut self, id: u32, d: u32) {
        self.unlink(id);
        self.link(id, d);
    }

    /// Applies a TCP segment with `tcp_flags` seen in direction `dir` to the entry's
    /// state and restarts its timeout (`est_timeout` overrides the established timeout,
    /// e.g. a service's). Returns (old, new) state; the caller moves the entry between
    /// active and inactive counts when Established is entered or left.
    pub fn tcp_update(
        &mut self,
        id: ConnId,
        dir: Dir,
        tcp_flags: u8,
        timeouts: &Timeouts,
        est_timeout: Option<Duration>,
        now: Duration,
    ) -> Option<(TcpState, TcpState)> {
        let c = self.get_mut(id)?;
        let old = c.state();
        let new = match TcpEvent::from_flags(tcp_flags) {
            Some(ev) => tcp_next(old, dir, ev),
            None => old,
        };
        c.state = (c.state & 0xf0) | new as u8;
        let t = match (new, est_timeout) {
            (TcpState::Established, Some(e)) => e,
            _ => timeouts.tcp(new),
        };
        self.touch(id, t, now);
        Some((old, new))
    }

    /// Sets the entry's TCP state without a transition (SYN proxy, tests).
    pub fn set_state(&mut self, id: ConnId, st: TcpState) {
        if let Some(c) = self.get_mut(id) {
            c.state = (c.state & 0xf0) | st as u8;
        }
    }

    fn release(&mut self, id: u32) -> Option<Conn> {
        let c = *self.get(ConnId(id))?;
        self.unlink(id);
        self.index_remove(&c.in_key(), id << 1);
        if c.flags & flags::NO_OUT == 0 {
            self.index_remove(&c.out_key(), (id << 1) | 1);
        }
        if c.template != NIL {
            if let Some(t) = self.get_mut(ConnId(c.template)) {
                if t.is_template() {
                    t.n_control = t.n_control.saturating_sub(1);
                }
            }
        }
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.flags = flags::FREE;
            e.next = self.free;
        }
        self.free = id;
        self.len -= 1;
        Some(c)
    }

    /// Removes an entry (e.g. TIME_WAIT reuse) and returns it. A template that still
    /// controls connections is not removed.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let c = self.get(id)?;
        if c.is_template() && c.n_control > 0 {
            return None;
        }
        let r = self.release(id.0);
        if r.is_some() {
            self.stats.removed += 1;
        }
        r
    }

    /// Advances the timer wheel to `now`, removing every entry whose deadline has
    /// passed and calling `on_expire` with it first (to release ports and counts).
    /// Templates that still control connections are re-armed for their timeout.
    /// Returns how many entries expired. Work is bounded by the wheel size plus the
    /// entries visited, never a scan of the table.
    pub fn expire(&mut self, now: Duration, mut on_expire: impl FnMut(&Conn)) -> usize {
        let target = ticks(now);
        if !self.started {
            self.started = true;
            if self.len == 0 {
                self.cur = target;
                return 0;
            }
        }
        if target <= self.cur {
            return 0;
        }
        let span = (target - self.cur).min(WHEEL_SIZE as u32);
        let mut n = 0usize;
        for step in 1..=span {
            let tick = if span == WHEEL_SIZE as u32 {
                target - (WHEEL_SIZE as u32) + step
            } else {
                self.cur + step
            };
            let slot = tick as usize & (WHEEL_SIZE - 1);
            let mut id = self.wheel.get(slot).copied().unwrap_or(NIL);
            if let Some(w) = self.wheel.get_mut(slot) {
                *w = NIL;
            }
            while id != NIL {
                let Some(c) = self.entries.get(id as usize).copied() else {
                    break;
                };
                let next = c.next;
                if c.deadline <= target && !(c.is_template() && c.n_control > 0) {
                    on_expire(&c);
                    // Already detached from the wheel: mark unlinked before release.
                    if let Some(e) = self.entries.get_mut(id as usize) {
                        e.prev = NIL;
                        e.next = NIL;
                        e.armed = NIL;
                    }
                    if self.release(id).is_some() {
                        self.stats.expired += 1;
                        n += 1;
                    }
                } else {
                    let at = if c.deadline <= target {
                        // A template with live connections: re-arm (IPVS re-arms it).
                        let t = c.deadline.saturating_sub(c.armed).max(1);
                        target.saturating_add(t)
                    } else {
                        c.deadline
                    };
                    if let Some(e) = self.entries.get_mut(id as usize) {
                        e.deadline = at;
                    }
                    self.link(id, at);
                }
                id = next;
            }
        }
        self.cur = target;
        n
    }

    /// Iterates over entries in use (control path: `fulcrum conns`).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, c)| c.flags & flags::FREE == 0)
            .map(|(i, c)| (ConnId(i as u32), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{PROTO_TCP, PROTO_UDP};
    use std::collections::HashMap;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    fn nc(i: u32) -> NewConn {
        NewConn {
            in_key: FlowKey {
                saddr: 0x0101_0000 + i,
                daddr: 0x6460_7ad2,
                sport: 1024 + (i % 50000) as u16,
                dport: 80,
                proto: PROTO_TCP,
            },
            out_key: FlowKey {
                saddr: 0xc0a8_071b,
                daddr: 0xc0a8_07bc,
                sport: 80,
                dport: (i % 60000) as u16,
                proto: PROTO_TCP,
            },
            index_out: true,
            svc: 1,
            rs: 7,
            mode: 0,
            state: TcpState::SynRecv,
            flags: 0,
            timeout: s(30),
            template: None,
        }
    }

    #[test]
    fn entry_is_64_bytes_and_under_128_with_index() {
        assert_eq!(std::mem::size_of::<Conn>(), 64);
        let t = ConnTable::new(1 << 16, 1);
        assert!(t.bytes_per_entry() <= 128, "{}", t.bytes_per_entry());
        assert_eq!(t.bytes_per_entry(), 96);
    }

    #[test]
    fn transitions_follow_the_dpvs_table() {
        use TcpState::*;
        let tr = tcp_transition;
        // Full handshake and close as seen by FullNAT.
        assert_eq!(tr(None, Dir::In, TcpEvent::Syn), SynRecv);
        assert_eq!(tr(SynRecv, Dir::Out, TcpEvent::Syn), SynRecv);
        assert_eq!(tr(SynRecv, Dir::In, TcpEvent::Ack), Established);
        assert_eq!(tr(Established, Dir::In, TcpEvent::Fin), CloseWait);
        assert_eq!(tr(CloseWait, Dir::Out, TcpEvent::Fin), TimeWait);
        assert_eq!(tr(TimeWait, Dir::In, TcpEvent::Ack), TimeWait);
        assert_eq!(tr(Established, Dir::Out, TcpEvent::Fin), FinWait);
        assert_eq!(tr(FinWait, Dir::In, TcpEvent::Fin), TimeWait);
        assert_eq!(tr(Established, Dir::In, TcpEvent::Rst), Close);
        assert_eq!(tr(None, Dir::In, TcpEvent::Ack), Close);
        assert_eq!(tr(TimeWait, Dir::In, TcpEvent::Syn), SynRecv);
        // INPUT-ONLY differs on FIN from Established and RST in SynAck.
        assert_eq!(tr(Established, Dir::InOnly, TcpEvent::Fin), FinWait);
        assert_eq!(tr(SynAck, Dir::InOnly, TcpEvent::Rst), Close);
        assert_eq!(tr(SynAck, Dir::In, TcpEvent::Rst), SynRecv);
        assert_eq!(tr(Listen, Dir::Out, TcpEvent::Ack), Established);
        assert_eq!(tr(TimeWait, Dir::Out, TcpEvent::Rst), TimeWait);
        assert_eq!(TcpEvent::from_flags(0x12), Some(TcpEvent::Syn));
        assert_eq!(TcpEvent::from_flags(0x14), Some(TcpEvent::Rst));
        assert_eq!(TcpEvent::from_flags(0x11), Some(TcpEvent::Fin));
        assert_eq!(TcpEvent::from_flags(0x18), Some(TcpEvent::Ack));
        assert_eq!(TcpEvent::from_flags(0x00), Option::None);
    }

    #[test]
    fn table_matches_the_match() {
        for &st in TcpState::ALL.iter() {
            for dir in [Dir::In, Dir::Out, Dir::InOnly] {
                for ev in [TcpEvent::Syn, TcpEvent::Fin, TcpEvent::Ack, TcpEvent::Rst] {
                    assert_eq!(tcp_next(st, dir, ev), tcp_transition(st, dir, ev));
                }
            }
        }
    }

    #[test]
    fn timeouts_defaults_and_set() {
        let mut t = Timeouts::dpvs();
        assert_eq!(t.tcp(TcpState::Established), s(90));
        assert_eq!(t.tcp(TcpState::SynSent), s(3));
        assert_eq!(t.tcp(TcpState::Listen), s(120));
        assert_eq!(t.udp, s(300));
        t.set(s(900), s(0), s(60));
        assert_eq!(t.tcp(TcpState::Established), s(900));
        assert_eq!(t.tcp(TcpState::FinWait), s(7));
        assert_eq!(t.udp, s(60));
    }

    #[test]
    fn both_directions_find_the_entry() {
        let mut t = ConnTable::new(16, 9);
        let n = nc(1);
        let id = t.insert(n, s(0)).expect("insert");
        assert_eq!(t.lookup(&n.in_key), Some((id, Dir::In)));
        assert_eq!(t.lookup(&n.out_key), Some((id, Dir::Out)));
        assert_eq!(t.lookup(&n.in_key.reversed()), None);
        assert_eq!(t.insert(n, s(0)), Err(ConnError::Exists));
        let c = t.remove(id).expect("removed");
        assert_eq!(c.in_key(), n.in_key);
        assert_eq!(t.lookup(&n.in_key), None);
        assert_eq!(t.lookup(&n.out_key), None);
        assert!(t.is_empty());
    }

    #[test]
    fn capacity_is_enforced_and_counted() {
        let mut t = ConnTable::new(3, 9);
        for i in 0..3 {
            t.insert(nc(i), s(0)).expect("room");
        }
        assert_eq!(t.insert(nc(3), s(0)), Err(ConnError::Full));
        assert_eq!(t.insert(nc(4), s(0)), Err(ConnError::Full));
        assert_eq!(t.stats().refused_full, 2);
        assert_eq!(t.len(), 3);
    }

    /// The fast path's lookup from wire words finds what `lookup_conn` finds (entry and
    /// direction) for TCP keys, nothing for others, at the index's fullest (home slots
    /// taken by other keys: probing) and after removals (backward shifts).
    #[test]
    fn lookup_tcp_finds_what_lookup_conn_finds() {
        let mut t = ConnTable::new(512, 9);
        let mut rng = crate::flow::XorShift64::new(3);
        let mut keys = Vec::new();
        for i in 0..512u32 {
            let mut n = nc(rng.next_u64() as u32 % 100_000);
            if i % 5 == 0 {
                // UDP entries with the same tuples as TCP ones could have.
                n.in_key.proto = crate::flow::PROTO_UDP;
            }
            keys.push(n.in_key);
            keys.push(FlowKey {
                proto: n.in_key.proto,
                ..n.out_key
            });
            let _ = t.insert(n, s(0));
        }
        for i in 0..200 {
            keys.push(nc(100_000 + i).in_key); // never inserted
        }
        let words = |k: &FlowKey| {
            (
                (u64::from(k.saddr) << 32) | u64::from(k.daddr),
                (u32::from(k.sport) << 16) | u32::from(k.dport),
            )
        };
        let mut displaced = 0;
        for round in 0..2 {
            for k in &keys {
                let tcp = FlowKey {
                    proto: PROTO_TCP,
                    ..*k
                };
                let want = t.lookup_conn(&tcp).map(|(id, dir, _)| (id, dir));
                let (a, p) = words(k);
                let got = t.lookup_tcp(a, p).map(|(ent, c)| {
                    assert_eq!(c.proto, PROTO_TCP);
                    let dir = if ent & 1 == 0 { Dir::In } else { Dir::Out };
                    (ConnId(ent >> 1), dir)
                });
                assert_eq!(got, want, "{k:?}");
                if want.is_some() {
                    let h = hash32(&tcp, t.mult);
                    let home = t.index[(h >> t.shift) as usize];
                    displaced += usize::from(home.hash != h);
                }
            }
            if round == 0 {
                // Remove every other entry, then look everything up again.
                let ids: Vec<ConnId> = t.iter().map(|(id, _)| id).step_by(2).collect();
                for id in ids {
                    t.remove(id).expect("present");
                }
            }
        }
        assert!(displaced > 20, "probing exercised: {displaced}");
    }

    #[test]
    fn refresh_in_place_and_relink_expire_like_touch() {
        let mut t = ConnTable::new(16, 1);
        let n = nc(1);
        let id = t.insert(n, s(0)).expect("insert");
        let _ = t.expire(s(0), |_| {});
        let (a, p) = (
            (u64::from(n.in_key.saddr) << 32) | u64::from(n.in_key.daddr),
            (u32::from(n.in_key.sport) << 16) | u32::from(n.in_key.dport),
        );
        // Later: one store, no re-link.
        let later = t.deadline_at(ticks(s(0)), ticks(s(100)));
        let (_, c) = t.lookup_tcp(a, p).expect("found");
        assert!(!c.refresh(later));
        assert_eq!(t.get(id).map(Conn::deadline_ticks), Some(later));
        // Earlier than armed: re-linked, and it expires then.
        let sooner = t.deadline_at(ticks(s(0)), ticks(s(2)));
        let (_, c) = t.lookup_tcp(a, p).expect("found");
        assert!(c.refresh(sooner));
        t.relink(id.0, sooner);
        assert_eq!(t.expire(s(1), |_| {}), 0);
        assert_eq!(t.expire(s(3), |_| {}), 1);
        assert!(t.lookup_tcp(a, p).is_none());
    }

    #[test]
    fn random_inserts_and_removes_match_a_model() {
        let mut t = ConnTable::new(512, 3);
        let mut model: HashMap<FlowKey, ConnId> = HashMap::new();
        let mut rng = crate::flow::XorShift64::new(5);
        for _ in 0..20_000 {
            let i = rng.below(700) as u32;
            let n = nc(i);
            if let Some(id) = model.get(&n.in_key).copied() {
                assert_eq!(t.lookup(&n.in_key), Some((id, Dir::In)));
                if rng.below(2) == 0 {
                    t.remove(id).expect("present");
                    model.remove(&n.in_key);
                }
            } else {
                assert_eq!(t.lookup(&n.in_key), None);
                assert_eq!(t.lookup(&n.out_key), None);
                match t.insert(n, s(0)) {
                    Ok(id) => {
                        model.insert(n.in_key, id);
                    }
                    Err(e) => assert_eq!((e, model.len()), (ConnError::Full, 512)),
                }
            }
        }
        for (k, id) in &model {
            assert_eq!(t.lookup(k), Some((*id, Dir::In)));
        }
        assert_eq!(t.len(), model.len());
    }

    #[test]
    fn expiry_by_wheel_with_touch_and_shortening() {
        let mut t = ConnTable::new(16, 1);
        let a = t.insert(nc(1), s(0)).expect("a"); // 30 s
        let b = t
            .insert(
                NewConn {
                    timeout: s(500),
                    ..nc(2)
                },
                s(0),
            )
            .expect("b"); // > one wheel turn
        let mut gone = Vec::new();
        assert_eq!(t.expire(s(29), |c| gone.push(c.caddr)), 0);
        t.touch(a, s(30), s(20)); // now due at 50 s
        assert_eq!(t.expire(s(31), |c| gone.push(c.caddr)), 0);
        assert_eq!(t.expire(s(50), |c| gone.push(c.caddr)), 1);
        assert_eq!(gone, vec![0x0101_0001]);
        assert!(t.get(a).is_none());
        assert!(t.get(b).is_some());
        // Shortening: established 90 s then RST -> close 3 s.
        let c = t.insert(nc(3), s(50)).expect("c");
        let tm = Timeouts::dpvs();
        assert_eq!(
            t.tcp_update(c, Dir::In, 0x10, &tm, None, s(51)),
            Some((TcpState::SynRecv, TcpState::Established))
        );
        assert_eq!(
            t.tcp_update(c, Dir::In, 0x04, &tm, None, s(52)),
            Some((TcpState::Established, TcpState::Close))
        );
        assert_eq!(t.expire(s(54), |_| {}), 0);
        assert_eq!(t.expire(s(55), |_| {}), 1);
        assert!(t.get(c).is_none());
        // A long jump expires b (500 s) in one call.
        assert_eq!(t.expire(s(10_000), |_| {}), 1);
        assert!(t.is_empty());
        assert_eq!(t.stats().expired, 3);
    }

    #[test]
    fn touch_ticks_matches_touch_and_relinks_when_shortened() {
        let mut a = ConnTable::new(8, 1);
        let mut b = ConnTable::new(8, 1);
        let ia = a.insert(nc(1), s(0)).expect("a");
        let ib = b.insert(nc(1), s(0)).expect("b");
        a.touch(ia, s(90), s(5));
        b.touch_ticks(ib, ticks(s(5)), ticks(s(90)));
        let da = a.get(ia).expect("a").deadline_ticks();
        assert_eq!(da, b.get(ib).expect("b").deadline_ticks());
        assert_eq!(da, 950);
        // Shorter than the armed deadline: re-linked, expires on time in both.
        a.touch(ia, s(1), s(6));
        b.touch_ticks(ib, ticks(s(6)), ticks(s(1)));
        assert_eq!(a.expire(s(6), |_| {}), 0);
        assert_eq!(b.expire(s(6), |_| {}), 0);
        assert_eq!(a.expire(s(8), |_| {}), 1);
        assert_eq!(b.expire(s(8), |_| {}), 1);
    }

    #[test]
    fn service_established_timeout_overrides_global() {
        let mut t = ConnTable::new(4, 1);
        let c = t.insert(nc(1), s(0)).expect("c");
        let tm = Timeouts::dpvs();
        t.tcp_update(c, Dir::In, 0x10, &tm, Some(s(5)), s(0));
        assert_eq!(t.expire(s(4), |_| {}), 0);
        assert_eq!(t.expire(s(5), |_| {}), 1);
    }

    #[test]
    fn template_lives_while_it_controls_connections() {
        let mut t = ConnTable::new(8, 1);
        let tpl = t
            .insert_template(PROTO_TCP, 0x0101_0000, 0x6460_7ad2, 80, 1, 42, s(60), s(0))
            .expect("tpl");
        assert_eq!(
            t.lookup_template(PROTO_TCP, 0x0101_0000, 0x6460_7ad2, 80),
            Some(tpl)
        );
        assert_eq!(
            t.lookup_template(PROTO_UDP, 0x0101_0000, 0x6460_7ad2, 80),
            None
        );
        let c = t
            .insert(
                NewConn {
                    timeout: s(200),
                    template: Some(tpl),
                    ..nc(1)
                },
                s(0),
            )
            .expect("c");
        assert!(t.remove(tpl).is_none(), "controls a connection");
        assert_eq!(t.expire(s(100), |_| {}), 0, "template re-armed");
        assert_eq!(t.expire(s(200), |_| {}), 1, "connection expires");
        assert!(t.get(c).is_none());
        assert!(t.get(tpl).is_some());
        assert_eq!(
            t.expire(s(400), |_| {}),
            1,
            "template expires after its timeout"
        );
        assert!(t.is_empty());
    }

    #[test]
    fn dr_entries_have_no_outbound_key() {
        let mut t = ConnTable::new(4, 1);
        let n = NewConn {
            index_out: false,
            ..nc(1)
        };
        let id = t.insert(n, s(0)).expect("id");
        assert_eq!(t.lookup(&n.out_key), None);
        assert_eq!(t.get(id).map(|c| c.raddr), Some(0xc0a8_071b));
        assert_eq!(t.lookup(&n.in_key), Some((id, Dir::In)));
        t.remove(id).expect("rm");
        assert!(t.is_empty());
    }
}
