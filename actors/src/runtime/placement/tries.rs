//! A round's tries: which flavour on which site comes next, the reason a round
//! gives up with, and starting a try (its reservation, its `AttemptStarted`,
//! then its core infrastructure).

use infralog_events::domain::placement::AttemptOutcome;
use infralog_events::domain::InfId;

use super::super::ledger::Reserve;
use super::actor::Core;
use super::{AttemptSpec, PlacementFailure};
use crate::decide::placement::{CoreState, PlacementCommand};
use crate::decide::sites::{self, Site, Try};

impl Core {
    /// The next try of this round: the ranked sites' flavours in order, each up to
    /// `1 + retries_per_flavour` times, none again after a quota or image failure,
    /// no site the ledger refused.
    pub(super) fn next_try(&self) -> Option<Try> {
        let request = self.state.request.as_deref()?;
        let ranked: Vec<&Site> = self
            .state
            .matching
            .iter()
            .filter_map(|name| self.shared.catalogue.iter().find(|s| &s.name == name))
            .collect();
        let round = self.state.round();
        let most = 1 + self.shared.config.retries_per_flavour as usize;
        sites::tries(&ranked, request).into_iter().find(|t| {
            let same: Vec<_> = round
                .iter()
                .filter(|a| a.site == t.site && a.flavour == t.flavour.name)
                .collect();
            let final_failure = same.iter().any(|a| {
                matches!(&a.outcome, AttemptOutcome::Failed(r) if r == "QuotaExceeded" || r == "ImageNotFound")
            });
            !self.refused.contains(&t.site) && same.len() < most && !final_failure
        })
    }

    pub(super) fn give_up_reason(&self) -> String {
        let last = self
            .state
            .round()
            .iter()
            .rev()
            .find_map(|a| match &a.outcome {
                AttemptOutcome::Failed(reason) => Some(reason.clone()),
                _ => None,
            });
        match last {
            Some(reason) => format!("DeploymentFailed_{reason}"),
            None if self.state.round().is_empty() => "NoMatchingResourcesAvailable".into(),
            None => "DeploymentFailed".into(),
        }
    }

    /// Reserves the try's usage and starts it; false when the ledger refused (the
    /// site is skipped for this round).
    pub(super) async fn start(&mut self, next: Try) -> Result<bool, PlacementFailure> {
        let Some(request) = self.state.request.clone() else {
            return Ok(false);
        };
        let Some(site) = self
            .shared
            .catalogue
            .iter()
            .find(|s| s.name == next.site)
            .cloned()
        else {
            self.refused.insert(next.site);
            return Ok(false);
        };
        let reserved = self
            .shared
            .ledger
            .send(Reserve {
                placement: self.id,
                identity: request.identity.clone().unwrap_or_default(),
                site: site.name.clone(),
                usage: sites::usage_of(&next.flavour, &request),
                quotas: site.quotas.clone(),
            })
            .await
            .map_err(|e| PlacementFailure::Failed(format!("the IMC ledger is gone: {e}")))??;
        if !reserved {
            self.refused.insert(next.site);
            return Ok(false);
        }
        let inf = InfId::random();
        self.run(PlacementCommand::StartAttempt {
            site: site.name.clone(),
            flavour: next.flavour.name.clone(),
            image: next.image.url.clone(),
            inf_id: inf,
        })
        .await?;
        let spec = self.spec_for(&site.name, &next.flavour.name, &next.image.url);
        let created = match spec {
            Some(spec) => self.shared.driver.create(inf, spec).await,
            None => Err("the site left the catalogue".into()),
        };
        if let Err(message) = created {
            tracing::warn!(placement = %self.id, %inf, %message, "an attempt's infrastructure cannot be created");
            self.observed(inf, CoreState::Failed(message)).await?;
        }
        Ok(true)
    }

    /// The try on `site` with `flavour` and `image`, the template's values
    /// substituted; `None` when the site is no longer in the catalogue.
    pub(super) fn spec_for(&self, site: &str, flavour: &str, image: &str) -> Option<AttemptSpec> {
        let request = self.state.request.as_deref()?;
        let site = self
            .shared
            .catalogue
            .iter()
            .find(|s| s.name == site)?
            .clone();
        let groups = request.requirements.groups.join(",");
        let values = [
            ("instance", flavour),
            ("image", image),
            ("cloud", site.name.as_str()),
            ("region", site.region.as_str()),
            ("allow_groups", groups.as_str()),
        ];
        Some(AttemptSpec {
            radl: sites::substitute(&request.radl, &values),
            flavour: flavour.to_string(),
            site,
        })
    }
}
