//! The bench's input: simulated mixed-vendor reads in an NDJSON file (replayed offline, produced
//! to the topic) and a hotlist CSV of the requested size.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::simulate::{Simulator, SimulatorConfig, HOTLIST_CSV_HEADER};
use platestream_engine::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use super::BenchOptions;

#[derive(Debug, Clone, Default)]
pub struct WorkloadSummary {
    pub messages: u64,
    pub bytes: u64,
    pub hotlisted_reads: u64,
    pub malformed: u64,
    pub hotlist_entries: usize,
    pub city_hotlist_entries: usize,
}

pub struct Workload {
    pub reads_file: PathBuf,
    pub hotlist_file: PathBuf,
    pub summary: WorkloadSummary,
    pub simulator_config: SimulatorConfig,
}

/// Share of deliberately malformed messages: dead letters are part of every real stream.
const MALFORMED_RATE: f64 = 0.001;
const VEHICLES: usize = 200_000;

pub fn simulator_config(options: &BenchOptions) -> SimulatorConfig {
    SimulatorConfig {
        seed: options.seed,
        vehicles: VEHICLES,
        hotlist_fraction: 0.01,
        misread_rate: 0.03,
        malformed_rate: MALFORMED_RATE,
        vendor_mix: true,
        ..SimulatorConfig::default()
    }
}

pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>28} {{wide_bar}} {{human_pos}}/{{human_len}} {{per_sec}} {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

pub fn prepare(options: &BenchOptions, work_dir: &Path) -> Result<Workload> {
    let config = simulator_config(options);
    let mut simulator = Simulator::new(config.clone());
    let hotlist_file = work_dir.join("hotlist.csv");
    let (hotlist_entries, city_hotlist_entries) =
        write_hotlist(&simulator, options, &hotlist_file)?;

    let reads_file = work_dir.join("reads.ndjson");
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(&reads_file).with_context(|| format!("creating {}", reads_file.display()))?,
    );
    // Observation times end about now: the engine checks them against the clock.
    let step_ms = 1;
    let start = Timestamp::now().millis() - options.reads as i64 * step_ms - 60_000;
    let mut summary = WorkloadSummary {
        hotlist_entries,
        city_hotlist_entries,
        ..WorkloadSummary::default()
    };
    let bar = progress_bar(options.reads, "simulating reads");
    for index in 0..options.reads {
        let message = simulator.next_message(Timestamp(start + index as i64 * step_ms));
        out.write_all(&message.payload)?;
        out.write_all(b"\n")?;
        summary.messages += 1;
        summary.bytes += message.payload.len() as u64;
        summary.malformed += u64::from(message.malformed);
        summary.hotlisted_reads += u64::from(message.truth.is_some_and(|truth| truth.hotlisted));
        if index % 4096 == 0 {
            bar.set_position(index);
        }
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(Workload {
        reads_file,
        hotlist_file,
        summary,
        simulator_config: config,
    })
}

/// The city's hotlisted vehicles, then filler up to `hotlist_size`: eight-character plates that
/// start with `QQ`, a shape no simulated plate is within one misread of, so the hit rate stays
/// the city's (about 1 % of reads) however large the list. Returns (entries, city entries).
fn write_hotlist(
    simulator: &Simulator,
    options: &BenchOptions,
    path: &Path,
) -> Result<(usize, usize)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = csv::Writer::from_writer(BufWriter::new(file));
    writer.write_record(HOTLIST_CSV_HEADER)?;
    let mut written = simulator.write_hotlist_rows(&mut writer)?;
    let city = written;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x0068_6f74_6c69_7374);
    let mut seen = HashSet::with_capacity(options.hotlist_size);
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    while written < options.hotlist_size {
        let mut plate = String::with_capacity(8);
        plate.push_str("QQ");
        for _ in 0..6 {
            plate.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
        }
        if !seen.insert(plate.clone()) {
            continue;
        }
        writer.write_record([
            "wanted_persons",
            plate.as_str(),
            "US-TX",
            "warrant",
            "2",
            "",
            "",
            "",
            "",
            "",
        ])?;
        written += 1;
    }
    writer.flush()?;
    Ok((written, city))
}

/// Produces every line of the file to the topic in large batches (a fresh consumer group reading
/// from the start is served whole batches, which tansu handles). Returns the messages produced.
pub fn fill_topic(settings: &KafkaSettings, topic: &str, reads_file: &Path) -> Result<u64> {
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .producer_config()
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()
        .context("creating the topic filler's producer")?;
    let file =
        File::open(reads_file).with_context(|| format!("opening {}", reads_file.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let bar = progress_bar(total, "filling the topic (bytes)");
    let mut line = Vec::with_capacity(4096);
    let mut produced: u64 = 0;
    let mut bytes_since_update: u64 = 0;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        let payload = line.strip_suffix(b"\n").unwrap_or(&line);
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        produced += 1;
        bytes_since_update += read as u64;
        if produced % 4096 == 0 {
            bar.inc(std::mem::take(&mut bytes_since_update));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("flushing the reads into the topic")?;
    bar.finish_and_clear();
    // tansu 0.6 reports high watermarks that can trail batched produces; the consumers' counts
    // (every one must reach `produced`) are the check that nothing was lost.
    let in_topic = topic_messages(settings, topic)?;
    if in_topic != produced {
        tracing::debug!(
            produced,
            in_topic,
            "watermarks differ from the count produced"
        );
    }
    Ok(produced)
}

/// Messages in a topic: the sum of its partitions' high watermarks minus their low ones.
pub fn topic_messages(settings: &KafkaSettings, topic: &str) -> Result<u64> {
    let consumer: BaseConsumer = settings
        .consumer_config()
        .create()
        .context("creating a watermark consumer")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .context("topic metadata")?;
    let mut total = 0;
    for topic_metadata in metadata.topics() {
        for partition in topic_metadata.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .context("watermarks")?;
            total += u64::try_from(high - low).unwrap_or(0);
        }
    }
    Ok(total)
}
