//! Golden tests of `fulcrum services` (`ipvsadm -Ln`, `--stats`, `--rate`) and `fulcrum
//! conns` (DPVS's `ipvsadm -Lnc`, with its local-address column).
//!
//! Fixed `ServicesView`/`ConnsView` values are rendered through the CLI's renderer and
//! compared byte for byte with `tests/golden/*.txt`. The golden files were produced by an
//! independent oracle — ipvsadm's printf formats (`"%-33s"` + `"%9llu"` counters with
//! K/M/G/T above 100 million, `"  -> %-28s %-7s %-6d %-10u %-10u"`, DPVS's
//! `"[%d]%-3s %-6s %-11s %-18s %-18s %-18s %s"`) applied to the same values with printf
//! semantics — with trailing blanks removed. The addresses and values are our own.
//! A second check reads the column positions from the title lines, so a golden file edited
//! by hand cannot drift from ipvsadm's layout either.

use appliance::cli::{large_number, render};
use appliance::control::Request;
use serde_json::{json, Value};

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn counters(v: [u64; 5]) -> Value {
    json!({"conns": v[0], "in_packets": v[1], "out_packets": v[2], "in_bytes": v[3], "out_bytes": v[4]})
}

fn rates(v: [u64; 5]) -> Value {
    json!({"cps": v[0], "in_pps": v[1], "out_pps": v[2], "in_bps": v[3], "out_bps": v[4]})
}

struct Rs {
    addr: &'static str,
    port: u16,
    forward: &'static str,
    weight: u32,
    active: u64,
    inactive: u64,
    stats: [u64; 5],
    rate: [u64; 5],
}

struct Svc {
    protocol: &'static str,
    vip: &'static str,
    port: u16,
    scheduler: &'static str,
    flags: &'static [&'static str],
    stats: [u64; 5],
    rate: [u64; 5],
    servers: Vec<Rs>,
}

fn fixture() -> Vec<Svc> {
    vec![
        Svc {
            protocol: "tcp",
            vip: "10.20.30.210",
            port: 80,
            scheduler: "rr",
            flags: &["synproxy"],
            stats: [
                5_000_321,
                60_123_456,
                58_000_012,
                4_321_098_765,
                98_765_432_109,
            ],
            rate: [25, 1200, 1180, 1_500_000, 123_456_789],
            servers: vec![
                Rs {
                    addr: "172.16.5.11",
                    port: 80,
                    forward: "FullNat",
                    weight: 100,
                    active: 12,
                    inactive: 3,
                    stats: [
                        2_500_160,
                        30_061_728,
                        29_000_006,
                        2_160_549_382,
                        49_382_716_054,
                    ],
                    rate: [13, 600, 590, 750_000, 61_728_394],
                },
                Rs {
                    addr: "172.16.5.12",
                    port: 8080,
                    forward: "FullNat",
                    weight: 50,
                    active: 0,
                    inactive: 0,
                    stats: [
                        2_500_161,
                        30_061_728,
                        29_000_006,
                        2_160_549_383,
                        49_382_716_055,
                    ],
                    rate: [12, 600, 590, 750_000, 61_728_395],
                },
            ],
        },
        Svc {
            protocol: "tcp",
            vip: "10.20.30.211",
            port: 443,
            scheduler: "wlc",
            flags: &["persistent 300", "mask 255.255.255.0"],
            stats: [123_456_789, 987_654_321, 0, 123_456_789_012_345, 0],
            rate: [0; 5],
            servers: vec![Rs {
                addr: "172.16.5.13",
                port: 443,
                forward: "Masq",
                weight: 1,
                active: 1024,
                inactive: 17,
                stats: [123_456_789, 987_654_321, 0, 123_456_789_012_345, 0],
                rate: [0; 5],
            }],
        },
        Svc {
            protocol: "udp",
            vip: "10.20.30.212",
            port: 53,
            scheduler: "sh",
            flags: &[],
            stats: [250, 250, 0, 17_500, 0],
            rate: [3, 3, 0, 210, 0],
            servers: vec![Rs {
                addr: "172.16.5.14",
                port: 53,
                forward: "Route",
                weight: 0,
                active: 0,
                inactive: 250,
                stats: [250, 250, 0, 17_500, 0],
                rate: [3, 3, 0, 210, 0],
            }],
        },
    ]
}

/// The `services` view as the daemon sends it (JSON), with counters or rates if asked.
fn services_view(stats: bool, rate: bool) -> Value {
    let services: Vec<Value> = fixture()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let servers: Vec<Value> = s
                .servers
                .iter()
                .map(|r| {
                    let mut v = json!({
                        "address": r.addr, "port": r.port, "forward": r.forward,
                        "weight": r.weight, "active_conns": r.active,
                        "inactive_conns": r.inactive,
                    });
                    if stats {
                        v["stats"] = counters(r.stats);
                    }
                    if rate {
                        v["rate"] = rates(r.rate);
                    }
                    v
                })
                .collect();
            let mut v = json!({
                "name": format!("svc{i}"), "protocol": s.protocol, "vip": s.vip,
                "port": s.port, "scheduler": s.scheduler, "flags": s.flags,
                "real_servers": servers,
            });
            if stats {
                v["stats"] = counters(s.stats);
            }
            if rate {
                v["rate"] = rates(s.rate);
            }
            v
        })
        .collect();
    json!({ "services": services })
}

fn conns_view() -> Value {
    let row = |worker: u32,
               protocol: &str,
               expires: u64,
               state: &str,
               client: &str,
               vaddr: &str,
               local: Option<&str>,
               rs: &str| {
        let mut v = json!({
            "protocol": protocol, "expires_seconds": expires, "state": state,
            "client": client, "virtual_address": vaddr, "real_server": rs, "worker": worker,
        });
        if let Some(l) = local {
            v["local"] = json!(l);
        }
        v
    };
    json!({ "conns": [
        row(0, "tcp", 890, "ESTABLISHED", "198.51.100.7:40312", "10.20.30.210:80",
            Some("10.20.30.188:1029"), "172.16.5.11:80"),
        row(1, "tcp", 7, "TIME_WAIT", "198.51.100.8:51234", "10.20.30.210:80",
            Some("10.20.30.189:1030"), "172.16.5.12:8080"),
        row(0, "tcp", 60, "SYN_RECV", "203.0.113.200:65535", "10.20.30.211:443",
            None, "172.16.5.13:443"),
        row(1, "udp", 299, "UDP", "198.51.100.9:5353", "10.20.30.212:53",
            None, "172.16.5.14:53"),
    ]})
}

fn assert_golden(name: &str, got: &str) {
    let want = golden(name);
    if got != want {
        panic!(
            "{name} differs from the golden file\n--- want\n{want}--- got\n{got}---\n{}",
            first_difference(&want, got)
        );
    }
}

fn first_difference(want: &str, got: &str) -> String {
    for (i, (w, g)) in want.lines().zip(got.lines()).enumerate() {
        if w != g {
            return format!("line {}:\n want {w:?}\n got  {g:?}", i + 1);
        }
    }
    format!(
        "{} lines wanted, {} rendered",
        want.lines().count(),
        got.lines().count()
    )
}

/// The right edges of the counter columns, read from the title line (each header right-
/// aligned in its column, as ipvsadm prints it).
fn right_edges(title: &str) -> Vec<usize> {
    let mut edges = Vec::new();
    let b = title.as_bytes();
    for i in 0..b.len() {
        if b[i] != b' ' && (i + 1 == b.len() || b[i + 1] == b' ') {
            edges.push(i + 1);
        }
    }
    // Skip "Prot" and "LocalAddress:Port".
    edges.split_off(2)
}

/// Every counter of every data line ends on a title column's right edge, and addresses
/// start where ipvsadm puts them.
fn assert_counter_columns(text: &str) {
    let mut lines = text.lines();
    let title = lines.next().expect("title");
    let edges = right_edges(title);
    assert_eq!(edges, vec![42, 51, 60, 69, 78], "title {title:?}");
    assert_eq!(lines.next(), Some("  -> RemoteAddress:Port"));
    for l in lines {
        assert!(l.len() == 78, "line not 78 columns wide: {l:?}");
        if let Some(rest) = l.strip_prefix("  -> ") {
            assert!(!rest.starts_with(' '), "{l:?}");
        } else {
            assert!(l.starts_with("TCP  ") || l.starts_with("UDP  "), "{l:?}");
        }
        for e in &edges {
            let b = l.as_bytes();
            assert!(b[e - 1] != b' ', "no counter ends at column {e}: {l:?}");
            assert!(
                b[e - 9] == b' ',
                "counter wider than 8 at column {e}: {l:?}"
            );
        }
    }
}

#[test]
fn services_list_matches_the_ipvsadm_ln_layout() {
    let text = render(
        &Request::Services {
            stats: false,
            rate: false,
        },
        services_view(false, false),
    )
    .expect("render");
    assert_golden("services.txt", &text);
    // Forward, weight and connection columns start where the title's words start.
    let title = text.lines().nth(1).expect("title");
    let starts: Vec<usize> = ["Forward", "Weight", "ActiveConn", "InActConn"]
        .iter()
        .map(|w| title.find(w).expect("column"))
        .collect();
    assert_eq!(starts, vec![34, 42, 49, 60]);
    for l in text
        .lines()
        .filter(|l| l.starts_with("  -> ") && l != &title)
    {
        for s in &starts {
            let b = l.as_bytes();
            assert!(b[s - 1] == b' ' && b[*s] != b' ', "column at {s}: {l:?}");
        }
    }
}

#[test]
fn services_stats_match_the_ipvsadm_stats_layout() {
    let text = render(
        &Request::Services {
            stats: true,
            rate: false,
        },
        services_view(true, false),
    )
    .expect("render");
    assert_golden("services_stats.txt", &text);
    assert_counter_columns(&text);
}

#[test]
fn services_rate_match_the_ipvsadm_rate_layout() {
    let text = render(
        &Request::Services {
            stats: false,
            rate: true,
        },
        services_view(false, true),
    )
    .expect("render");
    assert_golden("services_rate.txt", &text);
    assert_counter_columns(&text);
}

#[test]
fn conns_match_the_dpvs_lnc_layout_with_local_addresses() {
    let text = render(&Request::Conns, conns_view()).expect("render");
    assert_golden("conns.txt", &text);
    // DPVS's columns: `[worker]proto`, expire, state, then 19-column address fields.
    let rows: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        let fields: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(fields.len(), 7, "{r:?}");
        assert!(
            fields[0].starts_with('[') && fields[0].contains(']'),
            "{r:?}"
        );
        assert!(fields[1].ends_with('s'), "{r:?}");
        assert_eq!(
            &r[7..8],
            fields[1].get(..1).unwrap_or(""),
            "expire at 7: {r:?}"
        );
        assert_eq!(
            &r[14..15],
            fields[2].get(..1).unwrap_or(""),
            "state at 14: {r:?}"
        );
        assert_eq!(
            &r[26..27],
            fields[3].get(..1).unwrap_or(""),
            "source at 26: {r:?}"
        );
    }
    // The local address column: present for FullNAT, `-` without one.
    assert!(rows[0].contains(" 10.20.30.188:1029 "), "{}", rows[0]);
    assert_eq!(rows[3].split_whitespace().nth(5), Some("-"));
}

#[test]
fn large_numbers_keep_the_column_width() {
    assert_eq!(large_number(0), "        0");
    assert_eq!(large_number(99_999_999), " 99999999");
    assert_eq!(large_number(100_000_000), "  100000K");
    assert_eq!(large_number(999_999_999), "  999999K");
    assert_eq!(large_number(1_000_000_000), "    1000M");
    assert_eq!(large_number(999_999_999_999), "     999G");
    assert_eq!(large_number(99_999_999_999_999), "   99999G");
    assert_eq!(large_number(100_000_000_000_000), "     100T");
    assert_eq!(large_number(u64::MAX), "18446744T");
    for n in [0, 7, 99_999_999, 100_000_000, 5_000_000_000, u64::MAX] {
        assert_eq!(large_number(n).len(), 9, "{n}");
    }
}
