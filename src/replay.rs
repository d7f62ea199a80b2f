//! Offline mode: the stream path (decode → normalize → match → archive) over NDJSON files, for
//! backfills, tests and benchmarks.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use platestream_engine::archive::{
    ArchiveConfig, CompactedName, SegmentWriter, ALERTS_TABLE, READS_TABLE,
};
use platestream_engine::pipeline::{Pipeline, PipelineCounts, Prepared, Preparer, Processed};
use platestream_engine::vendor::{decoder_for, GenericMapping};
use platestream_engine::{SourcePosition, Timestamp};

use crate::config::{HotlistSettings, ReaderSettings};
use crate::hotlists::build_store;
use crate::readers::{decode_context, dedupe_config};

/// The pipeline `replay` runs: the hotlists under full matching with the default alert policy,
/// `format`'s decoder, and duplicate suppression as `readers` says.
pub fn replay_pipeline(
    hotlists: &[PathBuf],
    ncic: &[PathBuf],
    settings: &HotlistSettings,
    format: &str,
    readers: &ReaderSettings,
) -> Result<Pipeline> {
    // As the engine loads its files: an id two files hold is taken from the later one.
    let entries = crate::hotlist_sources::HotlistFiles::load(hotlists, ncic)?.entries();
    let (store, alert_policy) =
        build_store(entries, &settings.lists, settings.suppression_window_secs);
    let context = decode_context(readers)?;
    let decoder = decoder_for(format, readers.generic.as_ref(), &context)
        .with_context(|| format!("--format {format:?}"))?;
    let mut pipeline = Pipeline::new(decoder, store).with_alert_policy(alert_policy);
    if let Some(dedupe) = dedupe_config(readers) {
        pipeline = pipeline.with_dedupe(dedupe);
    }
    Ok(pipeline)
}

/// Refuses a file of pretty-printed JSON (its first line a lone `[` or `{`): replay reads a
/// message per line, so each of its lines would be dead-lettered as a broken message.
pub fn check_one_message_per_line(path: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening --input {}", path.display()))?;
    let mut first_line = Vec::new();
    for line in BufReader::new(file).split(b'\n').take(1000) {
        let line = line.with_context(|| format!("reading --input {}", path.display()))?;
        if !line.iter().all(u8::is_ascii_whitespace) {
            first_line = line;
            break;
        }
    }
    let first_line = first_line
        .strip_prefix(platestream_engine::decode::UTF8_BOM)
        .unwrap_or(&first_line);
    match first_line.trim_ascii() {
        b"[" => anyhow::bail!(
            "--input {} is a JSON array over several lines; replay reads one message per line \
             (NDJSON): convert it with  jq -c '.[]' {0} > reads.ndjson",
            path.display()
        ),
        b"{" => anyhow::bail!(
            "--input {} is JSON over several lines; replay reads one message per line \
             (NDJSON): convert it with  jq -c . {0} > reads.ndjson",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// `--generic-mapping`: the column mapping of `[readers.generic]`, as JSON or (`.toml`) TOML.
pub fn load_generic_mapping(path: &Path, format: &str) -> Result<GenericMapping> {
    if format != "generic" {
        anyhow::bail!("--generic-mapping is for --format generic (not {format:?})");
    }
    let is_toml = path.extension().is_some_and(|ext| ext == "toml");
    let mapping = if is_toml {
        figment::Figment::from(
            <figment::providers::Toml as figment::providers::Format>::file_exact(path),
        )
        .extract::<GenericMapping>()
        .map_err(anyhow::Error::from)
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --generic-mapping {}", path.display()))?;
        serde_json::from_str::<GenericMapping>(&text).map_err(anyhow::Error::from)
    };
    mapping.with_context(|| format!("--generic-mapping {}", path.display()))
}

pub const ALERTS_FILE: &str = "alerts.ndjson";
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";

#[derive(Debug, Clone, Default)]
pub struct ReplaySummary {
    pub counts: PipelineCounts,
    /// Empty or whitespace-only lines, which NDJSON allows between messages: not messages.
    pub blank_lines: u64,
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

/// `OUT/replay-inputs.json`: the input file each source of the archive (`file.<stem>` and the
/// input's place on the command line, which name its segment files) was replayed from.
pub const INPUTS_FILE: &str = "replay-inputs.json";

/// Refuses inputs whose segment files would replace those of another input replayed into `out`
/// before (`d1/reads.ndjson` and `d2/reads.ndjson` both name their files `file.reads`), and records
/// which input each source is. Replaying the same file again rewrites its own files, as before.
fn claim_sources(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let manifest = out.join(INPUTS_FILE);
    let mut sources: std::collections::BTreeMap<String, String> = match std::fs::read(&manifest) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "reading {} (which input made which files)",
                manifest.display()
            )
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(error) => return Err(error).with_context(|| format!("reading {}", manifest.display())),
    };
    let merged = compacted_sources(out)?;
    for (partition, input) in inputs.iter().enumerate() {
        let partition_number = i32::try_from(partition).context("too many input files")?;
        if merged.contains(&(source_name(input), partition_number)) {
            bail!(
                "{}: `compact` has merged the files {} partition {partition} wrote into {}, and \
                 replay rewrites files by name: replaying it again would archive its reads twice. \
                 Replay it into a fresh --out",
                input.display(),
                source_name(input),
                out.display()
            );
        }
        let source = format!("{} partition {partition}", source_name(input));
        let path = input
            .canonicalize()
            .with_context(|| format!("opening {}", input.display()))?
            .display()
            .to_string();
        match sources.get(&source) {
            Some(earlier) if *earlier != path => bail!(
                "{} would replace the archived reads of {earlier}, replayed into {} before: both \
                 name their files {source} (the file's name and its place among --input). Replay it \
                 into another --out, rename it, or give both inputs in one run",
                input.display(),
                out.display()
            ),
            _ => {
                sources.insert(source, path);
            }
        }
    }
    let text = serde_json::to_string_pretty(&sources)?;
    std::fs::write(&manifest, text).with_context(|| format!("writing {}", manifest.display()))
}

/// The sources (topic, partition) whose files in `out/reads` `compact` has merged.
fn compacted_sources(out: &Path) -> Result<std::collections::BTreeSet<(String, i32)>> {
    let mut sources = std::collections::BTreeSet::new();
    let reads = out.join(READS_TABLE);
    if !reads.is_dir() {
        return Ok(sources);
    }
    for path in crate::archive_stats::parquet_files(&reads)? {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if let Some(merged) = CompactedName::parse(name) {
            sources.insert((merged.topic, merged.partition));
        }
    }
    Ok(sources)
}

/// Runs the pipeline over the inputs. With `threads` above 1, that many threads decode, normalize
/// and match batches of lines while this thread folds duplicates, suppresses repeat alerts and
/// writes the archive in line order: the output is the same as with one thread.
pub fn replay(
    inputs: &[PathBuf],
    out: &Path,
    pipeline: &mut Pipeline,
    segment_max_rows: usize,
    threads: usize,
    show_progress: bool,
) -> Result<ReplaySummary> {
    let started = Instant::now();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    claim_sources(out, inputs)?;
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
    for (partition, input) in inputs.iter().enumerate() {
        let partition = i32::try_from(partition).context("too many input files")?;
        let mut sink = InputSink {
            archive: &archive,
            topic: source_name(input),
            partition,
            segment: SegmentWriter::new(Arc::clone(&archive), &source_name(input), partition)?,
            segment_max_rows,
            alerts_out: &mut alerts_out,
            dead_letters_out: &mut dead_letters_out,
            summary: &mut summary,
            processed: Processed::default(),
        };
        if threads > 1 {
            replay_parallel(input, pipeline, &mut sink, threads, &progress)?;
        } else {
            replay_inline(input, pipeline, &mut sink, &progress)?;
        }
        sink.finish(pipeline)?;
    }
    alerts_out.flush()?;
    dead_letters_out.flush()?;
    progress.finish_and_clear();
    summary.counts = pipeline.counts;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Where one input's outputs go: its archive segments, the alerts and dead-letter files.
struct InputSink<'a> {
    archive: &'a Arc<ArchiveConfig>,
    topic: String,
    partition: i32,
    segment: SegmentWriter,
    segment_max_rows: usize,
    alerts_out: &'a mut BufWriter<File>,
    dead_letters_out: &'a mut BufWriter<File>,
    summary: &'a mut ReplaySummary,
    processed: Processed,
}

impl InputSink<'_> {
    fn position(&mut self, line_number: i64) -> SourcePosition {
        self.segment.cover_offset(line_number);
        SourcePosition {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: line_number,
        }
    }

    /// Writes out what the pipeline made of one line (in `self.processed`).
    fn write(&mut self, pipeline: &mut Pipeline, now: Timestamp) -> Result<()> {
        pipeline.release_due(now, &mut self.processed);
        // Earlier inputs ended all their passes before their segments were committed, so every
        // read released here belongs to this input.
        for read in &self.processed.reads {
            self.segment.append_read(read)?;
        }
        for alert in &self.processed.alerts {
            self.segment.append_alert(alert)?;
            serde_json::to_writer(&mut *self.alerts_out, alert)?;
            self.alerts_out.write_all(b"\n")?;
        }
        for dead_letter in &self.processed.dead_letters {
            self.dead_letters_out
                .write_all(dead_letter.to_json().as_bytes())?;
            self.dead_letters_out.write_all(b"\n")?;
        }
        self.processed.clear();
        if self.segment.rows() >= self.segment_max_rows {
            self.flush_held(pipeline)?;
            let full = std::mem::replace(
                &mut self.segment,
                SegmentWriter::new(Arc::clone(self.archive), &self.topic, self.partition)?,
            );
            record(self.summary, full)?;
        }
        Ok(())
    }

    /// Ends the input's held vehicle passes into the segment about to be committed.
    fn flush_held(&mut self, pipeline: &mut Pipeline) -> Result<()> {
        pipeline.flush_partition(&self.topic, self.partition, &mut self.processed);
        for read in &self.processed.reads {
            self.segment.append_read(read)?;
        }
        self.processed.clear();
        Ok(())
    }

    fn finish(mut self, pipeline: &mut Pipeline) -> Result<()> {
        self.flush_held(pipeline)?;
        record(self.summary, self.segment)
    }
}

fn replay_inline(
    input: &Path,
    pipeline: &mut Pipeline,
    sink: &mut InputSink<'_>,
    progress: &ProgressBar,
) -> Result<()> {
    let file = File::open(input).with_context(|| format!("opening input {}", input.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(4096);
    let mut line_number: i64 = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", input.display()))?;
        if read == 0 {
            return Ok(());
        }
        line_number += 1;
        progress.inc(read as u64);
        let payload = trim_line_end(&line);
        if payload.iter().all(u8::is_ascii_whitespace) {
            sink.summary.blank_lines += 1;
            continue;
        }
        let source = sink.position(line_number);
        let now = Timestamp::now();
        pipeline.process(payload, source, now, &mut sink.processed);
        sink.write(pipeline, now)?;
    }
}

/// Lines per batch handed to a preparing thread: large enough that handing over costs nothing.
const BATCH_LINES: usize = 4_096;

struct LineBatch {
    sequence: u64,
    text: Vec<u8>,
    /// (line number, byte range in `text`) of each non-blank line.
    lines: Vec<(i64, std::ops::Range<usize>)>,
    blank_lines: u64,
    bytes: u64,
}

struct PreparedBatch {
    sequence: u64,
    messages: Vec<(i64, Prepared)>,
    blank_lines: u64,
    bytes: u64,
}

fn replay_parallel(
    input: &Path,
    pipeline: &mut Pipeline,
    sink: &mut InputSink<'_>,
    threads: usize,
    progress: &ProgressBar,
) -> Result<()> {
    let file = File::open(input).with_context(|| format!("opening input {}", input.display()))?;
    let topic = sink.topic.clone();
    let partition = sink.partition;
    std::thread::scope(|scope| -> Result<()> {
        // Bounded channels: a slow archive holds the readers back instead of filling memory.
        let (batch_sender, batch_receiver) = sync_channel::<LineBatch>(threads * 2);
        // Shared by the preparing threads and dropped with the last of them, which stops the reader.
        let batch_receiver = Arc::new(Mutex::new(batch_receiver));
        let (prepared_sender, prepared_receiver) = sync_channel::<PreparedBatch>(threads * 2);
        let reader = scope.spawn(move || read_batches(file, batch_sender));
        for _ in 0..threads {
            let preparer = pipeline.preparer();
            let prepared_sender = prepared_sender.clone();
            let batch_receiver = Arc::clone(&batch_receiver);
            let topic = topic.as_str();
            scope.spawn(move || {
                prepare_batches(
                    &preparer,
                    topic,
                    partition,
                    &batch_receiver,
                    &prepared_sender,
                );
            });
        }
        drop(prepared_sender);
        drop(batch_receiver);
        let mut waiting: BTreeMap<u64, PreparedBatch> = BTreeMap::new();
        let mut next_sequence = 0;
        let mut written: Result<()> = Ok(());
        'batches: for batch in prepared_receiver.iter() {
            waiting.insert(batch.sequence, batch);
            while let Some(batch) = waiting.remove(&next_sequence) {
                next_sequence += 1;
                for (line_number, prepared) in batch.messages {
                    sink.segment.cover_offset(line_number);
                    let now = Timestamp::now();
                    pipeline.finish(prepared, now, &mut sink.processed);
                    if let Err(error) = sink.write(pipeline, now) {
                        written = Err(error);
                        break 'batches;
                    }
                }
                sink.summary.blank_lines += batch.blank_lines;
                progress.inc(batch.bytes);
            }
        }
        // Dropping the receiver stops the preparing threads, and with them the reader.
        drop(prepared_receiver);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the input reader panicked"))?;
        written?;
        read.with_context(|| format!("reading {}", input.display()))
    })
}

fn read_batches(file: File, batches: SyncSender<LineBatch>) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line_number: i64 = 0;
    let mut sequence = 0;
    loop {
        let mut batch = LineBatch {
            sequence,
            text: Vec::with_capacity(BATCH_LINES * 1024),
            lines: Vec::with_capacity(BATCH_LINES),
            blank_lines: 0,
            bytes: 0,
        };
        let mut at_end = false;
        while batch.lines.len() < BATCH_LINES {
            let start = batch.text.len();
            let read = reader.read_until(b'\n', &mut batch.text)?;
            if read == 0 {
                at_end = true;
                break;
            }
            line_number += 1;
            batch.bytes += read as u64;
            let payload_len = trim_line_end(&batch.text[start..]).len();
            let payload = start..start + payload_len;
            if batch.text[payload.clone()]
                .iter()
                .all(u8::is_ascii_whitespace)
            {
                batch.blank_lines += 1;
            } else {
                batch.lines.push((line_number, payload));
            }
        }
        if batch.bytes > 0 && batches.send(batch).is_err() {
            return Ok(());
        }
        if at_end {
            return Ok(());
        }
        sequence += 1;
    }
}

fn prepare_batches(
    preparer: &Preparer,
    topic: &str,
    partition: i32,
    batches: &Mutex<Receiver<LineBatch>>,
    prepared: &SyncSender<PreparedBatch>,
) {
    loop {
        let batch = match batches.lock() {
            Ok(receiver) => match receiver.recv() {
                Ok(batch) => batch,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let now = Timestamp::now();
        let lines = batch.lines.iter().map(|(line_number, range)| {
            let source = SourcePosition {
                topic: topic.to_owned(),
                partition,
                offset: *line_number,
            };
            (batch.text.get(range.clone()).unwrap_or_default(), source)
        });
        let messages = batch
            .lines
            .iter()
            .map(|(line_number, _)| *line_number)
            .zip(preparer.prepare_batch(lines, now))
            .collect();
        let done = PreparedBatch {
            sequence: batch.sequence,
            messages,
            blank_lines: batch.blank_lines,
            bytes: batch.bytes,
        };
        if prepared.send(done).is_err() {
            return;
        }
    }
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
