//! VRRP: decode arbitrary bytes (as v2 and v3, to a fixed source and destination); on
//! success emit, compare with the input and re-parse to the same representation.
#![no_main]
use core::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use vrrp::{VrrpPacket, VrrpRepr};

const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

fuzz_target!(|data: &[u8]| {
    let Ok(p) = VrrpPacket::new_checked(data) else { return };
    // Getters never panic, whatever the fields say.
    let _ = (p.version(), p.vrid(), p.priority(), p.count(), p.max_adver_int(), p.auth_data());
    let Ok(repr) = VrrpRepr::parse(&p, SRC, DST) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut VrrpPacket::new_unchecked(&mut out[..]), SRC, DST)
        .expect("emit of a parsed packet");
    let again = VrrpRepr::parse(&VrrpPacket::new_checked(&out[..]).unwrap(), SRC, DST).unwrap();
    assert_eq!(again, repr);
    // Byte-identical except: the checksum field (0x0000 and 0xffff both verify for the
    // same message, and re-parsing above verified ours), v2 auth data with auth type 0
    // (ignored on receipt, sent as zero) and the v3 reserved bits (sent as zero).
    let n = repr.buffer_len();
    assert_eq!(&out[..4], &data[..4]);
    if data[0] >> 4 == 3 {
        assert_eq!(out[4], data[4] & 0x0f);
        assert_eq!(out[5], data[5]);
        assert_eq!(&out[8..n], &data[8..n]);
    } else if data[4] == 1 {
        assert_eq!(&out[4..6], &data[4..6]);
        assert_eq!(&out[8..n], &data[8..n]);
    } else {
        assert_eq!(&out[4..6], &data[4..6]);
        assert_eq!(&out[8..n - 8], &data[8..n - 8]);
        assert_eq!(&out[n - 8..n], &[0u8; 8]);
    }
});
