//! Running `ansible-playbook`: its own process group (so a timeout kills its forked
//! workers too), its stdout and stderr read line by line as they come, and a deadline.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::time::{sleep_until, Instant};

/// The longest line passed on whole; longer ones are passed in pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// How long output is still read once the process has exited (a process it left
/// behind may hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output.
    Out,
    /// Standard error.
    Err,
}

/// How the process ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status (`None` if it could not be waited for).
    pub status: Option<ExitStatus>,
    /// It was killed at the deadline.
    pub timed_out: bool,
}

/// Lines of a pipe, cancel-safe: the only await is `fill_buf`, and what it returns is
/// taken before the next await, so a `select!` that drops the future loses nothing.
struct Lines<R> {
    reader: BufReader<R>,
    pending: Vec<u8>,
    done: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader: BufReader::new(reader),
            pending: Vec::new(),
            done: false,
        }
    }

    fn take(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        line
    }

    async fn next(&mut self) -> Option<String> {
        loop {
            let buf = match self.reader.fill_buf().await {
                Ok(buf) => buf,
                Err(_) => &[],
            };
            if buf.is_empty() {
                self.done = true;
                return (!self.pending.is_empty()).then(|| self.take());
            }
            let room = MAX_LINE.saturating_sub(self.pending.len());
            match buf.iter().take(room).position(|b| *b == b'\n') {
                Some(pos) => {
                    self.pending.extend_from_slice(&buf[..pos]);
                    self.reader.consume(pos + 1);
                    if self.pending.last() == Some(&b'\r') {
                        self.pending.pop();
                    }
                    return Some(self.take());
                }
                None => {
                    let n = buf.len().min(room);
                    self.pending.extend_from_slice(&buf[..n]);
                    self.reader.consume(n);
                    if self.pending.len() >= MAX_LINE {
                        return Some(self.take());
                    }
                }
            }
        }
    }
}

/// Kills the process group on drop unless disarmed (the leader was reaped): a run
/// dropped half-way leaves no Ansible behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0 {
            // ESRCH (already gone) is the only expected error, and harmless.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `program args` in `cwd` with exactly `env`, passing every output line to
/// `on_line` as it comes; at `deadline` the whole process group is killed.
pub(crate) async fn run(
    program: &Path,
    args: &[String],
    env: &[(&'static str, String)],
    cwd: &Path,
    deadline: Instant,
    mut on_line: impl FnMut(Stream, &str),
) -> std::io::Result<Finished> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
    );
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other(
            "the process's output pipes are missing",
        ));
    };
    let mut out = Lines::new(stdout);
    let mut err = Lines::new(stderr);
    let mut status = None;
    let mut exited = false;
    let mut timed_out = false;
    let mut drain_until = deadline;
    loop {
        if exited && out.done && err.done {
            break;
        }
        tokio::select! {
            line = out.next(), if !out.done => {
                if let Some(line) = line { on_line(Stream::Out, &line) }
            }
            line = err.next(), if !err.done => {
                if let Some(line) = line { on_line(Stream::Err, &line) }
            }
            result = child.wait(), if !exited => {
                exited = true;
                status = result.ok();
                guard.0 = None;
                drain_until = Instant::now() + DRAIN;
            }
            _ = sleep_until(deadline), if !timed_out && !exited => {
                timed_out = true;
                guard.kill();
            }
            _ = sleep_until(drain_until), if exited => break,
        }
    }
    Ok(Finished { status, timed_out })
}
