//! Cleanup self-tests: a child test process builds a lab with FRR and nginx and then
//! panics or is interrupted with SIGINT; nothing of its lab may survive (needs root).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use integration::lab::{netns_list, pid_alive, pids_with_cmdline, RUN_ROOT};
use integration::{remove_lab, FrrConfig, Lab, NginxConfig, OspfInterface};

const MODE: &str = "FLAB_CLEANUP_CHILD_MODE";
const OUT: &str = "FLAB_CLEANUP_CHILD_OUT";

/// Only run by `cleanup_after_panic` / `cleanup_after_sigint` as a child process.
#[test]
#[ignore = "run by the cleanup tests as a child process"]
fn cleanup_child_body() {
    let mode = std::env::var(MODE).expect("cleanup_child_body is run by its parent tests only");
    let out = std::env::var(OUT).expect("output path");
    let lab = Lab::new("cleanup_child").expect("lab");
    let r1 = lab.router("r1").expect("r1");
    let r2 = lab.router("r2").expect("r2");
    lab.link(&r1, "eth0", &r2, "eth0").expect("link");
    r1.addr("eth0", "10.9.0.1/30").expect("addr");
    r2.addr("eth0", "10.9.0.2/30").expect("addr");
    let fast = |id: [u8; 4]| {
        FrrConfig::new(id.into())
            .interface(OspfInterface::p2p("eth0").timers(1, 4))
            .network("10.9.0.0/30", "0")
    };
    r1.frr(&fast([1, 1, 1, 1])).expect("frr r1");
    r2.frr(&fast([2, 2, 2, 2])).expect("frr r2");
    r2.nginx(&NginxConfig::default().listen("10.9.0.2", 80, false))
        .expect("nginx");
    let sleeper = r1.spawn(&["sleep", "300"]).expect("spawn");
    let mut pids = lab.tracked_pids();
    pids.extend(integration::lab::netns_pids(r2.netns()));
    let pid_list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let report = format!("{}\n{}\n", lab.prefix(), pid_list.join(" "));
    fs::write(format!("{out}.tmp"), report).expect("write report");
    fs::rename(format!("{out}.tmp"), &out).expect("publish report");
    match mode.as_str() {
        "panic" => panic!("deliberate panic with a live lab"),
        _ => {
            std::thread::sleep(Duration::from_secs(60));
            drop(sleeper);
            panic!("was not interrupted within 60 s");
        }
    }
}

struct ChildReport {
    prefix: String,
    pids: Vec<u32>,
}

fn read_report(path: &PathBuf) -> Option<ChildReport> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let prefix = lines.next()?.to_string();
    let pids = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    Some(ChildReport { prefix, pids })
}

fn child(mode: &str, out: &PathBuf) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "cleanup_child_body", "--ignored", "--nocapture"])
        .env(MODE, mode)
        .env(OUT, out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Collects what survived of the child's lab, removes it, and returns the findings.
fn leftovers(report: &ChildReport) -> Vec<String> {
    let mut found = Vec::new();
    let ns_prefix = format!("{}-", report.prefix);
    for ns in netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&ns_prefix))
    {
        found.push(format!("namespace {ns}"));
    }
    let run_dir = format!("{RUN_ROOT}/{}/", report.prefix);
    for pid in pids_with_cmdline(&run_dir) {
        found.push(format!("process {pid} mentioning {run_dir}"));
    }
    for &pid in &report.pids {
        if pid_alive(pid) {
            found.push(format!("lab process {pid} alive"));
        }
    }
    if PathBuf::from(&run_dir).exists() {
        found.push(format!("run dir {run_dir}"));
    }
    // Never leak, whatever the verdict; reap what was reparented to us.
    remove_lab(&report.prefix);
    for &pid in &report.pids {
        if let Ok(raw) = i32::try_from(pid) {
            let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
        }
    }
    found
}

fn out_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("flab-cleanup-{}-{tag}.txt", std::process::id()))
}

#[test]
fn cleanup_after_panic() {
    integration::require_root().expect("needs root");
    // Orphans of a child that failed to clean up become ours, so they can be reaped.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let out = out_path("panic");
    let _ = fs::remove_file(&out);
    let result = child("panic", &out).output().expect("run child");
    let report = read_report(&out);
    let _ = fs::remove_file(&out);
    let report = report.unwrap_or_else(|| {
        panic!(
            "child never built its lab: {}",
            String::from_utf8_lossy(&result.stdout)
        )
    });
    assert!(
        report.pids.len() >= 5,
        "child reported too few pids: {:?}",
        report.pids
    );
    let found = leftovers(&report);
    let stdout = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(!result.status.success(), "child passed: {stdout}");
    assert!(
        stdout.contains("deliberate panic"),
        "child failed for another reason: {stdout}"
    );
    assert!(found.is_empty(), "leftovers after panic: {found:?}");
}

#[test]
fn cleanup_after_sigint() {
    integration::require_root().expect("needs root");
    // Orphans of a child that failed to clean up become ours, so they can be reaped.
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    let out = out_path("sigint");
    let _ = fs::remove_file(&out);
    let mut proc = child("sigint", &out).spawn().expect("spawn child");
    let start = Instant::now();
    let report = loop {
        if let Some(r) = read_report(&out) {
            break Some(r);
        }
        if start.elapsed() > Duration::from_secs(30) || matches!(proc.try_wait(), Ok(Some(_))) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(report) = report else {
        let _ = proc.kill();
        let o = proc.wait_with_output().expect("child output");
        panic!(
            "child never built its lab: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    };
    let _ = fs::remove_file(&out);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(proc.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("send SIGINT");
    let result = proc.wait_with_output().expect("child exit");
    let found = leftovers(&report);
    assert_eq!(
        result.status.code(),
        Some(130),
        "child did not exit 130 on SIGINT: {}",
        String::from_utf8_lossy(&result.stdout)
    );
    assert!(found.is_empty(), "leftovers after SIGINT: {found:?}");
}
