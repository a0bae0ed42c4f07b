//! The error type of the safe layer.

use std::ffi::CStr;

use crate::ffi;

/// Errors of the safe DPDK layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The EAL was already initialised in this process; DPDK allows it once.
    #[error("EAL already initialised in this process (DPDK allows one initialisation)")]
    AlreadyInitialized,
    /// A string argument contained an interior NUL byte.
    #[error("argument contains a NUL byte: {0:?}")]
    NulByte(String),
    /// A DPDK call failed; `code` is `rte_errno` or the negated return value and
    /// `message` its `rte_strerror` text.
    #[error("{op} failed: {message} (code {code})")]
    Dpdk {
        /// The DPDK function that failed.
        op: &'static str,
        /// `rte_errno` or the negated negative return code.
        code: i32,
        /// `rte_strerror(code)`.
        message: String,
    },
    /// No ethdev port has this device name.
    #[error("no DPDK port named {0:?}")]
    NoSuchPort(String),
    /// The port id is not a valid ethdev port.
    #[error("{0} is not a valid DPDK port id")]
    InvalidPort(u16),
    /// Another [`crate::Port`] handle holds this port.
    #[error("port {0} is already held by another handle")]
    PortBusy(u16),
    /// The queue id is not below the number of queues the port was configured with.
    #[error("queue {queue} not configured on port {port} ({configured} queues)")]
    InvalidQueue {
        /// Port id.
        port: u16,
        /// The queue asked for.
        queue: u16,
        /// Number of queues of that direction configured.
        configured: u16,
    },
    /// Queue handles split off the port ([`crate::Port::split`]) are still alive, so the
    /// port cannot be stopped, reconfigured or closed yet.
    #[error("port {0} still has queue handles in use")]
    QueuesInUse(u16),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The mempool had no free mbuf.
    #[error("mempool has no free mbuf")]
    NoMbuf,
    /// Not enough headroom, tailroom or data for an mbuf operation.
    #[error("{op}({len}) does not fit: {available} bytes available")]
    NoRoom {
        /// The operation (`append`, `prepend`, `adj`, `trim`).
        op: &'static str,
        /// Bytes asked for.
        len: usize,
        /// Bytes available for it.
        available: usize,
    },
    /// The packet spans several segments, so it has no single contiguous slice.
    #[error("packet spans {0} segments; no contiguous view")]
    MultiSegment(u16),
}

/// Result of the safe layer.
pub type Result<T> = std::result::Result<T, Error>;

/// `rte_strerror(code)` as an owned string.
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated
    // string, static or in a thread-local buffer that stays valid until the next call
    // on this thread; it is copied before returning.
    let ptr = unsafe { ffi::rte_strerror(code) };
    if ptr.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null, NUL-terminated as above.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's `rte_errno`.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: the wrapper only reads a thread-local int.
    unsafe { ffi::fulcrum_rte_errno_get() }
}

/// An [`Error::Dpdk`] for `op` from the current `rte_errno`.
pub(crate) fn from_errno(op: &'static str) -> Error {
    from_code(op, rte_errno())
}

/// An [`Error::Dpdk`] for `op` from a code (negative return values are negated).
pub(crate) fn from_code(op: &'static str, code: i32) -> Error {
    let code = code.saturating_abs();
    Error::Dpdk {
        op,
        code,
        message: strerror(code),
    }
}

/// `Ok(ret)` if `ret >= 0`, else an [`Error::Dpdk`] for the negated return code.
pub(crate) fn check(op: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(from_code(op, ret))
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_strerror_text() {
        let e = from_code("rte_eth_dev_start", -libc::EINVAL);
        match &e {
            Error::Dpdk { op, code, message } => {
                assert_eq!(*op, "rte_eth_dev_start");
                assert_eq!(*code, libc::EINVAL);
                assert_eq!(message, "Invalid argument");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(e.to_string().contains("Invalid argument"));
    }

    #[test]
    fn rte_specific_codes_have_dpdk_text() {
        // E_RTE_NO_CONFIG is a DPDK-specific errno beyond the libc range.
        let text = strerror(ffi::E_RTE_NO_CONFIG as i32);
        assert!(text.contains("config"), "{text}");
    }

    #[test]
    fn errno_roundtrips_through_the_wrapper() {
        // SAFETY: the wrapper only writes a thread-local int.
        unsafe { ffi::fulcrum_rte_errno_set(libc::ENOSPC) };
        assert_eq!(rte_errno(), libc::ENOSPC);
        let e = from_errno("rte_mempool_create");
        assert!(matches!(e, Error::Dpdk { code, .. } if code == libc::ENOSPC));
    }

    #[test]
    fn check_passes_non_negative_values() {
        assert_eq!(check("x", 3), Ok(3));
        assert!(
            matches!(check("x", -libc::ENODEV), Err(Error::Dpdk { code, .. }) if code == libc::ENODEV)
        );
    }
}
