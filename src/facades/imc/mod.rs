//! The IMC facade (`/v1/…`): PROMINENCE's Infrastructure Manager Controller,
//! which places a RADL deployment on one of several clouds ("sites") with quotas,
//! ranking and retries. Each deployment is a placement aggregate; each try is an
//! ordinary core infrastructure owned by the facade's IM identity.

use std::path::Path;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use infralog_actors::decide::sites::{Flavour, Site, SiteImage, SiteQuotas};
use infralog_actors::runtime::placement::{PlacementConfig, Placements};
use infralog_events::domain::placement::PlacementStatus;
use infralog_events::EventStore;

use super::core::{CoreAccess, ServiceIdentity};
use super::FacadeDeps;
use crate::api::{Limits, RequestContext};
use crate::projections::Projections;

pub mod driver;
pub mod faults;
pub(crate) mod handlers;
mod request;

/// How the IMC facade runs (the `--imc-…` flags).
#[derive(Debug, Clone)]
pub struct ImcSettings {
    /// The service identity's username; with none, every route but
    /// `/v1/health` answers 401.
    pub user: Option<String>,
    /// The service identity's password.
    pub password: Option<String>,
    /// The site catalogue.
    pub sites: Vec<Site>,
    /// Timings and limits of placements.
    pub placement: PlacementConfig,
}

impl Default for ImcSettings {
    fn default() -> Self {
        ImcSettings {
            user: None,
            password: None,
            sites: default_catalogue(),
            placement: PlacementConfig::default(),
        }
    }
}

/// One Dummy site, `dummy`, with a generic image and two flavours: what runs
/// without a catalogue file.
pub fn default_catalogue() -> Vec<Site> {
    vec![Site {
        name: "dummy".into(),
        region: "default".into(),
        kind: "Dummy".into(),
        images: vec![SiteImage {
            name: "linux".into(),
            url: "mock0://linux.for.ev.er/image".into(),
            distribution: "ubuntu".into(),
            version: "20.04".into(),
            kind: "linux".into(),
            architecture: "x86_64".into(),
        }],
        flavours: vec![
            Flavour {
                name: "small".into(),
                cores: 1,
                memory: 2,
                disk: 20,
            },
            Flavour {
                name: "large".into(),
                cores: 8,
                memory: 32,
                disk: 200,
            },
        ],
        quotas: SiteQuotas::default(),
        ..Site::default()
    }]
}

/// Reads a catalogue file: a JSON array of sites with unique, non-empty names.
pub fn load_catalogue(path: &Path) -> Result<Vec<Site>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the IMC site catalogue {}: {e}", path.display()))?;
    let sites: Vec<Site> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the IMC site catalogue {} is not a JSON array of sites: {e}",
            path.display()
        )
    })?;
    let mut names = std::collections::HashSet::new();
    for site in &sites {
        if site.name.is_empty() || site.name.contains([';', '\n', '=']) {
            return Err(format!(
                "the IMC site name {:?} is empty or holds ';', '=' or a line break",
                site.name
            ));
        }
        if !names.insert(site.name.as_str()) {
            return Err(format!("the IMC site {:?} appears twice", site.name));
        }
    }
    Ok(sites)
}

/// The running IMC facade.
pub struct Imc {
    placements: Placements,
    projections: Arc<Projections>,
    store: Arc<dyn EventStore>,
    user: Option<String>,
    password: Option<String>,
    limits: Limits,
}

impl Imc {
    /// Checks the catalogue against the clouds, hashes the service identity and
    /// starts the placements.
    pub async fn start(settings: &ImcSettings, deps: &FacadeDeps) -> Result<Self, String> {
        for site in &settings.sites {
            let kind = faults::FaultyDummy::kind_for(site);
            if !deps.connectors.supports(kind) {
                return Err(format!(
                    "the IMC site {:?} names the cloud type {:?}, which this server has no connector for",
                    site.name, site.kind
                ));
            }
        }
        let identity = ServiceIdentity {
            facade: "imc",
            username: settings.user.clone().unwrap_or_else(|| "imc".into()),
            password: Some(settings.password.clone().unwrap_or_default()),
        };
        let owner = identity.owner_record(deps).await?;
        let driver = driver::ImcDriver {
            core: CoreAccess::new(deps, owner),
            identity,
        };
        let placements = Placements::new(
            Arc::clone(&deps.store),
            Arc::new(driver::SharedDriver(Arc::new(driver))),
            settings.sites.clone(),
            settings.placement.clone(),
        );
        Ok(Imc {
            placements,
            projections: Arc::clone(&deps.projections),
            store: Arc::clone(&deps.store),
            user: settings.user.clone(),
            password: settings.password.clone(),
            limits: deps.limits,
        })
    }

    /// The placements' handle.
    pub fn placements(&self) -> Placements {
        self.placements.clone()
    }

    /// Resumes every placement that is not at its end.
    pub fn resume(&self) {
        let ids: Vec<_> = self
            .projections
            .read()
            .imc
            .placements
            .values()
            .filter(|view| view.state.status != Some(PlacementStatus::Purged))
            .filter(|view| view.state.status != Some(PlacementStatus::Configured))
            .map(|view| view.id)
            .collect();
        for id in ids {
            if let Err(error) = self.placements.resume(id) {
                tracing::warn!(%error, placement = %id, "cannot resume a placement");
            }
        }
    }

    /// Answers a `/v1/…` request.
    pub async fn dispatch(
        &self,
        context: &RequestContext,
        path: &str,
        payload: web::Payload,
    ) -> HttpResponse {
        handlers::dispatch(self, context, path, payload).await
    }
}
