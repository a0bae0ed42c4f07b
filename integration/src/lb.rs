//! Pluggable load balancers for a scenario's balancer nodes.
//!
//! What it does: renders and starts the peer stand-ins fulcrum is compared against, in
//! the balancer namespaces a [`Scenario`] names — nftables DNAT (`numgen inc mod N map`,
//! plus SNAT to the node's local address for FullNAT-like delivery) and HAProxy
//! (`mode tcp`, `balance roundrobin`, optionally `send-proxy-v2`) — and reads the nft
//! counter that shows how many connections a node balanced.
//!
//! What it does not do: direct routing. nftables cannot do LVS-DR correctly without IPVS
//! (a per-packet `fwd` has no per-connection scheduling state) and HAProxy is a proxy,
//! so the `dr` scenario needs fulcrum. [`LbKind::Fulcrum`] is accepted by the API but
//! reports that fulcrumd's DPDK mode is not wired into the lab yet.

use std::fmt::Write as _;
use std::fs;

use crate::error::{LabError, Result};
use crate::lab::{Lab, Node};
use crate::scenario::{Balancer, Delivery, Scenario, Service};

/// The nftables table the NftDnat stand-in creates.
pub const NFT_TABLE: &str = "fulcrum_lb";
/// The named nft counter of connections DNATed to the VIP.
pub const NFT_COUNTER: &str = "vip_hits";

/// Which balancer runs in the scenario's balancer nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbKind {
    /// nftables DNAT in the kernel (`numgen inc mod N map {…}`), with SNAT to the node's
    /// local address when the scenario's delivery is FullNAT.
    NftDnat,
    /// HAProxy `mode tcp`, `balance roundrobin`.
    Haproxy {
        /// Send a PROXY v2 header to the servers' PROXY listener (`proxy_port`).
        send_proxy_v2: bool,
    },
    /// fulcrumd itself (not yet available in the lab).
    Fulcrum,
}

impl LbKind {
    /// Parses the `--lb` argument: `nft`, `haproxy`, `haproxy-pp` (send-proxy-v2) or
    /// `fulcrum`.
    pub fn parse(s: &str) -> Option<LbKind> {
        match s {
            "nft" => Some(LbKind::NftDnat),
            "haproxy" => Some(LbKind::Haproxy {
                send_proxy_v2: false,
            }),
            "haproxy-pp" => Some(LbKind::Haproxy {
                send_proxy_v2: true,
            }),
            "fulcrum" => Some(LbKind::Fulcrum),
            _ => None,
        }
    }

    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            LbKind::NftDnat => "nftables DNAT",
            LbKind::Haproxy {
                send_proxy_v2: false,
            } => "HAProxy mode tcp",
            LbKind::Haproxy {
                send_proxy_v2: true,
            } => "HAProxy mode tcp + send-proxy-v2",
            LbKind::Fulcrum => "fulcrum",
        }
    }
}

/// What [`start`] started.
#[derive(Debug)]
pub struct RunningLb {
    /// The kind started.
    pub kind: LbKind,
    /// Balancer node names, in the scenario's order.
    pub nodes: Vec<String>,
    /// HAProxy master pids by node (empty for nftables).
    pub haproxy_pids: Vec<(String, u32)>,
}

/// The error for a fulcrum balancer until its DPDK mode is wired into the lab.
pub fn fulcrum_unsupported() -> LabError {
    LabError::Config("not yet supported: fulcrumd dpdk mode lands with issue 6".into())
}

/// Checks that `kind` can serve `service` at all, before anything is started.
pub fn check_supported(kind: LbKind, service: &Service) -> Result<()> {
    match (kind, service.delivery) {
        (LbKind::Fulcrum, _) => Err(fulcrum_unsupported()),
        (_, Delivery::Dr) => Err(LabError::Config(format!(
            "{} cannot do direct routing (MAC rewrite, replies bypassing the balancer): \
             scenario dr needs fulcrum; its topology alone is built",
            kind.name()
        ))),
        (
            LbKind::Haproxy {
                send_proxy_v2: true,
            },
            _,
        ) if service.proxy_port.is_none() => Err(LabError::Config(
            "send-proxy-v2 needs a scenario whose servers have a PROXY listener".into(),
        )),
        _ => Ok(()),
    }
}

/// The nftables ruleset for one balancer node.
pub fn nft_rules(service: &Service, balancer: &Balancer) -> Result<String> {
    if service.backends.is_empty() {
        return Err(LabError::Config("no backends".into()));
    }
    let n = service.backends.len();
    let map: Vec<String> = service
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i} : {}", b.addr))
        .collect();
    let set: Vec<String> = service
        .backends
        .iter()
        .map(|b| b.addr.to_string())
        .collect();
    let mut r = String::new();
    let _ = writeln!(r, "table ip {NFT_TABLE} {{");
    let _ = writeln!(r, "  counter {NFT_COUNTER} {{ }}");
    let _ = writeln!(
        r,
        "  chain pre {{ type nat hook prerouting priority dstnat; policy accept;"
    );
    let _ = writeln!(
        r,
        "    ip daddr {} tcp dport {} counter name \"{NFT_COUNTER}\" dnat to numgen inc mod {n} map {{ {} }}",
        service.vip,
        service.port,
        map.join(", ")
    );
    let _ = writeln!(r, "  }}");
    if service.delivery == Delivery::FullNat {
        let local = balancer.local.ok_or_else(|| {
            LabError::Config(format!(
                "FullNAT balancer {} has no local address",
                balancer.node
            ))
        })?;
        let _ = writeln!(
            r,
            "  chain post {{ type nat hook postrouting priority srcnat; policy accept;"
        );
        let _ = writeln!(
            r,
            "    ip daddr {{ {} }} tcp dport {} snat to {local}",
            set.join(", "),
            service.port
        );
        let _ = writeln!(r, "  }}");
    }
    let _ = writeln!(r, "}}");
    Ok(r)
}

/// The HAProxy configuration for one balancer node, with its pid file under `dir`.
pub fn haproxy_config(
    service: &Service,
    balancer: &Balancer,
    send_proxy_v2: bool,
    dir: &str,
) -> Result<String> {
    let port = if send_proxy_v2 {
        service
            .proxy_port
            .ok_or_else(|| LabError::Config("send-proxy-v2 needs the servers' PROXY port".into()))?
    } else {
        service.port
    };
    let mut c = String::new();
    let _ = writeln!(
        c,
        "global\n  daemon\n  pidfile {dir}/haproxy.pid\n  maxconn 4096\n"
    );
    let _ = writeln!(
        c,
        "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
    );
    let _ = writeln!(
        c,
        "frontend vip\n  bind {}:{}\n  default_backend servers\n",
        service.vip, service.port
    );
    let _ = writeln!(c, "backend servers\n  balance roundrobin");
    if let Some(local) = balancer.local {
        let _ = writeln!(c, "  source {local}");
    }
    let pp = if send_proxy_v2 { " send-proxy-v2" } else { "" };
    for b in &service.backends {
        let _ = writeln!(c, "  server {} {}:{port}{pp}", b.node, b.addr);
    }
    Ok(c)
}

fn start_haproxy(node: &Node, cfg: &str) -> Result<u32> {
    let dir = node.dir().join("haproxy");
    fs::create_dir_all(&dir).map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let conf = dir.join("haproxy.cfg");
    fs::write(&conf, cfg).map_err(|e| LabError::io(format!("write {}", conf.display()), e))?;
    let c = conf.to_string_lossy().into_owned();
    node.start_daemon(
        "haproxy",
        &["haproxy", "-q", "-f", &c],
        &dir.join("haproxy.pid"),
        None,
    )
}

/// Starts `kind` in every balancer node of `scenario` (built in `lab`).
pub fn start(lab: &Lab, scenario: &Scenario, kind: LbKind) -> Result<RunningLb> {
    let svc = &scenario.service;
    check_supported(kind, svc)?;
    let mut running = RunningLb {
        kind,
        nodes: Vec::new(),
        haproxy_pids: Vec::new(),
    };
    for b in &svc.balancers {
        let node = lab.existing_node(&b.node);
        match kind {
            LbKind::NftDnat => {
                let rules = nft_rules(svc, b)?;
                let path = node.dir().join("lb.nft");
                fs::write(&path, rules)
                    .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
                node.exec_ok(&["nft", "-f", &path.to_string_lossy()])?;
            }
            LbKind::Haproxy { send_proxy_v2 } => {
                let dir = node.dir().join("haproxy");
                let cfg = haproxy_config(svc, b, send_proxy_v2, &dir.to_string_lossy())?;
                running
                    .haproxy_pids
                    .push((b.node.clone(), start_haproxy(&node, &cfg)?));
            }
            LbKind::Fulcrum => return Err(fulcrum_unsupported()),
        }
        running.nodes.push(b.node.clone());
    }
    Ok(running)
}

/// Parses `nft list counter` output: the `packets N` figure.
pub fn parse_nft_packets(text: &str) -> Result<u64> {
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "packets" {
            return words
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| LabError::Parse {
                    what: "nft counter".into(),
                    detail: format!("no number after `packets` in {text:?}"),
                });
        }
    }
    Err(LabError::Parse {
        what: "nft counter".into(),
        detail: format!("no `packets` in {text:?}"),
    })
}

/// Connections the NftDnat stand-in in `node` has balanced (its named counter; NAT
/// chains see the first packet of each connection only).
pub fn nft_connections(node: &Node) -> Result<u64> {
    let out = node.exec_ok(&["nft", "list", "counter", "ip", NFT_TABLE, NFT_COUNTER])?;
    parse_nft_packets(&out)
}

/// One line per balancer node: its nft counter or HAProxy pid, for `fulcrum-lab status`.
pub fn status(lab: &Lab, scenario: &Scenario) -> String {
    let mut out = String::new();
    for b in &scenario.service.balancers {
        let node = lab.existing_node(&b.node);
        let nft = nft_connections(&node).ok();
        let haproxy = fs::read_to_string(node.dir().join("haproxy").join("haproxy.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|p| crate::lab::pid_alive(*p));
        let what = match (nft, haproxy) {
            (Some(n), _) => format!("nftables DNAT, {n} connections balanced"),
            (None, Some(pid)) => format!("HAProxy pid {pid}"),
            (None, None) => "no balancer running".to_string(),
        };
        let _ = writeln!(out, "== {} balancer: {what}", b.node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::by_name;

    #[test]
    fn nft_fullnat_rules() {
        let sc = by_name("one").expect("one");
        let r = nft_rules(&sc.service, &sc.service.balancers[0]).expect("rules");
        assert!(r.contains(
            "ip daddr 192.168.7.182 tcp dport 80 counter name \"vip_hits\" dnat to numgen inc \
             mod 2 map { 0 : 192.168.7.27, 1 : 192.168.7.28 }"
        ));
        assert!(r.contains(
            "ip daddr { 192.168.7.27, 192.168.7.28 } tcp dport 80 snat to 192.168.7.185"
        ));
        let two = by_name("two").expect("two");
        let rb = nft_rules(&two.service, &two.service.balancers[1]).expect("rules");
        assert!(rb.contains("snat to 192.168.7.195"));
    }

    #[test]
    fn nft_nat_rules_have_no_snat() {
        let sc = by_name("nat").expect("nat");
        let r = nft_rules(&sc.service, &sc.service.balancers[0]).expect("rules");
        assert!(r.contains("ip daddr 10.10.0.20 tcp dport 80"));
        assert!(!r.contains("snat"));
        let mut svc = sc.service.clone();
        svc.backends.clear();
        assert!(nft_rules(&svc, &sc.service.balancers[0]).is_err());
    }

    #[test]
    fn haproxy_configs() {
        let sc = by_name("one").expect("one");
        let b = &sc.service.balancers[0];
        let plain = haproxy_config(&sc.service, b, false, "/d").expect("cfg");
        assert!(plain.contains("pidfile /d/haproxy.pid"));
        assert!(plain.contains("mode tcp"));
        assert!(plain.contains("bind 192.168.7.182:80"));
        assert!(plain.contains("balance roundrobin"));
        assert!(plain.contains("source 192.168.7.185"));
        assert!(plain.contains("server rs1 192.168.7.27:80\n"));
        let pp = haproxy_config(&sc.service, b, true, "/d").expect("cfg");
        assert!(pp.contains("server rs2 192.168.7.28:8080 send-proxy-v2"));
        let dr = by_name("dr").expect("dr");
        assert!(haproxy_config(&dr.service, &dr.service.balancers[0], true, "/d").is_err());
    }

    #[test]
    fn support_matrix() {
        let nat = by_name("nat").expect("nat").service;
        let dr = by_name("dr").expect("dr").service;
        assert!(check_supported(LbKind::NftDnat, &nat).is_ok());
        assert!(check_supported(
            LbKind::Haproxy {
                send_proxy_v2: true
            },
            &nat
        )
        .is_ok());
        let e = check_supported(LbKind::Fulcrum, &nat).expect_err("fulcrum");
        assert!(e
            .to_string()
            .contains("not yet supported: fulcrumd dpdk mode lands with issue 6"));
        let e = check_supported(LbKind::NftDnat, &dr).expect_err("dr");
        assert!(e.to_string().contains("needs fulcrum"), "{e}");
        assert!(check_supported(
            LbKind::Haproxy {
                send_proxy_v2: false
            },
            &dr
        )
        .is_err());
        assert_eq!(LbKind::parse("nft"), Some(LbKind::NftDnat));
        assert_eq!(
            LbKind::parse("haproxy-pp"),
            Some(LbKind::Haproxy {
                send_proxy_v2: true
            })
        );
        assert_eq!(LbKind::parse("ipvs"), None);
    }

    #[test]
    fn parses_nft_counter() {
        let text =
            "table ip fulcrum_lb {\n\tcounter vip_hits {\n\t\tpackets 1000 bytes 60000\n\t}\n}\n";
        assert_eq!(parse_nft_packets(text).expect("parses"), 1000);
        assert!(parse_nft_packets("counter vip_hits { }").is_err());
        assert!(parse_nft_packets("packets lots").is_err());
    }
}
