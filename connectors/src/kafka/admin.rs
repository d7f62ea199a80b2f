//! Topic administration. Brokers such as tansu do not create topics on first use, so platestream
//! creates the ones it needs through the admin API.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaError, KafkaSettings};

/// Creates each topic that does not exist yet; existing topics are left as they are.
///
/// Retries until `deadline` passes while the cluster is still starting (connection refused,
/// no controller yet), which is what a freshly started broker answers for a moment.
pub async fn ensure_topics(
    client_config: &ClientConfig,
    topics: &[(&str, i32)],
    deadline: Duration,
) -> Result<(), KafkaError> {
    create_topics(client_config, topics, 1, &[], deadline).await
}

/// Like [`ensure_topics`], each new topic with `replication` copies on the cluster's brokers (a
/// production cluster keeps evidence on more than one).
pub async fn ensure_replicated_topics(
    client_config: &ClientConfig,
    topics: &[(&str, i32)],
    replication: i32,
    deadline: Duration,
) -> Result<(), KafkaError> {
    create_topics(client_config, topics, replication, &[], deadline).await
}

/// Like [`ensure_topics`], for topics that keep the latest message per key
/// (`cleanup.policy=compact`), such as the hotlist updates topic.
pub async fn ensure_compacted_topics(
    client_config: &ClientConfig,
    topics: &[(&str, i32)],
    deadline: Duration,
) -> Result<(), KafkaError> {
    ensure_replicated_compacted_topics(client_config, topics, 1, deadline).await
}

/// [`ensure_compacted_topics`] with `replication` copies of each new topic.
pub async fn ensure_replicated_compacted_topics(
    client_config: &ClientConfig,
    topics: &[(&str, i32)],
    replication: i32,
    deadline: Duration,
) -> Result<(), KafkaError> {
    create_topics(
        client_config,
        topics,
        replication,
        &[("cleanup.policy", "compact")],
        deadline,
    )
    .await
}

async fn create_topics(
    client_config: &ClientConfig,
    topics: &[(&str, i32)],
    replication: i32,
    topic_config: &[(&str, &str)],
    deadline: Duration,
) -> Result<(), KafkaError> {
    if replication < 1 {
        return Err(KafkaError::TopicCreation(format!(
            "a replication factor of {replication} (at least 1)"
        )));
    }
    // tansu creates a topic of 0 partitions when asked, and nothing can be produced to it.
    if let Some((name, partitions)) = topics.iter().find(|(_, partitions)| *partitions < 1) {
        return Err(KafkaError::TopicCreation(format!(
            "{name}: {partitions} partitions (at least 1)"
        )));
    }
    // The admin requests below wait for their own timeouts on every retry: a mistyped address
    // took a minute to say "OperationTimedOut". A metadata request says at once what is wrong.
    let probe_config = client_config.clone();
    let probe_timeout = deadline.min(Duration::from_secs(15));
    tokio::task::spawn_blocking(move || answering_client(&probe_config, probe_timeout).map(drop))
        .await
        .map_err(|error| KafkaError::Internal(format!("broker probe: {error}")))??;
    let admin: AdminClient<DefaultClientContext> = client_config
        .create()
        .map_err(KafkaError::client("admin client"))?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| {
            topic_config.iter().fold(
                NewTopic::new(name, *partitions, TopicReplication::Fixed(replication)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
    let started = std::time::Instant::now();
    loop {
        let outcome = admin.create_topics(&new_topics, &options).await;
        let last_error = match outcome {
            Ok(results) => {
                let failures: Vec<String> = results
                    .into_iter()
                    .filter_map(|result| match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => None,
                        Err((topic, code)) => Some(format!("{topic}: {code}")),
                    })
                    .collect();
                if failures.is_empty() {
                    return Ok(());
                }
                failures.join(", ")
            }
            Err(error) => error.to_string(),
        };
        if started.elapsed() >= deadline {
            return Err(KafkaError::TopicCreation(last_error));
        }
        tracing::debug!(error = %last_error, "topic creation not possible yet; retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many messages of `topic` the consumer group has not committed yet, summed over partitions;
/// `None` when the cluster does not say.
pub fn group_lag(settings: &KafkaSettings, topic: &str) -> Result<Option<i64>, KafkaError> {
    let consumer: BaseConsumer = settings
        .consumer_config()
        .create()
        .map_err(KafkaError::client("lag consumer"))?;
    let timeout = Duration::from_secs(5);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(KafkaError::client("metadata"))?;
    let Some(topic_metadata) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    let mut partitions = TopicPartitionList::new();
    for partition in topic_metadata.partitions() {
        partitions.add_partition(topic, partition.id());
    }
    let committed = consumer
        .committed_offsets(partitions, timeout)
        .map_err(KafkaError::client("committed offsets"))?;
    let mut lag = 0;
    for element in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(topic, element.partition(), timeout)
            .map_err(KafkaError::client("watermarks"))?;
        let position = match element.offset() {
            Offset::Offset(offset) => offset,
            _ => low,
        };
        // A group that looks caught up may only be past tansu's short watermark.
        let end = if position >= high {
            confirmed_partition_end(settings, topic, element.partition(), (low, high))?
        } else {
            high
        };
        lag += (end - position).max(0);
    }
    Ok(Some(lag))
}

/// The offset after the last message of a partition whose watermarks are `(low, high)`.
///
/// Kafka's high watermark is exactly that. tansu 0.6 answers one past the *first* offset of the
/// partition's last record batch instead, so after a producer that batches (librdkafka's default)
/// it can be hundreds of messages short. Where that matters (the end compared with offsets
/// already seen) this reads from `high - 1`: on Kafka the last message, on tansu the whole last
/// batch. The answer only counts if no batch was appended meanwhile (the watermark is the same
/// after the read): a message read could otherwise be a newer one, and a partition taken for
/// longer than it was could have its new messages skipped. A growing partition keeps `high`.
pub fn confirmed_partition_end(
    settings: &KafkaSettings,
    topic: &str,
    partition: i32,
    (low, high): (i64, i64),
) -> Result<i64, KafkaError> {
    if high <= low {
        return Ok(high);
    }
    let consumer: BaseConsumer = settings
        .consumer_config()
        .set("group.id", "platestream-partition-end")
        .create()
        .map_err(KafkaError::client("partition end reader"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(high - 1))
        .map_err(KafkaError::client("partition end reader"))?;
    consumer
        .assign(&assignment)
        .map_err(KafkaError::client("partition end reader"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut end = high;
    let mut delivered = false;
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                delivered = true;
                end = end.max(rdkafka::Message::offset(&message) + 1);
            }
            Some(Err(error)) => {
                tracing::debug!(%error, topic, partition, "reading the partition's last batch");
            }
            // A batch arrives whole: once one has, a quiet poll means the end.
            None if delivered => break,
            None => {}
        }
    }
    let (_, high_after) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(KafkaError::client("watermarks"))?;
    Ok(if high_after == high { end } else { high })
}

/// A consumer for [`message_fingerprint_at`]: assigned one partition at a time, never committing.
pub fn partition_probe(settings: &KafkaSettings) -> Result<BaseConsumer, KafkaError> {
    settings
        .consumer_config()
        .set("group.id", "platestream-partition-probe")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(KafkaError::client("partition probe"))
}

/// The `archive::message_fingerprint` of the partition's message at `offset`, read by `consumer`
/// (a [`partition_probe`]), or `None` when it could not be read within a few seconds (deleted by
/// retention, or inside a record batch, which tansu 0.6 does not serve from).
pub fn message_fingerprint_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<u64>, KafkaError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(KafkaError::client("partition probe"))?;
    consumer
        .assign(&assignment)
        .map_err(KafkaError::client("partition probe"))?;
    let found = read_fingerprint(consumer, topic, partition, offset);
    // Fetching stops until the next probe, which would otherwise receive this partition's rest.
    if let Err(error) = consumer.unassign() {
        tracing::debug!(%error, "unassigning the partition probe");
    }
    Ok(found)
}

fn read_fingerprint(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Option<u64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                // Left over from the probe's previous partition.
                if rdkafka::Message::topic(&message) != topic
                    || rdkafka::Message::partition(&message) != partition
                {
                    continue;
                }
                let at = rdkafka::Message::offset(&message);
                if at == offset {
                    let payload = rdkafka::Message::payload(&message).unwrap_or_default();
                    return Some(platestream_engine::archive::message_fingerprint(payload));
                }
                // A batch is delivered from its first offset; past the offset, it is not there.
                if at > offset {
                    return None;
                }
            }
            Some(Err(error)) => {
                tracing::debug!(%error, topic, partition, offset, "reading the archived last message");
            }
            None => {}
        }
    }
    None
}

/// A client for metadata requests that never creates a topic by asking about it, once the cluster
/// has answered one: a cluster that cannot be reached is said to be so, not reported as a failed
/// request about a topic.
pub(crate) fn metadata_client(settings: &KafkaSettings) -> Result<BaseConsumer, KafkaError> {
    let mut config = settings.consumer_config();
    config.set("allow.auto.create.topics", "false");
    answering_client(&config, Duration::from_secs(15))
}

/// A client of `client_config` once a broker has answered a metadata request within `timeout`
/// (librdkafka keeps connecting meanwhile, so a broker still starting is waited for).
fn answering_client(
    client_config: &ClientConfig,
    timeout: Duration,
) -> Result<BaseConsumer, KafkaError> {
    let client: BaseConsumer = client_config
        .create()
        .map_err(KafkaError::client("metadata client"))?;
    client
        .fetch_metadata(None, timeout)
        .map_err(|error| unreachable_or(error, client_config, "cluster metadata"))?;
    Ok(client)
}

/// A metadata error that means no broker answered, said as such; other errors as they are.
fn unreachable_or(
    error: rdkafka::error::KafkaError,
    client_config: &ClientConfig,
    what: &'static str,
) -> KafkaError {
    let no_broker = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::Resolve
        )
    );
    if no_broker {
        KafkaError::Unreachable {
            brokers: client_config
                .get("bootstrap.servers")
                .unwrap_or("(no bootstrap.servers)")
                .to_owned(),
            reason: error.to_string(),
        }
    } else {
        KafkaError::Client {
            what,
            source: error,
        }
    }
}

/// The partitions of `topic`, or `None` when the cluster does not have it.
pub(crate) fn topic_partitions(
    client: &BaseConsumer,
    topic: &str,
) -> Result<Option<Vec<i32>>, KafkaError> {
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(15))
        .map_err(KafkaError::client("topic metadata"))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|found| {
            found.name() == topic
                && found.error().is_none_or(|code| {
                    RDKafkaErrorCode::from(code) != RDKafkaErrorCode::UnknownTopicOrPartition
                })
        })
        .map(|found| {
            found
                .partitions()
                .iter()
                .map(|p| p.id())
                .collect::<Vec<_>>()
        })
        .filter(|partitions| !partitions.is_empty()))
}

/// Of `topics`, those the cluster does not have.
pub fn missing_topics<'a>(
    settings: &KafkaSettings,
    topics: &[&'a str],
) -> Result<Vec<&'a str>, KafkaError> {
    let client = metadata_client(settings)?;
    let mut missing = Vec::new();
    for &topic in topics {
        if topic_partitions(&client, topic)?.is_none() {
            missing.push(topic);
        }
    }
    Ok(missing)
}
