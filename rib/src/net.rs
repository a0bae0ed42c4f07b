//! A small IPv4 prefix type (`a.b.c.d/len` with the host bits cleared).

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

use crate::RibError;

/// An IPv4 prefix: a network address with its host bits cleared, and a length 0..=32.
///
/// Ordering is by address, then length, so a `BTreeMap<Ipv4Net, _>` walks prefixes in
/// the order `show ip route` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    len: u8,
}

/// The mask of a prefix length (`len` must be ≤ 32).
fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl Ipv4Net {
    /// The default route, `0.0.0.0/0`.
    pub const DEFAULT: Ipv4Net = Ipv4Net {
        addr: Ipv4Addr::UNSPECIFIED,
        len: 0,
    };

    /// A prefix from an address whose host bits must already be zero.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, RibError> {
        if len > 32 {
            return Err(RibError::PrefixLength(len));
        }
        if u32::from(addr) & !mask(len) != 0 {
            return Err(RibError::HostBitsSet { addr, len });
        }
        Ok(Ipv4Net { addr, len })
    }

    /// A prefix from any address inside it: the host bits are cleared
    /// (`10.1.2.3/24` gives `10.1.2.0/24`).
    pub fn new_truncating(addr: Ipv4Addr, len: u8) -> Result<Self, RibError> {
        if len > 32 {
            return Err(RibError::PrefixLength(len));
        }
        Ok(Self::truncate(addr, len))
    }

    /// `new_truncating` for a length already known to be ≤ 32.
    pub(crate) fn truncate(addr: Ipv4Addr, len: u8) -> Self {
        let len = len.min(32);
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        }
    }

    /// A host route (`/32`) for an address.
    pub fn host(addr: Ipv4Addr) -> Self {
        Ipv4Net { addr, len: 32 }
    }

    /// The network address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0..=32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The netmask as an address (`/24` → `255.255.255.0`).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.len))
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == u32::from(self.addr)
    }

    /// Whether `other` is this prefix or a more specific one inside it.
    pub fn contains_net(&self, other: &Ipv4Net) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Net {
    type Err = RibError;

    /// Parses `a.b.c.d/len` (strict: host bits must be zero) or a bare address (a `/32`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RibError::Parse(s.to_owned());
        match s.split_once('/') {
            Some((a, l)) => {
                let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
                // Only plain decimal digits: no sign, no whitespace.
                if l.is_empty() || l.len() > 2 || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let len: u8 = l.parse().map_err(|_| bad())?;
                Ipv4Net::new(addr, len)
            }
            None => Ok(Ipv4Net::host(s.parse().map_err(|_| bad())?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let n: Ipv4Net = "192.168.0.0/16".parse().unwrap();
        assert_eq!(n.addr(), Ipv4Addr::new(192, 168, 0, 0));
        assert_eq!(n.prefix_len(), 16);
        assert_eq!(n.netmask(), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(n.to_string(), "192.168.0.0/16");
        assert_eq!(
            "10.0.0.1".parse::<Ipv4Net>().unwrap(),
            Ipv4Net::host(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!("0.0.0.0/0".parse::<Ipv4Net>().unwrap(), Ipv4Net::DEFAULT);
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert!(matches!(
            "10.0.0.1/24".parse::<Ipv4Net>(),
            Err(RibError::HostBitsSet { len: 24, .. })
        ));
        assert!(matches!(
            "10.0.0.0/33".parse::<Ipv4Net>(),
            Err(RibError::PrefixLength(33))
        ));
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/ 8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn truncating_and_contains() {
        let n = Ipv4Net::new_truncating(Ipv4Addr::new(10, 1, 2, 3), 24).unwrap();
        assert_eq!(n.to_string(), "10.1.2.0/24");
        assert!(n.contains(Ipv4Addr::new(10, 1, 2, 255)));
        assert!(!n.contains(Ipv4Addr::new(10, 1, 3, 0)));
        assert!(Ipv4Net::DEFAULT.contains(Ipv4Addr::new(1, 2, 3, 4)));
        let sub: Ipv4Net = "10.1.2.128/25".parse().unwrap();
        assert!(n.contains_net(&sub));
        assert!(!sub.contains_net(&n));
        assert!(Ipv4Net::new_truncating(Ipv4Addr::LOCALHOST, 40).is_err());
    }
}
