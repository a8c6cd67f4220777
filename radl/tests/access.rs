//! Property access as the REST layer uses it (`GET …/vms/{vm}/{prop}`), and setting
//! features without duplicating them.

use infralog_radl::{self as radl, Number, PropertyValue, Value};

fn system() -> radl::System {
    let doc = radl::parse(
        "network net (outbound = 'yes')
system node (
cpu.count >= 2 and
memory.size >= 512m and
net_interface.0.connection = 'net' and
net_interface.0.ip = '10.0.0.1' and
disk.0.image.url = ['one://a/1', 'one://b/2'] and
disk.0.os.credentials.new.password = 'N0tan+mala' and
disk.0.applications contains (name = 'octave' and version = '6') and
disk.0.applications contains (name = 'ansible.roles.x')
)",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    doc.systems[0].clone()
}

#[test]
fn properties_read_as_im_returns_them() {
    let node = system();
    let text = |prop: &str| node.property(prop).map(|v| v.to_text());
    let json = |prop: &str| node.property(prop).map(|v| v.to_json());
    assert_eq!(text("memory.size"), Some("512000000".into()));
    assert_eq!(json("memory.size"), Some("512000000".into()));
    assert_eq!(text("cpu.count"), Some("2".into()));
    assert_eq!(text("net_interface.0.ip"), Some("10.0.0.1".into()));
    assert_eq!(json("net_interface.0.ip"), Some("\"10.0.0.1\"".into()));
    assert_eq!(
        text("disk.0.os.credentials.new.password"),
        Some("N0tan+mala".into())
    );
    assert_eq!(
        text("disk.0.image.url"),
        Some("one://a/1\none://b/2".into())
    );
    assert_eq!(
        json("disk.0.image.url"),
        Some(r#"["one://a/1","one://b/2"]"#.into())
    );
    assert_eq!(
        json("disk.0.applications"),
        Some(r#"{"octave":{"name":"octave","version":"6"},"ansible.roles.x":{"name":"ansible.roles.x"}}"#.into())
    );
    assert!(
        matches!(node.property("disk.0.applications"), Some(PropertyValue::Groups(groups)) if groups.len() == 2)
    );
    assert_eq!(node.property("state"), None);
    assert_eq!(node.network_ids(), vec!["net"]);
    assert_eq!(node.credentials(true)[1], Some("N0tan+mala"));
}

#[test]
fn setting_a_value_replaces_it_in_place_once() {
    let mut node = system();
    node.features
        .set_value("cpu.count", Value::Num(Number::from(4)), "");
    node.features.set_string("net_interface.0.ip", "10.0.0.2");
    node.features.set_string("state", "running");
    node.features.set_string("state", "configured");
    let text = node.to_string();
    assert_eq!(text.matches("cpu.count").count(), 1, "{text}");
    assert!(
        text.contains("cpu.count >= 4 and\nmemory.size >= 512m"),
        "{text}"
    );
    assert!(text.contains("net_interface.0.ip = '10.0.0.2'"), "{text}");
    assert!(text.ends_with("state = 'configured'\n)\n"), "{text}");
    // RADL-JSON sees the copied bound as an exact value, as IM does.
    let doc = radl::Radl {
        systems: vec![node],
        ..Default::default()
    };
    assert!(
        doc.to_json().contains(r#""cpu.count":4"#),
        "{}",
        doc.to_json()
    );
}

#[test]
fn dummy_refresh_names_interface_zero_and_replaces_the_vm_number() {
    let doc = radl::parse(
        "network p ()\nsystem wn (net_interface.0.connection = 'p' and net_interface.1.connection = 'p' and net_interface.1.dns_name = 'wn-#N#')",
    )
    .unwrap_or_default();
    let mut vm = radl::merge::new_vm(&doc, "wn").unwrap_or_default();
    radl::merge::refresh_vm(
        &mut vm.systems[0],
        "running",
        7,
        radl::merge::DEFAULT_VM_NAME,
    );
    let node = &vm.systems[0];
    assert_eq!(node.features.string("state"), Some("running"));
    assert_eq!(
        node.features.string("net_interface.0.dns_name"),
        Some("vnode-7")
    );
    assert_eq!(
        node.features.string("net_interface.0.dns.0.name"),
        Some("vnode-7")
    );
    assert_eq!(
        node.features.string("net_interface.1.dns_name"),
        Some("wn-7")
    );
}
