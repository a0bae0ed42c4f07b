//! The probe runtime: many `health::Service`s driven on tokio.
//!
//! One task owns every service's sans-IO state. It sleeps until the earliest
//! `poll_timeout` (kept in a heap, one entry per service), calls `on_timeout`, spawns
//! the returned probes into a `JoinSet` (each waits for a permit of a semaphore, so at
//! most `max_in_flight` run at once — thousands, no thread per check), feeds each
//! verdict back with `on_result`, and sends every `ServiceEvent` on an unbounded
//! channel (events are state changes, so the channel stays small, and a slow consumer
//! never stalls probing). A second task re-reads `FILE_CHECK` files every
//! `file_interval` and hands changed values to the owner. Time given to `health` is
//! the `Duration` since the `Instant` the prober started ([`ProberHandle::epoch`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use health::{
    CheckKind, CheckerStats, FileCheck, ProbeOutcome, ProbeResult, ProbeTask, ServerEvent, Service,
    ServiceConfig, ServiceEvent,
};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::{read_tracked_file, run_check, ProbeError};

/// Prober settings.
#[derive(Debug, Clone)]
pub struct ProberConfig {
    /// The most probes running at once (default 4096).
    pub max_in_flight: usize,
    /// How often tracked files are re-read (default 1 s; keepalived uses inotify).
    pub file_interval: Duration,
    /// Seed for the services' warmup jitter.
    pub seed: u64,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            max_in_flight: 4096,
            file_interval: Duration::from_secs(1),
            seed: 0,
        }
    }
}

/// A service event, with which service and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProberEvent {
    /// Index of the service in the list given to [`Prober::start`].
    pub service: usize,
    /// The service's name.
    pub name: Arc<str>,
    /// When, since [`ProberHandle::epoch`].
    pub at: Duration,
    /// What happened.
    pub event: ServiceEvent,
}

/// One checker of a server, for `fulcrum health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerStatus {
    /// keepalived's block name (`TCP_CHECK` …).
    pub kind: &'static str,
    /// Whether the checker passes.
    pub up: bool,
    /// The last attempt's verdict.
    pub last_result: Option<ProbeOutcome>,
    /// When it came, since the epoch.
    pub last_result_at: Option<Duration>,
    /// How long the last attempt took.
    pub last_latency: Option<Duration>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// `health`'s counters for this checker.
    pub stats: CheckerStats,
}

/// One real server, for `fulcrum health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// The server's address and port.
    pub server: SocketAddr,
    /// Whether it is alive (every checker passes, no file marks it down).
    pub alive: bool,
    /// Its effective weight.
    pub weight: u32,
    /// When it last went up or down, since the epoch (`None`: never changed).
    pub last_change: Option<Duration>,
    /// Its checkers.
    pub checkers: Vec<CheckerStatus>,
}

/// One service, for `fulcrum health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The service's name.
    pub name: Arc<str>,
    /// Whether it holds quorum.
    pub has_quorum: bool,
    /// The sum of its live servers' weights.
    pub live_weight: u64,
    /// Its real servers.
    pub servers: Vec<ServerStatus>,
}

/// The prober's entry point.
#[derive(Debug)]
pub struct Prober;

/// Talks to a running prober.
#[derive(Debug)]
pub struct ProberHandle {
    cmd: mpsc::UnboundedSender<Command>,
    metrics: Arc<Metrics>,
    epoch: Instant,
    task: tokio::task::JoinHandle<()>,
    files: Option<tokio::task::JoinHandle<()>>,
}

enum Command {
    Status(oneshot::Sender<Vec<ServiceStatus>>),
    Shutdown(oneshot::Sender<Vec<ProberEvent>>),
}

/// Per-checker bookkeeping the prober adds to `health`'s.
#[derive(Debug, Clone, Default)]
struct Slot {
    last_result: Option<ProbeOutcome>,
    last_result_at: Option<Duration>,
    last_latency: Option<Duration>,
    consecutive_failures: u32,
}

struct Svc {
    name: Arc<str>,
    svc: Service,
    kinds: Vec<Vec<Arc<CheckKind>>>,
    slots: Vec<Vec<Slot>>,
    last_change: Vec<Option<Duration>>,
    scheduled: Option<Duration>,
}

/// A finished probe.
struct Done {
    service: usize,
    task: ProbeTask,
    outcome: ProbeOutcome,
    latency: Duration,
}

/// A tracked file's value.
struct FileValue {
    service: usize,
    server: usize,
    file: usize,
    value: i64,
}

impl Prober {
    /// Builds the services and starts probing them on the current tokio runtime.
    /// Returns the handle and the event stream. Call `Service::has_quorum` through
    /// [`ProberHandle::status`] once at start to seed VIP announcers.
    pub fn start(
        services: Vec<ServiceConfig>,
        cfg: ProberConfig,
    ) -> Result<(ProberHandle, mpsc::UnboundedReceiver<ProberEvent>), ProbeError> {
        let epoch = Instant::now();
        let mut svcs = Vec::with_capacity(services.len());
        let mut files = Vec::new();
        for (i, sc) in services.into_iter().enumerate() {
            let name: Arc<str> = Arc::from(sc.name.as_str());
            let kinds: Vec<Vec<Arc<CheckKind>>> = sc
                .real_servers
                .iter()
                .map(|rs| {
                    rs.checkers
                        .iter()
                        .map(|c| Arc::new(c.kind.clone()))
                        .collect()
                })
                .collect();
            for (si, rs) in sc.real_servers.iter().enumerate() {
                for (fi, f) in rs.files.iter().enumerate() {
                    files.push((i, si, fi, f.clone()));
                }
            }
            let seed = cfg
                .seed
                .wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let svc = Service::new(sc.clone(), Duration::ZERO, seed)
                .map_err(|e| ProbeError::Config(sc.name.clone(), e))?;
            svcs.push(Svc {
                name,
                slots: kinds
                    .iter()
                    .map(|k| vec![Slot::default(); k.len()])
                    .collect(),
                last_change: vec![None; kinds.len()],
                kinds,
                svc,
                scheduled: None,
            });
        }
        let metrics = Arc::new(Metrics::default());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (file_tx, file_rx) = mpsc::unbounded_channel();
        let files_task = (!files.is_empty()).then(|| {
            tokio::spawn(watch_files(
                files,
                cfg.file_interval,
                file_tx,
                metrics.clone(),
            ))
        });
        let owner = Owner {
            epoch,
            svcs,
            heap: BinaryHeap::new(),
            probes: JoinSet::new(),
            permits: Arc::new(Semaphore::new(cfg.max_in_flight.max(1))),
            metrics: metrics.clone(),
            events: ev_tx,
        };
        let task = tokio::spawn(owner.run(cmd_rx, file_rx));
        Ok((
            ProberHandle {
                cmd: cmd_tx,
                metrics,
                epoch,
                task,
                files: files_task,
            },
            ev_rx,
        ))
    }
}

impl ProberHandle {
    /// The counters and latency histogram.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The instant that `Duration`s in events and status count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Every service's and server's state.
    pub async fn status(&self) -> Result<Vec<ServiceStatus>, ProbeError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Status(tx))
            .map_err(|_| ProbeError::Stopped)?;
        rx.await.map_err(|_| ProbeError::Stopped)
    }

    /// Stops probing (probes in flight are cancelled, their programs killed) and returns
    /// the `omega` events of `Service::shutdown` for services that have it.
    pub async fn shutdown(self) -> Result<Vec<ProberEvent>, ProbeError> {
        if let Some(f) = &self.files {
            f.abort();
        }
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Command::Shutdown(tx))
            .map_err(|_| ProbeError::Stopped)?;
        let events = rx.await.map_err(|_| ProbeError::Stopped)?;
        self.task.await.map_err(|_| ProbeError::Stopped)?;
        Ok(events)
    }
}

/// Re-reads tracked files, sending each value that changed (and every value once).
async fn watch_files(
    files: Vec<(usize, usize, usize, FileCheck)>,
    every: Duration,
    tx: mpsc::UnboundedSender<FileValue>,
    metrics: Arc<Metrics>,
) {
    let mut last: HashMap<usize, i64> = HashMap::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for (n, (service, server, file, check)) in files.iter().enumerate() {
            let value = read_tracked_file(check).await;
            metrics.file_reads.fetch_add(1, Ordering::Relaxed);
            if last.insert(n, value) != Some(value) {
                let v = FileValue {
                    service: *service,
                    server: *server,
                    file: *file,
                    value,
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    }
}

struct Owner {
    epoch: Instant,
    svcs: Vec<Svc>,
    heap: BinaryHeap<Reverse<(Duration, usize)>>,
    probes: JoinSet<Done>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<ProberEvent>,
}

impl Owner {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut files: mpsc::UnboundedReceiver<FileValue>,
    ) {
        for i in 0..self.svcs.len() {
            self.reschedule(i);
        }
        loop {
            let next = self.heap.peek().map(|Reverse((t, _))| self.epoch + *t);
            tokio::select! {
                biased;
                cmd = cmds.recv() => match cmd {
                    Some(Command::Status(tx)) => {
                        let _ = tx.send(self.status());
                    }
                    Some(Command::Shutdown(tx)) => {
                        self.probes.abort_all();
                        let _ = tx.send(self.shutdown());
                        return;
                    }
                    None => {
                        self.probes.abort_all();
                        return;
                    }
                },
                Some(joined) = self.probes.join_next(), if !self.probes.is_empty() => {
                    let now = self.now();
                    if let Ok(done) = joined {
                        self.finish(now, done);
                    }
                    while let Some(joined) = self.probes.try_join_next() {
                        if let Ok(done) = joined {
                            self.finish(now, done);
                        }
                    }
                }
                Some(fv) = files.recv() => {
                    let now = self.now();
                    if let Some(s) = self.svcs.get_mut(fv.service) {
                        // Indices come from the configuration the service was built from.
                        let _ = s.svc.set_file_value(fv.server, fv.file, fv.value);
                    }
                    self.drain_events(fv.service, now);
                    self.reschedule(fv.service);
                }
                () = sleep_until_opt(next) => {
                    let now = self.now();
                    self.fire_due(now);
                }
            }
        }
    }

    fn reschedule(&mut self, i: usize) {
        let Some(s) = self.svcs.get_mut(i) else {
            return;
        };
        let t = s.svc.poll_timeout();
        if t != s.scheduled {
            s.scheduled = t;
            if let Some(t) = t {
                self.heap.push(Reverse((t, i)));
            }
        }
    }

    fn fire_due(&mut self, now: Duration) {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let Some(s) = self.svcs.get_mut(i) else {
                continue;
            };
            if s.scheduled != Some(t) {
                continue; // superseded entry
            }
            s.scheduled = None;
            let tasks = s.svc.on_timeout(now);
            for task in tasks {
                self.spawn(i, task);
            }
            self.drain_events(i, now);
            self.reschedule(i);
        }
    }

    fn spawn(&mut self, service: usize, task: ProbeTask) {
        let Some(s) = self.svcs.get(service) else {
            return;
        };
        let Some(kind) = s.kinds.get(task.server).and_then(|k| k.get(task.checker)) else {
            return;
        };
        let Some(rs) = s.svc.servers().get(task.server) else {
            return;
        };
        let kind = kind.clone();
        let addr = rs.socket_addr();
        let timeout = task.request.timeout;
        let deadline = Instant::now() + timeout;
        let permits = self.permits.clone();
        self.metrics.probes_started.fetch_add(1, Ordering::Relaxed);
        self.probes.spawn(async move {
            // The semaphore is never closed; without a permit the probe just runs.
            let _permit = permits.acquire_owned().await.ok();
            let start = Instant::now();
            let outcome = tokio::time::timeout_at(deadline, run_check(&kind, addr, timeout))
                .await
                .unwrap_or(ProbeOutcome::Failure(health::FailureKind::Timeout));
            Done {
                service,
                task,
                outcome,
                latency: start.elapsed(),
            }
        });
    }

    fn finish(&mut self, now: Duration, done: Done) {
        self.metrics.record(done.outcome, done.latency);
        let i = done.service;
        let Some(s) = self.svcs.get_mut(i) else {
            return;
        };
        let result = ProbeResult {
            seq: done.task.request.seq,
            outcome: done.outcome,
        };
        let used = s
            .svc
            .on_result(now, done.task.server, done.task.checker, result)
            .unwrap_or(false);
        if used {
            if let Some(slot) = s
                .slots
                .get_mut(done.task.server)
                .and_then(|v| v.get_mut(done.task.checker))
            {
                slot.last_result = Some(done.outcome);
                slot.last_result_at = Some(now);
                slot.last_latency = Some(done.latency);
                slot.consecutive_failures = if done.outcome.is_success() {
                    0
                } else {
                    slot.consecutive_failures.saturating_add(1)
                };
            }
        } else {
            self.metrics.stale_results.fetch_add(1, Ordering::Relaxed);
        }
        self.drain_events(i, now);
        self.reschedule(i);
    }

    fn drain_events(&mut self, i: usize, now: Duration) {
        let Some(s) = self.svcs.get_mut(i) else {
            return;
        };
        while let Some(event) = s.svc.poll_event() {
            if let ServiceEvent::Server {
                index,
                event: ServerEvent::Up { .. } | ServerEvent::Down { .. },
            } = event
            {
                if let Some(c) = s.last_change.get_mut(index) {
                    *c = Some(now);
                }
            }
            // A closed receiver means the daemon no longer listens; keep probing.
            let _ = self.events.send(ProberEvent {
                service: i,
                name: s.name.clone(),
                at: now,
                event,
            });
        }
    }

    fn status(&self) -> Vec<ServiceStatus> {
        self.svcs
            .iter()
            .map(|s| ServiceStatus {
                name: s.name.clone(),
                has_quorum: s.svc.has_quorum(),
                live_weight: s.svc.live_weight(),
                servers: s
                    .svc
                    .servers()
                    .iter()
                    .enumerate()
                    .map(|(si, rs)| ServerStatus {
                        server: rs.socket_addr(),
                        alive: rs.alive(),
                        weight: rs.weight(),
                        last_change: s.last_change.get(si).copied().flatten(),
                        checkers: rs
                            .checkers()
                            .iter()
                            .enumerate()
                            .map(|(ci, c)| {
                                let slot = s
                                    .slots
                                    .get(si)
                                    .and_then(|v| v.get(ci))
                                    .cloned()
                                    .unwrap_or_default();
                                CheckerStatus {
                                    kind: c.config().kind.keyword(),
                                    up: c.is_up(),
                                    last_result: slot.last_result,
                                    last_result_at: slot.last_result_at,
                                    last_latency: slot.last_latency,
                                    consecutive_failures: slot.consecutive_failures,
                                    stats: c.stats(),
                                }
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn shutdown(&mut self) -> Vec<ProberEvent> {
        let now = self.now();
        let mut out = Vec::new();
        for (i, s) in self.svcs.iter_mut().enumerate() {
            for event in s.svc.shutdown() {
                out.push(ProberEvent {
                    service: i,
                    name: s.name.clone(),
                    at: now,
                    event,
                });
            }
        }
        out
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
