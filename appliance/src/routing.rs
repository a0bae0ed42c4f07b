//! The routing subsystem of `fulcrumd` in `kernel` mode: the OSPF speaker on raw sockets,
//! the RIB, and the kernel routing table.
//!
//! One tokio task owns one [`ospf::Instance`] (built from `[ospf]`, `[[ospf.interface]]`
//! and the router id), one [`OspfSocket`] per OSPF interface, one [`rib::Rib`] and one
//! [`RouteProgrammer`]. It waits on socket receives, the instance's next timer, link and
//! address events, control requests, reloads and shutdown; after every input it drains
//! the instance (packets to send, AllDRouters membership, neighbor changes, route changes
//! into the RIB) and applies the RIB's FIB changes to the kernel.
//!
//! - Connected routes come from the interfaces' addresses (read at start, then followed
//!   through [`NetEvents`]); the kernel owns them, so they are never programmed.
//! - Static `[[route]]`s and OSPF routes are installed with protocol `fulcrum` and metric
//!   [`KERNEL_METRIC`]; at start [`RouteProgrammer::reconcile`] removes what a previous
//!   run left behind (after `kill -9`), and an orderly exit removes every fulcrum route.
//! - `[[announce]]` prefixes are announced at start; a reload announces and withdraws the
//!   difference without touching adjacencies (changes to `[[ospf.interface]]` need a
//!   restart and are reported as such in the log).
//! - On shutdown the instance flushes its LSAs ([`ospf::Instance::shutdown`]); the task
//!   keeps pumping packets until every flush is acknowledged or [`SHUTDOWN_CAP`] passes.
//!
//! - Health-driven VIPs: with [`Routing::with_health_vips`] the task also follows the
//!   VIP → metric set the health subsystem publishes on a `watch` channel and announces
//!   each VIP as a /32 stub link while it is in the set (re-originating the router-LSA
//!   on every change); an `[[announce]]` of the same prefix takes precedence.
//! - Learned routes for a dataplane FIB: with [`Routing::with_learned_routes`] the task
//!   also publishes, after every RIB change, the OSPF routes the RIB selected (next hops
//!   named by interface) on a `watch` channel ([`learned_routes_channel`]); `dpdk` mode
//!   puts them into the DPDK dataplane's FIB.
//! - BFD: with [`Routing::with_bfd`] the task publishes neighbor changes on `bfd = true`
//!   interfaces to the BFD subsystem ([`crate::bfd_driver`]) and, when it reports a failed
//!   session, declares the neighbor dead at once ([`ospf::Instance::neighbor_dead`]).
//!
//! What it does not do: forward packets (the dataplane), check health or decide which
//! VIPs to announce (the health subsystem, [`crate::health_driver`]), run OSPF in `dpdk`
//! mode (the kernel twins will make that the same code; not wired yet), or support several areas (the instance has
//! one area; a configuration mixing areas is refused at start).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnetwork::Ipv4Network;
use ospf::auth::AuthKey;
use ospf::instance::{InterfaceState, NeighborState};
use ospf::lsa::{LsaBody, LsaType};
use ospf::{Event, ExternalSpec, Instance, InstanceConfig, InterfaceConfig, NetworkType};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts};
use rib::{FibChange, NextHop, Rib, RouteChange, Source};
use tokio::sync::watch;

use crate::bfd_driver::{BfdNeighbors, PeerDown, RoutingBfd};
use crate::config::{
    AnnounceAs, AuthType, Authentication, Config, MetricType, OspfInterface, OspfNetwork,
};
use crate::control::{
    ErrorBody, LsaRow, NexthopRow, OspfDatabaseView, OspfInterfaceRow, OspfInterfacesView,
    OspfNeighborRow, OspfNeighborsView, Request, RouteRow, RoutesView, VipRow, VipsView,
};
use crate::daemon::{
    ControlCall, Subsystem, SubsystemContext, SubsystemError, SubsystemFuture, Topic,
};
use crate::health_driver::VipRoutes;
use crate::netlink::{KernelRoute, NetEvent, NetEvents, NetlinkError, Nexthop, RouteProgrammer};
use crate::ospf_socket::{OspfSocket, OspfSocketError, Received};

/// The kernel table fulcrum programs (`main`).
pub const KERNEL_TABLE: u32 = 254;
/// The metric (priority) of every kernel route fulcrum installs: FRR's zebra uses 20 for
/// OSPF routes, and a metric other than 0 never replaces a route the kernel made itself.
pub const KERNEL_METRIC: u32 = 20;
/// The longest an orderly shutdown waits for the flushed LSAs to be acknowledged.
pub const SHUTDOWN_CAP: Duration = Duration::from_secs(2);

/// Errors that stop the routing subsystem.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// Netlink failed (connection, reconcile).
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// An OSPF socket could not be opened.
    #[error(transparent)]
    Socket(#[from] OspfSocketError),
    /// The interfaces could not be listed.
    #[error("listing interfaces: {0}")]
    Interfaces(nix::Error),
    /// An OSPF interface does not exist or has no IPv4 address.
    #[error("OSPF interface {0} does not exist or has no IPv4 address")]
    NoAddress(String),
    /// The OSPF interfaces are in different areas.
    #[error("OSPF interfaces are in areas {0} and {1}: one area per instance is supported")]
    MixedAreas(Ipv4Addr, Ipv4Addr),
    /// OSPF is configured without a router id (the configuration check prevents this).
    #[error("OSPF needs a router id")]
    NoRouterId,
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The routing subsystem (OSPF + RIB + kernel routes), answering `ospf …`, `routes` and,
/// without a health subsystem, `vips`.
#[derive(Debug, Default)]
pub struct Routing {
    health_vips: Option<watch::Receiver<Arc<VipRoutes>>>,
    learned: Option<watch::Sender<LearnedRoutes>>,
    bfd: Option<RoutingBfd>,
}

/// One OSPF-learned route the RIB selected, as a dataplane FIB takes it: next hops name
/// the kernel interface (the twin) they leave through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedRoute {
    /// Destination prefix.
    pub prefix: Ipv4Network,
    /// Next hops: gateway (none for an on-link route) and interface name.
    pub nexthops: Vec<(Option<Ipv4Addr>, String)>,
}

/// Every selected OSPF route, republished whole on each change.
pub type LearnedRoutes = Arc<Vec<LearnedRoute>>;

/// The channel on which the routing subsystem publishes the OSPF routes the RIB selected
/// (see [`Routing::with_learned_routes`]); starts empty.
pub fn learned_routes_channel() -> (watch::Sender<LearnedRoutes>, watch::Receiver<LearnedRoutes>) {
    watch::channel(Arc::new(Vec::new()))
}

impl Routing {
    /// A routing subsystem; it reads everything from the configuration when it runs.
    pub fn new() -> Self {
        Routing {
            health_vips: None,
            learned: None,
            bfd: None,
        }
    }

    /// A routing subsystem that also announces the VIPs the health subsystem publishes
    /// on `vips` (VIP → stub metric; see [`crate::health_driver`]). The health subsystem
    /// then answers `vips`.
    pub fn with_health_vips(vips: watch::Receiver<Arc<VipRoutes>>) -> Self {
        Routing {
            health_vips: Some(vips),
            learned: None,
            bfd: None,
        }
    }

    /// Also publishes on `tx` every OSPF route the RIB selects (see
    /// [`learned_routes_channel`]), for a dataplane FIB outside the kernel.
    pub fn with_learned_routes(mut self, tx: watch::Sender<LearnedRoutes>) -> Self {
        self.learned = Some(tx);
        self
    }

    /// Also publishes OSPF neighbor changes on `bfd = true` interfaces to the BFD
    /// subsystem and declares a neighbor dead when its BFD session fails (see
    /// [`crate::bfd_driver::routing_link`]).
    pub fn with_bfd(mut self, link: RoutingBfd) -> Self {
        self.bfd = Some(link);
        self
    }
}

impl Subsystem for Routing {
    fn name(&self) -> &'static str {
        "routing"
    }

    fn topics(&self) -> &'static [Topic] {
        if self.health_vips.is_some() {
            &[Topic::Ospf, Topic::Routes]
        } else {
            &[Topic::Ospf, Topic::Routes, Topic::Vips]
        }
    }

    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture {
        let vips = self.health_vips;
        let learned = self.learned;
        let bfd = self.bfd;
        Box::pin(async move {
            run(ctx, vips, learned, bfd)
                .await
                .map_err(|e| SubsystemError(e.to_string()))
        })
    }
}

// ---------------------------------------------------------------------------------------
// Interfaces as the kernel sees them.

/// One IPv4 address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IfAddr {
    ifindex: u32,
    addr: Ipv4Addr,
    len: u8,
}

/// Links (index → name, up) and IPv4 addresses, from `getifaddrs`.
#[derive(Debug, Default)]
struct KernelInterfaces {
    links: BTreeMap<u32, (String, bool)>,
    addrs: Vec<IfAddr>,
}

fn kernel_interfaces() -> Result<KernelInterfaces, RoutingError> {
    use nix::net::if_::InterfaceFlags;
    let mut k = KernelInterfaces::default();
    for ifa in nix::ifaddrs::getifaddrs().map_err(RoutingError::Interfaces)? {
        let Ok(ifindex) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) else {
            continue;
        };
        let up = ifa.flags.contains(InterfaceFlags::IFF_UP)
            && ifa.flags.contains(InterfaceFlags::IFF_RUNNING);
        k.links.insert(ifindex, (ifa.interface_name.clone(), up));
        let addr = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|a| a.ip());
        let mask = ifa
            .netmask
            .as_ref()
            .and_then(|a| a.as_sockaddr_in())
            .map(|a| a.ip());
        if let (Some(addr), Some(mask)) = (addr, mask) {
            let len = u8::try_from(u32::from(mask).count_ones()).unwrap_or(32);
            k.addrs.push(IfAddr { ifindex, addr, len });
        }
    }
    Ok(k)
}

/// The interface MTU from sysfs (1500 when unreadable).
fn interface_mtu(name: &str) -> u16 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|m| u16::try_from(m).unwrap_or(u16::MAX))
        .unwrap_or(1500)
}

// ---------------------------------------------------------------------------------------
// Configuration → ospf / rib values.

fn auth_key(a: &Authentication) -> AuthKey {
    let key = a.key.clone().unwrap_or_default().into_bytes();
    let key_id = a.key_id.and_then(|k| u8::try_from(k).ok()).unwrap_or(1);
    match a.kind {
        AuthType::None => AuthKey::Null,
        AuthType::Simple => {
            let mut pw = [0u8; 8];
            for (d, s) in pw.iter_mut().zip(key.iter()) {
                *d = *s;
            }
            AuthKey::Simple(pw)
        }
        AuthType::Md5 => AuthKey::Md5 { key_id, key },
        AuthType::HmacSha256 => AuthKey::HmacSha256 { key_id, key },
    }
}

fn secs_u16(d: Duration) -> u16 {
    u16::try_from(d.as_secs()).unwrap_or(u16::MAX)
}

fn interface_config(oi: &OspfInterface, addr: IfAddr) -> InterfaceConfig {
    let mut c = InterfaceConfig::new(addr.ifindex, &oi.name, addr.addr, addr.len);
    c.network = match oi.network {
        OspfNetwork::Broadcast => NetworkType::Broadcast,
        OspfNetwork::PointToPoint => NetworkType::PointToPoint,
    };
    c.cost = u16::try_from(oi.cost).unwrap_or(u16::MAX);
    c.priority = u8::try_from(oi.priority).unwrap_or(u8::MAX);
    c.hello_interval = oi.hello_interval;
    c.dead_interval = oi.dead_interval;
    c.retransmit_interval = oi.retransmit_interval;
    c.transmit_delay = secs_u16(oi.transmit_delay);
    c.passive = oi.passive;
    c.mtu = interface_mtu(&oi.name);
    c.mtu_ignore = oi.mtu_ignore;
    c.auth = auth_key(&oi.authentication);
    c
}

/// How one `[[announce]]` prefix is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AnnounceSpec {
    metric: u16,
    external: Option<ExternalSpec>,
}

fn announcements(c: &Config) -> BTreeMap<ospf::Ipv4Net, AnnounceSpec> {
    let mut out = BTreeMap::new();
    for a in &c.announce {
        let Some(prefix) = ospf::Ipv4Net::new(a.prefix.network(), a.prefix.prefix()) else {
            continue;
        };
        let spec = match a.announce_as {
            AnnounceAs::Stub => AnnounceSpec {
                metric: u16::try_from(a.metric.unwrap_or(1)).unwrap_or(u16::MAX),
                external: None,
            },
            AnnounceAs::External => AnnounceSpec {
                metric: 0,
                external: Some(ExternalSpec {
                    type2: a.metric_type != Some(MetricType::Type1),
                    metric: a.metric.unwrap_or(20).min(0x00ff_ffff),
                    tag: 0,
                    forwarding: Ipv4Addr::UNSPECIFIED,
                }),
            },
        };
        out.insert(prefix, spec);
    }
    out
}

/// `[[announce]]` prefixes plus the health-driven VIPs (an `[[announce]]` of the same
/// /32 wins: it is unconditional).
fn wanted_announcements(
    c: &Config,
    health: Option<&VipRoutes>,
) -> BTreeMap<ospf::Ipv4Net, AnnounceSpec> {
    let mut out = announcements(c);
    for (vip, metric) in health.into_iter().flatten() {
        let Some(prefix) = ospf::Ipv4Net::new(*vip, 32) else {
            continue;
        };
        out.entry(prefix).or_insert(AnnounceSpec {
            metric: u16::try_from(*metric).unwrap_or(u16::MAX),
            external: None,
        });
    }
    out
}

/// Waits for the next health VIP set (never resolves without a health subsystem or once
/// it is gone).
async fn vips_changed(rx: &mut Option<watch::Receiver<Arc<VipRoutes>>>) {
    match rx {
        Some(r) => {
            if r.changed().await.is_err() {
                *rx = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn rib_net(addr: Ipv4Addr, len: u8) -> Option<rib::Ipv4Net> {
    rib::Ipv4Net::new_truncating(addr, len).ok()
}

/// The static routes of a configuration, keyed by (prefix, distance).
fn static_routes(
    c: &Config,
    names: &BTreeMap<u32, (String, bool)>,
) -> BTreeMap<(rib::Ipv4Net, u8), rib::Route> {
    let mut out = BTreeMap::new();
    for r in &c.route {
        let Some(prefix) = rib_net(r.prefix.network(), r.prefix.prefix()) else {
            continue;
        };
        let ifindex = match &r.interface {
            Some(n) => match names.iter().find(|(_, (name, _))| name == n) {
                Some((i, _)) => Some(*i),
                None => {
                    tracing::warn!(
                        "static route {}: interface {n} does not exist; skipped",
                        r.prefix
                    );
                    continue;
                }
            },
            None => None,
        };
        let nh = NextHop {
            gateway: r.via,
            ifindex,
        };
        out.insert(
            (prefix, r.distance),
            rib::Route::new(prefix, vec![nh]).with_distance(r.distance),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// Metrics.

struct RoutingMetrics {
    neighbor_state: IntGaugeVec,
    lsas: IntGaugeVec,
    rx: IntCounterVec,
    tx: IntCounterVec,
    dropped: IntCounterVec,
    route_changes: IntCounter,
    rib_routes: IntGaugeVec,
    kernel_errors: IntCounter,
    announced: IntGaugeVec,
}

impl RoutingMetrics {
    fn new(reg: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let m = RoutingMetrics {
            neighbor_state: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_ospf_neighbor_state",
                    "OSPF neighbor state (OSPF-MIB ospfNbrState: 1 down, 2 attempt, 3 init, \
                     4 two-way, 5 exstart, 6 exchange, 7 loading, 8 full)",
                ),
                &["interface", "neighbor"],
            )?,
            lsas: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_ospf_lsdb_lsas",
                    "LSAs in the link-state database by type",
                ),
                &["type"],
            )?,
            rx: IntCounterVec::new(
                Opts::new(
                    "fulcrum_ospf_packets_received_total",
                    "OSPF packets received",
                ),
                &["interface"],
            )?,
            tx: IntCounterVec::new(
                Opts::new("fulcrum_ospf_packets_sent_total", "OSPF packets sent"),
                &["interface"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "fulcrum_ospf_packets_dropped_total",
                    "OSPF packets dropped, by reason",
                ),
                &["reason"],
            )?,
            route_changes: IntCounter::new(
                "fulcrum_ospf_route_table_changes_total",
                "OSPF route table recomputations that changed the table",
            )?,
            rib_routes: IntGaugeVec::new(
                Opts::new("fulcrum_rib_routes", "Selected RIB routes by protocol"),
                &["protocol"],
            )?,
            kernel_errors: IntCounter::new(
                "fulcrum_kernel_route_errors_total",
                "Kernel route installs or removals that failed",
            )?,
            announced: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_ospf_announced",
                    "Prefixes announced in OSPF by [[announce]] (1 announced)",
                ),
                &["prefix"],
            )?,
        };
        reg.register(Box::new(m.neighbor_state.clone()))?;
        reg.register(Box::new(m.lsas.clone()))?;
        reg.register(Box::new(m.rx.clone()))?;
        reg.register(Box::new(m.tx.clone()))?;
        reg.register(Box::new(m.dropped.clone()))?;
        reg.register(Box::new(m.route_changes.clone()))?;
        reg.register(Box::new(m.rib_routes.clone()))?;
        reg.register(Box::new(m.kernel_errors.clone()))?;
        reg.register(Box::new(m.announced.clone()))?;
        Ok(m)
    }
}

/// OSPF-MIB `ospfNbrState` numbering (as frr_exporter reports it).
fn neighbor_state_number(s: NeighborState) -> i64 {
    match s {
        NeighborState::Down => 1,
        NeighborState::Attempt => 2,
        NeighborState::Init => 3,
        NeighborState::TwoWay => 4,
        NeighborState::ExStart => 5,
        NeighborState::Exchange => 6,
        NeighborState::Loading => 7,
        NeighborState::Full => 8,
    }
}

fn neighbor_state_name(s: NeighborState) -> &'static str {
    match s {
        NeighborState::Down => "Down",
        NeighborState::Attempt => "Attempt",
        NeighborState::Init => "Init",
        NeighborState::TwoWay => "2-Way",
        NeighborState::ExStart => "ExStart",
        NeighborState::Exchange => "Exchange",
        NeighborState::Loading => "Loading",
        NeighborState::Full => "Full",
    }
}

fn interface_state_name(s: InterfaceState) -> &'static str {
    match s {
        InterfaceState::Down => "Down",
        InterfaceState::Passive => "Passive",
        InterfaceState::Waiting => "Waiting",
        InterfaceState::PointToPoint => "Point-To-Point",
        InterfaceState::DrOther => "DROther",
        InterfaceState::Backup => "Backup",
        InterfaceState::Dr => "DR",
    }
}

fn lsa_type_name(t: LsaType) -> &'static str {
    match t {
        LsaType::Router => "router",
        LsaType::Network => "network",
        LsaType::SummaryNetwork => "summary",
        LsaType::SummaryAsbr => "asbr-summary",
        LsaType::AsExternal => "external",
        LsaType::OpaqueLink => "opaque-link",
        LsaType::OpaqueArea => "opaque-area",
        LsaType::OpaqueAs => "opaque-as",
    }
}

/// `AuthFailure` → `auth_failure`.
fn snake(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// The task.

struct OspfPart {
    inst: Instance,
    sockets: Vec<OspfSocket>,
    area: Ipv4Addr,
    running: Vec<OspfInterface>,
}

struct Task {
    start: Instant,
    config: Arc<Config>,
    ospf: Option<OspfPart>,
    rib: Rib,
    fib: RouteProgrammer,
    installed: BTreeMap<rib::Ipv4Net, KernelRoute>,
    links: BTreeMap<u32, (String, bool)>,
    announced: BTreeMap<ospf::Ipv4Net, AnnounceSpec>,
    statics: BTreeMap<(rib::Ipv4Net, u8), rib::Route>,
    metrics: RoutingMetrics,
    shutdown_complete: bool,
    learned: Option<watch::Sender<LearnedRoutes>>,
    bfd: Option<BfdNeighbors>,
}

enum Input {
    Shutdown,
    Packet(usize, Result<Received, OspfSocketError>),
    Timer,
    Control(ControlCall),
    Reload,
    Net(NetEvent),
    Vips,
    Tick,
    BfdDown(PeerDown),
}

/// Waits for the next failed BFD session (never resolves without BFD or once it is gone).
async fn bfd_down(rx: &mut Option<tokio::sync::mpsc::UnboundedReceiver<PeerDown>>) -> PeerDown {
    match rx {
        Some(r) => match r.recv().await {
            Some(d) => d,
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Waits for a packet on any socket; the index of the socket comes with it. Cancel-safe:
/// a packet is consumed only inside the poll that returns it.
async fn recv_any(sockets: &[OspfSocket]) -> (usize, Result<Received, OspfSocketError>) {
    if sockets.is_empty() {
        return std::future::pending().await;
    }
    let futs = sockets.iter().map(|s| Box::pin(s.recv()));
    let (r, i, _) = futures::future::select_all(futs).await;
    (i, r)
}

async fn run(
    mut ctx: SubsystemContext,
    mut health_vips: Option<watch::Receiver<Arc<VipRoutes>>>,
    learned: Option<watch::Sender<LearnedRoutes>>,
    bfd: Option<RoutingBfd>,
) -> Result<(), RoutingError> {
    let start = Instant::now();
    let (bfd, mut bfd_rx) = match bfd {
        Some(b) => (Some(b.neighbors), Some(b.down)),
        None => (None, None),
    };
    let config = ctx.config.borrow_and_update().clone();
    let metrics = RoutingMetrics::new(&ctx.registry)?;
    // Subscribe before reading the interfaces so that no change is lost in between.
    let mut events = NetEvents::subscribe()?;
    let kif = kernel_interfaces()?;
    let fib = RouteProgrammer::connect(KERNEL_TABLE)?;

    let mut rib = Rib::new();
    for a in &kif.addrs {
        if let Err(e) = rib.address_add(a.ifindex, a.addr, a.len) {
            tracing::warn!("address {}/{}: {e}", a.addr, a.len);
        }
    }
    for (ifindex, (_, up)) in &kif.links {
        if !up {
            rib.interface_down(*ifindex);
        }
    }
    let statics = static_routes(&config, &kif.links);
    for r in statics.values() {
        if let Err(e) = rib.update(Source::Static, r.clone()) {
            tracing::warn!("static route {}: {e}", r.prefix);
        }
    }
    let mut task = Task {
        start,
        config: config.clone(),
        ospf: None,
        rib,
        fib,
        installed: BTreeMap::new(),
        links: kif.links.clone(),
        announced: BTreeMap::new(),
        statics,
        metrics,
        shutdown_complete: false,
        learned,
        bfd,
    };
    task.reconcile().await?;
    task.ospf = start_ospf(&config, &kif, task.now())?;
    if task.ospf.is_some() {
        let health = health_vips.as_mut().map(|r| r.borrow_and_update().clone());
        let wanted = wanted_announcements(&config, health.as_deref());
        task.apply_announcements(wanted);
    }
    task.pump().await;
    task.update_gauges();

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut shutting_down: Option<Instant> = None;
    loop {
        if let Some(since) = shutting_down {
            let done = task.ospf.is_none() || task.shutdown_complete;
            if done || since.elapsed() >= SHUTDOWN_CAP {
                if !done {
                    tracing::warn!(
                        "OSPF shutdown: flushes not all acknowledged after {SHUTDOWN_CAP:?}"
                    );
                }
                break;
            }
        }
        let far = Instant::now() + Duration::from_secs(3600);
        let mut deadline = task
            .ospf
            .as_ref()
            .and_then(|o| o.inst.poll_timeout())
            .map(|d| task.start + d)
            .unwrap_or(far);
        if let Some(since) = shutting_down {
            deadline = deadline.min(since + SHUTDOWN_CAP);
        }
        let sockets: &[OspfSocket] = task
            .ospf
            .as_ref()
            .map(|o| o.sockets.as_slice())
            .unwrap_or(&[]);
        let input = tokio::select! {
            _ = ctx.shutdown.wait(), if shutting_down.is_none() => Input::Shutdown,
            (i, r) = recv_any(sockets) => Input::Packet(i, r),
            _ = tokio::time::sleep_until(deadline.into()) => Input::Timer,
            Some(call) = ctx.requests.recv() => Input::Control(call),
            Ok(()) = ctx.config.changed(), if shutting_down.is_none() => Input::Reload,
            Some(ev) = events.next() => Input::Net(ev),
            () = vips_changed(&mut health_vips), if shutting_down.is_none() => Input::Vips,
            _ = tick.tick() => Input::Tick,
            d = bfd_down(&mut bfd_rx), if shutting_down.is_none() => Input::BfdDown(d),
        };
        let now = task.now();
        match input {
            Input::Shutdown => {
                tracing::info!("routing: shutting down (flushing OSPF LSAs)");
                shutting_down = Some(Instant::now());
                if let Some(o) = task.ospf.as_mut() {
                    o.inst.shutdown(now);
                }
            }
            Input::Packet(i, r) => {
                if task.packet(i, r, now) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Input::Timer => {
                if let Some(o) = task.ospf.as_mut() {
                    o.inst.handle_timeout(now);
                }
            }
            Input::Control(call) => {
                let answer = task.answer(&call.request);
                let _ = call.reply.send(answer);
            }
            Input::Reload => {
                let c = ctx.config.borrow_and_update().clone();
                let health = health_vips.as_mut().map(|r| r.borrow_and_update().clone());
                task.reload(c, health.as_deref());
            }
            Input::Vips => {
                let health = health_vips.as_mut().map(|r| r.borrow_and_update().clone());
                if task.ospf.is_some() {
                    let wanted = wanted_announcements(&task.config, health.as_deref());
                    task.apply_announcements(wanted);
                }
            }
            Input::Net(ev) => task.net_event(ev, now),
            Input::Tick => task.update_gauges(),
            Input::BfdDown(d) => {
                // RFC 5882 §4.1: a failed BFD session takes the adjacency down at once.
                if let Some(o) = task.ospf.as_mut() {
                    let killed = o.inst.neighbor_dead(now, d.ifindex, d.peer);
                    tracing::warn!(
                        "BFD: neighbor {} on {} {}",
                        d.peer,
                        task.ifname(d.ifindex),
                        if killed {
                            "declared dead"
                        } else {
                            "already gone"
                        }
                    );
                }
            }
        }
        task.pump().await;
    }
    task.remove_all().await;
    Ok(())
}

fn start_ospf(
    config: &Config,
    kif: &KernelInterfaces,
    now: Duration,
) -> Result<Option<OspfPart>, RoutingError> {
    let Some(o) = &config.ospf else {
        return Ok(None);
    };
    let router_id = config.router_id().ok_or(RoutingError::NoRouterId)?;
    let mut ic = InstanceConfig::new(router_id);
    let mut area = None;
    let mut sockets = Vec::new();
    let mut up = Vec::new();
    for oi in &o.interface {
        match area {
            None => area = Some(oi.area.0),
            Some(a) if a != oi.area.0 => return Err(RoutingError::MixedAreas(a, oi.area.0)),
            Some(_) => {}
        }
        let (ifindex, (_, link_up)) = kif
            .links
            .iter()
            .find(|(_, (n, _))| *n == oi.name)
            .ok_or_else(|| RoutingError::NoAddress(oi.name.clone()))?;
        let addr = kif
            .addrs
            .iter()
            .find(|a| a.ifindex == *ifindex)
            .copied()
            .ok_or_else(|| RoutingError::NoAddress(oi.name.clone()))?;
        ic.interfaces.push(interface_config(oi, addr));
        sockets.push(OspfSocket::open(&oi.name)?);
        if *link_up {
            up.push(*ifindex);
        }
        tracing::info!(
            "OSPF interface {} ({}/{}, {}, cost {}, hello {:?}, dead {:?}, auth {})",
            oi.name,
            addr.addr,
            addr.len,
            oi.network,
            oi.cost,
            oi.hello_interval,
            oi.dead_interval,
            oi.authentication.kind
        );
    }
    let area = area.unwrap_or(Ipv4Addr::UNSPECIFIED);
    ic.area_id = area;
    ic.min_ls_interval = o.min_ls_interval;
    ic.min_ls_arrival = o.min_ls_arrival;
    ic.stub_router_on_startup = o.stub_router_on_startup;
    // Wall-clock seconds: the cryptographic sequence never goes backwards across restarts.
    ic.crypto_seq_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    ic.shutdown_timeout = SHUTDOWN_CAP;
    let mut inst = Instance::new(ic, now);
    for ifindex in up {
        inst.interface_up(now, ifindex);
    }
    tracing::info!("OSPF router {router_id} area {area} started");
    Ok(Some(OspfPart {
        inst,
        sockets,
        area,
        running: o.interface.clone(),
    }))
}

impl Task {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn ifname(&self, ifindex: u32) -> String {
        self.links
            .get(&ifindex)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// Removes stale and duplicate fulcrum routes and installs the initial FIB.
    async fn reconcile(&mut self) -> Result<(), RoutingError> {
        let mut desired = Vec::new();
        for ch in self.rib.take_fib_changes() {
            if let FibChange::Add {
                prefix,
                source,
                nexthops,
            }
            | FibChange::Replace {
                prefix,
                source,
                nexthops,
            } = ch
            {
                if programmed(source) {
                    if let Some(kr) = kernel_route(prefix, &nexthops) {
                        desired.push(kr);
                    }
                }
            }
        }
        let report = self.fib.reconcile(&desired).await?;
        if !report.removed_stale.is_empty() || !report.removed_duplicates.is_empty() {
            tracing::info!(
                "kernel: removed {} stale and {} duplicate fulcrum routes left by a previous run",
                report.removed_stale.len(),
                report.removed_duplicates.len()
            );
        }
        for kr in desired {
            if let Some(p) = rib_net(kr.prefix.network(), kr.prefix.prefix()) {
                self.installed.insert(p, kr);
            }
        }
        Ok(())
    }

    fn apply_announcements(&mut self, wanted: BTreeMap<ospf::Ipv4Net, AnnounceSpec>) {
        let now = self.now();
        let Some(o) = self.ospf.as_mut() else {
            return;
        };
        for p in self.announced.keys() {
            if !wanted.contains_key(p) {
                tracing::info!("OSPF: withdrawing {p}");
                o.inst.withdraw(now, *p);
                let _ = self
                    .metrics
                    .announced
                    .remove_label_values(&[&p.to_string()]);
            }
        }
        for (p, spec) in &wanted {
            if self.announced.get(p) != Some(spec) {
                tracing::info!(
                    "OSPF: announcing {p} as {}",
                    if spec.external.is_some() {
                        "external"
                    } else {
                        "stub"
                    }
                );
                o.inst.announce(now, *p, spec.metric, spec.external);
                self.metrics
                    .announced
                    .with_label_values(&[&p.to_string()])
                    .set(1);
            }
        }
        self.announced = wanted;
    }

    /// Feeds a received packet to the instance; returns true after a socket error (the
    /// caller backs off briefly so that a failing socket cannot spin the loop).
    fn packet(&mut self, i: usize, r: Result<Received, OspfSocketError>, now: Duration) -> bool {
        let Some(o) = self.ospf.as_mut() else {
            return false;
        };
        let Some(sock) = o.sockets.get(i) else {
            return false;
        };
        match r {
            Ok(p) => {
                let ifindex = if p.ifindex == 0 {
                    sock.ifindex()
                } else {
                    p.ifindex
                };
                self.metrics.rx.with_label_values(&[sock.name()]).inc();
                o.inst.handle_packet(now, ifindex, p.src, p.dst, &p.payload);
                false
            }
            Err(OspfSocketError::Malformed(why)) => {
                tracing::debug!("{}: malformed IP packet ({why})", sock.name());
                self.metrics
                    .dropped
                    .with_label_values(&["malformed_ip"])
                    .inc();
                false
            }
            Err(e) => {
                tracing::warn!("{}: {e}", sock.name());
                true
            }
        }
    }

    fn net_event(&mut self, ev: NetEvent, now: Duration) {
        let ospf_if = |o: &OspfPart, ifindex: u32| o.sockets.iter().any(|s| s.ifindex() == ifindex);
        match ev {
            NetEvent::LinkUp { ifindex, name } => {
                let was = self.links.insert(ifindex, (name.clone(), true));
                self.rib.interface_up(ifindex);
                if let Some(o) = self.ospf.as_mut() {
                    if ospf_if(o, ifindex) && was.map(|w| w.1) != Some(true) {
                        tracing::info!("{name}: link up");
                        o.inst.interface_up(now, ifindex);
                    }
                }
            }
            NetEvent::LinkDown { ifindex, name } => {
                let was = self.links.insert(ifindex, (name.clone(), false));
                self.rib.interface_down(ifindex);
                if let Some(o) = self.ospf.as_mut() {
                    if ospf_if(o, ifindex) && was.map(|w| w.1) != Some(false) {
                        tracing::info!("{name}: link down");
                        o.inst.interface_down(now, ifindex);
                    }
                }
            }
            NetEvent::LinkRemoved { ifindex, name } => {
                self.links.remove(&ifindex);
                self.rib.interface_down(ifindex);
                if let Some(o) = self.ospf.as_mut() {
                    if ospf_if(o, ifindex) {
                        tracing::warn!("{name}: removed");
                        o.inst.interface_down(now, ifindex);
                    }
                }
            }
            NetEvent::AddressAdded { ifindex, address } => {
                if let Some(o) = &self.ospf {
                    let known = o
                        .inst
                        .interfaces()
                        .into_iter()
                        .find(|i| i.ifindex == ifindex);
                    if known.is_some_and(|i| i.addr != address.ip()) {
                        tracing::warn!(
                            "{}: address {address} added; OSPF keeps its address from start \
                             until the next restart",
                            self.ifname(ifindex)
                        );
                    }
                }
                if let Err(e) = self
                    .rib
                    .address_add(ifindex, address.ip(), address.prefix())
                {
                    tracing::warn!("address {address}: {e}");
                }
            }
            NetEvent::AddressRemoved { ifindex, address } => {
                if let Err(e) = self
                    .rib
                    .address_del(ifindex, address.ip(), address.prefix())
                {
                    tracing::warn!("address {address}: {e}");
                }
            }
        }
    }

    fn reload(&mut self, c: Arc<Config>, health: Option<&VipRoutes>) {
        // Static routes: remove the ones gone or changed, add the new ones.
        let new_statics = static_routes(&c, &self.links);
        for (key, r) in &self.statics {
            if new_statics.get(key) != Some(r) {
                self.rib.remove_static(key.0, key.1);
            }
        }
        for (key, r) in &new_statics {
            if self.statics.get(key) != Some(r) {
                if let Err(e) = self.rib.update(Source::Static, r.clone()) {
                    tracing::warn!("static route {}: {e}", r.prefix);
                }
            }
        }
        self.statics = new_statics;
        if let Some(o) = &self.ospf {
            let same = c.ospf.as_ref().is_some_and(|n| n.interface == o.running);
            if !same {
                tracing::warn!(
                    "reload: changes to [ospf] interfaces take effect at the next restart"
                );
            }
        } else if c.ospf.is_some() {
            tracing::warn!("reload: [ospf] added; OSPF starts at the next restart");
        }
        if self.ospf.is_some() {
            self.apply_announcements(wanted_announcements(&c, health));
        }
        self.config = c;
    }

    /// Drains the instance and the RIB after an input.
    async fn pump(&mut self) {
        let mut ospf_changes: Vec<RouteChange> = Vec::new();
        if let Some(o) = self.ospf.as_mut() {
            while let Some(t) = o.inst.poll_transmit() {
                match o.sockets.iter().find(|s| s.ifindex() == t.ifindex) {
                    Some(s) => match s.send(t.dst, t.ifindex, &t.bytes).await {
                        Ok(()) => self.metrics.tx.with_label_values(&[s.name()]).inc(),
                        Err(e) => tracing::warn!("{}: send to {}: {e}", s.name(), t.dst),
                    },
                    None => tracing::warn!("OSPF: packet for unknown ifindex {}", t.ifindex),
                }
            }
            // AllDRouters membership follows the interface state (§9.1: DR and Backup).
            for info in o.inst.interfaces() {
                let member = matches!(info.state, InterfaceState::Dr | InterfaceState::Backup);
                if let Some(s) = o.sockets.iter_mut().find(|s| s.ifindex() == info.ifindex) {
                    if let Err(e) = s.set_all_d_routers(member) {
                        tracing::warn!("{}: {e}", info.name);
                    }
                }
            }
            while let Some(ev) = o.inst.poll_event() {
                match ev {
                    Event::NeighborStateChange {
                        ifindex,
                        router_id,
                        addr,
                        old,
                        new,
                    } => {
                        let (ifname, ifaddr) = o
                            .inst
                            .interfaces()
                            .into_iter()
                            .find(|i| i.ifindex == ifindex)
                            .map(|i| (i.name, i.addr))
                            .unwrap_or_else(|| (format!("if{ifindex}"), Ipv4Addr::UNSPECIFIED));
                        if new == NeighborState::Full
                            || old == NeighborState::Full
                            || new == NeighborState::Down
                        {
                            tracing::info!(
                                "AdjChg: Nbr {router_id}({addr}) on {ifname}:{ifaddr}: {} -> {}",
                                neighbor_state_name(old),
                                neighbor_state_name(new)
                            );
                        } else {
                            tracing::debug!(
                                "NSM: Nbr {router_id}({addr}) on {ifname}: {} -> {}",
                                neighbor_state_name(old),
                                neighbor_state_name(new)
                            );
                        }
                        if let Some(b) = &self.bfd {
                            b.neighbor_changed(
                                &o.running, ifindex, &ifname, ifaddr, addr, old, new,
                            );
                        }
                        let labels = [ifname.as_str(), &router_id.to_string()];
                        if new == NeighborState::Down {
                            let _ = self.metrics.neighbor_state.remove_label_values(&labels);
                        } else {
                            self.metrics
                                .neighbor_state
                                .with_label_values(&labels)
                                .set(neighbor_state_number(new));
                        }
                    }
                    Event::RoutesChanged(diff) => {
                        self.metrics.route_changes.inc();
                        ospf_changes.extend(rib_changes(&diff));
                    }
                    Event::ShutdownComplete { acked } => {
                        tracing::info!(
                            "OSPF shutdown complete ({})",
                            if acked {
                                "all flushes acknowledged"
                            } else {
                                "timed out"
                            }
                        );
                        self.shutdown_complete = true;
                    }
                    Event::DroppedPacket(reason) => {
                        let r = snake(&format!("{reason:?}"));
                        tracing::debug!("OSPF packet dropped: {r}");
                        self.metrics.dropped.with_label_values(&[&r]).inc();
                    }
                }
            }
        }
        if !ospf_changes.is_empty() {
            if let Err(e) = self.rib.apply(Source::Ospf, ospf_changes) {
                tracing::warn!("RIB refused OSPF routes: {e}");
            }
        }
        self.sync_fib().await;
    }

    /// Applies the RIB's FIB changes to the kernel (OSPF and static routes only).
    async fn sync_fib(&mut self) {
        let changes = self.rib.take_fib_changes();
        if changes.is_empty() {
            return;
        }
        for ch in changes {
            let prefix = ch.prefix();
            let want = match &ch {
                FibChange::Add {
                    source, nexthops, ..
                }
                | FibChange::Replace {
                    source, nexthops, ..
                } if programmed(*source) => kernel_route(prefix, nexthops),
                _ => None,
            };
            match want {
                Some(kr) => match self.fib.replace(&kr).await {
                    Ok(()) => {
                        tracing::debug!("kernel: {prefix} via {:?}", kr.nexthops);
                        self.installed.insert(prefix, kr);
                    }
                    Err(e) => {
                        self.metrics.kernel_errors.inc();
                        tracing::warn!("kernel: installing {prefix}: {e}");
                    }
                },
                None => {
                    if let Some(kr) = self.installed.remove(&prefix) {
                        if let Err(e) = self.fib.delete(kr.prefix, kr.metric).await {
                            self.metrics.kernel_errors.inc();
                            tracing::warn!("kernel: removing {prefix}: {e}");
                        }
                    }
                }
            }
        }
        self.update_rib_gauge();
        self.publish_learned();
    }

    /// Publishes the selected OSPF routes to the dataplane, when one listens.
    fn publish_learned(&self) {
        let Some(tx) = &self.learned else {
            return;
        };
        let routes = learned_routes(&self.rib.routes(), &self.links);
        tx.send_if_modified(|cur| {
            if **cur == routes {
                false
            } else {
                *cur = Arc::new(routes);
                true
            }
        });
    }

    /// Removes every route this run installed (orderly exit).
    async fn remove_all(&mut self) {
        let n = self.installed.len();
        for (prefix, kr) in std::mem::take(&mut self.installed) {
            if let Err(e) = self.fib.delete(kr.prefix, kr.metric).await {
                tracing::warn!("kernel: removing {prefix}: {e}");
            }
        }
        tracing::info!("kernel: removed {n} fulcrum routes");
    }

    fn update_rib_gauge(&self) {
        let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
        for s in [
            Source::Connected,
            Source::Static,
            Source::Ospf,
            Source::Kernel,
        ] {
            counts.insert(s.name(), 0);
        }
        for r in self.rib.routes() {
            if r.selected {
                *counts.entry(r.source.name()).or_default() += 1;
            }
        }
        for (p, n) in counts {
            self.metrics.rib_routes.with_label_values(&[p]).set(n);
        }
    }

    fn update_gauges(&self) {
        self.update_rib_gauge();
        if let Some(o) = &self.ospf {
            let mut counts: BTreeMap<&'static str, i64> = BTreeMap::new();
            for (_, e) in o.inst.lsdb().iter() {
                *counts
                    .entry(lsa_type_name(e.lsa.header.ls_type))
                    .or_default() += 1;
            }
            for t in ["router", "network", "summary", "asbr-summary", "external"] {
                counts.entry(t).or_insert(0);
            }
            for (t, n) in counts {
                self.metrics.lsas.with_label_values(&[t]).set(n);
            }
        }
    }

    // ----------------------------------------------------------------- control views

    fn answer(&self, req: &Request) -> Result<serde_json::Value, ErrorBody> {
        let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| ErrorBody::new("internal", e.to_string()))
        };
        match req {
            Request::Routes => to_json(serde_json::to_value(self.routes_view())),
            Request::Vips => to_json(serde_json::to_value(self.vips_view())),
            Request::VipDrain { .. } | Request::VipUndrain { .. } => Err(ErrorBody::new(
                "not_supported",
                "draining needs the health subsystem; remove the [[announce]] and reload",
            )),
            Request::OspfNeighbors | Request::OspfInterfaces | Request::OspfDatabase => {
                let Some(o) = &self.ospf else {
                    return Err(ErrorBody::new(
                        "not_available",
                        "OSPF is not configured ([ospf] is absent)",
                    ));
                };
                let now = self.now();
                match req {
                    Request::OspfNeighbors => to_json(serde_json::to_value(neighbors_view(o, now))),
                    Request::OspfInterfaces => to_json(serde_json::to_value(interfaces_view(o))),
                    _ => to_json(serde_json::to_value(database_view(o, now))),
                }
            }
            other => Err(ErrorBody::new(
                "not_supported",
                format!("the routing subsystem does not answer {other:?}"),
            )),
        }
    }

    fn routes_view(&self) -> RoutesView {
        let routes = self
            .rib
            .routes()
            .into_iter()
            .map(|r| {
                let hops = if r.active() { &r.resolved } else { &r.nexthops };
                RouteRow {
                    prefix: r.prefix.to_string(),
                    protocol: r.source.name().to_string(),
                    distance: u32::from(r.distance),
                    metric: r.metric,
                    selected: r.selected,
                    installed: r.selected
                        && (r.source == Source::Connected
                            || self.installed.contains_key(&r.prefix)),
                    nexthops: hops
                        .iter()
                        .map(|n| NexthopRow {
                            via: n.gateway.map(IpAddr::V4),
                            interface: n.ifindex.map(|i| self.ifname(i)).unwrap_or_default(),
                            weight: 1,
                        })
                        .collect(),
                }
            })
            .collect();
        RoutesView { routes }
    }

    fn vips_view(&self) -> VipsView {
        let up = self.ospf.is_some();
        let vips = self
            .announced
            .iter()
            .map(|(p, spec)| VipRow {
                vip: IpAddr::V4(p.addr()),
                method: "ospf".into(),
                announced: up,
                metric: Some(match spec.external {
                    Some(e) => e.metric,
                    None => u32::from(spec.metric),
                }),
                drained: false,
                services_up: 0,
                services_total: 0,
                reason: format!(
                    "[[announce]] {p} as {}",
                    if spec.external.is_some() {
                        "external"
                    } else {
                        "stub"
                    }
                ),
                state: String::new(),
                since_seconds: None,
            })
            .collect();
        VipsView { vips }
    }
}

fn neighbors_view(o: &OspfPart, now: Duration) -> OspfNeighborsView {
    let addrs: BTreeMap<String, Ipv4Addr> = o
        .inst
        .interfaces()
        .into_iter()
        .map(|i| (i.name, i.addr))
        .collect();
    let neighbors = o
        .inst
        .neighbors(now)
        .into_iter()
        .map(|n| OspfNeighborRow {
            neighbor_id: n.router_id.to_string(),
            priority: n.priority,
            state: neighbor_state_name(n.state).to_string(),
            role: n.role.to_string(),
            up_seconds: if n.state == NeighborState::Full {
                n.up_time.as_secs()
            } else {
                0
            },
            dead_ms: u64::try_from(n.dead_time.as_millis()).unwrap_or(u64::MAX),
            address: n.addr.to_string(),
            interface: format!(
                "{}:{}",
                n.interface,
                addrs
                    .get(&n.interface)
                    .copied()
                    .unwrap_or(Ipv4Addr::UNSPECIFIED)
            ),
            retransmit_count: u32::try_from(n.rxmt_len).unwrap_or(u32::MAX),
            request_count: u32::try_from(n.request_len).unwrap_or(u32::MAX),
            db_summary_count: u32::try_from(n.db_summary_len).unwrap_or(u32::MAX),
        })
        .collect();
    OspfNeighborsView { neighbors }
}

fn interfaces_view(o: &OspfPart) -> OspfInterfacesView {
    let interfaces = o
        .inst
        .interfaces()
        .into_iter()
        .map(|i| {
            let network = o
                .running
                .iter()
                .find(|c| c.name == i.name)
                .map(|c| c.network.to_string())
                .unwrap_or_default();
            OspfInterfaceRow {
                name: i.name,
                address: format!("{}/{}", i.addr, i.prefix_len),
                area: o.area.to_string(),
                network,
                state: interface_state_name(i.state).to_string(),
                cost: u32::from(i.cost),
                dr: i.dr.to_string(),
                bdr: i.bdr.to_string(),
                neighbors: u32::try_from(i.neighbors).unwrap_or(u32::MAX),
                adjacencies: u32::try_from(i.adjacent).unwrap_or(u32::MAX),
            }
        })
        .collect();
    OspfInterfacesView { interfaces }
}

fn database_view(o: &OspfPart, now: Duration) -> OspfDatabaseView {
    let lsas = o
        .inst
        .lsdb()
        .iter()
        .map(|(_, e)| {
            let h = e.header(now);
            let summary = match &e.lsa.body {
                LsaBody::Router(r) => format!("{} links", r.links.len()),
                LsaBody::Network(n) => format!("{} attached", n.attached.len()),
                LsaBody::Summary(s) => format!(
                    "{}/{} metric {}",
                    h.id,
                    ospf::lsa::mask_len(s.mask).unwrap_or(32),
                    s.metric
                ),
                LsaBody::External(x) => format!(
                    "E{} {}/{} metric {} tag {}",
                    if x.type2 { 2 } else { 1 },
                    h.id,
                    ospf::lsa::mask_len(x.mask).unwrap_or(32),
                    x.metric,
                    x.tag
                ),
                LsaBody::Opaque(b) => format!("{} bytes", b.len()),
            };
            LsaRow {
                area: if h.ls_type == LsaType::AsExternal || h.ls_type == LsaType::OpaqueAs {
                    String::new()
                } else {
                    o.area.to_string()
                },
                lsa_type: lsa_type_name(h.ls_type).to_string(),
                link_state_id: h.id.to_string(),
                advertising_router: h.adv_router.to_string(),
                age: h.age,
                sequence: h.seq as u32,
                checksum: h.checksum,
                summary,
            }
        })
        .collect();
    OspfDatabaseView { lsas }
}

/// The RIB changes for an OSPF route diff. Prefixes this router announces itself have no
/// next hops and leave the RIB; a next hop without a gateway (a directly attached network)
/// becomes an interface next hop.
fn rib_changes(diff: &ospf::RouteDiff) -> Vec<RouteChange> {
    let mut out = Vec::new();
    for (p, r) in diff.added.iter().chain(diff.changed.iter()) {
        let Some(prefix) = rib_net(p.addr(), p.prefix_len()) else {
            continue;
        };
        if r.nexthops.is_empty() {
            out.push(RouteChange::Remove(prefix));
            continue;
        }
        let nhs = r
            .nexthops
            .iter()
            .map(|(ifindex, gw)| {
                if gw.is_unspecified() {
                    NextHop::dev(*ifindex)
                } else {
                    NextHop::via_dev(*gw, *ifindex)
                }
            })
            .collect();
        out.push(RouteChange::Update(
            rib::Route::new(prefix, nhs).with_metric(r.cost),
        ));
    }
    for p in &diff.removed {
        if let Some(prefix) = rib_net(p.addr(), p.prefix_len()) {
            out.push(RouteChange::Remove(prefix));
        }
    }
    out
}

/// Whether routes of `source` are programmed into the kernel (the kernel makes connected
/// routes itself and owns its own).
fn programmed(source: Source) -> bool {
    matches!(source, Source::Static | Source::Ospf)
}

/// The kernel form of a FIB entry (`None` without next hops).
/// The selected OSPF routes of `routes` with their next hops' interfaces named from
/// `links` (ifindex → name, up); next hops without a known interface are left out, and
/// so is a route left with none.
fn learned_routes(
    routes: &[rib::RouteView],
    links: &BTreeMap<u32, (String, bool)>,
) -> Vec<LearnedRoute> {
    let mut out = Vec::new();
    for r in routes {
        if !r.selected || r.source != Source::Ospf {
            continue;
        }
        let Ok(prefix) = Ipv4Network::new(r.prefix.addr(), r.prefix.prefix_len()) else {
            continue;
        };
        let hops = if r.resolved.is_empty() {
            &r.nexthops
        } else {
            &r.resolved
        };
        let mut nexthops: Vec<(Option<Ipv4Addr>, String)> = hops
            .iter()
            .filter_map(|h| {
                let name = links.get(&h.ifindex?)?.0.clone();
                Some((h.gateway, name))
            })
            .collect();
        nexthops.sort();
        nexthops.dedup();
        if !nexthops.is_empty() {
            out.push(LearnedRoute { prefix, nexthops });
        }
    }
    out
}

fn kernel_route(prefix: rib::Ipv4Net, nexthops: &[NextHop]) -> Option<KernelRoute> {
    if nexthops.is_empty() {
        return None;
    }
    let net = Ipv4Network::new(prefix.addr(), prefix.prefix_len()).ok()?;
    let mut hops: Vec<Nexthop> = nexthops
        .iter()
        .map(|n| Nexthop {
            gateway: n.gateway,
            ifindex: n.ifindex,
            weight: 1,
        })
        .collect();
    hops.sort();
    hops.dedup();
    Some(KernelRoute {
        prefix: net,
        nexthops: hops,
        metric: Some(KERNEL_METRIC),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_routes_are_the_selected_ospf_ones_with_interface_names() {
        let mut rib = Rib::new();
        rib.address_add(2, Ipv4Addr::new(10, 0, 0, 1), 24)
            .expect("address");
        let gw = Ipv4Addr::new(10, 0, 0, 2);
        let default = rib::Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).expect("prefix");
        let far = rib::Ipv4Net::new(Ipv4Addr::new(172, 31, 0, 0), 24).expect("prefix");
        // A static route to `far` wins over OSPF's (distance 1 < 110).
        rib.update(
            Source::Static,
            rib::Route::new(far, vec![NextHop::via_dev(gw, 2)]),
        )
        .expect("static");
        rib.apply(
            Source::Ospf,
            vec![
                RouteChange::Update(rib::Route::new(default, vec![NextHop::via_dev(gw, 2)])),
                RouteChange::Update(rib::Route::new(far, vec![NextHop::via_dev(gw, 2)])),
                // Through an interface the kernel does not list: left out.
                RouteChange::Update(rib::Route::new(
                    rib::Ipv4Net::new(Ipv4Addr::new(198, 51, 100, 0), 24).expect("prefix"),
                    vec![NextHop::via_dev(Ipv4Addr::new(10, 0, 0, 3), 9)],
                )),
            ],
        )
        .expect("ospf");
        let mut links = BTreeMap::new();
        links.insert(2, ("ftap0".to_string(), true));
        let got = learned_routes(&rib.routes(), &links);
        assert_eq!(
            got,
            [LearnedRoute {
                prefix: "0.0.0.0/0".parse().expect("net"),
                nexthops: vec![(Some(gw), "ftap0".to_string())],
            }]
        );
    }

    #[test]
    fn kernel_route_sorts_and_merges_nexthops() {
        let p = rib::Ipv4Net::new(Ipv4Addr::new(10, 1, 0, 0), 16).expect("prefix");
        let a = NextHop::via_dev(Ipv4Addr::new(10, 0, 0, 2), 3);
        let b = NextHop::via_dev(Ipv4Addr::new(10, 0, 1, 2), 2);
        let kr = kernel_route(p, &[a, b, a]).expect("route");
        assert_eq!(kr.prefix.to_string(), "10.1.0.0/16");
        assert_eq!(kr.metric, Some(KERNEL_METRIC));
        assert_eq!(kr.nexthops.len(), 2);
        assert_eq!(kr.nexthops[0].gateway, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(kernel_route(p, &[]).is_none());
    }

    #[test]
    fn only_static_and_ospf_are_programmed() {
        assert!(programmed(Source::Static));
        assert!(programmed(Source::Ospf));
        assert!(!programmed(Source::Connected));
        assert!(!programmed(Source::Kernel));
    }

    #[test]
    fn drop_reasons_become_snake_case_labels() {
        assert_eq!(snake("AuthFailure"), "auth_failure");
        assert_eq!(snake("BadLength"), "bad_length");
        assert_eq!(snake("Truncated"), "truncated");
    }

    fn parse(text: &str) -> Config {
        Config::parse(text).expect("valid config")
    }

    #[test]
    fn announcements_follow_the_config() {
        let c = parse(
            r#"
[global]
router_id = "1.1.1.1"
[dataplane]
mode = "kernel"
[[interface]]
name = "eth0"
[ospf]
[[ospf.interface]]
name = "eth0"
area = "0.0.0.0"
[[announce]]
prefix = "100.64.0.1/32"
[[announce]]
prefix = "100.64.0.2/32"
announce_as = "external"
metric = 30
metric_type = 1
"#,
        );
        let a = announcements(&c);
        let p1 = ospf::Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 1), 32).expect("p1");
        let p2 = ospf::Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 2), 32).expect("p2");
        assert_eq!(
            a.get(&p1),
            Some(&AnnounceSpec {
                metric: 1,
                external: None
            })
        );
        let e = a.get(&p2).and_then(|s| s.external).expect("external");
        assert!(!e.type2);
        assert_eq!(e.metric, 30);
    }

    #[test]
    fn health_vips_join_the_announcements_and_announce_wins() {
        let c = parse(
            r#"
[global]
router_id = "1.1.1.1"
[dataplane]
mode = "kernel"
[[interface]]
name = "eth0"
[ospf]
[[ospf.interface]]
name = "eth0"
area = "0.0.0.0"
[[announce]]
prefix = "100.64.0.1/32"
metric = 7
"#,
        );
        let net = |d| ospf::Ipv4Net::new(Ipv4Addr::new(100, 64, 0, d), 32).expect("net");
        let health: VipRoutes = [
            (Ipv4Addr::new(100, 64, 0, 1), 50),
            (Ipv4Addr::new(100, 64, 0, 10), 10),
            (Ipv4Addr::new(100, 64, 0, 11), 70_000),
        ]
        .into_iter()
        .collect();
        let w = wanted_announcements(&c, Some(&health));
        assert_eq!(w.len(), 3);
        let stub = |metric| AnnounceSpec {
            metric,
            external: None,
        };
        assert_eq!(w.get(&net(1)), Some(&stub(7)), "[[announce]] wins");
        assert_eq!(w.get(&net(10)), Some(&stub(10)));
        assert_eq!(w.get(&net(11)), Some(&stub(u16::MAX)), "clamped");
        assert_eq!(wanted_announcements(&c, None).len(), 1);
    }

    #[test]
    fn auth_keys_map_to_the_ospf_crate() {
        let md5 = Authentication {
            kind: AuthType::Md5,
            key: Some("s3cret".into()),
            key_id: Some(7),
        };
        match auth_key(&md5) {
            AuthKey::Md5 { key_id, key } => {
                assert_eq!(key_id, 7);
                assert_eq!(key, b"s3cret");
            }
            other => panic!("unexpected {other:?}"),
        }
        let simple = Authentication {
            kind: AuthType::Simple,
            key: Some("abc".into()),
            key_id: None,
        };
        assert_eq!(auth_key(&simple), AuthKey::Simple(*b"abc\0\0\0\0\0"));
        assert_eq!(auth_key(&Authentication::default()), AuthKey::Null);
    }

    #[test]
    fn ospf_diffs_become_rib_changes() {
        use ospf::{PathType, Route, RouteDiff};
        use std::collections::BTreeSet;
        let net = |a: [u8; 4], l| ospf::Ipv4Net::new(Ipv4Addr::from(a), l).expect("net");
        let route = |hops: &[(u32, [u8; 4])]| Route {
            cost: 20,
            type2_cost: 0,
            path_type: PathType::IntraArea,
            nexthops: hops
                .iter()
                .map(|(i, g)| (*i, Ipv4Addr::from(*g)))
                .collect::<BTreeSet<_>>(),
        };
        let diff = RouteDiff {
            added: vec![
                (
                    net([9, 9, 9, 9], 32),
                    route(&[(3, [10, 0, 1, 1]), (4, [10, 0, 2, 1])]),
                ),
                (net([100, 64, 0, 10], 32), route(&[])),
            ],
            changed: vec![(net([10, 0, 5, 0], 24), route(&[(5, [0, 0, 0, 0])]))],
            removed: vec![net([192, 0, 2, 0], 24)],
        };
        let rnet = |a: [u8; 4], l| rib::Ipv4Net::new(Ipv4Addr::from(a), l).expect("net");
        let got = rib_changes(&diff);
        assert_eq!(
            got,
            vec![
                RouteChange::Update(
                    rib::Route::new(
                        rnet([9, 9, 9, 9], 32),
                        vec![
                            NextHop::via_dev(Ipv4Addr::new(10, 0, 1, 1), 3),
                            NextHop::via_dev(Ipv4Addr::new(10, 0, 2, 1), 4),
                        ],
                    )
                    .with_metric(20)
                ),
                RouteChange::Remove(rnet([100, 64, 0, 10], 32)),
                RouteChange::Update(
                    rib::Route::new(rnet([10, 0, 5, 0], 24), vec![NextHop::dev(5)]).with_metric(20)
                ),
                RouteChange::Remove(rnet([192, 0, 2, 0], 24)),
            ]
        );
    }

    #[test]
    fn neighbor_states_use_the_mib_numbering() {
        assert_eq!(neighbor_state_number(NeighborState::Down), 1);
        assert_eq!(neighbor_state_number(NeighborState::TwoWay), 4);
        assert_eq!(neighbor_state_number(NeighborState::Full), 8);
    }
}
