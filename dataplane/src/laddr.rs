//! The FullNAT local-address pool of one service on one worker.
//!
//! Each worker owns a disjoint share of the local ports: port `p` belongs to worker
//! `p % workers` (the NIC steers return traffic RS→LIP:lport to that worker by a
//! flow-director rule on the low bits of the destination port, as DPVS does). So a
//! worker only allocates ports it will receive replies for, and [`owner_of_port`] tells
//! any worker where a stray reply belongs.
//!
//! Ports are handed out first in, first out: a released port goes to the back of the
//! queue, so the longest possible time passes before the same local address and port
//! meet the same real server again (its side of a closed connection may still sit in
//! TIME_WAIT). Each pool starts at a point of its share chosen from a seed
//! ([`LaddrPool::new_seeded`]), so a restarted node does not replay the port sequence of
//! its previous run into the servers' TIME_WAIT entries.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

/// The worker that owns local port `port` when there are `workers` workers.
#[inline]
pub fn owner_of_port(port: u16, workers: u16) -> u16 {
    port % workers.max(1)
}

#[derive(Debug, Clone)]
struct LocalAddr {
    addr: u32,
    free: VecDeque<u16>,
    used: Vec<u64>,
}

impl LocalAddr {
    fn is_used(&self, port: u16) -> bool {
        self.used
            .get(usize::from(port) / 64)
            .is_some_and(|w| w & (1u64 << (port % 64)) != 0)
    }

    fn set_used(&mut self, port: u16, v: bool) {
        if let Some(w) = self.used.get_mut(usize::from(port) / 64) {
            if v {
                *w |= 1u64 << (port % 64);
            } else {
                *w &= !(1u64 << (port % 64));
            }
        }
    }
}

/// One worker's share of a service's local addresses and ports.
#[derive(Debug, Clone)]
pub struct LaddrPool {
    addrs: Vec<LocalAddr>,
    next: usize,
    exhausted: u64,
    in_use: u64,
    /// Where each address's queue starts ([`LaddrPool::new_seeded`]); kept for
    /// [`LaddrPool::rebuilt`].
    seed: u64,
}

/// splitmix64's finaliser: spreads a seed over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// DPVS default local port range.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (1025, 65535);

impl LaddrPool {
    /// The share of `worker` (of `workers`) of ports `range.0..=range.1` on each address,
    /// handed out from the lowest port up. Allocates the free lists now (control path).
    pub fn new(addrs: &[Ipv4Addr], range: (u16, u16), worker: u16, workers: u16) -> Self {
        Self::new_seeded(addrs, range, worker, workers, 0)
    }

    /// As [`new`](Self::new), but each address's queue starts at a port of the share
    /// chosen from `seed` (0: the lowest port) and wraps around. The daemon passes a
    /// random seed per run. Control path (allocates).
    pub fn new_seeded(
        addrs: &[Ipv4Addr],
        range: (u16, u16),
        worker: u16,
        workers: u16,
        seed: u64,
    ) -> Self {
        let workers = workers.max(1);
        let (lo, hi) = (range.0.min(range.1), range.0.max(range.1));
        let addrs = addrs
            .iter()
            .map(|a| {
                let mut free: VecDeque<u16> = (lo..=hi)
                    .filter(|p| p % workers == worker % workers)
                    .collect();
                if seed != 0 && !free.is_empty() {
                    let r = mix(seed ^ u64::from(u32::from(*a))) % free.len() as u64;
                    free.rotate_left(usize::try_from(r).unwrap_or(0));
                }
                LocalAddr {
                    addr: u32::from(*a),
                    free,
                    used: vec![0; 1024],
                }
            })
            .collect();
        LaddrPool {
            addrs,
            next: 0,
            exhausted: 0,
            in_use: 0,
            seed,
        }
    }

    /// An empty pool (services without FullNAT).
    pub fn empty() -> Self {
        LaddrPool {
            addrs: Vec::new(),
            next: 0,
            exhausted: 0,
            in_use: 0,
            seed: 0,
        }
    }

    /// True when the pool has no address.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Takes a local address and port, round robin over the addresses; `None` (and the
    /// exhaustion counter bumped) when every port of this worker's share is in use.
    pub fn alloc(&mut self) -> Option<(u32, u16)> {
        let n = self.addrs.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if let Some(a) = self.addrs.get_mut(i) {
                if let Some(p) = a.free.pop_front() {
                    a.set_used(p, true);
                    self.next = (i + 1) % n;
                    self.in_use += 1;
                    return Some((a.addr, p));
                }
            }
        }
        self.exhausted += 1;
        None
    }

    /// Returns a port taken by [`alloc`](Self::alloc). Unknown or already free ports are
    /// ignored (returns false).
    pub fn release(&mut self, addr: u32, port: u16) -> bool {
        let Some(a) = self.addrs.iter_mut().find(|a| a.addr == addr) else {
            return false;
        };
        if !a.is_used(port) {
            return false;
        }
        a.set_used(port, false);
        a.free.push_back(port);
        self.in_use -= 1;
        true
    }

    /// A pool for new settings (ipvsadm -E) that keeps every port still held by a live
    /// connection of this pool reserved: on an address the new pool keeps, within its
    /// range and this worker's share, such a port stays in use (and is given back by the
    /// connection's [`release`](Self::release) as usual) instead of being handed out
    /// again. Ports on dropped addresses or outside the new range are not the new pool's
    /// business: their releases are ignored. Control path (allocates).
    pub fn rebuilt(
        &self,
        addrs: &[Ipv4Addr],
        range: (u16, u16),
        worker: u16,
        workers: u16,
    ) -> Self {
        let mut pool = LaddrPool::new_seeded(addrs, range, worker, workers, self.seed);
        for old in &self.addrs {
            let Some(new) = pool.addrs.iter_mut().find(|a| a.addr == old.addr) else {
                continue;
            };
            // Only ports of the new share can be reserved: others are never handed out.
            let held: Vec<u16> = new
                .free
                .iter()
                .copied()
                .filter(|&p| old.is_used(p))
                .collect();
            new.free.retain(|&p| !old.is_used(p));
            for p in held {
                new.set_used(p, true);
                pool.in_use += 1;
            }
        }
        pool
    }

    /// True when `addr` is one of the pool's addresses.
    pub fn contains(&self, addr: u32) -> bool {
        self.addrs.iter().any(|a| a.addr == addr)
    }

    /// Allocations refused because the share was exhausted.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }

    /// Ports in use.
    pub fn in_use(&self) -> u64 {
        self.in_use
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_disjoint_shares_and_owner_matches() {
        let addrs = [
            Ipv4Addr::new(192, 168, 7, 188),
            Ipv4Addr::new(192, 168, 7, 189),
        ];
        let mut seen = std::collections::HashSet::new();
        for w in 0..4u16 {
            let mut p = LaddrPool::new(&addrs, (1000, 1099), w, 4);
            while let Some((a, port)) = p.alloc() {
                assert_eq!(owner_of_port(port, 4), w);
                assert!(seen.insert((a, port)), "duplicate {a} {port}");
            }
            assert_eq!(p.exhausted(), 1);
        }
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn round_robin_release_and_double_release() {
        let addrs = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
        let mut p = LaddrPool::new(&addrs, (5000, 5003), 0, 1);
        let a = p.alloc().expect("a");
        let b = p.alloc().expect("b");
        assert_ne!(a.0, b.0);
        assert_eq!(a.1, 5000);
        assert_eq!(p.in_use(), 2);
        assert!(p.release(a.0, a.1));
        assert!(!p.release(a.0, a.1), "double release ignored");
        assert!(!p.release(0x0909_0909, 1));
        assert_eq!(p.in_use(), 1);
        let mut n = 0;
        while p.alloc().is_some() {
            n += 1;
        }
        assert_eq!(n, 7);
        assert!(LaddrPool::empty().alloc().is_none());
    }

    #[test]
    fn rebuilt_pool_keeps_live_ports_reserved_until_released() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let mut old = LaddrPool::new(&[a], (5000, 5003), 0, 1);
        let p1 = old.alloc().expect("p1");
        let p2 = old.alloc().expect("p2");
        assert_eq!((p1.1, p2.1), (5000, 5001));
        // Edit: keep `a`, add `b`, shrink the range so 5001 stays but 5000 leaves it.
        let mut new = old.rebuilt(&[a, b], (5001, 5004), 0, 1);
        assert_eq!(new.in_use(), 1, "5001 on a is still held");
        let mut got = Vec::new();
        while let Some(x) = new.alloc() {
            got.push(x);
        }
        assert!(
            !got.contains(&(u32::from(a), 5001)),
            "held port handed out again"
        );
        assert_eq!(got.len(), 3 + 4);
        // The old connections end: 5001 comes back, 5000 (outside the range) is ignored.
        assert!(new.release(u32::from(a), 5001));
        assert!(!new.release(u32::from(a), 5000));
        assert_eq!(new.alloc(), Some((u32::from(a), 5001)));
        assert!(new.alloc().is_none());
    }

    #[test]
    fn released_ports_go_to_the_back_of_the_queue() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = LaddrPool::new(&[a], (5000, 5003), 0, 1);
        let first = p.alloc().expect("first");
        assert_eq!(first.1, 5000);
        assert!(p.release(first.0, first.1));
        // 5000 is reused only after every other free port.
        let order: Vec<u16> = std::iter::from_fn(|| p.alloc().map(|x| x.1)).collect();
        assert_eq!(order, vec![5001, 5002, 5003, 5000]);
    }

    #[test]
    fn seeded_pools_start_elsewhere_and_cover_the_same_share() {
        let addrs = [Ipv4Addr::new(10, 0, 0, 1)];
        let drain = |mut p: LaddrPool| -> Vec<u16> {
            std::iter::from_fn(|| p.alloc().map(|x| x.1)).collect()
        };
        let plain = drain(LaddrPool::new(&addrs, (1025, 65535), 1, 2));
        let runs: Vec<Vec<u16>> = [11u64, 12, 13]
            .iter()
            .map(|&s| drain(LaddrPool::new_seeded(&addrs, (1025, 65535), 1, 2, s)))
            .collect();
        for r in &runs {
            let mut sorted = r.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, plain, "same share, every port once");
            assert!(r.iter().all(|p| p % 2 == 1));
        }
        // Three seeds, three different starting points (and none at the lowest port).
        let starts: std::collections::HashSet<u16> = runs.iter().map(|r| r[0]).collect();
        assert_eq!(starts.len(), 3, "{starts:?}");
        assert!(!starts.contains(&plain[0]));
        // A rebuilt pool keeps the seed.
        let mut old = LaddrPool::new_seeded(&addrs, (1025, 65535), 1, 2, 11);
        let held = old.alloc().expect("held");
        let mut new = old.rebuilt(&addrs, (1025, 65535), 1, 2);
        assert_eq!(new.alloc().map(|x| x.1), runs[0].get(1).copied());
        assert!(!new.release(held.0, 1), "not a held port");
    }
}
