//! Connections to the outside: Kafka (reads, alerts, live hotlist updates) and alert webhooks.

pub mod kafka;
pub mod webhooks;
