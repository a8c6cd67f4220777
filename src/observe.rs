//! Reality under the log. The log says what infralog did; a real cloud can change
//! on its own (a container killed or removed by hand, an engine restarted). VMs of
//! clouds that can be observed are compared with their cloud when they are read
//! (at most once per [`Observer::min_gap`] per VM) and by a background sweep; each
//! VM's actor records a difference as a `VmObserved` event, so the read model
//! changes only through the log and `/events` and `?at=` show when reality
//! diverged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use infralog_actors::connectors::Connectors;
use infralog_actors::runtime::Registry;
use infralog_events::domain::{InfId, VmId};

use crate::projections::{CloudState, InfrastructureView, Projections};

/// Observations under way at once, in a sweep.
const SWEEP_PARALLELISM: usize = 16;

/// Compares VMs with their clouds, through their actors.
pub struct Observer {
    registry: Registry,
    connectors: Connectors,
    projections: Arc<Projections>,
    /// The least time between two observations of one VM.
    min_gap: Duration,
    last: Mutex<HashMap<(InfId, VmId), Instant>>,
}

impl Observer {
    /// An observer that asks each VM's cloud at most once per `min_gap`.
    pub fn new(
        registry: Registry,
        connectors: Connectors,
        projections: Arc<Projections>,
        min_gap: Duration,
    ) -> Self {
        Observer {
            registry,
            connectors,
            projections,
            min_gap,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// The VMs of `view` worth asking about: live, in a cloud, on a cloud that
    /// can be observed, not asked about within `min_gap`; `only` narrows to one VM.
    fn due(&self, view: &InfrastructureView, only: Option<VmId>) -> Vec<VmId> {
        let now = Instant::now();
        let mut last = match self.last.lock() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        view.live_vms()
            .filter(|vm| only.is_none_or(|only| only == vm.id))
            .filter(|vm| vm.cloud_vm_id.is_some())
            .filter(|vm| {
                matches!(
                    vm.cloud_state,
                    CloudState::Running | CloudState::Stopped | CloudState::Failed(_)
                )
            })
            .filter(|vm| self.connectors.observable(&vm.cloud.kind))
            .filter_map(|vm| {
                let key = (view.id, vm.id);
                let fresh = last
                    .get(&key)
                    .is_some_and(|at| now.duration_since(*at) < self.min_gap);
                if fresh {
                    return None;
                }
                last.insert(key, now);
                Some(vm.id)
            })
            .collect()
    }

    /// Observes the due VMs of `view` (or only `only`) and returns the view as the
    /// log now says, once what they recorded is applied. Observations that fail
    /// or find a busy actor change nothing: the VM is asked again later.
    pub async fn refresh(
        &self,
        view: InfrastructureView,
        only: Option<VmId>,
    ) -> InfrastructureView {
        let due = self.due(&view, only);
        if due.is_empty() {
            return view;
        }
        let outcomes = join_all(due.iter().map(|vm| self.registry.observe(view.id, *vm))).await;
        let position = outcomes
            .into_iter()
            .filter_map(Result::ok)
            .map(|outcome| outcome.position)
            .max()
            .unwrap_or(0);
        if position == 0 {
            return view;
        }
        self.projections.wait_for(position).await;
        let current = self
            .projections
            .read()
            .infrastructures
            .get(&view.id)
            .cloned();
        current.unwrap_or(view)
    }

    /// One pass over every served infrastructure's due VMs.
    pub async fn sweep(&self) {
        let due: Vec<(InfId, VmId)> = {
            let views: Vec<InfrastructureView> = self
                .projections
                .read()
                .infrastructures
                .values()
                .filter(|view| view.is_served())
                .filter(|view| {
                    view.live_vms()
                        .any(|vm| self.connectors.observable(&vm.cloud.kind))
                })
                .cloned()
                .collect();
            views
                .iter()
                .flat_map(|view| self.due(view, None).into_iter().map(|vm| (view.id, vm)))
                .collect()
        };
        for chunk in due.chunks(SWEEP_PARALLELISM) {
            join_all(
                chunk
                    .iter()
                    .map(|(inf, vm)| self.registry.observe(*inf, *vm)),
            )
            .await;
        }
    }

    /// Sweeps every `interval` until the returned handle is aborted.
    pub fn spawn_sweep(self: Arc<Self>, interval: Duration) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(async move {
            let mut tick = actix_web::rt::time::interval(interval.max(Duration::from_millis(100)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.sweep().await;
            }
        })
    }
}
