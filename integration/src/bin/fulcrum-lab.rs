//! `fulcrum-lab up|status|down SCENARIO [--lb fulcrum|nft|haproxy|haproxy-pp] [--name NAME]
//! [--bfd]`:
//! brings a demo topology up in network namespaces (`flab-NAME-*`, NAME defaulting to the
//! scenario's name) with fulcrumd (`dpdk` mode, `--lb fulcrum`, what `scripts/demo.sh`
//! runs) or a reference load balancer (nftables DNAT by default) in its balancer nodes,
//! shows its routing and balancer state (fulcrumd's own views next to the router's
//! routes), and removes it. fulcrumd and fulcrum are taken
//! from the directory of this binary (`cargo build -p appliance`) or `$FULCRUMD` and
//! `$FULCRUM`. `--bfd` runs BFD at the seed's 50 ms × 3 on every OSPF adjacency
//! ([`scenario::with_bfd`]: the router's bfdd and fulcrumd's `[bfd]`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use integration::lb::{self, LbKind};
use integration::scenario::{self, Delivery, Scenario, SCENARIOS};
use integration::Lab;

const USAGE: &str = "usage: fulcrum-lab up|status|down SCENARIO \
                     [--lb fulcrum|nft|haproxy|haproxy-pp] [--name NAME] [--bfd]   \
                     (scenarios: one, two, nat, dr; default balancer: nft)";

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    match scenario::by_name(name) {
        Some(s) => Ok(s),
        None => bail!("unknown scenario {name:?}; known: {}", SCENARIOS.join(", ")),
    }
}

fn up(sc: &Scenario, name: &str, kind: LbKind) -> anyhow::Result<()> {
    // A balancer that cannot serve this scenario: fail before building anything, except
    // for DR with a stand-in, where the topology alone is still worth having.
    let start_lb = match lb::check_supported(kind, &sc.service) {
        Ok(()) => true,
        Err(_) if sc.service.delivery == Delivery::Dr && kind != LbKind::Fulcrum => false,
        Err(e) => return Err(e.into()),
    };
    let lab = Lab::detached(name)?;
    println!("building {}: {}", lab.prefix(), sc.description);
    let running = scenario::build_for(&lab, sc, kind).context("building the topology")?;
    let fulcrum = kind == LbKind::Fulcrum;
    println!(
        "started {} namespaces, {} FRR and {} nginx instances",
        running.nodes.len() + running.switches.len(),
        running.frr.len(),
        running.nginx.len(),
    );
    let balancers = sc
        .service
        .balancers
        .iter()
        .map(|b| b.node.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut started = None;
    if fulcrum {
        // fulcrumd is the OSPF speaker of its nodes: start it before waiting for routes.
        println!("starting fulcrumd (dpdk mode) on {balancers} ...");
        started = Some(lb::start(&lab, sc, kind).context("starting fulcrumd")?);
    }
    if !sc.expect.is_empty() {
        println!("waiting for OSPF ...");
    }
    scenario::wait_converged(&lab, sc, Duration::from_secs(60)).context("convergence")?;
    if start_lb && !fulcrum {
        started = Some(lb::start(&lab, sc, kind).context("starting the load balancer")?);
    }
    if start_lb {
        println!(
            "{} balancing {}:{} on {balancers}",
            kind.name(),
            sc.service.vip,
            sc.service.port,
        );
    } else {
        println!(
            "no balancer started: direct routing needs fulcrum (the stand-ins cannot do DR); \
             the topology is up"
        );
    }
    if let Some(s) = started.as_mut() {
        s.detach();
    }
    // Only now does the lab outlive this process; any error above removed it.
    lab.keep();
    print!("{}", scenario::status(&lab, sc));
    println!(
        "\nthe lab is up (run dir {}). Try:",
        lab.run_dir().display()
    );
    // The CLI by its path: it need not be on PATH.
    let cli = lb::FulcrumBins::find()
        .map(|b| b.fulcrum.display().to_string())
        .unwrap_or_else(|_| "fulcrum".into());
    for h in scenario::hints_for(&lab, sc, kind) {
        let h = match h.strip_prefix("fulcrum ") {
            Some(rest) => format!("{cli} {rest}"),
            None => h,
        };
        println!("  {h}");
    }
    let client = lab.existing_node(&sc.service.client);
    if start_lb {
        println!(
            "  ip netns exec {} curl -s {}    # through the balancer",
            client.netns(),
            sc.service.url()
        );
        println!(
            "  for i in $(seq 10); do ip netns exec {} curl -s {}; done    # round robin",
            client.netns(),
            sc.service.url()
        );
        if matches!(kind, LbKind::Haproxy { .. }) {
            println!("  (the HAProxy stand-in: a proxy, servers see its source address)");
        }
        // BFD sessions (`--bfd`): the FRR routers' and fulcrumd's.
        for n in &sc.nodes {
            let bfd = n
                .roles
                .iter()
                .any(|r| matches!(r, scenario::Role::Frr(c) if c.uses_bfd()));
            if !bfd {
                continue;
            }
            let node = lab.existing_node(&n.name);
            if scenario::fulcrum_nodes(sc, kind).contains(&n.name) {
                println!(
                    "  {cli} --socket {}/control.sock bfd peers    # {}'s BFD sessions",
                    lb::fulcrum_dir(&node).display(),
                    n.name
                );
            } else {
                println!(
                    "  vtysh --vty_socket {}/frr/run -c 'show bfd peers brief'    # {}'s BFD \
                     sessions",
                    node.dir().display(),
                    n.name
                );
            }
        }
        if fulcrum {
            for b in &sc.service.balancers {
                let node = lab.existing_node(&b.node);
                let dir = lb::fulcrum_dir(&node);
                println!(
                    "  {cli} --socket {}/control.sock services --stats    # {} ({}, log {}/fulcrumd.log)",
                    dir.display(),
                    b.node,
                    node.netns(),
                    dir.display()
                );
            }
        }
    }
    let suffix = if name == sc.name {
        String::new()
    } else {
        format!(" --name {name}")
    };
    println!(
        "  fulcrum-lab status {0}{suffix}\n  fulcrum-lab down {0}{suffix}",
        sc.name
    );
    Ok(())
}

fn status(sc: &Scenario, name: &str) -> anyhow::Result<()> {
    let lab = Lab::reopen(name)?;
    print!("{}", scenario::status(&lab, sc));
    print!("{}", lb::status(&lab, sc));
    Ok(())
}

fn down(name: &str) -> anyhow::Result<()> {
    let was_up = Lab::detached_exists(name);
    Lab::destroy_detached(name)?;
    if Lab::detached_exists(name) {
        bail!("some of lab flab-{name} could not be removed");
    }
    if was_up {
        println!("removed lab flab-{name}");
    } else {
        println!("lab flab-{name} was not up");
    }
    Ok(())
}

struct Args {
    cmd: String,
    scenario: String,
    name: String,
    lb: LbKind,
    bfd: bool,
}

/// `CMD SCENARIO` then `--lb KIND`, `--name NAME` and `--bfd` in any order; `None` is a
/// usage error.
fn parse_args(args: &[String]) -> Option<Args> {
    let (cmd, sc, rest) = match args {
        [cmd, sc, rest @ ..] => (cmd, sc, rest),
        _ => return None,
    };
    let mut out = Args {
        cmd: cmd.clone(),
        scenario: sc.clone(),
        name: sc.clone(),
        lb: LbKind::NftDnat,
        bfd: false,
    };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        if flag == "--bfd" {
            out.bfd = true;
            continue;
        }
        let value = it.next()?;
        match flag.as_str() {
            "--name" => out.name = value.clone(),
            "--lb" => out.lb = LbKind::parse(value)?,
            _ => return None,
        }
    }
    Some(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(a) = parse_args(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = scenario(&a.scenario)
        .map(|sc| {
            if a.bfd {
                let (tx, rx, mult) = scenario::SEED_BFD;
                scenario::with_bfd(sc, tx, rx, mult)
            } else {
                sc
            }
        })
        .and_then(|sc| match a.cmd.as_str() {
            "up" => up(&sc, &a.name, a.lb),
            "status" => status(&sc, &a.name),
            "down" => down(&a.name),
            other => bail!("unknown command {other:?}\n{USAGE}"),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags_in_any_order() {
        let a = parse_args(&args(&["up", "two", "--bfd", "--lb", "fulcrum"])).expect("args");
        assert_eq!((a.cmd.as_str(), a.scenario.as_str()), ("up", "two"));
        assert!(a.bfd);
        assert_eq!(a.lb, LbKind::Fulcrum);
        assert_eq!(a.name, "two");
        let a = parse_args(&args(&["up", "two", "--name", "demo"])).expect("args");
        assert!(!a.bfd);
        assert_eq!(a.name, "demo");
        assert!(parse_args(&args(&["up", "two", "--lb"])).is_none());
        assert!(parse_args(&args(&["up", "two", "--bogus", "x"])).is_none());
        assert!(parse_args(&args(&["up"])).is_none());
    }
}
