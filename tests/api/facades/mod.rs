//! The facades: other systems' APIs served on infralog's core.

mod imc;
mod imc_crash;
