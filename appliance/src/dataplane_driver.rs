//! The dataplane subsystem of `dpdk` mode: the `dataplane` crate's DPDK backend started
//! from the configuration, and the services of the configuration programmed into it.
//!
//! What it does:
//! - [`backend_config`] turns `[dataplane]` and `[[interface]]` into a
//!   [`BackendConfig`]: one DPDK port per interface (`device = "0000:03:00.0"` for a PCI
//!   port, `device = "net_af_packet0,iface=eth1"` for a vdev with its arguments), each with
//!   a `net_tap` kernel twin named after the interface.
//! - [`Dataplane::start`] initialises EAL on a dedicated thread (the main lcore), starts
//!   the ports and twins, and launches the forwarding loop on the first worker lcore;
//!   [`Dataplane::setup_twins`] then sets the interfaces' addresses on the twins and brings
//!   them up, so the routing and health subsystems (started after it) find ordinary
//!   kernel interfaces for OSPF and probes.
//! - [`desired_services`] and [`diff`]: the services of the configuration as dataplane
//!   [`Command`]s, and the add/edit/delete commands that take one programmed table to
//!   another, so a reload keeps the services that did not change (and their connections).
//! - Health verdicts ([`ServerVerdict`] from the health subsystem) become
//!   [`Command::SetAvailable`] and weight edits.
//! - The FIB from connected and static routes ([`fib_routes`]) plus the OSPF routes the
//!   routing subsystem selects ([`fib_routes_with`], fed by [`Dataplane::with_learned_routes`]),
//!   rebuilt and swapped in whole whenever either changes.
//! - Answers `services` (with `--stats` and `--rate`) from the per-service and per-server
//!   counters the worker shares (lock-free atomics), and exports them, the ports' counters
//!   and the worker's drops as Prometheus metrics (node_exporter's ipvs names, prefixed
//!   `fulcrum_ipvs_`).
//!
//! What it does not do: run more than one forwarding worker (the backend polls queue 0
//! of every port from one lcore; `workers > 1` is refused), list connections (the
//! connection table lives on the worker lcore and is not shared, so `conns` answers
//! `not_supported`), change the global `[timeouts]` or the ports without a restart, or forward
//! IPv6 services (skipped with a warning).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::conn::Timeouts;
use dataplane::dpdk::{
    control_queue, Backend, BackendConfig, BackendCounters, Control, ControlTx, PortSpec,
    StopHandle,
};
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::flow::{PROTO_TCP, PROTO_UDP};
use dataplane::sched::SchedKind;
use dataplane::service::{
    ClientAddr, Command, Forward, Persistence, RealServerConfig, ServiceConfig, ServiceKey, Stats,
};
use dataplane::worker::{DropReason, PortConfig, Worker, WorkerConfig, WorkerCounters};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use tokio::sync::mpsc;

use crate::config::{self, Config, DataplaneMode};
use crate::control::{
    Counters, ErrorBody, Rates, RealServerRow, Request, ServiceRow, ServicesView,
};
use crate::daemon::{Subsystem, SubsystemContext, SubsystemError, SubsystemFuture, Topic};
use crate::routing::{LearnedRoute, LearnedRoutes};

/// Capacity of the control queue to the forwarding loop.
const CONTROL_QUEUE: usize = 1024;
/// How long a command may wait for room in the control queue.
const CONTROL_WAIT: Duration = Duration::from_secs(5);
/// How long EAL and the ports may take to come up.
const START_WAIT: Duration = Duration::from_secs(60);
/// Rate sampling period.
const SAMPLE: Duration = Duration::from_secs(1);
/// Connection-table capacity of the worker.
const CONN_CAPACITY: u32 = 1 << 20;

/// Errors of the dataplane subsystem.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The configuration cannot be run by the DPDK backend.
    #[error("{key}: {message}")]
    Config {
        /// Key path of the offending setting.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The backend (EAL, ports, twins, forwarding loop) failed.
    #[error("dpdk backend: {0}")]
    Backend(String),
    /// Setting up a twin in the kernel failed.
    #[error("twin {twin}: {message}")]
    Twin {
        /// The twin's name.
        twin: String,
        /// What failed.
        message: String,
    },
    /// The forwarding loop no longer takes commands.
    #[error("control queue: the forwarding loop does not take commands")]
    QueueStuck,
    /// A Prometheus collector could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn cfg_err(key: impl Into<String>, message: impl Into<String>) -> DataplaneError {
    DataplaneError::Config {
        key: key.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// Configuration → backend, worker, FIB, services.

/// Splits an interface's `device` into the DPDK device name and, for a vdev, its
/// arguments: `net_af_packet0,iface=eth1` → (`net_af_packet0`, `Some("iface=eth1")`);
/// a PCI address has no arguments. A vdev without arguments gets empty ones.
pub fn parse_device(device: &str) -> (String, Option<String>) {
    let (name, args) = match device.split_once(',') {
        Some((n, a)) => (n.trim(), Some(a.trim().to_owned())),
        None => (device.trim(), None),
    };
    let is_vdev = name.starts_with("net_") || name.starts_with("eth_");
    let args = match (args, is_vdev) {
        (Some(a), _) => Some(a),
        (None, true) => Some(String::new()),
        (None, false) => None,
    };
    (name.to_owned(), args)
}

/// The backend configuration of a `dpdk` mode configuration (see the module docs).
pub fn backend_config(c: &Config) -> Result<BackendConfig, DataplaneError> {
    if c.dataplane.mode != DataplaneMode::Dpdk {
        return Err(cfg_err(
            "dataplane.mode",
            "the DPDK backend needs mode = \"dpdk\"",
        ));
    }
    if c.dataplane.workers != 1 {
        return Err(cfg_err(
            "dataplane.workers",
            format!(
                "the DPDK backend runs one forwarding worker, not {}",
                c.dataplane.workers
            ),
        ));
    }
    let mut ports = Vec::with_capacity(c.interface.len());
    let mut plugins: Vec<String> = Vec::new();
    for (i, ifc) in c.interface.iter().enumerate() {
        let Some(dev) = &ifc.device else {
            return Err(cfg_err(
                format!("interface[{i}].device"),
                "dpdk mode needs a device",
            ));
        };
        let (device, devargs) = parse_device(dev);
        if devargs.is_some() {
            // The vdev's driver: its name without the trailing instance number.
            let driver = device.trim_end_matches(|ch: char| ch.is_ascii_digit());
            if !driver.is_empty() && !plugins.iter().any(|p| p == driver) {
                plugins.push(driver.to_owned());
            }
        }
        ports.push(PortSpec {
            device,
            devargs,
            twin: Some(ifc.name.clone()),
        });
    }
    Ok(BackendConfig {
        eal_args: c.dataplane.eal.clone(),
        plugins,
        ports,
        mbufs: 8191,
        rx_desc: 512,
        tx_desc: 512,
        idle_sleep: Duration::from_micros(u64::from(c.dataplane.idle_sleep_us)),
    })
}

/// The FIB routes of a configuration: every interface address's subnet on its port, then
/// the static routes (a gateway's port is the named interface or the one whose subnet
/// holds it). Routes to the same prefix are merged (ECMP); a static route whose prefix is
/// connected is ignored. OSPF routes are not included.
pub fn fib_routes(c: &Config) -> Result<Vec<Route>, DataplaneError> {
    let mut by_prefix: BTreeMap<(u32, u8), Vec<NextHop>> = BTreeMap::new();
    let mut connected: Vec<(ipnetwork::Ipv4Network, u16)> = Vec::new();
    for (i, ifc) in c.interface.iter().enumerate() {
        let port = u16::try_from(i).map_err(|_| cfg_err("interface", "too many interfaces"))?;
        for a in &ifc.addresses {
            connected.push((*a, port));
            by_prefix
                .entry((u32::from(a.network()), a.prefix()))
                .or_default()
                .push(NextHop {
                    gateway: None,
                    port,
                });
        }
    }
    let connected_keys: Vec<(u32, u8)> = by_prefix.keys().copied().collect();
    for (i, r) in c.route.iter().enumerate() {
        let key = (u32::from(r.prefix.network()), r.prefix.prefix());
        if connected_keys.contains(&key) {
            continue;
        }
        let port = match &r.interface {
            Some(name) => c
                .interface
                .iter()
                .position(|ifc| &ifc.name == name)
                .and_then(|p| u16::try_from(p).ok()),
            None => r.via.and_then(|g| {
                connected
                    .iter()
                    .find(|(net, _)| net.contains(g))
                    .map(|(_, p)| *p)
            }),
        };
        let Some(port) = port else {
            return Err(cfg_err(
                format!("route[{i}]"),
                format!(
                    "no interface reaches {} (gateway {})",
                    r.prefix,
                    r.via
                        .map(|g| g.to_string())
                        .unwrap_or_else(|| "none".into())
                ),
            ));
        };
        by_prefix.entry(key).or_default().push(NextHop {
            gateway: r.via,
            port,
        });
    }
    Ok(by_prefix
        .into_iter()
        .filter_map(|((addr, len), nexthops)| {
            Prefix::new(Ipv4Addr::from(addr), len).map(|prefix| Route { prefix, nexthops })
        })
        .collect())
}

/// [`fib_routes`] plus the OSPF-learned `learned` routes: a learned route's next hops
/// leave through the port whose interface (twin) they name, and next hops naming no
/// port are left out. A learned route to a prefix that is connected or static is
/// ignored (those win in the RIB too: lower administrative distance).
pub fn fib_routes_with(c: &Config, learned: &[LearnedRoute]) -> Result<Vec<Route>, DataplaneError> {
    let mut routes = fib_routes(c)?;
    for l in learned {
        let Some(prefix) = Prefix::new(l.prefix.network(), l.prefix.prefix()) else {
            continue;
        };
        if routes.iter().any(|r| r.prefix == prefix) {
            continue;
        }
        let nexthops: Vec<NextHop> = l
            .nexthops
            .iter()
            .filter_map(|(gateway, name)| {
                let port = c.interface.iter().position(|i| &i.name == name)?;
                Some(NextHop {
                    gateway: *gateway,
                    port: u16::try_from(port).ok()?,
                })
            })
            .collect();
        if !nexthops.is_empty() {
            routes.push(Route { prefix, nexthops });
        }
    }
    Ok(routes)
}

/// The dataplane scheduler of a configured one.
pub fn scheduler(s: config::Scheduler) -> SchedKind {
    use config::Scheduler as S;
    match s {
        S::Rr => SchedKind::Rr,
        S::Wrr => SchedKind::Wrr,
        S::Lc => SchedKind::Lc,
        S::Wlc => SchedKind::Wlc,
        S::Lblc => SchedKind::Lblc,
        S::Lblcr => SchedKind::Lblcr,
        S::Dh => SchedKind::Dh,
        S::Sh => SchedKind::Sh {
            port: false,
            fallback: false,
        },
        S::Sed => SchedKind::Sed,
        S::Nq => SchedKind::Nq,
        S::Fo => SchedKind::Fo,
        S::Ovf => SchedKind::Ovf,
        S::Mh => SchedKind::Mh {
            table_size: 251,
            port: false,
            fallback: false,
        },
        S::Twos => SchedKind::Twos { seed: 0x5eed },
        S::Conhash => SchedKind::Conhash { port: false },
    }
}

fn forward(f: config::Forward) -> Forward {
    match f {
        config::Forward::Fnat => Forward::FullNat,
        config::Forward::Nat => Forward::Nat,
        config::Forward::Dr => Forward::Dr,
        config::Forward::Tun => Forward::Tun,
    }
}

/// ipvsadm's word for a forwarding method.
fn forward_word(f: Forward) -> &'static str {
    match f {
        Forward::FullNat => "FullNat",
        Forward::Nat => "Masq",
        Forward::Dr => "Route",
        Forward::Tun => "Tunnel",
    }
}

fn v4_prefixes(nets: &[ipnetwork::IpNetwork]) -> Vec<Prefix> {
    nets.iter()
        .filter_map(|n| match n {
            ipnetwork::IpNetwork::V4(n) => Prefix::new(n.network(), n.prefix()),
            ipnetwork::IpNetwork::V6(_) => None,
        })
        .collect()
}

/// A [`ServiceKey`] ordered (by address, port, protocol) for the tables here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub ServiceKey);

impl Ord for Key {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0.vaddr, self.0.vport, self.0.proto).cmp(&(o.0.vaddr, o.0.vport, o.0.proto))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// One service as the dataplane should have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredService {
    /// The configuration's service name.
    pub name: String,
    /// Service settings.
    pub config: ServiceConfig,
    /// Real servers by (address, port).
    pub servers: BTreeMap<(Ipv4Addr, u16), RealServerConfig>,
}

/// The services of a configuration, keyed as the dataplane keys them. IPv6 services and
/// IPv6 real servers are skipped (with a warning): the dataplane forwards IPv4 only.
pub fn desired_services(c: &Config) -> BTreeMap<Key, DesiredService> {
    let mut out = BTreeMap::new();
    for s in &c.service {
        let IpAddr::V4(vip) = s.vip else {
            tracing::warn!("dataplane: service {}: IPv6 VIP {} skipped", s.name, s.vip);
            continue;
        };
        let Ok(port) = u16::try_from(s.port) else {
            continue;
        };
        let proto = match s.protocol {
            config::Protocol::Tcp => PROTO_TCP,
            config::Protocol::Udp => PROTO_UDP,
        };
        let client_addr = match s.client_address {
            config::ClientAddress::None => ClientAddr::None,
            config::ClientAddress::Toa => ClientAddr::Toa,
            config::ClientAddress::ProxyV1 => ClientAddr::ProxyV1,
            config::ClientAddress::ProxyV2 => ClientAddr::ProxyV2,
        };
        if s.sorry_server.is_some() {
            tracing::warn!(
                "dataplane: service {}: sorry_server is not supported by the DPDK dataplane",
                s.name
            );
        }
        let persistence = s.persistence_timeout.map(|timeout| Persistence {
            timeout,
            netmask: s
                .persistence_netmask
                .map(|m| u32::from(m).count_ones() as u8)
                .unwrap_or(32),
        });
        let config = ServiceConfig {
            scheduler: scheduler(s.scheduler),
            persistence,
            est_timeout: s.established_timeout,
            syn_proxy: s.syn_proxy,
            client_addr,
            allow: v4_prefixes(&s.allow),
            deny: v4_prefixes(&s.deny),
            local_addrs: s
                .local_addresses
                .iter()
                .filter_map(|a| match a {
                    IpAddr::V4(a) => Some(*a),
                    IpAddr::V6(_) => None,
                })
                .collect(),
            ..ServiceConfig::default()
        };
        let mut servers = BTreeMap::new();
        for rs in &s.real_server {
            let IpAddr::V4(addr) = rs.address else {
                tracing::warn!(
                    "dataplane: service {}: IPv6 real server {} skipped",
                    s.name,
                    rs.address
                );
                continue;
            };
            let rport = s.real_port(rs);
            let mut r = RealServerConfig::new(addr, rport, rs.weight);
            r.forward = forward(s.forward);
            servers.insert((addr, rport), r);
        }
        out.insert(
            Key(ServiceKey::new(proto, vip, port)),
            DesiredService {
                name: s.name.clone(),
                config,
                servers,
            },
        );
    }
    out
}

/// The real servers whose health check starts them down (`alpha = true`): the health
/// subsystem reports them only once they come up.
fn starts_down(c: &Config) -> std::collections::HashSet<(String, SocketAddr)> {
    let mut out = std::collections::HashSet::new();
    for s in &c.service {
        for rs in &s.real_server {
            if s.check_for(rs).is_some_and(|ch| ch.alpha) {
                out.insert((s.name.clone(), SocketAddr::new(rs.address, s.real_port(rs))));
            }
        }
    }
    out
}

/// Applies health verdicts to the weights of a desired table: a server with a verdict
/// takes the verdict's weight (its configured one when the verdict carries none).
fn with_health(
    mut d: BTreeMap<Key, DesiredService>,
    health: &HashMap<(String, SocketAddr), Verdict>,
) -> BTreeMap<Key, DesiredService> {
    for s in d.values_mut() {
        for ((addr, port), rs) in s.servers.iter_mut() {
            let k = (s.name.clone(), SocketAddr::new(IpAddr::V4(*addr), *port));
            if let Some(Verdict {
                weight: Some(w), ..
            }) = health.get(&k)
            {
                rs.weight = *w;
            }
        }
    }
    d
}

/// The commands that take the dataplane from `old` to `new`: services gone are deleted
/// (their servers with them), new ones added with their servers, changed settings edited
/// in place, and servers added, edited or deleted one by one; services and servers that
/// did not change get no command, so their connections and counters stay. Added services
/// and servers carry fresh counters.
pub fn diff(
    old: &BTreeMap<Key, DesiredService>,
    new: &BTreeMap<Key, DesiredService>,
) -> Vec<Command> {
    let mut out = Vec::new();
    for key in old.keys() {
        if !new.contains_key(key) {
            out.push(Command::DeleteService(key.0));
        }
    }
    for (k, n) in new {
        let key = &k.0;
        match old.get(k) {
            None => {
                out.push(Command::AddService(*key, n.config.clone(), Arc::default()));
                for rs in n.servers.values() {
                    out.push(Command::AddServer(*key, *rs, Arc::default()));
                }
            }
            Some(o) => {
                if o.config != n.config {
                    out.push(Command::EditService(*key, n.config.clone()));
                }
                for id in o.servers.keys() {
                    if !n.servers.contains_key(id) {
                        out.push(Command::DeleteServer(*key, id.0, id.1));
                    }
                }
                for (id, rs) in &n.servers {
                    match o.servers.get(id) {
                        None => out.push(Command::AddServer(*key, *rs, Arc::default())),
                        Some(prev) if prev != rs => out.push(Command::EditServer(*key, *rs)),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Health verdicts.

/// A health verdict on one real server, from the health subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVerdict {
    /// The configuration's service name.
    pub service: String,
    /// The real server.
    pub server: SocketAddr,
    /// Up or down; `None` when only the weight changed.
    pub up: Option<bool>,
    /// The weight the checker gives it, if it gives one.
    pub weight: Option<u32>,
}

/// The channel of [`ServerVerdict`]s from the health subsystem to the dataplane.
pub fn verdict_channel() -> (
    mpsc::UnboundedSender<ServerVerdict>,
    mpsc::UnboundedReceiver<ServerVerdict>,
) {
    mpsc::unbounded_channel()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    up: bool,
    weight: Option<u32>,
}

// ---------------------------------------------------------------------------------------
// The programmed table, shared with the view and the metrics.

#[derive(Debug)]
struct ProgrammedServer {
    cfg: RealServerConfig,
    stats: Arc<Stats>,
    available: bool,
}

#[derive(Debug)]
struct ProgrammedService {
    name: String,
    cfg: ServiceConfig,
    stats: Arc<Stats>,
    servers: BTreeMap<(Ipv4Addr, u16), ProgrammedServer>,
}

/// What the worker has been told, with the counters it shares.
#[derive(Debug, Default)]
struct Table {
    services: BTreeMap<Key, ProgrammedService>,
}

impl Table {
    /// Records a command the worker has accepted into its queue.
    fn record(&mut self, cmd: &Command, names: &BTreeMap<Key, DesiredService>) {
        match cmd {
            Command::AddService(k, cfg, stats) => {
                let name = names
                    .get(&Key(*k))
                    .map(|d| d.name.clone())
                    .unwrap_or_default();
                self.services.insert(
                    Key(*k),
                    ProgrammedService {
                        name,
                        cfg: cfg.clone(),
                        stats: Arc::clone(stats),
                        servers: BTreeMap::new(),
                    },
                );
            }
            Command::EditService(k, cfg) => {
                if let Some(s) = self.services.get_mut(&Key(*k)) {
                    s.cfg = cfg.clone();
                }
            }
            Command::DeleteService(k) => {
                self.services.remove(&Key(*k));
            }
            Command::AddServer(k, rs, stats) => {
                if let Some(s) = self.services.get_mut(&Key(*k)) {
                    s.servers.insert(
                        (rs.addr, rs.port),
                        ProgrammedServer {
                            cfg: *rs,
                            stats: Arc::clone(stats),
                            available: true,
                        },
                    );
                }
            }
            Command::EditServer(k, rs) => {
                if let Some(p) = self
                    .services
                    .get_mut(&Key(*k))
                    .and_then(|s| s.servers.get_mut(&(rs.addr, rs.port)))
                {
                    p.cfg = *rs;
                }
            }
            Command::DeleteServer(k, a, p) => {
                if let Some(s) = self.services.get_mut(&Key(*k)) {
                    s.servers.remove(&(*a, *p));
                }
            }
            Command::SetAvailable(k, a, p, up) => {
                if let Some(rs) = self
                    .services
                    .get_mut(&Key(*k))
                    .and_then(|s| s.servers.get_mut(&(*a, *p)))
                {
                    rs.available = *up;
                }
            }
        }
    }
}

fn counters_of(s: &Stats) -> Counters {
    Counters {
        conns: s.conns.get(),
        in_packets: s.pkts_in.get(),
        out_packets: s.pkts_out.get(),
        in_bytes: s.bytes_in.get(),
        out_bytes: s.bytes_out.get(),
    }
}

fn rate_of(now: &Counters, then: &Counters, secs: f64) -> Rates {
    let r = |a: u64, b: u64| {
        if secs > 0.0 {
            (a.saturating_sub(b) as f64 / secs).round() as u64
        } else {
            0
        }
    };
    Rates {
        cps: r(now.conns, then.conns),
        in_pps: r(now.in_packets, then.in_packets),
        out_pps: r(now.out_packets, then.out_packets),
        in_bps: r(now.in_bytes, then.in_bytes),
        out_bps: r(now.out_bytes, then.out_bytes),
    }
}

/// Identity of a counter set for rates: the service, and the server if any.
type RateKey = (ServiceKey, Option<(Ipv4Addr, u16)>);

fn service_flags(cfg: &ServiceConfig) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(p) = cfg.persistence {
        flags.push(format!("persistent {}", p.timeout.as_secs()));
        if p.netmask != 32 {
            flags.push(format!(
                "mask {}",
                Ipv4Addr::from(Prefix::mask_of(p.netmask))
            ));
        }
    }
    if cfg.syn_proxy {
        flags.push("synproxy".into());
    }
    match cfg.client_addr {
        ClientAddr::None => {}
        ClientAddr::Toa => flags.push("toa".into()),
        ClientAddr::ProxyV1 => flags.push("proxy-protocol v1".into()),
        ClientAddr::ProxyV2 => flags.push("proxy-protocol v2".into()),
    }
    flags
}

/// The `services` view of a table; `rates` holds the previous sample and its age.
fn services_view(
    t: &Table,
    stats: bool,
    rate: bool,
    sample: Option<&(Instant, HashMap<RateKey, Counters>)>,
) -> ServicesView {
    let rate_for = |key: RateKey, now: &Counters| -> Option<Rates> {
        if !rate {
            return None;
        }
        Some(match sample {
            Some((at, m)) => m
                .get(&key)
                .map(|then| rate_of(now, then, at.elapsed().as_secs_f64()))
                .unwrap_or_default(),
            None => Rates::default(),
        })
    };
    let services = t
        .services
        .iter()
        .map(|(k, s)| {
            let sc = counters_of(&s.stats);
            let real_servers = s
                .servers
                .iter()
                .map(|(id, rs)| {
                    let c = counters_of(&rs.stats);
                    RealServerRow {
                        address: IpAddr::V4(id.0),
                        port: id.1,
                        forward: forward_word(rs.cfg.forward).into(),
                        weight: if rs.available { rs.cfg.weight } else { 0 },
                        active_conns: rs.stats.active.get(),
                        inactive_conns: rs.stats.inactive.get(),
                        stats: stats.then_some(c),
                        rate: rate_for((k.0, Some(*id)), &c),
                    }
                })
                .collect();
            ServiceRow {
                name: s.name.clone(),
                protocol: if k.0.proto == PROTO_UDP { "udp" } else { "tcp" }.into(),
                vip: IpAddr::V4(Ipv4Addr::from(k.0.vaddr)),
                port: k.0.vport,
                scheduler: s.cfg.scheduler.name().into(),
                flags: service_flags(&s.cfg),
                stats: stats.then_some(sc),
                rate: rate_for((k.0, None), &sc),
                real_servers,
            }
        })
        .collect();
    ServicesView { services }
}

fn sample_table(t: &Table) -> HashMap<RateKey, Counters> {
    let mut m = HashMap::new();
    for (k, s) in &t.services {
        m.insert((k.0, None), counters_of(&s.stats));
        for (id, rs) in &s.servers {
            m.insert((k.0, Some(*id)), counters_of(&rs.stats));
        }
    }
    m
}

// ---------------------------------------------------------------------------------------
// Metrics.

/// The Prometheus collector of the dataplane: reads the shared atomics at scrape time.
struct DpCollector {
    table: Arc<Mutex<Table>>,
    ports: Vec<String>,
    backend: Arc<BackendCounters>,
    worker: Arc<WorkerCounters>,
    descs: Vec<Desc>,
}

/// (name, help, counter?) of every family.
const FAMILIES: &[(&str, &str, bool)] = &[
    (
        "fulcrum_ipvs_connections_total",
        "Connections scheduled by a virtual service.",
        true,
    ),
    (
        "fulcrum_ipvs_incoming_packets_total",
        "Packets from clients to a virtual service.",
        true,
    ),
    (
        "fulcrum_ipvs_outgoing_packets_total",
        "Packets from real servers of a virtual service.",
        true,
    ),
    (
        "fulcrum_ipvs_incoming_bytes_total",
        "Bytes from clients to a virtual service.",
        true,
    ),
    (
        "fulcrum_ipvs_outgoing_bytes_total",
        "Bytes from real servers of a virtual service.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_connections_total",
        "Connections scheduled to a real server.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_incoming_packets_total",
        "Packets forwarded to a real server.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_outgoing_packets_total",
        "Packets from a real server.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_incoming_bytes_total",
        "Bytes forwarded to a real server.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_outgoing_bytes_total",
        "Bytes from a real server.",
        true,
    ),
    (
        "fulcrum_ipvs_backend_connections_active",
        "Established connections of a real server.",
        false,
    ),
    (
        "fulcrum_ipvs_backend_connections_inactive",
        "Other connections of a real server.",
        false,
    ),
    (
        "fulcrum_ipvs_backend_weight",
        "Current weight of a real server (0 when down).",
        false,
    ),
    (
        "fulcrum_dataplane_port_rx_packets_total",
        "Frames received on a DPDK port.",
        true,
    ),
    (
        "fulcrum_dataplane_port_rx_bytes_total",
        "Bytes received on a DPDK port.",
        true,
    ),
    (
        "fulcrum_dataplane_port_tx_packets_total",
        "Frames transmitted on a DPDK port.",
        true,
    ),
    (
        "fulcrum_dataplane_port_tx_bytes_total",
        "Bytes transmitted on a DPDK port.",
        true,
    ),
    (
        "fulcrum_dataplane_port_imissed_total",
        "Frames a DPDK port missed (no descriptor).",
        true,
    ),
    (
        "fulcrum_dataplane_port_rx_nombuf_total",
        "Receive mbuf allocation failures of a port.",
        true,
    ),
    (
        "fulcrum_dataplane_port_tx_full_drops_total",
        "Frames dropped on a full TX queue.",
        true,
    ),
    (
        "fulcrum_dataplane_port_twin_rx_packets_total",
        "Frames from a port's kernel twin.",
        true,
    ),
    (
        "fulcrum_dataplane_port_twin_tx_packets_total",
        "Frames punted to a port's kernel twin.",
        true,
    ),
    (
        "fulcrum_dataplane_port_twin_drops_total",
        "Punted frames the twin did not take.",
        true,
    ),
    (
        "fulcrum_dataplane_drops_total",
        "Frames the worker dropped, by reason.",
        true,
    ),
    (
        "fulcrum_dataplane_forwarded_packets_total",
        "Frames the worker forwarded.",
        true,
    ),
    (
        "fulcrum_dataplane_punted_packets_total",
        "Frames the worker punted to the kernel.",
        true,
    ),
];

fn metric(labels: &[(&str, &str)], value: f64, counter: bool) -> proto::Metric {
    let mut m = proto::Metric::default();
    for (k, v) in labels {
        let mut lp = proto::LabelPair::default();
        lp.set_name((*k).to_owned());
        lp.set_value((*v).to_owned());
        m.mut_label().push(lp);
    }
    if counter {
        let mut c = proto::Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = proto::Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    m
}

impl DpCollector {
    fn new(
        table: Arc<Mutex<Table>>,
        ports: Vec<String>,
        backend: Arc<BackendCounters>,
        worker: Arc<WorkerCounters>,
    ) -> Result<DpCollector, prometheus::Error> {
        let mut descs = Vec::new();
        for (name, help, _) in FAMILIES {
            let labels: &[&str] = if name.starts_with("fulcrum_ipvs_backend") {
                &[
                    "service",
                    "local_address",
                    "local_port",
                    "proto",
                    "remote_address",
                    "remote_port",
                ]
            } else if name.starts_with("fulcrum_ipvs") {
                &["service", "local_address", "local_port", "proto"]
            } else if name.starts_with("fulcrum_dataplane_port") {
                &["port"]
            } else if *name == "fulcrum_dataplane_drops_total" {
                &["reason"]
            } else {
                &[]
            };
            descs.push(Desc::new(
                (*name).to_owned(),
                (*help).to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect(),
                HashMap::new(),
            )?);
        }
        Ok(DpCollector {
            table,
            ports,
            backend,
            worker,
            descs,
        })
    }
}

impl Collector for DpCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut fams: BTreeMap<&'static str, Vec<proto::Metric>> = BTreeMap::new();
        let mut put = |name: &'static str, m: proto::Metric| fams.entry(name).or_default().push(m);
        if let Ok(t) = self.table.lock() {
            for (k, s) in &t.services {
                let vip = Ipv4Addr::from(k.0.vaddr).to_string();
                let port = k.0.vport.to_string();
                let proto = if k.0.proto == PROTO_UDP { "UDP" } else { "TCP" };
                let l = [
                    ("service", s.name.as_str()),
                    ("local_address", vip.as_str()),
                    ("local_port", port.as_str()),
                    ("proto", proto),
                ];
                let c = counters_of(&s.stats);
                put(
                    "fulcrum_ipvs_connections_total",
                    metric(&l, c.conns as f64, true),
                );
                put(
                    "fulcrum_ipvs_incoming_packets_total",
                    metric(&l, c.in_packets as f64, true),
                );
                put(
                    "fulcrum_ipvs_outgoing_packets_total",
                    metric(&l, c.out_packets as f64, true),
                );
                put(
                    "fulcrum_ipvs_incoming_bytes_total",
                    metric(&l, c.in_bytes as f64, true),
                );
                put(
                    "fulcrum_ipvs_outgoing_bytes_total",
                    metric(&l, c.out_bytes as f64, true),
                );
                for ((ra, rp), rs) in &s.servers {
                    let ra = ra.to_string();
                    let rp = rp.to_string();
                    let l = [
                        l[0],
                        l[1],
                        l[2],
                        l[3],
                        ("remote_address", ra.as_str()),
                        ("remote_port", rp.as_str()),
                    ];
                    let c = counters_of(&rs.stats);
                    put(
                        "fulcrum_ipvs_backend_connections_total",
                        metric(&l, c.conns as f64, true),
                    );
                    put(
                        "fulcrum_ipvs_backend_incoming_packets_total",
                        metric(&l, c.in_packets as f64, true),
                    );
                    put(
                        "fulcrum_ipvs_backend_outgoing_packets_total",
                        metric(&l, c.out_packets as f64, true),
                    );
                    put(
                        "fulcrum_ipvs_backend_incoming_bytes_total",
                        metric(&l, c.in_bytes as f64, true),
                    );
                    put(
                        "fulcrum_ipvs_backend_outgoing_bytes_total",
                        metric(&l, c.out_bytes as f64, true),
                    );
                    put(
                        "fulcrum_ipvs_backend_connections_active",
                        metric(&l, rs.stats.active.get() as f64, false),
                    );
                    put(
                        "fulcrum_ipvs_backend_connections_inactive",
                        metric(&l, rs.stats.inactive.get() as f64, false),
                    );
                    let w = if rs.available { rs.cfg.weight } else { 0 };
                    put(
                        "fulcrum_ipvs_backend_weight",
                        metric(&l, f64::from(w), false),
                    );
                }
            }
        }
        for (name, p) in self.ports.iter().zip(&self.backend.ports) {
            let l = [("port", name.as_str())];
            for (fam, v) in [
                (
                    "fulcrum_dataplane_port_rx_packets_total",
                    p.rx_packets.get(),
                ),
                ("fulcrum_dataplane_port_rx_bytes_total", p.rx_bytes.get()),
                (
                    "fulcrum_dataplane_port_tx_packets_total",
                    p.tx_packets.get(),
                ),
                ("fulcrum_dataplane_port_tx_bytes_total", p.tx_bytes.get()),
                ("fulcrum_dataplane_port_imissed_total", p.imissed.get()),
                ("fulcrum_dataplane_port_rx_nombuf_total", p.rx_nombuf.get()),
                (
                    "fulcrum_dataplane_port_tx_full_drops_total",
                    p.tx_full.get(),
                ),
                (
                    "fulcrum_dataplane_port_twin_rx_packets_total",
                    p.twin_rx.get(),
                ),
                (
                    "fulcrum_dataplane_port_twin_tx_packets_total",
                    p.twin_tx.get(),
                ),
                (
                    "fulcrum_dataplane_port_twin_drops_total",
                    p.twin_drops.get(),
                ),
            ] {
                put(fam, metric(&l, v as f64, true));
            }
        }
        for r in DropReason::ALL {
            put(
                "fulcrum_dataplane_drops_total",
                metric(
                    &[("reason", r.name())],
                    self.worker.drop_count(*r) as f64,
                    true,
                ),
            );
        }
        put(
            "fulcrum_dataplane_forwarded_packets_total",
            metric(&[], self.worker.forwarded.get() as f64, true),
        );
        put(
            "fulcrum_dataplane_punted_packets_total",
            metric(&[], self.worker.punted.get() as f64, true),
        );
        FAMILIES
            .iter()
            .filter_map(|(name, help, counter)| {
                let ms = fams.remove(name)?;
                let mut f = MetricFamily::default();
                f.set_name((*name).to_owned());
                f.set_help((*help).to_owned());
                f.set_field_type(if *counter {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                });
                for m in ms {
                    f.mut_metric().push(m);
                }
                Some(f)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The running backend.

/// What the EAL thread hands back once the loop runs.
struct Ready {
    backend: Arc<BackendCounters>,
    worker: Arc<WorkerCounters>,
}

/// The DPDK backend running on its own threads, and its control queue.
pub struct Dataplane {
    ctl: ControlTx,
    fib: Arc<FibHandle>,
    backend: Arc<BackendCounters>,
    worker: Arc<WorkerCounters>,
    twins: Vec<(String, Vec<ipnetwork::Ipv4Network>)>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    loop_stop: Option<StopHandle>,
    verdicts: Option<mpsc::UnboundedReceiver<ServerVerdict>>,
    learned: Option<tokio::sync::watch::Receiver<LearnedRoutes>>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("twins", &self.twins)
            .finish_non_exhaustive()
    }
}

impl Dataplane {
    /// Starts EAL, the ports, their twins and the forwarding loop (on the first worker
    /// lcore of the EAL arguments), and waits until the loop runs. Blocking: call it before
    /// the subsystems start.
    pub fn start(c: &Config) -> Result<Dataplane, DataplaneError> {
        let bcfg = backend_config(c)?;
        let fib = Arc::new(FibHandle::new(
            Fib::build(&fib_routes(c)?).map_err(|e| cfg_err("route", e.to_string()))?,
        ));
        let port_addrs: Vec<Vec<Ipv4Addr>> = c
            .interface
            .iter()
            .map(|i| i.addresses.iter().map(|a| a.ip()).collect())
            .collect();
        let mut timeouts = Timeouts::dpvs();
        timeouts.set(c.timeouts.tcp, c.timeouts.tcpfin, c.timeouts.udp);
        let (ctl, ctl_rx) = control_queue(CONTROL_QUEUE);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let wfib = Arc::clone(&fib);
        let thread = std::thread::Builder::new()
            .name("fulcrum-eal".into())
            .spawn(move || {
                let backend = match Backend::new(&bcfg) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let Some(lcore) = backend.eal().worker_lcores().first().copied() else {
                    let _ = ready_tx.send(Err(
                        "no worker lcore: give [dataplane].eal at least two lcores \
                         (e.g. \"-l\", \"0-1\")"
                            .into(),
                    ));
                    return;
                };
                let ports = backend
                    .port_macs()
                    .into_iter()
                    .zip(port_addrs)
                    .map(|(mac, addrs)| PortConfig {
                        mac,
                        addrs,
                        mtu: 1500,
                    })
                    .collect();
                let wcfg = WorkerConfig {
                    id: 0,
                    workers: 1,
                    ports,
                    conn_capacity: CONN_CAPACITY,
                    seed: u64::from(std::process::id()) ^ 0x5eed_f00d,
                    timeouts,
                    neigh_capacity: 4096,
                };
                let worker = Worker::new(wcfg, wfib);
                let ready = Ready {
                    backend: backend.counters(),
                    worker: Arc::clone(worker.counters()),
                };
                let stop = backend.stop_handle();
                let running = match backend.launch(worker, ctl_rx, lcore) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((ready, stop)));
                // Until the subsystem stops (or is dropped).
                let _ = stop_rx.recv();
                match running.stop() {
                    Ok(_) => tracing::info!("dataplane: forwarding loop stopped"),
                    Err(e) => tracing::error!("dataplane: forwarding loop: {e}"),
                }
            })
            .map_err(|e| DataplaneError::Backend(format!("cannot start the EAL thread: {e}")))?;
        let (ready, loop_stop) = match ready_rx.recv_timeout(START_WAIT) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(DataplaneError::Backend(e));
            }
            Err(_) => {
                return Err(DataplaneError::Backend(
                    "EAL and the ports did not come up in time".into(),
                ))
            }
        };
        Ok(Dataplane {
            ctl,
            fib,
            backend: ready.backend,
            worker: ready.worker,
            twins: c
                .interface
                .iter()
                .map(|i| (i.name.clone(), i.addresses.clone()))
                .collect(),
            stop: Some(stop_tx),
            thread: Some(thread),
            loop_stop: Some(loop_stop),
            verdicts: None,
            learned: None,
        })
    }

    /// Adds the OSPF routes the routing subsystem publishes on `rx` (see
    /// [`crate::routing::learned_routes_channel`]) to the FIB, rebuilding it on change.
    pub fn with_learned_routes(mut self, rx: tokio::sync::watch::Receiver<LearnedRoutes>) -> Self {
        self.learned = Some(rx);
        self
    }

    /// Takes health verdicts from `rx` (see [`verdict_channel`]).
    pub fn with_verdicts(mut self, rx: mpsc::UnboundedReceiver<ServerVerdict>) -> Self {
        self.verdicts = Some(rx);
        self
    }

    /// The backend's per-port counters.
    pub fn backend_counters(&self) -> &Arc<BackendCounters> {
        &self.backend
    }

    /// Sets the interfaces' addresses on their twins and brings the twins up.
    pub async fn setup_twins(&self) -> Result<(), DataplaneError> {
        use futures::TryStreamExt;
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| DataplaneError::Twin {
            twin: "*".into(),
            message: e.to_string(),
        })?;
        let task = tokio::spawn(conn);
        let result = async {
            for (twin, addrs) in &self.twins {
                let err = |m: String| DataplaneError::Twin {
                    twin: twin.clone(),
                    message: m,
                };
                let link = handle
                    .link()
                    .get()
                    .match_name(twin.clone())
                    .execute()
                    .try_next()
                    .await
                    .map_err(|e| err(e.to_string()))?
                    .ok_or_else(|| err("not found".into()))?;
                let index = link.header.index;
                for a in addrs {
                    match handle
                        .address()
                        .add(index, IpAddr::V4(a.ip()), a.prefix())
                        .execute()
                        .await
                    {
                        Ok(()) => {}
                        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                        }
                        Err(e) => return Err(err(format!("address {a}: {e}"))),
                    }
                }
                handle
                    .link()
                    .set(index)
                    .up()
                    .execute()
                    .await
                    .map_err(|e| err(format!("up: {e}")))?;
                tracing::info!("dataplane: twin {twin} up with {addrs:?}");
            }
            Ok(())
        }
        .await;
        task.abort();
        result
    }

    fn shutdown(&mut self) {
        if let Some(s) = &self.loop_stop {
            s.stop();
        }
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Sends `cmd` into the queue, waiting for room up to [`CONTROL_WAIT`].
async fn send(ctl: &ControlTx, cmd: Command) -> Result<(), DataplaneError> {
    let deadline = Instant::now() + CONTROL_WAIT;
    let mut msg = Control::Command(Box::new(cmd));
    loop {
        match ctl.send(msg) {
            Ok(()) => return Ok(()),
            Err(m) if Instant::now() < deadline => {
                msg = m;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(_) => return Err(DataplaneError::QueueStuck),
        }
    }
}

/// The programming state of the subsystem.
struct Programmer {
    desired: BTreeMap<Key, DesiredService>,
    health: HashMap<(String, SocketAddr), Verdict>,
    table: Arc<Mutex<Table>>,
}

impl Programmer {
    /// Sends the commands from the current table to `c`'s, then the known-down servers.
    async fn apply(&mut self, ctl: &ControlTx, c: &Config) -> Result<usize, DataplaneError> {
        let new = with_health(desired_services(c), &self.health);
        let cmds = diff(&self.desired, &new);
        let n = cmds.len();
        let mut added: Vec<(ServiceKey, Ipv4Addr, u16)> = Vec::new();
        for cmd in cmds {
            if let Command::AddServer(k, rs, _) = &cmd {
                added.push((*k, rs.addr, rs.port));
            }
            if let Ok(mut t) = self.table.lock() {
                t.record(&cmd, &new);
            }
            send(ctl, cmd).await?;
        }
        // Servers (re)added while health says they are down start down, and so do
        // servers without a verdict yet whose check starts them down (`alpha`).
        let alpha = starts_down(c);
        for (k, a, p) in added {
            let Some(name) = new.get(&Key(k)).map(|d| d.name.clone()) else {
                continue;
            };
            let id = (name, SocketAddr::new(IpAddr::V4(a), p));
            let up = match self.health.get(&id) {
                Some(v) => v.up,
                None => !alpha.contains(&id),
            };
            {
                if !up {
                    let cmd = Command::SetAvailable(k, a, p, false);
                    if let Ok(mut t) = self.table.lock() {
                        t.record(&cmd, &new);
                    }
                    send(ctl, cmd).await?;
                }
            }
        }
        self.desired = new;
        Ok(n)
    }

    /// Applies one health verdict.
    async fn verdict(&mut self, ctl: &ControlTx, v: ServerVerdict) -> Result<(), DataplaneError> {
        let SocketAddr::V4(sa) = v.server else {
            return Ok(());
        };
        let key = (v.service.clone(), v.server);
        let prev = self.health.get(&key).copied();
        let up = v.up.or(prev.map(|p| p.up)).unwrap_or(true);
        let weight = v.weight.or(prev.and_then(|p| p.weight));
        self.health.insert(key, Verdict { up, weight });
        let Some((svc_key, d)) = self.desired.iter_mut().find(|(_, d)| d.name == v.service) else {
            return Ok(());
        };
        let svc_key = svc_key.0;
        let Some(rs) = d.servers.get_mut(&(*sa.ip(), sa.port())) else {
            return Ok(());
        };
        let mut cmds = Vec::new();
        if let Some(w) = weight {
            if rs.weight != w {
                rs.weight = w;
                cmds.push(Command::EditServer(svc_key, *rs));
            }
        }
        if v.up.is_some() {
            cmds.push(Command::SetAvailable(svc_key, *sa.ip(), sa.port(), up));
        }
        for cmd in cmds {
            if let Ok(mut t) = self.table.lock() {
                t.record(&cmd, &self.desired);
            }
            send(ctl, cmd).await?;
        }
        Ok(())
    }
}

impl Subsystem for Dataplane {
    fn name(&self) -> &'static str {
        "dataplane"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Dataplane]
    }

    /// The dataplane forwards: it stops after the VIPs are withdrawn and the drain.
    fn stops_after_drain(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture {
        Box::pin(async move {
            run(*self, ctx)
                .await
                .map_err(|e| SubsystemError(e.to_string()))
        })
    }
}

fn build_fib(c: &Config, learned: &[LearnedRoute]) -> Result<Fib, DataplaneError> {
    fib_routes_with(c, learned)
        .and_then(|r| Fib::build(&r).map_err(|e| cfg_err("route", e.to_string())))
}

async fn run(mut dp: Dataplane, mut ctx: SubsystemContext) -> Result<(), DataplaneError> {
    let table = Arc::new(Mutex::new(Table::default()));
    let config = ctx.config.borrow_and_update().clone();
    let ports = config.interface.iter().map(|i| i.name.clone()).collect();
    ctx.registry.register(Box::new(DpCollector::new(
        Arc::clone(&table),
        ports,
        Arc::clone(&dp.backend),
        Arc::clone(&dp.worker),
    )?))?;
    let mut prog = Programmer {
        desired: BTreeMap::new(),
        health: HashMap::new(),
        table: Arc::clone(&table),
    };
    let n = prog.apply(&dp.ctl, &config).await?;
    tracing::info!("dataplane: {n} service commands sent");
    let mut verdicts = dp.verdicts.take();
    let mut learned = dp.learned.take();
    let mut learned_now: LearnedRoutes = Arc::new(Vec::new());
    let mut current = config.clone();
    let mut tick = tokio::time::interval(SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sample: Option<(Instant, HashMap<RateKey, Counters>)> = None;
    let result = loop {
        tokio::select! {
            _ = ctx.shutdown.wait() => break Ok(()),
            Some(call) = ctx.requests.recv() => {
                let answer = match &call.request {
                    Request::Services { stats, rate } => {
                        let view = table
                            .lock()
                            .map(|t| services_view(&t, *stats, *rate, sample.as_ref()))
                            .map_err(|_| ErrorBody::new("internal", "service table poisoned"));
                        view.and_then(|v| {
                            serde_json::to_value(v)
                                .map_err(|e| ErrorBody::new("internal", e.to_string()))
                        })
                    }
                    Request::Conns | Request::Ipvsadm { .. } => Err(ErrorBody::new(
                        "not_supported",
                        "the DPDK dataplane does not share its connection table; \
                         `fulcrum services --stats` shows per-server connection counts",
                    )),
                    other => Err(ErrorBody::new(
                        "bad_request",
                        format!("the dataplane does not answer {other:?}"),
                    )),
                };
                let _ = call.reply.send(answer);
            }
            Ok(()) = ctx.config.changed() => {
                let c = ctx.config.borrow_and_update().clone();
                if c.timeouts != config.timeouts {
                    tracing::warn!("dataplane: [timeouts] changes apply after a restart");
                }
                match build_fib(&c, &learned_now) {
                    Ok(fib) => dp.fib.store(fib),
                    Err(e) => tracing::error!("dataplane: reload: FIB: {e}"),
                }
                current = c.clone();
                match prog.apply(&dp.ctl, &c).await {
                    Ok(n) => tracing::info!("dataplane: reload: {n} service commands sent"),
                    Err(e) => break Err(e),
                }
            }
            Some(v) = async {
                match verdicts.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Err(e) = prog.verdict(&dp.ctl, v).await {
                    break Err(e);
                }
            }
            Some(routes) = async {
                match learned.as_mut() {
                    Some(rx) => match rx.changed().await {
                        Ok(()) => Some(rx.borrow_and_update().clone()),
                        Err(_) => None,
                    },
                    None => std::future::pending().await,
                }
            } => {
                learned_now = routes;
                match build_fib(&current, &learned_now) {
                    Ok(fib) => {
                        dp.fib.store(fib);
                        tracing::info!(
                            "dataplane: FIB rebuilt with {} OSPF routes",
                            learned_now.len()
                        );
                    }
                    Err(e) => tracing::error!("dataplane: OSPF routes: FIB: {e}"),
                }
            }
            _ = tick.tick() => {
                if let Ok(t) = table.lock() {
                    sample = Some((Instant::now(), sample_table(&t)));
                }
            }
        }
    };
    let control = &dp.backend.lcore;
    tracing::info!(
        "dataplane: stopping ({} control messages applied, {} refused)",
        control.control_applied.get(),
        control.control_errors.get()
    );
    tokio::task::spawn_blocking(move || dp.shutdown())
        .await
        .map_err(|e| DataplaneError::Backend(e.to_string()))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[global]
router_id = "10.0.0.1"
control_socket = "/run/fulcrum/test.sock"

[dataplane]
mode = "dpdk"
eal = ["--no-huge", "-l", "0-1"]

[[interface]]
name = "ftap0"
device = "net_af_packet0,iface=l0"
addresses = ["10.0.0.1/24"]

[[interface]]
name = "ftap1"
device = "0000:03:00.0"
addresses = ["192.168.7.1/24"]

[[route]]
prefix = "172.16.0.0/12"
via = "192.168.7.254"

[[service]]
name = "web"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
forward = "fnat"
local_addresses = ["192.168.7.188"]
client_address = "proxy-v2"
syn_proxy = true
persistence_timeout = "300s"

[[service.real_server]]
address = "192.168.7.27"
port = 8080
weight = 2

[[service.real_server]]
address = "192.168.7.28"
port = 8080
weight = 3
"#;

    fn cfg(text: &str) -> Config {
        Config::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn devices_split_into_name_and_vdev_arguments() {
        assert_eq!(
            parse_device("net_af_packet0,iface=l0"),
            ("net_af_packet0".into(), Some("iface=l0".into()))
        );
        assert_eq!(parse_device("0000:03:00.0"), ("0000:03:00.0".into(), None));
        assert_eq!(
            parse_device("net_null0"),
            ("net_null0".into(), Some(String::new()))
        );
    }

    #[test]
    fn backend_config_has_ports_twins_and_plugins() {
        let b = backend_config(&cfg(BASE)).expect("backend config");
        assert_eq!(b.eal_args, ["--no-huge", "-l", "0-1"]);
        assert_eq!(b.plugins, ["net_af_packet"]);
        assert_eq!(b.ports.len(), 2);
        assert_eq!(b.ports[0].twin.as_deref(), Some("ftap0"));
        assert_eq!(b.ports[0].devargs.as_deref(), Some("iface=l0"));
        assert_eq!(b.ports[1].device, "0000:03:00.0");
        assert_eq!(b.ports[1].devargs, None);
    }

    #[test]
    fn more_than_one_worker_is_refused_with_the_key() {
        let text = BASE.replace("eal = [", "workers = 2\neal = [");
        match Config::parse(&text) {
            Err(e) => {
                let d = &e.diagnostics()[0];
                assert_eq!(d.key, "dataplane.workers", "{d}");
                assert_eq!(d.line, 8, "{d}");
            }
            Ok(c) => panic!("workers = 2 accepted: {:?}", backend_config(&c)),
        }
    }

    #[test]
    fn fib_has_connected_and_static_routes() {
        let routes = fib_routes(&cfg(BASE)).expect("routes");
        let fib = Fib::build(&routes).expect("fib");
        let hop = |a: [u8; 4]| fib.lookup(u32::from(Ipv4Addr::from(a))).map(|h| h.to_vec());
        assert_eq!(
            hop([10, 0, 0, 2]),
            Some(vec![NextHop {
                gateway: None,
                port: 0
            }])
        );
        assert_eq!(
            hop([172, 20, 1, 1]),
            Some(vec![NextHop {
                gateway: Some(Ipv4Addr::new(192, 168, 7, 254)),
                port: 1
            }])
        );
        assert_eq!(hop([8, 8, 8, 8]), None);
    }

    #[test]
    fn fib_adds_learned_routes_on_their_ports() {
        let gw = Ipv4Addr::new(10, 0, 0, 2);
        let learned = [
            LearnedRoute {
                prefix: "0.0.0.0/0".parse().expect("net"),
                nexthops: vec![
                    (Some(gw), "ftap0".to_string()),
                    (Some(Ipv4Addr::new(10, 9, 9, 9)), "nosuch".to_string()),
                ],
            },
            // Connected on ftap1: the connected route stays.
            LearnedRoute {
                prefix: "192.168.7.0/24".parse().expect("net"),
                nexthops: vec![(Some(gw), "ftap0".to_string())],
            },
            // No next hop on a port: no route.
            LearnedRoute {
                prefix: "198.51.100.0/24".parse().expect("net"),
                nexthops: vec![(Some(gw), "nosuch".to_string())],
            },
        ];
        let c = cfg(BASE);
        let without = Fib::build(&fib_routes(&c).expect("routes")).expect("fib");
        assert_eq!(
            without.lookup(u32::from(Ipv4Addr::new(203, 0, 113, 5))),
            None
        );
        let routes = fib_routes_with(&c, &learned).expect("routes");
        let fib = Fib::build(&routes).expect("fib");
        let hop = |a: [u8; 4]| fib.lookup(u32::from(Ipv4Addr::from(a))).map(|h| h.to_vec());
        let via_gw = Some(vec![NextHop {
            gateway: Some(gw),
            port: 0,
        }]);
        assert_eq!(hop([203, 0, 113, 5]), via_gw);
        assert_eq!(hop([198, 51, 100, 1]), via_gw);
        assert_eq!(
            hop([192, 168, 7, 27]),
            Some(vec![NextHop {
                gateway: None,
                port: 1
            }])
        );
        assert_eq!(
            hop([172, 20, 1, 1]),
            Some(vec![NextHop {
                gateway: Some(Ipv4Addr::new(192, 168, 7, 254)),
                port: 1
            }])
        );
    }

    #[test]
    fn unreachable_gateway_is_an_error() {
        let text = BASE.replace("192.168.7.254", "10.9.9.9");
        assert!(matches!(
            fib_routes(&cfg(&text)),
            Err(DataplaneError::Config { key, .. }) if key == "route[0]"
        ));
    }

    #[test]
    fn services_translate_every_setting() {
        let d = desired_services(&cfg(BASE));
        let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
        let s = d.get(&Key(key)).expect("service");
        assert_eq!(s.name, "web");
        assert_eq!(s.config.scheduler, SchedKind::Rr);
        assert_eq!(s.config.client_addr, ClientAddr::ProxyV2);
        assert!(s.config.syn_proxy);
        assert_eq!(s.config.local_addrs, [Ipv4Addr::new(192, 168, 7, 188)]);
        assert_eq!(
            s.config.persistence,
            Some(Persistence {
                timeout: Duration::from_secs(300),
                netmask: 32
            })
        );
        let rs = s
            .servers
            .get(&(Ipv4Addr::new(192, 168, 7, 28), 8080))
            .expect("server");
        assert_eq!((rs.weight, rs.forward), (3, Forward::FullNat));
    }

    fn kinds(cmds: &[Command]) -> Vec<String> {
        cmds.iter()
            .map(|c| match c {
                Command::AddService(k, ..) => format!("+svc {}", k.vport),
                Command::EditService(k, _) => format!("~svc {}", k.vport),
                Command::DeleteService(k) => format!("-svc {}", k.vport),
                Command::AddServer(_, rs, _) => format!("+rs {} w{}", rs.addr, rs.weight),
                Command::EditServer(_, rs) => format!("~rs {} w{}", rs.addr, rs.weight),
                Command::DeleteServer(_, a, _) => format!("-rs {a}"),
                Command::SetAvailable(_, a, _, up) => format!("avail {a} {up}"),
            })
            .collect()
    }

    #[test]
    fn diff_from_nothing_adds_everything_and_nothing_when_equal() {
        let d = desired_services(&cfg(BASE));
        let cmds = diff(&BTreeMap::new(), &d);
        assert_eq!(
            kinds(&cmds),
            ["+svc 80", "+rs 192.168.7.27 w2", "+rs 192.168.7.28 w3"]
        );
        assert!(diff(&d, &d).is_empty());
    }

    #[test]
    fn diff_edits_in_place() {
        let old = desired_services(&cfg(BASE));
        let text = BASE
            .replace("weight = 3", "weight = 5")
            .replace("address = \"192.168.7.27\"", "address = \"192.168.7.29\"")
            .replace("scheduler = \"rr\"", "scheduler = \"wrr\"");
        let new = desired_services(&cfg(&text));
        assert_eq!(
            kinds(&diff(&old, &new)),
            [
                "~svc 80",
                "-rs 192.168.7.27",
                "~rs 192.168.7.28 w5",
                "+rs 192.168.7.29 w2"
            ]
        );
        let gone = desired_services(&cfg(&BASE.replace("port = 80", "port = 81")));
        assert_eq!(
            kinds(&diff(&old, &gone)),
            [
                "-svc 80",
                "+svc 81",
                "+rs 192.168.7.27 w2",
                "+rs 192.168.7.28 w3"
            ]
        );
    }

    #[test]
    fn health_weights_override_configured_ones() {
        let mut h = HashMap::new();
        h.insert(
            (
                "web".to_string(),
                "192.168.7.27:8080".parse().expect("addr"),
            ),
            Verdict {
                up: true,
                weight: Some(7),
            },
        );
        let d = with_health(desired_services(&cfg(BASE)), &h);
        let w: Vec<u32> = d
            .values()
            .flat_map(|s| s.servers.values().map(|r| r.weight))
            .collect();
        assert_eq!(w, [7, 3]);
    }

    #[test]
    fn services_view_reads_the_shared_counters() {
        let d = desired_services(&cfg(BASE));
        let mut t = Table::default();
        let cmds = diff(&BTreeMap::new(), &d);
        for c in &cmds {
            t.record(c, &d);
        }
        // What the worker would count.
        if let Some(Command::AddServer(_, _, stats)) = cmds.get(1) {
            stats.conns.add(4);
            stats.pkts_in.add(40);
            stats.active.set(2);
        }
        let before = sample_table(&t);
        if let Some(Command::AddService(_, _, stats)) = cmds.first() {
            stats.conns.add(9);
        }
        let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
        let down = Command::SetAvailable(key, Ipv4Addr::new(192, 168, 7, 28), 8080, false);
        t.record(&down, &d);
        let sample = (Instant::now() - Duration::from_secs(1), before);
        let v = services_view(&t, true, true, Some(&sample));
        let s = &v.services[0];
        assert_eq!(s.name, "web");
        assert_eq!(s.flags, ["persistent 300", "synproxy", "proxy-protocol v2"]);
        assert_eq!(s.stats.map(|c| c.conns), Some(9));
        let r0 = &s.real_servers[0];
        assert_eq!(
            (r0.weight, r0.active_conns, r0.forward.as_str()),
            (2, 2, "FullNat")
        );
        assert_eq!(r0.stats.map(|c| (c.conns, c.in_packets)), Some((4, 40)));
        // The server marked down shows weight 0.
        assert_eq!(s.real_servers[1].weight, 0);
        // 9 connections in about one second since the sample.
        let cps = s.rate.map(|r| r.cps).unwrap_or(0);
        assert!((5..=9).contains(&cps), "cps {cps}");
    }

    #[test]
    fn collector_exports_ipvs_names() {
        let d = desired_services(&cfg(BASE));
        let mut t = Table::default();
        for c in &diff(&BTreeMap::new(), &d) {
            t.record(c, &d);
        }
        let backend = Arc::new(BackendCounters {
            ports: vec![Default::default()],
            lcore: Default::default(),
        });
        backend.ports[0].rx_packets.add(11);
        let col = DpCollector::new(
            Arc::new(Mutex::new(t)),
            vec!["ftap0".into()],
            backend,
            Arc::new(WorkerCounters::default()),
        )
        .expect("collector");
        let reg = prometheus::Registry::new();
        reg.register(Box::new(col)).expect("register");
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &reg.gather(), &mut out)
            .expect("encode");
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains(
                "fulcrum_ipvs_backend_weight{service=\"web\",local_address=\"10.0.0.100\",\
             local_port=\"80\",proto=\"TCP\",remote_address=\"192.168.7.28\",\
             remote_port=\"8080\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains("fulcrum_dataplane_port_rx_packets_total{port=\"ftap0\"} 11"));
        assert!(text.contains("fulcrum_dataplane_drops_total{reason="));
    }
}
