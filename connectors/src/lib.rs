//! Connections to the outside: Kafka, hotlist sources, vendor formats, HTTP.
