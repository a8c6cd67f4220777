//! Benchmark of the Docker cloud (`cargo run --release --bin infralog-dockerbench`).
//!
//! Starts the release server over a fresh data directory and prints, each beside
//! a baseline measured in the same run on the same machine:
//! - launch: time from `POST /infrastructures` (with `contextualize ()`) to every
//!   VM `running`, for 1, 10 and 50 containers, beside the `docker run -d` CLI
//!   starting the same containers one after another;
//! - contextualization: time from the VMs launched to `configured` for 10 VMs
//!   with a one-task recipe, beside one `ansible-playbook` run of the same
//!   playbook (the run's kept files: IM's hosts tasks, facts, the recipe) against
//!   the same containers.
//!
//! Targets: 10 VMs running in ≤ 1.5× the CLI's sequential time; configured in
//! ≤ 1.3× the single `ansible-playbook` run.
//!
//! Everything it creates carries `infralog.bench=<run id>` and is removed at the
//! end, even when it fails. Needs the image `infralog-test/debian:bookworm`
//! (`.ci/docker-test-image`) and, for the contextualization figure, Ansible
//! (`.ci/ansible`, or `--ansible-playbook PATH`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{free_port, server_binary, wait_until_serving, Client};

const IMAGE: &str = "infralog-test/debian:bookworm";
const AUTH: &str = "id = im; type = InfrastructureManager; username = bench; password = bench-pass\\nid = docker; type = Docker; host = unix:///var/run/docker.sock";

/// Removes everything carrying the run's label when dropped.
struct Cleanup {
    label: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        for (list, remove) in [
            (vec!["ps", "-aq"], vec!["rm", "-f", "-v"]),
            (vec!["network", "ls", "-q"], vec!["network", "rm"]),
            (vec!["volume", "ls", "-q"], vec!["volume", "rm"]),
        ] {
            let mut args = list.clone();
            args.extend(["--filter", filter.as_str()]);
            let ids = docker_out(&args);
            for id in ids.lines().filter(|l| !l.is_empty()) {
                let mut args = remove.clone();
                args.push(id);
                docker_out(&args);
            }
        }
    }
}

fn docker_out(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn ansible_playbook() -> Option<PathBuf> {
    let mut args = std::env::args().skip_while(|a| a != "--ansible-playbook");
    let given = args.nth(1).map(PathBuf::from);
    given
        .or_else(|| std::env::var_os("INFRALOG_ANSIBLE_PLAYBOOK").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from(".tools/ansible/bin/ansible-playbook")))
        .filter(|path| path.is_file())
        .map(|path| std::fs::canonicalize(&path).unwrap_or(path))
}

fn start_server(data: &Path, port: u16, label: &str, ansible: Option<&Path>) -> Child {
    let mut command = Command::new(server_binary());
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .arg(format!("--docker-label={label}"))
        .args(["--max-simultaneous-launches", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(playbook) = ansible {
        // The run's files stay, so the same playbook can be run again by hand.
        command
            .arg("--ansible-playbook")
            .arg(playbook)
            .arg("--keep-ansible-runs");
    }
    command.spawn().unwrap_or_else(|e| {
        eprintln!("cannot start {}: {e}", server_binary().display());
        std::process::exit(1)
    })
}

fn radl(count: usize, recipe: Option<&str>) -> String {
    let configure = match recipe {
        Some(task) => format!("configure node (\n@begin\n{task}\n@end\n)\n"),
        None => "contextualize ()\n".to_owned(),
    };
    format!(
        "network privada ()
system node (
memory.size = 64m and
net_interface.0.connection = 'privada' and
disk.0.image.url = 'docker://{IMAGE}'
)
{configure}deploy node {count}
"
    )
}

/// Polls the infrastructure's state until every VM is in one of `wanted`; the
/// time it took, or `None` after `timeout`.
fn wait_for_vms(
    port: u16,
    inf: &str,
    count: usize,
    wanted: &[&str],
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut client = Client::connect(port).ok()?;
    while started.elapsed() < timeout {
        let (status, body) = client
            .request(
                "GET",
                &format!("/infrastructures/{inf}/state"),
                &[("Authorization", AUTH), ("Accept", "application/json")],
                b"",
            )
            .ok()?;
        if status == 200 {
            let json: serde_json::Value = serde_json::from_str(&body).ok()?;
            let states = json["state"]["vm_states"].as_object()?;
            let done = states.len() == count
                && states
                    .values()
                    .all(|s| s.as_str().is_some_and(|s| wanted.contains(&s)));
            if done {
                return Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether every VM of the infrastructure is in state `wanted` now.
fn vms_all(port: u16, inf: &str, wanted: &str) -> bool {
    let Ok(mut client) = Client::connect(port) else {
        return false;
    };
    let Ok((200, body)) = client.request(
        "GET",
        &format!("/infrastructures/{inf}/state"),
        &[("Authorization", AUTH), ("Accept", "application/json")],
        b"",
    ) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| {
            json["state"]["vm_states"]
                .as_object()
                .map(|states| states.values().all(|s| s.as_str() == Some(wanted)))
        })
        .unwrap_or(false)
}

fn create(port: u16, radl: &str) -> String {
    let mut client = Client::connect(port).expect("connect");
    let (status, body) = client
        .request(
            "POST",
            "/infrastructures?async=1",
            &[("Authorization", AUTH), ("Content-Type", "text/plain")],
            radl.as_bytes(),
        )
        .expect("create");
    if status != 200 {
        eprintln!("create answered {status}: {body}");
        std::process::exit(1);
    }
    body.trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn destroy(port: u16, inf: &str) {
    if let Ok(mut client) = Client::connect(port) {
        let _ = client.request(
            "DELETE",
            &format!("/infrastructures/{inf}"),
            &[("Authorization", AUTH)],
            b"",
        );
    }
}

/// `docker run -d` of `count` containers one after another, as the CLI does it.
fn cli_sequential(count: usize, label: &str) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        let status = Command::new("docker")
            .args(["run", "-d", "--memory", "64m", "--label", label, IMAGE])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("docker run failed: is {IMAGE} built (.ci/docker-test-image)?");
            std::process::exit(1);
        }
    }
    started.elapsed()
}

fn launch_phase(port: u16, label: &str) {
    println!("launch: POST to every VM running, beside `docker run -d` one after another");
    for count in [1usize, 10, 50] {
        let cli_label = format!("{label}-cli{count}");
        let cli = cli_sequential(count, &format!("infralog.bench={cli_label}"));
        drop(Cleanup {
            label: format!("infralog.bench={cli_label}"),
        });
        let started = Instant::now();
        let inf = create(port, &radl(count, None));
        let running = wait_for_vms(
            port,
            &inf,
            count,
            &["running", "configured"],
            Duration::from_secs(300),
        );
        let total = started.elapsed();
        match running {
            Some(_) => println!(
                "  {count:>3} VMs: infralog {:>7.2} s, docker CLI {:>7.2} s, ratio {:.2}",
                total.as_secs_f64(),
                cli.as_secs_f64(),
                total.as_secs_f64() / cli.as_secs_f64()
            ),
            None => println!("  {count:>3} VMs: not all running after 300 s"),
        }
        destroy(port, &inf);
    }
}

const TASK: &str = "- name: one task
  copy:
    dest: /root/bench
    content: done";

/// The task as an IM recipe: a play without `hosts`.
fn recipe() -> String {
    let indented: Vec<String> = TASK.lines().map(|line| format!("  {line}")).collect();
    format!("- tasks:\n{}", indented.join("\n"))
}

fn contextualization_phase(port: u16, playbook: &Path, data: &Path) {
    let count = 10;
    let inf = create(port, &radl(count, Some(&recipe())));
    let Some(_) = wait_for_vms(
        port,
        &inf,
        count,
        &["running", "configured", "unconfigured"],
        Duration::from_secs(300),
    ) else {
        println!("contextualization: the VMs never ran");
        return;
    };
    let launched = Instant::now();
    let configured = wait_for_vms(
        port,
        &inf,
        count,
        &["configured", "unconfigured"],
        Duration::from_secs(600),
    );
    let ours = launched.elapsed();
    if configured.is_some() && !vms_all(port, &inf, "configured") {
        println!(
            "contextualization: the run failed (the VMs are unconfigured); the end of its log:"
        );
        if let Ok(mut client) = Client::connect(port) {
            if let Ok((_, log)) = client.request(
                "GET",
                &format!("/infrastructures/{inf}/contmsg"),
                &[("Authorization", AUTH)],
                b"",
            ) {
                let lines: Vec<&str> = log.lines().collect();
                for line in &lines[lines.len().saturating_sub(25)..] {
                    println!("  {line}");
                }
            }
        }
        destroy(port, &inf);
        return;
    }
    // The very playbook infralog ran (its kept run directory: inventory, site.yml,
    // ansible.cfg), once more by hand against the same containers.
    let runs = data.join("ansible-runs");
    let run_dir = std::fs::read_dir(&runs).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.to_string_lossy().contains(&inf))
    });
    let Some(dir) = run_dir else {
        println!(
            "contextualization: the run's directory was not kept in {}",
            runs.display()
        );
        destroy(port, &inf);
        return;
    };
    let started = Instant::now();
    let status = Command::new(playbook)
        .args(["-i", "inventory.json", "site.yml"])
        .current_dir(&dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("HOME", &dir)
        .stdout(Stdio::null())
        .status();
    let single = started.elapsed();
    match (configured, status) {
        (Some(_), Ok(status)) if status.success() => println!(
            "contextualization: {count} VMs launched → configured in {:.2} s; the same playbook run again by ansible-playbook {:.2} s; ratio {:.2}",
            ours.as_secs_f64(),
            single.as_secs_f64(),
            ours.as_secs_f64() / single.as_secs_f64()
        ),
        (None, _) => println!("contextualization: not configured after 600 s"),
        (_, status) => println!("contextualization: the single ansible-playbook run failed: {status:?}"),
    }
    destroy(port, &inf);
}

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("infralog-dockerbench [--ansible-playbook PATH] [--phase launch|ctxt]");
        return;
    }
    let phase = std::env::args()
        .skip_while(|a| a != "--phase")
        .nth(1)
        .unwrap_or_else(|| "all".into());
    let run = format!("{:08x}", rand::random::<u32>());
    let label = format!("infralog.bench={run}");
    let _cleanup = Cleanup {
        label: label.clone(),
    };
    let data = std::env::temp_dir().join(format!("infralog-dockerbench-{run}"));
    let port = free_port();
    let playbook = ansible_playbook();
    let mut server = start_server(&data, port, &label, playbook.as_deref());
    if wait_until_serving(port, Duration::from_secs(30)).is_none() {
        eprintln!("the server did not start");
        let _ = server.kill();
        std::process::exit(1);
    }
    if phase == "all" || phase == "launch" {
        launch_phase(port, &run);
    }
    if phase == "all" || phase == "ctxt" {
        match &playbook {
            Some(playbook) => contextualization_phase(port, playbook, &data),
            None => println!("contextualization: skipped, no ansible-playbook (run .ci/ansible)"),
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
}
