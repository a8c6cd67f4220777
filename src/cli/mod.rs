//! The `infralog` command line: `serve`, `radl`, and the offline tools.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub mod client_errors;
pub mod migrate;
pub mod mlbench_worker;
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
    /// The MLBench facade's built-in workload: one rank of a seeded logistic
    /// regression that posts its metrics to the API.
    MlbenchWorker(mlbench_worker::WorkerArgs),
    /// Copy a stopped server's sled log into PostgreSQL and prove the copy.
    Migrate(migrate::MigrateArgs),
    /// Print a completion script for a shell (`infralog completions bash > …`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
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
        Command::MlbenchWorker(args) => mlbench_worker::run(args),
        Command::Migrate(args) => migrate::run_migrate(args),
        Command::Completions { shell } => {
            print_completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Writes the completion script of `infralog` for `shell` into `out`.
pub fn print_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "infralog", out);
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs to stderr as text; see [`init_tracing_as`].
pub fn init_tracing() {
    init_tracing_as(LogFormat::Text);
}

/// Logs to stderr in `format`; `RUST_LOG` chooses what (default: info for
/// infralog, warn else). Text has ANSI colours only when stderr is a terminal,
/// so a log file holds no escape codes. actix-http's per-connection ERROR lines
/// about clients' malformed requests are counted, not printed (see
/// [`client_errors`]).
pub fn init_tracing_as(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,infralog=info,infralog_actors=info,infralog_events=info",
        )
    });
    let shown =
        tracing_subscriber::filter::filter_fn(|metadata| !client_errors::is_client_error(metadata));
    let printed = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(shown)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .with_filter(shown)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(printed)
        .with(client_errors::ClientErrorCounter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_are_generated_for_each_shell() {
        for (shell, marker) in [
            (clap_complete::Shell::Bash, "complete -F"),
            (clap_complete::Shell::Zsh, "#compdef infralog"),
            (clap_complete::Shell::Fish, "complete -c infralog"),
        ] {
            let mut script = Vec::new();
            print_completions(shell, &mut script);
            let script = String::from_utf8(script).expect("utf-8");
            assert!(script.contains(marker), "{shell}: {script}");
            for subcommand in ["serve", "export", "completions"] {
                assert!(script.contains(subcommand), "{shell} lacks {subcommand}");
            }
        }
    }

    #[test]
    fn the_log_format_is_chosen_on_the_command_line() {
        let cli =
            Cli::try_parse_from(["infralog", "serve", "--log-format", "json"]).expect("parse");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.log_format, LogFormat::Json);
    }
}
