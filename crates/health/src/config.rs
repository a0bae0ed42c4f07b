//! Checker configuration, with keepalived's keyword names and defaults.
//!
//! These are plain data: the daemon fills them from its TOML (or from an imported
//! keepalived.conf) and runs the probes they describe. Defaults are keepalived's
//! (keepalived.conf(5)) unless a field says otherwise.

use std::net::IpAddr;
use std::time::Duration;

use crate::HealthError;

/// keepalived's default `delay_loop` (a virtual server's, inherited by its checkers).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// keepalived's default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// keepalived's default `retry` (a.k.a. `nb_get_retry`).
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's default `delay_before_retry`.
pub const DEFAULT_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
/// The largest weight IPVS accepts (keepalived's `IPVS_WEIGHT_LIMIT`).
pub const WEIGHT_LIMIT: u32 = 65535;

/// Where and how a network probe connects (keepalived's "connection options").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// `connect_ip`: probe this address instead of the real server's.
    pub connect_ip: Option<IpAddr>,
    /// `connect_port`: probe this port instead of the real server's.
    pub connect_port: Option<u16>,
    /// `bindto`: source address of the probe.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port of the probe.
    pub bind_port: Option<u16>,
    /// `connect_timeout`: how long one attempt may take (default 5 s).
    pub connect_timeout: Duration,
    /// `fwmark`: firewall mark set on the probe's socket.
    pub fwmark: Option<u32>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            fwmark: None,
        }
    }
}

/// `TCP_CHECK`: a TCP connect succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpCheck {
    /// Connection options.
    pub conn: ConnectOptions,
}

/// An inclusive range of HTTP status codes (`status_code 200-299`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// First accepted code.
    pub from: u16,
    /// Last accepted code.
    pub to: u16,
}

impl StatusRange {
    /// A single code.
    pub fn code(code: u16) -> Self {
        StatusRange {
            from: code,
            to: code,
        }
    }

    /// Whether `status` is inside the range.
    pub fn contains(&self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }

    /// Parses `200` or `200-299`; codes must be 100..=599 and the range ordered.
    pub fn parse(s: &str) -> Result<Self, HealthError> {
        let bad = || HealthError::StatusCode(s.to_owned());
        let num = |t: &str| -> Result<u16, HealthError> {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let v: u16 = t.parse().map_err(|_| bad())?;
            if (100..=599).contains(&v) {
                Ok(v)
            } else {
                Err(bad())
            }
        };
        let r = match s.split_once('-') {
            Some((a, b)) => StatusRange {
                from: num(a)?,
                to: num(b)?,
            },
            None => StatusRange::code(num(s)?),
        };
        if r.from > r.to {
            return Err(bad());
        }
        Ok(r)
    }
}

/// One `url { }` block of `HTTP_GET` / `SSL_GET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCheck {
    /// `path`: the request path.
    pub path: String,
    /// `status_code`: accepted codes; empty means keepalived's default, any 2xx.
    pub status_codes: Vec<StatusRange>,
    /// `digest`: MD5 of the body (keepalived's `genhash` output, as raw bytes).
    pub digest: Option<[u8; 16]>,
    /// `regex`: a pattern the body must match (matched by the daemon).
    pub regex: Option<String>,
    /// `regex_no_match`: the check passes when the regex does not match.
    pub regex_no_match: bool,
    /// `virtualhost`: Host header for this URL (overrides the checker's).
    pub virtualhost: Option<String>,
}

impl UrlCheck {
    /// A URL check for `path` accepting any 2xx.
    pub fn new(path: impl Into<String>) -> Self {
        UrlCheck {
            path: path.into(),
            status_codes: Vec::new(),
            digest: None,
            regex: None,
            regex_no_match: false,
            virtualhost: None,
        }
    }
}

/// Parses a 32-hex-digit MD5 digest as `genhash` prints it.
pub fn parse_digest(hex: &str) -> Result<[u8; 16], HealthError> {
    let bad = || HealthError::Digest(hex.to_owned());
    let b = hex.as_bytes();
    if b.len() != 32 {
        return Err(bad());
    }
    let nib = |c: u8| -> Result<u8, HealthError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(bad()),
        }
    };
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let [hi, lo] = pair else {
            return Err(bad());
        };
        *o = (nib(*hi)? << 4) | nib(*lo)?;
    }
    Ok(out)
}

/// `HTTP_GET` (or `SSL_GET` when `ssl`): every URL must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Connection options.
    pub conn: ConnectOptions,
    /// `SSL_GET` rather than `HTTP_GET`.
    pub ssl: bool,
    /// The `url` blocks; at least one.
    pub urls: Vec<UrlCheck>,
    /// `virtualhost`: Host header (default: none, the address is used).
    pub virtualhost: Option<String>,
    /// `enable_sni`: send the virtual host as TLS SNI (`SSL_GET`).
    pub enable_sni: bool,
}

/// What a `UDP_CHECK` requires of the real server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UdpReply {
    /// No `require_reply`: success unless an ICMP error comes back within the timeout.
    #[default]
    NoErrorIsEnough,
    /// `require_reply` without data: some reply must arrive.
    AnyReply,
    /// `require_reply <hex>`: the reply must start with these bytes.
    Prefix(Vec<u8>),
}

/// `UDP_CHECK`: send a datagram, optionally require a reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpCheck {
    /// Connection options.
    pub conn: ConnectOptions,
    /// `payload`: the datagram sent (empty by default).
    pub payload: Vec<u8>,
    /// `require_reply`.
    pub require_reply: UdpReply,
}

/// `PING_CHECK`: an ICMP echo gets an answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PingCheck {
    /// Connection options (only the addresses and the timeout matter).
    pub conn: ConnectOptions,
}

/// `MISC_CHECK`: run a program; its exit status decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`: the command line.
    pub misc_path: String,
    /// `misc_timeout`: how long the program may run; keepalived's default is the
    /// checker's `delay_loop`.
    pub misc_timeout: Option<Duration>,
    /// `misc_dynamic`: exit codes 2..=255 set the weight to code − 2.
    pub misc_dynamic: bool,
    /// `user`: run as this user.
    pub user: Option<String>,
}

/// `FILE_CHECK`: the number in a tracked file marks the server down or shifts its
/// weight. Not a probe: the daemon watches the file and feeds its value in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The file (keepalived names a `track_file` whose `file` this is).
    pub file: String,
    /// `weight`: 0 makes any non-zero value mark the server down; otherwise the value
    /// times the weight is added to the server's weight.
    pub weight: i32,
    /// `weight … reverse`: subtract instead of add.
    pub reverse: bool,
}

/// The probe kinds; `FILE_CHECK` is [`FileCheck`], outside this enum since it is not
/// timer driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `TCP_CHECK`.
    Tcp(TcpCheck),
    /// `HTTP_GET` / `SSL_GET`.
    Http(HttpCheck),
    /// `UDP_CHECK`.
    Udp(UdpCheck),
    /// `PING_CHECK`.
    Ping(PingCheck),
    /// `MISC_CHECK`.
    Misc(MiscCheck),
}

impl CheckKind {
    /// keepalived's block name (`TCP_CHECK`, `HTTP_GET`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckKind::Tcp(_) => "TCP_CHECK",
            CheckKind::Http(h) if h.ssl => "SSL_GET",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Ping(_) => "PING_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
        }
    }
}

/// One checker of a real server: its kind and keepalived's common timing keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerConfig {
    /// What to probe.
    pub kind: CheckKind,
    /// `delay_loop`: time between checks of a settled server (default 60 s).
    pub delay_loop: Duration,
    /// `retry` / `nb_get_retry`: extra attempts before a check fails (default 1).
    pub retry: u32,
    /// `delay_before_retry`: time between those attempts (default 1 s).
    pub delay_before_retry: Duration,
    /// `warmup`: the first check starts after a random delay up to this (default 0).
    pub warmup: Duration,
    /// `alpha`: the server starts down and must pass checks to come up.
    pub alpha: bool,
    /// Consecutive successful checks needed to come up (Fulcrum extension; 1, as
    /// keepalived, by default).
    pub rise: u32,
    /// Consecutive failed checks needed to go down (Fulcrum extension; 1, as
    /// keepalived, by default).
    pub fall: u32,
}

impl CheckerConfig {
    /// A checker of `kind` with keepalived's defaults.
    pub fn new(kind: CheckKind) -> Self {
        CheckerConfig {
            kind,
            delay_loop: DEFAULT_DELAY_LOOP,
            retry: DEFAULT_RETRY,
            delay_before_retry: DEFAULT_DELAY_BEFORE_RETRY,
            warmup: Duration::ZERO,
            alpha: false,
            rise: 1,
            fall: 1,
        }
    }

    /// How long one attempt may take: `connect_timeout`, or for `MISC_CHECK`
    /// `misc_timeout` (default `delay_loop`).
    pub fn probe_timeout(&self) -> Duration {
        match &self.kind {
            CheckKind::Tcp(c) => c.conn.connect_timeout,
            CheckKind::Http(c) => c.conn.connect_timeout,
            CheckKind::Udp(c) => c.conn.connect_timeout,
            CheckKind::Ping(c) => c.conn.connect_timeout,
            CheckKind::Misc(m) => m.misc_timeout.unwrap_or(self.delay_loop),
        }
    }

    /// Rejects settings keepalived rejects or that would spin: a zero `delay_loop` or
    /// probe timeout, `rise`/`fall` of 0, an `HTTP_GET` without URLs, an empty
    /// `misc_path`.
    pub fn validate(&self) -> Result<(), HealthError> {
        let kw = self.kind.keyword();
        if self.delay_loop.is_zero() {
            return Err(HealthError::Invalid(kw, "delay_loop must be above 0"));
        }
        if self.probe_timeout().is_zero() {
            return Err(HealthError::Invalid(kw, "timeout must be above 0"));
        }
        if self.rise == 0 || self.fall == 0 {
            return Err(HealthError::Invalid(kw, "rise and fall must be at least 1"));
        }
        match &self.kind {
            CheckKind::Http(h) if h.urls.is_empty() => {
                Err(HealthError::Invalid(kw, "needs at least one url"))
            }
            CheckKind::Misc(m) if m.misc_path.trim().is_empty() => {
                Err(HealthError::Invalid(kw, "misc_path is empty"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_defaults() {
        let c = CheckerConfig::new(CheckKind::Tcp(TcpCheck::default()));
        assert_eq!(c.delay_loop, Duration::from_secs(60));
        assert_eq!(c.retry, 1);
        assert_eq!(c.delay_before_retry, Duration::from_secs(1));
        assert_eq!(c.probe_timeout(), Duration::from_secs(5));
        assert!(!c.alpha);
        c.validate().unwrap();
        let mut m = CheckerConfig::new(CheckKind::Misc(MiscCheck {
            misc_path: "/bin/true".into(),
            misc_timeout: None,
            misc_dynamic: false,
            user: None,
        }));
        m.delay_loop = Duration::from_secs(7);
        assert_eq!(
            m.probe_timeout(),
            Duration::from_secs(7),
            "misc_timeout defaults to delay_loop"
        );
        assert_eq!(m.kind.keyword(), "MISC_CHECK");
    }

    #[test]
    fn validation() {
        let mut c = CheckerConfig::new(CheckKind::Http(HttpCheck {
            conn: ConnectOptions::default(),
            ssl: true,
            urls: vec![],
            virtualhost: None,
            enable_sni: true,
        }));
        assert_eq!(c.kind.keyword(), "SSL_GET");
        assert!(matches!(
            c.validate(),
            Err(HealthError::Invalid("SSL_GET", _))
        ));
        if let CheckKind::Http(h) = &mut c.kind {
            h.urls.push(UrlCheck::new("/"));
        }
        c.validate().unwrap();
        c.rise = 0;
        assert!(c.validate().is_err());
        c.rise = 1;
        c.delay_loop = Duration::ZERO;
        assert!(c.validate().is_err());
    }

    #[test]
    fn status_ranges() {
        assert_eq!(StatusRange::parse("200").unwrap(), StatusRange::code(200));
        let r = StatusRange::parse("200-299").unwrap();
        assert!(r.contains(200) && r.contains(299) && !r.contains(300));
        for bad in ["", "99", "600", "300-200", "2x0", "-200", "200-", "+200"] {
            assert!(StatusRange::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn digests() {
        let d = parse_digest("5b6d74f1453e20c09d6a20d909779ad7").unwrap();
        assert_eq!(d[0], 0x5b);
        assert_eq!(d[15], 0xd7);
        assert_eq!(parse_digest("5B6D74F1453E20C09D6A20D909779AD7").unwrap(), d);
        assert!(parse_digest("5b6d74f1453e20c09d6a20d909779ad").is_err());
        assert!(parse_digest("5b6d74f1453e20c09d6a20d909779adz").is_err());
        assert!(parse_digest("ééééééééééééééé").is_err());
    }
}
