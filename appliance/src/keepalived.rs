//! `fulcrum import-keepalived`: reads a keepalived.conf (including DPVS's keepalived
//! extensions) and writes the equivalent fulcrum TOML.
//!
//! The grammar: a keyword and its arguments on one line, an optional `{ … }` block;
//! comments start with `#` or `!`; double-quoted strings; `include GLOB` (relative to the
//! including file) splices other files in place. Everything without a fulcrum equivalent
//! becomes a comment in the output *and* a warning — nothing is dropped silently.
//! `vrrp_instance` and `vrrp_sync_group` become `[[vrrp.instance]]` and
//! `[[vrrp.sync_group]]` (see `docs/vrrp.md`); `vrrp_script` (track scripts) is kept as a
//! commented section.

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors of the importer.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The block structure is broken.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// `include` nests too deeply (a loop).
    #[error("{file}:{line}: include nested more than {MAX_INCLUDE_DEPTH} levels (a loop?)")]
    IncludeDepth {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
    },
}

const MAX_INCLUDE_DEPTH: usize = 8;

/// A warning: something that was not converted, or converted with a change of meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Source file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Explanation.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Import {
    /// The fulcrum configuration.
    pub toml: String,
    /// Everything not converted as is.
    pub warnings: Vec<Warning>,
}

/// One statement of a keepalived configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword.
    pub key: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The block, if any.
    pub children: Option<Vec<Node>>,
    /// Source file.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
}

impl Node {
    fn kids(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

fn lex(text: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let flush = |w: &mut String, out: &mut Vec<(Tok, usize)>| {
            if !w.is_empty() {
                out.push((Tok::Word(std::mem::take(w)), line_no));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' if word.is_empty() => break,
                '"' => {
                    flush(&mut word, &mut out);
                    let mut s = String::new();
                    for d in chars.by_ref() {
                        if d == '"' {
                            break;
                        }
                        s.push(d);
                    }
                    out.push((Tok::Word(s), line_no));
                }
                '{' => {
                    flush(&mut word, &mut out);
                    out.push((Tok::Open, line_no));
                }
                '}' => {
                    flush(&mut word, &mut out);
                    out.push((Tok::Close, line_no));
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    out
}

/// Parses a file and the files it includes.
pub fn parse_file(path: &Path) -> Result<Vec<Node>, ImportError> {
    parse_path(path, 0)
}

fn parse_path(path: &Path, depth: usize) -> Result<Vec<Node>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_text(&text, &path.display().to_string(), &base, depth)
}

/// Parses configuration text; `base` resolves relative includes.
pub fn parse_text(
    text: &str,
    file: &str,
    base: &Path,
    depth: usize,
) -> Result<Vec<Node>, ImportError> {
    let file: Arc<str> = Arc::from(file);
    let toks = lex(text);
    let mut pos = 0;
    let nodes = parse_block(&toks, &mut pos, &file, false)?;
    if let Some((_, line)) = toks.get(pos) {
        return Err(ImportError::Syntax {
            file: file.to_string(),
            line: *line,
            message: "unexpected '}'".into(),
        });
    }
    expand_includes(nodes, base, depth)
}

fn parse_block(
    toks: &[(Tok, usize)],
    pos: &mut usize,
    file: &Arc<str>,
    nested: bool,
) -> Result<Vec<Node>, ImportError> {
    let mut nodes = Vec::new();
    let syntax = |line: usize, message: &str| ImportError::Syntax {
        file: file.to_string(),
        line,
        message: message.to_string(),
    };
    while let Some((tok, line)) = toks.get(*pos) {
        match tok {
            Tok::Close => {
                if nested {
                    *pos += 1;
                    return Ok(nodes);
                }
                return Ok(nodes);
            }
            Tok::Open => return Err(syntax(*line, "'{' without a keyword")),
            Tok::Word(w) => {
                let line = *line;
                *pos += 1;
                let mut args = Vec::new();
                while let Some((Tok::Word(a), l)) = toks.get(*pos) {
                    if *l != line {
                        break;
                    }
                    args.push(a.clone());
                    *pos += 1;
                }
                let children = match toks.get(*pos) {
                    Some((Tok::Open, _)) => {
                        *pos += 1;
                        let kids = parse_block(toks, pos, file, true)?;
                        Some(kids)
                    }
                    _ => None,
                };
                nodes.push(Node {
                    key: w.clone(),
                    args,
                    children,
                    file: file.clone(),
                    line,
                });
            }
        }
    }
    if nested {
        let line = toks.last().map(|t| t.1).unwrap_or(0);
        return Err(syntax(line, "missing '}' at end of file"));
    }
    Ok(nodes)
}

fn expand_includes(nodes: Vec<Node>, base: &Path, depth: usize) -> Result<Vec<Node>, ImportError> {
    let mut out = Vec::new();
    for mut n in nodes {
        if n.key == "include" && n.children.is_none() {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(ImportError::IncludeDepth {
                    file: n.file.to_string(),
                    line: n.line,
                });
            }
            for pattern in &n.args {
                let full = if Path::new(pattern).is_absolute() {
                    PathBuf::from(pattern)
                } else {
                    base.join(pattern)
                };
                let paths: Vec<PathBuf> = match glob::glob(&full.display().to_string()) {
                    Ok(g) => g.filter_map(Result::ok).collect(),
                    Err(e) => {
                        return Err(ImportError::Syntax {
                            file: n.file.to_string(),
                            line: n.line,
                            message: format!("bad include pattern {pattern}: {e}"),
                        })
                    }
                };
                if paths.is_empty() {
                    return Err(ImportError::Io {
                        path: full,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "include matched no file",
                        ),
                    });
                }
                for p in paths {
                    out.extend(parse_path(&p, depth + 1)?);
                }
            }
            continue;
        }
        if let Some(kids) = n.children.take() {
            n.children = Some(expand_includes(kids, base, depth)?);
        }
        out.push(n);
    }
    Ok(out)
}

/// Imports a keepalived.conf file.
pub fn import_file(path: &Path) -> Result<Import, ImportError> {
    let nodes = parse_file(path)?;
    Ok(convert(&nodes, &path.display().to_string()))
}

// ---------------------------------------------------------------------------------------
// Conversion.

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn secs(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

fn dur(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("\"{}s\"", v as u64)
    } else {
        format!("\"{}ms\"", (v * 1000.0).round() as u64)
    }
}

/// Expands `10.0.0.1-10` (last octet range) or a single address.
fn expand_range(s: &str) -> Option<Vec<IpAddr>> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    let (start, end) = s.split_once('-')?;
    let a: Ipv4Addr = start.parse().ok()?;
    let last: u8 = end.parse().ok()?;
    let o = a.octets();
    if last < o[3] {
        return None;
    }
    Some(
        (o[3]..=last)
            .map(|x| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], x)))
            .collect(),
    )
}

struct Converter {
    file: String,
    warnings: Vec<Warning>,
    laddr_groups: HashMap<String, Vec<(IpAddr, Option<String>)>>,
    addr_groups: HashMap<String, Vec<String>>,
    dpvs: bool,
}

impl Converter {
    fn warn(&mut self, n: &Node, message: impl Into<String>) {
        self.warnings.push(Warning {
            file: n.file.to_string(),
            line: n.line,
            message: message.into(),
        });
    }

    /// Notes an unconverted statement: a warning and a comment line.
    fn unsupported(&mut self, n: &Node, out: &mut String, context: &str) {
        let text = render_node_line(n);
        self.warn(
            n,
            format!("{context}`{text}` has no fulcrum equivalent; kept as a comment"),
        );
        let _ = writeln!(out, "# keepalived (no equivalent): {text}");
    }
}

fn render_node_line(n: &Node) -> String {
    let mut s = n.key.clone();
    for a in &n.args {
        s.push(' ');
        if a.contains(char::is_whitespace) || a.is_empty() {
            s.push_str(&format!("\"{a}\""));
        } else {
            s.push_str(a);
        }
    }
    if n.children.is_some() {
        s.push_str(" { … }");
    }
    s
}

fn render_node_tree(n: &Node, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    let mut line = render_node_line(n);
    if n.children.is_some() {
        line = line.trim_end_matches(" { … }").to_string() + " {";
    }
    let _ = writeln!(out, "# {pad}{line}");
    if let Some(kids) = &n.children {
        for k in kids {
            render_node_tree(k, indent + 1, out);
        }
        let _ = writeln!(out, "# {pad}}}");
    }
}

/// Converts parsed keepalived statements; `file` names the source in the header.
pub fn convert(nodes: &[Node], file: &str) -> Import {
    let mut c = Converter {
        file: file.to_string(),
        warnings: Vec::new(),
        laddr_groups: HashMap::new(),
        addr_groups: HashMap::new(),
        dpvs: false,
    };
    // Pass 1: groups.
    let mut vs_group_members: HashMap<String, Vec<&Node>> = HashMap::new();
    for n in nodes {
        match n.key.as_str() {
            "local_address_group" => {
                c.dpvs = true;
                let name = n.arg(0).unwrap_or("").to_string();
                let mut addrs = Vec::new();
                for m in n.kids() {
                    match expand_range(&m.key) {
                        Some(ips) => addrs
                            .extend(ips.into_iter().map(|ip| (ip, m.arg(0).map(str::to_string)))),
                        None => c.warn(
                            m,
                            format!(
                                "local address \"{}\" is not an address or range; ignored",
                                m.key
                            ),
                        ),
                    }
                }
                c.laddr_groups.insert(name, addrs);
            }
            "deny_address_group" | "allow_address_group" => {
                c.dpvs = true;
                let name = n.arg(0).unwrap_or("").to_string();
                let list = n.kids().iter().map(|m| m.key.clone()).collect();
                c.addr_groups.insert(name, list);
            }
            "virtual_server_group" => {
                let name = n.arg(0).unwrap_or("").to_string();
                vs_group_members.insert(name, n.kids().iter().collect());
            }
            _ => {}
        }
    }

    let mut services = String::new();
    let mut trailer = String::new();
    let mut global = String::new();
    let mut router_id = None;
    let mut vrrp = String::new();
    let mut vrrp_version: Option<u8> = None;
    let mut count = 0usize;
    let mut used_names: HashMap<String, usize> = HashMap::new();
    for n in nodes {
        match n.key.as_str() {
            "global_defs" => {
                for g in n.kids() {
                    match (g.key.as_str(), g.arg(0)) {
                        ("vrrp_version", Some(v)) if v == "2" || v == "3" => {
                            vrrp_version = v.parse().ok();
                        }
                        ("router_id", Some(id)) => match id.parse::<Ipv4Addr>() {
                            Ok(ip) => router_id = Some(ip),
                            Err(_) => {
                                let _ = writeln!(global, "# keepalived router_id {id}: fulcrum's router_id is an IPv4 address (set router_id = \"A.B.C.D\" for OSPF)");
                                c.warn(g, format!("router_id \"{id}\" is a name, not an IPv4 address; set [global].router_id yourself"));
                            }
                        },
                        _ => c.unsupported(g, &mut global, "global_defs: "),
                    }
                }
            }
            "local_address_group"
            | "deny_address_group"
            | "allow_address_group"
            | "virtual_server_group" => {}
            "vrrp_instance" => c.vrrp_instance(n, vrrp_version, &mut vrrp),
            "vrrp_sync_group" => c.vrrp_sync_group(n, &mut vrrp),
            "vrrp_script" => {
                c.warn(
                    n,
                    format!(
                        "{} {}: track scripts are not supported by fulcrum's VRRP; kept as a commented section",
                        n.key,
                        n.args.join(" ")
                    ),
                );
                let _ = writeln!(
                    trailer,
                    "\n# --- {} {} ({}:{}): VRRP track scripts are not supported; not converted.",
                    n.key,
                    n.args.join(" "),
                    n.file,
                    n.line
                );
                render_node_tree(n, 0, &mut trailer);
            }
            "virtual_server" => {
                let targets: Vec<(String, Option<(IpAddr, u16)>)> = match (n.arg(0), n.arg(1)) {
                    (Some("group"), Some(g)) => match vs_group_members.get(g) {
                        Some(members) => {
                            let mut t = Vec::new();
                            for m in members.clone() {
                                if m.key == "fwmark" {
                                    c.warn(m, "virtual_server_group fwmark entries are not supported (fulcrum services are address:port); skipped");
                                    let _ = writeln!(services, "# keepalived (not supported): virtual_server_group {g}: fwmark {}", m.args.join(" "));
                                    continue;
                                }
                                let port = m.arg(0).and_then(|p| p.parse::<u16>().ok());
                                match (expand_range(&m.key), port) {
                                    (Some(ips), Some(port)) => {
                                        for ip in ips {
                                            t.push((format!("{g}-{ip}-{port}"), Some((ip, port))));
                                        }
                                    }
                                    _ => c.warn(
                                        m,
                                        format!(
                                            "virtual_server_group {g}: cannot read \"{}\"",
                                            render_node_line(m)
                                        ),
                                    ),
                                }
                            }
                            t
                        }
                        None => {
                            c.warn(n, format!("virtual_server group {g}: no such virtual_server_group; skipped"));
                            Vec::new()
                        }
                    },
                    (Some("fwmark"), mark) => {
                        c.warn(n, format!("virtual_server fwmark {}: firewall-mark services are not supported; kept as a comment", mark.unwrap_or("")));
                        let _ = writeln!(trailer, "\n# --- virtual_server fwmark ({}:{}): firewall-mark services are not supported; not converted.", n.file, n.line);
                        render_node_tree(n, 0, &mut trailer);
                        Vec::new()
                    }
                    (Some(ip), Some(port)) => {
                        match (ip.parse::<IpAddr>(), port.parse::<u16>()) {
                            (Ok(ip), Ok(port)) => vec![(String::new(), Some((ip, port)))],
                            _ => {
                                c.warn(n, format!("virtual_server {ip} {port}: not an address and port; skipped"));
                                Vec::new()
                            }
                        }
                    }
                    _ => {
                        c.warn(n, "virtual_server without address and port; skipped");
                        Vec::new()
                    }
                };
                for (gname, target) in targets {
                    let Some((ip, port)) = target else { continue };
                    let mut name = if gname.is_empty() {
                        format!("vs-{ip}-{port}")
                    } else {
                        gname
                    };
                    let e = used_names.entry(name.clone()).or_insert(0);
                    *e += 1;
                    if *e > 1 {
                        name = format!("{name}-{e}");
                    }
                    c.service(n, &name, ip, port, &mut services);
                    count += 1;
                }
            }
            _ => c.unsupported(n, &mut services, ""),
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# fulcrum configuration converted from {} by `fulcrum import-keepalived`.",
        c.file
    );
    let _ = writeln!(
        out,
        "# Review it: lines starting with \"# keepalived\" had no equivalent.\n"
    );
    let _ = writeln!(out, "[global]");
    if let Some(ip) = router_id {
        let _ = writeln!(out, "router_id = {}", q(&ip.to_string()));
    }
    out.push_str(&global);
    let _ = writeln!(out, "\n[dataplane]");
    if c.dpvs {
        let _ = writeln!(
            out,
            "# The source is a DPVS keepalived: set mode = \"dpdk\" and declare the DPDK ports"
        );
        let _ = writeln!(
            out,
            "# as [[interface]] tables (name, device, addresses) to forward with fulcrum."
        );
    } else {
        let _ = writeln!(
            out,
            "# keepalived drove the kernel's IPVS: set mode = \"dpdk\" and declare [[interface]]"
        );
        let _ = writeln!(
            out,
            "# tables (name, device, addresses) to forward with fulcrum."
        );
    }
    let _ = writeln!(out, "mode = \"kernel\"");
    if count == 0 {
        let _ = writeln!(out, "\n# No virtual_server was converted.");
    }
    out.push_str(&services);
    out.push_str(&vrrp);
    out.push_str(&trailer);
    Import {
        toml: out,
        warnings: c.warnings,
    }
}

#[derive(Default, Clone, PartialEq)]
struct CheckOut {
    kind: &'static str,
    fields: Vec<(String, String)>,
}

impl CheckOut {
    fn inline(&self) -> String {
        let mut s = format!("{{ type = \"{}\"", self.kind);
        for (k, v) in &self.fields {
            let _ = write!(s, ", {k} = {v}");
        }
        s.push_str(" }");
        s
    }
}

impl Converter {
    fn service(&mut self, n: &Node, name: &str, ip: IpAddr, port: u16, out: &mut String) {
        let mut lines: Vec<String> = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut interval: f64 = 60.0;
        let mut interval_set = false;
        let mut forward = "nat".to_string();
        let mut protocol = "tcp".to_string();
        let mut scheduler: Option<String> = None;
        let mut local_addresses: Vec<IpAddr> = Vec::new();
        let mut client_address: Option<&str> = None;
        let mut deny: Vec<String> = Vec::new();
        let mut allow: Vec<String> = Vec::new();
        let mut vs_flags: Vec<(String, String)> = Vec::new();
        let mut virtualhost: Option<String> = None;
        let mut real_servers = Vec::new();
        for k in n.kids() {
            let a0 = k.arg(0);
            match (k.key.as_str(), a0) {
                ("delay_loop", Some(v)) => match secs(v) {
                    Some(s) if s > 0.0 => {
                        interval = s;
                        interval_set = true;
                    }
                    _ => self.warn(
                        k,
                        format!("delay_loop {v}: not a positive number; using 60s"),
                    ),
                },
                ("lb_algo" | "lvs_sched", Some(v)) => scheduler = Some(v.to_lowercase()),
                ("lb_kind" | "lvs_method", Some(v)) => {
                    forward = match v.to_uppercase().as_str() {
                        "NAT" => "nat",
                        "DR" => "dr",
                        "TUN" => "tun",
                        "FNAT" => {
                            self.dpvs = true;
                            "fnat"
                        }
                        other => {
                            self.warn(k, format!("lb_kind {other}: unknown; written as is"));
                            v
                        }
                    }
                    .to_string()
                }
                ("protocol", Some(v)) => {
                    protocol = v.to_lowercase();
                    if protocol != "tcp" && protocol != "udp" {
                        self.warn(
                            k,
                            format!(
                                "protocol {v} is not supported (tcp and udp are); written as is"
                            ),
                        );
                    }
                }
                ("persistence_timeout", Some(v)) => match secs(v) {
                    Some(s) if s > 0.0 => lines.push(format!("persistence_timeout = {}", dur(s))),
                    _ => self.warn(
                        k,
                        format!("persistence_timeout {v}: not a positive number; dropped"),
                    ),
                },
                ("persistence_granularity", Some(v)) => {
                    lines.push(format!("persistence_netmask = {}", q(v)))
                }
                ("quorum", Some(v)) => lines.push(format!("quorum = {v}")),
                ("hysteresis", Some(v)) => lines.push(format!("hysteresis = {v}")),
                ("quorum_up" | "quorum_down", _) => {
                    comments.push(format!(
                        "# keepalived {} {}: fulcrum announces and withdraws the VIP natively when the quorum\n# changes: set announce = \"ospf\" (with an [ospf] section) or \"arp\" instead of scripts.",
                        k.key,
                        k.args.join(" ")
                    ));
                    self.warn(k, format!("{} script replaced by native VIP announcement (see the comment in the service)", k.key));
                }
                ("sorry_server", Some(v)) => match k.arg(1) {
                    Some(p) => {
                        let addr = match v.parse::<IpAddr>() {
                            Ok(IpAddr::V6(a)) => format!("[{a}]:{p}"),
                            _ => format!("{v}:{p}"),
                        };
                        lines.push(format!("sorry_server = {}", q(&addr)));
                    }
                    None => self.warn(k, "sorry_server without a port; dropped"),
                },
                ("virtualhost", Some(v)) => virtualhost = Some(v.to_string()),
                ("alpha", None) => vs_flags.push(("alpha".into(), "true".into())),
                ("omega", None) => vs_flags.push(("omega".into(), "true".into())),
                ("syn_proxy", None) => {
                    self.dpvs = true;
                    lines.push("syn_proxy = true".into());
                }
                ("laddr_group_name", Some(g)) => {
                    self.dpvs = true;
                    match self.laddr_groups.get(g) {
                        Some(addrs) => {
                            let devs: Vec<String> =
                                addrs.iter().filter_map(|(_, d)| d.clone()).collect();
                            if !devs.is_empty() {
                                comments.push(format!(
                                    "# DPVS local_address_group {g} put the local addresses on {}: declare them in [[interface]].addresses.",
                                    devs.join(", ")
                                ));
                            }
                            local_addresses.extend(addrs.iter().map(|(a, _)| *a));
                        }
                        None => self.warn(
                            k,
                            format!("laddr_group_name {g}: no such local_address_group"),
                        ),
                    }
                }
                ("establish_timeout", Some(v)) => match secs(v) {
                    Some(s) if s > 0.0 => lines.push(format!("established_timeout = {}", dur(s))),
                    _ => self.warn(
                        k,
                        format!("establish_timeout {v}: not a positive number; dropped"),
                    ),
                },
                ("proxy_protocol", Some(v)) => {
                    client_address = match v {
                        "v1" | "1" => Some("proxy-v1"),
                        "v2" | "2" => Some("proxy-v2"),
                        "disable" | "0" => Some("none"),
                        _ => {
                            self.warn(k, format!("proxy_protocol {v}: unknown version; dropped"));
                            client_address
                        }
                    }
                }
                ("blklst_group_name" | "deny_address_group_name", Some(g)) => {
                    match self.addr_groups.get(g) {
                        Some(l) => deny.extend(l.iter().cloned()),
                        None => self.warn(k, format!("{} {g}: no such address group", k.key)),
                    }
                }
                ("whtlst_group_name" | "allow_address_group_name", Some(g)) => {
                    match self.addr_groups.get(g) {
                        Some(l) => allow.extend(l.iter().cloned()),
                        None => self.warn(k, format!("{} {g}: no such address group", k.key)),
                    }
                }
                ("real_server", Some(_)) => real_servers.push(k),
                _ => {
                    let text = render_node_line(k);
                    self.warn(k, format!("virtual_server {ip} {port}: `{text}` has no fulcrum equivalent; kept as a comment"));
                    comments.push(format!("# keepalived (no equivalent): {text}"));
                }
            }
        }
        if forward == "fnat" && protocol == "tcp" && client_address.is_none() {
            client_address = Some("toa");
            comments.push(
                "# DPVS FNAT inserts the client address as a TCP option (TOA) for TCP services."
                    .into(),
            );
        }

        let _ = writeln!(
            out,
            "\n# keepalived virtual_server at {}:{}",
            n.file, n.line
        );
        let _ = writeln!(out, "[[service]]");
        for cm in &comments {
            let _ = writeln!(out, "{cm}");
        }
        let _ = writeln!(out, "name = {}", q(name));
        let _ = writeln!(out, "vip = {}", q(&ip.to_string()));
        let _ = writeln!(out, "port = {port}");
        let _ = writeln!(out, "protocol = {}", q(&protocol));
        match &scheduler {
            Some(s) => {
                let _ = writeln!(out, "scheduler = {}", q(s));
            }
            None => {
                let _ = writeln!(out, "# keepalived's default lb_algo");
                let _ = writeln!(out, "scheduler = \"wlc\"");
            }
        }
        let _ = writeln!(out, "forward = {}", q(&forward));
        if !local_addresses.is_empty() {
            let list: Vec<String> = local_addresses.iter().map(|a| q(&a.to_string())).collect();
            let _ = writeln!(out, "local_addresses = [{}]", list.join(", "));
        } else if forward == "fnat" {
            self.warn(n, format!("virtual_server {ip} {port}: FNAT without laddr_group_name; local_addresses must be set"));
        }
        if let Some(ca) = client_address {
            let _ = writeln!(out, "client_address = {}", q(ca));
        }
        let _ = writeln!(out, "announce = \"none\"");
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        if !deny.is_empty() {
            let list: Vec<String> = deny.iter().map(|a| q(&with_len(a))).collect();
            let _ = writeln!(out, "deny = [{}]", list.join(", "));
        }
        if !allow.is_empty() {
            let list: Vec<String> = allow.iter().map(|a| q(&with_len(a))).collect();
            let _ = writeln!(out, "allow = [{}]", list.join(", "));
        }

        // Real servers and their checks.
        let mut rs_out: Vec<(String, Option<CheckOut>, Vec<String>)> = Vec::new();
        for rs in real_servers {
            let mut body = String::new();
            let mut rcomments = Vec::new();
            let addr = rs.arg(0).unwrap_or("");
            if addr.parse::<IpAddr>().is_err() {
                self.warn(
                    rs,
                    format!("real_server {addr}: not an IP address; written as is"),
                );
            }
            let _ = writeln!(body, "address = {}", q(addr));
            match rs.arg(1) {
                Some(p) => {
                    let _ = writeln!(body, "port = {p}");
                }
                None => {
                    self.warn(
                        rs,
                        format!("real_server {addr} without a port: the service port is used"),
                    );
                }
            }
            let mut check: Option<CheckOut> = None;
            let mut inhibit = false;
            for k in rs.kids() {
                match (k.key.as_str(), k.arg(0)) {
                    ("weight", Some(w)) => {
                        let _ = writeln!(body, "weight = {w}");
                    }
                    ("inhibit_on_failure", None) => inhibit = true,
                    (
                        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "UDP_CHECK"
                        | "PING_CHECK",
                        _,
                    ) => {
                        if check.is_some() {
                            self.warn(k, format!("real_server {addr}: more than one checker; only the first is converted"));
                            rcomments.push(format!(
                                "# keepalived (second checker not converted): {}",
                                render_node_line(k)
                            ));
                            continue;
                        }
                        check =
                            Some(self.check(k, interval, interval_set, &virtualhost, &vs_flags));
                    }
                    _ => {
                        let text = render_node_line(k);
                        self.warn(k, format!("real_server {addr}: `{text}` has no fulcrum equivalent; kept as a comment"));
                        rcomments.push(format!("# keepalived (no equivalent): {text}"));
                    }
                }
            }
            if inhibit {
                match &mut check {
                    Some(ch) => ch.fields.push(("inhibit_on_failure".into(), "true".into())),
                    None => {
                        self.warn(rs, format!("real_server {addr}: inhibit_on_failure without a checker has no effect"));
                        rcomments
                            .push("# keepalived inhibit_on_failure (no checker: no effect)".into());
                    }
                }
            }
            rs_out.push((body, check, rcomments));
        }
        let first = rs_out.first().and_then(|r| r.1.clone());
        let shared = first.is_some() && rs_out.iter().all(|r| r.1 == first);
        if shared {
            if let Some(ch) = &first {
                let _ = writeln!(out, "check = {}", ch.inline());
            }
        }
        for (body, check, rcomments) in rs_out {
            let _ = writeln!(out, "\n[[service.real_server]]");
            for cm in rcomments {
                let _ = writeln!(out, "{cm}");
            }
            out.push_str(&body);
            if !shared {
                if let Some(ch) = check {
                    let _ = writeln!(out, "check = {}", ch.inline());
                }
            }
        }
    }

    fn check(
        &mut self,
        k: &Node,
        interval: f64,
        interval_set: bool,
        vhost: &Option<String>,
        vs_flags: &[(String, String)],
    ) -> CheckOut {
        let kind = match k.key.as_str() {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "MISC_CHECK" => "misc",
            "UDP_CHECK" => "udp",
            _ => "ping",
        };
        let mut interval = interval;
        let mut timeout: Option<f64> = None;
        let mut f: Vec<(String, String)> = Vec::new();
        let mut host = vhost.clone();
        let mut url_seen = false;
        for o in k.kids() {
            let a0 = o.arg(0).unwrap_or("");
            match o.key.as_str() {
                "connect_timeout" | "misc_timeout" => timeout = secs(a0),
                "delay_loop" => {
                    if let Some(s) = secs(a0).filter(|s| *s > 0.0) {
                        interval = s;
                    }
                }
                "nb_get_retry" | "nb_sock_retry" | "retry" => {
                    f.push(("retries".into(), a0.to_string()))
                }
                "delay_before_retry" => {
                    if let Some(s) = secs(a0) {
                        f.push(("retry_delay".into(), dur(s)));
                    }
                }
                "warmup" => {
                    if let Some(s) = secs(a0) {
                        f.push(("warmup".into(), dur(s)));
                    }
                }
                "connect_port" => f.push(("connect_port".into(), a0.to_string())),
                "connect_ip" => f.push(("connect_ip".into(), q(a0))),
                "bindto" | "bind_to" => f.push(("bindto".into(), q(a0))),
                "virtualhost" => host = Some(a0.to_string()),
                "misc_path" => f.push(("program".into(), q(&o.args.join(" ")))),
                "misc_dynamic" => f.push(("dynamic".into(), "true".into())),
                "require_reply" => f.push(("require_reply".into(), "true".into())),
                "payload" => f.push(("payload".into(), q(a0))),
                "url" if !url_seen => {
                    url_seen = true;
                    let mut codes = Vec::new();
                    for u in o.kids() {
                        let v = u.arg(0).unwrap_or("");
                        match u.key.as_str() {
                            "path" => f.push(("path".into(), q(v))),
                            "status_code" => codes.push(v.to_string()),
                            "digest" => f.push(("digest".into(), q(v))),
                            _ => {
                                let text = render_node_line(u);
                                self.warn(
                                    u,
                                    format!(
                                        "{} url: `{text}` has no fulcrum equivalent; dropped",
                                        k.key
                                    ),
                                );
                            }
                        }
                    }
                    if !codes.is_empty() {
                        f.push(("status_codes".into(), format!("[{}]", codes.join(", "))));
                    }
                }
                _ => {
                    let text = render_node_line(o);
                    self.warn(
                        o,
                        format!("{}: `{text}` has no fulcrum equivalent; dropped", k.key),
                    );
                }
            }
        }
        if matches!(kind, "http" | "https") && !f.iter().any(|(k, _)| k == "path") {
            f.push(("path".into(), q("/")));
        }
        if let Some(h) = host.filter(|_| matches!(kind, "http" | "https")) {
            f.push(("host".into(), q(&h)));
        }
        f.extend(vs_flags.iter().cloned());
        let mut timeout = timeout.unwrap_or(5.0f64.min(interval));
        if timeout > interval {
            self.warn(k, format!("connect_timeout {timeout}s exceeds the check interval {interval}s; timeout set to the interval"));
            timeout = interval;
        }
        if !interval_set {
            self.warn(
                k,
                "no delay_loop: keepalived's default 60s interval is used",
            );
        }
        let mut fields = vec![
            ("interval".to_string(), dur(interval)),
            ("timeout".to_string(), dur(timeout)),
        ];
        fields.extend(f);
        CheckOut { kind, fields }
    }
}

fn with_len(a: &str) -> String {
    if a.contains('/') {
        a.to_string()
    } else if a.contains(':') {
        format!("{a}/128")
    } else {
        format!("{a}/32")
    }
}

// ---------------------------------------------------------------------------------------
// VRRP: `vrrp_instance` and `vrrp_sync_group` to `[[vrrp.instance]]`/`[[vrrp.sync_group]]`.

impl Converter {
    /// Converts `vrrp_instance NAME { … }`; `version` is `global_defs { vrrp_version }`.
    fn vrrp_instance(&mut self, n: &Node, version: Option<u8>, out: &mut String) {
        let name = n.arg(0).unwrap_or("").to_string();
        let mut body = String::new();
        let mut notes = String::new();
        let mut have = (false, false, false);
        if let Some(v) = version {
            let _ = writeln!(body, "version = {v}");
        }
        for k in n.kids() {
            let a0 = k.arg(0);
            match (k.key.as_str(), a0) {
                ("state", Some(s)) if s == "MASTER" || s == "BACKUP" => {
                    let _ = writeln!(body, "state = {}", q(s));
                }
                ("interface", Some(i)) => {
                    have.0 = true;
                    let _ = writeln!(body, "interface = {}", q(i));
                }
                ("virtual_router_id", Some(v)) if v.parse::<u8>().is_ok() => {
                    have.1 = true;
                    let _ = writeln!(body, "virtual_router_id = {v}");
                }
                ("priority", Some(v)) if v.parse::<u8>().is_ok() => {
                    let _ = writeln!(body, "priority = {v}");
                }
                ("advert_int", Some(v)) if secs(v).is_some() => {
                    let _ = writeln!(body, "advert_int = {}", dur(secs(v).unwrap_or(1.0)));
                }
                ("version" | "vrrp_version", Some(v)) if v == "2" || v == "3" => {
                    let _ = writeln!(body, "version = {v}");
                }
                ("nopreempt", None) => {
                    let _ = writeln!(body, "preempt = false");
                }
                ("preempt", None) => {}
                ("preempt_delay", Some(v)) if secs(v).is_some() => {
                    let _ = writeln!(body, "preempt_delay = {}", dur(secs(v).unwrap_or(0.0)));
                }
                ("accept", None) => {
                    let _ = writeln!(body, "accept = true");
                }
                ("no_accept", None) => {
                    let _ = writeln!(body, "accept = false");
                }
                ("mcast_src_ip" | "unicast_src_ip", Some(ip)) if ip.parse::<Ipv4Addr>().is_ok() => {
                    let _ = writeln!(body, "source_ip = {}", q(ip));
                }
                ("garp_master_delay" | "garp_master_refresh", Some(v)) if secs(v).is_some() => {
                    let _ = writeln!(body, "{} = {}", k.key, dur(secs(v).unwrap_or(0.0)));
                }
                ("garp_master_repeat", Some(v)) if v.parse::<u32>().is_ok() => {
                    let _ = writeln!(body, "garp_master_repeat = {v}");
                }
                ("authentication", _) => {
                    let mut ty = None;
                    let mut pass = None;
                    for x in k.kids() {
                        match (x.key.as_str(), x.arg(0)) {
                            ("auth_type", Some(t)) => ty = Some(t.to_string()),
                            ("auth_pass", Some(p)) => pass = Some(p.to_string()),
                            _ => {
                                self.unsupported(x, &mut notes, &format!("vrrp_instance {name}: "))
                            }
                        }
                    }
                    match (ty.as_deref(), pass) {
                        (Some("PASS"), Some(p)) => {
                            let _ = writeln!(
                                body,
                                "authentication = {{ type = \"PASS\", password = {} }}",
                                q(&p)
                            );
                        }
                        _ => {
                            self.warn(k, format!("vrrp_instance {name}: only auth_type PASS with an auth_pass is supported (AH is deprecated); authentication dropped"));
                            let _ = writeln!(
                                notes,
                                "# keepalived (not supported): authentication {{ auth_type {} }}",
                                ty.unwrap_or_default()
                            );
                        }
                    }
                }
                ("virtual_ipaddress", _) => {
                    let mut vips = Vec::new();
                    for x in k.kids() {
                        let addr = x.key.as_str();
                        let ok = match addr.split_once('/') {
                            Some((a, l)) => {
                                a.parse::<Ipv4Addr>().is_ok()
                                    && l.parse::<u8>().is_ok_and(|l| l <= 32)
                            }
                            None => addr.parse::<Ipv4Addr>().is_ok(),
                        };
                        if !ok {
                            self.warn(x, format!("vrrp_instance {name}: virtual address \"{addr}\" is not IPv4; skipped"));
                            let _ = writeln!(
                                notes,
                                "# keepalived (not supported): virtual_ipaddress {}",
                                render_node_line(x)
                            );
                            continue;
                        }
                        let mut dev = None;
                        let mut rest = x.args.iter();
                        while let Some(w) = rest.next() {
                            match w.as_str() {
                                "dev" => dev = rest.next().cloned(),
                                other => {
                                    self.warn(x, format!("vrrp_instance {name}: virtual address option \"{other}\" is not supported; ignored"));
                                    if matches!(other, "label" | "scope" | "brd" | "broadcast") {
                                        rest.next();
                                    }
                                }
                            }
                        }
                        vips.push(match dev {
                            Some(d) => format!("{{ address = {}, dev = {} }}", q(addr), q(&d)),
                            None => q(addr),
                        });
                    }
                    let _ = writeln!(body, "virtual_ipaddress = [{}]", vips.join(", "));
                    have.2 = !vips.is_empty();
                }
                ("unicast_peer", _) => {
                    let peers: Vec<String> = k
                        .kids()
                        .iter()
                        .filter(|x| x.key.parse::<Ipv4Addr>().is_ok())
                        .map(|x| q(&x.key))
                        .collect();
                    let _ = writeln!(body, "unicast_peer = [{}]", peers.join(", "));
                }
                ("track_interface", _) => {
                    let items: Vec<String> = k
                        .kids()
                        .iter()
                        .map(|x| match (x.arg(0), x.arg(1)) {
                            (Some("weight"), Some(w)) if w.parse::<i32>().is_ok() => {
                                format!("{{ name = {}, weight = {w} }}", q(&x.key))
                            }
                            _ => q(&x.key),
                        })
                        .collect();
                    let _ = writeln!(body, "track_interface = [{}]", items.join(", "));
                }
                _ => self.unsupported(k, &mut notes, &format!("vrrp_instance {name}: ")),
            }
        }
        if !(have.0 && have.1 && have.2) {
            self.warn(
                n,
                format!("vrrp_instance {name}: needs interface, virtual_router_id and virtual_ipaddress; kept as a comment"),
            );
            let _ = writeln!(
                out,
                "\n# --- vrrp_instance {name} ({}:{}): incomplete; not converted.",
                n.file, n.line
            );
            render_node_tree(n, 0, out);
            return;
        }
        let _ = writeln!(out, "\n[[vrrp.instance]]\nname = {}", q(&name));
        out.push_str(&body);
        out.push_str(&notes);
    }

    /// Converts `vrrp_sync_group NAME { group { … } }`.
    fn vrrp_sync_group(&mut self, n: &Node, out: &mut String) {
        let name = n.arg(0).unwrap_or("").to_string();
        let mut members = Vec::new();
        let mut notes = String::new();
        for k in n.kids() {
            match k.key.as_str() {
                "group" => {
                    for m in k.kids() {
                        members.push(q(&m.key));
                        members.extend(m.args.iter().map(|a| q(a)));
                    }
                }
                _ => self.unsupported(k, &mut notes, &format!("vrrp_sync_group {name}: ")),
            }
        }
        let _ = writeln!(
            out,
            "\n[[vrrp.sync_group]]\nname = {}\ngroup = [{}]",
            q(&name),
            members.join(", ")
        );
        out.push_str(&notes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Forward, Scheduler};

    fn seed(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../configs/keepalived")
            .join(name)
    }

    #[test]
    fn grammar() {
        let text = "global_defs {\n  router_id LB1 # comment\n}\n! bang comment\nvirtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 { weight 3 }\n  misc_path \"/bin/check me\"\n}\n";
        let nodes = parse_text(text, "t.conf", Path::new("."), 0).expect("parse");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].kids()[0].args, ["LB1"]);
        let vs = &nodes[1];
        assert_eq!(
            (vs.key.as_str(), vs.args.clone(), vs.line),
            (
                "virtual_server",
                vec!["10.0.0.1".to_string(), "80".to_string()],
                5
            )
        );
        assert_eq!(vs.kids()[0].kids()[0].args, ["3"]);
        assert_eq!(vs.kids()[1].args, ["/bin/check me"]);
        let e = parse_text("a {\n b\n", "t.conf", Path::new("."), 0).expect_err("unclosed");
        assert!(e.to_string().contains("missing '}'"), "{e}");
        let e = parse_text("a }\n", "t.conf", Path::new("."), 0).expect_err("stray");
        assert!(e.to_string().contains("t.conf:1"), "{e}");
    }

    #[test]
    fn include_and_groups() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
        std::fs::write(
            dir.path().join("conf.d/vs.conf"),
            "virtual_server group G {\n lb_algo wrr\n lb_kind DR\n delay_loop 5\n real_server 10.0.0.9 80 {\n  weight 2\n  HTTP_GET {\n   url { path /health\n status_code 200 }\n   connect_timeout 2\n  }\n }\n}\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("keepalived.conf"),
            "virtual_server_group G {\n 10.0.0.1-2 80\n fwmark 7\n}\ninclude conf.d/*.conf\n",
        )
        .expect("write");
        let imp = import_file(&dir.path().join("keepalived.conf")).expect("import");
        let c = Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
        assert_eq!(c.service.len(), 2);
        assert_eq!(c.service[1].vip, "10.0.0.2".parse::<IpAddr>().expect("ip"));
        assert_eq!(c.service[0].scheduler, Scheduler::Wrr);
        assert_eq!(c.service[0].forward, Forward::Dr);
        let chk = c.service[0].check.as_ref().expect("check");
        assert_eq!(chk.path.as_deref(), Some("/health"));
        assert_eq!(chk.status_codes, [200]);
        assert!(
            imp.warnings.iter().any(|w| w.message.contains("fwmark")),
            "{:?}",
            imp.warnings
        );
        assert!(imp.toml.contains("fwmark 7"));
    }

    #[test]
    fn unknown_keywords_warn_and_comment() {
        let text = "virtual_server 10.0.0.1 80 {\n lb_kind NAT\n ha_suspend\n real_server 10.0.0.2 80 {\n  notify_down /bin/x\n }\n}\nstatic_routes {\n 1.0.0.0/8 via 2.2.2.2\n}\n";
        let nodes = parse_text(text, "k.conf", Path::new("."), 0).expect("parse");
        let imp = convert(&nodes, "k.conf");
        for needle in ["ha_suspend", "notify_down /bin/x", "static_routes"] {
            assert!(
                imp.toml
                    .contains(&format!("# keepalived (no equivalent): {needle}")),
                "{needle}\n{}",
                imp.toml
            );
            assert!(
                imp.warnings.iter().any(|w| w.message.contains(needle)),
                "{needle}"
            );
        }
        Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary input parses or fails with an error, and converts without panicking.
        #[test]
        fn arbitrary_input_never_panics(text in "(\\PC|\n|\\{|\\}|\"|#|!){0,300}") {
            if let Ok(nodes) = parse_text(&text, "p.conf", Path::new("/nonexistent"), 0) {
                let _ = convert(&nodes, "p.conf");
            }
        }
    }

    #[test]
    fn vrrp_options() {
        let text = "global_defs {\n vrrp_version 3\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 9\n priority 120\n advert_int 0.5\n nopreempt\n preempt_delay 10\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2\n }\n track_interface {\n  eth1 weight -20\n  eth2\n }\n virtual_ipaddress {\n  10.0.0.100/24 dev eth3\n  fe80::1\n }\n notify_master /bin/x\n track_script {\n  chk\n }\n}\nvrrp_instance W {\n interface eth0\n}\nvrrp_script chk {\n script /bin/true\n}\n";
        let nodes = parse_text(text, "v.conf", Path::new("."), 0).expect("parse");
        let imp = convert(&nodes, "v.conf");
        let c = Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
        assert_eq!(c.vrrp.instance.len(), 1);
        let v = &c.vrrp.instance[0];
        assert_eq!((v.version, v.priority, v.preempt), (3, 120, false));
        assert_eq!(v.advert_int, std::time::Duration::from_millis(500));
        assert_eq!(v.preempt_delay, std::time::Duration::from_secs(10));
        assert_eq!(v.source_ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(v.unicast_peer, [Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(v.track_interface[0].weight, -20);
        assert_eq!(v.track_interface[1].name, "eth2");
        assert_eq!(v.virtual_ipaddress.len(), 1);
        assert_eq!(v.vip_dev(&v.virtual_ipaddress[0]), "eth3");
        for needle in [
            "fe80::1",
            "notify_master /bin/x",
            "track_script",
            "vrrp_instance W",
            "vrrp_script chk",
        ] {
            assert!(
                imp.warnings.iter().any(|w| w.message.contains(needle)),
                "{needle}: {:?}",
                imp.warnings
            );
        }
    }

    #[test]
    fn seed_000_dpvs_fnat() {
        let imp = import_file(&seed("seed-000.conf")).expect("import");
        let c = Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
        assert_eq!(c.service.len(), 2);
        let s = &c.service[0];
        assert_eq!(s.vip.to_string(), "192.168.7.182");
        assert_eq!(
            (s.port, s.forward, s.scheduler),
            (80, Forward::Fnat, Scheduler::Rr)
        );
        assert!(s.syn_proxy);
        assert_eq!(
            s.local_addresses,
            ["192.168.7.185".parse::<IpAddr>().expect("ip")]
        );
        assert_eq!(s.real_server.len(), 1);
        assert_eq!(s.real_server[0].weight, 100);
        let chk = s.check.as_ref().expect("check");
        assert_eq!(chk.interval, std::time::Duration::from_secs(3));
        assert_eq!(chk.retries, 2);
        assert_eq!(chk.connect_port, Some(80));
        let s2 = &c.service[1];
        assert_eq!(s2.vip.to_string(), "100.96.122.210");
        assert_eq!(
            s2.local_addresses,
            ["192.168.7.188".parse::<IpAddr>().expect("ip")]
        );
        assert!(imp.toml.contains("quorum_down /etc/keepalived/check_rs.sh"));
        // DPVS's HA_INWEB: a VRRP instance on the KNI twin; notify_stop and
        // dpdk_interface have no equivalent (warned and kept as comments).
        let vi = &c.vrrp.instance[0];
        assert_eq!(
            (
                vi.name.as_str(),
                vi.interface.as_str(),
                vi.virtual_router_id
            ),
            ("HA_INWEB", "dpdk0.kni", 210)
        );
        assert_eq!(vi.advert_int, std::time::Duration::from_secs(7));
        assert_eq!(
            vi.authentication.as_ref().expect("auth").password,
            "devweb210"
        );
        assert_eq!(
            vi.virtual_ipaddress[0].address.to_string(),
            "192.168.7.210/32"
        );
        for needle in [
            "dpdk_interface dpdk0",
            "notify_stop /etc/keepalived/check_kp.sh",
        ] {
            assert!(
                imp.toml
                    .contains(&format!("# keepalived (no equivalent): {needle}")),
                "{needle}\n{}",
                imp.toml
            );
            assert!(imp.warnings.iter().any(|w| w.message.contains(needle)));
        }
    }

    #[test]
    fn seed_001_lvs_nat() {
        let imp = import_file(&seed("seed-001.conf")).expect("import");
        let c = Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
        assert_eq!(c.service.len(), 1);
        let s = &c.service[0];
        assert_eq!(
            (s.vip.to_string(), s.port, s.forward),
            ("10.10.0.20".to_string(), 80, Forward::Nat)
        );
        let ports: Vec<u16> = s.real_server.iter().map(|r| s.real_port(r)).collect();
        assert_eq!(ports, [8081, 8082, 8083]);
        assert_eq!(s.check.as_ref().expect("check").retries, 3);
        // Both VRRP instances convert with nothing left over.
        let ids: Vec<(&str, &str, u32, u32)> = c
            .vrrp
            .instance
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.interface.as_str(),
                    i.virtual_router_id,
                    i.priority,
                )
            })
            .collect();
        assert_eq!(
            ids,
            [("VI_1", "ens33", 51, 100), ("VI_2", "ens36", 61, 100)]
        );
        assert_eq!(
            c.vrrp.instance[0].state,
            crate::config::VrrpStateHint::Master
        );
        assert_eq!(
            c.vrrp.instance[1].virtual_ipaddress[0].address.to_string(),
            "192.168.211.20/32"
        );
        assert!(
            !imp.warnings.iter().any(|w| w.message.contains("vrrp")),
            "{:?}",
            imp.warnings
        );
    }

    #[test]
    fn seed_003_nat_with_sync_group() {
        let imp = import_file(&seed("seed-003.conf")).expect("import");
        let c = Config::parse(&imp.toml).unwrap_or_else(|e| panic!("{e}\n{}", imp.toml));
        assert_eq!(c.service.len(), 1);
        let s = &c.service[0];
        assert_eq!(s.vip.to_string(), "192.168.1.1");
        assert_eq!(
            s.persistence_timeout,
            Some(std::time::Duration::from_secs(7200))
        );
        let addrs: Vec<String> = s
            .real_server
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        assert_eq!(addrs, ["10.0.0.71", "10.0.0.72"]);
        assert_eq!(c.vrrp.sync_group.len(), 1);
        assert_eq!(c.vrrp.sync_group[0].name, "VRRP1");
        assert_eq!(c.vrrp.sync_group[0].group, ["external", "internal"]);
        let ext = &c.vrrp.instance[0];
        assert_eq!((ext.priority, ext.virtual_router_id), (200, 91));
        assert_eq!(
            ext.virtual_ipaddress[0].address.to_string(),
            "192.168.1.1/24"
        );
        assert!(imp
            .warnings
            .iter()
            .any(|w| w.message.contains("notification_email")));
    }
}
