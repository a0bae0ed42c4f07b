//! The fulcrum configuration file: TOML, parsed with serde, validated whole before use.
//!
//! Every error — TOML syntax, unknown key, wrong type, bad value, and the semantic checks of
//! [`Config::validate`] — is reported with the 1-based line number and the key path, e.g.
//! `config error at line 23: service[1].scheduler: unknown scheduler "rrr" (expected one of …)`.
//! Array indexes in key paths are 0-based, in file order. All errors of a file are reported
//! at once, one per line.
//!
//! The key reference is `docs/config.md`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnetwork::{IpNetwork, Ipv4Network};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default path of the control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/fulcrum/control.sock";
/// The default address of the metrics endpoint.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9477";

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number (0 when the position is unknown).
    pub line: usize,
    /// Key path such as `service[1].scheduler`; `(document)` for problems of the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "config error at line {}: {}: {}",
            self.line, self.key, self.message
        )
    }
}

/// Errors of loading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{}", display_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The diagnostics of an invalid file (empty for I/O errors).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid(d) => d,
            ConfigError::Io { .. } => &[],
        }
    }
}

fn display_diagnostics(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// Value types parsed from strings.

/// Values written as TOML strings and parsed with a descriptive error.
pub trait Textual: Sized {
    /// Parses the text, or explains what is wrong with it.
    fn parse_text(s: &str) -> Result<Self, String>;
}

macro_rules! textual_fromstr {
    ($t:ty, $what:literal) => {
        impl Textual for $t {
            fn parse_text(s: &str) -> Result<Self, String> {
                <$t>::from_str(s).map_err(|_| format!(concat!("invalid ", $what, " \"{}\""), s))
            }
        }
    };
}
textual_fromstr!(IpAddr, "IP address");
textual_fromstr!(Ipv4Addr, "IPv4 address");
textual_fromstr!(SocketAddr, "socket address (expected ADDRESS:PORT)");
textual_fromstr!(IpNetwork, "prefix (expected ADDRESS/LENGTH)");
textual_fromstr!(Ipv4Network, "IPv4 prefix (expected ADDRESS/LENGTH)");

impl Textual for Duration {
    fn parse_text(s: &str) -> Result<Self, String> {
        parse_duration(s)
    }
}

/// Parses durations such as `"3s"`, `"500ms"`, `"1.5s"`, `"2m"`, `"1h"` or `"1m30s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration \"{s}\" (expected a number and a unit ms, s, m or h, e.g. \"3s\" or \"500ms\")"
        )
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        let secs = value * scale;
        if !secs.is_finite() || secs > 1e9 {
            return Err(bad());
        }
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    Ok(total)
}

/// Formats a duration the way the configuration writes it (`"3s"`, `"500ms"`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn de_one<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<T, D::Error> {
    let s = String::deserialize(d)?;
    T::parse_text(&s).map_err(D::Error::custom)
}

fn de_opt<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<Option<T>, D::Error> {
    let s = String::deserialize(d)?;
    T::parse_text(&s).map(Some).map_err(D::Error::custom)
}

fn de_vec<'de, D: Deserializer<'de>, T: Textual>(d: D) -> Result<Vec<T>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| T::parse_text(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(D::Error::custom)
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            /// Every spelling accepted in the configuration.
            pub const ALL: &'static [&'static str] = &[$($s),+];
            /// The configuration spelling.
            pub fn as_str(self) -> &'static str { match self { $(Self::$var => $s),+ } }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$var),)+
                    _ => Err(format!("unknown {} \"{}\" (expected one of {})", $what, s, Self::ALL.join(", "))),
                }
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(D::Error::custom)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// How packets are forwarded.
    DataplaneMode, "dataplane mode", {
        /// fulcrum forwards VIP traffic on DPDK ports.
        Dpdk => "dpdk",
        /// Routing only: OSPF, health checks, RIB and kernel routes; no forwarding.
        Kernel => "kernel",
    }
);

string_enum!(
    /// OSPF interface network type.
    OspfNetwork, "network type", {
        /// Broadcast multi-access (DR election).
        Broadcast => "broadcast",
        /// Point-to-point.
        PointToPoint => "point-to-point",
    }
);

string_enum!(
    /// OSPF authentication type.
    AuthType, "authentication type", {
        /// No authentication (RFC 2328 D.4.1).
        None => "none",
        /// Simple password (RFC 2328 D.4.2).
        Simple => "simple",
        /// Keyed MD5 (RFC 2328 D.4.3).
        Md5 => "md5",
        /// HMAC-SHA-256 (RFC 5709).
        HmacSha256 => "hmac-sha256",
    }
);

string_enum!(
    /// How an unconditional prefix is announced in OSPF.
    AnnounceAs, "announcement kind", {
        /// A stub link in the router-LSA.
        Stub => "stub",
        /// An AS-external-LSA.
        External => "external",
    }
);

string_enum!(
    /// Transport protocol of a virtual service.
    Protocol, "protocol", {
        /// TCP.
        Tcp => "tcp",
        /// UDP.
        Udp => "udp",
    }
);

string_enum!(
    /// Real-server scheduler (the IPVS/DPVS names).
    Scheduler, "scheduler", {
        /// Round robin.
        Rr => "rr",
        /// Weighted round robin.
        Wrr => "wrr",
        /// Least connections.
        Lc => "lc",
        /// Weighted least connections.
        Wlc => "wlc",
        /// Locality-based least connections.
        Lblc => "lblc",
        /// Locality-based least connections with replication.
        Lblcr => "lblcr",
        /// Destination hashing.
        Dh => "dh",
        /// Source hashing.
        Sh => "sh",
        /// Shortest expected delay.
        Sed => "sed",
        /// Never queue.
        Nq => "nq",
        /// Weighted failover.
        Fo => "fo",
        /// Weighted overflow.
        Ovf => "ovf",
        /// Maglev hashing.
        Mh => "mh",
        /// Power of two choices.
        Twos => "twos",
        /// Consistent hashing (DPVS).
        Conhash => "conhash",
    }
);

string_enum!(
    /// Forwarding method of a virtual service.
    Forward, "forwarding method", {
        /// Full NAT: source and destination rewritten (DPVS FNAT).
        Fnat => "fnat",
        /// Destination NAT (LVS-NAT).
        Nat => "nat",
        /// Direct routing (LVS-DR).
        Dr => "dr",
        /// IP-in-IP tunnel (LVS-TUN).
        Tun => "tun",
    }
);

string_enum!(
    /// How the client address is passed to real servers in FNAT.
    ClientAddress, "client address method", {
        /// Not passed.
        None => "none",
        /// TCP option address (TOA).
        Toa => "toa",
        /// PROXY protocol v1 header.
        ProxyV1 => "proxy-v1",
        /// PROXY protocol v2 header.
        ProxyV2 => "proxy-v2",
    }
);

string_enum!(
    /// How a VIP is announced while its service holds quorum.
    AnnounceMethod, "announce method", {
        /// Not announced by fulcrum.
        None => "none",
        /// A /32 in OSPF.
        Ospf => "ospf",
        /// Gratuitous ARP on the interface of the VIP's subnet.
        Arp => "arp",
    }
);

string_enum!(
    /// Health-check type.
    CheckType, "check type", {
        /// TCP connect.
        Tcp => "tcp",
        /// HTTP GET.
        Http => "http",
        /// HTTPS GET.
        Https => "https",
        /// UDP request (and optional reply).
        Udp => "udp",
        /// ICMP echo.
        Ping => "ping",
        /// External program.
        Misc => "misc",
        /// Weight read from a file.
        File => "file",
    }
);

string_enum!(
    /// When a VIP shared by several services is announced.
    VipRequire, "requirement", {
        /// Every service of the VIP must hold quorum.
        All => "all",
        /// One service holding quorum is enough.
        Any => "any",
    }
);

/// OSPF AS-external metric type (1 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Type 1: comparable with link-state costs.
    Type1,
    /// Type 2: larger than any link-state path.
    Type2,
}

impl<'de> Deserialize<'de> for MetricType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match i64::deserialize(d)? {
            1 => Ok(MetricType::Type1),
            2 => Ok(MetricType::Type2),
            n => Err(D::Error::custom(format!(
                "invalid metric type {n} (expected 1 or 2)"
            ))),
        }
    }
}

/// An OSPF area id, written `"0.0.0.0"` or as an integer `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AreaId(pub Ipv4Addr);

impl<'de> Deserialize<'de> for AreaId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => u32::try_from(n)
                .map(|n| AreaId(Ipv4Addr::from(n)))
                .map_err(|_| D::Error::custom(format!("invalid area id {n}"))),
            Raw::S(s) => match s.parse::<Ipv4Addr>() {
                Ok(a) => Ok(AreaId(a)),
                Err(_) => s
                    .parse::<u32>()
                    .map(|n| AreaId(Ipv4Addr::from(n)))
                    .map_err(|_| {
                        D::Error::custom(format!(
                            "invalid area id \"{s}\" (expected dotted quad or integer)"
                        ))
                    }),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// The configuration.

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[global]`.
    #[serde(default)]
    pub global: Global,
    /// `[dataplane]`.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// `[[interface]]`.
    #[serde(default)]
    pub interface: Vec<Interface>,
    /// `[[route]]`: static routes.
    #[serde(default)]
    pub route: Vec<StaticRoute>,
    /// `[ospf]`.
    #[serde(default)]
    pub ospf: Option<Ospf>,
    /// `[[announce]]`: prefixes announced unconditionally.
    #[serde(default)]
    pub announce: Vec<Announce>,
    /// `[[service]]`: virtual services.
    #[serde(default)]
    pub service: Vec<Service>,
    /// `[vip."ADDRESS"]`: per-VIP announcement policy.
    #[serde(default)]
    pub vip: BTreeMap<String, VipPolicy>,
    /// `[timeouts]`: connection-table timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// `[vrrp]`: VRRP instances and sync groups.
    #[serde(default)]
    pub vrrp: Vrrp,
    /// `[bfd]`: BFD defaults and static sessions (see `docs/bfd.md`).
    #[serde(default)]
    pub bfd: Option<Bfd>,
}

/// `[global]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Router id (OSPF), unless `[ospf].router_id` overrides it.
    #[serde(default, deserialize_with = "de_opt")]
    pub router_id: Option<Ipv4Addr>,
    /// Control socket path.
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// Metrics listen address (`metrics_enabled = false` turns the endpoint off).
    #[serde(default = "default_metrics", deserialize_with = "de_one")]
    pub metrics: SocketAddr,
    /// Serve `/metrics` at all.
    #[serde(default = "yes")]
    pub metrics_enabled: bool,
    /// While this file exists, every health-driven VIP of the node is drained
    /// (withdrawn, or costed out); polled every second. See `docs/health.md`.
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
    /// On SIGTERM, how long the dataplane keeps forwarding established connections after
    /// the VIPs are withdrawn (milliseconds, 0–600000).
    #[serde(default = "default_shutdown_drain_ms")]
    pub shutdown_drain_ms: u64,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            router_id: None,
            control_socket: default_control_socket(),
            metrics: default_metrics(),
            metrics_enabled: true,
            drain_file: None,
            shutdown_drain_ms: default_shutdown_drain_ms(),
        }
    }
}

fn default_shutdown_drain_ms() -> u64 {
    2000
}

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}
fn default_metrics() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9477))
}
fn yes() -> bool {
    true
}

/// `[dataplane]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataplane {
    /// `dpdk` or `kernel` (default `kernel`).
    #[serde(default = "default_mode")]
    pub mode: DataplaneMode,
    /// Extra EAL arguments.
    #[serde(default)]
    pub eal: Vec<String>,
    /// Forwarding lcores.
    #[serde(default = "one_u32")]
    pub workers: u32,
    /// Microseconds a forwarding loop sleeps once it has found no frame for a while
    /// (0, the default: busy polling). For nodes that share their cores with other work.
    #[serde(default)]
    pub idle_sleep_us: u32,
    /// Most connections `fulcrum conns` lists (from all workers together; the answer
    /// says when it left some out). Default 10,000.
    #[serde(default = "default_conns_limit")]
    pub conns_limit: u32,
}

fn default_conns_limit() -> u32 {
    10_000
}

/// The lcores an EAL argument list gives with `-l`, `--lcores` or `-c` (main lcore
/// included), or `None` when it gives none (EAL then takes every CPU the process may
/// use) or one it cannot read.
pub fn eal_lcores(eal: &[String]) -> Option<Vec<u32>> {
    let mut found = None;
    let mut i = 0;
    while let Some(a) = eal.get(i) {
        i += 1;
        let (opt, inline) = if let Some(v) = a.strip_prefix("--lcores=") {
            ("--lcores", Some(v.to_string()))
        } else if let Some(v) = a.strip_prefix("-l").filter(|v| !v.is_empty()) {
            ("-l", Some(v.to_string()))
        } else if let Some(v) = a.strip_prefix("-c").filter(|v| !v.is_empty()) {
            ("-c", Some(v.to_string()))
        } else {
            (a.as_str(), None)
        };
        if !matches!(opt, "-l" | "--lcores" | "-c") {
            continue;
        }
        let v = match inline {
            Some(v) => v,
            None => {
                let v = eal.get(i)?.clone();
                i += 1;
                v
            }
        };
        found = Some(if opt == "-c" {
            coremask_lcores(&v)?
        } else {
            lcore_list(&v)?
        });
    }
    found
}

/// `0x7` → lcores 0, 1, 2.
fn coremask_lcores(v: &str) -> Option<Vec<u32>> {
    let hex = v.trim_start_matches("0x").trim_start_matches("0X");
    let mut out = Vec::new();
    for (n, ch) in hex.chars().rev().enumerate() {
        let d = ch.to_digit(16)?;
        for b in 0..4 {
            if d & (1 << b) != 0 {
                out.push(u32::try_from(n * 4 + b).ok()?);
            }
        }
    }
    Some(out)
}

/// An EAL lcore list: `0-3`, `0,2,4`, or the `--lcores` form `0@0,1@0,(2-3)@1`
/// (lcore sets before `@`, CPUs after it). Distinct lcore ids, ascending.
fn lcore_list(v: &str) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::new();
    let mut depth = 0u32;
    let mut items = Vec::new();
    let mut cur = String::new();
    for ch in v.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch);
            }
            ')' => {
                depth = depth.checked_sub(1)?;
                cur.push(ch);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    items.push(cur);
    for item in items {
        let lcores = item.split('@').next()?.trim();
        let lcores = lcores.trim_start_matches('(').trim_end_matches(')');
        for part in lcores.split(',') {
            let part = part.trim();
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                    if b < a || b - a > 1024 {
                        return None;
                    }
                    out.extend(a..=b);
                }
                None => out.push(part.parse().ok()?),
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            mode: default_mode(),
            eal: Vec::new(),
            workers: 1,
            idle_sleep_us: 0,
            conns_limit: default_conns_limit(),
        }
    }
}

fn default_mode() -> DataplaneMode {
    DataplaneMode::Kernel
}
fn one_u32() -> u32 {
    1
}

/// `[[interface]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// Port name = kernel twin name (kernel mode: the host interface).
    pub name: String,
    /// PCI address or vdev (dpdk mode only).
    #[serde(default)]
    pub device: Option<String>,
    /// Addresses set on the twin.
    #[serde(default, deserialize_with = "de_vec")]
    pub addresses: Vec<Ipv4Network>,
}

/// `[[route]]`: a static route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    /// Destination.
    #[serde(deserialize_with = "de_one")]
    pub prefix: Ipv4Network,
    /// Next hop.
    #[serde(default, deserialize_with = "de_opt")]
    pub via: Option<Ipv4Addr>,
    /// Outgoing interface.
    #[serde(default)]
    pub interface: Option<String>,
    /// Administrative distance (default 1).
    #[serde(default = "one_u8")]
    pub distance: u8,
}

fn one_u8() -> u8 {
    1
}

/// `[ospf]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ospf {
    /// Overrides `[global].router_id`.
    #[serde(default, deserialize_with = "de_opt")]
    pub router_id: Option<Ipv4Addr>,
    /// MinLSInterval (RFC 2328 B), default 5s.
    #[serde(default = "d5s", deserialize_with = "de_one")]
    pub min_ls_interval: Duration,
    /// MinLSArrival (RFC 2328 B), default 1s.
    #[serde(default = "d1s", deserialize_with = "de_one")]
    pub min_ls_arrival: Duration,
    /// Advertise max-metric (RFC 6987) for this long after start.
    #[serde(default, deserialize_with = "de_opt")]
    pub stub_router_on_startup: Option<Duration>,
    /// `[[ospf.interface]]`.
    #[serde(default)]
    pub interface: Vec<OspfInterface>,
}

fn d1s() -> Duration {
    Duration::from_secs(1)
}
fn d5s() -> Duration {
    Duration::from_secs(5)
}
fn d10s() -> Duration {
    Duration::from_secs(10)
}
fn d40s() -> Duration {
    Duration::from_secs(40)
}

/// `[[ospf.interface]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OspfInterface {
    /// Interface name (declared in `[[interface]]`).
    pub name: String,
    /// Area id.
    pub area: AreaId,
    /// Network type, default broadcast.
    #[serde(default = "default_network")]
    pub network: OspfNetwork,
    /// Interface output cost, default 10.
    #[serde(default = "ten")]
    pub cost: u32,
    /// Router priority, default 1.
    #[serde(default = "one_u32")]
    pub priority: u32,
    /// HelloInterval, default 10s.
    #[serde(default = "d10s", deserialize_with = "de_one")]
    pub hello_interval: Duration,
    /// RouterDeadInterval, default 40s.
    #[serde(default = "d40s", deserialize_with = "de_one")]
    pub dead_interval: Duration,
    /// RxmtInterval, default 5s.
    #[serde(default = "d5s", deserialize_with = "de_one")]
    pub retransmit_interval: Duration,
    /// InfTransDelay, default 1s.
    #[serde(default = "d1s", deserialize_with = "de_one")]
    pub transmit_delay: Duration,
    /// Advertise the subnet but send no hellos.
    #[serde(default)]
    pub passive: bool,
    /// Ignore the MTU in database description packets.
    #[serde(default)]
    pub mtu_ignore: bool,
    /// Authentication, default none.
    #[serde(default)]
    pub authentication: Authentication,
    /// Use BFD to detect neighbor loss.
    #[serde(default)]
    pub bfd: bool,
}

fn default_network() -> OspfNetwork {
    OspfNetwork::Broadcast
}
fn ten() -> u32 {
    10
}

/// OSPF interface authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    /// Type.
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// Key or password.
    #[serde(default)]
    pub key: Option<String>,
    /// Key id (md5, hmac-sha256).
    #[serde(default)]
    pub key_id: Option<u32>,
}

impl Default for Authentication {
    fn default() -> Self {
        Authentication {
            kind: AuthType::None,
            key: None,
            key_id: None,
        }
    }
}

/// `[[announce]]`: a prefix announced unconditionally.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announce {
    /// The prefix.
    #[serde(deserialize_with = "de_one")]
    pub prefix: Ipv4Network,
    /// Stub cost or external metric, default 1 (stub) / 20 (external).
    #[serde(default)]
    pub metric: Option<u32>,
    /// Stub link or AS-external.
    #[serde(default = "default_announce_as")]
    pub announce_as: AnnounceAs,
    /// External metric type (external only), default 2.
    #[serde(default)]
    pub metric_type: Option<MetricType>,
}

fn default_announce_as() -> AnnounceAs {
    AnnounceAs::Stub
}

/// `[[service]]`: a virtual service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// Virtual IP.
    #[serde(deserialize_with = "de_one")]
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u32,
    /// Protocol, default tcp.
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// Scheduler, default wlc.
    #[serde(default = "default_scheduler")]
    pub scheduler: Scheduler,
    /// Forwarding method.
    pub forward: Forward,
    /// FNAT local addresses.
    #[serde(default, deserialize_with = "de_vec")]
    pub local_addresses: Vec<IpAddr>,
    /// SYN proxy (tcp).
    #[serde(default)]
    pub syn_proxy: bool,
    /// Client address passing (fnat).
    #[serde(default = "default_client_address")]
    pub client_address: ClientAddress,
    /// Announcement method, default none.
    #[serde(default = "default_announce")]
    pub announce: AnnounceMethod,
    /// Minimum total weight of live real servers to announce the VIP, default 1.
    #[serde(default = "one_u32")]
    pub quorum: u32,
    /// Hysteresis around the quorum, default 0.
    #[serde(default)]
    pub hysteresis: u32,
    /// Persistence (session affinity) timeout.
    #[serde(default, deserialize_with = "de_opt")]
    pub persistence_timeout: Option<Duration>,
    /// Persistence granularity as a netmask, default 255.255.255.255.
    #[serde(default, deserialize_with = "de_opt")]
    pub persistence_netmask: Option<Ipv4Addr>,
    /// TCP established timeout of this service (default `[timeouts].tcp`).
    #[serde(default, deserialize_with = "de_opt")]
    pub established_timeout: Option<Duration>,
    /// Used when no real server is alive, `"ADDRESS:PORT"`.
    #[serde(default, deserialize_with = "de_opt")]
    pub sorry_server: Option<SocketAddr>,
    /// Client prefixes refused.
    #[serde(default, deserialize_with = "de_vec")]
    pub deny: Vec<IpNetwork>,
    /// When not empty, only these client prefixes are served.
    #[serde(default, deserialize_with = "de_vec")]
    pub allow: Vec<IpNetwork>,
    /// Health check of the real servers; none means always alive.
    #[serde(default)]
    pub check: Option<Check>,
    /// `[[service.real_server]]`.
    #[serde(default)]
    pub real_server: Vec<RealServer>,
}

fn default_protocol() -> Protocol {
    Protocol::Tcp
}
fn default_scheduler() -> Scheduler {
    Scheduler::Wlc
}
fn default_client_address() -> ClientAddress {
    ClientAddress::None
}
fn default_announce() -> AnnounceMethod {
    AnnounceMethod::None
}

impl Service {
    /// The port of a real server: its own or the service's.
    pub fn real_port(&self, rs: &RealServer) -> u16 {
        rs.port
            .or_else(|| u16::try_from(self.port).ok())
            .unwrap_or(0)
    }

    /// The check of a real server: its override or the service's.
    pub fn check_for<'a>(&'a self, rs: &'a RealServer) -> Option<&'a Check> {
        rs.check.as_ref().or(self.check.as_ref())
    }

    /// Total configured weight.
    pub fn total_weight(&self) -> u64 {
        self.real_server.iter().map(|r| u64::from(r.weight)).sum()
    }
}

/// `[[service.real_server]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServer {
    /// Address.
    #[serde(deserialize_with = "de_one")]
    pub address: IpAddr,
    /// Port, default the service port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Weight, default 1.
    #[serde(default = "one_u32")]
    pub weight: u32,
    /// Replaces the service's check for this server.
    #[serde(default)]
    pub check: Option<Check>,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Type.
    #[serde(rename = "type")]
    pub kind: CheckType,
    /// Time between checks, default 5s.
    #[serde(default = "d5s", deserialize_with = "de_one")]
    pub interval: Duration,
    /// Timeout of one attempt, default 3s.
    #[serde(default = "d3s", deserialize_with = "de_one")]
    pub timeout: Duration,
    /// Retries before a check counts as failed, default 1.
    #[serde(default = "one_u32")]
    pub retries: u32,
    /// Delay between retries, default 1s.
    #[serde(default = "d1s", deserialize_with = "de_one")]
    pub retry_delay: Duration,
    /// Random delay before the first check, up to this long.
    #[serde(default, deserialize_with = "de_opt")]
    pub warmup: Option<Duration>,
    /// Successes needed to go up, default 1.
    #[serde(default = "one_u32")]
    pub rise: u32,
    /// Failures needed to go down, default 1.
    #[serde(default = "one_u32")]
    pub fall: u32,
    /// Start in the down state (keepalived `alpha`).
    #[serde(default)]
    pub alpha: bool,
    /// Withdraw on shutdown (keepalived `omega`).
    #[serde(default)]
    pub omega: bool,
    /// Set weight 0 instead of removing a failed server.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// HTTP path (http, https), default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// Accepted HTTP status codes, default any 2xx.
    #[serde(default)]
    pub status_codes: Vec<u32>,
    /// Expected MD5 of the body, hex.
    #[serde(default)]
    pub digest: Option<String>,
    /// HTTP Host header.
    #[serde(default)]
    pub host: Option<String>,
    /// TLS SNI (https).
    #[serde(default)]
    pub sni: Option<String>,
    /// Bytes sent (udp, tcp).
    #[serde(default)]
    pub payload: Option<String>,
    /// A reply is required (udp).
    #[serde(default)]
    pub require_reply: bool,
    /// Program run (misc).
    #[serde(default)]
    pub program: Option<String>,
    /// Exit codes 2..255 set the weight to code-2 (misc).
    #[serde(default)]
    pub dynamic: bool,
    /// File holding a weight (file).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Address probed instead of the real server's.
    #[serde(default, deserialize_with = "de_opt")]
    pub connect_ip: Option<IpAddr>,
    /// Port probed instead of the real server's.
    #[serde(default)]
    pub connect_port: Option<u16>,
    /// Source address of probes.
    #[serde(default, deserialize_with = "de_opt")]
    pub bindto: Option<IpAddr>,
}

fn d3s() -> Duration {
    Duration::from_secs(3)
}

/// `[vip."ADDRESS"]`: announcement policy of one VIP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipPolicy {
    /// Which services of the VIP must hold quorum, default all.
    #[serde(default = "default_require")]
    pub require: VipRequire,
    /// Instead of withdrawing, keep announcing with this metric.
    #[serde(default)]
    pub cost_out: Option<u32>,
    /// Minimum time between two announcement changes (damping), default 0s.
    #[serde(default = "d0s", deserialize_with = "de_one")]
    pub hold_time: Duration,
    /// OSPF stub metric the VIP is announced with while healthy, default 1.
    #[serde(default = "one_u32")]
    pub metric: u32,
    /// While this file exists, this VIP is drained (besides `[global].drain_file`).
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
}

fn default_require() -> VipRequire {
    VipRequire::All
}
fn d0s() -> Duration {
    Duration::ZERO
}

/// `[timeouts]`: connection timeouts (like `ipvsadm --set tcp tcpfin udp`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Established TCP, default 900s.
    #[serde(default = "d900s", deserialize_with = "de_one")]
    pub tcp: Duration,
    /// TCP after FIN, default 120s.
    #[serde(default = "d120s", deserialize_with = "de_one")]
    pub tcpfin: Duration,
    /// UDP, default 300s.
    #[serde(default = "d300s", deserialize_with = "de_one")]
    pub udp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: d900s(),
            tcpfin: d120s(),
            udp: d300s(),
        }
    }
}

fn d900s() -> Duration {
    Duration::from_secs(900)
}
fn d120s() -> Duration {
    Duration::from_secs(120)
}
fn d300s() -> Duration {
    Duration::from_secs(300)
}

// ---------------------------------------------------------------------------------------
// VRRP (`[vrrp]`, see docs/vrrp.md).

/// `[vrrp]`: keepalived's `vrrp_instance` and `vrrp_sync_group`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vrrp {
    /// `[[vrrp.instance]]`.
    #[serde(default)]
    pub instance: Vec<VrrpInstance>,
    /// `[[vrrp.sync_group]]`.
    #[serde(default)]
    pub sync_group: Vec<VrrpSyncGroup>,
}

string_enum!(
    /// `state` hint of a VRRP instance (keepalived starts every non-owner in BACKUP).
    VrrpStateHint, "VRRP state", {
        /// `MASTER`.
        Master => "MASTER",
        /// `BACKUP` (the default).
        Backup => "BACKUP",
    }
);

string_enum!(
    /// VRRPv2 authentication type (AH is deprecated and not supported).
    VrrpAuthType, "VRRP auth type", {
        /// Simple text password (keepalived's `auth_type PASS`).
        Pass => "PASS",
    }
);

/// `[[vrrp.instance]]`: one virtual router.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    /// Unique name (keepalived's `vrrp_instance NAME`).
    pub name: String,
    /// Interface the adverts are sent and received on.
    pub interface: String,
    /// `virtual_router_id`, 1..=255.
    pub virtual_router_id: u32,
    /// Priority 1..=255 (255 = address owner), default 100.
    #[serde(default = "hundred")]
    pub priority: u32,
    /// Advertisement interval, default 1s (v2: whole seconds; v3: centiseconds).
    #[serde(default = "d1s", deserialize_with = "de_one")]
    pub advert_int: Duration,
    /// Protocol version 2 or 3, default 2.
    #[serde(default = "two_u8")]
    pub version: u8,
    /// `state` hint, default BACKUP.
    #[serde(default = "default_vrrp_state")]
    pub state: VrrpStateHint,
    /// Preempt a lower-priority master, default true (`false` = keepalived's `nopreempt`).
    #[serde(default = "yes")]
    pub preempt: bool,
    /// Wait this long before preempting, default 0s.
    #[serde(default = "d0s", deserialize_with = "de_one")]
    pub preempt_delay: Duration,
    /// v3 Accept_Mode (keepalived accepts unless `no_accept`), default true.
    #[serde(default = "yes")]
    pub accept: bool,
    /// v2 authentication `{ type = "PASS", password = "..." }`.
    #[serde(default)]
    pub authentication: Option<VrrpAuthentication>,
    /// Source of the adverts (keepalived's `mcast_src_ip`/`unicast_src_ip`); default the
    /// interface's primary IPv4 address.
    #[serde(default, deserialize_with = "de_opt")]
    pub source_ip: Option<Ipv4Addr>,
    /// When not empty, adverts go to these peers instead of 224.0.0.18.
    #[serde(default, deserialize_with = "de_vec")]
    pub unicast_peer: Vec<Ipv4Addr>,
    /// Interfaces whose link state is tracked: `"eth1"` (weight 0: FAULT while down) or
    /// `{ name = "eth1", weight = -20 }`. The instance's own interface is always tracked.
    #[serde(default)]
    pub track_interface: Vec<VrrpTrackInterface>,
    /// Virtual addresses: `"10.0.0.100"` (a /32), `"10.0.0.100/24"`, or
    /// `{ address = "10.0.0.100/24", dev = "eth1" }`.
    #[serde(default)]
    pub virtual_ipaddress: Vec<VrrpVip>,
    /// Delay of the second gratuitous-ARP burst after becoming master, default 5s (0 = none).
    #[serde(default = "d5s", deserialize_with = "de_one")]
    pub garp_master_delay: Duration,
    /// Gratuitous ARPs per VIP in each burst, default 5.
    #[serde(default = "five_u32")]
    pub garp_master_repeat: u32,
    /// Interval of gratuitous-ARP refreshes while master, default 0s (off).
    #[serde(default = "d0s", deserialize_with = "de_one")]
    pub garp_master_refresh: Duration,
}

fn hundred() -> u32 {
    100
}
fn two_u8() -> u8 {
    2
}
fn five_u32() -> u32 {
    5
}
fn default_vrrp_state() -> VrrpStateHint {
    VrrpStateHint::Backup
}

/// VRRPv2 simple-text authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpAuthentication {
    /// `PASS`.
    #[serde(rename = "type")]
    pub kind: VrrpAuthType,
    /// The password (keepalived uses the first 8 bytes).
    pub password: String,
}

/// A tracked interface of a VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "TrackRepr")]
pub struct VrrpTrackInterface {
    /// Interface name.
    pub name: String,
    /// keepalived's weight (0 = FAULT while down), -253..=253.
    pub weight: i32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TrackRepr {
    Name(String),
    Table {
        name: String,
        #[serde(default)]
        weight: i32,
    },
}

impl TryFrom<TrackRepr> for VrrpTrackInterface {
    type Error = String;
    fn try_from(r: TrackRepr) -> Result<Self, String> {
        Ok(match r {
            TrackRepr::Name(name) => VrrpTrackInterface { name, weight: 0 },
            TrackRepr::Table { name, weight } => VrrpTrackInterface { name, weight },
        })
    }
}

/// A virtual address of a VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "VipRepr")]
pub struct VrrpVip {
    /// Address and prefix length (a bare address is a /32, as in keepalived).
    pub address: Ipv4Network,
    /// Interface the address is added to; default the instance's interface.
    pub dev: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VipRepr {
    Text(String),
    Table {
        address: String,
        #[serde(default)]
        dev: Option<String>,
    },
}

impl TryFrom<VipRepr> for VrrpVip {
    type Error = String;
    fn try_from(r: VipRepr) -> Result<Self, String> {
        let (text, dev) = match r {
            VipRepr::Text(t) => (t, None),
            VipRepr::Table { address, dev } => (address, dev),
        };
        let address = if text.contains('/') {
            Ipv4Network::parse_text(&text)?
        } else {
            let ip = Ipv4Addr::parse_text(&text)?;
            Ipv4Network::new(ip, 32).map_err(|e| e.to_string())?
        };
        Ok(VrrpVip { address, dev })
    }
}

/// `[[vrrp.sync_group]]`: instances that fail over together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSyncGroup {
    /// Unique name.
    pub name: String,
    /// Names of the member instances.
    pub group: Vec<String>,
}

impl VrrpInstance {
    /// The `vrrp` crate's configuration of this instance, with `source_ip` as the primary
    /// address (the configured `source_ip` wins when set). The instance's own interface is
    /// tracked with weight 0 (FAULT while its link is down), as keepalived does.
    pub fn core_config(&self, source_ip: Ipv4Addr) -> vrrp::InstanceConfig {
        let vrid = u8::try_from(self.virtual_router_id).unwrap_or(0);
        let mut c = vrrp::InstanceConfig::new(
            self.name.clone(),
            self.interface.clone(),
            vrid,
            self.source_ip.unwrap_or(source_ip),
        );
        c.state = match self.state {
            VrrpStateHint::Master => vrrp::InitialState::Master,
            VrrpStateHint::Backup => vrrp::InitialState::Backup,
        };
        c.priority = u8::try_from(self.priority).unwrap_or(0);
        c.advert_int = self.advert_int;
        c.version = if self.version == 3 {
            vrrp::Version::V3
        } else {
            vrrp::Version::V2
        };
        c.nopreempt = !self.preempt;
        c.preempt_delay = self.preempt_delay;
        c.accept = self.accept;
        c.authentication = self.authentication.as_ref().map(|a| vrrp::Authentication {
            auth_pass: a.password.clone(),
        });
        c.virtual_ipaddress = self
            .virtual_ipaddress
            .iter()
            .map(|v| v.address.ip())
            .collect();
        c.unicast_src_ip = self.source_ip;
        c.unicast_peer = self.unicast_peer.clone();
        c.track_interface = vec![vrrp::Track::new(self.interface.clone(), 0)];
        for t in &self.track_interface {
            if t.name != self.interface {
                c.track_interface
                    .push(vrrp::Track::new(t.name.clone(), t.weight));
            } else if let Some(own) = c.track_interface.first_mut() {
                own.weight = t.weight;
            }
        }
        c.garp_master_delay = self.garp_master_delay;
        c.garp_master_repeat = self.garp_master_repeat;
        c.garp_master_refresh = self.garp_master_refresh;
        c
    }

    /// The interface a VIP goes on.
    pub fn vip_dev<'a>(&'a self, vip: &'a VrrpVip) -> &'a str {
        vip.dev.as_deref().unwrap_or(&self.interface)
    }
}

fn valid_ifname(n: &str) -> bool {
    !(n.is_empty() || n.len() > 15 || n.contains(['/', ' ', '\t']) || n == "." || n == "..")
}

// ---------------------------------------------------------------------------------------
// Loading.

// ---------------------------------------------------------------------------------------
// `[bfd]` (RFC 5880/5881 sessions; `docs/bfd.md`).

string_enum!(
    /// BFD authentication type (RFC 5880 §4.2–§4.4), spelled as BIRD spells it.
    BfdAuthType, "BFD authentication type", {
        /// Simple password (§4.2), 1 to 16 bytes.
        Simple => "simple",
        /// Keyed MD5 (§4.3), key up to 16 bytes.
        Md5 => "md5",
        /// Meticulous keyed MD5 (§4.3).
        MeticulousMd5 => "meticulous-md5",
        /// Keyed SHA1 (§4.4), key up to 20 bytes.
        Sha1 => "sha1",
        /// Meticulous keyed SHA1 (§4.4).
        MeticulousSha1 => "meticulous-sha1",
    }
);

/// BFD authentication of a session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdAuthentication {
    /// Type.
    #[serde(rename = "type")]
    pub kind: BfdAuthType,
    /// Key ID (0–255).
    pub key_id: u32,
    /// Password or key.
    pub key: String,
}

/// `[bfd]`: defaults for every session (OSPF neighbors on `bfd = true` interfaces and
/// static peers). FRR's defaults: 300 ms × 3.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bfd {
    /// Desired Min TX interval in milliseconds once Up (default 300).
    #[serde(default = "bfd_300")]
    pub min_tx_ms: u32,
    /// Required Min RX interval in milliseconds (default 300).
    #[serde(default = "bfd_300")]
    pub min_rx_ms: u32,
    /// Detect multiplier (default 3).
    #[serde(default = "bfd_3")]
    pub multiplier: u32,
    /// Authentication, default none.
    #[serde(default)]
    pub authentication: Option<BfdAuthentication>,
    /// `[[bfd.peer]]`: static single-hop sessions.
    #[serde(default)]
    pub peer: Vec<BfdPeer>,
}

impl Default for Bfd {
    fn default() -> Self {
        Bfd {
            min_tx_ms: bfd_300(),
            min_rx_ms: bfd_300(),
            multiplier: bfd_3(),
            authentication: None,
            peer: Vec::new(),
        }
    }
}

fn bfd_300() -> u32 {
    300
}
fn bfd_3() -> u32 {
    3
}

/// `[[bfd.peer]]`: a static BFD session; unset timers and authentication come from `[bfd]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BfdPeer {
    /// Peer address.
    #[serde(deserialize_with = "de_one")]
    pub address: Ipv4Addr,
    /// Interface the peer is reached on (single hop).
    pub interface: String,
    /// Local address (default: the interface's first IPv4 address).
    #[serde(default, deserialize_with = "de_opt")]
    pub local: Option<Ipv4Addr>,
    /// Overrides `[bfd].min_tx_ms`.
    #[serde(default)]
    pub min_tx_ms: Option<u32>,
    /// Overrides `[bfd].min_rx_ms`.
    #[serde(default)]
    pub min_rx_ms: Option<u32>,
    /// Overrides `[bfd].multiplier`.
    #[serde(default)]
    pub multiplier: Option<u32>,
    /// Overrides `[bfd].authentication`.
    #[serde(default)]
    pub authentication: Option<BfdAuthentication>,
}

/// The effective parameters of one BFD session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdTimers {
    /// Desired Min TX (ms).
    pub min_tx_ms: u32,
    /// Required Min RX (ms).
    pub min_rx_ms: u32,
    /// Detect multiplier.
    pub multiplier: u32,
    /// Authentication.
    pub authentication: Option<BfdAuthentication>,
}

impl Bfd {
    /// The parameters of OSPF-driven sessions: the `[bfd]` defaults.
    pub fn defaults(&self) -> BfdTimers {
        BfdTimers {
            min_tx_ms: self.min_tx_ms,
            min_rx_ms: self.min_rx_ms,
            multiplier: self.multiplier,
            authentication: self.authentication.clone(),
        }
    }

    /// The parameters of a static peer: its overrides over the defaults.
    pub fn peer_timers(&self, p: &BfdPeer) -> BfdTimers {
        BfdTimers {
            min_tx_ms: p.min_tx_ms.unwrap_or(self.min_tx_ms),
            min_rx_ms: p.min_rx_ms.unwrap_or(self.min_rx_ms),
            multiplier: p.multiplier.unwrap_or(self.multiplier),
            authentication: p
                .authentication
                .clone()
                .or_else(|| self.authentication.clone()),
        }
    }
}

impl Config {
    /// `[bfd]`, or its defaults when the section is absent.
    pub fn bfd_or_default(&self) -> Bfd {
        self.bfd.clone().unwrap_or_default()
    }
}

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }

    /// Parses and validates a configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let index = SpanIndex::new(text);
        let config: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let (line, key) = match e.span() {
                    Some(span) if index.doc.is_some() => {
                        (index.line_of(span.start), index.key_at(span))
                    }
                    Some(span) => {
                        let line = index.line_of(span.start);
                        (line, textual_key_at(text, line))
                    }
                    None => (0, DOCUMENT.to_string()),
                };
                let message = e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ConfigError::Invalid(vec![Diagnostic {
                    line,
                    key,
                    message,
                }]));
            }
        };
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            let mut d: Vec<Diagnostic> = problems
                .into_iter()
                .map(|(path, message)| Diagnostic {
                    line: index.line_of_path(&path),
                    key: format_path(&path),
                    message,
                })
                .collect();
            d.sort_by_key(|x| x.line);
            Err(ConfigError::Invalid(d))
        }
    }

    /// The router id: `[ospf].router_id`, else `[global].router_id`.
    pub fn router_id(&self) -> Option<Ipv4Addr> {
        self.ospf
            .as_ref()
            .and_then(|o| o.router_id)
            .or(self.global.router_id)
    }

    /// The policy of a VIP (the default policy when it has no `[vip]` entry).
    pub fn vip_policy(&self, vip: IpAddr) -> VipPolicy {
        self.vip
            .iter()
            .find(|(k, _)| k.parse::<IpAddr>().ok() == Some(vip))
            .map(|(_, p)| p.clone())
            .unwrap_or(VipPolicy {
                require: VipRequire::All,
                cost_out: None,
                hold_time: Duration::ZERO,
                metric: 1,
                drain_file: None,
            })
    }

    /// Semantic validation: every problem as (key path, message).
    pub fn validate(&self) -> Vec<(Vec<Seg>, String)> {
        let mut v = Validator::default();
        v.config(self);
        v.problems
    }
}

// ---------------------------------------------------------------------------------------
// Key paths and spans.

const DOCUMENT: &str = "(document)";

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index (0-based).
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Self {
        Seg::Key(s.to_string())
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Builds a key path: `path!["service", 1, "scheduler"]`.
macro_rules! path {
    ($($s:expr),* $(,)?) => { vec![$(Seg::from($s)),*] };
}

/// Formats a key path as `service[1].real_server[0].address`.
pub fn format_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("\"{k}\""));
                }
            }
        }
    }
    if out.is_empty() {
        DOCUMENT.to_string()
    } else {
        out
    }
}

/// The key path of a line in a file that does not parse: the last table header above it
/// and the key on the line, read textually.
fn textual_key_at(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let upto = lines.get(..line.saturating_sub(1)).unwrap_or(&lines);
    let mut table = String::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in upto {
        let t = l.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = seen.entry(name.clone()).or_insert(0);
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
        }
    }
    let key = lines
        .get(line.saturating_sub(1))
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match (table.is_empty(), key) {
        (true, None) => DOCUMENT.to_string(),
        (true, Some(k)) => k,
        (false, None) => table,
        (false, Some(k)) => format!("{table}.{k}"),
    }
}

/// Maps byte offsets to lines and key paths to spans, from a second, span-keeping parse.
struct SpanIndex {
    line_starts: Vec<usize>,
    /// (span, path) of every key, value and table header.
    entries: Vec<(Range<usize>, Vec<Seg>)>,
    doc: Option<toml_edit::ImDocument<String>>,
}

impl SpanIndex {
    fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let doc = toml_edit::ImDocument::parse(text.to_string()).ok();
        let mut entries = Vec::new();
        if let Some(doc) = &doc {
            collect_table(doc.as_table(), &mut Vec::new(), &mut entries);
        }
        SpanIndex {
            line_starts,
            entries,
            doc,
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// The key path of the innermost entry holding a span (or the closest one before it).
    fn key_at(&self, span: Range<usize>) -> String {
        let containing = self
            .entries
            .iter()
            .filter(|(r, _)| r.start <= span.start && span.start < r.end.max(r.start + 1))
            .max_by_key(|(r, p)| (p.len(), r.start));
        let chosen = containing.or_else(|| {
            self.entries
                .iter()
                .filter(|(r, _)| r.start <= span.start)
                .max_by_key(|(r, _)| r.start)
        });
        chosen
            .map(|(_, p)| format_path(p))
            .unwrap_or_else(|| DOCUMENT.to_string())
    }

    /// The line of the deepest existing prefix of `path`.
    fn line_of_path(&self, path: &[Seg]) -> usize {
        let Some(doc) = &self.doc else { return 0 };
        let mut best = None;
        let mut node = Node::Table(doc.as_table());
        for seg in path {
            let next = match (node, seg) {
                (Node::Table(t), Seg::Key(k)) => t.get_key_value(k).map(|(key, item)| {
                    best = key.span().or(best.clone());
                    Node::from_item(item)
                }),
                (Node::Inline(t), Seg::Key(k)) => t.get_key_value(k).map(|(key, item)| {
                    best = key.span().or(best.clone());
                    Node::from_item(item)
                }),
                (Node::Tables(a), Seg::Index(i)) => a.get(*i).map(|t| {
                    best = t.span().or(best.clone());
                    Node::Table(t)
                }),
                (Node::Array(a), Seg::Index(i)) => a.get(*i).map(|v| {
                    best = v.span().or(best.clone());
                    Node::from_value(v)
                }),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        best.map(|r| self.line_of(r.start)).unwrap_or(0)
    }
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a toml_edit::Table),
    Inline(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Array(&'a toml_edit::Array),
    Leaf,
}

impl<'a> Node<'a> {
    fn from_item(item: &'a toml_edit::Item) -> Node<'a> {
        match item {
            toml_edit::Item::Table(t) => Node::Table(t),
            toml_edit::Item::ArrayOfTables(a) => Node::Tables(a),
            toml_edit::Item::Value(v) => Node::from_value(v),
            toml_edit::Item::None => Node::Leaf,
        }
    }
    fn from_value(v: &'a toml_edit::Value) -> Node<'a> {
        match v {
            toml_edit::Value::InlineTable(t) => Node::Inline(t),
            toml_edit::Value::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }
}

fn collect_table(
    t: &toml_edit::Table,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Range<usize>, Vec<Seg>)>,
) {
    if let Some(s) = t.span() {
        out.push((s, path.clone()));
    }
    for (k, item) in t.iter() {
        path.push(Seg::Key(k.to_string()));
        if let Some(s) = t.key(k).and_then(|key| key.span()) {
            out.push((s, path.clone()));
        }
        collect_item(item, path, out);
        path.pop();
    }
}

fn collect_item(
    item: &toml_edit::Item,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Range<usize>, Vec<Seg>)>,
) {
    match item {
        toml_edit::Item::Table(t) => collect_table(t, path, out),
        toml_edit::Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_table(t, path, out);
                path.pop();
            }
        }
        toml_edit::Item::Value(v) => collect_value(v, path, out),
        toml_edit::Item::None => {}
    }
}

fn collect_value(
    v: &toml_edit::Value,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Range<usize>, Vec<Seg>)>,
) {
    if let Some(s) = v.span() {
        out.push((s, path.clone()));
    }
    match v {
        toml_edit::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_value(x, path, out);
                path.pop();
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (k, x) in t.iter() {
                path.push(Seg::Key(k.to_string()));
                if let Some(s) = t.key(k).and_then(|key| key.span()) {
                    out.push((s, path.clone()));
                }
                collect_value(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Semantic validation.

#[derive(Default)]
struct Validator {
    problems: Vec<(Vec<Seg>, String)>,
}

fn whole_seconds(d: Duration) -> Option<u64> {
    (d.subsec_nanos() == 0).then_some(d.as_secs())
}

fn is_contiguous_mask(m: Ipv4Addr) -> bool {
    let v = u32::from(m);
    v.leading_ones() + v.trailing_zeros() == 32
}

impl Validator {
    fn err(&mut self, path: Vec<Seg>, msg: impl Into<String>) {
        self.problems.push((path, msg.into()));
    }

    fn config(&mut self, c: &Config) {
        self.global(c);
        self.dataplane(c);
        let ifnames = self.interfaces(c);
        self.routes(c, &ifnames);
        self.ospf(c, &ifnames);
        self.announces(c);
        self.services(c);
        self.vips(c);
        self.timeouts(c);
        self.vrrp(c, &ifnames);
        self.bfd(c);
    }

    fn global(&mut self, c: &Config) {
        if !c.global.control_socket.is_absolute() {
            self.err(
                path!["global", "control_socket"],
                format!(
                    "control socket path {} must be absolute",
                    c.global.control_socket.display()
                ),
            );
        }
        if c.global.router_id == Some(Ipv4Addr::UNSPECIFIED) {
            self.err(
                path!["global", "router_id"],
                "router id 0.0.0.0 is not allowed",
            );
        }
        if c.global.shutdown_drain_ms > 600_000 {
            self.err(
                path!["global", "shutdown_drain_ms"],
                format!(
                    "shutdown drain must be at most 600000 ms (10 minutes), not {}",
                    c.global.shutdown_drain_ms
                ),
            );
        }
    }

    fn dataplane(&mut self, c: &Config) {
        if c.dataplane.workers == 0 || c.dataplane.workers > 128 {
            self.err(
                path!["dataplane", "workers"],
                format!(
                    "workers must be between 1 and 128, not {}",
                    c.dataplane.workers
                ),
            );
        }
        if c.dataplane.mode == DataplaneMode::Dpdk {
            // One worker lcore per worker besides the main lcore.
            if let Some(lcores) = eal_lcores(&c.dataplane.eal) {
                let have = lcores.len().saturating_sub(1);
                if have < c.dataplane.workers as usize {
                    self.err(
                        path!["dataplane", "workers"],
                        format!(
                            "{} workers need {} lcores besides the main one, but \
                             dataplane.eal gives {have} ({lcores:?}, the first is the main \
                             lcore)",
                            c.dataplane.workers, c.dataplane.workers
                        ),
                    );
                }
            }
        }
        if c.dataplane.mode == DataplaneMode::Kernel && !c.dataplane.eal.is_empty() {
            self.err(
                path!["dataplane", "eal"],
                "eal arguments are only used in dpdk mode",
            );
        }
        if c.dataplane.mode == DataplaneMode::Dpdk && c.interface.is_empty() {
            self.err(
                path!["dataplane", "mode"],
                "dpdk mode needs at least one [[interface]] with a device",
            );
        }
    }

    fn interfaces(&mut self, c: &Config) -> HashSet<String> {
        let mut names = HashSet::new();
        for (i, ifc) in c.interface.iter().enumerate() {
            let n = &ifc.name;
            if n.is_empty() || n.len() > 15 || n.contains(['/', ' ', '\t']) || n == "." || n == ".."
            {
                self.err(
                    path!["interface", i, "name"],
                    format!(
                        "invalid interface name \"{n}\" (1 to 15 characters, no '/' or spaces)"
                    ),
                );
            }
            if !names.insert(n.clone()) {
                self.err(
                    path!["interface", i, "name"],
                    format!("interface \"{n}\" declared twice"),
                );
            }
            match (c.dataplane.mode, &ifc.device) {
                (DataplaneMode::Dpdk, None) => self.err(
                    path!["interface", i, "device"],
                    format!("interface \"{n}\" needs a device (PCI address or vdev) in dpdk mode"),
                ),
                (DataplaneMode::Kernel, Some(_)) => self.err(
                    path!["interface", i, "device"],
                    "device is only used in dpdk mode",
                ),
                _ => {}
            }
        }
        names
    }

    fn routes(&mut self, c: &Config, ifnames: &HashSet<String>) {
        let mut seen = HashSet::new();
        for (i, r) in c.route.iter().enumerate() {
            if r.prefix.network() != r.prefix.ip() {
                self.err(
                    path!["route", i, "prefix"],
                    format!(
                        "prefix {} has host bits set (did you mean {}/{}?)",
                        r.prefix,
                        r.prefix.network(),
                        r.prefix.prefix()
                    ),
                );
            }
            if r.via.is_none() && r.interface.is_none() {
                self.err(path!["route", i], "a route needs via, interface or both");
            }
            if let Some(ifc) = &r.interface {
                if c.dataplane.mode == DataplaneMode::Dpdk && !ifnames.contains(ifc) {
                    self.err(
                        path!["route", i, "interface"],
                        format!("interface \"{ifc}\" is not declared in [[interface]]"),
                    );
                }
            }
            if r.distance == 0 {
                self.err(
                    path!["route", i, "distance"],
                    "distance 0 is reserved for connected routes",
                );
            }
            if !seen.insert(r.prefix) {
                self.err(
                    path!["route", i, "prefix"],
                    format!("route {} declared twice", r.prefix),
                );
            }
        }
    }

    fn ospf(&mut self, c: &Config, ifnames: &HashSet<String>) {
        let Some(o) = &c.ospf else { return };
        if o.router_id == Some(Ipv4Addr::UNSPECIFIED) {
            self.err(
                path!["ospf", "router_id"],
                "router id 0.0.0.0 is not allowed",
            );
        }
        if c.router_id().is_none() {
            self.err(
                path!["ospf"],
                "OSPF needs a router id: set [global].router_id or [ospf].router_id",
            );
        }
        if o.interface.is_empty() {
            self.err(path!["ospf"], "[ospf] has no [[ospf.interface]]");
        }
        if o.min_ls_arrival > o.min_ls_interval {
            self.err(
                path!["ospf", "min_ls_arrival"],
                "min_ls_arrival must not exceed min_ls_interval",
            );
        }
        let mut seen = HashSet::new();
        for (i, oi) in o.interface.iter().enumerate() {
            let p = |k: &str| path!["ospf", "interface", i, k];
            if !ifnames.contains(&oi.name) {
                self.err(
                    p("name"),
                    format!("interface \"{}\" is not declared in [[interface]]", oi.name),
                );
            }
            if !seen.insert(oi.name.clone()) {
                self.err(
                    p("name"),
                    format!("OSPF interface \"{}\" declared twice", oi.name),
                );
            }
            if oi.cost == 0 || oi.cost > 65535 {
                self.err(
                    p("cost"),
                    format!("cost must be between 1 and 65535, not {}", oi.cost),
                );
            }
            if oi.priority > 255 {
                self.err(
                    p("priority"),
                    format!("priority must be between 0 and 255, not {}", oi.priority),
                );
            }
            let hello = whole_seconds(oi.hello_interval);
            match hello {
                Some(h) if (1..=65535).contains(&h) => {}
                _ => self.err(
                    p("hello_interval"),
                    "hello_interval must be whole seconds between 1s and 65535s",
                ),
            }
            match whole_seconds(oi.dead_interval) {
                Some(d) if d >= 1 && d <= u64::from(u32::MAX) => {
                    if let Some(h) = hello {
                        if d <= h {
                            self.err(
                                p("dead_interval"),
                                "dead_interval must be longer than hello_interval",
                            );
                        }
                    }
                }
                _ => self.err(
                    p("dead_interval"),
                    "dead_interval must be whole seconds, at least 1s",
                ),
            }
            match whole_seconds(oi.retransmit_interval) {
                Some(r) if (1..=3600).contains(&r) => {}
                _ => self.err(
                    p("retransmit_interval"),
                    "retransmit_interval must be whole seconds between 1s and 3600s",
                ),
            }
            match whole_seconds(oi.transmit_delay) {
                Some(r) if (1..=3600).contains(&r) => {}
                _ => self.err(
                    p("transmit_delay"),
                    "transmit_delay must be whole seconds between 1s and 3600s",
                ),
            }
            if oi.network == OspfNetwork::PointToPoint && oi.priority != 1 {
                self.err(
                    p("priority"),
                    "priority is not used on point-to-point interfaces",
                );
            }
            self.auth(
                &oi.authentication,
                path!["ospf", "interface", i, "authentication"],
            );
        }
    }

    fn bfd(&mut self, c: &Config) {
        let Some(b) = &c.bfd else { return };
        self.bfd_timers(
            Some(b.min_tx_ms),
            Some(b.min_rx_ms),
            Some(b.multiplier),
            b.authentication.as_ref(),
            path!["bfd"],
        );
        let mut seen = HashSet::new();
        for (i, p) in b.peer.iter().enumerate() {
            let a = p.address;
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                self.err(
                    path!["bfd", "peer", i, "address"],
                    format!("peer address {a} is not a unicast address"),
                );
            }
            if p.interface.is_empty() || p.interface.len() > 15 {
                self.err(
                    path!["bfd", "peer", i, "interface"],
                    format!("invalid interface name \"{}\"", p.interface),
                );
            }
            if !seen.insert((a, p.interface.clone())) {
                self.err(
                    path!["bfd", "peer", i, "address"],
                    format!("BFD peer {a} on {} declared twice", p.interface),
                );
            }
            self.bfd_timers(
                p.min_tx_ms,
                p.min_rx_ms,
                p.multiplier,
                p.authentication.as_ref(),
                path!["bfd", "peer", i],
            );
        }
    }

    fn bfd_timers(
        &mut self,
        tx: Option<u32>,
        rx: Option<u32>,
        mult: Option<u32>,
        auth: Option<&BfdAuthentication>,
        base: Vec<Seg>,
    ) {
        let sub = |k: &str| {
            let mut p = base.clone();
            p.push(Seg::from(k));
            p
        };
        // FRR bfdd's ranges: intervals 10–60000 ms, detect multiplier 2–255.
        for (k, v) in [("min_tx_ms", tx), ("min_rx_ms", rx)] {
            if let Some(v) = v {
                if !(10..=60_000).contains(&v) {
                    self.err(
                        sub(k),
                        format!("{k} must be between 10 and 60000 (ms), not {v}"),
                    );
                }
            }
        }
        if let Some(m) = mult {
            if !(2..=255).contains(&m) {
                self.err(
                    sub("multiplier"),
                    format!("multiplier must be between 2 and 255, not {m}"),
                );
            }
        }
        if let Some(a) = auth {
            let mut p = sub("authentication");
            if a.key_id > 255 {
                let mut q = p.clone();
                q.push(Seg::from("key_id"));
                self.err(
                    q,
                    format!("key_id must be between 0 and 255, not {}", a.key_id),
                );
            }
            let max = match a.kind {
                BfdAuthType::Simple | BfdAuthType::Md5 | BfdAuthType::MeticulousMd5 => 16,
                BfdAuthType::Sha1 | BfdAuthType::MeticulousSha1 => 20,
            };
            if a.key.is_empty() || a.key.len() > max {
                p.push(Seg::from("key"));
                self.err(
                    p,
                    format!(
                        "a {} key must be 1 to {max} bytes, not {}",
                        a.kind,
                        a.key.len()
                    ),
                );
            }
        }
    }

    fn auth(&mut self, a: &Authentication, base: Vec<Seg>) {
        let sub = |k: &str| {
            let mut p = base.clone();
            p.push(Seg::from(k));
            p
        };
        match a.kind {
            AuthType::None => {
                if a.key.is_some() {
                    self.err(sub("key"), "key is not used with authentication type none");
                }
                if a.key_id.is_some() {
                    self.err(
                        sub("key_id"),
                        "key_id is not used with authentication type none",
                    );
                }
            }
            AuthType::Simple => {
                match &a.key {
                    Some(k) if !k.is_empty() && k.len() <= 8 => {}
                    _ => self.err(
                        sub("key"),
                        "simple authentication needs a key of 1 to 8 bytes",
                    ),
                }
                if a.key_id.is_some() {
                    self.err(
                        sub("key_id"),
                        "key_id is not used with simple authentication",
                    );
                }
            }
            AuthType::Md5 | AuthType::HmacSha256 => {
                let max = if a.kind == AuthType::Md5 { 16 } else { 64 };
                match &a.key {
                    Some(k) if !k.is_empty() && k.len() <= max => {}
                    _ => self.err(
                        sub("key"),
                        format!("{} authentication needs a key of 1 to {max} bytes", a.kind),
                    ),
                }
                match a.key_id {
                    Some(id) if id <= 255 => {}
                    Some(id) => self.err(
                        sub("key_id"),
                        format!("key_id must be between 0 and 255, not {id}"),
                    ),
                    None => self.err(
                        base.clone(),
                        format!("{} authentication needs a key_id", a.kind),
                    ),
                }
            }
        }
    }

    fn announces(&mut self, c: &Config) {
        let mut seen = HashSet::new();
        for (i, a) in c.announce.iter().enumerate() {
            if c.ospf.is_none() {
                self.err(path!["announce", i], "[[announce]] needs an [ospf] section");
            }
            if a.prefix.network() != a.prefix.ip() {
                self.err(
                    path!["announce", i, "prefix"],
                    format!("prefix {} has host bits set", a.prefix),
                );
            }
            if !seen.insert(a.prefix) {
                self.err(
                    path!["announce", i, "prefix"],
                    format!("prefix {} announced twice", a.prefix),
                );
            }
            match a.announce_as {
                AnnounceAs::Stub => {
                    if a.metric_type.is_some() {
                        self.err(
                            path!["announce", i, "metric_type"],
                            "metric_type is only used with announce_as = \"external\"",
                        );
                    }
                    if a.metric.is_some_and(|m| m > 65535) {
                        self.err(
                            path!["announce", i, "metric"],
                            "a stub metric must be between 0 and 65535",
                        );
                    }
                }
                AnnounceAs::External => {
                    if a.metric.is_some_and(|m| m > 0x00FF_FFFF) {
                        self.err(
                            path!["announce", i, "metric"],
                            "an external metric must be between 0 and 16777215",
                        );
                    }
                }
            }
        }
    }

    fn services(&mut self, c: &Config) {
        let mut names = HashSet::new();
        let mut keys = HashMap::new();
        for (i, s) in c.service.iter().enumerate() {
            let p = |k: &str| path!["service", i, k];
            if s.name.is_empty() {
                self.err(p("name"), "service name must not be empty");
            } else if !names.insert(s.name.clone()) {
                self.err(p("name"), format!("service name \"{}\" used twice", s.name));
            }
            if s.port == 0 || s.port > 65535 {
                self.err(
                    p("port"),
                    format!("port must be between 1 and 65535, not {}", s.port),
                );
            }
            if let Some(j) = keys.insert((s.vip, s.port, s.protocol), i) {
                self.err(
                    p("vip"),
                    format!(
                        "duplicate service {} {}:{} (already service[{j}] \"{}\")",
                        s.protocol,
                        s.vip,
                        s.port,
                        c.service.get(j).map(|x| x.name.as_str()).unwrap_or("")
                    ),
                );
            }
            if s.real_server.is_empty() {
                self.err(
                    path!["service", i],
                    format!("service \"{}\" has no [[service.real_server]]", s.name),
                );
            }
            let total = s.total_weight();
            if s.quorum == 0 {
                self.err(p("quorum"), "quorum must be at least 1");
            } else if !s.real_server.is_empty() && u64::from(s.quorum) > total {
                self.err(
                    p("quorum"),
                    format!(
                        "quorum {} exceeds the total weight {total} of the real servers",
                        s.quorum
                    ),
                );
            }
            if s.hysteresis >= s.quorum && s.hysteresis > 0 {
                self.err(p("hysteresis"), "hysteresis must be smaller than quorum");
            }
            // Forwarding method.
            match s.forward {
                Forward::Fnat => {
                    if s.local_addresses.is_empty() {
                        self.err(p("forward"), "fnat needs local_addresses");
                    }
                }
                _ => {
                    if !s.local_addresses.is_empty() {
                        self.err(
                            p("local_addresses"),
                            format!("local_addresses are only used with fnat, not {}", s.forward),
                        );
                    }
                    if s.client_address != ClientAddress::None {
                        self.err(
                            p("client_address"),
                            format!("client_address is only used with fnat, not {}", s.forward),
                        );
                    }
                }
            }
            if s.client_address == ClientAddress::Toa && s.protocol != Protocol::Tcp {
                self.err(p("client_address"), "toa needs protocol tcp");
            }
            if s.client_address == ClientAddress::ProxyV1 && s.protocol != Protocol::Tcp {
                self.err(p("client_address"), "proxy-v1 needs protocol tcp");
            }
            if s.syn_proxy && s.protocol != Protocol::Tcp {
                self.err(p("syn_proxy"), "syn_proxy needs protocol tcp");
            }
            if s.announce == AnnounceMethod::Ospf {
                if c.ospf.is_none() {
                    self.err(p("announce"), "announce = \"ospf\" needs an [ospf] section");
                }
                if !s.vip.is_ipv4() {
                    self.err(p("announce"), "OSPFv2 announces IPv4 VIPs only");
                }
            }
            if let Some(m) = s.persistence_netmask {
                if !is_contiguous_mask(m) {
                    self.err(
                        p("persistence_netmask"),
                        format!("{m} is not a contiguous netmask"),
                    );
                }
                if s.persistence_timeout.is_none() {
                    self.err(
                        p("persistence_netmask"),
                        "persistence_netmask needs persistence_timeout",
                    );
                }
                if !s.vip.is_ipv4() {
                    self.err(
                        p("persistence_netmask"),
                        "persistence_netmask applies to IPv4 services",
                    );
                }
            }
            if s.persistence_timeout == Some(Duration::ZERO) {
                self.err(
                    p("persistence_timeout"),
                    "persistence_timeout must be longer than 0s",
                );
            }
            if s.established_timeout == Some(Duration::ZERO) {
                self.err(
                    p("established_timeout"),
                    "established_timeout must be longer than 0s",
                );
            }
            if let Some(sorry) = s.sorry_server {
                if s.forward != Forward::Fnat && sorry.is_ipv4() != s.vip.is_ipv4() {
                    self.err(
                        p("sorry_server"),
                        "sorry_server and vip must be the same address family",
                    );
                }
            }
            for (j, la) in s.local_addresses.iter().enumerate() {
                if let Some(rs) = s.real_server.first() {
                    if la.is_ipv4() != rs.address.is_ipv4() {
                        self.err(
                            path!["service", i, "local_addresses", j],
                            "local addresses and real servers must be the same address family",
                        );
                    }
                }
            }
            if let Some(chk) = &s.check {
                self.check(chk, path!["service", i, "check"]);
            }
            let mut rs_seen = HashSet::new();
            for (j, rs) in s.real_server.iter().enumerate() {
                let rp = |k: &str| path!["service", i, "real_server", j, k];
                let port = s.real_port(rs);
                if rs.port == Some(0) {
                    self.err(rp("port"), "port must be between 1 and 65535");
                }
                if matches!(s.forward, Forward::Dr | Forward::Tun) {
                    if let Some(rport) = rs.port {
                        if u32::from(rport) != s.port {
                            self.err(
                                rp("port"),
                                format!(
                                    "{} cannot change the port: real server port {rport} differs from service port {}",
                                    s.forward, s.port
                                ),
                            );
                        }
                    }
                }
                if s.forward != Forward::Fnat && rs.address.is_ipv4() != s.vip.is_ipv4() {
                    self.err(
                        rp("address"),
                        format!(
                            "{} needs real servers of the VIP's address family",
                            s.forward
                        ),
                    );
                }
                if rs.weight > 65535 {
                    self.err(
                        rp("weight"),
                        format!("weight must be between 0 and 65535, not {}", rs.weight),
                    );
                }
                if !rs_seen.insert((rs.address, port)) {
                    self.err(
                        rp("address"),
                        format!("real server {}:{port} listed twice", rs.address),
                    );
                }
                if let Some(chk) = &rs.check {
                    self.check(chk, path!["service", i, "real_server", j, "check"]);
                }
            }
        }
    }

    fn check(&mut self, k: &Check, base: Vec<Seg>) {
        let sub = |key: &str| {
            let mut p = base.clone();
            p.push(Seg::from(key));
            p
        };
        if k.interval.is_zero() {
            self.err(sub("interval"), "interval must be longer than 0s");
        }
        if k.timeout.is_zero() {
            self.err(sub("timeout"), "timeout must be longer than 0s");
        }
        if k.timeout > k.interval {
            self.err(
                sub("timeout"),
                format!(
                    "timeout {} exceeds interval {}",
                    format_duration(k.timeout),
                    format_duration(k.interval)
                ),
            );
        }
        if k.rise == 0 {
            self.err(sub("rise"), "rise must be at least 1");
        }
        if k.fall == 0 {
            self.err(sub("fall"), "fall must be at least 1");
        }
        use CheckType as T;
        let kind = k.kind;
        let only = |allowed: &[CheckType]| allowed.contains(&kind);
        let not_for = |set: bool, key: &str, allowed: &[CheckType], v: &mut Self| {
            if set && !only(allowed) {
                v.err(sub(key), format!("{key} is not used by a \"{kind}\" check"));
            }
        };
        not_for(k.path.is_some(), "path", &[T::Http, T::Https], self);
        not_for(
            !k.status_codes.is_empty(),
            "status_codes",
            &[T::Http, T::Https],
            self,
        );
        not_for(k.digest.is_some(), "digest", &[T::Http, T::Https], self);
        not_for(k.host.is_some(), "host", &[T::Http, T::Https], self);
        not_for(k.sni.is_some(), "sni", &[T::Https], self);
        not_for(k.payload.is_some(), "payload", &[T::Udp, T::Tcp], self);
        not_for(k.require_reply, "require_reply", &[T::Udp], self);
        not_for(k.program.is_some(), "program", &[T::Misc], self);
        not_for(k.dynamic, "dynamic", &[T::Misc], self);
        not_for(k.file.is_some(), "file", &[T::File], self);
        not_for(
            k.connect_port.is_some(),
            "connect_port",
            &[T::Tcp, T::Http, T::Https, T::Udp],
            self,
        );
        not_for(
            k.connect_ip.is_some(),
            "connect_ip",
            &[T::Tcp, T::Http, T::Https, T::Udp, T::Ping],
            self,
        );
        not_for(
            k.bindto.is_some(),
            "bindto",
            &[T::Tcp, T::Http, T::Https, T::Udp, T::Ping],
            self,
        );
        if kind == T::Misc && k.program.as_deref().map_or(true, str::is_empty) {
            self.err(base.clone(), "a misc check needs program");
        }
        if kind == T::File && k.file.is_none() {
            self.err(base.clone(), "a file check needs file");
        }
        if let Some(p) = &k.path {
            if !p.starts_with('/') {
                self.err(
                    sub("path"),
                    format!("HTTP path \"{p}\" must start with '/'"),
                );
            }
        }
        if let Some(d) = &k.digest {
            if d.len() != 32 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                self.err(
                    sub("digest"),
                    "digest must be 32 hexadecimal characters (MD5)",
                );
            }
        }
        for (n, code) in k.status_codes.iter().enumerate() {
            if !(100..=599).contains(code) {
                let mut p = sub("status_codes");
                p.push(Seg::Index(n));
                self.err(
                    p,
                    format!("HTTP status code {code} is not between 100 and 599"),
                );
            }
        }
        if k.connect_port == Some(0) {
            self.err(
                sub("connect_port"),
                "connect_port must be between 1 and 65535",
            );
        }
    }

    fn vips(&mut self, c: &Config) {
        for (key, pol) in &c.vip {
            match key.parse::<IpAddr>() {
                Err(_) => self.err(
                    path!["vip", key.as_str()],
                    format!("invalid IP address \"{key}\""),
                ),
                Ok(ip) => {
                    if !c.service.iter().any(|s| s.vip == ip) {
                        self.err(
                            path!["vip", key.as_str()],
                            format!("no [[service]] uses VIP {ip}"),
                        );
                    }
                }
            }
            if pol.metric > 65535 {
                self.err(
                    path!["vip", key.as_str(), "metric"],
                    "metric must be between 0 and 65535",
                );
            }
            if let Some(m) = pol.cost_out {
                if m == 0 || m > 65535 {
                    self.err(
                        path!["vip", key.as_str(), "cost_out"],
                        "cost_out must be between 1 and 65535",
                    );
                }
            }
        }
    }

    fn timeouts(&mut self, c: &Config) {
        for (k, d) in [
            ("tcp", c.timeouts.tcp),
            ("tcpfin", c.timeouts.tcpfin),
            ("udp", c.timeouts.udp),
        ] {
            if d < Duration::from_secs(1) {
                self.err(path!["timeouts", k], "timeouts must be at least 1s");
            }
        }
    }
}

impl Validator {
    /// `[vrrp]`: the crate's own checks, names, VRIDs per interface, sync groups.
    fn vrrp(&mut self, c: &Config, ifnames: &HashSet<String>) {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut vrids: HashSet<(&str, u32)> = HashSet::new();
        for (i, vi) in c.vrrp.instance.iter().enumerate() {
            let base = |k: &str| path!["vrrp", "instance", i, k];
            if vi.name.is_empty() {
                self.err(base("name"), "an instance needs a name");
            } else if names.insert(&vi.name, i).is_some() {
                self.err(
                    base("name"),
                    format!("instance \"{}\" declared twice", vi.name),
                );
            }
            let mut ifaces = vec![("interface".to_string(), vi.interface.as_str())];
            for (t, ti) in vi.track_interface.iter().enumerate() {
                ifaces.push((format!("track_interface[{t}]"), ti.name.as_str()));
            }
            for (key, n) in &ifaces {
                if !valid_ifname(n) {
                    self.err(
                        path!["vrrp", "instance", i, key.as_str()],
                        format!(
                            "invalid interface name \"{n}\" (1 to 15 characters, no '/' or spaces)"
                        ),
                    );
                } else if c.dataplane.mode == DataplaneMode::Dpdk && !ifnames.contains(*n) {
                    self.err(
                        path!["vrrp", "instance", i, key.as_str()],
                        format!("interface \"{n}\" is not declared in [[interface]]"),
                    );
                }
            }
            if !(1..=255).contains(&vi.virtual_router_id) {
                self.err(
                    base("virtual_router_id"),
                    format!(
                        "virtual_router_id must be between 1 and 255, not {}",
                        vi.virtual_router_id
                    ),
                );
            } else if !vrids.insert((&vi.interface, vi.virtual_router_id)) {
                self.err(
                    base("virtual_router_id"),
                    format!(
                        "virtual_router_id {} is used twice on {}",
                        vi.virtual_router_id, vi.interface
                    ),
                );
            }
            if !(1..=255).contains(&vi.priority) {
                self.err(
                    base("priority"),
                    format!("priority must be between 1 and 255, not {}", vi.priority),
                );
            }
            if vi.version != 2 && vi.version != 3 {
                self.err(
                    base("version"),
                    format!("version must be 2 or 3, not {}", vi.version),
                );
            }
            let core = vi.core_config(Ipv4Addr::new(192, 0, 2, 1));
            if core.wire_interval().is_err() {
                self.err(
                    base("advert_int"),
                    if vi.version == 3 {
                        "advert_int must be a multiple of 10ms between 10ms and 40.95s (v3)"
                    } else {
                        "advert_int must be whole seconds between 1s and 255s (v2)"
                    },
                );
            }
            if let Some(a) = &vi.authentication {
                if vi.version == 3 {
                    self.err(
                        base("authentication"),
                        "VRRPv3 has no authentication (RFC 5798); remove it or use version 2",
                    );
                }
                if a.password.is_empty() {
                    self.err(
                        path!["vrrp", "instance", i, "authentication", "password"],
                        "the password is empty",
                    );
                }
            }
            if vi.virtual_ipaddress.is_empty() {
                self.err(
                    base("virtual_ipaddress"),
                    "an instance needs at least one virtual address",
                );
            }
            if vi.virtual_ipaddress.len() > 255 {
                self.err(base("virtual_ipaddress"), "at most 255 virtual addresses");
            }
            let mut seen = HashSet::new();
            for (k, v) in vi.virtual_ipaddress.iter().enumerate() {
                let ip = v.address.ip();
                if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() || ip.is_loopback()
                {
                    self.err(
                        path!["vrrp", "instance", i, "virtual_ipaddress", k],
                        format!("{ip} cannot be a virtual address"),
                    );
                }
                if !seen.insert(ip) {
                    self.err(
                        path!["vrrp", "instance", i, "virtual_ipaddress", k],
                        format!("{ip} listed twice"),
                    );
                }
                if let Some(dev) = &v.dev {
                    if !valid_ifname(dev) {
                        self.err(
                            path!["vrrp", "instance", i, "virtual_ipaddress", k],
                            format!("invalid interface name \"{dev}\""),
                        );
                    }
                }
            }
            for (k, p) in vi.unicast_peer.iter().enumerate() {
                if p.is_multicast() || p.is_unspecified() || p.is_broadcast() {
                    self.err(
                        path!["vrrp", "instance", i, "unicast_peer", k],
                        format!("{p} is not a unicast address"),
                    );
                }
            }
            let mut tracked = HashSet::new();
            for (t, ti) in vi.track_interface.iter().enumerate() {
                if !(-253..=253).contains(&ti.weight) {
                    self.err(
                        path!["vrrp", "instance", i, "track_interface", t],
                        format!("weight must be between -253 and 253, not {}", ti.weight),
                    );
                }
                if !tracked.insert(ti.name.as_str()) {
                    self.err(
                        path!["vrrp", "instance", i, "track_interface", t],
                        format!("interface \"{}\" tracked twice", ti.name),
                    );
                }
            }
            if vi.garp_master_repeat == 0 || vi.garp_master_repeat > 255 {
                self.err(
                    base("garp_master_repeat"),
                    "garp_master_repeat must be between 1 and 255",
                );
            }
        }
        let mut groups = HashSet::new();
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        for (g, sg) in c.vrrp.sync_group.iter().enumerate() {
            if !groups.insert(sg.name.as_str()) || sg.name.is_empty() {
                self.err(
                    path!["vrrp", "sync_group", g, "name"],
                    format!("sync group name \"{}\" is empty or used twice", sg.name),
                );
            }
            if sg.group.is_empty() {
                self.err(
                    path!["vrrp", "sync_group", g, "group"],
                    "the group has no instance",
                );
            }
            for (k, m) in sg.group.iter().enumerate() {
                if !names.contains_key(m.as_str()) {
                    self.err(
                        path!["vrrp", "sync_group", g, "group", k],
                        format!("no [[vrrp.instance]] is named \"{m}\""),
                    );
                } else if let Some(other) = member_of.insert(m, &sg.name) {
                    self.err(
                        path!["vrrp", "sync_group", g, "group", k],
                        format!("instance \"{m}\" is already in sync group \"{other}\""),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[global]
router_id = "10.20.30.45"

[[service]]
name = "web"
vip = "192.168.7.182"
port = 80
forward = "nat"

[[service.real_server]]
address = "192.168.7.27"
"#;

    fn errors(text: &str) -> Vec<Diagnostic> {
        match Config::parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.diagnostics().to_vec(),
        }
    }

    fn one_error(text: &str) -> Diagnostic {
        let d = errors(text);
        assert_eq!(d.len(), 1, "expected exactly one error, got {d:?}");
        d.into_iter().next().expect("one")
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(MINIMAL).expect("valid");
        assert_eq!(c.dataplane.mode, DataplaneMode::Kernel);
        assert_eq!(
            c.global.control_socket,
            PathBuf::from(DEFAULT_CONTROL_SOCKET)
        );
        assert_eq!(c.global.metrics.to_string(), DEFAULT_METRICS);
        let s = &c.service[0];
        assert_eq!(s.scheduler, Scheduler::Wlc);
        assert_eq!(s.protocol, Protocol::Tcp);
        assert_eq!(s.real_port(&s.real_server[0]), 80);
        assert_eq!(s.real_server[0].weight, 1);
        assert_eq!(c.timeouts.tcp, Duration::from_secs(900));
        assert_eq!(c.router_id(), Some(Ipv4Addr::new(10, 20, 30, 45)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["3x", "", "s", "3", "-1s", "1..2s", "3 s"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
    }

    #[test]
    fn syntax_error_has_line() {
        let text = "[global]\nrouter_id = \"1.2.3.4\"\nmetrics = \n";
        let d = one_error(text);
        assert_eq!(d.line, 3, "{d}");
        assert_eq!(d.key, "global.metrics", "{d}");
        assert!(!d.message.contains('\n'), "{d}");
        let text = "[[service]]\nname = \"a\"\n[[service]]\nname = \"b\"\nvip = 10.0.0.1\n";
        let d = one_error(text);
        assert_eq!((d.line, d.key.as_str()), (5, "service[1].vip"), "{d}");
    }

    #[test]
    fn shutdown_drain_defaults_to_two_seconds_and_is_bounded() {
        let c = Config::parse(MINIMAL).expect("minimal");
        assert_eq!(c.global.shutdown_drain_ms, 2000);
        let text = MINIMAL.replace("[global]\n", "[global]\nshutdown_drain_ms = 600001\n");
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (3, "global.shutdown_drain_ms"),
            "{d}"
        );
        let text = MINIMAL.replace("[global]\n", "[global]\nshutdown_drain_ms = 0\n");
        assert_eq!(Config::parse(&text).expect("0").global.shutdown_drain_ms, 0);
    }

    #[test]
    fn unknown_key_has_line_and_path() {
        let text = MINIMAL.replace("port = 80\n", "port = 80\nschedular = \"rr\"\n");
        let d = one_error(&text);
        assert_eq!(d.line, 9, "{d}");
        assert!(d.key.starts_with("service[0]"), "{d}");
        assert!(d.message.contains("unknown field"), "{d}");
    }

    #[test]
    fn wrong_type_has_line_and_path() {
        let text = MINIMAL.replace("port = 80", "port = \"80\"");
        let d = one_error(&text);
        assert_eq!(d.line, 8, "{d}");
        assert_eq!(d.key, "service[0].port", "{d}");
    }

    #[test]
    fn unknown_scheduler_message() {
        let text = MINIMAL.replace("port = 80\n", "port = 80\nscheduler = \"rrr\"\n");
        let d = one_error(&text);
        assert_eq!(d.line, 9);
        assert_eq!(d.key, "service[0].scheduler");
        assert!(
            d.message
                .starts_with("unknown scheduler \"rrr\" (expected one of rr, wrr"),
            "{d}"
        );
        assert!(d
            .to_string()
            .starts_with("config error at line 9: service[0].scheduler: unknown scheduler"));
    }

    #[test]
    fn bad_duration_and_address() {
        let text = MINIMAL.replace(
            "forward = \"nat\"\n",
            "forward = \"nat\"\npersistence_timeout = \"3x\"\n",
        );
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (10, "service[0].persistence_timeout")
        );
        assert!(d.message.contains("invalid duration \"3x\""), "{d}");

        let text = MINIMAL.replace("192.168.7.27", "192.168.7.300");
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (12, "service[0].real_server[0].address"),
            "{d}"
        );
        assert!(d.message.contains("192.168.7.300"));
    }

    #[test]
    fn missing_required_key() {
        let text = MINIMAL.replace("forward = \"nat\"\n", "");
        let d = one_error(&text);
        assert!(d.message.contains("forward"), "{d}");
        assert!(d.key.starts_with("service[0]"), "{d}");
        assert!(d.line >= 5 && d.line <= 9, "{d}");
    }

    #[test]
    fn service_without_real_servers() {
        let text = MINIMAL.replace(
            "\n[[service.real_server]]\naddress = \"192.168.7.27\"\n",
            "",
        );
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (5, "service[0]"), "{d}");
        assert!(d.message.contains("no [[service.real_server]]"));
    }

    #[test]
    fn quorum_above_weight() {
        let text = MINIMAL.replace("forward = \"nat\"\n", "forward = \"nat\"\nquorum = 5\n");
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (10, "service[0].quorum"));
        assert!(d.message.contains("exceeds the total weight 1"));
    }

    #[test]
    fn duplicate_service() {
        let text = format!(
            "{MINIMAL}\n[[service]]\nname = \"web2\"\nvip = \"192.168.7.182\"\nport = 80\nforward = \"nat\"\n[[service.real_server]]\naddress = \"192.168.7.28\"\n"
        );
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (16, "service[1].vip"), "{d}");
        assert!(d.message.contains("duplicate service tcp 192.168.7.182:80"));
    }

    #[test]
    fn fnat_without_local_addresses_and_dr_port() {
        let text = MINIMAL.replace("\"nat\"", "\"fnat\"");
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (9, "service[0].forward"));

        let text = MINIMAL.replace("\"nat\"", "\"dr\"").replace(
            "address = \"192.168.7.27\"\n",
            "address = \"192.168.7.27\"\nport = 8080\n",
        );
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (13, "service[0].real_server[0].port")
        );
        assert!(d.message.contains("cannot change the port"));
    }

    #[test]
    fn ospf_interface_not_declared() {
        let text =
            format!("{MINIMAL}\n[ospf]\n[[ospf.interface]]\nname = \"eth9\"\narea = \"0.0.0.0\"\n");
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (16, "ospf.interface[0].name"),
            "{d}"
        );
        assert!(d.message.contains("\"eth9\" is not declared"));
    }

    #[test]
    fn ospf_full_and_auth_errors() {
        let text = format!(
            "{MINIMAL}\n[[interface]]\nname = \"eth0\"\n[ospf]\nmin_ls_arrival = \"1s\"\n[[ospf.interface]]\nname = \"eth0\"\narea = 0\nnetwork = \"point-to-point\"\nhello_interval = \"1s\"\ndead_interval = \"4s\"\nauthentication = {{ type = \"md5\", key = \"s3cret\" }}\nbfd = true\n"
        );
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (24, "ospf.interface[0].authentication"),
            "{d}"
        );
        assert!(d.message.contains("key_id"));
        let ok = text.replace("key = \"s3cret\"", "key = \"s3cret\", key_id = 1");
        let c = Config::parse(&ok).expect("valid");
        let oi = &c.ospf.as_ref().expect("ospf").interface[0];
        assert_eq!(oi.network, OspfNetwork::PointToPoint);
        assert_eq!(oi.area, AreaId(Ipv4Addr::UNSPECIFIED));
        assert_eq!(oi.dead_interval, Duration::from_secs(4));
        assert!(oi.bfd);
        let bad = ok.replace("dead_interval = \"4s\"", "dead_interval = \"1s\"");
        let d = one_error(&bad);
        assert_eq!(
            (d.line, d.key.as_str()),
            (23, "ospf.interface[0].dead_interval")
        );
    }

    #[test]
    fn check_keys_per_type() {
        let text = MINIMAL.replace(
            "forward = \"nat\"\n",
            "forward = \"nat\"\ncheck = { type = \"tcp\", interval = \"3s\", path = \"/health\" }\n",
        );
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (10, "service[0].check.path"),
            "{d}"
        );
        assert!(d.message.contains("not used by a \"tcp\" check"));
        let text = MINIMAL.replace(
            "forward = \"nat\"\n",
            "forward = \"nat\"\ncheck = { type = \"http\", interval = \"3s\", timeout = \"5s\", path = \"/health\", status_codes = [200, 700] }\n",
        );
        let d = errors(&text);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].key, "service[0].check.timeout");
        assert_eq!(d[1].key, "service[0].check.status_codes[1]");
        assert!(d.iter().all(|x| x.line == 10));
    }

    #[test]
    fn vip_policy_and_several_errors() {
        let text = format!(
            "{MINIMAL}\n[vip.\"192.168.7.183\"]\nrequire = \"any\"\n[timeouts]\ntcp = \"0s\"\n"
        );
        let d = errors(&text);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            (d[0].line, d[0].key.as_str()),
            (14, "vip.\"192.168.7.183\"")
        );
        assert_eq!((d[1].line, d[1].key.as_str()), (17, "timeouts.tcp"));
        let good = format!(
            "{MINIMAL}\n[vip.\"192.168.7.182\"]\nrequire = \"any\"\ncost_out = 1000\nhold_time = \"2s\"\n"
        );
        let c = Config::parse(&good).expect("valid");
        let p = c.vip_policy("192.168.7.182".parse().expect("ip"));
        assert_eq!(p.require, VipRequire::Any);
        assert_eq!(p.cost_out, Some(1000));
        assert_eq!(p.hold_time, Duration::from_secs(2));
    }

    #[test]
    fn announce_rules() {
        let text = format!("{MINIMAL}\n[[announce]]\nprefix = \"100.96.122.211/32\"\n");
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (14, "announce[0]"));
        let text = format!(
            "{MINIMAL}\n[[interface]]\nname = \"eth0\"\n[ospf]\n[[ospf.interface]]\nname = \"eth0\"\narea = \"0.0.0.0\"\n[[announce]]\nprefix = \"100.96.122.0/24\"\nannounce_as = \"external\"\nmetric_type = 3\n"
        );
        let d = one_error(&text);
        assert_eq!(
            (d.line, d.key.as_str()),
            (23, "announce[0].metric_type"),
            "{d}"
        );
    }

    #[test]
    fn dpdk_mode_requires_devices() {
        let text =
            format!("[dataplane]\nmode = \"dpdk\"\n[[interface]]\nname = \"dpdk0\"\n{MINIMAL}");
        let d = one_error(&text);
        assert_eq!((d.line, d.key.as_str()), (3, "interface[0].device"), "{d}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary text never panics, and every error has a position and a key.
        #[test]
        fn arbitrary_text_never_panics(text in "(\\PC|\n|\\[|\\]|=|\"){0,200}") {
            if let Err(e) = Config::parse(&text) {
                for d in e.diagnostics() {
                    proptest::prop_assert!(!d.key.is_empty());
                    proptest::prop_assert!(d.line <= text.lines().count() + 1);
                }
            }
        }

        /// Mutating a valid file line by line never panics either.
        #[test]
        fn mutated_config_never_panics(cut in 0usize..200, junk in "\\PC{0,12}") {
            let mut text = MINIMAL.to_string();
            let at = text.char_indices().map(|(i, _)| i).nth(cut % MINIMAL.len()).unwrap_or(0);
            text.insert_str(at, &junk);
            let _ = Config::parse(&text);
        }
    }

    #[test]
    fn io_error() {
        let e = Config::load(Path::new("/nonexistent/fulcrum.toml")).expect_err("missing");
        assert!(matches!(e, ConfigError::Io { .. }));
    }

    #[test]
    fn bfd_section_defaults_overrides_and_errors() {
        let base = format!("{MINIMAL}\n[[interface]]\nname = \"eth0\"\n");
        // Absent: FRR's defaults.
        let c = Config::parse(&base).expect("valid");
        let d = c.bfd_or_default().defaults();
        assert_eq!((d.min_tx_ms, d.min_rx_ms, d.multiplier), (300, 300, 3));
        let text = format!(
            "{base}[bfd]\nmin_tx_ms = 100\nmin_rx_ms = 100\nauthentication = {{ type = \"sha1\", key_id = 2, key = \"k\" }}\n\
             [[bfd.peer]]\naddress = \"10.0.0.2\"\ninterface = \"eth0\"\nmultiplier = 5\n\
             [[bfd.peer]]\naddress = \"10.0.0.3\"\ninterface = \"eth0\"\nlocal = \"10.0.0.1\"\nmin_tx_ms = 50\n"
        );
        let c = Config::parse(&text).expect("valid");
        let b = c.bfd.as_ref().expect("bfd");
        assert_eq!(b.multiplier, 3);
        let t0 = b.peer_timers(&b.peer[0]);
        assert_eq!((t0.min_tx_ms, t0.min_rx_ms, t0.multiplier), (100, 100, 5));
        assert_eq!(
            t0.authentication.as_ref().map(|a| a.kind),
            Some(BfdAuthType::Sha1)
        );
        let t1 = b.peer_timers(&b.peer[1]);
        assert_eq!((t1.min_tx_ms, t1.multiplier), (50, 3));
        assert_eq!(b.peer[1].local, Some(Ipv4Addr::new(10, 0, 0, 1)));

        // Bad values name the key and the line.
        let lines_before = base.lines().count();
        let d = one_error(&text.replace("min_tx_ms = 50", "min_tx_ms = 5"));
        assert_eq!(d.key, "bfd.peer[1].min_tx_ms", "{d}");
        assert_eq!(d.line, lines_before + 13, "{d}");
        let d = one_error(&text.replace("multiplier = 5", "multiplier = 1"));
        assert_eq!(d.key, "bfd.peer[0].multiplier", "{d}");
        let d = one_error(&text.replace("key = \"k\"", "key = \"123456789012345678901\""));
        assert_eq!(d.key, "bfd.authentication.key", "{d}");
        assert_eq!(d.line, lines_before + 4, "{d}");
        let d = one_error(&text.replace("\"sha1\"", "\"sha256\""));
        assert!(d.key.starts_with("bfd.authentication"), "{d}");
        assert!(d.message.contains("unknown BFD authentication type"), "{d}");
        let d = one_error(
            &text
                .replace("10.0.0.3", "10.0.0.2")
                .replace("local = \"10.0.0.1\"\n", ""),
        );
        assert_eq!(d.key, "bfd.peer[1].address", "{d}");
        assert!(d.message.contains("declared twice"), "{d}");
        let d = one_error(&text.replace("10.0.0.3", "224.0.0.5"));
        assert_eq!(d.key, "bfd.peer[1].address", "{d}");
        let d = one_error(&format!("{text}frobnicate = 1\n"));
        assert!(d.message.contains("frobnicate"), "{d}");
    }
}

#[cfg(test)]
mod vrrp_tests {
    use super::*;

    const VRRP: &str = r#"
[[vrrp.instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
authentication = { type = "PASS", password = "123456" }
virtual_ipaddress = ["10.10.0.20", "10.10.0.21/24", { address = "10.20.0.1/24", dev = "eth1" }]
track_interface = ["eth1", { name = "eth2", weight = -20 }]

[[vrrp.instance]]
name = "VI_2"
interface = "eth1"
virtual_router_id = 61
version = 3
advert_int = "500ms"
priority = 200
preempt = false
state = "MASTER"
unicast_peer = ["10.20.0.3"]
virtual_ipaddress = ["10.20.0.20"]

[[vrrp.sync_group]]
name = "G"
group = ["VI_1", "VI_2"]
"#;

    fn errors(text: &str) -> Vec<Diagnostic> {
        match Config::parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.diagnostics().to_vec(),
        }
    }

    #[test]
    fn vrrp_section_with_keepalived_defaults() {
        let c = Config::parse(VRRP).expect("valid");
        let a = &c.vrrp.instance[0];
        assert_eq!(
            (a.priority, a.advert_int, a.version, a.preempt),
            (100, Duration::from_secs(1), 2, true)
        );
        assert_eq!(a.state, VrrpStateHint::Backup);
        assert_eq!(a.garp_master_delay, Duration::from_secs(5));
        assert_eq!(a.virtual_ipaddress[0].address.prefix(), 32);
        assert_eq!(a.virtual_ipaddress[1].address.prefix(), 24);
        assert_eq!(a.vip_dev(&a.virtual_ipaddress[2]), "eth1");
        assert_eq!(a.vip_dev(&a.virtual_ipaddress[0]), "eth0");
        let core = a.core_config(Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(core.source_ip, Ipv4Addr::new(10, 10, 0, 1));
        assert_eq!(
            core.track_interface,
            [
                vrrp::Track::new("eth0", 0),
                vrrp::Track::new("eth1", 0),
                vrrp::Track::new("eth2", -20)
            ]
        );
        assert_eq!(
            core.authentication.as_ref().expect("auth").auth_pass,
            "123456"
        );
        assert_eq!(core.validate(), Ok(()));
        let b = c.vrrp.instance[1].core_config(Ipv4Addr::new(10, 20, 0, 2));
        assert_eq!(b.version, vrrp::Version::V3);
        assert_eq!(b.wire_interval(), Ok(50));
        assert!(b.nopreempt);
        assert_eq!(b.state, vrrp::InitialState::Master);
        assert_eq!(c.vrrp.sync_group[0].group, ["VI_1", "VI_2"]);
    }

    #[test]
    fn vrrp_errors_name_key_and_line() {
        let d = errors(&VRRP.replace("virtual_router_id = 61", "virtual_router_id = 300"));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].line, d[0].key.as_str()),
            (13, "vrrp.instance[1].virtual_router_id")
        );
        let d = errors(&VRRP.replace("advert_int = \"500ms\"", "advert_int = \"505ms\""));
        assert_eq!(d[0].key, "vrrp.instance[1].advert_int");
        let d = errors(&VRRP.replace(
            "version = 3",
            "version = 3\nauthentication = { type = \"PASS\", password = \"x\" }",
        ));
        assert_eq!(d[0].key, "vrrp.instance[1].authentication");
        let d = errors(&VRRP.replace("\"10.10.0.21/24\"", "\"10.10.0.300/24\""));
        assert_eq!(d[0].line, 7, "{d:?}");
        assert!(d[0].message.contains("10.10.0.300"), "{d:?}");
        let d = errors(&VRRP.replace(
            "group = [\"VI_1\", \"VI_2\"]",
            "group = [\"VI_1\", \"VI_9\"]",
        ));
        assert_eq!(d[0].key, "vrrp.sync_group[0].group[1]");
        assert!(d[0].message.contains("VI_9"));
        let d = errors(&VRRP.replace(
            "interface = \"eth1\"\nvirtual_router_id = 61",
            "interface = \"eth0\"\nvirtual_router_id = 51",
        ));
        assert_eq!(d[0].key, "vrrp.instance[1].virtual_router_id");
        let d = errors(&VRRP.replace("type = \"PASS\"", "type = \"AH\""));
        assert_eq!(d[0].line, 6);
        let d = errors(&VRRP.replace("state = \"MASTER\"", "state = \"LEADER\""));
        assert_eq!(d[0].line, 18);
        let d = errors(&VRRP.replace("priority = 200", "priority = 0"));
        assert_eq!(d[0].key, "vrrp.instance[1].priority");
    }
}
