//! Connections to the outside: Kafka, and HTTP ingest for reader vendors that push.

pub mod http;
pub mod kafka;
