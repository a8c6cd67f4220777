//! Given RADL text, the expected container plan; and the inputs that must be refused.

use super::*;
use crate::connectors::docker::ports::Protocol;

fn inf() -> InfId {
    "6a9c1c84-8a7e-11ee-b9d1-0242ac120002"
        .parse()
        .expect("a valid id")
}

fn plan_of(text: &str, system: &str, vm: u32) -> Result<ContainerPlan, PlanError> {
    let radl = infralog_radl::parse(text).expect("the test RADL parses");
    let extra = BTreeMap::from([("infralog.test".to_string(), "run1".to_string())]);
    plan(
        &radl,
        system,
        Owner {
            infrastructure: inf(),
            vm: VmId(vm),
            extra_labels: &extra,
        },
    )
}

fn error_of(text: &str) -> String {
    plan_of(text, "node", 0).expect_err("refused").0
}

const FULL: &str = r#"
network pub (outbound = 'yes' and outports = '8080-80,22/tcp,53/udp')
network priv (outbound = 'no')
network back ()
system node (
    cpu.count >= 2 and
    memory.size >= 512m and
    disk.0.image.url = ['one://x/1', 'docker://infralog-test/debian:bookworm'] and
    net_interface.0.connection = 'priv' and
    net_interface.0.dns_name = 'web-#N#.example.org' and
    net_interface.1.connection = 'pub' and
    net_interface.2.connection = 'back' and
    disk.1.size = 1G and
    disk.1.mount_path = 'data' and
    disk.2.mount_path = '/srv/cache'
)
deploy node 2
"#;

#[test]
fn a_full_system_becomes_its_container() {
    let plan = plan_of(FULL, "node", 1).expect("valid");
    let id = inf();
    assert_eq!(plan.container_name, format!("infralog-{id}-1"));
    assert_eq!(plan.image, "infralog-test/debian:bookworm");
    assert_eq!(
        (plan.hostname.as_str(), plan.domainname.as_str()),
        ("web-1", "example.org")
    );
    assert_eq!(
        plan.cpu,
        Some(CpuLimit {
            nano_cpus: 2_000_000_000,
            literal: "2".into()
        })
    );
    assert_eq!(
        plan.memory,
        Some(MemoryLimit {
            bytes: 512_000_000,
            literal: "512".into(),
            unit: "m".into()
        })
    );
    let networks: Vec<(&str, &str, Vec<&str>)> = plan
        .networks
        .iter()
        .map(|n| {
            (
                n.radl_network.as_str(),
                n.docker_name.as_str(),
                n.aliases.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let (priv_name, back_name) = (format!("infralog-{id}-priv"), format!("infralog-{id}-back"));
    assert_eq!(
        networks,
        [
            (
                "priv",
                priv_name.as_str(),
                vec!["web-1", "web-1.example.org"]
            ),
            (
                "back",
                back_name.as_str(),
                vec!["vnode-1", "vnode-1.localdomain"]
            ),
        ]
    );
    assert_eq!(plan.networks[0].labels["infralog.network"], "priv");
    assert_eq!(plan.networks[0].labels["infralog.test"], "run1");
    assert!(!plan.networks[0].labels.contains_key("infralog.vm"));
    let interfaces: Vec<(u32, bool, Option<&str>)> = plan
        .interfaces
        .iter()
        .map(|i| (i.index, i.public, i.dns_name.as_deref()))
        .collect();
    assert_eq!(
        interfaces,
        [
            (0, false, Some("web-1.example.org")),
            (1, true, None),
            (2, false, Some("vnode-1"))
        ]
    );
    let ports: Vec<(u16, u16, Protocol)> = plan
        .ports
        .iter()
        .map(|p| (p.host_port, p.container_port, p.protocol))
        .collect();
    assert_eq!(
        ports,
        [
            (8080, 80, Protocol::Tcp),
            (22, 22, Protocol::Tcp),
            (53, 53, Protocol::Udp)
        ]
    );
    let volumes: Vec<(u32, &str, &str)> = plan
        .volumes
        .iter()
        .map(|v| (v.disk, v.volume_name.as_str(), v.mount_path.as_str()))
        .collect();
    let (disk1, disk2) = (
        format!("infralog-{id}-1-disk1"),
        format!("infralog-{id}-1-disk2"),
    );
    assert_eq!(
        volumes,
        [
            (1, disk1.as_str(), "/data"),
            (2, disk2.as_str(), "/srv/cache")
        ]
    );
    assert_eq!(plan.volumes[0].labels["infralog.disk"], "1");
    assert_eq!(plan.volumes[0].labels["infralog.vm"], "1");
    assert_eq!(
        plan.labels,
        BTreeMap::from([
            ("infralog.infrastructure".to_string(), id.to_string()),
            ("infralog.vm".to_string(), "1".to_string()),
            ("infralog.test".to_string(), "run1".to_string()),
        ])
    );
}

#[test]
fn a_bare_system_has_no_limits_networks_or_volumes() {
    let plan = plan_of(
        "system node ( disk.0.image.url = 'docker://alpine' )",
        "node",
        4,
    )
    .expect("valid");
    assert_eq!(plan.image, "alpine");
    assert_eq!(
        (plan.hostname.as_str(), plan.domainname.as_str()),
        ("vnode-4", "localdomain")
    );
    assert_eq!((plan.cpu, plan.memory), (None, None));
    assert!(plan.interfaces.is_empty() && plan.networks.is_empty());
    assert!(plan.ports.is_empty() && plan.volumes.is_empty());
}

#[test]
fn memory_units_follow_ims_conversion() {
    for (written, bytes) in [
        ("1GiB", 1_073_741_824),
        ("2g", 2_000_000_000),
        ("0.5G", 500_000_000),
        ("64M", 64_000_000),
        ("7340032", 7_340_032),
    ] {
        let text =
            format!("system node ( memory.size = {written} and disk.0.image.url = 'docker://a' )");
        let plan = plan_of(&text, "node", 0).expect(written);
        assert_eq!(plan.memory.map(|m| m.bytes), Some(bytes), "{written}");
    }
}

#[test]
fn two_interfaces_on_one_private_network_attach_once() {
    let plan = plan_of(
        "network p ()\nsystem node ( disk.0.image.url = 'docker://a' and \
         net_interface.0.connection = 'p' and net_interface.1.connection = 'p' and \
         net_interface.1.dns_name = 'other' )",
        "node",
        0,
    )
    .expect("valid");
    assert_eq!(plan.networks.len(), 1);
    assert_eq!(plan.networks[0].interfaces, [0, 1]);
    assert_eq!(
        plan.networks[0].aliases,
        [
            "vnode-0",
            "vnode-0.localdomain",
            "other",
            "other.localdomain"
        ]
    );
}

#[test]
fn hostile_inputs_are_refused_with_a_reason() {
    let cases = [
        ("system node ( cpu.count = 1 )", "has no disk.0.image.url"),
        ("system other ( disk.0.image.url = 'docker://a' )", "no system node"),
        (
            "system node ( disk.0.image.url = 'one://server/image' )",
            "is not a docker:// URL",
        ),
        ("system node ( disk.0.image.url = 'docker://' )", "does not name"),
        (
            "system node ( disk.0.image.url = 'docker://a b;rm -rf' )",
            "does not name",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and memory.size = 99999999999999999999999g )",
            "too large",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and memory.size = 1k )",
            "below Docker's minimum",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and cpu.count = 0 )",
            "not a CPU count",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and cpu.count = 99999999999999999999 )",
            "not a CPU count",
        ),
        (
            "network pub (outbound = 'yes' and outports = '80-80,80-8080')\nsystem node ( \
             disk.0.image.url = 'docker://a' and net_interface.0.connection = 'pub' )",
            "is mapped to container ports 80 and 8080",
        ),
        (
            "network p ()\nsystem node ( disk.0.image.url = 'docker://a' and \
             net_interface.0.connection = 'p' and net_interface.0.dns_name = 'a_b;x' )",
            "not a valid host name",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and disk.1.mount_path = '/' )",
            "cannot be a mount point",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and disk.1.mount_path = '/x/../..' )",
            "cannot be a mount point",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and disk.1.mount_path = '/d' and \
             disk.1.device = '/etc' )",
            "host paths are not mounted",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and docker.privileged = 'yes' )",
            "privileged",
        ),
        (
            "system node ( disk.0.image.url = 'docker://a' and net_interface.0.connection = 'nowhere' )",
            "does not define",
        ),
    ];
    for (text, reason) in cases {
        let message = error_of(text);
        assert!(message.contains(reason), "{text}\n→ {message}");
    }
}

#[test]
fn bad_outports_fail_the_plan_naming_the_network() {
    let message = error_of(
        "network pub (outbound = 'yes' and outports = '22/tcp-22/udp')\nsystem node ( \
         disk.0.image.url = 'docker://a' and net_interface.0.connection = 'pub' )",
    );
    assert!(message.contains("network pub"), "{message}");
    assert!(message.contains("different protocols"), "{message}");
}
