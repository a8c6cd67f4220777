//! How Ansible runs: its configuration file and the minimal environment of its
//! processes (never the server's own environment, which may hold credentials).

use std::path::Path;

/// The `ansible.cfg` of a run: no host key checking, no retry files, no colour, the
/// default stdout callback (task names and the `PLAY RECAP` counts), temporary files
/// inside the run directory, and the local roles and collections.
/// The most hosts one run reaches at once.
const MAX_FORKS: usize = 50;

pub(crate) fn ansible_cfg(
    run_dir: &Path,
    roles_path: Option<&Path>,
    collections_path: Option<&Path>,
    hosts: usize,
) -> String {
    let mut cfg = String::from("[defaults]\n");
    let mut set = |key: &str, value: &str| cfg.push_str(&format!("{key} = {value}\n"));
    // Every host at once (Ansible's default is 5: ten VMs would go in two rounds per
    // task); bounded so a large infrastructure does not fork hundreds of workers.
    set("forks", &hosts.clamp(1, MAX_FORKS).to_string());
    // Facts gathered once per host and run: the systems' plays, which ask for facts
    // as IM's do, reuse those of the first play instead of gathering them again.
    set("gathering", "smart");
    set("host_key_checking", "False");
    set("retry_files_enabled", "False");
    set("nocolor", "True");
    set("force_color", "False");
    set("stdout_callback", "default");
    set("deprecation_warnings", "False");
    set("interpreter_python", "auto_silent");
    set("local_tmp", &run_dir.join("tmp").display().to_string());
    // Ansible's default, said explicitly: each remote user's own home.
    set("remote_tmp", "~/.ansible/tmp");
    if let Some(roles) = roles_path {
        set("roles_path", &roles.display().to_string());
    }
    if let Some(collections) = collections_path {
        set("collections_path", &collections.display().to_string());
    }
    // The collections bundled with Ansible (community.docker) are found on sys.path.
    set("collections_scan_sys_path", "True");
    cfg.push_str("\n[ssh_connection]\n");
    cfg.push_str(
        "ssh_args = -o ControlMaster=auto -o ControlPersist=60s \
         -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no\n",
    );
    cfg
}

/// The whole environment of Ansible's processes: a fixed `PATH` (with the directory of
/// the Ansible programs first), the run directory as `HOME`, a UTF-8 locale (Ansible
/// refuses others), the run's configuration and temporary directories.
pub(crate) fn environment(
    playbook: &Path,
    run_dir: &Path,
    roles_path: Option<&Path>,
    collections_path: Option<&Path>,
) -> Vec<(&'static str, String)> {
    let mut path = String::new();
    if let Some(bin) = playbook.parent().filter(|p| !p.as_os_str().is_empty()) {
        path.push_str(&bin.display().to_string());
        path.push(':');
    }
    path.push_str("/usr/local/bin:/usr/bin:/bin");
    let tmp = run_dir.join("tmp").display().to_string();
    let mut env = vec![
        ("PATH", path),
        ("HOME", run_dir.display().to_string()),
        ("LANG", "C.UTF-8".to_owned()),
        ("TMPDIR", tmp.clone()),
        (
            "ANSIBLE_CONFIG",
            run_dir.join("ansible.cfg").display().to_string(),
        ),
        ("ANSIBLE_FORCE_COLOR", "0".to_owned()),
        ("ANSIBLE_NOCOLOR", "1".to_owned()),
        ("ANSIBLE_HOST_KEY_CHECKING", "False".to_owned()),
        ("ANSIBLE_RETRY_FILES_ENABLED", "False".to_owned()),
        ("ANSIBLE_LOCAL_TEMP", tmp),
        ("ANSIBLE_REMOTE_TMP", "~/.ansible/tmp".to_owned()),
        // Lines reach the run as Ansible writes them, not when a buffer fills.
        ("PYTHONUNBUFFERED", "1".to_owned()),
    ];
    if let Some(roles) = roles_path {
        env.push(("ANSIBLE_ROLES_PATH", roles.display().to_string()));
    }
    if let Some(collections) = collections_path {
        env.push((
            "ANSIBLE_COLLECTIONS_PATH",
            collections.display().to_string(),
        ));
    }
    env
}
