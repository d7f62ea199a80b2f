//! `platestream demo`: the whole pipeline on this machine — a tansu broker, simulated readers
//! around Washington DC streaming into it, and the engine alerting and archiving.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use platestream_connectors::kafka::hotlist_updates::UpdatesStatus;
use platestream_connectors::kafka::{
    ensure_compacted_topics, ensure_topics, group_lag, publish_updates, spawn_hotlist_updates,
    KafkaSettings, LiveUpdates, StopWhen, StreamEngine, StreamObserver, StreamOptions,
    StreamSummary, UpdateMessage,
};
use platestream_engine::alert::Alert;
use platestream_engine::alert_policy::DEFAULT_SUPPRESSION_WINDOW_SECS;
use platestream_engine::archive::ArchiveConfig;
use platestream_engine::simulate::{SimulatedMessage, Simulator, SimulatorConfig};
use platestream_engine::unarchived::UnarchivedReads;
use platestream_engine::Timestamp;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::archive_stats::archive_stats;
use crate::broker::TansuBroker;
use crate::config::ReaderSettings;
use crate::hotlists::{build_store, load_hotlist_files};
use crate::readers::pipeline_for;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// How long the simulated readers stream.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Where the archive and the sample hotlist are written.
    #[arg(long, default_value = "platestream-data")]
    pub data_dir: PathBuf,
    /// Reads per second from the simulated readers.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Partitions of the raw-reads topic.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Share of vehicles on the sample hotlist.
    #[arg(long, default_value_t = 0.01)]
    pub hotlist_fraction: f64,
    /// Share of deliberately malformed messages (to see dead-lettering).
    #[arg(long, default_value_t = 0.002)]
    pub malformed_rate: f64,
    /// Print only the summary, not every alert.
    #[arg(long)]
    pub quiet: bool,
    /// Serve Prometheus metrics at this address while the demo runs.
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

struct PrintAlerts {
    enabled: bool,
}

impl StreamObserver for PrintAlerts {
    fn on_alert(&mut self, alert: &Alert) {
        if self.enabled {
            println!("{}", alert.summary_line());
        }
    }
}

pub async fn run_demo(options: DemoOptions, stop_flag: Arc<AtomicBool>) -> Result<()> {
    let config = SimulatorConfig {
        seed: options.seed,
        hotlist_fraction: options.hotlist_fraction,
        malformed_rate: options.malformed_rate,
        repeat_frame_rate: 0.25,
        vendor_mix: true,
        ..SimulatorConfig::default()
    };
    config.check().map_err(anyhow::Error::msg)?;
    if options.rate == 0 {
        anyhow::bail!("--rate must be at least 1 read per second");
    }
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("creating {}", options.data_dir.display()))?;
    let data_dir = options.data_dir.canonicalize()?;

    println!("starting a tansu Kafka broker on loopback (in-memory storage)...");
    let broker = tokio::task::spawn_blocking(TansuBroker::start).await??;
    let mut settings = KafkaSettings::new(broker.bootstrap_servers());
    settings.group_id = "platestream-demo".to_owned();
    // The simulated city mixes vendors on one topic: each message's format is recognized.
    settings.raw_format = "auto".to_owned();
    let raw_topic = settings.raw_topics[0].clone();
    ensure_topics(
        &settings.producer_config(),
        &[
            (raw_topic.as_str(), options.partitions),
            (settings.alerts_topic.as_str(), 1),
            (settings.covert_alerts_topic.as_str(), 1),
            (settings.dead_letter_topic.as_str(), 1),
        ],
        Duration::from_secs(30),
    )
    .await?;
    ensure_compacted_topics(
        &settings.producer_config(),
        &[(UPDATES_TOPIC, 1)],
        Duration::from_secs(30),
    )
    .await?;
    println!(
        "broker {} with topics {}, {}, {}, {UPDATES_TOPIC}",
        settings.bootstrap_servers, raw_topic, settings.alerts_topic, settings.dead_letter_topic
    );

    let simulator = Simulator::new(config);
    let hotlist_path = data_dir.join("sample-hotlist.csv");
    simulator.write_hotlist_csv(std::fs::File::create(&hotlist_path)?)?;
    let registry_path = data_dir.join("registry.csv");
    platestream_engine::registry::write_csv(
        &platestream_engine::registry::simulated_registry(simulator.readers()),
        std::fs::File::create(&registry_path)
            .with_context(|| format!("creating {}", registry_path.display()))?,
    )
    .with_context(|| format!("writing {}", registry_path.display()))?;
    let entries = load_hotlist_files(std::slice::from_ref(&hotlist_path))?;
    println!(
        "sample hotlist: {} entries ({}), {} readers around Washington DC",
        entries.len(),
        hotlist_path.display(),
        simulator.readers().len()
    );

    // The dispatcher's corner for the 911 call: a fixed reader, the README's 14th & U if present.
    let call_place = simulator
        .readers()
        .iter()
        .filter(|reader| !reader.mobile)
        .find(|reader| reader.name.contains("14th St NW & U St NW"))
        .or_else(|| simulator.readers().iter().find(|reader| !reader.mobile))
        .cloned();
    let unarchived = Arc::new(UnarchivedReads::new(
        platestream_engine::unarchived::DEFAULT_MAX_READS,
    ));
    let engine_api =
        crate::demo_call::serve_api(Arc::clone(&unarchived), Arc::clone(&stop_flag)).await?;
    let engine_stop = StopWhen {
        flag: Arc::clone(&stop_flag),
        idle: None,
        messages: None,
    };
    let engine = StreamEngine::new(
        settings.clone(),
        Arc::new(ArchiveConfig::new(&data_dir)),
        StreamOptions {
            segment_max_age: Duration::from_secs(5),
            stop: engine_stop,
            unarchived: Some(unarchived),
            ..StreamOptions::default()
        },
    );
    let print_alerts = !options.quiet;
    let readers = ReaderSettings {
        image_dir: data_dir.join("images"),
        ..ReaderSettings::default()
    };
    let (store, alert_policy) = build_store(entries, &[], DEFAULT_SUPPRESSION_WINDOW_SECS);
    // The engine follows the live updates topic as `platestream run` does with
    // hotlists.updates_topic, so alerts entered by hand (the demo's dispatcher below, or
    // `platestream hotlist put` in another terminal) match while it runs.
    let updates = spawn_hotlist_updates(
        &settings,
        UPDATES_TOPIC,
        Arc::clone(&store),
        Arc::new(LiveUpdates::default()),
        Arc::clone(&stop_flag),
    )?;
    let mut pipeline = pipeline_for(&settings, &readers, store)?.with_alert_policy(alert_policy);

    let produced = Arc::new(AtomicU64::new(0));
    let producer_done = Arc::new(AtomicBool::new(false));
    let mut dispatcher = DemoDispatcher {
        settings: settings.clone(),
        runtime: tokio::runtime::Handle::current(),
        status: Arc::clone(&updates.status),
        due: Some(Instant::now() + Duration::from_secs(options.seconds) / 3),
        entered: None,
        print: print_alerts,
    };
    let producer_thread = {
        let settings = settings.clone();
        let produced = Arc::clone(&produced);
        let producer_done = Arc::clone(&producer_done);
        let stop_flag = Arc::clone(&stop_flag);
        let (seconds, rate) = (options.seconds, options.rate);
        std::thread::spawn(move || {
            let result = produce_simulated(
                &settings,
                simulator,
                seconds,
                rate as f64,
                &produced,
                &stop_flag,
                &mut |simulator, message| dispatcher.before_send(simulator, message),
            );
            producer_done.store(true, Ordering::Relaxed);
            result.map(|()| dispatcher.entered)
        })
    };

    println!(
        "streaming {} reads/s for {} s; alerts follow (Ctrl-C stops early)",
        options.rate, options.seconds
    );
    println!(
        "enter an alert by hand while it runs: platestream hotlist put --brokers {} --topic {UPDATES_TOPIC} --list amber_alert --plate PLATE",
        settings.bootstrap_servers
    );
    if let Some(place) = &call_place {
        println!(
            "ask what passed {} while it runs: {}",
            place.name,
            crate::demo_call::query_command_line(&engine_api, &data_dir, place)
        );
    }
    println!();
    let engine_thread = std::thread::spawn(move || {
        engine.run(
            &mut pipeline,
            &mut PrintAlerts {
                enabled: print_alerts,
            },
        )
    });

    // Once the readers stop, let the engine drain what they sent, then stop it.
    let started = Instant::now();
    let mut call_due = call_place.as_ref().map(|place| {
        (
            started + Duration::from_secs(options.seconds) * 2 / 3,
            place,
        )
    });
    while !producer_done.load(Ordering::Relaxed) {
        if let Some((due, place)) = call_due {
            if Instant::now() >= due && !options.quiet {
                call_due = None;
                if let Err(error) =
                    crate::demo_call::answer_call(&data_dir, &engine_api, place).await
                {
                    println!("[dispatcher] the incident query failed: {error:#}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let produced_total = produced.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(20);
    while !stop_flag.load(Ordering::Relaxed) && Instant::now() < drain_deadline {
        let lag = group_lag(&settings, &raw_topic)?;
        if lag == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop_flag.store(true, Ordering::Relaxed);
    let producer_result = producer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the simulated readers' thread panicked"))?;
    let entered_by_hand = producer_result?;
    let summary = engine_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))??;
    let updates_applied = updates.status.applied.load(Ordering::Relaxed);
    updates
        .join()
        .context("following the hotlist updates topic")?;
    let lag = group_lag(&settings, &raw_topic)?;
    drop(broker);
    print_summary(&summary, produced_total, started.elapsed(), &data_dir, lag)?;
    println!(
        "hotlist entries entered by hand      {updates_applied}{}",
        entered_by_hand.map_or(String::new(), |plate| format!(
            " (the dispatcher's AMBER alert for {plate})"
        ))
    );
    Ok(())
}

/// The demo's live updates topic (`hotlists.updates_topic` of `platestream run`).
pub const UPDATES_TOPIC: &str = "plate-hotlist-updates";

/// A dispatcher at the demo's real-time crime center: a third of the way into the run, an AMBER
/// alert comes in for a vehicle that is about to pass one of the readers, and is entered by hand
/// through the updates topic, exactly as `platestream hotlist put` does. The read that follows is
/// the first the engine matches against it.
struct DemoDispatcher {
    settings: KafkaSettings,
    runtime: tokio::runtime::Handle,
    status: Arc<UpdatesStatus>,
    /// When to enter the alert; `None` once tried.
    due: Option<Instant>,
    /// The plate entered, once it is.
    entered: Option<String>,
    print: bool,
}

impl DemoDispatcher {
    fn before_send(&mut self, simulator: &Simulator, message: &SimulatedMessage) -> Result<()> {
        if self.due.is_none_or(|due| Instant::now() < due) {
            return Ok(());
        }
        // A vehicle read correctly, not on the sample hotlist already.
        let Some(truth) = message
            .truth
            .as_ref()
            .filter(|truth| !truth.hotlisted && !truth.misread)
        else {
            return Ok(());
        };
        self.due = None;
        let looks = simulator.vehicle_looks(truth.vehicle_id);
        let mut value = serde_json::json!({
            "plate": truth.true_plate,
            "jurisdiction": truth.true_jurisdiction,
            "priority": 1,
            "reason": "AMBER alert: child abduction (entered by the demo's dispatcher)",
            "entered_by": "demo dispatcher",
            "entered_at": Timestamp::now().to_string(),
        });
        if let (Some(looks), Some(object)) = (&looks, value.as_object_mut()) {
            object.insert("make".into(), looks.make.into());
            object.insert("model".into(), looks.model.into());
            object.insert("color".into(), looks.color.into());
        }
        let message = UpdateMessage {
            key: format!("amber_alert/DEMO-{}", truth.vehicle_id),
            value: Some(value.to_string()),
        };
        let applied_before = self.status.applied.load(Ordering::Relaxed);
        let entered_at = Instant::now();
        if let Err(error) = self.runtime.block_on(publish_updates(
            &self.settings,
            UPDATES_TOPIC,
            std::slice::from_ref(&message),
            |_| {},
        )) {
            tracing::warn!(%error, "the demo's dispatcher could not enter its AMBER alert");
            return Ok(());
        }
        self.entered = Some(truth.true_plate.clone());
        // The engine's updates thread applies it within a poll; the vehicle's read goes out after.
        let deadline = entered_at + Duration::from_secs(10);
        while self.status.applied.load(Ordering::Relaxed) == applied_before
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.print {
            let vehicle = looks.map_or(String::new(), |looks| {
                format!(", a {} {} {}", looks.color, looks.make, looks.model)
            });
            println!(
                "\n[dispatcher] AMBER alert entered by hand for {} [{}]{vehicle}: on {UPDATES_TOPIC}, applied by the engine {} ms later",
                truth.true_plate,
                truth.true_jurisdiction,
                entered_at.elapsed().as_millis()
            );
            println!(
                "             (as `platestream hotlist put --brokers {} --topic {UPDATES_TOPIC} --list amber_alert --plate {} --jurisdiction {} --priority 1` does); the vehicle is about to pass a reader\n",
                self.settings.bootstrap_servers, truth.true_plate, truth.true_jurisdiction
            );
        }
        Ok(())
    }
}

pub fn produce_simulated(
    settings: &KafkaSettings,
    mut simulator: Simulator,
    seconds: u64,
    rate: f64,
    produced: &AtomicU64,
    stop_flag: &AtomicBool,
    before_send: &mut dyn FnMut(&Simulator, &SimulatedMessage) -> Result<()>,
) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .producer_config()
        .set("linger.ms", "5")
        // tansu 0.6 serves a fetch only from the first offset of a record batch; one message per
        // batch lets the engine resume at any committed offset after a restart.
        .set("batch.num.messages", "1")
        .create()
        .context("creating the simulated readers' producer")?;
    let topic = &settings.raw_topics[0];
    let started = Instant::now();
    // `seconds × rate` in all: the pacing's last sleep may end past the deadline, and the reads
    // due by then are still sent.
    let total = (seconds as f64 * rate).round() as u64;
    let mut sent: u64 = 0;
    while sent < total && !stop_flag.load(Ordering::Relaxed) {
        // Pace by wall clock so a slow moment is caught up rather than lost.
        let due = ((started.elapsed().as_secs_f64() * rate) as u64).min(total);
        while sent < due {
            let message = simulator.next_message(Timestamp::now());
            before_send(&simulator, &message)?;
            let key = message
                .truth
                .as_ref()
                .map(|truth| truth.true_plate.clone())
                .unwrap_or_default();
            let mut record = BaseRecord::to(topic)
                .payload(&message.payload)
                .key(key.as_bytes());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        record = returned;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            sent += 1;
        }
        produced.store(sent, Ordering::Relaxed);
        if sent < total {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing simulated reads")?;
    produced.store(sent, Ordering::Relaxed);
    Ok(())
}

fn print_summary(
    summary: &StreamSummary,
    produced: u64,
    wall: Duration,
    data_dir: &std::path::Path,
    lag: Option<i64>,
) -> Result<()> {
    let counts = summary.counts;
    let stats = archive_stats(data_dir)?;
    let seconds = summary.elapsed.as_secs_f64().max(1e-9);
    println!("\n── platestream demo summary ─────────────────────────────");
    println!("reads produced by simulated readers  {produced}");
    println!(
        "messages consumed                    {} ({:.0}/s over {:.1} s)",
        counts.messages,
        counts.messages as f64 / seconds,
        seconds
    );
    println!(
        "  reads archived                     {}",
        summary.reads_archived
    );
    println!(
        "  duplicate frames folded            {}",
        counts.duplicates_suppressed
    );
    println!(
        "  dead-lettered (with reasons)       {}",
        counts.dead_lettered
    );
    if counts.messages_partly_refused > 0 {
        println!(
            "    of which partly refused          {} ({} reads refused, the others went on)",
            counts.messages_partly_refused, counts.reads_refused
        );
    }
    println!("  not reads (heartbeats)             {}", counts.not_reads);
    println!(
        "  skipped, archived by an earlier run {}",
        summary.already_archived
    );
    println!("alerts                               {}", counts.alerts);
    println!(
        "archive files written                {} ({:.1} MiB)",
        summary.files_written,
        summary.bytes_written as f64 / 1_048_576.0
    );
    println!(
        "archive read back                    {} reads, {} alerts in {} files",
        stats.read_rows, stats.alert_rows, stats.files
    );
    println!(
        "archive path                         {}",
        data_dir.display()
    );
    println!(
        "consumer lag after commit            {}",
        lag.map_or("unknown".to_owned(), |lag| lag.to_string())
    );
    println!(
        "wall time                            {:.1} s",
        wall.as_secs_f64()
    );
    Ok(())
}
