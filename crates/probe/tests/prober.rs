//! The Prober with checks that need no network: MISC_CHECK programs and tracked files.

mod common;

use std::time::Duration;

use common::TempDir;
use health::{
    CheckKind, CheckerConfig, FileCheck, MiscCheck, ProbeOutcome, RealServerConfig, ServerEvent,
    ServiceConfig, ServiceEvent,
};
use probe::{Prober, ProberConfig, ProberEvent};
use tokio::sync::mpsc::UnboundedReceiver;

fn misc_server(port: u16, cmd: &str) -> RealServerConfig {
    let mut c = CheckerConfig::new(CheckKind::Misc(MiscCheck {
        misc_path: cmd.into(),
        misc_timeout: Some(Duration::from_secs(2)),
        misc_dynamic: true,
        user: None,
    }));
    c.delay_loop = Duration::from_millis(200);
    c.retry = 0;
    let mut rs = RealServerConfig::new("127.0.0.1".parse().unwrap(), port);
    rs.checkers.push(c);
    rs
}

async fn next(events: &mut UnboundedReceiver<ProberEvent>) -> ProberEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event in time")
        .expect("prober running")
}

#[tokio::test]
async fn misc_results_drive_servers_and_quorum() {
    let tmp = TempDir::new("prober");
    let flag = tmp.0.join("fail");
    // Server 0 fails while the flag file exists; server 1 always sets weight 5.
    let cmd0 = format!("test ! -e {}", flag.display());
    let mut svc = ServiceConfig::new(
        "misc",
        vec![misc_server(1, &cmd0), misc_server(2, "exit 7")],
    );
    svc.quorum = 6;
    svc.omega = true;
    let (h, mut events) = Prober::start(vec![svc], ProberConfig::default()).unwrap();
    // Server 1's dynamic weight: 1 -> 5.
    let ev = next(&mut events).await;
    assert_eq!(ev.name.as_ref(), "misc");
    assert_eq!(
        ev.event,
        ServiceEvent::Server {
            index: 1,
            event: ServerEvent::WeightChanged { weight: 5 }
        }
    );
    // Quorum 6 was not held at start (weights 1 + 1); 1 + 5 reaches it.
    assert_eq!(
        next(&mut events).await.event,
        ServiceEvent::QuorumUp { live_weight: 6 }
    );
    let st = h.status().await.unwrap();
    assert!(st[0].has_quorum);
    assert_eq!(st[0].live_weight, 6);
    std::fs::write(&flag, "").unwrap();
    let ev = next(&mut events).await;
    assert_eq!(
        ev.event,
        ServiceEvent::Server {
            index: 0,
            event: ServerEvent::Down { inhibited: false }
        }
    );
    assert_eq!(
        next(&mut events).await.event,
        ServiceEvent::QuorumDown { live_weight: 5 }
    );
    let st = h.status().await.unwrap();
    let c = &st[0].servers[0].checkers[0];
    assert_eq!(c.kind, "MISC_CHECK");
    assert!(!c.up);
    assert!(c.consecutive_failures >= 1);
    assert_eq!(
        c.last_result,
        Some(ProbeOutcome::Failure(health::FailureKind::Program))
    );
    std::fs::remove_file(&flag).unwrap();
    assert!(matches!(
        next(&mut events).await.event,
        ServiceEvent::Server {
            index: 0,
            event: ServerEvent::Up { weight: 1 }
        }
    ));
    assert_eq!(
        next(&mut events).await.event,
        ServiceEvent::QuorumUp { live_weight: 6 }
    );
    let m = h.metrics().snapshot();
    assert!(m.probes_started >= 4 && m.failures[3] >= 1, "{m:?}");
    // omega: shutdown reports every live server down, then quorum down.
    let bye = h.shutdown().await.unwrap();
    assert_eq!(bye.len(), 3, "{bye:?}");
}

#[tokio::test]
async fn tracked_file_marks_server_down_and_shifts_weight() {
    let tmp = TempDir::new("prober-file");
    let down = tmp.0.join("down");
    let weight = tmp.0.join("weight");
    std::fs::write(&down, "0\n").unwrap();
    std::fs::write(&weight, "0\n").unwrap();
    let mut a = RealServerConfig::new("127.0.0.1".parse().unwrap(), 1);
    a.files.push(FileCheck {
        file: down.to_string_lossy().into_owned(),
        weight: 0,
        reverse: false,
    });
    let mut b = RealServerConfig::new("127.0.0.1".parse().unwrap(), 2);
    b.weight = 10;
    b.files.push(FileCheck {
        file: weight.to_string_lossy().into_owned(),
        weight: 2,
        reverse: true,
    });
    let cfg = ProberConfig {
        file_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let (h, mut events) =
        Prober::start(vec![ServiceConfig::new("files", vec![a, b])], cfg).unwrap();
    std::fs::write(&down, "1\n").unwrap();
    assert_eq!(
        next(&mut events).await.event,
        ServiceEvent::Server {
            index: 0,
            event: ServerEvent::Down { inhibited: false }
        }
    );
    std::fs::write(&weight, "3\n").unwrap();
    assert_eq!(
        next(&mut events).await.event,
        ServiceEvent::Server {
            index: 1,
            event: ServerEvent::WeightChanged { weight: 4 }
        }
    );
    let st = h.status().await.unwrap();
    assert!(!st[0].servers[0].alive);
    assert_eq!(st[0].servers[1].weight, 4);
    assert!(st[0].servers[0].last_change.is_some());
    assert!(h.metrics().snapshot().file_reads >= 2);
    h.shutdown().await.unwrap();
}
