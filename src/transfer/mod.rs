//! IM-compatible `/data` export and import; full-history export and import.

pub mod history_document;
pub mod im;
