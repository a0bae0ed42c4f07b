//! Flow keys and the hash functions shared by the connection table, the schedulers and
//! ECMP selection.

use std::net::Ipv4Addr;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;

/// A directed IPv4 5-tuple, addresses and ports in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Source address.
    pub saddr: u32,
    /// Destination address.
    pub daddr: u32,
    /// Source port (ICMP: identifier).
    pub sport: u16,
    /// Destination port (ICMP: identifier).
    pub dport: u16,
    /// IP protocol number.
    pub proto: u8,
}

impl FlowKey {
    /// A key from addresses and ports.
    pub fn new(proto: u8, saddr: Ipv4Addr, sport: u16, daddr: Ipv4Addr, dport: u16) -> Self {
        FlowKey {
            saddr: u32::from(saddr),
            daddr: u32::from(daddr),
            sport,
            dport,
            proto,
        }
    }

    /// The same flow seen from the other side (source and destination swapped).
    pub fn reversed(&self) -> Self {
        FlowKey {
            saddr: self.daddr,
            daddr: self.saddr,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }

    /// A 64-bit hash of the whole tuple, seeded (two full 64-bit mixes). Used by the
    /// SYN cookies.
    #[inline]
    pub fn hash(&self, seed: u64) -> u64 {
        let a = (u64::from(self.saddr) << 32) | u64::from(self.daddr);
        let b =
            (u64::from(self.sport) << 32) | (u64::from(self.dport) << 16) | u64::from(self.proto);
        mix64(a ^ seed) ^ mix64(b.wrapping_add(seed.rotate_left(17)))
    }

    /// The connection table's hash of the tuple: one multiplication of the tuple folded
    /// into a word ([`table_word`](Self::table_word)) by a random odd multiplier drawn
    /// from `seed` ([`table_multiplier`](Self::table_multiplier)); the table takes the
    /// high bits of the product (multiply-shift, see `table_hash_mul`).
    #[inline]
    pub fn table_hash(&self, seed: u64) -> u64 {
        let (a, b) = self.packed();
        Self::table_hash_packed(a, b, seed)
    }

    /// The tuple as two words: (source address << 32 | destination address, source
    /// port << 32 | destination port << 16 | protocol). Two keys are equal exactly when
    /// their packed words are (the packing is injective), so a table can compare keys
    /// with two word compares and hash the words it already has.
    #[inline(always)]
    pub fn packed(&self) -> (u64, u64) {
        (
            (u64::from(self.saddr) << 32) | u64::from(self.daddr),
            (u64::from(self.sport) << 32) | (u64::from(self.dport) << 16) | u64::from(self.proto),
        )
    }

    /// [`table_hash`](Self::table_hash) of the key whose [`packed`](Self::packed)
    /// words are `(a, b)`.
    #[inline(always)]
    pub fn table_hash_packed(a: u64, b: u64, seed: u64) -> u64 {
        Self::table_hash_mul(Self::table_word(a, b), Self::table_multiplier(seed))
    }

    /// The packed tuple folded into one word: source address << 32 | destination
    /// address, xor destination port << 16 | source port, xor protocol << 56. For one
    /// service (destination address, port and protocol fixed) the fold is injective in
    /// what a client chooses, its source address and port (disjoint bits); for the
    /// replies of one real server (source address, port and protocol fixed) it is
    /// injective in the local address and port as long as the local addresses share
    /// their first 16 bits (the address's low half and the port occupy disjoint bits).
    /// Different protocols can share a word, at most one key per protocol.
    #[inline(always)]
    pub fn table_word(a: u64, b: u64) -> u64 {
        a ^ (b >> 32) ^ (b & 0xffff_0000) ^ ((b & 0xff) << 56)
    }

    /// The odd multiplier of [`table_hash_mul`](Self::table_hash_mul) for `seed` (a
    /// worker's random seed).
    #[inline]
    pub fn table_multiplier(seed: u64) -> u64 {
        mix64(seed ^ 0x6a09_e667_f3bc_c909) | 1
    }

    /// Multiply-shift (Dietzfelbinger et al. 1997): `word × mult` mod 2^64, whose high
    /// bits the table uses (its slot is the top bits of the high half). With `mult` a
    /// random odd number unknown to the sender, two different words land in the same
    /// slot of a 2^l-slot table with probability at most 2 / 2^l, whatever words a
    /// sender picks, so a flood of chosen tuples cannot pile up on one slot more than
    /// random traffic does.
    #[inline(always)]
    pub fn table_hash_mul(word: u64, mult: u64) -> u64 {
        word.wrapping_mul(mult)
    }

    /// A symmetric-agnostic flow hash for ECMP next-hop selection (direction matters).
    #[inline]
    pub fn ecmp_hash(&self) -> u32 {
        let a = (u64::from(self.saddr) << 32) | u64::from(self.daddr);
        let b = (u64::from(self.sport) << 16) | u64::from(self.dport);
        let h = (a ^ b.rotate_left(40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as u32 ^ (h as u32)
    }
}

/// A fast `Hasher` for small integer keys (addresses, ids) in tables the packet path
/// reads; not DoS-resistant, so only for keys the control plane chooses or bounded tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(8) ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0 = (self.0.rotate_left(16) ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(32) ^ u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// `BuildHasher` for [`FastHasher`].
pub type FastBuild = std::hash::BuildHasherDefault<FastHasher>;

/// The splitmix64 finalizer: a fast, well-distributed 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Linux `hash_32`: multiply by the 32-bit golden ratio and keep the top `bits` bits.
#[inline]
pub fn hash_32(val: u32, bits: u32) -> u32 {
    let bits = bits.clamp(1, 32);
    (val.wrapping_mul(0x61C8_8647)) >> (32 - bits)
}

/// A tiny deterministic random generator (xorshift64*) for schedulers that need one
/// (`twos`). Seeded by the caller; never reads the clock or the thread RNG.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from a seed (a zero seed is replaced by a fixed non-zero constant).
    pub fn new(seed: u64) -> Self {
        XorShift64(if seed == 0 {
            0x2545_f491_4f6c_dd1d
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value uniformly drawn from `0..n` (`n` > 0; returns 0 for `n` == 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_is_involution_and_hash_differs_by_direction() {
        let k = FlowKey::new(
            PROTO_TCP,
            Ipv4Addr::new(1, 2, 3, 4),
            1000,
            Ipv4Addr::new(5, 6, 7, 8),
            80,
        );
        assert_eq!(k.reversed().reversed(), k);
        assert_ne!(k.hash(1), k.reversed().hash(1));
        assert_ne!(k.hash(1), k.hash(2));
        assert_ne!(k.table_hash(1), k.reversed().table_hash(1));
        assert_ne!(k.table_hash(1), k.table_hash(2));
        assert_ne!(k.table_hash(1), FlowKey { sport: 1001, ..k }.table_hash(1));
    }

    #[test]
    fn table_words_do_not_collide_for_one_service_or_one_server() {
        use std::collections::HashSet;
        let word = |k: &FlowKey| {
            let (a, b) = k.packed();
            FlowKey::table_word(a, b)
        };
        // Replies of four real servers to 64 local addresses x 1075 local ports.
        let mut seen = HashSet::new();
        for rs in 0..4u32 {
            for lip in 0..64u32 {
                for lport in (0..65536u32).step_by(61) {
                    let k = FlowKey {
                        saddr: 0xc0a8_070a + rs,
                        daddr: 0xc0a8_0800 + lip,
                        sport: 80,
                        dport: lport as u16,
                        proto: PROTO_TCP,
                    };
                    assert!(seen.insert(word(&k)), "{k:?}");
                }
            }
        }
        // Clients of one service: addresses x source ports, TCP and UDP.
        let mut seen = HashSet::new();
        for c in 0..2048u32 {
            for sport in (1024..65536u32).step_by(512) {
                for proto in [PROTO_TCP, PROTO_UDP] {
                    let k = FlowKey {
                        saddr: c.wrapping_mul(0x9e37_79b9),
                        daddr: 0x6460_7ad2,
                        sport: sport as u16,
                        dport: 80,
                        proto,
                    };
                    assert!(seen.insert(word(&k)), "{k:?}");
                }
            }
        }
        // The multiplier is odd and depends on the seed.
        assert_eq!(FlowKey::table_multiplier(1) & 1, 1);
        assert_ne!(FlowKey::table_multiplier(1), FlowKey::table_multiplier(2));
    }

    #[test]
    fn hash_32_matches_linux_golden_ratio() {
        // hash_32(1, 8) = (0x61C88647 >> 24) = 0x61
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        assert!(hash_32(0xffff_ffff, 8) < 256);
    }

    #[test]
    fn xorshift_below_stays_in_range_and_spreads() {
        let mut r = XorShift64::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let v = r.below(10) as usize;
            seen[v] += 1;
        }
        for c in seen {
            assert!((800..1200).contains(&c), "{c}");
        }
        assert_eq!(r.below(0), 0);
    }
}
