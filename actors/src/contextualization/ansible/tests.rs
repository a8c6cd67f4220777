//! The pure generation: given RADL text and VMs, the files IM would write.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use infralog_events::domain::{CloudRef, FeatureFact, InfId, VmId};
use serde_json::json;

use super::galaxy::{self, Kind};
use super::output::Reader;
use super::plan::{File, Plan};
use super::process::Finished;
use super::runner::{assess, only_unreachable};
use super::{AnsibleJob, JobVm, PlanError};

const RADL: &str = r#"
network public (outbound = 'yes')
network private ()
system front (
  net_interface.0.connection = 'public' and
  net_interface.0.dns_name = 'front.example.org' and
  net_interface.1.connection = 'private' and
  disk.0.os.name = 'linux' and
  disk.0.applications contains (name = 'ansible.roles.geerlingguy.ntp' and version = '2.0') and
  disk.0.applications contains (name = 'ansible.collections.community.general,6.3.0')
)
system wn (
  net_interface.0.connection = 'private' and
  disk.0.os.name = 'linux'
)
configure front (
@begin
---
- tasks:
  - debug: msg=front
@end
)
configure wn (
@begin
---
- tasks:
  - debug: msg=wn
@end
)
deploy front 1
deploy wn 2
"#;

fn vm(id: u32, system: &str, ips: &[&str]) -> JobVm {
    JobVm {
        vm_id: VmId(id),
        system: system.into(),
        cloud: CloudRef {
            id: "docker".into(),
            kind: "Docker".into(),
            host: String::new(),
        },
        cloud_vm_id: format!("container{id}"),
        facts: ips
            .iter()
            .enumerate()
            .map(|(i, ip)| FeatureFact::text(format!("net_interface.{i}.ip"), *ip))
            .collect(),
        configure: true,
    }
}

fn job(radl: &str, vms: Vec<JobVm>) -> AnsibleJob {
    AnsibleJob {
        infrastructure: InfId::random(),
        run: 1,
        radl: radl.into(),
        vms,
        max_time: Duration::from_secs(60),
    }
}

fn three_vms() -> Vec<JobVm> {
    vec![
        vm(0, "front", &["8.8.8.8", "10.0.0.1"]),
        vm(1, "wn", &["10.0.0.2"]),
        vm(2, "wn", &["10.0.0.3"]),
    ]
}

fn files(plan: &Plan) -> Vec<File> {
    plan.files(&HashMap::new(), Path::new("/run"), None, None)
        .expect("files")
}

fn content<'a>(files: &'a [File], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| {
            panic!(
                "no {path} among {:?}",
                files.iter().map(|f| &f.path).collect::<Vec<_>>()
            )
        })
        .content
}

#[test]
fn the_inventory_has_ims_groups_hosts_and_variables() {
    let job = job(RADL, three_vms());
    let plan = Plan::new(&job).expect("plans");
    let doc = &plan.inventory.document;
    let all = &doc["all"];
    let vars = &all["vars"];
    assert_eq!(vars["IM_FRONT_NUM_VMS"], json!("1"));
    assert_eq!(vars["IM_WN_NUM_VMS"], json!("2"));
    assert_eq!(vars["IM_MASTER_HOSTNAME"], json!("front"));
    assert_eq!(vars["IM_MASTER_FQDN"], json!("front.example.org"));
    assert_eq!(vars["IM_MASTER_DOMAIN"], json!("example.org"));
    assert_eq!(
        vars["IM_INFRASTRUCTURE_ID"],
        json!(job.infrastructure.to_string())
    );
    assert!(vars.get("IM_INFRASTRUCTURE_AUTH").is_none());

    let front = &all["children"]["front"]["hosts"]["front"];
    assert_eq!(front["IM_NODE_HOSTNAME"], json!("front"));
    assert_eq!(front["IM_NODE_FQDN"], json!("front.example.org"));
    assert_eq!(front["IM_NODE_DOMAIN"], json!("example.org"));
    assert_eq!(front["IM_NODE_NUM"], json!("0"));
    assert_eq!(front["IM_NODE_VMID"], json!("container0"));
    assert_eq!(front["IM_NODE_PUBLIC_IP"], json!("8.8.8.8"));
    assert_eq!(front["IM_NODE_PRIVATE_IP"], json!("10.0.0.1"));
    assert_eq!(front["IM_NODE_NET_0_IP"], json!("8.8.8.8"));
    assert_eq!(front["IM_NODE_NET_0_FQDN"], json!("front.example.org"));
    assert_eq!(front["IM_NODE_NET_1_IP"], json!("10.0.0.1"));
    assert!(front.get("IM_NODE_NET_1_HOSTNAME").is_none());
    assert_eq!(front["IM_NODE_CLOUD_TYPE"], json!("Docker"));
    assert_eq!(
        front["IM_APP_ANSIBLE.ROLES.GEERLINGGUY.NTP_VERSION"],
        json!("2.0")
    );
    assert_eq!(
        front["ansible_connection"],
        json!("community.docker.docker_api")
    );
    assert_eq!(front["ansible_host"], json!("container0"));
    assert_eq!(
        front["ansible_docker_docker_host"],
        json!("unix:///var/run/docker.sock")
    );
    assert_eq!(
        front["ansible_python_interpreter"],
        json!("/usr/bin/python3")
    );

    let wn = &all["children"]["wn"]["hosts"];
    assert_eq!(
        wn.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["vnode-1".to_owned(), "vnode-2".to_owned()])
    );
    let node1 = &wn["vnode-1"];
    assert_eq!(node1["IM_NODE_HOSTNAME"], json!("vnode-1"));
    assert_eq!(node1["IM_NODE_FQDN"], json!("vnode-1.localdomain"));
    assert_eq!(node1["IM_NODE_PRIVATE_IP"], json!("10.0.0.2"));
    assert!(node1.get("IM_NODE_PUBLIC_IP").is_none());
    let no_windows = all["children"]["allnowindows"]["hosts"]
        .as_object()
        .expect("group");
    assert_eq!(no_windows.len(), 3);
}

#[test]
fn the_infrastructure_radl_is_radl_json_with_underscored_keys_and_no_recipes() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    let radl = &plan.inventory.document["all"]["vars"]["IM_INFRASTRUCTURE_RADL"];
    let elements = radl.as_array().expect("a list");
    let classes: Vec<&str> = elements
        .iter()
        .filter_map(|e| e["class"].as_str())
        .collect();
    assert_eq!(
        classes,
        ["network", "network", "system", "system", "deploy", "deploy"]
    );
    let front = elements
        .iter()
        .find(|e| e["id"] == json!("front"))
        .expect("front");
    assert_eq!(
        front["net_interface_0_dns_name"],
        json!("front.example.org")
    );
    assert!(front.get("net_interface.0.dns_name").is_none());
}

#[test]
fn etc_hosts_names_every_vm_as_im_writes_it() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    assert_eq!(
        plan.etc_hosts,
        "8.8.8.8 front.example.org front\r\n\
         10.0.0.2 vnode-1.localdomain vnode-1\r\n\
         10.0.0.3 vnode-2.localdomain vnode-2\r\n"
    );
    let files = files(&plan);
    let main = content(&files, "main_wn_task.yml");
    assert!(main.contains("hosts: vnode-1,vnode-2"), "{main}");
    assert!(
        main.contains("src={{ playbook_dir }}/etc_hosts dest=/etc/hosts.im"),
        "{main}"
    );
}

#[test]
fn recipes_run_in_ims_step_order_after_the_main_playbooks() {
    let radl = format!(
        "{RADL}\nconfigure a (\n@begin\n- tasks: [{{debug: msg=a}}]\n@end\n)\n\
         configure b (\n@begin\n- tasks: [{{debug: msg=b}}]\n@end\n)\n\
         contextualize (\n system wn configure b step 2\n system front configure a step 1\n \
         system wn configure wn step 1\n system front configure front\n system ghost configure a step 1\n)"
    );
    let plan = Plan::new(&job(&radl, three_vms())).expect("plans");
    let files = files(&plan);
    assert_eq!(
        content(&files, "site.yml"),
        "---\n- hosts: allnowindows\n\
         - import_playbook: main_front_task.yml\n\
         - import_playbook: main_wn_task.yml\n\
         - import_playbook: front_front_task.yml\n\
         - import_playbook: a_front_task.yml\n\
         - import_playbook: wn_wn_task.yml\n\
         - import_playbook: b_wn_task.yml\n"
    );
    assert!(content(&files, "b_wn_task.yml").contains("hosts: vnode-1,vnode-2"));
}

#[test]
fn without_contextualize_each_system_runs_its_own_configure() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    let files = files(&plan);
    assert_eq!(
        content(&files, "front_front_task.yml"),
        "---\n- become: true\n  gather_facts: false\n  hosts: front\n  tasks:\n  - debug: msg=front\n"
    );
    assert!(content(&files, "site.yml").ends_with("- import_playbook: wn_wn_task.yml\n"));
    // Recipes are also there as written, for recipes that include others.
    assert_eq!(
        content(&files, "wn.yml"),
        "\n---\n- tasks:\n  - debug: msg=wn\n\n\n"
    );
}

#[test]
fn recipes_merge_with_the_header_as_im_merge_recipes_does() {
    let header = super::playbook::header("h1,h2", false, false);
    let merged = super::playbook::merge_recipes(
        &header,
        "- hosts: extra\n  gather_facts: yes\n  vars: {x: 1}\n  tasks:\n  - shell: |\n      echo one\n      echo two\n",
    )
    .expect("merges")
    .expect("a play");
    assert_eq!(
        merged,
        "---\n- become: true\n  gather_facts: true\n  hosts:\n  - h1,h2\n  - extra\n  tasks:\n  - shell: 'echo one\n\n      echo two\n\n      '\n  vars:\n    x: 1\n"
    );
    let none = super::playbook::merge_recipes(&header, "just text").expect("loads");
    assert_eq!(none, None);
    assert!(super::playbook::merge_recipes(&header, "- [unclosed").is_err());
}

#[test]
fn only_the_vms_to_configure_are_aimed_at_and_disabled_systems_are_left_out() {
    let radl = RADL.replace(
        "configure wn (\n@begin\n---\n- tasks:\n  - debug: msg=wn\n@end\n)",
        "configure wn ()",
    );
    let mut vms = three_vms();
    vms[0].configure = false;
    vms.push(vm(3, "front", &["8.8.4.4"]));
    let plan = Plan::new(&job(&radl, vms)).expect("plans");
    assert_eq!(plan.to_configure(), vec![VmId(3)]);
    let children = &plan.inventory.document["all"]["children"];
    assert_eq!(children["wn"]["hosts"], json!({}));
    assert_eq!(
        plan.inventory.document["all"]["vars"]["IM_WN_NUM_VMS"],
        json!("2")
    );
    assert!(children["front"]["hosts"].get("front").is_some());
    // Two VMs ask for the name `front`: the second gets a name of its own.
    assert!(children["front"]["hosts"].get("vnode_3").is_some());
    let files = files(&plan);
    assert!(content(&files, "front_front_task.yml").contains("hosts: vnode_3\n"));
    assert!(!files.iter().any(|f| f.path.starts_with("main_wn")));
}

const VAULT_TEXT: &str = "$ANSIBLE_VAULT;1.1;AES256\n3031\n";

#[test]
fn vault_recipes_are_decrypted_merged_and_encrypted_again_with_the_systems_password() {
    let radl = RADL
        .replace(
            "disk.0.os.name = 'linux' and\n  disk.0.applications",
            "disk.0.os.name = 'linux' and vault.password = 's3cret' and\n  disk.0.applications",
        )
        .replace(
            "configure front (\n@begin\n---\n- tasks:\n  - debug: msg=front\n@end\n)",
            &format!("configure front (\n@begin\n{VAULT_TEXT}@end\n)"),
        );
    let plan = Plan::new(&job(&radl, three_vms())).expect("plans");
    assert_eq!(plan.secrets.len(), 1);
    assert_eq!(plan.secrets[0].label, "vault0");
    assert_eq!(
        plan.secrets[0].vault_id(Path::new("/run")),
        "vault0@/run/vault/vault0.pw"
    );
    assert!(!format!("{:?}", plan.secrets).contains("s3cret"));
    let encrypted = plan.encrypted_items();
    assert_eq!(encrypted.len(), 1);
    assert_eq!(plan.items[encrypted[0]].item.configure, "front");

    // Without the decrypted text there is nothing to merge.
    assert!(plan
        .files(&HashMap::new(), Path::new("/run"), None, None)
        .is_err());
    let decrypted = HashMap::from([(encrypted[0], "- tasks:\n  - debug: msg=secret\n".to_owned())]);
    let files = plan
        .files(&decrypted, Path::new("/run"), None, None)
        .expect("files");
    let playbook = files
        .iter()
        .find(|f| f.path == "front_front_task.yml")
        .expect("playbook");
    assert!(playbook.content.contains("debug: msg=secret"));
    assert_eq!(playbook.encrypt, Some(0));
    assert!(playbook.private);
    let password = files
        .iter()
        .find(|f| f.path == "vault/vault0.pw")
        .expect("password file");
    assert_eq!(password.content, "s3cret");
    assert!(password.private);
    // The wn system has no password: its playbook stays plain.
    let wn = files
        .iter()
        .find(|f| f.path == "wn_wn_task.yml")
        .expect("wn");
    assert_eq!(wn.encrypt, None);
}

#[test]
fn a_vault_recipe_on_a_system_without_password_is_refused() {
    let radl = RADL.replace(
        "configure front (\n@begin\n---\n- tasks:\n  - debug: msg=front\n@end\n)",
        &format!("configure front (\n@begin\n{VAULT_TEXT}@end\n)"),
    );
    let error = Plan::new(&job(&radl, three_vms())).expect_err("refused");
    assert_eq!(
        error,
        PlanError::VaultWithoutPassword {
            configure: "front".into(),
            system: "front".into()
        }
    );
    assert!(error.to_string().contains("has no vault.password"));
}

#[test]
fn roles_and_collections_are_found_locally_or_named_when_missing() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    let names: Vec<(Kind, &str, Option<&str>)> = plan
        .requirements
        .iter()
        .map(|r| (r.kind, r.name.as_str(), r.version.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            (Kind::Role, "geerlingguy.ntp", Some("2.0")),
            (Kind::Collection, "community.general", Some("6.3.0")),
        ]
    );
    let roles = tempfile::tempdir().expect("tempdir");
    let collections = tempfile::tempdir().expect("tempdir");
    let error = galaxy::check(
        &plan.requirements,
        Some(roles.path()),
        Some(collections.path()),
        &[],
    )
    .expect_err("both missing");
    assert!(
        error.contains(
            "Ansible role 'geerlingguy.ntp' (from ansible.roles.geerlingguy.ntp) not found"
        ),
        "{error}"
    );
    assert!(
        error.contains("Ansible collection 'community.general'"),
        "{error}"
    );
    std::fs::create_dir_all(roles.path().join("geerlingguy.ntp")).expect("role");
    std::fs::create_dir_all(
        collections
            .path()
            .join("ansible_collections/community/general"),
    )
    .expect("collection");
    galaxy::check(
        &plan.requirements,
        Some(roles.path()),
        Some(collections.path()),
        &[],
    )
    .expect("both found");
    // A bundled collection is found without a collections directory.
    let bundled = collections.path().join("ansible_collections");
    galaxy::check(&plan.requirements, Some(roles.path()), None, &[bundled]).expect("bundled");
    let error = galaxy::check(&plan.requirements, None, None, &[]).expect_err("no directories");
    assert!(error.contains("no roles directory configured"), "{error}");
}

#[test]
fn role_specs_follow_ims_forms() {
    let radl = "system s (\ndisk.0.applications contains (name = 'ansible.roles.https://github.com/grycap/ansible-role-docker.git,v1') and\ndisk.0.applications contains (name = 'ansible.roles.https://x/y.git|grycap.docker')\n)";
    let doc = infralog_radl::parse(radl).expect("parses");
    let found: Vec<(String, Option<String>)> = galaxy::requirements(&doc)
        .into_iter()
        .map(|r| (r.name, r.version))
        .collect();
    assert_eq!(
        found,
        [
            ("ansible-role-docker".to_owned(), Some("v1".to_owned())),
            ("grycap.docker".to_owned(), None)
        ]
    );
}

#[test]
fn ssh_clouds_connect_by_ip_with_the_vms_credentials() {
    let mut vms = three_vms();
    vms[1].cloud.kind = "OpenStack".into();
    vms[1].facts.push(FeatureFact::text(
        "disk.0.os.credentials.username",
        "cloudadm",
    ));
    vms[1].facts.push(FeatureFact::text(
        "disk.0.os.credentials.private_key",
        "KEY",
    ));
    vms[2].cloud.kind = "OpenStack".into();
    vms[2].facts.clear();
    let plan = Plan::new(&job(RADL, vms)).expect("plans");
    let node = &plan.inventory.document["all"]["children"]["wn"]["hosts"]["vnode-1"];
    assert_eq!(node["ansible_host"], json!("10.0.0.2"));
    assert_eq!(node["ansible_port"], json!(22));
    assert_eq!(node["ansible_user"], json!("cloudadm"));
    assert_eq!(
        node["ansible_ssh_private_key_file"],
        json!("{{ inventory_dir }}/keys/vnode-1.pem")
    );
    let files = files(&plan);
    let key = files
        .iter()
        .find(|f| f.path == "keys/vnode-1.pem")
        .expect("key");
    assert!(key.private && key.content == "KEY\n");
    // Without an IP the VM is out of the inventory, and fails.
    assert_eq!(plan.unreachable, vec![VmId(2)]);
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.contains("VM ID: 2 does not have an IP")));
}

#[test]
fn the_environment_is_minimal_and_the_config_quiet() {
    let env = super::config::environment(
        Path::new("/venv/bin/ansible-playbook"),
        Path::new("/work/run-1"),
        Some(Path::new("/roles")),
        None,
    );
    let keys: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
    assert!(keys.iter().all(|k| k.starts_with("ANSIBLE_")
        || ["PATH", "HOME", "LANG", "TMPDIR", "PYTHONUNBUFFERED"].contains(k)));
    let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("HOME"), Some("/work/run-1"));
    assert_eq!(get("PATH"), Some("/venv/bin:/usr/local/bin:/usr/bin:/bin"));
    assert_eq!(get("ANSIBLE_FORCE_COLOR"), Some("0"));
    assert_eq!(get("ANSIBLE_ROLES_PATH"), Some("/roles"));
    assert_eq!(get("ANSIBLE_COLLECTIONS_PATH"), None);
    let cfg = super::config::ansible_cfg(Path::new("/work/run-1"), None, None, 10);
    for line in [
        "forks = 10",
        "gathering = smart",
        "host_key_checking = False",
        "retry_files_enabled = False",
        "stdout_callback = default",
        "local_tmp = /work/run-1/tmp",
    ] {
        assert!(cfg.contains(line), "{line} in {cfg}");
    }
}

fn exit(code: i32) -> Option<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    Some(std::process::ExitStatus::from_raw(code << 8))
}

#[test]
fn a_failed_task_fails_its_vm_with_the_tasks_error() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    let mut reader = Reader::new(plan.hosts());
    for line in [
        "TASK [break] ***",
        r#"fatal: [vnode-2]: FAILED! => {"changed": false, "msg": "it broke"}"#,
        "PLAY RECAP ***",
        "front : ok=3 changed=1 unreachable=0 failed=0 skipped=0",
        "vnode-1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0",
        "vnode-2 : ok=2 changed=0 unreachable=0 failed=1 skipped=0",
    ] {
        reader.line(line);
    }
    let finished = Finished {
        status: exit(2),
        timed_out: false,
    };
    let report = assess(&plan, &reader, &finished, Duration::from_secs(60));
    assert!(!report.configured);
    assert_eq!(report.failed_vms, vec![VmId(2)]);
    assert_eq!(
        report.message.as_deref(),
        Some("VM 2 (vnode-2): task 'break' failed: it broke")
    );

    let timed_out = Finished {
        status: exit(9),
        timed_out: true,
    };
    let report = assess(&plan, &reader, &timed_out, Duration::from_secs(60));
    assert_eq!(report.failed_vms, vec![VmId(0), VmId(1), VmId(2)]);
    assert!(report
        .message
        .as_deref()
        .is_some_and(|m| m.contains("Max contextualization time passed (60 s)")));

    let mut broken = Reader::new(plan.hosts());
    broken.line("ERROR! the playbook could not be read");
    let report = assess(
        &plan,
        &broken,
        &Finished {
            status: exit(1),
            timed_out: false,
        },
        Duration::from_secs(60),
    );
    assert_eq!(report.failed_vms.len(), 3);
    assert_eq!(
        report.message.as_deref(),
        Some("ERROR! the playbook could not be read")
    );
}

#[test]
fn a_vm_of_an_undefined_system_is_a_planning_error() {
    let error = Plan::new(&job(RADL, vec![vm(0, "nope", &[])])).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "VM 0 runs system nope, which the RADL does not define"
    );
}

#[test]
fn only_a_run_whose_hosts_were_merely_unreachable_is_run_again() {
    let plan = Plan::new(&job(RADL, three_vms())).expect("plans");
    let done = Finished {
        status: exit(4),
        timed_out: false,
    };
    let recap = |lines: &[&str]| {
        let mut reader = Reader::new(plan.hosts());
        reader.line("PLAY RECAP ***");
        for line in lines {
            reader.line(line);
        }
        reader
    };
    let unreachable = recap(&[
        "vnode-1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0",
        "vnode-2 : ok=3 changed=1 unreachable=1 failed=0 skipped=0",
    ]);
    assert!(only_unreachable(&unreachable, &done));
    // A recipe's failure is the recipe's: running again would not fix it.
    let failed = recap(&[
        "vnode-1 : ok=3 changed=1 unreachable=0 failed=1 skipped=0",
        "vnode-2 : ok=3 changed=1 unreachable=1 failed=0 skipped=0",
    ]);
    assert!(!only_unreachable(&failed, &done));
    let clean = recap(&["vnode-1 : ok=3 changed=1 unreachable=0 failed=0 skipped=0"]);
    assert!(!only_unreachable(&clean, &done));
    let timed_out = Finished {
        status: exit(9),
        timed_out: true,
    };
    assert!(!only_unreachable(&unreachable, &timed_out));
    // A task that could not make its temporary directory never ran: the
    // connection failed (seen under load), so the run goes again.
    let mut lost_exec = Reader::new(plan.hosts());
    lost_exec.line("TASK [Gathering Facts] ***");
    lost_exec.line("fatal: [vnode-1]: FAILED! => {\"msg\": \"failed to resolve remote temporary directory from ansible-tmp-1: `( umask 77 && mkdir -p ... )` returned empty string\"}");
    lost_exec.line("PLAY RECAP ***");
    lost_exec.line("vnode-1 : ok=0 changed=0 unreachable=0 failed=1 skipped=0");
    lost_exec.line("vnode-2 : ok=3 changed=1 unreachable=0 failed=0 skipped=0");
    assert!(only_unreachable(&lost_exec, &done));
    // The same, beside a recipe's own failure: not run again.
    let mut mixed = Reader::new(plan.hosts());
    mixed.line("TASK [Gathering Facts] ***");
    mixed.line("fatal: [vnode-1]: FAILED! => {\"msg\": \"failed to resolve remote temporary directory from x\"}");
    mixed.line("TASK [install] ***");
    mixed.line("fatal: [vnode-2]: FAILED! => {\"msg\": \"No package matching 'nope'\"}");
    mixed.line("PLAY RECAP ***");
    mixed.line("vnode-1 : ok=0 changed=0 unreachable=0 failed=1 skipped=0");
    mixed.line("vnode-2 : ok=3 changed=1 unreachable=0 failed=1 skipped=0");
    assert!(!only_unreachable(&mixed, &done));
}
