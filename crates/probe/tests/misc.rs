//! MISC_CHECK and FILE_CHECK against real programs and files.

mod common;

use std::time::{Duration, Instant};

use common::TempDir;
use health::{FailureKind, MiscCheck, ProbeOutcome};
use probe::misc_check;

fn misc(cmd: &str, dynamic: bool) -> MiscCheck {
    MiscCheck {
        misc_path: cmd.to_owned(),
        misc_timeout: None,
        misc_dynamic: dynamic,
        user: None,
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn exit_codes() {
    use ProbeOutcome::*;
    assert_eq!(misc_check(&misc("exit 0", false), T).await, Success);
    assert_eq!(
        misc_check(&misc("exit 1", false), T).await,
        Failure(FailureKind::Program)
    );
    assert_eq!(
        misc_check(&misc("exit 7", false), T).await,
        Failure(FailureKind::Program)
    );
    // misc_dynamic: 0 success, 1 failure, 2..=255 success with weight code − 2.
    assert_eq!(misc_check(&misc("exit 0", true), T).await, Success);
    assert_eq!(
        misc_check(&misc("exit 1", true), T).await,
        Failure(FailureKind::Program)
    );
    assert_eq!(
        misc_check(&misc("exit 2", true), T).await,
        SuccessWithWeight(0)
    );
    assert_eq!(
        misc_check(&misc("exit 7", true), T).await,
        SuccessWithWeight(5)
    );
    assert_eq!(
        misc_check(&misc("exit 255", true), T).await,
        SuccessWithWeight(253)
    );
    // Killed by a signal.
    assert_eq!(
        misc_check(&misc("kill -9 $$", true), T).await,
        Failure(FailureKind::Program)
    );
    // The command line is the operator's, run by sh: pipes and tests work.
    assert_eq!(
        misc_check(
            &misc("echo hello | grep -q hello && test 1 -lt 2", false),
            T
        )
        .await,
        Success
    );
    assert_eq!(
        misc_check(&misc("/nonexistent/program", false), T).await,
        Failure(FailureKind::Program)
    );
}

#[tokio::test]
async fn unknown_user_fails() {
    let mut c = misc("exit 0", false);
    c.user = Some("no-such-user-fulcrum".into());
    assert_eq!(
        misc_check(&c, T).await,
        ProbeOutcome::Failure(FailureKind::Program)
    );
    c.user = Some("nobody".into());
    assert_eq!(misc_check(&c, T).await, ProbeOutcome::Success);
}

#[tokio::test]
async fn timeout_kills_the_process_group() {
    let tmp = TempDir::new("misc");
    let pidfile = tmp.0.join("bg.pid");
    let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let t0 = Instant::now();
    let out = misc_check(&misc(&cmd, true), Duration::from_millis(300)).await;
    let took = t0.elapsed();
    assert_eq!(out, ProbeOutcome::Failure(FailureKind::Timeout));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The background child of the shell was in the group and is gone too (or a zombie
    // waiting for init to reap it).
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let stat = format!("/proc/{pid}/stat");
    let t0 = Instant::now();
    loop {
        let alive = match std::fs::read_to_string(&stat) {
            Ok(s) => !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')),
            Err(_) => false,
        };
        if !alive {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "sleep {pid} survived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
