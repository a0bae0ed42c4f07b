//! The daemon runtime: the control socket, the metrics endpoint, configuration reloads,
//! signals, and the subsystems that plug in as tokio tasks.
//!
//! A subsystem (OSPF driver, health checker, RIB/kernel sync, dataplane, …) implements
//! [`Subsystem`]. It runs as one task receiving a [`SubsystemContext`]: the validated
//! configuration as a `watch` channel (a new value after each successful reload), a
//! shutdown signal, the metrics registry, and the control requests of the [`Topic`]s it
//! declares, each with a reply channel. Views whose subsystem is not running are answered
//! with a `not_available` error: the daemon never makes data up.
//!
//! Reload (SIGHUP or `fulcrum reload`): the file is read and validated whole; a bad file is
//! refused with the reasons and the running configuration stays. Changes to keys that need
//! a restart (`[dataplane]`, `[global].control_socket`, `[global].metrics*`) are refused too.
//! SIGTERM/SIGINT: the graceful shutdown sequence (see `docs/operations.md`):
//! 1. `STOPPING=1`; the shutdown signal goes to every subsystem except those that forward
//!    traffic ([`Subsystem::stops_after_drain`]): routing flushes the VIPs from OSPF and
//!    waits for the neighbours' acknowledgements (capped), health stops probing;
//! 2. once they have finished (at most 10 s), the forwarding subsystems keep running for
//!    `[global].shutdown_drain_ms` (established connections drain while no new VIP traffic
//!    arrives), the control socket and metrics still answering;
//! 3. then they, the control socket and the metrics endpoint are stopped (10 s each at
//!    most) and the control socket file is removed.
//!
//! systemd (`Type=notify`): `READY=1` once every forwarding subsystem answers its first
//! request (the dataplane is programmed) and the OSPF subsystem answers (OSPF started);
//! `RELOADING=1` … `READY=1` around reloads; `STOPPING=1` and `STATUS=` lines on
//! shutdown ([`crate::notify`]).

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::control::{self, ErrorBody, ReloadView, Request, ResponseEnvelope, StatusView};
use crate::metrics::{self, Metrics};
use crate::notify::Notifier;

/// Errors of the daemon runtime.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The control socket could not be set up.
    #[error("control socket {path}: {source}")]
    ControlSocket {
        /// Socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another daemon answers on the control socket.
    #[error("control socket {0} is in use: is another fulcrumd running?")]
    AlreadyRunning(PathBuf),
    /// The metrics endpoint could not be set up.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// A signal handler could not be installed.
    #[error("signal handler: {0}")]
    Signal(std::io::Error),
    /// Two subsystems claim the same topic.
    #[error("subsystems {first} and {second} both serve {topic:?}")]
    TopicClash {
        /// The topic.
        topic: Topic,
        /// First claimant.
        first: &'static str,
        /// Second claimant.
        second: &'static str,
    },
    /// A subsystem failed.
    #[error("subsystem {name} failed: {source}")]
    Subsystem {
        /// Subsystem name.
        name: &'static str,
        /// Its error.
        source: SubsystemError,
    },
}

/// The error a subsystem task ends with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SubsystemError(pub String);

/// The groups of control requests a subsystem can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `services`, `conns`, `ipvsadm`.
    Dataplane,
    /// `health`.
    Health,
    /// `vips`, `vip_drain`, `vip_undrain`.
    Vips,
    /// `routes`.
    Routes,
    /// `ospf_neighbors`, `ospf_interfaces`, `ospf_database`.
    Ospf,
    /// `bfd_peers`.
    Bfd,
    /// `vrrp`.
    Vrrp,
}

impl Topic {
    /// The topic of a request, with the subsystem named in `not_available` errors;
    /// `None` for requests the daemon answers itself.
    pub fn of(request: &Request) -> Option<(Topic, &'static str)> {
        Some(match request {
            Request::Status | Request::Reload => return None,
            Request::Services { .. } | Request::Conns | Request::Ipvsadm { .. } => {
                (Topic::Dataplane, "dataplane")
            }
            Request::Health => (Topic::Health, "health-check"),
            Request::Vips | Request::VipDrain { .. } | Request::VipUndrain { .. } => {
                (Topic::Vips, "VIP announcement")
            }
            Request::Routes => (Topic::Routes, "RIB"),
            Request::OspfNeighbors | Request::OspfInterfaces | Request::OspfDatabase => {
                (Topic::Ospf, "OSPF")
            }
            Request::BfdPeers => (Topic::Bfd, "BFD"),
            Request::Vrrp => (Topic::Vrrp, "VRRP"),
        })
    }
}

/// A control request handed to a subsystem, with the channel for its answer.
pub struct ControlCall {
    /// The request.
    pub request: Request,
    /// Where the answer goes: a view serialized to JSON, or an error.
    pub reply: oneshot::Sender<Result<serde_json::Value, ErrorBody>>,
}

/// The shutdown signal: [`Shutdown::wait`] resolves once shutdown has begun.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Whether shutdown has begun.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown begins (at once if it has).
    pub async fn wait(&mut self) {
        // An error means the daemon is gone: that is a shutdown too.
        let _ = self.0.wait_for(|v| *v).await;
    }
}

/// What a subsystem task receives.
pub struct SubsystemContext {
    /// The running configuration; changes after each successful reload.
    pub config: watch::Receiver<Arc<Config>>,
    /// The shutdown signal.
    pub shutdown: Shutdown,
    /// Control requests of the subsystem's topics.
    pub requests: mpsc::Receiver<ControlCall>,
    /// Register collectors here.
    pub registry: prometheus::Registry,
}

/// The future a subsystem runs as.
pub type SubsystemFuture = Pin<Box<dyn Future<Output = Result<(), SubsystemError>> + Send>>;

/// A part of the daemon that runs as a task.
pub trait Subsystem: Send + 'static {
    /// Short name for logs and `status`.
    fn name(&self) -> &'static str;
    /// The control topics it answers.
    fn topics(&self) -> &'static [Topic];
    /// Runs until shutdown; an error stops the daemon.
    fn run(self: Box<Self>, ctx: SubsystemContext) -> SubsystemFuture;
    /// Whether the subsystem forwards traffic. Such a subsystem receives the shutdown
    /// signal last: after the others (OSPF flushing the VIPs, …) have finished and
    /// `[global].shutdown_drain_ms` has passed. Default: no.
    fn stops_after_drain(&self) -> bool {
        false
    }
}

struct Shared {
    config_path: PathBuf,
    config_tx: watch::Sender<Arc<Config>>,
    generation: AtomicU64,
    last_reload: Mutex<Option<ReloadView>>,
    reload_lock: tokio::sync::Mutex<()>,
    routes: HashMap<Topic, mpsc::Sender<ControlCall>>,
    names: Vec<&'static str>,
    started: Instant,
    metrics: Metrics,
    notifier: Notifier,
    ready: std::sync::atomic::AtomicBool,
}

/// A daemon being assembled: a configuration plus subsystems; [`Daemon::run`] runs it.
pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    subsystems: Vec<Box<dyn Subsystem>>,
    metrics: Metrics,
    notifier: Notifier,
    withdraw: watch::Sender<bool>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Daemon {
    /// A daemon for a configuration already loaded from `config_path`.
    pub fn new(config_path: PathBuf, config: Config) -> Result<Daemon, DaemonError> {
        let metrics = Metrics::new()?;
        metrics.record_reload(true, unix_now());
        Ok(Daemon {
            config_path,
            config,
            subsystems: Vec::new(),
            metrics,
            notifier: Notifier::from_env(),
            withdraw: watch::channel(false).0,
        })
    }

    /// Sends systemd notifications to `notifier` instead of `$NOTIFY_SOCKET`.
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// The signal that shutdown has begun (the VIPs are being withdrawn); forwarding
    /// subsystems use it to keep their state as it is while they drain.
    pub fn shutdown_signal(&self) -> Shutdown {
        Shutdown(self.withdraw.subscribe())
    }

    /// The metrics registry, for collectors created before the subsystems run.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Adds a subsystem.
    pub fn add_subsystem(&mut self, s: Box<dyn Subsystem>) {
        self.subsystems.push(s);
    }

    /// Runs with the process signals: SIGHUP reloads, SIGTERM and SIGINT stop.
    pub async fn run(self) -> Result<(), DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let stop = async move {
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return; }
                    _ = int.recv() => { tracing::info!("SIGINT: shutting down"); return; }
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading configuration");
                        // A full queue means reloads are already pending.
                        let _ = reload_tx.try_send(());
                    }
                }
            }
        };
        self.run_until(stop, reload_rx).await
    }

    /// Runs until `stop` resolves; each message on `reload` triggers a reload.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()>,
        mut reload: mpsc::Receiver<()>,
    ) -> Result<(), DaemonError> {
        let Daemon {
            config_path,
            config,
            subsystems,
            metrics,
            notifier,
            withdraw: withdraw_tx,
        } = self;
        let socket_path = config.global.control_socket.clone();
        let metrics_addr = config
            .global
            .metrics_enabled
            .then_some(config.global.metrics);
        let (config_tx, _) = watch::channel(Arc::new(config));
        // Two shutdown signals: `withdraw_tx` for most subsystems, `shutdown_tx` for the
        // forwarding ones, the control socket and the metrics endpoint.
        let withdraw_rx = withdraw_tx.subscribe();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);

        // Wire topics to subsystems.
        let mut routes = HashMap::new();
        let mut owners: HashMap<Topic, &'static str> = HashMap::new();
        let mut pending = Vec::new();
        for s in subsystems {
            let (tx, rx) = mpsc::channel(64);
            for &t in s.topics() {
                if let Some(first) = owners.insert(t, s.name()) {
                    return Err(DaemonError::TopicClash {
                        topic: t,
                        first,
                        second: s.name(),
                    });
                }
                routes.insert(t, tx.clone());
            }
            pending.push((s, rx));
        }
        let names = pending.iter().map(|(s, _)| s.name()).collect();
        let shared = Arc::new(Shared {
            config_path,
            config_tx,
            generation: AtomicU64::new(1),
            last_reload: Mutex::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            routes,
            names,
            started: Instant::now(),
            metrics: metrics.clone(),
            notifier,
            ready: std::sync::atomic::AtomicBool::new(false),
        });

        // Metrics first: a failure there must not leave a socket file behind.
        let metrics_listener = match metrics_addr {
            Some(addr) => Some((
                addr,
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(metrics::MetricsError::from)?,
            )),
            None => None,
        };
        let listener = bind_control_socket(&socket_path)?;
        tracing::info!("control socket {}", socket_path.display());
        // `first`: stopped when shutdown begins; `last`: after the drain.
        let mut first: JoinSet<TaskEnd> = JoinSet::new();
        let mut tasks: JoinSet<TaskEnd> = JoinSet::new();
        if let Some((addr, l)) = metrics_listener {
            tracing::info!("metrics on http://{addr}/metrics");
            let rx = shutdown_rx.clone();
            let m = metrics.clone();
            tasks.spawn(async move {
                metrics::serve(l, m, rx).await;
                ("metrics", Ok(()))
            });
        }
        {
            let sh = shared.clone();
            let rx = shutdown_rx.clone();
            tasks.spawn(async move {
                serve_control(listener, sh, rx).await;
                ("control", Ok(()))
            });
        }
        let mut forwarders = 0;
        for (s, rx) in pending {
            let name = s.name();
            let after_drain = s.stops_after_drain();
            let ctx = SubsystemContext {
                config: shared.config_tx.subscribe(),
                shutdown: Shutdown(if after_drain {
                    shutdown_rx.clone()
                } else {
                    withdraw_rx.clone()
                }),
                requests: rx,
                registry: metrics.registry().clone(),
            };
            tracing::info!("starting subsystem {name}");
            let fut = s.run(ctx);
            if after_drain {
                forwarders += 1;
                tasks.spawn(async move { (name, fut.await) });
            } else {
                first.spawn(async move { (name, fut.await) });
            }
        }

        tokio::pin!(stop);
        let readiness = wait_ready(&shared);
        tokio::pin!(readiness);
        let mut ready = false;
        let mut failure = None;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                status = &mut readiness, if !ready => {
                    ready = true;
                    shared.ready.store(true, Ordering::SeqCst);
                    tracing::info!("ready: {status}");
                    shared.notifier.ready(&status);
                }
                Some(()) = reload.recv() => {
                    let v = do_reload(&shared).await;
                    if v.applied {
                        tracing::info!("{}", v.message);
                    } else {
                        tracing::error!("reload refused: {}", v.message);
                    }
                }
                Some(done) = first.join_next() => {
                    if let Some(e) = task_ended(done) {
                        failure = Some(e);
                        break;
                    }
                }
                Some(done) = tasks.join_next() => {
                    if let Some(e) = task_ended(done) {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }

        // Orderly shutdown: withdraw, drain, stop forwarding.
        shared.notifier.stopping("stopping: withdrawing the VIPs");
        tracing::info!("shutdown: withdrawing the VIPs");
        let _ = withdraw_tx.send(true);
        let withdrawn = async { while first.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_WAIT, withdrawn).await.is_err() {
            tracing::warn!("subsystems did not stop within {STOP_WAIT:?}; aborting them");
            first.abort_all();
        }
        let drain_ms = shared.config_tx.borrow().global.shutdown_drain_ms;
        if forwarders > 0 && drain_ms > 0 && failure.is_none() {
            let status = format!("stopping: draining established connections for {drain_ms} ms");
            tracing::info!(
                "shutdown: VIPs withdrawn; draining established connections for {drain_ms} ms"
            );
            shared.notifier.status(&status);
            let sleep = tokio::time::sleep(Duration::from_millis(drain_ms));
            tokio::pin!(sleep);
            // A forwarding subsystem that ends during the drain ends it.
            tokio::select! {
                _ = &mut sleep => {}
                Some(done) = tasks.join_next() => {
                    failure = task_ended(done);
                }
            }
        }
        if forwarders > 0 {
            shared.notifier.status("stopping: stopping the dataplane");
            tracing::info!("shutdown: stopping the dataplane, the control socket and metrics");
        } else {
            shared
                .notifier
                .status("stopping: closing the control socket and metrics");
            tracing::info!("shutdown: closing the control socket and metrics");
        }
        let _ = shutdown_tx.send(true);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(STOP_WAIT, drain).await.is_err() {
            tracing::warn!("subsystems did not stop within {STOP_WAIT:?}; aborting them");
            tasks.abort_all();
        }
        if let Err(e) = std::fs::remove_file(&socket_path) {
            tracing::warn!("removing {}: {e}", socket_path.display());
        }
        tracing::info!("stopped");
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// How long each shutdown stage may take before its tasks are aborted.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What a task returns: its name and outcome.
type TaskEnd = (&'static str, Result<(), SubsystemError>);

/// Logs a task's end; the error that stops the daemon, if any.
fn task_ended(done: Result<TaskEnd, tokio::task::JoinError>) -> Option<DaemonError> {
    match done {
        Ok((name, Ok(()))) => {
            tracing::warn!("task {name} ended");
            None
        }
        Ok((name, Err(e))) => {
            tracing::error!("subsystem {name} failed: {e}");
            Some(DaemonError::Subsystem { name, source: e })
        }
        Err(e) => {
            tracing::error!("task panicked or was cancelled: {e}");
            Some(DaemonError::Subsystem {
                name: "task",
                source: SubsystemError(e.to_string()),
            })
        }
    }
}

/// Resolves once the subsystems that readiness depends on answer a first request: the
/// dataplane (`services`: its services are programmed) and OSPF (`ospf_interfaces`: the
/// speaker has started). Any answer counts, an error included (a subsystem that cannot
/// start stops the daemon instead). Returns the `STATUS=` text.
async fn wait_ready(shared: &Shared) -> String {
    let probes = [
        (
            Topic::Dataplane,
            Request::Services {
                stats: false,
                rate: false,
            },
        ),
        (Topic::Ospf, Request::OspfInterfaces),
    ];
    for (topic, request) in probes {
        if shared.routes.contains_key(&topic) {
            if let Err(e) = dispatch(shared, request).await {
                tracing::debug!("readiness probe {topic:?}: {}", e.message);
            }
        }
    }
    running_status(shared)
}

/// The `STATUS=` text of a running daemon.
fn running_status(shared: &Shared) -> String {
    format!(
        "running: configuration generation {}, subsystems {}",
        shared.generation.load(Ordering::Relaxed),
        if shared.names.is_empty() {
            "none".to_string()
        } else {
            shared.names.join(", ")
        }
    )
}

/// Binds the control socket: parent directory created (0700), a stale socket replaced,
/// a live one refused, mode 0600.
fn bind_control_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::ControlSocket {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(DaemonError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

async fn serve_control(
    listener: UnixListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let sh = shared.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle_connection(stream, sh).await {
                            tracing::debug!("control connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("control accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

async fn handle_connection(stream: UnixStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    loop {
        let mut line = String::new();
        let n = (&mut reader)
            .take(control::MAX_LINE as u64)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let resp = match control::decode_request(line.trim_end()) {
            Ok(env) => ResponseEnvelope::new(env.id, dispatch(&shared, env.request).await),
            Err((id, e)) => ResponseEnvelope::new(id, Err(e)),
        };
        let mut out = serde_json::to_string(&resp).unwrap_or_else(|e| {
            format!(
                r#"{{"version":{},"id":0,"error":{{"code":"internal","message":"{e}"}}}}"#,
                control::PROTOCOL_VERSION
            )
        });
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
        if !line.ends_with('\n') {
            // Over-long or unterminated line: the stream is out of sync.
            return Ok(());
        }
    }
}

async fn dispatch(shared: &Shared, request: Request) -> Result<serde_json::Value, ErrorBody> {
    let to_json =
        |v| serde_json::to_value(v).map_err(|e| ErrorBody::new("internal", e.to_string()));
    match request {
        Request::Status => {
            let view = StatusView {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pid: std::process::id(),
                uptime_seconds: shared.started.elapsed().as_secs(),
                config_path: shared.config_path.display().to_string(),
                config_generation: shared.generation.load(Ordering::Relaxed),
                subsystems: shared.names.iter().map(|s| s.to_string()).collect(),
                last_reload: shared.last_reload.lock().map(|g| g.clone()).unwrap_or(None),
            };
            return serde_json::to_value(view)
                .map_err(|e| ErrorBody::new("internal", e.to_string()));
        }
        Request::Reload => {
            let v = do_reload(shared).await;
            if v.applied {
                return to_json(v);
            }
            return Err(ErrorBody::new("reload_failed", v.message));
        }
        _ => {}
    }
    let Some((topic, subsystem)) = Topic::of(&request) else {
        return Err(ErrorBody::new("internal", "request without a topic"));
    };
    let Some(tx) = shared.routes.get(&topic) else {
        if let Request::Ipvsadm { .. } = request {
            return Err(ErrorBody::new(
                "not_supported",
                "ipvsadm commands are not yet supported by this daemon (no dataplane subsystem)",
            ));
        }
        return Err(ErrorBody::not_available(request.kind(), subsystem));
    };
    let (reply, rx) = oneshot::channel();
    if tx.send(ControlCall { request, reply }).await.is_err() {
        return Err(ErrorBody::new(
            "not_available",
            format!("the {subsystem} subsystem has stopped"),
        ));
    }
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(ErrorBody::new(
            "internal",
            format!("the {subsystem} subsystem dropped the request"),
        )),
        Err(_) => Err(ErrorBody::new(
            "internal",
            format!("the {subsystem} subsystem did not answer within 10s"),
        )),
    }
}

/// Keys whose change needs a restart; `None` when the new configuration can be applied.
fn restart_needed(old: &Config, new: &Config) -> Option<String> {
    let mut keys = Vec::new();
    if old.dataplane != new.dataplane {
        keys.push("[dataplane]");
    }
    if old.global.control_socket != new.global.control_socket {
        keys.push("global.control_socket");
    }
    if old.global.metrics != new.global.metrics
        || old.global.metrics_enabled != new.global.metrics_enabled
    {
        keys.push("global.metrics");
    }
    if old
        .interface
        .iter()
        .map(|i| (&i.name, &i.device))
        .ne(new.interface.iter().map(|i| (&i.name, &i.device)))
        && new.dataplane.mode == crate::config::DataplaneMode::Dpdk
    {
        keys.push("interface (dpdk ports)");
    }
    (!keys.is_empty()).then(|| {
        format!(
            "{} changed; restart fulcrumd to apply (the running configuration stays)",
            keys.join(", ")
        )
    })
}

async fn do_reload(shared: &Shared) -> ReloadView {
    let _guard = shared.reload_lock.lock().await;
    let ready = shared.ready.load(Ordering::SeqCst);
    if ready {
        shared
            .notifier
            .reloading(&format!("reloading {}", shared.config_path.display()));
    }
    let view = match Config::load(&shared.config_path) {
        Err(e) => ReloadView {
            applied: false,
            generation: shared.generation.load(Ordering::Relaxed),
            message: format!(
                "{} refused, the running configuration stays:\n{e}",
                shared.config_path.display()
            ),
        },
        Ok(new) => {
            let old = shared.config_tx.borrow().clone();
            match restart_needed(&old, &new) {
                Some(msg) => ReloadView {
                    applied: false,
                    generation: shared.generation.load(Ordering::Relaxed),
                    message: msg,
                },
                None => {
                    let generation = shared.generation.fetch_add(1, Ordering::Relaxed) + 1;
                    shared.config_tx.send_replace(Arc::new(new));
                    ReloadView {
                        applied: true,
                        generation,
                        message: format!(
                            "configuration generation {generation} loaded from {}",
                            shared.config_path.display()
                        ),
                    }
                }
            }
        }
    };
    shared.metrics.record_reload(view.applied, unix_now());
    if let Ok(mut g) = shared.last_reload.lock() {
        *g = Some(view.clone());
    }
    if ready {
        let mut status = running_status(shared);
        if !view.applied {
            status.push_str("; last reload refused");
        }
        shared.notifier.ready(&status);
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Client;

    const CONFIG: &str = r#"
[global]
control_socket = "SOCK"
metrics_enabled = false

[[service]]
name = "web"
vip = "192.168.7.182"
port = 80
forward = "nat"

[[service.real_server]]
address = "192.168.7.27"
"#;

    /// A subsystem answering `routes` from the configuration's static routes, counting
    /// the configurations it saw.
    struct EchoRoutes {
        seen: Arc<AtomicU64>,
    }

    impl Subsystem for EchoRoutes {
        fn name(&self) -> &'static str {
            "echo-routes"
        }
        fn topics(&self) -> &'static [Topic] {
            &[Topic::Routes]
        }
        fn run(self: Box<Self>, mut ctx: SubsystemContext) -> SubsystemFuture {
            Box::pin(async move {
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.wait() => return Ok(()),
                        Ok(()) = ctx.config.changed() => {
                            self.seen.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(call) = ctx.requests.recv() => {
                            let n = ctx.config.borrow().service.len();
                            let _ = call.reply.send(Ok(serde_json::json!({ "services": n })));
                        }
                    }
                }
            })
        }
    }

    #[tokio::test]
    async fn control_reload_and_shutdown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("run/control.sock");
        let cfg_path = dir.path().join("fulcrum.toml");
        let text = CONFIG.replace("SOCK", &sock.display().to_string());
        std::fs::write(&cfg_path, &text).expect("write");
        let config = Config::load(&cfg_path).expect("load");
        let mut d = Daemon::new(cfg_path.clone(), config).expect("daemon");
        let seen = Arc::new(AtomicU64::new(0));
        d.add_subsystem(Box::new(EchoRoutes { seen: seen.clone() }));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (_reload_tx, reload_rx) = mpsc::channel(1);
        let run = tokio::spawn(d.run_until(
            async {
                let _ = stop_rx.await;
            },
            reload_rx,
        ));
        // Wait for the socket.
        let mut client = None;
        for _ in 0..100 {
            if let Ok(c) = Client::connect(&sock).await {
                client = Some(c);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut c = client.expect("daemon socket");
        let mode = std::fs::metadata(&sock).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Served by the subsystem.
        let v = c.call(Request::Routes).await.expect("routes");
        assert_eq!(v["services"], 1);
        // No subsystem: not available.
        let e = c.call(Request::OspfNeighbors).await.expect_err("no ospf");
        assert!(
            matches!(&e, control::ControlError::Daemon(b) if b.code == "not_available"),
            "{e}"
        );
        let e = c
            .call(Request::Ipvsadm {
                args: vec!["-Ln".into()],
            })
            .await
            .expect_err("no dataplane");
        assert!(
            matches!(&e, control::ControlError::Daemon(b) if b.code == "not_supported"),
            "{e}"
        );

        // Raw protocol: an unknown request and garbage get clear errors on one connection.
        {
            let raw = UnixStream::connect(&sock).await.expect("raw connect");
            let (r, mut w) = raw.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(
                b"{\"version\":1,\"id\":9,\"request\":{\"type\":\"frobnicate\"}}\nnot json\n",
            )
            .await
            .expect("write");
            let first: serde_json::Value =
                serde_json::from_str(&lines.next_line().await.expect("read").expect("line"))
                    .expect("json");
            assert_eq!(first["id"], 9);
            assert_eq!(first["error"]["code"], "unknown_request");
            let second: serde_json::Value =
                serde_json::from_str(&lines.next_line().await.expect("read").expect("line"))
                    .expect("json");
            assert_eq!(second["error"]["code"], "bad_request");
        }

        // A bad configuration is refused and the running one stays.
        std::fs::write(&cfg_path, text.replace("\"nat\"", "\"natt\"")).expect("write");
        let e = c.call(Request::Reload).await.expect_err("bad reload");
        match &e {
            control::ControlError::Daemon(b) => {
                assert_eq!(b.code, "reload_failed");
                assert!(
                    b.message.contains("line 10: service[0].forward"),
                    "{}",
                    b.message
                );
            }
            other => panic!("unexpected {other}"),
        }
        // A good one is applied and reaches the subsystem.
        let two = format!(
            "{text}\n[[service]]\nname = \"dns\"\nvip = \"192.168.7.182\"\nport = 53\nprotocol = \"udp\"\nforward = \"nat\"\n[[service.real_server]]\naddress = \"192.168.7.27\"\n"
        );
        std::fs::write(&cfg_path, two).expect("write");
        let v = c.call(Request::Reload).await.expect("reload");
        assert_eq!(v["applied"], true);
        assert_eq!(v["generation"], 2);
        let v = c.call(Request::Routes).await.expect("routes");
        assert_eq!(v["services"], 2);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let st = c.call(Request::Status).await.expect("status");
        assert_eq!(st["config_generation"], 2);
        assert_eq!(st["subsystems"][0], "echo-routes");

        // A second daemon on the same socket is refused.
        let cfg2 = Config::load(&cfg_path).expect("load");
        let d2 = Daemon::new(cfg_path.clone(), cfg2).expect("daemon");
        let (_r2, rx2) = mpsc::channel(1);
        let r2 = d2.run_until(async {}, rx2).await;
        assert!(matches!(r2, Err(DaemonError::AlreadyRunning(_))), "{r2:?}");

        stop_tx.send(()).expect("stop");
        run.await.expect("join").expect("clean exit");
        assert!(!sock.exists(), "socket removed on shutdown");
    }

    /// (subsystem, event, when).
    type EventLog = Arc<Mutex<Vec<(&'static str, &'static str, Instant)>>>;

    /// A subsystem that records when it saw the shutdown signal and when it finished,
    /// taking `linger` to finish (an OSPF flush waiting for acknowledgements).
    struct Recorder {
        name: &'static str,
        topics: &'static [Topic],
        forwards: bool,
        linger: Duration,
        log: EventLog,
    }

    impl Subsystem for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn topics(&self) -> &'static [Topic] {
            self.topics
        }
        fn stops_after_drain(&self) -> bool {
            self.forwards
        }
        fn run(self: Box<Self>, mut ctx: SubsystemContext) -> SubsystemFuture {
            Box::pin(async move {
                loop {
                    tokio::select! {
                        _ = ctx.shutdown.wait() => break,
                        Some(call) = ctx.requests.recv() => {
                            let _ = call.reply.send(Ok(serde_json::json!({})));
                        }
                    }
                }
                let push = |what| {
                    if let Ok(mut l) = self.log.lock() {
                        l.push((self.name, what, Instant::now()));
                    }
                };
                push("signal");
                tokio::time::sleep(self.linger).await;
                push("done");
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn shutdown_withdraws_then_drains_then_stops_forwarding_with_notifications() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("control.sock");
        let notify_path = dir.path().join("notify.sock");
        let notify = tokio::net::UnixDatagram::bind(&notify_path).expect("bind");
        let cfg_path = dir.path().join("fulcrum.toml");
        let text = CONFIG.replace("SOCK", &sock.display().to_string()).replace(
            "metrics_enabled = false",
            "metrics_enabled = false\nshutdown_drain_ms = 300",
        );
        std::fs::write(&cfg_path, &text).expect("write");
        let config = Config::load(&cfg_path).expect("load");
        assert_eq!(config.global.shutdown_drain_ms, 300);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut d = Daemon::new(cfg_path, config)
            .expect("daemon")
            .with_notifier(Notifier::to(Some(notify_path.display().to_string())));
        let mut began = d.shutdown_signal();
        d.add_subsystem(Box::new(Recorder {
            name: "routing",
            topics: &[Topic::Ospf],
            forwards: false,
            linger: Duration::from_millis(150),
            log: log.clone(),
        }));
        d.add_subsystem(Box::new(Recorder {
            name: "dataplane",
            topics: &[Topic::Dataplane],
            forwards: true,
            linger: Duration::ZERO,
            log: log.clone(),
        }));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (_reload_tx, reload_rx) = mpsc::channel(1);
        let run = tokio::spawn(d.run_until(
            async {
                let _ = stop_rx.await;
            },
            reload_rx,
        ));
        let next = || async {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), notify.recv(&mut buf))
                .await
                .expect("a notification within 5 s")
                .expect("recv");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        // Both probed subsystems answered: READY=1.
        let ready = next().await;
        assert!(ready.starts_with("READY=1\nSTATUS=running"), "{ready}");
        assert!(!began.is_set());

        let t0 = Instant::now();
        stop_tx.send(()).expect("stop");
        let stopping = next().await;
        assert_eq!(
            stopping,
            "STOPPING=1\nSTATUS=stopping: withdrawing the VIPs"
        );
        began.wait().await;
        let draining = next().await;
        assert_eq!(
            draining,
            "STATUS=stopping: draining established connections for 300 ms"
        );
        let last = next().await;
        assert_eq!(last, "STATUS=stopping: stopping the dataplane");
        run.await.expect("join").expect("clean exit");

        let log = log.lock().expect("log").clone();
        let at = |name, what| {
            log.iter()
                .find(|(n, w, _)| *n == name && *w == what)
                .map(|(_, _, t)| *t)
                .unwrap_or_else(|| panic!("{name} {what} missing: {log:?}"))
        };
        // The withdrawing subsystem is signalled at once; the forwarding one only after
        // it finished and the drain passed.
        assert!(at("routing", "signal") - t0 < Duration::from_millis(100));
        let withdrawn = at("routing", "done");
        let stopped = at("dataplane", "signal");
        assert!(
            stopped >= withdrawn + Duration::from_millis(300),
            "dataplane stopped {:?} after the withdrawal",
            stopped - withdrawn
        );
        assert!(!sock.exists());
    }

    #[test]
    fn restart_only_keys() {
        let a = Config::parse(&CONFIG.replace("SOCK", "/tmp/a.sock")).expect("a");
        let b = Config::parse(&CONFIG.replace("SOCK", "/tmp/b.sock")).expect("b");
        assert!(restart_needed(&a, &a).is_none());
        assert!(restart_needed(&a, &b)
            .expect("needs restart")
            .contains("global.control_socket"));
    }
}
