//! Property tests: every representable packet round-trips through emit and parse, and
//! signed packets verify only with their own key.

use bfd::auth::{self, AuthKey};
use bfd::{AuthRepr, AuthType, BfdPacket, BfdRepr, Diagnostic, State};
use proptest::prelude::*;

fn state() -> impl Strategy<Value = State> {
    (0u8..4).prop_map(State::from_bits)
}

fn auth_type() -> impl Strategy<Value = AuthType> {
    (1u8..6).prop_map(|c| AuthType::from_code(c).unwrap())
}

proptest! {
    #[test]
    fn emit_parse_roundtrip(
        diag in 0u8..32,
        st in state(),
        poll in any::<bool>(),
        cpi in any::<bool>(),
        demand in any::<bool>(),
        mult in 1u8..,
        my in 1u32..,
        your in any::<u32>(),
        tx in any::<u32>(),
        rx in any::<u32>(),
        echo in any::<u32>(),
        auth in proptest::option::of((auth_type(), any::<u8>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 1..=16))),
    ) {
        let your = if matches!(st, State::Up | State::Init) && your == 0 { 1 } else { your };
        let auth = auth.map(|(t, id, seq, pw)| match t {
            AuthType::SimplePassword => AuthRepr::simple(id, &pw).unwrap(),
            t => AuthRepr::keyed(t, id, seq).unwrap(),
        });
        let repr = BfdRepr {
            diag: Diagnostic::from_code(diag),
            state: st,
            poll,
            final_: !poll && cpi,
            cpi,
            demand,
            detect_mult: mult,
            my_discriminator: my,
            your_discriminator: your,
            desired_min_tx: tx,
            required_min_rx: rx,
            required_min_echo_rx: echo,
            auth,
        };
        let bytes = repr.to_vec();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        let parsed = BfdRepr::parse(&BfdPacket::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(parsed, repr);
        // Any truncation is an error, never a panic.
        for n in 0..bytes.len() {
            let r = BfdPacket::new_checked(&bytes[..n]).and_then(|p| BfdRepr::parse(&p));
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn signed_packets_verify_with_their_key_only(
        t in auth_type().prop_filter("keyed", |t| t.is_keyed()),
        secret in proptest::collection::vec(any::<u8>(), 1..=16),
        other in proptest::collection::vec(any::<u8>(), 1..=16),
        seq in any::<u32>(),
        flip in 0usize..48,
    ) {
        let key = AuthKey { auth_type: t, key_id: 9, secret: secret.clone() };
        let repr = BfdRepr {
            diag: Diagnostic::None,
            state: State::Down,
            poll: false,
            final_: false,
            cpi: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 77,
            your_discriminator: 0,
            desired_min_tx: 1_000_000,
            required_min_rx: 1_000_000,
            required_min_echo_rx: 0,
            auth: key.section(seq),
        };
        let mut bytes = repr.to_vec();
        auth::sign(&mut bytes, &key).unwrap();
        let a = BfdRepr::parse(&BfdPacket::new_checked(&bytes[..]).unwrap()).unwrap().auth.unwrap();
        prop_assert!(auth::verify(&bytes, &a, &key).is_ok());
        let wrong = AuthKey { secret: other.clone(), ..key.clone() };
        // Keys are zero-padded to the digest length (§6.7.3), so "k" and "k\0" are one key.
        let trim = |v: &[u8]| v.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        let same = other[..trim(&other)] == secret[..trim(&secret)];
        prop_assert_eq!(auth::verify(&bytes, &a, &wrong).is_ok(), same);
        // Flipping any bit outside the header fields the parser rejects breaks the digest.
        let i = flip % bytes.len();
        if !(1..4).contains(&i) && !(24..27).contains(&i) && i != 0 {
            bytes[i] ^= 0x01;
            if let Ok(r) = BfdPacket::new_checked(&bytes[..]).and_then(|p| BfdRepr::parse(&p)) {
                let a = r.auth.unwrap();
                prop_assert!(auth::verify(&bytes, &a, &key).is_err());
            }
        }
    }
}
