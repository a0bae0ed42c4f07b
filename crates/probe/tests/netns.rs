//! Probes against real servers (nginx, a UDP echo, the kernel's ICMP) in network
//! namespaces. Needs root.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Lab, BLACKHOLE_IP, BLACKHOLE_IP6, CLIENT_IP, SERVER_IP, SERVER_IP6};
use health::config::{parse_digest, DEFAULT_DELAY_LOOP};
use health::{
    CheckKind, CheckerConfig, FailureKind, HttpCheck, PingCheck, ProbeOutcome, RealServerConfig,
    ServerEvent, ServiceConfig, ServiceEvent, StatusRange, TcpCheck, UdpCheck, UdpReply, UrlCheck,
};
use md5::{Digest, Md5};
use probe::ping::{ping_with, PingSocket};
use probe::{http_check, ping_check, tcp_check, udp_check, Prober, ProberConfig};

const T: Duration = Duration::from_millis(500);

fn at(port: u16) -> SocketAddr {
    SocketAddr::new(SERVER_IP.parse().unwrap(), port)
}

fn http(paths: &[&str]) -> HttpCheck {
    HttpCheck {
        conn: Default::default(),
        ssl: false,
        urls: paths.iter().map(|p| UrlCheck::new(*p)).collect(),
        virtualhost: None,
        enable_sni: false,
    }
}

#[test]
fn http_get_against_nginx() {
    let mut lab = Lab::new();
    lab.nginx("a", 8080, false);
    lab.client(|| async {
        let ok = http(&["/ok"]);
        assert_eq!(http_check(&ok, at(8080), T).await, ProbeOutcome::Success);
        // HTTP_GET expecting 200 marks the 500 location down.
        let bad = http(&["/bad"]);
        assert_eq!(
            http_check(&bad, at(8080), T).await,
            ProbeOutcome::Failure(FailureKind::Response)
        );
        // Unless 500 is what the URL accepts.
        let mut bad500 = http(&["/bad"]);
        bad500.urls[0].status_codes = vec![StatusRange::code(500)];
        assert_eq!(
            http_check(&bad500, at(8080), T).await,
            ProbeOutcome::Success
        );
        // Every URL must pass.
        let both = http(&["/ok", "/bad"]);
        assert!(!http_check(&both, at(8080), T).await.is_success());
        let missing = http(&["/ok", "/nothing-here"]);
        assert!(!http_check(&missing, at(8080), T).await.is_success());

        // Digest of the body, as genhash prints it.
        let hex: String = Md5::digest(b"ok\n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut dig = http(&["/ok"]);
        dig.urls[0].digest = Some(parse_digest(&hex).unwrap());
        assert_eq!(http_check(&dig, at(8080), T).await, ProbeOutcome::Success);
        dig.urls[0].digest = Some([0; 16]);
        assert_eq!(
            http_check(&dig, at(8080), T).await,
            ProbeOutcome::Failure(FailureKind::Response)
        );

        // Virtual host and regex on the body.
        let mut vh = http(&["/host"]);
        vh.virtualhost = Some("www.example.test".into());
        vh.urls[0].regex = Some(r"^host=www\.example\.test\n".into());
        assert_eq!(http_check(&vh, at(8080), T).await, ProbeOutcome::Success);
        vh.urls[0].regex = Some("host=other".into());
        assert!(!http_check(&vh, at(8080), T).await.is_success());
        vh.urls[0].regex_no_match = true;
        assert!(http_check(&vh, at(8080), T).await.is_success());

        // Refused port, and connect_port overriding the server's port.
        assert_eq!(
            http_check(&ok, at(8090), T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        let mut redirected = http(&["/ok"]);
        redirected.conn.connect_port = Some(8080);
        assert_eq!(
            http_check(&redirected, at(8090), T).await,
            ProbeOutcome::Success
        );
    });
}

#[test]
fn ssl_get_against_nginx() {
    let mut lab = Lab::new();
    lab.nginx("tls", 8081, true);
    lab.client(|| async {
        let mut c = http(&["/ok"]);
        c.ssl = true;
        c.enable_sni = true;
        c.virtualhost = Some("rs.test".into());
        c.urls[0].regex = Some("tls ok rs.test".into());
        // Self-signed certificate: accepted, as keepalived does; SNI reaches nginx.
        assert_eq!(
            http_check(&c, at(9081), Duration::from_secs(2)).await,
            ProbeOutcome::Success
        );
        c.enable_sni = false;
        assert!(!http_check(&c, at(9081), Duration::from_secs(2))
            .await
            .is_success());
        // TLS against a plain HTTP port fails the handshake.
        c.urls[0].regex = None;
        assert_eq!(
            http_check(&c, at(8081), Duration::from_secs(2)).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
    });
}

#[test]
fn tcp_check_up_refused_and_blackholed() {
    let mut lab = Lab::new();
    lab.nginx("t", 8082, false);
    lab.client(|| async {
        let c = TcpCheck::default();
        assert_eq!(tcp_check(&c, at(8082), T).await, ProbeOutcome::Success);
        assert_eq!(
            tcp_check(&c, at(8083), T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        let t0 = Instant::now();
        let hole = SocketAddr::new(BLACKHOLE_IP.parse().unwrap(), 80);
        assert_eq!(
            tcp_check(&c, hole, T).await,
            ProbeOutcome::Failure(FailureKind::Timeout)
        );
        let took = t0.elapsed();
        assert!(took >= T && took < T * 2, "{took:?}");
        // bindto / bind_port: the client's own address works, a foreign one cannot bind.
        let mut bound = TcpCheck::default();
        bound.conn.bindto = Some(CLIENT_IP.parse().unwrap());
        bound.conn.bind_port = Some(40001);
        assert_eq!(tcp_check(&bound, at(8082), T).await, ProbeOutcome::Success);
        bound.conn.bindto = Some("192.0.2.1".parse().unwrap());
        assert_eq!(
            tcp_check(&bound, at(8082), T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        // connect_ip overrides the server address.
        let mut over = TcpCheck::default();
        over.conn.connect_ip = Some(SERVER_IP.parse().unwrap());
        assert_eq!(
            tcp_check(&over, hole, T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        let hole_8082 = SocketAddr::new(BLACKHOLE_IP.parse().unwrap(), 8082);
        assert_eq!(tcp_check(&over, hole_8082, T).await, ProbeOutcome::Success);
    });
}

#[test]
fn udp_check_echo_and_closed_port() {
    let mut lab = Lab::new();
    lab.udp_echo(7777);
    lab.client(|| async {
        let mut c = UdpCheck {
            payload: b"PING".to_vec(),
            require_reply: UdpReply::Prefix(b"PONG PING".to_vec()),
            ..Default::default()
        };
        assert_eq!(udp_check(&c, at(7777), T).await, ProbeOutcome::Success);
        c.require_reply = UdpReply::Prefix(b"NOPE".to_vec());
        assert_eq!(
            udp_check(&c, at(7777), T).await,
            ProbeOutcome::Failure(FailureKind::Response)
        );
        // Closed port: ICMP port unreachable is down, with or without require_reply.
        c.require_reply = UdpReply::NoErrorIsEnough;
        assert_eq!(
            udp_check(&c, at(7778), T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        c.require_reply = UdpReply::AnyReply;
        assert_eq!(
            udp_check(&c, at(7778), T).await,
            ProbeOutcome::Failure(FailureKind::Connect)
        );
        // Silence (nobody answers ARP): passes only without require_reply.
        let hole = SocketAddr::new(BLACKHOLE_IP.parse().unwrap(), 7777);
        assert_eq!(
            udp_check(&c, hole, T).await,
            ProbeOutcome::Failure(FailureKind::Timeout)
        );
        c.require_reply = UdpReply::NoErrorIsEnough;
        assert_eq!(udp_check(&c, hole, T).await, ProbeOutcome::Success);
    });
}

/// PING_CHECK to `server` succeeds and to `hole` times out, on both socket kinds.
async fn ping_both_socket_kinds(server: IpAddr, hole: IpAddr) {
    let c = PingCheck::default();
    assert_eq!(ping_check(&c, server, T).await, ProbeOutcome::Success);
    for kind in [PingSocket::Datagram, PingSocket::Raw] {
        assert_eq!(
            ping_with(&c, server, T, kind).await,
            ProbeOutcome::Success,
            "{server} {kind:?}"
        );
        assert_eq!(
            ping_with(&c, hole, T, kind).await,
            ProbeOutcome::Failure(FailureKind::Timeout),
            "{hole} {kind:?}"
        );
    }
}

#[test]
fn ping_check_datagram_and_raw() {
    let lab = Lab::new();
    lab.client(|| async {
        let server = SERVER_IP.parse().unwrap();
        ping_both_socket_kinds(server, BLACKHOLE_IP.parse().unwrap()).await;
        // Many at once on raw sockets: each takes only its own reply.
        let c = PingCheck::default();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let c = c.clone();
            set.spawn(async move { ping_with(&c, server, T, PingSocket::Raw).await });
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap(), ProbeOutcome::Success);
        }
    });
}

#[test]
fn ping_check_ipv6_datagram_and_raw() {
    let lab = Lab::new();
    lab.add_ipv6();
    lab.client(|| async {
        let server = SERVER_IP6.parse().unwrap();
        ping_both_socket_kinds(server, BLACKHOLE_IP6.parse().unwrap()).await;
    });
}

fn http_server(port: u16) -> RealServerConfig {
    let mut c = CheckerConfig::new(CheckKind::Http(http(&["/ok"])));
    c.delay_loop = Duration::from_secs(1);
    c.retry = 1;
    c.delay_before_retry = Duration::from_secs(1);
    if let CheckKind::Http(h) = &mut c.kind {
        h.conn.connect_timeout = Duration::from_secs(1);
    }
    let mut rs = RealServerConfig::new(SERVER_IP.parse().unwrap(), port);
    rs.checkers.push(c);
    rs
}

/// The Prober with two nginx servers: stopping one gives ServerDown within keepalived's
/// timing (refused attempts end at once, so down comes `retry × delay_before_retry` to
/// `delay_loop + retry × delay_before_retry` after the stop: 1 s to 2 s here), starting
/// it gives ServerUp within one `delay_loop`.
#[test]
fn prober_end_to_end_two_nginx() {
    assert!(DEFAULT_DELAY_LOOP > Duration::from_secs(1));
    let mut lab = Lab::new();
    lab.nginx("one", 8084, false);
    lab.nginx("two", 8085, false);
    let client = lab.client.clone();
    let (ctl_tx, ctl_rx) = std::sync::mpsc::channel::<&'static str>();
    let (ack_tx, ack_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    // The prober runs in the client namespace; this thread drives nginx.
    let prober = std::thread::spawn(move || {
        Lab::block_on_in(&client, move || async move {
            let mut ack_rx = ack_rx;
            let svc = ServiceConfig::new("web", vec![http_server(8084), http_server(8085)]);
            let (h, mut events) = Prober::start(vec![svc], ProberConfig::default()).unwrap();
            let mut log = Vec::new();
            // Let both servers pass a check first.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let st = h.status().await.unwrap();
            assert!(st[0].has_quorum);
            assert!(st[0].servers.iter().all(|s| s.alive));
            for s in &st[0].servers {
                assert_eq!(s.checkers[0].kind, "HTTP_GET");
                assert_eq!(s.checkers[0].last_result, Some(ProbeOutcome::Success));
                assert!(s.checkers[0].last_latency.is_some());
            }
            ctl_tx.send("stop two").unwrap();
            let stopped = ack_rx.recv().await.unwrap();
            let ev = tokio::time::timeout(Duration::from_secs(4), events.recv())
                .await
                .expect("ServerDown in time")
                .unwrap();
            let down_after = stopped.elapsed();
            log.push(ev.clone());
            assert_eq!(
                ev.event,
                ServiceEvent::Server {
                    index: 1,
                    event: ServerEvent::Down { inhibited: false }
                }
            );
            assert!(
                down_after >= Duration::from_millis(900)
                    && down_after <= Duration::from_millis(2500),
                "down {down_after:?} after stop"
            );
            let st = h.status().await.unwrap();
            let two = &st[0].servers[1];
            assert!(!two.alive);
            assert!(two.last_change.is_some());
            assert_eq!(two.checkers[0].consecutive_failures, 2);
            assert_eq!(
                two.checkers[0].last_result,
                Some(ProbeOutcome::Failure(FailureKind::Connect))
            );
            assert!(st[0].has_quorum, "one server is enough for quorum 1");
            ctl_tx.send("start two").unwrap();
            let started = ack_rx.recv().await.unwrap();
            let ev = tokio::time::timeout(Duration::from_secs(3), events.recv())
                .await
                .expect("ServerUp in time")
                .unwrap();
            let up_after = started.elapsed();
            assert_eq!(
                ev.event,
                ServiceEvent::Server {
                    index: 1,
                    event: ServerEvent::Up { weight: 1 }
                }
            );
            assert!(
                up_after <= Duration::from_millis(1500),
                "up {up_after:?} after start"
            );
            eprintln!("ServerDown {down_after:?} after SIGTERM, ServerUp {up_after:?} after start");
            let m = h.metrics().snapshot();
            assert!(m.probes_started >= 6, "{m:?}");
            assert!(m.failures[1] >= 2, "{m:?}");
            assert!(m.latency_quantile(0.5).is_some());
            assert!(h.shutdown().await.unwrap().is_empty(), "no omega");
            log
        })
    });
    for cmd in ctl_rx.iter() {
        match cmd {
            "stop two" => {
                let sent = lab.stop_nginx("two");
                let _ = ack_tx.send(sent);
            }
            "start two" => {
                lab.start_nginx("two");
                let _ = ack_tx.send(Instant::now());
            }
            _ => unreachable!(),
        }
    }
    match prober.join() {
        Ok(log) => assert_eq!(log.len(), 1),
        Err(p) => std::panic::resume_unwind(p),
    }
}
