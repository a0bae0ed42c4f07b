//! VRRP advertisement codec for IPv4: VRRPv2 (RFC 3768 §5) and VRRPv3 (RFC 5798 §5).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! v2: | Auth Type   |   Adver Int   |          Checksum           |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum           |
//! |                   IPv4 Address(es) ...                        |
//! v2 only: Authentication Data (2 words)
//! ```
//!
//! The v2 checksum covers the VRRP message only; the v3 checksum also covers the IPv4
//! pseudo-header (RFC 5798 §5.2.8), so [`VrrpRepr::parse`] and [`VrrpRepr::emit`] take the
//! IP source and destination addresses.

use core::net::Ipv4Addr;

use ::wire::checksum;
use ::wire::IpProtocol;

/// IP protocol number of VRRP.
pub const IP_PROTOCOL: u8 = 112;
/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MULTICAST_ADDR: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IP TTL that every advertisement carries and that receivers require (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;
/// The only VRRP packet type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed header (before the address list).
pub const HEADER_LEN: usize = 8;
/// Length of the v2 authentication data that follows the address list.
pub const AUTH_DATA_LEN: usize = 8;

/// Errors of the VRRP codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header or than the addresses and auth data it announces.
    #[error("truncated VRRP packet")]
    Truncated,
    /// The version field is neither 2 nor 3.
    #[error("unsupported VRRP version {0}")]
    BadVersion(u8),
    /// The type field is not ADVERTISEMENT (1).
    #[error("unknown VRRP packet type {0}")]
    BadType(u8),
    /// The checksum does not verify.
    #[error("bad VRRP checksum")]
    BadChecksum,
    /// A v2 authentication type other than 0 (none) or 1 (simple text); type 2 (AH) is
    /// deprecated by RFC 3768 and rejected.
    #[error("unsupported VRRPv2 authentication type {0}")]
    BadAuthType(u8),
    /// A representation that cannot be encoded (v2 interval above 255 s, v3 interval above
    /// 4095 cs, v3 with authentication, more than 255 addresses).
    #[error("VRRP representation cannot be encoded")]
    Unencodable,
    /// The output buffer is too short for the representation.
    #[error("output buffer too short")]
    BufferTooShort,
}

/// Result type of the codec.
pub type Result<T> = core::result::Result<T, WireError>;

mod field {
    use core::ops::Range;
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    pub const AUTH_TYPE: usize = 4; // v2
    pub const ADVER_INT: usize = 5; // v2
    pub const MAX_ADVER_INT: Range<usize> = 4..6; // v3, low 12 bits
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const ADDRS: usize = 8;
}

/// Protocol version of an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768 (keepalived's default).
    V2,
    /// VRRPv3, RFC 5798 (IPv4 only in this crate).
    V3,
}

impl Version {
    /// The value of the version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// A read/write view of a VRRP message (the IP payload).
#[derive(Debug, Clone)]
pub struct VrrpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Wraps a buffer without any check.
    pub fn new_unchecked(buffer: T) -> Self {
        VrrpPacket { buffer }
    }

    /// Wraps a buffer and checks that every field the header announces is in bounds.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the header, the announced addresses and (v2) the auth
    /// data. Also rejects unknown versions, since the length depends on the version.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if len < self.message_len()? {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Length of the message the header announces (header, addresses and v2 auth data).
    pub fn message_len(&self) -> Result<usize> {
        let addrs = usize::from(self.count()) * 4;
        match self.version() {
            2 => Ok(HEADER_LEN + addrs + AUTH_DATA_LEN),
            3 => Ok(HEADER_LEN + addrs),
            v => Err(WireError::BadVersion(v)),
        }
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    /// Version field (high nibble of byte 0).
    pub fn version(&self) -> u8 {
        self.byte(field::VER_TYPE) >> 4
    }

    /// Type field (low nibble of byte 0).
    pub fn packet_type(&self) -> u8 {
        self.byte(field::VER_TYPE) & 0x0f
    }

    /// Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        self.byte(field::VRID)
    }

    /// Priority (0 = the master resigns, 255 = address owner).
    pub fn priority(&self) -> u8 {
        self.byte(field::PRIORITY)
    }

    /// Count of IPv4 addresses.
    pub fn count(&self) -> u8 {
        self.byte(field::COUNT)
    }

    /// v2 authentication type.
    pub fn auth_type(&self) -> u8 {
        self.byte(field::AUTH_TYPE)
    }

    /// v2 advertisement interval, in seconds.
    pub fn adver_int(&self) -> u8 {
        self.byte(field::ADVER_INT)
    }

    /// v3 maximum advertisement interval, in centiseconds (12 bits).
    pub fn max_adver_int(&self) -> u16 {
        u16::from_be_bytes([
            self.byte(field::MAX_ADVER_INT.start),
            self.byte(field::ADVER_INT),
        ]) & 0x0fff
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([
            self.byte(field::CHECKSUM.start),
            self.byte(field::CHECKSUM.start + 1),
        ])
    }

    /// The `index`th IPv4 address, if in bounds.
    pub fn address(&self, index: usize) -> Option<Ipv4Addr> {
        let start = field::ADDRS + index * 4;
        let b = self.buffer.as_ref().get(start..start + 4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Some(Ipv4Addr::from(a))
    }

    /// v2 authentication data (8 bytes after the addresses), if in bounds.
    pub fn auth_data(&self) -> Option<[u8; AUTH_DATA_LEN]> {
        let start = field::ADDRS + usize::from(self.count()) * 4;
        let b = self.buffer.as_ref().get(start..start + AUTH_DATA_LEN)?;
        let mut a = [0u8; AUTH_DATA_LEN];
        a.copy_from_slice(b);
        Some(a)
    }

    /// Verifies the checksum: over the message for v2, with the IPv4 pseudo-header for v3.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<bool> {
        let len = self.message_len()?;
        let msg = self
            .buffer
            .as_ref()
            .get(..len)
            .ok_or(WireError::Truncated)?;
        Ok(message_sum(self.version(), src, dst, msg) == 0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VrrpPacket<T> {
    fn set_byte(&mut self, i: usize, v: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(i) {
            *b = v;
        }
    }

    /// Sets the version and type fields.
    pub fn set_version_type(&mut self, version: u8, packet_type: u8) {
        self.set_byte(field::VER_TYPE, (version << 4) | (packet_type & 0x0f));
    }

    /// Sets the Virtual Router ID.
    pub fn set_vrid(&mut self, v: u8) {
        self.set_byte(field::VRID, v);
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, v: u8) {
        self.set_byte(field::PRIORITY, v);
    }

    /// Sets the address count.
    pub fn set_count(&mut self, v: u8) {
        self.set_byte(field::COUNT, v);
    }

    /// Sets the v2 authentication type.
    pub fn set_auth_type(&mut self, v: u8) {
        self.set_byte(field::AUTH_TYPE, v);
    }

    /// Sets the v2 advertisement interval (seconds).
    pub fn set_adver_int(&mut self, v: u8) {
        self.set_byte(field::ADVER_INT, v);
    }

    /// Sets the v3 max advertisement interval (centiseconds; the reserved bits are zeroed).
    pub fn set_max_adver_int(&mut self, v: u16) {
        let [hi, lo] = (v & 0x0fff).to_be_bytes();
        self.set_byte(field::MAX_ADVER_INT.start, hi);
        self.set_byte(field::ADVER_INT, lo);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        let [hi, lo] = v.to_be_bytes();
        self.set_byte(field::CHECKSUM.start, hi);
        self.set_byte(field::CHECKSUM.start + 1, lo);
    }

    /// Sets the `index`th address (ignored when out of bounds).
    pub fn set_address(&mut self, index: usize, a: Ipv4Addr) {
        let start = field::ADDRS + index * 4;
        if let Some(b) = self.buffer.as_mut().get_mut(start..start + 4) {
            b.copy_from_slice(&a.octets());
        }
    }

    /// Sets the v2 authentication data (ignored when out of bounds).
    pub fn set_auth_data(&mut self, data: &[u8; AUTH_DATA_LEN]) {
        let start = field::ADDRS + usize::from(self.count()) * 4;
        if let Some(b) = self.buffer.as_mut().get_mut(start..start + AUTH_DATA_LEN) {
            b.copy_from_slice(data);
        }
    }

    /// Computes and stores the checksum (the v3 one over the IPv4 pseudo-header too).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<()> {
        let len = self.message_len()?;
        self.set_checksum(0);
        let msg = self
            .buffer
            .as_ref()
            .get(..len)
            .ok_or(WireError::BufferTooShort)?;
        let c = !message_sum(self.version(), src, dst, msg);
        self.set_checksum(c);
        Ok(())
    }
}

/// The folded ones' complement sum of a VRRP message: over the message alone for v2
/// (RFC 3768 §5.3.8), with the IPv4 pseudo-header first for v3 (RFC 5798 §5.2.8). A
/// message with a correct checksum field sums to `0xffff`.
fn message_sum(version: u8, src: Ipv4Addr, dst: Ipv4Addr, msg: &[u8]) -> u16 {
    let acc = match version {
        // A VRRP message is at most 8 + 255 * 4 + 8 bytes, so its length fits in a u32.
        3 => u64::from(checksum::pseudo_header_v4(
            src,
            dst,
            IpProtocol::from(IP_PROTOCOL),
            msg.len() as u32,
        )),
        _ => 0,
    };
    checksum::fold(checksum::accumulate(acc, msg))
}

/// v2 authentication (RFC 3768 §5.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Type 0: no authentication (the 8 data bytes are sent as zero and ignored on receipt).
    None,
    /// Type 1: simple text password, zero padded to 8 bytes (keepalived's `auth_type PASS`).
    Simple([u8; AUTH_DATA_LEN]),
}

/// A parsed VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpRepr {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router ID.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Advertisement interval: seconds for v2 (`Adver Int`), centiseconds for v3
    /// (`Max Adver Int`, 12 bits).
    pub interval: u16,
    /// Authentication (v2 only; always [`Auth::None`] for v3).
    pub auth: Auth,
    /// The virtual IPv4 addresses.
    pub addresses: Vec<Ipv4Addr>,
}

impl VrrpRepr {
    /// Parses and validates an advertisement received from `src` to `dst`.
    ///
    /// Checks version, type, length, checksum and the v2 auth type. Authentication data of
    /// type 0 is ignored, as RFC 3768 §5.3.6.1 says.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &VrrpPacket<&T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<VrrpRepr> {
        packet.check_len()?;
        let version = match packet.version() {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(WireError::BadVersion(v)),
        };
        if packet.packet_type() != TYPE_ADVERTISEMENT {
            return Err(WireError::BadType(packet.packet_type()));
        }
        if !packet.verify_checksum(src, dst)? {
            return Err(WireError::BadChecksum);
        }
        let (interval, auth) = match version {
            Version::V2 => {
                let auth = match packet.auth_type() {
                    0 => Auth::None,
                    1 => Auth::Simple(packet.auth_data().ok_or(WireError::Truncated)?),
                    t => return Err(WireError::BadAuthType(t)),
                };
                (u16::from(packet.adver_int()), auth)
            }
            Version::V3 => (packet.max_adver_int(), Auth::None),
        };
        let addresses = (0..usize::from(packet.count()))
            .map(|i| packet.address(i).ok_or(WireError::Truncated))
            .collect::<Result<Vec<_>>>()?;
        Ok(VrrpRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval,
            auth,
            addresses,
        })
    }

    /// Length of the encoded message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self.addresses.len() * 4
            + match self.version {
                Version::V2 => AUTH_DATA_LEN,
                Version::V3 => 0,
            }
    }

    /// Encodes the advertisement sent from `src` to `dst`, checksum included.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut VrrpPacket<&mut T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        let count = u8::try_from(self.addresses.len()).map_err(|_| WireError::Unencodable)?;
        match self.version {
            Version::V2 if self.interval > 255 => return Err(WireError::Unencodable),
            Version::V3 if self.interval > 0x0fff || self.auth != Auth::None => {
                return Err(WireError::Unencodable)
            }
            _ => {}
        }
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(WireError::BufferTooShort);
        }
        packet.set_version_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count);
        match self.version {
            Version::V2 => {
                let (t, data) = match self.auth {
                    Auth::None => (0, [0u8; AUTH_DATA_LEN]),
                    Auth::Simple(d) => (1, d),
                };
                packet.set_auth_type(t);
                // Checked above: at most 255.
                packet.set_adver_int(self.interval as u8);
                packet.set_auth_data(&data);
            }
            Version::V3 => packet.set_max_adver_int(self.interval),
        }
        for (i, a) in self.addresses.iter().enumerate() {
            packet.set_address(i, *a);
        }
        packet.fill_checksum(src, dst)
    }

    /// Encodes into a new vector.
    pub fn to_bytes(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.buffer_len()];
        self.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), src, dst)?;
        Ok(out)
    }
}

/// Encodes a keepalived `auth_pass`: the first 8 bytes, zero padded (keepalived truncates
/// longer passwords to 8 characters).
pub fn simple_auth(pass: &str) -> [u8; AUTH_DATA_LEN] {
    let mut a = [0u8; AUTH_DATA_LEN];
    for (d, s) in a.iter_mut().zip(pass.as_bytes()) {
        *d = *s;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from keepalived 2.2.7 in a network namespace (tcpdump -xx -i va proto 112),
    // instance VRID 51, priority 150, VIPs 10.99.0.100 and 10.99.0.101, source 10.99.0.1,
    // sent to 224.0.0.18. IP payload only (Ethernet and IPv4 headers stripped).
    // Reproduce with scripts/capture_keepalived.sh 2|3.
    const SRC: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const DST: Ipv4Addr = MULTICAST_ADDR;

    /// `vrrp_version 2`, `advert_int 1`, `auth_type PASS`, `auth_pass s3cr3t`.
    const KA_V2_PASS: [u8; 24] = [
        0x21, 0x33, 0x96, 0x02, 0x01, 0x01, 0x28, 0x20, 0x0a, 0x63, 0x00, 0x64, 0x0a, 0x63, 0x00,
        0x65, 0x73, 0x33, 0x63, 0x72, 0x33, 0x74, 0x00, 0x00,
    ];
    /// Same instance, priority 0 sent by keepalived on SIGTERM.
    const KA_V2_PASS_PRIO0: [u8; 24] = [
        0x21, 0x33, 0x00, 0x02, 0x01, 0x01, 0xbe, 0x20, 0x0a, 0x63, 0x00, 0x64, 0x0a, 0x63, 0x00,
        0x65, 0x73, 0x33, 0x63, 0x72, 0x33, 0x74, 0x00, 0x00,
    ];
    /// `vrrp_version 3`, `advert_int 1.5` (150 cs), no authentication.
    const KA_V3: [u8; 16] = [
        0x31, 0x33, 0x96, 0x02, 0x00, 0x96, 0x37, 0xae, 0x0a, 0x63, 0x00, 0x64, 0x0a, 0x63, 0x00,
        0x65,
    ];
    /// Same v3 instance, priority 0 on SIGTERM.
    const KA_V3_PRIO0: [u8; 16] = [
        0x31, 0x33, 0x00, 0x02, 0x00, 0x96, 0xcd, 0xae, 0x0a, 0x63, 0x00, 0x64, 0x0a, 0x63, 0x00,
        0x65,
    ];

    fn vips() -> Vec<Ipv4Addr> {
        vec![Ipv4Addr::new(10, 99, 0, 100), Ipv4Addr::new(10, 99, 0, 101)]
    }

    fn roundtrip(bytes: &[u8]) -> VrrpRepr {
        let p = VrrpPacket::new_checked(bytes).unwrap();
        let r = VrrpRepr::parse(&p, SRC, DST).unwrap();
        assert_eq!(r.buffer_len(), bytes.len());
        assert_eq!(r.to_bytes(SRC, DST).unwrap(), bytes);
        r
    }

    #[test]
    fn keepalived_v2_pass() {
        let r = roundtrip(&KA_V2_PASS);
        assert_eq!(
            r,
            VrrpRepr {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                interval: 1,
                auth: Auth::Simple(simple_auth("s3cr3t")),
                addresses: vips(),
            }
        );
        let p = VrrpPacket::new_checked(&KA_V2_PASS[..]).unwrap();
        assert_eq!(p.checksum(), 0x2820);
        // The v2 checksum does not depend on the IP addresses.
        assert!(p
            .verify_checksum(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
            .unwrap());
    }

    #[test]
    fn keepalived_v2_priority_zero() {
        let r = roundtrip(&KA_V2_PASS_PRIO0);
        assert_eq!(r.priority, 0);
        assert_eq!(r.auth, Auth::Simple(simple_auth("s3cr3t")));
    }

    #[test]
    fn keepalived_v3() {
        let r = roundtrip(&KA_V3);
        assert_eq!(
            r,
            VrrpRepr {
                version: Version::V3,
                vrid: 51,
                priority: 150,
                interval: 150,
                auth: Auth::None,
                addresses: vips(),
            }
        );
        let r0 = roundtrip(&KA_V3_PRIO0);
        assert_eq!(r0.priority, 0);
    }

    #[test]
    fn v3_checksum_covers_pseudo_header() {
        let p = VrrpPacket::new_checked(&KA_V3[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST).unwrap());
        let other = Ipv4Addr::new(10, 99, 0, 2);
        assert!(!p.verify_checksum(other, DST).unwrap());
        assert_eq!(VrrpRepr::parse(&p, other, DST), Err(WireError::BadChecksum));
        // The same message to a unicast peer gets another checksum.
        let r = VrrpRepr::parse(&p, SRC, DST).unwrap();
        let uni = r.to_bytes(SRC, other).unwrap();
        assert_ne!(uni[6..8], KA_V3[6..8]);
        assert_eq!(uni[..6], KA_V3[..6]);
    }

    #[test]
    fn corrupted_byte_fails_checksum() {
        let mut b = KA_V2_PASS;
        b[10] ^= 0x01;
        let p = VrrpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, SRC, DST), Err(WireError::BadChecksum));
    }

    #[test]
    fn truncated_inputs() {
        for n in 0..KA_V2_PASS.len() {
            assert_eq!(
                VrrpPacket::new_checked(&KA_V2_PASS[..n]).err(),
                Some(WireError::Truncated),
                "len {n}"
            );
        }
        for n in 0..KA_V3.len() {
            assert!(VrrpPacket::new_checked(&KA_V3[..n]).is_err(), "len {n}");
        }
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut b = KA_V3.to_vec();
        b.extend_from_slice(&[0xde, 0xad]);
        let p = VrrpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, SRC, DST).unwrap().addresses, vips());
    }

    #[test]
    fn bad_version_type_and_auth() {
        let mut b = KA_V2_PASS;
        b[0] = 0x41;
        assert_eq!(
            VrrpPacket::new_checked(&b[..]).err(),
            Some(WireError::BadVersion(4))
        );

        let r =
            VrrpRepr::parse(&VrrpPacket::new_checked(&KA_V2_PASS[..]).unwrap(), SRC, DST).unwrap();
        let mut b = r.to_bytes(SRC, DST).unwrap();
        b[0] = 0x22;
        let mut p = VrrpPacket::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST).unwrap();
        let p = VrrpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&p, SRC, DST), Err(WireError::BadType(2)));

        // Auth type 2 (IP Authentication Header) is rejected.
        let mut b = KA_V2_PASS;
        b[4] = 2;
        let mut p = VrrpPacket::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST).unwrap();
        let p = VrrpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            VrrpRepr::parse(&p, SRC, DST),
            Err(WireError::BadAuthType(2))
        );
    }

    #[test]
    fn unencodable_reprs() {
        let mut r = VrrpRepr {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            interval: 0x1000,
            auth: Auth::None,
            addresses: vips(),
        };
        assert_eq!(r.to_bytes(SRC, DST), Err(WireError::Unencodable));
        r.interval = 100;
        r.auth = Auth::Simple(simple_auth("x"));
        assert_eq!(r.to_bytes(SRC, DST), Err(WireError::Unencodable));
        r.version = Version::V2;
        r.interval = 256;
        assert_eq!(r.to_bytes(SRC, DST), Err(WireError::Unencodable));
        r.interval = 1;
        let mut short = [0u8; 10];
        assert_eq!(
            r.emit(&mut VrrpPacket::new_unchecked(&mut short[..]), SRC, DST),
            Err(WireError::BufferTooShort)
        );
    }

    #[test]
    fn simple_auth_truncates_and_pads() {
        assert_eq!(simple_auth("abc"), *b"abc\0\0\0\0\0");
        assert_eq!(simple_auth("0123456789"), *b"01234567");
    }
}
