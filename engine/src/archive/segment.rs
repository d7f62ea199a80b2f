//! One segment: the reads and alerts of one source partition between two checkpoints, spread over
//! one file per (table, observation hour).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::compute::{sort_to_indices, take_record_batch};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{
    hour_partition, io_error, metadata_keys, AlertColumns, ArchiveError, ReadColumns, SegmentName,
    TableColumns, ALERTS_TABLE, IN_PROGRESS_SUFFIX, READS_TABLE,
};
use crate::alert::Alert;
use crate::read::PlateRead;

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub root: PathBuf,
    /// Rows buffered per open file before they are sorted by time and encoded.
    pub batch_rows: usize,
    pub row_group_rows: usize,
    pub zstd_level: i32,
    /// Fault injection: the encoding thread sleeps this long per 1,000 rows, as a slow disk would
    /// stall the writer. Benchmarks and tests use it to show that the engine then consumes more slowly
    /// instead of buffering without limit.
    pub slow_sink: Option<Duration>,
}

impl ArchiveConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            batch_rows: 65_536,
            row_group_rows: 262_144,
            zstd_level: 3,
            slow_sink: None,
        }
    }

    pub(crate) fn writer_properties(&self) -> Result<WriterProperties, ArchiveError> {
        let level =
            ZstdLevel::try_new(self.zstd_level).map_err(|source| ArchiveError::Parquet {
                path: self.root.clone(),
                source,
            })?;
        // The plate bloom filter is sized for a full row group of distinct plates and parquet
        // folds it down, once the row group is written, to the smallest size that keeps
        // `PLATE_BLOOM_FPP` false positives: a small hour file gets a small filter. Sized for 65,536 plates instead, the
        // row groups of a busy hour (150,000+ reads, 100,000+ plates) had filters so full that
        // they ruled out 164 of 544 row groups for a plate seen in a few of them.
        let mut builder = WriterProperties::builder();
        for (columns, encoding) in [
            (DELTA_INTEGER_COLUMNS, Encoding::DELTA_BINARY_PACKED),
            (DELTA_STRING_COLUMNS, Encoding::DELTA_BYTE_ARRAY),
        ] {
            for column in columns {
                builder = builder
                    .set_column_dictionary_enabled(ColumnPath::from(*column), false)
                    .set_column_encoding(ColumnPath::from(*column), encoding);
            }
        }
        Ok(builder
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_column_bloom_filter_enabled(ColumnPath::from("plate_norm"), true)
            .set_column_bloom_filter_fpp(ColumnPath::from("plate_norm"), PLATE_BLOOM_FPP)
            .set_column_bloom_filter_max_ndv(
                ColumnPath::from("plate_norm"),
                self.row_group_rows as u64,
            )
            .build())
    }
}

/// Times and offsets that rise along the time-sorted rows: stored as bit-packed differences
/// (a few bits a row) instead of 8 bytes each.
const DELTA_INTEGER_COLUMNS: &[&str] = &[
    "observed_at",
    "ingested_at",
    "last_observed_at",
    "raised_at",
    "source_offset",
];

/// Read ids (time first, see `derive_read_id`) and image URIs: unique per row, so a dictionary
/// never pays; each is stored as the length of the prefix it shares with the row before (the
/// time, the URL's host and path) and the rest. With the delta-coded times above and time-first
/// ids: 87.6 -> 59.2 bytes per read (`platestream bench-queries --reads 6000000 --days 1`).
const DELTA_STRING_COLUMNS: &[&str] =
    &["read_id", "plate_crop_uri", "overview_uri", "duplicate_of"];

/// The plate bloom filter's false-positive target after folding. Commuters are in every hour's
/// files, so the filters of different hours share their bits, and an absent plate those bits
/// cover passes many hours' filters at once: at parquet's default of 5 % the bench's typical
/// plate passed 241 of a 100M-read archive's 544 row groups, though it was in at most 72. A lower
/// target makes that rarer, not impossible: on a 20M-read archive 19 absent plates passed 52 of
/// 3,800 row groups' filters at 5 % and 39 at 1 %, for 0.06 bytes more per read.
const PLATE_BLOOM_FPP: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub table: &'static str,
    pub rows: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    /// `None` when the segment saw no message.
    pub offsets: Option<(i64, i64)>,
    pub files: Vec<WrittenFile>,
}

impl SegmentReport {
    pub fn rows(&self, table: &str) -> usize {
        self.files
            .iter()
            .filter(|file| file.table == table)
            .map(|file| file.rows)
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|file| file.bytes).sum()
    }
}

/// The disk the slow-sink fault injection simulates.
static SLOW_DISK: Mutex<()> = Mutex::new(());

/// Names in-progress files uniquely even when a segment restarts at the same offset in one process.
static IN_PROGRESS_SEQUENCE: AtomicU64 = AtomicU64::new(0);

struct OpenFile<C: TableColumns> {
    directory: PathBuf,
    temp_path: PathBuf,
    encoder: BatchEncoder,
    pending: C,
    rows: usize,
}

impl<C: TableColumns> OpenFile<C> {
    fn create(
        config: &ArchiveConfig,
        properties: &WriterProperties,
        table: &str,
        hour: &str,
        temp_prefix: &str,
    ) -> Result<Self, ArchiveError> {
        let directory = config.root.join(table).join(hour);
        fs::create_dir_all(&directory).map_err(io_error(&directory))?;
        let sequence = IN_PROGRESS_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let temp_path = directory.join(format!(
            ".{temp_prefix}-{}-{sequence}{IN_PROGRESS_SUFFIX}",
            std::process::id()
        ));
        let file = File::create(&temp_path).map_err(io_error(&temp_path))?;
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            C::schema(),
            Some(properties.clone()),
        )
        .map_err(|source| ArchiveError::Parquet {
            path: temp_path.clone(),
            source,
        })?;
        let encoder = BatchEncoder::spawn(writer, temp_path.clone(), config.slow_sink)?;
        Ok(Self {
            directory,
            temp_path,
            encoder,
            pending: C::default(),
            rows: 0,
        })
    }

    fn push(&mut self, row: &C::Row, batch_rows: usize) -> Result<(), ArchiveError> {
        self.pending.push(row);
        self.rows += 1;
        if self.pending.len() >= batch_rows {
            self.hand_over_pending()?;
        }
        Ok(())
    }

    fn hand_over_pending(&mut self) -> Result<(), ArchiveError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.pending.finish()?;
        self.encoder.encode(batch)
    }

    /// Writes the footer and makes the temporary file durable; returns its size.
    fn finish(&mut self, metadata: &[KeyValue]) -> Result<u64, ArchiveError> {
        self.hand_over_pending()?;
        let mut writer = self.encoder.finish()?;
        for entry in metadata {
            writer.append_key_value_metadata(entry.clone());
        }
        let parquet_error = |source| ArchiveError::Parquet {
            path: self.temp_path.clone(),
            source,
        };
        writer.finish().map_err(parquet_error)?;
        let buffered = writer.inner_mut();
        buffered.flush().map_err(io_error(&self.temp_path))?;
        let file = buffered.get_ref();
        file.sync_all().map_err(io_error(&self.temp_path))?;
        Ok(file.metadata().map_err(io_error(&self.temp_path))?.len())
    }
}

type FileWriter = ArrowWriter<BufWriter<File>>;

/// Sorts, encodes and compresses a file's batches on a thread of its own. The thread that
/// consumes reads then only fills columns: alerts are not held up behind zstd, and a second core
/// does the archive's heaviest work. One batch may wait while one is encoded; a slower encoder
/// then makes `encode` wait, so a slow disk slows consumption instead of filling memory.
struct BatchEncoder {
    path: PathBuf,
    batches: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<FileWriter, ArchiveError>>>,
}

impl BatchEncoder {
    fn spawn(
        mut writer: FileWriter,
        path: PathBuf,
        slow_sink: Option<Duration>,
    ) -> Result<Self, ArchiveError> {
        let (batches, incoming) = sync_channel::<RecordBatch>(1);
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("archive-encoder".to_owned())
            .spawn(move || {
                for batch in incoming {
                    if let Some(delay) = slow_sink {
                        // One slow disk under every open file: their stalls queue up.
                        let _disk = SLOW_DISK.lock();
                        std::thread::sleep(delay * (batch.num_rows() / 1_000) as u32);
                    }
                    let batch = sort_by_observed_at(batch)?;
                    writer
                        .write(&batch)
                        .map_err(|source| ArchiveError::Parquet {
                            path: thread_path.clone(),
                            source,
                        })?;
                }
                Ok(writer)
            })
            .map_err(io_error(&path))?;
        Ok(Self {
            path,
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    fn encode(&mut self, batch: RecordBatch) -> Result<(), ArchiveError> {
        let sent = match &self.batches {
            Some(batches) => batches.send(batch).is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The thread stopped early: its error says why.
            self.finish().map(drop)
        }
    }

    /// Waits for every batch handed over to be written and takes the writer back.
    fn finish(&mut self) -> Result<FileWriter, ArchiveError> {
        self.batches = None;
        let thread = self.thread.take().ok_or_else(|| ArchiveError::Encoder {
            path: self.path.clone(),
            what: "was already finished",
        })?;
        thread.join().map_err(|_| ArchiveError::Encoder {
            path: self.path.clone(),
            what: "panicked",
        })?
    }
}

impl Drop for BatchEncoder {
    fn drop(&mut self) {
        // An abandoned file: let the thread see the end of its batches and stop before the file
        // is removed.
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn sort_by_observed_at(batch: RecordBatch) -> Result<RecordBatch, ArchiveError> {
    let Some(observed_at) = batch.column_by_name("observed_at") else {
        return Ok(batch);
    };
    let order = sort_to_indices(observed_at, None, None)?;
    Ok(take_record_batch(&batch, &order)?)
}

const MILLIS_PER_HOUR: i64 = 3_600_000;

/// Where a new file of a segment goes; only consulted when a row opens a new hour.
struct FileTarget<'a> {
    config: &'a ArchiveConfig,
    properties: &'a WriterProperties,
    table: &'static str,
    temp_prefix: (&'a str, i32, Option<(i64, i64)>),
}

/// Appends a row to the file of its observation hour, opening that file on the hour's first row.
/// Files are keyed by the hour number so the per-row path allocates nothing.
fn append_row<C: TableColumns>(
    files: &mut BTreeMap<i64, OpenFile<C>>,
    target: &FileTarget<'_>,
    observed_at_ms: i64,
    row: &C::Row,
) -> Result<(), ArchiveError> {
    let file = match files.entry(observed_at_ms.div_euclid(MILLIS_PER_HOUR)) {
        Entry::Occupied(open) => open.into_mut(),
        Entry::Vacant(vacant) => {
            let hour = hour_partition(vacant.key() * MILLIS_PER_HOUR);
            let (topic, partition, offsets) = target.temp_prefix;
            let first = offsets.map_or(0, |(first, _)| first);
            let file = OpenFile::create(
                target.config,
                target.properties,
                target.table,
                &hour,
                &format!("{topic}-p{partition}-{first}"),
            )?;
            vacant.insert(file)
        }
    };
    file.push(row, target.config.batch_rows)
}

/// The reads and alerts of one source partition between two checkpoints.
pub struct SegmentWriter {
    config: Arc<ArchiveConfig>,
    properties: WriterProperties,
    topic: String,
    partition: i32,
    offsets: Option<(i64, i64)>,
    /// The highest offset covered with its message's fingerprint, and that fingerprint.
    last_message: Option<(i64, u64)>,
    /// Open files by observation hour (epoch hours).
    reads: BTreeMap<i64, OpenFile<ReadColumns>>,
    alerts: BTreeMap<i64, OpenFile<AlertColumns>>,
    rows: usize,
    started: Instant,
}

impl SegmentWriter {
    pub fn new(
        config: Arc<ArchiveConfig>,
        topic: &str,
        partition: i32,
    ) -> Result<Self, ArchiveError> {
        let properties = config.writer_properties()?;
        Ok(Self {
            config,
            properties,
            topic: topic.to_owned(),
            partition,
            offsets: None,
            last_message: None,
            reads: BTreeMap::new(),
            alerts: BTreeMap::new(),
            rows: 0,
            started: Instant::now(),
        })
    }

    /// Records that the message at `offset` is covered by this segment, whatever became of it
    /// (archived, dead-lettered, suppressed): committing the segment commits the offset.
    pub fn cover_offset(&mut self, offset: i64) {
        self.offsets = Some(match self.offsets {
            None => (offset, offset),
            Some((first, last)) => (first.min(offset), last.max(offset)),
        });
    }

    /// [`Self::cover_offset`] for a message from Kafka, with its payload's
    /// [`super::message_fingerprint`]: the segment's footer records the last one, so that a later
    /// run can tell whether the partition's message at that offset is still this one.
    pub fn cover_message(&mut self, offset: i64, fingerprint: u64) {
        self.cover_offset(offset);
        if self.last_message.is_none_or(|(last, _)| offset >= last) {
            self.last_message = Some((offset, fingerprint));
        }
    }

    pub fn append_read(&mut self, read: &PlateRead) -> Result<(), ArchiveError> {
        let target = FileTarget {
            config: &self.config,
            properties: &self.properties,
            table: READS_TABLE,
            temp_prefix: (&self.topic, self.partition, self.offsets),
        };
        append_row(&mut self.reads, &target, read.observed_at.millis(), read)?;
        self.rows += 1;
        Ok(())
    }

    pub fn append_alert(&mut self, alert: &Alert) -> Result<(), ArchiveError> {
        let target = FileTarget {
            config: &self.config,
            properties: &self.properties,
            table: ALERTS_TABLE,
            temp_prefix: (&self.topic, self.partition, self.offsets),
        };
        append_row(&mut self.alerts, &target, alert.observed_at.millis(), alert)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows (reads and alerts) appended so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn offsets(&self) -> Option<(i64, i64)> {
        self.offsets
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Makes the segment durable: every file finished and fsynced under its temporary name, then all
    /// renamed to their final names, then their directories fsynced. Only after this returns may
    /// the offsets be committed.
    pub fn commit(mut self) -> Result<SegmentReport, ArchiveError> {
        let Some((first_offset, last_offset)) = self.offsets else {
            return Ok(SegmentReport::default());
        };
        let name = SegmentName {
            topic: self.topic.clone(),
            partition: self.partition,
            first_offset,
            last_offset,
            files: self.reads.len() + self.alerts.len(),
        };
        let last_message = self.last_message;
        let base_metadata = |table: &str, rows: usize| {
            let mut entries = vec![
                (metadata_keys::TABLE, table.to_owned()),
                (metadata_keys::SOURCE_TOPIC, name.topic.clone()),
                (metadata_keys::SOURCE_PARTITION, name.partition.to_string()),
                (metadata_keys::FIRST_OFFSET, first_offset.to_string()),
                (metadata_keys::LAST_OFFSET, last_offset.to_string()),
                (metadata_keys::SEGMENT_FILES, name.files.to_string()),
                (
                    metadata_keys::WRITER_VERSION,
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
                ("platestream.rows", rows.to_string()),
            ];
            if let Some((_, fingerprint)) =
                last_message.filter(|&(offset, _)| offset == last_offset)
            {
                entries.push((
                    metadata_keys::LAST_MESSAGE_XXH3,
                    format!("{fingerprint:016x}"),
                ));
            }
            entries
                .into_iter()
                .map(|(key, value)| KeyValue::new(key.to_owned(), value))
                .collect::<Vec<_>>()
        };

        let mut finished: Vec<(PathBuf, PathBuf, &'static str, usize, u64)> = Vec::new();
        for file in self.reads.values_mut() {
            let bytes = file.finish(&base_metadata(READS_TABLE, file.rows))?;
            finished.push((
                file.temp_path.clone(),
                file.directory.clone(),
                READS_TABLE,
                file.rows,
                bytes,
            ));
        }
        for file in self.alerts.values_mut() {
            let bytes = file.finish(&base_metadata(ALERTS_TABLE, file.rows))?;
            finished.push((
                file.temp_path.clone(),
                file.directory.clone(),
                ALERTS_TABLE,
                file.rows,
                bytes,
            ));
        }

        let mut report = SegmentReport {
            offsets: Some((first_offset, last_offset)),
            files: Vec::with_capacity(finished.len()),
        };
        let mut directories = BTreeSet::new();
        for (temp_path, directory, table, rows, bytes) in finished {
            let final_path = directory.join(name.file_name());
            fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))?;
            // The hour and date directories may be new: their parents must record them too.
            directories.insert(directory.clone());
            if let Some(date_dir) = directory.parent() {
                directories.insert(date_dir.to_owned());
                if let Some(table_dir) = date_dir.parent() {
                    directories.insert(table_dir.to_owned());
                }
            }
            report.files.push(WrittenFile {
                path: final_path,
                table,
                rows,
                bytes,
            });
        }
        for directory in directories {
            sync_directory(&directory)?;
        }
        self.reads.clear();
        self.alerts.clear();
        Ok(report)
    }

    /// Drops the segment: its temporary files are deleted and nothing of it reaches the archive.
    /// Used when the partition is taken away from this process before the segment was committed.
    pub fn abandon(mut self) {
        self.remove_temp_files();
    }

    fn remove_temp_files(&mut self) {
        let temp_paths = self
            .reads
            .values()
            .map(|file| file.temp_path.clone())
            .chain(self.alerts.values().map(|file| file.temp_path.clone()))
            .collect::<Vec<_>>();
        self.reads.clear();
        self.alerts.clear();
        for path in temp_paths {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove abandoned archive file");
            }
        }
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // A segment dropped without commit (an error unwound past it) leaves nothing behind.
        self.remove_temp_files();
    }
}

pub(super) fn sync_directory(directory: &Path) -> Result<(), ArchiveError> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(directory))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::recover_partition;
    use crate::read::Timestamp;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn read_at(offset: i64, observed: &str) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "read_id": format!("r{offset}"), "vendor": "t", "reader_id": "dc-r-001",
            "observed_at": observed, "plate": "ABC123", "plate_norm": "ABC123",
            "confidence": 0.9, "lat": 38.9, "lon": -77.0,
            "vehicle": {"make": {"value": "Honda", "confidence": 0.8}},
            "embedding": [0.5, 0.25]
        }))
        .unwrap();
        read.source = Some(crate::read::SourcePosition {
            topic: "reads".into(),
            partition: 0,
            offset,
        });
        read
    }

    fn read_back(path: &Path) -> (usize, Vec<i64>) {
        let file = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut rows = 0;
        let mut times = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            rows += batch.num_rows();
            let column = batch
                .column_by_name("observed_at")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::TimestampMillisecondArray>()
                .unwrap();
            times.extend(column.values().iter().copied());
        }
        (rows, times)
    }

    #[test]
    fn a_committed_segment_is_one_file_per_hour_sorted_by_time_and_recoverable() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        let times = [
            "2026-11-24T17:59:00Z",
            "2026-11-24T18:00:01Z",
            "2026-11-24T17:01:00Z",
        ];
        for (offset, time) in times.iter().enumerate() {
            segment.cover_offset(offset as i64 + 10);
            segment
                .append_read(&read_at(offset as i64 + 10, time))
                .unwrap();
        }
        segment.cover_offset(13); // a dead-lettered message: covered, not archived
        let report = segment.commit().unwrap();
        assert_eq!(report.offsets, Some((10, 13)));
        assert_eq!(report.files.len(), 2);
        assert_eq!(report.rows(READS_TABLE), 3);
        let hour_17 = &report.files[0].path;
        assert!(
            hour_17.ends_with("reads/date=2026-11-24/hour=17/reads-p0-10-13-n2.parquet"),
            "{hour_17:?}"
        );
        let (rows, observed) = read_back(hour_17);
        assert_eq!(rows, 2);
        assert!(
            observed.windows(2).all(|pair| pair[0] <= pair[1]),
            "sorted by time"
        );
        assert_eq!(
            observed[0],
            Timestamp::parse_rfc3339("2026-11-24T17:01:00Z")
                .unwrap()
                .millis()
        );

        let recovery = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(recovery.archived_through, Some(13));
        assert_eq!(
            recover_partition(dir.path(), "reads", 1)
                .unwrap()
                .archived_through,
            None
        );
    }

    /// Archives one hour of `plates` reads, each of a different plate `P00000`, `P00001`, ...;
    /// returns the first row group's plate bloom filter and its size in bytes.
    fn plate_bloom_filter(plates: i64) -> (parquet::bloom_filter::Sbbf, Option<i32>) {
        let plates: Vec<String> = (0..plates).map(|plate| format!("P{plate:06}")).collect();
        plate_bloom_filters(&[plates]).remove(0)
    }

    /// Archives one segment with the reads of `hours[h]` in hour 17 + h (one file and row group
    /// each); returns each hour's plate bloom filter and its size in bytes.
    fn plate_bloom_filters(
        hours: &[Vec<String>],
    ) -> Vec<(parquet::bloom_filter::Sbbf, Option<i32>)> {
        use parquet::file::properties::ReaderProperties;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::file::serialized_reader::ReadOptionsBuilder;

        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        let mut offset = 0;
        for (hour, plates) in hours.iter().enumerate() {
            let time = format!("2026-11-24T{:02}:30:00Z", 17 + hour);
            for plate in plates {
                let mut read = read_at(offset, &time);
                read.plate = plate.clone();
                read.plate_norm = plate.clone();
                segment.cover_offset(offset);
                segment.append_read(&read).unwrap();
                offset += 1;
            }
        }
        let mut files = segment.commit().unwrap().files;
        files.retain(|file| file.table == READS_TABLE);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let options = || {
            ReadOptionsBuilder::new()
                .with_reader_properties(
                    ReaderProperties::builder()
                        .set_read_bloom_filter(true)
                        .build(),
                )
                .build()
        };
        files
            .iter()
            .map(|written| {
                let file = File::open(&written.path).unwrap();
                let reader = SerializedFileReader::new_with_options(file, options()).unwrap();
                let column = reader
                    .metadata()
                    .file_metadata()
                    .schema_descr()
                    .columns()
                    .iter()
                    .position(|column| column.path().string() == "plate_norm")
                    .unwrap();
                let bytes = reader
                    .metadata()
                    .row_group(0)
                    .column(column)
                    .bloom_filter_length();
                let row_group = reader.get_row_group(0).unwrap();
                let filter = row_group.get_column_bloom_filter(column).unwrap().clone();
                (filter, bytes)
            })
            .collect()
    }

    fn false_positives(filter: &parquet::bloom_filter::Sbbf) -> usize {
        (0..1_000)
            .filter(|absent| filter.check(format!("Q{absent:06}").as_str()))
            .count()
    }

    #[test]
    fn a_small_hour_gets_a_small_plate_bloom_filter() {
        let (filter, bytes) = plate_bloom_filter(2_000);
        // Sized for a full row group (262,144 plates: 512 KiB at 1 %), folded down to 2,000
        // plates: 4 KiB and a 16-byte header.
        assert!(bytes.is_some_and(|bytes| bytes <= 4_112), "{bytes:?}");
        assert!((0..2_000).all(|plate| filter.check(format!("P{plate:06}").as_str())));
        let false_positives = false_positives(&filter);
        assert!(
            false_positives < 25,
            "{false_positives} of 1,000 absent plates"
        );
    }

    #[test]
    fn a_busy_hour_plate_bloom_filter_still_rules_out_absent_plates() {
        // More distinct plates than a filter sized for 65,536 holds at 5 %: that one let 14 % of
        // absent plates through, and queries read most row groups of a busy archive.
        let (filter, _) = plate_bloom_filter(100_000);
        assert!(filter.check("P099999"));
        let false_positives = false_positives(&filter);
        assert!(
            false_positives < 25,
            "{false_positives} of 1,000 absent plates"
        );
    }

    #[test]
    fn plates_read_every_hour_do_not_let_an_absent_plate_through_every_hour() {
        // Commuters: the same plates every hour, beside fewer seen in that hour only. Every
        // hour's filter then holds the commuters' bits in the same places, so an absent plate
        // those bits cover passes every hour's filter at once, and a lookup reads every row
        // group for it. At 5 %, 25 of these 4,000 plates passed all six filters.
        let commuters: Vec<String> = (0..48_000).map(|plate| format!("C{plate:06}")).collect();
        let hours: Vec<Vec<String>> = (0..6)
            .map(|hour| {
                let own = (0..12_000).map(move |plate| format!("H{hour}{plate:05}"));
                commuters.iter().cloned().chain(own).collect()
            })
            .collect();
        let filters = plate_bloom_filters(&hours);
        assert_eq!(filters.len(), 6);
        let absent = 4_000;
        let passes: Vec<usize> = (0..absent)
            .map(|plate| {
                let plate = format!("Q{plate:06}");
                filters
                    .iter()
                    .filter(|(filter, _)| filter.check(plate.as_str()))
                    .count()
            })
            .collect();
        let rate = passes.iter().sum::<usize>() as f64 / (absent * filters.len()) as f64;
        let everywhere = passes.iter().filter(|hits| **hits == filters.len()).count();
        assert!(
            rate < 0.02,
            "{:.2} % of (plate, hour) pairs passed",
            rate * 100.0
        );
        assert!(
            everywhere * 200 < absent,
            "{everywhere} of {absent} absent plates passed every hour's filter"
        );
    }

    #[test]
    fn a_segment_missing_a_file_is_removed_on_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut first = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        first.cover_offset(0);
        first
            .append_read(&read_at(0, "2026-11-24T17:00:00Z"))
            .unwrap();
        first.commit().unwrap();

        let mut second = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        for (offset, time) in [(1, "2026-11-24T17:00:00Z"), (2, "2026-11-24T18:00:00Z")] {
            second.cover_offset(offset);
            second.append_read(&read_at(offset, time)).unwrap();
        }
        let report = second.commit().unwrap();
        // A crash between the two renames leaves one file of two.
        fs::remove_file(&report.files[1].path).unwrap();

        let recovery = recover_partition(dir.path(), "reads", 0).unwrap();
        assert_eq!(recovery.archived_through, Some(0));
        assert_eq!(
            recovery.removed_incomplete,
            vec![report.files[0].path.clone()]
        );
        assert!(!report.files[0].path.exists());
    }

    #[test]
    fn an_abandoned_segment_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut segment = SegmentWriter::new(config, "reads", 0).unwrap();
        segment.cover_offset(0);
        segment
            .append_read(&read_at(0, "2026-11-24T17:00:00Z"))
            .unwrap();
        segment.abandon();
        let hour_dir = dir.path().join("reads/date=2026-11-24/hour=17");
        assert_eq!(fs::read_dir(hour_dir).unwrap().count(), 0);
    }
}
