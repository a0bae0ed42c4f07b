//! probe's PING_CHECK reply parser on arbitrary bytes, as each socket kind returns
//! them: never panics, and a reply it accepts points into the input it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;
use probe::ping::{parse_reply, Received};

fuzz_target!(|data: &[u8]| {
    for kind in [Received::Icmpv4, Received::Ipv4, Received::Icmpv6] {
        let Ok(r) = parse_reply(data, kind) else {
            continue;
        };
        // The data is the tail of the echo message, after its 8-byte header.
        let start = r.data.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start >= 8 && start + r.data.len() <= data.len(), "{kind:?}");
        if kind != Received::Ipv4 {
            assert_eq!(r.data, &data[8..]);
            assert_eq!(r.seq_no, u16::from_be_bytes([data[6], data[7]]));
        }
    }
});
