//! Simulation tests: several instances on an in-memory network, in simulated time.

mod common;

use common::{ip, secs, Net, Port};
use ospf::auth::AuthKey;
use ospf::instance::{InterfaceState, NeighborState};
use ospf::lsa::{LsaType, INITIAL_SEQ, MAX_SEQ};
use ospf::packet::{Body, Packet, Repr};
use ospf::{
    DropReason, Event, ExternalSpec, Instance, InstanceConfig, InterfaceConfig, Ipv4Net,
    NetworkType, PathType,
};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

fn fast(mut c: InterfaceConfig) -> InterfaceConfig {
    c.hello_interval = secs(1);
    c.dead_interval = secs(4);
    c.retransmit_interval = secs(2);
    c
}

fn lan_if(addr: &str) -> InterfaceConfig {
    fast(InterfaceConfig::new(1, "eth0", ip(addr), 24))
}

fn p2p_if(ifindex: u32, addr: &str) -> InterfaceConfig {
    let mut c = fast(InterfaceConfig::new(
        ifindex,
        &format!("p{ifindex}"),
        ip(addr),
        30,
    ));
    c.network = NetworkType::PointToPoint;
    c
}

fn cfg(rid: &str, ifs: Vec<InterfaceConfig>) -> InstanceConfig {
    let mut c = InstanceConfig::new(ip(rid));
    c.interfaces = ifs;
    c.min_ls_interval = Duration::ZERO;
    c
}

fn net(s: &str) -> Ipv4Net {
    let (a, l) = s.split_once('/').unwrap();
    Ipv4Net::new(ip(a), l.parse().unwrap()).unwrap()
}

fn state_of(n: &Net, node: usize, nbr: &str) -> Option<NeighborState> {
    n.nodes[node]
        .neighbors(n.now)
        .iter()
        .find(|x| x.router_id == ip(nbr))
        .map(|x| x.state)
}

/// Four routers on one LAN: priorities 1, 1, 2, 0.
fn lan4(seed: u64) -> Net {
    let mut n = Net::new(seed);
    let prios = [1u8, 1, 2, 0];
    let mut ports = Vec::new();
    for (k, p) in prios.iter().enumerate() {
        let addr = format!("10.0.0.{}", k + 1);
        let mut i = lan_if(&addr);
        i.priority = *p;
        let rid = format!("{0}.{0}.{0}.{0}", k + 1);
        let node = n.add(Instance::new(cfg(&rid, vec![i]), n.now));
        ports.push(Port {
            node,
            ifindex: 1,
            addr: ip(&addr),
        });
    }
    n.connect(ports);
    n.start();
    n
}

fn iface_state(n: &Net, node: usize) -> (InterfaceState, Ipv4Addr, Ipv4Addr) {
    let i = &n.nodes[node].interfaces()[0];
    (i.state, i.dr, i.bdr)
}

#[test]
fn dr_bdr_election_priority_zero_and_dr_failure() {
    let mut n = lan4(1);
    n.run_for(secs(10));
    // highest priority is DR (R3), then the highest router ID among the rest is BDR (R2);
    // R4 has priority 0 and never takes a role
    for k in 0..4 {
        let (_, dr, bdr) = iface_state(&n, k);
        assert_eq!((dr, bdr), (ip("10.0.0.3"), ip("10.0.0.2")), "node {k}");
    }
    assert_eq!(iface_state(&n, 2).0, InterfaceState::Dr);
    assert_eq!(iface_state(&n, 1).0, InterfaceState::Backup);
    assert_eq!(iface_state(&n, 0).0, InterfaceState::DrOther);
    assert_eq!(iface_state(&n, 3).0, InterfaceState::DrOther);
    // DROthers are Full with DR and BDR, 2-Way with each other
    assert_eq!(state_of(&n, 0, "3.3.3.3"), Some(NeighborState::Full));
    assert_eq!(state_of(&n, 0, "2.2.2.2"), Some(NeighborState::Full));
    assert_eq!(state_of(&n, 0, "4.4.4.4"), Some(NeighborState::TwoWay));
    assert_eq!(state_of(&n, 3, "1.1.1.1"), Some(NeighborState::TwoWay));
    // one network-LSA from the DR listing all four routers, identical databases
    let fp0 = n.lsdb_fp(0);
    assert_eq!(
        fp0.iter()
            .filter(|l| l.starts_with("Network 10.0.0.3 3.3.3.3"))
            .count(),
        1
    );
    assert_eq!(fp0.len(), 5);
    for k in 1..4 {
        assert_eq!(n.lsdb_fp(k), fp0);
    }
    // routes: 10.0.0.0/24 is connected on every router
    assert!(n.nodes[0].routes()[&net("10.0.0.0/24")]
        .nexthops
        .contains(&(1, Ipv4Addr::UNSPECIFIED)));

    // a DROther announces a VIP: it floods to AllDRouters, the DR refloods to everyone
    let vip = net("100.96.122.210/32");
    n.run_for(secs(6));
    let t0 = n.now;
    n.with(3, |x, now| x.announce(now, vip, 0, None));
    let all = n
        .run_until_pred(secs(5), |n| {
            (0..3).all(|k| n.nodes[k].routes().contains_key(&vip))
        })
        .expect("VIP reached every router");
    assert!(all - t0 < Duration::from_millis(20), "{:?}", all - t0);
    assert_eq!(
        n.nodes[0].routes()[&vip].nexthops,
        [(1, ip("10.0.0.4"))].into()
    );

    // the DR fails silently: after the dead interval the BDR takes over and R1 becomes BDR
    n.kill(2);
    n.run_for(secs(10));
    for k in [0, 1, 3] {
        let (_, dr, bdr) = iface_state(&n, k);
        assert_eq!((dr, bdr), (ip("10.0.0.2"), ip("10.0.0.1")), "node {k}");
    }
    assert_eq!(state_of(&n, 3, "2.2.2.2"), Some(NeighborState::Full));
    assert_eq!(state_of(&n, 3, "1.1.1.1"), Some(NeighborState::Full));
    assert_eq!(state_of(&n, 0, "3.3.3.3"), None);
    // the new DR originated its network-LSA
    let fp = n.lsdb_fp(0);
    assert!(fp
        .iter()
        .any(|l| l.starts_with("Network 10.0.0.2 2.2.2.2") && l.ends_with("false")));
    assert_eq!(n.lsdb_fp(3), fp);
}

/// Two routers on a point-to-point link, each with many external LSAs so that the
/// database exchange takes several DD packets.
fn pair(seed: u64, auth: AuthKey) -> Net {
    let mut n = Net::new(seed);
    let mut a = p2p_if(1, "10.9.0.1");
    a.auth = auth.clone();
    let mut b = p2p_if(1, "10.9.0.2");
    b.auth = auth;
    let na = n.add(Instance::new(cfg("1.1.1.1", vec![a]), n.now));
    let nb = n.add(Instance::new(cfg("2.2.2.2", vec![b]), n.now));
    n.connect(vec![
        Port {
            node: na,
            ifindex: 1,
            addr: ip("10.9.0.1"),
        },
        Port {
            node: nb,
            ifindex: 1,
            addr: ip("10.9.0.2"),
        },
    ]);
    n
}

fn ext(metric: u32) -> Option<ExternalSpec> {
    Some(ExternalSpec {
        type2: true,
        metric,
        tag: 0,
        forwarding: Ipv4Addr::UNSPECIFIED,
    })
}

#[test]
fn dd_exchange_both_roles_with_loss() {
    for seed in [3u64, 4, 5] {
        let mut n = pair(seed, AuthKey::Null);
        for k in 0..150u32 {
            let a = Ipv4Addr::from(0xc612_0000 + k);
            let b = Ipv4Addr::from(0xc613_0000 + k);
            n.with(0, |i, now| {
                i.announce(now, Ipv4Net::new(a, 32).unwrap(), 0, ext(10))
            });
            n.with(1, |i, now| {
                i.announce(now, Ipv4Net::new(b, 32).unwrap(), 0, ext(10))
            });
        }
        n.loss = 0.15;
        n.jitter = Duration::from_millis(5);
        n.start();
        let full = n.run_until_pred(secs(300), |n| {
            state_of(n, 0, "2.2.2.2") == Some(NeighborState::Full)
                && state_of(n, 1, "1.1.1.1") == Some(NeighborState::Full)
        });
        assert!(full.is_some(), "seed {seed}: no adjacency");
        // the exchange finished under loss; let flooding settle without loss
        n.loss = 0.0;
        n.run_for(secs(10));
        let (a, b) = (n.lsdb_fp(0), n.lsdb_fp(1));
        let only_a: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
        let only_b: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
        assert!(
            only_a.is_empty() && only_b.is_empty(),
            "seed {seed}: {only_a:?} {only_b:?}"
        );
        assert_eq!(a.len(), 302);
        // each learned the other's 150 externals
        let r = n.nodes[0].routes();
        assert_eq!(
            r.values()
                .filter(|r| r.path_type == PathType::External2)
                .count(),
            150
        );
    }
}

#[test]
fn dd_exchange_first_packets_lost_both_roles() {
    // drop the first three DD packets sent by each side: the master retransmits, the
    // slave answers duplicates with its last packet
    let mut n = pair(9, AuthKey::Null);
    for k in 0..80u32 {
        let a = Ipv4Addr::from(0xc612_0000 + k);
        n.with(0, |i, now| {
            i.announce(now, Ipv4Net::new(a, 32).unwrap(), 0, ext(10))
        });
        let b = Ipv4Addr::from(0xc613_0000 + k);
        n.with(1, |i, now| {
            i.announce(now, Ipv4Net::new(b, 32).unwrap(), 0, ext(10))
        });
    }
    let mut dropped = [0u32; 2];
    n.filter = Some(Box::new(move |s| {
        let p = Packet::new_checked(&s.bytes[..]).unwrap();
        if p.packet_type() == 2 && dropped[s.from] < 3 {
            dropped[s.from] += 1;
            return false;
        }
        true
    }));
    n.start();
    assert!(n
        .run_until_pred(secs(60), |n| state_of(n, 0, "2.2.2.2")
            == Some(NeighborState::Full)
            && state_of(n, 1, "1.1.1.1") == Some(NeighborState::Full))
        .is_some());
    n.run_for(secs(5));
    assert_eq!(n.lsdb_fp(0), n.lsdb_fp(1));
    assert_eq!(n.lsdb_fp(0).len(), 162);
}

/// A mesh of `k` routers: a ring plus chords, p2p /30 links, loopback /32 announced.
fn mesh(k: usize, seed: u64) -> Net {
    let mut n = Net::new(seed);
    let mut links: Vec<(usize, usize)> = (0..k).map(|i| (i, (i + 1) % k)).collect();
    for i in 0..k {
        let j = (i * 7 + 3) % k;
        if j != i
            && !links
                .iter()
                .any(|&(a, b)| (a, b) == (i, j) || (a, b) == (j, i))
        {
            links.push((i, j));
        }
    }
    let mut ifs: Vec<Vec<InterfaceConfig>> = vec![Vec::new(); k];
    let mut ports = Vec::new();
    for (li, &(a, b)) in links.iter().enumerate() {
        let base = 0x0a64_0000u32 + (li as u32) * 4;
        let (aa, ba) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        let ia = ifs[a].len() as u32 + 1;
        let ib = ifs[b].len() as u32 + 1;
        ifs[a].push(p2p_if(ia, &aa.to_string()));
        ifs[b].push(p2p_if(ib, &ba.to_string()));
        ports.push(vec![
            Port {
                node: a,
                ifindex: ia,
                addr: aa,
            },
            Port {
                node: b,
                ifindex: ib,
                addr: ba,
            },
        ]);
    }
    for (i, f) in ifs.into_iter().enumerate() {
        let rid = Ipv4Addr::from(0x0101_0100 + i as u32 + 1);
        let mut c = cfg(&rid.to_string(), f);
        c.min_ls_interval = secs(5);
        n.add(Instance::new(c, n.now));
    }
    for p in ports {
        n.connect(p);
    }
    for i in 0..k {
        let lo = Ipv4Addr::from(0xc000_0200 + i as u32 + 1);
        n.with(i, |x, now| {
            x.announce(now, Ipv4Net::new(lo, 32).unwrap(), 0, None)
        });
    }
    n.start();
    n
}

#[test]
fn flooding_20_router_mesh_converges_and_vip_reaches_everyone() {
    let mut n = mesh(20, 11);
    n.jitter = Duration::from_millis(3);
    n.run_for(secs(30));
    let fp0 = n.lsdb_fp(0);
    assert_eq!(fp0.iter().filter(|l| l.starts_with("Router")).count(), 20);
    for k in 1..20 {
        assert_eq!(n.lsdb_fp(k), fp0, "router {k} differs");
    }
    for k in 0..20 {
        let r = n.nodes[k].routes();
        for j in 0..20 {
            let lo = Ipv4Net::new(Ipv4Addr::from(0xc000_0200 + j as u32 + 1), 32).unwrap();
            let route = r.get(&lo).unwrap_or_else(|| panic!("{k} lacks {lo}"));
            assert_eq!(route.nexthops.is_empty(), j == k);
        }
    }
    // announce a VIP on router 7: it reaches every route table; then withdraw it
    let vip = net("100.96.122.210/32");
    let t0 = n.now + secs(6); // past MinLSInterval of the last origination
    n.run_until(t0);
    let (full_before, partial_before) = n.nodes[3].spf_runs();
    assert!(full_before > 0, "the mesh was built by full SPF runs");
    n.with(7, |x, now| x.announce(now, vip, 0, None));
    let reached = n
        .run_until_pred(secs(5), |n| {
            (0..20).all(|k| n.nodes[k].routes().contains_key(&vip))
        })
        .expect("VIP announced everywhere");
    assert!(
        reached - t0 < Duration::from_millis(100),
        "took {:?}",
        reached - t0
    );
    // a VIP is a stub link: routers recompute prefixes without a new Dijkstra
    let (full_after, partial_after) = n.nodes[3].spf_runs();
    assert_eq!(full_after, full_before, "a stub-only change ran a full SPF");
    assert!(partial_after > partial_before);
    // withdraw right away: MinLSInterval (5 s) defers the re-origination to t0 + 5 s
    n.with(7, |x, now| x.withdraw(now, vip));
    let gone = n
        .run_until_pred(secs(10), |n| {
            (0..20).all(|k| !n.nodes[k].routes().contains_key(&vip))
        })
        .expect("VIP withdrawn everywhere");
    assert!(
        gone >= t0 + secs(5) && gone < t0 + secs(5) + Duration::from_millis(100),
        "{gone:?}"
    );
    // and once MinLSInterval has passed, a withdrawal is immediate
    n.run_for(secs(6));
    n.with(7, |x, now| x.announce(now, vip, 0, None));
    n.run_for(secs(6));
    let t1 = n.now;
    n.with(7, |x, now| x.withdraw(now, vip));
    let gone = n
        .run_until_pred(secs(10), |n| {
            (0..20).all(|k| !n.nodes[k].routes().contains_key(&vip))
        })
        .unwrap();
    assert!(
        gone - t1 < Duration::from_millis(100),
        "took {:?}",
        gone - t1
    );
    for k in 1..20 {
        assert_eq!(
            n.lsdb_fp(k),
            n.lsdb_fp(0),
            "router {k} differs after withdraw"
        );
    }
}

#[test]
fn ecmp_on_diamond() {
    // R1 — R2 — R4 and R1 — R3 — R4; R4 announces 192.0.2.4/32
    let mut n = Net::new(5);
    let r1 = n.add(Instance::new(
        cfg(
            "1.1.1.1",
            vec![p2p_if(1, "10.1.2.1"), p2p_if(2, "10.1.3.1")],
        ),
        n.now,
    ));
    let r2 = n.add(Instance::new(
        cfg(
            "2.2.2.2",
            vec![p2p_if(1, "10.1.2.2"), p2p_if(2, "10.2.4.2")],
        ),
        n.now,
    ));
    let r3 = n.add(Instance::new(
        cfg(
            "3.3.3.3",
            vec![p2p_if(1, "10.1.3.2"), p2p_if(2, "10.3.4.3")],
        ),
        n.now,
    ));
    let r4 = n.add(Instance::new(
        cfg(
            "4.4.4.4",
            vec![p2p_if(1, "10.2.4.1"), p2p_if(2, "10.3.4.1")],
        ),
        n.now,
    ));
    let p = |node, ifindex, a: &str| Port {
        node,
        ifindex,
        addr: ip(a),
    };
    n.connect(vec![p(r1, 1, "10.1.2.1"), p(r2, 1, "10.1.2.2")]);
    n.connect(vec![p(r1, 2, "10.1.3.1"), p(r3, 1, "10.1.3.2")]);
    n.connect(vec![p(r2, 2, "10.2.4.2"), p(r4, 1, "10.2.4.1")]);
    n.connect(vec![p(r3, 2, "10.3.4.3"), p(r4, 2, "10.3.4.1")]);
    n.with(r4, |x, now| x.announce(now, net("192.0.2.4/32"), 1, None));
    n.start();
    n.run_for(secs(15));
    let r = &n.nodes[r1].routes()[&net("192.0.2.4/32")];
    // 10 (R1→R2) + 10 (R2→R4) + 1 (stub)
    assert_eq!(r.cost, 21);
    let want: BTreeSet<(u32, Ipv4Addr)> = [(1, ip("10.1.2.2")), (2, ip("10.1.3.2"))].into();
    assert_eq!(r.nexthops, want);
    // R2's side link: single path
    let r = &n.nodes[r1].routes()[&net("10.2.4.0/30")];
    assert_eq!((r.cost, r.nexthops.len()), (20, 1));
    // the RoutesChanged events added the VIP with both next hops
    let added = n.events[r1].iter().any(|(_, e)| match e {
        Event::RoutesChanged(d) => {
            d.added
                .iter()
                .any(|(p, r)| *p == net("192.0.2.4/32") && r.nexthops == want)
                || d.changed
                    .iter()
                    .any(|(p, r)| *p == net("192.0.2.4/32") && r.nexthops == want)
        }
        _ => false,
    });
    assert!(added);
    // max-metric on R2 (RFC 6987): traffic moves to R3 only
    n.with(r2, |x, now| x.set_max_metric(now, true));
    n.run_for(secs(2));
    let r = &n.nodes[r1].routes()[&net("192.0.2.4/32")];
    assert_eq!(r.nexthops, [(2, ip("10.1.3.2"))].into());
}

#[test]
fn external_flush_and_maxage_aging() {
    let mut n = mesh(5, 2);
    n.run_for(secs(20));
    let p = net("203.0.113.0/24");
    n.with(2, |x, now| x.announce(now, p, 0, ext(20)));
    n.run_for(secs(2));
    for k in [0, 1, 3, 4] {
        let r = &n.nodes[k].routes()[&p];
        assert_eq!(r.path_type, PathType::External2);
        assert_eq!(r.type2_cost, 20);
    }
    // withdraw: the type-5 LSA is flushed (premature aging) and leaves every database
    n.run_for(secs(6));
    n.with(2, |x, now| x.withdraw(now, p));
    n.run_for(secs(10));
    for k in 0..5 {
        assert!(!n.nodes[k].routes().contains_key(&p));
        assert!(
            !n.lsdb_fp(k).iter().any(|l| l.starts_with("AsExternal")),
            "{k}"
        );
    }
    // router 4 dies without flushing; its LSAs age out after MaxAge and are removed
    let rid4 = ip("1.1.1.5");
    n.kill(4);
    n.run_for(secs(60));
    assert!(n.lsdb_fp(0).iter().any(|l| l.contains(" 1.1.1.5 ")));
    n.run_for(secs(3700));
    for k in 0..4 {
        let db = n.nodes[k].database(n.now);
        assert!(
            !db.iter().any(|e| e.header.adv_router == rid4),
            "node {k} still has 1.1.1.5's LSAs"
        );
        assert_eq!(n.lsdb_fp(k), n.lsdb_fp(0));
    }
    // own LSAs were refreshed (LSRefreshTime) and did not age out
    let db = n.nodes[0].database(n.now);
    let own = db
        .iter()
        .find(|e| e.header.ls_type == LsaType::Router && e.header.adv_router == ip("1.1.1.1"))
        .unwrap();
    assert!(own.header.age < 1800);
    assert!(own.header.seq > INITIAL_SEQ + 1);
}

#[test]
fn sequence_wrap_after_max_sequence_number() {
    let mut n = pair(7, AuthKey::Null);
    n.start();
    n.run_for(secs(10));
    assert_eq!(state_of(&n, 0, "2.2.2.2"), Some(NeighborState::Full));
    // R2 sends R1 a copy of R1's router-LSA with MaxSequenceNumber (as a stale instance
    // from a previous life would have): R1 must flush it and restart at InitialSequence
    let key_hdr = n.nodes[0]
        .database(n.now)
        .into_iter()
        .find(|e| e.header.ls_type == LsaType::Router && e.header.adv_router == ip("1.1.1.1"))
        .unwrap();
    let entry = n.nodes[0]
        .lsdb()
        .get(&key_hdr.header.key())
        .unwrap()
        .clone();
    let mut l = entry.lsa.clone();
    l.header.seq = MAX_SEQ;
    l.header.age = 1;
    let bytes = l.to_bytes().unwrap();
    let repr = Repr {
        router_id: ip("2.2.2.2"),
        area_id: Ipv4Addr::UNSPECIFIED,
        auth: AuthKey::Null.field(0),
        body: Body::LsUpdate(ospf::packet::LsUpdate {
            lsas: vec![ospf::packet::WireLsa { lsa: l, bytes }],
            discarded: 0,
        }),
    };
    let mut b = repr.to_bytes();
    ospf::auth::sign(&mut b, &AuthKey::Null);
    n.capture_on = true;
    n.inject(1, 1, ip("224.0.0.5"), b);
    n.run_for(secs(10));
    // the MaxSequenceNumber instance was flushed: some LSU carried it at MaxAge
    let flushed = n.capture.iter().any(|s| {
        s.from == 0
            && Repr::parse(&Packet::new_checked(&s.bytes[..]).unwrap()).is_ok_and(|r| {
                match r.body {
                    Body::LsUpdate(u) => u.lsas.iter().any(|w| {
                        w.lsa.header.seq == MAX_SEQ
                            && w.lsa.header.age == 3600
                            && w.lsa.header.adv_router == ip("1.1.1.1")
                    }),
                    _ => false,
                }
            })
    });
    assert!(flushed);
    for k in 0..2 {
        let e = n.nodes[k]
            .database(n.now)
            .into_iter()
            .find(|e| e.header.ls_type == LsaType::Router && e.header.adv_router == ip("1.1.1.1"))
            .unwrap();
        assert_eq!(e.header.seq, INITIAL_SEQ, "node {k}");
        assert!(e.header.age < 3600);
    }
    assert_eq!(n.lsdb_fp(0), n.lsdb_fp(1));
    assert!(n.nodes[1].routes().contains_key(&net("10.9.0.0/30")));
}

#[test]
fn md5_adjacency_and_replay_rejected() {
    let key = AuthKey::Md5 {
        key_id: 1,
        key: b"s3cret".to_vec(),
    };
    let mut n = pair(8, key);
    n.capture_on = true;
    n.start();
    n.run_for(secs(10));
    assert_eq!(state_of(&n, 0, "2.2.2.2"), Some(NeighborState::Full));
    // replay R2's first hello: its sequence number is lower than the last accepted
    let old = n
        .capture
        .iter()
        .find(|s| s.from == 1)
        .unwrap()
        .bytes
        .clone();
    n.capture_on = false;
    n.inject(1, 1, ip("224.0.0.5"), old);
    n.run_for(Duration::from_millis(10));
    assert!(n.events[0]
        .iter()
        .any(|(_, e)| *e == Event::DroppedPacket(DropReason::ReplayedSequence)));
    assert_eq!(
        n.nodes[0].drop_counts().get(&DropReason::ReplayedSequence),
        Some(&1)
    );
    // a router with the wrong key never gets past Down
    let mut m = pair(
        8,
        AuthKey::Md5 {
            key_id: 1,
            key: b"s3cret".to_vec(),
        },
    );
    m.nodes[1] = Instance::new(
        cfg(
            "2.2.2.2",
            vec![{
                let mut b = p2p_if(1, "10.9.0.2");
                b.auth = AuthKey::Md5 {
                    key_id: 1,
                    key: b"wrong".to_vec(),
                };
                b
            }],
        ),
        m.now,
    );
    m.start();
    m.run_for(secs(10));
    assert_eq!(state_of(&m, 0, "2.2.2.2"), None);
    assert!(
        m.nodes[0]
            .drop_counts()
            .get(&DropReason::AuthFailure)
            .copied()
            .unwrap_or(0)
            >= 5
    );
}

#[test]
fn graceful_shutdown_flushes_and_reports() {
    let mut n = mesh(4, 3);
    n.run_for(secs(20));
    let vip = net("100.96.122.210/32");
    n.with(1, |x, now| x.announce(now, vip, 0, None));
    // past MinLSArrival and the flush's skew margin since that origination, so the
    // shutdown flush may leave at once
    n.run_for(Duration::from_millis(1300));
    assert!(n.nodes[0].routes().contains_key(&vip));
    let t0 = n.now;
    n.with(1, |x, now| x.shutdown(now));
    let done = n
        .run_until_pred(secs(10), |n| {
            n.events[1]
                .iter()
                .any(|(_, e)| matches!(e, Event::ShutdownComplete { .. }))
        })
        .unwrap();
    // complete once the neighbors' (delayed) acknowledgments arrived
    assert!(done - t0 < Duration::from_secs(1), "{:?}", done - t0);
    assert!(n.events[1]
        .iter()
        .any(|(_, e)| *e == Event::ShutdownComplete { acked: true }));
    // the flush itself removed the routes within milliseconds
    let gone = n.events[0].iter().find_map(|(t, e)| match e {
        Event::RoutesChanged(d) if *t >= t0 && d.removed.contains(&vip) => Some(*t),
        _ => None,
    });
    assert!(
        gone.is_some_and(|t| t - t0 < Duration::from_millis(50)),
        "{gone:?}"
    );
    for k in [0, 2, 3] {
        assert!(!n.nodes[k].routes().contains_key(&vip), "{k}");
        assert!(!n.nodes[k].routes().contains_key(&net("192.0.2.2/32")));
    }
    // the neighbors dropped the adjacency at once (last hello listed nobody)
    n.run_for(Duration::from_millis(10));
    assert!(n.nodes[0]
        .neighbors(n.now)
        .iter()
        .all(|x| x.router_id != ip("1.1.1.2") || x.state < NeighborState::TwoWay));
}

#[test]
fn stub_router_on_startup_then_normal_metrics() {
    let mut n = Net::new(4);
    let mut c = cfg("1.1.1.1", vec![p2p_if(1, "10.9.0.1")]);
    c.stub_router_on_startup = Some(secs(30));
    let a = n.add(Instance::new(c, n.now));
    let b = n.add(Instance::new(
        cfg("2.2.2.2", vec![p2p_if(1, "10.9.0.2")]),
        n.now,
    ));
    n.connect(vec![
        Port {
            node: a,
            ifindex: 1,
            addr: ip("10.9.0.1"),
        },
        Port {
            node: b,
            ifindex: 1,
            addr: ip("10.9.0.2"),
        },
    ]);
    n.with(a, |x, now| x.announce(now, net("192.0.2.1/32"), 0, None));
    n.start();
    n.run_for(secs(10));
    let link_metric = |n: &Net| {
        let e = n.nodes[b]
            .lsdb()
            .iter()
            .find(|(k, _)| k.ls_type == LsaType::Router && k.adv_router == ip("1.1.1.1"))
            .map(|(_, e)| e.lsa.clone())
            .unwrap();
        match e.body {
            ospf::lsa::LsaBody::Router(r) => r
                .links
                .iter()
                .find(|l| l.link_type == ospf::lsa::RouterLinkType::PointToPoint)
                .map(|l| l.metric),
            _ => None,
        }
    };
    assert_eq!(link_metric(&n), Some(0xffff));
    n.run_for(secs(25));
    assert_eq!(link_metric(&n), Some(10));
    assert_eq!(n.nodes[b].routes()[&net("192.0.2.1/32")].cost, 10);
}

#[test]
fn passive_interface_mtu_and_hello_mismatch() {
    // R1 has a passive LAN (its subnet becomes a stub, no hellos) and a p2p link to R2
    let mut n = Net::new(6);
    let mut lan = lan_if("192.168.7.1");
    lan.ifindex = 2;
    lan.passive = true;
    let mut a1 = p2p_if(1, "10.9.0.1");
    a1.mtu = 1500;
    let mut b1 = p2p_if(1, "10.9.0.2");
    b1.mtu = 9000; // R2 advertises a larger MTU: R1 refuses its DDs (§10.6)
    let a = n.add(Instance::new(
        cfg("1.1.1.1", vec![a1.clone(), lan.clone()]),
        n.now,
    ));
    let b = n.add(Instance::new(cfg("2.2.2.2", vec![b1.clone()]), n.now));
    n.connect(vec![
        Port {
            node: a,
            ifindex: 1,
            addr: ip("10.9.0.1"),
        },
        Port {
            node: b,
            ifindex: 1,
            addr: ip("10.9.0.2"),
        },
    ]);
    n.connect(vec![Port {
        node: a,
        ifindex: 2,
        addr: ip("192.168.7.1"),
    }]);
    n.capture_on = true;
    n.start();
    n.run_for(secs(15));
    assert!(
        !n.capture.iter().any(|s| s.from == a && s.ifindex == 2),
        "passive interface sent"
    );
    assert_eq!(n.nodes[a].interfaces()[1].state, InterfaceState::Passive);
    assert_eq!(state_of(&n, a, "2.2.2.2"), Some(NeighborState::ExStart));
    assert!(
        n.nodes[a]
            .drop_counts()
            .get(&DropReason::MtuMismatch)
            .copied()
            .unwrap_or(0)
            > 0
    );

    // with mtu_ignore the adjacency forms and R2 learns the passive subnet as a stub
    let mut m = Net::new(6);
    let mut a1i = a1;
    a1i.mtu_ignore = true;
    let a = m.add(Instance::new(cfg("1.1.1.1", vec![a1i, lan]), m.now));
    let b = m.add(Instance::new(cfg("2.2.2.2", vec![b1]), m.now));
    m.connect(vec![
        Port {
            node: a,
            ifindex: 1,
            addr: ip("10.9.0.1"),
        },
        Port {
            node: b,
            ifindex: 1,
            addr: ip("10.9.0.2"),
        },
    ]);
    m.connect(vec![Port {
        node: a,
        ifindex: 2,
        addr: ip("192.168.7.1"),
    }]);
    m.start();
    m.run_for(secs(15));
    assert_eq!(state_of(&m, a, "2.2.2.2"), Some(NeighborState::Full));
    let r = &m.nodes[b].routes()[&net("192.168.7.0/24")];
    assert_eq!(r.cost, 20);
    assert_eq!(r.nexthops, [(1, ip("10.9.0.1"))].into());

    // a neighbor with a different hello interval is rejected (§10.5)
    let mut h = Net::new(6);
    let mut c2 = p2p_if(1, "10.9.0.2");
    c2.hello_interval = secs(2);
    let a = h.add(Instance::new(
        cfg("1.1.1.1", vec![p2p_if(1, "10.9.0.1")]),
        h.now,
    ));
    let b = h.add(Instance::new(cfg("2.2.2.2", vec![c2]), h.now));
    h.connect(vec![
        Port {
            node: a,
            ifindex: 1,
            addr: ip("10.9.0.1"),
        },
        Port {
            node: b,
            ifindex: 1,
            addr: ip("10.9.0.2"),
        },
    ]);
    h.start();
    h.run_for(secs(10));
    assert!(h.nodes[a].neighbors(h.now).is_empty());
    assert!(
        h.nodes[a]
            .drop_counts()
            .get(&DropReason::HelloMismatch)
            .copied()
            .unwrap_or(0)
            >= 5
    );
}

/// A BFD-declared death (RFC 5882) takes the neighbor and its routes away at once, long
/// before the dead interval; the neighbor's hellos bring it back when it is alive after all.
#[test]
fn neighbor_dead_from_bfd_removes_routes_before_the_dead_interval() {
    let mut n = pair(21, AuthKey::Null);
    let vip = net("100.96.122.210/32");
    n.with(1, |x, now| x.announce(now, vip, 0, None));
    n.start();
    n.run_for(secs(10));
    assert_eq!(state_of(&n, 0, "2.2.2.2"), Some(NeighborState::Full));
    assert!(n.nodes[0].routes().contains_key(&vip));

    // Node 1 stops answering; BFD (not modelled here) notices in milliseconds.
    n.kill(1);
    n.run_for(Duration::from_millis(300));
    assert!(
        n.nodes[0].routes().contains_key(&vip),
        "dead interval not over yet"
    );
    let killed = n.with(0, |x, now| x.neighbor_dead(now, 1, ip("10.9.0.2")));
    assert!(killed);
    assert!(
        state_of(&n, 0, "2.2.2.2").is_none_or(|s| s == NeighborState::Down),
        "{:?}",
        state_of(&n, 0, "2.2.2.2")
    );
    assert!(
        !n.nodes[0].routes().contains_key(&vip),
        "route kept after BFD down"
    );
    // Unknown addresses and interfaces match nothing.
    assert!(!n.with(0, |x, now| x.neighbor_dead(now, 1, ip("10.9.0.9"))));
    assert!(!n.with(0, |x, now| x.neighbor_dead(now, 7, ip("10.9.0.2"))));
}
