//! `ipip_decap`: an IP-in-IP (RFC 2003) decapsulator for lab real servers whose kernel
//! has no `ipip` module (`CONFIG_NET_IPIP` unset, so `ip link add tunl0 type ipip`
//! fails), standing in for `tunl0` in LVS-TUN tests.
//!
//! Run it inside the real server's namespace (`ip netns exec RS ipip_decap`). It reads
//! every protocol-4 packet addressed to the namespace from a raw socket and hands the
//! inner IPv4 packet back to the local stack through an `IPPROTO_RAW` (header-included)
//! socket: the inner destination — the VIP, held on `lo` — is local, so the kernel
//! delivers it to the listening socket, and the server's reply leaves by its own routes
//! (directly to the client, bypassing the balancer), as it would from `tunl0`.
//!
//! It prints `ipip_decap: ready` once both sockets are open, and on stderr one line per
//! packet it cannot use. It never forwards an inner packet whose destination is not an
//! address of the namespace (the kernel would route it onwards otherwise): those are
//! counted and dropped.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Context;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// IP protocol number of IP-in-IP.
const IPPROTO_IPIP: i32 = 4;
/// IP protocol number of raw, header-included sends.
const IPPROTO_RAW: i32 = 255;

/// The inner packet of an IPIP datagram `outer` (an IPv4 packet as a raw socket returns
/// it), or why there is none.
fn inner(outer: &[u8]) -> Result<&[u8], &'static str> {
    let first = *outer.first().ok_or("empty packet")?;
    if first >> 4 != 4 {
        return Err("outer header is not IPv4");
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || outer.len() < ihl {
        return Err("truncated outer header");
    }
    if outer.get(9) != Some(&4) {
        return Err("outer protocol is not IPIP");
    }
    let inner = &outer[ihl..];
    let v = *inner.first().ok_or("no inner packet")?;
    if v >> 4 != 4 || inner.len() < 20 {
        return Err("inner packet is not IPv4");
    }
    let total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
    if total < 20 || total > inner.len() {
        return Err("inner total length does not fit");
    }
    Ok(&inner[..total])
}

/// The destination address of an IPv4 packet checked by [`inner`].
fn destination(p: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(p[16], p[17], p[18], p[19])
}

/// True when `addr` is an address of this namespace (`ip route get` finds a local route).
fn is_local(addr: Ipv4Addr) -> bool {
    std::process::Command::new("ip")
        .args(["route", "get", &addr.to_string()])
        .output()
        .map(|o| o.status.success() && o.stdout.starts_with(b"local "))
        .unwrap_or(false)
}

fn main() -> anyhow::Result<()> {
    let rx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_IPIP)))
        .context("raw IPIP socket (needs root)")?;
    let tx = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
        .context("raw send socket")?;
    println!("ipip_decap: ready");
    let mut buf = vec![0u8; 65_536];
    let mut locals: Vec<Ipv4Addr> = Vec::new();
    let mut dropped = 0u64;
    loop {
        let n = (&rx).read(&mut buf).context("receive")?;
        let packet = match inner(&buf[..n]) {
            Ok(p) => p,
            Err(why) => {
                dropped += 1;
                eprintln!("ipip_decap: dropped ({dropped}): {why}");
                continue;
            }
        };
        let dst = destination(packet);
        if !locals.contains(&dst) {
            if !is_local(dst) {
                dropped += 1;
                eprintln!("ipip_decap: dropped ({dropped}): {dst} is not local");
                continue;
            }
            locals.push(dst);
        }
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        if let Err(e) = tx.send_to(packet, &to) {
            dropped += 1;
            eprintln!("ipip_decap: dropped ({dropped}): send to {dst}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            proto,
        ];
        p.extend_from_slice(&[0, 0, 10, 0, 0, 1, 10, 0, 0, 100]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn unwraps_ipip_and_rejects_the_rest() {
        let tcp = ipv4(6, &[1, 2, 3, 4]);
        let mut outer = ipv4(4, &tcp);
        outer.extend_from_slice(&[0, 0]); // trailing padding is cut off
        assert_eq!(inner(&outer), Ok(&tcp[..]));
        assert_eq!(destination(&tcp), Ipv4Addr::new(10, 0, 0, 100));
        assert!(inner(&ipv4(6, &tcp)).is_err());
        assert!(inner(&ipv4(4, &[0x45, 0, 0])).is_err());
        assert!(inner(&[]).is_err());
        assert!(inner(&outer[..10]).is_err());
        let mut long = ipv4(4, &tcp);
        long[22] = 0xff; // inner total length beyond the datagram
        assert!(inner(&long).is_err());
    }
}
