//! bfd (sans-IO).
