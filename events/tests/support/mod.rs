//! The store's kill tests share one loop: start a child that writes to a store
//! and keeps a journal, wait until it has acknowledged something, `SIGKILL` it at
//! a random moment, and check the reopened store against the journal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One kill test: a child program, how to run it and how long to let it run.
pub struct KillCycles {
    /// The child program (`env!("CARGO_BIN_EXE_…")`).
    pub program: &'static str,
    /// Arguments after the data directory and the journal path.
    pub args: Vec<String>,
    /// Cycles when `INFRALOG_CRASH_CYCLES` is unset.
    pub default_cycles: usize,
    /// The child runs for `min_run + (random % spread)` once ready.
    pub min_run: Duration,
    pub spread_ms: u64,
    /// A PostgreSQL URL the child writes to instead of the data directory.
    pub store_url: Option<String>,
}

/// Where a kill test keeps its files.
pub struct Paths {
    pub data: PathBuf,
    pub journal: PathBuf,
}

impl KillCycles {
    /// Runs the cycles; `check(paths, cycle)` verifies the store after each kill and
    /// returns how many acknowledged operations the journal holds (it must grow).
    pub fn run(&self, mut check: impl FnMut(&Paths, usize) -> usize) {
        let cycles: usize = std::env::var("INFRALOG_CRASH_CYCLES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(self.default_cycles);
        let mut seed: u64 = std::env::var("INFRALOG_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::process::id() as u64 ^ 0x5eed);
        eprintln!("kill test: {cycles} cycles, INFRALOG_CRASH_SEED={seed}");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let paths = Paths {
            data: dir.path().join("data"),
            journal: dir.path().join("journal"),
        };
        let ready = paths.journal.with_extension("ready");
        let mut acknowledged_before = 0;
        for cycle in 0..cycles {
            let _ = std::fs::remove_file(&ready);
            let target = match &self.store_url {
                Some(url) => std::ffi::OsString::from(url),
                None => paths.data.clone().into_os_string(),
            };
            let mut child = Command::new(self.program)
                .arg(target)
                .arg(&paths.journal)
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the child starts");
            wait_ready(&mut child, &ready, cycle);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(self.min_run + Duration::from_millis(seed % self.spread_ms.max(1)));
            if let Ok(Some(status)) = child.try_wait() {
                panic!("cycle {cycle}: the child exited on its own: {status}");
            }
            child.kill().expect("SIGKILL is delivered");
            child.wait().expect("the child is reaped");
            let acknowledged = check(&paths, cycle);
            assert!(
                acknowledged > acknowledged_before,
                "cycle {cycle}: the child acknowledged nothing before it was killed"
            );
            acknowledged_before = acknowledged;
        }
    }
}

fn wait_ready(child: &mut std::process::Child, ready: &Path, cycle: usize) {
    let opening = Instant::now();
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cycle {cycle}: the child exited while opening the store: {status}");
        }
        assert!(
            opening.elapsed() < Duration::from_secs(60),
            "cycle {cycle}: the child acknowledged nothing for a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
