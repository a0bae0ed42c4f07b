//! The control protocol between `fulcrum` and `fulcrumd`: line-delimited JSON over a Unix
//! socket, one request line answered by one response line, several per connection.
//!
//! ```text
//! → {"version":1,"id":7,"request":{"type":"services","stats":true,"rate":false}}
//! ← {"version":1,"id":7,"result":{"services":[…]}}
//! ← {"version":1,"id":7,"error":{"code":"not_available","message":"…"}}
//! ```
//!
//! The `result` of each request is one of the view types of this module (`ServicesView` for
//! `services`, …), so the CLI renders tables from typed data and `--json` prints it as is.
//! A request the daemon does not know is answered with the error code `unknown_request`;
//! a different protocol version with `unsupported_version`.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or response line accepted (bytes).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Errors of the control client.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source} (is fulcrumd running?)")]
    Connect {
        /// Socket path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading or writing failed.
    #[error("control socket I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon closed the connection without answering.
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// A line was not valid protocol JSON.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The daemon answered with an error.
    #[error("{}: {}", .0.code, .0.message)]
    Daemon(ErrorBody),
}

/// A request envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    /// Protocol version.
    pub version: u32,
    /// Echoed in the response.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// A response envelope: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    /// Protocol version.
    pub version: u32,
    /// The request's id (0 when the request could not be read).
    pub id: u64,
    /// Success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl ResponseEnvelope {
    /// Builds a response from a handler's outcome.
    pub fn new(id: u64, outcome: Result<serde_json::Value, ErrorBody>) -> Self {
        let (result, error) = match outcome {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        ResponseEnvelope {
            version: PROTOCOL_VERSION,
            id,
            result,
            error,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code: `unknown_request`, `bad_request`, `unsupported_version`,
    /// `not_available`, `not_supported`, `reload_failed`, `internal`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// The view is served by a subsystem that is not running.
    pub fn not_available(what: &str, subsystem: &str) -> Self {
        ErrorBody::new(
            "not_available",
            format!(
                "{what} is not available: the {subsystem} subsystem is not running in this daemon"
            ),
        )
    }
}

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Daemon status: version, pid, uptime, configuration. Result: [`StatusView`].
    Status,
    /// Virtual services (`ipvsadm -Ln`). Result: [`ServicesView`].
    Services {
        /// Include counters.
        #[serde(default)]
        stats: bool,
        /// Include rates.
        #[serde(default)]
        rate: bool,
    },
    /// Connection table (`ipvsadm -Lnc`). Result: [`ConnsView`].
    Conns,
    /// Health-check state. Result: [`HealthView`].
    Health,
    /// VIP announcement state. Result: [`VipsView`].
    Vips,
    /// Withdraw a VIP administratively. Result: [`VipsView`].
    VipDrain {
        /// The VIP.
        vip: IpAddr,
    },
    /// Undo a drain. Result: [`VipsView`].
    VipUndrain {
        /// The VIP.
        vip: IpAddr,
    },
    /// The RIB. Result: [`RoutesView`].
    Routes,
    /// OSPF neighbors. Result: [`OspfNeighborsView`].
    OspfNeighbors,
    /// OSPF interfaces. Result: [`OspfInterfacesView`].
    OspfInterfaces,
    /// OSPF link-state database. Result: [`OspfDatabaseView`].
    OspfDatabase,
    /// BFD sessions. Result: [`BfdPeersView`].
    BfdPeers,
    /// VRRP instances. Result: [`VrrpView`].
    Vrrp,
    /// Re-read and apply the configuration file. Result: [`ReloadView`].
    Reload,
    /// An `ipvsadm` command line (arguments after `ipvsadm`).
    Ipvsadm {
        /// The arguments.
        args: Vec<String>,
    },
}

impl Request {
    /// The request's `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Services { .. } => "services",
            Request::Conns => "conns",
            Request::Health => "health",
            Request::Vips => "vips",
            Request::VipDrain { .. } => "vip_drain",
            Request::VipUndrain { .. } => "vip_undrain",
            Request::Routes => "routes",
            Request::OspfNeighbors => "ospf_neighbors",
            Request::OspfInterfaces => "ospf_interfaces",
            Request::OspfDatabase => "ospf_database",
            Request::BfdPeers => "bfd_peers",
            Request::Vrrp => "vrrp",
            Request::Reload => "reload",
            Request::Ipvsadm { .. } => "ipvsadm",
        }
    }
}

/// Decodes one request line. Errors are the answer to send back, with the id when known.
pub fn decode_request(line: &str) -> Result<RequestEnvelope, (u64, ErrorBody)> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| (0, ErrorBody::new("bad_request", format!("not JSON: {e}"))))?;
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err((
                id,
                ErrorBody::new(
                    "unsupported_version",
                    format!(
                    "protocol version {v} is not supported (this daemon speaks {PROTOCOL_VERSION})"
                ),
                ),
            ))
        }
        None => return Err((id, ErrorBody::new("bad_request", "missing \"version\""))),
    }
    let Some(req) = value.get("request") else {
        return Err((id, ErrorBody::new("bad_request", "missing \"request\"")));
    };
    let kind = req.get("type").and_then(serde_json::Value::as_str);
    match serde_json::from_value::<Request>(req.clone()) {
        Ok(request) => Ok(RequestEnvelope {
            version: PROTOCOL_VERSION,
            id,
            request,
        }),
        Err(e) => {
            let known = kind.is_some_and(|k| KNOWN_KINDS.contains(&k));
            Err((
                id,
                match kind {
                    Some(k) if !known => ErrorBody::new(
                        "unknown_request",
                        format!("this daemon does not know the request \"{k}\""),
                    ),
                    _ => ErrorBody::new("bad_request", format!("invalid request: {e}")),
                },
            ))
        }
    }
}

const KNOWN_KINDS: &[&str] = &[
    "status",
    "services",
    "conns",
    "health",
    "vips",
    "vip_drain",
    "vip_undrain",
    "routes",
    "ospf_neighbors",
    "ospf_interfaces",
    "ospf_database",
    "bfd_peers",
    "vrrp",
    "reload",
    "ipvsadm",
];

/// A client connection to the daemon's control socket.
pub struct Client {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    /// Connects to the socket.
    pub async fn connect(path: &Path) -> Result<Client, ControlError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ControlError::Connect {
                path: path.display().to_string(),
                source,
            })?;
        let (r, w) = stream.into_split();
        Ok(Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
        })
    }

    /// Sends a request and waits for its answer: the `result` value, or the daemon's error.
    pub async fn call(&mut self, request: Request) -> Result<serde_json::Value, ControlError> {
        let id = self.next_id;
        self.next_id += 1;
        let env = RequestEnvelope {
            version: PROTOCOL_VERSION,
            id,
            request,
        };
        let mut line =
            serde_json::to_string(&env).map_err(|e| ControlError::Malformed(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        let mut answer = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_line(&mut answer)
            .await?;
        if n == 0 {
            return Err(ControlError::Closed);
        }
        let resp: ResponseEnvelope = serde_json::from_str(answer.trim_end())
            .map_err(|e| ControlError::Malformed(e.to_string()))?;
        if resp.id != id && resp.id != 0 {
            return Err(ControlError::Malformed(format!(
                "answer to request {} while waiting for {id}",
                resp.id
            )));
        }
        match (resp.result, resp.error) {
            (_, Some(e)) => Err(ControlError::Daemon(e)),
            (Some(v), None) => Ok(v),
            (None, None) => Err(ControlError::Malformed(
                "response without result or error".into(),
            )),
        }
    }
}

use tokio::io::AsyncReadExt as _;

// ---------------------------------------------------------------------------------------
// Views: the `result` of each request.

/// Result of `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Daemon version.
    pub version: String,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Configuration file.
    pub config_path: String,
    /// Number of successful loads (1 after start).
    pub config_generation: u64,
    /// Subsystems running, by name.
    pub subsystems: Vec<String>,
    /// Outcome of the last reload attempt, if any.
    pub last_reload: Option<ReloadView>,
}

/// Result of `reload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadView {
    /// Whether the new configuration was applied.
    pub applied: bool,
    /// Configuration generation now running.
    pub generation: u64,
    /// Explanation (the validation errors when refused).
    pub message: String,
}

/// Result of `services`: the `ipvsadm -Ln` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicesView {
    /// Virtual services.
    pub services: Vec<ServiceRow>,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRow {
    /// Service name.
    pub name: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Virtual IP.
    pub vip: IpAddr,
    /// Virtual port.
    pub port: u16,
    /// Scheduler name.
    pub scheduler: String,
    /// Flags as ipvsadm prints them (`persistent 300`, `synproxy`, …).
    pub flags: Vec<String>,
    /// Counters (with `--stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Counters>,
    /// Rates (with `--rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rates>,
    /// Real servers.
    pub real_servers: Vec<RealServerRow>,
}

/// One real server of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerRow {
    /// Address.
    pub address: IpAddr,
    /// Port.
    pub port: u16,
    /// `FullNat`, `Masq`, `Route` or `Tunnel` (ipvsadm's words).
    pub forward: String,
    /// Current weight (0 when inhibited).
    pub weight: u32,
    /// Established connections.
    pub active_conns: u64,
    /// Other connections.
    pub inactive_conns: u64,
    /// Counters (with `--stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Counters>,
    /// Rates (with `--rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rates>,
}

/// Cumulative counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Connections.
    pub conns: u64,
    /// Packets in.
    pub in_packets: u64,
    /// Packets out.
    pub out_packets: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
}

/// Rates per second (`ipvsadm --rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets in per second.
    pub in_pps: u64,
    /// Packets out per second.
    pub out_pps: u64,
    /// Bytes in per second.
    pub in_bps: u64,
    /// Bytes out per second.
    pub out_bps: u64,
}

/// Result of `conns`: the `ipvsadm -Lnc` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnsView {
    /// Connections.
    pub conns: Vec<ConnRow>,
    /// Connections were left out (more than the configured `dataplane.conns_limit`).
    #[serde(default)]
    pub truncated: bool,
    /// Connections (and persistence templates) in the tables, listed or not.
    #[serde(default)]
    pub total: u64,
}

/// One connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnRow {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Seconds until expiry.
    pub expires_seconds: u64,
    /// State (`ESTABLISHED`, `TIME_WAIT`, …).
    pub state: String,
    /// Client address:port.
    pub client: String,
    /// Virtual address:port.
    pub virtual_address: String,
    /// Local (FNAT) address:port, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// Real server address:port.
    pub real_server: String,
    /// Forwarding worker (lcore).
    pub worker: u32,
}

/// Result of `health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// One row per checked real server.
    pub checks: Vec<HealthRow>,
}

/// The check state of one real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthRow {
    /// Service name.
    pub service: String,
    /// Real server address:port.
    pub real_server: String,
    /// Check type.
    pub check: String,
    /// `up` or `down`.
    pub state: String,
    /// Seconds in this state.
    pub since_seconds: u64,
    /// Last result message (`connected`, `timeout`, `status 503`, …).
    pub last_result: String,
    /// Consecutive failures.
    pub failures: u32,
    /// Whether the real server is alive (all its checks pass).
    #[serde(default)]
    pub server_up: bool,
    /// The server's effective weight (`misc_dynamic`, file weights).
    #[serde(default)]
    pub weight: u32,
    /// Duration of the last attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Seconds since the last result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result_age_seconds: Option<u64>,
    /// Whether the service holds quorum.
    #[serde(default)]
    pub service_quorum: bool,
}

/// Result of `vips`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipsView {
    /// One row per VIP.
    pub vips: Vec<VipRow>,
}

/// The announcement state of one VIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipRow {
    /// The VIP.
    pub vip: IpAddr,
    /// `ospf`, `arp` or `none`.
    pub method: String,
    /// Announced now.
    pub announced: bool,
    /// Metric announced (cost-out metric when degraded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Drained by an operator.
    pub drained: bool,
    /// Services holding quorum.
    pub services_up: u32,
    /// Services of this VIP.
    pub services_total: u32,
    /// Why it is (not) announced.
    pub reason: String,
    /// `announced`, `withdrawn` or `costed-out` (announced with the cost-out metric).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Seconds since the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_seconds: Option<u64>,
}

/// Result of `routes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutesView {
    /// Routes.
    pub routes: Vec<RouteRow>,
}

/// One RIB route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteRow {
    /// Prefix.
    pub prefix: String,
    /// Source: `connected`, `static`, `ospf`, …
    pub protocol: String,
    /// Administrative distance.
    pub distance: u32,
    /// Metric.
    pub metric: u32,
    /// Best route for the prefix.
    pub selected: bool,
    /// Installed in the FIB.
    pub installed: bool,
    /// Next hops.
    pub nexthops: Vec<NexthopRow>,
}

/// One next hop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NexthopRow {
    /// Gateway, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// Interface.
    pub interface: String,
    /// ECMP weight.
    pub weight: u32,
}

/// Result of `ospf_neighbors`: FRR's `show ip ospf neighbor`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OspfNeighborsView {
    /// Neighbors.
    pub neighbors: Vec<OspfNeighborRow>,
}

/// One OSPF neighbor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OspfNeighborRow {
    /// Neighbor router id.
    pub neighbor_id: String,
    /// Router priority.
    pub priority: u8,
    /// Neighbor state (`Full`, `2-Way`, …).
    pub state: String,
    /// Role on the segment (`DR`, `Backup`, `DROther`, or empty on point-to-point).
    pub role: String,
    /// Seconds since the adjacency reached Full (0 if not Full).
    pub up_seconds: u64,
    /// Milliseconds until the dead timer fires.
    pub dead_ms: u64,
    /// Neighbor interface address.
    pub address: String,
    /// Local interface name and address (`eth0:10.20.30.45`).
    pub interface: String,
    /// Link-state retransmission list length.
    pub retransmit_count: u32,
    /// Link-state request list length.
    pub request_count: u32,
    /// Database summary list length.
    pub db_summary_count: u32,
}

/// Result of `ospf_interfaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OspfInterfacesView {
    /// Interfaces.
    pub interfaces: Vec<OspfInterfaceRow>,
}

/// One OSPF interface.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OspfInterfaceRow {
    /// Name.
    pub name: String,
    /// Address/prefix.
    pub address: String,
    /// Area.
    pub area: String,
    /// Network type.
    pub network: String,
    /// Interface state (`DR`, `Backup`, `DROther`, `Point-To-Point`, `Down`, …).
    pub state: String,
    /// Cost.
    pub cost: u32,
    /// Designated router.
    pub dr: String,
    /// Backup designated router.
    pub bdr: String,
    /// Neighbors known / adjacent.
    pub neighbors: u32,
    /// Adjacencies (Full).
    pub adjacencies: u32,
}

/// Result of `ospf_database`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OspfDatabaseView {
    /// LSAs.
    pub lsas: Vec<LsaRow>,
}

/// One LSA header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LsaRow {
    /// Area (empty for AS-scope LSAs).
    pub area: String,
    /// `router`, `network`, `summary`, `asbr-summary`, `external`.
    pub lsa_type: String,
    /// Link state id.
    pub link_state_id: String,
    /// Advertising router.
    pub advertising_router: String,
    /// Age in seconds.
    pub age: u16,
    /// Sequence number.
    pub sequence: u32,
    /// Checksum.
    pub checksum: u16,
    /// Link count (router-LSAs) or route summary.
    pub summary: String,
}

/// Result of `bfd_peers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfdPeersView {
    /// Sessions.
    pub peers: Vec<BfdPeerRow>,
}

/// One BFD session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfdPeerRow {
    /// Peer address.
    pub peer: IpAddr,
    /// Interface.
    pub interface: String,
    /// State (`Up`, `Down`, `Init`, `AdminDown`).
    pub state: String,
    /// Negotiated transmit interval (ms).
    pub tx_ms: u32,
    /// Negotiated receive interval (ms).
    pub rx_ms: u32,
    /// Detect multiplier.
    pub multiplier: u8,
    /// Seconds in this state.
    pub since_seconds: u64,
    /// Local (source) address.
    #[serde(default)]
    pub local: Option<IpAddr>,
    /// Local discriminator.
    #[serde(default)]
    pub local_discriminator: u32,
    /// Remote discriminator (0 until the peer is heard).
    #[serde(default)]
    pub remote_discriminator: u32,
    /// The state the peer last reported.
    #[serde(default)]
    pub remote_state: String,
    /// The peer's detect multiplier (0 until heard).
    #[serde(default)]
    pub remote_multiplier: u8,
    /// Detection time (ms; 0 until the peer is heard).
    #[serde(default)]
    pub detection_ms: u32,
    /// Local diagnostic (`ok`, `control-detection-time-expired`, …).
    #[serde(default)]
    pub diagnostic: String,
    /// The peer's last diagnostic.
    #[serde(default)]
    pub remote_diagnostic: String,
    /// Seconds since the session came Up (absent while not Up).
    #[serde(default)]
    pub uptime_seconds: Option<u64>,
    /// Authentication type in use, if any.
    #[serde(default)]
    pub authentication: Option<String>,
    /// Who asked for the session: `ospf`, `static` or `ospf+static`.
    #[serde(default)]
    pub client: String,
    /// Control packets accepted.
    #[serde(default)]
    pub packets_received: u64,
    /// Control packets sent.
    #[serde(default)]
    pub packets_sent: u64,
    /// Control packets matched to the session but dropped (TTL, authentication).
    #[serde(default)]
    pub packets_dropped: u64,
}

/// Result of `vrrp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpView {
    /// Instances in configuration order.
    pub instances: Vec<VrrpRow>,
}

/// One VRRP instance (keepalived's `show vrrp` / `keepalived -d` data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpRow {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Protocol version (2 or 3).
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER` or `FAULT`.
    pub state: String,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracking.
    pub effective_priority: u8,
    /// Address of the current master, when known.
    pub master: Option<std::net::Ipv4Addr>,
    /// Advertisement interval (ms).
    pub advert_int_ms: u64,
    /// Whether a lower-priority master is preempted.
    pub preempt: bool,
    /// Sync group, if any.
    pub sync_group: Option<String>,
    /// Virtual addresses with their prefix length.
    pub vips: Vec<String>,
    /// Transitions since the daemon started.
    pub transitions: u64,
    /// Adverts received.
    pub adverts_rx: u64,
    /// Adverts sent.
    pub adverts_tx: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let env = RequestEnvelope {
            version: 1,
            id: 7,
            request: Request::Services {
                stats: true,
                rate: false,
            },
        };
        let s = serde_json::to_string(&env).expect("json");
        assert_eq!(
            s,
            r#"{"version":1,"id":7,"request":{"type":"services","stats":true,"rate":false}}"#
        );
        let back = decode_request(&s).expect("decode");
        assert_eq!(back, env);
        let drain = decode_request(
            r#"{"version":1,"id":2,"request":{"type":"vip_drain","vip":"100.96.122.210"}}"#,
        )
        .expect("decode");
        assert_eq!(
            drain.request,
            Request::VipDrain {
                vip: "100.96.122.210".parse().expect("ip")
            }
        );
    }

    #[test]
    fn every_request_kind_is_known() {
        for r in [
            Request::Status,
            Request::Conns,
            Request::Health,
            Request::Vips,
            Request::Routes,
            Request::OspfNeighbors,
            Request::OspfInterfaces,
            Request::OspfDatabase,
            Request::BfdPeers,
            Request::Vrrp,
            Request::Reload,
            Request::Ipvsadm { args: vec![] },
        ] {
            let v = serde_json::to_value(&r).expect("json");
            assert_eq!(v["type"], r.kind());
            assert!(KNOWN_KINDS.contains(&r.kind()));
        }
    }

    #[test]
    fn decode_errors() {
        let (id, e) = decode_request(r#"{"version":1,"id":3,"request":{"type":"frobnicate"}}"#)
            .expect_err("unknown");
        assert_eq!((id, e.code.as_str()), (3, "unknown_request"));
        assert!(e.message.contains("frobnicate"));
        let (id, e) = decode_request(r#"{"version":2,"id":4,"request":{"type":"status"}}"#)
            .expect_err("version");
        assert_eq!((id, e.code.as_str()), (4, "unsupported_version"));
        let (_, e) = decode_request("{not json").expect_err("json");
        assert_eq!(e.code, "bad_request");
        let (_, e) =
            decode_request(r#"{"version":1,"id":5,"request":{"type":"vip_drain","vip":"x"}}"#)
                .expect_err("bad vip");
        assert_eq!(e.code, "bad_request");
        let (_, e) = decode_request(r#"{"version":1,"id":5}"#).expect_err("no request");
        assert_eq!(e.code, "bad_request");
    }

    #[test]
    fn response_envelope() {
        let ok = ResponseEnvelope::new(9, Ok(serde_json::json!({"a": 1})));
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            r#"{"version":1,"id":9,"result":{"a":1}}"#
        );
        let err = ResponseEnvelope::new(9, Err(ErrorBody::not_available("routes", "rib")));
        let s = serde_json::to_string(&err).expect("json");
        assert!(s.contains(r#""code":"not_available""#), "{s}");
    }
}
