//! A zip archive of stored (uncompressed) entries: the metric export is small
//! JSON, and writing stored entries takes a CRC-32 and three headers, no
//! compression library.

/// 1980-01-01 00:00, the earliest DOS date: entries carry no meaningful time.
const DOS_DATE: u16 = (1 << 5) | 1;
/// Names are UTF-8 (general purpose flag bit 11).
const UTF8_NAMES: u16 = 1 << 11;

fn u16_le(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn u32_le(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// The archive of `entries` (name, content), in order. Archives past 4 GiB or
/// 65,535 entries (zip64) are not needed here; sizes are capped accordingly.
pub fn stored_zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, content) in entries.iter().take(usize::from(u16::MAX)) {
        let offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let crc = crc32fast::hash(content);
        let size = u32::try_from(content.len()).unwrap_or(u32::MAX);
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        let name = &name.as_bytes()[..usize::from(name_len)];
        // Local file header.
        u32_le(&mut out, 0x0403_4b50);
        u16_le(&mut out, 20);
        u16_le(&mut out, UTF8_NAMES);
        u16_le(&mut out, 0);
        u16_le(&mut out, 0);
        u16_le(&mut out, DOS_DATE);
        u32_le(&mut out, crc);
        u32_le(&mut out, size);
        u32_le(&mut out, size);
        u16_le(&mut out, name_len);
        u16_le(&mut out, 0);
        out.extend_from_slice(name);
        out.extend_from_slice(content);
        // Its central directory entry.
        u32_le(&mut central, 0x0201_4b50);
        u16_le(&mut central, 20);
        u16_le(&mut central, 20);
        u16_le(&mut central, UTF8_NAMES);
        u16_le(&mut central, 0);
        u16_le(&mut central, 0);
        u16_le(&mut central, DOS_DATE);
        u32_le(&mut central, crc);
        u32_le(&mut central, size);
        u32_le(&mut central, size);
        u16_le(&mut central, name_len);
        u16_le(&mut central, 0);
        u16_le(&mut central, 0);
        u16_le(&mut central, 0);
        u16_le(&mut central, 0);
        u32_le(&mut central, 0o100644 << 16);
        u32_le(&mut central, offset);
        central.extend_from_slice(name);
    }
    let count = u16::try_from(entries.len()).unwrap_or(u16::MAX);
    let central_offset = u32::try_from(out.len()).unwrap_or(u32::MAX);
    let central_size = u32::try_from(central.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&central);
    // End of central directory.
    u32_le(&mut out, 0x0605_4b50);
    u16_le(&mut out, 0);
    u16_le(&mut out, 0);
    u16_le(&mut out, count);
    u16_le(&mut out, count);
    u32_le(&mut out, central_size);
    u32_le(&mut out, central_offset);
    u16_le(&mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reads_the_archive_back() {
        let archive = stored_zip(&[
            ("a.json".into(), b"[1, 2]".to_vec()),
            ("official_result.txt".into(), b"92.5".to_vec()),
        ]);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.zip");
        std::fs::write(&path, &archive).expect("write");
        let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(sorted((i.filename, z.read(i).decode()) for i in z.infolist()))";
        let output = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .expect("python3 runs");
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "[('a.json', '[1, 2]'), ('official_result.txt', '92.5')]"
        );
    }
}
