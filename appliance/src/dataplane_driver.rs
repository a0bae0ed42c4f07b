//! The dataplane subsystem of `dpdk` mode: the `dataplane` crate's DPDK backend started
//! from the configuration, and the services of the configuration programmed into it.
//!
//! What it does:
//! - [`backend_config`] turns `[dataplane]` and `[[interface]]` into a
//!   [`BackendConfig`]: one DPDK port per interface (`device = "0000:03:00.0"` for a PCI
//!   port, `device = "net_af_packet0,iface=eth1"` for a vdev with its arguments), each with
//!   a `net_tap` kernel twin named after the interface; with several workers
//!   `net_af_packet` devices get `qpairs=<workers>` ([`with_qpairs`]).
//! - [`Dataplane::start`] initialises EAL on a dedicated thread (the main lcore), starts
//!   the ports and twins, and launches the forwarding loops: `workers = 1` runs one loop
//!   on the first worker lcore (queue 0, the backend's single-loop path); `workers = N`
//!   configures N queue pairs per port and runs N loops on the first N worker lcores of
//!   the EAL list ([`pick_lcores`]), each with its own [`Worker`] and control queue, the
//!   FIB handle shared. [`Dataplane::setup_twins`] then sets the interfaces' addresses on
//!   the twins and brings them up, so the routing and health subsystems (started after
//!   it) find ordinary kernel interfaces for OSPF and probes.
//! - [`desired_services`] and [`diff`]: the services of the configuration as dataplane
//!   [`Command`]s, and the add/edit/delete commands that take one programmed table to
//!   another, so a reload keeps the services that did not change (and their connections).
//!   Every command goes to every worker ([`Controls`], [`fan_out`]: `AddService` and
//!   `AddServer` carry counters of their own for each worker).
//! - Health verdicts ([`ServerVerdict`] from the health subsystem) become
//!   [`Command::SetAvailable`] and weight edits.
//! - VRRP ownership ([`VipOwnership`] from the VRRP subsystem, [`Dataplane::with_vrrp`])
//!   becomes [`Command::SetVipOwned`] and [`Command::SetKernelAddr`]
//!   ([`OwnershipTracker`]): on a VRRP Backup the dataplane neither answers ARP for a
//!   service VIP nor schedules new connections to it, and the twin answers ARP for the
//!   VRRP addresses that are no service's VIP (the real servers' gateway) while Master.
//! - The FIB from connected and static routes ([`fib_routes`]) plus the OSPF routes the
//!   routing subsystem selects ([`fib_routes_with`], fed by [`Dataplane::with_learned_routes`]),
//!   rebuilt and swapped in whole whenever either changes.
//! - Answers `services` (with `--stats` and `--rate`) from the per-service and per-server
//!   counters the workers share (lock-free atomics, summed over the workers), and exports
//!   them, the ports' counters, the workers' drops and per-worker loop and hand-over
//!   counters as Prometheus metrics (node_exporter's ipvs names, prefixed `fulcrum_ipvs_`;
//!   `fulcrum_dataplane_worker_*{worker}`).
//! - Answers `conns` from connection-table snapshots the workers build between bursts
//!   ([`Control::Snapshot`], merged by [`conns_view`], at most `dataplane.conns_limit`
//!   rows).
//! - Carries out runtime `ipvsadm` commands ([`parse_ipvsadm`]: `-A -E -D -a -e -d -Z -C
//!   --set`) through the same diff as a reload; they last until the next reload.
//!   `[timeouts]` changes on reload and `ipvsadm --set` reach the workers as
//!   [`Control::Timeouts`].
//!
//! What it does not do: resize the worker set or change the ports without a restart,
//! write runtime `ipvsadm` changes back to the configuration, give services added with
//! `ipvsadm -A` local addresses (FullNAT needs them in the configuration), or forward
//! IPv6 services (skipped with a warning).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataplane::conn::Timeouts;
use dataplane::dpdk::{
    control_queue, Backend, BackendConfig, BackendCounters, ConnSnapshot, Control, ControlRx,
    ControlTx, HandoverCounters, PortSpec, SnapshotRequest, StopHandle,
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
    ConnRow, ConnsView, Counters, ErrorBody, Rates, RealServerRow, Request, ServiceRow,
    ServicesView,
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

/// The devargs of a vdev with one queue pair per worker: `net_af_packet` gets
/// `qpairs=<workers>` unless the user set `qpairs` (kept as given); other drivers keep
/// their arguments (PCI ports spread flows with RSS).
pub fn with_qpairs(device: &str, devargs: String, workers: u32) -> String {
    let af_packet = device.starts_with("net_af_packet") || device.starts_with("eth_af_packet");
    let set = devargs
        .split(',')
        .any(|kv| kv.trim().split('=').next() == Some("qpairs"));
    if !af_packet || set {
        return devargs;
    }
    if devargs.trim().is_empty() {
        format!("qpairs={workers}")
    } else {
        format!("{devargs},qpairs={workers}")
    }
}

/// The backend configuration of a `dpdk` mode configuration (see the module docs).
pub fn backend_config(c: &Config) -> Result<BackendConfig, DataplaneError> {
    if c.dataplane.mode != DataplaneMode::Dpdk {
        return Err(cfg_err(
            "dataplane.mode",
            "the DPDK backend needs mode = \"dpdk\"",
        ));
    }
    let workers = c.dataplane.workers;
    if workers == 0 {
        return Err(cfg_err(
            "dataplane.workers",
            "at least one worker is needed",
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
        let (device, mut devargs) = parse_device(dev);
        if workers > 1 {
            devargs = devargs.map(|a| with_qpairs(&device, a, workers));
        }
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

/// 64 bits from the kernel's random source (`/dev/urandom`); if that cannot be read,
/// the clock and the pid mixed (never 0).
fn random_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    let v = if from_kernel {
        u64::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    };
    v | 1
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
// VRRP ownership of virtual addresses.

/// VRRP's ownership of one virtual address, from the VRRP subsystem
/// ([`crate::vrrp_driver::VrrpDriver::with_ownership`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipOwnership {
    /// The virtual address.
    pub address: Ipv4Addr,
    /// The interface VRRP adds it to (a DPDK port's kernel twin in `dpdk` mode).
    pub interface: String,
    /// True on Master; false on Backup, Fault and stop.
    pub owned: bool,
}

/// The channel of [`VipOwnership`] changes from the VRRP subsystem to the dataplane.
pub fn ownership_channel() -> (
    mpsc::UnboundedSender<VipOwnership>,
    mpsc::UnboundedReceiver<VipOwnership>,
) {
    mpsc::unbounded_channel()
}

/// What the workers have been told about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OwnedState {
    owned: bool,
    /// The port whose twin holds it at run time, if any.
    kernel: Option<u16>,
}

/// What a worker assumes of an address nobody told it about.
const UNTOLD: OwnedState = OwnedState {
    owned: true,
    kernel: None,
};

/// Turns VRRP's reports into worker commands ([`Command::SetVipOwned`],
/// [`Command::SetKernelAddr`]) against the current configuration.
///
/// An address that a VRRP instance of the configuration lists is owned only while VRRP
/// last reported it Master (so it starts disowned: VRRP starts in Backup); any other
/// address is owned. A listed, owned address that is no service's VIP is also a
/// runtime kernel address of the port whose twin VRRP adds it to (e.g. the real
/// servers' gateway in LVS-NAT): the twin answers ARP for it. A service VIP is answered
/// by the worker itself. Reports and reloads may arrive in any order: the commands
/// always take the workers from what they were told to what the latest report and
/// configuration give.
#[derive(Debug, Default)]
pub struct OwnershipTracker {
    reported: HashMap<Ipv4Addr, bool>,
    applied: BTreeMap<Ipv4Addr, OwnedState>,
}

impl OwnershipTracker {
    /// A tracker that has told the workers nothing.
    pub fn new() -> OwnershipTracker {
        OwnershipTracker::default()
    }

    /// Records a report and returns the commands it calls for under `c`.
    pub fn report(&mut self, c: &Config, o: &VipOwnership) -> Vec<Command> {
        self.reported.insert(o.address, o.owned);
        self.commands(c)
    }

    /// The commands that bring the workers to what `c` and the reports so far give
    /// (at start and after every reload).
    pub fn commands(&mut self, c: &Config) -> Vec<Command> {
        let vips: std::collections::HashSet<Ipv4Addr> = desired_services(c)
            .keys()
            .map(|k| Ipv4Addr::from(k.0.vaddr))
            .collect();
        let mut listed: BTreeMap<Ipv4Addr, Option<u16>> = BTreeMap::new();
        for i in &c.vrrp.instance {
            for v in &i.virtual_ipaddress {
                let dev = i.vip_dev(v);
                let port = c
                    .interface
                    .iter()
                    .position(|x| x.name == dev)
                    .and_then(|p| u16::try_from(p).ok());
                listed.entry(v.address.ip()).or_insert(port);
            }
        }
        let mut addrs: Vec<Ipv4Addr> = listed.keys().copied().collect();
        addrs.extend(self.applied.keys().copied());
        addrs.sort_unstable();
        addrs.dedup();
        let mut out = Vec::new();
        for a in addrs {
            let want = match listed.get(&a) {
                None => UNTOLD,
                Some(port) => {
                    let owned = self.reported.get(&a).copied().unwrap_or(false);
                    OwnedState {
                        owned,
                        kernel: if owned && !vips.contains(&a) {
                            *port
                        } else {
                            None
                        },
                    }
                }
            };
            let had = self.applied.get(&a).copied().unwrap_or(UNTOLD);
            if want.kernel != had.kernel {
                if let Some(port) = had.kernel {
                    out.push(Command::SetKernelAddr {
                        port,
                        addr: a,
                        present: false,
                    });
                }
            }
            if want.owned != had.owned {
                out.push(Command::SetVipOwned {
                    vip: a,
                    owned: want.owned,
                });
            }
            if want.kernel != had.kernel {
                if let Some(port) = want.kernel {
                    out.push(Command::SetKernelAddr {
                        port,
                        addr: a,
                        present: true,
                    });
                }
            }
            if want == UNTOLD {
                self.applied.remove(&a);
            } else {
                self.applied.insert(a, want);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// The programmed table, shared with the view and the metrics.

/// One command per worker: the same command, except that `AddService` and `AddServer`
/// carry counters of their own for every worker after the first (the counters are
/// single-writer atomics: each worker writes its own, readers sum them).
pub fn fan_out(cmd: &Command, workers: usize) -> Vec<Command> {
    (0..workers.max(1))
        .map(|i| match cmd {
            Command::AddService(k, c, s) => Command::AddService(
                *k,
                c.clone(),
                if i == 0 {
                    Arc::clone(s)
                } else {
                    Arc::default()
                },
            ),
            Command::AddServer(k, r, s) => Command::AddServer(
                *k,
                *r,
                if i == 0 {
                    Arc::clone(s)
                } else {
                    Arc::default()
                },
            ),
            other => other.clone(),
        })
        .collect()
}

/// The per-worker counters a fanned-out `AddService`/`AddServer` carries.
fn stats_of(cmds: &[Command]) -> Vec<Arc<Stats>> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::AddService(_, _, s) | Command::AddServer(_, _, s) => Some(Arc::clone(s)),
            _ => None,
        })
        .collect()
}

#[derive(Debug)]
struct ProgrammedServer {
    cfg: RealServerConfig,
    /// One per worker.
    stats: Vec<Arc<Stats>>,
    /// The counters at the last `ipvsadm -Z` (subtracted in the views).
    zero: Counters,
    available: bool,
}

#[derive(Debug)]
struct ProgrammedService {
    name: String,
    cfg: ServiceConfig,
    /// One per worker.
    stats: Vec<Arc<Stats>>,
    /// The counters at the last `ipvsadm -Z`.
    zero: Counters,
    servers: BTreeMap<(Ipv4Addr, u16), ProgrammedServer>,
}

/// What the workers have been told, with the counters they share.
#[derive(Debug, Default)]
struct Table {
    services: BTreeMap<Key, ProgrammedService>,
}

impl Table {
    /// Records a command the workers have accepted into their queues (`cmds`: the
    /// command as each worker got it, see [`fan_out`]).
    fn record(&mut self, cmds: &[Command], names: &BTreeMap<Key, DesiredService>) {
        let Some(cmd) = cmds.first() else {
            return;
        };
        match cmd {
            Command::AddService(k, cfg, _) => {
                let name = names
                    .get(&Key(*k))
                    .map(|d| d.name.clone())
                    .unwrap_or_default();
                self.services.insert(
                    Key(*k),
                    ProgrammedService {
                        name,
                        cfg: cfg.clone(),
                        stats: stats_of(cmds),
                        zero: Counters::default(),
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
            Command::AddServer(k, rs, _) => {
                if let Some(s) = self.services.get_mut(&Key(*k)) {
                    s.servers.insert(
                        (rs.addr, rs.port),
                        ProgrammedServer {
                            cfg: *rs,
                            stats: stats_of(cmds),
                            zero: Counters::default(),
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
            // VRRP ownership is not part of the service table the views show.
            Command::SetVipOwned { .. } | Command::SetKernelAddr { .. } => {}
        }
    }

    /// `ipvsadm -Z`: the views count from now on (the metrics stay monotonic).
    fn zero(&mut self, only: Option<ServiceKey>) {
        for (k, s) in self.services.iter_mut() {
            if only.is_some_and(|o| o != k.0) {
                continue;
            }
            s.zero = raw_counters(&s.stats);
            for rs in s.servers.values_mut() {
                rs.zero = raw_counters(&rs.stats);
            }
        }
    }
}

/// The counters of every worker, summed.
fn raw_counters(stats: &[Arc<Stats>]) -> Counters {
    let mut c = Counters::default();
    for s in stats {
        c.conns += s.conns.get();
        c.in_packets += s.pkts_in.get();
        c.out_packets += s.pkts_out.get();
        c.in_bytes += s.bytes_in.get();
        c.out_bytes += s.bytes_out.get();
    }
    c
}

/// [`raw_counters`] minus the `ipvsadm -Z` baseline.
fn counters_of(stats: &[Arc<Stats>], zero: &Counters) -> Counters {
    let c = raw_counters(stats);
    Counters {
        conns: c.conns.saturating_sub(zero.conns),
        in_packets: c.in_packets.saturating_sub(zero.in_packets),
        out_packets: c.out_packets.saturating_sub(zero.out_packets),
        in_bytes: c.in_bytes.saturating_sub(zero.in_bytes),
        out_bytes: c.out_bytes.saturating_sub(zero.out_bytes),
    }
}

/// Active and inactive connections of every worker, summed.
fn conn_gauges(stats: &[Arc<Stats>]) -> (u64, u64) {
    stats.iter().fold((0, 0), |(a, i), s| {
        (a + s.active.get(), i + s.inactive.get())
    })
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
            let sc = counters_of(&s.stats, &s.zero);
            let real_servers = s
                .servers
                .iter()
                .map(|(id, rs)| {
                    let c = counters_of(&rs.stats, &rs.zero);
                    let (active, inactive) = conn_gauges(&rs.stats);
                    RealServerRow {
                        address: IpAddr::V4(id.0),
                        port: id.1,
                        forward: forward_word(rs.cfg.forward).into(),
                        weight: if rs.available { rs.cfg.weight } else { 0 },
                        active_conns: active,
                        inactive_conns: inactive,
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
        m.insert((k.0, None), counters_of(&s.stats, &s.zero));
        for (id, rs) in &s.servers {
            m.insert((k.0, Some(*id)), counters_of(&rs.stats, &rs.zero));
        }
    }
    m
}

// ---------------------------------------------------------------------------------------
// Metrics.

/// Connections created by each of `workers` workers: their per-worker service counters
/// summed over the services of the table.
fn worker_connections(t: &Table, workers: usize) -> Vec<u64> {
    let mut out = vec![0; workers];
    for s in t.services.values() {
        for (o, st) in out.iter_mut().zip(&s.stats) {
            *o += st.conns.get();
        }
    }
    out
}

/// The Prometheus collector of the dataplane: reads the shared atomics at scrape time.
struct DpCollector {
    table: Arc<Mutex<Table>>,
    ports: Vec<String>,
    /// Per worker.
    backend: Vec<Arc<BackendCounters>>,
    /// Per worker.
    worker: Vec<Arc<WorkerCounters>>,
    /// Per worker (empty with one worker).
    handover: Vec<Arc<HandoverCounters>>,
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
    (
        "fulcrum_dataplane_worker_rx_packets_total",
        "Frames a forwarding worker received from its queues.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_tx_packets_total",
        "Frames a forwarding worker transmitted on its queues.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_rounds_total",
        "Poll rounds of a forwarding worker.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_idle_rounds_total",
        "Poll rounds of a forwarding worker that received nothing.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_connections_total",
        "Connections a forwarding worker created (all services).",
        true,
    ),
    (
        "fulcrum_dataplane_worker_handover_sent_total",
        "Frames a worker handed to the worker owning their connection.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_handover_received_total",
        "Frames handed to a worker by the others.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_handover_ring_full_total",
        "Hand-overs dropped on a full ring.",
        true,
    ),
    (
        "fulcrum_dataplane_worker_handover_owner_mismatch_total",
        "Handed-over frames the receiving worker would hand over again (dropped).",
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
        backend: Vec<Arc<BackendCounters>>,
        worker: Vec<Arc<WorkerCounters>>,
        handover: Vec<Arc<HandoverCounters>>,
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
            } else if name.starts_with("fulcrum_dataplane_worker") {
                &["worker"]
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
            handover,
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
                let c = raw_counters(&s.stats);
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
                    let c = raw_counters(&rs.stats);
                    let (active, inactive) = conn_gauges(&rs.stats);
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
                        metric(&l, active as f64, false),
                    );
                    put(
                        "fulcrum_ipvs_backend_connections_inactive",
                        metric(&l, inactive as f64, false),
                    );
                    let w = if rs.available { rs.cfg.weight } else { 0 };
                    put(
                        "fulcrum_ipvs_backend_weight",
                        metric(&l, f64::from(w), false),
                    );
                }
            }
        }
        let port_sum = |i: usize, f: fn(&dataplane::dpdk::PortCounters) -> u64| -> u64 {
            self.backend
                .iter()
                .filter_map(|b| b.ports.get(i))
                .map(f)
                .sum()
        };
        for (i, name) in self.ports.iter().enumerate() {
            let l = [("port", name.as_str())];
            for (fam, v) in [
                (
                    "fulcrum_dataplane_port_rx_packets_total",
                    port_sum(i, |p| p.rx_packets.get()),
                ),
                (
                    "fulcrum_dataplane_port_rx_bytes_total",
                    port_sum(i, |p| p.rx_bytes.get()),
                ),
                (
                    "fulcrum_dataplane_port_tx_packets_total",
                    port_sum(i, |p| p.tx_packets.get()),
                ),
                (
                    "fulcrum_dataplane_port_tx_bytes_total",
                    port_sum(i, |p| p.tx_bytes.get()),
                ),
                (
                    "fulcrum_dataplane_port_imissed_total",
                    port_sum(i, |p| p.imissed.get()),
                ),
                (
                    "fulcrum_dataplane_port_rx_nombuf_total",
                    port_sum(i, |p| p.rx_nombuf.get()),
                ),
                (
                    "fulcrum_dataplane_port_tx_full_drops_total",
                    port_sum(i, |p| p.tx_full.get()),
                ),
                (
                    "fulcrum_dataplane_port_twin_rx_packets_total",
                    port_sum(i, |p| p.twin_rx.get()),
                ),
                (
                    "fulcrum_dataplane_port_twin_tx_packets_total",
                    port_sum(i, |p| p.twin_tx.get()),
                ),
                (
                    "fulcrum_dataplane_port_twin_drops_total",
                    port_sum(i, |p| p.twin_drops.get()),
                ),
            ] {
                put(fam, metric(&l, v as f64, true));
            }
        }
        for r in DropReason::ALL {
            let n: u64 = self.worker.iter().map(|w| w.drop_count(*r)).sum();
            put(
                "fulcrum_dataplane_drops_total",
                metric(&[("reason", r.name())], n as f64, true),
            );
        }
        let forwarded: u64 = self.worker.iter().map(|w| w.forwarded.get()).sum();
        let punted: u64 = self.worker.iter().map(|w| w.punted.get()).sum();
        put(
            "fulcrum_dataplane_forwarded_packets_total",
            metric(&[], forwarded as f64, true),
        );
        put(
            "fulcrum_dataplane_punted_packets_total",
            metric(&[], punted as f64, true),
        );
        let conns = self
            .table
            .lock()
            .map(|t| worker_connections(&t, self.backend.len()))
            .unwrap_or_default();
        for (w, b) in self.backend.iter().enumerate() {
            let id = w.to_string();
            let l = [("worker", id.as_str())];
            let rx: u64 = b.ports.iter().map(|p| p.rx_packets.get()).sum();
            let tx: u64 = b.ports.iter().map(|p| p.tx_packets.get()).sum();
            let mut rows = vec![
                ("fulcrum_dataplane_worker_rx_packets_total", rx),
                ("fulcrum_dataplane_worker_tx_packets_total", tx),
                (
                    "fulcrum_dataplane_worker_rounds_total",
                    b.lcore.rounds.get(),
                ),
                (
                    "fulcrum_dataplane_worker_idle_rounds_total",
                    b.lcore.idle_rounds.get(),
                ),
                (
                    "fulcrum_dataplane_worker_connections_total",
                    conns.get(w).copied().unwrap_or(0),
                ),
            ];
            if let Some(h) = self.handover.get(w) {
                rows.extend([
                    ("fulcrum_dataplane_worker_handover_sent_total", h.sent.get()),
                    (
                        "fulcrum_dataplane_worker_handover_received_total",
                        h.received.get(),
                    ),
                    (
                        "fulcrum_dataplane_worker_handover_ring_full_total",
                        h.ring_full.get(),
                    ),
                    (
                        "fulcrum_dataplane_worker_handover_owner_mismatch_total",
                        h.owner_mismatch.get(),
                    ),
                ]);
            }
            for (fam, v) in rows {
                put(fam, metric(&l, v as f64, true));
            }
        }
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

/// What the EAL thread hands back once the loops run (one entry per worker).
struct Ready {
    backend: Vec<Arc<BackendCounters>>,
    worker: Vec<Arc<WorkerCounters>>,
    handover: Vec<Arc<HandoverCounters>>,
}

/// The control queues of every forwarding worker: service commands, timeouts,
/// verdicts and neighbors go to all of them (each worker has its own service table),
/// snapshot requests to each.
#[derive(Debug)]
pub struct Controls(Vec<ControlTx>);

impl Controls {
    /// Number of workers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no worker (never, once started).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `n` control queues: the senders (the fan-out handle) and the receivers, one per
/// worker.
pub fn control_queues(n: usize) -> (Controls, Vec<ControlRx>) {
    let (tx, rx): (Vec<ControlTx>, Vec<ControlRx>) =
        (0..n.max(1)).map(|_| control_queue(CONTROL_QUEUE)).unzip();
    (Controls(tx), rx)
}

/// How the forwarding loops run on the EAL thread.
enum Loops {
    One(dataplane::dpdk::Running),
    Set(dataplane::dpdk::RunningSet),
}

/// The first `n` worker lcores of `available` (EAL's worker lcores, ascending: the
/// `-l`/`--lcores` list without the main lcore), or the configuration error.
pub fn pick_lcores(available: &[u32], n: usize) -> Result<Vec<u32>, DataplaneError> {
    if available.len() < n {
        return Err(cfg_err(
            "dataplane.workers",
            format!(
                "{n} workers need {n} worker lcores besides the main one, but dataplane.eal \
                 gives {} (give -l/--lcores at least {} lcores)",
                available.len(),
                n + 1
            ),
        ));
    }
    Ok(available.iter().take(n).copied().collect())
}

/// The DPDK backend running on its own threads, and its control queues.
pub struct Dataplane {
    ctl: Controls,
    fib: Arc<FibHandle>,
    backend: Vec<Arc<BackendCounters>>,
    worker: Vec<Arc<WorkerCounters>>,
    handover: Vec<Arc<HandoverCounters>>,
    twins: Vec<(String, Vec<ipnetwork::Ipv4Network>)>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    loop_stop: Option<StopHandle>,
    verdicts: Option<mpsc::UnboundedReceiver<ServerVerdict>>,
    learned: Option<tokio::sync::watch::Receiver<LearnedRoutes>>,
    ownership: Option<mpsc::UnboundedReceiver<VipOwnership>>,
    timeouts: Timeouts,
    conns_limit: usize,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("twins", &self.twins)
            .field("workers", &self.ctl.len())
            .finish_non_exhaustive()
    }
}

/// The global timeouts of a configuration.
fn config_timeouts(c: &Config) -> Timeouts {
    let mut t = Timeouts::dpvs();
    t.set(c.timeouts.tcp, c.timeouts.tcpfin, c.timeouts.udp);
    t
}

impl Dataplane {
    /// Starts EAL, the ports (one queue pair per worker), their twins and the forwarding
    /// loops (on the first `workers` worker lcores of the EAL arguments), and waits until
    /// the loops run. Blocking: call it before the subsystems start.
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
        let timeouts = config_timeouts(c);
        let n = usize::try_from(c.dataplane.workers).unwrap_or(1).max(1);
        let n16 = u16::try_from(n).map_err(|_| cfg_err("dataplane.workers", "too many workers"))?;
        let (ctl, ctl_rx) = control_queues(n);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let wfib = Arc::clone(&fib);
        let thread = std::thread::Builder::new()
            .name("fulcrum-eal".into())
            .spawn(move || {
                let started = if n == 1 {
                    Backend::new(&bcfg)
                } else {
                    Backend::with_queues(&bcfg, n16)
                };
                let backend = match started {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let available = backend.eal().worker_lcores();
                if available.is_empty() {
                    let _ = ready_tx.send(Err(
                        "no worker lcore: give [dataplane].eal at least two lcores \
                         (e.g. \"-l\", \"0-1\")"
                            .into(),
                    ));
                    return;
                }
                let lcores = match pick_lcores(&available, n) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let ports: Vec<PortConfig> = backend
                    .port_macs()
                    .into_iter()
                    .zip(port_addrs)
                    .map(|(mac, addrs)| PortConfig {
                        mac,
                        addrs,
                        mtu: 1500,
                    })
                    .collect();
                // One secret per run, shared by the workers: the connection hash's
                // multiplier and the SYN-cookie secret derive from it, so it must not be
                // guessable; the local-address pools start from it too.
                let seed = random_seed();
                let workers: Vec<Worker> = (0..n16)
                    .map(|id| {
                        let wcfg = WorkerConfig {
                            id,
                            workers: n16,
                            ports: ports.clone(),
                            conn_capacity: CONN_CAPACITY,
                            seed,
                            timeouts,
                            neigh_capacity: 4096,
                        };
                        let mut w = Worker::new(wcfg, Arc::clone(&wfib));
                        w.set_laddr_seed(seed.rotate_left(17) | 1);
                        w
                    })
                    .collect();
                let worker_counters = workers.iter().map(|w| Arc::clone(w.counters())).collect();
                let stop = backend.stop_handle();
                let (loops, ready) = if n == 1 {
                    let backend_counters = vec![backend.counters()];
                    let (Some(worker), Some(rx), Some(&lcore)) = (
                        workers.into_iter().next(),
                        ctl_rx.into_iter().next(),
                        lcores.first(),
                    ) else {
                        let _ = ready_tx.send(Err("no worker".into()));
                        return;
                    };
                    match backend.launch(worker, rx, lcore) {
                        Ok(r) => (
                            Loops::One(r),
                            Ready {
                                backend: backend_counters,
                                worker: worker_counters,
                                handover: Vec::new(),
                            },
                        ),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    }
                } else {
                    match backend.launch_workers(workers, ctl_rx, &lcores) {
                        Ok(set) => {
                            let ready = Ready {
                                backend: set.counters(),
                                worker: worker_counters,
                                handover: set.handover_counters(),
                            };
                            (Loops::Set(set), ready)
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    }
                };
                tracing::info!("dataplane: {n} forwarding worker(s) on lcores {lcores:?}");
                let port_counters = ready.backend.first().cloned();
                let _ = ready_tx.send(Ok((ready, stop)));
                // Until the subsystem stops (or is dropped). A worker set's ports are
                // split into queues: their statistics (imissed, rx_nombuf) are read here
                // into worker 0's port counters, which its loop leaves alone.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stop_rx.recv_timeout(Duration::from_secs(1))
                {
                    if let (Loops::Set(set), Some(pc)) = (&loops, &port_counters) {
                        for (p, st) in pc.ports.iter().zip(set.port_stats()) {
                            if let Ok(st) = st {
                                p.imissed.set(st.imissed);
                                p.rx_nombuf.set(st.rx_nombuf);
                            }
                        }
                    }
                }
                let stopped = match loops {
                    Loops::One(r) => r.stop().map(|_| ()),
                    Loops::Set(set) => set.stop().map(|_| ()),
                };
                match stopped {
                    Ok(()) => tracing::info!("dataplane: forwarding loops stopped"),
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
            handover: ready.handover,
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
            ownership: None,
            timeouts,
            conns_limit: usize::try_from(c.dataplane.conns_limit).unwrap_or(usize::MAX),
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

    /// Follows VRRP's ownership of virtual addresses reported on `rx` (see
    /// [`ownership_channel`] and [`OwnershipTracker`]): every address a VRRP instance
    /// lists starts disowned, before the services are programmed.
    pub fn with_vrrp(mut self, rx: mpsc::UnboundedReceiver<VipOwnership>) -> Self {
        self.ownership = Some(rx);
        self
    }

    /// The per-port and loop counters of each worker's loop.
    pub fn backend_counters(&self) -> &[Arc<BackendCounters>] {
        &self.backend
    }

    /// The hand-over counters of each worker (empty with one worker).
    pub fn handover_counters(&self) -> &[Arc<HandoverCounters>] {
        &self.handover
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

/// Sends `msg` into one worker's queue, waiting for room up to [`CONTROL_WAIT`].
async fn send_msg(ctl: &ControlTx, msg: Control) -> Result<(), DataplaneError> {
    let deadline = Instant::now() + CONTROL_WAIT;
    let mut msg = msg;
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

/// Sends `cmds` (one per worker, from [`fan_out`]) to the workers.
async fn send_all(ctl: &Controls, cmds: &[Command]) -> Result<(), DataplaneError> {
    for (tx, cmd) in ctl.0.iter().zip(cmds) {
        send_msg(tx, Control::Command(Box::new(cmd.clone()))).await?;
    }
    Ok(())
}

/// Sends ownership commands ([`OwnershipTracker`]) to every worker.
async fn send_ownership(ctl: &Controls, cmds: Vec<Command>) -> Result<(), DataplaneError> {
    for cmd in cmds {
        send_all(ctl, &fan_out(&cmd, ctl.len())).await?;
    }
    Ok(())
}

/// Sends new global timeouts to every worker.
async fn send_timeouts(ctl: &Controls, t: Timeouts) -> Result<(), DataplaneError> {
    for tx in &ctl.0 {
        send_msg(tx, Control::Timeouts(Box::new(t))).await?;
    }
    Ok(())
}

/// How long the workers may take to answer a snapshot request.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);

/// Asks every worker for at most `limit` connections and waits for the answers.
async fn snapshots(ctl: &Controls, limit: usize) -> Result<Vec<ConnSnapshot>, DataplaneError> {
    let mut answers = Vec::with_capacity(ctl.len());
    for tx in &ctl.0 {
        let (req, rx) = SnapshotRequest::new(limit);
        send_msg(tx, Control::Snapshot(req)).await?;
        answers.push(rx);
    }
    let deadline = Instant::now() + SNAPSHOT_WAIT;
    let mut out = Vec::with_capacity(answers.len());
    for rx in answers {
        loop {
            match rx.try_recv() {
                Ok(s) => {
                    out.push(s);
                    break;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(_) => return Err(DataplaneError::QueueStuck),
            }
        }
    }
    Ok(out)
}

/// The `conns` view of the workers' snapshots: their rows in worker order, at most
/// `limit` in all, expiry in whole seconds left (rounded up, as ipvsadm shows it).
pub fn conns_view(snaps: &[ConnSnapshot], limit: usize) -> ConnsView {
    let mut conns = Vec::new();
    let mut truncated = false;
    let mut total = 0u64;
    for snap in snaps {
        truncated |= snap.truncated;
        total += snap.total as u64;
        for r in &snap.rows {
            if conns.len() >= limit {
                truncated = true;
                break;
            }
            let protocol = match r.proto {
                PROTO_TCP => "tcp",
                PROTO_UDP => "udp",
                1 => "icmp",
                _ => "ip",
            };
            let state = match r.proto {
                PROTO_TCP => r.state.name(),
                PROTO_UDP => "UDP",
                1 => "ICMP",
                _ => "NONE",
            };
            let secs = r.expires.as_secs() + u64::from(r.expires.subsec_nanos() > 0);
            conns.push(ConnRow {
                protocol: protocol.into(),
                expires_seconds: secs,
                state: state.into(),
                client: r.client.to_string(),
                virtual_address: r.vip.to_string(),
                local: r.local.map(|l| l.to_string()),
                real_server: r.server.to_string(),
                worker: u32::from(snap.worker),
            });
        }
    }
    ConnsView {
        conns,
        truncated,
        total,
    }
}

/// What a runtime `ipvsadm` command does to the desired table.
const RUNTIME_NOTE: &str =
    "runtime change: lost on the next reload unless it is in the configuration";

/// The programming state of the subsystem.
struct Programmer {
    desired: BTreeMap<Key, DesiredService>,
    health: HashMap<(String, SocketAddr), Verdict>,
    table: Arc<Mutex<Table>>,
    /// The global timeouts the workers run with.
    timeouts: Timeouts,
}

impl Programmer {
    /// Sends the commands from the current table to `c`'s, then the known-down servers.
    async fn apply(&mut self, ctl: &Controls, c: &Config) -> Result<usize, DataplaneError> {
        let new = with_health(desired_services(c), &self.health);
        let alpha = starts_down(c);
        self.program(ctl, new, &alpha).await
    }

    /// Sends the commands from the current table to `new`; servers (re)added while
    /// health says they are down start down, and so do servers in `alpha` without a
    /// verdict yet.
    async fn program(
        &mut self,
        ctl: &Controls,
        new: BTreeMap<Key, DesiredService>,
        alpha: &std::collections::HashSet<(String, SocketAddr)>,
    ) -> Result<usize, DataplaneError> {
        let cmds = diff(&self.desired, &new);
        let n = cmds.len();
        let mut added: Vec<(ServiceKey, Ipv4Addr, u16)> = Vec::new();
        for cmd in cmds {
            if let Command::AddServer(k, rs, _) = &cmd {
                added.push((*k, rs.addr, rs.port));
            }
            let each = fan_out(&cmd, ctl.len());
            if let Ok(mut t) = self.table.lock() {
                t.record(&each, &new);
            }
            send_all(ctl, &each).await?;
        }
        for (k, a, p) in added {
            let Some(name) = new.get(&Key(k)).map(|d| d.name.clone()) else {
                continue;
            };
            let id = (name, SocketAddr::new(IpAddr::V4(a), p));
            let up = match self.health.get(&id) {
                Some(v) => v.up,
                None => !alpha.contains(&id),
            };
            if !up {
                let each = fan_out(&Command::SetAvailable(k, a, p, false), ctl.len());
                if let Ok(mut t) = self.table.lock() {
                    t.record(&each, &new);
                }
                send_all(ctl, &each).await?;
            }
        }
        self.desired = new;
        Ok(n)
    }

    /// Applies one health verdict.
    async fn verdict(&mut self, ctl: &Controls, v: ServerVerdict) -> Result<(), DataplaneError> {
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
            let each = fan_out(&cmd, ctl.len());
            if let Ok(mut t) = self.table.lock() {
                t.record(&each, &self.desired);
            }
            send_all(ctl, &each).await?;
        }
        Ok(())
    }

    /// Sends `t` to the workers when it differs from what they run with.
    async fn set_timeouts(&mut self, ctl: &Controls, t: Timeouts) -> Result<bool, DataplaneError> {
        if t == self.timeouts {
            return Ok(false);
        }
        send_timeouts(ctl, t).await?;
        self.timeouts = t;
        Ok(true)
    }

    /// Carries out a runtime `ipvsadm` command: the answer for the CLI, or the error
    /// that stops the subsystem (a stuck queue).
    async fn ipvsadm(
        &mut self,
        ctl: &Controls,
        op: IpvsadmOp,
    ) -> Result<Result<String, ErrorBody>, DataplaneError> {
        let bad = |m: String| Ok(Err(ErrorBody::new("bad_request", m)));
        let mut new = self.desired.clone();
        let what = match op {
            IpvsadmOp::SetTimeouts(tcp, tcpfin, udp) => {
                let mut t = self.timeouts;
                t.set(tcp, tcpfin, udp);
                self.set_timeouts(ctl, t).await?;
                return Ok(Ok(format!(
                    "timeouts set: tcp {}s tcpfin {}s udp {}s ({RUNTIME_NOTE})",
                    t.tcp(dataplane::conn::TcpState::Established).as_secs(),
                    t.tcp(dataplane::conn::TcpState::FinWait).as_secs(),
                    t.udp.as_secs()
                )));
            }
            IpvsadmOp::Zero(only) => {
                if let Some(k) = only {
                    if !new.contains_key(&Key(k)) {
                        return bad(format!("no such service {}", key_text(&k)));
                    }
                }
                if let Ok(mut t) = self.table.lock() {
                    t.zero(only);
                }
                return Ok(Ok(match only {
                    Some(k) => format!("counters of {} zeroed", key_text(&k)),
                    None => "counters zeroed".into(),
                }));
            }
            IpvsadmOp::Clear => {
                new.clear();
                "all services deleted".to_string()
            }
            IpvsadmOp::AddService(k, opts) => {
                if new.contains_key(&Key(k)) {
                    return bad(format!("service {} exists", key_text(&k)));
                }
                let config = ServiceConfig {
                    scheduler: opts.scheduler.unwrap_or(SchedKind::Wlc),
                    persistence: opts.persistence,
                    ..ServiceConfig::default()
                };
                new.insert(
                    Key(k),
                    DesiredService {
                        name: key_text(&k),
                        config,
                        servers: BTreeMap::new(),
                    },
                );
                format!("service {} added", key_text(&k))
            }
            IpvsadmOp::EditService(k, opts) => {
                let Some(d) = new.get_mut(&Key(k)) else {
                    return bad(format!("no such service {}", key_text(&k)));
                };
                if let Some(s) = opts.scheduler {
                    d.config.scheduler = s;
                }
                if let Some(p) = opts.persistence {
                    d.config.persistence = Some(p);
                }
                format!("service {} edited", key_text(&k))
            }
            IpvsadmOp::DeleteService(k) => {
                if new.remove(&Key(k)).is_none() {
                    return bad(format!("no such service {}", key_text(&k)));
                }
                format!("service {} deleted", key_text(&k))
            }
            IpvsadmOp::AddServer(k, rs) => {
                let Some(d) = new.get_mut(&Key(k)) else {
                    return bad(format!("no such service {}", key_text(&k)));
                };
                if d.servers.contains_key(&(rs.addr, rs.port)) {
                    return bad(format!("real server {}:{} exists", rs.addr, rs.port));
                }
                d.servers.insert((rs.addr, rs.port), rs);
                format!(
                    "real server {}:{} added to {}",
                    rs.addr,
                    rs.port,
                    key_text(&k)
                )
            }
            IpvsadmOp::EditServer(k, addr, port, weight, fwd) => {
                let Some(rs) = new
                    .get_mut(&Key(k))
                    .and_then(|d| d.servers.get_mut(&(addr, port)))
                else {
                    return bad(format!("no real server {addr}:{port} in {}", key_text(&k)));
                };
                if let Some(w) = weight {
                    rs.weight = w;
                }
                if let Some(f) = fwd {
                    rs.forward = f;
                }
                format!("real server {addr}:{port} of {} edited", key_text(&k))
            }
            IpvsadmOp::DeleteServer(k, addr, port) => {
                let Some(d) = new.get_mut(&Key(k)) else {
                    return bad(format!("no such service {}", key_text(&k)));
                };
                if d.servers.remove(&(addr, port)).is_none() {
                    return bad(format!("no real server {addr}:{port} in {}", key_text(&k)));
                }
                format!("real server {addr}:{port} deleted from {}", key_text(&k))
            }
        };
        let n = self
            .program(ctl, new, &std::collections::HashSet::new())
            .await?;
        Ok(Ok(format!(
            "{what} ({n} command(s) sent to {} worker(s); {RUNTIME_NOTE})",
            ctl.len()
        )))
    }
}

/// `TCP 10.0.0.100:80` for messages (also the name of a service added by ipvsadm).
fn key_text(k: &ServiceKey) -> String {
    let proto = if k.proto == PROTO_UDP { "UDP" } else { "TCP" };
    format!("{proto} {}:{}", Ipv4Addr::from(k.vaddr), k.vport)
}

// ---------------------------------------------------------------------------------------
// Runtime ipvsadm commands.

/// Service options of `ipvsadm -A` / `-E`: only what the command line gives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceOpts {
    /// `-s`.
    pub scheduler: Option<SchedKind>,
    /// `-p [timeout]` with `-M netmask`.
    pub persistence: Option<Persistence>,
}

/// An `ipvsadm` command the DPDK dataplane carries out at runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsadmOp {
    /// `-A -t|-u VIP:PORT [-s sched] [-p [timeout]] [-M netmask]` (scheduler wlc
    /// when not given, as ipvsadm).
    AddService(ServiceKey, ServiceOpts),
    /// `-E`: changes the scheduler and persistence given, keeps the rest.
    EditService(ServiceKey, ServiceOpts),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-a -r RS[:PORT] [-w weight] [-g|-m|-i|-b|--fullnat]` (weight 1, `-g` when not
    /// given, as ipvsadm; the port defaults to the service's).
    AddServer(ServiceKey, RealServerConfig),
    /// `-e -r RS[:PORT]`: the weight and forwarding method given.
    EditServer(ServiceKey, Ipv4Addr, u16, Option<u32>, Option<Forward>),
    /// `-d -r RS[:PORT]`.
    DeleteServer(ServiceKey, Ipv4Addr, u16),
    /// `-Z [-t|-u VIP:PORT]`.
    Zero(Option<ServiceKey>),
    /// `--set tcp tcpfin udp` (seconds; 0 keeps a value).
    SetTimeouts(Duration, Duration, Duration),
    /// `-C`.
    Clear,
}

fn parse_endpoint(v: &str, default_port: Option<u16>) -> Result<(Ipv4Addr, u16), String> {
    if let Ok(sa) = v.parse::<std::net::SocketAddrV4>() {
        return Ok((*sa.ip(), sa.port()));
    }
    match (v.parse::<Ipv4Addr>(), default_port) {
        (Ok(a), Some(p)) => Ok((a, p)),
        (Ok(_), None) => Err(format!("{v}: a port is needed (ADDRESS:PORT)")),
        (Err(_), _) if v.contains(':') && v.matches(':').count() > 1 => {
            Err(format!("{v}: IPv6 is not supported by the DPDK dataplane"))
        }
        (Err(_), _) => Err(format!("{v}: not an IPv4 address[:port]")),
    }
}

/// Parses a runtime `ipvsadm` command line (the arguments after `ipvsadm`). Listing
/// commands are answered by `services` and `conns`; other ipvsadm commands (`-R`,
/// `-S`, fwmark services, daemons) are refused with the reason.
pub fn parse_ipvsadm(args: &[String]) -> Result<IpvsadmOp, String> {
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Cmd {
        A,
        E,
        D,
        C,
        Z,
        Set,
        AddRs,
        EditRs,
        DelRs,
    }
    let mut cmd: Option<Cmd> = None;
    let mut service: Option<(u8, String)> = None;
    let mut scheduler = None;
    let mut persistent: Option<Option<String>> = None;
    let mut netmask: Option<String> = None;
    let mut server: Option<String> = None;
    let mut weight: Option<String> = None;
    let mut forward: Option<Forward> = None;
    let mut set_values: Vec<String> = Vec::new();
    let mut i = 0;
    let set_cmd = |c: Cmd, cmd: &mut Option<Cmd>| -> Result<(), String> {
        match cmd {
            Some(old) if *old != c => Err("more than one command given".to_string()),
            _ => {
                *cmd = Some(c);
                Ok(())
            }
        }
    };
    while let Some(a) = args.get(i) {
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("{what} needs a value"))?;
            i += 1;
            Ok(v)
        };
        match name.as_str() {
            "-A" | "--add-service" => set_cmd(Cmd::A, &mut cmd)?,
            "-E" | "--edit-service" => set_cmd(Cmd::E, &mut cmd)?,
            "-D" | "--delete-service" => set_cmd(Cmd::D, &mut cmd)?,
            "-C" | "--clear" => set_cmd(Cmd::C, &mut cmd)?,
            "-Z" | "--zero" => set_cmd(Cmd::Z, &mut cmd)?,
            "-a" | "--add-server" => set_cmd(Cmd::AddRs, &mut cmd)?,
            "-e" | "--edit-server" => set_cmd(Cmd::EditRs, &mut cmd)?,
            "-d" | "--delete-server" => set_cmd(Cmd::DelRs, &mut cmd)?,
            "--set" => {
                set_cmd(Cmd::Set, &mut cmd)?;
                for _ in 0..3 {
                    let v = args
                        .get(i)
                        .cloned()
                        .ok_or("--set needs three values: tcp tcpfin udp")?;
                    i += 1;
                    set_values.push(v);
                }
            }
            "-t" | "--tcp-service" => service = Some((PROTO_TCP, value("-t")?)),
            "-u" | "--udp-service" => service = Some((PROTO_UDP, value("-u")?)),
            "-f" | "--fwmark-service" | "--sctp-service" => {
                return Err(format!(
                    "{name}: only TCP and UDP services are supported by the DPDK dataplane"
                ))
            }
            "-s" | "--scheduler" => {
                let v = value("-s")?;
                scheduler = Some(SchedKind::from_name(&v).map_err(|e| format!("-s {v}: {e}"))?);
            }
            "-p" | "--persistent" => {
                // The timeout is optional: the next word when it is a number.
                let v = match inline.clone() {
                    Some(v) => Some(v),
                    None => match args.get(i) {
                        Some(n) if n.parse::<u64>().is_ok() => {
                            i += 1;
                            Some(n.clone())
                        }
                        _ => None,
                    },
                };
                persistent = Some(v);
            }
            "-M" | "--netmask" => netmask = Some(value("-M")?),
            "-r" | "--real-server" => server = Some(value("-r")?),
            "-w" | "--weight" => weight = Some(value("-w")?),
            "-g" | "--gatewaying" => forward = Some(Forward::Dr),
            "-m" | "--masquerading" => forward = Some(Forward::Nat),
            "-i" | "--ipip" => forward = Some(Forward::Tun),
            "-b" | "--fullnat" => forward = Some(Forward::FullNat),
            "-n" | "--numeric" => {}
            "-L" | "-l" | "--list" | "-Ln" | "-Lnc" | "-Lc" => {
                return Err("listing: use `fulcrum services` or `fulcrum conns`".into())
            }
            other => return Err(format!("{other}: not supported by the DPDK dataplane")),
        }
    }
    let cmd = cmd.ok_or("no command (-A -E -D -a -e -d -Z -C --set)")?;
    let key = match &service {
        Some((proto, v)) => {
            let (a, p) = parse_endpoint(v, None)?;
            Some(ServiceKey::new(*proto, a, p))
        }
        None => None,
    };
    let need_key = || key.ok_or_else(|| "a service is needed (-t or -u ADDRESS:PORT)".to_string());
    let persistence = match persistent {
        None => None,
        Some(t) => {
            let secs = match t {
                Some(t) => t
                    .parse::<u64>()
                    .map_err(|_| format!("-p {t}: not a number of seconds"))?,
                None => 300,
            };
            let netmask = match &netmask {
                None => 32,
                Some(m) => {
                    let m: Ipv4Addr = m.parse().map_err(|_| format!("-M {m}: not a netmask"))?;
                    let bits = u32::from(m);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(format!("-M {m}: not a contiguous netmask"));
                    }
                    bits.leading_ones() as u8
                }
            };
            Some(Persistence {
                timeout: Duration::from_secs(secs),
                netmask,
            })
        }
    };
    let weight = match weight {
        None => None,
        Some(w) => Some(
            w.parse::<u32>()
                .ok()
                .filter(|w| *w <= 65535)
                .ok_or_else(|| format!("-w {w}: not a weight (0..65535)"))?,
        ),
    };
    let server = |k: &ServiceKey| -> Result<(Ipv4Addr, u16), String> {
        let v = server
            .as_deref()
            .ok_or("a real server is needed (-r ADDRESS[:PORT])")?;
        parse_endpoint(v, Some(k.vport))
    };
    Ok(match cmd {
        Cmd::A | Cmd::E => {
            let opts = ServiceOpts {
                scheduler,
                persistence,
            };
            if cmd == Cmd::A {
                IpvsadmOp::AddService(need_key()?, opts)
            } else {
                IpvsadmOp::EditService(need_key()?, opts)
            }
        }
        Cmd::D => IpvsadmOp::DeleteService(need_key()?),
        Cmd::C => IpvsadmOp::Clear,
        Cmd::Z => IpvsadmOp::Zero(key),
        Cmd::Set => {
            let mut d = [Duration::ZERO; 3];
            for (slot, v) in d.iter_mut().zip(&set_values) {
                *slot = Duration::from_secs(
                    v.parse::<u64>()
                        .map_err(|_| format!("--set {v}: not a number of seconds"))?,
                );
            }
            IpvsadmOp::SetTimeouts(d[0], d[1], d[2])
        }
        Cmd::AddRs => {
            let k = need_key()?;
            let (a, p) = server(&k)?;
            let mut rs = RealServerConfig::new(a, p, weight.unwrap_or(1));
            rs.forward = forward.unwrap_or(Forward::Dr);
            IpvsadmOp::AddServer(k, rs)
        }
        Cmd::EditRs => {
            let k = need_key()?;
            let (a, p) = server(&k)?;
            IpvsadmOp::EditServer(k, a, p, weight, forward)
        }
        Cmd::DelRs => {
            let k = need_key()?;
            let (a, p) = server(&k)?;
            IpvsadmOp::DeleteServer(k, a, p)
        }
    })
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
        dp.backend.clone(),
        dp.worker.clone(),
        dp.handover.clone(),
    )?))?;
    let mut prog = Programmer {
        desired: BTreeMap::new(),
        health: HashMap::new(),
        table: Arc::clone(&table),
        timeouts: dp.timeouts,
    };
    let mut ownership = dp.ownership.take();
    let mut owners = OwnershipTracker::new();
    if ownership.is_some() {
        send_ownership(&dp.ctl, owners.commands(&config)).await?;
    }
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
                let mut fatal = None;
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
                    Request::Conns => match snapshots(&dp.ctl, dp.conns_limit).await {
                        Ok(snaps) => serde_json::to_value(conns_view(&snaps, dp.conns_limit))
                            .map_err(|e| ErrorBody::new("internal", e.to_string())),
                        Err(e) => Err(ErrorBody::new("internal", e.to_string())),
                    },
                    Request::Ipvsadm { args } => match parse_ipvsadm(args) {
                        Err(e) => Err(ErrorBody::new("bad_request", format!("ipvsadm: {e}"))),
                        Ok(op) => match prog.ipvsadm(&dp.ctl, op).await {
                            Ok(answer) => answer.map(serde_json::Value::String),
                            Err(e) => {
                                let answer = Err(ErrorBody::new("internal", e.to_string()));
                                fatal = Some(e);
                                answer
                            }
                        },
                    },
                    other => Err(ErrorBody::new(
                        "bad_request",
                        format!("the dataplane does not answer {other:?}"),
                    )),
                };
                let _ = call.reply.send(answer);
                if let Some(e) = fatal {
                    break Err(e);
                }
            }
            Ok(()) = ctx.config.changed() => {
                let c = ctx.config.borrow_and_update().clone();
                match prog.set_timeouts(&dp.ctl, config_timeouts(&c)).await {
                    Ok(true) => tracing::info!("dataplane: reload: new timeouts sent to the workers"),
                    Ok(false) => {}
                    Err(e) => break Err(e),
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
                if ownership.is_some() {
                    if let Err(e) = send_ownership(&dp.ctl, owners.commands(&c)).await {
                        break Err(e);
                    }
                }
            }
            Some(o) = async {
                match ownership.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::info!(
                    "dataplane: VRRP {} {} on {}",
                    if o.owned { "owns" } else { "does not own" },
                    o.address,
                    o.interface
                );
                if let Err(e) = send_ownership(&dp.ctl, owners.report(&current, &o)).await {
                    break Err(e);
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
    let applied: u64 = dp
        .backend
        .iter()
        .map(|b| b.lcore.control_applied.get())
        .sum();
    let refused: u64 = dp
        .backend
        .iter()
        .map(|b| b.lcore.control_errors.get())
        .sum();
    tracing::info!(
        "dataplane: stopping ({applied} control messages applied, {refused} refused, \
         all workers)"
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

    const VRRP: &str = r#"
[[vrrp.instance]]
name = "VI_1"
interface = "ftap0"
virtual_router_id = 51
virtual_ipaddress = ["10.0.0.100"]

[[vrrp.instance]]
name = "VI_2"
interface = "ftap1"
virtual_router_id = 61
virtual_ipaddress = ["192.168.7.254/24"]

[[vrrp.sync_group]]
name = "G"
group = ["VI_1", "VI_2"]
"#;

    fn report(a: [u8; 4], dev: &str, owned: bool) -> VipOwnership {
        VipOwnership {
            address: Ipv4Addr::from(a),
            interface: dev.into(),
            owned,
        }
    }

    fn owned(a: [u8; 4], owned: bool) -> Command {
        Command::SetVipOwned {
            vip: Ipv4Addr::from(a),
            owned,
        }
    }

    fn kernel(port: u16, a: [u8; 4], present: bool) -> Command {
        Command::SetKernelAddr {
            port,
            addr: Ipv4Addr::from(a),
            present,
        }
    }

    fn show(cmds: &[Command]) -> Vec<String> {
        cmds.iter().map(|c| format!("{c:?}")).collect()
    }

    #[test]
    fn vrrp_ownership_maps_to_worker_commands() {
        let c = cfg(&format!("{BASE}{VRRP}"));
        let mut t = OwnershipTracker::new();
        // At start every listed address is disowned (VRRP starts in Backup).
        assert_eq!(
            show(&t.commands(&c)),
            show(&[
                owned([10, 0, 0, 100], false),
                owned([192, 168, 7, 254], false)
            ])
        );
        assert!(t.commands(&c).is_empty(), "idempotent");
        // Master: the service VIP is owned (the worker answers ARP); the gateway address,
        // no service's VIP, also becomes a kernel address of the twin it is added to.
        let vip_master = t.report(&c, &report([10, 0, 0, 100], "ftap0", true));
        assert_eq!(show(&vip_master), show(&[owned([10, 0, 0, 100], true)]));
        let gw_master = t.report(&c, &report([192, 168, 7, 254], "ftap1", true));
        assert_eq!(
            show(&gw_master),
            show(&[
                owned([192, 168, 7, 254], true),
                kernel(1, [192, 168, 7, 254], true)
            ])
        );
        assert!(t
            .report(&c, &report([192, 168, 7, 254], "ftap1", true))
            .is_empty());
        // Backup (or Fault, or stop): both undone.
        let gw_backup = t.report(&c, &report([192, 168, 7, 254], "ftap1", false));
        assert_eq!(
            show(&gw_backup),
            show(&[
                kernel(1, [192, 168, 7, 254], false),
                owned([192, 168, 7, 254], false)
            ])
        );
        // A report for an address no instance lists changes nothing.
        assert!(t
            .report(&c, &report([10, 0, 0, 7], "ftap0", false))
            .is_empty());
        // A reload without VRRP gives every address back to the dataplane.
        let plain = cfg(BASE);
        assert_eq!(
            show(&t.commands(&plain)),
            show(&[owned([192, 168, 7, 254], true)])
        );
        assert!(t.commands(&plain).is_empty());
        // A report that arrived before the reload listing its address counts: the
        // gateway stays owned (the workers' default) and becomes a kernel address.
        let mut t = OwnershipTracker::new();
        assert!(t
            .report(&plain, &report([192, 168, 7, 254], "ftap1", true))
            .is_empty());
        assert_eq!(
            show(&t.commands(&c)),
            show(&[
                owned([10, 0, 0, 100], false),
                kernel(1, [192, 168, 7, 254], true)
            ])
        );
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
    fn more_workers_than_eal_lcores_is_refused_with_the_key() {
        // "-l 0-1": the main lcore and one worker lcore.
        let text = BASE.replace("eal = [", "workers = 2\neal = [");
        match Config::parse(&text) {
            Err(e) => {
                let d = &e.diagnostics()[0];
                assert_eq!(d.key, "dataplane.workers", "{d}");
                assert_eq!(d.line, 8, "{d}");
                assert!(d.to_string().contains("dataplane.eal"), "{d}");
            }
            Ok(c) => panic!("workers = 2 accepted: {:?}", backend_config(&c)),
        }
        // Three lcores carry two workers; --lcores groups count their lcores.
        for eal in [
            "\"-l\", \"0-2\"",
            "\"--lcores=0@0,1@0,2@1\"",
            "\"--lcores\", \"(0-2)@0\"",
        ] {
            let text = BASE
                .replace("eal = [", "workers = 2\neal = [")
                .replace("\"-l\", \"0-1\"", eal);
            assert!(Config::parse(&text).is_ok(), "{eal}");
        }
        // The same check at start-up, on what EAL made of the arguments.
        assert_eq!(pick_lcores(&[1, 2, 3], 2).expect("enough"), [1, 2]);
        match pick_lcores(&[1], 2) {
            Err(DataplaneError::Config { key, message }) => {
                assert_eq!(key, "dataplane.workers");
                assert!(message.contains("dataplane.eal"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eal_lcore_lists_are_read() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config::eal_lcores(&v(&["-l", "0-3"])),
            Some(vec![0, 1, 2, 3])
        );
        assert_eq!(config::eal_lcores(&v(&["-l0,2,4"])), Some(vec![0, 2, 4]));
        assert_eq!(
            config::eal_lcores(&v(&["--no-huge", "--lcores=0@0,1@0,2@1"])),
            Some(vec![0, 1, 2])
        );
        assert_eq!(
            config::eal_lcores(&v(&["--lcores", "(0,1)@(0,1),4@2"])),
            Some(vec![0, 1, 4])
        );
        assert_eq!(config::eal_lcores(&v(&["-c", "0x6"])), Some(vec![1, 2]));
        assert_eq!(
            config::eal_lcores(&v(&["--no-huge", "--log-level", "x"])),
            None
        );
        assert_eq!(config::eal_lcores(&v(&["-l", "3-1"])), None);
        assert_eq!(config::eal_lcores(&v(&["-l"])), None);
    }

    #[test]
    fn workers_get_af_packet_queue_pairs() {
        let text = BASE
            .replace("eal = [", "workers = 2\neal = [")
            .replace("\"-l\", \"0-1\"", "\"-l\", \"0-2\"")
            .replace(
                "device = \"0000:03:00.0\"",
                "device = \"net_af_packet1,iface=l1,qpairs=4\"",
            );
        let b = backend_config(&cfg(&text)).expect("backend config");
        assert_eq!(b.ports[0].devargs.as_deref(), Some("iface=l0,qpairs=2"));
        // Set by the user: kept.
        assert_eq!(b.ports[1].devargs.as_deref(), Some("iface=l1,qpairs=4"));
        // One worker: the devargs as written.
        let b = backend_config(&cfg(BASE)).expect("backend config");
        assert_eq!(b.ports[0].devargs.as_deref(), Some("iface=l0"));
        assert_eq!(with_qpairs("net_af_packet0", String::new(), 3), "qpairs=3");
        assert_eq!(with_qpairs("net_tap0", "iface=x".into(), 3), "iface=x");
        assert_eq!(
            with_qpairs("net_af_packet0", "iface=x,qpairs=1".into(), 3),
            "iface=x,qpairs=1"
        );
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
                other => format!("{other:?}"),
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
            t.record(std::slice::from_ref(c), &d);
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
        t.record(&[down], &d);
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
            t.record(std::slice::from_ref(c), &d);
        }
        let backend = Arc::new(BackendCounters {
            ports: vec![Default::default()],
            lcore: Default::default(),
        });
        backend.ports[0].rx_packets.add(11);
        let col = DpCollector::new(
            Arc::new(Mutex::new(t)),
            vec!["ftap0".into()],
            vec![backend],
            vec![Arc::new(WorkerCounters::default())],
            Vec::new(),
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

    #[test]
    fn fan_out_gives_every_worker_its_own_counters_and_views_sum_them() {
        let d = desired_services(&cfg(BASE));
        let cmds = diff(&BTreeMap::new(), &d);
        let mut t = Table::default();
        let mut each = Vec::new();
        for c in &cmds {
            let e = fan_out(c, 3);
            assert_eq!(e.len(), 3);
            t.record(&e, &d);
            each.push(e);
        }
        // The first copy keeps the original counters, the others get their own.
        let svc: Vec<Arc<Stats>> = stats_of(&each[0]);
        assert_eq!(svc.len(), 3);
        if let Command::AddService(_, _, s) = &cmds[0] {
            assert!(Arc::ptr_eq(s, &svc[0]));
        }
        assert!(!Arc::ptr_eq(&svc[0], &svc[1]) && !Arc::ptr_eq(&svc[1], &svc[2]));
        // Commands without counters are the same for every worker.
        let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
        let del = fan_out(
            &Command::DeleteServer(key, Ipv4Addr::new(1, 2, 3, 4), 80),
            2,
        );
        assert_eq!(kinds(&del), ["-rs 1.2.3.4", "-rs 1.2.3.4"]);
        // Each worker counts on its own; the view adds them up.
        for (w, s) in svc.iter().enumerate() {
            s.conns.add(10 * (w as u64 + 1));
        }
        let rs = stats_of(&each[1]);
        rs[0].active.set(1);
        rs[2].active.set(4);
        rs[1].pkts_in.add(7);
        let v = services_view(&t, true, false, None);
        assert_eq!(v.services[0].stats.map(|c| c.conns), Some(60));
        let r0 = &v.services[0].real_servers[0];
        assert_eq!(r0.active_conns, 5);
        assert_eq!(r0.stats.map(|c| c.in_packets), Some(7));
        assert_eq!(worker_connections(&t, 3), [10, 20, 30]);
        // ipvsadm -Z: the views start again from zero, the raw sums go on.
        t.zero(None);
        svc[1].conns.add(2);
        let v = services_view(&t, true, false, None);
        assert_eq!(v.services[0].stats.map(|c| c.conns), Some(2));
        assert_eq!(
            v.services[0].real_servers[0].stats.map(|c| c.in_packets),
            Some(0)
        );
        assert_eq!(worker_connections(&t, 3), [10, 22, 30]);
        // Zeroing another service leaves this one alone.
        t.zero(Some(ServiceKey::new(
            PROTO_TCP,
            Ipv4Addr::new(10, 0, 0, 100),
            81,
        )));
        let v = services_view(&t, true, false, None);
        assert_eq!(v.services[0].stats.map(|c| c.conns), Some(2));
    }

    #[test]
    fn control_queues_fan_out_to_every_worker() {
        let (ctl, rxs) = control_queues(2);
        assert_eq!((ctl.len(), rxs.len()), (2, 2));
        let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
        let cmd = Command::AddService(key, ServiceConfig::default(), Arc::default());
        let each = fan_out(&cmd, ctl.len());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            send_all(&ctl, &each).await.expect("sent");
            send_timeouts(&ctl, Timeouts::dpvs()).await.expect("sent");
        });
        // Drained the way a loop drains its queue.
        for rx in &rxs {
            let got: Vec<Control> = std::iter::from_fn(|| rx.try_recv()).collect();
            assert_eq!(got.len(), 2, "{got:?}");
            assert!(
                matches!(&got[0], Control::Command(c) if matches!(**c, Command::AddService(..)))
            );
            assert!(matches!(got[1], Control::Timeouts(_)));
        }
    }

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn ipvsadm_command_lines_parse() {
        let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
        let ukey = ServiceKey::new(PROTO_UDP, Ipv4Addr::new(10, 0, 0, 100), 53);
        assert_eq!(
            parse_ipvsadm(&args("-A -t 10.0.0.100:80 -s rr -p 60 -M 255.255.255.0")),
            Ok(IpvsadmOp::AddService(
                key,
                ServiceOpts {
                    scheduler: Some(SchedKind::Rr),
                    persistence: Some(Persistence {
                        timeout: Duration::from_secs(60),
                        netmask: 24
                    }),
                }
            ))
        );
        // -p without a value: ipvsadm's 300 s.
        assert_eq!(
            parse_ipvsadm(&args("--add-service --udp-service=10.0.0.100:53 -p")),
            Ok(IpvsadmOp::AddService(
                ukey,
                ServiceOpts {
                    scheduler: None,
                    persistence: Some(Persistence {
                        timeout: Duration::from_secs(300),
                        netmask: 32
                    }),
                }
            ))
        );
        assert_eq!(
            parse_ipvsadm(&args("-E -t 10.0.0.100:80 -s wlc")),
            Ok(IpvsadmOp::EditService(
                key,
                ServiceOpts {
                    scheduler: Some(SchedKind::Wlc),
                    persistence: None
                }
            ))
        );
        assert_eq!(
            parse_ipvsadm(&args("-D -t 10.0.0.100:80")),
            Ok(IpvsadmOp::DeleteService(key))
        );
        let rs = Ipv4Addr::new(192, 168, 7, 27);
        let mut want = RealServerConfig::new(rs, 80, 1);
        want.forward = Forward::Dr;
        assert_eq!(
            parse_ipvsadm(&args("-a -t 10.0.0.100:80 -r 192.168.7.27")),
            Ok(IpvsadmOp::AddServer(key, want))
        );
        for fnat in ["-b", "--fullnat"] {
            let mut want = RealServerConfig::new(rs, 8080, 5);
            want.forward = Forward::FullNat;
            assert_eq!(
                parse_ipvsadm(&args(&format!(
                    "-a -t 10.0.0.100:80 -r 192.168.7.27:8080 -w 5 {fnat}"
                ))),
                Ok(IpvsadmOp::AddServer(key, want))
            );
        }
        assert_eq!(
            parse_ipvsadm(&args("-e -t 10.0.0.100:80 -r 192.168.7.27:80 -w 0")),
            Ok(IpvsadmOp::EditServer(key, rs, 80, Some(0), None))
        );
        assert_eq!(
            parse_ipvsadm(&args("-e -t 10.0.0.100:80 -r 192.168.7.27:80 -m")),
            Ok(IpvsadmOp::EditServer(key, rs, 80, None, Some(Forward::Nat)))
        );
        assert_eq!(
            parse_ipvsadm(&args("-e -t 10.0.0.100:80 -r 192.168.7.27:80 -i")),
            Ok(IpvsadmOp::EditServer(key, rs, 80, None, Some(Forward::Tun)))
        );
        assert_eq!(
            parse_ipvsadm(&args("-d -t 10.0.0.100:80 -r 192.168.7.27:80")),
            Ok(IpvsadmOp::DeleteServer(key, rs, 80))
        );
        assert_eq!(parse_ipvsadm(&args("-Z")), Ok(IpvsadmOp::Zero(None)));
        assert_eq!(
            parse_ipvsadm(&args("-Z -t 10.0.0.100:80")),
            Ok(IpvsadmOp::Zero(Some(key)))
        );
        assert_eq!(parse_ipvsadm(&args("-C")), Ok(IpvsadmOp::Clear));
        assert_eq!(
            parse_ipvsadm(&args("--set 900 120 300")),
            Ok(IpvsadmOp::SetTimeouts(
                Duration::from_secs(900),
                Duration::from_secs(120),
                Duration::from_secs(300)
            ))
        );
        // Errors name what is wrong.
        for (line, word) in [
            ("", "no command"),
            ("-A -D -t 10.0.0.100:80", "more than one command"),
            ("-A", "-t or -u"),
            ("-A -t 10.0.0.100", "port"),
            ("-A -t nowhere:80", "not an IPv4"),
            ("-A -t 10.0.0.100:80 -s nosuch", "-s nosuch"),
            ("-a -t 10.0.0.100:80", "-r"),
            ("-a -t 10.0.0.100:80 -r 192.168.7.27 -w lots", "-w lots"),
            ("-a -t 10.0.0.100:80 -r 192.168.7.27 -w 70000", "-w 70000"),
            ("-A -t 10.0.0.100:80 -p 30 -M 255.0.255.0", "contiguous"),
            ("--set 900 120", "three values"),
            ("--set 900 x 300", "--set x"),
            ("-A -f 7", "only TCP and UDP"),
            ("-R", "-R"),
            ("-t", "-t needs a value"),
        ] {
            match parse_ipvsadm(&args(line)) {
                Err(e) => assert!(e.contains(word), "{line:?}: {e}"),
                Ok(op) => panic!("{line:?} accepted: {op:?}"),
            }
        }
    }

    fn snap(worker: u16, n: usize, total: usize) -> ConnSnapshot {
        use dataplane::dpdk::ConnInfo;
        let rows = (0..n)
            .map(|i| ConnInfo {
                proto: if i == 1 { PROTO_UDP } else { PROTO_TCP },
                state: dataplane::conn::TcpState::Established,
                forward: if i == 2 {
                    Forward::Nat
                } else {
                    Forward::FullNat
                },
                client: std::net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 40000 + i as u16),
                vip: std::net::SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 100), 80),
                local: (i != 2).then(|| {
                    std::net::SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 188), 1025 + i as u16)
                }),
                server: std::net::SocketAddrV4::new(Ipv4Addr::new(192, 168, 7, 27), 80),
                expires: Duration::from_millis(89_200),
                template: false,
            })
            .collect();
        ConnSnapshot {
            worker,
            rows,
            total,
            truncated: n < total,
        }
    }

    #[test]
    fn conns_view_merges_workers_and_bounds_the_rows() {
        let v = conns_view(&[snap(0, 3, 3), snap(1, 2, 2)], 100);
        assert_eq!((v.conns.len(), v.total, v.truncated), (5, 5, false));
        let r = &v.conns[0];
        assert_eq!(
            (
                r.protocol.as_str(),
                r.state.as_str(),
                r.expires_seconds,
                r.worker
            ),
            ("tcp", "ESTABLISHED", 90, 0)
        );
        assert_eq!(r.client, "10.0.0.2:40000");
        assert_eq!(r.virtual_address, "10.0.0.100:80");
        assert_eq!(r.local.as_deref(), Some("192.168.7.188:1025"));
        assert_eq!(r.real_server, "192.168.7.27:80");
        assert_eq!(
            (v.conns[1].protocol.as_str(), v.conns[1].state.as_str()),
            ("udp", "UDP")
        );
        assert_eq!(v.conns[2].local, None, "NAT has no local address");
        assert_eq!(v.conns[3].worker, 1);
        // The limit holds over all workers together.
        let v = conns_view(&[snap(0, 3, 3), snap(1, 2, 2)], 4);
        assert_eq!((v.conns.len(), v.total, v.truncated), (4, 5, true));
        // A worker that left rows out makes the answer truncated.
        let v = conns_view(&[snap(0, 1, 9)], 100);
        assert_eq!((v.conns.len(), v.total, v.truncated), (1, 9, true));
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["truncated"], true);
        assert_eq!(json["conns"][0]["local"], "192.168.7.188:1025");
    }

    #[test]
    fn collector_exports_per_worker_counters_and_sums_ports() {
        let d = desired_services(&cfg(BASE));
        let mut t = Table::default();
        let mut svc = Vec::new();
        for c in &diff(&BTreeMap::new(), &d) {
            let each = fan_out(c, 2);
            if let Command::AddService(..) = c {
                svc = stats_of(&each);
            }
            t.record(&each, &d);
        }
        svc[0].conns.add(3);
        svc[1].conns.add(5);
        let backend: Vec<Arc<BackendCounters>> = (0..2)
            .map(|_| {
                Arc::new(BackendCounters {
                    ports: vec![Default::default()],
                    lcore: Default::default(),
                })
            })
            .collect();
        backend[0].ports[0].rx_packets.add(11);
        backend[1].ports[0].rx_packets.add(4);
        backend[1].lcore.rounds.add(9);
        let handover: Vec<Arc<HandoverCounters>> =
            (0..2).map(|_| Arc::new(HandoverCounters::new(2))).collect();
        handover[1].sent.add(6);
        handover[0].received.add(6);
        let workers: Vec<Arc<WorkerCounters>> = (0..2)
            .map(|_| Arc::new(WorkerCounters::default()))
            .collect();
        workers[0].forwarded.add(2);
        workers[1].forwarded.add(3);
        let col = DpCollector::new(
            Arc::new(Mutex::new(t)),
            vec!["ftap0".into()],
            backend,
            workers,
            handover,
        )
        .expect("collector");
        let reg = prometheus::Registry::new();
        reg.register(Box::new(col)).expect("register");
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &reg.gather(), &mut out)
            .expect("encode");
        let text = String::from_utf8(out).expect("utf8");
        for line in [
            "fulcrum_dataplane_port_rx_packets_total{port=\"ftap0\"} 15",
            "fulcrum_dataplane_worker_rx_packets_total{worker=\"0\"} 11",
            "fulcrum_dataplane_worker_rx_packets_total{worker=\"1\"} 4",
            "fulcrum_dataplane_worker_rounds_total{worker=\"1\"} 9",
            "fulcrum_dataplane_worker_connections_total{worker=\"0\"} 3",
            "fulcrum_dataplane_worker_connections_total{worker=\"1\"} 5",
            "fulcrum_dataplane_worker_handover_sent_total{worker=\"1\"} 6",
            "fulcrum_dataplane_worker_handover_received_total{worker=\"0\"} 6",
            "fulcrum_dataplane_worker_handover_owner_mismatch_total{worker=\"0\"} 0",
            "fulcrum_dataplane_forwarded_packets_total 5",
            "fulcrum_ipvs_connections_total{service=\"web\",local_address=\"10.0.0.100\",local_port=\"80\",proto=\"TCP\"} 8",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
