//! Kafka: settings, topic administration, producing reads, and the streaming engine.

mod admin;
pub mod hotlist_publish;
pub mod hotlist_updates;
mod prepare;
mod settings;
mod stream;

pub use admin::{
    confirmed_partition_end, ensure_compacted_topics, ensure_replicated_compacted_topics,
    ensure_replicated_topics, ensure_topics, group_lag, missing_topics,
};
pub use hotlist_publish::{
    publish_updates, read_updates_topic, Delivered, LiveEntry, PublishError, TopicState,
    UpdateMessage,
};
pub use hotlist_updates::{spawn_hotlist_updates, HotlistUpdatesThread, LiveUpdates};
pub use settings::KafkaSettings;
pub use stream::{OnStop, StopWhen, StreamEngine, StreamObserver, StreamOptions, StreamSummary};

use platestream_engine::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka {what}: {source}")]
    Client {
        what: &'static str,
        source: rdkafka::error::KafkaError,
    },
    #[error("kafka: could not create topics: {0}")]
    TopicCreation(String),
    #[error(
        "kafka: no broker at {brokers} answered ({reason}); check the bootstrap servers \
         ([kafka] bootstrap_servers, or --brokers) and that the cluster is up"
    )]
    Unreachable { brokers: String, reason: String },
    #[error("kafka: an alert or dead letter was not delivered ({0}); offsets were not committed past it")]
    DeliveryFailed(String),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("internal: {0}")]
    Internal(String),
}

impl KafkaError {
    pub(crate) fn client(what: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> Self {
        move |source| Self::Client { what, source }
    }
}
