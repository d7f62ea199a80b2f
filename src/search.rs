//! `platestream search`: the reads in a Parquet archive whose appearance is nearest a vector or
//! another read, filtered by time and area: the appearance index (`RecentAppearanceIndex`:
//! inverted lists under an HNSW graph of centroids) built from the archive's `embedding` column,
//! or an exact scan with `--exact`.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Float64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use platestream_engine::appearance::{
    exact_nearest, AppearanceIndexConfig, AppearanceQuery, RecentAppearanceIndex,
};
use platestream_engine::archive::READS_TABLE;
use platestream_engine::description::{parse_reference_vectors, Area};
use platestream_engine::{PlateRead, Timestamp};
use serde::Serialize;

use crate::archive_stats::parquet_files;

/// What to search for and where.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub archive: PathBuf,
    pub vector_file: Option<PathBuf>,
    pub read_id: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub near: Option<Area>,
    pub k: usize,
    pub exact: bool,
    pub show_progress: bool,
}

/// One read found.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub similarity: f32,
    pub read_id: String,
    pub observed_at: Timestamp,
    pub reader_id: String,
    pub plate: String,
    pub jurisdiction: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// `38.9,-77.03`.
pub fn parse_point(text: &str) -> Result<(f64, f64)> {
    let (lat, lon) = text
        .split_once(',')
        .with_context(|| format!("--near {text:?}: give LAT,LON"))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .with_context(|| format!("--near {text:?}: bad latitude"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .with_context(|| format!("--near {text:?}: bad longitude"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        bail!("--near {text:?}: latitude must be in -90..90 and longitude in -180..180");
    }
    Ok((lat, lon))
}

/// `500m`, `2km`, `750` (meters).
pub fn parse_radius(text: &str) -> Result<f64> {
    let trimmed = text.trim().to_ascii_lowercase();
    let (number, scale) = if let Some(km) = trimmed.strip_suffix("km") {
        (km, 1000.0)
    } else if let Some(m) = trimmed.strip_suffix('m') {
        (m, 1.0)
    } else {
        (trimmed.as_str(), 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("--radius {text:?}: give meters (500m) or kilometers (2km)"))?;
    if !(value > 0.0 && value.is_finite()) {
        bail!("--radius {text:?} must be positive");
    }
    Ok(value * scale)
}

/// Whether a `date=YYYY-MM-DD/hour=HH` directory can hold reads in the range.
fn hour_may_overlap(path: &Path, from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
    let text = path.to_string_lossy();
    let date = text
        .split('/')
        .find_map(|part| part.strip_prefix("date="))
        .map(str::to_owned);
    let hour = text
        .split('/')
        .find_map(|part| part.strip_prefix("hour="))
        .and_then(|hour| hour.parse::<u32>().ok());
    let (Some(date), Some(hour)) = (date, hour) else {
        return true;
    };
    let Some(start) = Timestamp::parse_rfc3339(&format!("{date}T{hour:02}:00:00Z")) else {
        return true;
    };
    let end = Timestamp(start.millis() + 3_600_000);
    from.is_none_or(|from| end > from) && to.is_none_or(|to| start < to)
}

struct ArchivedRead {
    read: PlateRead,
    embedding: Vec<f32>,
}

fn column_index(batch: &RecordBatch, name: &str) -> Result<usize> {
    batch
        .schema()
        .index_of(name)
        .with_context(|| format!("the archive's reads have no `{name}` column"))
}

fn reads_of_batch(batch: &RecordBatch, out: &mut Vec<ArchivedRead>) -> Result<()> {
    let strings = |name: &str| -> Result<_> {
        Ok(batch
            .column(column_index(batch, name)?)
            .as_string_opt::<i32>()
            .with_context(|| format!("column `{name}` is not text"))?
            .clone())
    };
    let read_id = strings("read_id")?;
    let vendor = strings("vendor")?;
    let reader_id = strings("reader_id")?;
    let plate = strings("plate")?;
    let plate_norm = strings("plate_norm")?;
    let jurisdiction = strings("jurisdiction")?;
    let observed_at = batch
        .column(column_index(batch, "observed_at")?)
        .as_primitive_opt::<TimestampMillisecondType>()
        .context("column `observed_at` is not a millisecond timestamp")?
        .clone();
    let confidence = batch
        .column(column_index(batch, "confidence")?)
        .as_primitive_opt::<Float32Type>()
        .context("column `confidence` is not float32")?
        .clone();
    let coordinate = |name: &str| -> Result<_> {
        Ok(batch
            .column(column_index(batch, name)?)
            .as_primitive_opt::<Float64Type>()
            .with_context(|| format!("column `{name}` is not float64"))?
            .clone())
    };
    let lat = coordinate("lat")?;
    let lon = coordinate("lon")?;
    let embeddings = batch
        .column(column_index(batch, "embedding")?)
        .as_list_opt::<i32>()
        .context("column `embedding` is not a list")?
        .clone();
    let text = |array: &arrow::array::StringArray, row: usize| {
        (!array.is_null(row)).then(|| array.value(row).to_owned())
    };
    for row in 0..batch.num_rows() {
        if embeddings.is_null(row) {
            continue;
        }
        let values = embeddings.value(row);
        let Some(values) = values.as_primitive_opt::<Float32Type>() else {
            continue;
        };
        let embedding: Vec<f32> = values.iter().map(|value| value.unwrap_or(0.0)).collect();
        let read: PlateRead = PlateRead {
            read_id: text(&read_id, row).unwrap_or_default(),
            vendor: text(&vendor, row).unwrap_or_default(),
            reader_id: text(&reader_id, row).unwrap_or_default(),
            camera_id: None,
            observed_at: Timestamp(observed_at.value(row)),
            ingested_at: None,
            plate: text(&plate, row).unwrap_or_default(),
            plate_norm: text(&plate_norm, row).unwrap_or_default(),
            jurisdiction: text(&jurisdiction, row),
            confidence: confidence.value(row),
            lat: (!lat.is_null(row)).then(|| lat.value(row)),
            lon: (!lon.is_null(row)).then(|| lon.value(row)),
            heading: None,
            motion: None,
            vehicle: Default::default(),
            images: Default::default(),
            embedding: None,
            source: None,
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        };
        out.push(ArchivedRead { read, embedding });
    }
    Ok(())
}

/// Every read with an embedding in the archive's hours that may overlap the range.
fn load_reads(options: &SearchOptions) -> Result<Vec<ArchivedRead>> {
    let files: Vec<PathBuf> = parquet_files(&options.archive.join(READS_TABLE))?
        .into_iter()
        .filter(|path| {
            options.read_id.is_some() || hour_may_overlap(path, options.from, options.to)
        })
        .collect();
    if files.is_empty() {
        bail!(
            "no archived reads under {} (expected {}/date=.../hour=.../*.parquet)",
            options.archive.display(),
            options.archive.join(READS_TABLE).display()
        );
    }
    let progress = if options.show_progress {
        let bar = ProgressBar::new(files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{spinner} reading {pos}/{len} files {wide_bar} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    const COLUMNS: [&str; 11] = [
        "read_id",
        "vendor",
        "reader_id",
        "plate",
        "plate_norm",
        "jurisdiction",
        "observed_at",
        "confidence",
        "lat",
        "lon",
        "embedding",
    ];
    let mut reads = Vec::new();
    for path in files {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("reading {}", path.display()))?;
        let roots: Vec<usize> = COLUMNS
            .iter()
            .filter_map(|name| builder.schema().index_of(name).ok())
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .build()
            .with_context(|| format!("reading {}", path.display()))?;
        for batch in reader {
            let batch = batch.with_context(|| format!("decoding {}", path.display()))?;
            reads_of_batch(&batch, &mut reads)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(reads)
}

fn query_vectors(options: &SearchOptions, reads: &[ArchivedRead]) -> Result<Vec<Vec<f32>>> {
    match (&options.vector_file, &options.read_id) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --vector {}", path.display()))?;
            parse_reference_vectors(&text).with_context(|| format!("--vector {}", path.display()))
        }
        (None, Some(read_id)) => {
            let found = reads
                .iter()
                .find(|archived| &archived.read.read_id == read_id)
                .with_context(|| {
                    format!("--read-id {read_id}: no archived read with an embedding has this id")
                })?;
            Ok(vec![found.embedding.clone()])
        }
        _ => bail!("give exactly one of --vector FILE and --read-id ID"),
    }
}

fn in_range(options: &SearchOptions, read: &PlateRead) -> bool {
    options.from.is_none_or(|from| read.observed_at >= from)
        && options.to.is_none_or(|to| read.observed_at < to)
        && options.near.is_none_or(|area| match (read.lat, read.lon) {
            (Some(lat), Some(lon)) => area.contains(lat, lon),
            _ => false,
        })
}

fn hit(read: &PlateRead, similarity: f32) -> SearchHit {
    SearchHit {
        similarity,
        read_id: read.read_id.clone(),
        observed_at: read.observed_at,
        reader_id: read.reader_id.clone(),
        plate: read.plate.clone(),
        jurisdiction: read.jurisdiction.clone(),
        lat: read.lat,
        lon: read.lon,
    }
}

/// The `k` nearest reads, most similar first (the query read itself left out).
pub fn search_archive(options: &SearchOptions) -> Result<Vec<SearchHit>> {
    if options.k == 0 {
        bail!("-k 0: ask for at least one read");
    }
    let reads = load_reads(options)?;
    let queries = query_vectors(options, &reads)?;
    let dim = queries.first().map_or(0, Vec::len);
    // A vector of another model's length compares with nothing; an empty answer would read as
    // "no such vehicle".
    if !reads.is_empty() && !reads.iter().any(|archived| archived.embedding.len() == dim) {
        let lengths: std::collections::BTreeSet<usize> = reads
            .iter()
            .map(|archived| archived.embedding.len())
            .collect();
        let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
        bail!(
            "the query vector has {dim} values, but the archive's embeddings have {}",
            lengths.join(" or ")
        );
    }
    // One more than asked, in case the query read is among them.
    let k = options.k + usize::from(options.read_id.is_some());
    let mut hits: Vec<SearchHit> = Vec::new();
    if options.exact {
        for query in &queries {
            let candidates = reads
                .iter()
                .enumerate()
                .filter(|(_, archived)| in_range(options, &archived.read))
                .map(|(index, archived)| (index, archived.embedding.as_slice()));
            for (index, similarity) in exact_nearest(query, candidates, k) {
                hits.push(hit(&reads[index].read, similarity));
            }
        }
    } else {
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            // An archive search keeps everything it loaded.
            horizon_secs: u64::MAX / 2000,
            max_points: usize::MAX,
            ef_search: 128,
            ..AppearanceIndexConfig::default()
        });
        let progress = if options.show_progress {
            let bar = ProgressBar::new(reads.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} indexing {pos}/{len} reads {wide_bar} {per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let mut skipped = 0u64;
        // Only reads in the asked place and time are indexed: the index's own filters are applied
        // to the candidates its graph walk finds, so a narrow area left better matches unfound.
        for archived in reads
            .iter()
            .filter(|archived| in_range(options, &archived.read))
        {
            let mut read = archived.read.clone();
            read.embedding = Some(archived.embedding.clone());
            if index.insert(&read).is_err() {
                skipped += 1;
            }
            progress.inc(1);
        }
        progress.finish_and_clear();
        // Inserts only queue the reads for the index's builder threads; searching now would
        // scan most of them exactly.
        index.wait_until_indexed();
        if skipped > 0 {
            tracing::warn!(
                skipped,
                dim,
                "archived embeddings of another dimension (or all zeros) were left out"
            );
        }
        for query in &queries {
            let found = index.search(&AppearanceQuery {
                vector: query,
                k,
                from: options.from,
                to: options.to,
                near: options.near,
                min_similarity: None,
            });
            hits.extend(found.iter().map(|found| hit(&found.read, found.similarity)));
        }
    }
    hits.retain(|found| options.read_id.as_deref() != Some(found.read_id.as_str()));
    hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    let mut seen = std::collections::HashSet::new();
    hits.retain(|found| seen.insert(found.read_id.clone()));
    hits.truncate(options.k);
    Ok(hits)
}

pub fn print_hits(hits: &[SearchHit], json: bool) -> Result<()> {
    if json {
        for found in hits {
            println!("{}", serde_json::to_string(found)?);
        }
        return Ok(());
    }
    println!(
        "{:>4}  {:>10}  {:<24}  {:<14}  {:<10}  {:<6}  {:<22}  read_id",
        "rank", "similarity", "observed_at", "reader", "plate", "state", "position"
    );
    if hits.is_empty() {
        println!("(no archived read with an embedding in the time range and area)");
    }
    for (rank, found) in hits.iter().enumerate() {
        let position = match (found.lat, found.lon) {
            (Some(lat), Some(lon)) => format!("{lat:.5},{lon:.5}"),
            _ => "-".to_owned(),
        };
        println!(
            "{:>4}  {:>10.4}  {:<24}  {:<14}  {:<10}  {:<6}  {:<22}  {}",
            rank + 1,
            found.similarity,
            found.observed_at.to_string(),
            found.reader_id,
            found.plate,
            found.jurisdiction.as_deref().unwrap_or("-"),
            position,
            found.read_id
        );
    }
    Ok(())
}
