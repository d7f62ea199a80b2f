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

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{concat_batches, lexsort_to_indices, take_record_batch, SortColumn};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::metadata::KeyValue;
use parquet::file::reader::{FileReader, SerializedFileReader};

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
/// told (done, total) days to build. A day's reads are sorted in memory (about 300 bytes a read).
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
        let (rows, bytes) = write_copy(config, &date, &sources)?;
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
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(path)(error)),
    };
    let reader = SerializedFileReader::new(file).map_err(|source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    })?;
    let listed = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|pairs| pairs.iter().find(|pair| pair.key == SOURCES_KEY))
        .and_then(|pair| pair.value.clone());
    Ok(listed.map(|text| {
        text.split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }))
}

/// The copy's columns of one `reads` file, with its hour; columns the file predates are null.
fn read_source(source: &Source, schema: &SchemaRef) -> Result<Vec<RecordBatch>, ArchiveError> {
    let parquet_error = |error| ArchiveError::Parquet {
        path: source.path.clone(),
        source: error,
    };
    let file = File::open(&source.path).map_err(io_error(&source.path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), BY_PLATE_COLUMNS);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(parquet_error)?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch?;
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
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(batches)
}

/// Writes one day's copy under an in-progress name, checks it holds every source read exactly
/// once, and renames it over the old copy; returns (rows, bytes).
fn write_copy(
    config: &ArchiveConfig,
    date: &str,
    sources: &[Source],
) -> Result<(u64, u64), ArchiveError> {
    let schema = by_plate_schema();
    let mut expected = IdFingerprint::default();
    let mut batches = Vec::new();
    for source in sources {
        for batch in read_source(source, &schema)? {
            expected.add_batch(&batch, "read_id")?;
            batches.push(batch);
        }
    }
    let all = concat_batches(&schema, &batches)?;
    drop(batches);
    let column = |name: &str| {
        all.column_by_name(name)
            .cloned()
            .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no {name}")))
    };
    let order = lexsort_to_indices(
        &[
            SortColumn {
                values: column("plate_norm")?,
                options: None,
            },
            SortColumn {
                values: column("observed_at")?,
                options: None,
            },
            SortColumn {
                values: column("read_id")?,
                options: None,
            },
        ],
        None,
    )?;

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
    let written = write_sorted(config, &temp_path, &all, &order, sources);
    let result = written.and_then(|()| {
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

fn write_sorted(
    config: &ArchiveConfig,
    path: &Path,
    all: &RecordBatch,
    order: &UInt32Array,
    sources: &[Source],
) -> Result<(), ArchiveError> {
    let parquet_error = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        all.schema(),
        Some(config.writer_properties()?),
    )
    .map_err(parquet_error)?;
    let step = config.batch_rows.max(1);
    for offset in (0..order.len()).step_by(step) {
        let indices = order.slice(offset, step.min(order.len() - offset));
        writer
            .write(&take_record_batch(all, &indices)?)
            .map_err(parquet_error)?;
    }
    let metadata = [
        (metadata_keys::TABLE, BY_PLATE_TABLE.to_owned()),
        (
            metadata_keys::WRITER_VERSION,
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("platestream.rows", all.num_rows().to_string()),
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
    use crate::archive::{compact, CompactOptions, SegmentWriter};
    use crate::read::PlateRead;
    use arrow::array::{Array, TimestampMillisecondArray};

    fn read(offset: i64, plate: &str, observed: &str) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "read_id": format!("r{offset}"), "vendor": "t", "reader_id": "dc-r-001",
            "observed_at": observed, "plate": plate, "plate_norm": plate,
            "confidence": 0.9, "lat": 38.9, "lon": -77.0, "heading": 90.0
        }))
        .unwrap();
        read.source = Some(crate::read::SourcePosition {
            topic: "reads".into(),
            partition: 0,
            offset,
        });
        read
    }

    fn write_segment(config: &Arc<ArchiveConfig>, reads: &[(i64, &str, &str)]) {
        let mut segment = SegmentWriter::new(Arc::clone(config), "reads", 0).unwrap();
        for (offset, plate, time) in reads {
            segment.cover_offset(*offset);
            segment.append_read(&read(*offset, plate, time)).unwrap();
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
        // The 25th has not ended by this time: only the 24th is copied.
        let options = PlateCopyOptions {
            before_ms: millis("2026-11-25T12:00:00Z"),
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

        // Nothing changed: nothing is rewritten.
        let again = build_plate_copies(&config, &options, |_, _| {}).unwrap();
        assert_eq!((again.days_written, again.days_current), (0, 1));

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
