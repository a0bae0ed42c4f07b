//! Pluggable load balancers for a scenario's balancer nodes.
//!
//! What it does: renders and starts the peer stand-ins fulcrum is compared against, in
//! the balancer namespaces a [`Scenario`] names — nftables DNAT (`numgen inc mod N map`,
//! plus SNAT to the node's local address for FullNAT-like delivery) and HAProxy
//! (`mode tcp`, `balance roundrobin`, optionally `send-proxy-v2`) — and reads the nft
//! counter that shows how many connections a node balanced.
//!
//! And fulcrum itself ([`LbKind::Fulcrum`]): for each balancer node a fulcrumd
//! configuration rendered from the scenario's data ([`fulcrum_config`]: the node's
//! interfaces as `net_af_packet` DPDK ports with `net_tap` twins carrying its addresses,
//! the FRR stand-in's OSPF, the service with the scenario's delivery, TCP health checks,
//! the VIP announced over OSPF while its servers hold quorum), fulcrumd started in the
//! node's namespace in `dpdk` mode ([`FulcrumNode`]) and stopped again on drop.
//!
//! What it does not do: direct routing with the stand-ins. nftables cannot do LVS-DR
//! correctly without IPVS (a per-packet `fwd` has no per-connection scheduling state)
//! and HAProxy is a proxy, so the `dr` scenario needs fulcrum. It does not build
//! fulcrumd: the binaries are found next to the running executable (or named by
//! `FULCRUMD` and `FULCRUM`).

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::frr::{FrrConfig, NetworkType, OspfAuth};
use crate::lab::{pid_alive, Lab, Node};
use crate::scenario::{port_veth, Balancer, Delivery, NodeSpec, Role, Scenario, Service};

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
    /// fulcrumd itself in `dpdk` mode.
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
    /// The fulcrumd instances, in the scenario's balancer order (fulcrum only).
    pub fulcrum: Vec<FulcrumNode>,
}

impl RunningLb {
    /// The fulcrumd instance of balancer node `node`.
    pub fn fulcrum(&self, node: &str) -> Result<&FulcrumNode> {
        self.fulcrum
            .iter()
            .find(|f| f.node.name() == node)
            .ok_or_else(|| LabError::Config(format!("no fulcrumd in {node}")))
    }

    /// The fulcrumd instance of balancer node `node`, mutable (to kill or restart it).
    pub fn fulcrum_mut(&mut self, node: &str) -> Result<&mut FulcrumNode> {
        self.fulcrum
            .iter_mut()
            .find(|f| f.node.name() == node)
            .ok_or_else(|| LabError::Config(format!("no fulcrumd in {node}")))
    }

    /// Leaves every fulcrumd running when this is dropped (the detached lab command;
    /// the lab's removal stops them).
    pub fn detach(&mut self) {
        for f in &mut self.fulcrum {
            f.detach();
        }
    }
}

/// Checks that `kind` can serve `service` at all, before anything is started.
pub fn check_supported(kind: LbKind, service: &Service) -> Result<()> {
    match (kind, service.delivery) {
        (LbKind::Fulcrum, _) => Ok(()),
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
        fulcrum: Vec::new(),
    };
    if kind == LbKind::Fulcrum {
        let bins = FulcrumBins::find()?;
        let cpus = allowed_cpus();
        for (i, b) in svc.balancers.iter().enumerate() {
            let node = lab.existing_node(&b.node);
            let cpu = cpus.get(i % cpus.len().max(1)).copied().unwrap_or(0);
            let text = fulcrum_config(scenario, i, &fulcrum_dir(&node), cpu, node.netns())?;
            let mut f = FulcrumNode::prepare(node, &bins, &text)?;
            f.start()?;
            running.fulcrum.push(f);
            running.nodes.push(b.node.clone());
        }
        return Ok(running);
    }
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
            LbKind::Fulcrum => unreachable_fulcrum()?,
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

/// One line per balancer node: its nft counter or HAProxy pid, for `fulcrum-lab status`;
/// for a fulcrum node, fulcrumd's own views (`fulcrum services --stats`, `fulcrum vips`,
/// `fulcrum ospf neighbors`).
pub fn status(lab: &Lab, scenario: &Scenario) -> String {
    let mut out = String::new();
    for b in &scenario.service.balancers {
        let node = lab.existing_node(&b.node);
        if fulcrum_dir(&node).join("fulcrum.toml").exists() {
            out.push_str(&FulcrumNode::existing(node).status());
            continue;
        }
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

fn unreachable_fulcrum() -> Result<()> {
    Err(LabError::Config(
        "internal: fulcrum balancers are started before the stand-ins' loop".into(),
    ))
}

// ---------------------------------------------------------------------------------------
// fulcrum

/// Interval between two health checks of a real server in the rendered fulcrumd
/// configurations.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Timeout of one check attempt.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts after a failed one before the check counts as failed.
pub const CHECK_RETRIES: u32 = 1;
/// Delay before such a retry.
pub const CHECK_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Microseconds a fulcrumd forwarding loop sleeps when idle (the lab shares two CPUs
/// between every node).
pub const IDLE_SLEEP_US: u32 = 50;
/// How long [`FulcrumNode::start`] waits for the daemon to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERMed fulcrumd gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The longest time from a real server refusing connections to fulcrum marking it down
/// with the rendered check (keepalived's arithmetic, see `crates/health`): a failed
/// attempt ends at once, so down comes at most `interval + retries × retry_delay` after
/// the refusal starts.
pub fn detection_time() -> Duration {
    CHECK_INTERVAL + CHECK_RETRY_DELAY * CHECK_RETRIES
}

/// Paths of the `fulcrumd` and `fulcrum` binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulcrumBins {
    /// The daemon.
    pub fulcrumd: PathBuf,
    /// The CLI.
    pub fulcrum: PathBuf,
}

impl FulcrumBins {
    /// `$FULCRUMD` and `$FULCRUM` when set; otherwise the binaries next to the running
    /// executable (`target/<profile>/`), or one directory up for a test binary in
    /// `target/<profile>/deps/`.
    pub fn find() -> Result<FulcrumBins> {
        if let (Ok(d), Ok(c)) = (std::env::var("FULCRUMD"), std::env::var("FULCRUM")) {
            return FulcrumBins::check(PathBuf::from(d), PathBuf::from(c));
        }
        let exe = std::env::current_exe().map_err(|e| LabError::io("current_exe", e))?;
        let mut dirs = Vec::new();
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
            if let Some(up) = d.parent() {
                dirs.push(up.to_path_buf());
            }
        }
        for d in &dirs {
            let (fd, fc) = (d.join("fulcrumd"), d.join("fulcrum"));
            if fd.is_file() && fc.is_file() {
                return Ok(FulcrumBins {
                    fulcrumd: fd,
                    fulcrum: fc,
                });
            }
        }
        Err(LabError::Config(format!(
            "fulcrumd and fulcrum not found next to {} (build them: cargo build -p appliance \
             --bins, with the same profile and target directory), nor named by FULCRUMD and \
             FULCRUM",
            exe.display()
        )))
    }

    fn check(fulcrumd: PathBuf, fulcrum: PathBuf) -> Result<FulcrumBins> {
        for p in [&fulcrumd, &fulcrum] {
            if !p.is_file() {
                return Err(LabError::Config(format!("no binary {}", p.display())));
            }
        }
        Ok(FulcrumBins { fulcrumd, fulcrum })
    }
}

/// The CPUs this process may run on (`Cpus_allowed_list`), at least one.
pub fn allowed_cpus() -> Vec<usize> {
    let text = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = text
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("0");
    let cpus = parse_cpu_list(list);
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

/// Parses a kernel CPU list (`0-2,5`).
pub fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let mut ends = part.trim().splitn(2, '-');
        let lo = ends.next().and_then(|n| n.trim().parse::<usize>().ok());
        let hi = match ends.next() {
            Some(h) => h.trim().parse::<usize>().ok(),
            None => lo,
        };
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if hi >= lo && hi - lo < 4096 {
                out.extend(lo..=hi);
            }
        }
    }
    out
}

/// The directory of a node's fulcrumd: configuration, control socket, log, pid file and
/// DPDK runtime files.
pub fn fulcrum_dir(node: &Node) -> PathBuf {
    node.dir().join("fulcrum")
}

fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || LabError::Config(format!("bad address {cidr:?}"));
    let (a, l) = cidr.split_once('/').ok_or_else(bad)?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let l: u8 = l.parse().map_err(|_| bad())?;
    if l > 32 {
        return Err(bad());
    }
    Ok((a, l))
}

fn contains(net: &str, addr: Ipv4Addr) -> bool {
    match parse_cidr(net) {
        Ok((n, l)) => {
            let mask = if l == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(l))
            };
            u32::from(n) & mask == u32::from(addr) & mask
        }
        Err(_) => false,
    }
}

fn toml_area(area: &str) -> String {
    match area.parse::<u32>() {
        Ok(n) => Ipv4Addr::from(n).to_string(),
        Err(_) => area.to_string(),
    }
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("\"{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fulcrumd configuration of balancer `index` of `scenario`, with its control
/// socket under `dir`, both lcores on `cpu` and EAL `--file-prefix file_prefix`.
///
/// - every interface of the node but `lo` becomes a DPDK port
///   `net_af_packet<i>,iface=<`[`port_veth`]`>` whose twin carries the interface's name
///   and its addresses, except /32 host addresses (VIPs) and the FullNAT local address,
///   which the dataplane owns;
/// - `ip route` lines `PREFIX via GW` of the node become `[[route]]`s;
/// - the FRR stand-in's OSPF (router id, interfaces with network type, cost, hello and
///   dead intervals, MD5, the area of the `network` statement covering each interface)
///   becomes `[ospf]`, with MinLSInterval and MinLSArrival 0 as the stand-in's
///   `timers lsa min-arrival 0`; `ip ospf bfd` on an interface becomes `bfd = true`
///   and the stand-in's bfdd timers ([`FrrConfig::bfd_timers()`], see
///   [`crate::scenario::with_bfd`]) become `[bfd]`; its `network VIP/32` becomes the service's
///   `announce = "ospf"` (announced while the real servers hold quorum), any other
///   network outside the interfaces an `[[announce]]`;
/// - the service: round robin over the scenario's servers; FullNAT from the local
///   address, with a PROXY v2 header to the servers' PROXY port when they have one (the
///   servers see the client in `$proxy_protocol_addr`); NAT; DR; a TCP check of every
///   server ([`CHECK_INTERVAL`] …) on the port it is sent to.
pub fn fulcrum_config(
    scenario: &Scenario,
    index: usize,
    dir: &Path,
    cpu: usize,
    file_prefix: &str,
) -> Result<String> {
    let svc = &scenario.service;
    let b = svc
        .balancers
        .get(index)
        .ok_or_else(|| LabError::Config(format!("no balancer #{index}")))?;
    let spec: &NodeSpec = scenario
        .nodes
        .iter()
        .find(|n| n.name == b.node)
        .ok_or_else(|| LabError::Config(format!("no node {}", b.node)))?;
    let frr: Option<&FrrConfig> = spec.roles.iter().find_map(|r| match r {
        Role::Frr(c) => Some(c),
        Role::Nginx(_) => None,
    });
    let vip_net = format!("{}/32", svc.vip);
    // Interfaces in order of first appearance, with the addresses their twins carry.
    let mut ifaces: Vec<(String, Vec<String>)> = Vec::new();
    for (ifname, cidr) in &spec.addrs {
        if ifname == "lo" {
            continue;
        }
        let (a, len) = parse_cidr(cidr)?;
        let keep = len < 32 && Some(a) != b.local;
        let entry = match ifaces.iter_mut().find(|(n, _)| n == ifname) {
            Some(e) => e,
            None => {
                ifaces.push((ifname.clone(), Vec::new()));
                ifaces.last_mut().expect("just pushed")
            }
        };
        if keep {
            entry.1.push(cidr.clone());
        }
    }
    if ifaces.is_empty() {
        return Err(LabError::Config(format!(
            "balancer {} has no interface",
            b.node
        )));
    }
    let router_id = match frr {
        Some(f) => f.router_id,
        None => ifaces
            .iter()
            .flat_map(|(_, a)| a.iter())
            .next()
            .map(|c| parse_cidr(c).map(|(a, _)| a))
            .transpose()?
            .ok_or_else(|| LabError::Config(format!("balancer {} has no address", b.node)))?,
    };
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# fulcrumd for node {} of lab scenario {} (rendered by integration::lb)\n",
        b.node, scenario.name
    );
    let _ = writeln!(
        c,
        "[global]\nrouter_id = \"{router_id}\"\ncontrol_socket = \"{d}/control.sock\"\n\
         metrics = \"127.0.0.1:9477\"\n"
    );
    let _ = writeln!(
        c,
        "[dataplane]\nmode = \"dpdk\"\neal = [\"--no-huge\", \"-m\", \"256\", \"--no-pci\", \
         \"--file-prefix\", \"{file_prefix}\", \"--lcores=0@{cpu},1@{cpu}\", \"--log-level\", \
         \"lib.eal:warning\"]\nworkers = 1\nidle_sleep_us = {IDLE_SLEEP_US}\n"
    );
    for (i, (name, addrs)) in ifaces.iter().enumerate() {
        let _ = writeln!(
            c,
            "[[interface]]\nname = \"{name}\"\ndevice = \"net_af_packet{i},iface={}\"\n\
             addresses = [{}]\n",
            port_veth(name),
            quoted(addrs)
        );
    }
    for r in &spec.routes {
        let words: Vec<&str> = r.split_whitespace().collect();
        match words.as_slice() {
            [prefix, "via", gw] => {
                let prefix = if *prefix == "default" {
                    "0.0.0.0/0"
                } else {
                    prefix
                };
                let _ = writeln!(c, "[[route]]\nprefix = \"{prefix}\"\nvia = \"{gw}\"\n");
            }
            _ => {
                return Err(LabError::Config(format!(
                    "balancer {}: route {r:?} is not `PREFIX via GATEWAY`",
                    b.node
                )))
            }
        }
    }
    let mut announce_vip = false;
    if let Some((tx, rx, mult)) = frr.and_then(|f| f.bfd_timers) {
        let _ = writeln!(
            c,
            "[bfd]\nmin_tx_ms = {tx}\nmin_rx_ms = {rx}\nmultiplier = {mult}\n"
        );
    }
    if let Some(f) = frr {
        let _ = writeln!(
            c,
            "[ospf]\nmin_ls_interval = \"0s\"\nmin_ls_arrival = \"{}ms\"\n",
            f.lsa_min_arrival_ms.unwrap_or(1000)
        );
        for oi in &f.interfaces {
            let addrs: Vec<Ipv4Addr> = spec
                .addrs
                .iter()
                .filter(|(n, _)| n == &oi.name)
                .filter_map(|(_, cidr)| parse_cidr(cidr).ok().map(|(a, _)| a))
                .collect();
            let area = match &oi.area {
                Some(a) => a.clone(),
                None => f
                    .networks
                    .iter()
                    .find(|(net, _)| addrs.iter().any(|a| contains(net, *a)))
                    .map(|(_, area)| area.clone())
                    .ok_or_else(|| {
                        LabError::Config(format!(
                            "balancer {}: no OSPF network covers {}",
                            b.node, oi.name
                        ))
                    })?,
            };
            let _ = writeln!(
                c,
                "[[ospf.interface]]\nname = \"{}\"\narea = \"{}\"\nnetwork = \"{}\"",
                oi.name,
                toml_area(&area),
                match oi.network {
                    NetworkType::Broadcast => "broadcast",
                    NetworkType::PointToPoint => "point-to-point",
                }
            );
            if let Some(cost) = oi.cost {
                let _ = writeln!(c, "cost = {cost}");
            }
            if let Some(h) = oi.hello {
                let _ = writeln!(c, "hello_interval = \"{h}s\"");
            }
            if let Some(dead) = oi.dead {
                let _ = writeln!(c, "dead_interval = \"{dead}s\"");
            }
            if oi.passive {
                let _ = writeln!(c, "passive = true");
            }
            if oi.bfd {
                let _ = writeln!(c, "bfd = true");
            }
            match &oi.auth {
                OspfAuth::None => {}
                OspfAuth::Md5 { key_id, key } => {
                    let _ = writeln!(
                        c,
                        "authentication = {{ type = \"md5\", key_id = {key_id}, key = \"{key}\" }}"
                    );
                }
                OspfAuth::HmacSha256 { key_id, key } => {
                    let _ = writeln!(
                        c,
                        "authentication = {{ type = \"hmac-sha256\", key_id = {key_id}, \
                         key = \"{key}\" }}"
                    );
                }
            }
            let _ = writeln!(c);
        }
        for (net, _) in &f.networks {
            if *net == vip_net {
                announce_vip = true;
                continue;
            }
            let (n, _) = parse_cidr(net)?;
            let on_interface = spec
                .addrs
                .iter()
                .filter(|(i, _)| i != "lo")
                .filter_map(|(_, cidr)| parse_cidr(cidr).ok())
                .any(|(a, _)| contains(net, a) || n == a);
            if !on_interface {
                let _ = writeln!(c, "[[announce]]\nprefix = \"{net}\"\n");
            }
        }
    }
    let (forward, rs_port, client_address) = match svc.delivery {
        Delivery::FullNat => match svc.proxy_port {
            Some(p) => ("fnat", p, "proxy-v2"),
            None => ("fnat", svc.port, "none"),
        },
        Delivery::Nat => ("nat", svc.port, "none"),
        Delivery::Dr => ("dr", svc.port, "none"),
    };
    let _ = writeln!(
        c,
        "[[service]]\nname = \"{}\"\nvip = \"{}\"\nport = {}\nprotocol = \"tcp\"\n\
         scheduler = \"rr\"\nforward = \"{forward}\"",
        scenario.name, svc.vip, svc.port
    );
    if svc.delivery == Delivery::FullNat {
        let local = b.local.ok_or_else(|| {
            LabError::Config(format!("FullNAT balancer {} has no local address", b.node))
        })?;
        let _ = writeln!(
            c,
            "local_addresses = [\"{local}\"]\nclient_address = \"{client_address}\""
        );
    }
    let _ = writeln!(
        c,
        "announce = \"{}\"\nquorum = 1\ncheck = {{ type = \"tcp\", interval = \"{}ms\", \
         timeout = \"{}ms\", retries = {CHECK_RETRIES}, retry_delay = \"{}ms\" }}\n",
        if announce_vip { "ospf" } else { "none" },
        CHECK_INTERVAL.as_millis(),
        CHECK_TIMEOUT.as_millis(),
        CHECK_RETRY_DELAY.as_millis()
    );
    for rs in &svc.backends {
        let _ = writeln!(
            c,
            "[[service.real_server]]\naddress = \"{}\"\nport = {rs_port}\n",
            rs.addr
        );
    }
    Ok(c)
}

/// fulcrumd running (or prepared to run) in a balancer node: `<node dir>/fulcrum/`
/// holds `fulcrum.toml`, `control.sock`, `fulcrumd.log`, `fulcrumd.pid` and DPDK's
/// runtime files. Dropping it stops the daemon (SIGTERM, then SIGKILL after 10 s)
/// unless [`FulcrumNode::detach`] was called; the lab's removal stops it in any case.
#[derive(Debug)]
pub struct FulcrumNode {
    node: Node,
    dir: PathBuf,
    bins: Option<FulcrumBins>,
    pid: Option<u32>,
    detached: bool,
}

impl FulcrumNode {
    /// Writes `config` as the node's `fulcrum.toml` (nothing started yet).
    pub fn prepare(node: Node, bins: &FulcrumBins, config: &str) -> Result<FulcrumNode> {
        let dir = fulcrum_dir(&node);
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let path = dir.join("fulcrum.toml");
        fs::write(&path, config)
            .map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
        Ok(FulcrumNode {
            node,
            dir,
            bins: Some(bins.clone()),
            pid: None,
            detached: false,
        })
    }

    /// A handle on the fulcrumd of an existing (reopened) lab node, for its views; it
    /// never stops the daemon.
    pub fn existing(node: Node) -> FulcrumNode {
        let dir = fulcrum_dir(&node);
        let pid = fs::read_to_string(dir.join("fulcrumd.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .filter(|p| pid_alive(*p));
        FulcrumNode {
            node,
            dir,
            bins: FulcrumBins::find().ok(),
            pid,
            detached: true,
        }
    }

    /// The node fulcrumd runs in.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("fulcrum.toml")
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The daemon's log (stderr and stdout).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("fulcrumd.log")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid.filter(|p| pid_alive(*p))
    }

    fn bins(&self) -> Result<&FulcrumBins> {
        self.bins.as_ref().ok_or_else(|| {
            LabError::Config("fulcrumd and fulcrum binaries not found (FULCRUMD, FULCRUM)".into())
        })
    }

    /// Validates the configuration with `fulcrumd --check`.
    pub fn check_config(&self) -> Result<String> {
        let bins = self.bins()?;
        let d = bins.fulcrumd.to_string_lossy().into_owned();
        let c = self.config_path().to_string_lossy().into_owned();
        crate::lab::run_ok(&[&d, "--config", &c, "--check"])
    }

    /// Starts fulcrumd in the node (`RUNTIME_DIRECTORY` = its directory, `RUST_LOG=info`,
    /// output appended to its log) and waits until `fulcrum status` and
    /// `fulcrum services` answer.
    pub fn start(&mut self) -> Result<()> {
        if self.pid().is_some() {
            return Err(LabError::Config(format!(
                "fulcrumd already runs in {}",
                self.node.netns()
            )));
        }
        let bins = self.bins()?.clone();
        let d = self.dir.display().to_string();
        let pid_file = self.dir.join("fulcrumd.pid");
        let log = self.log_path();
        // The shell backgrounds fulcrumd (stdio detached, so the launcher's output ends)
        // and writes its pid; the lab tracks it as a daemon from then on.
        let script = format!(
            "RUNTIME_DIRECTORY='{d}' RUST_LOG=info '{}' --config '{d}/fulcrum.toml' \
             </dev/null >>'{}' 2>&1 & echo $! > '{d}/fulcrumd.pid'",
            bins.fulcrumd.display(),
            log.display()
        );
        let pid =
            self.node
                .start_daemon("fulcrumd", &["sh", "-c", &script], &pid_file, Some(&log))?;
        self.pid = Some(pid);
        let t0 = Instant::now();
        loop {
            let status = self.cli(&["status"]);
            let services = self.cli(&["services"]);
            if status.is_ok() && services.is_ok() {
                return Ok(());
            }
            if !pid_alive(pid) {
                self.pid = None;
                return Err(self.daemon_error("exited during start-up"));
            }
            if t0.elapsed() > START_TIMEOUT {
                return Err(self.daemon_error(&format!(
                    "no answer on {} within {START_TIMEOUT:?}: {status:?}",
                    self.socket().display()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn daemon_error(&self, detail: &str) -> LabError {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        LabError::Daemon {
            daemon: "fulcrumd".into(),
            node: self.node.netns().to_string(),
            detail: format!(
                "{detail}; log tail:\n{}",
                lines[lines.len().saturating_sub(15)..].join("\n")
            ),
        }
    }

    /// Runs `fulcrum --socket SOCKET args...` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let bins = self.bins()?;
        let f = bins.fulcrum.to_string_lossy().into_owned();
        let s = self.socket().to_string_lossy().into_owned();
        let mut argv = vec![f.as_str(), "--socket", s.as_str()];
        argv.extend_from_slice(args);
        crate::lab::run_ok(&argv)
    }

    /// `kill -9`: the daemon dies without a word to its neighbors (its twins vanish).
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            send(pid, nix::sys::signal::Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
    }

    /// SIGTERM (fulcrumd flushes its LSAs and closes its ports), SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            send(pid, nix::sys::signal::Signal::SIGTERM);
            if !wait_gone(pid, STOP_GRACE) {
                send(pid, nix::sys::signal::Signal::SIGKILL);
                wait_gone(pid, Duration::from_secs(5));
            }
        }
    }

    /// Leaves the daemon running when this handle is dropped.
    pub fn detach(&mut self) {
        self.detached = true;
    }

    /// fulcrumd's own views for `fulcrum-lab status` (`fulcrum bfd peers` too when the
    /// configuration has `[bfd]`).
    pub fn status(&self) -> String {
        let mut out = String::new();
        let name = self.node.name();
        match self.pid() {
            Some(pid) => {
                let _ = writeln!(out, "== {name} balancer: fulcrumd pid {pid} (dpdk mode)");
            }
            None => {
                let _ = writeln!(out, "== {name} balancer: fulcrumd is not running");
                return out;
            }
        }
        let ospf = fs::read_to_string(self.config_path())
            .map(|c| c.lines().any(|l| l.trim() == "[ospf]"))
            .unwrap_or(false);
        let bfd = fs::read_to_string(self.config_path())
            .map(|c| c.lines().any(|l| l.trim() == "[bfd]"))
            .unwrap_or(false);
        for (title, args) in [
            ("fulcrum services --stats", &["services", "--stats"][..]),
            ("fulcrum vips", &["vips"][..]),
            ("fulcrum ospf neighbors", &["ospf", "neighbors"][..]),
            ("fulcrum bfd peers", &["bfd", "peers"][..]),
        ] {
            if args[0] == "bfd" && !bfd {
                continue;
            }
            let _ = writeln!(out, "== {name}: {title}");
            if args[0] == "ospf" && !ospf {
                out.push_str("(no OSPF in this scenario: the VIP is on the client's segment)\n");
                continue;
            }
            match self.cli(args) {
                Ok(t) => out.push_str(t.trim_end()),
                Err(e) => {
                    let _ = write!(out, "unavailable: {e}");
                }
            }
            out.push('\n');
        }
        out
    }
}

fn send(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        if raw > 1 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig);
        }
    }
}

/// Waits until `pid` is gone (reaping it when it is our child); true if it went.
fn wait_gone(pid: u32, limit: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(raw),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
        if !pid_alive(pid) {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for FulcrumNode {
    fn drop(&mut self) {
        if !self.detached {
            self.stop();
        }
    }
}

/// Refuses (TCP reset) every connection from `sources` to `ports` in `node`, as a
/// stopped server would: an nftables table `flab_refuse`. [`unrefuse`] removes it.
pub fn refuse(node: &Node, sources: &[Ipv4Addr], ports: &[u16]) -> Result<()> {
    let src: Vec<String> = sources.iter().map(Ipv4Addr::to_string).collect();
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let rules = format!(
        "table inet flab_refuse {{\n chain in {{ type filter hook input priority 0; \
         policy accept;\n  ip saddr {{ {} }} tcp dport {{ {} }} reject with tcp reset\n }}\n}}\n",
        src.join(", "),
        ports.join(", ")
    );
    let path = node.dir().join("refuse.nft");
    fs::write(&path, rules).map_err(|e| LabError::io(format!("write {}", path.display()), e))?;
    node.exec_ok(&["nft", "-f", &path.to_string_lossy()])
        .map(drop)
}

/// Undoes [`refuse`].
pub fn unrefuse(node: &Node) -> Result<()> {
    node.exec_ok(&["nft", "delete", "table", "inet", "flab_refuse"])
        .map(drop)
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
        for sc in ["one", "two", "nat", "dr"] {
            let svc = by_name(sc).expect("scenario").service;
            assert!(check_supported(LbKind::Fulcrum, &svc).is_ok(), "{sc}");
        }
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

    #[test]
    fn fulcrum_config_for_scenario_two() {
        let sc = by_name("two").expect("two");
        let c = fulcrum_config(&sc, 1, Path::new("/r/lb-b/fulcrum"), 1, "flab-x-lb-b")
            .expect("renders");
        assert!(c.contains("router_id = \"10.20.30.46\""), "{c}");
        assert!(c.contains("control_socket = \"/r/lb-b/fulcrum/control.sock\""));
        assert!(c.contains("\"--file-prefix\", \"flab-x-lb-b\", \"--lcores=0@1,1@1\""));
        assert!(c.contains("idle_sleep_us = 50"));
        // Ports in the order of the node's interfaces; the twins carry the addresses but
        // the /32 VIP and the local address.
        assert!(c.contains(
            "name = \"eth0\"\ndevice = \"net_af_packet0,iface=dp-eth0\"\naddresses = [\"10.20.30.46/24\"]"
        ));
        assert!(c.contains(
            "name = \"eth1\"\ndevice = \"net_af_packet1,iface=dp-eth1\"\naddresses = [\"192.168.7.83/24\"]"
        ));
        assert!(!c.contains("192.168.7.195/24"));
        // The stand-in's OSPF: broadcast, hello 1, dead 4, area 0, min-arrival 0.
        assert!(c.contains("min_ls_arrival = \"0ms\""));
        assert!(c.contains(
            "name = \"eth0\"\narea = \"0.0.0.0\"\nnetwork = \"broadcast\"\nhello_interval = \"1s\"\ndead_interval = \"4s\""
        ));
        assert!(!c.contains("[[announce]]"), "the VIP is the service's: {c}");
        // FullNAT from the node's own local address, PROXY v2 to the servers' :8080,
        // announced over OSPF while a server is up.
        assert!(c.contains("forward = \"fnat\""));
        assert!(c.contains("local_addresses = [\"192.168.7.195\"]"));
        assert!(c.contains("client_address = \"proxy-v2\""));
        assert!(c.contains("announce = \"ospf\""));
        assert!(c.contains("check = { type = \"tcp\", interval = \"1000ms\""));
        assert!(c.contains("address = \"192.168.7.28\"\nport = 8080"));
        assert!(fulcrum_config(&sc, 2, Path::new("/r"), 0, "p").is_err());
    }

    #[test]
    fn fulcrum_config_with_bfd() {
        let plain = by_name("two").expect("two");
        let c = fulcrum_config(&plain, 0, Path::new("/r"), 0, "p").expect("renders");
        assert!(!c.contains("[bfd]") && !c.contains("bfd = true"), "{c}");
        let (tx, rx, mult) = crate::scenario::SEED_BFD;
        let sc = crate::scenario::with_bfd(plain, tx, rx, mult);
        let c = fulcrum_config(&sc, 0, Path::new("/r"), 0, "p").expect("renders");
        assert!(
            c.contains("[bfd]\nmin_tx_ms = 50\nmin_rx_ms = 50\nmultiplier = 3\n"),
            "{c}"
        );
        assert!(
            c.contains("dead_interval = \"4s\"\nbfd = true\n"),
            "bfd on the OSPF interface toward the router: {c}"
        );
        assert_eq!(c.matches("bfd = true").count(), 1, "{c}");
    }

    #[test]
    fn fulcrum_config_for_nat_and_dr() {
        let nat = by_name("nat").expect("nat");
        let c = fulcrum_config(&nat, 0, Path::new("/r"), 0, "p").expect("nat");
        // No FRR stand-in: the router id is the first address; the director keeps its
        // interface addresses (the VIP is one of them on this segment); no OSPF.
        assert!(c.contains("router_id = \"10.10.0.20\""), "{c}");
        assert!(c.contains("addresses = [\"10.10.0.20/24\"]"));
        assert!(c.contains("addresses = [\"192.168.211.20/24\"]"));
        assert!(!c.contains("[ospf]"));
        assert!(c.contains("forward = \"nat\""));
        assert!(c.contains("announce = \"none\""));
        assert!(!c.contains("local_addresses"));
        assert!(c.contains("address = \"192.168.211.12\"\nport = 80\n"));
        let dr = by_name("dr").expect("dr");
        let c = fulcrum_config(&dr, 0, Path::new("/r"), 0, "p").expect("dr");
        assert!(c.contains("forward = \"dr\""));
        assert!(c.contains("addresses = [\"192.168.150.11/24\"]"), "{c}");
        assert!(!c.contains("192.168.150.100/32"), "{c}");
        let one = by_name("one").expect("one");
        let c = fulcrum_config(&one, 0, Path::new("/r"), 0, "p").expect("one");
        assert!(c.contains("addresses = [\"192.168.7.82/24\"]"), "{c}");
        assert!(c.contains("local_addresses = [\"192.168.7.185\"]"));
    }

    #[test]
    fn cpu_lists_and_detection_time() {
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("1"), vec![1]);
        assert!(parse_cpu_list("x").is_empty());
        assert!(parse_cpu_list("3-1").is_empty());
        assert!(!allowed_cpus().is_empty());
        assert_eq!(detection_time(), Duration::from_secs(2));
        assert!(contains("10.20.30.0/24", Ipv4Addr::new(10, 20, 30, 45)));
        assert!(!contains("10.20.30.0/24", Ipv4Addr::new(10, 20, 31, 45)));
        assert!(contains("0.0.0.0/0", Ipv4Addr::new(1, 2, 3, 4)));
        assert!(parse_cidr("1.2.3.4/33").is_err());
        assert!(parse_cidr("1.2.3.4").is_err());
        assert_eq!(toml_area("0"), "0.0.0.0");
        assert_eq!(toml_area("0.0.0.1"), "0.0.0.1");
    }
}
