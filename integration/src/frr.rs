//! FRR (zebra + ospfd, optionally bfdd) in a lab node, configured from typed data.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{LabError, Result};
use crate::lab::{run, run_ok, Node};
use crate::wait::wait_for;

/// OSPF interface network type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkType {
    /// Broadcast (DR election; waits the dead interval before electing).
    Broadcast,
    /// Point-to-point (no DR; fastest adjacency).
    PointToPoint,
}

/// OSPF packet authentication on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OspfAuth {
    /// No authentication (type 0).
    #[default]
    None,
    /// Keyed MD5 (RFC 2328 appendix D).
    Md5 {
        /// Key id.
        key_id: u8,
        /// Shared secret.
        key: String,
    },
    /// HMAC-SHA-256 (RFC 5709). BIRD supports it; FRR 8.4's ospfd does not (key chains
    /// for OSPFv2 arrived later), so [`FrrConfig::render`] rejects it.
    HmacSha256 {
        /// Key id.
        key_id: u8,
        /// Shared secret.
        key: String,
    },
}

/// One OSPF interface of an FRR router.
#[derive(Debug, Clone, PartialEq)]
pub struct OspfInterface {
    /// Interface name in the node.
    pub name: String,
    /// Network type.
    pub network: NetworkType,
    /// `ip ospf area` (interface-level area) when set; otherwise `network` statements
    /// decide which addresses run OSPF.
    pub area: Option<String>,
    /// `ip ospf cost`.
    pub cost: Option<u32>,
    /// `ip ospf hello-interval` in seconds.
    pub hello: Option<u16>,
    /// `ip ospf dead-interval` in seconds.
    pub dead: Option<u16>,
    /// Authentication.
    pub auth: OspfAuth,
    /// `passive-interface`.
    pub passive: bool,
    /// `ip ospf bfd` (starts bfdd).
    pub bfd: bool,
}

impl OspfInterface {
    /// A point-to-point interface with FRR's default timers.
    pub fn p2p(name: &str) -> Self {
        Self::new(name, NetworkType::PointToPoint)
    }

    /// A broadcast interface with FRR's default timers.
    pub fn broadcast(name: &str) -> Self {
        Self::new(name, NetworkType::Broadcast)
    }

    fn new(name: &str, network: NetworkType) -> Self {
        OspfInterface {
            name: name.to_string(),
            network,
            area: None,
            cost: None,
            hello: None,
            dead: None,
            auth: OspfAuth::None,
            passive: false,
            bfd: false,
        }
    }

    /// Sets hello and dead intervals (seconds).
    pub fn timers(mut self, hello: u16, dead: u16) -> Self {
        self.hello = Some(hello);
        self.dead = Some(dead);
        self
    }

    /// Sets the cost.
    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = Some(cost);
        self
    }

    /// Puts the interface in `area` (`ip ospf area`).
    pub fn area(mut self, area: &str) -> Self {
        self.area = Some(area.to_string());
        self
    }

    /// Sets authentication.
    pub fn auth(mut self, auth: OspfAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Enables BFD on the interface.
    pub fn bfd(mut self) -> Self {
        self.bfd = true;
        self
    }

    /// Makes the interface passive.
    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }
}

/// A typed FRR configuration for one router.
#[derive(Debug, Clone, PartialEq)]
pub struct FrrConfig {
    /// `ospf router-id`.
    pub router_id: Ipv4Addr,
    /// OSPF interfaces.
    pub interfaces: Vec<OspfInterface>,
    /// `network PREFIX area AREA` statements.
    pub networks: Vec<(String, String)>,
    /// `timers lsa min-arrival` in ms (FRR's default 1000 ms slows labs to ~11 s).
    pub lsa_min_arrival_ms: Option<u32>,
    /// `redistribute X` (connected, static, kernel).
    pub redistribute: Vec<String>,
    /// Raw lines appended inside `router ospf`.
    pub extra_ospf: Vec<String>,
    /// Raw lines appended to ospfd.conf after `router ospf` (key chains, route maps).
    pub extra_global: Vec<String>,
    /// Raw lines for zebra.conf (static routes, for instance).
    pub extra_zebra: Vec<String>,
    /// BFD timers for the `ip ospf bfd` sessions: (transmit ms, receive ms, multiplier),
    /// rendered as bfdd profile `lab` and `ip ospf bfd profile lab`; `None` keeps FRR's
    /// defaults (300 ms × 3).
    pub bfd_timers: Option<(u32, u32, u8)>,
}

impl FrrConfig {
    /// An empty configuration with `timers lsa min-arrival 0` (fast labs).
    pub fn new(router_id: Ipv4Addr) -> Self {
        FrrConfig {
            router_id,
            interfaces: Vec::new(),
            networks: Vec::new(),
            lsa_min_arrival_ms: Some(0),
            redistribute: Vec::new(),
            extra_ospf: Vec::new(),
            extra_global: Vec::new(),
            extra_zebra: Vec::new(),
            bfd_timers: None,
        }
    }

    /// Sets the BFD timers of the `ip ospf bfd` sessions (see [`FrrConfig::bfd_timers`]).
    pub fn bfd_timers(mut self, tx_ms: u32, rx_ms: u32, multiplier: u8) -> Self {
        self.bfd_timers = Some((tx_ms, rx_ms, multiplier));
        self
    }

    /// Adds an interface.
    pub fn interface(mut self, iface: OspfInterface) -> Self {
        self.interfaces.push(iface);
        self
    }

    /// Adds `network PREFIX area AREA`.
    pub fn network(mut self, prefix: &str, area: &str) -> Self {
        self.networks.push((prefix.to_string(), area.to_string()));
        self
    }

    /// Adds `redistribute WHAT`.
    pub fn redistribute(mut self, what: &str) -> Self {
        self.redistribute.push(what.to_string());
        self
    }

    /// Adds a raw line inside `router ospf`.
    pub fn extra(mut self, line: &str) -> Self {
        self.extra_ospf.push(line.to_string());
        self
    }

    /// True when some interface asks for BFD (bfdd is then started).
    pub fn uses_bfd(&self) -> bool {
        self.interfaces.iter().any(|i| i.bfd)
    }

    /// Renders `(zebra.conf, ospfd.conf, bfdd.conf)` for a router whose logs go to `dir`.
    ///
    /// FRR refuses `ip ospf area` on an interface while `network` statements exist (and
    /// the reverse), so a configuration mixing both is rejected here.
    pub fn render(&self, hostname: &str, dir: &str) -> Result<(String, String, String)> {
        if !self.networks.is_empty() {
            if let Some(i) = self.interfaces.iter().find(|i| i.area.is_some()) {
                return Err(LabError::Config(format!(
                    "interface {} uses `ip ospf area` while `network` statements exist;                      FRR accepts one style or the other",
                    i.name
                )));
            }
        }
        let mut zebra = format!("hostname {hostname}\nlog file {dir}/zebra.log\n!\n");
        for line in &self.extra_zebra {
            let _ = writeln!(zebra, "{line}");
        }
        let mut ospf = format!("hostname {hostname}\nlog file {dir}/ospfd.log\n!\n");
        for i in &self.interfaces {
            let _ = writeln!(ospf, "interface {}", i.name);
            let net = match i.network {
                NetworkType::Broadcast => "broadcast",
                NetworkType::PointToPoint => "point-to-point",
            };
            let _ = writeln!(ospf, " ip ospf network {net}");
            if let Some(area) = &i.area {
                let _ = writeln!(ospf, " ip ospf area {area}");
            }
            if let Some(c) = i.cost {
                let _ = writeln!(ospf, " ip ospf cost {c}");
            }
            if let Some(h) = i.hello {
                let _ = writeln!(ospf, " ip ospf hello-interval {h}");
            }
            if let Some(d) = i.dead {
                let _ = writeln!(ospf, " ip ospf dead-interval {d}");
            }
            match &i.auth {
                OspfAuth::None => {}
                OspfAuth::Md5 { key_id, key } => {
                    check_key(key)?;
                    let _ = writeln!(ospf, " ip ospf authentication message-digest");
                    let _ = writeln!(ospf, " ip ospf message-digest-key {key_id} md5 {key}");
                }
                OspfAuth::HmacSha256 { .. } => {
                    return Err(LabError::Config(format!(
                        "interface {}: FRR 8.4 ospfd has no HMAC-SHA-256 (RFC 5709) \
                         authentication; use BIRD for that peer",
                        i.name
                    )))
                }
            }
            if i.bfd {
                // FRR 8.4 takes the profile only after a plain `ip ospf bfd`.
                let _ = writeln!(ospf, " ip ospf bfd");
                if self.bfd_timers.is_some() {
                    let _ = writeln!(ospf, " ip ospf bfd profile lab");
                }
            }
            let _ = writeln!(ospf, "!");
        }
        let _ = writeln!(ospf, "router ospf");
        let _ = writeln!(ospf, " ospf router-id {}", self.router_id);
        if let Some(ms) = self.lsa_min_arrival_ms {
            let _ = writeln!(ospf, " timers lsa min-arrival {ms}");
        }
        for i in self.interfaces.iter().filter(|i| i.passive) {
            let _ = writeln!(ospf, " passive-interface {}", i.name);
        }
        for (prefix, area) in &self.networks {
            let _ = writeln!(ospf, " network {prefix} area {area}");
        }
        for r in &self.redistribute {
            let _ = writeln!(ospf, " redistribute {r}");
        }
        for line in &self.extra_ospf {
            let _ = writeln!(ospf, " {line}");
        }
        let _ = writeln!(ospf, "!");
        for line in &self.extra_global {
            let _ = writeln!(ospf, "{line}");
        }
        let mut bfdd = format!("hostname {hostname}\nlog file {dir}/bfdd.log\n!\n");
        if let Some((tx, rx, mult)) = self.bfd_timers {
            let _ = write!(
                bfdd,
                "bfd\n profile lab\n  detect-multiplier {mult}\n  receive-interval {rx}\n  \
                 transmit-interval {tx}\n !\n!\n"
            );
        }
        Ok((zebra, ospf, bfdd))
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 16 || key.chars().any(|c| c.is_whitespace()) {
        Err(LabError::Config(format!(
            "OSPF MD5 key {key:?} must be 1..=16 characters without spaces"
        )))
    } else {
        Ok(())
    }
}

/// An FRR instance running in a node.
#[derive(Debug, Clone)]
pub struct Frr {
    node: Node,
    dir: PathBuf,
}

/// One OSPF neighbor as FRR or BIRD reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbor's router id.
    pub router_id: String,
    /// The state string (`Full/-`, `Full/DR`, `Full/PtP`, `2-Way/DROther`, ...).
    pub state: String,
}

impl Neighbor {
    /// True when the adjacency is Full.
    pub fn is_full(&self) -> bool {
        self.state.starts_with("Full")
    }
}

/// Parses `show ip ospf neighbor json` (FRR 8.x: `neighbors` maps a router id to an array
/// of adjacencies with `nbrState` or, in older releases, `state`).
pub fn parse_frr_neighbors(json: &Value) -> Result<Vec<Neighbor>> {
    let map = json
        .get("neighbors")
        .and_then(Value::as_object)
        .ok_or_else(|| LabError::Parse {
            what: "show ip ospf neighbor json".into(),
            detail: format!("no neighbors object in {json}"),
        })?;
    let mut out = Vec::new();
    for (rid, v) in map {
        let entries: Vec<&Value> = match v {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        };
        for e in entries {
            let state = e
                .get("nbrState")
                .or_else(|| e.get("state"))
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            out.push(Neighbor {
                router_id: rid.clone(),
                state,
            });
        }
    }
    Ok(out)
}

impl Node {
    /// Writes zebra.conf/ospfd.conf (and bfdd.conf) under `<node dir>/frr` (owned by
    /// `frr`) and starts zebra, then ospfd, then bfdd when an interface uses BFD.
    pub fn frr(&self, cfg: &FrrConfig) -> Result<Frr> {
        let dir = self.dir().join("frr");
        let d = dir
            .to_str()
            .ok_or_else(|| LabError::Config(format!("run dir {} is not UTF-8", dir.display())))?;
        let (zebra, ospfd, bfdd) = cfg.render(self.name(), d)?;
        let run_dir = dir.join("run");
        fs::create_dir_all(&run_dir)
            .map_err(|e| LabError::io(format!("create {}", run_dir.display()), e))?;
        for (name, text) in [
            ("zebra.conf", &zebra),
            ("ospfd.conf", &ospfd),
            ("bfdd.conf", &bfdd),
        ] {
            let p = dir.join(name);
            fs::write(&p, text).map_err(|e| LabError::io(format!("write {}", p.display()), e))?;
        }
        run_ok(&["chown", "-R", "frr:frr", d])?;
        self.lab.state().mark_frr();
        let mut daemons = vec!["zebra", "ospfd"];
        if cfg.uses_bfd() {
            daemons.push("bfdd");
        }
        for daemon in daemons {
            let bin = format!("/usr/lib/frr/{daemon}");
            let conf = format!("{d}/{daemon}.conf");
            let pid = format!("{d}/run/{daemon}.pid");
            let zsock = format!("{d}/run/zserv.api");
            let vty = format!("{d}/run");
            let bfdctl = format!("{d}/run/bfdd.sock");
            let mut args = vec![
                bin.as_str(),
                "-d",
                "-f",
                &conf,
                "-i",
                &pid,
                "-z",
                &zsock,
                "--vty_socket",
                &vty,
                "-P",
                "0",
            ];
            if daemon == "bfdd" {
                args.extend(["--bfdctl", bfdctl.as_str()]);
            }
            let log = dir.join(format!("{daemon}.log"));
            self.start_daemon(daemon, &args, &PathBuf::from(&pid), Some(&log))?;
        }
        Ok(Frr {
            node: self.clone(),
            dir,
        })
    }

    /// A handle on an FRR instance already running in this node (for reopened labs).
    pub fn existing_frr(&self) -> Frr {
        Frr {
            node: self.clone(),
            dir: self.dir().join("frr"),
        }
    }
}

impl Frr {
    /// The node FRR runs in.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The pid of one of its daemons (`zebra`, `ospfd`, `bfdd`) from its pid file.
    pub fn pid(&self, daemon: &str) -> Result<u32> {
        let path = self.dir.join("run").join(format!("{daemon}.pid"));
        let text = fs::read_to_string(&path)
            .map_err(|e| LabError::io(format!("read {}", path.display()), e))?;
        text.trim().parse().map_err(|_| LabError::Parse {
            what: path.display().to_string(),
            detail: format!("not a pid: {text:?}"),
        })
    }

    /// Sends `sig` to one of its daemons (SIGTERM: ospfd flushes its LSAs; SIGKILL: the
    /// neighbors notice after the dead interval).
    pub fn signal(&self, daemon: &str, sig: nix::sys::signal::Signal) -> Result<()> {
        let pid = self.pid(daemon)?;
        let raw = i32::try_from(pid).map_err(|_| LabError::Parse {
            what: format!("{daemon} pid"),
            detail: pid.to_string(),
        })?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig)
            .map_err(|e| LabError::io(format!("signal {daemon} ({pid})"), std::io::Error::from(e)))
    }

    /// Runs vtysh commands and returns the raw text.
    pub fn vtysh_text(&self, cmds: &[&str]) -> Result<String> {
        let vty = self.dir.join("run");
        let vty = vty.to_string_lossy();
        let mut args = vec!["vtysh", "--vty_socket", vty.as_ref()];
        for c in cmds {
            args.push("-c");
            args.push(c);
        }
        let out = run(&args)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(LabError::Command {
                cmd: args.join(" "),
                status: out.status.to_string(),
                stderr: format!("{}{}", String::from_utf8_lossy(&out.stderr).trim(), text),
            });
        }
        Ok(text)
    }

    /// Runs vtysh `json` commands; one command gives its JSON value, several give an
    /// array of their values.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<Value> {
        let text = self.vtysh_text(cmds)?;
        let values: std::result::Result<Vec<Value>, _> = serde_json::Deserializer::from_str(&text)
            .into_iter()
            .collect();
        let mut values = values.map_err(|e| LabError::Parse {
            what: format!("vtysh {cmds:?}"),
            detail: format!("{e}: {text}"),
        })?;
        if cmds.len() == 1 && values.len() == 1 {
            Ok(values.remove(0))
        } else {
            Ok(Value::Array(values))
        }
    }

    /// The OSPF neighbors.
    pub fn neighbors(&self) -> Result<Vec<Neighbor>> {
        parse_frr_neighbors(&self.vtysh(&["show ip ospf neighbor json"])?)
    }

    /// Waits until bfdd reports the session with `peer` (an address) as up.
    pub fn wait_bfd_up(&self, peer: &str, deadline: Duration) -> Result<()> {
        let what = format!(
            "BFD session with {peer} in {} to come up",
            self.node.netns()
        );
        wait_for(deadline, &what, || {
            let v = self.vtysh(&["show bfd peers json"])?;
            let up = v.as_array().is_some_and(|peers| {
                peers.iter().any(|p| {
                    p.get("peer").and_then(Value::as_str) == Some(peer)
                        && p.get("status").and_then(Value::as_str) == Some("up")
                })
            });
            Ok(if up {
                Ok(())
            } else {
                Err(format!("peers {v}"))
            })
        })
    }

    /// Waits until neighbor `router_id` is Full.
    pub fn wait_neighbor_full(&self, router_id: &str, deadline: Duration) -> Result<()> {
        let what = format!(
            "FRR in {} to reach Full with {router_id}",
            self.node.netns()
        );
        wait_for(deadline, &what, || {
            let n = self.neighbors()?;
            Ok(
                if n.iter().any(|n| n.router_id == router_id && n.is_full()) {
                    Ok(())
                } else {
                    Err(format!("neighbors {n:?}"))
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_p2p_md5_and_networks() {
        let cfg = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1))
            .interface(
                OspfInterface::p2p("eth0")
                    .timers(1, 4)
                    .cost(7)
                    .auth(OspfAuth::Md5 {
                        key_id: 3,
                        key: "s3cret".into(),
                    }),
            )
            .interface(OspfInterface::broadcast("eth1").passive())
            .network("10.0.0.0/30", "0")
            .redistribute("connected")
            .extra("default-information originate always");
        let (zebra, ospf, _) = cfg.render("r1", "/tmp/x").expect("renders");
        assert!(zebra.contains("log file /tmp/x/zebra.log"));
        let expected = [
            "interface eth0",
            " ip ospf network point-to-point",
            " ip ospf cost 7",
            " ip ospf hello-interval 1",
            " ip ospf dead-interval 4",
            " ip ospf authentication message-digest",
            " ip ospf message-digest-key 3 md5 s3cret",
            "interface eth1",
            " ip ospf network broadcast",
            "router ospf",
            " ospf router-id 1.1.1.1",
            " timers lsa min-arrival 0",
            " passive-interface eth1",
            " network 10.0.0.0/30 area 0",
            " redistribute connected",
            " default-information originate always",
        ];
        let lines: Vec<&str> = ospf.lines().collect();
        let mut at = 0;
        for want in expected {
            let pos = lines[at..]
                .iter()
                .position(|l| *l == want)
                .unwrap_or_else(|| panic!("missing or out of order: {want:?} in\n{ospf}"));
            at += pos + 1;
        }
        assert!(!cfg.uses_bfd());
    }

    #[test]
    fn renders_a_bfd_profile() {
        let cfg = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1))
            .interface(OspfInterface::p2p("eth0").bfd())
            .bfd_timers(100, 100, 3);
        let (_, ospf, bfdd) = cfg.render("r", "/d").expect("renders");
        assert!(
            ospf.contains(" ip ospf bfd\n ip ospf bfd profile lab\n"),
            "{ospf}"
        );
        assert!(
            bfdd.contains("bfd\n profile lab\n  detect-multiplier 3\n  receive-interval 100\n  transmit-interval 100\n"),
            "{bfdd}"
        );
        assert!(cfg.uses_bfd());
        let plain =
            FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1)).interface(OspfInterface::p2p("eth0").bfd());
        let (_, ospf, bfdd) = plain.render("r", "/d").expect("renders");
        assert!(ospf.contains(" ip ospf bfd\n"), "{ospf}");
        assert!(!bfdd.contains("profile"), "{bfdd}");
    }

    #[test]
    fn rejects_what_frr_cannot_do() {
        let hmac = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1)).interface(
            OspfInterface::p2p("eth0").auth(OspfAuth::HmacSha256 {
                key_id: 1,
                key: "k".into(),
            }),
        );
        assert!(matches!(hmac.render("r", "/d"), Err(LabError::Config(_))));
        let long = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1)).interface(
            OspfInterface::p2p("eth0").auth(OspfAuth::Md5 {
                key_id: 1,
                key: "x".repeat(17),
            }),
        );
        assert!(long.render("r", "/d").is_err());
        let mixed = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1))
            .interface(OspfInterface::p2p("eth0").area("0"))
            .network("10.0.0.0/30", "0");
        assert!(matches!(mixed.render("r", "/d"), Err(LabError::Config(_))));
        let by_area = FrrConfig::new(Ipv4Addr::new(1, 1, 1, 1))
            .interface(OspfInterface::p2p("eth0").area("0.0.0.0"));
        let (_, ospf, _) = by_area.render("r", "/d").expect("interface areas alone");
        assert!(ospf.contains(" ip ospf area 0.0.0.0\n"), "{ospf}");
    }

    #[test]
    fn parses_neighbors_json() {
        // Shape of FRR 8.4's `show ip ospf neighbor json` (trimmed).
        let v: Value = serde_json::from_str(
            r#"{"neighbors":{"2.2.2.2":[{"priority":1,"nbrState":"Full\/-","converged":"Full"}],
               "3.3.3.3":[{"nbrState":"Init\/-"}],"4.4.4.4":[{"state":"Full/DR"}]}}"#,
        )
        .expect("json");
        let n = parse_frr_neighbors(&v).expect("parses");
        assert_eq!(n.len(), 3);
        let full: Vec<&str> = n
            .iter()
            .filter(|n| n.is_full())
            .map(|n| n.router_id.as_str())
            .collect();
        assert_eq!(full, vec!["2.2.2.2", "4.4.4.4"]);
        assert!(parse_frr_neighbors(&serde_json::json!({"x": 1})).is_err());
    }
}
