//! Two BFD systems wired back to back in simulated time.

use std::net::Ipv4Addr;
use std::time::Duration;

use bfd::{
    AuthKey, AuthType, Bfd, BfdPacket, BfdRepr, Config, Diagnostic, DropReason, Event, SessionId,
    SessionParams, State,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const IF_A: u32 = 3;
const IF_B: u32 = 7;
const DELAY: Duration = Duration::from_micros(200);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A packet that left a node at `at`.
#[derive(Debug, Clone)]
struct Sent {
    at: Duration,
    from: usize,
    repr: BfdRepr,
}

struct Sim {
    now: Duration,
    nodes: [Bfd; 2],
    ids: [SessionId; 2],
    /// In flight: (deliver at, to node, bytes).
    wire: Vec<(Duration, usize, Vec<u8>)>,
    /// Direction enabled: link[0] carries 0 → 1, link[1] carries 1 → 0.
    link: [bool; 2],
    sent: Vec<Sent>,
    events: Vec<(Duration, usize, Event)>,
    /// Accepted packets per node: (time, repr).
    received: Vec<(Duration, usize)>,
    drops: Vec<(Duration, usize, DropReason)>,
}

impl Sim {
    fn new(pa: SessionParams, pb: SessionParams) -> Sim {
        let mut a = Bfd::new(Config { seed: 1 });
        let mut b = Bfd::new(Config { seed: 2 });
        let ia = a.add_session(B, A, IF_A, pa).unwrap();
        let ib = b.add_session(A, B, IF_B, pb).unwrap();
        Sim {
            now: Duration::ZERO,
            nodes: [a, b],
            ids: [ia, ib],
            wire: Vec::new(),
            link: [true, true],
            sent: Vec::new(),
            events: Vec::new(),
            received: Vec::new(),
            drops: Vec::new(),
        }
    }

    fn drain(&mut self) {
        for n in 0..2 {
            while let Some(t) = self.nodes[n].poll_transmit() {
                assert_eq!(t.id, self.ids[n]);
                assert_eq!(t.peer, if n == 0 { B } else { A });
                let repr = BfdRepr::parse(&BfdPacket::new_checked(&t.bytes[..]).unwrap()).unwrap();
                assert!(!(repr.poll && repr.final_));
                self.sent.push(Sent {
                    at: self.now,
                    from: n,
                    repr,
                });
                if self.link[n] {
                    self.wire.push((self.now + DELAY, 1 - n, t.bytes));
                }
            }
            while let Some(e) = self.nodes[n].poll_event() {
                self.events.push((self.now, n, e));
            }
        }
    }

    /// Advance to `until`, processing every timer and delivery on the way.
    fn run_until(&mut self, until: Duration) {
        loop {
            self.drain();
            let t_node = self.nodes.iter().filter_map(Bfd::poll_timeout).min();
            let t_wire = self.wire.iter().map(|w| w.0).min();
            let next = match (t_node, t_wire) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(next) = next.filter(|t| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(next);
            let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|w| w.0 <= self.now);
            self.wire = rest;
            for (_, to, bytes) in due {
                let (src, dst, ifx) = if to == 0 { (B, A, IF_A) } else { (A, B, IF_B) };
                match self.nodes[to].handle_packet(self.now, src, dst, ifx, 255, &bytes) {
                    Ok(_) => self.received.push((self.now, to)),
                    Err(e) => self.drops.push((self.now, to, e)),
                }
            }
            for n in 0..2 {
                if self.nodes[n].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.nodes[n].handle_timeout(self.now);
                }
            }
        }
    }

    fn state(&self, n: usize) -> State {
        self.nodes[n].peer(self.now, self.ids[n]).unwrap().state
    }

    fn info(&self, n: usize) -> bfd::PeerInfo {
        self.nodes[n].peer(self.now, self.ids[n]).unwrap()
    }

    fn events_of(&self, n: usize) -> Vec<(Duration, Event)> {
        self.events
            .iter()
            .filter(|e| e.1 == n)
            .map(|e| (e.0, e.2))
            .collect()
    }

    /// Transmission times of node `n`'s packets sent in `[from, to)`.
    fn tx_times(&self, n: usize, from: Duration, to: Duration) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|s| s.from == n && s.at >= from && s.at < to)
            .map(|s| s.at)
            .collect()
    }
}

fn fast() -> SessionParams {
    SessionParams::default()
}

#[test]
fn three_way_bring_up() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(3000));
    assert_eq!(sim.state(0), State::Up);
    assert_eq!(sim.state(1), State::Up);
    // The states each side advertised, collapsed (§6.2 three-way handshake): a side that
    // hears the other's Down goes Init, a side that hears Init goes Up; with both
    // starting at the same instant both pass through Init.
    let seq = |n: usize| {
        let mut v: Vec<State> = Vec::new();
        for s in sim.sent.iter().filter(|s| s.from == n) {
            if v.last() != Some(&s.repr.state) {
                v.push(s.repr.state);
            }
        }
        v
    };
    let (sa, sb) = (seq(0), seq(1));
    let three = [State::Down, State::Init, State::Up];
    let two = [State::Down, State::Up];
    assert!(sa == three || sa == two, "{sa:?}");
    assert!(sb == three || sb == two, "{sb:?}");
    assert!(sa == three || sb == three, "someone went through Init");
    // Delivery order follows the handshake: the first Up packet is sent only after an
    // Init packet was sent.
    let first = |st: State| sim.sent.iter().position(|s| s.repr.state == st).unwrap();
    assert!(first(State::Init) < first(State::Up));
    // Your Discriminator is 0 only before the peer is heard, and then the peer's.
    let ia = sim.info(0);
    let ib = sim.info(1);
    assert_eq!(ia.remote_discriminator, sim.ids[1].0);
    assert_eq!(ib.remote_discriminator, sim.ids[0].0);
    // One SessionUp per side, nothing else.
    for n in 0..2 {
        let ev = sim.events_of(n);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(matches!(ev[0].1, Event::SessionUp { .. }));
    }
    // Both came up within the first slow-start packet plus a few deliveries.
    let up_at = sim.events.iter().map(|e| e.0).max().unwrap();
    assert!(up_at < ms(10), "{up_at:?}");
    // After the Poll Sequence to 300 ms, the negotiated values.
    assert_eq!(ia.tx_interval, ms(300));
    assert_eq!(ia.detection_time, ms(900));
    assert!(!ia.poll_active);
    assert!(ia.uptime.unwrap() > ms(2900));
    assert!(ia.counters.rx_packets > 5 && ia.counters.tx_packets > 5);
    assert_eq!(ia.counters.poll_sequences, 1);
}

#[test]
fn slow_start_one_second_while_not_up() {
    // B never answers: A stays Down and must send at 1 s (jittered 75–100 %) even though
    // 300 ms is configured (§6.8.3).
    let mut sim = Sim::new(fast(), fast());
    sim.link[0] = false;
    sim.nodes[1].remove_session(sim.ids[1]).unwrap();
    sim.run_until(ms(20_000));
    let t = sim.tx_times(0, Duration::ZERO, ms(20_000));
    assert!(t.len() >= 19 && t.len() <= 27, "{}", t.len());
    for w in t.windows(2) {
        let d = w[1] - w[0];
        assert!(d >= ms(750) && d <= ms(1000), "{d:?}");
    }
    for s in sim.sent.iter().filter(|s| s.from == 0) {
        assert_eq!(s.repr.state, State::Down);
        assert_eq!(s.repr.desired_min_tx, 1_000_000);
        assert_eq!(s.repr.your_discriminator, 0);
    }
    assert_eq!(sim.state(0), State::Down);
}

#[test]
fn failure_detected_at_detect_mult_times_interval() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(5000));
    assert_eq!(sim.state(0), State::Up);
    // B → A stops (B frozen, or the link fails one way).
    let cut = sim.now;
    sim.link[1] = false;
    sim.run_until(ms(8000));
    let last_rx = sim
        .received
        .iter()
        .filter(|r| r.1 == 0 && r.0 <= cut)
        .map(|r| r.0)
        .max()
        .unwrap();
    let ev = sim.events_of(0);
    let (at, e) = ev
        .iter()
        .find(|e| matches!(e.1, Event::SessionDown { .. }))
        .copied()
        .unwrap();
    // §6.8.4: exactly Detection Time (3 × 300 ms) after the last packet received.
    assert_eq!(at - last_rx, ms(900));
    // Hence within (900 ms − one interval, 900 ms] of the cut.
    assert!(at - cut > ms(600) && at - cut <= ms(900), "{:?}", at - cut);
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
    // A tells B it is Down (diag 1); B, still hearing A, goes Down with diag 3 and must
    // act too (the neighbor signalled Down, RFC 5882 §3.2).
    let ev_b = sim.events_of(1);
    let down_b = ev_b.iter().find_map(|e| match e.1 {
        Event::SessionDown {
            diag,
            remote_diag,
            client_should_act,
            ..
        } => Some((diag, remote_diag, client_should_act)),
        _ => None,
    });
    assert_eq!(
        down_b,
        Some((
            Diagnostic::NeighborSignaledDown,
            Diagnostic::ControlDetectionTimeExpired,
            true
        ))
    );
    let ia = sim.info(0);
    assert_eq!(ia.counters.detect_expiries, 1);
    assert_eq!(ia.remote_discriminator, 0, "§6.8.1: reset on expiry");
    assert_ne!(sim.state(0), State::Up);
    // Link back: the session comes up again.
    sim.link[1] = true;
    sim.run_until(ms(12_000));
    assert_eq!(sim.state(0), State::Up);
    assert_eq!(sim.state(1), State::Up);
}

#[test]
fn poll_final_rate_change() {
    // B transmits fast (50 ms) so A's Required Min RX governs B's rate.
    let pb = SessionParams {
        desired_min_tx: ms(50),
        ..fast()
    };
    let mut sim = Sim::new(fast(), pb);
    sim.run_until(ms(5000));
    assert_eq!(sim.info(1).tx_interval, ms(300), "max(B tx 50, A rx 300)");
    assert_eq!(sim.info(0).detection_time, ms(900));

    // A slows its TX to 1 s and speeds its RX to 100 ms.
    let t0 = sim.now;
    let pa = SessionParams {
        desired_min_tx: ms(1000),
        required_min_rx: ms(100),
        ..fast()
    };
    sim.nodes[0].set_params(t0, sim.ids[0], pa).unwrap();
    // Before anything is delivered: a Poll is out, and §6.8.3 keeps the old TX interval
    // (increase) and the old detection time (RX decrease) until the Final.
    let info = sim.info(0);
    assert!(info.poll_active);
    assert_eq!(info.tx_interval, ms(300));
    assert_eq!(info.detection_time, ms(900));
    sim.drain();
    let poll = sim.sent.last().unwrap().clone();
    assert_eq!(poll.from, 0);
    assert!(poll.repr.poll);
    assert_eq!(poll.repr.desired_min_tx, 1_000_000);
    assert_eq!(poll.repr.required_min_rx, 100_000);

    sim.run_until(t0 + ms(1));
    // B answered with a Final at once (§6.8.6), and A ended the Poll Sequence.
    let fin = sim
        .sent
        .iter()
        .find(|s| s.from == 1 && s.at >= t0 && s.repr.final_)
        .unwrap();
    assert_eq!(fin.at, t0 + DELAY);
    let info = sim.info(0);
    assert!(!info.poll_active);
    assert_eq!(info.tx_interval, ms(1000));
    // Detection time: 3 × max(A rx 100, B tx 50) = 300 ms now.
    assert_eq!(info.detection_time, ms(300));
    // B now sends every max(50, 100) = 100 ms; A at 1 s.
    assert_eq!(sim.info(1).tx_interval, ms(100));
    assert_eq!(sim.info(1).detection_time, ms(3000));
    sim.run_until(t0 + ms(6000));
    let tb = sim.tx_times(1, t0 + ms(1000), t0 + ms(6000));
    for w in tb.windows(2) {
        let d = w[1] - w[0];
        assert!(d >= ms(75) && d <= ms(100), "{d:?}");
    }
    let ta = sim.tx_times(0, t0 + ms(1000), t0 + ms(6000));
    for w in ta.windows(2) {
        let d = w[1] - w[0];
        assert!(d >= ms(750) && d <= ms(1000), "{d:?}");
    }
    assert_eq!(sim.state(0), State::Up);
    assert_eq!(sim.state(1), State::Up);
    // Only SessionUp events: the change did not flap the session.
    assert_eq!(sim.events.len(), 2);
}

#[test]
fn tx_increase_waits_for_final() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(5000));
    // A's Polls get no answer: B → A is cut just before the change.
    sim.link[1] = false;
    let t0 = sim.now;
    let pa = SessionParams {
        desired_min_tx: ms(1000),
        ..fast()
    };
    sim.nodes[0].set_params(t0, sim.ids[0], pa).unwrap();
    // The last packet from B arrived before t0, so detection cannot expire before
    // t0 + 600 ms.
    sim.run_until(t0 + ms(590));
    assert_eq!(sim.state(0), State::Up);
    // Still at 300 ms, every packet with P set.
    let polls: Vec<_> = sim
        .sent
        .iter()
        .filter(|s| s.from == 0 && s.at >= t0)
        .collect();
    assert!(polls.len() >= 2, "{}", polls.len());
    assert!(polls.iter().all(|s| s.repr.poll));
    for w in polls.windows(2) {
        assert!(w[1].at - w[0].at <= ms(300));
    }
    assert_eq!(sim.info(0).tx_interval, ms(300));
}

#[test]
fn admin_down_is_not_a_failure() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(3000));
    let t0 = sim.now;
    sim.nodes[1].set_admin_down(t0, sim.ids[1], true).unwrap();
    sim.run_until(t0 + ms(5000));
    let down_a = sim.events_of(0).into_iter().find_map(|e| match e.1 {
        Event::SessionDown {
            diag,
            remote_diag,
            client_should_act,
            ..
        } => Some((e.0, diag, remote_diag, client_should_act)),
        _ => None,
    });
    let (at, diag, remote_diag, act) = down_a.unwrap();
    assert!(at - t0 < ms(1), "signalled at once");
    assert_eq!(diag, Diagnostic::NeighborSignaledDown);
    assert_eq!(remote_diag, Diagnostic::AdministrativelyDown);
    assert!(
        !act,
        "RFC 5882 §3.2: remote AdminDown must not take the client down"
    );
    let down_b = sim.events_of(1).into_iter().find_map(|e| match e.1 {
        Event::SessionDown {
            diag,
            client_should_act,
            ..
        } => Some((diag, client_should_act)),
        _ => None,
    });
    assert_eq!(down_b, Some((Diagnostic::AdministrativelyDown, false)));
    // A stays Down while B is AdminDown (B discards A's packets, §6.8.6), no expiry.
    assert_eq!(sim.state(0), State::Down);
    assert_eq!(sim.state(1), State::AdminDown);
    assert_eq!(sim.info(0).counters.detect_expiries, 0);
    assert!(sim
        .drops
        .iter()
        .any(|d| d.1 == 1 && d.2 == DropReason::LocalAdminDown));
    // B keeps sending AdminDown at the slow rate.
    let tb = sim.tx_times(1, t0 + ms(1000), t0 + ms(5000));
    assert!(tb.len() >= 3 && tb.len() <= 6, "{}", tb.len());
    // Re-enable: back Up.
    let t1 = sim.now;
    sim.nodes[1].set_admin_down(t1, sim.ids[1], false).unwrap();
    sim.run_until(t1 + ms(3000));
    assert_eq!(sim.state(0), State::Up);
    assert_eq!(sim.state(1), State::Up);
}

fn key(t: AuthType, secret: &[u8]) -> Option<AuthKey> {
    Some(AuthKey {
        auth_type: t,
        key_id: 1,
        secret: secret.to_vec(),
    })
}

#[test]
fn authenticated_sessions_come_up() {
    for t in [
        AuthType::SimplePassword,
        AuthType::KeyedMd5,
        AuthType::MeticulousKeyedMd5,
        AuthType::KeyedSha1,
        AuthType::MeticulousKeyedSha1,
    ] {
        let p = SessionParams {
            auth: key(t, b"secret"),
            ..fast()
        };
        let mut sim = Sim::new(p.clone(), p);
        sim.run_until(ms(5000));
        assert_eq!(sim.state(0), State::Up, "{t}");
        assert_eq!(sim.state(1), State::Up, "{t}");
        assert!(sim.drops.is_empty(), "{t}: {:?}", sim.drops);
        assert!(sim
            .sent
            .iter()
            .all(|s| s.repr.auth.is_some_and(|a| a.auth_type == t)));
    }
}

#[test]
fn auth_mismatch_drops() {
    let cases: [(Option<AuthKey>, Option<AuthKey>, DropReason); 4] = [
        (
            key(AuthType::KeyedSha1, b"one"),
            key(AuthType::KeyedSha1, b"two"),
            DropReason::AuthFailed,
        ),
        (
            key(AuthType::KeyedMd5, b"one"),
            key(AuthType::KeyedSha1, b"one"),
            DropReason::AuthTypeMismatch,
        ),
        (
            key(AuthType::SimplePassword, b"pw"),
            None,
            DropReason::AuthUnexpected,
        ),
        (
            None,
            key(AuthType::SimplePassword, b"pw"),
            DropReason::AuthMissing,
        ),
    ];
    for (ka, kb, reason) in cases {
        let mut sim = Sim::new(
            SessionParams { auth: ka, ..fast() },
            SessionParams { auth: kb, ..fast() },
        );
        sim.run_until(ms(5000));
        assert_ne!(sim.state(0), State::Up);
        assert_ne!(sim.state(1), State::Up);
        assert!(
            sim.drops.iter().any(|d| d.1 == 1 && d.2 == reason),
            "{reason:?}: {:?}",
            sim.drops
        );
        let c = sim.info(1).counters;
        assert!(c.auth_failures > 0 && c.auth_failures == c.rx_dropped);
        assert_eq!(c.rx_packets, 0);
        let counted: u64 = sim.nodes[1]
            .drop_counts()
            .filter(|(r, _)| *r == reason)
            .map(|x| x.1)
            .sum();
        assert_eq!(counted, c.auth_failures);
    }
}

#[test]
fn meticulous_replay_is_dropped() {
    let p = SessionParams {
        auth: key(AuthType::MeticulousKeyedSha1, b"k"),
        ..fast()
    };
    let mut sim = Sim::new(p.clone(), p);
    sim.run_until(ms(3000));
    // Re-deliver a packet A sent earlier, byte for byte.
    let old = sim.sent.iter().rev().find(|s| s.from == 0).unwrap().repr;
    let mut bytes = old.to_vec();
    // The repr holds the digest as sent, so the bytes are the original packet.
    let r = BfdRepr::parse(&BfdPacket::new_checked(&bytes[..]).unwrap()).unwrap();
    assert_eq!(r, old);
    let now = sim.now;
    assert_eq!(
        sim.nodes[1].handle_packet(now, A, B, IF_B, 255, &bytes),
        Err(DropReason::AuthSequence)
    );
    // A forged sequence far ahead fails the digest.
    bytes[28] ^= 0x40;
    assert_eq!(
        sim.nodes[1].handle_packet(now, A, B, IF_B, 255, &bytes),
        Err(DropReason::AuthFailed)
    );
    assert_eq!(sim.state(1), State::Up);
}

fn jitter_intervals(detect_mult: u8) -> Vec<Duration> {
    let p = SessionParams {
        detect_mult,
        ..fast()
    };
    let mut sim = Sim::new(p.clone(), p);
    sim.run_until(ms(3000));
    assert_eq!(sim.state(0), State::Up);
    sim.run_until(ms(63_000));
    let t = sim.tx_times(0, ms(3000), ms(63_000));
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn jitter_bounds() {
    // §6.8.7: 75–100 % of the interval; 75–90 % when Detect Mult is 1.
    let d3 = jitter_intervals(3);
    assert!(d3.len() > 150);
    assert!(d3.iter().all(|d| *d >= ms(225) && *d <= ms(300)), "{d3:?}");
    assert!(
        d3.iter().any(|d| *d < ms(240)) && d3.iter().any(|d| *d > ms(285)),
        "spread"
    );
    let d1 = jitter_intervals(1);
    assert!(d1.iter().all(|d| *d >= ms(225) && *d <= ms(270)), "{d1:?}");
    assert!(
        d1.iter().any(|d| *d < ms(240)) && d1.iter().any(|d| *d > ms(260)),
        "spread"
    );
}

#[test]
fn ttl_and_demultiplexing() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(3000));
    let pkt = sim
        .sent
        .iter()
        .rev()
        .find(|s| s.from == 0)
        .unwrap()
        .repr
        .to_vec();
    let now = sim.now;
    let b = &mut sim.nodes[1];
    assert_eq!(
        b.handle_packet(now, A, B, IF_B, 254, &pkt),
        Err(DropReason::BadTtl)
    );
    assert_eq!(
        b.handle_packet(now, A, B, IF_B + 1, 255, &pkt),
        Err(DropReason::SessionMismatch)
    );
    assert_eq!(
        b.handle_packet(now, Ipv4Addr::new(10, 0, 0, 9), B, IF_B, 255, &pkt),
        Err(DropReason::SessionMismatch)
    );
    assert_eq!(
        b.handle_packet(now, A, Ipv4Addr::new(10, 0, 0, 3), IF_B, 255, &pkt),
        Err(DropReason::SessionMismatch)
    );
    let mut other = BfdRepr::parse(&BfdPacket::new_checked(&pkt[..]).unwrap()).unwrap();
    other.your_discriminator = other.your_discriminator.wrapping_add(1);
    assert_eq!(
        b.handle_packet(now, A, B, IF_B, 255, &other.to_vec()),
        Err(DropReason::NoSession)
    );
    other.your_discriminator = 0;
    other.state = State::Down;
    assert_eq!(
        b.handle_packet(
            now,
            Ipv4Addr::new(10, 0, 0, 9),
            B,
            IF_B,
            255,
            &other.to_vec()
        ),
        Err(DropReason::NoSession)
    );
    assert_eq!(
        b.handle_packet(now, A, B, IF_B, 255, &pkt[..20]),
        Err(DropReason::Truncated)
    );
    assert_eq!(b.handle_packet(now, A, B, IF_B, 255, &pkt), Ok(sim.ids[1]));
    let bad_ttl: u64 = b
        .drop_counts()
        .filter(|(r, _)| *r == DropReason::BadTtl)
        .map(|x| x.1)
        .sum();
    assert_eq!(bad_ttl, 1);
}

#[test]
fn sessions_are_shared_and_removed_by_the_last_client() {
    let mut bfd = Bfd::new(Config { seed: 9 });
    let id = bfd.add_session(B, A, IF_A, fast()).unwrap();
    assert_eq!(bfd.add_session(B, A, IF_A, fast()).unwrap(), id);
    let other = bfd.add_session(B, A, IF_A + 1, fast()).unwrap();
    assert_ne!(other, id);
    assert_eq!(bfd.session_for(B, IF_A), Some(id));
    assert_eq!(bfd.poll_timeout(), Some(Duration::ZERO));
    assert_eq!(bfd.remove_session(id), Ok(false));
    assert_eq!(bfd.remove_session(id), Ok(true));
    assert_eq!(bfd.remove_session(id), Err(bfd::Error::NoSuchSession));
    assert_eq!(bfd.session_for(B, IF_A), None);
    assert_eq!(bfd.peers(Duration::ZERO).len(), 1);
    let bad = SessionParams {
        detect_mult: 0,
        ..fast()
    };
    assert_eq!(
        bfd.add_session(B, A, 1, bad),
        Err(bfd::Error::InvalidParams)
    );
    assert_eq!(
        bfd.add_session(Ipv4Addr::UNSPECIFIED, A, 1, fast()),
        Err(bfd::Error::InvalidPeer)
    );
}

#[test]
fn remote_poll_to_faster_rate_gets_one_old_interval_of_grace() {
    // A remote that announces a faster rate in its Poll may still have its next packet
    // scheduled at the old interval (FRR bfdd does): that one gap is tolerated, the next
    // packet arms the new, shorter detection time.
    let mut x = Bfd::new(Config { seed: 5 });
    let id = x.add_session(B, A, IF_A, fast()).unwrap();
    let remote = |state: State, your: u32, tx_us: u32, poll: bool| {
        BfdRepr {
            diag: Diagnostic::None,
            state,
            poll,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 0x1234,
            your_discriminator: your,
            desired_min_tx: tx_us,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
            auth: None,
        }
        .to_vec()
    };
    let state = |x: &Bfd, now| x.peer(now, id).unwrap().state;
    x.handle_timeout(Duration::ZERO);
    x.handle_packet(
        ms(10),
        B,
        A,
        IF_A,
        255,
        &remote(State::Down, 0, 1_000_000, false),
    )
    .unwrap();
    assert_eq!(state(&x, ms(10)), State::Init);
    x.handle_packet(
        ms(20),
        B,
        A,
        IF_A,
        255,
        &remote(State::Up, id.0, 1_000_000, false),
    )
    .unwrap();
    assert_eq!(state(&x, ms(20)), State::Up);
    assert_eq!(x.peer(ms(20), id).unwrap().detection_time, ms(3000));
    // The remote's Poll to 300 ms: answered with a Final, and detection keeps 3 s once.
    x.handle_packet(
        ms(1000),
        B,
        A,
        IF_A,
        255,
        &remote(State::Up, id.0, 300_000, true),
    )
    .unwrap();
    let mut saw_final = false;
    while let Some(t) = x.poll_transmit() {
        let r = BfdRepr::parse(&BfdPacket::new_checked(&t.bytes[..]).unwrap()).unwrap();
        saw_final |= r.final_;
    }
    assert!(saw_final);
    assert_eq!(x.peer(ms(1000), id).unwrap().detection_time, ms(900));
    x.handle_timeout(ms(2000));
    assert_eq!(
        state(&x, ms(2000)),
        State::Up,
        "the old interval's gap is tolerated"
    );
    // The next packet arms 900 ms; silence after it is a failure at exactly 900 ms.
    x.handle_packet(
        ms(2000),
        B,
        A,
        IF_A,
        255,
        &remote(State::Up, id.0, 300_000, false),
    )
    .unwrap();
    x.handle_timeout(ms(2899));
    assert_eq!(state(&x, ms(2899)), State::Up);
    assert!(x.poll_timeout().unwrap() <= ms(2900));
    x.handle_timeout(ms(2900));
    assert_eq!(state(&x, ms(2900)), State::Down);
    let down = std::iter::from_fn(|| x.poll_event()).find_map(|e| match e {
        Event::SessionDown {
            diag,
            client_should_act,
            ..
        } => Some((diag, client_should_act)),
        _ => None,
    });
    assert_eq!(down, Some((Diagnostic::ControlDetectionTimeExpired, true)));
}

#[test]
fn removing_a_session_tells_the_peer_admin_down() {
    let mut sim = Sim::new(fast(), fast());
    sim.run_until(ms(3000));
    let t0 = sim.now;
    assert_eq!(sim.nodes[1].remove_session(sim.ids[1]), Ok(true));
    sim.run_until(t0 + ms(3000));
    let down = sim.events_of(0).into_iter().find_map(|e| match e.1 {
        Event::SessionDown {
            diag,
            remote_diag,
            client_should_act,
            ..
        } => Some((e.0 - t0, diag, remote_diag, client_should_act)),
        _ => None,
    });
    assert_eq!(
        down,
        Some((
            DELAY,
            Diagnostic::NeighborSignaledDown,
            Diagnostic::AdministrativelyDown,
            false
        ))
    );
    // A stays Down (its packets now hit no session on B) and never expires.
    assert_eq!(sim.state(0), State::Down);
    assert_eq!(sim.info(0).counters.detect_expiries, 0);
    assert!(sim
        .drops
        .iter()
        .any(|d| d.1 == 1 && d.2 == DropReason::NoSession));
    assert!(sim
        .events_of(1)
        .iter()
        .all(|e| matches!(e.1, Event::SessionUp { .. })));
}
