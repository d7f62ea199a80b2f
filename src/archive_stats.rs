//! Reads an archive's Parquet footers back: what a user can check without trusting our counters.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use parquet::file::reader::{FileReader, SerializedFileReader};
use platestream_engine::archive::{ALERTS_TABLE, READS_TABLE};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveStats {
    pub files: u64,
    pub read_rows: u64,
    pub alert_rows: u64,
    pub bytes: u64,
}

/// Every finished `.parquet` file below `dir`.
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let entries = match std::fs::read_dir(&next) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error).with_context(|| format!("listing {}", next.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn archive_stats(dir: &Path) -> Result<ArchiveStats> {
    let mut stats = ArchiveStats::default();
    for table in [READS_TABLE, ALERTS_TABLE] {
        for path in parquet_files(&dir.join(table))? {
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            stats.bytes += file.metadata()?.len();
            let reader = SerializedFileReader::new(file)
                .with_context(|| format!("reading {}", path.display()))?;
            let rows = reader.metadata().file_metadata().num_rows() as u64;
            stats.files += 1;
            if table == READS_TABLE {
                stats.read_rows += rows;
            } else {
                stats.alert_rows += rows;
            }
        }
    }
    Ok(stats)
}

/// Compressed bytes of each column over every file below `dir`, largest first: where an
/// archive's bytes per read go.
pub fn column_bytes(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut totals: Vec<(String, u64)> = Vec::new();
    for path in parquet_files(dir)? {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let reader = SerializedFileReader::new(file)
            .with_context(|| format!("reading {}", path.display()))?;
        for row_group in reader.metadata().row_groups() {
            for column in row_group.columns() {
                let name = column.column_path().string();
                let bytes = u64::try_from(column.compressed_size()).unwrap_or(0);
                match totals.iter_mut().find(|(known, _)| *known == name) {
                    Some((_, total)) => *total += bytes,
                    None => totals.push((name, bytes)),
                }
            }
        }
    }
    totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(totals)
}
