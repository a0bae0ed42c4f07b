//! OSPFv2 (RFC 2328), sans-IO.
