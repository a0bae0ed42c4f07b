//! Real servers (all their checkers must pass) and virtual services (quorum over the
//! live servers' weights, with hysteresis and a sorry server).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::checker::{Checker, ProbeRequest, ProbeResult};
use crate::config::{CheckerConfig, FileCheck, WEIGHT_LIMIT};
use crate::eval::{evaluate_file, FileVerdict};
use crate::HealthError;

/// A `real_server` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerConfig {
    /// The server's address.
    pub addr: IpAddr,
    /// The server's port.
    pub port: u16,
    /// `weight` (keepalived's default 1).
    pub weight: u32,
    /// `inhibit_on_failure`: a failed server stays in the pool with weight 0 instead of
    /// being removed.
    pub inhibit_on_failure: bool,
    /// The probing checkers; the server is alive only while all of them pass (and
    /// always alive without any, as keepalived).
    pub checkers: Vec<CheckerConfig>,
    /// `FILE_CHECK`s.
    pub files: Vec<FileCheck>,
}

impl RealServerConfig {
    /// A server with weight 1 and no checker.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        RealServerConfig {
            addr,
            port,
            weight: 1,
            inhibit_on_failure: false,
            checkers: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// What happens to a real server, for the dataplane and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// The server is alive again: add it (or restore its weight) with this weight.
    Up {
        /// Its effective weight.
        weight: u32,
    },
    /// The server failed: remove it, or with `inhibited` set its weight to 0.
    Down {
        /// `inhibit_on_failure` is set.
        inhibited: bool,
    },
    /// The live server's effective weight changed (`misc_dynamic`, `FILE_CHECK`).
    WeightChanged {
        /// Its new effective weight.
        weight: u32,
    },
}

/// One real server and its checkers.
#[derive(Debug, Clone)]
pub struct RealServer {
    cfg: RealServerConfig,
    checkers: Vec<Checker>,
    files: Vec<FileVerdict>,
    alive: bool,
    weight: u32,
    events: VecDeque<ServerEvent>,
}

impl RealServer {
    /// A real server created at `now`; `seed` spreads its checkers' warmup delays.
    pub fn new(cfg: RealServerConfig, now: Duration, seed: u64) -> Result<Self, HealthError> {
        if cfg.weight > WEIGHT_LIMIT {
            return Err(HealthError::Invalid("real_server", "weight above 65535"));
        }
        let checkers = cfg
            .checkers
            .iter()
            .enumerate()
            .map(|(i, c)| Checker::new(c.clone(), now, seed.wrapping_add(i as u64)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut s = RealServer {
            files: vec![FileVerdict::Weight(0); cfg.files.len()],
            cfg,
            checkers,
            alive: false,
            weight: 0,
            events: VecDeque::new(),
        };
        s.alive = s.compute_alive();
        s.weight = s.compute_weight();
        Ok(s)
    }

    /// The configuration.
    pub fn config(&self) -> &RealServerConfig {
        &self.cfg
    }

    /// The server's address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.cfg.addr, self.cfg.port)
    }

    /// Whether every checker passes and no tracked file marks it down.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// The effective weight: the configured one (or the last `misc_dynamic` one) plus
    /// tracked-file shifts, clamped to 0..=65535.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// What the server counts toward quorum: its weight while alive, else 0.
    pub fn live_weight(&self) -> u32 {
        if self.alive {
            self.weight
        } else {
            0
        }
    }

    /// The checkers, for display.
    pub fn checkers(&self) -> &[Checker] {
        &self.checkers
    }

    /// The earliest time any checker needs `on_timeout`.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.checkers.iter().filter_map(Checker::poll_timeout).min()
    }

    /// Advances time; returns the probes to start now as (checker index, request).
    pub fn on_timeout(&mut self, now: Duration) -> Vec<(usize, ProbeRequest)> {
        let mut out = Vec::new();
        for (i, c) in self.checkers.iter_mut().enumerate() {
            if let Some(r) = c.on_timeout(now) {
                out.push((i, r));
            }
        }
        self.refresh();
        out
    }

    /// Feeds a probe result to checker `checker`; returns whether it was used.
    pub fn on_result(
        &mut self,
        now: Duration,
        checker: usize,
        result: ProbeResult,
    ) -> Result<bool, HealthError> {
        let c = self
            .checkers
            .get_mut(checker)
            .ok_or(HealthError::NoSuchChecker(checker))?;
        let used = c.on_result(now, result);
        self.refresh();
        Ok(used)
    }

    /// Feeds the current value of tracked file `file` (see
    /// [`parse_file_value`](crate::eval::parse_file_value)).
    pub fn set_file_value(&mut self, file: usize, value: i64) -> Result<(), HealthError> {
        let check = self
            .cfg
            .files
            .get(file)
            .ok_or(HealthError::NoSuchFile(file))?;
        let verdict = evaluate_file(check, value);
        if let Some(slot) = self.files.get_mut(file) {
            *slot = verdict;
        }
        self.refresh();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    fn compute_alive(&self) -> bool {
        self.checkers.iter().all(Checker::is_up) && !self.files.contains(&FileVerdict::Down)
    }

    fn compute_weight(&self) -> u32 {
        // The most recent misc_dynamic weight wins over the configured one; with several
        // dynamic checkers the last one in configuration order is used.
        let base = self
            .checkers
            .iter()
            .filter_map(Checker::dynamic_weight)
            .next_back()
            .unwrap_or(self.cfg.weight);
        let shift: i64 = self
            .files
            .iter()
            .map(|f| match f {
                FileVerdict::Weight(d) => *d,
                FileVerdict::Down => 0,
            })
            .sum();
        let w = (i64::from(base) + shift).clamp(0, i64::from(WEIGHT_LIMIT));
        u32::try_from(w).unwrap_or(0)
    }

    fn refresh(&mut self) {
        // Checker events are summarised by the server state they lead to; drop them.
        for c in &mut self.checkers {
            while c.poll_event().is_some() {}
        }
        let alive = self.compute_alive();
        let weight = self.compute_weight();
        match (self.alive, alive) {
            (false, true) => self.events.push_back(ServerEvent::Up { weight }),
            (true, false) => self.events.push_back(ServerEvent::Down {
                inhibited: self.cfg.inhibit_on_failure,
            }),
            (true, true) if weight != self.weight => {
                self.events.push_back(ServerEvent::WeightChanged { weight })
            }
            _ => {}
        }
        self.alive = alive;
        self.weight = weight;
    }
}

/// A `virtual_server` block's health part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The service's name (VIP policies refer to it).
    pub name: String,
    /// `quorum`: the least sum of live weights for the service to be up (default 1).
    pub quorum: u32,
    /// `hysteresis`: up at `quorum + hysteresis`, down below `quorum − hysteresis`
    /// (default 0).
    pub hysteresis: u32,
    /// `sorry_server`: used while the service lacks quorum.
    pub sorry_server: Option<SocketAddr>,
    /// `omega`: on shutdown, report quorum loss and server downs (keepalived runs its
    /// `quorum_down` / `notify_down` then).
    pub omega: bool,
    /// The real servers.
    pub real_servers: Vec<RealServerConfig>,
}

impl ServiceConfig {
    /// A service with keepalived's defaults (quorum 1, hysteresis 0).
    pub fn new(name: impl Into<String>, real_servers: Vec<RealServerConfig>) -> Self {
        ServiceConfig {
            name: name.into(),
            quorum: 1,
            hysteresis: 0,
            sorry_server: None,
            omega: false,
            real_servers,
        }
    }
}

/// A probe for the daemon to run: which server, which of its checkers, what request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTask {
    /// Index of the real server in the service.
    pub server: usize,
    /// Index of the checker in the server.
    pub checker: usize,
    /// The request.
    pub request: ProbeRequest,
}

/// What happens to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceEvent {
    /// A real server changed.
    Server {
        /// Its index.
        index: usize,
        /// What happened.
        event: ServerEvent,
    },
    /// The live weight reached `quorum + hysteresis`.
    QuorumUp {
        /// The sum of live weights.
        live_weight: u64,
    },
    /// The live weight fell below `quorum − hysteresis` (or to 0).
    QuorumDown {
        /// The sum of live weights.
        live_weight: u64,
    },
    /// The sorry server is to be used (quorum lost) or no longer (quorum back).
    SorryServer {
        /// Whether it is in use now.
        active: bool,
    },
}

/// One virtual service: its real servers and its quorum state.
///
/// Quorum is keepalived's: the sum of the *weights* of live servers (not their count)
/// against `quorum`, because that is what a keepalived user's numbers mean and it lets
/// a big server count for more; set every weight to 1 for a count. The state starts as
/// `live weight ≥ quorum` (so with keepalived's optimistic start every server counts;
/// use `alpha` to start pessimistic). Then, as keepalived's `update_quorum_state`:
/// quorum is gained when `live ≥ quorum + hysteresis` and lost when `live = 0` or
/// `live < quorum − hysteresis`. The sorry server is in use exactly while quorum is
/// lost (keepalived adds it on quorum loss; with quorum 1 that is "all servers down").
#[derive(Debug, Clone)]
pub struct Service {
    name: String,
    quorum: u32,
    hysteresis: u32,
    sorry_server: Option<SocketAddr>,
    omega: bool,
    servers: Vec<RealServer>,
    quorum_up: bool,
    events: VecDeque<ServiceEvent>,
}

impl Service {
    /// A service created at `now`; `seed` spreads warmup delays (replayable).
    pub fn new(cfg: ServiceConfig, now: Duration, seed: u64) -> Result<Self, HealthError> {
        let servers = cfg
            .real_servers
            .into_iter()
            .enumerate()
            .map(|(i, rs)| RealServer::new(rs, now, seed.wrapping_add((i as u64) << 16)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut s = Service {
            name: cfg.name,
            quorum: cfg.quorum,
            hysteresis: cfg.hysteresis,
            sorry_server: cfg.sorry_server,
            omega: cfg.omega,
            servers,
            quorum_up: false,
            events: VecDeque::new(),
        };
        s.quorum_up = s.live_weight() >= u64::from(s.quorum) && s.live_weight() > 0;
        Ok(s)
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the service holds quorum.
    pub fn has_quorum(&self) -> bool {
        self.quorum_up
    }

    /// The sum of the live servers' weights.
    pub fn live_weight(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| u64::from(s.live_weight()))
            .sum()
    }

    /// The sorry server, while it is in use.
    pub fn active_sorry_server(&self) -> Option<SocketAddr> {
        if self.quorum_up {
            None
        } else {
            self.sorry_server
        }
    }

    /// The real servers.
    pub fn servers(&self) -> &[RealServer] {
        &self.servers
    }

    /// The earliest time any checker needs `on_timeout`.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.servers
            .iter()
            .filter_map(RealServer::poll_timeout)
            .min()
    }

    /// Advances time; returns the probes to start now.
    pub fn on_timeout(&mut self, now: Duration) -> Vec<ProbeTask> {
        let mut out = Vec::new();
        for (si, s) in self.servers.iter_mut().enumerate() {
            for (ci, request) in s.on_timeout(now) {
                out.push(ProbeTask {
                    server: si,
                    checker: ci,
                    request,
                });
            }
        }
        self.update();
        out
    }

    /// Feeds a probe result; returns whether it was used (stale results are not).
    pub fn on_result(
        &mut self,
        now: Duration,
        server: usize,
        checker: usize,
        result: ProbeResult,
    ) -> Result<bool, HealthError> {
        let s = self
            .servers
            .get_mut(server)
            .ok_or(HealthError::NoSuchServer(server))?;
        let used = s.on_result(now, checker, result)?;
        self.update();
        Ok(used)
    }

    /// Feeds a tracked file's value for one server.
    pub fn set_file_value(
        &mut self,
        server: usize,
        file: usize,
        value: i64,
    ) -> Result<(), HealthError> {
        let s = self
            .servers
            .get_mut(server)
            .ok_or(HealthError::NoSuchServer(server))?;
        s.set_file_value(file, value)?;
        self.update();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServiceEvent> {
        self.events.pop_front()
    }

    /// The daemon is stopping. With `omega`, returns what keepalived would notify: every
    /// live server down, then quorum down (and the sorry server, if any, in use);
    /// without it, nothing.
    pub fn shutdown(&mut self) -> Vec<ServiceEvent> {
        if !self.omega {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (index, s) in self.servers.iter().enumerate() {
            if s.alive() {
                out.push(ServiceEvent::Server {
                    index,
                    event: ServerEvent::Down {
                        inhibited: s.config().inhibit_on_failure,
                    },
                });
            }
        }
        if self.quorum_up {
            self.quorum_up = false;
            out.push(ServiceEvent::QuorumDown { live_weight: 0 });
            if self.sorry_server.is_some() {
                out.push(ServiceEvent::SorryServer { active: true });
            }
        }
        out
    }

    fn update(&mut self) {
        for (index, s) in self.servers.iter_mut().enumerate() {
            while let Some(event) = s.poll_event() {
                self.events.push_back(ServiceEvent::Server { index, event });
            }
        }
        let live = self.live_weight();
        let up_at = u64::from(self.quorum) + u64::from(self.hysteresis);
        let down_below = u64::from(self.quorum.saturating_sub(self.hysteresis));
        if !self.quorum_up && live >= up_at && live > 0 {
            self.quorum_up = true;
            self.events
                .push_back(ServiceEvent::QuorumUp { live_weight: live });
            if self.sorry_server.is_some() {
                self.events
                    .push_back(ServiceEvent::SorryServer { active: false });
            }
        } else if self.quorum_up && (live == 0 || live < down_below) {
            self.quorum_up = false;
            self.events
                .push_back(ServiceEvent::QuorumDown { live_weight: live });
            if self.sorry_server.is_some() {
                self.events
                    .push_back(ServiceEvent::SorryServer { active: true });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CheckKind, CheckerConfig, MiscCheck, TcpCheck};
    use crate::eval::{interpret_misc_exit, FailureKind, MiscExit, ProbeOutcome};

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn tcp_checker() -> CheckerConfig {
        let mut c = CheckerConfig::new(CheckKind::Tcp(TcpCheck::default()));
        c.delay_loop = s(5);
        c.retry = 0;
        c
    }

    fn server(last: u8, weight: u32) -> RealServerConfig {
        let mut rs = RealServerConfig::new(IpAddr::from([192, 168, 7, last]), 80);
        rs.weight = weight;
        rs.checkers.push(tcp_checker());
        rs
    }

    /// Runs every due probe of the service at `now` with the outcome `alive(server)`.
    fn tick(svc: &mut Service, now: Duration, alive: impl Fn(usize) -> bool) -> Vec<ServiceEvent> {
        for t in svc.on_timeout(now) {
            let outcome = if alive(t.server) {
                ProbeOutcome::Success
            } else {
                ProbeOutcome::Failure(FailureKind::Connect)
            };
            let used = svc
                .on_result(
                    now,
                    t.server,
                    t.checker,
                    ProbeResult {
                        seq: t.request.seq,
                        outcome,
                    },
                )
                .unwrap();
            assert!(used);
        }
        std::iter::from_fn(|| svc.poll_event()).collect()
    }

    fn quorum_events(ev: &[ServiceEvent]) -> Vec<ServiceEvent> {
        ev.iter()
            .filter(|e| !matches!(e, ServiceEvent::Server { .. }))
            .copied()
            .collect()
    }

    #[test]
    fn quorum_is_a_sum_of_live_weights() {
        let mut cfg = ServiceConfig::new("web", vec![server(1, 100), server(2, 50), server(3, 50)]);
        cfg.quorum = 150;
        let mut svc = Service::new(cfg, s(0), 1).unwrap();
        assert!(svc.has_quorum());
        assert_eq!(svc.live_weight(), 200);
        // One 50 down: 150 ≥ 150, still up.
        let ev = tick(&mut svc, s(0), |i| i != 2);
        assert_eq!(quorum_events(&ev), vec![]);
        assert_eq!(
            ev,
            vec![ServiceEvent::Server {
                index: 2,
                event: ServerEvent::Down { inhibited: false }
            }]
        );
        // The 100 down: 50 < 150.
        let ev = tick(&mut svc, s(5), |i| i == 1);
        assert_eq!(
            quorum_events(&ev),
            vec![ServiceEvent::QuorumDown { live_weight: 50 }]
        );
        // Both back: results come in server order, so quorum returns as soon as the
        // 100 is back (100 + 50 = 150), before the last 50 is counted.
        let ev = tick(&mut svc, s(10), |_| true);
        assert_eq!(
            quorum_events(&ev),
            vec![ServiceEvent::QuorumUp { live_weight: 150 }]
        );
        assert_eq!(svc.live_weight(), 200);
    }

    #[test]
    fn hysteresis_edges() {
        // quorum 3, hysteresis 1, four servers of weight 1: up at ≥ 4, down at < 2.
        let mut cfg = ServiceConfig::new("h", (1..=4).map(|i| server(i, 1)).collect());
        cfg.quorum = 3;
        cfg.hysteresis = 1;
        let mut svc = Service::new(cfg, s(0), 1).unwrap();
        assert!(svc.has_quorum());
        // 3 live: not below 2, stays up.
        assert_eq!(quorum_events(&tick(&mut svc, s(0), |i| i < 3)), vec![]);
        // 2 live: still not below 2.
        assert_eq!(quorum_events(&tick(&mut svc, s(5), |i| i < 2)), vec![]);
        assert!(svc.has_quorum());
        // 1 live: below 2, down.
        assert_eq!(
            quorum_events(&tick(&mut svc, s(10), |i| i < 1)),
            vec![ServiceEvent::QuorumDown { live_weight: 1 }]
        );
        // 3 live: not yet 4, stays down.
        assert_eq!(quorum_events(&tick(&mut svc, s(15), |i| i < 3)), vec![]);
        assert!(!svc.has_quorum());
        // 4 live: up.
        assert_eq!(
            quorum_events(&tick(&mut svc, s(20), |_| true)),
            vec![ServiceEvent::QuorumUp { live_weight: 4 }]
        );
    }

    #[test]
    fn zero_live_weight_is_always_quorum_loss() {
        // quorum 1 hysteresis 5: down threshold saturates at 0, but 0 live is still down.
        let mut cfg = ServiceConfig::new("z", vec![server(1, 1)]);
        cfg.hysteresis = 5;
        let mut svc = Service::new(cfg, s(0), 1).unwrap();
        assert!(svc.has_quorum());
        assert_eq!(
            quorum_events(&tick(&mut svc, s(0), |_| false)),
            vec![ServiceEvent::QuorumDown { live_weight: 0 }]
        );
    }

    #[test]
    fn sorry_server_while_quorum_is_lost() {
        let mut cfg = ServiceConfig::new("sorry", vec![server(1, 1), server(2, 1)]);
        let sorry: SocketAddr = "192.168.7.99:80".parse().unwrap();
        cfg.sorry_server = Some(sorry);
        let mut svc = Service::new(cfg, s(0), 1).unwrap();
        assert_eq!(svc.active_sorry_server(), None);
        assert_eq!(quorum_events(&tick(&mut svc, s(0), |i| i == 0)), vec![]);
        assert_eq!(
            quorum_events(&tick(&mut svc, s(5), |_| false)),
            vec![
                ServiceEvent::QuorumDown { live_weight: 0 },
                ServiceEvent::SorryServer { active: true }
            ]
        );
        assert_eq!(svc.active_sorry_server(), Some(sorry));
        assert_eq!(
            quorum_events(&tick(&mut svc, s(10), |i| i == 1)),
            vec![
                ServiceEvent::QuorumUp { live_weight: 1 },
                ServiceEvent::SorryServer { active: false }
            ]
        );
    }

    #[test]
    fn alpha_servers_start_without_quorum() {
        let mut rs = server(1, 10);
        rs.checkers[0].alpha = true;
        let mut svc = Service::new(ServiceConfig::new("a", vec![rs]), s(0), 1).unwrap();
        assert!(!svc.has_quorum());
        let ev = tick(&mut svc, s(0), |_| true);
        assert_eq!(
            ev,
            vec![
                ServiceEvent::Server {
                    index: 0,
                    event: ServerEvent::Up { weight: 10 }
                },
                ServiceEvent::QuorumUp { live_weight: 10 }
            ]
        );
    }

    #[test]
    fn inhibit_on_failure_and_all_checkers_must_pass() {
        let mut rs = server(1, 7);
        rs.inhibit_on_failure = true;
        rs.checkers.push(tcp_checker());
        let mut svc = Service::new(ServiceConfig::new("i", vec![rs]), s(0), 1).unwrap();
        let tasks = svc.on_timeout(s(0));
        assert_eq!(tasks.len(), 2);
        // First checker passes, second fails: the server is down (inhibited).
        for (t, ok) in tasks.iter().zip([true, false]) {
            let outcome = if ok {
                ProbeOutcome::Success
            } else {
                ProbeOutcome::Failure(FailureKind::Timeout)
            };
            svc.on_result(
                s(0),
                t.server,
                t.checker,
                ProbeResult {
                    seq: t.request.seq,
                    outcome,
                },
            )
            .unwrap();
        }
        assert_eq!(
            svc.poll_event(),
            Some(ServiceEvent::Server {
                index: 0,
                event: ServerEvent::Down { inhibited: true }
            })
        );
        assert!(!svc.servers()[0].alive());
        assert_eq!(svc.servers()[0].live_weight(), 0);
        assert!(matches!(
            svc.on_result(
                s(0),
                5,
                0,
                ProbeResult {
                    seq: 1,
                    outcome: ProbeOutcome::Success
                }
            ),
            Err(HealthError::NoSuchServer(5))
        ));
        assert!(matches!(
            svc.on_result(
                s(0),
                0,
                9,
                ProbeResult {
                    seq: 1,
                    outcome: ProbeOutcome::Success
                }
            ),
            Err(HealthError::NoSuchChecker(9))
        ));
    }

    #[test]
    fn misc_dynamic_weight_and_file_check() {
        let mut rs = RealServerConfig::new(IpAddr::from([10, 0, 0, 1]), 80);
        rs.weight = 10;
        let mut misc = CheckerConfig::new(CheckKind::Misc(MiscCheck {
            misc_path: "/usr/local/bin/check".into(),
            misc_timeout: Some(s(2)),
            misc_dynamic: true,
            user: None,
        }));
        misc.delay_loop = s(5);
        rs.checkers.push(misc);
        rs.files.push(FileCheck {
            file: "/run/fulcrum/weight".into(),
            weight: 2,
            reverse: false,
        });
        rs.files.push(FileCheck {
            file: "/run/fulcrum/down".into(),
            weight: 0,
            reverse: false,
        });
        let mut svc = Service::new(ServiceConfig::new("m", vec![rs]), s(0), 1).unwrap();
        let t = svc.on_timeout(s(0))[0];
        let outcome = interpret_misc_exit(true, MiscExit::Code(52));
        svc.on_result(
            s(0),
            0,
            t.checker,
            ProbeResult {
                seq: t.request.seq,
                outcome,
            },
        )
        .unwrap();
        assert_eq!(
            svc.poll_event(),
            Some(ServiceEvent::Server {
                index: 0,
                event: ServerEvent::WeightChanged { weight: 50 }
            })
        );
        svc.set_file_value(0, 0, -5).unwrap();
        assert_eq!(svc.servers()[0].weight(), 40);
        svc.set_file_value(0, 0, -100).unwrap();
        assert_eq!(svc.servers()[0].weight(), 0, "clamped at 0");
        assert!(svc.servers()[0].alive());
        assert!(!svc.has_quorum(), "live weight 0 loses quorum");
        svc.set_file_value(0, 0, 0).unwrap();
        assert!(svc.has_quorum());
        svc.set_file_value(0, 1, 1).unwrap();
        assert!(!svc.servers()[0].alive());
        assert!(svc.set_file_value(0, 2, 1).is_err());
    }

    #[test]
    fn omega_reports_on_shutdown() {
        let mut cfg = ServiceConfig::new("o", vec![server(1, 1), server(2, 1)]);
        let mut plain = Service::new(cfg.clone(), s(0), 1).unwrap();
        assert_eq!(plain.shutdown(), vec![]);
        cfg.omega = true;
        let mut svc = Service::new(cfg, s(0), 1).unwrap();
        tick(&mut svc, s(0), |i| i == 0);
        assert_eq!(
            svc.shutdown(),
            vec![
                ServiceEvent::Server {
                    index: 0,
                    event: ServerEvent::Down { inhibited: false }
                },
                ServiceEvent::QuorumDown { live_weight: 0 }
            ]
        );
    }
}
