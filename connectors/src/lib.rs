//! Connections to the outside: Kafka now; vendor formats, hotlist sources and HTTP as they land.

pub mod kafka;
