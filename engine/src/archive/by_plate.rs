//! The plate-ordered copy of closed days (`reads_by_plate`): what a plate lookup shows of each
//! read, one file per day, sorted by plate and then time.
//!
//! The `reads` files are sorted by time, so one vehicle's reads lie in most hours of the archive
//! and a plate lookup decodes the plate column of every row group that holds it (or that its bloom
//! filter cannot rule out). In the copy a plate's reads of one day are neighbours: min/max
//! statistics and the page index leave one page per column.
//!
//! A copy lists the `reads` files it was built from in its footer (`platestream.by_plate.sources`).
//! It is *current* while that list equals the day's files; a file added, merged by compaction or
//! removed by recovery since makes it stale, and queries read that day from `reads` until the copy
//! is built again. So the copy never hides a read and never shows one twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow::compute::kernels::boolean::and;
use arrow::compute::kernels::cmp::{gt_eq, lt};
use arrow::compute::{
    concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch, SortColumn,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::metadata::KeyValue;

use super::compact::{read_all, IdFingerprint};
use super::{io_error, metadata_keys, ArchiveConfig, ArchiveError, READS_SCHEMA, READS_TABLE};

pub const BY_PLATE_TABLE: &str = "reads_by_plate";
/// The one file of a day: `reads_by_plate/date=YYYY-MM-DD/reads-by-plate.parquet`.
pub const BY_PLATE_FILE: &str = "reads-by-plate.parquet";
/// Footer key: the day's `reads` files the copy holds, as `hour=HH/{name}`, comma-separated.
pub const SOURCES_KEY: &str = "platestream.by_plate.sources";
/// The `reads` columns the copy keeps, in the `reads` order; the copy adds `hour` (`HH`, the
/// partition the read came from) so the same time filters apply to both tables.
pub const BY_PLATE_COLUMNS: [&str; 17] = [
    "read_id",
    "vendor",
    "reader_id",
    "camera_id",
    "observed_at",
    "plate",
    "plate_norm",
    "jurisdiction",
    "confidence",
    "lat",
    "lon",
    "heading",
    "make",
    "model",
    "color",
    "body_type",
    "motion",
];
const MILLIS_PER_DAY: i64 = 86_400_000;

static COPY_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The copy's schema: [`BY_PLATE_COLUMNS`] as `reads` declares them, then `hour`.
pub fn by_plate_schema() -> SchemaRef {
    let mut fields: Vec<Field> = BY_PLATE_COLUMNS
        .iter()
        .filter_map(|name| READS_SCHEMA.field_with_name(name).ok().cloned())
        .collect();
    fields.push(Field::new("hour", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

#[derive(Debug, Clone)]
pub struct PlateCopyOptions {
    /// Only days that ended at or before this time (epoch ms) get a copy: a day still open would
    /// go stale with its next file.
    pub before_ms: i64,
    /// Rows sorted in memory at once (about 300 bytes each). A larger day is sorted in ranges of
    /// plates, one pass over its files per range.
    pub max_sort_rows: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlateCopyReport {
    /// Days whose copy was (re)built.
    pub days_written: usize,
    /// Days whose copy was already current.
    pub days_current: usize,
    /// Rows written into the rebuilt copies.
    pub rows: u64,
    /// Bytes of every current copy after the run.
    pub bytes: u64,
}

/// Builds or rebuilds the copy of every closed day whose copy is missing or stale; `progress` is
/// told (done, total) days to build.
pub fn build_plate_copies(
    config: &ArchiveConfig,
    options: &PlateCopyOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<PlateCopyReport, ArchiveError> {
    let mut report = PlateCopyReport::default();
    let mut to_build = Vec::new();
    for date in reads_dates(&config.root)? {
        let Some(day_end) = day_start_ms(&date).map(|start| start + MILLIS_PER_DAY) else {
            continue;
        };
        if day_end > options.before_ms {
            continue;
        }
        remove_abandoned_copies(
            &config
                .root
                .join(BY_PLATE_TABLE)
                .join(format!("date={date}")),
        )?;
        let sources = day_sources(&config.root, &date)?;
        if sources.is_empty() {
            continue;
        }
        let copy = copy_path(&config.root, &date);
        if copy_sources(&copy)?.as_ref() == Some(&source_names(&sources)) {
            report.days_current += 1;
            report.bytes += fs::metadata(&copy).map_err(io_error(&copy))?.len();
            continue;
        }
        to_build.push((date, sources));
    }
    let total = to_build.len();
    for (done, (date, sources)) in to_build.into_iter().enumerate() {
        let (rows, bytes) = write_copy(config, &date, &sources, options.max_sort_rows)?;
        report.days_written += 1;
        report.rows += rows;
        report.bytes += bytes;
        progress(done + 1, total);
    }
    Ok(report)
}

/// The days (`YYYY-MM-DD`) whose copy holds exactly the day's current `reads` files.
pub fn current_plate_copies(root: &Path) -> Result<BTreeSet<String>, ArchiveError> {
    let mut current = BTreeSet::new();
    for date in sub_names(&root.join(BY_PLATE_TABLE), "date=")? {
        let Some(sources) = copy_sources(&copy_path(root, &date))? else {
            continue;
        };
        if sources == source_names(&day_sources(root, &date)?) {
            current.insert(date);
        }
    }
    Ok(current)
}

fn copy_path(root: &Path, date: &str) -> PathBuf {
    root.join(BY_PLATE_TABLE)
        .join(format!("date={date}"))
        .join(BY_PLATE_FILE)
}

fn day_start_ms(date: &str) -> Option<i64> {
    Some(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp_millis(),
    )
}

fn reads_dates(root: &Path) -> Result<Vec<String>, ArchiveError> {
    sub_names(&root.join(READS_TABLE), "date=")
}

/// The names after `prefix` of `dir`'s sub-directories that start with it, sorted; none when
/// `dir` does not exist.
fn sub_names(dir: &Path, prefix: &str) -> Result<Vec<String>, ArchiveError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if !entry.file_type().map_err(io_error(dir))?.is_dir() {
            continue;
        }
        if let Some(name) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// One `reads` file of a day.
struct Source {
    /// `HH`.
    hour: String,
    name: String,
    path: PathBuf,
}

/// The day's finished `reads` files (in-progress files are hidden and end otherwise), sorted.
fn day_sources(root: &Path, date: &str) -> Result<Vec<Source>, ArchiveError> {
    let day = root.join(READS_TABLE).join(format!("date={date}"));
    let mut sources = Vec::new();
    for hour in sub_names(&day, "hour=")? {
        let dir = day.join(format!("hour={hour}"));
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !name.ends_with(".parquet") {
                continue;
            }
            sources.push(Source {
                hour: hour.clone(),
                path: dir.join(&name),
                name,
            });
        }
    }
    sources.sort_by(|a, b| (&a.hour, &a.name).cmp(&(&b.hour, &b.name)));
    Ok(sources)
}

fn source_names(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .map(|source| format!("hour={}/{}", source.hour, source.name))
        .collect()
}

/// The sources a copy's footer lists; `None` when there is no copy or it is not one.
fn copy_sources(path: &Path) -> Result<Option<Vec<String>>, ArchiveError> {
    let listed = match super::footer_value(path, SOURCES_KEY) {
        Err(ArchiveError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        listed => listed?,
    };
    Ok(listed.map(|text| {
        text.split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }))
}

/// `columns` of one `reads` file (those it has).
fn read_source(source: &Source, columns: &[&str]) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet_error = |error| ArchiveError::Parquet {
        path: source.path.clone(),
        source: error,
    };
    let file = File::open(&source.path).map_err(io_error(&source.path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(parquet_error)?;
    reader
        .map(|batch| batch.map_err(ArchiveError::Arrow))
        .collect()
}

/// A batch of a `reads` file in the copy's schema: its hour added, columns the file predates null.
fn conform(
    batch: RecordBatch,
    source: &Source,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArchiveError> {
    let rows = batch.num_rows();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| match field.name().as_str() {
            "hour" => Arc::new(StringArray::from(vec![source.hour.as_str(); rows])) as ArrayRef,
            name => batch
                .column_by_name(name)
                .cloned()
                .unwrap_or_else(|| new_null_array(field.data_type(), rows)),
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The first two characters of a plate: the unit plate ranges are made of.
fn plate_prefix(plate: &str) -> &str {
    let end = plate
        .char_indices()
        .nth(2)
        .map_or(plate.len(), |(index, _)| index);
    &plate[..end]
}

/// One pass over the day's files: the fingerprint of every read id and the rows per plate prefix.
fn survey(sources: &[Source]) -> Result<(IdFingerprint, BTreeMap<String, usize>), ArchiveError> {
    let mut fingerprint = IdFingerprint::default();
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for source in sources {
        for batch in read_source(source, &["read_id", "plate_norm"])? {
            fingerprint.add_batch(&batch, "read_id")?;
            let plates = text_column(&batch, "plate_norm")?;
            for plate in plates.iter().flatten() {
                let prefix = plate_prefix(plate);
                match prefixes.get_mut(prefix) {
                    Some(rows) => *rows += 1,
                    None => {
                        prefixes.insert(prefix.to_owned(), 1);
                    }
                }
            }
        }
    }
    Ok((fingerprint, prefixes))
}

fn text_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ArchiveError> {
    batch
        .column_by_name(name)
        .and_then(|column| column.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            ArchiveError::Arrow(arrow::error::ArrowError::SchemaError(format!(
                "no text column {name}"
            )))
        })
}

/// Consecutive prefix ranges `[from, until)` of at most `max_rows` rows each (a single prefix
/// with more stays alone); `None` is open.
fn plate_ranges(
    prefixes: &BTreeMap<String, usize>,
    max_rows: usize,
) -> Vec<(Option<String>, Option<String>)> {
    let mut starts: Vec<String> = Vec::new();
    let mut rows = 0;
    for (prefix, count) in prefixes {
        if starts.is_empty() || rows + count > max_rows {
            starts.push(prefix.clone());
            rows = 0;
        }
        rows += count;
    }
    (0..starts.len().max(1))
        .map(|index| {
            let from = (index > 0).then(|| starts[index].clone());
            (from, starts.get(index + 1).cloned())
        })
        .collect()
}

/// Deletes the in-progress copies a `compact` that died left in a day's directory (a day's copy is
/// as large as the day): those whose writer, named in the file name, is no longer running. Where
/// running processes cannot be told (no `/proc`), nothing is deleted.
fn remove_abandoned_copies(dir: &Path) -> Result<(), ArchiveError> {
    if !Path::new("/proc/self").exists() {
        return Ok(());
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let writer = name
            .strip_prefix(".reads-by-plate-")
            .filter(|rest| rest.ends_with(".parquet.inprogress"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(writer) = writer else {
            continue;
        };
        if writer != std::process::id() && !Path::new("/proc").join(writer.to_string()).exists() {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Writes one day's copy under an in-progress name, range of plates by range, checks it holds
/// every read of the day's files exactly once, and renames it over the old copy; returns (rows,
/// bytes).
fn write_copy(
    config: &ArchiveConfig,
    date: &str,
    sources: &[Source],
    max_sort_rows: usize,
) -> Result<(u64, u64), ArchiveError> {
    let (expected, prefixes) = survey(sources)?;
    let dir = config
        .root
        .join(BY_PLATE_TABLE)
        .join(format!("date={date}"));
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let temp_path = dir.join(format!(
        ".reads-by-plate-{}-{}.parquet.inprogress",
        std::process::id(),
        COPY_SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let ranges = plate_ranges(&prefixes, max_sort_rows.max(1));
    let result = write_sorted(config, &temp_path, sources, &ranges).and_then(|()| {
        let mut found = IdFingerprint::default();
        for batch in read_all(&temp_path)? {
            found.add_batch(&batch, "read_id")?;
        }
        if found == expected {
            Ok(())
        } else {
            Err(ArchiveError::Io {
                path: temp_path.clone(),
                source: std::io::Error::other(format!(
                    "plate-ordered copy does not hold exactly the day's reads ({} written, {} expected)",
                    found.count, expected.count
                )),
            })
        }
    });
    if let Err(error) = result {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    let final_path = dir.join(BY_PLATE_FILE);
    fs::rename(&temp_path, &final_path).map_err(io_error(&final_path))?;
    File::open(&dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(&dir))?;
    let bytes = fs::metadata(&final_path)
        .map_err(io_error(&final_path))?
        .len();
    Ok((expected.count, bytes))
}

/// The day's rows whose plate lies in `[from, until)`, sorted by plate, time and read id.
fn sorted_range(
    sources: &[Source],
    schema: &SchemaRef,
    (from, until): &(Option<String>, Option<String>),
) -> Result<RecordBatch, ArchiveError> {
    let mut batches = Vec::new();
    for source in sources {
        for batch in read_source(source, &BY_PLATE_COLUMNS)? {
            let batch = conform(batch, source, schema)?;
            let plates = text_column(&batch, "plate_norm")?;
            let mut keep = BooleanArray::from(vec![true; batch.num_rows()]);
            if let Some(from) = from {
                keep = and(
                    &keep,
                    &gt_eq(plates, &StringArray::new_scalar(from.as_str()))?,
                )?;
            }
            if let Some(until) = until {
                keep = and(
                    &keep,
                    &lt(plates, &StringArray::new_scalar(until.as_str()))?,
                )?;
            }
            batches.push(filter_record_batch(&batch, &keep)?);
        }
    }
    let all = concat_batches(schema, &batches)?;
    drop(batches);
    let sort_column = |name: &str| {
        all.column_by_name(name)
            .cloned()
            .map(|values| SortColumn {
                values,
                options: None,
            })
            .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no {name}")))
    };
    let order = lexsort_to_indices(
        &[
            sort_column("plate_norm")?,
            sort_column("observed_at")?,
            sort_column("read_id")?,
        ],
        None,
    )?;
    Ok(take_record_batch(&all, &order)?)
}

fn write_sorted(
    config: &ArchiveConfig,
    path: &Path,
    sources: &[Source],
    ranges: &[(Option<String>, Option<String>)],
) -> Result<(), ArchiveError> {
    let parquet_error = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let schema = by_plate_schema();
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        Some(config.writer_properties()?),
    )
    .map_err(parquet_error)?;
    let mut rows = 0;
    for range in ranges {
        let sorted = sorted_range(sources, &schema, range)?;
        rows += sorted.num_rows();
        let step = config.batch_rows.max(1);
        for offset in (0..sorted.num_rows()).step_by(step) {
            let length = step.min(sorted.num_rows() - offset);
            writer
                .write(&sorted.slice(offset, length))
                .map_err(parquet_error)?;
        }
    }
    let metadata = [
        (metadata_keys::TABLE, BY_PLATE_TABLE.to_owned()),
        (
            metadata_keys::WRITER_VERSION,
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("platestream.rows", rows.to_string()),
        (SOURCES_KEY, source_names(sources).join(",")),
    ];
    for (key, value) in metadata {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    writer.finish().map_err(parquet_error)?;
    let buffered = writer.inner_mut();
    buffered.flush().map_err(io_error(path))?;
    buffered.get_ref().sync_all().map_err(io_error(path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{compact, test_read, CompactOptions, SegmentWriter};
    use arrow::array::{Array, TimestampMillisecondArray};

    fn write_segment(config: &Arc<ArchiveConfig>, reads: &[(i64, &str, &str)]) {
        let mut segment = SegmentWriter::new(Arc::clone(config), "reads", 0).unwrap();
        for (offset, plate, time) in reads {
            segment.cover_offset(*offset);
            segment
                .append_read(&test_read(*offset, plate, time))
                .unwrap();
        }
        segment.commit().unwrap();
    }

    /// (plate_norm, observed_at, read_id, hour) of every row of a copy, in file order.
    fn copy_rows(path: &Path) -> Vec<(String, i64, String, String)> {
        let mut rows = Vec::new();
        for batch in read_all(path).unwrap() {
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (plates, ids, hours) = (text("plate_norm"), text("read_id"), text("hour"));
            let times = batch.column_by_name("observed_at").unwrap();
            let times = times
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap();
            for row in 0..batch.num_rows() {
                rows.push((
                    plates.value(row).to_owned(),
                    times.value(row),
                    ids.value(row).to_owned(),
                    hours.value(row).to_owned(),
                ));
            }
        }
        rows
    }

    fn millis(text: &str) -> i64 {
        crate::read::Timestamp::parse_rfc3339(text)
            .unwrap()
            .millis()
    }

    #[test]
    fn a_closed_day_is_copied_sorted_by_plate_and_a_changed_day_goes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        write_segment(
            &config,
            &[
                (0, "XYZ999", "2026-11-24T17:10:00Z"),
                (1, "ABC123", "2026-11-24T17:20:00Z"),
                (2, "ABC123", "2026-11-24T09:05:00Z"),
            ],
        );
        write_segment(
            &config,
            &[
                (3, "MNO456", "2026-11-24T23:59:00Z"),
                (4, "ABC123", "2026-11-25T00:01:00Z"),
            ],
        );
        // The 25th has not ended by this time: only the 24th is copied. One plate prefix at a
        // time is sorted in memory.
        let options = PlateCopyOptions {
            before_ms: millis("2026-11-25T12:00:00Z"),
            max_sort_rows: 1,
        };
        let report = build_plate_copies(&config, &options, |_, _| {}).unwrap();
        assert_eq!((report.days_written, report.rows), (1, 4));
        let copy = copy_path(dir.path(), "2026-11-24");
        let rows = copy_rows(&copy);
        let keys: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|(plate, _, id, hour)| (plate.as_str(), id.as_str(), hour.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("ABC123", "r2", "09"),
                ("ABC123", "r1", "17"),
                ("MNO456", "r3", "23"),
                ("XYZ999", "r0", "17")
            ]
        );
        assert_eq!(
            current_plate_copies(dir.path()).unwrap(),
            BTreeSet::from(["2026-11-24".to_owned()])
        );
        assert!(!copy_path(dir.path(), "2026-11-25").exists());

        // Nothing changed: nothing is rewritten. What a killed compact left half-written is
        // removed (its writer is gone); what a running one writes stays.
        let day_dir = copy.parent().unwrap().to_owned();
        let abandoned = day_dir.join(".reads-by-plate-4000000000-0.parquet.inprogress");
        let running = day_dir.join(format!(
            ".reads-by-plate-{}-99.parquet.inprogress",
            std::process::id()
        ));
        std::fs::write(&abandoned, b"half a copy").unwrap();
        std::fs::write(&running, b"being written").unwrap();
        let again = build_plate_copies(&config, &options, |_, _| {}).unwrap();
        assert_eq!((again.days_written, again.days_current), (0, 1));
        assert!(!abandoned.exists());
        assert!(running.exists());
        std::fs::remove_file(&running).unwrap();

        // A late read of the 24th arrives in a new file: the copy no longer holds the whole day.
        write_segment(&config, &[(5, "ABC123", "2026-11-24T17:30:00Z")]);
        assert!(current_plate_copies(dir.path()).unwrap().is_empty());
        let rebuilt = build_plate_copies(&config, &options, |_, _| {}).unwrap();
        assert_eq!((rebuilt.days_written, rebuilt.rows), (1, 5));
        let ids: Vec<String> = copy_rows(&copy).into_iter().map(|row| row.2).collect();
        assert_eq!(ids, ["r2", "r1", "r5", "r3", "r0"]);

        // Compaction renames the day's files: stale again until rebuilt, same rows after.
        compact(
            &config,
            &CompactOptions {
                before_ms: i64::MAX,
                max_rows: 1_000,
            },
            |_, _| {},
        )
        .unwrap();
        assert!(current_plate_copies(dir.path()).unwrap().is_empty());
        let all_days = PlateCopyOptions {
            before_ms: i64::MAX,
            max_sort_rows: 1_000_000,
        };
        let after = build_plate_copies(&config, &all_days, |_, _| {}).unwrap();
        assert_eq!((after.days_written, after.rows), (2, 6));
        let ids: Vec<String> = copy_rows(&copy).into_iter().map(|row| row.2).collect();
        assert_eq!(ids, ["r2", "r1", "r5", "r3", "r0"]);
        assert_eq!(current_plate_copies(dir.path()).unwrap().len(), 2);
        let times: Vec<i64> = copy_rows(&copy).into_iter().map(|row| row.1).collect();
        assert_eq!(times[0], millis("2026-11-24T09:05:00Z"));
    }

    #[test]
    fn plate_ranges_cover_every_plate_once_within_the_row_budget() {
        let prefixes: BTreeMap<String, usize> =
            [("", 1), ("1", 1), ("1A", 3), ("7X", 9), ("AB", 2)]
                .into_iter()
                .map(|(prefix, rows)| (prefix.to_owned(), rows))
                .collect();
        let ranges = plate_ranges(&prefixes, 5);
        assert_eq!(
            ranges,
            [
                (None, Some("7X".to_owned())),
                (Some("7X".to_owned()), Some("AB".to_owned())),
                (Some("AB".to_owned()), None)
            ]
        );
        let in_range = |plate: &str| {
            ranges
                .iter()
                .filter(|(from, until)| {
                    from.as_deref().is_none_or(|from| plate >= from)
                        && until.as_deref().is_none_or(|until| plate < until)
                })
                .count()
        };
        for plate in [
            "", "1", "1A", "1A2345", "1Z9", "7", "7X", "7X2A", "7Y", "AB", "ZZZZZZZ",
        ] {
            assert_eq!(in_range(plate), 1, "{plate}");
        }
        assert_eq!(plate_ranges(&BTreeMap::new(), 5), [(None, None)]);
        assert_eq!(plate_prefix("7X2A"), "7X");
        assert_eq!(plate_prefix("7"), "7");
    }

    #[test]
    fn the_copy_declares_the_reads_types_and_the_hour() {
        let schema = by_plate_schema();
        for name in BY_PLATE_COLUMNS {
            assert_eq!(
                schema.field_with_name(name).unwrap(),
                READS_SCHEMA.field_with_name(name).unwrap()
            );
        }
        assert_eq!(schema.field(schema.fields().len() - 1).name(), "hour");
    }
}
