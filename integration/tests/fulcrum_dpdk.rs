//! `fulcrumd` with `[dataplane] mode = "dpdk"` forwarding real traffic (needs root; fails,
//! never skips, without it): a client namespace, the balancer namespace running fulcrumd
//! with two `net_af_packet` DPDK ports and their `net_tap` kernel twins, and a server
//! namespace with two nginx real servers. A FullNAT service with a PROXY v2 header and a
//! NAT service (with a TCP health check going out through the twin) each take 1,000 HTTP
//! requests: no errors, round robin within ±5 %, the client address seen by the servers,
//! and `fulcrum services --stats` / `/metrics` showing the counters. Then FRR (zebra +
//! ospfd) in the client namespace peers OSPF with fulcrumd over the twin `ftap0`, learns
//! a third service's VIP (outside every connected subnet) and the client reaches it
//! through that route. FRR also originates a default route (`default-information
//! originate always`) and routes for a far client namespace two hops from the balancer:
//! the node has no static route to it, so FullNAT replies to the far client leave only
//! through the OSPF-learned default route in the dataplane FIB (requests fail before
//! FRR runs, 200 succeed after).
//!
//! The daemon is built once with `cargo build -p appliance --bins` into the target
//! directory this test runs from.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{allowed_cpus, binaries, first_cpu, must, run};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// FullNAT local address: the source the real servers see.
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 188);

const RS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(192, 168, 7, 27),
    Ipv4Addr::new(192, 168, 7, 28),
];
/// VIP announced over OSPF (reachable by the client only through the learned route).
const OSPF_VIP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 100);
/// Client two hops away, behind the FRR router (the client namespace); in no subnet
/// and no static route of the balancer.
const FAR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The FRR router's address on the far client's link.
const FAR_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Requests from the far client.
const FAR_N: usize = 200;
/// Local address of the OSPF-announced service.
const LIP2: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 189);
/// Requests per service.
const N: usize = 1000;
/// URLs per curl run (each request on a new connection).
const BATCH: usize = 100;

/// Namespaces, nginx, fulcrumd and files; all removed on drop (also while a failure
/// unwinds).
struct Lab {
    c: String,
    far: String,
    lb: String,
    rs: String,
    dir: PathBuf,
    daemon: Option<Child>,
    /// One DPDK lab at a time in this binary: both pin lcores to the same two CPUs.
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// Serialises the labs of this binary (held by [`Lab`] until its cleanup is done).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Lab {
    fn new() -> Lab {
        Lab::with_tag("fdpdk")
    }

    /// A lab whose namespaces and directory are named `flab-<tag>-<pid>-*`.
    fn with_tag(tag: &str) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let base = format!("flab-{tag}-{}", std::process::id());
        let lab = Lab {
            c: format!("{base}-c"),
            far: format!("{base}-f"),
            lb: format!("{base}-lb"),
            rs: format!("{base}-rs"),
            dir: PathBuf::from(format!("/tmp/{base}")),
            daemon: None,
            _serial: serial,
        };
        std::fs::create_dir_all(&lab.dir).expect("lab dir");
        for ns in [&lab.c, &lab.far, &lab.lb, &lab.rs] {
            must("ip", &["netns", "add", ns]);
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        must(
            "ip",
            &[
                "link", "add", "c0", "netns", &lab.c, "type", "veth", "peer", "name", "l0",
                "netns", &lab.lb,
            ],
        );
        must(
            "ip",
            &[
                "link", "add", "r0", "netns", &lab.rs, "type", "veth", "peer", "name", "l1",
                "netns", &lab.lb,
            ],
        );
        // The far client behind the client namespace, which routes for it.
        must(
            "ip",
            &[
                "link", "add", "f0", "netns", &lab.far, "type", "veth", "peer", "name", "c1",
                "netns", &lab.c,
            ],
        );
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
        for (ns, dev, addr) in [(&lab.far, "f0", FAR), (&lab.c, "c1", FAR_GW)] {
            must(
                "ip",
                &["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev],
            );
        }
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
        must(
            "ip",
            &[
                "-n",
                &lab.c,
                "addr",
                "add",
                &format!("{CLIENT}/24"),
                "dev",
                "c0",
            ],
        );
        for rs in RS {
            must(
                "ip",
                &[
                    "-n",
                    &lab.rs,
                    "addr",
                    "add",
                    &format!("{rs}/24"),
                    "dev",
                    "r0",
                ],
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
        // NAT mode: replies to the client go back through the balancer.
        must(
            "ip",
            &[
                "-n",
                &lab.rs,
                "route",
                "add",
                "10.0.0.0/24",
                "via",
                "192.168.7.1",
            ],
        );
        for (i, rs) in RS.iter().enumerate() {
            lab.start_nginx(i, *rs);
        }
        lab
    }

    fn start_nginx(&self, i: usize, addr: Ipv4Addr) {
        let d = self.dir.join(format!("rs{i}"));
        std::fs::create_dir_all(&d).expect("nginx dir");
        let d = d.display();
        let conf = format!(
            r#"daemon on;
pid {d}/nginx.pid;
error_log {d}/err.log;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen {addr}:80;
    location / {{ return 200 "rs=$server_addr via=$remote_addr client=$remote_addr"; }}
  }}
  server {{
    listen {addr}:8080 proxy_protocol;
    location / {{ return 200 "rs=$server_addr via=$remote_addr client=$proxy_protocol_addr"; }}
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

    fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Writes fulcrum.toml; `nat_weight` is the second NAT server's weight.
    fn write_config(&self, nat_weight: u32) -> PathBuf {
        let cpu = first_cpu();
        let sock = self.socket();
        let conf = format!(
            r#"[global]
router_id = "10.0.0.1"
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
addresses = ["10.0.0.1/24"]

[[interface]]
name = "ftap1"
device = "net_af_packet1,iface=l1"
addresses = ["192.168.7.1/24"]

[[service]]
name = "web-proxy"
vip = "{VIP}"
port = 8080
scheduler = "rr"
forward = "fnat"
local_addresses = ["{LIP}"]
client_address = "proxy-v2"

[[service.real_server]]
address = "{rs0}"

[[service.real_server]]
address = "{rs1}"

[[service]]
name = "web-nat"
vip = "{VIP}"
port = 81
scheduler = "rr"
forward = "nat"
check = {{ type = "tcp", interval = "1s", timeout = "1s", connect_port = 80 }}

[[service.real_server]]
address = "{rs0}"
port = 80

[[service.real_server]]
address = "{rs1}"
port = 80
weight = {nat_weight}

[[service]]
name = "web-ospf"
vip = "{OSPF_VIP}"
port = 80
scheduler = "rr"
forward = "fnat"
local_addresses = ["{LIP2}"]
announce = "ospf"

[[service.real_server]]
address = "{rs0}"

[[service.real_server]]
address = "{rs1}"

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
            sock = sock.display(),
            prefix = self.lb,
            rs0 = RS[0],
            rs1 = RS[1],
        );
        let path = self.dir.join("fulcrum.toml");
        std::fs::write(&path, conf).expect("fulcrum.toml");
        path
    }

    fn start_daemon(&mut self, fulcrumd: &Path) {
        let config = self.write_config(1);
        self.start_daemon_with(fulcrumd, &config);
    }

    /// Starts fulcrumd in the balancer namespace with `config`.
    fn start_daemon_with(&mut self, fulcrumd: &Path, config: &Path) {
        let log = std::fs::File::create(self.dir.join("fulcrumd.log")).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.lb])
            .arg(fulcrumd)
            .arg("--config")
            .arg(config)
            .env("RUNTIME_DIRECTORY", &self.dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn fulcrumd");
        self.daemon = Some(child);
    }

    /// Starts zebra and ospfd in the client namespace, peering over `c0`.
    fn start_frr(&self) {
        let d = self.dir.join("frr");
        std::fs::create_dir_all(d.join("run")).expect("frr dir");
        let dd = d.display();
        let zebra = format!("hostname c\nlog file {dd}/zebra.log\n!\n");
        let ospfd = format!(
            "hostname c\nlog file {dd}/ospfd.log\n!\ninterface c0\n ip ospf network point-to-point\n \
             ip ospf hello-interval 1\n ip ospf dead-interval 4\n!\nrouter ospf\n \
             ospf router-id {CLIENT}\n timers lsa min-arrival 0\n \
             network 10.0.0.0/24 area 0.0.0.0\n \
             default-information originate always\n!\n"
        );
        std::fs::write(d.join("zebra.conf"), zebra).expect("zebra.conf");
        std::fs::write(d.join("ospfd.conf"), ospfd).expect("ospfd.conf");
        must("chown", &["-R", "frr:frr", &dd.to_string()]);
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("fulcrumd.log")).unwrap_or_default()
    }

    fn cli(&self, fulcrum: &Path, args: &[&str]) -> Result<String, String> {
        let sock = self.socket();
        let mut all = vec!["--socket", sock.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        run(fulcrum.to_str().expect("utf-8 path"), &all)
    }

    /// `count` requests to `url` from the client, each on its own connection: one line
    /// per request, `<body> <http code>`.
    fn requests(&self, url: &str, count: usize) -> Vec<String> {
        self.requests_from(&self.c, url, count)
    }

    /// `count` requests to `url` from namespace `ns`, as [`Lab::requests`].
    fn requests_from(&self, ns: &str, url: &str, count: usize) -> Vec<String> {
        let mut lines = Vec::with_capacity(count);
        let mut left = count;
        while left > 0 {
            let n = left.min(BATCH);
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
                " %{http_code}\\n",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(std::iter::repeat(url.to_string()).take(n));
            let out = Command::new("ip").args(&args).output().expect("curl");
            lines.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned),
            );
            left -= n;
        }
        lines
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
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
        // What every ospfd leaves on exit.
        let _ = std::fs::remove_file("/var/run/frr/ospfd-gr.json");
        for ns in [&self.c, &self.far, &self.lb, &self.rs] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Checks one service's replies: all 200 with the expected client, spread evenly.
/// `via` is the source address the servers saw.
fn check_replies(what: &str, lines: &[String], via: Ipv4Addr) {
    assert_eq!(lines.len(), N, "{what}: {} replies of {N}", lines.len());
    let want = format!(" via={via} client={CLIENT} 200");
    let bad: Vec<&String> = lines.iter().filter(|l| !l.ends_with(&want)).collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {N} replies wrong, first {:?}",
        bad.len(),
        bad.first()
    );
    for rs in RS {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("rs={rs} ")))
            .count();
        let (lo, hi) = (N / 2 - N / 20, N / 2 + N / 20);
        assert!(
            (lo..=hi).contains(&n),
            "{what}: {rs} served {n} of {N} (want {lo}..={hi})"
        );
    }
}

#[test]
fn fulcrumd_dpdk_mode_balances_fullnat_nat_and_announces_over_ospf() {
    let (fulcrumd, fulcrum) = binaries();
    let mut lab = Lab::new();
    lab.start_daemon(&fulcrumd);

    // The daemon answers `services` once the backend runs and the services are sent.
    let t0 = Instant::now();
    let services = loop {
        if let Ok(out) = lab.cli(&fulcrum, &["services", "--json"]) {
            let v: serde_json::Value = serde_json::from_str(&out).expect("json");
            if v["services"].as_array().map(Vec::len) == Some(3) {
                break v;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no services from fulcrumd:\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        services["services"][0]["real_servers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // The twins carry the kernel's addresses: the balancer answers pings through them.
    let t0 = Instant::now();
    loop {
        let ping = run(
            "ip",
            &[
                "netns", "exec", &lab.c, "ping", "-c", "1", "-W", "1", "10.0.0.1",
            ],
        );
        if ping.is_ok() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "balancer twin does not answer: {ping:?}\n{}",
            lab.log()
        );
    }

    let proxied = lab.requests(&format!("http://{VIP}:8080/"), N);
    let nat = lab.requests(&format!("http://{VIP}:81/"), N);
    let stats = lab
        .cli(&fulcrum, &["services", "--stats", "--json"])
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics = run(
        "ip",
        &[
            "netns",
            "exec",
            &lab.lb,
            "curl",
            "-s",
            "-m",
            "5",
            "http://127.0.0.1:9477/metrics",
        ],
    )
    .unwrap_or_else(|e| e);
    let table = lab.cli(&fulcrum, &["services"]).unwrap_or_else(|e| e);
    eprintln!(
        "first replies: {:?} {:?}\n{table}",
        proxied.first(),
        nat.first()
    );

    // The FullNAT servers saw the local address, the client only in the PROXY header;
    // the NAT servers saw the client itself.
    check_replies("FullNAT + PROXY v2", &proxied, LIP);
    check_replies("NAT", &nat, CLIENT);

    let v: serde_json::Value = serde_json::from_str(&stats).expect("json");
    let svcs = v["services"].as_array().expect("services");
    assert_eq!(svcs.len(), 3, "{v}");
    // The two services that took the requests (the OSPF one is used below).
    for s in svcs.iter().filter(|s| s["name"] != "web-ospf") {
        let conns = s["stats"]["conns"].as_u64().unwrap_or(0);
        assert!(conns >= N as u64, "{}: {conns} connections: {s}", s["name"]);
        for rs in s["real_servers"].as_array().expect("real servers") {
            let c = &rs["stats"];
            assert!(
                c["conns"].as_u64().unwrap_or(0) >= (N / 2 - N / 20) as u64,
                "{rs}"
            );
            assert!(c["in_packets"].as_u64().unwrap_or(0) > 0, "{rs}");
            assert!(c["out_bytes"].as_u64().unwrap_or(0) > 0, "{rs}");
        }
    }
    assert!(
        table.contains(&format!("{VIP}:8080")) && table.contains("FullNat"),
        "{table}"
    );
    assert!(
        metrics.contains(&format!(
            "fulcrum_ipvs_backend_connections_total{{service=\"web-nat\",local_address=\"{VIP}\",local_port=\"81\""
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("fulcrum_dataplane_port_rx_packets_total{port=\"ftap0\"}"),
        "{metrics}"
    );
    // The NAT service's health check went out through the twin and found both servers.
    let health = lab
        .cli(&fulcrum, &["health", "--json"])
        .unwrap_or_else(|e| e);
    assert!(!health.contains("\"down\""), "{health}");

    // A reload edits the changed server in place: the new weight, the counters kept.
    lab.write_config(3);
    lab.cli(&fulcrum, &["reload"])
        .unwrap_or_else(|e| panic!("{e}"));
    // The dataplane applies the new configuration right after the reload answers.
    let t0 = Instant::now();
    let nat = loop {
        let after = lab
            .cli(&fulcrum, &["services", "--stats", "--json"])
            .unwrap_or_else(|e| panic!("{e}"));
        let after: serde_json::Value = serde_json::from_str(&after).expect("json");
        let nat = after["services"]
            .as_array()
            .and_then(|v| v.iter().find(|s| s["name"] == "web-nat").cloned())
            .expect("web-nat");
        if nat["real_servers"][1]["weight"] == 3 || t0.elapsed() > Duration::from_secs(5) {
            break nat;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(nat["real_servers"][1]["weight"], 3, "{nat}");
    assert_eq!(nat["real_servers"][0]["weight"], 1, "{nat}");
    assert!(
        nat["stats"]["conns"].as_u64().unwrap_or(0) >= N as u64,
        "counters lost on reload: {nat}"
    );

    // The far client reaches the VIP through the client namespace, but the balancer has
    // no route back to it yet: the FullNAT replies are dropped.
    let before = lab.requests_from(&lab.far, &format!("http://{VIP}:8080/"), 1);
    assert!(
        before.len() == 1 && before.iter().all(|l| l.ends_with(" 000")),
        "far client served without a route back: {before:?}"
    );

    // OSPF over the twin: FRR in the client namespace learns the third VIP from fulcrumd
    // and the client reaches it through that route (it is in no connected subnet).
    lab.start_frr();
    let t0 = Instant::now();
    loop {
        let r = run(
            "ip",
            &["-n", &lab.c, "route", "show", &format!("{OSPF_VIP}/32")],
        )
        .unwrap_or_default();
        if r.contains("via 10.0.0.1") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "FRR did not learn {OSPF_VIP}/32 over ftap0: {r:?}\n{}\nospfd: {}",
            lab.log(),
            std::fs::read_to_string(lab.dir.join("frr/ospfd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines = lab.requests(&format!("http://{OSPF_VIP}/"), 20);
    let want = format!(" via={LIP2} client={LIP2} 200");
    assert_eq!(lines.len(), 20, "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with(&want)), "{lines:?}");

    // The node learned FRR's default route over OSPF; the dataplane FIB has it, and the
    // FullNAT replies to the far client follow it (the servers see the client address
    // only in the PROXY header).
    let t0 = Instant::now();
    loop {
        let routes = lab.cli(&fulcrum, &["routes"]).unwrap_or_else(|e| e);
        if routes.contains("0.0.0.0/0") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no OSPF default route: {routes}\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // One request at a time until the dataplane has the route (fails fast without it).
    let t0 = Instant::now();
    loop {
        let one = lab.requests_from(&lab.far, &format!("http://{VIP}:8080/"), 1);
        if one.iter().all(|l| l.ends_with(" 200")) && one.len() == 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "far client not served through the OSPF default route: {one:?}\n{}",
            lab.log()
        );
    }
    let far = lab.requests_from(&lab.far, &format!("http://{VIP}:8080/"), FAR_N);
    let want = format!(" via={LIP} client={FAR} 200");
    let bad: Vec<&String> = far.iter().filter(|l| !l.ends_with(&want)).collect();
    assert_eq!(far.len(), FAR_N, "{far:?}");
    assert!(
        bad.is_empty(),
        "far client: {} of {FAR_N} wrong, first {:?}\n{}",
        bad.len(),
        bad.first(),
        lab.log()
    );
    assert!(
        lab.log().contains("dataplane: FIB rebuilt with"),
        "{}",
        lab.log()
    );

    // SIGTERM stops the forwarding loop, closes the ports and exits cleanly.
    let mut d = lab.daemon.take().expect("daemon");
    must("kill", &["-TERM", &d.id().to_string()]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = d.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = d.kill();
            panic!("fulcrumd did not exit after SIGTERM:\n{}", lab.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", lab.log());
}

/// Requests of the multi-worker test.
const MW_N: usize = 400;

/// The configuration of the multi-worker test: two workers on lcores 1 and 2 (pinned
/// to the first and second allowed CPU; lcore 0, the main one, shares the first), a
/// FullNAT service VIP:80 over the two nginx servers.
fn write_workers_config(lab: &Lab) -> PathBuf {
    let cpus = allowed_cpus();
    let c0 = cpus[0];
    let c1 = cpus.get(1).copied().unwrap_or(c0);
    let conf = format!(
        r#"[global]
router_id = "10.0.0.1"
control_socket = "{sock}"
metrics = "127.0.0.1:9477"

[dataplane]
mode = "dpdk"
eal = ["--no-huge", "-m", "512", "--no-pci", "--file-prefix", "{prefix}",
       "--lcores=0@{c0},1@{c0},2@{c1}", "--log-level", "lib.eal:warning"]
workers = 2
idle_sleep_us = 50

[timeouts]
tcp = "60s"

[[interface]]
name = "ftap0"
device = "net_af_packet0,iface=l0"
addresses = ["10.0.0.1/24"]

[[interface]]
name = "ftap1"
device = "net_af_packet1,iface=l1"
addresses = ["192.168.7.1/24"]

[[service]]
name = "web-mw"
vip = "{VIP}"
port = 80
scheduler = "rr"
forward = "fnat"
local_addresses = ["{LIP}"]

[[service.real_server]]
address = "{rs0}"

[[service.real_server]]
address = "{rs1}"
"#,
        sock = lab.socket().display(),
        prefix = lab.lb,
        rs0 = RS[0],
        rs1 = RS[1],
    );
    let path = lab.dir.join("fulcrum-mw.toml");
    std::fs::write(&path, conf).expect("fulcrum-mw.toml");
    path
}

/// The value of a metric line `name{labels} value` in a scrape (0 when absent).
fn metric_value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn scrape(lab: &Lab) -> String {
    run(
        "ip",
        &[
            "netns",
            "exec",
            &lab.lb,
            "curl",
            "-s",
            "-m",
            "5",
            "http://127.0.0.1:9477/metrics",
        ],
    )
    .unwrap_or_else(|e| panic!("metrics: {e}"))
}

/// `fulcrum conns --json`: the rows.
fn conns(lab: &Lab, fulcrum: &Path) -> Vec<serde_json::Value> {
    let out = lab
        .cli(fulcrum, &["conns", "--json"])
        .unwrap_or_else(|e| panic!("conns: {e}\n{}", lab.log()));
    let v: serde_json::Value = serde_json::from_str(&out).expect("conns json");
    v["conns"].as_array().cloned().expect("conns array")
}

/// Established FullNAT connections of the VIP in a `conns` answer: their
/// `expires_seconds`; every one must show the local address column.
fn established(rows: &[serde_json::Value]) -> Vec<u64> {
    rows.iter()
        .filter(|r| r["state"] == "ESTABLISHED" && r["virtual_address"] == format!("{VIP}:80"))
        .map(|r| {
            let local = r["local"].as_str().unwrap_or_default();
            assert!(
                local.starts_with(&format!("{LIP}:")),
                "no local address: {r}"
            );
            assert_eq!(
                r["client"].as_str().map(|c| c.starts_with("10.0.0.2:")),
                Some(true)
            );
            r["expires_seconds"].as_u64().expect("expires")
        })
        .collect()
}

#[test]
fn fulcrumd_dpdk_two_workers_conns_and_runtime_ipvsadm() {
    let (fulcrumd, fulcrum) = binaries();
    let start = Instant::now();
    let mut lab = Lab::with_tag("fdpdkmw");
    let config = write_workers_config(&lab);
    lab.start_daemon_with(&fulcrumd, &config);

    let t0 = Instant::now();
    loop {
        if let Ok(out) = lab.cli(&fulcrum, &["services", "--json"]) {
            let v: serde_json::Value = serde_json::from_str(&out).expect("json");
            if v["services"][0]["real_servers"].as_array().map(Vec::len) == Some(2) {
                break;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "no services from fulcrumd:\n{}",
            lab.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        lab.log()
            .contains("2 forwarding worker(s) on lcores [1, 2]"),
        "{}",
        lab.log()
    );
    // The twin answers (its ARP and ICMP are punted, from either worker, to worker 0).
    let t0 = Instant::now();
    while run(
        "ip",
        &[
            "netns", "exec", &lab.c, "ping", "-c", "1", "-W", "1", "10.0.0.1",
        ],
    )
    .is_err()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "twin does not answer\n{}",
            lab.log()
        );
    }

    eprintln!("[{:?}] daemon up, twin answers", start.elapsed());
    // 400 requests, each on a new connection: all answered through the local address.
    let lines = lab.requests(&format!("http://{VIP}/"), MW_N);
    assert_eq!(lines.len(), MW_N, "{lines:?}");
    let want = format!(" via={LIP} client={LIP} 200");
    let bad: Vec<&String> = lines.iter().filter(|l| !l.ends_with(&want)).collect();
    assert!(
        bad.is_empty(),
        "{} of {MW_N} wrong, first {:?}\n{}",
        bad.len(),
        bad.first(),
        lab.log()
    );
    for rs in RS {
        let n = lines
            .iter()
            .filter(|l| l.starts_with(&format!("rs={rs} ")))
            .count();
        assert!(n > MW_N / 4, "{rs} served {n} of {MW_N}");
    }

    // Both workers created connections; frames crossed between them; no worker
    // disagreed on an owner. The service counters sum both workers.
    let m = scrape(&lab);
    let per_worker: Vec<f64> = (0..2)
        .map(|w| {
            metric_value(
                &m,
                &format!("fulcrum_dataplane_worker_connections_total{{worker=\"{w}\"}}"),
            )
        })
        .collect();
    assert!(
        per_worker.iter().all(|&c| c > 0.0),
        "connections per worker {per_worker:?}\n{m}"
    );
    let stats: serde_json::Value = serde_json::from_str(
        &lab.cli(&fulcrum, &["services", "--stats", "--json"])
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("json");
    let total = stats["services"][0]["stats"]["conns"].as_u64().unwrap_or(0);
    assert_eq!(
        total as f64,
        per_worker.iter().sum::<f64>(),
        "services --stats sums the workers: {stats}"
    );
    assert!(total >= MW_N as u64, "{stats}");
    let handed: f64 = (0..2)
        .map(|w| {
            metric_value(
                &m,
                &format!("fulcrum_dataplane_worker_handover_sent_total{{worker=\"{w}\"}}"),
            )
        })
        .sum();
    assert!(handed > 0.0, "no hand-over counted\n{m}");
    for w in 0..2 {
        let series =
            format!("fulcrum_dataplane_worker_handover_owner_mismatch_total{{worker=\"{w}\"}}");
        assert!(m.contains(&series), "{series} missing\n{m}");
        assert_eq!(metric_value(&m, &series), 0.0, "{series}");
        let rx = format!("fulcrum_dataplane_worker_rx_packets_total{{worker=\"{w}\"}}");
        assert!(metric_value(&m, &rx) > 0.0, "{rx}\n{m}");
    }
    eprintln!(
        "[{:?}] connections per worker {per_worker:?}, handed over {handed}",
        start.elapsed()
    );

    // Keep-alive connections open (wrk) while the connection table is listed.
    let wrk = Command::new("ip")
        .args(["netns", "exec", &lab.c, "wrk", "-t1", "-c4", "-d6s"])
        .arg(format!("http://{VIP}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk");
    std::thread::sleep(Duration::from_millis(1500));
    let rows = conns(&lab, &fulcrum);
    let est = established(&rows);
    assert!(est.len() >= 4, "wrk's connections not listed: {rows:?}");
    assert!(
        est.iter().all(|&e| e <= 60),
        "established expiry beyond the configured 60 s: {est:?}"
    );
    let workers: std::collections::BTreeSet<u64> =
        rows.iter().filter_map(|r| r["worker"].as_u64()).collect();
    assert!(workers.iter().all(|w| *w < 2), "{workers:?}");
    let table = lab.cli(&fulcrum, &["conns"]).unwrap_or_else(|e| e);
    assert!(
        table.contains("local") && table.contains(&format!("{LIP}:")),
        "{table}"
    );

    // ipvsadm --set: the established timeout becomes 900 s, seen on the next packets.
    let answer = lab
        .cli(&fulcrum, &["ipvsadm", "--set", "900", "120", "300"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(answer.contains("tcp 900s"), "{answer}");
    assert!(answer.contains("lost on the next reload"), "{answer}");
    std::thread::sleep(Duration::from_millis(500));
    let est = established(&conns(&lab, &fulcrum));
    assert!(
        est.iter().any(|&e| e > 800),
        "no connection with the 900 s timeout: {est:?}"
    );
    let out = wrk.wait_with_output().expect("wrk");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk: {report}");
    assert!(
        !report.contains("Socket errors") && !report.contains("Non-2xx"),
        "wrk errors: {report}"
    );

    eprintln!("[{:?}] conns and --set checked", start.elapsed());
    // ipvsadm -e ... -w 0 drains the second server: new connections all go to the first.
    let answer = lab
        .cli(
            &fulcrum,
            &[
                "ipvsadm",
                "-e",
                "-t",
                &format!("{VIP}:80"),
                "-r",
                &format!("{}:80", RS[1]),
                "-w",
                "0",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        answer.contains("edited") && answer.contains("lost on the next reload"),
        "{answer}"
    );
    let services = lab.cli(&fulcrum, &["services"]).unwrap_or_else(|e| e);
    let lines = lab.requests(&format!("http://{VIP}/"), 100);
    assert_eq!(lines.len(), 100);
    let first = format!("rs={} via={LIP} client={LIP} 200", RS[0]);
    let other: Vec<&String> = lines.iter().filter(|l| **l != first).collect();
    assert!(
        other.is_empty(),
        "{} of 100 not served by {} after draining {}: {:?}\n{services}",
        other.len(),
        RS[0],
        RS[1],
        other.first()
    );
    // A bad command line is refused with the reason; the daemon keeps running.
    let e = lab
        .cli(
            &fulcrum,
            &[
                "ipvsadm",
                "-d",
                "-t",
                &format!("{VIP}:80"),
                "-r",
                "192.168.7.99:80",
            ],
        )
        .expect_err("no such server");
    assert!(e.contains("no real server"), "{e}");

    let m = scrape(&lab);
    for w in 0..2 {
        let series =
            format!("fulcrum_dataplane_worker_handover_owner_mismatch_total{{worker=\"{w}\"}}");
        assert_eq!(metric_value(&m, &series), 0.0, "{series}");
    }
    // The per-worker families pass Prometheus' own lint.
    let path = lab.dir.join("metrics.txt");
    std::fs::write(&path, &m).expect("write metrics");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&path).expect("open"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM stops both loops and the daemon exits cleanly.
    eprintln!("[{:?}] drain checked", start.elapsed());
    let mut d = lab.daemon.take().expect("daemon");
    must("kill", &["-TERM", &d.id().to_string()]);
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = d.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = d.kill();
            panic!("fulcrumd did not exit after SIGTERM:\n{}", lab.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", lab.log());
    assert!(
        lab.log().contains("forwarding loops stopped"),
        "{}",
        lab.log()
    );
}
