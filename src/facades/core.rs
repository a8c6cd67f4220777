//! How the facades drive core infrastructures: as their service identity,
//! through the same commands the IM API sends (a create planned as `POST
//! /infrastructures` plans it, a synchronous destroy), so an operator can read
//! and debug everything a facade made with the IM API under that identity.

use std::sync::Arc;

use infralog_actors::connectors::Connectors;
use infralog_actors::decide::DomainError;
use infralog_actors::runtime::{ActorError, InfrastructureRequest, Registry};
use infralog_events::domain::{InfId, OwnerRecord};
use infralog_events::{EventStore, Metadata, StreamId};

use super::FacadeDeps;
use crate::api::plan::{self, ContextPolicy};
use crate::auth::ownership::PasswordDigest;
use crate::auth::{self, Identity};
use crate::projections::Projections;
use crate::radl::Radl;

/// A facade's IM identity: the user its infrastructures belong to.
pub struct ServiceIdentity {
    /// The `id` of its IM line (the facade's name).
    pub facade: &'static str,
    /// The IM username.
    pub username: String,
    /// The IM password (never logged); `None` or empty in open modes (the owner
    /// record tells them apart).
    pub password: Option<String>,
}

impl ServiceIdentity {
    /// The identity as IM's credentials would carry it, with `cloud_line` (for
    /// example `id = dummy; type = Dummy`) as its one cloud.
    pub fn with_cloud(&self, cloud_line: &str) -> Result<Identity, String> {
        // An empty password (Batch's open mode) is left out of the line, as
        // IM's clients leave out one they do not have.
        let password = match self.password.as_deref() {
            Some(password) if !password.is_empty() => format!("; password = {password}"),
            _ => String::new(),
        };
        let header = format!(
            "id = {}; type = InfrastructureManager; username = {}{password}\\n{cloud_line}",
            self.facade, self.username
        );
        let lines = auth::parse_authorization(&header)
            .map_err(|e| format!("the {} credentials cannot be read: {e}", self.facade))?;
        auth::authenticate(&lines)
            .map_err(|e| format!("the {} credentials are refused: {e}", self.facade))
    }

    /// The owner record of the identity: the one the log already holds for it
    /// (so its infrastructures share one salt), or a new digest.
    pub async fn owner_record(&self, deps: &FacadeDeps) -> Result<OwnerRecord, String> {
        let known: Vec<OwnerRecord> = {
            let model = deps.projections.read();
            model
                .owners_with_gone
                .entries(&self.username)
                .iter()
                .map(|entry| entry.owner.clone())
                .filter(|owner| !owner.via_token)
                .collect()
        };
        let hasher = Arc::clone(&deps.hasher);
        let (user, password) = (self.username.clone(), self.password.clone());
        // Hashing is slow by design: off the async thread.
        tokio::task::spawn_blocking(move || {
            for owner in known {
                let digest = PasswordDigest {
                    salt: owner.salt,
                    digest: owner.digest,
                };
                if hasher.verify(&digest, password.as_deref()) {
                    return owner;
                }
            }
            let digest = hasher.digest_for_new_owner(&user, password.as_deref());
            OwnerRecord {
                username: user,
                salt: digest.salt,
                digest: digest.digest,
                via_token: false,
            }
        })
        .await
        .map_err(|e| format!("hashing the {} identity failed: {e}", self.facade))
    }
}

/// What a facade needs of the core to make and remove infrastructures.
pub struct CoreAccess {
    /// The actors.
    pub registry: Registry,
    /// The read model.
    pub projections: Arc<Projections>,
    /// The log, to tell whether an infrastructure was ever recorded.
    pub store: Arc<dyn EventStore>,
    /// The clouds.
    pub connectors: Connectors,
    /// The owner record of the facade's identity.
    pub owner: OwnerRecord,
    /// The VM bound of a request.
    pub max_vms: u64,
    /// How contextualization goes on this server.
    pub policy: ContextPolicy,
}

/// How one synchronous destroy went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyOnce {
    /// Destroyed now, or not there (never made, or destroyed before).
    Done,
    /// Refused for now (still launching, or busy): its turn comes.
    NotYet,
    /// Refused for good.
    Failed(String),
}

impl CoreAccess {
    /// Access for the facade whose identity's owner record is `owner`.
    pub fn new(deps: &FacadeDeps, owner: OwnerRecord) -> Self {
        CoreAccess {
            registry: deps.registry.clone(),
            projections: Arc::clone(&deps.projections),
            store: Arc::clone(&deps.store),
            connectors: deps.connectors.clone(),
            owner,
            max_vms: deps.limits.max_vms_per_request,
            policy: deps.policy,
        }
    }

    /// The create command of `document` for `identity`, planned as `POST
    /// /infrastructures` plans one; the error is the planner's message.
    pub fn plan_create(
        &self,
        document: Radl,
        identity: &Identity,
        asynchronous: bool,
    ) -> Result<InfrastructureRequest, String> {
        let planned = plan::plan_resources(
            &Radl::default(),
            document,
            identity,
            &self.connectors,
            self.max_vms,
            true,
            self.policy,
        )
        .map_err(|e| e.0)?;
        Ok(InfrastructureRequest::Create {
            owners: vec![self.owner.clone()],
            tosca: None,
            resources: planned.request,
            credentials: crate::api::guard::cloud_credentials(identity),
            asynchronous,
        })
    }

    /// Whether the log holds any event of `inf`.
    pub async fn recorded(&self, inf: InfId) -> Result<bool, String> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let stream = StreamId::new(inf.stream_name()).map_err(|e| e.to_string())?;
            store
                .stream_version(&stream)
                .map(|version| version > 0)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("the reading task failed: {e}"))?
    }

    /// Creates `inf` with the command `plan` makes, unless the log holds it
    /// already: an infrastructure recorded before a crash is followed, never
    /// created twice. Answers once the read model holds it.
    pub async fn create_once(
        &self,
        inf: InfId,
        plan: impl FnOnce() -> Result<InfrastructureRequest, String>,
    ) -> Result<(), String> {
        if !self.recorded(inf).await? {
            match self
                .registry
                .infrastructure(inf, plan()?, Metadata::default())
                .await
            {
                Ok(_) | Err(ActorError::Domain(DomainError::AlreadyExists)) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        // The facade reads the infrastructure next: the read model must hold it.
        self.projections.wait_for(self.store.head_position()).await;
        Ok(())
    }

    /// One synchronous destroy of `inf`; answers once the read model shows it.
    pub async fn destroy_once(&self, inf: InfId) -> DestroyOnce {
        let request = InfrastructureRequest::Destroy {
            force: false,
            asynchronous: false,
            credentials: Default::default(),
        };
        match self
            .registry
            .infrastructure(inf, request, Metadata::default())
            .await
        {
            Ok(outcome) => {
                self.projections.wait_for(outcome.position).await;
                DestroyOnce::Done
            }
            Err(ActorError::Domain(DomainError::NotFound)) => DestroyOnce::Done,
            Err(ActorError::Domain(DomainError::IncorrectState)) | Err(ActorError::Busy) => {
                DestroyOnce::NotYet
            }
            Err(error) => DestroyOnce::Failed(error.to_string()),
        }
    }
}
