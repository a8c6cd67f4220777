//! What a run's actor reads of its processes: new lines of their output files,
//! and their process groups' CPU time and memory in `/proc`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most bytes read from one output file per reading, so one event stays
/// small; the rest is read next time.
const MAX_READ: u64 = 256 * 1024;
/// Longer lines are cut (with a mark) so one line cannot fill an event.
const MAX_LINE: usize = 4096;

/// Where reading one output file is.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tail {
    offset: u64,
    partial: Vec<u8>,
}

fn finish_line(bytes: &[u8]) -> String {
    let mut line = String::from_utf8_lossy(bytes).into_owned();
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(" […]");
    }
    line
}

impl Tail {
    /// The whole lines written to `path` since the last reading; with `last`,
    /// an unfinished last line too (the process has ended).
    pub(crate) fn read(&mut self, path: &Path, last: bool) -> Vec<String> {
        let mut chunk = Vec::new();
        if let Ok(mut file) = File::open(path) {
            if file.seek(SeekFrom::Start(self.offset)).is_ok() {
                let _ = file.take(MAX_READ).read_to_end(&mut chunk);
            }
        }
        self.offset += chunk.len() as u64;
        self.partial.extend_from_slice(&chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            lines.push(finish_line(&line[..line.len() - 1]));
        }
        if last && !self.partial.is_empty() && (chunk.len() as u64) < MAX_READ {
            lines.push(finish_line(&std::mem::take(&mut self.partial)));
        }
        lines
    }
}

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// `/proc/<pid>/stat` after the command name: state, ppid, pgrp…
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The CPU time (user + system ticks) and resident memory (KiB) of every live
/// process of group `pgid`; `None` when the group has no process.
pub(crate) fn group_usage(pgid: i32) -> Option<(u64, u64)> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let mut found = false;
    let (mut ticks, mut rss_kib) = (0u64, 0u64);
    for pid in entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        // Fields 3 (state) and 5 (pgrp) are at 0 and 2 after the name.
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) != Some(pgid)
            || fields.first().map(String::as_str) == Some("Z")
        {
            continue;
        }
        found = true;
        let field =
            |n: usize| -> u64 { fields.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
        // utime (14) and stime (15); rss (24) in pages.
        ticks += field(14) + field(15);
        rss_kib += field(24) * 4;
    }
    found.then_some((ticks, rss_kib))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_are_read_once_and_a_last_partial_line_at_the_end() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("stdout");
        std::fs::write(&path, "a\nb\npart").expect("write");
        let mut tail = Tail::default();
        assert_eq!(tail.read(&path, false), ["a", "b"]);
        assert!(tail.read(&path, false).is_empty());
        std::fs::write(&path, "a\nb\npartial\nc").expect("write");
        assert_eq!(tail.read(&path, false), ["partial"]);
        assert_eq!(tail.read(&path, true), ["c"]);
        assert!(tail.read(&dir.path().join("none"), true).is_empty());
    }

    #[test]
    fn this_process_group_has_usage() {
        let pgid = stat_fields(std::process::id() as i32)
            .and_then(|f| f.get(2)?.parse::<i32>().ok())
            .expect("own group");
        let (_, rss) = group_usage(pgid).expect("a live group");
        assert!(rss > 0);
    }
}
