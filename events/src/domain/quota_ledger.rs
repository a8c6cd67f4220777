//! The IMC facade's quota ledger (stream `imc-ledger`): every placement's
//! reservation of instances, cores and memory on a site, its events and its fold.
//! Kept apart from the placements' own events, which it shares no state with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a reservation holds: instances, cores and memory (GB) on one site.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Instances.
    pub instances: u64,
    /// CPU cores.
    pub cores: u64,
    /// Memory, GB.
    pub memory: u64,
}

impl Usage {
    /// The sum of two usages.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances.saturating_add(other.instances),
            cores: self.cores.saturating_add(other.cores),
            memory: self.memory.saturating_add(other.memory),
        }
    }
}

/// What happened to the quota ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    /// A placement holds this usage on a site from now on (replacing what it held).
    UsageReserved {
        /// The placement.
        placement: Uuid,
        /// Whose quota it counts against.
        identity: String,
        /// The site.
        site: String,
        /// How much.
        usage: Usage,
    },
    /// A placement holds nothing any more.
    UsageReleased {
        /// The placement.
        placement: Uuid,
    },
}

impl LedgerEvent {
    /// The event's stable type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            LedgerEvent::UsageReserved { .. } => "UsageReserved",
            LedgerEvent::UsageReleased { .. } => "UsageReleased",
        }
    }
}

/// One placement's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Whose quota it counts against.
    pub identity: String,
    /// The site.
    pub site: String,
    /// How much.
    pub usage: Usage,
}

/// The ledger folded from its stream: every placement's reservation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerState {
    /// Reservations by placement.
    pub reservations: BTreeMap<Uuid, Reservation>,
    /// The stream's version.
    pub version: u64,
}

impl LedgerState {
    /// What `identity` holds on `site`, leaving out the reservation of `except`.
    pub fn usage_of(&self, identity: &str, site: &str, except: Option<Uuid>) -> Usage {
        self.reservations
            .iter()
            .filter(|(id, r)| Some(**id) != except && r.identity == identity && r.site == site)
            .fold(Usage::default(), |sum, (_, r)| sum.plus(r.usage))
    }
}

/// Folds one event into the ledger.
pub fn evolve_ledger(mut state: LedgerState, event: &LedgerEvent) -> LedgerState {
    state.version += 1;
    match event {
        LedgerEvent::UsageReserved {
            placement,
            identity,
            site,
            usage,
        } => {
            state.reservations.insert(
                *placement,
                Reservation {
                    identity: identity.clone(),
                    site: site.clone(),
                    usage: *usage,
                },
            );
        }
        LedgerEvent::UsageReleased { placement } => {
            state.reservations.remove(placement);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_sums_an_identitys_reservations_on_a_site() {
        let (p, q, r) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let reserve = |placement, identity: &str, site: &str| LedgerEvent::UsageReserved {
            placement,
            identity: identity.into(),
            site: site.into(),
            usage: Usage {
                instances: 1,
                cores: 2,
                memory: 4,
            },
        };
        let state = [
            reserve(p, "alice", "a"),
            reserve(q, "alice", "a"),
            reserve(r, "bob", "a"),
            LedgerEvent::UsageReleased { placement: q },
        ]
        .iter()
        .fold(LedgerState::default(), evolve_ledger);
        assert_eq!(state.usage_of("alice", "a", None).instances, 1);
        assert_eq!(state.usage_of("alice", "a", Some(p)).instances, 0);
        assert_eq!(state.usage_of("bob", "a", None).cores, 2);
        assert_eq!(state.version, 4);
    }
}
