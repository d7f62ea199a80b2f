//! The offline core rate: `replay` over the bench's NDJSON file, beside the floor of any pipeline
//! that decodes and archives — a minimal loop that parses each line with serde_json and writes the
//! same reads (the same columns and values) to Parquet with zstd.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use platestream_engine::archive::{ReadColumns, TableColumns};
use platestream_engine::normalize::normalize_read;
use platestream_engine::vendor::decoder_for;
use platestream_engine::{PlateRead, Timestamp};

use super::workload::progress_bar;
use crate::config::ReaderSettings;
use crate::readers::decode_context;
use crate::replay::{replay, replay_pipeline};

#[derive(Debug, Clone, Default)]
pub struct ReplayRun {
    pub threads: usize,
    pub lines: u64,
    pub reads_archived: u64,
    pub dead_lettered: u64,
    pub alerts: u64,
    pub elapsed: Duration,
}

impl ReplayRun {
    pub fn rate(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Clone, Default)]
pub struct OfflineOutcome {
    pub lines: u64,
    pub floor_rows: u64,
    pub floor: Duration,
    /// One thread, then every core.
    pub replays: Vec<ReplayRun>,
}

impl OfflineOutcome {
    pub fn floor_rate(&self) -> f64 {
        self.lines as f64 / self.floor.as_secs_f64().max(1e-9)
    }
}

const CHUNK_LINES: usize = 65_536;
const ROW_GROUP_ROWS: usize = 262_144;

pub fn run(reads_file: &Path, hotlist: &Path, work_dir: &Path) -> Result<OfflineOutcome> {
    let mut outcome = floor(reads_file, &work_dir.join("floor.parquet"))?;

    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for threads in [1, cores.max(2)] {
        let out = work_dir.join(format!("replay-archive-{threads}"));
        let readers = ReaderSettings {
            image_dir: out.join("images"),
            ..ReaderSettings::default()
        };
        let mut pipeline = replay_pipeline(
            &[hotlist.to_owned()],
            &[],
            &crate::config::HotlistSettings::default(),
            "auto",
            &readers,
        )?;
        let summary = replay(
            &[reads_file.to_owned()],
            &out,
            &mut pipeline,
            1_000_000,
            threads,
            true,
        )?;
        outcome.replays.push(ReplayRun {
            threads,
            lines: summary.counts.messages,
            reads_archived: summary.reads_archived,
            dead_lettered: summary.counts.dead_lettered,
            alerts: summary.counts.alerts,
            elapsed: summary.elapsed,
        });
        // The next run should not find this one's pages in the cache or its files on the disk.
        std::fs::remove_dir_all(&out).ok();
    }
    Ok(outcome)
}

/// Only the parse and the write are timed; decoding the same reads for the writer is not (the
/// floor must write what replay writes, or it would compress something else).
fn floor(reads_file: &Path, out: &Path) -> Result<OfflineOutcome> {
    let context = decode_context(&ReaderSettings::default())?;
    let decoder = decoder_for("auto", None, &context)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, File::create(out)?),
        ReadColumns::schema(),
        Some(properties),
    )?;
    let file =
        File::open(reads_file).with_context(|| format!("opening {}", reads_file.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let bar = progress_bar(total, "floor (bytes)");
    let mut outcome = OfflineOutcome::default();
    let mut columns = ReadColumns::default();
    let mut lines: Vec<Vec<u8>> = Vec::with_capacity(CHUNK_LINES);
    let mut reads: Vec<PlateRead> = Vec::with_capacity(CHUNK_LINES);
    let now = Timestamp::now();
    loop {
        lines.clear();
        reads.clear();
        let mut chunk_bytes = 0;
        while lines.len() < CHUNK_LINES {
            let mut line = Vec::with_capacity(1024);
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            chunk_bytes += read as u64;
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            lines.push(line);
        }
        if lines.is_empty() {
            break;
        }
        let mut decoded = Vec::new();
        for line in &lines {
            decoded.clear();
            if decoder.decode(line, &mut decoded).is_err() {
                continue;
            }
            for mut read in decoded.drain(..) {
                if normalize_read(&mut read, now).is_ok() {
                    reads.push(read);
                }
            }
        }

        let started = Instant::now();
        for line in &lines {
            let parsed = std::str::from_utf8(line)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok());
            std::hint::black_box(parsed);
        }
        for read in &reads {
            columns.push(read);
        }
        writer.write(&columns.finish()?)?;
        outcome.floor += started.elapsed();
        outcome.lines += lines.len() as u64;
        outcome.floor_rows += reads.len() as u64;
        bar.inc(chunk_bytes);
    }
    let started = Instant::now();
    writer.close()?;
    outcome.floor += started.elapsed();
    bar.finish_and_clear();
    Ok(outcome)
}
