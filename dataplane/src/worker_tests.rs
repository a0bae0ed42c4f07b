//! Packet tests: real frame bytes in, emitted frames compared byte for byte with frames
//! built here independently (own header layout, own non-incremental checksum).

use super::*;
use crate::fib::{NextHop, Prefix, Route};
use crate::sched::SchedKind;
use crate::service::{RealServerConfig, ServiceConfig, ServiceKey, Stats};

const MAC_P0: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_P1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const MAC_RS: [u8; 6] = [0x02, 0, 0, 0, 0, 0x1b];
const MAC_RS2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x1c];
const P0_ADDR: [u8; 4] = [10, 0, 0, 1];
const P1_ADDR: [u8; 4] = [192, 168, 7, 1];
const GW: [u8; 4] = [10, 0, 0, 254];
const VIP: [u8; 4] = [100, 96, 122, 210];
const LIP: [u8; 4] = [192, 168, 7, 188];
const RS: [u8; 4] = [192, 168, 7, 27];
const RS2: [u8; 4] = [192, 168, 7, 28];
const CLIENT: [u8; 4] = [1, 2, 3, 4];
const CPORT: u16 = 40000;
const HEADROOM: usize = 64;

fn s(x: u64) -> Duration {
    Duration::from_secs(x)
}

/// RFC 1071 checksum, written plainly (independent of `wire::checksum`).
fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for p in parts {
        let mut i = 0;
        while i + 1 < p.len() {
            sum += u32::from(p[i]) << 8 | u32::from(p[i + 1]);
            i += 2;
        }
        if i < p.len() {
            sum += u32::from(p[i]) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

struct Ip {
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    ttl: u8,
    id: u16,
    df: bool,
}

fn ip(src: [u8; 4], dst: [u8; 4], proto: u8) -> Ip {
    Ip {
        src,
        dst,
        proto,
        ttl: 64,
        id: 0x1234,
        df: true,
    }
}

fn ip_header(h: &Ip, payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&h.id.to_be_bytes());
    v.extend_from_slice(&(if h.df { 0x4000u16 } else { 0 }).to_be_bytes());
    v.push(h.ttl);
    v.push(h.proto);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&h.src);
    v.extend_from_slice(&h.dst);
    let c = csum(&[&v]);
    v[10..12].copy_from_slice(&c.to_be_bytes());
    v
}

fn l4_with_csum(h: &Ip, mut seg: Vec<u8>, at: usize) -> Vec<u8> {
    let len = (seg.len() as u16).to_be_bytes();
    let pseudo = [&h.src[..], &h.dst[..], &[0, h.proto], &len[..]].concat();
    seg[at] = 0;
    seg[at + 1] = 0;
    let c = csum(&[&pseudo, &seg]);
    seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
    seg
}

#[allow(clippy::too_many_arguments)]
fn tcp_seg(
    h: &Ip,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push((((20 + opts.len()) / 4) << 4) as u8);
    t.push(flags);
    t.extend_from_slice(&29200u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend_from_slice(data);
    l4_with_csum(h, t, 16)
}

fn udp_seg(h: &Ip, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    l4_with_csum(h, u, 6)
}

fn frame(dst: [u8; 6], src: [u8; 6], h: &Ip, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip_header(h, l4.len()));
    f.extend_from_slice(l4);
    f
}

#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    dst: [u8; 6],
    src: [u8; 6],
    h: Ip,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    opts: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let seg = tcp_seg(&h, sport, dport, seq, ack, flags, opts, data);
    frame(dst, src, &h, &seg)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const MSS1460: [u8; 4] = [2, 4, 0x05, 0xb4];

fn toa(port: u16, addr: [u8; 4]) -> Vec<u8> {
    let mut v = vec![254, 8];
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&addr);
    v
}

struct Lab {
    w: Worker,
    svc: ServiceKey,
}

fn routes() -> Vec<Route> {
    vec![
        Route {
            prefix: Prefix::new(Ipv4Addr::UNSPECIFIED, 0).expect("p"),
            nexthops: vec![NextHop {
                gateway: Some(Ipv4Addr::from(GW)),
                port: 0,
            }],
        },
        Route {
            prefix: Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 24).expect("p"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 0,
            }],
        },
        Route {
            prefix: Prefix::new(Ipv4Addr::new(192, 168, 7, 0), 24).expect("p"),
            nexthops: vec![NextHop {
                gateway: None,
                port: 1,
            }],
        },
    ]
}

fn worker_cfg(id: u16, workers: u16, mtu1: u16) -> WorkerConfig {
    WorkerConfig {
        id,
        workers,
        ports: vec![
            PortConfig {
                mac: MAC_P0,
                addrs: vec![Ipv4Addr::from(P0_ADDR)],
                mtu: 1500,
            },
            PortConfig {
                mac: MAC_P1,
                addrs: vec![Ipv4Addr::from(P1_ADDR)],
                mtu: mtu1,
            },
        ],
        conn_capacity: 1024,
        seed: 7,
        timeouts: Timeouts::dpvs(),
        neigh_capacity: 64,
    }
}

fn lab_with(
    fwd: Forward,
    client_addr: ClientAddr,
    sched: SchedKind,
    servers: &[([u8; 4], u32)],
    mtu1: u16,
) -> Lab {
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let mut w = Worker::new(worker_cfg(0, 1, mtu1), fib);
    let svc = ServiceKey::new(PROTO_TCP, Ipv4Addr::from(VIP), 80);
    let cfg = ServiceConfig {
        scheduler: sched,
        client_addr,
        local_addrs: vec![Ipv4Addr::from(LIP)],
        ..Default::default()
    };
    w.apply(Command::AddService(svc, cfg.clone(), Arc::default()))
        .expect("svc");
    let usvc = ServiceKey::new(PROTO_UDP, Ipv4Addr::from(VIP), 53);
    w.apply(Command::AddService(usvc, cfg, Arc::default()))
        .expect("udp svc");
    for (a, wt) in servers {
        let mut rs = RealServerConfig::new(Ipv4Addr::from(*a), 80, *wt);
        rs.forward = fwd;
        w.apply(Command::AddServer(svc, rs, Arc::new(Stats::default())))
            .expect("rs");
        rs.port = 53;
        w.apply(Command::AddServer(usvc, rs, Arc::default()))
            .expect("urs");
    }
    w.learn_neighbor(Ipv4Addr::from(GW), MAC_GW, Duration::ZERO);
    w.learn_neighbor(Ipv4Addr::from(RS), MAC_RS, Duration::ZERO);
    w.learn_neighbor(Ipv4Addr::from(RS2), MAC_RS2, Duration::ZERO);
    Lab { w, svc }
}

fn lab(fwd: Forward, client_addr: ClientAddr) -> Lab {
    lab_with(fwd, client_addr, SchedKind::Rr, &[(RS, 1)], 1500)
}

/// Runs one frame through the worker on `port`; returns the action and the bytes.
fn run(w: &mut Worker, now: Duration, port: u16, bytes: &[u8]) -> (Action, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + bytes.len() + 64];
    buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
    let mut f = Frame::new(&mut buf, HEADROOM, bytes.len(), port).expect("frame");
    let a = w.process_one(now, &mut f);
    (a, f.data().to_vec())
}

fn assert_frame(got: &[u8], want: &[u8]) {
    if got != want {
        panic!("frames differ\n got: {:02x?}\nwant: {:02x?}", got, want);
    }
}

fn verify_checksums(f: &[u8]) {
    let ihl = usize::from(f[14] & 0x0f) * 4;
    assert_eq!(csum(&[&f[14..14 + ihl]]), 0, "ip checksum");
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let l4 = &f[14 + ihl..14 + total];
    let len = (l4.len() as u16).to_be_bytes();
    let pseudo = [&f[26..30], &f[30..34], &[0, f[23]], &len[..]].concat();
    if f[23] == 6 || f[23] == 17 {
        assert_eq!(csum(&[&pseudo, l4]), 0, "l4 checksum");
    }
}

#[test]
fn fullnat_tcp_connection_with_toa_byte_for_byte() {
    let mut lab = lab(Forward::FullNat, ClientAddr::Toa);
    let w = &mut lab.w;
    let lport = 1025u16;
    // 1. SYN client -> VIP
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(1), 0, &syn);
    assert_eq!(a, Action::Forward { port: 1 });
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        ip(LIP, RS, 6),
        lport,
        80,
        1000,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    assert_frame(&out, &want);
    verify_checksums(&out);
    // 2. SYN-ACK RS -> LIP: MSS lowered by 8 for TOA.
    let synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5000,
        1001,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(1), 1, &synack);
    assert_eq!(a, Action::Forward { port: 0 });
    let want = tcp_frame(
        MAC_GW,
        MAC_P0,
        ip(VIP, CLIENT, 6),
        80,
        CPORT,
        5000,
        1001,
        SYN | ACK,
        &[2, 4, 0x05, 0xac],
        &[],
    );
    assert_frame(&out, &want);
    // 3. ACK: TOA inserted.
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        ACK,
        &[],
        &[],
    );
    let (a, out) = run(w, s(1), 0, &ack);
    assert_eq!(a, Action::Forward { port: 1 });
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        ip(LIP, RS, 6),
        lport,
        80,
        1001,
        5001,
        ACK,
        &toa(CPORT, CLIENT),
        &[],
    );
    assert_frame(&out, &want);
    let (id, _) = w
        .conns()
        .lookup(&FlowKey::new(
            6,
            Ipv4Addr::from(CLIENT),
            CPORT,
            Ipv4Addr::from(VIP),
            80,
        ))
        .expect("conn");
    assert_eq!(
        w.conns().get(id).map(|c| c.state()),
        Some(TcpState::Established)
    );
    // 4. Data both ways; no second TOA.
    let get = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    let (_, out) = run(w, s(2), 0, &get);
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        ip(LIP, RS, 6),
        lport,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    assert_frame(&out, &want);
    let resp = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5001,
        1019,
        PSH | ACK,
        &[],
        b"HTTP/1.0 200 OK\r\n\r\n",
    );
    let (_, out) = run(w, s(2), 1, &resp);
    let want = tcp_frame(
        MAC_GW,
        MAC_P0,
        ip(VIP, CLIENT, 6),
        80,
        CPORT,
        5001,
        1019,
        PSH | ACK,
        &[],
        b"HTTP/1.0 200 OK\r\n\r\n",
    );
    assert_frame(&out, &want);
    verify_checksums(&out);
    // 5. Close: server FIN, client FIN+ACK, server ACK.
    let fin = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5020,
        1019,
        FIN | ACK,
        &[],
        &[],
    );
    assert_eq!(run(w, s(3), 1, &fin).0, Action::Forward { port: 0 });
    let fin2 = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1019,
        5021,
        FIN | ACK,
        &[],
        &[],
    );
    let (_, out) = run(w, s(3), 0, &fin2);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            1019,
            5021,
            FIN | ACK,
            &[],
            &[],
        ),
    );
    assert_eq!(
        w.conns().get(id).map(|c| c.state()),
        Some(TcpState::TimeWait)
    );
    let svc = w.services().by_key(lab.svc).expect("svc");
    let rs = svc.servers()[0];
    assert_eq!((rs.active, rs.inactive), (0, 1));
    let st = svc.rs_stats(rs.id).expect("stats");
    assert_eq!(
        (st.pkts_in.get(), st.pkts_out.get(), st.conns.get()),
        (4, 3, 1)
    );
    // TIME_WAIT lasts 7 s; the local port goes back to the pool.
    assert_eq!(w.tick(s(9), |_| {}), 0);
    assert_eq!(w.tick(s(11), |_| {}), 1);
    assert!(w.conns().is_empty());
    let svc = w.services().by_key(lab.svc).expect("svc");
    assert_eq!(svc.servers()[0].inactive, 0);
    let c = w.counters();
    assert_eq!(c.rx.get(), 7);
    assert_eq!(c.forwarded.get(), 7);
}

fn proxy_v2(client: [u8; 4], cport: u16, vip: [u8; 4], vport: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
    v.extend_from_slice(&client);
    v.extend_from_slice(&vip);
    v.extend_from_slice(&cport.to_be_bytes());
    v.extend_from_slice(&vport.to_be_bytes());
    v
}

#[test]
fn fullnat_tcp_connection_with_proxy_v2_byte_for_byte() {
    let mut lab = lab(Forward::FullNat, ClientAddr::ProxyV2);
    let w = &mut lab.w;
    let lport = 1025u16;
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    assert_frame(
        &run(w, s(1), 0, &syn).1,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            1000,
            0,
            SYN,
            &MSS1460,
            &[],
        ),
    );
    let synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5000,
        1001,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    assert_frame(
        &run(w, s(1), 1, &synack).1,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            5000,
            1001,
            SYN | ACK,
            &MSS1460,
            &[],
        ),
    );
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        ACK,
        &[],
        &[],
    );
    assert_frame(
        &run(w, s(1), 0, &ack).1,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            1001,
            5001,
            ACK,
            &[],
            &[],
        ),
    );
    // First data: the header goes in front, same sequence number.
    let get = b"GET / HTTP/1.0\r\n\r\n";
    let hdr = proxy_v2(CLIENT, CPORT, VIP, 80);
    assert_eq!(hdr.len(), 28);
    let data = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        get,
    );
    let (a, out) = run(w, s(2), 0, &data);
    assert_eq!(a, Action::Forward { port: 1 });
    let with_hdr = [hdr.clone(), get.to_vec()].concat();
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            1001,
            5001,
            PSH | ACK,
            &[],
            &with_hdr,
        ),
    );
    verify_checksums(&out);
    // A retransmission of it carries the header again.
    let (_, out) = run(w, s(2), 0, &data);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            1001,
            5001,
            PSH | ACK,
            &[],
            &with_hdr,
        ),
    );
    // The server acknowledges header + data; the client sees only its data acknowledged,
    // SACK edges included.
    let ack_srv = 1001 + 28 + get.len() as u32;
    let sack = |a: u32, b: u32| {
        [
            [1u8, 1, 5, 10].to_vec(),
            a.to_be_bytes().to_vec(),
            b.to_be_bytes().to_vec(),
        ]
        .concat()
    };
    let resp = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5001,
        ack_srv,
        PSH | ACK,
        &sack(ack_srv + 5, ack_srv + 9),
        b"HTTP/1.0 200 OK\r\n\r\n",
    );
    let (_, out) = run(w, s(2), 1, &resp);
    let ack_cli = 1001 + get.len() as u32;
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            5001,
            ack_cli,
            PSH | ACK,
            &sack(ack_cli + 5, ack_cli + 9),
            b"HTTP/1.0 200 OK\r\n\r\n",
        ),
    );
    // Later client segments are shifted by the header length.
    let fin = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        ack_cli,
        5020,
        FIN | ACK,
        &[],
        &[],
    );
    let (_, out) = run(w, s(3), 0, &fin);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            lport,
            80,
            ack_srv,
            5020,
            FIN | ACK,
            &[],
            &[],
        ),
    );
    let fin2 = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        lport,
        5020,
        ack_srv + 1,
        FIN | ACK,
        &[],
        &[],
    );
    let (_, out) = run(w, s(3), 1, &fin2);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            5020,
            ack_cli + 1,
            FIN | ACK,
            &[],
            &[],
        ),
    );
    let (id, _) = w
        .conns()
        .lookup(&FlowKey::new(
            6,
            Ipv4Addr::from(CLIENT),
            CPORT,
            Ipv4Addr::from(VIP),
            80,
        ))
        .expect("c");
    assert_eq!(
        w.conns().get(id).map(|c| c.state()),
        Some(TcpState::TimeWait)
    );
}

#[test]
fn proxy_v1_header_text() {
    let mut lab = lab(Forward::FullNat, ClientAddr::ProxyV1);
    let w = &mut lab.w;
    for (fl, seq, ack) in [(SYN, 1000u32, 0u32), (ACK, 1001, 5001)] {
        let f = tcp_frame(
            MAC_P0,
            MAC_GW,
            ip(CLIENT, VIP, 6),
            CPORT,
            80,
            seq,
            ack,
            fl,
            &[],
            &[],
        );
        run(w, s(1), 0, &f);
    }
    let data = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"hi",
    );
    let (_, out) = run(w, s(1), 0, &data);
    let text = b"PROXY TCP4 1.2.3.4 100.96.122.210 40000 80\r\nhi";
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            1025,
            80,
            1001,
            5001,
            PSH | ACK,
            &[],
            text,
        ),
    );
}

#[test]
fn nat_mode_rewrites_destination_and_reply_source() {
    let mut lab = lab(Forward::Nat, ClientAddr::None);
    let w = &mut lab.w;
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        7,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(1), 0, &syn);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(CLIENT, RS, 6),
            CPORT,
            80,
            7,
            0,
            SYN,
            &MSS1460,
            &[],
        ),
    );
    let synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, CLIENT, 6),
        80,
        CPORT,
        90,
        8,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(1), 1, &synack);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            90,
            8,
            SYN | ACK,
            &MSS1460,
            &[],
        ),
    );
}

#[test]
fn dr_mode_changes_only_macs() {
    let mut lab = lab(Forward::Dr, ClientAddr::None);
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        7,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    let (a, out) = run(&mut lab.w, s(1), 0, &syn);
    assert_eq!(a, Action::Forward { port: 1 });
    let mut want = syn.clone();
    want[0..6].copy_from_slice(&MAC_RS);
    want[6..12].copy_from_slice(&MAC_P1);
    assert_frame(&out, &want);
    // Client ACK (input only): established.
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        8,
        1,
        ACK,
        &[],
        &[],
    );
    assert_eq!(
        run(&mut lab.w, s(1), 0, &ack).0,
        Action::Forward { port: 1 }
    );
    let (id, _) = lab
        .w
        .conns()
        .lookup(&FlowKey::new(
            6,
            Ipv4Addr::from(CLIENT),
            CPORT,
            Ipv4Addr::from(VIP),
            80,
        ))
        .expect("c");
    assert_eq!(
        lab.w.conns().get(id).map(|c| c.state()),
        Some(TcpState::Established)
    );
}

#[test]
fn tun_mode_encapsulates_and_clamps_mss() {
    let mut lab = lab_with(
        Forward::Tun,
        ClientAddr::None,
        SchedKind::Rr,
        &[(RS, 1)],
        1400,
    );
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        7,
        0,
        SYN,
        &MSS1460,
        &[],
    );
    let (a, out) = run(&mut lab.w, s(1), 0, &syn);
    assert_eq!(a, Action::Forward { port: 1 });
    // Inner: MSS 1460 -> 1400 - 60 = 1340 (0x053c), TTL unchanged.
    let inner_seg = tcp_seg(
        &ip(CLIENT, VIP, 6),
        CPORT,
        80,
        7,
        0,
        SYN,
        &[2, 4, 0x05, 0x3c],
        &[],
    );
    let inner = [ip_header(&ip(CLIENT, VIP, 6), inner_seg.len()), inner_seg].concat();
    let outer = Ip {
        src: P1_ADDR,
        dst: RS,
        proto: 4,
        ttl: 64,
        id: 0,
        df: true,
    };
    let want = frame(MAC_RS, MAC_P1, &outer, &inner);
    assert_frame(&out, &want);
    // Too big for the tunnel: dropped and counted.
    let big = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        8,
        1,
        ACK,
        &[],
        &[0u8; 1370],
    );
    assert_eq!(
        run(&mut lab.w, s(1), 0, &big).0,
        Action::Drop(DropReason::NoRoom)
    );
    assert_eq!(lab.w.counters().drop_count(DropReason::NoRoom), 1);
}

#[test]
fn udp_fullnat_both_ways() {
    let mut lab = lab(Forward::FullNat, ClientAddr::Toa);
    let q = frame(
        MAC_P0,
        MAC_GW,
        &ip(CLIENT, VIP, 17),
        &udp_seg(&ip(CLIENT, VIP, 17), 5353, 53, b"query"),
    );
    let (a, out) = run(&mut lab.w, s(1), 0, &q);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_frame(
        &out,
        &frame(
            MAC_RS,
            MAC_P1,
            &ip(LIP, RS, 17),
            &udp_seg(&ip(LIP, RS, 17), 1025, 53, b"query"),
        ),
    );
    let r = frame(
        MAC_P1,
        MAC_RS,
        &ip(RS, LIP, 17),
        &udp_seg(&ip(RS, LIP, 17), 53, 1025, b"answer"),
    );
    let (a, out) = run(&mut lab.w, s(1), 1, &r);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_frame(
        &out,
        &frame(
            MAC_GW,
            MAC_P0,
            &ip(VIP, CLIENT, 17),
            &udp_seg(&ip(VIP, CLIENT, 17), 53, 5353, b"answer"),
        ),
    );
    // UDP timeout 300 s.
    assert_eq!(lab.w.tick(s(300), |_| {}), 0);
    assert_eq!(lab.w.tick(s(302), |_| {}), 1);
}

fn icmp_msg(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let c = csum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

#[test]
fn icmp_echo_on_vip_is_answered() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let req = frame(
        MAC_P0,
        MAC_GW,
        &Ip {
            ttl: 50,
            ..ip(CLIENT, VIP, 1)
        },
        &icmp_msg(8, 0, [0, 1, 0, 9], b"ping"),
    );
    let (a, out) = run(&mut lab.w, s(1), 0, &req);
    assert_eq!(a, Action::Reply { port: 0 });
    let want = frame(
        MAC_GW,
        MAC_P0,
        &ip(VIP, CLIENT, 1),
        &icmp_msg(0, 0, [0, 1, 0, 9], b"ping"),
    );
    assert_frame(&out, &want);
}

#[test]
fn icmp_frag_needed_is_translated_back_to_the_client() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &[],
        &[],
    );
    run(w, s(1), 0, &syn);
    // A router on the server side quotes the packet we sent (LIP:1025 -> RS:80).
    let sent_h = ip(LIP, RS, 6);
    let sent_seg = tcp_seg(&sent_h, 1025, 80, 1000, 0, SYN, &[], &[]);
    let quote = [ip_header(&sent_h, sent_seg.len()), sent_seg[..8].to_vec()].concat();
    let router = [192, 168, 7, 254];
    let err = frame(
        MAC_P1,
        MAC_RS,
        &ip(router, LIP, 1),
        &icmp_msg(3, 4, [0, 0, 0x05, 0x78], &quote),
    );
    let (a, out) = run(w, s(1), 1, &err);
    assert_eq!(a, Action::Forward { port: 0 });
    // The client sees an error from the VIP quoting its own packet (CLIENT -> VIP).
    let orig_h = ip(CLIENT, VIP, 6);
    let orig_seg = tcp_seg(&orig_h, CPORT, 80, 1000, 0, SYN, &[], &[]);
    let want_quote = [ip_header(&orig_h, orig_seg.len()), orig_seg[..8].to_vec()].concat();
    let want = frame(
        MAC_GW,
        MAC_P0,
        &ip(VIP, CLIENT, 1),
        &icmp_msg(3, 4, [0, 0, 0x05, 0x78], &want_quote),
    );
    assert_frame(&out, &want);
    // An error quoting an unknown flow is dropped and counted.
    let bogus_seg = tcp_seg(&sent_h, 9999, 80, 1, 0, SYN, &[], &[]);
    let bq = [ip_header(&sent_h, bogus_seg.len()), bogus_seg[..8].to_vec()].concat();
    let err2 = frame(
        MAC_P1,
        MAC_RS,
        &ip(router, LIP, 1),
        &icmp_msg(3, 4, [0, 0, 5, 0x78], &bq),
    );
    assert_eq!(
        run(w, s(1), 1, &err2).0,
        Action::Drop(DropReason::IcmpNoConnection)
    );
}

#[test]
fn transit_forwarding_and_time_exceeded() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let h = Ip {
        ttl: 9,
        ..ip(RS, [8, 8, 8, 8], 17)
    };
    let pkt = frame(MAC_P1, MAC_RS, &h, &udp_seg(&h, 1, 2, b"x"));
    let (a, out) = run(w, s(1), 1, &pkt);
    assert_eq!(a, Action::Forward { port: 0 });
    let h2 = Ip {
        ttl: 8,
        ..ip(RS, [8, 8, 8, 8], 17)
    };
    assert_frame(&out, &frame(MAC_GW, MAC_P0, &h2, &udp_seg(&h2, 1, 2, b"x")));
    // TTL 1: time exceeded from the input port's address, quoting header + 8 bytes.
    let h1 = Ip {
        ttl: 1,
        ..ip(RS, [8, 8, 8, 8], 17)
    };
    let seg = udp_seg(&h1, 1, 2, b"xyz");
    let pkt = frame(MAC_P1, MAC_RS, &h1, &seg);
    let (a, out) = run(w, s(1), 1, &pkt);
    assert_eq!(a, Action::Reply { port: 1 });
    let quote = [ip_header(&h1, seg.len()), seg[..8].to_vec()].concat();
    let want = frame(
        MAC_RS,
        MAC_P1,
        &Ip {
            id: 0,
            df: false,
            ..ip(P1_ADDR, RS, 1)
        },
        &icmp_msg(11, 0, [0; 4], &quote),
    );
    assert_frame(&out, &want);
    // Kernel-owned address: punted untouched.
    let h = ip(CLIENT, P0_ADDR, 6);
    let p = tcp_frame(MAC_P0, MAC_GW, h, 5, 22, 1, 0, SYN, &[], &[]);
    let (a, out) = run(w, s(1), 0, &p);
    assert_eq!(a, Action::Punt);
    assert_frame(&out, &p);
}

fn arp_frame(
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
    dst: [u8; 6],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa);
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa);
    f
}

#[test]
fn arp_answers_for_vip_and_local_addresses_and_punts_kernel_ones() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let asker = [0x02, 0, 0, 0, 0, 0x77];
    let req = arp_frame(1, asker, [10, 0, 0, 9], [0; 6], VIP, [0xff; 6]);
    let (a, out) = run(w, s(1), 0, &req);
    assert_eq!(a, Action::Reply { port: 0 });
    assert_frame(
        &out,
        &arp_frame(2, MAC_P0, VIP, asker, [10, 0, 0, 9], asker),
    );
    // It learned the asker.
    let h = ip(VIP, [10, 0, 0, 9], 17);
    assert_eq!(
        w.neigh.mac(u32::from(Ipv4Addr::new(10, 0, 0, 9))),
        Some(asker)
    );
    let _ = h;
    let req = arp_frame(1, MAC_RS, RS, [0; 6], LIP, [0xff; 6]);
    let (a, out) = run(w, s(1), 1, &req);
    assert_eq!(a, Action::Reply { port: 1 });
    assert_frame(&out, &arp_frame(2, MAC_P1, LIP, MAC_RS, RS, MAC_RS));
    let req = arp_frame(1, asker, [10, 0, 0, 9], [0; 6], P0_ADDR, [0xff; 6]);
    assert_eq!(run(w, s(1), 0, &req).0, Action::Punt);
    let req = arp_frame(1, asker, [10, 0, 0, 9], [0; 6], [10, 0, 0, 77], [0xff; 6]);
    assert_eq!(
        run(w, s(1), 0, &req).0,
        Action::Drop(DropReason::ArpIgnored)
    );
    assert_eq!(
        run(w, s(1), 0, &req[..20]).0,
        Action::Drop(DropReason::Malformed)
    );
}

#[test]
fn unresolved_neighbor_holds_the_frame_until_arp_reply() {
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let mut w = Worker::new(worker_cfg(0, 1, 1500), fib);
    let h = ip(RS, [8, 8, 8, 8], 17);
    let pkt = frame(MAC_P1, MAC_RS, &h, &udp_seg(&h, 1, 2, b"x"));
    let mut buf = pkt.clone();
    let mut f = Frame::new(&mut buf, 0, pkt.len(), 1).expect("f");
    f.ticket = 42;
    let a = w.process_one(s(1), &mut f);
    assert_eq!(
        a,
        Action::Pending {
            port: 0,
            neighbor: Ipv4Addr::from(GW),
            request: true
        }
    );
    let mut req = [0u8; 64];
    let n = w.arp_request(0, Ipv4Addr::from(GW), &mut req).expect("arp");
    assert_frame(
        &req[..n],
        &arp_frame(1, MAC_P0, P0_ADDR, [0; 6], GW, [0xff; 6]),
    );
    let reply = arp_frame(2, MAC_GW, GW, MAC_P0, P0_ADDR, MAC_P0);
    assert_eq!(
        run(&mut w, s(1), 0, &reply).0,
        Action::Punt,
        "the kernel learns too"
    );
    let mut got = Vec::new();
    w.drain_released(|t, p, m| got.push((t, p, m)));
    assert_eq!(got, vec![(42, 0, MAC_GW)]);
}

#[test]
fn time_wait_reuse_and_weight_zero_drain() {
    let mut lab = lab_with(
        Forward::FullNat,
        ClientAddr::None,
        SchedKind::Rr,
        &[(RS, 1), (RS2, 1)],
        1500,
    );
    let w = &mut lab.w;
    let key = FlowKey::new(6, Ipv4Addr::from(CLIENT), CPORT, Ipv4Addr::from(VIP), 80);
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1,
        0,
        SYN,
        &[],
        &[],
    );
    let (_, out) = run(w, s(1), 0, &syn);
    assert_eq!(&out[30..34], &RS);
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        2,
        1,
        ACK,
        &[],
        &[],
    );
    run(w, s(1), 0, &ack);
    let rst = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        2,
        0,
        0x04,
        &[],
        &[],
    );
    run(w, s(1), 0, &rst);
    let (id, _) = w.conns().lookup(&key).expect("conn");
    assert_eq!(w.conns().get(id).map(|c| c.state()), Some(TcpState::Close));
    // The same tuple opens again: the closed entry is replaced, rr moves to RS2.
    let (a, out) = run(w, s(2), 0, &syn);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(&out[30..34], &RS2);
    assert_eq!(w.conns().len(), 1);
    // Drain RS2 (weight 0): new clients all go to RS; the existing one keeps RS2.
    let mut rs2 = RealServerConfig::new(Ipv4Addr::from(RS2), 80, 0);
    rs2.forward = Forward::FullNat;
    w.apply(Command::EditServer(lab.svc, rs2)).expect("edit");
    for p in 0..4u16 {
        let syn = tcp_frame(
            MAC_P0,
            MAC_GW,
            ip(CLIENT, VIP, 6),
            50000 + p,
            80,
            1,
            0,
            SYN,
            &[],
            &[],
        );
        let (_, out) = run(w, s(3), 0, &syn);
        assert_eq!(&out[30..34], &RS);
    }
    let data = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        2,
        1,
        ACK,
        &[],
        b"x",
    );
    let (a, out) = run(w, s(3), 0, &data);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(&out[30..34], &RS2);
}

#[test]
fn non_syn_and_unknown_ports_are_dropped_with_reasons() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1,
        1,
        ACK,
        &[],
        &[],
    );
    assert_eq!(run(w, s(1), 0, &ack).0, Action::Drop(DropReason::NotSyn));
    let other = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        81,
        1,
        0,
        SYN,
        &[],
        &[],
    );
    assert_eq!(
        run(w, s(1), 0, &other).0,
        Action::Drop(DropReason::NoService)
    );
    let mut bad = ack.clone();
    bad[24] ^= 0xff; // IP checksum
    assert_eq!(
        run(w, s(1), 0, &bad).0,
        Action::Drop(DropReason::BadChecksum)
    );
    let mut alien = ack.clone();
    alien[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    assert_eq!(
        run(w, s(1), 0, &alien).0,
        Action::Drop(DropReason::NotForUs)
    );
    let to_lip = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        3333,
        1,
        1,
        ACK,
        &[],
        &[],
    );
    assert_eq!(
        run(w, s(1), 1, &to_lip).0,
        Action::Drop(DropReason::NoConnection)
    );
    let c = w.counters();
    assert_eq!(c.dropped(), 5);
    assert_eq!(c.rx.get(), 5);
}

#[test]
fn packets_of_other_workers_are_handed_over() {
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let mut ws: Vec<Worker> = (0..2)
        .map(|i| Worker::new(worker_cfg(i, 2, 1500), fib.clone()))
        .collect();
    let svc = ServiceKey::new(PROTO_TCP, Ipv4Addr::from(VIP), 80);
    for w in ws.iter_mut() {
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            local_addrs: vec![Ipv4Addr::from(LIP)],
            ..Default::default()
        };
        w.apply(Command::AddService(svc, cfg, Arc::default()))
            .expect("svc");
        w.apply(Command::AddServer(
            svc,
            RealServerConfig::new(Ipv4Addr::from(RS), 80, 1),
            Arc::default(),
        ))
        .expect("rs");
        w.learn_neighbor(Ipv4Addr::from(RS), MAC_RS, Duration::ZERO);
        w.learn_neighbor(Ipv4Addr::from(GW), MAC_GW, Duration::ZERO);
    }
    let mut handed = 0;
    for p in 0..40u16 {
        let key = FlowKey::new(
            6,
            Ipv4Addr::from(CLIENT),
            30000 + p,
            Ipv4Addr::from(VIP),
            80,
        );
        let owner = flow_owner(&key, 2);
        let syn = tcp_frame(
            MAC_P0,
            MAC_GW,
            ip(CLIENT, VIP, 6),
            30000 + p,
            80,
            1,
            0,
            SYN,
            &[],
            &[],
        );
        let other = 1 - owner;
        assert_eq!(
            run(&mut ws[usize::from(other)], s(1), 0, &syn).0,
            Action::Handover { worker: owner }
        );
        handed += 1;
        let (a, out) = run(&mut ws[usize::from(owner)], s(1), 0, &syn);
        assert_eq!(a, Action::Forward { port: 1 });
        let lport = u16::from_be_bytes([out[34], out[35]]);
        assert_eq!(
            owner_of_port(lport, 2),
            owner,
            "local port owned by the same worker"
        );
        // The reply lands on the wrong worker first.
        let reply = tcp_frame(
            MAC_P1,
            MAC_RS,
            ip(RS, LIP, 6),
            80,
            lport,
            9,
            2,
            SYN | ACK,
            &[],
            &[],
        );
        assert_eq!(
            run(&mut ws[usize::from(other)], s(1), 1, &reply).0,
            Action::Handover { worker: owner }
        );
        handed += 1;
        assert_eq!(
            run(&mut ws[usize::from(owner)], s(1), 1, &reply).0,
            Action::Forward { port: 0 }
        );
    }
    let total: u64 = ws.iter().map(|w| w.counters().handed_over.get()).sum();
    assert_eq!(total, handed);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn mutate(base: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
        let mut v = base;
        for (i, b) in edits {
            if !v.is_empty() {
                let n = v.len();
                v[i % n] = *b;
            }
        }
        let keep = v.len().saturating_sub(cut % 8);
        v.truncate(keep);
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn random_sequences_never_panic_balance_and_expire(
            pkts in proptest::collection::vec(
                (0u8..6, 0u16..4, any::<u8>(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3), any::<usize>(), any::<bool>()),
                1..60,
            )
        ) {
            let mut lab = lab_with(Forward::FullNat, ClientAddr::Toa, SchedKind::Wlc, &[(RS, 1), (RS2, 2)], 1500);
            let w = &mut lab.w;
            let mut t = s(1);
            for (kind, port_sel, flags, edits, cut, corrupt) in pkts {
                let cport = 40000 + port_sel;
                let base = match kind {
                    0 => tcp_frame(MAC_P0, MAC_GW, ip(CLIENT, VIP, 6), cport, 80, 1, 1, flags, &MSS1460, b"data"),
                    1 => tcp_frame(MAC_P1, MAC_RS, ip(RS, LIP, 6), 80, 1025 + port_sel, 1, 1, flags, &[], b"x"),
                    2 => frame(MAC_P0, MAC_GW, &ip(CLIENT, VIP, 17), &udp_seg(&ip(CLIENT, VIP, 17), cport, 53, b"q")),
                    3 => frame(MAC_P0, MAC_GW, &ip(CLIENT, VIP, 1), &icmp_msg(8, 0, [0; 4], b"p")),
                    4 => arp_frame(1, MAC_GW, GW, [0; 6], VIP, [0xff; 6]),
                    _ => frame(MAC_P1, MAC_RS, &Ip { ttl: flags % 3, ..ip(RS, [8, 8, 8, 8], 17) }, &udp_seg(&ip(RS, [8, 8, 8, 8], 17), 1, 2, b"z")),
                };
                let bytes = if corrupt { mutate(base, &edits, cut) } else { base };
                let _ = run(w, t, if kind == 1 || kind == 5 { 1 } else { 0 }, &bytes);
                t += Duration::from_millis(250);
            }
            let c = w.counters();
            let out = c.forwarded.get() + c.replied.get() + c.punted.get() + c.handed_over.get() + c.pending.get() + c.dropped();
            prop_assert_eq!(c.rx.get(), out);
            // Every connection expires; every port and count is given back.
            w.tick(t + s(4000), |_| {});
            prop_assert!(w.conns().is_empty());
            for svc in w.services().iter() {
                for v in svc.servers() {
                    prop_assert_eq!((v.active, v.inactive), (0, 0));
                }
            }
        }
    }
}

fn synproxy_lab() -> Lab {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        syn_proxy: true,
        local_addrs: vec![Ipv4Addr::from(LIP)],
        ..Default::default()
    };
    lab.w
        .apply(Command::EditService(lab.svc, cfg))
        .expect("edit");
    lab
}

#[test]
fn synproxy_handshake_byte_for_byte() {
    let mut lab = synproxy_lab();
    let w = &mut lab.w;
    // Client SYN with MSS 1460, SACK-permitted, window scale 7.
    let opts = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &opts,
        &[],
    );
    let (a, out) = run(w, s(10), 0, &syn);
    assert_eq!(a, Action::Reply { port: 0 });
    assert!(w.conns().is_empty(), "no state for a SYN");
    let cookie = u32::from_be_bytes([out[38], out[39], out[40], out[41]]);
    let reply_opts = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, SYNPROXY_WSCALE];
    // Window 65535 in our SYN-ACK (builder default is 29200).
    let fixed = tcp_seg(
        &Ip {
            id: 0,
            ..ip(VIP, CLIENT, 6)
        },
        80,
        CPORT,
        cookie,
        1001,
        SYN | ACK,
        &reply_opts,
        &[],
    );
    let mut fixed = fixed;
    fixed[14..16].copy_from_slice(&[0xff, 0xff]);
    let fixed = l4_with_csum(
        &Ip {
            id: 0,
            ..ip(VIP, CLIENT, 6)
        },
        fixed,
        16,
    );
    let want = frame(
        MAC_GW,
        MAC_P0,
        &Ip {
            id: 0,
            ..ip(VIP, CLIENT, 6)
        },
        &fixed,
    );
    assert_frame(&out, &want);
    // A forged ACK is dropped.
    let forged = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie ^ 0x1000,
        ACK,
        &[],
        &[],
    );
    assert_eq!(
        run(w, s(10), 0, &forged).0,
        Action::Drop(DropReason::BadCookie)
    );
    // The client's ACK: now the server is chosen and gets a SYN with the client's options.
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie.wrapping_add(1),
        ACK,
        &[],
        &[],
    );
    let (a, out) = run(w, s(11), 0, &ack);
    assert_eq!(a, Action::Forward { port: 1 });
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        Ip {
            id: 0,
            ..ip(LIP, RS, 6)
        },
        1025,
        80,
        1000,
        0,
        SYN,
        &opts,
        &[],
    );
    assert_frame(&out, &want);
    assert_eq!(w.conns().len(), 1);
    // The server's SYN-ACK is answered by us; nothing reaches the client.
    let rs_synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        7000,
        1001,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(11), 1, &rs_synack);
    assert_eq!(a, Action::Reply { port: 1 });
    let mut ack_seg = tcp_seg(
        &Ip {
            id: 0,
            ..ip(LIP, RS, 6)
        },
        1025,
        80,
        1001,
        7001,
        ACK,
        &[],
        &[],
    );
    ack_seg[14..16].copy_from_slice(&(0xffffu16 >> 7).to_be_bytes());
    let ack_seg = l4_with_csum(
        &Ip {
            id: 0,
            ..ip(LIP, RS, 6)
        },
        ack_seg,
        16,
    );
    assert_frame(
        &out,
        &frame(
            MAC_RS,
            MAC_P1,
            &Ip {
                id: 0,
                ..ip(LIP, RS, 6)
            },
            &ack_seg,
        ),
    );
    // Data both ways with the sequence offset applied.
    let get = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie.wrapping_add(1),
        PSH | ACK,
        &[],
        b"GET",
    );
    let (_, out) = run(w, s(12), 0, &get);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(LIP, RS, 6),
            1025,
            80,
            1001,
            7001,
            PSH | ACK,
            &[],
            b"GET",
        ),
    );
    let resp = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        7001,
        1004,
        PSH | ACK,
        &[],
        b"OK",
    );
    let (_, out) = run(w, s(12), 1, &resp);
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            cookie.wrapping_add(1),
            1004,
            PSH | ACK,
            &[],
            b"OK",
        ),
    );
    let svc = w.services().by_key(lab.svc).expect("svc");
    assert_eq!(svc.servers()[0].active, 1);
}

#[test]
fn synproxy_flood_keeps_no_state_and_retries_are_bounded() {
    let mut lab = synproxy_lab();
    let w = &mut lab.w;
    for p in 0..500u16 {
        let syn = tcp_frame(
            MAC_P0,
            MAC_GW,
            ip(CLIENT, VIP, 6),
            10000 + p,
            80,
            u32::from(p),
            0,
            SYN,
            &[],
            &[],
        );
        assert_eq!(run(w, s(1), 0, &syn).0, Action::Reply { port: 0 });
    }
    assert!(w.conns().is_empty());
    assert_eq!(w.counters().syn_cookies.get(), 500);
    // Server silent: client segments resend the SYN three times, then are dropped.
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &[],
        &[],
    );
    let (_, out) = run(w, s(1), 0, &syn);
    let cookie = u32::from_be_bytes([out[38], out[39], out[40], out[41]]);
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie.wrapping_add(1),
        ACK,
        &[],
        &[],
    );
    let (a, first) = run(w, s(1), 0, &ack);
    assert_eq!(a, Action::Forward { port: 1 });
    for _ in 0..SYNPROXY_MAX_RETRIES {
        let (a, again) = run(w, s(1), 0, &ack);
        assert_eq!(a, Action::Forward { port: 1 });
        assert_frame(&again, &first);
    }
    assert_eq!(
        run(w, s(1), 0, &ack).0,
        Action::Drop(DropReason::SynProxyPending)
    );
    // The pending entry expires after the SYN_SENT timeout (3 s).
    assert_eq!(w.tick(s(5), |_| {}), 1);
    assert!(w.conns().is_empty());
}

#[test]
fn persistence_and_deny_list_on_the_packet_path() {
    let mut lab = lab_with(
        Forward::FullNat,
        ClientAddr::None,
        SchedKind::Rr,
        &[(RS, 1), (RS2, 1)],
        1500,
    );
    let w = &mut lab.w;
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        persistence: Some(crate::service::Persistence {
            timeout: s(300),
            netmask: 32,
        }),
        deny: vec![Prefix::new(Ipv4Addr::new(6, 6, 6, 0), 24).expect("p")],
        local_addrs: vec![Ipv4Addr::from(LIP)],
        ..Default::default()
    };
    w.apply(Command::EditService(lab.svc, cfg)).expect("edit");
    // Round robin would alternate; persistence keeps the client on its first server.
    let mut first = None;
    for p in 0..6u16 {
        let syn = tcp_frame(
            MAC_P0,
            MAC_GW,
            ip(CLIENT, VIP, 6),
            41000 + p,
            80,
            1,
            0,
            SYN,
            &[],
            &[],
        );
        let (a, out) = run(w, s(1), 0, &syn);
        assert_eq!(a, Action::Forward { port: 1 });
        let rs = [out[30], out[31], out[32], out[33]];
        assert_eq!(*first.get_or_insert(rs), rs);
    }
    // Another client goes elsewhere (rr moved on), a denied one is dropped.
    let other = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip([5, 5, 5, 5], VIP, 6),
        41000,
        80,
        1,
        0,
        SYN,
        &[],
        &[],
    );
    let (_, out) = run(w, s(1), 0, &other);
    assert_ne!(Some([out[30], out[31], out[32], out[33]]), first);
    let bad = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip([6, 6, 6, 6], VIP, 6),
        41000,
        80,
        1,
        0,
        SYN,
        &[],
        &[],
    );
    assert_eq!(run(w, s(1), 0, &bad).0, Action::Drop(DropReason::Denied));
    // 7 connections + 2 templates; everything expires, templates last.
    assert_eq!(w.conns().len(), 9);
    w.tick(s(100), |_| {});
    assert_eq!(w.conns().len(), 2, "templates outlive their connections");
    w.tick(s(500), |_| {});
    assert!(w.conns().is_empty());
}

/// Source address and port of a forwarded IPv4/TCP frame.
fn src_of(out: &[u8]) -> ([u8; 4], u16) {
    (
        [out[26], out[27], out[28], out[29]],
        u16::from_be_bytes([out[34], out[35]]),
    )
}

fn syn_from(cport: u16) -> Vec<u8> {
    tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        cport,
        80,
        1000,
        0,
        SYN,
        &[],
        &[],
    )
}

const LIP2: [u8; 4] = [192, 168, 7, 189];

#[test]
fn edit_service_keeps_ports_of_live_connections_reserved() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let (a, out) = run(w, s(1), 0, &syn_from(CPORT));
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(src_of(&out), (LIP, 1025));
    // A second local address is added and the port range shrinks to five ports: the
    // pool is rebuilt.
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        local_addrs: vec![Ipv4Addr::from(LIP), Ipv4Addr::from(LIP2)],
        lport_range: (1025, 1029),
        ..Default::default()
    };
    w.apply(Command::EditService(lab.svc, cfg)).expect("edit");
    let mut seen = Vec::new();
    for p in 1..=4u16 {
        let (a, out) = run(w, s(2), 0, &syn_from(CPORT + p));
        assert_eq!(a, Action::Forward { port: 1 }, "new connection {p}");
        seen.push(src_of(&out));
    }
    assert!(
        !seen.contains(&(LIP, 1025)),
        "live port handed out again: {seen:?}"
    );
    assert!(seen.contains(&(LIP, 1026)) && seen.contains(&(LIP2, 1025)));
    assert_eq!(w.conns().len(), 5);
    // All end; the reserved port went back to the new pool: ten new connections take
    // every port of both addresses (released ports queue at the back), 1025 included.
    w.tick(s(100), |_| {});
    assert!(w.conns().is_empty());
    let got: Vec<_> = (10..20u16)
        .map(|p| src_of(&run(w, s(101), 0, &syn_from(CPORT + p)).1))
        .collect();
    assert!(got.contains(&(LIP, 1025)), "{got:?}");
}

#[test]
fn readded_service_never_receives_releases_of_the_deleted_one() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    // An old connection (SYN_RECV, 30 s) holds LIP:1025 in the old service.
    let (_, out) = run(w, s(1), 0, &syn_from(CPORT));
    assert_eq!(src_of(&out), (LIP, 1025));
    let old_id = w
        .services()
        .find(PROTO_TCP, u32::from_be_bytes(VIP), 80)
        .expect("id");
    w.apply(Command::DeleteService(lab.svc)).expect("del");
    // Re-added with another server (so the outbound tuples differ).
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        local_addrs: vec![Ipv4Addr::from(LIP)],
        ..Default::default()
    };
    w.apply(Command::AddService(lab.svc, cfg, Arc::default()))
        .expect("re-add");
    w.apply(Command::AddServer(
        lab.svc,
        RealServerConfig::new(Ipv4Addr::from(RS2), 80, 1),
        Arc::default(),
    ))
    .expect("rs2");
    let new_id = w
        .services()
        .find(PROTO_TCP, u32::from_be_bytes(VIP), 80)
        .expect("id");
    assert_ne!(new_id, old_id, "slot with live connections reused");
    assert_eq!(w.services().live_conns(old_id), 1);
    // A new connection (t = 20 s, lives to 50 s) takes LIP:1025 in the new pool.
    let (a, out) = run(w, s(20), 0, &syn_from(CPORT + 1));
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(src_of(&out), (LIP, 1025));
    // The old connection expires; its release must not free the new one's port.
    assert_eq!(w.tick(s(40), |_| {}), 1);
    assert_eq!(w.services().live_conns(old_id), 0);
    let (a, out) = run(w, s(41), 0, &syn_from(CPORT + 2));
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(src_of(&out), (LIP, 1026));
    // Now the old slot is free again for the next service.
    let other = ServiceKey::new(PROTO_TCP, Ipv4Addr::from(VIP), 8080);
    w.apply(Command::AddService(
        other,
        ServiceConfig {
            local_addrs: vec![Ipv4Addr::from(LIP)],
            ..Default::default()
        },
        Arc::default(),
    ))
    .expect("other");
    assert_eq!(
        w.services().find(PROTO_TCP, u32::from_be_bytes(VIP), 8080),
        Some(old_id)
    );
}

/// An established FullNAT connection (client CPORT ↔ RS via LIP:1025), set up through
/// the general path; returns the client's pure-ACK data frame.
fn established_fullnat(w: &mut Worker) -> Vec<u8> {
    let (_, _) = run(w, s(1), 0, &syn_from(CPORT));
    let synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        5000,
        1001,
        SYN | ACK,
        &[],
        &[],
    );
    assert_eq!(run(w, s(1), 1, &synack).0, Action::Forward { port: 0 });
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        ACK,
        &[],
        &[],
    );
    assert_eq!(run(w, s(1), 0, &ack).0, Action::Forward { port: 1 });
    tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"hello",
    )
}

#[test]
fn fast_path_matches_the_general_path_and_follows_neighbor_and_fib_changes() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let data = established_fullnat(w);
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        ip(LIP, RS, 6),
        1025,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"hello",
    );
    // Twice: the first fills the next-hop cache, the second uses it.
    for _ in 0..2 {
        let (a, out) = run(w, s(2), 0, &data);
        assert_eq!(a, Action::Forward { port: 1 });
        assert_frame(&out, &want);
    }
    // Ethernet padding is trimmed as on the general path.
    let mut padded = data.clone();
    padded.extend_from_slice(&[0xee; 7]);
    assert_frame(&run(w, s(2), 0, &padded).1, &want);
    // The server moves to another MAC: the cache must not keep the old one.
    let new_mac = [0x02, 0, 0, 0, 0, 0x77];
    w.learn_neighbor(Ipv4Addr::from(RS), new_mac, s(2));
    let (_, out) = run(w, s(2), 0, &data);
    assert_eq!(&out[0..6], &new_mac);
    // A new FIB sends 192.168.7.0/24 out of port 0: the cache follows the FIB.
    let mut r = routes();
    for route in &mut r {
        for nh in &mut route.nexthops {
            nh.port = 0;
        }
    }
    w.fib.store(Fib::build(&r).expect("fib"));
    let (a, out) = run(w, s(2), 0, &data);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_eq!(&out[6..12], &MAC_P0);
    // Counters: every packet counted once, on the worker and the service.
    let c = w.counters();
    assert_eq!(c.rx.get(), c.forwarded.get() + c.dropped());
    let svc = w.services().by_key(lab.svc).expect("svc");
    assert_eq!(svc.stats().pkts_in.get(), 2 + 5);
    // A corrupted IP checksum is not taken by the fast path: counted drop.
    let mut bad = data.clone();
    bad[24] ^= 0xff;
    assert_eq!(
        run(w, s(2), 0, &bad).0,
        Action::Drop(DropReason::BadChecksum)
    );
}

/// Processes `bytes` as one frame received on port 0 with the NIC's IPv4 checksum flag
/// set to `ok`.
fn run_csum_flag(w: &mut Worker, bytes: &[u8], ok: bool) -> (Action, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + bytes.len() + 64];
    buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
    let mut f = Frame::new(&mut buf, HEADROOM, bytes.len(), 0).expect("frame");
    assert!(!f.ip_csum_ok, "software verification is the default");
    f.ip_csum_ok = ok;
    let a = w.process_one(s(2), &mut f);
    (a, f.data().to_vec())
}

#[test]
fn nic_checksum_flag_skips_only_the_fast_path_verification() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let data = established_fullnat(w);
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        ip(LIP, RS, 6),
        1025,
        80,
        1001,
        5001,
        PSH | ACK,
        &[],
        b"hello",
    );
    // A good frame: the same bytes whether the NIC or the worker verified it.
    for ok in [false, true, false, true] {
        let (a, out) = run_csum_flag(w, &data, ok);
        assert_eq!(a, Action::Forward { port: 1 });
        assert_frame(&out, &want);
    }
    // A frame whose header checksum is wrong (TTL changed after it was computed):
    // without the flag it is verified and dropped.
    let mut bad = data.clone();
    bad[22] ^= 0x01;
    let drops = w.counters().drop_count(DropReason::BadChecksum);
    assert_eq!(
        run_csum_flag(w, &bad, false).0,
        Action::Drop(DropReason::BadChecksum)
    );
    assert_eq!(w.counters().drop_count(DropReason::BadChecksum), drops + 1);
    // With the flag the worker takes the NIC's word: forwarded, nothing re-verified,
    // the header checksum updated incrementally from the one received (still the one
    // of the original TTL, so the output differs from `want` in the TTL byte only).
    let (a, out) = run_csum_flag(w, &bad, true);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_eq!(&out[..22], &want[..22]);
    assert_eq!(out[22], want[22] ^ 0x01);
    assert_eq!(&out[23..], &want[23..]);
    // A SYN (general path) with a bad checksum is dropped even with the flag: only the
    // fast path relies on it.
    let mut syn = syn_from(CPORT + 7);
    syn[22] ^= 0x01;
    let mut buf = vec![0u8; HEADROOM + syn.len() + 64];
    buf[HEADROOM..HEADROOM + syn.len()].copy_from_slice(&syn);
    let mut f = Frame::new(&mut buf, HEADROOM, syn.len(), 0).expect("frame");
    f.ip_csum_ok = true;
    assert_eq!(
        w.process_one(s(2), &mut f),
        Action::Drop(DropReason::BadChecksum)
    );
}

#[test]
fn burst_counts_match_single_frame_processing() {
    let mut lab = lab(Forward::FullNat, ClientAddr::None);
    let w = &mut lab.w;
    let data = established_fullnat(w);
    let frames_in: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            if i % 3 == 2 {
                syn_from(CPORT + 100 + i) // new connections: general path
            } else {
                data.clone()
            }
        })
        .collect();
    let mut bufs: Vec<Vec<u8>> = frames_in
        .iter()
        .map(|f| {
            let mut b = vec![0u8; HEADROOM + f.len() + 64];
            b[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            b
        })
        .collect();
    let rx0 = w.counters().rx.get();
    let fw0 = w.counters().forwarded.get();
    let mut frames: Vec<Frame<'_>> = bufs
        .iter_mut()
        .zip(&frames_in)
        .map(|(b, f)| Frame::new(b, HEADROOM, f.len(), 0).expect("frame"))
        .collect();
    let mut actions = vec![Action::Punt; 8];
    w.process(s(3), &mut frames, &mut actions);
    assert!(actions.iter().all(|a| *a == Action::Forward { port: 1 }));
    assert_eq!(w.counters().rx.get() - rx0, 8);
    assert_eq!(w.counters().forwarded.get() - fw0, 8);
}

/// SYN-proxied handshake up to the server's SYN-ACK; `ack_data` rides on the client's
/// cookie-validating ACK. Returns the cookie and our answer to the server's SYN-ACK.
fn synproxy_until_server_synack(w: &mut Worker, ack_data: &[u8]) -> (u32, Action, Vec<u8>) {
    let opts = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1000,
        0,
        SYN,
        &opts,
        &[],
    );
    let (_, out) = run(w, s(10), 0, &syn);
    let cookie = u32::from_be_bytes([out[38], out[39], out[40], out[41]]);
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie.wrapping_add(1),
        if ack_data.is_empty() { ACK } else { PSH | ACK },
        &[],
        ack_data,
    );
    let (a, out) = run(w, s(11), 0, &ack);
    assert_eq!(a, Action::Forward { port: 1 });
    // The server gets a plain SYN either way.
    let want = tcp_frame(
        MAC_RS,
        MAC_P1,
        Ip {
            id: 0,
            ..ip(LIP, RS, 6)
        },
        1025,
        80,
        1000,
        0,
        SYN,
        &opts,
        &[],
    );
    assert_frame(&out, &want);
    let rs_synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        7000,
        1001,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(11), 1, &rs_synack);
    (cookie, a, out)
}

#[test]
fn synproxy_data_on_the_cookie_ack_reaches_the_server_after_its_handshake() {
    let mut lab = synproxy_lab();
    let w = &mut lab.w;
    let (_, a, out) = synproxy_until_server_synack(w, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(a, Action::Reply { port: 1 });
    assert_eq!(w.counters().syn_data_held.get(), 1);
    // Our ACK completing the server handshake carries the client's first bytes, at the
    // client's ISN + 1, acknowledging the server's ISN + 1.
    let h = Ip {
        id: 0,
        ..ip(LIP, RS, 6)
    };
    let mut seg = tcp_seg(
        &h,
        1025,
        80,
        1001,
        7001,
        PSH | ACK,
        &[],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    seg[14..16].copy_from_slice(&(0xffffu16 >> 7).to_be_bytes());
    let seg = l4_with_csum(&h, seg, 16);
    assert_frame(&out, &frame(MAC_RS, MAC_P1, &h, &seg));
    verify_checksums(&out);
    // Held once: a later SYN-ACK retransmission gets a bare ACK (no duplicate data).
    let rs_synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        7000,
        1001,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (_, out) = run(w, s(11), 1, &rs_synack);
    assert_eq!(w.counters().syn_data_lost.get(), 0);
    assert!(
        out.len() < 14 + 20 + 20 + 18,
        "no second copy of the data: {out:02x?}"
    );
}

#[test]
fn synproxy_data_is_not_held_for_proxy_protocol_services() {
    let mut lab = synproxy_lab();
    let cfg = ServiceConfig {
        scheduler: SchedKind::Rr,
        syn_proxy: true,
        client_addr: ClientAddr::ProxyV2,
        local_addrs: vec![Ipv4Addr::from(LIP)],
        ..Default::default()
    };
    lab.w
        .apply(Command::EditService(lab.svc, cfg))
        .expect("edit");
    let w = &mut lab.w;
    let (_, a, out) = synproxy_until_server_synack(w, b"data");
    assert_eq!(a, Action::Reply { port: 1 });
    assert_eq!(w.counters().syn_data_held.get(), 0);
    assert_eq!(w.counters().syn_data_lost.get(), 1);
    assert_eq!(out.len(), 14 + 20 + 20, "bare ACK");
    assert_eq!(out[14 + 20 + 13], ACK);
}

#[test]
fn synproxy_ack_storm_from_the_server_is_cut_after_the_threshold() {
    let mut lab = synproxy_lab();
    let w = &mut lab.w;
    let (cookie, a, _) = synproxy_until_server_synack(w, &[]);
    assert_eq!(a, Action::Reply { port: 1 });
    let server_ack = |seq: u32| {
        tcp_frame(
            MAC_P1,
            MAC_RS,
            ip(RS, LIP, 6),
            80,
            1025,
            seq,
            1001,
            ACK,
            &[],
            &[],
        )
    };
    let storm = server_ack(7001);
    // The first, then SYNPROXY_DUP_ACK_THRESH - 1 repeats, reach the client (shifted
    // into its numbering); the threshold-th repeat and later ones are dropped.
    for i in 0..SYNPROXY_DUP_ACK_THRESH {
        let (a, out) = run(w, s(12), 1, &storm);
        assert_eq!(a, Action::Forward { port: 0 }, "ack {i}");
        assert_eq!(
            u32::from_be_bytes([out[38], out[39], out[40], out[41]]),
            cookie.wrapping_add(1)
        );
    }
    for _ in 0..3 {
        assert_eq!(
            run(w, s(12), 1, &storm).0,
            Action::Drop(DropReason::AckStorm)
        );
    }
    assert_eq!(w.counters().drop_count(DropReason::AckStorm), 3);
    // The numbers move: forwarded again, and the count starts over.
    assert_eq!(
        run(w, s(12), 1, &server_ack(7002)).0,
        Action::Forward { port: 0 }
    );
    assert_eq!(
        run(w, s(12), 1, &server_ack(7002)).0,
        Action::Forward { port: 0 }
    );
    // Client segments are never subject to it.
    let get = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        1001,
        cookie.wrapping_add(1),
        ACK,
        &[],
        &[],
    );
    for _ in 0..2 * SYNPROXY_DUP_ACK_THRESH {
        assert_eq!(run(w, s(12), 0, &get).0, Action::Forward { port: 1 });
    }
}

mod fast_rewrite {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fixed-offset rewrite writes exactly the bytes of the general fused
        /// rewrite, checksum edge cases (0x0000 / 0xffff, all-ones fields) included.
        #[test]
        fn rewrite_fixed_equals_nat_rewrite_fast(
            head in proptest::collection::vec(any::<u8>(), 54),
            edge in 0u8..4,
            src in any::<u32>(), sport in any::<u16>(),
            dst in any::<u32>(), dport in any::<u16>(),
            seq_add in prop_oneof![Just(0u32), any::<u32>()],
            ack_add in prop_oneof![Just(0u32), any::<u32>()],
        ) {
            let mut a: [u8; 54] = head.clone().try_into().expect("54");
            match edge {
                1 => { a[24] = 0xff; a[25] = 0xff; a[50] = 0; a[51] = 0; }
                2 => { a[26..38].fill(0xff); }
                3 => { a[24] = 0; a[25] = 0; a[50] = 0xff; a[51] = 0xff; }
                _ => {}
            }
            let mut b = a.to_vec();
            rewrite_fixed(&mut a, src, sport, dst, dport, seq_add, ack_add);
            let mut f = Frame::new(&mut b, 0, 54, 0).expect("frame");
            prop_assert!(Worker::nat_rewrite_fast(
                &mut f,
                ETH_LEN + 20,
                PROTO_TCP,
                Some((Ipv4Addr::from(src), sport)),
                Some((Ipv4Addr::from(dst), dport)),
                seq_add,
                ack_add,
            ));
            prop_assert_eq!(&a[..], f.data());
        }

        /// The rotate-and-add fold gives `checksum::fold`'s value for every input.
        #[test]
        fn fold_fast_equals_checksum_fold(
            acc in prop_oneof![
                any::<u64>(),
                0u64..0x1_0000,
                Just(0u64),
                Just(0xffffu64),
                Just(0xffff_ffffu64),
                Just(0x1_0000_fffeu64),
                Just(u64::MAX),
                Just(0xffff_0000_0000_ffffu64),
            ],
        ) {
            prop_assert_eq!(fold_fast(acc), checksum::fold(acc));
        }

        /// The 32-bit native-order header check agrees with the plain RFC 1071 check.
        #[test]
        fn ip_header_ok_equals_header_sum_ok(head in proptest::collection::vec(any::<u8>(), 54), fix in any::<bool>()) {
            let mut a: [u8; 54] = head.try_into().expect("54");
            if fix {
                a[24] = 0;
                a[25] = 0;
                let c = csum(&[&a[14..34]]);
                a[24..26].copy_from_slice(&c.to_be_bytes());
            }
            prop_assert_eq!(ip_header_ok(&a), header_sum_ok(&a[14..34]));
            if fix {
                prop_assert!(ip_header_ok(&a));
            }
        }
    }
}

/// Runs one frame on `port` through the general path only (what `process_one` does
/// when the fast path declines): the reference the fast path must reproduce.
fn run_general(w: &mut Worker, now: Duration, port: u16, bytes: &[u8]) -> (Action, Vec<u8>) {
    let mut buf = vec![0u8; HEADROOM + bytes.len() + 64];
    buf[HEADROOM..HEADROOM + bytes.len()].copy_from_slice(bytes);
    let mut f = Frame::new(&mut buf, HEADROOM, bytes.len(), port).expect("frame");
    let handle = Arc::clone(&w.fib);
    let fib = handle.load();
    w.check_fib(&fib);
    let ctx = Ctx { fib: &fib, now };
    w.counters.rx.add(1);
    let r = w.frame(&ctx, &mut f);
    let a = w.count(r);
    (a, f.data().to_vec())
}

/// Everything a frame can change that the fast path also changes: worker counters,
/// service and server counters (by server address), connection states and deadlines.
fn observable(w: &Worker, svc: ServiceKey) -> Vec<u64> {
    let c = w.counters();
    let mut v = vec![c.rx.get(), c.forwarded.get(), c.dropped(), c.pending.get()];
    if let Some(s) = w.services().by_key(svc) {
        let st = s.stats();
        v.extend([
            st.pkts_in.get(),
            st.pkts_out.get(),
            st.bytes_in.get(),
            st.bytes_out.get(),
        ]);
        for rs in s.servers() {
            let st = s.rs_stats(rs.id).expect("rs stats");
            v.extend([u64::from(rs.addr), st.pkts_in.get(), st.pkts_out.get()]);
            v.extend([st.bytes_in.get(), st.bytes_out.get()]);
        }
    }
    for (id, c) in w.conns().iter() {
        v.extend([
            u64::from(id.0),
            u64::from(c.deadline_ticks()),
            c.state() as u64,
        ]);
        v.push(u64::from(c.flags));
    }
    v
}

/// Server → client data segment of the connection `established_fullnat` opens.
fn server_data(seq: u32) -> Vec<u8> {
    tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        1025,
        seq,
        1006,
        PSH | ACK,
        &[],
        b"world",
    )
}

#[test]
fn fast_path_equals_the_general_path_across_service_and_server_changes() {
    for client_addr in [ClientAddr::None, ClientAddr::Toa, ClientAddr::ProxyV2] {
        // Two identical workers: `fast` runs every frame through `process_one` (fast
        // path first), `general` through the general path only. Each step returns
        // whether the fast path took the frame.
        let mut fast = lab(Forward::FullNat, client_addr);
        let mut general = lab(Forward::FullNat, client_addr);
        let svc = fast.svc;
        let data = established_fullnat(&mut fast.w);
        assert_eq!(established_fullnat(&mut general.w), data);
        let step = |fast: &mut Lab, general: &mut Lab, now: u64, port: u16, bytes: &[u8]| {
            let hits = fast.w.fast_hits;
            let a = run(&mut fast.w, s(now), port, bytes);
            let b = run_general(&mut general.w, s(now), port, bytes);
            assert_eq!(a.0, b.0, "{client_addr:?} at {now}");
            assert_eq!(a.0, Action::Forward { port: 1 - port });
            assert_frame(&a.1, &b.1);
            assert_eq!(observable(&fast.w, svc), observable(&general.w, svc));
            fast.w.fast_hits > hits
        };
        // Inbound segments take the fast path unless a PROXY header is configured
        // (TOA went out on the handshake's ACK); outbound ones always do.
        let inbound_fast = client_addr != ClientAddr::ProxyV2;
        let rs_id = fast.w.services().by_key(svc).expect("svc").servers()[0].id;
        for i in 0..3u32 {
            assert_eq!(step(&mut fast, &mut general, 2, 0, &data), inbound_fast);
            assert!(step(
                &mut fast,
                &mut general,
                2,
                1,
                &server_data(5001 + 5 * i)
            ));
        }
        // The server's slot holds its own and its service's counters.
        let slot = fast.w.services.fast_slot(rs_id).expect("slot");
        let sv = fast.w.services().by_key(svc).expect("svc");
        assert!(Arc::ptr_eq(&slot.rs_stats, sv.rs_stats(rs_id).expect("rs")));
        assert!(Arc::ptr_eq(&slot.svc_stats, sv.stats()));
        // The service gets its own established timeout: the deadline follows it, on
        // both paths alike.
        let edit = |l: &mut Lab, t: Option<Duration>| {
            let mut cfg = l.w.services().by_key(svc).expect("svc").config().clone();
            cfg.est_timeout = t;
            l.w.apply(Command::EditService(svc, cfg)).expect("edit");
        };
        for (now, t) in [
            (3, Some(s(1000))),
            (4, Some(s(5))),
            (5, None),
            (6, Some(s(900))),
        ] {
            edit(&mut fast, t);
            edit(&mut general, t);
            let before = fast
                .w
                .conns()
                .iter()
                .next()
                .map(|(_, c)| c.deadline_ticks());
            assert_eq!(step(&mut fast, &mut general, now, 0, &data), inbound_fast);
            assert!(step(&mut fast, &mut general, now, 1, &server_data(5016)));
            let after = fast
                .w
                .conns()
                .iter()
                .next()
                .map(|(_, c)| c.deadline_ticks());
            assert_ne!(before, after);
        }
        // The server is deleted: no slot any more; its connection goes on forwarding
        // through the general path.
        let del = Command::DeleteServer(svc, Ipv4Addr::from(RS), 80);
        fast.w.apply(del.clone()).expect("del");
        general.w.apply(del).expect("del");
        assert!(fast.w.services.fast_slot(rs_id).is_none());
        assert!(!step(&mut fast, &mut general, 7, 0, &data));
        assert!(!step(&mut fast, &mut general, 7, 1, &server_data(5016)));
        // Re-added: a new id and slot; the old connection still has the old id.
        let mut rs = RealServerConfig::new(Ipv4Addr::from(RS), 80, 1);
        rs.forward = Forward::FullNat;
        for l in [&mut fast, &mut general] {
            l.w.apply(Command::AddServer(svc, rs, Arc::default()))
                .expect("re-add");
        }
        let new_id = fast.w.services().by_key(svc).expect("svc").servers()[0].id;
        assert_ne!(new_id, rs_id);
        assert!(fast.w.services.fast_slot(new_id).is_some());
        assert!(!step(&mut fast, &mut general, 8, 0, &data));
        assert!(!step(&mut fast, &mut general, 8, 1, &server_data(5016)));
        // The service is deleted: its slots go, the connection keeps forwarding.
        for l in [&mut fast, &mut general] {
            l.w.apply(Command::DeleteService(svc)).expect("del svc");
        }
        assert!(fast.w.services.fast_slot(new_id).is_none());
        assert!(!step(&mut fast, &mut general, 9, 0, &data));
        assert!(!step(&mut fast, &mut general, 9, 1, &server_data(5016)));
    }
}

#[test]
fn entries_without_a_server_are_counted_as_on_the_general_path() {
    // An established FullNAT entry whose server id is 0 (no server): its segments must
    // count on the service only, as the general path does, never on an empty slot.
    let mut fast = lab(Forward::FullNat, ClientAddr::None);
    let mut general = lab(Forward::FullNat, ClientAddr::None);
    let svc = fast.svc;
    let id = fast.w.services().by_key(svc).expect("svc").id();
    for l in [&mut fast, &mut general] {
        let n = NewConn {
            in_key: FlowKey::new(6, Ipv4Addr::from(CLIENT), 41000, Ipv4Addr::from(VIP), 80),
            out_key: FlowKey::new(6, Ipv4Addr::from(RS), 80, Ipv4Addr::from(LIP), 2000),
            index_out: true,
            svc: id,
            rs: 0,
            mode: Forward::FullNat as u8,
            state: TcpState::Established,
            flags: 0,
            timeout: s(100),
            template: None,
        };
        l.w.conns.insert(n, s(1)).expect("entry");
    }
    let reply = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, LIP, 6),
        80,
        2000,
        7000,
        1000,
        PSH | ACK,
        &[],
        b"data",
    );
    for _ in 0..2 {
        let a = run(&mut fast.w, s(2), 1, &reply);
        let b = run_general(&mut general.w, s(2), 1, &reply);
        assert_eq!(a, b);
        assert_eq!(observable(&fast.w, svc), observable(&general.w, svc));
    }
    let st = fast
        .w
        .services()
        .by_key(svc)
        .expect("svc")
        .stats()
        .pkts_out
        .get();
    assert_eq!(st, 2);
}

/// A NAT SYN from the client on `cport` to the VIP, as the client's router sends it.
fn nat_syn(cport: u16) -> Vec<u8> {
    tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        cport,
        80,
        7,
        0,
        SYN,
        &MSS1460,
        &[],
    )
}

#[test]
fn vrrp_disowned_vip_is_not_answered_nor_scheduled_but_established_connections_continue() {
    let mut lab = lab(Forward::Nat, ClientAddr::None);
    let w = &mut lab.w;
    let asker = [0x02, 0, 0, 0, 0, 0x77];
    let req = arp_frame(1, asker, [10, 0, 0, 9], [0; 6], VIP, [0xff; 6]);
    let answer = arp_frame(2, MAC_P0, VIP, asker, [10, 0, 0, 9], asker);
    // Owned (the default): answered, and a connection is opened.
    let (a, out) = run(w, s(1), 0, &req);
    assert_eq!(a, Action::Reply { port: 0 });
    assert_frame(&out, &answer);
    let (a, _) = run(w, s(1), 0, &nat_syn(CPORT));
    assert_eq!(a, Action::Forward { port: 1 });
    // VRRP Backup: no ARP answer (the frame is left as it came), no new connection.
    w.apply(Command::SetVipOwned {
        vip: Ipv4Addr::from(VIP),
        owned: false,
    })
    .expect("disown");
    assert!(!w.services().vip_owned(u32::from(Ipv4Addr::from(VIP))));
    let (a, out) = run(w, s(2), 0, &req);
    assert_eq!(a, Action::Drop(DropReason::ArpIgnored));
    assert_frame(&out, &req);
    let syn = nat_syn(CPORT + 1);
    let (a, out) = run(w, s(2), 0, &syn);
    assert_eq!(a, Action::Drop(DropReason::VipNotOwned));
    assert_frame(&out, &syn);
    assert_eq!(w.counters().drop_count(DropReason::VipNotOwned), 1);
    let stats = Arc::clone(w.services().by_key(lab.svc).expect("svc").stats());
    assert_eq!(stats.conns.get(), 1);
    // The connection opened while Master still forwards both ways, byte for byte.
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        CPORT,
        80,
        8,
        91,
        ACK,
        &[],
        &[],
    );
    let (a, out) = run(w, s(2), 0, &ack);
    assert_eq!(a, Action::Forward { port: 1 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(CLIENT, RS, 6),
            CPORT,
            80,
            8,
            91,
            ACK,
            &[],
            &[],
        ),
    );
    let reply = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, CLIENT, 6),
        80,
        CPORT,
        91,
        8,
        ACK,
        &[],
        b"hi",
    );
    let (a, out) = run(w, s(2), 1, &reply);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            91,
            8,
            ACK,
            &[],
            b"hi",
        ),
    );
    // Disowning twice is the same; owning again restores both.
    w.apply(Command::SetVipOwned {
        vip: Ipv4Addr::from(VIP),
        owned: false,
    })
    .expect("again");
    w.apply(Command::SetVipOwned {
        vip: Ipv4Addr::from(VIP),
        owned: true,
    })
    .expect("own");
    let (a, out) = run(w, s(3), 0, &req);
    assert_eq!(a, Action::Reply { port: 0 });
    assert_frame(&out, &answer);
    let (a, out) = run(w, s(3), 0, &nat_syn(CPORT + 2));
    assert_eq!(a, Action::Forward { port: 1 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_RS,
            MAC_P1,
            ip(CLIENT, RS, 6),
            CPORT + 2,
            80,
            7,
            0,
            SYN,
            &MSS1460,
            &[],
        ),
    );
    assert_eq!(stats.conns.get(), 2);
    assert_eq!(w.counters().drop_count(DropReason::VipNotOwned), 1);
}

#[test]
fn disowning_an_address_without_a_service_changes_nothing_and_a_later_service_starts_disowned() {
    let mut lab = lab(Forward::Nat, ClientAddr::None);
    let w = &mut lab.w;
    let other = [10, 0, 0, 50];
    w.apply(Command::SetVipOwned {
        vip: Ipv4Addr::from(other),
        owned: false,
    })
    .expect("disown");
    // The service VIP is unaffected.
    let (a, _) = run(w, s(1), 0, &nat_syn(CPORT));
    assert_eq!(a, Action::Forward { port: 1 });
    // A service added for the disowned address is not scheduled, its ARP not answered.
    let k = ServiceKey::new(PROTO_TCP, Ipv4Addr::from(other), 80);
    w.apply(Command::AddService(
        k,
        ServiceConfig {
            scheduler: SchedKind::Rr,
            ..Default::default()
        },
        Arc::default(),
    ))
    .expect("svc");
    let mut rs = RealServerConfig::new(Ipv4Addr::from(RS), 80, 1);
    rs.forward = Forward::Nat;
    w.apply(Command::AddServer(k, rs, Arc::default()))
        .expect("rs");
    let syn = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, other, 6),
        CPORT,
        80,
        7,
        0,
        SYN,
        &[],
        &[],
    );
    assert_eq!(
        run(w, s(1), 0, &syn).0,
        Action::Drop(DropReason::VipNotOwned)
    );
    let asker = [0x02, 0, 0, 0, 0, 0x77];
    let req = arp_frame(1, asker, [10, 0, 0, 9], [0; 6], other, [0xff; 6]);
    assert_eq!(
        run(w, s(1), 0, &req).0,
        Action::Drop(DropReason::ArpIgnored)
    );
}

#[test]
fn runtime_kernel_address_is_answered_by_the_twin_and_nat_replies_to_the_port_mac_translate() {
    let mut lab = lab(Forward::Nat, ClientAddr::None);
    let w = &mut lab.w;
    // The servers' gateway, a VRRP address on port 1 (not configured on the port).
    let gw = [192, 168, 7, 254];
    let req = arp_frame(1, MAC_RS, RS, [0; 6], gw, [0xff; 6]);
    assert_eq!(
        run(w, s(1), 1, &req).0,
        Action::Drop(DropReason::ArpIgnored)
    );
    w.apply(Command::SetKernelAddr {
        port: 1,
        addr: Ipv4Addr::from(gw),
        present: true,
    })
    .expect("add");
    assert_eq!(
        w.services().runtime_kernel_addrs().collect::<Vec<_>>(),
        vec![(1, Ipv4Addr::from(gw))]
    );
    // ARP and traffic for it go to the twin, unchanged.
    let (a, out) = run(w, s(1), 1, &req);
    assert_eq!(a, Action::Punt);
    assert_frame(&out, &req);
    let ping = frame(
        MAC_P1,
        MAC_RS,
        &ip(RS, gw, 1),
        &icmp_msg(8, 0, [0, 1, 0, 1], b"ping"),
    );
    let (a, out) = run(w, s(1), 1, &ping);
    assert_eq!(a, Action::Punt);
    assert_frame(&out, &ping);
    // NAT: the server's reply goes to its gateway's MAC, the port's: translated back.
    assert_eq!(
        run(w, s(1), 0, &nat_syn(CPORT)).0,
        Action::Forward { port: 1 }
    );
    let synack = tcp_frame(
        MAC_P1,
        MAC_RS,
        ip(RS, CLIENT, 6),
        80,
        CPORT,
        90,
        8,
        SYN | ACK,
        &MSS1460,
        &[],
    );
    let (a, out) = run(w, s(1), 1, &synack);
    assert_eq!(a, Action::Forward { port: 0 });
    assert_frame(
        &out,
        &tcp_frame(
            MAC_GW,
            MAC_P0,
            ip(VIP, CLIENT, 6),
            80,
            CPORT,
            90,
            8,
            SYN | ACK,
            &MSS1460,
            &[],
        ),
    );
    // Removed (VRRP Backup): ignored again; removing twice is harmless.
    for _ in 0..2 {
        w.apply(Command::SetKernelAddr {
            port: 1,
            addr: Ipv4Addr::from(gw),
            present: false,
        })
        .expect("remove");
    }
    assert_eq!(w.services().runtime_kernel_addrs().count(), 0);
    assert_eq!(
        run(w, s(1), 1, &req).0,
        Action::Drop(DropReason::ArpIgnored)
    );
    // The configured address of the port is still the kernel's.
    let req = arp_frame(1, MAC_RS, RS, [0; 6], P1_ADDR, [0xff; 6]);
    assert_eq!(run(w, s(1), 1, &req).0, Action::Punt);
}

#[test]
fn disowned_vip_frames_of_another_workers_flow_are_still_handed_over() {
    let fib = Arc::new(FibHandle::new(Fib::build(&routes()).expect("fib")));
    let mut ws: Vec<Worker> = (0..2)
        .map(|i| Worker::new(worker_cfg(i, 2, 1500), fib.clone()))
        .collect();
    let svc = ServiceKey::new(PROTO_TCP, Ipv4Addr::from(VIP), 80);
    for w in ws.iter_mut() {
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            ..Default::default()
        };
        w.apply(Command::AddService(svc, cfg, Arc::default()))
            .expect("svc");
        let mut rs = RealServerConfig::new(Ipv4Addr::from(RS), 80, 1);
        rs.forward = Forward::Nat;
        w.apply(Command::AddServer(svc, rs, Arc::default()))
            .expect("rs");
        w.learn_neighbor(Ipv4Addr::from(RS), MAC_RS, Duration::ZERO);
        w.learn_neighbor(Ipv4Addr::from(GW), MAC_GW, Duration::ZERO);
    }
    // A client port whose flow worker 1 owns.
    let cport = (30000..31000u16)
        .find(|p| {
            let key = FlowKey::new(6, Ipv4Addr::from(CLIENT), *p, Ipv4Addr::from(VIP), 80);
            flow_owner(&key, 2) == 1
        })
        .expect("a flow of worker 1");
    let (a, _) = run(&mut ws[1], s(1), 0, &nat_syn(cport));
    assert_eq!(a, Action::Forward { port: 1 });
    for w in ws.iter_mut() {
        w.apply(Command::SetVipOwned {
            vip: Ipv4Addr::from(VIP),
            owned: false,
        })
        .expect("disown");
    }
    // The established flow: worker 0 hands it over, worker 1 forwards it.
    let ack = tcp_frame(
        MAC_P0,
        MAC_GW,
        ip(CLIENT, VIP, 6),
        cport,
        80,
        8,
        91,
        ACK,
        &[],
        &[],
    );
    assert_eq!(
        run(&mut ws[0], s(2), 0, &ack).0,
        Action::Handover { worker: 1 }
    );
    assert_eq!(
        run(&mut ws[1], s(2), 0, &ack).0,
        Action::Forward { port: 1 }
    );
    // A new flow of worker 1: handed over by worker 0, refused by its owner.
    let other = (cport + 1..31000u16)
        .find(|p| {
            let key = FlowKey::new(6, Ipv4Addr::from(CLIENT), *p, Ipv4Addr::from(VIP), 80);
            flow_owner(&key, 2) == 1
        })
        .expect("another flow of worker 1");
    let syn = nat_syn(other);
    assert_eq!(
        run(&mut ws[0], s(2), 0, &syn).0,
        Action::Handover { worker: 1 }
    );
    assert_eq!(
        run(&mut ws[1], s(2), 0, &syn).0,
        Action::Drop(DropReason::VipNotOwned)
    );
}
