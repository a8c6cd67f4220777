//! A run's plan: everything IM's `generate_playbooks_and_hosts` decides, as files to
//! write. Pure: the only input from outside is the text of the vault-encrypted
//! recipes, decrypted by the runner.

use std::collections::HashMap;
use std::path::Path;

use infralog_events::domain::VmId;

use super::config::ansible_cfg;
use super::galaxy::{requirements, Requirement};
use super::inventory::{connection, etc_hosts, groups, inventory, key_file, Connection, Inventory};
use super::nodes::{master, nodes, text, Node};
use super::playbook::{
    header, main_playbook, merge_recipes, plain_file_name, site, step_items, StepItem,
};
use super::vault::{is_encrypted, Secret};
use super::{AnsibleJob, PlanError};

/// One `configure` run on one system's VMs.
#[derive(Debug, Clone)]
pub(crate) struct PlannedItem {
    /// The contextualize item.
    pub item: StepItem,
    /// Its playbook, relative to the run directory.
    pub file: String,
    /// The hosts it runs on (an Ansible pattern).
    pub hosts: String,
    /// Whether the system runs Windows (no `become`).
    pub windows: bool,
    /// The vault secret of the system (index in [`Plan::secrets`]), if it has one.
    pub secret: Option<usize>,
    /// The recipe as the RADL holds it.
    pub recipe: String,
}

/// A file of the run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    /// Its path relative to the run directory.
    pub path: String,
    /// Its content.
    pub content: String,
    /// Readable by the owner only (passwords, keys, the inventory).
    pub private: bool,
    /// Encrypt it with this secret (index in [`Plan::secrets`]) once written.
    pub encrypt: Option<usize>,
}

/// What a run does.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Every VM of the job.
    pub nodes: Vec<Node>,
    /// The roles and collections the RADL asks for.
    pub requirements: Vec<Requirement>,
    /// The inventory.
    pub inventory: Inventory,
    /// The `/etc/hosts` lines.
    pub etc_hosts: String,
    /// The vault passwords of the systems that have one.
    pub secrets: Vec<Secret>,
    /// The `main` playbook of each system with VMs to configure: (file, content).
    pub mains: Vec<(String, String)>,
    /// The configure items, in run order.
    pub items: Vec<PlannedItem>,
    /// Every recipe as written, as `<name>.yml`, for recipes that include others.
    pub raw: Vec<(String, String)>,
    /// VMs to configure that cannot be reached (no IP for an SSH cloud).
    pub unreachable: Vec<VmId>,
    /// What IM would log as warnings.
    pub warnings: Vec<String>,
}

impl Plan {
    /// Plans a job: reads its RADL, its VMs and the order of its recipes.
    pub fn new(job: &AnsibleJob) -> Result<Plan, PlanError> {
        let radl = infralog_radl::parse(&job.radl)
            .map_err(|e| PlanError::Radl(format!("it does not parse: {e}")))?;
        let nodes = nodes(&radl, &job.vms)?;
        let master = master(&radl, &nodes).and_then(|i| nodes.get(i));
        let inventory = inventory(job.infrastructure, &radl, &nodes, master)?;
        let etc_hosts = etc_hosts(&nodes);
        let targets = |system: &str| -> Vec<&Node> {
            nodes
                .iter()
                .filter(|n| n.vm.system == system && n.configured_here())
                .filter(|n| inventory.hosts.contains(&n.host))
                .collect()
        };
        let unreachable = nodes
            .iter()
            .filter(|n| n.configured_here() && !inventory.hosts.contains(&n.host))
            .map(|n| n.vm.vm_id)
            .collect();

        let grouped = groups(&nodes);
        let mut secrets: Vec<Secret> = Vec::new();
        let mut secret_of = |system: &str| -> Option<usize> {
            let first = grouped.get(system)?.first()?;
            let password = text(&first.system, "vault.password")?;
            if let Some(index) = secrets.iter().position(|s| s.password == password) {
                return Some(index);
            }
            secrets.push(Secret {
                label: format!("vault{}", secrets.len()),
                password: password.to_owned(),
            });
            Some(secrets.len() - 1)
        };

        let mut mains = Vec::new();
        for (index, (system, members)) in grouped.iter().enumerate() {
            let hosts = host_pattern(&targets(system));
            if hosts.is_empty() {
                continue;
            }
            let file = if plain_file_name(system) {
                format!("main_{system}_task.yml")
            } else {
                format!("main{index}_task.yml")
            };
            let windows = members.first().is_some_and(|n| n.is_windows());
            mains.push((file, main_playbook(&hosts, windows)));
        }

        let systems: Vec<&str> = grouped.keys().copied().collect();
        let mut items = Vec::new();
        for (index, item) in step_items(&radl, &systems).into_iter().enumerate() {
            let configure =
                radl.configure(&item.configure)
                    .ok_or_else(|| PlanError::UnknownConfigure {
                        configure: item.configure.clone(),
                        system: item.system.clone(),
                    })?;
            let Some(recipe) = configure.recipe.clone() else {
                continue;
            };
            let hosts = host_pattern(&targets(&item.system));
            if hosts.is_empty() {
                continue;
            }
            let secret = secret_of(&item.system);
            if secret.is_none() && is_encrypted(&recipe) {
                return Err(PlanError::VaultWithoutPassword {
                    configure: item.configure.clone(),
                    system: item.system.clone(),
                });
            }
            let file = if plain_file_name(&item.configure) && plain_file_name(&item.system) {
                format!("{}_{}_task.yml", item.configure, item.system)
            } else {
                format!("item{index}_task.yml")
            };
            let windows = grouped
                .get(item.system.as_str())
                .and_then(|m| m.first())
                .is_some_and(|n| n.is_windows());
            items.push(PlannedItem {
                item,
                file,
                hosts,
                windows,
                secret,
                recipe,
            });
        }

        let mut warnings = inventory.warnings.clone();
        let generated = |name: &str| {
            name == "site.yml"
                || mains.iter().any(|(f, _)| f == name)
                || items.iter().any(|i| i.file == name)
        };
        let mut raw = Vec::new();
        for configure in &radl.configures {
            let Some(recipe) = &configure.recipe else {
                continue;
            };
            let file = format!("{}.yml", configure.name);
            if !plain_file_name(&configure.name) || generated(&file) {
                warnings.push(format!(
                    "The recipe {} is not written as {file}: the name is not a plain file name or is taken.",
                    configure.name
                ));
                continue;
            }
            raw.push((file, format!("{recipe}\n\n")));
        }

        Ok(Plan {
            requirements: requirements(&radl),
            nodes,
            inventory,
            etc_hosts,
            secrets,
            mains,
            items,
            raw,
            unreachable,
            warnings,
        })
    }

    /// The VMs this run configures (reachable or not).
    pub fn to_configure(&self) -> Vec<VmId> {
        self.nodes
            .iter()
            .filter(|n| n.configured_here())
            .map(|n| n.vm.vm_id)
            .collect()
    }

    /// The inventory hosts and the VM each one is.
    pub fn hosts(&self) -> impl Iterator<Item = (String, VmId)> + '_ {
        self.nodes
            .iter()
            .filter(|n| self.inventory.hosts.contains(&n.host))
            .map(|n| (n.host.clone(), n.vm.vm_id))
    }

    /// The items whose recipe is vault text, which the runner decrypts first.
    pub fn encrypted_items(&self) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&i| is_encrypted(&self.items[i].recipe))
            .collect()
    }

    /// The files of the run directory. `decrypted` holds the plain text of every item
    /// of [`Plan::encrypted_items`], by index.
    pub fn files(
        &self,
        decrypted: &HashMap<usize, String>,
        run_dir: &Path,
        roles_path: Option<&Path>,
        collections_path: Option<&Path>,
    ) -> Result<Vec<File>, PlanError> {
        let file = |path: &str, content: String| File {
            path: path.to_owned(),
            content,
            private: false,
            encrypt: None,
        };
        let mut files = vec![
            File {
                private: true,
                ..file("inventory.json", self.inventory.document.to_string())
            },
            file("etc_hosts", self.etc_hosts.clone()),
            file(
                "ansible.cfg",
                ansible_cfg(
                    run_dir,
                    roles_path,
                    collections_path,
                    self.inventory.hosts.len(),
                ),
            ),
        ];
        for secret in &self.secrets {
            files.push(File {
                private: true,
                ..file(&secret.file(), secret.password.clone())
            });
        }
        for node in &self.nodes {
            if !self.inventory.hosts.contains(&node.host) {
                continue;
            }
            if let Some(Connection::Remote {
                private_key: true, ..
            }) = connection(node)
            {
                let [_, _, _, key] = node.system.credentials(false);
                files.push(File {
                    private: true,
                    ..file(
                        &key_file(node),
                        format!("{}\n", key.unwrap_or_default().trim_end()),
                    )
                });
            }
        }
        for (path, content) in &self.raw {
            files.push(file(path, content.clone()));
        }
        let mut playbooks: Vec<String> = Vec::new();
        for (path, content) in &self.mains {
            files.push(file(path, content.clone()));
            playbooks.push(path.clone());
        }
        for (index, planned) in self.items.iter().enumerate() {
            let recipe = match decrypted.get(&index) {
                Some(plain) => plain.as_str(),
                None if is_encrypted(&planned.recipe) => {
                    return Err(PlanError::Recipe {
                        configure: planned.item.configure.clone(),
                        system: planned.item.system.clone(),
                        reason: "its Ansible Vault text was not decrypted".into(),
                    })
                }
                None => planned.recipe.as_str(),
            };
            let header = header(&planned.hosts, planned.windows, false);
            let merged = merge_recipes(&header, recipe).map_err(|reason| PlanError::Recipe {
                configure: planned.item.configure.clone(),
                system: planned.item.system.clone(),
                reason,
            })?;
            let Some(content) = merged else { continue };
            files.push(File {
                private: planned.secret.is_some(),
                encrypt: planned.secret,
                ..file(&planned.file, content)
            });
            playbooks.push(planned.file.clone());
        }
        let gather_all = self
            .nodes
            .iter()
            .any(|n| !n.is_windows() && self.inventory.hosts.contains(&n.host));
        files.push(file("site.yml", site(gather_all, &playbooks)));
        Ok(files)
    }
}

/// The comma-separated hosts of a play (names are plain, so the list is one pattern).
fn host_pattern(nodes: &[&Node]) -> String {
    nodes
        .iter()
        .map(|n| n.host.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
