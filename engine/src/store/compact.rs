//! A list's entries stored for matching rather than for reading. Matching touches only a few
//! fields of the few candidates a read has (expiry, jurisdiction, the misread switch), so those sit
//! in one fixed-size record per entry; everything an alert shows is packed into one byte arena and
//! decoded into a [`HotlistEntry`] only for a hit. Strings that repeat across a list (reasons,
//! plate types, who entered them, attribute names and values, jurisdictions) are stored once.
//!
//! Held as `Arc<HotlistEntry>`s, a 1M-entry NCIC list costs over 400 bytes an entry in struct
//! fields, string headers and allocator slack; packed, it costs about a tenth of that.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::hotlist::{default_entry_id, HotlistEntry};
use crate::read::Timestamp;

use super::index::unpack;

/// The fields matching reads for every candidate.
#[derive(Debug, Clone, Copy)]
struct HotFields {
    /// Milliseconds; `i64::MAX` when the entry never expires.
    expires_at: i64,
    /// Index into the shared strings plus one; 0 when the entry names no jurisdiction.
    jurisdiction: u32,
    priority: u8,
    flags: u8,
}

const PARTIAL: u8 = 1;
const MISREADS_OFF: u8 = 2;
const MISREADS_ON: u8 = 4;
/// `plate_norm` is stored in the arena: a pattern, or a plate the packed key cannot spell.
const PLATE_NORM_STORED: u8 = 8;
/// A vehicle description (BOLO), kept whole in `whole`: they are few, and their reference
/// vectors and areas are read by their own index anyway.
const KEPT_WHOLE: u8 = 16;
/// The entry named no priority: its list's `default_priority` applies.
const PRIORITY_UNSET: u8 = 32;

/// How an optional string field is written: a varint code, then the bytes of an inline string.
const CODE_NONE: u64 = 0;
const CODE_SAME_AS_ID: u64 = 1;
/// `2 + 2 × shared index`.
const CODE_SHARED_BASE: u64 = 2;
/// `3 + 2 × length`, followed by that many bytes.
const CODE_INLINE_BASE: u64 = 3;

/// Strings written once and referred to by index.
#[derive(Debug, Default)]
struct SharedStrings {
    strings: Vec<Box<str>>,
    /// Only while building: dropped by [`CompactEntries::finish`].
    lookup: HashMap<Box<str>, u32>,
}

impl SharedStrings {
    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&index) = self.lookup.get(text) {
            return index;
        }
        let index = self.strings.len() as u32;
        self.strings.push(text.into());
        self.lookup.insert(text.into(), index);
        index
    }

    fn get(&self, index: u64) -> &str {
        self.strings.get(index as usize).map_or("", |text| text)
    }
}

/// Entries of one list, by position; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct CompactEntries {
    list: String,
    hot: Vec<HotFields>,
    /// `cold_starts[position]..cold_starts[position + 1]` is the entry's arena record.
    cold_starts: Vec<u32>,
    arena: Vec<u8>,
    shared: SharedStrings,
    /// (position, entry) of the entries kept whole, by position.
    whole: Vec<(u32, Arc<HotlistEntry>)>,
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the arena record of one entry; the arena is written only by this module, so running out
/// of bytes means a bug, and decoding then yields empty values rather than panicking.
struct Record<'a> {
    bytes: &'a [u8],
}

impl<'a> Record<'a> {
    fn varint(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        while let Some((&byte, rest)) = self.bytes.split_first() {
            self.bytes = rest;
            if shift < 64 {
                value |= u64::from(byte & 0x7f) << shift;
            }
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        value
    }

    fn inline(&mut self, len: usize) -> &'a str {
        let len = len.min(self.bytes.len());
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        std::str::from_utf8(text).unwrap_or("")
    }
}

impl CompactEntries {
    pub(crate) fn with_capacity(list: &str, entries: usize) -> Self {
        let mut cold_starts = Vec::with_capacity(entries + 1);
        cold_starts.push(0);
        Self {
            list: list.to_owned(),
            hot: Vec::with_capacity(entries),
            cold_starts,
            arena: Vec::with_capacity(entries * 24),
            shared: SharedStrings::default(),
            whole: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.hot.len()
    }

    fn write_optional(&mut self, text: Option<&str>, id: &str, share: bool) {
        match text {
            None => write_varint(&mut self.arena, CODE_NONE),
            Some(text) if text == id => write_varint(&mut self.arena, CODE_SAME_AS_ID),
            Some(text) if share => {
                let index = self.shared.intern(text);
                write_varint(&mut self.arena, CODE_SHARED_BASE + 2 * u64::from(index));
            }
            Some(text) => {
                write_varint(&mut self.arena, CODE_INLINE_BASE + 2 * text.len() as u64);
                self.arena.extend_from_slice(text.as_bytes());
            }
        }
    }

    fn read_optional<'s>(&'s self, record: &mut Record<'s>, id: &'s str) -> Option<&'s str> {
        match record.varint() {
            CODE_NONE => None,
            CODE_SAME_AS_ID => Some(id),
            code if code % 2 == 0 => Some(self.shared.get((code - CODE_SHARED_BASE) / 2)),
            code => Some(record.inline(((code - CODE_INLINE_BASE) / 2) as usize)),
        }
    }

    /// Appends `entry`; `packed_plate` is the entry's packed `plate_norm` (0 for a pattern).
    pub(crate) fn push(&mut self, whole_entry: &Arc<HotlistEntry>, packed_plate: u64) {
        // Destructured without `..` so that a new field cannot be forgotten here.
        let HotlistEntry {
            list: _,
            plate,
            plate_norm,
            jurisdiction,
            reason,
            priority,
            priority_unset,
            case_number,
            description,
            expires_at,
            attributes,
            id,
            partial,
            plate_type,
            ncic_number,
            entered_by,
            entered_at,
            misreads,
            vehicle,
        } = &**whole_entry;
        let mut flags = 0;
        if vehicle.is_some() {
            flags |= KEPT_WHOLE;
            self.whole
                .push((self.hot.len() as u32, Arc::clone(whole_entry)));
        }
        if *partial {
            flags |= PARTIAL;
        }
        if *priority_unset {
            flags |= PRIORITY_UNSET;
        }
        match misreads {
            Some(false) => flags |= MISREADS_OFF,
            Some(true) => flags |= MISREADS_ON,
            None => {}
        }
        let plate_norm_derivable = !partial && unpack(packed_plate).as_str() == plate_norm;
        if !plate_norm_derivable {
            flags |= PLATE_NORM_STORED;
        }
        let jurisdiction_code = jurisdiction
            .as_deref()
            .map_or(0, |text| self.shared.intern(text) + 1);
        self.hot.push(HotFields {
            expires_at: expires_at.map_or(i64::MAX, Timestamp::millis),
            jurisdiction: jurisdiction_code,
            priority: *priority,
            flags,
        });

        if !plate_norm_derivable {
            self.write_optional(Some(plate_norm), "", false);
        }
        let default_id = default_entry_id(plate_norm, jurisdiction.as_deref());
        if *id == default_id {
            write_varint(&mut self.arena, CODE_NONE);
        } else {
            self.write_optional(Some(id), "", false);
        }
        // The plate as the agency wrote it is nearly always its normalized form.
        if plate == plate_norm {
            write_varint(&mut self.arena, CODE_SAME_AS_ID);
        } else {
            self.write_optional(Some(plate), "", false);
        }
        self.write_optional(reason.as_deref(), id, true);
        self.write_optional(case_number.as_deref(), id, false);
        self.write_optional(description.as_deref(), id, false);
        self.write_optional(plate_type.as_deref(), id, true);
        self.write_optional(ncic_number.as_deref(), id, false);
        self.write_optional(entered_by.as_deref(), id, true);
        match entered_at {
            None => write_varint(&mut self.arena, 0),
            Some(at) => {
                let millis = at.millis();
                // Zigzag, so times before 1970 stay short too.
                write_varint(&mut self.arena, ((millis << 1) ^ (millis >> 63)) as u64 + 1);
            }
        }
        write_varint(&mut self.arena, attributes.len() as u64);
        for (name, value) in attributes {
            let name = self.shared.intern(name);
            write_varint(&mut self.arena, u64::from(name));
            self.write_optional(Some(value), "", true);
        }
        self.cold_starts.push(self.arena.len() as u32);
    }

    /// Drops what only building needed and returns spare capacity.
    pub(crate) fn finish(&mut self) {
        self.shared.lookup = HashMap::new();
        self.hot.shrink_to_fit();
        self.cold_starts.shrink_to_fit();
        self.arena.shrink_to_fit();
        self.shared.strings.shrink_to_fit();
        self.whole.shrink_to_fit();
    }

    pub(crate) fn whole_entries(&self) -> impl Iterator<Item = &Arc<HotlistEntry>> + '_ {
        self.whole.iter().map(|(_, entry)| entry)
    }

    /// A value read from the entry's fixed-size fields, to pull them into the cache early.
    pub(crate) fn touch(&self, position: u32) -> u64 {
        self.hot[position as usize].expires_at as u64
    }

    pub(crate) fn is_expired_at(&self, position: u32, now: Timestamp) -> bool {
        self.hot[position as usize].expires_at <= now.millis()
    }

    /// `Some(false)` in the entry: exact matches only.
    pub(crate) fn misreads_off(&self, position: u32) -> bool {
        self.hot[position as usize].flags & MISREADS_OFF != 0
    }

    pub(crate) fn jurisdiction(&self, position: u32) -> Option<&str> {
        match self.hot[position as usize].jurisdiction {
            0 => None,
            code => Some(self.shared.get(u64::from(code - 1))),
        }
    }

    fn record(&self, position: u32) -> Record<'_> {
        let start = self.cold_starts[position as usize] as usize;
        let end = self.cold_starts[position as usize + 1] as usize;
        Record {
            bytes: self.arena.get(start..end).unwrap_or_default(),
        }
    }

    /// The entry's `plate_norm`, or `None` when it has to be unpacked from the packed plate.
    fn stored_plate_norm<'s>(&'s self, record: &mut Record<'s>, position: u32) -> Option<&'s str> {
        if self.hot[position as usize].flags & PLATE_NORM_STORED == 0 {
            return None;
        }
        self.read_optional(record, "")
    }

    /// Whether the entry's id is `id`: decodes only as far as the id.
    pub(crate) fn id_is(&self, position: u32, packed_plate: u64, id: &str) -> bool {
        let mut record = self.record(position);
        let stored = self.stored_plate_norm(&mut record, position);
        match self.read_optional(&mut record, "") {
            Some(own) => own == id,
            None => {
                let plate_norm = match stored {
                    Some(plate_norm) => plate_norm.to_owned(),
                    None => unpack(packed_plate).as_str().to_owned(),
                };
                default_entry_id(&plate_norm, self.jurisdiction(position)) == id
            }
        }
    }

    /// The whole entry, as it was pushed.
    pub(crate) fn entry(&self, position: u32, packed_plate: u64) -> Arc<HotlistEntry> {
        if self.hot[position as usize].flags & KEPT_WHOLE != 0 {
            if let Ok(found) = self
                .whole
                .binary_search_by_key(&position, |(kept, _)| *kept)
            {
                return Arc::clone(&self.whole[found].1);
            }
        }
        Arc::new(self.decode(position, packed_plate))
    }

    fn decode(&self, position: u32, packed_plate: u64) -> HotlistEntry {
        let hot = self.hot[position as usize];
        let mut record = self.record(position);
        let plate_norm = match self.stored_plate_norm(&mut record, position) {
            Some(stored) => stored.to_owned(),
            None => unpack(packed_plate).as_str().to_owned(),
        };
        let jurisdiction = self.jurisdiction(position).map(str::to_owned);
        let id = match self.read_optional(&mut record, "") {
            Some(id) => id.to_owned(),
            None => default_entry_id(&plate_norm, jurisdiction.as_deref()),
        };
        let plate = match self.read_optional(&mut record, &plate_norm) {
            Some(plate) => plate.to_owned(),
            None => plate_norm.clone(),
        };
        let mut optional = || self.read_optional(&mut record, &id).map(str::to_owned);
        let reason = optional();
        let case_number = optional();
        let description = optional();
        let plate_type = optional();
        let ncic_number = optional();
        let entered_by = optional();
        let entered_at = match record.varint() {
            0 => None,
            code => {
                let zigzag = code - 1;
                Some(Timestamp(((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)))
            }
        };
        let attribute_count = record.varint();
        let mut attributes = BTreeMap::new();
        for _ in 0..attribute_count {
            let name = self.shared.get(record.varint()).to_owned();
            let value = self.read_optional(&mut record, "").unwrap_or("").to_owned();
            attributes.insert(name, value);
        }
        HotlistEntry {
            list: self.list.clone(),
            plate,
            plate_norm,
            jurisdiction,
            reason,
            priority: hot.priority,
            priority_unset: hot.flags & PRIORITY_UNSET != 0,
            case_number,
            description,
            expires_at: (hot.expires_at != i64::MAX).then_some(Timestamp(hot.expires_at)),
            attributes,
            id,
            partial: hot.flags & PARTIAL != 0,
            plate_type,
            ncic_number,
            entered_by,
            entered_at,
            misreads: if hot.flags & MISREADS_OFF != 0 {
                Some(false)
            } else if hot.flags & MISREADS_ON != 0 {
                Some(true)
            } else {
                None
            },
            // Entries with a description are kept whole (see `KEPT_WHOLE`).
            vehicle: None,
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.hot.capacity() * std::mem::size_of::<HotFields>()
            + self.cold_starts.capacity() * 4
            + self.arena.capacity()
            + self
                .shared
                .strings
                .iter()
                .map(|text| text.len() + 16)
                .sum::<usize>()
            + self.list.capacity()
            + self.whole.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::super::index::pack;
    use super::*;

    fn packed(entry: &HotlistEntry) -> u64 {
        if entry.partial {
            0
        } else {
            pack(entry.plate_norm.bytes())
        }
    }

    #[test]
    fn every_field_survives_packing() {
        let mut full = HotlistEntry::new("stolen_vehicles", "abc-1234").unwrap();
        full.jurisdiction = Some("US-MD".to_owned());
        full.reason = Some("stolen vehicle".to_owned());
        full.priority = 2;
        full.case_number = Some("24-001234".to_owned());
        full.description = Some("silver Honda Civic, rear bumper damaged".to_owned());
        full.expires_at = Some(Timestamp(1_800_000_000_000));
        full.attributes
            .insert("make".to_owned(), "HONDA".to_owned());
        full.attributes
            .insert("color".to_owned(), "silver".to_owned());
        full.id = "V000123".to_owned();
        full.plate_type = Some("PC".to_owned());
        full.ncic_number = Some("V000123".to_owned());
        full.entered_by = Some("MDSP".to_owned());
        full.entered_at = Some(Timestamp(-86_400_000));
        full.misreads = Some(false);

        let minimal = HotlistEntry::new("stolen_vehicles", "7XK2").unwrap();
        let mut pattern = HotlistEntry::new("stolen_vehicles", "7X?2*").unwrap();
        pattern.misreads = Some(true);
        pattern.ncic_number = Some("N1".to_owned());

        let entries = [full, minimal, pattern].map(Arc::new);
        let mut compact = CompactEntries::with_capacity("stolen_vehicles", entries.len());
        for entry in &entries {
            compact.push(entry, packed(entry));
        }
        compact.finish();
        for (position, entry) in entries.iter().enumerate() {
            let position = position as u32;
            assert_eq!(&compact.entry(position, packed(entry)), entry);
            assert!(compact.id_is(position, packed(entry), &entry.id));
            assert!(!compact.id_is(position, packed(entry), "another"));
            assert_eq!(
                compact.jurisdiction(position),
                entry.jurisdiction.as_deref()
            );
            assert_eq!(
                compact.misreads_off(position),
                entry.misreads == Some(false)
            );
        }
        assert!(compact.is_expired_at(0, Timestamp(1_800_000_000_000)));
        assert!(!compact.is_expired_at(0, Timestamp(1_799_999_999_999)));
        assert!(!compact.is_expired_at(1, Timestamp(i64::MAX - 1)));
    }
}
