//! Ethernet II / 802.1Q / QinQ: parse, then emit and re-parse to the same header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wire::{EthernetFrame, EthernetRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = (frame.vlan(), frame.inner_vlan(), frame.ethertype());
    let Ok(repr) = EthernetRepr::parse(&frame) else {
        return;
    };
    assert_eq!(repr.buffer_len(), frame.header_len());
    let mut out = data.to_vec();
    out[..repr.buffer_len()].fill(0);
    repr.emit(&mut EthernetFrame::new_unchecked(&mut out[..]))
        .expect("emit of a parsed header");
    assert_eq!(out, data, "re-emitted header differs");
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&out[..]).unwrap()).unwrap();
    assert_eq!(again, repr);
});
