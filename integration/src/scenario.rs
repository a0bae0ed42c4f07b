//! Lab topologies as data, and the code that builds, checks and describes them.
//!
//! A [`Scenario`] lists switches, nodes (addresses, static routes, the daemons they run),
//! links and the routes expected once routing has converged. [`build`] realises it in a
//! [`Lab`] with the stand-ins' daemons; [`build_for`] with [`LbKind::Fulcrum`] leaves the
//! balancer nodes to fulcrumd instead (their [`Role::Frr`] stand-in becomes fulcrumd's
//! OSPF, see [`crate::lb::fulcrum_config`]), without touching the topology.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::frr::{Frr, FrrConfig, OspfInterface};
use crate::lab::{Lab, Node, Switch};
use crate::lb::LbKind;
use crate::nginx::{Nginx, NginxConfig};

/// What runs in a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// FRR zebra + ospfd with this configuration.
    Frr(FrrConfig),
    /// An nginx real server.
    Nginx(NginxConfig),
}

/// One namespace of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// Short name (namespace `<prefix>-<name>`).
    pub name: String,
    /// Forwarding on (`ip_forward`, L4 ECMP hash).
    pub router: bool,
    /// `(interface, address/len)`; `lo` addresses are allowed (VIPs, router ids).
    pub addrs: Vec<(String, String)>,
    /// Static routes as `ip route` arguments.
    pub routes: Vec<String>,
    /// `(key, value)` sysctls set in the namespace once its interfaces exist
    /// (`net.ipv4.conf.all.arp_ignore`, `1`).
    pub sysctls: Vec<(String, String)>,
    /// Daemons, started in order after every address and route is in place.
    pub roles: Vec<Role>,
}

/// A veth between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSpec {
    /// `(node, interface)` of one end.
    pub a: (String, String),
    /// `(node, interface)` of the other end.
    pub b: (String, String),
}

/// A node's interface plugged into a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSpec {
    /// Node name.
    pub node: String,
    /// Interface name in the node.
    pub ifname: String,
    /// Switch name.
    pub switch: String,
}

/// A route a node must have once the scenario has converged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectRoute {
    /// Node name.
    pub node: String,
    /// Prefix.
    pub prefix: String,
    /// Number of next hops (2 for ECMP over two nodes).
    pub nexthops: usize,
}

/// A whole topology.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name used on the command line and as the detached lab name.
    pub name: String,
    /// One paragraph for humans.
    pub description: String,
    /// Bridges (shared L2 segments).
    pub switches: Vec<String>,
    /// Namespaces.
    pub nodes: Vec<NodeSpec>,
    /// Point-to-point veths.
    pub links: Vec<LinkSpec>,
    /// Switch ports.
    pub attachments: Vec<AttachSpec>,
    /// Routes that prove convergence.
    pub expect: Vec<ExpectRoute>,
    /// Commands to try, with `{ns:NODE}` standing for a node's namespace and `{dir:NODE}`
    /// for its run directory.
    pub hints: Vec<String>,
    /// The load-balanced service: VIP, port, balancer nodes, real servers, client.
    pub service: Service,
}

/// How a balancer delivers a connection to a real server, which decides what the
/// server sees as the client address and where replies go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Destination and source rewritten (FullNAT, DPVS `FNAT`): the server sees the
    /// balancer's local address; replies return to the balancer by plain routing.
    FullNat,
    /// Destination rewritten only (LVS-NAT): the server sees the client; replies return
    /// through the balancer because it is the servers' default gateway.
    Nat,
    /// Direct routing (LVS-DR): only the MAC is rewritten; the servers hold the VIP on `lo`
    /// (ARP-suppressed) and answer the client directly.
    Dr,
}

/// A real server behind the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Node name.
    pub node: String,
    /// The address the balancer sends to.
    pub addr: Ipv4Addr,
}

/// A node that balances the VIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balancer {
    /// Node name.
    pub node: String,
    /// The local address used toward the servers when [`Delivery::FullNat`] (SNAT source).
    pub local: Option<Ipv4Addr>,
}

/// The service a scenario balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The virtual address clients connect to.
    pub vip: Ipv4Addr,
    /// The TCP port on the VIP and on the real servers.
    pub port: u16,
    /// The real servers' PROXY-protocol port (the client address carried by PROXY v2).
    pub proxy_port: Option<u16>,
    /// How connections reach the servers.
    pub delivery: Delivery,
    /// The balancer nodes (two in scenario `two`, ECMP-fed).
    pub balancers: Vec<Balancer>,
    /// The real servers.
    pub backends: Vec<Backend>,
    /// The node requests come from.
    pub client: String,
    /// The client's address as the servers should see it when the mode preserves it.
    pub client_addr: Ipv4Addr,
}

impl Service {
    /// `http://VIP:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}:{}/", self.vip, self.port)
    }
}

/// The running pieces of a built scenario.
#[derive(Debug, Default)]
pub struct Running {
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Switches by name.
    pub switches: BTreeMap<String, Switch>,
    /// FRR instances by node name.
    pub frr: BTreeMap<String, Frr>,
    /// nginx instances by node name.
    pub nginx: BTreeMap<String, Nginx>,
}

impl Running {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .get(name)
            .ok_or_else(|| LabError::Config(format!("no node {name} in this scenario")))
    }
}

/// The scenario names [`by_name`] knows.
pub const SCENARIOS: &[&str] = &["one", "two", "nat", "dr"];

/// Looks a scenario up by name.
pub fn by_name(name: &str) -> Option<Scenario> {
    match name {
        "one" => Some(one()),
        "two" => Some(two()),
        "nat" => Some(nat()),
        "dr" => Some(dr()),
        _ => None,
    }
}

/// The anycast VIP of seed 000, scenario two.
pub const VIP_TWO: &str = "100.96.122.210";

fn s(v: &str) -> String {
    v.to_string()
}

fn addr(i: &str, a: &str) -> (String, String) {
    (s(i), s(a))
}

fn kv(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

fn port(node: &str, ifname: &str, switch: &str) -> AttachSpec {
    AttachSpec {
        node: s(node),
        ifname: s(ifname),
        switch: s(switch),
    }
}

fn client_node(ip_cidr: &str, routes: Vec<String>) -> NodeSpec {
    NodeSpec {
        name: s("client"),
        router: false,
        addrs: vec![addr("eth0", ip_cidr)],
        routes,
        sysctls: vec![],
        roles: vec![],
    }
}

/// An nginx real server on `eth0` (`ip/24`) with a plain listener on 80 and a PROXY
/// listener on 8080, both on `ip`, plus `extra` listeners (the VIP for DR).
fn real_server(name: &str, ip: &str, routes: Vec<String>, vip_on_lo: Option<&str>) -> NodeSpec {
    let mut cfg = NginxConfig::default()
        .listen(ip, 80, false)
        .listen(ip, 8080, true);
    let mut addrs = vec![addr("eth0", &format!("{ip}/24"))];
    let mut sysctls = vec![];
    if let Some(vip) = vip_on_lo {
        cfg = cfg.listen(vip, 80, false);
        addrs.push(addr("lo", &format!("{vip}/32")));
        // LVS-DR: answer ARP only for addresses of the asking interface, and source ARP
        // requests from the outgoing interface's own address (never the VIP on lo).
        sysctls = vec![
            kv("net.ipv4.conf.all.arp_ignore", "1"),
            kv("net.ipv4.conf.all.arp_announce", "2"),
            kv("net.ipv4.conf.eth0.arp_ignore", "1"),
            kv("net.ipv4.conf.eth0.arp_announce", "2"),
            kv("net.ipv4.conf.lo.arp_ignore", "1"),
            kv("net.ipv4.conf.lo.arp_announce", "2"),
        ];
    }
    NodeSpec {
        name: s(name),
        router: false,
        addrs,
        routes,
        sysctls,
        roles: vec![Role::Nginx(cfg)],
    }
}

fn ip4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

fn backends(list: &[(&str, [u8; 4])]) -> Vec<Backend> {
    list.iter()
        .map(|(n, a)| Backend {
            node: s(n),
            addr: ip4(*a),
        })
        .collect()
}

/// The in-segment VIP of seed 000, scenario one.
pub const VIP_ONE: &str = "192.168.7.182";
/// The service VIP of seed 001 (LVS-NAT).
pub const VIP_NAT: &str = "10.10.0.20";
/// The VIP of seeds 002/004 (LVS-DR).
pub const VIP_DR: &str = "192.168.150.100";

/// Seed 000, scenario one: internal one-arm FullNAT on one L2 segment.
///
/// Everything sits on 192.168.7.0/24 (switch `seg`): `client` (.55), the balancer `lb`
/// (.82, the VIP 192.168.7.182/32 on `lo`, local address .185 for FullNAT) and nginx real
/// servers `rs1` (.27) and `rs2` (.28). The balancer forwards back out of the interface
/// the request came in on, so ICMP redirects are off in it. (The seed's SYN proxy is a
/// fulcrum feature; the stand-ins do not have it.)
pub fn one() -> Scenario {
    Scenario {
        name: s("one"),
        description: s(
            "seed 000 scenario one: one-arm FullNAT on 192.168.7.0/24: client .55 -> \
             lb .82 (VIP 192.168.7.182, local .185) -> nginx rs1 .27 | rs2 .28",
        ),
        switches: vec![s("seg")],
        nodes: vec![
            client_node("192.168.7.55/24", vec![]),
            NodeSpec {
                name: s("lb"),
                router: true,
                addrs: vec![
                    addr("eth0", "192.168.7.82/24"),
                    addr("eth0", "192.168.7.185/24"),
                    addr("lo", &format!("{VIP_ONE}/32")),
                ],
                routes: vec![],
                sysctls: vec![
                    kv("net.ipv4.conf.all.send_redirects", "0"),
                    kv("net.ipv4.conf.eth0.send_redirects", "0"),
                ],
                roles: vec![],
            },
            real_server("rs1", "192.168.7.27", vec![], None),
            real_server("rs2", "192.168.7.28", vec![], None),
        ],
        links: vec![],
        attachments: vec![
            port("client", "eth0", "seg"),
            port("lb", "eth0", "seg"),
            port("rs1", "eth0", "seg"),
            port("rs2", "eth0", "seg"),
        ],
        expect: vec![],
        hints: vec![
            s("ip netns exec {ns:client} curl -s http://192.168.7.27/    # a real server directly"),
            s("ip netns exec {ns:rs1} curl -s --haproxy-protocol http://192.168.7.28:8080/"),
        ],
        service: Service {
            vip: ip4([192, 168, 7, 182]),
            port: 80,
            proxy_port: Some(8080),
            delivery: Delivery::FullNat,
            balancers: vec![Balancer {
                node: s("lb"),
                local: Some(ip4([192, 168, 7, 185])),
            }],
            backends: backends(&[("rs1", [192, 168, 7, 27]), ("rs2", [192, 168, 7, 28])]),
            client: s("client"),
            client_addr: ip4([192, 168, 7, 55]),
        },
    }
}

/// Seed 001: LVS-NAT, the real servers' default gateway is the director.
///
/// `client` (10.10.0.100/24) reaches the director `lb` on the service network
/// 10.10.0.0/24, where the director holds the VIP 10.10.0.20. Behind it, on the
/// 192.168.211.0/24 segment `rsnet`, the director is 192.168.211.20 and nginx real servers
/// `rs1` (.11) and `rs2` (.12) route everything through it, so replies pass the director
/// and are un-NATed there.
pub fn nat() -> Scenario {
    let via_director = || vec![s("default via 192.168.211.20")];
    Scenario {
        name: s("nat"),
        description: s(
            "seed 001 LVS-NAT: client 10.10.0.100 -> director lb (VIP 10.10.0.20 | \
             192.168.211.20, the servers' gateway) -> nginx rs1 .11 | rs2 .12",
        ),
        switches: vec![s("rsnet")],
        nodes: vec![
            client_node("10.10.0.100/24", vec![]),
            NodeSpec {
                name: s("lb"),
                router: true,
                addrs: vec![
                    addr("eth0", &format!("{VIP_NAT}/24")),
                    addr("eth1", "192.168.211.20/24"),
                ],
                routes: vec![],
                sysctls: vec![],
                roles: vec![],
            },
            real_server("rs1", "192.168.211.11", via_director(), None),
            real_server("rs2", "192.168.211.12", via_director(), None),
        ],
        links: vec![LinkSpec {
            a: (s("lb"), s("eth0")),
            b: (s("client"), s("eth0")),
        }],
        attachments: vec![
            port("lb", "eth1", "rsnet"),
            port("rs1", "eth0", "rsnet"),
            port("rs2", "eth0", "rsnet"),
        ],
        expect: vec![],
        hints: vec![
            s("ip -n {ns:rs1} route    # default via 192.168.211.20, the director"),
            s("ip netns exec {ns:lb} curl -s http://192.168.211.11/    # a real server directly"),
        ],
        service: Service {
            vip: ip4([10, 10, 0, 20]),
            port: 80,
            proxy_port: Some(8080),
            delivery: Delivery::Nat,
            balancers: vec![Balancer {
                node: s("lb"),
                local: None,
            }],
            backends: backends(&[("rs1", [192, 168, 211, 11]), ("rs2", [192, 168, 211, 12])]),
            client: s("client"),
            client_addr: ip4([10, 10, 0, 100]),
        },
    }
}

/// Seeds 002/004: LVS-DR on one L2 segment.
///
/// On 192.168.150.0/24 (switch `seg`): `client` (.50), the director `lb` (.11, the VIP
/// 192.168.150.100 on `eth0` so it alone answers ARP for it) and nginx real servers `rs1`
/// (.12) and `rs2` (.13), each holding the VIP on `lo` with `arp_ignore=1` and
/// `arp_announce=2`, listening on their own address and on the VIP. A DR balancer
/// rewrites only the destination MAC; the servers answer the client directly.
pub fn dr() -> Scenario {
    Scenario {
        name: s("dr"),
        description: s(
            "seeds 002/004 LVS-DR on 192.168.150.0/24: client .50 -> director lb .11 \
             (VIP 192.168.150.100) -> MAC-rewritten to rs1 .12 | rs2 .13 (VIP on lo, ARP \
             suppressed), replies straight to the client",
        ),
        switches: vec![s("seg")],
        nodes: vec![
            client_node("192.168.150.50/24", vec![]),
            NodeSpec {
                name: s("lb"),
                router: false,
                addrs: vec![
                    addr("eth0", "192.168.150.11/24"),
                    addr("eth0", &format!("{VIP_DR}/32")),
                ],
                routes: vec![],
                sysctls: vec![],
                roles: vec![],
            },
            real_server("rs1", "192.168.150.12", vec![], Some(VIP_DR)),
            real_server("rs2", "192.168.150.13", vec![], Some(VIP_DR)),
        ],
        links: vec![],
        attachments: vec![
            port("client", "eth0", "seg"),
            port("lb", "eth0", "seg"),
            port("rs1", "eth0", "seg"),
            port("rs2", "eth0", "seg"),
        ],
        expect: vec![],
        hints: vec![
            s("ip netns exec {ns:client} curl -s http://192.168.150.12/    # rs1 directly"),
            s(
                "ip netns exec {ns:client} ping -c 1 192.168.150.100; ip -n {ns:client} neigh    \
               # the VIP resolves to lb's MAC only",
            ),
        ],
        service: Service {
            vip: ip4([192, 168, 150, 100]),
            port: 80,
            proxy_port: None,
            delivery: Delivery::Dr,
            balancers: vec![Balancer {
                node: s("lb"),
                local: None,
            }],
            backends: backends(&[("rs1", [192, 168, 150, 12]), ("rs2", [192, 168, 150, 13])]),
            client: s("client"),
            client_addr: ip4([192, 168, 150, 50]),
        },
    }
}

/// Seed 000, scenario two: external two-arm OSPF/ECMP load balancing.
///
/// `client` (10.12.26.20) sits behind the upstream router `sw` on its own subnet; `sw`
/// (10.20.30.1) runs OSPF area 0 on the 10.20.30.0/24 segment `seg` and originates a
/// default route. The balancer nodes `lb-a` (10.20.30.45) and `lb-b` (10.20.30.46)
/// advertise the VIP 100.96.122.210/32 by OSPF — fulcrumd itself with
/// [`LbKind::Fulcrum`], otherwise FRR stand-ins holding the VIP on `lo` — so `sw`
/// installs it with two next hops. Behind them, on the 192.168.7.0/24
/// segment `inner`, nginx real servers `rs1` (.27) and `rs2` (.28); the nodes also hold
/// their local addresses .185 and .195 for FullNAT.
pub fn two() -> Scenario {
    let seg_if = |rid: [u8; 4]| {
        FrrConfig::new(Ipv4Addr::from(rid))
            .interface(OspfInterface::broadcast("eth0").timers(1, 4))
            .network("10.20.30.0/24", "0")
    };
    let sw = seg_if([10, 20, 30, 1]).extra("default-information originate always");
    let lb = |name: &str, last: u8, inner: &str, lip: &str| NodeSpec {
        name: s(name),
        router: true,
        addrs: vec![
            addr("eth0", &format!("10.20.30.{last}/24")),
            addr("eth1", inner),
            addr("eth1", lip),
            addr("lo", &format!("{VIP_TWO}/32")),
        ],
        routes: vec![],
        sysctls: vec![],
        roles: vec![Role::Frr(
            seg_if([10, 20, 30, last]).network(&format!("{VIP_TWO}/32"), "0"),
        )],
    };
    let rs = |name: &str, ip: &str| NodeSpec {
        name: s(name),
        router: false,
        addrs: vec![addr("eth0", &format!("{ip}/24"))],
        routes: vec![],
        sysctls: vec![],
        roles: vec![Role::Nginx(
            NginxConfig::default()
                .listen(ip, 80, false)
                .listen(ip, 8080, true),
        )],
    };
    Scenario {
        name: s("two"),
        description: s("seed 000 scenario two: client -> sw (OSPF, ECMP) -> lb-a | lb-b \
             (VIP 100.96.122.210/32 announced over OSPF) -> nginx rs1 | rs2"),
        switches: vec![s("seg"), s("inner")],
        nodes: vec![
            NodeSpec {
                name: s("client"),
                router: false,
                addrs: vec![addr("eth0", "10.12.26.20/24")],
                routes: vec![s("default via 10.12.26.1")],
                sysctls: vec![],
                roles: vec![],
            },
            NodeSpec {
                name: s("sw"),
                router: true,
                addrs: vec![addr("eth0", "10.20.30.1/24"), addr("eth1", "10.12.26.1/24")],
                routes: vec![],
                sysctls: vec![],
                roles: vec![Role::Frr(sw)],
            },
            lb("lb-a", 45, "192.168.7.82/24", "192.168.7.185/24"),
            lb("lb-b", 46, "192.168.7.83/24", "192.168.7.195/24"),
            rs("rs1", "192.168.7.27"),
            rs("rs2", "192.168.7.28"),
        ],
        links: vec![LinkSpec {
            a: (s("sw"), s("eth1")),
            b: (s("client"), s("eth0")),
        }],
        attachments: vec![
            AttachSpec {
                node: s("sw"),
                ifname: s("eth0"),
                switch: s("seg"),
            },
            AttachSpec {
                node: s("lb-a"),
                ifname: s("eth0"),
                switch: s("seg"),
            },
            AttachSpec {
                node: s("lb-b"),
                ifname: s("eth0"),
                switch: s("seg"),
            },
            AttachSpec {
                node: s("lb-a"),
                ifname: s("eth1"),
                switch: s("inner"),
            },
            AttachSpec {
                node: s("lb-b"),
                ifname: s("eth1"),
                switch: s("inner"),
            },
            AttachSpec {
                node: s("rs1"),
                ifname: s("eth0"),
                switch: s("inner"),
            },
            AttachSpec {
                node: s("rs2"),
                ifname: s("eth0"),
                switch: s("inner"),
            },
        ],
        expect: vec![
            ExpectRoute {
                node: s("sw"),
                prefix: format!("{VIP_TWO}/32"),
                nexthops: 2,
            },
            ExpectRoute {
                node: s("lb-a"),
                prefix: s("0.0.0.0/0"),
                nexthops: 1,
            },
            ExpectRoute {
                node: s("lb-b"),
                prefix: s("0.0.0.0/0"),
                nexthops: 1,
            },
        ],
        hints: vec![
            s("ip -n {ns:sw} route show 100.96.122.210    # ECMP: nexthop via .45 and via .46"),
            s("ip netns exec {ns:client} ping -c 3 100.96.122.210    # answered by lb-a or lb-b"),
            s("vtysh --vty_socket {dir:sw}/frr/run -c 'show ip ospf neighbor'"),
            s("ip netns exec {ns:lb-a} curl -s http://192.168.7.27/    # a real server directly"),
            s("ip netns exec {ns:lb-a} curl -s --haproxy-protocol http://192.168.7.28:8080/"),
            s("stand-in: ip -n {ns:lb-a} addr del 100.96.122.210/32 dev lo    # withdraw: sw keeps one nexthop"),
            s("fulcrum: fulcrum --socket {sock:lb-a} ospf neighbors    # fulcrumd's view of sw and lb-b"),
            s("fulcrum: fulcrum --socket {sock:lb-a} vips drain 100.96.122.210    # withdraw: sw keeps one nexthop (undrain to undo)"),
        ],
        service: Service {
            vip: ip4([100, 96, 122, 210]),
            port: 80,
            proxy_port: Some(8080),
            delivery: Delivery::FullNat,
            balancers: vec![
                Balancer {
                    node: s("lb-a"),
                    local: Some(ip4([192, 168, 7, 185])),
                },
                Balancer {
                    node: s("lb-b"),
                    local: Some(ip4([192, 168, 7, 195])),
                },
            ],
            backends: backends(&[("rs1", [192, 168, 7, 27]), ("rs2", [192, 168, 7, 28])]),
            client: s("client"),
            client_addr: ip4([10, 12, 26, 20]),
        },
    }
}

/// The BFD timers of seed 000's scenario two: 50 ms transmit, 50 ms receive, × 3 (a
/// failed node is detected after 150 ms).
pub const SEED_BFD: (u32, u32, u8) = (50, 50, 3);

/// `scenario` with BFD on every OSPF adjacency: each FRR configuration gets
/// `ip ospf bfd` (and `ip ospf bfd profile lab`) on its non-passive OSPF interfaces and
/// bfdd timers `(tx_ms, rx_ms, multiplier)` ([`FrrConfig::bfd_timers()`]). The router's
/// interfaces toward the balancers run BFD; the balancer nodes' stand-ins do too, and
/// with [`LbKind::Fulcrum`] their fulcrumd configurations carry the same timers in
/// `[bfd]` and `bfd = true` on those interfaces ([`crate::lb::fulcrum_config`] renders
/// them from the stand-in). A scenario without OSPF is returned unchanged.
pub fn with_bfd(mut scenario: Scenario, tx_ms: u32, rx_ms: u32, multiplier: u8) -> Scenario {
    let mut any = false;
    for node in &mut scenario.nodes {
        for role in &mut node.roles {
            if let Role::Frr(cfg) = role {
                for i in cfg.interfaces.iter_mut().filter(|i| !i.passive) {
                    i.bfd = true;
                    cfg.bfd_timers = Some((tx_ms, rx_ms, multiplier));
                    any = true;
                }
            }
        }
    }
    if any {
        scenario.description = format!(
            "{}; BFD {tx_ms}/{rx_ms} ms x {multiplier} on every OSPF adjacency",
            scenario.description
        );
    }
    scenario
}

/// Builds `scenario` in `lab`: switches, nodes, links, addresses, routes, then daemons
/// (the balancer nodes as the stand-ins' topology: see [`build_for`]).
pub fn build(lab: &Lab, scenario: &Scenario) -> Result<Running> {
    build_for(lab, scenario, LbKind::NftDnat)
}

/// The name of the veth that carries a fulcrum balancer's interface `ifname` as a DPDK
/// port (`eth0` → `dp-eth0`); the kernel twin fulcrumd creates is called `ifname`.
pub fn port_veth(ifname: &str) -> String {
    format!("dp-{ifname}")
}

/// The balancer nodes that run fulcrumd when `kind` is [`LbKind::Fulcrum`] (none else).
pub fn fulcrum_nodes(scenario: &Scenario, kind: LbKind) -> Vec<String> {
    if kind == LbKind::Fulcrum {
        scenario
            .service
            .balancers
            .iter()
            .map(|b| b.node.clone())
            .collect()
    } else {
        Vec::new()
    }
}

/// Builds `scenario` in `lab` for balancer `kind`.
///
/// Every kind but [`LbKind::Fulcrum`] gets the topology as written. For fulcrum, each
/// balancer node is left for fulcrumd (started by [`crate::lb::start`]): a plain
/// namespace (no kernel forwarding), its data interfaces created as veths named
/// [`port_veth`] with no addresses (fulcrumd's DPDK ports; the kernel twins it creates
/// take the interface names and addresses), IPv6 off, `rp_filter=1` and `arp_ignore=8`
/// on the veths so the node's kernel speaks only through the twins, and none of the
/// node's daemons (the FRR stand-in's OSPF is fulcrumd's). Every other node's
/// interfaces get TX checksum offload off: `net_af_packet` reads frames as the sender's
/// stack left them, and a partial checksum would reach the balancer unfinished.
pub fn build_for(lab: &Lab, scenario: &Scenario, kind: LbKind) -> Result<Running> {
    let fulcrum = fulcrum_nodes(scenario, kind);
    let is_fulcrum = |node: &str| fulcrum.iter().any(|n| n == node);
    let ifname = |node: &str, ifname: &str| {
        if is_fulcrum(node) {
            port_veth(ifname)
        } else {
            ifname.to_string()
        }
    };
    let mut run = Running::default();
    for name in &scenario.switches {
        run.switches.insert(name.clone(), lab.switch(name)?);
    }
    for spec in &scenario.nodes {
        let node = if spec.router && !is_fulcrum(&spec.name) {
            lab.router(&spec.name)?
        } else {
            lab.node(&spec.name)?
        };
        run.nodes.insert(spec.name.clone(), node);
    }
    // Every (node, interface) the topology creates, for the per-interface settings.
    let mut ifaces: Vec<(String, String)> = Vec::new();
    for l in &scenario.links {
        let a = run.node(&l.a.0)?;
        let b = run.node(&l.b.0)?;
        let (ai, bi) = (ifname(&l.a.0, &l.a.1), ifname(&l.b.0, &l.b.1));
        lab.link(a, &ai, b, &bi)?;
        ifaces.push((l.a.0.clone(), ai));
        ifaces.push((l.b.0.clone(), bi));
    }
    for at in &scenario.attachments {
        let node = run.node(&at.node)?;
        let sw = run
            .switches
            .get(&at.switch)
            .ok_or_else(|| LabError::Config(format!("no switch {}", at.switch)))?;
        let i = ifname(&at.node, &at.ifname);
        lab.attach(node, &i, sw)?;
        ifaces.push((at.node.clone(), i));
    }
    for spec in &scenario.nodes {
        let node = run.node(&spec.name)?;
        if is_fulcrum(&spec.name) {
            for (k, v) in [
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
                ("net.ipv4.conf.all.rp_filter", "1"),
            ] {
                node.sysctl(k, v)?;
            }
            for (_, i) in ifaces.iter().filter(|(n, _)| n == &spec.name) {
                node.sysctl(&format!("net.ipv4.conf.{i}.arp_ignore"), "8")?;
            }
            continue;
        }
        for (ifname, cidr) in &spec.addrs {
            node.addr(ifname, cidr)?;
        }
        for r in &spec.routes {
            node.route(r)?;
        }
        for (k, v) in &spec.sysctls {
            node.sysctl(k, v)?;
        }
        if !fulcrum.is_empty() {
            for (_, i) in ifaces.iter().filter(|(n, _)| n == &spec.name) {
                node.exec_ok(&["ethtool", "-K", i, "tx", "off", "tso", "off"])?;
            }
        }
    }
    for spec in &scenario.nodes {
        if is_fulcrum(&spec.name) {
            continue;
        }
        let node = run.node(&spec.name)?.clone();
        for role in &spec.roles {
            match role {
                Role::Frr(cfg) => {
                    run.frr.insert(spec.name.clone(), node.frr(cfg)?);
                }
                Role::Nginx(cfg) => {
                    run.nginx.insert(spec.name.clone(), node.nginx(cfg)?);
                }
            }
        }
    }
    Ok(run)
}

/// Waits for every [`ExpectRoute`] of the scenario.
pub fn wait_converged(lab: &Lab, scenario: &Scenario, deadline: Duration) -> Result<()> {
    for e in &scenario.expect {
        lab.existing_node(&e.node)
            .wait_route(&e.prefix, e.nexthops, deadline)?;
    }
    Ok(())
}

/// The scenario's hints for the stand-in balancers (see [`hints_for`]).
pub fn hints(lab: &Lab, scenario: &Scenario) -> Vec<String> {
    hints_for(lab, scenario, LbKind::NftDnat)
}

/// Marks a hint that only holds with the stand-in balancers (FRR announcing the VIP).
pub const STAND_IN_HINT: &str = "stand-in: ";
/// Marks a hint that only holds with fulcrum as the balancer; `{sock:NODE}` stands for
/// the node's fulcrumd control socket.
pub const FULCRUM_HINT: &str = "fulcrum: ";

/// The scenario's hints that hold for balancer `kind`, with namespaces, run directories
/// and control sockets filled in.
pub fn hints_for(lab: &Lab, scenario: &Scenario, kind: LbKind) -> Vec<String> {
    let fulcrum = kind == LbKind::Fulcrum;
    scenario
        .hints
        .iter()
        .filter_map(|h| {
            if let Some(rest) = h.strip_prefix(STAND_IN_HINT) {
                (!fulcrum).then_some(rest)
            } else if let Some(rest) = h.strip_prefix(FULCRUM_HINT) {
                fulcrum.then_some(rest)
            } else {
                Some(h.as_str())
            }
        })
        .map(|h| {
            let mut h = h.to_string();
            for n in &scenario.nodes {
                let node = lab.existing_node(&n.name);
                h = h.replace(&format!("{{ns:{}}}", n.name), node.netns());
                h = h.replace(
                    &format!("{{dir:{}}}", n.name),
                    &node.dir().to_string_lossy(),
                );
                h = h.replace(
                    &format!("{{sock:{}}}", n.name),
                    &crate::lb::fulcrum_dir(&node)
                        .join("control.sock")
                        .to_string_lossy(),
                );
            }
            h
        })
        .collect()
}

/// A human-readable status: every FRR node's OSPF neighbors (not the balancers that run
/// fulcrumd) and the expected routes as the kernel has them.
pub fn status(lab: &Lab, scenario: &Scenario) -> String {
    let mut out = String::new();
    for spec in &scenario.nodes {
        if !spec.roles.iter().any(|r| matches!(r, Role::Frr(_))) {
            continue;
        }
        let node = lab.existing_node(&spec.name);
        if crate::lb::fulcrum_dir(&node).exists() {
            // fulcrumd speaks OSPF there: `crate::lb::status` shows its own view.
            continue;
        }
        out.push_str(&format!(
            "== {} ({}) OSPF neighbors\n",
            spec.name,
            node.netns()
        ));
        match node.existing_frr().vtysh_text(&["show ip ospf neighbor"]) {
            Ok(t) => out.push_str(t.trim_end()),
            Err(e) => out.push_str(&format!("unavailable: {e}")),
        }
        out.push('\n');
    }
    for e in &scenario.expect {
        let node = lab.existing_node(&e.node);
        out.push_str(&format!(
            "== {} route {} (expect {} next hop{})\n",
            e.node,
            e.prefix,
            e.nexthops,
            if e.nexthops == 1 { "" } else { "s" }
        ));
        let shown = if e.prefix == "0.0.0.0/0" {
            "default"
        } else {
            &e.prefix
        };
        match node.ip(&["route", "show", shown]) {
            Ok(t) if t.trim().is_empty() => out.push_str("(no route)"),
            Ok(t) => out.push_str(t.trim_end()),
            Err(err) => out.push_str(&format!("unavailable: {err}")),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_consistent(sc: &Scenario) {
        let names: Vec<&str> = sc.nodes.iter().map(|n| n.name.as_str()).collect();
        for l in &sc.links {
            assert!(names.contains(&l.a.0.as_str()) && names.contains(&l.b.0.as_str()));
        }
        for a in &sc.attachments {
            assert!(names.contains(&a.node.as_str()), "{a:?}");
            assert!(sc.switches.contains(&a.switch), "{a:?}");
        }
        for e in &sc.expect {
            assert!(names.contains(&e.node.as_str()), "{e:?}");
        }
        // Every interface that gets an address exists as a link or switch port end.
        for n in &sc.nodes {
            for (ifname, _) in &n.addrs {
                let exists = ifname == "lo"
                    || sc.links.iter().any(|l| {
                        (l.a.0 == n.name && &l.a.1 == ifname)
                            || (l.b.0 == n.name && &l.b.1 == ifname)
                    })
                    || sc
                        .attachments
                        .iter()
                        .any(|a| a.node == n.name && &a.ifname == ifname);
                assert!(exists, "{}: {} has no interface {ifname}", sc.name, n.name);
            }
        }
        // The service refers to nodes that exist, and each backend holds its address.
        let svc = &sc.service;
        assert!(names.contains(&svc.client.as_str()), "{}", sc.name);
        assert!(svc.backends.len() >= 2, "{}", sc.name);
        for b in &svc.backends {
            let node = sc
                .nodes
                .iter()
                .find(|n| n.name == b.node)
                .expect("backend node");
            assert!(
                node.addrs
                    .iter()
                    .any(|(_, a)| a == &format!("{}/24", b.addr)),
                "{}: {} lacks {}",
                sc.name,
                b.node,
                b.addr
            );
            assert!(node.roles.iter().any(|r| matches!(r, Role::Nginx(_))));
        }
        for lb in &svc.balancers {
            let node = sc
                .nodes
                .iter()
                .find(|n| n.name == lb.node)
                .expect("lb node");
            assert!(
                node.addrs
                    .iter()
                    .any(|(_, a)| a.starts_with(&format!("{}/", svc.vip))),
                "{}: balancer {} does not hold the VIP",
                sc.name,
                lb.node
            );
            assert_eq!(lb.local.is_some(), svc.delivery == Delivery::FullNat);
        }
        let client = sc
            .nodes
            .iter()
            .find(|n| n.name == svc.client)
            .expect("client");
        assert!(client
            .addrs
            .iter()
            .any(|(_, a)| a.starts_with(&format!("{}/", svc.client_addr))));
    }

    #[test]
    fn every_scenario_is_consistent() {
        for name in SCENARIOS {
            let sc = by_name(name).expect("known");
            assert_eq!(&sc.name, name);
            check_consistent(&sc);
        }
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn modes_have_their_settings() {
        // NAT: replies must pass the director, the servers' default gateway.
        let nat = nat();
        for b in &nat.service.backends {
            let n = nat.nodes.iter().find(|n| n.name == b.node).expect("node");
            assert_eq!(n.routes, vec!["default via 192.168.211.20".to_string()]);
        }
        // DR: VIP on lo, ARP suppressed, nginx listening on the VIP.
        let dr = dr();
        for b in &dr.service.backends {
            let n = dr.nodes.iter().find(|n| n.name == b.node).expect("node");
            assert!(n
                .addrs
                .contains(&("lo".to_string(), format!("{VIP_DR}/32"))));
            assert!(n
                .sysctls
                .contains(&("net.ipv4.conf.all.arp_ignore".into(), "1".into())));
            assert!(n
                .sysctls
                .contains(&("net.ipv4.conf.all.arp_announce".into(), "2".into())));
            let Some(Role::Nginx(cfg)) = n.roles.first() else {
                panic!("no nginx in {}", n.name)
            };
            assert!(cfg.listen.iter().any(|l| l.addr == VIP_DR && l.port == 80));
        }
        assert_eq!(one().service.url(), "http://192.168.7.182:80/");
    }

    #[test]
    fn two_announces_the_vip_from_both_nodes() {
        let sc = by_name("two").expect("known");
        let announcing = sc
            .nodes
            .iter()
            .filter(|n| {
                n.roles.iter().any(|r| match r {
                    Role::Frr(c) => c.networks.iter().any(|(p, _)| p == "100.96.122.210/32"),
                    Role::Nginx(_) => false,
                })
            })
            .count();
        assert_eq!(announcing, 2);
        assert_eq!(sc.service.balancers.len(), 2);
    }

    #[test]
    fn bfd_on_every_ospf_adjacency_of_two() {
        let plain = by_name("two").expect("two");
        let (tx, rx, mult) = SEED_BFD;
        let sc = with_bfd(plain.clone(), tx, rx, mult);
        let frrs: Vec<&FrrConfig> = sc
            .nodes
            .iter()
            .flat_map(|n| n.roles.iter())
            .filter_map(|r| match r {
                Role::Frr(c) => Some(c),
                Role::Nginx(_) => None,
            })
            .collect();
        assert_eq!(frrs.len(), 3, "sw, lb-a and lb-b");
        for c in frrs {
            assert_eq!(c.bfd_timers, Some((50, 50, 3)));
            assert!(c.uses_bfd());
            assert!(c.interfaces.iter().all(|i| i.bfd));
            let (_, ospf, bfdd) = c.render("x", "/d").expect("renders");
            assert!(
                ospf.contains(" ip ospf bfd\n ip ospf bfd profile lab\n"),
                "{ospf}"
            );
            assert!(bfdd.contains("transmit-interval 50"), "{bfdd}");
        }
        assert!(sc.description.contains("BFD 50/50 ms x 3"));
        // Only the daemons' configurations change; without OSPF nothing does.
        assert_eq!(sc.nodes.len(), plain.nodes.len());
        assert_eq!(sc.service, plain.service);
        assert_eq!(sc.expect, plain.expect);
        assert_eq!(with_bfd(one(), 50, 50, 3), one());
        assert!(plain.nodes.iter().all(|n| n.roles.iter().all(|r| match r {
            Role::Frr(c) => !c.uses_bfd() && c.bfd_timers.is_none(),
            Role::Nginx(_) => true,
        })));
    }

    #[test]
    fn fulcrum_nodes_and_hints_are_marked() {
        let two = by_name("two").expect("two");
        assert_eq!(
            fulcrum_nodes(&two, LbKind::Fulcrum),
            vec!["lb-a".to_string(), "lb-b".to_string()]
        );
        assert!(fulcrum_nodes(&two, LbKind::NftDnat).is_empty());
        assert_eq!(port_veth("eth1"), "dp-eth1");
        // The stand-in's withdrawal hint and fulcrum's drain hint are marked.
        assert!(two
            .hints
            .iter()
            .any(|h| h.starts_with(STAND_IN_HINT) && h.contains("dev lo")));
        assert!(two
            .hints
            .iter()
            .any(|h| h.starts_with(FULCRUM_HINT) && h.contains("{sock:lb-a} vips drain")));
    }
}
