//! probe's HTTP body decoder: an arbitrary framing (length, chunked, until close, empty)
//! and arbitrary input fed whole and split at arbitrary points. Never panics, and the
//! split feed decodes exactly what the whole one does.
#![no_main]
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use probe::http::{BodyDecoder, BodyFraming, HttpError};

/// The body bytes, whether the decoder is done, and the first error, if any.
type Decoded = (Vec<u8>, bool, Option<HttpError>);

fn decode<'a>(framing: BodyFraming, pieces: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = BodyDecoder::new(framing);
    let mut body = Vec::new();
    for piece in pieces {
        if let Err(e) = decoder.feed(piece, &mut |b| body.extend_from_slice(b)) {
            return (body, decoder.is_done(), Some(e));
        }
    }
    let finish = decoder.finish().err();
    (body, decoder.is_done(), finish)
}

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let framing = match u.choose_index(4)? {
        0 => BodyFraming::Empty,
        // Mostly lengths the input can reach, sometimes any u64.
        1 if u.arbitrary::<bool>()? => BodyFraming::Length(u64::from(u.arbitrary::<u16>()?)),
        1 => BodyFraming::Length(u.arbitrary()?),
        2 => BodyFraming::Chunked,
        _ => BodyFraming::UntilClose,
    };
    let cuts: Vec<u16> = u.arbitrary()?;
    let input = u.take_rest();
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (input.len() + 1))
        .collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut at = 0;
    for p in points {
        pieces.push(&input[at..p]);
        at = p;
    }
    pieces.push(&input[at..]);

    let whole = decode(framing, [input]);
    let split = decode(framing, pieces.iter().copied());
    assert_eq!(whole.2, split.2, "error differs for {framing:?}");
    if whole.2.is_none() {
        assert_eq!(whole, split, "{framing:?}");
    } else {
        // On an error only what was handed out before it may differ, by how far the
        // last piece got.
        let (short, long) = if whole.0.len() <= split.0.len() {
            (&whole.0, &split.0)
        } else {
            (&split.0, &whole.0)
        };
        assert!(long.starts_with(short), "{framing:?}");
    }
    assert!(whole.0.len() <= input.len());
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});
