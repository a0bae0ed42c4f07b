//! The VRRP subsystem: the `vrrp` crate's instances on real sockets, keepalived-style.
//!
//! What it does:
//! - one raw IPv4 socket for protocol 112 per interface that has an instance
//!   (SO_BINDTODEVICE, joined to 224.0.0.18, TTL 255, TOS 0xC0, multicast loop off,
//!   IP_PKTINFO to set the advert's source), feeding received adverts to the instance with
//!   that interface and VRID;
//! - the instances of a `[[vrrp.sync_group]]` share one [`vrrp::Router`] (they fail over
//!   together); every other instance has a router of its own, so that a reload rebuilds
//!   only the units whose configuration changed and never flaps the others;
//! - on Master the virtual addresses are added to their interfaces (rtnetlink) and
//!   gratuitous ARPs are broadcast on the crate's schedule (AF_PACKET, ARP request with
//!   sender = target = VIP); on Backup, FAULT or stop they are removed;
//! - every tracked interface (and the instance's own interface, weight 0) is watched with
//!   rtnetlink link events (and polled once a second as a fallback): a link that is down
//!   or not running moves the instance to FAULT (or changes its priority by the track's
//!   weight);
//! - on shutdown every Master sends a priority-0 advert (resignation) and the VIPs are
//!   removed; at start, VIPs an earlier run left behind are removed before the instance
//!   starts in Backup;
//! - `fulcrum vrrp` ([`crate::control::VrrpView`]) and the `fulcrum_vrrp_*` metrics.
//! - in `dpdk` mode ([`VrrpDriver::with_ownership`]), every change of ownership of a
//!   virtual address (Master: owned; Backup, FAULT, stop: not) is reported to the
//!   dataplane subsystem as a [`VipOwnership`], before the address is added to or
//!   removed from the twin, so the dataplane answers ARP and takes new connections
//!   for a VIP only where VRRP is Master.
//!
//! Time is a monotonic epoch taken when the subsystem starts, passed to the crate as a
//! `Duration`. What it does not do: the virtual MAC (`use_vmac`), notify scripts,
//! `track_script`, IPv6.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnetwork::Ipv4Network;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, LinkAddr, MsgFlags, SockaddrIn};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Config, VrrpInstance};
use crate::control::{ErrorBody, Request, VrrpRow, VrrpView};
use crate::daemon::{Subsystem, SubsystemContext, SubsystemError, SubsystemFuture, Topic};
use crate::dataplane_driver::VipOwnership;
use crate::netlink::{AddressProgrammer, NetEvent, NetEvents, NetlinkError};

/// TOS of VRRP adverts (precedence internetwork control, as keepalived sends them).
const VRRP_TOS: u32 = 0xC0;
/// Largest IPv4 packet.
const MAX_PACKET: usize = 65535;
/// How often link states are polled.
const LINK_POLL: Duration = Duration::from_secs(1);

/// Errors of the VRRP driver.
#[derive(Debug, thiserror::Error)]
pub enum VrrpDriverError {
    /// The interface does not exist.
    #[error("interface {name}: {source}")]
    NoInterface {
        /// Interface name.
        name: String,
        /// The lookup error.
        source: nix::Error,
    },
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A received packet had no valid IPv4 header.
    #[error("malformed IPv4 packet: {0}")]
    Malformed(&'static str),
    /// Adding or removing an address failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> VrrpDriverError {
    move |source| VrrpDriverError::Io { op, source }
}

// ---------------------------------------------------------------------------------------
// The protocol-112 socket.

/// A VRRP packet received on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    payload: Vec<u8>,
}

/// A raw protocol-112 socket on one interface.
struct VrrpSocket {
    fd: AsyncFd<Socket>,
    ifindex: u32,
}

impl VrrpSocket {
    fn open(name: &str) -> Result<VrrpSocket, VrrpDriverError> {
        let ifindex =
            nix::net::if_::if_nametoindex(name).map_err(|source| VrrpDriverError::NoInterface {
                name: name.to_string(),
                source,
            })?;
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(vrrp::wire::IP_PROTOCOL))),
        )
        .map_err(io("socket(AF_INET, SOCK_RAW, 112)"))?;
        sock.bind_device(Some(name.as_bytes()))
            .map_err(io("SO_BINDTODEVICE"))?;
        sock.set_multicast_ttl_v4(u32::from(vrrp::wire::TTL))
            .map_err(io("IP_MULTICAST_TTL"))?;
        sock.set_ttl(u32::from(vrrp::wire::TTL))
            .map_err(io("IP_TTL"))?;
        sock.set_multicast_loop_v4(false)
            .map_err(io("IP_MULTICAST_LOOP"))?;
        sock.set_tos(VRRP_TOS).map_err(io("IP_TOS"))?;
        sock.join_multicast_v4_n(
            &vrrp::wire::MULTICAST_ADDR,
            &InterfaceIndexOrAddress::Index(ifindex),
        )
        .map_err(io("join 224.0.0.18"))?;
        sock.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
        // `AsyncFd::new` is deprecated for types that do not own their descriptor; a
        // `socket2::Socket` does, and the replacement `register` is `unsafe`.
        #[allow(deprecated)]
        let fd = AsyncFd::new(sock).map_err(io("register with tokio"))?;
        Ok(VrrpSocket { fd, ifindex })
    }

    async fn recv(&self) -> Result<Received, VrrpDriverError> {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let mut guard = self.fd.readable().await.map_err(io("poll"))?;
            let res = guard.try_io(|inner| {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = recvmsg::<SockaddrIn>(
                    inner.get_ref().as_raw_fd(),
                    &mut iov,
                    None,
                    MsgFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
                Ok(msg.bytes)
            });
            match res {
                Ok(Ok(n)) => {
                    let data = buf.get(..n).ok_or(VrrpDriverError::Malformed("length"))?;
                    return parse_ipv4(data);
                }
                Ok(Err(e)) => {
                    return Err(VrrpDriverError::Io {
                        op: "recvmsg",
                        source: e,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }

    async fn send(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<(), VrrpDriverError> {
        let info = libc::in_pktinfo {
            ipi_ifindex: i32::try_from(self.ifindex).unwrap_or(0),
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(src).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let addr = SockaddrIn::from(SocketAddrV4::new(dst, 0));
        loop {
            let mut guard = self.fd.writable().await.map_err(io("poll"))?;
            let res = guard.try_io(|inner| {
                sendmsg(
                    inner.get_ref().as_raw_fd(),
                    &[IoSlice::new(payload)],
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&addr),
                )
                .map_err(std::io::Error::from)
            });
            match res {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => {
                    return Err(VrrpDriverError::Io {
                        op: "sendmsg",
                        source: e,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// Splits a received IPv4 packet into the fields VRRP checks and the payload.
fn parse_ipv4(data: &[u8]) -> Result<Received, VrrpDriverError> {
    let first = *data.first().ok_or(VrrpDriverError::Malformed("empty"))?;
    if first >> 4 != 4 {
        return Err(VrrpDriverError::Malformed("not IPv4"));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || data.len() < ihl {
        return Err(VrrpDriverError::Malformed("bad header length"));
    }
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let total = usize::from(u16::from_be_bytes([byte(2), byte(3)]));
    let end = if total >= ihl {
        total.min(data.len())
    } else {
        data.len()
    };
    let addr = |i: usize| Ipv4Addr::new(byte(i), byte(i + 1), byte(i + 2), byte(i + 3));
    Ok(Received {
        src: addr(12),
        dst: addr(16),
        ttl: byte(8),
        payload: data.get(ihl..end).unwrap_or_default().to_vec(),
    })
}

// ---------------------------------------------------------------------------------------
// Links and gratuitous ARP.

/// What the driver needs to know of an interface.
#[derive(Debug, Clone)]
struct LinkInfo {
    ifindex: u32,
    up: bool,
    link: Option<LinkAddr>,
    ipv4: Vec<Ipv4Addr>,
}

/// The interfaces of the namespace (getifaddrs): index, up and running, MAC, IPv4s;
/// `None` when they cannot be read.
fn read_links() -> Option<HashMap<String, LinkInfo>> {
    use nix::net::if_::InterfaceFlags;
    let mut out: HashMap<String, LinkInfo> = HashMap::new();
    let addrs = match nix::ifaddrs::getifaddrs() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("vrrp: cannot read the interfaces: {e}");
            return None;
        }
    };
    for a in addrs {
        let e = out
            .entry(a.interface_name.clone())
            .or_insert_with(|| LinkInfo {
                ifindex: nix::net::if_::if_nametoindex(a.interface_name.as_str()).unwrap_or(0),
                up: false,
                link: None,
                ipv4: Vec::new(),
            });
        e.up = a.flags.contains(InterfaceFlags::IFF_UP)
            && a.flags.contains(InterfaceFlags::IFF_RUNNING);
        if let Some(s) = &a.address {
            if let Some(l) = s.as_link_addr() {
                e.link = Some(*l);
            } else if let Some(v4) = s.as_sockaddr_in() {
                e.ipv4.push(v4.ip());
            }
        }
    }
    Some(out)
}

/// A gratuitous ARP: a broadcast ARP request with sender = target = `vip` (padded to the
/// Ethernet minimum).
fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 60] {
    let mut f = [0u8; 60];
    let ip = vip.octets();
    let fields: [&[u8]; 11] = [
        &[0xff; 6],    // destination: broadcast
        &mac,          // source
        &[0x08, 0x06], // ethertype ARP
        &[0x00, 0x01], // hardware type Ethernet
        &[0x08, 0x00], // protocol type IPv4
        &[6, 4],       // hardware and protocol address lengths
        &[0x00, 0x01], // request
        &mac,          // sender hardware address
        &ip,           // sender protocol address
        &[0xff; 6],    // target hardware address (keepalived sends broadcast)
        &ip,           // target protocol address
    ];
    let mut at = 0;
    for part in fields {
        if let Some(dst) = f.get_mut(at..at + part.len()) {
            dst.copy_from_slice(part);
        }
        at += part.len();
    }
    f
}

/// Sends gratuitous ARPs on an AF_PACKET socket (protocol 0: it never receives).
struct GarpSender {
    sock: Socket,
}

impl GarpSender {
    fn open() -> Result<GarpSender, VrrpDriverError> {
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(io("socket(AF_PACKET, SOCK_RAW)"))?;
        Ok(GarpSender { sock })
    }

    fn send(&self, link: &LinkAddr, vip: Ipv4Addr, count: u32) -> Result<(), VrrpDriverError> {
        let mac = link.addr().ok_or(VrrpDriverError::Malformed("no MAC"))?;
        let frame = garp_frame(mac, vip);
        for _ in 0..count {
            nix::sys::socket::sendto(self.sock.as_raw_fd(), &frame, link, MsgFlags::empty())
                .map_err(|e| VrrpDriverError::Io {
                    op: "send gratuitous ARP",
                    source: e.into(),
                })?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Metrics.

#[derive(Clone)]
struct VrrpMetrics {
    state: IntGaugeVec,
    priority: IntGaugeVec,
    transitions: IntCounterVec,
    adverts_rx: IntCounterVec,
    adverts_tx: IntCounterVec,
    drops: IntCounterVec,
    unmatched: IntCounterVec,
}

impl VrrpMetrics {
    fn new(registry: &Registry) -> Result<VrrpMetrics, prometheus::Error> {
        let m = VrrpMetrics {
            state: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_vrrp_state",
                    "VRRP instance state: 0 init, 1 backup, 2 master, 3 fault.",
                ),
                &["instance"],
            )?,
            priority: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_vrrp_effective_priority",
                    "VRRP priority after tracking.",
                ),
                &["instance"],
            )?,
            transitions: IntCounterVec::new(
                Opts::new(
                    "fulcrum_vrrp_transitions_total",
                    "VRRP state transitions by target state.",
                ),
                &["instance", "to"],
            )?,
            adverts_rx: IntCounterVec::new(
                Opts::new(
                    "fulcrum_vrrp_adverts_received_total",
                    "Valid VRRP adverts received.",
                ),
                &["instance"],
            )?,
            adverts_tx: IntCounterVec::new(
                Opts::new("fulcrum_vrrp_adverts_sent_total", "VRRP adverts sent."),
                &["instance"],
            )?,
            drops: IntCounterVec::new(
                Opts::new(
                    "fulcrum_vrrp_drops_total",
                    "VRRP packets dropped by an instance, by reason.",
                ),
                &["instance", "reason"],
            )?,
            unmatched: IntCounterVec::new(
                Opts::new(
                    "fulcrum_vrrp_unmatched_packets_total",
                    "VRRP packets no instance took (unknown VRID, malformed).",
                ),
                &["interface", "reason"],
            )?,
        };
        registry.register(Box::new(m.state.clone()))?;
        registry.register(Box::new(m.priority.clone()))?;
        registry.register(Box::new(m.transitions.clone()))?;
        registry.register(Box::new(m.adverts_rx.clone()))?;
        registry.register(Box::new(m.adverts_tx.clone()))?;
        registry.register(Box::new(m.drops.clone()))?;
        registry.register(Box::new(m.unmatched.clone()))?;
        Ok(m)
    }
}

fn state_code(s: vrrp::State) -> i64 {
    match s {
        vrrp::State::Initialize => 0,
        vrrp::State::Backup => 1,
        vrrp::State::Master => 2,
        vrrp::State::Fault => 3,
    }
}

fn state_name(s: vrrp::State) -> &'static str {
    match s {
        vrrp::State::Initialize => "INIT",
        vrrp::State::Backup => "BACKUP",
        vrrp::State::Master => "MASTER",
        vrrp::State::Fault => "FAULT",
    }
}

/// The counters of [`vrrp::Stats`] exported as drops, with their reason label.
fn drop_counters(s: &vrrp::Stats) -> [(&'static str, u64); 11] {
    [
        ("ttl", s.drop_ttl),
        ("truncated", s.drop_truncated),
        ("version", s.drop_version),
        ("type", s.drop_type),
        ("checksum", s.drop_checksum),
        ("not_mine", s.drop_not_mine),
        ("auth_type", s.drop_auth_type),
        ("auth_failure", s.drop_auth_failure),
        ("interval", s.drop_interval),
        ("address_list", s.address_list_mismatch),
        ("own", s.drop_own),
    ]
}

// ---------------------------------------------------------------------------------------
// Units: one router per sync group or lone instance.

/// A sync group (or a lone instance) and its router.
struct Unit {
    /// Sync group name.
    group: Option<String>,
    /// The configuration the unit was built from (compared on reload).
    key: Vec<VrrpInstance>,
    /// `None` until every member's interface has an IPv4 address.
    router: Option<vrrp::Router>,
    /// Counters already exported, per instance.
    exported: HashMap<String, vrrp::Stats>,
}

impl Unit {
    fn instance_cfg(&self, name: &str) -> Option<&VrrpInstance> {
        self.key.iter().find(|i| i.name == name)
    }

    fn has(&self, interface: &str, vrid: u8) -> bool {
        self.key
            .iter()
            .any(|i| i.interface == interface && i.virtual_router_id == u32::from(vrid))
    }
}

/// The units a configuration asks for: sync groups first, then lone instances.
fn wanted_units(c: &Config) -> Vec<(Option<String>, Vec<VrrpInstance>)> {
    let mut out = Vec::new();
    let mut grouped = HashSet::new();
    for g in &c.vrrp.sync_group {
        let members: Vec<VrrpInstance> = g
            .group
            .iter()
            .filter_map(|m| c.vrrp.instance.iter().find(|i| &i.name == m).cloned())
            .collect();
        grouped.extend(g.group.iter().cloned());
        out.push((Some(g.name.clone()), members));
    }
    for i in &c.vrrp.instance {
        if !grouped.contains(&i.name) {
            out.push((None, vec![i.clone()]));
        }
    }
    out
}

struct SocketEntry {
    sock: Arc<VrrpSocket>,
    task: JoinHandle<()>,
}

impl Drop for SocketEntry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The driver's state.
struct Driver {
    epoch: Instant,
    units: Vec<Unit>,
    sockets: HashMap<String, SocketEntry>,
    rx_tx: mpsc::Sender<(String, Received)>,
    addrs: AddressProgrammer,
    garp: Option<GarpSender>,
    links: HashMap<String, LinkInfo>,
    metrics: VrrpMetrics,
    transitions: HashMap<String, u64>,
    /// Where ownership changes are reported (dpdk mode).
    ownership: Option<mpsc::UnboundedSender<VipOwnership>>,
}

/// Whether VRRP holds an instance's addresses after event `e`: `Some(true)` on Master,
/// `Some(false)` on Backup, Fault and stop, `None` for events that change nothing.
fn ownership_after(e: &vrrp::Event) -> Option<bool> {
    match e {
        vrrp::Event::BecameMaster { .. } => Some(true),
        vrrp::Event::BecameBackup { .. }
        | vrrp::Event::BecameFault { .. }
        | vrrp::Event::Stopped { .. } => Some(false),
        _ => None,
    }
}

/// The reports for an instance's addresses (`(dev, address)`) after event `e`.
fn ownership_reports(e: &vrrp::Event, vips: &[(String, Ipv4Network)]) -> Vec<VipOwnership> {
    let Some(owned) = ownership_after(e) else {
        return Vec::new();
    };
    vips.iter()
        .map(|(dev, net)| VipOwnership {
            address: net.ip(),
            interface: dev.clone(),
            owned,
        })
        .collect()
}

impl Driver {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Opens sockets for the interfaces in use (retrying missing ones), closes the others.
    fn reconcile_sockets(&mut self) {
        let wanted: BTreeSet<String> = self
            .units
            .iter()
            .flat_map(|u| u.key.iter().map(|i| i.interface.clone()))
            .collect();
        self.sockets.retain(|name, _| wanted.contains(name));
        for name in wanted {
            if self.sockets.contains_key(&name) {
                continue;
            }
            match VrrpSocket::open(&name) {
                Ok(s) => {
                    let sock = Arc::new(s);
                    let tx = self.rx_tx.clone();
                    let (rs, rname) = (sock.clone(), name.clone());
                    let unmatched = self.metrics.unmatched.clone();
                    let task = tokio::spawn(async move {
                        loop {
                            match rs.recv().await {
                                Ok(r) => {
                                    if tx.send((rname.clone(), r)).await.is_err() {
                                        return;
                                    }
                                }
                                Err(VrrpDriverError::Malformed(why)) => {
                                    tracing::debug!("vrrp: {rname}: malformed packet: {why}");
                                    unmatched.with_label_values(&[&rname, "malformed"]).inc();
                                }
                                Err(e) => {
                                    tracing::warn!("vrrp: {rname}: {e}");
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                            }
                        }
                    });
                    tracing::info!("vrrp: listening on {name}");
                    self.sockets.insert(name, SocketEntry { sock, task });
                }
                Err(e) => tracing::warn!("vrrp: cannot open a socket on {name}: {e}"),
            }
        }
    }

    /// Builds the router of a unit once every member has a source address; removes VIPs
    /// left from an earlier run and starts it with the current link states.
    async fn start_unit(&mut self, u: usize) {
        let all_vips: HashSet<Ipv4Addr> = self
            .units
            .iter()
            .flat_map(|u| u.key.iter())
            .flat_map(|i| i.virtual_ipaddress.iter().map(|v| v.address.ip()))
            .collect();
        let Some(unit) = self.units.get(u) else {
            return;
        };
        if unit.router.is_some() {
            return;
        }
        let mut router = vrrp::Router::new();
        for vi in &unit.key {
            let source = vi.source_ip.or_else(|| {
                self.links
                    .get(&vi.interface)
                    .and_then(|l| l.ipv4.iter().find(|a| !all_vips.contains(a)).copied())
            });
            let Some(source) = source else {
                tracing::warn!(
                    "vrrp: {}: interface {} has no IPv4 address yet; instance waits",
                    vi.name,
                    vi.interface
                );
                return;
            };
            if let Err(e) = router.add_instance(vi.core_config(source)) {
                tracing::error!("vrrp: {}: {e}", vi.name);
                return;
            }
        }
        if let Some(g) = &unit.group {
            let members: Vec<&str> = unit.key.iter().map(|i| i.name.as_str()).collect();
            if let Err(e) = router.add_sync_group(g, &members) {
                tracing::error!("vrrp: sync group {g}: {e}");
                return;
            }
        }
        // Addresses an earlier run (killed) may have left: we start as Backup.
        let stale: Vec<(String, Ipv4Addr)> = unit
            .key
            .iter()
            .flat_map(|i| {
                i.virtual_ipaddress
                    .iter()
                    .map(|v| (i.vip_dev(v).to_string(), v.address.ip()))
            })
            .collect();
        for (dev, ip) in stale {
            if let Some(l) = self.links.get(&dev) {
                if l.ipv4.contains(&ip) {
                    match self.addrs.remove(l.ifindex, ip).await {
                        Ok(_) => tracing::info!("vrrp: removed stale {ip} from {dev}"),
                        Err(e) => tracing::warn!("vrrp: {e}"),
                    }
                }
            }
        }
        let now = self.now();
        let tracks: Vec<String> = router
            .instances()
            .flat_map(|(_, i)| {
                i.config()
                    .track_interface
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        for t in tracks {
            let up = self.links.get(&t).is_some_and(|l| l.up);
            router.set_track(now, &t, up);
        }
        router.startup(now);
        for (_, i) in router.instances() {
            let name = i.config().name.clone();
            self.metrics
                .state
                .with_label_values(&[&name])
                .set(state_code(i.state()));
            tracing::info!(
                "vrrp: {name} started on {} (VRID {}, priority {})",
                i.config().interface,
                i.config().virtual_router_id,
                i.effective_priority()
            );
        }
        if let Some(unit) = self.units.get_mut(u) {
            unit.router = Some(router);
            unit.exported.clear();
        }
        self.flush(u).await;
    }

    /// Sends what unit `u` has to send and acts on its events.
    async fn flush(&mut self, u: usize) {
        let mut sends = Vec::new();
        let mut events = Vec::new();
        {
            let Some(router) = self.units.get_mut(u).and_then(|x| x.router.as_mut()) else {
                return;
            };
            while let Some((id, t)) = router.poll_transmit() {
                let ifname = router
                    .instance(id)
                    .map(|i| i.config().interface.clone())
                    .unwrap_or_default();
                sends.push((ifname, t));
            }
            while let Some((id, e)) = router.poll_event() {
                let name = router
                    .instance(id)
                    .map(|i| i.config().name.clone())
                    .unwrap_or_default();
                events.push((name, e));
            }
        }
        for (ifname, t) in sends {
            match self.sockets.get(&ifname) {
                Some(s) => {
                    if let Err(e) = s.sock.send(t.source, t.destination, &t.payload).await {
                        tracing::warn!("vrrp: send on {ifname} to {}: {e}", t.destination);
                    }
                }
                None => tracing::debug!("vrrp: no socket on {ifname}; advert not sent"),
            }
        }
        for (name, e) in events {
            self.event(u, &name, e).await;
        }
        self.export_stats(u);
    }

    async fn event(&mut self, u: usize, name: &str, e: vrrp::Event) {
        let vips: Vec<(String, Ipv4Network)> = self
            .units
            .get(u)
            .and_then(|unit| unit.instance_cfg(name))
            .map(|i| {
                i.virtual_ipaddress
                    .iter()
                    .map(|v| (i.vip_dev(v).to_string(), v.address))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(tx) = &self.ownership {
            for r in ownership_reports(&e, &vips) {
                // The dataplane subsystem has stopped (shutdown): nothing to tell.
                let _ = tx.send(r);
            }
        }
        let transition = |to: vrrp::State| {
            tracing::info!("vrrp: {name} entering {}", state_name(to));
            self.metrics
                .state
                .with_label_values(&[name])
                .set(state_code(to));
            self.metrics
                .transitions
                .with_label_values(&[name, &state_name(to).to_ascii_lowercase()])
                .inc();
        };
        match e {
            vrrp::Event::BecameMaster { .. } => {
                transition(vrrp::State::Master);
                *self.transitions.entry(name.to_string()).or_default() += 1;
                for (dev, net) in vips {
                    let Some(ifindex) = self.ifindex(&dev) else {
                        tracing::warn!("vrrp: {name}: no interface {dev} for {net}");
                        continue;
                    };
                    match self.addrs.add(ifindex, net).await {
                        Ok(()) => tracing::info!("vrrp: {name}: added {net} to {dev}"),
                        Err(e) => tracing::warn!("vrrp: {name}: {e}"),
                    }
                }
            }
            vrrp::Event::BecameBackup { .. }
            | vrrp::Event::BecameFault { .. }
            | vrrp::Event::Stopped { .. } => {
                let to = match e {
                    vrrp::Event::BecameBackup { .. } => vrrp::State::Backup,
                    vrrp::Event::BecameFault { .. } => vrrp::State::Fault,
                    _ => vrrp::State::Initialize,
                };
                transition(to);
                *self.transitions.entry(name.to_string()).or_default() += 1;
                for (dev, net) in vips {
                    let Some(ifindex) = self.ifindex(&dev) else {
                        continue;
                    };
                    match self.addrs.remove(ifindex, net.ip()).await {
                        Ok(true) => tracing::info!("vrrp: {name}: removed {net} from {dev}"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!("vrrp: {name}: {e}"),
                    }
                }
            }
            vrrp::Event::SendGratuitousArp { vips: ips, count } => {
                let Some(garp) = &self.garp else { return };
                for (dev, net) in vips {
                    if !ips.contains(&net.ip()) {
                        continue;
                    }
                    let Some(link) = self.links.get(&dev).and_then(|l| l.link) else {
                        tracing::warn!("vrrp: {name}: no link address for {dev}");
                        continue;
                    };
                    if let Err(e) = garp.send(&link, net.ip(), count) {
                        tracing::warn!(
                            "vrrp: {name}: gratuitous ARP for {} on {dev}: {e}",
                            net.ip()
                        );
                    }
                }
            }
            vrrp::Event::PriorityChanged { old, new } => {
                tracing::info!("vrrp: {name}: priority {old} -> {new}");
                self.metrics
                    .priority
                    .with_label_values(&[name])
                    .set(i64::from(new));
            }
            vrrp::Event::AddressListMismatch { source, addresses } => {
                tracing::warn!(
                    "vrrp: {name}: advert from {source} lists {addresses:?}, not our VIPs"
                );
            }
        }
    }

    fn ifindex(&mut self, dev: &str) -> Option<u32> {
        if let Some(l) = self.links.get(dev) {
            if l.ifindex != 0 {
                return Some(l.ifindex);
            }
        }
        nix::net::if_::if_nametoindex(dev).ok()
    }

    /// Adds the counters' growth since the last export to the metrics.
    fn export_stats(&mut self, u: usize) {
        let Some(unit) = self.units.get_mut(u) else {
            return;
        };
        let Some(router) = &unit.router else { return };
        for (_, i) in router.instances() {
            let name = i.config().name.as_str();
            let now = i.stats();
            let last = unit.exported.entry(name.to_string()).or_default();
            let d = |a: u64, b: u64| a.saturating_sub(b);
            self.metrics
                .adverts_rx
                .with_label_values(&[name])
                .inc_by(d(now.adverts_rx, last.adverts_rx));
            self.metrics
                .adverts_tx
                .with_label_values(&[name])
                .inc_by(d(now.adverts_tx, last.adverts_tx));
            for ((reason, n), (_, l)) in drop_counters(now).iter().zip(drop_counters(last)) {
                if *n > l {
                    self.metrics
                        .drops
                        .with_label_values(&[name, reason])
                        .inc_by(n - l);
                }
            }
            self.metrics
                .priority
                .with_label_values(&[name])
                .set(i64::from(i.effective_priority()));
            *last = now.clone();
        }
    }

    async fn packet(&mut self, ifname: &str, r: Received) {
        let Some(&vrid) = r.payload.get(1) else {
            self.metrics
                .unmatched
                .with_label_values(&[ifname, "truncated"])
                .inc();
            return;
        };
        let Some(u) = self.units.iter().position(|x| x.has(ifname, vrid)) else {
            self.metrics
                .unmatched
                .with_label_values(&[ifname, "not_mine"])
                .inc();
            return;
        };
        let now = self.now();
        let Some(router) = self.units.get_mut(u).and_then(|x| x.router.as_mut()) else {
            return;
        };
        if let Err(why) = router.handle_packet(now, ifname, r.src, r.dst, r.ttl, &r.payload) {
            tracing::debug!("vrrp: {ifname}: advert from {} dropped: {why}", r.src);
        }
        self.flush(u).await;
    }

    async fn timeouts(&mut self) {
        let now = self.now();
        for u in 0..self.units.len() {
            let due = self
                .units
                .get(u)
                .and_then(|x| x.router.as_ref())
                .and_then(vrrp::Router::poll_timeout)
                .is_some_and(|t| t <= now);
            if due {
                if let Some(r) = self.units.get_mut(u).and_then(|x| x.router.as_mut()) {
                    r.handle_timeout(now);
                }
                self.flush(u).await;
            }
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.units
            .iter()
            .filter_map(|u| u.router.as_ref().and_then(vrrp::Router::poll_timeout))
            .min()
    }

    /// Polls link states; tracked interfaces that changed are reported to every unit.
    async fn poll_links(&mut self) {
        let Some(new) = read_links() else { return };
        let old = std::mem::replace(&mut self.links, new);
        let now = self.now();
        let mut changed = Vec::new();
        for (name, l) in &self.links {
            let was = old.get(name).is_some_and(|o| o.up);
            if was != l.up {
                changed.push((name.clone(), l.up));
            }
        }
        for (name, o) in &old {
            if o.up && !self.links.contains_key(name) {
                changed.push((name.clone(), false));
            }
        }
        for (name, up) in changed {
            tracing::info!("vrrp: link {name} is {}", if up { "up" } else { "down" });
            for u in 0..self.units.len() {
                let hit = self
                    .units
                    .get_mut(u)
                    .and_then(|x| x.router.as_mut())
                    .map(|r| r.set_track(now, &name, up))
                    .unwrap_or(0);
                if hit > 0 {
                    self.flush(u).await;
                }
            }
        }
        // A socket on an interface that went away is bound to a stale index: reopen it
        // when the interface comes back.
        let links = &self.links;
        self.sockets.retain(|name, _| links.contains_key(name));
        // Units waiting for an address, and sockets on interfaces that appeared.
        if self.units.iter().any(|u| u.router.is_none()) {
            for u in 0..self.units.len() {
                self.start_unit(u).await;
            }
        }
        let missing = self
            .units
            .iter()
            .flat_map(|u| u.key.iter())
            .any(|i| !self.sockets.contains_key(&i.interface));
        if missing {
            self.reconcile_sockets();
        }
    }

    /// Applies a configuration: unchanged units keep running, the others are stopped
    /// (Masters resign) and rebuilt.
    async fn apply(&mut self, c: &Config) {
        let wanted = wanted_units(c);
        let mut old = std::mem::take(&mut self.units);
        let mut keep: Vec<Option<Unit>> = Vec::new();
        for (group, key) in &wanted {
            let pos = old.iter().position(|u| &u.group == group && &u.key == key);
            keep.push(pos.map(|p| old.swap_remove(p)));
        }
        // Stop what goes away (or changes).
        let now = self.now();
        for unit in old {
            let names: Vec<String> = unit.key.iter().map(|i| i.name.clone()).collect();
            self.units.push(unit);
            let u = self.units.len() - 1;
            if let Some(r) = self.units.get_mut(u).and_then(|x| x.router.as_mut()) {
                r.shutdown(now);
            }
            self.flush(u).await;
            self.units.pop();
            for n in names {
                tracing::info!("vrrp: {n} stopped (configuration changed)");
                let _ = self.metrics.state.remove_label_values(&[&n]);
                let _ = self.metrics.priority.remove_label_values(&[&n]);
            }
        }
        self.units = wanted
            .into_iter()
            .zip(keep)
            .map(|((group, key), kept)| {
                kept.unwrap_or(Unit {
                    group,
                    key,
                    router: None,
                    exported: HashMap::new(),
                })
            })
            .collect();
        self.reconcile_sockets();
        for u in 0..self.units.len() {
            self.start_unit(u).await;
        }
    }

    async fn shutdown(&mut self) {
        let now = self.now();
        for u in 0..self.units.len() {
            if let Some(r) = self.units.get_mut(u).and_then(|x| x.router.as_mut()) {
                r.shutdown(now);
            }
            self.flush(u).await;
        }
    }

    fn view(&self) -> VrrpView {
        let mut instances = Vec::new();
        for unit in &self.units {
            for cfg in &unit.key {
                let info = unit
                    .router
                    .as_ref()
                    .and_then(|r| r.find(&cfg.name).and_then(|id| r.instance(id)));
                let vips = cfg
                    .virtual_ipaddress
                    .iter()
                    .map(|v| {
                        if v.dev.is_some() {
                            format!("{} dev {}", v.address, cfg.vip_dev(v))
                        } else {
                            v.address.to_string()
                        }
                    })
                    .collect();
                let base = u8::try_from(cfg.priority).unwrap_or(0);
                let (state, eff, master, adv, rx, tx) = match info {
                    Some(i) => {
                        let inf = i.info();
                        (
                            state_name(inf.state),
                            inf.effective_priority,
                            inf.master,
                            inf.master_adver_int,
                            i.stats().adverts_rx,
                            i.stats().adverts_tx,
                        )
                    }
                    None => ("INIT", base, None, cfg.advert_int, 0, 0),
                };
                instances.push(VrrpRow {
                    name: cfg.name.clone(),
                    interface: cfg.interface.clone(),
                    vrid: u8::try_from(cfg.virtual_router_id).unwrap_or(0),
                    version: cfg.version,
                    state: state.to_string(),
                    priority: base,
                    effective_priority: eff,
                    master,
                    advert_int_ms: u64::try_from(adv.as_millis()).unwrap_or(u64::MAX),
                    preempt: cfg.preempt,
                    sync_group: unit.group.clone(),
                    vips,
                    transitions: self.transitions.get(&cfg.name).copied().unwrap_or(0),
                    adverts_rx: rx,
                    adverts_tx: tx,
                });
            }
        }
        VrrpView { instances }
    }
}

// ---------------------------------------------------------------------------------------
// The subsystem.

/// The VRRP subsystem (`[vrrp]`): runs whether or not instances are configured, so that a
/// reload can add them.
#[derive(Debug, Default)]
pub struct VrrpDriver {
    ownership: Option<mpsc::UnboundedSender<VipOwnership>>,
}

impl VrrpDriver {
    /// A driver.
    pub fn new() -> VrrpDriver {
        VrrpDriver::default()
    }

    /// Also reports every change of ownership of a virtual address on `tx` (see
    /// [`crate::dataplane_driver::ownership_channel`]; `dpdk` mode).
    pub fn with_ownership(mut self, tx: mpsc::UnboundedSender<VipOwnership>) -> VrrpDriver {
        self.ownership = Some(tx);
        self
    }
}

impl Subsystem for VrrpDriver {
    fn name(&self) -> &'static str {
        "vrrp"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Vrrp]
    }

    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture {
        Box::pin(run(ctx, self.ownership))
    }
}

async fn run(
    mut ctx: SubsystemContext,
    ownership: Option<mpsc::UnboundedSender<VipOwnership>>,
) -> Result<(), SubsystemError> {
    let fail = |e: VrrpDriverError| SubsystemError(e.to_string());
    let metrics = VrrpMetrics::new(&ctx.registry)
        .map_err(VrrpDriverError::from)
        .map_err(fail)?;
    let addrs = AddressProgrammer::connect()
        .map_err(VrrpDriverError::from)
        .map_err(fail)?;
    let (rx_tx, mut rx) = mpsc::channel(256);
    let garp = match GarpSender::open() {
        Ok(g) => Some(g),
        Err(e) => {
            tracing::warn!("vrrp: no gratuitous ARP: {e}");
            None
        }
    };
    let mut d = Driver {
        epoch: Instant::now(),
        units: Vec::new(),
        sockets: HashMap::new(),
        rx_tx,
        addrs,
        garp,
        links: read_links().unwrap_or_default(),
        metrics,
        transitions: HashMap::new(),
        ownership,
    };
    let config = ctx.config.borrow_and_update().clone();
    d.apply(&config).await;
    // Link and address events make the driver re-read the links at once; the poll below
    // is the fallback.
    let (link_tx, mut link_rx) = mpsc::channel::<()>(1);
    match NetEvents::subscribe() {
        Ok(mut events) => {
            tokio::spawn(async move {
                while let Some(ev) = events.next().await {
                    if matches!(
                        ev,
                        NetEvent::LinkUp { .. }
                            | NetEvent::LinkDown { .. }
                            | NetEvent::LinkRemoved { .. }
                            | NetEvent::AddressAdded { .. }
                    ) {
                        // A full channel already holds a wake-up.
                        let _ = link_tx.try_send(());
                    }
                    if link_tx.is_closed() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!("vrrp: no link events ({e}); polling links every second"),
    }
    let mut tick = tokio::time::interval(LINK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = d.next_deadline().map(|t| d.epoch + t);
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.shutdown.wait() => {
                d.shutdown().await;
                tracing::info!("vrrp: stopped");
                return Ok(());
            }
            changed = ctx.config.changed() => {
                if changed.is_err() {
                    d.shutdown().await;
                    return Ok(());
                }
                let c = ctx.config.borrow_and_update().clone();
                d.apply(&c).await;
            }
            Some((ifname, r)) = rx.recv() => d.packet(&ifname, r).await,
            _ = sleep => d.timeouts().await,
            _ = tick.tick() => d.poll_links().await,
            Some(()) = link_rx.recv() => d.poll_links().await,
            Some(call) = ctx.requests.recv() => {
                let answer = match call.request {
                    Request::Vrrp => serde_json::to_value(d.view())
                        .map_err(|e| ErrorBody::new("internal", e.to_string())),
                    other => Err(ErrorBody::new(
                        "internal",
                        format!("the VRRP subsystem does not answer {}", other.kind()),
                    )),
                };
                let _ = call.reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_layout() {
        let mac = [0x02, 0, 0, 0, 0, 0x0a];
        let f = garp_frame(mac, Ipv4Addr::new(10, 10, 0, 20));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &mac);
        assert_eq!(&f[28..32], &[10, 10, 0, 20]);
        assert_eq!(&f[32..38], &[0xff; 6]);
        assert_eq!(&f[38..42], &[10, 10, 0, 20]);
        assert!(f[42..].iter().all(|b| *b == 0));
    }

    #[test]
    fn ownership_follows_master_and_leaves_with_backup_fault_and_stop() {
        let vips = vec![
            ("eth0".to_string(), "10.10.0.20/32".parse().expect("net")),
            (
                "eth1".to_string(),
                "192.168.211.20/24".parse().expect("net"),
            ),
        ];
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        let master = ownership_reports(&vrrp::Event::BecameMaster { vips: vec![] }, &vips);
        assert_eq!(
            master,
            vec![
                VipOwnership {
                    address: ip("10.10.0.20"),
                    interface: "eth0".into(),
                    owned: true
                },
                VipOwnership {
                    address: ip("192.168.211.20"),
                    interface: "eth1".into(),
                    owned: true
                },
            ]
        );
        for e in [
            vrrp::Event::BecameBackup { vips: vec![] },
            vrrp::Event::BecameFault { vips: vec![] },
            vrrp::Event::Stopped { vips: vec![] },
        ] {
            let r = ownership_reports(&e, &vips);
            assert_eq!(r.len(), 2, "{e:?}");
            assert!(r.iter().all(|o| !o.owned), "{e:?}");
        }
        let garp = vrrp::Event::SendGratuitousArp {
            vips: vec![ip("10.10.0.20")],
            count: 5,
        };
        assert!(ownership_reports(&garp, &vips).is_empty());
        assert_eq!(ownership_after(&garp), None);
    }

    #[test]
    fn ipv4_header_split() {
        let pkt = [
            0x45, 0xc0, 0x00, 0x1a, 0, 0, 0, 0, 0xff, 112, 0, 0, 10, 0, 0, 1, 224, 0, 0, 18, 0x21,
            51, 100, 1, 0, 1, 0xee,
        ];
        let r = parse_ipv4(&pkt).expect("parse");
        assert_eq!(
            (r.src, r.dst, r.ttl),
            (Ipv4Addr::new(10, 0, 0, 1), vrrp::wire::MULTICAST_ADDR, 255)
        );
        assert_eq!(r.payload, [0x21, 51, 100, 1, 0, 1]);
        assert!(parse_ipv4(&[]).is_err());
        assert!(parse_ipv4(&[0x65; 20]).is_err());
        assert!(parse_ipv4(&[0x46; 20]).is_err());
    }

    #[test]
    fn units_follow_sync_groups() {
        let c = Config::parse(
            r#"
[[vrrp.instance]]
name = "a"
interface = "eth0"
virtual_router_id = 1
virtual_ipaddress = ["10.0.0.1"]
[[vrrp.instance]]
name = "b"
interface = "eth1"
virtual_router_id = 2
virtual_ipaddress = ["10.0.1.1"]
[[vrrp.instance]]
name = "c"
interface = "eth1"
virtual_router_id = 3
virtual_ipaddress = ["10.0.1.2"]
[[vrrp.sync_group]]
name = "g"
group = ["c", "a"]
"#,
        )
        .expect("config");
        let u = wanted_units(&c);
        let names: Vec<(Option<String>, Vec<&str>)> = u
            .iter()
            .map(|(g, k)| (g.clone(), k.iter().map(|i| i.name.as_str()).collect()))
            .collect();
        assert_eq!(
            names,
            [(Some("g".to_string()), vec!["c", "a"]), (None, vec!["b"])]
        );
    }
}
