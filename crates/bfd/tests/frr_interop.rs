//! Live interoperability with FRR bfdd and BIRD 2 in a network-namespace lab (needs root,
//! FRR, BIRD and iproute2): run with `cargo test -p bfd --test frr_interop` (CI runs it as root).
//!
//! Namespaces `flab-bfd-<pid>-<tag>a` (this crate, driven over plain UDP sockets by a test
//! thread that entered the namespace) and `flab-bfd-<pid>-<tag>b` (zebra + bfdd with a static
//! peer) joined by a veth. Checked: three-way bring-up, a Poll Sequence that FRR answers
//! (its view of our TX interval changes), FRR `shutdown` seen as AdminDown (not a failure,
//! RFC 5882), recovery, and failure detection after `kill -9` of bfdd.
//!
//! The received TTL is passed as 255: plain std sockets cannot read it (the daemon's
//! driver uses IP_RECVTTL); the TTL rule is covered by the unit and simulation tests and
//! the capture test checks that FRR sends 255.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bfd::{Bfd, Config, Diagnostic, Event, SessionParams, State};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const FRR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces, daemons and files of one run; removed on drop (also on panic).
struct Lab {
    a: String,
    b: String,
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            a: format!("flab-bfd-{pid}-{tag}a"),
            b: format!("flab-bfd-{pid}-{tag}b"),
            dir: PathBuf::from(format!("/tmp/flab-bfd-{pid}-{tag}")),
        };
        let (a, b) = (lab.a.as_str(), lab.b.as_str());
        sh(&["ip", "netns", "add", a]);
        sh(&["ip", "netns", "add", b]);
        sh(&[
            "ip", "link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0",
            "netns", b,
        ]);
        sh(&["ip", "-n", a, "addr", "add", "10.0.0.1/24", "dev", "eth0"]);
        sh(&["ip", "-n", b, "addr", "add", "10.0.0.2/24", "dev", "eth0"]);
        for n in [a, b] {
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", n, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn run_dir(&self) -> String {
        format!("{}/run", self.dir.display())
    }

    fn start_frr(&self) {
        let d = self.dir.display().to_string();
        std::fs::create_dir_all(self.run_dir()).unwrap();
        std::fs::write(format!("{d}/zebra.conf"), "hostname b\n!\n").unwrap();
        std::fs::write(
            format!("{d}/bfdd.conf"),
            "bfd\n peer 10.0.0.1 interface eth0\n  receive-interval 300\n  transmit-interval 300\n !\n!\n",
        )
        .unwrap();
        sh(&["chown", "-R", "frr:frr", &d]);
        for x in ["zebra", "bfdd"] {
            let mut args = vec![
                "ip".to_string(),
                "netns".into(),
                "exec".into(),
                self.b.clone(),
                format!("/usr/lib/frr/{x}"),
                "-d".into(),
                "-f".into(),
                format!("{d}/{x}.conf"),
                "-i".into(),
                format!("{d}/run/{x}.pid"),
                "-z".into(),
                format!("{d}/run/zserv.api"),
                "--vty_socket".into(),
                self.run_dir(),
                "-P".into(),
                "0".into(),
            ];
            if x == "bfdd" {
                args.push("--bfdctl".into());
                args.push(format!("{d}/run/bfdd.sock"));
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            sh(&refs);
        }
    }

    fn start_bird(&self, auth: &str) {
        let d = self.dir.display().to_string();
        std::fs::create_dir_all(self.run_dir()).unwrap();
        let conf = format!(
            "router id 10.0.0.2;\nprotocol device {{}}\nprotocol bfd {{\n  interface \"eth0\" {{\n    \
             interval 300 ms;\n    multiplier 3;\n    authentication {auth};\n    \
             password \"fulcrum-bfd\" {{ id 7; }};\n  }};\n  neighbor 10.0.0.1 dev \"eth0\";\n}}\n"
        );
        std::fs::write(format!("{d}/bird.conf"), conf).unwrap();
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.b,
            "bird",
            "-c",
            &format!("{d}/bird.conf"),
            "-s",
            &format!("{d}/run/bird.ctl"),
            "-P",
            &format!("{d}/run/bird.pid"),
        ]);
    }

    fn birdc(&self, cmd: &str) -> String {
        sh(&[
            "birdc",
            "-s",
            &format!("{}/run/bird.ctl", self.dir.display()),
            cmd,
        ])
    }

    fn vtysh(&self, cmds: &[&str]) -> String {
        let mut args = vec!["vtysh", "--vty_socket"];
        let rd = self.run_dir();
        args.push(&rd);
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        sh(&args)
    }

    fn kill(&self, daemon: &str, signal: &str) {
        let pidfile = format!("{}/run/{daemon}.pid", self.dir.display());
        if let Ok(p) = std::fs::read_to_string(&pidfile) {
            let _ = Command::new("kill").args([signal, p.trim()]).status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill("bfdd", "-9");
        self.kill("zebra", "-TERM");
        self.kill("bird", "-9");
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// This crate's side: a Bfd endpoint driven over UDP sockets inside namespace a.
struct Node {
    bfd: Bfd,
    id: bfd::SessionId,
    rx: UdpSocket,
    tx: UdpSocket,
    start: Instant,
    ifindex: u32,
    events: Vec<(Duration, Event)>,
}

impl Node {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Run the event loop until `cond` holds or `limit` passes; returns whether it held.
    fn run(&mut self, limit: Duration, mut cond: impl FnMut(&Node) -> bool) -> bool {
        let end = self.now() + limit;
        let mut buf = [0u8; 256];
        loop {
            let now = self.now();
            if self.bfd.poll_timeout().is_some_and(|t| t <= now) {
                self.bfd.handle_timeout(now);
            }
            while let Some(t) = self.bfd.poll_transmit() {
                self.tx
                    .send_to(&t.bytes, SocketAddrV4::new(t.peer, 3784))
                    .unwrap();
            }
            while let Some(e) = self.bfd.poll_event() {
                self.events.push((now, e));
            }
            if cond(self) {
                return true;
            }
            if now >= end {
                return false;
            }
            let wait = self
                .bfd
                .poll_timeout()
                .map_or(Duration::from_millis(10), |t| t.saturating_sub(self.now()))
                .clamp(Duration::from_micros(200), Duration::from_millis(10));
            self.rx.set_read_timeout(Some(wait)).unwrap();
            if let Ok((n, src)) = self.rx.recv_from(&mut buf) {
                let std::net::SocketAddr::V4(src) = src else {
                    continue;
                };
                let now = self.now();
                let _ = self
                    .bfd
                    .handle_packet(now, *src.ip(), US, self.ifindex, 255, &buf[..n]);
            }
        }
    }

    fn info(&self) -> bfd::PeerInfo {
        self.bfd.peer(self.now(), self.id).unwrap()
    }
}

#[test]
fn frr_bfdd_interop() {
    let lab = Lab::new("f");
    let link = sh(&["ip", "-n", &lab.a, "-o", "link", "show", "eth0"]);
    let ifindex: u32 = link.split(':').next().unwrap().trim().parse().unwrap();
    lab.start_frr();
    let ns = File::open(format!("/var/run/netns/{}", lab.a)).unwrap();

    // Everything on this thread from here on lives in namespace a.
    let lab_ref = &lab;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rx = UdpSocket::bind(SocketAddrV4::new(US, 3784)).unwrap();
            let tx = UdpSocket::bind(SocketAddrV4::new(US, 49152)).unwrap();
            tx.set_ttl(255).unwrap();
            let mut bfd = Bfd::new(Config {
                seed: u64::from(std::process::id()),
            });
            let id = bfd
                .add_session(FRR, US, ifindex, SessionParams::default())
                .unwrap();
            let mut node = Node {
                bfd,
                id,
                rx,
                tx,
                start: Instant::now(),
                ifindex,
                events: Vec::new(),
            };

            // 1. Bring-up with FRR, then the Poll Sequence to 300 ms completes.
            assert!(
                node.run(Duration::from_secs(10), |n| n.info().state == State::Up),
                "{:?}",
                node.info()
            );
            assert!(node.run(Duration::from_secs(3), |n| !n.info().poll_active));
            let info = node.info();
            assert_eq!(info.tx_interval, Duration::from_millis(300));
            assert_eq!(info.detection_time, Duration::from_millis(900));
            assert_eq!(info.remote_detect_mult, 3);
            let show = lab_ref.vtysh(&["show bfd peers json"]);
            assert!(show.contains("\"status\":\"up\""), "{show}");
            assert!(
                matches!(node.events.as_slice(), [(_, Event::SessionUp { .. })]),
                "{:?}",
                node.events
            );

            // 2. Our TX goes to 600 ms with a Poll; FRR's Final ends it and FRR sees 600.
            let now = node.now();
            let p = SessionParams {
                desired_min_tx: Duration::from_millis(600),
                ..SessionParams::default()
            };
            node.bfd.set_params(now, id, p).unwrap();
            assert!(node.info().poll_active);
            assert!(node.run(Duration::from_secs(3), |n| !n.info().poll_active));
            assert_eq!(node.info().tx_interval, Duration::from_millis(600));
            node.run(Duration::from_millis(700), |_| false);
            let show = lab_ref.vtysh(&["show bfd peers json"]);
            assert!(show.contains("\"remote-transmit-interval\":600"), "{show}");

            // 3. FRR shuts the peer down: AdminDown, which the client must not act on.
            lab_ref.vtysh(&[
                "configure terminal",
                "bfd",
                "peer 10.0.0.1 interface eth0",
                "shutdown",
            ]);
            assert!(node.run(Duration::from_secs(3), |n| n.info().state == State::Down));
            let down = node.events.iter().find_map(|e| match e.1 {
                Event::SessionDown {
                    diag,
                    client_should_act,
                    ..
                } => Some((diag, client_should_act)),
                _ => None,
            });
            let drops: Vec<_> = node.bfd.drop_counts().filter(|d| d.1 > 0).collect();
            assert_eq!(
                down,
                Some((Diagnostic::NeighborSignaledDown, false)),
                "{:?} {drops:?}",
                node.info()
            );
            assert_eq!(node.info().remote_state, State::AdminDown);

            // 4. `no shutdown`: back Up.
            lab_ref.vtysh(&[
                "configure terminal",
                "bfd",
                "peer 10.0.0.1 interface eth0",
                "no shutdown",
            ]);
            assert!(node.run(Duration::from_secs(10), |n| n.info().state == State::Up));
            assert!(node.run(Duration::from_secs(3), |n| !n.info().poll_active));

            // 5. bfdd killed: detection-time expiry, the client must act.
            let before = node.events.len();
            lab_ref.kill("bfdd", "-9");
            let killed = node.now();
            assert!(node.run(Duration::from_secs(3), |n| n.info().state == State::Down));
            let (at, e) = node.events[before..]
                .iter()
                .find(|e| matches!(e.1, Event::SessionDown { .. }))
                .copied()
                .unwrap();
            match e {
                Event::SessionDown {
                    diag,
                    client_should_act,
                    ..
                } => {
                    assert_eq!(diag, Diagnostic::ControlDetectionTimeExpired);
                    assert!(client_should_act);
                }
                _ => unreachable!(),
            }
            // Detection time is 3 × max(300, FRR's 300) = 900 ms after FRR's last packet,
            // which left at most one FRR interval before the kill.
            let took = at - killed;
            eprintln!("failure detected {took:?} after kill -9 of bfdd");
            assert!(
                took >= Duration::from_millis(550) && took <= Duration::from_millis(1000),
                "{took:?}"
            );
        });
    });
}

#[test]
fn bird_meticulous_sha1_interop() {
    let lab = Lab::new("b");
    let link = sh(&["ip", "-n", &lab.a, "-o", "link", "show", "eth0"]);
    let ifindex: u32 = link.split(':').next().unwrap().trim().parse().unwrap();
    lab.start_bird("meticulous keyed sha1");
    let ns = File::open(format!("/var/run/netns/{}", lab.a)).unwrap();
    let lab_ref = &lab;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rx = UdpSocket::bind(SocketAddrV4::new(US, 3784)).unwrap();
            let tx = UdpSocket::bind(SocketAddrV4::new(US, 49152)).unwrap();
            tx.set_ttl(255).unwrap();
            let key = bfd::AuthKey {
                auth_type: bfd::AuthType::MeticulousKeyedSha1,
                key_id: 7,
                secret: b"fulcrum-bfd".to_vec(),
            };
            let mut bfd = Bfd::new(Config {
                seed: u64::from(std::process::id()),
            });
            let params = SessionParams {
                auth: Some(key),
                ..SessionParams::default()
            };
            let id = bfd.add_session(FRR, US, ifindex, params).unwrap();
            let mut node = Node {
                bfd,
                id,
                rx,
                tx,
                start: Instant::now(),
                ifindex,
                events: Vec::new(),
            };

            assert!(
                node.run(Duration::from_secs(10), |n| n.info().state == State::Up),
                "{:?}",
                node.info()
            );
            assert!(node.run(Duration::from_secs(3), |n| !n.info().poll_active));
            node.run(Duration::from_secs(2), |_| false);
            let info = node.info();
            assert_eq!(info.state, State::Up);
            assert_eq!(info.counters.auth_failures, 0);
            assert!(info.counters.rx_packets > 5);
            assert_eq!(info.tx_interval, Duration::from_millis(300));
            let show = lab_ref.birdc("show bfd sessions");
            assert!(
                show.lines()
                    .any(|l| l.contains("10.0.0.1") && l.contains("Up")),
                "{show}"
            );

            // A wrong key on our side: BIRD's packets fail, the session drops.
            let now = node.now();
            let bad = bfd::AuthKey {
                auth_type: bfd::AuthType::MeticulousKeyedSha1,
                key_id: 7,
                secret: b"fulcrum-bfe".to_vec(),
            };
            node.bfd
                .set_params(
                    now,
                    id,
                    SessionParams {
                        auth: Some(bad),
                        ..SessionParams::default()
                    },
                )
                .unwrap();
            assert!(node.run(Duration::from_secs(3), |n| n.info().state == State::Down));
            assert!(node.info().counters.auth_failures > 0);
            let down = node.events.iter().find_map(|e| match e.1 {
                Event::SessionDown {
                    diag,
                    client_should_act,
                    ..
                } => Some((diag, client_should_act)),
                _ => None,
            });
            assert_eq!(down, Some((Diagnostic::ControlDetectionTimeExpired, true)));
        });
    });
}
