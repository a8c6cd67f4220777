//! The facades: other systems' APIs served on infralog's core.

mod batch;
mod batch_crash;
mod imc;
mod imc_crash;
mod mlbench;
mod mlbench_crash;
mod mlbench_metrics;
