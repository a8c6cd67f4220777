//! `infralog radl check|fmt`: validate and format users' RADL templates.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::radl::{self, Radl, RadlError};

/// The subcommands of `infralog radl`.
#[derive(Debug, Subcommand)]
pub enum RadlCommand {
    /// Parse and check documents as IM does on create; report `FILE:LINE:COL: message`.
    Check(CheckArgs),
    /// Print a document in IM's canonical text form (or RADL-JSON with --json).
    Fmt(FmtArgs),
}

/// The arguments of `infralog radl check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// RADL files (RADL-JSON when the name ends in `.json`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print only IM's message for each failure (used to compare with IM).
    #[arg(long, hide = true)]
    im_messages: bool,
}

/// The arguments of `infralog radl fmt`.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// The RADL file (RADL-JSON when the name ends in `.json`).
    file: PathBuf,
    /// Print RADL-JSON instead of RADL text.
    #[arg(long)]
    json: bool,
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Why a file could not be processed.
enum Failure {
    Read(std::io::Error),
    Radl(RadlError),
}

fn load(path: &Path) -> Result<Radl, Failure> {
    let text = std::fs::read_to_string(path).map_err(Failure::Read)?;
    let format = if is_json(path) {
        radl::Format::Json
    } else {
        radl::Format::Text
    };
    radl::parse_body(&text, format).map_err(Failure::Radl)
}

fn report(path: &Path, failure: &Failure) -> String {
    match failure {
        Failure::Read(error) => format!("{}: cannot read: {error}", path.display()),
        Failure::Radl(error) => match error.position() {
            Some(position) => format!("{}:{position}: {}", path.display(), error.diagnostic()),
            None => format!("{}: {}", path.display(), error.diagnostic()),
        },
    }
}

/// Runs `infralog radl …`.
pub fn run(command: RadlCommand) -> ExitCode {
    match command {
        RadlCommand::Check(args) => {
            let mut failed = 0usize;
            for path in &args.files {
                let result = load(path).and_then(|doc| doc.check().map_err(Failure::Radl));
                if let Err(failure) = result {
                    failed += 1;
                    match (&failure, args.im_messages) {
                        (Failure::Radl(error), true) => eprintln!("{}", error.message()),
                        _ => eprintln!("{}", report(path, &failure)),
                    }
                }
            }
            let total = args.files.len();
            if !args.im_messages {
                eprintln!(
                    "{} checked, {} passed, {failed} failed",
                    total,
                    total - failed
                );
            }
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        RadlCommand::Fmt(args) => match load(&args.file) {
            Ok(doc) => {
                let text = if args.json {
                    doc.to_json()
                } else {
                    doc.to_text()
                };
                let mut stdout = std::io::stdout().lock();
                match stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(_) => ExitCode::FAILURE,
                }
            }
            Err(failure) => {
                eprintln!("{}", report(&args.file, &failure));
                ExitCode::FAILURE
            }
        },
    }
}
