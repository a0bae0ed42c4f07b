//! The crash sweep removes labs whose owning process is dead, and only those (needs root).

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration::lab::{netns_list, pid_alive, remove_lab, run_ok, sweep_stale, RUN_ROOT};

/// Removes the fabricated labs even when an assertion fails.
struct Guard(Vec<String>);

impl Drop for Guard {
    fn drop(&mut self) {
        for prefix in &self.0 {
            remove_lab(prefix);
        }
    }
}

fn has_ns(name: &str) -> bool {
    netns_list().iter().any(|n| n == name)
}

#[test]
fn sweep_removes_only_labs_of_dead_owners() {
    integration::require_root().expect("needs root");
    // A pid that has just exited stands for a crashed test binary.
    let mut t = Command::new("true").spawn().expect("spawn true");
    let dead = t.id();
    t.wait().expect("wait true");
    let me = std::process::id();
    let stale = format!("flab-{dead}-0");
    let live = format!("flab-{me}-99999");
    let named = format!("flab-sweep{me}");
    let _guard = Guard(vec![stale.clone(), live.clone(), named.clone()]);

    for prefix in [&stale, &live, &named] {
        run_ok(&["ip", "netns", "add", &format!("{prefix}-x")]).expect("netns add");
        fs::create_dir_all(Path::new(RUN_ROOT).join(prefix)).expect("run dir");
    }
    let stale_ns = format!("{stale}-x");
    let mut sleeper = Command::new("ip")
        .args(["netns", "exec", &stale_ns, "sleep", "300"])
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep in stale namespace");
    // Let the sleeper enter the namespace.
    let start = Instant::now();
    while integration::lab::netns_pids(&stale_ns).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "sleeper never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    sweep_stale();

    assert!(!has_ns(&stale_ns), "stale namespace survived the sweep");
    assert!(
        !Path::new(RUN_ROOT).join(&stale).exists(),
        "stale run dir survived"
    );
    // The sweep may reap it itself (it reaps what it kills), so ask /proc, not wait().
    let exited = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        let _ = sleeper.try_wait();
        !pid_alive(sleeper.id())
    });
    if !exited {
        let _ = sleeper.kill();
    }
    let _ = sleeper.wait();
    assert!(exited, "process inside the stale namespace survived");
    for prefix in [&live, &named] {
        assert!(
            has_ns(&format!("{prefix}-x")),
            "{prefix} was swept but is not stale"
        );
        assert!(
            Path::new(RUN_ROOT).join(prefix).exists(),
            "{prefix} run dir swept"
        );
    }
}
