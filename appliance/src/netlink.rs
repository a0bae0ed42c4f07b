//! Kernel route programming and interface events over rtnetlink.
//!
//! Routes fulcrum installs carry the route protocol number [`RTPROT_FULCRUM`] (201, named
//! `fulcrum`; install `configs/iproute2/rt_protos.d/fulcrum.conf` in
//! `/etc/iproute2/rt_protos.d/` for `ip route` to print the name). 201 is used neither by
//! iproute2's `rt_protos` nor by FRR, whose `rt_protos.d/frr.conf` takes 186–198 (196 is
//! FRR's `static`). That marks them as ours: [`RouteProgrammer::list`] returns only them, and
//! [`RouteProgrammer::reconcile`] (run at start) removes stale and duplicate ones and
//! installs what is missing, never touching routes of other protocols.
//!
//! This module does not decide which routes to install (that is the RIB's job).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlag};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::IpVersion;

/// The route protocol number of fulcrum's routes (used neither by iproute2 nor by FRR).
pub const RTPROT_FULCRUM: u8 = 201;
/// Its name for `/etc/iproute2/rt_protos`.
pub const RTPROT_FULCRUM_NAME: &str = "fulcrum";
/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// Errors of the netlink layer.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The kernel refused a request.
    #[error("netlink {op} {what}: {source}")]
    Request {
        /// Operation.
        op: &'static str,
        /// Object.
        what: String,
        /// The kernel's answer.
        source: Box<rtnetlink::Error>,
    },
    /// A route without next hops was given.
    #[error("route {0} has no next hop")]
    NoNexthop(Ipv4Network),
}

/// One next hop of a kernel route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nexthop {
    /// Gateway; `None` for an on-link route.
    pub gateway: Option<Ipv4Addr>,
    /// Outgoing interface index; `None` lets the kernel resolve it from the gateway.
    pub ifindex: Option<u32>,
    /// ECMP weight, 1..=256.
    pub weight: u16,
}

/// A kernel IPv4 route in fulcrum's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination.
    pub prefix: Ipv4Network,
    /// Next hops (sorted when read back).
    pub nexthops: Vec<Nexthop>,
    /// Route metric (priority), if any.
    pub metric: Option<u32>,
}

/// What [`RouteProgrammer::reconcile`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Routes of our protocol that were not wanted.
    pub removed_stale: Vec<Ipv4Network>,
    /// Extra copies of a prefix (another metric) that were removed.
    pub removed_duplicates: Vec<Ipv4Network>,
    /// Routes added or changed.
    pub installed: Vec<Ipv4Network>,
}

/// Installs and removes fulcrum's routes in one kernel table.
#[derive(Clone)]
pub struct RouteProgrammer {
    handle: rtnetlink::Handle,
    table: u32,
}

impl RouteProgrammer {
    /// Opens a netlink connection (its task is spawned on the current tokio runtime).
    pub fn connect(table: u32) -> Result<RouteProgrammer, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(RouteProgrammer { handle, table })
    }

    /// Adds or replaces the route for `route.prefix` (RTM_NEWROUTE, NLM_F_CREATE|REPLACE);
    /// several next hops become one multipath route (RTA_MULTIPATH).
    pub async fn replace(&self, route: &KernelRoute) -> Result<(), NetlinkError> {
        let first = route
            .nexthops
            .first()
            .ok_or(NetlinkError::NoNexthop(route.prefix))?;
        let mut req = self
            .handle
            .route()
            .add()
            .v4()
            .destination_prefix(route.prefix.network(), route.prefix.prefix())
            .protocol(RouteProtocol::Other(RTPROT_FULCRUM))
            .table_id(self.table)
            .kind(RouteType::Unicast)
            .replace();
        if let Some(m) = route.metric {
            req = req.priority(m);
        }
        let on_link = route.nexthops.iter().all(|n| n.gateway.is_none());
        req = req.scope(if on_link {
            RouteScope::Link
        } else {
            RouteScope::Universe
        });
        if route.nexthops.len() == 1 {
            if let Some(gw) = first.gateway {
                req = req.gateway(gw);
            }
            if let Some(ifx) = first.ifindex {
                req = req.output_interface(ifx);
            }
        } else {
            let hops = route
                .nexthops
                .iter()
                .map(|n| {
                    let mut nh = RouteNextHop::default();
                    nh.hops = u8::try_from(n.weight.clamp(1, 256) - 1).unwrap_or(0);
                    nh.interface_index = n.ifindex.unwrap_or(0);
                    if let Some(gw) = n.gateway {
                        nh.attributes
                            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
                    }
                    nh
                })
                .collect();
            req.message_mut()
                .attributes
                .push(RouteAttribute::MultiPath(hops));
        }
        req.execute().await.map_err(|source| NetlinkError::Request {
            op: "replace route",
            what: route.prefix.to_string(),
            source: Box::new(source),
        })
    }

    /// Deletes our route for `prefix` (with `metric`, if given). `Ok(false)` when there was
    /// none. Routes of other protocols are never matched.
    pub async fn delete(
        &self,
        prefix: Ipv4Network,
        metric: Option<u32>,
    ) -> Result<bool, NetlinkError> {
        let mut msg = RouteMessage::default();
        msg.header = route_header(prefix.prefix(), self.table);
        msg.header.scope = RouteScope::NoWhere;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                prefix.network(),
            )));
        if self.table > 255 {
            msg.attributes.push(RouteAttribute::Table(self.table));
        }
        if let Some(m) = metric {
            msg.attributes.push(RouteAttribute::Priority(m));
        }
        match self.handle.route().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ESRCH => Ok(false),
            Err(source) => Err(NetlinkError::Request {
                op: "delete route",
                what: prefix.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Our routes in the table, in kernel order (a prefix may appear more than once).
    pub async fn list(&self) -> Result<Vec<KernelRoute>, NetlinkError> {
        let mut stream = self.handle.route().get(IpVersion::V4).execute();
        let mut out = Vec::new();
        let err = |source| NetlinkError::Request {
            op: "list",
            what: "routes".into(),
            source: Box::new(source),
        };
        while let Some(msg) = stream.try_next().await.map_err(err)? {
            if msg.header.protocol != RouteProtocol::Other(RTPROT_FULCRUM) {
                continue;
            }
            if let Some(r) = parse_route(&msg, self.table) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Makes the kernel's routes of our protocol equal to `desired`: removes stale routes
    /// and duplicate copies of a prefix, installs missing or different ones.
    pub async fn reconcile(
        &self,
        desired: &[KernelRoute],
    ) -> Result<ReconcileReport, NetlinkError> {
        let mut report = ReconcileReport::default();
        let want: BTreeMap<Ipv4Network, &KernelRoute> =
            desired.iter().map(|r| (r.prefix, r)).collect();
        let mut have: HashMap<Ipv4Network, Vec<KernelRoute>> = HashMap::new();
        for r in self.list().await? {
            have.entry(r.prefix).or_default().push(r);
        }
        for (prefix, copies) in &have {
            match want.get(prefix) {
                None => {
                    for c in copies {
                        self.delete(*prefix, c.metric).await?;
                        report.removed_stale.push(*prefix);
                    }
                }
                Some(w) => {
                    // Keep at most the copy with the wanted metric.
                    for c in copies.iter().filter(|c| c.metric != w.metric) {
                        self.delete(*prefix, c.metric).await?;
                        report.removed_duplicates.push(*prefix);
                    }
                }
            }
        }
        for (prefix, w) in &want {
            let mut wanted = w.nexthops.clone();
            wanted.sort();
            let same = have.get(prefix).is_some_and(|copies| {
                copies
                    .iter()
                    .any(|c| c.metric == w.metric && nexthops_match(&c.nexthops, &wanted))
            });
            if !same {
                self.replace(w).await?;
                report.installed.push(*prefix);
            }
        }
        Ok(report)
    }
}

/// Whether the kernel's next hops (which always carry an interface) match wanted ones
/// (whose interface may be left to the kernel).
fn nexthops_match(have: &[Nexthop], want: &[Nexthop]) -> bool {
    have.len() == want.len()
        && have.iter().zip(want).all(|(h, w)| {
            h.gateway == w.gateway
                && h.weight == w.weight.clamp(1, 256)
                && (w.ifindex.is_none() || h.ifindex == w.ifindex)
        })
}

fn route_header(prefix_len: u8, table: u32) -> RouteHeader {
    RouteHeader {
        address_family: AddressFamily::Inet,
        destination_prefix_length: prefix_len,
        table: u8::try_from(table).unwrap_or(0),
        protocol: RouteProtocol::Other(RTPROT_FULCRUM),
        kind: RouteType::Unicast,
        ..Default::default()
    }
}

/// Reads a kernel route message; `None` for other families or tables.
fn parse_route(msg: &RouteMessage, table: u32) -> Option<KernelRoute> {
    if msg.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut msg_table = u32::from(msg.header.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut gateway = None;
    let mut oif = None;
    let mut metric = None;
    let mut multipath = None;
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => msg_table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(*g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            _ => {}
        }
    }
    if msg_table != table {
        return None;
    }
    let prefix = Ipv4Network::new(dst, msg.header.destination_prefix_length).ok()?;
    let mut nexthops: Vec<Nexthop> = match multipath {
        Some(hops) => hops
            .iter()
            .map(|h| Nexthop {
                gateway: h.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
                    _ => None,
                }),
                ifindex: Some(h.interface_index).filter(|i| *i != 0),
                weight: u16::from(h.hops) + 1,
            })
            .collect(),
        None => vec![Nexthop {
            gateway,
            ifindex: oif,
            weight: 1,
        }],
    };
    nexthops.sort();
    Some(KernelRoute {
        prefix,
        nexthops,
        metric,
    })
}

/// An interface or IPv4 address change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link exists and is up and running.
    LinkUp {
        /// Interface index.
        ifindex: u32,
        /// Name.
        name: String,
    },
    /// A link exists but is down or not running.
    LinkDown {
        /// Interface index.
        ifindex: u32,
        /// Name.
        name: String,
    },
    /// A link was removed.
    LinkRemoved {
        /// Interface index.
        ifindex: u32,
        /// Name.
        name: String,
    },
    /// An IPv4 address was added.
    AddressAdded {
        /// Interface index.
        ifindex: u32,
        /// Address and prefix length.
        address: Ipv4Network,
    },
    /// An IPv4 address was removed.
    AddressRemoved {
        /// Interface index.
        ifindex: u32,
        /// Address and prefix length.
        address: Ipv4Network,
    },
}

/// A subscription to link and IPv4 address events (RTMGRP_LINK | RTMGRP_IPV4_IFADDR).
pub struct NetEvents {
    rx: futures::channel::mpsc::UnboundedReceiver<(
        netlink_packet_core::NetlinkMessage<RouteNetlinkMessage>,
        netlink_sys::SocketAddr,
    )>,
}

impl NetEvents {
    /// Subscribes (the connection task is spawned on the current tokio runtime).
    pub fn subscribe() -> Result<NetEvents, NetlinkError> {
        use netlink_sys::AsyncSocket as _;
        let (mut conn, _handle, rx) = rtnetlink::new_connection()?;
        let groups = rtnetlink::constants::RTMGRP_LINK | rtnetlink::constants::RTMGRP_IPV4_IFADDR;
        conn.socket_mut()
            .socket_mut()
            .bind(&netlink_sys::SocketAddr::new(0, groups))?;
        tokio::spawn(conn);
        Ok(NetEvents { rx })
    }

    /// The next event; `None` when the connection is gone.
    pub async fn next(&mut self) -> Option<NetEvent> {
        use futures::StreamExt;
        while let Some((msg, _)) = self.rx.next().await {
            if let NetlinkPayload::InnerMessage(m) = msg.payload {
                if let Some(ev) = event_of(m) {
                    return Some(ev);
                }
            }
        }
        None
    }
}

fn event_of(m: RouteNetlinkMessage) -> Option<NetEvent> {
    match m {
        RouteNetlinkMessage::NewLink(l) => {
            let name = link_name(&l.attributes);
            let ifindex = l.header.index;
            let up = l.header.flags.contains(&LinkFlag::Up)
                && l.header.flags.contains(&LinkFlag::Running);
            Some(if up {
                NetEvent::LinkUp { ifindex, name }
            } else {
                NetEvent::LinkDown { ifindex, name }
            })
        }
        RouteNetlinkMessage::DelLink(l) => Some(NetEvent::LinkRemoved {
            ifindex: l.header.index,
            name: link_name(&l.attributes),
        }),
        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a)
            if a.header.family != AddressFamily::Inet =>
        {
            None
        }
        RouteNetlinkMessage::NewAddress(a) => {
            address_of(&a.attributes, a.header.prefix_len).map(|address| NetEvent::AddressAdded {
                ifindex: a.header.index,
                address,
            })
        }
        RouteNetlinkMessage::DelAddress(a) => {
            address_of(&a.attributes, a.header.prefix_len).map(|address| NetEvent::AddressRemoved {
                ifindex: a.header.index,
                address,
            })
        }
        _ => None,
    }
}

fn link_name(attrs: &[LinkAttribute]) -> String {
    attrs
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn address_of(attrs: &[AddressAttribute], len: u8) -> Option<Ipv4Network> {
    let local = attrs.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(v)) => Some(*v),
        _ => None,
    });
    let addr = attrs.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V4(v)) => Some(*v),
        _ => None,
    });
    Ipv4Network::new(local.or(addr)?, len).ok()
}

// ---------------------------------------------------------------------------------------
// VRRP: virtual addresses on interfaces.

/// Adds and removes IPv4 interface addresses (the VRRP driver's virtual addresses).
#[derive(Clone)]
pub struct AddressProgrammer {
    handle: rtnetlink::Handle,
}

impl AddressProgrammer {
    /// Opens a netlink connection (its task is spawned on the current tokio runtime).
    pub fn connect() -> Result<AddressProgrammer, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(AddressProgrammer { handle })
    }

    /// Adds `addr` to interface `ifindex`; an address already present is not an error.
    pub async fn add(&self, ifindex: u32, addr: Ipv4Network) -> Result<(), NetlinkError> {
        match self
            .handle
            .address()
            .add(ifindex, IpAddr::V4(addr.ip()), addr.prefix())
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(NetlinkError::Request {
                op: "add address",
                what: format!("{addr} on ifindex {ifindex}"),
                source: Box::new(e),
            }),
        }
    }

    /// Removes `addr` (any prefix length) from interface `ifindex`; returns whether it
    /// was present.
    pub async fn remove(&self, ifindex: u32, addr: Ipv4Addr) -> Result<bool, NetlinkError> {
        let err = |op, e| NetlinkError::Request {
            op,
            what: format!("{addr} on ifindex {ifindex}"),
            source: Box::new(e),
        };
        let found: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .set_address_filter(IpAddr::V4(addr))
            .execute()
            .try_collect()
            .await
            .map_err(|e| err("list addresses", e))?;
        let mut removed = false;
        for msg in found {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => removed = true,
                Err(rtnetlink::Error::NetlinkError(e))
                    if e.raw_code() == -libc::EADDRNOTAVAIL || e.raw_code() == -libc::ENODEV => {}
                Err(e) => return Err(err("remove address", e)),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testns::{require_root, Netns};
    use std::time::Duration;

    fn net(s: &str) -> Ipv4Network {
        s.parse().expect("prefix")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    #[test]
    fn rt_protos_file_names_our_protocol() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/iproute2/rt_protos.d/fulcrum.conf"
        );
        let text = std::fs::read_to_string(path).expect("rt_protos file");
        let entry = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .expect("an entry");
        let mut parts = entry.split_whitespace();
        assert_eq!(parts.next(), Some(RTPROT_FULCRUM.to_string().as_str()));
        assert_eq!(parts.next(), Some(RTPROT_FULCRUM_NAME));
    }

    #[test]
    fn ecmp_route_in_namespace() {
        require_root();
        let ns = Netns::new("nl");
        // No dummy module on this kernel: veth pairs with both ends here.
        ns.ip(&["link", "add", "d0", "type", "veth", "peer", "name", "d0p"]);
        ns.ip(&["link", "add", "d1", "type", "veth", "peer", "name", "d1p"]);
        ns.ip(&["link", "set", "d0p", "up"]);
        ns.ip(&["link", "set", "d1p", "up"]);
        ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "d0"]);
        ns.ip(&["addr", "add", "10.99.1.1/24", "dev", "d1"]);
        ns.ip(&["link", "set", "d0", "up"]);
        ns.ip(&["link", "set", "d1", "up"]);
        // A stale route and a duplicate copy, as a crashed fulcrumd could leave them.
        ns.ip(&[
            "route",
            "add",
            "203.0.113.0/24",
            "via",
            "10.99.0.2",
            "proto",
            "201",
        ]);
        ns.ip(&[
            "route",
            "add",
            "198.51.100.0/24",
            "via",
            "10.99.0.2",
            "proto",
            "201",
            "metric",
            "50",
        ]);
        // A route of another protocol must survive everything.
        ns.ip(&[
            "route",
            "add",
            "192.0.2.0/24",
            "via",
            "10.99.0.2",
            "proto",
            "static",
        ]);

        let ecmp = KernelRoute {
            prefix: net("198.51.100.0/24"),
            nexthops: vec![
                Nexthop {
                    gateway: Some(ip("10.99.0.2")),
                    ifindex: None,
                    weight: 1,
                },
                Nexthop {
                    gateway: Some(ip("10.99.1.2")),
                    ifindex: None,
                    weight: 1,
                },
            ],
            metric: None,
        };
        let single = KernelRoute {
            prefix: net("100.96.122.210/32"),
            nexthops: vec![Nexthop {
                gateway: Some(ip("10.99.0.3")),
                ifindex: None,
                weight: 1,
            }],
            metric: Some(20),
        };
        let desired = vec![ecmp.clone(), single.clone()];
        let report = ns
            .run(move || {
                Box::pin(async move {
                    let p = RouteProgrammer::connect(RT_TABLE_MAIN).expect("connect");
                    let report = p.reconcile(&desired).await.expect("reconcile");
                    // Idempotent.
                    let again = p.reconcile(&desired).await.expect("reconcile again");
                    let listed = p.list().await.expect("list");
                    (report, again, listed)
                })
            })
            .join()
            .expect("thread");
        let (report, again, listed) = report;
        assert_eq!(report.removed_stale, [net("203.0.113.0/24")]);
        assert_eq!(report.removed_duplicates, [net("198.51.100.0/24")]);
        let mut installed = report.installed.clone();
        installed.sort();
        assert_eq!(
            installed,
            [net("100.96.122.210/32"), net("198.51.100.0/24")]
        );
        assert_eq!(
            again,
            ReconcileReport::default(),
            "second reconcile changes nothing"
        );
        assert_eq!(listed.len(), 2, "{listed:?}");

        let json = ns.ip_output(&["-j", "route", "show"]);
        let routes: serde_json::Value = serde_json::from_str(&json).expect("ip -j json");
        let arr = routes.as_array().expect("array");
        let ecmp_json = arr
            .iter()
            .find(|r| r["dst"] == "198.51.100.0/24")
            .unwrap_or_else(|| panic!("ECMP route missing: {json}"));
        let gws: Vec<&str> = ecmp_json["nexthops"]
            .as_array()
            .unwrap_or_else(|| panic!("no nexthops: {json}"))
            .iter()
            .filter_map(|n| n["gateway"].as_str())
            .collect();
        assert_eq!(gws, ["10.99.0.2", "10.99.1.2"], "{json}");
        let proto = ecmp_json["protocol"].as_str().unwrap_or_default();
        assert!(proto == "201" || proto == RTPROT_FULCRUM_NAME, "{json}");
        assert!(
            !json.contains("203.0.113.0"),
            "stale route still there: {json}"
        );
        assert!(ns
            .ip_output(&["route", "show", "192.0.2.0/24"])
            .contains("192.0.2.0/24"));

        // Withdraw everything.
        let (deleted, missing, left) = ns
            .run(move || {
                Box::pin(async move {
                    let p = RouteProgrammer::connect(RT_TABLE_MAIN).expect("connect");
                    let d = p
                        .delete(net("198.51.100.0/24"), None)
                        .await
                        .expect("delete");
                    let m = p
                        .delete(net("198.51.100.0/24"), None)
                        .await
                        .expect("delete again");
                    let r = p.reconcile(&[]).await.expect("reconcile");
                    (d, m, r)
                })
            })
            .join()
            .expect("thread");
        assert!(deleted);
        assert!(!missing, "deleting a missing route reports false");
        assert_eq!(left.removed_stale, [net("100.96.122.210/32")]);
        let json = ns.ip_output(&["-j", "route", "show", "proto", "201"]);
        assert_eq!(json.trim(), "[]", "{json}");
        assert!(ns
            .ip_output(&["route", "show", "192.0.2.0/24"])
            .contains("192.0.2.0/24"));
    }

    #[test]
    fn link_and_address_events() {
        require_root();
        let ns = Netns::new("ev");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let worker = ns.run(move || {
            Box::pin(async move {
                let mut ev = NetEvents::subscribe().expect("subscribe");
                ready_tx.send(()).expect("ready");
                let mut seen = Vec::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                while seen.len() < 16 {
                    match tokio::time::timeout_at(deadline, ev.next()).await {
                        Ok(Some(e)) => {
                            let done = matches!(e, NetEvent::AddressRemoved { .. });
                            seen.push(e);
                            if done {
                                break;
                            }
                        }
                        _ => break,
                    }
                }
                seen
            })
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("subscribed");
        ns.ip(&["link", "add", "ev0", "type", "veth", "peer", "name", "ev0p"]);
        ns.ip(&["link", "set", "ev0p", "up"]);
        ns.ip(&["link", "set", "ev0", "up"]);
        ns.ip(&["addr", "add", "10.97.0.1/24", "dev", "ev0"]);
        ns.ip(&["addr", "del", "10.97.0.1/24", "dev", "ev0"]);
        let seen = worker.join().expect("thread");
        assert!(
            seen.iter()
                .any(|e| matches!(e, NetEvent::LinkUp { name, .. } if name == "ev0")),
            "{seen:?}"
        );
        let a = net("10.97.0.1/24");
        assert!(
            seen.iter()
                .any(|e| matches!(e, NetEvent::AddressAdded { address, .. } if *address == a)),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|e| matches!(e, NetEvent::AddressRemoved { address, .. } if *address == a)),
            "{seen:?}"
        );
    }
}
