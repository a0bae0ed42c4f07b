//! FullNAT through the DPDK backend on real veths: a client namespace, the balancer
//! namespace (two `net_af_packet` ports, each with a `net_tap` kernel twin) and a
//! real-server namespace running nginx. Needs root (CI runs as root); fails, never
//! skips, without it. Run with `cargo test -p dataplane --features dpdk --test
//! dpdk_fullnat`.
//!
//! EAL can be initialised once per process, so everything is in one `#[test]`.

mod common;
use common::*;

use dataplane::conn::Timeouts;
use dataplane::dpdk::{control_queue, Backend, BackendConfig, BackendCounters, Control, PortSpec};
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::flow::PROTO_TCP;
use dataplane::sched::SchedKind;
use dataplane::service::{
    ClientAddr, Command as SvcCommand, Forward, RealServerConfig, ServiceConfig, ServiceKey,
};
use dataplane::worker::{PortConfig, Worker, WorkerConfig};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per service.
const N: usize = 100;

/// The lowest CPU in this thread's affinity mask.
fn first_cpu() -> usize {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).expect("affinity");
    (0..nix::sched::CpuSet::count())
        .find(|&c| set.is_set(c).unwrap_or(false))
        .expect("some CPU is allowed")
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

/// The service commands: VIP:80 → RS:80 in FullNAT without client address, VIP:8080 →
/// RS:8080 in FullNAT with a PROXY v2 header, VIP:81 → RS:80 in NAT mode.
fn services() -> Vec<SvcCommand> {
    let mut v = Vec::new();
    for (vport, rport, fwd, client_addr) in [
        (80, 80, Forward::FullNat, ClientAddr::None),
        (8080, 8080, Forward::FullNat, ClientAddr::ProxyV2),
        (81, 80, Forward::Nat, ClientAddr::None),
    ] {
        let key = ServiceKey::new(PROTO_TCP, VIP, vport);
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            client_addr,
            local_addrs: if fwd == Forward::FullNat {
                vec![LIP]
            } else {
                vec![]
            },
            ..Default::default()
        };
        v.push(SvcCommand::AddService(key, cfg, Arc::default()));
        let mut rs = RealServerConfig::new(RS, rport, 1);
        rs.forward = fwd;
        v.push(SvcCommand::AddServer(key, rs, Arc::default()));
    }
    v
}

/// What the client thread saw.
#[derive(Debug, Default)]
struct Seen {
    ping: String,
    plain: Vec<String>,
    proxied: Vec<String>,
    nat: Vec<String>,
}

/// Stops the backend when dropped (the client thread ends or panics).
struct StopOnDrop(dataplane::dpdk::StopHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Waits for the services, then pings the balancer's kernel address and sends `N`
/// requests to each service from the client namespace `cns`.
fn client(cns: &str, counters: &BackendCounters, n_cmds: u64) -> Seen {
    let t0 = Instant::now();
    while counters.lcore.control_applied.get() < n_cmds {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "services not applied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let ping = [
        "netns", "exec", cns, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.1",
    ];
    let mut seen = Seen {
        ping: run("ip", &ping).unwrap_or_else(|e| e),
        ..Default::default()
    };
    for _ in 0..N {
        seen.plain.push(curl(cns, &format!("http://{VIP}/")));
    }
    for _ in 0..N {
        seen.proxied.push(curl(cns, &format!("http://{VIP}:8080/")));
    }
    for _ in 0..N {
        seen.nat.push(curl(cns, &format!("http://{VIP}:81/")));
    }
    seen
}

fn curl(ns: &str, url: &str) -> String {
    run("ip", &["netns", "exec", ns, "curl", "-s", "-m", "5", url]).unwrap_or_else(|e| e)
}

#[test]
fn fullnat_through_dpdk_ports_with_kernel_twins() {
    let lab = Lab::new("dpdkbe");
    lab.enter_lb();
    std::env::set_var("RUNTIME_DIRECTORY", &lab.dir);
    let cfg = BackendConfig {
        eal_args: vec![
            "--no-huge".into(),
            "-m".into(),
            "512".into(),
            "--no-pci".into(),
            "--file-prefix".into(),
            lab.lb.clone(),
            format!("--lcores=0@{cpu},1@{cpu}", cpu = first_cpu()),
            "--log-level".into(),
            "lib.eal:warning".into(),
        ],
        plugins: vec!["net_af_packet".into()],
        ports: vec![
            PortSpec {
                device: "net_af_packet0".into(),
                devargs: Some("iface=l0".into()),
                twin: Some("ftap0".into()),
            },
            PortSpec {
                device: "net_af_packet1".into(),
                devargs: Some("iface=l1".into()),
                twin: Some("ftap1".into()),
            },
        ],
        mbufs: 4095,
        rx_desc: 512,
        tx_desc: 512,
        // The worker lcore shares its CPU with the test thread (the main lcore): sleeping
        // when idle gives the CPU back to curl and nginx, and exercises the idle path.
        idle_sleep: std::time::Duration::from_micros(50),
    };
    let backend = Backend::new(&cfg).expect("backend");
    let macs = backend.port_macs();
    assert_eq!(macs.len(), 2);

    // The kernel sees each twin with its port's MAC (the veth's, which af_packet uses).
    for (i, (tap, veth)) in [("ftap0", "l0"), ("ftap1", "l1")].into_iter().enumerate() {
        assert_eq!(Lab::mac(&lab.lb, tap), Some(macs[i]), "{tap} MAC");
        assert_eq!(Lab::mac(&lab.lb, veth), Some(macs[i]), "{veth} MAC");
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

    let port_addrs = [LB_CLIENT_SIDE, LB_SERVER_SIDE];
    let wcfg = WorkerConfig {
        id: 0,
        workers: 1,
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
        seed: 0x5eed,
        timeouts: Timeouts::dpvs(),
        neigh_capacity: 64,
    };
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let worker = Worker::new(wcfg, Arc::clone(&fib));
    let wcounters = Arc::clone(worker.counters());
    let counters = backend.counters();

    // Services reach the loop through the control queue.
    let (ctl, ctl_rx) = control_queue(16);
    let cmds = services();
    let n_cmds = cmds.len() as u64;
    for c in cmds {
        ctl.send(Control::Command(Box::new(c)))
            .expect("control queue has room");
    }

    // The loop runs on worker lcore 1; this thread is the client. If it panics, the
    // guard stops the loop before the lab is torn down.
    let guard = StopOnDrop(backend.stop_handle());
    let running = backend
        .launch(worker, ctl_rx, 1)
        .expect("launch the loop on lcore 1");
    assert_eq!(running.lcore(), 1);
    let seen = client(&lab.c, &counters, n_cmds);
    let worker = running.stop().expect("loop ended and closed its ports");
    drop(guard);
    drop(ctl);

    eprintln!(
        "ping: {}\nfirst replies: {:?} {:?} {:?}\nbackend: {counters:#?}\nworker: {wcounters:?}",
        seen.ping,
        seen.plain.first(),
        seen.proxied.first(),
        seen.nat.first()
    );
    // The ping to the balancer's kernel address went through the punt path and the
    // twin, answered once each.
    assert!(seen.ping.contains("3 received"), "ping: {}", seen.ping);
    assert!(!seen.ping.contains("DUP!"), "ping: {}", seen.ping);
    let want_plain = format!("rs={RS} client={LIP}\n");
    let want_proxied = format!("rs={RS} client={CLIENT}\n");
    let bad: Vec<_> = seen.plain.iter().filter(|r| **r != want_plain).collect();
    assert!(
        bad.is_empty(),
        "{} of {N} plain replies wrong: {:?}",
        bad.len(),
        bad.first()
    );
    let bad: Vec<_> = seen
        .proxied
        .iter()
        .filter(|r| **r != want_proxied)
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {N} PROXY replies wrong: {:?}",
        bad.len(),
        bad.first()
    );
    // NAT mode: the server sees the client itself and answers through the balancer.
    let bad: Vec<_> = seen.nat.iter().filter(|r| **r != want_proxied).collect();
    assert!(
        bad.is_empty(),
        "{} of {N} NAT replies wrong: {:?}",
        bad.len(),
        bad.first()
    );
    assert_eq!(seen.nat.len(), N);

    let p0 = &counters.ports[0];
    let p1 = &counters.ports[1];
    // Punted: the client's ARP for 10.0.0.1 and the three echo requests at least.
    assert!(p0.twin_tx.get() >= 4, "twin tx {}", p0.twin_tx.get());
    // The kernel's ARP reply and three echo replies left through port 0.
    assert!(p0.twin_rx.get() >= 4, "twin rx {}", p0.twin_rx.get());
    // 3N connections: at least SYN, ACK, request, FIN, ACK from the client and SYN-ACK,
    // response, FIN from the server.
    let segs = 3 * N as u64 * 5;
    let back = 3 * N as u64 * 3;
    assert!(p0.rx_packets.get() >= segs, "p0 rx {}", p0.rx_packets.get());
    assert!(p1.tx_packets.get() >= segs, "p1 tx {}", p1.tx_packets.get());
    assert!(p1.rx_packets.get() >= back, "p1 rx {}", p1.rx_packets.get());
    assert!(p0.tx_packets.get() >= back, "p0 tx {}", p0.tx_packets.get());
    assert!(p0.rx_bytes.get() > p0.rx_packets.get() * 42);
    assert_eq!(p0.tx_full.get() + p1.tx_full.get(), 0);
    let l = &counters.lcore;
    // The real server was resolved by the worker's own ARP request, the first SYN held
    // meanwhile (the client was learned from its request for the VIP).
    assert!(
        l.arp_requests.get() >= 1,
        "arp requests {}",
        l.arp_requests.get()
    );
    assert!(
        l.pending_sent.get() >= 1,
        "pending sent {}",
        l.pending_sent.get()
    );
    assert_eq!(l.pending_dropped.get(), 0);
    assert_eq!(l.control_applied.get(), n_cmds);
    assert_eq!(l.control_errors.get(), 0);
    // Idle spells between the requests put the loop to sleep, and it kept serving.
    assert!(l.idle_sleeps.get() > 0, "no idle sleep taken");
    assert_eq!(
        l.multi_segment.get() + l.bad_bounds.get() + l.bad_port.get(),
        0
    );
    assert!(wcounters.forwarded.get() >= segs + back);
    assert_eq!(worker.services().len(), 3);
}
