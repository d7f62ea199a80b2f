//! Helpers shared by the integration tests: a real broker, producing, draining topics, and
//! reading the Parquet archive back with the parquet crate.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use platestream::archive_stats::parquet_files;
use platestream_connectors::kafka::{ensure_topics, KafkaSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The `platestream` binary run in `dir`, as a user would.
pub fn platestream(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `platestream` and returns its standard output; fails the test if it fails.
pub fn succeed(args: &[&str], dir: &Path) -> String {
    let output = platestream(args, dir);
    assert!(
        output.status.success(),
        "platestream {args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The interpreter of a Python with DuckDB: `PLATESTREAM_PYTHON` (set by `scripts/test`), else the
/// one `scripts/ensure-python-tools` installs.
pub fn python_with_duckdb() -> String {
    if let Ok(python) = std::env::var("PLATESTREAM_PYTHON") {
        return python;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-python-tools");
    let output = Command::new(script).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).trim().to_owned()
}

/// What DuckDB, an independent Parquet reader, sees in `dir/archive`: total reads, reads per
/// reader, the read ids of `plate`, rows with a missing or malformed geohash, and hour partitions.
pub fn duckdb_summary(python: &str, dir: &Path, plate: &str) -> serde_json::Value {
    let script = format!(
        r#"
import duckdb, json
reads = "read_parquet('archive/reads/**/*.parquet', hive_partitioning = true)"
total = duckdb.sql(f"SELECT count(*) FROM {{reads}}").fetchone()[0]
per_reader = duckdb.sql(f"SELECT reader_id, count(*) FROM {{reads}} GROUP BY reader_id ORDER BY reader_id").fetchall()
ids = duckdb.sql(f"SELECT read_id FROM {{reads}} WHERE plate_norm = '{plate}' ORDER BY read_id").fetchall()
bad_geohash = duckdb.sql(f"SELECT count(*) FROM {{reads}} WHERE geohash IS NULL OR length(geohash) <> 7").fetchone()[0]
hours = duckdb.sql(f"SELECT count(DISTINCT (date, hour)) FROM {{reads}}").fetchone()[0]
print(json.dumps({{"total": total, "per_reader": [[r, c] for r, c in per_reader], "ids": [i for (i,) in ids], "bad_geohash": bad_geohash, "hours": hours}}))
"#
    );
    let output = Command::new(python)
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "duckdb: {}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn create_topics(settings: &KafkaSettings, raw_partitions: i32) {
    runtime()
        .block_on(ensure_topics(
            &settings.producer_config(),
            &[
                (settings.raw_topics[0].as_str(), raw_partitions),
                (settings.alerts_topic.as_str(), 1),
                (settings.covert_alerts_topic.as_str(), 1),
                (settings.dead_letter_topic.as_str(), 1),
            ],
            Duration::from_secs(30),
        ))
        .unwrap();
}

pub fn produce_all(settings: &KafkaSettings, topic: &str, payloads: &[(Option<String>, Vec<u8>)]) {
    // tansu 0.6 serves a fetch only from the first offset of a record batch; one message per
    // batch lets consumers resume at any committed offset (see README, "Known limitations").
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .producer_config()
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for (key, payload) in payloads {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload.as_slice());
        if let Some(key) = key {
            record = record.key(key.as_bytes());
        }
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A message read back from a topic.
pub struct Consumed {
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Every message of `topic` from the beginning, read until none arrives for `idle`.
pub fn drain_topic(bootstrap: &str, topic: &str, idle: Duration) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("test-drain-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut consumed = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < idle {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                last = Instant::now();
                let mut headers = HashMap::new();
                if let Some(message_headers) = message.headers() {
                    for header in message_headers.iter() {
                        let value = header
                            .value
                            .map(|v| String::from_utf8_lossy(v).into_owned())
                            .unwrap_or_default();
                        headers.insert(header.key.to_owned(), value);
                    }
                }
                consumed.push(Consumed {
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
            Some(Err(error)) => panic!("draining {topic}: {error}"),
            None => {}
        }
    }
    consumed
}

/// One archived read: the columns the tests compare.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedRead {
    pub read_id: String,
    pub plate: String,
    pub plate_norm: String,
    pub reader_id: String,
    pub observed_at: i64,
    pub lat: Option<f64>,
    pub source_offset: i64,
    pub frames: i32,
    pub duplicate_of: Option<String>,
}

pub fn archived_reads(dir: &Path) -> Vec<ArchivedRead> {
    let mut reads = Vec::new();
    for path in parquet_files(&dir.join("reads")).unwrap() {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let text = |name: &str| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_string::<i32>()
                    .clone()
            };
            let (read_id, plate, plate_norm, reader_id) = (
                text("read_id"),
                text("plate"),
                text("plate_norm"),
                text("reader_id"),
            );
            let observed = batch
                .column_by_name("observed_at")
                .unwrap()
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
                .clone();
            let lat = batch
                .column_by_name("lat")
                .unwrap()
                .as_primitive::<arrow::datatypes::Float64Type>()
                .clone();
            let offset = batch
                .column_by_name("source_offset")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone();
            let frames = batch
                .column_by_name("frames")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>()
                .clone();
            let duplicate_of = text("duplicate_of");
            for row in 0..batch.num_rows() {
                reads.push(ArchivedRead {
                    frames: frames.value(row),
                    duplicate_of: (!duplicate_of.is_null(row))
                        .then(|| duplicate_of.value(row).to_owned()),
                    read_id: read_id.value(row).to_owned(),
                    plate: plate.value(row).to_owned(),
                    plate_norm: plate_norm.value(row).to_owned(),
                    reader_id: reader_id.value(row).to_owned(),
                    observed_at: observed.value(row),
                    lat: (!lat.is_null(row)).then(|| lat.value(row)),
                    source_offset: offset.value(row),
                });
            }
        }
    }
    reads
}

/// `platestream run --config CONFIG` in `dir`, as a service manager runs it; its log goes to
/// `dir/CONFIG.log` (appended, so a restarted engine's follows). Killed when dropped.
pub struct EngineProcess(std::process::Child);

impl EngineProcess {
    pub fn start(dir: &Path, config: &str) -> Self {
        Self::start_with(dir, config, &[])
    }

    /// [`EngineProcess::start`] with more arguments to `run`.
    pub fn start_with(dir: &Path, config: &str, more: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{config}.log")))
            .unwrap();
        Self(
            Command::new(env!("CARGO_BIN_EXE_platestream"))
                .args(["run", "--config", config])
                .args(more)
                .current_dir(dir)
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// As a service manager stops it: SIGTERM, then the engine commits and leaves its group.
    /// Returns how it exited.
    pub fn stop(mut self) -> std::process::ExitStatus {
        if let Some(status) = self.0.try_wait().unwrap() {
            return status;
        }
        let pid = self.0.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the engine did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether it is still running (it has not failed).
    pub fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Settings for topics and a group named after `name` on `broker` (`{name}-reads`, ...).
pub fn named_settings(broker: &platestream::broker::TansuBroker, name: &str) -> KafkaSettings {
    let mut settings = KafkaSettings::new(broker.bootstrap_servers());
    settings.group_id = format!("{name}-group");
    settings.raw_topics = vec![format!("{name}-reads")];
    settings.alerts_topic = format!("{name}-alerts");
    settings.covert_alerts_topic = format!("{name}-alerts-covert");
    settings.dead_letter_topic = format!("{name}-dead-letter");
    settings
}

/// Writes `dir/file`, a config for `platestream run` on `settings`' topics: the archive in
/// `dir/archive` made durable every second (plus `archive_extra` lines), duplicate folding and
/// the metrics endpoint off, session timeouts of 6 s, and `hotlists` as the `[hotlists]` section.
pub fn write_engine_config(
    dir: &Path,
    file: &str,
    settings: &KafkaSettings,
    archive_extra: &str,
    hotlists: &str,
) {
    std::fs::write(
        dir.join(file),
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
raw_topics = ["{reads}"]
alerts_topic = "{alerts}"
covert_alerts_topic = "{covert}"
dead_letter_topic = "{dead}"

[kafka.consumer]
"session.timeout.ms" = "6000"

[archive]
dir = "archive"
segment_max_age_secs = 1
{archive_extra}

[readers]
dedupe_window_ms = 0

[metrics]
listen = ""

[hotlists]
{hotlists}
"#,
            bootstrap = settings.bootstrap_servers,
            group = settings.group_id,
            reads = settings.raw_topics[0],
            alerts = settings.alerts_topic,
            covert = settings.covert_alerts_topic,
            dead = settings.dead_letter_topic,
        ),
    )
    .unwrap();
}

/// Waits up to `limit` for `check` to give an answer; fails the test with `what` otherwise.
pub fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(answer) = check() {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes one canonical read per plate, all of Virginia at 0.95 confidence, each at its own
/// reader a minute after the one before: inputs whose right answers a test knows.
#[allow(dead_code)] // not every test binary uses every helper
pub fn write_virginia_reads(path: &Path, plates: &[&str]) {
    let reads: String = plates
        .iter()
        .enumerate()
        .map(|(n, plate)| {
            format!(
                "{{\"vendor\":\"acme\",\"reader_id\":\"pole-{n}\",\"observed_at\":{},\"plate\":\"{plate}\",\"jurisdiction\":\"US-VA\",\"confidence\":0.95}}\n",
                1_795_539_600_000i64 + n as i64 * 60_000
            )
        })
        .collect();
    std::fs::write(path, reads).unwrap();
}
