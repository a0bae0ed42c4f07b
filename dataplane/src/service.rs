//! Virtual services and their real servers, with ipvsadm semantics.
//!
//! A [`ServiceTable`] belongs to one worker. The control plane changes it only through
//! [`Command`]s (ipvsadm `-A -E -D -a -e -d`, health changes) that each worker applies
//! between bursts, so no lock is taken on the packet path. Connections keep everything
//! they need to forward (addresses, ports, mode) in their own entry: editing or deleting a
//! service or a real server never disturbs established connections, and weight 0 drains
//! a server (no new connections, existing ones continue). Editing the local addresses
//! keeps the ports of live connections reserved in the new pool; a deleted service's
//! slot is not given to a new service while connections created for it live, so their
//! releases never reach another service.
//!
//! Counters ([`Stats`]) are plain atomics written by the single owning worker with
//! `Relaxed` loads and stores and read by the control plane, which sums the per-worker
//! instances it handed to each worker in the commands.

use crate::conn::{ConnId, ConnTable};
use crate::fib::Prefix;
use crate::flow::{FastBuild, FlowKey};
use crate::laddr::LaddrPool;
use crate::sched::{RsView, SchedError, SchedKind, Scheduler};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Forwarding method of a real server (ipvsadm `-g -m -i`, DPVS `-b` for FullNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Forward {
    /// Full NAT: source to a local address, destination to the real server.
    #[default]
    FullNat = 0,
    /// NAT (masquerading): destination rewritten, replies come back through us.
    Nat = 1,
    /// Direct routing: only the MAC changes.
    Dr = 2,
    /// IP-in-IP tunneling.
    Tun = 3,
}

impl Forward {
    /// From the value stored in a connection entry.
    pub fn from_u8(v: u8) -> Forward {
        match v {
            1 => Forward::Nat,
            2 => Forward::Dr,
            3 => Forward::Tun,
            _ => Forward::FullNat,
        }
    }
}

/// How FullNAT tells the real server the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAddr {
    /// Not at all.
    #[default]
    None,
    /// TCP option 254 (TOA) on the first ACK / data segment.
    Toa,
    /// PROXY protocol v1 text header ahead of the first data.
    ProxyV1,
    /// PROXY protocol v2 binary header ahead of the first data.
    ProxyV2,
}

/// A virtual service's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// IP protocol (6 or 17).
    pub proto: u8,
    /// Virtual address, host order.
    pub vaddr: u32,
    /// Virtual port; 0 = every port (persistent port-zero service).
    pub vport: u16,
}

impl ServiceKey {
    /// A key from an address.
    pub fn new(proto: u8, vaddr: Ipv4Addr, vport: u16) -> Self {
        ServiceKey {
            proto,
            vaddr: u32::from(vaddr),
            vport,
        }
    }
}

/// Persistence (ipvsadm `-p TIMEOUT -M NETMASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// How long a client stays bound to its server after its last connection.
    pub timeout: Duration,
    /// Client addresses sharing a template: prefix length (32 = per address).
    pub netmask: u8,
}

/// Service settings (ipvsadm `-A` / `-E`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Scheduler.
    pub scheduler: SchedKind,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// Established timeout for this service (overrides `--set tcp`).
    pub est_timeout: Option<Duration>,
    /// Answer handshakes with SYN cookies before choosing a server.
    pub syn_proxy: bool,
    /// Client address delivery in FullNAT.
    pub client_addr: ClientAddr,
    /// Clients allowed (empty = all).
    pub allow: Vec<Prefix>,
    /// Clients denied.
    pub deny: Vec<Prefix>,
    /// FullNAT local addresses.
    pub local_addrs: Vec<Ipv4Addr>,
    /// FullNAT local port range.
    pub lport_range: (u16, u16),
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            scheduler: SchedKind::Wlc,
            persistence: None,
            est_timeout: None,
            syn_proxy: false,
            client_addr: ClientAddr::None,
            allow: Vec::new(),
            deny: Vec::new(),
            local_addrs: Vec::new(),
            lport_range: crate::laddr::DEFAULT_PORT_RANGE,
        }
    }
}

/// Real-server settings (ipvsadm `-a` / `-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealServerConfig {
    /// Address.
    pub addr: Ipv4Addr,
    /// Port (0 in a port-zero service: the client's destination port).
    pub port: u16,
    /// Weight; 0 drains.
    pub weight: u32,
    /// Forwarding method.
    pub forward: Forward,
    /// Upper connection threshold (`-x`), 0 = none.
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = three quarters of the upper one.
    pub lower_threshold: u32,
}

impl RealServerConfig {
    /// A FullNAT server with weight `weight` and no thresholds.
    pub fn new(addr: Ipv4Addr, port: u16, weight: u32) -> Self {
        RealServerConfig {
            addr,
            port,
            weight,
            forward: Forward::FullNat,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }
}

/// A counter written by one worker, read by anyone (Relaxed).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (single writer: a load and a store, no locked instruction).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets the value (gauges).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// Reads the value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of a service or a real server on one worker (node_exporter ipvs names).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections created.
    pub conns: Counter,
    /// Packets client → server.
    pub pkts_in: Counter,
    /// Packets server → client.
    pub pkts_out: Counter,
    /// Bytes client → server.
    pub bytes_in: Counter,
    /// Bytes server → client.
    pub bytes_out: Counter,
    /// Active connections now (gauge).
    pub active: Counter,
    /// Inactive connections now (gauge).
    pub inactive: Counter,
}

/// Errors of service management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SvcError {
    /// `-A` for a service that exists.
    #[error("service already exists")]
    ServiceExists,
    /// The service does not exist.
    #[error("no such service")]
    NoService,
    /// `-a` for a real server that exists.
    #[error("real server already exists")]
    ServerExists,
    /// The real server does not exist.
    #[error("no such real server")]
    NoServer,
    /// More than 65535 services on one worker.
    #[error("too many services")]
    TooMany,
    /// A port-zero service without persistence (ipvsadm refuses it too).
    #[error("port-zero service needs persistence")]
    PortZeroNeedsPersistence,
    /// Scheduler construction failed.
    #[error("scheduler: {0}")]
    Sched(#[from] SchedError),
}

/// A control-plane change for one worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// ipvsadm -A, with this worker's counters for the service.
    AddService(ServiceKey, ServiceConfig, Arc<Stats>),
    /// ipvsadm -E.
    EditService(ServiceKey, ServiceConfig),
    /// ipvsadm -D.
    DeleteService(ServiceKey),
    /// ipvsadm -a, with this worker's counters for the server.
    AddServer(ServiceKey, RealServerConfig, Arc<Stats>),
    /// ipvsadm -e (the server is found by address and port).
    EditServer(ServiceKey, RealServerConfig),
    /// ipvsadm -d.
    DeleteServer(ServiceKey, Ipv4Addr, u16),
    /// Health checker verdict.
    SetAvailable(ServiceKey, Ipv4Addr, u16, bool),
    /// VRRP ownership of a virtual address (see [`ServiceTable::vip_owned`]): while not
    /// owned, the worker neither answers ARP for `vip` nor schedules new connections to
    /// it; established connections keep forwarding.
    SetVipOwned {
        /// The virtual address.
        vip: Ipv4Addr,
        /// True on VRRP Master, false on Backup, Fault or stop.
        owned: bool,
    },
    /// An address the kernel twin of `port` holds at run time (a VRRP address added to
    /// or removed from the twin): the worker punts ARP and traffic for it to the twin, as
    /// for the port's configured addresses (see [`ServiceTable::is_runtime_kernel_addr`]).
    SetKernelAddr {
        /// The port whose twin holds the address.
        port: u16,
        /// The address.
        addr: Ipv4Addr,
        /// True when the twin holds it now, false when it no longer does.
        present: bool,
    },
}

#[derive(Debug)]
struct RealServer {
    cfg: RealServerConfig,
    stats: Arc<Stats>,
}

/// A virtual service on one worker.
#[derive(Debug)]
pub struct Service {
    id: u16,
    key: ServiceKey,
    cfg: ServiceConfig,
    sched: Scheduler,
    views: Vec<RsView>,
    servers: Vec<RealServer>,
    /// (rs id, position) sorted by id.
    ids: Vec<(u32, u32)>,
    laddr: LaddrPool,
    stats: Arc<Stats>,
    denied: u64,
    no_server: u64,
}

/// The outcome of scheduling a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Real-server id.
    pub rs: u32,
    /// Real-server address, host order.
    pub raddr: u32,
    /// Real-server port.
    pub rport: u16,
    /// Forwarding method.
    pub forward: Forward,
    /// Persistence template now controlling the connection.
    pub template: Option<ConnId>,
}

/// Why a new connection got no server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedFail {
    /// The client is not allowed (deny list, or not in the allow list).
    Denied,
    /// No usable server.
    NoServer,
}

impl Service {
    /// Service id (stored in connections).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Service key.
    pub fn key(&self) -> ServiceKey {
        self.key
    }

    /// Settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// Counters of this worker.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The scheduler's view of the servers, in list order.
    pub fn servers(&self) -> &[RsView] {
        &self.views
    }

    /// This worker's local-address pool.
    pub fn laddr(&mut self) -> &mut LaddrPool {
        &mut self.laddr
    }

    /// New connections refused by the allow/deny lists.
    pub fn denied(&self) -> u64 {
        self.denied
    }

    /// New connections refused for lack of a usable server.
    pub fn no_server(&self) -> u64 {
        self.no_server
    }

    #[inline(always)]
    fn pos(&self, rs: u32) -> Option<usize> {
        // Ids handed out in a row (the usual case) sit at `rs - first id`: one compare
        // confirms it (ids are sorted and unique); otherwise a binary search.
        if let Some(&(first, _)) = self.ids.first() {
            if let Some(&(id, p)) = self.ids.get(rs.wrapping_sub(first) as usize) {
                if id == rs {
                    return Some(p as usize);
                }
            }
        }
        self.pos_search(rs)
    }

    /// [`pos`](Self::pos) by binary search (ids not handed out in a row).
    #[inline(never)]
    fn pos_search(&self, rs: u32) -> Option<usize> {
        self.ids
            .binary_search_by_key(&rs, |p| p.0)
            .ok()
            .and_then(|i| self.ids.get(i))
            .map(|p| p.1 as usize)
    }

    /// Counters of real server `rs`, if it still exists.
    #[inline]
    pub fn rs_stats(&self, rs: u32) -> Option<&Arc<Stats>> {
        self.pos(rs)
            .and_then(|p| self.servers.get(p))
            .map(|s| &s.stats)
    }

    /// Settings of real server `rs`.
    pub fn rs_config(&self, rs: u32) -> Option<&RealServerConfig> {
        self.pos(rs)
            .and_then(|p| self.servers.get(p))
            .map(|s| &s.cfg)
    }

    /// True when the allow/deny lists let `client` (host order) open a connection.
    pub fn permits(&self, client: u32) -> bool {
        if self.cfg.deny.iter().any(|p| p.contains(client)) {
            return false;
        }
        self.cfg.allow.is_empty() || self.cfg.allow.iter().any(|p| p.contains(client))
    }

    fn rebuild(&mut self) {
        self.ids = self
            .views
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id, i as u32))
            .collect();
        self.ids.sort_unstable();
        self.sched.update(&self.views);
    }

    /// Chooses a real server for a new connection with inbound `key` (honouring
    /// persistence templates kept in `conns`).
    pub fn schedule(
        &mut self,
        conns: &mut ConnTable,
        key: &FlowKey,
        now: Duration,
    ) -> Result<Scheduled, SchedFail> {
        if !self.permits(key.saddr) {
            self.denied += 1;
            return Err(SchedFail::Denied);
        }
        let mut template = None;
        let mut chosen: Option<usize> = None;
        if let Some(p) = self.cfg.persistence {
            let masked = key.saddr & Prefix::mask_of(p.netmask);
            if let Some(t) = conns.lookup_template(key.proto, masked, key.daddr, self.key.vport) {
                let pos = conns.get(t).and_then(|c| self.pos(c.rs));
                // ip_vs_check_template: a template to a removed or unavailable server is
                // dropped; a quiescent (weight 0) one is still honoured.
                match pos.and_then(|i| self.views.get(i)).filter(|v| v.available) {
                    Some(_) => {
                        chosen = pos;
                        template = Some(t);
                        conns.touch(t, p.timeout, now);
                    }
                    None => {
                        conns.remove(t);
                    }
                }
            }
            if chosen.is_none() {
                let i = self.sched.pick(&self.views, key, now);
                if let Some(v) = i.and_then(|i| self.views.get(i)) {
                    template = conns
                        .insert_template(
                            key.proto,
                            masked,
                            key.daddr,
                            self.key.vport,
                            self.id,
                            v.id,
                            p.timeout,
                            now,
                        )
                        .ok();
                }
                chosen = i;
            }
        } else {
            chosen = self.sched.pick(&self.views, key, now);
        }
        let Some(i) = chosen else {
            self.no_server += 1;
            return Err(SchedFail::NoServer);
        };
        let (Some(v), Some(s)) = (self.views.get(i), self.servers.get(i)) else {
            self.no_server += 1;
            return Err(SchedFail::NoServer);
        };
        let rport = if s.cfg.port == 0 {
            key.dport
        } else {
            s.cfg.port
        };
        Ok(Scheduled {
            rs: v.id,
            raddr: v.addr,
            rport,
            forward: s.cfg.forward,
            template,
        })
    }

    fn refresh_overload(v: &mut RsView, cfg: &RealServerConfig) {
        // ip_vs_dest_totalconns against the thresholds (ip_vs_bind_dest / is_overloaded).
        let total = u64::from(v.active) + u64::from(v.inactive);
        let u = u64::from(cfg.upper_threshold);
        if u == 0 {
            v.overloaded = false;
        } else if total >= u {
            v.overloaded = true;
        } else if v.overloaded {
            let l = u64::from(cfg.lower_threshold);
            let below = if l > 0 { total < l } else { total * 4 < u * 3 };
            if below {
                v.overloaded = false;
            }
        }
    }

    /// Counts a new connection on server `rs` (inactive until established).
    pub fn conn_opened(&mut self, rs: u32) {
        self.stats.conns.add(1);
        if let Some(p) = self.pos(rs) {
            if let (Some(v), Some(s)) = (self.views.get_mut(p), self.servers.get(p)) {
                v.inactive += 1;
                s.stats.conns.add(1);
                s.stats.inactive.set(u64::from(v.inactive));
                Self::refresh_overload(v, &s.cfg);
            }
        }
    }

    /// Moves a connection of `rs` between inactive and active.
    pub fn conn_activity(&mut self, rs: u32, was_active: bool, is_active: bool) {
        if was_active == is_active {
            return;
        }
        if let Some(p) = self.pos(rs) {
            if let (Some(v), Some(s)) = (self.views.get_mut(p), self.servers.get(p)) {
                if is_active {
                    v.inactive = v.inactive.saturating_sub(1);
                    v.active += 1;
                } else {
                    v.active = v.active.saturating_sub(1);
                    v.inactive += 1;
                }
                s.stats.active.set(u64::from(v.active));
                s.stats.inactive.set(u64::from(v.inactive));
                Self::refresh_overload(v, &s.cfg);
            }
        }
    }

    /// Counts the end of a connection of `rs`.
    pub fn conn_closed(&mut self, rs: u32, was_active: bool) {
        if let Some(p) = self.pos(rs) {
            if let (Some(v), Some(s)) = (self.views.get_mut(p), self.servers.get(p)) {
                if was_active {
                    v.active = v.active.saturating_sub(1);
                } else {
                    v.inactive = v.inactive.saturating_sub(1);
                }
                s.stats.active.set(u64::from(v.active));
                s.stats.inactive.set(u64::from(v.inactive));
                Self::refresh_overload(v, &s.cfg);
            }
        }
    }

    /// Counts a packet of `len` bytes of server `rs` in direction in (client→server)
    /// or out.
    #[inline(always)]
    pub fn count_packet(&self, rs: u32, inbound: bool, len: usize) {
        let len = len as u64;
        let add = |st: &Stats| {
            if inbound {
                st.pkts_in.add(1);
                st.bytes_in.add(len);
            } else {
                st.pkts_out.add(1);
                st.bytes_out.add(len);
            }
        };
        add(&self.stats);
        if let Some(st) = self.rs_stats(rs) {
            add(st);
        }
    }
}

/// All services of one worker (see the module documentation).
#[derive(Debug)]
pub struct ServiceTable {
    worker: u16,
    workers: u16,
    services: Vec<Option<Service>>,
    by_key: HashMap<ServiceKey, u16, FastBuild>,
    vips: HashMap<u32, u32, FastBuild>,
    next_rs_id: u32,
    /// Live connections (not templates) created for each service slot, whether the
    /// service still exists or not. A slot is reused by a new service only at zero, so
    /// the releases of a deleted service's connections can never reach its successor
    /// (its local-address pool, its counts): the slot's generation ends with its last
    /// connection.
    live: Vec<u32>,
    /// The established fast path's view of every real server (see [`RsFast`]),
    /// direct-mapped by server id.
    fast: Vec<RsFast>,
    /// Shared by the empty slots of `fast`.
    no_stats: Arc<Stats>,
    /// Seed of the local-address pools' starting ports (0: lowest first).
    laddr_seed: u64,
    /// Virtual addresses VRRP does not hold here (`Command::SetVipOwned`), host order.
    disowned: Vec<u32>,
    /// Addresses the kernel twins hold at run time (`Command::SetKernelAddr`): (port,
    /// address in host order).
    kernel_addrs: Vec<(u16, u32)>,
}

/// [`RsFast::need_in`] of a service whose inbound segments never take the fast path
/// (PROXY protocol): a flag no live entry carries (`conn::flags::FREE`).
pub(crate) const FAST_NEVER: u8 = 0x80;

/// What the established fast path needs of one real server and its service, in one
/// slot of a per-worker table direct-mapped by server id (ids are handed out in a row
/// per worker, so live servers rarely share a slot): found from the connection entry's
/// `rs` alone, with no service lookup, no id search and no `Option`s. A slot holds at
/// most one server; a server without a slot (deleted, or displaced by a colliding id)
/// simply leaves its packets to the general path, which counts them the usual way.
#[derive(Debug, Clone)]
pub(crate) struct RsFast {
    /// Server id. An empty slot at index `i` holds `!i`, an id whose own slot is
    /// another one (`!i & mask` = `mask - i` ≠ `i`), so no id ever matches it — not
    /// even 0, which entries without a server carry.
    pub(crate) rs: u32,
    /// Its service.
    pub(crate) svc: u16,
    /// Entry flags an inbound segment needs to take the fast path: 0 without client
    /// address delivery, `CLIENT_ADDR_SENT` with TOA, [`FAST_NEVER`] with PROXY.
    pub(crate) need_in: u8,
    /// The service's own established timeout in ticks (at least 1), 0 for the global one.
    pub(crate) est_ticks: u32,
    /// The service's counters.
    pub(crate) svc_stats: Arc<Stats>,
    /// The server's counters.
    pub(crate) rs_stats: Arc<Stats>,
}

impl ServiceTable {
    /// The fast-path slot of server `rs` when it has one (`rs` and `svc` match).
    #[inline(always)]
    pub(crate) fn fast_slot(&self, rs: u32) -> Option<&RsFast> {
        let mask = self.fast.len().wrapping_sub(1);
        self.fast.get(rs as usize & mask).filter(|f| f.rs == rs)
    }

    fn fast_fill(
        cfg: &ServiceConfig,
        svc: u16,
        svc_stats: &Arc<Stats>,
        rs: u32,
        rs_stats: &Arc<Stats>,
    ) -> RsFast {
        RsFast {
            rs,
            svc,
            need_in: match cfg.client_addr {
                ClientAddr::None => 0,
                ClientAddr::Toa => crate::conn::flags::CLIENT_ADDR_SENT,
                ClientAddr::ProxyV1 | ClientAddr::ProxyV2 => FAST_NEVER,
            },
            est_ticks: cfg.est_timeout.map_or(0, |t| crate::conn::ticks(t).max(1)),
            svc_stats: Arc::clone(svc_stats),
            rs_stats: Arc::clone(rs_stats),
        }
    }

    /// True when slot `i` of a table with `mask` holds a server.
    fn fast_used(f: &RsFast, i: usize, mask: usize) -> bool {
        f.rs as usize & mask == i
    }

    fn fast_empty(&self, i: usize) -> RsFast {
        RsFast {
            rs: !(i as u32),
            svc: 0,
            need_in: FAST_NEVER,
            est_ticks: 0,
            svc_stats: Arc::clone(&self.no_stats),
            rs_stats: Arc::clone(&self.no_stats),
        }
    }

    /// Rebuilds the fast-path table from the services: at least twice as many slots
    /// as servers (a power of two), grown while live ids collide (up to eight times as
    /// many, or 256 slots).
    fn fast_rebuild(&mut self) {
        let servers: usize = self.iter().map(|s| s.servers.len()).sum();
        let mut size = (servers * 2).max(16).next_power_of_two();
        let limit = (servers * 8).max(256).next_power_of_two();
        loop {
            let mask = size - 1;
            let mut used = vec![false; size];
            let collide = self.iter().flat_map(|s| s.views.iter()).any(|v| {
                let u = &mut used[v.id as usize & mask];
                std::mem::replace(u, true)
            });
            if !collide || size >= limit {
                break;
            }
            size *= 2;
        }
        let mut fast: Vec<RsFast> = (0..size).map(|i| self.fast_empty(i)).collect();
        let mask = size - 1;
        for s in self.services.iter().flatten() {
            for (v, r) in s.views.iter().zip(&s.servers) {
                let i = v.id as usize & mask;
                if let Some(slot) = fast.get_mut(i) {
                    if !Self::fast_used(slot, i, mask) {
                        *slot = Self::fast_fill(&s.cfg, s.id, &s.stats, v.id, &r.stats);
                    }
                }
            }
        }
        self.fast = fast;
    }

    /// Records server `rs` of service `svc` in the fast-path table (a new server).
    fn fast_add(&mut self, svc: u16, rs: u32) {
        let servers: usize = self.iter().map(|s| s.servers.len()).sum();
        let mask = self.fast.len().wrapping_sub(1);
        let i = rs as usize & mask;
        let free = self
            .fast
            .get(i)
            .is_some_and(|f| !Self::fast_used(f, i, mask));
        if !free || servers * 2 > self.fast.len() {
            self.fast_rebuild();
            return;
        }
        let Some(s) = self.get(svc) else { return };
        let Some(p) = s.pos(rs) else { return };
        let Some(r) = s.servers.get(p) else { return };
        let slot = Self::fast_fill(&s.cfg, svc, &s.stats, rs, &r.stats);
        if let Some(f) = self.fast.get_mut(i) {
            *f = slot;
        }
    }

    /// An empty table for worker `worker` of `workers`.
    pub fn new(worker: u16, workers: u16) -> Self {
        ServiceTable {
            worker,
            workers: workers.max(1),
            services: Vec::new(),
            by_key: HashMap::default(),
            vips: HashMap::default(),
            next_rs_id: 1,
            live: Vec::new(),
            fast: Vec::new(),
            no_stats: Arc::default(),
            laddr_seed: 0,
            disowned: Vec::new(),
            kernel_addrs: Vec::new(),
        }
    }

    /// Seeds where each FullNAT local-address pool starts handing out ports
    /// ([`LaddrPool::new_seeded`]); a random seed per run keeps a restarted node from
    /// reusing the previous run's ports in the same order. 0 (the default): lowest first.
    pub fn set_laddr_seed(&mut self, seed: u64) {
        self.laddr_seed = seed;
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when there is no service.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Applies a control-plane command.
    pub fn apply(&mut self, cmd: Command) -> Result<(), SvcError> {
        match cmd {
            Command::AddService(k, c, st) => self.add_service(k, c, st).map(|_| ()),
            Command::EditService(k, c) => self.edit_service(k, c),
            Command::DeleteService(k) => self.delete_service(k),
            Command::AddServer(k, c, st) => self.add_server(k, c, st).map(|_| ()),
            Command::EditServer(k, c) => self.edit_server(k, c),
            Command::DeleteServer(k, a, p) => self.delete_server(k, a, p),
            Command::SetAvailable(k, a, p, up) => self.set_available(k, a, p, up),
            Command::SetVipOwned { vip, owned } => {
                self.set_vip_owned(vip, owned);
                Ok(())
            }
            Command::SetKernelAddr {
                port,
                addr,
                present,
            } => {
                self.set_kernel_addr(port, addr, present);
                Ok(())
            }
        }
    }

    /// Records whether VRRP holds `vip` here. The set is kept whether or not a service
    /// uses the address now, so a service added later for a disowned address starts
    /// disowned. Idempotent.
    pub fn set_vip_owned(&mut self, vip: Ipv4Addr, owned: bool) {
        let a = u32::from(vip);
        let known = self.disowned.iter().position(|x| *x == a);
        match (owned, known) {
            (true, Some(i)) => {
                self.disowned.swap_remove(i);
            }
            (false, None) => self.disowned.push(a),
            _ => {}
        }
    }

    /// False while `addr` (host order) is disowned by [`Command::SetVipOwned`]; true
    /// otherwise (an address no VRRP instance lists is always owned).
    #[inline]
    pub fn vip_owned(&self, addr: u32) -> bool {
        self.disowned.is_empty() || !self.disowned.contains(&addr)
    }

    /// Adds (`present`) or removes a runtime kernel address of `port`'s twin. Idempotent.
    pub fn set_kernel_addr(&mut self, port: u16, addr: Ipv4Addr, present: bool) {
        let e = (port, u32::from(addr));
        let known = self.kernel_addrs.iter().position(|x| *x == e);
        match (present, known) {
            (true, None) => self.kernel_addrs.push(e),
            (false, Some(i)) => {
                self.kernel_addrs.swap_remove(i);
            }
            _ => {}
        }
    }

    /// True when a kernel twin holds `addr` (host order) at run time.
    #[inline]
    pub fn is_runtime_kernel_addr(&self, addr: u32) -> bool {
        !self.kernel_addrs.is_empty() && self.kernel_addrs.iter().any(|(_, a)| *a == addr)
    }

    /// The runtime kernel addresses: (port, address).
    pub fn runtime_kernel_addrs(&self) -> impl Iterator<Item = (u16, Ipv4Addr)> + '_ {
        self.kernel_addrs
            .iter()
            .map(|(p, a)| (*p, Ipv4Addr::from(*a)))
    }

    /// ipvsadm -A.
    pub fn add_service(
        &mut self,
        key: ServiceKey,
        cfg: ServiceConfig,
        stats: Arc<Stats>,
    ) -> Result<u16, SvcError> {
        if self.by_key.contains_key(&key) {
            return Err(SvcError::ServiceExists);
        }
        if key.vport == 0 && cfg.persistence.is_none() {
            return Err(SvcError::PortZeroNeedsPersistence);
        }
        let sched = Scheduler::new(cfg.scheduler)?;
        let live = &self.live;
        let free_slot = self
            .services
            .iter()
            .enumerate()
            .position(|(i, s)| s.is_none() && live.get(i).copied().unwrap_or(0) == 0);
        let slot = match free_slot {
            Some(i) => i,
            None => {
                if self.services.len() >= usize::from(u16::MAX) {
                    return Err(SvcError::TooMany);
                }
                self.services.push(None);
                self.services.len() - 1
            }
        };
        let id = slot as u16;
        let laddr = LaddrPool::new_seeded(
            &cfg.local_addrs,
            cfg.lport_range,
            self.worker,
            self.workers,
            match self.laddr_seed {
                0 => 0,
                seed => seed ^ (u64::from(key.vaddr) << 16 | u64::from(key.vport)),
            },
        );
        if let Some(s) = self.services.get_mut(slot) {
            *s = Some(Service {
                id,
                key,
                cfg,
                sched,
                views: Vec::new(),
                servers: Vec::new(),
                ids: Vec::new(),
                laddr,
                stats,
                denied: 0,
                no_server: 0,
            });
        }
        self.by_key.insert(key, id);
        *self.vips.entry(key.vaddr).or_insert(0) += 1;
        Ok(id)
    }

    /// Records a connection entry created for service `id` (see [`conn_released`]).
    ///
    /// [`conn_released`]: Self::conn_released
    pub fn conn_created(&mut self, id: u16) {
        let i = usize::from(id);
        if self.live.len() <= i {
            self.live.resize(i + 1, 0);
        }
        if let Some(n) = self.live.get_mut(i) {
            *n += 1;
        }
    }

    /// Records the end of a connection entry of service slot `id`, returning the
    /// service if it still exists (the one the connection was created for: a slot is
    /// not reused while it has live connections).
    pub fn conn_released(&mut self, id: u16) -> Option<&mut Service> {
        if let Some(n) = self.live.get_mut(usize::from(id)) {
            *n = n.saturating_sub(1);
        }
        self.get_mut(id)
    }

    /// Live connections (not templates) of service slot `id`, including those left by
    /// a deleted service.
    pub fn live_conns(&self, id: u16) -> u32 {
        self.live.get(usize::from(id)).copied().unwrap_or(0)
    }

    /// ipvsadm -E: new settings; the scheduler is rebuilt only when it changes, the
    /// local-address pool only when its addresses or range change.
    pub fn edit_service(&mut self, key: ServiceKey, cfg: ServiceConfig) -> Result<(), SvcError> {
        let (worker, workers) = (self.worker, self.workers);
        let s = self.service_mut(key).ok_or(SvcError::NoService)?;
        if key.vport == 0 && cfg.persistence.is_none() {
            return Err(SvcError::PortZeroNeedsPersistence);
        }
        if cfg.scheduler != s.cfg.scheduler {
            s.sched = Scheduler::new(cfg.scheduler)?;
            s.sched.update(&s.views);
        }
        if cfg.local_addrs != s.cfg.local_addrs || cfg.lport_range != s.cfg.lport_range {
            // Ports held by live connections on kept addresses stay reserved in the new
            // pool until those connections end (they are released into it then).
            s.laddr = s
                .laddr
                .rebuilt(&cfg.local_addrs, cfg.lport_range, worker, workers);
        }
        s.cfg = cfg;
        self.fast_rebuild();
        Ok(())
    }

    /// ipvsadm -D. Existing connections keep forwarding until they expire.
    pub fn delete_service(&mut self, key: ServiceKey) -> Result<(), SvcError> {
        let id = self.by_key.remove(&key).ok_or(SvcError::NoService)?;
        if let Some(s) = self.services.get_mut(usize::from(id)) {
            *s = None;
        }
        if let Some(n) = self.vips.get_mut(&key.vaddr) {
            *n -= 1;
            if *n == 0 {
                self.vips.remove(&key.vaddr);
            }
        }
        self.fast_rebuild();
        Ok(())
    }

    /// ipvsadm -a. Returns the server id.
    pub fn add_server(
        &mut self,
        key: ServiceKey,
        cfg: RealServerConfig,
        stats: Arc<Stats>,
    ) -> Result<u32, SvcError> {
        let id = self.next_rs_id;
        let s = self.service_mut(key).ok_or(SvcError::NoService)?;
        let a = u32::from(cfg.addr);
        if s.views.iter().any(|v| v.addr == a && v.port == cfg.port) {
            return Err(SvcError::ServerExists);
        }
        s.views.push(RsView {
            id,
            addr: a,
            port: cfg.port,
            weight: cfg.weight,
            active: 0,
            inactive: 0,
            overloaded: false,
            available: true,
        });
        s.servers.push(RealServer { cfg, stats });
        s.rebuild();
        let svc = s.id;
        self.next_rs_id = self.next_rs_id.wrapping_add(1).max(1);
        self.fast_add(svc, id);
        Ok(id)
    }

    /// ipvsadm -e: weight, method and thresholds of an existing server.
    pub fn edit_server(&mut self, key: ServiceKey, cfg: RealServerConfig) -> Result<(), SvcError> {
        let s = self.service_mut(key).ok_or(SvcError::NoService)?;
        let a = u32::from(cfg.addr);
        let p = s
            .views
            .iter()
            .position(|v| v.addr == a && v.port == cfg.port)
            .ok_or(SvcError::NoServer)?;
        if let (Some(v), Some(r)) = (s.views.get_mut(p), s.servers.get_mut(p)) {
            v.weight = cfg.weight;
            r.cfg = cfg;
            Service::refresh_overload(v, &r.cfg);
        }
        s.rebuild();
        Ok(())
    }

    /// ipvsadm -d. Its connections keep forwarding until they expire.
    pub fn delete_server(
        &mut self,
        key: ServiceKey,
        addr: Ipv4Addr,
        port: u16,
    ) -> Result<(), SvcError> {
        let s = self.service_mut(key).ok_or(SvcError::NoService)?;
        let a = u32::from(addr);
        let p = s
            .views
            .iter()
            .position(|v| v.addr == a && v.port == port)
            .ok_or(SvcError::NoServer)?;
        s.views.remove(p);
        s.servers.remove(p);
        s.rebuild();
        self.fast_rebuild();
        Ok(())
    }

    /// Marks a server up or down (health checks).
    pub fn set_available(
        &mut self,
        key: ServiceKey,
        addr: Ipv4Addr,
        port: u16,
        up: bool,
    ) -> Result<(), SvcError> {
        let s = self.service_mut(key).ok_or(SvcError::NoService)?;
        let a = u32::from(addr);
        let v = s
            .views
            .iter_mut()
            .find(|v| v.addr == a && v.port == port)
            .ok_or(SvcError::NoServer)?;
        v.available = up;
        s.rebuild();
        Ok(())
    }

    fn service_mut(&mut self, key: ServiceKey) -> Option<&mut Service> {
        let id = *self.by_key.get(&key)?;
        self.services.get_mut(usize::from(id))?.as_mut()
    }

    /// The service for a packet to `daddr:dport` (exact port first, then port zero).
    #[inline]
    pub fn find(&self, proto: u8, daddr: u32, dport: u16) -> Option<u16> {
        if self.vips.is_empty() {
            return None;
        }
        self.by_key
            .get(&ServiceKey {
                proto,
                vaddr: daddr,
                vport: dport,
            })
            .or_else(|| {
                self.by_key.get(&ServiceKey {
                    proto,
                    vaddr: daddr,
                    vport: 0,
                })
            })
            .copied()
    }

    /// The service with id `id`.
    #[inline]
    pub fn get(&self, id: u16) -> Option<&Service> {
        self.services.get(usize::from(id))?.as_ref()
    }

    /// The service with id `id`, mutable.
    #[inline]
    pub fn get_mut(&mut self, id: u16) -> Option<&mut Service> {
        self.services.get_mut(usize::from(id))?.as_mut()
    }

    /// The service with key `key`.
    pub fn by_key(&self, key: ServiceKey) -> Option<&Service> {
        self.get(*self.by_key.get(&key)?)
    }

    /// True when `addr` is the virtual address of some service.
    #[inline]
    pub fn is_vip(&self, addr: u32) -> bool {
        self.vips.contains_key(&addr)
    }

    /// True when `addr` is a FullNAT local address of some service.
    pub fn is_local_addr(&self, addr: u32) -> bool {
        self.services
            .iter()
            .flatten()
            .any(|s| s.laddr.contains(addr))
    }

    /// Iterates over services.
    pub fn iter(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::NewConn;
    use crate::flow::PROTO_TCP;

    fn key() -> ServiceKey {
        ServiceKey::new(PROTO_TCP, Ipv4Addr::new(100, 96, 122, 210), 80)
    }

    fn flow(c: u32, p: u16) -> FlowKey {
        FlowKey {
            saddr: c,
            daddr: key().vaddr,
            sport: p,
            dport: 80,
            proto: PROTO_TCP,
        }
    }

    fn table(sched: SchedKind, weights: &[u32]) -> ServiceTable {
        let mut t = ServiceTable::new(0, 1);
        t.add_service(
            key(),
            ServiceConfig {
                scheduler: sched,
                ..Default::default()
            },
            Arc::default(),
        )
        .expect("add");
        for (i, w) in weights.iter().enumerate() {
            t.add_server(
                key(),
                RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 10 + i as u8), 80, *w),
                Arc::default(),
            )
            .expect("rs");
        }
        t
    }

    /// Checks the fast-path table against the services: every occupied slot describes
    /// a live server of a live service (its own and the service's counters, the
    /// service's client-address policy and timeout); returns how many live servers
    /// have no slot (displaced by a colliding id).
    fn check_fast(t: &ServiceTable) -> usize {
        let mask = t.fast.len().wrapping_sub(1);
        for (i, f) in t.fast.iter().enumerate() {
            if !ServiceTable::fast_used(f, i, mask) {
                continue;
            }
            let s = t.get(f.svc).expect("slot of a live service");
            assert!(Arc::ptr_eq(&f.svc_stats, s.stats()));
            assert!(Arc::ptr_eq(
                &f.rs_stats,
                s.rs_stats(f.rs).expect("live server")
            ));
            let need = match s.config().client_addr {
                ClientAddr::None => 0,
                ClientAddr::Toa => crate::conn::flags::CLIENT_ADDR_SENT,
                _ => FAST_NEVER,
            };
            assert_eq!(f.need_in, need);
            let est = s
                .config()
                .est_timeout
                .map_or(0, |d| crate::conn::ticks(d).max(1));
            assert_eq!(f.est_ticks, est);
        }
        let mut missing = 0;
        for s in t.iter() {
            for v in s.servers() {
                match t.fast_slot(v.id) {
                    Some(f) => assert_eq!(f.svc, s.id()),
                    None => missing += 1,
                }
            }
        }
        missing
    }

    #[test]
    fn fast_slots_follow_every_service_and_server_change() {
        let keys: Vec<ServiceKey> = (0..4)
            .map(|i| ServiceKey::new(PROTO_TCP, Ipv4Addr::new(100, 96, 122, 210), 80 + i))
            .collect();
        let mut t = ServiceTable::new(0, 1);
        let mut rng = crate::flow::XorShift64::new(11);
        let mut slotted = 0;
        for _ in 0..3000 {
            let k = keys[rng.below(4) as usize];
            let addr = Ipv4Addr::new(192, 168, 7, rng.below(48) as u8);
            let cfg = ServiceConfig {
                client_addr: match rng.below(3) {
                    0 => ClientAddr::None,
                    1 => ClientAddr::Toa,
                    _ => ClientAddr::ProxyV2,
                },
                est_timeout: (rng.below(2) == 0).then(|| Duration::from_millis(rng.below(5000))),
                ..Default::default()
            };
            let _ = match rng.below(10) {
                0 => t.add_service(k, cfg, Arc::default()).map(|_| ()),
                1 => t.delete_service(k),
                2 => t.edit_service(k, cfg),
                3..=6 => t
                    .add_server(k, RealServerConfig::new(addr, 80, 1), Arc::default())
                    .map(|_| ()),
                _ => t.delete_server(k, addr, 80),
            };
            // Ids handed out in a row never collide in a table twice their number.
            assert_eq!(check_fast(&t), 0);
            // Entries without a server (id 0) never find a slot.
            assert!(t.fast_slot(0).is_none());
            let mask = t.fast.len().wrapping_sub(1);
            slotted += (t.fast.iter().enumerate())
                .filter(|(i, f)| ServiceTable::fast_used(f, *i, mask))
                .count();
        }
        assert!(slotted > 3000, "{slotted}");
    }

    #[test]
    fn colliding_server_ids_grow_the_fast_table() {
        let mut t = table(SchedKind::Rr, &[1]);
        let first = t.by_key(key()).expect("svc").servers()[0].id;
        let size = t.fast.len();
        // Burn ids on another service until the next one lands on `first`'s slot.
        let other = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(100, 96, 122, 211), 80);
        t.add_service(other, ServiceConfig::default(), Arc::default())
            .expect("other");
        let a = Ipv4Addr::new(10, 0, 0, 1);
        while (t.next_rs_id as usize) % size != first as usize % size {
            t.add_server(other, RealServerConfig::new(a, 80, 1), Arc::default())
                .expect("burn");
            t.delete_server(other, a, 80).expect("burn");
        }
        let second = t
            .add_server(other, RealServerConfig::new(a, 80, 1), Arc::default())
            .expect("collider");
        assert_eq!(second as usize % size, first as usize % size);
        assert!(t.fast.len() > size, "the table grew");
        assert_eq!(check_fast(&t), 0);
        assert!(t.fast_slot(first).is_some() && t.fast_slot(second).is_some());
    }

    #[test]
    fn ipvsadm_add_edit_delete_semantics() {
        let mut t = table(SchedKind::Rr, &[1, 1]);
        assert_eq!(
            t.add_service(key(), ServiceConfig::default(), Arc::default()),
            Err(SvcError::ServiceExists)
        );
        let rs = RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 10), 80, 1);
        assert_eq!(
            t.add_server(key(), rs, Arc::default()),
            Err(SvcError::ServerExists)
        );
        let other = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(1, 1, 1, 1), 80);
        assert_eq!(
            t.add_server(other, rs, Arc::default()),
            Err(SvcError::NoService)
        );
        assert_eq!(
            t.delete_server(key(), Ipv4Addr::new(9, 9, 9, 9), 80),
            Err(SvcError::NoServer)
        );
        let zero = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(1, 1, 1, 1), 0);
        assert_eq!(
            t.add_service(zero, ServiceConfig::default(), Arc::default()),
            Err(SvcError::PortZeroNeedsPersistence)
        );
        assert_eq!(t.find(PROTO_TCP, key().vaddr, 80), Some(0));
        assert_eq!(t.find(PROTO_TCP, key().vaddr, 81), None);
        assert!(t.is_vip(key().vaddr));
        t.edit_service(
            key(),
            ServiceConfig {
                scheduler: SchedKind::Wrr,
                ..Default::default()
            },
        )
        .expect("edit");
        assert_eq!(
            t.by_key(key()).map(|s| s.config().scheduler),
            Some(SchedKind::Wrr)
        );
        t.apply(Command::DeleteService(key())).expect("del");
        assert!(!t.is_vip(key().vaddr));
        assert_eq!(t.find(PROTO_TCP, key().vaddr, 80), None);
        assert!(t.is_empty());
    }

    #[test]
    fn vip_ownership_and_runtime_kernel_addresses_are_sets() {
        let mut t = table(SchedKind::Rr, &[1]);
        let vip = Ipv4Addr::from(key().vaddr);
        assert!(t.vip_owned(key().vaddr));
        t.apply(Command::SetVipOwned { vip, owned: false })
            .expect("disown");
        t.apply(Command::SetVipOwned { vip, owned: false })
            .expect("twice");
        assert!(!t.vip_owned(key().vaddr));
        // Ownership does not touch the service itself.
        assert!(t.is_vip(key().vaddr));
        assert_eq!(t.find(PROTO_TCP, key().vaddr, 80), Some(0));
        assert!(t.vip_owned(u32::from(Ipv4Addr::new(10, 9, 9, 9))));
        t.apply(Command::SetVipOwned { vip, owned: true })
            .expect("own");
        assert!(t.vip_owned(key().vaddr));
        let gw = Ipv4Addr::new(192, 168, 211, 20);
        assert!(!t.is_runtime_kernel_addr(u32::from(gw)));
        t.apply(Command::SetKernelAddr {
            port: 1,
            addr: gw,
            present: true,
        })
        .expect("add");
        t.set_kernel_addr(1, gw, true);
        assert!(t.is_runtime_kernel_addr(u32::from(gw)));
        assert_eq!(t.runtime_kernel_addrs().collect::<Vec<_>>(), vec![(1, gw)]);
        t.set_kernel_addr(1, gw, false);
        assert!(!t.is_runtime_kernel_addr(u32::from(gw)));
        assert_eq!(t.runtime_kernel_addrs().count(), 0);
    }

    #[test]
    fn server_lookup_by_id_with_dense_and_sparse_ids() {
        let mut t = table(SchedKind::Rr, &[1, 2, 3]);
        let other = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(1, 1, 1, 1), 80);
        t.add_service(other, ServiceConfig::default(), Arc::default())
            .expect("other");
        // Ids interleaved with another service's, then a hole in the middle.
        for i in 0..3u8 {
            let rs = RealServerConfig::new(Ipv4Addr::new(10, 9, 9, i), 80, 1);
            t.add_server(other, rs, Arc::default()).expect("other rs");
            let rs =
                RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 20 + i), 80, 4 + u32::from(i));
            t.add_server(key(), rs, Arc::default()).expect("rs");
        }
        t.delete_server(key(), Ipv4Addr::new(192, 168, 7, 11), 80)
            .expect("delete");
        let s = t.by_key(key()).expect("svc");
        let views: Vec<RsView> = s.servers().to_vec();
        assert_eq!(views.len(), 5);
        for v in &views {
            let cfg = s.rs_config(v.id).expect("found");
            assert_eq!(
                (u32::from(cfg.addr), cfg.port, cfg.weight),
                (v.addr, v.port, v.weight)
            );
            assert!(s.rs_stats(v.id).is_some());
        }
        let max = views.iter().map(|v| v.id).max().expect("max");
        let known: Vec<u32> = views.iter().map(|v| v.id).collect();
        for id in 0..max + 8 {
            assert_eq!(s.rs_config(id).is_some(), known.contains(&id), "id {id}");
        }
        // Counting a packet reaches the right server's counters.
        let last = views.last().expect("last");
        s.count_packet(last.id, true, 60);
        assert_eq!(s.rs_stats(last.id).expect("stats").bytes_in.get(), 60);
        assert_eq!(s.rs_stats(views[0].id).expect("stats").bytes_in.get(), 0);
    }

    #[test]
    fn weight_zero_drains_without_touching_existing() {
        let mut t = table(SchedKind::Rr, &[1, 1]);
        let mut conns = ConnTable::new(64, 1);
        let s = t.get_mut(0).expect("svc");
        let a = s
            .schedule(&mut conns, &flow(1, 1000), Duration::ZERO)
            .expect("a");
        s.conn_opened(a.rs);
        let drained = s.rs_config(a.rs).copied().expect("cfg");
        t.edit_server(
            key(),
            RealServerConfig {
                weight: 0,
                ..drained
            },
        )
        .expect("edit");
        let s = t.get_mut(0).expect("svc");
        for i in 0..10 {
            let b = s
                .schedule(&mut conns, &flow(2 + i, 1000), Duration::ZERO)
                .expect("b");
            assert_ne!(b.rs, a.rs);
        }
        // The drained server keeps its counts and identity for the existing connection.
        assert_eq!(
            s.servers()
                .iter()
                .find(|v| v.id == a.rs)
                .map(|v| (v.inactive, v.weight)),
            Some((1, 0))
        );
        s.conn_activity(a.rs, false, true);
        s.conn_closed(a.rs, true);
        assert_eq!(
            s.servers().iter().find(|v| v.id == a.rs).map(|v| v.active),
            Some(0)
        );
        // Deleting the last usable server: no server.
        let other = s
            .servers()
            .iter()
            .find(|v| v.id != a.rs)
            .map(|v| Ipv4Addr::from(v.addr))
            .expect("o");
        t.delete_server(key(), other, 80).expect("del");
        let s = t.get_mut(0).expect("svc");
        assert_eq!(
            s.schedule(&mut conns, &flow(99, 1), Duration::ZERO),
            Err(SchedFail::NoServer)
        );
        assert_eq!(s.no_server(), 1);
    }

    #[test]
    fn allow_and_deny_lists() {
        let mut t = table(SchedKind::Rr, &[1]);
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            allow: vec![Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8).expect("p")],
            deny: vec![Prefix::new(Ipv4Addr::new(10, 1, 0, 0), 16).expect("p")],
            ..Default::default()
        };
        t.edit_service(key(), cfg).expect("edit");
        let mut conns = ConnTable::new(8, 1);
        let s = t.get_mut(0).expect("svc");
        assert!(s
            .schedule(&mut conns, &flow(0x0a02_0304, 1), Duration::ZERO)
            .is_ok());
        assert_eq!(
            s.schedule(&mut conns, &flow(0x0a01_0304, 1), Duration::ZERO),
            Err(SchedFail::Denied)
        );
        assert_eq!(
            s.schedule(&mut conns, &flow(0x0b00_0001, 1), Duration::ZERO),
            Err(SchedFail::Denied)
        );
        assert_eq!(s.denied(), 2);
    }

    #[test]
    fn persistence_template_binds_client_network() {
        let mut t = ServiceTable::new(0, 1);
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            persistence: Some(Persistence {
                timeout: Duration::from_secs(300),
                netmask: 24,
            }),
            ..Default::default()
        };
        t.add_service(key(), cfg, Arc::default()).expect("svc");
        for i in 0..3 {
            t.add_server(
                key(),
                RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 10 + i), 80, 1),
                Arc::default(),
            )
            .expect("rs");
        }
        let mut conns = ConnTable::new(64, 1);
        let s = t.get_mut(0).expect("svc");
        let first = s
            .schedule(&mut conns, &flow(0x0a00_0001, 1000), Duration::ZERO)
            .expect("first");
        assert!(first.template.is_some());
        let c = conns
            .insert(
                NewConn {
                    in_key: flow(0x0a00_0001, 1000),
                    template: first.template,
                    timeout: Duration::from_secs(10),
                    ..Default::default()
                },
                Duration::ZERO,
            )
            .expect("conn");
        // Same /24, other host and port: same server, same template; rr would move on.
        for i in 2..10 {
            let again = s
                .schedule(
                    &mut conns,
                    &flow(0x0a00_0000 + i, 2000 + i as u16),
                    Duration::from_secs(1),
                )
                .expect("again");
            assert_eq!((again.rs, again.template), (first.rs, first.template));
        }
        let elsewhere = s
            .schedule(&mut conns, &flow(0x0a00_0101, 1000), Duration::from_secs(1))
            .expect("other");
        assert_ne!(elsewhere.template, first.template);
        // The template outlives its connection by the persistence timeout, then goes.
        assert!(conns.get(c).is_some());
        conns.expire(Duration::from_secs(200), |_| {});
        assert!(conns.get(c).is_none());
        assert!(first.template.and_then(|t| conns.get(t)).is_some());
        conns.expire(Duration::from_secs(400), |_| {});
        assert_eq!(
            conns.lookup_template(PROTO_TCP, 0x0a00_0000, key().vaddr, 80),
            None
        );
        // A server marked down invalidates its template.
        let s = t.get_mut(0).expect("svc");
        let p = s
            .schedule(&mut conns, &flow(0x0a00_0001, 1), Duration::from_secs(400))
            .expect("p");
        let addr = Ipv4Addr::from(p.raddr);
        t.set_available(key(), addr, 80, false).expect("down");
        let s = t.get_mut(0).expect("svc");
        let q = s
            .schedule(&mut conns, &flow(0x0a00_0001, 2), Duration::from_secs(401))
            .expect("q");
        assert_ne!(q.rs, p.rs);
    }

    #[test]
    fn thresholds_overload_and_recover() {
        let mut t = ServiceTable::new(0, 1);
        t.add_service(
            key(),
            ServiceConfig {
                scheduler: SchedKind::Rr,
                ..Default::default()
            },
            Arc::default(),
        )
        .expect("s");
        let rs = RealServerConfig {
            upper_threshold: 4,
            ..RealServerConfig::new(Ipv4Addr::new(10, 0, 0, 1), 80, 1)
        };
        let id = t.add_server(key(), rs, Arc::default()).expect("rs");
        let mut conns = ConnTable::new(8, 1);
        let s = t.get_mut(0).expect("svc");
        for _ in 0..4 {
            let r = s
                .schedule(&mut conns, &flow(1, 1), Duration::ZERO)
                .expect("ok");
            s.conn_opened(r.rs);
        }
        assert_eq!(
            s.schedule(&mut conns, &flow(1, 1), Duration::ZERO),
            Err(SchedFail::NoServer)
        );
        s.conn_closed(id, false);
        assert!(
            s.schedule(&mut conns, &flow(1, 1), Duration::ZERO).is_err(),
            "3 is not below 3/4 of 4"
        );
        s.conn_closed(id, false);
        assert!(s.schedule(&mut conns, &flow(1, 1), Duration::ZERO).is_ok());
        assert_eq!(s.rs_stats(id).map(|st| st.conns.get()), Some(4));
        assert_eq!(s.stats().conns.get(), 4);
    }
}
