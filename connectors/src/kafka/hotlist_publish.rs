//! Writing to the hotlist updates topic, and reading what it holds: how a dispatcher's
//! hand-entered AMBER alert, or a local system's batch of changes, reaches every engine that
//! follows the topic ([`super::hotlist_updates`] is the engines' side), and how the dispatcher
//! sees which entries are live.
//!
//! Every message is checked with the engine's own [`decode_update`] before anything is sent, so
//! a message the engines would refuse is refused here, with its reason, instead of being logged on
//! an engine's console where the dispatcher never looks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use platestream_engine::hotlist::HotlistEntry;
use platestream_engine::store::Update;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{metadata_client, topic_partitions};
use super::hotlist_updates::{decode_update, InvalidUpdate, ListUpdate};
use super::{confirmed_partition_end, KafkaError, KafkaSettings};

/// One message of the updates topic: its key `<list>/<entry id>` and its value, a JSON object, or
/// `None` for a tombstone (delete).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateMessage {
    pub key: String,
    pub value: Option<String>,
}

impl UpdateMessage {
    /// What an engine will make of this message, or why it will refuse it.
    pub fn check(&self) -> Result<ListUpdate, InvalidUpdate> {
        decode_update(
            Some(self.key.as_bytes()),
            self.value.as_deref().map(str::as_bytes),
        )
    }
}

/// Where the broker stored a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Why the updates could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("message {index} ({key:?}) would be refused by the engines: {reason}")]
    Invalid {
        index: usize,
        key: String,
        reason: InvalidUpdate,
    },
    #[error("topic {0:?} does not exist on the cluster")]
    MissingTopic(String),
    #[error("topic {topic:?} was not read to its end within {waited:?}")]
    ReadTimedOut { topic: String, waited: Duration },
    #[error("message {index} ({key:?}) was not acknowledged by the cluster: {source}")]
    NotDelivered {
        index: usize,
        key: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Publishes `messages` to `topic` in order, acknowledged by all in-sync replicas, and returns
/// where each landed. Nothing is sent unless every message passes [`UpdateMessage::check`] and
/// the topic exists: a topic auto-created on first use would not be compacted, and its upserts
/// would expire with the broker's retention instead of lasting until deleted.
///
/// `on_delivered` is called with the number delivered so far, for progress.
pub async fn publish_updates(
    settings: &KafkaSettings,
    topic: &str,
    messages: &[UpdateMessage],
    mut on_delivered: impl FnMut(usize),
) -> Result<Vec<Delivered>, PublishError> {
    for (index, message) in messages.iter().enumerate() {
        message.check().map_err(|reason| PublishError::Invalid {
            index,
            key: message.key.clone(),
            reason,
        })?;
    }
    let mut config = settings.producer_config();
    config.set("allow.auto.create.topics", "false");
    ensure_topic_exists(settings, topic)?;
    let producer: FutureProducer = config
        .create()
        .map_err(KafkaError::client("hotlist updates producer"))?;
    // Sent in windows so a large file is not all queued in librdkafka at once, and in order:
    // for one key the last message wins, so a later line must land after an earlier one.
    const WINDOW: usize = 1_000;
    let mut delivered = Vec::with_capacity(messages.len());
    for (window_index, window) in messages.chunks(WINDOW).enumerate() {
        let mut pending = Vec::with_capacity(window.len());
        for (offset_in_window, message) in window.iter().enumerate() {
            let index = window_index * WINDOW + offset_in_window;
            let mut record = FutureRecord::<str, str>::to(topic).key(&message.key);
            if let Some(value) = &message.value {
                record = record.payload(value);
            }
            let future =
                producer
                    .send_result(record)
                    .map_err(|(source, _)| PublishError::NotDelivered {
                        index,
                        key: message.key.clone(),
                        source,
                    })?;
            pending.push((index, future));
        }
        for (index, future) in pending {
            let not_delivered = |source| PublishError::NotDelivered {
                index,
                key: messages[index].key.clone(),
                source,
            };
            match future.await {
                Ok(Ok(delivery)) => delivered.push(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Err((source, _))) => return Err(not_delivered(source)),
                Err(_canceled) => return Err(not_delivered(rdkafka::error::KafkaError::Canceled)),
            }
        }
        on_delivered(delivered.len());
    }
    Ok(delivered)
}

fn ensure_topic_exists(settings: &KafkaSettings, topic: &str) -> Result<(), PublishError> {
    partitions_of(&metadata_client(settings)?, topic).map(|_| ())
}

fn partitions_of(client: &BaseConsumer, topic: &str) -> Result<Vec<i32>, PublishError> {
    topic_partitions(client, topic)?.ok_or_else(|| PublishError::MissingTopic(topic.to_owned()))
}

/// An entry the updates topic holds now: the last upsert of its key, not deleted since.
#[derive(Debug, Clone)]
pub struct LiveEntry {
    pub entry: Arc<HotlistEntry>,
    pub partition: i32,
    pub offset: i64,
    /// When the broker stored the upsert (ms since the epoch), if it says.
    pub published_at_ms: Option<i64>,
}

/// What the updates topic holds, read from its beginning to where it ended when reading began:
/// what an engine starting now would rebuild.
#[derive(Debug, Default)]
pub struct TopicState {
    /// By list, then id.
    pub entries: Vec<LiveEntry>,
    pub messages: u64,
    /// Messages an engine refuses, as (partition, offset, reason).
    pub refused: Vec<(i32, i64, String)>,
}

/// Reads `topic` from its beginning to its current end, as an engine's rebuild does, and folds
/// its upserts and deletes by key.
pub fn read_updates_topic(
    settings: &KafkaSettings,
    topic: &str,
    limit: Duration,
) -> Result<TopicState, PublishError> {
    let consumer = metadata_client(settings)?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    for partition in partitions_of(&consumer, topic)? {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(15))
            .map_err(KafkaError::client("updates topic watermarks"))?;
        if high > low {
            let end = confirmed_partition_end(settings, topic, partition, (low, high))?;
            remaining.insert(partition, end);
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(KafkaError::client("updates topic assignment"))?;
        }
    }
    let mut state = TopicState::default();
    let mut live: BTreeMap<(String, String), LiveEntry> = BTreeMap::new();
    if !remaining.is_empty() {
        consumer
            .assign(&assignment)
            .map_err(KafkaError::client("updates topic assignment"))?;
    }
    let started = Instant::now();
    while !remaining.is_empty() {
        if started.elapsed() > limit {
            return Err(PublishError::ReadTimedOut {
                topic: topic.to_owned(),
                waited: limit,
            });
        }
        let Some(polled) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = polled.map_err(KafkaError::client("reading the updates topic"))?;
        let (partition, offset) = (message.partition(), message.offset());
        if remaining
            .get(&partition)
            .is_some_and(|end| offset + 1 >= *end)
        {
            remaining.remove(&partition);
        }
        state.messages += 1;
        match decode_update(message.key(), message.payload()) {
            Ok(ListUpdate {
                list,
                update: Update::Upsert(entry),
            }) => {
                live.insert(
                    (list, entry.id.clone()),
                    LiveEntry {
                        entry,
                        partition,
                        offset,
                        published_at_ms: message.timestamp().to_millis(),
                    },
                );
            }
            Ok(ListUpdate {
                list,
                update: Update::Delete(id),
            }) => {
                live.remove(&(list, id));
            }
            Err(reason) => state.refused.push((partition, offset, reason.to_string())),
        }
    }
    state.entries = live.into_values().collect();
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use platestream_engine::store::Update;

    #[test]
    fn a_message_is_checked_as_the_engines_will_read_it() {
        let upsert = UpdateMessage {
            key: "amber_alert/VA-1".into(),
            value: Some(r#"{"plate":"7XK 229","jurisdiction":"VA","priority":1}"#.into()),
        };
        let checked = upsert.check().unwrap();
        assert_eq!(checked.list, "amber_alert");
        let Update::Upsert(entry) = checked.update else {
            panic!("an upsert")
        };
        assert_eq!(entry.plate_norm, "7XK229");
        assert_eq!(entry.id, "VA-1");

        let tombstone = UpdateMessage {
            key: "amber_alert/VA-1".into(),
            value: None,
        };
        assert!(matches!(tombstone.check().unwrap().update, Update::Delete(id) if id == "VA-1"));

        let bad_priority = UpdateMessage {
            key: "amber_alert/VA-1".into(),
            value: Some(r#"{"plate":"7XK 229","priority":"urgent"}"#.into()),
        };
        assert!(matches!(
            bad_priority.check(),
            Err(InvalidUpdate::Fields(_))
        ));
    }
}
