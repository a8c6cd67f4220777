//! Real contextualization runs: `ansible-playbook` (from `.ci/ansible`) configuring
//! containers of the test image through the Docker API. Every container and network
//! carries `infralog.test=<id>` and is removed at the end, even when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infralog_actors::contextualization::ansible::{
    run, AnsibleJob, AnsibleSettings, JobVm, Output, RunReport,
};
use infralog_events::domain::{CloudRef, FeatureFact, InfId, VmId};
use tokio::sync::mpsc::unbounded_channel;

const IMAGE: &str = "infralog-test/debian:bookworm";

/// The `ansible-playbook` of `.ci/ansible`.
fn playbook() -> PathBuf {
    if let Ok(path) = std::env::var("INFRALOG_ANSIBLE_PLAYBOOK") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "INFRALOG_ANSIBLE_PLAYBOOK={} does not exist",
            path.display()
        );
        return path;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/ansible/bin/ansible-playbook");
    assert!(
        path.is_file(),
        "no ansible-playbook: run .ci/ansible (it installs {}) or set INFRALOG_ANSIBLE_PLAYBOOK",
        path.display()
    );
    path
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Containers of one test on a network of their own; all removed on drop.
struct Containers {
    label: String,
    network: String,
}

/// One started container.
struct Container {
    id: String,
    ip: String,
}

impl Containers {
    fn new(test: &str) -> Containers {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!("ansible-{test}-{}-{nanos}", std::process::id());
        let images = docker(&["images", "-q", IMAGE]);
        assert!(
            !images.is_empty(),
            "the image {IMAGE} is missing: run .ci/docker-test-image"
        );
        let containers = Containers {
            label: format!("infralog.test={id}"),
            network: id,
        };
        docker(&[
            "network",
            "create",
            "--label",
            &containers.label,
            &containers.network,
        ]);
        containers
    }

    fn start(&self, name: &str) -> Container {
        let name = format!("{}-{name}", self.network);
        let id = docker(&[
            "run",
            "-d",
            "--label",
            &self.label,
            "--network",
            &self.network,
            "--name",
            &name,
            IMAGE,
        ]);
        let ip = docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &id,
        ]);
        Container { id, ip }
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let networks = docker(&["network", "ls", "-q", "--filter", &filter]);
        for id in networks.split_whitespace() {
            let _ = Command::new("docker").args(["network", "rm", id]).output();
        }
    }
}

fn exec(container: &Container, command: &str) -> String {
    docker(&["exec", &container.id, "sh", "-c", command])
}

fn job_vm(id: u32, system: &str, container: &Container, name: Option<&str>) -> JobVm {
    let mut facts = vec![FeatureFact::text("net_interface.0.ip", &container.ip)];
    if let Some(name) = name {
        facts.push(FeatureFact::text("net_interface.0.dns_name", name));
    }
    JobVm {
        vm_id: VmId(id),
        system: system.into(),
        cloud: CloudRef {
            id: "docker".into(),
            kind: "Docker".into(),
            host: "unix:///var/run/docker.sock".into(),
        },
        cloud_vm_id: container.id.clone(),
        facts,
        configure: true,
    }
}

fn settings(work: &Path) -> AnsibleSettings {
    AnsibleSettings {
        playbook: playbook(),
        work_dir: work.join("runs"),
        roles_path: Some(work.join("roles")),
        collections_path: None,
        keep_runs: false,
    }
}

async fn run_job(
    settings: &AnsibleSettings,
    radl: &str,
    vms: Vec<JobVm>,
    max_time: Duration,
) -> (RunReport, Vec<Output>) {
    let job = AnsibleJob {
        infrastructure: InfId::random(),
        run: 1,
        radl: radl.into(),
        vms,
        max_time,
    };
    let (tx, mut rx) = unbounded_channel();
    let report = run(settings, job, tx).await;
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    (report, lines)
}

fn text(lines: &[Output]) -> String {
    lines.iter().map(|o| o.text.as_str()).collect()
}

const STEPS_RADL: &str = r#"
network private ()
system front (
  net_interface.0.connection = 'private'
)
system wn (
  net_interface.0.connection = 'private' and
  net_interface.0.dns_name = 'wn-#N#'
)
configure stepone (
@begin
---
- tasks:
  - shell: date +%s%N
    register: stamp
  - copy:
      dest: /tmp/step1
      content: "{{ stamp.stdout }}"
  - set_fact:
      front_stamp: "{{ stamp.stdout }}"
  - debug:
      msg: "FRONT_NAME={{ IM_INFRASTRUCTURE_RADL | selectattr('class', 'equalto', 'system') | selectattr('id', 'equalto', 'wn') | map(attribute='net_interface_0_dns_name') | first }}"
@end
)
configure steptwo (
@begin
---
- tasks:
  - copy:
      dest: /tmp/step2
      content: "{{ hostvars['front'].front_stamp }} {{ IM_NODE_HOSTNAME }} {{ IM_NODE_NUM }} {{ IM_MASTER_FQDN }}"
@end
)
contextualize (
  system wn configure steptwo step 2
  system front configure stepone step 1
)
deploy front 1
deploy wn 2
"#;

#[tokio::test]
async fn recipes_run_in_step_order_with_ims_variables_and_etc_hosts() {
    let containers = Containers::new("steps");
    let front = containers.start("front");
    let wn1 = containers.start("wn1");
    let wn2 = containers.start("wn2");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = settings(work.path());
    let vms = vec![
        job_vm(0, "front", &front, Some("front")),
        job_vm(1, "wn", &wn1, None),
        job_vm(2, "wn", &wn2, None),
    ];
    let (report, lines) = run_job(&settings, STEPS_RADL, vms, Duration::from_secs(300)).await;
    let all = text(&lines);
    assert!(report.configured, "{report:?}\n{all}");
    assert_eq!(report.failed_vms, Vec::<VmId>::new());
    assert!(lines
        .iter()
        .all(|l| l.text.ends_with('\n') && l.text.matches('\n').count() == 1));

    // Step 2 read what step 1 set on the front, so it ran after it.
    let stamp = exec(&front, "cat /tmp/step1");
    assert_eq!(
        exec(&wn1, "cat /tmp/step2"),
        format!("{stamp} wn-1 1 front.localdomain")
    );
    assert_eq!(
        exec(&wn2, "cat /tmp/step2"),
        format!("{stamp} wn-2 2 front.localdomain")
    );
    // IM's /etc/hosts: every VM's name on every VM.
    let hosts = exec(&wn2, "cat /etc/hosts");
    assert!(
        hosts.contains(&format!("{} front.localdomain front", front.ip)),
        "{hosts}"
    );
    assert!(
        hosts.contains(&format!("{} wn-1.localdomain wn-1", wn1.ip)),
        "{hosts}"
    );

    // The debug of a variable computed from the RADL, attributed to the front VM.
    let debug = lines
        .iter()
        .find(|l| l.text.contains("\"msg\": \"FRONT_NAME=wn-#N#\""))
        .unwrap_or_else(|| panic!("no debug line in\n{all}"));
    assert_eq!(debug.vm_id, Some(VmId(0)));
    assert!(lines
        .iter()
        .any(|l| l.vm_id == Some(VmId(2)) && l.text.starts_with("changed: [wn-2]")));
    assert!(all.contains("PLAY RECAP") && all.contains("ok="), "{all}");
    // The run directory (with its vault and key files) is gone.
    let left: Vec<_> = std::fs::read_dir(&settings.work_dir)
        .expect("work dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn encrypt(playbook: &Path, dir: &Path, password: &str, text: &str) -> String {
    let secret = dir.join("pw");
    let file = dir.join("recipe");
    std::fs::write(&secret, password).expect("password");
    std::fs::write(&file, text).expect("recipe");
    let vault = playbook.with_file_name("ansible-vault");
    let out = Command::new(vault)
        .args(["encrypt", "--vault-password-file"])
        .arg(&secret)
        .arg(&file)
        .env("LANG", "C.UTF-8")
        .output()
        .expect("ansible-vault runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&file).expect("encrypted")
}

#[tokio::test]
async fn vault_recipes_and_local_roles_run() {
    let containers = Containers::new("vault");
    let node = containers.start("node");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = settings(work.path());
    let role = work.path().join("roles/infralog.marker/tasks");
    std::fs::create_dir_all(&role).expect("role dir");
    std::fs::write(
        role.join("main.yml"),
        "- copy: dest=/tmp/role-ran content=role-ok\n",
    )
    .expect("role");
    let recipe = "---\n- roles:\n  - infralog.marker\n  tasks:\n  - copy: dest=/tmp/vault-ran content=vault-ok\n";
    let cipher = encrypt(&settings.playbook, work.path(), "s3cret-pw", recipe);
    assert!(cipher.starts_with("$ANSIBLE_VAULT"));
    let radl = format!(
        "system node (\nnet_interface.0.connection = 'net' and\nvault.password = 's3cret-pw' and\n\
         disk.0.applications contains (name = 'ansible.roles.infralog.marker')\n)\n\
         network net ()\nconfigure node (\n@begin\n{cipher}@end\n)\ndeploy node 1"
    );
    let vms = vec![job_vm(0, "node", &node, Some("node"))];
    let (report, lines) = run_job(&settings, &radl, vms, Duration::from_secs(300)).await;
    let all = text(&lines);
    assert!(report.configured, "{report:?}\n{all}");
    assert_eq!(exec(&node, "cat /tmp/vault-ran"), "vault-ok");
    assert_eq!(exec(&node, "cat /tmp/role-ran"), "role-ok");
    assert!(!all.contains("s3cret-pw"));
}

#[tokio::test]
async fn failures_timeouts_and_missing_pieces_are_reported() {
    let containers = Containers::new("fail");
    let node = containers.start("node");
    let work = tempfile::tempdir().expect("tempdir");
    let settings = settings(work.path());
    std::fs::create_dir_all(work.path().join("roles")).expect("roles");
    let radl = |recipe: &str, extra: &str| {
        format!(
            "network net ()\nsystem node (\nnet_interface.0.connection = 'net'{extra}\n)\n\
             configure node (\n@begin\n---\n- tasks:\n{recipe}@end\n)\ndeploy node 1"
        )
    };
    let vms = || vec![job_vm(4, "node", &node, Some("node"))];

    // A failing task: the VM is unconfigured and the task's error is the message.
    let failing = radl(
        "  - name: break here\n    fail:\n      msg: it broke on purpose\n",
        "",
    );
    let (report, lines) = run_job(&settings, &failing, vms(), Duration::from_secs(300)).await;
    let all = text(&lines);
    assert!(!report.configured, "{all}");
    assert_eq!(report.failed_vms, vec![VmId(4)]);
    assert_eq!(
        report.message.as_deref(),
        Some("VM 4 (node): task 'break here' failed: it broke on purpose")
    );
    let fatal = lines
        .iter()
        .find(|l| l.text.starts_with("fatal: [node]"))
        .expect("fatal line");
    assert_eq!(fatal.vm_id, Some(VmId(4)));

    // A missing role fails before Ansible runs, naming it.
    let missing = radl(
        "  - debug: msg=never\n",
        " and\ndisk.0.applications contains (name = 'ansible.roles.no.such.role')",
    );
    let (report, lines) = run_job(&settings, &missing, vms(), Duration::from_secs(300)).await;
    assert!(!report.configured);
    assert_eq!(report.failed_vms, vec![VmId(4)]);
    let message = report.message.unwrap_or_default();
    assert!(message.contains("Ansible role 'no.such.role'"), "{message}");
    assert!(!text(&lines).contains("PLAY"));

    // The maximum time kills the run.
    let slow = radl("  - shell: sleep 120\n", "");
    let started = Instant::now();
    let (report, _) = run_job(&settings, &slow, vms(), Duration::from_secs(8)).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(!report.configured);
    let message = report.message.unwrap_or_default();
    assert!(
        message.contains("Max contextualization time passed (8 s)"),
        "{message}"
    );

    // No ansible-playbook: a clear failure.
    let absent = AnsibleSettings {
        playbook: work.path().join("no/ansible-playbook"),
        ..settings.clone()
    };
    let ok = radl("  - debug: msg=hi\n", "");
    let (report, _) = run_job(&absent, &ok, vms(), Duration::from_secs(60)).await;
    assert!(!report.configured);
    assert!(report
        .message
        .unwrap_or_default()
        .starts_with("ansible-playbook not found at"));
    assert!(std::fs::read_dir(&settings.work_dir)
        .expect("work dir")
        .next()
        .is_none());
}
