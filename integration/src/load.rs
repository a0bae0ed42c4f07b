//! HTTP load from a lab node: sequential requests with per-server counts, and a `wrk`
//! runner for throughput figures.
//!
//! What it does: [`requests`] runs `curl` in the client namespace, N sequential
//! requests (a fresh TCP connection each, `Connection: close`, bounded by timeouts),
//! and tallies the `rs=`, `client=` and `proxy=` fields the lab's nginx servers echo,
//! plus failures. [`wrk`] runs `wrk` (1 thread, C connections, D seconds, `--latency`)
//! and returns requests/s and p99.
//!
//! For failure drills, [`Continuous`] keeps a client busy (one request after the other,
//! each on a new connection, with its start and end instants) until stopped, and
//! [`KeepAlive`] holds one HTTP/1.1 connection open for a paced series of requests, so
//! a test can tell whether a long-lived connection survived. [`Paced`] is an open-loop
//! client (a new connection every 1/rate s, however the earlier ones fare), so a drill
//! counts exactly the requests a failure cost.
//!
//! What it does not do: it sends nothing outside the lab's namespaces (the URL is the
//! caller's, inside the lab), and it does not judge figures; [`check_spread`] and
//! [`assert_spread`] only compare counts.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::lab::{Node, Process};

/// Requests per `curl` invocation (sequential inside it).
const BATCH: usize = 100;

/// The outcome of [`requests`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests attempted.
    pub requests: usize,
    /// Requests answered 200 with a parseable body.
    pub ok: usize,
    /// Requests that failed (connect error, timeout, other status, unparseable body).
    pub errors: usize,
    /// Answers per real server (`rs=` field).
    pub servers: BTreeMap<String, usize>,
    /// Answers per client address the server saw (`client=` field).
    pub clients: BTreeMap<String, usize>,
    /// Answers per PROXY-carried client address (`proxy=` field, PROXY listeners only).
    pub proxies: BTreeMap<String, usize>,
    /// The first failure, for messages.
    pub first_error: Option<String>,
}

impl LoadReport {
    fn failure(&mut self, why: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why);
        }
    }

    /// Folds the output of one batch in: each transfer is its body followed by a line
    /// `@@<http code> <curl exit code>`.
    pub fn absorb(&mut self, output: &str, expected: usize) {
        let mut body: Vec<&str> = Vec::new();
        let mut seen = 0;
        for line in output.lines() {
            let Some(meta) = line.strip_prefix("@@") else {
                if !line.trim().is_empty() {
                    body.push(line);
                }
                continue;
            };
            seen += 1;
            self.requests += 1;
            let mut it = meta.split_whitespace();
            let code = it.next().unwrap_or("");
            let exit = it.next().unwrap_or("");
            let text = body.join(" ");
            body.clear();
            if code != "200" || exit != "0" {
                self.failure(format!("http {code}, curl exit {exit}: {text:?}"));
                continue;
            }
            match parse_echo(&text) {
                Some(echo) => {
                    self.ok += 1;
                    *self.servers.entry(echo.rs).or_default() += 1;
                    *self.clients.entry(echo.client).or_default() += 1;
                    if let Some(p) = echo.proxy {
                        *self.proxies.entry(p).or_default() += 1;
                    }
                }
                None => self.failure(format!("unparseable answer {text:?}")),
            }
        }
        for _ in seen..expected {
            self.requests += 1;
            self.failure("transfer missing from curl's output".into());
        }
    }
}

/// The fields of one nginx echo line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// `rs=`: the server address that answered.
    pub rs: String,
    /// `client=`: the peer address the server saw.
    pub client: String,
    /// `proxy=`: the client address carried by a PROXY header.
    pub proxy: Option<String>,
}

/// Parses `rs=A client=B [proxy=C]`; `None` when `rs=` or `client=` is missing.
pub fn parse_echo(line: &str) -> Option<Echo> {
    let mut rs = None;
    let mut client = None;
    let mut proxy = None;
    for w in line.split_whitespace() {
        if let Some(v) = w.strip_prefix("rs=") {
            rs = Some(v.to_string());
        } else if let Some(v) = w.strip_prefix("client=") {
            client = Some(v.to_string());
        } else if let Some(v) = w.strip_prefix("proxy=") {
            proxy = Some(v.to_string());
        }
    }
    Some(Echo {
        rs: rs.filter(|s| !s.is_empty())?,
        client: client.filter(|s| !s.is_empty())?,
        proxy,
    })
}

/// Runs `n` sequential HTTP/1.1 GETs of `url` from `node`, each on a new connection with
/// a `timeout` per transfer, and tallies the answers.
pub fn requests(node: &Node, url: &str, n: usize, timeout: Duration) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let secs = format!("{:.3}", timeout.as_secs_f64().max(0.001));
    let mut left = n;
    while left > 0 {
        let k = left.min(BATCH);
        let mut argv: Vec<&str> = vec![
            "curl",
            "-sS",
            "--http1.1",
            "-H",
            "Connection: close",
            "--connect-timeout",
            &secs,
            "--max-time",
            &secs,
            "-w",
            "\\n@@%{http_code} %{exitcode}\\n",
        ];
        argv.extend(std::iter::repeat(url).take(k));
        // curl's own status is that of the last transfer; every transfer is judged from
        // its `@@` line instead.
        let out = node.exec(&argv)?;
        report.absorb(&String::from_utf8_lossy(&out.stdout), k);
        left -= k;
    }
    Ok(report)
}

/// Checks that every one of `expected` servers got within `tolerance` (0.05 = ±5 %) of
/// an equal share and that no other server answered.
pub fn check_spread(
    counts: &BTreeMap<String, usize>,
    expected: &[String],
    tolerance: f64,
) -> std::result::Result<(), String> {
    let total: usize = counts.values().sum();
    if expected.is_empty() || total == 0 {
        return Err(format!("nothing to compare: {counts:?}"));
    }
    let share = total as f64 / expected.len() as f64;
    for (server, &c) in counts {
        if !expected.contains(server) {
            return Err(format!("unexpected server {server} answered {c} times"));
        }
    }
    for server in expected {
        let c = counts.get(server).copied().unwrap_or(0) as f64;
        if (c - share).abs() > share * tolerance {
            return Err(format!(
                "{server} got {c} of {total}, not within {:.0} % of {share:.1}: {counts:?}",
                tolerance * 100.0
            ));
        }
    }
    Ok(())
}

/// [`check_spread`] for tests: panics with the reason.
pub fn assert_spread(counts: &BTreeMap<String, usize>, expected: &[String], tolerance: f64) {
    if let Err(why) = check_spread(counts, expected, tolerance) {
        panic!("spread: {why}");
    }
}

/// A `wrk` result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkReport {
    /// Requests per second.
    pub requests_per_sec: f64,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Socket errors and non-2xx answers wrk reported.
    pub errors: u64,
}

fn parse_latency(v: &str) -> Option<Duration> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let x: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => x / 1e6,
        "ms" => x / 1e3,
        "s" => x,
        "m" => x * 60.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(text: &str) -> Result<WrkReport> {
    let bad = |detail: &str| LabError::Parse {
        what: "wrk output".into(),
        detail: format!("{detail} in {text:?}"),
    };
    let mut rps = None;
    let mut p99 = None;
    let mut errors = 0u64;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse::<f64>().ok(),
            ["99%", v] => p99 = parse_latency(v),
            ["Non-2xx", "or", "3xx", "responses:", v] => {
                errors += v.parse::<u64>().unwrap_or(0);
            }
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Ok(WrkReport {
        requests_per_sec: rps.ok_or_else(|| bad("no Requests/sec"))?,
        p99: p99.ok_or_else(|| bad("no 99% latency"))?,
        errors,
    })
}

/// Runs `wrk -t1 -c<connections> -d<duration> --latency url` in `node`.
pub fn wrk(node: &Node, url: &str, connections: u32, duration: Duration) -> Result<WrkReport> {
    let c = format!("-c{}", connections.max(1));
    let d = format!("-d{}s", duration.as_secs().max(1));
    let out = node.exec_ok(&["wrk", "-t1", &c, &d, "--latency", url])?;
    parse_wrk(&out)
}

/// One request of a [`Continuous`] run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the request was started.
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
    /// The answer, when it was a 200 with an echo line.
    pub echo: Option<Echo>,
    /// Why it failed, otherwise.
    pub error: Option<String>,
}

impl Sample {
    /// True for a 200 with an echo line.
    pub fn ok(&self) -> bool {
        self.echo.is_some()
    }
}

/// A client issuing requests back to back (each on its own connection, `curl` with a
/// connect timeout and a total timeout) until [`Continuous::stop`] (or drop).
#[derive(Debug)]
pub struct Continuous {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
}

/// Runs one request from `node` and reads the echo.
fn one_request(node: &Node, url: &str, connect: &str, total: &str) -> Sample {
    let start = Instant::now();
    let out = node.exec(&[
        "curl",
        "-sS",
        "--http1.1",
        "-H",
        "Connection: close",
        "--connect-timeout",
        connect,
        "--max-time",
        total,
        "-w",
        "\\n@@%{http_code} %{exitcode}\\n",
        url,
    ]);
    let end = Instant::now();
    let mut report = LoadReport::default();
    let (echo, error) = match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            report.absorb(&text, 1);
            let echo = (report.ok == 1)
                .then(|| {
                    text.lines()
                        .find(|l| l.starts_with("rs="))
                        .and_then(parse_echo)
                })
                .flatten();
            let err = report.first_error.or_else(|| {
                echo.is_none()
                    .then(|| String::from_utf8_lossy(&o.stderr).trim().to_string())
            });
            (echo, err)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Sample {
        start,
        end,
        echo,
        error,
    }
}

impl Continuous {
    /// Starts requesting `url` from `node`, each request bounded by `connect_timeout`
    /// for the connection and twice that in all.
    pub fn start(node: &Node, url: &str, connect_timeout: Duration) -> Continuous {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let node = node.clone();
        let url = url.to_string();
        let connect = format!("{:.3}", connect_timeout.as_secs_f64());
        let total = format!("{:.3}", 2.0 * connect_timeout.as_secs_f64());
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                samples.push(one_request(&node, &url, &connect, &total));
            }
            samples
        });
        Continuous {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops after the request in progress and returns every sample, in order.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Continuous {
    fn drop(&mut self) {
        // A test that failed before stop(): end the loop, do not wait for it.
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An open-loop client: a new HTTP/1.1 request (`GET /`, `Connection: close`, each on a
/// new TCP connection) is started every `1 / per_second` s whatever the earlier ones are
/// doing, as independent clients arriving at a steady rate would, until
/// [`Paced::stop`]. Each request runs on a thread of its own inside the node's network
/// namespace (`setns`, no process per request, so a rate of 100/s costs the lab's CPUs
/// little), with a connect timeout and twice that in all, and becomes a [`Sample`].
///
/// Unlike [`Continuous`], a request stuck on a dead balancer does not hold the next ones
/// back: the failures of a drill are then the requests the failure really cost.
#[derive(Debug)]
pub struct Paced {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Sample>>>,
}

/// Reads `HTTP/1.1 200` and the echo line of one answer.
fn read_answer(text: &str) -> std::result::Result<Echo, String> {
    let status = text.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200 ") && !status.starts_with("HTTP/1.0 200 ") {
        return Err(format!("status {status:?}"));
    }
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    parse_echo(body.trim()).ok_or_else(|| format!("unparseable answer {body:?}"))
}

/// One request of a [`Paced`] run, from the calling thread's network namespace.
fn paced_request(target: SocketAddrV4, connect: Duration) -> Sample {
    use std::io::{Read as _, Write as _};
    let start = Instant::now();
    let total = connect * 2;
    let result = (|| -> std::result::Result<Echo, String> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(target), connect)
            .map_err(|e| format!("connect: {e}"))?;
        let left = |what: &str| {
            total
                .checked_sub(start.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("{what}: timed out after {total:?}"))
        };
        s.set_write_timeout(Some(left("write")?))
            .map_err(|e| format!("write timeout: {e}"))?;
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: fulcrum-lab\r\n\
             Connection: close\r\n\r\n",
            target.ip()
        );
        s.write_all(req.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            s.set_read_timeout(Some(left("read")?))
                .map_err(|e| format!("read timeout: {e}"))?;
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if answer.len() < 65536 => answer.extend_from_slice(&buf[..n]),
                Ok(_) => return Err("answer longer than 64 KiB".into()),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
        read_answer(&String::from_utf8_lossy(&answer))
    })();
    let end = Instant::now();
    let (echo, error) = match result {
        Ok(e) => (Some(e), None),
        Err(e) => (None, Some(e)),
    };
    Sample {
        start,
        end,
        echo,
        error,
    }
}

impl Paced {
    /// Starts requesting `http://target/` from `node` at `per_second` requests a second
    /// (at least 1), each bounded by `connect_timeout` for the connection and twice that
    /// in all. Fails when the node's namespace cannot be entered.
    pub fn start(
        node: &Node,
        target: SocketAddrV4,
        per_second: u32,
        connect_timeout: Duration,
    ) -> Result<Paced> {
        let path = format!("/run/netns/{}", node.netns());
        let ns = std::fs::File::open(&path).map_err(|e| LabError::io(format!("open {path}"), e))?;
        let period = Duration::from_secs(1) / per_second.max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            // This thread (and the threads it spawns) live in the node's namespace.
            if let Err(e) = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET) {
                let _ = ready_tx.send(Err(e));
                return Vec::new();
            }
            let _ = ready_tx.send(Ok(()));
            let (tx, rx) = std::sync::mpsc::channel();
            let mut workers = Vec::new();
            let t0 = Instant::now();
            let mut k: u32 = 0;
            while !flag.load(Ordering::SeqCst) {
                let tx = tx.clone();
                workers.push(std::thread::spawn(move || {
                    let _ = tx.send(paced_request(target, connect_timeout));
                }));
                k = k.saturating_add(1);
                let next = t0 + period * k;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            drop(tx);
            for w in workers {
                let _ = w.join();
            }
            let mut samples: Vec<Sample> = rx.into_iter().collect();
            samples.sort_by_key(|s| s.start);
            samples
        });
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Paced {
                stop,
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(LabError::io(
                    format!("setns {path}"),
                    std::io::Error::from(e),
                ))
            }
            Err(_) => Err(LabError::Config("the paced client thread died".into())),
        }
    }

    /// Stops starting requests, waits for those under way (at most twice the connect
    /// timeout) and returns every sample in order of start.
    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One transfer of a [`KeepAlive`] series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// HTTP status (`000` when none).
    pub code: String,
    /// curl's exit code for it.
    pub exit: String,
    /// New connections curl opened for it (0 when it reused the open one).
    pub connects: u32,
    /// The local port of its connection.
    pub local_port: String,
    /// The echo line, when there was one.
    pub echo: Option<Echo>,
}

/// Parses a [`KeepAlive`] log: bodies, then `@@code exit connects port` per transfer.
pub fn parse_transfers(text: &str) -> Vec<Transfer> {
    let mut out = Vec::new();
    let mut echo = None;
    for line in text.lines() {
        if let Some(meta) = line.strip_prefix("@@") {
            let w: Vec<&str> = meta.split_whitespace().collect();
            out.push(Transfer {
                code: w.first().unwrap_or(&"").to_string(),
                exit: w.get(1).unwrap_or(&"").to_string(),
                connects: w.get(2).and_then(|n| n.parse().ok()).unwrap_or(u32::MAX),
                local_port: w.get(3).unwrap_or(&"").to_string(),
                echo: echo.take(),
            });
        } else if line.starts_with("rs=") {
            echo = parse_echo(line);
        }
    }
    out
}

/// One HTTP/1.1 keep-alive connection from a node carrying `count` requests paced at
/// `per_second` (`curl --rate`): curl reuses the connection and opens a new one only
/// when the old one broke, which [`Transfer::connects`] shows.
#[derive(Debug)]
pub struct KeepAlive {
    process: Process,
}

impl KeepAlive {
    /// Starts the series (its output goes to the process log).
    pub fn start(node: &Node, url: &str, count: usize, per_second: u32) -> Result<KeepAlive> {
        let rate = format!("{}/s", per_second.max(1));
        let mut argv: Vec<&str> = vec![
            "curl",
            "-sS",
            "--http1.1",
            "--rate",
            &rate,
            "--connect-timeout",
            "2",
            "--max-time",
            "2",
            "-w",
            "\\n@@%{http_code} %{exitcode} %{num_connects} %{local_port}\\n",
        ];
        argv.extend(std::iter::repeat(url).take(count.max(1)));
        Ok(KeepAlive {
            process: node.spawn(&argv)?,
        })
    }

    /// The transfers so far.
    pub fn transfers(&self) -> Vec<Transfer> {
        parse_transfers(&std::fs::read_to_string(self.process.log_path()).unwrap_or_default())
    }

    /// True while curl runs.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// Stops curl and returns every transfer it made.
    pub fn stop(self) -> Vec<Transfer> {
        let path = self.process.log_path().to_path_buf();
        drop(self.process);
        parse_transfers(&std::fs::read_to_string(path).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbs_answers_and_failures() {
        let out = "rs=10.0.0.1 client=10.0.0.9\n\n@@200 0\n\
                   rs=10.0.0.2 client=10.0.0.9 proxy=10.0.0.7\n\n@@200 0\n\
                   curl: (28) timeout\n\n@@000 28\n\
                   <html>oops</html>\n@@502 0\n\
                   garbage\n@@200 0\n";
        let mut r = LoadReport::default();
        r.absorb(out, 6);
        assert_eq!(r.requests, 6);
        assert_eq!(r.ok, 2);
        assert_eq!(r.errors, 4);
        assert_eq!(r.servers.get("10.0.0.1"), Some(&1));
        assert_eq!(r.servers.get("10.0.0.2"), Some(&1));
        assert_eq!(r.clients.get("10.0.0.9"), Some(&2));
        assert_eq!(r.proxies.get("10.0.0.7"), Some(&1));
        assert!(r.first_error.expect("error").contains("curl exit 28"));
    }

    #[test]
    fn parses_echo_lines() {
        let e = parse_echo("rs=1.2.3.4 client=5.6.7.8").expect("echo");
        assert_eq!(
            (e.rs.as_str(), e.client.as_str(), e.proxy),
            ("1.2.3.4", "5.6.7.8", None)
        );
        assert!(parse_echo("rs= client=5.6.7.8").is_none());
        assert!(parse_echo("client=5.6.7.8").is_none());
        assert!(parse_echo("").is_none());
    }

    #[test]
    fn spread_checks() {
        let ex = vec!["a".to_string(), "b".to_string()];
        let counts =
            |a: usize, b: usize| BTreeMap::from([("a".to_string(), a), ("b".to_string(), b)]);
        assert!(check_spread(&counts(500, 500), &ex, 0.05).is_ok());
        assert!(check_spread(&counts(524, 476), &ex, 0.05).is_ok());
        assert!(check_spread(&counts(530, 470), &ex, 0.05).is_err());
        assert!(check_spread(&counts(1000, 0), &ex, 0.05).is_err());
        let mut extra = counts(500, 500);
        extra.insert("c".into(), 1);
        assert!(check_spread(&extra, &ex, 0.05).is_err());
        assert!(check_spread(&BTreeMap::new(), &ex, 0.05).is_err());
    }

    #[test]
    fn parses_wrk_output() {
        let text = "Running 2s test @ http://10.0.0.1:80/\n  1 threads and 50 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   450.12us  200.00us   5.00ms   90.00%\n\
    Req/Sec   110.00k     5.00k  120.00k    70.00%\n  Latency Distribution\n     50%  400.00us\n\
     75%  500.00us\n     90%  700.00us\n     99%    2.50ms\n  220000 requests in 2.00s, 30.00MB read\n\
  Socket errors: connect 0, read 3, write 0, timeout 1\nRequests/sec: 110000.50\nTransfer/sec:     15.00MB\n";
        let r = parse_wrk(text).expect("parses");
        assert!((r.requests_per_sec - 110_000.5).abs() < 1e-6);
        assert_eq!(r.p99, Duration::from_micros(2500));
        assert_eq!(r.errors, 4);
        assert!(parse_wrk("Requests/sec: 5\n").is_err());
        assert_eq!(parse_latency("12.5us"), Some(Duration::from_nanos(12_500)));
        assert_eq!(parse_latency("1.00s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_latency("abc"), None);
        assert_eq!(parse_latency("3"), None);
    }

    #[test]
    fn reads_paced_answers() {
        let ok = "HTTP/1.1 200 OK\r\nServer: nginx\r\nConnection: close\r\n\r\n\
                  rs=192.168.7.27 client=192.168.7.185 proxy=10.12.26.20\n";
        let e = read_answer(ok).expect("answer");
        assert_eq!(
            (e.rs.as_str(), e.client.as_str(), e.proxy.as_deref()),
            ("192.168.7.27", "192.168.7.185", Some("10.12.26.20"))
        );
        let err = read_answer("HTTP/1.1 502 Bad Gateway\r\n\r\nrs=1 client=2").expect_err("502");
        assert!(err.contains("502"), "{err}");
        assert!(read_answer("HTTP/1.1 200 OK\r\n\r\n<html>").is_err());
        assert!(read_answer("").is_err());
    }

    #[test]
    fn parses_keepalive_transfers() {
        let text = "rs=1.1.1.1 client=2.2.2.2 proxy=3.3.3.3\n\n@@200 0 1 40000\n\
                    rs=1.1.1.2 client=2.2.2.2 proxy=3.3.3.3\n\n@@200 0 0 40000\n\
                    curl: (28) Operation timed out\n\n@@000 28 0 40000\n";
        let t = parse_transfers(text);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].code.as_str(), t[0].connects), ("200", 1));
        assert_eq!(t[1].echo.as_ref().map(|e| e.rs.as_str()), Some("1.1.1.2"));
        assert_eq!(t[1].connects, 0);
        assert_eq!((t[2].exit.as_str(), t[2].echo.clone()), ("28", None));
        assert!(parse_transfers("").is_empty());
    }
}
