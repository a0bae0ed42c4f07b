//! vrrp (sans-IO).
