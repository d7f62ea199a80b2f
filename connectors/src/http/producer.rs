//! The ingest server's producer: idempotent, acks=all, and replaced when librdkafka declares it
//! fatally failed. An idempotent producer can reach a fatal state (the broker lost or fenced its
//! producer id, a sequence gap after an outage) from which it never recovers; a server that kept
//! it would answer 503 for every request forever after the cluster came back.

use std::sync::{Arc, RwLock};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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

    /// Called after a failed send: replaces `failed` with a fresh producer if it is beyond
    /// recovery (librdkafka says so, or the send failed with an error of the producer's own
    /// identity) and no other request has replaced it already.
    pub fn replace_if_broken(&self, failed: &Arc<FutureProducer>, error: &KafkaError) {
        let (code, reason) = match failed.client().fatal_error() {
            Some((code, reason)) => (code, reason),
            None => match error.rdkafka_error_code() {
                Some(code) if fences_the_producer(code) => (code, error.to_string()),
                _ => return,
            },
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
                tracing::warn!(%code, %reason, "kafka producer cannot recover; replaced it");
                *current = Arc::new(fresh);
            }
            Err(error) => {
                tracing::error!(%code, %reason, %error, "kafka producer cannot recover and cannot be recreated");
            }
        }
    }
}

/// Send errors about the idempotent producer's identity: after a broker stall (tansu 0.6 after
/// about 12 s) every later send fails so, one message at a time, without librdkafka ever calling
/// the producer fatally failed, so it would never be replaced and `serve` would answer 503 to
/// every request until restarted.
fn fences_the_producer(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::UnknownProducerId
            | RDKafkaErrorCode::OutOfOrderSequenceNumber
            | RDKafkaErrorCode::InvalidProducerIdMapping
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_producer_is_replaced_and_a_slow_broker_is_not_a_reason() {
        assert!(fences_the_producer(RDKafkaErrorCode::ProducerFenced));
        assert!(fences_the_producer(
            RDKafkaErrorCode::OutOfOrderSequenceNumber
        ));
        assert!(!fences_the_producer(RDKafkaErrorCode::MessageTimedOut));
        assert!(!fences_the_producer(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(!fences_the_producer(
            RDKafkaErrorCode::UnknownTopicOrPartition
        ));
    }
}
