//! The two binaries end to end: `fulcrumd --check`, a running daemon with its control
//! socket, metrics, SIGHUP/`fulcrum reload`, and SIGTERM.
//!
//! The daemon runs in a lab network namespace of its own (`flab-app-<pid>`): its routing
//! subsystem reconciles the kernel table of the namespace it runs in, which must never be
//! the host's. Needs root (CI runs as root).

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FULCRUMD: &str = env!("CARGO_BIN_EXE_fulcrumd");
const FULCRUM: &str = env!("CARGO_BIN_EXE_fulcrum");

fn config(sock: &Path, metrics_port: u16, forward: &str) -> String {
    format!(
        r#"[global]
control_socket = "{}"
metrics = "127.0.0.1:{metrics_port}"

[[service]]
name = "web"
vip = "192.168.7.182"
port = 80
forward = "{forward}"

[[service.real_server]]
address = "192.168.7.27"
"#,
        sock.display()
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn fulcrum(sock: &Path, args: &[&str]) -> Output {
    Command::new(FULCRUM)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("run fulcrum")
}

/// Kills the daemon if the test fails half-way.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, sig).expect("kill");
}

/// A lab network namespace with its loopback up, deleted on drop (also while a failed
/// test unwinds).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("flab-app-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip");
        assert!(ok.success(), "ip netns add {name} (needs root)");
        let ns = Netns(name);
        let ok = Command::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(ok.success(), "lo up in {}", ns.0);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `GET path` on the daemon's metrics port inside namespace `ns`: status line, headers
/// and body.
fn http_get(ns: &Netns, port: u16, path: &str) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", &ns.0, "curl", "-si", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(o.status.success(), "curl: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn check_mode() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("f.toml");
    let sock = dir.path().join("c.sock");
    std::fs::write(&path, config(&sock, 9, "nat")).expect("write");
    let ok = Command::new(FULCRUMD)
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .expect("run");
    assert!(ok.status.success(), "{ok:?}");
    std::fs::write(&path, config(&sock, 9, "nta")).expect("write");
    let bad = Command::new(FULCRUMD)
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .expect("run");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(
            "config error at line 9: service[0].forward: unknown forwarding method \"nta\""
        ),
        "{err}"
    );
}

#[test]
fn daemon_control_metrics_reload_and_stop() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("f.toml");
    let sock = dir.path().join("run/control.sock");
    let port = free_port();
    std::fs::write(&path, config(&sock, port, "nat")).expect("write");
    let ns = Netns::new();
    // `ip netns exec` execs fulcrumd in place: the child's pid is the daemon's.
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0, FULCRUMD])
        .arg("--config")
        .arg(&path)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fulcrumd");
    let mut d = Daemon(child);
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no control socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let st = fulcrum(&sock, &["status", "--json"]);
    assert!(st.status.success(), "{st:?}");
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
    assert_eq!(v["config_generation"], 1);
    let table = fulcrum(&sock, &["status"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("generation 1"));

    // Views without their subsystem fail clearly: no dataplane in kernel mode, and OSPF
    // is not configured.
    for args in [&["ospf", "neighbors"][..], &["services"]] {
        let o = fulcrum(&sock, args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("not_available"), "{args:?}: {err}");
    }
    // The routing subsystem of kernel mode answers `routes` and `vips` (nothing announced).
    let o = fulcrum(&sock, &["routes", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["routes"].is_array(), "{v}");
    let o = fulcrum(&sock, &["vips", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["vips"], serde_json::json!([]), "{v}");
    let o = fulcrum(&sock, &["ipvsadm", "-A", "-t", "10.0.0.1:80"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not yet supported"));

    let m = http_get(&ns, port, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(m.contains("fulcrum_config_last_reload_success 1"), "{m}");
    assert!(m.contains("fulcrum_build_info{"), "{m}");

    // A bad file is refused with the reason; the daemon keeps running.
    std::fs::write(&path, config(&sock, port, "nta")).expect("write");
    let o = fulcrum(&sock, &["reload"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("reload_failed") && err.contains("line 9: service[0].forward"),
        "{err}"
    );
    assert!(http_get(&ns, port, "/metrics").contains("fulcrum_config_last_reload_success 0"));

    // SIGHUP with a good file.
    std::fs::write(&path, config(&sock, port, "dr")).expect("write");
    signal(&d.0, nix::sys::signal::Signal::SIGHUP);
    let start = Instant::now();
    loop {
        let st = fulcrum(&sock, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).expect("json");
        if v["config_generation"] == 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "SIGHUP reload not seen: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(http_get(&ns, port, "/metrics").contains("fulcrum_config_last_reload_success 1"));

    signal(&d.0, nix::sys::signal::Signal::SIGTERM);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = d.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "control socket left behind");
}

#[test]
fn cli_offline_commands() {
    let o = Command::new(FULCRUM)
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("fulcrum"));
    let o = Command::new(FULCRUM).arg("man").output().expect("run");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH fulcrum"));
    let o = Command::new(FULCRUM)
        .args(["--socket", "/nonexistent/fulcrum.sock", "status"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is fulcrumd running?"));
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/keepalived/seed-001.conf");
    let o = Command::new(FULCRUM)
        .arg("import-keepalived")
        .arg(&seed)
        .output()
        .expect("run");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("vip = \"10.10.0.20\""));
    assert!(String::from_utf8_lossy(&o.stderr).contains("warning:"));
}
