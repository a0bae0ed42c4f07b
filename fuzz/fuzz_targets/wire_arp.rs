//! ARP: parse, then emit and re-parse to the same representation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wire::{ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&p) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]))
        .expect("emit of a parsed packet");
    assert_eq!(&out[..], &data[..28]);
    assert_eq!(
        ArpRepr::parse(&ArpPacket::new_checked(&out[..]).unwrap()).unwrap(),
        repr
    );
});
