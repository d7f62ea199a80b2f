//! Matching a read against hotlists. The `Matcher` trait is what the pipeline calls for every read;
//! `ExactMatcher` is the exact-plate implementation.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert_policy::ListPolicy;
use crate::description::AttributeMatch;
use crate::hotlist::HotlistEntry;
use crate::read::{PlateRead, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    Misread,
    Partial,
    Attribute,
    Appearance,
    /// Found by searching recent reads' appearance embeddings when a BOLO with reference
    /// vectors was created: the read is from the past, the alert is raised now.
    AppearanceRetro,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Misread => "misread",
            Self::Partial => "partial",
            Self::Attribute => "attribute",
            Self::Appearance => "appearance",
            Self::AppearanceRetro => "appearance_retro",
        }
    }
}

/// Score of an exact plate whose jurisdiction differs from the entry's: a candidate an officer
/// must confirm on the image (the state is the least reliable part of a plate read), far below
/// any match from the entry's own state. Misreads and partial plates from another state are no
/// hit at all.
pub const EXACT_OTHER_STATE_FACTOR: f32 = 0.3;

/// How the read's jurisdiction relates to the entry's: officers must confirm the state before a
/// stop, because the same characters are issued by many states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JurisdictionAgreement {
    /// Both are known and equal.
    Agrees,
    /// The entry names no jurisdiction: any state's plate with these characters is wanted.
    EntryAny,
    /// The reader could not tell the state: verify it before acting.
    ReadUnknown,
    /// Both are known and differ.
    Differs,
}

impl JurisdictionAgreement {
    pub fn between(read: Option<&str>, entry: Option<&str>) -> Self {
        match (read, entry) {
            (_, None) => Self::EntryAny,
            (None, Some(_)) => Self::ReadUnknown,
            (Some(read), Some(entry)) if read == entry => Self::Agrees,
            (Some(_), Some(_)) => Self::Differs,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agrees => "agrees",
            Self::EntryAny => "entry_any",
            Self::ReadUnknown => "read_unknown",
            Self::Differs => "differs",
        }
    }
}

/// How one character of the read differs from the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The read has a look-alike of the entry's character (`8` for `B`).
    LookAlike,
    /// The read lacks a character of the entry.
    Dropped,
    /// The read has a character the entry lacks.
    Added,
    /// A partial-plate entry left the character unknown; `read` says what the read had there.
    Unknown,
}

/// One place where the read and the entry disagree, for the officer to check on the plate image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterDifference {
    pub kind: DifferenceKind,
    /// 1-based: in the entry's plate for `look_alike` and `dropped`, in the read's for `added`
    /// and `unknown`.
    pub position: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub entry: Arc<HotlistEntry>,
    pub kind: MatchKind,
    /// 0..1: how likely the read really is this entry's vehicle.
    pub score: f32,
    pub jurisdiction: JurisdictionAgreement,
    /// For the officer: what agreed and what did not.
    pub explanation: String,
    /// The characters that differ (empty for an exact match).
    pub differences: Vec<CharacterDifference>,
    /// The entry's list policy (route, suppression window); `None` means the defaults.
    pub policy: Option<Arc<ListPolicy>>,
    /// For BOLOs: each described attribute beside what the reader saw.
    pub attributes: Vec<AttributeMatch>,
    /// For BOLOs with reference vectors: the best cosine similarity of the read's embedding.
    pub appearance_similarity: Option<f32>,
}

pub trait Matcher: Send + Sync {
    /// Appends every entry the read matches. `now` decides expiry.
    fn match_read(&self, read: &PlateRead, now: Timestamp, matches: &mut Vec<Match>);

    /// Matches several reads: read `i`'s matches are `matches[ends[i - 1]..ends[i]]` (from the
    /// length `matches` had on entry for the first). The same matches as [`Self::match_read`] on
    /// each; a matcher whose lookups miss the cache overrides it to overlap those misses across
    /// reads.
    fn match_batch(
        &self,
        reads: &[PlateRead],
        now: Timestamp,
        matches: &mut Vec<Match>,
        ends: &mut Vec<usize>,
    ) {
        ends.clear();
        for read in reads {
            self.match_read(read, now, matches);
            ends.push(matches.len());
        }
    }

    /// BOLOs with reference vectors created or replaced since the last call, for a search of
    /// recent reads (`crate::appearance`). Matchers without BOLOs have none.
    fn take_new_appearance_bolos(&self) -> Vec<(Arc<HotlistEntry>, Option<Arc<ListPolicy>>)> {
        Vec::new()
    }

    /// Entries the matcher holds.
    fn entry_count(&self) -> usize;
}

/// Exact match on the normalized plate; the jurisdiction must agree when both sides know it.
#[derive(Debug, Default)]
pub struct ExactMatcher {
    by_plate: HashMap<String, Vec<Arc<HotlistEntry>>>,
    entry_count: usize,
}

impl ExactMatcher {
    pub fn new(entries: impl IntoIterator<Item = Arc<HotlistEntry>>) -> Self {
        let mut matcher = Self::default();
        for entry in entries {
            matcher
                .by_plate
                .entry(entry.plate_norm.clone())
                .or_default()
                .push(entry);
            matcher.entry_count += 1;
        }
        for entries in matcher.by_plate.values_mut() {
            entries.sort_by_key(|entry| entry.priority);
        }
        matcher
    }
}

impl Matcher for ExactMatcher {
    fn match_read(&self, read: &PlateRead, now: Timestamp, matches: &mut Vec<Match>) {
        let Some(entries) = self.by_plate.get(&read.plate_norm) else {
            return;
        };
        for entry in entries {
            if entry.is_expired_at(now) {
                continue;
            }
            let agreement = JurisdictionAgreement::between(
                read.jurisdiction.as_deref(),
                entry.jurisdiction.as_deref(),
            );
            let (score, explanation) = match agreement {
                JurisdictionAgreement::Agrees => (1.0, "plate and jurisdiction agree".to_owned()),
                JurisdictionAgreement::EntryAny => (
                    0.95,
                    "plate agrees; the entry names no jurisdiction".to_owned(),
                ),
                JurisdictionAgreement::ReadUnknown => (
                    0.8,
                    format!(
                        "plate agrees; the reader could not tell the jurisdiction, the entry is {}: verify the state",
                        entry.jurisdiction.as_deref().unwrap_or("unknown")
                    ),
                ),
                // Same characters from another state are usually another vehicle, but the
                // state may be the misread part: a candidate, scored low and never paged.
                JurisdictionAgreement::Differs => (
                    EXACT_OTHER_STATE_FACTOR,
                    format!(
                        "plate agrees; the entry is from {}, the reader saw {}: probably another \
                         vehicle, confirm the state on the image before acting",
                        entry.jurisdiction.as_deref().unwrap_or("unknown"),
                        read.jurisdiction.as_deref().unwrap_or("unknown")
                    ),
                ),
            };
            matches.push(Match {
                entry: Arc::clone(entry),
                kind: MatchKind::Exact,
                score,
                jurisdiction: agreement,
                explanation,
                differences: Vec::new(),
                policy: None,
                attributes: Vec::new(),
                appearance_similarity: None,
            });
        }
    }

    fn entry_count(&self) -> usize {
        self.entry_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotlist::load_hotlist_csv;
    use crate::normalize::normalize_read;

    fn read(plate: &str, jurisdiction: Option<&str>) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": "r", "observed_at": "2026-11-24T17:00:00Z",
            "plate": plate, "jurisdiction": jurisdiction, "confidence": 0.9
        }))
        .unwrap();
        normalize_read(
            &mut read,
            Timestamp::parse_rfc3339("2026-11-24T17:00:01Z").unwrap(),
        )
        .unwrap();
        read
    }

    fn matcher() -> ExactMatcher {
        let csv = "list,plate,jurisdiction,priority,expires_at\n\
                   stolen_vehicles,ABC1234,VA,1,\n\
                   local_bolo,ABC-1234,,3,\n\
                   expired,XYZ999,DC,2,2020-01-01T00:00:00Z\n";
        ExactMatcher::new(load_hotlist_csv("t", csv.as_bytes()).unwrap().entries)
    }

    fn matches_for(read: &PlateRead) -> Vec<Match> {
        let mut matches = Vec::new();
        matcher().match_read(read, Timestamp::now(), &mut matches);
        matches
    }

    #[test]
    fn exact_plate_matches_every_list_holding_it_in_priority_order() {
        let found = matches_for(&read("abc 1234", Some("VA")));
        let lists: Vec<&str> = found.iter().map(|m| m.entry.list.as_str()).collect();
        assert_eq!(lists, vec!["stolen_vehicles", "local_bolo"]);
        assert_eq!(found[0].jurisdiction, JurisdictionAgreement::Agrees);
        assert_eq!(found[0].score, 1.0);
        assert_eq!(found[1].jurisdiction, JurisdictionAgreement::EntryAny);
    }

    #[test]
    fn another_states_plate_is_a_low_candidate_and_unknown_state_is_flagged() {
        let other_state = matches_for(&read("ABC1234", Some("MD")));
        let virginia = other_state
            .iter()
            .find(|m| m.jurisdiction == JurisdictionAgreement::Differs)
            .expect("the Virginia entry is still a candidate");
        assert_eq!(virginia.score, EXACT_OTHER_STATE_FACTOR);
        assert!(virginia.explanation.contains("confirm the state"));
        let unknown = matches_for(&read("ABC1234", None));
        assert_eq!(unknown[0].jurisdiction, JurisdictionAgreement::ReadUnknown);
        assert!(unknown[0].explanation.contains("verify"));
    }

    #[test]
    fn expired_entries_do_not_match() {
        assert!(matches_for(&read("XYZ999", Some("DC"))).is_empty());
    }
}
