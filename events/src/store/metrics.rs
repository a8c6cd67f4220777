//! Metric points (the MLBench facade's): not events, but samples kept in a tree
//! of their own, `metrics`, beside the log, keyed for range reads by
//! `(subject, name, date_µs, seq)`.
//!
//! Writes go through the log's writer thread, in the same group commit as
//! appends (one blocking `flush()` covers both), so a point is durable before
//! it is acknowledged; the writer gives each point its `seq`, which keeps two
//! points of one series with the same date apart.

use serde::{Deserialize, Serialize};

use super::{Pending, StoreError};

/// One point to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricPoint {
    /// Whose metric: `pod:<name>` or `run:<id>`.
    pub subject: String,
    /// The metric's name.
    pub name: String,
    /// Its date, in microseconds since the epoch (UTC).
    pub date_us: i64,
    /// Its value, as given (a string, as upstream stores it).
    pub value: String,
    /// Free text.
    pub metadata: String,
    /// Whether the value is cumulative.
    pub cumulative: bool,
}

/// One stored point of a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPoint {
    /// The metric's name.
    pub name: String,
    /// Its date, in microseconds since the epoch.
    pub date_us: i64,
    /// The writer's sequence number.
    pub seq: u64,
    /// Its value.
    pub value: String,
    /// Free text.
    pub metadata: String,
    /// Whether the value is cumulative.
    pub cumulative: bool,
}

/// A write of the metrics tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricWrite {
    /// Stores these points.
    Insert(Vec<MetricPoint>),
    /// Removes every point of this subject.
    DeleteSubject(String),
}

/// Stores and reads metric points.
pub trait MetricStore: Send + Sync {
    /// Writes durably; answers how many points were written or removed.
    fn write_metrics(&self, write: MetricWrite) -> Pending<u64>;

    /// The points of `subject` (of the metric `name` only, when given) dated at
    /// or after `since_us`, by name then date. Blocking.
    fn read_metrics(
        &self,
        subject: &str,
        name: Option<&str>,
        since_us: Option<i64>,
    ) -> Result<Vec<StoredPoint>, StoreError>;

    /// Every subject that has points. Blocking.
    fn metric_subjects(&self) -> Result<Vec<String>, StoreError>;
}

/// Point keys start with this byte; the tree's other key is [`SEQ_KEY`].
const POINT: u8 = b'p';
/// The next sequence number the writer gives.
pub(crate) const SEQ_KEY: &[u8] = b"seq";

#[derive(Serialize, Deserialize)]
struct StoredValue {
    value: String,
    metadata: String,
    cumulative: bool,
}

fn push_text(key: &mut Vec<u8>, text: &str) {
    // Lengths first, so a subject or name is never a prefix of another one.
    let length = u16::try_from(text.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(&text.as_bytes()[..usize::from(length)]);
}

/// The key prefix of a subject's points.
pub(crate) fn subject_prefix(subject: &str) -> Vec<u8> {
    let mut key = vec![POINT];
    push_text(&mut key, subject);
    key
}

/// The key prefix of one series.
fn series_prefix(subject: &str, name: &str) -> Vec<u8> {
    let mut key = subject_prefix(subject);
    push_text(&mut key, name);
    key
}

/// Dates sort as unsigned numbers once their sign bit is flipped.
fn date_bytes(date_us: i64) -> [u8; 8] {
    ((date_us as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key of a point.
pub(crate) fn point_key(subject: &str, name: &str, date_us: i64, seq: u64) -> Vec<u8> {
    let mut key = series_prefix(subject, name);
    key.extend_from_slice(&date_bytes(date_us));
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The stored value of a point.
pub(crate) fn point_value(point: &MetricPoint) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(&StoredValue {
        value: point.value.clone(),
        metadata: point.metadata.clone(),
        cumulative: point.cumulative,
    })
    .map_err(|e| StoreError::Storage(format!("a metric point cannot be encoded: {e}")))
}

fn read_text(key: &[u8], at: &mut usize) -> Option<String> {
    let length = usize::from(u16::from_be_bytes(key.get(*at..*at + 2)?.try_into().ok()?));
    let text = std::str::from_utf8(key.get(*at + 2..*at + 2 + length)?).ok()?;
    *at += 2 + length;
    Some(text.to_string())
}

/// Reads a point key back: subject, name, date, seq.
fn parse_key(key: &[u8]) -> Option<(String, String, i64, u64)> {
    if key.first() != Some(&POINT) {
        return None;
    }
    let mut at = 1;
    let subject = read_text(key, &mut at)?;
    let name = read_text(key, &mut at)?;
    let date = u64::from_be_bytes(key.get(at..at + 8)?.try_into().ok()?) ^ (1 << 63);
    let seq = u64::from_be_bytes(key.get(at + 8..at + 16)?.try_into().ok()?);
    Some((subject, name, date as i64, seq))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Inconsistent(format!("a metric point cannot be read: {what}"))
}

fn decode(key: &[u8], value: &[u8]) -> Result<StoredPoint, StoreError> {
    let (_, name, date_us, seq) = parse_key(key).ok_or_else(|| corrupt("its key"))?;
    let stored: StoredValue = postcard::from_bytes(value).map_err(|_| corrupt("its value"))?;
    Ok(StoredPoint {
        name,
        date_us,
        seq,
        value: stored.value,
        metadata: stored.metadata,
        cumulative: stored.cumulative,
    })
}

fn storage(error: sled::Error) -> StoreError {
    StoreError::Storage(error.to_string())
}

/// The points of one series from `since_us` on.
fn read_series(
    tree: &sled::Tree,
    prefix: &[u8],
    since_us: i64,
    out: &mut Vec<StoredPoint>,
) -> Result<(), StoreError> {
    let mut start = prefix.to_vec();
    start.extend_from_slice(&date_bytes(since_us));
    for entry in tree.range(start..) {
        let (key, value) = entry.map_err(storage)?;
        if !key.starts_with(prefix) {
            break;
        }
        out.push(decode(&key, &value)?);
    }
    Ok(())
}

/// [`MetricStore::read_metrics`] over a tree.
pub(crate) fn read(
    tree: &sled::Tree,
    subject: &str,
    name: Option<&str>,
    since_us: Option<i64>,
) -> Result<Vec<StoredPoint>, StoreError> {
    let since = since_us.unwrap_or(i64::MIN);
    let mut points = Vec::new();
    if let Some(name) = name {
        read_series(tree, &series_prefix(subject, name), since, &mut points)?;
        return Ok(points);
    }
    // Series by series: each one read from `since` on, skipping older points by
    // seeking instead of reading them.
    let prefix = subject_prefix(subject);
    let mut cursor = prefix.clone();
    loop {
        let next = tree
            .range(cursor.clone()..)
            .next()
            .transpose()
            .map_err(storage)?;
        let Some((key, _)) = next else { break };
        if !key.starts_with(&prefix) {
            break;
        }
        let (_, name, _, _) = parse_key(&key).ok_or_else(|| corrupt("its key"))?;
        let series = series_prefix(subject, &name);
        read_series(tree, &series, since, &mut points)?;
        // Past every key of this series: its prefix with 17 bytes of 0xFF.
        cursor = series;
        cursor.extend_from_slice(&[0xFF; 17]);
    }
    Ok(points)
}

/// [`MetricStore::metric_subjects`] over a tree.
pub(crate) fn subjects(tree: &sled::Tree) -> Result<Vec<String>, StoreError> {
    let mut subjects = Vec::new();
    let mut cursor = vec![POINT];
    loop {
        let next = tree
            .range(cursor.clone()..)
            .next()
            .transpose()
            .map_err(storage)?;
        let Some((key, _)) = next else { break };
        let Some((subject, _, _, _)) = parse_key(&key) else {
            break;
        };
        cursor = subject_prefix(&subject);
        cursor.extend_from_slice(&[0xFF; 3]);
        subjects.push(subject);
    }
    Ok(subjects)
}

/// What the writer does with one write: the batch's operations, and the count.
pub(crate) fn stage(
    tree: &sled::Tree,
    write: &MetricWrite,
    next_seq: &mut u64,
    batch: &mut sled::Batch,
) -> Result<u64, StoreError> {
    match write {
        MetricWrite::Insert(points) => {
            for point in points {
                let key = point_key(&point.subject, &point.name, point.date_us, *next_seq);
                *next_seq += 1;
                batch.insert(key, point_value(point)?);
            }
            Ok(points.len() as u64)
        }
        MetricWrite::DeleteSubject(subject) => {
            let mut count = 0;
            for entry in tree.scan_prefix(subject_prefix(subject)) {
                let (key, _) = entry.map_err(storage)?;
                batch.remove(key);
                count += 1;
            }
            Ok(count)
        }
    }
}

/// The sequence number the tree's writer starts at.
pub(crate) fn first_seq(tree: &sled::Tree) -> Result<u64, StoreError> {
    match tree.get(SEQ_KEY).map_err(storage)? {
        Some(bytes) => Ok(u64::from_be_bytes(
            bytes
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("the sequence"))?,
        )),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_subject_name_date_and_seq_and_read_back() {
        let a = point_key("run:1", "loss", -5, 2);
        let b = point_key("run:1", "loss", 3, 1);
        let c = point_key("run:1", "loss", 3, 2);
        assert!(a < b && b < c);
        assert_eq!(parse_key(&c), Some(("run:1".into(), "loss".into(), 3, 2)));
        // A subject that extends another one's text is another subject.
        assert!(!point_key("run:10", "loss", 0, 0).starts_with(&subject_prefix("run:1")));
    }

    #[test]
    fn reads_keep_since_and_names_and_subjects_are_listed_once() {
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let tree = db.open_tree("metrics").expect("tree");
        let mut seq = 0;
        let mut batch = sled::Batch::default();
        let points: Vec<MetricPoint> = [("a", 1), ("a", 5), ("b", 2), ("b", 9)]
            .iter()
            .map(|(name, date)| MetricPoint {
                subject: "pod:p".into(),
                name: (*name).into(),
                date_us: *date,
                value: date.to_string(),
                metadata: String::new(),
                cumulative: false,
            })
            .collect();
        stage(&tree, &MetricWrite::Insert(points), &mut seq, &mut batch).expect("stage");
        tree.apply_batch(batch).expect("apply");
        let read = read(&tree, "pod:p", None, Some(3)).expect("read");
        let seen: Vec<(String, i64)> = read.iter().map(|p| (p.name.clone(), p.date_us)).collect();
        assert_eq!(seen, [("a".to_string(), 5), ("b".to_string(), 9)]);
        let only_b = super::read(&tree, "pod:p", Some("b"), None).expect("read");
        assert_eq!(only_b.len(), 2);
        assert_eq!(subjects(&tree).expect("subjects"), ["pod:p"]);
        let mut batch = sled::Batch::default();
        let removed = stage(
            &tree,
            &MetricWrite::DeleteSubject("pod:p".into()),
            &mut seq,
            &mut batch,
        )
        .expect("stage");
        assert_eq!(removed, 4);
        tree.apply_batch(batch).expect("apply");
        assert!(subjects(&tree).expect("subjects").is_empty());
    }
}
