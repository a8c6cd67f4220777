//! What a shared PostgreSQL log costs (`cargo build --release --bin infralog
//! --bin infralog-clusterbench`, then run the latter with
//! `INFRALOG_TEST_POSTGRES` set, as `.ci/postgres` prints it).
//!
//! For the log in sled, then in PostgreSQL with one, two and three instances
//! (one active, the others standbys that forward writes), all in one run on
//! this machine, with clients spread round robin over the instances:
//! - creates/s (one Dummy VM, no contextualization) from 16 clients;
//! - `GET …/state`/s from 32 clients (a read that counts as a use in IM, so a
//!   standby forwards it to the active instance);
//! - `GET /infrastructures/<id>` (its VM list)/s from 32 clients: answered by
//!   each instance from its own read model, after catching up with the log.
//!
//! On a 2-core machine more instances cannot mean more throughput: the figures
//! show the cost of the shared store and of forwarding, and that it does not
//! collapse.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, server_binary, wait_until_serving, Client};

const AUTH: &str = "id = im; type = InfrastructureManager; username = bench; password = bench-pass\\nid = dummy; type = Dummy";
const RADL: &str = "network net (outbound = 'yes')\nsystem node (\ncpu.count >= 1 and\nmemory.size >= 512m and\nnet_interface.0.connection = 'net' and\ndisk.0.os.name = 'linux'\n)\ndeploy node 1\ncontextualize ()\n";
const SECONDS: u64 = 5;

struct Cluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    dirs: Vec<std::path::PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        for dir in &self.dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn start(instances: usize, store: Option<&str>) -> Cluster {
    let mut cluster = Cluster {
        children: Vec::new(),
        ports: Vec::new(),
        dirs: Vec::new(),
    };
    for i in 0..instances {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "infralog-clusterbench-{}-{i}-{port}",
            std::process::id()
        ));
        let mut command = Command::new(server_binary());
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = store {
            command.args(["--store", url]);
        }
        cluster
            .children
            .push(command.spawn().expect("start the release server"));
        cluster.dirs.push(dir);
        wait_until_serving(port, Duration::from_secs(60)).expect("the server serves");
        cluster.ports.push(port);
    }
    cluster
}

/// Runs `clients` threads for [`SECONDS`], each sending `request` round robin
/// over `ports`; answers the rate of 200s and the count of other answers.
fn rate(
    ports: &[u16],
    clients: usize,
    request: impl Fn(&mut Client) -> std::io::Result<u16> + Sync,
) -> (f64, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let ok = AtomicUsize::new(0);
    let other = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (done, ok, other, request) = (&done, &ok, &other, &request);
            let port = ports[client % ports.len()];
            scope.spawn(move || {
                let Ok(mut connection) = Client::connect(port) else {
                    other.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                while !done.load(Ordering::Relaxed) {
                    match request(&mut connection) {
                        Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            });
        }
        std::thread::sleep(Duration::from_secs(SECONDS));
        done.store(true, Ordering::Relaxed);
    });
    (
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        other.load(Ordering::Relaxed),
    )
}

fn create(client: &mut Client) -> std::io::Result<(u16, String)> {
    client.request(
        "POST",
        "/infrastructures",
        &[("Authorization", AUTH), ("Content-Type", "text/plain")],
        RADL.as_bytes(),
    )
}

fn measure(name: &str, cluster: &Cluster) {
    let (creates, refused) = rate(&cluster.ports, 16, |client| create(client).map(|(s, _)| s));
    let mut first = Client::connect(cluster.ports[0]).expect("connect");
    let (status, uri) = create(&mut first).expect("a create");
    assert_eq!(status, 200, "{uri}");
    let id = uri.trim().rsplit('/').next().unwrap_or_default().to_owned();
    let state_path = format!("/infrastructures/{id}/state");
    let (states, state_errors) = rate(&cluster.ports, 32, |client| {
        client
            .request("GET", &state_path, &[("Authorization", AUTH)], b"")
            .map(|(s, _)| s)
    });
    let list_path = format!("/infrastructures/{id}");
    let (lists, list_errors) = rate(&cluster.ports, 32, |client| {
        client
            .request("GET", &list_path, &[("Authorization", AUTH)], b"")
            .map(|(s, _)| s)
    });
    println!(
        "{name:<28} {creates:>9.0} creates/s ({refused} not 200)   {states:>9.0} GET state/s \
         ({state_errors} not 200)   {lists:>9.0} GET VM list/s ({list_errors} not 200)"
    );
}

fn psql(admin: &str, statement: &str) {
    let status = Command::new("psql")
        .args([admin, "-q", "-v", "ON_ERROR_STOP=1", "-c", statement])
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql: {statement}");
}

fn main() {
    println!(
        "clusterbench: {SECONDS} s per figure; clients round robin over the instances; \
         2-core machine, load generator on it too"
    );
    let cluster = start(1, None);
    measure("sled, 1 instance", &cluster);
    drop(cluster);
    let Ok(admin) = std::env::var("INFRALOG_TEST_POSTGRES") else {
        println!("PostgreSQL: skipped (set INFRALOG_TEST_POSTGRES, as .ci/postgres prints it)");
        return;
    };
    for instances in 1..=3 {
        let database = format!("infralog_clusterbench_{}_{instances}", std::process::id());
        psql(&admin, &format!("CREATE DATABASE {database}"));
        let url = format!(
            "{}/{database}",
            admin.rsplit_once('/').map_or("", |(base, _)| base)
        );
        {
            let cluster = start(instances, Some(&url));
            measure(&format!("PostgreSQL, {instances} instance(s)"), &cluster);
        }
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        );
    }
}
