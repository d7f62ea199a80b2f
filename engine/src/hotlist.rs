//! Hotlist entries and the CSV format agencies hand us (`schemas/hotlist.md` documents it).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::csv_text::RecordLines;
use crate::description::{DescriptionFields, InvalidDescription, VehicleDescription};
use crate::jurisdiction::normalize_jurisdiction;
use crate::normalize::normalize_plate;
use crate::pattern::{is_pattern, PatternError, PlatePattern};
use crate::read::Timestamp;

/// Priority when a list or row gives none. 1 is the most urgent (officer safety), as in dispatch.
pub const DEFAULT_PRIORITY: u8 = 5;

/// One plate an agency wants to know about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotlistEntry {
    /// The list this entry belongs to (`stolen_vehicles`, `amber_alert`, ...).
    pub list: String,
    /// The plate as the agency wrote it.
    pub plate: String,
    /// The plate normalized like a read's, so the two compare.
    pub plate_norm: String,
    /// `None` means the entry matches a plate from any jurisdiction.
    pub jurisdiction: Option<String>,
    pub reason: Option<String>,
    /// 1 (most urgent) to 9.
    pub priority: u8,
    /// The entry named no priority: its list's `default_priority` applies (see
    /// [`Self::priority_under`]), else `priority` (5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub priority_unset: bool,
    pub case_number: Option<String>,
    pub description: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// Columns the format does not define, kept as the agency gave them (`make`, `model` and
    /// `color` live here: they reach the alert as `entry_attributes`).
    pub attributes: BTreeMap<String, String>,
    /// Names the entry within its list for upserts and deletes: the `id` column, else the NCIC
    /// number, else `plate_norm` and jurisdiction (see [`default_entry_id`]).
    #[serde(default)]
    pub id: String,
    /// `plate_norm` is a partial-plate pattern (`7X?2*`), not a plate.
    #[serde(default)]
    pub partial: bool,
    /// NCIC plate type (`PC` passenger, `MC` motorcycle, `TK` truck...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ncic_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<Timestamp>,
    /// `Some(false)` keeps this entry to exact matches whatever its list's policy says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misreads: Option<bool>,
    /// Set on a BOLO: the vehicle description (attributes, area, time window, reference
    /// vectors) matched against reads' classified attributes and appearance embeddings. A BOLO's
    /// `plate` is empty or a partial-plate pattern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<Box<VehicleDescription>>,
}

/// Why an entry cannot be made from what an agency gave.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidEntry {
    #[error("`list` is empty")]
    EmptyList,
    #[error(
        "list {0:?} contains `/`, which ends a list name in the updates topic's keys \
         (`<list>/<id>`): its entries could not be updated or deleted; use `_` or `-`"
    )]
    SlashInList(String),
    #[error(
        "list name {0:?} contains a quote: a key written as a JSON string (`\"list/id\"`)? \
         its entries would form a list of their own, on the default policy"
    )]
    QuoteInList(String),
    #[error("`plate` is empty and the row describes no vehicle (make, model, color, body_type, year_min, year_max or reference_vectors)")]
    EmptyPlate,
    #[error(transparent)]
    Plate(#[from] crate::normalize::InvalidRead),
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// Checks a list name: not empty and without `/`, which the updates topic's keys (`<list>/<id>`)
/// use to end it. Returns the name trimmed.
pub fn check_list_name(list: &str) -> Result<&str, InvalidEntry> {
    let list = list.trim();
    if list.is_empty() {
        return Err(InvalidEntry::EmptyList);
    }
    if list.contains('/') {
        return Err(InvalidEntry::SlashInList(list.to_owned()));
    }
    // `"covert_watch` is not `covert_watch`: its hits would page field officers.
    if list.contains(['"', '\'', '`']) {
        return Err(InvalidEntry::QuoteInList(list.to_owned()));
    }
    Ok(list)
}

/// The id of an entry that was given none: unique per plate and jurisdiction within a list.
pub fn default_entry_id(plate_norm: &str, jurisdiction: Option<&str>) -> String {
    format!("{plate_norm}/{}", jurisdiction.unwrap_or("*"))
}

impl HotlistEntry {
    /// The priority hits on this entry carry: its own, or when it named none, its list's
    /// `default_priority`.
    pub fn priority_under(&self, policy: Option<&crate::alert_policy::ListPolicy>) -> u8 {
        match policy.and_then(|policy| policy.default_priority) {
            Some(default) if self.priority_unset => default,
            _ => self.priority,
        }
    }

    /// An entry with only a list and a plate (or a partial-plate pattern); set the other fields
    /// as needed. The id is [`default_entry_id`] until set.
    pub fn new(list: &str, plate: &str) -> Result<Self, InvalidEntry> {
        let list = check_list_name(list)?;
        if plate.trim().is_empty() {
            return Err(InvalidEntry::EmptyPlate);
        }
        let partial = is_pattern(plate);
        let plate_norm = if partial {
            PlatePattern::parse(plate)?.to_string()
        } else {
            normalize_plate(plate)?
        };
        Ok(Self {
            list: list.to_owned(),
            plate: plate.to_owned(),
            id: default_entry_id(&plate_norm, None),
            plate_norm,
            jurisdiction: None,
            reason: None,
            priority: DEFAULT_PRIORITY,
            priority_unset: true,
            case_number: None,
            description: None,
            expires_at: None,
            attributes: BTreeMap::new(),
            partial,
            plate_type: None,
            ncic_number: None,
            entered_by: None,
            entered_at: None,
            misreads: None,
            vehicle: None,
        })
    }

    /// A BOLO without any plate: matched on its description alone. The id is a placeholder
    /// until set (`entry_from_fields` derives one from the description).
    pub fn without_plate(
        list: &str,
        description: VehicleDescription,
    ) -> Result<Self, InvalidEntry> {
        let list = check_list_name(list)?;
        Ok(Self {
            list: list.to_owned(),
            plate: String::new(),
            plate_norm: String::new(),
            jurisdiction: None,
            reason: None,
            priority: DEFAULT_PRIORITY,
            priority_unset: true,
            case_number: None,
            description: None,
            vehicle: Some(Box::new(description)),
            expires_at: None,
            attributes: BTreeMap::new(),
            id: "BOLO".to_owned(),
            partial: false,
            plate_type: None,
            ncic_number: None,
            entered_by: None,
            entered_at: None,
            misreads: None,
        })
    }

    /// A BOLO: the entry carries a vehicle description.
    pub fn is_bolo(&self) -> bool {
        self.vehicle.is_some()
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HotlistError {
    #[error("hotlist {source_name}: cannot read CSV: {error}")]
    Csv {
        source_name: String,
        error: csv::Error,
    },
    #[error("hotlist {source_name}: cannot read: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error(
        "hotlist {source_name}: line {line}: a quoted field opens here and is never closed, so \
         every row after it would be read into that field; the file is refused (add the \
         closing quote)"
    )]
    UnterminatedQuote { source_name: String, line: u64 },
    #[error(
        "hotlist {source_name}: the header has no `{column}` column (required: list, plate); \
         it reads {header:?}{}",
        if header.len() == 1 && header[0].contains([';', '\t', '|']) {
            ": is the file delimited by something else than commas? it must be commas"
        } else {
            ""
        }
    )]
    MissingColumn {
        source_name: String,
        column: &'static str,
        header: Vec<String>,
    },
}

/// A row the loader refused, with its line number so the agency can fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

/// A row whose id a later row of the same list and file repeats: the later row is the entry, as
/// an upsert of that id would make it.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatedId {
    pub list: String,
    pub id: String,
    /// The row that was set aside.
    pub line: u64,
    /// The later row that is kept.
    pub kept_line: u64,
}

#[derive(Debug, Default)]
pub struct LoadedHotlist {
    pub entries: Vec<Arc<HotlistEntry>>,
    /// Rows refused one by one: a single typo must not keep a 1M-row state file from loading.
    pub rejected: Vec<RejectedRow>,
    /// Rows set aside because a later row repeats their list and id.
    pub repeated: Vec<RepeatedId>,
    /// Header columns the format does not define, in header order: kept as attributes, which is
    /// what `make` or `color` are meant for and what a misspelt `jurisdicton` silently becomes.
    pub unknown_columns: Vec<String>,
}

impl LoadedHotlist {
    /// The entries of `rows` (each with its line), keeping only the last row of each list and id:
    /// two entries with one id would both alert, and an upsert or delete of that id could not
    /// tell them apart.
    pub(crate) fn keep_last_of_each_id(&mut self, rows: Vec<(u64, HotlistEntry)>) {
        let mut last_of_id: std::collections::HashMap<(&str, &str), (usize, u64)> =
            std::collections::HashMap::with_capacity(rows.len());
        for (index, (line, entry)) in rows.iter().enumerate() {
            last_of_id.insert((&entry.list, &entry.id), (index, *line));
        }
        let mut kept = Vec::with_capacity(last_of_id.len());
        for (index, (line, entry)) in rows.iter().enumerate() {
            match last_of_id.get(&(entry.list.as_str(), entry.id.as_str())) {
                Some(&(last, kept_line)) if last != index => self.repeated.push(RepeatedId {
                    list: entry.list.clone(),
                    id: entry.id.clone(),
                    line: *line,
                    kept_line,
                }),
                _ => kept.push(index),
            }
        }
        drop(last_of_id);
        let mut kept = kept.into_iter().peekable();
        for (index, (_, entry)) in rows.into_iter().enumerate() {
            if kept.next_if_eq(&index).is_some() {
                self.entries.push(Arc::new(entry));
            }
        }
    }
}

/// The columns that are entry fields (`schemas/hotlist.md`); any other is kept as an attribute.
pub const KNOWN_COLUMNS: &[&str] = &[
    "list",
    "plate",
    "jurisdiction",
    "reason",
    "priority",
    "case_number",
    "description",
    "expires_at",
    "id",
    "plate_type",
    "ncic_number",
    "entered_by",
    "entered_at",
    "misreads",
    "year_min",
    "year_max",
    "lat",
    "lon",
    "radius_m",
    "active_from",
    "active_to",
    "reference_vectors",
    "min_score",
];

/// Loads hotlist entries from CSV with a header row. `source_name` (a file name) goes into errors.
pub fn load_hotlist_csv<R: Read>(
    source_name: &str,
    input: R,
) -> Result<LoadedHotlist, HotlistError> {
    let csv_error = |error| HotlistError::Csv {
        source_name: source_name.to_owned(),
        error,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(RecordLines::new(input));
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        // A spreadsheet's `"LIST", "Plate"` (a space before the quote keeps the csv reader from
        // taking it as quoted) names the columns as much as `list,plate` does.
        .map(|name| {
            name.trim_start_matches('\u{feff}')
                .trim()
                .trim_matches('"')
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    // The header's line; rows are then told by the lines they start on.
    reader.get_mut().next_record_line();
    let column = |name: &'static str| header.iter().position(|column| column == name);
    let list_column = column("list").ok_or_else(|| HotlistError::MissingColumn {
        source_name: source_name.to_owned(),
        header: header.clone(),
        column: "list",
    })?;
    let plate_column = column("plate").ok_or_else(|| HotlistError::MissingColumn {
        source_name: source_name.to_owned(),
        header: header.clone(),
        column: "plate",
    })?;
    let optional_columns = OptionalColumns {
        jurisdiction: column("jurisdiction"),
        reason: column("reason"),
        priority: column("priority"),
        case_number: column("case_number"),
        description: column("description"),
        expires_at: column("expires_at"),
        id: column("id"),
        plate_type: column("plate_type"),
        ncic_number: column("ncic_number"),
        entered_by: column("entered_by"),
        entered_at: column("entered_at"),
        misreads: column("misreads"),
        year_min: column("year_min"),
        year_max: column("year_max"),
        lat: column("lat"),
        lon: column("lon"),
        radius_m: column("radius_m"),
        active_from: column("active_from"),
        active_to: column("active_to"),
        reference_vectors: column("reference_vectors"),
        min_score: column("min_score"),
    };

    let mut loaded = LoadedHotlist {
        unknown_columns: header
            .iter()
            .filter(|name| !KNOWN_COLUMNS.contains(&name.as_str()))
            .cloned()
            .collect(),
        ..LoadedHotlist::default()
    };
    let mut rows = Vec::new();
    let mut byte_record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut byte_record)
        .map_err(csv_error)?
    {
        let record = crate::csv_text::text_record(std::mem::take(&mut byte_record));
        // The physical line the row starts on: the csv crate's own count drifts with CRLF line
        // ends and skipped empty lines.
        let line = reader
            .get_mut()
            .next_record_line()
            .or_else(|| record.position().map(csv::Position::line))
            .unwrap_or(0);
        // The csv reader is flexible so that one bad row does not fail the file; a row whose
        // fields do not line up with the header is refused here. An unquoted comma (`stolen,
        // armed`) would otherwise drop the rest of the row's last field without a word, and a
        // truncated line leave an entry of any state and no expiry.
        if record.len() != header.len() {
            loaded.rejected.push(RejectedRow {
                line,
                reason: format!(
                    "the row has {} fields where the header has {}: {}",
                    record.len(),
                    header.len(),
                    if record.len() > header.len() {
                        "a comma inside a field that is not quoted? put such a field in double quotes"
                    } else {
                        "a truncated line? every row needs a field (perhaps empty) for each column"
                    }
                ),
            });
            continue;
        }
        let field = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        let row = EntryFields {
            list: field(Some(list_column)),
            plate: field(Some(plate_column)),
            jurisdiction: field(optional_columns.jurisdiction),
            reason: field(optional_columns.reason),
            priority: field(optional_columns.priority),
            case_number: field(optional_columns.case_number),
            description: field(optional_columns.description),
            expires_at: field(optional_columns.expires_at),
            id: field(optional_columns.id),
            plate_type: field(optional_columns.plate_type),
            ncic_number: field(optional_columns.ncic_number),
            entered_by: field(optional_columns.entered_by),
            entered_at: field(optional_columns.entered_at),
            misreads: field(optional_columns.misreads),
            year_min: field(optional_columns.year_min),
            year_max: field(optional_columns.year_max),
            lat: field(optional_columns.lat),
            lon: field(optional_columns.lon),
            radius_m: field(optional_columns.radius_m),
            active_from: field(optional_columns.active_from),
            active_to: field(optional_columns.active_to),
            reference_vectors: field(optional_columns.reference_vectors),
            min_score: field(optional_columns.min_score),
            attributes: header
                .iter()
                .zip(record.iter())
                .filter(|(name, value)| {
                    !KNOWN_COLUMNS.contains(&name.as_str()) && !value.is_empty()
                })
                .map(|(name, value)| (name.clone(), value.to_owned()))
                .collect(),
        };
        match entry_from_fields(row) {
            Ok(entry) => rows.push((line, entry)),
            Err(error) => loaded.rejected.push(RejectedRow {
                line,
                reason: error.to_string(),
            }),
        }
    }
    if let Some(line) = reader.get_ref().unterminated_quote_line() {
        return Err(HotlistError::UnterminatedQuote {
            source_name: source_name.to_owned(),
            line,
        });
    }
    loaded.keep_last_of_each_id(rows);
    Ok(loaded)
}

struct OptionalColumns {
    jurisdiction: Option<usize>,
    reason: Option<usize>,
    priority: Option<usize>,
    case_number: Option<usize>,
    description: Option<usize>,
    expires_at: Option<usize>,
    id: Option<usize>,
    plate_type: Option<usize>,
    ncic_number: Option<usize>,
    entered_by: Option<usize>,
    entered_at: Option<usize>,
    misreads: Option<usize>,
    year_min: Option<usize>,
    year_max: Option<usize>,
    lat: Option<usize>,
    lon: Option<usize>,
    radius_m: Option<usize>,
    active_from: Option<usize>,
    active_to: Option<usize>,
    reference_vectors: Option<usize>,
    min_score: Option<usize>,
}

/// One entry as an agency states it: the hotlist columns (`schemas/hotlist.md`) as text, before
/// any checking. The CSV loader and the live-updates topic both build entries from this, so a
/// row and a message with the same values make the same entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryFields {
    pub list: Option<String>,
    pub plate: Option<String>,
    pub jurisdiction: Option<String>,
    pub reason: Option<String>,
    pub priority: Option<String>,
    pub case_number: Option<String>,
    pub description: Option<String>,
    pub expires_at: Option<String>,
    pub id: Option<String>,
    pub plate_type: Option<String>,
    pub ncic_number: Option<String>,
    pub entered_by: Option<String>,
    pub entered_at: Option<String>,
    pub misreads: Option<String>,
    pub year_min: Option<String>,
    pub year_max: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
    pub radius_m: Option<String>,
    pub active_from: Option<String>,
    pub active_to: Option<String>,
    pub reference_vectors: Option<String>,
    pub min_score: Option<String>,
    /// Columns the format does not define (`make`, `model`, `color`...), by lowercase name.
    pub attributes: BTreeMap<String, String>,
}

impl EntryFields {
    /// Sets the column `name` (case-insensitive) to `value`, trimmed; an empty value leaves the
    /// column unset, as an empty CSV cell does. Names outside the format become attributes.
    pub fn set(&mut self, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        let name = name.trim().to_ascii_lowercase();
        let value = value.to_owned();
        let slot = match name.as_str() {
            "list" => &mut self.list,
            "plate" => &mut self.plate,
            "jurisdiction" => &mut self.jurisdiction,
            "reason" => &mut self.reason,
            "priority" => &mut self.priority,
            "case_number" => &mut self.case_number,
            "description" => &mut self.description,
            "expires_at" => &mut self.expires_at,
            "id" => &mut self.id,
            "plate_type" => &mut self.plate_type,
            "ncic_number" => &mut self.ncic_number,
            "entered_by" => &mut self.entered_by,
            "entered_at" => &mut self.entered_at,
            "misreads" => &mut self.misreads,
            "year_min" => &mut self.year_min,
            "year_max" => &mut self.year_max,
            "lat" => &mut self.lat,
            "lon" => &mut self.lon,
            "radius_m" => &mut self.radius_m,
            "active_from" => &mut self.active_from,
            "active_to" => &mut self.active_to,
            "reference_vectors" => &mut self.reference_vectors,
            "min_score" => &mut self.min_score,
            _ => {
                self.attributes.insert(name, value);
                return;
            }
        };
        *slot = Some(value);
    }
}

/// Why [`entry_from_fields`] refused an entry; the message names the column and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidFields {
    #[error(transparent)]
    Entry(#[from] InvalidEntry),
    #[error("jurisdiction {0:?} is not one we recognize")]
    Jurisdiction(String),
    #[error("priority {0:?} is not a whole number from 1 to 9")]
    Priority(String),
    #[error("{column} {raw:?} is not an RFC 3339 time")]
    Time { column: &'static str, raw: String },
    #[error("misreads {0:?} is not true or false (yes/no and 1/0 are read too)")]
    Misreads(String),
    #[error(transparent)]
    Description(#[from] InvalidDescription),
    #[error("{0} applies to BOLO rows only (an empty plate or a partial-plate pattern)")]
    BoloColumnOnPlate(&'static str),
}

fn parse_time(column: &'static str, raw: String) -> Result<Timestamp, InvalidFields> {
    Timestamp::parse_rfc3339(&raw).ok_or(InvalidFields::Time { column, raw })
}

/// Checks and types one entry's columns: the plate is normalized (or parsed as a partial-plate
/// pattern), the jurisdiction recognized, priority and times parsed, and the id defaulted to the
/// NCIC number, else `PLATE/JURISDICTION`.
pub fn entry_from_fields(fields: EntryFields) -> Result<HotlistEntry, InvalidFields> {
    let list = fields.list.clone().ok_or(InvalidEntry::EmptyList)?;
    let description_fields = fields.description_fields();
    let mut entry = match fields.plate.as_deref() {
        Some(plate) if !is_pattern(plate) => {
            if let Some(column) = fields.bolo_only_column() {
                return Err(InvalidFields::BoloColumnOnPlate(column));
            }
            HotlistEntry::new(&list, plate)?
        }
        Some(pattern) => {
            let mut entry = HotlistEntry::new(&list, pattern)?;
            entry.vehicle =
                VehicleDescription::from_fields(&description_fields, true)?.map(Box::new);
            if entry.vehicle.is_none() && description_fields.has_constraints() {
                return Err(InvalidDescription::YearsOnly.into());
            }
            entry
        }
        None => {
            let description = VehicleDescription::from_fields(&description_fields, false)?
                .ok_or(InvalidEntry::EmptyPlate)?;
            HotlistEntry::without_plate(&list, description)?
        }
    };
    if let Some(raw) = fields.jurisdiction {
        entry.jurisdiction = Some(
            normalize_jurisdiction(&raw).ok_or_else(|| InvalidFields::Jurisdiction(raw.clone()))?,
        );
    }
    if let Some(raw) = fields.priority {
        entry.priority_unset = false;
        entry.priority = raw
            .parse::<u8>()
            .ok()
            .filter(|priority| (1..=9).contains(priority))
            .ok_or(InvalidFields::Priority(raw))?;
    }
    entry.expires_at = fields
        .expires_at
        .map(|raw| parse_time("expires_at", raw))
        .transpose()?;
    entry.entered_at = fields
        .entered_at
        .map(|raw| parse_time("entered_at", raw))
        .transpose()?;
    entry.misreads = match fields
        .misreads
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => None,
        Some("true" | "yes" | "1") => Some(true),
        Some("false" | "no" | "0") => Some(false),
        Some(_) => {
            return Err(InvalidFields::Misreads(
                fields.misreads.clone().unwrap_or_default(),
            ))
        }
    };
    entry.reason = fields.reason;
    entry.case_number = fields.case_number;
    entry.description = fields.description;
    entry.plate_type = fields.plate_type.map(|raw| raw.to_ascii_uppercase());
    entry.ncic_number = fields.ncic_number;
    entry.entered_by = fields.entered_by;
    entry.attributes = fields.attributes;
    entry.id = fields
        .id
        .or_else(|| entry.ncic_number.clone())
        .unwrap_or_else(|| match &entry.vehicle {
            Some(description) if entry.plate_norm.is_empty() => {
                default_bolo_id(description, entry.case_number.as_deref())
            }
            _ => default_entry_id(&entry.plate_norm, entry.jurisdiction.as_deref()),
        });
    Ok(entry)
}

/// The id of a plate-less BOLO that was given none: its case number, else a hash of what it
/// describes, so the same row loaded twice is the same entry.
pub fn default_bolo_id(description: &VehicleDescription, case_number: Option<&str>) -> String {
    if let Some(case_number) = case_number {
        return format!("BOLO/{case_number}");
    }
    let described = serde_json::to_string(description).unwrap_or_default();
    format!(
        "BOLO/{:016x}",
        xxhash_rust::xxh3::xxh3_64(described.as_bytes())
    )
}

impl EntryFields {
    fn description_fields(&self) -> DescriptionFields {
        let attribute = |name: &str| self.attributes.get(name).cloned();
        DescriptionFields {
            make: attribute("make"),
            model: attribute("model"),
            color: attribute("color"),
            body_type: attribute("body_type"),
            year_min: self.year_min.clone(),
            year_max: self.year_max.clone(),
            lat: self.lat.clone(),
            lon: self.lon.clone(),
            radius_m: self.radius_m.clone(),
            active_from: self.active_from.clone(),
            active_to: self.active_to.clone(),
            reference_vectors: self.reference_vectors.clone(),
            min_score: self.min_score.clone(),
        }
    }

    /// The first filled column that only BOLOs use.
    fn bolo_only_column(&self) -> Option<&'static str> {
        [
            ("year_min", &self.year_min),
            ("year_max", &self.year_max),
            ("lat", &self.lat),
            ("lon", &self.lon),
            ("radius_m", &self.radius_m),
            ("active_from", &self.active_from),
            ("active_to", &self.active_to),
            ("reference_vectors", &self.reference_vectors),
            ("min_score", &self.min_score),
        ]
        .into_iter()
        .find(|(_, value)| value.is_some())
        .map(|(name, _)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_in_windows_1252_is_read_as_such_and_the_file_still_loads() {
        let csv: &[u8] = b"list,plate,jurisdiction,description\n\
            stolen_vehicles, ABC 1234 ,VA,Jos\xe9's \x93silver\x94 Civic\n\
            stolen_vehicles,XYZ999,MD, caf\xc3\xa9 owner \n";
        let loaded = load_hotlist_csv("state.csv", csv).unwrap();
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        assert_eq!(loaded.entries.len(), 2);
        assert_eq!(loaded.entries[0].plate_norm, "ABC1234");
        assert_eq!(
            loaded.entries[0].description.as_deref(),
            Some("Jos\u{e9}'s \u{201c}silver\u{201d} Civic")
        );
        assert_eq!(
            loaded.entries[1].description.as_deref(),
            Some("caf\u{e9} owner")
        );
    }

    #[test]
    fn rows_load_with_optional_and_extra_columns() {
        let csv = "\u{feff}List,Plate,Jurisdiction,Reason,Priority,case_number,expires_at,Make,color\n\
                   stolen_vehicles,ABC 1234,va,stolen vehicle,1,NIC/V123,2030-01-01T00:00:00Z,Honda,silver\n\
                   local_bolo,7xk-229,,,,,,,\n";
        let loaded = load_hotlist_csv("test.csv", csv.as_bytes()).unwrap();
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        let first = &loaded.entries[0];
        assert_eq!(first.plate_norm, "ABC1234");
        assert_eq!(first.jurisdiction.as_deref(), Some("US-VA"));
        assert_eq!(first.priority, 1);
        assert_eq!(
            first.attributes.get("make").map(String::as_str),
            Some("Honda")
        );
        assert_eq!(
            first.attributes.get("color").map(String::as_str),
            Some("silver")
        );
        let second = &loaded.entries[1];
        assert_eq!(second.plate_norm, "7XK229");
        assert_eq!(second.jurisdiction, None);
        assert_eq!(second.priority, DEFAULT_PRIORITY);
        assert!(second.attributes.is_empty());
    }

    #[test]
    fn bad_rows_are_refused_with_line_numbers_and_good_rows_still_load() {
        let csv = "list,plate,priority,expires_at\n\
                   a,ABC123,1,\n\
                   a,,1,\n\
                   a,AB#1,1,\n\
                   a,XYZ987,urgent,\n\
                   a,XYZ988,2,next tuesday\n";
        let loaded = load_hotlist_csv("test.csv", csv.as_bytes()).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        let lines: Vec<u64> = loaded.rejected.iter().map(|row| row.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(loaded.rejected[2].reason.contains("priority"));
    }

    #[test]
    fn refused_rows_name_their_physical_line_with_crlf_ends_and_empty_lines() {
        let crlf = "list,plate,jurisdiction\r\n\
                    stolen_vehicles,AAA1,VA\r\n\
                    stolen_vehicles,BAD#1,VA\r\n\
                    stolen_vehicles,\"BAD\r\n#2\",VA\r\n\
                    stolen_vehicles,BAD#3,VA\r\n";
        let blank = "list,plate,jurisdiction\n\n\n\nstolen_vehicles,BAD#1,VA\n\r\nstolen_vehicles,BAD#2,VA\n";
        for (csv, expected) in [(crlf, vec![3, 4, 6]), (blank, vec![5, 7])] {
            let loaded = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap();
            let lines: Vec<u64> = loaded.rejected.iter().map(|row| row.line).collect();
            assert_eq!(lines, expected, "{csv:?}");
        }
    }

    #[test]
    fn a_repeated_id_keeps_the_last_row_of_its_list_and_names_the_line_set_aside() {
        let csv = "list,plate,jurisdiction,id,priority\n\
                   stolen_vehicles,AAA111,VA,,2\n\
                   stolen_vehicles,BBB222,VA,case-7,2\n\
                   amber_alert,AAA111,VA,,1\n\
                   stolen_vehicles,AAA 111,VA,,1\n\
                   stolen_vehicles,CCC333,VA,case-7,3\n";
        let loaded = load_hotlist_csv("dup.csv", csv.as_bytes()).unwrap();
        let entries: Vec<(&str, &str, &str, u8)> = loaded
            .entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref();
                (
                    entry.list.as_str(),
                    entry.id.as_str(),
                    entry.plate_norm.as_str(),
                    entry.priority,
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("amber_alert", "AAA111/US-VA", "AAA111", 1),
                ("stolen_vehicles", "AAA111/US-VA", "AAA111", 1),
                ("stolen_vehicles", "case-7", "CCC333", 3),
            ]
        );
        let repeated: Vec<(u64, u64, &str)> = loaded
            .repeated
            .iter()
            .map(|row| (row.line, row.kept_line, row.id.as_str()))
            .collect();
        assert_eq!(repeated, vec![(2, 5, "AAA111/US-VA"), (3, 6, "case-7")]);
    }

    #[test]
    fn a_row_whose_fields_do_not_line_up_with_the_header_is_refused_not_cut() {
        let csv = "list,plate,jurisdiction,priority,reason\n\
                   stolen_vehicles,ARM123,VA,1,stolen, suspect armed and dangerous\n\
                   stolen_vehicles,SHORT1,VA\n\
                   stolen_vehicles,GOOD12,VA,2,\"stolen, armed\"\n";
        let loaded = load_hotlist_csv("ragged.csv", csv.as_bytes()).unwrap();
        let entries: Vec<(&str, &str)> = loaded
            .entries
            .iter()
            .map(|entry| {
                (
                    entry.plate_norm.as_str(),
                    entry.reason.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(entries, vec![("GOOD12", "stolen, armed")]);
        let refused: Vec<(u64, bool)> = loaded
            .rejected
            .iter()
            .map(|row| {
                (
                    row.line,
                    row.reason.contains("6 fields where the header has 5"),
                )
            })
            .collect();
        assert_eq!(
            refused,
            vec![(2, true), (3, false)],
            "{:?}",
            loaded.rejected
        );
        assert!(loaded.rejected[0].reason.contains("double quotes"));
        assert!(loaded.rejected[1]
            .reason
            .contains("3 fields where the header has 5"));
    }

    #[test]
    fn headers_as_spreadsheets_write_them_load_and_a_wrong_delimiter_is_named() {
        let csv =
            "\"LIST\", \"Plate\" , misreads\nstolen_vehicles,ABC123,Y\nstolen_vehicles,ABD123,no\n";
        let loaded = load_hotlist_csv("sheet.csv", csv.as_bytes()).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert!(
            loaded.rejected[0]
                .reason
                .contains("misreads \"Y\" is not true or false (yes/no and 1/0 are read too)"),
            "{:?}",
            loaded.rejected
        );
        let error = load_hotlist_csv("semi.csv", "list;plate\nx;ABC123\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("it reads [\"list;plate\"]"), "{error}");
        assert!(error.contains("something else than commas"), "{error}");
    }

    #[test]
    fn a_list_name_with_a_quote_is_refused() {
        let csv = "list,plate\n\"\"\"covert_watch\",AAA111\n";
        let loaded = load_hotlist_csv("quoted.csv", csv.as_bytes()).unwrap();
        assert!(loaded.entries.is_empty());
        assert!(
            loaded.rejected[0].reason.contains("contains a quote"),
            "{:?}",
            loaded.rejected
        );
    }

    #[test]
    fn a_list_name_with_a_slash_is_refused_with_its_line() {
        let csv = "list,plate\namber/alert,AAA111\namber_alert,BBB222\n";
        let loaded = load_hotlist_csv("slash.csv", csv.as_bytes()).unwrap();
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.rejected.len(), 1);
        assert_eq!(loaded.rejected[0].line, 2);
        assert!(
            loaded.rejected[0]
                .reason
                .contains("\"amber/alert\" contains `/`"),
            "{:?}",
            loaded.rejected
        );
    }

    #[test]
    fn a_missing_closing_quote_refuses_the_file_naming_the_line_the_field_opened_on() {
        let csv = "list,plate,jurisdiction,description\n\
                   stolen_vehicles,AAA111,VA,\"silver Honda\n\
                   stolen_vehicles,BBB222,VA,x\n\
                   stolen_vehicles,CCC333,VA,y\n";
        let error = load_hotlist_csv("u.csv", csv.as_bytes()).unwrap_err();
        assert!(
            matches!(error, HotlistError::UnterminatedQuote { line: 2, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("u.csv: line 2"), "{error}");
    }

    #[test]
    fn quoted_fields_may_span_lines_and_hold_quotes() {
        let csv = "list,plate,description\n\
                   stolen_vehicles,AAA111,\"silver Honda,\n\"\"dented\"\" rear\"\n\
                   stolen_vehicles,BBB222,x\n";
        let loaded = load_hotlist_csv("ml.csv", csv.as_bytes()).unwrap();
        assert!(loaded.rejected.is_empty(), "{:?}", loaded.rejected);
        assert_eq!(
            loaded.entries[0].description.as_deref(),
            Some("silver Honda,\n\"dented\" rear")
        );
        assert_eq!(loaded.entries.len(), 2);
    }

    #[test]
    fn a_file_without_the_required_columns_is_an_error_naming_the_column() {
        let error = load_hotlist_csv("x.csv", "list,tag\na,b\n".as_bytes()).unwrap_err();
        assert!(error.to_string().contains("`plate`"), "{error}");
    }
}

#[cfg(test)]
mod extended_column_tests {
    use super::*;

    #[test]
    fn extended_columns_are_typed_and_ids_default_sensibly() {
        let csv = "list,plate,jurisdiction,id,plate_type,ncic_number,entered_by,entered_at,misreads,make\n\
                   stolen_vehicles,ABC123,VA,,pc,V123456789,ofc. lee,2026-11-01T10:00:00Z,false,Honda\n\
                   local_bolo,XYZ 9,,bolo-7,,,,,,\n\
                   local_bolo,XYZ8,MD,,,,,,,\n\
                   amber_alert,7X?2*,,,,,,,yes,\n\
                   local_bolo,XYZ7,,,,,,,maybe,\n";
        let loaded = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap();
        let ids: Vec<&str> = loaded.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["V123456789", "bolo-7", "XYZ8/US-MD", "7X?2*/*"]);
        let first = &loaded.entries[0];
        assert_eq!(first.plate_type.as_deref(), Some("PC"));
        assert_eq!(first.entered_by.as_deref(), Some("ofc. lee"));
        assert!(first.entered_at.is_some());
        assert_eq!(first.misreads, Some(false));
        assert_eq!(first.attributes["make"], "Honda");
        assert!(loaded.entries[3].partial);
        assert_eq!(loaded.entries[3].misreads, Some(true));
        assert_eq!(loaded.rejected.len(), 1);
        assert!(loaded.rejected[0].reason.contains("misreads"));
    }
}

#[cfg(test)]
mod entry_fields_tests {
    use super::*;

    #[test]
    fn fields_set_by_name_make_the_same_entry_as_the_csv_row() {
        let csv = "list,plate,jurisdiction,priority,expires_at,Make\n\
                   amber_alert,7XK 229,VA,1,2030-01-01T00:00:00Z,Honda\n";
        let from_csv = load_hotlist_csv("t.csv", csv.as_bytes()).unwrap().entries[0].clone();
        let mut fields = EntryFields::default();
        for (name, value) in [
            ("List", " amber_alert "),
            ("plate", "7XK 229"),
            ("jurisdiction", "VA"),
            ("priority", "1"),
            ("expires_at", "2030-01-01T00:00:00Z"),
            ("description", ""),
            ("MAKE", "Honda"),
        ] {
            fields.set(name, value);
        }
        assert_eq!(
            fields.description, None,
            "an empty value leaves the column unset"
        );
        assert_eq!(entry_from_fields(fields).unwrap(), *from_csv);
    }

    #[test]
    fn refusals_name_the_column_and_value() {
        let fields = EntryFields {
            list: Some("a".into()),
            plate: Some("ABC123".into()),
            entered_at: Some("yesterday".into()),
            ..EntryFields::default()
        };
        let error = entry_from_fields(fields).unwrap_err();
        assert_eq!(
            error.to_string(),
            "entered_at \"yesterday\" is not an RFC 3339 time"
        );
        let error = entry_from_fields(EntryFields::default()).unwrap_err();
        assert_eq!(error.to_string(), "`list` is empty");
    }

    #[test]
    fn bolo_rows_need_a_description_and_are_refused_with_a_reason() {
        let csv = "list,plate,id,case_number,make,model,color,body_type,year_min,year_max,lat,lon,radius_m,reference_vectors\n\
                   local_bolo,,,DC-1,Honda,Civic,Silver,sedan,2016,2020,38.9,-77.03,500,\n\
                   local_bolo,7X?2*,w,,Toyota,,dark blue,,,,,,,\n\
                   photo_bolo,,p,,,,,,,,,,,\"[[0.6,0.8]]\"\n\
                   local_bolo,,,,,,,,,,,,,\n\
                   local_bolo,,,,,,plaid,,,,,,,\n\
                   local_bolo,,,,,,,,2015,,,,,\n\
                   local_bolo,,,,Ford,,,,,,38.9,,,\n\
                   stolen_vehicles,ABC123,,,,,,,2015,,,,,\n\
                   photo_bolo,,,,,,,,,,,,,\"[[0,0]]\"\n";
        let loaded = load_hotlist_csv("bolo.csv", csv.as_bytes()).unwrap();
        assert_eq!(loaded.entries.len(), 3, "{:?}", loaded.rejected);
        let civic = &loaded.entries[0];
        assert_eq!(civic.id, "BOLO/DC-1");
        assert_eq!(civic.plate, "");
        let description = civic.vehicle.as_deref().unwrap();
        assert_eq!(description.make.as_deref(), Some("honda"));
        assert_eq!(description.model.as_deref(), Some("civic"));
        assert_eq!(description.color.as_deref(), Some("silver"));
        assert_eq!(
            (description.year_min, description.year_max),
            (Some(2016), Some(2020))
        );
        assert_eq!(description.area.unwrap().radius_m, 500.0);
        // The agency's words stay on the alert as before.
        assert_eq!(civic.attributes["make"], "Honda");
        let witness = &loaded.entries[1];
        assert!(witness.partial);
        assert_eq!(
            witness.vehicle.as_deref().unwrap().color.as_deref(),
            Some("blue")
        );
        assert_eq!(
            loaded.entries[2]
                .vehicle
                .as_deref()
                .unwrap()
                .reference_vectors,
            vec![vec![0.6, 0.8]]
        );
        let reasons: Vec<(u64, &str)> = loaded
            .rejected
            .iter()
            .map(|row| (row.line, row.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(reasons[0].1.contains("describes no vehicle"), "{reasons:?}");
        assert!(reasons[1].1.contains("plaid"), "{reasons:?}");
        assert!(
            reasons[2].1.contains("reads carry no model year"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].1.contains("lat, lon and radius_m"),
            "{reasons:?}"
        );
        assert!(reasons[4].1.contains("BOLO rows only"), "{reasons:?}");
        assert!(reasons[5].1.contains("zeros"), "{reasons:?}");
    }
}
