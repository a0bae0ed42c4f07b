//! BIRD 2 in a lab node: raw configuration text or a typed OSPF + kernel helper.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::frr::{Neighbor, NetworkType, OspfAuth};
use crate::lab::{run, Node};
use crate::wait::wait_for;

/// One OSPF interface of a BIRD router.
#[derive(Debug, Clone, PartialEq)]
pub struct BirdOspfInterface {
    /// Interface name (a BIRD pattern string).
    pub name: String,
    /// Restrict to addresses inside this prefix (`"lo" 3.3.3.3/32` to skip 127.0.0.1).
    pub prefix: Option<String>,
    /// Network type.
    pub network: NetworkType,
    /// Hello interval (s).
    pub hello: Option<u16>,
    /// Dead interval (s).
    pub dead: Option<u16>,
    /// Cost.
    pub cost: Option<u32>,
    /// Stub: advertise the addresses, send no hellos.
    pub stub: bool,
    /// Authentication.
    pub auth: OspfAuth,
    /// `bfd yes`: the neighbor's liveness follows a BFD session (needs
    /// [`BirdOspfConfig::bfd`]).
    pub bfd: bool,
}

impl BirdOspfInterface {
    /// A point-to-point interface.
    pub fn p2p(name: &str) -> Self {
        BirdOspfInterface {
            name: name.to_string(),
            prefix: None,
            network: NetworkType::PointToPoint,
            hello: None,
            dead: None,
            cost: None,
            stub: false,
            auth: OspfAuth::None,
            bfd: false,
        }
    }

    /// A broadcast interface.
    pub fn broadcast(name: &str) -> Self {
        BirdOspfInterface {
            network: NetworkType::Broadcast,
            ..Self::p2p(name)
        }
    }

    /// A stub interface limited to `prefix` (typically a loopback /32).
    pub fn stub(name: &str, prefix: &str) -> Self {
        BirdOspfInterface {
            prefix: Some(prefix.to_string()),
            stub: true,
            ..Self::p2p(name)
        }
    }

    /// Sets hello and dead intervals (seconds).
    pub fn timers(mut self, hello: u16, dead: u16) -> Self {
        self.hello = Some(hello);
        self.dead = Some(dead);
        self
    }

    /// Sets authentication.
    pub fn auth(mut self, auth: OspfAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Enables BFD for the neighbors on this interface (`bfd yes`).
    pub fn bfd(mut self) -> Self {
        self.bfd = true;
        self
    }
}

/// A typed BIRD configuration: device + kernel (`merge paths on`) + one OSPFv2 area.
#[derive(Debug, Clone, PartialEq)]
pub struct BirdOspfConfig {
    /// Router id.
    pub router_id: Ipv4Addr,
    /// OSPF area (`0`).
    pub area: String,
    /// Interfaces.
    pub interfaces: Vec<BirdOspfInterface>,
    /// `ecmp yes` in the OSPF protocol.
    pub ecmp: bool,
    /// Raw lines appended inside the OSPF protocol.
    pub extra_ospf: Vec<String>,
    /// `protocol bfd` with this (interval ms, multiplier) on every interface.
    pub bfd: Option<(u32, u8)>,
}

impl BirdOspfConfig {
    /// Area 0 with ECMP, no interfaces yet.
    pub fn new(router_id: Ipv4Addr) -> Self {
        BirdOspfConfig {
            router_id,
            area: "0".into(),
            interfaces: Vec::new(),
            ecmp: true,
            extra_ospf: Vec::new(),
            bfd: None,
        }
    }

    /// Runs `protocol bfd` with `interval_ms` × `multiplier` (for interfaces with
    /// [`BirdOspfInterface::bfd`]).
    pub fn bfd(mut self, interval_ms: u32, multiplier: u8) -> Self {
        self.bfd = Some((interval_ms, multiplier));
        self
    }

    /// Adds an interface.
    pub fn interface(mut self, iface: BirdOspfInterface) -> Self {
        self.interfaces.push(iface);
        self
    }

    /// Renders bird.conf logging to `log`.
    pub fn render(&self, log: &str) -> Result<String> {
        let mut c = String::new();
        let _ = writeln!(c, "router id {};", self.router_id);
        let _ = writeln!(c, "log \"{log}\" all;");
        let _ = writeln!(c, "protocol device {{ scan time 1; }}");
        let _ = writeln!(
            c,
            "protocol kernel {{ ipv4 {{ import none; export where source = RTS_OSPF || \
             source = RTS_OSPF_EXT1 || source = RTS_OSPF_EXT2; }}; merge paths on; }}"
        );
        if let Some((ms, mult)) = self.bfd {
            let _ = writeln!(
                c,
                "protocol bfd {{ interface \"*\" {{ interval {ms} ms; multiplier {mult}; }}; }}"
            );
        }
        let _ = writeln!(c, "protocol ospf v2 ospf1 {{");
        let _ = writeln!(c, "  ecmp {};", if self.ecmp { "yes" } else { "no" });
        let _ = writeln!(c, "  ipv4 {{ import all; export none; }};");
        let _ = writeln!(c, "  area {} {{", self.area);
        for i in &self.interfaces {
            let prefix = i
                .prefix
                .as_deref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            let _ = write!(c, "    interface \"{}\"{prefix} {{", i.name);
            match (i.stub, i.network) {
                (true, _) => {}
                (false, NetworkType::PointToPoint) => c.push_str(" type ptp;"),
                (false, NetworkType::Broadcast) => c.push_str(" type broadcast;"),
            }
            if let Some(h) = i.hello {
                let _ = write!(c, " hello {h};");
            }
            if let Some(d) = i.dead {
                let _ = write!(c, " dead {d};");
            }
            if let Some(cost) = i.cost {
                let _ = write!(c, " cost {cost};");
            }
            if i.stub {
                c.push_str(" stub yes;");
            }
            if i.bfd {
                c.push_str(" bfd yes;");
            }
            let (alg, key_id, key) = match &i.auth {
                OspfAuth::None => (None, 0, ""),
                OspfAuth::Md5 { key_id, key } => (Some("keyed md5"), *key_id, key.as_str()),
                OspfAuth::HmacSha256 { key_id, key } => {
                    (Some("hmac sha256"), *key_id, key.as_str())
                }
            };
            if let Some(alg) = alg {
                if key.is_empty() || key.contains('"') {
                    return Err(LabError::Config(format!(
                        "BIRD OSPF key {key:?} must be non-empty without quotes"
                    )));
                }
                let _ = write!(
                    c,
                    " authentication cryptographic; password \"{key}\" {{ id {key_id}; \
                     algorithm {alg}; }};"
                );
            }
            c.push_str(" };\n");
        }
        let _ = writeln!(c, "  }};");
        for line in &self.extra_ospf {
            let _ = writeln!(c, "  {line}");
        }
        let _ = writeln!(c, "}}");
        Ok(c)
    }
}

/// A BIRD instance running in a node.
#[derive(Debug, Clone)]
pub struct Bird {
    node: Node,
    dir: PathBuf,
}

/// Parses `birdc show ospf neighbors`: rows `ROUTER-ID PRI STATE DTIME IFACE ROUTER-IP`.
pub fn parse_bird_neighbors(text: &str) -> Vec<Neighbor> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let rid = f.next()?;
            rid.parse::<Ipv4Addr>().ok()?;
            let _pri = f.next()?.parse::<u8>().ok()?;
            let state = f.next()?;
            Some(Neighbor {
                router_id: rid.to_string(),
                state: state.to_string(),
            })
        })
        .collect()
}

impl Node {
    /// Writes `conf` to `<node dir>/bird/bird.conf` and starts `bird -c .. -s .. -P ..`.
    pub fn bird(&self, conf: &str) -> Result<Bird> {
        let dir = self.dir().join("bird");
        fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        let conf_path = dir.join("bird.conf");
        fs::write(&conf_path, conf)
            .map_err(|e| LabError::io(format!("write {}", conf_path.display()), e))?;
        let c = conf_path.to_string_lossy().into_owned();
        let sock = dir.join("bird.ctl").to_string_lossy().into_owned();
        let pid = dir.join("bird.pid");
        let p = pid.to_string_lossy().into_owned();
        let log = dir.join("bird.log");
        self.start_daemon(
            "bird",
            &["bird", "-c", &c, "-s", &sock, "-P", &p],
            &pid,
            Some(&log),
        )?;
        Ok(Bird {
            node: self.clone(),
            dir,
        })
    }

    /// Renders a typed configuration and starts BIRD with it.
    pub fn bird_ospf(&self, cfg: &BirdOspfConfig) -> Result<Bird> {
        let log = self.dir().join("bird").join("bird.log");
        self.bird(&cfg.render(&log.to_string_lossy())?)
    }
}

impl Bird {
    /// The node BIRD runs in.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Runs `birdc -s SOCK args...` (e.g. `["show", "ospf", "neighbors"]`).
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let sock = self.dir.join("bird.ctl").to_string_lossy().into_owned();
        let mut argv = vec!["birdc", "-s", sock.as_str()];
        argv.extend_from_slice(args);
        let out = run(&argv)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(LabError::Command {
                cmd: argv.join(" "),
                status: out.status.to_string(),
                stderr: format!("{}{text}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(text)
    }

    /// The OSPF neighbors.
    pub fn neighbors(&self) -> Result<Vec<Neighbor>> {
        Ok(parse_bird_neighbors(&self.birdc(&[
            "show",
            "ospf",
            "neighbors",
        ])?))
    }

    /// Waits until neighbor `router_id` is Full.
    pub fn wait_neighbor_full(&self, router_id: &str, deadline: Duration) -> Result<()> {
        let what = format!(
            "BIRD in {} to reach Full with {router_id}",
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
    fn parses_birdc_neighbors() {
        let text = "BIRD 2.0.12 ready.\nospf1:\nRouter ID   \tPri\t     State     \tDTime\tInterface  Router IP\n\
                    1.1.1.1     \t  1\tFull/PtP  \t3.456\teth0       10.0.0.1\n\
                    2.2.2.2     \t  1\tExStart/PtP\t3.9\teth1       10.0.1.1\n";
        let n = parse_bird_neighbors(text);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].router_id, "1.1.1.1");
        assert!(n[0].is_full());
        assert!(!n[1].is_full());
        assert!(parse_bird_neighbors("BIRD 2.0.12 ready.\nospf1:\n").is_empty());
    }

    #[test]
    fn renders_ospf_kernel_and_auth() {
        let cfg = BirdOspfConfig::new(Ipv4Addr::new(3, 3, 3, 3))
            .interface(
                BirdOspfInterface::p2p("eth0")
                    .timers(1, 4)
                    .auth(OspfAuth::HmacSha256 {
                        key_id: 2,
                        key: "k".into(),
                    }),
            )
            .interface(BirdOspfInterface::stub("lo", "3.3.3.3/32"));
        let c = cfg.render("/tmp/b.log").expect("renders");
        assert!(c.contains("router id 3.3.3.3;"));
        assert!(c.contains("merge paths on;"));
        assert!(c.contains("ecmp yes;"));
        assert!(c.contains(
            "interface \"eth0\" { type ptp; hello 1; dead 4; authentication cryptographic; \
             password \"k\" { id 2; algorithm hmac sha256; }; };"
        ));
        assert!(c.contains("interface \"lo\" 3.3.3.3/32 { stub yes; };"));
        let bad = BirdOspfConfig::new(Ipv4Addr::new(3, 3, 3, 3)).interface(
            BirdOspfInterface::p2p("eth0").auth(OspfAuth::Md5 {
                key_id: 1,
                key: "a\"b".into(),
            }),
        );
        assert!(bad.render("/x").is_err());
    }
}
