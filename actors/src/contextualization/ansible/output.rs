//! Reading `ansible-playbook`'s output (the default callback) as it streams: which VM
//! a line is about, which tasks failed on which host and why, and the `PLAY RECAP`.

use std::collections::HashMap;

use infralog_events::domain::VmId;

/// The `PLAY RECAP` counts of one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recap {
    /// `ok=`
    pub ok: u32,
    /// `changed=`
    pub changed: u32,
    /// `unreachable=`
    pub unreachable: u32,
    /// `failed=`
    pub failed: u32,
}

impl Recap {
    /// Whether the host failed a task or could not be reached.
    pub fn failed(&self) -> bool {
        self.failed > 0 || self.unreachable > 0
    }
}

/// A task that failed on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The inventory host.
    pub host: String,
    /// The task's name as the `TASK [...]` line shows it.
    pub task: String,
    /// Its error (`msg`, with `stderr` when there is one).
    pub error: String,
}

/// The longest error kept from one failed task.
const MAX_ERROR: usize = 2_000;

/// Follows the output line by line.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    hosts: HashMap<String, VmId>,
    task: String,
    /// The host of an open `=> {` block, whose lines until `}` are about it.
    block: Option<VmId>,
    in_recap: bool,
    /// The recap of each host.
    pub recap: HashMap<String, Recap>,
    /// The failures seen, in order (ignored ones removed).
    pub failures: Vec<Failure>,
    /// `ERROR!` lines (a playbook that does not load, a missing file…).
    pub errors: Vec<String>,
}

impl Reader {
    /// A reader for an inventory whose hosts are these VMs.
    pub fn new(hosts: impl IntoIterator<Item = (String, VmId)>) -> Self {
        Reader {
            hosts: hosts.into_iter().collect(),
            ..Reader::default()
        }
    }

    /// Takes one line (without its newline) and says which VM it is about.
    pub fn line(&mut self, line: &str) -> Option<VmId> {
        if let Some(vm) = self.block {
            if line == "}" {
                self.block = None;
            }
            return Some(vm);
        }
        if let Some(name) = task_name(line) {
            self.task = name.to_owned();
            self.in_recap = false;
            return None;
        }
        if line.starts_with("PLAY RECAP") {
            self.in_recap = true;
            return None;
        }
        if line.starts_with("PLAY [") {
            self.in_recap = false;
            return None;
        }
        if line.starts_with("ERROR!") || line.starts_with("[ERROR]") {
            self.errors.push(line.to_owned());
            return None;
        }
        if line.trim() == "...ignoring" {
            self.failures.pop();
            return None;
        }
        if self.in_recap {
            if let Some((host, recap)) = recap_line(line) {
                let vm = self.hosts.get(host).copied();
                self.recap.insert(host.to_owned(), recap);
                return vm;
            }
        }
        let (status, host, rest) = status_line(line)?;
        let vm = self.hosts.get(host).copied();
        if matches!(status, "fatal" | "failed") {
            self.failures.push(Failure {
                host: host.to_owned(),
                task: self.task.clone(),
                error: error_of(rest),
            });
        }
        if rest.trim_end().ends_with("=> {") {
            self.block = vm;
        }
        vm
    }
}

/// `TASK [name] ****` → `name`.
fn task_name(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("TASK [")
        .or_else(|| line.strip_prefix("RUNNING HANDLER ["))?;
    let end = rest
        .rfind("] ")
        .or_else(|| rest.strip_suffix(']').map(str::len))?;
    Some(&rest[..end])
}

/// `status: [host] rest` or `status: [host -> delegate] rest` → (status, host, rest).
fn status_line(line: &str) -> Option<(&str, &str, &str)> {
    let (status, rest) = line.split_once(": [")?;
    if status.is_empty() || !status.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let (inside, rest) = rest.split_once(']')?;
    let host = inside.split(" -> ").next()?;
    Some((status, host, rest))
}

/// `host   : ok=1 changed=0 unreachable=0 failed=0 …`.
fn recap_line(line: &str) -> Option<(&str, Recap)> {
    let (host, counts) = line.split_once(" : ")?;
    let host = host.trim();
    if host.is_empty() || host.contains(' ') {
        return None;
    }
    let mut recap = Recap::default();
    let mut seen = false;
    for part in counts.split_whitespace() {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        let Ok(value) = value.parse::<u32>() else {
            continue;
        };
        seen = true;
        match key {
            "ok" => recap.ok = value,
            "changed" => recap.changed = value,
            "unreachable" => recap.unreachable = value,
            "failed" => recap.failed = value,
            _ => {}
        }
    }
    seen.then_some((host, recap))
}

/// The error of a `FAILED! => {json}` result: its `msg` (and `stderr`), else the
/// result itself, cut to a bounded length.
fn error_of(rest: &str) -> String {
    let json = rest.split_once("=> ").map(|(_, json)| json.trim());
    let parsed = json.and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
    let mut error = match &parsed {
        Some(result) => {
            let field = |key: &str| {
                result
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            match (field("msg"), field("stderr")) {
                (Some(msg), Some(stderr)) => format!("{msg}: {stderr}"),
                (Some(msg), None) => msg.to_owned(),
                (None, Some(stderr)) => stderr.to_owned(),
                (None, None) => json.unwrap_or(rest).to_owned(),
            }
        }
        None => json.unwrap_or(rest).trim().to_owned(),
    };
    if error.len() > MAX_ERROR {
        let mut cut = MAX_ERROR;
        while !error.is_char_boundary(cut) {
            cut -= 1;
        }
        error.truncate(cut);
        error.push('…');
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> Reader {
        Reader::new([
            ("vnode-1".to_owned(), VmId(1)),
            ("vnode-2".to_owned(), VmId(2)),
        ])
    }

    #[test]
    fn lines_naming_a_host_and_their_result_blocks_are_attributed() {
        let mut r = reader();
        assert_eq!(r.line("TASK [debug] ****"), None);
        assert_eq!(r.line("ok: [vnode-1] => {"), Some(VmId(1)));
        assert_eq!(r.line("    \"msg\": \"hi\""), Some(VmId(1)));
        assert_eq!(r.line("}"), Some(VmId(1)));
        assert_eq!(r.line("changed: [vnode-2 -> localhost]"), Some(VmId(2)));
        assert_eq!(r.line("skipping: [elsewhere]"), None);
        assert_eq!(r.line("[WARNING]: something"), None);
        assert_eq!(r.line(""), None);
    }

    #[test]
    fn failures_keep_their_task_and_message_unless_ignored() {
        let mut r = reader();
        r.line("TASK [break it] *****");
        let vm = r.line(
            r#"fatal: [vnode-2]: FAILED! => {"changed": false, "msg": "boom", "stderr": "bad thing"}"#,
        );
        assert_eq!(vm, Some(VmId(2)));
        r.line("TASK [try] *****");
        r.line(r#"fatal: [vnode-1]: FAILED! => {"msg": "ignored one"}"#);
        r.line("...ignoring");
        assert_eq!(
            r.failures,
            vec![Failure {
                host: "vnode-2".into(),
                task: "break it".into(),
                error: "boom: bad thing".into()
            }]
        );
    }

    #[test]
    fn the_recap_gives_each_hosts_counts() {
        let mut r = reader();
        r.line("PLAY RECAP *********");
        let vm = r.line("vnode-1                    : ok=3    changed=1    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0   ");
        assert_eq!(vm, Some(VmId(1)));
        r.line("vnode-2                    : ok=2    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0");
        assert_eq!(
            r.recap["vnode-1"],
            Recap {
                ok: 3,
                changed: 1,
                unreachable: 0,
                failed: 1
            }
        );
        assert!(r.recap["vnode-1"].failed() && r.recap["vnode-2"].failed());
    }

    #[test]
    fn errors_of_ansible_itself_are_kept() {
        let mut r = reader();
        r.line("ERROR! the role 'x' was not found");
        assert_eq!(
            r.errors,
            vec!["ERROR! the role 'x' was not found".to_owned()]
        );
    }
}
