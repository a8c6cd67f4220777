//! The clouds of catalogue sites that simulate failures: IM's Dummy cloud, except
//! that a site's `faults` make its launches or destructions fail (or launches
//! take a while).
//!
//! The core picks a connector by the credential line's `type`, and a connector's
//! kind is fixed, so sites with faults are served under one extra kind,
//! [`FAULTY_DUMMY_KIND`], which looks the site's faults up by the line's `id` (the
//! site's name, which every VM records). Sites without faults keep the plain
//! `Dummy` kind, and IM users' own `Dummy` lines are never affected. Keying on the
//! recorded site name rather than the request's credentials keeps the faults
//! after a restart, when resumed work reaches clouds without credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use infralog_actors::connectors::dummy::DummyConnector;
use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    ConnectorError, ImageFilters, LaunchRequest, LaunchedVm, Quotas,
};
use infralog_actors::decide::sites::{Site, SiteFaults};
use infralog_events::domain::FeatureFact;

/// The credential `type` of catalogue sites of type `Dummy` that declare faults.
pub const FAULTY_DUMMY_KIND: &str = "ImcFaultyDummy";

/// The Dummy cloud with per-site faults.
pub struct FaultyDummy {
    dummy: DummyConnector,
    faults: HashMap<String, SiteFaults>,
}

impl FaultyDummy {
    /// The connector for the Dummy sites of `catalogue` that declare faults; `None`
    /// when none does.
    pub fn for_catalogue(catalogue: &[Site]) -> Option<Arc<Self>> {
        let faults: HashMap<String, SiteFaults> = catalogue
            .iter()
            .filter(|site| site.kind == "Dummy" && site.faults.any())
            .map(|site| (site.name.clone(), site.faults.clone()))
            .collect();
        (!faults.is_empty()).then(|| {
            Arc::new(FaultyDummy {
                dummy: DummyConnector::new(),
                faults,
            })
        })
    }

    /// The credential `type` the facade writes for `site`.
    pub fn kind_for(site: &Site) -> &str {
        if site.kind == "Dummy" && site.faults.any() {
            FAULTY_DUMMY_KIND
        } else {
            &site.kind
        }
    }
}

impl CloudConnector for FaultyDummy {
    fn kind(&self) -> &'static str {
        FAULTY_DUMMY_KIND
    }

    fn launch(
        &self,
        request: LaunchRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<LaunchedVm> {
        let faults = self
            .faults
            .get(&request.cloud.id)
            .cloned()
            .unwrap_or_default();
        let launched = self.dummy.launch(request, credentials);
        Box::pin(async move {
            if let Some(ms) = faults.launch_delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match faults.launch {
                Some(message) => Err(ConnectorError::new(message)),
                None => launched.await,
            }
        })
    }

    fn stop(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.dummy.stop(vm, credentials)
    }

    fn start(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.dummy.start(vm, credentials)
    }

    fn reboot(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.dummy.reboot(vm, credentials)
    }

    fn alter(
        &self,
        vm: &CloudVmRef,
        request: AlterRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        self.dummy.alter(vm, request, credentials)
    }

    fn snapshot(
        &self,
        vm: &CloudVmRef,
        disk: u32,
        image_name: &str,
        credentials: &CloudCredentials,
    ) -> CloudFuture<String> {
        self.dummy.snapshot(vm, disk, image_name, credentials)
    }

    fn destroy(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        match self
            .faults
            .get(&vm.cloud.id)
            .and_then(|f| f.destroy.clone())
        {
            Some(message) => Box::pin(std::future::ready(Err(ConnectorError::new(message)))),
            None => self.dummy.destroy(vm, credentials),
        }
    }

    fn delete_image(&self, image_url: &str, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.dummy.delete_image(image_url, credentials)
    }

    fn images(
        &self,
        filters: &ImageFilters,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<CloudImage>> {
        self.dummy.images(filters, credentials)
    }

    fn quotas(&self, credentials: &CloudCredentials) -> CloudFuture<Quotas> {
        self.dummy.quotas(credentials)
    }
}
