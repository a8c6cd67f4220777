//! One run, end to end: plan, check the roles and collections, write the run directory
//! (removed at the end whatever happens: it holds vault passwords), decrypt and
//! encrypt vault recipes, run `ansible-playbook` streaming its output, and judge the
//! result from its `PLAY RECAP`.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use infralog_events::domain::VmId;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::config::environment;
use super::output::Reader;
use super::plan::{File, Plan};
use super::process::{self, Finished};
use super::{galaxy, vault, AnsibleJob, AnsibleSettings, Output, RunReport};

/// Sends whole lines of the run itself (not about one VM).
struct Say<'a>(&'a UnboundedSender<Output>);

impl Say<'_> {
    fn line(&self, vm_id: Option<VmId>, text: &str) {
        // A dropped receiver means nobody records the output any more; the run goes on.
        let _ = self.0.send(Output {
            vm_id,
            text: format!("{text}\n"),
        });
    }
}

/// The run directory; removed when dropped, so a cancelled or failed run leaves no
/// passwords behind.
struct RunDir(PathBuf, bool);

impl RunDir {
    async fn create(work_dir: &Path, job: &AnsibleJob, keep: bool) -> std::io::Result<RunDir> {
        tokio::fs::create_dir_all(work_dir).await?;
        let name = format!(
            "run-{}-{}-{:08x}",
            job.infrastructure,
            job.run,
            rand::random::<u32>()
        );
        let path = work_dir.join(name);
        let mut builder = tokio::fs::DirBuilder::new();
        builder.mode(0o700);
        builder.create(&path).await?;
        let dir = RunDir(path, keep);
        for sub in ["tmp", "vault", "keys"] {
            builder.create(dir.0.join(sub)).await?;
        }
        Ok(dir)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.1 {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.0.display(), error = %e, "could not remove an Ansible run directory");
            }
        }
    }
}

fn failure(say: &Say<'_>, failed_vms: Vec<VmId>, message: String) -> RunReport {
    say.line(None, &format!("ERROR: {message}"));
    RunReport {
        configured: false,
        failed_vms,
        message: Some(message),
    }
}

/// Runs one contextualization with `ansible-playbook`.
///
/// Every output line goes to `output` as it comes: Ansible's lines that name an
/// inventory host (`ok: [vnode-1]`, the result block that follows, its recap line) carry
/// that VM's id, the others (and the run's own progress and error lines) `None`. The
/// run ends when `ansible-playbook` exits, or at `job.max_time` (counted from the call),
/// when its whole process group is killed. A VM fails when a task failed on it or it was
/// unreachable (`failed=`/`unreachable=` in the recap), when the playbook could not run,
/// or at the timeout; `message` then says why (the task and its error). Errors found
/// before Ansible starts (a RADL that does not plan, a missing role, collection or
/// `ansible-playbook`) fail every VM the run configures.
pub async fn run(
    settings: &AnsibleSettings,
    job: AnsibleJob,
    output: UnboundedSender<Output>,
) -> RunReport {
    let deadline = Instant::now() + job.max_time;
    let say = Say(&output);
    say.line(None, "Generating YAML, hosts and inventory files.");
    let plan = match Plan::new(&job) {
        Ok(plan) => plan,
        Err(e) => {
            let vms = job
                .vms
                .iter()
                .filter(|v| v.configure)
                .map(|v| v.vm_id)
                .collect();
            return failure(&say, vms, format!("Error generating playbooks: {e}"));
        }
    };
    for warning in &plan.warnings {
        say.line(None, &format!("WARNING: {warning}"));
    }
    let to_configure = plan.to_configure();
    if to_configure.is_empty() {
        say.line(None, "No VM to configure.");
        return RunReport {
            configured: true,
            failed_vms: Vec::new(),
            message: None,
        };
    }
    let bundled = galaxy::bundled_collections(&settings.playbook);
    if let Err(missing) = galaxy::check(
        &plan.requirements,
        settings.roles_path.as_deref(),
        settings.collections_path.as_deref(),
        &bundled,
    ) {
        return failure(&say, to_configure, missing);
    }
    if !settings.playbook.is_file() {
        return failure(
            &say,
            to_configure,
            format!(
                "ansible-playbook not found at {}: install Ansible there (.ci/ansible) or configure its path",
                settings.playbook.display()
            ),
        );
    }
    let dir = match RunDir::create(&settings.work_dir, &job, settings.keep_runs).await {
        Ok(dir) => dir,
        Err(e) => {
            return failure(
                &say,
                to_configure,
                format!(
                    "cannot create a run directory in {}: {e}",
                    settings.work_dir.display()
                ),
            )
        }
    };
    let result = execute(settings, &plan, &dir.0, deadline, job.max_time, &say).await;
    drop(dir);
    match result {
        Ok(report) => {
            if let Some(message) = &report.message {
                say.line(None, &format!("ERROR: {message}"));
            }
            report
        }
        Err(message) => failure(&say, to_configure, message),
    }
}

async fn write(dir: &Path, file: &File) -> std::io::Result<()> {
    let mode = if file.private { 0o600 } else { 0o644 };
    let mut handle = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(dir.join(&file.path))
        .await?;
    handle.write_all(file.content.as_bytes()).await?;
    handle.flush().await?;
    // The mode of `open` applies only to new files.
    tokio::fs::set_permissions(dir.join(&file.path), std::fs::Permissions::from_mode(mode)).await
}

/// Writes the run directory, runs Ansible and judges it. `Err` is a failure of every VM.
async fn execute(
    settings: &AnsibleSettings,
    plan: &Plan,
    dir: &Path,
    deadline: Instant,
    max_time: Duration,
    say: &Say<'_>,
) -> Result<RunReport, String> {
    let roles = settings.roles_path.as_deref();
    let collections = settings.collections_path.as_deref();
    let env = environment(&settings.playbook, dir, roles, collections);
    let io = |what: &str, e: std::io::Error| format!("cannot write {what} of the run: {e}");
    for secret in &plan.secrets {
        let file = File {
            path: secret.file(),
            content: secret.password.clone(),
            private: true,
            encrypt: None,
        };
        write(dir, &file)
            .await
            .map_err(|e| io("a vault password file", e))?;
    }
    let ansible_vault = vault::program(&settings.playbook);
    let mut decrypted = HashMap::new();
    for index in plan.encrypted_items() {
        let item = &plan.items[index];
        let Some(secret) = item.secret.and_then(|s| plan.secrets.get(s)) else {
            continue;
        };
        let cipher = File {
            path: format!("vault/item{index}.vault"),
            content: format!("{}\n", item.recipe.trim()),
            private: true,
            encrypt: None,
        };
        write(dir, &cipher)
            .await
            .map_err(|e| io("a vault recipe", e))?;
        let plain = vault::decrypt(&ansible_vault, secret, &cipher.path, &env, dir, deadline)
            .await
            .map_err(|e| {
                format!(
                    "cannot decrypt the recipe {} with the vault.password of system {}: {e}",
                    item.item.configure, item.item.system
                )
            })?;
        decrypted.insert(index, plain);
    }
    let files = plan
        .files(&decrypted, dir, roles, collections)
        .map_err(|e| format!("Error generating playbooks: {e}"))?;
    for file in &files {
        write(dir, file).await.map_err(|e| io(&file.path, e))?;
        if let Some(secret) = file.encrypt.and_then(|s| plan.secrets.get(s)) {
            vault::encrypt(&ansible_vault, secret, &file.path, &env, dir, deadline)
                .await
                .map_err(|e| format!("cannot encrypt {} with Ansible Vault: {e}", file.path))?;
        }
    }
    let mut args = vec!["-i".to_owned(), "inventory.json".to_owned()];
    for secret in &plan.secrets {
        args.push("--vault-id".into());
        args.push(secret.vault_id(dir));
    }
    args.push("site.yml".into());
    let mut attempt = 1;
    loop {
        say.line(None, "Launching ansible-playbook.");
        let mut reader = Reader::new(plan.hosts());
        let finished = process::run(&settings.playbook, &args, &env, dir, deadline, |_, line| {
            let vm = reader.line(line);
            say.line(vm, line);
        })
        .await
        .map_err(|e| format!("cannot run {}: {e}", settings.playbook.display()))?;
        if attempt < ATTEMPTS && only_unreachable(&reader, &finished) && Instant::now() < deadline {
            // The Docker API's exec can answer nothing under load (community.docker
            // then reports the host unreachable, or a task fails to make its
            // temporary directory): a connection failure, not a recipe's; recipes
            // are idempotent, as IM expects them to be.
            attempt += 1;
            say.line(
                None,
                &format!("Some VMs could not be reached: running ansible-playbook again (attempt {attempt} of {ATTEMPTS})."),
            );
            tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            continue;
        }
        return Ok(assess(plan, &reader, &finished, max_time));
    }
}

/// Runs of `ansible-playbook` when hosts are only unreachable.
const ATTEMPTS: u32 = 3;
/// The pause before running again.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Whether the run failed only because hosts could not be reached: some host is
/// unreachable or failed, and every failure is the connection's (a task that
/// could not even make its temporary directory), never a recipe's.
pub(crate) fn only_unreachable(reader: &Reader, finished: &Finished) -> bool {
    let connection_failures = reader
        .failures
        .iter()
        .filter(|failure| is_connection_failure(&failure.error))
        .count();
    let failed: u32 = reader.recap.values().map(|r| r.failed).sum();
    !finished.timed_out
        && reader
            .recap
            .values()
            .any(|r| r.unreachable > 0 || r.failed > 0)
        && connection_failures == reader.failures.len()
        && failed as usize <= connection_failures
}

/// What Ansible says when a command sent through the connection came back with
/// nothing at all (the Docker API's exec under load), before any module ran.
fn is_connection_failure(error: &str) -> bool {
    const MARKERS: [&str; 2] = [
        "failed to resolve remote temporary directory",
        "Error while determining user and group ID",
    ];
    MARKERS.iter().any(|marker| error.contains(marker))
}

/// Judges a finished run from its recap, failures and exit status.
pub(crate) fn assess(
    plan: &Plan,
    reader: &Reader,
    finished: &Finished,
    max_time: Duration,
) -> RunReport {
    let mut failed: BTreeSet<VmId> = plan.unreachable.iter().copied().collect();
    let mut messages: Vec<String> = plan
        .unreachable
        .iter()
        .map(|vm| format!("VM {vm} does not have an IP: it cannot be configured"))
        .collect();
    let success = finished.status.is_some_and(|s| s.success());
    for node in plan.nodes.iter().filter(|n| n.configured_here()) {
        if !plan.inventory.hosts.contains(&node.host) {
            continue;
        }
        let vm = node.vm.vm_id;
        let recap = reader.recap.get(&node.host);
        let bad = finished.timed_out || recap.map_or(!success, |r| r.failed());
        if !bad {
            continue;
        }
        failed.insert(vm);
        if finished.timed_out {
            continue;
        }
        let mine: Vec<String> = reader
            .failures
            .iter()
            .filter(|f| f.host == node.host)
            .map(|f| {
                format!(
                    "VM {vm} ({}): task '{}' failed: {}",
                    node.host, f.task, f.error
                )
            })
            .collect();
        if !mine.is_empty() {
            messages.extend(mine);
        } else if recap.is_some_and(|r| r.unreachable > 0) {
            messages.push(format!("VM {vm} ({}): unreachable", node.host));
        }
    }
    if finished.timed_out {
        messages.push(format!(
            "Max contextualization time passed ({} s): ansible-playbook was stopped",
            max_time.as_secs()
        ));
    } else if !failed.is_empty() && messages.is_empty() {
        messages.extend(reader.errors.iter().cloned());
        if messages.is_empty() {
            messages.push(match finished.status {
                Some(status) => format!("ansible-playbook failed ({status})"),
                None => "ansible-playbook ended without an exit status".to_owned(),
            });
        }
    }
    RunReport {
        configured: failed.is_empty(),
        failed_vms: failed.into_iter().collect(),
        message: (!messages.is_empty()).then(|| messages.join("\n")),
    }
}
