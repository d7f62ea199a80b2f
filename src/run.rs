//! `platestream run`: the engine against a configured Kafka cluster until Ctrl-C.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use platestream_connectors::http::{BoundSearchApi, SearchApi};
use platestream_connectors::kafka::hotlist_updates::UpdatesStatus;
use platestream_connectors::kafka::{
    ensure_replicated_compacted_topics, ensure_replicated_topics, missing_topics,
    spawn_hotlist_updates, KafkaSettings, LiveUpdates, StopWhen, StreamEngine, StreamObserver,
    StreamOptions,
};
use platestream_connectors::webhooks::{validate_webhook_url, WebhookFanout};
use platestream_engine::alert::Alert;
use platestream_engine::alert_policy::AlertRoute;
use platestream_engine::archive::ArchiveConfig;
use platestream_engine::unarchived::UnarchivedReads;

use crate::config::Config;
use crate::hotlist_sources::{FileReloader, HotlistFiles, ReloadIntervals};
use crate::hotlists::{build_store, policies_of_no_list, remember_recent_pages};
use crate::readers::pipeline_for;

/// Logs each paged alert and hands it to the webhook fan-out (which only queues it).
struct LogAlerts {
    webhooks: Option<Arc<WebhookFanout>>,
}

impl StreamObserver for LogAlerts {
    fn on_alert(&mut self, alert: &Alert) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.send(alert);
        }
        // The engine's log is read by more people than the covert topic: it says a covert hit
        // happened and where to find it, never what it was.
        if alert.route == platestream_engine::alert_policy::AlertRoute::Covert {
            tracing::info!(
                alert_id = %alert.alert_id,
                "covert alert (on the covert alerts topic)"
            );
            return;
        }
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

/// The topics `--create-topics` creates: partitions of each and copies on the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLayout {
    pub partitions: i32,
    pub replication: i32,
}

/// `create_topics`: create the configured topics that do not exist, laid out so.
pub async fn run_engine(
    config: Config,
    create_topics: Option<TopicLayout>,
    stop_flag: Arc<AtomicBool>,
) -> Result<()> {
    let files = HotlistFiles::load(&config.hotlists.files, &config.hotlists.ncic_files)?;
    let entries = files.entries();
    let (store, alert_policy) = build_store(
        entries,
        &config.hotlists.lists,
        config.hotlists.suppression_window_secs,
    );
    let longest_window_secs = config
        .hotlists
        .lists
        .iter()
        .filter_map(|list| list.suppression_window_secs)
        .fold(config.hotlists.suppression_window_secs, u64::max);
    remember_recent_pages(&config.archive.dir, &alert_policy, longest_window_secs)?;
    check_webhook_urls(&config)?;
    let pipeline = pipeline_for(&config.kafka, &config.readers, store.clone())?;
    let mut pipeline =
        crate::readers::with_vendor_zones(pipeline, &config.ingest, &config.readers)?
            .with_alert_policy(alert_policy);
    let mut appearance_index = None;
    if let Some(appearance) = &config.appearance {
        let appearance = platestream_engine::appearance::AppearanceIndexConfig {
            dim: config.readers.embedding_dim.unwrap_or(appearance.dim),
            ..appearance.clone()
        };
        tracing::info!(
            dim = appearance.dim,
            horizon_secs = appearance.horizon_secs,
            "appearance index of recent reads"
        );
        let index = Arc::new(platestream_engine::appearance::RecentAppearanceIndex::new(
            appearance,
        ));
        pipeline = pipeline.with_appearance_index(Arc::clone(&index));
        appearance_index = Some(index);
    }
    // Held only for the API to serve: without it nobody could ask for them.
    let unarchived = config
        .api
        .as_ref()
        .map(|settings| Arc::new(UnarchivedReads::new(settings.unarchived_max_reads)));
    let search_api = match (&config.api, &unarchived) {
        (Some(settings), Some(unarchived)) => {
            let api = SearchApi::new(settings, appearance_index, Arc::clone(unarchived))
                .context("[api]")?
                .bind()
                .await
                .context("[api]")?;
            tracing::info!(
                address = %api.local_addr(),
                appearance_search = config.appearance.is_some(),
                "API listening (GET /v1/reads/unarchived; POST /v1/search/appearance with [appearance])"
            );
            Some(spawn_search_api(api, Arc::clone(&stop_flag)))
        }
        _ => None,
    };
    if let Some(layout) = create_topics {
        let mut topics: Vec<(&str, i32)> = config
            .kafka
            .raw_topics
            .iter()
            .map(|t| (t.as_str(), layout.partitions))
            .collect();
        topics.push((&config.kafka.alerts_topic, layout.partitions));
        topics.push((&config.kafka.covert_alerts_topic, layout.partitions));
        topics.push((&config.kafka.dead_letter_topic, layout.partitions));
        ensure_replicated_topics(
            &config.kafka.producer_config(),
            &topics,
            layout.replication,
            Duration::from_secs(30),
        )
        .await?;
        if let Some(updates_topic) = &config.hotlists.updates_topic {
            // One partition: every engine reads the whole topic, in order.
            ensure_replicated_compacted_topics(
                &config.kafka.producer_config(),
                &[(updates_topic.as_str(), 1)],
                layout.replication,
                Duration::from_secs(30),
            )
            .await?;
        }
    }
    if create_topics.is_none() {
        require_topics(&config.kafka, &engine_topics(&config))?;
    }
    std::fs::create_dir_all(&config.archive.dir).with_context(|| {
        format!(
            "archive.dir {} cannot be created",
            config.archive.dir.display()
        )
    })?;
    let mut archive = ArchiveConfig::new(&config.archive.dir);
    archive.zstd_level = config.archive.zstd_level;
    archive.slow_sink = (config.archive.slow_sink_ms > 0)
        .then(|| Duration::from_millis(config.archive.slow_sink_ms));
    let engine = StreamEngine::new(
        config.kafka.clone(),
        Arc::new(archive),
        StreamOptions {
            segment_max_rows: config.archive.segment_max_rows,
            segment_max_age: Duration::from_secs(config.archive.segment_max_age_secs),
            stop: StopWhen {
                flag: Arc::clone(&stop_flag),
                ..StopWhen::default()
            },
            unarchived,
            ..StreamOptions::default()
        },
    );
    let live = Arc::new(LiveUpdates::default());
    let updates = match &config.hotlists.updates_topic {
        Some(topic) => Some(spawn_hotlist_updates(
            &config.kafka,
            topic,
            Arc::clone(&store),
            Arc::clone(&live),
            Arc::clone(&stop_flag),
        )?),
        None => None,
    };
    if let Some(updates) = &updates {
        wait_for_rebuild(&updates.status, &stop_flag).await;
    }
    // The store holds a list for every policy; only lists with entries count as loaded.
    let loaded_lists: Vec<String> = store
        .list_names()
        .into_iter()
        .filter(|list| store.list_len(list) > 0)
        .collect();
    // Files and the updates topic together: what the engine matches against from its first read.
    let mut entry_count = 0;
    for list in &loaded_lists {
        let entries = store.list_len(list);
        entry_count += entries;
        metrics::gauge!("platestream_hotlist_entries", "list" => list.clone()).set(entries as f64);
    }
    for warning in policies_of_no_list(&config.hotlists.lists, &loaded_lists)
        .into_iter()
        .chain(crate::hotlists::lists_almost_named_as_a_policy(
            &config.hotlists.lists,
            &loaded_lists,
        ))
    {
        tracing::warn!("{warning}");
    }
    let file_watcher = if config.hotlists.reload_check_secs > 0 && !files.is_empty() {
        let intervals = ReloadIntervals {
            check: Duration::from_secs(config.hotlists.reload_check_secs),
            every: (config.hotlists.reload_every_secs > 0)
                .then(|| Duration::from_secs(config.hotlists.reload_every_secs)),
        };
        Some(
            FileReloader::new(files, Arc::clone(&store), Arc::clone(&live))
                .spawn(intervals, Arc::clone(&stop_flag))?,
        )
    } else {
        None
    };
    let webhooks = config
        .hotlists
        .lists
        .iter()
        .any(|policy| !policy.webhooks.is_empty())
        .then(|| {
            Arc::new(WebhookFanout::new(
                config.webhooks.clone(),
                Arc::clone(&store),
            ))
        });
    let mut observer = LogAlerts {
        webhooks: webhooks.clone(),
    };
    tracing::info!(
        bootstrap = %config.kafka.bootstrap_servers,
        topics = ?config.kafka.raw_topics,
        group = %config.kafka.group_id,
        hotlist_entries = entry_count,
        updates_topic = ?config.hotlists.updates_topic,
        archive = %config.archive.dir.display(),
        "engine starting"
    );
    let outcome =
        tokio::task::spawn_blocking(move || engine.run(&mut pipeline, &mut observer)).await;
    // The engine may have stopped on an error: the side threads stop with it.
    stop_flag.store(true, Ordering::Relaxed);
    let side_threads = tokio::task::spawn_blocking(move || {
        if let Some(updates) = updates {
            if let Err(error) = updates.join() {
                tracing::error!(%error, "hotlist updates thread failed");
            }
        }
        if let Some(watcher) = file_watcher {
            if watcher.join().is_err() {
                tracing::error!("hotlist file watcher panicked");
            }
        }
        if let Some(webhooks) = webhooks.and_then(Arc::into_inner) {
            webhooks.shutdown(Duration::from_secs(5));
        }
    });
    let summary = outcome??;
    side_threads.await?;
    if let Some(search_api) = search_api {
        search_api.await??;
    }
    tracing::info!(
        messages = summary.counts.messages,
        reads_archived = summary.reads_archived,
        duplicates_folded = summary.counts.duplicates_suppressed,
        duplicates_kept = summary.counts.duplicates_kept,
        dead_lettered = summary.counts.dead_lettered,
        reads_refused = summary.counts.reads_refused,
        not_reads = summary.counts.not_reads,
        skipped_already_archived = summary.already_archived,
        handed_over_to_next_owner = summary.handed_over,
        alerts = summary.counts.alerts,
        files = summary.files_written,
        elapsed_ms = summary.elapsed.as_millis() as u64,
        active_ms = summary.active.as_millis() as u64,
        "engine stopped"
    );
    Ok(())
}

/// Serves the search API until the engine stops (the stop flag is set).
fn spawn_search_api(
    api: BoundSearchApi,
    stop_flag: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let stopped = async move {
            while !stop_flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        api.serve(stopped).await.context("search API")
    })
}

/// Reads matched before the updates topic is rebuilt would miss hand-entered entries: wait for
/// it, but not forever (a slow or absent cluster must not keep the engine from matching files).
async fn wait_for_rebuild(status: &UpdatesStatus, stop_flag: &AtomicBool) {
    let deadline = Instant::now() + REBUILD_WAIT;
    while !status.caught_up.load(Ordering::Relaxed) && !stop_flag.load(Ordering::Relaxed) {
        if Instant::now() >= deadline {
            tracing::warn!(
                waited_secs = REBUILD_WAIT.as_secs(),
                "hotlist updates topic not rebuilt yet; starting anyway, it keeps loading"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const REBUILD_WAIT: Duration = Duration::from_secs(30);

/// A mistyped webhook URL is a configuration error, found at start rather than at the first hit.
fn check_webhook_urls(config: &Config) -> Result<()> {
    for policy in &config.hotlists.lists {
        for url in &policy.webhooks {
            validate_webhook_url(url)
                .with_context(|| format!("hotlists.lists {:?}", policy.name))?;
        }
    }
    Ok(())
}

/// The topics the engine reads or writes, with the setting that names each. The covert topic
/// only when a list routes there.
fn engine_topics(config: &Config) -> Vec<(&str, &'static str)> {
    let mut topics: Vec<(&str, &'static str)> = config
        .kafka
        .raw_topics
        .iter()
        .map(|topic| (topic.as_str(), "[kafka] raw_topics"))
        .collect();
    topics.push((&config.kafka.alerts_topic, "[kafka] alerts_topic"));
    topics.push((&config.kafka.dead_letter_topic, "[kafka] dead_letter_topic"));
    if config
        .hotlists
        .lists
        .iter()
        .any(|list| list.route == AlertRoute::Covert)
    {
        topics.push((
            &config.kafka.covert_alerts_topic,
            "[kafka] covert_alerts_topic",
        ));
    }
    topics
}

/// Refuses to start on topics the cluster does not have: the engine would otherwise consume
/// nothing, or fail half a minute in at its first alert with a timed-out delivery. A cluster that
/// cannot be asked now is only warned about (the clients keep retrying).
pub fn require_topics(settings: &KafkaSettings, topics: &[(&str, &str)]) -> Result<()> {
    let names: Vec<&str> = topics.iter().map(|(topic, _)| *topic).collect();
    let missing = match missing_topics(settings, &names) {
        Ok(missing) => missing,
        Err(error) => {
            tracing::warn!(
                %error,
                bootstrap_servers = %settings.bootstrap_servers,
                "could not reach the cluster to check that the configured topics exist; the \
                 engine starts and keeps retrying the brokers (stop it if the address is wrong)"
            );
            return Ok(());
        }
    };
    if missing.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = topics
        .iter()
        .filter(|(topic, _)| missing.contains(topic))
        .map(|(topic, setting)| format!("{topic} ({setting})"))
        .collect();
    let (noun, pronoun) = if described.len() == 1 {
        ("topic", "it")
    } else {
        ("topics", "them")
    };
    bail!(
        "the cluster at {} has no {noun} {}: create {pronoun}, or start with --create-topics",
        settings.bootstrap_servers,
        described.join(", ")
    )
}
