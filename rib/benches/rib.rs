#![allow(missing_docs)]
//! RIB costs at a realistic scale: 10 000 OSPF prefixes on two interfaces plus 20
//! recursive static routes.

use std::net::Ipv4Addr;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rib::{Ipv4Net, NextHop, Rib, Route, RouteChange, Source};

const OSPF_ROUTES: u32 = 10_000;

fn ospf_table(metric: u32) -> Vec<Route> {
    (0..OSPF_ROUTES)
        .map(|i| {
            let p = Ipv4Net::new(Ipv4Addr::from(0x6400_0000 + (i << 8)), 24).unwrap();
            Route::new(
                p,
                vec![
                    NextHop::via_dev(Ipv4Addr::new(10, 0, 0, 1), 2),
                    NextHop::via_dev(Ipv4Addr::new(10, 0, 1, 1), 3),
                ],
            )
            .with_metric(metric)
        })
        .collect()
}

fn loaded() -> Rib {
    let mut rib = Rib::new();
    rib.address_add(2, Ipv4Addr::new(10, 0, 0, 5), 24).unwrap();
    rib.address_add(3, Ipv4Addr::new(10, 0, 1, 5), 24).unwrap();
    rib.replace_source(Source::Ospf, ospf_table(20)).unwrap();
    for i in 0..20u32 {
        let p = Ipv4Net::new(Ipv4Addr::from(0xc000_0000 + (i << 16)), 16).unwrap();
        // Gateways inside OSPF prefixes: recursive resolution through them.
        let gw = Ipv4Addr::from(0x6400_0001 + (i << 8));
        rib.update(Source::Static, Route::new(p, vec![NextHop::via(gw)]))
            .unwrap();
    }
    rib.take_fib_changes();
    rib
}

fn bench(c: &mut Criterion) {
    let mut rib = loaded();
    let p = Ipv4Net::new(Ipv4Addr::new(100, 0, 7, 0), 24).unwrap();
    let mut flip = 0u32;
    c.bench_function(
        "update one OSPF route (10k table, 20 recursive statics)",
        |b| {
            b.iter(|| {
                flip ^= 1;
                let r = Route::new(
                    p,
                    vec![NextHop::via_dev(Ipv4Addr::new(10, 0, 0, 1), 2 + flip)],
                );
                rib.apply(Source::Ospf, [RouteChange::Update(r)]).unwrap();
                black_box(rib.poll_fib());
            })
        },
    );
    let mut rib = loaded();
    let mut metric = 20;
    c.bench_function("replace whole OSPF table (10k routes)", |b| {
        b.iter(|| {
            metric ^= 1;
            rib.replace_source(Source::Ospf, ospf_table(metric))
                .unwrap();
            black_box(rib.take_fib_changes().len());
        })
    });
    let rib = loaded();
    let mut a = 0x6400_0000u32;
    c.bench_function("lookup (LPM over 10k prefixes)", |b| {
        b.iter(|| {
            a = a.wrapping_add(0x0000_0101) & 0x64ff_ffff;
            black_box(rib.lookup(Ipv4Addr::from(a)).is_some())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
