//! `fulcrumd` in `dpdk` mode forwarding with the methods whose replies bypass it — LVS
//! direct routing and IP-in-IP tunnelling — and FullNAT carrying the client address in
//! the TOA option, against real nginx servers in network namespaces (needs root; fails,
//! never skips, without it).
//!
//! Topology (one [`integration::Lab`] per test):
//!
//! ```text
//!  client c0 ── g0 gw g1 ── l0 [fulcrumd: net_af_packet0 + twin ftap0]
//!  10.9.0.2   (router)  10.0.0.254  10.0.0.1, VIP 10.0.0.100
//!                 g2 192.168.7.254          [net_af_packet1 + twin ftap1] l1 192.168.7.1
//!                  │                                                  │
//!                  └──────────── switch (bridge) ─────────────────────┘
//!                                 │                    │
//!                          rs1 192.168.7.27     rs2 192.168.7.28   (nginx, VIP on lo)
//! ```
//!
//! The real servers' default route points to the router `gw`, not to the balancer, so in
//! DR and TUN their replies go `rs → gw → client` and never cross the balancer: the tests
//! prove it with a capture on the balancer's server-side veth (no packet from the VIP)
//! and on the router (every reply), and with the balancer's port counters.
//!
//! The benchmark (`#[ignore]`d, run by hand, see docs/dpdk-e2e.md) puts the client on the
//! balancer's link and compares fulcrum FullNAT with nftables DNAT and HAProxy `mode tcp`
//! on the same veths, client and servers.
//!
//! The tests of this file share the machine's CPUs with a busy-polling lcore each: they
//! run one at a time (a process-wide lock).

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use integration::load::{self, LoadReport};
use integration::{Lab, Node, Process};

use common::{allowed_cpus, binaries, example, first_cpu, run};

/// The client (behind the router in the functional tests).
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
/// The router's address on the client's link.
const GW_C: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
/// The router's address on the balancer's link.
const GW_LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
/// The router's address on the servers' segment: their default gateway.
const GW_RS: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 254);
/// The client in the benchmark topology (on the balancer's link).
const BENCH_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The balancer's client-side address (twin `ftap0`).
const LB0: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The balancer's server-side address (twin `ftap1`).
const LB1: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// FullNAT local address.
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 188);
const RS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(192, 168, 7, 27),
    Ipv4Addr::new(192, 168, 7, 28),
];
/// Requests per test.
const N: usize = 1000;
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(3);

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time (each runs a busy-polling DPDK lcore).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A service section of fulcrum.toml.
struct Svc {
    forward: &'static str,
    /// Extra lines (local addresses, client address method).
    extra: String,
}

/// The lab: client, optional router, balancer, switch and two real servers.
struct Topo {
    lab: Lab,
    client: Node,
    client_addr: Ipv4Addr,
    gw: Option<Node>,
    lb: Node,
    rs: Vec<Node>,
    daemon: Option<Process>,
}

/// Runs `args` in `node`, panicking with the output on failure.
fn exec(node: &Node, args: &[&str]) -> String {
    node.exec_ok(args)
        .unwrap_or_else(|e| panic!("{}: {e}", node.netns()))
}

fn sysctl(node: &Node, key: &str, value: &str) {
    node.sysctl(key, value)
        .unwrap_or_else(|e| panic!("{} {key}={value}: {e}", node.netns()));
}

impl Topo {
    /// Builds the topology; `gateway` puts the client behind the router `gw` and gives
    /// the servers `gw` as default gateway (DR, TUN); without it the client sits on the
    /// balancer's link and the servers have no default route (FullNAT replies go to the
    /// local address, on link).
    fn new(test: &str, gateway: bool) -> Topo {
        let lab = Lab::new(test).expect("lab");
        let client = lab.node("c").expect("node c");
        let lb = lab.node("lb").expect("node lb");
        let sw = lab.switch("sw").expect("switch");
        let rs: Vec<Node> = (1..=RS.len())
            .map(|i| lab.node(&format!("rs{i}")).expect("rs node"))
            .collect();
        let ok = |r: integration::Result<()>| r.expect("lab step");
        let (gw, client_addr) = if gateway {
            let gw = lab.router("gw").expect("router");
            ok(lab.link(&client, "c0", &gw, "g0"));
            ok(lab.link(&gw, "g1", &lb, "l0"));
            ok(lab.attach(&gw, "g2", &sw));
            ok(client.addr("c0", &format!("{CLIENT}/24")));
            ok(client.route(&format!("default via {GW_C}")));
            ok(gw.addr("g0", &format!("{GW_C}/24")));
            ok(gw.addr("g1", &format!("{GW_LB}/24")));
            ok(gw.addr("g2", &format!("{GW_RS}/24")));
            // The replies of DR/TUN servers carry the VIP as source and arrive on g2,
            // while the VIP's subnet is on g1: the router must not drop them as spoofed
            // (as an LVS-DR site's router is set up).
            for k in [
                "net.ipv4.conf.all.rp_filter",
                "net.ipv4.conf.default.rp_filter",
                "net.ipv4.conf.g2.rp_filter",
            ] {
                sysctl(&gw, k, "0");
            }
            for dev in ["g0", "g1", "g2"] {
                exec(&gw, &["ethtool", "-K", dev, "tx", "off", "tso", "off"]);
            }
            (Some(gw), CLIENT)
        } else {
            ok(lab.link(&client, "c0", &lb, "l0"));
            ok(client.addr("c0", &format!("{BENCH_CLIENT}/24")));
            (None, BENCH_CLIENT)
        };
        // af_packet sees what the sender's stack left: checksums computed in software.
        exec(&client, &["ethtool", "-K", "c0", "tx", "off", "tso", "off"]);
        ok(lab.attach(&lb, "l1", &sw));
        // The balancer's kernel answers only through the twins, never on the DPDK ports.
        for (k, v) in [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.l0.arp_ignore", "8"),
            ("net.ipv4.conf.l1.arp_ignore", "8"),
        ] {
            sysctl(&lb, k, v);
        }
        for (i, node) in rs.iter().enumerate() {
            ok(lab.attach(node, "eth0", &sw));
            ok(node.addr("eth0", &format!("{}/24", RS[i])));
            exec(node, &["ethtool", "-K", "eth0", "tx", "off", "tso", "off"]);
            if gateway {
                ok(node.route(&format!("default via {GW_RS}")));
            }
            start_nginx(node, RS[i]);
        }
        Topo {
            lab,
            client,
            client_addr,
            gw,
            lb,
            rs,
            daemon: None,
        }
    }

    /// The real servers' LVS-DR/TUN setup: the VIP on `lo`, ARP for it suppressed
    /// (`arp_ignore=1`, `arp_announce=2`), reverse-path filtering off.
    fn vip_on_servers(&self) {
        for node in &self.rs {
            node.addr("lo", &format!("{VIP}/32")).expect("VIP on lo");
            for (k, v) in [
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                ("net.ipv4.conf.eth0.arp_ignore", "1"),
                ("net.ipv4.conf.eth0.arp_announce", "2"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.eth0.rp_filter", "0"),
            ] {
                sysctl(node, k, v);
            }
        }
    }

    fn dir(&self) -> PathBuf {
        self.lb.dir()
    }

    fn socket(&self) -> PathBuf {
        self.dir().join("control.sock")
    }

    /// Writes fulcrum.toml with one service on `VIP:80` and starts fulcrumd with both
    /// lcores on `cpu`; waits until the service is programmed and the twin answers.
    fn start_fulcrumd(&mut self, fulcrumd: &Path, fulcrum: &Path, svc: &Svc, cpu: usize) {
        let dir = self.dir();
        let route = if self.gw.is_some() {
            format!("[[route]]\nprefix = \"10.9.0.0/24\"\nvia = \"{GW_LB}\"\n")
        } else {
            String::new()
        };
        let conf = format!(
            r#"[global]
router_id = "{LB0}"
control_socket = "{sock}"
metrics = "127.0.0.1:9477"

[dataplane]
mode = "dpdk"
eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "{prefix}",
       "--lcores=0@{cpu},1@{cpu}", "--log-level", "lib.eal:warning"]
workers = 1

[[interface]]
name = "ftap0"
device = "net_af_packet0,iface=l0"
addresses = ["{LB0}/24"]

[[interface]]
name = "ftap1"
device = "net_af_packet1,iface=l1"
addresses = ["{LB1}/24"]

{route}
[[service]]
name = "web"
vip = "{VIP}"
port = 80
scheduler = "rr"
forward = "{forward}"
{extra}

[[service.real_server]]
address = "{rs0}"

[[service.real_server]]
address = "{rs1}"
"#,
            sock = self.socket().display(),
            prefix = self.lab.prefix(),
            forward = svc.forward,
            extra = svc.extra,
            rs0 = RS[0],
            rs1 = RS[1],
        );
        let path = dir.join("fulcrum.toml");
        std::fs::write(&path, conf).expect("fulcrum.toml");
        let runtime = format!("RUNTIME_DIRECTORY={}", dir.display());
        let daemon = self
            .lb
            .spawn(&[
                "env",
                &runtime,
                "RUST_LOG=info",
                fulcrumd.to_str().expect("utf-8 path"),
                "--config",
                path.to_str().expect("utf-8 path"),
            ])
            .expect("spawn fulcrumd");
        self.daemon = Some(daemon);
        let t0 = Instant::now();
        loop {
            if let Ok(out) = self.cli(fulcrum, &["services", "--json"]) {
                let v: serde_json::Value = serde_json::from_str(&out).expect("json");
                if v["services"].as_array().map(Vec::len) == Some(1) {
                    break;
                }
            }
            assert!(
                self.daemon.as_ref().is_some_and(Process::is_running),
                "fulcrumd exited:\n{}",
                self.log()
            );
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no service from fulcrumd:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The twin answers for the balancer's own address through the DPDK port.
        let pinger = self.gw.as_ref().unwrap_or(&self.client).clone();
        let t0 = Instant::now();
        loop {
            let ping = pinger.exec_ok(&["ping", "-c", "1", "-W", "1", &LB0.to_string()]);
            if ping.is_ok() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "balancer twin does not answer: {ping:?}\n{}",
                self.log()
            );
        }
    }

    fn log(&self) -> String {
        self.daemon
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.log_path()).ok())
            .unwrap_or_default()
    }

    fn cli(&self, fulcrum: &Path, args: &[&str]) -> Result<String, String> {
        let sock = self.socket();
        let mut all = vec!["--socket", sock.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        run(fulcrum.to_str().expect("utf-8 path"), &all)
    }

    /// A Prometheus sample of fulcrumd's `/metrics` (0 when absent).
    fn metric(&self, name_and_labels: &str) -> f64 {
        let text = exec(
            &self.lb,
            &["curl", "-s", "-m", "5", "http://127.0.0.1:9477/metrics"],
        );
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name_and_labels)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    }

    /// `n` requests to the VIP from the client.
    fn requests(&self, n: usize) -> LoadReport {
        load::requests(&self.client, &format!("http://{VIP}/"), n, TIMEOUT).expect("curl")
    }

    /// Checks a report: every request answered, by both servers within ±5 %, and every
    /// server saw `seen_as` as the peer.
    fn check(&self, what: &str, r: &LoadReport, seen_as: Ipv4Addr) {
        assert_eq!(
            (r.requests, r.errors),
            (N, 0),
            "{what}: {} errors of {}, first {:?}\n{}",
            r.errors,
            r.requests,
            r.first_error,
            self.log()
        );
        let expected: Vec<String> = RS.iter().map(ToString::to_string).collect();
        load::assert_spread(&r.servers, &expected, 0.05);
        assert_eq!(
            r.clients.keys().collect::<Vec<_>>(),
            vec![&seen_as.to_string()],
            "{what}: peers seen by the servers"
        );
    }
}

/// nginx answering `rs=<its own address> client=<peer>` on every address, port 80 (the
/// DR/TUN servers receive on the VIP, so `$server_addr` would not tell them apart).
fn start_nginx(node: &Node, addr: Ipv4Addr) {
    let dir = node.dir().join("nginx");
    std::fs::create_dir_all(&dir).expect("nginx dir");
    let d = dir.display();
    let conf = format!(
        r#"daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 80;
    default_type text/plain;
    location / {{ return 200 "rs={addr} client=$remote_addr\n"; }}
  }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let (p, c) = (d.to_string(), path.display().to_string());
    let err = format!("{d}/error.log");
    exec(node, &["nginx", "-p", &p, "-c", &c, "-e", &err]);
}

/// A packet capture running in a node (tcpdump, or tshark for TOA), stopped on drop.
struct Capture {
    proc: Process,
    file: PathBuf,
}

impl Capture {
    /// `tcpdump -i dev -w file filter`, packet-buffered; waits until it listens.
    fn tcpdump(node: &Node, dev: &str, name: &str, filter: &str) -> Capture {
        let file = node.dir().join(format!("{name}.pcap"));
        let f = file.to_str().expect("utf-8 path");
        let mut args = vec!["tcpdump", "-i", dev, "-nn", "-U", "-Z", "root", "-w", f];
        args.extend(filter.split_whitespace());
        let proc = node.spawn(&args).expect("tcpdump");
        Capture::wait_listening(proc, file, "listening on")
    }

    /// `tshark -i dev -w file -f filter`; waits until it captures.
    fn tshark(node: &Node, dev: &str, name: &str, filter: &str) -> Capture {
        let file = node.dir().join(format!("{name}.pcapng"));
        let f = file.to_str().expect("utf-8 path");
        let proc = node
            .spawn(&["tshark", "-i", dev, "-w", f, "-f", filter])
            .expect("tshark");
        Capture::wait_listening(proc, file, "Capturing on")
    }

    fn wait_listening(proc: Process, file: PathBuf, word: &str) -> Capture {
        let t0 = Instant::now();
        loop {
            let log = std::fs::read_to_string(proc.log_path()).unwrap_or_default();
            if log.contains(word) {
                break;
            }
            assert!(
                proc.is_running() && t0.elapsed() < Duration::from_secs(15),
                "capture did not start: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Capture { proc, file }
    }

    /// Stops the capture (SIGINT lets it flush) and returns the file. The capture first
    /// gets a moment to read what the kernel still buffers for it.
    fn stop(self) -> PathBuf {
        std::thread::sleep(Duration::from_secs(1));
        self.proc.signal(nix::sys::signal::Signal::SIGINT);
        let t0 = Instant::now();
        while self.proc.is_running() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.file.clone()
    }
}

/// Packets in a capture file matching a tcpdump filter (read with tcpdump in `node`).
fn count_packets(node: &Node, file: &Path, filter: &str) -> usize {
    let f = file.to_str().expect("utf-8 path");
    let mut args = vec!["tcpdump", "-nn", "-r", f];
    args.extend(filter.split_whitespace());
    let out = node.exec(&args).expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The DR/TUN proof that replies bypassed the balancer, around `traffic`: a capture on
/// the balancer's server-side veth sees no packet from the VIP while the router sees a
/// SYN-ACK from the VIP per connection, and the server-side DPDK port received next to
/// nothing while it sent every client segment.
fn bypass_checked(t: &Topo, what: &str, traffic: impl FnOnce() -> LoadReport) -> LoadReport {
    let gw = t.gw.as_ref().expect("router");
    // Let the bridge learn every station first, so no reply is flooded to the balancer.
    for rs in RS {
        exec(gw, &["ping", "-c", "1", "-W", "1", &rs.to_string()]);
    }
    let from_vip = format!("src host {VIP} and tcp src port 80");
    let at_lb = Capture::tcpdump(&t.lb, "l1", "lb-l1", &from_vip);
    let at_gw = Capture::tcpdump(gw, "g2", "gw-g2", &from_vip);
    let rx1 = r#"fulcrum_dataplane_port_rx_packets_total{port="ftap1"}"#;
    let tx1 = r#"fulcrum_dataplane_port_tx_packets_total{port="ftap1"}"#;
    let (rx_before, tx_before) = (t.metric(rx1), t.metric(tx1));
    let report = traffic();
    let (rx, tx) = (t.metric(rx1) - rx_before, t.metric(tx1) - tx_before);
    let (lb_file, gw_file) = (at_lb.stop(), at_gw.stop());
    let synacks = "tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)";
    let replies_at_lb = count_packets(&t.lb, &lb_file, "");
    let synacks_at_gw = count_packets(gw, &gw_file, synacks);
    eprintln!(
        "{what}: server-side port ftap1 rx {rx} tx {tx}; packets from the VIP seen on the \
         balancer's l1: {replies_at_lb}, SYN-ACKs from the VIP through the router: \
         {synacks_at_gw}"
    );
    assert_eq!(
        replies_at_lb, 0,
        "{what}: server replies reached the balancer"
    );
    assert!(
        synacks_at_gw >= N,
        "{what}: only {synacks_at_gw} SYN-ACKs of {N} connections went through the router"
    );
    // Each connection sends at least SYN, ACK, request, FIN and the last ACK to a server;
    // the port receives only ARP from the segment.
    assert!(tx >= (4 * N) as f64, "{what}: ftap1 sent {tx} packets");
    assert!(rx <= 50.0, "{what}: ftap1 received {rx} packets");
    report
}

#[test]
fn dpdk_dr_replies_bypass_the_balancer() {
    let _one = serial();
    let (fulcrumd, fulcrum) = binaries();
    let mut t = Topo::new("dpdk_dr", true);
    t.vip_on_servers();
    let svc = Svc {
        forward: "dr",
        extra: String::new(),
    };
    t.start_fulcrumd(&fulcrumd, &fulcrum, &svc, first_cpu());
    let r = bypass_checked(&t, "DR", || t.requests(N));
    t.check("DR", &r, CLIENT);
    let table = t.cli(&fulcrum, &["services"]).unwrap_or_else(|e| e);
    assert!(table.contains("Route"), "{table}");
}

#[test]
fn dpdk_tun_servers_decapsulate_and_reply_directly() {
    let _one = serial();
    let (fulcrumd, fulcrum) = binaries();
    let decap = example("ipip_decap");
    let mut t = Topo::new("dpdk_tun", true);
    t.vip_on_servers();
    // The servers decapsulate IPIP: the kernel's tunl0 where the kernel has it, else the
    // user-space stand-in (this lab's kernels are built without CONFIG_NET_IPIP).
    let mut decaps = Vec::new();
    for node in &t.rs {
        let tunl = node.ip(&["link", "show", "tunl0"]).is_ok()
            || node.ip(&["link", "add", "tunl0", "type", "ipip"]).is_ok();
        if tunl {
            node.ip(&["link", "set", "tunl0", "up"]).expect("tunl0 up");
            sysctl(node, "net.ipv4.conf.tunl0.rp_filter", "0");
        } else {
            let p = node
                .spawn(&[decap.to_str().expect("utf-8 path")])
                .expect("ipip_decap");
            let t0 = Instant::now();
            while !std::fs::read_to_string(p.log_path())
                .unwrap_or_default()
                .contains("ready")
            {
                assert!(
                    p.is_running() && t0.elapsed() < Duration::from_secs(10),
                    "ipip_decap did not start: {:?}",
                    std::fs::read_to_string(p.log_path())
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            decaps.push(p);
        }
    }
    let svc = Svc {
        forward: "tun",
        extra: String::new(),
    };
    t.start_fulcrumd(&fulcrumd, &fulcrum, &svc, first_cpu());
    // Fail fast (not after 1,000 timeouts) when the tunnel does not work at all.
    let first = t.requests(4);
    assert_eq!(
        first.errors,
        0,
        "TUN: {first:?}\ndecapsulators: {:?}\n{}",
        decaps
            .iter()
            .map(|p| std::fs::read_to_string(p.log_path()).unwrap_or_default())
            .collect::<Vec<_>>(),
        t.log()
    );
    // The servers receive IPIP from the balancer's server-side address.
    let ipip = Capture::tcpdump(&t.rs[0], "eth0", "rs1-ipip", "ip proto 4");
    let r = bypass_checked(&t, "TUN", || t.requests(N));
    let file = ipip.stop();
    let encapsulated = count_packets(
        &t.rs[0],
        &file,
        &format!("ip proto 4 and src host {LB1} and dst host {}", RS[0]),
    );
    t.check("TUN", &r, CLIENT);
    assert!(
        encapsulated >= 2 * N,
        "rs1 received {encapsulated} IPIP packets for its ~{} connections",
        N / 2
    );
    let table = t.cli(&fulcrum, &["services"]).unwrap_or_else(|e| e);
    assert!(table.contains("Tunnel"), "{table}");
    for p in &decaps {
        assert!(p.is_running(), "ipip_decap exited");
    }
}

/// The TOA options tshark decoded in `file`: (kind list, length list, exid, data) of every
/// segment carrying kind 254.
fn toa_fields(node: &Node, file: &Path) -> Vec<Vec<String>> {
    let f = file.to_str().expect("utf-8 path");
    let out = exec(
        node,
        &[
            "tshark",
            "-r",
            f,
            "-Y",
            "tcp.option_kind == 254",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.len",
            "-e",
            "tcp.option_kind",
            "-e",
            "tcp.option_len",
            "-e",
            "tcp.options.experimental.exid",
            "-e",
            "tcp.options.experimental.data",
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

#[test]
fn dpdk_fullnat_toa_is_decoded_by_tshark_on_the_server() {
    let _one = serial();
    let (fulcrumd, fulcrum) = binaries();
    let mut t = Topo::new("dpdk_toa", true);
    let svc = Svc {
        forward: "fnat",
        extra: format!("local_addresses = [\"{LIP}\"]\nclient_address = \"toa\""),
    };
    t.start_fulcrumd(&fulcrumd, &fulcrum, &svc, first_cpu());
    // A few connections from known client ports, captured on both servers.
    let caps: Vec<Capture> =
        t.rs.iter()
            .enumerate()
            .map(|(i, n)| Capture::tshark(n, "eth0", &format!("toa{i}"), "tcp port 80"))
            .collect();
    let ports: Vec<u16> = (0..6).map(|i| 45_001 + i).collect();
    for p in &ports {
        let out = t
            .client
            .exec(&[
                "curl",
                "-sS",
                "-m",
                "3",
                "--local-port",
                &p.to_string(),
                &format!("http://{VIP}/"),
            ])
            .expect("curl");
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && body.contains(&format!("client={LIP}")),
            "request from port {p}: {body:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files: Vec<PathBuf> = caps.into_iter().map(Capture::stop).collect();
    let mut seen_ports: Vec<u16> = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let rows = toa_fields(&t.rs[i], file);
        eprintln!("rs{}: tshark TOA rows {rows:?}", i + 1);
        for row in rows {
            let [_sport, syn, _len, kinds, lens, exid, data] = row.as_slice() else {
                panic!("unexpected tshark row {row:?}");
            };
            assert_eq!(syn, "0", "TOA on a SYN: {row:?}");
            let kinds: Vec<&str> = kinds.split(',').collect();
            let lens: Vec<&str> = lens.split(',').collect();
            // Kinds with a length byte (not EOL/NOP) pair up with the length list.
            let with_len: Vec<&&str> = kinds.iter().filter(|k| !matches!(**k, "0" | "1")).collect();
            let at = with_len
                .iter()
                .position(|k| **k == "254")
                .unwrap_or_else(|| panic!("no kind 254 in {kinds:?}"));
            assert_eq!(lens.get(at), Some(&"8"), "TOA length: {row:?}");
            // TOA: kind, length, client port, client address; tshark reads the port as
            // the RFC 6994 experiment identifier and the address as its data.
            let port = if let Some(hex) = exid.strip_prefix("0x") {
                u16::from_str_radix(hex, 16).unwrap_or(0)
            } else {
                exid.parse::<u16>().unwrap_or(0)
            };
            let want = CLIENT.octets().map(|b| format!("{b:02x}")).concat();
            assert_eq!(
                data.replace(':', "").to_lowercase(),
                want,
                "TOA address: {row:?}"
            );
            assert!(ports.contains(&port), "TOA port {port}: {row:?}");
            seen_ports.push(port);
        }
    }
    seen_ports.sort_unstable();
    assert_eq!(
        seen_ports, ports,
        "one TOA (on the first ACK/data segment) per connection"
    );
    // nginx ignores the option: the service keeps working.
    let r = t.requests(N);
    t.check("FullNAT + TOA", &r, LIP);
}

// ---------------------------------------------------------------------------------------
// Benchmark (a measurement, not a test): `cargo test -p integration --test
// fulcrum_dpdk_modes -- --ignored --nocapture bench_fullnat_against_nftables_and_haproxy`.

/// wrk connections and duration.
const BENCH_CONNS: u32 = 50;
const BENCH_SECS: u64 = 10;

fn wrk(t: &Topo, cpu: usize) -> load::WrkReport {
    let c = format!("-c{BENCH_CONNS}");
    let d = format!("-d{BENCH_SECS}s");
    let url = format!("http://{VIP}/");
    let cpu = cpu.to_string();
    let out = exec(
        &t.client,
        &[
            "taskset",
            "-c",
            &cpu,
            "wrk",
            "-t1",
            &c,
            &d,
            "--latency",
            &url,
        ],
    );
    load::parse_wrk(&out).expect("wrk output")
}

/// Steers the balancer node's receive processing of `dev` to `cpu` (RPS).
fn rps(node: &Node, dev: &str, cpu: usize) {
    let mask = format!("{:x}", 1u64 << cpu);
    let path = format!("/sys/class/net/{dev}/queues/rx-0/rps_cpus");
    exec(node, &["sh", "-c", &format!("echo {mask} > {path}")]);
}

#[test]
#[ignore = "benchmark: run by hand, figures in docs/dpdk-e2e.md"]
fn bench_fullnat_against_nftables_and_haproxy() {
    let _one = serial();
    let cpus = allowed_cpus();
    let (client_cpu, lb_cpu) = (cpus[0], *cpus.last().expect("a CPU"));
    let (fulcrumd, fulcrum) = binaries();
    let mut t = Topo::new("dpdk_bench", false);
    // Client and servers on one CPU, the balancer on the other.
    for node in &t.rs {
        // nginx's master and worker: every process of the server's namespace.
        for pid in integration::lab::netns_pids(node.netns()) {
            let (cpu, pid) = (client_cpu.to_string(), pid.to_string());
            exec(node, &["taskset", "-a", "-p", "-c", &cpu, &pid]);
        }
    }
    let mut rows: Vec<(&str, load::WrkReport)> = Vec::new();

    // 1. fulcrum FullNAT, both lcores on the balancer's CPU.
    let svc = Svc {
        forward: "fnat",
        extra: format!("local_addresses = [\"{LIP}\"]"),
    };
    t.start_fulcrumd(&fulcrumd, &fulcrum, &svc, lb_cpu);
    let warm = t.requests(20);
    assert_eq!(warm.errors, 0, "{warm:?}");
    rows.push(("fulcrum FullNAT (dpdk, af_packet)", wrk(&t, client_cpu)));
    if let Some(d) = t.daemon.take() {
        drop(d);
    }
    // fulcrumd removed its twins; the veths are the kernel's again.
    std::thread::sleep(Duration::from_millis(500));

    // 2. nftables DNAT + SNAT to the local address, in the balancer's kernel.
    let lb = t.lb.clone();
    sysctl(&lb, "net.ipv4.conf.l0.arp_ignore", "0");
    sysctl(&lb, "net.ipv4.conf.l1.arp_ignore", "0");
    sysctl(&lb, "net.ipv4.ip_forward", "1");
    lb.addr("l0", &format!("{LB0}/24")).expect("l0");
    lb.addr("l0", &format!("{VIP}/32")).expect("VIP");
    lb.addr("l1", &format!("{LB1}/24")).expect("l1");
    lb.addr("l1", &format!("{LIP}/32")).expect("LIP");
    for dev in ["l0", "l1"] {
        rps(&lb, dev, lb_cpu);
    }
    let service = integration::scenario::Service {
        vip: VIP,
        port: 80,
        proxy_port: None,
        delivery: integration::scenario::Delivery::FullNat,
        balancers: vec![integration::scenario::Balancer {
            node: "lb".into(),
            local: Some(LIP),
        }],
        backends: RS
            .iter()
            .enumerate()
            .map(|(i, a)| integration::scenario::Backend {
                node: format!("rs{}", i + 1),
                addr: *a,
            })
            .collect(),
        client: "c".into(),
        client_addr: t.client_addr,
    };
    let rules = integration::lb::nft_rules(&service, &service.balancers[0]).expect("rules");
    let path = lb.dir().join("lb.nft");
    std::fs::write(&path, rules).expect("lb.nft");
    exec(&lb, &["nft", "-f", path.to_str().expect("utf-8 path")]);
    let check = t.requests(20);
    assert_eq!(check.errors, 0, "nftables: {check:?}");
    rows.push(("nftables DNAT+SNAT (kernel)", wrk(&t, client_cpu)));
    exec(
        &lb,
        &["nft", "delete", "table", "ip", integration::lb::NFT_TABLE],
    );

    // 3. HAProxy mode tcp, pinned to the balancer's CPU.
    let hdir = lb.dir().join("haproxy");
    std::fs::create_dir_all(&hdir).expect("haproxy dir");
    let cfg = integration::lb::haproxy_config(
        &service,
        &service.balancers[0],
        false,
        &hdir.to_string_lossy(),
    )
    .expect("haproxy config");
    let conf = hdir.join("haproxy.cfg");
    std::fs::write(&conf, cfg).expect("haproxy.cfg");
    exec(
        &lb,
        &[
            "taskset",
            "-c",
            &lb_cpu.to_string(),
            "haproxy",
            "-q",
            "-f",
            conf.to_str().expect("utf-8 path"),
        ],
    );
    let t0 = Instant::now();
    while t.requests(1).errors != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "HAProxy does not answer"
        );
    }
    rows.push(("HAProxy mode tcp", wrk(&t, client_cpu)));

    let f = rows[0].1;
    println!("\n| balancer | requests/s | p99 | errors | fulcrum / this (req/s) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in &rows {
        println!(
            "| {name} | {:.0} | {:.2} ms | {} | {:.2} |",
            r.requests_per_sec,
            r.p99.as_secs_f64() * 1e3,
            r.errors,
            f.requests_per_sec / r.requests_per_sec
        );
    }
    println!(
        "\nwrk -t1 -c{BENCH_CONNS} -d{BENCH_SECS}s on CPU {client_cpu} (nginx too), \
         balancer on CPU {lb_cpu}"
    );
}
