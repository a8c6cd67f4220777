//! A run's workers: each rank's `run.sh` and its start through the executor,
//! and the `/proc` samples of their pods.

use std::time::Instant;

use actix::prelude::*;
use infralog_events::domain::mlbench::RunRequest;
use infralog_events::store::metrics::{MetricPoint, MetricWrite};

use super::super::output::{group_usage, TICKS_PER_SECOND};
use super::RunActor;
use crate::decide::mlbench::{pod_name, rank_command, shell_quote};
use crate::exec::{RunSpec, Started};

impl RunActor {
    /// Writes rank `rank`'s `run.sh` and starts it.
    pub(super) fn start_rank(
        &self,
        request: &RunRequest,
        hosts: &[String],
        rank: u32,
        token: Option<&str>,
    ) -> Result<Started, String> {
        let sandbox = self.sandbox(rank);
        let bundle = sandbox.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| e.to_string())?;
        let config = &self.shared.config;
        let command = rank_command(
            request,
            &config.worker_program.display().to_string(),
            hosts,
            rank,
        );
        let mut script = String::from("#!/bin/sh\n");
        // The executor sets the Batch facade's variables; a worker needs its own.
        script.push_str("unset MODACLOUDS_BATCH_OUTPUT MODACLOUDS_BATCH_SCRATCH_DIRECTORY\n");
        script.push_str(&format!(
            "export MLBENCH_API={} MLBENCH_RUN_ID={} MLBENCH_RANK={rank}\n",
            shell_quote(&config.api_url),
            self.id
        ));
        if let Some(token) = token {
            script.push_str(&format!(
                "export MLBENCH_RUN_TOKEN={}\n",
                shell_quote(token)
            ));
        }
        script.push_str(&format!("exec /bin/sh -c {}\n", shell_quote(&command)));
        write_script(&bundle.join("run.sh"), &script).map_err(|e| e.to_string())?;
        let spec = RunSpec {
            sandbox,
            arguments: String::new(),
            has_input: false,
        };
        self.shared.executor.start(&spec).map_err(|e| e.to_string())
    }

    /// Samples the pods' processes and stores their metrics.
    pub(super) fn sample(&mut self, ctx: &mut Context<Self>) {
        let Some(request) = self.state.request.as_ref() else {
            return;
        };
        if self.live.is_empty() {
            return;
        }
        let now = Instant::now();
        let date_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut points = Vec::new();
        for (&rank, run) in &self.live {
            let Some((ticks, rss_kib)) = group_usage(run.pid) else {
                continue;
            };
            let cores = match self.cpu.insert(rank, (ticks, now)) {
                Some((before, at)) if now > at => {
                    ticks.saturating_sub(before) as f64
                        / TICKS_PER_SECOND
                        / (now - at).as_secs_f64()
                }
                _ => 0.0,
            };
            let subject = format!(
                "pod:{}",
                pod_name(&self.shared.config.release, &request.name, rank)
            );
            let point = |name: &str, value: String, cumulative: bool| MetricPoint {
                subject: subject.clone(),
                name: name.into(),
                date_us,
                value,
                metadata: String::new(),
                cumulative,
            };
            points.push(point("cpu", format!("{cores:.3}"), false));
            points.push(point(
                "memory",
                format!("{:.3}", rss_kib as f64 / 1024.0),
                false,
            ));
            points.push(point("network_in", "0".into(), true));
            points.push(point("network_out", "0".into(), true));
        }
        if points.is_empty() {
            return;
        }
        let written = self
            .shared
            .metrics
            .write_metrics(MetricWrite::Insert(points));
        let id = self.id;
        ctx.spawn(fut::wrap_future(async move {
            if let Err(error) = written.await {
                tracing::warn!(%error, run = id, "an MLBench pod sample cannot be stored");
            }
        }));
    }
}

fn write_script(path: &std::path::Path, script: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        // It may hold the run's token: its owner only.
        .mode(0o700)
        .open(path)?;
    std::io::Write::write_all(&mut file, script.as_bytes())?;
    file.sync_all()
}

pub(super) fn new_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
