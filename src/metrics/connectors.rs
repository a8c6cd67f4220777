//! Cloud calls counted by cloud type, operation and outcome: every connector of
//! the server is wrapped once at start, so connectors (the Dummy cloud, Docker,
//! test clouds) need no metrics code of their own.

use std::sync::Arc;
use std::time::Instant;

use infralog_actors::connectors::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    Connectors, ImageFilters, LaunchRequest, LaunchedVm, Observation, Quotas,
};
use infralog_events::domain::{CloudRef, FeatureFact, InfId};

use super::Metrics;

/// `connectors` with each connector wrapped so that its calls are counted.
pub fn measured(connectors: &Connectors, metrics: &Arc<Metrics>) -> Connectors {
    let mut wrapped = Connectors::default();
    for connector in connectors.all() {
        wrapped.register(Arc::new(Measured {
            inner: connector,
            metrics: Arc::clone(metrics),
        }));
    }
    wrapped
}

/// A connector whose calls are timed and counted, then answered as the wrapped
/// connector answered.
struct Measured {
    inner: Arc<dyn CloudConnector>,
    metrics: Arc<Metrics>,
}

impl Measured {
    fn measure<T: Send + 'static>(
        &self,
        operation: &'static str,
        call: CloudFuture<T>,
    ) -> CloudFuture<T> {
        let metrics = Arc::clone(&self.metrics);
        let cloud = self.inner.kind();
        Box::pin(async move {
            let started = Instant::now();
            let result = call.await;
            metrics.observe_connector_call(cloud, operation, result.is_ok(), started.elapsed());
            result
        })
    }
}

impl CloudConnector for Measured {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn configured_by_ansible(&self) -> bool {
        self.inner.configured_by_ansible()
    }

    fn observable(&self) -> bool {
        self.inner.observable()
    }

    fn launch(
        &self,
        request: LaunchRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<LaunchedVm> {
        self.measure("launch", self.inner.launch(request, credentials))
    }

    fn stop(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.measure("stop", self.inner.stop(vm, credentials))
    }

    fn start(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.measure("start", self.inner.start(vm, credentials))
    }

    fn reboot(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.measure("reboot", self.inner.reboot(vm, credentials))
    }

    fn alter(
        &self,
        vm: &CloudVmRef,
        request: AlterRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        self.measure("alter", self.inner.alter(vm, request, credentials))
    }

    fn snapshot(
        &self,
        vm: &CloudVmRef,
        disk: u32,
        image_name: &str,
        credentials: &CloudCredentials,
    ) -> CloudFuture<String> {
        self.measure(
            "snapshot",
            self.inner.snapshot(vm, disk, image_name, credentials),
        )
    }

    fn destroy(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.measure("destroy", self.inner.destroy(vm, credentials))
    }

    fn delete_image(&self, image_url: &str, credentials: &CloudCredentials) -> CloudFuture<()> {
        self.measure(
            "delete_image",
            self.inner.delete_image(image_url, credentials),
        )
    }

    fn images(
        &self,
        filters: &ImageFilters,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<CloudImage>> {
        self.measure("images", self.inner.images(filters, credentials))
    }

    fn quotas(&self, credentials: &CloudCredentials) -> CloudFuture<Quotas> {
        self.measure("quotas", self.inner.quotas(credentials))
    }

    fn observe(&self, vm: &CloudVmRef) -> CloudFuture<Option<Observation>> {
        self.measure("observe", self.inner.observe(vm))
    }

    fn release_infrastructure(
        &self,
        infrastructure: InfId,
        cloud: &CloudRef,
        credentials: &CloudCredentials,
    ) -> CloudFuture<()> {
        self.measure(
            "release_infrastructure",
            self.inner
                .release_infrastructure(infrastructure, cloud, credentials),
        )
    }
}
