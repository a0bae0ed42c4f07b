//! ICMPv4: parse (as is and with the checksum fixed), emit and re-parse; quoted header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wire::{Icmpv4Packet, Icmpv4Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Icmpv4Packet::new_checked(data) else {
        return;
    };
    let _ = Icmpv4Repr::parse(&p);
    let _ = p
        .invoking_packet()
        .map(|q| (q.src_addr(), q.payload().len()));
    let _ = p.invoking_ports();
    let mut fixed = data.to_vec();
    Icmpv4Packet::new_unchecked(&mut fixed[..]).fill_checksum();
    let Ok(repr) = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&fixed[..]).unwrap()) else {
        return;
    };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
        .expect("emit of a parsed message");
    let again = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&out[..]).unwrap()).expect("re-parse");
    assert_eq!(again, repr);
});
