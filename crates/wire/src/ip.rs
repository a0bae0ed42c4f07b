//! IP protocol numbers and small byte helpers shared by the codecs.

use core::fmt;

/// The IPv4 `protocol` field (IANA "Assigned Internet Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpProtocol {
    /// ICMP (1).
    Icmp,
    /// IGMP (2).
    Igmp,
    /// IP-in-IP encapsulation (4), used by the TUN forwarding mode.
    IpIp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// GRE (47).
    Gre,
    /// ESP (50).
    Esp,
    /// AH (51).
    Ah,
    /// OSPF (89).
    Ospf,
    /// VRRP (112).
    Vrrp,
    /// SCTP (132).
    Sctp,
    /// Any other number.
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Icmp,
            2 => Self::Igmp,
            4 => Self::IpIp,
            6 => Self::Tcp,
            17 => Self::Udp,
            47 => Self::Gre,
            50 => Self::Esp,
            51 => Self::Ah,
            89 => Self::Ospf,
            112 => Self::Vrrp,
            132 => Self::Sctp,
            other => Self::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    #[inline]
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Igmp => 2,
            IpProtocol::IpIp => 4,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Ospf => 89,
            IpProtocol::Vrrp => 112,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpProtocol::Unknown(v) => write!(f, "proto-{v}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

/// Reads a big-endian u16 at `at`. Panics if out of range (callers check lengths first).
#[inline(always)]
pub(crate) fn get16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// Reads a big-endian u32 at `at`. Panics if out of range (callers check lengths first).
#[inline(always)]
pub(crate) fn get32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Writes a big-endian u16 at `at`. Panics if out of range (callers check lengths first).
#[inline(always)]
pub(crate) fn put16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian u32 at `at`. Panics if out of range (callers check lengths first).
#[inline(always)]
pub(crate) fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_numbers_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert_eq!(IpProtocol::Udp.to_string(), "udp");
    }
}
