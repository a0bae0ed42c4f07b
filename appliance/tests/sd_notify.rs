//! systemd integration of `fulcrumd`: the readiness protocol seen from a socket the test
//! binds (as systemd would), and the unit file in `configs/systemd/`.
//!
//! The daemon runs in a lab network namespace of its own (`flab-app-<pid>-notify`), in
//! `kernel` mode (no DPDK), so that its routing subsystem reconciles that namespace's
//! kernel table and never the host's. Needs root (CI runs as root).

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FULCRUMD: &str = env!("CARGO_BIN_EXE_fulcrumd");
const FULCRUM: &str = env!("CARGO_BIN_EXE_fulcrum");

/// The namespace and the daemon, removed / killed on drop (also when the test fails).
struct Lab {
    ns: String,
    daemon: Option<Child>,
}

impl Lab {
    fn new() -> Lab {
        let ns = format!("flab-app-{}-notify", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &ns])
            .stderr(Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .expect("ip netns add");
        assert!(ok.success(), "ip netns add {ns} (needs root)");
        Lab { ns, daemon: None }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

fn config(sock: &Path, drain_ms: u64) -> String {
    format!(
        r#"[global]
control_socket = "{}"
metrics_enabled = false
shutdown_drain_ms = {drain_ms}

[[service]]
name = "web"
vip = "192.168.7.182"
port = 80
forward = "nat"

[[service.real_server]]
address = "192.168.7.27"
"#,
        sock.display()
    )
}

/// Reads datagrams until one satisfies `want`; every message read is returned.
fn until(sock: &UnixDatagram, want: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let t0 = Instant::now();
    loop {
        let mut buf = [0u8; 4096];
        match sock.recv(&mut buf) {
            Ok(n) => {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = want(&m);
                seen.push(m);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("waiting for {what}: {e}; received {seen:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no {what} within 30 s; received {seen:?}"
        );
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[test]
fn fulcrumd_notifies_systemd_of_ready_reload_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let control = dir.path().join("run/control.sock");
    let cfg = dir.path().join("fulcrum.toml");
    std::fs::write(&cfg, config(&control, 300)).expect("config");

    let mut lab = Lab::new();
    let log = dir.path().join("fulcrumd.log");
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .arg(FULCRUMD)
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn fulcrumd");
    let pid = child.id();
    lab.daemon = Some(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // READY=1 with a status line, once; nothing else before it.
    let msgs = until(&notify, |m| m.contains("READY=1"), "READY=1");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let ready = &msgs[0];
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=running: configuration generation 1")),
        "{ready:?}"
    );
    // Ready means answering: the control socket is there, root's and 0600.
    let meta = std::fs::metadata(&control).expect("control socket exists at READY=1");
    assert_eq!(meta.mode() & 0o777, 0o600, "control socket mode");
    assert_eq!(meta.uid(), 0, "control socket owner");
    let out = Command::new(FULCRUM)
        .arg("--socket")
        .arg(&control)
        .arg("status")
        .output()
        .expect("fulcrum status");
    assert!(out.status.success(), "{out:?}\n{}", log_text());

    // SIGHUP: RELOADING=1 (with the monotonic time systemd compares), then READY=1.
    signal(pid, "-HUP");
    let msgs = until(&notify, |m| m.contains("READY=1"), "READY=1 after SIGHUP");
    assert!(
        msgs[0].starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{msgs:?}"
    );
    assert!(
        msgs.last().is_some_and(|m| m.contains("generation 2")),
        "{msgs:?}"
    );

    // A refused reload is reported in the status, and the daemon keeps running.
    std::fs::write(&cfg, config(&control, 300).replace("\"nat\"", "\"natt\"")).expect("cfg");
    signal(pid, "-HUP");
    let msgs = until(
        &notify,
        |m| m.contains("READY=1"),
        "READY=1 after a bad SIGHUP",
    );
    assert!(msgs[0].starts_with("RELOADING=1"), "{msgs:?}");
    let last = msgs.last().expect("message");
    assert!(
        last.contains("generation 2") && last.contains("last reload refused"),
        "{last:?}"
    );
    std::fs::write(&cfg, config(&control, 300)).expect("cfg");

    // SIGTERM: STOPPING=1 first, then the status of each stage, and a clean exit.
    let t0 = Instant::now();
    signal(pid, "-TERM");
    let msgs = until(&notify, |m| m.contains("STOPPING=1"), "STOPPING=1");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("STATUS=stopping: withdrawing the VIPs"),
        "{msgs:?}"
    );
    let mut child = lab.daemon.take().expect("daemon");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "fulcrumd did not exit:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}\n{}", log_text());
    // Kernel mode has nothing forwarding, so nothing to drain: no drain stage.
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = notify.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(
        rest,
        ["STATUS=stopping: closing the control socket and metrics"],
        "kernel mode has nothing to drain"
    );
    assert!(!control.exists(), "control socket removed");
    let l = log_text();
    assert!(l.contains("shutdown: withdrawing the VIPs"), "{l}");
    // No colours in a log that is not a terminal.
    assert!(!l.contains('\u{1b}'), "ANSI escapes in the log:\n{l}");
}

fn unit_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/systemd/fulcrumd.service")
}

#[test]
fn systemd_unit_is_type_notify_with_the_capabilities_fulcrumd_needs() {
    let text = std::fs::read_to_string(unit_file()).expect("unit file");
    let values = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(values("Type"), ["notify"]);
    assert_eq!(
        values("ExecStart"),
        ["/usr/sbin/fulcrumd --config /etc/fulcrum/fulcrum.toml"]
    );
    assert!(
        values("ExecReload")
            .iter()
            .any(|v| v.ends_with("fulcrum --socket /run/fulcrum/control.sock reload")),
        "{:?}",
        values("ExecReload")
    );
    let caps = values("CapabilityBoundingSet").join(" ");
    for cap in [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_SYS_ADMIN",
    ] {
        assert!(caps.split(' ').any(|c| c == cap), "{cap} missing: {caps}");
    }
    let families = values("RestrictAddressFamilies").join(" ");
    for f in ["AF_UNIX", "AF_INET", "AF_NETLINK", "AF_PACKET"] {
        assert!(
            families.split(' ').any(|c| c == f),
            "{f} missing: {families}"
        );
    }
    assert_eq!(values("PrivateDevices"), ["no"], "DPDK needs /dev");
    assert_eq!(values("RuntimeDirectory"), ["fulcrum"]);

    // systemd itself accepts it, with the commands pointing at the built binaries.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("fulcrumd.service");
    std::fs::write(
        &unit,
        text.replace("/usr/sbin/fulcrumd", FULCRUMD)
            .replace("/usr/bin/fulcrum ", &format!("{FULCRUM} ")),
    )
    .expect("unit copy");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("fulcrumd.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}
