//! Health checking: keepalived's checkers and the quorum logic that drives VIP announcement.
//!
//! What it does, sans-IO (time is a `Duration` since an epoch the caller picks):
//! - [`config`]: the checker kinds (`TCP_CHECK`, `HTTP_GET`/`SSL_GET`, `UDP_CHECK`,
//!   `PING_CHECK`, `MISC_CHECK`, `FILE_CHECK`) with keepalived's keyword names and
//!   defaults;
//! - [`eval`]: pure verdicts on what a probe saw — an HTTP response against the URL's
//!   status ranges, digest and regex verdict; a `MISC_CHECK` exit status (including
//!   `misc_dynamic` weights); a UDP reply; a tracked file's value;
//! - [`checker`]: one checker's timer state machine with keepalived's `delay_loop`,
//!   `retry`, `delay_before_retry`, `warmup` and `alpha` arithmetic (the module doc
//!   works through the timing), plus `rise`/`fall`;
//! - [`service`]: real servers (alive while all their checkers pass;
//!   `inhibit_on_failure`; dynamic and file-driven weights) and virtual services
//!   (keepalived's weight-sum quorum with hysteresis, sorry server, `omega`);
//! - [`announce`]: the per-VIP announcement policy — all/any of its services holding
//!   quorum, cost-out instead of withdraw, maintenance drains, flap damping — emitting
//!   a [`VipEvent`] with its reason for every change.
//!
//! What it does not do: open sockets, run programs, read files, compute MD5 or match
//! regexes (the daemon does those and feeds the results in), spawn tasks, read clocks
//! or draw random numbers from the thread (warmup jitter comes from a caller's seed),
//! or talk to OSPF (the daemon turns `VipEvent`s into stub links).
//!
//! The daemon's loop per service: call `on_timeout(now)` when `poll_timeout()` is due,
//! run the returned [`ProbeTask`]s, hand each verdict to `on_result`, then drain
//! `poll_event()`; feed quorum changes (`ServiceEvent::QuorumUp/Down`, and
//! `Service::has_quorum()` once at start) to each VIP's [`VipAnnouncer`] through
//! `set_service_quorum`, and turn its [`VipEvent`]s into OSPF stub links.

pub mod announce;
pub mod checker;
pub mod config;
pub mod eval;
pub mod service;

pub use announce::{DrainSource, QuorumMode, Reason, VipAnnouncer, VipConfig, VipEvent, VipState};
pub use checker::{Checker, CheckerEvent, CheckerStats, ProbeRequest, ProbeResult};
pub use config::{
    CheckKind, CheckerConfig, ConnectOptions, FileCheck, HttpCheck, MiscCheck, PingCheck,
    StatusRange, TcpCheck, UdpCheck, UdpReply, UrlCheck,
};
pub use eval::{FailureKind, HttpObservation, MiscExit, ProbeOutcome};
pub use service::{
    ProbeTask, RealServer, RealServerConfig, ServerEvent, Service, ServiceConfig, ServiceEvent,
};

/// Errors from health configuration and inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// A checker or server setting that cannot work (block keyword, what is wrong).
    #[error("{0}: {1}")]
    Invalid(&'static str, &'static str),
    /// A `status_code` that is not `NNN` or `NNN-NNN` within 100..=599.
    #[error("bad status_code {0:?}")]
    StatusCode(String),
    /// A `digest` that is not 32 hex digits.
    #[error("bad digest {0:?}: want 32 hex digits")]
    Digest(String),
    /// A result for a server index the service does not have.
    #[error("no real server #{0}")]
    NoSuchServer(usize),
    /// A result for a checker index the server does not have.
    #[error("no checker #{0}")]
    NoSuchChecker(usize),
    /// A value for a `FILE_CHECK` index the server does not have.
    #[error("no FILE_CHECK #{0}")]
    NoSuchFile(usize),
    /// A quorum report for a service the VIP does not follow.
    #[error("VIP does not follow service {0:?}")]
    UnknownService(String),
    /// A VIP listing the same service twice.
    #[error("service {0:?} listed twice")]
    DuplicateService(String),
}
