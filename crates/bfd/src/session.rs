//! One BFD session: the RFC 5880 §6.2 state machine, timer negotiation (§6.8.2–§6.8.4),
//! the Poll Sequence (§6.5), reception (§6.8.6) and transmission (§6.8.7) rules.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::auth::{self, AuthKey};
use crate::packet::{BfdRepr, Diagnostic, State};
use crate::{DropReason, Event, Rng, SessionId};

/// Slow-start transmit interval while the session is not Up (§6.8.3): 1 s.
pub const SLOW_TX_US: u32 = 1_000_000;

/// Per-session parameters, set at [`crate::Bfd::add_session`] and changed with
/// [`crate::Bfd::set_params`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// bfd.DesiredMinTxInterval once Up (raised to 1 s while not Up, §6.8.3).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval.
    pub required_min_rx: Duration,
    /// bfd.DetectMult (1–255).
    pub detect_mult: u8,
    /// Authentication; `None` means packets must come without the A bit.
    pub auth: Option<AuthKey>,
}

impl Default for SessionParams {
    /// 300 ms × 3, no authentication (FRR's and BIRD's usual values).
    fn default() -> Self {
        SessionParams {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            auth: None,
        }
    }
}

impl SessionParams {
    /// Whether the parameters are usable: detect mult ≥ 1, intervals in 1 µs..=u32::MAX µs
    /// (Required Min RX may be 0: "send me nothing", §6.8.18), a valid key.
    pub fn is_valid(&self) -> bool {
        self.detect_mult != 0
            && to_us(self.desired_min_tx).is_some_and(|v| v > 0)
            && to_us(self.required_min_rx).is_some()
            && self.auth.as_ref().map_or(true, AuthKey::is_valid)
    }
}

pub(crate) fn to_us(d: Duration) -> Option<u32> {
    u32::try_from(d.as_micros()).ok()
}

fn us(v: u32) -> Duration {
    Duration::from_micros(u64::from(v))
}

/// Per-session counters for metrics and `fulcrum bfd peers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Control packets queued for transmission.
    pub tx_packets: u64,
    /// Control packets accepted.
    pub rx_packets: u64,
    /// Packets demultiplexed to this session but dropped (TTL, auth, AdminDown).
    pub rx_dropped: u64,
    /// Of those, authentication failures (missing, unexpected, type, key, digest, sequence).
    pub auth_failures: u64,
    /// Transitions to Up.
    pub up_transitions: u64,
    /// Transitions from Up to Down / AdminDown.
    pub down_transitions: u64,
    /// Detection-time expiries (§6.8.4).
    pub detect_expiries: u64,
    /// Poll Sequences started (§6.5).
    pub poll_sequences: u64,
}

/// Inputs of the §6.2 state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A valid packet whose Sta field is this state.
    Rx(State),
    /// Detection Time passed without a packet (§6.8.4).
    DetectExpired,
    /// Administrative disable (§6.8.16).
    AdminDisable,
    /// Administrative enable (§6.8.16).
    AdminEnable,
}

/// The §6.2 / §6.8.6 transition table: new state and, when it changes, the new
/// bfd.LocalDiag. `None` diag means "leave as is".
pub(crate) fn transition(state: State, input: Input) -> (State, Option<Diagnostic>) {
    use Input::*;
    use State::*;
    match (state, input) {
        // §6.8.16: disabling sets AdminDown with diag Administratively Down.
        (AdminDown, AdminDisable) => (AdminDown, None),
        (_, AdminDisable) => (AdminDown, Some(Diagnostic::AdministrativelyDown)),
        // §6.8.16: enabling sets Down.
        (AdminDown, AdminEnable) => (Down, None),
        (s, AdminEnable) => (s, None),
        // §6.8.6: "If bfd.SessionState is AdminDown, discard the packet"; no timers run.
        (AdminDown, Rx(_)) | (AdminDown, DetectExpired) => (AdminDown, None),
        // §6.8.6: received AdminDown: "If bfd.SessionState is not Down, set
        // bfd.LocalDiag to 3 and bfd.SessionState to Down".
        (Down, Rx(AdminDown)) => (Down, None),
        (Init | Up, Rx(AdminDown)) => (Down, Some(Diagnostic::NeighborSignaledDown)),
        // §6.8.6 / §6.2 diagram, from Down: Down → Init, Init → Up, Up ignored.
        (Down, Rx(Down)) => (Init, None),
        (Down, Rx(Init)) => (Up, Some(Diagnostic::None)),
        (Down, Rx(Up)) => (Down, None),
        // §6.8.6, from Init: Init or Up → Up; Down keeps Init.
        (Init, Rx(Init | Up)) => (Up, Some(Diagnostic::None)),
        (Init, Rx(Down)) => (Init, None),
        // §6.8.6, from Up: Down → Down with diag 3; Init or Up keeps Up.
        (Up, Rx(Down)) => (Down, Some(Diagnostic::NeighborSignaledDown)),
        (Up, Rx(Init | Up)) => (Up, None),
        // §6.8.4: Detection Time expiry in Init or Up → Down, diag 1.
        (Init | Up, DetectExpired) => (Down, Some(Diagnostic::ControlDetectionTimeExpired)),
        (Down, DetectExpired) => (Down, None),
    }
}

/// One session's state variables (§6.8.1) and timers.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: SessionId,
    pub peer: Ipv4Addr,
    pub local: Ipv4Addr,
    pub ifindex: u32,
    pub refs: u32,
    pub params: SessionParams,
    pub state: State,
    pub local_diag: Diagnostic,
    pub remote_state: State,
    pub remote_diag: Diagnostic,
    pub remote_disc: u32,
    /// bfd.RemoteMinRxInterval (µs), initially 1 (§6.8.1).
    pub remote_min_rx: u32,
    pub remote_desired_min_tx: u32,
    pub remote_detect_mult: u8,
    pub remote_demand: bool,
    /// Desired Min TX advertised in our packets (µs).
    pub adv_tx: u32,
    /// Required Min RX advertised in our packets (µs).
    pub adv_rx: u32,
    /// Desired Min TX governing our transmit timer (§6.8.3: an increase waits for Final).
    pub tx_used: u32,
    /// Required Min RX governing our detection time (§6.8.3: a decrease waits for Final).
    pub rx_used: u32,
    pub poll_active: bool,
    pub next_tx: Option<Duration>,
    pub detect_deadline: Option<Duration>,
    pub last_rx: Option<Duration>,
    pub up_since: Option<Duration>,
    pub xmit_seq: u32,
    pub rcv_seq: Option<u32>,
    pub counters: SessionCounters,
}

/// What a session asks its owner to do after an input.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub transmits: Vec<Vec<u8>>,
    pub events: Vec<Event>,
}

impl Session {
    pub fn new(
        id: SessionId,
        peer: Ipv4Addr,
        local: Ipv4Addr,
        ifindex: u32,
        params: SessionParams,
        xmit_seq: u32,
    ) -> Session {
        let rx = to_us(params.required_min_rx).unwrap_or(u32::MAX);
        let tx = to_us(params.desired_min_tx)
            .unwrap_or(u32::MAX)
            .max(SLOW_TX_US);
        Session {
            id,
            peer,
            local,
            ifindex,
            refs: 1,
            params,
            state: State::Down,
            local_diag: Diagnostic::None,
            remote_state: State::Down,
            remote_diag: Diagnostic::None,
            remote_disc: 0,
            remote_min_rx: 1,
            remote_desired_min_tx: 0,
            remote_detect_mult: 0,
            remote_demand: false,
            adv_tx: tx,
            adv_rx: rx,
            tx_used: tx,
            rx_used: rx,
            poll_active: false,
            // Due at once: the first handle_timeout sends the first packet.
            next_tx: Some(Duration::ZERO),
            detect_deadline: None,
            last_rx: None,
            up_since: None,
            xmit_seq,
            rcv_seq: None,
            counters: SessionCounters::default(),
        }
    }

    fn cfg_tx(&self) -> u32 {
        to_us(self.params.desired_min_tx).unwrap_or(u32::MAX)
    }

    fn cfg_rx(&self) -> u32 {
        to_us(self.params.required_min_rx).unwrap_or(u32::MAX)
    }

    /// Desired Min TX to advertise in `state` (§6.8.3: at least 1 s while not Up).
    fn wanted_tx(&self, state: State) -> u32 {
        if state == State::Up {
            self.cfg_tx()
        } else {
            self.cfg_tx().max(SLOW_TX_US)
        }
    }

    /// The negotiated transmit interval (§6.8.2, §6.8.7):
    /// max(bfd.DesiredMinTxInterval in use, bfd.RemoteMinRxInterval).
    pub fn tx_interval(&self) -> u32 {
        self.tx_used.max(self.remote_min_rx)
    }

    /// Detection Time in asynchronous mode (§6.8.4): remote Detect Mult ×
    /// max(bfd.RequiredMinRxInterval in use, last received Desired Min TX).
    pub fn detection_time(&self) -> Duration {
        us(self.rx_used.max(self.remote_desired_min_tx)) * u32::from(self.remote_detect_mult)
    }

    /// Whether periodic transmission is allowed (§6.8.7): not when the remote asked for
    /// no packets (Required Min RX 0), nor when the remote runs Demand mode with both Up.
    fn periodic_tx_enabled(&self) -> bool {
        self.remote_min_rx != 0
            && !(self.remote_demand && self.state == State::Up && self.remote_state == State::Up)
    }

    /// Jittered interval (§6.8.7): 75–100 % of the interval, 75–90 % with Detect Mult 1.
    fn jittered(&self, rng: &mut Rng) -> Duration {
        let base = u64::from(self.tx_interval());
        let hi = if self.params.detect_mult == 1 {
            900u64
        } else {
            1000
        };
        let pct = 750 + rng.next_u64() % (hi - 750 + 1);
        Duration::from_micros(base * pct / 1000)
    }

    /// Bring the transmit deadline forward if the interval just got shorter.
    fn reschedule(&mut self, now: Duration, rng: &mut Rng) {
        if !self.periodic_tx_enabled() {
            self.next_tx = None;
            return;
        }
        let candidate = now + self.jittered(rng);
        self.next_tx = Some(match self.next_tx {
            Some(t) if t <= candidate => t,
            _ => candidate,
        });
    }

    /// Build one control packet (§6.8.7 contents). `final_` answers a Poll; P and F are
    /// never both set.
    pub fn build(&mut self, final_: bool) -> Vec<u8> {
        let auth = self.params.auth.as_ref().and_then(|k| {
            if k.auth_type.is_keyed() {
                // §6.7.3/§6.7.4: meticulous types MUST and keyed types MAY increment
                // bfd.XmitAuthSeq per packet; we increment for both.
                self.xmit_seq = self.xmit_seq.wrapping_add(1);
            }
            k.section(self.xmit_seq)
        });
        let repr = BfdRepr {
            diag: self.local_diag,
            state: self.state,
            poll: self.poll_active && !final_,
            final_,
            cpi: false,
            demand: false,
            detect_mult: self.params.detect_mult,
            my_discriminator: self.id.0,
            your_discriminator: self.remote_disc,
            desired_min_tx: self.adv_tx,
            required_min_rx: self.adv_rx,
            required_min_echo_rx: 0,
            auth,
        };
        let mut buf = repr.to_vec();
        if let Some(k) = &self.params.auth {
            // The buffer was emitted by us with a valid length: signing cannot fail.
            let _ = auth::sign(&mut buf, k);
        }
        self.counters.tx_packets += 1;
        buf
    }

    /// Start a Poll Sequence (§6.5) carrying the currently advertised values.
    fn start_poll(&mut self, out: &mut Outputs) {
        if !self.poll_active {
            self.counters.poll_sequences += 1;
        }
        self.poll_active = true;
        out.transmits.push(self.build(false));
    }

    /// Apply the §6.8.3 rules after the advertised values changed from (`old_tx`,
    /// `old_rx`): decreases of TX and increases of RX take effect at once; the others
    /// wait for the Final when Up (a Poll Sequence is started).
    fn intervals_changed(
        &mut self,
        now: Duration,
        old_tx: u32,
        old_rx: u32,
        rng: &mut Rng,
        out: &mut Outputs,
    ) {
        if self.adv_tx == old_tx && self.adv_rx == old_rx {
            return;
        }
        if self.state == State::Up {
            if self.adv_tx < self.tx_used {
                self.tx_used = self.adv_tx;
            }
            if self.adv_rx > self.rx_used {
                self.rx_used = self.adv_rx;
            }
            self.start_poll(out);
        } else {
            self.tx_used = self.adv_tx;
            self.rx_used = self.adv_rx;
        }
        self.reschedule(now, rng);
    }

    /// Apply a state change and its side effects.
    fn set_state(
        &mut self,
        now: Duration,
        new: State,
        diag: Option<Diagnostic>,
        rng: &mut Rng,
        out: &mut Outputs,
    ) {
        let old = self.state;
        if let Some(d) = diag {
            self.local_diag = d;
        }
        if new == old {
            return;
        }
        self.state = new;
        let (old_tx, old_rx) = (self.adv_tx, self.adv_rx);
        if old == State::Up {
            // Leaving Up: back to slow start (§6.8.3), no Poll needed outside Up.
            self.poll_active = false;
            self.up_since = None;
            self.counters.down_transitions += 1;
            // RFC 5882 §3.2: the neighbor going AdminDown and our own administrative
            // disable are not failures; detection expiry or the neighbor signalling Down
            // (while not AdminDown) are.
            let client_should_act = matches!(
                self.local_diag,
                Diagnostic::ControlDetectionTimeExpired | Diagnostic::NeighborSignaledDown
            ) && self.remote_state != State::AdminDown;
            out.events.push(Event::SessionDown {
                id: self.id,
                peer: self.peer,
                ifindex: self.ifindex,
                diag: self.local_diag,
                remote_diag: self.remote_diag,
                client_should_act,
            });
        }
        self.adv_tx = self.wanted_tx(new);
        if new == State::Up {
            self.up_since = Some(now);
            self.counters.up_transitions += 1;
            out.events.push(Event::SessionUp {
                id: self.id,
                peer: self.peer,
                ifindex: self.ifindex,
            });
        }
        if new != State::Up {
            self.tx_used = self.adv_tx;
        }
        if matches!(new, State::Down | State::AdminDown) {
            self.detect_deadline = None;
        }
        let queued = out.transmits.len();
        self.intervals_changed(now, old_tx, old_rx, rng, out);
        // Tell the remote at once rather than at the next periodic packet (unless a Poll
        // packet already went out above).
        if out.transmits.len() == queued {
            out.transmits.push(self.build(false));
        }
    }

    /// Administrative control (§6.8.16).
    pub fn set_admin(&mut self, now: Duration, down: bool, rng: &mut Rng, out: &mut Outputs) {
        let input = if down {
            Input::AdminDisable
        } else {
            Input::AdminEnable
        };
        let (new, diag) = transition(self.state, input);
        if new == State::Down && self.state == State::AdminDown {
            self.local_diag = Diagnostic::None;
            self.remote_disc = 0;
            self.remote_state = State::Down;
        }
        self.set_state(now, new, diag, rng, out);
    }

    /// New parameters (§6.8.3 rules; a Poll Sequence when Up).
    pub fn set_params(
        &mut self,
        now: Duration,
        params: SessionParams,
        rng: &mut Rng,
        out: &mut Outputs,
    ) {
        let (old_tx, old_rx) = (self.adv_tx, self.adv_rx);
        if params.auth != self.params.auth {
            self.rcv_seq = None;
        }
        self.params = params;
        self.adv_tx = self.wanted_tx(self.state);
        self.adv_rx = self.cfg_rx();
        self.intervals_changed(now, old_tx, old_rx, rng, out);
    }

    /// Reception of a packet already parsed and demultiplexed to this session
    /// (§6.8.6 from "If the A bit is set…" on).
    pub fn receive(
        &mut self,
        now: Duration,
        ttl: u8,
        bytes: &[u8],
        repr: &BfdRepr,
        rng: &mut Rng,
        out: &mut Outputs,
    ) -> Result<(), DropReason> {
        let r = self.check(now, ttl, bytes, repr);
        if let Err(e) = r {
            self.counters.rx_dropped += 1;
            if e.is_auth() {
                self.counters.auth_failures += 1;
            }
            return Err(e);
        }
        self.counters.rx_packets += 1;
        if let (Some(a), Some(_)) = (&repr.auth, &self.params.auth) {
            if a.auth_type.is_keyed() {
                self.rcv_seq = Some(a.sequence);
            }
        }
        self.last_rx = Some(now);
        // §6.8.6: record the remote's variables.
        self.remote_disc = repr.my_discriminator;
        self.remote_state = repr.state;
        self.remote_diag = repr.diag;
        self.remote_demand = repr.demand;
        self.remote_detect_mult = repr.detect_mult;
        let prev_remote_tx = self.remote_desired_min_tx;
        self.remote_desired_min_tx = repr.desired_min_tx;
        let old_remote_rx = self.remote_min_rx;
        self.remote_min_rx = repr.required_min_rx;
        // §6.5: a Final terminates the Poll Sequence; the new values now govern (§6.8.3).
        if repr.final_ && self.poll_active {
            self.poll_active = false;
            self.tx_used = self.adv_tx;
            self.rx_used = self.adv_rx;
        }
        // §6.8.6 state machine.
        let (new, diag) = transition(self.state, Input::Rx(repr.state));
        self.set_state(now, new, diag, rng, out);
        // §6.8.4: restart the detection timer. Its expiry takes an Init or Up session
        // Down; in Down it only forgets the remote (§6.8.1, §6.8.18).
        // Grace: the packet that lowers the remote's Desired Min TX (its Poll) arms the
        // timer with the previous value, since the remote's transmit timer may still run
        // at the old interval until its next packet (FRR bfdd does this: a Poll to 300 ms
        // followed by a packet 1 s later).
        if self.state != State::AdminDown {
            let mut dt = self.detection_time();
            if repr.desired_min_tx < prev_remote_tx {
                dt = dt
                    .max(us(self.rx_used.max(prev_remote_tx)) * u32::from(self.remote_detect_mult));
            }
            self.detect_deadline = Some(now + dt);
        }
        // §6.8.7: the interval may have changed with bfd.RemoteMinRxInterval.
        if self.remote_min_rx != old_remote_rx || self.next_tx.is_none() {
            self.reschedule(now, rng);
        }
        if !self.periodic_tx_enabled() {
            self.next_tx = None;
        }
        // §6.8.6: "If the Poll (P) bit is set, send a BFD Control packet to the remote
        // system with the Poll (P) bit clear, and the Final (F) bit set".
        if repr.poll {
            out.transmits.push(self.build(true));
        }
        Ok(())
    }

    /// The per-session checks of §6.8.6 and RFC 5881 §5.
    fn check(
        &self,
        now: Duration,
        ttl: u8,
        bytes: &[u8],
        repr: &BfdRepr,
    ) -> Result<(), DropReason> {
        // RFC 5881 §5: TTL must be 255 without authentication; with authentication the
        // check is a MAY, which we also apply (GTSM as defence in depth).
        if ttl != 255 {
            return Err(DropReason::BadTtl);
        }
        match (&repr.auth, &self.params.auth) {
            (None, None) => {}
            // §6.8.6: A bit clear and authentication in use → discard.
            (None, Some(_)) => return Err(DropReason::AuthMissing),
            // §6.8.6: A bit set and no authentication in use → MAY discard; we do.
            (Some(_), None) => return Err(DropReason::AuthUnexpected),
            (Some(a), Some(key)) => {
                auth::verify(bytes, a, key)?;
                if a.auth_type.is_keyed() {
                    // bfd.AuthSeqKnown is reset after 2 × Detection Time of silence.
                    let known = match (self.rcv_seq, self.last_rx) {
                        (Some(s), Some(t)) if now.saturating_sub(t) < self.detection_time() * 2 => {
                            Some(s)
                        }
                        _ => None,
                    };
                    if let Some(last) = known {
                        if !auth::seq_in_window(a.auth_type, last, a.sequence, repr.detect_mult) {
                            return Err(DropReason::AuthSequence);
                        }
                    }
                }
            }
        }
        // §6.8.6: "If bfd.SessionState is AdminDown: Discard the packet".
        if self.state == State::AdminDown {
            return Err(DropReason::LocalAdminDown);
        }
        Ok(())
    }

    /// Timers: periodic transmission (§6.8.7) and detection (§6.8.4).
    pub fn timeout(&mut self, now: Duration, rng: &mut Rng, out: &mut Outputs) {
        if self.detect_deadline.is_some_and(|d| d <= now) {
            self.detect_deadline = None;
            if matches!(self.state, State::Init | State::Up) {
                self.counters.detect_expiries += 1;
            }
            // §6.8.1: bfd.RemoteDiscr is reset when the Detection Time expires;
            // §6.8.18: bfd.RemoteMinRxInterval goes back to 1.
            self.remote_disc = 0;
            self.remote_state = State::Down;
            self.remote_min_rx = 1;
            self.remote_demand = false;
            let (new, diag) = transition(self.state, Input::DetectExpired);
            self.set_state(now, new, diag, rng, out);
            self.reschedule(now, rng);
        }
        if self.next_tx.is_some_and(|t| t <= now) {
            if self.periodic_tx_enabled() {
                out.transmits.push(self.build(false));
                self.next_tx = Some(now + self.jittered(rng));
            } else {
                self.next_tx = None;
            }
        }
    }

    /// Earliest deadline of this session.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.next_tx, self.detect_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_table_follows_6_8_6() {
        use State::*;
        assert_eq!(transition(Down, Input::Rx(Down)), (Init, None));
        assert_eq!(transition(Down, Input::Rx(Init)).0, Up);
        assert_eq!(transition(Down, Input::Rx(Up)).0, Down);
        assert_eq!(transition(Init, Input::Rx(Up)).0, Up);
        assert_eq!(transition(Init, Input::Rx(Down)).0, Init);
        assert_eq!(
            transition(Up, Input::Rx(Down)),
            (Down, Some(Diagnostic::NeighborSignaledDown))
        );
        assert_eq!(
            transition(Up, Input::Rx(AdminDown)),
            (Down, Some(Diagnostic::NeighborSignaledDown))
        );
        assert_eq!(transition(Down, Input::Rx(AdminDown)), (Down, None));
        assert_eq!(transition(AdminDown, Input::Rx(Up)), (AdminDown, None));
        assert_eq!(
            transition(Up, Input::DetectExpired),
            (Down, Some(Diagnostic::ControlDetectionTimeExpired))
        );
        assert_eq!(transition(Down, Input::DetectExpired), (Down, None));
        assert_eq!(
            transition(Up, Input::AdminDisable),
            (AdminDown, Some(Diagnostic::AdministrativelyDown))
        );
        assert_eq!(transition(AdminDown, Input::AdminEnable), (Down, None));
    }

    #[test]
    fn params_validity() {
        assert!(SessionParams::default().is_valid());
        let p = SessionParams {
            detect_mult: 0,
            ..SessionParams::default()
        };
        assert!(!p.is_valid());
        let p = SessionParams {
            desired_min_tx: Duration::ZERO,
            ..SessionParams::default()
        };
        assert!(!p.is_valid());
        let p = SessionParams {
            required_min_rx: Duration::from_secs(5000),
            ..SessionParams::default()
        };
        assert!(!p.is_valid());
    }
}
