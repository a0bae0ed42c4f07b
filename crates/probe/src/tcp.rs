//! `TCP_CHECK`: the real server accepts a TCP connection.

use std::net::SocketAddr;
use std::time::Duration;

use health::{ProbeOutcome, TcpCheck};

use crate::net::{destination, tcp_connect};

/// Connects to the server (or `connect_ip`/`connect_port`), bound to `bindto`/`bind_port`
/// when set, within `timeout`. Success once the connection is established; it is then
/// closed at once without sending data. Refused, reset or unreachable is
/// `Failure(Connect)`; no answer in time is `Failure(Timeout)`.
pub async fn tcp_check(check: &TcpCheck, server: SocketAddr, timeout: Duration) -> ProbeOutcome {
    match tcp_connect(&check.conn, destination(&check.conn, server), timeout).await {
        Ok(stream) => {
            drop(stream);
            ProbeOutcome::Success
        }
        Err(kind) => ProbeOutcome::Failure(kind),
    }
}
