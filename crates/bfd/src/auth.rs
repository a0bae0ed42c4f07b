//! BFD authentication (RFC 5880 §6.7): computing and checking the simple password,
//! keyed MD5 and keyed SHA1 sections, and the sequence-number window.

use md5::{Digest as _, Md5};
use sha1::Sha1;

use crate::packet::{field, AuthRepr, AuthType, BfdPacket, MAX_PASSWORD_LEN};
use crate::DropReason;

/// A configured authentication key (one per session; key rollover is not supported).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey {
    /// Authentication type used on transmit and required on receive.
    pub auth_type: AuthType,
    /// Key ID sent and required.
    pub key_id: u8,
    /// Password (simple: 1–16 bytes) or secret key (MD5: up to 16 bytes, SHA1: up to 20
    /// bytes; shorter keys are zero-padded as §6.7.3/§6.7.4 prescribe).
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthKey")
            .field("auth_type", &self.auth_type)
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl AuthKey {
    /// Whether the secret's length fits the type.
    pub fn is_valid(&self) -> bool {
        let max = match self.auth_type {
            AuthType::SimplePassword => MAX_PASSWORD_LEN,
            t => t.digest_len(),
        };
        !self.secret.is_empty() && self.secret.len() <= max
    }

    /// The authentication section to put in an outgoing packet, with a zero digest for
    /// keyed types (fill it with [`sign`] after emitting).
    pub fn section(&self, sequence: u32) -> Option<AuthRepr> {
        match self.auth_type {
            AuthType::SimplePassword => AuthRepr::simple(self.key_id, &self.secret),
            t => AuthRepr::keyed(t, self.key_id, sequence),
        }
    }
}

/// Digest of `bytes` (the whole packet, digest field holding the padded key) for `t`.
fn digest(t: AuthType, bytes: &[u8]) -> [u8; 20] {
    let mut out = [0u8; 20];
    match t {
        AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => {
            out[..16].copy_from_slice(&Md5::digest(bytes));
        }
        AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => {
            out.copy_from_slice(&Sha1::digest(bytes));
        }
        AuthType::SimplePassword => {}
    }
    out
}

/// Fill in the digest of an emitted keyed packet (§6.7.3 / §6.7.4 transmission: the
/// digest field is set to the zero-padded key, the hash is computed over the whole
/// packet and written into the digest field). A no-op for the simple password.
pub fn sign(buf: &mut [u8], key: &AuthKey) -> Result<(), DropReason> {
    if !key.auth_type.is_keyed() {
        return Ok(());
    }
    let n = key.auth_type.digest_len();
    let len = usize::from(BfdPacket::new_checked(&buf[..])?.length());
    let packet = buf.get_mut(..len).ok_or(DropReason::Truncated)?;
    let dig = packet
        .get_mut(field::AUTH_DIGEST..field::AUTH_DIGEST + n)
        .ok_or(DropReason::BadAuthLength)?;
    dig.fill(0);
    let k = key.secret.len().min(n);
    dig[..k].copy_from_slice(&key.secret[..k]);
    let d = digest(key.auth_type, packet);
    packet[field::AUTH_DIGEST..field::AUTH_DIGEST + n].copy_from_slice(&d[..n]);
    Ok(())
}

/// Check the authentication section of a received packet against `key`: type, key ID and
/// password or digest (§6.7.2–§6.7.4). The sequence window is checked separately by
/// [`seq_in_window`]. `bytes` is the received packet (at least Length bytes).
pub fn verify(bytes: &[u8], auth: &AuthRepr, key: &AuthKey) -> Result<(), DropReason> {
    if auth.auth_type != key.auth_type {
        return Err(DropReason::AuthTypeMismatch);
    }
    if auth.key_id != key.key_id {
        return Err(DropReason::AuthKeyIdMismatch);
    }
    if !auth.auth_type.is_keyed() {
        return if auth.data() == key.secret.as_slice() {
            Ok(())
        } else {
            Err(DropReason::AuthFailed)
        };
    }
    let n = auth.auth_type.digest_len();
    let len = usize::from(BfdPacket::new_checked(bytes)?.length());
    let mut copy = bytes.get(..len).ok_or(DropReason::Truncated)?.to_vec();
    let dig = copy
        .get_mut(field::AUTH_DIGEST..field::AUTH_DIGEST + n)
        .ok_or(DropReason::BadAuthLength)?;
    dig.fill(0);
    let k = key.secret.len().min(n);
    dig[..k].copy_from_slice(&key.secret[..k]);
    let d = digest(auth.auth_type, &copy);
    // Constant-time comparison: fold the differences.
    let diff = d[..n]
        .iter()
        .zip(auth.data())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 && auth.data().len() == n {
        Ok(())
    } else {
        Err(DropReason::AuthFailed)
    }
}

/// The receive sequence window of §6.7.3/§6.7.4: with `known` last sequence `last`,
/// `seq` is accepted if it lies in `[last, last + 3 × detect_mult]` (keyed) or
/// `[last + 1, last + 3 × detect_mult]` (meticulous), in modulo-2³² arithmetic.
pub fn seq_in_window(auth_type: AuthType, last: u32, seq: u32, detect_mult: u8) -> bool {
    let lo = if auth_type.is_meticulous() { 1u32 } else { 0 };
    let hi = 3 * u32::from(detect_mult);
    let d = seq.wrapping_sub(last);
    d >= lo && d <= hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{BfdRepr, Diagnostic, State};

    fn repr(auth: Option<AuthRepr>) -> BfdRepr {
        BfdRepr {
            diag: Diagnostic::None,
            state: State::Down,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 1,
            your_discriminator: 0,
            desired_min_tx: 1_000_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 0,
            auth,
        }
    }

    #[test]
    fn sign_then_verify_each_keyed_type() {
        for t in [
            AuthType::KeyedMd5,
            AuthType::MeticulousKeyedMd5,
            AuthType::KeyedSha1,
            AuthType::MeticulousKeyedSha1,
        ] {
            let key = AuthKey {
                auth_type: t,
                key_id: 3,
                secret: b"s3cret".to_vec(),
            };
            let r = repr(key.section(42));
            let mut v = r.to_vec();
            sign(&mut v, &key).unwrap();
            let parsed = BfdRepr::parse(&BfdPacket::new_checked(&v[..]).unwrap()).unwrap();
            let a = parsed.auth.unwrap();
            assert_eq!(a.sequence, 42);
            verify(&v, &a, &key).unwrap();
            let wrong = AuthKey {
                secret: b"s3creT".to_vec(),
                ..key.clone()
            };
            assert_eq!(verify(&v, &a, &wrong), Err(DropReason::AuthFailed));
            let mut tampered = v.clone();
            tampered[2] = 4;
            let a2 = BfdRepr::parse(&BfdPacket::new_checked(&tampered[..]).unwrap())
                .unwrap()
                .auth
                .unwrap();
            assert_eq!(verify(&tampered, &a2, &key), Err(DropReason::AuthFailed));
            let other_id = AuthKey {
                key_id: 4,
                ..key.clone()
            };
            assert_eq!(
                verify(&v, &a, &other_id),
                Err(DropReason::AuthKeyIdMismatch)
            );
        }
    }

    #[test]
    fn simple_password() {
        let key = AuthKey {
            auth_type: AuthType::SimplePassword,
            key_id: 7,
            secret: b"pw".to_vec(),
        };
        let r = repr(key.section(0));
        let v = r.to_vec();
        let a = r.auth.unwrap();
        verify(&v, &a, &key).unwrap();
        let md5 = AuthKey {
            auth_type: AuthType::KeyedMd5,
            ..key.clone()
        };
        assert_eq!(verify(&v, &a, &md5), Err(DropReason::AuthTypeMismatch));
        let other = AuthKey {
            secret: b"pw2".to_vec(),
            ..key
        };
        assert_eq!(verify(&v, &a, &other), Err(DropReason::AuthFailed));
    }

    #[test]
    fn sequence_window() {
        assert!(seq_in_window(AuthType::KeyedMd5, 10, 10, 3));
        assert!(seq_in_window(AuthType::KeyedMd5, 10, 19, 3));
        assert!(!seq_in_window(AuthType::KeyedMd5, 10, 20, 3));
        assert!(!seq_in_window(AuthType::KeyedMd5, 10, 9, 3));
        assert!(!seq_in_window(AuthType::MeticulousKeyedSha1, 10, 10, 3));
        assert!(seq_in_window(AuthType::MeticulousKeyedSha1, 10, 11, 3));
        // Wrap-around.
        assert!(seq_in_window(AuthType::MeticulousKeyedMd5, u32::MAX, 2, 1));
        assert!(!seq_in_window(AuthType::MeticulousKeyedMd5, u32::MAX, 3, 1));
    }

    #[test]
    fn key_validity() {
        let k = |t, n| AuthKey {
            auth_type: t,
            key_id: 1,
            secret: vec![b'k'; n],
        };
        assert!(k(AuthType::SimplePassword, 16).is_valid());
        assert!(!k(AuthType::SimplePassword, 17).is_valid());
        assert!(k(AuthType::KeyedMd5, 16).is_valid());
        assert!(!k(AuthType::KeyedMd5, 17).is_valid());
        assert!(k(AuthType::KeyedSha1, 20).is_valid());
        assert!(!k(AuthType::KeyedSha1, 0).is_valid());
    }
}
