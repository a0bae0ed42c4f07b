//! The forwarding side of the benchmark (docs/dpdk.md): the DPDK backend with one
//! FullNAT service (VIP 10.0.0.100:80 → 192.168.7.27:80, local address 192.168.7.188)
//! between two `net_af_packet` ports, for SECONDS; prints the rate measured between
//! second 5 and second 5 + SECONDS (after the generator's SYN phase).
//!
//! Usage: `dpdk_fwd CLIENT_IF SERVER_IF RS_MAC SECONDS -- EAL...` (EAL arguments such as
//! `--no-huge -m 512 --no-pci --file-prefix fwd -l 0`; the vdevs are added).

use dataplane::conn::Timeouts;
use dataplane::dpdk::{control_queue, Backend, BackendConfig, PortSpec};
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::flow::PROTO_TCP;
use dataplane::sched::SchedKind;
use dataplane::service::{Command, RealServerConfig, ServiceConfig, ServiceKey};
use dataplane::worker::{DropReason, PortConfig, Worker, WorkerConfig};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time before the measurement starts (the generator's SYN phase ends within it).
const WARMUP: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .ok_or("missing -- EAL args")?;
    let [cif, sif, mac, secs] = args.get(1..split).ok_or("usage")? else {
        return Err("usage: dpdk_fwd CLIENT_IF SERVER_IF RS_MAC SECONDS -- EAL...".into());
    };
    let rs_mac: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    let rs_mac: [u8; 6] = rs_mac.try_into().map_err(|_| "bad MAC")?;
    let secs: u64 = secs.parse()?;
    let port = |i: usize, iface: &str| PortSpec {
        device: format!("net_af_packet{i}"),
        devargs: Some(format!("iface={iface}")),
        twin: None,
    };
    let cfg = BackendConfig {
        eal_args: args.iter().skip(split + 1).cloned().collect(),
        plugins: vec!["net_af_packet".into()],
        ports: vec![port(0, cif), port(1, sif)],
        ..Default::default()
    };
    let backend = Backend::new(&cfg)?;
    let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 7, 1)];
    let wcfg = WorkerConfig {
        id: 0,
        workers: 1,
        ports: backend
            .port_macs()
            .into_iter()
            .zip(addrs)
            .map(|(mac, a)| PortConfig {
                mac,
                addrs: vec![a],
                mtu: 1500,
            })
            .collect(),
        conn_capacity: 1 << 16,
        seed: 1,
        timeouts: Timeouts::dpvs(),
        neigh_capacity: 64,
    };
    let direct = |net: Ipv4Addr, port| -> Result<Route, Box<dyn std::error::Error>> {
        Ok(Route {
            prefix: Prefix::new(net, 24).ok_or("prefix")?,
            nexthops: vec![NextHop {
                gateway: None,
                port,
            }],
        })
    };
    let routes = [
        direct(Ipv4Addr::new(10, 0, 0, 0), 0)?,
        direct(Ipv4Addr::new(192, 168, 7, 0), 1)?,
    ];
    let fib = Arc::new(FibHandle::new(Fib::build(&routes)?));
    let mut worker = Worker::new(wcfg, fib);
    let key = ServiceKey::new(PROTO_TCP, Ipv4Addr::new(10, 0, 0, 100), 80);
    let svc = ServiceConfig {
        scheduler: SchedKind::Rr,
        local_addrs: vec![Ipv4Addr::new(192, 168, 7, 188)],
        ..Default::default()
    };
    worker.apply(Command::AddService(key, svc, Arc::default()))?;
    let rs = RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 27), 80, 1);
    worker.apply(Command::AddServer(key, rs, Arc::default()))?;
    worker.learn_neighbor(Ipv4Addr::new(192, 168, 7, 27), rs_mac, Duration::ZERO);
    let counters = backend.counters();
    let wc = Arc::clone(worker.counters());
    let stop = backend.stop_handle();
    let (_ctl, ctl_rx) = control_queue(4);
    let c = Arc::clone(&counters);
    let timer = std::thread::spawn(move || {
        std::thread::sleep(WARMUP);
        let (rx0, tx0, t0) = (
            c.ports[0].rx_packets.get(),
            c.ports[1].tx_packets.get(),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs(secs));
        let (rx1, tx1, el) = (
            c.ports[0].rx_packets.get(),
            c.ports[1].tx_packets.get(),
            t0.elapsed(),
        );
        stop.stop();
        let s = el.as_secs_f64();
        (((rx1 - rx0) as f64 / s), ((tx1 - tx0) as f64 / s))
    });
    backend.run(worker, ctl_rx)?;
    let (rx_pps, tx_pps) = timer.join().map_err(|_| "timer thread")?;
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| wc.drop_count(**r) > 0)
        .map(|r| format!("{}={}", r.name(), wc.drop_count(*r)))
        .collect();
    println!(
        "fwd rx={rx_pps:.0}pps fwd={tx_pps:.0}pps imissed={} tx_full={} worker_rx={} forwarded={} drops: {}",
        counters.ports[0].imissed.get(),
        counters.ports[1].tx_full.get(),
        wc.rx.get(),
        wc.forwarded.get(),
        drops.join(" ")
    );
    Ok(())
}
