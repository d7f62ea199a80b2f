//! Connections to the outside: Kafka (reads, alerts, live hotlist updates), HTTP ingest for reader
//! vendors that push, and alert webhooks.

pub mod http;
pub mod kafka;
pub mod webhooks;
