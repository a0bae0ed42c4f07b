//! UDP: parse (as is and with the checksum fixed), emit and re-parse; port rewrites keep
//! the checksum valid.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use wire::{UdpPacket, UdpRepr};

const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const D: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(p) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = UdpRepr::parse(&p, S, D);
    let len = usize::from(p.len());
    let mut fixed = data[..len].to_vec();
    UdpPacket::new_unchecked(&mut fixed[..]).fill_checksum(S, D);
    let repr = UdpRepr::parse(&UdpPacket::new_checked(&fixed[..]).unwrap(), S, D)
        .expect("fixed checksum parses");
    let mut out = fixed.clone();
    out[..8].fill(0);
    repr.emit(&mut UdpPacket::new_unchecked(&mut out[..]), S, D)
        .expect("emit");
    assert_eq!(out, fixed);
    let mut p = UdpPacket::new_unchecked(&mut fixed[..]);
    p.rewrite_src_port(1);
    p.rewrite_dst_port(2);
    p.update_checksum_for_addr(D, Ipv4Addr::new(192, 168, 0, 9));
    assert!(p.verify_checksum(S, Ipv4Addr::new(192, 168, 0, 9)));
});
