//! The names and labels of what the Docker connector creates. Everything it makes
//! carries the infrastructure's label, so that it can be found again after a crash
//! (launch adopts, release removes) without any state of its own.

use std::collections::{BTreeMap, HashMap};

use infralog_events::domain::{InfId, VmId};

/// The label naming the infrastructure a container, network or volume belongs to.
pub const INFRASTRUCTURE: &str = "infralog.infrastructure";
/// The label naming the VM (its id inside the infrastructure) of a container or volume.
pub const VM: &str = "infralog.vm";
/// The label naming the RADL network a Docker network stands for.
pub const NETWORK: &str = "infralog.network";
/// The label naming the disk a volume stands for.
pub const DISK: &str = "infralog.disk";
/// The label every image a snapshot made carries; only such images are deleted.
pub const SNAPSHOT: &str = "infralog.snapshot";

/// The container of VM `vm`: `infralog-<infrastructure>-<vm>`.
pub fn container_name(infrastructure: InfId, vm: VmId) -> String {
    format!("infralog-{infrastructure}-{}", vm.0)
}

/// The bridge network standing for RADL network `network`:
/// `infralog-<infrastructure>-<network>`.
pub fn network_name(infrastructure: InfId, network: &str) -> String {
    format!("infralog-{infrastructure}-{}", docker_safe(network))
}

/// The volume of disk `disk` of VM `vm`: `infralog-<infrastructure>-<vm>-disk<disk>`.
pub fn volume_name(infrastructure: InfId, vm: VmId, disk: u32) -> String {
    format!("infralog-{infrastructure}-{}-disk{disk}", vm.0)
}

/// `id` as a part of a Docker object name, which allows only `[A-Za-z0-9_.-]`. RADL
/// ids may hold other letters (Python's `\w`); those become `-` and a digest of the
/// whole id is appended, so that two ids never share a name.
pub fn docker_safe(id: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if !id.is_empty() && id.chars().all(allowed) {
        return id.to_string();
    }
    let cleaned: String = id
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .collect();
    format!("{cleaned}-{:08x}", fnv1a(id.as_bytes()))
}

/// 32-bit FNV-1a: stable across releases and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// The operator's labels, then the connector's own (which win on a shared key, so
/// that lookups by label can never be misled).
pub fn merged(
    extra: &BTreeMap<String, String>,
    own: impl IntoIterator<Item = (&'static str, String)>,
) -> BTreeMap<String, String> {
    let mut labels = extra.clone();
    for (key, value) in own {
        labels.insert(key.to_string(), value);
    }
    labels
}

/// The labels of the container of VM `vm`.
pub fn container_labels(
    extra: &BTreeMap<String, String>,
    infrastructure: InfId,
    vm: VmId,
) -> BTreeMap<String, String> {
    merged(
        extra,
        [
            (INFRASTRUCTURE, infrastructure.to_string()),
            (VM, vm.0.to_string()),
        ],
    )
}

/// A Docker `filters` argument matching every object with all these labels.
pub fn label_filter(pairs: &[(&str, String)]) -> HashMap<String, Vec<String>> {
    let labels = pairs
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    HashMap::from([("label".to_string(), labels)])
}

/// The filter matching what belongs to `infrastructure`.
pub fn infrastructure_filter(infrastructure: InfId) -> HashMap<String, Vec<String>> {
    label_filter(&[(INFRASTRUCTURE, infrastructure.to_string())])
}

/// The filter matching what belongs to VM `vm` of `infrastructure`.
pub fn vm_filter(infrastructure: InfId, vm: VmId) -> HashMap<String, Vec<String>> {
    label_filter(&[
        (INFRASTRUCTURE, infrastructure.to_string()),
        (VM, vm.0.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radl_ids_with_other_letters_get_a_distinct_safe_name() {
        assert_eq!(docker_safe("priv_net-1.a"), "priv_net-1.a");
        let accented = docker_safe("réseau");
        assert!(accented.starts_with("r-seau-"), "{accented}");
        assert!(accented
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        assert_ne!(docker_safe("résau"), docker_safe("rêsau"));
        assert_ne!(docker_safe("a b"), "a-b");
        assert!(!docker_safe("").is_empty());
    }

    #[test]
    fn the_connectors_labels_win_over_the_operators() {
        let extra = BTreeMap::from([
            (INFRASTRUCTURE.to_string(), "forged".to_string()),
            ("team".to_string(), "a".to_string()),
        ]);
        let id = InfId::random();
        let labels = container_labels(&extra, id, VmId(3));
        assert_eq!(labels[INFRASTRUCTURE], id.to_string());
        assert_eq!(labels[VM], "3");
        assert_eq!(labels["team"], "a");
        assert_eq!(
            vm_filter(id, VmId(3))["label"],
            [format!("{INFRASTRUCTURE}={id}"), format!("{VM}=3")]
        );
    }
}
