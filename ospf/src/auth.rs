//! OSPFv2 authentication (RFC 2328 §D): null, simple password, keyed MD5 (§D.3) and
//! HMAC-SHA-256 (RFC 5709), plus the packet checksum (§D.4.1–§D.4.2).

use crate::checksum::internet_checksum;
use crate::packet::{field, HEADER_LEN};
use crate::DropReason;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// Length of a keyed-MD5 digest.
pub const MD5_LEN: usize = 16;
/// Length of an HMAC-SHA-256 digest.
pub const SHA256_LEN: usize = 32;
/// The Apad constant of RFC 5709 §3.3 (0x878FE1F3 repeated).
pub const APAD_WORD: [u8; 4] = [0x87, 0x8f, 0xe1, 0xf3];

/// Authentication configured on an interface.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthKey {
    /// AuType 0.
    Null,
    /// AuType 1 with this password (zero padded to 8 bytes).
    Simple([u8; 8]),
    /// AuType 2, keyed MD5.
    Md5 {
        /// Key ID.
        key_id: u8,
        /// Secret key (at most 16 bytes are used).
        key: Vec<u8>,
    },
    /// AuType 2, HMAC-SHA-256 (RFC 5709).
    HmacSha256 {
        /// Key ID.
        key_id: u8,
        /// Secret key.
        key: Vec<u8>,
    },
}

impl core::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // never print secrets
        match self {
            AuthKey::Null => f.write_str("Null"),
            AuthKey::Simple(_) => f.write_str("Simple(..)"),
            AuthKey::Md5 { key_id, .. } => write!(f, "Md5 {{ key_id: {key_id} }}"),
            AuthKey::HmacSha256 { key_id, .. } => write!(f, "HmacSha256 {{ key_id: {key_id} }}"),
        }
    }
}

impl AuthKey {
    /// A simple password key from text (truncated / zero padded to 8 bytes).
    pub fn simple(pw: &str) -> Self {
        let mut b = [0u8; 8];
        for (d, s) in b.iter_mut().zip(pw.as_bytes()) {
            *d = *s;
        }
        AuthKey::Simple(b)
    }
    /// The header AuType.
    pub fn autype(&self) -> u16 {
        match self {
            AuthKey::Null => 0,
            AuthKey::Simple(_) => 1,
            _ => 2,
        }
    }
    /// Length of the appended digest.
    pub fn digest_len(&self) -> usize {
        match self {
            AuthKey::Md5 { .. } => MD5_LEN,
            AuthKey::HmacSha256 { .. } => SHA256_LEN,
            _ => 0,
        }
    }
    /// The header authentication field this key produces for crypto sequence `seq`.
    pub fn field(&self, seq: u32) -> crate::packet::AuthField {
        use crate::packet::AuthField;
        match self {
            AuthKey::Null => AuthField::Null([0; 8]),
            AuthKey::Simple(p) => AuthField::Simple(*p),
            AuthKey::Md5 { key_id, .. } | AuthKey::HmacSha256 { key_id, .. } => AuthField::Crypto {
                key_id: *key_id,
                auth_len: self.digest_len() as u8,
                seq,
            },
        }
    }
}

fn md5_digest(packet: &[u8], key: &[u8]) -> [u8; MD5_LEN] {
    let mut k = [0u8; 16];
    for (d, s) in k.iter_mut().zip(key) {
        *d = *s;
    }
    let mut h = Md5::new();
    h.update(packet);
    h.update(k);
    h.finalize().into()
}

fn hmac_digest(packet: &[u8], key: &[u8]) -> [u8; SHA256_LEN] {
    // RFC 5709 §3.3: keys longer than L (32) are first hashed; shorter ones are zero padded,
    // which HMAC's own padding to the block size already does.
    let hashed;
    let k: &[u8] = if key.len() > SHA256_LEN {
        hashed = Sha256::digest(key);
        &hashed
    } else {
        key
    };
    let mut mac = match Hmac::<Sha256>::new_from_slice(k) {
        Ok(m) => m,
        Err(_) => return [0; SHA256_LEN], // HMAC accepts any key length; unreachable
    };
    mac.update(packet);
    let mut apad = [0u8; SHA256_LEN];
    for c in apad.chunks_exact_mut(4) {
        c.copy_from_slice(&APAD_WORD);
    }
    mac.update(&apad);
    mac.finalize().into_bytes().into()
}

/// Signs a packet emitted by [`crate::packet::Repr::emit`] (whose auth field must already
/// be `key.field(seq)`): fills the checksum for AuType 0/1 or appends the digest for AuType 2.
pub fn sign(bytes: &mut Vec<u8>, key: &AuthKey) {
    if bytes.len() < HEADER_LEN {
        return;
    }
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]])).min(bytes.len());
    bytes.truncate(len);
    match key {
        AuthKey::Null | AuthKey::Simple(_) => {
            bytes[field::CHECKSUM].copy_from_slice(&[0, 0]);
            let c = internet_checksum(&[&bytes[..16], &bytes[HEADER_LEN..]]);
            bytes[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        AuthKey::Md5 { key: k, .. } => {
            bytes[field::CHECKSUM].copy_from_slice(&[0, 0]);
            let d = md5_digest(bytes, k);
            bytes.extend_from_slice(&d);
        }
        AuthKey::HmacSha256 { key: k, .. } => {
            bytes[field::CHECKSUM].copy_from_slice(&[0, 0]);
            let d = hmac_digest(bytes, k);
            bytes.extend_from_slice(&d);
        }
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies the checksum and authentication of a received packet whose header fits and whose
/// length field is within `bytes` (see [`crate::packet::Packet::check_len`]).
///
/// `last_seq` is the last cryptographic sequence number accepted from this neighbor: a lower
/// one is a replay (an equal one is allowed, §D.5.2). Returns the packet's cryptographic
/// sequence number for AuType 2.
pub fn verify(
    bytes: &[u8],
    key: &AuthKey,
    last_seq: Option<u32>,
) -> Result<Option<u32>, DropReason> {
    if bytes.len() < HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    if len < HEADER_LEN || len > bytes.len() {
        return Err(DropReason::BadLength);
    }
    let autype = u16::from_be_bytes([bytes[14], bytes[15]]);
    if autype != key.autype() {
        return Err(DropReason::AuthTypeMismatch);
    }
    let auth = &bytes[field::AUTH];
    match key {
        AuthKey::Null | AuthKey::Simple(_) => {
            if internet_checksum(&[&bytes[..16], &bytes[HEADER_LEN..len]]) != 0 {
                return Err(DropReason::BadChecksum);
            }
            if let AuthKey::Simple(p) = key {
                if !ct_eq(auth, p) {
                    return Err(DropReason::AuthFailure);
                }
            }
            Ok(None)
        }
        AuthKey::Md5 { key_id, key: k } | AuthKey::HmacSha256 { key_id, key: k } => {
            let dlen = key.digest_len();
            if auth[2] != *key_id || usize::from(auth[3]) != dlen {
                return Err(DropReason::AuthFailure);
            }
            let seq = u32::from_be_bytes([auth[4], auth[5], auth[6], auth[7]]);
            let Some(digest) = bytes.get(len..len + dlen) else {
                return Err(DropReason::AuthFailure);
            };
            let ok = match key {
                AuthKey::Md5 { .. } => ct_eq(&md5_digest(&bytes[..len], k), digest),
                _ => ct_eq(&hmac_digest(&bytes[..len], k), digest),
            };
            if !ok {
                return Err(DropReason::AuthFailure);
            }
            if matches!(last_seq, Some(l) if seq < l) {
                return Err(DropReason::ReplayedSequence);
            }
            Ok(Some(seq))
        }
    }
}
