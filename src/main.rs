use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use platestream::bench::{run_bench, BenchOptions};
use platestream::config::Config;
use platestream::config::ReaderSettings;
use platestream::demo::{produce_simulated, run_demo, DemoOptions};
use platestream::evaluate::{evaluate, markdown_table, EvaluateOptions};
use platestream::replay::{replay, replay_pipeline, ALERTS_FILE, DEAD_LETTER_FILE};
use platestream::run::run_engine;
use platestream::search::{parse_point, parse_radius, print_hits, search_archive, SearchOptions};
use platestream::serve::{ctrl_c_or_sigterm, serve, shutdown_signal};
use platestream::simulate_cmd::{simulate_to_writer, SimulateOptions, DEFAULT_START};
use platestream_connectors::kafka::{ensure_topics, KafkaSettings};
use platestream_engine::description::Area;
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::Timestamp;

// Reads are decoded on the prepare threads and freed on the consuming thread; glibc's malloc
// spent about 5 % of the consuming thread on those cross-thread frees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// platestream: license-plate reads from any vendor, matched against hotlists in the stream,
/// alerted within milliseconds and archived to Parquet.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine: a local Kafka broker (tansu), simulated readers
    /// around Washington DC, live alerts, and a Parquet archive.
    Demo(DemoOptions),
    /// Run the engine against a Kafka cluster described by a config file (see
    /// platestream.example.toml); every setting can be overridden by PLATESTREAM_... variables.
    Run {
        /// The engine's config file (platestream.toml; see platestream.example.toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Create the configured topics if they do not exist (for brokers that do not auto-create).
        #[arg(long)]
        create_topics: bool,
        #[command(flatten)]
        layout: TopicLayoutArgs,
    },
    /// Accept reads that readers push (vendor webhooks) over HTTP and produce them to Kafka; see
    /// the [ingest] section of platestream.example.toml.
    Serve {
        /// The config file with the [ingest] section (platestream.toml).
        #[arg(long, short)]
        config: PathBuf,
        /// Create the vendors' topics if they do not exist (for brokers that do not auto-create).
        #[arg(long)]
        create_topics: bool,
        #[command(flatten)]
        layout: TopicLayoutArgs,
    },
    /// Generate simulated reader traffic as NDJSON (canonical reads) or into a Kafka topic.
    Simulate {
        /// NDJSON output file (one canonical read per line).
        #[arg(long, conflicts_with = "brokers", required_unless_present = "brokers")]
        out: Option<PathBuf>,
        /// Number of messages written to --out (with --brokers, --seconds and --rate say how many).
        #[arg(long, default_value_t = 100_000, conflicts_with = "brokers")]
        count: u64,
        /// Kafka bootstrap servers to stream to instead of a file.
        #[arg(long)]
        brokers: Option<String>,
        /// Topic to stream to (with --brokers); created if missing.
        #[arg(long, default_value = "plate-reads")]
        topic: String,
        /// How long to stream (with --brokers).
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Reads per second: the simulated clock's pace in files, the send rate to Kafka.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// First observation time in files (RFC 3339); reads sent with --brokers are observed now.
        #[arg(long, default_value = DEFAULT_START, conflicts_with = "brokers")]
        start: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Distinct vehicles in the simulated city.
        #[arg(long, default_value_t = 20_000)]
        vehicles: usize,
        #[arg(long, default_value_t = 0.01)]
        hotlist_fraction: f64,
        /// Share of reads whose plate text is OCR-noised (the truth is kept in --truth-out).
        #[arg(long, default_value_t = 0.03)]
        misread_rate: f64,
        #[arg(long, default_value_t = 0.0)]
        malformed_rate: f64,
        /// Share of messages that report the previous vehicle pass again (another video frame).
        #[arg(long, default_value_t = 0.0)]
        repeat_frame_rate: f64,
        /// Each simulated reader speaks one vendor's format (canonical, rekor, plate_recognizer,
        /// genetec, axis): replay such a file with --format auto.
        #[arg(long)]
        vendor_mix: bool,
        /// Write the sample hotlist (CSV) here.
        #[arg(long)]
        hotlist_out: Option<PathBuf>,
        /// Write each line's ground truth (NDJSON) here (with --out: its `line` is the line of
        /// the file it describes).
        #[arg(long, conflicts_with = "brokers")]
        truth_out: Option<PathBuf>,
        /// Write the simulated readers and nearby cameras as a registry CSV here
        /// (schemas/registry.md), for `platestream query incident --registry FILE`.
        #[arg(long)]
        registry_out: Option<PathBuf>,
        /// Give every read an appearance embedding of this length (0: none): a noisy copy of its
        /// vehicle's identity vector.
        #[arg(long, default_value_t = 0)]
        embedding_dim: usize,
        /// Norm of the per-read noise on the identity vector (0.35: same-vehicle cosine ≈ 0.94).
        #[arg(long, default_value_t = platestream_engine::simulate::DEFAULT_EMBEDDING_NOISE)]
        embedding_noise: f64,
        /// Write BOLOs (CSV) for some hotlisted vehicles here: descriptions, and with
        /// --embedding-dim their identity vectors as reference vectors.
        #[arg(long)]
        bolo_out: Option<PathBuf>,
        /// Vehicles --bolo-out describes.
        #[arg(long, default_value_t = 5)]
        bolo_count: usize,
    },
    /// Find the archived reads whose appearance embedding is nearest a vector or another read,
    /// within a time range and area.
    Search {
        /// The archive written by run, demo or replay (its reads/ table).
        #[arg(long)]
        archive: PathBuf,
        /// JSON file holding the query vector ([0.1, ...] or [[0.1, ...], ...]).
        #[arg(long, conflicts_with = "read_id", required_unless_present = "read_id")]
        vector: Option<PathBuf>,
        /// Use this archived read's embedding as the query (the read itself is left out).
        #[arg(long)]
        read_id: Option<String>,
        /// Earliest observation time (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Latest observation time, exclusive (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Centre of the area, LAT,LON.
        #[arg(long, requires = "radius")]
        near: Option<String>,
        /// Radius around --near: 500m, 2km.
        #[arg(long, requires = "near")]
        radius: Option<String>,
        /// Reads to print.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Compare with every read instead of the HNSW index (exact, slower).
        #[arg(long)]
        exact: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Benchmark end to end on this machine, each figure beside a baseline measured in the same
    /// run: broker drain ceiling vs `run`, a serde_json+Parquet floor vs `replay`, alert latency,
    /// memory with a slow archive, and a Python peer. Writes a markdown table (BENCHMARKS.md).
    Bench(BenchOptions),
    /// Measure matching against the simulator's ground truth: per matching mode and list size,
    /// the share of hotlisted vehicle passes caught and the false alerts per 100k reads.
    Evaluate(EvaluateOptions),
    /// Build an archive of simulated reads and time the investigative queries beside full scans.
    #[command(hide = true)]
    BenchQueries(platestream::bench_queries::BenchQueriesOptions),
    /// Hand-entered hotlist changes (an AMBER alert) sent to the live updates topic every engine
    /// follows, and checks of hotlist files before they are deployed.
    Hotlist(platestream::hotlist_cmd::HotlistArgs),
    /// Investigate over the Parquet archive: incident, plate, stakeout, convoy, frequency, or any SQL.
    Query(platestream::query::QueryArgs),
    /// Merge the many small files of closed hours into few large ones, without losing or
    /// duplicating a row (checked before any input is deleted).
    Compact {
        /// The archive directory; default: [archive] dir of --config, else ./platestream-data.
        #[arg(long)]
        archive: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Compact only hours that ended at or before this time (RFC 3339); default: an hour ago,
        /// so late reads of the last hour still find their files.
        #[arg(long)]
        before: Option<String>,
        /// Rows per compacted file at most; also the rows a day's plate-ordered copy sorts in
        /// memory at once (about 300 bytes each).
        #[arg(long, default_value_t = 4_000_000)]
        max_rows: usize,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Run decode → normalize → match → archive over NDJSON files without Kafka: the Parquet
    /// archive under OUT, alerts in OUT/alerts.ndjson, refused lines in OUT/dead-letter.ndjson.
    Replay {
        /// NDJSON input, one read per line (repeatable).
        #[arg(long, required = true)]
        input: Vec<PathBuf>,
        /// Hotlist CSV (repeatable).
        #[arg(long)]
        hotlist: Vec<PathBuf>,
        /// NCIC-style hotlist extract, fixed-width or comma-delimited (repeatable).
        #[arg(long)]
        ncic: Vec<PathBuf>,
        /// A config file whose [hotlists] section applies as the engine applies it: its list
        /// policies (covert routes, per-list windows, misread and partial switches), its
        /// suppression window, and its hotlist files besides --hotlist and --ncic.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Rows per archive segment.
        #[arg(long, default_value_t = 1_000_000)]
        segment_rows: usize,
        /// Wire format of the input lines: canonical, rekor, plate_recognizer, genetec, axis,
        /// generic (with --generic-mapping), or auto (recognize each line's vendor).
        #[arg(long, default_value = "canonical")]
        format: String,
        /// Column mapping of --format generic: JSON (schemas/examples/generic/mapping.json) or
        /// TOML with the keys of [readers.generic], to try a mapping on a vendor's sample before
        /// deploying it.
        #[arg(long)]
        generic_mapping: Option<PathBuf>,
        /// IANA time zone of readers that send local times without an offset.
        #[arg(long, default_value = "UTC")]
        reader_timezone: String,
        /// Where inline images are stored (content-addressed); default OUT/images.
        #[arg(long)]
        image_dir: Option<PathBuf>,
        /// Reports of a plate at a reader within this many ms are one vehicle pass; 0: keep all.
        #[arg(long, default_value_t = 3_000)]
        dedupe_window_ms: u64,
        /// Archive folded reports too, marked with duplicate_of.
        #[arg(long)]
        keep_duplicates: bool,
        /// Length of appearance embeddings; reads' embeddings of another length are removed (the
        /// read is kept) and counted.
        #[arg(long)]
        embedding_dim: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Threads that decode, normalize and match (one more writes the archive in line order);
        /// 1 keeps everything on one thread. Default: the machine's cores.
        #[arg(long)]
        threads: Option<usize>,
    },
}

/// How `--create-topics` makes the topics it creates.
#[derive(Debug, Clone, Copy, clap::Args)]
struct TopicLayoutArgs {
    /// Partitions of each topic --create-topics creates (engines of one group share a topic's
    /// partitions: one partition keeps all but one engine idle).
    #[arg(long, default_value_t = 1, requires = "create_topics", value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Copies of each topic --create-topics creates, on as many brokers (a production cluster
    /// keeps reads and alerts on more than one; 1 for a single broker such as the demo's).
    #[arg(long, default_value_t = 1, requires = "create_topics", value_parser = clap::value_parser!(i32).range(1..))]
    replication_factor: i32,
}

impl TopicLayoutArgs {
    fn when(self, create_topics: bool) -> Option<platestream::run::TopicLayout> {
        create_topics.then_some(platestream::run::TopicLayout {
            partitions: self.partitions,
            replication: self.replication_factor,
        })
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,platestream=info,platestream_connectors=info")
    });
    // Colours only for a person at a terminal: escape codes in a log file or journal are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve_metrics(listen: Option<SocketAddr>) -> Result<()> {
    if let Some(address) = listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(address)
            .install()
            .with_context(|| format!("serving metrics on {address}"))?;
        tracing::info!(%address, "prometheus metrics at /metrics");
    }
    Ok(())
}

/// Ctrl-C or SIGTERM sets the flag; the engine stops at its next poll and commits what it archived.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    tokio::spawn(async move {
        ctrl_c_or_sigterm().await;
        eprintln!("\nstopping: committing what is archived...");
        handler_flag.store(true, Ordering::Relaxed);
    });
    flag
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    stop_quietly_when_stdout_closes();
    quiet_when_output_closes(run_command(cli.command).await)
}

/// `platestream compact | head -1`: `println!` panics once the reader has gone; like other
/// command-line tools, stop without a word then (the work before the output is done).
fn stop_quietly_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// `platestream query ... | head` closes the pipe early; like other command-line tools, stop
/// without an error then.
fn quiet_when_output_closes(outcome: Result<()>) -> Result<()> {
    match outcome {
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

async fn run_command(command: Command) -> Result<()> {
    match command {
        Command::Demo(options) => {
            serve_metrics(options.metrics_listen)?;
            run_demo(options, stop_on_ctrl_c()).await
        }
        Command::Run {
            config,
            create_topics,
            layout,
        } => {
            let config = Config::load(&config)?;
            serve_metrics(config.metrics.listen)?;
            run_engine(config, layout.when(create_topics), stop_on_ctrl_c()).await
        }
        Command::Serve {
            config,
            create_topics,
            layout,
        } => {
            let config = Config::load(&config)?;
            let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .context("installing the metrics recorder")?;
            serve(
                config,
                layout.when(create_topics),
                Some(metrics),
                shutdown_signal(),
            )
            .await
        }
        Command::Simulate {
            out,
            count,
            brokers,
            topic,
            seconds,
            rate,
            start,
            seed,
            vehicles,
            hotlist_fraction,
            misread_rate,
            malformed_rate,
            repeat_frame_rate,
            vendor_mix,
            hotlist_out,
            truth_out,
            registry_out,
            embedding_dim,
            embedding_noise,
            bolo_out,
            bolo_count,
        } => {
            let start = Timestamp::parse_rfc3339(&start)
                .with_context(|| format!("--start {start:?} is not an RFC 3339 time"))?;
            let config = SimulatorConfig {
                seed,
                vehicles,
                hotlist_fraction,
                misread_rate,
                malformed_rate,
                repeat_frame_rate,
                vendor_mix,
                embedding_dim,
                embedding_noise,
                ..SimulatorConfig::default()
            };
            config.check().map_err(anyhow::Error::msg)?;
            if !(rate.is_finite() && rate > 0.0) {
                anyhow::bail!("--rate {rate} must be more than 0 reads per second");
            }
            if let Some(brokers) = brokers {
                let mut settings = KafkaSettings::new(brokers);
                settings.raw_topics = vec![topic.clone()];
                ensure_topics(
                    &settings.producer_config(),
                    &[(topic.as_str(), 1)],
                    std::time::Duration::from_secs(30),
                )
                .await?;
                let simulator = Simulator::new(config);
                platestream::simulate_cmd::write_side_files(
                    &simulator,
                    hotlist_out.as_deref(),
                    registry_out.as_deref(),
                    bolo_out.as_deref(),
                    bolo_count,
                )?;
                let produced = AtomicU64::new(0);
                let never = AtomicBool::new(false);
                tokio::task::block_in_place(|| {
                    produce_simulated(
                        &settings,
                        simulator,
                        seconds,
                        rate,
                        &produced,
                        &never,
                        &mut |_, _| Ok(()),
                    )
                })?;
                println!("sent {} reads to {topic}", produced.load(Ordering::Relaxed));
                return Ok(());
            }
            let Some(out) = out else {
                anyhow::bail!("give --out FILE or --brokers HOSTS");
            };
            let options = SimulateOptions {
                count,
                rate,
                start,
                config,
                hotlist_out,
                truth_out,
                registry_out,
                bolo_out,
                bolo_count,
            };
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let hotlisted = simulate_to_writer(&options, &mut writer)?;
            std::io::Write::flush(&mut writer)?;
            println!(
                "wrote {count} messages to {} ({hotlisted} reads of hotlisted vehicles)",
                out.display()
            );
            Ok(())
        }
        Command::Bench(options) => {
            let results = run_bench(options).await?;
            let mismatches = results.count_mismatches();
            if !mismatches.is_empty() {
                anyhow::bail!("inconsistent counts: {}", mismatches.join("; "));
            }
            Ok(())
        }
        Command::BenchQueries(options) => {
            tokio::task::block_in_place(|| platestream::bench_queries::bench_queries(&options))
        }
        Command::Query(args) => platestream::query::run_query(args).await,
        Command::Hotlist(args) => platestream::hotlist_cmd::run_hotlist(args).await,
        Command::Compact {
            archive,
            config,
            before,
            max_rows,
            quiet,
        } => tokio::task::block_in_place(|| {
            platestream::compact_cmd::run_compact(
                archive.as_deref(),
                config.as_deref(),
                before.as_deref(),
                max_rows,
                quiet,
            )
        }),
        Command::Search {
            archive,
            vector,
            read_id,
            from,
            to,
            near,
            radius,
            k,
            exact,
            json,
            quiet,
        } => {
            // The same times `query` takes, and the same refusal of an empty range.
            let time = |flag: &str, text: Option<String>| -> Result<Option<Timestamp>> {
                text.map(|text| platestream::query::args::parse_time(flag, &text).map(Timestamp))
                    .transpose()
            };
            if let (Some(from), Some(to)) =
                (time("--from", from.clone())?, time("--to", to.clone())?)
            {
                platestream::query::args::TimeRange::new(from.millis(), to.millis())?;
            }
            let near = match (near, radius) {
                (Some(near), Some(radius)) => {
                    let (lat, lon) = parse_point(&near)?;
                    Some(Area {
                        lat,
                        lon,
                        radius_m: parse_radius(&radius)?,
                    })
                }
                _ => None,
            };
            let options = SearchOptions {
                archive,
                vector_file: vector,
                read_id,
                from: time("--from", from)?,
                to: time("--to", to)?,
                near,
                k,
                exact,
                show_progress: !quiet,
            };
            let hits = tokio::task::block_in_place(|| search_archive(&options))?;
            print_hits(&hits, json)
        }
        Command::Evaluate(options) => {
            let rows = tokio::task::block_in_place(|| evaluate(&options))?;
            println!(
                "{} simulated reads ({} vehicles, {:.1} % hotlisted, {:.1} % OCR misreads), seed {}\n",
                options.reads,
                options.vehicles,
                options.hotlist_fraction * 100.0,
                options.misread_rate * 100.0,
                options.seed
            );
            print!("{}", markdown_table(&rows));
            Ok(())
        }
        Command::Replay {
            input,
            mut hotlist,
            mut ncic,
            config,
            out,
            segment_rows,
            quiet,
            format,
            generic_mapping,
            reader_timezone,
            image_dir,
            dedupe_window_ms,
            keep_duplicates,
            threads,
            embedding_dim,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
                .max(1);
            for path in &input {
                if !path.is_file() {
                    anyhow::bail!("--input {} does not exist", path.display());
                }
                platestream::replay::check_one_message_per_line(path)?;
            }
            let readers = ReaderSettings {
                timezone: reader_timezone,
                image_dir: image_dir.unwrap_or_else(|| out.join("images")),
                dedupe_window_ms,
                keep_duplicates,
                resend_horizon_secs: ReaderSettings::default().resend_horizon_secs,
                generic: generic_mapping
                    .as_deref()
                    .map(|path| platestream::replay::load_generic_mapping(path, &format))
                    .transpose()?,
                embedding_dim,
            };
            let hotlist_settings = match &config {
                Some(path) => platestream::config::HotlistsConfig::load(path)?.hotlists,
                None => platestream::config::HotlistSettings::default(),
            };
            hotlist.extend(hotlist_settings.files.iter().cloned());
            ncic.extend(hotlist_settings.ncic_files.iter().cloned());
            let mut pipeline =
                replay_pipeline(&hotlist, &ncic, &hotlist_settings, &format, &readers)?;
            if let Some(dim) = embedding_dim {
                pipeline = pipeline.with_embedding_dim(dim);
            }
            let summary = replay(&input, &out, &mut pipeline, segment_rows, threads, !quiet)?;
            let counts = summary.counts;
            let seconds = summary.elapsed.as_secs_f64().max(1e-9);
            // The rate is of lines: a file of duplicates or refused lines is still read at it.
            println!(
                "lines read          {} ({:.0} lines/s)",
                counts.messages,
                counts.messages as f64 / seconds
            );
            if summary.blank_lines > 0 {
                println!(
                    "blank lines         {} (skipped: empty or whitespace only, not messages)",
                    summary.blank_lines
                );
            }
            println!("reads archived      {}", summary.reads_archived);
            if counts.not_reads > 0 {
                println!(
                    "not reads           {} (well-formed messages holding no read: heartbeats, CSV headers)",
                    counts.not_reads
                );
            }
            println!(
                "duplicates folded   {} (reports of a vehicle pass already read)",
                counts.duplicates_suppressed
            );
            if counts.duplicates_kept > 0 {
                println!(
                    "duplicates kept     {} (of those folded, archived too: --keep-duplicates)",
                    counts.duplicates_kept
                );
            }
            println!(
                "dead-lettered       {} ({})",
                counts.dead_lettered,
                out.join(DEAD_LETTER_FILE).display()
            );
            if counts.reads_refused > 0 {
                println!(
                    "reads refused       {} (in {} of the dead-lettered lines, whose other reads went on)",
                    counts.reads_refused, counts.messages_partly_refused
                );
            }
            println!(
                "alerts              {} ({})",
                counts.alerts,
                out.join(ALERTS_FILE).display()
            );
            if counts.embeddings_dropped > 0 {
                println!(
                    "embeddings dropped  {} (not --embedding-dim long; the reads were kept)",
                    counts.embeddings_dropped
                );
            }
            println!(
                "archive files       {} ({:.1} MiB) under {}",
                summary.files_written,
                summary.bytes_written as f64 / 1_048_576.0,
                out.display()
            );
            Ok(())
        }
    }
}
