//! What happens to a hit after matching: which topic it goes to, whether officers are paged again
//! for a vehicle they were paged about minutes ago, and where a connector fans it out.
//!
//! Every hit becomes an alert and is archived; suppression only clears `paged`-worthiness
//! (`Alert::suppressed`), so the record of every sighting stays complete.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::alert::Alert;
use crate::matcher::{JurisdictionAgreement, MatchKind};
use crate::read::Timestamp;

/// Default suppression window: a stolen car parked in front of a camera would otherwise page
/// every few seconds.
pub const DEFAULT_SUPPRESSION_WINDOW_SECS: u64 = 600;

/// Where an alert goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRoute {
    /// The normal alerts topic, seen by field officers.
    #[default]
    Field,
    /// A restricted topic only: covert lists' hits must never reach field officers.
    Covert,
}

impl AlertRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Field => "field",
            Self::Covert => "covert",
        }
    }
}

/// How one hotlist is matched and how its hits are delivered.
/// Least BOLO score that raises an alert unless the list or the entry says otherwise: a full
/// description (make, model, color) read with ordinary confidence passes, a lone "silver sedan"
/// (at most 0.3) or "silver Honda" (at most 0.45) does not.
pub const DEFAULT_MIN_ATTRIBUTE_SCORE: f32 = 0.5;

/// Least cosine similarity between a read's appearance embedding and a BOLO's reference vector
/// that is a hit, unless the list says otherwise.
pub const DEFAULT_APPEARANCE_THRESHOLD: f32 = 0.85;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListPolicy {
    /// The list name entries carry in `list`.
    pub name: String,
    /// Where the list comes from (`ncic-state-extract`, `manual`, `local-bolo`...), for operators.
    pub source: String,
    /// Priority for entries of this list that name none (1 most urgent .. 9).
    pub default_priority: Option<u8>,
    /// Match reads one look-alike character or one dropped/added character away from an entry.
    pub misreads: bool,
    /// Match partial-plate entries (`7X?2*`).
    pub partials: bool,
    pub route: AlertRoute,
    /// URLs a connector posts this list's alerts to (platestream itself makes no HTTP calls).
    pub webhooks: Vec<String>,
    /// Seconds during which the same plate hitting the same entry is recorded but not paged
    /// again; `None` takes the default (600), 0 pages every hit.
    pub suppression_window_secs: Option<u64>,
    /// Least score (0..1) a BOLO hit needs to become an alert; `None` takes
    /// [`DEFAULT_MIN_ATTRIBUTE_SCORE`]. A BOLO row's `min_score` overrides it.
    pub min_attribute_score: Option<f32>,
    /// Least cosine similarity of appearance hits; `None` takes [`DEFAULT_APPEARANCE_THRESHOLD`].
    pub appearance_threshold: Option<f32>,
}

impl Default for ListPolicy {
    fn default() -> Self {
        Self {
            name: String::new(),
            source: String::new(),
            default_priority: None,
            misreads: true,
            partials: true,
            route: AlertRoute::Field,
            webhooks: Vec::new(),
            suppression_window_secs: None,
            min_attribute_score: None,
            appearance_threshold: None,
        }
    }
}

impl ListPolicy {
    /// The default policy for a list.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    pub fn min_attribute_score(&self) -> f32 {
        self.min_attribute_score
            .unwrap_or(DEFAULT_MIN_ATTRIBUTE_SCORE)
    }

    pub fn appearance_threshold(&self) -> f32 {
        self.appearance_threshold
            .unwrap_or(DEFAULT_APPEARANCE_THRESHOLD)
    }
}

#[derive(Debug, Clone, Copy)]
struct LastPaged {
    observed_at_ms: i64,
    /// The read that paged: a replay of that same read pages again (same `alert_id`, which
    /// consumers deduplicate) instead of being suppressed by itself.
    read_hash: u64,
}

impl LastPaged {
    fn new(observed_at: Timestamp, read_id: &str) -> Self {
        Self {
            observed_at_ms: observed_at.millis(),
            read_hash: xxh3_64(read_id.as_bytes()),
        }
    }
}

#[derive(Debug, Default)]
struct SuppressionState {
    last_paged: HashMap<u128, LastPaged>,
    newest_ms: i64,
    prune_at_len: usize,
}

/// Decides suppression across every pipeline of the engine (shared: the same vehicle's reads can
/// arrive on different partitions). Hits are a small share of reads, so one mutex is plenty.
#[derive(Debug)]
pub struct AlertPolicy {
    default_window_ms: i64,
    state: Mutex<SuppressionState>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_SUPPRESSION_WINDOW_SECS)
    }
}

const MIN_PRUNE_LEN: usize = 4096;

impl AlertPolicy {
    pub fn new(default_window_secs: u64) -> Self {
        Self {
            default_window_ms: window_ms(default_window_secs),
            state: Mutex::new(SuppressionState {
                prune_at_len: MIN_PRUNE_LEN,
                ..SuppressionState::default()
            }),
        }
    }

    /// Sets `alert.suppressed` when the same plate hit the same entry within the list's window
    /// (by observation time, so replays and backfills decide the same way as live traffic), and
    /// for an exact plate from another state: recorded for whoever reviews hits, never a page
    /// (nor does it hold back the page of a later hit from the entry's own state).
    pub fn apply(&self, window_secs: Option<u64>, alert: &mut Alert) {
        if alert.jurisdiction_agreement == JurisdictionAgreement::Differs {
            alert.suppressed = true;
            return;
        }
        let window = window_secs.map_or(self.default_window_ms, window_ms);
        if window == 0 {
            return;
        }
        let key = suppression_key(&SuppressionFields {
            list: &alert.list,
            entry_id: alert.entry_id.as_deref(),
            entry_plate: &alert.entry_plate,
            match_kind: Some(alert.match_kind),
            read_plate_norm: &alert.read_plate_norm,
            priority: alert.priority,
            reason: alert.reason.as_deref(),
        });
        let this = LastPaged::new(alert.observed_at, &alert.read_id);
        let mut state = self.state();
        state.newest_ms = state.newest_ms.max(this.observed_at_ms);
        let suppressed = match state.last_paged.get(&key) {
            Some(last) if last.read_hash == this.read_hash => false,
            Some(last) => (this.observed_at_ms - last.observed_at_ms).abs() < window,
            None => false,
        };
        alert.suppressed = suppressed;
        if !suppressed {
            state.last_paged.insert(key, this);
            if state.last_paged.len() >= state.prune_at_len {
                // Windows differ per list; keeping the longest of them is always safe.
                let horizon = state.newest_ms - window.max(self.default_window_ms);
                state
                    .last_paged
                    .retain(|_, last| last.observed_at_ms >= horizon);
                state.prune_at_len = (state.last_paged.len() * 2).max(MIN_PRUNE_LEN);
            }
        }
    }

    /// Records a page raised before this process started (read back from the archive), so a
    /// restart does not page officers again about a vehicle they were paged about minutes ago.
    /// Suppressed alerts and hits from another state paged nobody and are ignored.
    pub fn remember_paged(&self, page: &PageRecord) {
        if page.suppressed || page.jurisdiction_agreement == JurisdictionAgreement::Differs {
            return;
        }
        let key = suppression_key(&SuppressionFields {
            list: &page.list,
            entry_id: page.entry_id.as_deref(),
            entry_plate: &page.entry_plate,
            match_kind: page.match_kind,
            read_plate_norm: &page.read_plate_norm,
            priority: page.priority,
            reason: page.reason.as_deref(),
        });
        let this = LastPaged::new(page.observed_at, &page.read_id);
        let mut state = self.state();
        state.newest_ms = state.newest_ms.max(this.observed_at_ms);
        state
            .last_paged
            .entry(key)
            .and_modify(|last| {
                if this.observed_at_ms > last.observed_at_ms {
                    *last = this;
                }
            })
            .or_insert(this);
        state.prune_at_len = (state.last_paged.len() * 2).max(state.prune_at_len);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SuppressionState> {
        // A poisoned lock only means another pipeline panicked mid-update of a plain map.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What decides whether an earlier page suppresses a hit.
struct SuppressionFields<'a> {
    list: &'a str,
    entry_id: Option<&'a str>,
    entry_plate: &'a str,
    match_kind: Option<MatchKind>,
    read_plate_norm: &'a str,
    priority: u8,
    reason: Option<&'a str>,
}

/// Which earlier page can suppress a hit: one on the same entry, of the same vehicle, while the
/// entry still says the same.
/// - An entry of a whole plate names one vehicle: its exact and misread hits are one vehicle
///   whatever the OCR made of the plate this time (each new misread paged again before). A
///   partial plate or a vehicle description fits many vehicles: each plate read is its own.
/// - An entry raised in priority or given another reason (an upsert: "ARMED") pages again at
///   once rather than after the window.
fn suppression_key(fields: &SuppressionFields<'_>) -> u128 {
    let one_vehicle = matches!(
        fields.match_kind,
        Some(MatchKind::Exact | MatchKind::Misread)
    );
    let vehicle = if one_vehicle {
        ""
    } else {
        fields.read_plate_norm
    };
    let priority = fields.priority.to_string();
    xxh3_128(
        [
            fields.list,
            fields.entry_id.unwrap_or(fields.entry_plate),
            vehicle,
            &priority,
            fields.reason.unwrap_or_default(),
        ]
        .join("\u{0}")
        .as_bytes(),
    )
}

/// What suppression needs of an alert raised earlier: the fields of the same names in the
/// alert's JSON (`schemas/alert.schema.json`), which the archive keeps in `alert_json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PageRecord {
    pub list: String,
    #[serde(default)]
    pub entry_id: Option<String>,
    pub entry_plate: String,
    pub read_plate_norm: String,
    pub observed_at: Timestamp,
    pub read_id: String,
    pub jurisdiction_agreement: JurisdictionAgreement,
    #[serde(default)]
    pub suppressed: bool,
    #[serde(default)]
    pub match_kind: Option<MatchKind>,
    #[serde(default)]
    pub priority: u8,
    #[serde(default)]
    pub reason: Option<String>,
}

fn window_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hotlist::HotlistEntry;
    use crate::matcher::Matcher;
    use crate::normalize::normalize_read;
    use crate::pipeline::{Pipeline, Processed};
    use crate::read::{PlateRead, SourcePosition};
    use crate::store::HotlistStore;

    fn read_at(plate: &str, seconds: i64) -> PlateRead {
        let start = Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").unwrap();
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": "r", "observed_at": start.millis() + seconds * 1000,
            "plate": plate, "confidence": 0.9
        }))
        .unwrap();
        normalize_read(&mut read, Timestamp(start.millis() + 3_600_000)).unwrap();
        read
    }

    /// The alerts `read` raises, each through `policy` under its list's window.
    pub(crate) fn alerts_for(
        store: &HotlistStore,
        policy: &AlertPolicy,
        read: &PlateRead,
    ) -> Vec<Alert> {
        let mut matches = Vec::new();
        store.match_read(read, read.observed_at, &mut matches);
        matches
            .iter()
            .map(|hit| {
                let mut alert = Alert::new(read, hit, read.observed_at);
                let window = hit.policy.as_ref().and_then(|p| p.suppression_window_secs);
                policy.apply(window, &mut alert);
                alert
            })
            .collect()
    }

    fn store_with(list: &ListPolicy, plate: &str) -> HotlistStore {
        let store = HotlistStore::default();
        store.set_policy(list.clone());
        store.upsert(Arc::new(HotlistEntry::new(&list.name, plate).unwrap()));
        store
    }

    #[test]
    fn a_repeat_hit_within_the_window_is_recorded_but_not_paged() {
        let store = store_with(&ListPolicy::named("stolen_vehicles"), "ABC123");
        let policy = AlertPolicy::default();
        let suppressed = |seconds: i64| {
            let alerts = alerts_for(&store, &policy, &read_at("ABC123", seconds));
            assert_eq!(alerts.len(), 1, "every hit is still an alert");
            alerts[0].suppressed
        };
        assert!(!suppressed(0));
        assert!(suppressed(60));
        assert!(suppressed(599));
        assert!(!suppressed(600), "ten minutes after the page, page again");
        assert!(suppressed(700));

        // A replay of the very read that paged pages again (same alert_id for consumers).
        let first = read_at("ABC123", 0);
        assert!(!alerts_for(&store, &policy, &first)[0].suppressed);
    }

    /// The OCR reads one stolen car as ABC1234, then 4BC1234, then ABC234: one vehicle, one
    /// page. A witness's partial plate fits many vehicles: each plate pages.
    #[test]
    fn misreads_of_one_entrys_plate_share_its_window_and_partial_plates_do_not() {
        let store = store_with(&ListPolicy::named("stolen_vehicles"), "ABC1234");
        store.upsert(Arc::new(
            HotlistEntry::new("stolen_vehicles", "7X?2*").unwrap(),
        ));
        let policy = AlertPolicy::default();
        let paged = |plate: &str, seconds: i64| -> Vec<bool> {
            alerts_for(&store, &policy, &read_at(plate, seconds))
                .iter()
                .map(|alert| !alert.suppressed)
                .collect()
        };
        assert_eq!(paged("ABC1234", 0), [true]);
        assert_eq!(paged("4BC1234", 30), [false], "a misread of the same car");
        assert_eq!(paged("ABC234", 60), [false], "a dropped character");
        assert_eq!(paged("7XA2B", 0), [true]);
        assert_eq!(
            paged("7XK29", 10),
            [true],
            "another vehicle fitting the pattern"
        );
        assert_eq!(paged("7XA2B", 20), [false]);
    }

    /// A dispatcher raises an entry to priority 1 ("armed") minutes after its first page:
    /// officers must hear of it now, not after the window.
    #[test]
    fn an_entry_raised_in_priority_or_given_another_reason_pages_again() {
        let store = store_with(&ListPolicy::named("stolen_vehicles"), "ESC0001");
        let policy = AlertPolicy::default();
        let page =
            |seconds: i64| !alerts_for(&store, &policy, &read_at("ESC0001", seconds))[0].suppressed;
        assert!(page(0));
        assert!(!page(30));
        let mut escalated = HotlistEntry::new("stolen_vehicles", "ESC0001").unwrap();
        escalated.priority = 1;
        escalated.reason = Some("ARMED: homicide suspect".to_owned());
        store.upsert(Arc::new(escalated));
        assert!(page(60), "the escalation pages");
        assert!(!page(90), "and then holds like any page");
    }

    /// An AMBER list says its entries are priority 1 unless they say otherwise.
    #[test]
    fn a_lists_default_priority_applies_to_entries_that_name_none() {
        let mut amber = ListPolicy::named("amber_alert");
        amber.default_priority = Some(1);
        let store = store_with(&amber, "KID111");
        let mut named = HotlistEntry::new("amber_alert", "KID222").unwrap();
        named.priority = 3;
        named.priority_unset = false;
        store.upsert(Arc::new(named));
        let policy = AlertPolicy::default();
        assert_eq!(
            alerts_for(&store, &policy, &read_at("KID111", 0))[0].priority,
            1
        );
        assert_eq!(
            alerts_for(&store, &policy, &read_at("KID222", 0))[0].priority,
            3
        );
        let elsewhere = store_with(&ListPolicy::named("stolen_vehicles"), "CAR333");
        assert_eq!(
            alerts_for(&elsewhere, &policy, &read_at("CAR333", 0))[0].priority,
            crate::hotlist::DEFAULT_PRIORITY
        );
    }

    /// An NCIC record and a local entry in one list may carry the same plate; receivers that
    /// deduplicate by `alert_id` must keep both alerts.
    #[test]
    fn two_entries_of_one_plate_in_one_list_give_two_alert_ids() {
        let store = HotlistStore::default();
        for id in ["NCIC-1", "LOCAL-77"] {
            let mut entry = HotlistEntry::new("stolen_vehicles", "NCC1234").unwrap();
            entry.id = id.to_owned();
            store.upsert(Arc::new(entry));
        }
        let alerts = alerts_for(&store, &AlertPolicy::default(), &read_at("NCC1234", 0));
        assert_eq!(alerts.len(), 2);
        assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
        assert!(
            alerts.iter().all(|alert| !alert.suppressed),
            "two entries, two pages"
        );
    }

    #[test]
    fn an_exact_plate_from_another_state_is_recorded_but_never_paged() {
        let store = HotlistStore::default();
        store.set_policy(ListPolicy::named("stolen_vehicles"));
        let mut entry = HotlistEntry::new("stolen_vehicles", "ABC123").unwrap();
        entry.jurisdiction = Some("US-MT".to_owned());
        store.upsert(Arc::new(entry));
        let policy = AlertPolicy::default();
        let in_state = |plate: &str, seconds: i64, state: &str| {
            let mut read = read_at(plate, seconds);
            read.jurisdiction = Some(state.to_owned());
            read
        };

        let colorado = alerts_for(&store, &policy, &in_state("ABC123", 0, "US-CO"));
        assert_eq!(colorado.len(), 1, "still recorded as a hit");
        assert!(colorado[0].suppressed, "another state's plate pages nobody");
        assert_eq!(
            colorado[0].jurisdiction_agreement,
            JurisdictionAgreement::Differs
        );
        // Nor does it count as the page that suppresses the entry's own state a minute later.
        let montana = alerts_for(&store, &policy, &in_state("ABC123", 60, "US-MT"));
        assert!(!montana[0].suppressed);
    }

    #[test]
    fn windows_are_per_list_and_zero_pages_every_hit() {
        let mut amber = ListPolicy::named("amber_alert");
        amber.suppression_window_secs = Some(0);
        let store = store_with(&amber, "KID111");
        let policy = AlertPolicy::default();
        assert!(!alerts_for(&store, &policy, &read_at("KID111", 0))[0].suppressed);
        assert!(!alerts_for(&store, &policy, &read_at("KID111", 5))[0].suppressed);
    }

    #[test]
    fn covert_lists_route_their_alerts_to_the_restricted_topic() {
        let mut covert = ListPolicy::named("covert_watch");
        covert.route = AlertRoute::Covert;
        let store = store_with(&covert, "ABC123");
        store.upsert(Arc::new(
            HotlistEntry::new("stolen_vehicles", "ABC123").unwrap(),
        ));
        let mut routes: Vec<(String, AlertRoute)> =
            alerts_for(&store, &AlertPolicy::default(), &read_at("ABC123", 0))
                .into_iter()
                .map(|alert| (alert.list, alert.route))
                .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            routes,
            vec![
                ("covert_watch".to_owned(), AlertRoute::Covert),
                ("stolen_vehicles".to_owned(), AlertRoute::Field)
            ]
        );
        let json = serde_json::to_value(Alert::new(
            &read_at("ABC123", 0),
            &{
                let mut matches = Vec::new();
                store.match_read(&read_at("ABC123", 0), Timestamp(0), &mut matches);
                matches.remove(0)
            },
            Timestamp(0),
        ))
        .unwrap();
        assert!(json["route"].is_string() && json["suppressed"] == false);
    }

    #[test]
    fn the_pipeline_applies_the_policy_to_every_alert() {
        let store = Arc::new(store_with(&ListPolicy::named("stolen_vehicles"), "ABC123"));
        let mut pipeline = Pipeline::new(Arc::new(crate::decode::CanonicalJsonDecoder), store)
            .with_alert_policy(Arc::new(AlertPolicy::default()));
        let mut out = Processed::default();
        let now = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
        for (offset, second) in [0, 30].into_iter().enumerate() {
            let payload = serde_json::json!({
                "vendor": "v", "reader_id": "r1", "plate": "ABC123", "confidence": 0.9,
                "observed_at": format!("2026-11-24T17:00:{second:02}Z"),
            })
            .to_string();
            let source = SourcePosition {
                topic: "t".into(),
                partition: 0,
                offset: offset as i64,
            };
            pipeline.process(payload.as_bytes(), source, now, &mut out);
        }
        let suppressed: Vec<bool> = out.alerts.iter().map(|alert| alert.suppressed).collect();
        assert_eq!(suppressed, vec![false, true]);
    }
}
