//! A run's core: decide and append, answer the caller, dispatch the API's requests,
//! and start or finish contextualization.

use std::time::Duration;

use infralog_events::domain::infrastructure::{self, ContextualizationPlan, InfrastructureEvent};
use infralog_events::domain::VmId;
use infralog_events::StoreError;

use super::InfraRun;
use crate::connectors::CloudCredentials;
use crate::decide::infrastructure::{decide, InfrastructureCommand as Command};
use crate::decide::DomainError;
use crate::runtime::{journal, ActorError, Credentials, InfrastructureRequest, Outcome, VmRequest};

impl InfraRun {
    /// Answers the caller, once.
    pub(super) fn answer(&mut self, result: Result<Outcome, ActorError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }

    /// Decides and appends; returns the last position (0 when nothing was due).
    pub(super) async fn apply(&mut self, command: Command) -> Result<u64, ActorError> {
        let events = decide(&self.state, command)?;
        if events.is_empty() {
            return Ok(0);
        }
        let position = self.append(&events).await?;
        let state = std::mem::take(&mut self.state);
        self.state = events.iter().fold(state, infrastructure::evolve);
        Ok(position)
    }

    /// Appends at the state's version; the last position.
    pub(super) async fn append(&self, events: &[InfrastructureEvent]) -> Result<u64, ActorError> {
        let appended = journal::append(
            &self.env.store,
            &self.env.stream,
            self.state.version,
            events,
            &self.metadata,
        )
        .await
        .map_err(|error| match error {
            // Someone else wrote to this stream (an import, another instance): the
            // caller retries against the new state.
            StoreError::WrongExpectedVersion { actual, .. } => {
                ActorError::Domain(DomainError::Conflict {
                    expected: self.state.version,
                    actual,
                })
            }
            other => ActorError::Store(other),
        })?;
        Ok(appended.last_position())
    }

    /// Decides `commands` in turn, each against the state the previous one leaves,
    /// and appends all their events at once: one group commit instead of one per
    /// command, and no crash can fall between them.
    pub(super) async fn apply_all(&mut self, commands: Vec<Command>) -> Result<u64, ActorError> {
        let mut state = self.state.clone();
        let mut events = Vec::new();
        let mut refusal = None;
        for command in commands {
            match decide(&state, command) {
                Ok(decided) => {
                    state = decided.iter().fold(state, infrastructure::evolve);
                    events.extend(decided);
                }
                Err(error) => {
                    // What was decided before stands, as it would have one by one.
                    refusal = Some(error);
                    break;
                }
            }
        }
        let position = if events.is_empty() {
            0
        } else {
            let position = self.append(&events).await?;
            self.state = state;
            position
        };
        match refusal {
            Some(error) => Err(error.into()),
            None => Ok(position),
        }
    }

    pub(super) async fn execute(
        &mut self,
        request: InfrastructureRequest,
    ) -> Result<Outcome, ActorError> {
        match request {
            InfrastructureRequest::Create {
                owners,
                tosca,
                resources,
                credentials,
                asynchronous,
            } => {
                let position = self
                    .apply(Command::Create {
                        owners,
                        tosca,
                        resources,
                    })
                    .await?;
                let vm_ids = self.adding();
                if asynchronous {
                    self.answer(Ok(Outcome {
                        position,
                        vm_ids: vm_ids.clone(),
                        ..Outcome::default()
                    }));
                }
                let last = self.finish_adding(&credentials, true).await?;
                Ok(Outcome {
                    position: last.max(position),
                    vm_ids,
                    ..Outcome::default()
                })
            }
            InfrastructureRequest::AddResources {
                expected_version,
                resources,
                tosca,
                credentials,
            } => {
                let position = self
                    .apply(Command::RequestResources {
                        expected_version,
                        resources,
                        tosca,
                    })
                    .await?;
                let vm_ids = self.adding();
                let last = self.finish_adding(&credentials, false).await?;
                Ok(Outcome {
                    position: last.max(position),
                    vm_ids,
                    ..Outcome::default()
                })
            }
            InfrastructureRequest::RemoveResources {
                vm_ids,
                context,
                plan,
                credentials,
            } => {
                let position = self
                    .apply(Command::RequestRemoval {
                        vm_ids,
                        contextualization: context.then_some(plan),
                    })
                    .await?;
                let last = self.finish_removal(&credentials).await?;
                Ok(Outcome::at(last.max(position)))
            }
            InfrastructureRequest::UpdateRadl {
                expected_version,
                radl,
                plan,
            } => {
                let update = Command::UpdateRadl {
                    expected_version,
                    radl,
                };
                let position = match plan {
                    Some(plan) => self.start_contextualization_after(update, plan).await?,
                    None => self.apply(update).await?,
                };
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Reconfigure {
                expected_version,
                radl,
                plan,
            } => {
                let position = if let Some(radl) = radl {
                    let update = Command::UpdateRadl {
                        expected_version,
                        radl,
                    };
                    self.start_contextualization_after(update, plan).await?
                } else if self.state.live().is_none() {
                    return Err(DomainError::NotFound.into());
                } else {
                    self.start_contextualization(plan, None).await?
                };
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Stop { credentials } => {
                self.operate_vms(
                    &credentials,
                    "Error stopping the infrastructure",
                    |credentials| VmRequest::Stop { credentials },
                )
                .await
            }
            InfrastructureRequest::Start { credentials } => {
                self.operate_vms(
                    &credentials,
                    "Error starting the infrastructure",
                    |credentials| VmRequest::Start { credentials },
                )
                .await
            }
            InfrastructureRequest::Destroy {
                force,
                asynchronous,
                credentials,
            } => {
                let position = self.apply(Command::StartDestruction { force }).await?;
                if asynchronous {
                    self.answer(Ok(Outcome::at(position)));
                }
                let last = self.finish_destruction(&credentials).await?;
                Ok(Outcome::at(last.max(position)))
            }
            InfrastructureRequest::ChangeOwners {
                expected_version,
                owners,
            } => {
                let position = self
                    .apply(Command::ChangeOwners {
                        expected_version,
                        owners,
                    })
                    .await?;
                Ok(Outcome::at(position))
            }
            InfrastructureRequest::Evict => Ok(Outcome::at(self.apply(Command::Evict).await?)),
            InfrastructureRequest::Import { imported } => self.import(imported).await,
            InfrastructureRequest::Resume => self.resume().await,
        }
    }

    /// The VMs whose launch is under way.
    pub(super) fn adding(&self) -> Vec<VmId> {
        self.state
            .live()
            .map(|live| live.adding.clone())
            .unwrap_or_default()
    }

    pub(super) async fn start_contextualization(
        &mut self,
        plan: ContextualizationPlan,
        vm_ids: Option<Vec<VmId>>,
    ) -> Result<u64, ActorError> {
        let position = self
            .apply(Command::StartContextualization {
                plan,
                now_ms: now_ms(),
                vm_ids,
            })
            .await?;
        self.schedule_contextualization(plan);
        Ok(position)
    }

    /// `first`, then a contextualization of every VM, in one append.
    pub(super) async fn start_contextualization_after(
        &mut self,
        first: Command,
        plan: ContextualizationPlan,
    ) -> Result<u64, ActorError> {
        let start = Command::StartContextualization {
            plan,
            now_ms: now_ms(),
            vm_ids: None,
        };
        let position = self.apply_all(vec![first, start]).await?;
        self.schedule_contextualization(plan);
        Ok(position)
    }

    /// Finishes a simulated run when its time is up.
    pub(super) fn schedule_contextualization(&mut self, plan: ContextualizationPlan) {
        if let ContextualizationPlan::Simulated { duration_ms } = plan {
            let run = self
                .state
                .live()
                .map(|l| l.contextualization.last_run())
                .unwrap_or(0);
            self.timers.push((run, Duration::from_millis(duration_ms)));
        }
    }

    /// Background work reporting back to the actor.
    pub(super) async fn internal(
        &mut self,
        internal: super::Internal,
    ) -> Result<Outcome, ActorError> {
        let command = match internal {
            super::Internal::ContextualizationDue(run) => {
                return self.finish_contextualization(run).await
            }
            super::Internal::AnsibleOutput(output) => Command::RecordContextualizationOutput {
                run: output.run,
                batches: output.batches,
            },
            super::Internal::AnsibleEnded(ended) => Command::EndContextualization {
                run: ended.run,
                configured: ended.report.configured,
                message: ended.report.message,
            },
        };
        match self.apply(command).await {
            Ok(position) => Ok(Outcome::at(position)),
            // Destroyed or evicted meanwhile: nothing to record.
            Err(ActorError::Domain(DomainError::NotFound)) => Ok(Outcome::default()),
            Err(error) => Err(error),
        }
    }

    pub(super) async fn finish_contextualization(
        &mut self,
        run: u32,
    ) -> Result<Outcome, ActorError> {
        match self.apply(Command::FinishContextualization { run }).await {
            Ok(position) => Ok(Outcome::at(position)),
            // Destroyed or evicted meanwhile: nothing to finish.
            Err(ActorError::Domain(DomainError::NotFound)) => Ok(Outcome::default()),
            Err(error) => Err(error),
        }
    }
}

pub(super) fn credentials_for(credentials: &Credentials, cloud: &str) -> CloudCredentials {
    credentials.get(cloud).cloned().unwrap_or_default()
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
