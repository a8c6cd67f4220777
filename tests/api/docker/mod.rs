//! The Docker cloud and real contextualization, black-box against the machine's
//! Docker Engine: containers as VMs, networks, volumes, Ansible runs, observation
//! of changes made outside, and launches that survive `kill -9`.
//!
//! Every server here labels what it creates with `infralog.test=<run id>` (its
//! `--docker-label`), and a [`Labelled`] guard removes everything with that label
//! when the test ends, passed or failed. The image `infralog-test/debian:bookworm`
//! must exist (`.ci/docker-test-image` builds it), and Ansible must be installed
//! (`.ci/ansible`); `.ci/test` does both before running the tests.

mod batch;
mod cloud;
mod contextualization;
mod crash;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use infralog::app::Settings;
use infralog_actors::contextualization::ansible::AnsibleSettings;

use crate::harness::*;

/// The image the tests boot.
pub const IMAGE: &str = "infralog-test/debian:bookworm";

/// IM credentials for `user` and the local Docker Engine.
pub fn docker_auth(user: &str) -> String {
    format!(
        "id = im; type = InfrastructureManager; username = {user}; password = pass-{user}\\nid = docker; type = Docker; host = unix:///var/run/docker.sock"
    )
}

/// Everything a test made in Docker, found by its label and removed on drop.
pub struct Labelled {
    pub label: String,
}

impl Labelled {
    /// A fresh label for one test (`infralog.test=<name>-<random>`), after
    /// checking that the engine and the test image are there.
    pub fn new(name: &str) -> Labelled {
        let image = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
        assert!(
            image.status.success(),
            "the test image {IMAGE} is missing: run .ci/docker-test-image ({})",
            String::from_utf8_lossy(&image.stderr)
        );
        let suffix: u64 = rand::random();
        Labelled {
            label: format!("infralog.test={name}-{suffix:016x}"),
        }
    }

    /// `--docker-label` for a child server.
    pub fn flag(&self) -> String {
        format!("--docker-label={}", self.label)
    }

    /// The ids of the `kind` objects (`container`, `network`, `volume`, `image`)
    /// carrying this label and `extra` filters.
    pub fn ids(&self, kind: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = match kind {
            "container" => vec!["ps".into(), "-aq".into()],
            "image" => vec!["images".into(), "-q".into()],
            other => vec![other.into(), "ls".into(), "-q".into()],
        };
        args.push("--filter".into());
        args.push(format!("label={}", self.label));
        for filter in extra {
            args.push("--filter".into());
            args.push((*filter).into());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = docker(&refs);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// The containers of one infrastructure.
    pub fn containers_of(&self, inf: &str) -> Vec<String> {
        self.ids(
            "container",
            &[&format!("label=infralog.infrastructure={inf}")],
        )
    }

    /// Objects of `inf` still in Docker: (kind, id).
    pub fn leftovers_of(&self, inf: &str) -> Vec<(String, String)> {
        let filter = format!("label=infralog.infrastructure={inf}");
        ["container", "network", "volume"]
            .iter()
            .flat_map(|kind| {
                self.ids(kind, &[&filter])
                    .into_iter()
                    .map(|id| (kind.to_string(), id))
            })
            .collect()
    }
}

impl Drop for Labelled {
    fn drop(&mut self) {
        for kind in ["container", "network", "volume", "image"] {
            for id in self.ids(kind, &[]) {
                let _ = match kind {
                    "container" => docker(&["rm", "-f", "-v", &id]),
                    "image" => docker(&["rmi", "-f", &id]),
                    other => docker(&[other, "rm", &id]),
                };
            }
        }
    }
}

/// Runs the docker CLI (the tests' own look at the engine).
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

/// `docker inspect --format FORMAT ID`, trimmed.
pub fn inspect(id: &str, format: &str) -> String {
    let output = docker(&["inspect", "--format", format, id]);
    assert!(
        output.status.success(),
        "docker inspect {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `docker exec ID sh -c SCRIPT`: (exit success, stdout).
pub fn exec(id: &str, script: &str) -> (bool, String) {
    let output = docker(&["exec", id, "sh", "-c", script]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The `ansible-playbook` the tests run: `INFRALOG_ANSIBLE_PLAYBOOK`, or the one
/// `.ci/ansible` installs into `.tools/`.
pub fn ansible_playbook() -> PathBuf {
    let path = std::env::var_os("INFRALOG_ANSIBLE_PLAYBOOK")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/ansible/bin/ansible-playbook")
        });
    assert!(
        path.is_file(),
        "no ansible-playbook at {}: run .ci/ansible (or set INFRALOG_ANSIBLE_PLAYBOOK)",
        path.display()
    );
    path
}

/// Settings for an in-process server that deploys to Docker with `labelled`'s
/// label and runs real Ansible.
pub fn docker_settings(data_dir: &std::path::Path, labelled: &Labelled) -> Settings {
    let mut settings = settings(data_dir);
    let (key, value) = labelled.label.split_once('=').expect("a KEY=VALUE label");
    settings.docker_labels = vec![(key.to_owned(), value.to_owned())];
    settings.actors.ansible = Some(AnsibleSettings {
        playbook: ansible_playbook(),
        work_dir: data_dir.join("ansible-runs"),
        roles_path: None,
        collections_path: None,
        keep_runs: false,
    });
    settings.actors.observe_interval = Duration::from_millis(500);
    settings
}

/// Polls `GET path` until its text satisfies `done` (or panics after `timeout`).
pub fn wait_until(
    server: &impl Api,
    user: &str,
    path: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = server.get(path).auth(&docker_auth(user)).send();
        let text = answer.text();
        if answer.status == 200 && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} still answers {} {text:?} after {timeout:?}",
            answer.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls the aggregated state until it is `wanted`; on a timeout, the panic says
/// the state and the contextualization log.
pub fn wait_for_docker_state(
    server: &impl Api,
    user: &str,
    inf: &str,
    wanted: &str,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = server
            .get(&format!("/infrastructures/{inf}/state"))
            .auth(&docker_auth(user))
            .send()
            .expect(200)
            .json();
        let current = answer["state"]["state"].as_str().unwrap_or("").to_owned();
        if current == wanted {
            return;
        }
        if Instant::now() >= deadline {
            let contmsg = server
                .get(&format!("/infrastructures/{inf}/contmsg"))
                .auth(&docker_auth(user))
                .send()
                .text();
            panic!("{inf} is {answer} after {timeout:?}, not {wanted}; contmsg:\n{contmsg}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Creates an infrastructure on Docker and returns its id.
pub fn create_on_docker(server: &impl Api, user: &str, radl: &str) -> String {
    let answer = server
        .post("/infrastructures")
        .auth(&docker_auth(user))
        .radl(radl)
        .send();
    assert_eq!(answer.status, 200, "create: {}", answer.text());
    id_of(&answer.text())
}

/// The container id of VM `vm` (its cloud id, read back from the VM's RADL).
pub fn container_of(server: &impl Api, user: &str, inf: &str, vm: u32) -> String {
    let info = server
        .get(&format!("/infrastructures/{inf}/vms/{vm}/instance_id"))
        .auth(&docker_auth(user))
        .send();
    let text = info.expect(200).text();
    text.trim().trim_matches('\'').to_owned()
}
