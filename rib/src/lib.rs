//! The routing information base, sans-IO.
//!
//! What it does:
//! - holds IPv4 routes from four sources: connected (derived from interface addresses),
//!   static, OSPF, and kernel (routes the host has that Fulcrum did not put there);
//! - selects one best path per prefix: lowest administrative distance (connected 0,
//!   static 1, OSPF 110, kernel 0 as in FRR; overridable per route), then lowest metric,
//!   then source order (connected, static, OSPF, kernel); the selected route's next hops
//!   form the ECMP set (sorted, duplicates merged);
//! - resolves next hops that name only a gateway recursively through the best covering
//!   route (as FRR's `ip route P via G` does), re-resolves them whenever the routing table
//!   changes, and keeps a route whose next hops all fail to resolve (or sit on interfaces
//!   that are down) inactive;
//! - produces the FIB as a stream of [`FibChange`]s, computed as a diff against what the
//!   consumer has already been given: changes to the same prefix made between two polls
//!   are coalesced, and nothing is emitted for a prefix whose forwarding entry ends up
//!   unchanged.
//!
//! What it does not do: talk to netlink or the dataplane (the daemon applies the
//! `FibChange`s), run a routing protocol, know interface names (interfaces are ifindexes;
//! the daemon maps names for display), handle IPv6, or read clocks.
//!
//! Recursive resolution rules (FRR's, documented here because they decide activity):
//! a next hop with an ifindex is directly attached and is usable while that interface is
//! up; a next hop with only a gateway `G` is resolved through the longest prefix covering
//! `G` that has an active selected route, excluding the route's own prefix, and excluding
//! the default route unless [`Rib::set_resolve_via_default`] is on (FRR's
//! `ip nht resolve-via-default` is off by default too). Through a connected route the
//! next hop becomes `G` on that interface; through a route with gateways it inherits
//! those gateways (all of them: ECMP propagates). Resolution depth is capped at
//! [`MAX_RECURSION`] levels; routes that resolve through each other in a loop are
//! inactive; the result never depends on the order routes were added.
//!
//! Cost: a change to a route with interface next hops (OSPF, connected) re-evaluates
//! that prefix plus every route with a recursive next hop (usually a handful of
//! statics); an interface going up or down re-evaluates everything. Batch OSPF updates
//! with [`Rib::apply`] or [`Rib::replace_source`] to pay once per SPF run.

mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

pub use net::Ipv4Net;

/// How many levels of recursion are resolved (route via route via route …).
pub const MAX_RECURSION: usize = 8;

/// Errors from the RIB's inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    /// A prefix length above 32.
    #[error("prefix length {0} is above 32")]
    PrefixLength(u8),
    /// A prefix written with host bits set (`10.0.0.1/24`).
    #[error("{addr}/{len} has host bits set")]
    HostBitsSet {
        /// The address as written.
        addr: Ipv4Addr,
        /// The prefix length as written.
        len: u8,
    },
    /// Text that is not `a.b.c.d/len` or `a.b.c.d`.
    #[error("cannot parse {0:?} as an IPv4 prefix")]
    Parse(String),
    /// A route with no next hop.
    #[error("route {0} has no next hop")]
    NoNextHop(Ipv4Net),
    /// A next hop with neither a gateway nor an interface.
    #[error("route {0} has a next hop with neither gateway nor interface")]
    EmptyNextHop(Ipv4Net),
    /// Connected routes come from `address_add`, not from `update`.
    #[error("connected routes are derived from interface addresses; use address_add")]
    ConnectedIsDerived,
}

/// Where a route comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A directly connected subnet, derived from an interface address.
    Connected,
    /// A configured static route.
    Static,
    /// A route computed by the OSPF instance.
    Ospf,
    /// A route found in the kernel that Fulcrum did not install.
    Kernel,
}

impl Source {
    /// The one-letter code `show ip route` uses (`C`, `S`, `O`, `K`).
    pub fn code(self) -> char {
        match self {
            Source::Connected => 'C',
            Source::Static => 'S',
            Source::Ospf => 'O',
            Source::Kernel => 'K',
        }
    }

    /// The lower-case name (`connected`, `static`, `ospf`, `kernel`).
    pub fn name(self) -> &'static str {
        match self {
            Source::Connected => "connected",
            Source::Static => "static",
            Source::Ospf => "ospf",
            Source::Kernel => "kernel",
        }
    }

    /// The default administrative distance (FRR's values).
    pub fn default_distance(self) -> u8 {
        match self {
            Source::Connected => 0,
            Source::Static => 1,
            Source::Ospf => 110,
            Source::Kernel => 0,
        }
    }
}

/// One next hop: a gateway, an outgoing interface, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    /// The gateway; `None` for a directly attached destination.
    pub gateway: Option<Ipv4Addr>,
    /// The outgoing interface; `None` when it is to be found by recursive resolution.
    pub ifindex: Option<u32>,
}

impl NextHop {
    /// A gateway to be resolved recursively.
    pub fn via(gateway: Ipv4Addr) -> Self {
        NextHop {
            gateway: Some(gateway),
            ifindex: None,
        }
    }

    /// A directly attached destination on an interface.
    pub fn dev(ifindex: u32) -> Self {
        NextHop {
            gateway: None,
            ifindex: Some(ifindex),
        }
    }

    /// A gateway on a known interface.
    pub fn via_dev(gateway: Ipv4Addr, ifindex: u32) -> Self {
        NextHop {
            gateway: Some(gateway),
            ifindex: Some(ifindex),
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.gateway, self.ifindex) {
            (Some(g), Some(i)) => write!(f, "via {g}, ifindex {i}"),
            (Some(g), None) => write!(f, "via {g}"),
            (None, Some(i)) => write!(f, "directly connected, ifindex {i}"),
            (None, None) => write!(f, "unreachable"),
        }
    }
}

/// A route handed to the RIB by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination.
    pub prefix: Ipv4Net,
    /// The next hops as the source gives them (ECMP when several).
    pub nexthops: Vec<NextHop>,
    /// The source's metric (OSPF cost; 0 for static).
    pub metric: u32,
    /// An administrative distance overriding the source's default.
    pub distance: Option<u8>,
}

/// One element of a batch for [`Rib::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// Add or replace a route (as [`Rib::update`]).
    Update(Route),
    /// Remove the source's routes for a prefix (as [`Rib::remove`]).
    Remove(Ipv4Net),
}

/// The name the design uses for what `Rib::update` takes.
pub type RouteUpdate = Route;

impl Route {
    /// A route with metric 0 and the source's default distance.
    pub fn new(prefix: Ipv4Net, nexthops: Vec<NextHop>) -> Self {
        Route {
            prefix,
            nexthops,
            metric: 0,
            distance: None,
        }
    }

    /// Sets the metric.
    pub fn with_metric(mut self, metric: u32) -> Self {
        self.metric = metric;
        self
    }

    /// Overrides the administrative distance.
    pub fn with_distance(mut self, distance: u8) -> Self {
        self.distance = Some(distance);
        self
    }

    fn validate(&self) -> Result<(), RibError> {
        if self.nexthops.is_empty() {
            return Err(RibError::NoNextHop(self.prefix));
        }
        if self
            .nexthops
            .iter()
            .any(|nh| nh.gateway.is_none() && nh.ifindex.is_none())
        {
            return Err(RibError::EmptyNextHop(self.prefix));
        }
        Ok(())
    }
}

/// One change to apply to a forwarding table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibChange {
    /// A prefix the consumer does not have yet.
    Add {
        /// The destination.
        prefix: Ipv4Net,
        /// The source of the selected route (a kernel-sync consumer skips `Kernel` and,
        /// since the kernel makes them itself, `Connected`).
        source: Source,
        /// The resolved ECMP set, sorted.
        nexthops: Vec<NextHop>,
    },
    /// A prefix the consumer has, with different next hops or source.
    Replace {
        /// The destination.
        prefix: Ipv4Net,
        /// The source of the selected route.
        source: Source,
        /// The resolved ECMP set, sorted.
        nexthops: Vec<NextHop>,
    },
    /// A prefix that no longer has an active route.
    Delete {
        /// The destination.
        prefix: Ipv4Net,
    },
}

impl FibChange {
    /// The prefix the change is about.
    pub fn prefix(&self) -> Ipv4Net {
        match self {
            FibChange::Add { prefix, .. }
            | FibChange::Replace { prefix, .. }
            | FibChange::Delete { prefix } => *prefix,
        }
    }
}

/// A forwarding entry: what the FIB holds for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibEntry {
    /// The source of the selected route.
    pub source: Source,
    /// The resolved ECMP set, sorted, never empty.
    pub nexthops: Vec<NextHop>,
}

/// The selected (best, active) route of a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Where it comes from.
    pub source: Source,
    /// Its administrative distance.
    pub distance: u8,
    /// Its metric.
    pub metric: u32,
    /// Its resolved next hops (sorted, duplicates merged, never empty).
    pub nexthops: Vec<NextHop>,
}

impl Selected {
    fn fib_entry(&self) -> FibEntry {
        FibEntry {
            source: self.source,
            nexthops: self.nexthops.clone(),
        }
    }
}

/// One line of `fulcrum routes`: a candidate route and whether it won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    /// The destination.
    pub prefix: Ipv4Net,
    /// Where it comes from.
    pub source: Source,
    /// Its administrative distance.
    pub distance: u8,
    /// Its metric.
    pub metric: u32,
    /// The next hops as configured or learned.
    pub nexthops: Vec<NextHop>,
    /// The next hops after recursive resolution; empty when the route is inactive.
    pub resolved: Vec<NextHop>,
    /// Whether this is the prefix's selected route (and so in the FIB).
    pub selected: bool,
}

impl RouteView {
    /// Whether at least one next hop resolved.
    pub fn active(&self) -> bool {
        !self.resolved.is_empty()
    }
}

impl fmt::Display for RouteView {
    /// FRR-style: `S>* 192.168.0.0/16 [1/0] via 192.168.7.20, ifindex 3`, one extra
    /// line per further ECMP next hop, `inactive` for a route that does not resolve.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sel = if self.selected { ">*" } else { "  " };
        let head = format!(
            "{}{} {} [{}/{}]",
            self.source.code(),
            sel,
            self.prefix,
            self.distance,
            self.metric
        );
        if self.resolved.is_empty() {
            let configured: Vec<String> = self.nexthops.iter().map(|n| n.to_string()).collect();
            return write!(f, "{head} {} inactive", configured.join("; "));
        }
        for (i, nh) in self.resolved.iter().enumerate() {
            if i == 0 {
                write!(f, "{head} {nh}")?;
            } else {
                let star = if self.selected { '*' } else { ' ' };
                let pad = head.len().saturating_sub(2);
                write!(f, "\n  {star}{:pad$}{nh}", "")?;
            }
        }
        Ok(())
    }
}

/// A route held for one prefix by one source (and, for static routes, one distance).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    source: Source,
    distance: u8,
    metric: u32,
    nexthops: Vec<NextHop>,
}

impl Candidate {
    /// Whether a next hop needs recursive resolution (a gateway without interface).
    fn is_recursive(&self) -> bool {
        self.nexthops.iter().any(|n| n.ifindex.is_none())
    }
}

/// Per-prefix resolution results of one recomputation.
#[derive(Debug, Clone, Default)]
struct Resolved {
    /// The resolved next hops of each candidate, in candidate order.
    per_candidate: Vec<Vec<NextHop>>,
    /// The index of the selected candidate.
    selected: Option<usize>,
}

/// The routing information base.
#[derive(Debug, Default)]
pub struct Rib {
    /// Every candidate route, by prefix; candidates kept sorted by preference key.
    candidates: BTreeMap<Ipv4Net, Vec<Candidate>>,
    /// Interface addresses (address, prefix length) by ifindex.
    addresses: BTreeMap<u32, BTreeSet<(Ipv4Addr, u8)>>,
    /// Interfaces reported down (unknown interfaces are up).
    down: BTreeSet<u32>,
    /// Whether recursive next hops may resolve through 0.0.0.0/0.
    resolve_via_default: bool,
    /// Results of the last recomputation.
    resolved: BTreeMap<Ipv4Net, Resolved>,
    /// The selected route of every active prefix.
    selected: BTreeMap<Ipv4Net, Selected>,
    /// What the FIB consumer has been told.
    consumer: BTreeMap<Ipv4Net, FibEntry>,
    /// Prefixes whose selection changed since the consumer last looked.
    dirty: BTreeSet<Ipv4Net>,
    /// Prefixes with at least one candidate needing recursive resolution.
    recursive: BTreeSet<Ipv4Net>,
}

impl Rib {
    /// An empty RIB.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows or forbids recursive next hops to resolve through the default route
    /// (forbidden by default, as FRR).
    pub fn set_resolve_via_default(&mut self, allow: bool) {
        if self.resolve_via_default != allow {
            self.resolve_via_default = allow;
            // Only recursive routes can be affected.
            self.recompute(Some(&[]));
        }
    }

    /// Adds or replaces a route of `source`. A static route replaces the static route of
    /// the same prefix and distance (so floating statics with a higher distance can
    /// coexist); any other source has one route per prefix.
    pub fn update(&mut self, source: Source, route: Route) -> Result<(), RibError> {
        if source == Source::Connected {
            return Err(RibError::ConnectedIsDerived);
        }
        route.validate()?;
        let prefix = route.prefix;
        self.insert(source, route);
        self.recompute(Some(&[prefix]));
        Ok(())
    }

    /// Applies a batch of changes from one source (OSPF handing over a diff after an
    /// SPF run) and recomputes once. Nothing changes if any route is invalid.
    pub fn apply<I>(&mut self, source: Source, changes: I) -> Result<(), RibError>
    where
        I: IntoIterator<Item = RouteChange>,
    {
        if source == Source::Connected {
            return Err(RibError::ConnectedIsDerived);
        }
        let changes: Vec<RouteChange> = changes.into_iter().collect();
        for c in &changes {
            if let RouteChange::Update(r) = c {
                r.validate()?;
            }
        }
        let mut touched = Vec::with_capacity(changes.len());
        for c in changes {
            match c {
                RouteChange::Update(r) => {
                    touched.push(r.prefix);
                    self.insert(source, r);
                }
                RouteChange::Remove(prefix) => {
                    touched.push(prefix);
                    self.drop_candidates(prefix, |c| c.source == source);
                }
            }
        }
        self.recompute(Some(&touched));
        Ok(())
    }

    /// Replaces every route of `source` with `routes` (OSPF handing over its whole
    /// table). Nothing changes if any route is invalid.
    pub fn replace_source<I>(&mut self, source: Source, routes: I) -> Result<(), RibError>
    where
        I: IntoIterator<Item = Route>,
    {
        if source == Source::Connected {
            return Err(RibError::ConnectedIsDerived);
        }
        let routes: Vec<Route> = routes.into_iter().collect();
        for r in &routes {
            r.validate()?;
        }
        let mut touched: Vec<Ipv4Net> = self
            .candidates
            .iter()
            .filter(|(_, cands)| cands.iter().any(|c| c.source == source))
            .map(|(p, _)| *p)
            .collect();
        for p in &touched {
            self.drop_candidates(*p, |c| c.source == source);
        }
        for r in routes {
            touched.push(r.prefix);
            self.insert(source, r);
        }
        self.recompute(Some(&touched));
        Ok(())
    }

    /// Removes every route of `source` for `prefix`; returns whether one existed.
    pub fn remove(&mut self, source: Source, prefix: Ipv4Net) -> bool {
        self.remove_matching(prefix, |c| c.source == source)
    }

    /// Removes the static route of `prefix` with this distance (a floating static).
    pub fn remove_static(&mut self, prefix: Ipv4Net, distance: u8) -> bool {
        self.remove_matching(prefix, |c| {
            c.source == Source::Static && c.distance == distance
        })
    }

    /// Marks an interface up: its connected routes and next hops become usable.
    pub fn interface_up(&mut self, ifindex: u32) {
        if self.down.remove(&ifindex) {
            self.recompute(None);
        }
    }

    /// Marks an interface down: its connected routes, every next hop through it and every
    /// route resolving through those become inactive (they come back on `interface_up`).
    pub fn interface_down(&mut self, ifindex: u32) {
        if self.down.insert(ifindex) {
            self.recompute(None);
        }
    }

    /// Whether an interface is up (interfaces never reported down are up).
    pub fn is_interface_up(&self, ifindex: u32) -> bool {
        !self.down.contains(&ifindex)
    }

    /// Adds an interface address (`addr/len`, host bits allowed): its subnet becomes a
    /// connected route on that interface.
    pub fn address_add(&mut self, ifindex: u32, addr: Ipv4Addr, len: u8) -> Result<(), RibError> {
        let net = Ipv4Net::new_truncating(addr, len)?;
        if self
            .addresses
            .entry(ifindex)
            .or_default()
            .insert((addr, len))
        {
            self.rebuild_connected(net);
            self.recompute(Some(&[net]));
        }
        Ok(())
    }

    /// Removes an interface address; returns whether it was there.
    pub fn address_del(&mut self, ifindex: u32, addr: Ipv4Addr, len: u8) -> Result<bool, RibError> {
        let net = Ipv4Net::new_truncating(addr, len)?;
        let removed = match self.addresses.get_mut(&ifindex) {
            Some(set) => {
                let r = set.remove(&(addr, len));
                if set.is_empty() {
                    self.addresses.remove(&ifindex);
                }
                r
            }
            None => false,
        };
        if removed {
            self.rebuild_connected(net);
            self.recompute(Some(&[net]));
        }
        Ok(removed)
    }

    /// The next FIB change the consumer has not seen, or `None` when it is in sync.
    pub fn poll_fib(&mut self) -> Option<FibChange> {
        while let Some(prefix) = self.dirty.pop_first() {
            let want = self.selected.get(&prefix).map(Selected::fib_entry);
            let have = self.consumer.get(&prefix);
            let change = match (have, want) {
                (None, None) => None,
                (Some(h), Some(w)) if *h == w => None,
                (None, Some(w)) => Some(FibChange::Add {
                    prefix,
                    source: w.source,
                    nexthops: w.nexthops.clone(),
                }),
                (Some(_), Some(w)) => Some(FibChange::Replace {
                    prefix,
                    source: w.source,
                    nexthops: w.nexthops.clone(),
                }),
                (Some(_), None) => Some(FibChange::Delete { prefix }),
            };
            if let Some(change) = change {
                match self.selected.get(&prefix) {
                    Some(s) => {
                        self.consumer.insert(prefix, s.fib_entry());
                    }
                    None => {
                        self.consumer.remove(&prefix);
                    }
                }
                return Some(change);
            }
        }
        None
    }

    /// Every FIB change the consumer has not seen, in prefix order.
    pub fn take_fib_changes(&mut self) -> Vec<FibChange> {
        let mut out = Vec::new();
        while let Some(c) = self.poll_fib() {
            out.push(c);
        }
        out
    }

    /// Forgets what the consumer was told, so the next polls replay the whole FIB as
    /// `Add`s (after a consumer restart or a netlink resync).
    pub fn resync_fib(&mut self) {
        self.consumer.clear();
        self.dirty = self.selected.keys().copied().collect();
    }

    /// The selected route of exactly this prefix.
    pub fn best(&self, prefix: Ipv4Net) -> Option<&Selected> {
        self.selected.get(&prefix)
    }

    /// Longest-prefix match over the selected routes.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<(Ipv4Net, &Selected)> {
        (0..=32u8).rev().find_map(|len| {
            let p = Ipv4Net::truncate(addr, len);
            self.selected.get(&p).map(|s| (p, s))
        })
    }

    /// The forwarding table the RIB currently selects (what the consumer holds once it
    /// has applied every pending change).
    pub fn fib(&self) -> BTreeMap<Ipv4Net, FibEntry> {
        self.selected
            .iter()
            .map(|(p, s)| (*p, s.fib_entry()))
            .collect()
    }

    /// Every candidate route, in prefix order then preference order, for `fulcrum routes`.
    pub fn routes(&self) -> Vec<RouteView> {
        let mut out = Vec::new();
        for (prefix, cands) in &self.candidates {
            let res = self.resolved.get(prefix);
            for (i, c) in cands.iter().enumerate() {
                out.push(RouteView {
                    prefix: *prefix,
                    source: c.source,
                    distance: c.distance,
                    metric: c.metric,
                    nexthops: c.nexthops.clone(),
                    resolved: res
                        .and_then(|r| r.per_candidate.get(i))
                        .cloned()
                        .unwrap_or_default(),
                    selected: res.and_then(|r| r.selected) == Some(i),
                });
            }
        }
        out
    }

    fn insert(&mut self, source: Source, route: Route) {
        let distance = route.distance.unwrap_or(source.default_distance());
        let cands = self.candidates.entry(route.prefix).or_default();
        if source == Source::Static {
            cands.retain(|c| !(c.source == source && c.distance == distance));
        } else {
            cands.retain(|c| c.source != source);
        }
        let mut nexthops = route.nexthops;
        nexthops.sort();
        nexthops.dedup();
        cands.push(Candidate {
            source,
            distance,
            metric: route.metric,
            nexthops,
        });
        cands.sort_by_key(|c| (c.distance, c.metric, c.source));
        self.classify(route.prefix);
    }

    /// Keeps `recursive` in step with the candidates of `prefix`.
    fn classify(&mut self, prefix: Ipv4Net) {
        let rec = self
            .candidates
            .get(&prefix)
            .is_some_and(|cands| cands.iter().any(Candidate::is_recursive));
        if rec {
            self.recursive.insert(prefix);
        } else {
            self.recursive.remove(&prefix);
        }
    }

    fn remove_matching(&mut self, prefix: Ipv4Net, pred: impl Fn(&Candidate) -> bool) -> bool {
        let removed = self.drop_candidates(prefix, pred);
        if removed {
            self.recompute(Some(&[prefix]));
        }
        removed
    }

    /// Removes the candidates of `prefix` matching `pred`, without recomputing.
    fn drop_candidates(&mut self, prefix: Ipv4Net, pred: impl Fn(&Candidate) -> bool) -> bool {
        let Some(cands) = self.candidates.get_mut(&prefix) else {
            return false;
        };
        let before = cands.len();
        cands.retain(|c| !pred(c));
        let removed = cands.len() != before;
        if cands.is_empty() {
            self.candidates.remove(&prefix);
        }
        self.classify(prefix);
        removed
    }

    /// Re-derives the connected candidate of `net` from the address table.
    fn rebuild_connected(&mut self, net: Ipv4Net) {
        let nexthops: Vec<NextHop> = self
            .addresses
            .iter()
            .filter(|(_, addrs)| addrs.iter().any(|&(a, l)| Ipv4Net::truncate(a, l) == net))
            .map(|(&ifindex, _)| NextHop::dev(ifindex))
            .collect();
        let cands = self.candidates.entry(net).or_default();
        cands.retain(|c| c.source != Source::Connected);
        if !nexthops.is_empty() {
            cands.push(Candidate {
                source: Source::Connected,
                distance: Source::Connected.default_distance(),
                metric: 0,
                nexthops,
            });
            cands.sort_by_key(|c| (c.distance, c.metric, c.source));
        }
        if cands.is_empty() {
            self.candidates.remove(&net);
        }
        self.classify(net);
    }

    /// Recomputes selections and marks the prefixes whose selection moved.
    ///
    /// `changed` names the prefixes whose candidates changed (`None`: everything may
    /// have, e.g. an interface changed state). A route whose next hops all carry an
    /// ifindex ("direct") depends only on its own candidates and interface states, so
    /// only changed direct prefixes are re-evaluated; routes with a gateway-only next hop
    /// ("recursive") may depend on anything and are always re-evaluated.
    ///
    /// Recursive routes are resolved in levels, so that the result does not depend on
    /// evaluation order: at level 0 every recursive route is inactive; at level k each
    /// resolves against the direct routes and the recursive routes of level k − 1. This
    /// stops when a level changes nothing, or after [`MAX_RECURSION`] levels. Routes
    /// resolving through each other in a loop never become active.
    fn recompute(&mut self, changed: Option<&[Ipv4Net]>) {
        let recursive = self.recursive.clone();
        let direct: Vec<Ipv4Net> = match changed {
            None => self
                .candidates
                .keys()
                .chain(self.selected.keys())
                .filter(|p| !recursive.contains(p))
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Some(ps) => ps
                .iter()
                .filter(|p| !recursive.contains(p))
                .copied()
                .collect(),
        };
        for p in direct {
            let (sel, res) = self.evaluate(p, &|_| None);
            self.store(p, sel, res);
        }
        // Recursive prefixes that used to be selected but no longer exist or are no
        // longer recursive were handled above (they are in `changed`); the rest:
        let mut level: BTreeMap<Ipv4Net, (Option<Selected>, Resolved)> = BTreeMap::new();
        for _ in 0..MAX_RECURSION {
            let lookup = |q: Ipv4Net| -> Option<Selected> {
                if recursive.contains(&q) {
                    level.get(&q).and_then(|(s, _)| s.clone())
                } else {
                    self.selected.get(&q).cloned()
                }
            };
            let next: BTreeMap<Ipv4Net, (Option<Selected>, Resolved)> = recursive
                .iter()
                .map(|p| (*p, self.evaluate(*p, &lookup)))
                .collect();
            let settled = next.len() == level.len()
                && next
                    .iter()
                    .all(|(p, (s, _))| level.get(p).map(|(l, _)| l) == Some(s));
            level = next;
            if settled {
                break;
            }
        }
        for (p, (sel, res)) in level {
            self.store(p, sel, res);
        }
    }

    /// Records a prefix's new selection, marking it dirty when it moved.
    fn store(&mut self, prefix: Ipv4Net, sel: Option<Selected>, res: Resolved) {
        if self.selected.get(&prefix) != sel.as_ref() {
            self.dirty.insert(prefix);
        }
        match sel {
            Some(s) => {
                self.selected.insert(prefix, s);
            }
            None => {
                self.selected.remove(&prefix);
            }
        }
        if self.candidates.contains_key(&prefix) {
            self.resolved.insert(prefix, res);
        } else {
            self.resolved.remove(&prefix);
        }
    }

    /// Evaluates one prefix: resolves each candidate's next hops (recursive ones through
    /// `lookup`) and picks the first active candidate in preference order.
    fn evaluate(
        &self,
        prefix: Ipv4Net,
        lookup: &dyn Fn(Ipv4Net) -> Option<Selected>,
    ) -> (Option<Selected>, Resolved) {
        let Some(cands) = self.candidates.get(&prefix) else {
            return (None, Resolved::default());
        };
        let mut per_candidate = Vec::with_capacity(cands.len());
        let mut best: Option<(usize, Selected)> = None;
        for (i, c) in cands.iter().enumerate() {
            let mut set = BTreeSet::new();
            for nh in &c.nexthops {
                self.resolve(prefix, *nh, lookup, &mut set);
            }
            let nhs: Vec<NextHop> = set.into_iter().collect();
            if best.is_none() && !nhs.is_empty() {
                best = Some((
                    i,
                    Selected {
                        source: c.source,
                        distance: c.distance,
                        metric: c.metric,
                        nexthops: nhs.clone(),
                    },
                ));
            }
            per_candidate.push(nhs);
        }
        let res = Resolved {
            per_candidate,
            selected: best.as_ref().map(|(i, _)| *i),
        };
        (best.map(|(_, s)| s), res)
    }

    /// Resolves one next hop of a route for `own` into `out`.
    fn resolve(
        &self,
        own: Ipv4Net,
        nh: NextHop,
        lookup: &dyn Fn(Ipv4Net) -> Option<Selected>,
        out: &mut BTreeSet<NextHop>,
    ) {
        if let Some(ifindex) = nh.ifindex {
            if self.is_interface_up(ifindex) {
                out.insert(nh);
            }
            return;
        }
        let Some(gw) = nh.gateway else {
            return;
        };
        let min_len = if self.resolve_via_default { 0 } else { 1 };
        for len in (min_len..=32u8).rev() {
            let q = Ipv4Net::truncate(gw, len);
            if q == own || !self.candidates.contains_key(&q) {
                continue;
            }
            if let Some(via) = lookup(q) {
                for hop in via.nexthops {
                    out.insert(match hop.gateway {
                        Some(_) => hop,
                        None => NextHop {
                            gateway: Some(gw),
                            ifindex: hop.ifindex,
                        },
                    });
                }
                return;
            }
        }
    }

    /// Checks that the incremental state equals a full recomputation from scratch.
    #[cfg(test)]
    fn assert_consistent(&self) {
        let mut fresh = Rib {
            candidates: self.candidates.clone(),
            addresses: self.addresses.clone(),
            down: self.down.clone(),
            resolve_via_default: self.resolve_via_default,
            ..Rib::default()
        };
        let prefixes: Vec<Ipv4Net> = fresh.candidates.keys().copied().collect();
        for p in prefixes {
            fresh.classify(p);
        }
        assert_eq!(fresh.recursive, self.recursive, "recursive set drifted");
        fresh.recompute(None);
        assert_eq!(
            fresh.selected, self.selected,
            "incremental selection drifted"
        );
    }
}

#[cfg(test)]
mod tests;
