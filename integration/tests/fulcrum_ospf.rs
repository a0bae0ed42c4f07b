//! `fulcrumd` in `mode = "kernel"` against real FRR ospfd and BIRD 2 in network
//! namespaces (needs root): adjacencies on point-to-point and broadcast, VIP /32s in the
//! peer's kernel table (ECMP from two nodes, withdrawal by reload), the peer's prefixes in
//! fulcrum's RIB and kernel table, MD5 / HMAC-SHA-256, SIGTERM flushing, and `kill -9` +
//! restart leaving no stale route.
//!
//! The daemon is built once per test binary with `cargo build -p appliance --bins` into
//! the target directory this test runs from (see [`binaries`]).

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use integration::{
    wait_until, BirdOspfConfig, BirdOspfInterface, FrrConfig, Lab, Node, OspfAuth, OspfInterface,
    Process,
};
use nix::sys::signal::Signal;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);
const VIP: &str = "100.64.0.10/32";

fn rid(s: &str) -> Ipv4Addr {
    s.parse().expect("router id")
}

/// Paths of `fulcrumd` and `fulcrum`, built once with this test binary's target
/// directory and profile.
fn binaries() -> &'static (PathBuf, PathBuf) {
    integration::build::fulcrum_binaries().unwrap_or_else(|e| panic!("{e}"))
}

/// One OSPF interface of a fulcrum node.
#[derive(Clone)]
struct Iface {
    name: &'static str,
    p2p: bool,
    hello: u16,
    dead: u16,
    /// `(type, key_id, key)`.
    auth: Option<(&'static str, u8, &'static str)>,
}

impl Iface {
    fn p2p(name: &'static str) -> Self {
        Iface {
            name,
            p2p: true,
            hello: 1,
            dead: 4,
            auth: None,
        }
    }
    fn broadcast(name: &'static str) -> Self {
        Iface {
            p2p: false,
            ..Self::p2p(name)
        }
    }
    fn dead(mut self, dead: u16) -> Self {
        self.dead = dead;
        self
    }
    fn auth(mut self, kind: &'static str, key_id: u8, key: &'static str) -> Self {
        self.auth = Some((kind, key_id, key));
        self
    }
}

/// A fulcrumd in a lab node.
struct Fulcrum {
    node: Node,
    rid: String,
    ifaces: Vec<Iface>,
    routes: Vec<(String, String)>,
    /// Prefixes announced as AS-external (E2, metric 20) besides the stub announcements.
    externals: Vec<String>,
    proc: Option<Process>,
}

impl Fulcrum {
    fn new(node: &Node, rid: &str, ifaces: Vec<Iface>) -> Self {
        Fulcrum {
            node: node.clone(),
            rid: rid.to_string(),
            ifaces,
            routes: Vec::new(),
            externals: Vec::new(),
            proc: None,
        }
    }

    fn socket(&self) -> PathBuf {
        self.node.dir().join("fulcrum.sock")
    }

    fn config_path(&self) -> PathBuf {
        self.node.dir().join("fulcrum.toml")
    }

    fn write_config(&self, announces: &[&str]) {
        let mut c = format!(
            "[global]\nrouter_id = \"{}\"\ncontrol_socket = \"{}\"\nmetrics = \"127.0.0.1:9477\"\n\n\
             [dataplane]\nmode = \"kernel\"\n\n",
            self.rid,
            self.socket().display()
        );
        for i in &self.ifaces {
            c.push_str(&format!("[[interface]]\nname = \"{}\"\n\n", i.name));
        }
        for (prefix, via) in &self.routes {
            c.push_str(&format!(
                "[[route]]\nprefix = \"{prefix}\"\nvia = \"{via}\"\n\n"
            ));
        }
        c.push_str("[ospf]\nmin_ls_interval = \"0s\"\nmin_ls_arrival = \"0s\"\n\n");
        for i in &self.ifaces {
            c.push_str(&format!(
                "[[ospf.interface]]\nname = \"{}\"\narea = \"0.0.0.0\"\nnetwork = \"{}\"\n\
                 hello_interval = \"{}s\"\ndead_interval = \"{}s\"\n",
                i.name,
                if i.p2p { "point-to-point" } else { "broadcast" },
                i.hello,
                i.dead
            ));
            if let Some((kind, id, key)) = i.auth {
                c.push_str(&format!(
                    "authentication = {{ type = \"{kind}\", key_id = {id}, key = \"{key}\" }}\n"
                ));
            }
            c.push('\n');
        }
        for a in announces {
            c.push_str(&format!("[[announce]]\nprefix = \"{a}\"\n\n"));
        }
        for e in &self.externals {
            c.push_str(&format!(
                "[[announce]]\nprefix = \"{e}\"\nannounce_as = \"external\"\n\n"
            ));
        }
        fs::write(self.config_path(), c).expect("write fulcrum.toml");
    }

    /// Writes the configuration and starts fulcrumd; returns once its control socket
    /// answers.
    fn start(&mut self, announces: &[&str]) {
        self.write_config(announces);
        self.spawn();
    }

    fn spawn(&mut self) {
        let (fulcrumd, _) = binaries();
        let cfg = self.config_path();
        let p = self
            .node
            .spawn(&[
                fulcrumd.to_str().expect("utf-8 path"),
                "--config",
                cfg.to_str().expect("utf-8 path"),
            ])
            .expect("spawn fulcrumd");
        let log = p.log_path().to_path_buf();
        self.proc = Some(p);
        wait_until(Duration::from_secs(10), "fulcrumd control socket", || {
            Ok(self.try_cli(&["status"]).is_ok())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
    }

    fn try_cli(&self, args: &[&str]) -> Result<String, String> {
        let (_, fulcrum) = binaries();
        let out = Command::new(fulcrum)
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("fulcrum {args:?}: {e}\nlog:\n{}", self.log()))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.cli(&a)).expect("JSON answer")
    }

    fn log(&self) -> String {
        self.proc
            .as_ref()
            .and_then(|p| fs::read_to_string(p.log_path()).ok())
            .unwrap_or_default()
    }

    /// Rewrites the configuration with `announces` and reloads.
    fn reload(&self, announces: &[&str]) {
        self.write_config(announces);
        let out = self.cli(&["reload"]);
        assert!(!out.contains("refused"), "reload: {out}");
    }

    fn signal(&self, sig: Signal) {
        self.proc.as_ref().expect("running").signal(sig);
    }

    fn wait_exit(&self, deadline: Duration) {
        let p = self.proc.as_ref().expect("started");
        wait_until(deadline, "fulcrumd to exit", || Ok(!p.is_running())).expect("exit");
    }

    /// The RIB route for `prefix` from `fulcrum routes --json`.
    fn rib_route(&self, prefix: &str) -> Option<Value> {
        let v = self.json(&["routes"]);
        v["routes"]
            .as_array()?
            .iter()
            .find(|r| r["prefix"] == prefix && r["selected"] == true)
            .cloned()
    }

    fn wait_rib_route(&self, prefix: &str) -> Value {
        let mut found = None;
        wait_until(DEADLINE, &format!("{prefix} in fulcrum's RIB"), || {
            found = self.rib_route(prefix);
            Ok(found.is_some())
        })
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.log()));
        found.expect("route")
    }
}

/// Kernel routes of `node` for exactly `prefix`, as `ip -j route show PREFIX` objects
/// (every copy, whatever the metric).
fn kernel_copies(node: &Node, prefix: &str) -> Vec<Value> {
    let text = node
        .ip(&["-j", "route", "show", "exact", prefix])
        .expect("ip route");
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn is_fulcrum_proto(r: &Value) -> bool {
    matches!(r["protocol"].as_str(), Some("fulcrum") | Some("201"))
        || r["protocol"].as_u64() == Some(201)
}

fn link(lab: &Lab, a: &Node, a_if: &str, a_ip: &str, b: &Node, b_if: &str, b_ip: &str) {
    lab.link(a, a_if, b, b_if).expect("link");
    a.addr(a_if, a_ip).expect("addr");
    b.addr(b_if, b_ip).expect("addr");
}

fn frr_full(frr: &integration::Frr, rid: &str, f: &Fulcrum) {
    frr.wait_neighbor_full(rid, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nfulcrumd log:\n{}", f.log()));
}

fn bird_full(bird: &integration::Bird, rid: &str, f: &Fulcrum) {
    bird.wait_neighbor_full(rid, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nfulcrumd log:\n{}", f.log()));
}

/// A fulcrum node `f` point-to-point to two FRR routers `r1` and `r2` that both advertise
/// the stub network 198.51.100.0/24 (a passive link between them) at equal cost: f's
/// kernel gets one `proto fulcrum` route with both next hops; when r1's side of the stub
/// goes down one next hop remains, and when both withdraw it the route leaves f's kernel.
#[test]
fn frr_learned_ecmp_route_in_fulcrum_kernel_follows_withdrawals() {
    const NET: &str = "198.51.100.0/24";
    let lab = Lab::new("ful_learn_ecmp").expect("lab (needs root)");
    let f = lab.router("f").expect("f");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    link(
        &lab,
        &f,
        "f-r1",
        "10.0.11.2/30",
        &r1,
        "eth0",
        "10.0.11.1/30",
    );
    link(
        &lab,
        &f,
        "f-r2",
        "10.0.12.2/30",
        &r2,
        "eth0",
        "10.0.12.1/30",
    );
    // Each router's stub network is a veth of its own to a host namespace: one veth pair
    // between r1 and r2 would lose carrier on both ends at once when one end goes down,
    // and the one-next-hop state in between could pass unseen. (No dummy interfaces:
    // this kernel has no dummy module.)
    let h1 = lab.router("h1").expect("h1");
    let h2 = lab.router("h2").expect("h2");
    link(
        &lab,
        &r1,
        "stub",
        "198.51.100.1/24",
        &h1,
        "eth0",
        "198.51.100.11/24",
    );
    link(
        &lab,
        &r2,
        "stub",
        "198.51.100.2/24",
        &h2,
        "eth0",
        "198.51.100.12/24",
    );
    let frr = |node: &Node, id: &str, uplink: &str| {
        node.frr(
            &FrrConfig::new(rid(id))
                .interface(OspfInterface::p2p("eth0").timers(1, 4))
                .interface(OspfInterface::broadcast("stub").timers(1, 4).passive())
                .network(uplink, "0")
                .network(NET, "0"),
        )
        .expect("frr")
    };
    let frr1 = frr(&r1, "9.0.0.1", "10.0.11.0/30");
    let frr2 = frr(&r2, "9.0.0.2", "10.0.12.0/30");
    let mut fu = Fulcrum::new(&f, "1.0.0.9", vec![Iface::p2p("f-r1"), Iface::p2p("f-r2")]);
    fu.start(&[]);
    frr_full(&frr1, "1.0.0.9", &fu);
    frr_full(&frr2, "1.0.0.9", &fu);

    // Both next hops, in the RIB and in the kernel under fulcrum's protocol.
    let route = f
        .wait_route(NET, 2, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", fu.log()));
    let mut gws = route.gateways();
    gws.sort_unstable();
    assert_eq!(gws, vec!["10.0.11.1", "10.0.12.1"]);
    let copies = kernel_copies(&f, NET);
    assert_eq!(copies.len(), 1, "one kernel copy: {copies:?}");
    assert!(is_fulcrum_proto(&copies[0]), "{copies:?}");
    let rr = fu.wait_rib_route(NET);
    assert_eq!(rr["nexthops"].as_array().map(Vec::len), Some(2), "{rr}");

    // r1 withdraws (its stub interface goes down): one next hop, via r2, remains.
    r1.ip(&["link", "set", "stub", "down"]).expect("link down");
    let route = f
        .wait_route(NET, 1, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", fu.log()));
    assert_eq!(route.gateways(), vec!["10.0.12.1"]);

    // r2 withdraws too: the route leaves.
    r2.ip(&["link", "set", "stub", "down"]).expect("link down");
    f.wait_no_route(NET, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", fu.log()));
    assert!(fu.rib_route(NET).is_none(), "still in fulcrum's RIB");
}

/// FRR router `r` (9.9.9.9/32 on lo) point-to-point to fulcrum nodes `a` and `b`, which
/// both announce the VIP: Full from FRR's side, a two-nexthop VIP route in r's kernel,
/// r's prefixes in fulcrum's RIB and kernel (proto fulcrum), a static route installed,
/// the CLI tables, and a reload withdrawing the VIP on one node.
#[test]
fn frr_p2p_ecmp_routes_cli_and_withdraw() {
    let lab = Lab::new("ful_frr_p2p").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    link(&lab, &r, "r-b", "10.0.2.1/30", &b, "eth0", "10.0.2.2/30");
    r.addr("lo", "9.9.9.9/32").expect("lo");
    let frr = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::p2p("r-a").timers(1, 4))
                .interface(OspfInterface::p2p("r-b").timers(1, 4))
                .network("10.0.1.0/30", "0")
                .network("10.0.2.0/30", "0")
                .network("9.9.9.9/32", "0"),
        )
        .expect("frr");
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::p2p("eth0")]);
    fa.routes.push(("203.0.113.0/24".into(), "10.0.1.1".into()));
    fa.start(&[VIP]);
    let mut fb = Fulcrum::new(&b, "1.0.0.2", vec![Iface::p2p("eth0")]);
    fb.start(&[VIP]);

    frr_full(&frr, "1.0.0.1", &fa);
    frr_full(&frr, "1.0.0.2", &fb);
    let route = r
        .wait_route(VIP, 2, DEADLINE)
        .expect("two-nexthop VIP route");
    let mut gws = route.gateways();
    gws.sort_unstable();
    assert_eq!(gws, vec!["10.0.1.2", "10.0.2.2"]);

    // fulcrum's RIB holds the peer's loopback via the peer, and the kernel has it as ours.
    let rr = fa.wait_rib_route("9.9.9.9/32");
    assert_eq!(rr["protocol"], "ospf", "{rr}");
    assert_eq!(rr["installed"], true, "{rr}");
    assert_eq!(rr["nexthops"][0]["via"], "10.0.1.1", "{rr}");
    assert_eq!(rr["nexthops"][0]["interface"], "eth0", "{rr}");
    wait_until(DEADLINE, "9.9.9.9/32 proto fulcrum in a's kernel", || {
        let c = kernel_copies(&a, "9.9.9.9/32");
        Ok(c.len() == 1 && is_fulcrum_proto(&c[0]) && c[0]["gateway"] == "10.0.1.1")
    })
    .expect("kernel route");
    // The route works: a reaches r's loopback.
    let ping = a
        .exec(&["ping", "-c", "1", "-W", "2", "9.9.9.9"])
        .expect("ping");
    assert!(ping.status.success(), "ping 9.9.9.9 from a failed");
    // The static route is in the RIB and the kernel.
    let st = fa.wait_rib_route("203.0.113.0/24");
    assert_eq!(st["protocol"], "static", "{st}");
    let c = kernel_copies(&a, "203.0.113.0/24");
    assert!(
        c.len() == 1 && is_fulcrum_proto(&c[0]),
        "static in kernel: {c:?}"
    );
    // The connected subnet stays the kernel's.
    let conn = kernel_copies(&a, "10.0.1.0/30");
    assert!(
        conn.iter().all(|r| !is_fulcrum_proto(r)),
        "connected route programmed: {conn:?}"
    );

    // CLI tables and views.
    let nbrs = fa.cli(&["ospf", "neighbors"]);
    assert!(nbrs.contains("9.9.9.9") && nbrs.contains("Full"), "{nbrs}");
    let nj = fa.json(&["ospf", "neighbors"]);
    assert_eq!(nj["neighbors"][0]["neighbor_id"], "9.9.9.9", "{nj}");
    assert_eq!(nj["neighbors"][0]["state"], "Full", "{nj}");
    assert_eq!(nj["neighbors"][0]["interface"], "eth0:10.0.1.2", "{nj}");
    let ifs = fa.json(&["ospf", "interfaces"]);
    assert_eq!(ifs["interfaces"][0]["state"], "Point-To-Point", "{ifs}");
    let db = fa.json(&["ospf", "database"]);
    let routers: Vec<&str> = db["lsas"]
        .as_array()
        .expect("lsas")
        .iter()
        .filter(|l| l["lsa_type"] == "router")
        .filter_map(|l| l["advertising_router"].as_str())
        .collect();
    assert!(
        routers.contains(&"9.9.9.9")
            && routers.contains(&"1.0.0.1")
            && routers.contains(&"1.0.0.2"),
        "{db}"
    );
    let vips = fa.json(&["vips"]);
    assert_eq!(vips["vips"][0]["vip"], "100.64.0.10", "{vips}");
    assert_eq!(vips["vips"][0]["announced"], true, "{vips}");
    let metrics = a
        .exec_ok(&["curl", "-s", "http://127.0.0.1:9477/metrics"])
        .expect("metrics");
    assert!(
        metrics.contains("fulcrum_ospf_neighbor_state{interface=\"eth0\",neighbor=\"9.9.9.9\"} 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fulcrum_rib_routes{protocol=\"ospf\"}"),
        "{metrics}"
    );
    let lint = a
        .exec(&[
            "sh",
            "-c",
            "curl -s http://127.0.0.1:9477/metrics | promtool check metrics",
        ])
        .expect("promtool");
    assert!(
        lint.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    // Reload without the VIP on a: one next hop (b) remains, adjacencies stay.
    fa.reload(&[]);
    wait_until(DEADLINE, "VIP via b only", || {
        Ok(r.nexthops(VIP)? == vec!["10.0.2.2".to_string()])
    })
    .expect("one next hop left");
    let n = frr.neighbors().expect("neighbors");
    assert!(
        n.iter().filter(|n| n.is_full()).count() == 2,
        "reload reset an adjacency: {n:?}"
    );
    // Announce it again.
    fa.reload(&[VIP]);
    r.wait_route(VIP, 2, DEADLINE).expect("two next hops again");
    let vips = fa.json(&["vips"]);
    assert_eq!(vips["vips"].as_array().map(Vec::len), Some(1), "{vips}");
}

/// Broadcast segment (bridge) with FRR: DR election, Full, VIP at the peer, peer's
/// loopback in fulcrum's kernel via the peer.
#[test]
fn frr_broadcast_adjacency_and_routes() {
    let lab = Lab::new("ful_frr_bc").expect("lab (needs root)");
    let sw = lab.switch("sw").expect("switch");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    lab.attach(&r, "eth0", &sw).expect("attach r");
    lab.attach(&a, "eth0", &sw).expect("attach a");
    lab.attach(&b, "eth0", &sw).expect("attach b");
    r.addr("eth0", "10.0.5.1/24").expect("addr");
    a.addr("eth0", "10.0.5.2/24").expect("addr");
    b.addr("eth0", "10.0.5.3/24").expect("addr");
    r.addr("lo", "9.9.9.9/32").expect("lo");
    let frr = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::broadcast("eth0").timers(1, 4))
                .network("10.0.5.0/24", "0")
                .network("9.9.9.9/32", "0"),
        )
        .expect("frr");
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::broadcast("eth0")]);
    fa.externals.push("198.18.0.0/24".into());
    fa.start(&[VIP]);
    let mut fb = Fulcrum::new(&b, "1.0.0.2", vec![Iface::broadcast("eth0")]);
    fb.start(&[VIP]);
    frr_full(&frr, "1.0.0.1", &fa);
    frr_full(&frr, "1.0.0.2", &fb);
    // Three routers on one segment: one DR, one Backup, one DROther; ECMP over the
    // segment at FRR.
    let route = r.wait_route(VIP, 2, DEADLINE).expect("VIP at FRR");
    let mut gws = route.gateways();
    gws.sort_unstable();
    assert_eq!(gws, vec!["10.0.5.2", "10.0.5.3"]);
    // The two fulcrum nodes are adjacent to each other too (DR/BDR adjacency).
    wait_until(DEADLINE, "a Full with b", || {
        let n = fa.json(&["ospf", "neighbors"]);
        Ok(n["neighbors"].as_array().is_some_and(|v| {
            v.iter()
                .any(|n| n["neighbor_id"] == "1.0.0.2" && n["state"] == "Full")
                || v.iter()
                    .any(|n| n["neighbor_id"] == "1.0.0.2" && n["state"] == "2-Way")
        }))
    })
    .expect("a sees b");
    // The AS-external announcement reaches FRR as an E2 route.
    let ext = r
        .wait_route("198.18.0.0/24", 1, DEADLINE)
        .expect("external at FRR");
    assert_eq!(ext.gateways(), vec!["10.0.5.2"]);
    let ospf_rt = frr
        .vtysh(&["show ip ospf route json"])
        .expect("ospf routes");
    let e = &ospf_rt["198.18.0.0/24"];
    assert_eq!(e["routeType"], "N E2", "{ospf_rt}");
    let rr = fa.wait_rib_route("9.9.9.9/32");
    assert_eq!(rr["nexthops"][0]["via"], "10.0.5.1", "{rr}");
    wait_until(DEADLINE, "9.9.9.9/32 proto fulcrum", || {
        let c = kernel_copies(&a, "9.9.9.9/32");
        Ok(c.len() == 1 && is_fulcrum_proto(&c[0]))
    })
    .expect("kernel route");
    let mut states: Vec<String> = [&fa, &fb]
        .iter()
        .map(|f| {
            let ifs = f.json(&["ospf", "interfaces"]);
            ifs["interfaces"][0]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    states.sort();
    assert!(
        states
            .iter()
            .all(|s| ["DR", "Backup", "DROther"].contains(&s.as_str()))
            && states[0] != states[1],
        "{states:?}"
    );
}

/// BIRD 2 on point-to-point (fulcrum a) and broadcast (fulcrum b): Full from BIRD's
/// side, both VIPs in BIRD's kernel table, BIRD's loopback in fulcrum's RIB.
#[test]
fn bird_p2p_and_broadcast() {
    let lab = Lab::new("ful_bird").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    link(&lab, &r, "r-b", "10.0.3.1/24", &b, "eth0", "10.0.3.2/24");
    r.addr("lo", "9.9.9.9/32").expect("lo");
    let bird = r
        .bird_ospf(
            &BirdOspfConfig::new(rid("9.9.9.9"))
                .interface(BirdOspfInterface::p2p("r-a").timers(1, 4))
                .interface(BirdOspfInterface::broadcast("r-b").timers(1, 4))
                .interface(BirdOspfInterface::stub("lo", "9.9.9.9/32")),
        )
        .expect("bird");
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::p2p("eth0")]);
    fa.start(&["100.64.0.11/32"]);
    let mut fb = Fulcrum::new(&b, "1.0.0.2", vec![Iface::broadcast("eth0")]);
    fb.start(&["100.64.0.12/32"]);
    bird_full(&bird, "1.0.0.1", &fa);
    bird_full(&bird, "1.0.0.2", &fb);
    let ra = r
        .wait_route("100.64.0.11/32", 1, DEADLINE)
        .expect("VIP a at BIRD");
    assert_eq!(ra.gateways(), vec!["10.0.1.2"]);
    let rb = r
        .wait_route("100.64.0.12/32", 1, DEADLINE)
        .expect("VIP b at BIRD");
    assert_eq!(rb.gateways(), vec!["10.0.3.2"]);
    let rr = fa.wait_rib_route("9.9.9.9/32");
    assert_eq!(rr["nexthops"][0]["via"], "10.0.1.1", "{rr}");
    let rr = fb.wait_rib_route("9.9.9.9/32");
    assert_eq!(rr["nexthops"][0]["via"], "10.0.3.1", "{rr}");
}

/// MD5 with FRR: the right key forms an adjacency, a wrong key none.
#[test]
fn frr_md5_right_and_wrong_key() {
    let lab = Lab::new("ful_frr_md5").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    link(&lab, &r, "r-b", "10.0.2.1/30", &b, "eth0", "10.0.2.2/30");
    let md5 = || OspfAuth::Md5 {
        key_id: 1,
        key: "s3cret".into(),
    };
    let frr = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::p2p("r-a").timers(1, 4).auth(md5()))
                .interface(OspfInterface::p2p("r-b").timers(1, 4).auth(md5()))
                .network("10.0.1.0/30", "0")
                .network("10.0.2.0/30", "0"),
        )
        .expect("frr");
    let mut fa = Fulcrum::new(
        &a,
        "1.0.0.1",
        vec![Iface::p2p("eth0").auth("md5", 1, "s3cret")],
    );
    fa.start(&[VIP]);
    let mut fb = Fulcrum::new(
        &b,
        "1.0.0.2",
        vec![Iface::p2p("eth0").auth("md5", 1, "wrong")],
    );
    fb.start(&[]);
    frr_full(&frr, "1.0.0.1", &fa);
    r.wait_route(VIP, 1, DEADLINE).expect("VIP over MD5");
    // Give the wrong key several dead intervals.
    std::thread::sleep(Duration::from_secs(5));
    let n = frr.neighbors().expect("neighbors");
    assert!(
        !n.iter().any(|n| n.router_id == "1.0.0.2"),
        "wrong key formed a neighbor: {n:?}"
    );
    let nb = fb.json(&["ospf", "neighbors"]);
    assert_eq!(nb["neighbors"].as_array().map(Vec::len), Some(0), "{nb}");
}

/// BIRD with keyed MD5 and HMAC-SHA-256 (RFC 5709): both form adjacencies; a wrong
/// HMAC key forms none.
#[test]
fn bird_md5_hmac_and_wrong_key() {
    let lab = Lab::new("ful_bird_auth").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let b = lab.router("b").expect("b");
    let c = lab.router("c").expect("c");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    link(&lab, &r, "r-b", "10.0.2.1/30", &b, "eth0", "10.0.2.2/30");
    link(&lab, &r, "r-c", "10.0.4.1/30", &c, "eth0", "10.0.4.2/30");
    let hmac = || OspfAuth::HmacSha256 {
        key_id: 2,
        key: "sha-key".into(),
    };
    let bird = r
        .bird_ospf(
            &BirdOspfConfig::new(rid("9.9.9.9"))
                .interface(
                    BirdOspfInterface::p2p("r-a")
                        .timers(1, 4)
                        .auth(OspfAuth::Md5 {
                            key_id: 1,
                            key: "md5-key".into(),
                        }),
                )
                .interface(BirdOspfInterface::p2p("r-b").timers(1, 4).auth(hmac()))
                .interface(BirdOspfInterface::p2p("r-c").timers(1, 4).auth(hmac())),
        )
        .expect("bird");
    let mut fa = Fulcrum::new(
        &a,
        "1.0.0.1",
        vec![Iface::p2p("eth0").auth("md5", 1, "md5-key")],
    );
    fa.start(&["100.64.0.11/32"]);
    let mut fb = Fulcrum::new(
        &b,
        "1.0.0.2",
        vec![Iface::p2p("eth0").auth("hmac-sha256", 2, "sha-key")],
    );
    fb.start(&["100.64.0.12/32"]);
    let mut fc = Fulcrum::new(
        &c,
        "1.0.0.3",
        vec![Iface::p2p("eth0").auth("hmac-sha256", 2, "not-the-key")],
    );
    fc.start(&[]);
    bird_full(&bird, "1.0.0.1", &fa);
    bird_full(&bird, "1.0.0.2", &fb);
    r.wait_route("100.64.0.11/32", 1, DEADLINE)
        .expect("VIP over MD5");
    r.wait_route("100.64.0.12/32", 1, DEADLINE)
        .expect("VIP over HMAC-SHA-256");
    std::thread::sleep(Duration::from_secs(3));
    let n = bird.neighbors().expect("neighbors");
    assert!(
        !n.iter().any(|n| n.router_id == "1.0.0.3"),
        "wrong key formed a neighbor: {n:?}"
    );
    let nc = fc.json(&["ospf", "neighbors"]);
    assert_eq!(nc["neighbors"].as_array().map(Vec::len), Some(0), "{nc}");
}

/// SIGTERM with dead interval 40 s: the flushed router-LSA removes the VIP from FRR's
/// kernel table in under a second, and fulcrum removes its own kernel routes on exit.
#[test]
fn sigterm_withdraws_vip_within_a_second() {
    let lab = Lab::new("ful_sigterm").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    r.addr("lo", "9.9.9.9/32").expect("lo");
    let frr = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::p2p("r-a").timers(1, 40))
                .network("10.0.1.0/30", "0")
                .network("9.9.9.9/32", "0"),
        )
        .expect("frr");
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::p2p("eth0").dead(40)]);
    fa.start(&[VIP]);
    frr_full(&frr, "1.0.0.1", &fa);
    r.wait_route(VIP, 1, DEADLINE).expect("VIP at FRR");
    wait_until(DEADLINE, "9.9.9.9/32 in a's kernel", || {
        Ok(kernel_copies(&a, "9.9.9.9/32").len() == 1)
    })
    .expect("kernel route");
    let t0 = Instant::now();
    fa.signal(Signal::SIGTERM);
    wait_until(Duration::from_secs(3), "VIP to leave FRR's kernel", || {
        Ok(r.route_to(VIP)?.is_none())
    })
    .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", fa.log()));
    let took = t0.elapsed();
    println!("SIGTERM → VIP gone from FRR's kernel: {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "VIP left the peer after {took:?}\nlog:\n{}",
        fa.log()
    );
    fa.wait_exit(Duration::from_secs(5));
    let left: Vec<Value> = kernel_copies(&a, "9.9.9.9/32");
    assert!(left.is_empty(), "fulcrum routes left after exit: {left:?}");
}

/// `kill -9` then restart: no stale or duplicate fulcrum route remains, and the learned
/// route is back exactly once.
#[test]
fn kill9_restart_leaves_no_stale_routes() {
    let lab = Lab::new("ful_kill9").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    r.addr("lo", "9.9.9.9/32").expect("lo");
    let frr = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::p2p("r-a").timers(1, 4))
                .network("10.0.1.0/30", "0")
                .network("9.9.9.9/32", "0"),
        )
        .expect("frr");
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::p2p("eth0")]);
    fa.start(&[VIP]);
    frr_full(&frr, "1.0.0.1", &fa);
    wait_until(DEADLINE, "9.9.9.9/32 in a's kernel", || {
        Ok(kernel_copies(&a, "9.9.9.9/32").len() == 1)
    })
    .expect("kernel route");
    fa.signal(Signal::SIGKILL);
    fa.wait_exit(Duration::from_secs(5));
    // The killed daemon left its route; add a stale one and a duplicate copy too.
    assert_eq!(
        kernel_copies(&a, "9.9.9.9/32").len(),
        1,
        "route kept after kill -9"
    );
    a.ip(&[
        "route",
        "add",
        "198.51.100.0/24",
        "via",
        "10.0.1.1",
        "proto",
        "201",
        "metric",
        "20",
    ])
    .expect("stale route");
    a.ip(&[
        "route",
        "add",
        "9.9.9.9/32",
        "via",
        "10.0.1.1",
        "proto",
        "201",
        "metric",
        "50",
    ])
    .expect("duplicate route");
    assert_eq!(kernel_copies(&a, "9.9.9.9/32").len(), 2);
    let _ = std::fs::remove_file(fa.socket());
    fa.spawn();
    assert!(
        kernel_copies(&a, "198.51.100.0/24").is_empty(),
        "stale route survived the restart"
    );
    frr_full(&frr, "1.0.0.1", &fa);
    fa.wait_rib_route("9.9.9.9/32");
    wait_until(DEADLINE, "exactly one 9.9.9.9/32 fulcrum route", || {
        let c = kernel_copies(&a, "9.9.9.9/32");
        Ok(c.len() == 1 && is_fulcrum_proto(&c[0]) && c[0]["metric"] == 20)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", kernel_copies(&a, "9.9.9.9/32")));
    // And the peer sees the VIP again.
    r.wait_route(VIP, 1, DEADLINE).expect("VIP back");
}

/// Measurements for docs/ospf-interop.md (one run, printed, not asserted):
/// (a) withdrawal → /32 gone from the FRR peer's kernel: fulcrum (reload without the
/// prefix) against FRR (address deleted from lo); (b) process start → /32 in the peer's
/// kernel on point-to-point, hello 1 / dead 4: fulcrumd against FRR.
#[test]
#[ignore = "measurement: run with --ignored --nocapture"]
fn measure_withdraw_and_start() {
    let lab = Lab::new("ful_measure").expect("lab (needs root)");
    let r = lab.router("r").expect("r");
    let a = lab.router("a").expect("a");
    let f = lab.router("f").expect("f");
    link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
    link(&lab, &r, "r-f", "10.0.2.1/30", &f, "eth0", "10.0.2.2/30");
    let frr_r = r
        .frr(
            &FrrConfig::new(rid("9.9.9.9"))
                .interface(OspfInterface::p2p("r-a").timers(1, 4))
                .interface(OspfInterface::p2p("r-f").timers(1, 4))
                .network("10.0.1.0/30", "0")
                .network("10.0.2.0/30", "0"),
        )
        .expect("frr r");
    let poll = |prefix: &str, present: bool, t0: Instant| -> Duration {
        loop {
            let has = !kernel_copies(&r, prefix).is_empty();
            if has == present {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "timeout on {prefix}"
            );
        }
    };
    // (b) start → VIP at the peer.
    let mut fa = Fulcrum::new(&a, "1.0.0.1", vec![Iface::p2p("eth0")]);
    fa.write_config(&["100.64.0.1/32"]);
    let t0 = Instant::now();
    fa.spawn();
    let fulcrum_start = poll("100.64.0.1/32", true, t0);
    f.addr("lo", "100.64.0.2/32").expect("lo");
    let t0 = Instant::now();
    let _frr_f = f
        .frr(
            &FrrConfig::new(rid("2.0.0.2"))
                .interface(OspfInterface::p2p("eth0").timers(1, 4))
                .network("10.0.2.0/30", "0")
                .network("100.64.0.2/32", "0"),
        )
        .expect("frr f");
    let frr_start = poll("100.64.0.2/32", true, t0);
    frr_r
        .wait_neighbor_full("1.0.0.1", DEADLINE)
        .expect("full a");
    frr_r
        .wait_neighbor_full("2.0.0.2", DEADLINE)
        .expect("full f");
    // Let MinLSInterval-style throttles settle before withdrawing.
    std::thread::sleep(Duration::from_secs(6));
    // (a) withdrawal.
    fa.write_config(&[]);
    let t0 = Instant::now();
    fa.cli(&["reload"]);
    let fulcrum_withdraw = poll("100.64.0.1/32", false, t0);
    let t0 = Instant::now();
    f.del_addr("lo", "100.64.0.2/32").expect("del lo");
    let frr_withdraw = poll("100.64.0.2/32", false, t0);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-6);
    println!(
        "start → VIP at peer: fulcrumd {fulcrum_start:?}, FRR {frr_start:?} (ratio {:.2})",
        ratio(fulcrum_start, frr_start)
    );
    println!(
        "withdraw → VIP gone at peer: fulcrumd {fulcrum_withdraw:?}, FRR {frr_withdraw:?} (ratio {:.2})",
        ratio(fulcrum_withdraw, frr_withdraw)
    );
}
