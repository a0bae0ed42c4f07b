//! TCP: parse, option iteration, emit and re-parse; NAT helpers, MSS clamp and TOA
//! insertion keep the segment valid.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use wire::{
    insert_tcp_option, TcpOption, TcpOptions, TcpOptionsIter, TcpPacket, TcpRepr, TcpSeqNumber,
};

const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const D: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    for o in TcpOptionsIter::new(data) {
        let _ = o;
    }
    let Ok(p) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = TcpRepr::parse(&p, S, D);
    let opts: Result<Vec<TcpOption>, _> = p.options_iter().collect();
    let mut fixed = data.to_vec();
    // The three reserved bits are not part of the representation (sent as zero).
    fixed[12] &= 0xf1;
    TcpPacket::new_unchecked(&mut fixed[..]).fill_checksum(S, D);
    let parsed = TcpRepr::parse(&TcpPacket::new_checked(&fixed[..]).unwrap(), S, D);
    match (&opts, &parsed) {
        (Ok(_), Err(e)) => panic!("options iterate but repr fails: {e}"),
        (Err(_), Ok(_)) => panic!("options fail but repr parses"),
        _ => {}
    }
    let Ok(repr) = parsed else { return };
    // Options re-encoded from the iterator give the same area (padding aside).
    let list: Vec<TcpOption> = opts.unwrap();
    let reenc = TcpOptions::from_options(&list).expect("re-encode options");
    assert_eq!(
        TcpOptions::from_bytes(reenc.as_bytes())
            .unwrap()
            .iter()
            .count(),
        reenc.iter().count()
    );
    let mut out = fixed.clone();
    out[..repr.header_len()].fill(0);
    repr.emit(&mut TcpPacket::new_unchecked(&mut out[..]), S, D)
        .expect("emit");
    assert_eq!(out, fixed);
    assert_eq!(
        TcpRepr::parse(&TcpPacket::new_checked(&out[..]).unwrap(), S, D).unwrap(),
        repr
    );
    // In-place NAT.
    let mut p = TcpPacket::new_unchecked(&mut out[..]);
    p.rewrite_src_port(5000);
    p.rewrite_seq_number(p.seq_number() + 12345);
    p.rewrite_ack_number(TcpSeqNumber(7));
    p.update_checksum_for_addr(S, Ipv4Addr::new(192, 168, 7, 188));
    let _ = p.clamp_mss(536);
    assert!(p.verify_checksum(Ipv4Addr::new(192, 168, 7, 188), D));
    // TOA insertion.
    let len = fixed.len();
    fixed.resize(len + 8, 0);
    if let Ok(n) = insert_tcp_option(&mut fixed, len, &TcpOption::Toa { port: 1, addr: S }) {
        let mut p = TcpPacket::new_unchecked(&mut fixed[..n]);
        p.fill_checksum(S, D);
        let r = TcpRepr::parse(&TcpPacket::new_checked(&fixed[..n]).unwrap(), S, D)
            .expect("after toa insert");
        assert_eq!(r.options.toa().map(|a| *a.ip()), Some(S));
        assert_eq!(r.payload_len, repr.payload_len);
    }
});
