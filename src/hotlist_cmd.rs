//! `platestream hotlist`: what a dispatcher or list keeper does by hand. `put` and `delete` send
//! one change (an AMBER alert entered at 3 a.m.) to the live updates topic that every engine
//! follows, `publish` sends a file of them, and `check` reads hotlist files as the engine would
//! and says what it would load and refuse, before the files are deployed.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use platestream_connectors::kafka::{
    ensure_compacted_topics, publish_updates, read_updates_topic, Delivered, KafkaSettings,
    PublishError, UpdateMessage,
};
use platestream_engine::hotlist::{
    check_list_name, entry_from_fields, load_hotlist_csv, EntryFields, HotlistEntry, LoadedHotlist,
    KNOWN_COLUMNS,
};
use platestream_engine::ncic::load_ncic_extract;
use platestream_engine::store::Update;
use platestream_engine::Timestamp;

use crate::compact_cmd::steps_bar;
use crate::config::Config;
use crate::hotlists::{policies_of_no_list, why_no_entries};
use crate::query::args::parse_duration_ms;

#[derive(Args)]
pub struct HotlistArgs {
    #[command(subcommand)]
    pub command: HotlistCommand,
}

#[derive(Subcommand)]
pub enum HotlistCommand {
    /// Add or replace one entry through the live updates topic (hotlists.updates_topic): every
    /// engine following it matches the entry within seconds. Checked as the engines will read it
    /// before it is sent.
    Put(Box<PutArgs>),
    /// Remove one entry through the live updates topic. An entry that a hotlist file still holds
    /// comes back at that file's next reload: remove it from the file too.
    Delete(DeleteArgs),
    /// Publish a file of updates, one {"key": "<list>/<id>", "value": {...}} per line (a null
    /// value deletes; schemas/hotlist.md). Every line is checked before any is sent.
    Publish(PublishArgs),
    /// List the entries the live updates topic holds now, what an engine starting now rebuilds
    /// from it, with the ids `delete` takes. Entries of hotlist files are not listed (`check`
    /// reads those).
    Show(ShowArgs),
    /// Read hotlist CSV files and NCIC-style extracts as the engine loads them: entries per list,
    /// and every refused row with its line and reason. Exit status 1 if any row is refused or a
    /// file cannot be read.
    Check(CheckArgs),
}

/// Where updates go.
#[derive(Args)]
pub struct TopicArgs {
    /// Config file: its [kafka] section (servers, security properties) and
    /// hotlists.updates_topic.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Kafka bootstrap servers, instead of the config file's.
    #[arg(long)]
    brokers: Option<String>,
    /// The updates topic, instead of the config file's hotlists.updates_topic.
    #[arg(long)]
    topic: Option<String>,
    /// Create the topic (compacted) if it does not exist.
    #[arg(long)]
    create_topic: bool,
}

#[derive(Args)]
pub struct PutArgs {
    #[command(flatten)]
    target: TopicArgs,
    /// The list (amber_alert, silver_alert, local_bolo...).
    #[arg(long)]
    list: String,
    /// The entry's id within its list (a case number); default: the NCIC number if given, else
    /// PLATE/JURISDICTION, as for a CSV row.
    #[arg(long)]
    id: Option<String>,
    /// The plate, or a partial plate from a witness (`7X?2*`: ? one character, * any run).
    #[arg(long)]
    plate: Option<String>,
    /// State or province (VA, US-VA, ON); omit when unknown: then a plate from any jurisdiction
    /// matches.
    #[arg(long)]
    jurisdiction: Option<String>,
    /// Why the vehicle is wanted; shown to the officer.
    #[arg(long)]
    reason: Option<String>,
    /// 1 (most urgent) to 9.
    #[arg(long)]
    priority: Option<String>,
    #[arg(long)]
    case_number: Option<String>,
    #[arg(long)]
    ncic_number: Option<String>,
    /// Free text shown to the officer (vehicle, suspect, what to do).
    #[arg(long)]
    description: Option<String>,
    /// NCIC plate type (PC, MC, TK...).
    #[arg(long)]
    plate_type: Option<String>,
    #[arg(long)]
    entered_by: Option<String>,
    /// When the entry stops matching (RFC 3339).
    #[arg(long, conflicts_with = "expires_in")]
    expires_at: Option<String>,
    /// When the entry stops matching, from now (`48h`, `7d`).
    #[arg(long)]
    expires_in: Option<String>,
    /// `false` matches this entry exactly only, whatever its list's policy says.
    #[arg(long)]
    misreads: Option<bool>,
    /// Any other column, repeatable: --set make=Honda --set model=Odyssey --set color=blue.
    #[arg(long = "set", value_name = "COLUMN=VALUE")]
    set: Vec<String>,
    /// Print the message that would be sent, and send nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    target: TopicArgs,
    #[arg(long)]
    list: String,
    /// The entry's id, as `put` printed it.
    #[arg(long)]
    id: String,
    /// Send the delete even when the topic holds no live entry with this id (a mistyped id is
    /// refused otherwise, listing the live ids of the list).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct PublishArgs {
    #[command(flatten)]
    target: TopicArgs,
    /// NDJSON file of updates; `-` reads standard input.
    file: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: TopicArgs,
    /// Only this list.
    #[arg(long)]
    list: Option<String>,
    /// One JSON object per entry (the entry as the engines hold it, and where it is on the
    /// topic) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// Hotlist CSV files (schemas/hotlist.md).
    files: Vec<PathBuf>,
    /// NCIC-style extracts, fixed-width or comma-delimited (repeatable).
    #[arg(long)]
    ncic: Vec<PathBuf>,
    /// Also check the files named in this config's [hotlists] section.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Refused rows listed per file at most (all are counted).
    #[arg(long, default_value_t = 50)]
    show_refused: usize,
}

pub async fn run_hotlist(args: HotlistArgs) -> Result<()> {
    match args.command {
        HotlistCommand::Put(put) => run_put(*put).await,
        HotlistCommand::Delete(delete) => run_delete(delete).await,
        HotlistCommand::Publish(publish_args) => run_publish(publish_args).await,
        HotlistCommand::Show(show) => run_show(show).await,
        HotlistCommand::Check(check) => run_check(&check),
    }
}

impl TopicArgs {
    async fn resolve(&self) -> Result<(KafkaSettings, String)> {
        let config = self.config.as_deref().map(Config::load).transpose()?;
        let mut settings = match (&config, &self.brokers) {
            (Some(config), _) => config.kafka.clone(),
            (None, Some(brokers)) => KafkaSettings::new(brokers.clone()),
            (None, None) => bail!("give --config FILE (its [kafka] section) or --brokers HOSTS"),
        };
        if let Some(brokers) = &self.brokers {
            settings.bootstrap_servers = brokers.clone();
        }
        let topic = match (&self.topic, &config) {
            (Some(topic), _) => topic.clone(),
            (None, Some(config)) => config.hotlists.updates_topic.clone().with_context(|| {
                format!(
                    "{} sets no hotlists.updates_topic; set it (and restart the engines) or give --topic",
                    self.config.as_deref().unwrap_or(Path::new("")).display()
                )
            })?,
            (None, None) => bail!("give --topic TOPIC or --config FILE with hotlists.updates_topic"),
        };
        if self.create_topic {
            ensure_compacted_topics(
                &settings.producer_config(),
                &[(topic.as_str(), 1)],
                Duration::from_secs(30),
            )
            .await
            .with_context(|| format!("creating the updates topic {topic}"))?;
        }
        Ok((settings, topic))
    }
}

async fn run_put(put: PutArgs) -> Result<()> {
    let mut value = serde_json::Map::new();
    let mut column = |name: &str, given: &Option<String>| {
        if let Some(text) = given {
            value.insert(name.to_owned(), serde_json::Value::String(text.clone()));
        }
    };
    column("plate", &put.plate);
    column("jurisdiction", &put.jurisdiction);
    column("reason", &put.reason);
    column("priority", &put.priority);
    column("case_number", &put.case_number);
    column("ncic_number", &put.ncic_number);
    column("description", &put.description);
    column("plate_type", &put.plate_type);
    column("entered_by", &put.entered_by);
    column("expires_at", &put.expires_at);
    if let Some(text) = &put.expires_in {
        let millis = parse_duration_ms("--expires-in", text)?;
        let at = Timestamp::from_millis(Timestamp::now().millis().saturating_add(millis));
        value.insert("expires_at".into(), at.to_string().into());
    }
    if let Some(misreads) = put.misreads {
        value.insert("misreads".into(), misreads.into());
    }
    for assignment in &put.set {
        let Some((name, text)) = assignment.split_once('=') else {
            bail!("--set {assignment:?} is not COLUMN=VALUE");
        };
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || matches!(name.as_str(), "list" | "id" | "op") {
            bail!("--set {assignment:?}: give the list and id with --list and --id");
        }
        if let Some(known) = misspelt_field(&name) {
            bail!(
                "--set {assignment:?}: {name} is not an entry field (did you mean {known}?); \
                 names that are not fields are kept as attributes"
            );
        }
        value.insert(name, text.into());
    }
    // A hand entry says when it was made unless the dispatcher said otherwise.
    value
        .entry("entered_at")
        .or_insert_with(|| Timestamp::now().to_string().into());
    let list = checked_list_name(&put.list)?;
    if let Some(path) = &put.target.config {
        let policies = Config::load(path)?.hotlists.lists;
        if let Some(policy) = crate::hotlists::policy_almost_named(&policies, list) {
            bail!(
                "--list {list}: {} names the list {:?} (list names are exact); an entry of {list} \
                 would get the default policy{}",
                path.display(),
                policy.name,
                if policy.route == platestream_engine::alert_policy::AlertRoute::Covert {
                    " and page field officers instead of the covert topic"
                } else {
                    ""
                }
            );
        }
    }
    let id = match &put.id {
        Some(id) => id.trim().to_owned(),
        None => default_id(list, &value)?,
    };
    let value = serde_json::Value::Object(value);
    let message = UpdateMessage {
        key: format!("{list}/{id}"),
        value: Some(value.to_string()),
    };
    let entry = match check_message(&message)? {
        Update::Upsert(entry) => entry,
        Update::Delete(_) => bail!("internal: an upsert was read as a delete"),
    };
    if let Some(path) = &put.target.config {
        let config = Config::load(path)?;
        let reads_dim = config
            .readers
            .embedding_dim
            .or(config.appearance.as_ref().map(|appearance| appearance.dim));
        let vectors = entry
            .vehicle
            .as_deref()
            .map_or(&[][..], |description| &description.reference_vectors[..]);
        if let Some(dim) = reads_dim {
            if let Some((index, vector)) = vectors
                .iter()
                .enumerate()
                .find(|(_, vector)| vector.len() != dim)
            {
                bail!(
                    "reference_vectors: vector {} has {} numbers but the readers' embeddings have {dim} ({}): it could never match",
                    index + 1,
                    vector.len(),
                    path.display()
                );
            }
        }
    }
    if put.dry_run {
        println!(
            "{}",
            serde_json::json!({"key": message.key, "value": value})
        );
        println!("{}", describe_entry(&entry));
        return Ok(());
    }
    publish_one(&put.target, &message, "published").await?;
    println!("  {}", describe_entry(&entry));
    Ok(())
}

/// Deletes one entry, after making sure the topic holds it: a mistyped id would otherwise be
/// reported deleted while the entry it meant keeps matching.
async fn run_delete(delete: DeleteArgs) -> Result<()> {
    let list = checked_list_name(&delete.list)?;
    let id = delete.id.trim();
    let message = UpdateMessage {
        key: format!("{list}/{id}"),
        value: None,
    };
    check_message(&message)?;
    if !delete.force {
        let (settings, topic) = delete.target.resolve().await?;
        let state = tokio::task::block_in_place(|| {
            read_updates_topic(&settings, &topic, Duration::from_secs(120))
        })
        .with_context(|| format!("reading {topic} for the live entries of {list}"))?;
        let live_ids: Vec<&str> = state
            .entries
            .iter()
            .filter(|live| live.entry.list == list)
            .map(|live| live.entry.id.as_str())
            .collect();
        if !live_ids.contains(&id) {
            const SHOWN: usize = 20;
            let shown = if live_ids.is_empty() {
                "none".to_owned()
            } else if live_ids.len() > SHOWN {
                format!(
                    "{} ... and {} more (`hotlist show --list {list}`)",
                    live_ids[..SHOWN].join(", "),
                    live_ids.len() - SHOWN
                )
            } else {
                live_ids.join(", ")
            };
            bail!(
                "no live entry {id} in list {list} on {topic}; live ids: {shown}. Nothing was \
                 sent. An entry of a hotlist file is deleted by removing its row from the file \
                 (the engines reload it); --force sends the delete anyway, and it stops the \
                 file's entry matching until the file is reloaded"
            );
        }
    }
    publish_one(&delete.target, &message, "deleted").await
}

/// `--list` trimmed, refused when the updates topic's key (`<list>/<id>`) could not carry it: a
/// `/` in it would put the entry on the list before the `/`.
fn checked_list_name(list: &str) -> Result<&str> {
    check_list_name(list).map_err(|reason| anyhow::anyhow!("--list: {reason}"))
}

/// Sends one checked message where `target` says and prints where it landed.
async fn publish_one(target: &TopicArgs, message: &UpdateMessage, what: &str) -> Result<()> {
    let (settings, topic) = target.resolve().await?;
    let delivered = publish(&settings, &topic, std::slice::from_ref(message), false)
        .await?
        .pop()
        .context("the cluster acknowledged nothing")?;
    println!(
        "{what} {} on {topic} (partition {}, offset {}); engines following the topic apply it within seconds",
        message.key, delivered.partition, delivered.offset
    );
    Ok(())
}

/// The id a CSV row with these columns would get.
fn default_id(list: &str, value: &serde_json::Map<String, serde_json::Value>) -> Result<String> {
    let mut fields = EntryFields {
        list: Some(list.to_owned()),
        ..EntryFields::default()
    };
    for (name, text) in value {
        match text {
            serde_json::Value::String(text) => fields.set(name, text),
            other => fields.set(name, &other.to_string()),
        }
    }
    let entry = entry_from_fields(fields).map_err(|reason| anyhow::anyhow!("{reason}"))?;
    Ok(entry.id)
}

/// What the engines will make of `message`, or the reason they would refuse it.
fn check_message(message: &UpdateMessage) -> Result<Update> {
    message
        .check()
        .map(|checked| checked.update)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", message.key))
}

/// A BOLO that is only a description and cannot reach its threshold even with every named
/// attribute read with certainty: the best score it can earn and the threshold. A plate pattern
/// or a picture can carry a hit past the threshold, so those are never said to.
fn never_pages(entry: &HotlistEntry) -> Option<(f32, f32)> {
    let description = entry.vehicle.as_deref()?;
    let threshold = description
        .min_score
        .unwrap_or(platestream_engine::alert_policy::DEFAULT_MIN_ATTRIBUTE_SCORE);
    let best = description.best_attribute_score();
    (!entry.partial && description.reference_vectors.is_empty() && best < threshold)
        .then_some((best, threshold))
}

/// What of a BOLO decides its matches, as `describe_entry` parts: the vehicle as matched (in the
/// reads' vocabulary), its place, time and pictures, and whether a description alone can page.
fn describe_bolo(
    entry: &HotlistEntry,
    description: &platestream_engine::description::VehicleDescription,
) -> Vec<String> {
    let mut parts = Vec::new();
    let named: Vec<String> = [
        ("make", &description.make),
        ("model", &description.model),
        ("color", &description.color),
        ("body_type", &description.body_type),
    ]
    .iter()
    .filter_map(|(name, value)| value.as_ref().map(|value| format!("{name} {value}")))
    .collect();
    if !named.is_empty() {
        parts.push(format!("matches {}", named.join(", ")));
    }
    if let Some(area) = description.area {
        parts.push(format!(
            "within {} m of {},{}",
            area.radius_m, area.lat, area.lon
        ));
    }
    if let Some(from) = description.active_from {
        parts.push(format!("from {from}"));
    }
    if let Some(to) = description.active_to {
        parts.push(format!("until {to}"));
    }
    if let Some(first) = description.reference_vectors.first() {
        parts.push(format!(
            "{} reference vector(s) of {} numbers",
            description.reference_vectors.len(),
            first.len()
        ));
    }
    if let Some((best, threshold)) = never_pages(entry) {
        parts.push(format!(
            "NEVER PAGES: a read can score at most {best:.2} against this description, under the \
             threshold {threshold}{}; name more of make, model, color and body type, or set \
             min_score",
            if description.min_score.is_some() {
                ""
            } else {
                " (the default; a list's min_attribute_score may lower it)"
            }
        ));
    }
    parts
}

/// One line an officer's supervisor can check the entry by.
fn describe_entry(entry: &HotlistEntry) -> String {
    let mut parts = Vec::new();
    if entry.partial {
        parts.push(format!("partial plate {}", entry.plate_norm));
    } else if entry.plate_norm.is_empty() {
        parts.push("no plate (vehicle description)".to_owned());
    } else {
        parts.push(format!("plate {}", entry.plate_norm));
    }
    parts.push(match &entry.jurisdiction {
        Some(jurisdiction) => format!("[{jurisdiction}]"),
        None => "[any jurisdiction]".to_owned(),
    });
    parts.push(if entry.priority_unset {
        format!(
            "no priority given (the list's default_priority, else {})",
            entry.priority
        )
    } else {
        format!("priority {}", entry.priority)
    });
    if entry.misreads == Some(false) {
        parts.push("exact matches only".to_owned());
    }
    if let Some(description) = entry.vehicle.as_deref() {
        parts.extend(describe_bolo(entry, description));
    }
    match entry.expires_at {
        Some(at) if at.millis() <= Timestamp::now().millis() => {
            parts.push(format!("ALREADY EXPIRED at {at}: it will not match"))
        }
        Some(at) => parts.push(format!("expires {at}")),
        None => parts.push("no expiry".to_owned()),
    }
    if !entry.attributes.is_empty() {
        let attributes: Vec<String> = entry
            .attributes
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        parts.push(attributes.join(" "));
    }
    parts.join(", ")
}

async fn publish(
    settings: &KafkaSettings,
    topic: &str,
    messages: &[UpdateMessage],
    show_progress: bool,
) -> Result<Vec<Delivered>> {
    let bar = steps_bar(!show_progress, "updates");
    bar.set_length(messages.len() as u64);
    let outcome = publish_updates(settings, topic, messages, |done| {
        bar.set_position(done as u64)
    })
    .await;
    bar.finish_and_clear();
    outcome.map_err(|error| match error {
        PublishError::MissingTopic(_) => anyhow::anyhow!(
            "{error}: `platestream run --create-topics` creates it compacted, or add --create-topic"
        ),
        other => anyhow::Error::new(other).context(format!(
            "publishing to {topic} on {}",
            settings.bootstrap_servers
        )),
    })
}

/// One line of an updates file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateLine {
    key: String,
    value: Option<serde_json::Value>,
}

async fn run_publish(args: PublishArgs) -> Result<()> {
    let reader: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let name = args.file.display().to_string();
    let mut messages = Vec::new();
    let mut refused = Vec::new();
    let (mut upserts, mut deletes) = (0usize, 0usize);
    let mut expired: Vec<String> = Vec::new();
    for (number, line) in reader.lines().enumerate() {
        let number = number + 1;
        let line = line.with_context(|| format!("reading {name} line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: UpdateLine = match serde_json::from_str(&line) {
            Ok(parsed) => parsed,
            Err(error) => {
                refused.push(format!(
                    "line {number}: not {{\"key\": \"<list>/<id>\", \"value\": {{...}} or null}}: {error}"
                ));
                continue;
            }
        };
        if let Some(serde_json::Value::Object(fields)) = &parsed.value {
            let misspelt: Vec<String> = fields
                .keys()
                .filter_map(|name| {
                    misspelt_field(name).map(|known| format!("{name} (did you mean {known}?)"))
                })
                .collect();
            if !misspelt.is_empty() {
                refused.push(format!(
                    "line {number} ({}): fields that are not entry fields and would be kept as \
                     attributes: {}",
                    parsed.key,
                    misspelt.join(", ")
                ));
                continue;
            }
        }
        let message = UpdateMessage {
            key: parsed.key,
            value: parsed
                .value
                .filter(|value| !value.is_null())
                .map(|value| match value {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                }),
        };
        match message.check() {
            Ok(checked) => {
                match checked.update {
                    Update::Upsert(entry) => {
                        upserts += 1;
                        if entry.is_expired_at(Timestamp::now()) {
                            expired.push(message.key.clone());
                        }
                    }
                    Update::Delete(_) => deletes += 1,
                }
                messages.push(message);
            }
            Err(reason) => refused.push(format!("line {number} ({}): {reason}", message.key)),
        }
    }
    if !refused.is_empty() {
        let shown: Vec<&str> = refused.iter().take(20).map(String::as_str).collect();
        let more = refused.len().saturating_sub(shown.len());
        bail!(
            "{name}: {} of {} lines would be refused by the engines; nothing was sent\n  {}{}",
            refused.len(),
            refused.len() + messages.len(),
            shown.join("\n  "),
            if more > 0 {
                format!("\n  ... and {more} more")
            } else {
                String::new()
            }
        );
    }
    if messages.is_empty() {
        bail!("{name} holds no updates");
    }
    let (settings, topic) = args.target.resolve().await?;
    let delivered = publish(&settings, &topic, &messages, !args.quiet).await?;
    println!(
        "published {} updates ({upserts} upserts, {deletes} deletes) from {name} to {topic}; engines following the topic apply them within seconds",
        delivered.len()
    );
    if !expired.is_empty() {
        let shown: Vec<&str> = expired.iter().take(10).map(String::as_str).collect();
        println!(
            "notice: {} of the upserts had already expired and will not match: {}{}",
            expired.len(),
            shown.join(", "),
            if expired.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    Ok(())
}

async fn run_show(args: ShowArgs) -> Result<()> {
    let (settings, topic) = args.target.resolve().await?;
    let state = tokio::task::block_in_place(|| {
        read_updates_topic(&settings, &topic, Duration::from_secs(120))
    })
    .map_err(|error| match error {
        PublishError::MissingTopic(_) => anyhow::anyhow!(
            "{error}: nothing has been entered by hand yet (`platestream hotlist put --create-topic` creates it)"
        ),
        other => anyhow::Error::new(other).context(format!("reading {topic}")),
    })?;
    for (partition, offset, reason) in &state.refused {
        eprintln!("partition {partition} offset {offset}: refused by the engines: {reason}");
    }
    let now = Timestamp::now();
    let entries: Vec<_> = state
        .entries
        .iter()
        .filter(|live| {
            args.list
                .as_deref()
                .is_none_or(|list| live.entry.list == list)
        })
        .collect();
    if args.json {
        for live in &entries {
            println!(
                "{}",
                serde_json::json!({
                    "list": live.entry.list,
                    "id": live.entry.id,
                    "entry": live.entry,
                    "expired": live.entry.is_expired_at(now),
                    "partition": live.partition,
                    "offset": live.offset,
                    "published_at": live.published_at_ms.map(|ms| Timestamp::from_millis(ms).to_string()),
                })
            );
        }
        return Ok(());
    }
    let header = [
        "list",
        "id",
        "plate",
        "jurisdiction",
        "priority",
        "expires",
        "entered_by",
        "reason",
    ];
    let rows: Vec<[String; 8]> = entries
        .iter()
        .map(|live| {
            let entry = &live.entry;
            [
                entry.list.clone(),
                entry.id.clone(),
                if entry.plate_norm.is_empty() {
                    // What the BOLO matches, so two of them can be told apart.
                    entry.vehicle.as_deref().map_or_else(
                        || "(description)".to_owned(),
                        |description| {
                            let named: Vec<&str> = [
                                &description.color,
                                &description.make,
                                &description.model,
                                &description.body_type,
                            ]
                            .into_iter()
                            .filter_map(Option::as_deref)
                            .collect();
                            if named.is_empty() {
                                "(picture)".to_owned()
                            } else {
                                format!("({})", named.join(" "))
                            }
                        },
                    )
                } else {
                    entry.plate_norm.clone()
                },
                entry
                    .jurisdiction
                    .clone()
                    .unwrap_or_else(|| "any".to_owned()),
                entry.priority.to_string(),
                match entry.expires_at {
                    Some(at) if at <= now => format!("EXPIRED {at}"),
                    Some(at) => at.to_string(),
                    None => "-".to_owned(),
                },
                entry.entered_by.clone().unwrap_or_else(|| "-".to_owned()),
                entry.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let expired = entries
        .iter()
        .filter(|live| live.entry.is_expired_at(now))
        .count();
    println!(
        "\n{} live entries on {topic}{} ({} messages read{})",
        rows.len() - expired,
        if expired > 0 {
            format!(", and {expired} expired that no longer match")
        } else {
            String::new()
        },
        state.messages,
        if state.refused.is_empty() {
            String::new()
        } else {
            format!(", {} refused by the engines", state.refused.len())
        }
    );
    Ok(())
}

/// What `check` found in one file.
struct CheckedFile {
    name: String,
    loaded: LoadedHotlist,
}

fn run_check(args: &CheckArgs) -> Result<()> {
    let mut csv_files = args.files.clone();
    let mut ncic_files = args.ncic.clone();
    let mut policies = Vec::new();
    if let Some(path) = &args.config {
        let config = Config::load(path)?;
        csv_files.extend(config.hotlists.files);
        ncic_files.extend(config.hotlists.ncic_files);
        policies = config.hotlists.lists;
    }
    if csv_files.is_empty() && ncic_files.is_empty() {
        bail!("name hotlist CSV files, --ncic extracts, or --config FILE");
    }
    // A file named on the command line and in the config is one file, checked once.
    for files in [&mut csv_files, &mut ncic_files] {
        let mut seen = std::collections::HashSet::new();
        files.retain(|path| {
            seen.insert(std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
        });
    }
    let mut checked = Vec::new();
    let mut unreadable = Vec::new();
    let files = csv_files
        .iter()
        .map(|path| (path, false))
        .chain(ncic_files.iter().map(|path| (path, true)));
    for (path, ncic) in files {
        let name = path.display().to_string();
        let loaded = std::fs::File::open(path)
            .with_context(|| format!("opening {name}"))
            .and_then(|file| {
                let reader = std::io::BufReader::new(file);
                if ncic {
                    load_ncic_extract(&name, reader, None).map_err(anyhow::Error::new)
                } else {
                    load_hotlist_csv(&name, reader).map_err(anyhow::Error::new)
                }
            });
        match loaded {
            Ok(loaded) if loaded.entries.is_empty() && loaded.rejected.is_empty() => {
                // What the engine makes of it too: a reload keeps the lists' entries.
                let reason = why_no_entries(&loaded).unwrap_or_default();
                println!("{name}: CANNOT BE LOADED: {reason}");
                unreadable.push(name);
            }
            Ok(loaded) => checked.push(CheckedFile { name, loaded }),
            Err(error) => {
                println!("{name}: CANNOT BE LOADED: {error:#}");
                unreadable.push(name);
            }
        }
    }
    let now = Timestamp::now();
    let mut lists: BTreeMap<String, ListCounts> = BTreeMap::new();
    let mut refused = 0usize;
    for file in &checked {
        println!(
            "{}: {} entries, {} rows refused",
            file.name,
            file.loaded.entries.len(),
            file.loaded.rejected.len()
        );
        if let Some(notice) = unrecognized_columns_notice(&file.loaded.unknown_columns) {
            println!("  {notice}");
        }
        let silent: Vec<String> = file
            .loaded
            .entries
            .iter()
            .filter(|entry| never_pages(entry).is_some())
            .map(|entry| format!("{}/{}", entry.list, entry.id))
            .collect();
        if !silent.is_empty() {
            println!(
                "  notice: {} BOLO(s) describe too little to ever reach their threshold without a \
                 list policy lowering it: {}",
                silent.len(),
                silent.join(", ")
            );
        }
        for row in file.loaded.rejected.iter().take(args.show_refused) {
            println!("  line {}: {}", row.line, row.reason);
        }
        if file.loaded.rejected.len() > args.show_refused {
            println!(
                "  ... and {} more (--show-refused N)",
                file.loaded.rejected.len() - args.show_refused
            );
        }
        if !file.loaded.repeated.is_empty() {
            println!(
                "  {} rows repeat the id of a later row in their list; the engine keeps the later row:",
                file.loaded.repeated.len()
            );
            for row in file.loaded.repeated.iter().take(args.show_refused) {
                println!(
                    "  line {}: id {:?} of list {} again on line {}, which is kept",
                    row.line, row.id, row.list, row.kept_line
                );
            }
            if file.loaded.repeated.len() > args.show_refused {
                println!(
                    "  ... and {} more (--show-refused N)",
                    file.loaded.repeated.len() - args.show_refused
                );
            }
        }
        refused += file.loaded.rejected.len();
        for entry in &file.loaded.entries {
            lists
                .entry(entry.list.clone())
                .or_default()
                .count(entry, now);
        }
    }
    if !lists.is_empty() {
        println!();
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>6} {:>13} {:>8} {:>14}",
            "list", "entries", "plates", "partial", "BOLOs", "any state", "expired", "exact only"
        );
        for (list, counts) in &lists {
            // A list whose policy turns misreads off matches every entry of it exactly.
            let policy_exact = policies
                .iter()
                .any(|policy| policy.name == *list && !policy.misreads);
            let exact_only = if policy_exact {
                format!("{} (policy)", counts.plates)
            } else {
                counts.exact_only.to_string()
            };
            println!(
                "{:<24} {:>9} {:>9} {:>9} {:>6} {:>13} {:>8} {:>14}",
                list,
                counts.entries,
                counts.plates,
                counts.partial,
                counts.bolos,
                counts.any_jurisdiction,
                counts.expired,
                exact_only
            );
        }
        // Each file keeps the last row of an id; what is left repeats an id across files.
        let duplicated: usize = lists.values().map(|counts| counts.repeated_ids).sum();
        if duplicated > 0 {
            println!(
                "\n{duplicated} entries repeat an id another file holds in the same list: the engine keeps the entry of the file named later"
            );
        }
    }
    let loaded_lists: Vec<String> = lists.keys().cloned().collect();
    let mut unmatched = policies_of_no_list(&policies, &loaded_lists);
    unmatched.extend(crate::hotlists::lists_almost_named_as_a_policy(
        &policies,
        &loaded_lists,
    ));
    if !unmatched.is_empty() {
        println!();
        for warning in &unmatched {
            println!("{warning}");
        }
    }
    match (unreadable.len(), refused) {
        (0, 0) => {}
        (0, refused) => {
            bail!("{refused} row(s) refused (the engine skips refused rows and loads the rest)")
        }
        (files, 0) => {
            bail!("{files} file(s) cannot be loaded")
        }
        (files, refused) => bail!(
            "{files} file(s) cannot be loaded, \
             {refused} row(s) refused (the engine skips refused rows and loads the rest)"
        ),
    }
    Ok(())
}

/// Attribute columns officers use to confirm a hit: expected, so not worth a notice.
const VEHICLE_ATTRIBUTE_COLUMNS: &[&str] = &["make", "model", "color", "body_type"];

/// A notice naming the header columns that are not entry fields (kept as attributes, as
/// documented), each with the entry field it most likely misspells: a `jurisdicton` column
/// otherwise leaves every entry matching plates of any state without a word.
fn unrecognized_columns_notice(unknown_columns: &[String]) -> Option<String> {
    let named: Vec<String> = unknown_columns
        .iter()
        .filter(|column| !VEHICLE_ATTRIBUTE_COLUMNS.contains(&column.as_str()))
        .map(|column| match closest_known_column(column) {
            Some(known) => format!("{column} (did you mean {known}?)"),
            None => column.clone(),
        })
        .collect();
    (!named.is_empty()).then(|| {
        format!(
            "notice: columns that are not entry fields, kept as attributes: {}",
            named.join(", ")
        )
    })
}

/// The entry field a hand-typed field name most likely misspells, when it is not itself a field
/// or vehicle attribute: such a name would be kept as an attribute, and a `jurisdicton` leaves the
/// entry matching plates of every state.
pub(crate) fn misspelt_field(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.as_str();
    // `op` is no column but an update's own field (`{"op": "delete"}`).
    let known =
        KNOWN_COLUMNS.contains(&name) || VEHICLE_ATTRIBUTE_COLUMNS.contains(&name) || name == "op";
    if known {
        None
    } else {
        closest_known_column(name)
    }
}

/// The known column (entry field or vehicle attribute) `column` is a near miss of: one it begins
/// (`expires` for `expires_at`), or within two edits of it.
fn closest_known_column(column: &str) -> Option<&'static str> {
    KNOWN_COLUMNS
        .iter()
        .chain(VEHICLE_ATTRIBUTE_COLUMNS)
        .map(|known| {
            let distance = if column.len() >= 4 && known.starts_with(column) {
                1
            } else {
                edit_distance(column, known)
            };
            (distance, *known)
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[derive(Default)]
struct ListCounts {
    entries: usize,
    plates: usize,
    partial: usize,
    bolos: usize,
    any_jurisdiction: usize,
    expired: usize,
    exact_only: usize,
    ids: std::collections::HashSet<String>,
    repeated_ids: usize,
}

impl ListCounts {
    fn count(&mut self, entry: &HotlistEntry, now: Timestamp) {
        self.entries += 1;
        if entry.is_bolo() {
            self.bolos += 1;
        } else if entry.partial {
            self.partial += 1;
        } else {
            self.plates += 1;
        }
        if entry.jurisdiction.is_none() {
            self.any_jurisdiction += 1;
        }
        if entry.is_expired_at(now) {
            self.expired += 1;
        }
        if entry.misreads == Some(false) {
            self.exact_only += 1;
        }
        if !self.ids.insert(entry.id.clone()) {
            self.repeated_ids += 1;
        }
    }
}
