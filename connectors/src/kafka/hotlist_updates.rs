//! Live hotlist changes from a compacted Kafka topic (`hotlists.updates_topic`): dispatchers add
//! an AMBER or Silver alert by hand and it must match within seconds, without waiting for the
//! next state file. The message format is in `schemas/hotlist.md` ("Live updates topic").
//!
//! The topic is the durable record of these changes: the thread assigns every partition from
//! the beginning (no consumer-group commits), so each start rebuilds the live state from what
//! compaction kept, then tails. Each poll's messages are applied per list in one
//! [`HotlistStore::apply`], visible to every read matched after it returns.
//!
//! Updates are also remembered in [`LiveUpdates`], so that a file reload replacing a list lays
//! the topic's upserts over the file's entries again instead of silently undoing them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use platestream_engine::hotlist::{entry_from_fields, EntryFields, HotlistEntry, InvalidFields};
use platestream_engine::store::{HotlistStore, ReplaceReport, StoreError, Update};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaError, KafkaSettings};

/// Messages applied together at most: one poll's worth, bounded so a rebuild of a large topic
/// publishes progress instead of holding everything until the end.
const MAX_BATCH: usize = 5_000;

/// Why a message of the updates topic was not applied. Each is logged and counted; none stops
/// the thread.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidUpdate {
    #[error("the message has no key; the key must be `<list>/<entry id>`")]
    MissingKey,
    #[error("the key {0:?} is not `<list>/<entry id>` (UTF-8, both parts non-empty)")]
    BadKey(String),
    #[error("the key {key:?} names no usable list: {reason}")]
    BadList { key: String, reason: String },
    #[error("the value is not a JSON object: {0}")]
    NotJson(String),
    #[error("field `{0}` must be a string, number or boolean")]
    FieldType(String),
    #[error("`op` must be \"upsert\" or \"delete\", not {0:?}")]
    UnknownOp(String),
    #[error("`{field}` is {value:?} but the key says {key:?}")]
    KeyMismatch {
        field: &'static str,
        value: String,
        key: String,
    },
    #[error(transparent)]
    Fields(#[from] InvalidFields),
}

impl InvalidUpdate {
    /// A short, fixed label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingKey | Self::BadKey(_) | Self::BadList { .. } => "key",
            Self::NotJson(_) | Self::FieldType(_) => "json",
            Self::UnknownOp(_) => "op",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::Fields(_) => "fields",
        }
    }
}

/// One decoded message: the list it changes and the change.
#[derive(Debug, Clone)]
pub struct ListUpdate {
    pub list: String,
    pub update: Update,
}

/// Decodes one message of the updates topic. `payload` `None` or empty is a tombstone (delete).
pub fn decode_update(
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
) -> Result<ListUpdate, InvalidUpdate> {
    let key = key.ok_or(InvalidUpdate::MissingKey)?;
    let key = std::str::from_utf8(key)
        .map_err(|_| InvalidUpdate::BadKey(String::from_utf8_lossy(key).into_owned()))?;
    // Entry ids may contain `/` (`ABC1234/US-VA`); list names do not.
    let (list, id) = key
        .split_once('/')
        .filter(|(list, id)| !list.trim().is_empty() && !id.trim().is_empty())
        .ok_or_else(|| InvalidUpdate::BadKey(key.to_owned()))?;
    let (list, id) = (list.trim(), id.trim());
    // A key written as a JSON string (`"covert_watch/CV-9"`) names the list `"covert_watch`, which
    // no policy names: its hits would page field officers.
    platestream_engine::hotlist::check_list_name(list).map_err(|error| InvalidUpdate::BadList {
        key: key.to_owned(),
        reason: error.to_string(),
    })?;
    let delete = || ListUpdate {
        list: list.to_owned(),
        update: Update::Delete(id.to_owned()),
    };
    let payload = match payload {
        None => return Ok(delete()),
        Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => return Ok(delete()),
        Some(bytes) => bytes,
    };
    let text = std::str::from_utf8(payload)
        .map_err(|error| InvalidUpdate::NotJson(format!("not UTF-8: {error}")))?;
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|error| InvalidUpdate::NotJson(error.to_string()))?;
    let mut fields = EntryFields::default();
    let mut op = None;
    for (name, value) in &object {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => text.clone(),
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            // Reference vectors are the one column whose value is a JSON array (as in the CSV).
            serde_json::Value::Array(_) if name.eq_ignore_ascii_case("reference_vectors") => {
                value.to_string()
            }
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(InvalidUpdate::FieldType(name.clone()))
            }
        };
        if name.eq_ignore_ascii_case("op") {
            op = Some(text.trim().to_ascii_lowercase());
        } else {
            fields.set(name, &text);
        }
    }
    match op.as_deref() {
        None | Some("upsert") => {}
        Some("delete") => return Ok(delete()),
        Some(other) => return Err(InvalidUpdate::UnknownOp(other.to_owned())),
    }
    // The key decides: compaction and tombstones work by key, so an entry must be named by it.
    for (field, value) in [("list", &mut fields.list), ("id", &mut fields.id)] {
        let from_key = if field == "list" { list } else { id };
        match value {
            Some(given) if given != from_key => {
                return Err(InvalidUpdate::KeyMismatch {
                    field,
                    value: given.clone(),
                    key: key.to_owned(),
                })
            }
            Some(_) => {}
            None => *value = Some(from_key.to_owned()),
        }
    }
    let entry = entry_from_fields(fields)?;
    Ok(ListUpdate {
        list: list.to_owned(),
        update: Update::Upsert(Arc::new(entry)),
    })
}

/// The entries the updates topic has upserted and not deleted, by list and id. File reloads lay
/// them over a list's new entries (see [`LiveUpdates::replace_list`]).
#[derive(Debug, Default)]
pub struct LiveUpdates {
    upserted: Mutex<HashMap<String, HashMap<String, Arc<HotlistEntry>>>>,
}

impl LiveUpdates {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Arc<HotlistEntry>>>> {
        // A poisoned lock only means another thread panicked while updating a plain map.
        self.upserted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one list's updates to the store and remembers them. Returns how many changed
    /// something.
    pub fn apply(&self, store: &HotlistStore, list: &str, updates: Vec<Update>) -> usize {
        // Held across the store call: a file reload of this list in between must not lay
        // down a state older than what the store is about to show.
        let mut upserted = self.lock();
        let remembered = upserted.entry(list.to_owned()).or_default();
        for update in &updates {
            match update {
                Update::Upsert(entry) => {
                    remembered.insert(entry.id.clone(), Arc::clone(entry));
                }
                Update::Delete(id) => {
                    remembered.remove(id);
                }
            }
        }
        store.apply(list, updates)
    }

    /// Replaces a list with `entries` (a file's), then lays the topic's upserts for that list
    /// over them in the same critical section: a live update wins over the file for its id.
    pub fn replace_list(
        &self,
        store: &HotlistStore,
        list: &str,
        entries: Vec<Arc<HotlistEntry>>,
    ) -> Result<ReplaceReport, StoreError> {
        let upserted = self.lock();
        let report = store.replace_list(list, entries)?;
        if let Some(live) = upserted.get(list).filter(|live| !live.is_empty()) {
            store.apply(list, live.values().cloned().map(Update::Upsert).collect());
        }
        Ok(report)
    }

    /// How many live upserts are remembered for `list`.
    pub fn upserted_len(&self, list: &str) -> usize {
        self.lock().get(list).map_or(0, HashMap::len)
    }
}

/// Counters of the updates thread, readable while it runs.
#[derive(Debug, Default)]
pub struct UpdatesStatus {
    pub applied: AtomicU64,
    pub rejected: AtomicU64,
    /// Set once the thread has read up to where the topic ended when it started.
    pub caught_up: AtomicBool,
}

/// The running updates thread.
pub struct HotlistUpdatesThread {
    pub status: Arc<UpdatesStatus>,
    handle: JoinHandle<Result<(), KafkaError>>,
}

impl HotlistUpdatesThread {
    /// Waits for the thread to end (after the stop flag is set).
    pub fn join(self) -> Result<(), KafkaError> {
        self.handle
            .join()
            .map_err(|_| KafkaError::Internal("the hotlist updates thread panicked".to_owned()))?
    }
}

/// Starts consuming `topic` into `store` (through `live`) until `stop` is set.
pub fn spawn_hotlist_updates(
    settings: &KafkaSettings,
    topic: &str,
    store: Arc<HotlistStore>,
    live: Arc<LiveUpdates>,
    stop: Arc<AtomicBool>,
) -> Result<HotlistUpdatesThread, KafkaError> {
    let mut config = settings.consumer_config();
    // Never used to commit (the topic is re-read from the start on every run); librdkafka
    // wants a group id all the same.
    config
        .set("group.id", format!("{}-hotlist-updates", settings.group_id))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config
        .create()
        .map_err(KafkaError::client("hotlist updates consumer"))?;
    let status = Arc::new(UpdatesStatus::default());
    let updates = UpdatesConsumer {
        consumer,
        topic: topic.to_owned(),
        store,
        live,
        stop,
        status: Arc::clone(&status),
    };
    let handle = std::thread::Builder::new()
        .name("hotlist-updates".to_owned())
        .spawn(move || updates.run())
        .map_err(|error| KafkaError::Internal(format!("spawning hotlist updates: {error}")))?;
    Ok(HotlistUpdatesThread { status, handle })
}

struct UpdatesConsumer {
    consumer: BaseConsumer,
    topic: String,
    store: Arc<HotlistStore>,
    live: Arc<LiveUpdates>,
    stop: Arc<AtomicBool>,
    status: Arc<UpdatesStatus>,
}

impl UpdatesConsumer {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn run(self) -> Result<(), KafkaError> {
        let Some(end_offsets) = self.assign_from_beginning()? else {
            return Ok(());
        };
        tracing::info!(topic = %self.topic, partitions = end_offsets.len(), "hotlist updates: rebuilding from the beginning of the topic");
        let started = Instant::now();
        let mut remaining_to_catch_up = end_offsets;
        remaining_to_catch_up.retain(|_, end| *end > 0);
        let mut batch: BTreeMap<String, Vec<Update>> = BTreeMap::new();
        while !self.stopped() {
            self.check_caught_up(&remaining_to_catch_up, started);
            let Some(first) = self.consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(polled) = next.take() {
                taken += 1;
                match polled {
                    Ok(message) => {
                        if let Some(end) = remaining_to_catch_up.get(&message.partition()) {
                            if message.offset() + 1 >= *end {
                                remaining_to_catch_up.remove(&message.partition());
                            }
                        }
                        match decode_update(message.key(), message.payload()) {
                            Ok(ListUpdate { list, update }) => {
                                batch.entry(list).or_default().push(update)
                            }
                            Err(error) => {
                                self.reject(&error, message.partition(), message.offset())
                            }
                        }
                    }
                    Err(error) => {
                        counter!("platestream_hotlist_update_consumer_errors_total").increment(1);
                        tracing::warn!(topic = %self.topic, %error, "hotlist updates: consumer error");
                    }
                }
                if taken < MAX_BATCH {
                    next = self.consumer.poll(Duration::ZERO);
                }
            }
            self.apply(&mut batch);
        }
        Ok(())
    }

    /// Assigns every partition at its beginning; returns where each partition ended at that
    /// moment (the rebuild is complete once those are read), or `None` when stopped before the
    /// topic existed.
    fn assign_from_beginning(&self) -> Result<Option<HashMap<i32, i64>>, KafkaError> {
        let timeout = Duration::from_secs(5);
        let mut warned = false;
        let partitions = loop {
            if self.stopped() {
                return Ok(None);
            }
            let found = self
                .consumer
                .fetch_metadata(Some(&self.topic), timeout)
                .ok()
                .and_then(|metadata| {
                    metadata
                        .topics()
                        .iter()
                        .find(|topic| topic.name() == self.topic && topic.error().is_none())
                        .map(|topic| {
                            topic
                                .partitions()
                                .iter()
                                .map(|p| p.id())
                                .collect::<Vec<_>>()
                        })
                })
                .filter(|partitions| !partitions.is_empty());
            if let Some(partitions) = found {
                break partitions;
            }
            if !warned {
                tracing::warn!(topic = %self.topic, "hotlist updates topic not found yet; waiting for it");
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let mut assignment = TopicPartitionList::new();
        let mut end_offsets = HashMap::new();
        for partition in partitions {
            assignment
                .add_partition_offset(&self.topic, partition, Offset::Beginning)
                .map_err(KafkaError::client("hotlist updates assignment"))?;
            let (_, high) = self
                .consumer
                .fetch_watermarks(&self.topic, partition, timeout)
                .map_err(KafkaError::client("hotlist updates watermarks"))?;
            end_offsets.insert(partition, high);
        }
        self.consumer
            .assign(&assignment)
            .map_err(KafkaError::client("hotlist updates assignment"))?;
        Ok(Some(end_offsets))
    }

    fn check_caught_up(&self, remaining: &HashMap<i32, i64>, started: Instant) {
        if remaining.is_empty() && !self.status.caught_up.swap(true, Ordering::Relaxed) {
            tracing::info!(
                topic = %self.topic,
                applied = self.status.applied.load(Ordering::Relaxed),
                rejected = self.status.rejected.load(Ordering::Relaxed),
                seconds = started.elapsed().as_secs_f64(),
                "hotlist updates: live state rebuilt; tailing"
            );
        }
    }

    fn apply(&self, batch: &mut BTreeMap<String, Vec<Update>>) {
        for (list, updates) in std::mem::take(batch) {
            let (upserts, deletes) =
                updates
                    .iter()
                    .fold((0u64, 0u64), |(u, d), update| match update {
                        Update::Upsert(_) => (u + 1, d),
                        Update::Delete(_) => (u, d + 1),
                    });
            self.live.apply(&self.store, &list, updates);
            // Lists the topic alone feeds have no file reload to report their size.
            gauge!("platestream_hotlist_entries", "list" => list.clone())
                .set(self.store.list_len(&list) as f64);
            counter!("platestream_hotlist_updates_total", "op" => "upsert").increment(upserts);
            counter!("platestream_hotlist_updates_total", "op" => "delete").increment(deletes);
            self.status
                .applied
                .fetch_add(upserts + deletes, Ordering::Relaxed);
            tracing::debug!(list, upserts, deletes, "hotlist updates applied");
        }
    }

    fn reject(&self, error: &InvalidUpdate, partition: i32, offset: i64) {
        counter!("platestream_hotlist_updates_rejected_total", "reason" => error.code())
            .increment(1);
        self.status.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(topic = %self.topic, partition, offset, reason = %error, "hotlist update refused");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platestream_engine::matcher::Matcher;
    use platestream_engine::store::MatchModes;

    fn upsert(update: &ListUpdate) -> &HotlistEntry {
        match &update.update {
            Update::Upsert(entry) => entry,
            Update::Delete(id) => panic!("expected an upsert, got a delete of {id}"),
        }
    }

    #[test]
    fn an_upsert_takes_list_and_id_from_the_key_and_columns_from_the_value() {
        let update = decode_update(
            Some(b"amber_alert/VA-2026-0007"),
            Some(br#"{"plate":"7XK 229","jurisdiction":"VA","priority":1,"misreads":false,"make":"Honda","reason":null}"#),
        )
        .unwrap();
        assert_eq!(update.list, "amber_alert");
        let entry = upsert(&update);
        assert_eq!(entry.id, "VA-2026-0007");
        assert_eq!(entry.list, "amber_alert");
        assert_eq!(entry.plate_norm, "7XK229");
        assert_eq!(entry.jurisdiction.as_deref(), Some("US-VA"));
        assert_eq!(entry.priority, 1);
        assert_eq!(entry.misreads, Some(false));
        assert_eq!(entry.attributes["make"], "Honda");
        assert_eq!(entry.reason, None);
    }

    #[test]
    fn tombstones_and_delete_ops_delete_by_key_and_ids_may_contain_slashes() {
        for payload in [None, Some(&b""[..]), Some(&br#"{"op":"delete"}"#[..])] {
            let update = decode_update(Some(b"local_bolo/ABC123/US-VA"), payload).unwrap();
            assert_eq!(update.list, "local_bolo");
            assert!(matches!(&update.update, Update::Delete(id) if id == "ABC123/US-VA"));
        }
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        // (key, value, expected reason code)
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a str);
        let cases: [Case; 9] = [
            (None, Some(b"{}"), "key"),
            (Some(b"no-slash"), Some(b"{}"), "key"),
            // A key written as a JSON string: a list `"covert_watch` would get the default policy.
            (
                Some(br#""covert_watch/CV-9""#),
                Some(br#"{"plate":"CVT999"}"#),
                "key",
            ),
            (Some(br#""covert_watch/CV-9""#), None, "key"),
            (Some(b"l/1"), Some(b"not json"), "json"),
            (Some(b"l/1"), Some(br#"{"plate":["A"]}"#), "json"),
            (Some(b"l/1"), Some(br#"{"op":"merge","plate":"A1"}"#), "op"),
            (
                Some(b"l/1"),
                Some(br#"{"list":"other","plate":"A1"}"#),
                "key_mismatch",
            ),
            (
                Some(b"l/1"),
                Some(br#"{"plate":"A1","priority":12}"#),
                "fields",
            ),
        ];
        for (key, payload, code) in cases {
            let error = decode_update(key, payload).unwrap_err();
            assert_eq!(error.code(), code, "{error}");
        }
        let error = decode_update(Some(b"l/1"), Some(br#"{"plate":""}"#)).unwrap_err();
        assert!(error.to_string().starts_with("`plate` is empty"), "{error}");
    }

    #[test]
    fn the_documented_example_messages_decode() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/examples/hotlist-updates.ndjson"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut kinds = Vec::new();
        for line in text.lines() {
            let message: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = message["key"].as_str().unwrap();
            let value = match &message["value"] {
                serde_json::Value::Null => None,
                value => Some(value.to_string()),
            };
            let update = decode_update(Some(key.as_bytes()), value.as_deref().map(str::as_bytes))
                .unwrap_or_else(|error| panic!("{line}: {error}"));
            kinds.push(match update.update {
                Update::Upsert(entry) => format!("upsert {}/{}", entry.list, entry.id),
                Update::Delete(id) => format!("delete {}/{id}", update.list),
            });
        }
        assert_eq!(
            kinds,
            [
                "upsert amber_alert/VA-2026-0042",
                "upsert silver_alert/MD-SA-311",
                "delete local_bolo/7XK229/*",
                "delete silver_alert/MD-SA-311"
            ]
        );
    }

    #[test]
    fn a_file_reload_keeps_live_upserts_laid_over_it_and_deletes_forget_them() {
        let store = HotlistStore::new(MatchModes::EXACT_ONLY);
        let live = LiveUpdates::default();
        let file_entry = |plate: &str| Arc::new(HotlistEntry::new("amber_alert", plate).unwrap());
        live.replace_list(&store, "amber_alert", vec![file_entry("AAA111")])
            .unwrap();
        let manual = decode_update(
            Some(b"amber_alert/manual-1"),
            Some(br#"{"plate":"BBB222"}"#),
        )
        .unwrap();
        live.apply(&store, "amber_alert", vec![manual.update]);
        assert_eq!(store.entry_count(), 2);
        live.replace_list(&store, "amber_alert", vec![file_entry("CCC333")])
            .unwrap();
        assert_eq!(
            store.list_len("amber_alert"),
            2,
            "the live upsert survives the reload"
        );
        live.apply(
            &store,
            "amber_alert",
            vec![Update::Delete("manual-1".to_owned())],
        );
        assert_eq!(live.upserted_len("amber_alert"), 0);
        live.replace_list(&store, "amber_alert", vec![file_entry("CCC333")])
            .unwrap();
        assert_eq!(store.list_len("amber_alert"), 1);
    }
}
