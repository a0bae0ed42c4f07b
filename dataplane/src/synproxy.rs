//! SYN cookies for the SYN proxy.
//!
//! The proxy answers a client's SYN with a SYN-ACK whose initial sequence number is a
//! cookie, keeps no state, and creates the connection only when the client's ACK brings
//! a valid cookie back (`ack - 1`). The cookie's low 8 bits carry what the SYN said and
//! the server's SYN must repeat: an MSS index (3 bits, Linux `msstab`-like table), the
//! window scale (4 bits, 15 = absent) and SACK-permitted (1 bit). The high 24 bits are a
//! keyed hash of the 4-tuple and a 64-second time slot; a cookie is accepted during its
//! slot and the next (64 to 128 seconds), as Linux does with its counter.
//!
//! The keyed hash is a seeded 64-bit mixer, not a cryptographic PRF: it stops blind
//! floods, not an attacker who collects many cookies to attack the secret.

use crate::flow::{mix64, FlowKey};
use std::time::Duration;

/// MSS values a cookie can carry (the largest not above the client's is used).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1360, 1400, 1440, 1452, 1460];
const SLOT_SECS: u64 = 64;

/// The TCP options a SYN cookie preserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieData {
    /// Maximum segment size (one of [`MSS_TABLE`]).
    pub mss: u16,
    /// Window scale shift (0..=14) if the client offered it.
    pub wscale: Option<u8>,
    /// The client offered SACK.
    pub sack: bool,
}

impl CookieData {
    /// What a SYN with these options can be encoded as (MSS rounded down to the table,
    /// absent MSS = 536 as RFC 1122 §4.2.2.6, window scale clamped to 14).
    pub fn from_syn(mss: Option<u16>, wscale: Option<u8>, sack: bool) -> Self {
        let want = mss.unwrap_or(536);
        let mss = MSS_TABLE
            .iter()
            .copied()
            .filter(|&m| m <= want)
            .max()
            .unwrap_or(MSS_TABLE[0]);
        CookieData {
            mss,
            wscale: wscale.map(|w| w.min(14)),
            sack,
        }
    }

    fn encode(&self) -> u32 {
        let idx = MSS_TABLE.iter().position(|&m| m == self.mss).unwrap_or(0) as u32;
        let ws = self.wscale.map_or(15, |w| u32::from(w.min(14)));
        (idx << 5) | (ws << 1) | u32::from(self.sack)
    }

    fn decode(v: u32) -> Self {
        let idx = ((v >> 5) & 7) as usize;
        let ws = ((v >> 1) & 15) as u8;
        CookieData {
            mss: MSS_TABLE.get(idx).copied().unwrap_or(536),
            wscale: if ws == 15 { None } else { Some(ws) },
            sack: v & 1 == 1,
        }
    }
}

/// A SYN-cookie generator and checker with a secret.
#[derive(Debug, Clone)]
pub struct SynCookies {
    secret: u64,
}

impl SynCookies {
    /// Cookies keyed by `secret` (choose it at random at start-up).
    pub fn new(secret: u64) -> Self {
        SynCookies { secret }
    }

    fn hash(&self, key: &FlowKey, slot: u64) -> u32 {
        (mix64(key.hash(self.secret) ^ slot.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 32) as u32
    }

    /// The cookie (our initial sequence number) for a SYN with flow `key` (client →
    /// VIP) at `now`.
    pub fn make(&self, key: &FlowKey, now: Duration, data: CookieData) -> u32 {
        let slot = now.as_secs() / SLOT_SECS;
        (self.hash(key, slot) & 0xffff_ff00) | data.encode()
    }

    /// Checks a cookie returned in an ACK (`ack - 1`) for flow `key` at `now`.
    pub fn check(&self, key: &FlowKey, cookie: u32, now: Duration) -> Option<CookieData> {
        let slot = now.as_secs() / SLOT_SECS;
        for s in [slot, slot.wrapping_sub(1)] {
            if (self.hash(key, s) ^ cookie) & 0xffff_ff00 == 0 {
                return Some(CookieData::decode(cookie & 0xff));
            }
        }
        None
    }

    /// The data bits of a cookie already checked.
    pub fn data_of(cookie: u32) -> CookieData {
        CookieData::decode(cookie & 0xff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(p: u16) -> FlowKey {
        FlowKey::new(
            6,
            Ipv4Addr::new(1, 2, 3, 4),
            p,
            Ipv4Addr::new(100, 96, 122, 210),
            80,
        )
    }

    #[test]
    fn round_trip_and_window() {
        let c = SynCookies::new(99);
        let d = CookieData::from_syn(Some(1460), Some(7), true);
        let ck = c.make(&key(1000), Duration::from_secs(100), d);
        assert_eq!(c.check(&key(1000), ck, Duration::from_secs(100)), Some(d));
        assert_eq!(
            c.check(&key(1000), ck, Duration::from_secs(191)),
            Some(d),
            "next slot"
        );
        assert_eq!(
            c.check(&key(1000), ck, Duration::from_secs(192)),
            None,
            "expired"
        );
        assert_eq!(
            c.check(&key(1001), ck, Duration::from_secs(100)),
            None,
            "other flow"
        );
        assert_eq!(
            c.check(&key(1000), ck ^ 0x100, Duration::from_secs(100)),
            None
        );
        assert_eq!(
            SynCookies::new(98).check(&key(1000), ck, Duration::from_secs(100)),
            None
        );
    }

    #[test]
    fn options_are_encoded() {
        assert_eq!(
            CookieData::from_syn(None, None, false),
            CookieData {
                mss: 536,
                wscale: None,
                sack: false
            }
        );
        assert_eq!(
            CookieData::from_syn(Some(1455), Some(20), false),
            CookieData {
                mss: 1452,
                wscale: Some(14),
                sack: false
            }
        );
        assert_eq!(CookieData::from_syn(Some(100), Some(0), true).mss, 536);
        let c = SynCookies::new(1);
        for ws in [None, Some(0), Some(14)] {
            for sack in [false, true] {
                for &m in &MSS_TABLE {
                    let d = CookieData {
                        mss: m,
                        wscale: ws,
                        sack,
                    };
                    let ck = c.make(&key(5), Duration::ZERO, d);
                    assert_eq!(c.check(&key(5), ck, Duration::ZERO), Some(d));
                    assert_eq!(SynCookies::data_of(ck), d);
                }
            }
        }
    }

    #[test]
    fn forged_cookies_are_rare() {
        let c = SynCookies::new(7);
        let mut ok = 0;
        for i in 0..200_000u32 {
            if c.check(&key(9), i.wrapping_mul(2654435761), Duration::from_secs(5))
                .is_some()
            {
                ok += 1;
            }
        }
        assert!(ok <= 2, "{ok}");
    }
}
