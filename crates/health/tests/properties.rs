//! Property tests of the quorum and announcement logic in simulated time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use health::{
    DrainSource, FileCheck, QuorumMode, RealServerConfig, Service, ServiceConfig, VipAnnouncer,
    VipConfig,
};
use proptest::prelude::*;

/// A service whose servers have no prober, only a `FILE_CHECK` with weight 0, so that a
/// test can switch each server up (value 0) or down (value 1) directly.
fn file_driven_service(weights: &[u32], quorum: u32, hysteresis: u32) -> Service {
    let servers = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut rs = RealServerConfig::new(IpAddr::from([10, 0, 0, i as u8 + 1]), 80);
            rs.weight = *w;
            rs.files.push(FileCheck {
                file: format!("/run/down-{i}"),
                weight: 0,
                reverse: false,
            });
            rs
        })
        .collect();
    let mut cfg = ServiceConfig::new("svc", servers);
    cfg.quorum = quorum;
    cfg.hysteresis = hysteresis;
    Service::new(cfg, Duration::ZERO, 0).unwrap()
}

proptest! {
    /// Quorum changes happen exactly at keepalived's thresholds, and the state always
    /// agrees with them outside the hysteresis band.
    #[test]
    fn quorum_follows_thresholds(
        weights in proptest::collection::vec(0..5u32, 1..6),
        quorum in 1..10u32,
        hysteresis in 0..4u32,
        flips in proptest::collection::vec((0..6usize, any::<bool>()), 0..40),
    ) {
        let mut svc = file_driven_service(&weights, quorum, hysteresis);
        let up_at = u64::from(quorum + hysteresis);
        let down_below = u64::from(quorum.saturating_sub(hysteresis));
        for (i, down) in flips {
            let i = i % weights.len();
            let before = svc.has_quorum();
            svc.set_file_value(i, 0, i64::from(down)).unwrap();
            let live = svc.live_weight();
            let after = svc.has_quorum();
            if !before && after {
                prop_assert!(live >= up_at && live > 0);
            }
            if before && !after {
                prop_assert!(live == 0 || live < down_below);
            }
            if live >= up_at && live > 0 {
                prop_assert!(after, "live {live} ≥ {up_at} but no quorum");
            }
            if live == 0 || live < down_below {
                prop_assert!(!after, "live {live} < {down_below} but quorum");
            }
            prop_assert_eq!(svc.active_sorry_server(), None);
        }
    }

    /// With damping, two announcement changes are never closer than the hold time, and
    /// once inputs stop and the hold ends, the VIP is in the state its inputs call for.
    #[test]
    fn damping_spaces_changes_and_converges(
        hold in 0..20u64,
        any_mode in any::<bool>(),
        cost_out in any::<bool>(),
        steps in proptest::collection::vec((0..8u64, 0..4u8, any::<bool>()), 0..50),
    ) {
        let s = Duration::from_secs;
        let mut cfg = VipConfig::new(
            Ipv4Addr::new(100, 96, 122, 210),
            vec!["a".into(), "b".into()],
        );
        cfg.metric = 10;
        cfg.hold_time = s(hold);
        cfg.mode = if any_mode { QuorumMode::Any } else { QuorumMode::All };
        cfg.cost_out_metric = cost_out.then_some(1000);
        let mut vip = VipAnnouncer::new(cfg, s(0)).unwrap();
        let mut now = s(0);
        let mut quorum = [false, false];
        let mut drained = [false, false];
        let mut last_event: Option<Duration> = None;
        let mut check = |vip: &mut VipAnnouncer, now: Duration| -> Result<(), TestCaseError> {
            while let Some(_e) = vip.poll_event() {
                if let Some(l) = last_event {
                    prop_assert!(now - l >= s(hold), "changes at {l:?} and {now:?}");
                }
                last_event = Some(now);
            }
            Ok(())
        };
        check(&mut vip, now)?;
        for (dt, what, on) in steps {
            // Let due timers fire on the way.
            let target = now + s(dt);
            while let Some(t) = vip.poll_timeout() {
                if t > target {
                    break;
                }
                now = t;
                vip.on_timeout(now);
                check(&mut vip, now)?;
            }
            now = target;
            match what {
                0 => { quorum[0] = on; vip.set_service_quorum(now, "a", on).unwrap(); }
                1 => { quorum[1] = on; vip.set_service_quorum(now, "b", on).unwrap(); }
                2 => { drained[0] = on; vip.set_drain(now, DrainSource::Operator, on); }
                _ => { drained[1] = on; vip.set_drain(now, DrainSource::File, on); }
            }
            check(&mut vip, now)?;
        }
        // Quiesce.
        while let Some(t) = vip.poll_timeout() {
            now = now.max(t);
            vip.on_timeout(now);
            check(&mut vip, now)?;
        }
        let healthy = !drained.iter().any(|d| *d)
            && if any_mode { quorum.iter().any(|q| *q) } else { quorum.iter().all(|q| *q) };
        let st = vip.state();
        let want = match (healthy, cost_out) {
            (true, _) => (true, 10),
            (false, true) => (true, 1000),
            (false, false) => (false, 10),
        };
        prop_assert_eq!((st.announced, st.metric), want);
    }
}
