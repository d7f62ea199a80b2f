//! Alert latency: reads produced at a steady rate, hotlisted plates among them; for every alert,
//! the time from the producer handing its read to Kafka to the alert arriving on the alerts topic
//! (read by a consumer here: the alert is acknowledged and readable by then).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::simulate::Simulator;
use platestream_engine::Timestamp;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::engine_process::{EngineConfig, EngineOutcome, EngineProcess};
use super::workload::Workload;
use super::{BenchOptions, LATENCY_TOPIC};

const ALERTS_TOPIC: &str = "bench-latency-alerts";
/// The engine joins, loads its list and settles before reads count.
const WARM_UP: Duration = Duration::from_secs(2);
/// After the last read, alerts still on their way get this long.
const DRAIN: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Default)]
pub struct LatencyOutcome {
    pub rate: u64,
    pub seconds: u64,
    pub reads_measured: u64,
    pub alerts_measured: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub engine: EngineOutcome,
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

/// When each measured read was handed to the producer, by where it landed.
#[derive(Default)]
struct SendTimes {
    by_position: Mutex<HashMap<(i32, i64), u64>>,
}

impl ClientContext for SendTimes {}

impl ProducerContext for SendTimes {
    /// Microseconds since the epoch when the read was sent; 0 for warm-up reads.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_micros: usize) {
        if sent_micros == 0 {
            return;
        }
        if let Ok(message) = result {
            if let Ok(mut times) = self.by_position.lock() {
                times.insert((message.partition(), message.offset()), sent_micros as u64);
            }
        }
    }
}

pub fn run(
    options: &BenchOptions,
    settings: &KafkaSettings,
    workload: &Workload,
    work_dir: &std::path::Path,
) -> Result<LatencyOutcome> {
    let config = EngineConfig {
        settings: settings.clone(),
        raw_topic: LATENCY_TOPIC.to_owned(),
        alerts_topic: ALERTS_TOPIC.to_owned(),
        group: "bench-engine-latency".to_owned(),
        hotlist: workload.hotlist_file.clone(),
        archive_dir: work_dir.join("latency-archive"),
        slow_sink_ms: 0,
    };
    let mut engine = EngineProcess::start(&config, work_dir, "latency")?;

    let stop_alerts = Arc::new(AtomicBool::new(false));
    let alert_thread = {
        let settings = settings.clone();
        let stop = Arc::clone(&stop_alerts);
        std::thread::spawn(move || receive_alerts(&settings, &stop))
    };

    let producer: ThreadedProducer<SendTimes> = settings
        .producer_config()
        .set("linger.ms", "0")
        .create_with_context(SendTimes::default())
        .context("creating the latency producer")?;
    let mut simulator = Simulator::new(workload.simulator_config.clone());
    let rate = options.latency_rate.max(1);

    // Warm-up: reads flow until the engine has joined and consumes, then a little longer.
    let mut measuring_from: Option<Instant> = None;
    let mut paced_from = Instant::now();
    let mut sent_in_phase: u64 = 0;
    let mut reads_measured: u64 = 0;
    let mut last_check = Instant::now();
    let mut consuming_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let measuring = measuring_from.is_some();
        if let Some(from) = measuring_from {
            if from.elapsed() >= Duration::from_secs(options.latency_seconds) {
                break;
            }
        } else if last_check.elapsed() >= Duration::from_millis(100) {
            last_check = Instant::now();
            if consuming_since.is_none() && engine.consumed().unwrap_or(0) > 0 {
                consuming_since = Some(Instant::now());
            }
            if consuming_since.is_some_and(|since| since.elapsed() >= WARM_UP) {
                measuring_from = Some(Instant::now());
                paced_from = Instant::now();
                sent_in_phase = 0;
                continue;
            }
            engine.sample_memory();
            if Instant::now() > deadline {
                anyhow::bail!("the latency engine consumed nothing within 120 s");
            }
        }
        let due = (paced_from.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent_in_phase < due {
            let message = simulator.next_message(Timestamp::now());
            let sent = if measuring { micros_now() as usize } else { 0 };
            let mut record = BaseRecord::<[u8], [u8], usize>::with_opaque_to(LATENCY_TOPIC, sent)
                .payload(message.payload.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, returned)) => {
                        record = returned;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
            }
            sent_in_phase += 1;
            reads_measured += u64::from(measuring);
        }
        if measuring && last_check.elapsed() >= Duration::from_millis(250) {
            last_check = Instant::now();
            engine.sample_memory();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    producer
        .flush(Duration::from_secs(30))
        .context("flushing the latency reads")?;
    std::thread::sleep(DRAIN);
    stop_alerts.store(true, Ordering::Relaxed);
    let received = alert_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the alert consumer panicked"))??;
    let engine_outcome = engine.stop()?;

    let sent = producer
        .context()
        .by_position
        .lock()
        .map_err(|_| anyhow::anyhow!("send times poisoned"))?
        .clone();
    let mut latencies: Vec<u64> = received
        .iter()
        .filter_map(|(position, received_micros)| {
            let sent_micros = sent.get(position)?;
            Some(received_micros.saturating_sub(*sent_micros))
        })
        .collect();
    latencies.sort_unstable();
    let percentile = |share: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 * share) as usize).min(latencies.len() - 1);
        Duration::from_micros(latencies[index])
    };
    Ok(LatencyOutcome {
        rate,
        seconds: options.latency_seconds,
        reads_measured,
        alerts_measured: latencies.len() as u64,
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: latencies
            .last()
            .map_or(Duration::ZERO, |max| Duration::from_micros(*max)),
        engine: engine_outcome,
    })
}

/// Every alert's source read position and when the alert arrived here.
fn receive_alerts(settings: &KafkaSettings, stop: &AtomicBool) -> Result<Vec<((i32, i64), u64)>> {
    let consumer: BaseConsumer = settings
        .consumer_config()
        .set("group.id", "bench-latency-alerts-reader")
        // Answer as soon as one alert is there.
        .set("fetch.wait.max.ms", "1")
        .set("fetch.min.bytes", "1")
        .create()
        .context("creating the alert consumer")?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(ALERTS_TOPIC, 0, Offset::Beginning)
        .context("alert assignment")?;
    consumer
        .assign(&assignment)
        .context("assigning the alerts topic")?;
    let mut received = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(polled) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let arrived = micros_now();
        let message = match polled {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "alert consumer error");
                continue;
            }
        };
        let Some(alert) = message
            .payload()
            .and_then(|payload| serde_json::from_slice::<serde_json::Value>(payload).ok())
        else {
            continue;
        };
        let source = &alert["source"];
        if let (Some(partition), Some(offset)) =
            (source["partition"].as_i64(), source["offset"].as_i64())
        {
            received.push(((partition as i32, offset), arrived));
        }
    }
    Ok(received)
}
