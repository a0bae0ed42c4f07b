//! `fulcrumd` in dpdk mode under load (needs root; fails, never skips, without it):
//!
//! 1. Reload under load: wrk holds 100 keep-alive connections to a FullNAT VIP served by
//!    nginx A and B; during the run a reload adds C, removes B and changes A's weight.
//!    Our dataplane (like IPVS) keeps a removed server's established connections: wrk
//!    sees no error at all, B keeps answering the connections it had (and gets no new
//!    one), new connections go to A and C by the new weights. Then a broken file is
//!    reloaded: `fulcrum reload` exits 1 naming the key and line, `fulcrum services` still
//!    shows the running table, and traffic continues.
//! 2. SIGTERM under load: FRR peers OSPF with fulcrumd over the twin and routes a client
//!    namespace behind it to the VIP. On SIGTERM the VIP's /32 must leave the FRR
//!    router's kernel table before fulcrumd stops forwarding. The router also has a
//!    static covering /24 towards the node (the other path in a real network), so the
//!    client's traffic still reaches the node after the withdrawal and the test can see
//!    when forwarding really stops: the last request the servers answer (nginx `$msec`;
//!    wrk sends the next request of a connection only after the reply came back through
//!    the node).
//!
//! The two tests run one at a time (each runs a DPDK lcore that busy-polls a CPU).
//! Figures are printed (`--nocapture`) for `docs/operations.md`.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{binaries, first_cpu, must, run};

/// One DPDK lab at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// VIP of the reload test (in the client's subnet).
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// VIP of the SIGTERM test, announced over OSPF.
const OSPF_VIP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 188);
/// Real servers A, B, C.
const RS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 168, 7, 27),
    Ipv4Addr::new(192, 168, 7, 28),
    Ipv4Addr::new(192, 168, 7, 29),
];
/// The client behind the FRR router (SIGTERM test).
const FAR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FAR_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Drain time of the SIGTERM test.
const DRAIN_MS: u64 = 1000;

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// wrk's summary: requests, socket errors (connect, read, write, timeout), non-2xx.
#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    socket_errors: [u64; 4],
    non_2xx: u64,
    text: String,
}

impl WrkResult {
    fn parse(text: &str) -> WrkResult {
        let mut r = WrkResult {
            text: text.to_string(),
            ..WrkResult::default()
        };
        for l in text.lines().map(str::trim) {
            if let Some((n, _)) = l.split_once(" requests in ") {
                r.requests = n.trim().parse().unwrap_or(0);
            } else if let Some(rest) = l.strip_prefix("Socket errors:") {
                for (i, part) in rest.split(',').enumerate().take(4) {
                    r.socket_errors[i] = part
                        .split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(u64::MAX);
                }
            } else if let Some(n) = l.strip_prefix("Non-2xx or 3xx responses:") {
                r.non_2xx = n.trim().parse().unwrap_or(u64::MAX);
            }
        }
        r
    }

    fn errors(&self) -> u64 {
        self.socket_errors.iter().sum::<u64>() + self.non_2xx
    }
}

/// One line of an nginx access log: `$msec $remote_port $status`.
#[derive(Debug, Clone, Copy)]
struct Hit {
    ms: f64,
    port: u16,
    status: u16,
}

/// Namespaces, nginx, FRR, fulcrumd and files; all removed on drop (also while a failure
/// unwinds).
struct Lab {
    c: String,
    far: String,
    lb: String,
    rs: String,
    dir: PathBuf,
    daemon: Option<Child>,
    frr: bool,
    loads: Vec<Child>,
    /// The socket fulcrumd's systemd notifications arrive on (`$NOTIFY_SOCKET`).
    notify: Option<std::os::unix::net::UnixDatagram>,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let base = format!("flab-frel{tag}-{}", std::process::id());
        let lab = Lab {
            c: format!("{base}-c"),
            far: format!("{base}-f"),
            lb: format!("{base}-lb"),
            rs: format!("{base}-rs"),
            dir: PathBuf::from(format!("/tmp/{base}")),
            daemon: None,
            frr: false,
            loads: Vec::new(),
            notify: None,
        };
        std::fs::create_dir_all(&lab.dir).expect("lab dir");
        for ns in [&lab.c, &lab.far, &lab.lb, &lab.rs] {
            must("ip", &["netns", "add", ns]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        for (a, ans, b, bns) in [
            ("c0", &lab.c, "l0", &lab.lb),
            ("r0", &lab.rs, "l1", &lab.lb),
            ("f0", &lab.far, "c1", &lab.c),
        ] {
            must(
                "ip",
                &[
                    "link", "add", a, "netns", ans, "type", "veth", "peer", "name", b, "netns", bns,
                ],
            );
        }
        must(
            "ip",
            &[
                "netns",
                "exec",
                &lab.c,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        );
        // The balancer's kernel answers only through the twins, never on the DPDK ports.
        for (k, v) in [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.all.rp_filter", "1"),
            ("net.ipv4.conf.l0.arp_ignore", "8"),
            ("net.ipv4.conf.l1.arp_ignore", "8"),
        ] {
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &lab.lb,
                    "sysctl",
                    "-qw",
                    &format!("{k}={v}"),
                ],
            );
        }
        for dev in ["l0", "l1"] {
            must("ip", &["-n", &lab.lb, "link", "set", dev, "up"]);
        }
        let mut addrs: Vec<(&String, &str, Ipv4Addr)> = vec![
            (&lab.c, "c0", CLIENT),
            (&lab.c, "c1", FAR_GW),
            (&lab.far, "f0", FAR),
        ];
        for rs in RS {
            addrs.push((&lab.rs, "r0", rs));
        }
        for (ns, dev, addr) in addrs {
            must(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
        }
        // af_packet sees what the sender's stack left: checksums computed in software.
        for (ns, dev) in [
            (&lab.c, "c0"),
            (&lab.c, "c1"),
            (&lab.far, "f0"),
            (&lab.rs, "r0"),
        ] {
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
            must(
                "ip",
                &[
                    "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off",
                ],
            );
        }
        must(
            "ip",
            &[
                "-n",
                &lab.far,
                "route",
                "add",
                "default",
                "via",
                &FAR_GW.to_string(),
            ],
        );
        lab
    }

    /// nginx for real server `i` (A, B, C), logging `$msec $remote_port $status`.
    fn start_nginx(&self, i: usize) {
        let addr = RS[i];
        let d = self.dir.join(format!("rs{i}"));
        std::fs::create_dir_all(&d).expect("nginx dir");
        let d = d.display();
        let conf = format!(
            r#"daemon on;
pid {d}/nginx.pid;
error_log {d}/err.log;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
  log_format hits '$msec $remote_port $status';
  access_log {d}/access.log hits;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen {addr}:80;
    location / {{ return 200 "rs=$server_addr\n"; }}
  }}
}}
"#
        );
        let path = format!("{d}/nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        must(
            "ip",
            &[
                "netns",
                "exec",
                &self.rs,
                "nginx",
                "-p",
                &d.to_string(),
                "-c",
                &path,
                "-e",
                &format!("{d}/err.log"),
            ],
        );
    }

    fn hits(&self, i: usize) -> Vec<Hit> {
        let text =
            std::fs::read_to_string(self.dir.join(format!("rs{i}/access.log"))).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(Hit {
                    ms: f.next()?.parse::<f64>().ok()? * 1000.0,
                    port: f.next()?.parse().ok()?,
                    status: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("fulcrum.toml")
    }

    /// The configuration text: one FullNAT service on `vip` with `servers` (index into
    /// [`RS`], weight); announced over OSPF (with an OSPF interface) when `ospf`.
    fn config(&self, vip: Ipv4Addr, servers: &[(usize, u32)], ospf: bool) -> String {
        let cpu = first_cpu();
        let mut conf = format!(
            r#"[global]
router_id = "10.0.0.1"
control_socket = "{sock}"
metrics = "127.0.0.1:9477"
shutdown_drain_ms = {DRAIN_MS}

[dataplane]
mode = "dpdk"
eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "{prefix}",
       "--lcores=0@{cpu},1@{cpu}", "--log-level", "lib.eal:warning"]
workers = 1

[[interface]]
name = "ftap0"
device = "net_af_packet0,iface=l0"
addresses = ["10.0.0.1/24"]

[[interface]]
name = "ftap1"
device = "net_af_packet1,iface=l1"
addresses = ["192.168.7.1/24"]

[[service]]
name = "web"
vip = "{vip}"
port = 80
scheduler = "wrr"
forward = "fnat"
local_addresses = ["{LIP}"]
announce = "{announce}"
"#,
            sock = self.socket().display(),
            prefix = self.lb,
            announce = if ospf { "ospf" } else { "none" },
        );
        for (i, w) in servers {
            conf.push_str(&format!(
                "\n[[service.real_server]]\naddress = \"{}\"\nweight = {w}\n",
                RS[*i]
            ));
        }
        if ospf {
            conf.push_str(
                r#"
[ospf]
min_ls_interval = "0s"
min_ls_arrival = "0s"

[[ospf.interface]]
name = "ftap0"
area = "0.0.0.0"
network = "point-to-point"
hello_interval = "1s"
dead_interval = "4s"
"#,
            );
        }
        conf
    }

    fn start_daemon(&mut self, fulcrumd: &Path, config: &str) {
        std::fs::write(self.config_path(), config).expect("fulcrum.toml");
        let log = std::fs::File::create(self.dir.join("fulcrumd.log")).expect("log");
        let notify_path = self.dir.join("notify.sock");
        let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("notify socket");
        self.notify = Some(notify);
        let child = Command::new("ip")
            .args(["netns", "exec", &self.lb])
            .arg(fulcrumd)
            .arg("--config")
            .arg(self.config_path())
            .env("RUNTIME_DIRECTORY", &self.dir)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn fulcrumd");
        self.daemon = Some(child);
    }

    /// zebra + ospfd in the router namespace, peering over `c0` and announcing the far
    /// client's subnet.
    fn start_frr(&mut self) {
        let d = self.dir.join("frr");
        std::fs::create_dir_all(d.join("run")).expect("frr dir");
        let dd = d.display();
        let zebra = format!("hostname c\nlog file {dd}/zebra.log\n!\n");
        let ospfd = format!(
            "hostname c\nlog file {dd}/ospfd.log\n!\ninterface c0\n ip ospf network point-to-point\n \
             ip ospf hello-interval 1\n ip ospf dead-interval 4\n!\nrouter ospf\n \
             ospf router-id {CLIENT}\n timers lsa min-arrival 0\n \
             network 10.0.0.0/24 area 0.0.0.0\n network 198.18.0.0/24 area 0.0.0.0\n!\n"
        );
        std::fs::write(d.join("zebra.conf"), zebra).expect("zebra.conf");
        std::fs::write(d.join("ospfd.conf"), ospfd).expect("ospfd.conf");
        must("chown", &["-R", "frr:frr", &dd.to_string()]);
        self.frr = true;
        for daemon in ["zebra", "ospfd"] {
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.c,
                    &format!("/usr/lib/frr/{daemon}"),
                    "-d",
                    "-f",
                    &format!("{dd}/{daemon}.conf"),
                    "-i",
                    &format!("{dd}/run/{daemon}.pid"),
                    "-z",
                    &format!("{dd}/run/zserv.api"),
                    "--vty_socket",
                    &format!("{dd}/run"),
                    "-P",
                    "0",
                ],
            );
        }
    }

    /// systemd notifications from fulcrumd until one contains `want` (at most `secs`).
    fn notifications_until(&self, want: &str, secs: u64) -> Vec<String> {
        let sock = self.notify.as_ref().expect("daemon started");
        let t0 = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = Duration::from_secs(secs).saturating_sub(t0.elapsed());
            assert!(
                !left.is_zero(),
                "no {want:?} from fulcrumd within {secs} s: {seen:?}\n{}",
                self.log()
            );
            sock.set_read_timeout(Some(left)).expect("timeout");
            let mut buf = [0u8; 4096];
            if let Ok(n) = sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = m.contains(want);
                seen.push(m);
                if done {
                    return seen;
                }
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("fulcrumd.log")).unwrap_or_default()
    }

    fn cli(&self, fulcrum: &Path, args: &[&str]) -> Result<String, String> {
        let sock = self.socket();
        let mut all = vec!["--socket", sock.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        run(fulcrum.to_str().expect("utf-8 path"), &all)
    }

    fn services(&self, fulcrum: &Path) -> serde_json::Value {
        let out = self
            .cli(fulcrum, &["services", "--json"])
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
        serde_json::from_str(&out).expect("services json")
    }

    /// Waits until `services` shows the one service with `servers` (address, weight).
    fn wait_servers(&self, fulcrum: &Path, servers: &[(usize, u32)]) -> serde_json::Value {
        let want: Vec<(String, u64)> = servers
            .iter()
            .map(|(i, w)| (RS[*i].to_string(), u64::from(*w)))
            .collect();
        let t0 = Instant::now();
        loop {
            if let Ok(out) = self.cli(fulcrum, &["services", "--json"]) {
                let v: serde_json::Value = serde_json::from_str(&out).expect("json");
                let got: Vec<(String, u64)> = v["services"][0]["real_servers"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| {
                                (
                                    r["address"].as_str().unwrap_or("").to_string(),
                                    r["weight"].as_u64().unwrap_or(u64::MAX),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut sorted = got.clone();
                sorted.sort();
                let mut w = want.clone();
                w.sort();
                if sorted == w {
                    return v;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "services never showed {want:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `count` requests from namespace `ns`, each on its own connection: the bodies
    /// (`rs=ADDR`) and codes.
    fn requests(&self, ns: &str, url: &str, count: usize) -> Vec<String> {
        let mut args: Vec<String> = [
            "netns",
            "exec",
            ns,
            "curl",
            "-s",
            "--connect-timeout",
            "3",
            "-m",
            "5",
            "-H",
            "Connection: close",
            "-w",
            "%{http_code}\\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(std::iter::repeat(url.to_string()).take(count));
        let out = Command::new("ip").args(&args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Starts wrk in `ns`; its output is read by [`Lab::wrk_result`].
    fn start_wrk(&mut self, ns: &str, conns: u32, secs: u32, url: &str) -> usize {
        let out = std::fs::File::create(self.dir.join(format!("wrk{}.txt", self.loads.len())))
            .expect("wrk output");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "wrk", "-t1"])
            .arg(format!("-c{conns}"))
            .arg(format!("-d{secs}s"))
            .args(["--timeout", "2s", "--latency", url])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wrk");
        self.loads.push(child);
        self.loads.len() - 1
    }

    /// Waits for wrk `i` to finish (SIGINT first if `stop`) and parses its summary.
    fn wrk_result(&mut self, i: usize, stop: bool) -> WrkResult {
        let child = &mut self.loads[i];
        if stop {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        let t0 = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "wrk did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
        let text =
            std::fs::read_to_string(self.dir.join(format!("wrk{i}.txt"))).unwrap_or_default();
        WrkResult::parse(&text)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for l in &mut self.loads {
            let _ = l.kill();
            let _ = l.wait();
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = d.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        let mut pidfiles: Vec<PathBuf> = (0..RS.len())
            .map(|i| self.dir.join(format!("rs{i}/nginx.pid")))
            .collect();
        pidfiles.push(self.dir.join("frr/run/ospfd.pid"));
        pidfiles.push(self.dir.join("frr/run/zebra.pid"));
        for pidfile in pidfiles {
            if let Ok(pid) = std::fs::read_to_string(pidfile) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        if self.frr {
            // What every ospfd leaves on exit.
            std::thread::sleep(Duration::from_millis(200));
            let _ = std::fs::remove_file("/var/run/frr/ospfd-gr.json");
        }
        for ns in [&self.c, &self.far, &self.lb, &self.rs] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The line (1-based) of the first line of `text` starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {prefix:?}"))
}

#[test]
fn reload_under_load_keeps_every_connection_and_a_broken_file_changes_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (fulcrumd, fulcrum) = binaries();
    let mut lab = Lab::new("r");
    for i in 0..3 {
        lab.start_nginx(i);
    }
    let before: [(usize, u32); 2] = [(0, 1), (1, 1)];
    let after: [(usize, u32); 2] = [(0, 3), (2, 1)];
    let url = format!("http://{VIP}/");
    lab.start_daemon(&fulcrumd, &lab.config(VIP, &before, false));
    // READY=1 (systemd) only once the dataplane is programmed: the table is complete
    // at the first look.
    let ready = lab.notifications_until("READY=1", 60);
    assert_eq!(ready.len(), 1, "{ready:?}");
    let v = lab.services(&fulcrum);
    assert_eq!(
        v["services"][0]["real_servers"].as_array().map(Vec::len),
        Some(2),
        "services at READY=1: {v}"
    );
    lab.wait_servers(&fulcrum, &before);
    // Until the dataplane forwards (ARP for the VIP, the twins up).
    let t0 = Instant::now();
    loop {
        let one = lab.requests(&lab.c.clone(), &url, 1);
        if one.len() == 2 && one[1] == "200" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "VIP not served: {one:?}\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 100 keep-alive connections for 12 s.
    let c = lab.c.clone();
    let wrk_started = unix_ms(SystemTime::now());
    let wrk = lab.start_wrk(&c, 100, 12, &url);
    std::thread::sleep(Duration::from_secs(3));
    // B's share of the connections, as the table shows it (IPVS ActiveConn).
    let v = lab.services(&fulcrum);
    let b_conns = v["services"][0]["real_servers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["address"] == RS[1].to_string())
                .and_then(|r| r["active_conns"].as_u64())
        })
        .expect("B's active connections");
    assert!(
        (30..=70).contains(&b_conns),
        "B holds {b_conns} of 100 connections"
    );

    // Reload: C added, B removed, A's weight 1 → 3.
    std::fs::write(lab.config_path(), lab.config(VIP, &after, false)).expect("config");
    let reloaded = lab
        .cli(&fulcrum, &["reload"])
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.log()));
    assert!(reloaded.contains("generation 2"), "{reloaded}");
    let around = lab.notifications_until("READY=1", 5);
    assert!(around[0].starts_with("RELOADING=1"), "{around:?}");
    lab.wait_servers(&fulcrum, &after);
    let removed_at = unix_ms(SystemTime::now());

    // New connections go to A and C by weight, none to B.
    let lines = lab.requests(&c, &url, 40);
    let count = |rs: Ipv4Addr| {
        lines
            .iter()
            .filter(|l| l.as_str() == format!("rs={rs}"))
            .count()
    };
    let (a, b, cc) = (count(RS[0]), count(RS[1]), count(RS[2]));
    assert_eq!(
        lines.iter().filter(|l| *l == "200").count(),
        40,
        "{lines:?}"
    );
    assert_eq!(
        b, 0,
        "a new connection went to the removed server: {lines:?}"
    );
    assert!(a > cc && cc > 0, "A {a}, C {cc} (weights 3:1): {lines:?}");

    // A broken file: refused with the key and line, the running table stays.
    std::thread::sleep(Duration::from_secs(1));
    let broken = lab
        .config(VIP, &after, false)
        .replace("scheduler = \"wrr\"", "scheduler = \"wrrr\"");
    let line = line_of(&broken, "scheduler = ");
    std::fs::write(lab.config_path(), &broken).expect("config");
    let refused = lab
        .cli(&fulcrum, &["reload"])
        .expect_err("a broken file must be refused");
    assert!(
        refused.contains(&format!("line {line}: service[0].scheduler")),
        "{refused}"
    );
    assert!(refused.contains("running configuration stays"), "{refused}");
    eprintln!("broken file refused: {refused}");
    let table = lab
        .cli(&fulcrum, &["services"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        table.contains(&format!("{VIP}:80 wrr"))
            && table.contains(&format!("{}:80", RS[0]))
            && table.contains(&format!("{}:80", RS[2]))
            && !table.contains(&format!("{}:80", RS[1])),
        "{table}"
    );
    lab.wait_servers(&fulcrum, &after);
    let status = lab
        .cli(&fulcrum, &["status"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.contains("generation 2") && status.contains("last reload: refused"),
        "{status}"
    );

    let w = lab.wrk_result(wrk, false);
    eprintln!("{}", w.text);
    let hits: Vec<Vec<Hit>> = (0..3).map(|i| lab.hits(i)).collect();
    let b_before: std::collections::BTreeSet<u16> = hits[1]
        .iter()
        .filter(|h| h.ms > wrk_started && h.ms < removed_at)
        .map(|h| h.port)
        .collect();
    let b_after: Vec<&Hit> = hits[1].iter().filter(|h| h.ms > removed_at).collect();
    let b_after_conns: std::collections::BTreeSet<u16> = b_after.iter().map(|h| h.port).collect();
    eprintln!(
        "reload under load: {} requests, errors {:?} + {} non-2xx; B: {} connections \
         (table {b_conns}), {} requests on {} of them after its removal; A {} C {} \
         requests in all",
        w.requests,
        w.socket_errors,
        w.non_2xx,
        b_before.len(),
        b_after.len(),
        b_after_conns.len(),
        hits[0].len(),
        hits[2].len()
    );
    assert!(
        w.requests > 1000,
        "wrk made {} requests:\n{}",
        w.requests,
        w.text
    );
    assert_eq!(
        w.errors(),
        0,
        "wrk saw errors across the reloads:\n{}\n{}",
        w.text,
        lab.log()
    );
    assert!(
        hits.iter().flatten().all(|h| h.status == 200),
        "a server answered other than 200"
    );
    // The removed server's established connections continued (documented behaviour:
    // deleting a real server never disturbs its established connections), and only those.
    assert!(
        !b_after.is_empty(),
        "B's connections stopped at its removal"
    );
    assert!(
        b_after_conns.is_subset(&b_before),
        "B got new connections after its removal: {:?}",
        b_after_conns.difference(&b_before).collect::<Vec<_>>()
    );
    assert_eq!(
        b_before.len() as u64,
        b_conns,
        "B's connections in nginx's log"
    );
}

#[test]
fn sigterm_withdraws_the_vip_before_forwarding_stops() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (fulcrumd, _fulcrum) = binaries();
    let mut lab = Lab::new("t");
    for i in 0..2 {
        lab.start_nginx(i);
    }
    let servers: [(usize, u32); 2] = [(0, 1), (1, 1)];
    lab.start_frr();
    // The other path of a real network: a covering route towards the node, so that the
    // client's packets still reach it once the /32 is gone.
    must(
        "ip",
        &[
            "-n",
            &lab.c,
            "route",
            "add",
            "100.64.0.0/24",
            "via",
            "10.0.0.1",
        ],
    );
    lab.start_daemon(&fulcrumd, &lab.config(OSPF_VIP, &servers, true));
    lab.notifications_until("READY=1", 60);
    assert!(
        lab.log()
            .contains("OSPF router 10.0.0.1 area 0.0.0.0 started"),
        "READY=1 before OSPF started:\n{}",
        lab.log()
    );
    let vip32 = format!("{OSPF_VIP}/32");
    let route = |lab: &Lab| run("ip", &["-n", &lab.c, "route", "show", &vip32]).unwrap_or_default();
    let t0 = Instant::now();
    while !route(&lab).contains("proto ospf") {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "FRR never learned {vip32}:\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The node learned the far client's subnet from FRR: requests come back.
    let url = format!("http://{OSPF_VIP}/");
    let far = lab.far.clone();
    let t0 = Instant::now();
    loop {
        let one = lab.requests(&far, &url, 1);
        if one.len() == 2 && one[1] == "200" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "far client not served: {one:?}\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let wrk = lab.start_wrk(&far, 10, 60, &url);
    std::thread::sleep(Duration::from_secs(2));
    let mut daemon = lab.daemon.take().expect("daemon");
    let pid = daemon.id();

    // Poll the router's kernel every 10 ms from SIGTERM on.
    let c = lab.c.clone();
    let polled = vip32.clone();
    let poll = std::thread::spawn(move || -> Option<SystemTime> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            let r = run("ip", &["-n", &c, "route", "show", &polled]).unwrap_or_default();
            let now = SystemTime::now();
            if !r.contains("proto ospf") {
                return Some(now);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    });
    let term = SystemTime::now();
    must("kill", &["-TERM", &pid.to_string()]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = daemon.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = daemon.kill();
            panic!("fulcrumd did not exit after SIGTERM:\n{}", lab.log());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let exited = SystemTime::now();
    let gone = poll
        .join()
        .expect("poller")
        .unwrap_or_else(|| panic!("{vip32} never left the router:\n{}", lab.log()));
    let w = lab.wrk_result(wrk, true);
    let log = lab.log();
    assert!(status.success(), "{status:?}\n{log}");
    // systemd saw the stages in order.
    let stages = lab.notifications_until("stopping the dataplane", 1);
    assert_eq!(
        stages,
        [
            "STOPPING=1\nSTATUS=stopping: withdrawing the VIPs",
            "STATUS=stopping: draining established connections for 1000 ms",
            "STATUS=stopping: stopping the dataplane",
        ],
        "{log}"
    );

    let hits: Vec<Hit> = (0..2).flat_map(|i| lab.hits(i)).collect();
    let last = hits.iter().map(|h| h.ms).fold(f64::NEG_INFINITY, f64::max);
    let (term, gone, exited) = (unix_ms(term), unix_ms(gone), unix_ms(exited));
    let after_gone = hits.iter().filter(|h| h.ms > gone + 100.0).count();
    eprintln!(
        "SIGTERM: route gone {:.0} ms after SIGTERM, last request served {:.0} ms after \
         SIGTERM (margin {:.0} ms), {} requests served after the withdrawal, exit {:.0} ms \
         after SIGTERM; wrk {} requests",
        gone - term,
        last - term,
        last - gone,
        after_gone,
        exited - term,
        w.requests
    );
    assert!(gone > term, "route gone before SIGTERM?");
    assert!(
        gone < last,
        "forwarding stopped ({last}) before the VIP left the router ({gone})\n{log}"
    );
    // The drain: forwarding went on (replies included: wrk sends a connection's next
    // request only after the reply) for about shutdown_drain_ms after the withdrawal.
    assert!(
        last - gone >= DRAIN_MS as f64 / 2.0,
        "forwarding stopped {:.0} ms after the withdrawal (drain {DRAIN_MS} ms)\n{log}",
        last - gone
    );
    assert!(
        after_gone >= 10,
        "{after_gone} requests after the withdrawal"
    );
    assert!(last <= exited, "a request served after fulcrumd exited");
    for want in [
        "shutdown: withdrawing the VIPs",
        "OSPF shutdown complete",
        "draining established connections for 1000 ms",
        "shutdown: stopping the dataplane",
        "dataplane: forwarding loops stopped",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
}
