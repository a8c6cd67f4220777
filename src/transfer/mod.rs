//! IM-compatible `/data` export and import; full-history export and import.

pub mod history;
pub mod im;
