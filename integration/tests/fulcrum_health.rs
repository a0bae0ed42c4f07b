//! Health-driven VIP announcement, end to end (needs root): `fulcrumd` in `mode =
//! "kernel"` checks two nginx real servers in their own namespaces and announces the VIP
//! /32 over OSPF to a real FRR router only while its services hold quorum.
//!
//! Topology of every test (its own lab, so the tests run in parallel):
//!
//! ```text
//!   r (FRR ospfd, p2p hello 1 / dead 4, lsa min-arrival 0)
//!   │ 10.0.1.1/30 ── 10.0.1.2/30
//!   a (fulcrumd)
//!   ├ 10.0.3.1/30 ── 10.0.3.2/30  w1 (nginx)
//!   └ 10.0.4.1/30 ── 10.0.4.2/30  w2 (nginx)
//! ```
//!
//! The issue items proved: (a) quorum loss withdraws the /32 from FRR's kernel table
//! within keepalived's detection time + 1 s and a restarted server brings it back after
//! `rise`; (b) an HTTP check expecting 200 marks a server answering 500 down and the VIP
//! follows the quorum; (c) MISC_CHECK exit codes (0 up, 1 down, `misc_dynamic` 2+N →
//! weight N); (d) operator drain / undrain and the drain file, and a reload that keeps
//! the running service (no flap); plus `[vip] cost_out` seen as FRR's metric, and the
//! metrics passing `promtool check metrics`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use integration::lab::pid_alive;
use integration::{wait_until, FrrConfig, Lab, Nginx, NginxConfig, Node, OspfInterface, Process};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);
const VIP: &str = "100.64.0.10";
const VIP32: &str = "100.64.0.10/32";

/// Paths of `fulcrumd` and `fulcrum`, built once with this test binary's target
/// directory and profile.
fn binaries() -> &'static (PathBuf, PathBuf) {
    integration::build::fulcrum_binaries().unwrap_or_else(|e| panic!("{e}"))
}

/// The lab of one test: FRR router `r`, fulcrum node `a`, real-server nodes `w1`, `w2`.
struct Bed {
    // Dropped first: fulcrumd stops (flushing its LSAs) before the lab goes.
    proc: Option<Process>,
    frr: integration::Frr,
    r: Node,
    a: Node,
    w: [Node; 2],
    _lab: Lab,
}

fn link(lab: &Lab, a: &Node, a_if: &str, a_ip: &str, b: &Node, b_if: &str, b_ip: &str) {
    lab.link(a, a_if, b, b_if).expect("link");
    a.addr(a_if, a_ip).expect("addr");
    b.addr(b_if, b_ip).expect("addr");
}

impl Bed {
    fn new(name: &str) -> Bed {
        let lab = Lab::new(name).expect("lab (needs root)");
        let r = lab.router("r").expect("r");
        let a = lab.router("a").expect("a");
        let w1 = lab.node("w1").expect("w1");
        let w2 = lab.node("w2").expect("w2");
        link(&lab, &r, "r-a", "10.0.1.1/30", &a, "eth0", "10.0.1.2/30");
        link(&lab, &a, "a-w1", "10.0.3.1/30", &w1, "eth0", "10.0.3.2/30");
        link(&lab, &a, "a-w2", "10.0.4.1/30", &w2, "eth0", "10.0.4.2/30");
        let frr = r
            .frr(
                &FrrConfig::new("9.9.9.9".parse().expect("rid"))
                    .interface(OspfInterface::p2p("r-a").timers(1, 4))
                    .network("10.0.1.0/30", "0")
                    .extra("timers lsa min-arrival 0"),
            )
            .expect("frr");
        Bed {
            _lab: lab,
            r,
            a,
            w: [w1, w2],
            frr,
            proc: None,
        }
    }

    fn rs_addr(i: usize) -> &'static str {
        ["10.0.3.2", "10.0.4.2"][i]
    }

    /// nginx on real server `i`: port 80 answers 200; port 8080 answers 500 while the
    /// file `<w dir>/fail` exists, else 200.
    fn nginx(&self, i: usize) -> Nginx {
        let node = &self.w[i];
        let addr = Self::rs_addr(i);
        let fail = node.dir().join("fail");
        let mut cfg = NginxConfig::default().listen(addr, 80, false);
        cfg.extra_http.push(format!(
            "server {{ listen {addr}:8080; default_type text/plain; location / {{ \
             if (-f {}) {{ return 500 \"failing\\n\"; }} return 200 \"ok\\n\"; }} }}",
            fail.display()
        ));
        node.nginx(&cfg).expect("nginx")
    }

    fn socket(&self) -> PathBuf {
        self.a.dir().join("fulcrum.sock")
    }

    /// Writes `fulcrum.toml`: the OSPF part with `services` (TOML) appended.
    fn write_config(&self, services: &str) -> PathBuf {
        let cfg = format!(
            "[global]\nrouter_id = \"1.0.0.1\"\ncontrol_socket = \"{}\"\n\
             metrics = \"127.0.0.1:9477\"\ndrain_file = \"{}\"\n\n\
             [dataplane]\nmode = \"kernel\"\n\n[[interface]]\nname = \"eth0\"\n\n\
             [ospf]\nmin_ls_interval = \"0s\"\nmin_ls_arrival = \"0s\"\n\n\
             [[ospf.interface]]\nname = \"eth0\"\narea = \"0.0.0.0\"\n\
             network = \"point-to-point\"\nhello_interval = \"1s\"\ndead_interval = \"4s\"\n\n\
             {services}",
            self.socket().display(),
            self.drain_file().display(),
        );
        let path = self.a.dir().join("fulcrum.toml");
        fs::write(&path, cfg).expect("write fulcrum.toml");
        path
    }

    /// Rewrites the configuration with `services` and reloads.
    fn reload(&self, services: &str) {
        self.write_config(services);
        let out = self.cli(&["reload"]);
        assert!(!out.contains("refused"), "reload: {out}");
    }

    /// Starts fulcrumd with `services`; returns once FRR has it Full.
    fn start(&mut self, services: &str) {
        let path = self.write_config(services);
        let (fulcrumd, _) = binaries();
        let p = self
            .a
            .spawn(&[
                fulcrumd.to_str().expect("utf-8"),
                "--config",
                path.to_str().expect("utf-8"),
            ])
            .expect("spawn fulcrumd");
        self.proc = Some(p);
        wait_until(Duration::from_secs(10), "fulcrumd control socket", || {
            Ok(self.try_cli(&["status"]).is_ok())
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
        self.frr
            .wait_neighbor_full("1.0.0.1", DEADLINE)
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.log()));
    }

    fn drain_file(&self) -> PathBuf {
        self.a.dir().join("drain")
    }

    fn log(&self) -> String {
        self.proc
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

    fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|e| panic!("fulcrum {args:?}: {e}\nlog:\n{}", self.log()))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.cli(&a)).expect("JSON answer")
    }

    /// The `fulcrum health --json` row of real server `rs` (`ADDR:PORT`) of `service`.
    fn health_row(&self, service: &str, rs: &str) -> Value {
        let v = self.json(&["health"]);
        v["checks"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|r| r["service"] == service && r["real_server"] == rs)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no health row for {rs}: {v}"))
    }

    fn vip_row(&self) -> Value {
        let v = self.json(&["vips"]);
        v["vips"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["vip"] == VIP).cloned())
            .unwrap_or_else(|| panic!("no vips row: {v}"))
    }

    fn wait_vip(&self, present: bool) -> Duration {
        let t = Instant::now();
        let r = if present {
            self.r.wait_route(VIP32, 1, DEADLINE).map(drop)
        } else {
            self.r.wait_no_route(VIP32, DEADLINE)
        };
        r.unwrap_or_else(|e| panic!("{e}\nfulcrumd log:\n{}", self.log()));
        t.elapsed()
    }
}

/// A service block announcing [`VIP`] over OSPF, real servers on ports `ports`.
fn service(name: &str, check: &str, quorum: u32, servers: &[(&str, u16, &str)]) -> String {
    let mut s = format!(
        "[[service]]\nname = \"{name}\"\nvip = \"{VIP}\"\nport = 80\nforward = \"nat\"\n\
         announce = \"ospf\"\nquorum = {quorum}\ncheck = {check}\n\n"
    );
    for (addr, port, extra) in servers {
        s.push_str(&format!(
            "[[service.real_server]]\naddress = \"{addr}\"\nport = {port}\n{extra}\n"
        ));
    }
    s
}

fn stop_nginx(n: &Nginx) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(n.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill nginx");
    wait_until(Duration::from_secs(5), "nginx to exit", || {
        Ok(!pid_alive(n.pid()))
    })
    .expect("nginx exit");
}

/// (a) TCP_CHECK, `interval 1s, timeout 1s, retries 0`, quorum 1: stopping both nginx
/// withdraws the /32. keepalived's arithmetic (see `health::checker`): a server is down
/// at `t0 + delay_loop + (retry + 1)·c_fail + retry·delay_before_retry` after its last
/// good check `t0`; with a refused connection `c_fail ≈ 0` and at worst the 1 s timeout,
/// so down within `1 + 1 = 2 s` of the death, and the route must leave FRR's kernel table
/// within that + 1 s. With `rise = 2` a restarted server is up after two good checks
/// (≥ 1 s), then the VIP comes back.
#[test]
fn quorum_loss_withdraws_vip_within_detection_time() {
    let mut bed = Bed::new("ful_hl_quorum");
    let n1 = bed.nginx(0);
    let n2 = bed.nginx(1);
    let check = "{ type = \"tcp\", interval = \"1s\", timeout = \"1s\", retries = 0, rise = 2 }";
    bed.start(&service(
        "web",
        check,
        1,
        &[(Bed::rs_addr(0), 80, ""), (Bed::rs_addr(1), 80, "")],
    ));
    bed.wait_vip(true);
    wait_until(DEADLINE, "both servers checked up", || {
        let v = bed.json(&["health"]);
        Ok(v["checks"].as_array().is_some_and(|a| {
            a.len() == 2
                && a.iter()
                    .all(|r| r["state"] == "up" && r["last_result"] == "success")
        }))
    })
    .expect("checked");

    // One down: quorum (1) still held.
    stop_nginx(&n1);
    wait_until(DEADLINE, "w1 down", || {
        Ok(bed.health_row("web", "10.0.3.2:80")["server_up"] == false)
    })
    .expect("w1 down");
    assert_eq!(bed.vip_row()["announced"], true);
    assert!(bed.r.route_to(VIP32).expect("route").is_some());

    let detection = Duration::from_secs(1 + 1); // interval + (retries + 1) × timeout
    let t = Instant::now();
    stop_nginx(&n2);
    bed.wait_vip(false);
    let took = t.elapsed();
    assert!(
        took <= detection + Duration::from_secs(1),
        "VIP withdrawn after {took:?}, limit {:?}\n{}",
        detection + Duration::from_secs(1),
        bed.log()
    );
    eprintln!("both real servers stopped → VIP left FRR's kernel table after {took:?}");
    let row = bed.vip_row();
    assert_eq!(row["announced"], false, "{row}");
    assert_eq!(row["state"], "withdrawn", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .is_some_and(|r| r.contains("quorum lost") && r.contains("web")),
        "{row}"
    );
    assert!(
        bed.log().contains("VIP 100.64.0.10 withdrawn"),
        "{}",
        bed.log()
    );

    // One back: up after `rise` (2) good checks, then the VIP.
    let t = Instant::now();
    let _n1 = bed.nginx(0);
    bed.wait_vip(true);
    let back = t.elapsed();
    eprintln!("one real server restarted → VIP back after {back:?}");
    assert!(
        back >= Duration::from_millis(900),
        "VIP back after {back:?}: rise 2 needs two checks 1 s apart"
    );
    assert_eq!(bed.health_row("web", "10.0.3.2:80")["server_up"], true);
    assert_eq!(bed.health_row("web", "10.0.4.2:80")["server_up"], false);
}

/// (b) HTTP_GET expecting 200, quorum 2 of two servers: a server answering 500 is down
/// (`fulcrum health --json`) and the VIP is withdrawn; when it answers 200 again the VIP
/// returns. Metrics pass `promtool check metrics`.
#[test]
fn http_500_marks_server_down_and_vip_follows_quorum() {
    let mut bed = Bed::new("ful_hl_http");
    let _n1 = bed.nginx(0);
    let _n2 = bed.nginx(1);
    let check = "{ type = \"http\", interval = \"1s\", timeout = \"1s\", retries = 0, path = \"/health\", status_codes = [200] }";
    bed.start(&service(
        "api",
        check,
        2,
        &[(Bed::rs_addr(0), 8080, ""), (Bed::rs_addr(1), 8080, "")],
    ));
    bed.wait_vip(true);
    fs::write(bed.w[1].dir().join("fail"), "").expect("fail file");
    bed.wait_vip(false);
    let row = bed.health_row("api", "10.0.4.2:8080");
    assert_eq!(row["check"], "HTTP_GET", "{row}");
    assert_eq!(row["state"], "down", "{row}");
    assert_eq!(row["server_up"], false, "{row}");
    assert_eq!(row["last_result"], "bad response", "{row}");
    assert!(row["failures"].as_u64().is_some_and(|f| f >= 1), "{row}");
    assert!(row["latency_ms"].as_f64().is_some(), "{row}");
    let ok = bed.health_row("api", "10.0.3.2:8080");
    assert_eq!(ok["state"], "up", "{ok}");
    assert_eq!(ok["service_quorum"], false, "{ok}");
    let vip = bed.vip_row();
    assert_eq!(vip["services_up"], 0, "{vip}");
    assert_eq!(vip["services_total"], 1, "{vip}");
    let text = bed.cli(&["health"]);
    assert!(
        text.contains("HTTP_GET") && text.contains("bad response"),
        "{text}"
    );

    fs::remove_file(bed.w[1].dir().join("fail")).expect("rm fail");
    bed.wait_vip(true);
    assert_eq!(bed.health_row("api", "10.0.4.2:8080")["state"], "up");

    let metrics = bed
        .a
        .exec_ok(&["curl", "-s", "http://127.0.0.1:9477/metrics"])
        .expect("metrics");
    for needle in [
        "fulcrum_health_server_up{server=\"10.0.4.2:8080\",service=\"api\"} 1",
        "fulcrum_service_quorum{service=\"api\"} 1",
        "fulcrum_vip_announced{vip=\"100.64.0.10\"} 1",
        "fulcrum_vip_metric{vip=\"100.64.0.10\"} 1",
        "fulcrum_health_probes_total{kind=\"HTTP_GET\",result=\"failure\"}",
        "fulcrum_health_probes_total{kind=\"HTTP_GET\",result=\"success\"}",
        "fulcrum_health_probe_duration_seconds_bucket{le=\"0.1\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    let path = bed.a.dir().join("metrics.txt");
    fs::write(&path, &metrics).expect("write metrics");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(fs::File::open(&path).expect("open"))
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (c) MISC_CHECK with `dynamic = true`: the script exits with the code the test writes
/// to a file — 0 up, 1 down (VIP withdrawn), 2+N up with weight N.
#[test]
fn misc_check_exit_codes_and_dynamic_weight() {
    let mut bed = Bed::new("ful_hl_misc");
    let code = bed.a.dir().join("code");
    fs::write(&code, "0\n").expect("code");
    let script = bed.a.dir().join("check.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\nexit $(cat {})\n", code.display()),
    )
    .expect("script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    let check = format!(
        "{{ type = \"misc\", interval = \"1s\", timeout = \"1s\", retries = 0, program = \"{}\", dynamic = true }}",
        script.display()
    );
    bed.start(&service(
        "misc",
        &check,
        1,
        &[(Bed::rs_addr(0), 80, "weight = 3")],
    ));
    bed.wait_vip(true);
    let rs = "10.0.3.2:80";
    wait_until(DEADLINE, "misc check ran", || {
        Ok(bed.health_row("misc", rs)["last_result"] == "success")
    })
    .expect("ran");
    assert_eq!(bed.health_row("misc", rs)["check"], "MISC_CHECK");
    assert_eq!(bed.health_row("misc", rs)["weight"], 3);

    fs::write(&code, "1\n").expect("code");
    bed.wait_vip(false);
    let row = bed.health_row("misc", rs);
    assert_eq!(row["state"], "down", "{row}");
    assert_eq!(row["last_result"], "program failed", "{row}");

    fs::write(&code, "7\n").expect("code"); // 2 + 5
    bed.wait_vip(true);
    wait_until(DEADLINE, "weight 5", || {
        Ok(bed.health_row("misc", rs)["weight"] == 5)
    })
    .unwrap_or_else(|e| panic!("{e}: {}", bed.health_row("misc", rs)));
    let row = bed.health_row("misc", rs);
    assert_eq!(row["state"], "up", "{row}");
    assert_eq!(row["last_result"], "success, weight 5", "{row}");
    let text = bed.cli(&["health"]);
    assert!(text.contains("MISC_CHECK"), "{text}");
}

/// (d) With every server healthy, `fulcrum vips drain VIP` withdraws the VIP and
/// `undrain` restores it; the drain file does the same; a VIP that is not health-driven
/// is refused.
#[test]
fn operator_drain_and_drain_file() {
    let mut bed = Bed::new("ful_hl_drain");
    let _n1 = bed.nginx(0);
    let _n2 = bed.nginx(1);
    let check = "{ type = \"tcp\", interval = \"1s\", timeout = \"1s\", retries = 0 }";
    let web = service(
        "web",
        check,
        2,
        &[(Bed::rs_addr(0), 80, ""), (Bed::rs_addr(1), 80, "")],
    );
    bed.start(&web);
    bed.wait_vip(true);

    let out = bed.json(&["vips", "drain", VIP]);
    assert!(out.to_string().contains("drained"), "{out}");
    let took = bed.wait_vip(false);
    eprintln!("operator drain → VIP left FRR's kernel table after {took:?}");
    let row = bed.vip_row();
    assert_eq!(row["drained"], true, "{row}");
    assert_eq!(row["reason"], "drained (operator)", "{row}");
    let text = bed.cli(&["vips"]);
    assert!(
        text.contains("withdrawn") && text.contains("drained (operator)"),
        "{text}"
    );
    bed.cli(&["vips", "undrain", VIP]);
    bed.wait_vip(true);
    assert_eq!(bed.vip_row()["state"], "announced");

    fs::write(bed.drain_file(), "").expect("drain file");
    bed.wait_vip(false);
    assert_eq!(bed.vip_row()["reason"], "drained (drain file)");
    fs::remove_file(bed.drain_file()).expect("rm drain file");
    bed.wait_vip(true);

    // Reload adding a service that does not announce: the running service keeps its
    // state (not rebuilt) and the VIP does not flap.
    let quiet = "[[service]]\nname = \"quiet\"\nvip = \"100.64.0.20\"\nport = 80\n\
                 forward = \"nat\"\n\n[[service.real_server]]\naddress = \"10.0.3.2\"\n";
    let before = bed.health_row("web", "10.0.3.2:80")["since_seconds"].as_u64();
    bed.reload(&format!("{web}{quiet}"));
    wait_until(DEADLINE, "service quiet running", || {
        let v = bed.json(&["health"]);
        Ok(v["checks"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["service"] == "quiet")))
    })
    .expect("quiet");
    assert!(
        bed.health_row("web", "10.0.3.2:80")["since_seconds"].as_u64() >= before,
        "web was rebuilt"
    );
    assert!(
        bed.r.route_to(VIP32).expect("route").is_some(),
        "VIP flapped"
    );
    let log = bed.log();
    assert!(!log.contains("service web changed"), "{log}");
    assert_eq!(
        log.matches("VIP 100.64.0.10 withdrawn").count(),
        2,
        "one withdrawal per drain, none on reload:\n{log}"
    );
    let vips = bed.json(&["vips"]);
    assert_eq!(vips["vips"].as_array().map(Vec::len), Some(1), "{vips}");

    let err = bed
        .try_cli(&["vips", "drain", "100.64.0.99"])
        .expect_err("unknown VIP refused");
    assert!(err.contains("not a health-driven VIP"), "{err}");
    assert!(
        bed.log().contains("operator drain") && bed.log().contains("drain file present"),
        "{}",
        bed.log()
    );
}

/// FRR's OSPF metric for [`VIP32`] (`show ip route json`), if it has the route.
fn frr_metric(bed: &Bed) -> Option<u64> {
    let v = bed
        .frr
        .vtysh(&[&format!("show ip route {VIP32} json")])
        .ok()?;
    v[VIP32][0]["metric"].as_u64()
}

/// `[vip] cost_out`: losing quorum keeps the /32 announced with the cost-out metric
/// (FRR's route metric rises by it) instead of withdrawing, and `fulcrum vips` says
/// `costed-out`; quorum back restores the normal metric.
#[test]
fn cost_out_raises_the_metric_instead_of_withdrawing() {
    let mut bed = Bed::new("ful_hl_cost");
    let _n1 = bed.nginx(0);
    let check = "{ type = \"http\", interval = \"1s\", timeout = \"1s\", retries = 0, status_codes = [200] }";
    bed.start(&format!(
        "{}[vip.\"{VIP}\"]\nmetric = 5\ncost_out = 60000\n",
        service("web", check, 1, &[(Bed::rs_addr(0), 8080, "")])
    ));
    bed.wait_vip(true);
    let mut normal = 0;
    wait_until(DEADLINE, "FRR metric of the VIP", || {
        normal = frr_metric(&bed).unwrap_or(0);
        Ok(normal > 0)
    })
    .expect("metric");
    assert_eq!(bed.vip_row()["metric"], 5);

    fs::write(bed.w[0].dir().join("fail"), "").expect("fail file");
    wait_until(DEADLINE, "VIP costed out at FRR", || {
        Ok(frr_metric(&bed).is_some_and(|m| m == normal + 60000 - 5))
    })
    .unwrap_or_else(|e| panic!("{e}: metric {:?}\n{}", frr_metric(&bed), bed.log()));
    let row = bed.vip_row();
    assert_eq!(row["state"], "costed-out", "{row}");
    assert_eq!(row["announced"], true, "{row}");
    assert_eq!(row["metric"], 60000, "{row}");
    assert!(bed.r.route_to(VIP32).expect("route").is_some());

    fs::remove_file(bed.w[0].dir().join("fail")).expect("rm fail");
    wait_until(DEADLINE, "normal metric back at FRR", || {
        Ok(frr_metric(&bed) == Some(normal))
    })
    .expect("metric back");
    assert_eq!(bed.vip_row()["state"], "announced");
}
