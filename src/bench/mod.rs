//! `platestream bench`: end-to-end throughput, alert latency and memory, each beside a baseline
//! measured in the same run on the same broker, so that the ratios mean something on any machine.
//!
//! One run: a tansu broker on loopback; a topic filled with simulated mixed-vendor reads; then
//! (1) a plain rdkafka consumer draining it (the ceiling) and `platestream run` draining it with a
//! fresh group (the engine, as a child process so that its memory is its own); (2) the same reads
//! offline: a minimal serde_json + Parquet loop (the floor) and `replay`; (3) alert latency at a
//! steady produce rate; (4) the engine with a deliberately slow archive writer, to show memory stays
//! bounded; (5) the Python peer a city data team would write, on the same topic. The results are a
//! markdown table (`report.rs`).

mod ceiling;
mod engine_process;
mod latency;
mod offline;
mod peer;
mod report;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use platestream_connectors::kafka::{ensure_topics, KafkaSettings};

use crate::broker::TansuBroker;
use engine_process::{EngineConfig, EngineProcess};
pub use report::Results;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Reads in the topic that the ceiling, the engine and the peer each drain.
    #[arg(long, default_value_t = 2_000_000)]
    pub reads: u64,
    /// Hotlist entries loaded by the engine and the peer: the simulated city's hotlisted vehicles
    /// (about 1 % of reads hit) filled up with plates no simulated reader sees.
    #[arg(long, default_value_t = 1_000_000)]
    pub hotlist_size: usize,
    /// Partitions of the reads topic.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Reads per second produced steadily during the alert latency run.
    #[arg(long, default_value_t = 20_000)]
    pub latency_rate: u64,
    /// Length of the alert latency run, after a warm-up.
    #[arg(long, default_value_t = 30)]
    pub latency_seconds: u64,
    /// Milliseconds the archive writer sleeps per 1,000 rows during the slow-sink run.
    #[arg(long, default_value_t = 50)]
    pub slow_sink_ms: u64,
    /// Length of the slow-sink run.
    #[arg(long, default_value_t = 20)]
    pub slow_sink_seconds: u64,
    /// A smoke test with small numbers (20,000 reads, 10,000 hotlist entries, short runs); the
    /// table's rows are all there, its figures mean little.
    #[arg(long)]
    pub quick: bool,
    /// Where the markdown results are written (they are printed too).
    #[arg(long, default_value = "bench-results.md")]
    pub out: PathBuf,
    /// Keep the generated reads, hotlist and archives here instead of a temporary directory (a
    /// later bench in the same directory replaces the archives: its broker is a fresh one).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The Python that runs the peer (needs confluent-kafka and pyarrow); default: the one
    /// `scripts/ensure-bench-peer` installs, if it is there. Without one the peer's row says
    /// "skipped".
    #[arg(long)]
    pub peer_python: Option<PathBuf>,
    /// Skip the Python peer.
    #[arg(long)]
    pub no_peer: bool,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl BenchOptions {
    /// The sizes actually used: `--quick` shrinks everything.
    fn effective(&self) -> Self {
        let mut options = self.clone();
        if self.quick {
            options.reads = 20_000;
            options.hotlist_size = 10_000;
            options.latency_rate = 2_000;
            options.latency_seconds = 4;
            options.slow_sink_seconds = 4;
        }
        options
    }
}

const READS_TOPIC: &str = "bench-reads";
const LATENCY_TOPIC: &str = "bench-latency-reads";

pub async fn run_bench(options: BenchOptions) -> Result<Results> {
    let options = options.effective();
    let temp_dir;
    let work_dir = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp_dir = tempfile::Builder::new()
                .prefix("platestream-bench-")
                .tempdir()
                .context("creating a temporary work directory")?;
            temp_dir.path().to_owned()
        }
    };
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let mut results = Results::new(&options);

    eprintln!("bench: starting a tansu broker on loopback");
    let broker = tokio::task::spawn_blocking(TansuBroker::start).await??;
    let settings = KafkaSettings::new(broker.bootstrap_servers());
    ensure_topics(
        &settings.producer_config(),
        &[
            (READS_TOPIC, options.partitions),
            (LATENCY_TOPIC, options.partitions),
            ("bench-alerts", 1),
            ("bench-latency-alerts", 1),
            ("bench-covert-alerts", 1),
            ("bench-dead-letter", 1),
            ("bench-peer-alerts", 1),
        ],
        Duration::from_secs(30),
    )
    .await?;
    results.tansu_version = broker_version();

    let blocking_options = options.clone();
    let blocking_work_dir = work_dir.clone();
    let results = tokio::task::spawn_blocking(move || -> Result<Results> {
        run_phases(
            &blocking_options,
            &blocking_work_dir,
            &settings,
            &mut results,
        )?;
        Ok(results)
    })
    .await??;
    drop(broker);
    let markdown = results.markdown();
    std::fs::write(&options.out, &markdown)
        .with_context(|| format!("writing {}", options.out.display()))?;
    println!("{markdown}");
    eprintln!("bench: results written to {}", options.out.display());
    Ok(results)
}

fn run_phases(
    options: &BenchOptions,
    work_dir: &std::path::Path,
    settings: &KafkaSettings,
    results: &mut Results,
) -> Result<()> {
    let workload = workload::prepare(options, work_dir)?;
    results.workload = Some(workload.summary.clone());
    results.produced = workload::fill_topic(settings, READS_TOPIC, &workload.reads_file)?;

    eprintln!("bench: (1a) ceiling: a plain rdkafka consumer drains the topic");
    results.ceiling = Some(ceiling::drain(
        settings,
        READS_TOPIC,
        "bench-ceiling",
        results.produced,
    )?);

    eprintln!("bench: (1b) platestream run drains the topic");
    let engine_config = EngineConfig {
        settings: settings.clone(),
        raw_topic: READS_TOPIC.to_owned(),
        alerts_topic: "bench-alerts".to_owned(),
        group: "bench-engine".to_owned(),
        hotlist: workload.hotlist_file.clone(),
        archive_dir: work_dir.join("engine-archive"),
        slow_sink_ms: 0,
    };
    let engine = EngineProcess::start(&engine_config, work_dir, "engine")?;
    results.engine = Some(engine.run_until_consumed(results.produced)?);

    eprintln!("bench: (2) offline: the serde_json + Parquet floor and replay");
    results.offline = Some(offline::run(
        &workload.reads_file,
        &workload.hotlist_file,
        work_dir,
    )?);

    eprintln!(
        "bench: (3) alert latency at {} reads/s for {} s",
        options.latency_rate, options.latency_seconds
    );
    results.latency = Some(latency::run(options, settings, &workload, work_dir)?);

    eprintln!(
        "bench: (4) slow archive writer ({} ms per 1,000 rows) for {} s",
        options.slow_sink_ms, options.slow_sink_seconds
    );
    let slow_config = EngineConfig {
        group: "bench-engine-slow-sink".to_owned(),
        archive_dir: work_dir.join("slow-sink-archive"),
        slow_sink_ms: options.slow_sink_ms,
        ..engine_config
    };
    let slow = EngineProcess::start(&slow_config, work_dir, "slow-sink")?;
    results.slow_sink = Some(slow.run_for(
        Duration::from_secs(options.slow_sink_seconds),
        results.produced,
    )?);

    results.peer = if options.no_peer {
        peer::PeerOutcome::Skipped("--no-peer".to_owned())
    } else {
        eprintln!("bench: (5) the Python peer drains the topic");
        peer::run(
            options,
            settings,
            READS_TOPIC,
            &workload,
            work_dir,
            results.produced,
        )?
    };
    results.finish();
    Ok(())
}

fn broker_version() -> String {
    let Ok(binary) = crate::broker::ensure_tansu() else {
        return "unknown".to_owned();
    };
    std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|version| !version.is_empty())
        .unwrap_or_else(|| format!("tansu {}", crate::broker::TANSU_VERSION))
}
