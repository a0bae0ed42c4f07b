//! `fulcrum`: the command line of the Fulcrum appliance.
use clap::Parser;

fn main() -> std::process::ExitCode {
    appliance::cli::run(appliance::cli::Cli::parse())
}
