//! HTTP load from a lab node: sequential requests with per-server counts, and a `wrk`
//! runner for throughput figures.
//!
//! What it does: [`requests`] runs `curl` in the client namespace, N sequential
//! requests (a fresh TCP connection each, `Connection: close`, bounded by timeouts),
//! and tallies the `rs=`, `client=` and `proxy=` fields the lab's nginx servers echo,
//! plus failures. [`wrk`] runs `wrk` (1 thread, C connections, D seconds, `--latency`)
//! and returns requests/s and p99.
//!
//! What it does not do: it sends nothing outside the lab's namespaces (the URL is the
//! caller's, inside the lab), and it does not judge figures; [`check_spread`] and
//! [`assert_spread`] only compare counts.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::lab::Node;

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
}
