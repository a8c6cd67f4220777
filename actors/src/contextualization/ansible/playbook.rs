//! The playbooks of a run, as IM's `ConfManager` writes them: the `configure` recipes
//! merged under IM's play header (`merge_recipes`), run in IM's step order, after the
//! `main` playbook of each system that puts the infrastructure's `/etc/hosts` in place.

use std::cmp::Ordering;

use infralog_radl::{Number, Radl};
use infralog_tosca::yaml::{self, Node as Yaml};

/// One `system X configure Y step N` item, as IM orders them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepItem {
    /// The step (0 when not written).
    pub step: Number,
    /// The system whose VMs run it.
    pub system: String,
    /// The `configure` recipe.
    pub configure: String,
}

/// IM's `get_contextualize_items_by_step({1: defaults})` flattened in run order: the
/// `contextualize` items that use Ansible, by ascending step (document order within a
/// step); without items, each system with VMs runs the `configure` named like it at
/// step 1. Items of systems without VMs are left out.
pub(crate) fn step_items(radl: &Radl, systems_with_vms: &[&str]) -> Vec<StepItem> {
    let items = radl
        .contextualize
        .items
        .as_ref()
        .filter(|items| !items.is_empty());
    let mut steps: Vec<StepItem> = match items {
        Some(items) => items
            .values()
            .filter(|item| item.tool.as_deref().is_none_or(|tool| tool == "Ansible"))
            .map(|item| StepItem {
                step: item.step.clone(),
                system: item.system.clone(),
                configure: item.configure.clone(),
            })
            .collect(),
        None => systems_with_vms
            .iter()
            .filter(|system| radl.configure(system).is_some())
            .map(|system| StepItem {
                step: Number::from(1),
                system: (*system).to_owned(),
                configure: (*system).to_owned(),
            })
            .collect(),
    };
    steps.retain(|item| systems_with_vms.contains(&item.system.as_str()));
    // A stable sort keeps the document order within a step.
    steps.sort_by(|a, b| a.step.py_cmp(&b.step).unwrap_or(Ordering::Equal));
    steps
}

/// IM's `add_ansible_header`: the play every recipe play is merged into, aimed at
/// `hosts` (IM aims it at one VM through `IM_HOST`; one run here covers them all).
pub(crate) fn header(hosts: &str, windows: bool, gather_facts: bool) -> Yaml {
    let mut pairs = vec![(Yaml::Str("hosts".into()), Yaml::Str(hosts.to_owned()))];
    if !gather_facts {
        pairs.push((Yaml::Str("gather_facts".into()), Yaml::Bool(false)));
    }
    if !windows {
        pairs.push((Yaml::Str("become".into()), Yaml::Bool(true)));
    }
    Yaml::Map(pairs)
}

/// Python's truth value of a loaded YAML node.
fn truthy(node: &Yaml) -> bool {
    match node {
        Yaml::Null => false,
        Yaml::Bool(b) => *b,
        Yaml::Int(i) => *i != 0,
        Yaml::Float(f) => *f != 0.0,
        Yaml::Str(s) | Yaml::Timestamp(s) => !s.is_empty(),
        Yaml::Seq(items) => !items.is_empty(),
        Yaml::Map(pairs) => !pairs.is_empty(),
    }
}

/// IM's `merge_recipes(header, recipe)`: each play of the recipe (a list of mappings;
/// anything else counts as no play) merged with the header: mappings are updated,
/// lists extended, two other values become a list of both, and a key only the play sets
/// is taken from it. `None` when there is no play. Written as `safe_dump` writes it.
pub(crate) fn merge_recipes(header: &Yaml, recipe: &str) -> Result<Option<String>, String> {
    let plays = yaml::load(recipe).map_err(|e| format!("Error parsing YAML: {e}"))?;
    let plays = match plays {
        Yaml::Seq(items) if items.iter().all(|i| matches!(i, Yaml::Map(_))) => items,
        _ => Vec::new(),
    };
    if plays.is_empty() {
        return Ok(None);
    }
    let merged: Vec<Yaml> = plays
        .into_iter()
        .map(|play| {
            let mut result = header.pairs().to_vec();
            for (key, value) in play.pairs() {
                let mine = result.iter_mut().find(|(k, _)| k == key);
                match mine {
                    Some((_, current)) if truthy(current) => {
                        if truthy(value) {
                            merge_value(current, value);
                        }
                    }
                    Some((_, current)) => {
                        if truthy(value) {
                            *current = value.clone();
                        }
                    }
                    None => {
                        if truthy(value) {
                            result.push((key.clone(), value.clone()));
                        }
                    }
                }
            }
            Yaml::Map(result)
        })
        .collect();
    Ok(Some(format!("---\n{}", yaml::dump(&Yaml::Seq(merged)))))
}

fn merge_value(current: &mut Yaml, value: &Yaml) {
    match (current, value) {
        (Yaml::Map(mine), Yaml::Map(theirs)) => {
            for (key, value) in theirs {
                match mine.iter_mut().find(|(k, _)| k == key) {
                    Some((_, slot)) => *slot = value.clone(),
                    None => mine.push((key.clone(), value.clone())),
                }
            }
        }
        (Yaml::Seq(mine), Yaml::Seq(theirs)) => mine.extend(theirs.iter().cloned()),
        (current, value) => {
            let before = std::mem::replace(current, Yaml::Null);
            *current = Yaml::Seq(vec![before, value.clone()]);
        }
    }
}

fn task(pairs: &[(&str, Yaml)]) -> Yaml {
    Yaml::Map(
        pairs
            .iter()
            .map(|(k, v)| (Yaml::Str((*k).to_owned()), v.clone()))
            .collect(),
    )
}

fn s(text: &str) -> Yaml {
    Yaml::Str(text.to_owned())
}

/// IM's `generate_main_playbook` for one system: its header with facts gathered, the
/// `/etc/hosts` tasks of IM's `utils/tasks/main.yml` as pre-tasks (the `etc_hosts`
/// file of the run is merged after the VM's own `/etc/hosts`), then the `Install user
/// requested apps` marker. Package installation of non-Ansible applications is not
/// done.
pub(crate) fn main_playbook(hosts: &str, windows: bool) -> String {
    let linux = s("ansible_os_family != \"Windows\"");
    let pre_tasks = vec![
        task(&[
            ("name", s("Copy the original /etc/hosts")),
            ("command", s("cp /etc/hosts /etc/hosts.orig creates=/etc/hosts.orig")),
            ("when", linux.clone()),
        ]),
        task(&[
            ("name", s("Copy the /etc/hosts")),
            ("copy", s("src={{ playbook_dir }}/etc_hosts dest=/etc/hosts.im")),
            ("when", linux.clone()),
        ]),
        task(&[
            ("name", s("Merge /etc/hosts")),
            ("shell", s("cat /etc/hosts.orig /etc/hosts.im > /etc/hosts")),
            ("when", linux),
        ]),
        task(&[
            ("name", s("Copy the /etc/hosts in windows native")),
            (
                "win_copy",
                s("src={{ playbook_dir }}/etc_hosts dest=c:\\Windows\\System32\\Drivers\\etc\\hosts"),
            ),
            ("when", s("ansible_os_family == \"Windows\"")),
        ]),
    ];
    let tasks = vec![task(&[("debug", s("msg='Install user requested apps'"))])];
    let mut play = header(hosts, windows, true).pairs().to_vec();
    play.push((s("pre_tasks"), Yaml::Seq(pre_tasks)));
    play.push((s("tasks"), Yaml::Seq(tasks)));
    format!("---\n{}", yaml::dump(&Yaml::Seq(vec![Yaml::Map(play)])))
}

/// The playbook the run executes: a play gathering every Linux node's facts (IM's
/// `_all` playbooks, so that recipes see them all), then each playbook in order.
pub(crate) fn site(gather_all: bool, playbooks: &[String]) -> String {
    let mut plays = Vec::new();
    if gather_all {
        plays.push(task(&[("hosts", s("allnowindows"))]));
    }
    plays.extend(
        playbooks
            .iter()
            .map(|file| task(&[("import_playbook", s(file))])),
    );
    format!("---\n{}", yaml::dump(&Yaml::Seq(plays)))
}

/// Whether a RADL name can be a file name as it is.
pub(crate) fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
