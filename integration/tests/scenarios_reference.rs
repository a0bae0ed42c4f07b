//! The seed scenarios with the reference balancers (nftables DNAT, HAProxy) in place of
//! fulcrum: 1,000 sequential requests from the client namespace, zero errors, round-robin
//! spread over the two real servers, and the client address each delivery mode shows the
//! servers. Scenario `dr` is checked as a topology only (direct routing needs fulcrum).
//! Needs root; every test builds its own lab, removed also on failure.

use std::collections::BTreeMap;
use std::time::Duration;

use integration::lb::{self, LbKind};
use integration::load::{self, assert_spread};
use integration::scenario::{self, Running, Scenario};
use integration::Lab;

const REQUESTS: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(3);

fn up(name: &str, test: &str) -> (Scenario, Lab, Running) {
    let sc = scenario::by_name(name).expect("known scenario");
    let lab = Lab::new(test).expect("lab (needs root)");
    let run = scenario::build(&lab, &sc).expect("build");
    scenario::wait_converged(&lab, &sc, Duration::from_secs(30)).expect("converged");
    (sc, lab, run)
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

fn load(run: &Running, sc: &Scenario, n: usize) -> load::LoadReport {
    let client = run.node(&sc.service.client).expect("client");
    let r = load::requests(client, &sc.service.url(), n, TIMEOUT).expect("curl runs");
    assert_eq!(r.requests, n);
    assert_eq!(r.errors, 0, "first error: {:?}", r.first_error);
    assert_eq!(r.ok, n);
    r
}

#[test]
fn one_arm_fullnat_with_nftables() {
    let (sc, lab, run) = up("one", "scen_one_nft");
    lb::start(&lab, &sc, LbKind::NftDnat).expect("nft");
    let r = load(&run, &sc, REQUESTS);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    // SNAT: the servers see the balancer's local address, not the client.
    only(&r.clients, "192.168.7.185");
    let lb_node = run.node("lb").expect("lb");
    assert_eq!(
        lb::nft_connections(lb_node).expect("counter"),
        REQUESTS as u64
    );

    // A short wrk run through the balancer: the runner's parse works on real output.
    let client = run.node("client").expect("client");
    let w = load::wrk(client, &sc.service.url(), 10, Duration::from_secs(1)).expect("wrk");
    eprintln!(
        "wrk through nftables (one, 10 connections, 1 s): {:.0} req/s, p99 {:?}",
        w.requests_per_sec, w.p99
    );
    assert!(w.requests_per_sec > 0.0);
    assert_eq!(w.errors, 0);
}

#[test]
fn one_arm_with_haproxy_send_proxy_v2() {
    let (sc, lab, run) = up("one", "scen_one_hap");
    let started = lb::start(
        &lab,
        &sc,
        LbKind::Haproxy {
            send_proxy_v2: true,
        },
    )
    .expect("haproxy");
    assert_eq!(started.haproxy_pids.len(), 1);
    let r = load(&run, &sc, 200);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    // The TCP peer is HAProxy's source address; the PROXY header carries the client.
    only(&r.clients, "192.168.7.185");
    only(&r.proxies, "192.168.7.55");
}

#[test]
fn two_arm_ospf_ecmp_with_nftables_on_both_nodes() {
    let (sc, lab, run) = up("two", "scen_two_nft");
    let started = lb::start(&lab, &sc, LbKind::NftDnat).expect("nft");
    assert_eq!(started.nodes, vec!["lb-a".to_string(), "lb-b".to_string()]);
    let r = load(&run, &sc, REQUESTS);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    // Each node SNATs to its own local address; both nodes served.
    let mut seen: Vec<&str> = r.clients.keys().map(String::as_str).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        vec!["192.168.7.185", "192.168.7.195"],
        "{:?}",
        r.clients
    );
    let a = lb::nft_connections(run.node("lb-a").expect("lb-a")).expect("counter a");
    let b = lb::nft_connections(run.node("lb-b").expect("lb-b")).expect("counter b");
    eprintln!("ECMP split over the balancer nodes: lb-a {a}, lb-b {b}");
    assert!(a > 0 && b > 0, "lb-a {a}, lb-b {b}");
    assert_eq!(a + b, REQUESTS as u64);
    assert_eq!(r.clients.get("192.168.7.185").copied(), Some(a as usize));
}

#[test]
fn lvs_nat_with_nftables_preserves_the_client() {
    let (sc, lab, run) = up("nat", "scen_nat_nft");
    lb::start(&lab, &sc, LbKind::NftDnat).expect("nft");
    let r = load(&run, &sc, REQUESTS);
    assert_spread(&r.servers, &backends(&sc), 0.05);
    // DNAT only: the servers see the real client; replies return via their gateway.
    only(&r.clients, "10.10.0.100");
    assert_eq!(
        lb::nft_connections(run.node("lb").expect("lb")).expect("counter"),
        REQUESTS as u64
    );
}

fn mac(run: &Running, node: &str) -> String {
    run.node(node)
        .expect("node")
        .exec_ok(&["cat", "/sys/class/net/eth0/address"])
        .expect("mac")
        .trim()
        .to_string()
}

#[test]
fn lvs_dr_topology_answers_on_the_vip_and_suppresses_arp() {
    let (sc, lab, run) = up("dr", "scen_dr_topo");
    let vip = sc.service.vip.to_string();
    let err = lb::start(&lab, &sc, LbKind::NftDnat).expect_err("nft cannot do DR");
    assert!(err.to_string().contains("needs fulcrum"), "{err}");

    let client = run.node("client").expect("client");
    let url = sc.service.url();
    // What a DR balancer does: the client's frame for the VIP goes to a server's MAC; the
    // server accepts it on its lo VIP and answers the client directly.
    for rs in ["rs1", "rs2"] {
        let m = mac(&run, rs);
        client
            .ip(&[
                "neigh",
                "replace",
                &vip,
                "lladdr",
                &m,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ])
            .expect("pin neighbor");
        let body = client
            .exec_ok(&["curl", "-sS", "--max-time", "3", &url])
            .expect("curl the VIP on a server");
        assert_eq!(body.trim(), format!("rs={vip} client=192.168.150.50"));
        let log =
            std::fs::read_to_string(run.nginx.get(rs).expect("nginx").dir().join("access.log"))
                .expect("access log");
        assert!(log.contains("192.168.150.50"), "{rs} did not serve: {log}");
    }
    client
        .ip(&["neigh", "del", &vip, "dev", "eth0"])
        .expect("unpin");

    // ARP suppression: with the VIP gone from the director, nobody answers ARP for it.
    let lb_node = run.node("lb").expect("lb");
    lb_node
        .del_addr("eth0", &format!("{vip}/32"))
        .expect("del VIP");
    let ping = client
        .exec(&["ping", "-c", "1", "-W", "1", &vip])
        .expect("ping runs");
    assert!(!ping.status.success(), "a server answered for the VIP");
    let neigh = client.ip(&["neigh", "show", &vip]).expect("neigh");
    assert!(!neigh.contains("lladdr"), "the VIP resolved: {neigh}");

    // With the VIP back on the director, it resolves to the director's MAC only.
    lb_node
        .addr("eth0", &format!("{vip}/32"))
        .expect("re-add VIP");
    client
        .ip(&["neigh", "flush", "dev", "eth0"])
        .expect("flush");
    let ping = client
        .exec(&["ping", "-c", "1", "-W", "2", &vip])
        .expect("ping runs");
    assert!(ping.status.success(), "the director does not answer");
    let neigh = client.ip(&["neigh", "show", &vip]).expect("neigh");
    assert!(neigh.contains(&mac(&run, "lb")), "{neigh}");
}
