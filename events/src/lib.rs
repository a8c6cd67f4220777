//! What happened: ids, domain events, states and the pure fold (`evolve`), the
//! envelope, the codec, the [`EventStore`](store::EventStore) trait and the sled store.
//!
//! This crate knows no actix, no HTTP and no RADL.
#![warn(missing_docs)]

pub mod codec;
pub mod domain;
pub mod envelope;
pub mod store;

pub use envelope::{Envelope, Metadata, NewEvent, StreamId};
pub use store::{
    AppendRequest, Appended, CommitObserver, EventStore, ExpectedVersion, ImportRequest, Imported,
    ImportedEvent, PendingAppend, PendingImport, PgStore, PgStoreConfig, SledStore,
    SledStoreConfig, StoreError, StoreHealth, Subscription,
};
