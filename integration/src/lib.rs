//! The network-namespace lab harness.
