//! `fulcrum-lab` under private lab names (needs root): scenario `two` with `--lb fulcrum`
//! (the demo's balancer), fulcrumd on both nodes (up, traffic, status with fulcrumd's own views,
//! down leaving no namespace, process, tap or file), `nat` with HAProxy + PROXY v2, `dr`
//! with a stand-in (topology only) and a bad `--lb`.
//!
//! fulcrumd and fulcrum are built first next to `fulcrum-lab` (same target directory and
//! profile), where the command finds them.

use std::path::Path;
use std::process::{Command, Output};

use integration::lab::{netns_list, pids_with_cmdline, RUN_ROOT};
use integration::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_fulcrum-lab");

/// Removes the detached labs even when an assertion fails.
struct Guard(Vec<String>);

impl Drop for Guard {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Lab::destroy_detached(name);
        }
    }
}

fn lab_cmd(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run fulcrum-lab")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_gone(name: &str) {
    let prefix = format!("flab-{name}");
    let left: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = pids_with_cmdline(&format!("{RUN_ROOT}/{prefix}/"));
    assert!(procs.is_empty(), "processes left: {procs:?}");
    assert!(!std::path::Path::new(RUN_ROOT).join(&prefix).exists());
    // DPDK keeps its runtime files under RUNTIME_DIRECTORY (the node's run directory);
    // nothing of this lab's EAL file prefixes may be left in DPDK's default places.
    for dir in ["/var/run/dpdk", "/dev/shm", "/dev/hugepages"] {
        let stale: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(&prefix))
                    .collect()
            })
            .unwrap_or_default();
        assert!(stale.is_empty(), "{dir}: {stale:?}");
    }
    // The twins were taps inside the lab's namespaces; none may have reached the host.
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&prefix), "{links}");
}

/// Builds fulcrumd and fulcrum next to fulcrum-lab (`<target>/<profile>/`).
fn build_fulcrum() {
    let lab_bin = Path::new(BIN);
    let profile_dir = lab_bin.parent().expect("<target>/<profile>");
    let target_dir = profile_dir.parent().expect("<target>");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "-q", "-p", "appliance", "--bins"]);
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("cargo").success(), "building fulcrumd");
}

/// Reaps every exited child (this binary runs a single test, so nothing else waits).
fn reap_orphans() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

#[test]
fn up_status_down_two_with_fulcrum_nat_dr_and_refusals() {
    integration::require_root().expect("needs root");
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    build_fulcrum();
    let id = std::process::id() % 1_000_000;
    let (nat, dr, ful) = (format!("n{id}"), format!("d{id}"), format!("f{id}"));
    let _guard = Guard(vec![nat.clone(), dr.clone(), ful.clone()]);

    // two with fulcrum, the demo's balancer: fulcrumd on lb-a and lb-b, the router's ECMP
    // route over both, the client served through the VIP.
    let up = lab_cmd(&["up", "two", "--lb", "fulcrum", "--name", &ful]);
    let out = text(&up);
    assert!(up.status.success(), "up failed: {out}");
    assert!(
        out.contains("starting fulcrumd (dpdk mode) on lb-a, lb-b"),
        "{out}"
    );
    assert!(
        out.contains("fulcrum balancing 100.96.122.210:80 on lb-a, lb-b"),
        "{out}"
    );
    assert!(out.contains("nexthop via 10.20.30.45"), "{out}");
    assert!(out.contains("nexthop via 10.20.30.46"), "{out}");
    assert!(!out.contains("addr del 100.96.122.210/32 dev lo"), "{out}");
    assert!(out.contains("vips drain 100.96.122.210"), "{out}");
    let client_ns = format!("flab-{ful}-client");
    let mut via = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let curl = Command::new("ip")
            .args(["netns", "exec", &client_ns])
            .args([
                "curl",
                "-sS",
                "--max-time",
                "3",
                "http://100.96.122.210:80/",
            ])
            .output()
            .expect("curl");
        let body = String::from_utf8_lossy(&curl.stdout).into_owned();
        assert!(body.contains("proxy=10.12.26.20"), "{body}");
        via.insert(
            body.split_whitespace()
                .find_map(|w| w.strip_prefix("client="))
                .unwrap_or_default()
                .to_string(),
        );
    }
    let status = lab_cmd(&["status", "two", "--name", &ful]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    for want in [
        "== lb-a balancer: fulcrumd pid",
        "== lb-b balancer: fulcrumd pid",
        "== lb-a: fulcrum services --stats",
        "TCP  100.96.122.210:80",
        "-> 192.168.7.27:8080",
        "== lb-b: fulcrum vips",
        "services hold quorum",
        "== lb-a: fulcrum ospf neighbors",
        "10.20.30.1 ",
        "nexthop via 10.20.30.45",
    ] {
        assert!(st.contains(want), "{want:?} missing from:\n{st}");
    }
    // Both nodes served (ECMP): the servers saw both local addresses.
    assert_eq!(
        via.iter().map(String::as_str).collect::<Vec<_>>(),
        vec!["192.168.7.185", "192.168.7.195"]
    );
    let down = lab_cmd(&["down", "two", "--name", &ful]);
    assert!(down.status.success(), "{}", text(&down));
    assert_gone(&ful);

    // nat with HAProxy sending PROXY v2: the PROXY listener shows the real client.
    let up = lab_cmd(&["up", "nat", "--lb", "haproxy-pp", "--name", &nat]);
    let out = text(&up);
    assert!(up.status.success(), "up failed: {out}");
    assert!(out.contains("HAProxy mode tcp + send-proxy-v2"), "{out}");
    let client_ns = format!("flab-{nat}-client");
    assert!(
        out.contains(&format!(
            "ip netns exec {client_ns} curl -s http://10.10.0.20:80/"
        )),
        "{out}"
    );
    let curl = Command::new("ip")
        .args(["netns", "exec", &client_ns])
        .args(["curl", "-sS", "--max-time", "3", "http://10.10.0.20:80/"])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&curl.stdout);
    assert!(
        body.starts_with("rs=192.168.211.1")
            && body.contains("client=192.168.211.20 proxy=10.10.0.100"),
        "{body}"
    );
    let status = lab_cmd(&["status", "nat", "--name", &nat]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    assert!(st.contains("== lb balancer: HAProxy pid"), "{st}");
    let down = lab_cmd(&["down", "nat", "--name", &nat]);
    assert!(down.status.success(), "{}", text(&down));
    assert_gone(&nat);

    // dr with the default stand-in, which cannot do direct routing: the topology alone.
    let up = lab_cmd(&["up", "dr", "--name", &dr]);
    let out = text(&up);
    assert!(up.status.success(), "up failed: {out}");
    assert!(out.contains("direct routing needs fulcrum"), "{out}");
    let down = lab_cmd(&["down", "dr", "--name", &dr]);
    assert!(down.status.success(), "{}", text(&down));
    assert_gone(&dr);

    let bad = lab_cmd(&["up", "one", "--lb", "ipvs"]);
    assert_eq!(bad.status.code(), Some(2));
    reap_orphans();
}
