//! PROXY v1: parse, emit, re-parse to the same header and length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wire::{ProxyV1Repr, PROXY_V1_MAX_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok((repr, n)) = ProxyV1Repr::parse(data) else {
        return;
    };
    assert!(n <= data.len() && n <= PROXY_V1_MAX_LEN);
    let mut out = [0u8; PROXY_V1_MAX_LEN];
    let len = repr.emit(&mut out).expect("emit of a parsed header");
    assert_eq!(len, repr.buffer_len());
    assert_eq!(
        ProxyV1Repr::parse(&out[..len]).expect("re-parse"),
        (repr, len)
    );
});
