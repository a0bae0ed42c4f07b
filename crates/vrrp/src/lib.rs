//! Sans-IO VRRP for IPv4: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), compatible with
//! keepalived.
//!
//! What it does:
//! - [`wire`]: the advertisement codec ([`VrrpPacket`] view, [`VrrpRepr`]), v2 simple-text
//!   authentication (keepalived's `auth_type PASS`), v3 checksum with the IPv4
//!   pseudo-header. Checked against adverts captured from keepalived 2.2.7.
//! - [`Instance`]: one virtual router's state machine (Initialize / Backup / Master, and
//!   keepalived's FAULT), Master_Down_Interval and skew, priority-0 resignation,
//!   preemption (`nopreempt`, `preempt_delay`), tie-break on the primary address, unicast
//!   peers, receive checks with drops counted by reason, priority tracking with weights,
//!   and the gratuitous-ARP schedule (`garp_master_delay`, `garp_master_repeat`,
//!   `garp_master_refresh`).
//! - [`Router`]: the instances of a node, dispatch by interface and VRID, and keepalived
//!   sync groups (members fail over together).
//!
//! Time is a [`core::time::Duration`] since an epoch the caller chooses. Inputs are method
//! calls (`startup`, `handle_packet`, `handle_timeout`, `set_track`, `shutdown`); outputs
//! are pulled with `poll_transmit`, `poll_event` and `poll_timeout`.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use core::time::Duration;
//! use vrrp::{Event, Instance, InstanceConfig, State};
//!
//! let mut cfg = InstanceConfig::new("VI_1", "eth0", 51, Ipv4Addr::new(10, 0, 0, 1));
//! cfg.virtual_ipaddress = vec![Ipv4Addr::new(10, 0, 0, 100)];
//! let mut vi = Instance::new(cfg)?;
//! vi.startup(Duration::ZERO);
//! assert_eq!(vi.state(), State::Backup);
//! // No advert heard: Master after Master_Down_Interval (3 s + 156/256 s).
//! let t = vi.poll_timeout().unwrap();
//! assert_eq!(t, Duration::from_micros(3_609_375));
//! vi.handle_timeout(t);
//! let advert = vi.poll_transmit().unwrap();
//! assert_eq!((advert.destination, advert.ttl), (Ipv4Addr::new(224, 0, 0, 18), 255));
//! assert!(matches!(vi.poll_event(), Some(Event::BecameBackup { .. })));
//! assert!(matches!(vi.poll_event(), Some(Event::BecameMaster { .. })));
//! assert!(matches!(vi.poll_event(), Some(Event::SendGratuitousArp { count: 5, .. })));
//! # Ok::<(), vrrp::ConfigError>(())
//! ```
//!
//! Interoperability is tested live against keepalived 2.2.7 (v2 with PASS, and v3) in
//! network namespaces by `tests/keepalived_interop.rs` (root; run with `--ignored`).
//!
//! What it does not do: no sockets, no clocks, no threads or randomness. The daemon
//! sends and receives IP protocol 112 (TTL 255, joining 224.0.0.18), adds and removes the
//! VIPs and the virtual MAC, sends the gratuitous ARPs the events ask for, runs track
//! scripts and watches interfaces. IPv6 (VRRPv3 over IPv6) and v2 AH authentication
//! (deprecated) are not supported; keepalived's `vrrp_strict`, `check_unicast_src` and
//! `garp_interval` are not modelled.

pub mod config;
pub mod instance;
pub mod router;
pub mod wire;

pub use config::{Authentication, ConfigError, InitialState, InstanceConfig, Track};
pub use instance::{DropReason, Event, Instance, InstanceInfo, State, Stats, Transmit};
pub use router::{InstanceId, Router, RouterStats};
pub use wire::{Auth, Version, VrrpPacket, VrrpRepr, WireError};
