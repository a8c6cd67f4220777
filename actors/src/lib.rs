//! Who decides: the actix actors (registry, infrastructure, VM), the pure `decide`
//! functions, the cloud connectors (trait + Dummy) and contextualization.
//!
//! This crate knows `infralog-events` and actix, never actix-web.

#![warn(missing_docs)]

pub mod connectors;
pub mod contextualization;
pub mod decide;
pub mod exec;
pub mod runtime;
