//! `fulcrum-lab up|status|down two` end to end, under a private lab name (needs root).

use std::process::{Command, Output};

use integration::lab::{netns_list, pids_with_cmdline, RUN_ROOT};
use integration::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_fulcrum-lab");

/// Removes the detached lab even when an assertion fails.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Lab::destroy_detached(&self.0);
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
fn up_status_down_two() {
    integration::require_root().expect("needs root");
    // The daemons `up` leaves behind are orphans; make them ours so that, once `down` has
    // stopped them, they can be reaped instead of lingering as zombies.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let name = format!("t{}", std::process::id() % 10_000_000);
    let _guard = Guard(name.clone());
    let prefix = format!("flab-{name}");

    let up = lab_cmd(&["up", "two", "--name", &name]);
    let out = text(&up);
    assert!(up.status.success(), "up failed: {out}");
    assert!(out.contains("nexthop via 10.20.30.45"), "{out}");
    assert!(out.contains("nexthop via 10.20.30.46"), "{out}");
    assert!(
        out.contains(&format!(
            "ip netns exec {prefix}-client ping -c 3 100.96.122.210"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("fulcrum-lab down two --name {name}")),
        "{out}"
    );

    // The lab outlives the command, and a second `up` refuses without breaking it.
    let again = lab_cmd(&["up", "two", "--name", &name]);
    assert!(
        !again.status.success(),
        "second up succeeded: {}",
        text(&again)
    );
    let status = lab_cmd(&["status", "two", "--name", &name]);
    let st = text(&status);
    assert!(status.status.success(), "status failed: {st}");
    assert!(st.contains("Full"), "{st}");
    assert!(st.contains("nexthop via 10.20.30.45"), "{st}");

    let down = lab_cmd(&["down", "two", "--name", &name]);
    assert!(down.status.success(), "down failed: {}", text(&down));
    let ns_prefix = format!("{prefix}-");
    let left: Vec<String> = netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&ns_prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let procs = pids_with_cmdline(&format!("{RUN_ROOT}/{prefix}/"));
    assert!(procs.is_empty(), "processes left: {procs:?}");
    assert!(!std::path::Path::new(RUN_ROOT).join(&prefix).exists());
    reap_orphans();

    let status = lab_cmd(&["status", "two", "--name", &name]);
    assert!(
        !status.status.success(),
        "status of a removed lab succeeded"
    );
    let usage = lab_cmd(&["up"]);
    assert_eq!(usage.status.code(), Some(2));
}
