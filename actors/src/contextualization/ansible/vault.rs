//! Ansible Vault, as IM uses it: a recipe written as `$ANSIBLE_VAULT;…` text is
//! decrypted with its system's `vault.password`, merged under IM's header, and the
//! playbook written encrypted again; `ansible-playbook` gets the password files.
//!
//! Decryption and encryption are `ansible-vault`'s (next to `ansible-playbook`), so the
//! cipher is exactly Ansible's.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use tokio::time::Instant;

/// Whether a recipe is vault-encrypted text (IM: `recipes.strip().startswith(…)`).
pub(crate) fn is_encrypted(recipe: &str) -> bool {
    recipe.trim().starts_with("$ANSIBLE_VAULT")
}

/// One vault password of a run, under a label (`--vault-id label@file`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    /// The vault id label (`vault0`, `vault1`…).
    pub label: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// Its password file, relative to the run directory.
    pub fn file(&self) -> String {
        format!("vault/{}.pw", self.label)
    }

    /// The `--vault-id` value for a run in `run_dir`.
    pub fn vault_id(&self, run_dir: &Path) -> String {
        format!("{}@{}", self.label, run_dir.join(self.file()).display())
    }
}

/// Why `ansible-vault` did not do its work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VaultError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran out of the run's time.
    #[error("ansible-vault did not finish within the contextualization's maximum time")]
    Timeout,
    /// It failed.
    #[error("{0}")]
    Failed(String),
}

/// `ansible-vault`, next to `ansible-playbook`.
pub(crate) fn program(playbook: &Path) -> PathBuf {
    playbook.with_file_name("ansible-vault")
}

/// Runs `ansible-vault` with the run's environment; its stdout on success.
async fn vault(
    program: &Path,
    args: &[&str],
    env: &[(&'static str, String)],
    cwd: &Path,
    deadline: Instant,
) -> Result<String, VaultError> {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|source| VaultError::Start {
        program: program.display().to_string(),
        source,
    })?;
    let output = tokio::time::timeout_at(deadline, child.wait_with_output())
        .await
        .map_err(|_| VaultError::Timeout)?
        .map_err(|source| VaultError::Start {
            program: program.display().to_string(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no error output")
            .to_owned();
        Err(VaultError::Failed(format!(
            "ansible-vault failed ({}): {reason}",
            output.status
        )))
    }
}

/// Decrypts the vault text in `file` (relative to `run_dir`) with `secret`.
pub(crate) async fn decrypt(
    program: &Path,
    secret: &Secret,
    file: &str,
    env: &[(&'static str, String)],
    run_dir: &Path,
    deadline: Instant,
) -> Result<String, VaultError> {
    let vault_id = secret.vault_id(run_dir);
    let args = ["decrypt", "--vault-id", &vault_id, "--output", "-", file];
    vault(program, &args, env, run_dir, deadline).await
}

/// Encrypts `file` (relative to `run_dir`) in place with `secret`.
pub(crate) async fn encrypt(
    program: &Path,
    secret: &Secret,
    file: &str,
    env: &[(&'static str, String)],
    run_dir: &Path,
    deadline: Instant,
) -> Result<(), VaultError> {
    let vault_id = secret.vault_id(run_dir);
    let args = [
        "encrypt",
        "--vault-id",
        &vault_id,
        "--encrypt-vault-id",
        &secret.label,
        file,
    ];
    vault(program, &args, env, run_dir, deadline)
        .await
        .map(|_| ())
}
