#![allow(missing_docs)]
//! SPF on synthetic LSDBs: `n` routers on a ring plus one chord each (about four links per
//! router), each with a stub /32; full Dijkstra and a prefix-only change.

use criterion::{criterion_group, criterion_main, Criterion};
use ospf::lsa::{
    Lsa, LsaBody, LsaHeaderRepr, LsaType, RouterFlags, RouterLink, RouterLinkType, RouterLsa,
    INITIAL_SEQ,
};
use ospf::lsdb::Lsdb;
use ospf::packet::WireLsa;
use ospf::spf::{Spf, SpfInterface};
use ospf::Options;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

fn rid(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 + i as u32 + 1)
}

fn router(i: usize, nbrs: &[usize], extra_stub: bool) -> WireLsa {
    let mut links: Vec<RouterLink> = nbrs
        .iter()
        .map(|&j| RouterLink {
            id: rid(j),
            data: Ipv4Addr::from(0xac10_0000 + (i as u32) * 8 + (j as u32 % 8)),
            link_type: RouterLinkType::PointToPoint,
            metric: 1 + ((i * 31 + j * 17) % 20) as u16,
            tos: vec![],
        })
        .collect();
    links.push(RouterLink {
        id: Ipv4Addr::from(0xc000_0000 + i as u32),
        data: Ipv4Addr::BROADCAST,
        link_type: RouterLinkType::Stub,
        metric: 0,
        tos: vec![],
    });
    if extra_stub {
        links.push(RouterLink {
            id: Ipv4Addr::new(100, 96, 122, 210),
            data: Ipv4Addr::BROADCAST,
            link_type: RouterLinkType::Stub,
            metric: 0,
            tos: vec![],
        });
    }
    let mut l = Lsa {
        header: LsaHeaderRepr {
            age: 0,
            options: Options(Options::E),
            ls_type: LsaType::Router,
            id: rid(i),
            adv_router: rid(i),
            seq: INITIAL_SEQ + extra_stub as i32,
            checksum: 0,
            length: 0,
        },
        body: LsaBody::Router(RouterLsa {
            flags: RouterFlags(0),
            links,
        }),
    };
    let bytes = l.to_bytes().expect("fits");
    WireLsa { lsa: l, bytes }
}

fn topology(n: usize) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    let add = |a: usize, b: usize, adj: &mut Vec<Vec<usize>>| {
        if a != b && !adj[a].contains(&b) {
            adj[a].push(b);
            adj[b].push(a);
        }
    };
    for i in 0..n {
        add(i, (i + 1) % n, &mut adj);
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        add(i, (x % n as u64) as usize, &mut adj);
    }
    adj
}

fn lsdb(n: usize) -> (Lsdb, Vec<Vec<usize>>) {
    let adj = topology(n);
    let mut db = Lsdb::new();
    for (i, nb) in adj.iter().enumerate() {
        db.install(Duration::ZERO, router(i, nb, false), None);
    }
    (db, adj)
}

fn ifaces(adj: &[Vec<usize>]) -> Vec<SpfInterface> {
    adj[0]
        .iter()
        .enumerate()
        .map(|(k, &j)| SpfInterface {
            ifindex: k as u32 + 1,
            addr: Ipv4Addr::from(0xac10_0000 + (j as u32 % 8)),
            prefix_len: 32,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for n in [1_000usize, 10_000] {
        let (db, adj) = lsdb(n);
        let ifs = ifaces(&adj);
        let mut spf = Spf::new();
        let t = spf.full(rid(0), &db, Duration::ZERO, &ifs);
        assert!(t.len() >= n, "every router's stub is reachable");
        c.bench_function(&format!("spf_full_{n}_routers"), |b| {
            b.iter(|| black_box(spf.full(rid(0), black_box(&db), Duration::ZERO, &ifs).len()))
        });
    }
    // prefix-only change on the 10,000-router LSDB: router 5000 adds a VIP stub link
    let (mut db, adj) = lsdb(10_000);
    let ifs = ifaces(&adj);
    let mut spf = Spf::new();
    spf.full(rid(0), &db, Duration::ZERO, &ifs);
    db.install(Duration::ZERO, router(5000, &adj[5000], true), None);
    let t = spf.routes_only(rid(0), &db, Duration::ZERO, &ifs);
    assert!(
        t.contains_key(&ospf::Ipv4Net::new(Ipv4Addr::new(100, 96, 122, 210), 32).expect("prefix"))
    );
    c.bench_function("spf_prefix_only_10000_routers", |b| {
        b.iter(|| {
            black_box(
                spf.routes_only(rid(0), black_box(&db), Duration::ZERO, &ifs)
                    .len(),
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
