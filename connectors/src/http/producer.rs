//! The ingest server's producer: idempotent, acks=all, and replaced when librdkafka declares it
//! fatally failed. An idempotent producer can reach a fatal state (the broker lost or fenced its
//! producer id, a sequence gap after an outage) from which it never recovers; a server that kept
//! it would answer 503 for every request forever after the cluster came back.

use std::sync::{Arc, RwLock};

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::ClientConfig;

pub struct RecoveringProducer {
    config: ClientConfig,
    current: RwLock<Arc<FutureProducer>>,
}

impl RecoveringProducer {
    pub fn new(config: ClientConfig) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config.create()?;
        Ok(Self {
            config,
            current: RwLock::new(Arc::new(producer)),
        })
    }

    pub fn current(&self) -> Arc<FutureProducer> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Called after a failed send: replaces `failed` with a fresh producer if librdkafka says it
    /// is beyond recovery and no other request has replaced it already.
    pub fn replace_if_fatal(&self, failed: &Arc<FutureProducer>) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match self.config.create::<FutureProducer>() {
            Ok(fresh) => {
                tracing::warn!(%code, %reason, "kafka producer failed fatally; replaced it");
                *current = Arc::new(fresh);
            }
            Err(error) => {
                tracing::error!(%code, %reason, %error, "kafka producer failed fatally and cannot be recreated");
            }
        }
    }
}
