use super::*;
use proptest::prelude::*;

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn add(prefix: &str, source: Source, nexthops: Vec<NextHop>) -> FibChange {
    FibChange::Add {
        prefix: net(prefix),
        source,
        nexthops,
    }
}

fn replace(prefix: &str, source: Source, nexthops: Vec<NextHop>) -> FibChange {
    FibChange::Replace {
        prefix: net(prefix),
        source,
        nexthops,
    }
}

fn delete(prefix: &str) -> FibChange {
    FibChange::Delete {
        prefix: net(prefix),
    }
}

/// A RIB with 10.0.0.0/24 on ifindex 2 and 192.168.1.0/24 on ifindex 3, changes drained.
fn two_links() -> Rib {
    let mut rib = Rib::new();
    rib.address_add(2, ip("10.0.0.5"), 24).unwrap();
    rib.address_add(3, ip("192.168.1.5"), 24).unwrap();
    rib.take_fib_changes();
    rib
}

#[test]
fn connected_route_on_address_add_and_del() {
    let mut rib = Rib::new();
    rib.address_add(2, ip("10.0.0.5"), 24).unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![add("10.0.0.0/24", Source::Connected, vec![NextHop::dev(2)])]
    );
    // A second address in the same subnet changes nothing.
    rib.address_add(2, ip("10.0.0.6"), 24).unwrap();
    assert_eq!(rib.take_fib_changes(), vec![]);
    assert!(rib.address_del(2, ip("10.0.0.5"), 24).unwrap());
    assert_eq!(rib.take_fib_changes(), vec![]);
    assert!(rib.address_del(2, ip("10.0.0.6"), 24).unwrap());
    assert_eq!(rib.take_fib_changes(), vec![delete("10.0.0.0/24")]);
    assert!(!rib.address_del(2, ip("10.0.0.6"), 24).unwrap());
    assert!(rib.address_add(2, ip("10.0.0.6"), 33).is_err());
    assert!(rib.routes().is_empty());
}

#[test]
fn best_path_by_distance_then_metric() {
    let mut rib = two_links();
    let p = net("172.16.0.0/16");
    rib.update(
        Source::Ospf,
        Route::new(p, vec![NextHop::via_dev(ip("192.168.1.1"), 3)]).with_metric(20),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![add(
            "172.16.0.0/16",
            Source::Ospf,
            vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
        )]
    );
    // Static (distance 1) beats OSPF (110).
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("10.0.0.1"))]),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![replace(
            "172.16.0.0/16",
            Source::Static,
            vec![NextHop::via_dev(ip("10.0.0.1"), 2)]
        )]
    );
    let best = rib.best(p).unwrap();
    assert_eq!(
        (best.source, best.distance, best.metric),
        (Source::Static, 1, 0)
    );
    // Same distance: the lower metric wins.
    rib.remove(Source::Static, p);
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("10.0.0.1"))])
            .with_distance(110)
            .with_metric(30),
    )
    .unwrap();
    assert_eq!(rib.best(p).unwrap().source, Source::Ospf);
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("10.0.0.1"))])
            .with_distance(110)
            .with_metric(10),
    )
    .unwrap();
    assert_eq!(rib.best(p).unwrap().source, Source::Static);
    // The first metric-30 static was replaced (same prefix and distance), not kept.
    assert_eq!(
        rib.routes().iter().filter(|r| r.prefix == p).count(),
        2,
        "{:?}",
        rib.routes()
    );
}

#[test]
fn distance_override_and_floating_static() {
    let mut rib = two_links();
    let p = net("0.0.0.0/0");
    rib.update(
        Source::Ospf,
        Route::new(p, vec![NextHop::via_dev(ip("192.168.1.1"), 3)]).with_metric(1),
    )
    .unwrap();
    // Floating static: distance 200 loses to OSPF.
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("10.0.0.1"))]).with_distance(200),
    )
    .unwrap();
    assert_eq!(rib.best(p).unwrap().source, Source::Ospf);
    // OSPF with an overridden distance of 250 now loses to the floating static.
    rib.update(
        Source::Ospf,
        Route::new(p, vec![NextHop::via_dev(ip("192.168.1.1"), 3)])
            .with_metric(1)
            .with_distance(250),
    )
    .unwrap();
    let best = rib.best(p).unwrap();
    assert_eq!((best.source, best.distance), (Source::Static, 200));
    // Only one OSPF candidate remains for the prefix.
    let ospf: Vec<_> = rib
        .routes()
        .into_iter()
        .filter(|r| r.source == Source::Ospf)
        .collect();
    assert_eq!(ospf.len(), 1);
    assert_eq!(ospf[0].distance, 250);
    // A second static at distance 1 coexists with the floating one, and wins.
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("192.168.1.9"))]),
    )
    .unwrap();
    assert_eq!(rib.best(p).unwrap().distance, 1);
    assert!(rib.remove_static(p, 1));
    assert_eq!(rib.best(p).unwrap().distance, 200);
    assert!(!rib.remove_static(p, 1));
}

#[test]
fn ecmp_sets_sorted_and_merged() {
    let mut rib = two_links();
    let p = net("172.16.0.0/16");
    rib.update(
        Source::Ospf,
        Route::new(
            p,
            vec![
                NextHop::via_dev(ip("192.168.1.2"), 3),
                NextHop::via_dev(ip("10.0.0.1"), 2),
                NextHop::via_dev(ip("192.168.1.2"), 3),
            ],
        ),
    )
    .unwrap();
    let ecmp = vec![
        NextHop::via_dev(ip("10.0.0.1"), 2),
        NextHop::via_dev(ip("192.168.1.2"), 3),
    ];
    assert_eq!(
        rib.take_fib_changes(),
        vec![add("172.16.0.0/16", Source::Ospf, ecmp.clone())]
    );
    // The same set in another order is no change.
    rib.update(
        Source::Ospf,
        Route::new(p, ecmp.iter().rev().copied().collect()),
    )
    .unwrap();
    assert_eq!(rib.take_fib_changes(), vec![]);
    // A static via a gateway inside the ECMP prefix inherits the whole set.
    rib.update(
        Source::Static,
        Route::new(net("203.0.113.0/24"), vec![NextHop::via(ip("172.16.5.5"))]),
    )
    .unwrap();
    // Two static gateways resolving to the same ECMP set merge into one set.
    rib.update(
        Source::Static,
        Route::new(
            net("198.51.100.0/24"),
            vec![
                NextHop::via(ip("172.16.5.5")),
                NextHop::via(ip("172.16.9.9")),
            ],
        ),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            add("198.51.100.0/24", Source::Static, ecmp.clone()),
            add("203.0.113.0/24", Source::Static, ecmp.clone()),
        ]
    );
    // Two gateways on one connected subnet give two next hops.
    rib.update(
        Source::Static,
        Route::new(
            net("198.18.0.0/15"),
            vec![NextHop::via(ip("10.0.0.1")), NextHop::via(ip("10.0.0.2"))],
        ),
    )
    .unwrap();
    assert_eq!(
        rib.best(net("198.18.0.0/15")).unwrap().nexthops,
        vec![
            NextHop::via_dev(ip("10.0.0.1"), 2),
            NextHop::via_dev(ip("10.0.0.2"), 2)
        ]
    );
}

#[test]
fn recursive_resolution_and_re_resolution() {
    let mut rib = two_links();
    let p = net("192.168.0.0/16");
    // Not directly connected and nothing covers it: inactive.
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("172.20.0.1"))]),
    )
    .unwrap();
    assert_eq!(rib.take_fib_changes(), vec![]);
    assert_eq!(rib.best(p), None);
    let view = rib.routes().into_iter().find(|r| r.prefix == p).unwrap();
    assert!(!view.active() && !view.selected);
    assert!(view.to_string().ends_with("inactive"), "{view}");
    // OSPF learns a covering route: the static resolves through it.
    rib.update(
        Source::Ospf,
        Route::new(
            net("172.20.0.0/16"),
            vec![NextHop::via_dev(ip("10.0.0.1"), 2)],
        ),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            add(
                "172.20.0.0/16",
                Source::Ospf,
                vec![NextHop::via_dev(ip("10.0.0.1"), 2)]
            ),
            add(
                "192.168.0.0/16",
                Source::Static,
                vec![NextHop::via_dev(ip("10.0.0.1"), 2)]
            ),
        ]
    );
    // A more specific covering route appears: re-resolved through it.
    rib.update(
        Source::Ospf,
        Route::new(
            net("172.20.0.0/30"),
            vec![NextHop::via_dev(ip("192.168.1.1"), 3)],
        ),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            add(
                "172.20.0.0/30",
                Source::Ospf,
                vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
            ),
            replace(
                "192.168.0.0/16",
                Source::Static,
                vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
            ),
        ]
    );
    // Recursion through two levels: a static via a gateway covered by the static above
    // (192.168.0.0/16 covers 192.168.77.1, but 192.168.1.0/24 is connected and longer,
    // so use an address outside it).
    rib.update(
        Source::Static,
        Route::new(net("100.64.0.0/10"), vec![NextHop::via(ip("192.168.77.1"))]),
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![add(
            "100.64.0.0/10",
            Source::Static,
            vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
        )]
    );
    // OSPF withdraws everything: both statics go inactive.
    rib.replace_source(Source::Ospf, Vec::new()).unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            delete("100.64.0.0/10"),
            delete("172.20.0.0/16"),
            delete("172.20.0.0/30"),
            delete("192.168.0.0/16"),
        ]
    );
    assert_eq!(
        rib.routes().len(),
        4,
        "the inactive statics stay configured"
    );
}

#[test]
fn default_route_resolution_is_opt_in() {
    let mut rib = two_links();
    rib.update(
        Source::Ospf,
        Route::new(
            Ipv4Net::DEFAULT,
            vec![NextHop::via_dev(ip("192.168.1.1"), 3)],
        ),
    )
    .unwrap();
    let p = net("198.51.100.0/24");
    rib.update(
        Source::Static,
        Route::new(p, vec![NextHop::via(ip("203.0.113.1"))]),
    )
    .unwrap();
    assert_eq!(rib.best(p), None);
    rib.set_resolve_via_default(true);
    assert_eq!(
        rib.best(p).unwrap().nexthops,
        vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
    );
    rib.set_resolve_via_default(false);
    assert_eq!(rib.best(p), None);
}

#[test]
fn routes_resolving_through_each_other_are_inactive() {
    let mut rib = two_links();
    rib.update(
        Source::Static,
        Route::new(net("172.16.0.0/16"), vec![NextHop::via(ip("172.17.0.1"))]),
    )
    .unwrap();
    rib.update(
        Source::Static,
        Route::new(net("172.17.0.0/16"), vec![NextHop::via(ip("172.16.0.1"))]),
    )
    .unwrap();
    // A route via a gateway inside its own prefix cannot resolve through itself.
    rib.update(
        Source::Static,
        Route::new(net("172.18.0.0/16"), vec![NextHop::via(ip("172.18.0.1"))]),
    )
    .unwrap();
    assert_eq!(rib.take_fib_changes(), vec![]);
    assert!(rib
        .routes()
        .iter()
        .all(|r| r.prefix.addr().octets()[0] != 172 || !r.active()));
}

#[test]
fn interface_down_removes_routes_and_dependents() {
    let mut rib = two_links();
    rib.update(
        Source::Ospf,
        Route::new(
            net("172.16.0.0/16"),
            vec![
                NextHop::via_dev(ip("10.0.0.1"), 2),
                NextHop::via_dev(ip("192.168.1.1"), 3),
            ],
        ),
    )
    .unwrap();
    rib.update(
        Source::Ospf,
        Route::new(
            net("172.17.0.0/16"),
            vec![NextHop::via_dev(ip("10.0.0.1"), 2)],
        ),
    )
    .unwrap();
    // Static via a gateway on the connected subnet of ifindex 2.
    rib.update(
        Source::Static,
        Route::new(net("198.51.100.0/24"), vec![NextHop::via(ip("10.0.0.9"))]),
    )
    .unwrap();
    // Static via a gateway reached through 172.17/16 (itself via ifindex 2).
    rib.update(
        Source::Static,
        Route::new(net("203.0.113.0/24"), vec![NextHop::via(ip("172.17.3.3"))]),
    )
    .unwrap();
    rib.take_fib_changes();

    rib.interface_down(2);
    assert!(!rib.is_interface_up(2));
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            delete("10.0.0.0/24"),
            replace(
                "172.16.0.0/16",
                Source::Ospf,
                vec![NextHop::via_dev(ip("192.168.1.1"), 3)]
            ),
            delete("172.17.0.0/16"),
            delete("198.51.100.0/24"),
            delete("203.0.113.0/24"),
        ]
    );
    // Down twice is no change.
    rib.interface_down(2);
    assert_eq!(rib.take_fib_changes(), vec![]);

    rib.interface_up(2);
    let back = rib.take_fib_changes();
    assert_eq!(back.len(), 5, "{back:?}");
    assert_eq!(
        rib.best(net("203.0.113.0/24")).unwrap().nexthops,
        vec![NextHop::via_dev(ip("10.0.0.1"), 2)]
    );
}

#[test]
fn lookup_is_longest_prefix_match() {
    let mut rib = two_links();
    rib.update(
        Source::Ospf,
        Route::new(
            Ipv4Net::DEFAULT,
            vec![NextHop::via_dev(ip("192.168.1.1"), 3)],
        ),
    )
    .unwrap();
    rib.update(
        Source::Static,
        Route::new(
            net("10.0.0.128/25"),
            vec![NextHop::via_dev(ip("192.168.1.7"), 3)],
        ),
    )
    .unwrap();
    let (p, s) = rib.lookup(ip("10.0.0.200")).unwrap();
    assert_eq!((p, s.source), (net("10.0.0.128/25"), Source::Static));
    let (p, s) = rib.lookup(ip("10.0.0.20")).unwrap();
    assert_eq!((p, s.source), (net("10.0.0.0/24"), Source::Connected));
    let (p, _) = rib.lookup(ip("8.8.8.8")).unwrap();
    assert_eq!(p, Ipv4Net::DEFAULT);
    assert!(Rib::new().lookup(ip("8.8.8.8")).is_none());
}

#[test]
fn invalid_updates_are_errors_and_change_nothing() {
    let mut rib = two_links();
    let p = net("172.16.0.0/16");
    assert_eq!(
        rib.update(Source::Static, Route::new(p, vec![])),
        Err(RibError::NoNextHop(p))
    );
    let empty = NextHop {
        gateway: None,
        ifindex: None,
    };
    assert_eq!(
        rib.update(Source::Ospf, Route::new(p, vec![empty])),
        Err(RibError::EmptyNextHop(p))
    );
    assert_eq!(
        rib.update(Source::Connected, Route::new(p, vec![NextHop::dev(2)])),
        Err(RibError::ConnectedIsDerived)
    );
    rib.update(Source::Ospf, Route::new(p, vec![NextHop::dev(2)]))
        .unwrap();
    rib.take_fib_changes();
    // A bad table leaves the old OSPF table in place.
    assert!(rib
        .replace_source(Source::Ospf, vec![Route::new(net("1.0.0.0/8"), vec![])])
        .is_err());
    assert!(rib.best(p).is_some());
    assert_eq!(rib.take_fib_changes(), vec![]);
}

#[test]
fn coalesced_changes_and_resync() {
    let mut rib = two_links();
    let p = net("172.16.0.0/16");
    // Added then removed before the consumer looks: nothing to do.
    rib.update(Source::Ospf, Route::new(p, vec![NextHop::dev(2)]))
        .unwrap();
    rib.remove(Source::Ospf, p);
    assert_eq!(rib.poll_fib(), None);
    // Changed twice: one change with the final state.
    rib.update(Source::Ospf, Route::new(p, vec![NextHop::dev(2)]))
        .unwrap();
    rib.update(Source::Ospf, Route::new(p, vec![NextHop::dev(3)]))
        .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![add("172.16.0.0/16", Source::Ospf, vec![NextHop::dev(3)])]
    );
    rib.resync_fib();
    assert_eq!(rib.take_fib_changes().len(), 3);
}

#[test]
fn routes_view_like_show_ip_route() {
    let mut rib = two_links();
    rib.update(
        Source::Ospf,
        Route::new(
            net("172.16.0.0/16"),
            vec![
                NextHop::via_dev(ip("10.0.0.1"), 2),
                NextHop::via_dev(ip("192.168.1.1"), 3),
            ],
        )
        .with_metric(20),
    )
    .unwrap();
    rib.update(
        Source::Static,
        Route::new(net("172.16.0.0/16"), vec![NextHop::via(ip("10.0.0.7"))]).with_distance(200),
    )
    .unwrap();
    let lines: Vec<String> = rib.routes().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "C>* 10.0.0.0/24 [0/0] directly connected, ifindex 2".to_string(),
            "O>* 172.16.0.0/16 [110/20] via 10.0.0.1, ifindex 2\n  *                        via 192.168.1.1, ifindex 3"
                .to_string(),
            "S   172.16.0.0/16 [200/0] via 10.0.0.7, ifindex 2".to_string(),
            "C>* 192.168.1.0/24 [0/0] directly connected, ifindex 3".to_string(),
        ]
    );
}

/// Operations for the property test, over a small universe so that they interact.
#[derive(Debug, Clone)]
enum Op {
    Static(u8, u8, u8, Option<u8>),
    Ospf(u8, Vec<(u8, u8)>, u32),
    RemoveStatic(u8),
    RemoveOspf(u8),
    AddrAdd(u8, u8),
    AddrDel(u8, u8),
    Down(u8),
    Up(u8),
    Poll(u8),
    Batch(Vec<(u8, u8, u8)>, Vec<u8>),
}

/// Prefix universe: nested and disjoint prefixes around 10.0.0.0/8.
fn universe(i: u8) -> Ipv4Net {
    const P: [&str; 8] = [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.1.0/24",
        "10.1.1.0/30",
        "10.2.0.0/16",
        "10.2.2.0/24",
        "10.3.0.0/16",
        "0.0.0.0/0",
    ];
    P[usize::from(i) % P.len()].parse().unwrap()
}

fn gateway(i: u8) -> Ipv4Addr {
    const G: [&str; 6] = [
        "10.1.1.1", "10.1.1.9", "10.2.2.2", "10.3.3.3", "10.9.9.9", "10.1.7.7",
    ];
    G[usize::from(i) % G.len()].parse().unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..8u8, 0..6u8, 0..3u8, proptest::option::of(0..3u8))
            .prop_map(|(p, g, i, d)| Op::Static(p, g, i, d)),
        (
            0..8u8,
            proptest::collection::vec((0..6u8, 1..4u8), 1..3),
            0..3u32
        )
            .prop_map(|(p, n, m)| Op::Ospf(p, n, m)),
        (0..8u8).prop_map(Op::RemoveStatic),
        (0..8u8).prop_map(Op::RemoveOspf),
        (0..6u8, 1..4u8).prop_map(|(g, i)| Op::AddrAdd(g, i)),
        (0..6u8, 1..4u8).prop_map(|(g, i)| Op::AddrDel(g, i)),
        (1..4u8).prop_map(Op::Down),
        (1..4u8).prop_map(Op::Up),
        (0..3u8).prop_map(Op::Poll),
        (
            proptest::collection::vec((0..8u8, 0..6u8, 1..4u8), 0..4),
            proptest::collection::vec(0..8u8, 0..3)
        )
            .prop_map(|(u, r)| Op::Batch(u, r)),
    ]
}

fn apply(map: &mut BTreeMap<Ipv4Net, FibEntry>, change: FibChange) -> Result<(), TestCaseError> {
    match change {
        FibChange::Add {
            prefix,
            source,
            nexthops,
        } => {
            prop_assert!(!map.contains_key(&prefix), "Add of present {prefix}");
            prop_assert!(!nexthops.is_empty());
            map.insert(prefix, FibEntry { source, nexthops });
        }
        FibChange::Replace {
            prefix,
            source,
            nexthops,
        } => {
            let new = FibEntry { source, nexthops };
            let old = map.insert(prefix, new.clone());
            prop_assert!(old.is_some(), "Replace of absent {prefix}");
            prop_assert!(old != Some(new), "Replace with identical entry {prefix}");
        }
        FibChange::Delete { prefix } => {
            prop_assert!(map.remove(&prefix).is_some(), "Delete of absent {prefix}");
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fib_stream_rebuilds_the_selected_set(ops in proptest::collection::vec(op(), 1..60)) {
        let mut rib = Rib::new();
        let mut fib = BTreeMap::new();
        for op in ops {
            match op {
                Op::Static(p, g, i, d) => {
                    let nh = if i == 0 {
                        NextHop::via(gateway(g))
                    } else {
                        NextHop::via_dev(gateway(g), u32::from(i))
                    };
                    let mut r = Route::new(universe(p), vec![nh]);
                    if let Some(d) = d {
                        r = r.with_distance(d * 100);
                    }
                    rib.update(Source::Static, r).unwrap();
                }
                Op::Ospf(p, nhs, m) => {
                    let nhs = nhs
                        .into_iter()
                        .map(|(g, i)| NextHop::via_dev(gateway(g), u32::from(i)))
                        .collect();
                    rib.update(Source::Ospf, Route::new(universe(p), nhs).with_metric(m))
                        .unwrap();
                }
                Op::RemoveStatic(p) => {
                    rib.remove(Source::Static, universe(p));
                }
                Op::RemoveOspf(p) => {
                    rib.remove(Source::Ospf, universe(p));
                }
                Op::AddrAdd(g, i) => rib.address_add(u32::from(i), gateway(g), 24).unwrap(),
                Op::AddrDel(g, i) => {
                    rib.address_del(u32::from(i), gateway(g), 24).unwrap();
                }
                Op::Down(i) => rib.interface_down(u32::from(i)),
                Op::Up(i) => rib.interface_up(u32::from(i)),
                Op::Poll(n) => {
                    for _ in 0..n {
                        if let Some(c) = rib.poll_fib() {
                            apply(&mut fib, c)?;
                        }
                    }
                }
                Op::Batch(ups, rms) => {
                    let mut batch: Vec<RouteChange> = ups
                        .into_iter()
                        .map(|(p, g, i)| {
                            RouteChange::Update(Route::new(
                                universe(p),
                                vec![NextHop::via_dev(gateway(g), u32::from(i))],
                            ))
                        })
                        .collect();
                    batch.extend(rms.into_iter().map(|p| RouteChange::Remove(universe(p))));
                    rib.apply(Source::Ospf, batch).unwrap();
                }
            }
            // Incremental recomputation equals recomputation from scratch.
            rib.assert_consistent();
        }
        let changes = rib.take_fib_changes();
        // Minimal: at most one change per prefix once coalesced.
        let prefixes: BTreeSet<Ipv4Net> = changes.iter().map(FibChange::prefix).collect();
        prop_assert_eq!(prefixes.len(), changes.len());
        for c in changes {
            apply(&mut fib, c)?;
        }
        prop_assert_eq!(&fib, &rib.fib());
        prop_assert_eq!(rib.poll_fib(), None);
        // The selection agrees with the route views and with the preference order.
        for view in rib.routes() {
            if view.selected {
                let best = rib.best(view.prefix).unwrap();
                prop_assert_eq!(&best.nexthops, &view.resolved);
                prop_assert_eq!((best.source, best.distance, best.metric),
                    (view.source, view.distance, view.metric));
            } else if view.active() {
                let best = rib.best(view.prefix).unwrap();
                prop_assert!((best.distance, best.metric, best.source)
                    <= (view.distance, view.metric, view.source));
            }
            // Every resolved next hop is on an interface that is up.
            for nh in &view.resolved {
                prop_assert!(nh.ifindex.is_some_and(|i| rib.is_interface_up(i)));
            }
        }
    }
}

#[test]
fn apply_batches_a_diff() {
    let mut rib = two_links();
    rib.apply(
        Source::Ospf,
        vec![
            RouteChange::Update(Route::new(net("172.16.0.0/16"), vec![NextHop::dev(2)])),
            RouteChange::Update(Route::new(net("172.17.0.0/16"), vec![NextHop::dev(3)])),
        ],
    )
    .unwrap();
    assert_eq!(rib.take_fib_changes().len(), 2);
    rib.apply(
        Source::Ospf,
        vec![
            RouteChange::Remove(net("172.16.0.0/16")),
            RouteChange::Update(Route::new(net("172.17.0.0/16"), vec![NextHop::dev(2)])),
            RouteChange::Remove(net("10.9.0.0/16")),
        ],
    )
    .unwrap();
    assert_eq!(
        rib.take_fib_changes(),
        vec![
            delete("172.16.0.0/16"),
            replace("172.17.0.0/16", Source::Ospf, vec![NextHop::dev(2)]),
        ]
    );
    // A bad route anywhere in the batch: nothing applied.
    assert!(rib
        .apply(
            Source::Ospf,
            vec![
                RouteChange::Remove(net("172.17.0.0/16")),
                RouteChange::Update(Route::new(net("1.0.0.0/8"), vec![])),
            ],
        )
        .is_err());
    assert!(rib.best(net("172.17.0.0/16")).is_some());
    assert_eq!(
        rib.apply(Source::Connected, vec![]),
        Err(RibError::ConnectedIsDerived)
    );
}

#[test]
fn resolution_does_not_depend_on_insertion_order() {
    // A chain: 10.0.0.0/8 via 172.16.0.1, 172.16.0.0/16 via 172.17.0.1,
    // 172.17.0.0/16 via 192.168.1.1 (connected). Added in both orders.
    let routes = [
        ("10.0.0.0/8", "172.16.0.1"),
        ("172.16.0.0/16", "172.17.0.1"),
        ("172.17.0.0/16", "192.168.1.1"),
    ];
    let build = |order: &[usize]| {
        let mut rib = Rib::new();
        rib.address_add(3, ip("192.168.1.5"), 24).unwrap();
        for &i in order {
            let (p, g) = routes[i];
            rib.update(
                Source::Static,
                Route::new(net(p), vec![NextHop::via(ip(g))]),
            )
            .unwrap();
        }
        rib.fib()
    };
    let a = build(&[0, 1, 2]);
    let b = build(&[2, 1, 0]);
    assert_eq!(a, b);
    assert_eq!(
        a.get(&net("10.0.0.0/8")).map(|e| e.nexthops.clone()),
        Some(vec![NextHop::via_dev(ip("192.168.1.1"), 3)])
    );
}

#[test]
fn recursion_depth_is_capped() {
    // A chain longer than MAX_RECURSION levels: the far end stays inactive.
    let mut rib = Rib::new();
    rib.address_add(1, ip("192.168.1.5"), 24).unwrap();
    let hops = MAX_RECURSION + 2;
    for i in 0..hops {
        let gw = if i == 0 {
            ip("192.168.1.1")
        } else {
            Ipv4Addr::new(10, u8::try_from(i).unwrap() - 1, 0, 1)
        };
        let p = Ipv4Net::new(Ipv4Addr::new(10, u8::try_from(i).unwrap(), 0, 0), 16).unwrap();
        rib.update(Source::Static, Route::new(p, vec![NextHop::via(gw)]))
            .unwrap();
    }
    let active = rib.fib().len() - 1; // minus the connected route
    assert_eq!(active, MAX_RECURSION);
    rib.assert_consistent();
}
