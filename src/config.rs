//! `platestream.toml`, with every setting overridable by a `PLATESTREAM_...` environment variable
//! (sections and keys joined by `__`: `PLATESTREAM_KAFKA__BOOTSTRAP_SERVERS`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use platestream_connectors::http::IngestSettings;
use platestream_connectors::kafka::KafkaSettings;
use platestream_connectors::webhooks::WebhookSettings;
use platestream_engine::alert_policy::{ListPolicy, DEFAULT_SUPPRESSION_WINDOW_SECS};
use serde::{Deserialize, Serialize};

/// The file and the `PLATESTREAM_` variables that override it.
fn figment(path: &Path) -> Result<Figment> {
    if !path.is_file() {
        anyhow::bail!("config file {} does not exist", path.display());
    }
    Ok(Figment::new().merge(Toml::file_exact(path)).merge(
        // Other PLATESTREAM_ variables (PLATESTREAM_TANSU, ...) are not settings.
        Env::prefixed("PLATESTREAM_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                SECTIONS.iter().any(|section| key.starts_with(section))
            })
            .split("__"),
    ))
}

fn invalid(path: &Path) -> String {
    format!(
        "invalid configuration in {} or PLATESTREAM_ variables",
        path.display()
    )
}

/// What `query` and `compact` read of a config: where the archive is and the engine's API. An
/// analyst's machine has no `[kafka]` to give; an engine's whole config serves as well (its other
/// sections are not read here).
#[derive(Debug, Clone, Deserialize)]
pub struct QueryConfig {
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub api: Option<platestream_connectors::http::SearchApiSettings>,
}

/// What `replay --config` takes of a config file: its `[hotlists]` section, without needing the
/// rest (a `[kafka]` section) of an engine's config.
#[derive(Debug, Clone, Deserialize)]
pub struct HotlistsConfig {
    #[serde(default)]
    pub hotlists: HotlistSettings,
}

impl HotlistsConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let config = figment(path)?
            .extract::<Self>()
            .map_err(anyhow::Error::from)
            .with_context(|| invalid(path))?;
        check_list_policies(&config.hotlists.lists).with_context(|| invalid(path))?;
        Ok(config)
    }
}

impl QueryConfig {
    pub fn load(path: &Path) -> Result<Self> {
        figment(path)?
            .extract::<Self>()
            .map_err(anyhow::Error::from)
            .with_context(|| invalid(path))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaSettings,
    #[serde(default)]
    pub archive: ArchiveSettings,
    #[serde(default)]
    pub hotlists: HotlistSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub readers: ReaderSettings,
    /// `platestream serve`: HTTP ingest for readers that push (images go to `readers.image_dir`).
    #[serde(default)]
    pub ingest: IngestSettings,
    /// How alerts reach the webhooks list policies name.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// The in-memory index of recent reads' appearance embeddings, searched when a BOLO with
    /// reference vectors arrives; absent: no retro search. `dim` is `readers.embedding_dim` when
    /// that is set; a different `dim` beside it is refused.
    #[serde(default)]
    pub appearance: Option<platestream_engine::appearance::AppearanceIndexConfig>,
    /// The running engine's search API (`POST /v1/search/appearance`); absent: not served.
    /// Needs `[appearance]`.
    #[serde(default)]
    pub api: Option<platestream_connectors::http::SearchApiSettings>,
}

/// How reads from readers are interpreted before matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReaderSettings {
    /// IANA zone of readers that send local times without an offset (`America/New_York`).
    pub timezone: String,
    /// The content-addressed image store for inline and uploaded images.
    pub image_dir: PathBuf,
    /// Reports of the same plate at the same reader within this many milliseconds are one vehicle
    /// pass; 0 turns duplicate suppression off.
    pub dedupe_window_ms: u64,
    /// Archive every folded report too, marked with `duplicate_of`.
    pub keep_duplicates: bool,
    /// A released pass is remembered this long, so a report of it sent again (a vendor's retry)
    /// is folded into it rather than archived twice; 0 forgets passes when they are released.
    pub resend_horizon_secs: u64,
    /// Column mapping for topics whose format is `generic` (`schemas/examples/generic/`).
    pub generic: Option<platestream_engine::vendor::GenericMapping>,
    /// Length of the readers' appearance embeddings; an embedding of another length is removed
    /// from its read (the read is kept) and counted in `platestream_embeddings_dropped_total`.
    pub embedding_dim: Option<usize>,
}

impl Default for ReaderSettings {
    fn default() -> Self {
        Self {
            timezone: "UTC".to_owned(),
            image_dir: PathBuf::from("platestream-data/images"),
            dedupe_window_ms: 3_000,
            keep_duplicates: false,
            resend_horizon_secs: 300,
            generic: None,
            embedding_dim: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSettings {
    pub dir: PathBuf,
    /// A partition's open segment is committed at this many rows...
    pub segment_max_rows: usize,
    /// ...or after this many seconds, whichever comes first.
    pub segment_max_age_secs: u64,
    pub zstd_level: i32,
    /// Fault injection for benchmarks and tests: the archive writer sleeps this many milliseconds
    /// per 1,000 rows, like a slow disk. 0 (the default): off.
    pub slow_sink_ms: u64,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("platestream-data"),
            segment_max_rows: 500_000,
            segment_max_age_secs: 30,
            zstd_level: 3,
            slow_sink_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotlistSettings {
    /// Hotlist CSV files (`schemas/hotlist.md`).
    pub files: Vec<PathBuf>,
    /// NCIC-style extracts (fixed-width or comma-delimited, `schemas/hotlist.md`).
    pub ncic_files: Vec<PathBuf>,
    /// Seconds during which the same plate hitting the same entry is archived but not paged
    /// again, for lists whose policy names no window.
    pub suppression_window_secs: u64,
    /// Per-list policies (`[[hotlists.lists]]`): misreads, partials, route, webhooks, window.
    pub lists: Vec<ListPolicy>,
    /// Compacted Kafka topic of live entry upserts and deletes (`schemas/hotlist.md`); unset: none.
    pub updates_topic: Option<String>,
    /// Seconds between looks at the hotlist files (modification time and size); a changed file
    /// is reloaded. 0 turns watching off.
    pub reload_check_secs: u64,
    /// Reload every file this often even when unchanged; 0 (the default): only on change.
    pub reload_every_secs: u64,
}

impl Default for HotlistSettings {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            ncic_files: Vec::new(),
            suppression_window_secs: DEFAULT_SUPPRESSION_WINDOW_SECS,
            lists: Vec::new(),
            updates_topic: None,
            reload_check_secs: 5,
            reload_every_secs: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Where `/metrics` (Prometheus) is served; `""` (or `"off"`) turns it off.
    #[serde(deserialize_with = "address_or_off")]
    pub listen: Option<SocketAddr>,
}

/// A socket address, or `None` for `""` or `"off"`: a missing key means the default address, so
/// turning the endpoint off must be said (two engines on one host would both want the default).
fn address_or_off<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|error| {
        serde::de::Error::custom(format!(
            "{text:?} is not HOST:PORT ({error}); \"\" or \"off\" turns the endpoint off"
        ))
    })
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        }
    }
}

const SECTIONS: &[&str] = &[
    "kafka", "archive", "hotlists", "metrics", "readers", "ingest", "webhooks",
];

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let figment = figment(path)?;
        figment
            .extract::<Self>()
            .map_err(anyhow::Error::from)
            .and_then(|config| config.check().map(|()| config))
            .and_then(|config| {
                // `readers.embedding_dim` wins; an `[appearance] dim` given beside it and
                // different would otherwise be ignored without a word.
                let dims = (
                    config.readers.embedding_dim,
                    figment.find_value("appearance.dim").is_ok(),
                    config.appearance.as_ref().map(|appearance| appearance.dim),
                );
                if let (Some(readers), true, Some(appearance)) = dims {
                    if readers != appearance {
                        anyhow::bail!(
                            "[appearance] dim = {appearance} but [readers] embedding_dim = \
                             {readers}: the index holds the readers' embeddings, so give one \
                             length (or leave dim out)"
                        );
                    }
                }
                Ok(config)
            })
            .with_context(|| invalid(path))
    }

    fn check(&self) -> Result<()> {
        let archive = &self.archive;
        if archive.segment_max_rows == 0 {
            anyhow::bail!("[archive] segment_max_rows = 0: a segment needs at least one row");
        }
        if archive.segment_max_age_secs == 0 {
            anyhow::bail!(
                "[archive] segment_max_age_secs = 0: give at least 1 (seconds a segment stays open)"
            );
        }
        if !(1..=22).contains(&archive.zstd_level) {
            anyhow::bail!(
                "[archive] zstd_level = {}: zstd levels are 1 to 22",
                archive.zstd_level
            );
        }
        let kafka = &self.kafka;
        if kafka.raw_topics.iter().all(|topic| topic.trim().is_empty()) {
            anyhow::bail!("[kafka] raw_topics = []: name the topics readers' reads arrive on");
        }
        let outputs = [
            ("alerts_topic", &kafka.alerts_topic),
            ("covert_alerts_topic", &kafka.covert_alerts_topic),
            ("dead_letter_topic", &kafka.dead_letter_topic),
        ];
        for (setting, topic) in outputs {
            if topic.trim().is_empty() {
                anyhow::bail!("[kafka] {setting} = \"\": name the topic");
            }
            // The engine would consume what it writes: a dead letter dead-lettered again without
            // end, or its own alerts taken for reads.
            if kafka.raw_topics.contains(topic) {
                anyhow::bail!(
                    "[kafka] {setting} = {topic:?} is also one of raw_topics: the engine would \
                     consume what it writes there"
                );
            }
        }
        if let Some(updates) = &self.hotlists.updates_topic {
            if kafka.raw_topics.contains(updates) {
                anyhow::bail!(
                    "[hotlists] updates_topic = {updates:?} is also one of [kafka] raw_topics: \
                     hotlist changes would be taken for reads"
                );
            }
        }
        if kafka.alerts_topic == kafka.covert_alerts_topic {
            anyhow::bail!(
                "[kafka] covert_alerts_topic = {:?} is alerts_topic too: covert hits would reach \
                 field officers",
                kafka.covert_alerts_topic
            );
        }
        // Each output topic has its own readers and its own access rules: covert hits among
        // dead letters or hotlist updates would reach whoever reads those.
        let named_outputs = [
            ("[kafka] alerts_topic", Some(&kafka.alerts_topic)),
            (
                "[kafka] covert_alerts_topic",
                Some(&kafka.covert_alerts_topic),
            ),
            ("[kafka] dead_letter_topic", Some(&kafka.dead_letter_topic)),
            (
                "[hotlists] updates_topic",
                self.hotlists.updates_topic.as_ref(),
            ),
        ];
        for (index, (setting, topic)) in named_outputs.iter().enumerate() {
            let Some(topic) = topic else { continue };
            for (other, other_topic) in &named_outputs[index + 1..] {
                if *other_topic == Some(*topic) {
                    anyhow::bail!(
                        "{setting} = {topic:?} and {other} = {topic:?}: give each its own topic"
                    );
                }
            }
        }
        if self.kafka.prepare_threads == Some(0) {
            anyhow::bail!(
                "[kafka] prepare_threads = 0: give at least 1, or leave it out (one per core)"
            );
        }
        if self.webhooks.timeout_ms == 0 {
            anyhow::bail!("[webhooks] timeout_ms = 0: every delivery would time out");
        }
        if self.ingest.max_body_bytes == 0 {
            anyhow::bail!("[ingest] max_body_bytes = 0: every read would be refused");
        }
        if self.ingest.produce_timeout_ms == 0 {
            anyhow::bail!("[ingest] produce_timeout_ms = 0: every read would be answered 503");
        }
        check_list_policies(&self.hotlists.lists)?;
        Ok(())
    }
}

/// Refuses list policies the engine cannot apply as written.
fn check_list_policies(lists: &[platestream_engine::alert_policy::ListPolicy]) -> Result<()> {
    let mut policy_names = std::collections::HashSet::new();
    for policy in lists {
        // No entry of such a list can exist: files and the updates topic refuse the name.
        if let Err(reason) = platestream_engine::hotlist::check_list_name(&policy.name) {
            anyhow::bail!("[[hotlists.lists]] name = {:?}: {reason}", policy.name);
        }
        if let Some(priority) = policy.default_priority.filter(|p| !(1..=9).contains(p)) {
            anyhow::bail!(
                "[[hotlists.lists]] name = {:?}: default_priority = {priority} is not 1 (most \
                     urgent) to 9",
                policy.name
            );
        }
        // Only one block would apply: a covert list declared again as field would page
        // field officers.
        if !policy_names.insert(policy.name.as_str()) {
            anyhow::bail!(
                "[[hotlists.lists]] name = {:?} is declared twice: merge the two blocks",
                policy.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn the_shipped_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("platestream.example.toml");
        // Inside a jail: another test sets PLATESTREAM_ variables, and the jail serializes them.
        figment::Jail::expect_with(|_| {
            let config = Config::load(&path).unwrap();
            assert_eq!(config.kafka.raw_topics, vec!["plate-reads".to_owned()]);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn settings_the_engine_cannot_work_with_are_refused_at_load_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (section, setting) in [
            ("[archive]", "segment_max_rows = 0"),
            ("[archive]", "segment_max_age_secs = 0"),
            ("[archive]", "zstd_level = 50"),
            ("[archive]", "zstd_level = 0"),
            ("", "prepare_threads = 0"),
            ("[webhooks]", "timeout_ms = 0"),
            ("[ingest]", "max_body_bytes = 0"),
            ("[[hotlists.lists]]", "name = \"amber/alert\""),
            ("", "dead_letter_topic = \"plate-reads\""),
            ("", "alerts_topic = \"plate-reads\""),
            ("", "dead_letter_topic = \"\""),
            ("", "raw_topics = []"),
            ("", "covert_alerts_topic = \"plate-alerts\""),
            ("[hotlists]", "updates_topic = \"plate-reads\""),
            ("[readers]\nembedding_dim = 256\n[appearance]", "dim = 128"),
            ("", "covert_alerts_topic = \"plate-reads-dead-letter\""),
            ("[hotlists]", "updates_topic = \"plate-alerts\""),
            (
                "[[hotlists.lists]]\nname = \"covert_watch\"\nroute = \"covert\"\n[[hotlists.lists]]",
                "name = \"covert_watch\"",
            ),
        ] {
            let text = format!("[kafka]\nbootstrap_servers = \"a:9092\"\n{section}\n{setting}\n");
            std::fs::write(&path, text).unwrap();
            figment::Jail::expect_with(|_| {
                let error = format!("{:#}", Config::load(&path).unwrap_err());
                assert!(error.contains(setting), "{setting}: {error}");
                Ok(())
            });
        }
        std::fs::write(
            &path,
            "[kafka]\nbootstrap_servers = \"a:9092\"\n[archive]\nzstd_level = 22\nsegment_max_rows = 1\n",
        )
        .unwrap();
        figment::Jail::expect_with(|_| {
            let config = Config::load(&path).unwrap();
            assert_eq!(config.archive.zstd_level, 22);
            Ok(())
        });
        // The readers' length alone, or the same length twice, is taken.
        for appearance in ["[appearance]\nhorizon_secs = 60", "[appearance]\ndim = 256"] {
            std::fs::write(
                &path,
                format!(
                    "[kafka]\nbootstrap_servers = \"a:9092\"\n[readers]\nembedding_dim = 256\n{appearance}\n"
                ),
            )
            .unwrap();
            figment::Jail::expect_with(|_| {
                Config::load(&path).unwrap();
                Ok(())
            });
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn environment_overrides_the_file_and_typos_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\nbootstrap_servers = \"a:9092\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("PLATESTREAM_KAFKA__GROUP_ID", "night-shift");
            jail.set_env("PLATESTREAM_ARCHIVE__SEGMENT_MAX_ROWS", "1000");
            let config = Config::load(&path).unwrap();
            assert_eq!(config.kafka.group_id, "night-shift");
            assert_eq!(config.kafka.bootstrap_servers, "a:9092");
            assert_eq!(config.archive.segment_max_rows, 1000);
            jail.set_env("PLATESTREAM_ARCHIVE__SEGMENT_MAX_ROWS", "lots");
            let error = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(error.to_lowercase().contains("segment_max_rows"), "{error}");
            Ok(())
        });
        std::fs::write(&path, "[kafka]\nbootstrap_server = \"a:9092\"\n").unwrap();
        // In a jail too: other tests' jails set PLATESTREAM_ variables, and only the jail's lock
        // keeps them from being read here.
        figment::Jail::expect_with(|_| {
            let error = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(error.contains("bootstrap_server"), "{error}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn ingest_vendors_come_from_the_file_and_their_tokens_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\nbootstrap_servers = \"a:9092\"\n\
             [ingest]\nlisten = \"0.0.0.0:9000\"\n\
             [ingest.vendors.rekor]\nformat = \"rekor\"\ntoken = \"placeholder\"\n\
             topic = \"plate-reads-rekor\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "PLATESTREAM_INGEST__VENDORS__REKOR__TOKEN",
                "from-the-environment-0001",
            );
            let config = Config::load(&path).unwrap();
            assert_eq!(config.ingest.listen.port(), 9000);
            assert_eq!(config.ingest.max_body_bytes, 8 * 1024 * 1024);
            let rekor = &config.ingest.vendors["rekor"];
            assert_eq!(rekor.token.as_str(), "from-the-environment-0001");
            assert_eq!(rekor.topic, "plate-reads-rekor");
            Ok(())
        });
        std::fs::write(
            &path,
            "[kafka]\nbootstrap_servers = \"a:9092\"\n[ingest.vendors.rekor]\nformat = \"rekor\"\n\
             token = \"t\"\ntopik = \"x\"\n",
        )
        .unwrap();
        // In a jail too: the other config tests set PLATESTREAM_ variables.
        figment::Jail::expect_with(|_| {
            let error = format!("{:#}", Config::load(&path).unwrap_err());
            assert!(error.contains("topik"), "{error}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn the_metrics_endpoint_is_on_by_default_and_turned_off_by_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let listen = |metrics: &str| {
            std::fs::write(
                &path,
                format!("[kafka]\nbootstrap_servers = \"a:9092\"\n{metrics}"),
            )
            .unwrap();
            let mut outcome = None;
            // In a jail: the other config tests set PLATESTREAM_ variables.
            figment::Jail::expect_with(|_| {
                outcome = Some(Config::load(&path).map(|config| config.metrics.listen));
                Ok(())
            });
            outcome.unwrap()
        };
        let default = Some(SocketAddr::from(([127, 0, 0, 1], 9464)));
        assert_eq!(listen("").unwrap(), default);
        assert_eq!(listen("[metrics]\n").unwrap(), default);
        assert_eq!(listen("[metrics]\nlisten = \"\"\n").unwrap(), None);
        assert_eq!(listen("[metrics]\nlisten = \"off\"\n").unwrap(), None);
        assert_eq!(
            listen("[metrics]\nlisten = \"0.0.0.0:9100\"\n").unwrap(),
            Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
        let error = format!(
            "{:#}",
            listen("[metrics]\nlisten = \"nine\"\n").unwrap_err()
        );
        assert!(error.contains("listen") && error.contains("off"), "{error}");
    }
}
