//! Routing table calculation (RFC 2328 §16): Dijkstra over router and network LSAs with the
//! two-way check (§16.1), intra-area stub routes, inter-area routes from summary LSAs
//! (§16.2, as a non-ABR does), AS-external routes with E1/E2 and forwarding addresses
//! (§16.4), ECMP next hops (§16.1.1), and the diff against the previous table.
//!
//! A change that leaves the shortest-path tree unchanged (stub links, summaries, externals)
//! is handled by [`Spf::routes_only`], which reuses the cached tree.

use crate::lsa::{Lsa, LsaBody, LsaType, RouterLinkType, LS_INFINITY};
use crate::lsdb::Lsdb;
use crate::Ipv4Net;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// A next hop: outgoing interface index and gateway (0.0.0.0 = directly connected).
pub type Nexthop = (u32, Ipv4Addr);

/// Path types in order of preference (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathType {
    /// Intra-area.
    IntraArea,
    /// Inter-area.
    InterArea,
    /// Type 1 external.
    External1,
    /// Type 2 external.
    External2,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Cost (for E2, the cost to the ASBR / forwarding address).
    pub cost: u32,
    /// Type 2 external metric (0 otherwise).
    pub type2_cost: u32,
    /// Path type.
    pub path_type: PathType,
    /// Equal-cost next hops. Empty for prefixes this router itself announces.
    pub nexthops: BTreeSet<Nexthop>,
}

/// The routing table.
pub type RouteTable = BTreeMap<Ipv4Net, Route>;

/// Difference between two routing tables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteDiff {
    /// New prefixes.
    pub added: Vec<(Ipv4Net, Route)>,
    /// Prefixes whose route changed (new route).
    pub changed: Vec<(Ipv4Net, Route)>,
    /// Prefixes no longer reachable.
    pub removed: Vec<Ipv4Net>,
}

impl RouteDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Computes `new − old`.
pub fn diff(old: &RouteTable, new: &RouteTable) -> RouteDiff {
    let mut d = RouteDiff::default();
    for (p, r) in new {
        match old.get(p) {
            None => d.added.push((*p, r.clone())),
            Some(o) if o != r => d.changed.push((*p, r.clone())),
            _ => {}
        }
    }
    for p in old.keys() {
        if !new.contains_key(p) {
            d.removed.push(*p);
        }
    }
    d
}

/// One of the root router's interfaces, for next-hop resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpfInterface {
    /// Interface index.
    pub ifindex: u32,
    /// Interface address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl SpfInterface {
    fn net(&self) -> Option<Ipv4Net> {
        Ipv4Net::new(self.addr, self.prefix_len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Vertex {
    // networks sort first so that at equal cost they are settled before routers (§16.1)
    Network(Ipv4Addr),
    Router(Ipv4Addr),
}

#[derive(Debug, Clone)]
struct VState {
    cost: u32,
    nexthops: Arc<BTreeSet<Nexthop>>,
    settled: bool,
}

/// The cached shortest-path tree.
#[derive(Debug, Clone, Default)]
struct Tree {
    root: Option<Ipv4Addr>,
    vertices: HashMap<Vertex, VState>,
}

/// SPF calculator holding the last tree.
#[derive(Debug, Clone, Default)]
pub struct Spf {
    tree: Tree,
    /// Number of full (Dijkstra) runs.
    pub full_runs: u64,
    /// Number of route-only runs.
    pub partial_runs: u64,
}

fn links(l: &Lsa) -> &[crate::lsa::RouterLink] {
    match &l.body {
        LsaBody::Router(r) => &r.links,
        _ => &[],
    }
}

/// True when replacing `old` by `new` (either may be absent or MaxAge = absent) can change
/// the shortest-path tree; false for changes that only affect prefixes.
pub fn topology_changed(old: Option<&Lsa>, new: Option<&Lsa>) -> bool {
    let t = old.or(new).map(|l| l.header.ls_type);
    match t {
        Some(LsaType::Router) => {
            let f = |l: Option<&Lsa>| -> Vec<(Ipv4Addr, Ipv4Addr, RouterLinkType, u16)> {
                l.map(|l| {
                    links(l)
                        .iter()
                        .filter(|k| k.link_type != RouterLinkType::Stub)
                        .map(|k| (k.id, k.data, k.link_type, k.metric))
                        .collect()
                })
                .unwrap_or_default()
            };
            old.is_none() != new.is_none() || f(old) != f(new)
        }
        Some(LsaType::Network) => old.map(|l| &l.body) != new.map(|l| &l.body),
        _ => false,
    }
}

impl Spf {
    /// A calculator with no tree yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs Dijkstra and computes the full routing table.
    pub fn full(
        &mut self,
        root: Ipv4Addr,
        db: &Lsdb,
        now: Duration,
        ifaces: &[SpfInterface],
    ) -> RouteTable {
        self.full_runs += 1;
        self.tree = dijkstra(root, db, now, ifaces);
        routes(&self.tree, root, db, now, ifaces)
    }

    /// Recomputes routes on the cached tree (falls back to [`Spf::full`] if there is none
    /// for this root).
    pub fn routes_only(
        &mut self,
        root: Ipv4Addr,
        db: &Lsdb,
        now: Duration,
        ifaces: &[SpfInterface],
    ) -> RouteTable {
        if self.tree.root != Some(root) {
            return self.full(root, db, now, ifaces);
        }
        self.partial_runs += 1;
        routes(&self.tree, root, db, now, ifaces)
    }
}

fn network_index(db: &Lsdb, now: Duration) -> HashMap<Ipv4Addr, &Lsa> {
    let mut m = HashMap::new();
    for (k, e) in db.iter() {
        if k.ls_type == LsaType::Network && !e.is_max_age(now) {
            m.entry(k.id).or_insert(&e.lsa);
        }
    }
    m
}

fn router_index(db: &Lsdb, now: Duration) -> HashMap<Ipv4Addr, &Lsa> {
    let mut m = HashMap::new();
    for (k, e) in db.iter() {
        if k.ls_type == LsaType::Router && k.id == k.adv_router && !e.is_max_age(now) {
            m.insert(k.id, &e.lsa);
        }
    }
    m
}

fn dijkstra(root: Ipv4Addr, db: &Lsdb, now: Duration, ifaces: &[SpfInterface]) -> Tree {
    let nets = network_index(db, now);
    let rtrs = router_index(db, now);
    let router_lsa = |_: &Lsdb, _: Duration, rid: Ipv4Addr| rtrs.get(&rid).copied();
    let mut vs: HashMap<Vertex, VState> = HashMap::new();
    let mut heap = BinaryHeap::new();
    vs.insert(
        Vertex::Router(root),
        VState {
            cost: 0,
            nexthops: Arc::new(BTreeSet::new()),
            settled: false,
        },
    );
    heap.push(Reverse((0u32, Vertex::Router(root))));
    let mut cands: Vec<(Vertex, u32, Arc<BTreeSet<Nexthop>>)> = Vec::new();
    while let Some(Reverse((c, v))) = heap.pop() {
        let Some(st) = vs.get_mut(&v) else { continue };
        if st.settled || c > st.cost {
            continue;
        }
        st.settled = true;
        let v_nh = Arc::clone(&st.nexthops);
        cands.clear();
        match v {
            Vertex::Router(rid) => {
                let Some(l) = router_lsa(db, now, rid) else {
                    continue;
                };
                for link in links(l) {
                    match link.link_type {
                        // §16.1 step 2(b): the two-way check for transit networks
                        RouterLinkType::Transit => {
                            let Some(nl) = nets.get(&link.id) else {
                                continue;
                            };
                            let LsaBody::Network(n) = &nl.body else {
                                continue;
                            };
                            if !n.attached.contains(&rid) {
                                continue;
                            }
                            let w = Vertex::Network(link.id);
                            let nh = if rid == root {
                                Arc::new(root_network_nexthops(link.data, link.id, ifaces))
                            } else {
                                v_nh.clone()
                            };
                            cands.push((w, c.saturating_add(u32::from(link.metric)), nh));
                        }
                        // §16.1 step 2(b): two-way check for point-to-point links
                        RouterLinkType::PointToPoint => {
                            let Some(wl) = router_lsa(db, now, link.id) else {
                                continue;
                            };
                            let back: Vec<_> = links(wl)
                                .iter()
                                .filter(|k| {
                                    k.link_type == RouterLinkType::PointToPoint && k.id == rid
                                })
                                .collect();
                            if back.is_empty() {
                                continue;
                            }
                            let nh = if rid == root {
                                Arc::new(root_p2p_nexthops(link.data, &back, ifaces))
                            } else {
                                v_nh.clone()
                            };
                            cands.push((
                                Vertex::Router(link.id),
                                c.saturating_add(u32::from(link.metric)),
                                nh,
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Vertex::Network(addr) => {
                let Some(nl) = nets.get(&addr) else { continue };
                let LsaBody::Network(n) = &nl.body else {
                    continue;
                };
                for r in &n.attached {
                    let Some(wl) = router_lsa(db, now, *r) else {
                        continue;
                    };
                    // §16.1 step 2(b): the router must link back to this network
                    let Some(back) = links(wl)
                        .iter()
                        .find(|k| k.link_type == RouterLinkType::Transit && k.id == addr)
                    else {
                        continue;
                    };
                    // §16.1.1: next hop through a network directly attached to the root is
                    // the neighbor's address on that network
                    let nh = if v_nh.iter().any(|(_, g)| g.is_unspecified()) {
                        Arc::new(
                            v_nh.iter()
                                .map(|&(i, g)| {
                                    if g.is_unspecified() {
                                        (i, back.data)
                                    } else {
                                        (i, g)
                                    }
                                })
                                .collect(),
                        )
                    } else {
                        Arc::clone(&v_nh)
                    };
                    cands.push((Vertex::Router(*r), c, nh));
                }
            }
        }
        for (w, cost, nh) in cands.drain(..) {
            if nh.is_empty() {
                continue;
            }
            match vs.get_mut(&w) {
                Some(s) if s.settled => {}
                Some(s) if cost > s.cost => {}
                Some(s) if cost == s.cost => {
                    Arc::make_mut(&mut s.nexthops).extend(nh.iter().copied())
                }
                _ => {
                    vs.insert(
                        w,
                        VState {
                            cost,
                            nexthops: nh,
                            settled: false,
                        },
                    );
                    heap.push(Reverse((cost, w)));
                }
            }
        }
    }
    vs.retain(|_, s| s.settled);
    Tree {
        root: Some(root),
        vertices: vs,
    }
}

fn root_network_nexthops(
    our_addr: Ipv4Addr,
    dr: Ipv4Addr,
    ifaces: &[SpfInterface],
) -> BTreeSet<Nexthop> {
    let i = ifaces.iter().find(|i| i.addr == our_addr).or_else(|| {
        ifaces
            .iter()
            .find(|i| i.net().is_some_and(|n| n.contains(dr)))
    });
    i.map(|i| (i.ifindex, Ipv4Addr::UNSPECIFIED))
        .into_iter()
        .collect()
}

fn root_p2p_nexthops(
    link_data: Ipv4Addr,
    back: &[&crate::lsa::RouterLink],
    ifaces: &[SpfInterface],
) -> BTreeSet<Nexthop> {
    // numbered: Link Data is our address; unnumbered: it is the ifindex
    let i = ifaces
        .iter()
        .find(|i| i.addr == link_data)
        .or_else(|| ifaces.iter().find(|i| u32::from(link_data) == i.ifindex));
    let Some(i) = i else { return BTreeSet::new() };
    let net = i.net();
    let gw = back
        .iter()
        .find(|k| i.prefix_len < 32 && net.is_some_and(|n| n.contains(k.data)))
        .or_else(|| back.first())
        .map(|k| k.data);
    gw.map(|g| (i.ifindex, g)).into_iter().collect()
}

fn offer(table: &mut RouteTable, p: Ipv4Net, r: Route) {
    use std::collections::btree_map::Entry;
    match table.entry(p) {
        Entry::Vacant(v) => {
            v.insert(r);
        }
        Entry::Occupied(mut o) => {
            let cur = o.get_mut();
            let a = (cur.path_type, cur.type2_cost, cur.cost);
            let b = (r.path_type, r.type2_cost, r.cost);
            if b < a {
                *cur = r;
            } else if b == a {
                cur.nexthops.extend(r.nexthops);
            }
        }
    }
}

fn routes(
    tree: &Tree,
    root: Ipv4Addr,
    db: &Lsdb,
    now: Duration,
    ifaces: &[SpfInterface],
) -> RouteTable {
    let mut table = RouteTable::new();
    let nets = network_index(db, now);
    let rtrs = router_index(db, now);
    let router_lsa = |_: &Lsdb, _: Duration, rid: Ipv4Addr| rtrs.get(&rid).copied();
    // §16.1 step 2 / §16.1 stub phase: networks and stub links of settled vertices
    let mut routers: HashMap<Ipv4Addr, (u32, &BTreeSet<Nexthop>)> = HashMap::new();
    for (v, s) in &tree.vertices {
        match v {
            Vertex::Network(addr) => {
                let Some(nl) = nets.get(addr) else { continue };
                let LsaBody::Network(n) = &nl.body else {
                    continue;
                };
                if let Some(p) = Ipv4Net::from_mask(*addr, n.mask) {
                    offer(
                        &mut table,
                        p,
                        Route {
                            cost: s.cost,
                            type2_cost: 0,
                            path_type: PathType::IntraArea,
                            nexthops: (*s.nexthops).clone(),
                        },
                    );
                }
            }
            Vertex::Router(rid) => {
                routers.insert(*rid, (s.cost, &s.nexthops));
                let Some(l) = router_lsa(db, now, *rid) else {
                    continue;
                };
                for k in links(l)
                    .iter()
                    .filter(|k| k.link_type == RouterLinkType::Stub)
                {
                    let Some(p) = Ipv4Net::from_mask(k.id, k.data) else {
                        continue;
                    };
                    let nh = if *rid == root {
                        ifaces
                            .iter()
                            .find(|i| i.prefix_len == p.prefix_len() && i.net() == Some(p))
                            .map(|i| (i.ifindex, Ipv4Addr::UNSPECIFIED))
                            .into_iter()
                            .collect()
                    } else {
                        (*s.nexthops).clone()
                    };
                    offer(
                        &mut table,
                        p,
                        Route {
                            cost: s.cost.saturating_add(u32::from(k.metric)),
                            type2_cost: 0,
                            path_type: PathType::IntraArea,
                            nexthops: nh,
                        },
                    );
                }
            }
        }
    }
    // ASBRs reachable intra-area (E bit in their router-LSA)
    let mut asbr: HashMap<Ipv4Addr, (u32, BTreeSet<Nexthop>)> = HashMap::new();
    for (rid, (c, nh)) in &routers {
        if *rid == root {
            continue;
        }
        if let Some(LsaBody::Router(r)) = router_lsa(db, now, *rid).map(|l| &l.body) {
            if r.flags.external() {
                asbr.insert(*rid, (*c, (*nh).clone()));
            }
        }
    }
    // §16.2: inter-area routes through reachable ABRs
    let mut inter = RouteTable::new();
    let mut asbr4: HashMap<Ipv4Addr, (u32, BTreeSet<Nexthop>)> = HashMap::new();
    for (k, e) in db.iter() {
        if !matches!(k.ls_type, LsaType::SummaryNetwork | LsaType::SummaryAsbr)
            || k.adv_router == root
            || e.is_max_age(now)
        {
            continue;
        }
        let LsaBody::Summary(s) = &e.lsa.body else {
            continue;
        };
        if s.metric >= LS_INFINITY {
            continue;
        }
        let Some((c, nh)) = routers.get(&k.adv_router) else {
            continue;
        };
        let cost = c.saturating_add(s.metric);
        if k.ls_type == LsaType::SummaryNetwork {
            let Some(p) = Ipv4Net::from_mask(k.id, s.mask) else {
                continue;
            };
            if table.contains_key(&p) {
                continue;
            }
            offer(
                &mut inter,
                p,
                Route {
                    cost,
                    type2_cost: 0,
                    path_type: PathType::InterArea,
                    nexthops: (*nh).clone(),
                },
            );
        } else {
            // intra-area paths to an ASBR are preferred over summary paths
            if routers.contains_key(&k.id) && asbr.contains_key(&k.id) {
                continue;
            }
            match asbr4.entry(k.id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((cost, (*nh).clone()));
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let cur = o.get_mut();
                    if cost < cur.0 {
                        *cur = (cost, (*nh).clone());
                    } else if cost == cur.0 {
                        cur.1.extend(nh.iter().copied());
                    }
                }
            }
        }
    }
    for (id, v) in asbr4 {
        asbr.entry(id).or_insert(v);
    }
    table.extend(inter);
    // §16.4: AS-external routes
    let mut ext = RouteTable::new();
    for (k, e) in db.iter() {
        if k.ls_type != LsaType::AsExternal || k.adv_router == root || e.is_max_age(now) {
            continue;
        }
        let LsaBody::External(x) = &e.lsa.body else {
            continue;
        };
        if x.metric >= LS_INFINITY {
            continue;
        }
        let Some(p) = Ipv4Net::from_mask(k.id, x.mask) else {
            continue;
        };
        if table.contains_key(&p) {
            continue;
        }
        let Some((ac, anh)) = asbr.get(&k.adv_router) else {
            continue;
        };
        let (xcost, nh) = if x.forwarding.is_unspecified() {
            (*ac, anh.clone())
        } else {
            // longest match for the forwarding address among intra/inter-area routes
            let Some((_, r)) = table
                .iter()
                .filter(|(q, _)| q.contains(x.forwarding))
                .max_by_key(|(q, _)| q.prefix_len())
            else {
                continue;
            };
            if r.nexthops.is_empty() {
                continue;
            }
            let nh = r
                .nexthops
                .iter()
                .map(|&(i, g)| {
                    if g.is_unspecified() {
                        (i, x.forwarding)
                    } else {
                        (i, g)
                    }
                })
                .collect();
            (r.cost, nh)
        };
        let r = if x.type2 {
            Route {
                cost: xcost,
                type2_cost: x.metric,
                path_type: PathType::External2,
                nexthops: nh,
            }
        } else {
            Route {
                cost: xcost.saturating_add(x.metric),
                type2_cost: 0,
                path_type: PathType::External1,
                nexthops: nh,
            }
        };
        offer(&mut ext, p, r);
    }
    table.extend(ext);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsa::{
        ExternalLsa, LsaHeaderRepr, LsaKey, NetworkLsa, RouterFlags, RouterLink, RouterLsa,
        SummaryLsa, INITIAL_SEQ,
    };
    use crate::packet::WireLsa;
    use crate::Options;

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> Ipv4Net {
        let (x, l) = s.split_once('/').unwrap();
        Ipv4Net::new(a(x), l.parse().unwrap()).unwrap()
    }
    fn put(db: &mut Lsdb, t: LsaType, id: &str, adv: &str, body: LsaBody) {
        let mut l = Lsa {
            header: LsaHeaderRepr {
                age: 0,
                options: Options(Options::E),
                ls_type: t,
                id: a(id),
                adv_router: a(adv),
                seq: INITIAL_SEQ,
                checksum: 0,
                length: 0,
            },
            body,
        };
        let bytes = l.to_bytes().unwrap();
        db.install(Duration::ZERO, WireLsa { lsa: l, bytes }, None);
    }
    fn link(t: RouterLinkType, id: &str, data: &str, metric: u16) -> RouterLink {
        RouterLink {
            id: a(id),
            data: a(data),
            link_type: t,
            metric,
            tos: vec![],
        }
    }
    fn rtr(db: &mut Lsdb, rid: &str, flags: u8, links: Vec<RouterLink>) {
        put(
            db,
            LsaType::Router,
            rid,
            rid,
            LsaBody::Router(RouterLsa {
                flags: RouterFlags(flags),
                links,
            }),
        );
    }
    use RouterLinkType::{PointToPoint as P2P, Stub, Transit};
    fn nh(v: &[(u32, &str)]) -> BTreeSet<Nexthop> {
        v.iter().map(|(i, g)| (*i, a(g))).collect()
    }

    /// R1 —(10)— R2 —(10)— R4 and R1 —(10)— R3 —(10)— R4, numbered /30 p2p links.
    /// R1: if1 10.1.2.1/30 to R2 (10.1.2.2), if2 10.1.3.1/30 to R3 (10.1.3.2).
    fn diamond() -> (Lsdb, Vec<SpfInterface>) {
        let mut db = Lsdb::new();
        rtr(
            &mut db,
            "1.1.1.1",
            0,
            vec![
                link(P2P, "2.2.2.2", "10.1.2.1", 10),
                link(Stub, "10.1.2.0", "255.255.255.252", 10),
                link(P2P, "3.3.3.3", "10.1.3.1", 10),
                link(Stub, "10.1.3.0", "255.255.255.252", 10),
            ],
        );
        rtr(
            &mut db,
            "2.2.2.2",
            0,
            vec![
                link(P2P, "1.1.1.1", "10.1.2.2", 10),
                link(Stub, "10.1.2.0", "255.255.255.252", 10),
                link(P2P, "4.4.4.4", "10.2.4.2", 10),
                link(Stub, "10.2.4.0", "255.255.255.252", 10),
            ],
        );
        rtr(
            &mut db,
            "3.3.3.3",
            0,
            vec![
                link(P2P, "1.1.1.1", "10.1.3.2", 10),
                link(Stub, "10.1.3.0", "255.255.255.252", 10),
                link(P2P, "4.4.4.4", "10.3.4.3", 10),
                link(Stub, "10.3.4.0", "255.255.255.252", 10),
            ],
        );
        rtr(
            &mut db,
            "4.4.4.4",
            0,
            vec![
                link(P2P, "2.2.2.2", "10.2.4.4", 10),
                link(P2P, "3.3.3.3", "10.3.4.4", 10),
                link(Stub, "192.0.2.4", "255.255.255.255", 1),
            ],
        );
        let ifs = vec![
            SpfInterface {
                ifindex: 1,
                addr: a("10.1.2.1"),
                prefix_len: 30,
            },
            SpfInterface {
                ifindex: 2,
                addr: a("10.1.3.1"),
                prefix_len: 30,
            },
        ];
        (db, ifs)
    }

    #[test]
    fn diamond_ecmp() {
        let (db, ifs) = diamond();
        let mut spf = Spf::new();
        let t = spf.full(a("1.1.1.1"), &db, Duration::ZERO, &ifs);
        let both = nh(&[(1, "10.1.2.2"), (2, "10.1.3.2")]);
        let r = &t[&net("192.0.2.4/32")];
        assert_eq!((r.cost, r.path_type), (21, PathType::IntraArea));
        assert_eq!(r.nexthops, both);
        assert_eq!(t[&net("10.2.4.0/30")].cost, 20);
        assert_eq!(t[&net("10.2.4.0/30")].nexthops, nh(&[(1, "10.1.2.2")]));
        assert_eq!(t[&net("10.3.4.0/30")].nexthops, nh(&[(2, "10.1.3.2")]));
        // own subnets: directly connected
        assert_eq!(t[&net("10.1.2.0/30")].cost, 10);
        assert_eq!(t[&net("10.1.2.0/30")].nexthops, nh(&[(1, "0.0.0.0")]));
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn two_way_check_and_prefix_only_change() {
        let (mut db, ifs) = diamond();
        // R4 claims a link to R5, R5 does not link back: R5's stub is unreachable
        rtr(
            &mut db,
            "5.5.5.5",
            0,
            vec![link(Stub, "198.51.100.5", "255.255.255.255", 1)],
        );
        let mut spf = Spf::new();
        let t = spf.full(a("1.1.1.1"), &db, Duration::ZERO, &ifs);
        assert!(!t.contains_key(&net("198.51.100.5/32")));
        // a stub-only change on R4 does not change the tree
        let old = db
            .get(&LsaKey {
                ls_type: LsaType::Router,
                id: a("4.4.4.4"),
                adv_router: a("4.4.4.4"),
            })
            .unwrap()
            .lsa
            .clone();
        rtr(
            &mut db,
            "4.4.4.4",
            0,
            vec![
                link(P2P, "2.2.2.2", "10.2.4.4", 10),
                link(P2P, "3.3.3.3", "10.3.4.4", 10),
                link(Stub, "192.0.2.4", "255.255.255.255", 1),
                link(Stub, "192.0.2.44", "255.255.255.255", 5),
            ],
        );
        let new = db.get(&old.key()).unwrap().lsa.clone();
        assert!(!topology_changed(Some(&old), Some(&new)));
        let t2 = spf.routes_only(a("1.1.1.1"), &db, Duration::ZERO, &ifs);
        assert_eq!((spf.full_runs, spf.partial_runs), (1, 1));
        assert_eq!(t2[&net("192.0.2.44/32")].cost, 25);
        let d = diff(&t, &t2);
        assert_eq!(d.added.len(), 1);
        assert!(d.changed.is_empty() && d.removed.is_empty());
        // a metric change is a topology change
        rtr(
            &mut db,
            "4.4.4.4",
            0,
            vec![link(P2P, "2.2.2.2", "10.2.4.4", 30)],
        );
        let newer = db.get(&old.key()).unwrap().lsa.clone();
        assert!(topology_changed(Some(&new), Some(&newer)));
    }

    /// R1, R2, R3 on 10.0.0.0/24, DR R2 (10.0.0.2). R2 and R3 both announce the VIP
    /// 100.96.122.210/32; R2 is ABR and ASBR, R3 is ASBR.
    fn lan() -> (Lsdb, Vec<SpfInterface>) {
        let mut db = Lsdb::new();
        rtr(
            &mut db,
            "1.1.1.1",
            0,
            vec![link(Transit, "10.0.0.2", "10.0.0.1", 10)],
        );
        rtr(
            &mut db,
            "2.2.2.2",
            RouterFlags::B | RouterFlags::E,
            vec![
                link(Transit, "10.0.0.2", "10.0.0.2", 10),
                link(Stub, "100.96.122.210", "255.255.255.255", 0),
            ],
        );
        rtr(
            &mut db,
            "3.3.3.3",
            RouterFlags::E,
            vec![
                link(Transit, "10.0.0.2", "10.0.0.3", 10),
                link(Stub, "100.96.122.210", "255.255.255.255", 0),
                link(Stub, "192.0.2.3", "255.255.255.255", 1),
            ],
        );
        put(
            &mut db,
            LsaType::Network,
            "10.0.0.2",
            "2.2.2.2",
            LsaBody::Network(NetworkLsa {
                mask: a("255.255.255.0"),
                attached: vec![a("2.2.2.2"), a("1.1.1.1"), a("3.3.3.3")],
            }),
        );
        let ifs = vec![SpfInterface {
            ifindex: 7,
            addr: a("10.0.0.1"),
            prefix_len: 24,
        }];
        (db, ifs)
    }

    fn ext(db: &mut Lsdb, id: &str, adv: &str, type2: bool, metric: u32, fwd: &str) {
        put(
            db,
            LsaType::AsExternal,
            id,
            adv,
            LsaBody::External(ExternalLsa {
                mask: a("255.255.255.0"),
                type2,
                metric,
                forwarding: a(fwd),
                tag: 0,
                tos: vec![],
            }),
        );
    }

    #[test]
    fn broadcast_dr_and_vip_from_two_routers() {
        let (db, ifs) = lan();
        let t = Spf::new().full(a("1.1.1.1"), &db, Duration::ZERO, &ifs);
        assert_eq!(t[&net("10.0.0.0/24")].cost, 10);
        assert_eq!(t[&net("10.0.0.0/24")].nexthops, nh(&[(7, "0.0.0.0")]));
        assert_eq!(t[&net("192.0.2.3/32")].cost, 11);
        assert_eq!(t[&net("192.0.2.3/32")].nexthops, nh(&[(7, "10.0.0.3")]));
        let vip = &t[&net("100.96.122.210/32")];
        assert_eq!(vip.cost, 10);
        assert_eq!(vip.nexthops, nh(&[(7, "10.0.0.2"), (7, "10.0.0.3")]));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn external_e1_e2_forwarding_and_summary() {
        let (mut db, ifs) = lan();
        // same prefix: E2 metric 5 from R2, E1 metric 100 from R3: E1 wins (cost 10 + 100)
        ext(&mut db, "203.0.113.0", "2.2.2.2", true, 5, "0.0.0.0");
        ext(&mut db, "203.0.113.0", "3.3.3.3", false, 100, "0.0.0.0");
        // E2 20 vs E2 30: the lower type 2 metric wins
        ext(&mut db, "198.18.0.0", "2.2.2.2", true, 30, "0.0.0.0");
        ext(&mut db, "198.18.0.0", "3.3.3.3", true, 20, "0.0.0.0");
        // E2 equal from both: ECMP
        ext(&mut db, "198.19.0.0", "2.2.2.2", true, 20, "0.0.0.0");
        ext(&mut db, "198.19.0.0", "3.3.3.3", true, 20, "0.0.0.0");
        // forwarding address on the LAN: next hop is that address
        ext(&mut db, "198.20.0.0", "2.2.2.2", true, 20, "10.0.0.9");
        // external for a prefix that has an intra-area route is ignored
        put(
            &mut db,
            LsaType::SummaryNetwork,
            "198.51.100.0",
            "2.2.2.2",
            LsaBody::Summary(SummaryLsa {
                mask: a("255.255.255.0"),
                metric: 5,
                tos: vec![],
            }),
        );
        let t = Spf::new().full(a("1.1.1.1"), &db, Duration::ZERO, &ifs);
        let r = &t[&net("203.0.113.0/24")];
        assert_eq!(
            (r.path_type, r.cost, r.type2_cost),
            (PathType::External1, 110, 0)
        );
        assert_eq!(r.nexthops, nh(&[(7, "10.0.0.3")]));
        let r = &t[&net("198.18.0.0/24")];
        assert_eq!(
            (r.path_type, r.cost, r.type2_cost),
            (PathType::External2, 10, 20)
        );
        assert_eq!(r.nexthops, nh(&[(7, "10.0.0.3")]));
        assert_eq!(
            t[&net("198.19.0.0/24")].nexthops,
            nh(&[(7, "10.0.0.2"), (7, "10.0.0.3")])
        );
        let r = &t[&net("198.20.0.0/24")];
        assert_eq!((r.cost, r.type2_cost), (10, 20));
        assert_eq!(r.nexthops, nh(&[(7, "10.0.0.9")]));
        let r = &t[&net("198.51.100.0/24")];
        assert_eq!((r.path_type, r.cost), (PathType::InterArea, 15));
        assert_eq!(r.nexthops, nh(&[(7, "10.0.0.2")]));
    }
}
