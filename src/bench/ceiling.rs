//! The ceiling: a plain rdkafka consumer that only drains the topic, with the engine's consumer
//! settings and a fresh group. Nothing can consume from this broker faster.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use platestream_connectors::kafka::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::workload::progress_bar;

#[derive(Debug, Clone, Default)]
pub struct DrainOutcome {
    pub messages: u64,
    pub bytes: u64,
    /// From the first message to the last.
    pub active: Duration,
}

impl DrainOutcome {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.active.as_secs_f64().max(1e-9)
    }
}

/// Gives up when no message arrives for this long.
const STALL: Duration = Duration::from_secs(60);

pub fn drain(
    settings: &KafkaSettings,
    topic: &str,
    group: &str,
    expected: u64,
) -> Result<DrainOutcome> {
    let mut settings = settings.clone();
    settings.group_id = group.to_owned();
    let consumer: BaseConsumer = settings
        .consumer_config()
        .create()
        .context("creating the ceiling consumer")?;
    consumer.subscribe(&[topic]).context("subscribing")?;
    let bar = progress_bar(expected, "ceiling: draining");
    let mut outcome = DrainOutcome::default();
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    while outcome.messages < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                outcome.messages += 1;
                outcome.bytes += message.payload_len() as u64;
                if outcome.messages % 8192 == 0 {
                    bar.set_position(outcome.messages);
                }
            }
            Some(Err(error)) => tracing::warn!(%error, "ceiling consumer error"),
            None => {
                if last.elapsed() > STALL {
                    bail!(
                        "the ceiling consumer stalled after {} of {expected} messages",
                        outcome.messages
                    );
                }
            }
        }
    }
    bar.finish_and_clear();
    outcome.active = first.map_or(Duration::ZERO, |first| last.duration_since(first));
    Ok(outcome)
}
