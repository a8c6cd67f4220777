//! IM's `/stats` rows, computed from the read model.
//!
//! One row per infrastructure the caller owns, destroyed and evicted ones included,
//! with the fields of IM's `Stats._get_data`: creation date, TOSCA name, VM count,
//! summed `cpu.count` and `memory.size` (in M) of every VM's RADL, the first VM's
//! cloud, whether VMs span several cloud hosts, and the first owner's username.
//!
//! Handlers copy a [`StatsInput`] per infrastructure under the read lock (cheap:
//! shared strings) and compute the rows afterwards, off the lock, parsing each
//! distinct launch RADL text once.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, Utc};
use infralog_events::domain::{CloudRef, FactValue, FeatureFact, InfId};
use yaml_rust2::{Yaml, YamlLoader};

use super::views::{CloudState, InfrastructureView, Lifecycle};
use crate::radl::{self, Number, Radl};

/// The part of a VM the statistics need.
#[derive(Debug, Clone)]
pub struct VmStatsInput {
    /// The name of the RADL `system` the VM was launched from.
    pub system: Box<str>,
    /// The RADL the VM was requested with, where its `cpu.count` and `memory.size`
    /// are read.
    pub launch_radl: Arc<str>,
    /// The cloud credential the VM runs on (its type and host make the row's cloud).
    pub cloud: Arc<CloudRef>,
    /// What the cloud and later alterations set on the system, in order; they
    /// override the request.
    pub facts: Vec<Arc<[FeatureFact]>>,
}

/// The part of an infrastructure the statistics need.
#[derive(Debug, Clone)]
pub struct StatsInput {
    /// The infrastructure's id.
    pub id: InfId,
    /// When it was created: the window selects on it.
    pub created_at: DateTime<Utc>,
    /// When its last event was recorded (the row's `last_date`).
    pub updated_at: DateTime<Utc>,
    /// Its TOSCA template, where the row's TOSCA name is read; `None` for RADL only.
    pub tosca: Option<Arc<str>>,
    /// Whether it is destroyed or evicted.
    pub deleted: bool,
    /// The username of its first owner; `None` when it has no owner.
    pub first_owner: Option<String>,
    /// Its VMs that joined IM's VM list (failed launches left out), in id order.
    pub vms: Vec<VmStatsInput>,
}

impl StatsInput {
    /// Copies what the statistics need from an infrastructure's view.
    pub fn from_view(view: &InfrastructureView) -> Self {
        StatsInput {
            id: view.id,
            created_at: view.created_at,
            updated_at: view.updated_at,
            tosca: view.tosca.clone(),
            deleted: matches!(view.lifecycle, Lifecycle::Destroyed | Lifecycle::Evicted),
            first_owner: view.owners.first().map(|o| o.username.clone()),
            // A VM whose launch failed never joined IM's VM list.
            vms: view
                .vms
                .iter()
                .filter(|vm| !matches!(vm.cloud_state, CloudState::Failed(_)))
                .map(|vm| VmStatsInput {
                    system: vm.system.clone(),
                    launch_radl: Arc::clone(&vm.launch_radl),
                    cloud: Arc::clone(&vm.cloud),
                    facts: vm.facts.clone(),
                })
                .collect(),
        }
    }
}

/// The creation-date window of a statistics request. IM compares local creation
/// times with midnight (local) of `init_date` and `end_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsWindow {
    /// The earliest local creation time accepted (midnight of `init_date`); `None`
    /// accepts any.
    pub init: Option<NaiveDateTime>,
    /// The latest local creation time accepted (midnight of `end_date`, so the end
    /// day itself is left out); `None` accepts any.
    pub end: Option<NaiveDateTime>,
    /// IM accepts some dates it then fails to read for every row (`2024-01-01x`
    /// passes its validation but not `strptime`): no row matches.
    pub matches_nothing: bool,
}

impl Default for StatsWindow {
    fn default() -> Self {
        StatsWindow {
            init: NaiveDate::from_ymd_opt(1970, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)),
            end: None,
            matches_nothing: false,
        }
    }
}

impl StatsWindow {
    /// Whether an infrastructure created at this local time is reported.
    pub fn contains(&self, created_local: NaiveDateTime) -> bool {
        if self.matches_nothing {
            return false;
        }
        self.init.is_none_or(|init| created_local >= init)
            && self.end.is_none_or(|end| created_local <= end)
    }
}

/// One row of `/stats`, fields in IM's order.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    /// The local creation time, `YYYY-MM-DD HH:MM:SS`.
    pub creation_date: String,
    /// The TOSCA template's name (see [`tosca_name`]); empty without TOSCA.
    pub tosca_name: String,
    /// How many VMs joined IM's VM list, destroyed ones included.
    pub vm_count: u64,
    /// The summed `cpu.count` of those VMs (an int unless a value was a float).
    pub cpu_count: Number,
    /// The summed `memory.size` of those VMs, in M.
    pub memory_size: Number,
    /// The first VM's cloud type (`OpenStack`, `Dummy`...); empty without VMs.
    pub cloud_type: String,
    /// The first VM's cloud host name (see [`cloud_server`]); empty without VMs.
    pub cloud_host: String,
    /// Whether the VMs span several cloud hosts.
    pub hybrid: bool,
    /// Whether the infrastructure is destroyed or evicted.
    pub deleted: bool,
    /// The first owner's username; `None` when it has no owner.
    pub im_user: Option<String>,
    /// The infrastructure's id.
    pub inf_id: String,
    /// The UTC day of its last event, `YYYY-MM-DD 00:00:00` (as IM writes it).
    pub last_date: String,
}

/// Python's `a + b` between the numbers IM sums (ints stay ints).
fn add(a: &Number, b: &Number) -> Number {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) if x.checked_add(y).is_some() => Number::Int(x + y),
        _ => Number::Float(a.to_f64().unwrap_or(f64::NAN) + b.to_f64().unwrap_or(f64::NAN)),
    }
}

/// IM's cloud `server`: the host name of the credential's `host` URL.
pub fn cloud_server(host: &str) -> &str {
    let without_scheme = host.split_once("://").map_or(host, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or("");
    match authority.rsplit_once(':') {
        Some((server, port)) if port.bytes().all(|b| b.is_ascii_digit()) => server,
        _ => authority,
    }
}

/// IM's TOSCA name: `metadata.template_name`, else the icon's file name without
/// its four-character extension, else empty.
pub fn tosca_name(tosca: &str) -> String {
    let Ok(documents) = YamlLoader::load_from_str(tosca) else {
        return String::new();
    };
    let Some(metadata) = documents.first().map(|doc| &doc["metadata"]) else {
        return String::new();
    };
    if let Yaml::String(name) = &metadata["template_name"] {
        return name.clone();
    }
    match &metadata["icon"] {
        Yaml::String(icon) => {
            let base = icon.rsplit('/').next().unwrap_or("");
            let keep = base.chars().count().saturating_sub(4);
            base.chars().take(keep).collect()
        }
        _ => String::new(),
    }
}

/// The `cpu.count` and `memory.size` (in M) of a VM's system: what the request
/// asked, then what the cloud and alterations set. `None` where unset or not a number.
fn vm_resources(
    system: Option<&radl::System>,
    facts: &[Arc<[FeatureFact]>],
) -> [Option<Number>; 2] {
    let from_feature = |prop: &str, unit: &str| {
        let feature = system?.features.feature(prop)?;
        match &feature.value {
            radl::Value::Num(number) => number.convert(&feature.unit, unit).ok(),
            _ => None,
        }
    };
    let mut cpus = from_feature("cpu.count", "");
    let mut memory = from_feature("memory.size", "M");
    for fact in facts.iter().flat_map(|list| list.iter()) {
        let FactValue::Number { literal, unit } = &fact.value else {
            continue;
        };
        let number = literal
            .parse::<i64>()
            .map(Number::Int)
            .ok()
            .or_else(|| literal.parse::<f64>().ok().map(Number::Float));
        match fact.name.as_str() {
            "cpu.count" => cpus = number.and_then(|n| n.convert(unit, "").ok()),
            "memory.size" => memory = number.and_then(|n| n.convert(unit, "M").ok()),
            _ => {}
        }
    }
    [cpus, memory]
}

/// The rows for `inputs` inside `window`, in the order given.
pub fn stats_rows(inputs: &[StatsInput], window: &StatsWindow) -> Vec<StatsRow> {
    // Infrastructures made from one template share their RADL text: parse each
    // distinct text once.
    let mut parsed: HashMap<&str, Option<Radl>> = HashMap::new();
    let mut rows = Vec::with_capacity(inputs.len());
    for input in inputs {
        let created_local = input.created_at.with_timezone(&Local).naive_local();
        if !window.contains(created_local) {
            continue;
        }
        let mut row = StatsRow {
            creation_date: created_local.format("%Y-%m-%d %H:%M:%S").to_string(),
            tosca_name: input.tosca.as_deref().map(tosca_name).unwrap_or_default(),
            vm_count: 0,
            cpu_count: Number::Int(0),
            memory_size: Number::Int(0),
            cloud_type: String::new(),
            cloud_host: String::new(),
            hybrid: false,
            deleted: input.deleted,
            im_user: input.first_owner.clone(),
            inf_id: input.id.to_string(),
            last_date: input.updated_at.format("%Y-%m-%d 00:00:00").to_string(),
        };
        for vm in &input.vms {
            let server = cloud_server(&vm.cloud.host);
            if row.cloud_type.is_empty() {
                row.cloud_type = vm.cloud.kind.clone();
            }
            if row.cloud_host.is_empty() {
                row.cloud_host = server.to_string();
            } else if row.cloud_host != server {
                row.hybrid = true;
            }
            let document = parsed
                .entry(&*vm.launch_radl)
                .or_insert_with(|| radl::parse(&vm.launch_radl).ok());
            let system = document.as_ref().and_then(|doc| doc.system(&vm.system));
            let [cpus, memory] = vm_resources(system, &vm.facts);
            if let Some(cpus) = cpus.filter(Number::is_truthy) {
                row.cpu_count = add(&row.cpu_count, &cpus);
            }
            if let Some(memory) = memory.filter(Number::is_truthy) {
                row.memory_size = add(&row.memory_size, &memory);
            }
            row.vm_count += 1;
        }
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn dummy_cloud(host: &str) -> Arc<CloudRef> {
        Arc::new(CloudRef {
            id: "dummy".into(),
            kind: "Dummy".into(),
            host: host.into(),
        })
    }

    fn vm(radl: &Arc<str>, system: &str, host: &str) -> VmStatsInput {
        VmStatsInput {
            system: system.into(),
            launch_radl: Arc::clone(radl),
            cloud: dummy_cloud(host),
            facts: Vec::new(),
        }
    }

    fn input(vms: Vec<VmStatsInput>) -> StatsInput {
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap();
        StatsInput {
            id: "a8a4f0a2-0000-11ef-8000-000000000001"
                .parse()
                .expect("an id"),
            created_at: at,
            updated_at: at,
            tosca: None,
            deleted: false,
            first_owner: Some("user1".into()),
            vms,
        }
    }

    const FRONT_WN: &str = "network net ( outbound = 'yes' )\n\
        system front ( cpu.count >= 2 and memory.size >= 1g )\n\
        system wn ( cpu.count = 1 and memory.size >= 512m )\n\
        deploy front 1\ndeploy wn 2";

    #[test]
    fn resources_are_summed_over_every_vm_in_megabytes() {
        let radl: Arc<str> = Arc::from(FRONT_WN);
        let rows = stats_rows(
            &[input(vec![
                vm(&radl, "front", ""),
                vm(&radl, "wn", ""),
                vm(&radl, "wn", ""),
            ])],
            &StatsWindow::default(),
        );
        let row = &rows[0];
        assert_eq!(row.vm_count, 3);
        assert_eq!(row.cpu_count, Number::Int(4));
        assert_eq!(row.memory_size, Number::Int(2024));
        assert_eq!(row.cloud_type, "Dummy");
        assert_eq!(row.cloud_host, "");
        assert!(!row.hybrid);
        assert_eq!(row.im_user.as_deref(), Some("user1"));
        assert_eq!(row.last_date, "2026-03-04 00:00:00");
    }

    #[test]
    fn alterations_replace_what_was_requested() {
        let radl: Arc<str> = Arc::from(FRONT_WN);
        let mut altered = vm(&radl, "front", "");
        altered.facts = vec![Arc::from(vec![
            FeatureFact::text("provider.type", "Dummy"),
            FeatureFact {
                name: "memory.size".into(),
                comparison: None,
                value: FactValue::Number {
                    literal: "4096".into(),
                    unit: "M".into(),
                },
            },
            FeatureFact {
                name: "cpu.count".into(),
                comparison: None,
                value: FactValue::Number {
                    literal: "8".into(),
                    unit: String::new(),
                },
            },
        ])];
        let rows = stats_rows(&[input(vec![altered])], &StatsWindow::default());
        assert_eq!(rows[0].cpu_count, Number::Int(8));
        assert_eq!(rows[0].memory_size, Number::Int(4096));
    }

    #[test]
    fn vms_on_different_hosts_make_it_hybrid() {
        let radl: Arc<str> = Arc::from(FRONT_WN);
        let rows = stats_rows(
            &[input(vec![
                vm(&radl, "front", "https://one.example.org:5000/v3"),
                vm(&radl, "wn", "two.example.org"),
            ])],
            &StatsWindow::default(),
        );
        assert_eq!(rows[0].cloud_host, "one.example.org");
        assert!(rows[0].hybrid);
    }

    #[test]
    fn the_window_is_inclusive_from_local_midnight() {
        let day = |d| {
            NaiveDate::from_ymd_opt(2026, 3, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a date")
        };
        let created = day(4) + chrono::Duration::hours(10);
        let window = |init, end| StatsWindow {
            init,
            end,
            matches_nothing: false,
        };
        assert!(window(Some(day(4)), None).contains(created));
        assert!(!window(Some(day(5)), None).contains(created));
        assert!(window(None, Some(day(5))).contains(created));
        // IM's end bound is midnight: the end day itself is excluded.
        assert!(!window(None, Some(day(4))).contains(created));
        let nothing = StatsWindow {
            matches_nothing: true,
            ..StatsWindow::default()
        };
        assert!(!nothing.contains(created));
    }

    #[test]
    fn tosca_names_come_from_the_template_name_or_the_icon() {
        assert_eq!(
            tosca_name("metadata:\n  template_name: Kubernetes\n  icon: images/k8s.png\n"),
            "Kubernetes"
        );
        assert_eq!(tosca_name("metadata:\n  icon: images/k8s.png\n"), "k8s");
        assert_eq!(tosca_name("tosca_definitions_version: x\n"), "");
        assert_eq!(tosca_name(": : :"), "");
    }

    #[test]
    fn cloud_servers_drop_scheme_port_and_path() {
        assert_eq!(cloud_server("https://h.example:5000/v3"), "h.example");
        assert_eq!(cloud_server("h.example"), "h.example");
        assert_eq!(cloud_server(""), "");
    }
}
