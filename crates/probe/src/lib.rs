//! Health probes: the I/O half of health checking.
//!
//! What it does:
//! - one async executor per keepalived checker kind, each taking the checker's
//!   configuration from [`health::config`], the real server's address and a timeout, and
//!   returning a [`health::ProbeOutcome`] judged by [`health::eval`]:
//!   [`tcp_check`] (`TCP_CHECK`), [`http_check`] (`HTTP_GET` and, over TLS, `SSL_GET`),
//!   [`udp_check`] (`UDP_CHECK`), [`ping_check`] (`PING_CHECK`), [`misc_check`]
//!   (`MISC_CHECK`) and [`read_tracked_file`] (`FILE_CHECK`); [`run_check`] dispatches
//!   on a [`health::CheckKind`];
//! - the [`Prober`] runtime: one tokio task owning many [`health::Service`]s, sleeping
//!   until the earliest `poll_timeout`, spawning probe futures under a concurrency bound,
//!   feeding their verdicts back, re-reading tracked files, and sending every
//!   [`health::ServiceEvent`] on a channel; it answers status queries for
//!   `fulcrum health` and keeps counters and a latency histogram for metrics.
//!
//! What it does not do: decide anything (retries, rise/fall, quorum and weights are
//! `health`'s), verify TLS certificates (keepalived does not either: `SSL_GET` accepts
//! any certificate, see [`tls`]), enter network namespaces (the daemon runs in its own;
//! sockets bind to the configured `bindto` address), follow HTTP redirects, speak
//! HTTP/2, or announce anything.

pub mod file;
pub mod http;
pub mod metrics;
pub mod misc;
pub mod net;
pub mod ping;
pub mod prober;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::net::SocketAddr;
use std::time::Duration;

use health::{CheckKind, ProbeOutcome};

pub use file::read_tracked_file;
pub use http::http_check;
pub use metrics::{LatencyHistogram, Metrics, MetricsSnapshot};
pub use misc::misc_check;
pub use ping::ping_check;
pub use prober::{CheckerStatus, Prober, ProberConfig, ProberEvent, ProberHandle, ServerStatus};
pub use tcp::tcp_check;
pub use udp::udp_check;

/// Errors of the probe runtime (a probe's own failure is a [`ProbeOutcome`], not this).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A service configuration that `health` rejects.
    #[error("service {0:?}: {1}")]
    Config(String, health::HealthError),
    /// The prober task is gone (stopped or panicked).
    #[error("prober stopped")]
    Stopped,
}

/// Runs one attempt of `kind` against the real server `server`, taking at most
/// `timeout` (the checker's probe timeout) in total.
pub async fn run_check(kind: &CheckKind, server: SocketAddr, timeout: Duration) -> ProbeOutcome {
    match kind {
        CheckKind::Tcp(c) => tcp_check(c, server, timeout).await,
        CheckKind::Http(c) => http_check(c, server, timeout).await,
        CheckKind::Udp(c) => udp_check(c, server, timeout).await,
        CheckKind::Ping(c) => ping_check(c, server.ip(), timeout).await,
        CheckKind::Misc(c) => misc_check(c, timeout).await,
    }
}
