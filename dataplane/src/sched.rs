//! Real-server schedulers with Linux IPVS semantics (`net/netfilter/ipvs/ip_vs_*.c`), plus
//! DPVS's consistent-hash scheduler.
//!
//! A [`Scheduler`] is chosen per virtual service and owned by one worker. The caller
//! passes the current view of the service's real servers ([`RsView`]: weight, active and
//! inactive connections, flags) and the flow key of the new connection; the scheduler
//! returns an index into that slice. A server with weight 0, the overloaded flag, or not
//! available (health) is never chosen. Schedulers whose state depends on the server set
//! (wrr, dh, sh, mh, conhash, lblc, lblcr) must be told with [`Scheduler::update`] when
//! servers are added, removed or re-weighted.

use crate::flow::{hash_32, mix64, FlowKey, XorShift64};
use std::time::Duration;

/// What a scheduler sees of one real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RsView {
    /// Stable identity of the server within its service (survives re-ordering).
    pub id: u32,
    /// Server address, host order (used by hashing schedulers for their tables).
    pub addr: u32,
    /// Server port.
    pub port: u16,
    /// Configured weight; 0 drains (never chosen for new connections).
    pub weight: u32,
    /// Active (established TCP) connections.
    pub active: u32,
    /// Inactive (other state) connections.
    pub inactive: u32,
    /// Upper connection threshold reached (IPVS `IP_VS_DEST_F_OVERLOAD`).
    pub overloaded: bool,
    /// Health state: false removes the server from scheduling.
    pub available: bool,
}

impl RsView {
    /// True when the server may take a new connection.
    #[inline]
    pub fn usable(&self) -> bool {
        self.weight > 0 && !self.overloaded && self.available
    }

    /// IPVS `ip_vs_dest_conn_overhead`: active connections weigh 256 inactive ones.
    #[inline]
    fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }
}

/// Which scheduler a service uses (`ipvsadm -s NAME`, with `-b` flags for sh and mh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin (gcd / max-weight stepping).
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Locality-based least connections (by destination address).
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh {
        /// Include the source port in the hash (`sh-port`).
        port: bool,
        /// Try other buckets when the hashed server is unusable (`sh-fallback`).
        fallback: bool,
    },
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover: the highest-weight usable server.
    Fo,
    /// Weighted overflow: the highest-weight server below its weight in active conns.
    Ovf,
    /// Maglev hashing.
    Mh {
        /// Lookup table size, a prime (IPVS default 251).
        table_size: u32,
        /// Include the source port in the hash (`mh-port`).
        port: bool,
        /// Try other slots when the hashed server is unusable (`mh-fallback`).
        fallback: bool,
    },
    /// Weighted random "power of two choices".
    Twos {
        /// Seed of the scheduler's own random generator.
        seed: u64,
    },
    /// DPVS consistent hashing over a ring of virtual nodes, by source address.
    Conhash {
        /// Include the source port in the hash.
        port: bool,
    },
}

impl SchedKind {
    /// The ipvsadm name of the scheduler.
    pub fn name(&self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh { .. } => "sh",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Mh { .. } => "mh",
            SchedKind::Twos { .. } => "twos",
            SchedKind::Conhash { .. } => "conhash",
        }
    }

    /// Parses an ipvsadm scheduler name with default flags (mh table 251).
    pub fn from_name(name: &str) -> Result<Self, SchedError> {
        Ok(match name {
            "rr" => SchedKind::Rr,
            "wrr" => SchedKind::Wrr,
            "lc" => SchedKind::Lc,
            "wlc" => SchedKind::Wlc,
            "lblc" => SchedKind::Lblc,
            "lblcr" => SchedKind::Lblcr,
            "dh" => SchedKind::Dh,
            "sh" => SchedKind::Sh {
                port: false,
                fallback: false,
            },
            "sed" => SchedKind::Sed,
            "nq" => SchedKind::Nq,
            "fo" => SchedKind::Fo,
            "ovf" => SchedKind::Ovf,
            "mh" => SchedKind::Mh {
                table_size: MH_DEFAULT_TABLE,
                port: false,
                fallback: false,
            },
            "twos" => SchedKind::Twos { seed: 0x7477_6f73 },
            "conhash" => SchedKind::Conhash { port: false },
            _ => return Err(SchedError::UnknownScheduler),
        })
    }
}

/// Errors building a scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// The scheduler name is not one of rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos conhash.
    #[error("unknown scheduler name")]
    UnknownScheduler,
    /// The Maglev table size is not a prime in 3..=65521.
    #[error("maglev table size must be a prime between 3 and 65521")]
    BadTableSize,
}

/// IPVS default Maglev table size.
pub const MH_DEFAULT_TABLE: u32 = 251;
/// dh / sh bucket table size (IPVS `IP_VS_DH_TAB_BITS` = `IP_VS_SH_TAB_BITS` = 8).
const HASH_TAB_BITS: u32 = 8;
const HASH_TAB_SIZE: usize = 1 << HASH_TAB_BITS;
/// lblc / lblcr locality table entries (direct-mapped by destination hash).
const LBLC_TAB_SIZE: usize = 4096;
/// IPVS `lblc_expiration` default: 24 hours.
const LBLC_EXPIRE: Duration = Duration::from_secs(24 * 3600);
/// IPVS lblcr set shrink interval: a set unmodified this long drops its busiest member.
const LBLCR_SHRINK: Duration = Duration::from_secs(6 * 60);
/// Upper bound on lblcr set size.
const LBLCR_SET_MAX: usize = 8;
/// DPVS conhash virtual nodes for the heaviest server.
const CONHASH_REPLICAS: u64 = 160;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct LblcEntry {
    daddr: u32,
    rs: u32,
    last: Duration,
}

#[derive(Debug, Clone, Copy)]
struct LblcrEntry {
    daddr: u32,
    set: [u32; LBLCR_SET_MAX],
    len: u8,
    last_mod: Duration,
}

#[derive(Debug, Clone)]
enum State {
    Rr {
        last: usize,
    },
    Wrr {
        i: usize,
        cw: i64,
        mw: i64,
        di: i64,
        started: bool,
    },
    Stateless,
    Lblc {
        tab: Vec<Option<LblcEntry>>,
        ids: Vec<(u32, u32)>,
    },
    Lblcr {
        tab: Vec<Option<LblcrEntry>>,
        ids: Vec<(u32, u32)>,
    },
    Buckets {
        tab: Vec<u32>,
    },
    Mh {
        tab: Vec<u32>,
    },
    Twos {
        rng: XorShift64,
    },
    Ring {
        ring: Vec<(u64, u32)>,
    },
}

/// A per-service scheduler (see the module documentation).
#[derive(Debug, Clone)]
pub struct Scheduler {
    kind: SchedKind,
    state: State,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while d.saturating_mul(d) <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// Index of the usable server with the least `overhead / weight` (IPVS wlc comparison
/// by cross multiplication; the first of equals wins).
fn least_weighted(servers: &[RsView], overhead: impl Fn(&RsView) -> u64) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, s) in servers.iter().enumerate() {
        if !s.usable() {
            continue;
        }
        let oh = overhead(s);
        let w = u64::from(s.weight);
        match best {
            None => best = Some((i, oh, w)),
            Some((_, loh, lw)) => {
                if u128::from(loh) * u128::from(w) > u128::from(oh) * u128::from(lw) {
                    best = Some((i, oh, w));
                }
            }
        }
    }
    best.map(|b| b.0)
}

/// IPVS lblc/lblcr `is_overloaded`: the server has more active connections than its
/// weight while some other server is below half of its weight.
fn lblc_overloaded(s: &RsView, servers: &[RsView]) -> bool {
    if s.active > s.weight {
        servers
            .iter()
            .any(|d| d.usable() && u64::from(d.active) * 2 < u64::from(d.weight))
    } else {
        false
    }
}

fn id_index(ids: &[(u32, u32)], id: u32) -> Option<usize> {
    ids.binary_search_by_key(&id, |p| p.0)
        .ok()
        .and_then(|p| ids.get(p))
        .map(|p| p.1 as usize)
}

fn build_ids(servers: &[RsView]) -> Vec<(u32, u32)> {
    let mut v: Vec<(u32, u32)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id, i as u32))
        .collect();
    v.sort_unstable();
    v
}

fn server_hash(s: &RsView, salt: u64) -> u64 {
    mix64(((u64::from(s.addr) << 16) | u64::from(s.port)) ^ salt)
}

impl Scheduler {
    /// A scheduler of the given kind, with empty per-server state (call
    /// [`update`](Self::update) with the server list before picking).
    pub fn new(kind: SchedKind) -> Result<Self, SchedError> {
        let state = match kind {
            SchedKind::Rr => State::Rr { last: usize::MAX },
            SchedKind::Wrr => State::Wrr {
                i: 0,
                cw: 0,
                mw: 0,
                di: 1,
                started: false,
            },
            SchedKind::Lc
            | SchedKind::Wlc
            | SchedKind::Sed
            | SchedKind::Nq
            | SchedKind::Fo
            | SchedKind::Ovf => State::Stateless,
            SchedKind::Lblc => State::Lblc {
                tab: vec![None; LBLC_TAB_SIZE],
                ids: Vec::new(),
            },
            SchedKind::Lblcr => State::Lblcr {
                tab: vec![None; LBLC_TAB_SIZE],
                ids: Vec::new(),
            },
            SchedKind::Dh | SchedKind::Sh { .. } => State::Buckets {
                tab: vec![NONE; HASH_TAB_SIZE],
            },
            SchedKind::Mh { table_size, .. } => {
                if !(3..=65521).contains(&table_size) || !is_prime(table_size) {
                    return Err(SchedError::BadTableSize);
                }
                State::Mh {
                    tab: vec![NONE; table_size as usize],
                }
            }
            SchedKind::Twos { seed } => State::Twos {
                rng: XorShift64::new(seed),
            },
            SchedKind::Conhash { .. } => State::Ring { ring: Vec::new() },
        };
        Ok(Scheduler { kind, state })
    }

    /// The scheduler kind.
    pub fn kind(&self) -> SchedKind {
        self.kind
    }

    /// Rebuilds the state that depends on the server set (tables, weights' gcd/max).
    /// Call after adding, removing or re-weighting a server. Allocates; control path only.
    pub fn update(&mut self, servers: &[RsView]) {
        let kind = self.kind;
        match &mut self.state {
            State::Rr { last } => {
                if *last != usize::MAX && *last >= servers.len() {
                    *last = usize::MAX;
                }
            }
            State::Wrr {
                i,
                cw,
                mw,
                di,
                started,
            } => {
                // ip_vs_wrr_dest_changed: recompute max weight and gcd, clamp cw.
                let m = servers
                    .iter()
                    .map(|s| u64::from(s.weight))
                    .max()
                    .unwrap_or(0);
                let g = servers
                    .iter()
                    .map(|s| u64::from(s.weight))
                    .filter(|&w| w > 0)
                    .fold(0, gcd);
                *mw = m as i64;
                *di = if g == 0 { 1 } else { g as i64 };
                if *cw > *mw {
                    *cw = *mw;
                }
                if *i >= servers.len() {
                    *i = 0;
                    *started = false;
                }
            }
            State::Stateless | State::Twos { .. } => {}
            State::Lblc { ids, .. } | State::Lblcr { ids, .. } => {
                *ids = build_ids(servers);
            }
            State::Buckets { tab } => {
                // ip_vs_dh_reassign: buckets cycle over the servers in list order.
                // ip_vs_sh_reassign: each server takes `weight` consecutive buckets.
                let weighted = matches!(kind, SchedKind::Sh { .. });
                let mut p = 0usize;
                let mut count = 0u32;
                for slot in tab.iter_mut() {
                    match servers.get(p) {
                        None => *slot = NONE,
                        Some(s) => {
                            *slot = p as u32;
                            count += 1;
                            if !weighted || count >= s.weight {
                                count = 0;
                                p = (p + 1) % servers.len();
                            }
                        }
                    }
                }
            }
            State::Mh { tab } => mh_populate(tab, servers),
            State::Ring { ring } => {
                ring.clear();
                let mw = servers
                    .iter()
                    .map(|s| u64::from(s.weight))
                    .max()
                    .unwrap_or(0);
                if mw == 0 {
                    return;
                }
                for (i, s) in servers.iter().enumerate() {
                    if s.weight == 0 {
                        continue;
                    }
                    let vnodes = (CONHASH_REPLICAS * u64::from(s.weight) / mw).max(1);
                    for r in 0..vnodes {
                        ring.push((server_hash(s, r.wrapping_mul(0x9e37_79b9)), i as u32));
                    }
                }
                ring.sort_unstable();
            }
        }
    }

    /// Chooses a server for a new connection with flow `key` at time `now`; `None` when
    /// no server is usable. Never allocates.
    pub fn pick(&mut self, servers: &[RsView], key: &FlowKey, now: Duration) -> Option<usize> {
        let n = servers.len();
        if n == 0 {
            return None;
        }
        let kind = self.kind;
        match &mut self.state {
            State::Rr { last } => {
                // ip_vs_rr_schedule: continue after the last pick, skip unusable.
                let start = if *last == usize::MAX { n - 1 } else { *last };
                for step in 1..=n {
                    let idx = (start + step) % n;
                    if servers.get(idx).is_some_and(|s| s.usable()) {
                        *last = idx;
                        return Some(idx);
                    }
                }
                None
            }
            State::Wrr {
                i,
                cw,
                mw,
                di,
                started,
            } => {
                if *mw <= 0 {
                    return None;
                }
                // ip_vs_wrr_schedule: step through the list; at each wrap lower cw by
                // the gcd, restarting from the max weight.
                let bound = n.saturating_mul((*mw / *di) as usize + 1).saturating_add(n);
                for _ in 0..bound {
                    if *started {
                        *i = (*i + 1) % n;
                    } else {
                        *started = true;
                        *i = 0;
                    }
                    if *i == 0 {
                        *cw -= *di;
                        if *cw <= 0 {
                            *cw = *mw;
                        }
                    }
                    if let Some(s) = servers.get(*i) {
                        if s.usable() && i64::from(s.weight) >= *cw {
                            return Some(*i);
                        }
                    }
                }
                None
            }
            State::Stateless => match kind {
                SchedKind::Lc => {
                    let mut best: Option<(usize, u64)> = None;
                    for (i, s) in servers.iter().enumerate() {
                        if s.usable() && best.map_or(true, |(_, b)| s.overhead() < b) {
                            best = Some((i, s.overhead()));
                        }
                    }
                    best.map(|b| b.0)
                }
                SchedKind::Wlc => least_weighted(servers, RsView::overhead),
                SchedKind::Sed => least_weighted(servers, |s| u64::from(s.active) + 1),
                SchedKind::Nq => {
                    // ip_vs_nq_schedule: an idle server wins at once.
                    if let Some(i) = servers.iter().position(|s| s.usable() && s.active == 0) {
                        return Some(i);
                    }
                    least_weighted(servers, |s| u64::from(s.active) + 1)
                }
                SchedKind::Fo => {
                    let mut best: Option<(usize, u32)> = None;
                    for (i, s) in servers.iter().enumerate() {
                        if s.usable() && best.map_or(true, |(_, w)| s.weight > w) {
                            best = Some((i, s.weight));
                        }
                    }
                    best.map(|b| b.0)
                }
                SchedKind::Ovf => {
                    let mut best: Option<(usize, u32)> = None;
                    for (i, s) in servers.iter().enumerate() {
                        if s.usable()
                            && s.active < s.weight
                            && best.map_or(true, |(_, w)| s.weight > w)
                        {
                            best = Some((i, s.weight));
                        }
                    }
                    best.map(|b| b.0)
                }
                _ => None,
            },
            State::Lblc { tab, ids } => {
                let slot = hash_32(key.daddr, 12) as usize % LBLC_TAB_SIZE;
                if let Some(Some(e)) = tab.get_mut(slot) {
                    if e.daddr == key.daddr && now.saturating_sub(e.last) < LBLC_EXPIRE {
                        if let Some(idx) = id_index(ids, e.rs) {
                            if let Some(s) = servers.get(idx) {
                                if s.usable() && !lblc_overloaded(s, servers) {
                                    e.last = now;
                                    return Some(idx);
                                }
                            }
                        }
                    }
                }
                let idx = least_weighted(servers, RsView::overhead)?;
                let s = servers.get(idx)?;
                if let Some(t) = tab.get_mut(slot) {
                    *t = Some(LblcEntry {
                        daddr: key.daddr,
                        rs: s.id,
                        last: now,
                    });
                }
                Some(idx)
            }
            State::Lblcr { tab, ids } => {
                let slot = hash_32(key.daddr, 12) as usize % LBLC_TAB_SIZE;
                let entry = tab.get_mut(slot)?;
                let valid = matches!(entry, Some(e) if e.daddr == key.daddr);
                if !valid {
                    let idx = least_weighted(servers, RsView::overhead)?;
                    let id = servers.get(idx)?.id;
                    let mut set = [NONE; LBLCR_SET_MAX];
                    set[0] = id;
                    *entry = Some(LblcrEntry {
                        daddr: key.daddr,
                        set,
                        len: 1,
                        last_mod: now,
                    });
                    return Some(idx);
                }
                let e = entry.as_mut()?;
                // Drop members that left the service.
                let mut j = 0usize;
                for k in 0..usize::from(e.len) {
                    let id = e.set[k];
                    if id_index(ids, id).is_some() {
                        e.set[j] = id;
                        j += 1;
                    }
                }
                e.len = j as u8;
                // ip_vs_lblcr_schedule: shrink a stale set by its busiest member.
                if e.len > 1 && now.saturating_sub(e.last_mod) > LBLCR_SHRINK {
                    let mut most: Option<(usize, u64, u64)> = None;
                    for k in 0..usize::from(e.len) {
                        let s = id_index(ids, e.set[k]).and_then(|i| servers.get(i));
                        if let Some(s) = s {
                            let (oh, w) = (s.overhead(), u64::from(s.weight.max(1)));
                            if most.map_or(true, |(_, moh, mw)| {
                                u128::from(oh) * u128::from(mw) > u128::from(moh) * u128::from(w)
                            }) {
                                most = Some((k, oh, w));
                            }
                        }
                    }
                    if let Some((k, _, _)) = most {
                        let last = usize::from(e.len) - 1;
                        e.set.swap(k, last);
                        e.len -= 1;
                        e.last_mod = now;
                    }
                }
                // Least loaded member of the set.
                let mut best: Option<(usize, u64, u64)> = None;
                for k in 0..usize::from(e.len) {
                    if let Some(i) = id_index(ids, e.set[k]) {
                        if let Some(s) = servers.get(i) {
                            if !s.usable() {
                                continue;
                            }
                            let (oh, w) = (s.overhead(), u64::from(s.weight));
                            if best.map_or(true, |(_, loh, lw)| {
                                u128::from(loh) * u128::from(w) > u128::from(oh) * u128::from(lw)
                            }) {
                                best = Some((i, oh, w));
                            }
                        }
                    }
                }
                let need_new = match best {
                    None => true,
                    Some((i, _, _)) => servers.get(i).map_or(true, |s| lblc_overloaded(s, servers)),
                };
                if !need_new {
                    return best.map(|b| b.0);
                }
                let idx = least_weighted(servers, RsView::overhead)?;
                let id = servers.get(idx)?.id;
                if !e.set[..usize::from(e.len)].contains(&id) {
                    if usize::from(e.len) < LBLCR_SET_MAX {
                        e.set[usize::from(e.len)] = id;
                        e.len += 1;
                    } else {
                        e.set[LBLCR_SET_MAX - 1] = id;
                    }
                    e.last_mod = now;
                }
                Some(idx)
            }
            State::Buckets { tab } => match kind {
                SchedKind::Sh { port, fallback } => {
                    let p = if port { u32::from(key.sport) } else { 0 };
                    let base = hash_32(p.wrapping_add(key.saddr), HASH_TAB_BITS) as usize;
                    let tries = if fallback { HASH_TAB_SIZE } else { 1 };
                    for off in 0..tries {
                        let b = (base + off) % HASH_TAB_SIZE;
                        let idx = *tab.get(b)? as usize;
                        if servers.get(idx).is_some_and(|s| s.usable()) {
                            return Some(idx);
                        }
                    }
                    None
                }
                _ => {
                    let b = hash_32(key.daddr, HASH_TAB_BITS) as usize;
                    let idx = *tab.get(b)? as usize;
                    servers.get(idx).filter(|s| s.usable()).map(|_| idx)
                }
            },
            State::Mh { tab } => {
                let (port, fallback) = match kind {
                    SchedKind::Mh { port, fallback, .. } => (port, fallback),
                    _ => (false, false),
                };
                let m = tab.len() as u64;
                let p = if port { u64::from(key.sport) } else { 0 };
                let h = mix64((u64::from(key.saddr) << 16 | p) ^ 0x6d68_5f6b_6579);
                let tries = if fallback { m } else { 1 };
                for off in 0..tries {
                    let slot = if off == 0 {
                        h % m
                    } else {
                        mix64(h.wrapping_add(off)) % m
                    };
                    let idx = *tab.get(slot as usize)? as usize;
                    if servers.get(idx).is_some_and(|s| s.usable()) {
                        return Some(idx);
                    }
                }
                None
            }
            State::Twos { rng } => {
                // ip_vs_twos_schedule: two weighted random candidates, keep the one with
                // the lower overhead / weight.
                let total: u64 = servers
                    .iter()
                    .filter(|s| s.usable())
                    .map(|s| u64::from(s.weight))
                    .sum();
                if total == 0 {
                    return None;
                }
                let r1 = rng.below(total);
                let r2 = rng.below(total);
                let find = |mut r: u64| -> Option<usize> {
                    for (i, s) in servers.iter().enumerate() {
                        if !s.usable() {
                            continue;
                        }
                        let w = u64::from(s.weight);
                        if r < w {
                            return Some(i);
                        }
                        r -= w;
                    }
                    None
                };
                let a = find(r1)?;
                let b = find(r2)?;
                let (sa, sb) = (servers.get(a)?, servers.get(b)?);
                if u128::from(sa.overhead()) * u128::from(sb.weight)
                    > u128::from(sb.overhead()) * u128::from(sa.weight)
                {
                    Some(b)
                } else {
                    Some(a)
                }
            }
            State::Ring { ring } => {
                if ring.is_empty() {
                    return None;
                }
                let port = matches!(kind, SchedKind::Conhash { port: true });
                let p = if port { u64::from(key.sport) } else { 0 };
                let h = mix64((u64::from(key.saddr) << 16 | p) ^ 0x636f_6e68);
                let start = ring.partition_point(|e| e.0 < h);
                for k in 0..ring.len() {
                    let (_, idx) = *ring.get((start + k) % ring.len())?;
                    if servers.get(idx as usize).is_some_and(|s| s.usable()) {
                        return Some(idx as usize);
                    }
                }
                None
            }
        }
    }
}

/// Maglev table population (Eisenbud et al., NSDI 2016, "Maglev", §3.4), weighted as
/// IPVS `ip_vs_mh_populate`: each server takes `weight / gcd` turns per round.
fn mh_populate(tab: &mut [u32], servers: &[RsView]) {
    let m = tab.len() as u64;
    for t in tab.iter_mut() {
        *t = NONE;
    }
    let g = servers
        .iter()
        .map(|s| u64::from(s.weight))
        .filter(|&w| w > 0)
        .fold(0, gcd);
    if g == 0 || m == 0 {
        return;
    }
    let perms: Vec<(u64, u64, u64, usize)> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.weight > 0)
        .map(|(i, s)| {
            let offset = server_hash(s, 0x6f66_6673) % m;
            let skip = server_hash(s, 0x736b_6970) % (m - 1) + 1;
            (offset, skip, u64::from(s.weight) / g, i)
        })
        .collect();
    let mut next = vec![0u64; perms.len()];
    let mut filled = 0u64;
    'outer: loop {
        for (k, &(offset, skip, turns, idx)) in perms.iter().enumerate() {
            for _ in 0..turns {
                loop {
                    let c = ((offset + next[k] * skip) % m) as usize;
                    next[k] += 1;
                    if tab[c] == NONE {
                        tab[c] = idx as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == m {
                    break 'outer;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::PROTO_TCP;
    use std::net::Ipv4Addr;

    fn servers(weights: &[u32]) -> Vec<RsView> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| RsView {
                id: i as u32 + 100,
                addr: u32::from(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1)),
                port: 80,
                weight: w,
                available: true,
                ..Default::default()
            })
            .collect()
    }

    fn key(i: u32) -> FlowKey {
        FlowKey {
            saddr: mix64(u64::from(i)) as u32,
            daddr: u32::from(Ipv4Addr::new(100, 96, 0, 1)),
            sport: (i % 60000) as u16 + 1024,
            dport: 80,
            proto: PROTO_TCP,
        }
    }

    fn sched(kind: SchedKind, s: &[RsView]) -> Scheduler {
        let mut sc = Scheduler::new(kind).expect("valid");
        sc.update(s);
        sc
    }

    /// Picks `n` times; when `track`, each pick becomes an active connection.
    fn run(kind: SchedKind, s: &mut [RsView], n: u32, track: bool) -> Vec<u32> {
        let mut sc = sched(kind, s);
        let mut counts = vec![0u32; s.len()];
        for i in 0..n {
            let idx = sc
                .pick(s, &key(i), Duration::from_secs(1))
                .expect("a server");
            counts[idx] += 1;
            if track {
                s[idx].active += 1;
            }
        }
        counts
    }

    #[test]
    fn names_round_trip() {
        for n in [
            "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
            "twos", "conhash",
        ] {
            assert_eq!(SchedKind::from_name(n).map(|k| k.name()), Ok(n));
        }
        assert_eq!(
            SchedKind::from_name("xx"),
            Err(SchedError::UnknownScheduler)
        );
        assert!(Scheduler::new(SchedKind::Mh {
            table_size: 250,
            port: false,
            fallback: false
        })
        .is_err());
        assert!(Scheduler::new(SchedKind::Mh {
            table_size: 65537,
            port: false,
            fallback: false
        })
        .is_err());
        assert!(Scheduler::new(SchedKind::Mh {
            table_size: 65521,
            port: false,
            fallback: false
        })
        .is_ok());
    }

    #[test]
    fn rr_cycles_and_skips_weight_zero_and_overloaded() {
        let mut s = servers(&[1, 0, 1, 1]);
        s[3].overloaded = true;
        let c = run(SchedKind::Rr, &mut s, 3000, false);
        assert_eq!(c, vec![1500, 0, 1500, 0]);
        let mut sc = sched(SchedKind::Rr, &s);
        let seq: Vec<_> = (0..4)
            .map(|i| sc.pick(&s, &key(i), Duration::ZERO))
            .collect();
        assert_eq!(seq, vec![Some(0), Some(2), Some(0), Some(2)]);
        let none = servers(&[0, 0]);
        assert_eq!(
            sched(SchedKind::Rr, &none).pick(&none, &key(0), Duration::ZERO),
            None
        );
    }

    #[test]
    fn wrr_three_to_one_exact_and_sequence() {
        let mut s = servers(&[3, 1]);
        assert_eq!(run(SchedKind::Wrr, &mut s, 4000, false), vec![3000, 1000]);
        let mut sc = sched(SchedKind::Wrr, &s);
        let seq: Vec<_> = (0..8)
            .filter_map(|i| sc.pick(&s, &key(i), Duration::ZERO))
            .collect();
        assert_eq!(seq, vec![0, 0, 0, 1, 0, 0, 0, 1]);
        // gcd stepping: 4:2:0 behaves as 2:1, weight 0 never chosen.
        let mut s = servers(&[4, 2, 0]);
        assert_eq!(
            run(SchedKind::Wrr, &mut s, 3000, false),
            vec![2000, 1000, 0]
        );
        // All overloaded: no pick and no endless loop.
        let mut s = servers(&[5, 3]);
        s[0].overloaded = true;
        s[1].overloaded = true;
        assert_eq!(
            sched(SchedKind::Wrr, &s).pick(&s, &key(0), Duration::ZERO),
            None
        );
    }

    #[test]
    fn lc_balances_and_prefers_least() {
        let mut s = servers(&[1, 1, 1]);
        assert_eq!(
            run(SchedKind::Lc, &mut s, 3000, true),
            vec![1000, 1000, 1000]
        );
        let mut s = servers(&[1, 1, 1]);
        s[0].active = 5;
        s[1].inactive = 300; // 300 inactive > 1 active (256)
        s[2].active = 1;
        assert_eq!(
            sched(SchedKind::Lc, &s).pick(&s, &key(0), Duration::ZERO),
            Some(2)
        );
    }

    #[test]
    fn wlc_sed_follow_weights_when_loaded() {
        for kind in [SchedKind::Wlc, SchedKind::Sed, SchedKind::Nq] {
            let mut s = servers(&[3, 1, 0]);
            let c = run(kind, &mut s, 4000, true);
            assert!((2999..=3001).contains(&c[0]) && c[2] == 0, "{kind:?} {c:?}");
        }
    }

    #[test]
    fn sed_and_nq_differ_on_idle_server() {
        // sed: (0+1)/1 = 1 vs (2+1)/10 = 0.3 -> server 1; nq takes the idle server 0.
        let mut s = servers(&[1, 10]);
        s[1].active = 2;
        assert_eq!(
            sched(SchedKind::Sed, &s).pick(&s, &key(0), Duration::ZERO),
            Some(1)
        );
        assert_eq!(
            sched(SchedKind::Nq, &s).pick(&s, &key(0), Duration::ZERO),
            Some(0)
        );
    }

    #[test]
    fn fo_takes_highest_weight_then_fails_over() {
        let mut s = servers(&[5, 10, 10, 1]);
        assert_eq!(run(SchedKind::Fo, &mut s, 100, true), vec![0, 100, 0, 0]);
        s[1].available = false;
        assert_eq!(
            sched(SchedKind::Fo, &s).pick(&s, &key(0), Duration::ZERO),
            Some(2)
        );
    }

    #[test]
    fn ovf_overflows_by_active_count() {
        let mut s = servers(&[2, 3, 1]);
        let c = run(SchedKind::Ovf, &mut s, 6, true);
        assert_eq!(c, vec![2, 3, 1]);
        assert_eq!(
            sched(SchedKind::Ovf, &s).pick(&s, &key(9), Duration::ZERO),
            None
        );
    }

    #[test]
    fn dh_is_sticky_per_destination_and_spreads() {
        let s = servers(&[1, 1, 1, 1]);
        let mut sc = sched(SchedKind::Dh, &s);
        let mut counts = [0u32; 4];
        for d in 0..4000u32 {
            let mut k = key(d);
            k.daddr = mix64(u64::from(d)) as u32;
            let a = sc.pick(&s, &k, Duration::ZERO).expect("pick");
            k.saddr ^= 0xdead;
            assert_eq!(sc.pick(&s, &k, Duration::ZERO), Some(a));
            counts[a] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        // The hashed server unusable: no fallback in dh.
        let mut s2 = s.clone();
        let k = key(1);
        let a = sc.pick(&s, &k, Duration::ZERO).expect("pick");
        s2[a].weight = 0;
        assert_eq!(sc.pick(&s2, &k, Duration::ZERO), None);
    }

    #[test]
    fn sh_sticky_port_flag_and_fallback() {
        let s = servers(&[1, 1, 1]);
        let mut sc = sched(
            SchedKind::Sh {
                port: false,
                fallback: false,
            },
            &s,
        );
        let mut counts = [0u32; 3];
        for i in 0..3000 {
            let mut k = key(i);
            let a = sc.pick(&s, &k, Duration::ZERO).expect("pick");
            k.sport = k.sport.wrapping_add(1);
            assert_eq!(sc.pick(&s, &k, Duration::ZERO), Some(a), "port ignored");
            counts[a] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
        // With the port flag, the same source spreads across servers by port.
        let mut scp = sched(
            SchedKind::Sh {
                port: true,
                fallback: false,
            },
            &s,
        );
        let mut seen = [false; 3];
        for p in 0..64u16 {
            let mut k = key(7);
            k.sport = 1000 + p;
            seen[scp.pick(&s, &k, Duration::ZERO).expect("pick")] = true;
        }
        assert_eq!(seen, [true; 3]);
        // Fallback moves only the flows of the unusable server.
        let mut down = s.clone();
        down[0].available = false;
        let mut nf = sched(
            SchedKind::Sh {
                port: false,
                fallback: false,
            },
            &s,
        );
        let mut fb = sched(
            SchedKind::Sh {
                port: false,
                fallback: true,
            },
            &s,
        );
        for i in 0..500 {
            let k = key(i);
            let before = nf.pick(&s, &k, Duration::ZERO).expect("pick");
            let after = fb.pick(&down, &k, Duration::ZERO).expect("fallback");
            assert_ne!(after, 0);
            if before != 0 {
                assert_eq!(before, after);
                assert_eq!(nf.pick(&down, &k, Duration::ZERO), Some(before));
            } else {
                assert_eq!(nf.pick(&down, &k, Duration::ZERO), None);
            }
        }
    }

    #[test]
    fn sh_weights_take_consecutive_buckets() {
        let s = servers(&[3, 1]);
        let mut sc = sched(
            SchedKind::Sh {
                port: false,
                fallback: false,
            },
            &s,
        );
        let mut counts = [0u32; 2];
        for i in 0..8000 {
            counts[sc.pick(&s, &key(i), Duration::ZERO).expect("pick")] += 1;
        }
        // 192 of 256 buckets vs 64.
        assert!((5600..6400).contains(&counts[0]), "{counts:?}");
    }

    fn mh(size: u32) -> SchedKind {
        SchedKind::Mh {
            table_size: size,
            port: false,
            fallback: false,
        }
    }

    #[test]
    fn mh_distribution_by_weight() {
        let s = servers(&[1, 1, 2]);
        let mut sc = sched(mh(MH_DEFAULT_TABLE), &s);
        let mut counts = [0u32; 3];
        for i in 0..20_000 {
            counts[sc.pick(&s, &key(i), Duration::ZERO).expect("pick")] += 1;
        }
        assert!((4000..6000).contains(&counts[0]), "{counts:?}");
        assert!((4000..6000).contains(&counts[1]), "{counts:?}");
        assert!((8500..11500).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn mh_removal_disrupts_about_one_nth() {
        let n = 10usize;
        let all = servers(&vec![1; n]);
        let fewer: Vec<RsView> = all.iter().copied().filter(|s| s.id != 103).collect();
        let mut a = sched(mh(65521), &all);
        let mut b = sched(mh(65521), &fewer);
        let (mut moved, total) = (0u32, 20_000u32);
        let mut moved_from_survivor = 0u32;
        for i in 0..total {
            let k = key(i);
            let before = all[a.pick(&all, &k, Duration::ZERO).expect("pick")].id;
            let after = fewer[b.pick(&fewer, &k, Duration::ZERO).expect("pick")].id;
            if before != after {
                moved += 1;
                if before != 103 {
                    moved_from_survivor += 1;
                }
            }
        }
        let frac = f64::from(moved) / f64::from(total);
        assert!((0.08..0.14).contains(&frac), "moved {frac}");
        assert!(
            f64::from(moved_from_survivor) / f64::from(total) < 0.03,
            "{moved_from_survivor}"
        );
    }

    #[test]
    fn mh_fallback_and_port_flags() {
        let s = servers(&[1, 1, 1]);
        let mut down = s.clone();
        down[1].overloaded = true;
        let mut plain = sched(mh(251), &s);
        let mut fb = sched(
            SchedKind::Mh {
                table_size: 251,
                port: false,
                fallback: true,
            },
            &s,
        );
        let mut saw_none = false;
        for i in 0..300 {
            let k = key(i);
            let orig = plain.pick(&s, &k, Duration::ZERO).expect("pick");
            let f = fb
                .pick(&down, &k, Duration::ZERO)
                .expect("fallback finds one");
            assert_ne!(f, 1);
            if orig != 1 {
                assert_eq!(orig, f);
            } else {
                saw_none |= plain.pick(&down, &k, Duration::ZERO).is_none();
            }
        }
        assert!(saw_none);
        let mut mp = sched(
            SchedKind::Mh {
                table_size: 251,
                port: true,
                fallback: false,
            },
            &s,
        );
        let mut seen = [false; 3];
        for p in 0..64u16 {
            let mut k = key(3);
            k.sport = 2000 + p;
            seen[mp.pick(&s, &k, Duration::ZERO).expect("pick")] = true;
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn mh_builds_for_many_servers() {
        let s = servers(&vec![100; 1000]);
        let sc = sched(mh(65521), &s);
        if let State::Mh { tab } = &sc.state {
            assert!(tab.iter().all(|&e| (e as usize) < 1000));
        } else {
            panic!("mh state");
        }
    }

    #[test]
    fn lblc_sticks_by_destination_until_overloaded() {
        let mut s = servers(&[2, 2]);
        let mut sc = sched(SchedKind::Lblc, &s);
        let mut k = key(1);
        k.daddr = 0x0a0a_0a0a;
        let first = sc.pick(&s, &k, Duration::from_secs(1)).expect("pick");
        for _ in 0..2 {
            s[first].active += 1;
            k.saddr += 1;
            assert_eq!(sc.pick(&s, &k, Duration::from_secs(2)), Some(first));
        }
        s[first].active += 1;
        // active 3 > weight 2 and the other is below half its weight: move.
        assert_eq!(sc.pick(&s, &k, Duration::from_secs(3)), Some(1 - first));
        // Expired entries are re-scheduled (least connections again).
        s[first].active = 0;
        s[1 - first].active = 1;
        assert_eq!(
            sc.pick(&s, &k, Duration::from_secs(3) + LBLC_EXPIRE),
            Some(first)
        );
    }

    #[test]
    fn lblcr_grows_set_on_overload_and_uses_least_member() {
        let mut s = servers(&[1, 1, 4]);
        let mut sc = sched(SchedKind::Lblcr, &s);
        let mut k = key(1);
        k.daddr = 0x0b0b_0b0b;
        let a = sc.pick(&s, &k, Duration::from_secs(1)).expect("pick");
        assert_eq!(a, 0);
        s[0].active = 2; // > weight 1; server 2 below half of 4
        let b = sc.pick(&s, &k, Duration::from_secs(2)).expect("pick");
        assert_ne!(b, 0);
        s[0].active = 0;
        // The set is {0, b}: least loaded member 0 is used again.
        s[b].active = 1;
        assert_eq!(sc.pick(&s, &k, Duration::from_secs(3)), Some(0));
    }

    #[test]
    fn twos_weighted_distribution() {
        let mut s = servers(&[3, 1]);
        let c = run(SchedKind::Twos { seed: 42 }, &mut s, 4000, true);
        assert!((2800..3200).contains(&c[0]), "{c:?}");
        let z = servers(&[0, 0]);
        assert_eq!(
            sched(SchedKind::Twos { seed: 1 }, &z).pick(&z, &key(0), Duration::ZERO),
            None
        );
    }

    #[test]
    fn conhash_consistent_and_minimally_disrupted() {
        let all = servers(&[1; 8]);
        let fewer: Vec<RsView> = all.iter().copied().filter(|s| s.id != 102).collect();
        let mut a = sched(SchedKind::Conhash { port: false }, &all);
        let mut b = sched(SchedKind::Conhash { port: false }, &fewer);
        let mut counts = [0u32; 8];
        let mut moved_survivor = 0;
        for i in 0..8000 {
            let k = key(i);
            let x = a.pick(&all, &k, Duration::ZERO).expect("pick");
            counts[x] += 1;
            let y = b.pick(&fewer, &k, Duration::ZERO).expect("pick");
            if all[x].id != 102 && all[x].id != fewer[y].id {
                moved_survivor += 1;
            }
        }
        assert_eq!(moved_survivor, 0);
        for c in counts {
            assert!((600..1400).contains(&c), "{counts:?}");
        }
    }
}
