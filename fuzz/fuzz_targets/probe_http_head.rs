//! probe's HTTP response head parser on arbitrary bytes: never panics, a head it accepts
//! parses the same from its own bytes alone, and its body decodes from the rest.
#![no_main]
use libfuzzer_sys::fuzz_target;
use probe::http::{parse_head, BodyDecoder, MAX_HEAD};

fuzz_target!(|data: &[u8]| {
    let Ok(Some((head, used))) = parse_head(data) else {
        return;
    };
    assert!(used <= data.len() && used <= MAX_HEAD, "used {used}");
    // The head ends at a blank line: what follows cannot change it.
    assert_eq!(parse_head(&data[..used]), Ok(Some((head, used))));
    let mut decoder = BodyDecoder::new(head.framing);
    let mut body = 0usize;
    if decoder
        .feed(&data[used..], &mut |b| body += b.len())
        .is_ok()
    {
        assert!(body <= data.len() - used);
    }
});
