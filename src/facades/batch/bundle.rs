//! Bundles: checked whole in memory (gzip, tar, a root `run.sh`, nothing
//! outside the sandbox) before anything is written, then written and fsynced
//! into the job's sandbox; and the `output/` artifact as a gzip tar.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

/// A bundle's files, checked.
pub struct Bundle {
    entries: Vec<(PathBuf, Option<Vec<u8>>)>,
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a bundle: a gzip tar of regular files and directories, with `run.sh`
/// at its root and no path leaving it. Errors are the 400's message.
pub fn check(bytes: &[u8]) -> Result<Bundle, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err("Invalid bundle: not a gzip archive".into());
    }
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let mut entries = Vec::new();
    let mut has_run = false;
    let invalid = |e: std::io::Error| format!("Invalid bundle: not a gzip tar archive ({e})");
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let raw = entry.path().map_err(invalid)?.into_owned();
        let mut path = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::Normal(part) => path.push(part),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "Invalid bundle: the path {} leaves the sandbox",
                        raw.display()
                    ))
                }
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            entries.push((path, None));
        } else if kind.is_file() {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).map_err(invalid)?;
            has_run |= path == Path::new("run.sh");
            entries.push((path, Some(content)));
        } else {
            return Err(format!(
                "Invalid bundle: {} is not a regular file or a directory",
                raw.display()
            ));
        }
    }
    if !has_run {
        return Err("Invalid bundle: no run.sh at its root".into());
    }
    Ok(Bundle { entries })
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Makes the job's sandbox: the uploaded bundle and input as received, the
/// bundle's files under `bundle/` (`run.sh` executable), all fsynced.
pub fn write_sandbox(
    sandbox: &Path,
    raw_bundle: &[u8],
    bundle: &Bundle,
    input: Option<&[u8]>,
) -> std::io::Result<()> {
    let files = sandbox.join("bundle");
    for dir in ["bundle", "input", "output", "scratch"] {
        fs::create_dir_all(sandbox.join(dir))?;
    }
    write_synced(&sandbox.join("bundle.tgz"), raw_bundle)?;
    if let Some(input) = input {
        write_synced(&sandbox.join("input").join("input"), input)?;
        sync_dir(&sandbox.join("input"))?;
    }
    for (path, content) in &bundle.entries {
        let target = files.join(path);
        match content {
            None => fs::create_dir_all(&target)?,
            Some(bytes) => {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                write_synced(&target, bytes)?;
                if path == Path::new("run.sh") {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&target, fs::Permissions::from_mode(0o755))?;
                }
            }
        }
    }
    sync_dir(&files)?;
    sync_dir(sandbox)?;
    if let Some(parent) = sandbox.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// A gzip tar of `dir`'s files, with paths relative to it.
pub fn tar_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let mut children: Vec<_> = fs::read_dir(dir.join(&relative))?.collect::<Result<_, _>>()?;
        children.sort_by_key(|entry| entry.file_name());
        for child in children {
            let name = relative.join(child.file_name());
            let kind = child.file_type()?;
            if kind.is_dir() {
                builder.append_dir(&name, child.path())?;
                stack.push(name);
            } else if kind.is_file() {
                builder.append_path_with_name(child.path(), &name)?;
            }
        }
    }
    builder.into_inner()?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (name, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *content)
                .expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn bundles_need_gzip_tar_and_a_root_run_sh() {
        assert!(check(&tgz(&[("run.sh", b"echo hi")])).is_ok());
        assert!(check(&tgz(&[("./run.sh", b"echo hi"), ("lib/a", b"x")])).is_ok());
        assert_eq!(
            check(&tgz(&[("sub/run.sh", b"echo")])).err().as_deref(),
            Some("Invalid bundle: no run.sh at its root")
        );
        assert!(check(b"plain text").is_err());
    }

    #[test]
    fn paths_that_escape_are_refused() {
        // `tar::Builder` refuses to write `..`, so the header is written by hand.
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..9].copy_from_slice(b"../run.sh");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        let mut raw = header.as_bytes().to_vec();
        raw.extend_from_slice(b"x");
        raw.resize(512 * 4, 0);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&raw).expect("gzip");
        let error = check(&encoder.finish().expect("gzip"))
            .err()
            .unwrap_or_default();
        assert!(error.contains("leaves the sandbox"), "{error}");
    }
}
