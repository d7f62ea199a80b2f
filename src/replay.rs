//! Offline mode: the stream path (decode → normalize → match → archive) over NDJSON files, for
//! backfills, tests and benchmarks.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use platestream_engine::archive::{ArchiveConfig, SegmentWriter, ALERTS_TABLE, READS_TABLE};
use platestream_engine::pipeline::{Pipeline, PipelineCounts, Processed};
use platestream_engine::{SourcePosition, Timestamp};

pub const ALERTS_FILE: &str = "alerts.ndjson";
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub counts: PipelineCounts,
    pub reads_archived: u64,
    pub alerts_archived: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    pub elapsed: Duration,
}

/// The source name of an input file in the archive (file names, `source_topic`): its file stem,
/// reduced to the characters Kafka allows in topic names.
fn source_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("file.{cleaned}")
}

pub fn replay(
    inputs: &[PathBuf],
    out: &Path,
    pipeline: &mut Pipeline,
    segment_max_rows: usize,
    show_progress: bool,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let archive = Arc::new(ArchiveConfig::new(out));
    let create = |name: &str| -> Result<BufWriter<File>> {
        let path = out.join(name);
        Ok(BufWriter::new(
            File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut alerts_out = create(ALERTS_FILE)?;
    let mut dead_letters_out = create(DEAD_LETTER_FILE)?;

    let total_bytes: u64 = inputs
        .iter()
        .map(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
        .sum();
    let progress = if show_progress {
        let bar = ProgressBar::new(total_bytes);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut summary = ReplaySummary::default();
    let mut processed = Processed::default();
    let mut line = Vec::with_capacity(4096);
    for (partition, input) in inputs.iter().enumerate() {
        let topic = source_name(input);
        let partition = i32::try_from(partition).context("too many input files")?;
        let file =
            File::open(input).with_context(|| format!("opening input {}", input.display()))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut segment = SegmentWriter::new(Arc::clone(&archive), &topic, partition)?;
        let mut line_number: i64 = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {}", input.display()))?;
            if read == 0 {
                break;
            }
            line_number += 1;
            progress.inc(read as u64);
            let payload = trim_line_end(&line);
            if payload.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let source = SourcePosition {
                topic: topic.clone(),
                partition,
                offset: line_number,
            };
            segment.cover_offset(line_number);
            let now = Timestamp::now();
            pipeline.process(payload, source, now, &mut processed);
            pipeline.release_due(now, &mut processed);
            // Earlier inputs ended all their passes before their segments were committed, so every
            // read released here belongs to this input.
            for read in &processed.reads {
                segment.append_read(read)?;
            }
            for alert in &processed.alerts {
                segment.append_alert(alert)?;
                serde_json::to_writer(&mut alerts_out, alert)?;
                alerts_out.write_all(b"\n")?;
            }
            for dead_letter in &processed.dead_letters {
                dead_letters_out.write_all(dead_letter.to_json().as_bytes())?;
                dead_letters_out.write_all(b"\n")?;
            }
            processed.clear();
            if segment.rows() >= segment_max_rows {
                flush_held(pipeline, &topic, partition, &mut segment, &mut processed)?;
                let full = std::mem::replace(
                    &mut segment,
                    SegmentWriter::new(Arc::clone(&archive), &topic, partition)?,
                );
                record(&mut summary, full)?;
            }
        }
        flush_held(pipeline, &topic, partition, &mut segment, &mut processed)?;
        record(&mut summary, segment)?;
    }
    alerts_out.flush()?;
    dead_letters_out.flush()?;
    progress.finish_and_clear();
    summary.counts = pipeline.counts;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Ends the input's held vehicle passes into the segment about to be committed.
fn flush_held(
    pipeline: &mut Pipeline,
    topic: &str,
    partition: i32,
    segment: &mut SegmentWriter,
    processed: &mut Processed,
) -> Result<()> {
    pipeline.flush_partition(topic, partition, processed);
    for read in &processed.reads {
        segment.append_read(read)?;
    }
    processed.clear();
    Ok(())
}

fn record(summary: &mut ReplaySummary, segment: SegmentWriter) -> Result<()> {
    let report = segment.commit()?;
    summary.reads_archived += report.rows(READS_TABLE) as u64;
    summary.alerts_archived += report.rows(ALERTS_TABLE) as u64;
    summary.files_written += report.files.len() as u64;
    summary.bytes_written += report.bytes();
    Ok(())
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
