//! Query results for people (a table) and for tools (CSV, JSON, Parquet).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::FormatOptions;
use arrow::util::pretty::pretty_format_batches_with_options;
use clap::ValueEnum;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A readable table.
    Table,
    Csv,
    /// A JSON array of objects.
    Json,
    /// Parquet (needs --out).
    Parquet,
}

/// A query's rows, and their columns even when there are no rows (a CSV header, an empty Parquet
/// file with the schema: tools reading the output should not have to special-case "nothing found").
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// DataFusion wraps an error in layers (diagnostics, contexts) whose messages each repeat the one
/// inside: the innermost says it once, e.g. "No field named x. Valid fields are ...".
pub fn innermost(error: DataFusionError) -> anyhow::Error {
    anyhow::anyhow!("{}", error.find_root())
}

/// Runs a query, showing a spinner with the rows found so far while it scans.
pub async fn collect(frame: DataFrame, what: &str, quiet: bool) -> Result<QueryResult> {
    let spinner = if quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    };
    spinner.set_message(format!("scanning the archive for {what}"));
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(innermost)
        .with_context(|| format!("planning {what}"))?;
    let schema = stream.schema();
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch
            .map_err(innermost)
            .with_context(|| format!("scanning the archive for {what}"))?;
        rows += batch.num_rows();
        spinner.set_message(format!("scanning the archive for {what}: {rows} rows"));
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    spinner.finish_and_clear();
    Ok(QueryResult { schema, batches })
}

/// Writes the result in `format` to `out` (a file) or stdout.
pub fn emit(result: &QueryResult, format: OutputFormat, out: Option<&Path>) -> Result<()> {
    match format {
        OutputFormat::Parquet => {
            let Some(path) = out else {
                bail!("--format parquet needs --out FILE");
            };
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut writer =
                ArrowWriter::try_new(BufWriter::new(file), Arc::clone(&result.schema), None)?;
            for batch in &result.batches {
                writer.write(batch)?;
            }
            writer
                .close()
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        _ => match out {
            Some(path) => {
                let file =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                let mut writer = BufWriter::new(file);
                write_text(result, format, &mut writer)?;
                writer
                    .flush()
                    .with_context(|| format!("writing {}", path.display()))
            }
            None => {
                let mut stdout = ClosedAware {
                    inner: std::io::stdout().lock(),
                    closed: false,
                };
                let written = write_text(result, format, &mut stdout)
                    .and_then(|()| stdout.flush().context("writing to stdout"));
                // The CSV writer turns I/O errors into text; say plainly that the reader left.
                if stdout.closed {
                    return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
                }
                written
            }
        },
    }
}

/// A writer that remembers whether its reader went away (a closed pipe).
struct ClosedAware<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> ClosedAware<W> {
    fn note<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(error) = &result {
            self.closed |= error.kind() == std::io::ErrorKind::BrokenPipe;
        }
        result
    }
}

impl<W: Write> Write for ClosedAware<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.note(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.note(result)
    }
}

/// Times in every text format: always with milliseconds (`17:00:00.000Z`, not `17:00:00Z`
/// beside `17:00:00.091Z`), so sorting the text sorts the times.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// A readable table, or `(no rows)`.
pub fn write_table<W: Write>(result: &QueryResult, out: &mut W) -> Result<()> {
    if result.batches.is_empty() {
        writeln!(out, "(no rows)")?;
    } else {
        let options = FormatOptions::default().with_timestamp_tz_format(Some(TIME_FORMAT));
        writeln!(
            out,
            "{}",
            pretty_format_batches_with_options(&result.batches, &options)?
        )?;
        writeln!(out, "{} rows", result.rows())?;
    }
    Ok(())
}

/// The rows as one JSON array of objects (`[]` when there are none).
pub fn json_array(result: &QueryResult) -> Result<String> {
    let mut buffer = Vec::new();
    // Every column in every row, null or not: tools reading the rows expect one set of keys.
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIME_FORMAT.to_owned())
        .build::<_, arrow::json::writer::JsonArray>(&mut buffer);
    let refs: Vec<&RecordBatch> = result.batches.iter().collect();
    writer.write_batches(&refs)?;
    writer.finish()?;
    drop(writer);
    Ok(String::from_utf8(buffer)?)
}

/// Text to `out` (a file) or stdout.
pub fn write_string(text: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            lock.write_all(text.as_bytes())?;
            lock.flush().context("writing to stdout")
        }
    }
}

fn write_text<W: Write>(result: &QueryResult, format: OutputFormat, out: &mut W) -> Result<()> {
    match format {
        OutputFormat::Table => write_table(result, out)?,
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .with_timestamp_tz_format(TIME_FORMAT.to_owned())
                .build(&mut *out);
            if result.batches.is_empty() {
                // The header alone says which columns were asked for.
                writer.write(&flat_for_csv(&RecordBatch::new_empty(Arc::clone(
                    &result.schema,
                )))?)?;
            }
            for batch in &result.batches {
                writer.write(&flat_for_csv(batch)?)?;
            }
        }
        OutputFormat::Json => writeln!(out, "{}", json_array(result)?)?,
        OutputFormat::Parquet => bail!("--format parquet needs --out FILE"),
    }
    Ok(())
}

/// CSV holds no nested values: a list (the embedding) is written as its text, `[0.5, 0.25]`.
fn flat_for_csv(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
                .with_context(|| format!("column {} as CSV text", field.name()))?;
            fields.push(arrow::datatypes::Field::new(
                field.name(),
                arrow::datatypes::DataType::Utf8,
                true,
            ));
            columns.push(text);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}
