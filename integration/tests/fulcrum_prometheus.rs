//! Observability end to end: a real Prometheus server scrapes a real `fulcrumd`, the
//! alerting rules in `configs/prometheus/fulcrum-rules.yml` are evaluated by it, and every
//! query of the Grafana dashboard `configs/grafana/fulcrum-dashboard.json` is checked
//! against what the daemon actually exports.
//!
//! The fast tests (no root) validate the shipped files with `promtool` and parse the
//! dashboard. The lab test (root) uses this topology:
//!
//! ```text
//!   r (FRR ospfd)
//!   │ r-a  10.0.1.1/30 ── 10.0.1.2/30 eth0   p2p hello 1 / dead 4: Full
//!   │ r-a2 10.0.2.1/30 ── 10.0.2.2/30 eth1   FRR hello 2 / dead 8 vs fulcrum 1 / 4:
//!   │                                        hellos dropped (hello_mismatch), on purpose
//!   a (fulcrumd, mode kernel, metrics 127.0.0.1:9477; prometheus 127.0.0.1:9090)
//!   ├ 10.0.3.1/30 ── 10.0.3.2/30  w1 (nginx)
//!   └ 10.0.4.1/30 ── 10.0.4.2/30  w2 (nginx)
//! ```
//!
//! The second, mismatched link exists so that `fulcrum_ospf_packets_dropped_total` (a
//! counter vector only exported once a packet was dropped) is in the scrape that the
//! dashboard is checked against.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use integration::lab::pid_alive;
use integration::{wait_until, FrrConfig, Lab, Nginx, NginxConfig, Node, OspfInterface, Process};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);
const VIP: &str = "100.64.0.10";
const VIP32: &str = "100.64.0.10/32";
const PROM: &str = "127.0.0.1:9090";
const METRICS_URL: &str = "http://127.0.0.1:9477/metrics";

/// The workspace root (parent of this crate).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn dashboard_path() -> PathBuf {
    workspace().join("configs/grafana/fulcrum-dashboard.json")
}

fn rules_path() -> PathBuf {
    workspace().join("configs/prometheus/fulcrum-rules.yml")
}

// ---------------------------------------------------------------------------------------
// PromQL and exposition helpers
// ---------------------------------------------------------------------------------------

/// Words of PromQL that are not metric names: aggregation operators, grouping and
/// binary-operator keywords, literals.
const PROMQL_KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names (not an expression).
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects. Skips string literals, label matchers
/// `{…}`, ranges/subqueries `[…]`, label lists after `by`/`without`/`on`/…, function
/// names (an identifier followed by `(`), keywords, numbers and Grafana `$variables`.
fn promql_metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // Skips from an opening bracket to its matching closing one (strings respected).
    let skip_group = |mut i: usize, open: char, close: char| -> usize {
        let mut depth = 0usize;
        while let Some(&c) = chars.get(i) {
            if c == '"' || c == '\'' || c == '`' {
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d == '\\' {
                        i += 1;
                    } else if d == c {
                        break;
                    }
                    i += 1;
                }
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        i
    };
    while let Some(&c) = chars.get(i) {
        if c == '"' || c == '\'' || c == '`' {
            // A string literal outside a selector (e.g. label_replace arguments).
            i += 1;
            while let Some(&d) = chars.get(i) {
                i += 1;
                if d == '\\' {
                    i += 1;
                } else if d == c {
                    break;
                }
            }
        } else if c == '{' {
            i = skip_group(i, '{', '}');
        } else if c == '[' {
            i = skip_group(i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // Grafana variable or number/duration (`0.99`, `1e3`, `5m`).
            i += 1;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_' || *d == '.')
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_' || *d == ':')
            {
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
            let mut j = i;
            while chars.get(j).is_some_and(|d| d.is_whitespace()) {
                j += 1;
            }
            let next = chars.get(j).copied();
            if LABEL_LIST_KEYWORDS.contains(&word.as_str()) {
                if next == Some('(') {
                    i = skip_group(j, '(', ')');
                }
            } else if next == Some('(') || PROMQL_KEYWORDS.contains(&word.as_str()) {
                // A function call or a keyword.
            } else {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every sample name of a text exposition plus every family name from `# TYPE` lines
/// (so a histogram family and its `_bucket`, `_sum`, `_count` series all count).
fn exposition_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                names.insert(name.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line.get(..end).unwrap_or_default().to_string());
        }
    }
    names
}

/// `(panel title, expr)` of every query of the dashboard, panels in rows included, plus
/// the metric of each `label_values(metric, label)` template variable as a bare selector.
fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            if let Some(inner) = p["panels"].as_array() {
                walk(inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        dash["panels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
        &mut out,
    );
    for v in dash["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let q = v["query"]["query"]
            .as_str()
            .or_else(|| v["query"].as_str())
            .unwrap_or("");
        if let Some(args) = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
        {
            let metric = args.split(',').next().unwrap_or("").trim();
            out.push((format!("variable {}", v["name"]), metric.to_string()));
        }
    }
    out
}

fn load_dashboard() -> Value {
    let text = fs::read_to_string(dashboard_path()).expect("read dashboard");
    serde_json::from_str(&text).expect("dashboard is JSON")
}

/// Runs `promtool args…` (with `stdin` piped in if given); panics with its output unless
/// it exits 0. Returns stdout.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is needed by this test");
    {
        use std::io::Write as _;
        let mut w = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            w.write_all(s.as_bytes()).expect("write promtool stdin");
        }
    }
    let out = child.wait_with_output().expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

// ---------------------------------------------------------------------------------------
// Fast tests (no root)
// ---------------------------------------------------------------------------------------

#[test]
fn promql_metric_names_skips_functions_labels_and_keywords() {
    assert_eq!(
        promql_metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(fulcrum_health_probe_duration_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))"
        ),
        ["fulcrum_health_probe_duration_seconds_bucket"]
    );
    assert_eq!(
        promql_metric_names(
            "sum(rate(a_sum{job=\"x\", le=\"0.5\"}[5m])) / on (instance) group_left(version) b_count offset 5m > 1e3"
        ),
        ["a_sum", "b_count"]
    );
    assert_eq!(
        promql_metric_names("up{job=\"fulcrum\"} == 0 and fulcrum_vip_announced != bool 8"),
        ["up", "fulcrum_vip_announced"]
    );
    assert_eq!(
        promql_metric_names("label_replace(x, \"dst\", \"$1\", \"src\", \"(.*)\")"),
        ["x"]
    );
    assert_eq!(
        promql_metric_names("topk(3, max without (server) (y:recorded)) * 1000"),
        ["y:recorded"]
    );
    assert!(promql_metric_names("vector(1) + time()").is_empty());
}

#[test]
fn exposition_names_include_histogram_families() {
    let text = "# HELP h_seconds x\n# TYPE h_seconds histogram\n\
                h_seconds_bucket{le=\"0.1\"} 1\nh_seconds_sum 0.05\nh_seconds_count 1\n\
                # TYPE g gauge\ng 3\nplain 1\n";
    let names = exposition_names(text);
    let want: BTreeSet<String> = [
        "h_seconds",
        "h_seconds_bucket",
        "h_seconds_sum",
        "h_seconds_count",
        "g",
        "plain",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(names, want);
}

/// The shipped example scrape config (and the rule file it references) and the rule
/// file on its own pass `promtool`.
#[test]
fn shipped_prometheus_config_and_rules_pass_promtool() {
    let cfg = workspace().join("configs/prometheus/prometheus.yml");
    let out = promtool(&["check", "config", cfg.to_str().expect("utf-8")], None);
    assert!(out.contains("1 rule files found"), "{out}");
    let out = promtool(
        &["check", "rules", rules_path().to_str().expect("utf-8")],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let rules = fs::read_to_string(rules_path()).expect("rules");
    for alert in [
        "FulcrumVipWithdrawn",
        "FulcrumServiceQuorumLost",
        "FulcrumOspfNeighborNotFull",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}

/// The dashboard is a Grafana dashboard of schema ≥ 36, every query goes through the
/// `$datasource` variable, and the panels asked for by the operator-experience issue are
/// there.
#[test]
fn dashboard_structure() {
    let dash = load_dashboard();
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let vars = dash["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter().any(|v| v["type"] == "datasource"
            && v["query"] == "prometheus"
            && v["name"] == "datasource"),
        "no Prometheus datasource variable"
    );
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "duplicate id {p}"
        );
        assert!(p["gridPos"]["w"]
            .as_u64()
            .is_some_and(|w| (1..=24).contains(&w)));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", p["title"]);
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
            assert!(t["refId"].as_str().is_some(), "{}", p["title"]);
        }
    }
    let used: BTreeSet<String> = dashboard_queries(&dash)
        .iter()
        .flat_map(|(_, e)| promql_metric_names(e))
        .collect();
    for m in [
        "fulcrum_vip_announced",
        "fulcrum_vip_metric",
        "fulcrum_service_quorum",
        "fulcrum_health_server_up",
        "fulcrum_health_probes_total",
        "fulcrum_health_probe_duration_seconds_bucket",
        "fulcrum_ospf_neighbor_state",
        "fulcrum_ospf_lsdb_lsas",
        "fulcrum_ospf_packets_received_total",
        "fulcrum_ospf_packets_sent_total",
        "fulcrum_ospf_packets_dropped_total",
        "fulcrum_rib_routes",
        "fulcrum_config_last_reload_success",
        "fulcrum_config_last_reload_timestamp_seconds",
    ] {
        assert!(used.contains(m), "dashboard has no panel using {m}");
    }
    let quantiles = dashboard_queries(&dash)
        .into_iter()
        .filter(|(_, e)| e.starts_with("histogram_quantile("))
        .count();
    assert!(quantiles >= 3, "probe latency quantiles");
}

// ---------------------------------------------------------------------------------------
// The lab (root)
// ---------------------------------------------------------------------------------------

/// Paths of `fulcrumd` and `fulcrum`, built once with this test binary's target
/// directory and profile.
fn binaries() -> &'static (PathBuf, PathBuf) {
    integration::build::fulcrum_binaries().unwrap_or_else(|e| panic!("{e}"))
}

struct Bed {
    // Dropped first: Prometheus, then fulcrumd (flushing its LSAs), then the lab.
    prometheus: Option<Process>,
    fulcrumd: Option<Process>,
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
        link(&lab, &r, "r-a2", "10.0.2.1/30", &a, "eth1", "10.0.2.2/30");
        link(&lab, &a, "a-w1", "10.0.3.1/30", &w1, "eth0", "10.0.3.2/30");
        link(&lab, &a, "a-w2", "10.0.4.1/30", &w2, "eth0", "10.0.4.2/30");
        let frr = r
            .frr(
                &FrrConfig::new("9.9.9.9".parse().expect("rid"))
                    .interface(OspfInterface::p2p("r-a").timers(1, 4))
                    .interface(OspfInterface::p2p("r-a2").timers(2, 8))
                    .network("10.0.1.0/30", "0")
                    .network("10.0.2.0/30", "0")
                    .extra("timers lsa min-arrival 0"),
            )
            .expect("frr");
        Bed {
            _lab: lab,
            r,
            a,
            w: [w1, w2],
            frr,
            fulcrumd: None,
            prometheus: None,
        }
    }

    fn nginx(&self, i: usize) -> Nginx {
        let addr = ["10.0.3.2", "10.0.4.2"][i];
        self.w[i]
            .nginx(&NginxConfig::default().listen(addr, 80, false))
            .expect("nginx")
    }

    fn socket(&self) -> PathBuf {
        self.a.dir().join("fulcrum.sock")
    }

    fn log(&self) -> String {
        self.fulcrumd
            .as_ref()
            .and_then(|p| fs::read_to_string(p.log_path()).ok())
            .unwrap_or_default()
    }

    fn prometheus_log(&self) -> String {
        self.prometheus
            .as_ref()
            .and_then(|p| fs::read_to_string(p.log_path()).ok())
            .unwrap_or_default()
    }

    /// Starts fulcrumd: OSPF on eth0 (Full with FRR) and eth1 (hello mismatch), one
    /// service `web` on the VIP with both nginx and a 1 s TCP check, quorum 1.
    fn start_fulcrumd(&mut self) {
        let mut cfg = format!(
            "[global]\nrouter_id = \"1.0.0.1\"\ncontrol_socket = \"{}\"\n\
             metrics = \"127.0.0.1:9477\"\n\n\
             [dataplane]\nmode = \"kernel\"\n\n\
             [[interface]]\nname = \"eth0\"\n\n[[interface]]\nname = \"eth1\"\n\n\
             [ospf]\nmin_ls_interval = \"0s\"\nmin_ls_arrival = \"0s\"\n\n",
            self.socket().display()
        );
        for ifname in ["eth0", "eth1"] {
            cfg.push_str(&format!(
                "[[ospf.interface]]\nname = \"{ifname}\"\narea = \"0.0.0.0\"\n\
                 network = \"point-to-point\"\nhello_interval = \"1s\"\ndead_interval = \"4s\"\n\n"
            ));
        }
        // An unconditional prefix, so that `fulcrum_ospf_announced` is exported too.
        cfg.push_str("[[announce]]\nprefix = \"100.64.1.0/24\"\n\n");
        cfg.push_str(&format!(
            "[[service]]\nname = \"web\"\nvip = \"{VIP}\"\nport = 80\nforward = \"nat\"\n\
             announce = \"ospf\"\nquorum = 1\n\
             check = {{ type = \"tcp\", interval = \"1s\", timeout = \"1s\", retries = 0 }}\n\n\
             [[service.real_server]]\naddress = \"10.0.3.2\"\nport = 80\n\n\
             [[service.real_server]]\naddress = \"10.0.4.2\"\nport = 80\n"
        ));
        let path = self.a.dir().join("fulcrum.toml");
        fs::write(&path, cfg).expect("write fulcrum.toml");
        let (fulcrumd, fulcrum) = binaries();
        let p = self
            .a
            .spawn(&[
                fulcrumd.to_str().expect("utf-8"),
                "--config",
                path.to_str().expect("utf-8"),
            ])
            .expect("spawn fulcrumd");
        self.fulcrumd = Some(p);
        let sock = self.socket();
        wait_until(Duration::from_secs(10), "fulcrumd control socket", || {
            Ok(Command::new(fulcrum)
                .arg("--socket")
                .arg(&sock)
                .arg("status")
                .output()
                .is_ok_and(|o| o.status.success()))
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
        self.frr
            .wait_neighbor_full("1.0.0.1", DEADLINE)
            .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", self.log()));
    }

    /// Starts Prometheus in `a` (tracked by the lab), scraping fulcrumd every second and
    /// evaluating the shipped rule file every second; returns once it is ready.
    fn start_prometheus(&mut self) {
        let dir = self.a.dir();
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: fulcrum\n    static_configs:\n\
             \x20     - targets: ['127.0.0.1:9477']\n",
            rules_path().display()
        );
        let cfg_path = dir.join("prometheus.yml");
        fs::write(&cfg_path, cfg).expect("write prometheus.yml");
        promtool(
            &["check", "config", cfg_path.to_str().expect("utf-8")],
            None,
        );
        let data = dir.join("prometheus-data");
        let p = self
            .a
            .spawn(&[
                "/usr/bin/prometheus",
                &format!("--config.file={}", cfg_path.display()),
                &format!("--storage.tsdb.path={}", data.display()),
                &format!("--web.listen-address={PROM}"),
                "--log.level=warn",
            ])
            .expect("spawn prometheus");
        self.prometheus = Some(p);
        wait_until(Duration::from_secs(30), "prometheus ready", || {
            Ok(self
                .curl(&format!("http://{PROM}/-/ready"))
                .is_some_and(|b| b.contains("Ready")))
        })
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", self.prometheus_log()));
    }

    /// `curl -s URL` inside `a`; `None` if curl fails (e.g. connection refused).
    fn curl(&self, url: &str) -> Option<String> {
        self.a
            .exec_ok(&["curl", "-s", "-f", "--max-time", "5", url])
            .ok()
    }

    fn scrape(&self) -> String {
        self.curl(METRICS_URL)
            .unwrap_or_else(|| panic!("scrape failed\nlog:\n{}", self.log()))
    }

    /// An instant query against Prometheus; panics unless the API answers `success`.
    /// Returns `data.result`.
    fn query(&self, promql: &str) -> Vec<Value> {
        let out = self
            .a
            .exec_ok(&[
                "curl",
                "-s",
                "--max-time",
                "5",
                "-G",
                "--data-urlencode",
                &format!("query={promql}"),
                &format!("http://{PROM}/api/v1/query"),
            ])
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["status"], "success", "query {promql}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `promql` returns a sample whose labels include `labels` and whose
    /// value is `value`.
    fn wait_sample(&self, promql: &str, labels: &[(&str, &str)], value: &str) {
        let mut last = Vec::new();
        let r = wait_until(DEADLINE, &format!("{promql} = {value}"), || {
            last = self.query(promql);
            Ok(last.iter().any(|s| {
                labels.iter().all(|(k, v)| s["metric"][*k] == *v) && s["value"][1] == value
            }))
        });
        if let Err(e) = r {
            panic!(
                "{e}\nlast result: {last:?}\nfulcrumd log:\n{}\nprometheus log:\n{}",
                self.log(),
                self.prometheus_log()
            );
        }
    }

    /// The active alerts, `(alertname, state)`.
    fn alerts(&self) -> Vec<(String, String)> {
        let out = self
            .curl(&format!("http://{PROM}/api/v1/alerts"))
            .expect("alerts API");
        let v: Value = serde_json::from_str(&out).expect("alerts JSON");
        v["data"]["alerts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_string(),
                    a["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

fn stop_nginx(n: &Nginx) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(n.pid()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill nginx");
    wait_until(Duration::from_secs(5), "nginx to exit", || {
        Ok(!pid_alive(n.pid()))
    })
    .expect("nginx exit");
}

/// Prometheus scrapes fulcrumd: the VIP is seen announced (1) and, with both nginx
/// stopped, withdrawn (0); the OSPF neighbor is Full (8); `up{job="fulcrum"}` is 1; the
/// scrape passes `promtool check metrics`; the shipped rules load, evaluate cleanly and
/// raise `FulcrumVipWithdrawn` / `FulcrumServiceQuorumLost` once the VIP is gone; every
/// metric of the dashboard exists in the scrape and every dashboard query evaluates to
/// data in Prometheus; every exported `fulcrum_` family is documented.
#[test]
fn prometheus_scrapes_fulcrumd_dashboard_and_alerts_match() {
    let mut bed = Bed::new("ful_prom");
    let n1 = bed.nginx(0);
    let n2 = bed.nginx(1);
    bed.start_fulcrumd();
    bed.r
        .wait_route(VIP32, 1, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", bed.log()));
    bed.start_prometheus();

    bed.wait_sample(
        "up{job=\"fulcrum\"}",
        &[("instance", "127.0.0.1:9477")],
        "1",
    );
    bed.wait_sample(
        "fulcrum_vip_announced",
        &[("vip", VIP), ("job", "fulcrum")],
        "1",
    );
    bed.wait_sample("fulcrum_service_quorum", &[("service", "web")], "1");
    bed.wait_sample(
        "fulcrum_ospf_neighbor_state",
        &[("interface", "eth0"), ("neighbor", "9.9.9.9")],
        "8",
    );
    bed.wait_sample(
        "fulcrum_health_server_up",
        &[("service", "web"), ("server", "10.0.4.2:80")],
        "1",
    );
    // FRR's hellos on the mismatched link are counted as drops.
    bed.wait_sample(
        "fulcrum_ospf_packets_dropped_total > bool 0",
        &[("reason", "hello_mismatch")],
        "1",
    );

    // The scrape passes Prometheus' linter, and every fulcrum_ family is documented.
    let scrape = bed.scrape();
    promtool(&["check", "metrics"], Some(&scrape));
    let names = exposition_names(&scrape);
    let doc = fs::read_to_string(workspace().join("docs/observability.md")).expect("doc");
    let families: Vec<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("fulcrum_"))
        .collect();
    assert!(families.len() >= 15, "{families:?}");
    for f in &families {
        assert!(
            doc.contains(&format!("`{f}`")),
            "{f} is exported but not in docs/observability.md"
        );
    }

    // Every metric the dashboard uses is in the live scrape (`up` is Prometheus' own and
    // was checked above), and every query evaluates to data.
    let dash = load_dashboard();
    let queries = dashboard_queries(&dash);
    assert!(queries.len() >= 15, "{queries:?}");
    // Rate windows need a few scrapes.
    std::thread::sleep(Duration::from_secs(3));
    for (panel, expr) in &queries {
        let metrics = promql_metric_names(expr);
        assert!(!metrics.is_empty(), "{panel}: no metric in {expr}");
        for m in &metrics {
            assert!(
                names.contains(m),
                "dashboard panel {panel:?} uses {m}, which fulcrumd does not export\n{scrape}"
            );
        }
        let q = expr
            .replace("$__rate_interval", "5s")
            .replace("$instance", ".*");
        let result = bed.query(&q);
        assert!(
            !result.is_empty(),
            "dashboard panel {panel:?}: {q} returns no data"
        );
    }

    // The shipped rules load and evaluate without error.
    let rules = bed
        .curl(&format!("http://{PROM}/api/v1/rules"))
        .expect("rules API");
    let rules: Value = serde_json::from_str(&rules).expect("rules JSON");
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .flat_map(|g| g["rules"].as_array().map(Vec::as_slice).unwrap_or_default())
        .collect();
    assert!(loaded.len() >= 3, "{rules}");
    for r in &loaded {
        assert_eq!(r["health"], "ok", "rule {r}");
        for m in promql_metric_names(r["query"].as_str().unwrap_or("")) {
            assert!(
                m == "up" || names.contains(&m),
                "rule {} uses {m}, which fulcrumd does not export",
                r["name"]
            );
        }
    }
    let alerts = bed.alerts();
    for a in [
        "FulcrumVipWithdrawn",
        "FulcrumServiceQuorumLost",
        "FulcrumOspfNeighborNotFull",
        "FulcrumDown",
    ] {
        assert!(
            !alerts.iter().any(|(n, _)| n == a),
            "{a} active while healthy: {alerts:?}"
        );
    }

    // Both real servers stop: Prometheus sees the VIP withdrawn and the alerts go active.
    stop_nginx(&n1);
    let stopped = std::time::Instant::now();
    stop_nginx(&n2);
    bed.r
        .wait_no_route(VIP32, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", bed.log()));
    bed.wait_sample("fulcrum_vip_announced", &[("vip", VIP)], "0");
    eprintln!(
        "both real servers stopped -> Prometheus query shows the VIP withdrawn after {:?}",
        stopped.elapsed()
    );
    bed.wait_sample("fulcrum_service_quorum", &[("service", "web")], "0");
    bed.wait_sample(
        "fulcrum_health_server_up",
        &[("server", "10.0.3.2:80")],
        "0",
    );
    bed.wait_sample(
        "fulcrum_ospf_neighbor_state",
        &[("neighbor", "9.9.9.9")],
        "8",
    );
    let mut last = Vec::new();
    wait_until(DEADLINE, "VIP and quorum alerts active", || {
        last = bed.alerts();
        let active = |name: &str| {
            last.iter()
                .any(|(n, s)| n == name && (s == "pending" || s == "firing"))
        };
        Ok(active("FulcrumVipWithdrawn") && active("FulcrumServiceQuorumLost"))
    })
    .unwrap_or_else(|e| panic!("{e}: {last:?}"));
    assert!(
        !last.iter().any(|(n, _)| n == "FulcrumOspfNeighborNotFull"),
        "{last:?}"
    );
    eprintln!("alerts after both real servers stopped: {last:?}");
}
