//! Bindings to the system DPDK (22.11), generated at build time.
