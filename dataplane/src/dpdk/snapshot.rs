//! Connection-table snapshots for the control plane (`fulcrum conns`, `ipvsadm -Lnc`).
//!
//! The connection table lives on its worker's lcore. A snapshot is asked for with
//! [`Control::Snapshot`](super::Control::Snapshot); the loop answers between bursts by
//! walking the table into at most `limit` rows (the only allocation, made when asked,
//! never on the per-packet path) and sends them back on the requester's channel.

use crate::conn::{ticks, TcpState, TICK};
use crate::flow::PROTO_TCP;
use crate::service::Forward;
use crate::worker::Worker;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

/// Rows a snapshot holds unless the requester asks for another limit.
pub const DEFAULT_SNAPSHOT_LIMIT: usize = 10_000;

/// One connection (or persistence template) of a worker, as `ipvsadm -Lnc` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// IP protocol (6 TCP, 17 UDP, 1 ICMP).
    pub proto: u8,
    /// TCP state (`TcpState::None` for UDP, ICMP and templates).
    pub state: TcpState,
    /// Forwarding method of the connection.
    pub forward: Forward,
    /// Client address and port.
    pub client: SocketAddrV4,
    /// Virtual address and port.
    pub vip: SocketAddrV4,
    /// Local (FullNAT) address and port; `None` in the other methods, where the real
    /// server sees the client itself.
    pub local: Option<SocketAddrV4>,
    /// Real server address and port.
    pub server: SocketAddrV4,
    /// Time left until the entry expires (zero when already due).
    pub expires: Duration,
    /// A persistence template, not a connection.
    pub template: bool,
}

/// What one worker answers to a snapshot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSnapshot {
    /// The worker's index in its set.
    pub worker: u16,
    /// At most `limit` entries, in table order.
    pub rows: Vec<ConnInfo>,
    /// Entries in the table (rows plus those left out).
    pub total: usize,
    /// Whether entries were left out because of the limit.
    pub truncated: bool,
}

/// A snapshot request for one worker: the row limit and where to send the answer.
#[derive(Debug)]
pub struct SnapshotRequest {
    /// At most this many rows.
    pub limit: usize,
    /// Where the loop sends the snapshot (a bounded channel of one: the send never
    /// blocks the lcore).
    pub reply: SyncSender<ConnSnapshot>,
}

impl SnapshotRequest {
    /// A request for at most `limit` rows and the receiver of its answer.
    pub fn new(limit: usize) -> (SnapshotRequest, Receiver<ConnSnapshot>) {
        let (reply, rx) = sync_channel(1);
        (SnapshotRequest { limit, reply }, rx)
    }
}

/// Walks `worker`'s connection table into at most `limit` rows; `now` is the time the
/// worker's loop passes to it (expiry is reported as the time left from `now`), `id`
/// the worker's index.
pub fn conn_snapshot(worker: &Worker, id: u16, now: Duration, limit: usize) -> ConnSnapshot {
    let table = worker.conns();
    let total = table.len();
    let now_ticks = ticks(now);
    let mut rows = Vec::with_capacity(total.min(limit));
    for (_, c) in table.iter().take(limit) {
        let forward = Forward::from_u8(c.mode());
        let template = c.is_template();
        let left = c.deadline_ticks().saturating_sub(now_ticks);
        let state = if c.proto == PROTO_TCP && !template {
            c.state()
        } else {
            TcpState::None
        };
        rows.push(ConnInfo {
            proto: c.proto,
            state,
            forward,
            client: SocketAddrV4::new(Ipv4Addr::from(c.caddr), c.cport),
            vip: SocketAddrV4::new(Ipv4Addr::from(c.vaddr), c.vport),
            local: (forward == Forward::FullNat && !template)
                .then(|| SocketAddrV4::new(Ipv4Addr::from(c.laddr), c.lport)),
            server: SocketAddrV4::new(Ipv4Addr::from(c.raddr), c.rport),
            expires: TICK.saturating_mul(left),
            template,
        });
    }
    ConnSnapshot {
        worker: id,
        truncated: rows.len() < total,
        rows,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Timeouts;
    use crate::fib::{Fib, FibHandle, NextHop, Prefix, Route};
    use crate::sched::SchedKind;
    use crate::service::{Command, RealServerConfig, ServiceConfig, ServiceKey};
    use crate::worker::{Action, Frame, PortConfig, WorkerConfig};
    use std::sync::Arc;

    const MAC0: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC1: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x1b];
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 188);
    const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 27);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// RFC 1071, written here (independent of the core's incremental updates).
    fn csum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = 0;
        for p in parts {
            for pair in p.chunks(2) {
                let hi = u32::from(pair[0]) << 8;
                sum += hi | pair.get(1).copied().map_or(0, u32::from);
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An Ethernet + IPv4 + TCP SYN frame from the client to VIP:80.
    fn syn(sport: u16) -> Vec<u8> {
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&80u16.to_be_bytes());
        tcp.extend_from_slice(&1000u32.to_be_bytes());
        tcp.extend_from_slice(&0u32.to_be_bytes());
        tcp.extend_from_slice(&[0x50, 0x02, 0x72, 0x10, 0, 0, 0, 0]);
        let pseudo = [
            &CLIENT.octets()[..],
            &VIP.octets()[..],
            &[0, 6],
            &(tcp.len() as u16).to_be_bytes()[..],
        ]
        .concat();
        let c = csum(&[&pseudo, &tcp]);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
        ip.extend_from_slice(&CLIENT.octets());
        ip.extend_from_slice(&VIP.octets());
        let c = csum(&[&ip]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = Vec::new();
        f.extend_from_slice(&MAC0);
        f.extend_from_slice(&CLIENT_MAC);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&tcp);
        f
    }

    fn worker() -> Worker {
        let routes = [
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
        ];
        let fib = Arc::new(FibHandle::new(Fib::build(&routes).expect("fib")));
        let port = |mac, a| PortConfig {
            mac,
            addrs: vec![a],
            mtu: 1500,
        };
        let mut w = Worker::new(
            WorkerConfig {
                id: 0,
                workers: 1,
                ports: vec![
                    port(MAC0, Ipv4Addr::new(10, 0, 0, 1)),
                    port(MAC1, Ipv4Addr::new(192, 168, 7, 1)),
                ],
                conn_capacity: 64,
                seed: 7,
                timeouts: Timeouts::dpvs(),
                neigh_capacity: 8,
            },
            fib,
        );
        let key = ServiceKey::new(PROTO_TCP, VIP, 80);
        let cfg = ServiceConfig {
            scheduler: SchedKind::Rr,
            local_addrs: vec![LIP],
            ..ServiceConfig::default()
        };
        w.apply(Command::AddService(key, cfg, Arc::default()))
            .expect("service");
        w.apply(Command::AddServer(
            key,
            RealServerConfig::new(RS, 80, 1),
            Arc::default(),
        ))
        .expect("server");
        w.learn_neighbor(RS, RS_MAC, Duration::ZERO);
        w.learn_neighbor(CLIENT, CLIENT_MAC, Duration::ZERO);
        w
    }

    /// Feeds a SYN from `sport` at `now`; the worker must forward it.
    fn feed(w: &mut Worker, sport: u16, now: Duration) {
        let mut buf = vec![0u8; 128];
        let f = syn(sport);
        let len = f.len();
        buf.extend_from_slice(&f);
        buf.resize(buf.len() + 64, 0);
        let mut frame = Frame::new(&mut buf, 128, len, 0).expect("frame");
        let a = w.process_one(now, &mut frame);
        assert!(matches!(a, Action::Forward { port: 1 }), "{a:?}");
    }

    #[test]
    fn snapshot_lists_fullnat_connections_with_time_left() {
        let mut w = worker();
        let t0 = Duration::from_secs(10);
        for sport in [40000, 40001, 40002] {
            feed(&mut w, sport, t0);
        }
        // Half a second later: SYN_RECV's 30 s timeout has 29.5 s left.
        let snap = conn_snapshot(&w, 3, t0 + Duration::from_millis(500), 100);
        assert_eq!((snap.worker, snap.total, snap.truncated), (3, 3, false));
        assert_eq!(snap.rows.len(), 3);
        let mut ports: Vec<u16> = snap.rows.iter().map(|r| r.client.port()).collect();
        ports.sort_unstable();
        assert_eq!(ports, [40000, 40001, 40002]);
        let mut lports = Vec::new();
        for r in &snap.rows {
            assert_eq!(r.proto, PROTO_TCP);
            assert_eq!(r.state, TcpState::SynRecv, "{r:?}");
            assert_eq!(r.forward, Forward::FullNat);
            assert_eq!(*r.client.ip(), CLIENT);
            assert_eq!(r.vip, SocketAddrV4::new(VIP, 80));
            assert_eq!(r.server, SocketAddrV4::new(RS, 80));
            let local = r.local.expect("FullNAT has a local address");
            assert_eq!(*local.ip(), LIP);
            lports.push(local.port());
            assert!(!r.template);
            let want = Timeouts::dpvs().tcp(TcpState::SynRecv) - Duration::from_millis(500);
            assert!(
                r.expires <= want && r.expires + TICK * 2 >= want,
                "{:?} left, want about {want:?}",
                r.expires
            );
        }
        lports.sort_unstable();
        lports.dedup();
        assert_eq!(lports.len(), 3, "each connection has its own local port");
    }

    #[test]
    fn snapshot_is_bounded_and_says_so() {
        let mut w = worker();
        for sport in 50000..50010 {
            feed(&mut w, sport, Duration::ZERO);
        }
        let snap = conn_snapshot(&w, 0, Duration::ZERO, 4);
        assert_eq!(snap.rows.len(), 4);
        assert_eq!(snap.total, 10);
        assert!(snap.truncated);
        let none = conn_snapshot(&w, 0, Duration::ZERO, 0);
        assert!(none.rows.is_empty() && none.truncated);
        // Past every deadline: nothing left, never an underflow.
        let late = conn_snapshot(&w, 0, Duration::from_secs(3600), 100);
        assert!(late.rows.iter().all(|r| r.expires.is_zero()));
    }

    #[test]
    fn request_answers_on_its_own_channel() {
        let (req, rx) = SnapshotRequest::new(5);
        assert_eq!(req.limit, 5);
        let w = worker();
        req.reply
            .try_send(conn_snapshot(&w, 1, Duration::ZERO, req.limit))
            .expect("room for one answer");
        let got = rx.try_recv().expect("answer");
        assert_eq!((got.worker, got.total, got.truncated), (1, 0, false));
    }
}
