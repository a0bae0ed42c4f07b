//! The VIP announcement policy: whether each VIP /32 is advertised (and at which
//! metric), from its services' quorum, maintenance drains and flap damping.
//!
//! Decision, in order:
//! 1. drained (operator command or drain file present) → cost-out if configured, else
//!    withdrawn;
//! 2. quorum lacking (every service must hold it with [`QuorumMode::All`], one with
//!    [`QuorumMode::Any`]) → cost-out if configured, else withdrawn;
//! 3. otherwise announced at the normal metric.
//!
//! A VIP without services is announced unconditionally (the `[[announce]]` case), still
//! subject to drains. Services start without quorum until the daemon reports it, so a
//! VIP starts withdrawn.
//!
//! Damping: after a change, the next change waits until `hold_time` has passed since
//! it; the pending decision is re-evaluated when the hold ends (if things went back in
//! the meantime, nothing is emitted). With `damp_withdrawals` off, withdrawals (and
//! cost-outs) skip the hold — only re-announcements are damped — which bounds how
//! long a dead VIP can keep attracting traffic.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::HealthError;

/// How several services sharing a VIP combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuorumMode {
    /// Every service must hold quorum (default: a VIP is only as good as all its ports).
    #[default]
    All,
    /// One service holding quorum is enough.
    Any,
}

/// Where a drain comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DrainSource {
    /// `fulcrum drain` (an operator command).
    Operator,
    /// The configured drain file exists.
    File,
}

/// A VIP's announcement policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipConfig {
    /// The VIP (announced as a /32).
    pub vip: Ipv4Addr,
    /// The services whose quorum it follows (by name); none = unconditional.
    pub services: Vec<String>,
    /// How they combine.
    pub mode: QuorumMode,
    /// The metric it is announced with normally.
    pub metric: u32,
    /// Announce with this metric instead of withdrawing (cost-out).
    pub cost_out_metric: Option<u32>,
    /// The minimum time between two changes (0 = no damping).
    pub hold_time: Duration,
    /// Whether withdrawals and cost-outs are damped too (default true).
    pub damp_withdrawals: bool,
}

impl VipConfig {
    /// A policy following `services` (mode all, metric 0, no cost-out, no damping).
    pub fn new(vip: Ipv4Addr, services: Vec<String>) -> Self {
        VipConfig {
            vip,
            services,
            mode: QuorumMode::All,
            metric: 0,
            cost_out_metric: None,
            hold_time: Duration::ZERO,
            damp_withdrawals: true,
        }
    }
}

/// Why a VIP is in its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The services it follows hold quorum.
    Quorum,
    /// No service to follow: announced unconditionally.
    Unconditional,
    /// These services lack quorum (all of them with mode any).
    QuorumLost {
        /// The services without quorum, sorted.
        services: Vec<String>,
    },
    /// Maintenance drain.
    Drained {
        /// The active drain sources.
        sources: Vec<DrainSource>,
    },
}

/// A change of a VIP's announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipEvent {
    /// The VIP.
    pub vip: Ipv4Addr,
    /// Whether it is announced now.
    pub announced: bool,
    /// The metric it is announced with (the normal metric when withdrawn).
    pub metric: u32,
    /// Why.
    pub reason: Reason,
    /// Whether damping delayed this change.
    pub damped: bool,
}

/// The current state of a VIP, for `fulcrum vips`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipState {
    /// Whether it is announced.
    pub announced: bool,
    /// The metric (the normal metric when withdrawn).
    pub metric: u32,
    /// Why it is in this state.
    pub reason: Reason,
    /// When a damped change will be reconsidered, if one is pending.
    pub pending_until: Option<Duration>,
}

/// The announcement state machine of one VIP.
#[derive(Debug, Clone)]
pub struct VipAnnouncer {
    cfg: VipConfig,
    quorum: BTreeMap<String, bool>,
    drains: BTreeSet<DrainSource>,
    announced: bool,
    metric: u32,
    reason: Reason,
    last_change: Option<Duration>,
    pending_until: Option<Duration>,
    events: VecDeque<VipEvent>,
}

impl VipAnnouncer {
    /// A VIP policy starting at `now`; announces at once if it follows no service.
    pub fn new(cfg: VipConfig, now: Duration) -> Result<Self, HealthError> {
        let mut quorum = BTreeMap::new();
        for s in &cfg.services {
            if quorum.insert(s.clone(), false).is_some() {
                return Err(HealthError::DuplicateService(s.clone()));
            }
        }
        let mut a = VipAnnouncer {
            metric: cfg.metric,
            reason: Reason::QuorumLost {
                services: cfg.services.clone(),
            },
            cfg,
            quorum,
            drains: BTreeSet::new(),
            announced: false,
            last_change: None,
            pending_until: None,
            events: VecDeque::new(),
        };
        a.reason = a.desired().2;
        a.evaluate(now);
        Ok(a)
    }

    /// The VIP.
    pub fn vip(&self) -> Ipv4Addr {
        self.cfg.vip
    }

    /// The current state.
    pub fn state(&self) -> VipState {
        VipState {
            announced: self.announced,
            metric: self.metric,
            reason: self.reason.clone(),
            pending_until: self.pending_until,
        }
    }

    /// Reports a service's quorum.
    pub fn set_service_quorum(
        &mut self,
        now: Duration,
        service: &str,
        has_quorum: bool,
    ) -> Result<(), HealthError> {
        let slot = self
            .quorum
            .get_mut(service)
            .ok_or_else(|| HealthError::UnknownService(service.to_owned()))?;
        *slot = has_quorum;
        self.evaluate(now);
        Ok(())
    }

    /// Sets or clears a drain (the operator's command, or the drain file's presence).
    pub fn set_drain(&mut self, now: Duration, source: DrainSource, drained: bool) {
        if drained {
            self.drains.insert(source);
        } else {
            self.drains.remove(&source);
        }
        self.evaluate(now);
    }

    /// When `on_timeout` must be called (the end of a hold with a change pending).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.pending_until
    }

    /// Advances time: applies a pending change whose hold has ended.
    pub fn on_timeout(&mut self, now: Duration) {
        if self.pending_until.is_some_and(|t| now >= t) {
            self.evaluate(now);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<VipEvent> {
        self.events.pop_front()
    }

    /// (announced, metric, reason) the inputs call for, ignoring damping.
    fn desired(&self) -> (bool, u32, Reason) {
        let out = |reason| match self.cfg.cost_out_metric {
            Some(m) => (true, m, reason),
            None => (false, self.cfg.metric, reason),
        };
        if !self.drains.is_empty() {
            return out(Reason::Drained {
                sources: self.drains.iter().copied().collect(),
            });
        }
        if self.quorum.is_empty() {
            return (true, self.cfg.metric, Reason::Unconditional);
        }
        let lacking: Vec<String> = self
            .quorum
            .iter()
            .filter(|(_, up)| !**up)
            .map(|(s, _)| s.clone())
            .collect();
        let ok = match self.cfg.mode {
            QuorumMode::All => lacking.is_empty(),
            QuorumMode::Any => lacking.len() < self.quorum.len(),
        };
        if ok {
            (true, self.cfg.metric, Reason::Quorum)
        } else {
            out(Reason::QuorumLost { services: lacking })
        }
    }

    fn evaluate(&mut self, now: Duration) {
        let (announced, metric, reason) = self.desired();
        if (announced, metric) == (self.announced, self.metric) {
            // Same advertisement: nothing to send; a pending change is void.
            self.reason = reason;
            self.pending_until = None;
            return;
        }
        let worse = !announced || metric != self.cfg.metric;
        let damped_kind = self.cfg.damp_withdrawals || !worse;
        if let Some(last) = self.last_change {
            let until = last.saturating_add(self.cfg.hold_time);
            if damped_kind && now < until {
                self.pending_until = Some(until);
                return;
            }
        }
        let damped = self.pending_until.take().is_some();
        self.announced = announced;
        self.metric = metric;
        self.reason = reason.clone();
        self.last_change = Some(now);
        self.events.push_back(VipEvent {
            vip: self.cfg.vip,
            announced,
            metric,
            reason,
            damped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    const VIP: Ipv4Addr = Ipv4Addr::new(100, 96, 122, 210);

    fn cfg(services: &[&str]) -> VipConfig {
        let mut c = VipConfig::new(VIP, services.iter().map(|s| s.to_string()).collect());
        c.metric = 10;
        c
    }

    fn drain(a: &mut VipAnnouncer) -> Vec<VipEvent> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    fn ev(announced: bool, metric: u32, reason: Reason, damped: bool) -> VipEvent {
        VipEvent {
            vip: VIP,
            announced,
            metric,
            reason,
            damped,
        }
    }

    #[test]
    fn all_services_required_by_default() {
        let mut a = VipAnnouncer::new(cfg(&["web", "tls"]), s(0)).unwrap();
        assert_eq!(drain(&mut a), vec![]);
        assert!(!a.state().announced);
        a.set_service_quorum(s(1), "web", true).unwrap();
        assert_eq!(drain(&mut a), vec![]);
        assert_eq!(
            a.state().reason,
            Reason::QuorumLost {
                services: vec!["tls".into()]
            }
        );
        a.set_service_quorum(s(2), "tls", true).unwrap();
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, false)]);
        a.set_service_quorum(s(3), "web", false).unwrap();
        assert_eq!(
            drain(&mut a),
            vec![ev(
                false,
                10,
                Reason::QuorumLost {
                    services: vec!["web".into()]
                },
                false
            )]
        );
        assert!(matches!(
            a.set_service_quorum(s(4), "nope", true),
            Err(HealthError::UnknownService(_))
        ));
        assert!(VipAnnouncer::new(cfg(&["a", "a"]), s(0)).is_err());
    }

    #[test]
    fn any_mode_needs_one() {
        let mut c = cfg(&["a", "b"]);
        c.mode = QuorumMode::Any;
        let mut a = VipAnnouncer::new(c, s(0)).unwrap();
        a.set_service_quorum(s(1), "b", true).unwrap();
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, false)]);
        a.set_service_quorum(s(2), "a", true).unwrap();
        a.set_service_quorum(s(3), "b", false).unwrap();
        assert_eq!(drain(&mut a), vec![]);
        a.set_service_quorum(s(4), "a", false).unwrap();
        assert_eq!(
            drain(&mut a),
            vec![ev(
                false,
                10,
                Reason::QuorumLost {
                    services: vec!["a".into(), "b".into()]
                },
                false
            )]
        );
    }

    #[test]
    fn unconditional_vip_and_drains() {
        let mut a = VipAnnouncer::new(cfg(&[]), s(0)).unwrap();
        assert_eq!(
            drain(&mut a),
            vec![ev(true, 10, Reason::Unconditional, false)]
        );
        a.set_drain(s(1), DrainSource::File, true);
        a.set_drain(s(2), DrainSource::Operator, true);
        assert_eq!(
            drain(&mut a),
            vec![ev(
                false,
                10,
                Reason::Drained {
                    sources: vec![DrainSource::File]
                },
                false
            )]
        );
        assert_eq!(
            a.state().reason,
            Reason::Drained {
                sources: vec![DrainSource::Operator, DrainSource::File]
            }
        );
        // Both sources must clear.
        a.set_drain(s(3), DrainSource::File, false);
        assert_eq!(drain(&mut a), vec![]);
        a.set_drain(s(4), DrainSource::Operator, false);
        assert_eq!(
            drain(&mut a),
            vec![ev(true, 10, Reason::Unconditional, false)]
        );
    }

    #[test]
    fn cost_out_instead_of_withdraw() {
        let mut c = cfg(&["web"]);
        c.cost_out_metric = Some(65000);
        let mut a = VipAnnouncer::new(c, s(0)).unwrap();
        // Starts without quorum: announced, costed out.
        let lost = Reason::QuorumLost {
            services: vec!["web".into()],
        };
        assert_eq!(drain(&mut a), vec![ev(true, 65000, lost.clone(), false)]);
        a.set_service_quorum(s(1), "web", true).unwrap();
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, false)]);
        a.set_drain(s(2), DrainSource::Operator, true);
        assert_eq!(
            drain(&mut a),
            vec![ev(
                true,
                65000,
                Reason::Drained {
                    sources: vec![DrainSource::Operator]
                },
                false
            )]
        );
        // Quorum lost while drained: same advertisement, no event, reason still drain.
        a.set_service_quorum(s(3), "web", false).unwrap();
        assert_eq!(drain(&mut a), vec![]);
        a.set_drain(s(4), DrainSource::Operator, false);
        assert_eq!(drain(&mut a), vec![]);
        assert_eq!(a.state().reason, lost);
    }

    #[test]
    fn damping_holds_changes_and_applies_them_when_the_hold_ends() {
        let mut c = cfg(&["web"]);
        c.hold_time = s(30);
        let mut a = VipAnnouncer::new(c, s(0)).unwrap();
        // First change is immediate.
        a.set_service_quorum(s(10), "web", true).unwrap();
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, false)]);
        // Lost 5 s later: held until 40.
        a.set_service_quorum(s(15), "web", false).unwrap();
        assert_eq!(drain(&mut a), vec![]);
        assert_eq!(a.poll_timeout(), Some(s(40)));
        assert!(a.state().announced);
        a.on_timeout(s(39));
        assert_eq!(drain(&mut a), vec![]);
        a.on_timeout(s(40));
        let lost = Reason::QuorumLost {
            services: vec!["web".into()],
        };
        assert_eq!(drain(&mut a), vec![ev(false, 10, lost, true)]);
        assert_eq!(a.poll_timeout(), None);
        // Flap during the next hold: back before 70 — nothing pending survives.
        a.set_service_quorum(s(50), "web", true).unwrap();
        assert_eq!(a.poll_timeout(), Some(s(70)));
        a.set_service_quorum(s(60), "web", false).unwrap();
        assert_eq!(a.poll_timeout(), None);
        a.on_timeout(s(70));
        assert_eq!(drain(&mut a), vec![]);
        // After the hold, a change is immediate again.
        a.set_service_quorum(s(100), "web", true).unwrap();
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, false)]);
    }

    #[test]
    fn undamped_withdrawals() {
        let mut c = cfg(&["web"]);
        c.hold_time = s(30);
        c.damp_withdrawals = false;
        let mut a = VipAnnouncer::new(c, s(0)).unwrap();
        a.set_service_quorum(s(0), "web", true).unwrap();
        drain(&mut a);
        a.set_service_quorum(s(1), "web", false).unwrap();
        assert_eq!(drain(&mut a).len(), 1, "withdrawn at once");
        a.set_service_quorum(s(2), "web", true).unwrap();
        assert_eq!(drain(&mut a), vec![], "re-announcement waits for the hold");
        assert_eq!(a.poll_timeout(), Some(s(31)));
        a.on_timeout(s(31));
        assert_eq!(drain(&mut a), vec![ev(true, 10, Reason::Quorum, true)]);
    }
}
