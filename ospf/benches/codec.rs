#![allow(missing_docs)]
//! Packet decode and encode throughput: a Hello, and a Link State Update carrying ten
//! router-LSAs (each LSA's Fletcher checksum is verified on decode).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ospf::auth::{self, AuthKey};
use ospf::lsa::{
    Lsa, LsaBody, LsaHeaderRepr, LsaType, RouterFlags, RouterLink, RouterLinkType, RouterLsa,
    INITIAL_SEQ,
};
use ospf::packet::{Body, Hello, LsUpdate, Packet, Repr, WireLsa};
use ospf::Options;
use std::hint::black_box;
use std::net::Ipv4Addr;

fn lsu() -> Repr {
    let lsas = (0..10u32)
        .map(|i| {
            let mut l = Lsa {
                header: LsaHeaderRepr {
                    age: 1,
                    options: Options(Options::E),
                    ls_type: LsaType::Router,
                    id: Ipv4Addr::from(0x0a00_0000 + i),
                    adv_router: Ipv4Addr::from(0x0a00_0000 + i),
                    seq: INITIAL_SEQ,
                    checksum: 0,
                    length: 0,
                },
                body: LsaBody::Router(RouterLsa {
                    flags: RouterFlags(0),
                    links: (0..6u32)
                        .map(|k| RouterLink {
                            id: Ipv4Addr::from(0x0b00_0000 + k),
                            data: Ipv4Addr::from(0x0c00_0000 + k),
                            link_type: RouterLinkType::PointToPoint,
                            metric: 10,
                            tos: vec![],
                        })
                        .collect(),
                }),
            };
            let bytes = l.to_bytes().expect("fits");
            WireLsa { lsa: l, bytes }
        })
        .collect();
    Repr {
        router_id: Ipv4Addr::new(1, 1, 1, 1),
        area_id: Ipv4Addr::UNSPECIFIED,
        auth: AuthKey::Null.field(0),
        body: Body::LsUpdate(LsUpdate { lsas, discarded: 0 }),
    }
}

fn hello() -> Repr {
    Repr {
        router_id: Ipv4Addr::new(1, 1, 1, 1),
        area_id: Ipv4Addr::UNSPECIFIED,
        auth: AuthKey::Null.field(0),
        body: Body::Hello(Hello {
            mask: Ipv4Addr::new(255, 255, 255, 0),
            hello_interval: 10,
            options: Options(Options::E),
            priority: 1,
            dead_interval: 40,
            dr: Ipv4Addr::new(10, 0, 0, 1),
            bdr: Ipv4Addr::new(10, 0, 0, 2),
            neighbors: vec![Ipv4Addr::new(2, 2, 2, 2), Ipv4Addr::new(3, 3, 3, 3)],
        }),
    }
}

fn bench(c: &mut Criterion) {
    let md5 = AuthKey::Md5 {
        key_id: 1,
        key: b"s3cret".to_vec(),
    };
    for (name, repr) in [("hello", hello()), ("lsu_10_router_lsas", lsu())] {
        let mut bytes = repr.to_bytes();
        auth::sign(&mut bytes, &AuthKey::Null);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("decode_verify", |b| {
            b.iter(|| {
                let s = auth::verify(black_box(&bytes), &AuthKey::Null, None).expect("valid");
                let p = Packet::new_checked(black_box(&bytes[..])).expect("fits");
                black_box((s, Repr::parse(&p).expect("valid")))
            })
        });
        g.bench_function("encode_sign", |b| {
            b.iter(|| {
                let mut v = black_box(&repr).to_bytes();
                auth::sign(&mut v, &AuthKey::Null);
                black_box(v)
            })
        });
        let mut r5 = repr.clone();
        r5.auth = md5.field(1);
        g.bench_function("encode_sign_md5", |b| {
            b.iter(|| {
                let mut v = black_box(&r5).to_bytes();
                auth::sign(&mut v, &md5);
                black_box(v)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
