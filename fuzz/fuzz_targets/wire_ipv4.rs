//! IPv4: parse as is and with the checksum fixed; emit and re-parse; NAT helpers keep
//! the checksum valid.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use wire::{Ipv4Packet, Ipv4Repr};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Ipv4Packet::new_checked_truncated(data) {
        let _ = (p.payload(), p.options(), p.verify_checksum());
    }
    let Ok(p) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = Ipv4Repr::parse(&p);
    let mut fixed = data.to_vec();
    Ipv4Packet::new_unchecked(&mut fixed[..]).fill_checksum();
    let Ok(repr) = Ipv4Repr::parse(&Ipv4Packet::new_checked(&fixed[..]).unwrap()) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
        .expect("emit of a parsed header");
    let again = Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap()).expect("re-parse");
    assert_eq!(again, repr);
    let mut p = Ipv4Packet::new_unchecked(&mut fixed[..]);
    p.rewrite_src_addr(Ipv4Addr::new(192, 168, 7, 188));
    p.rewrite_dst_addr(Ipv4Addr::new(192, 168, 7, 27));
    let _ = p.decrement_ttl();
    assert!(p.verify_checksum(), "incremental update broke the checksum");
});
