//! Compaction: the many small files the stream writes for one hour (one per segment) merged into
//! few large ones, which queries open, prune and read far faster.
//!
//! Per (table, hour, source partition) of a closed hour, the files of complete segments (and any
//! earlier compacted files) are read, sorted by observation time and written as one file per
//! `max_rows` under an in-progress name; the file is fsynced, read back and checked against the
//! inputs (row count and a fingerprint of every read or alert id), renamed to its compacted name
//! (`{topic}-p{partition}-{first}-{last}-c{inputs}.parquet`, see [`CompactedName`]), the directory
//! fsynced, and only then are the inputs deleted. A crash at any point leaves either the inputs,
//! or the inputs and the compacted file — whose leftovers recovery and the next compaction delete.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use xxhash_rust::xxh3::xxh3_64;

use super::{
    archive_files, io_error, metadata_keys, ArchiveConfig, ArchiveError, CompactedName,
    SegmentName, ALERTS_TABLE, IN_PROGRESS_SUFFIX, TABLES,
};

const MILLIS_PER_HOUR: i64 = 3_600_000;

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only hours that ended at or before this time (epoch ms) are compacted: later hours may
    /// still receive files.
    pub before_ms: i64,
    /// Rows per compacted file at most (bounds the memory a merge takes).
    pub max_rows: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// (table, hour directory, partition) groups merged.
    pub groups: usize,
    pub input_files: usize,
    pub output_files: usize,
    pub rows: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Leftover inputs of an interrupted earlier compaction, deleted.
    pub leftovers_removed: usize,
    /// Files of an hour with others that stayed alone: merged with a neighbour they would pass
    /// `max_rows`.
    pub left_alone_for_size: usize,
    /// Partitions skipped because a crash left one of their segments incomplete; the engine's
    /// recovery must run first.
    pub partitions_skipped: Vec<(String, i32)>,
}

/// One archive file as compaction sees it.
#[derive(Debug, Clone)]
struct Input {
    path: PathBuf,
    name: String,
    first_offset: i64,
    last_offset: i64,
}

/// An order-independent fingerprint of a multiset of ids: equal inputs and output prove no row
/// was lost or duplicated (up to a 2^-64 collision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct IdFingerprint {
    pub(super) count: u64,
    sum: u64,
    xor_of_squares: u64,
}

impl IdFingerprint {
    pub(super) fn add_batch(
        &mut self,
        batch: &RecordBatch,
        id_column: &str,
    ) -> Result<(), ArchiveError> {
        let ids = batch
            .column_by_name(id_column)
            .and_then(|column| column.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| {
                ArchiveError::Arrow(arrow::error::ArrowError::SchemaError(format!(
                    "no text column {id_column}"
                )))
            })?;
        for id in ids.iter() {
            let hash = xxh3_64(id.unwrap_or("").as_bytes());
            self.count += 1;
            self.sum = self.sum.wrapping_add(hash);
            self.xor_of_squares ^= hash.wrapping_mul(hash).rotate_left(17);
        }
        Ok(())
    }
}

static COMPACT_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Compacts every closed hour of the archive; `progress` is told (done, total) groups.
pub fn compact(
    config: &ArchiveConfig,
    options: &CompactOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<CompactReport, ArchiveError> {
    let mut report = CompactReport::default();
    // Which segments are complete: all their files present, over both tables and all hours.
    let mut segment_files: BTreeMap<SegmentName, usize> = BTreeMap::new();
    let mut listing = Vec::new();
    for table in TABLES {
        for (dir, name) in archive_files(&config.root, table)? {
            if let Some(segment) = SegmentName::parse(&name) {
                *segment_files.entry(segment).or_default() += 1;
            }
            listing.push((table, dir, name));
        }
    }
    let compacted_names: Vec<(PathBuf, CompactedName)> = listing
        .iter()
        .filter_map(|(_, dir, name)| CompactedName::parse(name).map(|merged| (dir.clone(), merged)))
        .collect();
    let incomplete: BTreeSet<(String, i32)> = segment_files
        .iter()
        .filter(|(segment, present)| {
            **present < segment.files
                && !compacted_names
                    .iter()
                    .any(|(_, merged)| merged.covers(segment))
        })
        .map(|(segment, _)| (segment.topic.clone(), segment.partition))
        .collect();
    report.partitions_skipped = incomplete.iter().cloned().collect();

    // Groups: (table, hour directory, topic, partition) → inputs.
    let mut groups: BTreeMap<(&'static str, PathBuf, String, i32), Vec<Input>> = BTreeMap::new();
    for (table, dir, name) in &listing {
        let (topic, partition, first_offset, last_offset) =
            if let Some(segment) = SegmentName::parse(name) {
                // Leftover input of an interrupted compaction: its rows are in the compacted file.
                if compacted_names
                    .iter()
                    .any(|(merged_dir, merged)| merged_dir == dir && merged.covers(&segment))
                {
                    let path = dir.join(name);
                    fs::remove_file(&path).map_err(io_error(&path))?;
                    report.leftovers_removed += 1;
                    continue;
                }
                (
                    segment.topic,
                    segment.partition,
                    segment.first_offset,
                    segment.last_offset,
                )
            } else if let Some(merged) = CompactedName::parse(name) {
                (
                    merged.topic,
                    merged.partition,
                    merged.first_offset,
                    merged.last_offset,
                )
            } else {
                continue;
            };
        if incomplete.contains(&(topic.clone(), partition)) {
            continue;
        }
        let Some(hour_end) = hour_end_ms(dir) else {
            continue;
        };
        if hour_end > options.before_ms {
            continue;
        }
        groups
            .entry((*table, dir.clone(), topic, partition))
            .or_default()
            .push(Input {
                path: dir.join(name),
                name: name.clone(),
                first_offset,
                last_offset,
            });
    }
    groups.retain(|_, inputs| inputs.len() >= 2);
    let total = groups.len();
    for (done, ((table, dir, topic, partition), mut inputs)) in groups.into_iter().enumerate() {
        inputs.sort_by_key(|input| input.first_offset);
        for chunk in chunk_by_rows(inputs, options.max_rows)? {
            if chunk.len() < 2 {
                report.left_alone_for_size += chunk.len();
                continue;
            }
            let merged = merge(config, table, &dir, &topic, partition, &chunk)?;
            report.input_files += chunk.len();
            report.output_files += 1;
            report.rows += merged.rows;
            report.bytes_before += merged.bytes_before;
            report.bytes_after += merged.bytes_after;
        }
        report.groups += 1;
        progress(done + 1, total);
    }
    Ok(report)
}

/// The end (epoch ms) of the hour a `.../date=YYYY-MM-DD/hour=HH` directory holds.
fn hour_end_ms(dir: &Path) -> Option<i64> {
    let hour = dir.file_name()?.to_str()?.strip_prefix("hour=")?;
    let date = dir.parent()?.file_name()?.to_str()?.strip_prefix("date=")?;
    let start = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()?
        .and_hms_opt(hour.parse().ok()?, 0, 0)?
        .and_utc()
        .timestamp_millis();
    Some(start + MILLIS_PER_HOUR)
}

fn file_rows(path: &Path) -> Result<usize, ArchiveError> {
    let file = File::open(path).map_err(io_error(path))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| ArchiveError::Parquet {
            path: path.to_owned(),
            source,
        })?;
    Ok(usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// Consecutive runs of inputs (in offset order) of at most `max_rows` rows each.
fn chunk_by_rows(inputs: Vec<Input>, max_rows: usize) -> Result<Vec<Vec<Input>>, ArchiveError> {
    let mut chunks: Vec<Vec<Input>> = Vec::new();
    let mut current: Vec<Input> = Vec::new();
    let mut rows = 0;
    for input in inputs {
        let input_rows = file_rows(&input.path)?;
        if !current.is_empty() && rows + input_rows > max_rows {
            chunks.push(std::mem::take(&mut current));
            rows = 0;
        }
        rows += input_rows;
        current.push(input);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks)
}

struct Merged {
    rows: u64,
    bytes_before: u64,
    bytes_after: u64,
}

pub(super) fn read_all(path: &Path) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet_error = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_error)?
        .with_batch_size(65_536)
        .build()
        .map_err(parquet_error)?;
    reader
        .map(|batch| batch.map_err(ArchiveError::Arrow))
        .collect()
}

fn merge(
    config: &ArchiveConfig,
    table: &'static str,
    dir: &Path,
    topic: &str,
    partition: i32,
    inputs: &[Input],
) -> Result<Merged, ArchiveError> {
    let id_column = if table == ALERTS_TABLE {
        "alert_id"
    } else {
        "read_id"
    };
    let schema = if table == ALERTS_TABLE {
        super::ALERTS_SCHEMA.clone()
    } else {
        super::READS_SCHEMA.clone()
    };
    let mut expected = IdFingerprint::default();
    let mut batches = Vec::new();
    let mut bytes_before = 0;
    for input in inputs {
        bytes_before += fs::metadata(&input.path)
            .map_err(io_error(&input.path))?
            .len();
        for batch in read_all(&input.path)? {
            expected.add_batch(&batch, id_column)?;
            batches.push(conform(batch, &schema)?);
        }
    }
    let all = concat_batches(&schema, &batches)?;
    drop(batches);
    let order = sort_to_indices(
        all.column_by_name("observed_at")
            .ok_or_else(|| arrow::error::ArrowError::SchemaError("no observed_at".into()))?,
        None,
        None,
    )?;
    let sorted = take_record_batch(&all, &order)?;
    drop(all);

    let name = CompactedName {
        topic: topic.to_owned(),
        partition,
        first_offset: inputs.iter().map(|i| i.first_offset).min().unwrap_or(0),
        last_offset: inputs.iter().map(|i| i.last_offset).max().unwrap_or(0),
        inputs: inputs.len(),
    };
    let sequence = COMPACT_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    // Recovery deletes in-progress files of a partition by this prefix.
    let temp_path = dir.join(format!(
        ".{topic}-p{partition}-compact-{}-{sequence}{IN_PROGRESS_SUFFIX}",
        std::process::id()
    ));
    let parquet_error = |source| ArchiveError::Parquet {
        path: temp_path.clone(),
        source,
    };
    let file = File::create(&temp_path).map_err(io_error(&temp_path))?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        Some(config.writer_properties()?),
    )
    .map_err(parquet_error)?;
    for offset in (0..sorted.num_rows()).step_by(config.batch_rows.max(1)) {
        let length = config.batch_rows.min(sorted.num_rows() - offset);
        writer
            .write(&sorted.slice(offset, length))
            .map_err(parquet_error)?;
    }
    // The last input's record of its last message holds for the merged file, which ends there.
    let last_message = match inputs.iter().max_by_key(|input| input.last_offset) {
        Some(last) => super::footer_value(&last.path, metadata_keys::LAST_MESSAGE_XXH3)?,
        None => None,
    };
    let mut metadata = vec![
        (metadata_keys::TABLE, table.to_owned()),
        (metadata_keys::SOURCE_TOPIC, topic.to_owned()),
        (metadata_keys::SOURCE_PARTITION, partition.to_string()),
        (metadata_keys::FIRST_OFFSET, name.first_offset.to_string()),
        (metadata_keys::LAST_OFFSET, name.last_offset.to_string()),
        (
            metadata_keys::WRITER_VERSION,
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("platestream.rows", sorted.num_rows().to_string()),
        (
            metadata_keys::COMPACTED_FROM,
            inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    if let Some(fingerprint) = last_message {
        metadata.push((metadata_keys::LAST_MESSAGE_XXH3, fingerprint));
    }
    for (key, value) in metadata {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    writer.finish().map_err(parquet_error)?;
    let buffered = writer.inner_mut();
    buffered.flush().map_err(io_error(&temp_path))?;
    buffered
        .get_ref()
        .sync_all()
        .map_err(io_error(&temp_path))?;
    drop(writer);

    // Read the new file back: every id of the inputs exactly once, before any input goes.
    let mut written = IdFingerprint::default();
    for batch in read_all(&temp_path)? {
        written.add_batch(&batch, id_column)?;
    }
    if written != expected {
        let _ = fs::remove_file(&temp_path);
        return Err(ArchiveError::Io {
            path: temp_path,
            source: std::io::Error::other(format!(
                "compacted file does not hold exactly the inputs' rows ({} written, {} expected); inputs kept",
                written.count, expected.count
            )),
        });
    }
    let final_path = dir.join(name.file_name());
    fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))?;
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))?;
    for input in inputs {
        if input.path != final_path {
            fs::remove_file(&input.path).map_err(io_error(&input.path))?;
        }
    }
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir))?;
    let bytes_after = fs::metadata(&final_path)
        .map_err(io_error(&final_path))?
        .len();
    Ok(Merged {
        rows: expected.count,
        bytes_before,
        bytes_after,
    })
}

/// Files written before a column was appended to the schema lack it: fill it with nulls.
fn conform(
    batch: RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, ArchiveError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match batch.column_by_name(field.name()) {
            Some(column) => columns.push(column.clone()),
            None => columns.push(arrow::array::new_null_array(
                field.data_type(),
                batch.num_rows(),
            )),
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{recover_partition, test_read, SegmentWriter, READS_TABLE};
    use crate::read::PlateRead;
    use std::sync::Arc;

    fn read(offset: i64, observed: &str) -> PlateRead {
        test_read(offset, "ABC123", observed)
    }

    fn ids(root: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for (dir, name) in archive_files(root, READS_TABLE).unwrap() {
            if !name.ends_with(".parquet") {
                continue;
            }
            for batch in read_all(&dir.join(name)).unwrap() {
                let column = batch.column_by_name("read_id").unwrap();
                let column = column.as_any().downcast_ref::<StringArray>().unwrap();
                found.extend(column.iter().map(|id| id.unwrap().to_owned()));
            }
        }
        found.sort();
        found
    }

    #[test]
    fn compaction_keeps_every_row_once_and_recovery_still_knows_the_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        // Three segments; the middle one spans two hours, the last is in an open hour.
        let plan: [&[(i64, &str)]; 3] = [
            &[(0, "2026-11-24T17:10:00Z"), (1, "2026-11-24T17:20:00Z")],
            &[(2, "2026-11-24T17:05:00Z"), (3, "2026-11-24T18:01:00Z")],
            &[(4, "2026-11-24T19:30:00Z")],
        ];
        for segment_reads in plan {
            let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
            for (offset, time) in segment_reads {
                segment.cover_offset(*offset);
                segment.append_read(&read(*offset, time)).unwrap();
            }
            segment.commit().unwrap();
        }
        let before = ids(dir.path());
        let options = CompactOptions {
            before_ms: crate::read::Timestamp::parse_rfc3339("2026-11-24T19:00:00Z")
                .unwrap()
                .millis(),
            max_rows: 1_000,
        };
        // With room for fewer rows than two files hold, nothing merges, and the report says why.
        let too_small = CompactOptions {
            max_rows: 1,
            ..options.clone()
        };
        let nothing = compact(&config, &too_small, |_, _| {}).unwrap();
        assert_eq!((nothing.output_files, nothing.left_alone_for_size), (0, 2));
        assert_eq!(ids(dir.path()), before);
        let report = compact(&config, &options, |_, _| {}).unwrap();
        assert_eq!(
            (report.groups, report.input_files, report.output_files),
            (1, 2, 1)
        );
        assert_eq!(report.rows, 3);
        assert_eq!(ids(dir.path()), before);
        let merged = dir
            .path()
            .join("reads/date=2026-11-24/hour=17/reads-p0-0-3-c2.parquet");
        assert!(merged.exists());
        let times: Vec<i64> = read_all(&merged)
            .unwrap()
            .iter()
            .flat_map(|batch| {
                let column = batch.column_by_name("observed_at").unwrap();
                let column = column
                    .as_any()
                    .downcast_ref::<arrow::array::TimestampMillisecondArray>()
                    .unwrap();
                column.values().to_vec()
            })
            .collect();
        assert!(
            times.windows(2).all(|pair| pair[0] <= pair[1]),
            "sorted by time"
        );

        // The middle segment's hour-18 file is alone now, yet its segment is archived.
        let recovery = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(recovery.archived_through, Some(4));
        assert!(recovery.removed_incomplete.is_empty());
        assert_eq!(ids(dir.path()), before);

        // Compacting again changes nothing.
        let again = compact(&config, &options, |_, _| {}).unwrap();
        assert_eq!(again.output_files, 0);
        assert_eq!(ids(dir.path()), before);
    }

    /// A later run tells another incarnation of the partition by the message recorded at the
    /// archive's last offset: the record must survive compaction, and must not be made up for an
    /// offset whose message was not recorded.
    #[test]
    fn the_last_archived_message_is_known_to_recovery_before_and_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let fingerprint = |offset: i64| crate::archive::message_fingerprint(&offset.to_be_bytes());
        for segment_reads in [[0, 1], [2, 3]] {
            let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
            for offset in segment_reads {
                segment.cover_message(offset, fingerprint(offset));
                segment
                    .append_read(&read(offset, "2026-11-24T17:10:00Z"))
                    .unwrap();
            }
            segment.commit().unwrap();
        }
        let recovered = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(
            (recovered.archived_through, recovered.archived_last_message),
            (Some(3), Some(fingerprint(3)))
        );

        let options = CompactOptions {
            before_ms: crate::read::Timestamp::parse_rfc3339("2026-11-24T19:00:00Z")
                .unwrap()
                .millis(),
            max_rows: 1_000,
        };
        let report = compact(&config, &options, |_, _| {}).unwrap();
        assert_eq!(report.output_files, 1);
        let recovered = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(
            (recovered.archived_through, recovered.archived_last_message),
            (Some(3), Some(fingerprint(3)))
        );

        // A segment whose last offset came without its message (as `replay` covers lines).
        let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        segment.cover_message(4, fingerprint(4));
        segment
            .append_read(&read(4, "2026-11-24T19:10:00Z"))
            .unwrap();
        segment.cover_offset(5);
        segment.commit().unwrap();
        let recovered = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(
            (recovered.archived_through, recovered.archived_last_message),
            (Some(5), None)
        );
    }

    #[test]
    fn leftovers_of_an_interrupted_compaction_are_removed_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut kept = Vec::new();
        for offset in 0..3 {
            let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
            segment.cover_offset(offset);
            segment
                .append_read(&read(offset, "2026-11-24T17:10:00Z"))
                .unwrap();
            let report = segment.commit().unwrap();
            kept.push((
                report.files[0].path.clone(),
                fs::read(&report.files[0].path).unwrap(),
            ));
        }
        let options = CompactOptions {
            before_ms: i64::MAX,
            max_rows: 1_000,
        };
        compact(&config, &options, |_, _| {}).unwrap();
        // A crash after the rename, before the inputs were deleted: put two back.
        for (path, bytes) in &kept[..2] {
            fs::write(path, bytes).unwrap();
        }
        assert_eq!(ids(dir.path()).len(), 5);
        let recovery = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(recovery.archived_through, Some(2));
        assert_eq!(ids(dir.path()), vec!["r0", "r1", "r2"]);
    }
}
