//! The address book of a facade's per-aggregate actors (Batch jobs, MLBench
//! runs): an actor is started on first use and started again when its earlier
//! one stopped, so callers never hold a dead address.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use actix::{Actor, Addr, Context};

/// Live actors by aggregate key.
pub(crate) struct ActorDirectory<K, A: Actor> {
    actors: Mutex<HashMap<K, Addr<A>>>,
}

impl<K: Hash + Eq, A: Actor<Context = Context<A>>> ActorDirectory<K, A> {
    pub(crate) fn new() -> Self {
        ActorDirectory {
            actors: Mutex::new(HashMap::new()),
        }
    }

    /// The actor of `key` if it runs. For callers outside actix (which cannot
    /// start one).
    pub(crate) fn existing(&self, key: &K) -> Option<Addr<A>> {
        self.lock().get(key).filter(|a| a.connected()).cloned()
    }

    /// The actor of `key`, started with `make` unless it runs. Must be called
    /// inside an actix system.
    pub(crate) fn get_or_start(&self, key: K, make: impl FnOnce() -> A) -> Addr<A> {
        let mut actors = self.lock();
        if let Some(addr) = actors.get(&key).filter(|a| a.connected()) {
            return addr.clone();
        }
        let addr = make().start();
        actors.insert(key, addr.clone());
        addr
    }

    /// Every actor's address, forgotten here (at shutdown, to stop them).
    pub(crate) fn take_all(&self) -> Vec<Addr<A>> {
        std::mem::take(&mut *self.lock()).into_values().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Addr<A>>> {
        // A poisoned lock only means another thread panicked while holding the
        // map; the map itself is still whole.
        self.actors.lock().unwrap_or_else(|e| e.into_inner())
    }
}
