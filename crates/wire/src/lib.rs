//! Zero-copy packet codecs shared by every Fulcrum crate.
//!
//! Each format is a `Packet<T: AsRef<[u8]>>` view with named field ranges, a
//! `new_unchecked` / `new_checked` constructor pair, getters and (for `T: AsMut<[u8]>`)
//! cheap `#[inline]` setters, plus a `Repr` struct that parses from and emits into a view
//! (the smoltcp pattern). Covered: the Internet checksum with RFC 1624 incremental
//! updates, Ethernet II with 802.1Q/QinQ tags, ARP, IPv4, ICMPv4, ICMPv6 echo (request and
//! reply only), UDP, TCP (options including SACK, timestamps and TOA) and the PROXY
//! protocol v1 and v2.
//!
//! Parsing never panics on any input: a malformed buffer yields an [`Error`]. Views made
//! with `new_unchecked` skip the length checks, and their accessors panic on a buffer that
//! is too short — use them only on buffers whose length is already known. `emit` never
//! panics either; it returns [`Error::BufferTooSmall`] when the output does not fit.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Packet, TcpPacket};
//!
//! # fn main() -> wire::Result<()> {
//! # let mut frame = [0u8; 54];
//! # frame[12] = 0x08; frame[14] = 0x45; frame[17] = 40; frame[22] = 64; frame[23] = 6;
//! # frame[46] = 0x50;
//! # Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
//! # TcpPacket::new_unchecked(&mut frame[34..]).fill_checksum(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
//! // FullNAT rewrite of a TCP packet in place, checksums updated incrementally.
//! let eth = EthernetFrame::new_checked(&frame[..])?;
//! assert_eq!(eth.ethertype(), EtherType::Ipv4);
//! let hl = eth.header_len();
//! let mut ip = Ipv4Packet::new_checked(&mut frame[hl..])?;
//! assert_eq!(ip.protocol(), IpProtocol::Tcp);
//! let (lip, rs) = (Ipv4Addr::new(192, 168, 7, 188), Ipv4Addr::new(192, 168, 7, 27));
//! let old_src = ip.rewrite_src_addr(lip);
//! let old_dst = ip.rewrite_dst_addr(rs);
//! let ihl = ip.header_len();
//! let total = usize::from(ip.total_len());
//! let mut tcp = TcpPacket::new_checked(&mut ip.into_inner()[ihl..total])?;
//! tcp.update_checksum_for_addr(old_src, lip);
//! tcp.update_checksum_for_addr(old_dst, rs);
//! tcp.rewrite_src_port(5001);
//! assert!(Ipv4Packet::new_checked(&frame[hl..])?.verify_checksum());
//! assert!(TcpPacket::new_checked(&frame[hl + ihl..])?.verify_checksum(lip, rs));
//! # Ok(())
//! # }
//! ```
//!
//! What it does not do: own buffers, allocate on the view path, know about DPDK, handle
//! IPv6 headers (only as PROXY addresses and in the ICMPv6 checksum's pseudo-header), decode
//! ICMPv6 messages other than echo, reassemble fragments or track connections.

mod arp;
pub mod checksum;
mod error;
mod ethernet;
mod icmpv4;
mod icmpv6;
mod ip;
mod ipv4;
mod proxy;
mod tcp;
#[cfg(test)]
mod testdata;
mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::{Error, Result};
pub use ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr, VlanTag};
pub use icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr};
pub use ip::IpProtocol;
pub use ipv4::{Ipv4Options, Ipv4Packet, Ipv4Repr, IPV4_MAX_OPTIONS};
pub use proxy::{
    tlv as proxy_tlv, ProxyAddresses, ProxyCommand, ProxyHeader, ProxyTlv, ProxyTlvIter,
    ProxyTransport, ProxyV1Repr, ProxyV2Repr, PROXY_V1_MAX_LEN, PROXY_V2_HEADER_LEN,
    PROXY_V2_SIGNATURE,
};
pub use tcp::{
    insert_tcp_option, SackBlocks, TcpFlags, TcpOption, TcpOptionWriter, TcpOptions,
    TcpOptionsIter, TcpPacket, TcpRepr, TcpSeqNumber, TCP_MAX_OPTIONS,
};
pub use udp::{UdpPacket, UdpRepr};
