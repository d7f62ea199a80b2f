//! `platestream run`: the engine against a configured Kafka cluster until Ctrl-C.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use platestream_connectors::kafka::{
    ensure_topics, StopWhen, StreamEngine, StreamObserver, StreamOptions,
};
use platestream_engine::alert::Alert;
use platestream_engine::archive::ArchiveConfig;

use crate::config::Config;
use crate::hotlists::{build_store, load_hotlist_files, load_ncic_files};
use crate::readers::pipeline_for;

struct LogAlerts;

impl StreamObserver for LogAlerts {
    fn on_alert(&mut self, alert: &Alert) {
        tracing::info!(
            alert_id = %alert.alert_id,
            list = %alert.list,
            priority = alert.priority,
            entry_plate = %alert.entry_plate,
            read_plate = %alert.read_plate,
            match_kind = alert.match_kind.as_str(),
            reader_id = %alert.reader_id,
            observed_at = %alert.observed_at,
            "alert"
        );
    }
}

pub async fn run_engine(
    config: Config,
    create_topics: bool,
    stop_flag: Arc<AtomicBool>,
) -> Result<()> {
    let mut entries = load_hotlist_files(&config.hotlists.files)?;
    entries.extend(load_ncic_files(&config.hotlists.ncic_files)?);
    let entry_count = entries.len();
    let (store, alert_policy) = build_store(
        entries,
        &config.hotlists.lists,
        config.hotlists.suppression_window_secs,
    );
    let mut pipeline =
        pipeline_for(&config.kafka, &config.readers, store)?.with_alert_policy(alert_policy);
    if create_topics {
        let mut topics: Vec<(&str, i32)> = config
            .kafka
            .raw_topics
            .iter()
            .map(|t| (t.as_str(), 1))
            .collect();
        topics.push((&config.kafka.alerts_topic, 1));
        topics.push((&config.kafka.covert_alerts_topic, 1));
        topics.push((&config.kafka.dead_letter_topic, 1));
        ensure_topics(
            &config.kafka.producer_config(),
            &topics,
            Duration::from_secs(30),
        )
        .await?;
    }
    std::fs::create_dir_all(&config.archive.dir).with_context(|| {
        format!(
            "archive.dir {} cannot be created",
            config.archive.dir.display()
        )
    })?;
    let mut archive = ArchiveConfig::new(&config.archive.dir);
    archive.zstd_level = config.archive.zstd_level;
    let engine = StreamEngine::new(
        config.kafka.clone(),
        Arc::new(archive),
        StreamOptions {
            segment_max_rows: config.archive.segment_max_rows,
            segment_max_age: Duration::from_secs(config.archive.segment_max_age_secs),
            stop: StopWhen {
                flag: stop_flag,
                ..StopWhen::default()
            },
            ..StreamOptions::default()
        },
    );
    tracing::info!(
        bootstrap = %config.kafka.bootstrap_servers,
        topics = ?config.kafka.raw_topics,
        group = %config.kafka.group_id,
        hotlist_entries = entry_count,
        archive = %config.archive.dir.display(),
        "engine starting"
    );
    let summary =
        tokio::task::spawn_blocking(move || engine.run(&mut pipeline, &mut LogAlerts)).await??;
    tracing::info!(
        messages = summary.counts.messages,
        reads_archived = summary.reads_archived,
        dead_lettered = summary.counts.dead_lettered,
        alerts = summary.counts.alerts,
        files = summary.files_written,
        "engine stopped"
    );
    Ok(())
}
