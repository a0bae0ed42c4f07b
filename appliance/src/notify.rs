//! systemd's readiness protocol (`sd_notify(3)`): datagrams of `KEY=VALUE` lines sent to
//! the unix socket named by `$NOTIFY_SOCKET`.
//!
//! `fulcrumd` sends `READY=1` once the dataplane is up and OSPF has started,
//! `RELOADING=1` (with `MONOTONIC_USEC`) and `READY=1` around each reload, `STOPPING=1`
//! when shutdown begins, and `STATUS=` lines describing each phase. Without
//! `$NOTIFY_SOCKET` (not started by systemd with `Type=notify`) every call does nothing.
//! Abstract sockets (`@name`) are supported, as systemd documents.
//!
//! What it does not do: the watchdog (`WATCHDOG=1`) or file-descriptor store messages.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// Errors of the notify client.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The datagram could not be sent.
    #[error("sd_notify to {socket}: {source}")]
    Send {
        /// The socket named by `$NOTIFY_SOCKET`.
        socket: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `$NOTIFY_SOCKET` is neither an absolute path nor an abstract name.
    #[error("NOTIFY_SOCKET={0:?} is neither an absolute path nor an abstract (@) name")]
    BadAddress(String),
}

/// Where notifications go: the socket of `$NOTIFY_SOCKET`, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// The notifier of this process: `$NOTIFY_SOCKET` if set and not empty.
    pub fn from_env() -> Notifier {
        Notifier::to(
            std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        )
    }

    /// A notifier sending to `socket` (a path, or `@name` for an abstract socket), or a
    /// silent one for `None`.
    pub fn to(socket: Option<String>) -> Notifier {
        Notifier { target: socket }
    }

    /// Whether notifications are sent anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (lines `KEY=VALUE`, newline-separated) as one datagram.
    pub fn send(&self, state: &str) -> Result<(), NotifyError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let err = |source| NotifyError::Send {
            socket: target.clone(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(err)?;
        if let Some(name) = target.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr =
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?;
            sock.send_to_addr(state.as_bytes(), &addr).map_err(err)?;
        } else if target.starts_with('/') {
            sock.send_to(state.as_bytes(), PathBuf::from(target))
                .map_err(err)?;
        } else {
            return Err(NotifyError::BadAddress(target.clone()));
        }
        Ok(())
    }

    /// Sends `state`, logging a failure instead of returning it (a lost notification must
    /// not stop the daemon; systemd then times the unit out, which shows in the journal).
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.send(state) {
            tracing::warn!("{e}");
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        self.notify(&format!("READY=1\nSTATUS={status}"));
    }

    /// `RELOADING=1` with the monotonic time systemd asks for, and a status line.
    pub fn reloading(&self, status: &str) {
        self.notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={status}",
            monotonic_usec()
        ));
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        self.notify(&format!("STOPPING=1\nSTATUS={status}"));
    }

    /// A `STATUS=` line alone.
    pub fn status(&self, status: &str) {
        self.notify(&format!("STATUS={status}"));
    }
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
            secs * 1_000_000 + nanos / 1_000
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_each_message_as_one_datagram_to_a_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let n = Notifier::to(Some(path.display().to_string()));
        assert!(n.enabled());
        n.ready("forwarding");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=forwarding");
        n.reloading("reloading configuration");
        let r = recv(&sock);
        let lines: Vec<&str> = r.lines().collect();
        assert_eq!(lines[0], "RELOADING=1");
        let usec: u64 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .expect("MONOTONIC_USEC")
            .parse()
            .expect("number");
        assert!(usec > 0);
        assert_eq!(lines[2], "STATUS=reloading configuration");
        n.stopping("withdrawing VIPs");
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=withdrawing VIPs");
    }

    #[test]
    fn abstract_sockets_work_and_bad_addresses_are_errors() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("fulcrum-notify-test-{}", std::process::id());
        let addr =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Notifier::to(Some(format!("@{name}")))
            .send("STATUS=x")
            .expect("send");
        assert_eq!(recv(&sock), "STATUS=x");

        let e = Notifier::to(Some("relative/path".into()))
            .send("READY=1")
            .expect_err("relative path");
        assert!(matches!(e, NotifyError::BadAddress(_)), "{e}");
        // Nobody listening: an error, not a panic.
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("nobody.sock");
        assert!(Notifier::to(Some(gone.display().to_string()))
            .send("READY=1")
            .is_err());
        // Disabled: nothing sent, no error.
        let off = Notifier::to(None);
        assert!(!off.enabled());
        off.send("READY=1").expect("silent");
    }
}
