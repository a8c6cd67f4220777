//! Test helper for the import crash test (`tests/import_crash.rs`): imports whole
//! groups of streams from 4 threads until it is killed, noting each import it is
//! about to make (`I key`) and each one the store acknowledged (`A key`).
//!
//! Import `key` holds [`IMPORT_STREAMS`] streams `imp-<key>-<n>`, stream `n` with
//! `n % 7 + 1` events of [`crash_payload`], interleaved. Once every thread had an
//! import acknowledged it creates `JOURNAL.ready`.
//!
//! Usage: `crash_importer DATA_DIR JOURNAL`

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infralog_events::envelope::payload_checksum;
use infralog_events::store::contract::crash_payload;
use infralog_events::{
    EventStore, ImportRequest, ImportedEvent, Metadata, SledStore, SledStoreConfig, StreamId,
};

/// Streams per import.
const IMPORT_STREAMS: u64 = 24;
const THREADS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: crash_importer DATA_DIR JOURNAL");
        std::process::exit(2);
    }
    let store = match SledStore::open(SledStoreConfig::new(&args[1])) {
        Ok(store) => Arc::new(store),
        Err(error) => {
            eprintln!("cannot open the store: {error}");
            std::process::exit(1);
        }
    };
    let journal = match OpenOptions::new().create(true).append(true).open(&args[2]) {
        Ok(file) => Arc::new(Mutex::new(file)),
        Err(error) => {
            eprintln!("cannot open the journal: {error}");
            std::process::exit(1);
        }
    };
    let ready_path = std::path::Path::new(&args[2]).with_extension("ready");
    let waiting = Arc::new(AtomicUsize::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            let journal = Arc::clone(&journal);
            let waiting = Arc::clone(&waiting);
            let ready_path = ready_path.clone();
            std::thread::spawn(move || {
                let mut first = true;
                for round in 0u64.. {
                    let key = format!("{}.{thread}.{round}", std::process::id());
                    note(&journal, format!("I {key}\n"));
                    match store.import_streams(import(&key)).wait() {
                        Ok(_) => note(&journal, format!("A {key}\n")),
                        Err(error) => {
                            eprintln!("import failed: {error}");
                            std::process::exit(1);
                        }
                    }
                    if first {
                        first = false;
                        if waiting.fetch_sub(1, Ordering::AcqRel) == 1
                            && std::fs::write(&ready_path, b"ready").is_err()
                        {
                            std::process::exit(1);
                        }
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

/// The import named `key`.
fn import(key: &str) -> ImportRequest {
    let mut events = Vec::new();
    for version in 1..=7 {
        for stream in 0..IMPORT_STREAMS {
            if version > stream % 7 + 1 {
                continue;
            }
            let name = format!("imp-{key}-{stream}");
            let payload = crash_payload(&name, version);
            events.push(ImportedEvent {
                stream: StreamId::new(name).expect("valid stream id"),
                version,
                event_id: uuid::Uuid::new_v4(),
                event_type: "CrashImport".into(),
                schema_version: 1,
                recorded_at: chrono::Utc::now(),
                metadata: Metadata::default(),
                checksum: payload_checksum(&payload),
                payload,
            });
        }
    }
    ImportRequest { events }
}

fn note(journal: &Mutex<std::fs::File>, line: String) {
    let mut file = journal.lock().unwrap_or_else(|p| p.into_inner());
    if file.write_all(line.as_bytes()).is_err() {
        std::process::exit(1);
    }
}
