//! The IPv4 forwarding table: longest-prefix match over a 16-8-8 multibit trie with
//! controlled prefix expansion, and ECMP next-hop groups chosen by flow hash.
//!
//! A [`Fib`] is immutable once built; the control plane builds a new one from the full
//! route list and publishes it through a [`FibHandle`] (an `arc_swap::ArcSwap`), so
//! workers never stop or lock: they load the current table once per burst. A lookup is at
//! most three array reads and never allocates.

use arc_swap::ArcSwap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An IPv4 prefix (address bits beyond `len` are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// Network address, host order.
    pub addr: u32,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Prefix {
    /// A prefix from an address and length; `None` when `len` > 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Prefix> {
        if len > 32 {
            return None;
        }
        Some(Prefix {
            addr: u32::from(addr) & Self::mask_of(len),
            len,
        })
    }

    /// The netmask of a prefix length (`len` > 32 is treated as 32).
    #[inline]
    pub fn mask_of(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        }
    }

    /// True when `addr` (host order) lies inside the prefix.
    #[inline]
    pub fn contains(&self, addr: u32) -> bool {
        let m = Self::mask_of(self.len);
        addr & m == self.addr & m
    }
}

/// Where a packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// Gateway; `None` for a directly connected prefix (the destination is the neighbor).
    pub gateway: Option<Ipv4Addr>,
    /// Output port.
    pub port: u16,
}

impl NextHop {
    /// The neighbor to resolve for destination `dst`.
    #[inline]
    pub fn neighbor(&self, dst: u32) -> u32 {
        self.gateway.map_or(dst, u32::from)
    }
}

/// A route: a prefix and its ECMP group (one or more next hops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub prefix: Prefix,
    /// Next hops (equal cost).
    pub nexthops: Vec<NextHop>,
}

/// Errors building a FIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    /// A route has no next hop.
    #[error("route without next hop")]
    EmptyGroup,
    /// More than 2^31 trie chunks or groups (cannot happen with realistic tables).
    #[error("table too large")]
    TooLarge,
}

const CHUNK: u32 = 0x8000_0000;

/// An immutable IPv4 FIB (see the module documentation).
#[derive(Debug, Clone)]
pub struct Fib {
    root: Vec<u32>,
    chunks: Vec<u32>,
    groups: Vec<Vec<NextHop>>,
    routes: usize,
}

impl Default for Fib {
    fn default() -> Self {
        Fib {
            root: vec![0; 1 << 16],
            chunks: Vec::new(),
            groups: Vec::new(),
            routes: 0,
        }
    }
}

impl Fib {
    /// Builds a FIB from routes (a later duplicate prefix replaces an earlier one).
    pub fn build(routes: &[Route]) -> Result<Fib, FibError> {
        let mut fib = Fib::default();
        let mut sorted: Vec<&Route> = routes.iter().collect();
        sorted.sort_by_key(|r| r.prefix.len); // stable: later duplicates win
        for r in sorted {
            if r.nexthops.is_empty() {
                return Err(FibError::EmptyGroup);
            }
            let g = u32::try_from(fib.groups.len() + 1).map_err(|_| FibError::TooLarge)?;
            if g >= CHUNK {
                return Err(FibError::TooLarge);
            }
            fib.groups.push(r.nexthops.clone());
            fib.insert(r.prefix, g)?;
        }
        fib.routes = routes.len();
        Ok(fib)
    }

    fn new_chunk(&mut self, fill: u32) -> Result<u32, FibError> {
        let idx = u32::try_from(self.chunks.len() / 256).map_err(|_| FibError::TooLarge)?;
        if idx >= CHUNK {
            return Err(FibError::TooLarge);
        }
        self.chunks.resize(self.chunks.len() + 256, fill);
        Ok(idx | CHUNK)
    }

    /// Inserts in ascending length order, so no longer prefix exists yet under `p`.
    fn insert(&mut self, p: Prefix, val: u32) -> Result<(), FibError> {
        let a = p.addr & Prefix::mask_of(p.len);
        if p.len <= 16 {
            let start = (a >> 16) as usize;
            let n = 1usize << (16 - p.len);
            for e in self.root.iter_mut().skip(start).take(n) {
                *e = val;
            }
            return Ok(());
        }
        let ri = (a >> 16) as usize;
        let cur = self.root.get(ri).copied().unwrap_or(0);
        let c1 = if cur & CHUNK != 0 {
            cur
        } else {
            let c = self.new_chunk(cur)?;
            if let Some(e) = self.root.get_mut(ri) {
                *e = c;
            }
            c
        };
        let base1 = ((c1 & !CHUNK) as usize) * 256;
        if p.len <= 24 {
            let start = base1 + ((a >> 8) & 0xff) as usize;
            let n = 1usize << (24 - p.len);
            for e in self.chunks.iter_mut().skip(start).take(n) {
                *e = val;
            }
            return Ok(());
        }
        let i1 = base1 + ((a >> 8) & 0xff) as usize;
        let cur = self.chunks.get(i1).copied().unwrap_or(0);
        let c2 = if cur & CHUNK != 0 {
            cur
        } else {
            let c = self.new_chunk(cur)?;
            if let Some(e) = self.chunks.get_mut(i1) {
                *e = c;
            }
            c
        };
        let base2 = ((c2 & !CHUNK) as usize) * 256;
        let start = base2 + (a & 0xff) as usize;
        let n = 1usize << (32 - p.len);
        for e in self.chunks.iter_mut().skip(start).take(n) {
            *e = val;
        }
        Ok(())
    }

    /// The ECMP group of the longest prefix containing `addr` (host order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<&[NextHop]> {
        let mut e = *self.root.get((addr >> 16) as usize)?;
        if e & CHUNK != 0 {
            e = *self
                .chunks
                .get(((e & !CHUNK) as usize) * 256 + ((addr >> 8) & 0xff) as usize)?;
            if e & CHUNK != 0 {
                e = *self
                    .chunks
                    .get(((e & !CHUNK) as usize) * 256 + (addr & 0xff) as usize)?;
            }
        }
        if e == 0 {
            return None;
        }
        self.groups.get(e as usize - 1).map(|g| g.as_slice())
    }

    /// The next hop for `addr`, choosing within an ECMP group by `flow_hash`.
    #[inline]
    pub fn select(&self, addr: u32, flow_hash: u32) -> Option<NextHop> {
        let g = self.lookup(addr)?;
        let i = ((u64::from(flow_hash) * g.len() as u64) >> 32) as usize;
        g.get(i).copied()
    }

    /// Number of routes the table was built from.
    pub fn len(&self) -> usize {
        self.routes
    }

    /// True when built from no route.
    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }

    /// Bytes of trie memory.
    pub fn memory(&self) -> usize {
        (self.root.len() + self.chunks.len()) * 4
    }
}

/// The published FIB shared by the control plane and every worker.
#[derive(Debug)]
pub struct FibHandle(ArcSwap<Fib>);

impl FibHandle {
    /// A handle publishing `fib`.
    pub fn new(fib: Fib) -> Self {
        FibHandle(ArcSwap::from_pointee(fib))
    }

    /// Replaces the table; workers see it at their next [`load`](Self::load).
    pub fn store(&self, fib: Fib) {
        self.0.store(Arc::new(fib));
    }

    /// The current table (lock-free; hold it for one burst).
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Fib>> {
        self.0.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nh(p: u16) -> Vec<NextHop> {
        vec![NextHop {
            gateway: Some(Ipv4Addr::new(10, 0, 0, p as u8)),
            port: p,
        }]
    }

    fn r(a: [u8; 4], len: u8, p: u16) -> Route {
        Route {
            prefix: Prefix::new(Ipv4Addr::from(a), len).expect("len"),
            nexthops: nh(p),
        }
    }

    fn port(f: &Fib, a: [u8; 4]) -> Option<u16> {
        f.select(u32::from(Ipv4Addr::from(a)), 0).map(|n| n.port)
    }

    #[test]
    fn longest_prefix_wins_at_every_level() {
        let f = Fib::build(&[
            r([192, 168, 7, 0], 24, 3),
            r([0, 0, 0, 0], 0, 1),
            r([192, 168, 0, 0], 16, 2),
            r([192, 168, 7, 27], 32, 4),
            r([192, 168, 7, 128], 25, 5),
            r([192, 160, 0, 0], 12, 6),
        ])
        .expect("build");
        assert_eq!(port(&f, [8, 8, 8, 8]), Some(1));
        assert_eq!(port(&f, [192, 168, 1, 1]), Some(2));
        assert_eq!(port(&f, [192, 168, 7, 1]), Some(3));
        assert_eq!(port(&f, [192, 168, 7, 27]), Some(4));
        assert_eq!(port(&f, [192, 168, 7, 200]), Some(5));
        assert_eq!(port(&f, [192, 170, 0, 1]), Some(6));
        assert_eq!(port(&f, [192, 176, 0, 1]), Some(1));
        let empty = Fib::build(&[r([10, 0, 0, 0], 8, 9)]).expect("b");
        assert_eq!(port(&empty, [11, 0, 0, 1]), None);
        assert!(Prefix::new(Ipv4Addr::new(1, 2, 3, 4), 33).is_none());
        assert_eq!(
            Fib::build(&[Route {
                prefix: Prefix { addr: 0, len: 0 },
                nexthops: vec![]
            }])
            .err(),
            Some(FibError::EmptyGroup)
        );
    }

    #[test]
    fn matches_a_linear_reference_on_random_tables() {
        let mut rng = crate::flow::XorShift64::new(11);
        let mut routes = Vec::new();
        for i in 0..300u16 {
            let len = (rng.below(33)) as u8;
            let a = rng.next_u64() as u32;
            routes.push(Route {
                prefix: Prefix {
                    addr: a & Prefix::mask_of(len),
                    len,
                },
                nexthops: nh(i),
            });
        }
        let f = Fib::build(&routes).expect("build");
        for _ in 0..20_000 {
            let mut a = rng.next_u64() as u32;
            if rng.below(2) == 0 {
                // Aim near a route.
                let rt = &routes[rng.below(routes.len() as u64) as usize];
                a = rt.prefix.addr | (a & !Prefix::mask_of(rt.prefix.len));
            }
            let want = routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.prefix.contains(a))
                .max_by_key(|(i, r)| (r.prefix.len, *i))
                .map(|(_, r)| r.nexthops[0].port);
            assert_eq!(f.select(a, 0).map(|n| n.port), want, "{a:#x}");
        }
    }

    #[test]
    fn ecmp_spreads_by_flow_hash() {
        let group: Vec<NextHop> = (0..3)
            .map(|p| NextHop {
                gateway: None,
                port: p,
            })
            .collect();
        let f = Fib::build(&[Route {
            prefix: Prefix { addr: 0, len: 0 },
            nexthops: group,
        }])
        .expect("b");
        let mut c = [0u32; 3];
        for i in 0..30_000u64 {
            let h = (crate::flow::mix64(i) >> 32) as u32;
            c[f.select(0x0a00_0001, h).expect("nh").port as usize] += 1;
        }
        for x in c {
            assert!((9_000..11_000).contains(&x), "{c:?}");
        }
        let n = f.select(0x0a00_0001, 5).expect("nh");
        assert_eq!(n.neighbor(0x0a00_0001), 0x0a00_0001);
    }

    #[test]
    fn handle_swaps_tables() {
        let h = FibHandle::new(Fib::default());
        let old = h.load();
        assert_eq!(old.select(1, 0), None);
        h.store(Fib::build(&[r([0, 0, 0, 0], 0, 7)]).expect("b"));
        assert_eq!(old.select(1, 0), None, "a held guard keeps its table");
        assert_eq!(h.load().select(1, 0).map(|n| n.port), Some(7));
        assert_eq!(h.load().len(), 1);
    }
}
