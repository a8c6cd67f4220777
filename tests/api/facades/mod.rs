//! The facades: other systems' APIs served on infralog's core.

pub mod batch;
mod batch_crash;
mod batch_events;
mod batch_pool;
pub mod imc;
mod imc_crash;
mod imc_reads;
mod imc_timers;
pub mod mlbench;
mod mlbench_crash;
mod mlbench_loss;
mod mlbench_metrics;
