//! The error type shared by every codec in this crate.

/// Why a buffer could not be parsed or a representation could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ends before the structure it should hold (more bytes may complete it).
    #[error("truncated input")]
    Truncated,
    /// A field holds a value the format forbids; the text names the field or rule.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A checksum did not verify.
    #[error("checksum mismatch")]
    Checksum,
    /// Well-formed, but a variant this crate does not handle (e.g. ARP over non-Ethernet).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The output buffer is too small for what is being emitted.
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// The result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;
