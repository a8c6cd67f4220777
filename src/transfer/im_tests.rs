use std::sync::Arc;

use chrono::TimeZone;
use infralog_events::domain::{OwnerRecord, VmId};

use super::*;
use crate::projections::{ContextLog, Lifecycle};

const RADL: &str = "network publica ( outbound = 'yes' )\nnetwork privada (  )\nsystem front (\ncpu.count >= 1 and\nnet_interface.0.connection = 'publica' and\nnet_interface.1.connection = 'privada' and\ndisk.0.os.name = 'linux' and\ndisk.0.os.credentials.password = 'vmsecret'\n)\n\ncontextualize ()\ndeploy front 1\n";

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_100, 0)
        .single()
        .expect("valid time")
}

fn dummy() -> CloudRef {
    CloudRef {
        id: "dummy".into(),
        kind: "Dummy".into(),
        host: String::new(),
    }
}

fn view() -> InfrastructureView {
    let created = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .expect("valid time");
    let radl: Arc<str> = Arc::from(RADL);
    let vm = |id: u32, cloud_state: CloudState| VmView {
        id: VmId(id),
        system: "front".into(),
        launch_radl: Arc::clone(&radl),
        imported_info: None,
        cloud: Arc::new(dummy()),
        cloud_vm_id: Some(format!("cloud-{id}").into()),
        cloud_state,
        configured: Some(true),
        facts: Vec::new(),
        new_password: None,
        created_at: created,
        ansible_log: Default::default(),
    };
    InfrastructureView {
        id: "0bd5a6a2-3d1f-11ef-8f45-0242ac120002"
            .parse()
            .expect("an id"),
        version: 7,
        last_position: 9,
        lifecycle: Lifecycle::Live,
        owners: vec![OwnerRecord {
            username: "alice".into(),
            salt: [7; 16],
            digest: [9; 32],
            via_token: false,
        }],
        radl: Arc::clone(&radl),
        tosca: None,
        configured: Some(true),
        contmsg: ContextLog::default(),
        contextualizing: false,
        vms: vec![
            vm(0, CloudState::Running),
            vm(1, CloudState::Destroyed),
            vm(2, CloudState::Failed("no room".into())),
        ],
        created_at: created,
        updated_at: created,
        auto_delete_snapshots: vec!["mock0://linux.for.ev.er/snap".into()],
        unfinished_changes: false,
        imported: false,
        ansible_output: Default::default(),
    }
}

fn exported_text() -> String {
    to_python_json(&export(
        &view(),
        |vm| Some(format!("info of {}", vm.id)),
        now(),
    ))
}

#[test]
fn the_export_has_ims_keys_and_values() {
    let value: Value = serde_json::from_str(&exported_text()).expect("JSON");
    assert_eq!(value["id"], "0bd5a6a2-3d1f-11ef-8f45-0242ac120002");
    assert_eq!(value["radl"], RADL);
    assert_eq!(
        value["private_networks"],
        serde_json::json!({"privada": "dummy"})
    );
    assert_eq!(
        value["snapshots"],
        serde_json::json!(["mock0://linux.for.ev.er/snap"])
    );
    assert_eq!(value["creation_date"], 1_700_000_000);
    assert_eq!(value["vm_master"], Value::Null);
    assert_eq!(value["configured"], true);
    let vms = value["vm_list"].as_array().expect("a list");
    assert_eq!(vms.len(), 3);
    assert_eq!(vms[0]["state"], "configured");
    assert_eq!(vms[0]["id"], "cloud-0");
    assert_eq!(vms[0]["info"], "info of 0");
    assert_eq!(vms[0]["last_update"], 1_700_000_100);
    assert_eq!(
        vms[0]["cloud"],
        serde_json::json!({"id": "dummy", "type": "Dummy", "server": "", "port": -1,
            "protocol": "", "path": "", "extra": {}})
    );
    assert_eq!(vms[1]["destroy"], true);
    assert_eq!(vms[2]["state"], "failed");
    assert_eq!(vms[2]["error_msg"], "no room");
    assert_eq!(vms[0]["error_msg"], Value::Null);
}

/// IM's keys in IM's order: `InfrastructureInfo.__init__` sets them in this order,
/// `serialize` drops the private ones, and `deserialize` (an import) adds
/// `cloud_connector` after all of them.
const IM_KEYS: [&str; 15] = [
    "id",
    "vm_list",
    "auth",
    "radl",
    "private_networks",
    "system_counter",
    "deleted",
    "vm_master",
    "vm_id",
    "cont_out",
    "ansible_configured",
    "configured",
    "extra_info",
    "snapshots",
    "creation_date",
];

fn keys(text: &str) -> Vec<String> {
    let value: serde_json::Map<String, Value> = serde_json::from_str(text).expect("an object");
    value.keys().cloned().collect()
}

#[test]
fn only_the_export_of_an_imported_infrastructure_has_a_null_cloud_connector_last() {
    assert_eq!(keys(&exported_text()), IM_KEYS);
    assert!(!exported_text().contains("cloud_connector"));
    let mut imported = view();
    imported.imported = true;
    let text = to_python_json(&export(&imported, |_| None, now()));
    let mut expected: Vec<&str> = IM_KEYS.to_vec();
    expected.push("cloud_connector");
    assert_eq!(keys(&text), expected);
    assert!(text.ends_with(", \"cloud_connector\": null}"), "{text}");
}

#[test]
fn the_export_never_holds_an_owners_secret() {
    let text = exported_text();
    let value: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        value["auth"],
        serde_json::json!([{"id": "im", "type": "InfrastructureManager",
            "username": "alice", "password": "", "admin": false}])
    );
    // The VM's own credentials are part of its RADL and travel with it.
    assert!(text.contains("vmsecret"));
}

#[test]
fn the_export_is_written_as_python_writes_json() {
    let text = to_python_json(&serde_json::json!({"a": [1, 2], "b": "é😀"}));
    assert_eq!(text, r#"{"a": [1, 2], "b": "\u00e9\ud83d\ude00"}"#);
}

#[test]
fn an_export_imports_back_to_the_same_infrastructure() {
    let text = to_python_json(&export(&view(), |_| Some(RADL.to_string()), now()));
    let document = parse_import(text.as_bytes(), now()).expect("imports");
    assert_eq!(document.id, view().id);
    let imported = document.infrastructure;
    assert_eq!(imported.radl, RADL);
    assert_eq!(imported.configured, Some(true));
    assert_eq!(imported.created_at_s, 1_700_000_000);
    assert_eq!(
        imported.auto_delete_snapshots,
        ["mock0://linux.for.ev.er/snap"]
    );
    assert!(
        imported.owners.is_empty(),
        "the importer's owners are set by the caller"
    );
    let statuses: Vec<&ImportedVmStatus> = imported.vms.iter().map(|vm| &vm.status).collect();
    assert_eq!(
        statuses,
        [
            &ImportedVmStatus::Running,
            &ImportedVmStatus::Destroyed,
            &ImportedVmStatus::Failed {
                message: "no room".into()
            }
        ]
    );
    assert_eq!(imported.vms[0].cloud, dummy());
    assert_eq!(imported.vms[0].cloud_vm_id.as_deref(), Some("cloud-0"));
    assert_eq!(imported.vms[0].system, "front");
    assert_eq!(imported.vms[0].info_radl, RADL);
    assert_eq!(imported.vms[0].requested_radl, RADL.trim_end());
}

#[test]
fn cloud_endpoints_split_and_join_as_im_does() {
    let cloud = CloudRef {
        id: "one".into(),
        kind: "OpenNebula".into(),
        host: "https://server.example:2633/RPC2".into(),
    };
    let exported = ExportedCloud::from_ref(&cloud);
    assert_eq!(
        (
            exported.protocol.as_str(),
            exported.server.as_str(),
            exported.port,
            exported.path.as_str()
        ),
        ("https", "server.example", 2633, "/RPC2")
    );
    assert_eq!(
        host_of(
            &exported.server,
            exported.port,
            &exported.protocol,
            &exported.path
        ),
        cloud.host
    );
}

fn import_error(body: &str) -> String {
    parse_import(body.as_bytes(), now())
        .expect_err("refused")
        .to_string()
}

fn minimal(vm_list: &str) -> String {
    format!(
        r#"{{"id": "0bd5a6a2-3d1f-11ef-8f45-0242ac120002", "vm_master": null, "auth": [], "radl": {}, "vm_list": {vm_list}}}"#,
        serde_json::to_string(RADL).expect("a string")
    )
}

#[test]
fn malformed_documents_are_refused_with_ims_reasons() {
    assert_eq!(
        import_error(""),
        "Expecting value: line 1 column 1 (char 0)"
    );
    assert_eq!(
        import_error("\"{}\""),
        "string indices must be integers, not 'str'"
    );
    assert_eq!(import_error(r#"{"auth": []}"#), "'vm_list'");
    assert_eq!(
        import_error(&minimal("[]").replace("0bd5a6a2-3d1f-11ef", "nope")),
        "the id \"nope-8f45-0242ac120002\" is not an infrastructure id (a UUID)"
    );
    let vm = |im_id: u32, extra: &str| {
        format!(
            r#"{{"im_id": {im_id}, "cloud": {{"id": "dummy", "type": "Dummy"}}, "info": {radl}, "requested_radl": {radl}{extra}}}"#,
            radl = serde_json::to_string(RADL).expect("a string")
        )
    };
    assert_eq!(
        import_error(&minimal(&format!("[{}]", vm(1, r#", "id": "x""#)))),
        "VM im_id values must be 0, 1, 2… in order; found 1 at position 0"
    );
    assert_eq!(
        import_error(&minimal(&format!("[{}]", vm(0, "")))),
        "VM 0 has no cloud id (id) yet is neither failed nor destroyed"
    );
    assert!(
        import_error(&minimal("[]").replace("deploy front 1", "deploy front"))
            .contains("is not valid RADL")
    );
    let ok = parse_import(
        minimal(&format!(
            "[{}]",
            vm(0, r#", "id": "x", "configured": null"#)
        ))
        .as_bytes(),
        now(),
    )
    .expect("a minimal document imports");
    // IM loads a VM whose flag is null as not configured; missing keys take defaults.
    assert_eq!(ok.infrastructure.vms[0].configured, Some(false));
    assert_eq!(ok.infrastructure.vms[0].status, ImportedVmStatus::Running);
    assert_eq!(ok.infrastructure.created_at_s, now().timestamp());
}

#[test]
fn a_vms_requested_radl_holds_only_its_own_system() {
    let mut view = view();
    let two_systems = format!("{RADL}system wn ( cpu.count >= 1 )\n");
    view.vms[0].launch_radl = Arc::from(two_systems.as_str());
    let exported = export(&view, |_| None, now());
    let requested = &exported.vm_list[0].requested_radl;
    assert!(requested.contains("system front ("), "{requested}");
    assert!(!requested.contains("system wn"), "{requested}");
}
