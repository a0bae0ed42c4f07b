//! The health subsystem of `fulcrumd`: checks every `[[service]]`'s real servers and
//! decides which VIPs the node announces.
//!
//! - One [`health::Service`] per `[[service]]`, built by [`service_config`] from the
//!   TOML (`check = {…}` mapped to keepalived's keywords, see [`checker_config`]; a
//!   real server's own `check` replaces the service's), each driven by its own
//!   [`probe::Prober`] so that a reload can rebuild one service and keep the state of
//!   the others (no flap on reload).
//! - One [`health::VipAnnouncer`] per IPv4 VIP whose services have `announce = "ospf"`
//!   ([`vip_plans`]): `[vip."ADDRESS"]` gives its policy (`require` all|any, `metric`,
//!   `cost_out`, `hold_time`). Quorum changes of its services, operator drains
//!   (`fulcrum vips drain VIP`) and drain files (`[global].drain_file`,
//!   `[vip."ADDRESS"].drain_file`, polled every second) feed it; every change is logged
//!   at info with its reason.
//! - The announced VIPs are published as a [`VipRoutes`] map (VIP → OSPF stub metric) on
//!   a `watch` channel that the routing subsystem ([`crate::routing::Routing::with_health_vips`])
//!   turns into `/32` stub links.
//! - It answers `health` and `vips` (`vips` also lists the `[[announce]]` prefixes, which
//!   the routing subsystem announces unconditionally) and exports
//!   `fulcrum_health_server_up`, `fulcrum_health_probes_total`,
//!   `fulcrum_health_probe_duration_seconds`, `fulcrum_service_quorum`,
//!   `fulcrum_vip_announced` and `fulcrum_vip_metric`.
//!
//! What it does not do: run probes itself (`probe`), decide up/down or quorum (`health`),
//! speak OSPF (`routing`), program the dataplane's real-server weights (the dataplane
//! subsystem, not wired in kernel mode), or announce IPv6 VIPs or `announce = "arp"`
//! services (logged and skipped). See `docs/health.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use health::{
    CheckKind, CheckerConfig, ConnectOptions, DrainSource, FailureKind, FileCheck, HttpCheck,
    MiscCheck, PingCheck, ProbeOutcome, QuorumMode, RealServerConfig, Reason, ServiceConfig,
    ServiceEvent, StatusRange, TcpCheck, UdpCheck, UdpReply, UrlCheck, VipAnnouncer, VipConfig,
    VipEvent,
};
use probe::prober::ServiceStatus;
use probe::{Prober, ProberConfig, ProberEvent, ProberHandle};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use tokio::sync::{mpsc, watch};

use crate::config::{AnnounceMethod, Check, CheckType, Config, VipRequire};
use crate::control::{ErrorBody, HealthRow, HealthView, Request, VipRow, VipsView};
use crate::daemon::{Subsystem, SubsystemContext, SubsystemError, SubsystemFuture, Topic};
use crate::dataplane_driver::ServerVerdict;

/// The VIPs to announce and their OSPF stub metric, as the health subsystem publishes
/// them to the routing subsystem.
pub type VipRoutes = BTreeMap<Ipv4Addr, u32>;

/// The channel between the health subsystem (sender) and the routing subsystem
/// (receiver); starts empty: nothing is announced before health has decided.
pub fn vip_channel() -> (
    watch::Sender<Arc<VipRoutes>>,
    watch::Receiver<Arc<VipRoutes>>,
) {
    watch::channel(Arc::new(VipRoutes::new()))
}

/// How often drain files are looked at and gauges refreshed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Errors of the health subsystem.
#[derive(Debug, thiserror::Error)]
pub enum HealthDriverError {
    /// A `[[service]]` that `health` refuses (the configuration check lets it through).
    #[error("service {0:?}: {1}")]
    Service(String, health::HealthError),
    /// A VIP policy that `health` refuses.
    #[error("VIP {0}: {1}")]
    Vip(Ipv4Addr, health::HealthError),
    /// The prober of a service could not start or stopped.
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

// ---------------------------------------------------------------------------------------
// Configuration mapping (pure).

/// Decodes a `payload`: hexadecimal as keepalived writes it (`"0a0b"`), otherwise the
/// text's bytes.
fn payload_bytes(p: &str) -> Vec<u8> {
    let b = p.as_bytes();
    let hex = !b.is_empty() && b.len() % 2 == 0 && b.iter().all(u8::is_ascii_hexdigit);
    if !hex {
        return b.to_vec();
    }
    b.chunks_exact(2)
        .filter_map(|pair| std::str::from_utf8(pair).ok())
        .filter_map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// What one `check = {…}` becomes: a timed checker, or (type `file`) a tracked file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSpec {
    /// A probe run every `interval`.
    Checker(CheckerConfig),
    /// A `FILE_CHECK`: the file's number shifts the server's weight (weight 1: the
    /// value is added; keepalived's `track_file … weight 1`).
    File(FileCheck),
}

/// Maps one fulcrum check to keepalived's checker settings:
/// `interval` → `delay_loop`, `timeout` → `connect_timeout` (and `misc_timeout`),
/// `retries` → `retry`, `retry_delay` → `delay_before_retry`, `warmup`, `alpha`, `rise`,
/// `fall`; `path`/`status_codes`/`digest`/`host` → one `url {}` of `HTTP_GET`/`SSL_GET`
/// (`sni` sets `enable_sni` and the virtual host); `payload`/`require_reply` →
/// `UDP_CHECK`; `program`/`dynamic` → `MISC_CHECK` `misc_path`/`misc_dynamic`;
/// `connect_ip`/`connect_port`/`bindto` → the connection options.
pub fn checker_config(c: &Check) -> Result<CheckSpec, health::HealthError> {
    let conn = ConnectOptions {
        connect_ip: c.connect_ip,
        connect_port: c.connect_port,
        bindto: c.bindto,
        bind_port: None,
        connect_timeout: c.timeout,
        fwmark: None,
    };
    let kind = match c.kind {
        CheckType::Tcp => CheckKind::Tcp(TcpCheck { conn }),
        CheckType::Http | CheckType::Https => {
            let mut url = UrlCheck::new(c.path.clone().unwrap_or_else(|| "/".into()));
            for code in &c.status_codes {
                let code = u16::try_from(*code)
                    .map_err(|_| health::HealthError::StatusCode(code.to_string()))?;
                url.status_codes
                    .push(StatusRange::parse(&code.to_string())?);
            }
            if let Some(d) = &c.digest {
                url.digest = Some(health::config::parse_digest(d)?);
            }
            CheckKind::Http(HttpCheck {
                conn,
                ssl: c.kind == CheckType::Https,
                urls: vec![url],
                virtualhost: c.host.clone().or_else(|| c.sni.clone()),
                enable_sni: c.sni.is_some(),
            })
        }
        CheckType::Udp => CheckKind::Udp(UdpCheck {
            conn,
            payload: c.payload.as_deref().map(payload_bytes).unwrap_or_default(),
            require_reply: if c.require_reply {
                UdpReply::AnyReply
            } else {
                UdpReply::NoErrorIsEnough
            },
        }),
        CheckType::Ping => CheckKind::Ping(PingCheck { conn }),
        CheckType::Misc => CheckKind::Misc(MiscCheck {
            misc_path: c.program.clone().unwrap_or_default(),
            misc_timeout: Some(c.timeout),
            misc_dynamic: c.dynamic,
            user: None,
        }),
        CheckType::File => {
            return Ok(CheckSpec::File(FileCheck {
                file: c
                    .file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                weight: 1,
                reverse: false,
            }))
        }
    };
    let mut cc = CheckerConfig::new(kind);
    cc.delay_loop = c.interval;
    cc.retry = c.retries;
    cc.delay_before_retry = c.retry_delay;
    cc.warmup = c.warmup.unwrap_or(Duration::ZERO);
    cc.alpha = c.alpha;
    cc.rise = c.rise;
    cc.fall = c.fall;
    cc.validate()?;
    Ok(CheckSpec::Checker(cc))
}

/// Builds the `health` service of a `[[service]]`: quorum, hysteresis, sorry server,
/// `omega` (from the service's check), and per real server its weight, the check that
/// applies to it (its own, else the service's; none: always alive) and
/// `inhibit_on_failure`.
pub fn service_config(s: &crate::config::Service) -> Result<ServiceConfig, HealthDriverError> {
    let err = |e| HealthDriverError::Service(s.name.clone(), e);
    let mut servers = Vec::with_capacity(s.real_server.len());
    for rs in &s.real_server {
        let mut r = RealServerConfig::new(rs.address, s.real_port(rs));
        r.weight = rs.weight;
        if let Some(check) = s.check_for(rs) {
            r.inhibit_on_failure = check.inhibit_on_failure;
            match checker_config(check).map_err(err)? {
                CheckSpec::Checker(c) => r.checkers.push(c),
                CheckSpec::File(f) => r.files.push(f),
            }
        }
        servers.push(r);
    }
    let mut sc = ServiceConfig::new(s.name.clone(), servers);
    sc.quorum = s.quorum;
    sc.hysteresis = s.hysteresis;
    sc.sorry_server = s.sorry_server;
    sc.omega = s.check.as_ref().is_some_and(|c| c.omega);
    Ok(sc)
}

/// One health-driven VIP: its announcement policy and drain files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPlan {
    /// The policy handed to the [`VipAnnouncer`].
    pub config: VipConfig,
    /// Files whose existence drains it (`[global].drain_file`, then its own).
    pub drain_files: Vec<PathBuf>,
}

/// The VIPs driven by health: every IPv4 VIP of a service with `announce = "ospf"`,
/// following those services (services of the same VIP with another `announce` do not
/// count), with its `[vip."ADDRESS"]` policy.
pub fn vip_plans(c: &Config) -> BTreeMap<Ipv4Addr, VipPlan> {
    let mut out: BTreeMap<Ipv4Addr, VipPlan> = BTreeMap::new();
    for s in &c.service {
        if s.announce != AnnounceMethod::Ospf {
            continue;
        }
        let IpAddr::V4(vip) = s.vip else {
            continue;
        };
        let plan = out.entry(vip).or_insert_with(|| {
            let pol = c.vip_policy(s.vip);
            let mut vc = VipConfig::new(vip, Vec::new());
            vc.mode = match pol.require {
                VipRequire::All => QuorumMode::All,
                VipRequire::Any => QuorumMode::Any,
            };
            vc.metric = pol.metric;
            vc.cost_out_metric = pol.cost_out;
            vc.hold_time = pol.hold_time;
            VipPlan {
                config: vc,
                drain_files: c
                    .global
                    .drain_file
                    .iter()
                    .chain(pol.drain_file.iter())
                    .cloned()
                    .collect(),
            }
        });
        if !plan.config.services.contains(&s.name) {
            plan.config.services.push(s.name.clone());
        }
    }
    out
}

/// The announcement state of a VIP as shown by `fulcrum vips`.
pub fn vip_state_name(announced: bool, metric: u32, normal_metric: u32) -> &'static str {
    match (announced, metric == normal_metric) {
        (false, _) => "withdrawn",
        (true, true) => "announced",
        (true, false) => "costed-out",
    }
}

/// A reason in words, for logs and `fulcrum vips`.
pub fn reason_text(r: &Reason) -> String {
    match r {
        Reason::Quorum => "services hold quorum".into(),
        Reason::Unconditional => "no service to follow".into(),
        Reason::QuorumLost { services } => {
            format!("quorum lost: {}", services.join(", "))
        }
        Reason::Drained { sources } => {
            let s: Vec<&str> = sources
                .iter()
                .map(|s| match s {
                    DrainSource::Operator => "operator",
                    DrainSource::File => "drain file",
                })
                .collect();
            format!("drained ({})", s.join(", "))
        }
    }
}

/// A probe verdict in words (`success`, `weight 3`, `timeout` …).
pub fn outcome_text(o: &ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Success => "success".into(),
        ProbeOutcome::SuccessWithWeight(w) => format!("success, weight {w}"),
        ProbeOutcome::Failure(k) => failure_text(*k).into(),
    }
}

fn failure_text(k: FailureKind) -> &'static str {
    match k {
        FailureKind::Timeout => "timeout",
        FailureKind::Connect => "connect failed",
        FailureKind::Response => "bad response",
        FailureKind::Program => "program failed",
    }
}

// ---------------------------------------------------------------------------------------
// Metrics.

/// Per checker, the `health` counters already exported (for monotonic deltas).
type SeenStats = HashMap<(String, usize, usize), health::CheckerStats>;

/// The probe latency histogram over every prober, live and retired.
#[derive(Clone)]
struct LatencyCollector {
    desc: Desc,
    inner: Arc<Mutex<LatencyState>>,
}

#[derive(Default)]
struct LatencyState {
    live: BTreeMap<String, Arc<probe::Metrics>>,
    retired_counts: Vec<u64>,
    retired_sum: Duration,
}

impl LatencyCollector {
    fn new() -> Result<Self, prometheus::Error> {
        Ok(LatencyCollector {
            desc: Desc::new(
                "fulcrum_health_probe_duration_seconds".into(),
                "Duration of health probe attempts.".into(),
                Vec::new(),
                HashMap::new(),
            )?,
            inner: Arc::new(Mutex::new(LatencyState::default())),
        })
    }

    fn add(&self, name: &str, m: Arc<probe::Metrics>) {
        if let Ok(mut st) = self.inner.lock() {
            st.live.insert(name.to_owned(), m);
        }
    }

    fn retire(&self, name: &str) {
        if let Ok(mut st) = self.inner.lock() {
            if let Some(m) = st.live.remove(name) {
                let snap = m.snapshot();
                add_counts(&mut st.retired_counts, &snap.latency_counts);
                st.retired_sum += snap.latency_sum;
            }
        }
    }

    /// Per-bucket counts and the sum over every prober.
    fn totals(&self) -> (Vec<u64>, Duration) {
        let Ok(st) = self.inner.lock() else {
            return (Vec::new(), Duration::ZERO);
        };
        let mut counts = st.retired_counts.clone();
        let mut sum = st.retired_sum;
        for m in st.live.values() {
            let snap = m.snapshot();
            add_counts(&mut counts, &snap.latency_counts);
            sum += snap.latency_sum;
        }
        (counts, sum)
    }
}

fn add_counts(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.saturating_add(*b);
    }
}

impl Collector for LatencyCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (counts, sum) = self.totals();
        let mut h = prometheus::proto::Histogram::default();
        let mut cumulative = 0u64;
        for (bound, count) in probe::metrics::LATENCY_BOUNDS_US.iter().zip(&counts) {
            cumulative = cumulative.saturating_add(*count);
            let mut b = prometheus::proto::Bucket::default();
            b.set_upper_bound(*bound as f64 / 1e6);
            b.set_cumulative_count(cumulative);
            h.mut_bucket().push(b);
        }
        h.set_sample_count(counts.iter().sum());
        h.set_sample_sum(sum.as_secs_f64());
        let mut m = prometheus::proto::Metric::default();
        m.set_histogram(h);
        let mut mf = MetricFamily::default();
        mf.set_name(self.desc.fq_name.clone());
        mf.set_help(self.desc.help.clone());
        mf.set_field_type(prometheus::proto::MetricType::HISTOGRAM);
        mf.mut_metric().push(m);
        vec![mf]
    }
}

struct HealthMetrics {
    server_up: IntGaugeVec,
    probes: IntCounterVec,
    quorum: IntGaugeVec,
    vip_announced: IntGaugeVec,
    vip_metric: IntGaugeVec,
    latency: LatencyCollector,
    seen: SeenStats,
}

impl HealthMetrics {
    fn new(reg: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let m = HealthMetrics {
            server_up: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_health_server_up",
                    "Whether a real server passes its health checks (1) or not (0).",
                ),
                &["service", "server"],
            )?,
            probes: IntCounterVec::new(
                Opts::new(
                    "fulcrum_health_probes_total",
                    "Health probe attempts by checker kind and result.",
                ),
                &["kind", "result"],
            )?,
            quorum: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_service_quorum",
                    "Whether a service holds quorum (1) or not (0).",
                ),
                &["service"],
            )?,
            vip_announced: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_vip_announced",
                    "Whether a health-driven VIP is announced (1) or withdrawn (0).",
                ),
                &["vip"],
            )?,
            vip_metric: IntGaugeVec::new(
                Opts::new(
                    "fulcrum_vip_metric",
                    "The OSPF metric a health-driven VIP is announced with.",
                ),
                &["vip"],
            )?,
            latency: LatencyCollector::new()?,
            seen: HashMap::new(),
        };
        reg.register(Box::new(m.server_up.clone()))?;
        reg.register(Box::new(m.probes.clone()))?;
        reg.register(Box::new(m.quorum.clone()))?;
        reg.register(Box::new(m.vip_announced.clone()))?;
        reg.register(Box::new(m.vip_metric.clone()))?;
        reg.register(Box::new(m.latency.clone()))?;
        Ok(m)
    }

    /// Refreshes the per-service gauges and counts new attempts from a status.
    fn observe(&mut self, st: &ServiceStatus) {
        self.quorum
            .with_label_values(&[&st.name])
            .set(i64::from(st.has_quorum));
        for (si, srv) in st.servers.iter().enumerate() {
            self.server_up
                .with_label_values(&[&st.name, &srv.server.to_string()])
                .set(i64::from(srv.alive));
            for (ci, c) in srv.checkers.iter().enumerate() {
                let key = (st.name.to_string(), si, ci);
                let prev = self.seen.get(&key).copied().unwrap_or_default();
                let now = c.stats;
                let ok = |s: &health::CheckerStats| s.attempts.saturating_sub(s.failed_attempts);
                let timeouts = |s: &health::CheckerStats| s.timeouts.min(s.failed_attempts);
                let other =
                    |s: &health::CheckerStats| s.failed_attempts.saturating_sub(timeouts(s));
                for (result, delta) in [
                    ("success", ok(&now).saturating_sub(ok(&prev))),
                    ("timeout", timeouts(&now).saturating_sub(timeouts(&prev))),
                    ("failure", other(&now).saturating_sub(other(&prev))),
                ] {
                    if delta > 0 {
                        self.probes
                            .with_label_values(&[c.kind, result])
                            .inc_by(delta);
                    }
                }
                self.seen.insert(key, now);
            }
        }
    }

    /// Forgets a service (removed, or rebuilt: its counters restart from zero).
    fn forget(&mut self, name: &str, servers: &[SocketAddr], removed: bool) {
        self.seen.retain(|(n, _, _), _| n != name);
        self.latency.retire(name);
        if removed {
            let _ = self.quorum.remove_label_values(&[name]);
        }
        for s in servers {
            let _ = self.server_up.remove_label_values(&[name, &s.to_string()]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The subsystem.

/// The health subsystem, answering `health` and `vips` (`vip_drain`, `vip_undrain`).
pub struct HealthDriver {
    vips: watch::Sender<Arc<VipRoutes>>,
    verdicts: Option<mpsc::UnboundedSender<ServerVerdict>>,
}

impl HealthDriver {
    /// A health subsystem publishing the VIPs to announce on `vips` (see [`vip_channel`]).
    pub fn new(vips: watch::Sender<Arc<VipRoutes>>) -> Self {
        HealthDriver {
            vips,
            verdicts: None,
        }
    }

    /// Also sends every real-server verdict (up, down, weight) on `tx`, for the
    /// dataplane (see [`crate::dataplane_driver::verdict_channel`]).
    pub fn with_verdicts(mut self, tx: mpsc::UnboundedSender<ServerVerdict>) -> Self {
        self.verdicts = Some(tx);
        self
    }
}

impl Subsystem for HealthDriver {
    fn name(&self) -> &'static str {
        "health"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Health, Topic::Vips]
    }

    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture {
        Box::pin(async move {
            run(ctx, self.vips, self.verdicts)
                .await
                .map_err(|e| SubsystemError(e.to_string()))
        })
    }
}

/// An event of one service's prober, tagged with the service and its generation.
struct Tagged {
    service: String,
    generation: u64,
    event: ProberEvent,
}

struct RunningService {
    config: ServiceConfig,
    generation: u64,
    handle: ProberHandle,
    has_quorum: bool,
    /// The VIP whose announcer follows it (announce = ospf, IPv4).
    vip: Option<Ipv4Addr>,
}

struct Vip {
    plan: VipPlan,
    announcer: VipAnnouncer,
    since: Instant,
    file_drained: bool,
}

struct Driver {
    epoch: Instant,
    generation: u64,
    config: Arc<Config>,
    services: BTreeMap<String, RunningService>,
    vips: BTreeMap<Ipv4Addr, Vip>,
    operator_drains: BTreeSet<Ipv4Addr>,
    events: mpsc::UnboundedSender<Tagged>,
    routes: watch::Sender<Arc<VipRoutes>>,
    metrics: HealthMetrics,
    published: Option<VipRoutes>,
    verdicts: Option<mpsc::UnboundedSender<ServerVerdict>>,
}

async fn run(
    mut ctx: SubsystemContext,
    routes: watch::Sender<Arc<VipRoutes>>,
    verdicts: Option<mpsc::UnboundedSender<ServerVerdict>>,
) -> Result<(), HealthDriverError> {
    let config = ctx.config.borrow_and_update().clone();
    let metrics = HealthMetrics::new(&ctx.registry)?;
    let (mut d, mut rx) = Driver::new(config.clone(), routes, metrics);
    d.verdicts = verdicts;
    d.apply_config(config).await?;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = d
            .vips
            .values()
            .filter_map(|v| v.announcer.poll_timeout())
            .min()
            .map(|t| d.epoch + t);
        tokio::select! {
            _ = ctx.shutdown.wait() => break,
            Some(ev) = rx.recv() => {
                d.prober_event(ev);
                while let Ok(ev) = rx.try_recv() {
                    d.prober_event(ev);
                }
            }
            Some(call) = ctx.requests.recv() => {
                let answer = d.answer(&call.request).await;
                let _ = call.reply.send(answer);
            }
            Ok(()) = ctx.config.changed() => {
                let c = ctx.config.borrow_and_update().clone();
                if let Err(e) = d.apply_config(c).await {
                    tracing::error!("health: reload: {e}");
                }
            }
            () = sleep_until_opt(next) => {
                let now = d.now();
                for v in d.vips.values_mut() {
                    v.announcer.on_timeout(now);
                }
            }
            _ = tick.tick() => {
                d.poll_drain_files();
                d.refresh_metrics().await;
            }
        }
        d.drain_vip_events();
    }
    d.stop_all().await;
    Ok(())
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    fn new(
        config: Arc<Config>,
        routes: watch::Sender<Arc<VipRoutes>>,
        metrics: HealthMetrics,
    ) -> (Driver, mpsc::UnboundedReceiver<Tagged>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let d = Driver {
            epoch: Instant::now(),
            generation: 0,
            config,
            services: BTreeMap::new(),
            vips: BTreeMap::new(),
            operator_drains: BTreeSet::new(),
            events: tx,
            routes,
            metrics,
            published: None,
            verdicts: None,
        };
        (d, rx)
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Starts, rebuilds or stops services and VIP announcers to match `c`; services and
    /// VIPs whose configuration did not change keep their state.
    async fn apply_config(&mut self, c: Arc<Config>) -> Result<(), HealthDriverError> {
        let plans = vip_plans(&c);
        let mut wanted: BTreeMap<String, (ServiceConfig, Option<Ipv4Addr>)> = BTreeMap::new();
        for s in &c.service {
            let sc = service_config(s)?;
            let vip = match (s.announce, s.vip) {
                (AnnounceMethod::Ospf, IpAddr::V4(v)) => Some(v),
                (AnnounceMethod::Ospf, IpAddr::V6(v)) => {
                    tracing::warn!("health: service {}: IPv6 VIP {v} is not announced", s.name);
                    None
                }
                (AnnounceMethod::Arp, _) => {
                    tracing::warn!(
                        "health: service {}: announce = \"arp\" is not supported in kernel mode",
                        s.name
                    );
                    None
                }
                (AnnounceMethod::None, _) => None,
            };
            wanted.insert(s.name.clone(), (sc, vip));
        }
        // Stop services that are gone or changed.
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let keep = wanted
                .get(&name)
                .is_some_and(|(sc, _)| self.services.get(&name).is_some_and(|r| r.config == *sc));
            if !keep {
                if let Some(r) = self.services.remove(&name) {
                    let removed = !wanted.contains_key(&name);
                    tracing::info!(
                        "health: service {name} {}",
                        if removed {
                            "removed"
                        } else {
                            "changed: rebuilding"
                        }
                    );
                    let addrs: Vec<SocketAddr> = r
                        .config
                        .real_servers
                        .iter()
                        .map(|s| SocketAddr::new(s.addr, s.port))
                        .collect();
                    self.metrics.forget(&name, &addrs, removed);
                    let _ = r.handle.shutdown().await;
                }
            }
        }
        // Start new or changed ones.
        for (name, (sc, vip)) in &wanted {
            if let Some(r) = self.services.get_mut(name) {
                r.vip = *vip;
                continue;
            }
            self.generation += 1;
            let generation = self.generation;
            let (handle, mut events) = Prober::start(
                vec![sc.clone()],
                ProberConfig {
                    seed: generation,
                    ..ProberConfig::default()
                },
            )?;
            let has_quorum = handle.status().await?.first().is_some_and(|s| s.has_quorum);
            self.metrics.latency.add(name, handle.metrics().clone());
            let tx = self.events.clone();
            let service = name.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    let t = Tagged {
                        service: service.clone(),
                        generation,
                        event,
                    };
                    if tx.send(t).is_err() {
                        return;
                    }
                }
            });
            tracing::info!(
                "health: service {name}: checking {} real server(s), quorum {}",
                sc.real_servers.len(),
                if has_quorum { "held" } else { "not held" }
            );
            self.services.insert(
                name.clone(),
                RunningService {
                    config: sc.clone(),
                    generation,
                    handle,
                    has_quorum,
                    vip: *vip,
                },
            );
        }
        // VIP announcers.
        let now = self.now();
        let metrics = &self.metrics;
        self.vips.retain(|vip, v| {
            let keep = plans.get(vip) == Some(&v.plan);
            if !keep && !plans.contains_key(vip) {
                tracing::info!("health: VIP {vip} no longer health-driven");
                let label = vip.to_string();
                let _ = metrics.vip_announced.remove_label_values(&[&label]);
                let _ = metrics.vip_metric.remove_label_values(&[&label]);
            }
            keep
        });
        self.operator_drains.retain(|v| plans.contains_key(v));
        for (vip, plan) in plans {
            let fresh = !self.vips.contains_key(&vip);
            if fresh {
                let mut announcer = VipAnnouncer::new(plan.config.clone(), now)
                    .map_err(|e| HealthDriverError::Vip(vip, e))?;
                if self.operator_drains.contains(&vip) {
                    announcer.set_drain(now, DrainSource::Operator, true);
                }
                let file_drained = plan.drain_files.iter().any(|f| f.exists());
                if file_drained {
                    announcer.set_drain(now, DrainSource::File, true);
                }
                self.vips.insert(
                    vip,
                    Vip {
                        plan,
                        announcer,
                        since: Instant::now(),
                        file_drained,
                    },
                );
            }
            // Seed (or refresh after a rebuilt service) every followed quorum.
            if let Some(v) = self.vips.get_mut(&vip) {
                for s in v.plan.config.services.clone() {
                    let q = self.services.get(&s).is_some_and(|r| r.has_quorum);
                    let _ = v.announcer.set_service_quorum(now, &s, q);
                }
            }
        }
        self.config = c;
        self.drain_vip_events();
        self.publish();
        self.refresh_metrics().await;
        Ok(())
    }

    fn prober_event(&mut self, t: Tagged) {
        let Some(r) = self.services.get_mut(&t.service) else {
            return;
        };
        if r.generation != t.generation {
            return; // from a prober replaced by a reload
        }
        let name = &t.service;
        match t.event.event {
            ServiceEvent::Server { index, event } => {
                let addr = r
                    .config
                    .real_servers
                    .get(index)
                    .map(|s| SocketAddr::new(s.addr, s.port).to_string())
                    .unwrap_or_else(|| format!("#{index}"));
                let up = match event {
                    health::ServerEvent::Up { .. } => Some(1),
                    health::ServerEvent::Down { .. } => Some(0),
                    health::ServerEvent::WeightChanged { .. } => None,
                };
                if let (Some(tx), Some(s)) = (&self.verdicts, r.config.real_servers.get(index)) {
                    let (up, weight) = match event {
                        health::ServerEvent::Up { weight } => (Some(true), Some(weight)),
                        health::ServerEvent::Down { .. } => (Some(false), None),
                        health::ServerEvent::WeightChanged { weight } => (None, Some(weight)),
                    };
                    let _ = tx.send(ServerVerdict {
                        service: name.clone(),
                        server: SocketAddr::new(s.addr, s.port),
                        up,
                        weight,
                    });
                }
                if let Some(up) = up {
                    self.metrics
                        .server_up
                        .with_label_values(&[name, &addr])
                        .set(up);
                }
                match event {
                    health::ServerEvent::Up { weight } => {
                        tracing::info!(
                            "health: service {name}: real server {addr} up (weight {weight})"
                        );
                    }
                    health::ServerEvent::Down { inhibited } => tracing::info!(
                        "health: service {name}: real server {addr} down{}",
                        if inhibited { " (weight 0)" } else { "" }
                    ),
                    health::ServerEvent::WeightChanged { weight } => {
                        tracing::info!("health: service {name}: real server {addr} weight {weight}")
                    }
                }
            }
            ServiceEvent::QuorumUp { live_weight } | ServiceEvent::QuorumDown { live_weight } => {
                let up = matches!(t.event.event, ServiceEvent::QuorumUp { .. });
                r.has_quorum = up;
                let quorum = r.config.quorum;
                tracing::info!(
                    "health: service {name}: quorum {} (live weight {live_weight}, quorum {quorum})",
                    if up { "gained" } else { "lost" }
                );
                self.metrics
                    .quorum
                    .with_label_values(&[name])
                    .set(i64::from(up));
                if let Some(vip) = r.vip {
                    let now = self.now();
                    if let Some(v) = self.vips.get_mut(&vip) {
                        let _ = v.announcer.set_service_quorum(now, name, up);
                    }
                }
            }
            ServiceEvent::SorryServer { active } => {
                tracing::info!(
                    "health: service {name}: sorry server {}",
                    if active { "in use" } else { "no longer used" }
                );
            }
        }
    }

    /// Logs every VIP change and publishes the new set.
    fn drain_vip_events(&mut self) {
        let mut changed = false;
        for v in self.vips.values_mut() {
            while let Some(ev) = v.announcer.poll_event() {
                log_vip_event(&ev, v.plan.config.metric);
                v.since = Instant::now();
                changed = true;
            }
        }
        if changed {
            self.publish();
        }
    }

    fn publish(&mut self) {
        let set: VipRoutes = self
            .vips
            .iter()
            .filter_map(|(vip, v)| {
                let st = v.announcer.state();
                st.announced.then_some((*vip, st.metric))
            })
            .collect();
        for (vip, v) in &self.vips {
            let st = v.announcer.state();
            let label = vip.to_string();
            self.metrics
                .vip_announced
                .with_label_values(&[&label])
                .set(i64::from(st.announced));
            self.metrics
                .vip_metric
                .with_label_values(&[&label])
                .set(i64::from(st.metric));
        }
        if self.published.as_ref() != Some(&set) {
            self.published = Some(set.clone());
            // No receiver (no routing subsystem) is not an error: nothing announces.
            self.routes.send_replace(Arc::new(set));
        }
    }

    fn poll_drain_files(&mut self) {
        let now = self.now();
        for (vip, v) in &mut self.vips {
            let drained = v.plan.drain_files.iter().any(|f| f.exists());
            if drained != v.file_drained {
                tracing::info!(
                    "health: VIP {vip}: drain file {}",
                    if drained { "present" } else { "removed" }
                );
                v.file_drained = drained;
                v.announcer.set_drain(now, DrainSource::File, drained);
            }
        }
    }

    async fn statuses(&self) -> Vec<(Instant, ServiceStatus)> {
        let mut out = Vec::new();
        for r in self.services.values() {
            if let Ok(st) = r.handle.status().await {
                let epoch = r.handle.epoch().into_std();
                out.extend(st.into_iter().map(|s| (epoch, s)));
            }
        }
        out
    }

    async fn refresh_metrics(&mut self) {
        for (_, st) in self.statuses().await {
            self.metrics.observe(&st);
        }
    }

    async fn stop_all(&mut self) {
        for (name, r) in std::mem::take(&mut self.services) {
            if let Err(e) = r.handle.shutdown().await {
                tracing::warn!("health: stopping {name}: {e}");
            }
        }
    }

    async fn answer(&mut self, req: &Request) -> Result<serde_json::Value, ErrorBody> {
        let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| ErrorBody::new("internal", e.to_string()))
        };
        match req {
            Request::Health => {
                let view = self.health_view().await;
                to_json(serde_json::to_value(view))
            }
            Request::Vips => to_json(serde_json::to_value(self.vips_view())),
            Request::VipDrain { vip } | Request::VipUndrain { vip } => {
                let drain = matches!(req, Request::VipDrain { .. });
                let v4 = match vip {
                    IpAddr::V4(v) if self.vips.contains_key(v) => *v,
                    _ => {
                        return Err(ErrorBody::new(
                            "bad_request",
                            format!("{vip} is not a health-driven VIP (announce = \"ospf\")"),
                        ))
                    }
                };
                let now = self.now();
                if drain {
                    self.operator_drains.insert(v4);
                } else {
                    self.operator_drains.remove(&v4);
                }
                if let Some(v) = self.vips.get_mut(&v4) {
                    tracing::info!(
                        "health: VIP {v4}: operator {}",
                        if drain { "drain" } else { "undrain" }
                    );
                    v.announcer.set_drain(now, DrainSource::Operator, drain);
                }
                self.drain_vip_events();
                to_json(serde_json::to_value(self.vips_view()))
            }
            other => Err(ErrorBody::new(
                "not_supported",
                format!("the health subsystem does not answer {other:?}"),
            )),
        }
    }

    async fn health_view(&self) -> HealthView {
        let mut checks = Vec::new();
        let now = Instant::now();
        let age = |epoch: Instant, at: Option<Duration>| {
            at.map(|a| now.saturating_duration_since(epoch + a).as_secs())
        };
        for (epoch, st) in self.statuses().await {
            for srv in &st.servers {
                let since = age(epoch, srv.last_change)
                    .unwrap_or_else(|| now.saturating_duration_since(epoch).as_secs());
                let base = HealthRow {
                    service: st.name.to_string(),
                    real_server: srv.server.to_string(),
                    check: "none".into(),
                    state: if srv.alive { "up" } else { "down" }.into(),
                    since_seconds: since,
                    last_result: "-".into(),
                    failures: 0,
                    server_up: srv.alive,
                    weight: srv.weight,
                    latency_ms: None,
                    last_result_age_seconds: None,
                    service_quorum: st.has_quorum,
                };
                if srv.checkers.is_empty() {
                    checks.push(base);
                    continue;
                }
                for c in &srv.checkers {
                    checks.push(HealthRow {
                        check: c.kind.to_string(),
                        state: if c.up { "up" } else { "down" }.into(),
                        last_result: c
                            .last_result
                            .as_ref()
                            .map(outcome_text)
                            .unwrap_or_else(|| "-".into()),
                        failures: c.consecutive_failures,
                        latency_ms: c.last_latency.map(|l| l.as_secs_f64() * 1e3),
                        last_result_age_seconds: age(epoch, c.last_result_at),
                        ..base.clone()
                    });
                }
            }
        }
        HealthView { checks }
    }

    fn vips_view(&self) -> VipsView {
        let now = Instant::now();
        let mut vips: Vec<VipRow> = self
            .vips
            .iter()
            .map(|(vip, v)| {
                let st = v.announcer.state();
                let services = &v.plan.config.services;
                let up = services
                    .iter()
                    .filter(|s| self.services.get(*s).is_some_and(|r| r.has_quorum))
                    .count();
                let normal = v.plan.config.metric;
                VipRow {
                    vip: IpAddr::V4(*vip),
                    method: "ospf".into(),
                    announced: st.announced,
                    metric: st.announced.then_some(st.metric),
                    drained: matches!(st.reason, Reason::Drained { .. }),
                    services_up: u32::try_from(up).unwrap_or(u32::MAX),
                    services_total: u32::try_from(services.len()).unwrap_or(u32::MAX),
                    reason: reason_text(&st.reason),
                    state: vip_state_name(st.announced, st.metric, normal).into(),
                    since_seconds: Some(now.saturating_duration_since(v.since).as_secs()),
                }
            })
            .collect();
        for a in &self.config.announce {
            if a.prefix.prefix() == 32 && self.vips.contains_key(&a.prefix.network()) {
                continue;
            }
            vips.push(VipRow {
                vip: IpAddr::V4(a.prefix.network()),
                method: "ospf".into(),
                announced: self.config.ospf.is_some(),
                metric: Some(a.metric.unwrap_or(1)),
                drained: false,
                services_up: 0,
                services_total: 0,
                reason: format!("[[announce]] {} (unconditional)", a.prefix),
                state: String::new(),
                since_seconds: None,
            });
        }
        VipsView { vips }
    }
}

fn log_vip_event(ev: &VipEvent, normal_metric: u32) {
    tracing::info!(
        "health: VIP {} {}{}: {}{}",
        ev.vip,
        vip_state_name(ev.announced, ev.metric, normal_metric),
        if ev.announced {
            format!(" (metric {})", ev.metric)
        } else {
            String::new()
        },
        reason_text(&ev.reason),
        if ev.damped { " (after hold time)" } else { "" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::parse(text).expect("valid config")
    }

    const BASE: &str =
        "[dataplane]\nmode = \"kernel\"\n[[interface]]\nname = \"eth0\"\n[ospf]\nrouter_id = \"1.0.0.1\"\n\
         [[ospf.interface]]\nname = \"eth0\"\narea = \"0.0.0.0\"\n";

    #[test]
    fn tcp_check_maps_to_keepalived_timing() {
        let c = parse(&format!(
            "{BASE}[[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"nat\"\n\
             announce = \"ospf\"\nquorum = 2\nhysteresis = 1\n\
             check = {{ type = \"tcp\", interval = \"2s\", timeout = \"1s\", retries = 3, retry_delay = \"500ms\", warmup = \"4s\", rise = 2, fall = 3, alpha = true, inhibit_on_failure = true, connect_port = 8080, bindto = \"10.0.0.1\" }}\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\nweight = 5\n\
             [[service.real_server]]\naddress = \"10.0.0.3\"\nport = 81\n"
        ));
        let sc = service_config(&c.service[0]).expect("maps");
        assert_eq!(sc.name, "web");
        assert_eq!((sc.quorum, sc.hysteresis), (2, 1));
        assert_eq!(sc.real_servers.len(), 2);
        let a = &sc.real_servers[0];
        assert_eq!((a.port, a.weight, a.inhibit_on_failure), (80, 5, true));
        let b = &sc.real_servers[1];
        assert_eq!((b.port, b.weight), (81, 1));
        let ck = &a.checkers[0];
        assert_eq!(ck.delay_loop, Duration::from_secs(2));
        assert_eq!(ck.retry, 3);
        assert_eq!(ck.delay_before_retry, Duration::from_millis(500));
        assert_eq!(ck.warmup, Duration::from_secs(4));
        assert_eq!((ck.rise, ck.fall, ck.alpha), (2, 3, true));
        assert_eq!(ck.probe_timeout(), Duration::from_secs(1));
        let CheckKind::Tcp(t) = &ck.kind else {
            panic!("not TCP_CHECK: {:?}", ck.kind)
        };
        assert_eq!(t.conn.connect_port, Some(8080));
        assert_eq!(t.conn.bindto, Some("10.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn http_misc_udp_file_and_per_server_override() {
        let c = parse(&format!(
            "{BASE}[[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"dr\"\n\
             check = {{ type = \"http\", interval = \"3s\", timeout = \"2s\", path = \"/health\", status_codes = [200, 204], digest = \"5b6d74f1453e20c09d6a20d909779ad7\", host = \"example.org\" }}\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n\
             [[service.real_server]]\naddress = \"10.0.0.3\"\n\
             check = {{ type = \"misc\", program = \"/bin/check 1\", dynamic = true, timeout = \"2s\" }}\n\
             [[service.real_server]]\naddress = \"10.0.0.4\"\n\
             check = {{ type = \"udp\", payload = \"0a0b\", require_reply = true }}\n\
             [[service.real_server]]\naddress = \"10.0.0.5\"\n\
             check = {{ type = \"file\", file = \"/run/w\" }}\n"
        ));
        let sc = service_config(&c.service[0]).expect("maps");
        let CheckKind::Http(h) = &sc.real_servers[0].checkers[0].kind else {
            panic!("not HTTP_GET")
        };
        assert!(!h.ssl);
        assert_eq!(h.virtualhost.as_deref(), Some("example.org"));
        let url = &h.urls[0];
        assert_eq!(url.path, "/health");
        assert_eq!(
            url.status_codes,
            vec![StatusRange::code(200), StatusRange::code(204)]
        );
        assert_eq!(url.digest.map(|d| d[0]), Some(0x5b));
        let m = &sc.real_servers[1].checkers[0];
        let CheckKind::Misc(misc) = &m.kind else {
            panic!("not MISC_CHECK")
        };
        assert_eq!(misc.misc_path, "/bin/check 1");
        assert!(misc.misc_dynamic);
        assert_eq!(m.probe_timeout(), Duration::from_secs(2));
        assert_eq!(m.delay_loop, Duration::from_secs(5), "interval default");
        let CheckKind::Udp(u) = &sc.real_servers[2].checkers[0].kind else {
            panic!("not UDP_CHECK")
        };
        assert_eq!(u.payload, vec![0x0a, 0x0b]);
        assert_eq!(u.require_reply, UdpReply::AnyReply);
        let f = &sc.real_servers[3];
        assert!(f.checkers.is_empty());
        assert_eq!(f.files[0].file, "/run/w");
        assert_eq!(f.files[0].weight, 1);
    }

    #[test]
    fn payloads_are_hex_or_text() {
        assert_eq!(payload_bytes("00ff"), vec![0, 255]);
        assert_eq!(payload_bytes("ping"), b"ping".to_vec());
        assert_eq!(payload_bytes("abc"), b"abc".to_vec());
        assert_eq!(payload_bytes(""), Vec::<u8>::new());
    }

    #[test]
    fn services_without_check_are_always_alive_configs() {
        let c = parse(&format!(
            "{BASE}[[service]]\nname = \"a\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"dr\"\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n"
        ));
        let sc = service_config(&c.service[0]).expect("maps");
        assert!(sc.real_servers[0].checkers.is_empty());
        let s = health::Service::new(sc, Duration::ZERO, 0).expect("service");
        assert!(s.has_quorum());
    }

    #[test]
    fn vip_plans_follow_ospf_services_and_policy() {
        let c = parse(&format!(
            "[global]\ndrain_file = \"/run/fulcrum/drain\"\n{BASE}\
             [[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"dr\"\nannounce = \"ospf\"\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n\
             [[service]]\nname = \"tls\"\nvip = \"100.64.0.10\"\nport = 443\nforward = \"dr\"\nannounce = \"ospf\"\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n\
             [[service]]\nname = \"quiet\"\nvip = \"100.64.0.10\"\nport = 8080\nforward = \"dr\"\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n\
             [[service]]\nname = \"other\"\nvip = \"100.64.0.11\"\nport = 80\nforward = \"dr\"\n\
             [[service.real_server]]\naddress = \"10.0.0.2\"\n\
             [vip.\"100.64.0.10\"]\nrequire = \"any\"\ncost_out = 65000\nhold_time = \"5s\"\nmetric = 10\ndrain_file = \"/run/fulcrum/drain.web\"\n"
        ));
        let plans = vip_plans(&c);
        assert_eq!(plans.len(), 1, "announce = none drives nothing: {plans:?}");
        let p = &plans[&Ipv4Addr::new(100, 64, 0, 10)];
        assert_eq!(
            p.config.services,
            vec!["web".to_string(), "tls".to_string()]
        );
        assert_eq!(p.config.mode, QuorumMode::Any);
        assert_eq!(p.config.metric, 10);
        assert_eq!(p.config.cost_out_metric, Some(65000));
        assert_eq!(p.config.hold_time, Duration::from_secs(5));
        assert_eq!(
            p.drain_files,
            vec![
                PathBuf::from("/run/fulcrum/drain"),
                PathBuf::from("/run/fulcrum/drain.web")
            ]
        );
        let bad = Config::parse(&format!(
            "{BASE}[[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"dr\"\nannounce = \"ospf\"\n\
             [vip.\"100.64.0.10\"]\nmetric = 70000\n"
        ))
        .expect_err("metric above 65535");
        assert!(
            bad.to_string().contains("vip.\"100.64.0.10\".metric")
                || bad.to_string().contains("metric"),
            "{bad}"
        );
    }

    #[test]
    fn state_names_and_reasons() {
        assert_eq!(vip_state_name(false, 1, 1), "withdrawn");
        assert_eq!(vip_state_name(true, 1, 1), "announced");
        assert_eq!(vip_state_name(true, 65000, 1), "costed-out");
        assert_eq!(
            reason_text(&Reason::QuorumLost {
                services: vec!["a".into(), "b".into()]
            }),
            "quorum lost: a, b"
        );
        assert_eq!(
            reason_text(&Reason::Drained {
                sources: vec![DrainSource::Operator, DrainSource::File]
            }),
            "drained (operator, drain file)"
        );
        assert_eq!(
            outcome_text(&ProbeOutcome::SuccessWithWeight(3)),
            "success, weight 3"
        );
        assert_eq!(
            outcome_text(&ProbeOutcome::Failure(FailureKind::Timeout)),
            "timeout"
        );
    }

    #[test]
    fn latency_histogram_is_cumulative_over_live_and_retired_probers() {
        let col = LatencyCollector::new().expect("collector");
        let a = Arc::new(probe::Metrics::default());
        a.record(ProbeOutcome::Success, Duration::from_micros(50));
        a.record(ProbeOutcome::Success, Duration::from_millis(2));
        col.add("a", a.clone());
        col.retire("a");
        let b = Arc::new(probe::Metrics::default());
        b.record(
            ProbeOutcome::Failure(FailureKind::Timeout),
            Duration::from_millis(2),
        );
        col.add("b", b);
        let mf = col.collect();
        let h = mf[0].get_metric()[0].get_histogram();
        assert_eq!(h.get_sample_count(), 3);
        let buckets = h.get_bucket();
        assert_eq!(buckets[0].get_upper_bound(), 0.0001);
        assert_eq!(buckets[0].get_cumulative_count(), 1);
        // 2 ms falls in the 2.5 ms bucket (index 4).
        assert_eq!(buckets[3].get_cumulative_count(), 1);
        assert_eq!(buckets[4].get_cumulative_count(), 3);
        assert!((h.get_sample_sum() - 0.00405).abs() < 1e-9);
    }

    #[test]
    fn probe_counters_count_deltas_by_kind_and_result() {
        let reg = prometheus::Registry::new();
        let mut m = HealthMetrics::new(&reg).expect("metrics");
        let status = |attempts, failed, timeouts| ServiceStatus {
            name: Arc::from("web"),
            has_quorum: true,
            live_weight: 1,
            servers: vec![probe::ServerStatus {
                server: "10.0.0.2:80".parse().expect("addr"),
                alive: true,
                weight: 1,
                last_change: None,
                checkers: vec![probe::CheckerStatus {
                    kind: "TCP_CHECK",
                    up: true,
                    last_result: None,
                    last_result_at: None,
                    last_latency: None,
                    consecutive_failures: 0,
                    stats: health::CheckerStats {
                        attempts,
                        failed_attempts: failed,
                        timeouts,
                        stale_results: 0,
                    },
                }],
            }],
        };
        m.observe(&status(3, 1, 1));
        m.observe(&status(5, 2, 1));
        let probes = m.probes.clone();
        let get = |r: &str| probes.with_label_values(&["TCP_CHECK", r]).get();
        assert_eq!((get("success"), get("timeout"), get("failure")), (3, 1, 1));
        // A rebuilt service restarts its counters: the exported ones stay monotonic.
        m.forget("web", &[], false);
        m.observe(&status(1, 0, 0));
        assert_eq!(get("success"), 4);
        assert_eq!(
            m.server_up.with_label_values(&["web", "10.0.0.2:80"]).get(),
            1
        );
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&reg.gather())
            .expect("encode");
        assert!(
            text.contains("fulcrum_health_probes_total{kind=\"TCP_CHECK\",result=\"success\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("fulcrum_health_probe_duration_seconds_bucket"),
            "{text}"
        );
    }

    fn driver_config(extra_web: &str, vip_policy: &str) -> Arc<Config> {
        Arc::new(parse(&format!(
            "{BASE}[[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"nat\"\n\
             announce = \"ospf\"\n{extra_web}\n[[service.real_server]]\naddress = \"127.0.0.1\"\n\
             [[service]]\nname = \"off\"\nvip = \"100.64.0.20\"\nport = 80\nforward = \"nat\"\n\
             [[service.real_server]]\naddress = \"127.0.0.1\"\n{vip_policy}"
        )))
    }

    fn routes_of(rx: &watch::Receiver<Arc<VipRoutes>>) -> Vec<(Ipv4Addr, u32)> {
        rx.borrow().iter().map(|(v, m)| (*v, *m)).collect()
    }

    #[tokio::test]
    async fn driver_publishes_drains_and_keeps_state_on_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let drain = dir.path().join("drain");
        let policy = format!(
            "[vip.\"100.64.0.10\"]\nmetric = 10\ncost_out = 65000\ndrain_file = \"{}\"\n",
            drain.display()
        );
        let (tx, rx) = vip_channel();
        let reg = prometheus::Registry::new();
        let c = driver_config("", &policy);
        let (mut d, _events) = Driver::new(c.clone(), tx, HealthMetrics::new(&reg).expect("m"));
        d.apply_config(c).await.expect("apply");
        let vip = Ipv4Addr::new(100, 64, 0, 10);
        // No check: always alive, quorum held; "off" (announce none) drives nothing.
        assert_eq!(routes_of(&rx), vec![(vip, 10)]);
        let generation = d.services["web"].generation;

        // Operator drain: costed out (cost_out set), then undrain.
        let v = d
            .answer(&Request::VipDrain {
                vip: IpAddr::V4(vip),
            })
            .await
            .expect("drain");
        assert_eq!(v["vips"][0]["state"], "costed-out", "{v}");
        assert_eq!(v["vips"][0]["reason"], "drained (operator)", "{v}");
        assert_eq!(routes_of(&rx), vec![(vip, 65000)]);
        let err = d
            .answer(&Request::VipDrain {
                vip: "100.64.0.20".parse().expect("ip"),
            })
            .await
            .expect_err("not health-driven");
        assert_eq!(err.code, "bad_request");
        d.answer(&Request::VipUndrain {
            vip: IpAddr::V4(vip),
        })
        .await
        .expect("undrain");
        assert_eq!(routes_of(&rx), vec![(vip, 10)]);

        // Drain file.
        std::fs::write(&drain, "").expect("touch");
        d.poll_drain_files();
        d.drain_vip_events();
        assert_eq!(routes_of(&rx), vec![(vip, 65000)]);
        std::fs::remove_file(&drain).expect("rm");
        d.poll_drain_files();
        d.drain_vip_events();
        assert_eq!(routes_of(&rx), vec![(vip, 10)]);

        // Reload with the same services: web is kept; operator drains survive.
        d.answer(&Request::VipDrain {
            vip: IpAddr::V4(vip),
        })
        .await
        .expect("drain");
        let c2 = driver_config("", &policy);
        d.apply_config(c2).await.expect("reload");
        assert_eq!(d.services["web"].generation, generation, "rebuilt");
        assert_eq!(routes_of(&rx), vec![(vip, 65000)]);
        d.answer(&Request::VipUndrain {
            vip: IpAddr::V4(vip),
        })
        .await
        .expect("undrain");

        // A changed service is rebuilt: a failing check starting down (alpha) loses quorum.
        let c3 = driver_config(
            "check = { type = \"misc\", program = \"exit 1\", alpha = true, interval = \"60s\", timeout = \"1s\" }\n",
            &policy,
        );
        d.apply_config(c3).await.expect("reload");
        assert_ne!(d.services["web"].generation, generation);
        assert_eq!(routes_of(&rx), vec![(vip, 65000)]);
        let view = d.vips_view();
        assert_eq!(view.vips[0].reason, "quorum lost: web");
        assert_eq!(
            (view.vips[0].services_up, view.vips[0].services_total),
            (0, 1)
        );
        let h = d.health_view().await;
        assert!(h
            .checks
            .iter()
            .any(|r| r.service == "web" && r.check == "MISC_CHECK" && !r.server_up));

        // The VIP no longer health-driven: nothing published.
        let c4 = Arc::new(parse(&format!(
            "{BASE}[[service]]\nname = \"web\"\nvip = \"100.64.0.10\"\nport = 80\nforward = \"nat\"\n\
             [[service.real_server]]\naddress = \"127.0.0.1\"\n"
        )));
        d.apply_config(c4).await.expect("reload");
        assert_eq!(routes_of(&rx), vec![]);
        d.stop_all().await;
    }
}
