//! The Internet checksum (RFC 1071), used by both VRRP versions.

/// Adds `data` to a running one's complement sum (not yet folded).
///
/// Bytes are taken as big-endian 16-bit words; an odd trailing byte is padded with zero.
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    // A u64 cannot overflow for any slice that fits in memory (2^48 words of 0xffff).
    let mut wide = u64::from(acc);
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        // chunks_exact(2) yields exactly two bytes.
        if let [hi, lo] = c {
            wide += u64::from(u16::from_be_bytes([*hi, *lo]));
        }
    }
    if let [last] = chunks.remainder() {
        wide += u64::from(*last) << 8;
    }
    while wide > 0xffff {
        wide = (wide & 0xffff) + (wide >> 16);
    }
    // Folded to at most 0xffff above.
    wide as u32
}

/// Folds a running sum and returns its one's complement: the value to put in a checksum field.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves acc <= 0xffff.
    !(acc as u16)
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn data_with_its_checksum_sums_to_zero() {
        let mut data = [0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x00, 0x00, 0x01, 0x02];
        let c = checksum(&data);
        data[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn long_input_does_not_overflow() {
        let data = vec![0xffu8; 200_000];
        assert_eq!(checksum(&data), 0);
    }
}
