//! Two forwarding workers on two lcores through the DPDK backend: a client namespace,
//! the balancer namespace (two `net_af_packet` ports with two queue pairs each,
//! `qpairs=2`, and `net_tap` twins) and a real-server namespace running nginx. Many
//! short FullNAT connections with varied source ports spread over both workers; frames
//! that reach the worker not owning their connection are handed over. Needs root (CI
//! runs as root); fails, never skips, without it. Run with `cargo test -p dataplane
//! --features dpdk --test dpdk_workers`.
//!
//! EAL can be initialised once per process, so everything is in one `#[test]`.
#![cfg(feature = "dpdk")]

mod common;
use common::*;

use dataplane::conn::Timeouts;
use dataplane::dpdk::{control_queue, Backend, BackendConfig, Control, PortSpec};
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::flow::PROTO_TCP;
use dataplane::sched::SchedKind;
use dataplane::service::{
    ClientAddr, Command as SvcCommand, Forward, RealServerConfig, ServiceConfig, ServiceKey, Stats,
};
use dataplane::worker::{PortConfig, Worker, WorkerConfig};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per service.
const N: usize = 200;

/// The CPUs in this thread's affinity mask, lowest first.
fn cpus() -> Vec<usize> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            prefix: Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 24).expect("prefix"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 0,
            }],
        },
        Route {
            prefix: Prefix::new(Ipv4Addr::new(192, 168, 7, 0), 24).expect("prefix"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 1,
            }],
        },
    ]
}

/// The FullNAT service VIP:80 → RS:80 for one worker, counting into `stats`.
fn services(stats: &Arc<Stats>) -> Vec<SvcCommand> {
    let key = ServiceKey::new(PROTO_TCP, VIP, 80);
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        client_addr: ClientAddr::None,
        local_addrs: vec![LIP],
        ..Default::default()
    };
    let mut rs = RealServerConfig::new(RS, 80, 1);
    rs.forward = Forward::FullNat;
    vec![
        SvcCommand::AddService(key, cfg, Arc::clone(stats)),
        SvcCommand::AddServer(key, rs, Arc::default()),
    ]
}

/// Stops the worker set when dropped (the client ends or panics).
struct StopOnDrop(dataplane::dpdk::StopHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn curl(ns: &str, url: &str) -> String {
    run("ip", &["netns", "exec", ns, "curl", "-s", "-m", "5", url]).unwrap_or_else(|e| e)
}

#[test]
fn two_workers_share_connections_and_hand_over_to_the_owner() {
    let lab = Lab::new("dpdkmw");
    lab.enter_lb();
    std::env::set_var("RUNTIME_DIRECTORY", &lab.dir);
    let cpus = cpus();
    let c0 = *cpus.first().expect("a CPU");
    let c1 = *cpus.get(1).unwrap_or(&c0);
    let cfg = BackendConfig {
        eal_args: vec![
            "--no-huge".into(),
            "-m".into(),
            "512".into(),
            "--no-pci".into(),
            "--file-prefix".into(),
            lab.lb.clone(),
            // Main lcore 0, forwarding lcores 1 and 2, on two CPUs when there are two.
            format!("--lcores=0@{c0},1@{c0},2@{c1}"),
            "--log-level".into(),
            "lib.eal:warning".into(),
        ],
        plugins: vec!["net_af_packet".into()],
        ports: vec![
            PortSpec {
                device: "net_af_packet0".into(),
                devargs: Some("iface=l0,qpairs=2".into()),
                twin: Some("ftap0".into()),
            },
            PortSpec {
                device: "net_af_packet1".into(),
                devargs: Some("iface=l1,qpairs=2".into()),
                twin: Some("ftap1".into()),
            },
        ],
        mbufs: 8191,
        rx_desc: 512,
        tx_desc: 512,
        idle_sleep: std::time::Duration::ZERO,
    };
    let backend = Backend::with_queues(&cfg, 2).expect("backend");
    let macs = backend.port_macs();
    for (i, tap) in ["ftap0", "ftap1"].into_iter().enumerate() {
        assert_eq!(Lab::mac(&lab.lb, tap), macs.get(i).copied(), "{tap} MAC");
    }
    for (tap, addr) in [("ftap0", LB_CLIENT_SIDE), ("ftap1", LB_SERVER_SIDE)] {
        must(
            "ip",
            &[
                "-n",
                &lab.lb,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                tap,
            ],
        );
        must("ip", &["-n", &lab.lb, "link", "set", tap, "up"]);
    }
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let port_addrs = [LB_CLIENT_SIDE, LB_SERVER_SIDE];
    let mut workers = Vec::new();
    let mut ctls = Vec::new();
    let mut ctl_rxs = Vec::new();
    let mut stats = Vec::new();
    let mut wcounters = Vec::new();
    for id in 0..2u16 {
        let wcfg = WorkerConfig {
            id,
            workers: 2,
            ports: macs
                .iter()
                .zip(port_addrs)
                .map(|(mac, a)| PortConfig {
                    mac: *mac,
                    addrs: vec![a],
                    mtu: 1500,
                })
                .collect(),
            conn_capacity: 4096,
            seed: 0x5eed + u64::from(id),
            timeouts: Timeouts::dpvs(),
            neigh_capacity: 64,
        };
        let w = Worker::new(wcfg, Arc::clone(&fib));
        wcounters.push(Arc::clone(w.counters()));
        workers.push(w);
        let st = Arc::new(Stats::default());
        let (tx, rx) = control_queue(16);
        for c in services(&st) {
            tx.send(Control::Command(Box::new(c)))
                .expect("control queue has room");
        }
        stats.push(st);
        ctls.push(tx);
        ctl_rxs.push(rx);
    }
    let guard = StopOnDrop(backend.stop_handle());
    let set = backend
        .launch_workers(workers, ctl_rxs, &[1, 2])
        .expect("launch two loops");
    assert_eq!(set.lcores(), [1, 2]);
    let counters = set.counters();
    let handover = set.handover_counters();
    let t0 = Instant::now();
    while counters.iter().any(|c| c.lcore.control_applied.get() < 2) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "services not applied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ping = [
        "netns", "exec", &lab.c, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.1",
    ];
    let ping = run("ip", &ping).unwrap_or_else(|e| e);
    // Each curl is a new connection from a new ephemeral source port.
    let replies: Vec<String> = (0..N)
        .map(|_| curl(&lab.c, &format!("http://{VIP}/")))
        .collect();
    // Let the last segments (FIN, ACK) cross before stopping: hand-overs settle when
    // each side received what the other sent.
    let settled = || (0..2).all(|i| handover[i].sent.get() == handover[1 - i].received.get());
    let t1 = Instant::now();
    while !settled() && t1.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let workers = set.stop().expect("loops ended and closed the ports");
    drop(guard);
    drop(ctls);

    eprintln!(
        "ping: {ping}\nfirst reply: {:?}\nloops: {counters:#?}\nhandover: {handover:#?}\nworkers: {wcounters:?}",
        replies.first()
    );
    assert_eq!(workers.len(), 2);
    assert!(ping.contains("3 received"), "ping: {ping}");
    let want = format!("rs={RS} client={LIP}\n");
    let bad: Vec<_> = replies.iter().filter(|r| **r != want).collect();
    assert!(
        bad.is_empty(),
        "{} of {N} replies wrong: {:?}",
        bad.len(),
        bad.first()
    );
    // Both workers created connections, and together exactly one per request.
    let conns: Vec<u64> = stats.iter().map(|s| s.conns.get()).collect();
    let sum = |f: fn(&dataplane::dpdk::HandoverCounters) -> u64| -> Vec<u64> {
        handover.iter().map(|h| f(h)).collect()
    };
    eprintln!(
        "per worker: conns {conns:?} handed out {:?} in {:?} punts out {:?} in {:?} \
         neighbors out {:?} in {:?} peer gone {:?} left at stop {:?}",
        sum(|h| h.sent.get()),
        sum(|h| h.received.get()),
        sum(|h| h.punts_out.get()),
        sum(|h| h.punts_in.get()),
        sum(|h| h.neighbors_out.get()),
        sum(|h| h.neighbors_in.get()),
        sum(|h| h.peer_gone.get()),
        sum(|h| h.left_at_stop.get()),
    );
    assert!(
        conns.iter().all(|&c| c > 0),
        "connections per worker {conns:?}"
    );
    assert_eq!(conns.iter().sum::<u64>(), N as u64, "{conns:?}");
    for (i, w) in wcounters.iter().enumerate() {
        assert!(w.forwarded.get() > 0, "worker {i} forwarded nothing");
    }
    // Every hand-over reached the owner and was processed there.
    let (h0, h1) = (&handover[0], &handover[1]);
    assert!(
        h0.sent.get() + h1.sent.get() > 0,
        "no frame reached the wrong worker"
    );
    // (A frame still in a ring when its receiver stopped is `left_at_stop`; one the
    // sender could not send because the receiver had ended is `peer_gone` and never
    // counted as sent.)
    let delivered = |to: &dataplane::dpdk::HandoverCounters, from: usize| {
        to.in_from[from].get() + to.left_at_stop.get()
    };
    assert_eq!(h0.out_to[1].get(), delivered(h1, 0), "0 -> 1");
    assert_eq!(h1.out_to[0].get(), delivered(h0, 1), "1 -> 0");
    assert_eq!(h0.sent.get(), h0.out_to[1].get());
    assert_eq!(h1.sent.get(), h1.out_to[0].get());
    assert_eq!(h0.received.get(), h0.in_from[1].get());
    assert_eq!(h1.received.get(), h1.in_from[0].get());
    for (i, h) in handover.iter().enumerate() {
        assert_eq!(h.owner_mismatch.get(), 0, "worker {i} owner mismatches");
        assert_eq!(h.ring_full.get(), 0, "worker {i} ring full");
        assert_eq!(h.out_to[i].get(), 0, "worker {i} handed to itself");
    }
    // The workers' own count of hand-overs matches what the loops carried (but for
    // frames whose receiver had already ended while the set stopped).
    let decided = wcounters[0].handed_over.get() + wcounters[1].handed_over.get();
    let carried = h0.sent.get() + h1.sent.get();
    let gone = h0.peer_gone.get() + h1.peer_gone.get();
    assert!(
        decided >= carried && decided - carried <= gone,
        "hand-overs decided {decided}, carried {carried}, peer gone {gone}"
    );
    // Punts of worker 1 went to worker 0, which holds the twins.
    assert_eq!(h1.punts_out.get(), h0.punts_in.get());
    assert_eq!(h0.punts_out.get(), 0);
    let twin_tx = |i: usize| {
        counters[i]
            .ports
            .iter()
            .map(|p| p.twin_tx.get())
            .sum::<u64>()
    };
    assert_eq!(twin_tx(1), 0, "only worker 0 writes to the twins");
    assert!(twin_tx(0) >= 4, "ARP and three echo requests punted");
    for c in &counters {
        let l = &c.lcore;
        assert_eq!(
            l.multi_segment.get() + l.bad_bounds.get() + l.bad_port.get(),
            0
        );
        assert_eq!(l.handover_dropped.get(), 0);
        assert_eq!(c.ports.iter().map(|p| p.tx_full.get()).sum::<u64>(), 0);
    }
}
