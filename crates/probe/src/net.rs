//! Connection options shared by the network probes: target and source overrides,
//! `fwmark`, and a bind-before-connect TCP connect.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use health::{ConnectOptions, FailureKind};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

/// Where a probe goes: the real server's address unless `connect_ip`/`connect_port`
/// override it.
pub fn destination(conn: &ConnectOptions, server: SocketAddr) -> SocketAddr {
    SocketAddr::new(
        conn.connect_ip.unwrap_or(server.ip()),
        conn.connect_port.unwrap_or(server.port()),
    )
}

/// The local address to bind, if `bindto` or `bind_port` is set. A `bind_port` alone
/// binds the unspecified address of the destination's family.
pub fn source(conn: &ConnectOptions, dest: SocketAddr) -> Option<SocketAddr> {
    if conn.bindto.is_none() && conn.bind_port.is_none() {
        return None;
    }
    let ip = conn.bindto.unwrap_or(match dest {
        SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
        SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
    });
    Some(SocketAddr::new(ip, conn.bind_port.unwrap_or(0)))
}

/// Maps a socket error to the failure kind `health` counts.
pub fn failure_of(err: &io::Error) -> FailureKind {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailureKind::Timeout,
        _ => FailureKind::Connect,
    }
}

/// A non-blocking socket of `dest`'s family with `bindto`/`bind_port` and `fwmark`
/// applied (SO_REUSEADDR is set when a source port is fixed, as keepalived).
pub fn socket_for(
    conn: &ConnectOptions,
    dest: SocketAddr,
    ty: Type,
    proto: Protocol,
) -> io::Result<Socket> {
    // socket2 opens with SOCK_CLOEXEC; SOCK_NONBLOCK saves an fcntl per probe.
    let sock = Socket::new(Domain::for_address(dest), ty.nonblocking(), Some(proto))?;
    if let Some(mark) = conn.fwmark {
        sock.set_mark(mark)?;
    }
    if let Some(src) = source(conn, dest) {
        if src.port() != 0 {
            sock.set_reuse_address(true)?;
        }
        sock.bind(&SockAddr::from(src))?;
    }
    Ok(sock)
}

/// Connects a TCP stream to `dest` with the options' source and mark, giving up after
/// `timeout`.
pub async fn tcp_connect(
    conn: &ConnectOptions,
    dest: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, FailureKind> {
    let sock = socket_for(conn, dest, Type::STREAM, Protocol::TCP).map_err(|e| failure_of(&e))?;
    let sock = TcpSocket::from_std_stream(sock.into());
    match tokio::time::timeout(timeout, sock.connect(dest)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(failure_of(&e)),
        Err(_) => Err(FailureKind::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let server: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let mut c = ConnectOptions::default();
        assert_eq!(destination(&c, server), server);
        assert_eq!(source(&c, server), None);
        c.connect_port = Some(8080);
        c.bind_port = Some(999);
        assert_eq!(destination(&c, server), "10.0.0.1:8080".parse().unwrap());
        assert_eq!(source(&c, server), Some("0.0.0.0:999".parse().unwrap()));
        c.connect_ip = Some("fd00::5".parse().unwrap());
        let d = destination(&c, server);
        assert_eq!(d, "[fd00::5]:8080".parse().unwrap());
        assert_eq!(source(&c, d), Some("[::]:999".parse().unwrap()));
        c.bindto = Some("10.9.9.9".parse().unwrap());
        c.bind_port = None;
        assert_eq!(source(&c, d), Some("10.9.9.9:0".parse().unwrap()));
    }
}
