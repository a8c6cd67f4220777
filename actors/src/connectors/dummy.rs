//! IM's Dummy cloud (`IM/connectors/Dummy.py`): it creates nothing, never fails, and
//! decorates VMs exactly as IM's does (`docs/api.md` §2.13).

use std::sync::atomic::{AtomicU64, Ordering};

use infralog_events::domain::{Comparison, FactValue, FeatureFact};

use super::{
    AlterRequest, CloudConnector, CloudCredentials, CloudFuture, CloudImage, CloudVmRef,
    ConnectorError, ImageFilters, LaunchRequest, LaunchedVm, QuotaUsage, Quotas,
};

/// The Dummy connector.
#[derive(Debug, Default)]
pub struct DummyConnector {
    /// The last VM id handed out, so ids stay unique within a process even when two
    /// launches fall in the same hundredth of a second (IM's may collide).
    last_vm_id: AtomicU64,
}

impl DummyConnector {
    /// A Dummy connector whose VM ids start from the current time.
    pub fn new() -> Self {
        Self::default()
    }

    /// IM's Dummy ids are `int(time() * 100)`: 12 digits for years to come.
    fn next_vm_id(&self) -> String {
        let now = chrono_like_hundredths();
        let mut last = self.last_vm_id.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(last + 1);
            match self.last_vm_id.compare_exchange_weak(
                last,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate.to_string(),
                Err(seen) => last = seen,
            }
        }
    }
}

fn chrono_like_hundredths() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64 / 10)
        .unwrap_or(0)
}

fn ready<T: Send + 'static>(value: Result<T, ConnectorError>) -> CloudFuture<T> {
    Box::pin(std::future::ready(value))
}

impl CloudConnector for DummyConnector {
    fn kind(&self) -> &'static str {
        "Dummy"
    }

    fn launch(
        &self,
        _request: LaunchRequest,
        _credentials: &CloudCredentials,
    ) -> CloudFuture<LaunchedVm> {
        // The order is IM's: the state line first (refreshed on every read), then
        // what Dummy.launch sets.
        let facts = vec![
            FeatureFact::text("state", "running"),
            FeatureFact::text("provider.type", "Dummy"),
            FeatureFact::text("net_interface.0.ip", "10.0.0.1"),
            FeatureFact::text("disk.0.os.credentials.username", "username"),
            FeatureFact::text("disk.0.os.credentials.password", "password"),
        ];
        ready(Ok(LaunchedVm {
            cloud_vm_id: self.next_vm_id(),
            facts,
        }))
    }

    fn stop(&self, _vm: &CloudVmRef, _credentials: &CloudCredentials) -> CloudFuture<()> {
        ready(Ok(()))
    }

    fn start(&self, _vm: &CloudVmRef, _credentials: &CloudCredentials) -> CloudFuture<()> {
        ready(Ok(()))
    }

    fn reboot(&self, _vm: &CloudVmRef, _credentials: &CloudCredentials) -> CloudFuture<()> {
        ready(Ok(()))
    }

    /// IM's Dummy copies `cpu.count` (keeping the VM's comparison) and sets
    /// `memory.size = <n>M`; without a memory size it fails (in IM with a Python
    /// `AttributeError`; here saying what is missing).
    fn alter(
        &self,
        _vm: &CloudVmRef,
        request: AlterRequest,
        _credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<FeatureFact>> {
        let Some(memory_megabytes) = request.memory_megabytes else {
            return ready(Err(ConnectorError::new(
                "the Dummy cloud needs memory.size in the new system to alter a VM",
            )));
        };
        let mut facts = Vec::with_capacity(2);
        if let Some(cpu_count) = request.cpu_count {
            facts.push(FeatureFact {
                name: "cpu.count".into(),
                comparison: None,
                value: FactValue::Number {
                    literal: cpu_count,
                    unit: String::new(),
                },
            });
        }
        facts.push(FeatureFact {
            name: "memory.size".into(),
            comparison: Some(Comparison::Eq),
            value: FactValue::Number {
                literal: memory_megabytes,
                unit: "M".into(),
            },
        });
        ready(Ok(facts))
    }

    fn snapshot(
        &self,
        _vm: &CloudVmRef,
        _disk: u32,
        image_name: &str,
        _credentials: &CloudCredentials,
    ) -> CloudFuture<String> {
        ready(Ok(format!("mock0://linux.for.ev.er/{image_name}")))
    }

    fn destroy(&self, _vm: &CloudVmRef, _credentials: &CloudCredentials) -> CloudFuture<()> {
        ready(Ok(()))
    }

    fn delete_image(&self, _image_url: &str, _credentials: &CloudCredentials) -> CloudFuture<()> {
        ready(Ok(()))
    }

    /// IM's Dummy offers the same two images whatever the filters.
    fn images(
        &self,
        _filters: &ImageFilters,
        _credentials: &CloudCredentials,
    ) -> CloudFuture<Vec<CloudImage>> {
        ready(Ok(vec![
            CloudImage {
                uri: "mock0://linux.for.ev.er/image1".into(),
                name: "Image Name1".into(),
            },
            CloudImage {
                uri: "mock0://linux.for.ev.er/image2".into(),
                name: "Image Name2".into(),
            },
        ]))
    }

    fn quotas(&self, _credentials: &CloudCredentials) -> CloudFuture<Quotas> {
        let usage = QuotaUsage { used: 1, limit: 10 };
        ready(Ok([
            "cores",
            "ram",
            "instances",
            "floating_ips",
            "security_groups",
        ]
        .into_iter()
        .map(|name| (name.to_string(), usage))
        .collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::{CloudRef, VmId};

    fn block_on<T>(future: CloudFuture<T>) -> Result<T, ConnectorError> {
        // Every Dummy future is ready at once; poll it with a no-op waker.
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("Dummy futures are always ready"),
        }
    }

    fn vm() -> CloudVmRef {
        CloudVmRef {
            cloud: CloudRef {
                id: "dummy".into(),
                kind: "Dummy".into(),
                host: String::new(),
            },
            cloud_vm_id: "1".into(),
        }
    }

    #[test]
    fn launches_decorate_like_ims_dummy_with_unique_twelve_digit_ids() {
        let dummy = DummyConnector::new();
        let request = LaunchRequest {
            infrastructure: infralog_events::domain::InfId::random(),
            vm_id: VmId(0),
            system: "front".into(),
            radl: "system front ()".into(),
            cloud: vm().cloud,
        };
        let a = block_on(dummy.launch(request.clone(), &CloudCredentials::default()))
            .expect("Dummy never fails");
        let b = block_on(dummy.launch(request, &CloudCredentials::default()))
            .expect("Dummy never fails");
        assert_ne!(a.cloud_vm_id, b.cloud_vm_id);
        assert_eq!(a.cloud_vm_id.len(), 12);
        let names: Vec<&str> = a.facts.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "state",
                "provider.type",
                "net_interface.0.ip",
                "disk.0.os.credentials.username",
                "disk.0.os.credentials.password"
            ]
        );
    }

    #[test]
    fn alter_copies_cpu_and_memory_in_decimal_megabytes() {
        let dummy = DummyConnector::new();
        let facts = block_on(dummy.alter(
            &vm(),
            AlterRequest {
                cpu_count: Some("3".into()),
                memory_megabytes: Some("3221".into()),
            },
            &CloudCredentials::default(),
        ))
        .expect("memory was given");
        assert_eq!(facts[0].comparison, None);
        assert_eq!(
            facts[1].value,
            FactValue::Number {
                literal: "3221".into(),
                unit: "M".into()
            }
        );
        let refused =
            block_on(dummy.alter(&vm(), AlterRequest::default(), &CloudCredentials::default()));
        assert!(refused.is_err());
    }

    #[test]
    fn images_ignore_filters_and_quotas_are_fixed() {
        let dummy = DummyConnector::new();
        let filters = ImageFilters::parse("region=r1").expect("valid");
        let filtered = block_on(dummy.images(&filters, &CloudCredentials::default()));
        let unfiltered =
            block_on(dummy.images(&ImageFilters::default(), &CloudCredentials::default()));
        assert_eq!(filtered, unfiltered);
        let images = filtered.expect("Dummy never fails");
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].uri, "mock0://linux.for.ev.er/image1");
        assert_eq!(images[1].name, "Image Name2");
        let quotas = block_on(dummy.quotas(&CloudCredentials::default())).expect("fixed");
        let names: Vec<&str> = quotas.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cores",
                "ram",
                "instances",
                "floating_ips",
                "security_groups"
            ]
        );
        assert!(quotas
            .iter()
            .all(|(_, usage)| *usage == QuotaUsage { used: 1, limit: 10 }));
    }

    #[test]
    fn snapshots_are_mock_urls() {
        let url =
            block_on(DummyConnector::new().snapshot(&vm(), 0, "img", &CloudCredentials::default()));
        assert_eq!(url, Ok("mock0://linux.for.ev.er/img".to_string()));
    }
}
