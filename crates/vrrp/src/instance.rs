//! One VRRP instance: the state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2), with
//! keepalived's FAULT state, priority tracking, preemption delay and GARP schedule.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::VecDeque;

use crate::config::{ConfigError, InstanceConfig, Track};
use crate::wire::{self, simple_auth, Auth, Version, VrrpPacket, VrrpRepr, WireError};

/// Protocol state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running (before startup, after shutdown).
    Initialize,
    /// Backup: watching the master's adverts.
    Backup,
    /// Master: sending adverts and owning the VIPs.
    Master,
    /// keepalived's FAULT: a tracked item with weight 0 is down (or a sync-group member is
    /// in FAULT); the instance neither sends adverts nor takes over.
    Fault,
}

/// A packet for the daemon to send: an IPv4 datagram, protocol 112, TTL 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// IP source address.
    pub source: Ipv4Addr,
    /// IP destination: 224.0.0.18, or one unicast peer.
    pub destination: Ipv4Addr,
    /// IP TTL (always 255).
    pub ttl: u8,
    /// The VRRP message (IP payload), checksum included.
    pub payload: Vec<u8>,
}

/// What the daemon must do, or may report (keepalived's notify scripts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Entered Master: add the VIPs (and the virtual MAC if configured).
    /// [`Event::SendGratuitousArp`] events follow.
    BecameMaster {
        /// The virtual addresses.
        vips: Vec<Ipv4Addr>,
    },
    /// Entered Backup: remove the VIPs if they are present.
    BecameBackup {
        /// The virtual addresses.
        vips: Vec<Ipv4Addr>,
    },
    /// Entered FAULT: remove the VIPs if they are present.
    BecameFault {
        /// The virtual addresses.
        vips: Vec<Ipv4Addr>,
    },
    /// Shut down (back in Initialize): remove the VIPs if they are present.
    Stopped {
        /// The virtual addresses.
        vips: Vec<Ipv4Addr>,
    },
    /// Send `count` gratuitous ARPs for each VIP (`garp_master_repeat` after becoming
    /// Master and again after `garp_master_delay`; `garp_master_refresh_repeat` every
    /// `garp_master_refresh`).
    SendGratuitousArp {
        /// The virtual addresses.
        vips: Vec<Ipv4Addr>,
        /// GARPs per address in this burst.
        count: u32,
    },
    /// The effective priority changed (tracking).
    PriorityChanged {
        /// Previous effective priority.
        old: u8,
        /// New effective priority.
        new: u8,
    },
    /// An advert listed other addresses than ours (keepalived logs this; the advert is
    /// dropped unless it comes from the address owner, RFC 3768 §7.1).
    AddressListMismatch {
        /// Sender.
        source: Ipv4Addr,
        /// Addresses the sender listed.
        addresses: Vec<Ipv4Addr>,
    },
}

/// Why a received packet was dropped (each reason has a counter in [`Stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// IP TTL is not 255 (RFC 5798 §7.1).
    #[error("TTL {0} is not 255")]
    Ttl(u8),
    /// The message is shorter than its header announces.
    #[error("truncated packet")]
    Truncated,
    /// The version differs from the instance's (or is unknown).
    #[error("version {0} does not match")]
    Version(u8),
    /// Not an ADVERTISEMENT.
    #[error("unknown packet type {0}")]
    Type(u8),
    /// Bad checksum.
    #[error("bad checksum")]
    Checksum,
    /// The VRID is not this instance's ("not mine").
    #[error("VRID {0} is not mine")]
    NotMine(u8),
    /// v2 auth type differs from the configured one, or is unsupported (2 = AH).
    #[error("authentication type mismatch")]
    AuthType,
    /// v2 simple password differs.
    #[error("authentication failure")]
    AuthFailure,
    /// v2 advert interval differs from ours (RFC 3768 §7.1), or a v3 interval of zero.
    #[error("advertisement interval mismatch")]
    Interval,
    /// Address list differs and the sender is not the owner (RFC 3768 §7.1).
    #[error("address list mismatch")]
    AddressList,
    /// Our own advert looped back.
    #[error("own advertisement")]
    Own,
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated | WireError::BufferTooShort | WireError::Unencodable => {
                DropReason::Truncated
            }
            WireError::BadVersion(v) => DropReason::Version(v),
            WireError::BadType(t) => DropReason::Type(t),
            WireError::BadChecksum => DropReason::Checksum,
            WireError::BadAuthType(_) => DropReason::AuthType,
        }
    }
}

/// Counters of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Valid adverts received.
    pub adverts_rx: u64,
    /// Adverts sent (one per destination).
    pub adverts_tx: u64,
    /// Priority-0 adverts received.
    pub priority_zero_rx: u64,
    /// Priority-0 adverts sent (one per destination).
    pub priority_zero_tx: u64,
    /// Transitions to Master.
    pub became_master: u64,
    /// Drops: TTL not 255.
    pub drop_ttl: u64,
    /// Drops: truncated.
    pub drop_truncated: u64,
    /// Drops: version mismatch.
    pub drop_version: u64,
    /// Drops: bad type.
    pub drop_type: u64,
    /// Drops: bad checksum.
    pub drop_checksum: u64,
    /// Drops: VRID not mine.
    pub drop_not_mine: u64,
    /// Drops: auth type mismatch.
    pub drop_auth_type: u64,
    /// Drops: auth failure (password).
    pub drop_auth_failure: u64,
    /// Drops: v2 interval mismatch.
    pub drop_interval: u64,
    /// Address list mismatches seen (dropped unless from the owner).
    pub address_list_mismatch: u64,
    /// Drops: own advert looped back.
    pub drop_own: u64,
}

impl Stats {
    fn count_drop(&mut self, r: DropReason) {
        let c = match r {
            DropReason::Ttl(_) => &mut self.drop_ttl,
            DropReason::Truncated => &mut self.drop_truncated,
            DropReason::Version(_) => &mut self.drop_version,
            DropReason::Type(_) => &mut self.drop_type,
            DropReason::Checksum => &mut self.drop_checksum,
            DropReason::NotMine(_) => &mut self.drop_not_mine,
            DropReason::AuthType => &mut self.drop_auth_type,
            DropReason::AuthFailure => &mut self.drop_auth_failure,
            DropReason::Interval => &mut self.drop_interval,
            // Counted when the mismatch is seen.
            DropReason::AddressList => return,
            DropReason::Own => &mut self.drop_own,
        };
        *c += 1;
    }
}

/// A snapshot of an instance for reports (`fulcrum vrrp`, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Current state.
    pub state: State,
    /// VRID.
    pub vrid: u8,
    /// Protocol version.
    pub version: Version,
    /// Configured priority.
    pub base_priority: u8,
    /// Priority after tracking.
    pub effective_priority: u8,
    /// Address of the current master, when known (ourselves when Master).
    pub master: Option<Ipv4Addr>,
    /// Master_Adver_Interval (v3: learnt from the master).
    pub master_adver_int: Duration,
    /// Master_Down_Interval with the current priority.
    pub master_down_interval: Duration,
    /// Whether the Master accepts packets for the VIPs (v3 Accept_Mode; always for the
    /// owner).
    pub accept_mode: bool,
    /// The virtual MAC 00-00-5E-00-01-VRID when `use_vmac` is set.
    pub vmac: Option<[u8; 6]>,
    /// The virtual addresses.
    pub vips: Vec<Ipv4Addr>,
}

/// Inputs of the state machine.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    Startup,
    Shutdown,
    MasterDownTimer,
    AdverTimer,
    Advert(&'a VrrpRepr, Ipv4Addr),
    FaultRaised,
    FaultCleared,
    ForceMaster,
    ForceBackup,
}

/// A VRRP instance (sans-IO).
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: InstanceConfig,
    wire_interval: u16,
    auth: Auth,
    state: State,
    tracks: Vec<(Track, bool)>,
    effective_priority: u8,
    group_fault: bool,
    in_sync_group: bool,
    wants_master: bool,
    master_adver_int: Duration,
    master: Option<Ipv4Addr>,
    adver_timer: Option<Duration>,
    master_down_timer: Option<Duration>,
    garp_delay_timer: Option<Duration>,
    garp_refresh_timer: Option<Duration>,
    preempt_deadline: Option<Duration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    transitions: Vec<(State, State)>,
    stats: Stats,
}

impl Instance {
    /// Creates an instance in Initialize. Every tracked item starts up; the daemon reports
    /// the real states with [`Instance::set_track`] before or after [`Instance::startup`].
    /// The instance's own `interface` is tracked with weight 0 (as keepalived does) unless
    /// `track_interface` lists it with another weight.
    pub fn new(cfg: InstanceConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let wire_interval = cfg.wire_interval()?;
        let auth = match &cfg.authentication {
            Some(a) => Auth::Simple(simple_auth(&a.auth_pass)),
            None => Auth::None,
        };
        let mut tracks: Vec<(Track, bool)> = cfg
            .track_interface
            .iter()
            .chain(&cfg.track_script)
            .map(|t| (t.clone(), true))
            .collect();
        // keepalived always tracks the instance's own interface: FAULT while it is down.
        if !tracks.iter().any(|(t, _)| t.name == cfg.interface) {
            tracks.push((Track::new(cfg.interface.clone(), 0), true));
        }
        let mut i = Instance {
            wire_interval,
            auth,
            state: State::Initialize,
            tracks,
            effective_priority: cfg.priority,
            group_fault: false,
            in_sync_group: false,
            wants_master: false,
            master_adver_int: cfg.advert_int,
            master: None,
            adver_timer: None,
            master_down_timer: None,
            garp_delay_timer: None,
            garp_refresh_timer: None,
            preempt_deadline: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            transitions: Vec::new(),
            stats: Stats::default(),
            cfg,
        };
        i.effective_priority = i.compute_priority();
        Ok(i)
    }

    /// The configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Priority after tracking (RFC "Priority" used in adverts and elections).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The address this instance sends from and uses for the tie-break.
    pub fn source_ip(&self) -> Ipv4Addr {
        if self.cfg.unicast_peer.is_empty() {
            self.cfg.source_ip
        } else {
            self.cfg.unicast_src_ip.unwrap_or(self.cfg.source_ip)
        }
    }

    /// Skew_Time with the current priority: v2 (256 − Priority)/256 s (RFC 3768 §6.1);
    /// v3 ((256 − Priority) × Master_Adver_Interval)/256 (RFC 5798 §6.1), computed at
    /// nanosecond precision as keepalived does at microsecond precision.
    pub fn skew_time(&self) -> Duration {
        let p = u64::from(256 - u16::from(self.effective_priority));
        let base = match self.cfg.version {
            Version::V2 => 1_000_000_000u128,
            Version::V3 => self.master_adver_int.as_nanos(),
        };
        Duration::from_nanos(u64::try_from(u128::from(p) * base / 256).unwrap_or(u64::MAX))
    }

    /// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (RFC 5798 §6.1; for
    /// v2 Master_Adver_Interval is the configured Advertisement_Interval).
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_int * 3 + self.skew_time()
    }

    /// A snapshot for reports.
    pub fn info(&self) -> InstanceInfo {
        let vrid = self.cfg.virtual_router_id;
        InstanceInfo {
            name: self.cfg.name.clone(),
            interface: self.cfg.interface.clone(),
            state: self.state,
            vrid,
            version: self.cfg.version,
            base_priority: self.cfg.priority,
            effective_priority: self.effective_priority,
            master: self.master,
            master_adver_int: self.master_adver_int,
            master_down_interval: self.master_down_interval(),
            accept_mode: self.cfg.accept || self.cfg.priority == 255,
            vmac: self
                .cfg
                .use_vmac
                .then_some([0x00, 0x00, 0x5e, 0x00, 0x01, vrid]),
            vips: self.cfg.virtual_ipaddress.clone(),
        }
    }

    /// Next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Instance::handle_timeout`] must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        [
            self.adver_timer,
            self.master_down_timer,
            self.garp_delay_timer,
            self.garp_refresh_timer,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Starts the instance (RFC 5798 §6.4.1 Startup event).
    pub fn startup(&mut self, now: Duration) {
        self.step(now, Input::Startup);
    }

    /// Stops the instance; a Master sends a priority-0 advert (RFC 5798 §6.4.3).
    pub fn shutdown(&mut self, now: Duration) {
        self.step(now, Input::Shutdown);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.master_down_timer.is_some_and(|t| t <= now) {
            self.master_down_timer = None;
            self.step(now, Input::MasterDownTimer);
        }
        if self.adver_timer.is_some_and(|t| t <= now) {
            self.adver_timer = None;
            self.step(now, Input::AdverTimer);
        }
        if self.garp_delay_timer.is_some_and(|t| t <= now) {
            self.garp_delay_timer = None;
            self.push_garp(self.cfg.garp_master_repeat);
        }
        if let Some(t) = self.garp_refresh_timer.filter(|t| *t <= now) {
            let mut next = t.saturating_add(self.cfg.garp_master_refresh);
            if next <= now {
                // The daemon was late by more than a period: do not burst to catch up.
                next = now.saturating_add(self.cfg.garp_master_refresh);
            }
            self.garp_refresh_timer = Some(next);
            self.push_garp(self.cfg.garp_master_refresh_repeat);
        }
    }

    /// Reports the state of a tracked interface or script. Returns false when this
    /// instance does not track `name`.
    ///
    /// Recomputes the effective priority (base + weights of up items with positive weight
    /// + weights of down items with negative weight, clamped to 1..=254; the owner stays at
    /// 255) and enters or leaves FAULT for items of weight 0.
    pub fn set_track(&mut self, now: Duration, name: &str, up: bool) -> bool {
        let Some(t) = self.tracks.iter_mut().find(|(t, _)| t.name == name) else {
            return false;
        };
        t.1 = up;
        let old = self.effective_priority;
        self.effective_priority = self.compute_priority();
        if old != self.effective_priority {
            self.events.push_back(Event::PriorityChanged {
                old,
                new: self.effective_priority,
            });
        }
        self.reevaluate_fault(now);
        true
    }

    /// Whether a weight-0 tracked item is down.
    pub fn own_fault(&self) -> bool {
        self.tracks.iter().any(|(t, up)| t.weight == 0 && !up)
    }

    /// Handles a received IPv4 datagram of protocol 112: `payload` is the IP payload.
    ///
    /// Runs the receive checks of RFC 5798 §7.1 / RFC 3768 §7.1 in order (TTL, version,
    /// length, checksum, VRID, auth, interval, address list), counts a drop by reason, and
    /// feeds a valid advert to the state machine.
    pub fn handle_packet(
        &mut self,
        now: Duration,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<(), DropReason> {
        match self.check_packet(source, destination, ttl, payload) {
            Ok(repr) => {
                self.stats.adverts_rx += 1;
                if repr.priority == 0 {
                    self.stats.priority_zero_rx += 1;
                }
                self.step(now, Input::Advert(&repr, source));
                Ok(())
            }
            Err(r) => {
                self.stats.count_drop(r);
                Err(r)
            }
        }
    }

    fn check_packet(
        &mut self,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<VrrpRepr, DropReason> {
        // RFC 5798 §7.1: the TTL must be 255.
        if ttl != wire::TTL {
            return Err(DropReason::Ttl(ttl));
        }
        let packet = VrrpPacket::new_unchecked(payload);
        if payload.len() >= wire::HEADER_LEN && packet.version() != self.cfg.version.number() {
            return Err(DropReason::Version(packet.version()));
        }
        let packet = VrrpPacket::new_checked(payload)?;
        let repr = VrrpRepr::parse(&packet, source, destination)?;
        if repr.vrid != self.cfg.virtual_router_id {
            return Err(DropReason::NotMine(repr.vrid));
        }
        if source == self.source_ip() {
            return Err(DropReason::Own);
        }
        // RFC 3768 §7.1: auth type and data must match the configuration.
        if self.cfg.version == Version::V2 {
            match (self.auth, repr.auth) {
                (Auth::None, Auth::None) => {}
                (Auth::Simple(a), Auth::Simple(b)) if a == b => {}
                (Auth::Simple(_), Auth::Simple(_)) => return Err(DropReason::AuthFailure),
                _ => return Err(DropReason::AuthType),
            }
            // RFC 3768 §7.1: the advert interval must match the local one.
            if repr.interval != self.wire_interval {
                return Err(DropReason::Interval);
            }
        }
        // v3: a zero Max Adver Int would make Master_Down_Interval zero; keepalived
        // rejects it too.
        if self.cfg.version == Version::V3 && repr.interval == 0 {
            return Err(DropReason::Interval);
        }
        // RFC 3768 §7.1 / RFC 5798 §7.1: MAY check the address list; log a mismatch and
        // drop it unless the sender is the owner.
        let mut theirs = repr.addresses.clone();
        let mut ours = self.cfg.virtual_ipaddress.clone();
        theirs.sort_unstable();
        theirs.dedup();
        ours.sort_unstable();
        ours.dedup();
        if theirs != ours {
            self.stats.address_list_mismatch += 1;
            self.events.push_back(Event::AddressListMismatch {
                source,
                addresses: repr.addresses.clone(),
            });
            if repr.priority != 255 {
                return Err(DropReason::AddressList);
            }
        }
        Ok(repr)
    }

    fn preempt(&self) -> bool {
        // RFC 5798 §6.1 Preempt_Mode: the owner always preempts.
        !self.cfg.nopreempt || self.effective_priority == 255
    }

    /// keepalived's preempt_delay: true while preemption of a lower-priority master must
    /// still wait. Arms the deadline on the first lower-priority advert.
    fn preempt_delayed(&mut self, now: Duration) -> bool {
        if self.cfg.preempt_delay.is_zero() {
            return false;
        }
        let deadline = *self
            .preempt_deadline
            .get_or_insert(now.saturating_add(self.cfg.preempt_delay));
        now < deadline
    }

    fn step(&mut self, now: Duration, input: Input<'_>) {
        let from = self.state;
        match (self.state, input) {
            // RFC 5798 §6.4.1 / RFC 3768 §6.4.1: Startup. keepalived enters FAULT at once
            // when a weight-0 tracked item is down.
            (State::Initialize, Input::Startup) => {
                self.preempt_deadline = (!self.cfg.preempt_delay.is_zero())
                    .then(|| now.saturating_add(self.cfg.preempt_delay));
                if self.own_fault() || self.group_fault {
                    self.enter_fault(now);
                } else if self.effective_priority == 255 {
                    self.enter_master(now);
                } else {
                    self.master_adver_int = self.cfg.advert_int;
                    self.enter_backup(now);
                }
            }
            (State::Initialize, _) => {}

            // RFC 5798 §6.4.2: Shutdown in Backup.
            (State::Backup, Input::Shutdown) => self.enter_initialize(),
            // RFC 5798 §6.4.2: Master_Down_Timer fires. In a sync group keepalived prefers
            // Backup to thrashing: the member only says it wants Master, and the group
            // goes Master together once every member wants it (vrrp_sync_can_goto_master).
            (State::Backup, Input::MasterDownTimer) => {
                if self.in_sync_group {
                    self.wants_master = true;
                    self.master_down_timer = Some(now.saturating_add(self.master_down_interval()));
                } else {
                    self.enter_master(now);
                }
            }
            // RFC 5798 §6.4.2: an ADVERTISEMENT in Backup.
            (State::Backup, Input::Advert(repr, src)) => {
                if repr.priority == 0 {
                    // The master resigned: take over after Skew_Time only.
                    self.master_down_timer = Some(now.saturating_add(self.skew_time()));
                } else if !self.preempt()
                    || repr.priority >= self.effective_priority
                    || self.preempt_delayed(now)
                {
                    if repr.priority >= self.effective_priority {
                        // A better master: a later lower-priority one waits the full delay.
                        self.preempt_deadline = None;
                    }
                    if self.cfg.version == Version::V3 {
                        self.master_adver_int =
                            Duration::from_millis(u64::from(repr.interval) * 10);
                    }
                    self.master = Some(src);
                    self.wants_master = false;
                    self.master_down_timer = Some(now.saturating_add(self.master_down_interval()));
                }
                // Otherwise preempt: discard it and let Master_Down_Timer expire.
            }
            // Sync group (keepalived vrrp_sync.c): a member became Master.
            (State::Backup, Input::ForceMaster) => self.enter_master(now),
            (State::Backup, Input::AdverTimer | Input::ForceBackup | Input::Startup) => {}

            // RFC 5798 §6.4.3: Shutdown in Master sends priority 0.
            (State::Master, Input::Shutdown) => {
                self.send_advert(0);
                self.enter_initialize();
            }
            // RFC 5798 §6.4.3: Adver_Timer fires.
            (State::Master, Input::AdverTimer) => {
                self.send_advert(self.effective_priority);
                self.adver_timer = Some(now.saturating_add(self.cfg.advert_int));
            }
            // RFC 5798 §6.4.3: an ADVERTISEMENT in Master.
            (State::Master, Input::Advert(repr, src)) => {
                let mine = self.effective_priority;
                if repr.priority == 0 {
                    self.send_advert(mine);
                    self.adver_timer = Some(now.saturating_add(self.cfg.advert_int));
                } else if repr.priority > mine || (repr.priority == mine && src > self.source_ip())
                {
                    if self.cfg.version == Version::V3 {
                        self.master_adver_int =
                            Duration::from_millis(u64::from(repr.interval) * 10);
                    }
                    self.master = Some(src);
                    self.enter_backup(now);
                } else {
                    // keepalived: a lower-priority master is answered at once so that it
                    // steps down without waiting for our next advert.
                    self.send_advert(mine);
                    self.adver_timer = Some(now.saturating_add(self.cfg.advert_int));
                }
            }
            // Sync group: a member left Master for Backup; resign with priority 0 so that
            // the peer group takes over after Skew_Time.
            (State::Master, Input::ForceBackup) => {
                self.send_advert(0);
                self.master = None;
                self.master_adver_int = self.cfg.advert_int;
                self.enter_backup(now);
            }
            (State::Master, Input::MasterDownTimer | Input::ForceMaster | Input::Startup) => {}

            // keepalived FAULT: a weight-0 track went down, or the sync group is in FAULT.
            // A Master resigns with priority 0 first.
            (State::Master, Input::FaultRaised) => {
                self.send_advert(0);
                self.enter_fault(now);
            }
            (State::Backup, Input::FaultRaised) => self.enter_fault(now),
            // Leaving FAULT behaves as a Startup.
            (State::Fault, Input::FaultCleared) => {
                if self.effective_priority == 255 {
                    self.enter_master(now);
                } else {
                    self.master_adver_int = self.cfg.advert_int;
                    self.enter_backup(now);
                }
            }
            (State::Fault, Input::Shutdown) => self.enter_initialize(),
            (State::Fault, _) => {}
            (State::Backup | State::Master, Input::FaultCleared) => {}
        }
        if self.state != from {
            self.transitions.push((from, self.state));
        }
    }

    fn vips(&self) -> Vec<Ipv4Addr> {
        self.cfg.virtual_ipaddress.clone()
    }

    fn cancel_timers(&mut self) {
        self.wants_master = false;
        self.adver_timer = None;
        self.master_down_timer = None;
        self.garp_delay_timer = None;
        self.garp_refresh_timer = None;
    }

    fn enter_master(&mut self, now: Duration) {
        self.cancel_timers();
        self.send_advert(self.effective_priority);
        self.adver_timer = Some(now.saturating_add(self.cfg.advert_int));
        self.state = State::Master;
        self.master = Some(self.source_ip());
        self.master_adver_int = self.cfg.advert_int;
        self.stats.became_master += 1;
        self.events
            .push_back(Event::BecameMaster { vips: self.vips() });
        self.push_garp(self.cfg.garp_master_repeat);
        if !self.cfg.garp_master_delay.is_zero() {
            self.garp_delay_timer = Some(now.saturating_add(self.cfg.garp_master_delay));
        }
        if !self.cfg.garp_master_refresh.is_zero() {
            self.garp_refresh_timer = Some(now.saturating_add(self.cfg.garp_master_refresh));
        }
    }

    fn enter_backup(&mut self, now: Duration) {
        self.cancel_timers();
        self.master_down_timer = Some(now.saturating_add(self.master_down_interval()));
        if self.state != State::Backup {
            self.state = State::Backup;
            self.events
                .push_back(Event::BecameBackup { vips: self.vips() });
        }
    }

    fn enter_fault(&mut self, _now: Duration) {
        self.cancel_timers();
        self.master = None;
        if self.state != State::Fault {
            self.state = State::Fault;
            self.events
                .push_back(Event::BecameFault { vips: self.vips() });
        }
    }

    fn enter_initialize(&mut self) {
        self.cancel_timers();
        self.master = None;
        self.preempt_deadline = None;
        self.state = State::Initialize;
        self.events.push_back(Event::Stopped { vips: self.vips() });
    }

    fn push_garp(&mut self, count: u32) {
        if count > 0 && !self.cfg.virtual_ipaddress.is_empty() && self.state == State::Master {
            self.events.push_back(Event::SendGratuitousArp {
                vips: self.vips(),
                count,
            });
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let repr = VrrpRepr {
            version: self.cfg.version,
            vrid: self.cfg.virtual_router_id,
            priority,
            interval: self.wire_interval,
            auth: self.auth,
            addresses: self.cfg.virtual_ipaddress.clone(),
        };
        let source = self.source_ip();
        let dests: Vec<Ipv4Addr> = if self.cfg.unicast_peer.is_empty() {
            vec![wire::MULTICAST_ADDR]
        } else {
            self.cfg.unicast_peer.clone()
        };
        for destination in dests {
            // The configuration was validated, so the representation always encodes.
            if let Ok(payload) = repr.to_bytes(source, destination) {
                self.stats.adverts_tx += 1;
                if priority == 0 {
                    self.stats.priority_zero_tx += 1;
                }
                self.transmits.push_back(Transmit {
                    source,
                    destination,
                    ttl: wire::TTL,
                    payload,
                });
            }
        }
    }

    fn compute_priority(&self) -> u8 {
        if self.cfg.priority == 255 {
            return 255;
        }
        let mut p = i64::from(self.cfg.priority);
        for (t, up) in &self.tracks {
            if (t.weight > 0 && *up) || (t.weight < 0 && !*up) {
                p += i64::from(t.weight);
            }
        }
        // Clamped to 1..=254, so the conversion cannot fail.
        u8::try_from(p.clamp(1, 254)).unwrap_or(1)
    }

    fn reevaluate_fault(&mut self, now: Duration) {
        let fault = self.own_fault() || self.group_fault;
        match (self.state, fault) {
            (State::Backup | State::Master, true) => self.step(now, Input::FaultRaised),
            (State::Fault, false) => self.step(now, Input::FaultCleared),
            _ => {}
        }
    }

    pub(crate) fn group_fault(&self) -> bool {
        self.group_fault
    }

    pub(crate) fn set_group_fault(&mut self, now: Duration, fault: bool) {
        self.group_fault = fault;
        self.reevaluate_fault(now);
    }

    pub(crate) fn set_in_sync_group(&mut self) {
        self.in_sync_group = true;
    }

    /// In a sync group: the Master_Down_Timer expired and no better master was heard since.
    pub(crate) fn wants_master(&self) -> bool {
        self.state == State::Backup && self.wants_master
    }

    pub(crate) fn force_master(&mut self, now: Duration) {
        self.step(now, Input::ForceMaster);
    }

    pub(crate) fn force_backup(&mut self, now: Duration) {
        self.step(now, Input::ForceBackup);
    }

    pub(crate) fn take_transitions(&mut self) -> Vec<(State, State)> {
        core::mem::take(&mut self.transitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    fn cfg(version: Version, priority: u8) -> InstanceConfig {
        let mut c = InstanceConfig::new("VI_1", "eth0", 51, A);
        c.version = version;
        c.priority = priority;
        c.virtual_ipaddress = vec![VIP];
        c
    }

    fn advert(version: Version, priority: u8, interval: u16, src: Ipv4Addr) -> Vec<u8> {
        VrrpRepr {
            version,
            vrid: 51,
            priority,
            interval,
            auth: Auth::None,
            addresses: vec![VIP],
        }
        .to_bytes(src, wire::MULTICAST_ADDR)
        .unwrap()
    }

    #[test]
    fn skew_and_down_interval_v2() {
        let i = Instance::new(cfg(Version::V2, 100)).unwrap();
        // (256 - 100) / 256 s = 0.609375 s.
        assert_eq!(i.skew_time(), Duration::from_micros(609_375));
        assert_eq!(i.master_down_interval(), Duration::from_micros(3_609_375));
    }

    #[test]
    fn skew_v3_uses_learnt_interval() {
        let mut c = cfg(Version::V3, 150);
        c.advert_int = Duration::from_millis(1500);
        let mut i = Instance::new(c).unwrap();
        // keepalived measured: 3 × 1.5 + 106 × 1.5 / 256 = 5.12109375 s.
        assert_eq!(
            i.master_down_interval(),
            Duration::from_nanos(5_121_093_750)
        );
        i.startup(Duration::ZERO);
        // A master advertising 2 s: Master_Adver_Interval is learnt.
        let p = advert(Version::V3, 200, 200, B);
        i.handle_packet(Duration::ZERO, B, wire::MULTICAST_ADDR, 255, &p)
            .unwrap();
        assert_eq!(i.info().master_adver_int, Duration::from_secs(2));
        assert_eq!(
            i.master_down_interval(),
            Duration::from_nanos(6_828_125_000)
        );
        assert_eq!(i.poll_timeout(), Some(Duration::from_nanos(6_828_125_000)));
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let mut i = Instance::new(cfg(Version::V2, 100)).unwrap();
        i.startup(Duration::ZERO);
        let t = Duration::ZERO;
        let m = wire::MULTICAST_ADDR;
        let good = advert(Version::V2, 100, 1, B);
        assert_eq!(
            i.handle_packet(t, B, m, 254, &good),
            Err(DropReason::Ttl(254))
        );
        let mut bad = good.clone();
        bad[9] ^= 1;
        assert_eq!(
            i.handle_packet(t, B, m, 255, &bad),
            Err(DropReason::Checksum)
        );
        let v3 = advert(Version::V3, 100, 100, B);
        assert_eq!(
            i.handle_packet(t, B, m, 255, &v3),
            Err(DropReason::Version(3))
        );
        let slow = advert(Version::V2, 100, 2, B);
        assert_eq!(
            i.handle_packet(t, B, m, 255, &slow),
            Err(DropReason::Interval)
        );
        assert_eq!(
            i.handle_packet(t, B, m, 255, &good[..10]),
            Err(DropReason::Truncated)
        );
        let mut other =
            VrrpRepr::parse(&VrrpPacket::new_checked(&good[..]).unwrap(), B, m).unwrap();
        other.vrid = 52;
        let p = other.to_bytes(B, m).unwrap();
        assert_eq!(
            i.handle_packet(t, B, m, 255, &p),
            Err(DropReason::NotMine(52))
        );
        other.vrid = 51;
        other.auth = Auth::Simple(simple_auth("x"));
        let p = other.to_bytes(B, m).unwrap();
        assert_eq!(i.handle_packet(t, B, m, 255, &p), Err(DropReason::AuthType));
        assert_eq!(i.handle_packet(t, A, m, 255, &good), Err(DropReason::Own));
        // Address list mismatch: logged, dropped; accepted from the owner.
        other.auth = Auth::None;
        other.addresses = vec![Ipv4Addr::new(10, 0, 0, 99)];
        let p = other.to_bytes(B, m).unwrap();
        assert_eq!(
            i.handle_packet(t, B, m, 255, &p),
            Err(DropReason::AddressList)
        );
        other.priority = 255;
        let p = other.to_bytes(B, m).unwrap();
        assert_eq!(i.handle_packet(t, B, m, 255, &p), Ok(()));
        assert_eq!(i.handle_packet(t, B, m, 255, &good), Ok(()));
        let s = i.stats();
        assert_eq!(
            (
                s.drop_ttl,
                s.drop_checksum,
                s.drop_version,
                s.drop_interval,
                s.drop_truncated
            ),
            (1, 1, 1, 1, 1)
        );
        assert_eq!((s.drop_not_mine, s.drop_auth_type, s.drop_own), (1, 1, 1));
        assert_eq!((s.address_list_mismatch, s.adverts_rx), (2, 2));
        let mismatches = std::iter::from_fn(|| i.poll_event())
            .filter(|e| matches!(e, Event::AddressListMismatch { .. }))
            .count();
        assert_eq!(mismatches, 2);
    }

    #[test]
    fn v3_interval_difference_is_accepted() {
        let mut i = Instance::new(cfg(Version::V3, 100)).unwrap();
        i.startup(Duration::ZERO);
        let zero = advert(Version::V3, 120, 0, B);
        assert_eq!(
            i.handle_packet(Duration::ZERO, B, wire::MULTICAST_ADDR, 255, &zero),
            Err(DropReason::Interval)
        );
        let p = advert(Version::V3, 120, 300, B);
        assert_eq!(
            i.handle_packet(Duration::ZERO, B, wire::MULTICAST_ADDR, 255, &p),
            Ok(())
        );
        assert_eq!(i.info().master, Some(B));
    }

    #[test]
    fn owner_starts_as_master_and_always_preempts() {
        let mut c = cfg(Version::V2, 255);
        c.nopreempt = true;
        c.track_script.push(Track::new("chk", -50));
        let mut i = Instance::new(c).unwrap();
        assert!(i.set_track(Duration::ZERO, "chk", false));
        // Weights do not apply to the owner.
        assert_eq!(i.effective_priority(), 255);
        i.startup(Duration::ZERO);
        assert_eq!(i.state(), State::Master);
        assert!(i.preempt());
        assert!(i.info().accept_mode);
        let t = i.poll_transmit().unwrap();
        assert_eq!(t.destination, wire::MULTICAST_ADDR);
        assert_eq!(t.payload[2], 255);
    }

    #[test]
    fn priority_computation() {
        let mut c = cfg(Version::V2, 100);
        c.track_interface.push(Track::new("eth1", 0));
        c.track_interface.push(Track::new("eth2", 20));
        c.track_script.push(Track::new("chk", -30));
        c.track_script.push(Track::new("big", 250));
        let mut i = Instance::new(c).unwrap();
        // eth2 up (+20) and big up (+250): clamped to 254.
        assert_eq!(i.effective_priority(), 254);
        i.set_track(Duration::ZERO, "big", false);
        assert_eq!(i.effective_priority(), 120);
        i.set_track(Duration::ZERO, "chk", false);
        assert_eq!(i.effective_priority(), 90);
        i.set_track(Duration::ZERO, "eth2", false);
        assert_eq!(i.effective_priority(), 70);
        assert!(!i.set_track(Duration::ZERO, "nope", false));
        assert!(!i.own_fault());
        i.set_track(Duration::ZERO, "eth1", false);
        assert!(i.own_fault());
        i.startup(Duration::ZERO);
        assert_eq!(i.state(), State::Fault);
        assert_eq!(i.poll_timeout(), None);
        i.set_track(Duration::from_secs(1), "eth1", true);
        assert_eq!(i.state(), State::Backup);
    }

    #[test]
    fn master_answers_priority_zero_and_lower_priority_at_once() {
        let mut i = Instance::new(cfg(Version::V2, 255)).unwrap();
        i.startup(Duration::ZERO);
        while i.poll_transmit().is_some() {}
        let m = wire::MULTICAST_ADDR;
        let t = Duration::from_millis(300);
        for prio in [0u8, 100] {
            i.handle_packet(t, B, m, 255, &advert(Version::V2, prio, 1, B))
                .unwrap();
            let tx = i.poll_transmit().expect("immediate advert");
            assert_eq!(tx.payload[2], 255);
            assert!(i.poll_transmit().is_none());
            assert_eq!(i.poll_timeout(), Some(t + Duration::from_secs(1)));
        }
        assert_eq!(i.state(), State::Master);
        assert_eq!(i.stats().priority_zero_rx, 1);
    }

    #[test]
    fn master_yields_to_higher_priority_and_to_higher_address() {
        for (prio, src, yields) in [(101u8, B, true), (100, B, true), (99, B, false)] {
            let mut c = cfg(Version::V3, 100);
            c.source_ip = Ipv4Addr::new(10, 0, 0, 1);
            let mut i = Instance::new(c).unwrap();
            i.startup(Duration::ZERO);
            i.handle_timeout(i.poll_timeout().unwrap());
            assert_eq!(i.state(), State::Master);
            let m = wire::MULTICAST_ADDR;
            i.handle_packet(
                Duration::from_secs(5),
                src,
                m,
                255,
                &advert(Version::V3, prio, 100, src),
            )
            .unwrap();
            assert_eq!(i.state() == State::Backup, yields, "priority {prio}");
        }
        // Equal priority from a lower address: we stay Master.
        let mut c = cfg(Version::V3, 100);
        c.source_ip = Ipv4Addr::new(10, 0, 0, 9);
        let mut i = Instance::new(c).unwrap();
        i.startup(Duration::ZERO);
        i.handle_timeout(i.poll_timeout().unwrap());
        let m = wire::MULTICAST_ADDR;
        i.handle_packet(
            Duration::from_secs(5),
            B,
            m,
            255,
            &advert(Version::V3, 100, 100, B),
        )
        .unwrap();
        assert_eq!(i.state(), State::Master);
    }

    #[test]
    fn shutdown_from_master_sends_priority_zero() {
        let mut i = Instance::new(cfg(Version::V2, 100)).unwrap();
        i.startup(Duration::ZERO);
        i.handle_timeout(i.poll_timeout().unwrap());
        assert_eq!(i.state(), State::Master);
        while i.poll_transmit().is_some() {}
        i.shutdown(Duration::from_secs(10));
        assert_eq!(i.poll_transmit().unwrap().payload[2], 0);
        assert_eq!(i.state(), State::Initialize);
        assert_eq!(i.poll_timeout(), None);
        let evs: Vec<Event> = std::iter::from_fn(|| i.poll_event()).collect();
        assert_eq!(evs.last(), Some(&Event::Stopped { vips: vec![VIP] }));
    }

    #[test]
    fn own_interface_is_tracked() {
        let mut i = Instance::new(cfg(Version::V2, 100)).unwrap();
        i.startup(Duration::ZERO);
        assert!(i.set_track(Duration::from_secs(1), "eth0", false));
        assert_eq!(i.state(), State::Fault);
        assert!(i.set_track(Duration::from_secs(2), "eth0", true));
        assert_eq!(i.state(), State::Backup);
        // Listed with a weight: the weight applies instead of FAULT.
        let mut c = cfg(Version::V2, 100);
        c.track_interface.push(Track::new("eth0", -20));
        let mut i = Instance::new(c).unwrap();
        i.startup(Duration::ZERO);
        i.set_track(Duration::from_secs(1), "eth0", false);
        assert_eq!((i.state(), i.effective_priority()), (State::Backup, 80));
    }

    #[test]
    fn vmac_in_info() {
        let mut c = cfg(Version::V3, 100);
        c.use_vmac = true;
        let i = Instance::new(c).unwrap();
        assert_eq!(i.info().vmac, Some([0, 0, 0x5e, 0, 1, 51]));
        assert_eq!(
            Instance::new(cfg(Version::V3, 100)).unwrap().info().vmac,
            None
        );
        // Accept mode: keepalived's default is on; `no_accept` turns it off, except for the
        // owner.
        assert!(
            Instance::new(cfg(Version::V3, 100))
                .unwrap()
                .info()
                .accept_mode
        );
        let mut c = cfg(Version::V3, 100);
        c.accept = false;
        assert!(!Instance::new(c.clone()).unwrap().info().accept_mode);
        c.priority = 255;
        assert!(Instance::new(c).unwrap().info().accept_mode);
    }

    #[test]
    fn unicast_peers_get_one_advert_each() {
        let mut c = cfg(Version::V3, 255);
        c.unicast_src_ip = Some(Ipv4Addr::new(192, 168, 1, 1));
        c.unicast_peer = vec![Ipv4Addr::new(192, 168, 1, 2), Ipv4Addr::new(192, 168, 1, 3)];
        let mut i = Instance::new(c).unwrap();
        i.startup(Duration::ZERO);
        let tx: Vec<_> = std::iter::from_fn(|| i.poll_transmit()).collect();
        assert_eq!(tx.len(), 2);
        for (t, peer) in tx.iter().zip([2u8, 3]) {
            assert_eq!(t.source, Ipv4Addr::new(192, 168, 1, 1));
            assert_eq!(t.destination, Ipv4Addr::new(192, 168, 1, peer));
            let p = VrrpPacket::new_checked(&t.payload[..]).unwrap();
            // v3 checksum over each peer's pseudo-header.
            assert!(VrrpRepr::parse(&p, t.source, t.destination).is_ok());
        }
        assert_ne!(tx[0].payload, tx[1].payload);
    }
}
