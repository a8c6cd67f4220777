//! What happened: ids, domain events, states and the pure fold (`evolve`), the
//! envelope, the codec, the [`EventStore`](store::EventStore) trait and the sled store.
//!
//! This crate knows no actix, no HTTP and no RADL.
pub mod domain;
