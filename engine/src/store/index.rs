//! One list's immutable, indexed snapshot: every lookup a read needs is a hash probe into flat
//! arrays built once, so matching never scans the list and a snapshot can be shared by any number
//! of matching threads without locks.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

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

/// An immutable multimap from integer keys to entry positions in 8 bytes per key plus a bucket
/// directory: keys are not stored, only a 32-bit fingerprint, so a lookup can return a position
/// whose key merely shares the fingerprint. Callers verify every candidate against the entry.
#[derive(Debug, Default)]
pub(crate) struct StaticMultiMap {
    shift: u32,
    /// `offsets[bucket]..offsets[bucket + 1]` are the bucket's slots.
    offsets: Vec<u32>,
    /// (fingerprint, position).
    slots: Vec<[u32; 2]>,
}

impl StaticMultiMap {
    /// `pairs` is called twice and must yield the same (key, position) pairs both times: once to
    /// size the buckets, once to fill them, so building needs no temporary list of pairs.
    pub(crate) fn build(pairs: impl Fn(&mut dyn FnMut(u64, u32))) -> Self {
        let mut count = 0usize;
        pairs(&mut |_, _| count += 1);
        // About two slots per bucket: one cache line holds a bucket.
        let bits = (usize::BITS - (count / 2).max(1).leading_zeros()).clamp(1, 31);
        let shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut offsets = vec![0u32; buckets + 1];
        pairs(&mut |key, _| {
            offsets[(mix(key) >> shift) as usize + 1] += 1;
        });
        for bucket in 0..buckets {
            offsets[bucket + 1] += offsets[bucket];
        }
        let mut next = offsets.clone();
        let mut slots = vec![[0u32; 2]; count];
        pairs(&mut |key, position| {
            let hash = mix(key);
            let bucket = (hash >> shift) as usize;
            slots[next[bucket] as usize] = [hash as u32, position];
            next[bucket] += 1;
        });
        Self {
            shift,
            offsets,
            slots,
        }
    }

    /// Where `key`'s slots may be: (start, end, fingerprint). Split from [`Self::collect`] so a
    /// caller can locate several keys before reading any slot, letting the memory loads overlap.
    #[inline]
    pub(crate) fn locate(&self, key: u64) -> (u32, u32, u32) {
        if self.slots.is_empty() {
            return (0, 0, 0);
        }
        let hash = mix(key);
        let bucket = (hash >> self.shift) as usize;
        (self.offsets[bucket], self.offsets[bucket + 1], hash as u32)
    }

    #[inline]
    pub(crate) fn collect(&self, located: (u32, u32, u32), out: &mut Vec<u32>) {
        let (start, end, fingerprint) = located;
        for slot in &self.slots[start as usize..end as usize] {
            if slot[0] == fingerprint {
                out.push(slot[1]);
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u64, out: &mut Vec<u32>) {
        if self.slots.is_empty() {
            return;
        }
        let hash = mix(key);
        let bucket = (hash >> self.shift) as usize;
        let (start, end) = (self.offsets[bucket], self.offsets[bucket + 1]);
        for slot in &self.slots[start as usize..end as usize] {
            if slot[0] == hash as u32 {
                out.push(slot[1]);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.slots.capacity() * 8
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
    pub entries: Vec<Arc<HotlistEntry>>,
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
    /// Indexes `entries`; returns the entries refused (patterns beyond the unindexed bound).
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
        let bolos = super::bolo::BoloIndex::build(&entries);
        let list = Self {
            bolos,
            entries,
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
        out.retain(|&position| self.entries[position as usize].id == id);
    }

    /// Candidates for an exact or look-alike match (same length after folding).
    pub(crate) fn same_length_candidates(&self, read: &ReadKeys<'_>, out: &mut Vec<u32>) {
        self.by_class_key.get(read.class_key, out);
    }

    /// Candidates that differ from the read by one dropped or added character (and perhaps one
    /// look-alike substitution).
    pub(crate) fn indel_candidates(&self, read: &ReadKeys<'_>, out: &mut Vec<u32>) {
        // The read dropped a character: its key is one of the entry's deletions.
        let dropped = self.by_deletion.locate(read.class_key);
        // The read added a character: one of its deletions is the entry's key. All buckets are
        // located first so that their cache misses overlap instead of queueing.
        let deletions = read.class_deletions.as_slice();
        let mut located = [(0u32, 0u32, 0u32); MAX_READ_KEYS];
        for (slot, &key) in located.iter_mut().zip(deletions) {
            *slot = self.by_class_key.locate(key);
        }
        self.by_deletion.collect(dropped, out);
        for &bucket in &located[..deletions.len()] {
            self.by_class_key.collect(bucket, out);
        }
    }

    /// Indexes into `patterns` worth checking against the read.
    pub(crate) fn pattern_candidates(&self, read: &ReadKeys<'_>, out: &mut Vec<u32>) {
        if !self.patterns_by_gram.is_empty() {
            let grams = read.grams.as_slice();
            let mut located = [(0u32, 0u32, 0u32); MAX_READ_KEYS];
            for (slot, &gram) in located.iter_mut().zip(grams) {
                *slot = self.patterns_by_gram.locate(gram);
            }
            for &bucket in &located[..grams.len()] {
                self.patterns_by_gram.collect(bucket, out);
            }
        }
        out.extend_from_slice(&self.unindexed_patterns);
    }

    /// Bytes this snapshot holds beyond the entries themselves.
    pub(crate) fn index_heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Arc<HotlistEntry>>()
            + self.plates.capacity() * 8
            + self.by_class_key.heap_bytes()
            + self.by_deletion.heap_bytes()
            + self.by_id.heap_bytes()
            + self.patterns_by_gram.heap_bytes()
            + self.patterns.capacity() * std::mem::size_of::<(u32, PlatePattern)>()
            + self.unindexed_patterns.capacity() * 4
            + self.bolos.heap_bytes()
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
