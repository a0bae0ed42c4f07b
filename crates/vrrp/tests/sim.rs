//! Simulation tests: several nodes on an in-memory Ethernet segment, simulated time.

use core::net::Ipv4Addr;
use core::time::Duration;

use vrrp::wire::MULTICAST_ADDR;
use vrrp::{
    Authentication, Event, InstanceConfig, InstanceId, Router, State, Track, Transmit, Version,
};

const LATENCY: Duration = Duration::from_millis(1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const VIP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn addr(node: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, node)
}

/// A packet on the wire.
#[derive(Debug, Clone)]
struct Frame {
    at: Duration,
    from: usize,
    tx: Transmit,
}

/// An advert as one node received it.
#[derive(Debug, Clone)]
struct Arrival {
    at: Duration,
    node: usize,
    source: Ipv4Addr,
    vrid: u8,
    priority: u8,
}

struct Node {
    router: Router,
    alive: bool,
    started: bool,
    events: Vec<(Duration, InstanceId, Event)>,
}

struct Sim {
    now: Duration,
    nodes: Vec<Node>,
    wire: Vec<Frame>,
    arrivals: Vec<Arrival>,
}

impl Sim {
    fn new() -> Self {
        Sim {
            now: Duration::ZERO,
            nodes: Vec::new(),
            wire: Vec::new(),
            arrivals: Vec::new(),
        }
    }

    fn add_node(&mut self, cfgs: Vec<InstanceConfig>) -> usize {
        let mut router = Router::new();
        for c in cfgs {
            router.add_instance(c).unwrap();
        }
        self.nodes.push(Node {
            router,
            alive: true,
            started: false,
            events: Vec::new(),
        });
        self.nodes.len() - 1
    }

    fn start(&mut self, n: usize) {
        let now = self.now;
        self.nodes[n].started = true;
        self.nodes[n].router.startup(now);
        self.collect(n);
    }

    /// Crash: the node stops without sending anything.
    fn kill(&mut self, n: usize) {
        self.nodes[n].alive = false;
    }

    /// Graceful stop: Masters send priority 0.
    fn shutdown(&mut self, n: usize) {
        let now = self.now;
        self.nodes[n].router.shutdown(now);
        self.collect(n);
        self.nodes[n].alive = false;
    }

    fn set_track(&mut self, n: usize, name: &str, up: bool) {
        let now = self.now;
        assert!(self.nodes[n].router.set_track(now, name, up) > 0);
        self.collect(n);
    }

    fn collect(&mut self, n: usize) {
        let now = self.now;
        let node = &mut self.nodes[n];
        while let Some((_, tx)) = node.router.poll_transmit() {
            assert_eq!(tx.ttl, 255);
            if node.alive {
                self.wire.push(Frame {
                    at: now + LATENCY,
                    from: n,
                    tx,
                });
            }
        }
        while let Some((id, ev)) = node.router.poll_event() {
            node.events.push((now, id, ev));
        }
    }

    fn next_time(&self) -> Option<Duration> {
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.started)
            .filter_map(|n| n.router.poll_timeout());
        timers.chain(self.wire.iter().map(|f| f.at)).min()
    }

    fn run_until(&mut self, end: Duration) {
        while let Some(t) = self.next_time() {
            if t > end {
                break;
            }
            assert!(t >= self.now, "time went backwards");
            self.now = t;
            let (due, rest): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|f| f.at <= t);
            self.wire = rest;
            for f in due {
                for n in 0..self.nodes.len() {
                    if n == f.from || !self.nodes[n].alive || !self.nodes[n].started {
                        continue;
                    }
                    let for_me = f.tx.destination == MULTICAST_ADDR
                        || self.nodes[n]
                            .router
                            .instances()
                            .any(|(_, i)| i.source_ip() == f.tx.destination);
                    if !for_me {
                        continue;
                    }
                    let r = self.nodes[n].router.handle_packet(
                        t,
                        "eth0",
                        f.tx.source,
                        f.tx.destination,
                        f.tx.ttl,
                        &f.tx.payload,
                    );
                    if r.is_ok() {
                        self.arrivals.push(Arrival {
                            at: t,
                            node: n,
                            source: f.tx.source,
                            vrid: f.tx.payload[1],
                            priority: f.tx.payload[2],
                        });
                    }
                    self.collect(n);
                }
            }
            for n in 0..self.nodes.len() {
                if self.nodes[n].alive && self.nodes[n].started {
                    self.nodes[n].router.handle_timeout(t);
                    self.collect(n);
                }
            }
        }
        self.now = end;
    }

    fn state(&self, n: usize, name: &str) -> State {
        let r = &self.nodes[n].router;
        r.instance(r.find(name).unwrap()).unwrap().state()
    }

    /// Times at which node `n`'s instance `name` emitted an event matching `f`.
    fn event_times(&self, n: usize, name: &str, f: impl Fn(&Event) -> bool) -> Vec<Duration> {
        let id = self.nodes[n].router.find(name).unwrap();
        self.nodes[n]
            .events
            .iter()
            .filter(|(_, i, e)| *i == id && f(e))
            .map(|e| e.0)
            .collect()
    }

    fn master_times(&self, n: usize, name: &str) -> Vec<Duration> {
        self.event_times(n, name, |e| matches!(e, Event::BecameMaster { .. }))
    }

    fn last_arrival(&self, node: usize, vrid: u8, before: Duration) -> &Arrival {
        self.arrivals
            .iter()
            .rev()
            .find(|a| a.node == node && a.vrid == vrid && a.at < before)
            .unwrap()
    }
}

fn cfg(name: &str, vrid: u8, node: u8, priority: u8, version: Version) -> InstanceConfig {
    let mut c = InstanceConfig::new(name, "eth0", vrid, addr(node));
    c.priority = priority;
    c.version = version;
    c.virtual_ipaddress = vec![VIP];
    c
}

/// v2 Master_Down_Interval with advert_int 1 s: 3 s + (256 − p)/256 s.
fn mdi_v2(p: u64) -> Duration {
    secs(3) + Duration::from_nanos((256 - p) * 1_000_000_000 / 256)
}

#[test]
fn two_instances_elect_the_highest_priority() {
    let mut sim = Sim::new();
    let a = sim.add_node(vec![cfg("VI_1", 51, 1, 100, Version::V2)]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 200, Version::V2)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(30));
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    // b's Master_Down_Interval (3.21875 s) ends before a's (3.609375 s).
    assert_eq!(sim.master_times(b, "VI_1"), vec![mdi_v2(200)]);
    assert!(sim.master_times(a, "VI_1").is_empty());
    let info = sim.nodes[a].router.instance(InstanceId(0)).unwrap().info();
    assert_eq!(info.master, Some(addr(2)));
}

#[test]
fn three_v3_instances_elect_the_highest_priority() {
    let mut sim = Sim::new();
    let ns: Vec<usize> = [(1u8, 100u8), (2, 150), (3, 200)]
        .iter()
        .map(|&(n, p)| sim.add_node(vec![cfg("VI_1", 7, n, p, Version::V3)]))
        .collect();
    // The lowest priority starts first and becomes Master; the others preempt it.
    sim.start(ns[0]);
    sim.run_until(secs(10));
    assert_eq!(sim.state(ns[0], "VI_1"), State::Master);
    sim.start(ns[1]);
    sim.start(ns[2]);
    sim.run_until(secs(40));
    assert_eq!(sim.state(ns[2], "VI_1"), State::Master);
    assert_eq!(sim.state(ns[1], "VI_1"), State::Backup);
    assert_eq!(sim.state(ns[0], "VI_1"), State::Backup);
    assert!(sim.master_times(ns[1], "VI_1").is_empty());
    // v3 skew with 1 s: (256 − 200)/256 s; node 3 discards node 1's lower adverts.
    assert_eq!(
        sim.master_times(ns[2], "VI_1"),
        vec![secs(10) + mdi_v2(200)]
    );
}

#[test]
fn equal_priority_higher_address_wins() {
    let mut sim = Sim::new();
    let a = sim.add_node(vec![cfg("VI_1", 51, 1, 100, Version::V3)]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 100, Version::V3)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(20));
    // Both time out together and become Master; the lower address steps down.
    assert_eq!(sim.master_times(a, "VI_1").len(), 1);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    assert_eq!(sim.state(b, "VI_1"), State::Master);
}

#[test]
fn master_death_takeover_after_exactly_master_down_interval() {
    let mut sim = Sim::new();
    let a = sim.add_node(vec![cfg("VI_1", 51, 1, 100, Version::V2)]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 200, Version::V2)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(ms(10_500));
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    sim.kill(b);
    sim.run_until(secs(30));
    let last_advert = sim.last_arrival(a, 51, secs(30));
    assert_eq!(last_advert.source, addr(2));
    let last = last_advert.at;
    assert!(last <= ms(10_500));
    let took_over = sim.master_times(a, "VI_1");
    assert_eq!(took_over, vec![last + mdi_v2(100)]);
    assert!(
        took_over[0] > ms(10_500) + secs(2),
        "not before 3 missed adverts"
    );
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let mut sim = Sim::new();
    let mut ca = cfg("VI_1", 9, 1, 100, Version::V3);
    ca.advert_int = secs(1);
    let mut cb = cfg("VI_1", 9, 2, 200, Version::V3);
    cb.advert_int = secs(2);
    let a = sim.add_node(vec![ca]);
    let b = sim.add_node(vec![cb]);
    sim.start(b);
    sim.run_until(secs(10));
    sim.start(a);
    sim.run_until(secs(20));
    sim.kill(b);
    sim.run_until(secs(60));
    let last = sim.last_arrival(a, 9, secs(60)).at;
    // 3 × 2 s + (256 − 100) × 2 s / 256.
    let mdi = secs(6) + Duration::from_nanos(156 * 2_000_000_000 / 256);
    assert_eq!(sim.master_times(a, "VI_1"), vec![last + mdi]);
}

#[test]
fn priority_zero_on_shutdown_takeover_after_skew_only() {
    for version in [Version::V2, Version::V3] {
        let mut sim = Sim::new();
        let a = sim.add_node(vec![cfg("VI_1", 51, 1, 100, version)]);
        let b = sim.add_node(vec![cfg("VI_1", 51, 2, 200, version)]);
        sim.start(a);
        sim.start(b);
        sim.run_until(ms(10_300));
        sim.shutdown(b);
        let stopped = sim.event_times(b, "VI_1", |e| matches!(e, Event::Stopped { .. }));
        assert_eq!(stopped, vec![ms(10_300)]);
        sim.run_until(secs(20));
        let zero = sim
            .arrivals
            .iter()
            .find(|x| x.node == a && x.priority == 0)
            .unwrap();
        assert_eq!(zero.at, ms(10_300) + LATENCY);
        // Skew_Time with advert_int 1 s: 156/256 s = 609.375 ms (both versions).
        assert_eq!(
            sim.master_times(a, "VI_1"),
            vec![zero.at + Duration::from_micros(609_375)],
            "{version:?}"
        );
    }
}

#[test]
fn preemption_nopreempt_and_preempt_delay() {
    // Preempt (default): the higher priority takes over one Master_Down_Interval after it
    // starts, since it discards the lower-priority adverts.
    let run = |nopreempt: bool, delay: Duration| {
        let mut sim = Sim::new();
        let a = sim.add_node(vec![cfg("VI_1", 51, 1, 100, Version::V2)]);
        let mut cb = cfg("VI_1", 51, 2, 200, Version::V2);
        cb.nopreempt = nopreempt;
        cb.preempt_delay = delay;
        let b = sim.add_node(vec![cb]);
        sim.start(a);
        sim.run_until(secs(10));
        assert_eq!(sim.state(a, "VI_1"), State::Master);
        sim.start(b);
        sim.run_until(secs(60));
        (sim.master_times(b, "VI_1"), sim.state(a, "VI_1"), sim)
    };

    let (times, a_state, _) = run(false, Duration::ZERO);
    assert_eq!(times, vec![secs(10) + mdi_v2(200)]);
    assert_eq!(a_state, State::Backup);

    let (times, a_state, _) = run(true, Duration::ZERO);
    assert!(times.is_empty());
    assert_eq!(a_state, State::Master);

    // preempt_delay 5 s: adverts from the lower master are honoured for 5 s after startup;
    // then it is preempted one Master_Down_Interval after the last honoured advert.
    let (times, a_state, sim) = run(false, secs(5));
    let last_honoured = sim.last_arrival(1, 51, secs(15)).at;
    assert!(last_honoured > secs(14));
    assert_eq!(times, vec![last_honoured + mdi_v2(200)]);
    assert_eq!(a_state, State::Backup);
}

#[test]
fn tracking_lowers_priority_and_hands_over() {
    let mut sim = Sim::new();
    let mut ca = cfg("VI_1", 51, 1, 200, Version::V2);
    ca.track_script.push(Track::new("chk_nginx", -150));
    let a = sim.add_node(vec![ca]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 100, Version::V2)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    assert_eq!(sim.state(a, "VI_1"), State::Master);
    sim.set_track(a, "chk_nginx", false);
    let changed = sim.event_times(a, "VI_1", |e| {
        matches!(e, Event::PriorityChanged { old: 200, new: 50 })
    });
    assert_eq!(changed, vec![secs(10)]);
    sim.run_until(secs(30));
    // b discards a's priority-50 adverts and takes over after its Master_Down_Interval
    // counted from the last priority-200 advert.
    let last_high = sim
        .arrivals
        .iter()
        .rev()
        .find(|x| x.node == b && x.priority == 200)
        .unwrap()
        .at;
    assert_eq!(sim.master_times(b, "VI_1"), vec![last_high + mdi_v2(100)]);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
}

#[test]
fn weight_zero_track_puts_the_instance_in_fault() {
    let mut sim = Sim::new();
    let mut ca = cfg("VI_1", 51, 1, 200, Version::V2);
    ca.track_interface.push(Track::new("eth1", 0));
    let a = sim.add_node(vec![ca]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 100, Version::V2)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    sim.set_track(a, "eth1", false);
    assert_eq!(sim.state(a, "VI_1"), State::Fault);
    sim.run_until(secs(20));
    // Leaving Master for FAULT sends priority 0: b takes over after its skew.
    assert_eq!(
        sim.master_times(b, "VI_1"),
        vec![secs(10) + LATENCY + Duration::from_micros(609_375)]
    );
    assert_eq!(sim.state(a, "VI_1"), State::Fault);
    sim.set_track(a, "eth1", true);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    sim.run_until(secs(40));
    assert_eq!(sim.state(a, "VI_1"), State::Master);
    assert_eq!(
        sim.master_times(a, "VI_1").last(),
        Some(&(secs(20) + mdi_v2(200)))
    );
}

fn grouped_node(node: u8, p1: u8, p2: u8) -> Router {
    let mut r = Router::new();
    let mut c1 = cfg("VI_1", 51, node, p1, Version::V2);
    c1.track_interface.push(Track::new("eth1", 0));
    c1.track_script.push(Track::new("chk", 150));
    let mut c2 = cfg("VI_2", 52, node, p2, Version::V2);
    c2.virtual_ipaddress = vec![VIP2];
    r.add_instance(c1).unwrap();
    r.add_instance(c2).unwrap();
    r.add_sync_group("G", &["VI_1", "VI_2"]).unwrap();
    r
}

#[test]
fn sync_group_fails_over_together_on_fault() {
    let mut sim = Sim::new();
    let a = sim.add_node(vec![]);
    let b = sim.add_node(vec![]);
    sim.nodes[a].router = grouped_node(1, 50, 200);
    sim.nodes[b].router = grouped_node(2, 50, 100);
    // Node a: VI_1 = 50 + 150 = 200. Node b: its chk is down, VI_1 = 50.
    sim.set_track(b, "chk", false);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    for n in ["VI_1", "VI_2"] {
        assert_eq!(sim.state(a, n), State::Master);
        assert_eq!(sim.state(b, n), State::Backup);
    }
    // VI_1's interface on node a fails: the whole group goes to FAULT and resigns.
    sim.set_track(a, "eth1", false);
    assert_eq!(sim.state(a, "VI_1"), State::Fault);
    assert_eq!(sim.state(a, "VI_2"), State::Fault);
    sim.run_until(secs(20));
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    assert_eq!(sim.state(b, "VI_2"), State::Master);
    // VI_2 (priority 100) reaches its skew (156/256 s) first but waits for VI_1
    // (priority 50, skew 206/256 s): the group goes Master together.
    let t = secs(10) + LATENCY + Duration::from_nanos(804_687_500);
    assert_eq!(sim.master_times(b, "VI_1"), vec![t]);
    assert_eq!(sim.master_times(b, "VI_2"), vec![t]);
    // Recovery: both back to Backup, then they preempt.
    sim.set_track(a, "eth1", true);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    assert_eq!(sim.state(a, "VI_2"), State::Backup);
    sim.run_until(secs(40));
    for n in ["VI_1", "VI_2"] {
        assert_eq!(sim.state(a, n), State::Master, "{n}");
        assert_eq!(sim.state(b, n), State::Backup, "{n}");
    }
}

#[test]
fn sync_group_follows_a_member_that_loses_mastership() {
    let mut sim = Sim::new();
    let a = sim.add_node(vec![]);
    sim.nodes[a].router = grouped_node(1, 50, 200);
    // Node b is not grouped; its VI_1 rises to 250 when its check comes up.
    let mut c1 = cfg("VI_1", 51, 2, 100, Version::V2);
    c1.track_script.push(Track::new("chk_b", 150));
    let mut c2 = cfg("VI_2", 52, 2, 100, Version::V2);
    c2.virtual_ipaddress = vec![VIP2];
    let b = sim.add_node(vec![c1, c2]);
    sim.set_track(b, "chk_b", false);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    assert_eq!(sim.state(a, "VI_2"), State::Master);
    sim.set_track(b, "chk_b", true);
    sim.run_until(secs(30));
    // b's VI_1 preempts; a's VI_1 goes Backup and takes VI_2 with it (priority 0), so b's
    // VI_2 takes over after skew although a's VI_2 has the higher priority; a's VI_2 then
    // wants Master back, but its group stays Backup because VI_1 still hears a better
    // master (no thrashing).
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    assert_eq!(sim.state(a, "VI_2"), State::Backup);
    assert_eq!(sim.state(b, "VI_2"), State::Master);
    let a_backup = sim.event_times(a, "VI_2", |e| matches!(e, Event::BecameBackup { .. }));
    let b_master = sim.master_times(b, "VI_2");
    assert_eq!(b_master.len(), 1);
    assert_eq!(
        b_master[0],
        *a_backup.last().unwrap() + LATENCY + Duration::from_micros(609_375)
    );
}

#[test]
fn v2_pass_mismatch_is_dropped() {
    let with_pass = |node: u8, p: u8, pass: &str| {
        let mut c = cfg("VI_1", 51, node, p, Version::V2);
        c.authentication = Some(Authentication {
            auth_pass: pass.into(),
        });
        c
    };
    // Same password: one master.
    let mut sim = Sim::new();
    let a = sim.add_node(vec![with_pass(1, 100, "s3cr3t")]);
    let b = sim.add_node(vec![with_pass(2, 200, "s3cr3t")]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    assert_eq!(sim.state(a, "VI_1"), State::Backup);

    // Different passwords: every advert is dropped and both become Master.
    let mut sim = Sim::new();
    let a = sim.add_node(vec![with_pass(1, 100, "s3cr3t")]);
    let b = sim.add_node(vec![with_pass(2, 200, "wrong")]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    assert_eq!(sim.state(a, "VI_1"), State::Master);
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    let sa = sim.nodes[a]
        .router
        .instance(InstanceId(0))
        .unwrap()
        .stats()
        .clone();
    assert!(sa.drop_auth_failure >= 6, "{sa:?}");
    assert_eq!(sa.adverts_rx, 0);
}

#[test]
fn garp_schedule_delay_repeat_refresh() {
    let mut sim = Sim::new();
    let mut c = cfg("VI_1", 51, 1, 100, Version::V2);
    c.virtual_ipaddress = vec![VIP, VIP2];
    c.garp_master_refresh = secs(10);
    c.garp_master_refresh_repeat = 2;
    let a = sim.add_node(vec![c]);
    sim.start(a);
    sim.run_until(secs(40));
    let became = mdi_v2(100);
    assert_eq!(sim.master_times(a, "VI_1"), vec![became]);
    let garps: Vec<(Duration, u32)> = sim.nodes[a]
        .events
        .iter()
        .filter_map(|(t, _, e)| match e {
            Event::SendGratuitousArp { vips, count } => {
                assert_eq!(vips, &vec![VIP, VIP2]);
                Some((*t, *count))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        garps,
        vec![
            (became, 5),
            (became + secs(5), 5),
            (became + secs(10), 2),
            (became + secs(20), 2),
            (became + secs(30), 2),
        ]
    );
    // BecameMaster comes before the first GARP burst.
    let first = sim.nodes[a]
        .events
        .iter()
        .position(|e| matches!(e.2, Event::BecameMaster { .. }));
    let garp = sim.nodes[a]
        .events
        .iter()
        .position(|e| matches!(e.2, Event::SendGratuitousArp { .. }));
    assert!(first < garp);
}

#[test]
fn garp_stops_when_mastership_is_lost() {
    let mut sim = Sim::new();
    let mut ca = cfg("VI_1", 51, 1, 100, Version::V2);
    ca.garp_master_delay = secs(5);
    ca.garp_master_refresh = secs(2);
    let a = sim.add_node(vec![ca]);
    let b = sim.add_node(vec![cfg("VI_1", 51, 2, 200, Version::V2)]);
    sim.start(a);
    sim.run_until(secs(4));
    assert_eq!(sim.state(a, "VI_1"), State::Master);
    sim.start(b);
    sim.run_until(secs(30));
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    let backup_at = sim
        .event_times(a, "VI_1", |e| matches!(e, Event::BecameBackup { .. }))
        .last()
        .copied();
    let last_garp = sim.event_times(a, "VI_1", |e| matches!(e, Event::SendGratuitousArp { .. }));
    assert!(
        last_garp.iter().all(|t| Some(*t) < backup_at),
        "{last_garp:?} {backup_at:?}"
    );
    // Master at 3.609 s: burst, one refresh at +2 s; lost at 4 + 3.219 s, before the
    // delayed burst (+5 s) and the next refresh.
    let became = mdi_v2(100);
    assert_eq!(last_garp, vec![became, became + secs(2)]);
    assert_eq!(backup_at, Some(secs(4) + mdi_v2(200) + LATENCY));
}

#[test]
fn unicast_peers_elect_without_multicast() {
    let uni = |node: u8, peer: u8, p: u8| {
        let mut c = cfg("VI_1", 51, node, p, Version::V3);
        c.unicast_src_ip = Some(addr(node));
        c.unicast_peer = vec![addr(peer)];
        c
    };
    let mut sim = Sim::new();
    let a = sim.add_node(vec![uni(1, 2, 100)]);
    let b = sim.add_node(vec![uni(2, 1, 200)]);
    sim.start(a);
    sim.start(b);
    sim.run_until(secs(10));
    assert_eq!(sim.state(b, "VI_1"), State::Master);
    assert_eq!(sim.state(a, "VI_1"), State::Backup);
    assert!(sim.wire.iter().all(|f| f.tx.destination != MULTICAST_ADDR));
    assert!(sim.arrivals.iter().any(|x| x.node == a));
}
