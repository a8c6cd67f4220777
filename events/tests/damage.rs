//! Damaged data files: every file of a data directory whose acknowledged head is
//! known is cut at random lengths and has random bits flipped, one damage per
//! trial. Every trial must end in one of two ways: the store refuses to open with
//! a message (and keeps refusing: the evidence is not erased), or it serves
//! exactly the acknowledged log. A trial that serves anything else, crashes or
//! hangs fails the test.
//!
//! Each trial runs in a child process (this test binary, re-run with
//! `INFRALOG_DAMAGE_PROBE` set), so a hang or an abort inside sled is caught too.
//! `INFRALOG_DAMAGE_TRIALS` sets the trials per file and kind (default 50);
//! `INFRALOG_DAMAGE_SEED` replays a run.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infralog_events::store::contract::crash_payload;
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, SledStore, SledStoreConfig, StreamId,
};

const PROBE_ENV: &str = "INFRALOG_DAMAGE_PROBE";
const STREAMS: u64 = 24;
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Appends a few hundred events in many small group commits and returns the head.
fn fill(path: &Path) -> u64 {
    let store = SledStore::open(SledStoreConfig::new(path)).expect("a fresh store opens");
    for round in 1..=60u64 {
        for s in 0..STREAMS {
            if (round + s) % 3 != 0 {
                continue;
            }
            let name = format!("damage-{s}");
            let stream = StreamId::new(name.clone()).expect("valid id");
            let version = store.stream_version(&stream).expect("reads");
            let events = (1..=1 + round % 3)
                .map(|i| NewEvent::new("Damage", 1, crash_payload(&name, version + i)))
                .collect();
            store
                .append(AppendRequest {
                    stream,
                    expected: ExpectedVersion::Exact(version),
                    events,
                })
                .wait()
                .expect("appends go in");
        }
    }
    let head = store.head_position();
    store.close();
    head
}

/// A fingerprint of everything a store serves: every event with its position,
/// stream, version, id, type and payload, and every stream's version.
fn served(store: &SledStore) -> Result<(u64, u64), String> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut position = 0;
    loop {
        let batch = store
            .read_all(position + 1, 500)
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        for envelope in batch {
            (
                envelope.position,
                envelope.stream.as_str(),
                envelope.version,
                envelope.event_id,
                &envelope.event_type,
                &envelope.payload,
            )
                .hash(&mut hasher);
            position = envelope.position;
        }
    }
    let streams = store
        .list_streams(None, usize::MAX)
        .map_err(|e| e.to_string())?;
    for (stream, version) in streams {
        (stream.as_str(), version).hash(&mut hasher);
        let events = store
            .read_stream(&stream, 1, usize::MAX)
            .map_err(|e| e.to_string())?;
        for envelope in events {
            (envelope.position, envelope.version).hash(&mut hasher);
        }
    }
    Ok((position, hasher.finish()))
}

/// The child's side: opens the damaged directory read-only, then for writing,
/// then again, and prints one verdict line per open.
#[test]
fn probe() {
    let Ok(dir) = std::env::var(PROBE_ENV) else {
        return;
    };
    let config = SledStoreConfig::new(PathBuf::from(dir));
    type Open = fn(SledStoreConfig) -> Result<SledStore, infralog_events::StoreError>;
    let opens: [(&str, Open); 3] = [
        ("read-only", SledStore::open_read_only),
        ("open", SledStore::open),
        ("reopen", SledStore::open),
    ];
    for (name, open) in opens {
        match open(config.clone()) {
            Ok(store) => {
                let verdict = match served(&store) {
                    Ok((head, fingerprint)) => format!("SERVED {head} {fingerprint}"),
                    Err(error) => format!("READ-ERROR {}", error.replace('\n', " ")),
                };
                store.close();
                println!("VERDICT {name} {verdict}");
            }
            Err(error) => println!(
                "VERDICT {name} REFUSED {}",
                error.to_string().replace('\n', " ")
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Refused on every open, with a message.
    Refused,
    /// Opened and served exactly the acknowledged log.
    ServedEqual,
}

fn run_probe(dir: &Path) -> Result<Vec<String>, String> {
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--exact", "probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the probe hung".into());
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let verdicts: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.split_once("VERDICT "))
        .map(|(_, verdict)| verdict.to_string())
        .collect();
    if verdicts.len() != 3 {
        return Err(format!(
            "the probe ended ({}) without its verdicts: {stdout}",
            output.status
        ));
    }
    Ok(verdicts)
}

/// Judges one trial's three verdicts against the acknowledged log.
fn judge(verdicts: &[String], expected: &str) -> Result<Outcome, String> {
    let refused = |v: &String| {
        v.split_once(' ')
            .is_some_and(|(_, rest)| rest.starts_with("REFUSED ") && rest.len() > 20)
    };
    if verdicts.iter().all(refused) {
        return Ok(Outcome::Refused);
    }
    if verdicts
        .iter()
        .all(|v| v.ends_with(expected) && v.contains(" SERVED "))
    {
        return Ok(Outcome::ServedEqual);
    }
    Err(format!(
        "served something else, or not consistently: {verdicts:?}"
    ))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

/// Every regular file of the data directory, relative to it.
fn data_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("lists") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            data_files(root, &path, files);
        } else if std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
        {
            files.push(path.strip_prefix(root).expect("inside").to_path_buf());
        }
    }
    files.sort();
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
enum Harm {
    Truncate,
    FlipBit,
}

fn harm(file: &Path, harm: Harm, rng: &mut Rng) -> String {
    let length = std::fs::metadata(file).expect("stat").len();
    match harm {
        Harm::Truncate => {
            let cut = rng.below(length);
            std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .and_then(|f| f.set_len(cut))
                .expect("truncates");
            format!("cut to {cut} of {length} bytes")
        }
        Harm::FlipBit => {
            let offset = rng.below(length) as usize;
            let bit = rng.below(8);
            let mut bytes = std::fs::read(file).expect("reads");
            bytes[offset] ^= 1 << bit;
            std::fs::write(file, bytes).expect("writes");
            format!("bit {bit} of byte {offset} of {length} flipped")
        }
    }
}

#[test]
fn a_damaged_log_is_refused_or_served_exactly() {
    if std::env::var(PROBE_ENV).is_ok() {
        return;
    }
    let trials: u64 = std::env::var("INFRALOG_DAMAGE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed = std::env::var("INFRALOG_DAMAGE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("damage test: INFRALOG_DAMAGE_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let original = dir.path().join("original");
    let head = fill(&original);
    let expected = {
        let store = SledStore::open_read_only(SledStoreConfig::new(&original)).expect("opens");
        let (served_head, fingerprint) = served(&store).expect("the intact log reads");
        assert_eq!(served_head, head);
        format!("SERVED {head} {fingerprint}")
    };
    let mut files = Vec::new();
    data_files(&original, &original, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("log/db"))
            && files.iter().any(|f| f.ends_with("acked-head")),
        "the data directory holds sled's db and the acknowledged-head record: {files:?}"
    );
    let mut counts: BTreeMap<(String, String), BTreeMap<Outcome, u64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut trial = 0;
    for file in &files {
        for kind in [Harm::Truncate, Harm::FlipBit] {
            for _ in 0..trials {
                trial += 1;
                let copy = dir.path().join(format!("trial-{trial}"));
                copy_dir(&original, &copy);
                let what = harm(&copy.join(file), kind, &mut rng);
                let verdict = run_probe(&copy).and_then(|v| judge(&v, &expected));
                match verdict {
                    Ok(outcome) => {
                        *counts
                            .entry((file.display().to_string(), format!("{kind:?}")))
                            .or_default()
                            .entry(outcome)
                            .or_default() += 1
                    }
                    Err(error) => {
                        failures.push(format!("trial {trial}, {} {what}: {error}", file.display()))
                    }
                }
                let _ = std::fs::remove_dir_all(&copy);
            }
        }
    }
    eprintln!(
        "damage test over a log of {head} acknowledged events, {trials} trials per file and kind:"
    );
    let (mut refused, mut equal) = (0, 0);
    for ((file, kind), outcomes) in &counts {
        let r = outcomes.get(&Outcome::Refused).copied().unwrap_or(0);
        let e = outcomes.get(&Outcome::ServedEqual).copied().unwrap_or(0);
        refused += r;
        equal += e;
        eprintln!("  {file:<24} {kind:<9} refused {r:>3}, served equal {e:>3}");
    }
    eprintln!(
        "  total: {trial} trials, {refused} refused, {equal} served equal, {} wrong",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} trials neither refused nor served the acknowledged log:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
