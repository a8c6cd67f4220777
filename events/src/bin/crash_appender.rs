//! Test helper for the crash test (`tests/crash.rs`): appends to the store from 16
//! threads until it is killed, writing down each append it is about to make
//! (`I stream from count`) and each one the store acknowledged (`A stream version`),
//! the latter only after the store answered.
//!
//! Once every thread had an append acknowledged it creates `JOURNAL.ready`, so the
//! parent kills it while it appends rather than while it opens.
//!
//! Usage: `crash_appender DATA_DIR|postgres://… JOURNAL [THREADS] [STREAMS]`

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use infralog_events::store::contract::crash_payload as payload;
use infralog_events::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, PgStore, PgStoreConfig, SledStore,
    SledStoreConfig, StreamId,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: crash_appender DATA_DIR JOURNAL [THREADS] [STREAMS]");
        std::process::exit(2);
    }
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let streams: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let opened: Result<Arc<dyn EventStore>, _> = if args[1].starts_with("postgres://") {
        PgStore::open(PgStoreConfig::new(args[1].clone(), uuid::Uuid::new_v4()))
            .map(|store| Arc::new(store) as Arc<dyn EventStore>)
    } else {
        SledStore::open(SledStoreConfig::new(&args[1]))
            .map(|store| Arc::new(store) as Arc<dyn EventStore>)
    };
    let store = match opened {
        Ok(store) => store,
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
    let ready = Arc::new(Ready {
        path: std::path::Path::new(&args[2]).with_extension("ready"),
        waiting: AtomicUsize::new(threads),
    });
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let store = Arc::clone(&store);
            let journal = Arc::clone(&journal);
            let ready = Arc::clone(&ready);
            std::thread::spawn(move || {
                run_thread(thread, threads, streams, &store, &journal, &ready)
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

/// Created once every thread had an append acknowledged.
struct Ready {
    path: std::path::PathBuf,
    waiting: AtomicUsize,
}

impl Ready {
    fn thread_acknowledged(&self) {
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1
            && std::fs::write(&self.path, b"ready").is_err()
        {
            eprintln!("cannot write {}", self.path.display());
            std::process::exit(1);
        }
    }
}

fn note(journal: &Mutex<std::fs::File>, line: String) {
    let mut file = journal.lock().unwrap_or_else(|p| p.into_inner());
    // One write per line; the kernel keeps it across a SIGKILL of this process.
    if file.write_all(line.as_bytes()).is_err() {
        std::process::exit(1);
    }
}

fn run_thread(
    thread: usize,
    threads: usize,
    streams: usize,
    store: &Arc<dyn EventStore>,
    journal: &Mutex<std::fs::File>,
    ready: &Ready,
) {
    let mut first = true;
    // Each thread owns the streams congruent to it, so it knows their versions.
    let mine: Vec<String> = (0..streams)
        .filter(|s| s % threads == thread)
        .map(|s| format!("crash-{s}"))
        .collect();
    let mut versions: Vec<u64> = mine
        .iter()
        .map(|name| {
            let id = StreamId::new(name.clone()).expect("valid stream id");
            store.stream_version(&id).unwrap_or_else(|error| {
                eprintln!("cannot read {name}: {error}");
                std::process::exit(1)
            })
        })
        .collect();
    let mut seed =
        (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ std::process::id() as u64;
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let index = (seed % mine.len() as u64) as usize;
        let count = (seed >> 32) % 5 + 1;
        let name = &mine[index];
        let from = versions[index] + 1;
        note(journal, format!("I {name} {from} {count}\n"));
        let events = (0..count)
            .map(|i| NewEvent::new("CrashTest", 1, payload(name, from + i)))
            .collect();
        let request = AppendRequest {
            stream: StreamId::new(name.clone()).expect("valid stream id"),
            expected: ExpectedVersion::Exact(versions[index]),
            events,
        };
        match store.append(request).wait() {
            Ok(appended) => {
                versions[index] = appended.version;
                note(journal, format!("A {name} {}\n", appended.version));
                if first {
                    first = false;
                    ready.thread_acknowledged();
                }
            }
            Err(error) => {
                eprintln!("append failed: {error}");
                std::process::exit(1);
            }
        }
    }
}
