//! Shared set-up of the benchmarks and the callgrind example: a worker with one FullNAT
//! service and frame builders.
#![allow(dead_code)]

use dataplane::conn::Timeouts;
use dataplane::fib::{Fib, FibHandle, NextHop, Prefix, Route};
use dataplane::sched::SchedKind;
use dataplane::service::{
    ClientAddr, Command, Forward, RealServerConfig, ServiceConfig, ServiceKey,
};
use dataplane::worker::{Action, Frame, PortConfig, Worker, WorkerConfig};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

pub const MAC_P0: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_P1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const MAC_GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
pub const VIP: [u8; 4] = [100, 96, 122, 210];
pub const LIP: [u8; 4] = [192, 168, 7, 188];
pub const HEADROOM: usize = 64;

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for w in data.chunks(2) {
        sum += u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + TCP frame with correct checksums.
pub fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_P0);
    f.extend_from_slice(&MAC_GW);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (40 + payload.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0x72, 0x10, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    let mut s = 0u32;
    for w in pseudo.chunks(2) {
        s += u32::from(w[0]) << 8 | u32::from(w[1]);
    }
    let c = csum(&t, s);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&t);
    f
}

/// A worker with a FullNAT TCP service on VIP:80 and `servers` real servers.
pub fn worker(conn_capacity: u32, servers: u8, sched: SchedKind) -> Worker {
    let routes = vec![
        Route {
            prefix: Prefix::new(Ipv4Addr::UNSPECIFIED, 0).expect("p"),
            nexthops: vec![NextHop {
                gateway: Some(Ipv4Addr::new(10, 0, 0, 254)),
                port: 0,
            }],
        },
        Route {
            prefix: Prefix::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("p"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 1,
            }],
        },
    ];
    let fib = Arc::new(FibHandle::new(Fib::build(&routes).expect("fib")));
    let cfg = WorkerConfig {
        id: 0,
        workers: 1,
        ports: vec![
            PortConfig {
                mac: MAC_P0,
                addrs: vec![Ipv4Addr::new(10, 0, 0, 1)],
                mtu: 1500,
            },
            PortConfig {
                mac: MAC_P1,
                addrs: vec![Ipv4Addr::new(192, 168, 7, 1)],
                mtu: 1500,
            },
        ],
        conn_capacity,
        seed: 1,
        timeouts: Timeouts::dpvs(),
        neigh_capacity: 1024,
    };
    let mut w = Worker::new(cfg, fib);
    let svc = ServiceKey::new(6, Ipv4Addr::from(VIP), 80);
    let lips: Vec<Ipv4Addr> = (0..64).map(|i| Ipv4Addr::new(192, 168, 8, i)).collect();
    let scfg = ServiceConfig {
        scheduler: sched,
        client_addr: ClientAddr::Toa,
        local_addrs: lips,
        ..Default::default()
    };
    w.apply(Command::AddService(svc, scfg.clone(), Arc::default()))
        .expect("svc");
    // The same servers behind a SYN-proxied service on port 443.
    let svc443 = ServiceKey::new(6, Ipv4Addr::from(VIP), 443);
    let proxied = ServiceConfig {
        syn_proxy: true,
        client_addr: ClientAddr::None,
        ..scfg
    };
    w.apply(Command::AddService(svc443, proxied, Arc::default()))
        .expect("svc443");
    for i in 0..servers {
        let mut rs = RealServerConfig::new(Ipv4Addr::new(192, 168, 7, 10 + i), 443, 1);
        rs.forward = Forward::FullNat;
        w.apply(Command::AddServer(svc443, rs, Arc::default()))
            .expect("rs443");
    }
    for i in 0..servers {
        let a = Ipv4Addr::new(192, 168, 7, 10 + i);
        let mut rs = RealServerConfig::new(a, 80, 1);
        rs.forward = Forward::FullNat;
        w.apply(Command::AddServer(svc, rs, Arc::default()))
            .expect("rs");
        w.learn_neighbor(a, [0x02, 0, 0, 0, 1, i], Duration::ZERO);
    }
    w.learn_neighbor(Ipv4Addr::new(10, 0, 0, 254), MAC_GW, Duration::ZERO);
    w
}

/// Opens an established connection from `client:cport` and returns the client's data
/// frame for it.
pub fn established(w: &mut Worker, client: [u8; 4], cport: u16) -> Vec<u8> {
    let now = Duration::from_secs(1);
    for flags in [0x02u8, 0x10] {
        let f = tcp_frame(client, VIP, cport, 80, flags, &[]);
        let mut buf = vec![0u8; HEADROOM + f.len() + 64];
        buf[HEADROOM..HEADROOM + f.len()].copy_from_slice(&f);
        let mut fr = Frame::new(&mut buf, HEADROOM, f.len(), 0).expect("frame");
        let a = w.process_one(now, &mut fr);
        assert!(matches!(a, Action::Forward { .. }), "{a:?}");
    }
    tcp_frame(client, VIP, cport, 80, 0x18, &[0u8; 6])
}

/// Processes `bufs` (each holding `tmpl` after refilling) as one burst.
pub fn burst(
    w: &mut Worker,
    now: Duration,
    bufs: &mut [Vec<u8>],
    tmpl: &[u8],
    actions: &mut [Action],
) {
    burst_csum(w, now, bufs, tmpl, actions, false);
}

/// [`burst`] with every frame's `ip_csum_ok` set to `ip_csum_ok` (true: as if the NIC
/// had verified the IPv4 header checksums; false: verified in software).
#[allow(dead_code)]
pub fn burst_csum(
    w: &mut Worker,
    now: Duration,
    bufs: &mut [Vec<u8>],
    tmpl: &[u8],
    actions: &mut [Action],
    ip_csum_ok: bool,
) {
    let mut frames: Vec<Frame<'_>> = bufs
        .iter_mut()
        .map(|b| {
            b[HEADROOM..HEADROOM + tmpl.len()].copy_from_slice(tmpl);
            let mut f = Frame::new(b, HEADROOM, tmpl.len(), 0).expect("frame");
            f.ip_csum_ok = ip_csum_ok;
            f
        })
        .collect();
    w.process(now, &mut frames, actions);
}
