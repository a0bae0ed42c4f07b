//! The `fulcrum` command line: argument parsing (clap), requests to the daemon, and the
//! tables rendered client-side from the daemon's JSON views.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::DEFAULT_CONTROL_SOCKET;
use crate::control::VrrpView;
use crate::control::{
    BfdPeersView, Client, ConnsView, HealthView, OspfDatabaseView, OspfInterfacesView,
    OspfNeighborsView, ReloadView, Request, RoutesView, ServicesView, StatusView, VipsView,
};

/// `fulcrum`: query and control a running fulcrumd.
#[derive(Debug, Parser)]
#[command(
    name = "fulcrum",
    version,
    about = "Query and control fulcrumd, the Fulcrum load-balancer daemon"
)]
pub struct Cli {
    /// Control socket of the daemon.
    #[arg(long, global = true, env = "FULCRUM_SOCKET", default_value = DEFAULT_CONTROL_SOCKET)]
    pub socket: PathBuf,
    /// Print the daemon's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Daemon status: version, uptime, configuration generation, subsystems.
    Status,
    /// Virtual services and real servers (like `ipvsadm -Ln`).
    Services {
        /// Show cumulative counters.
        #[arg(long, conflicts_with = "rate")]
        stats: bool,
        /// Show rates.
        #[arg(long)]
        rate: bool,
    },
    /// Connection table (like `ipvsadm -Lnc`).
    Conns,
    /// Health-check state of the real servers.
    Health,
    /// VIPs: announced or withdrawn, and why; drain or undrain one.
    Vips {
        /// Drain or undrain.
        #[command(subcommand)]
        action: Option<VipAction>,
    },
    /// The routing information base.
    Routes,
    /// OSPF state.
    Ospf {
        /// What to show.
        #[command(subcommand)]
        what: OspfWhat,
    },
    /// BFD state.
    Bfd {
        /// What to show.
        #[command(subcommand)]
        what: BfdWhat,
    },
    /// VRRP instances: state, priority, master, VIPs (like keepalived's `show vrrp`).
    Vrrp,
    /// Re-read the configuration file (like SIGHUP); a bad file is refused with the reason.
    Reload,
    /// Print the fulcrum configuration equivalent to a keepalived.conf (warnings on stderr).
    ImportKeepalived {
        /// The keepalived.conf.
        file: PathBuf,
    },
    /// Run an ipvsadm command line against the daemon (list commands become `services`/`conns`).
    Ipvsadm {
        /// ipvsadm arguments, e.g. `-Ln` or `-A -t 10.0.0.1:80 -s rr`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    Man,
}

/// `fulcrum vips` actions.
#[derive(Debug, Subcommand)]
pub enum VipAction {
    /// Withdraw a VIP administratively (connections drain to the other nodes).
    Drain {
        /// The VIP.
        vip: IpAddr,
    },
    /// Undo a drain.
    Undrain {
        /// The VIP.
        vip: IpAddr,
    },
}

/// `fulcrum ospf` views.
#[derive(Debug, Subcommand)]
pub enum OspfWhat {
    /// Neighbors (like FRR's `show ip ospf neighbor`).
    Neighbors,
    /// Interfaces.
    Interfaces,
    /// Link-state database.
    Database,
}

/// `fulcrum bfd` views.
#[derive(Debug, Subcommand)]
pub enum BfdWhat {
    /// BFD sessions.
    Peers,
}

/// ipvsadm's long options and whether each takes a value.
const IPVSADM_LONG: &[(&str, bool)] = &[
    ("--add-service", false),
    ("--edit-service", false),
    ("--delete-service", false),
    ("--clear", false),
    ("--restore", false),
    ("--save", false),
    ("--add-server", false),
    ("--edit-server", false),
    ("--delete-server", false),
    ("--list", false),
    ("--zero", false),
    ("--set", false),
    ("--start-daemon", true),
    ("--stop-daemon", true),
    ("--help", false),
    ("--tcp-service", true),
    ("--udp-service", true),
    ("--sctp-service", true),
    ("--fwmark-service", true),
    ("--scheduler", true),
    ("--persistent", false),
    ("--netmask", true),
    ("--real-server", true),
    ("--gatewaying", false),
    ("--ipip", false),
    ("--masquerading", false),
    ("--fullnat", false),
    ("--weight", true),
    ("--u-threshold", true),
    ("--l-threshold", true),
    ("--mcast-interface", true),
    ("--syncid", true),
    ("--connection", false),
    ("--timeout", false),
    ("--daemon", false),
    ("--stats", false),
    ("--rate", false),
    ("--thresholds", false),
    ("--persistent-conn", false),
    ("--nosort", false),
    ("--sort", false),
    ("--numeric", false),
    ("--exact", false),
    ("--ipv6", false),
    ("--ops", false),
    ("--pe", true),
    ("--sched-flags", true),
];

/// ipvsadm's short options: flags (`-p` takes an optional value, read as a positional),
/// and those taking a value.
const IPVSADM_SHORT_FLAGS: &str = "AEDCRSaedLlZhgimcnX6opb";
const IPVSADM_SHORT_VALUE: &str = "tufsMrwxy";

/// The request for an `ipvsadm` command line: listing commands map to the `services` and
/// `conns` views, other valid command lines go to the daemon as they are. Options ipvsadm
/// does not have are refused here.
pub fn ipvsadm_request(args: &[String]) -> Result<Request, String> {
    let mut list = false;
    let mut conns = false;
    let mut stats = false;
    let mut rate = false;
    let mut other = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (format!("--{n}"), true),
                None => (a.clone(), false),
            };
            let Some(&(_, takes)) = IPVSADM_LONG.iter().find(|(n, _)| *n == name) else {
                return Err(format!("ipvsadm has no option {name}"));
            };
            match name.as_str() {
                "--list" => list = true,
                "--connection" => conns = true,
                "--stats" => stats = true,
                "--rate" => rate = true,
                "--numeric" => {}
                _ => other = true,
            }
            if takes && !inline {
                i += 1;
            }
        } else if let Some(short) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (n, c) in short.chars().enumerate() {
                if IPVSADM_SHORT_VALUE.contains(c) {
                    other = true;
                    // The value is the rest of this word or the next argument.
                    if n + 1 == short.chars().count() {
                        i += 1;
                    }
                    break;
                }
                match c {
                    'L' | 'l' => list = true,
                    'c' => conns = true,
                    'n' => {}
                    c if IPVSADM_SHORT_FLAGS.contains(c) => other = true,
                    c => return Err(format!("ipvsadm has no option -{c}")),
                }
            }
        } else {
            // A value of --set (three timeouts) or --restore input.
            other = true;
        }
    }
    Ok(match (list && !other, conns) {
        (true, true) => Request::Conns,
        (true, false) => Request::Services { stats, rate },
        _ => Request::Ipvsadm {
            args: args.to_vec(),
        },
    })
}

/// Runs the CLI; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let request = match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "fulcrum", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let man = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            if let Err(e) = man.render(&mut out) {
                eprintln!("fulcrum: {e}");
                return ExitCode::FAILURE;
            }
            let _ = std::io::stdout().write_all(&out);
            return ExitCode::SUCCESS;
        }
        Command::ImportKeepalived { file } => {
            return match crate::keepalived::import_file(file) {
                Ok(imp) => {
                    for w in &imp.warnings {
                        eprintln!("warning: {w}");
                    }
                    print!("{}", imp.toml);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("fulcrum: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Status => Request::Status,
        Command::Services { stats, rate } => Request::Services {
            stats: *stats,
            rate: *rate,
        },
        Command::Conns => Request::Conns,
        Command::Health => Request::Health,
        Command::Vips { action: None } => Request::Vips,
        Command::Vips {
            action: Some(VipAction::Drain { vip }),
        } => Request::VipDrain { vip: *vip },
        Command::Vips {
            action: Some(VipAction::Undrain { vip }),
        } => Request::VipUndrain { vip: *vip },
        Command::Routes => Request::Routes,
        Command::Ospf { what } => match what {
            OspfWhat::Neighbors => Request::OspfNeighbors,
            OspfWhat::Interfaces => Request::OspfInterfaces,
            OspfWhat::Database => Request::OspfDatabase,
        },
        Command::Bfd {
            what: BfdWhat::Peers,
        } => Request::BfdPeers,
        Command::Vrrp => Request::Vrrp,
        Command::Reload => Request::Reload,
        Command::Ipvsadm { args } => match ipvsadm_request(args) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("fulcrum ipvsadm: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fulcrum: {e}");
            return ExitCode::FAILURE;
        }
    };
    let answer = runtime.block_on(async {
        let mut client = Client::connect(&cli.socket).await?;
        client.call(request.clone()).await
    });
    match answer {
        Ok(value) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string())
                );
                return ExitCode::SUCCESS;
            }
            match render(&request, value) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("fulcrum: cannot render the daemon's answer: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("fulcrum: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Renders a view as the table for its request.
pub fn render(request: &Request, value: serde_json::Value) -> Result<String, serde_json::Error> {
    Ok(match request {
        Request::Status => render_status(&serde_json::from_value(value)?),
        Request::Services { .. } => render_services(&serde_json::from_value(value)?),
        Request::Conns => render_conns(&serde_json::from_value(value)?),
        Request::Health => render_health(&serde_json::from_value(value)?),
        Request::Vips | Request::VipDrain { .. } | Request::VipUndrain { .. } => {
            render_vips(&serde_json::from_value(value)?)
        }
        Request::Routes => render_routes(&serde_json::from_value(value)?),
        Request::OspfNeighbors => render_ospf_neighbors(&serde_json::from_value(value)?),
        Request::OspfInterfaces => render_ospf_interfaces(&serde_json::from_value(value)?),
        Request::OspfDatabase => render_ospf_database(&serde_json::from_value(value)?),
        Request::BfdPeers => render_bfd(&serde_json::from_value(value)?),
        Request::Vrrp => render_vrrp(&serde_json::from_value(value)?),
        Request::Reload => {
            let v: ReloadView = serde_json::from_value(value)?;
            format!("{}\n", v.message)
        }
        Request::Ipvsadm { .. } => match value.as_str() {
            Some(s) => format!("{s}\n"),
            None => format!("{value}\n"),
        },
    })
}

/// Left-aligned columns separated by two spaces; numeric columns (`>` prefix) right-aligned.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|h| h.trim_start_matches('>').chars().count())
        .collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            let right = headers.get(i).is_some_and(|h| h.starts_with('>'));
            let cell = cell.trim_start_matches('>');
            if right {
                s.push_str(&format!("{cell:>w$}"));
            } else if i + 1 == n {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}"));
            }
            if i + 1 < n {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn hostport(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h{m:02}m")
    } else if h > 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{m}m{s:02}s")
    }
}

fn render_status(v: &StatusView) -> String {
    let mut s = format!(
        "fulcrumd {} (pid {}), up {}\nconfiguration: {} (generation {})\nsubsystems: {}\n",
        v.version,
        v.pid,
        duration_text(v.uptime_seconds),
        v.config_path,
        v.config_generation,
        if v.subsystems.is_empty() {
            "none".to_string()
        } else {
            v.subsystems.join(", ")
        }
    );
    if let Some(r) = &v.last_reload {
        s.push_str(&format!(
            "last reload: {}: {}\n",
            if r.applied { "applied" } else { "refused" },
            r.message
        ));
    }
    s
}

/// A counter as ipvsadm prints it in `--stats` and `--rate` columns: right-aligned in 9
/// characters, from 100 million on in thousands (`K`), millions (`M`), billions (`G`) or
/// trillions (`T`) so that the column keeps its width.
pub fn large_number(n: u64) -> String {
    const UNITS: [(u64, u64, char); 4] = [
        (1_000_000_000, 1_000, 'K'),
        (100_000_000_000, 1_000_000, 'M'),
        (100_000_000_000_000, 1_000_000_000, 'G'),
        (u64::MAX, 1_000_000_000_000, 'T'),
    ];
    if n < 100_000_000 {
        return format!("{n:>9}");
    }
    let (_, div, unit) = UNITS
        .iter()
        .copied()
        .find(|(below, _, _)| n < *below)
        .unwrap_or(UNITS[3]);
    format!("{:>8}{unit}", n / div)
}

/// The `ipvsadm -Ln` layout (with `--stats` or `--rate` columns when present): the title
/// lines, then each service (`TCP  VIP:PORT` in 33 columns before the counters) and its
/// real servers (`  -> ADDR:PORT` in 28 columns). Trailing blanks are not printed.
pub fn render_services(v: &ServicesView) -> String {
    let stats = v.services.iter().any(|s| s.stats.is_some());
    let rate = v.services.iter().any(|s| s.rate.is_some());
    let mut out = String::new();
    if stats {
        out.push_str(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else if rate {
        out.push_str(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
    let large5 = |a: u64, b: u64, c: u64, d: u64, e: u64| {
        [a, b, c, d, e]
            .into_iter()
            .map(large_number)
            .collect::<String>()
    };
    let mut line = |l: String| {
        out.push_str(l.trim_end());
        out.push('\n');
    };
    for s in &v.services {
        let svc = format!("{}  {}", s.protocol.to_uppercase(), hostport(s.vip, s.port));
        if let Some(c) = s.stats.filter(|_| stats) {
            line(format!(
                "{svc:<33}{}",
                large5(
                    c.conns,
                    c.in_packets,
                    c.out_packets,
                    c.in_bytes,
                    c.out_bytes
                )
            ));
        } else if let Some(r) = s.rate.filter(|_| rate) {
            line(format!(
                "{svc:<33}{}",
                large5(r.cps, r.in_pps, r.out_pps, r.in_bps, r.out_bps)
            ));
        } else if stats || rate {
            line(svc);
        } else {
            let mut l = format!("{svc} {}", s.scheduler);
            for f in &s.flags {
                l.push(' ');
                l.push_str(f);
            }
            line(l);
        }
        for r in &s.real_servers {
            let rs = hostport(r.address, r.port);
            if let Some(c) = r.stats.filter(|_| stats) {
                line(format!(
                    "  -> {rs:<28}{}",
                    large5(
                        c.conns,
                        c.in_packets,
                        c.out_packets,
                        c.in_bytes,
                        c.out_bytes
                    )
                ));
            } else if let Some(c) = r.rate.filter(|_| rate) {
                line(format!(
                    "  -> {rs:<28} {:>8} {:>8} {:>8}{}{}",
                    c.cps,
                    c.in_pps,
                    c.out_pps,
                    large_number(c.in_bps),
                    large_number(c.out_bps)
                ));
            } else if stats || rate {
                line(format!("  -> {rs}"));
            } else {
                line(format!(
                    "  -> {rs:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.forward, r.weight, r.active_conns, r.inactive_conns
                ));
            }
        }
    }
    out
}

/// The `ipvsadm -Lnc` layout of DPVS, with its local-address column: a title, then per
/// connection `[worker]proto expire state source virtual local destination` (`-` as the
/// local address of a connection without one, NAT/DR/TUN).
pub fn render_conns(v: &ConnsView) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let row = |pro: &str, expire: &str, state: &str, cells: [&str; 4]| {
        let l = format!(
            "{pro:<6} {expire:<6} {state:<11} {:<18} {:<18} {:<18} {}",
            cells[0], cells[1], cells[2], cells[3]
        );
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&row(
        "pro",
        "expire",
        "state",
        ["source", "virtual", "local", "destination"],
    ));
    for c in &v.conns {
        out.push_str(&row(
            &format!("[{}]{}", c.worker, c.protocol),
            &format!("{}s", c.expires_seconds),
            &c.state,
            [
                &c.client,
                &c.virtual_address,
                c.local.as_deref().unwrap_or("-"),
                &c.real_server,
            ],
        ));
    }
    if v.truncated {
        out.push_str(&format!(
            "({} of {} connections shown: dataplane.conns_limit)\n",
            v.conns.len(),
            v.total
        ));
    }
    out
}

fn render_health(v: &HealthView) -> String {
    let rows: Vec<Vec<String>> = v
        .checks
        .iter()
        .map(|c| {
            vec![
                c.service.clone(),
                c.real_server.clone(),
                c.check.clone(),
                c.state.clone(),
                duration_text(c.since_seconds),
                c.weight.to_string(),
                c.failures.to_string(),
                c.latency_ms
                    .map(|l| format!("{l:.1}ms"))
                    .unwrap_or_else(|| "-".into()),
                c.last_result.clone(),
            ]
        })
        .collect();
    table(
        &[
            "Service",
            "RealServer",
            "Check",
            "State",
            "Since",
            ">Weight",
            ">Failures",
            ">Latency",
            "LastResult",
        ],
        &rows,
    )
}

fn render_vips(v: &VipsView) -> String {
    let rows: Vec<Vec<String>> = v
        .vips
        .iter()
        .map(|r| {
            vec![
                r.vip.to_string(),
                r.method.clone(),
                if !r.state.is_empty() {
                    r.state.clone()
                } else if r.announced {
                    "announced".to_string()
                } else {
                    "withdrawn".to_string()
                },
                r.metric
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
                format!("{}/{}", r.services_up, r.services_total),
                if r.drained { "yes" } else { "no" }.to_string(),
                r.since_seconds
                    .map(duration_text)
                    .unwrap_or_else(|| "-".into()),
                r.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "VIP",
            "Method",
            "State",
            ">Metric",
            ">Services",
            "Drained",
            "Since",
            "Reason",
        ],
        &rows,
    )
}

fn render_routes(v: &RoutesView) -> String {
    let mut rows = Vec::new();
    for r in &v.routes {
        let flag = match (r.selected, r.installed) {
            (true, true) => "*>",
            (true, false) => "> ",
            _ => "  ",
        };
        for (i, nh) in r.nexthops.iter().enumerate() {
            let via = nh
                .via
                .map(|a| format!("via {a}"))
                .unwrap_or_else(|| "directly connected".into());
            rows.push(if i == 0 {
                vec![
                    flag.to_string(),
                    r.prefix.clone(),
                    r.protocol.clone(),
                    format!("[{}/{}]", r.distance, r.metric),
                    format!("{via}, {}", nh.interface),
                ]
            } else {
                vec![
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{via}, {}", nh.interface),
                ]
            });
        }
    }
    table(
        &["", "Prefix", "Protocol", "Dist/Metric", "Nexthops"],
        &rows,
    )
}

/// FRR's `show ip ospf neighbor` layout.
pub fn render_ospf_neighbors(v: &OspfNeighborsView) -> String {
    let mut out = String::from(
        "Neighbor ID     Pri State           Up Time         Dead Time Address         Interface                        RXmtL RqstL DBsmL\n",
    );
    for n in &v.neighbors {
        let state = if n.role.is_empty() {
            n.state.clone()
        } else {
            format!("{}/{}", n.state, n.role)
        };
        let dead = format!("{}.{:03}s", n.dead_ms / 1000, n.dead_ms % 1000);
        out.push_str(&format!(
            "{:<15} {:>3} {:<15} {:<15} {:>9} {:<15} {:<32} {:>5} {:>5} {:>5}\n",
            n.neighbor_id,
            n.priority,
            state,
            duration_text(n.up_seconds),
            dead,
            n.address,
            n.interface,
            n.retransmit_count,
            n.request_count,
            n.db_summary_count
        ));
    }
    out
}

fn render_ospf_interfaces(v: &OspfInterfacesView) -> String {
    let rows: Vec<Vec<String>> = v
        .interfaces
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.address.clone(),
                i.area.clone(),
                i.network.clone(),
                i.state.clone(),
                i.cost.to_string(),
                i.dr.clone(),
                i.bdr.clone(),
                format!("{}/{}", i.adjacencies, i.neighbors),
            ]
        })
        .collect();
    table(
        &[
            "Interface",
            "Address",
            "Area",
            "Network",
            "State",
            ">Cost",
            "DR",
            "BDR",
            ">Adj/Nbrs",
        ],
        &rows,
    )
}

fn render_ospf_database(v: &OspfDatabaseView) -> String {
    let rows: Vec<Vec<String>> = v
        .lsas
        .iter()
        .map(|l| {
            vec![
                l.area.clone(),
                l.lsa_type.clone(),
                l.link_state_id.clone(),
                l.advertising_router.clone(),
                l.age.to_string(),
                format!("0x{:08x}", l.sequence),
                format!("0x{:04x}", l.checksum),
                l.summary.clone(),
            ]
        })
        .collect();
    table(
        &[
            "Area",
            "Type",
            "Link ID",
            "ADV Router",
            ">Age",
            "Seq#",
            "CkSum",
            "Summary",
        ],
        &rows,
    )
}

fn render_bfd(v: &BfdPeersView) -> String {
    let rows: Vec<Vec<String>> = v
        .peers
        .iter()
        .map(|p| {
            vec![
                p.peer.to_string(),
                p.local.map(|l| l.to_string()).unwrap_or_default(),
                p.interface.clone(),
                p.state.clone(),
                p.local_discriminator.to_string(),
                p.remote_discriminator.to_string(),
                format!("{}/{}x{}", p.tx_ms, p.rx_ms, p.multiplier),
                p.uptime_seconds
                    .map(duration_text)
                    .unwrap_or_else(|| format!("-({})", duration_text(p.since_seconds))),
                p.diagnostic.clone(),
                p.client.clone(),
            ]
        })
        .collect();
    table(
        &[
            "Peer",
            "Local",
            "Interface",
            "State",
            "LocalID",
            "RemoteID",
            "Tx/Rx(ms)xMult",
            "Uptime",
            "Diag",
            "Client",
        ],
        &rows,
    )
}

fn render_vrrp(v: &VrrpView) -> String {
    let rows: Vec<Vec<String>> = v
        .instances
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.interface.clone(),
                i.vrid.to_string(),
                i.state.clone(),
                if i.effective_priority == i.priority {
                    i.priority.to_string()
                } else {
                    format!("{} ({})", i.effective_priority, i.priority)
                },
                i.master
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
                format!("{}ms", i.advert_int_ms),
                i.vips.join(","),
            ]
        })
        .collect();
    table(
        &[
            "Instance",
            "Interface",
            ">VRID",
            "State",
            "Priority",
            "Master",
            "Advert",
            "VIPs",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{OspfNeighborRow, RealServerRow, ServiceRow};

    #[test]
    fn vrrp_table() {
        let c = Cli::try_parse_from(["fulcrum", "vrrp", "--json"]).expect("parse");
        assert!(matches!(c.command, Command::Vrrp) && c.json);
        let row = |name: &str, state: &str, eff: u8| crate::control::VrrpRow {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            version: 2,
            state: state.into(),
            priority: 150,
            effective_priority: eff,
            master: Some("10.50.0.1".parse().expect("ip")),
            advert_int_ms: 1000,
            preempt: true,
            sync_group: None,
            vips: vec!["10.50.0.100/24".into(), "10.50.0.101/32".into()],
            transitions: 2,
            adverts_rx: 0,
            adverts_tx: 9,
        };
        let v = VrrpView {
            instances: vec![row("VI_1", "MASTER", 150), row("VI_2", "BACKUP", 130)],
        };
        let value = serde_json::to_value(&v).expect("json");
        let text = render(&Request::Vrrp, value).expect("render");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "Instance",
                "Interface",
                "VRID",
                "State",
                "Priority",
                "Master",
                "Advert",
                "VIPs"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "VI_1",
                "eth0",
                "51",
                "MASTER",
                "150",
                "10.50.0.1",
                "1000ms",
                "10.50.0.100/24,10.50.0.101/32"
            ]
        );
        assert!(lines[2].contains("130 (150)"), "{text}");
    }

    #[test]
    fn parses_commands() {
        let c = Cli::try_parse_from([
            "fulcrum",
            "--socket",
            "/tmp/x.sock",
            "services",
            "--stats",
            "--json",
        ])
        .expect("parse");
        assert_eq!(c.socket, PathBuf::from("/tmp/x.sock"));
        assert!(c.json);
        assert!(matches!(
            c.command,
            Command::Services {
                stats: true,
                rate: false
            }
        ));
        let c = Cli::try_parse_from(["fulcrum", "vips", "drain", "100.96.122.210"]).expect("parse");
        assert!(matches!(
            c.command,
            Command::Vips {
                action: Some(VipAction::Drain { .. })
            }
        ));
        let c = Cli::try_parse_from(["fulcrum", "ospf", "neighbors"]).expect("parse");
        assert!(matches!(
            c.command,
            Command::Ospf {
                what: OspfWhat::Neighbors
            }
        ));
        let c = Cli::try_parse_from(["fulcrum", "ipvsadm", "-A", "-t", "10.0.0.1:80", "-s", "rr"])
            .expect("parse");
        match c.command {
            Command::Ipvsadm { args } => assert_eq!(args, ["-A", "-t", "10.0.0.1:80", "-s", "rr"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["fulcrum", "vips", "drain", "not-an-ip"]).is_err());
        assert!(Cli::try_parse_from(["fulcrum", "services", "--stats", "--rate"]).is_err());
        Cli::command().debug_assert();
    }

    #[test]
    fn ipvsadm_mapping() {
        let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ipvsadm_request(&a(&["-Ln"])).expect("valid"),
            Request::Services {
                stats: false,
                rate: false
            }
        );
        assert_eq!(
            ipvsadm_request(&a(&["-L", "-n", "--stats"])).expect("valid"),
            Request::Services {
                stats: true,
                rate: false
            }
        );
        assert_eq!(
            ipvsadm_request(&a(&["-Lnc"])).expect("valid"),
            Request::Conns
        );
        assert_eq!(
            ipvsadm_request(&a(&["--list", "--numeric", "--rate"])).expect("valid"),
            Request::Services {
                stats: false,
                rate: true
            }
        );
        assert_eq!(
            ipvsadm_request(&a(&[
                "-a",
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.0.2:80",
                "-g",
                "-w",
                "3"
            ]))
            .expect("valid"),
            Request::Ipvsadm {
                args: a(&[
                    "-a",
                    "-t",
                    "10.0.0.1:80",
                    "-r",
                    "10.0.0.2:80",
                    "-g",
                    "-w",
                    "3"
                ])
            }
        );
        assert_eq!(
            ipvsadm_request(&a(&["--set", "900", "120", "300"])).expect("valid"),
            Request::Ipvsadm {
                args: a(&["--set", "900", "120", "300"])
            }
        );
        assert!(ipvsadm_request(&a(&["-Q"]))
            .expect_err("no -Q")
            .contains("-Q"));
        assert!(ipvsadm_request(&a(&["--frobnicate"])).is_err());
        assert_eq!(
            ipvsadm_request(&a(&["-A", "-t", "1.2.3.4:80"])).expect("valid"),
            Request::Ipvsadm {
                args: a(&["-A", "-t", "1.2.3.4:80"])
            }
        );
    }

    #[test]
    fn ipvsadm_fullnat_flag_takes_no_value() {
        let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // DPVS's -b (FullNAT) is a flag: the words after it stay options.
        let args = a(&["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-b", "-w", "3"]);
        assert_eq!(
            ipvsadm_request(&args).expect("valid"),
            Request::Ipvsadm { args: args.clone() }
        );
        let args = a(&["-e", "-t", "10.0.0.1:80", "-r", "10.0.0.2:80", "--fullnat"]);
        assert_eq!(
            ipvsadm_request(&args).expect("valid"),
            Request::Ipvsadm { args: args.clone() }
        );
    }

    #[test]
    fn conns_table_has_the_local_address_column() {
        let v = ConnsView {
            conns: vec![
                crate::control::ConnRow {
                    protocol: "tcp".into(),
                    expires_seconds: 895,
                    state: "ESTABLISHED".into(),
                    client: "10.0.0.2:40000".into(),
                    virtual_address: "10.0.0.100:80".into(),
                    local: Some("192.168.7.188:1029".into()),
                    real_server: "192.168.7.27:80".into(),
                    worker: 1,
                },
                crate::control::ConnRow {
                    protocol: "tcp".into(),
                    expires_seconds: 3,
                    state: "SYN_RECV".into(),
                    client: "10.0.0.2:40001".into(),
                    virtual_address: "10.0.0.100:81".into(),
                    local: None,
                    real_server: "192.168.7.28:80".into(),
                    worker: 0,
                },
            ],
            truncated: false,
            total: 2,
        };
        let t = render_conns(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "IPVS connection entries", "{t}");
        assert!(lines[1].contains("local"), "{t}");
        assert!(
            lines[2].contains("ESTABLISHED") && lines[2].contains("192.168.7.188:1029"),
            "{t}"
        );
        assert!(
            lines[2].starts_with("[1]tcp") && lines[2].contains("895s"),
            "{t}"
        );
        // NAT: no local address.
        assert!(lines[3].contains(" - "), "{t}");
        assert_eq!(lines.len(), 4);
        let cut = ConnsView {
            truncated: true,
            total: 9,
            ..v
        };
        assert!(render_conns(&cut).ends_with("(2 of 9 connections shown: dataplane.conns_limit)\n"));
    }

    #[test]
    fn services_table_like_ipvsadm() {
        let v = ServicesView {
            services: vec![ServiceRow {
                name: "web".into(),
                protocol: "tcp".into(),
                vip: "192.168.7.182".parse().expect("ip"),
                port: 80,
                scheduler: "rr".into(),
                flags: vec!["synproxy".into()],
                stats: None,
                rate: None,
                real_servers: vec![RealServerRow {
                    address: "192.168.7.27".parse().expect("ip"),
                    port: 80,
                    forward: "FullNat".into(),
                    weight: 100,
                    active_conns: 0,
                    inactive_conns: 7,
                    stats: None,
                    rate: None,
                }],
            }],
        };
        let t = render_services(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "Prot LocalAddress:Port Scheduler Flags");
        assert_eq!(lines[2], "TCP  192.168.7.182:80 rr synproxy");
        assert_eq!(
            lines[3],
            "  -> 192.168.7.27:80              FullNat 100    0          7"
        );
    }

    #[test]
    fn ospf_neighbor_table_like_frr() {
        let v = OspfNeighborsView {
            neighbors: vec![OspfNeighborRow {
                neighbor_id: "0.0.0.2".into(),
                priority: 1,
                state: "Full".into(),
                role: "DR".into(),
                up_seconds: 62,
                dead_ms: 35_123,
                address: "10.20.30.1".into(),
                interface: "dpdk1:10.20.30.45".into(),
                retransmit_count: 0,
                request_count: 0,
                db_summary_count: 0,
            }],
        };
        let t = render_ospf_neighbors(&v);
        let row = t.lines().nth(1).expect("row");
        assert!(
            row.starts_with("0.0.0.2           1 Full/DR         1m02s"),
            "{row}"
        );
        assert!(row.contains(" 35.123s 10.20.30.1 "), "{row}");
    }

    #[test]
    fn bfd_peer_table() {
        let row = |state: &str, uptime: Option<u64>| crate::control::BfdPeerRow {
            peer: "10.0.1.1".parse().expect("ip"),
            interface: "eth0".into(),
            state: state.into(),
            tx_ms: 100,
            rx_ms: 100,
            multiplier: 3,
            since_seconds: 5,
            local: Some("10.0.1.2".parse().expect("ip")),
            local_discriminator: 11,
            remote_discriminator: 22,
            remote_state: "Up".into(),
            remote_multiplier: 3,
            detection_ms: 300,
            diagnostic: "ok".into(),
            remote_diagnostic: "ok".into(),
            uptime_seconds: uptime,
            authentication: None,
            client: "ospf".into(),
            packets_received: 1,
            packets_sent: 1,
            packets_dropped: 0,
        };
        let t = render_bfd(&BfdPeersView {
            peers: vec![row("Up", Some(62)), row("Down", None)],
        });
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("Peer      Local     Interface  State"),
            "{t}"
        );
        let up: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            up,
            [
                "10.0.1.1",
                "10.0.1.2",
                "eth0",
                "Up",
                "11",
                "22",
                "100/100x3",
                "1m02s",
                "ok",
                "ospf"
            ]
        );
        assert!(lines[2].contains(" -(0m05s) "), "{t}");
        // Rows from an older daemon (no new fields) still decode.
        let old: BfdPeersView = serde_json::from_str(
            r#"{"peers":[{"peer":"10.0.1.1","interface":"eth0","state":"Up","tx_ms":300,"rx_ms":300,"multiplier":3,"since_seconds":1}]}"#,
        )
        .expect("old rows");
        assert_eq!(old.peers[0].client, "");
    }

    #[test]
    fn generic_table() {
        let t = table(
            &["A", ">N", "C"],
            &[vec!["x".into(), "5".into(), "end".into()]],
        );
        assert_eq!(t, "A  N  C\nx  5  end\n");
    }
}
