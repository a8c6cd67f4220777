//! `infralog events`, `infralog replay`, `infralog verify` and `infralog repair`:
//! offline tools over a stopped server's data directory. The first three read a
//! private copy of the log and change no byte of the directory; no connector is
//! called and nothing is appended. `repair --accept-loss` is the one tool that
//! writes: it accepts the loss of what a damaged log can no longer prove. The
//! logic lives in [`crate::history`] and the event store.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use infralog_events::domain::InfId;
use infralog_events::store::Damage;
use infralog_events::{EventStore, PgStore, PgStoreConfig, SledStore, SledStoreConfig, StoreError};

use crate::history::fold::{snapshot_json, snapshot_text, view_at, Until};
use crate::history::render::{event_json, event_line};
use crate::history::verify::{verify, Progress};
use crate::history::HistoryReader;

/// Exit code of a check that found problems.
const EXIT_MISMATCH: u8 = 1;
/// Exit code of a tool that could not run (bad arguments, unreadable directory).
const EXIT_ERROR: u8 = 2;

/// The arguments of `infralog events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "INFRALOG_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The infrastructure id.
    pub id: String,
    /// Print JSON lines (the events as `GET …/events` gives them) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The first history version to print.
    #[arg(long, default_value_t = 1)]
    pub from: u64,
}

/// The arguments of `infralog replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "INFRALOG_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The infrastructure id.
    pub id: String,
    /// Stop after this history version (as numbered by `infralog events`).
    #[arg(long, conflicts_with = "at")]
    pub until: Option<u64>,
    /// Stop at this time (RFC 3339, e.g. 2026-01-31T12:00:00Z): every event recorded
    /// at or before it.
    #[arg(long)]
    pub at: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The arguments of `infralog verify`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct VerifyArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "INFRALOG_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL log (`postgres://…`), read while its servers may run.
    #[arg(long, env = "INFRALOG_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

/// The arguments of `infralog repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "INFRALOG_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Accept the loss: drop what cannot be trusted and record the repair. Without
    /// it, only say what would be dropped.
    #[arg(long)]
    pub accept_loss: bool,
}

/// Why an offline tool could not run.
#[derive(Debug, thiserror::Error)]
pub(super) enum ToolError {
    #[error("{0} holds no event log (no log directory)")]
    NoLog(String),
    #[error("the data directory {0} is in use by a running server; stop it first")]
    InUse(String),
    #[error("cannot open the event log: {0}")]
    Open(StoreError),
    #[error("the event log in {dir} is damaged: {damage}")]
    Damaged { dir: String, damage: Damage },
    #[error("{0:?} is not an infrastructure id")]
    BadId(String),
    #[error("there is no infrastructure {0} in this log")]
    Unknown(InfId),
    #[error("version {version} is beyond the history, whose last version is {head}")]
    BeyondHead { version: u64, head: u64 },
    #[error("--at {0:?} is not an RFC 3339 time: {1}")]
    BadTime(String, chrono::ParseError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

pub(super) fn open_store(data_dir: &Path) -> Result<SledStore, ToolError> {
    // Opening would create an empty log; a mistyped path must not.
    if !data_dir.join("log").is_dir() {
        return Err(ToolError::NoLog(data_dir.display().to_string()));
    }
    SledStore::open_read_only(SledStoreConfig::new(data_dir)).map_err(|error| match error {
        StoreError::InUse(_) => ToolError::InUse(data_dir.display().to_string()),
        StoreError::Damaged(damage) => ToolError::Damaged {
            dir: data_dir.display().to_string(),
            damage,
        },
        other => ToolError::Open(other),
    })
}

fn parse_id(id: &str) -> Result<InfId, ToolError> {
    id.parse().map_err(|_| ToolError::BadId(id.to_string()))
}

fn finish(result: Result<ExitCode, ToolError>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("infralog: {error}");
        if matches!(error, ToolError::Damaged { .. }) {
            eprintln!("{}", damage_hint());
        }
        ExitCode::from(EXIT_ERROR)
    })
}

/// What to do about a damaged log; printed by every command that refuses one.
pub fn damage_hint() -> &'static str {
    "infralog: nothing was appended. To see what a repair would drop, run \
     `infralog repair --data-dir DIR`; to accept the loss, add `--accept-loss` \
     (see docs/operations.md, \"A damaged log\")."
}

/// Runs `infralog events`: prints the infrastructure's history from `--from`, one
/// event a line. Exit code 0, or 2 when it could not run or the id is unknown.
pub fn run_events(args: EventsArgs) -> ExitCode {
    finish((|| {
        let inf = parse_id(&args.id)?;
        let store = open_store(&args.data_dir)?;
        let mut reader = HistoryReader::new(&store, inf)?;
        reader.skip_to(args.from)?;
        let colour = !args.json && std::io::stdout().is_terminal();
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut printed = 0;
        while let Some(event) = reader.next_event()? {
            if args.json {
                serde_json::to_writer(&mut out, &event_json(&event)?)
                    .map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
            } else {
                writeln!(out, "{}", event_line(&event, colour)?)?;
            }
            printed += 1;
        }
        out.flush()?;
        if printed == 0 && args.from <= 1 {
            return Err(ToolError::Unknown(inf));
        }
        Ok(ExitCode::SUCCESS)
    })())
}

/// Runs `infralog replay`: prints the infrastructure as the read endpoints served
/// it at a history version or time (at its last event by default). Exit code 0,
/// or 2 when it could not run.
pub fn run_replay(args: ReplayArgs) -> ExitCode {
    finish((|| {
        let inf = parse_id(&args.id)?;
        let until = match (&args.until, &args.at) {
            (Some(version), _) => Until::Version(*version),
            (None, Some(time)) => Until::Time(
                DateTime::parse_from_rfc3339(time)
                    .map_err(|e| ToolError::BadTime(time.clone(), e))?
                    .with_timezone(&Utc),
            ),
            (None, None) => Until::End,
        };
        let store = open_store(&args.data_dir)?;
        let at = view_at(&store, inf, until)?;
        if at.head == 0 {
            return Err(ToolError::Unknown(inf));
        }
        if let Until::Version(version) = until {
            if version > at.head {
                return Err(ToolError::BeyondHead {
                    version,
                    head: at.head,
                });
            }
        }
        let mut out = std::io::stdout().lock();
        if args.json {
            writeln!(out, "{}", snapshot_json(&at))?;
        } else {
            write!(out, "{}", snapshot_text(inf, &at))?;
        }
        Ok(ExitCode::SUCCESS)
    })())
}

/// Runs `infralog verify`: checks the whole log and prints every mismatch. Exit
/// code 0 when it verified, 1 when it found problems, 2 when it could not run.
pub fn run_verify(args: VerifyArgs) -> ExitCode {
    finish((|| {
        let store: Box<dyn EventStore> = match (&args.store, &args.data_dir) {
            (Some(url), _) => {
                let mut config = PgStoreConfig::new(url.clone(), uuid::Uuid::new_v4());
                config.read_only = true;
                Box::new(PgStore::open(config).map_err(ToolError::Open)?)
            }
            (None, Some(data_dir)) => match open_store(data_dir) {
                Ok(store) => Box::new(store),
                // The store checks the whole log when it opens: damage found there is a
                // verification failure like any other.
                Err(ToolError::Damaged { damage, .. }) => {
                    println!("MISMATCH: the event log is damaged: {damage}");
                    println!("the log cannot be served: 1 problem(s)");
                    eprintln!("{}", damage_hint());
                    return Ok(ExitCode::from(EXIT_MISMATCH));
                }
                Err(error) => return Err(error),
            },
            (None, None) => return Err(ToolError::NoLog("neither --data-dir nor --store".into())),
        };
        let on_terminal = std::io::stderr().is_terminal();
        let mut last_phase = "";
        let mut show = |progress: Progress| {
            if !on_terminal {
                return;
            }
            let mut err = std::io::stderr().lock();
            if progress.phase != last_phase && !last_phase.is_empty() {
                let _ = writeln!(err);
            }
            last_phase = progress.phase;
            let _ = write!(err, "\r{}", progress_line(progress));
            let _ = err.flush();
        };
        let report = verify(store.as_ref(), &mut show);
        if on_terminal {
            eprintln!();
        }
        let mut out = std::io::stdout().lock();
        for problem in &report.problems {
            writeln!(out, "MISMATCH: {problem}")?;
        }
        writeln!(
            out,
            "{} events in {} streams, {} infrastructures: {}",
            report.events,
            report.streams,
            report.infrastructures,
            if report.is_ok() {
                "verified".to_string()
            } else {
                format!("{} problem(s)", report.problems.len())
            }
        )?;
        Ok(if report.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_MISMATCH)
        })
    })())
}

/// Runs `infralog repair`: says what a damaged log would lose, or with
/// `--accept-loss` repairs it. Exit code 0 when the log is sound or repaired, 1
/// when damage is found and not accepted, 2 when it could not run.
pub fn run_repair(args: RepairArgs) -> ExitCode {
    finish((|| {
        if !args.data_dir.join("log").is_dir() {
            return Err(ToolError::NoLog(args.data_dir.display().to_string()));
        }
        let config = SledStoreConfig::new(&args.data_dir);
        let in_use = |error| match error {
            StoreError::InUse(_) => ToolError::InUse(args.data_dir.display().to_string()),
            other => ToolError::Open(other),
        };
        let mut out = std::io::stdout().lock();
        if !args.accept_loss {
            return match SledStore::assess(&config).map_err(in_use)? {
                None => {
                    writeln!(out, "the event log is sound: nothing to repair")?;
                    Ok(ExitCode::SUCCESS)
                }
                Some(damage) => {
                    writeln!(out, "the event log is damaged: {damage}")?;
                    if let Some(lost) = damage.lost_events() {
                        writeln!(
                            out,
                            "a repair accepts the loss of {lost} acknowledged events"
                        )?;
                    }
                    writeln!(
                        out,
                        "a repair keeps every event before the first damaged one, drops the \
                         rest, keeps a copy of the damaged files and records itself in the log; \
                         run again with --accept-loss to do it"
                    )?;
                    Ok(ExitCode::from(EXIT_MISMATCH))
                }
            };
        }
        match SledStore::repair(&config).map_err(in_use)? {
            None => writeln!(out, "the event log is sound: nothing to repair")?,
            Some(report) => {
                writeln!(out, "repaired: {}", report.damage)?;
                writeln!(
                    out,
                    "kept positions 1..={} ({} events); dropped {} damaged or later records \
                     still in the files; {} acknowledged events are lost",
                    report.kept_head,
                    report.kept_head,
                    report.dropped_records,
                    report.lost_acknowledged
                )?;
                writeln!(
                    out,
                    "the damaged files are kept in {}",
                    report.backup.display()
                )?;
                writeln!(
                    out,
                    "the repair is recorded as event {} (stream {})",
                    report.recorded_at_position,
                    infralog_events::store::REPAIR_STREAM
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })())
}

/// `phase [#####.....] done/total`.
fn progress_line(progress: Progress) -> String {
    const WIDTH: u64 = 30;
    let filled = (progress.done * WIDTH)
        .checked_div(progress.total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "{:<30} [{}{}] {}/{}",
        progress.phase,
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        progress.done,
        progress.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_fills_in_proportion() {
        let line = |done, total| {
            progress_line(Progress {
                phase: "p",
                done,
                total,
            })
        };
        assert!(line(0, 10).contains(&format!("[{}]", ".".repeat(30))));
        assert!(line(5, 10).contains(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))));
        assert!(line(0, 0).contains(&format!("[{}]", "#".repeat(30))));
    }

    #[test]
    fn a_directory_without_a_log_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nothing-here");
        assert!(matches!(open_store(&missing), Err(ToolError::NoLog(_))));
        assert!(!missing.exists());
    }
}
