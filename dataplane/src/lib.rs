//! The forwarding core.
