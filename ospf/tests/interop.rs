//! Interoperability with real OSPF routers, FRR ospfd (keyed MD5) and BIRD 2
//! (HMAC-SHA-256, RFC 5709), over a veth pair between two network namespaces.
//!
//! Needs root, `ip`, FRR (`/usr/lib/frr/zebra`, `ospfd`) and BIRD 2 (`bird`); run with
//! `cargo test -p ospf --test interop -- --nocapture` (CI runs it as part of the workspace tests). Each
//! test re-executes itself inside the second namespace (`OSPF_PEER_CHILD=1`), where it
//! drives an [`ospf::Instance`] over a raw IP socket (protocol 89) and checks the peer's
//! kernel routing table. Namespaces, daemons and files are removed by a drop guard, also
//! on failure. Set `OSPF_PEER_PCAP=FILE` to keep a capture.

use ospf::auth::AuthKey;
use ospf::instance::NeighborState;
use ospf::{Event, ExternalSpec, Instance, InstanceConfig, InterfaceConfig, Ipv4Net};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

const KEY: &[u8] = b"s3cret";

fn sh(cmd: &str) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Frr,
    Bird,
}

struct Lab {
    a: String,
    b: String,
    dir: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for d in ["ospfd", "zebra", "bird", "tcpdump"] {
            sh(&format!(
                "kill $(cat {}/run/{d}.pid 2>/dev/null) 2>/dev/null",
                self.dir
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
        sh(&format!(
            "ip netns del {} 2>/dev/null; ip netns del {} 2>/dev/null",
            self.a, self.b
        ));
        sh(&format!(
            "rm -rf {}; rm -f /var/run/frr/ospfd-gr.json",
            self.dir
        ));
    }
}

const FRR_CONF: &str = "hostname o
interface eth0
 ip ospf hello-interval 1
 ip ospf dead-interval 4
 ip ospf authentication message-digest
 ip ospf message-digest-key 1 md5 s3cret
router ospf
 ospf router-id 10.99.0.1
 timers lsa min-arrival 0
 timers throttle spf 0 50 1000
 network 10.99.0.0/24 area 0
 network 192.0.2.1/32 area 0
";

const BIRD_CONF: &str = r#"router id 10.99.0.1;
protocol device { }
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol ospf v2 o {
  ecmp yes;
  ipv4 { import all; export none; };
  area 0 {
    interface "eth0" {
      type broadcast; hello 1; dead 4;
      authentication cryptographic;
      password "s3cret" { id 1; algorithm hmac sha256; };
    };
    interface "lo" { stub yes; };
  };
}
"#;

fn lab(peer: Peer, name: &str) {
    if std::env::var("OSPF_PEER_CHILD").is_ok() {
        child(peer);
        return;
    }
    let pid = std::process::id();
    let tag = if peer == Peer::Frr { "f" } else { "b" };
    let lab = Lab {
        a: format!("flab-ospf-{pid}{tag}-a"),
        b: format!("flab-ospf-{pid}{tag}-b"),
        dir: format!("/tmp/flab-ospf-{pid}{tag}"),
    };
    let (a, b, dir) = (&lab.a, &lab.b, &lab.dir);
    let out = sh(&format!(
        "set -e; mkdir -p {dir}/run; ip netns add {a}; ip netns add {b};
         ip link add eth0 netns {a} type veth peer name eth0 netns {b};
         ip -n {a} addr add 10.99.0.1/24 dev eth0; ip -n {b} addr add 10.99.0.2/24 dev eth0;
         ip -n {a} link set lo up; ip -n {b} link set lo up;
         ip -n {a} link set eth0 up; ip -n {b} link set eth0 up;
         ip -n {a} addr add 192.0.2.1/32 dev lo"
    ));
    assert!(
        sh(&format!("ip netns list | grep -c flab-ospf-{pid}{tag}")).trim() == "2",
        "{out}"
    );
    match peer {
        Peer::Frr => {
            std::fs::write(format!("{dir}/zebra.conf"), "hostname z\n").unwrap();
            std::fs::write(format!("{dir}/ospfd.conf"), FRR_CONF).unwrap();
            sh(&format!("chown -R frr:frr {dir}"));
            for d in ["zebra", "ospfd"] {
                let out = sh(&format!(
                    "ip netns exec {a} /usr/lib/frr/{d} -d -f {dir}/{d}.conf -i {dir}/run/{d}.pid \
                     -z {dir}/run/zserv.api --vty_socket {dir}/run -P 0"
                ));
                assert!(!out.contains("rror"), "{d}: {out}");
            }
        }
        Peer::Bird => {
            std::fs::write(format!("{dir}/bird.conf"), BIRD_CONF).unwrap();
            let out = sh(&format!(
                "ip netns exec {a} bird -c {dir}/bird.conf -s {dir}/run/bird.ctl -P {dir}/run/bird.pid"
            ));
            assert!(!out.contains("rror"), "bird: {out}");
        }
    }
    if let Ok(pcap) = std::env::var("OSPF_PEER_PCAP") {
        sh(&format!(
            "ip netns exec {a} tcpdump -n -i eth0 -w {pcap} proto 89 >/dev/null 2>&1 & echo $! > {dir}/run/tcpdump.pid"
        ));
    }
    let exe = std::env::current_exe().unwrap();
    let st = Command::new("ip")
        .args(["netns", "exec", b])
        .arg(exe)
        .args(["--exact", name, "--nocapture"])
        .env("OSPF_PEER_CHILD", "1")
        .env("OSPF_PEER_NS", a)
        .env("OSPF_PEER_DIR", dir)
        .status()
        .unwrap();
    assert!(st.success(), "child failed");
}

#[test]
fn frr_interop() {
    lab(Peer::Frr, "frr_interop");
}

#[test]
fn bird_interop() {
    lab(Peer::Bird, "bird_interop");
}

struct Io {
    sock: Socket,
    start: Instant,
}

impl Io {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn flush(&self, inst: &mut Instance) {
        while let Some(t) = inst.poll_transmit() {
            self.sock
                .send_to(&t.bytes, &SocketAddrV4::new(t.dst, 0).into())
                .expect("send");
        }
    }
    /// Drives the instance until `pred` holds or `limit` passes; returns when it held.
    fn run(
        &self,
        inst: &mut Instance,
        limit: Duration,
        mut pred: impl FnMut(&mut Instance, Duration) -> bool,
    ) -> Option<Duration> {
        let end = self.now() + limit;
        let mut buf = [0u8; 9000];
        loop {
            let now = self.now();
            self.flush(inst);
            if pred(inst, now) {
                return Some(self.now());
            }
            if now >= end {
                return None;
            }
            let wait = inst
                .poll_timeout()
                .map(|t| t.saturating_sub(now))
                .unwrap_or(Duration::from_millis(5))
                .clamp(Duration::from_millis(1), Duration::from_millis(5));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            if let Ok(n) = (&self.sock).read(&mut buf) {
                let pkt = &buf[..n];
                if n < 20 || n < usize::from(pkt[0] & 0x0f) * 4 {
                    continue;
                }
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
                let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
                if src != Ipv4Addr::new(10, 99, 0, 2) {
                    inst.handle_packet(self.now(), 1, src, dst, &pkt[ihl..]);
                }
            }
            let now = self.now();
            if inst.poll_timeout().is_some_and(|t| t <= now) {
                inst.handle_timeout(now);
            }
        }
    }
}

fn child(peer: Peer) {
    let ns = std::env::var("OSPF_PEER_NS").unwrap();
    let dir = std::env::var("OSPF_PEER_DIR").unwrap();
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(89))).expect("raw socket");
    sock.bind_device(Some(b"eth0")).unwrap();
    let me = Ipv4Addr::new(10, 99, 0, 2);
    sock.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 5), &me)
        .unwrap();
    sock.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 6), &me)
        .unwrap();
    sock.set_multicast_if_v4(&me).unwrap();
    sock.set_multicast_loop_v4(false).unwrap();
    sock.set_multicast_ttl_v4(1).unwrap();
    sock.set_ttl(1).unwrap();
    sock.set_tos(0xc0).unwrap();
    let io = Io {
        sock,
        start: Instant::now(),
    };
    let mut ifc = InterfaceConfig::new(1, "eth0", me, 24);
    ifc.hello_interval = Duration::from_secs(1);
    ifc.dead_interval = Duration::from_secs(4);
    ifc.auth = match peer {
        Peer::Frr => AuthKey::Md5 {
            key_id: 1,
            key: KEY.to_vec(),
        },
        Peer::Bird => AuthKey::HmacSha256 {
            key_id: 1,
            key: KEY.to_vec(),
        },
    };
    let mut cfg = InstanceConfig::new(Ipv4Addr::new(10, 99, 0, 2));
    cfg.interfaces = vec![ifc];
    // the peers discard instances that arrive within their MinLSArrival (1 s)
    cfg.min_ls_interval = Duration::from_secs(1);
    cfg.min_ls_arrival = Duration::from_secs(1);
    cfg.crypto_seq_base = 1000;
    let mut inst = Instance::new(cfg, io.now());
    let vip = Ipv4Net::new(Ipv4Addr::new(100, 96, 122, 210), 32).unwrap();
    let ext = Ipv4Net::new(Ipv4Addr::new(203, 0, 113, 0), 24).unwrap();
    inst.announce(io.now(), vip, 0, None);
    inst.announce(
        io.now(),
        ext,
        0,
        Some(ExternalSpec {
            type2: true,
            metric: 20,
            tag: 7,
            forwarding: Ipv4Addr::UNSPECIFIED,
        }),
    );
    inst.interface_up(io.now(), 1);
    let full = io.run(&mut inst, Duration::from_secs(30), |i, now| {
        i.neighbors(now)
            .iter()
            .any(|n| n.state == NeighborState::Full)
    });
    println!("{peer:?}: adjacency Full after {full:?}");
    assert!(
        full.is_some(),
        "no Full adjacency: {:?} drops {:?}",
        inst.neighbors(io.now()),
        inst.drop_counts()
    );
    // we learn the peer's loopback with the peer's address as next hop
    let lo = Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 1), 32).unwrap();
    let learned = io.run(&mut inst, Duration::from_secs(15), |i, _| {
        i.routes()
            .get(&lo)
            .is_some_and(|r| r.nexthops.contains(&(1, Ipv4Addr::new(10, 99, 0, 1))))
    });
    assert!(learned.is_some(), "routes: {:?}", inst.routes());
    // the peer installs our VIP (stub link) and external in its kernel table
    let has = |pfx: &str| sh(&format!("ip -n {ns} route show {pfx}")).contains("via 10.99.0.2");
    let t0 = io.now();
    let ok = io.run(&mut inst, Duration::from_secs(20), |_, _| {
        has("100.96.122.210/32") && has("203.0.113.0/24")
    });
    let dump = || match peer {
        Peer::Frr => sh(&format!(
            "vtysh --vty_socket {dir}/run -c 'show ip route' -c 'show ip ospf database'"
        )),
        Peer::Bird => sh(&format!(
            "birdc -s {dir}/run/bird.ctl show ospf state; birdc -s {dir}/run/bird.ctl show route"
        )),
    };
    assert!(ok.is_some(), "peer routes: {}", dump());
    println!(
        "{peer:?}: VIP and external in the peer's kernel {:?} after Full",
        ok.unwrap() - t0
    );
    // let flooding settle (nothing left to retransmit, and past the peer's MinLSArrival
    // for the last instance it accepted), then withdraw the VIP: the peer removes it
    let settled = io.run(&mut inst, Duration::from_secs(15), |i, now| {
        i.neighbors(now).iter().all(|n| n.rxmt_len == 0)
    });
    assert!(settled.is_some());
    io.run(&mut inst, Duration::from_millis(1100), |_, _| false);
    let t1 = io.now();
    inst.withdraw(t1, vip);
    let gone = io.run(&mut inst, Duration::from_secs(15), |_, _| {
        !has("100.96.122.210/32")
    });
    assert!(gone.is_some(), "peer kept the withdrawn VIP: {}", dump());
    println!(
        "{peer:?}: withdrawal left the peer's kernel table after {:?} (ip-route polling included)",
        gone.unwrap() - t1
    );
    // graceful shutdown: flush, acknowledgments, the peer drops what we announced
    let t2 = io.now();
    inst.shutdown(t2);
    let mut acked = None;
    let done = io.run(&mut inst, Duration::from_secs(10), |i, _| {
        while let Some(e) = i.poll_event() {
            if let Event::ShutdownComplete { acked: a } = e {
                acked = Some(a);
            }
        }
        acked.is_some()
    });
    assert_eq!(acked, Some(true), "shutdown not acknowledged");
    println!(
        "{peer:?}: shutdown acknowledged after {:?}",
        done.unwrap() - t2
    );
    let dropped = io.run(&mut inst, Duration::from_secs(15), |_, _| {
        !has("203.0.113.0/24")
    });
    assert!(dropped.is_some(), "peer kept the external after shutdown");
    println!(
        "{peer:?}: external left the peer's kernel table {:?} after shutdown",
        dropped.unwrap() - t2
    );
}
