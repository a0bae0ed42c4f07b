//! VRRP against real keepalived (needs root): `fulcrumd` in `mode = "kernel"` running
//! only VRRP, keepalived 2.2.7 (`--vrrp`) on the same bridge segment, a client namespace
//! curling the VIP (nginx on both nodes answers on every address).
//!
//! ```text
//!          sw (bridge br0, tcpdump)            sw2 (bridge, sync-group test only)
//!     ┌──────────┼──────────┐                  ┌──────┴──────┐
//!  f eth0     k eth0     c eth0             f eth1        k eth1
//!  10.50.0.1  10.50.0.2  10.50.0.10         10.51.0.1     10.51.0.2
//!  fulcrumd   keepalived  curl              VIP 10.51.0.100 (VI_B)
//!          VIP 10.50.0.100 (VI_1)
//! ```
//!
//! The issue items proved: fulcrum Master with keepalived Backup and the reverse; killing
//! the Master (kill -9, and SIGTERM with its priority-0 resignation) moves the VIP within
//! 3 × advert_int + Skew_Time (measured and asserted), a capture on the segment sees the
//! new Master's gratuitous ARP for the VIP from its MAC, and the client resumes; preemption
//! (a higher-priority router takes over) and nopreempt (it does not); a sync group whose
//! two instances fail over together when one interface's link goes down; a reload that
//! rebuilds a changed instance without flapping an unchanged one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use integration::{wait_until, Lab, NginxConfig, Node, Process, Switch};
use nix::sys::signal::Signal;
use serde_json::Value;

const VIP: &str = "10.50.0.100";
const VIP_B: &str = "10.51.0.100";
const DEADLINE: Duration = Duration::from_secs(20);
/// Poll granularity and process start-up allowed on top of the protocol bound.
const SLACK: Duration = Duration::from_millis(400);

/// Paths of `fulcrumd` and `fulcrum`, built once with this test binary's target
/// directory and profile.
fn binaries() -> &'static (PathBuf, PathBuf) {
    integration::build::fulcrum_binaries().unwrap_or_else(|e| panic!("{e}"))
}

/// Master_Down_Interval of a Backup with `priority` and advert_int 1 s (v2):
/// 3 × advert_int + (256 − priority)/256 s.
fn master_down(priority: u32) -> Duration {
    Duration::from_secs(3) + Duration::from_secs_f64(f64::from(256 - priority) / 256.0)
}

/// One VRRP instance as both configurations need it.
#[derive(Clone)]
struct Vi {
    name: &'static str,
    interface: &'static str,
    vrid: u8,
    priority: u32,
    vip: &'static str,
    preempt: bool,
}

impl Vi {
    fn a(priority: u32) -> Vi {
        Vi {
            name: "VI_1",
            interface: "eth0",
            vrid: 51,
            priority,
            vip: VIP,
            preempt: true,
        }
    }

    fn b(priority: u32) -> Vi {
        Vi {
            name: "VI_B",
            interface: "eth1",
            vrid: 62,
            priority,
            vip: VIP_B,
            preempt: true,
        }
    }

    fn keepalived(&self) -> String {
        format!(
            "vrrp_instance {} {{\n state BACKUP\n interface {}\n virtual_router_id {}\n \
             priority {}\n advert_int 1\n{} authentication {{\n  auth_type PASS\n  \
             auth_pass s3cret\n }}\n virtual_ipaddress {{\n  {}/24\n }}\n}}\n",
            self.name,
            self.interface,
            self.vrid,
            self.priority,
            if self.preempt { "" } else { " nopreempt\n" },
            self.vip
        )
    }

    fn fulcrum(&self) -> String {
        format!(
            "[[vrrp.instance]]\nname = \"{}\"\ninterface = \"{}\"\nvirtual_router_id = {}\n\
             priority = {}\npreempt = {}\n\
             authentication = {{ type = \"PASS\", password = \"s3cret\" }}\n\
             virtual_ipaddress = [\"{}/24\"]\n\n",
            self.name, self.interface, self.vrid, self.priority, self.preempt, self.vip
        )
    }
}

/// The lab of one test.
struct Bed {
    // Processes first: they stop before the lab goes.
    fulcrumd: Option<Process>,
    keepalived: Option<Process>,
    capture: Option<Process>,
    _nginx: Vec<integration::Nginx>,
    f: Node,
    k: Node,
    c: Node,
    sw: Switch,
    lab: Lab,
}

impl Bed {
    fn new(name: &str, second_segment: bool) -> Bed {
        let lab = Lab::new(name).expect("lab (needs root)");
        let sw = lab.switch("sw").expect("switch");
        let f = lab.node("f").expect("f");
        let k = lab.node("k").expect("k");
        let c = lab.node("c").expect("c");
        for (n, ip) in [
            (&f, "10.50.0.1/24"),
            (&k, "10.50.0.2/24"),
            (&c, "10.50.0.10/24"),
        ] {
            lab.attach(n, "eth0", &sw).expect("attach");
            n.addr("eth0", ip).expect("addr");
        }
        if second_segment {
            let sw2 = lab.switch("sw2").expect("switch 2");
            for (n, ip) in [(&f, "10.51.0.1/24"), (&k, "10.51.0.2/24")] {
                lab.attach(n, "eth1", &sw2).expect("attach");
                n.addr("eth1", ip).expect("addr");
            }
        }
        let mut nginx = Vec::new();
        for n in [&f, &k] {
            nginx.push(
                n.nginx(&NginxConfig::default().listen("0.0.0.0", 80, false))
                    .expect("nginx"),
            );
        }
        Bed {
            fulcrumd: None,
            keepalived: None,
            capture: None,
            _nginx: nginx,
            f,
            k,
            c,
            sw,
            lab,
        }
    }

    fn socket(&self) -> PathBuf {
        self.f.dir().join("fulcrum.sock")
    }

    fn write_config(&self, instances: &[Vi], extra: &str) -> PathBuf {
        let mut cfg = format!(
            "[global]\ncontrol_socket = \"{}\"\nmetrics = \"127.0.0.1:9477\"\n\n\
             [dataplane]\nmode = \"kernel\"\n\n",
            self.socket().display()
        );
        for vi in instances {
            cfg.push_str(&vi.fulcrum());
        }
        cfg.push_str(extra);
        let path = self.f.dir().join("fulcrum.toml");
        fs::write(&path, cfg).expect("write fulcrum.toml");
        path
    }

    fn start_fulcrum(&mut self, instances: &[Vi], extra: &str) {
        let path = self.write_config(instances, extra);
        let (fulcrumd, _) = binaries();
        let p = self
            .f
            .spawn(&[
                fulcrumd.to_str().expect("utf-8"),
                "--config",
                path.to_str().expect("utf-8"),
            ])
            .expect("spawn fulcrumd");
        self.fulcrumd = Some(p);
        wait_until(Duration::from_secs(10), "fulcrumd control socket", || {
            Ok(self.try_cli(&["vrrp"]).is_ok())
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
    }

    fn start_keepalived(&mut self, instances: &[Vi], extra: &str) {
        let mut conf = "global_defs {\n router_id k\n}\n".to_string();
        conf.push_str(extra);
        for vi in instances {
            conf.push_str(&vi.keepalived());
        }
        self.keepalived = Some(self.k.keepalived(&conf).expect("keepalived"));
    }

    /// Starts tcpdump on the bridge writing ARP frames to a file.
    fn start_capture(&mut self) -> PathBuf {
        let file = self.sw.node().dir().join("arp.pcap");
        let p = self
            .sw
            .node()
            .spawn(&[
                "tcpdump",
                "-i",
                "br0",
                "-nn",
                "-U",
                "--immediate-mode",
                "-w",
                file.to_str().expect("utf-8"),
                "arp",
            ])
            .expect("tcpdump");
        let log = p.log_path().to_path_buf();
        wait_until(Duration::from_secs(10), "tcpdump listening", || {
            Ok(fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("listening on"))
        })
        .expect("tcpdump start");
        self.capture = Some(p);
        file
    }

    /// Stops the capture and returns `tcpdump -e -r` of it.
    fn read_capture(&mut self, file: &Path) -> String {
        if let Some(p) = self.capture.take() {
            p.signal(Signal::SIGINT);
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = Command::new("tcpdump")
            .args(["-nn", "-e", "-r"])
            .arg(file)
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        self.fulcrumd
            .as_ref()
            .and_then(|p| fs::read_to_string(p.log_path()).ok())
            .unwrap_or_default()
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

    fn vrrp_row(&self, name: &str) -> Value {
        let text = self
            .try_cli(&["--json", "vrrp"])
            .unwrap_or_else(|e| panic!("fulcrum vrrp: {e}\nlog:\n{}", self.log()));
        let v: Value = serde_json::from_str(&text).expect("JSON");
        v["instances"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no row {name}: {v}"))
    }

    fn fulcrum_state(&self, name: &str) -> String {
        self.vrrp_row(name)["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn wait_fulcrum_state(&self, name: &str, state: &str) {
        wait_until(DEADLINE, &format!("fulcrum {name} {state}"), || {
            Ok(self.fulcrum_state(name) == state)
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
    }

    /// kill -9 of keepalived's VRRP child and then of its parent (a parent killed alone
    /// makes the child stop cleanly, sending priority 0).
    fn kill9_keepalived(&mut self) {
        let pidfile = self.k.dir().join("keepalived/vrrp.pid");
        let child: i32 = fs::read_to_string(&pidfile)
            .expect("vrrp.pid")
            .trim()
            .parse()
            .expect("pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL)
            .expect("kill -9 the VRRP child");
        if let Some(p) = self.keepalived.take() {
            p.signal(Signal::SIGKILL);
            drop(p);
        }
        // keepalived refuses to start while its pid files are there.
        for f in ["keepalived.pid", "vrrp.pid", "checkers.pid"] {
            let _ = fs::remove_file(self.k.dir().join("keepalived").join(f));
        }
    }

    fn keepalived_log(&self) -> String {
        self.keepalived
            .as_ref()
            .and_then(|p| fs::read_to_string(p.log_path()).ok())
            .unwrap_or_default()
    }

    /// Waits until `vip` is on `node`'s `dev` and returns the time it took from `since`.
    fn wait_vip(&self, node: &Node, dev: &str, vip: &str, since: Instant) -> Duration {
        wait_until(DEADLINE, &format!("{vip} on {}", node.name()), || {
            Ok(has_vip(node, dev, vip))
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nfulcrumd log:\n{}\nkeepalived log:\n{}",
                self.log(),
                self.keepalived_log()
            )
        });
        since.elapsed()
    }

    fn curl_vip(&self) -> bool {
        self.c
            .exec(&["curl", "-s", "-m", "1", &format!("http://{VIP}/")])
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// The client's neighbour entry for the VIP (its MAC), if any.
    fn client_neigh(&self) -> Option<String> {
        let out = self.c.ip(&["neigh", "show", VIP, "dev", "eth0"]).ok()?;
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }
}

fn has_vip(node: &Node, dev: &str, vip: &str) -> bool {
    node.ip(&["-4", "addr", "show", "dev", dev])
        .map(|s| s.contains(&format!("inet {vip}/")))
        .unwrap_or(false)
}

fn mac(node: &Node, dev: &str) -> String {
    let out = node.ip(&["-br", "link", "show", dev]).expect("ip link");
    out.split_whitespace()
        .nth(2)
        .expect("MAC column")
        .to_string()
}

/// The capture shows a gratuitous ARP for `vip` sent from `mac`: a broadcast ARP request
/// whose sender and target address are both the VIP.
fn assert_garp(capture: &str, mac: &str, vip: &str) {
    let garp = |l: &&str| {
        l.contains(&format!(" {mac} > ff:ff:ff:ff:ff:ff, ethertype ARP"))
            && l.contains(&format!("Request who-has {vip} "))
            && l.contains(&format!("tell {vip},"))
    };
    assert!(
        capture.lines().any(|l| garp(&l)),
        "no gratuitous ARP for {vip} from {mac} in:\n{capture}"
    );
}

#[test]
fn fulcrum_master_keepalived_backup_kill9_moves_vip() {
    let mut bed = Bed::new("vrrp-f-master", false);
    bed.start_fulcrum(&[Vi::a(150)], "");
    bed.start_keepalived(&[Vi::a(100)], "");
    bed.wait_fulcrum_state("VI_1", "MASTER");
    bed.wait_vip(&bed.f, "eth0", VIP, Instant::now());
    // keepalived stays Backup: no VIP on k.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!has_vip(&bed.k, "eth0", VIP), "{}", bed.keepalived_log());
    let row = bed.vrrp_row("VI_1");
    assert_eq!(row["master"], "10.50.0.1");
    assert_eq!(row["effective_priority"], 150);
    assert!(bed.curl_vip(), "client reaches the VIP on fulcrum");
    assert_eq!(bed.client_neigh(), Some(mac(&bed.f, "eth0")));

    let cap = bed.start_capture();
    let t0 = Instant::now();
    if let Some(p) = &bed.fulcrumd {
        p.signal(Signal::SIGKILL);
    }
    let took = bed.wait_vip(&bed.k, "eth0", VIP, t0);
    let bound = master_down(100);
    eprintln!(
        "kill -9 of fulcrum master: keepalived took the VIP after {took:?} (bound {bound:?})"
    );
    assert!(took <= bound + SLACK, "took {took:?}, bound {bound:?}");
    wait_until(DEADLINE, "client resumes", || Ok(bed.curl_vip())).expect("client resumes");
    assert_eq!(bed.client_neigh(), Some(mac(&bed.k, "eth0")));
    let text = bed.read_capture(&cap);
    assert_garp(&text, &mac(&bed.k, "eth0"), VIP);
}

#[test]
fn keepalived_master_fulcrum_backup_takes_over_and_higher_priority_preempts() {
    let mut bed = Bed::new("vrrp-k-master", false);
    bed.start_keepalived(&[Vi::a(150)], "");
    bed.wait_vip(&bed.k, "eth0", VIP, Instant::now());
    bed.start_fulcrum(&[Vi::a(100)], "");
    bed.wait_fulcrum_state("VI_1", "BACKUP");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(bed.fulcrum_state("VI_1"), "BACKUP", "{}", bed.log());
    assert_eq!(bed.vrrp_row("VI_1")["master"], "10.50.0.2");
    assert!(!has_vip(&bed.f, "eth0", VIP));
    assert!(bed.curl_vip());

    // kill -9 keepalived: fulcrum takes over, announces itself with gratuitous ARPs.
    let cap = bed.start_capture();
    let t0 = Instant::now();
    bed.kill9_keepalived();
    let took = bed.wait_vip(&bed.f, "eth0", VIP, t0);
    let bound = master_down(100);
    eprintln!(
        "kill -9 of keepalived master: fulcrum took the VIP after {took:?} (bound {bound:?})"
    );
    assert!(took <= bound + SLACK, "took {took:?}, bound {bound:?}");
    assert_eq!(bed.fulcrum_state("VI_1"), "MASTER");
    // keepalived's killed VRRP child may leave the VIP on k: remove it as a restart would.
    let _ = bed
        .k
        .ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    wait_until(DEADLINE, "client resumes", || Ok(bed.curl_vip())).expect("client resumes");
    let f_mac = mac(&bed.f, "eth0");
    assert_eq!(bed.client_neigh(), Some(f_mac.clone()));
    std::thread::sleep(Duration::from_millis(500));
    let text = bed.read_capture(&cap);
    assert_garp(&text, &f_mac, VIP);

    // Preemption: keepalived (150) comes back and takes the VIP from fulcrum (100).
    bed.start_keepalived(&[Vi::a(150)], "");
    let t1 = Instant::now();
    bed.wait_fulcrum_state("VI_1", "BACKUP");
    bed.wait_vip(&bed.k, "eth0", VIP, t1);
    wait_until(DEADLINE, "VIP leaves fulcrum", || {
        Ok(!has_vip(&bed.f, "eth0", VIP))
    })
    .expect("VIP removed from f");
    wait_until(DEADLINE, "client follows", || {
        Ok(bed.curl_vip() && bed.client_neigh() == Some(mac(&bed.k, "eth0")))
    })
    .expect("client follows keepalived");
}

#[test]
fn sigterm_resigns_with_priority_zero() {
    let mut bed = Bed::new("vrrp-resign", false);
    bed.start_fulcrum(&[Vi::a(150)], "");
    bed.start_keepalived(&[Vi::a(100)], "");
    bed.wait_fulcrum_state("VI_1", "MASTER");
    bed.wait_vip(&bed.f, "eth0", VIP, Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    // The metrics say Master, count adverts and pass Prometheus' linter.
    let metrics = bed
        .f
        .exec_ok(&["curl", "-s", "-m", "2", "http://127.0.0.1:9477/metrics"])
        .expect("scrape");
    assert!(
        metrics.contains("fulcrum_vrrp_state{instance=\"VI_1\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("fulcrum_vrrp_transitions_total{instance=\"VI_1\",to=\"master\"} 1"));
    assert!(metrics.contains("fulcrum_vrrp_effective_priority{instance=\"VI_1\"} 150"));
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fulcrum_vrrp_adverts_sent_total{instance=\"VI_1\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("adverts sent");
    assert!(sent >= 2, "{sent}");
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    {
        use std::io::Write as _;
        let mut stdin = lint.stdin.take().expect("stdin");
        stdin.write_all(metrics.as_bytes()).expect("write");
    }
    let out = lint.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    if let Some(p) = &bed.fulcrumd {
        p.signal(Signal::SIGTERM);
    }
    let took = bed.wait_vip(&bed.k, "eth0", VIP, t0);
    // After a priority-0 advert the Backup waits only Skew_Time (100 → 0.61 s).
    let bound = Duration::from_secs_f64(156.0 / 256.0);
    eprintln!(
        "SIGTERM of fulcrum master: keepalived took the VIP after {took:?} (bound {bound:?})"
    );
    assert!(took <= bound + SLACK, "took {took:?}, bound {bound:?}");
    wait_until(DEADLINE, "fulcrum removed the VIP", || {
        Ok(!has_vip(&bed.f, "eth0", VIP))
    })
    .expect("VIP removed on shutdown");
    wait_until(DEADLINE, "client resumes", || Ok(bed.curl_vip())).expect("client resumes");
}

#[test]
fn nopreempt_holds_then_reload_preempts_without_flapping_others() {
    let mut bed = Bed::new("vrrp-nopreempt", false);
    bed.start_keepalived(&[Vi::a(100)], "");
    bed.wait_vip(&bed.k, "eth0", VIP, Instant::now());
    // A second instance only fulcrum runs (no peer): it becomes and stays Master.
    let lone = Vi {
        name: "VI_2",
        interface: "eth0",
        vrid: 52,
        priority: 100,
        vip: "10.50.0.101",
        preempt: true,
    };
    let mut a = Vi::a(150);
    a.preempt = false;
    bed.start_fulcrum(&[a.clone(), lone.clone()], "");
    bed.wait_fulcrum_state("VI_2", "MASTER");
    bed.wait_fulcrum_state("VI_1", "BACKUP");
    // nopreempt: the higher priority does not take over from a live lower-priority master.
    std::thread::sleep(master_down(150) + Duration::from_secs(2));
    assert_eq!(bed.fulcrum_state("VI_1"), "BACKUP", "{}", bed.log());
    assert!(has_vip(&bed.k, "eth0", VIP));
    assert!(!has_vip(&bed.f, "eth0", VIP));
    let lone_transitions = bed.vrrp_row("VI_2")["transitions"].clone();

    // A bad VRRP configuration is refused with its key and line; nothing changes.
    let mut bad = lone.clone();
    bad.vrid = 0;
    let path = bed.write_config(&[a.clone(), bad], "");
    let err = bed.try_cli(&["reload"]).expect_err("bad reload refused");
    let text = fs::read_to_string(&path).expect("config");
    let line = text
        .lines()
        .position(|l| l == "virtual_router_id = 0")
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("line {line}: vrrp.instance[1].virtual_router_id")),
        "{err}"
    );
    assert_eq!(bed.vrrp_row("VI_2")["state"], "MASTER");
    assert_eq!(bed.vrrp_row("VI_2")["vrid"], 52);

    // Reload with preemption on: VI_1 is rebuilt and takes over; VI_2 does not flap.
    a.preempt = true;
    bed.write_config(&[a, lone], "");
    let out = bed.try_cli(&["reload"]).expect("reload");
    assert!(out.contains("generation 2"), "{out}");
    let t0 = Instant::now();
    bed.wait_vip(&bed.f, "eth0", VIP, t0);
    bed.wait_fulcrum_state("VI_1", "MASTER");
    wait_until(DEADLINE, "keepalived steps down", || {
        Ok(!has_vip(&bed.k, "eth0", VIP))
    })
    .expect("keepalived backup");
    let row = bed.vrrp_row("VI_2");
    assert_eq!(row["state"], "MASTER");
    assert_eq!(
        row["transitions"], lone_transitions,
        "VI_2 flapped on reload"
    );
    assert!(has_vip(&bed.f, "eth0", "10.50.0.101"));
    wait_until(DEADLINE, "client follows", || Ok(bed.curl_vip())).expect("client");

    // keepalived's nopreempt: a higher-priority keepalived with nopreempt does not take
    // over from fulcrum either (checked on keepalived's side for symmetry).
    if let Some(p) = bed.keepalived.take() {
        p.signal(Signal::SIGTERM);
        drop(p);
    }
    let mut kb = Vi::a(200);
    kb.preempt = false;
    bed.start_keepalived(&[kb], "");
    std::thread::sleep(master_down(200) + Duration::from_secs(2));
    assert_eq!(bed.fulcrum_state("VI_1"), "MASTER");
    assert!(!has_vip(&bed.k, "eth0", VIP), "{}", bed.keepalived_log());
}

#[test]
fn sync_group_fails_over_together_on_link_down() {
    let mut bed = Bed::new("vrrp-sync", true);
    let group = "[[vrrp.sync_group]]\nname = \"G\"\ngroup = [\"VI_1\", \"VI_B\"]\n";
    let ka_group = "vrrp_sync_group G {\n group {\n  VI_1\n  VI_B\n }\n}\n";
    bed.start_fulcrum(&[Vi::a(150), Vi::b(150)], group);
    bed.start_keepalived(&[Vi::a(100), Vi::b(100)], ka_group);
    bed.wait_fulcrum_state("VI_1", "MASTER");
    bed.wait_fulcrum_state("VI_B", "MASTER");
    bed.wait_vip(&bed.f, "eth0", VIP, Instant::now());
    bed.wait_vip(&bed.f, "eth1", VIP_B, Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    assert!(!has_vip(&bed.k, "eth0", VIP));
    assert!(!has_vip(&bed.k, "eth1", VIP_B));
    assert_eq!(bed.vrrp_row("VI_1")["sync_group"], "G");

    // eth1 of fulcrum loses its link: VI_B goes FAULT, VI_1 follows, keepalived takes both.
    let t0 = Instant::now();
    bed.f
        .ip(&["link", "set", "eth1", "down"])
        .expect("link down");
    // The link event reaches the driver at once (no polling delay).
    bed.wait_fulcrum_state("VI_B", "FAULT");
    let fault = t0.elapsed();
    assert!(fault < Duration::from_millis(500), "FAULT after {fault:?}");
    let took_b = bed.wait_vip(&bed.k, "eth1", VIP_B, t0);
    let took_a = bed.wait_vip(&bed.k, "eth0", VIP, t0);
    // Master_Down_Interval of keepalived's Backup (fulcrum's last advert on eth1 went out
    // before the link went down).
    let bound = master_down(100);
    eprintln!(
        "sync group: FAULT after {fault:?}; VI_B moved after {took_b:?}, VI_1 after {took_a:?} (bound {bound:?})"
    );
    assert!(took_a <= bound + SLACK && took_b <= bound + SLACK);
    assert_eq!(bed.fulcrum_state("VI_B"), "FAULT");
    assert_eq!(bed.fulcrum_state("VI_1"), "FAULT");
    assert!(!has_vip(&bed.f, "eth0", VIP));
    wait_until(DEADLINE, "client follows", || Ok(bed.curl_vip())).expect("client");

    // Link back: the group returns to Backup and preempts keepalived together.
    bed.f.ip(&["link", "set", "eth1", "up"]).expect("link up");
    bed.wait_fulcrum_state("VI_1", "MASTER");
    bed.wait_fulcrum_state("VI_B", "MASTER");
    bed.wait_vip(&bed.f, "eth0", VIP, Instant::now());
    bed.wait_vip(&bed.f, "eth1", VIP_B, Instant::now());
    wait_until(DEADLINE, "keepalived steps down", || {
        Ok(!has_vip(&bed.k, "eth0", VIP) && !has_vip(&bed.k, "eth1", VIP_B))
    })
    .expect("keepalived backup");
    let _ = &bed.lab;
}
