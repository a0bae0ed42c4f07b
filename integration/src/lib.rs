//! The network-namespace lab harness for Fulcrum's end-to-end tests.
//!
//! What it does: builds throw-away topologies out of Linux network namespaces
//! ([`Lab`], [`Node`], veth [`Lab::link`]s and bridge [`Switch`]es), runs real peers in
//! them — FRR (zebra, ospfd, bfdd) from a typed [`FrrConfig`], BIRD 2 ([`BirdOspfConfig`]
//! or raw text), nginx real servers ([`NginxConfig`], plain and PROXY-protocol
//! listeners) and keepalived (VRRP only) — and offers the probes tests need: kernel
//! routes and their next hops, OSPF neighbor states, and [`wait_until`] with an error
//! that says what was awaited and what was last seen.
//!
//! Every lab has a unique prefix `flab-<pid>-<seq>` and a run directory
//! `/tmp/flab/<prefix>/` for configurations, logs, pid files and sockets. Everything a
//! lab made is removed when it is dropped (also while unwinding from a panic) and when
//! the process receives SIGINT or SIGTERM (a signal thread tears down every live lab and
//! exits with 128 + signal, 130 for SIGINT). [`Lab::new`] first sweeps leftovers of
//! crashed runs whose owning pid is dead. Detached labs ([`Lab::detached`],
//! [`Lab::keep`]) back the `fulcrum-lab` command; the [`scenario`] module describes its
//! topologies as data.
//!
//! ```no_run
//! use std::time::Duration;
//! use integration::{FrrConfig, Lab, OspfInterface};
//!
//! # fn main() -> integration::Result<()> {
//! let lab = Lab::new("doc_example")?;
//! let (r1, r2) = (lab.router("r1")?, lab.router("r2")?);
//! lab.link(&r1, "eth0", &r2, "eth0")?;
//! r1.addr("eth0", "10.0.0.1/30")?;
//! r2.addr("eth0", "10.0.0.2/30")?;
//! r2.addr("lo", "2.2.2.2/32")?;
//! let fast = |id: [u8; 4]| {
//!     FrrConfig::new(id.into())
//!         .interface(OspfInterface::p2p("eth0").timers(1, 4))
//!         .network("10.0.0.0/30", "0")
//! };
//! let f1 = r1.frr(&fast([1, 1, 1, 1]))?;
//! r2.frr(&fast([2, 2, 2, 2]).network("2.2.2.2/32", "0"))?;
//! f1.wait_neighbor_full("2.2.2.2", Duration::from_secs(10))?;
//! let route = r1.wait_route("2.2.2.2/32", 1, Duration::from_secs(10))?;
//! assert_eq!(route.gateways(), vec!["10.0.0.2"]);
//! # Ok(())
//! # } // the lab (namespaces, daemons, run directory) is removed here
//! ```
//!
//! What it does not do: it needs root and the Debian packages named in `LAB.md`; it never
//! sends traffic outside the namespaces it created; it does not emulate link impairments
//! (no netem on these kernels); it is not a test framework (no assertions of its own) and
//! it measures nothing.

pub mod bird;
pub mod build;
pub mod error;
pub mod frr;
mod keepalived;
pub mod lab;
pub mod lb;
pub mod load;
pub mod nginx;
pub mod route;
pub mod scenario;
pub mod wait;

pub use bird::{Bird, BirdOspfConfig, BirdOspfInterface};
pub use error::{LabError, Result};
pub use frr::{Frr, FrrConfig, Neighbor, NetworkType, OspfAuth, OspfInterface};
pub use lab::{remove_lab, require_root, Lab, Node, Process, Switch};
pub use nginx::{Nginx, NginxConfig, NginxListen};
pub use route::{Nexthop, Route};
pub use wait::{wait_for, wait_until};
