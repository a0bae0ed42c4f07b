//! OSPF self-tests of the harness against real FRR and BIRD daemons (needs root).

use std::net::Ipv4Addr;
use std::time::Duration;

use integration::{
    BirdOspfConfig, BirdOspfInterface, FrrConfig, Lab, Node, OspfAuth, OspfInterface,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn rid(s: &str) -> Ipv4Addr {
    s.parse().expect("router id")
}

/// A point-to-point FRR router config with fast timers on `ifaces`, advertising `networks`.
fn fast_frr(router_id: &str, ifaces: &[&str], networks: &[&str]) -> FrrConfig {
    let mut cfg = FrrConfig::new(rid(router_id));
    for i in ifaces {
        cfg = cfg.interface(OspfInterface::p2p(i).timers(1, 4));
    }
    for n in networks {
        cfg = cfg.network(n, "0");
    }
    cfg
}

fn p2p(lab: &Lab, a: &Node, a_if: &str, a_ip: &str, b: &Node, b_if: &str, b_ip: &str) {
    lab.link(a, a_if, b, b_if).expect("link");
    a.addr(a_if, a_ip).expect("addr a");
    b.addr(b_if, b_ip).expect("addr b");
}

#[test]
fn frr_pair_reaches_full_and_installs_loopback() {
    let lab = Lab::new("frr_pair").expect("lab (needs root)");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    p2p(&lab, &r1, "eth0", "10.0.0.1/30", &r2, "eth0", "10.0.0.2/30");
    r2.addr("lo", "2.2.2.2/32").expect("lo");
    let f1 = r1
        .frr(&fast_frr("1.1.1.1", &["eth0"], &["10.0.0.0/30"]))
        .expect("frr r1");
    let f2 = r2
        .frr(&fast_frr(
            "2.2.2.2",
            &["eth0"],
            &["10.0.0.0/30", "2.2.2.2/32"],
        ))
        .expect("frr r2");
    f1.wait_neighbor_full("2.2.2.2", DEADLINE)
        .expect("r1 sees r2 Full");
    f2.wait_neighbor_full("1.1.1.1", DEADLINE)
        .expect("r2 sees r1 Full");
    let route = r1.wait_route("2.2.2.2/32", 1, DEADLINE).expect("route");
    assert_eq!(route.protocol.as_deref(), Some("ospf"));
    assert_eq!(route.gateways(), vec!["10.0.0.2"]);
    // The route is usable: r1 reaches r2's loopback through it.
    let ping = r1
        .exec(&["ping", "-c", "1", "-W", "2", "2.2.2.2"])
        .expect("ping runs");
    assert!(ping.status.success(), "ping 2.2.2.2 from r1 failed");
    // vtysh JSON passes through: r1's OSPF RIB knows the /32.
    let rib = f1
        .vtysh(&["show ip ospf route json"])
        .expect("ospf route json");
    assert!(rib.get("2.2.2.2/32").is_some(), "ospf rib: {rib}");
    // Withdrawing the loopback removes the kernel route (the harness sees changes).
    r2.del_addr("lo", "2.2.2.2/32").expect("del lo");
    r1.wait_no_route("2.2.2.2/32", DEADLINE)
        .expect("route withdrawn");
}

#[test]
fn frr_ecmp_two_nexthops() {
    let lab = Lab::new("frr_ecmp").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    p2p(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    p2p(&lab, &r, "r-b", "10.0.2.1/30", &b, "eth0", "10.0.2.2/30");
    // Both neighbors announce the same /32 (an anycast VIP).
    a.addr("lo", "100.96.122.210/32").expect("vip a");
    b.addr("lo", "100.96.122.210/32").expect("vip b");
    let fr = r
        .frr(&fast_frr("10.0.0.1", &["r-a", "r-b"], &["10.0.0.0/16"]))
        .expect("frr r");
    a.frr(&fast_frr(
        "10.0.0.2",
        &["eth0"],
        &["10.0.1.0/30", "100.96.122.210/32"],
    ))
    .expect("frr a");
    b.frr(&fast_frr(
        "10.0.0.3",
        &["eth0"],
        &["10.0.2.0/30", "100.96.122.210/32"],
    ))
    .expect("frr b");
    fr.wait_neighbor_full("10.0.0.2", DEADLINE).expect("full a");
    fr.wait_neighbor_full("10.0.0.3", DEADLINE).expect("full b");
    let route = r
        .wait_route("100.96.122.210/32", 2, DEADLINE)
        .expect("two-nexthop route");
    let mut gws = route.gateways();
    gws.sort_unstable();
    assert_eq!(gws, vec!["10.0.1.2", "10.0.2.2"]);
    let mut devs: Vec<&str> = route
        .nexthops
        .iter()
        .filter_map(|n| n.dev.as_deref())
        .collect();
    devs.sort_unstable();
    assert_eq!(devs, vec!["r-a", "r-b"]);
    // Losing one speaker shrinks the set to one next hop.
    b.del_addr("lo", "100.96.122.210/32").expect("withdraw b");
    let one = r
        .wait_route("100.96.122.210/32", 1, DEADLINE)
        .expect("one nexthop left");
    assert_eq!(one.gateways(), vec!["10.0.1.2"]);
}

#[test]
fn frr_and_bird_exchange_loopbacks_with_md5() {
    let lab = Lab::new("frr_bird").expect("lab (needs root)");
    let f = lab.router("f").expect("f");
    let b = lab.router("b").expect("b");
    p2p(&lab, &f, "eth0", "10.0.3.1/30", &b, "eth0", "10.0.3.2/30");
    f.addr("lo", "1.1.1.1/32").expect("lo f");
    b.addr("lo", "3.3.3.3/32").expect("lo b");
    let md5 = OspfAuth::Md5 {
        key_id: 1,
        key: "flabkey".into(),
    };
    let frr = f
        .frr(
            &FrrConfig::new(rid("1.1.1.1"))
                .interface(OspfInterface::p2p("eth0").timers(1, 4).auth(md5.clone()))
                .network("10.0.3.0/30", "0")
                .network("1.1.1.1/32", "0"),
        )
        .expect("frr");
    let bird = b
        .bird_ospf(
            &BirdOspfConfig::new(rid("3.3.3.3"))
                .interface(BirdOspfInterface::p2p("eth0").timers(1, 4).auth(md5))
                .interface(BirdOspfInterface::stub("lo", "3.3.3.3/32")),
        )
        .expect("bird");
    frr.wait_neighbor_full("3.3.3.3", DEADLINE)
        .expect("FRR sees BIRD Full");
    bird.wait_neighbor_full("1.1.1.1", DEADLINE)
        .expect("BIRD sees FRR Full");
    let learned_by_frr = f
        .wait_route("3.3.3.3/32", 1, DEADLINE)
        .expect("FRR learns BIRD's /32");
    assert_eq!(learned_by_frr.protocol.as_deref(), Some("ospf"));
    assert_eq!(learned_by_frr.gateways(), vec!["10.0.3.2"]);
    let learned_by_bird = b
        .wait_route("1.1.1.1/32", 1, DEADLINE)
        .expect("BIRD learns FRR's /32");
    assert_eq!(learned_by_bird.protocol.as_deref(), Some("bird"));
    assert_eq!(learned_by_bird.gateways(), vec!["10.0.3.1"]);
    let ping = b
        .exec(&["ping", "-c", "1", "-W", "2", "-I", "3.3.3.3", "1.1.1.1"])
        .expect("ping runs");
    assert!(ping.status.success(), "loopback-to-loopback ping failed");
}

#[test]
fn mismatched_md5_keys_never_reach_full() {
    let lab = Lab::new("frr_badkey").expect("lab (needs root)");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    p2p(&lab, &r1, "eth0", "10.0.4.1/30", &r2, "eth0", "10.0.4.2/30");
    let cfg = |id: &str, key: &str| {
        FrrConfig::new(rid(id))
            .interface(OspfInterface::p2p("eth0").timers(1, 4).auth(OspfAuth::Md5 {
                key_id: 1,
                key: key.into(),
            }))
            .network("10.0.4.0/30", "0")
    };
    let f1 = r1.frr(&cfg("1.1.1.1", "right")).expect("frr r1");
    r2.frr(&cfg("2.2.2.2", "wrong")).expect("frr r2");
    // Hello 1 s: three seconds is plenty for a matching pair to reach Full.
    let err = f1
        .wait_neighbor_full("2.2.2.2", Duration::from_secs(3))
        .expect_err("keys differ");
    let text = err.to_string();
    assert!(text.contains("Full with 2.2.2.2"), "{text}");
    assert!(text.contains("last observed"), "{text}");
}

#[test]
fn frr_bfd_session_comes_up() {
    let lab = Lab::new("frr_bfd").expect("lab (needs root)");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    p2p(&lab, &r1, "eth0", "10.0.5.1/30", &r2, "eth0", "10.0.5.2/30");
    // Interface-level areas (`ip ospf area`) instead of `network` statements.
    let cfg = |id: &str| {
        FrrConfig::new(rid(id)).interface(OspfInterface::p2p("eth0").timers(1, 4).area("0").bfd())
    };
    let f1 = r1.frr(&cfg("1.1.1.1")).expect("frr r1");
    let f2 = r2.frr(&cfg("2.2.2.2")).expect("frr r2");
    f1.wait_neighbor_full("2.2.2.2", DEADLINE).expect("full");
    f1.wait_bfd_up("10.0.5.2", DEADLINE).expect("bfd up at r1");
    f2.wait_bfd_up("10.0.5.1", DEADLINE).expect("bfd up at r2");
}

#[test]
fn frozen_or_killed_neighbor_is_declared_dead() {
    let lab = Lab::new("frr_freeze").expect("lab (needs root)");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    let r3 = lab.router("r3").expect("r3");
    p2p(&lab, &r1, "eth0", "10.0.6.1/30", &r2, "eth0", "10.0.6.2/30");
    p2p(&lab, &r1, "eth1", "10.0.7.1/30", &r3, "eth0", "10.0.7.2/30");
    r2.addr("lo", "2.2.2.2/32").expect("lo");
    r3.addr("lo", "3.3.3.3/32").expect("lo");
    let f1 = r1
        .frr(&fast_frr("1.1.1.1", &["eth0", "eth1"], &["10.0.0.0/16"]))
        .expect("frr r1");
    r2.frr(&fast_frr(
        "2.2.2.2",
        &["eth0"],
        &["10.0.6.0/30", "2.2.2.2/32"],
    ))
    .expect("frr r2");
    let f3 = r3
        .frr(&fast_frr(
            "3.3.3.3",
            &["eth0"],
            &["10.0.7.0/30", "3.3.3.3/32"],
        ))
        .expect("frr r3");
    r1.wait_route("2.2.2.2/32", 1, DEADLINE)
        .expect("r2 loopback");
    r1.wait_route("3.3.3.3/32", 1, DEADLINE)
        .expect("r3 loopback");

    // A frozen node still runs ospfd but is silent: r1 drops it after the dead interval.
    r2.freeze().expect("freeze");
    r1.wait_no_route("2.2.2.2/32", Duration::from_secs(10))
        .expect("frozen neighbor's route withdrawn");
    let n = f1.neighbors().expect("neighbors");
    assert!(
        !n.iter().any(|n| n.router_id == "2.2.2.2" && n.is_full()),
        "{n:?}"
    );
    r2.thaw().expect("thaw");
    r1.wait_route("2.2.2.2/32", 1, DEADLINE)
        .expect("route back after thaw");

    // SIGKILL leaves no time to flush LSAs; r1 still converges after the dead interval.
    let killed = f3.pid("ospfd").expect("ospfd pid");
    f3.signal("ospfd", nix::sys::signal::Signal::SIGKILL)
        .expect("kill ospfd");
    r1.wait_no_route("3.3.3.3/32", Duration::from_secs(10))
        .expect("killed neighbor's route withdrawn");
    // Teardown also removes what the killed ospfd could not (its /var/tmp/frr buffer).
    let buffers = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/var/tmp/frr")
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join(format!("logbuf.{killed}")).exists())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(buffers().len(), 1, "killed ospfd left no buffer to clean");
    drop(lab);
    assert!(buffers().is_empty(), "left behind: {:?}", buffers());
}

#[test]
fn bird_pair_with_hmac_sha256() {
    let lab = Lab::new("bird_hmac").expect("lab (needs root)");
    let b1 = lab.router("b1").expect("b1");
    let b2 = lab.router("b2").expect("b2");
    p2p(&lab, &b1, "eth0", "10.0.8.1/30", &b2, "eth0", "10.0.8.2/30");
    b2.addr("lo", "4.4.4.4/32").expect("lo");
    let auth = OspfAuth::HmacSha256 {
        key_id: 5,
        key: "flab-sha-key".into(),
    };
    let cfg = |id: &str| {
        BirdOspfConfig::new(rid(id)).interface(
            BirdOspfInterface::p2p("eth0")
                .timers(1, 4)
                .auth(auth.clone()),
        )
    };
    let bird1 = b1.bird_ospf(&cfg("4.4.4.3")).expect("bird b1");
    b2.bird_ospf(&cfg("4.4.4.4").interface(BirdOspfInterface::stub("lo", "4.4.4.4/32")))
        .expect("bird b2");
    bird1
        .wait_neighbor_full("4.4.4.4", DEADLINE)
        .expect("Full with HMAC-SHA-256");
    let route = b1.wait_route("4.4.4.4/32", 1, DEADLINE).expect("route");
    assert_eq!(route.protocol.as_deref(), Some("bird"));
    assert_eq!(route.gateways(), vec!["10.0.8.2"]);
}
