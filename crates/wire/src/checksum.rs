//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are kept in ones' complement arithmetic: [`data`] returns the folded 16-bit sum
//! (not yet complemented); a header's checksum field holds `!sum`. A buffer that includes
//! a correct checksum field sums to `0xffff`.

use std::net::Ipv4Addr;

use crate::ip::IpProtocol;

/// Adds `v` to the 64-bit ones' complement accumulator `acc` (end-around carry).
#[inline(always)]
fn add64(acc: u64, v: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(v);
    s + u64::from(carry)
}

/// Folds a 64-bit ones' complement accumulator to 16 bits.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    // `acc` now fits in 16 bits.
    acc as u16
}

/// Adds the big-endian 16-bit words of `data` (a trailing odd byte is padded with zero)
/// to the 64-bit accumulator `acc`, without folding.
#[inline]
pub fn accumulate(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        let mut words = c.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            acc = add64(acc, u64::from_be_bytes(b));
        }
    }
    let mut rest = chunks.remainder().chunks_exact(8);
    for w in &mut rest {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        acc = add64(acc, u64::from_be_bytes(b));
    }
    let mut tail = rest.remainder().chunks_exact(2);
    for w in &mut tail {
        acc = add64(acc, u64::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = tail.remainder() {
        acc = add64(acc, u64::from(*last) << 8);
    }
    acc
}

/// The folded ones' complement sum of `data` (RFC 1071), not complemented.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// Ones' complement sum of several partial sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().fold(0u64, |acc, s| acc + u64::from(*s)))
}

/// The folded sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for a transport
/// segment of `length` bytes.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u32) -> u16 {
    let acc = u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(u8::from(protocol))
        + u64::from(length);
    fold(acc)
}

/// The checksum field value for a transport segment: `!(pseudo-header + segment)`.
#[inline]
pub fn transport_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, segment: &[u8]) -> u16 {
    // Segments longer than u32::MAX cannot be described by IPv4; the length saturates.
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let acc = accumulate(
        u64::from(pseudo_header_v4(src, dst, protocol, len)),
        segment,
    );
    !fold(acc)
}

/// Incrementally updates checksum field `hc` after a 16-bit word changed from `old` to
/// `new` (RFC 1624 §3, eqn. 3: `HC' = ~(~HC + ~m + m')`).
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

/// Incrementally updates checksum field `hc` after a 32-bit field (two words, e.g. an
/// IPv4 address or a TCP sequence number) changed from `old` to `new` (RFC 1624 eqn. 3).
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!hc)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from((new >> 16) as u16)
        + u64::from(new as u16);
    !fold(acc)
}

/// [`update32`] for an IPv4 address change (header or pseudo-header).
#[inline]
pub fn update_addr(hc: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(hc, u32::from(old), u32::from(new))
}

/// Incremental update for a UDP checksum: 0 means "no checksum" and stays 0; a computed 0
/// is sent as `0xffff` (RFC 768).
#[inline]
pub fn update_udp32(hc: u16, old: u32, new: u32) -> u16 {
    if hc == 0 {
        return 0;
    }
    match update32(hc, old, new) {
        0 => 0xffff,
        c => c,
    }
}

/// [`update_udp32`] for a 16-bit field (a port).
#[inline]
pub fn update_udp16(hc: u16, old: u16, new: u16) -> u16 {
    if hc == 0 {
        return 0;
    }
    match update16(hc, old, new) {
        0 => 0xffff,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Plain RFC 1071 reference: add 16-bit words into a u32 and fold.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12]), 0x1200);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[]), 0);
    }

    #[test]
    fn ipv4_header_from_lab_verifies() {
        let frame = &crate::testdata::ICMP_ECHO_REQUEST;
        assert_eq!(data(&frame[14..34]), 0xffff);
    }

    #[test]
    fn incremental_edge_results() {
        // A header whose words sum to 0xfffe has checksum 0x0001; changing a word by +1
        // makes the sum 0xffff and the checksum 0x0000 (never 0xffff, RFC 1624 §3).
        let mut words = [0xfff0u16, 0x000e, 0x0000];
        let sum = |w: &[u16; 3]| fold(w.iter().map(|x| u64::from(*x)).sum());
        words[2] = !sum(&words);
        assert_eq!(words[2], 0x0001);
        let hc = update16(words[2], 0x000e, 0x000f);
        assert_eq!(hc, 0x0000);
        words[1] = 0x000f;
        words[2] = 0;
        assert_eq!(!sum(&words), hc);
        // And back again, starting from a checksum field of 0x0000.
        assert_eq!(update16(0x0000, 0x000f, 0x000e), 0x0001);
        // RFC 1624 §4's worked example: other octets sum to 0xcd7a, m 0x5555 -> 0x3285,
        // HC 0xdd2f becomes 0x0000 (eqn. 2 of RFC 1141 would give 0xffff).
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(update_udp16(0, 1, 2), 0);
        assert_eq!(update_udp16(0x0001, 0x000e, 0x000f), 0xffff);
    }

    proptest! {
        #[test]
        fn fast_sum_matches_reference(d in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(data(&d), reference(&d));
        }

        #[test]
        fn update16_equals_recompute(
            mut d in proptest::collection::vec(any::<u8>(), 6..64),
            idx in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            // Bytes 0..2 are the checksum field; keep a nonzero constant word (like a
            // protocol number) so the data is never all zero.
            d.truncate(d.len() & !1);
            d[2] = 0x45;
            let words = d.len() / 2;
            let w = (2 + idx.index(words - 2)) * 2;
            d[0] = 0; d[1] = 0;
            let hc = !data(&d);
            let old = u16::from_be_bytes([d[w], d[w + 1]]);
            d[w..w + 2].copy_from_slice(&new.to_be_bytes());
            let full = !data(&d);
            prop_assert_eq!(update16(hc, old, new), full);
        }

        #[test]
        fn update32_equals_recompute(
            mut d in proptest::collection::vec(any::<u8>(), 8..64),
            idx in any::<prop::sample::Index>(),
            new in any::<u32>(),
        ) {
            d.truncate(d.len() & !1);
            d[2] = 0x45;
            let words = d.len() / 2;
            // A 32-bit field at an even offset past the first two words.
            let w = (2 + idx.index(words - 3)) * 2;
            d[0] = 0; d[1] = 0;
            let hc = !data(&d);
            let old = u32::from_be_bytes([d[w], d[w + 1], d[w + 2], d[w + 3]]);
            d[w..w + 4].copy_from_slice(&new.to_be_bytes());
            let full = !data(&d);
            prop_assert_eq!(update32(hc, old, new), full);
        }

        #[test]
        fn incremental_chain_verifies(
            mut d in proptest::collection::vec(any::<u8>(), 8..40),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u16>()), 1..20),
        ) {
            // Many successive updates (crossing the 0x0000/0xffff results) still verify.
            d.truncate(d.len() & !1);
            d[2] = 0x11;
            d[0] = 0; d[1] = 0;
            let mut hc = !data(&d);
            for (i, new) in edits {
                let w = (2 + i.index(d.len() / 2 - 2)) * 2;
                let old = u16::from_be_bytes([d[w], d[w + 1]]);
                d[w..w + 2].copy_from_slice(&new.to_be_bytes());
                hc = update16(hc, old, new);
            }
            d[0..2].copy_from_slice(&hc.to_be_bytes());
            prop_assert_eq!(data(&d), 0xffff);
        }
    }
}
