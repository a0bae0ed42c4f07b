//! The neighbor (ARP) table of one worker: resolution state per next hop and a small
//! queue of packets waiting for an unresolved neighbor.
//!
//! The table is bounded (its map is allocated for its capacity up front, so inserting
//! never grows it). Packets are queued as opaque handles `H` (e.g. an mbuf index) that
//! the caller owns; the table hands them back when the neighbor resolves or fails.
//! Timers follow Linux defaults loosely: a request is retried every second up to three
//! times, a reachable entry becomes stale after 30 seconds (still used, re-probed).

use crate::flow::FastBuild;
use std::collections::HashMap;
use std::time::Duration;

/// Packets queued per unresolved neighbor (Linux `unres_qlen` is per-socket bytes; DPVS
/// queues a few mbufs per neighbor).
pub const QUEUE_LEN: usize = 4;
/// Interval between ARP requests for an incomplete entry.
pub const RETRANS: Duration = Duration::from_secs(1);
/// Requests before an entry fails.
pub const MAX_PROBES: u8 = 3;
/// Time a confirmed entry stays reachable.
pub const REACHABLE: Duration = Duration::from_secs(30);

/// Resolution state of a neighbor (RFC 4861 §7.3.2 states, as Linux uses for ARP too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Request sent, no answer yet.
    Incomplete,
    /// Answer seen recently.
    Reachable,
    /// Known address, not confirmed for a while.
    Stale,
    /// No answer after the retries.
    Failed,
}

#[derive(Debug, Clone)]
struct Entry<H> {
    state: NeighState,
    mac: [u8; 6],
    since: Duration,
    probes: u8,
    queue: [Option<H>; QUEUE_LEN],
}

/// What to do with a packet for a next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve<H> {
    /// Send now to this MAC.
    Known([u8; 6]),
    /// Queued; send an ARP request when `request` is true.
    Queued {
        /// An ARP request should go out now.
        request: bool,
    },
    /// Not queued (queue or table full, or the neighbor failed): drop the handle.
    Dropped(H),
}

/// Things the table asks the caller to do from [`NeighTable::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighEvent<H> {
    /// Send an ARP request for this address (host order).
    Request(u32),
    /// Drop this queued packet (resolution failed).
    Drop(H),
}

/// The neighbor table (see the module documentation).
#[derive(Debug)]
pub struct NeighTable<H> {
    map: HashMap<u32, Entry<H>, FastBuild>,
    cap: usize,
}

impl<H: Copy> NeighTable<H> {
    /// A table for at most `capacity` neighbors.
    pub fn new(capacity: usize) -> Self {
        NeighTable {
            map: HashMap::with_capacity_and_hasher(capacity.max(1), FastBuild::default()),
            cap: capacity.max(1),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The state and MAC of a neighbor.
    pub fn get(&self, ip: u32) -> Option<(NeighState, [u8; 6])> {
        self.map.get(&ip).map(|e| (e.state, e.mac))
    }

    /// The MAC to use for `ip`, if known (Reachable or Stale).
    #[inline]
    pub fn mac(&self, ip: u32) -> Option<[u8; 6]> {
        self.map
            .get(&ip)
            .filter(|e| matches!(e.state, NeighState::Reachable | NeighState::Stale))
            .map(|e| e.mac)
    }

    /// Resolves `ip` for packet `pkt` at `now`: the MAC if known, else the packet is
    /// queued (first time: an ARP request is due).
    pub fn resolve(&mut self, ip: u32, pkt: H, now: Duration) -> Resolve<H> {
        if !self.map.contains_key(&ip) && self.map.len() >= self.cap {
            return Resolve::Dropped(pkt);
        }
        let e = self.map.entry(ip).or_insert(Entry {
            state: NeighState::Failed,
            mac: [0; 6],
            since: now,
            probes: 0,
            queue: [None; QUEUE_LEN],
        });
        match e.state {
            NeighState::Reachable | NeighState::Stale => Resolve::Known(e.mac),
            NeighState::Failed => {
                e.state = NeighState::Incomplete;
                e.since = now;
                e.probes = 1;
                e.queue = [None; QUEUE_LEN];
                e.queue[0] = Some(pkt);
                Resolve::Queued { request: true }
            }
            NeighState::Incomplete => match e.queue.iter_mut().find(|q| q.is_none()) {
                Some(q) => {
                    *q = Some(pkt);
                    Resolve::Queued { request: false }
                }
                None => Resolve::Dropped(pkt),
            },
        }
    }

    /// Records `ip` is at `mac` (an ARP reply or request seen from it). Returns the
    /// packets that were waiting, to be sent now to `mac`. A new neighbor is learned
    /// only if `create` (RFC 826: merge, create only when the request targets us).
    pub fn learn(
        &mut self,
        ip: u32,
        mac: [u8; 6],
        now: Duration,
        create: bool,
    ) -> [Option<H>; QUEUE_LEN] {
        if !self.map.contains_key(&ip) && (!create || self.map.len() >= self.cap) {
            return [None; QUEUE_LEN];
        }
        let e = self.map.entry(ip).or_insert(Entry {
            state: NeighState::Reachable,
            mac,
            since: now,
            probes: 0,
            queue: [None; QUEUE_LEN],
        });
        e.state = NeighState::Reachable;
        e.mac = mac;
        e.since = now;
        e.probes = 0;
        std::mem::replace(&mut e.queue, [None; QUEUE_LEN])
    }

    /// Ages entries at `now`: retries or fails incomplete ones, marks old reachable ones
    /// stale (with a probe). Scans the table; call it from a periodic timer.
    pub fn tick(&mut self, now: Duration, mut out: impl FnMut(NeighEvent<H>)) {
        for (&ip, e) in self.map.iter_mut() {
            match e.state {
                NeighState::Incomplete if now.saturating_sub(e.since) >= RETRANS => {
                    if e.probes >= MAX_PROBES {
                        e.state = NeighState::Failed;
                        for q in e.queue.iter_mut() {
                            if let Some(h) = q.take() {
                                out(NeighEvent::Drop(h));
                            }
                        }
                    } else {
                        e.probes += 1;
                        e.since = now;
                        out(NeighEvent::Request(ip));
                    }
                }
                NeighState::Reachable if now.saturating_sub(e.since) >= REACHABLE => {
                    e.state = NeighState::Stale;
                    out(NeighEvent::Request(ip));
                }
                _ => {}
            }
        }
        self.map
            .retain(|_, e| e.state != NeighState::Failed || e.queue.iter().any(|q| q.is_some()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

    #[test]
    fn queue_then_learn_releases_packets() {
        let mut t: NeighTable<u32> = NeighTable::new(8);
        let now = Duration::from_secs(1);
        assert_eq!(t.resolve(7, 100, now), Resolve::Queued { request: true });
        for p in 101..104 {
            assert_eq!(t.resolve(7, p, now), Resolve::Queued { request: false });
        }
        assert_eq!(t.resolve(7, 104, now), Resolve::Dropped(104));
        assert_eq!(t.mac(7), None);
        let q = t.learn(7, MAC, now, false);
        assert_eq!(q, [Some(100), Some(101), Some(102), Some(103)]);
        assert_eq!(t.resolve(7, 105, now), Resolve::Known(MAC));
        assert_eq!(t.get(7), Some((NeighState::Reachable, MAC)));
    }

    #[test]
    fn retries_then_fails_and_drops_queue() {
        let mut t: NeighTable<u32> = NeighTable::new(8);
        let s = Duration::from_secs;
        t.resolve(9, 1, s(0));
        let mut ev = Vec::new();
        t.tick(s(1), |e| ev.push(e));
        t.tick(s(2), |e| ev.push(e));
        t.tick(s(3), |e| ev.push(e));
        assert_eq!(
            ev,
            vec![
                NeighEvent::Request(9),
                NeighEvent::Request(9),
                NeighEvent::Drop(1)
            ]
        );
        assert!(t.is_empty());
        // A failed neighbor starts over on the next packet.
        assert_eq!(t.resolve(9, 2, s(4)), Resolve::Queued { request: true });
    }

    #[test]
    fn stale_after_reachable_time_and_bounded() {
        let mut t: NeighTable<u32> = NeighTable::new(1);
        assert_eq!(t.learn(5, MAC, Duration::ZERO, false), [None; QUEUE_LEN]);
        assert!(t.is_empty(), "not created unsolicited");
        t.learn(5, MAC, Duration::ZERO, true);
        let mut ev = Vec::new();
        t.tick(REACHABLE, |e| ev.push(e));
        assert_eq!(ev, vec![NeighEvent::Request(5)]);
        assert_eq!(t.get(5).map(|e| e.0), Some(NeighState::Stale));
        assert_eq!(t.mac(5), Some(MAC));
        assert_eq!(
            t.resolve(6, 1, Duration::ZERO),
            Resolve::Dropped(1),
            "table full"
        );
    }
}
