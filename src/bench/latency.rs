//! Alert latency: reads produced at a steady rate, hotlisted plates among them; for every alert,
//! the time from the producer handing its read to Kafka to the alert arriving on the alerts topic
//! (read by a consumer here: the alert is acknowledged and readable by then).
//!
//! The baseline in the same run: a plain consumer of the reads topic times every read from the
//! same hand-over to its arrival, which is what the broker alone costs before any engine sees
//! the read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::simulate::Simulator;
use platestream_engine::Timestamp;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
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
    /// Read handed to the producer → its alert read from the alerts topic.
    pub alerts: Percentiles,
    /// Read handed to the producer → its alert raised by the engine (the alert's `raised_at`,
    /// millisecond precision): the broker's first hop and the engine.
    pub raised: Percentiles,
    /// Alert raised by the engine → read from the alerts topic: the engine's producer and the
    /// broker's second hop.
    pub after_raised: Percentiles,
    /// Read handed to the producer → the read itself read from the reads topic by a plain
    /// consumer: the broker's share.
    pub broker: Percentiles,
    pub engine: EngineOutcome,
}

/// A read's (partition, offset), when it or its alert arrived, and when the engine raised the
/// alert (µs since the epoch; 0 for a read).
type Arrival = ((i32, i64), u64, u64);

/// What a received message says: the read's (partition, offset) and when its alert was raised
/// (µs since the epoch; 0 for a read).
type Received = ((i32, i64), u64);

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Percentiles {
    /// Of the arrivals whose send time is known: from the send to the arrival.
    fn of(sent: &HashMap<(i32, i64), u64>, arrivals: &[Arrival]) -> Self {
        Self::between(sent, arrivals, |sent, (_, arrived, _)| {
            Some(arrived.saturating_sub(sent))
        })
    }

    /// Of the arrivals whose send time is known, the span `span` gives (µs) from the send time
    /// and the arrival.
    fn between(
        sent: &HashMap<(i32, i64), u64>,
        arrivals: &[Arrival],
        span: impl Fn(u64, &Arrival) -> Option<u64>,
    ) -> Self {
        let mut latencies: Vec<u64> = arrivals
            .iter()
            .filter_map(|arrival| span(*sent.get(&arrival.0)?, arrival))
            .collect();
        latencies.sort_unstable();
        let Some(&max) = latencies.last() else {
            return Self::default();
        };
        let at = |share: f64| {
            let index = ((latencies.len() as f64 * share) as usize).min(latencies.len() - 1);
            Duration::from_micros(latencies[index])
        };
        Self {
            count: latencies.len() as u64,
            p50: at(0.50),
            p99: at(0.99),
            max: Duration::from_micros(max),
        }
    }
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

    let stop_receiving = Arc::new(AtomicBool::new(false));
    let receive = |topic: &'static str,
                   partitions: i32,
                   position: fn(&BorrowedMessage<'_>) -> Option<Received>| {
        let settings = settings.clone();
        let stop = Arc::clone(&stop_receiving);
        std::thread::spawn(move || receive_positions(&settings, topic, partitions, position, &stop))
    };
    let alert_thread = receive(ALERTS_TOPIC, 1, alert_source);
    let read_thread = receive(LATENCY_TOPIC, options.partitions, |message| {
        Some(((message.partition(), message.offset()), 0))
    });

    // librdkafka's own defaults (`linger.ms` 5), as a reader vendor's producer has them. With
    // `linger.ms` 0 every read is a batch of its own, and tansu 0.6 then answers fetches
    // seconds late once a few thousand batches a second arrive; the broker row shows what the
    // chosen setting costs.
    let producer: ThreadedProducer<SendTimes> = settings
        .producer_config()
        .remove("linger.ms")
        .create_with_context(SendTimes::default())
        .context("creating the latency producer")?;
    let mut simulator = Simulator::new(workload.simulator_config.clone());
    let rate = options.latency_rate.max(1);

    // Warm-up: reads flow until the engine has caught up with those produced while it started
    // (loading a 1M-entry hotlist takes seconds), then a little longer. Measuring from its first
    // consumed read instead timed the backlog's drain: p99 3 s with a 1M-entry hotlist.
    let mut measuring_from: Option<Instant> = None;
    let mut paced_from = Instant::now();
    let mut sent_in_phase: u64 = 0;
    let mut reads_measured: u64 = 0;
    let mut last_check = Instant::now();
    let mut caught_up_since: Option<Instant> = None;
    // Caught up: no more than a tenth of a second of traffic not yet consumed (the engine
    // publishes its count every 1,024 messages, so never less than a few of those).
    let allowed_lag = (rate / 10).max(4_096);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let measuring = measuring_from.is_some();
        if let Some(from) = measuring_from {
            if from.elapsed() >= Duration::from_secs(options.latency_seconds) {
                break;
            }
        } else if last_check.elapsed() >= Duration::from_millis(100) {
            last_check = Instant::now();
            if caught_up_since.is_none()
                && engine
                    .consumed()
                    .is_some_and(|consumed| consumed + allowed_lag >= sent_in_phase)
            {
                caught_up_since = Some(Instant::now());
            }
            if caught_up_since.is_some_and(|since| since.elapsed() >= WARM_UP) {
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
    stop_receiving.store(true, Ordering::Relaxed);
    let join = |thread: std::thread::JoinHandle<Result<Vec<Arrival>>>| {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a latency consumer panicked"))?
    };
    let alerts_received = join(alert_thread)?;
    let reads_received = join(read_thread)?;
    let engine_outcome = engine.stop()?;

    let sent = producer
        .context()
        .by_position
        .lock()
        .map_err(|_| anyhow::anyhow!("send times poisoned"))?
        .clone();
    Ok(LatencyOutcome {
        rate,
        seconds: options.latency_seconds,
        reads_measured,
        alerts: Percentiles::of(&sent, &alerts_received),
        // `raised_at` has millisecond precision: a span is never counted below zero.
        raised: Percentiles::between(&sent, &alerts_received, |sent, &(_, _, raised)| {
            (raised > 0).then(|| raised.saturating_sub(sent))
        }),
        after_raised: Percentiles::between(&sent, &alerts_received, |_, &(_, arrived, raised)| {
            (raised > 0).then(|| arrived.saturating_sub(raised))
        }),
        broker: Percentiles::of(&sent, &reads_received),
        engine: engine_outcome,
    })
}

/// The alerted read's position, from the alert's `source`, and when the engine raised the
/// alert (µs since the epoch; 0 if the alert does not say).
fn alert_source(message: &BorrowedMessage<'_>) -> Option<Received> {
    let alert: serde_json::Value = serde_json::from_slice(message.payload()?).ok()?;
    let source = &alert["source"];
    let raised = alert["raised_at"]
        .as_str()
        .and_then(Timestamp::parse_rfc3339)
        .map_or(0, |raised| {
            u64::try_from(raised.millis()).unwrap_or(0) * 1_000
        });
    Some((
        (
            i32::try_from(source["partition"].as_i64()?).ok()?,
            source["offset"].as_i64()?,
        ),
        raised,
    ))
}

/// When each message of `topic` arrived here, by the read position `position` finds in it.
fn receive_positions(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    position: fn(&BorrowedMessage<'_>) -> Option<Received>,
    stop: &AtomicBool,
) -> Result<Vec<Arrival>> {
    let consumer: BaseConsumer = settings
        .consumer_config()
        .set("group.id", format!("bench-latency-{topic}"))
        // Answer as soon as one message is there.
        .set("fetch.wait.max.ms", "1")
        .set("fetch.min.bytes", "1")
        .create()
        .with_context(|| format!("creating the consumer of {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .with_context(|| format!("assigning {topic}"))?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("assigning {topic}"))?;
    let mut received = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(polled) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let arrived = micros_now();
        match polled {
            Ok(message) => {
                received.extend(position(&message).map(|(at, raised)| (at, arrived, raised)))
            }
            Err(error) => tracing::warn!(%error, topic, "latency consumer error"),
        }
    }
    Ok(received)
}
