//! infralog: an infrastructure manager that speaks the REST API of GRyCAP's IM and keeps
//! its whole state as an append-only event log.
//!
//! # Layout
//!
//! - [`radl`]: RADL text and RADL-JSON: lexer, parser, AST, printer, checks. Pure; the
//!   `infralog-radl` crate (`radl/`), re-exported.
//! - [`tosca`]: TOSCA templates as IM reads them, translated to RADL. Pure; the
//!   `infralog-tosca` crate (`tosca/`), re-exported.
//! - [`app`]: starts and stops the whole server in order (log, read model, actors,
//!   HTTP).
//! - [`api`]: the IM REST API, content negotiation and error bodies.
//! - [`auth`]: the `AUTHORIZATION` header, identities, owners and their digests.
//! - [`projections`]: read models fed by committed events, rebuilt from the log at start.
//! - [`transfer`]: IM-compatible export and import, full-history export and import.
//! - [`history`]: an infrastructure's history: rendering, time travel, verification.
//! - [`metrics`]: Prometheus metrics and the access log.
//! - [`observe`]: VMs of real clouds compared with their clouds; differences become
//!   events.
//! - [`cli`]: the `infralog` command and its subcommands.
//!
//! The event log lives in the `infralog-events` crate, the actors in `infralog-actors`.
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod facades;
pub mod history;
pub mod metrics;
pub mod observe;
pub mod projections;
pub mod standby;
pub mod storage;
pub mod transfer;

// RADL and TOSCA are crates of their own (they import nothing else of the project, and
// the fuzz targets link them without actix or sled); the re-exports keep the paths
// `crate::radl::…` and `infralog::tosca::…` of the rest of the code.
pub use infralog_radl as radl;
pub use infralog_tosca as tosca;
