//! The appliance: the pieces of `fulcrumd` (the daemon) and `fulcrum` (its CLI), and the
//! subsystems that wire the protocol crates to sockets, timers and the kernel.
//!
//! What it does:
//! - [`config`]: the TOML configuration, parsed and validated whole, every error with its
//!   line number and key path.
//! - [`daemon`]: the tokio runtime of `fulcrumd`: control socket, metrics endpoint,
//!   reload on SIGHUP or request, orderly shutdown, and the [`daemon::Subsystem`] trait
//!   through which the OSPF driver, health checker, RIB/kernel sync and dataplane plug in.
//! - [`control`]: the versioned line-delimited JSON protocol of the control socket, its
//!   client, and the view types the CLI renders.
//! - [`metrics`]: the Prometheus registry and `GET /metrics`.
//! - [`cli`]: the `fulcrum` command line and its tables (`ipvsadm -Ln`, FRR layouts).
//! - [`keepalived`]: `fulcrum import-keepalived`, keepalived.conf (and DPVS's dialect) to
//!   fulcrum TOML.
//! - [`netlink`]: kernel route programming (ECMP, fulcrum's route protocol, reconciliation)
//!   and link/address events.
//! - [`ospf_socket`]: the raw protocol-89 socket the OSPF driver sends and receives on.
//! - [`routing`]: the routing subsystem of `kernel` mode — the `ospf` crate's speaker on
//!   those sockets, the `rib` crate's RIB, and kernel route programming.
//! - [`health_driver`]: the health subsystem — the `probe` crate's probers running the
//!   `health` crate's services, VIP announcers with drains, and the VIP set handed to
//!   the routing subsystem.
//!
//! - [`notify`]: systemd's readiness protocol (`READY=1`, `RELOADING=1`, `STOPPING=1`,
//!   `STATUS=`) over `$NOTIFY_SOCKET`.
//! - [`dataplane_driver`]: the dataplane subsystem of `dpdk` mode — the `dataplane`
//!   crate's DPDK backend with kernel twins, the configured services programmed into it,
//!   health verdicts, `services` and the ipvs-style metrics.
//! - [`vrrp_driver`]: the VRRP subsystem — the `vrrp` crate's instances on protocol-112
//!   sockets, virtual addresses and gratuitous ARPs, `fulcrum vrrp`.
//!
//! - [`bfd_driver`]: the BFD subsystem — the `bfd` crate's sessions on UDP sockets for
//!   OSPF neighbors and static peers, failures handed to the routing subsystem.
//!
//! What it does not do: implement OSPF, decide health, choose routes or forward packets —
//! those are the `ospf`, `health`, `rib` and `dataplane` crates, wired in as subsystems.
//! Until a subsystem runs, the daemon answers its views with a `not_available` error
//! rather than making data up.

pub mod bfd_driver;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane_driver;
pub mod health_driver;
pub mod keepalived;
pub mod metrics;
pub mod netlink;
pub mod notify;
pub mod ospf_socket;
pub mod routing;
#[cfg(test)]
mod testns;
pub mod vrrp_driver;
