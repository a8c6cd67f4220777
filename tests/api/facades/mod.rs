//! The facades: other systems' APIs served on infralog's core.

mod batch;
mod batch_crash;
mod batch_events;
mod batch_pool;
mod imc;
mod imc_crash;
