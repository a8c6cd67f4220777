//! Decisions of an infrastructure: which events a command appends.

use infralog_events::domain::infrastructure::{
    Contextualization, ContextualizationPlan, FailedLaunch, ImportedInfrastructure,
    InfrastructureEvent, InfrastructurePhase, InfrastructureState, LiveInfrastructure, PlannedVm,
    SlotPhase,
};
use infralog_events::domain::{CloudRef, OwnerRecord, VmId};

use super::DomainError;
use crate::contextualization::{FINISH_LINES, START_LINES};

/// Resources to add, prepared by the API layer (which knows RADL): the RADL the
/// infrastructure will have, and one entry per VM to launch, in deploy order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRequest {
    /// The infrastructure's RADL from now on: the stored RADL merged with the request,
    /// deploys replaced.
    pub radl: String,
    /// The request with its references resolved, what the new VMs are made of,
    /// when it differs from `radl`.
    pub request_radl: Option<String>,
    /// The VMs to launch, one per VM of each `deploy`, in deploy order.
    pub vms: Vec<RequestedVm>,
    /// How contextualization follows (`None`: IM's `context=false`).
    pub contextualization: Option<ContextualizationPlan>,
}

/// One VM to launch, as the API layer read it from a `deploy` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedVm {
    /// The RADL system the VM is made of.
    pub system: String,
    /// The cloud credential line to launch it in (its id and connector type).
    pub cloud: CloudRef,
    /// See [`PlannedVm::new_password`].
    pub new_password: bool,
}

/// What can be asked of an infrastructure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfrastructureCommand {
    /// Create a new infrastructure, with its first request of resources. Refused when
    /// the id is live or being destroyed.
    Create {
        /// Who owns it from the start.
        owners: Vec<OwnerRecord>,
        /// The TOSCA document it is created from; `None` for a RADL create.
        tosca: Option<String>,
        /// The RADL and the VMs to launch.
        resources: ResourceRequest,
    },
    /// Add resources; `expected_version` is the version the request was prepared
    /// against (its RADL merge depends on the stored RADL).
    RequestResources {
        /// The version of the stream the request was prepared against.
        expected_version: u64,
        /// The merged RADL and the VMs to launch.
        resources: ResourceRequest,
        /// The infrastructure's TOSCA document from now on (a TOSCA add), recorded
        /// with the request so that the two never part.
        tosca: Option<String>,
    },
    /// Record how the launches of the last request ended.
    RecordLaunches {
        /// The VMs that reached their cloud.
        launched: Vec<VmId>,
        /// The VMs whose launch failed, each with the cloud's message.
        failed: Vec<FailedLaunch>,
    },
    /// Start a contextualization run over `vm_ids` (all live VMs when `None`).
    StartContextualization {
        /// How the run goes (simulated or disabled).
        plan: ContextualizationPlan,
        /// When the run begins, in milliseconds since the epoch.
        now_ms: i64,
        /// The VMs to configure; `None` for every launched VM.
        vm_ids: Option<Vec<VmId>>,
    },
    /// End a run (a timer fired). Stale runs are ignored.
    FinishContextualization {
        /// The run to end; a run other than the current one changes nothing.
        run: u32,
    },
    /// Record output of a real run. Output of a run other than the current one
    /// changes nothing.
    RecordContextualizationOutput {
        /// The run the output belongs to.
        run: u32,
        /// The output: for each batch, the VM it is about (`None`: the run as a
        /// whole) and its whole lines.
        batches: Vec<(Option<VmId>, String)>,
    },
    /// End a real run with its outcome. Stale runs are ignored.
    EndContextualization {
        /// The run that ended.
        run: u32,
        /// Whether it configured every VM it was to configure.
        configured: bool,
        /// Why it failed, for the contextualization log; `None` on success.
        message: Option<String>,
    },
    /// Ask to finalize VMs (IM's `RemoveResource`). Every id must name a VM not yet
    /// removed; a repeated id counts once.
    RequestRemoval {
        /// The VMs to finalize.
        vm_ids: Vec<VmId>,
        /// How contextualization follows the removal (`None`: it does not).
        contextualization: Option<ContextualizationPlan>,
    },
    /// Record that these VMs are gone from their clouds.
    RecordRemovals {
        /// The VMs now finalized.
        vm_ids: Vec<VmId>,
    },
    /// Replace the RADL without launching anything (reconfigure, add without deploys).
    UpdateRadl {
        /// The version of the stream the new RADL was computed against.
        expected_version: u64,
        /// The infrastructure's RADL from now on.
        radl: String,
    },
    /// Replace the owners (IM's `change_auth`).
    ChangeOwners {
        /// The version of the stream the change was prepared against.
        expected_version: u64,
        /// The owners from now on, exactly these.
        owners: Vec<OwnerRecord>,
    },
    /// Begin destroying the infrastructure. Refused while resources are being added;
    /// a destruction under way just goes on.
    StartDestruction {
        /// Destroy even when a cloud refuses to finalize a VM.
        force: bool,
    },
    /// Record that the destruction ended: the id answers 404 from now on.
    FinishDestruction,
    /// A cloud refused to finalize a VM and `force` was not set.
    AbandonDestruction {
        /// The cloud's refusal, for the client.
        message: String,
    },
    /// Stop serving the infrastructure here (an export with `delete`); it can be
    /// imported again.
    Evict,
    /// Seal the history of an id about to be imported again: what it recorded in
    /// its earlier life stays behind the boundary (the API checked that the
    /// importer owned it at its last event). Nothing to seal on an empty stream,
    /// unless `leftovers`: VM events of an import of this id that stopped before
    /// its first infrastructure event.
    StartEpoch {
        /// Whether VM events of an interrupted import of this id are in the stream.
        leftovers: bool,
    },
    /// Take in an infrastructure exported elsewhere, keeping its id. Only an id not
    /// in use (never used, destroyed or evicted) can be imported.
    Import {
        /// The infrastructure as it was exported: owners, RADL, VMs.
        imported: Box<ImportedInfrastructure>,
    },
}

/// Decides the events of `command` on `state`.
pub fn decide(
    state: &InfrastructureState,
    command: InfrastructureCommand,
) -> Result<Vec<InfrastructureEvent>, DomainError> {
    use InfrastructureCommand as C;
    match command {
        C::Create {
            owners,
            tosca,
            resources,
        } => {
            if matches!(
                state.phase,
                InfrastructurePhase::Live(_) | InfrastructurePhase::Destroying { .. }
            ) {
                return Err(DomainError::AlreadyExists);
            }
            Ok(vec![
                InfrastructureEvent::Created { owners, tosca },
                request_event(VmId(0), resources),
            ])
        }
        C::RequestResources {
            expected_version,
            resources,
            tosca,
        } => {
            let live = live_for_change(state)?;
            check_version(state, expected_version)?;
            let mut events: Vec<InfrastructureEvent> = tosca
                .map(|tosca| InfrastructureEvent::ToscaUpdated { tosca })
                .into_iter()
                .collect();
            events.push(request_event(live.next_vm_id(), resources));
            Ok(events)
        }
        C::RecordLaunches { launched, failed } => {
            existing(state)?;
            Ok(vec![InfrastructureEvent::ResourcesLaunched {
                launched,
                failed,
            }])
        }
        C::StartContextualization {
            plan,
            now_ms,
            vm_ids,
        } => {
            let live = live(state)?;
            let run = live.contextualization.last_run() + 1;
            let vm_ids = vm_ids.unwrap_or_else(|| launched_vm_ids(live));
            let mut events = vec![InfrastructureEvent::ContextualizationStarted {
                run,
                plan,
                started_at_ms: now_ms,
                vm_ids,
            }];
            match plan {
                ContextualizationPlan::Disabled => {
                    events.push(InfrastructureEvent::ContextualizationFinished {
                        run,
                        configured: true,
                    });
                }
                ContextualizationPlan::Simulated { .. } => {
                    events.extend(START_LINES.iter().map(|line| {
                        InfrastructureEvent::ContextualizationProgressed {
                            run,
                            message: line.to_string(),
                        }
                    }));
                }
                // A real run writes IM's lines of its preparation at once (the VMs are
                // reached through their cloud, with nothing to copy or install), then
                // Ansible's output as it comes.
                ContextualizationPlan::Ansible { .. } => {
                    events.extend(START_LINES.iter().chain(FINISH_LINES.iter()).map(|line| {
                        InfrastructureEvent::ContextualizationProgressed {
                            run,
                            message: line.to_string(),
                        }
                    }));
                }
            }
            Ok(events)
        }
        C::RecordContextualizationOutput { run, batches } => {
            if !is_current_run(live(state)?, run) {
                return Ok(Vec::new());
            }
            Ok(batches
                .into_iter()
                .filter(|(_, text)| !text.is_empty())
                .map(
                    |(vm_id, text)| InfrastructureEvent::ContextualizationOutput {
                        run,
                        vm_id,
                        text,
                    },
                )
                .collect())
        }
        C::EndContextualization {
            run,
            configured,
            message,
        } => {
            if !is_current_run(live(state)?, run) {
                return Ok(Vec::new());
            }
            let mut events: Vec<InfrastructureEvent> = message
                .into_iter()
                .map(|message| InfrastructureEvent::ContextualizationProgressed { run, message })
                .collect();
            events.push(InfrastructureEvent::ContextualizationFinished { run, configured });
            Ok(events)
        }
        C::FinishContextualization { run } => {
            let live = live(state)?;
            match &live.contextualization {
                Contextualization::Running { run: current, .. } if *current == run => {
                    let mut events: Vec<InfrastructureEvent> = FINISH_LINES
                        .iter()
                        .map(|line| InfrastructureEvent::ContextualizationProgressed {
                            run,
                            message: line.to_string(),
                        })
                        .collect();
                    events.push(InfrastructureEvent::ContextualizationFinished {
                        run,
                        configured: true,
                    });
                    Ok(events)
                }
                _ => Ok(Vec::new()),
            }
        }
        C::RequestRemoval {
            vm_ids,
            contextualization,
        } => {
            let live = live_for_change(state)?;
            // Every id is checked before anything is removed.
            for vm in &vm_ids {
                match live.slot(*vm).map(|slot| slot.phase) {
                    None => return Err(DomainError::InvalidVmId),
                    Some(SlotPhase::Removing | SlotPhase::Removed) => {
                        return Err(DomainError::DeletedVm)
                    }
                    Some(_) => {}
                }
            }
            let mut unique = Vec::with_capacity(vm_ids.len());
            for vm in vm_ids {
                if !unique.contains(&vm) {
                    unique.push(vm);
                }
            }
            Ok(vec![InfrastructureEvent::RemovalRequested {
                vm_ids: unique,
                contextualization,
            }])
        }
        C::RecordRemovals { vm_ids } => {
            existing(state)?;
            Ok(vec![InfrastructureEvent::ResourcesRemoved { vm_ids }])
        }
        C::UpdateRadl {
            expected_version,
            radl,
        } => {
            live_for_change(state)?;
            check_version(state, expected_version)?;
            Ok(vec![InfrastructureEvent::RadlUpdated { radl }])
        }
        C::ChangeOwners {
            expected_version,
            owners,
        } => {
            live(state)?;
            check_version(state, expected_version)?;
            Ok(vec![InfrastructureEvent::OwnersChanged { owners }])
        }
        C::StartDestruction { force } => match &state.phase {
            InfrastructurePhase::Live(live) if !live.adding.is_empty() => {
                Err(DomainError::IncorrectState)
            }
            InfrastructurePhase::Live(_) => {
                Ok(vec![InfrastructureEvent::DestructionStarted { force }])
            }
            // A destruction already under way just goes on.
            InfrastructurePhase::Destroying { .. } => Ok(Vec::new()),
            _ => Err(DomainError::NotFound),
        },
        C::FinishDestruction => match &state.phase {
            InfrastructurePhase::Destroying { .. } => Ok(vec![InfrastructureEvent::Destroyed]),
            _ => Err(DomainError::NotFound),
        },
        C::AbandonDestruction { message } => match &state.phase {
            InfrastructurePhase::Destroying { .. } => {
                Ok(vec![InfrastructureEvent::DestructionFailed { message }])
            }
            _ => Err(DomainError::NotFound),
        },
        C::Evict => {
            live(state)?;
            Ok(vec![InfrastructureEvent::Evicted])
        }
        C::StartEpoch { leftovers } => match state.phase {
            InfrastructurePhase::Live(_) | InfrastructurePhase::Destroying { .. } => {
                Err(DomainError::AlreadyExists)
            }
            InfrastructurePhase::Unborn if state.version == 0 && !leftovers => Ok(Vec::new()),
            InfrastructurePhase::Unborn
            | InfrastructurePhase::Destroyed
            | InfrastructurePhase::Evicted => Ok(vec![InfrastructureEvent::EpochStarted]),
        },
        C::Import { imported } => match state.phase {
            InfrastructurePhase::Live(_) | InfrastructurePhase::Destroying { .. } => {
                Err(DomainError::AlreadyExists)
            }
            InfrastructurePhase::Unborn
            | InfrastructurePhase::Destroyed
            | InfrastructurePhase::Evicted => Ok(vec![InfrastructureEvent::Imported(imported)]),
        },
    }
}

fn request_event(first_id: VmId, resources: ResourceRequest) -> InfrastructureEvent {
    let vms = resources
        .vms
        .into_iter()
        .enumerate()
        .map(|(offset, vm)| PlannedVm {
            vm_id: VmId(first_id.0 + offset as u32),
            system: vm.system,
            cloud: vm.cloud,
            new_password: vm.new_password,
        })
        .collect();
    InfrastructureEvent::ResourcesRequested {
        radl: resources.radl,
        request_radl: resources.request_radl,
        vms,
        contextualization: resources.contextualization,
    }
}

fn launched_vm_ids(live: &LiveInfrastructure) -> Vec<VmId> {
    live.vms
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.phase == SlotPhase::Launched)
        .map(|(i, _)| VmId(i as u32))
        .collect()
}

fn live(state: &InfrastructureState) -> Result<&LiveInfrastructure, DomainError> {
    state.live().ok_or(DomainError::NotFound)
}

/// Live, and not being destroyed: what changes of resources need.
fn live_for_change(state: &InfrastructureState) -> Result<&LiveInfrastructure, DomainError> {
    match &state.phase {
        InfrastructurePhase::Live(live) => Ok(live),
        InfrastructurePhase::Destroying { .. } => Err(DomainError::BeingDestroyed),
        _ => Err(DomainError::NotFound),
    }
}

fn existing(state: &InfrastructureState) -> Result<&LiveInfrastructure, DomainError> {
    state.existing().ok_or(DomainError::NotFound)
}

fn check_version(state: &InfrastructureState, expected: u64) -> Result<(), DomainError> {
    if state.version == expected {
        Ok(())
    } else {
        Err(DomainError::Conflict {
            expected,
            actual: state.version,
        })
    }
}

/// Whether `run` is the contextualization run under way.
fn is_current_run(live: &LiveInfrastructure, run: u32) -> bool {
    matches!(&live.contextualization, Contextualization::Running { run: current, .. } if *current == run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::infrastructure::{evolve, fold};
    use InfrastructureCommand as C;
    use InfrastructureEvent as E;

    fn dummy() -> CloudRef {
        CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: String::new(),
        }
    }

    fn owner() -> OwnerRecord {
        OwnerRecord {
            username: "u".into(),
            salt: [1; 16],
            digest: [2; 32],
            via_token: false,
        }
    }

    fn request(systems: &[&str]) -> ResourceRequest {
        ResourceRequest {
            radl: format!("radl with {}", systems.join(",")),
            request_radl: Some(format!("request with {}", systems.join(","))),
            vms: systems
                .iter()
                .map(|s| RequestedVm {
                    system: s.to_string(),
                    cloud: dummy(),
                    new_password: true,
                })
                .collect(),
            contextualization: Some(ContextualizationPlan::Disabled),
        }
    }

    fn planned(id: u32, system: &str) -> PlannedVm {
        PlannedVm {
            vm_id: VmId(id),
            system: system.into(),
            cloud: dummy(),
            new_password: true,
        }
    }

    fn created_with(systems: &[&str]) -> Vec<E> {
        vec![
            E::Created {
                owners: vec![owner()],
                tosca: None,
            },
            E::ResourcesRequested {
                radl: format!("radl with {}", systems.join(",")),
                request_radl: Some(format!("request with {}", systems.join(","))),
                vms: systems
                    .iter()
                    .enumerate()
                    .map(|(i, s)| planned(i as u32, s))
                    .collect(),
                contextualization: Some(ContextualizationPlan::Disabled),
            },
        ]
    }

    /// Given these events, when this command: the decision.
    fn given_when(given: &[E], when: C) -> Result<Vec<E>, DomainError> {
        decide(&fold(given), when)
    }

    fn launched(systems: &[&str]) -> Vec<E> {
        let mut events = created_with(systems);
        events.push(E::ResourcesLaunched {
            launched: (0..systems.len() as u32).map(VmId).collect(),
            failed: vec![],
        });
        events
    }

    #[test]
    fn creating_records_the_owners_and_the_vms_in_deploy_order() {
        let events = given_when(
            &[],
            C::Create {
                owners: vec![owner()],
                tosca: None,
                resources: request(&["front", "wn", "wn"]),
            },
        );
        assert_eq!(events, Ok(created_with(&["front", "wn", "wn"])));
    }

    #[test]
    fn creating_an_existing_infrastructure_is_refused() {
        let events = given_when(
            &created_with(&["a"]),
            C::Create {
                owners: vec![owner()],
                tosca: None,
                resources: request(&["a"]),
            },
        );
        assert_eq!(events, Err(DomainError::AlreadyExists));
    }

    #[test]
    fn added_vms_take_the_next_ids_never_reused() {
        let mut given = launched(&["a", "b", "c"]);
        given.push(E::RemovalRequested {
            vm_ids: vec![VmId(1), VmId(2)],
            contextualization: Some(ContextualizationPlan::Disabled),
        });
        given.push(E::ResourcesRemoved {
            vm_ids: vec![VmId(1), VmId(2)],
        });
        let version = given.len() as u64;
        let events = given_when(
            &given,
            C::RequestResources {
                expected_version: version,
                resources: request(&["b"]),
                tosca: None,
            },
        );
        assert_eq!(
            events,
            Ok(vec![E::ResourcesRequested {
                radl: "radl with b".into(),
                request_radl: Some("request with b".into()),
                vms: vec![planned(3, "b")],
                contextualization: Some(ContextualizationPlan::Disabled),
            }])
        );
    }

    #[test]
    fn a_tosca_add_records_the_merged_template_with_the_request() {
        let given = launched(&["a"]);
        let version = given.len() as u64;
        let events = given_when(
            &given,
            C::RequestResources {
                expected_version: version,
                resources: request(&["a"]),
                tosca: Some("merged: template\n".into()),
            },
        );
        assert_eq!(
            events,
            Ok(vec![
                E::ToscaUpdated {
                    tosca: "merged: template\n".into()
                },
                E::ResourcesRequested {
                    radl: "radl with a".into(),
                    request_radl: Some("request with a".into()),
                    vms: vec![planned(1, "a")],
                    contextualization: Some(ContextualizationPlan::Disabled),
                },
            ])
        );
        let mut all = given.clone();
        all.extend(events.unwrap());
        assert_eq!(
            fold(&all).live().and_then(|l| l.tosca.as_deref()),
            Some("merged: template\n")
        );
    }

    #[test]
    fn an_add_prepared_against_an_old_version_conflicts() {
        let events = given_when(
            &launched(&["a"]),
            C::RequestResources {
                expected_version: 2,
                resources: request(&["a"]),
                tosca: None,
            },
        );
        assert_eq!(
            events,
            Err(DomainError::Conflict {
                expected: 2,
                actual: 3
            })
        );
    }

    #[test]
    fn adding_during_destruction_is_refused_as_ims_does() {
        let mut given = launched(&["a"]);
        given.push(E::DestructionStarted { force: false });
        let events = given_when(
            &given,
            C::RequestResources {
                expected_version: 4,
                resources: request(&["a"]),
                tosca: None,
            },
        );
        assert_eq!(events, Err(DomainError::BeingDestroyed));
    }

    #[test]
    fn a_request_without_deploys_fails_the_infrastructure_state_flag() {
        let state = fold(&created_with(&[]));
        assert_eq!(state.live().and_then(|l| l.configured), Some(false));
    }

    #[test]
    fn disabled_contextualization_starts_and_finishes_at_once() {
        let events = given_when(
            &launched(&["a", "b"]),
            C::StartContextualization {
                plan: ContextualizationPlan::Disabled,
                now_ms: 5,
                vm_ids: None,
            },
        );
        assert_eq!(
            events,
            Ok(vec![
                E::ContextualizationStarted {
                    run: 1,
                    plan: ContextualizationPlan::Disabled,
                    started_at_ms: 5,
                    vm_ids: vec![VmId(0), VmId(1)],
                },
                E::ContextualizationFinished {
                    run: 1,
                    configured: true
                },
            ])
        );
    }

    #[test]
    fn a_simulated_run_begins_with_master_selection_and_ends_configured() {
        let plan = ContextualizationPlan::Simulated { duration_ms: 2000 };
        let mut given = launched(&["a"]);
        let started = decide(
            &fold(&given),
            C::StartContextualization {
                plan,
                now_ms: 0,
                vm_ids: None,
            },
        )
        .expect("a live infrastructure starts contextualizing");
        assert_eq!(
            started[1],
            E::ContextualizationProgressed {
                run: 1,
                message: "Select master VM".into()
            }
        );
        given.extend(started);
        let finished = given_when(&given, C::FinishContextualization { run: 1 })
            .expect("the running run finishes");
        assert_eq!(
            finished.last(),
            Some(&E::ContextualizationFinished {
                run: 1,
                configured: true
            })
        );
        given.extend(finished);
        assert_eq!(fold(&given).live().and_then(|l| l.configured), Some(true));
    }

    #[test]
    fn a_timer_of_a_superseded_run_changes_nothing() {
        let plan = ContextualizationPlan::Simulated { duration_ms: 2000 };
        let mut given = launched(&["a"]);
        for now_ms in [0, 10] {
            let events = decide(
                &fold(&given),
                C::StartContextualization {
                    plan,
                    now_ms,
                    vm_ids: None,
                },
            )
            .expect("starts");
            given.extend(events);
        }
        assert_eq!(
            given_when(&given, C::FinishContextualization { run: 1 }),
            Ok(vec![])
        );
        assert!(!given_when(&given, C::FinishContextualization { run: 2 })
            .expect("the current run finishes")
            .is_empty());
    }

    #[test]
    fn removal_validates_every_id_before_removing_any() {
        let mut given = launched(&["a", "b"]);
        assert_eq!(
            given_when(
                &given,
                C::RequestRemoval {
                    vm_ids: vec![VmId(0), VmId(7)],
                    contextualization: Some(ContextualizationPlan::Disabled),
                }
            ),
            Err(DomainError::InvalidVmId)
        );
        given.push(E::RemovalRequested {
            vm_ids: vec![VmId(1)],
            contextualization: Some(ContextualizationPlan::Disabled),
        });
        given.push(E::ResourcesRemoved {
            vm_ids: vec![VmId(1)],
        });
        assert_eq!(
            given_when(
                &given,
                C::RequestRemoval {
                    vm_ids: vec![VmId(0), VmId(1)],
                    contextualization: Some(ContextualizationPlan::Disabled),
                }
            ),
            Err(DomainError::DeletedVm)
        );
        assert_eq!(
            given_when(
                &given,
                C::RequestRemoval {
                    vm_ids: vec![VmId(0), VmId(0)],
                    contextualization: None,
                }
            ),
            Ok(vec![E::RemovalRequested {
                vm_ids: vec![VmId(0)],
                contextualization: None,
            }])
        );
    }

    #[test]
    fn destroying_while_adding_is_an_incorrect_state() {
        assert_eq!(
            given_when(&created_with(&["a"]), C::StartDestruction { force: false }),
            Err(DomainError::IncorrectState)
        );
    }

    #[test]
    fn destruction_goes_from_started_to_destroyed_and_then_nothing_is_found() {
        let mut given = launched(&["a"]);
        let started = given_when(&given, C::StartDestruction { force: true });
        assert_eq!(started, Ok(vec![E::DestructionStarted { force: true }]));
        given.push(E::DestructionStarted { force: true });
        assert_eq!(
            given_when(&given, C::StartDestruction { force: false }),
            Ok(vec![])
        );
        assert_eq!(
            given_when(&given, C::FinishDestruction),
            Ok(vec![E::Destroyed])
        );
        given.push(E::Destroyed);
        assert_eq!(
            given_when(&given, C::StartDestruction { force: false }),
            Err(DomainError::NotFound)
        );
        assert_eq!(
            given_when(
                &given,
                C::AbandonDestruction {
                    message: "x".into()
                }
            ),
            Err(DomainError::NotFound)
        );
        assert_eq!(given_when(&given, C::Evict), Err(DomainError::NotFound));
    }

    #[test]
    fn an_abandoned_destruction_leaves_the_infrastructure_live() {
        let mut given = launched(&["a"]);
        given.push(E::DestructionStarted { force: false });
        let events = given_when(
            &given,
            C::AbandonDestruction {
                message: "cloud refused".into(),
            },
        )
        .expect("a destruction under way can be abandoned");
        given.extend(events);
        assert!(fold(&given).live().is_some());
    }

    #[test]
    fn commands_on_an_unborn_infrastructure_are_not_found() {
        for command in [
            C::FinishDestruction,
            C::Evict,
            C::FinishContextualization { run: 1 },
            C::RequestRemoval {
                vm_ids: vec![VmId(0)],
                contextualization: Some(ContextualizationPlan::Disabled),
            },
        ] {
            assert_eq!(given_when(&[], command), Err(DomainError::NotFound));
        }
    }

    #[test]
    fn owners_change_only_against_the_version_they_were_prepared_on() {
        let given = launched(&["a"]);
        let new_owners = vec![owner(), owner()];
        assert_eq!(
            given_when(
                &given,
                C::ChangeOwners {
                    expected_version: 3,
                    owners: new_owners.clone()
                }
            ),
            Ok(vec![E::OwnersChanged {
                owners: new_owners.clone()
            }])
        );
        let state = evolve(
            fold(&given),
            &E::OwnersChanged {
                owners: new_owners.clone(),
            },
        );
        assert_eq!(state.live().map(|l| l.owners.len()), Some(2));
    }

    #[test]
    fn an_evicted_infrastructure_can_be_created_again() {
        let mut given = launched(&["a"]);
        given.push(E::Evicted);
        let events = given_when(
            &given,
            C::Create {
                owners: vec![owner()],
                tosca: None,
                resources: request(&[]),
            },
        );
        assert!(events.is_ok());
    }

    fn imported() -> Box<ImportedInfrastructure> {
        Box::new(ImportedInfrastructure {
            owners: vec![owner()],
            tosca: None,
            radl: "system a ( )".into(),
            vms: Vec::new(),
            configured: None,
            contmsg: String::new(),
            auto_delete_snapshots: Vec::new(),
            created_at_s: 0,
        })
    }

    #[test]
    fn an_import_takes_an_unused_destroyed_or_evicted_id() {
        let mut evicted = launched(&["a"]);
        evicted.push(E::Evicted);
        let mut destroyed = launched(&["a"]);
        destroyed.extend([E::DestructionStarted { force: false }, E::Destroyed]);
        for given in [Vec::new(), evicted, destroyed] {
            let events = given_when(
                &given,
                C::Import {
                    imported: imported(),
                },
            );
            assert_eq!(events, Ok(vec![E::Imported(imported())]));
        }
    }

    #[test]
    fn an_import_of_an_id_in_use_is_refused() {
        let mut destroying = launched(&["a"]);
        destroying.push(E::DestructionStarted { force: false });
        for given in [launched(&["a"]), destroying] {
            assert_eq!(
                given_when(
                    &given,
                    C::Import {
                        imported: imported(),
                    },
                ),
                Err(DomainError::AlreadyExists)
            );
        }
    }

    #[test]
    fn a_reimport_seals_the_earlier_life_of_a_used_id_first() {
        let mut evicted = launched(&["a"]);
        evicted.push(E::Evicted);
        let mut destroyed = launched(&["a"]);
        destroyed.extend([E::DestructionStarted { force: false }, E::Destroyed]);
        // An import that stopped after its boundary leaves an unborn, used stream.
        let mut interrupted = evicted.clone();
        interrupted.push(E::EpochStarted);
        for given in [evicted, destroyed, interrupted] {
            assert_eq!(
                given_when(&given, C::StartEpoch { leftovers: false }),
                Ok(vec![E::EpochStarted])
            );
            // After the boundary the import goes on as on a new id.
            let mut sealed = given.clone();
            sealed.push(E::EpochStarted);
            assert_eq!(
                given_when(
                    &sealed,
                    C::Import {
                        imported: imported(),
                    },
                ),
                Ok(vec![E::Imported(imported())])
            );
        }
    }

    #[test]
    fn a_new_id_needs_no_boundary_and_an_id_in_use_gets_none() {
        assert_eq!(
            given_when(&[], C::StartEpoch { leftovers: false }),
            Ok(vec![])
        );
        // VM events left by an import that stopped before its infrastructure event.
        assert_eq!(
            given_when(&[], C::StartEpoch { leftovers: true }),
            Ok(vec![E::EpochStarted])
        );
        let mut destroying = launched(&["a"]);
        destroying.push(E::DestructionStarted { force: false });
        for given in [launched(&["a"]), destroying] {
            assert_eq!(
                given_when(&given, C::StartEpoch { leftovers: true }),
                Err(DomainError::AlreadyExists)
            );
        }
    }

    fn ansible_run_started(systems: &[&str]) -> Vec<E> {
        let mut events = launched(systems);
        events.push(E::ContextualizationStarted {
            run: 1,
            plan: ContextualizationPlan::Ansible { max_time_s: 60 },
            started_at_ms: 0,
            vm_ids: (0..systems.len() as u32).map(VmId).collect(),
        });
        events
    }

    #[test]
    fn a_real_run_writes_ims_preparation_lines_at_once() {
        let events = given_when(
            &launched(&["front"]),
            C::StartContextualization {
                plan: ContextualizationPlan::Ansible { max_time_s: 60 },
                now_ms: 5,
                vm_ids: None,
            },
        )
        .expect("started");
        let lines: Vec<&str> = events
            .iter()
            .filter_map(|event| match event {
                E::ContextualizationProgressed { message, .. } => Some(message.as_str()),
                _ => None,
            })
            .collect();
        let expected: Vec<&str> = START_LINES
            .iter()
            .chain(FINISH_LINES.iter())
            .copied()
            .collect();
        assert_eq!(lines, expected);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, E::ContextualizationFinished { .. })),
            "a real run ends when Ansible does"
        );
    }

    #[test]
    fn output_of_the_current_run_is_recorded_and_of_an_older_run_ignored() {
        let given = ansible_run_started(&["front", "wn"]);
        let batches = vec![
            (None, "PLAY [front]\n".to_owned()),
            (Some(VmId(1)), "ok: [vnode-1]\n".to_owned()),
            (Some(VmId(0)), String::new()),
        ];
        assert_eq!(
            given_when(
                &given,
                C::RecordContextualizationOutput {
                    run: 1,
                    batches: batches.clone()
                }
            ),
            Ok(vec![
                E::ContextualizationOutput {
                    run: 1,
                    vm_id: None,
                    text: "PLAY [front]\n".into()
                },
                E::ContextualizationOutput {
                    run: 1,
                    vm_id: Some(VmId(1)),
                    text: "ok: [vnode-1]\n".into()
                },
            ])
        );
        assert_eq!(
            given_when(&given, C::RecordContextualizationOutput { run: 0, batches }),
            Ok(vec![])
        );
    }

    #[test]
    fn a_failed_run_ends_unconfigured_with_its_reason_and_a_stale_end_changes_nothing() {
        let given = ansible_run_started(&["front"]);
        let ended = given_when(
            &given,
            C::EndContextualization {
                run: 1,
                configured: false,
                message: Some("TASK [write] failed: permission denied".into()),
            },
        )
        .expect("ended");
        assert_eq!(
            ended,
            vec![
                E::ContextualizationProgressed {
                    run: 1,
                    message: "TASK [write] failed: permission denied".into()
                },
                E::ContextualizationFinished {
                    run: 1,
                    configured: false
                },
            ]
        );
        let mut after = given.clone();
        after.extend(ended);
        let state = fold(&after);
        assert_eq!(state.live().and_then(|live| live.configured), Some(false));
        // Ended already: a repeated end (a restarted run's late report) is stale.
        assert_eq!(
            given_when(
                &after,
                C::EndContextualization {
                    run: 1,
                    configured: true,
                    message: None
                }
            ),
            Ok(vec![])
        );
    }
}
