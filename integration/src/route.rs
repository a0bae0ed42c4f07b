//! Kernel routes as shown by `ip -j route`.

use serde_json::Value;

use crate::error::{LabError, Result};

/// One next hop of a kernel route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nexthop {
    /// The gateway address, absent for directly connected routes.
    pub gateway: Option<String>,
    /// The outgoing interface.
    pub dev: Option<String>,
    /// The ECMP weight (1 when `ip` does not print one).
    pub weight: u32,
}

/// A kernel route: destination, protocol and its next hops (one, or several for ECMP).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Destination in `a.b.c.d/len` form (`0.0.0.0/0` for `default`).
    pub dst: String,
    /// The `proto` field (`kernel`, `ospf`, `bird`, `static`, ...).
    pub protocol: Option<String>,
    /// Next hops; a multipath route has more than one.
    pub nexthops: Vec<Nexthop>,
}

impl Route {
    /// The gateways of the next hops that have one.
    pub fn gateways(&self) -> Vec<&str> {
        self.nexthops
            .iter()
            .filter_map(|n| n.gateway.as_deref())
            .collect()
    }
}

/// Normalises a prefix as `ip` prints it (`3.3.3.3`, `default`) to `a.b.c.d/len`.
pub fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim();
    if p == "default" {
        return "0.0.0.0/0".to_string();
    }
    if p.contains('/') {
        p.to_string()
    } else if p.contains(':') {
        format!("{p}/128")
    } else {
        format!("{p}/32")
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn nexthop(v: &Value) -> Nexthop {
    Nexthop {
        gateway: str_field(v, "gateway"),
        dev: str_field(v, "dev"),
        weight: v
            .get("weight")
            .and_then(Value::as_u64)
            .and_then(|w| u32::try_from(w).ok())
            .unwrap_or(1),
    }
}

/// Parses the JSON array printed by `ip -j route`.
pub fn parse_routes(json: &Value) -> Result<Vec<Route>> {
    let list = json.as_array().ok_or_else(|| LabError::Parse {
        what: "ip -j route".into(),
        detail: format!("expected a JSON array, got {json}"),
    })?;
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let dst = str_field(entry, "dst").ok_or_else(|| LabError::Parse {
            what: "ip -j route".into(),
            detail: format!("route without dst: {entry}"),
        })?;
        let nexthops = match entry.get("nexthops").and_then(Value::as_array) {
            Some(list) => list.iter().map(nexthop).collect(),
            None => vec![nexthop(entry)],
        };
        out.push(Route {
            dst: normalize_prefix(&dst),
            protocol: str_field(entry, "protocol"),
            nexthops,
        });
    }
    Ok(out)
}

/// Parses the text printed by `ip -j route` (empty output is an empty table).
pub fn parse_routes_text(text: &str) -> Result<Vec<Route>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_str(text).map_err(|e| LabError::Parse {
        what: "ip -j route".into(),
        detail: e.to_string(),
    })?;
    parse_routes(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `ip -n R -j route` with FRR on this machine (iproute2 6.1).
    const SAMPLE: &str = r#"[{"dst":"3.3.3.3","nhid":10,"gateway":"10.0.1.2","dev":"eth1","protocol":"ospf","metric":20,"flags":[]},{"dst":"10.0.0.0/30","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"10.0.0.1","flags":[]},{"dst":"10.0.2.0/30","nhid":16,"protocol":"ospf","metric":20,"flags":[],"nexthops":[{"gateway":"10.0.1.2","dev":"eth1","weight":1,"flags":[]},{"gateway":"10.0.0.2","dev":"eth0","weight":1,"flags":[]}]},{"dst":"default","gateway":"10.0.0.2","dev":"eth0","flags":[]}]"#;

    #[test]
    fn parses_single_multi_and_connected() {
        let routes = parse_routes_text(SAMPLE).expect("parses");
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[0].dst, "3.3.3.3/32");
        assert_eq!(routes[0].protocol.as_deref(), Some("ospf"));
        assert_eq!(routes[0].gateways(), vec!["10.0.1.2"]);
        assert_eq!(routes[1].dst, "10.0.0.0/30");
        assert_eq!(routes[1].nexthops[0].gateway, None);
        assert_eq!(routes[1].nexthops[0].dev.as_deref(), Some("eth0"));
        assert_eq!(routes[2].nexthops.len(), 2);
        assert_eq!(routes[2].gateways(), vec!["10.0.1.2", "10.0.0.2"]);
        assert_eq!(routes[3].dst, "0.0.0.0/0");
        assert_eq!(routes[3].protocol, None);
    }

    #[test]
    fn empty_and_malformed() {
        assert!(parse_routes_text("").expect("empty").is_empty());
        assert!(parse_routes_text("[]").expect("empty array").is_empty());
        assert!(parse_routes_text("{\"dst\":1}").is_err());
        assert!(parse_routes_text("[{\"gateway\":\"1.2.3.4\"}]").is_err());
        assert!(parse_routes_text("not json").is_err());
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize_prefix("default"), "0.0.0.0/0");
        assert_eq!(normalize_prefix("1.2.3.4"), "1.2.3.4/32");
        assert_eq!(normalize_prefix("10.0.0.0/8"), "10.0.0.0/8");
    }
}
