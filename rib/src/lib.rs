//! The routing information base, sans-IO.
