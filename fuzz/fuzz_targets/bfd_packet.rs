//! BFD control packets: parse arbitrary bytes (never panic); on success emit, compare with
//! the input, re-parse to the same repr; also feed the bytes to a system with one
//! authenticated and one plain session.
#![no_main]
use bfd::auth::{self, AuthKey};
use bfd::{AuthType, Bfd, BfdPacket, BfdRepr, Config, SessionParams};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::time::Duration;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = BfdPacket::new_checked(data) {
        if let Ok(repr) = BfdRepr::parse(&p) {
            let out = repr.to_vec();
            assert_eq!(out.len(), repr.buffer_len());
            let again = BfdRepr::parse(&BfdPacket::new_checked(&out[..]).expect("emitted length"))
                .expect("re-parse");
            assert_eq!(again, repr);
            // Reserved bits aside, the emitted bytes equal the input's Length bytes.
            let len = usize::from(p.length());
            if len == out.len() && data[24..len].iter().zip(&out[24..]).all(|(a, b)| a == b) {
                assert_eq!(&out[..], &data[..len]);
            }
            if let Some(a) = &repr.auth {
                let key = AuthKey {
                    auth_type: AuthType::KeyedSha1,
                    key_id: 1,
                    secret: b"k".to_vec(),
                };
                let _ = auth::verify(data, a, &key);
            }
        }
    }
    let mut bfd = Bfd::new(Config { seed: 1 });
    let key = AuthKey {
        auth_type: AuthType::MeticulousKeyedMd5,
        key_id: 1,
        secret: b"k".to_vec(),
    };
    let _ = bfd.add_session(B, A, 1, SessionParams::default());
    let _ = bfd.add_session(
        B,
        A,
        2,
        SessionParams {
            auth: Some(key),
            ..SessionParams::default()
        },
    );
    bfd.handle_timeout(Duration::ZERO);
    for ifx in [1, 2] {
        let _ = bfd.handle_packet(Duration::from_millis(5), B, A, ifx, 255, data);
    }
    bfd.handle_timeout(Duration::from_secs(10));
    while bfd.poll_transmit().is_some() {}
    while bfd.poll_event().is_some() {}
});
