//! `fulcrum-lab up|status|down SCENARIO [--name NAME]`: brings a demo topology up in
//! network namespaces (`flab-NAME-*`, NAME defaulting to the scenario's name), shows its
//! routing state, and removes it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use integration::scenario::{self, Scenario, SCENARIOS};
use integration::Lab;

const USAGE: &str = "usage: fulcrum-lab up|status|down SCENARIO [--name NAME]   (scenarios: two)";

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    match scenario::by_name(name) {
        Some(s) => Ok(s),
        None => bail!("unknown scenario {name:?}; known: {}", SCENARIOS.join(", ")),
    }
}

fn up(sc: &Scenario, name: &str) -> anyhow::Result<()> {
    let lab = Lab::detached(name)?;
    println!("building {}: {}", lab.prefix(), sc.description);
    let running = scenario::build(&lab, sc).context("building the topology")?;
    println!(
        "started {} namespaces, {} FRR and {} nginx instances; waiting for OSPF ...",
        running.nodes.len() + running.switches.len(),
        running.frr.len(),
        running.nginx.len()
    );
    scenario::wait_converged(&lab, sc, Duration::from_secs(60)).context("convergence")?;
    // Only now does the lab outlive this process; any error above removed it.
    lab.keep();
    print!("{}", scenario::status(&lab, sc));
    println!(
        "\nthe lab is up (run dir {}). Try:",
        lab.run_dir().display()
    );
    for h in scenario::hints(&lab, sc) {
        println!("  {h}");
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [cmd, sc] => Some((cmd, sc, sc)),
        [cmd, sc, flag, name] if flag == "--name" => Some((cmd, sc, name)),
        _ => None,
    };
    let Some((cmd, sc_name, lab_name)) = parsed else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = scenario(sc_name).and_then(|sc| match cmd.as_str() {
        "up" => up(&sc, lab_name),
        "status" => status(&sc, lab_name),
        "down" => down(lab_name),
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
