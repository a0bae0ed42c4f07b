//! `UDP_CHECK`: send a datagram on a connected UDP socket and watch what comes back.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use health::eval::{evaluate_udp, UdpObservation};
use health::{FailureKind, ProbeOutcome, UdpCheck};
use socket2::{Protocol, Type};
use tokio::net::UdpSocket;

use crate::net::{destination, socket_for};

/// The largest reply read (longer datagrams are truncated, which only matters for a
/// `require_reply` prefix longer than this).
pub const MAX_REPLY: usize = 2048;

/// Sends `payload` to the server from a connected socket, then waits up to `timeout`
/// for a datagram. On a connected socket the kernel reports an ICMP port (or host)
/// unreachable as a receive error, which is the "down" answer without
/// `require_reply`; the verdict is [`health::eval::evaluate_udp`]'s.
pub async fn udp_check(check: &UdpCheck, server: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let dest = destination(&check.conn, server);
    let sock = match open(check, dest).await {
        Ok(s) => s,
        Err(_) => return ProbeOutcome::Failure(FailureKind::Connect),
    };
    if let Err(e) = sock.send(&check.payload).await {
        return evaluate_udp(check, error_observation(&e));
    }
    let mut buf = vec![0u8; MAX_REPLY];
    match tokio::time::timeout(timeout, sock.recv(&mut buf)).await {
        Err(_) => evaluate_udp(check, UdpObservation::Silence),
        Ok(Ok(n)) => evaluate_udp(
            check,
            UdpObservation::Reply(buf.get(..n).unwrap_or_default()),
        ),
        Ok(Err(e)) => evaluate_udp(check, error_observation(&e)),
    }
}

async fn open(check: &UdpCheck, dest: SocketAddr) -> io::Result<UdpSocket> {
    let sock = socket_for(&check.conn, dest, Type::DGRAM, Protocol::UDP)?;
    let sock = UdpSocket::from_std(sock.into())?;
    sock.connect(dest).await?;
    Ok(sock)
}

/// Every error on a connected UDP socket is an ICMP error reported by the kernel
/// (refused, host/net unreachable …).
fn error_observation(_e: &io::Error) -> UdpObservation<'static> {
    UdpObservation::IcmpError
}
