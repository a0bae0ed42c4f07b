//! The seed scenarios with fulcrumd (`dpdk` mode) as the balancer.
//!
//! Needs root (fails without it). Each test builds its own lab, starts fulcrumd in the
//! balancer nodes ([`LbKind::Fulcrum`]) and removes everything on drop, also on failure.
//! fulcrumd is built first with `cargo build -p appliance --bins` into this test's
//! target directory and profile.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use integration::lb::{self, LbKind, RunningLb};
use integration::load::{self, assert_spread};
use integration::scenario::{self, Running, Scenario};
use integration::Lab;

const REQUESTS: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(3);

/// Builds fulcrumd and fulcrum next to this test binary (`<target>/<profile>/`).
fn build_binaries() {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .env("CARGO_TARGET_DIR", &target_dir)
        .args(["build", "-q", "-p", "appliance", "--bins"]);
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build -p appliance --bins failed");
}

fn up(name: &str, test: &str) -> (Scenario, Lab, Running, RunningLb) {
    build_binaries();
    let t0 = Instant::now();
    let sc = scenario::by_name(name).expect("known scenario");
    let lab = Lab::new(test).expect("lab (needs root)");
    let run = scenario::build_for(&lab, &sc, LbKind::Fulcrum).expect("build");
    let built = t0.elapsed();
    let lbs = lb::start(&lab, &sc, LbKind::Fulcrum).expect("fulcrumd starts");
    let started = t0.elapsed();
    scenario::wait_converged(&lab, &sc, Duration::from_secs(60)).expect("converged");
    eprintln!(
        "{name}: topology {built:.1?}, fulcrumd up {started:.1?}, converged {:.1?}",
        t0.elapsed()
    );
    (sc, lab, run, lbs)
}

fn backends(sc: &Scenario) -> Vec<String> {
    sc.service
        .backends
        .iter()
        .map(|b| b.addr.to_string())
        .collect()
}

fn only(map: &BTreeMap<String, usize>, key: &str) {
    assert_eq!(
        map.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![key],
        "{map:?}"
    );
}

fn load(run: &Running, sc: &Scenario, n: usize, lbs: &RunningLb) -> load::LoadReport {
    let client = run.node(&sc.service.client).expect("client");
    let t0 = Instant::now();
    let r = load::requests(client, &sc.service.url(), n, TIMEOUT).expect("curl runs");
    eprintln!("{}: {n} requests in {:.1?}", sc.name, t0.elapsed());
    let logs: Vec<String> = lbs.fulcrum.iter().map(|f| f.log()).collect();
    assert_eq!(r.requests, n);
    assert_eq!(
        r.errors,
        0,
        "first error: {:?}\nfulcrumd logs:\n{}",
        r.first_error,
        logs.join("\n----\n")
    );
    assert_eq!(r.ok, n);
    r
}

#[test]
fn one_arm_fullnat_with_proxy_v2() {
    let (sc, _lab, run, lbs) = up("one", "fscen_one");
    let r = load(&run, &sc, REQUESTS, &lbs);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    only(&r.clients, "192.168.7.185");
    only(&r.proxies, "192.168.7.55");
}

#[test]
fn lvs_nat_preserves_the_client() {
    let (sc, _lab, run, lbs) = up("nat", "fscen_nat");
    let r = load(&run, &sc, REQUESTS, &lbs);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    // Destination rewritten only: the servers see the client; replies pass the director.
    only(&r.clients, "10.10.0.100");
}

/// Requests from `client` in each real server's nginx access log.
fn served_from_logs(run: &Running, sc: &Scenario, client: &str) -> BTreeMap<String, usize> {
    sc.service
        .backends
        .iter()
        .map(|b| {
            let dir = run.nginx.get(&b.node).expect("nginx").dir().to_path_buf();
            let log = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
            let n = log
                .lines()
                .filter(|l| l.starts_with(&format!("{client} ")) && l.contains("\" 200 "))
                .count();
            (b.addr.to_string(), n)
        })
        .collect()
}

#[test]
fn lvs_dr_preserves_the_client_and_bypasses_the_balancer_on_the_way_back() {
    let (sc, _lab, run, lbs) = up("dr", "fscen_dr");
    let r = load(&run, &sc, REQUESTS, &lbs);
    // Direct routing: the servers answer from the VIP (held on lo) to the client itself;
    // which server answered is in their access logs.
    only(&r.servers, "192.168.150.100");
    only(&r.clients, "192.168.150.50");
    let served = served_from_logs(&run, &sc, "192.168.150.50");
    assert_eq!(served.values().sum::<usize>(), REQUESTS, "{served:?}");
    assert_spread(&served, &backends(&sc), 0.05);
    // The replies bypassed the balancer: it saw the client's packets only.
    let stats = lbs.fulcrum[0]
        .cli(&["services", "--stats", "--json"])
        .expect("services");
    let v: serde_json::Value = serde_json::from_str(&stats).expect("json");
    let s = &v["services"][0]["stats"];
    eprintln!("dr: balancer counters {s}");
    assert!(s["conns"].as_u64().unwrap_or(0) >= REQUESTS as u64, "{s}");
    assert!(
        s["in_packets"].as_u64().unwrap_or(0) >= 3 * REQUESTS as u64,
        "{s}"
    );
    assert_eq!(s["out_packets"].as_u64(), Some(0), "{s}");
}
