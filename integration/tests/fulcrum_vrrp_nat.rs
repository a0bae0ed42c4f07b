//! Seed 001's two-director LVS-NAT topology with fulcrumd (`dpdk` mode) on both
//! directors and VRRP between them (needs root; fails, never skips, without it).
//!
//! - `cnet` (bridge, 10.10.0.0/24): the client (.100) and port 0 of each director
//!   (twin `eth0`: d1 .11, d2 .12); the service VIP 10.10.0.20 is VRRP instance VI_1.
//! - `snet` (bridge, 192.168.211.0/24): port 1 of each director (twin `eth1`: d1 .11,
//!   d2 .12) and two nginx real servers (.13, .14) whose default gateway is
//!   192.168.211.20, VRRP instance VI_2. VI_1 and VI_2 form one sync group (advert_int
//!   1 s); d1 has priority 150, d2 100.
//! - Each fulcrumd runs one forwarding lcore pinned to its own allowed CPU (EAL
//!   `--lcores=0@cN,1@cN`, `idle_sleep_us = 50`), NAT service VIP:80 → RS:80, round
//!   robin, TCP health checks through the twin.
//!
//! It asserts: d1 is Master of both instances and d2 Backup; 1,000 requests from the
//! client all answer, round robin within ±5 %, nginx sees the client's own address (NAT
//! keeps it; replies pass the gateway VIP and are translated back); then the Master is
//! stopped — SIGTERM (priority-0 resignation) in one drill, and after d1 is restarted and
//! has preempted again, `kill -9` in the other — while the client keeps requesting: d2
//! becomes Master of both instances, the client's and the servers' neighbour entries for
//! the two VIPs move to d2's MACs (its gratuitous ARPs), and every request started later
//! than the VRRP bound (Skew_Time after a resignation, 3 × advert_int + Skew_Time after
//! a kill) plus 1 s of slack succeeds. The failures in between are counted and printed.
//!
//! The daemon is built once with `cargo build -p appliance --bins` into the target
//! directory this test runs from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use integration::lb::{allowed_cpus, fulcrum_dir, FulcrumBins, FulcrumNode};
use integration::load::{self, assert_spread, Continuous, Sample};
use integration::nginx::NginxConfig;
use integration::wait::wait_until;
use integration::{Lab, Process, Switch};
use nix::sys::signal::Signal;

const VIP: &str = "10.10.0.20";
const GATEWAY: &str = "192.168.211.20";
const CLIENT: &str = "10.10.0.100";
const RS: [&str; 2] = ["192.168.211.13", "192.168.211.14"];
/// Requests in the steady-state run.
const N: usize = 1000;
/// VRRP advert interval.
const ADVERT: Duration = Duration::from_secs(1);
/// Skew_Time of the priority-100 backup: (256 - 100) / 256 s.
const SKEW: Duration = Duration::from_micros(609_375);
/// Slack on the VRRP bound: curl's own SYN retransmission (1 s) for a request started
/// just before the takeover, and polling.
const SLACK: Duration = Duration::from_secs(1);

/// Builds fulcrumd and fulcrum next to this test binary (`<target>/<profile>/`).
fn build_binaries() {
    integration::build::fulcrum_binaries().unwrap_or_else(|e| panic!("{e}"));
}

/// The fulcrumd configuration of director `i` (0 or 1).
fn director_config(i: usize, dir: &Path, cpu: usize, file_prefix: &str) -> String {
    let host = 11 + i;
    let priority = if i == 0 { 150 } else { 100 };
    let d = dir.display();
    let mut c = format!(
        r#"# director d{n} of seed 001 (LVS-NAT, VRRP pair)
[global]
router_id = "10.10.0.{host}"
control_socket = "{d}/control.sock"
metrics = "127.0.0.1:9477"
shutdown_drain_ms = 500

[dataplane]
mode = "dpdk"
eal = ["--no-huge", "-m", "256", "--no-pci", "--file-prefix", "{file_prefix}", "--lcores=0@{cpu},1@{cpu}", "--log-level", "lib.eal:warning"]
workers = 1
idle_sleep_us = 50

[[interface]]
name = "eth0"
device = "net_af_packet0,iface=dp-eth0"
addresses = ["10.10.0.{host}/24"]

[[interface]]
name = "eth1"
device = "net_af_packet1,iface=dp-eth1"
addresses = ["192.168.211.{host}/24"]

[[service]]
name = "web"
vip = "{VIP}"
port = 80
protocol = "tcp"
scheduler = "rr"
forward = "nat"
announce = "none"
quorum = 1
check = {{ type = "tcp", interval = "1s", timeout = "1s", retries = 1, retry_delay = "1s" }}
"#,
        n = i + 1
    );
    for rs in RS {
        c.push_str(&format!(
            "\n[[service.real_server]]\naddress = \"{rs}\"\nport = 80\n"
        ));
    }
    for (name, iface, vrid, vip) in [("VI_1", "eth0", 51, VIP), ("VI_2", "eth1", 61, GATEWAY)] {
        c.push_str(&format!(
            r#"
[[vrrp.instance]]
name = "{name}"
interface = "{iface}"
virtual_router_id = {vrid}
priority = {priority}
advert_int = "1s"
authentication = {{ type = "PASS", password = "123456" }}
virtual_ipaddress = ["{vip}"]
"#
        ));
    }
    c.push_str("\n[[vrrp.sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_2\"]\n");
    c
}

/// The states of the VRRP instances of a director, by name.
fn vrrp_states(f: &FulcrumNode) -> BTreeMap<String, String> {
    let Ok(text) = f.cli(&["vrrp", "--json"]) else {
        return BTreeMap::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap_or("").to_string(),
                        i["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all_in(f: &FulcrumNode, state: &str) -> bool {
    let s = vrrp_states(f);
    s.len() == 2 && s.values().all(|v| v == state)
}

/// The MAC of interface `ifname` in `node`.
fn mac_of(node: &integration::lab::Node, ifname: &str) -> String {
    let out = node
        .ip(&["-o", "link", "show", ifname])
        .unwrap_or_else(|e| panic!("{e}"));
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out:?}"))
        .to_string()
}

/// The MAC `node` holds for `ip` (empty when none).
fn neigh_mac(node: &integration::lab::Node, ip: &str) -> String {
    let out = node.ip(&["neigh", "show", ip]).unwrap_or_default();
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// Starts tcpdump on a bridge writing its ARP frames to `<name>.pcap`.
fn start_capture(sw: &Switch, name: &str) -> (Process, PathBuf) {
    let file = sw.node().dir().join(format!("{name}.pcap"));
    let p = sw
        .node()
        .spawn(&[
            "tcpdump",
            "-i",
            "br0",
            "-nn",
            "-U",
            "--immediate-mode",
            "-w",
            file.to_str().expect("utf-8"),
            "arp",
        ])
        .expect("tcpdump");
    let log = p.log_path().to_path_buf();
    wait_until(Duration::from_secs(10), "tcpdump listening", || {
        Ok(std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("listening on"))
    })
    .expect("tcpdump starts");
    (p, file)
}

/// Stops a capture and returns `tcpdump -nn -e -r` of it, one frame a line.
fn read_capture((p, file): (Process, PathBuf)) -> String {
    p.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    drop(p);
    let out = Command::new("tcpdump")
        .args(["-nn", "-e", "-r"])
        .arg(&file)
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The source MACs of the ARP replies for `ip` in a capture.
fn repliers(capture: &str, ip: &str) -> Vec<String> {
    let needle = format!("Reply {ip} is-at");
    capture
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

/// True when the capture holds a gratuitous ARP for `ip` from `mac`.
fn garp_from(capture: &str, ip: &str, mac: &str) -> bool {
    // `Request who-has IP (ff:ff:ff:ff:ff:ff) tell IP, length 46`
    let (who, tell) = (format!("who-has {ip} "), format!("tell {ip},"));
    capture
        .lines()
        .any(|l| l.contains(&who) && l.contains(&tell) && l.split_whitespace().nth(1) == Some(mac))
}

/// The failover figures of one drill.
struct Drill {
    failures: usize,
    total: usize,
    /// From the stop to the start of the first request after which all succeeded.
    recovered: Duration,
}

/// Runs `stop` while the client requests back to back; checks and returns the figures.
fn drill(
    what: &str,
    client: &integration::lab::Node,
    url: &str,
    bound: Duration,
    stop: impl FnOnce(),
) -> Drill {
    let cont = Continuous::start(client, url, Duration::from_millis(500));
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    stop();
    // Requests for well past the bound.
    std::thread::sleep(bound + SLACK + Duration::from_secs(2));
    let samples: Vec<Sample> = cont.stop();
    let before: Vec<&Sample> = samples.iter().filter(|s| s.end < t0).collect();
    assert!(
        before.len() > 5 && before.iter().all(|s| s.ok()),
        "{what}: requests before the stop failed: {:?}",
        before.iter().find(|s| !s.ok())
    );
    let late: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start >= t0 + bound + SLACK)
        .collect();
    assert!(late.len() > 5, "{what}: too few requests after the bound");
    let late_failures: Vec<&&Sample> = late.iter().filter(|s| !s.ok()).collect();
    assert!(
        late_failures.is_empty(),
        "{what}: {} of {} requests started more than {:?} after the stop failed: {:?}",
        late_failures.len(),
        late.len(),
        bound + SLACK,
        late_failures.first()
    );
    for s in samples.iter().filter(|s| s.ok()) {
        let e = s.echo.as_ref().expect("echo");
        assert_eq!(e.client, CLIENT, "{what}: NAT keeps the client address");
    }
    let last_failure = samples.iter().rposition(|s| !s.ok());
    let recovered = match last_failure {
        None => Duration::ZERO,
        Some(i) => samples
            .get(i + 1)
            .map(|s| s.start.saturating_duration_since(t0))
            .unwrap_or(Duration::MAX),
    };
    let failures = samples.iter().filter(|s| !s.ok()).count();
    eprintln!(
        "{what}: {failures} of {} requests failed; all succeed from {:.2?} after the stop \
         (bound {:.2?} + {:.1?} slack)",
        samples.len(),
        recovered,
        bound,
        SLACK
    );
    Drill {
        failures,
        total: samples.len(),
        recovered,
    }
}

#[test]
fn seed001_two_directors_lvs_nat_vrrp_failover() {
    build_binaries();
    let t_start = Instant::now();
    let bins = FulcrumBins::find().expect("binaries");
    let lab = Lab::new("fulcrum_vrrp_nat").expect("lab (needs root)");
    let cnet = lab.switch("cnet").expect("cnet");
    let snet = lab.switch("snet").expect("snet");
    let client = lab.node("client").expect("client");
    lab.attach(&client, "eth0", &cnet).expect("attach");
    client.addr("eth0", &format!("{CLIENT}/24")).expect("addr");
    client
        .exec_ok(&["ethtool", "-K", "eth0", "tx", "off", "tso", "off"])
        .expect("ethtool");
    let mut servers = Vec::new();
    for (i, rs) in RS.iter().enumerate() {
        let n = lab.node(&format!("rs{}", i + 1)).expect("rs");
        lab.attach(&n, "eth0", &snet).expect("attach");
        n.addr("eth0", &format!("{rs}/24")).expect("addr");
        n.route(&format!("default via {GATEWAY}")).expect("route");
        n.exec_ok(&["ethtool", "-K", "eth0", "tx", "off", "tso", "off"])
            .expect("ethtool");
        let ng = n
            .nginx(&NginxConfig::default().listen(rs, 80, false))
            .expect("nginx");
        servers.push((n, ng));
    }
    let cpus = allowed_cpus();
    let mut directors = Vec::new();
    for i in 0..2 {
        let d = lab.node(&format!("d{}", i + 1)).expect("director");
        lab.attach(&d, "dp-eth0", &cnet).expect("attach");
        lab.attach(&d, "dp-eth1", &snet).expect("attach");
        // The director's kernel speaks only through the twins.
        for (k, v) in [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.conf.all.rp_filter", "1"),
            ("net.ipv4.conf.dp-eth0.arp_ignore", "8"),
            ("net.ipv4.conf.dp-eth1.arp_ignore", "8"),
        ] {
            d.sysctl(k, v).expect("sysctl");
        }
        let cpu = cpus.get(i % cpus.len()).copied().unwrap_or(0);
        let text = director_config(i, &fulcrum_dir(&d), cpu, d.netns());
        let f = FulcrumNode::prepare(d, &bins, &text).expect("prepare");
        f.check_config().expect("fulcrumd --check");
        directors.push(f);
    }
    // d1 first: it is Master once its Master_Down_Interval passes.
    for f in directors.iter_mut() {
        f.start().expect("fulcrumd starts");
    }
    let up = t_start.elapsed();
    wait_until(Duration::from_secs(15), "d1 Master, d2 Backup", || {
        Ok(all_in(&directors[0], "MASTER") && all_in(&directors[1], "BACKUP"))
    })
    .expect("VRRP converges");
    eprintln!(
        "fulcrumd up in {up:.1?}, VRRP converged at {:.1?}",
        t_start.elapsed()
    );
    let url = format!("http://{VIP}/");
    // Health checks mark both servers up before the run.
    wait_until(Duration::from_secs(10), "the VIP answers", || {
        Ok(load::requests(&client, &url, 1, Duration::from_secs(1))?.ok == 1)
    })
    .expect("VIP answers");

    // Steady state: 1,000 requests through d1. The client and the servers forget the
    // VIP and the gateway first: their ARP requests reach both directors, and only the
    // Master may answer.
    let d1_mac0 = mac_of(directors[0].node(), "eth0");
    let d1_mac1 = mac_of(directors[0].node(), "eth1");
    let d2_mac0 = mac_of(directors[1].node(), "eth0");
    let d2_mac1 = mac_of(directors[1].node(), "eth1");
    let caps = (
        start_capture(&cnet, "steady-c"),
        start_capture(&snet, "steady-s"),
    );
    client
        .ip(&["neigh", "flush", "dev", "eth0"])
        .expect("flush");
    for (n, _) in &servers {
        n.ip(&["neigh", "flush", "dev", "eth0"]).expect("flush");
    }
    let t0 = Instant::now();
    let r = load::requests(&client, &url, N, Duration::from_secs(3)).expect("curl runs");
    eprintln!("{N} requests in {:.1?}", t0.elapsed());
    assert_eq!(
        (r.requests, r.ok, r.errors),
        (N, N, 0),
        "first error: {:?}",
        r.first_error
    );
    let expected: Vec<String> = RS.iter().map(|s| s.to_string()).collect();
    assert_spread(&r.servers, &expected, 0.05);
    assert_eq!(
        r.clients.keys().collect::<Vec<_>>(),
        vec![CLIENT],
        "nginx sees the client itself: {:?}",
        r.clients
    );
    let d1_stats = directors[0]
        .cli(&["services", "--stats", "--json"])
        .expect("stats");
    let d2_stats = directors[1]
        .cli(&["services", "--stats", "--json"])
        .expect("stats");
    let conns = |t: &str| -> u64 {
        let v: serde_json::Value = serde_json::from_str(t).unwrap_or_default();
        v["services"][0]["stats"]["conns"].as_u64().unwrap_or(0)
    };
    assert!(
        conns(&d1_stats) >= N as u64,
        "the Master carried the load: {d1_stats}"
    );
    assert_eq!(conns(&d2_stats), 0, "the Backup took nothing: {d2_stats}");
    assert_eq!(
        neigh_mac(&client, VIP),
        d1_mac0,
        "the client ARPs d1 for the VIP"
    );
    let (cap_c, cap_s) = (read_capture(caps.0), read_capture(caps.1));
    let vip_repliers = repliers(&cap_c, VIP);
    assert!(
        !vip_repliers.is_empty() && vip_repliers.iter().all(|m| *m == d1_mac0),
        "only the Master ({d1_mac0}) answers ARP for the VIP, not the Backup \
         ({d2_mac0}): {vip_repliers:?}\n{cap_c}"
    );
    let gw_repliers = repliers(&cap_s, GATEWAY);
    assert!(
        !gw_repliers.is_empty() && gw_repliers.iter().all(|m| *m == d1_mac1),
        "only the Master ({d1_mac1}) answers ARP for the gateway, not the Backup \
         ({d2_mac1}): {gw_repliers:?}\n{cap_s}"
    );

    // Drill 1: SIGTERM of the Master (priority-0 resignation).
    let bound = SKEW;
    let caps = (
        start_capture(&cnet, "term-c"),
        start_capture(&snet, "term-s"),
    );
    let term = drill("SIGTERM of d1", &client, &url, bound, || {
        directors[0].stop()
    });
    let (cap_c, cap_s) = (read_capture(caps.0), read_capture(caps.1));
    assert!(
        garp_from(&cap_c, VIP, &d2_mac0),
        "d2's GARP for the VIP:\n{cap_c}"
    );
    assert!(
        garp_from(&cap_s, GATEWAY, &d2_mac1),
        "d2's GARP for the gateway:\n{cap_s}"
    );
    wait_until(Duration::from_secs(2), "d2 Master of both", || {
        Ok(all_in(&directors[1], "MASTER"))
    })
    .expect("d2 takes over");
    assert_eq!(neigh_mac(&client, VIP), d2_mac0, "client follows the GARP");
    for (n, _) in &servers {
        assert_eq!(neigh_mac(n, GATEWAY), d2_mac1, "server follows the GARP");
    }

    // d1 comes back and preempts (priority 150).
    directors[0].start().expect("d1 restarts");
    wait_until(Duration::from_secs(15), "d1 Master again", || {
        Ok(all_in(&directors[0], "MASTER") && all_in(&directors[1], "BACKUP"))
    })
    .expect("d1 preempts");
    wait_until(
        Duration::from_secs(10),
        "the VIP answers through d1",
        || {
            Ok(
                load::requests(&client, &url, 1, Duration::from_secs(1))?.ok == 1
                    && neigh_mac(&client, VIP) == mac_of(directors[0].node(), "eth0"),
            )
        },
    )
    .expect("VIP answers through d1");

    // Drill 2: kill -9 of the Master (silence: Master_Down_Interval).
    let bound = 3 * ADVERT + SKEW;
    let caps = (
        start_capture(&cnet, "kill-c"),
        start_capture(&snet, "kill-s"),
    );
    let kill = drill("kill -9 of d1", &client, &url, bound, || {
        directors[0].kill()
    });
    let (cap_c, cap_s) = (read_capture(caps.0), read_capture(caps.1));
    assert!(
        garp_from(&cap_c, VIP, &d2_mac0),
        "d2's GARP for the VIP:\n{cap_c}"
    );
    assert!(
        garp_from(&cap_s, GATEWAY, &d2_mac1),
        "d2's GARP for the gateway:\n{cap_s}"
    );
    wait_until(Duration::from_secs(2), "d2 Master of both", || {
        Ok(all_in(&directors[1], "MASTER"))
    })
    .expect("d2 takes over");
    assert_eq!(neigh_mac(&client, VIP), d2_mac0, "client follows the GARP");
    for (n, _) in &servers {
        assert_eq!(neigh_mac(n, GATEWAY), d2_mac1, "server follows the GARP");
    }
    eprintln!(
        "summary: SIGTERM {}/{} failed, recovered after {:.2?}; kill -9 {}/{} failed, \
         recovered after {:.2?}; whole test {:.1?}",
        term.failures,
        term.total,
        term.recovered,
        kill.failures,
        kill.total,
        kill.recovered,
        t_start.elapsed()
    );
    directors[1].stop();
}
