//! A private copy of the log for the read-only opens of the offline tools.
//!
//! sled has no read-only mode: opening a directory recovers it in place (it
//! truncates a torn segment, rewrites its snapshot). A tool run on a damaged log
//! would then erase the evidence. So the tools copy the files, under the same
//! lock a server takes (sled's `flock` on `db`), and open the copy.

use std::fs::File;
use std::path::Path;

use super::LOG_DIR;
use crate::store::StoreError;

/// Copies `log_dir` into a new temporary directory (as `<tmp>/log`), while holding
/// the lock a running server would hold.
pub(super) fn copy_log(log_dir: &Path) -> Result<tempfile::TempDir, StoreError> {
    if !log_dir.is_dir() {
        return Err(StoreError::Storage(format!(
            "{} holds no event log",
            log_dir.display()
        )));
    }
    let copy = tempfile::Builder::new()
        .prefix("infralog-read-only-")
        .tempdir()
        .map_err(|e| StoreError::Storage(format!("cannot make a temporary directory: {e}")))?;
    copy_locked(log_dir, &copy.path().join(LOG_DIR))?;
    Ok(copy)
}

/// Copies the sled directory `log_dir` to `to` under the server's lock.
pub(super) fn copy_locked(log_dir: &Path, to: &Path) -> Result<(), StoreError> {
    let _lock = lock(log_dir)?;
    copy_dir(log_dir, to).map_err(|e| {
        StoreError::Storage(format!(
            "cannot copy {} to {}: {e}",
            log_dir.display(),
            to.display()
        ))
    })
}

/// Takes the lock a server holds on `db` (without writing to it), so a copy is
/// never taken of a log being written. Released when the file is dropped.
fn lock(log_dir: &Path) -> Result<Option<File>, StoreError> {
    let db = log_dir.join("db");
    let file = match File::open(&db) {
        Ok(file) => file,
        // sled makes `db` on first open; without it there is nothing to lock.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(StoreError::Storage(format!(
                "cannot open {}: {error}",
                db.display()
            )))
        }
    };
    // A handle this process just dropped may still hold the lock for a moment.
    super::recovery::waiting_for_lock(|| match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::InUse(log_dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Storage(format!(
            "cannot lock {}: {error}",
            db.display()
        ))),
    })?;
    Ok(Some(file))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
