//! PROXY v2 (and version detection): parse, TLV iteration, emit, re-parse.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wire::{ProxyHeader, ProxyV2Repr};

fuzz_target!(|data: &[u8]| {
    let _ = ProxyHeader::parse(data);
    let Ok((repr, n)) = ProxyV2Repr::parse(data) else {
        return;
    };
    assert!(n <= data.len());
    for t in repr.tlvs() {
        let _ = t;
    }
    let mut out = vec![0u8; repr.buffer_len()];
    assert_eq!(repr.emit(&mut out).expect("emit of a parsed header"), n);
    assert_eq!(&out[..], &data[..n]);
    assert_eq!(ProxyV2Repr::parse(&out).expect("re-parse"), (repr, n));
});
