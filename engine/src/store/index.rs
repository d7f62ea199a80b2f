//! One list's immutable, indexed snapshot: every lookup a read needs is a hash probe into flat
//! arrays built once, so matching never scans the list and a snapshot can be shared by any number
//! of matching threads without locks.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::compact::CompactEntries;
use crate::hotlist::HotlistEntry;
use crate::misread::confusion_class;
use crate::pattern::{PatternToken, PlatePattern};

/// Patterns without two adjacent known characters cannot be keyed by a q-gram and are checked
/// against every read; this many per list keeps that cost bounded.
pub const MAX_UNINDEXED_PATTERNS: usize = 256;

/// 1..=36 for `0-9A-Z`; 0 for anything else (never produced by normalization).
fn character_code(character: u8) -> u64 {
    match character {
        b'0'..=b'9' => u64::from(character - b'0') + 1,
        b'A'..=b'Z' => u64::from(character - b'A') + 11,
        _ => 0,
    }
}

/// Packs up to 12 plate characters into one integer without collisions: base 37 with digits
/// 1..=36, so lengths never alias. Keys are integers so the index stores no strings.
pub(crate) fn pack(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0u64, |key, character| {
        key.wrapping_mul(37).wrapping_add(character_code(character))
    })
}

/// The characters a [`pack`]ed key spells, as long as every one was `0-9A-Z`.
#[derive(Clone, Copy)]
pub(crate) struct UnpackedPlate {
    bytes: [u8; 13],
    len: usize,
}

impl UnpackedPlate {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.bytes.len() - self.len..]).unwrap_or("")
    }
}

pub(crate) fn unpack(mut key: u64) -> UnpackedPlate {
    let mut plate = UnpackedPlate {
        bytes: [0; 13],
        len: 0,
    };
    while key != 0 && plate.len < plate.bytes.len() {
        let code = (key % 37) as u8;
        key /= 37;
        let character = match code {
            1..=10 => b'0' + code - 1,
            11..=36 => b'A' + code - 11,
            // Not a key `pack` made from plate characters.
            _ => {
                return UnpackedPlate {
                    bytes: [0; 13],
                    len: 0,
                }
            }
        };
        plate.len += 1;
        let slot = plate.bytes.len() - plate.len;
        plate.bytes[slot] = character;
    }
    plate
}

pub(crate) fn class_key_bytes(plate: &[u8]) -> impl Iterator<Item = u8> + '_ {
    plate.iter().map(|&character| confusion_class(character))
}

/// The packed keys of `key_bytes` with one character deleted, one per position (repeats kept).
pub(crate) fn deletion_keys(key_bytes: &[u8], out: &mut Vec<u64>) {
    out.clear();
    for skip in 0..key_bytes.len() {
        out.push(pack(
            key_bytes
                .iter()
                .enumerate()
                .filter(|(position, _)| *position != skip)
                .map(|(_, &character)| character),
        ));
    }
}

/// splitmix64's finalizer: cheap, and good enough in its top bits (the bucket) and low bits
/// (the fingerprint) for integer keys.
pub(crate) fn mix(key: u64) -> u64 {
    let mut x = key;
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// An immutable multimap from integer keys to entry positions, open-addressed with linear probing
/// at a load of at most 0.7: a lookup is one random memory access (rarely two), where a bucket
/// directory costs two dependent ones. Keys are not stored, only a 32-bit fingerprint, so a lookup
/// can return a position whose key merely shares the fingerprint: callers verify every candidate.
#[derive(Debug, Default)]
pub(crate) struct StaticMultiMap {
    /// (fingerprint, position + 1); a position of 0 marks an empty slot.
    slots: Vec<[u32; 2]>,
}

/// Where a key's probe sequence starts, and the fingerprint to look for along it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Located {
    start: u32,
    fingerprint: u32,
}

impl StaticMultiMap {
    /// `pairs` is called twice and must yield the same (key, position) pairs both times: once to
    /// size the table, once to fill it, so building needs no temporary list of pairs.
    pub(crate) fn build(pairs: impl Fn(&mut dyn FnMut(u64, u32))) -> Self {
        let mut count = 0usize;
        pairs(&mut |_, _| count += 1);
        if count == 0 {
            return Self::default();
        }
        let capacity = count * 10 / 7 + 8;
        let mut slots = vec![[0u32; 2]; capacity];
        pairs(&mut |key, position| {
            let hash = mix(key);
            let mut slot = Self::home(hash, capacity);
            while slots[slot][1] != 0 {
                slot += 1;
                if slot == capacity {
                    slot = 0;
                }
            }
            slots[slot] = [hash as u32, position + 1];
        });
        Self { slots }
    }

    /// The slot a hash starts probing at: the hash's top bits scaled to the table (no modulo).
    #[inline]
    fn home(hash: u64, capacity: usize) -> usize {
        ((u128::from(hash) * capacity as u128) >> 64) as usize
    }

    #[inline]
    pub(crate) fn locate(&self, key: u64) -> Located {
        if self.slots.is_empty() {
            return Located::default();
        }
        let hash = mix(key);
        Located {
            start: Self::home(hash, self.slots.len()) as u32,
            fingerprint: hash as u32,
        }
    }

    /// Loads the first slots of a probe sequence (two cache lines' worth) without looking at
    /// them; see [`IndexedList::plate_candidates`].
    #[inline]
    pub(crate) fn touch(&self, located: Located) -> u32 {
        if self.slots.is_empty() {
            return 0;
        }
        let start = located.start as usize;
        let further = (start + 7).min(self.slots.len() - 1);
        self.slots[start][0] ^ self.slots[further][0]
    }

    #[inline]
    pub(crate) fn collect(&self, located: Located, out: &mut Vec<u32>) {
        if self.slots.is_empty() {
            return;
        }
        let capacity = self.slots.len();
        let mut slot = located.start as usize;
        loop {
            let [fingerprint, position] = self.slots[slot];
            if position == 0 {
                return;
            }
            if fingerprint == located.fingerprint {
                out.push(position - 1);
            }
            slot += 1;
            if slot == capacity {
                slot = 0;
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u64, out: &mut Vec<u32>) {
        self.collect(self.locate(key), out);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }
}

/// Hashes the u32 positions the tombstone sets hold.
#[derive(Default)]
pub(crate) struct PositionHasher(u64);

impl Hasher for PositionHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value);
    }
}

pub(crate) type PositionSet = HashSet<u32, BuildHasherDefault<PositionHasher>>;

/// A q-gram key for partial-plate patterns: packed characters with the length folded in, so a
/// 2-gram and a 3-gram never share a key.
fn gram_key(gram: impl IntoIterator<Item = u8>, len: usize) -> u64 {
    (pack(gram) << 2) | len as u64
}

/// Keys of a read: a plate is at most `MAX_PLATE_LEN` characters, so its deletions (one per
/// character) and its 2- and 3-grams fit fixed arrays and a read costs no allocation.
const MAX_READ_KEYS: usize = 24;

#[derive(Clone, Copy)]
pub(crate) struct KeyArray {
    keys: [u64; MAX_READ_KEYS],
    len: usize,
}

impl KeyArray {
    fn new() -> Self {
        Self {
            keys: [0; MAX_READ_KEYS],
            len: 0,
        }
    }

    fn push(&mut self, key: u64) {
        // Reads longer than any plate are refused by normalization; if one gets here anyway it
        // is matched on the keys that fit.
        if self.len < MAX_READ_KEYS {
            self.keys[self.len] = key;
            self.len += 1;
        }
    }

    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.keys[..self.len]
    }
}

/// The keys a read is looked up by, computed once and used for every list.
pub(crate) struct ReadKeys<'a> {
    pub plate: &'a [u8],
    pub packed_plate: u64,
    pub class_key: u64,
    pub class_deletions: KeyArray,
    pub grams: KeyArray,
}

impl<'a> ReadKeys<'a> {
    pub(crate) fn new(plate: &'a str, with_misreads: bool, with_grams: bool) -> Self {
        let plate = plate.as_bytes();
        let mut class_deletions = KeyArray::new();
        if with_misreads && plate.len() <= MAX_READ_KEYS {
            // key without position i = prefix(0..i) * 37^(len-i-1) + suffix(i+1..len): all
            // deletions in two passes instead of one full pack per position.
            let len = plate.len();
            let mut suffixes = [0u64; MAX_READ_KEYS + 1];
            let mut powers = [1u64; MAX_READ_KEYS + 1];
            for position in (0..len).rev() {
                let weight = powers[len - 1 - position];
                suffixes[position] = suffixes[position + 1].wrapping_add(
                    character_code(confusion_class(plate[position])).wrapping_mul(weight),
                );
                powers[len - position] = weight.wrapping_mul(37);
            }
            let mut prefix = 0u64;
            for position in 0..len {
                let tail = suffixes[position + 1];
                class_deletions.push(
                    prefix
                        .wrapping_mul(powers[len - 1 - position])
                        .wrapping_add(tail),
                );
                prefix = prefix
                    .wrapping_mul(37)
                    .wrapping_add(character_code(confusion_class(plate[position])));
            }
        }
        let mut grams = KeyArray::new();
        if with_grams {
            for width in [2usize, 3] {
                for window in plate.windows(width) {
                    grams.push(gram_key(window.iter().copied(), width));
                }
            }
        }
        Self {
            plate,
            packed_plate: pack(plate.iter().copied()),
            class_key: pack(class_key_bytes(plate)),
            class_deletions,
            grams,
        }
    }
}

/// A list's entries and the indexes over them.
#[derive(Debug, Default)]
pub(crate) struct IndexedList {
    pub entries: CompactEntries,
    /// Packed `plate_norm` per position (0 for patterns): exact checks without touching entries.
    pub plates: Vec<u64>,
    /// Whole plates by the confusion key of the plate: exact and look-alike candidates.
    pub by_class_key: StaticMultiMap,
    /// Whole plates open to misreads by each one-deletion of their confusion key: reads that
    /// dropped a character.
    pub by_deletion: StaticMultiMap,
    /// Positions by a hash of the entry id, for upserts and deletes.
    pub by_id: StaticMultiMap,
    /// (position, pattern) of partial-plate entries.
    pub patterns: Vec<(u32, PlatePattern)>,
    /// Indexes into `patterns` by a q-gram of known characters.
    pub patterns_by_gram: StaticMultiMap,
    /// Indexes into `patterns` that have no two adjacent known characters.
    pub unindexed_patterns: Vec<u32>,
    /// BOLOs: vehicle descriptions and reference vectors.
    pub bolos: super::bolo::BoloIndex,
}

pub(crate) fn id_key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl IndexedList {
    /// Indexes `entries` (all of one list); returns the entries refused (patterns beyond the
    /// unindexed bound).
    pub(crate) fn build(entries: Vec<Arc<HotlistEntry>>) -> (Self, Vec<Arc<HotlistEntry>>) {
        let mut refused = Vec::new();
        let mut kept = Vec::with_capacity(entries.len());
        let mut patterns = Vec::new();
        let mut unindexed_patterns = Vec::new();
        for entry in entries {
            if !entry.partial {
                kept.push(entry);
                continue;
            }
            let Ok(pattern) = PlatePattern::parse(&entry.plate_norm) else {
                refused.push(entry);
                continue;
            };
            let indexable = pattern
                .known_runs()
                .first()
                .is_some_and(|run| run.len() >= 2);
            if !indexable {
                if unindexed_patterns.len() >= MAX_UNINDEXED_PATTERNS {
                    refused.push(entry);
                    continue;
                }
                unindexed_patterns.push(patterns.len() as u32);
            }
            patterns.push((kept.len() as u32, pattern));
            kept.push(entry);
        }
        let entries = kept;
        let plates: Vec<u64> = entries
            .iter()
            .map(|entry| {
                if entry.partial {
                    0
                } else {
                    pack(entry.plate_norm.bytes())
                }
            })
            .collect();

        let by_class_key = StaticMultiMap::build(|emit| {
            for (position, entry) in entries.iter().enumerate() {
                // Plate-less BOLOs are found through `bolos` only.
                if !entry.partial && !entry.plate_norm.is_empty() {
                    emit(
                        pack(class_key_bytes(entry.plate_norm.as_bytes())),
                        position as u32,
                    );
                }
            }
        });
        let by_deletion = StaticMultiMap::build(|emit| {
            let mut class_bytes = Vec::new();
            let mut deletions = Vec::new();
            for (position, entry) in entries.iter().enumerate() {
                if entry.partial || entry.plate_norm.is_empty() || entry.misreads == Some(false) {
                    continue;
                }
                class_bytes.clear();
                class_bytes.extend(class_key_bytes(entry.plate_norm.as_bytes()));
                deletion_keys(&class_bytes, &mut deletions);
                // Deleting either of two equal neighbours gives the same key: store it once.
                deletions.sort_unstable();
                deletions.dedup();
                for &key in &deletions {
                    emit(key, position as u32);
                }
            }
        });
        let by_id = StaticMultiMap::build(|emit| {
            for (position, entry) in entries.iter().enumerate() {
                emit(id_key(&entry.id), position as u32);
            }
        });
        let patterns_by_gram = StaticMultiMap::build(|emit| {
            for (index, (_, pattern)) in patterns.iter().enumerate() {
                let Some(run) = pattern.known_runs().first().copied() else {
                    continue;
                };
                if run.len() < 2 {
                    continue;
                }
                let width = run.len().min(3);
                let gram = run[..width].iter().map(|token| match token {
                    PatternToken::Known(character) => *character,
                    _ => 0,
                });
                emit(gram_key(gram, width), index as u32);
            }
        });
        let list_name = entries.first().map_or("", |entry| entry.list.as_str());
        let mut compact = CompactEntries::with_capacity(list_name, entries.len());
        for (entry, &packed) in entries.iter().zip(&plates) {
            compact.push(entry, packed);
        }
        compact.finish();
        let bolos = super::bolo::BoloIndex::build(&entries);
        let list = Self {
            bolos,
            entries: compact,
            plates,
            by_class_key,
            by_deletion,
            by_id,
            patterns,
            patterns_by_gram,
            unindexed_patterns,
        };
        (list, refused)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn has_patterns(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// Positions of entries with this id.
    pub(crate) fn positions_of(&self, id: &str, out: &mut Vec<u32>) {
        out.clear();
        self.by_id.get(id_key(id), out);
        out.retain(|&position| {
            self.entries
                .id_is(position, self.plates[position as usize], id)
        });
    }

    /// The entry at `position`, decoded.
    pub(crate) fn entry(&self, position: u32) -> Arc<HotlistEntry> {
        self.entries.entry(position, self.plates[position as usize])
    }

    /// The entries kept whole: those with a vehicle description.
    pub(crate) fn whole_entries(&self) -> impl Iterator<Item = &Arc<HotlistEntry>> + '_ {
        self.entries.whole_entries()
    }

    /// Every entry, decoded, in position order.
    pub(crate) fn all_entries(&self) -> impl Iterator<Item = Arc<HotlistEntry>> + '_ {
        (0..self.len() as u32).map(|position| self.entry(position))
    }

    /// Candidates for an exact or look-alike match (same length after folding) and, with
    /// `misreads`, for a match with one character dropped or added by the reader (and perhaps one
    /// look-alike substitution besides).
    ///
    /// Every probe is located and its first slots loaded before any is scanned: the loads do not
    /// depend on each other, so their cache misses overlap. Scanning straight away would stall on
    /// each miss in turn behind the branch that asks whether the slot is empty.
    pub(crate) fn plate_candidates(&self, read: &ReadKeys<'_>, misreads: bool, out: &mut Vec<u32>) {
        let (probes, count) = self.plate_probes(read, misreads);
        let probes = &probes[..count];
        let mut warmed = 0u32;
        for (map, located) in probes {
            warmed ^= map.touch(*located);
        }
        std::hint::black_box(warmed);
        for (map, located) in probes {
            map.collect(*located, out);
        }
    }

    /// Loads the first slots of every probe [`Self::plate_candidates`] will make for `read`,
    /// returning a value that depends on them (for `black_box`, so the loads happen).
    pub(crate) fn touch_plate_probes(&self, read: &ReadKeys<'_>, misreads: bool) -> u64 {
        if self.plates.is_empty() {
            return 0;
        }
        let (probes, count) = self.plate_probes(read, misreads);
        probes[..count].iter().fold(0u64, |warmed, (map, located)| {
            warmed ^ u64::from(map.touch(*located))
        })
    }

    #[allow(clippy::type_complexity)]
    fn plate_probes(
        &self,
        read: &ReadKeys<'_>,
        misreads: bool,
    ) -> ([(&StaticMultiMap, Located); MAX_READ_KEYS + 2], usize) {
        let mut probes = [(&self.by_class_key, Located::default()); MAX_READ_KEYS + 2];
        let mut count = 0;
        let mut add = |map, key: u64| {
            if count < probes.len() {
                probes[count] = (map, map.locate(key));
                count += 1;
            }
        };
        add(&self.by_class_key, read.class_key);
        if misreads {
            // The read dropped a character: its key is one of the entry's deletions.
            add(&self.by_deletion, read.class_key);
            // The read added one: one of its deletions is the entry's key.
            for &key in read.class_deletions.as_slice() {
                add(&self.by_class_key, key);
            }
        }
        (probes, count)
    }

    /// Loads the fixed-size fields of `positions`' entries, each independent of the others, so
    /// that checking the candidates one by one does not wait on one cache miss after another.
    pub(crate) fn touch_candidates(&self, positions: &[u32]) {
        let mut warmed = 0u64;
        for &position in positions {
            warmed ^= self.plates[position as usize] ^ self.entries.touch(position);
        }
        std::hint::black_box(warmed);
    }

    /// Indexes into `patterns` worth checking against the read.
    pub(crate) fn pattern_candidates(&self, read: &ReadKeys<'_>, out: &mut Vec<u32>) {
        if !self.patterns_by_gram.is_empty() {
            let grams = read.grams.as_slice();
            let mut located = [Located::default(); MAX_READ_KEYS];
            for (slot, &gram) in located.iter_mut().zip(grams) {
                *slot = self.patterns_by_gram.locate(gram);
            }
            for &bucket in &located[..grams.len()] {
                self.patterns_by_gram.collect(bucket, out);
            }
        }
        out.extend_from_slice(&self.unindexed_patterns);
    }

    /// Bytes the indexes hold, without the entries.
    pub(crate) fn index_heap_bytes(&self) -> usize {
        self.plates.capacity() * 8
            + self.by_class_key.heap_bytes()
            + self.by_deletion.heap_bytes()
            + self.by_id.heap_bytes()
            + self.patterns_by_gram.heap_bytes()
            + self.patterns.capacity() * std::mem::size_of::<(u32, PlatePattern)>()
            + self.unindexed_patterns.capacity() * 4
            + self.bolos.heap_bytes()
    }

    /// Bytes the entries and the indexes hold together.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.index_heap_bytes() + self.entries.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_never_aliases_plates_of_different_lengths() {
        assert_ne!(pack(*b"0"), pack(*b"00"));
        assert_ne!(pack(*b"A0"), pack(*b"0A"));
        assert!(pack(*b"ZZZZZZZZZZZZ") > pack(*b"ZZZZZZZZZZZ"));
    }

    #[test]
    fn a_multimap_returns_every_position_under_a_key() {
        let pairs = [(7u64, 1u32), (7, 2), (9, 3), (11, 4)];
        let map = StaticMultiMap::build(|emit| {
            for (key, position) in pairs {
                emit(key, position);
            }
        });
        let mut out = Vec::new();
        map.get(7, &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![1, 2]);
        out.clear();
        map.get(8, &mut out);
        assert!(out.is_empty());
        let empty = StaticMultiMap::build(|_| {});
        empty.get(7, &mut out);
        assert!(out.is_empty());
    }
}
