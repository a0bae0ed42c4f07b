//! The BFD subsystem of `fulcrumd`: the sans-IO [`bfd::Bfd`] core on UDP sockets, sessions
//! for OSPF neighbors and static peers, and the RFC 5882 hand-off to the routing subsystem.
//!
//! What it does:
//! - Sessions: one per OSPF neighbor on a `bfd = true` interface while the neighbor is at
//!   2-Way or beyond (the routing subsystem publishes neighbor changes on a channel,
//!   [`routing_link`]), as FRR's `ip ospf bfd` does, plus one per `[[bfd.peer]]`. Timers
//!   and authentication come from `[bfd]` (FRR's defaults: 300 ms × 3) with per-peer
//!   overrides; a reload applies changed timers with a Poll Sequence and adds or removes
//!   static peers.
//! - RFC 5882: when an Up session fails (detection time expired, or the peer signalled
//!   Down) the driver tells the routing subsystem, which kills the OSPF adjacency at once
//!   ([`ospf::Instance::neighbor_dead`]); SPF reruns and the routes through that neighbor
//!   leave the RIB and the kernel. A peer going AdminDown (an orderly shutdown or a
//!   `shutdown` in FRR) does not kill the adjacency (§3.2).
//! - I/O (RFC 5881): control packets leave from a UDP socket per session, bound to the
//!   interface (SO_BINDTODEVICE), the session's local address and a source port of its
//!   own in 49152–65535 (§4: one port per session), with TTL 255 and TOS 0xC0. Reception uses one raw IPv4/UDP socket with a
//!   classic BPF filter for destination port 3784 (unfragmented), so the real IP TTL, source,
//!   destination and ingress interface (IP_PKTINFO) reach the core, which drops TTL ≠ 255.
//!   The UDP checksum is not checked here: a raw socket sees the packet before the UDP
//!   layer, and with checksum offload (veth, the TAP twins) the field is not final yet; the
//!   link's CRC and BFD authentication cover integrity. A UDP socket bound to port 3784
//!   absorbs the same datagrams so that the kernel answers no ICMP port-unreachable.
//! - `fulcrum bfd peers` ([`BfdPeersView`]) and the metrics
//!   `fulcrum_bfd_session_state{peer,interface}` (RFC 5880 numbering: 0 AdminDown, 1 Down,
//!   2 Init, 3 Up), `fulcrum_bfd_session_transitions_total{peer,interface,state}`,
//!   `fulcrum_bfd_packets_{received,sent}_total{interface}`,
//!   `fulcrum_bfd_packets_dropped_total{reason}` and `fulcrum_bfd_send_errors_total`.
//! - Orderly shutdown: every session is removed, which sends one AdminDown packet per
//!   heard peer, so peers do not take the exit for a failure.
//!
//! What it does not do: echo mode, demand mode, multihop (RFC 5883), IPv6, sessions for
//! static routes (`[[route]]`); sockets open lazily with the first session, so a node
//! without BFD binds nothing.

use std::collections::{BTreeMap, HashMap};
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bfd::{AuthKey, AuthType, Bfd as BfdCore, Event, SessionId, SessionParams, State};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use ospf::instance::NeighborState;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::config::{BfdAuthType, BfdAuthentication, BfdTimers, Config, OspfInterface};
use crate::control::{BfdPeerRow, BfdPeersView, ErrorBody, Request};
use crate::daemon::{Subsystem, SubsystemContext, SubsystemError, SubsystemFuture, Topic};

/// UDP destination port of single-hop BFD control packets (RFC 5881 §4).
pub const BFD_PORT: u16 = 3784;
/// TOS of BFD packets: precedence internetwork control, as FRR bfdd sends them.
pub const BFD_TOS: u8 = 0xC0;
/// TTL of every BFD packet sent (RFC 5881 §5).
pub const BFD_TTL: u8 = 255;
/// The source port range (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// Errors that stop the BFD subsystem.
#[derive(Debug, thiserror::Error)]
pub enum BfdDriverError {
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Errors of the BFD sockets (logged and counted; they do not stop the subsystem).
#[derive(Debug, thiserror::Error)]
pub enum BfdSocketError {
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> BfdSocketError {
    let op = op.into();
    move |source| BfdSocketError::Io { op, source }
}

// ---------------------------------------------------------------------------------------
// The channel between the routing subsystem and this one.

/// An OSPF neighbor change the routing subsystem publishes for a `bfd = true` interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighborEvent {
    /// The neighbor reached 2-Way (or beyond): a session is wanted.
    Up {
        /// Interface index.
        ifindex: u32,
        /// Interface name.
        ifname: String,
        /// The interface's address (the session's source).
        local: Ipv4Addr,
        /// The neighbor's interface address.
        peer: Ipv4Addr,
    },
    /// The neighbor fell below 2-Way or went away: its session goes.
    Down {
        /// Interface index.
        ifindex: u32,
        /// The neighbor's interface address.
        peer: Ipv4Addr,
    },
}

/// A failed session whose OSPF neighbor must be declared dead (RFC 5882 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDown {
    /// Interface index.
    pub ifindex: u32,
    /// The neighbor's interface address.
    pub peer: Ipv4Addr,
}

/// The routing subsystem's end: publish neighbor changes, receive failed sessions.
#[derive(Debug)]
pub struct RoutingBfd {
    /// Where neighbor changes go.
    pub neighbors: BfdNeighbors,
    /// Failed sessions to act on.
    pub down: mpsc::UnboundedReceiver<PeerDown>,
}

/// Sender of OSPF neighbor changes to the BFD subsystem.
#[derive(Debug, Clone)]
pub struct BfdNeighbors(mpsc::UnboundedSender<NeighborEvent>);

impl BfdNeighbors {
    /// Reports an OSPF neighbor state change: a session is wanted from 2-Way on and
    /// dropped below it, on interfaces configured with `bfd = true` (in `running`).
    #[allow(clippy::too_many_arguments)]
    pub fn neighbor_changed(
        &self,
        running: &[OspfInterface],
        ifindex: u32,
        ifname: &str,
        local: Ipv4Addr,
        peer: Ipv4Addr,
        old: NeighborState,
        new: NeighborState,
    ) {
        if !running.iter().any(|c| c.name == ifname && c.bfd) {
            return;
        }
        let was = old >= NeighborState::TwoWay;
        let is = new >= NeighborState::TwoWay;
        let ev = match (was, is) {
            (false, true) => NeighborEvent::Up {
                ifindex,
                ifname: ifname.to_string(),
                local,
                peer,
            },
            (true, false) => NeighborEvent::Down { ifindex, peer },
            _ => return,
        };
        // A closed channel means the BFD subsystem is gone (shutdown): nothing to do.
        let _ = self.0.send(ev);
    }
}

/// The two ends of the routing ↔ BFD link: give the first to
/// [`crate::routing::Routing::with_bfd`] and build the driver with the second.
pub fn routing_link() -> (RoutingBfd, BfdLink) {
    let (ntx, nrx) = mpsc::unbounded_channel();
    let (dtx, drx) = mpsc::unbounded_channel();
    (
        RoutingBfd {
            neighbors: BfdNeighbors(ntx),
            down: drx,
        },
        BfdLink {
            neighbors: nrx,
            down: dtx,
        },
    )
}

/// The BFD subsystem's end of [`routing_link`].
#[derive(Debug)]
pub struct BfdLink {
    neighbors: mpsc::UnboundedReceiver<NeighborEvent>,
    down: mpsc::UnboundedSender<PeerDown>,
}

// ---------------------------------------------------------------------------------------
// The subsystem.

/// The BFD subsystem, answering `bfd peers`.
#[derive(Debug, Default)]
pub struct BfdDriver {
    link: Option<BfdLink>,
}

impl BfdDriver {
    /// A driver for static `[[bfd.peer]]` sessions only.
    pub fn new() -> Self {
        BfdDriver { link: None }
    }

    /// A driver that also runs sessions for the OSPF neighbors the routing subsystem
    /// reports on `link` and tells it about failed ones.
    pub fn with_routing(link: BfdLink) -> Self {
        BfdDriver { link: Some(link) }
    }
}

impl Subsystem for BfdDriver {
    fn name(&self) -> &'static str {
        "bfd"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Bfd]
    }

    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture {
        let link = self.link;
        Box::pin(async move {
            run(ctx, link)
                .await
                .map_err(|e| SubsystemError(e.to_string()))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Configuration → session parameters.

/// The crate's session parameters for configured timers.
pub fn session_params(t: &BfdTimers) -> SessionParams {
    SessionParams {
        desired_min_tx: Duration::from_millis(u64::from(t.min_tx_ms)),
        required_min_rx: Duration::from_millis(u64::from(t.min_rx_ms)),
        detect_mult: u8::try_from(t.multiplier).unwrap_or(u8::MAX),
        auth: t.authentication.as_ref().map(auth_key),
    }
}

fn auth_key(a: &BfdAuthentication) -> AuthKey {
    AuthKey {
        auth_type: match a.kind {
            BfdAuthType::Simple => AuthType::SimplePassword,
            BfdAuthType::Md5 => AuthType::KeyedMd5,
            BfdAuthType::MeticulousMd5 => AuthType::MeticulousKeyedMd5,
            BfdAuthType::Sha1 => AuthType::KeyedSha1,
            BfdAuthType::MeticulousSha1 => AuthType::MeticulousKeyedSha1,
        },
        key_id: u8::try_from(a.key_id).unwrap_or(u8::MAX),
        secret: a.key.clone().into_bytes(),
    }
}

/// RFC 5880 numbering of a state (the value of `fulcrum_bfd_session_state`).
pub fn state_number(s: State) -> i64 {
    i64::from(s.bits())
}

/// The state as `fulcrum bfd peers` shows it.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::AdminDown => "AdminDown",
        State::Down => "Down",
        State::Init => "Init",
        State::Up => "Up",
    }
}

// ---------------------------------------------------------------------------------------
// Packets on the wire.

/// A received BFD datagram, split out of its IPv4 and UDP headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination.
    pub dst: Ipv4Addr,
    /// IP TTL.
    pub ttl: u8,
    /// UDP source port.
    pub src_port: u16,
    /// UDP payload (the BFD control packet).
    pub payload: &'a [u8],
}

/// Why a datagram was not handed to the core (labels of the drop counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireDrop {
    /// Not a well-formed IPv4/UDP packet.
    Malformed,
    /// A fragment (BFD control packets are never fragmented).
    Fragment,
    /// Not UDP to port 3784.
    NotBfd,
}

impl WireDrop {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            WireDrop::Malformed => "malformed_ip",
            WireDrop::Fragment => "fragment",
            WireDrop::NotBfd => "not_bfd",
        }
    }
}

/// Parses an IPv4 packet (header included, as a raw socket returns it) carrying UDP to
/// port 3784.
pub fn parse_datagram(data: &[u8]) -> Result<Datagram<'_>, WireDrop> {
    let byte = |i: usize| data.get(i).copied().ok_or(WireDrop::Malformed);
    let first = byte(0)?;
    if first >> 4 != 4 {
        return Err(WireDrop::Malformed);
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([byte(2)?, byte(3)?]));
    if ihl < 20 || total < ihl + 8 || total > data.len() {
        return Err(WireDrop::Malformed);
    }
    let frag = u16::from_be_bytes([byte(6)?, byte(7)?]);
    if frag & 0x3fff != 0 {
        return Err(WireDrop::Fragment);
    }
    if byte(9)? != 17 {
        return Err(WireDrop::NotBfd);
    }
    let ttl = byte(8)?;
    let addr = |i: usize| -> Result<Ipv4Addr, WireDrop> {
        Ok(Ipv4Addr::new(
            byte(i)?,
            byte(i + 1)?,
            byte(i + 2)?,
            byte(i + 3)?,
        ))
    };
    let (src, dst) = (addr(12)?, addr(16)?);
    let udp = data.get(ihl..total).ok_or(WireDrop::Malformed)?;
    let word = |i: usize| -> Result<u16, WireDrop> {
        Ok(u16::from_be_bytes([
            *udp.get(i).ok_or(WireDrop::Malformed)?,
            *udp.get(i + 1).ok_or(WireDrop::Malformed)?,
        ]))
    };
    let src_port = word(0)?;
    if word(2)? != BFD_PORT {
        return Err(WireDrop::NotBfd);
    }
    let ulen = usize::from(word(4)?);
    if ulen < 8 || ulen > udp.len() {
        return Err(WireDrop::Malformed);
    }
    let udp = udp.get(..ulen).ok_or(WireDrop::Malformed)?;
    Ok(Datagram {
        src,
        dst,
        ttl,
        src_port,
        payload: udp.get(8..).unwrap_or_default(),
    })
}

/// Classic BPF for a raw IPv4 socket: accept unfragmented packets whose UDP destination
/// port is 3784, drop the rest before they are queued.
fn bpf_program() -> Vec<libc::sock_filter> {
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    vec![
        op(0x28, 0, 0, 6),                   // ldh [6]            flags + fragment offset
        op(0x45, 4, 0, 0x3fff),              // jset #0x3fff → drop (MF or offset)
        op(0xb1, 0, 0, 0),                   // ldxb 4*([0]&0xf)   IP header length
        op(0x48, 0, 0, 2),                   // ldh [x+2]          UDP destination port
        op(0x15, 0, 1, u32::from(BFD_PORT)), // jeq #3784
        op(0x06, 0, 0, 0xffff),              // ret: accept
        op(0x06, 0, 0, 0),                   // ret: drop
    ]
}

/// A packet read from the receive socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReceived {
    /// Ingress interface (IP_PKTINFO).
    pub ifindex: u32,
    /// The IPv4 packet, header included.
    pub bytes: Vec<u8>,
}

/// The receive side: a raw IPv4/UDP socket filtered to port 3784, plus the UDP socket on
/// port 3784 that keeps the kernel from answering port-unreachable.
pub struct RxSocket {
    raw: AsyncFd<Socket>,
    absorber: Option<AsyncFd<Socket>>,
}

impl RxSocket {
    /// Opens both sockets (the absorber is optional: without it a warning is logged).
    pub fn open() -> Result<RxSocket, BfdSocketError> {
        let raw = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_RAW, IPPROTO_UDP)"))?;
        raw.attach_filter(&bpf_program())
            .map_err(io_err("SO_ATTACH_FILTER"))?;
        setsockopt(&raw, sockopt::Ipv4PacketInfo, &true).map_err(|e| BfdSocketError::Io {
            op: "IP_PKTINFO".into(),
            source: e.into(),
        })?;
        raw.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
        // `AsyncFd::new` is deprecated for types that do not own their descriptor; a
        // `socket2::Socket` does, and the replacement `register` is `unsafe`.
        #[allow(deprecated)]
        let raw = AsyncFd::new(raw).map_err(io_err("register with tokio"))?;
        let absorber = match Self::absorber() {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(
                    "BFD: cannot bind UDP port {BFD_PORT} ({e}); is another BFD daemon \
                     running? The kernel may answer BFD packets with port-unreachable"
                );
                None
            }
        };
        Ok(RxSocket { raw, absorber })
    }

    fn absorber() -> Result<AsyncFd<Socket>, BfdSocketError> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_DGRAM)"))?;
        s.set_reuse_address(true).map_err(io_err("SO_REUSEADDR"))?;
        let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, BFD_PORT);
        s.bind(&addr.into())
            .map_err(io_err(format!("bind {addr}")))?;
        s.set_recv_buffer_size(4096).map_err(io_err("SO_RCVBUF"))?;
        s.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
        #[allow(deprecated)]
        let fd = AsyncFd::new(s).map_err(io_err("register with tokio"))?;
        Ok(fd)
    }

    /// Receives the next filtered packet.
    pub async fn recv(&self) -> Result<RawReceived, BfdSocketError> {
        let mut buf = vec![0u8; 2048];
        loop {
            let mut guard = self.raw.readable().await.map_err(io_err("poll"))?;
            let res = guard.try_io(|inner| {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
                let msg = recvmsg::<SockaddrIn>(
                    inner.get_ref().as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
                let mut ifindex = 0u32;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                            ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(0);
                        }
                    }
                }
                Ok((msg.bytes, ifindex))
            });
            match res {
                Ok(Ok((n, ifindex))) => {
                    return Ok(RawReceived {
                        ifindex,
                        bytes: buf.get(..n).unwrap_or_default().to_vec(),
                    })
                }
                Ok(Err(e)) => return Err(io_err("recvmsg")(e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads and discards what the absorber socket queued; never resolves without one.
    pub async fn drain_absorber(&self) {
        let Some(a) = &self.absorber else {
            return std::future::pending().await;
        };
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
        let Ok(mut guard) = a.readable().await else {
            return std::future::pending().await;
        };
        while let Ok(Ok(_)) = guard.try_io(|inner| inner.get_ref().recv(&mut buf)) {}
    }
}

/// A send socket: UDP bound to one interface, one local address and a source port in
/// 49152–65535, TTL 255, TOS 0xC0.
pub struct TxSocket {
    sock: Socket,
    port: u16,
}

impl TxSocket {
    /// Opens the socket on `ifname` from `local`; `seed` picks the first port tried.
    pub fn open(ifname: &str, local: Ipv4Addr, seed: u64) -> Result<TxSocket, BfdSocketError> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(io_err("socket(AF_INET, SOCK_DGRAM)"))?;
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(io_err(format!("SO_BINDTODEVICE {ifname}")))?;
        sock.set_ttl(u32::from(BFD_TTL)).map_err(io_err("IP_TTL"))?;
        sock.set_tos(u32::from(BFD_TOS)).map_err(io_err("IP_TOS"))?;
        sock.set_nonblocking(true).map_err(io_err("O_NONBLOCK"))?;
        let span = u32::from(*SOURCE_PORTS.end() - *SOURCE_PORTS.start()) + 1;
        let first = u32::try_from(seed % u64::from(span)).unwrap_or(0);
        let mut last = None;
        for i in 0..64u32 {
            let off = (first + i * 7919) % span;
            let port = SOURCE_PORTS.start() + u16::try_from(off).unwrap_or(0);
            match sock.bind(&SocketAddrV4::new(local, port).into()) {
                Ok(()) => return Ok(TxSocket { sock, port }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(io_err(format!("bind {local}:{port} on {ifname}"))(e)),
            }
        }
        Err(io_err(format!(
            "bind {local} on {ifname}: no free source port"
        ))(last.unwrap_or_else(|| {
            std::io::Error::from(std::io::ErrorKind::AddrInUse)
        })))
    }

    /// The bound source port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one control packet to `peer`:3784 (non-blocking; a full queue is an error).
    pub fn send(&self, peer: Ipv4Addr, bytes: &[u8]) -> std::io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(peer, BFD_PORT));
        self.sock.send_to(bytes, &to).map(drop)
    }
}

// ---------------------------------------------------------------------------------------
// Metrics.

struct BfdMetrics {
    state: IntGaugeVec,
    transitions: IntCounterVec,
    rx: IntCounterVec,
    tx: IntCounterVec,
    dropped: IntCounterVec,
    send_errors: IntCounterVec,
}

impl BfdMetrics {
    fn new(reg: Option<&prometheus::Registry>) -> Result<Self, prometheus::Error> {
        let m = BfdMetrics {
            state: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_bfd_session_state",
                    "BFD session state (RFC 5880: 0 AdminDown, 1 Down, 2 Init, 3 Up)",
                ),
                &["peer", "interface"],
            )?,
            transitions: IntCounterVec::new(
                Opts::new(
                    "fulcrum_bfd_session_transitions_total",
                    "BFD session state changes, by the state entered",
                ),
                &["peer", "interface", "state"],
            )?,
            rx: IntCounterVec::new(
                Opts::new(
                    "fulcrum_bfd_packets_received_total",
                    "BFD control packets received",
                ),
                &["interface"],
            )?,
            tx: IntCounterVec::new(
                Opts::new("fulcrum_bfd_packets_sent_total", "BFD control packets sent"),
                &["interface"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "fulcrum_bfd_packets_dropped_total",
                    "BFD control packets dropped, by reason",
                ),
                &["reason"],
            )?,
            send_errors: IntCounterVec::new(
                Opts::new(
                    "fulcrum_bfd_send_errors_total",
                    "BFD control packets the kernel refused to send",
                ),
                &["interface"],
            )?,
        };
        if let Some(reg) = reg {
            reg.register(Box::new(m.state.clone()))?;
            reg.register(Box::new(m.transitions.clone()))?;
            reg.register(Box::new(m.rx.clone()))?;
            reg.register(Box::new(m.tx.clone()))?;
            reg.register(Box::new(m.dropped.clone()))?;
            reg.register(Box::new(m.send_errors.clone()))?;
        }
        Ok(m)
    }
}

// ---------------------------------------------------------------------------------------
// The core: sessions and clients, without sockets.

/// A configured static peer and its session once its interface resolved.
#[derive(Debug, Clone)]
struct StaticPeer {
    timers: BfdTimers,
    local: Option<Ipv4Addr>,
    session: Option<(SessionId, u32, Ipv4Addr)>,
}

/// What the driver remembers of a session between inputs.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    peer: Ipv4Addr,
    ifindex: u32,
    state: State,
    since: Duration,
}

/// Resolves an interface name to (ifindex, first IPv4 address).
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<(u32, Ipv4Addr)>;

/// Sessions, their clients and the RFC 5882 decisions; the I/O loop feeds it.
struct Core {
    bfd: BfdCore,
    defaults: BfdTimers,
    ospf: HashMap<(Ipv4Addr, u32), SessionId>,
    statics: BTreeMap<(Ipv4Addr, String), StaticPeer>,
    ifnames: HashMap<u32, String>,
    tracked: HashMap<SessionId, Tracked>,
    metrics: BfdMetrics,
    down: Option<mpsc::UnboundedSender<PeerDown>>,
    /// Sessions deleted since the I/O layer last looked (their send sockets close).
    removed: Vec<SessionId>,
}

impl Core {
    fn new(seed: u64, metrics: BfdMetrics, down: Option<mpsc::UnboundedSender<PeerDown>>) -> Core {
        Core {
            bfd: BfdCore::new(bfd::Config { seed }),
            defaults: crate::config::Bfd::default().defaults(),
            ospf: HashMap::new(),
            statics: BTreeMap::new(),
            ifnames: HashMap::new(),
            tracked: HashMap::new(),
            metrics,
            down,
            removed: Vec::new(),
        }
    }

    fn ifname(&self, ifindex: u32) -> String {
        self.ifnames
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// Applies `[bfd]`: OSPF sessions take changed defaults (a Poll Sequence when Up),
    /// static peers are added, changed or removed.
    fn configure(&mut self, now: Duration, c: &Config, resolve: Resolver<'_>) {
        let b = c.bfd_or_default();
        let defaults = b.defaults();
        if defaults != self.defaults {
            self.defaults = defaults;
            let p = session_params(&self.defaults);
            let shared: Vec<SessionId> = self
                .statics
                .values()
                .filter_map(|s| s.session.map(|x| x.0))
                .collect();
            for id in self.ospf.values() {
                if !shared.contains(id) {
                    if let Err(e) = self.bfd.set_params(now, *id, p.clone()) {
                        tracing::warn!("BFD: new timers for session {}: {e}", id.0);
                    }
                }
            }
        }
        let mut wanted: BTreeMap<(Ipv4Addr, String), StaticPeer> = BTreeMap::new();
        for p in &b.peer {
            wanted.insert(
                (p.address, p.interface.clone()),
                StaticPeer {
                    timers: b.peer_timers(p),
                    local: p.local,
                    session: None,
                },
            );
        }
        let old = std::mem::take(&mut self.statics);
        for (key, mut prev) in old {
            match wanted.get_mut(&key) {
                Some(w) if w.local == prev.local => {
                    if let Some((id, _, _)) = prev.session {
                        if w.timers != prev.timers {
                            if let Err(e) = self.bfd.set_params(now, id, session_params(&w.timers))
                            {
                                tracing::warn!("BFD: new timers for {}: {e}", key.0);
                            }
                        }
                    }
                    w.session = prev.session.take();
                }
                _ => {
                    if let Some((id, _, _)) = prev.session {
                        tracing::info!("BFD: static peer {} on {} removed", key.0, key.1);
                        self.release(id);
                    }
                }
            }
        }
        self.statics = wanted;
        self.resolve_statics(resolve);
    }

    /// Creates the sessions of static peers whose interface now resolves.
    fn resolve_statics(&mut self, resolve: Resolver<'_>) {
        let mut added = Vec::new();
        for ((peer, ifname), s) in self.statics.iter_mut() {
            if s.session.is_some() {
                continue;
            }
            let Some((ifindex, addr)) = resolve(ifname) else {
                continue;
            };
            let local = s.local.unwrap_or(addr);
            match self
                .bfd
                .add_session(*peer, local, ifindex, session_params(&s.timers))
            {
                Ok(id) => {
                    tracing::info!("BFD: static session with {peer} on {ifname} from {local}");
                    s.session = Some((id, ifindex, local));
                    added.push((ifindex, ifname.clone()));
                }
                Err(e) => tracing::warn!("BFD: static peer {peer} on {ifname}: {e}"),
            }
        }
        for (i, n) in added {
            self.ifnames.insert(i, n);
        }
    }

    fn unresolved_statics(&self) -> bool {
        self.statics.values().any(|s| s.session.is_none())
    }

    /// An OSPF neighbor change from the routing subsystem.
    fn neighbor(&mut self, ev: NeighborEvent) {
        match ev {
            NeighborEvent::Up {
                ifindex,
                ifname,
                local,
                peer,
            } => {
                if self.ospf.contains_key(&(peer, ifindex)) {
                    return;
                }
                self.ifnames.insert(ifindex, ifname.clone());
                match self
                    .bfd
                    .add_session(peer, local, ifindex, session_params(&self.defaults))
                {
                    Ok(id) => {
                        tracing::info!("BFD: session with OSPF neighbor {peer} on {ifname}");
                        self.ospf.insert((peer, ifindex), id);
                    }
                    Err(e) => tracing::warn!("BFD: OSPF neighbor {peer} on {ifname}: {e}"),
                }
            }
            NeighborEvent::Down { ifindex, peer } => {
                if let Some(id) = self.ospf.remove(&(peer, ifindex)) {
                    tracing::info!(
                        "BFD: OSPF neighbor {peer} on {} gone; session released",
                        self.ifname(ifindex)
                    );
                    self.release(id);
                }
            }
        }
    }

    fn release(&mut self, id: SessionId) {
        match self.bfd.remove_session(id) {
            Ok(true) => {
                self.removed.push(id);
                if let Some(t) = self.tracked.remove(&id) {
                    let labels = [t.peer.to_string(), self.ifname(t.ifindex)];
                    let _ = self
                        .metrics
                        .state
                        .remove_label_values(&[&labels[0], &labels[1]]);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("BFD: removing session {}: {e}", id.0),
        }
    }

    /// A datagram from the receive socket.
    fn receive(&mut self, now: Duration, r: &RawReceived) {
        let ifname = self.ifname(r.ifindex);
        self.metrics.rx.with_label_values(&[&ifname]).inc();
        match parse_datagram(&r.bytes) {
            Ok(d) => {
                if let Err(why) = self
                    .bfd
                    .handle_packet(now, d.src, d.dst, r.ifindex, d.ttl, d.payload)
                {
                    tracing::debug!("BFD: packet from {} on {ifname} dropped: {why}", d.src);
                    self.metrics.dropped.with_label_values(&[why.label()]).inc();
                }
            }
            Err(w) => {
                self.metrics.dropped.with_label_values(&[w.label()]).inc();
            }
        }
    }

    /// Events of the core after an input: RFC 5882 decisions and state metrics.
    fn after(&mut self, now: Duration) {
        while let Some(ev) = self.bfd.poll_event() {
            match ev {
                Event::SessionUp { peer, ifindex, .. } => {
                    tracing::info!("BFD: session with {peer} on {} up", self.ifname(ifindex));
                }
                Event::SessionDown {
                    peer,
                    ifindex,
                    diag,
                    remote_diag,
                    client_should_act,
                    ..
                } => {
                    let ospf = self.ospf.contains_key(&(peer, ifindex));
                    tracing::warn!(
                        "BFD: session with {peer} on {} down ({diag}, remote {remote_diag}){}",
                        self.ifname(ifindex),
                        match (client_should_act, ospf) {
                            (true, true) => "; declaring the OSPF neighbor dead",
                            (false, true) =>
                                "; peer went down administratively, the OSPF \
                                              adjacency stays (RFC 5882)",
                            _ => "",
                        }
                    );
                    if client_should_act && ospf {
                        if let Some(tx) = &self.down {
                            let _ = tx.send(PeerDown { ifindex, peer });
                        }
                    }
                }
            }
        }
        for p in self.bfd.peers(now) {
            let changed = match self.tracked.get(&p.id) {
                Some(t) => t.state != p.state,
                None => true,
            };
            if changed {
                self.tracked.insert(
                    p.id,
                    Tracked {
                        peer: p.peer,
                        ifindex: p.ifindex,
                        state: p.state,
                        since: now,
                    },
                );
                let peer = p.peer.to_string();
                let ifname = self.ifname(p.ifindex);
                self.metrics
                    .state
                    .with_label_values(&[&peer, &ifname])
                    .set(state_number(p.state));
                self.metrics
                    .transitions
                    .with_label_values(&[&peer, &ifname, state_name(p.state)])
                    .inc();
            }
        }
    }

    /// Removes every session (orderly exit): AdminDown packets go to heard peers.
    fn remove_all(&mut self) {
        let ids: Vec<SessionId> = self
            .ospf
            .drain()
            .map(|(_, id)| id)
            .chain(
                std::mem::take(&mut self.statics)
                    .into_values()
                    .filter_map(|s| s.session.map(|x| x.0)),
            )
            .collect();
        for id in ids {
            self.release(id);
        }
    }

    fn view(&self, now: Duration) -> BfdPeersView {
        let peers = self
            .bfd
            .peers(now)
            .into_iter()
            .map(|p| {
                let since = self
                    .tracked
                    .get(&p.id)
                    .map(|t| now.saturating_sub(t.since))
                    .unwrap_or_default();
                let client = if self.ospf.get(&(p.peer, p.ifindex)) == Some(&p.id) {
                    if self
                        .statics
                        .values()
                        .any(|s| s.session.map(|x| x.0) == Some(p.id))
                    {
                        "ospf+static"
                    } else {
                        "ospf"
                    }
                } else {
                    "static"
                };
                let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
                BfdPeerRow {
                    peer: p.peer.into(),
                    interface: self.ifname(p.ifindex),
                    state: state_name(p.state).to_string(),
                    tx_ms: ms(p.tx_interval),
                    rx_ms: ms(p.rx_interval),
                    multiplier: p.detect_mult,
                    since_seconds: since.as_secs(),
                    local: Some(p.local.into()),
                    local_discriminator: p.id.0,
                    remote_discriminator: p.remote_discriminator,
                    remote_state: state_name(p.remote_state).to_string(),
                    remote_multiplier: p.remote_detect_mult,
                    detection_ms: ms(p.detection_time),
                    diagnostic: p.diag.to_string(),
                    remote_diagnostic: p.remote_diag.to_string(),
                    uptime_seconds: p.uptime.map(|u| u.as_secs()),
                    authentication: p.auth.map(|a| a.to_string()),
                    client: client.to_string(),
                    packets_received: p.counters.rx_packets,
                    packets_sent: p.counters.tx_packets,
                    packets_dropped: p.counters.rx_dropped,
                }
            })
            .collect();
        BfdPeersView { peers }
    }
}

// ---------------------------------------------------------------------------------------
// The task.

/// (ifindex, first IPv4 address) of an interface, from the kernel.
fn resolve_interface(name: &str) -> Option<(u32, Ipv4Addr)> {
    let ifindex = nix::net::if_::if_nametoindex(name).ok()?;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for ifa in addrs {
        if ifa.interface_name != name {
            continue;
        }
        if let Some(a) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Some((ifindex, a.ip()));
        }
    }
    None
}

struct Io {
    rx: RxSocket,
    tx: HashMap<SessionId, TxSocket>,
    seed: u64,
}

impl Io {
    /// Sends everything the core queued (opening send sockets on first use).
    fn flush(&mut self, core: &mut Core) {
        while let Some(t) = core.bfd.poll_transmit() {
            let ifname = core.ifname(t.ifindex);
            let key = t.id;
            if !self.tx.contains_key(&key) {
                self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                match TxSocket::open(&ifname, t.local, self.seed >> 16) {
                    Ok(s) => {
                        tracing::info!(
                            "BFD: session with {} sends on {ifname} from {}:{}",
                            t.peer,
                            t.local,
                            s.port()
                        );
                        self.tx.insert(key, s);
                    }
                    Err(e) => {
                        tracing::warn!("BFD: {e}");
                        core.metrics.send_errors.with_label_values(&[&ifname]).inc();
                        continue;
                    }
                }
            }
            let Some(s) = self.tx.get(&key) else {
                continue;
            };
            match s.send(t.peer, &t.bytes) {
                Ok(()) => core.metrics.tx.with_label_values(&[&ifname]).inc(),
                Err(e) => {
                    tracing::debug!("BFD: send to {} on {ifname}: {e}", t.peer);
                    core.metrics.send_errors.with_label_values(&[&ifname]).inc();
                }
            }
        }
        // Sockets of deleted sessions close once their last (AdminDown) packet left.
        for id in core.removed.drain(..) {
            self.tx.remove(&id);
        }
    }
}

enum Input {
    Shutdown,
    Packet(Result<RawReceived, BfdSocketError>),
    Absorbed,
    Timer,
    Neighbor(NeighborEvent),
    Control(crate::daemon::ControlCall),
    Reload,
    Tick,
}

async fn recv_opt(io: &Option<Io>) -> Result<RawReceived, BfdSocketError> {
    match io {
        Some(io) => io.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn absorb_opt(io: &Option<Io>) {
    match io {
        Some(io) => io.rx.drain_absorber().await,
        None => std::future::pending().await,
    }
}

async fn neighbor_opt(rx: &mut Option<mpsc::UnboundedReceiver<NeighborEvent>>) -> NeighborEvent {
    match rx {
        Some(r) => match r.recv().await {
            Some(ev) => ev,
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

async fn run(mut ctx: SubsystemContext, link: Option<BfdLink>) -> Result<(), BfdDriverError> {
    let start = Instant::now();
    let now = || start.elapsed();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ (u64::from(std::process::id()) << 32);
    let metrics = BfdMetrics::new(Some(&ctx.registry))?;
    let (mut neighbors, down) = match link {
        Some(l) => (Some(l.neighbors), Some(l.down)),
        None => (None, None),
    };
    let mut core = Core::new(seed, metrics, down);
    let config: Arc<Config> = ctx.config.borrow_and_update().clone();
    core.configure(now(), &config, &resolve_interface);
    let mut io: Option<Io> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut socket_failures = 0u32;
    loop {
        // Sockets open with the first session.
        if io.is_none() && core.bfd.poll_timeout().is_some() {
            match RxSocket::open() {
                Ok(rx) => {
                    tracing::info!("BFD: listening on UDP port {BFD_PORT}");
                    io = Some(Io {
                        rx,
                        tx: HashMap::new(),
                        seed,
                    });
                }
                Err(e) => {
                    socket_failures += 1;
                    if socket_failures == 1 || socket_failures % 60 == 0 {
                        tracing::error!("BFD: cannot open the receive socket: {e}");
                    }
                }
            }
        }
        if let Some(io) = io.as_mut() {
            io.flush(&mut core);
        }
        let far = Instant::now() + Duration::from_secs(3600);
        let deadline = core.bfd.poll_timeout().map(|d| start + d).unwrap_or(far);
        let input = tokio::select! {
            _ = ctx.shutdown.wait() => Input::Shutdown,
            r = recv_opt(&io) => Input::Packet(r),
            () = absorb_opt(&io) => Input::Absorbed,
            _ = tokio::time::sleep_until(deadline.into()) => Input::Timer,
            ev = neighbor_opt(&mut neighbors) => Input::Neighbor(ev),
            Some(call) = ctx.requests.recv() => Input::Control(call),
            Ok(()) = ctx.config.changed() => Input::Reload,
            _ = tick.tick() => Input::Tick,
        };
        let t = now();
        match input {
            Input::Shutdown => break,
            Input::Packet(Ok(r)) => core.receive(t, &r),
            Input::Packet(Err(e)) => {
                tracing::warn!("BFD: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Input::Absorbed => {}
            Input::Timer => core.bfd.handle_timeout(t),
            Input::Neighbor(ev) => core.neighbor(ev),
            Input::Control(call) => {
                let answer = match call.request {
                    Request::BfdPeers => serde_json::to_value(core.view(t))
                        .map_err(|e| ErrorBody::new("internal", e.to_string())),
                    other => Err(ErrorBody::new(
                        "not_supported",
                        format!("the BFD subsystem does not answer {other:?}"),
                    )),
                };
                let _ = call.reply.send(answer);
            }
            Input::Reload => {
                let c = ctx.config.borrow_and_update().clone();
                core.configure(t, &c, &resolve_interface);
            }
            Input::Tick => {
                if core.unresolved_statics() {
                    core.resolve_statics(&resolve_interface);
                }
            }
        }
        core.after(t);
    }
    tracing::info!("BFD: shutting down (AdminDown to every peer)");
    core.remove_all();
    if let Some(io) = io.as_mut() {
        io.flush(&mut core);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// UDP checksum (for building test packets): the one's-complement sum over the pseudo-header and `udp` (0 when a packet carrying
    /// its checksum is intact).
    fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, udp: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
            sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        sum += 17;
        sum += u32::try_from(udp.len()).unwrap_or(0);
        let mut chunks = udp.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn udp_packet(ttl: u8, sport: u16, dport: u16, payload: &[u8], frag: u16) -> Vec<u8> {
        let src = Ipv4Addr::new(10, 0, 0, 2);
        let dst = Ipv4Addr::new(10, 0, 0, 1);
        let ulen = 8 + payload.len();
        let total = 20 + ulen;
        let mut p = vec![0x45, 0xc0];
        p.extend_from_slice(&(total as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[ttl, 17, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        let mut udp = Vec::new();
        udp.extend_from_slice(&sport.to_be_bytes());
        udp.extend_from_slice(&dport.to_be_bytes());
        udp.extend_from_slice(&(ulen as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let c = udp_checksum(src, dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&udp);
        p
    }

    #[test]
    fn datagrams_parse_and_bad_ones_are_classified() {
        let payload = [
            0x20, 0x40, 3, 24, 1, 2, 3, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9,
        ];
        let p = udp_packet(255, 50000, BFD_PORT, &payload, 0);
        let d = parse_datagram(&p).expect("valid");
        assert_eq!(d.src, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(d.dst, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!((d.ttl, d.src_port), (255, 50000));
        assert_eq!(d.payload, payload);
        // The real TTL comes through (the core drops TTL != 255).
        assert_eq!(
            parse_datagram(&udp_packet(64, 50000, BFD_PORT, &payload, 0)).map(|d| d.ttl),
            Ok(64)
        );
        // A UDP length beyond the IP payload is malformed.
        let mut long = p.clone();
        long[24..26].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(parse_datagram(&long), Err(WireDrop::Malformed));
        assert_eq!(
            parse_datagram(&udp_packet(255, 50000, 4784, &payload, 0)),
            Err(WireDrop::NotBfd)
        );
        assert_eq!(
            parse_datagram(&udp_packet(255, 50000, BFD_PORT, &payload, 0x2000)),
            Err(WireDrop::Fragment)
        );
        for cut in [0, 1, 10, 20, 27] {
            assert_eq!(
                parse_datagram(&p[..cut]),
                Err(WireDrop::Malformed),
                "cut {cut}"
            );
        }
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert_eq!(parse_datagram(&v6), Err(WireDrop::Malformed));
    }

    fn config(text: &str) -> Config {
        Config::parse(text).expect("valid")
    }

    const BASE: &str = "[global]\nrouter_id = \"1.1.1.1\"\n[[interface]]\nname = \"eth0\"\n";

    fn core(down: Option<mpsc::UnboundedSender<PeerDown>>, seed: u64) -> Core {
        Core::new(seed, BfdMetrics::new(None).expect("metrics"), down)
    }

    /// Moves every queued packet of `from` into `to` (TTL 255, same interface index).
    fn deliver(now: Duration, from: &mut Core, to: &mut Core) -> usize {
        let mut n = 0;
        while let Some(t) = from.bfd.poll_transmit() {
            let _ = to
                .bfd
                .handle_packet(now, t.local, t.peer, t.ifindex, 255, &t.bytes);
            n += 1;
        }
        n
    }

    fn run_for(now: &mut Duration, span: Duration, a: &mut Core, b: &mut Core, link_up: bool) {
        let end = *now + span;
        while *now < end {
            a.bfd.handle_timeout(*now);
            b.bfd.handle_timeout(*now);
            if link_up {
                deliver(*now, a, b);
                deliver(*now, b, a);
            } else {
                while a.bfd.poll_transmit().is_some() {}
                while b.bfd.poll_transmit().is_some() {}
            }
            a.after(*now);
            b.after(*now);
            *now += Duration::from_millis(5);
        }
    }

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn up_event(local: Ipv4Addr, peer: Ipv4Addr) -> NeighborEvent {
        NeighborEvent::Up {
            ifindex: 2,
            ifname: "eth0".into(),
            local,
            peer,
        }
    }

    #[test]
    fn failed_session_kills_the_ospf_neighbor_but_admin_down_does_not() {
        let fast = config(&format!("{BASE}[bfd]\nmin_tx_ms = 100\nmin_rx_ms = 100\n"));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut a = core(Some(tx), 1);
        let mut b = core(None, 2);
        let none: Resolver<'_> = &|_| None;
        a.configure(Duration::ZERO, &fast, none);
        b.configure(Duration::ZERO, &fast, none);
        a.neighbor(up_event(A, B));
        b.neighbor(up_event(B, A));
        // A duplicate Up (2-Way → Full is not reported, but be safe) shares nothing new.
        a.neighbor(up_event(A, B));
        assert_eq!(a.bfd.peers(Duration::ZERO).len(), 1);
        let mut now = Duration::ZERO;
        run_for(&mut now, Duration::from_secs(4), &mut a, &mut b, true);
        let v = a.view(now);
        assert_eq!(v.peers.len(), 1);
        let row = &v.peers[0];
        assert_eq!(row.state, "Up");
        assert_eq!((row.tx_ms, row.rx_ms, row.multiplier), (100, 100, 3));
        assert_eq!(row.client, "ospf");
        assert_ne!(row.remote_discriminator, 0);
        assert_eq!(
            a.metrics
                .state
                .with_label_values(&["10.0.0.2", "eth0"])
                .get(),
            3
        );
        assert!(rx.try_recv().is_err(), "nothing to act on while Up");

        // B removes its session (its neighbor went away in an orderly way): AdminDown.
        b.neighbor(NeighborEvent::Down {
            ifindex: 2,
            peer: A,
        });
        run_for(&mut now, Duration::from_secs(1), &mut a, &mut b, true);
        assert_eq!(a.view(now).peers[0].state, "Down");
        assert!(
            rx.try_recv().is_err(),
            "AdminDown must not kill the adjacency"
        );

        // B comes back, then the link goes silent: detection time expires, A must act.
        b.neighbor(up_event(B, A));
        run_for(&mut now, Duration::from_secs(4), &mut a, &mut b, true);
        assert_eq!(a.view(now).peers[0].state, "Up");
        let silent_from = now;
        run_for(&mut now, Duration::from_millis(400), &mut a, &mut b, false);
        let got = rx.try_recv().expect("peer down reported");
        assert_eq!(
            got,
            PeerDown {
                ifindex: 2,
                peer: B
            }
        );
        assert!(now - silent_from <= Duration::from_millis(400));
        let row = &a.view(now).peers[0];
        assert_eq!(row.state, "Down");
        assert_eq!(row.diagnostic, "control-detection-time-expired");
        assert_eq!(
            a.metrics
                .transitions
                .with_label_values(&["10.0.0.2", "eth0", "Up"])
                .get(),
            2
        );

        // The neighbor goes: the session goes, and so does its state gauge.
        a.neighbor(NeighborEvent::Down {
            ifindex: 2,
            peer: B,
        });
        assert!(a.bfd.peers(now).is_empty());
        assert!(a.view(now).peers.is_empty());
    }

    #[test]
    fn reload_changes_timers_of_running_sessions_and_auth_maps_to_the_crate() {
        let with = |tx: u32, auth: &str| {
            config(&format!(
                "{BASE}[bfd]\nmin_tx_ms = {tx}\nmin_rx_ms = {tx}\n{auth}"
            ))
        };
        let sha1 = "authentication = { type = \"meticulous-sha1\", key_id = 7, key = \"k\" }\n";
        let none: Resolver<'_> = &|_| None;
        let mut a = core(None, 5);
        let mut b = core(None, 6);
        a.configure(Duration::ZERO, &with(100, sha1), none);
        b.configure(Duration::ZERO, &with(100, sha1), none);
        let p = session_params(&a.defaults);
        let key = p.auth.as_ref().expect("auth");
        assert_eq!(
            (key.auth_type, key.key_id, key.secret.as_slice()),
            (AuthType::MeticulousKeyedSha1, 7, &b"k"[..])
        );
        a.neighbor(up_event(A, B));
        b.neighbor(up_event(B, A));
        let mut now = Duration::ZERO;
        run_for(&mut now, Duration::from_secs(4), &mut a, &mut b, true);
        let row = a.view(now).peers.remove(0);
        assert_eq!((row.state.as_str(), row.tx_ms), ("Up", 100), "{row:?}");
        assert_eq!(row.authentication.as_deref(), Some("meticulous-keyed-sha1"));
        // Reload with slower timers on both: a Poll Sequence, the session stays Up.
        a.configure(now, &with(250, sha1), none);
        b.configure(now, &with(250, sha1), none);
        run_for(&mut now, Duration::from_secs(2), &mut a, &mut b, true);
        let row = a.view(now).peers.remove(0);
        assert_eq!(row.state, "Up", "{row:?}");
        assert_eq!(
            (row.tx_ms, row.rx_ms, row.detection_ms),
            (250, 250, 750),
            "{row:?}"
        );
        assert_eq!(
            a.metrics
                .transitions
                .with_label_values(&["10.0.0.2", "eth0", "Up"])
                .get(),
            1,
            "no flap across the reload"
        );
        // A key mismatch after a reload on one side only: authentication failures.
        b.configure(now, &with(250, &sha1.replace("\"k\"", "\"other\"")), none);
        run_for(&mut now, Duration::from_secs(2), &mut a, &mut b, true);
        let row = a.view(now).peers.remove(0);
        assert_eq!(row.state, "Down", "{row:?}");
        assert!(row.packets_dropped > 0, "{row:?}");
    }

    #[test]
    fn static_peers_follow_the_config() {
        let resolve: Resolver<'_> = &|n| (n == "eth0").then_some((2, A));
        let mut a = core(None, 3);
        let c1 = config(&format!(
            "{BASE}[bfd]\nmultiplier = 4\n[[bfd.peer]]\naddress = \"10.0.0.2\"\ninterface = \"eth0\"\n\
             [[bfd.peer]]\naddress = \"10.0.0.9\"\ninterface = \"eth9\"\n"
        ));
        a.configure(Duration::ZERO, &c1, resolve);
        let v = a.view(Duration::ZERO);
        assert_eq!(v.peers.len(), 1, "eth9 does not resolve yet");
        assert_eq!(v.peers[0].multiplier, 4);
        assert_eq!(v.peers[0].client, "static");
        assert_eq!(v.peers[0].local, Some(A.into()));
        assert!(a.unresolved_statics());
        // An OSPF neighbor on the same peer shares the session.
        a.neighbor(up_event(A, B));
        assert_eq!(a.bfd.peers(Duration::ZERO).len(), 1);
        assert_eq!(a.view(Duration::ZERO).peers[0].client, "ospf+static");
        // Reload without the static peers: the OSPF client keeps the session.
        a.configure(Duration::from_secs(1), &config(BASE), resolve);
        assert_eq!(a.bfd.peers(Duration::ZERO).len(), 1);
        assert!(!a.unresolved_statics());
        a.neighbor(NeighborEvent::Down {
            ifindex: 2,
            peer: B,
        });
        assert!(a.bfd.peers(Duration::ZERO).is_empty());
    }

    #[test]
    fn neighbor_changes_are_published_only_for_bfd_interfaces() {
        let c = config(&format!(
            "{BASE}[[interface]]\nname = \"eth1\"\n[ospf]\n[[ospf.interface]]\nname = \"eth0\"\narea = \"0.0.0.0\"\nbfd = true\n\
             [[ospf.interface]]\nname = \"eth1\"\narea = \"0.0.0.0\"\n"
        ));
        let running = c.ospf.as_ref().expect("ospf").interface.clone();
        let (link, mut end) = routing_link();
        let n = &link.neighbors;
        use NeighborState as S;
        n.neighbor_changed(&running, 2, "eth0", A, B, S::Init, S::TwoWay);
        n.neighbor_changed(&running, 2, "eth0", A, B, S::TwoWay, S::ExStart);
        n.neighbor_changed(&running, 2, "eth0", A, B, S::Loading, S::Full);
        n.neighbor_changed(&running, 3, "eth1", A, B, S::Init, S::TwoWay);
        n.neighbor_changed(&running, 2, "eth0", A, B, S::Full, S::Down);
        assert_eq!(end.neighbors.try_recv(), Ok(up_event(A, B)));
        assert_eq!(
            end.neighbors.try_recv(),
            Ok(NeighborEvent::Down {
                ifindex: 2,
                peer: B
            })
        );
        assert!(end.neighbors.try_recv().is_err());
    }

    #[test]
    fn sockets_carry_ttl_255_tos_and_the_filter_keeps_only_bfd() {
        use crate::testns::{require_root, Netns};
        require_root();
        let a = Netns::new("ba");
        let b = Netns::new("bb");
        a.ip(&[
            "link", "add", "ba0", "type", "veth", "peer", "name", "bb0", "netns", &b.name,
        ]);
        a.ip(&["addr", "add", "10.97.0.1/24", "dev", "ba0"]);
        b.ip(&["addr", "add", "10.97.0.2/24", "dev", "bb0"]);
        a.ip(&["link", "set", "ba0", "up"]);
        b.ip(&["link", "set", "bb0", "up"]);
        a.wait_up("ba0");
        b.wait_up("bb0");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let receiver = b.run(move || {
            Box::pin(async move {
                let s = RxSocket::open().expect("open rx");
                assert!(s.absorber.is_some(), "port 3784 bound");
                let ifindex = nix::net::if_::if_nametoindex("bb0").expect("bb0");
                ready_tx.send(()).expect("ready");
                let mut got = Vec::new();
                while got.len() < 2 {
                    match tokio::time::timeout(Duration::from_secs(10), s.recv()).await {
                        Ok(Ok(r)) => got.push(r),
                        Ok(Err(e)) => panic!("recv: {e}"),
                        Err(_) => break,
                    }
                }
                (got, ifindex)
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("receiver ready");
        let sender = a.run(move || {
            Box::pin(async move {
                let peer = Ipv4Addr::new(10, 97, 0, 2);
                let s = TxSocket::open("ba0", Ipv4Addr::new(10, 97, 0, 1), 12345).expect("tx");
                assert!(SOURCE_PORTS.contains(&s.port()));
                // Not BFD: another port, filtered out by BPF.
                let other = std::net::UdpSocket::bind("10.97.0.1:0").expect("udp");
                other
                    .send_to(b"noise", "10.97.0.2:9999")
                    .expect("send noise");
                // BFD port with TTL 64: reaches the socket, the core drops it.
                other.set_ttl(64).expect("ttl");
                other
                    .send_to(b"ttl64", "10.97.0.2:3784")
                    .expect("send ttl64");
                s.send(peer, b"bfd-control").expect("send");
                s.port()
            })
        });
        let port = sender.join().expect("sender");
        let (got, ifindex) = receiver.join().expect("receiver");
        assert_eq!(got.len(), 2, "{got:?}");
        let d0 = parse_datagram(&got[0].bytes).expect("parse");
        assert_eq!((d0.ttl, d0.payload), (64, &b"ttl64"[..]));
        let d1 = parse_datagram(&got[1].bytes).expect("parse");
        assert_eq!(d1.ttl, 255);
        assert_eq!(d1.src_port, port);
        assert_eq!(d1.src, Ipv4Addr::new(10, 97, 0, 1));
        assert_eq!(d1.dst, Ipv4Addr::new(10, 97, 0, 2));
        assert_eq!(d1.payload, b"bfd-control");
        assert_eq!(got[1].bytes[1], BFD_TOS);
        assert!(got.iter().all(|r| r.ifindex == ifindex));
    }
}
