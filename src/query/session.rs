//! A DataFusion session over one archive: the `reads` and `alerts` tables (hive partitions
//! `date`/`hour`) and the registry's `readers` and `cameras`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context, Result};
use arrow::array::{Float64Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use platestream_engine::archive::{
    by_plate_schema, current_plate_copies, ALERTS_SCHEMA, ALERTS_TABLE, BY_PLATE_FILE,
    BY_PLATE_TABLE, READS_SCHEMA, READS_TABLE,
};
use platestream_engine::registry::RegistryEntry;

/// Whether the archive's layout is used to skip data; off only to measure what it saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruning {
    On,
    /// Every file, row group and page is read and filtered in memory.
    FullScan,
}

pub struct ArchiveSession {
    pub context: SessionContext,
    pub pruning: Pruning,
    archive: PathBuf,
    /// Plate lookups may read current plate-ordered copies (off for a full scan).
    plate_copies: bool,
    /// Found when a plate lookup first asks: other queries need not read the copies' footers.
    plate_copy_dates: OnceLock<Vec<String>>,
}

impl ArchiveSession {
    /// Plans a query that only reads. `INSERT INTO reads` would write a file into the archive that
    /// no segment accounts for (its reads then counted twice), and `COPY ... TO` or `CREATE
    /// EXTERNAL TABLE` would write or read files elsewhere: an investigation never needs either.
    pub async fn read_only_sql(&self, text: &str) -> Result<DataFrame, DataFusionError> {
        let reading_only = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.context
            .sql_with_options(text, reading_only)
            .await
            .map_err(|error| match error {
                DataFusionError::Plan(message) if message.contains(" not supported: ") => {
                    DataFusionError::Plan(format!(
                        "{message}: queries only read the archive (SELECT, WITH, EXPLAIN, DESCRIBE)"
                    ))
                }
                other => other,
            })
    }

    /// Days (`YYYY-MM-DD`) whose plate-ordered copy (`reads_by_plate`) holds exactly their
    /// current `reads` files, so plate lookups may read them from it.
    pub fn plate_copy_dates(&self) -> Result<&[String]> {
        if let Some(dates) = self.plate_copy_dates.get() {
            return Ok(dates);
        }
        let dates = if self.plate_copies {
            current_plate_copies(&self.archive)
                .with_context(|| {
                    format!(
                        "checking the plate-ordered copies in {}",
                        self.archive.display()
                    )
                })?
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        Ok(self.plate_copy_dates.get_or_init(|| dates))
    }
}

fn session_config(pruning: Pruning) -> SessionConfig {
    let on = pruning == Pruning::On;
    SessionConfig::new()
        .set_bool("datafusion.execution.parquet.pruning", on)
        .set_bool("datafusion.execution.parquet.bloom_filter_on_read", on)
        .set_bool("datafusion.execution.parquet.enable_page_index", on)
        // Filters evaluated while decoding skip whole pages of the other columns.
        .set_bool("datafusion.execution.parquet.pushdown_filters", on)
        .set_bool("datafusion.execution.parquet.reorder_filters", on)
        // Footer statistics gathered when the table is listed let whole files be skipped by
        // their time range, apart from the partition directories.
        .set_bool("datafusion.execution.collect_statistics", on)
}

/// The `reads` table's columns as a query sees them: the files' and the `date` and `hour` of
/// their partitions.
pub fn reads_schema_with_partitions() -> SchemaRef {
    with_partitions(&READS_SCHEMA)
}

/// `schema` plus the `date` and `hour` partition columns.
fn with_partitions(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new("date", DataType::Utf8, true));
    fields.push(Field::new("hour", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// A table of the archive with no file yet, with the columns queries expect of it.
fn register_empty(context: &SessionContext, table: &str, schema: &Schema) -> Result<()> {
    context.register_table(
        table,
        Arc::new(MemTable::try_new(with_partitions(schema), vec![vec![]])?),
    )?;
    Ok(())
}

/// `plate_copies`: plate lookups may read current plate-ordered copies (with pruning on).
/// `empty_ok`: an archive without reads yet is an empty `reads` table, not an error (a new
/// engine's archive, when its unarchived reads are asked for too).
pub async fn open(
    archive: &Path,
    registry: &[RegistryEntry],
    pruning: Pruning,
    plate_copies: bool,
    empty_ok: bool,
) -> Result<ArchiveSession> {
    let reads_dir = archive.join(READS_TABLE);
    let no_reads =
        !reads_dir.is_dir() || crate::archive_stats::parquet_files(&reads_dir)?.is_empty();
    if empty_ok && no_reads && archive.is_dir() {
        eprintln!(
            "the archive {} holds no reads yet: only reads a running engine has not archived \
             can be listed",
            archive.display()
        );
        let context = SessionContext::new_with_config(session_config(pruning));
        register_empty(&context, READS_TABLE, &READS_SCHEMA)?;
        register_empty(&context, ALERTS_TABLE, &ALERTS_SCHEMA)?;
        return finish_open(context, archive, registry, pruning, plate_copies);
    }
    if !reads_dir.is_dir() {
        bail!(
            "{} is not a platestream archive (no {READS_TABLE}/ directory); give --archive DIR",
            archive.display()
        );
    }
    let context = SessionContext::new_with_config(session_config(pruning));
    for table in [READS_TABLE, ALERTS_TABLE, BY_PLATE_TABLE] {
        let dir = archive.join(table);
        if !dir.is_dir() || crate::archive_stats::parquet_files(&dir)?.is_empty() {
            match table {
                READS_TABLE => bail!("the archive {} holds no reads yet", archive.display()),
                // No hotlist hit yet: an empty `alerts` table, as the README promises one.
                ALERTS_TABLE => register_empty(&context, ALERTS_TABLE, &ALERTS_SCHEMA)?,
                _ => {}
            }
            continue;
        }
        // The table's format carries its own Parquet options; a bare ParquetFormat::default()
        // would prune and read bloom filters whatever the session says, and --full-scan would
        // measure nothing.
        let parquet_options = context.state().default_table_options().parquet;
        let format = ParquetFormat::default().with_options(parquet_options);
        // The plate-ordered copy is one file a day and carries `hour` as a column.
        let hour_partitions = vec![
            ("date".to_owned(), DataType::Utf8),
            ("hour".to_owned(), DataType::Utf8),
        ];
        let (extension, partitions, schema) = match table {
            BY_PLATE_TABLE => (
                BY_PLATE_FILE,
                vec![("date".to_owned(), DataType::Utf8)],
                by_plate_schema(),
            ),
            ALERTS_TABLE => (".parquet", hour_partitions, ALERTS_SCHEMA.clone()),
            _ => (".parquet", hour_partitions, READS_SCHEMA.clone()),
        };
        let options = ListingOptions::new(Arc::new(format))
            .with_file_extension(extension)
            .with_table_partition_cols(partitions);
        let url = format!(
            "{}/",
            dir.canonicalize()
                .with_context(|| format!("opening {}", dir.display()))?
                .display()
        );
        context
            // The schema this version writes, not one inferred from every file's footer (which
            // read all of them before any query ran); files that predate a column read it as null.
            .register_listing_table(table, &url, options, Some(schema), None)
            .await
            .with_context(|| format!("opening the {table} table under {}", dir.display()))?;
    }
    finish_open(context, archive, registry, pruning, plate_copies)
}

/// Registers the registry's tables.
fn finish_open(
    context: SessionContext,
    archive: &Path,
    registry: &[RegistryEntry],
    pruning: Pruning,
    plate_copies: bool,
) -> Result<ArchiveSession> {
    let readers: Vec<&RegistryEntry> = registry.iter().filter(|e| e.kind.is_reader()).collect();
    let cameras: Vec<&RegistryEntry> = registry.iter().filter(|e| !e.kind.is_reader()).collect();
    context.register_table("readers", Arc::new(registry_table(&readers)?))?;
    context.register_table("cameras", Arc::new(registry_table(&cameras)?))?;
    Ok(ArchiveSession {
        context,
        pruning,
        archive: archive.to_owned(),
        plate_copies: pruning == Pruning::On && plate_copies,
        plate_copy_dates: OnceLock::new(),
    })
}

fn registry_table(entries: &[&RegistryEntry]) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
        Field::new("fov_direction", DataType::Float64, true),
        Field::new("owner", DataType::Utf8, true),
        Field::new("contact", DataType::Utf8, true),
        Field::new("access_terms", DataType::Utf8, true),
        Field::new("footage", DataType::Utf8, false),
    ]));
    let mut id = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut lat = Float64Builder::new();
    let mut lon = Float64Builder::new();
    let mut fov = Float64Builder::new();
    let mut owner = StringBuilder::new();
    let mut contact = StringBuilder::new();
    let mut access = StringBuilder::new();
    let mut footage = StringBuilder::new();
    for entry in entries {
        id.append_value(&entry.id);
        kind.append_value(entry.kind.as_str());
        name.append_option(entry.name.as_deref());
        lat.append_value(entry.lat);
        lon.append_value(entry.lon);
        fov.append_option(entry.fov_direction);
        owner.append_option(entry.owner.as_deref());
        contact.append_option(entry.contact.as_deref());
        access.append_option(entry.access_terms.as_deref());
        footage.append_value(entry.kind.footage());
    }
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(id.finish()),
            Arc::new(kind.finish()),
            Arc::new(name.finish()),
            Arc::new(lat.finish()),
            Arc::new(lon.finish()),
            Arc::new(fov.finish()),
            Arc::new(owner.finish()),
            Arc::new(contact.finish()),
            Arc::new(access.finish()),
            Arc::new(footage.finish()),
        ],
    )?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
