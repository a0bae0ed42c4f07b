//! Arbitrary frames through a dataplane Worker configured with a FullNAT TCP service
//! (TOA, SYN proxy off), a SYN-proxied NAT service, a UDP service and a FIB: processing
//! never panics and every frame gets exactly one outcome.
//!
//! Input: a sequence of records `[port, len_hi, len_lo, bytes...]`; time advances 100 ms
//! per frame and the timers run every 16 frames.
#![no_main]
use dataplane::conn::Timeouts;
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::sched::SchedKind;
use dataplane::service::{
    ClientAddr, Command, Forward, RealServerConfig, ServiceConfig, ServiceKey,
};
use dataplane::worker::{Frame, PortConfig, Worker, WorkerConfig};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

fn worker() -> Worker {
    let routes = vec![
        Route {
            prefix: Prefix::new(Ipv4Addr::UNSPECIFIED, 0).expect("prefix"),
            nexthops: vec![
                NextHop {
                    gateway: Some(Ipv4Addr::new(10, 0, 0, 254)),
                    port: 0,
                },
                NextHop {
                    gateway: Some(Ipv4Addr::new(10, 0, 0, 253)),
                    port: 0,
                },
            ],
        },
        Route {
            prefix: Prefix::new(Ipv4Addr::new(192, 168, 7, 0), 24).expect("prefix"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 1,
            }],
        },
    ];
    let fib = Arc::new(FibHandle::new(Fib::build(&routes).expect("fib")));
    let cfg = WorkerConfig {
        id: 0,
        workers: 2,
        ports: vec![
            PortConfig {
                mac: [2, 0, 0, 0, 0, 1],
                addrs: vec![Ipv4Addr::new(10, 0, 0, 1)],
                mtu: 1500,
            },
            PortConfig {
                mac: [2, 0, 0, 0, 0, 2],
                addrs: vec![Ipv4Addr::new(192, 168, 7, 1)],
                mtu: 1400,
            },
        ],
        conn_capacity: 256,
        seed: 1,
        timeouts: Timeouts::dpvs(),
        neigh_capacity: 16,
    };
    let mut w = Worker::new(cfg, fib);
    let vip = Ipv4Addr::new(100, 96, 122, 210);
    let services = [
        (
            ServiceKey::new(6, vip, 80),
            Forward::FullNat,
            false,
            ClientAddr::Toa,
        ),
        (
            ServiceKey::new(6, vip, 443),
            Forward::Nat,
            true,
            ClientAddr::None,
        ),
        (
            ServiceKey::new(17, vip, 53),
            Forward::FullNat,
            false,
            ClientAddr::None,
        ),
        (
            ServiceKey::new(6, vip, 8080),
            Forward::Tun,
            false,
            ClientAddr::None,
        ),
    ];
    for (key, fwd, syn_proxy, client_addr) in services {
        let sc = ServiceConfig {
            scheduler: SchedKind::Wrr,
            syn_proxy,
            client_addr,
            local_addrs: vec![Ipv4Addr::new(192, 168, 7, 188)],
            lport_range: (1025, 1100),
            ..Default::default()
        };
        let _ = w.apply(Command::AddService(key, sc, Arc::default()));
        for (i, weight) in [(27u8, 2u32), (28, 1)] {
            let mut rs = RealServerConfig::new(Ipv4Addr::new(192, 168, 7, i), key.vport, weight);
            rs.forward = fwd;
            let _ = w.apply(Command::AddServer(key, rs, Arc::default()));
        }
    }
    w.learn_neighbor(
        Ipv4Addr::new(10, 0, 0, 254),
        [2, 0, 0, 0, 0, 0xfe],
        Duration::ZERO,
    );
    w.learn_neighbor(
        Ipv4Addr::new(192, 168, 7, 27),
        [2, 0, 0, 0, 0, 0x1b],
        Duration::ZERO,
    );
    w
}

fuzz_target!(|data: &[u8]| {
    let mut w = worker();
    let mut rest = data;
    let mut now = Duration::from_secs(1);
    let mut n = 0u64;
    while let [port, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let mut buf = vec![0u8; 64 + bytes.len() + 128];
        buf[64..64 + bytes.len()].copy_from_slice(bytes);
        if let Some(mut f) = Frame::new(&mut buf, 64, bytes.len(), u16::from(*port % 3)) {
            let _ = w.process_one(now, &mut f);
            n += 1;
        }
        now += Duration::from_millis(100);
        if n % 16 == 0 {
            w.tick(now, |_| {});
        }
    }
    let c = w.counters();
    let out = c.forwarded.get()
        + c.replied.get()
        + c.punted.get()
        + c.handed_over.get()
        + c.pending.get()
        + c.dropped();
    assert_eq!(c.rx.get(), out);
    w.tick(now + Duration::from_secs(100_000), |_| {});
    assert!(w.conns().is_empty());
});
