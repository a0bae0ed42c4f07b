//! Benchmark: 10,000 TCP real servers checked every second by the [`probe::Prober`].
//!
//! Needs root. Creates the probe tests' lab (`tests/common`): two network namespaces
//! (`flab-probe-<pid>-0{c,s}`) joined by a veth pair; a child process (this binary,
//! `serve` mode) listens on 10,000 ports of 10.77.0.2 in the server namespace and
//! accepts; the prober runs on one thread of a current-thread runtime in the client
//! namespace with 1,000 services × 10 servers, `TCP_CHECK`, `delay_loop 1s`,
//! `connect_timeout 1s`, warmup 1 s (checks spread over the second). After a 5 s settle
//! it measures 20 s: CPU (getrusage of this process, user + system) as a share of one
//! core, probes per second, failures and the latency p50/p99 (from the prober's
//! histogram). Everything is removed at the end.
//!
//! `cargo run --release -p probe --example tcp10k [-- --burst] [--bare] [--servers N]`:
//! `--burst`: no warmup, every check of the second fires at the same instant;
//! `--bare`: instead of the prober, one plain tokio task per server that connects
//! once a second and drops the connection — the floor the prober is compared with;
//! `--servers N`: N servers instead of 10,000 (a multiple of 10, at most 10,000).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use health::{CheckKind, CheckerConfig, RealServerConfig, ServiceConfig, TcpCheck};
use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
use probe::{Prober, ProberConfig};

// The namespace lab of the probe tests.
#[path = "../tests/common/mod.rs"]
mod common;

const SERVERS: u16 = 10_000;
const PER_SERVICE: u16 = 10;
const BASE_PORT: u16 = 20_000;
const SETTLE: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(20);

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most 65,536).
fn raise_nofile() {
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(65_536, |(_, h)| h.min(65_536));
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        eprintln!("setrlimit RLIMIT_NOFILE {hard}: {e}");
    }
}

/// The 1-minute load average, to tell how busy the shared machine was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// Child mode: listen on the ports and accept (and drop) connections until stdin closes.
fn serve() {
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ip: IpAddr = common::SERVER_IP.parse().expect("ip");
        for p in 0..SERVERS {
            let sock = tokio::net::TcpSocket::new_v4().expect("socket");
            sock.set_reuseaddr(true).expect("reuseaddr");
            sock.bind(SocketAddr::new(ip, BASE_PORT + p)).expect("bind");
            let l = sock.listen(1024).expect("listen");
            tokio::spawn(async move {
                while let Ok((s, _)) = l.accept().await {
                    drop(s);
                }
            });
        }
        println!("ready");
        std::io::stdout().flush().ok();
        // Until the parent closes our stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await
        .ok();
    });
}

/// The probe tests' two-namespace lab, with the listener process in its server
/// namespace; the process is stopped before the namespaces are removed.
struct Bench {
    lab: common::Lab,
    child: Option<Child>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn setup() -> Result<Bench, String> {
    let mut bench = Bench {
        lab: common::Lab::new(),
        child: None,
    };
    // Room for 10k connections a second in TIME_WAIT on the client side.
    bench
        .lab
        .client_sysctl("net.ipv4.ip_local_port_range=10000 65000");
    bench.lab.client_sysctl("net.ipv4.tcp_tw_reuse=1");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new("ip")
        .args(["netns", "exec", &bench.lab.server])
        .arg(exe)
        .arg("serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
    }
    bench.child = Some(child);
    if line.trim() != "ready" {
        return Err("listener process failed".into());
    }
    Ok(bench)
}

fn services(burst: bool, servers: u16) -> Vec<ServiceConfig> {
    let ip: IpAddr = common::SERVER_IP.parse().expect("ip");
    (0..servers / PER_SERVICE)
        .map(|s| {
            let rss = (0..PER_SERVICE)
                .map(|i| {
                    let mut t = TcpCheck::default();
                    t.conn.connect_timeout = Duration::from_secs(1);
                    let mut c = CheckerConfig::new(CheckKind::Tcp(t));
                    c.delay_loop = Duration::from_secs(1);
                    if !burst {
                        c.warmup = Duration::from_secs(1);
                    }
                    let mut rs = RealServerConfig::new(ip, BASE_PORT + s * PER_SERVICE + i);
                    rs.checkers.push(c);
                    rs
                })
                .collect();
            ServiceConfig::new(format!("svc{s}"), rss)
        })
        .collect()
}

fn cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| {
                Duration::new(
                    u64::try_from(tv.tv_sec()).unwrap_or(0),
                    u32::try_from(tv.tv_usec()).unwrap_or(0) * 1000,
                )
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// The floor: one task per server, a plain connect every second (spread over the
/// second), latency into the same histogram type.
async fn bare_run(servers: u16) -> Result<(), String> {
    let hist = std::sync::Arc::new(probe::LatencyHistogram::default());
    let ip: IpAddr = common::SERVER_IP.parse().expect("ip");
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for p in 0..servers {
        let hist = hist.clone();
        let offset = Duration::from_secs(1) * u32::from(p) / u32::from(servers);
        tasks.push(tokio::spawn(async move {
            let mut next = start + offset;
            loop {
                tokio::time::sleep_until(next).await;
                let t = tokio::time::Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect(SocketAddr::new(ip, BASE_PORT + p)),
                )
                .await;
                if matches!(r, Ok(Ok(_))) {
                    hist.record(t.elapsed());
                }
                next = tokio::time::Instant::now() + Duration::from_secs(1);
            }
        }));
    }
    tokio::time::sleep(SETTLE).await;
    let (h0, c0, t0, load0) = (hist.counts(), cpu(), Instant::now(), loadavg());
    tokio::time::sleep(MEASURE).await;
    let (h1, c1, wall) = (hist.counts(), cpu(), t0.elapsed());
    for t in tasks {
        t.abort();
    }
    let counts: Vec<u64> = h1.iter().zip(&h0).map(|(a, b)| a - b).collect();
    let ok: u64 = counts.iter().sum();
    let q = |x| probe::metrics::quantile(&counts, x).unwrap_or_default();
    println!(
        "mode=bare servers={servers} wall={:.1}s connects={ok} ({:.0}/s) cpu={:.1}% of one core \
         p50={:?} p99={:?} load(1m) before={load0} after={}",
        wall.as_secs_f64(),
        ok as f64 / wall.as_secs_f64(),
        (c1 - c0).as_secs_f64() / wall.as_secs_f64() * 100.0,
        q(0.5),
        q(0.99),
        loadavg(),
    );
    Ok(())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("serve") {
        serve();
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let burst = args.iter().any(|a| a == "--burst");
    let bare = args.iter().any(|a| a == "--bare");
    let servers = args
        .iter()
        .position(|a| a == "--servers")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<u16>().ok())
        .map_or(SERVERS, |n| {
            (n / PER_SERVICE * PER_SERVICE).clamp(PER_SERVICE, SERVERS)
        });
    raise_nofile();
    let bench = match setup() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("setup: {e}");
            std::process::exit(1);
        }
    };
    let result = common::Lab::block_on_in(&bench.lab.client, move || async move {
        if bare {
            return bare_run(servers).await;
        }
        let (h, mut events) = Prober::start(services(burst, servers), ProberConfig::default())
            .map_err(|e| e.to_string())?;
        let drain = tokio::spawn(async move {
            let mut n = 0u64;
            while events.recv().await.is_some() {
                n += 1;
            }
            n
        });
        tokio::time::sleep(SETTLE).await;
        let (m0, c0, t0) = (h.metrics().snapshot(), cpu(), Instant::now());
        let load0 = loadavg();
        tokio::time::sleep(MEASURE).await;
        let (m1, c1, wall) = (h.metrics().snapshot(), cpu(), t0.elapsed());
        let st = h.status().await.map_err(|e| e.to_string())?;
        let alive = st
            .iter()
            .flat_map(|s| &s.servers)
            .filter(|s| s.alive)
            .count();
        h.shutdown().await.map_err(|e| e.to_string())?;
        let events = drain.await.unwrap_or(0);
        let counts: Vec<u64> = m1
            .latency_counts
            .iter()
            .zip(&m0.latency_counts)
            .map(|(a, b)| a - b)
            .collect();
        let finished: u64 = counts.iter().sum();
        let failed: u64 = m1.failures.iter().sum::<u64>() - m0.failures.iter().sum::<u64>();
        let share = (c1 - c0).as_secs_f64() / wall.as_secs_f64();
        let q = |x| probe::metrics::quantile(&counts, x).unwrap_or_default();
        println!(
            "mode={} servers={servers} wall={:.1}s probes={finished} ({:.0}/s) failed={failed} \
                 stale={} events={events} alive={alive} cpu={:.1}% of one core p50={:?} p99={:?} \
                 load(1m) before={load0} after={}",
            if burst { "burst" } else { "spread" },
            wall.as_secs_f64(),
            finished as f64 / wall.as_secs_f64(),
            m1.stale_results - m0.stale_results,
            share * 100.0,
            q(0.5),
            q(0.99),
            loadavg(),
        );
        println!(
            "latency buckets (le µs: count): {:?}",
            probe::metrics::LATENCY_BOUNDS_US
                .iter()
                .zip(&counts)
                .filter(|(_, c)| **c > 0)
                .collect::<Vec<_>>()
        );
        Ok::<(), String>(())
    });
    drop(bench);
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
