//! The black-box tests of the API, in one binary: every module starts its servers
//! through [`harness`] (in this process on port 0, or the real binary as a child
//! for `kill -9` and for reading its log), talks to them with the one raw HTTP
//! client of [`client`], and sends the documents of [`fixtures`]. One module per
//! former test file, so tests added to an area go to its module.
//!
//! The tests run in parallel threads of this one process: none may set environment
//! variables, install a global tracing subscriber or bind a fixed port; a test that
//! reads a server's log starts the binary as a child.

mod client;
mod fixtures;
mod harness;

mod auth;
mod bodies;
mod clouds_and_stats;
mod cluster;
mod cluster_failover;
mod docker;
mod facades;
mod history;
mod history_transfer;
mod http;
mod im_transfer;
mod limits;
mod log_damage;
mod observability;
mod postgres;
mod races;
mod reimport;
mod restart;
mod routes;
mod slow_bodies;
mod tosca;
mod vms;
