//! Images and capacity: snapshots (commits to a local image), their deletion, the
//! engine's image list and its quotas.

use std::collections::HashMap;

use bollard::models::ContainerConfig;
use bollard::query_parameters::{CommitContainerOptions, ListImagesOptions, RemoveImageOptions};

use super::engine::{is_not_found, Engine};
use super::labels;
use crate::connectors::{CloudImage, ConnectorError, ImageFilters, QuotaUsage, Quotas};

/// The prefix of every image URL of this cloud.
pub const SCHEME: &str = "docker://";

/// A snapshot's name as `(repository, tag)`: the repository lower-cased (Docker
/// allows no capitals there), the tag `latest` when none is given.
pub fn snapshot_reference(name: &str) -> Result<(String, String), ConnectorError> {
    let name = name.trim().strip_prefix(SCHEME).unwrap_or(name.trim());
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (name, "latest"),
    };
    let repository = repository.to_ascii_lowercase();
    let component_ok = |part: &str| {
        !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if repository.len() > 200 || !repository.split('/').all(component_ok) || !tag_ok {
        return Err(ConnectorError::new(format!(
            "'{name}' cannot name a Docker image: use lower-case letters, digits and . _ - \
             (NAME or NAME:TAG)"
        )));
    }
    Ok((repository, tag.to_string()))
}

/// A Dockerfile `LABEL` value, double-quoted.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Commits container `id` to a new local image named `name`; an image of that name
/// is never replaced. The image keeps the container's labels and gains
/// [`labels::SNAPSHOT`], which [`delete_image`] requires.
pub async fn snapshot(engine: &Engine, id: &str, name: &str) -> Result<String, ConnectorError> {
    let (repository, tag) = snapshot_reference(name)?;
    let reference = format!("{repository}:{tag}");
    match engine.docker().inspect_image(&reference).await {
        Ok(_) => {
            return Err(ConnectorError::new(format!(
                "Docker at {}: an image {reference} already exists; choose another name",
                engine.host()
            )))
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(engine.fail(&format!("inspect image {reference}"), &e)),
    }
    let container = engine.inspect(id).await?.ok_or_else(|| {
        ConnectorError::new(format!(
            "Docker at {}: no container {id} to snapshot",
            engine.host()
        ))
    })?;
    let mut changes: Vec<String> = container
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| format!("LABEL {}={}", quoted(&key), quoted(&value)))
        .collect();
    changes.sort();
    changes.push(format!("LABEL {}={}", quoted(labels::SNAPSHOT), quoted(id)));
    let options = CommitContainerOptions {
        container: Some(id.to_string()),
        repo: Some(repository),
        tag: Some(tag),
        pause: true,
        changes: Some(changes.join("\n")),
        ..Default::default()
    };
    engine
        .docker()
        .commit_container(options, ContainerConfig::default())
        .await
        .map_err(|e| engine.fail(&format!("commit container {id} to {reference}"), &e))?;
    Ok(format!("{SCHEME}{reference}"))
}

/// Deletes an image a snapshot made; one already gone is not an error, one that no
/// snapshot made is refused (the engine's other images are not the client's).
pub async fn delete_image(engine: &Engine, url: &str) -> Result<(), ConnectorError> {
    let Some(reference) = url.strip_prefix(SCHEME).filter(|r| !r.is_empty()) else {
        return Err(ConnectorError::new(format!(
            "'{url}' is not an image of the Docker cloud (docker://NAME:TAG)"
        )));
    };
    let image = match engine.docker().inspect_image(reference).await {
        Ok(image) => image,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(engine.fail(&format!("inspect image {reference}"), &e)),
    };
    let made_by_snapshot = image
        .config
        .and_then(|c| c.labels)
        .is_some_and(|l| l.contains_key(labels::SNAPSHOT));
    if !made_by_snapshot {
        return Err(ConnectorError::new(format!(
            "Docker at {}: image {reference} was not made by a snapshot; it is not deleted",
            engine.host()
        )));
    }
    match engine
        .docker()
        .remove_image(reference, None::<RemoveImageOptions>, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(engine.fail(&format!("delete image {reference}"), &e)),
    }
}

/// The engine's tagged images as `docker://NAME:TAG`, sorted, narrowed by IM's
/// common filters (`distribution` and `version`: case-insensitive parts of the name).
pub async fn images(
    engine: &Engine,
    filters: &ImageFilters,
) -> Result<Vec<CloudImage>, ConnectorError> {
    let summaries = engine
        .docker()
        .list_images(None::<ListImagesOptions>)
        .await
        .map_err(|e| engine.fail("list images", &e))?;
    let wanted = |name: &str| {
        let name = name.to_lowercase();
        ["distribution", "version"]
            .iter()
            .filter_map(|key| filters.get(key))
            .all(|part| name.contains(&part.to_lowercase()))
    };
    let mut images: Vec<CloudImage> = summaries
        .into_iter()
        .flat_map(|summary| summary.repo_tags)
        .filter(|tag| tag != "<none>:<none>" && wanted(tag))
        .map(|tag| CloudImage {
            uri: format!("{SCHEME}{tag}"),
            name: tag,
        })
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name));
    images.dedup();
    Ok(images)
}

/// `cores` and `ram` (GiB, as IM's clouds count it): the limits of infralog's running
/// containers against the engine's CPUs and memory. Containers without a limit count
/// as nothing, since Docker reserves nothing for them. IM's Docker connector has no
/// quotas at all.
pub async fn quotas(engine: &Engine) -> Result<Quotas, ConnectorError> {
    let info = engine
        .docker()
        .info()
        .await
        .map_err(|e| engine.fail("read the engine's information", &e))?;
    let mut running = HashMap::new();
    running.insert(
        "label".to_string(),
        vec![labels::INFRASTRUCTURE.to_string()],
    );
    running.insert("status".to_string(), vec!["running".to_string()]);
    let (mut nano_cpus, mut memory) = (0i64, 0i64);
    for summary in engine.containers(running).await? {
        let Some(id) = summary.id else { continue };
        let Some(host_config) = engine.inspect(&id).await?.and_then(|c| c.host_config) else {
            continue;
        };
        nano_cpus = nano_cpus.saturating_add(host_config.nano_cpus.unwrap_or(0).max(0));
        memory = memory.saturating_add(host_config.memory.unwrap_or(0).max(0));
    }
    const GIB: u64 = 1 << 30;
    let non_negative = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    let cores_used = u64::try_from(nano_cpus)
        .unwrap_or(0)
        .div_ceil(1_000_000_000);
    Ok(vec![
        (
            "cores".to_string(),
            QuotaUsage {
                used: cores_used,
                limit: non_negative(info.ncpu),
            },
        ),
        (
            "ram".to_string(),
            QuotaUsage {
                used: u64::try_from(memory).unwrap_or(0).div_ceil(GIB),
                limit: non_negative(info.mem_total) / GIB,
            },
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_become_lower_case_references_with_a_tag() {
        assert_eq!(
            snapshot_reference("MySnap"),
            Ok(("mysnap".to_string(), "latest".to_string()))
        );
        assert_eq!(
            snapshot_reference("team/web:v1.2"),
            Ok(("team/web".to_string(), "v1.2".to_string()))
        );
        for bad in [
            "localhost:5000/web",
            "",
            "a b",
            "-x",
            "x/",
            "a:b:c",
            "x:-tag",
            "ünï",
        ] {
            let error = snapshot_reference(bad).expect_err(bad);
            assert!(
                error.message.contains("cannot name a Docker image"),
                "{bad}"
            );
        }
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
