//! BFD control packet codec (RFC 5880 §4.1–§4.4), smoltcp style.
//!
//! [`BfdPacket`] is a zero-copy view over a byte buffer with getters and (for mutable
//! buffers) setters; [`BfdRepr`] is the parsed, validated form. [`BfdRepr::parse`] applies
//! the packet-level checks of RFC 5880 §6.8.6 and returns a [`DropReason`] on failure; the
//! session-level checks (demultiplexing, authentication against the configured key) are
//! done by [`crate::Bfd`].

use core::fmt;

use crate::DropReason;

/// Byte ranges of the fixed header (RFC 5880 §4.1) and the authentication section
/// (§4.2–§4.4, offsets relative to the start of the packet).
pub mod field {
    #![allow(missing_docs)]
    use core::ops::Range;

    pub const VERS_DIAG: usize = 0;
    pub const FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISC: Range<usize> = 4..8;
    pub const YOUR_DISC: Range<usize> = 8..12;
    pub const DESIRED_MIN_TX: Range<usize> = 12..16;
    pub const REQUIRED_MIN_RX: Range<usize> = 16..20;
    pub const REQUIRED_MIN_ECHO_RX: Range<usize> = 20..24;
    /// Start of the optional authentication section.
    pub const AUTH: usize = 24;
    pub const AUTH_TYPE: usize = 24;
    pub const AUTH_LEN: usize = 25;
    pub const AUTH_KEY_ID: usize = 26;
    /// Simple password: the password starts here (§4.2).
    pub const AUTH_PASSWORD: usize = 27;
    /// Keyed MD5 / SHA1: reserved byte (§4.3, §4.4).
    pub const AUTH_RESERVED: usize = 27;
    pub const AUTH_SEQ: Range<usize> = 28..32;
    /// Keyed MD5 / SHA1: the digest / hash starts here.
    pub const AUTH_DIGEST: usize = 32;
}

/// Length of the mandatory section (RFC 5880 §4.1).
pub const HEADER_LEN: usize = 24;
/// Auth Len of the keyed MD5 section (§4.3).
pub const MD5_AUTH_LEN: usize = 24;
/// Auth Len of the keyed SHA1 section (§4.4).
pub const SHA1_AUTH_LEN: usize = 28;
/// Longest simple password (§4.2).
pub const MAX_PASSWORD_LEN: usize = 16;

const FLAG_P: u8 = 0x20;
const FLAG_F: u8 = 0x10;
const FLAG_C: u8 = 0x08;
const FLAG_A: u8 = 0x04;
const FLAG_D: u8 = 0x02;
const FLAG_M: u8 = 0x01;

/// Session state as carried in the Sta field (RFC 5880 §4.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// 0: AdminDown.
    AdminDown,
    /// 1: Down.
    Down,
    /// 2: Init.
    Init,
    /// 3: Up.
    Up,
}

impl State {
    /// Decode the two-bit Sta field.
    pub fn from_bits(bits: u8) -> State {
        match bits & 0x3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    /// Encode as the two-bit Sta field.
    pub fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::AdminDown => "admin-down",
            State::Down => "down",
            State::Init => "init",
            State::Up => "up",
        })
    }
}

/// Diagnostic code (RFC 5880 §4.1, Diag field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0: No Diagnostic.
    None,
    /// 1: Control Detection Time Expired.
    ControlDetectionTimeExpired,
    /// 2: Echo Function Failed.
    EchoFunctionFailed,
    /// 3: Neighbor Signaled Session Down.
    NeighborSignaledDown,
    /// 4: Forwarding Plane Reset.
    ForwardingPlaneReset,
    /// 5: Path Down.
    PathDown,
    /// 6: Concatenated Path Down.
    ConcatenatedPathDown,
    /// 7: Administratively Down.
    AdministrativelyDown,
    /// 8: Reverse Concatenated Path Down.
    ReverseConcatenatedPathDown,
    /// 9–31: reserved for future use, kept as received.
    Reserved(u8),
}

impl Diagnostic {
    /// Decode the five-bit Diag field.
    pub fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            c => Diagnostic::Reserved(c),
        }
    }

    /// Encode as the five-bit Diag field.
    pub fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Reserved(c) => c & 0x1f,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::None => f.write_str("ok"),
            Diagnostic::ControlDetectionTimeExpired => {
                f.write_str("control-detection-time-expired")
            }
            Diagnostic::EchoFunctionFailed => f.write_str("echo-function-failed"),
            Diagnostic::NeighborSignaledDown => f.write_str("neighbor-signaled-down"),
            Diagnostic::ForwardingPlaneReset => f.write_str("forwarding-plane-reset"),
            Diagnostic::PathDown => f.write_str("path-down"),
            Diagnostic::ConcatenatedPathDown => f.write_str("concatenated-path-down"),
            Diagnostic::AdministrativelyDown => f.write_str("administratively-down"),
            Diagnostic::ReverseConcatenatedPathDown => {
                f.write_str("reverse-concatenated-path-down")
            }
            Diagnostic::Reserved(c) => write!(f, "reserved-{c}"),
        }
    }
}

/// Authentication type (RFC 5880 §4.1, Auth Type field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 1: Simple Password (§4.2).
    SimplePassword,
    /// 2: Keyed MD5 (§4.3).
    KeyedMd5,
    /// 3: Meticulous Keyed MD5 (§4.3).
    MeticulousKeyedMd5,
    /// 4: Keyed SHA1 (§4.4).
    KeyedSha1,
    /// 5: Meticulous Keyed SHA1 (§4.4).
    MeticulousKeyedSha1,
}

impl AuthType {
    /// Decode the Auth Type byte; 0 and 6–255 are reserved.
    pub fn from_code(code: u8) -> Option<AuthType> {
        match code {
            1 => Some(AuthType::SimplePassword),
            2 => Some(AuthType::KeyedMd5),
            3 => Some(AuthType::MeticulousKeyedMd5),
            4 => Some(AuthType::KeyedSha1),
            5 => Some(AuthType::MeticulousKeyedSha1),
            _ => None,
        }
    }

    /// The Auth Type byte.
    pub fn code(self) -> u8 {
        match self {
            AuthType::SimplePassword => 1,
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
        }
    }

    /// Whether the sequence number must increase on every packet (§6.7.3, §6.7.4).
    pub fn is_meticulous(self) -> bool {
        matches!(
            self,
            AuthType::MeticulousKeyedMd5 | AuthType::MeticulousKeyedSha1
        )
    }

    /// Whether the section carries a sequence number and a digest.
    pub fn is_keyed(self) -> bool {
        !matches!(self, AuthType::SimplePassword)
    }

    /// Length of the digest / hash in bytes (0 for the simple password).
    pub fn digest_len(self) -> usize {
        match self {
            AuthType::SimplePassword => 0,
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => 16,
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => 20,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthType::SimplePassword => "simple",
            AuthType::KeyedMd5 => "keyed-md5",
            AuthType::MeticulousKeyedMd5 => "meticulous-keyed-md5",
            AuthType::KeyedSha1 => "keyed-sha1",
            AuthType::MeticulousKeyedSha1 => "meticulous-keyed-sha1",
        })
    }
}

/// Parsed authentication section (RFC 5880 §4.2–§4.4).
///
/// `data` holds the password (simple) or the digest/hash (keyed) exactly as on the wire;
/// only the first `data_len` bytes are meaningful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthRepr {
    /// Authentication type.
    pub auth_type: AuthType,
    /// Key ID.
    pub key_id: u8,
    /// Sequence number (0 for the simple password, which has none).
    pub sequence: u32,
    /// Password or digest bytes.
    pub data: [u8; 20],
    /// Number of meaningful bytes in `data`.
    pub data_len: u8,
}

impl AuthRepr {
    /// A simple password section; `None` when the password is empty or longer than 16 bytes.
    pub fn simple(key_id: u8, password: &[u8]) -> Option<AuthRepr> {
        if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
            return None;
        }
        let mut data = [0u8; 20];
        data.get_mut(..password.len())?.copy_from_slice(password);
        Some(AuthRepr {
            auth_type: AuthType::SimplePassword,
            key_id,
            sequence: 0,
            data,
            data_len: password.len() as u8,
        })
    }

    /// A keyed section with a zero digest (to be filled by [`crate::auth::sign`]);
    /// `None` for [`AuthType::SimplePassword`].
    pub fn keyed(auth_type: AuthType, key_id: u8, sequence: u32) -> Option<AuthRepr> {
        if !auth_type.is_keyed() {
            return None;
        }
        Some(AuthRepr {
            auth_type,
            key_id,
            sequence,
            data: [0u8; 20],
            data_len: auth_type.digest_len() as u8,
        })
    }

    /// The password or digest.
    pub fn data(&self) -> &[u8] {
        self.data.get(..usize::from(self.data_len)).unwrap_or(&[])
    }

    /// Auth Len of this section.
    pub fn auth_len(&self) -> usize {
        match self.auth_type {
            AuthType::SimplePassword => 3 + usize::from(self.data_len),
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => MD5_AUTH_LEN,
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => SHA1_AUTH_LEN,
        }
    }
}

/// A read/write view of a BFD control packet.
#[derive(Debug, Clone)]
pub struct BfdPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> BfdPacket<T> {
    /// Wrap a buffer without checking anything; getters may then panic on short buffers,
    /// so use [`BfdPacket::new_checked`] for untrusted input.
    pub fn new_unchecked(buffer: T) -> BfdPacket<T> {
        BfdPacket { buffer }
    }

    /// Wrap a buffer after [`BfdPacket::check_len`].
    pub fn new_checked(buffer: T) -> Result<BfdPacket<T>, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the mandatory section, that the Length field is within
    /// bounds (≥ 24, ≥ 26 with the A bit, ≤ the buffer: RFC 5880 §6.8.6) and, when the A
    /// bit is set, that the authentication section fits inside Length. After this every
    /// getter is safe.
    pub fn check_len(&self) -> Result<(), DropReason> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let len = usize::from(self.length());
        let min = if self.auth_present() {
            HEADER_LEN + 2
        } else {
            HEADER_LEN
        };
        if len < min {
            return Err(DropReason::BadLength);
        }
        if len > data.len() {
            return Err(DropReason::Truncated);
        }
        if self.auth_present() {
            let auth_len = usize::from(self.auth_len());
            if auth_len < 3 || HEADER_LEN + auth_len > len {
                return Err(DropReason::BadAuthLength);
            }
        }
        Ok(())
    }

    /// Consume the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        let d = &self.buffer.as_ref()[r];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// Version (3 bits).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERS_DIAG] >> 5
    }
    /// Diagnostic code (5 bits).
    pub fn diag(&self) -> Diagnostic {
        Diagnostic::from_code(self.buffer.as_ref()[field::VERS_DIAG])
    }
    /// Session state.
    pub fn state(&self) -> State {
        State::from_bits(self.buffer.as_ref()[field::FLAGS] >> 6)
    }
    /// Poll bit.
    pub fn poll(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_P != 0
    }
    /// Final bit.
    pub fn final_(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_F != 0
    }
    /// Control Plane Independent bit.
    pub fn cpi(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_C != 0
    }
    /// Authentication Present bit.
    pub fn auth_present(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_A != 0
    }
    /// Demand bit.
    pub fn demand(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_D != 0
    }
    /// Multipoint bit (must be zero).
    pub fn multipoint(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & FLAG_M != 0
    }
    /// Detect Mult.
    pub fn detect_mult(&self) -> u8 {
        self.buffer.as_ref()[field::DETECT_MULT]
    }
    /// Length field (bytes, including the authentication section).
    pub fn length(&self) -> u8 {
        self.buffer.as_ref()[field::LENGTH]
    }
    /// My Discriminator.
    pub fn my_discriminator(&self) -> u32 {
        self.u32_at(field::MY_DISC)
    }
    /// Your Discriminator.
    pub fn your_discriminator(&self) -> u32 {
        self.u32_at(field::YOUR_DISC)
    }
    /// Desired Min TX Interval (µs).
    pub fn desired_min_tx(&self) -> u32 {
        self.u32_at(field::DESIRED_MIN_TX)
    }
    /// Required Min RX Interval (µs).
    pub fn required_min_rx(&self) -> u32 {
        self.u32_at(field::REQUIRED_MIN_RX)
    }
    /// Required Min Echo RX Interval (µs).
    pub fn required_min_echo_rx(&self) -> u32 {
        self.u32_at(field::REQUIRED_MIN_ECHO_RX)
    }
    /// Auth Type byte (only meaningful with the A bit).
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }
    /// Auth Len byte (only meaningful with the A bit).
    pub fn auth_len(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_LEN]
    }
    /// Auth Key ID (only meaningful with the A bit).
    pub fn auth_key_id(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_KEY_ID]
    }
    /// The bytes covered by the Length field.
    pub fn packet_bytes(&self) -> &[u8] {
        let d = self.buffer.as_ref();
        &d[..usize::from(self.length()).min(d.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> BfdPacket<T> {
    fn set_u32_at(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    fn set_flag(&mut self, flag: u8, on: bool) {
        let b = &mut self.buffer.as_mut()[field::FLAGS];
        if on {
            *b |= flag;
        } else {
            *b &= !flag;
        }
    }
    /// Set the version.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VERS_DIAG];
        *b = (*b & 0x1f) | (v << 5);
    }
    /// Set the diagnostic.
    pub fn set_diag(&mut self, d: Diagnostic) {
        let b = &mut self.buffer.as_mut()[field::VERS_DIAG];
        *b = (*b & 0xe0) | d.code();
    }
    /// Set the state.
    pub fn set_state(&mut self, s: State) {
        let b = &mut self.buffer.as_mut()[field::FLAGS];
        *b = (*b & 0x3f) | (s.bits() << 6);
    }
    /// Set the Poll bit.
    pub fn set_poll(&mut self, v: bool) {
        self.set_flag(FLAG_P, v)
    }
    /// Set the Final bit.
    pub fn set_final(&mut self, v: bool) {
        self.set_flag(FLAG_F, v)
    }
    /// Set the Control Plane Independent bit.
    pub fn set_cpi(&mut self, v: bool) {
        self.set_flag(FLAG_C, v)
    }
    /// Set the Authentication Present bit.
    pub fn set_auth_present(&mut self, v: bool) {
        self.set_flag(FLAG_A, v)
    }
    /// Set the Demand bit.
    pub fn set_demand(&mut self, v: bool) {
        self.set_flag(FLAG_D, v)
    }
    /// Set the Multipoint bit.
    pub fn set_multipoint(&mut self, v: bool) {
        self.set_flag(FLAG_M, v)
    }
    /// Set Detect Mult.
    pub fn set_detect_mult(&mut self, v: u8) {
        self.buffer.as_mut()[field::DETECT_MULT] = v;
    }
    /// Set the Length field.
    pub fn set_length(&mut self, v: u8) {
        self.buffer.as_mut()[field::LENGTH] = v;
    }
    /// Set My Discriminator.
    pub fn set_my_discriminator(&mut self, v: u32) {
        self.set_u32_at(field::MY_DISC, v)
    }
    /// Set Your Discriminator.
    pub fn set_your_discriminator(&mut self, v: u32) {
        self.set_u32_at(field::YOUR_DISC, v)
    }
    /// Set Desired Min TX Interval (µs).
    pub fn set_desired_min_tx(&mut self, v: u32) {
        self.set_u32_at(field::DESIRED_MIN_TX, v)
    }
    /// Set Required Min RX Interval (µs).
    pub fn set_required_min_rx(&mut self, v: u32) {
        self.set_u32_at(field::REQUIRED_MIN_RX, v)
    }
    /// Set Required Min Echo RX Interval (µs).
    pub fn set_required_min_echo_rx(&mut self, v: u32) {
        self.set_u32_at(field::REQUIRED_MIN_ECHO_RX, v)
    }
    /// Mutable access to the whole buffer (for signing).
    pub fn buffer_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

/// A parsed, validated BFD control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdRepr {
    /// Diagnostic.
    pub diag: Diagnostic,
    /// Sender's session state.
    pub state: State,
    /// Poll bit.
    pub poll: bool,
    /// Final bit.
    pub final_: bool,
    /// Control Plane Independent bit.
    pub cpi: bool,
    /// Demand bit.
    pub demand: bool,
    /// Detect Mult (never 0 after parse).
    pub detect_mult: u8,
    /// My Discriminator (never 0 after parse).
    pub my_discriminator: u32,
    /// Your Discriminator.
    pub your_discriminator: u32,
    /// Desired Min TX Interval (µs).
    pub desired_min_tx: u32,
    /// Required Min RX Interval (µs).
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval (µs).
    pub required_min_echo_rx: u32,
    /// Authentication section, present iff the A bit is set.
    pub auth: Option<AuthRepr>,
}

impl BfdRepr {
    /// Parse and validate per RFC 5880 §6.8.6 (packet-level rules): version 1, Length
    /// bounds, Detect Mult ≠ 0, M bit clear, My Discriminator ≠ 0, Your Discriminator 0
    /// only in Down/AdminDown, and a well-formed authentication section (§4.2–§4.4).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &BfdPacket<&T>) -> Result<BfdRepr, DropReason> {
        packet.check_len()?;
        if packet.version() != 1 {
            return Err(DropReason::BadVersion);
        }
        if packet.detect_mult() == 0 {
            return Err(DropReason::ZeroDetectMult);
        }
        if packet.multipoint() {
            return Err(DropReason::MultipointSet);
        }
        if packet.my_discriminator() == 0 {
            return Err(DropReason::ZeroMyDiscriminator);
        }
        let state = packet.state();
        if packet.your_discriminator() == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DropReason::ZeroYourDiscriminator);
        }
        let auth = if packet.auth_present() {
            Some(parse_auth(packet)?)
        } else {
            None
        };
        Ok(BfdRepr {
            diag: packet.diag(),
            state,
            poll: packet.poll(),
            final_: packet.final_(),
            cpi: packet.cpi(),
            demand: packet.demand(),
            detect_mult: packet.detect_mult(),
            my_discriminator: packet.my_discriminator(),
            your_discriminator: packet.your_discriminator(),
            desired_min_tx: packet.desired_min_tx(),
            required_min_rx: packet.required_min_rx(),
            required_min_echo_rx: packet.required_min_echo_rx(),
            auth,
        })
    }

    /// Bytes needed by [`BfdRepr::emit`] (the Length field value).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.auth.map_or(0, |a| a.auth_len())
    }

    /// Write the packet into `packet`, whose buffer must be at least
    /// [`BfdRepr::buffer_len`] bytes. A keyed digest is written as held in `auth.data`;
    /// use [`crate::auth::sign`] afterwards to compute it.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut BfdPacket<&mut T>,
    ) -> Result<(), DropReason> {
        let len = self.buffer_len();
        if packet.buffer.as_ref().len() < len {
            return Err(DropReason::Truncated);
        }
        packet.buffer.as_mut()[..len].fill(0);
        packet.set_version(1);
        packet.set_diag(self.diag);
        packet.set_state(self.state);
        packet.set_poll(self.poll);
        packet.set_final(self.final_);
        packet.set_cpi(self.cpi);
        packet.set_auth_present(self.auth.is_some());
        packet.set_demand(self.demand);
        packet.set_multipoint(false);
        packet.set_detect_mult(self.detect_mult);
        packet.set_length(len as u8);
        packet.set_my_discriminator(self.my_discriminator);
        packet.set_your_discriminator(self.your_discriminator);
        packet.set_desired_min_tx(self.desired_min_tx);
        packet.set_required_min_rx(self.required_min_rx);
        packet.set_required_min_echo_rx(self.required_min_echo_rx);
        if let Some(auth) = &self.auth {
            let buf = packet.buffer.as_mut();
            buf[field::AUTH_TYPE] = auth.auth_type.code();
            buf[field::AUTH_LEN] = auth.auth_len() as u8;
            buf[field::AUTH_KEY_ID] = auth.key_id;
            if auth.auth_type.is_keyed() {
                buf[field::AUTH_SEQ].copy_from_slice(&auth.sequence.to_be_bytes());
                let n = auth.auth_type.digest_len();
                buf[field::AUTH_DIGEST..field::AUTH_DIGEST + n].copy_from_slice(&auth.data[..n]);
            } else {
                let n = usize::from(auth.data_len);
                buf[field::AUTH_PASSWORD..field::AUTH_PASSWORD + n]
                    .copy_from_slice(&auth.data[..n]);
            }
        }
        Ok(())
    }

    /// Emit into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        // The buffer is exactly buffer_len() long, so emit cannot fail.
        let _ = self.emit(&mut BfdPacket::new_unchecked(&mut buf[..]));
        buf
    }
}

/// Parse the authentication section of a packet that passed `check_len` with the A bit.
fn parse_auth<T: AsRef<[u8]> + ?Sized>(packet: &BfdPacket<&T>) -> Result<AuthRepr, DropReason> {
    let bytes = packet.packet_bytes();
    let auth_type = AuthType::from_code(packet.auth_type()).ok_or(DropReason::BadAuthType)?;
    let auth_len = usize::from(packet.auth_len());
    let key_id = packet.auth_key_id();
    let mut data = [0u8; 20];
    match auth_type {
        AuthType::SimplePassword => {
            // §4.2: Auth Len is 3 + password length, password 1..=16 bytes.
            let n = auth_len.checked_sub(3).ok_or(DropReason::BadAuthLength)?;
            if n == 0 || n > MAX_PASSWORD_LEN {
                return Err(DropReason::BadAuthLength);
            }
            let pw = bytes
                .get(field::AUTH_PASSWORD..field::AUTH_PASSWORD + n)
                .ok_or(DropReason::BadAuthLength)?;
            data[..n].copy_from_slice(pw);
            Ok(AuthRepr {
                auth_type,
                key_id,
                sequence: 0,
                data,
                data_len: n as u8,
            })
        }
        _ => {
            // §4.3 / §4.4: fixed Auth Len 24 (MD5) or 28 (SHA1).
            let n = auth_type.digest_len();
            if auth_len != 8 + n {
                return Err(DropReason::BadAuthLength);
            }
            let seq = bytes
                .get(field::AUTH_SEQ)
                .ok_or(DropReason::BadAuthLength)?;
            let sequence = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
            let digest = bytes
                .get(field::AUTH_DIGEST..field::AUTH_DIGEST + n)
                .ok_or(DropReason::BadAuthLength)?;
            data[..n].copy_from_slice(digest);
            Ok(AuthRepr {
                auth_type,
                key_id,
                sequence,
                data,
                data_len: n as u8,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FRR bfdd 8.x, first packet of a session (captured in a netns lab,
    /// testdata/frr.txt): Down, slow-start intervals of 1 s, echo 50 ms.
    const FRR_DOWN: [u8; 24] = [
        0x20, 0x40, 0x03, 0x18, 0x31, 0x08, 0x69, 0x8b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x0f, 0x42, 0x40, 0x00, 0x00, 0xc3, 0x50,
    ];
    /// FRR bfdd, Up with the Poll bit (start of the §6.5 Poll Sequence to 300 ms).
    const FRR_UP_POLL: [u8; 24] = [
        0x20, 0xe0, 0x03, 0x18, 0x31, 0x08, 0x69, 0x8b, 0x97, 0xbe, 0xec, 0xde, 0x00, 0x04, 0x93,
        0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
    ];
    /// BIRD 2.0.12 with `authentication keyed sha1`, key id 7 (testdata/bird-keyed-sha1.txt).
    const BIRD_SHA1: [u8; 52] = [
        0x20, 0x44, 0x03, 0x34, 0xb3, 0xa9, 0x87, 0xe7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x04, 0x1c, 0x07, 0x00, 0x42, 0x62,
        0x25, 0x12, 0x6c, 0x8d, 0x48, 0x7d, 0x91, 0x91, 0x5f, 0xd4, 0xf9, 0x7b, 0xf2, 0x08, 0x64,
        0x3b, 0x9a, 0x3b, 0x08, 0x98, 0xe1, 0x09,
    ];

    fn parse(bytes: &[u8]) -> Result<BfdRepr, DropReason> {
        BfdRepr::parse(&BfdPacket::new_checked(bytes)?)
    }

    #[test]
    fn frr_down_fields_and_roundtrip() {
        let r = parse(&FRR_DOWN).unwrap();
        assert_eq!(r.state, State::Down);
        assert_eq!(r.diag, Diagnostic::None);
        assert!(!r.poll && !r.final_ && !r.demand && !r.cpi);
        assert_eq!(r.detect_mult, 3);
        assert_eq!(r.my_discriminator, 822_634_891);
        assert_eq!(r.your_discriminator, 0);
        assert_eq!(r.desired_min_tx, 1_000_000);
        assert_eq!(r.required_min_rx, 1_000_000);
        assert_eq!(r.required_min_echo_rx, 50_000);
        assert_eq!(r.auth, None);
        assert_eq!(r.buffer_len(), 24);
        assert_eq!(r.to_vec(), FRR_DOWN);
    }

    #[test]
    fn frr_poll_fields_and_roundtrip() {
        let r = parse(&FRR_UP_POLL).unwrap();
        assert_eq!(r.state, State::Up);
        assert!(r.poll && !r.final_);
        assert_eq!(r.your_discriminator, 2_545_872_094);
        assert_eq!(r.desired_min_tx, 300_000);
        assert_eq!(r.required_min_rx, 300_000);
        assert_eq!(r.to_vec(), FRR_UP_POLL);
    }

    #[test]
    fn bird_sha1_fields_and_roundtrip() {
        let r = parse(&BIRD_SHA1).unwrap();
        assert_eq!(r.state, State::Down);
        let a = r.auth.unwrap();
        assert_eq!(a.auth_type, AuthType::KeyedSha1);
        assert_eq!(a.key_id, 7);
        assert_eq!(a.sequence, 0x4262_2512);
        assert_eq!(a.data(), &BIRD_SHA1[32..52]);
        assert_eq!(r.buffer_len(), 52);
        assert_eq!(r.to_vec(), BIRD_SHA1);
    }

    #[test]
    fn validation_rules() {
        let mut b = FRR_DOWN;
        b[0] = 0x40; // version 2
        assert_eq!(parse(&b), Err(DropReason::BadVersion));
        let mut b = FRR_DOWN;
        b[3] = 23;
        assert_eq!(parse(&b), Err(DropReason::BadLength));
        let mut b = FRR_DOWN;
        b[3] = 25;
        assert_eq!(parse(&b), Err(DropReason::Truncated));
        assert_eq!(parse(&FRR_DOWN[..23]), Err(DropReason::Truncated));
        let mut b = FRR_DOWN;
        b[2] = 0;
        assert_eq!(parse(&b), Err(DropReason::ZeroDetectMult));
        let mut b = FRR_DOWN;
        b[1] |= 0x01;
        assert_eq!(parse(&b), Err(DropReason::MultipointSet));
        let mut b = FRR_DOWN;
        b[4..8].fill(0);
        assert_eq!(parse(&b), Err(DropReason::ZeroMyDiscriminator));
        let mut b = FRR_DOWN;
        b[1] = 0xc0; // Up with your discriminator 0
        assert_eq!(parse(&b), Err(DropReason::ZeroYourDiscriminator));
        b[1] = 0x80; // Init
        assert_eq!(parse(&b), Err(DropReason::ZeroYourDiscriminator));
        b[1] = 0x00; // AdminDown is fine
        assert!(parse(&b).is_ok());
        // A bit set but Length only 24.
        let mut b = FRR_DOWN;
        b[1] |= 0x04;
        assert_eq!(parse(&b), Err(DropReason::BadLength));
    }

    #[test]
    fn auth_section_rules() {
        let mut b = BIRD_SHA1;
        b[24] = 9;
        assert_eq!(parse(&b), Err(DropReason::BadAuthType));
        let mut b = BIRD_SHA1;
        b[25] = 24; // SHA1 with MD5's length
        assert_eq!(parse(&b), Err(DropReason::BadAuthLength));
        let mut b = BIRD_SHA1;
        b[25] = 29; // runs past Length
        assert_eq!(parse(&b), Err(DropReason::BadAuthLength));
        // Simple password "abc" then a 17-byte password.
        let mut r = parse(&FRR_DOWN).unwrap();
        r.auth = AuthRepr::simple(1, b"abc");
        let v = r.to_vec();
        assert_eq!(v.len(), 30);
        assert_eq!(&v[24..30], &[1, 6, 1, b'a', b'b', b'c']);
        assert_eq!(parse(&v).unwrap(), r);
        assert!(AuthRepr::simple(1, &[b'x'; 17]).is_none());
        assert!(AuthRepr::simple(1, b"").is_none());
        let mut v2 = v.clone();
        v2[25] = 3; // empty password
        assert_eq!(parse(&v2), Err(DropReason::BadAuthLength));
    }

    #[test]
    fn setters_match_getters() {
        let mut buf = [0u8; 24];
        let mut p = BfdPacket::new_unchecked(&mut buf[..]);
        p.set_version(1);
        p.set_diag(Diagnostic::AdministrativelyDown);
        p.set_state(State::Init);
        p.set_final(true);
        p.set_demand(true);
        p.set_detect_mult(5);
        p.set_length(24);
        p.set_my_discriminator(0xdead_beef);
        p.set_your_discriminator(7);
        assert_eq!(p.version(), 1);
        assert_eq!(p.diag(), Diagnostic::AdministrativelyDown);
        assert_eq!(p.state(), State::Init);
        assert!(p.final_() && p.demand() && !p.poll());
        assert_eq!(p.my_discriminator(), 0xdead_beef);
        assert_eq!(buf[0], 0x27);
        assert_eq!(buf[1], 0x92);
    }

    #[test]
    fn diag_and_state_codes_roundtrip() {
        for c in 0..32u8 {
            assert_eq!(Diagnostic::from_code(c).code(), c);
        }
        for s in 0..4u8 {
            assert_eq!(State::from_bits(s).bits(), s);
        }
    }
}
