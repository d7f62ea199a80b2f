//! The alert an officer receives: the read, the entry it hit, how it matched, and the evidence
//! needed to confirm the hit before acting on it. JSON form: `schemas/alert.schema.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::alert_policy::AlertRoute;
use crate::description::AttributeMatch;
use crate::hotlist::HotlistEntry;
use crate::matcher::{CharacterDifference, JurisdictionAgreement, Match, MatchKind};
use crate::read::{ImageRefs, PlateRead, SourcePosition, Timestamp, VehicleAttributes};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The same for the same read and entry however often the read is replayed, so consumers of
    /// the alerts topic can drop redeliveries.
    pub alert_id: String,
    pub raised_at: Timestamp,
    pub read_id: String,

    pub list: String,
    pub priority: u8,
    pub entry_plate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_jurisdiction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entry_attributes: BTreeMap<String, String>,

    pub match_kind: MatchKind,
    pub score: f32,
    pub jurisdiction_agreement: JurisdictionAgreement,
    pub explanation: String,

    pub read_plate: String,
    pub read_plate_norm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    pub confidence: f32,
    pub observed_at: Timestamp,
    pub vendor: String,
    pub reader_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f32>,
    pub vehicle: VehicleAttributes,
    pub images: ImageRefs,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePosition>,

    /// `field` (the alerts topic) or `covert` (a restricted topic only), from the list policy.
    #[serde(default)]
    pub route: AlertRoute,
    /// Recorded and archived, but officers are not paged: the same plate hit the same entry
    /// within the list's suppression window, or the plate is exact but the read's jurisdiction
    /// differs from the entry's (`jurisdiction_agreement` = `differs`).
    #[serde(default)]
    pub suppressed: bool,
    /// The entry's id within its list (for upserts, deletes and suppression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// NCIC plate type of the entry (`PC`, `MC`...): a motorcycle entry hit by a car's plate is
    /// another vehicle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_plate_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ncic_number: Option<String>,
    /// Where read and entry differ, character by character (empty for exact matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<CharacterDifference>,
    /// BOLO hits: each attribute the BOLO describes beside what the reader saw and how sure it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_matches: Vec<AttributeMatch>,
    /// BOLO appearance hits: cosine similarity of the read's embedding to the closest reference
    /// vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appearance_similarity: Option<f32>,
}

pub fn alert_id(read_id: &str, list: &str, entry_plate_norm: &str) -> String {
    let key = [read_id, list, entry_plate_norm].join("\u{0}");
    format!("{:032x}", xxh3_128(key.as_bytes()))
}

/// The alert id of a hit on `entry`: of the read, the list, the entry's plate and its id (two
/// entries of one list may carry the same plate, an NCIC record and a local "armed" entry, and a
/// receiver that deduplicates by id must keep both); retro hits are told apart by their kind, so
/// a retro alert and a live one about the same read never share an id.
pub fn entry_alert_id(read_id: &str, entry: &HotlistEntry, kind: MatchKind) -> String {
    let mut key = format!("{}/{}", entry.plate_norm, entry.id);
    if kind == MatchKind::AppearanceRetro {
        key.push_str("/retro");
    }
    alert_id(read_id, &entry.list, &key)
}

impl Alert {
    pub fn new(read: &PlateRead, hit: &Match, raised_at: Timestamp) -> Self {
        let entry = &hit.entry;
        Self {
            alert_id: entry_alert_id(&read.read_id, entry, hit.kind),
            raised_at,
            read_id: read.read_id.clone(),
            list: entry.list.clone(),
            priority: entry.priority_under(hit.policy.as_deref()),
            entry_plate: entry.plate.clone(),
            entry_jurisdiction: entry.jurisdiction.clone(),
            reason: entry.reason.clone(),
            case_number: entry.case_number.clone(),
            description: entry.description.clone(),
            entry_attributes: entry.attributes.clone(),
            match_kind: hit.kind,
            score: hit.score,
            jurisdiction_agreement: hit.jurisdiction,
            explanation: hit.explanation.clone(),
            read_plate: read.plate.clone(),
            read_plate_norm: read.plate_norm.clone(),
            jurisdiction: read.jurisdiction.clone(),
            confidence: read.confidence,
            observed_at: read.observed_at,
            vendor: read.vendor.clone(),
            reader_id: read.reader_id.clone(),
            camera_id: read.camera_id.clone(),
            lat: read.lat,
            lon: read.lon,
            heading: read.heading,
            vehicle: read.vehicle.clone(),
            images: read.images.clone(),
            source: read.source.clone(),
            route: hit
                .policy
                .as_ref()
                .map_or(AlertRoute::Field, |policy| policy.route),
            suppressed: false,
            entry_id: (!entry.id.is_empty()).then(|| entry.id.clone()),
            entry_plate_type: entry.plate_type.clone(),
            ncic_number: entry.ncic_number.clone(),
            differences: hit.differences.clone(),
            attribute_matches: hit.attributes.clone(),
            appearance_similarity: hit.appearance_similarity,
        }
    }

    /// One line for a terminal or a log: what an officer reads first.
    pub fn summary_line(&self) -> String {
        let place = match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => format!("{lat:.5},{lon:.5}"),
            _ => "no position".to_owned(),
        };
        let marker = match (self.route, self.suppressed) {
            (AlertRoute::Covert, true) => "ALERT (covert, suppressed)",
            (AlertRoute::Covert, false) => "ALERT (covert)",
            (AlertRoute::Field, true) => "ALERT (suppressed)",
            (AlertRoute::Field, false) => "ALERT",
        };
        format!(
            "{marker} p{} {} {} [{}] {} {:.2} read {}{} at {} ({}) {} — {}",
            self.priority,
            self.list,
            self.entry_plate,
            self.entry_jurisdiction.as_deref().unwrap_or("any state"),
            self.match_kind.as_str(),
            self.score,
            self.read_plate,
            self.jurisdiction
                .as_deref()
                .map(|j| format!(" [{j}]"))
                .unwrap_or_default(),
            self.reader_id,
            place,
            self.observed_at,
            self.reason.as_deref().unwrap_or("no reason given"),
        )
    }
}
