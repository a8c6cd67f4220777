//! Block storage: `tosca.nodes.BlockStorage` nodes a Compute attaches with
//! `local_storage` requirements become its `disk.N.*` features (N from 1, in
//! requirement order), as IM's `_get_attached_disks` reads them.

use infralog_radl::{Feature, Operator};

use super::template::{Kind, Template};
use super::translate::{is_falsy, size_in_bytes};
use super::yaml::Node;
use super::ToscaError;

/// IM's file system for a mounted disk without `fs_type`.
const DEFAULT_FS_TYPE: &str = "ext4";

impl Template {
    /// The disk features of the block storages `compute` attaches.
    pub(super) fn disk_features(
        &self,
        compute: &Node,
        name: &str,
    ) -> Result<Vec<Feature>, ToscaError> {
        let mut features = Vec::new();
        let Some(Node::Seq(requirements)) = compute.get("requirements") else {
            return Ok(features);
        };
        let mut number = 1;
        for requirement in requirements {
            let Some(target) = requirement.get("local_storage") else {
                continue;
            };
            let (storage, relationship) = match target {
                Node::Str(storage) => (storage.clone(), None),
                Node::Map(_) => match target.get("node") {
                    Some(Node::Str(storage)) => (storage.clone(), target.get("relationship")),
                    _ => {
                        return Err(ToscaError::Invalid(format!(
                            "the local_storage requirement of \"{name}\" names no node"
                        )))
                    }
                },
                _ => continue,
            };
            let Some(node) = self.node(&storage).filter(|n| n.kind == Kind::BlockStorage) else {
                return Err(ToscaError::Invalid(format!(
                    "the local_storage requirement of \"{name}\" names \"{storage}\", which is not a block storage node"
                )));
            };
            let property = |property: &str| {
                node.body
                    .get("properties")
                    .and_then(|p| p.get(property))
                    .map(|raw| self.evaluate(raw, &node.name))
                    .filter(|value| !is_falsy(value))
            };
            let attachment = |property: &str| {
                relationship
                    .and_then(|r| r.get("properties"))
                    .and_then(|p| p.get(property))
                    .map(|raw| self.evaluate(raw, name))
                    .filter(|value| !is_falsy(value))
            };
            let disk = |suffix: &str| format!("disk.{number}.{suffix}");
            if let Some(volume) = property("volume_id") {
                // An existing volume is attached as it is.
                features.push(Feature::string(disk("image.url"), volume.to_python_str()));
                number += 1;
                continue;
            }
            if let Some(kind) = property("type") {
                features.push(Feature::string(disk("type"), kind.to_python_str()));
            }
            if let Some(size) = property("size") {
                let bytes = size_in_bytes(&size).ok_or_else(|| {
                    ToscaError::Invalid(format!(
                        "\"{}\" is not a valid scalar-unit (property \"size\" of \"{}\").",
                        size.to_python_str(),
                        node.name
                    ))
                })?;
                features.push(Feature::number(disk("size"), Operator::Ge, bytes, "B"));
            }
            if let Some(device) = attachment("device") {
                features.push(Feature::string(disk("device"), device.to_python_str()));
            }
            if let Some(location) = attachment("location") {
                features.push(Feature::string(
                    disk("mount_path"),
                    location.to_python_str(),
                ));
                let fs_type =
                    attachment("fs_type").map_or(DEFAULT_FS_TYPE.to_owned(), |f| f.to_python_str());
                features.push(Feature::string(disk("fstype"), fs_type));
            }
            number += 1;
        }
        Ok(features)
    }
}
