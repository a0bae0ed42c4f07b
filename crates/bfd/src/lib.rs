//! Sans-IO Bidirectional Forwarding Detection.
//!
//! What this crate does:
//! - RFC 5880 asynchronous mode for RFC 5881 single-hop IPv4 sessions: the control packet
//!   codec ([`BfdPacket`], [`BfdRepr`], §4.1–§4.4) with the §6.8.6 validation returning a
//!   `Copy` [`DropReason`]; simple password, keyed / meticulous keyed MD5 and SHA1
//!   authentication with sequence windows (§6.7, [`auth`]);
//! - the session state machine (§6.2, §6.8.6) as a `match (state, input)` table, the Poll
//!   Sequence (§6.5) with the §6.8.3 rules for when new intervals take effect, timer
//!   negotiation (§6.8.2, §6.8.4), slow start at 1 s while not Up (§6.8.3), jitter
//!   (§6.8.7) from a caller-provided seed, administrative control (§6.8.16);
//! - RFC 5882 client signalling: [`Event::SessionDown`] carries `client_should_act`, true
//!   only when an Up session failed (detection time expired, or the neighbor signalled
//!   Down), false when the neighbor went AdminDown or the session was disabled locally;
//! - RFC 5881 §5 receive rule: packets with a TTL other than 255 are dropped (also with
//!   authentication, where the RFC makes the check optional).
//!
//! Choices where the RFCs leave room (documented so operators are not surprised):
//! - a packet that lowers the remote's Desired Min TX arms the detection timer with the
//!   previous value once, because FRR bfdd keeps its old transmit timer running after its
//!   Poll to a faster rate; the next packet arms the new, shorter detection time;
//! - keyed types increment the transmit sequence on every packet (MAY for non-meticulous);
//! - Up → Down clears nothing but the Poll Sequence; Down → Up resets the diagnostic to 0;
//! - removing a session whose peer was heard sends one AdminDown packet (diag 7).
//!
//! What it does not do:
//! - no I/O and no clocks: the caller passes `now` as a [`Duration`] since an arbitrary
//!   epoch, feeds received datagrams to [`Bfd::handle_packet`], sends what
//!   [`Bfd::poll_transmit`] returns (UDP to port 3784 from a source port in
//!   49152–65535 with TTL 255, RFC 5881 §4–§5) and calls [`Bfd::handle_timeout`] at
//!   [`Bfd::poll_timeout`];
//! - no Echo function (Required Min Echo RX is sent as 0), no Demand mode of its own (a
//!   remote's Demand bit is honoured by ceasing periodic transmission, §6.6), no passive
//!   role, no multihop (RFC 5883), no IPv6, no key rollover (one key per session).
//!
//! ```
//! use bfd::{Bfd, Config, SessionParams};
//! use std::{net::Ipv4Addr, time::Duration};
//!
//! let mut bfd = Bfd::new(Config { seed: 7 });
//! let id = bfd
//!     .add_session(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1), 2, SessionParams::default())
//!     .unwrap();
//! bfd.handle_timeout(Duration::ZERO);
//! let tx = bfd.poll_transmit().unwrap(); // the first Down packet
//! assert_eq!(tx.peer, Ipv4Addr::new(10, 0, 0, 2));
//! assert_eq!(bfd.peers(Duration::ZERO)[0].id, id);
//! ```

pub mod auth;
pub mod packet;
mod session;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

pub use auth::AuthKey;
pub use packet::{AuthRepr, AuthType, BfdPacket, BfdRepr, Diagnostic, State};
pub use session::{SessionCounters, SessionParams};

use session::{Outputs, Session};

/// Why a received packet was dropped (RFC 5880 §6.8.6, RFC 5881 §3, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    /// Shorter than the mandatory section or than its Length field.
    #[error("truncated packet")]
    Truncated,
    /// Length field below 24 (26 with the A bit).
    #[error("bad length field")]
    BadLength,
    /// Version is not 1.
    #[error("bad version")]
    BadVersion,
    /// Detect Mult is zero.
    #[error("detect mult is zero")]
    ZeroDetectMult,
    /// Multipoint bit set.
    #[error("multipoint bit set")]
    MultipointSet,
    /// My Discriminator is zero.
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    /// Your Discriminator is zero while the state is not Down or AdminDown.
    #[error("your discriminator is zero outside Down/AdminDown")]
    ZeroYourDiscriminator,
    /// Reserved authentication type.
    #[error("unknown authentication type")]
    BadAuthType,
    /// Auth Len inconsistent with the type or with Length.
    #[error("bad authentication length")]
    BadAuthLength,
    /// TTL not 255 (RFC 5881 §5).
    #[error("ttl is not 255")]
    BadTtl,
    /// No session matches Your Discriminator, or (with Your Discriminator 0) the source
    /// address and interface.
    #[error("no matching session")]
    NoSession,
    /// Your Discriminator names a session of another peer, interface or local address.
    #[error("session does not match source, destination or interface")]
    SessionMismatch,
    /// The local session is AdminDown (§6.8.6).
    #[error("session is administratively down")]
    LocalAdminDown,
    /// Authentication configured but the A bit is clear.
    #[error("authentication missing")]
    AuthMissing,
    /// A bit set but no authentication configured.
    #[error("unexpected authentication")]
    AuthUnexpected,
    /// Authentication type differs from the configured one.
    #[error("authentication type mismatch")]
    AuthTypeMismatch,
    /// Key ID differs from the configured one.
    #[error("authentication key id mismatch")]
    AuthKeyIdMismatch,
    /// Wrong password or digest.
    #[error("authentication failed")]
    AuthFailed,
    /// Sequence number outside the accepted window (replay).
    #[error("authentication sequence out of window")]
    AuthSequence,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 19] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::BadVersion,
        DropReason::ZeroDetectMult,
        DropReason::MultipointSet,
        DropReason::ZeroMyDiscriminator,
        DropReason::ZeroYourDiscriminator,
        DropReason::BadAuthType,
        DropReason::BadAuthLength,
        DropReason::BadTtl,
        DropReason::NoSession,
        DropReason::SessionMismatch,
        DropReason::LocalAdminDown,
        DropReason::AuthMissing,
        DropReason::AuthUnexpected,
        DropReason::AuthTypeMismatch,
        DropReason::AuthKeyIdMismatch,
        DropReason::AuthFailed,
        DropReason::AuthSequence,
    ];

    /// Index into [`DropReason::ALL`].
    pub fn index(self) -> usize {
        DropReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadLength => "bad_length",
            DropReason::BadVersion => "bad_version",
            DropReason::ZeroDetectMult => "zero_detect_mult",
            DropReason::MultipointSet => "multipoint",
            DropReason::ZeroMyDiscriminator => "zero_my_discriminator",
            DropReason::ZeroYourDiscriminator => "zero_your_discriminator",
            DropReason::BadAuthType => "bad_auth_type",
            DropReason::BadAuthLength => "bad_auth_length",
            DropReason::BadTtl => "bad_ttl",
            DropReason::NoSession => "no_session",
            DropReason::SessionMismatch => "session_mismatch",
            DropReason::LocalAdminDown => "local_admin_down",
            DropReason::AuthMissing => "auth_missing",
            DropReason::AuthUnexpected => "auth_unexpected",
            DropReason::AuthTypeMismatch => "auth_type_mismatch",
            DropReason::AuthKeyIdMismatch => "auth_key_id_mismatch",
            DropReason::AuthFailed => "auth_failed",
            DropReason::AuthSequence => "auth_sequence",
        }
    }

    /// Whether this is an authentication failure.
    pub fn is_auth(self) -> bool {
        matches!(
            self,
            DropReason::AuthMissing
                | DropReason::AuthUnexpected
                | DropReason::AuthTypeMismatch
                | DropReason::AuthKeyIdMismatch
                | DropReason::AuthFailed
                | DropReason::AuthSequence
        )
    }
}

/// Errors of the client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Parameters out of range (detect mult 0, interval 0 or above u32 µs, bad key).
    #[error("invalid session parameters")]
    InvalidParams,
    /// No session has this id.
    #[error("no such session")]
    NoSuchSession,
    /// The peer address is unusable (unspecified, multicast or broadcast).
    #[error("invalid peer address")]
    InvalidPeer,
}

/// A session's identifier: its local discriminator (bfd.LocalDiscr, §6.8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// Endpoint configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Seed of the internal PRNG (discriminators, jitter, initial auth sequence). The
    /// daemon should pass a random value; tests pass a constant to replay runs.
    pub seed: u64,
}

/// Notifications for clients (OSPF, static routes), RFC 5882.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The session reached Up.
    SessionUp {
        /// Session.
        id: SessionId,
        /// Peer address.
        peer: Ipv4Addr,
        /// Interface index.
        ifindex: u32,
    },
    /// The session left Up (to Down or AdminDown).
    SessionDown {
        /// Session.
        id: SessionId,
        /// Peer address.
        peer: Ipv4Addr,
        /// Interface index.
        ifindex: u32,
        /// Local diagnostic: 1 detection time expired, 3 neighbor signalled down (also
        /// when the neighbor went AdminDown, §6.8.6), 7 disabled locally.
        diag: Diagnostic,
        /// The diagnostic the neighbor last sent (7 when it went AdminDown).
        remote_diag: Diagnostic,
        /// RFC 5882 §3.2 / §4.3: true when the client must treat the neighbor as dead
        /// (detection time expired, or the neighbor signalled Down); false when the
        /// neighbor went AdminDown or the session was disabled here, in which case the
        /// client keeps the adjacency and relies on its own liveness mechanism.
        client_should_act: bool,
    },
}

/// A packet to send: UDP payload for `peer`:3784 out of `ifindex`, TTL 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Session that sent it.
    pub id: SessionId,
    /// Destination address.
    pub peer: Ipv4Addr,
    /// Source address to use.
    pub local: Ipv4Addr,
    /// Outgoing interface.
    pub ifindex: u32,
    /// BFD control packet (UDP payload).
    pub bytes: Vec<u8>,
}

/// One row of `fulcrum bfd peers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Session (local discriminator).
    pub id: SessionId,
    /// Peer address.
    pub peer: Ipv4Addr,
    /// Local address.
    pub local: Ipv4Addr,
    /// Interface index.
    pub ifindex: u32,
    /// Local state.
    pub state: State,
    /// Local diagnostic.
    pub diag: Diagnostic,
    /// Remote state as last received.
    pub remote_state: State,
    /// Remote diagnostic as last received.
    pub remote_diag: Diagnostic,
    /// Remote discriminator (0 when unknown).
    pub remote_discriminator: u32,
    /// Time since the session came Up.
    pub uptime: Option<Duration>,
    /// Negotiated transmit interval (§6.8.7, before jitter).
    pub tx_interval: Duration,
    /// Negotiated receive interval: max(our Required Min RX, remote Desired Min TX).
    pub rx_interval: Duration,
    /// Detection time (§6.8.4); zero until the remote is heard.
    pub detection_time: Duration,
    /// Local Detect Mult.
    pub detect_mult: u8,
    /// Remote Detect Mult (0 until heard).
    pub remote_detect_mult: u8,
    /// Authentication type in use.
    pub auth: Option<AuthType>,
    /// Whether a Poll Sequence is in progress.
    pub poll_active: bool,
    /// Counters.
    pub counters: SessionCounters,
}

/// SplitMix64: a small deterministic generator seeded by the caller.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// All BFD sessions of one system: demultiplexing, timers, outputs.
#[derive(Debug)]
pub struct Bfd {
    sessions: BTreeMap<u32, Session>,
    by_peer: HashMap<(Ipv4Addr, u32), u32>,
    rng: Rng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: [u64; DropReason::ALL.len()],
}

impl Bfd {
    /// A system with no sessions.
    pub fn new(config: Config) -> Bfd {
        Bfd {
            sessions: BTreeMap::new(),
            by_peer: HashMap::new(),
            rng: Rng(config.seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: [0; DropReason::ALL.len()],
        }
    }

    /// Create (or share) the session to `peer` on `ifindex`, sourced from `local`. A
    /// second call for the same peer and interface returns the same id and counts one
    /// more client (the new `params` are ignored then; use [`Bfd::set_params`]). The first
    /// packet is due at once: [`Bfd::poll_timeout`] returns `Duration::ZERO`.
    pub fn add_session(
        &mut self,
        peer: Ipv4Addr,
        local: Ipv4Addr,
        ifindex: u32,
        params: SessionParams,
    ) -> Result<SessionId, Error> {
        if !params.is_valid() {
            return Err(Error::InvalidParams);
        }
        if peer.is_unspecified() || peer.is_multicast() || peer.is_broadcast() {
            return Err(Error::InvalidPeer);
        }
        if let Some(d) = self.by_peer.get(&(peer, ifindex)) {
            if let Some(s) = self.sessions.get_mut(d) {
                s.refs += 1;
                return Ok(s.id);
            }
        }
        // §6.8.1: bfd.LocalDiscr nonzero, unique, and random.
        let disc = loop {
            let d = self.rng.next_u64() as u32;
            if d != 0 && !self.sessions.contains_key(&d) {
                break d;
            }
        };
        let seq = self.rng.next_u64() as u32;
        let id = SessionId(disc);
        self.sessions
            .insert(disc, Session::new(id, peer, local, ifindex, params, seq));
        self.by_peer.insert((peer, ifindex), disc);
        Ok(id)
    }

    /// Drop one client's reference; the session is deleted when the last client removes
    /// it. If the peer was heard, one final AdminDown packet (diag 7) is queued so that the
    /// peer does not take the deletion for a failure (§6.8.16, RFC 5882 §3.2). Returns
    /// whether the session is gone.
    pub fn remove_session(&mut self, id: SessionId) -> Result<bool, Error> {
        let s = self.sessions.get_mut(&id.0).ok_or(Error::NoSuchSession)?;
        s.refs = s.refs.saturating_sub(1);
        if s.refs > 0 {
            return Ok(false);
        }
        self.transmits.retain(|t| t.id != id);
        if s.remote_disc != 0 {
            s.state = State::AdminDown;
            s.local_diag = Diagnostic::AdministrativelyDown;
            s.poll_active = false;
            let bytes = s.build(false);
            let (peer, local, ifindex) = (s.peer, s.local, s.ifindex);
            self.transmits.push_back(Transmit {
                id,
                peer,
                local,
                ifindex,
                bytes,
            });
        }
        let key = (s.peer, s.ifindex);
        self.sessions.remove(&id.0);
        self.by_peer.remove(&key);
        Ok(true)
    }

    /// Find the session of `peer` on `ifindex`.
    pub fn session_for(&self, peer: Ipv4Addr, ifindex: u32) -> Option<SessionId> {
        self.by_peer.get(&(peer, ifindex)).map(|d| SessionId(*d))
    }

    /// Change a session's parameters; when Up, a Poll Sequence (§6.5) announces them and
    /// they take effect per §6.8.3.
    pub fn set_params(
        &mut self,
        now: Duration,
        id: SessionId,
        params: SessionParams,
    ) -> Result<(), Error> {
        if !params.is_valid() {
            return Err(Error::InvalidParams);
        }
        let s = self.sessions.get_mut(&id.0).ok_or(Error::NoSuchSession)?;
        let mut out = Outputs::default();
        s.set_params(now, params, &mut self.rng, &mut out);
        self.flush(id, out);
        Ok(())
    }

    /// Administratively disable (`down = true`) or enable a session (§6.8.16). A disabled
    /// session keeps sending AdminDown packets at the slow rate so the peer learns it.
    pub fn set_admin_down(
        &mut self,
        now: Duration,
        id: SessionId,
        down: bool,
    ) -> Result<(), Error> {
        let s = self.sessions.get_mut(&id.0).ok_or(Error::NoSuchSession)?;
        let mut out = Outputs::default();
        s.set_admin(now, down, &mut self.rng, &mut out);
        self.flush(id, out);
        Ok(())
    }

    /// Process a received UDP payload from `src` to `dst` on `ifindex` with IP TTL `ttl`
    /// (the driver reads it with IP_RECVTTL). The session is found by Your Discriminator,
    /// or by (`src`, `ifindex`) when that is 0; it must match `src`, `ifindex` and, unless
    /// the session's local address is unspecified, `dst`. Drops are counted (globally and,
    /// once demultiplexed, per session) and returned; on success the session's id.
    pub fn handle_packet(
        &mut self,
        now: Duration,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ifindex: u32,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<SessionId, DropReason> {
        let r = self.receive(now, src, dst, ifindex, ttl, bytes);
        if let Err(e) = r {
            if let Some(c) = self.drops.get_mut(e.index()) {
                *c += 1;
            }
        }
        r
    }

    fn receive(
        &mut self,
        now: Duration,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ifindex: u32,
        ttl: u8,
        bytes: &[u8],
    ) -> Result<SessionId, DropReason> {
        let repr = BfdRepr::parse(&BfdPacket::new_checked(bytes)?)?;
        // §6.8.6 demultiplexing; RFC 5881 §3: with Your Discriminator 0 the session is
        // found by source address and interface.
        let disc = if repr.your_discriminator != 0 {
            let s = self
                .sessions
                .get(&repr.your_discriminator)
                .ok_or(DropReason::NoSession)?;
            if s.peer != src || s.ifindex != ifindex {
                return Err(DropReason::SessionMismatch);
            }
            repr.your_discriminator
        } else {
            *self
                .by_peer
                .get(&(src, ifindex))
                .ok_or(DropReason::NoSession)?
        };
        let s = self.sessions.get_mut(&disc).ok_or(DropReason::NoSession)?;
        if !s.local.is_unspecified() && s.local != dst {
            s.counters.rx_dropped += 1;
            return Err(DropReason::SessionMismatch);
        }
        let mut out = Outputs::default();
        let r = s.receive(now, ttl, bytes, &repr, &mut self.rng, &mut out);
        let id = s.id;
        self.flush(id, out);
        r.map(|()| id)
    }

    /// Run timers due at `now`: periodic transmission and detection-time expiry.
    pub fn handle_timeout(&mut self, now: Duration) {
        let due: Vec<u32> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.next_deadline().is_some_and(|d| d <= now))
            .map(|(d, _)| *d)
            .collect();
        for d in due {
            if let Some(s) = self.sessions.get_mut(&d) {
                let mut out = Outputs::default();
                s.timeout(now, &mut self.rng, &mut out);
                let id = s.id;
                self.flush(id, out);
            }
        }
    }

    fn flush(&mut self, id: SessionId, out: Outputs) {
        if let Some(s) = self.sessions.get(&id.0) {
            for bytes in out.transmits {
                self.transmits.push_back(Transmit {
                    id,
                    peer: s.peer,
                    local: s.local,
                    ifindex: s.ifindex,
                    bytes,
                });
            }
        }
        self.events.extend(out.events);
    }

    /// Next packet to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Bfd::handle_timeout`] must next be called (absolute, same epoch as `now`).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.sessions
            .values()
            .filter_map(Session::next_deadline)
            .min()
    }

    /// Next client notification, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Show data for every session, ordered by discriminator.
    pub fn peers(&self, now: Duration) -> Vec<PeerInfo> {
        self.sessions
            .values()
            .map(|s| PeerInfo {
                id: s.id,
                peer: s.peer,
                local: s.local,
                ifindex: s.ifindex,
                state: s.state,
                diag: s.local_diag,
                remote_state: s.remote_state,
                remote_diag: s.remote_diag,
                remote_discriminator: s.remote_disc,
                uptime: s.up_since.map(|t| now.saturating_sub(t)),
                tx_interval: Duration::from_micros(u64::from(s.tx_interval())),
                rx_interval: Duration::from_micros(u64::from(
                    s.rx_used.max(s.remote_desired_min_tx),
                )),
                detection_time: s.detection_time(),
                detect_mult: s.params.detect_mult,
                remote_detect_mult: s.remote_detect_mult,
                auth: s.params.auth.as_ref().map(|k| k.auth_type),
                poll_active: s.poll_active,
                counters: s.counters,
            })
            .collect()
    }

    /// Show data for one session.
    pub fn peer(&self, now: Duration, id: SessionId) -> Option<PeerInfo> {
        self.peers(now).into_iter().find(|p| p.id == id)
    }

    /// Drops of packets, by reason, including those not matched to any session.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .copied()
            .zip(self.drops.iter().copied())
    }
}
