//! `infralog migrate --from-data-dir DIR --to postgres://…`: copies a stopped
//! server's sled log into PostgreSQL at the same positions, then proves the copy:
//! every envelope equal (ids, times, metadata, payloads, checksums) and the same
//! read model folded from both. Run again, it copies nothing and proves again;
//! interrupted, it resumes where it stopped.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use infralog_events::store::Copied;
use infralog_events::{EventStore, PgStore, PgStoreConfig, StoreError};
use uuid::Uuid;

use super::offline::{open_store, ToolError};
use crate::projections;

/// Envelopes copied (and compared) per transaction.
const BATCH: usize = 5_000;

/// The arguments of `infralog migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory of a stopped server whose sled log is copied.
    #[arg(long)]
    pub from_data_dir: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://user:password@host/db`):
    /// empty, or holding an earlier run of this same migration.
    #[arg(long, env = "INFRALOG_STORE", hide_env_values = true)]
    pub to: String,
}

#[derive(Debug, thiserror::Error)]
enum MigrateError {
    #[error(transparent)]
    Source(#[from] ToolError),
    #[error("the PostgreSQL log: {0}")]
    Target(StoreError),
    #[error("the database holds more than the source ({target} events, the source {copied}): it is not a copy of this log")]
    TargetAhead { target: u64, copied: u64 },
    #[error("cannot fold the log: {0}")]
    Fold(#[from] projections::RebuildError),
}

/// Runs `infralog migrate`. Exit code 0 when the copy is proven, 1 when the
/// proof found a difference, 2 when it could not run.
pub fn run_migrate(args: MigrateArgs) -> ExitCode {
    match migrate(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("infralog: {error}");
            ExitCode::from(2)
        }
    }
}

fn migrate(args: &MigrateArgs) -> Result<bool, MigrateError> {
    if crate::storage::StoreLocation::parse(&args.to).is_err() {
        return Err(MigrateError::Target(StoreError::Storage(
            "--to takes a postgres:// URL".into(),
        )));
    }
    let source = open_store(&args.from_data_dir)?;
    let source_head = source.head_position();
    // The tool's own instance id: it appends nothing of its own.
    let target = PgStore::open(PgStoreConfig::new(args.to.clone(), Uuid::new_v4()))
        .map_err(MigrateError::Target)?;
    let target_head = target.latest_position().map_err(MigrateError::Target)?;
    if target_head > source_head {
        return Err(MigrateError::TargetAhead {
            target: target_head,
            copied: source_head,
        });
    }
    let bar = progress(source_head, "copying");
    let mut total = Copied::default();
    let mut from = 1;
    loop {
        let batch = source
            .read_all(from, BATCH)
            .map_err(|e| MigrateError::Source(ToolError::Open(e)))?;
        let Some(last) = batch.last().map(|e| e.position) else {
            break;
        };
        let count = batch.len() as u64;
        let copied = target.copy_envelopes(batch).map_err(MigrateError::Target)?;
        total.written += copied.written;
        total.present += copied.present;
        bar.inc(count);
        from = last + 1;
    }
    bar.finish_and_clear();
    println!(
        "copied {} events ({} were already there) from {} into PostgreSQL",
        total.written,
        total.present,
        args.from_data_dir.display()
    );
    let same = prove(&source, &target, source_head)?;
    target.close();
    Ok(same)
}

/// Compares both logs envelope by envelope, then the read models folded from
/// them; prints the verdict.
fn prove(source: &dyn EventStore, target: &PgStore, head: u64) -> Result<bool, MigrateError> {
    let bar = progress(head, "comparing");
    let mut from = 1;
    let mut differences = 0u64;
    loop {
        let left = source
            .read_all(from, BATCH)
            .map_err(|e| MigrateError::Source(ToolError::Open(e)))?;
        let right = target.read_all(from, BATCH).map_err(MigrateError::Target)?;
        if left.is_empty() {
            if !right.is_empty() {
                println!(
                    "MISMATCH: the database holds events after position {}",
                    from - 1
                );
                differences += 1;
            }
            break;
        }
        for (index, envelope) in left.iter().enumerate() {
            if right.get(index) != Some(envelope) {
                if differences < 10 {
                    println!(
                        "MISMATCH: position {} differs (stream {}, version {})",
                        envelope.position, envelope.stream, envelope.version
                    );
                }
                differences += 1;
            }
        }
        bar.inc(left.len() as u64);
        from += left.len() as u64;
    }
    bar.finish_and_clear();
    let folded_source = projections::rebuild(source)?;
    let folded_target = projections::rebuild(target)?;
    let same_fold = folded_source == folded_target;
    if !same_fold {
        println!("MISMATCH: the read models folded from the two logs differ");
    }
    let proven = differences == 0 && same_fold;
    println!(
        "{head} events compared, {} infrastructures folded: {}",
        folded_source.infrastructures.len(),
        if proven {
            "the copy is identical (same events, checksums and read model)".to_owned()
        } else {
            format!("{} difference(s)", differences + u64::from(!same_fold))
        }
    );
    Ok(proven)
}

/// A progress bar on a terminal; nothing elsewhere.
fn progress(length: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length).with_message(message);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} events") {
        bar.set_style(style);
    }
    bar
}
