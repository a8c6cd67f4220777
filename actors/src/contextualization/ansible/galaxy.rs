//! The Ansible roles and collections a RADL asks for (`disk.0.applications contains
//! (name = 'ansible.roles.X')`, `ansible.collections.X`). IM installs them with
//! `ansible-galaxy`; no Galaxy server is reachable here, so they must already be in the
//! local directories the settings name (or, for collections, bundled with Ansible).

use std::path::{Path, PathBuf};

use infralog_radl::Radl;

use super::nodes::applications;

/// Whether a requirement is a role or a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `ansible.roles.X`.
    Role,
    /// `ansible.collections.X`.
    Collection,
}

/// One role or collection a RADL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// Role or collection.
    pub kind: Kind,
    /// The application name as written (`ansible.roles.geerlingguy.ntp`).
    pub application: String,
    /// The name Ansible knows it by (`geerlingguy.ntp`, `community.general`).
    pub name: String,
    /// The version asked for, if any (not checked: a local directory holds one).
    pub version: Option<String>,
}

/// IM's `get_ansible_roles_and_collections` over every system of the RADL, without
/// repeats, in document order. A role may be `X`, `X,VERSION`, `URL|NAME` or a URL
/// (then named as `ansible-galaxy` names it: the last path segment without `.git`).
pub(crate) fn requirements(radl: &Radl) -> Vec<Requirement> {
    let mut found: Vec<Requirement> = Vec::new();
    for system in &radl.systems {
        for (application, app_version, _) in applications(system) {
            let (kind, spec) = if let Some(spec) = application.strip_prefix("ansible.roles.") {
                (Kind::Role, spec)
            } else if let Some(spec) = application.strip_prefix("ansible.collections.") {
                (Kind::Collection, spec)
            } else {
                continue;
            };
            let (source, name) = match spec.split_once('|') {
                Some((source, name)) => (source, Some(name)),
                None => (spec, None),
            };
            let (source, spec_version) = match source.split_once(',') {
                Some((source, version)) => (source, Some(version.to_owned())),
                None => (source, None),
            };
            let name = name.map(str::to_owned).unwrap_or_else(|| {
                let last = source
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(source);
                last.strip_suffix(".git").unwrap_or(last).to_owned()
            });
            let requirement = Requirement {
                kind,
                application: application.clone(),
                name,
                version: spec_version.or(app_version),
            };
            if !found.contains(&requirement) {
                found.push(requirement);
            }
        }
    }
    found
}

/// Where the collections bundled with the Ansible of `playbook` live
/// (`<venv>/lib/python3.*/site-packages/ansible_collections`).
pub(crate) fn bundled_collections(playbook: &Path) -> Vec<PathBuf> {
    let Some(venv) = playbook.parent().and_then(Path::parent) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| {
            entry
                .path()
                .join("site-packages")
                .join("ansible_collections")
        })
        .filter(|path| path.is_dir())
        .collect()
}

/// Checks that every requirement is found locally; the error names each missing one.
pub(crate) fn check(
    requirements: &[Requirement],
    roles_path: Option<&Path>,
    collections_path: Option<&Path>,
    bundled: &[PathBuf],
) -> Result<(), String> {
    let mut missing = Vec::new();
    for requirement in requirements {
        let found = match requirement.kind {
            Kind::Role => roles_path.is_some_and(|dir| {
                !requirement.name.contains("..") && dir.join(&requirement.name).is_dir()
            }),
            Kind::Collection => {
                let parts: Vec<&str> = requirement.name.split('.').collect();
                let [namespace, collection] = parts[..] else {
                    missing.push(format!(
                        "Ansible collection '{}' (from {}): not a namespace.name",
                        requirement.name, requirement.application
                    ));
                    continue;
                };
                let mut roots: Vec<PathBuf> = Vec::new();
                if let Some(dir) = collections_path {
                    roots.push(dir.join("ansible_collections"));
                    roots.push(dir.to_path_buf());
                }
                roots.extend(bundled.iter().cloned());
                roots
                    .iter()
                    .any(|root| root.join(namespace).join(collection).is_dir())
            }
        };
        if !found {
            missing.push(match requirement.kind {
                Kind::Role => format!(
                    "Ansible role '{}' (from {}) not found in {}",
                    requirement.name,
                    requirement.application,
                    roles_path.map_or("(no roles directory configured)".to_owned(), |p| {
                        p.display().to_string()
                    })
                ),
                Kind::Collection => format!(
                    "Ansible collection '{}' (from {}) not found in {} nor among the collections bundled with Ansible",
                    requirement.name,
                    requirement.application,
                    collections_path.map_or("(no collections directory configured)".to_owned(), |p| {
                        p.display().to_string()
                    })
                ),
            });
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}
