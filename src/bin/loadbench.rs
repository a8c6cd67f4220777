//! Load benchmark of the IM REST API (`cargo run --release --bin infralog-loadbench`).
//!
//! Starts the release server over a fresh data directory (or uses `--server`),
//! creates N infrastructures (the 3-VM `front_wn_noctx.radl` plus `contextualize ()`)
//! as one user, and prints:
//! - sequential create p50/p99, then create throughput, p50 and p99 with 32
//!   concurrent clients;
//! - `GET …/state` throughput and p99 with 64 connections (wrk when installed,
//!   else the built-in client);
//! - list latency for the user who owns them all;
//! - resident memory per idle infrastructure (after idle actors stopped);
//! - time from start to serving with all of them in the log;
//! - cold creates: 32 connections creating for 10 s as a new user on a fresh
//!   server (the first requests of a user arrive together), p50 and p99 (wrk
//!   when installed, as issue 10 measured);
//! - the race: 50 clients for 10 s of mixed add, remove, reconfigure, stop and
//!   start on one infrastructure, counting every answer that is not a 200 and
//!   every conflict between our own requests leaking to a client.
//!
//! Targets (2 cores, load generator on the same machine): ≥ 1,000 creates/s at 32
//! clients; ≥ 20,000 GET state/s with p99 ≤ 10 ms; list ≤ 20 ms; ≤ 4 KiB RSS per
//! idle infrastructure; restart ≤ 3 s; concurrent create p99 ≤ 50 ms; no race
//! answer other than 200.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const AUTH: &str = "id = im; type = InfrastructureManager; username = loadbench; password = loadbench-pass\\nid = dummy; type = Dummy";

struct Options {
    infrastructures: usize,
    sequential: usize,
    clients: usize,
    connections: usize,
    seconds: u64,
    shared: PathBuf,
    /// Keep the data directory (printed) for later inspection.
    keep: bool,
    race_clients: usize,
    race_seconds: u64,
    cold_seconds: u64,
    phases: Vec<String>,
}

const PHASES: [&str; 4] = ["create", "cold", "race", "all"];

const HELP: &str = "infralog-loadbench: load benchmark of the IM REST API

Starts target/release/infralog (next to this binary) over a fresh data directory
and prints each phase's figures.

Options:
  --phase NAME           create: the create, GET state, list, memory and restart
                         phases; cold: creates by a new user on a fresh server;
                         race: the race phase; all (default): all three
  --infrastructures N    infrastructures to create (10000)
  --sequential N         of which created one at a time (500)
  --clients N            concurrent create clients (32)
  --cold-seconds N       duration of the cold phase (10; wrk when installed,
                         else the built-in client)
  --connections N        GET state connections (64)
  --seconds N            GET state duration (10)
  --race-clients N       clients of the race phase (50)
  --race-seconds N       duration of the race phase (10)
  --shared DIR           the shared directory with conformance/files (../shared)
  --keep                 keep the data directory
  --help                 this text";

fn options() -> Options {
    let mut options = Options {
        infrastructures: 10_000,
        sequential: 500,
        clients: 32,
        connections: 64,
        seconds: 10,
        shared: PathBuf::from("../shared"),
        keep: false,
        race_clients: 50,
        race_seconds: 10,
        cold_seconds: 10,
        phases: vec!["all".into()],
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        if args[i] == "--help" || args[i] == "-h" {
            println!("{HELP}");
            std::process::exit(0);
        }
        if args[i] == "--keep" {
            options.keep = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--infrastructures" => options.infrastructures = value.parse().unwrap_or(10_000),
            "--sequential" => options.sequential = value.parse().unwrap_or(500),
            "--clients" => options.clients = value.parse().unwrap_or(32),
            "--connections" => options.connections = value.parse().unwrap_or(64),
            "--seconds" => options.seconds = value.parse().unwrap_or(10),
            "--shared" => options.shared = PathBuf::from(value),
            "--race-clients" => options.race_clients = value.parse().unwrap_or(50),
            "--cold-seconds" => options.cold_seconds = value.parse().unwrap_or(10),
            "--race-seconds" => options.race_seconds = value.parse().unwrap_or(10),
            "--phase" if PHASES.contains(&value.as_str()) => options.phases = vec![value],
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    options
}

fn start_server(data: &Path, port: u16) -> Child {
    Command::new(server_binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--idle-seconds", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("cannot start {}: {e}", server_binary().display());
            std::process::exit(1)
        })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn create(client: &mut Client, radl: &[u8]) -> String {
    create_as(client, radl, AUTH)
}

fn create_as(client: &mut Client, radl: &[u8], auth: &str) -> String {
    let (status, body) = client
        .request(
            "POST",
            "/infrastructures",
            &[("Authorization", auth), ("Content-Type", "text/plain")],
            radl,
        )
        .unwrap_or_else(|e| {
            eprintln!("create failed: {e}");
            std::process::exit(1)
        });
    if status != 200 {
        eprintln!("create answered {status}: {body}");
        std::process::exit(1);
    }
    body.rsplit('/').next().unwrap_or_default().to_string()
}

mod common;
use common::{free_port, server_binary, wait_until_serving, Client};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

fn main() {
    let options = options();
    let runs = |phase: &str| options.phases.iter().any(|p| p == phase || p == "all");
    if runs("create") {
        create_phases(&options);
    }
    if runs("cold") {
        cold_phase(&options);
    }
    if runs("race") {
        race_phase(&options);
    }
}

/// Creates, GET state, list, memory and restart.
fn create_phases(options: &Options) {
    let radl = bench_radl(options);
    let data = std::env::temp_dir().join(format!("infralog-loadbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();
    let mut server = start_server(&data, port);
    if wait_until_serving(port, Duration::from_secs(30)).is_none() {
        eprintln!("the server did not start");
        let _ = server.kill();
        std::process::exit(1);
    }
    std::thread::sleep(Duration::from_millis(300));
    let baseline_rss = rss_kib(server.id());
    println!(
        "server pid {} on port {port}, baseline RSS {baseline_rss} KiB",
        server.id()
    );

    // Sequential creates.
    let mut client = Client::connect(port).expect("connects");
    let mut ids = Vec::with_capacity(options.infrastructures);
    let mut latencies = Vec::with_capacity(options.sequential);
    for _ in 0..options.sequential.min(options.infrastructures) {
        let started = Instant::now();
        ids.push(create(&mut client, &radl));
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    println!(
        "sequential create ({} requests): p50 {:.2} ms  p99 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    // Concurrent creates.
    let remaining = options.infrastructures.saturating_sub(ids.len());
    let counter = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(Mutex::new(Vec::with_capacity(remaining)));
    let create_latencies = Arc::new(Mutex::new(Vec::with_capacity(remaining)));
    let radl = Arc::new(radl);
    let started = Instant::now();
    let workers: Vec<_> = (0..options.clients)
        .map(|_| {
            let counter = Arc::clone(&counter);
            let created = Arc::clone(&created);
            let create_latencies = Arc::clone(&create_latencies);
            let radl = Arc::clone(&radl);
            std::thread::spawn(move || {
                let mut client = Client::connect(port).expect("connects");
                let mut mine = Vec::new();
                let mut latencies = Vec::new();
                while counter.fetch_add(1, Ordering::Relaxed) < remaining {
                    let started = Instant::now();
                    mine.push(create(&mut client, &radl));
                    latencies.push(started.elapsed());
                }
                created.lock().expect("not poisoned").extend(mine);
                create_latencies
                    .lock()
                    .expect("not poisoned")
                    .extend(latencies);
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    ids.extend(created.lock().expect("not poisoned").drain(..));
    let mut create_latencies = std::mem::take(&mut *create_latencies.lock().expect("not poisoned"));
    create_latencies.sort_unstable();
    println!(
        "concurrent create ({} clients, {remaining} requests): {:.0} creates/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        options.clients,
        remaining as f64 / elapsed,
        percentile(&create_latencies, 0.5),
        percentile(&create_latencies, 0.99),
        percentile(&create_latencies, 1.0)
    );

    // GET state.
    state_load(port, &ids, options.connections, options.seconds);

    // List (a fresh connection: the first one idled past the keep-alive).
    drop(client);
    let mut client = Client::connect(port).expect("connects");
    let mut list_latencies = Vec::new();
    let mut listed = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, body) = client
            .request("GET", "/infrastructures", &[("Authorization", AUTH)], b"")
            .expect("lists");
        list_latencies.push(started.elapsed());
        assert_eq!(status, 200, "list answered {status}");
        listed = body.lines().count();
    }
    list_latencies.sort_unstable();
    println!(
        "list of {listed} infrastructures: p50 {:.2} ms  p99 {:.2} ms",
        percentile(&list_latencies, 0.5),
        percentile(&list_latencies, 0.99)
    );
    drop(client);

    // Memory once the actors went idle and stopped.
    std::thread::sleep(Duration::from_secs(6));
    let rss = rss_kib(server.id());
    println!(
        "RSS {rss} KiB with {} idle infrastructures: {:.2} KiB per infrastructure over the baseline",
        ids.len(),
        (rss.saturating_sub(baseline_rss)) as f64 / ids.len().max(1) as f64
    );

    // Restart.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status();
    let _ = server.wait();
    let started = Instant::now();
    let mut server = start_server(&data, port);
    match wait_until_serving(port, Duration::from_secs(60)) {
        Some(_) => {
            let mut client = Client::connect(port).expect("connects");
            let path = format!("/infrastructures/{}/state", ids[ids.len() / 2]);
            let (status, _) = client
                .request("GET", &path, &[("Authorization", AUTH)], b"")
                .expect("state");
            println!(
                "restart with {} infrastructures in the log: serving after {:.2} s (state answered {status})",
                ids.len(),
                started.elapsed().as_secs_f64()
            );
            std::thread::sleep(Duration::from_millis(500));
            println!(
                "RSS after the restart: {} KiB (the read model and the log cache, without the actors' churn)",
                rss_kib(server.id())
            );
        }
        None => println!("restart: the server did not come back within 60 s"),
    }
    let _ = server.kill();
    let _ = server.wait();
    if options.keep {
        println!("data kept in {}", data.display());
    } else {
        let _ = std::fs::remove_dir_all(&data);
    }
}

/// GET state over `connections` connections for `seconds`: wrk when available.
fn state_load(port: u16, ids: &[String], connections: usize, seconds: u64) {
    if let Some(report) = wrk_state(port, ids, connections, seconds) {
        println!("{report}");
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let ids = Arc::new(ids.to_vec());
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let ids = Arc::clone(&ids);
            std::thread::spawn(move || {
                let mut client = Client::connect(port).expect("connects");
                let mut latencies = Vec::new();
                let mut index = worker * 7919;
                while Instant::now() < deadline {
                    index = (index + 104_729) % ids.len();
                    let path = format!("/infrastructures/{}/state", ids[index]);
                    let started = Instant::now();
                    let (status, _) = client
                        .request("GET", &path, &[("Authorization", AUTH)], b"")
                        .expect("state");
                    latencies.push(started.elapsed());
                    assert_eq!(status, 200);
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    latencies.sort_unstable();
    println!(
        "GET state, {connections} connections (built-in client): {:.0} requests/s  p50 {:.2} ms  p99 {:.2} ms",
        latencies.len() as f64 / seconds as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
}

fn wrk_state(port: u16, ids: &[String], connections: usize, seconds: u64) -> Option<String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return None;
    }
    let script =
        std::env::temp_dir().join(format!("infralog-loadbench-{}.lua", std::process::id()));
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("\"/infrastructures/{id}/state\""))
        .collect();
    let lua = format!(
        "paths = {{{}}}\ncounter = 0\nrequest = function()\n  counter = counter + 1\n  return wrk.format(\"GET\", paths[(counter % #paths) + 1], {{[\"Authorization\"] = \"{}\"}})\nend\n",
        paths.join(","),
        AUTH.replace('\\', "\\\\")
    );
    std::fs::write(&script, lua).ok()?;
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let rate = text
        .lines()
        .find(|l| l.starts_with("Requests/sec"))
        .unwrap_or("Requests/sec: ?")
        .to_string();
    let p99 = text
        .lines()
        .find(|l| l.trim_start().starts_with("99%"))
        .unwrap_or("99% ?")
        .trim()
        .to_string();
    let p50 = text
        .lines()
        .find(|l| l.trim_start().starts_with("50%"))
        .unwrap_or("50% ?")
        .trim()
        .to_string();
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .unwrap_or("")
        .trim()
        .to_string();
    Some(format!(
        "GET state, {connections} connections (wrk): {rate}  latency {p50}  {p99} {errors}"
    ))
}

/// The race phase's infrastructure: two `node` VMs; adds deploy one more by name.
const RACE_RADL: &str = "network privada ()
system node (
cpu.count>=1 and
memory.size>=512m and
net_interface.0.connection = 'privada' and
disk.0.os.name='linux'
)
deploy node 2
contextualize ()
";

const RACE_OPS: [&str; 5] = ["add", "remove", "reconfigure", "stop", "start"];

/// The front/wn RADL every create phase uses.
fn bench_radl(options: &Options) -> Vec<u8> {
    let radl_path = options.shared.join("conformance/files/front_wn_noctx.radl");
    let mut radl = std::fs::read(&radl_path).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", radl_path.display());
        std::process::exit(1)
    });
    radl.extend_from_slice(b"\ncontextualize ()\n");
    radl
}

/// A fresh server over a new data directory, serving.
fn fresh_server(name: &str) -> (Child, u16, PathBuf) {
    let data =
        std::env::temp_dir().join(format!("infralog-loadbench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let port = free_port();
    let mut server = start_server(&data, port);
    if wait_until_serving(port, Duration::from_secs(30)).is_none() {
        eprintln!("the server did not start");
        let _ = server.kill();
        std::process::exit(1);
    }
    (server, port, data)
}

/// Creates for `cold_seconds` over `clients` connections as a user that made no
/// request yet, on a server that just started: every connection's first request
/// arrives at once, before anything about that user is known.
fn cold_phase(options: &Options) {
    let radl = bench_radl(options);
    let (mut server, port, data) = fresh_server("cold");
    let auth = AUTH.replace("username = loadbench", "username = loadbench-cold");
    let clients = options.clients;
    let seconds = options.cold_seconds;
    match wrk_creates(port, &radl, &auth, clients, seconds) {
        Some(report) => println!("{report}"),
        None => {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let workers: Vec<_> = (0..clients)
                .map(|_| {
                    let radl = radl.clone();
                    let auth = auth.clone();
                    std::thread::spawn(move || {
                        let mut client = Client::connect(port).expect("connects");
                        let mut latencies = Vec::new();
                        while Instant::now() < deadline {
                            let started = Instant::now();
                            create_as(&mut client, &radl, &auth);
                            latencies.push(started.elapsed());
                        }
                        latencies
                    })
                })
                .collect();
            let mut latencies: Vec<Duration> = workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect();
            latencies.sort_unstable();
            println!(
                "cold create, {clients} connections, {seconds} s, a new user (built-in client): {:.0} creates/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                latencies.len() as f64 / seconds as f64,
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                percentile(&latencies, 1.0)
            );
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
}

/// The cold phase with wrk, when it is installed.
fn wrk_creates(
    port: u16,
    radl: &[u8],
    auth: &str,
    connections: usize,
    seconds: u64,
) -> Option<String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return None;
    }
    let script = std::env::temp_dir().join(format!(
        "infralog-loadbench-cold-{}.lua",
        std::process::id()
    ));
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"text/plain\"\nwrk.headers[\"Authorization\"] = {}\n",
        lua_string(&String::from_utf8_lossy(radl)),
        lua_string(auth)
    );
    std::fs::write(&script, lua).ok()?;
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/infrastructures"))
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| format!("{prefix} ?"))
    };
    let errors = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .unwrap_or("")
        .trim()
        .to_string();
    Some(format!(
        "cold create, {connections} connections, {seconds} s, a new user (wrk): {}  latency {}  {}  {}  {errors}",
        line("Requests/sec"),
        line("50%"),
        line("99%"),
        line("Latency ")
    ))
}

/// `text` as a Lua (and JSON) double-quoted string literal.
fn lua_string(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// What the race phase saw of one operation.
#[derive(Default, Clone)]
struct OpTally {
    ok: usize,
    /// Status → count, for every answer other than 200.
    failed: std::collections::BTreeMap<u16, usize>,
    /// Answers that leaked a conflict between our own requests.
    conflicts: usize,
    latencies: Vec<Duration>,
    example: Option<String>,
}

/// `clients` clients, each doing add, remove (of a VM it added), reconfigure, stop
/// and start in turn on one infrastructure for `seconds`.
fn race_phase(options: &Options) {
    let (mut server, port, data) = fresh_server("race");
    let mut client = Client::connect(port).expect("connects");
    let inf = create(&mut client, RACE_RADL.as_bytes());
    drop(client);
    let base = format!("/infrastructures/{inf}");
    let deadline = Instant::now() + Duration::from_secs(options.race_seconds);
    let workers: Vec<_> = (0..options.race_clients)
        .map(|worker| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut tallies = vec![OpTally::default(); RACE_OPS.len()];
                let mut client = Client::connect(port).expect("connects");
                let mut mine: Vec<String> = Vec::new();
                let mut turn = worker;
                let auth = [("Authorization", AUTH), ("Content-Type", "text/plain")];
                while Instant::now() < deadline {
                    let mut op = turn % RACE_OPS.len();
                    turn += 1;
                    if op == 1 && mine.is_empty() {
                        op = 0;
                    }
                    let started = Instant::now();
                    let answer = match op {
                        0 => client.request(
                            "POST",
                            &base,
                            &auth,
                            b"network privada ()\nsystem node\ndeploy node 1\n",
                        ),
                        1 => {
                            let vm = mine.pop().unwrap_or_default();
                            client.request("DELETE", &format!("{base}/vms/{vm}"), &auth, b"")
                        }
                        2 => client.request(
                            "PUT",
                            &format!("{base}/reconfigure"),
                            &auth,
                            b"contextualize ()\n",
                        ),
                        3 => client.request("PUT", &format!("{base}/stop"), &auth, b""),
                        _ => client.request("PUT", &format!("{base}/start"), &auth, b""),
                    };
                    let elapsed = started.elapsed();
                    let (status, body) = match answer {
                        Ok(answer) => answer,
                        Err(error) => {
                            eprintln!("race client {worker}: {error}");
                            client = Client::connect(port).expect("connects");
                            (0, error.to_string())
                        }
                    };
                    let tally = &mut tallies[op];
                    tally.latencies.push(elapsed);
                    if status == 200 {
                        tally.ok += 1;
                        if op == 0 {
                            mine.extend(
                                body.lines()
                                    .filter_map(|uri| uri.rsplit('/').next().map(str::to_string)),
                            );
                        }
                    } else {
                        *tally.failed.entry(status).or_default() += 1;
                        if body.contains("changed meanwhile") {
                            tally.conflicts += 1;
                        }
                        tally.example.get_or_insert(format!("{status} {body}"));
                    }
                }
                tallies
            })
        })
        .collect();
    let mut totals = vec![OpTally::default(); RACE_OPS.len()];
    for worker in workers {
        for (total, tally) in totals.iter_mut().zip(worker.join().unwrap_or_default()) {
            total.ok += tally.ok;
            total.conflicts += tally.conflicts;
            total.latencies.extend(tally.latencies);
            for (status, count) in tally.failed {
                *total.failed.entry(status).or_default() += count;
            }
            if total.example.is_none() {
                total.example = tally.example;
            }
        }
    }
    println!(
        "race ({} clients, {} s, one infrastructure):",
        options.race_clients, options.race_seconds
    );
    let (mut requests, mut conflicts, mut failures) = (0, 0, 0);
    for (name, tally) in RACE_OPS.iter().zip(totals.iter_mut()) {
        tally.latencies.sort_unstable();
        let failed: usize = tally.failed.values().sum();
        requests += tally.ok + failed;
        conflicts += tally.conflicts;
        failures += failed;
        println!(
            "  {name:<12} {:>6} ok  {:>5} failed {:?}  {:>5} conflicts  p50 {:.1} ms  p99 {:.1} ms{}",
            tally.ok,
            failed,
            tally.failed,
            tally.conflicts,
            percentile(&tally.latencies, 0.5),
            percentile(&tally.latencies, 0.99),
            tally
                .example
                .as_ref()
                .map(|e| format!("  e.g. {}", e.chars().take(160).collect::<String>()))
                .unwrap_or_default()
        );
    }
    println!(
        "race total: {requests} requests, {failures} not 200, {conflicts} answered 'the infrastructure changed meanwhile'"
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
}
