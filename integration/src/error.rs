//! The harness's error type.

use std::time::Duration;

/// Everything that can go wrong while building, driving or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process is not root, so it cannot create namespaces or start daemons.
    #[error(
        "the lab needs root (network namespaces, veths and daemons need CAP_SYS_ADMIN); \
         effective uid is {0}"
    )]
    NotRoot(u32),
    /// A program could not be started at all (missing binary, permissions).
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A program ran and exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: String,
        /// What it wrote on stderr (and stdout when stderr was empty).
        stderr: String,
    },
    /// A file-system operation on the run directory failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A daemon did not come up (no pid file, exited at once, bad configuration).
    #[error("{daemon} in {node} did not start: {detail}")]
    Daemon {
        /// The daemon (zebra, ospfd, bird, nginx, ...).
        daemon: String,
        /// The lab node it was started in.
        node: String,
        /// What was observed, including the tail of its log when there is one.
        detail: String,
    },
    /// The output of a tool (ip -j, vtysh, birdc) could not be understood.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// A condition awaited with [`crate::wait_until`] did not become true in time.
    #[error("timed out after {waited:?} waiting for {what}; last observed: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        waited: Duration,
        /// The last state observed before giving up.
        last: String,
    },
    /// A lab configuration that cannot be realised (bad name, unsupported option).
    #[error("invalid lab configuration: {0}")]
    Config(String),
    /// The lab was already torn down (for instance by the signal handler).
    #[error("lab {0} has been torn down")]
    TornDown(String),
}

/// Result alias for the harness.
pub type Result<T> = std::result::Result<T, LabError>;

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}
