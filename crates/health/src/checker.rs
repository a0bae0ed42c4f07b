//! One checker's timer-driven state machine (keepalived's `*_epilog` logic).
//!
//! # Timing, exactly as keepalived
//!
//! A *check* is up to `retry + 1` *attempts*. After an attempt ends (success, failure,
//! or timeout after the probe timeout), the next attempt is scheduled from that moment:
//!
//! - success → next check after `delay_loop`;
//! - failure with `retry_it < retry` → `retry_it += 1`, next attempt after
//!   `delay_before_retry`;
//! - failure with `retry_it == retry` → the check has failed: the server goes down
//!   (if it was up), `retry_it = 0`, next check after `delay_loop`.
//!
//! Worked example, `delay_loop 3, retry 2, delay_before_retry 3`, and a server that
//! refuses connections (each failed attempt ends at once). Say the last good check ran
//! at `t0` and the server died at `t_d` in `(t0, t0 + 3]`. Attempts run at
//! `t0 + 3` (fails, retry 1 scheduled), `t0 + 6` (fails, retry 2 scheduled), `t0 + 9`
//! (fails, retries exhausted): the server is down at `t0 + 9`, that is between 6 s
//! and 9 s after it died, and exactly 9 s after the last good check. If instead the
//! server silently drops probes, each attempt ends only at its timeout `c`
//! (`connect_timeout`) and the next starts `delay_before_retry` later, so down comes at
//! `t0 + 3 + 3c + 2·3`: with `c = 1 s` that is `t0 + 12`, i.e. between 9 s and 12 s
//! after the death. In general: down at `t0 + delay_loop + (retry + 1)·c_fail +
//! retry·delay_before_retry`, where `c_fail` is how long a failed attempt takes.
//! Both cases are tests below.
//!
//! As in current keepalived, a server that is already down is retried the same way (it
//! just produces no new event), and the first check after start (`has_run` false)
//! reports its result even when it matches the initial state.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::CheckerConfig;
use crate::eval::{FailureKind, ProbeOutcome};
use crate::HealthError;

/// A probe the daemon must run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRequest {
    /// Identifies the attempt; echo it in the [`ProbeResult`].
    pub seq: u64,
    /// 0 for the first attempt of a check, n for its n-th retry.
    pub attempt: u32,
    /// How long the attempt may take; the checker counts it failed after that anyway.
    pub timeout: Duration,
}

/// The result of a probe the daemon ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The `seq` of the [`ProbeRequest`].
    pub seq: u64,
    /// What it concluded.
    pub outcome: ProbeOutcome,
}

/// What a checker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckerEvent {
    /// The checker now passes.
    Up,
    /// The checker now fails (its last check exhausted its retries `fall` times in a row).
    Down,
    /// A `misc_dynamic` result set a new weight.
    Weight(u32),
}

/// Counters for `fulcrum health` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckerStats {
    /// Attempts started.
    pub attempts: u64,
    /// Attempts that failed (including timeouts).
    pub failed_attempts: u64,
    /// Attempts the checker timed out itself because no result came in time.
    pub timeouts: u64,
    /// Results that arrived for an attempt no longer in flight (dropped).
    pub stale_results: u64,
}

/// The probe state: waiting for the next attempt, or an attempt in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The next attempt starts at this time.
    Idle { next: Duration },
    /// Attempt `seq` started and is counted failed at `deadline`.
    InFlight { seq: u64, deadline: Duration },
}

/// One checker of one real server.
#[derive(Debug, Clone)]
pub struct Checker {
    cfg: CheckerConfig,
    timeout: Duration,
    phase: Phase,
    seq: u64,
    up: bool,
    has_run: bool,
    retry_it: u32,
    rises: u32,
    falls: u32,
    weight: Option<u32>,
    events: VecDeque<CheckerEvent>,
    stats: CheckerStats,
}

/// splitmix64: turns the caller's seed into a well-spread value.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Checker {
    /// A checker created at `now`. The first attempt starts at `now` plus a delay drawn
    /// from `seed` uniformly in `[0, warmup]` (no delay without `warmup`). The checker
    /// starts up, or down with `alpha`.
    pub fn new(cfg: CheckerConfig, now: Duration, seed: u64) -> Result<Self, HealthError> {
        cfg.validate()?;
        let warmup = if cfg.warmup.is_zero() {
            Duration::ZERO
        } else {
            let nanos = cfg.warmup.as_nanos();
            let frac = u128::from(mix(seed) % 1_000_001);
            let d = nanos.saturating_mul(frac) / 1_000_000;
            Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
        };
        Ok(Checker {
            timeout: cfg.probe_timeout(),
            up: !cfg.alpha,
            cfg,
            phase: Phase::Idle {
                next: now.saturating_add(warmup),
            },
            seq: 0,
            has_run: false,
            retry_it: 0,
            rises: 0,
            falls: 0,
            weight: None,
            events: VecDeque::new(),
            stats: CheckerStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CheckerConfig {
        &self.cfg
    }

    /// Whether the checker currently passes.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Whether at least one check has concluded.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// The weight set by `misc_dynamic`, if any.
    pub fn dynamic_weight(&self) -> Option<u32> {
        self.weight
    }

    /// Counters.
    pub fn stats(&self) -> CheckerStats {
        self.stats
    }

    /// When `on_timeout` must next be called: the next attempt's start, or the deadline
    /// of the attempt in flight.
    pub fn poll_timeout(&self) -> Option<Duration> {
        Some(match self.phase {
            Phase::Idle { next } => next,
            Phase::InFlight { deadline, .. } => deadline,
        })
    }

    /// Advances time: times out an attempt whose result is overdue, and starts the next
    /// attempt when it is due (returned for the daemon to run).
    pub fn on_timeout(&mut self, now: Duration) -> Option<ProbeRequest> {
        if let Phase::InFlight { deadline, .. } = self.phase {
            if now < deadline {
                return None;
            }
            self.stats.timeouts += 1;
            self.conclude(deadline, ProbeOutcome::Failure(FailureKind::Timeout));
        }
        match self.phase {
            Phase::Idle { next } if now >= next => {
                self.seq = self.seq.wrapping_add(1);
                self.stats.attempts += 1;
                self.phase = Phase::InFlight {
                    seq: self.seq,
                    deadline: now.saturating_add(self.timeout),
                };
                Some(ProbeRequest {
                    seq: self.seq,
                    attempt: self.retry_it,
                    timeout: self.timeout,
                })
            }
            _ => None,
        }
    }

    /// Feeds the result of an attempt. A result for an attempt that is no longer in
    /// flight (already timed out, or unknown) is counted and ignored; returns whether
    /// it was used.
    pub fn on_result(&mut self, now: Duration, result: ProbeResult) -> bool {
        match self.phase {
            Phase::InFlight { seq, .. } if seq == result.seq => {
                self.conclude(now, result.outcome);
                true
            }
            _ => {
                self.stats.stale_results += 1;
                false
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<CheckerEvent> {
        self.events.pop_front()
    }

    /// keepalived's epilog: decides the next delay and the state after one attempt.
    fn conclude(&mut self, now: Duration, outcome: ProbeOutcome) {
        let success = outcome.is_success();
        if !success {
            self.stats.failed_attempts += 1;
        }
        let delay = if success || self.retry_it >= self.cfg.retry {
            // The check is over: passed, or failed with its retries exhausted.
            self.retry_it = 0;
            if success {
                self.falls = 0;
                self.rises = self.rises.saturating_add(1);
                if let ProbeOutcome::SuccessWithWeight(w) = outcome {
                    if self.weight != Some(w) {
                        self.weight = Some(w);
                        self.events.push_back(CheckerEvent::Weight(w));
                    }
                }
                if !self.up && self.rises >= self.cfg.rise {
                    self.up = true;
                    self.events.push_back(CheckerEvent::Up);
                }
            } else {
                self.rises = 0;
                self.falls = self.falls.saturating_add(1);
                if self.up && self.falls >= self.cfg.fall {
                    self.up = false;
                    self.events.push_back(CheckerEvent::Down);
                }
            }
            self.has_run = true;
            self.cfg.delay_loop
        } else {
            // A failed attempt with retries left.
            self.retry_it += 1;
            self.cfg.delay_before_retry
        };
        self.phase = Phase::Idle {
            next: now.saturating_add(delay),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckKind, TcpCheck};

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn tcp(delay_loop: u64, retry: u32, dbr: u64, timeout: u64) -> CheckerConfig {
        let mut t = TcpCheck::default();
        t.conn.connect_timeout = s(timeout);
        let mut c = CheckerConfig::new(CheckKind::Tcp(t));
        c.delay_loop = s(delay_loop);
        c.retry = retry;
        c.delay_before_retry = s(dbr);
        c
    }

    /// Drives a checker in simulated time against a server whose answer is decided by
    /// `alive(t)`, failed attempts taking `fail_after` (0 = refused at once, else a
    /// silent drop lasting until the timeout). Returns (time, event) pairs up to `until`.
    fn simulate(
        c: &mut Checker,
        until: Duration,
        fail_after: Option<Duration>,
        alive: impl Fn(Duration) -> bool,
    ) -> Vec<(Duration, CheckerEvent)> {
        let mut events = Vec::new();
        let mut pending: Option<(Duration, ProbeResult)> = None;
        loop {
            let t_timer = c.poll_timeout().unwrap();
            let next = match pending {
                Some((t, _)) if t <= t_timer => t,
                _ => t_timer,
            };
            if next > until {
                break;
            }
            if let Some((t, r)) = pending {
                if t == next {
                    pending = None;
                    c.on_result(t, r);
                }
            }
            if let Some(req) = c.on_timeout(next) {
                let (at, outcome) = if alive(next) {
                    (next, ProbeOutcome::Success)
                } else {
                    match fail_after {
                        None => (next, ProbeOutcome::Failure(FailureKind::Connect)),
                        // A silent drop: no result; the checker's own deadline fires.
                        Some(_) => {
                            while let Some(e) = c.poll_event() {
                                events.push((next, e));
                            }
                            continue;
                        }
                    }
                };
                pending = Some((
                    at,
                    ProbeResult {
                        seq: req.seq,
                        outcome,
                    },
                ));
            }
            while let Some(e) = c.poll_event() {
                events.push((next, e));
            }
        }
        events
    }

    #[test]
    fn refused_server_is_down_9s_after_last_good_check() {
        // delay_loop 3, retry 2, delay_before_retry 3; attempts at 0 (ok), 3, 6, 9.
        let mut c = Checker::new(tcp(3, 2, 3, 5), s(0), 0).unwrap();
        let ev = simulate(&mut c, s(30), None, |t| t < s(1));
        assert_eq!(ev, vec![(s(9), CheckerEvent::Down)]);
        assert_eq!(c.stats().attempts, 1 + 3 + 3 + 3 + 1);
    }

    #[test]
    fn down_between_6_and_9_s_after_death_when_refused() {
        // Death anywhere in (0, 3]: the failing attempts are always at 3, 6 and 9.
        for death_ms in [1u64, 1500, 2999, 3000] {
            let death = Duration::from_millis(death_ms);
            let mut c = Checker::new(tcp(3, 2, 3, 5), s(0), 0).unwrap();
            let ev = simulate(&mut c, s(20), None, |t| t < death);
            let (at, e) = ev[0];
            assert_eq!(e, CheckerEvent::Down);
            assert_eq!(at, s(9));
            let after = at - death;
            assert!(
                after >= s(6) && after < s(9),
                "{after:?} after death at {death:?}"
            );
        }
    }

    #[test]
    fn silent_server_with_1s_timeout_is_down_9_to_12_s_after_death() {
        // Attempts start at 3 (times out at 4), 7 (→ 8), 11 (→ 12): down at 12.
        for death_ms in [1u64, 2999] {
            let death = Duration::from_millis(death_ms);
            let mut c = Checker::new(tcp(3, 2, 3, 1), s(0), 0).unwrap();
            let ev = simulate(&mut c, s(12), Some(s(1)), |t| t < death);
            assert_eq!(ev[0], (s(12), CheckerEvent::Down));
            let after = s(12) - death;
            assert!(after > s(9) && after < s(12));
            assert_eq!(c.stats().timeouts, 3);
        }
    }

    #[test]
    fn general_formula_holds() {
        // down = delay_loop + (retry+1)·c + retry·dbr after the last good check.
        for (dl, retry, dbr, c_to) in [
            (3u64, 2u32, 3u64, 1u64),
            (5, 0, 1, 2),
            (60, 1, 1, 5),
            (2, 3, 1, 1),
        ] {
            let mut c = Checker::new(tcp(dl, retry, dbr, c_to), s(0), 0).unwrap();
            let ev = simulate(&mut c, s(500), Some(s(c_to)), |t| t < s(1) && t.is_zero());
            let want = s(dl + u64::from(retry + 1) * c_to + u64::from(retry) * dbr);
            assert_eq!(
                ev[0],
                (want, CheckerEvent::Down),
                "{dl} {retry} {dbr} {c_to}"
            );
        }
    }

    #[test]
    fn every_kind_uses_its_own_timeout() {
        use crate::config::{ConnectOptions, HttpCheck, MiscCheck, PingCheck, UdpCheck, UrlCheck};
        let conn = ConnectOptions {
            connect_timeout: s(2),
            ..ConnectOptions::default()
        };
        let kinds = [
            (CheckKind::Tcp(TcpCheck { conn: conn.clone() }), 2u64),
            (
                CheckKind::Http(HttpCheck {
                    conn: conn.clone(),
                    ssl: true,
                    urls: vec![UrlCheck::new("/")],
                    virtualhost: Some("www.example.com".into()),
                    enable_sni: true,
                }),
                2,
            ),
            (
                CheckKind::Udp(UdpCheck {
                    conn: conn.clone(),
                    ..UdpCheck::default()
                }),
                2,
            ),
            (CheckKind::Ping(PingCheck { conn }), 2),
            // misc_timeout unset: delay_loop (4 s).
            (
                CheckKind::Misc(MiscCheck {
                    misc_path: "/bin/check".into(),
                    misc_timeout: None,
                    misc_dynamic: false,
                    user: None,
                }),
                4,
            ),
        ];
        for (kind, timeout) in kinds {
            let name = kind.keyword();
            let mut cfg = CheckerConfig::new(kind);
            cfg.delay_loop = s(4);
            cfg.retry = 1;
            cfg.delay_before_retry = s(1);
            let mut c = Checker::new(cfg, s(0), 0).unwrap();
            let ev = simulate(&mut c, s(40), Some(s(timeout)), |t| t.is_zero());
            // 4 + 2·timeout + 1 after the good check at 0.
            assert_eq!(
                ev[0],
                (s(4 + 2 * timeout + 1), CheckerEvent::Down),
                "{name}"
            );
        }
    }

    #[test]
    fn one_failed_attempt_then_success_does_not_go_down() {
        // retry 1: a single failure is retried after delay_before_retry and forgiven.
        let mut c = Checker::new(tcp(10, 1, 2, 5), s(0), 0).unwrap();
        let ev = simulate(&mut c, s(60), None, |t| t != s(10));
        assert_eq!(ev, vec![]);
        assert!(c.is_up());
        assert_eq!(c.stats().failed_attempts, 1);
    }

    #[test]
    fn recovery_needs_one_success_and_is_seen_at_the_next_delay_loop() {
        let mut c = Checker::new(tcp(3, 0, 1, 5), s(0), 0).unwrap();
        // retry 0: down at the first failure (t=3), up at the first success (t=12).
        let ev = simulate(&mut c, s(20), None, |t| t < s(1) || t >= s(10));
        assert_eq!(
            ev,
            vec![(s(3), CheckerEvent::Down), (s(12), CheckerEvent::Up)]
        );
    }

    #[test]
    fn down_server_is_retried_too() {
        // keepalived keeps retrying a down server: attempts at 3,4 then 5+... every
        // delay_loop after the retries, i.e. 3, 4 (down), 7, 8, 11, 12 …
        let mut c = Checker::new(tcp(3, 1, 1, 5), s(0), 0).unwrap();
        simulate(&mut c, s(12), None, |t| t.is_zero());
        // 0 ok; (3,4) fail → down; (7,8); (11,12): 7 attempts.
        assert_eq!(c.stats().attempts, 7);
        assert!(!c.is_up());
    }

    #[test]
    fn alpha_starts_down_and_rise_counts_checks() {
        let mut cfg = tcp(5, 1, 1, 2);
        cfg.alpha = true;
        cfg.rise = 3;
        let mut c = Checker::new(cfg, s(100), 0).unwrap();
        assert!(!c.is_up());
        let ev = simulate(&mut c, s(130), None, |_| true);
        // Checks at 100, 105, 110: up after the third.
        assert_eq!(ev, vec![(s(110), CheckerEvent::Up)]);
    }

    #[test]
    fn alpha_first_failure_reports_nothing_new() {
        let mut cfg = tcp(5, 0, 1, 2);
        cfg.alpha = true;
        let mut c = Checker::new(cfg, s(0), 0).unwrap();
        let ev = simulate(&mut c, s(12), None, |_| false);
        assert_eq!(ev, vec![]);
        assert!(c.has_run());
    }

    #[test]
    fn fall_needs_consecutive_failed_checks() {
        let mut cfg = tcp(5, 0, 1, 2);
        cfg.fall = 2;
        let mut c = Checker::new(cfg.clone(), s(0), 0).unwrap();
        // Fails at 5, ok at 10, fails at 15 and 20: down at 20.
        let ev = simulate(&mut c, s(22), None, |t| !(t == s(5) || t >= s(15)));
        assert_eq!(ev, vec![(s(20), CheckerEvent::Down)]);
    }

    #[test]
    fn warmup_spreads_the_first_attempt() {
        let mut cfg = tcp(5, 0, 1, 2);
        cfg.warmup = s(10);
        let firsts: Vec<Duration> = (0..20)
            .map(|seed| {
                Checker::new(cfg.clone(), s(100), seed)
                    .unwrap()
                    .poll_timeout()
                    .unwrap()
            })
            .collect();
        assert!(firsts.iter().all(|t| *t >= s(100) && *t <= s(110)));
        let distinct: std::collections::BTreeSet<_> = firsts.iter().collect();
        assert!(distinct.len() > 10, "{firsts:?}");
        // Same seed, same delay: replayable.
        assert_eq!(
            Checker::new(cfg.clone(), s(0), 7).unwrap().poll_timeout(),
            Checker::new(cfg, s(0), 7).unwrap().poll_timeout()
        );
    }

    #[test]
    fn stale_and_early_results_are_ignored() {
        let mut c = Checker::new(tcp(5, 0, 1, 2), s(0), 0).unwrap();
        assert_eq!(c.on_timeout(s(0)).map(|r| r.seq), Some(1));
        assert!(!c.on_result(
            s(0),
            ProbeResult {
                seq: 9,
                outcome: ProbeOutcome::Success
            }
        ));
        // Not yet at the deadline: nothing.
        assert_eq!(c.on_timeout(s(1)), None);
        // Deadline passes: failure, next attempt at 2 + 5.
        assert_eq!(c.on_timeout(s(2)), None);
        assert_eq!(c.poll_event(), Some(CheckerEvent::Down));
        assert_eq!(c.poll_timeout(), Some(s(7)));
        // The late result of attempt 1 is stale now.
        assert!(!c.on_result(
            s(3),
            ProbeResult {
                seq: 1,
                outcome: ProbeOutcome::Success
            }
        ));
        assert_eq!(c.stats().stale_results, 2);
        assert!(!c.is_up());
    }

    #[test]
    fn misc_dynamic_weight_events() {
        let mut c = Checker::new(tcp(5, 0, 1, 2), s(0), 0).unwrap();
        let r = c.on_timeout(s(0)).unwrap();
        c.on_result(
            s(0),
            ProbeResult {
                seq: r.seq,
                outcome: ProbeOutcome::SuccessWithWeight(40),
            },
        );
        assert_eq!(c.poll_event(), Some(CheckerEvent::Weight(40)));
        let r = c.on_timeout(s(5)).unwrap();
        c.on_result(
            s(5),
            ProbeResult {
                seq: r.seq,
                outcome: ProbeOutcome::SuccessWithWeight(40),
            },
        );
        assert_eq!(c.poll_event(), None, "same weight, no event");
        assert_eq!(c.dynamic_weight(), Some(40));
    }
}
