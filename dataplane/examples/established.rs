//! Forwards N established FullNAT packets (bursts of 32); run under
//! `valgrind --tool=callgrind` with two values of N to get instructions per packet, or
//! with `--hw-csum N` for frames whose IPv4 checksum the NIC verified, or
//! with `--memory N` to print the connection table's memory for N connections.

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;
use dataplane::conn::{ConnTable, NewConn};
use dataplane::flow::FlowKey;
use dataplane::sched::SchedKind;
use dataplane::worker::Action;
use std::time::Duration;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--memory") {
        let n: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1 << 20);
        let before = rss_kib();
        let mut t = ConnTable::new(n, 3);
        for i in 0..n {
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
        let after = rss_kib();
        println!(
            "{n} connections: RSS +{} KiB = {:.1} bytes/connection (size_of entry {}, accounted {} bytes)",
            after - before,
            (after - before) as f64 * 1024.0 / f64::from(n),
            std::mem::size_of::<dataplane::conn::Conn>(),
            t.bytes_per_entry()
        );
        return;
    }
    if args.get(1).map(String::as_str) == Some("--newconns") {
        let n: u32 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
        let mut w = worker(1 << 20, 8, SchedKind::Wlc);
        let mut buf = vec![0u8; HEADROOM + 128];
        for i in 0..n {
            let client = i.wrapping_mul(2654435761) | 0x0100_0000;
            let f = tcp_frame(
                client.to_be_bytes(),
                VIP,
                1024 + (i % 60000) as u16,
                80,
                0x02,
                &[],
            );
            buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(&f);
            let mut fr =
                dataplane::worker::Frame::new(&mut buf, HEADROOM, f.len(), 0).expect("frame");
            let a = w.process_one(Duration::from_secs(1), &mut fr);
            assert!(matches!(a, Action::Forward { .. }), "{a:?}");
        }
        println!("{} connections", w.conns().len());
        return;
    }
    // `--hw-csum N`: frames marked as checksum-verified by the NIC.
    let hw = args.get(1).map(String::as_str) == Some("--hw-csum");
    let n: usize = args
        .get(if hw { 2 } else { 1 })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut w = worker(1 << 16, 4, SchedKind::Rr);
    let tmpl = established(&mut w, [1, 2, 3, 4], 40000);
    let mut bufs: Vec<Vec<u8>> = (0..32)
        .map(|_| vec![0u8; HEADROOM + tmpl.len() + 64])
        .collect();
    let mut actions = vec![Action::Punt; 32];
    for _ in 0..n / 32 {
        burst_csum(
            &mut w,
            Duration::from_secs(2),
            &mut bufs,
            &tmpl,
            &mut actions,
            hw,
        );
    }
    println!(
        "{:?} forwarded {}",
        actions[0],
        w.counters().forwarded.get()
    );
}
