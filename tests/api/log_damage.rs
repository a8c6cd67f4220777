//! The reproduction, on the real binary: a data directory whose log lost
//! acknowledged events (its `log/db` cut to a third) is refused by `verify`,
//! `events` and `serve`, none of which changes a byte of it; `repair` says what it
//! would drop, and `repair --accept-loss` keeps a copy of the damaged files and
//! lets the server start again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{create, id_of, infralog, Api, ChildServer, RADL_NO_CTX};
use sha2::{Digest, Sha256};

const OWNER: &str = "alice";

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// SHA-256 of every file under `dir`, by relative path.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("lists") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let digest = Sha256::digest(std::fs::read(&path).expect("reads"));
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                out.insert(path.strip_prefix(root).expect("inside").to_path_buf(), hex);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Runs `infralog serve` and waits for it to exit on its own.
fn serve_exits(data: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_infralog"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("polls").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started on a damaged log instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("exits")
}

#[test]
fn a_log_that_lost_acknowledged_events_is_refused_until_the_loss_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = ChildServer::start(&data, &[]);
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(id_of(&create(&server, OWNER, RADL_NO_CTX)));
    }
    for id in ids.iter().take(10) {
        server
            .delete(&format!("/infrastructures/{id}"))
            .user(OWNER)
            .send()
            .expect(200);
    }
    server.kill();
    let data_arg = data.display().to_string();
    assert!(infralog(&["verify", "--data-dir", &data_arg])
        .status
        .success());

    let db = data.join("log").join("db");
    let length = std::fs::metadata(&db).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .and_then(|f| f.set_len(length / 3))
        .expect("truncates");
    let damaged = hashes(&data);

    let verify = infralog(&["verify", "--data-dir", &data_arg]);
    assert_eq!(verify.status.code(), Some(1), "{}", said(&verify));
    assert!(
        said(&verify).contains("acknowledged events (positions"),
        "verify says what was lost: {}",
        said(&verify)
    );
    let events = infralog(&["events", "--data-dir", &data_arg, &ids[0]]);
    assert_eq!(events.status.code(), Some(2), "{}", said(&events));
    assert!(said(&events).contains("damaged"), "{}", said(&events));
    let dry_run = infralog(&["repair", "--data-dir", &data_arg]);
    assert_eq!(dry_run.status.code(), Some(1), "{}", said(&dry_run));
    assert!(
        said(&dry_run).contains("--accept-loss"),
        "{}",
        said(&dry_run)
    );
    assert_eq!(
        hashes(&data),
        damaged,
        "an offline tool changed the data directory"
    );

    let record = std::fs::read(data.join("acked-head")).expect("the record");
    for _ in 0..2 {
        let refused = serve_exits(&data_arg);
        assert!(!refused.status.success());
        let text = said(&refused);
        assert!(
            text.contains("acknowledged events (positions") && text.contains("infralog repair"),
            "serve says what was lost and how to accept it: {text}"
        );
        assert_eq!(
            std::fs::read(data.join("acked-head")).expect("the record"),
            record,
            "a refused start lowered the acknowledged head"
        );
    }

    let repair = infralog(&["repair", "--data-dir", &data_arg, "--accept-loss"]);
    assert!(repair.status.success(), "{}", said(&repair));
    assert!(
        said(&repair).contains("acknowledged events are lost"),
        "{}",
        said(&repair)
    );
    let backups: Vec<_> = std::fs::read_dir(&data)
        .expect("lists")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(backups.len(), 1, "the damaged files are kept");
    let verify = infralog(&["verify", "--data-dir", &data_arg]);
    assert!(verify.status.success(), "{}", said(&verify));

    let server = ChildServer::start(&data, &[]);
    server
        .get("/infrastructures")
        .user(OWNER)
        .send()
        .expect(200);
    server.kill();
}
