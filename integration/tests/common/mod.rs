//! Helpers the `fulcrumd` DPDK lab tests share (`fulcrum_dpdk.rs`,
//! `fulcrum_dpdk_modes.rs`): building the daemon and the lab's helper programs into the
//! test's own target directory, running commands, and the CPUs this process may use (to
//! pin DPDK lcores deliberately).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

fn profile_dir() -> PathBuf {
    integration::build::profile_dir().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `cargo build -q <args>` in the workspace with this test's target directory and
/// profile.
fn cargo_build(args: &[&str]) {
    integration::build::cargo_build(args).unwrap_or_else(|e| panic!("{e}"));
}

/// Paths of `fulcrumd` and `fulcrum`, built with the profile and target directory of this
/// test binary.
pub fn binaries() -> (PathBuf, PathBuf) {
    integration::build::fulcrum_binaries()
        .unwrap_or_else(|e| panic!("{e}"))
        .clone()
}

/// Path of the `integration` example `name`, built like [`binaries`].
pub fn example(name: &str) -> PathBuf {
    cargo_build(&["-p", "integration", "--example", name]);
    profile_dir().join("examples").join(name)
}

/// Runs a command; its stdout, or an error with its output.
pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{prog} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// [`run`], panicking with the command's output when it fails.
pub fn must(prog: &str, args: &[&str]) -> String {
    run(prog, args).unwrap_or_else(|e| panic!("{e}"))
}

/// The CPUs this process may run on (`Cpus_allowed_list`), lowest first.
pub fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string();
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            cpus.extend(lo..=hi);
        }
    }
    assert!(!cpus.is_empty(), "no allowed CPU in {list:?}");
    cpus
}

/// The lowest CPU this process may run on.
pub fn first_cpu() -> usize {
    allowed_cpus()[0]
}
