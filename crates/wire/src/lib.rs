//! Zero-copy packet codecs shared by every Fulcrum crate.
//!
//! Each format is a `Packet<T: AsRef<[u8]>>` view with named field ranges and a
//! `new_checked` constructor, plus a `Repr` struct that parses from and emits into a view
//! (the smoltcp pattern). Parsing never panics on any input.
//!
//! What it does not do: own buffers, allocate on the hot path, or know about DPDK.
