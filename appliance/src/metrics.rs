//! Prometheus metrics: the daemon's registry and a minimal `GET /metrics` HTTP endpoint.
//!
//! Subsystems register their own collectors in [`Metrics::registry`] (names prefixed
//! `fulcrum_`, labels for values such as VIPs or neighbors). The endpoint answers
//! `GET /metrics` (text format 0.0.4), `GET /` (a pointer), 404 for other paths and 405 for
//! other methods; one request per connection.

use std::time::Duration;

use prometheus::{Encoder, Gauge, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Errors of the metrics layer.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A collector could not be created or registered.
    #[error("metrics registry: {0}")]
    Registry(#[from] prometheus::Error),
    /// The listener failed.
    #[error("metrics endpoint: {0}")]
    Io(#[from] std::io::Error),
}

/// The daemon's own metrics and the registry shared with subsystems.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reload_success: IntGauge,
    reload_timestamp: Gauge,
}

impl Metrics {
    /// Creates the registry with process metrics, `fulcrum_build_info` and the reload gauges.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build = IntGaugeVec::new(
            Opts::new(
                "fulcrum_build_info",
                "Build information of the running fulcrumd (value is always 1).",
            ),
            &["version", "protocol_version"],
        )?;
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                &crate::control::PROTOCOL_VERSION.to_string(),
            ])
            .set(1);
        registry.register(Box::new(build))?;
        let reload_success = IntGauge::new(
            "fulcrum_config_last_reload_success",
            "Whether the last configuration load succeeded (1) or was refused (0).",
        )?;
        registry.register(Box::new(reload_success.clone()))?;
        let reload_timestamp = Gauge::new(
            "fulcrum_config_last_reload_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )?;
        registry.register(Box::new(reload_timestamp.clone()))?;
        Ok(Metrics {
            registry,
            reload_success,
            reload_timestamp,
        })
    }

    /// The registry subsystems add their collectors to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records the outcome of a configuration load at `unix_seconds`.
    pub fn record_reload(&self, success: bool, unix_seconds: f64) {
        self.reload_success.set(i64::from(success));
        if success {
            self.reload_timestamp.set(unix_seconds);
        }
    }

    /// The text exposition of every registered collector.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves the endpoint on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, metrics: Metrics, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let m = metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, &m).await {
                            tracing::debug!("metrics connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

const MAX_HEAD: usize = 8192;

async fn handle(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > MAX_HEAD {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .is_err()
    {
        return Ok(());
    }
    let first_line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .unwrap_or_default();
    let mut parts = first_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.encode(),
        ),
        ("GET", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "fulcrumd: metrics at /metrics\n".to_string(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn serves_metrics() {
        let m = Metrics::new().expect("metrics");
        m.record_reload(true, 1_700_000_000.0);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, m.clone(), rx));
        let body = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("fulcrum_build_info{"), "{body}");
        assert!(
            body.contains("fulcrum_config_last_reload_success 1"),
            "{body}"
        );
        assert!(
            body.contains("fulcrum_config_last_reload_timestamp_seconds 1700000000"),
            "{body}"
        );
        assert!(body.contains("process_resident_memory_bytes"), "{body}");
        let nf = get(addr, "GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        let na = get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(na.starts_with("HTTP/1.1 405"), "{na}");
        // The exposition passes Prometheus' own linter (Debian package `prometheus`).
        let mut lint = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool (Debian package prometheus) is needed by this test");
        {
            use std::io::Write as _;
            let mut stdin = lint.stdin.take().expect("stdin");
            stdin.write_all(m.encode().as_bytes()).expect("write");
        }
        let out = lint.wait_with_output().expect("promtool");
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        m.record_reload(false, 0.0);
        assert!(m.encode().contains("fulcrum_config_last_reload_success 0"));
        tx.send(true).expect("send");
        task.await.expect("join");
    }
}
