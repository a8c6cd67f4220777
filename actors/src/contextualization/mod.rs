//! Contextualization: configuring the VMs once they run. The Dummy cloud's is
//! simulated ([`simulated`]); real clouds' runs `ansible-playbook` ([`ansible`]).

pub mod ansible;
pub mod simulated;

pub use simulated::{remaining_ms, DEFAULT_DELAY_MS, FINISH_LINES, START_LINES};
