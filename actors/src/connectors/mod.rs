//! Cloud connectors: how infralog talks to a cloud. One trait, one implementation per
//! cloud type; the Dummy cloud is IM's test connector.
//!
//! # Guarantees and assumptions
//!
//! - Connectors are called only by the actors' shells, after `decide` allowed the
//!   call and before the outcome is recorded. Replay, verify and import never call
//!   them.
//! - A call may be repeated after a crash (the intent was logged, the outcome was
//!   not), so connectors must tolerate a repeated call for the same VM.
//! - Cloud credentials arrive with each request and are never stored; they reach a
//!   connector through [`CloudCredentials`], whose `Debug` hides every value.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use infralog_events::domain::vm::ObservedVmState;
use infralog_events::domain::{CloudRef, FeatureFact, InfId, VmId};

pub mod docker;
pub mod dummy;

/// What a connector call returns, later.
pub type CloudFuture<T> = Pin<Box<dyn Future<Output = Result<T, ConnectorError>> + Send>>;

/// Why a cloud call failed. The message is shown to the client, so it must not carry
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// What went wrong, as the client reads it.
    pub message: String,
}

impl ConnectorError {
    /// An error with this message (which must not carry credentials).
    pub fn new(message: impl Into<String>) -> Self {
        ConnectorError {
            message: message.into(),
        }
    }
}

/// The key/value pairs of a cloud credential line, hidden from `Debug`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudCredentials {
    values: HashMap<String, String>,
}

impl CloudCredentials {
    /// Credentials made of these key/value pairs (`username`, `password`, `host`…).
    pub fn new(values: HashMap<String, String>) -> Self {
        CloudCredentials { values }
    }

    /// The value of `key` in the credential line; `None` when the line has no such key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

impl fmt::Debug for CloudCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&str> = self.values.keys().map(String::as_str).collect();
        keys.sort_unstable();
        f.debug_struct("CloudCredentials")
            .field("keys", &keys)
            .finish()
    }
}

/// A VM to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    /// The infrastructure the VM belongs to (clouds label what they create with it).
    pub infrastructure: InfId,
    /// The id infralog gives the new VM inside its infrastructure.
    pub vm_id: VmId,
    /// The RADL system the VM is made of.
    pub system: String,
    /// The infrastructure's RADL text, which holds `system` and the networks it
    /// connects to (IM's connectors read the VM's RADL the same way).
    pub radl: Arc<str>,
    /// The cloud to create it in.
    pub cloud: CloudRef,
}

/// What a cloud shows of a VM when asked, for the comparison with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The VM's state in its cloud.
    pub state: ObservedVmState,
    /// What the cloud says about it (an exit code, a reason); may be empty.
    pub message: String,
}

/// A VM the cloud created.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchedVm {
    /// The cloud's own id of the VM, which later calls name it by.
    pub cloud_vm_id: String,
    /// What the cloud set on the VM's system, in order.
    pub facts: Vec<FeatureFact>,
}

/// A VM the cloud knows, for the calls that act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudVmRef {
    /// The cloud the VM lives in.
    pub cloud: CloudRef,
    /// The cloud's own id of the VM, as [`LaunchedVm::cloud_vm_id`] gave it.
    pub cloud_vm_id: String,
}

/// A resize request, with what the API layer read from the RADL body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlterRequest {
    /// The requested `cpu.count` value as written (its comparison stays the VM's).
    pub cpu_count: Option<String>,
    /// The requested `memory.size` in decimal megabytes, as written (IM converts
    /// with its own rounding rules, which the API layer applies).
    pub memory_megabytes: Option<String>,
}

/// An image a cloud offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudImage {
    /// The image's URL, as a RADL `disk.0.image.url` names it (`mock0://…` on Dummy).
    pub uri: String,
    /// The name the cloud shows for the image.
    pub name: String,
}

/// The use and limit of one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// How much of the quota is in use.
    pub used: u64,
    /// The most the account may use.
    pub limit: u64,
}

/// A cloud's quotas, in the order the cloud lists them.
pub type Quotas = Vec<(String, QuotaUsage)>;

/// The `key=value` filters of an image listing (IM's `filters` dict: the last value
/// of a repeated key wins, keys keep their first position).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFilters {
    pairs: Vec<(String, String)>,
}

/// Why a `filters` parameter cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid format in filters parameter.")]
pub struct InvalidImageFilters;

impl ImageFilters {
    /// Reads IM's `k1=v1,k2=v2`: every comma-separated part must hold exactly one
    /// `=`. Keys and values are kept as written (IM trims nothing).
    pub fn parse(raw: &str) -> Result<Self, InvalidImageFilters> {
        let mut filters = ImageFilters::default();
        for part in raw.split(',') {
            let mut pieces = part.split('=');
            let (Some(key), Some(value), None) = (pieces.next(), pieces.next(), pieces.next())
            else {
                return Err(InvalidImageFilters);
            };
            match filters.pairs.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.to_string(),
                None => filters.pairs.push((key.to_string(), value.to_string())),
            }
        }
        Ok(filters)
    }

    /// The value of filter `key`; `None` when the listing does not filter on it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// No filter was given: every image is listed.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The filters, keys in their first position, each with its last value.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// A cloud.
pub trait CloudConnector: Send + Sync {
    /// The credential `type` this connector serves (`Dummy`).
    fn kind(&self) -> &'static str;
    /// Whether its VMs are configured by real Ansible runs; `false` for clouds whose
    /// contextualization is simulated (Dummy, test clouds).
    fn configured_by_ansible(&self) -> bool {
        false
    }
    /// Whether [`CloudConnector::observe`] can tell how a VM is.
    fn observable(&self) -> bool {
        false
    }
    /// Creates the VM; returns its cloud id and what the cloud set on its system.
    fn launch(
        &self,
        request: LaunchRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<LaunchedVm>;
    /// Stops (powers off) the VM, keeping its disks.
    fn stop(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()>;
    /// Starts a stopped VM again.
    fn start(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()>;
    /// Reboots the VM.
    fn reboot(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()>;
    /// Resizes; returns the facts that now hold on the VM's system.
    fn alter(
        &self,
        vm: &CloudVmRef,
        request: AlterRequest,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>>;
    /// Takes an image of a disk; returns its URL.
    fn snapshot(
        &self,
        vm: &CloudVmRef,
        disk: u32,
        image_name: &str,
        credentials: &CloudCredentials,
    ) -> CloudFuture<String>;
    /// Deletes the VM from its cloud (IM's `finalize`); called again for the same VM, it
    /// must not fail.
    fn destroy(&self, vm: &CloudVmRef, credentials: &CloudCredentials) -> CloudFuture<()>;
    /// Deletes an image that [`CloudConnector::snapshot`] made.
    fn delete_image(&self, image_url: &str, credentials: &CloudCredentials) -> CloudFuture<()>;
    /// The images the cloud offers, narrowed by `filters` where the cloud supports
    /// them (clouds ignore filters they do not know, as IM's connectors do).
    fn images(
        &self,
        filters: &ImageFilters,
        credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<CloudImage>>;
    /// The use and limit of the account's quotas.
    fn quotas(&self, credentials: &CloudCredentials) -> CloudFuture<Quotas>;
    /// The VM as its cloud shows it now; `None` from clouds that cannot be observed.
    /// Observation needs no secret: it uses what the VM's [`CloudRef`] keeps.
    fn observe(&self, vm: &CloudVmRef) -> CloudFuture<Option<Observation>> {
        let _ = vm;
        Box::pin(async { Ok(None) })
    }
    /// Removes what the cloud made for the infrastructure as a whole (networks,
    /// volumes), once its VMs are destroyed; called again, it must not fail.
    fn release_infrastructure(
        &self,
        infrastructure: InfId,
        cloud: &CloudRef,
        credentials: &CloudCredentials,
    ) -> CloudFuture<()> {
        let _ = (infrastructure, cloud, credentials);
        Box::pin(async { Ok(()) })
    }
}

/// The connectors this instance has, by credential type.
#[derive(Clone, Default)]
pub struct Connectors {
    by_kind: HashMap<&'static str, Arc<dyn CloudConnector>>,
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<&str> = self.by_kind.keys().copied().collect();
        kinds.sort_unstable();
        f.debug_struct("Connectors").field("kinds", &kinds).finish()
    }
}

impl Connectors {
    /// The connectors infralog ships with.
    pub fn builtin() -> Self {
        let mut connectors = Connectors::default();
        connectors.register(Arc::new(dummy::DummyConnector::new()));
        connectors.register(Arc::new(docker::DockerConnector::default()));
        connectors
    }

    /// Adds `connector` for its credential type, replacing any connector of that type.
    pub fn register(&mut self, connector: Arc<dyn CloudConnector>) {
        self.by_kind.insert(connector.kind(), connector);
    }

    /// The connector of credential type `kind`; `None` when this instance has none.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn CloudConnector>> {
        self.by_kind.get(kind).cloned()
    }

    /// Whether VMs of credential type `kind` are configured by real Ansible runs.
    pub fn configured_by_ansible(&self, kind: &str) -> bool {
        self.by_kind
            .get(kind)
            .is_some_and(|connector| connector.configured_by_ansible())
    }

    /// Whether VMs of credential type `kind` can be observed in their cloud.
    pub fn observable(&self, kind: &str) -> bool {
        self.by_kind
            .get(kind)
            .is_some_and(|connector| connector.observable())
    }

    /// Whether this instance has a connector for credential type `kind`.
    pub fn supports(&self, kind: &str) -> bool {
        self.by_kind.contains_key(kind)
    }

    /// Every connector, in no particular order (to wrap each, e.g. for metrics).
    pub fn all(&self) -> Vec<Arc<dyn CloudConnector>> {
        self.by_kind.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_comma_separated_pairs_with_one_equals_sign() {
        let filters = ImageFilters::parse("region=r1,distribution=ubuntu").expect("valid");
        assert_eq!(filters.get("region"), Some("r1"));
        assert_eq!(filters.get("distribution"), Some("ubuntu"));
        let empty_value = ImageFilters::parse("a=").expect("an empty value is a value");
        assert_eq!(empty_value.get("a"), Some(""));
        let repeated = ImageFilters::parse("a=1,b=2,a=3").expect("valid");
        assert_eq!(
            repeated.pairs().collect::<Vec<_>>(),
            [("a", "3"), ("b", "2")]
        );
    }

    #[test]
    fn a_part_without_exactly_one_equals_sign_is_refused() {
        for bad in ["bad", "a=b=c", "a=1,", ",a=1", "", "a=1,b"] {
            assert_eq!(
                ImageFilters::parse(bad),
                Err(InvalidImageFilters),
                "{bad:?}"
            );
        }
        assert_eq!(
            InvalidImageFilters.to_string(),
            "Invalid format in filters parameter."
        );
    }
}
