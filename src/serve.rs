//! `platestream serve`: the HTTP ingest server for readers that push webhooks, until Ctrl-C.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use platestream_connectors::http::IngestServer;
use platestream_connectors::kafka::ensure_replicated_topics;
use platestream_engine::images::DirectoryImageStore;

use crate::config::Config;
use crate::readers::decode_context;

/// The ingest server the configuration describes; images are stored in `readers.image_dir`, the
/// same store the engine's decoders write and alerts' references point into.
pub fn ingest_server(config: &Config) -> Result<IngestServer> {
    let context = decode_context(&config.readers)?;
    let server = IngestServer::new(
        &config.ingest,
        &config.kafka,
        &context,
        config.readers.generic.as_ref(),
        DirectoryImageStore::new(&config.readers.image_dir),
    )?;
    Ok(server)
}

/// Runs the ingest server until `shutdown` completes; requests in flight are finished first.
/// With `metrics`, Prometheus metrics are served at `/metrics` on the ingest listener.
pub async fn serve(
    config: Config,
    create_topics: Option<crate::run::TopicLayout>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut server = ingest_server(&config)?;
    if let Some(metrics) = metrics {
        // On the ingest listener rather than [metrics] listen: `serve` and `run` share a host, and
        // two processes cannot both bind the default metrics port.
        server = server.merge(axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || async move { metrics.render() }),
        ));
    }
    let topics: BTreeSet<&str> = config
        .ingest
        .vendors
        .values()
        .map(|vendor| vendor.topic.as_str())
        .collect();
    if let Some(layout) = create_topics {
        let wanted: Vec<(&str, i32)> = topics
            .iter()
            .map(|topic| (*topic, layout.partitions))
            .collect();
        ensure_replicated_topics(
            &config.kafka.producer_config(),
            &wanted,
            layout.replication,
            Duration::from_secs(30),
        )
        .await?;
    }
    let vendor_topics: Vec<(&str, &str)> = topics
        .iter()
        .map(|topic| (*topic, "[ingest.vendors.*] topic"))
        .collect();
    crate::run::require_topics(&config.kafka, &vendor_topics)?;
    warn_about_engine_formats(&config);
    let bound = server.bind().await?;
    tracing::info!(
        address = %bound.local_addr(),
        vendors = ?config.ingest.vendors.keys().collect::<Vec<_>>(),
        topics = ?topics,
        images = %config.readers.image_dir.display(),
        "ingest server listening"
    );
    bound.serve(shutdown).await?;
    tracing::info!("ingest server stopped");
    Ok(())
}

/// The engine decodes a topic with one format (`kafka.raw_format`, `kafka.topic_formats`); a
/// vendor produced to a topic the engine reads with another format would be dead-lettered whole.
/// Only a warning: the engine may run elsewhere with its own configuration.
fn warn_about_engine_formats(config: &Config) {
    for (name, vendor) in &config.ingest.vendors {
        if !config.kafka.raw_topics.contains(&vendor.topic) {
            tracing::warn!(
                vendor = %name,
                topic = %vendor.topic,
                "this vendor's topic is not in kafka.raw_topics: an engine with this configuration \
                 will not read it"
            );
            continue;
        }
        let engine_format = config
            .kafka
            .topic_formats
            .get(&vendor.topic)
            .unwrap_or(&config.kafka.raw_format);
        if engine_format != &vendor.format && engine_format != "auto" {
            tracing::warn!(
                vendor = %name,
                topic = %vendor.topic,
                vendor_format = %vendor.format,
                engine_format = %engine_format,
                "the engine reads this vendor's topic with another format; set \
                 kafka.topic_formats.\"{}\" = {:?} or use a topic per vendor",
                vendor.topic,
                vendor.format
            );
        }
    }
}

/// Completes on Ctrl-C or SIGTERM (a service manager or container runtime stopping us).
pub async fn ctrl_c_or_sigterm() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// The ingest server's shutdown: on Ctrl-C or SIGTERM, after saying so.
pub async fn shutdown_signal() {
    ctrl_c_or_sigterm().await;
    eprintln!("\nstopping: finishing the requests in flight...");
}
