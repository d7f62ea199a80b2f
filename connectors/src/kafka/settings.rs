//! How platestream reaches a Kafka cluster: the settings users write in `platestream.toml`.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`
    pub bootstrap_servers: String,
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Topics carrying raw reads from readers.
    #[serde(default = "default_raw_topics")]
    pub raw_topics: Vec<String>,
    /// Wire format of the raw topics (`canonical`, a vendor's format, `generic` or `auto`).
    #[serde(default = "default_format")]
    pub raw_format: String,
    /// Formats of raw topics that differ from `raw_format`, by topic name.
    #[serde(default)]
    pub topic_formats: BTreeMap<String, String>,
    #[serde(default = "default_alerts_topic")]
    pub alerts_topic: String,
    /// Alerts of covert lists go here only, never to `alerts_topic`: restrict who may read it.
    #[serde(default = "default_covert_alerts_topic")]
    pub covert_alerts_topic: String,
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// librdkafka properties for every client (security settings go here: `security.protocol`,
    /// `sasl.mechanism`, `ssl.ca.location`, ...). Underscores in keys are read as dots, so
    /// environment variables can set them.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties for the consumer only.
    #[serde(default)]
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for the producer only.
    #[serde(default)]
    pub producer: BTreeMap<String, String>,
    /// Threads that decode, normalize and match consumed messages beside the consuming thread
    /// (which archives, alerts and commits in message order); 0 keeps everything on the
    /// consuming thread. Unset: one per core.
    #[serde(default)]
    pub prepare_threads: Option<usize>,
}

fn default_group_id() -> String {
    "platestream".to_owned()
}

fn default_raw_topics() -> Vec<String> {
    vec!["plate-reads".to_owned()]
}

fn default_format() -> String {
    "canonical".to_owned()
}

fn default_alerts_topic() -> String {
    "plate-alerts".to_owned()
}

fn default_covert_alerts_topic() -> String {
    "plate-alerts-covert".to_owned()
}

fn default_dead_letter_topic() -> String {
    "plate-reads-dead-letter".to_owned()
}

impl KafkaSettings {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            group_id: default_group_id(),
            raw_topics: default_raw_topics(),
            raw_format: default_format(),
            topic_formats: BTreeMap::new(),
            alerts_topic: default_alerts_topic(),
            covert_alerts_topic: default_covert_alerts_topic(),
            dead_letter_topic: default_dead_letter_topic(),
            properties: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
            prepare_threads: None,
        }
    }

    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(librdkafka_key(key), value);
        }
        config
    }

    /// The consumer: offsets are stored and committed by the engine only after the archive is durable.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("group.id", &self.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", "5000")
            // Large fetches: the broker, not the round trips, should be the limit.
            .set("fetch.max.bytes", "52428800")
            .set("max.partition.fetch.bytes", "16777216")
            // Bounds prefetch memory per partition (librdkafka's default is 64 MiB).
            .set("queued.max.messages.kbytes", "65536")
            // How long the broker may hold a fetch while a partition has nothing new (librdkafka's
            // default is 500 ms). Apache Kafka answers as soon as data arrives, whatever this is;
            // tansu 0.6 holds every fetch this long even when it has data, so it is added to every
            // read's latency, and at 500 ms it also capped the drain rate (36k msgs/s against 184k
            // at 10 ms, `platestream bench --quick`). Against Apache Kafka, raise it under
            // `[kafka.consumer]` to cut an idle engine's requests (1,000 a second at 1 ms).
            .set("fetch.wait.max.ms", "1")
            // Once its queue holds `queued.min.messages`, librdkafka stops fetching for this long
            // (default 1 s). An engine slower than the broker drains that queue in well under a
            // second and then waits on an empty one: the first `platestream bench` spent a third of
            // its time there.
            .set("fetch.queue.backoff.ms", "10");
        for (key, value) in &self.consumer {
            config.set(librdkafka_key(key), value);
        }
        config
    }

    /// The producer for alerts and dead letters: acknowledged by all in-sync replicas and
    /// sent at once (alerts are latency-critical; their volume is small).
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000");
        for (key, value) in &self.producer {
            config.set(librdkafka_key(key), value);
        }
        config
    }
}

/// librdkafka's property names use dots and never underscores; environment variables cannot
/// contain dots. Reading `_` as `.` lets `PLATESTREAM_KAFKA__PROPERTIES__SECURITY_PROTOCOL` work.
fn librdkafka_key(key: &str) -> String {
    key.replace('_', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_properties_reach_librdkafka_with_dots() {
        let mut settings = KafkaSettings::new("b:9092");
        settings
            .properties
            .insert("security_protocol".into(), "SASL_SSL".into());
        settings
            .consumer
            .insert("session.timeout.ms".into(), "10000".into());
        let consumer = settings.consumer_config();
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(consumer.get("session.timeout.ms"), Some("10000"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(
            settings.producer_config().get("security.protocol"),
            Some("SASL_SSL")
        );
    }
}
