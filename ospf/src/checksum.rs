//! Checksums used by OSPFv2: the Internet checksum over packets (RFC 2328 §D.4.1, RFC 1071)
//! and the Fletcher checksum over LSAs (§12.1.7, ISO 8473 annex C).

/// Internet checksum of the concatenation of `parts` (each part must have even length except
/// possibly the last): the value for the checksum field, computed with `wire::checksum`.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let acc = parts
        .iter()
        .fold(0, |acc, p| wire::checksum::accumulate(acc, p));
    !wire::checksum::fold(acc)
}

/// Offset of the checksum inside an LSA, counted from the LSA's first byte.
pub const LSA_CHECKSUM_OFFSET: usize = 16;

fn fletcher_sums(data: &[u8], skip: Option<usize>) -> (i64, i64) {
    // Reduce modulo 255 once per block: within 4096 bytes c1 stays below 2^43.
    const BLOCK: usize = 4096;
    let mut c0: u64 = 0;
    let mut c1: u64 = 0;
    for (bi, block) in data.chunks(BLOCK).enumerate() {
        let base = bi * BLOCK;
        for (j, &b) in block.iter().enumerate() {
            let i = base + j;
            let b = match skip {
                Some(off) if i == off || i == off + 1 => 0,
                _ => u64::from(b),
            };
            c0 += b;
            c1 += c0;
        }
        c0 %= 255;
        c1 %= 255;
    }
    (c0 as i64, c1 as i64)
}

/// Fletcher checksum of a whole LSA (`lsa` starts at the LS age field). The age field is
/// excluded and the checksum field is taken as zero, per §12.1.7. Returns 0 for buffers too
/// short to hold an LSA header.
pub fn lsa_checksum(lsa: &[u8]) -> u16 {
    let Some(data) = lsa.get(2..) else { return 0 };
    let off = LSA_CHECKSUM_OFFSET - 2;
    if data.len() < off + 2 {
        return 0;
    }
    let (c0, c1) = fletcher_sums(data, Some(off));
    let len = data.len() as i64;
    let mut x = ((len - off as i64 - 1) * c0 - c1).rem_euclid(255);
    if x == 0 {
        x = 255;
    }
    let mut y = 510 - c0 - x;
    if y > 255 {
        y -= 255;
    }
    ((x as u16) << 8) | (y as u16 & 0xff)
}

/// True when the LSA's stored Fletcher checksum is valid (both running sums are zero
/// modulo 255 over the LSA minus its age field, §12.1.7). A zero checksum is invalid.
pub fn lsa_checksum_valid(lsa: &[u8]) -> bool {
    let Some(data) = lsa.get(2..) else {
        return false;
    };
    if data.len() < LSA_CHECKSUM_OFFSET {
        return false;
    }
    let stored = [data[14], data[15]];
    if stored == [0, 0] {
        return false;
    }
    let (c0, c1) = fletcher_sums(data, None);
    c0 == 0 && c1 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internet_checksum_rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2, checksum 0x220d.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&d]), 0x220d);
        assert_eq!(internet_checksum(&[&d[..4], &d[4..]]), 0x220d);
    }

    #[test]
    fn fletcher_round_trip_and_detects_change() {
        // A router-LSA header + one stub link (body made up, checksum computed here).
        let mut lsa = vec![
            0x00, 0x01, 0x02, 0x01, 10, 0, 0, 1, 10, 0, 0, 1, 0x80, 0, 0, 1, 0, 0, 0, 36, 0, 0, 0,
            1, 192, 0, 2, 1, 255, 255, 255, 255, 3, 0, 0, 10,
        ];
        let c = lsa_checksum(&lsa);
        lsa[16..18].copy_from_slice(&c.to_be_bytes());
        assert!(lsa_checksum_valid(&lsa));
        // age is not covered
        lsa[0] = 0x0e;
        assert!(lsa_checksum_valid(&lsa));
        lsa[30] ^= 1;
        assert!(!lsa_checksum_valid(&lsa));
    }

    #[test]
    fn fletcher_long_lsa_matches_bytewise_reference() {
        // 10 000-byte pseudo-random LSA: block reduction equals per-byte reduction
        let mut x: u32 = 12345;
        let mut lsa: Vec<u8> = (0..10_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let (mut c0, mut c1) = (0u32, 0u32);
        for (i, &b) in lsa[2..].iter().enumerate() {
            let b = if i == 14 || i == 15 { 0 } else { u32::from(b) };
            c0 = (c0 + b) % 255;
            c1 = (c1 + c0) % 255;
        }
        assert_eq!(
            fletcher_sums(&lsa[2..], Some(14)),
            (i64::from(c0), i64::from(c1))
        );
        let c = lsa_checksum(&lsa);
        lsa[16..18].copy_from_slice(&c.to_be_bytes());
        assert!(lsa_checksum_valid(&lsa));
    }
}
