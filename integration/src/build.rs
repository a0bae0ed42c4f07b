//! Building the workspace's binaries from a test: `cargo build` with the target directory
//! and profile of the running test binary, so the lab tests run the `fulcrumd` and
//! `fulcrum` of the same build (a plain `cargo test` builds only the tested package's
//! own binaries).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{LabError, Result};

/// `<target>/<profile>` of the running executable, a test binary at
/// `<target>/<profile>/deps/<name>`.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| LabError::io("current_exe", e))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            LabError::Config(format!(
                "{} is not in <target>/<profile>/deps",
                exe.display()
            ))
        })
}

/// Runs `cargo build -q ARGS` in the workspace with the running test binary's target
/// directory and profile (`--release` when that is `release`); returns the profile
/// directory the artifacts went to.
pub fn cargo_build(args: &[&str]) -> Result<PathBuf> {
    let profile = profile_dir()?;
    let target = profile
        .parent()
        .ok_or_else(|| LabError::Config(format!("{} has no parent", profile.display())))?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| LabError::Config("the integration crate has no workspace".into()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "-q"])
        .args(args);
    if profile.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| LabError::io("cargo build", e))?;
    if !status.success() {
        return Err(LabError::Config(format!(
            "cargo build {args:?} failed: {status}"
        )));
    }
    Ok(profile)
}

/// `fulcrumd` and `fulcrum`, built once per process with [`cargo_build`]
/// (`-p appliance --bins`).
pub fn fulcrum_binaries() -> Result<&'static (PathBuf, PathBuf)> {
    static BINS: OnceLock<std::result::Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    BINS.get_or_init(|| {
        cargo_build(&["-p", "appliance", "--bins"])
            .map(|dir| (dir.join("fulcrumd"), dir.join("fulcrum")))
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| LabError::Config(e.clone()))
}
