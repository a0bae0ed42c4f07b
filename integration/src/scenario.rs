//! Lab topologies as data, and the code that builds, checks and describes them.
//!
//! A [`Scenario`] lists switches, nodes (addresses, static routes, the daemons they run),
//! links and the routes expected once routing has converged. [`build`] realises it in a
//! [`Lab`]; later work can swap a node's [`Role::Frr`] stand-in for fulcrumd by adding a
//! role, without touching the topology.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::frr::{Frr, FrrConfig, OspfInterface};
use crate::lab::{Lab, Node, Switch};
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
pub const SCENARIOS: &[&str] = &["two"];

/// Looks a scenario up by name.
pub fn by_name(name: &str) -> Option<Scenario> {
    match name {
        "two" => Some(two()),
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

/// Seed 000, scenario two: external two-arm OSPF/ECMP load balancing.
///
/// `client` (10.12.26.20) sits behind the upstream router `sw` on its own subnet; `sw`
/// (10.20.30.1) runs OSPF area 0 on the 10.20.30.0/24 segment `seg` and originates a
/// default route. The balancer nodes `lb-a` (10.20.30.45) and `lb-b` (10.20.30.46) hold
/// the VIP 100.96.122.210/32 on `lo` and advertise it by OSPF (FRR stand-ins for
/// fulcrumd), so `sw` installs it with two next hops. Behind them, on the 192.168.7.0/24
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
        roles: vec![Role::Frr(
            seg_if([10, 20, 30, last]).network(&format!("{VIP_TWO}/32"), "0"),
        )],
    };
    let rs = |name: &str, ip: &str| NodeSpec {
        name: s(name),
        router: false,
        addrs: vec![addr("eth0", &format!("{ip}/24"))],
        routes: vec![],
        roles: vec![Role::Nginx(
            NginxConfig::default()
                .listen(ip, 80, false)
                .listen(ip, 8080, true),
        )],
    };
    Scenario {
        name: s("two"),
        description: s("seed 000 scenario two: client -> sw (OSPF, ECMP) -> lb-a | lb-b \
             (VIP 100.96.122.210/32 announced by FRR stand-ins) -> nginx rs1 | rs2"),
        switches: vec![s("seg"), s("inner")],
        nodes: vec![
            NodeSpec {
                name: s("client"),
                router: false,
                addrs: vec![addr("eth0", "10.12.26.20/24")],
                routes: vec![s("default via 10.12.26.1")],
                roles: vec![],
            },
            NodeSpec {
                name: s("sw"),
                router: true,
                addrs: vec![addr("eth0", "10.20.30.1/24"), addr("eth1", "10.12.26.1/24")],
                routes: vec![],
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
            s("ip -n {ns:lb-a} addr del 100.96.122.210/32 dev lo    # withdraw: sw keeps one nexthop"),
        ],
    }
}

/// Builds `scenario` in `lab`: switches, nodes, links, addresses, routes, then daemons.
pub fn build(lab: &Lab, scenario: &Scenario) -> Result<Running> {
    let mut run = Running::default();
    for name in &scenario.switches {
        run.switches.insert(name.clone(), lab.switch(name)?);
    }
    for spec in &scenario.nodes {
        let node = if spec.router {
            lab.router(&spec.name)?
        } else {
            lab.node(&spec.name)?
        };
        run.nodes.insert(spec.name.clone(), node);
    }
    for l in &scenario.links {
        let a = run.node(&l.a.0)?;
        let b = run.node(&l.b.0)?;
        lab.link(a, &l.a.1, b, &l.b.1)?;
    }
    for at in &scenario.attachments {
        let node = run.node(&at.node)?;
        let sw = run
            .switches
            .get(&at.switch)
            .ok_or_else(|| LabError::Config(format!("no switch {}", at.switch)))?;
        lab.attach(node, &at.ifname, sw)?;
    }
    for spec in &scenario.nodes {
        let node = run.node(&spec.name)?;
        for (ifname, cidr) in &spec.addrs {
            node.addr(ifname, cidr)?;
        }
        for r in &spec.routes {
            node.route(r)?;
        }
    }
    for spec in &scenario.nodes {
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

/// The scenario's hints with namespaces and run directories filled in.
pub fn hints(lab: &Lab, scenario: &Scenario) -> Vec<String> {
    scenario
        .hints
        .iter()
        .map(|h| {
            let mut h = h.clone();
            for n in &scenario.nodes {
                let node = lab.existing_node(&n.name);
                h = h.replace(&format!("{{ns:{}}}", n.name), node.netns());
                h = h.replace(
                    &format!("{{dir:{}}}", n.name),
                    &node.dir().to_string_lossy(),
                );
            }
            h
        })
        .collect()
}

/// A human-readable status: every FRR node's OSPF neighbors and the expected routes as
/// the kernel has them.
pub fn status(lab: &Lab, scenario: &Scenario) -> String {
    let mut out = String::new();
    for spec in &scenario.nodes {
        if !spec.roles.iter().any(|r| matches!(r, Role::Frr(_))) {
            continue;
        }
        let node = lab.existing_node(&spec.name);
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

    #[test]
    fn two_is_consistent() {
        let sc = by_name("two").expect("known");
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
                assert!(exists, "{} has no interface {ifname}", n.name);
            }
        }
        // Both balancer nodes announce the VIP; the switch expects ECMP over them.
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
        assert!(by_name("nope").is_none());
    }
}
