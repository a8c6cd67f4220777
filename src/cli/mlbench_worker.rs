//! `infralog mlbench-worker`: the workload of the MLBench facade's official
//! images. Each rank trains a logistic regression on synthetic data seeded by
//! the run and the rank, one epoch per second, and posts its validation loss
//! and accuracy per epoch to the metrics API as forms (as mlbench-core does).
//! Rank 0 posts `TaskResult @ 0` (its accuracy) and prints `Goal Reached!` once
//! the validation loss reaches its target (after at least 3 epochs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

/// Features of the synthetic data.
const FEATURES: usize = 8;
/// Training and validation samples.
const TRAIN: usize = 2000;
const VALIDATION: usize = 500;
/// Gradient steps per epoch and their rate.
const STEPS_PER_EPOCH: usize = 5;
const LEARNING_RATE: f64 = 0.5;
/// The validation loss to reach, and with `--light`.
const TARGET: f64 = 0.30;
const LIGHT_TARGET: f64 = 0.40;
/// Epochs at least, and at most.
const MIN_EPOCHS: u32 = 3;
const MAX_EPOCHS: u32 = 25;

/// The worker's flags (the environment gives the API, run and rank as well).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The pods' addresses, comma-separated.
    #[arg(long, default_value = "")]
    pub hosts: String,
    /// The run's id (default: `MLBENCH_RUN_ID`).
    #[arg(long, env = "MLBENCH_RUN_ID")]
    pub run_id: u64,
    /// This worker's rank (default: `MLBENCH_RANK`).
    #[arg(long, env = "MLBENCH_RANK", default_value_t = 0)]
    pub rank: u32,
    /// The number of ranks.
    #[arg(long, default_value_t = 1)]
    pub world: u32,
    /// The communication backend (recorded only).
    #[arg(long, default_value = "mpi")]
    pub backend: String,
    /// The API's base URL (default: `MLBENCH_API`).
    #[arg(long, env = "MLBENCH_API")]
    pub api: String,
    /// Ask for a GPU (there is none: recorded only).
    #[arg(long)]
    pub gpu: bool,
    /// The lower target.
    #[arg(long)]
    pub light: bool,
    /// Milliseconds per epoch.
    #[arg(long, default_value_t = 1000)]
    pub epoch_ms: u64,
}

/// A small seeded generator (xorshift64*): the data depend on the run and the
/// rank only.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

type Sample = ([f64; FEATURES], f64);

fn samples(random: &mut Random, truth: &[f64; FEATURES], count: usize) -> Vec<Sample> {
    (0..count)
        .map(|_| {
            let mut x = [0.0; FEATURES];
            for v in &mut x {
                *v = random.next();
            }
            let score: f64 =
                x.iter().zip(truth).map(|(a, b)| a * b).sum::<f64>() + 0.2 * random.next();
            (x, if score > 0.0 { 1.0 } else { 0.0 })
        })
        .collect()
}

fn predict(weights: &[f64; FEATURES], x: &[f64; FEATURES]) -> f64 {
    let z: f64 = weights.iter().zip(x).map(|(w, v)| w * v).sum();
    1.0 / (1.0 + (-z).exp())
}

/// Validation loss and accuracy (percent).
fn evaluate(weights: &[f64; FEATURES], data: &[Sample]) -> (f64, f64) {
    let mut loss = 0.0;
    let mut right = 0usize;
    for (x, y) in data {
        let p = predict(weights, x).clamp(1e-12, 1.0 - 1e-12);
        loss -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
        if (p >= 0.5) == (*y >= 0.5) {
            right += 1;
        }
    }
    (
        loss / data.len() as f64,
        100.0 * right as f64 / data.len() as f64,
    )
}

fn train(weights: &mut [f64; FEATURES], data: &[Sample]) {
    for _ in 0..STEPS_PER_EPOCH {
        let mut gradient = [0.0; FEATURES];
        for (x, y) in data {
            let error = predict(weights, x) - y;
            for (g, v) in gradient.iter_mut().zip(x) {
                *g += error * v;
            }
        }
        for (w, g) in weights.iter_mut().zip(gradient) {
            *w -= LEARNING_RATE * g / data.len() as f64;
        }
    }
}

/// Posts one metric as a form, as mlbench-core does; any status up to 201 is
/// success.
fn post_metric(args: &WorkerArgs, name: &str, value: f64) -> Result<(), String> {
    let base = args
        .api
        .strip_prefix("http://")
        .ok_or("MLBENCH_API is not an http:// URL")?;
    let (authority, prefix) = match base.split_once('/') {
        Some((authority, path)) => (authority, format!("/{}", path.trim_end_matches('/'))),
        None => (base, String::new()),
    };
    // Python's `str(datetime.utcnow())`, which the API reads as UTC.
    let date = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let encode = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let body = format!(
        "run_id={}&name={}&value={}&date={}&cumulative=False&metadata=",
        args.run_id,
        encode(name),
        encode(&value.to_string()),
        encode(&date)
    );
    let token = std::env::var("MLBENCH_RUN_TOKEN")
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {prefix}/api/metrics/ HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{token}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(authority).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    if status <= 201 {
        Ok(())
    } else {
        Err(format!("the API answered {status}"))
    }
}

/// Runs one rank.
pub fn run(args: WorkerArgs) -> ExitCode {
    let mut random = Random::new(args.run_id.wrapping_mul(1_000_003) ^ u64::from(args.rank));
    let mut truth = [0.0; FEATURES];
    for v in &mut truth {
        *v = random.next() * 3.0;
    }
    let training = samples(&mut random, &truth, TRAIN);
    let validation = samples(&mut random, &truth, VALIDATION);
    let target = if args.light { LIGHT_TARGET } else { TARGET };
    println!(
        "rank {} of {} ({} backend, hosts {}): logistic regression, target val loss {target}",
        args.rank, args.world, args.backend, args.hosts
    );
    let mut weights = [0.0; FEATURES];
    let started = Instant::now();
    for epoch in 1..=MAX_EPOCHS {
        train(&mut weights, &training);
        let (loss, accuracy) = evaluate(&weights, &validation);
        println!("epoch {epoch}: val loss {loss:.4}, Prec@1 {accuracy:.2}");
        for (name, value) in [
            (format!("val_global_loss @ {}", args.rank), loss),
            (format!("val_global_Prec@1 @ {}", args.rank), accuracy),
        ] {
            if let Err(error) = post_metric(&args, &name, value) {
                eprintln!("cannot post {name}: {error}");
            }
        }
        if epoch >= MIN_EPOCHS && loss <= target {
            if args.rank == 0 {
                if let Err(error) = post_metric(&args, "TaskResult @ 0", accuracy) {
                    eprintln!("cannot post the task result: {error}");
                }
                println!("Goal Reached!");
            } else {
                println!("target reached");
            }
            return ExitCode::SUCCESS;
        }
        // One epoch per period.
        let next = Duration::from_millis(args.epoch_ms * u64::from(epoch));
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    eprintln!("the target was not reached in {MAX_EPOCHS} epochs");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_reaches_the_target_within_a_few_epochs_and_is_seeded() {
        let mut random = Random::new(7);
        let mut truth = [0.0; FEATURES];
        for v in &mut truth {
            *v = random.next() * 3.0;
        }
        let training = samples(&mut random, &truth, TRAIN);
        let validation = samples(&mut random, &truth, VALIDATION);
        let mut weights = [0.0; FEATURES];
        let mut reached = None;
        for epoch in 1..=MAX_EPOCHS {
            train(&mut weights, &training);
            if evaluate(&weights, &validation).0 <= TARGET {
                reached = Some(epoch);
                break;
            }
        }
        assert!(reached.is_some_and(|e| e > 3 && e <= 20), "{reached:?}");
        assert_eq!(Random::new(3).next(), Random::new(3).next());
    }
}
