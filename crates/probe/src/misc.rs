//! `MISC_CHECK`: run the operator's program and read its exit status.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use health::eval::interpret_misc_exit;
use health::{FailureKind, MiscCheck, MiscExit, ProbeOutcome};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use tokio::process::Command;

/// Runs `misc_path` with `/bin/sh -c` (as keepalived does: the string is the operator's
/// command line), in a process group of its own, with stdin/stdout/stderr on
/// `/dev/null`, as `user` when set. If it runs past `timeout` the whole group is
/// killed with SIGKILL and the attempt fails with `Timeout`. The exit status is read by
/// [`health::eval::interpret_misc_exit`] (`misc_dynamic` weights included). A program
/// that cannot be started, or an unknown `user`, fails with `Program`.
pub async fn misc_check(check: &MiscCheck, timeout: Duration) -> ProbeOutcome {
    match run(check, timeout).await {
        Some(exit) => interpret_misc_exit(check.misc_dynamic, exit),
        None => ProbeOutcome::Failure(FailureKind::Program),
    }
}

/// Runs the program; `None` if it could not be started.
pub async fn run(check: &MiscCheck, timeout: Duration) -> Option<MiscExit> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&check.misc_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(name) = &check.user {
        let user = User::from_name(name).ok().flatten()?;
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let mut child = cmd.spawn().ok()?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => return Some(MiscExit::Signal(0)),
        Err(_) => {
            if let Some(pgid) = pgid {
                // The group may be gone already; nothing more to do then.
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            let _ = child.wait().await;
            return Some(MiscExit::TimedOut);
        }
    };
    Some(match (status.code(), status.signal()) {
        (Some(c), _) => MiscExit::Code(c),
        (None, Some(s)) => MiscExit::Signal(s),
        (None, None) => MiscExit::Signal(0),
    })
}
