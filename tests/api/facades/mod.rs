//! The facades: other systems' APIs served on infralog's core.

mod batch;
mod batch_crash;
mod imc;
mod imc_crash;
mod imc_reads;
mod imc_timers;
