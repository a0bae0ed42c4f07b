//! The forwarding core of Fulcrum's layer-4 load balancer (the DPVS half of the product).
//!
//! What it does:
//! - [`sched`]: the IPVS schedulers (rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh
//!   twos) and DPVS's conhash, with IPVS semantics (weights, overload, fallback flags).
//! - [`conn`]: the per-worker connection table (64-byte entries, one entry found from
//!   both directions, 96 bytes per connection with its index), the DPVS TCP state
//!   machine and timeouts, persistence templates and hashed-timer-wheel expiry.
//! - [`service`]: virtual services and real servers with ipvsadm `-A -E -D -a -e -d`
//!   semantics, weight-0 drain, allow/deny lists, per-service and per-server counters.
//! - [`fib`]: IPv4 longest-prefix match (16-8-8 trie) with ECMP groups, swapped
//!   atomically from the control plane; [`neigh`]: ARP resolution state and queues;
//!   [`laddr`]: the FullNAT local-address pool split between workers by port.
//! - [`worker`]: the packet path — classify a frame, track and rewrite it in FullNAT
//!   (with TOA or a PROXY v1/v2 header), NAT, DR or TUN mode with incremental checksums,
//!   answer ARP and ICMP echo for VIPs, translate ICMP errors through connections,
//!   forward transit traffic, punt what the kernel owns, drop with a counted reason —
//!   and [`synproxy`]: SYN cookies for the SYN proxy.
//!
//! What it does not do: no DPDK types, no I/O, no sockets, no clocks, no threads, no
//! IPv6, no IP fragment reassembly. Time is always a `std::time::Duration` since an epoch
//! chosen by the caller, randomness comes from seeds the caller gives. Nothing on the
//! per-packet path allocates or takes a lock. Frames arrive as caller-owned byte
//! buffers; the DPDK lcore loop that feeds them lives elsewhere.

pub mod conn;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod fib;
pub mod flow;
pub mod laddr;
pub mod neigh;
pub mod sched;
pub mod service;
pub mod synproxy;
pub mod worker;
