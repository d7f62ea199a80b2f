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
const fn code_of(character: u8) -> u8 {
    match character {
        b'0'..=b'9' => character - b'0' + 1,
        b'A'..=b'Z' => character - b'A' + 11,
        _ => 0,
    }
}

const fn code_tables() -> [[u8; 256]; 2] {
    let mut tables = [[0u8; 256]; 2];
    let mut character = 0;
    while character < 256 {
        tables[0][character] = code_of(character as u8);
        tables[1][character] = code_of(crate::misread::CLASS_OF[character]);
        character += 1;
    }
    tables
}

/// [`code_of`] each byte, and of each byte's look-alike class: a read's keys cost one table
/// lookup per character.
static CODES: [[u8; 256]; 2] = code_tables();

#[inline]
fn character_code(character: u8) -> u64 {
    u64::from(CODES[0][usize::from(character)])
}

#[inline]
fn class_code(character: u8) -> u64 {
    u64::from(CODES[1][usize::from(character)])
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

/// A read that added one character to a plate of `plate_len` characters, with the added
/// character at `j`, leaves three stretches of the plate in place, one of which is whole: the
/// plate's part from `a` on (`j < a`), its parts before `a` and from `b` on (`a <= j <= b`), or its
/// first `b + 1` characters (`j > b`). The plate is filed under all three in the `added` filter
/// and each of the read's deletions is asked under the one that applies, so all of them cost three
/// cache lines instead of one each. The stretches are five characters for a seven-character plate:
/// with fewer, serial formats' digit tails would crowd thousands of plates into one block.
#[inline]
fn added_segments(plate_len: usize) -> (usize, usize) {
    let a = (plate_len + 1) / 3;
    (a, a.max(plate_len.saturating_sub(1 + a)))
}

#[inline]
fn packed_codes(codes: &[u64]) -> u64 {
    codes
        .iter()
        .fold(0u64, |key, &code| key.wrapping_mul(37).wrapping_add(code))
}

#[inline]
fn added_anchor(packed: u64, plate_len: usize, stretch: u64) -> u64 {
    mix(packed ^ ((plate_len as u64) << 48) ^ (stretch << 56))
}

/// The `added` filter's three anchors of a plate's confusion codes.
fn plate_added_anchors(codes: &[u64]) -> [u64; 3] {
    let len = codes.len();
    let (a, b) = added_segments(len);
    let outer = packed_codes(&codes[..a])
        .wrapping_mul(37u64.wrapping_pow((len - b) as u32))
        .wrapping_add(packed_codes(&codes[b..]));
    [
        added_anchor(packed_codes(&codes[a..]), len, 0),
        added_anchor(outer, len, 1),
        added_anchor(packed_codes(&codes[..=b]), len, 2),
    ]
}

/// The anchors a read of `codes.len()` characters asks its deletions under, and the stretch
/// bounds `(a, b)` that pick one per deleted position (see [`added_segments`]), as the stretches
/// define them; [`ReadKeys::new`] makes the same from sums it has anyway.
#[cfg(test)]
fn read_added_anchors(codes: &[u64]) -> ([u64; 3], usize, usize) {
    let plate_len = codes.len() - 1;
    let (a, b) = added_segments(plate_len);
    let outer = packed_codes(&codes[..a])
        .wrapping_mul(37u64.wrapping_pow((plate_len - b) as u32))
        .wrapping_add(packed_codes(&codes[b + 1..]));
    let anchors = [
        added_anchor(packed_codes(&codes[a + 1..]), plate_len, 0),
        added_anchor(outer, plate_len, 1),
        added_anchor(packed_codes(&codes[..=b]), plate_len, 2),
    ];
    (anchors, a, b)
}

/// What a misread filter folds into a key's bits for the entry's jurisdiction, so that a read is
/// asked only about plates of its own state (and of none): a misread from another state is no hit
/// (see `HotlistStore::match_list`), and one indel turns many a state's serial format into
/// another's (`ABC1234` less a letter is a District plate), so without it a sixth of all reads
/// found such candidates only to drop them. 0 for an entry of any jurisdiction; never 0 otherwise.
pub(crate) fn jurisdiction_tag(jurisdiction: Option<&str>) -> u64 {
    jurisdiction.map_or(0, |code| {
        let bytes = code.as_bytes();
        // Codes are a few characters ("US-VA"): those of up to seven are packed whole, with their
        // length, into one word (no two alike), which every read can afford; longer ones hashed.
        let key = if bytes.len() <= 7 {
            bytes.iter().fold(bytes.len() as u64, |key, &byte| {
                (key << 8) | u64::from(byte)
            })
        } else {
            xxhash_rust::xxh3::xxh3_64(bytes)
        };
        mix(key) | 1
    })
}

/// Slots per bucket: one 64-byte cache line of (fingerprint, position + 1) pairs.
const BUCKET_SLOTS: usize = 8;

/// One cache line of slots, aligned so that a bucket never straddles two lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([[u32; 2]; BUCKET_SLOTS]);

/// One cache line of a [`KeyFilter`]: eight 64-bit words, one bit set in each per key.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct FilterBlock([u64; 8]);

impl FilterBlock {
    /// See [`KeyFilter::may_contain_either`].
    #[inline(always)]
    fn may_contain_either(&self, hash: u64, tag: u64, untagged: bool) -> bool {
        let block = &self.0;
        let tagged = hash ^ tag;
        let half = |words: std::ops::Range<usize>, hash: u64| {
            words.fold(0u64, |missing, word| {
                missing | (!block[word] & KeyFilter::bit(hash, word))
            }) == 0
        };
        let whole = |hash: u64| half(0..2, hash) && half(2..4, hash) && half(4..8, hash);
        whole(tagged) || (untagged && whole(hash))
    }
}

/// A split-block Bloom filter over key hashes (the layout of Parquet's and Impala's filters, with
/// 512-bit blocks): a key sets one bit in each word of one cache line, so asking costs one memory
/// access. Unlike those, the block can be picked by another hash than the bits (an anchor), and a
/// tag can be folded into the bits: see `plate_filters`.
///
/// Why a filter at all: nearly every read matches nothing, and a table of 1M entries' keys
/// (11 MB) or of their deletions (80 MB) spreads its lookups over more 4 KiB pages than the TLB
/// holds, so each probe pays a page walk and a DRAM access. Written here rather than taken from a
/// crate because matching loads a probe's block well before asking it (see
/// [`IndexedList::plate_candidates`]), which needs the block's address, and because of anchors
/// and tags.
#[derive(Debug, Default)]
struct KeyFilter {
    blocks: Vec<FilterBlock>,
}

impl KeyFilter {
    fn with_capacity(keys: usize, bits_per_key: usize) -> Self {
        let blocks = (keys * bits_per_key).div_ceil(512).max(1);
        Self {
            blocks: vec![FilterBlock::default(); blocks],
        }
    }

    /// The block from the hash's top bits; the bits from its low 48, six per word.
    #[inline]
    fn block_of(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.blocks.len() as u128) >> 64) as usize
    }

    #[inline]
    fn bit(hash: u64, word: usize) -> u64 {
        1 << ((hash >> (6 * word)) & 63)
    }

    #[inline]
    fn touch(&self, hash: u64) -> u32 {
        self.blocks[self.block_of(hash)].0[0] as u32
    }

    /// Sets `hash`'s bits in the block `anchor` picks. A key's bits may differ from its anchor
    /// (a tag folded in), and keys that share an anchor share a block, so asking about all of them
    /// costs one cache line.
    fn insert_anchored(&mut self, anchor: u64, hash: u64) {
        let block = self.block_of(anchor);
        for (word, bits) in self.blocks[block].0.iter_mut().enumerate() {
            *bits |= Self::bit(hash, word);
        }
    }

    /// Whether `hash` was inserted in `anchor`'s block with `tag` folded in or, when `untagged`
    /// (some key was filed with no tag), as it is: two questions answered from one cache line.
    /// A quarter of the block answers most absent keys, so the rest is asked only when it does
    /// not: a branch taken for few keys is cheap, and asking is most of matching's work.
    #[inline(always)]
    fn may_contain_either(&self, anchor: u64, hash: u64, tag: u64, untagged: bool) -> bool {
        self.block(anchor).may_contain_either(hash, tag, untagged)
    }

    /// The block `anchor` files its keys in, to ask about several keys of one anchor.
    #[inline(always)]
    fn block(&self, anchor: u64) -> &FilterBlock {
        &self.blocks[self.block_of(anchor)]
    }

    fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<FilterBlock>()
    }
}

/// An immutable multimap from integer keys to entry positions, open-addressed at a load of at most
/// 0.7. A key's home is a whole cache-line bucket and its pairs fill the bucket's first free slots
/// (spilling into the next bucket only when it is full), so a lookup is nearly always one random
/// memory access: with linear probing from a slot anywhere in a line, seven lookups in eight read
/// two lines. Keys are not stored, only a 32-bit fingerprint, so a lookup can return a position
/// whose key merely shares the fingerprint: callers verify every candidate. The plate maps,
/// probed for every read, are asked through [`KeyFilter`]s first (see `plate_filters`).
#[derive(Debug, Default)]
pub(crate) struct StaticMultiMap {
    /// A position of 0 marks an empty slot.
    buckets: Vec<Bucket>,
}

/// A probe the filter let through, kept between the steps of
/// [`IndexedList::batch_plate_candidates`].
#[derive(Clone, Copy)]
pub(crate) struct PassedProbe {
    read: u32,
    in_deletions: bool,
    located: Located,
}

/// A key's hash: where its probe sequence starts, the fingerprint to look for along it and its
/// filter bits.
#[derive(Clone, Copy, Default)]
pub(crate) struct Located {
    hash: u64,
}

impl Located {
    /// Where `key` is in any map: a map's bucket, fingerprint and filter bits all come from the
    /// key's hash alone, so a read's keys are hashed once for every list.
    #[inline]
    pub(crate) fn of(key: u64) -> Self {
        Self { hash: mix(key) }
    }
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
        let bucket_count = (count * 10 / 7).div_ceil(BUCKET_SLOTS) + 1;
        let mut buckets = vec![Bucket::default(); bucket_count];
        pairs(&mut |key, position| {
            let hash = mix(key);
            let mut bucket = Self::home(hash, bucket_count);
            loop {
                if let Some(slot) = buckets[bucket].0.iter_mut().find(|slot| slot[1] == 0) {
                    *slot = [hash as u32, position + 1];
                    return;
                }
                bucket += 1;
                if bucket == bucket_count {
                    bucket = 0;
                }
            }
        });
        Self { buckets }
    }

    /// The bucket a hash belongs to: the hash's top bits scaled to the table (no modulo).
    #[inline]
    fn home(hash: u64, bucket_count: usize) -> usize {
        ((u128::from(hash) * bucket_count as u128) >> 64) as usize
    }

    /// Loads the key's bucket without looking at it.
    #[inline(always)]
    pub(crate) fn touch_bucket(&self, located: Located) -> u32 {
        self.buckets
            .get(Self::home(located.hash, self.buckets.len()))
            .map_or(0, |bucket| bucket.0[0][0])
    }

    /// Appends the positions whose fingerprint is the key's.
    #[inline(never)]
    pub(crate) fn scan(&self, located: Located, out: &mut Vec<u32>) {
        if self.buckets.is_empty() {
            return;
        }
        let fingerprint = located.hash as u32;
        let mut bucket = Self::home(located.hash, self.buckets.len());
        loop {
            for [slot_fingerprint, position] in self.buckets[bucket].0 {
                if position == 0 {
                    return;
                }
                if slot_fingerprint == fingerprint {
                    out.push(position - 1);
                }
            }
            bucket += 1;
            if bucket == self.buckets.len() {
                bucket = 0;
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: u64, out: &mut Vec<u32>) {
        self.scan(Located::of(key), out);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
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
/// 2-gram and a 3-gram never share a key, and the plate position the gram must be at (see
/// [`GramPlace`]), so grams filed for different places never share a key either.
fn packed_gram_key(packed: u64, len: usize, place: GramPlace) -> u64 {
    let place = match place {
        GramPlace::Anywhere => 0,
        GramPlace::FromStart(at) => 1 + at as u64,
        GramPlace::FromEnd(before_end) => 1 + ANCHORED_PLACES as u64 + before_end as u64,
    };
    (((packed << 2) | len as u64) << 6) | place
}

/// Packed 2-grams are below 37²; 3-grams below 37³.
const PACKED_PAIRS: usize = 37 * 37;
const PACKED_TRIPLES: usize = 37 * 37 * 37;

/// Which 2- and 3-grams some pattern of the list is indexed by, one bit per possible gram
/// (6.5 KB): a read's dozen-odd grams are ruled out by a bit test each, without hashing, and only
/// a gram some pattern starts with costs a lookup.
#[derive(Debug, Default)]
pub(crate) struct GramSet {
    bits: Vec<u64>,
}

impl GramSet {
    /// The `len` under which a pair is filed as one that begins a pair or triple of the set.
    const LEADING_PAIR: usize = 0;

    /// Pairs, then triples, then the pairs that begin a pair or a triple of the set.
    fn slot(packed: u64, len: usize) -> usize {
        match len {
            2 => packed as usize,
            3 => PACKED_PAIRS + packed as usize,
            _ => PACKED_PAIRS + PACKED_TRIPLES + packed as usize,
        }
    }

    fn set(&mut self, slot: usize) {
        if self.bits.is_empty() {
            self.bits = vec![0; (2 * PACKED_PAIRS + PACKED_TRIPLES).div_ceil(64)];
        }
        if let Some(word) = self.bits.get_mut(slot / 64) {
            *word |= 1 << (slot % 64);
        }
    }

    fn insert(&mut self, packed: u64, len: usize) {
        self.set(Self::slot(packed, len));
        let leading_pair = if len == 3 { packed / 37 } else { packed };
        self.set(Self::slot(leading_pair, Self::LEADING_PAIR));
    }

    #[inline]
    fn contains(&self, packed: u64, len: usize) -> bool {
        let slot = Self::slot(packed, len);
        self.bits
            .get(slot / 64)
            .is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// Whether some pair or triple of the set begins with `pair`: for most of a read's positions
    /// it does not, and one question answers for both.
    #[inline]
    fn leads(&self, pair: u64) -> bool {
        self.contains(pair, Self::LEADING_PAIR)
    }
}

/// Keys of a read: a plate is at most `MAX_PLATE_LEN` characters, so its deletions (one per
/// character) fit a fixed array and a read costs no allocation.
const MAX_READ_KEYS: usize = crate::normalize::MAX_PLATE_LEN + 2;

/// `37^k` for every k a read's keys need: a packed key's place values.
const POWERS_OF_37: [u64; MAX_READ_KEYS + 1] = {
    let mut powers = [1u64; MAX_READ_KEYS + 1];
    let mut k = 1;
    while k <= MAX_READ_KEYS {
        powers[k] = powers[k - 1].wrapping_mul(37);
        k += 1;
    }
    powers
};

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

    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.keys[..self.len]
    }
}

/// The keys a read's plate is looked up by, computed once and used for every list. Kept small:
/// a batch of reads holds one each (partial-plate q-grams are made by the lists with patterns).
pub(crate) struct ReadKeys<'a> {
    pub plate: &'a [u8],
    pub packed_plate: u64,
    /// The plate's confusion key, located.
    pub class_key: Located,
    /// Each one-deletion of the confusion key, located ([`Located`]'s hash).
    pub class_deletions: KeyArray,
    /// The `added` filter anchors of the plates this read would be with one character added, and
    /// the stretch bounds that pick one per deletion (see [`added_segments`]).
    pub added_anchors: [u64; 3],
    pub added_stretches: (usize, usize),
    /// [`jurisdiction_tag`] of the read's jurisdiction; `None` when the reader gave none, which
    /// makes an entry of every state a candidate (or when the read's keys are for exact matching
    /// only).
    pub jurisdiction: Option<u64>,
}

impl<'a> ReadKeys<'a> {
    pub(crate) fn new(read: &'a crate::PlateRead, with_misreads: bool) -> Self {
        let plate = read.plate_norm.as_bytes();
        let mut class_deletions = KeyArray::new();
        let mut added_anchors = [0u64; 3];
        let mut added_stretches = (0, 0);
        let mut packed_plate = 0u64;
        let class_key = if plate.len() <= MAX_READ_KEYS {
            let len = plate.len();
            // Each character's look-alike class, coded once for the key and all its deletions;
            // `prefixes[k]` is the key of the first `k` classes.
            let mut codes = [0u64; MAX_READ_KEYS];
            let mut prefixes = [0u64; MAX_READ_KEYS + 1];
            for (position, &character) in plate.iter().enumerate() {
                let code = class_code(character);
                codes[position] = code;
                prefixes[position + 1] = prefixes[position].wrapping_mul(37).wrapping_add(code);
                packed_plate = packed_plate
                    .wrapping_mul(37)
                    .wrapping_add(character_code(character));
            }
            let key = prefixes[len];
            if with_misreads && len >= 1 {
                // Deleting position 0 leaves the key less its first place. Deleting position i
                // instead of i - 1 changes one place of the shorter key, place len - 1 - i, from
                // code i to code i - 1: each deletion is the last one plus that difference.
                let mut deletions = [0u64; MAX_READ_KEYS];
                let mut deleted = key.wrapping_sub(codes[0].wrapping_mul(POWERS_OF_37[len - 1]));
                deletions[0] = Located::of(deleted).hash;
                for position in 1..len {
                    let swapped = codes[position - 1].wrapping_sub(codes[position]);
                    deleted = deleted
                        .wrapping_add(swapped.wrapping_mul(POWERS_OF_37[len - 1 - position]));
                    deletions[position] = Located::of(deleted).hash;
                }
                class_deletions = KeyArray {
                    keys: deletions,
                    len,
                };
                if len >= 2 {
                    // The stretches of `read_added_anchors`: a suffix is the key less its prefix.
                    let suffix = |from: usize| {
                        key.wrapping_sub(prefixes[from].wrapping_mul(POWERS_OF_37[len - from]))
                    };
                    let plate_len = len - 1;
                    let (a, b) = added_segments(plate_len);
                    let outer = prefixes[a]
                        .wrapping_mul(POWERS_OF_37[plate_len - b])
                        .wrapping_add(suffix(b + 1));
                    added_anchors = [
                        added_anchor(suffix(a + 1), plate_len, 0),
                        added_anchor(outer, plate_len, 1),
                        added_anchor(prefixes[b + 1], plate_len, 2),
                    ];
                    added_stretches = (a, b);
                }
            }
            key
        } else {
            // Reads longer than any plate are refused by normalization; matched exactly if here.
            packed_plate = pack(plate.iter().copied());
            pack(class_key_bytes(plate))
        };
        Self {
            plate,
            packed_plate,
            class_key: Located::of(class_key),
            class_deletions,
            added_anchors,
            added_stretches,
            // Only the misread filters ask about the state.
            jurisdiction: read
                .jurisdiction
                .as_deref()
                .filter(|_| with_misreads)
                .map(|code| jurisdiction_tag(Some(code))),
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
    /// The confusion keys of the plates open to misreads, each with its entry's
    /// [`jurisdiction_tag`] folded in and filed under its three anchors (see [`added_segments`]):
    /// asks in three cache lines whether any of a read's deletions is such a key, where
    /// `by_class_key`'s own filter would take one line per deletion.
    added: KeyFilter,
    /// `by_class_key`'s keys, salted with [`WHOLE_PLATE`], and `by_deletion`'s, each with its
    /// entry's [`jurisdiction_tag`] folded in, all filed by the key's own hash: whether a read's
    /// key is a plate's and whether it is a plate's less one character come from one cache line.
    keys_and_deletions: KeyFilter,
    /// Whether some entry open to misreads has no jurisdiction: only then do the misread filters
    /// need asking about keys filed with no tag.
    untagged: bool,
    /// Positions by a hash of the entry id, for upserts and deletes.
    pub by_id: StaticMultiMap,
    /// (position, pattern) of partial-plate entries.
    pub patterns: Vec<(u32, PlatePattern)>,
    /// Indexes into `patterns` by a q-gram of known characters (and its place, for anchored
    /// grams: see [`PatternGram`]).
    pub patterns_by_gram: StaticMultiMap,
    /// The floating q-grams `patterns_by_gram` holds: looked for at every place of a read.
    pub pattern_grams: GramSet,
    /// The anchored q-grams `patterns_by_gram` holds, whatever their place: each looked for
    /// at its places only.
    pub anchored_pattern_grams: GramSet,
    /// Bit `k`: some gram is anchored `k` characters from the plate's start.
    pub anchored_starts: u16,
    /// Bit `k`: some gram begins `k` characters before the plate's end.
    pub anchored_ends: u16,
    /// Indexes into `patterns` that have no two adjacent known characters.
    pub unindexed_patterns: Vec<u32>,
    /// BOLOs: vehicle descriptions and reference vectors.
    pub bolos: super::bolo::BoloIndex,
}

/// The q-gram a pattern is indexed by: the first two or three characters of its longest run of
/// known characters, packed, with the width, and where a matching plate must have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PatternGram {
    packed: u64,
    width: usize,
    place: GramPlace,
}

/// Where a plate that fits a pattern has the pattern's [`PatternGram`]. `?`s and known
/// characters each stand for one character, so with no `*` before the gram it is a fixed number
/// of characters from the plate's start (`7X?2*`: 0, `??AB*`: 2); with no `*` after it, from the
/// plate's end (`*AB?1`: 4 before the end); after one `*` and before another, anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GramPlace {
    Anywhere,
    FromStart(usize),
    FromEnd(usize),
}

/// Places a gram can be anchored at, from either end: bits of `IndexedList::anchored_starts` and
/// `anchored_ends`. Plates are shorter.
const ANCHORED_PLACES: usize = 16;
const _: () = assert!(crate::normalize::MAX_PLATE_LEN < ANCHORED_PLACES);

fn pattern_index_gram(pattern: &PlatePattern) -> Option<PatternGram> {
    let tokens = pattern.tokens();
    let (start, run) = pattern.longest_known_run()?;
    if run.len() < 2 {
        return None;
    }
    let width = run.len().min(3);
    let gram = run[..width].iter().map(|token| match token {
        PatternToken::Known(character) => *character,
        _ => 0,
    });
    let any_run = |tokens: &[PatternToken]| {
        tokens
            .iter()
            .any(|token| matches!(token, PatternToken::AnyRun))
    };
    let before_end = tokens.len() - start;
    let place = if !any_run(&tokens[..start]) && start < ANCHORED_PLACES {
        GramPlace::FromStart(start)
    } else if !any_run(&tokens[start..]) && before_end < ANCHORED_PLACES {
        GramPlace::FromEnd(before_end)
    } else {
        GramPlace::Anywhere
    };
    Some(PatternGram {
        packed: pack(gram),
        width,
        place,
    })
}

/// Whether the entry's whole plate is matched with a character dropped or added.
fn open_to_misreads(entry: &HotlistEntry) -> bool {
    !entry.partial && !entry.plate_norm.is_empty() && entry.misreads != Some(false)
}

/// What `keys_and_deletions` folds into a whole plate's key: odd like a [`jurisdiction_tag`], so a
/// plate's key and a deletion never share their bits by construction.
const WHOLE_PLATE: u64 = 0x6a09_e667_f3bc_c909;

/// The filters in front of the plate probes: `added` (plates open to misreads by their three
/// anchors, each with its entry's [`jurisdiction_tag`] folded in, for reads that added a
/// character) and `keys_and_deletions` (every whole plate's key, and each one-deletion of those
/// open to misreads with the entry's tag folded in, for reads that dropped one). 10 bits per key
/// in the second: about 1 in 100 absent keys passes.
fn plate_filters(entries: &[Arc<HotlistEntry>]) -> (KeyFilter, KeyFilter, bool) {
    let whole = || {
        entries
            .iter()
            .filter(|entry| !entry.partial && !entry.plate_norm.is_empty())
    };
    let open = || entries.iter().filter(|entry| open_to_misreads(entry));
    let deletion_count: usize = open().map(|entry| entry.plate_norm.len()).sum();
    let mut added = KeyFilter::with_capacity(open().count() * 3, 16);
    let mut keys_and_deletions = KeyFilter::with_capacity(deletion_count + whole().count(), 10);
    for entry in whole() {
        let hash = mix(pack(class_key_bytes(entry.plate_norm.as_bytes())));
        keys_and_deletions.insert_anchored(hash, hash ^ WHOLE_PLATE);
    }
    let (mut class_bytes, mut codes, mut deletions) = (Vec::new(), Vec::new(), Vec::new());
    let mut untagged = false;
    for entry in open() {
        let tag = jurisdiction_tag(entry.jurisdiction.as_deref());
        untagged |= tag == 0;
        class_bytes.clear();
        class_bytes.extend(class_key_bytes(entry.plate_norm.as_bytes()));
        codes.clear();
        codes.extend(class_bytes.iter().map(|&class| character_code(class)));
        let hash = mix(packed_codes(&codes)) ^ tag;
        for anchor in plate_added_anchors(&codes) {
            added.insert_anchored(anchor, hash);
        }
        deletion_keys(&class_bytes, &mut deletions);
        for &key in &deletions {
            let deleted = mix(key);
            keys_and_deletions.insert_anchored(deleted, deleted ^ tag);
        }
    }
    (added, keys_and_deletions, untagged)
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
            let indexable = pattern_index_gram(&pattern).is_some();
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

        // Every read probes the plate maps and nearly always finds nothing: both are asked through
        // the filters of `plate_filters` first.
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
                if !open_to_misreads(entry) {
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
        let (added, keys_and_deletions, untagged) = plate_filters(&entries);
        let by_id = StaticMultiMap::build(|emit| {
            for (position, entry) in entries.iter().enumerate() {
                emit(id_key(&entry.id), position as u32);
            }
        });
        let mut pattern_grams = GramSet::default();
        let mut anchored_pattern_grams = GramSet::default();
        let mut anchored_starts = 0u16;
        let mut anchored_ends = 0u16;
        let grams: Vec<Option<PatternGram>> = patterns
            .iter()
            .map(|(_, pattern)| pattern_index_gram(pattern))
            .collect();
        let patterns_by_gram = StaticMultiMap::build(|emit| {
            for (index, gram) in grams.iter().enumerate() {
                if let Some(gram) = gram {
                    emit(
                        packed_gram_key(gram.packed, gram.width, gram.place),
                        index as u32,
                    );
                }
            }
        });
        for gram in grams.into_iter().flatten() {
            match gram.place {
                GramPlace::FromStart(at) => anchored_starts |= 1 << at,
                GramPlace::FromEnd(before_end) => anchored_ends |= 1 << before_end,
                GramPlace::Anywhere => {
                    pattern_grams.insert(gram.packed, gram.width);
                    continue;
                }
            }
            anchored_pattern_grams.insert(gram.packed, gram.width);
        }
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
            added,
            keys_and_deletions,
            untagged,
            by_id,
            patterns,
            patterns_by_gram,
            pattern_grams,
            anchored_pattern_grams,
            anchored_starts,
            anchored_ends,
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
        std::hint::black_box(self.touch_plate_filters(read, misreads));
        self.for_each_plate_probe(read, misreads, |map, located| map.scan(located, out));
    }

    /// The candidates of a whole batch of reads, as [`Self::plate_candidates`] finds them for one,
    /// appended to `positions` with one bound per read pushed to `bounds` (read `i`'s candidates
    /// end at `bounds[i]`). Found in steps, each taken for every read before the next: load the
    /// probes' filter blocks; ask the filters and load the buckets they let through; scan those;
    /// load the candidates' plates and hot fields. Each step's loads are independent of each
    /// other, so their cache misses overlap, where matching read by read waits on each in turn;
    /// and each probe is hashed and filtered once.
    pub(crate) fn batch_plate_candidates(
        &self,
        reads: &[ReadKeys<'_>],
        misreads: bool,
        passed: &mut Vec<PassedProbe>,
        positions: &mut Vec<u32>,
        bounds: &mut Vec<usize>,
    ) {
        let first = positions.len();
        if self.plates.is_empty() {
            bounds.extend(std::iter::repeat_n(first, reads.len()));
            return;
        }
        let mut warmed = 0u64;
        for read in reads {
            warmed ^= self.touch_plate_filters(read, misreads);
        }
        passed.clear();
        for (index, read) in reads.iter().enumerate() {
            self.for_each_plate_probe(read, misreads, |map, located| {
                warmed ^= u64::from(map.touch_bucket(located));
                passed.push(PassedProbe {
                    read: index as u32,
                    in_deletions: std::ptr::eq(map, &self.by_deletion),
                    located,
                });
            });
        }
        std::hint::black_box(warmed);
        let mut probes = passed.iter().peekable();
        for index in 0..reads.len() as u32 {
            while let Some(probe) = probes.next_if(|probe| probe.read == index) {
                let map = if probe.in_deletions {
                    &self.by_deletion
                } else {
                    &self.by_class_key
                };
                map.scan(probe.located, positions);
            }
            bounds.push(positions.len());
        }
        std::hint::black_box(self.warm_candidates(&positions[first..]));
    }

    /// Loads every filter line [`Self::for_each_plate_probe`] will ask about the read.
    #[inline(always)]
    fn touch_plate_filters(&self, read: &ReadKeys<'_>, misreads: bool) -> u64 {
        if self.by_class_key.is_empty() {
            return 0;
        }
        let mut warmed = u64::from(self.keys_and_deletions.touch(read.class_key.hash));
        if misreads && !self.by_deletion.is_empty() {
            if read.jurisdiction.is_some() {
                if !read.class_deletions.as_slice().is_empty() {
                    for anchor in read.added_anchors {
                        warmed ^= u64::from(self.added.touch(anchor));
                    }
                }
            } else {
                for &hash in read.class_deletions.as_slice() {
                    warmed ^= u64::from(self.keys_and_deletions.touch(hash));
                }
            }
        }
        warmed
    }

    /// Calls `visit` with each map and located key a read's plate is looked up by, among those
    /// the filters let through. Misread probes are filtered for plates of the read's state or of
    /// none; a read of unknown state asks about its deletions as whole plates of any state.
    #[inline(always)]
    fn for_each_plate_probe(
        &self,
        read: &ReadKeys<'_>,
        misreads: bool,
        mut visit: impl FnMut(&StaticMultiMap, Located),
    ) {
        if self.by_class_key.is_empty() {
            return;
        }
        let filter = &self.keys_and_deletions;
        let hash = read.class_key.hash;
        if filter.may_contain_either(hash, hash, WHOLE_PLATE, false) {
            visit(&self.by_class_key, read.class_key);
        }
        if !misreads || self.by_deletion.is_empty() {
            return;
        }
        match read.jurisdiction {
            Some(tag) => {
                // The read dropped a character: its key is one of the entry's deletions.
                if filter.may_contain_either(hash, hash, tag, self.untagged) {
                    visit(&self.by_deletion, read.class_key);
                }
                // The read added one: one of its deletions is the entry's key. The deletions of
                // positions `..a`, `a..=b` and `b + 1..` are asked under one anchor each.
                let deletions = read.class_deletions.as_slice();
                let (a, b) = read.added_stretches;
                let a = a.min(deletions.len());
                let (before, rest) = deletions.split_at(a);
                let (middle, after) = rest.split_at((b + 1).saturating_sub(a).min(rest.len()));
                for (hashes, anchor) in [before, middle, after].into_iter().zip(read.added_anchors)
                {
                    let block = self.added.block(anchor);
                    for &hash in hashes {
                        if block.may_contain_either(hash, tag, self.untagged) {
                            visit(&self.by_class_key, Located { hash });
                        }
                    }
                }
            }
            None => {
                visit(&self.by_deletion, read.class_key);
                for &hash in read.class_deletions.as_slice() {
                    if filter.may_contain_either(hash, hash, WHOLE_PLATE, false) {
                        visit(&self.by_class_key, Located { hash });
                    }
                }
            }
        }
    }

    /// Loads the fixed-size fields of `positions`' entries, each independent of the others, so
    /// that checking the candidates one by one does not wait on one cache miss after another.
    pub(crate) fn touch_candidates(&self, positions: &[u32]) {
        std::hint::black_box(self.warm_candidates(positions));
    }

    fn warm_candidates(&self, positions: &[u32]) -> u64 {
        positions.iter().fold(0u64, |warmed, &position| {
            warmed ^ self.plates[position as usize] ^ self.entries.touch(position)
        })
    }

    /// Indexes into `patterns` worth checking against the read.
    pub(crate) fn pattern_candidates(&self, read: &ReadKeys<'_>, out: &mut Vec<u32>) {
        if !self.patterns_by_gram.is_empty() {
            let plate = read.plate;
            let anchored = &self.anchored_pattern_grams;
            let mut starts = self.anchored_starts;
            while starts != 0 {
                let at = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                if at + 1 >= plate.len() {
                    break;
                }
                self.gram_candidates(anchored, plate, at, GramPlace::FromStart(at), out);
            }
            let mut ends = self.anchored_ends;
            while ends != 0 {
                // A gram is at least two characters, so at least two before the end.
                let before_end = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                if before_end > plate.len() {
                    break;
                }
                let at = plate.len() - before_end;
                self.gram_candidates(anchored, plate, at, GramPlace::FromEnd(before_end), out);
            }
            if !self.pattern_grams.bits.is_empty() {
                for start in 0..plate.len().saturating_sub(1) {
                    self.gram_candidates(
                        &self.pattern_grams,
                        plate,
                        start,
                        GramPlace::Anywhere,
                        out,
                    );
                }
            }
        }
        out.extend_from_slice(&self.unindexed_patterns);
    }

    /// The patterns filed under the plate's pair or triple at `start`, among `grams`, which
    /// answers without a lookup for most places.
    #[inline(always)]
    fn gram_candidates(
        &self,
        grams: &GramSet,
        plate: &[u8],
        start: usize,
        place: GramPlace,
        out: &mut Vec<u32>,
    ) {
        let (Some(&first), Some(&second)) = (plate.get(start), plate.get(start + 1)) else {
            return;
        };
        let pair = character_code(first) * 37 + character_code(second);
        if !grams.leads(pair) {
            return;
        }
        if grams.contains(pair, 2) {
            self.patterns_by_gram
                .get(packed_gram_key(pair, 2, place), out);
        }
        if let Some(&third) = plate.get(start + 2) {
            let triple = pair * 37 + character_code(third);
            if grams.contains(triple, 3) {
                self.patterns_by_gram
                    .get(packed_gram_key(triple, 3, place), out);
            }
        }
    }

    /// Bytes the indexes hold, without the entries.
    pub(crate) fn index_heap_bytes(&self) -> usize {
        self.plates.capacity() * 8
            + self.by_class_key.heap_bytes()
            + self.by_deletion.heap_bytes()
            + self.added.heap_bytes()
            + self.keys_and_deletions.heap_bytes()
            + self.by_id.heap_bytes()
            + self.patterns_by_gram.heap_bytes()
            + self.pattern_grams.bits.capacity() * 8
            + self.anchored_pattern_grams.bits.capacity() * 8
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

    /// The character that represents the look-alike class with this code, if one does.
    fn representative(code: u64) -> Option<char> {
        (0u8..=255)
            .find(|&character| {
                class_code(character) == code && confusion_class(character) == character
            })
            .map(char::from)
    }

    #[test]
    fn every_deletion_of_a_read_is_asked_under_an_anchor_its_plate_is_filed_under() {
        // Plates of 1..=10 characters, every position and character a reader could add.
        let alphabet: Vec<u64> = (1..=36u64)
            .filter(|&code| representative(code).is_some())
            .collect();
        for len in 1..=10usize {
            let plate: Vec<u64> = (0..len)
                .map(|i| alphabet[(i * 7 + len) % alphabet.len()])
                .collect();
            let filed = plate_added_anchors(&plate);
            for at in 0..=len {
                for &added in &alphabet[..5] {
                    let mut read = plate.clone();
                    read.insert(at, added);
                    let (asked, a, b) = read_added_anchors(&read);
                    let stretch = usize::from(at >= a) + usize::from(at > b);
                    let text: String = read
                        .iter()
                        .map(|&code| representative(code).expect("a class representative"))
                        .collect();
                    let plate_read: crate::PlateRead = serde_json::from_value(serde_json::json!({
                        "vendor": "t", "reader_id": "r", "observed_at": "2026-11-24T17:00:00Z",
                        "plate": text, "plate_norm": text, "jurisdiction": "US-VA",
                        "confidence": 0.9
                    }))
                    .expect("a minimal read");
                    let keys = ReadKeys::new(&plate_read, true);
                    assert_eq!((keys.added_anchors, keys.added_stretches), (asked, (a, b)));
                    assert_eq!(
                        asked[stretch], filed[stretch],
                        "plate of {len}, character added at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn packing_never_aliases_plates_of_different_lengths() {
        assert_ne!(pack(*b"0"), pack(*b"00"));
        assert_ne!(pack(*b"A0"), pack(*b"0A"));
        assert!(pack(*b"ZZZZZZZZZZZZ") > pack(*b"ZZZZZZZZZZZ"));
    }

    #[test]
    fn a_tagged_filter_finds_every_key_under_its_tag_and_lets_few_others_through() {
        let tags = [
            jurisdiction_tag(Some("US-VA")),
            jurisdiction_tag(Some("US-MD")),
        ];
        let keys: Vec<u64> = (0..50_000u64).map(|i| mix(i * 7 + 3)).collect();
        let mut filter = KeyFilter::with_capacity(keys.len(), 10);
        for (i, &hash) in keys.iter().enumerate() {
            filter.insert_anchored(hash, hash ^ tags[i % 2]);
        }
        for (i, &hash) in keys.iter().enumerate() {
            assert!(filter.may_contain_either(hash, hash, tags[i % 2], false));
        }
        // The same keys asked under the other state, and absent keys under either.
        let other_state = keys
            .iter()
            .enumerate()
            .filter(|&(i, &hash)| filter.may_contain_either(hash, hash, tags[(i + 1) % 2], false))
            .count();
        let absent = (0..50_000u64)
            .map(|i| mix(i * 7 + 5))
            .filter(|&hash| filter.may_contain_either(hash, hash, tags[0], false))
            .count();
        // 10 bits per key: about 1 in 100 in theory; the bounds leave room for block skew.
        assert!(
            other_state < 1_500,
            "{other_state} of 50,000 passed under the other state"
        );
        assert!(absent < 1_500, "{absent} of 50,000 absent keys passed");
    }

    #[test]
    fn a_full_bucket_spills_into_the_next_and_every_position_is_still_found() {
        // Far more pairs under one key than a bucket holds.
        let map = StaticMultiMap::build(|emit| {
            for position in 0..100u32 {
                emit(42, position);
            }
            emit(43, 100);
        });
        let mut out = Vec::new();
        map.get(42, &mut out);
        out.sort_unstable();
        assert_eq!(out, (0..100).collect::<Vec<u32>>());
        out.clear();
        map.get(43, &mut out);
        assert_eq!(out, vec![100]);
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
