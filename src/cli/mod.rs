//! The `infralog` command line: `serve`, `radl`, and the offline tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod client_errors;
pub mod offline;
pub mod radl;
pub mod serve;
pub mod transfer;

/// infralog: an event-sourced infrastructure manager that speaks the IM REST API.
#[derive(Debug, Parser)]
#[command(name = "infralog", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the HTTP server.
    // Boxed: the server's flags outweigh every other command's.
    Serve(Box<serve::ServeArgs>),
    /// Check and format RADL documents.
    #[command(subcommand)]
    Radl(radl::RadlCommand),
    /// Print an infrastructure's history from a stopped server's data directory.
    Events(offline::EventsArgs),
    /// Print an infrastructure as it was at a version or time of its history.
    Replay(offline::ReplayArgs),
    /// Check every checksum and version of the log and fold it twice to compare.
    Verify(offline::VerifyArgs),
    /// Say what a damaged log lost; with --accept-loss, accept it and serve again.
    Repair(offline::RepairArgs),
    /// Export infrastructures with their whole history from a server into a file.
    Export(transfer::ExportArgs),
    /// Import the infrastructures of an `export` file into a server.
    Import(transfer::ImportArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Radl(command) => radl::run(command),
        Command::Events(args) => offline::run_events(args),
        Command::Replay(args) => offline::run_replay(args),
        Command::Verify(args) => offline::run_verify(args),
        Command::Repair(args) => offline::run_repair(args),
        Command::Export(args) => transfer::run_export(args),
        Command::Import(args) => transfer::run_import(args),
    }
}

/// Logs to stderr; `RUST_LOG` chooses what (default: info for infralog, warn else).
/// actix-http's per-connection ERROR lines about clients' malformed requests are
/// counted, not printed (see [`client_errors`]).
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,infralog=info,infralog_actors=info,infralog_events=info",
        )
    });
    let printed = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            !client_errors::is_client_error(metadata)
        }));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(printed)
        .with(client_errors::ClientErrorCounter)
        .try_init();
}
