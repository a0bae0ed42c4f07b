//! The OSPF instance the daemon drives: interfaces (§9), neighbors (§10), flooding (§13),
//! origination (§12.4), aging (§14) and SPF (§16), sans-IO in the quinn-proto style.
//!
//! Inputs: [`Instance::handle_packet`], [`Instance::handle_timeout`],
//! [`Instance::interface_up`] / [`Instance::interface_down`], [`Instance::announce`] /
//! [`Instance::withdraw`], [`Instance::set_max_metric`], [`Instance::shutdown`].
//! Outputs: [`Instance::poll_transmit`], [`Instance::poll_timeout`],
//! [`Instance::poll_event`], [`Instance::routes`] and the show data.
//!
//! One area per instance (all interfaces belong to `InstanceConfig::area_id`).

use crate::auth::{self, AuthKey};
use crate::lsa::{
    ExternalLsa, Lsa, LsaBody, LsaHeaderRepr, LsaKey, LsaType, NetworkLsa, RouterFlags, RouterLink,
    RouterLinkType, RouterLsa, LSA_HEADER_LEN, MAX_AGE, MAX_SEQ,
};
use crate::lsdb::{self, Lsdb, NextSeq};
use crate::packet::{
    Body, DbDescription, DdFlags, Hello, LsRequestEntry, LsUpdate, Repr, WireLsa, HEADER_LEN,
};
use crate::spf::{self, RouteDiff, RouteTable, Spf, SpfInterface};

/// Extra wait before a shutdown flush that follows a recent origination, beyond
/// MinLSArrival: covers the delay between our send and the neighbor's install of the
/// previous instance, from which the neighbor measures MinLSArrival (§13 step 5(a)).
const FLUSH_SKEW_MARGIN: Duration = Duration::from_millis(200);
use crate::{DropReason, Ipv4Net, Options, RxContext, ALL_D_ROUTERS, ALL_SPF_ROUTERS};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

/// MaxLinkMetric of RFC 6987 (stub router advertisement).
pub const MAX_LINK_METRIC: u16 = 0xffff;
/// IPv4 header length assumed when sizing packets to the MTU.
const IP_HEADER_LEN: usize = 20;
/// How long acknowledgments are delayed (§13.5: less than RxmtInterval).
const ACK_DELAY: Duration = Duration::from_millis(500);

/// Interface network types supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkType {
    /// Broadcast (DR/BDR election).
    Broadcast,
    /// Point-to-point.
    PointToPoint,
}

/// Per-interface configuration.
#[derive(Debug, Clone)]
pub struct InterfaceConfig {
    /// Interface index (the daemon's key for the interface).
    pub ifindex: u32,
    /// Interface name (for show output).
    pub name: String,
    /// Interface address.
    pub addr: Ipv4Addr,
    /// Prefix length of the interface subnet.
    pub prefix_len: u8,
    /// Network type.
    pub network: NetworkType,
    /// Output cost.
    pub cost: u16,
    /// Router priority (0: never DR/BDR).
    pub priority: u8,
    /// HelloInterval.
    pub hello_interval: Duration,
    /// RouterDeadInterval.
    pub dead_interval: Duration,
    /// RxmtInterval.
    pub retransmit_interval: Duration,
    /// InfTransDelay in seconds, added to LSA ages when sending.
    pub transmit_delay: u16,
    /// Passive: no hellos, no adjacencies, subnet announced as a stub.
    pub passive: bool,
    /// Interface MTU.
    pub mtu: u16,
    /// Accept Database Descriptions with a larger MTU (FRR `ip ospf mtu-ignore`).
    pub mtu_ignore: bool,
    /// Authentication.
    pub auth: AuthKey,
}

impl InterfaceConfig {
    /// A broadcast interface with FRR's defaults (cost 10, priority 1, hello 10 s, dead
    /// 40 s, retransmit 5 s, MTU 1500, no authentication).
    pub fn new(ifindex: u32, name: &str, addr: Ipv4Addr, prefix_len: u8) -> Self {
        Self {
            ifindex,
            name: name.to_string(),
            addr,
            prefix_len,
            network: NetworkType::Broadcast,
            cost: 10,
            priority: 1,
            hello_interval: Duration::from_secs(10),
            dead_interval: Duration::from_secs(40),
            retransmit_interval: Duration::from_secs(5),
            transmit_delay: 1,
            passive: false,
            mtu: 1500,
            mtu_ignore: false,
            auth: AuthKey::Null,
        }
    }
}

/// Instance configuration.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// Router ID.
    pub router_id: Ipv4Addr,
    /// The area all interfaces belong to.
    pub area_id: Ipv4Addr,
    /// Interfaces.
    pub interfaces: Vec<InterfaceConfig>,
    /// MinLSInterval (default 5 s; 0 allowed, as FRR's `timers throttle lsa all 0`).
    pub min_ls_interval: Duration,
    /// MinLSArrival (default 1 s).
    pub min_ls_arrival: Duration,
    /// Advertise max-metric (RFC 6987) for this long after start.
    pub stub_router_on_startup: Option<Duration>,
    /// First cryptographic sequence number (e.g. wall-clock seconds) so that it never goes
    /// backwards across restarts.
    pub crypto_seq_base: u32,
    /// How long [`Instance::shutdown`] waits for acknowledgments of the flushed LSAs.
    pub shutdown_timeout: Duration,
}

impl InstanceConfig {
    /// A configuration with defaults and no interfaces.
    pub fn new(router_id: Ipv4Addr) -> Self {
        Self {
            router_id,
            area_id: Ipv4Addr::UNSPECIFIED,
            interfaces: Vec::new(),
            min_ls_interval: Duration::from_secs(5),
            min_ls_arrival: Duration::from_secs(1),
            stub_router_on_startup: None,
            crypto_seq_base: 0,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

/// An announced prefix as an AS-external route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalSpec {
    /// Type 2 (E2) when true, type 1 (E1) otherwise.
    pub type2: bool,
    /// External metric (24 bits).
    pub metric: u32,
    /// Route tag.
    pub tag: u32,
    /// Forwarding address (0.0.0.0: this router).
    pub forwarding: Ipv4Addr,
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Outgoing interface.
    pub ifindex: u32,
    /// IP destination (224.0.0.5, 224.0.0.6 or a neighbor address).
    pub dst: Ipv4Addr,
    /// The OSPF packet (IP payload), digest included.
    pub bytes: Vec<u8>,
}

/// Interface states (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InterfaceState {
    /// Down.
    Down,
    /// Passive interface (no protocol traffic; subnet is a stub).
    Passive,
    /// Waiting for the Wait timer before electing the DR.
    Waiting,
    /// Point-to-point.
    PointToPoint,
    /// Neither DR nor BDR.
    DrOther,
    /// Backup designated router.
    Backup,
    /// Designated router.
    Dr,
}

/// Neighbor states (§10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NeighborState {
    /// Down.
    Down,
    /// Attempt (NBMA only; unused).
    Attempt,
    /// Init.
    Init,
    /// 2-Way.
    TwoWay,
    /// ExStart.
    ExStart,
    /// Exchange.
    Exchange,
    /// Loading.
    Loading,
    /// Full.
    Full,
}

/// Events for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A neighbor changed state.
    NeighborStateChange {
        /// Interface.
        ifindex: u32,
        /// Neighbor router ID.
        router_id: Ipv4Addr,
        /// Neighbor address.
        addr: Ipv4Addr,
        /// Old state.
        old: NeighborState,
        /// New state.
        new: NeighborState,
    },
    /// The routing table changed.
    RoutesChanged(RouteDiff),
    /// Shutdown finished: `acked` is true when every flushed LSA was acknowledged, false
    /// when the shutdown timeout expired first.
    ShutdownComplete {
        /// All flushes acknowledged.
        acked: bool,
    },
    /// A received packet was dropped.
    DroppedPacket(DropReason),
}

/// Show data for one neighbor (FRR's `show ip ospf neighbor` columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborInfo {
    /// Neighbor ID.
    pub router_id: Ipv4Addr,
    /// Priority.
    pub priority: u8,
    /// State.
    pub state: NeighborState,
    /// Role on the segment: "DR", "Backup", "DROther" or "" on point-to-point.
    pub role: &'static str,
    /// Time since the neighbor reached its current state.
    pub up_time: Duration,
    /// Time until the inactivity timer fires.
    pub dead_time: Duration,
    /// Neighbor interface address.
    pub addr: Ipv4Addr,
    /// Interface name.
    pub interface: String,
    /// Retransmission list length.
    pub rxmt_len: usize,
    /// Request list length.
    pub request_len: usize,
    /// Database summary list length.
    pub db_summary_len: usize,
}

/// Show data for one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Name.
    pub name: String,
    /// Address and prefix.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// State.
    pub state: InterfaceState,
    /// DR address (0 if none).
    pub dr: Ipv4Addr,
    /// BDR address (0 if none).
    pub bdr: Ipv4Addr,
    /// Cost.
    pub cost: u16,
    /// Number of neighbors.
    pub neighbors: usize,
    /// Number of Full neighbors.
    pub adjacent: usize,
}

/// Show data for one LSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseEntry {
    /// Header with the current age.
    pub header: LsaHeaderRepr,
    /// True when this router originated it.
    pub self_originated: bool,
}

#[derive(Debug, Clone)]
struct Neighbor {
    router_id: Ipv4Addr,
    addr: Ipv4Addr,
    priority: u8,
    state: NeighborState,
    state_since: Duration,
    dr: Ipv4Addr,
    bdr: Ipv4Addr,
    options: Options,
    dead_at: Duration,
    master: bool,
    dd_seq: u32,
    last_dd_rx: Option<(u8, u8, u32)>,
    last_dd_tx: Option<DbDescription>,
    last_dd_tx_more: bool,
    dd_rxmt_at: Option<Duration>,
    db_summary: VecDeque<LsaHeaderRepr>,
    ls_request: BTreeMap<LsaKey, LsaHeaderRepr>,
    lsr_rxmt_at: Option<Duration>,
    retransmit: BTreeMap<LsaKey, (LsaHeaderRepr, Duration)>,
    crypto_seq: Option<u32>,
}

#[derive(Debug, Clone)]
struct Iface {
    cfg: InterfaceConfig,
    state: InterfaceState,
    dr: Ipv4Addr,
    bdr: Ipv4Addr,
    nbrs: BTreeMap<Ipv4Addr, Neighbor>,
    hello_at: Option<Duration>,
    wait_at: Option<Duration>,
    delayed_acks: Vec<LsaHeaderRepr>,
    ack_at: Option<Duration>,
    pending_flood: Vec<LsaKey>,
}

impl Iface {
    fn net(&self) -> Ipv4Net {
        Ipv4Net::new(self.cfg.addr, self.cfg.prefix_len).unwrap_or(Ipv4Net {
            addr: self.cfg.addr,
            len: 32,
        })
    }
    fn is_up(&self) -> bool {
        !matches!(self.state, InterfaceState::Down | InterfaceState::Passive)
    }
    fn dr_or_bdr(&self) -> bool {
        matches!(self.state, InterfaceState::Dr | InterfaceState::Backup)
    }
    fn p2p(&self) -> bool {
        self.cfg.network == NetworkType::PointToPoint
    }
    /// Destination for flooding and delayed acks (§13.3 step 5, §13.5).
    fn flood_dst(&self) -> Ipv4Addr {
        if self.p2p() || self.dr_or_bdr() {
            ALL_SPF_ROUTERS
        } else {
            ALL_D_ROUTERS
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Announce {
    metric: u16,
    external: Option<ExternalSpec>,
}

/// The OSPF instance.
#[derive(Debug)]
pub struct Instance {
    router_id: Ipv4Addr,
    area_id: Ipv4Addr,
    min_ls_interval: Duration,
    min_ls_arrival: Duration,
    shutdown_timeout: Duration,
    ifaces: Vec<Iface>,
    lsdb: Lsdb,
    spf: Spf,
    routes: RouteTable,
    announced: BTreeMap<Ipv4Net, Announce>,
    max_metric_admin: bool,
    stub_until: Option<Duration>,
    crypto_seq: u32,
    dd_seq_seed: u32,
    last_orig: BTreeMap<LsaKey, Duration>,
    force_orig: BTreeSet<LsaKey>,
    deferred_at: Option<Duration>,
    maxage: BTreeSet<LsaKey>,
    wrap_pending: BTreeSet<LsaKey>,
    spf_full: bool,
    spf_partial: bool,
    originate_dirty: bool,
    shutdown_at: Option<Duration>,
    stopped: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: BTreeMap<DropReason, u64>,
    now: Duration,
}

fn opts() -> Options {
    Options(Options::E)
}

impl Instance {
    /// Creates an instance; interfaces start Down until [`Instance::interface_up`].
    pub fn new(config: InstanceConfig, now: Duration) -> Self {
        let ifaces = config
            .interfaces
            .into_iter()
            .map(|cfg| Iface {
                cfg,
                state: InterfaceState::Down,
                dr: Ipv4Addr::UNSPECIFIED,
                bdr: Ipv4Addr::UNSPECIFIED,
                nbrs: BTreeMap::new(),
                hello_at: None,
                wait_at: None,
                delayed_acks: Vec::new(),
                ack_at: None,
                pending_flood: Vec::new(),
            })
            .collect();
        Self {
            router_id: config.router_id,
            area_id: config.area_id,
            min_ls_interval: config.min_ls_interval,
            min_ls_arrival: config.min_ls_arrival,
            shutdown_timeout: config.shutdown_timeout,
            ifaces,
            lsdb: Lsdb::new(),
            spf: Spf::new(),
            routes: RouteTable::new(),
            announced: BTreeMap::new(),
            max_metric_admin: false,
            stub_until: config.stub_router_on_startup.map(|d| now + d),
            crypto_seq: config.crypto_seq_base,
            dd_seq_seed: config.crypto_seq_base ^ u32::from(config.router_id),
            last_orig: BTreeMap::new(),
            force_orig: BTreeSet::new(),
            deferred_at: None,
            maxage: BTreeSet::new(),
            wrap_pending: BTreeSet::new(),
            spf_full: false,
            spf_partial: false,
            originate_dirty: true,
            shutdown_at: None,
            stopped: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: BTreeMap::new(),
            now,
        }
    }

    /// This router's ID.
    pub fn router_id(&self) -> Ipv4Addr {
        self.router_id
    }

    // ---------------------------------------------------------------- outputs

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant [`Instance::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        let mut t: Option<Duration> = None;
        let mut m = |d: Option<Duration>| {
            if let Some(d) = d {
                t = Some(t.map_or(d, |x| x.min(d)));
            }
        };
        for i in &self.ifaces {
            m(i.hello_at);
            m(i.wait_at);
            m(i.ack_at);
            for n in i.nbrs.values() {
                m(Some(n.dead_at));
                m(n.dd_rxmt_at);
                m(n.lsr_rxmt_at);
                m(n.retransmit.values().map(|(_, at)| *at).min());
            }
        }
        m(self.lsdb.next_deadline(self.now, self.router_id));
        m(self.deferred_at);
        m(self.stub_until);
        m(self.shutdown_at);
        t
    }

    /// The current routing table.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The link-state database.
    pub fn lsdb(&self) -> &Lsdb {
        &self.lsdb
    }

    /// Counts of dropped packets by reason.
    pub fn drop_counts(&self) -> &BTreeMap<DropReason, u64> {
        &self.drops
    }

    /// SPF runs so far: `(full Dijkstra runs, prefix-only recomputations)`.
    pub fn spf_runs(&self) -> (u64, u64) {
        (self.spf.full_runs, self.spf.partial_runs)
    }

    /// Neighbors, as `show ip ospf neighbor` (times relative to `now`).
    pub fn neighbors(&self, now: Duration) -> Vec<NeighborInfo> {
        let mut v = Vec::new();
        for i in &self.ifaces {
            for n in i.nbrs.values() {
                let role = if i.p2p() {
                    ""
                } else if n.addr == i.dr {
                    "DR"
                } else if n.addr == i.bdr {
                    "Backup"
                } else {
                    "DROther"
                };
                v.push(NeighborInfo {
                    router_id: n.router_id,
                    priority: n.priority,
                    state: n.state,
                    role,
                    up_time: now.saturating_sub(n.state_since),
                    dead_time: n.dead_at.saturating_sub(now),
                    addr: n.addr,
                    interface: i.cfg.name.clone(),
                    rxmt_len: n.retransmit.len(),
                    request_len: n.ls_request.len(),
                    db_summary_len: n.db_summary.len(),
                });
            }
        }
        v
    }

    /// Interfaces, as `show ip ospf interface`.
    pub fn interfaces(&self) -> Vec<InterfaceInfo> {
        self.ifaces
            .iter()
            .map(|i| InterfaceInfo {
                ifindex: i.cfg.ifindex,
                name: i.cfg.name.clone(),
                addr: i.cfg.addr,
                prefix_len: i.cfg.prefix_len,
                state: i.state,
                dr: i.dr,
                bdr: i.bdr,
                cost: i.cfg.cost,
                neighbors: i.nbrs.len(),
                adjacent: i
                    .nbrs
                    .values()
                    .filter(|n| n.state == NeighborState::Full)
                    .count(),
            })
            .collect()
    }

    /// The database, as `show ip ospf database`.
    pub fn database(&self, now: Duration) -> Vec<DatabaseEntry> {
        self.lsdb
            .iter()
            .map(|(k, e)| DatabaseEntry {
                header: e.header(now),
                self_originated: k.adv_router == self.router_id,
            })
            .collect()
    }

    // ---------------------------------------------------------------- inputs

    /// The interface came up (§9.3 InterfaceUp).
    pub fn interface_up(&mut self, now: Duration, ifindex: u32) {
        self.now = now;
        if self.stopped {
            return;
        }
        if let Some(ix) = self.iface_ix(ifindex) {
            self.ism_interface_up(now, ix);
        }
        self.finish(now);
    }

    /// The interface went down (§9.3 InterfaceDown).
    pub fn interface_down(&mut self, now: Duration, ifindex: u32) {
        self.now = now;
        if let Some(ix) = self.iface_ix(ifindex) {
            self.ism_interface_down(now, ix);
        }
        self.finish(now);
    }

    /// A fast failure detector (BFD, RFC 5882 §4.1) reports that the path to the neighbor
    /// whose interface address is `addr` on `ifindex` went down: the neighbor is declared
    /// dead at once (§10.3 KillNbr), as if its inactivity timer had fired, so its routes
    /// go without waiting for the dead interval. The caller must not report a session the
    /// remote took AdminDown (RFC 5882 §3.2): that is not a failure. Returns whether a
    /// neighbor matched. A neighbor that is in fact alive comes back through its hellos.
    pub fn neighbor_dead(&mut self, now: Duration, ifindex: u32, addr: Ipv4Addr) -> bool {
        self.now = now;
        let Some(ix) = self.iface_ix(ifindex) else {
            return false;
        };
        let rid = self.ifaces[ix]
            .nbrs
            .iter()
            .find(|(_, n)| n.addr == addr && n.state > NeighborState::Down)
            .map(|(rid, _)| *rid);
        let Some(rid) = rid else {
            return false;
        };
        self.nsm(now, ix, rid, NsmEvent::KillNbr);
        self.finish(now);
        true
    }

    /// Announces `prefix`: as a stub link of the router-LSA with `metric`, or as an
    /// AS-external-LSA when `as_external` is given. Re-originates at once unless
    /// MinLSInterval forbids, then at the earliest allowed instant.
    pub fn announce(
        &mut self,
        now: Duration,
        prefix: Ipv4Net,
        metric: u16,
        as_external: Option<ExternalSpec>,
    ) {
        self.now = now;
        if self.stopped {
            return;
        }
        self.announced.insert(
            prefix,
            Announce {
                metric,
                external: as_external,
            },
        );
        self.originate_dirty = true;
        self.finish(now);
    }

    /// Withdraws a prefix announced with [`Instance::announce`].
    pub fn withdraw(&mut self, now: Duration, prefix: Ipv4Net) {
        self.now = now;
        if self.announced.remove(&prefix).is_some() {
            self.originate_dirty = true;
        }
        self.finish(now);
    }

    /// Advertises (or stops advertising) max-metric on transit links (RFC 6987).
    pub fn set_max_metric(&mut self, now: Duration, on: bool) {
        self.now = now;
        self.max_metric_admin = on;
        self.originate_dirty = true;
        self.finish(now);
    }

    /// Graceful shutdown: flushes every self-originated LSA (premature aging) and reports
    /// [`Event::ShutdownComplete`] once all are acknowledged (or the shutdown timeout).
    pub fn shutdown(&mut self, now: Duration) {
        self.now = now;
        if self.stopped || self.shutdown_at.is_some() {
            return;
        }
        self.shutdown_at = Some(now + self.shutdown_timeout);
        self.originate_dirty = true;
        self.finish(now);
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        if self.stopped {
            return;
        }
        if self.stub_until.is_some_and(|t| now >= t) {
            self.stub_until = None;
            self.originate_dirty = true;
        }
        if self.deferred_at.is_some_and(|t| now >= t) {
            self.deferred_at = None;
            self.originate_dirty = true;
        }
        for ix in 0..self.ifaces.len() {
            if self.ifaces[ix].wait_at.is_some_and(|t| now >= t) {
                self.ifaces[ix].wait_at = None;
                // §9.3: WaitTimer in Waiting → elect DR
                if self.ifaces[ix].state == InterfaceState::Waiting {
                    self.elect_dr(now, ix);
                }
            }
            if self.ifaces[ix].hello_at.is_some_and(|t| now >= t) {
                self.send_hello(now, ix, false);
                let hi = self.ifaces[ix].cfg.hello_interval;
                self.ifaces[ix].hello_at = Some(now + hi);
            }
            let rids: Vec<Ipv4Addr> = self.ifaces[ix].nbrs.keys().copied().collect();
            for rid in rids {
                let Some(n) = self.ifaces[ix].nbrs.get(&rid) else {
                    continue;
                };
                if now >= n.dead_at {
                    self.nsm(now, ix, rid, NsmEvent::InactivityTimer);
                    continue;
                }
                if n.dd_rxmt_at.is_some_and(|t| now >= t) {
                    self.retransmit_dd(now, ix, rid);
                }
                if self.ifaces[ix]
                    .nbrs
                    .get(&rid)
                    .and_then(|n| n.lsr_rxmt_at)
                    .is_some_and(|t| now >= t)
                {
                    self.send_ls_request(now, ix, rid);
                }
                self.retransmit_lsas(now, ix, rid);
            }
            if self.ifaces[ix].ack_at.is_some_and(|t| now >= t) {
                self.flush_delayed_acks(ix);
            }
        }
        // §12.4: refresh self-originated LSAs at LSRefreshTime
        for k in self.lsdb.refresh_due(now, self.router_id) {
            self.force_orig.insert(k);
            self.originate_dirty = true;
        }
        // §14: LSAs that aged to MaxAge are flooded, then removed
        for k in self.lsdb.max_age_keys(now) {
            if self.maxage.insert(k) {
                self.flood(now, k, None);
            }
        }
        self.finish(now);
    }

    /// A received OSPF packet (the IP payload) on `ifindex` from `src` to `dst`.
    pub fn handle_packet(
        &mut self,
        now: Duration,
        ifindex: u32,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        bytes: &[u8],
    ) {
        self.now = now;
        if self.stopped {
            return;
        }
        let Some(ix) = self.iface_ix(ifindex).filter(|&ix| self.ifaces[ix].is_up()) else {
            self.dropped(DropReason::UnknownInterface);
            return;
        };
        let i = &self.ifaces[ix];
        let ctx = RxContext {
            router_id: self.router_id,
            area_id: self.area_id,
            if_net: i.net(),
            if_addr: i.cfg.addr,
            point_to_point: i.p2p(),
            dr_or_bdr: i.dr_or_bdr(),
            auth: &i.cfg.auth,
        };
        let nbrs = &i.nbrs;
        let (repr, seq) = match crate::validate(&ctx, src, dst, bytes, |rid, _| {
            nbrs.get(&rid).and_then(|n| n.crypto_seq)
        }) {
            Ok(x) => x,
            Err(r) => {
                self.dropped(r);
                return;
            }
        };
        let rid = repr.router_id;
        match repr.body {
            Body::Hello(h) => self.rx_hello(now, ix, src, rid, h),
            body => {
                let p2p = self.ifaces[ix].p2p();
                match self.ifaces[ix].nbrs.get(&rid) {
                    Some(n) if p2p || n.addr == src => {}
                    _ => {
                        self.dropped(DropReason::NoNeighbor);
                        return;
                    }
                }
                match body {
                    Body::DbDescription(d) => self.rx_dd(now, ix, rid, d),
                    Body::LsRequest(r) => self.rx_lsr(now, ix, rid, r),
                    Body::LsUpdate(u) => self.rx_lsu(now, ix, rid, u),
                    Body::LsAck(a) => self.rx_ack(now, ix, rid, a),
                    Body::Hello(_) => {}
                }
            }
        }
        if let (Some(s), Some(n)) = (seq, self.ifaces[ix].nbrs.get_mut(&rid)) {
            n.crypto_seq = Some(s);
        }
        self.finish(now);
    }

    // ---------------------------------------------------------------- helpers

    fn iface_ix(&self, ifindex: u32) -> Option<usize> {
        self.ifaces.iter().position(|i| i.cfg.ifindex == ifindex)
    }

    fn dropped(&mut self, r: DropReason) {
        *self.drops.entry(r).or_insert(0) += 1;
        self.events.push_back(Event::DroppedPacket(r));
    }

    fn send(&mut self, ix: usize, dst: Ipv4Addr, body: Body) -> Vec<u8> {
        self.crypto_seq = self.crypto_seq.wrapping_add(1);
        let i = &self.ifaces[ix];
        let repr = Repr {
            router_id: self.router_id,
            area_id: self.area_id,
            auth: i.cfg.auth.field(self.crypto_seq),
            body,
        };
        let mut b = repr.to_bytes();
        auth::sign(&mut b, &i.cfg.auth);
        self.transmits.push_back(Transmit {
            ifindex: i.cfg.ifindex,
            dst,
            bytes: b.clone(),
        });
        b
    }

    fn max_body(&self, ix: usize) -> usize {
        let i = &self.ifaces[ix];
        usize::from(i.cfg.mtu)
            .saturating_sub(IP_HEADER_LEN + HEADER_LEN + i.cfg.auth.digest_len())
            .max(64)
    }

    fn nbr_dst(&self, ix: usize, rid: Ipv4Addr) -> Ipv4Addr {
        let i = &self.ifaces[ix];
        match i.nbrs.get(&rid) {
            Some(n) if !i.p2p() => n.addr,
            _ => ALL_SPF_ROUTERS,
        }
    }

    fn send_hello(&mut self, _now: Duration, ix: usize, empty: bool) {
        let i = &self.ifaces[ix];
        let h = Hello {
            mask: if i.p2p() {
                Ipv4Addr::UNSPECIFIED
            } else {
                i.net().mask()
            },
            hello_interval: i.cfg.hello_interval.as_secs().min(u64::from(u16::MAX)) as u16,
            options: opts(),
            priority: i.cfg.priority,
            dead_interval: i.cfg.dead_interval.as_secs().min(u64::from(u32::MAX)) as u32,
            dr: i.dr,
            bdr: i.bdr,
            neighbors: if empty {
                Vec::new()
            } else {
                i.nbrs
                    .values()
                    .filter(|n| n.state >= NeighborState::Init)
                    .map(|n| n.router_id)
                    .collect()
            },
        };
        self.send(ix, ALL_SPF_ROUTERS, Body::Hello(h));
    }

    fn send_lsus(&mut self, ix: usize, dst: Ipv4Addr, lsas: Vec<WireLsa>) {
        let max = self.max_body(ix).saturating_sub(4);
        let mut batch: Vec<WireLsa> = Vec::new();
        let mut size = 0;
        for w in lsas {
            if !batch.is_empty() && size + w.bytes.len() > max {
                let b = std::mem::take(&mut batch);
                self.send(
                    ix,
                    dst,
                    Body::LsUpdate(LsUpdate {
                        lsas: b,
                        discarded: 0,
                    }),
                );
                size = 0;
            }
            size += w.bytes.len();
            batch.push(w);
        }
        if !batch.is_empty() {
            self.send(
                ix,
                dst,
                Body::LsUpdate(LsUpdate {
                    lsas: batch,
                    discarded: 0,
                }),
            );
        }
    }

    fn wire_copy(&self, now: Duration, ix: usize, key: &LsaKey) -> Option<WireLsa> {
        let e = self.lsdb.get(key)?;
        let bytes = e.bytes_at(now, self.ifaces[ix].cfg.transmit_delay);
        let mut lsa = e.lsa.clone();
        lsa.header.age = u16::from_be_bytes([bytes[0], bytes[1]]);
        Some(WireLsa { lsa, bytes })
    }

    fn send_acks(&mut self, ix: usize, dst: Ipv4Addr, hdrs: Vec<LsaHeaderRepr>) {
        let per = (self.max_body(ix) / LSA_HEADER_LEN).max(1);
        for c in hdrs.chunks(per) {
            self.send(ix, dst, Body::LsAck(c.to_vec()));
        }
    }

    fn delayed_ack(&mut self, now: Duration, ix: usize, h: LsaHeaderRepr) {
        let i = &mut self.ifaces[ix];
        i.delayed_acks.push(h);
        if i.ack_at.is_none() {
            i.ack_at = Some(now + ACK_DELAY);
        }
    }

    fn flush_delayed_acks(&mut self, ix: usize) {
        let i = &mut self.ifaces[ix];
        i.ack_at = None;
        let hdrs = std::mem::take(&mut i.delayed_acks);
        let dst = i.flood_dst();
        if !hdrs.is_empty() {
            self.send_acks(ix, dst, hdrs);
        }
    }

    fn any_exchanging(&self) -> bool {
        self.ifaces.iter().any(|i| {
            i.nbrs
                .values()
                .any(|n| matches!(n.state, NeighborState::Exchange | NeighborState::Loading))
        })
    }

    fn mark_spf(&mut self, old: Option<&Lsa>, new: Option<&Lsa>) {
        if spf::topology_changed(old, new) {
            self.spf_full = true;
        } else {
            self.spf_partial = true;
        }
    }

    // ---------------------------------------------------------------- §9 interfaces

    fn ism_interface_up(&mut self, now: Duration, ix: usize) {
        let i = &mut self.ifaces[ix];
        // §9.3 InterfaceUp: Down → Point-to-point | Waiting | DROther (priority 0)
        match (i.state, i.cfg.passive, i.cfg.network) {
            (InterfaceState::Down, true, _) => i.state = InterfaceState::Passive,
            (InterfaceState::Down, false, NetworkType::PointToPoint) => {
                i.state = InterfaceState::PointToPoint;
                i.hello_at = Some(now);
            }
            (InterfaceState::Down, false, NetworkType::Broadcast) => {
                if i.cfg.priority == 0 {
                    i.state = InterfaceState::DrOther;
                } else {
                    i.state = InterfaceState::Waiting;
                    i.wait_at = Some(now + i.cfg.dead_interval);
                }
                i.hello_at = Some(now);
            }
            _ => return,
        }
        self.originate_dirty = true;
    }

    fn ism_interface_down(&mut self, now: Duration, ix: usize) {
        // §9.3 InterfaceDown: any state → Down, KillNbr on every neighbor
        let rids: Vec<Ipv4Addr> = self.ifaces[ix].nbrs.keys().copied().collect();
        for rid in rids {
            self.nsm(now, ix, rid, NsmEvent::LlDown);
        }
        let i = &mut self.ifaces[ix];
        i.state = InterfaceState::Down;
        i.dr = Ipv4Addr::UNSPECIFIED;
        i.bdr = Ipv4Addr::UNSPECIFIED;
        i.hello_at = None;
        i.wait_at = None;
        i.ack_at = None;
        i.delayed_acks.clear();
        i.pending_flood.clear();
        self.originate_dirty = true;
    }

    /// §9.3 NeighborChange: re-elect in DR, Backup or DROther (ignored while Waiting).
    fn neighbor_change(&mut self, now: Duration, ix: usize) {
        if matches!(
            self.ifaces[ix].state,
            InterfaceState::Dr | InterfaceState::Backup | InterfaceState::DrOther
        ) {
            self.elect_dr(now, ix);
        }
    }

    /// §9.4: DR/BDR election.
    fn elect_dr(&mut self, now: Duration, ix: usize) {
        let i = &self.ifaces[ix];
        if i.p2p()
            || !matches!(
                i.state,
                InterfaceState::Waiting
                    | InterfaceState::Dr
                    | InterfaceState::Backup
                    | InterfaceState::DrOther
            )
        {
            return;
        }
        #[derive(Clone, Copy)]
        struct C {
            rid: Ipv4Addr,
            addr: Ipv4Addr,
            prio: u8,
            dr: Ipv4Addr,
            bdr: Ipv4Addr,
        }
        let me_addr = i.cfg.addr;
        let mut me = C {
            rid: self.router_id,
            addr: me_addr,
            prio: i.cfg.priority,
            dr: i.dr,
            bdr: i.bdr,
        };
        let others: Vec<C> = i
            .nbrs
            .values()
            .filter(|n| n.state >= NeighborState::TwoWay && n.priority > 0)
            .map(|n| C {
                rid: n.router_id,
                addr: n.addr,
                prio: n.priority,
                dr: n.dr,
                bdr: n.bdr,
            })
            .collect();
        let run = |me: C| -> (Ipv4Addr, Ipv4Addr) {
            let mut cs = others.clone();
            if me.prio > 0 {
                cs.push(me);
            }
            let best = |v: Vec<C>| {
                v.into_iter()
                    .max_by_key(|c| (c.prio, c.rid))
                    .map(|c| c.addr)
            };
            // step 2: BDR among routers not declaring themselves DR
            let not_dr: Vec<C> = cs.iter().copied().filter(|c| c.dr != c.addr).collect();
            let decl_bdr: Vec<C> = not_dr.iter().copied().filter(|c| c.bdr == c.addr).collect();
            let bdr = if decl_bdr.is_empty() {
                best(not_dr)
            } else {
                best(decl_bdr)
            };
            // step 3: DR among routers declaring themselves DR, else the BDR
            let decl_dr: Vec<C> = cs.iter().copied().filter(|c| c.dr == c.addr).collect();
            let dr = best(decl_dr).or(bdr);
            (
                dr.unwrap_or(Ipv4Addr::UNSPECIFIED),
                bdr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            )
        };
        let (mut dr, mut bdr) = run(me);
        // step 4: if this router newly became or ceased to be DR/BDR, repeat steps 2-3
        if (dr == me_addr) != (me.dr == me_addr) || (bdr == me_addr) != (me.bdr == me_addr) {
            me.dr = dr;
            me.bdr = bdr;
            (dr, bdr) = run(me);
        }
        let i = &mut self.ifaces[ix];
        let changed = dr != i.dr || bdr != i.bdr;
        i.dr = dr;
        i.bdr = bdr;
        i.wait_at = None;
        i.state = if dr == me_addr {
            InterfaceState::Dr
        } else if bdr == me_addr {
            InterfaceState::Backup
        } else {
            InterfaceState::DrOther
        };
        if changed {
            let rids: Vec<Ipv4Addr> = i
                .nbrs
                .values()
                .filter(|n| n.state >= NeighborState::TwoWay)
                .map(|n| n.router_id)
                .collect();
            for rid in rids {
                self.nsm(now, ix, rid, NsmEvent::AdjOk);
            }
        }
        self.originate_dirty = true;
    }

    /// §10.4: whether an adjacency should be formed with the neighbor.
    fn adjacency_ok(&self, ix: usize, rid: Ipv4Addr) -> bool {
        let i = &self.ifaces[ix];
        if i.p2p() {
            return true;
        }
        let Some(n) = i.nbrs.get(&rid) else {
            return false;
        };
        i.dr_or_bdr() || n.addr == i.dr || n.addr == i.bdr
    }

    // ---------------------------------------------------------------- §10 neighbors

    fn nsm(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, ev: NsmEvent) {
        use NeighborState as S;
        use NsmEvent as E;
        let adj = self.adjacency_ok(ix, rid);
        let dead = self.ifaces[ix].cfg.dead_interval;
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        let old = n.state;
        let new = match (old, ev) {
            // §10.3 HelloReceived: Down → Init; otherwise restart the inactivity timer
            (S::Down, E::HelloReceived) => {
                n.dead_at = now + dead;
                S::Init
            }
            (s, E::HelloReceived) => {
                n.dead_at = now + dead;
                s
            }
            // §10.3 2-WayReceived in Init: ExStart if an adjacency should form, else 2-Way
            (S::Init, E::TwoWayReceived) => {
                if adj {
                    S::ExStart
                } else {
                    S::TwoWay
                }
            }
            (s, E::TwoWayReceived) => s,
            // §10.3 1-WayReceived in 2-Way or higher: back to Init
            (s, E::OneWayReceived) if s >= S::TwoWay => S::Init,
            (s, E::OneWayReceived) => s,
            // §10.3 NegotiationDone: ExStart → Exchange
            (S::ExStart, E::NegotiationDone) => S::Exchange,
            // §10.3 ExchangeDone: Exchange → Loading, or Full if nothing to request
            (S::Exchange, E::ExchangeDone) => {
                if n.ls_request.is_empty() {
                    S::Full
                } else {
                    S::Loading
                }
            }
            // §10.3 LoadingDone: Loading → Full
            (S::Loading, E::LoadingDone) => S::Full,
            // §10.3 AdjOK?: 2-Way → ExStart when an adjacency is now wanted; ExStart or
            // higher → 2-Way when it no longer is
            (S::TwoWay, E::AdjOk) if adj => S::ExStart,
            (s, E::AdjOk) if s >= S::ExStart && !adj => S::TwoWay,
            // §10.3 SeqNumberMismatch / BadLSReq in Exchange or higher: restart at ExStart
            (s, E::SeqNumberMismatch | E::BadLsReq) if s >= S::Exchange => S::ExStart,
            // §10.3 KillNbr, InactivityTimer, LLDown: any state → Down
            (_, E::KillNbr | E::InactivityTimer | E::LlDown) => S::Down,
            (s, _) => s,
        };
        let reset = matches!(ev, E::SeqNumberMismatch | E::BadLsReq) && new == S::ExStart;
        if new == old && !reset {
            return;
        }
        n.state = new;
        n.state_since = now;
        let addr = n.addr;
        if new < S::Exchange || new == S::ExStart {
            // leaving the adjacency (or restarting it) clears the lists (§10.3)
            n.db_summary.clear();
            n.ls_request.clear();
            n.retransmit.clear();
            n.lsr_rxmt_at = None;
            n.last_dd_rx = None;
            if new != S::ExStart {
                n.dd_rxmt_at = None;
                n.last_dd_tx = None;
            }
        }
        if new == S::ExStart {
            // §10.8: claim master, new DD sequence number, send the empty I/M/MS packet
            self.dd_seq_seed = self
                .dd_seq_seed
                .wrapping_mul(1_103_515_245)
                .wrapping_add(12345);
            n.dd_seq = self.dd_seq_seed;
            n.master = true;
            self.send_dd(now, ix, rid, true);
        }
        if new == S::Exchange {
            // §10.3 NegotiationDone: the Database summary list; MaxAge LSAs go on the
            // retransmission list instead
            let rxmt = self.ifaces[ix].cfg.retransmit_interval;
            let mut sum = VecDeque::new();
            let mut rx = BTreeMap::new();
            for (k, e) in self.lsdb.iter() {
                if k.ls_type == LsaType::OpaqueLink
                    && e.origin_if != Some(self.ifaces[ix].cfg.ifindex)
                {
                    continue;
                }
                if e.is_max_age(now) {
                    rx.insert(*k, (e.header(now), now + rxmt));
                } else {
                    sum.push_back(e.header(now));
                }
            }
            if let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) {
                n.db_summary = sum;
                n.retransmit.extend(rx);
            }
        }
        if new == S::Loading {
            self.send_ls_request(now, ix, rid);
        }
        if old == S::Full || new == S::Full {
            self.originate_dirty = true;
        }
        self.events.push_back(Event::NeighborStateChange {
            ifindex: self.ifaces[ix].cfg.ifindex,
            router_id: rid,
            addr,
            old,
            new,
        });
        if new == S::Down {
            self.ifaces[ix].nbrs.remove(&rid);
        }
        // §9.2 NeighborChange: bidirectional communication gained or lost
        if (old >= S::TwoWay) != (new >= S::TwoWay) {
            self.neighbor_change(now, ix);
        }
    }

    fn rx_hello(&mut self, now: Duration, ix: usize, src: Ipv4Addr, rid: Ipv4Addr, h: Hello) {
        let i = &self.ifaces[ix];
        // §10.5: mask (not on point-to-point), intervals and the E bit must match
        if (!i.p2p() && h.mask != i.net().mask())
            || u64::from(h.hello_interval) != i.cfg.hello_interval.as_secs()
            || u64::from(h.dead_interval) != i.cfg.dead_interval.as_secs()
            || !h.options.e()
        {
            self.dropped(DropReason::HelloMismatch);
            return;
        }
        let p2p = i.p2p();
        let n = self.ifaces[ix].nbrs.entry(rid).or_insert_with(|| Neighbor {
            router_id: rid,
            addr: src,
            priority: h.priority,
            state: NeighborState::Down,
            state_since: now,
            dr: h.dr,
            bdr: h.bdr,
            options: h.options,
            dead_at: now,
            master: false,
            dd_seq: 0,
            last_dd_rx: None,
            last_dd_tx: None,
            last_dd_tx_more: false,
            dd_rxmt_at: None,
            db_summary: VecDeque::new(),
            ls_request: BTreeMap::new(),
            lsr_rxmt_at: None,
            retransmit: BTreeMap::new(),
            crypto_seq: None,
        });
        let (old_prio, old_dr, old_bdr) = (n.priority, n.dr, n.bdr);
        n.addr = src;
        n.priority = h.priority;
        n.dr = h.dr;
        n.bdr = h.bdr;
        self.nsm(now, ix, rid, NsmEvent::HelloReceived);
        if !h.neighbors.contains(&self.router_id) {
            self.nsm(now, ix, rid, NsmEvent::OneWayReceived);
            return;
        }
        self.nsm(now, ix, rid, NsmEvent::TwoWayReceived);
        if p2p {
            return;
        }
        let state = self.ifaces[ix].state;
        if state == InterfaceState::Waiting {
            // §9.3 BackupSeen: the neighbor declares itself BDR, or DR with no BDR
            if h.bdr == src || (h.dr == src && h.bdr.is_unspecified()) {
                self.elect_dr(now, ix);
            }
        } else if old_prio != h.priority
            || (old_dr == src) != (h.dr == src)
            || (old_bdr == src) != (h.bdr == src)
        {
            // §10.5: NeighborChange
            self.neighbor_change(now, ix);
        }
    }

    fn send_dd(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, initial: bool) {
        let per = (self.max_body(ix).saturating_sub(8) / LSA_HEADER_LEN).max(1);
        let mtu = self.ifaces[ix].cfg.mtu;
        let rxmt = self.ifaces[ix].cfg.retransmit_interval;
        let dst = self.nbr_dst(ix, rid);
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        let (flags, headers, more) = if initial {
            (DdFlags::I | DdFlags::M | DdFlags::MS, Vec::new(), true)
        } else {
            let k = per.min(n.db_summary.len());
            let headers: Vec<LsaHeaderRepr> = n.db_summary.drain(..k).collect();
            let more = !n.db_summary.is_empty();
            let mut f = 0;
            if more {
                f |= DdFlags::M;
            }
            if n.master {
                f |= DdFlags::MS;
            }
            (f, headers, more)
        };
        let dd = DbDescription {
            mtu,
            options: opts(),
            flags: DdFlags(flags),
            seq: n.dd_seq,
            headers,
        };
        let master = n.master;
        self.send(ix, dst, Body::DbDescription(dd.clone()));
        if let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) {
            n.last_dd_tx = Some(dd);
            n.last_dd_tx_more = more;
            n.dd_rxmt_at = if master { Some(now + rxmt) } else { None };
        }
    }

    fn retransmit_dd(&mut self, now: Duration, ix: usize, rid: Ipv4Addr) {
        let rxmt = self.ifaces[ix].cfg.retransmit_interval;
        let dst = self.nbr_dst(ix, rid);
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        n.dd_rxmt_at = None;
        // §10.8: the master retransmits its last DD until answered, signed afresh (the
        // cryptographic sequence number must never go backwards, §D.5)
        if n.master && matches!(n.state, NeighborState::ExStart | NeighborState::Exchange) {
            if let Some(dd) = n.last_dd_tx.clone() {
                n.dd_rxmt_at = Some(now + rxmt);
                self.send(ix, dst, Body::DbDescription(dd));
            }
        }
    }

    fn resend_last_dd(&mut self, ix: usize, rid: Ipv4Addr) {
        let dst = self.nbr_dst(ix, rid);
        if let Some(dd) = self.ifaces[ix]
            .nbrs
            .get(&rid)
            .and_then(|n| n.last_dd_tx.clone())
        {
            self.send(ix, dst, Body::DbDescription(dd));
        }
    }

    fn rx_dd(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, dd: DbDescription) {
        use NeighborState as S;
        let i = &self.ifaces[ix];
        if dd.mtu > i.cfg.mtu && !i.cfg.mtu_ignore {
            self.dropped(DropReason::MtuMismatch);
            return;
        }
        let Some(state) = i.nbrs.get(&rid).map(|n| n.state) else {
            return;
        };
        let key = (dd.flags.0, dd.options.0, dd.seq);
        let is_dup = i.nbrs.get(&rid).is_some_and(|n| n.last_dd_rx == Some(key));
        let state = match state {
            S::Down | S::Attempt | S::TwoWay => return,
            // §10.6 Init: treat as 2-WayReceived, then continue if ExStart
            S::Init => {
                self.nsm(now, ix, rid, NsmEvent::TwoWayReceived);
                match self.ifaces[ix].nbrs.get(&rid).map(|n| n.state) {
                    Some(S::ExStart) => S::ExStart,
                    _ => return,
                }
            }
            s => s,
        };
        let all = DdFlags::I | DdFlags::M | DdFlags::MS;
        match state {
            S::ExStart => {
                if dd.flags.0 & all == all && dd.headers.is_empty() && rid > self.router_id {
                    // §10.6: the neighbor is master; we are slave
                    if let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) {
                        n.master = false;
                        n.dd_seq = dd.seq;
                        n.options = dd.options;
                        n.dd_rxmt_at = None;
                        n.last_dd_rx = Some(key);
                    }
                    self.nsm(now, ix, rid, NsmEvent::NegotiationDone);
                    self.send_dd(now, ix, rid, false);
                } else if !dd.flags.has(DdFlags::I)
                    && !dd.flags.has(DdFlags::MS)
                    && rid < self.router_id
                    && self.ifaces[ix]
                        .nbrs
                        .get(&rid)
                        .is_some_and(|n| n.dd_seq == dd.seq)
                {
                    // §10.6: we are master and the slave acknowledged our first packet
                    if let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) {
                        n.master = true;
                        n.options = dd.options;
                    }
                    self.nsm(now, ix, rid, NsmEvent::NegotiationDone);
                    self.dd_exchange(now, ix, rid, dd);
                }
            }
            S::Exchange => {
                if is_dup {
                    // §10.6: the slave answers a duplicate by resending; the master ignores it
                    if self.ifaces[ix].nbrs.get(&rid).is_some_and(|n| !n.master) {
                        self.resend_last_dd(ix, rid);
                    }
                    return;
                }
                self.dd_exchange(now, ix, rid, dd);
            }
            S::Loading | S::Full => {
                if is_dup {
                    // §10.8: the slave keeps its last DD to answer duplicates
                    if self.ifaces[ix].nbrs.get(&rid).is_some_and(|n| !n.master) {
                        self.resend_last_dd(ix, rid);
                    }
                } else {
                    self.nsm(now, ix, rid, NsmEvent::SeqNumberMismatch);
                }
            }
            _ => {}
        }
    }

    /// §10.6, state Exchange: checks and processes the next DD in sequence.
    fn dd_exchange(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, dd: DbDescription) {
        let Some(n) = self.ifaces[ix].nbrs.get(&rid) else {
            return;
        };
        let master = n.master;
        let seq_ok = if master {
            dd.seq == n.dd_seq
        } else {
            dd.seq == n.dd_seq.wrapping_add(1)
        };
        if dd.flags.has(DdFlags::MS) == master
            || dd.flags.has(DdFlags::I)
            || dd.options != n.options
            || !seq_ok
        {
            self.nsm(now, ix, rid, NsmEvent::SeqNumberMismatch);
            return;
        }
        let mut want = Vec::new();
        for h in &dd.headers {
            let newer = match self.lsdb.get(&h.key()) {
                None => true,
                Some(e) => lsdb::compare(h, &e.header(now)) == Ordering::Greater,
            };
            if newer {
                want.push(*h);
            }
        }
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        n.last_dd_rx = Some((dd.flags.0, dd.options.0, dd.seq));
        for h in want {
            n.ls_request.insert(h.key(), h);
        }
        let send_lsr = !n.ls_request.is_empty() && n.lsr_rxmt_at.is_none();
        let more = dd.flags.has(DdFlags::M);
        if master {
            n.dd_rxmt_at = None;
            if !n.last_dd_tx_more && !more {
                self.nsm(now, ix, rid, NsmEvent::ExchangeDone);
            } else {
                n.dd_seq = n.dd_seq.wrapping_add(1);
                self.send_dd(now, ix, rid, false);
            }
        } else {
            n.dd_seq = dd.seq;
            self.send_dd(now, ix, rid, false);
            let done = self.ifaces[ix]
                .nbrs
                .get(&rid)
                .is_some_and(|n| !n.last_dd_tx_more);
            if !more && done {
                self.nsm(now, ix, rid, NsmEvent::ExchangeDone);
            }
        }
        if send_lsr
            && self.ifaces[ix].nbrs.get(&rid).is_some_and(|n| {
                matches!(n.state, NeighborState::Exchange | NeighborState::Loading)
            })
        {
            self.send_ls_request(now, ix, rid);
        }
    }

    /// §10.9: sends (or resends) a Link State Request for the head of the request list.
    fn send_ls_request(&mut self, now: Duration, ix: usize, rid: Ipv4Addr) {
        let per = (self.max_body(ix) / 12).max(1);
        let rxmt = self.ifaces[ix].cfg.retransmit_interval;
        let dst = self.nbr_dst(ix, rid);
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        if n.ls_request.is_empty() {
            n.lsr_rxmt_at = None;
            return;
        }
        n.lsr_rxmt_at = Some(now + rxmt);
        let req: Vec<LsRequestEntry> = n
            .ls_request
            .keys()
            .take(per)
            .map(|k| LsRequestEntry {
                ls_type: u32::from(k.ls_type.to_u8()),
                id: k.id,
                adv_router: k.adv_router,
            })
            .collect();
        self.send(ix, dst, Body::LsRequest(req));
    }

    fn rx_lsr(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, req: Vec<LsRequestEntry>) {
        let Some(n) = self.ifaces[ix].nbrs.get(&rid) else {
            return;
        };
        if n.state < NeighborState::Exchange {
            return;
        }
        let mut out = Vec::new();
        for e in &req {
            // §10.7: a request for an LSA not in the database is BadLSReq
            match e.key().and_then(|k| self.wire_copy(now, ix, &k)) {
                Some(w) => out.push(w),
                None => {
                    self.nsm(now, ix, rid, NsmEvent::BadLsReq);
                    return;
                }
            }
        }
        let dst = self.nbr_dst(ix, rid);
        self.send_lsus(ix, dst, out);
    }

    // ---------------------------------------------------------------- §13 flooding

    fn rx_lsu(&mut self, now: Duration, ix: usize, rid: Ipv4Addr, u: LsUpdate) {
        if self.ifaces[ix]
            .nbrs
            .get(&rid)
            .map_or(true, |n| n.state < NeighborState::Exchange)
        {
            return;
        }
        let mut direct = Vec::new();
        let mut send_back = Vec::new();
        for w in u.lsas {
            if !self.ifaces[ix].nbrs.contains_key(&rid) {
                break;
            }
            self.rx_lsa(now, ix, rid, w, &mut direct, &mut send_back);
        }
        let dst = self.nbr_dst(ix, rid);
        if !direct.is_empty() {
            self.send_acks(ix, dst, direct);
        }
        if !send_back.is_empty() {
            let out: Vec<WireLsa> = send_back
                .iter()
                .filter_map(|k| self.wire_copy(now, ix, k))
                .collect();
            self.send_lsus(ix, dst, out);
        }
    }

    /// §13 steps 4–8 for one received LSA.
    fn rx_lsa(
        &mut self,
        now: Duration,
        ix: usize,
        rid: Ipv4Addr,
        w: WireLsa,
        direct: &mut Vec<LsaHeaderRepr>,
        send_back: &mut Vec<LsaKey>,
    ) {
        let key = w.lsa.key();
        let rx = w.lsa.header;
        let db_hdr = self.lsdb.get(&key).map(|e| e.header(now));
        // §13 step 4: a MaxAge LSA we do not have, with nobody exchanging: ack and drop
        if rx.age >= MAX_AGE && db_hdr.is_none() && !self.any_exchanging() {
            direct.push(rx);
            return;
        }
        let cmp = db_hdr.map(|d| lsdb::compare(&rx, &d));
        let (nbr_addr, i_state, i_dr) = {
            let i = &self.ifaces[ix];
            (i.nbrs.get(&rid).map(|n| n.addr), i.state, i.dr)
        };
        match cmp {
            None | Some(Ordering::Greater) => {
                // §13 step 5(a): MinLSArrival
                if let Some(e) = self.lsdb.get(&key) {
                    if key.adv_router != self.router_id
                        && now.saturating_sub(e.installed) < self.min_ls_arrival
                    {
                        return;
                    }
                }
                let old = self
                    .lsdb
                    .get(&key)
                    .filter(|e| !e.is_max_age(now))
                    .map(|e| e.lsa.clone());
                // §13 step 5(c): remove the old copy from every retransmission list
                for i in &mut self.ifaces {
                    for n in i.nbrs.values_mut() {
                        n.retransmit.remove(&key);
                    }
                }
                // §13 step 5(d): install
                let is_max = rx.age >= MAX_AGE;
                let ifindex = self.ifaces[ix].cfg.ifindex;
                let changed = self.lsdb.install(now, w.clone(), Some(ifindex));
                if changed {
                    let newl = if is_max { None } else { Some(&w.lsa) };
                    self.mark_spf(old.as_ref(), newl);
                }
                if is_max {
                    self.maxage.insert(key);
                } else {
                    self.maxage.remove(&key);
                }
                // §13 step 5(b): flood
                let back = self.flood(now, key, Some((ix, rid)));
                // §13 step 5(e), §13.5: delayed ack unless flooded back out
                if !back && (i_state != InterfaceState::Backup || nbr_addr == Some(i_dr)) {
                    self.delayed_ack(now, ix, rx);
                }
                // §13 step 5(f), §13.4: self-originated LSA received
                let own_net = key.ls_type == LsaType::Network
                    && self.ifaces.iter().any(|i| i.cfg.addr == key.id);
                if key.adv_router == self.router_id || own_net {
                    self.force_orig.insert(key);
                    self.originate_dirty = true;
                }
            }
            Some(o) => {
                // §13 step 6: an LSA on the request list that is not newer: BadLSReq
                if self.ifaces[ix]
                    .nbrs
                    .get(&rid)
                    .is_some_and(|n| n.ls_request.contains_key(&key))
                {
                    self.nsm(now, ix, rid, NsmEvent::BadLsReq);
                    return;
                }
                if o == Ordering::Equal {
                    // §13 step 7: duplicate; implied acknowledgment if on the list
                    let implied = self.ifaces[ix]
                        .nbrs
                        .get_mut(&rid)
                        .is_some_and(|n| n.retransmit.remove(&key).is_some());
                    if implied {
                        if i_state == InterfaceState::Backup && nbr_addr == Some(i_dr) {
                            self.delayed_ack(now, ix, rx);
                        }
                    } else {
                        direct.push(rx);
                    }
                } else {
                    // §13 step 8: our copy is newer; send it back unless it is a MaxAge
                    // MaxSequenceNumber instance being flushed
                    let e = self.lsdb.get(&key);
                    let flushing =
                        e.is_some_and(|e| e.is_max_age(now) && e.lsa.header.seq == MAX_SEQ);
                    if !flushing {
                        send_back.push(key);
                    }
                }
            }
        }
    }

    fn rx_ack(&mut self, _now: Duration, ix: usize, rid: Ipv4Addr, hdrs: Vec<LsaHeaderRepr>) {
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        if n.state < NeighborState::Exchange {
            return;
        }
        // §13.7: remove from the retransmission list when it acknowledges the same instance
        for h in hdrs {
            let same = n.retransmit.get(&h.key()).is_some_and(|(cur, _)| {
                cur.seq == h.seq
                    && cur.checksum == h.checksum
                    && (cur.age >= MAX_AGE) == (h.age >= MAX_AGE)
            });
            if same {
                n.retransmit.remove(&h.key());
            }
        }
    }

    /// §13.3: floods `key` (already installed) out of every eligible interface. `from` is
    /// the receiving interface and neighbor. Returns true when it went back out `from`'s
    /// interface.
    fn flood(&mut self, now: Duration, key: LsaKey, from: Option<(usize, Ipv4Addr)>) -> bool {
        let Some(e) = self.lsdb.get(&key) else {
            return false;
        };
        let hdr = e.header(now);
        let origin_if = e.origin_if;
        let mut back = false;
        for jx in 0..self.ifaces.len() {
            let i = &mut self.ifaces[jx];
            if !i.is_up() {
                continue;
            }
            if key.ls_type == LsaType::OpaqueLink && origin_if != Some(i.cfg.ifindex) {
                continue;
            }
            let rxmt = i.cfg.retransmit_interval;
            let mut added = false;
            for n in i.nbrs.values_mut() {
                // step 1(a)
                if n.state < NeighborState::Exchange {
                    continue;
                }
                // step 1(b)
                if matches!(n.state, NeighborState::Exchange | NeighborState::Loading) {
                    if let Some(req) = n.ls_request.get(&key) {
                        match lsdb::compare(&hdr, req) {
                            Ordering::Less => continue,
                            Ordering::Equal => {
                                n.ls_request.remove(&key);
                                continue;
                            }
                            Ordering::Greater => {
                                n.ls_request.remove(&key);
                            }
                        }
                    }
                }
                // step 1(c)
                if from == Some((jx, n.router_id)) {
                    continue;
                }
                // step 1(d)
                n.retransmit.insert(key, (hdr, now + rxmt));
                added = true;
            }
            // step 2
            if !added {
                continue;
            }
            if let Some((fx, frid)) = from {
                if fx == jx {
                    // step 3: received from the DR or BDR on this interface
                    let sender = i.nbrs.get(&frid).map(|n| n.addr);
                    if sender.is_some_and(|a| a == i.dr || a == i.bdr) && !i.p2p() {
                        continue;
                    }
                    // step 4: we are BDR
                    if i.state == InterfaceState::Backup {
                        continue;
                    }
                    back = true;
                }
            }
            // step 5
            if !i.pending_flood.contains(&key) {
                i.pending_flood.push(key);
            }
        }
        back
    }

    fn retransmit_lsas(&mut self, now: Duration, ix: usize, rid: Ipv4Addr) {
        let rxmt = self.ifaces[ix].cfg.retransmit_interval;
        let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) else {
            return;
        };
        // §13.6: resend LSAs not acknowledged within RxmtInterval, unicast
        let due: Vec<LsaKey> = n
            .retransmit
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, _)| *k)
            .collect();
        if due.is_empty() {
            return;
        }
        for k in &due {
            if let Some(v) = n.retransmit.get_mut(k) {
                v.1 = now + rxmt;
            }
        }
        let out: Vec<WireLsa> = due
            .iter()
            .filter_map(|k| self.wire_copy(now, ix, k))
            .collect();
        let dst = self.nbr_dst(ix, rid);
        self.send_lsus(ix, dst, out);
    }

    // ---------------------------------------------------------------- §12.4 origination

    fn max_metric(&self) -> bool {
        self.max_metric_admin || self.stub_until.is_some()
    }

    /// The self-originated LSAs this router wants in the database now.
    fn desired(&self) -> BTreeMap<LsaKey, LsaBody> {
        let mut out = BTreeMap::new();
        if self.shutdown_at.is_some() {
            return out;
        }
        let mm = self.max_metric();
        let tm = |c: u16| if mm { MAX_LINK_METRIC } else { c };
        let stub = |p: Ipv4Net, metric: u16| RouterLink {
            id: p.addr(),
            data: p.mask(),
            link_type: RouterLinkType::Stub,
            metric,
            tos: vec![],
        };
        let mut links = Vec::new();
        for i in &self.ifaces {
            let c = i.cfg.cost;
            match i.state {
                InterfaceState::Down => {}
                InterfaceState::Passive | InterfaceState::Waiting => links.push(stub(i.net(), c)),
                InterfaceState::PointToPoint => {
                    for n in i.nbrs.values().filter(|n| n.state == NeighborState::Full) {
                        links.push(RouterLink {
                            id: n.router_id,
                            data: i.cfg.addr,
                            link_type: RouterLinkType::PointToPoint,
                            metric: tm(c),
                            tos: vec![],
                        });
                    }
                    links.push(stub(i.net(), c));
                }
                InterfaceState::Dr | InterfaceState::Backup | InterfaceState::DrOther => {
                    let full = |a: Ipv4Addr| {
                        i.nbrs.values().any(|n| {
                            n.state == NeighborState::Full && (a.is_unspecified() || n.addr == a)
                        })
                    };
                    let transit = if i.state == InterfaceState::Dr {
                        full(Ipv4Addr::UNSPECIFIED)
                    } else {
                        !i.dr.is_unspecified() && full(i.dr)
                    };
                    if transit {
                        links.push(RouterLink {
                            id: i.dr,
                            data: i.cfg.addr,
                            link_type: RouterLinkType::Transit,
                            metric: tm(c),
                            tos: vec![],
                        });
                    } else {
                        links.push(stub(i.net(), c));
                    }
                    if i.state == InterfaceState::Dr && transit {
                        let mut attached = vec![self.router_id];
                        attached.extend(
                            i.nbrs
                                .values()
                                .filter(|n| n.state == NeighborState::Full)
                                .map(|n| n.router_id),
                        );
                        out.insert(
                            LsaKey {
                                ls_type: LsaType::Network,
                                id: i.cfg.addr,
                                adv_router: self.router_id,
                            },
                            LsaBody::Network(NetworkLsa {
                                mask: i.net().mask(),
                                attached,
                            }),
                        );
                    }
                }
            }
        }
        let mut asbr = false;
        for (p, a) in &self.announced {
            match a.external {
                None => links.push(stub(*p, a.metric)),
                Some(x) => {
                    asbr = true;
                    out.insert(
                        LsaKey {
                            ls_type: LsaType::AsExternal,
                            id: p.addr(),
                            adv_router: self.router_id,
                        },
                        LsaBody::External(ExternalLsa {
                            mask: p.mask(),
                            type2: x.type2,
                            metric: x.metric.min(crate::lsa::LS_INFINITY),
                            forwarding: x.forwarding,
                            tag: x.tag,
                            tos: vec![],
                        }),
                    );
                }
            }
        }
        out.insert(
            LsaKey {
                ls_type: LsaType::Router,
                id: self.router_id,
                adv_router: self.router_id,
            },
            LsaBody::Router(RouterLsa {
                flags: RouterFlags(if asbr { RouterFlags::E } else { 0 }),
                links,
            }),
        );
        out
    }

    /// Brings the database's self-originated LSAs in line with [`Self::desired`]:
    /// originates changed ones (respecting MinLSInterval), flushes unwanted ones (§14.1),
    /// and handles sequence wrap (§12.1.6).
    fn originate_all(&mut self, now: Duration) {
        self.originate_dirty = false;
        let desired = self.desired();
        for (key, body) in &desired {
            let cur = self.lsdb.get(key);
            let same = cur.is_some_and(|e| {
                !e.is_max_age(now) && &e.lsa.body == body && e.lsa.header.options == opts()
            });
            if same && !self.force_orig.contains(key) {
                continue;
            }
            if self.wrap_pending.contains(key) {
                continue;
            }
            if let Some(t) = self.last_orig.get(key) {
                let at = *t + self.min_ls_interval;
                if now < at {
                    self.deferred_at = Some(self.deferred_at.map_or(at, |d| d.min(at)));
                    continue;
                }
            }
            match self.lsdb.next_seq(key) {
                NextSeq::Use(seq) => {
                    let mut lsa = Lsa {
                        header: LsaHeaderRepr {
                            age: 0,
                            options: opts(),
                            ls_type: key.ls_type,
                            id: key.id,
                            adv_router: key.adv_router,
                            seq,
                            checksum: 0,
                            length: 0,
                        },
                        body: body.clone(),
                    };
                    let Ok(bytes) = lsa.to_bytes() else { continue };
                    let old = cur.filter(|e| !e.is_max_age(now)).map(|e| e.lsa.clone());
                    for i in &mut self.ifaces {
                        for n in i.nbrs.values_mut() {
                            n.retransmit.remove(key);
                        }
                    }
                    let newl = lsa.clone();
                    self.lsdb.install(now, WireLsa { lsa, bytes }, None);
                    self.mark_spf(old.as_ref(), Some(&newl));
                    self.last_orig.insert(*key, now);
                    self.force_orig.remove(key);
                    self.maxage.remove(key);
                    self.flood(now, *key, None);
                }
                NextSeq::WrapFlushFirst => {
                    // §12.1.6: flush the MaxSequenceNumber instance, originate the new one
                    // with InitialSequenceNumber once it has left the database
                    self.wrap_pending.insert(*key);
                    self.flush_own(now, *key);
                }
            }
        }
        let unwanted: Vec<LsaKey> = self
            .lsdb
            .iter()
            .filter(|(k, e)| {
                let own = k.adv_router == self.router_id
                    || (k.ls_type == LsaType::Network
                        && self.force_orig.contains(k)
                        && self.ifaces.iter().any(|i| i.cfg.addr == k.id));
                own && !desired.contains_key(k) && !e.is_max_age(now)
            })
            .map(|(k, _)| *k)
            .collect();
        for k in unwanted {
            // a flush is a new instance too: MinLSInterval applies (neighbors would
            // discard it under their MinLSArrival, §13 step 5(a)); a shutdown waits only
            // for MinLSArrival since the last instance, then flushes at once
            let gap = if self.shutdown_at.is_some() {
                // The neighbor measures MinLSArrival from when it installed the previous
                // instance, which is later than our send; a flush sent exactly
                // MinLSArrival after it can be discarded (BIRD does), leaving the
                // retransmission to land after the shutdown cap. Keep a margin.
                let g = self.min_ls_interval.min(self.min_ls_arrival);
                if g.is_zero() {
                    g
                } else {
                    g + FLUSH_SKEW_MARGIN
                }
            } else {
                self.min_ls_interval
            };
            if let Some(t) = self.last_orig.get(&k) {
                let at = *t + gap;
                if now < at {
                    self.deferred_at = Some(self.deferred_at.map_or(at, |d| d.min(at)));
                    continue;
                }
            }
            self.force_orig.remove(&k);
            self.last_orig.insert(k, now);
            self.flush_own(now, k);
        }
    }

    /// §14.1 premature aging of one LSA, then flooding.
    fn flush_own(&mut self, now: Duration, key: LsaKey) {
        let old = self
            .lsdb
            .get(&key)
            .filter(|e| !e.is_max_age(now))
            .map(|e| e.lsa.clone());
        if self.lsdb.premature_age(now, &key) {
            self.mark_spf(old.as_ref(), None);
            self.maxage.insert(key);
            for i in &mut self.ifaces {
                for n in i.nbrs.values_mut() {
                    n.retransmit.remove(&key);
                }
            }
            self.flood(now, key, None);
        }
    }

    /// §14: removes MaxAge LSAs no longer on any retransmission list while no neighbor is
    /// in Exchange or Loading.
    fn remove_maxage(&mut self) {
        if self.maxage.is_empty() || self.any_exchanging() {
            return;
        }
        let keys: Vec<LsaKey> = self.maxage.iter().copied().collect();
        for k in keys {
            let listed = self
                .ifaces
                .iter()
                .any(|i| i.nbrs.values().any(|n| n.retransmit.contains_key(&k)));
            let pending = self.ifaces.iter().any(|i| i.pending_flood.contains(&k));
            if listed || pending {
                continue;
            }
            self.maxage.remove(&k);
            if self.lsdb.get(&k).is_some_and(|e| e.is_max_age(self.now)) {
                self.lsdb.remove(&k);
            }
            if self.wrap_pending.remove(&k) {
                self.originate_dirty = true;
            }
        }
    }

    fn flush_floods(&mut self, now: Duration) {
        for ix in 0..self.ifaces.len() {
            let keys = std::mem::take(&mut self.ifaces[ix].pending_flood);
            if keys.is_empty() {
                continue;
            }
            let out: Vec<WireLsa> = keys
                .iter()
                .filter_map(|k| self.wire_copy(now, ix, k))
                .collect();
            let dst = self.ifaces[ix].flood_dst();
            self.send_lsus(ix, dst, out);
        }
    }

    fn spf_ifaces(&self) -> Vec<SpfInterface> {
        self.ifaces
            .iter()
            .filter(|i| i.state != InterfaceState::Down)
            .map(|i| SpfInterface {
                ifindex: i.cfg.ifindex,
                addr: i.cfg.addr,
                prefix_len: i.cfg.prefix_len,
            })
            .collect()
    }

    /// Work that follows every input: origination, MaxAge removal, flooding, Loading
    /// completion, SPF and the shutdown check.
    fn finish(&mut self, now: Duration) {
        for _ in 0..3 {
            if self.originate_dirty {
                self.originate_all(now);
            }
            self.remove_maxage();
            if !self.originate_dirty {
                break;
            }
        }
        // §10.9: next LS request batch, LoadingDone
        for ix in 0..self.ifaces.len() {
            let rids: Vec<(Ipv4Addr, NeighborState, bool, bool)> = self.ifaces[ix]
                .nbrs
                .values()
                .map(|n| {
                    (
                        n.router_id,
                        n.state,
                        n.ls_request.is_empty(),
                        n.lsr_rxmt_at.is_some(),
                    )
                })
                .collect();
            for (rid, st, empty, outstanding) in rids {
                match (st, empty) {
                    (NeighborState::Loading, true) => self.nsm(now, ix, rid, NsmEvent::LoadingDone),
                    (NeighborState::Exchange | NeighborState::Loading, false) if !outstanding => {
                        self.send_ls_request(now, ix, rid)
                    }
                    (_, true) if outstanding => {
                        if let Some(n) = self.ifaces[ix].nbrs.get_mut(&rid) {
                            n.lsr_rxmt_at = None;
                        }
                    }
                    _ => {}
                }
            }
        }
        if self.originate_dirty {
            self.originate_all(now);
        }
        self.flush_floods(now);
        self.remove_maxage();
        if self.spf_full || self.spf_partial {
            let ifs = self.spf_ifaces();
            let table = if self.spf_full {
                self.spf.full(self.router_id, &self.lsdb, now, &ifs)
            } else {
                self.spf.routes_only(self.router_id, &self.lsdb, now, &ifs)
            };
            self.spf_full = false;
            self.spf_partial = false;
            let d = spf::diff(&self.routes, &table);
            self.routes = table;
            if !d.is_empty() {
                self.events.push_back(Event::RoutesChanged(d));
            }
        }
        if let Some(deadline) = self.shutdown_at {
            let unflushed = self
                .lsdb
                .iter()
                .any(|(k, e)| k.adv_router == self.router_id && !e.is_max_age(now));
            let pending = unflushed
                || self.ifaces.iter().any(|i| {
                    i.nbrs
                        .values()
                        .any(|n| n.retransmit.keys().any(|k| k.adv_router == self.router_id))
                });
            if !pending || now >= deadline {
                for ix in 0..self.ifaces.len() {
                    if self.ifaces[ix].is_up() {
                        self.flush_delayed_acks(ix);
                        // a last Hello listing nobody: neighbors drop to Init at once
                        self.send_hello(now, ix, true);
                    }
                }
                self.events
                    .push_back(Event::ShutdownComplete { acked: !pending });
                self.stopped = true;
            }
        }
    }
}

/// Neighbor state machine events (§10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NsmEvent {
    HelloReceived,
    TwoWayReceived,
    OneWayReceived,
    NegotiationDone,
    ExchangeDone,
    LoadingDone,
    AdjOk,
    SeqNumberMismatch,
    BadLsReq,
    #[allow(dead_code)]
    KillNbr,
    InactivityTimer,
    LlDown,
}

// The daemon moves the instance into a task: keep it `Send`.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Instance>();
};
