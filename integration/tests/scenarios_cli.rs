//! `fulcrum-lab` on the new scenarios: `nat` with HAProxy + PROXY v2, `dr` (topology
//! only) and the refused fulcrum balancer, under private lab names (needs root).

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
fn up_status_down_nat_dr_and_refusals() {
    integration::require_root().expect("needs root");
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let id = std::process::id() % 1_000_000;
    let (nat, dr, ful) = (format!("n{id}"), format!("d{id}"), format!("f{id}"));
    let _guard = Guard(vec![nat.clone(), dr.clone(), ful.clone()]);

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

    // dr: the stand-ins cannot do direct routing; the topology still comes up.
    let up = lab_cmd(&["up", "dr", "--name", &dr]);
    let out = text(&up);
    assert!(up.status.success(), "up failed: {out}");
    assert!(out.contains("direct routing needs fulcrum"), "{out}");
    let down = lab_cmd(&["down", "dr", "--name", &dr]);
    assert!(down.status.success(), "{}", text(&down));
    assert_gone(&dr);

    // fulcrum is refused before anything is built.
    let up = lab_cmd(&["up", "one", "--lb", "fulcrum", "--name", &ful]);
    assert_eq!(up.status.code(), Some(1), "{}", text(&up));
    assert!(text(&up).contains("not yet supported: fulcrumd dpdk mode lands with issue 6"));
    assert_gone(&ful);
    let bad = lab_cmd(&["up", "one", "--lb", "ipvs"]);
    assert_eq!(bad.status.code(), Some(2));
    reap_orphans();
}
