//! `fulcrumd`: the Fulcrum load-balancer daemon.
//!
//! `fulcrumd --config FILE --check` validates the configuration and exits; without
//! `--check` it runs the node (see `docs/operations.md`).

use std::path::PathBuf;
use std::process::ExitCode;

use appliance::config::{Config, DataplaneMode};
use appliance::daemon::Daemon;
use appliance::dataplane_driver::Dataplane;
use clap::Parser;

/// The Fulcrum load-balancer daemon.
#[derive(Debug, Parser)]
#[command(
    name = "fulcrumd",
    version,
    about = "The Fulcrum routing-aware L4 load-balancer daemon"
)]
struct Args {
    /// Configuration file.
    #[arg(long, short = 'c', default_value = "/etc/fulcrum/fulcrum.toml")]
    config: PathBuf,
    /// Validate the configuration and exit (0 when valid).
    #[arg(long)]
    check: bool,
}

fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    // Colours only for a person at a terminal: never in the journal, a file or a pipe.
    let ansi = !journal && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // Under systemd the journal stamps each line itself.
    if journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
}

/// Relays the learned routes until shutdown begins, then keeps the last ones.
fn freeze_on_shutdown(
    mut from: tokio::sync::watch::Receiver<appliance::routing::LearnedRoutes>,
    mut shutdown: appliance::daemon::Shutdown,
) -> tokio::sync::watch::Receiver<appliance::routing::LearnedRoutes> {
    let (tx, rx) = appliance::routing::learned_routes_channel();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                changed = from.changed() => {
                    // Checked after the change too: the routing task may publish the
                    // flush's empty table before this task sees the signal.
                    if changed.is_err() || shutdown.is_set() {
                        break;
                    }
                    let routes = from.borrow_and_update().clone();
                    tx.send_replace(routes);
                }
            }
        }
        // `tx` stays alive until the process exits: the dataplane keeps the last table.
        std::future::pending::<()>().await;
    });
    rx
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        println!("{}: configuration is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fulcrumd")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fulcrumd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // dpdk mode: EAL, the ports and their kernel twins come up first, so the routing and
    // health subsystems find the twins as ordinary kernel interfaces.
    let dataplane = if config.dataplane.mode == DataplaneMode::Dpdk {
        match Dataplane::start(&config) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("fulcrumd: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let result: Result<(), String> = runtime.block_on(async {
        let mut daemon = Daemon::new(args.config.clone(), config).map_err(|e| e.to_string())?;
        // Health decides which VIPs to announce; routing announces them over OSPF.
        let (vip_tx, vip_rx) = appliance::health_driver::vip_channel();
        let mut health = appliance::health_driver::HealthDriver::new(vip_tx);
        let mut routing = appliance::routing::Routing::with_health_vips(vip_rx);
        let mut vrrp = appliance::vrrp_driver::VrrpDriver::new();
        if let Some(dp) = dataplane {
            dp.setup_twins().await.map_err(|e| e.to_string())?;
            // Health verdicts also drive the real servers' availability and weights.
            let (tx, rx) = appliance::dataplane_driver::verdict_channel();
            health = health.with_verdicts(tx);
            // The OSPF routes the RIB selects also go into the dataplane's FIB, until
            // shutdown begins: flushing our own LSAs empties our SPF, and the dataplane
            // keeps the routes it had while it drains.
            let (routes_tx, routes_rx) = appliance::routing::learned_routes_channel();
            routing = routing.with_learned_routes(routes_tx);
            let routes_rx = freeze_on_shutdown(routes_rx, daemon.shutdown_signal());
            // VRRP's ownership of the virtual addresses: the dataplane answers ARP for
            // and takes new connections to a VIP only where VRRP is Master.
            let (own_tx, own_rx) = appliance::dataplane_driver::ownership_channel();
            vrrp = vrrp.with_ownership(own_tx);
            daemon.add_subsystem(Box::new(
                dp.with_verdicts(rx)
                    .with_learned_routes(routes_rx)
                    .with_vrrp(own_rx),
            ));
        }
        // BFD: sessions for OSPF neighbors on `bfd = true` interfaces and static peers;
        // a failed session kills the adjacency in the routing subsystem.
        let (routing_bfd, bfd_link) = appliance::bfd_driver::routing_link();
        routing = routing.with_bfd(routing_bfd);
        daemon.add_subsystem(Box::new(appliance::bfd_driver::BfdDriver::with_routing(
            bfd_link,
        )));
        daemon.add_subsystem(Box::new(health));
        daemon.add_subsystem(Box::new(routing));
        daemon.add_subsystem(Box::new(vrrp));
        tracing::info!(
            "fulcrumd {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            args.config.display()
        );
        daemon.run().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fulcrumd: {e}");
            ExitCode::FAILURE
        }
    }
}
