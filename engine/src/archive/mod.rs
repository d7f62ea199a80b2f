//! The Parquet archive: every read and every alert, partitioned by the hour they were observed.
//!
//! Delivery protocol (see `schemas/archive.md`): the reads of one source partition between two
//! checkpoints form a *segment*. A segment's files are written under temporary names, fsynced, then
//! renamed to names carrying the segment's offset range and file count:
//!
//! `{root}/{table}/date=YYYY-MM-DD/hour=HH/{topic}-p{partition}-{first}-{last}-n{files}.parquet`
//!
//! Only after every file of a segment is renamed may the caller commit `last + 1` to Kafka. On
//! restart, [`recover_partition`] finds the highest offset covered by a complete segment (all `n`
//! files present), deletes the files of an incomplete one, and the caller skips what is covered:
//! a crash may replay reads, never lose or duplicate them in the archive.

mod by_plate;
mod columns;
mod compact;
mod paged;
mod segment;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use by_plate::{
    build_plate_copies, by_plate_schema, current_plate_copies, PlateCopyOptions, PlateCopyReport,
    BY_PLATE_COLUMNS, BY_PLATE_FILE, BY_PLATE_TABLE,
};
pub use columns::{AlertColumns, ReadColumns, TableColumns, ALERTS_SCHEMA, READS_SCHEMA};
pub use compact::{compact, CompactOptions, CompactReport};
pub use paged::{recent_pages, RecentPagesReport};
pub use segment::{ArchiveConfig, SegmentReport, SegmentWriter, WrittenFile};

pub const READS_TABLE: &str = "reads";
pub const ALERTS_TABLE: &str = "alerts";
pub const TABLES: [&str; 2] = [READS_TABLE, ALERTS_TABLE];
const PARQUET_SUFFIX: &str = ".parquet";
const IN_PROGRESS_SUFFIX: &str = ".parquet.inprogress";

/// Key-value metadata keys written into every archive file's footer.
pub mod metadata_keys {
    pub const TABLE: &str = "platestream.table";
    pub const SOURCE_TOPIC: &str = "platestream.source.topic";
    pub const SOURCE_PARTITION: &str = "platestream.source.partition";
    pub const FIRST_OFFSET: &str = "platestream.source.first_offset";
    pub const LAST_OFFSET: &str = "platestream.source.last_offset";
    pub const SEGMENT_FILES: &str = "platestream.segment.files";
    pub const WRITER_VERSION: &str = "platestream.version";
    /// On a compacted file: the names of the files merged into it, comma-separated.
    pub const COMPACTED_FROM: &str = "platestream.compacted.from";
    /// [`super::message_fingerprint`] of the message at `last_offset`, as 16 hex digits: tells a
    /// partition the archive was written from from another incarnation that has as many
    /// messages. Absent on files of `replay` and of versions before 2026-11-28.
    pub const LAST_MESSAGE_XXH3: &str = "platestream.source.last_message_xxh3";
}

/// What a segment's footer records of the message at its last offset: the xxh3 of its payload.
/// The same bytes at the same offset are the same message for the archive's purposes, whichever
/// topic incarnation holds them.
pub fn message_fingerprint(payload: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(payload)
}

/// A value of a file's key-value footer metadata; `None` when the file does not carry the key.
pub fn footer_value(path: &Path, key: &str) -> Result<Option<String>, ArchiveError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(io_error(path))?;
    let reader = SerializedFileReader::new(file).map_err(|source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    })?;
    Ok(reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|pair| pair.key == key))
        .and_then(|pair| pair.value.clone()))
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("archive file {path}: parquet: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("archive: arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("archive file {path}: its encoding thread {what}")]
    Encoder { path: PathBuf, what: &'static str },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The identity of one segment as spelled in its files' names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub files: usize,
}

impl SegmentName {
    pub fn file_name(&self) -> String {
        format!(
            "{}-p{}-{}-{}-n{}{PARQUET_SUFFIX}",
            self.topic, self.partition, self.first_offset, self.last_offset, self.files
        )
    }

    /// Parses `{topic}-p{partition}-{first}-{last}-n{files}.parquet`; topics may contain `-`.
    pub fn parse(file_name: &str) -> Option<Self> {
        let (topic, partition, first_offset, last_offset, files) =
            parse_offset_range_name(file_name, 'n')?;
        Some(Self {
            topic,
            partition,
            first_offset,
            last_offset,
            files,
        })
    }
}

/// Splits `{topic}-p{partition}-{first}-{last}-{marker}{count}.parquet`, the shape both segment
/// and compacted file names share; topics may contain `-`.
fn parse_offset_range_name(
    file_name: &str,
    marker: char,
) -> Option<(String, i32, i64, i64, usize)> {
    let stem = file_name.strip_suffix(PARQUET_SUFFIX)?;
    let mut parts = stem.rsplitn(5, '-');
    let count = parts.next()?.strip_prefix(marker)?.parse().ok()?;
    let last_offset = parts.next()?.parse().ok()?;
    let first_offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.strip_prefix('p')?.parse().ok()?;
    let topic = parts.next()?.to_owned();
    Some((topic, partition, first_offset, last_offset, count))
}

/// A file `platestream compact` merged from the complete files of one source partition in one
/// table and hour: `{topic}-p{partition}-{first}-{last}-c{inputs}.parquet`. Its offset range covers
/// the segments it absorbed, which recovery counts as archived.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompactedName {
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// How many files were merged into it.
    pub inputs: usize,
}

impl CompactedName {
    pub fn file_name(&self) -> String {
        format!(
            "{}-p{}-{}-{}-c{}{PARQUET_SUFFIX}",
            self.topic, self.partition, self.first_offset, self.last_offset, self.inputs
        )
    }

    pub fn parse(file_name: &str) -> Option<Self> {
        let (topic, partition, first_offset, last_offset, inputs) =
            parse_offset_range_name(file_name, 'c')?;
        Some(Self {
            topic,
            partition,
            first_offset,
            last_offset,
            inputs,
        })
    }

    fn covers(&self, segment: &SegmentName) -> bool {
        self.topic == segment.topic
            && self.partition == segment.partition
            && self.first_offset <= segment.first_offset
            && segment.last_offset <= self.last_offset
    }
}

/// `date=YYYY-MM-DD/hour=HH` of a time in epoch milliseconds (UTC).
pub fn hour_partition(observed_at_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(observed_at_ms) {
        Some(time) => time.format("date=%Y-%m-%d/hour=%H").to_string(),
        None => "date=invalid/hour=00".to_owned(),
    }
}

/// Every archive file below `root/table`, as (directory, file name).
pub(crate) fn archive_files(
    root: &Path,
    table: &str,
) -> Result<Vec<(PathBuf, String)>, ArchiveError> {
    let mut found = Vec::new();
    let table_dir = root.join(table);
    for date_dir in sub_directories(&table_dir)? {
        for hour_dir in sub_directories(&date_dir)? {
            let entries = fs::read_dir(&hour_dir).map_err(io_error(&hour_dir))?;
            for entry in entries {
                let entry = entry.map_err(io_error(&hour_dir))?;
                if let Some(name) = entry.file_name().to_str() {
                    found.push((hour_dir.clone(), name.to_owned()));
                }
            }
        }
    }
    Ok(found)
}

fn sub_directories(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    match fs::read_dir(dir) {
        Ok(entries) => {
            let mut dirs = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io_error(dir))?;
                if entry.file_type().map_err(io_error(dir))?.is_dir() {
                    dirs.push(entry.path());
                }
            }
            Ok(dirs)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(io_error(dir)(error)),
    }
}

/// What recovery found for one source partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionRecovery {
    /// The highest offset covered by a complete segment; reads up to it are archived.
    pub archived_through: Option<i64>,
    /// [`message_fingerprint`] of the message at `archived_through`, when its files record it.
    pub archived_last_message: Option<u64>,
    /// Files of segments a crash left incomplete, now deleted (their reads will be replayed).
    pub removed_incomplete: Vec<PathBuf>,
}

/// Prepares the archive for (re)consuming one source partition: see the module documentation.
///
/// Call it only for partitions this process owns: another process may be writing the others.
pub fn recover_partition(
    root: &Path,
    topic: &str,
    partition: i32,
) -> Result<PartitionRecovery, ArchiveError> {
    let marker = retiring_marker(root, topic, partition);
    if let Some(stamp) = read_retiring_marker(&marker)? {
        // A retirement was interrupted: every file of the partition still under its own name is
        // of the earlier incarnation (nothing is archived for it before retirement finishes), so
        // finishing it is safe, where taking its files for an incomplete segment would delete
        // the earlier incarnation's last copy of their reads.
        finish_retirement(root, topic, partition, stamp, &marker)?;
    }
    let in_progress_prefix = format!(".{topic}-p{partition}-");
    let mut segments: BTreeMap<SegmentName, Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut compacted: Vec<(PathBuf, CompactedName)> = Vec::new();
    let mut removed_incomplete = Vec::new();
    for table in TABLES {
        for (dir, name) in archive_files(root, table)? {
            if name.starts_with(&in_progress_prefix) && name.ends_with(IN_PROGRESS_SUFFIX) {
                let path = dir.join(&name);
                fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            if let Some(merged) = CompactedName::parse(&name) {
                if merged.topic == topic && merged.partition == partition {
                    compacted.push((dir, merged));
                }
                continue;
            }
            let Some(segment) = SegmentName::parse(&name) else {
                continue;
            };
            if segment.topic == topic && segment.partition == partition {
                segments.entry(segment).or_default().push((dir, name));
            }
        }
    }
    let mut archived_through = compacted.iter().map(|(_, merged)| merged.last_offset).max();
    // Files that may record the last archived message: those ending where the archive ends.
    let mut last_files: Vec<(i64, PathBuf)> = compacted
        .iter()
        .map(|(dir, merged)| (merged.last_offset, dir.join(merged.file_name())))
        .collect();
    for (segment, files) in segments {
        // Compaction merges only complete segments, so one a compacted file covers was complete
        // even if some of its files are now inside that compacted file.
        let compacted_covers = compacted.iter().any(|(_, merged)| merged.covers(&segment));
        if files.len() >= segment.files || compacted_covers {
            archived_through = archived_through.max(Some(segment.last_offset));
            if let Some((dir, name)) = files.first() {
                last_files.push((segment.last_offset, dir.join(name)));
            }
            for (dir, name) in files {
                // A file beside a compacted file that covers it was merged into it by a compaction
                // interrupted before it deleted its inputs: the rows are in the compacted file.
                let merged_beside = compacted
                    .iter()
                    .any(|(merged_dir, merged)| *merged_dir == dir && merged.covers(&segment));
                if merged_beside {
                    let path = dir.join(name);
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
        } else {
            for (dir, name) in files {
                let path = dir.join(name);
                fs::remove_file(&path).map_err(io_error(&path))?;
                removed_incomplete.push(path);
            }
        }
    }
    let archived_last_message = match archived_through {
        Some(through) => last_message_recorded(
            last_files
                .iter()
                .filter(|(last, path)| *last == through && path.exists())
                .map(|(_, path)| path.as_path()),
        ),
        None => None,
    };
    Ok(PartitionRecovery {
        archived_through,
        archived_last_message,
        removed_incomplete,
    })
}

/// The last message's fingerprint the first of `files` to record one holds.
fn last_message_recorded<'a>(files: impl Iterator<Item = &'a Path>) -> Option<u64> {
    for path in files {
        // A footer that cannot be read records nothing here; queries name the broken file.
        let recorded = footer_value(path, metadata_keys::LAST_MESSAGE_XXH3)
            .ok()
            .flatten()
            .and_then(|hex| u64::from_str_radix(&hex, 16).ok());
        if recorded.is_some() {
            return recorded;
        }
    }
    None
}

/// What a retired file's name carries before `.parquet`: `{segment or compacted name}.retired{ms}`.
const RETIRED_MARK: &str = ".retired";

/// `{root}/.retiring-{topic}-p{partition}`, holding the retirement's stamp while it is under way.
fn retiring_marker(root: &Path, topic: &str, partition: i32) -> PathBuf {
    root.join(format!(".retiring-{topic}-p{partition}"))
}

fn read_retiring_marker(marker: &Path) -> Result<Option<i64>, ArchiveError> {
    match fs::read_to_string(marker) {
        // An unreadable stamp still marks a retirement to finish; any distinct stamp will do.
        Ok(stamp) => Ok(Some(stamp.trim().parse().unwrap_or(0))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(marker)(error)),
    }
}

/// Sets aside the archive's record of one source partition because it describes another
/// incarnation of that partition: the topic was deleted and created again, or the engine now reads
/// a different broker (as a second `platestream demo` does), so offsets the archive counts as
/// archived belong to other messages. Without this the engine would skip those offsets' new
/// messages as already archived.
///
/// Every complete segment file and compacted file of the partition, in both tables, is renamed to
/// `{name}.retired{stamp_ms}.parquet`: queries still see their reads (they end in `.parquet`), but
/// recovery, compaction and file names of new segments no longer meet them. Crash-safe: a marker
/// file is made durable first, and [`recover_partition`] finishes a retirement it finds marked.
/// Returns the files renamed.
///
/// Call it only for partitions this process owns, before it archives anything of them.
pub fn retire_partition(
    root: &Path,
    topic: &str,
    partition: i32,
    stamp_ms: i64,
) -> Result<Vec<PathBuf>, ArchiveError> {
    fs::create_dir_all(root).map_err(io_error(root))?;
    let marker = retiring_marker(root, topic, partition);
    {
        let mut file = File::create(&marker).map_err(io_error(&marker))?;
        file.write_all(stamp_ms.to_string().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_error(&marker))?;
    }
    segment::sync_directory(root)?;
    finish_retirement(root, topic, partition, stamp_ms, &marker)
}

fn finish_retirement(
    root: &Path,
    topic: &str,
    partition: i32,
    stamp_ms: i64,
    marker: &Path,
) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut retired = Vec::new();
    let mut directories = BTreeSet::new();
    for table in TABLES {
        for (dir, name) in archive_files(root, table)? {
            let of_partition = match (SegmentName::parse(&name), CompactedName::parse(&name)) {
                (Some(segment), _) => segment.topic == topic && segment.partition == partition,
                (None, Some(merged)) => merged.topic == topic && merged.partition == partition,
                (None, None) => false,
            };
            if !of_partition {
                continue;
            }
            let Some(stem) = name.strip_suffix(PARQUET_SUFFIX) else {
                continue;
            };
            let from = dir.join(&name);
            let to = dir.join(format!("{stem}{RETIRED_MARK}{stamp_ms}{PARQUET_SUFFIX}"));
            fs::rename(&from, &to).map_err(io_error(&from))?;
            directories.insert(dir);
            retired.push(to);
        }
    }
    for directory in &directories {
        segment::sync_directory(directory)?;
    }
    fs::remove_file(marker).map_err(io_error(marker))?;
    segment::sync_directory(root)?;
    Ok(retired)
}

/// A read at `offset` of partition 0 of topic `reads`, id `r{offset}`, for the archive's tests.
#[cfg(test)]
pub(crate) fn test_read(offset: i64, plate: &str, observed: &str) -> crate::read::PlateRead {
    let mut read: crate::read::PlateRead = serde_json::from_value(serde_json::json!({
        "read_id": format!("r{offset}"), "vendor": "t", "reader_id": "dc-r-001",
        "observed_at": observed, "plate": plate, "plate_norm": plate,
        "confidence": 0.9, "lat": 38.9, "lon": -77.0, "heading": 90.0
    }))
    .unwrap_or_else(|error| panic!("test read: {error}"));
    read.source = Some(crate::read::SourcePosition {
        topic: "reads".into(),
        partition: 0,
        offset,
    });
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_with_dashes_in_the_topic() {
        let name = SegmentName {
            topic: "plate-reads.raw".into(),
            partition: 3,
            first_offset: 0,
            last_offset: 1_999,
            files: 2,
        };
        assert_eq!(name.file_name(), "plate-reads.raw-p3-0-1999-n2.parquet");
        assert_eq!(SegmentName::parse(&name.file_name()), Some(name));
        assert_eq!(SegmentName::parse("notes.txt"), None);
        assert_eq!(SegmentName::parse("x-p1-2-3.parquet"), None);
    }

    #[test]
    fn hour_partitions_are_by_utc_observation_hour() {
        assert_eq!(hour_partition(1_795_539_600_250), "date=2026-11-24/hour=17");
    }

    /// Files named as complete segments (recovery reads only names): partition 0's segment 0-9
    /// in two hours and its alerts, a compacted file of it, and partition 1's segment 0-5.
    fn archive_of_two_partitions(root: &Path) -> [PathBuf; 5] {
        let hour = |table: &str, hour: &str| {
            let dir = root.join(table).join("date=2026-11-27").join(hour);
            fs::create_dir_all(&dir).unwrap();
            dir
        };
        let files = [
            hour(READS_TABLE, "hour=10").join("reads-p0-0-9-n3.parquet"),
            hour(READS_TABLE, "hour=11").join("reads-p0-0-9-n3.parquet"),
            hour(ALERTS_TABLE, "hour=10").join("reads-p0-0-9-n3.parquet"),
            hour(READS_TABLE, "hour=09").join("reads-p0-0-4-c2.parquet"),
            hour(READS_TABLE, "hour=10").join("reads-p1-0-5-n1.parquet"),
        ];
        for file in &files {
            fs::write(file, b"rows").unwrap();
        }
        files
    }

    fn retired_name(file: &Path, stamp: i64) -> PathBuf {
        let name = file.file_name().unwrap().to_str().unwrap();
        let stem = name.strip_suffix(".parquet").unwrap();
        file.with_file_name(format!("{stem}.retired{stamp}.parquet"))
    }

    #[test]
    fn a_retired_partition_keeps_its_files_but_no_longer_counts_as_archived() {
        let dir = tempfile::tempdir().unwrap();
        let files = archive_of_two_partitions(dir.path());
        let recovered = |partition| recover_partition(dir.path(), "reads", partition).unwrap();
        assert_eq!(recovered(0).archived_through, Some(9));

        let retired = retire_partition(dir.path(), "reads", 0, 1_764_000_000_000).unwrap();
        assert_eq!(retired.len(), 4);
        for file in &files[..4] {
            assert!(!file.exists());
            assert!(retired_name(file, 1_764_000_000_000).exists());
        }
        assert!(files[4].exists(), "another partition's file was touched");
        let after = recovered(0);
        assert_eq!(after.archived_through, None);
        assert!(after.removed_incomplete.is_empty());
        assert_eq!(recovered(1).archived_through, Some(5));
        assert!(!retiring_marker(dir.path(), "reads", 0).exists());
        // Nothing left of partition 0 to retire again.
        assert!(retire_partition(dir.path(), "reads", 0, 1)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn recovery_finishes_an_interrupted_retirement_instead_of_deleting_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = archive_of_two_partitions(dir.path());
        // A crash after the marker and the first rename: two of the segment's three files are
        // still under their own names, which would make it an incomplete segment.
        fs::write(retiring_marker(dir.path(), "reads", 0), "7").unwrap();
        fs::rename(&files[0], retired_name(&files[0], 7)).unwrap();

        let recovery = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(recovery.archived_through, None);
        assert!(recovery.removed_incomplete.is_empty(), "{recovery:?}");
        for file in &files[..4] {
            assert!(retired_name(file, 7).exists(), "{}", file.display());
        }
        assert!(!retiring_marker(dir.path(), "reads", 0).exists());
        assert!(files[4].exists());
    }
}
