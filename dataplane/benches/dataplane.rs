#![allow(missing_docs)]
//! Criterion benchmarks of the forwarding core (in memory, one worker).

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dataplane::conn::{ConnTable, NewConn};
use dataplane::flow::FlowKey;
use dataplane::sched::{RsView, SchedKind, Scheduler};
use dataplane::worker::{Action, Frame, Worker};
use std::time::{Duration, Instant};

const BURST: usize = 32;

fn established_forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("fullnat");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut w = worker(1 << 16, 4, SchedKind::Rr);
    let tmpl = established(&mut w, [1, 2, 3, 4], 40000);
    let mut bufs: Vec<Vec<u8>> = (0..BURST)
        .map(|_| vec![0u8; HEADROOM + tmpl.len() + 64])
        .collect();
    let mut actions = vec![Action::Punt; BURST];
    // Checked before measuring (a filtered or `--list` run skips the closures).
    let forwarded = |a: &[Action]| a.iter().all(|a| matches!(a, Action::Forward { port: 1 }));
    burst(
        &mut w,
        Duration::from_secs(2),
        &mut bufs,
        &tmpl,
        &mut actions,
    );
    assert!(forwarded(&actions));
    g.bench_function("established_burst32", |b| {
        b.iter(|| {
            burst(
                &mut w,
                Duration::from_secs(2),
                &mut bufs,
                &tmpl,
                &mut actions,
            );
        })
    });
    // The same with the NIC's IPv4 checksum verdict set on every frame.
    burst_csum(
        &mut w,
        Duration::from_secs(2),
        &mut bufs,
        &tmpl,
        &mut actions,
        true,
    );
    assert!(forwarded(&actions));
    g.bench_function("established_burst32_hw_csum", |b| {
        b.iter(|| {
            burst_csum(
                &mut w,
                Duration::from_secs(2),
                &mut bufs,
                &tmpl,
                &mut actions,
                true,
            );
        })
    });
    // The cost of refilling the frames alone, to subtract.
    g.bench_function("refill_only_burst32", |b| {
        b.iter(|| {
            for buf in bufs.iter_mut() {
                buf[HEADROOM..HEADROOM + tmpl.len()].copy_from_slice(&tmpl);
            }
            criterion::black_box(&bufs);
        })
    });
    g.finish();
}

fn new_connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("fullnat");
    g.throughput(Throughput::Elements(1));
    g.bench_function("new_connection_syn", |b| {
        b.iter_custom(|iters| {
            let mut w = worker(4 << 20, 8, SchedKind::Wlc);
            let mut total = Duration::ZERO;
            let mut n = 0u64;
            let mut buf = vec![0u8; HEADROOM + 128];
            while n < iters {
                // 64 local addresses x 64511 ports bound the live connections: restart
                // with a fresh worker well before that (outside the timing).
                if n > 0 && n % 2_000_000 == 0 {
                    w = worker(4 << 20, 8, SchedKind::Wlc);
                }
                let client = (n as u32).wrapping_mul(2654435761) | 0x0100_0000;
                let f = tcp_frame(
                    client.to_be_bytes(),
                    VIP,
                    1024 + (n % 60000) as u16,
                    80,
                    0x02,
                    &[],
                );
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(&f);
                let mut fr = Frame::new(&mut buf, HEADROOM, f.len(), 0).expect("frame");
                let t = Instant::now();
                let a = w.process_one(Duration::from_secs(1), &mut fr);
                total += t.elapsed();
                assert!(matches!(a, Action::Forward { .. }), "{a:?}");
                n += 1;
            }
            total
        })
    });
    g.finish();
}

fn syn_flood(c: &mut Criterion) {
    let mut g = c.benchmark_group("synproxy");
    g.throughput(Throughput::Elements(BURST as u64));
    let mut w = worker(1 << 16, 4, SchedKind::Rr);
    let syns: Vec<Vec<u8>> = (0..BURST as u16)
        .map(|i| {
            tcp_frame(
                [9, 9, (i >> 8) as u8, i as u8],
                VIP,
                20000 + i,
                443,
                0x02,
                &[],
            )
        })
        .collect();
    let mut bufs: Vec<Vec<u8>> = (0..BURST).map(|_| vec![0u8; HEADROOM + 128]).collect();
    let mut actions = vec![Action::Punt; BURST];
    let flood = |w: &mut Worker, bufs: &mut [Vec<u8>], actions: &mut [Action]| {
        let mut frames: Vec<Frame<'_>> = bufs
            .iter_mut()
            .zip(syns.iter())
            .map(|(buf, f)| {
                buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
                Frame::new(buf, HEADROOM, f.len(), 0).expect("frame")
            })
            .collect();
        w.process(Duration::from_secs(5), &mut frames, actions);
    };
    // Checked before measuring (a filtered or `--list` run skips the closure).
    flood(&mut w, &mut bufs, &mut actions);
    assert!(actions
        .iter()
        .all(|a| matches!(a, Action::Reply { port: 0 })));
    g.bench_function("syn_cookie_burst32", |b| {
        b.iter(|| flood(&mut w, &mut bufs, &mut actions))
    });
    assert!(w.conns().is_empty(), "a SYN flood leaves no entries");
    g.finish();
}

fn conn_table_fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_table");
    g.sample_size(10);
    g.bench_function("insert_1M", |b| {
        b.iter_batched(
            || ConnTable::new(1 << 20, 3),
            |mut t| {
                for i in 0..(1u32 << 20) {
                    let k = FlowKey {
                        saddr: i,
                        daddr: 1,
                        sport: (i >> 16) as u16,
                        dport: 80,
                        proto: 6,
                    };
                    let o = FlowKey {
                        saddr: 2,
                        daddr: 3 + (i >> 16),
                        sport: 80,
                        dport: i as u16,
                        proto: 6,
                    };
                    t.insert(
                        NewConn {
                            in_key: k,
                            out_key: o,
                            index_out: true,
                            timeout: Duration::from_secs(90),
                            ..Default::default()
                        },
                        Duration::ZERO,
                    )
                    .expect("room");
                }
                t
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let servers: Vec<RsView> = (0..1000u32)
        .map(|i| RsView {
            id: i,
            addr: 0x0a00_0000 + i,
            port: 80,
            weight: 100,
            available: true,
            ..Default::default()
        })
        .collect();
    let mut g = c.benchmark_group("maglev");
    g.sample_size(10);
    for m in [251u32, 65521] {
        g.bench_function(format!("build_1000_servers_m{m}"), |b| {
            let mut s = Scheduler::new(SchedKind::Mh {
                table_size: m,
                port: false,
                fallback: false,
            })
            .expect("mh");
            b.iter(|| s.update(&servers));
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    established_forward,
    new_connections,
    syn_flood,
    conn_table_fill,
    maglev_build
);
criterion_main!(benches);
