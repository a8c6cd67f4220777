//! IM 2.0.0's export format (`GET …/data`, `PUT /infrastructures`), described in `docs/api.md` §2.5 and §2.8.
//!
//! Export turns an infrastructure's read view into IM's serialized
//! `InfrastructureInfo`; import checks such a document completely and turns it into
//! the [`ImportedInfrastructure`] an `Imported` event records. Both are pure.
//!
//! Secrets: IM puts every owner's IM credentials (password or token included) in
//! `auth`. infralog keeps no password, and would not export one if it did: each
//! owner appears with its username and an empty `password` (and an empty `token`
//! for token users), so the document keeps IM's shape and IM can read it (IM
//! replaces `auth` with the importer's credentials anyway). The VMs' own
//! credentials inside their RADL are part of the infrastructure and travel with it.

use std::collections::BTreeMap;
use std::io;

use chrono::{DateTime, Utc};
use infralog_events::domain::infrastructure::{
    ImportedInfrastructure, ImportedVm, ImportedVmStatus,
};
use infralog_events::domain::{CloudRef, InfId, Status};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::projections::{CloudState, InfrastructureView, VmView};
use crate::radl;

/// IM's type name for its own credentials.
const IM_AUTH_TYPE: &str = "InfrastructureManager";

/// The serialized infrastructure, keys in IM's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedInfrastructure {
    /// The infrastructure's id (a UUID), which an import keeps.
    pub id: String,
    /// The VMs, in VM-number order, removed ones included.
    pub vm_list: Vec<ExportedVm>,
    /// The owners, one IM credential each, without secrets.
    pub auth: Vec<ExportedOwner>,
    /// The infrastructure's RADL document as text.
    pub radl: String,
    /// IM's private networks: each private network of the RADL and the id of the cloud
    /// it lives in.
    pub private_networks: BTreeMap<String, String>,
    /// IM's counter of system names; always 0 (infralog does not use it).
    pub system_counter: u32,
    /// Whether IM marked the infrastructure destroyed; always `false` (a destroyed
    /// infrastructure is not exported).
    pub deleted: bool,
    /// IM's contextualization master VM; always `None` (infralog runs none).
    pub vm_master: Option<u32>,
    /// IM's "next VM id available", which IM never uses; always 0.
    pub vm_id: u32,
    /// The contextualization log of the infrastructure (IM's `contmsg`).
    pub cont_out: String,
    /// Whether IM installed Ansible on the master VM; always `None`.
    pub ansible_configured: Option<bool>,
    /// Whether the contextualization ended well; `None` while it has not ended.
    pub configured: Option<bool>,
    /// Extra data; holds the TOSCA template under `TOSCA` when the infrastructure was
    /// created from one, and is empty otherwise.
    pub extra_info: Map<String, Value>,
    /// The URLs of the snapshots that are deleted with the infrastructure.
    pub snapshots: Vec<String>,
    /// When the infrastructure was created, in seconds since the Unix epoch.
    pub creation_date: i64,
    /// IM's `deserialize` (its import) sets `cloud_connector = None` on the object,
    /// after every other key, so the export of an imported infrastructure ends
    /// with `"cloud_connector": null`; one created there has no such key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_connector: Option<Null>,
}

/// Python's `None`: serialized as JSON `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Null;

/// An owner without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedOwner {
    /// The credential's id; always `im`.
    pub id: &'static str,
    /// The credential's type; always `InfrastructureManager`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The owner's IM username.
    pub username: String,
    /// Always empty: passwords are never stored nor exported.
    pub password: &'static str,
    /// Always empty, and only for token users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'static str>,
    /// Whether the owner is IM's administrator; always `false`.
    pub admin: bool,
}

/// One VM as IM serializes its `VirtualMachine`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedVm {
    /// When the VM was last updated, in seconds since the Unix epoch: the time of the
    /// export.
    pub last_update: i64,
    /// Whether the VM has been removed (it stays in the list, numbers are not reused).
    pub destroy: bool,
    /// IM's state name of the VM (`pending`, `running`, `configured`, `failed`, ...).
    pub state: &'static str,
    /// The cloud's id of the VM; `None` before the cloud gave it one.
    pub id: Option<String>,
    /// The VM's number in the infrastructure, from 0.
    pub im_id: u32,
    /// The number the VM was created with; the same as `im_id` here.
    pub creation_im_id: u32,
    /// The cloud the VM runs in.
    pub cloud: ExportedCloud,
    /// The VM's whole RADL document as text, as IM's `info` holds it.
    pub info: String,
    /// The RADL the VM was requested with, reduced to its own system.
    pub requested_radl: String,
    /// IM's per-VM contextualization log; always empty (the log is the
    /// infrastructure's `cont_out`).
    pub cont_out: String,
    /// Whether the VM's contextualization ended well; `None` while it has not ended.
    pub configured: Option<bool>,
    /// IM's contextualization process id; always `None`.
    pub ctxt_pid: Option<String>,
    /// IM's count of failed SSH connections; always 0.
    pub ssh_connect_errors: u32,
    /// Whether the VM is still being launched (state `pending`).
    pub creating: bool,
    /// Why the launch failed; `None` unless the VM failed.
    pub error_msg: Option<String>,
    /// Whether the cloud is removing the VM right now.
    pub deleting: bool,
    /// When the VM was created, in seconds since the Unix epoch.
    pub creation_date: i64,
}

/// IM's `CloudInfo`: the credential's id and type, and its `host` split up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportedCloud {
    /// The id of the credential the VM was launched with.
    pub id: String,
    /// The cloud's type (`OpenStack`, `Dummy`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The host name or address of the cloud's endpoint; empty when it has none.
    pub server: String,
    /// The endpoint's port; -1 when the host names none.
    pub port: i64,
    /// The endpoint's protocol (`https`, ...); empty when the host names none.
    pub protocol: String,
    /// The endpoint's path, from its `/`; empty when the host has none.
    pub path: String,
    /// IM's extra cloud data; always empty.
    pub extra: Map<String, Value>,
}

impl ExportedCloud {
    /// Splits `[protocol://]server[:port][/path]` as IM's `CloudInfo` does.
    pub fn from_ref(cloud: &CloudRef) -> Self {
        let (protocol, rest) = match cloud.host.split_once("://") {
            Some((protocol, rest)) => (protocol.to_string(), rest),
            None => (String::new(), cloud.host.as_str()),
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].to_string()),
            None => (rest, String::new()),
        };
        let (server, port) = match authority.rsplit_once(':') {
            Some((server, port)) if port.parse::<i64>().is_ok() => {
                (server.to_string(), port.parse().unwrap_or(-1))
            }
            _ => (authority.to_string(), -1),
        };
        ExportedCloud {
            id: cloud.id.clone(),
            kind: cloud.kind.clone(),
            server,
            port,
            protocol,
            path,
            extra: Map::new(),
        }
    }
}

/// The `host` of a cloud rebuilt from IM's parts (the inverse of
/// [`ExportedCloud::from_ref`]).
fn host_of(server: &str, port: i64, protocol: &str, path: &str) -> String {
    if server.is_empty() {
        return String::new();
    }
    let mut host = String::new();
    if !protocol.is_empty() {
        host.push_str(protocol);
        host.push_str("://");
    }
    host.push_str(server);
    if port >= 0 {
        host.push_str(&format!(":{port}"));
    }
    host.push_str(path);
    host
}

/// The export of `view`. `vm_info` renders a VM's whole RADL document (IM's
/// `info`); `now` stamps `last_update`.
pub fn export(
    view: &InfrastructureView,
    vm_info: impl Fn(&VmView) -> Option<String>,
    now: DateTime<Utc>,
) -> ExportedInfrastructure {
    let vm_list: Vec<ExportedVm> = view
        .vms
        .iter()
        .map(|vm| export_vm(view, vm, &vm_info, now))
        .collect();
    let mut extra_info = Map::new();
    if let Some(tosca) = &view.tosca {
        extra_info.insert("TOSCA".into(), Value::String(tosca.to_string()));
    }
    ExportedInfrastructure {
        id: view.id.to_string(),
        vm_list,
        auth: view
            .owners
            .iter()
            .map(|owner| ExportedOwner {
                id: "im",
                kind: IM_AUTH_TYPE,
                username: owner.username.clone(),
                password: "",
                token: owner.via_token.then_some(""),
                admin: false,
            })
            .collect(),
        radl: view.radl.to_string(),
        private_networks: private_networks(view),
        system_counter: 0,
        deleted: false,
        vm_master: None,
        // IM declares it ("next vm id available") but never uses it.
        vm_id: 0,
        cont_out: view.contmsg.render(),
        ansible_configured: None,
        configured: view.configured,
        extra_info,
        snapshots: view
            .auto_delete_snapshots
            .iter()
            .map(|url| url.to_string())
            .collect(),
        creation_date: view.created_at.timestamp(),
        cloud_connector: view.imported.then_some(Null),
    }
}

fn export_vm(
    view: &InfrastructureView,
    vm: &VmView,
    vm_info: &impl Fn(&VmView) -> Option<String>,
    now: DateTime<Utc>,
) -> ExportedVm {
    let status = vm.status(view.configured);
    let error_msg = match &vm.cloud_state {
        CloudState::Failed(message) => Some(message.to_string()),
        _ => None,
    };
    ExportedVm {
        last_update: now.timestamp(),
        destroy: !vm.is_live(),
        state: status.as_str(),
        id: vm.cloud_vm_id.as_deref().map(str::to_string),
        im_id: vm.id.0,
        creation_im_id: vm.id.0,
        cloud: ExportedCloud::from_ref(&vm.cloud),
        info: vm_info(vm).unwrap_or_else(|| {
            vm.imported_info
                .as_deref()
                .unwrap_or(&vm.launch_radl)
                .into()
        }),
        requested_radl: requested_radl(vm),
        cont_out: String::new(),
        configured: vm.configured,
        ctxt_pid: None,
        ssh_connect_errors: 0,
        creating: status == Status::Pending,
        error_msg,
        deleting: vm.cloud_state == CloudState::Removing,
        creation_date: vm.created_at.timestamp(),
    }
}

/// IM's `requested_radl` of a VM: the request it was made of, with only its system.
fn requested_radl(vm: &VmView) -> String {
    radl::parse(&vm.launch_radl)
        .ok()
        .and_then(|request| radl::merge::vm_radl(&request, &vm.system))
        .map(|document| document.to_text())
        .unwrap_or_else(|| vm.launch_radl.to_string())
}

/// IM's `private_networks`: each private network of the RADL and the cloud of the
/// VMs connected to it (the first VM's cloud when none is connected).
fn private_networks(view: &InfrastructureView) -> BTreeMap<String, String> {
    let Ok(document) = radl::parse(&view.radl) else {
        return BTreeMap::new();
    };
    let Some(first_cloud) = view.vms.first().map(|vm| vm.cloud.id.clone()) else {
        return BTreeMap::new();
    };
    document
        .networks
        .iter()
        .filter(|network| !network.is_public())
        .map(|network| (network.id.clone(), first_cloud.clone()))
        .collect()
}

/// The JSON text of an export as Python's `json.dumps` writes it: `", "` and `": "`
/// separators and every non-ASCII character escaped.
pub fn to_python_json(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing plain data into memory cannot fail.
    if value.serialize(&mut serializer).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (index, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..index])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = index + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Why an import document was refused. The texts follow IM's (a missing key is
/// its Python `KeyError`, `'vm_list'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The body is not UTF-8 JSON; the inner text is the parser's complaint, in
    /// Python's words where Python also refuses it.
    #[error("{0}")]
    Json(String),
    /// What IM says when the body is a JSON string (what `im_client export` prints).
    #[error("string indices must be integers, not 'str'")]
    NotAnObject,
    /// A key IM requires is missing; the inner text is the key.
    #[error("'{0}'")]
    MissingKey(String),
    /// A value has the wrong JSON type.
    #[error("{key} must be {expected}")]
    WrongType {
        /// Where the value is: a key, a path such as `vm_list[2]`, or `the document`.
        key: String,
        /// What it must be (`a string`, `a list`, ...).
        expected: &'static str,
    },
    /// The `id` is not a UUID; the inner text is that id.
    #[error("the id {0:?} is not an infrastructure id (a UUID)")]
    BadId(String),
    /// The document is marked `deleted`.
    #[error("the infrastructure is marked deleted")]
    Deleted,
    /// The VMs' `im_id` values are not 0, 1, 2, ... in list order.
    #[error("VM im_id values must be 0, 1, 2… in order; found {found} at position {position}")]
    VmIds {
        /// The VM's place in `vm_list`, from 0.
        position: usize,
        /// The `im_id` found there.
        found: i64,
    },
    /// A RADL of the document does not parse.
    #[error("{what} is not valid RADL: {reason}")]
    Radl {
        /// Which RADL: the infrastructure's, or the info or request of a VM.
        what: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A VM's RADL holds no system.
    #[error("VM {vm}: its RADL has no system")]
    NoSystem {
        /// The VM's place in `vm_list`, from 0.
        vm: usize,
    },
    /// A VM has no cloud id but is neither failed nor destroyed, so no cloud holds it.
    #[error("VM {vm} has no cloud id (id) yet is neither failed nor destroyed")]
    NoCloudId {
        /// The VM's place in `vm_list`, from 0.
        vm: usize,
    },
}

/// A checked import document: the id it keeps and what the `Imported` event
/// records (owners are the importer's, set by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDocument {
    /// The infrastructure's id, kept from the document.
    pub id: InfId,
    /// What the `Imported` event records, owners not yet set.
    pub infrastructure: ImportedInfrastructure,
}

/// Checks an import body completely. `now` dates documents without
/// `creation_date`.
pub fn parse_import(body: &[u8], now: DateTime<Utc>) -> Result<ImportDocument, ImportError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ImportError::Json(format!("the body is not UTF-8: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // Python's wording where its reader also refuses the text.
        match radl::pyjson::parse(text) {
            Err(python) => ImportError::Json(python.to_string()),
            Ok(_) => ImportError::Json(e.to_string()),
        }
    })?;
    let object = match &value {
        Value::Object(object) => object,
        Value::String(_) => return Err(ImportError::NotAnObject),
        _ => {
            return Err(ImportError::WrongType {
                key: "the document".into(),
                expected: "a JSON object",
            })
        }
    };
    let vm_list = required(object, "vm_list")?;
    required(object, "vm_master")?;
    required(object, "auth")?;
    let radl_text = string("radl", required(object, "radl")?)?;
    let id_text = match object.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(_) => return Err(wrong("id", "a string")),
        None => return Err(ImportError::MissingKey("id".into())),
    };
    let id: InfId = id_text.parse().map_err(|_| ImportError::BadId(id_text))?;
    if object.get("deleted").and_then(Value::as_bool) == Some(true) {
        return Err(ImportError::Deleted);
    }
    check_radl("the infrastructure's radl", &radl_text)?;
    let Value::Array(vm_values) = vm_list else {
        return Err(wrong("vm_list", "a list"));
    };
    let mut vms = Vec::with_capacity(vm_values.len());
    for (position, vm) in vm_values.iter().enumerate() {
        vms.push(import_vm(position, vm, now)?);
    }
    let tosca = match object
        .get("extra_info")
        .and_then(|extra| extra.get("TOSCA"))
    {
        None | Some(Value::Null) => None,
        Some(Value::String(tosca)) => Some(tosca.clone()),
        Some(_) => return Err(wrong("extra_info.TOSCA", "a string")),
    };
    let auto_delete_snapshots = match object.get("snapshots") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong("snapshots", "a list of strings"))?,
        Some(_) => return Err(wrong("snapshots", "a list of strings")),
    };
    Ok(ImportDocument {
        id,
        infrastructure: ImportedInfrastructure {
            owners: Vec::new(),
            tosca,
            radl: radl_text,
            vms,
            configured: optional_bool(object, "configured")?,
            contmsg: optional_string(object, "cont_out")?.unwrap_or_default(),
            auto_delete_snapshots,
            created_at_s: optional_int(object, "creation_date")?.unwrap_or(now.timestamp()),
        },
    })
}

fn import_vm(
    position: usize,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<ImportedVm, ImportError> {
    let Value::Object(vm) = value else {
        return Err(wrong(&format!("vm_list[{position}]"), "an object"));
    };
    // IM reads the keys in this order, so a document missing several names the
    // same one.
    let cloud = match required(vm, "cloud")? {
        Value::Object(cloud) => cloud,
        _ => return Err(wrong("cloud", "an object")),
    };
    let info = string("info", required(vm, "info")?)?;
    let requested_radl = string("requested_radl", required(vm, "requested_radl")?)?;
    let im_id = required(vm, "im_id")?;
    let found = im_id.as_i64().ok_or_else(|| wrong("im_id", "an integer"))?;
    if found != position as i64 {
        return Err(ImportError::VmIds { position, found });
    }
    let document = check_radl(&format!("the info of VM {position}"), &info)?;
    check_radl(
        &format!("the requested_radl of VM {position}"),
        &requested_radl,
    )?;
    let system = document
        .systems
        .first()
        .map(|system| system.name.clone())
        .ok_or(ImportError::NoSystem { vm: position })?;
    let cloud_text = |key: &str| -> Result<String, ImportError> {
        Ok(optional_string(cloud, key)?.unwrap_or_default())
    };
    let cloud = CloudRef {
        id: cloud_text("id")?,
        kind: cloud_text("type")?,
        host: host_of(
            &cloud_text("server")?,
            optional_int(cloud, "port")?.unwrap_or(-1),
            &cloud_text("protocol")?,
            &cloud_text("path")?,
        ),
    };
    let cloud_vm_id = match vm.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(Value::Number(id)) => Some(id.to_string()),
        Some(_) => return Err(wrong("id", "a string")),
    };
    let destroyed = optional_bool(vm, "destroy")?.unwrap_or(false);
    let state = optional_string(vm, "state")?.unwrap_or_default();
    let status = if destroyed {
        ImportedVmStatus::Destroyed
    } else {
        match state.as_str() {
            "failed" => ImportedVmStatus::Failed {
                message: optional_string(vm, "error_msg")?.unwrap_or_default(),
            },
            "stopped" | "off" => ImportedVmStatus::Stopped,
            _ => ImportedVmStatus::Running,
        }
    };
    let needs_cloud_id = matches!(
        status,
        ImportedVmStatus::Running | ImportedVmStatus::Stopped
    );
    if needs_cloud_id && cloud_vm_id.is_none() {
        return Err(ImportError::NoCloudId { vm: position });
    }
    Ok(ImportedVm {
        system,
        cloud,
        requested_radl,
        info_radl: info,
        cloud_vm_id,
        status,
        // IM loads a VM whose flag is null as not configured.
        configured: Some(optional_bool(vm, "configured")?.unwrap_or(false)),
        created_at_s: optional_int(vm, "creation_date")?.unwrap_or(now.timestamp()),
    })
}

fn wrong(key: &str, expected: &'static str) -> ImportError {
    ImportError::WrongType {
        key: key.to_string(),
        expected,
    }
}

fn required<'v>(object: &'v Map<String, Value>, key: &str) -> Result<&'v Value, ImportError> {
    object
        .get(key)
        .ok_or_else(|| ImportError::MissingKey(key.to_string()))
}

fn string(key: &str, value: &Value) -> Result<String, ImportError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| wrong(key, "a string"))
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, ImportError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(wrong(key, "a string")),
    }
}

fn optional_bool(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, ImportError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(_) => Err(wrong(key, "true, false or null")),
    }
}

fn optional_int(object: &Map<String, Value>, key: &str) -> Result<Option<i64>, ImportError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        // IM writes epoch seconds as integers; a float is truncated as Python's int() does.
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| wrong(key, "an integer")),
        Some(_) => Err(wrong(key, "an integer")),
    }
}

fn check_radl(what: &str, text: &str) -> Result<radl::Radl, ImportError> {
    radl::parse(text).map_err(|e| ImportError::Radl {
        what: what.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
#[path = "im_tests.rs"]
mod tests;
