//! An in-memory network for OSPF instances: segments (broadcast LANs or point-to-point
//! links) that deliver packets with a delay, optional jitter (reordering) and loss, driven
//! in simulated time by always advancing to the earliest deadline.
#![allow(dead_code)]

use ospf::instance::{Event, InterfaceState};
use ospf::{Instance, Transmit};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A member of a segment: node index, interface index, interface address.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    pub node: usize,
    pub ifindex: u32,
    pub addr: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub ports: Vec<Port>,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Duration,
    seq: u64,
    node: usize,
    ifindex: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    bytes: Vec<u8>,
}

/// A captured packet (for tests that inspect or replay traffic).
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Duration,
    pub from: usize,
    pub ifindex: u32,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub bytes: Vec<u8>,
}

pub type Filter = Box<dyn FnMut(&Seen) -> bool>;

pub struct Net {
    pub now: Duration,
    pub nodes: Vec<Instance>,
    pub alive: Vec<bool>,
    pub segments: Vec<Segment>,
    pub events: Vec<Vec<(Duration, Event)>>,
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// Returns false to drop a packet (called for every transmitted packet).
    pub filter: Option<Filter>,
    pub capture: Vec<Seen>,
    pub capture_on: bool,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    rng: u64,
}

impl Net {
    pub fn new(seed: u64) -> Self {
        Self {
            now: Duration::ZERO,
            nodes: Vec::new(),
            alive: Vec::new(),
            segments: Vec::new(),
            events: Vec::new(),
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            filter: None,
            capture: Vec::new(),
            capture_on: false,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: seed.max(1),
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn rand_f(&mut self) -> f64 {
        (self.rand() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn add(&mut self, inst: Instance) -> usize {
        self.nodes.push(inst);
        self.alive.push(true);
        self.events.push(Vec::new());
        self.nodes.len() - 1
    }

    pub fn connect(&mut self, ports: Vec<Port>) -> usize {
        self.segments.push(Segment { ports, up: true });
        self.segments.len() - 1
    }

    /// Brings every interface of every node up at the current time.
    pub fn start(&mut self) {
        let now = self.now;
        for s in self.segments.clone() {
            for p in s.ports {
                self.nodes[p.node].interface_up(now, p.ifindex);
            }
        }
        self.pump();
    }

    /// Makes a node stop responding (as kill -9): it neither sends nor receives.
    pub fn kill(&mut self, node: usize) {
        self.alive[node] = false;
    }

    /// Runs `f` on a node at the current time, then collects its output.
    pub fn with<R>(&mut self, node: usize, f: impl FnOnce(&mut Instance, Duration) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[node], now);
        self.pump();
        r
    }

    /// Injects a packet as if sent by `from` on `ifindex`.
    pub fn inject(&mut self, from: usize, ifindex: u32, dst: Ipv4Addr, bytes: Vec<u8>) {
        self.send(
            from,
            Transmit {
                ifindex,
                dst,
                bytes,
            },
        );
    }

    fn send(&mut self, from: usize, t: Transmit) {
        let Some(seg) = self
            .segments
            .iter()
            .find(|s| {
                s.ports
                    .iter()
                    .any(|p| p.node == from && p.ifindex == t.ifindex)
            })
            .cloned()
        else {
            return;
        };
        if !seg.up {
            return;
        }
        let src = seg
            .ports
            .iter()
            .find(|p| p.node == from && p.ifindex == t.ifindex)
            .map(|p| p.addr)
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let seen = Seen {
            at: self.now,
            from,
            ifindex: t.ifindex,
            src,
            dst: t.dst,
            bytes: t.bytes.clone(),
        };
        if let Some(f) = self.filter.as_mut() {
            if !f(&seen) {
                return;
            }
        }
        if self.capture_on {
            self.capture.push(seen);
        }
        for p in seg.ports.iter().filter(|p| p.node != from) {
            let deliver = if t.dst == Ipv4Addr::new(224, 0, 0, 5) {
                true
            } else if t.dst == Ipv4Addr::new(224, 0, 0, 6) {
                // only DR/BDR join AllDRouters
                self.nodes[p.node].interfaces().iter().any(|i| {
                    i.ifindex == p.ifindex
                        && matches!(i.state, InterfaceState::Dr | InterfaceState::Backup)
                })
            } else {
                t.dst == p.addr
            };
            if !deliver || (self.loss > 0.0 && self.rand_f() < self.loss) {
                continue;
            }
            let jit = if self.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rand() % self.jitter.as_nanos() as u64)
            };
            self.seq += 1;
            self.queue.push(Reverse(Delivery {
                at: self.now + self.delay + jit,
                seq: self.seq,
                node: p.node,
                ifindex: p.ifindex,
                src,
                dst: t.dst,
                bytes: t.bytes.clone(),
            }));
        }
    }

    /// Collects transmits and events of every node.
    fn pump(&mut self) {
        for n in 0..self.nodes.len() {
            while let Some(t) = self.nodes[n].poll_transmit() {
                if self.alive[n] {
                    self.send(n, t);
                }
            }
            while let Some(e) = self.nodes[n].poll_event() {
                self.events[n].push((self.now, e));
            }
        }
    }

    /// The earliest pending deadline (delivery or timer).
    pub fn next_deadline(&self) -> Option<Duration> {
        let q = self.queue.peek().map(|Reverse(d)| d.at);
        let t = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.alive[*i])
            .filter_map(|(_, n)| n.poll_timeout())
            .min();
        match (q, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances simulated time to `until`, always stepping to the earliest deadline.
    pub fn run_until(&mut self, until: Duration) {
        let mut steps = 0u64;
        while let Some(t) = self.next_deadline() {
            steps += 1;
            assert!(
                steps < 50_000_000,
                "simulation does not progress at {:?}",
                self.now
            );
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            while let Some(Reverse(d)) = self.queue.peek() {
                if d.at > self.now {
                    break;
                }
                let Some(Reverse(d)) = self.queue.pop() else {
                    break;
                };
                if self.alive[d.node] {
                    self.nodes[d.node].handle_packet(self.now, d.ifindex, d.src, d.dst, &d.bytes);
                }
            }
            for n in 0..self.nodes.len() {
                if self.alive[n] && self.nodes[n].poll_timeout().is_some_and(|x| x <= self.now) {
                    self.nodes[n].handle_timeout(self.now);
                }
            }
            self.pump();
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    /// Runs until `pred` holds (checked after each step) or `limit` passes; returns the
    /// time it first held.
    pub fn run_until_pred(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&Net) -> bool,
    ) -> Option<Duration> {
        let end = self.now + limit;
        if pred(self) {
            return Some(self.now);
        }
        while let Some(t) = self.next_deadline() {
            if t > end {
                break;
            }
            let before = self.now;
            self.run_until(t);
            let _ = before;
            if pred(self) {
                return Some(self.now);
            }
        }
        None
    }

    /// LSDB fingerprint of a node: (key, seq, checksum, MaxAge?).
    pub fn lsdb_fp(&self, n: usize) -> Vec<String> {
        self.nodes[n]
            .database(self.now)
            .iter()
            .map(|e| {
                format!(
                    "{:?} {} {} {:x} {:x} {}",
                    e.header.ls_type,
                    e.header.id,
                    e.header.adv_router,
                    e.header.seq,
                    e.header.checksum,
                    e.header.age >= 3600
                )
            })
            .collect()
    }
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
