//! What `/proc` tells of a process: its start time, group, CPU time and peak
//! memory, read without `unsafe` code.

use std::fs;

/// Clock ticks per second in `/proc/<pid>/stat`: `USER_HZ`, 100 on every Linux
/// architecture's user interface.
const TICKS_PER_SECOND: u64 = 100;

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces and parentheses, so the split is at its last `)`).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field `n` (1-based, as `proc(5)` numbers them) of `/proc/<pid>/stat`.
fn stat_field(pid: i32, n: usize) -> Option<u64> {
    // Fields 1 and 2 (pid, comm) come before the split.
    stat_fields(pid)?.get(n.checked_sub(3)?)?.parse().ok()
}

/// The process's start time in ticks after boot.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_field(pid, 22)
}

/// The process's group.
pub fn group(pid: i32) -> Option<u64> {
    stat_field(pid, 5)
}

/// User CPU time of the process and the children it waited for, in ms.
pub fn user_cpu_ms(pid: i32) -> u64 {
    let ticks = stat_field(pid, 14).unwrap_or(0) + stat_field(pid, 16).unwrap_or(0);
    ticks * 1000 / TICKS_PER_SECOND
}

/// Whether the process is a zombie: dead, only waiting to be reaped (by init,
/// for an orphan), so nothing to kill or count.
fn is_zombie(pid: i32) -> bool {
    stat_fields(pid)
        .and_then(|fields| fields.first().cloned())
        .is_some_and(|state| state == "Z")
}

/// Every live process of group `pgid`, with its start time.
pub fn members(pgid: i32) -> Vec<(i32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| group(pid) == Some(pgid as u64) && !is_zombie(pid))
        .filter_map(|pid| Some((pid, start_time(pid)?)))
        .collect()
}

/// The highest `VmHWM` (peak resident set, KiB) among the group's processes.
pub fn peak_rss_kib(pgid: i32) -> u64 {
    members(pgid)
        .into_iter()
        .filter_map(|(pid, _)| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
}
