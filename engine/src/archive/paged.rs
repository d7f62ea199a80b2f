//! The alerts that paged officers recently, read back from the archive: a restarted engine feeds
//! them to its alert policy so that a restart does not page officers again about a vehicle they
//! were paged about minutes ago.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::{hour_partition, io_error, ArchiveError, ALERTS_TABLE, PARQUET_SUFFIX};
use crate::alert_policy::PageRecord;

const MILLIS_PER_HOUR: i64 = 3_600_000;
const ALERT_JSON_COLUMN: &str = "alert_json";

/// What [`recent_pages`] read. Unreadable files are reported, never fatal: one costs at most a
/// repeated page.
#[derive(Debug, Default)]
pub struct RecentPagesReport {
    /// Alerts that paged (not suppressed) observed in the range asked for.
    pub pages: usize,
    pub files_read: usize,
    pub unreadable_files: Vec<ArchiveError>,
    /// Rows whose `alert_json` is not an alert this version understands.
    pub unreadable_rows: usize,
}

/// Calls `on_page` with each archived alert observed from `since_ms` to `until_ms` (epoch
/// milliseconds, inclusive) that paged someone. Only the hour partitions of that range are opened,
/// and of each file only its `alert_json` column.
pub fn recent_pages(
    root: &Path,
    since_ms: i64,
    until_ms: i64,
    mut on_page: impl FnMut(&PageRecord),
) -> Result<RecentPagesReport, ArchiveError> {
    let mut report = RecentPagesReport::default();
    let mut hour = since_ms.div_euclid(MILLIS_PER_HOUR);
    while hour <= until_ms.div_euclid(MILLIS_PER_HOUR) {
        let dir = root
            .join(ALERTS_TABLE)
            .join(hour_partition(hour * MILLIS_PER_HOUR));
        for path in finished_files(&dir)? {
            let read = read_pages(&path, |page| {
                if !page.suppressed && (since_ms..=until_ms).contains(&page.observed_at.millis()) {
                    report.pages += 1;
                    on_page(page);
                }
            });
            match read {
                Ok(unreadable_rows) => {
                    report.files_read += 1;
                    report.unreadable_rows += unreadable_rows;
                }
                Err(error) => report.unreadable_files.push(error),
            }
        }
        hour += 1;
    }
    Ok(report)
}

/// The archive files of one hour directory, not those still being written.
fn finished_files(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(dir)(error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Files being written are `.{name}.parquet.inprogress`.
        if name.ends_with(PARQUET_SUFFIX) && !name.starts_with('.') {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Calls `on_page` with every alert of one file; returns the rows that were not alerts.
fn read_pages(path: &Path, mut on_page: impl FnMut(&PageRecord)) -> Result<usize, ArchiveError> {
    let parquet_error = |source| ArchiveError::Parquet {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let schema_error = |what: String| {
        ArchiveError::Arrow(arrow::error::ArrowError::SchemaError(format!(
            "{}: {what}",
            path.display()
        )))
    };
    let column = builder
        .schema()
        .index_of(ALERT_JSON_COLUMN)
        .map_err(|error| schema_error(error.to_string()))?;
    let projection = ProjectionMask::roots(builder.parquet_schema(), [column]);
    let reader = builder
        .with_projection(projection)
        .build()
        .map_err(parquet_error)?;
    let mut unreadable_rows = 0;
    for batch in reader {
        let batch = batch?;
        let Some(json) = batch.column(0).as_any().downcast_ref::<StringArray>() else {
            return Err(schema_error(format!(
                "{ALERT_JSON_COLUMN} is not a string column"
            )));
        };
        for row in 0..json.len() {
            if json.is_null(row) {
                unreadable_rows += 1;
                continue;
            }
            match serde_json::from_str::<PageRecord>(json.value(row)) {
                Ok(page) => on_page(&page),
                Err(_) => unreadable_rows += 1,
            }
        }
    }
    Ok(unreadable_rows)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert_policy::tests::alerts_for;
    use crate::alert_policy::{AlertPolicy, ListPolicy};
    use crate::archive::{ArchiveConfig, SegmentWriter};
    use crate::hotlist::HotlistEntry;
    use crate::normalize::normalize_read;
    use crate::read::{PlateRead, Timestamp};
    use crate::store::HotlistStore;

    const START: &str = "2026-11-24T17:00:00Z";

    fn millis(rfc3339: &str) -> i64 {
        Timestamp::parse_rfc3339(rfc3339).unwrap().millis()
    }

    fn read_at(reader: &str, plate: &str, minutes: i64) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": reader, "observed_at": millis(START) + minutes * 60_000,
            "plate": plate, "confidence": 0.9
        }))
        .unwrap();
        normalize_read(&mut read, Timestamp(millis(START) + 7_200_000)).unwrap();
        read
    }

    #[test]
    fn a_restarted_policy_remembers_the_archived_pages_and_skips_the_rest() {
        let store = HotlistStore::default();
        store.set_policy(ListPolicy::named("stolen_vehicles"));
        for plate in ["ABC123", "XYZ789"] {
            store.upsert(Arc::new(
                HotlistEntry::new("stolen_vehicles", plate).unwrap(),
            ));
        }
        let before_restart = AlertPolicy::new(600);
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(ArchiveConfig::new(dir.path()));
        let mut segment = SegmentWriter::new(Arc::clone(&config), "reads", 0).unwrap();
        let reads = [
            read_at("r1", "ABC123", 10),   // paged
            read_at("r2", "ABC123", 12),   // suppressed: paged two minutes ago
            read_at("r3", "XYZ789", -125), // paged, but two hours before the range asked for
        ];
        let mut paged_ids = Vec::new();
        for (offset, read) in reads.iter().enumerate() {
            segment.cover_offset(offset as i64);
            segment.append_read(read).unwrap();
            for alert in alerts_for(&store, &before_restart, read) {
                if !alert.suppressed {
                    paged_ids.push(alert.alert_id.clone());
                }
                segment.append_alert(&alert).unwrap();
            }
        }
        assert_eq!(paged_ids.len(), 2);
        segment.commit().unwrap();
        // What a crash can leave beside finished files: neither stops the others being read.
        let hour_17 = dir.path().join("alerts/date=2026-11-24/hour=17");
        fs::write(hour_17.join("reads-p1-0-0-n1.parquet"), b"not parquet").unwrap();
        fs::write(hour_17.join(".reads-p2-0-0-n1.parquet.inprogress"), b"half").unwrap();

        let after_restart = AlertPolicy::new(600);
        let mut found = Vec::new();
        let report = recent_pages(
            dir.path(),
            millis(START) - 3_600_000,
            millis(START) + 3_600_000,
            |page| {
                found.push(page.clone());
                after_restart.remember_paged(page);
            },
        )
        .unwrap();
        let first = &reads[0];
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].read_id.as_str(), found[0].observed_at),
            (first.read_id.as_str(), first.observed_at)
        );
        assert_eq!(report.pages, 1);
        assert_eq!(report.files_read, 1);
        assert_eq!(
            report.unreadable_files.len(),
            1,
            "{:?}",
            report.unreadable_files
        );
        assert_eq!(report.unreadable_rows, 0);

        let later = alerts_for(&store, &after_restart, &read_at("r4", "ABC123", 15));
        assert!(later[0].suppressed, "paged 5 minutes before the restart");
        let redelivered = alerts_for(&store, &after_restart, first);
        assert!(
            !redelivered[0].suppressed,
            "the read that paged pages again"
        );
        let much_later = alerts_for(&store, &after_restart, &read_at("r5", "ABC123", 25));
        assert!(!much_later[0].suppressed, "outside the 10-minute window");
        let other_plate = alerts_for(&store, &after_restart, &read_at("r6", "XYZ789", 16));
        assert!(!other_plate[0].suppressed, "its page was not asked for");
    }
}
