//! Every example in `configs/` loads, validates and says what its scenario needs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use appliance::config::{AnnounceMethod, Config, DataplaneMode, Forward, OspfNetwork};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn load(name: &str) -> Config {
    let path = configs_dir().join(name);
    Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn every_toml_in_configs_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(configs_dir()).expect("configs dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "expected the four scenario configs, found {n}");
}

#[test]
fn scenario_one() {
    let c = load("scenario-one.toml");
    assert_eq!(c.dataplane.mode, DataplaneMode::Dpdk);
    assert!(c.ospf.is_none());
    assert_eq!(c.route.len(), 3);
    let s = &c.service[0];
    assert_eq!(
        (s.vip, s.port, s.forward),
        (ip("192.168.7.182"), 80, Forward::Fnat)
    );
    assert_eq!(s.local_addresses, [ip("192.168.7.185")]);
    assert_eq!(s.announce, AnnounceMethod::Arp);
    assert_eq!(s.real_server[0].weight, 100);
}

#[test]
fn scenario_two() {
    let c = load("scenario-two.toml");
    let ospf = c.ospf.as_ref().expect("ospf");
    assert_eq!(ospf.interface[0].name, "dpdk1");
    assert_eq!(ospf.interface[0].network, OspfNetwork::Broadcast);
    assert_eq!(ospf.stub_router_on_startup, Some(Duration::from_secs(30)));
    assert_eq!(c.service.len(), 2);
    let ext = c
        .service
        .iter()
        .find(|s| s.name == "web-external")
        .expect("external");
    assert_eq!(ext.vip, ip("100.96.122.210"));
    assert_eq!(ext.announce, AnnounceMethod::Ospf);
    assert_eq!(ext.local_addresses, [ip("192.168.7.188")]);
    assert_eq!(
        c.vip_policy(ip("100.96.122.210")).hold_time,
        Duration::from_secs(2)
    );
}

#[test]
fn lvs_nat() {
    let c = load("lvs-nat.toml");
    let s = &c.service[0];
    assert_eq!(s.forward, Forward::Nat);
    let ports: Vec<u16> = s.real_server.iter().map(|r| s.real_port(r)).collect();
    assert_eq!(ports, [8081, 8082, 8083]);
    assert_eq!(
        s.check.as_ref().expect("check").interval,
        Duration::from_secs(6)
    );
}

#[test]
fn lvs_dr() {
    let c = load("lvs-dr.toml");
    let s = &c.service[0];
    assert_eq!(s.forward, Forward::Dr);
    assert_eq!(s.persistence_timeout, Some(Duration::from_secs(7200)));
    assert!(s.real_server.iter().all(|r| s.real_port(r) == 80));
    assert_eq!(c.timeouts.tcpfin, Duration::from_secs(120));
}
