//! Duplicate suppression: readers report a vehicle once per frame (and once per lane camera) while
//! it is in view. Reports of the same normalized plate at the same reader within a window collapse
//! into one read: the pass's first report gives its identity (`read_id`, source position), the
//! most confident report gives its content (plate text, confidence, jurisdiction, attributes,
//! images), its earliest and latest reports its span (`observed_at`, `last_observed_at`), and
//! `frames` counts the reports.
//!
//! Matching does not wait for the window: every report is matched at once (an officer must not
//! wait seconds for an alert), and alerts of folded reports point at the pass's read.
//!
//! A held read is released when its reader's clock has moved past the window, when it has been held
//! for the window in wall-clock time (a reader that went quiet), or when the caller flushes it —
//! which the stream engine does before it makes a partition's archive durable, so a held read can
//! never be left behind by a commit.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use crate::read::{PlateRead, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct DedupeConfig {
    /// Reports within this time of a pass's first report belong to the pass.
    pub window: Duration,
    /// Archive every folded report too, marked with `duplicate_of`.
    pub keep_duplicates: bool,
    /// How long (ingest time) a released pass is remembered, so that a report of it sent again
    /// (a vendor's retry, a producer's resend) folds into it instead of being archived a second
    /// time. Zero forgets a pass when it is released.
    pub resend_horizon: Duration,
}

impl Default for DedupeConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3),
            keep_duplicates: false,
            resend_horizon: Duration::from_secs(300),
        }
    }
}

/// A pass's reader and plate as one 128-bit hash: looking a report up allocates nothing, and a
/// collision between two (reader, plate) pairs is as unlikely as one between read ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PassKey(u128);

impl PassKey {
    fn of(read: &PlateRead) -> Self {
        let (reader, plate) = (read.reader_id.as_bytes(), read.plate_norm.as_bytes());
        // One call over the joined bytes: the streaming hasher copies its input into a buffer
        // first, which showed in profiles of the consuming thread.
        let mut joined = [0u8; 128];
        let length = reader.len() + 1 + plate.len();
        if let Some(joined) = joined.get_mut(..length) {
            let (reader_part, rest) = joined.split_at_mut(reader.len());
            reader_part.copy_from_slice(reader);
            if let Some(plate_part) = rest.get_mut(1..) {
                plate_part.copy_from_slice(plate);
            }
            return Self(xxhash_rust::xxh3::xxh3_128(joined));
        }
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(reader);
        hasher.update(&[0]);
        hasher.update(plate);
        Self(hasher.digest128())
    }
}

/// A reader id as a 64-bit hash, the key of the reader clocks. Two readers whose ids collide
/// would share a clock (their passes could end early by the other's time, never be lost); with
/// thousands of readers that is about as likely as two equal read ids.
fn reader_key(reader_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(reader_id.as_bytes())
}

/// The hasher of maps whose keys are hashes already: the key's low 64 bits are the hash. The
/// default SipHash of those keys (and of reader id strings) was a tenth of the consuming thread.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by the keys of this module; kept correct for any other key.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }

    fn write_u128(&mut self, hash: u128) {
        self.0 = u64::try_from(hash & u128::from(u64::MAX)).unwrap_or_default();
    }
}

pub(crate) type Prehashed = BuildHasherDefault<PrehashedKey>;

#[derive(Debug)]
struct HeldRead {
    read: PlateRead,
    /// Ingest time when the pass began, for the wall-clock release.
    held_since: Timestamp,
    /// Which pass of its key this is: the queues name passes by key and number, so an entry of
    /// a pass that already left (released, flushed, or ended by a later report of the plate) is
    /// told apart from the newer pass holding the key.
    pass: u64,
}

/// A released pass, remembered so that a report of it sent again is folded into it.
#[derive(Debug)]
struct RememberedPass {
    first_ms: i64,
    read_id: RememberedId,
    partition: u64,
}

/// A read id kept without an allocation when it is as short as the derived ones (28 characters):
/// every pass is remembered, so this is on the consuming thread's path.
#[derive(Debug)]
enum RememberedId {
    Inline { bytes: [u8; 32], len: u8 },
    Boxed(Box<str>),
}

impl RememberedId {
    fn of(read_id: &str) -> Self {
        match read_id.as_bytes() {
            short if short.len() <= 32 => {
                let mut bytes = [0; 32];
                bytes[..short.len()].copy_from_slice(short);
                Self::Inline {
                    bytes,
                    len: short.len() as u8,
                }
            }
            _ => Self::Boxed(read_id.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Boxed(text) => text,
        }
    }
}

/// The topic and partition a pass came from, as a hash: a partition that moves away takes its
/// remembered passes with it (see [`DuplicateSuppressor::forget_partition`]).
fn partition_tag(topic: &str, partition: i32) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(topic.as_bytes(), u64::from(partition.unsigned_abs())) | 1
}

/// One reader's clock and its passes, soonest to end first.
#[derive(Debug)]
struct ReaderPasses {
    /// The latest observation time the reader reported: its own clock decides when its passes
    /// end, so one reader with a wrong clock cannot end (or hold) everyone else's.
    clock: Timestamp,
    /// (when the pass ends, pass number, key). By end time, not arrival: a reader's reports come
    /// through several partitions, and one partition consumed ahead of another puts newer passes
    /// in front of older ones.
    passes: BinaryHeap<Reverse<(i64, u64, PassKey)>>,
    /// Whether the reader is in [`DuplicateSuppressor::moved`] already.
    moved: bool,
}

/// What became of an offered report.
#[derive(Debug, Clone, PartialEq)]
pub enum Offered {
    /// The first report of a pass: held until the pass ends.
    NewPass,
    /// Folded into a held pass whose read has this id. With `keep_duplicates`, the report comes
    /// back to be archived as a duplicate row.
    Folded {
        pass_read_id: String,
        duplicate: Option<Box<PlateRead>>,
    },
}

#[derive(Debug)]
pub struct DuplicateSuppressor {
    config: DedupeConfig,
    window_ms: i64,
    held: HashMap<PassKey, HeldRead, Prehashed>,
    /// Passes in the order they began, for the wall-clock release; entries whose pass already
    /// left `held` are skipped.
    began: VecDeque<(Timestamp, u64, PassKey)>,
    /// Per reader ([`reader_key`]): its clock and its passes, so that a pass ends as soon as its
    /// own reader has moved past it. With one queue for all readers, a quiet reader's pass at the
    /// front held every later pass of every reader behind it: 70,000 passes at once while the
    /// engine drained a backlog, where about 3 s of each reader's reads are needed.
    readers: HashMap<u64, ReaderPasses, Prehashed>,
    /// Readers whose clock moved since the last [`Self::release_due`].
    moved: Vec<u64>,
    passes_begun: u64,
    /// The latest pass released within the resend horizon of each key: its first observation
    /// time, read id and [`partition_tag`]. One per key: a vehicle passing the same reader twice
    /// within the horizon and resent for its first pass is the rare case left out.
    released: HashMap<PassKey, RememberedPass, Prehashed>,
    /// (ingest time of the release, key, first observation time), oldest first, to forget them.
    released_order: VecDeque<(i64, PassKey, i64)>,
    /// The keys of the passes pushed to the caller's `released` since the last
    /// [`Self::remember_released`], in the same order: known where a pass is released, so a
    /// pass's key is not hashed again to remember it.
    released_keys: Vec<PassKey>,
    resend_horizon_ms: i64,
    /// The latest ingest time offered or released at: what a flush counts its releases from.
    latest_now: Timestamp,
}

impl DuplicateSuppressor {
    pub fn new(config: DedupeConfig) -> Self {
        let window_ms = i64::try_from(config.window.as_millis()).unwrap_or(i64::MAX);
        Self {
            window_ms,
            held: HashMap::default(),
            began: VecDeque::new(),
            readers: HashMap::default(),
            moved: Vec::new(),
            passes_begun: 0,
            released: HashMap::default(),
            released_order: VecDeque::new(),
            released_keys: Vec::new(),
            resend_horizon_ms: i64::try_from(config.resend_horizon.as_millis()).unwrap_or(i64::MAX),
            latest_now: Timestamp::from_millis(i64::MIN),
            config,
        }
    }

    /// How many released passes are remembered for resent reports.
    pub fn remembered_count(&self) -> usize {
        self.released.len()
    }

    /// Remembers `released` (passes just released), and forgets those past the horizon or
    /// beyond [`MAX_REMEMBERED`].
    fn remember_released(&mut self, released: &[PlateRead]) {
        debug_assert_eq!(self.released_keys.len(), released.len());
        if self.resend_horizon_ms == 0 {
            self.released_keys.clear();
            return;
        }
        let now = self.latest_now.millis();
        for (pass, key) in released.iter().zip(self.released_keys.drain(..)) {
            let first_ms = pass.observed_at.millis();
            self.released.insert(
                key,
                RememberedPass {
                    first_ms,
                    read_id: RememberedId::of(&pass.read_id),
                    partition: pass
                        .source
                        .as_ref()
                        .map_or(0, |source| partition_tag(&source.topic, source.partition)),
                },
            );
            self.released_order.push_back((now, key, first_ms));
        }
        while let Some(&(released_at, key, first_ms)) = self.released_order.front() {
            let within_horizon = now.saturating_sub(released_at) < self.resend_horizon_ms;
            if within_horizon && self.released_order.len() <= MAX_REMEMBERED {
                break;
            }
            self.released_order.pop_front();
            // A later pass of the key may have taken its place: that one stays.
            if self
                .released
                .get(&key)
                .is_some_and(|pass| pass.first_ms == first_ms)
            {
                self.released.remove(&key);
            }
        }
    }

    /// The read id of a released pass this report belongs to (within the window of its first
    /// report), if one is remembered.
    fn released_pass_of(&self, key: &PassKey, report: &PlateRead) -> Option<&str> {
        let observed = report.observed_at.millis();
        self.released
            .get(key)
            .filter(|pass| (-self.window_ms..=self.window_ms).contains(&(observed - pass.first_ms)))
            .map(|pass| pass.read_id.as_str())
    }

    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Whether [`Self::offer`] would fold this report into a held or released pass and leave it
    /// out of the archive (folded, and duplicates are not kept).
    pub fn would_drop(&self, read: &PlateRead) -> bool {
        if self.config.keep_duplicates {
            return false;
        }
        let key = PassKey::of(read);
        let held = self
            .held
            .get(&key)
            .is_some_and(|held| within_pass(self.window_ms, &held.read, read));
        held || self.released_pass_of(&key, read).is_some()
    }

    /// Offers a normalized report; a pass it ends (same plate and reader, outside the window) goes
    /// to `released`. `now` is the ingest time.
    pub fn offer(
        &mut self,
        read: PlateRead,
        now: Timestamp,
        released: &mut Vec<PlateRead>,
    ) -> Offered {
        let reader_id = reader_key(&read.reader_id);
        let new_reader = || ReaderPasses {
            clock: read.observed_at,
            passes: BinaryHeap::new(),
            moved: false,
        };
        let reader = self.readers.entry(reader_id).or_insert_with(new_reader);
        if read.observed_at > reader.clock {
            reader.clock = read.observed_at;
            if !reader.moved {
                reader.moved = true;
                self.moved.push(reader_id);
            }
        }
        let key = PassKey::of(&read);
        if let Some(held) = self.held.get_mut(&key) {
            if within_pass(self.window_ms, &held.read, &read) {
                return fold(&mut held.read, read, self.config.keep_duplicates);
            }
        }
        self.latest_now = self.latest_now.max(now);
        // A report of a pass already released (sent again, or a frame that came late): the
        // archive has the pass, and a newer pass of the plate held now goes on.
        if let Some(pass_read_id) = self.released_pass_of(&key, &read) {
            let pass_read_id = pass_read_id.to_owned();
            let duplicate = self.config.keep_duplicates.then(|| {
                let mut duplicate = read;
                duplicate.duplicate_of = Some(pass_read_id.clone());
                Box::new(duplicate)
            });
            return Offered::Folded {
                pass_read_id,
                duplicate,
            };
        }
        let first_released = released.len();
        if let Some(previous) = self.held.remove(&key) {
            released.push(previous.read);
            self.released_keys.push(key);
        }
        self.passes_begun += 1;
        let pass = self.passes_begun;
        let ends_at = read.observed_at.millis().saturating_add(self.window_ms);
        let reader = self.readers.entry(reader_id).or_insert_with(new_reader);
        reader.passes.push(Reverse((ends_at, pass, key)));
        // A late report that its reader's clock has already passed: over at the next release.
        let already_over = reader.clock.millis() > ends_at;
        if already_over && !reader.moved {
            reader.moved = true;
            self.moved.push(reader_id);
        }
        self.began.push_back((now, pass, key));
        self.held.insert(
            key,
            HeldRead {
                read,
                held_since: now,
                pass,
            },
        );
        if self.held.len() > MAX_HELD {
            self.release_oldest(released);
        }
        self.remember_released(&released[first_released..]);
        Offered::NewPass
    }

    /// Releases every pass that is over: its reader's clock is past the window, or it has been held
    /// for the window by the wall clock.
    pub fn release_due(&mut self, now: Timestamp, released: &mut Vec<PlateRead>) {
        self.latest_now = self.latest_now.max(now);
        let first_released = released.len();
        for reader_id in std::mem::take(&mut self.moved) {
            let Some(reader) = self.readers.get_mut(&reader_id) else {
                continue;
            };
            reader.moved = false;
            while let Some(&Reverse((ends_at, pass, key))) = reader.passes.peek() {
                let still_held = self.held.get(&key).is_some_and(|held| held.pass == pass);
                if still_held && reader.clock.millis() <= ends_at {
                    break;
                }
                reader.passes.pop();
                if still_held {
                    if let Some(held) = self.held.remove(&key) {
                        released.push(held.read);
                        self.released_keys.push(key);
                    }
                }
            }
        }
        while let Some(&(began_at, pass, key)) = self.began.front() {
            if self.held.get(&key).is_none_or(|held| held.pass != pass) {
                self.began.pop_front();
                continue;
            }
            if now.millis() - began_at.millis() < self.window_ms {
                break;
            }
            self.release_oldest(released);
        }
        self.remember_released(&released[first_released..]);
    }

    fn release_oldest(&mut self, released: &mut Vec<PlateRead>) {
        while let Some((_, pass, key)) = self.began.pop_front() {
            if self.held.get(&key).is_some_and(|held| held.pass == pass) {
                if let Some(held) = self.held.remove(&key) {
                    released.push(held.read);
                    self.released_keys.push(key);
                }
                return;
            }
        }
    }

    /// Drops the queue entries of passes that are no longer held (after a flush), so a reader
    /// that went quiet keeps none.
    fn forget_released(&mut self) {
        let held = &self.held;
        let still_held = |pass: u64, key: &PassKey| held.get(key).is_some_and(|h| h.pass == pass);
        self.began.retain(|(_, pass, key)| still_held(*pass, key));
        for reader in self.readers.values_mut() {
            reader
                .passes
                .retain(|Reverse((_, pass, key))| still_held(*pass, key));
        }
    }

    /// Releases every pass that began in this partition, before its archive is made durable.
    pub fn flush_partition(&mut self, topic: &str, partition: i32, released: &mut Vec<PlateRead>) {
        let keys: Vec<PassKey> =
            self.held
                .iter()
                .filter(|(_, held)| {
                    held.read.source.as_ref().is_some_and(|source| {
                        source.topic == topic && source.partition == partition
                    })
                })
                .map(|(key, _)| *key)
                .collect();
        let passes: Vec<(PassKey, HeldRead)> = keys
            .iter()
            .filter_map(|key| self.held.remove(key).map(|held| (*key, held)))
            .collect();
        self.forget_released();
        let first_released = released.len();
        release_in_order(passes, released, &mut self.released_keys);
        self.remember_released(&released[first_released..]);
    }

    /// Releases every held pass (end of input).
    pub fn flush_all(&mut self, released: &mut Vec<PlateRead>) {
        self.began.clear();
        for reader in self.readers.values_mut() {
            reader.passes.clear();
        }
        let passes: Vec<(PassKey, HeldRead)> = self.held.drain().collect();
        let first_released = released.len();
        release_in_order(passes, released, &mut self.released_keys);
        self.remember_released(&released[first_released..]);
    }

    /// Drops the passes of a partition this engine no longer owns, held or remembered: the next
    /// owner replays them from the last commit. Returns how many held passes were dropped.
    pub fn forget_partition(&mut self, topic: &str, partition: i32) -> usize {
        let before = self.held.len();
        self.held.retain(|_, held| {
            !held
                .read
                .source
                .as_ref()
                .is_some_and(|source| source.topic == topic && source.partition == partition)
        });
        self.forget_released();
        // Its released passes may be in a segment that is abandoned now: the next owner (this
        // engine again, perhaps) must archive them when it consumes them again, not fold them.
        let tag = partition_tag(topic, partition);
        self.released.retain(|_, pass| pass.partition != tag);
        before - self.held.len()
    }
}

/// Flushed passes leave in the order they began (then by read id), not the hash map's order, so
/// that the archive's row order is the same from run to run.
fn release_in_order(
    mut passes: Vec<(PassKey, HeldRead)>,
    released: &mut Vec<PlateRead>,
    released_keys: &mut Vec<PassKey>,
) {
    passes.sort_by(|(_, a), (_, b)| {
        a.held_since
            .cmp(&b.held_since)
            .then_with(|| a.read.read_id.cmp(&b.read.read_id))
    });
    for (key, held) in passes {
        released.push(held.read);
        released_keys.push(key);
    }
}

/// Passes held at once before the oldest is released early: bounds memory when a reader floods
/// (or a replay runs far faster than the wall clock).
const MAX_HELD: usize = 200_000;

/// Released passes remembered at once (about 100 bytes each with their place in the expiry
/// queue): at high rates the resend horizon is shorter than configured, so memory stays bounded.
pub const MAX_REMEMBERED: usize = 500_000;

/// Whether a report falls within `window_ms` of a held pass's first report.
fn within_pass(window_ms: i64, pass: &PlateRead, report: &PlateRead) -> bool {
    let offset = report.observed_at.millis() - pass.observed_at.millis();
    (-window_ms..=window_ms).contains(&offset)
}

fn fold(pass: &mut PlateRead, report: PlateRead, keep_duplicates: bool) -> Offered {
    pass.frames = pass.frames.saturating_add(report.frames.max(1));
    let last = report.last_observed_at.unwrap_or(report.observed_at);
    pass.last_observed_at = Some(pass.last_observed_at.unwrap_or(pass.observed_at).max(last));
    // Frames can arrive out of order (several partitions, a reader's upload queue): the pass
    // spans its earliest frame too, or a query for the moment the vehicle was first seen misses it.
    if report.observed_at < pass.observed_at {
        pass.observed_at = report.observed_at;
    }
    let pass_read_id = pass.read_id.clone();
    let duplicate = keep_duplicates.then(|| {
        let mut duplicate = report.clone();
        duplicate.duplicate_of = Some(pass_read_id.clone());
        Box::new(duplicate)
    });
    if report.confidence > pass.confidence {
        pass.plate = report.plate;
        pass.confidence = report.confidence;
        pass.jurisdiction = report.jurisdiction.or(pass.jurisdiction.take());
        pass.vehicle = report.vehicle;
        pass.images = report.images;
        pass.heading = report.heading.or(pass.heading);
        pass.motion = report.motion.or(pass.motion);
        pass.embedding = report.embedding.or(pass.embedding.take());
        pass.camera_id = report.camera_id.or(pass.camera_id.take());
    }
    Offered::Folded {
        pass_read_id,
        duplicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::SourcePosition;

    fn report(
        reader: &str,
        plate: &str,
        observed_ms: i64,
        confidence: f32,
        offset: i64,
    ) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": reader, "observed_at": observed_ms,
            "plate": plate, "plate_norm": plate, "confidence": confidence,
        }))
        .unwrap();
        read.read_id = format!("read-{offset}");
        read.source = Some(SourcePosition {
            topic: "reads".into(),
            partition: 0,
            offset,
        });
        read
    }

    const T0: i64 = 1_795_539_600_000;

    #[test]
    fn frames_of_one_pass_fold_into_the_first_with_the_best_content() {
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig::default());
        let mut released = Vec::new();
        let now = Timestamp(T0);
        assert_eq!(
            suppressor.offer(report("r1", "ABC123", T0, 0.7, 0), now, &mut released),
            Offered::NewPass
        );
        let mut better = report("r1", "ABC123", T0 + 400, 0.95, 1);
        better.plate = "ABC 123".into();
        let folded = suppressor.offer(better, now, &mut released);
        assert_eq!(
            folded,
            Offered::Folded {
                pass_read_id: "read-0".into(),
                duplicate: None
            }
        );
        suppressor.offer(report("r1", "ABC123", T0 + 800, 0.8, 2), now, &mut released);
        // Another reader's report of the same plate is another pass.
        assert_eq!(
            suppressor.offer(report("r2", "ABC123", T0 + 900, 0.8, 3), now, &mut released),
            Offered::NewPass
        );
        assert!(released.is_empty(), "nothing is over yet");

        // r1's clock moves past the window: its pass is over, r2's is not.
        suppressor.offer(
            report("r1", "ZZZ999", T0 + 3_500, 0.9, 4),
            now,
            &mut released,
        );
        suppressor.release_due(now, &mut released);
        assert_eq!(released.len(), 1);
        let pass = &released[0];
        assert_eq!(pass.read_id, "read-0");
        assert_eq!(pass.observed_at, Timestamp(T0));
        assert_eq!(pass.source.as_ref().unwrap().offset, 0);
        assert_eq!(pass.frames, 3);
        assert_eq!(pass.confidence, 0.95);
        assert_eq!(pass.plate, "ABC 123");
        assert_eq!(pass.last_observed_at, Some(Timestamp(T0 + 800)));
    }

    #[test]
    fn a_quiet_readers_pass_does_not_hold_back_the_passes_of_readers_that_moved_on() {
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig::default());
        let mut released = Vec::new();
        let now = Timestamp(T0);
        suppressor.offer(report("quiet", "AAA111", T0, 0.9, 0), now, &mut released);
        suppressor.offer(
            report("busy", "BBB222", T0 + 100, 0.9, 1),
            now,
            &mut released,
        );
        suppressor.offer(
            report("busy", "BBB222", T0 + 900, 0.8, 2),
            now,
            &mut released,
        );
        suppressor.release_due(now, &mut released);
        assert!(
            released.is_empty(),
            "the busy reader has not moved past its pass yet"
        );

        suppressor.offer(
            report("busy", "CCC333", T0 + 3_200, 0.9, 3),
            now,
            &mut released,
        );
        suppressor.release_due(now, &mut released);
        let plates: Vec<&str> = released
            .iter()
            .map(|read| read.plate_norm.as_str())
            .collect();
        assert_eq!(
            plates,
            ["BBB222"],
            "the quiet reader's earlier pass is not over"
        );
        assert_eq!(released[0].frames, 2);
        assert_eq!(suppressor.held_count(), 2);

        // Both passes left have been held for the window by the wall clock.
        released.clear();
        suppressor.release_due(Timestamp(T0 + 3_000), &mut released);
        let plates: Vec<&str> = released
            .iter()
            .map(|read| read.plate_norm.as_str())
            .collect();
        assert_eq!(plates, ["AAA111", "CCC333"]);
    }

    #[test]
    fn an_older_pass_arriving_after_a_newer_one_ends_by_its_own_time() {
        // One reader's reports through two partitions, the second consumed behind the first.
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig::default());
        let mut released = Vec::new();
        let now = Timestamp(T0);
        suppressor.offer(
            report("r1", "NEW111", T0 + 5_000, 0.9, 0),
            now,
            &mut released,
        );
        let mut older = report("r1", "OLD222", T0, 0.9, 1);
        older.source.as_mut().unwrap().partition = 1;
        suppressor.offer(older, now, &mut released);
        suppressor.release_due(now, &mut released);
        let plates: Vec<&str> = released
            .iter()
            .map(|read| read.plate_norm.as_str())
            .collect();
        assert_eq!(plates, ["OLD222"]);
        assert_eq!(suppressor.held_count(), 1);
    }

    #[test]
    fn a_quiet_reader_releases_by_the_wall_clock_and_flushes_release_everything() {
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig::default());
        let mut released = Vec::new();
        suppressor.offer(
            report("r1", "ABC123", T0, 0.7, 0),
            Timestamp(T0),
            &mut released,
        );
        suppressor.release_due(Timestamp(T0 + 2_999), &mut released);
        assert!(released.is_empty());
        suppressor.release_due(Timestamp(T0 + 3_000), &mut released);
        assert_eq!(released.len(), 1);

        suppressor.offer(
            report("r1", "DEF456", T0, 0.7, 1),
            Timestamp(T0),
            &mut released,
        );
        let mut other = report("r2", "GHI789", T0, 0.7, 2);
        other.source.as_mut().unwrap().partition = 1;
        suppressor.offer(other, Timestamp(T0), &mut released);
        released.clear();
        suppressor.flush_partition("reads", 1, &mut released);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].plate_norm, "GHI789");
        assert_eq!(suppressor.forget_partition("reads", 0), 1);
        assert_eq!(suppressor.held_count(), 0);
    }

    #[test]
    fn the_same_plate_after_the_window_is_a_new_pass_and_kept_duplicates_point_at_their_pass() {
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig {
            window: Duration::from_secs(2),
            keep_duplicates: true,
            ..DedupeConfig::default()
        });
        let mut released = Vec::new();
        let now = Timestamp(T0);
        suppressor.offer(report("r1", "ABC123", T0, 0.7, 0), now, &mut released);
        let Offered::Folded { duplicate, .. } = suppressor.offer(
            report("r1", "ABC123", T0 + 1_000, 0.6, 1),
            now,
            &mut released,
        ) else {
            panic!("expected a fold");
        };
        assert_eq!(duplicate.unwrap().duplicate_of.as_deref(), Some("read-0"));
        assert_eq!(
            suppressor.offer(
                report("r1", "ABC123", T0 + 60_000, 0.6, 2),
                now,
                &mut released
            ),
            Offered::NewPass
        );
        assert_eq!(released.len(), 1, "the earlier pass ended");
        assert_eq!(released[0].frames, 2);
    }

    #[test]
    fn a_pass_spans_its_earliest_frame_when_frames_arrive_out_of_order() {
        let mut suppressor = DuplicateSuppressor::new(DedupeConfig::default());
        let mut released = Vec::new();
        let now = Timestamp(T0);
        suppressor.offer(
            report("r1", "BBB222", T0 + 2_000, 0.5, 0),
            now,
            &mut released,
        );
        suppressor.offer(report("r1", "BBB222", T0, 0.95, 1), now, &mut released);
        suppressor.flush_all(&mut released);
        assert_eq!(released.len(), 1);
        let pass = &released[0];
        assert_eq!(pass.read_id, "read-0", "the identity is the first report's");
        assert_eq!(pass.observed_at, Timestamp(T0));
        assert_eq!(pass.last_observed_at, Some(Timestamp(T0 + 2_000)));
        assert_eq!(pass.confidence, 0.95);
    }

    /// A vendor that gets no answer sends its report again, seconds or minutes later: the
    /// archive must not hold the pass twice under the same read id.
    #[test]
    fn a_report_sent_again_after_its_pass_was_released_folds_into_that_pass() {
        let config = DedupeConfig {
            window: Duration::from_secs(3),
            resend_horizon: Duration::from_secs(300),
            ..DedupeConfig::default()
        };
        let mut suppressor = DuplicateSuppressor::new(config.clone());
        let mut released = Vec::new();
        let now = |seconds: i64| Timestamp(T0 + seconds * 1_000);
        let first = report("r1", "ABC123", T0, 0.9, 0);
        let frame = report("r1", "ABC123", T0 + 500, 0.8, 1);
        suppressor.offer(first.clone(), now(0), &mut released);
        suppressor.offer(frame.clone(), now(0), &mut released);
        // The reader moves on; the pass ends and is released.
        suppressor.offer(
            report("r1", "XYZ999", T0 + 10_000, 0.9, 2),
            now(10),
            &mut released,
        );
        suppressor.release_due(now(10), &mut released);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].read_id, "read-0");
        assert_eq!(suppressor.remembered_count(), 1);
        // A newer pass of the same plate is held when the resends arrive; they must not end it.
        suppressor.offer(
            report("r1", "ABC123", T0 + 20_000, 0.9, 3),
            now(20),
            &mut released,
        );
        for (resent, at) in [(&first, 30), (&frame, 200)] {
            assert!(suppressor.would_drop(resent));
            assert_eq!(
                suppressor.offer(resent.clone(), now(at), &mut released),
                Offered::Folded {
                    pass_read_id: "read-0".into(),
                    duplicate: None,
                },
                "resent {}s after the pass began",
                at
            );
        }
        assert_eq!(released.len(), 1, "the newer pass is still held");
        assert_eq!(suppressor.held_count(), 2);

        // Past the horizon the pass is forgotten: a resend is a pass again.
        suppressor.release_due(now(400), &mut released);
        assert!(!suppressor.would_drop(&first));
        assert_eq!(
            suppressor.offer(first.clone(), now(400), &mut released),
            Offered::NewPass
        );

        // With no horizon, nothing is remembered.
        let mut forgetful = DuplicateSuppressor::new(DedupeConfig {
            resend_horizon: Duration::ZERO,
            ..config
        });
        let mut released = Vec::new();
        forgetful.offer(first.clone(), now(0), &mut released);
        forgetful.flush_all(&mut released);
        assert_eq!(forgetful.remembered_count(), 0);
        assert_eq!(
            forgetful.offer(first.clone(), now(1), &mut released),
            Offered::NewPass
        );

        // A partition that moves away takes its remembered passes along: its open segment is
        // abandoned, so when its reads come again (to this engine, perhaps) they are archived.
        let mut moved = DuplicateSuppressor::new(config);
        moved.offer(first.clone(), now(0), &mut released);
        moved.flush_partition("reads", 0, &mut released);
        assert_eq!(moved.remembered_count(), 1);
        moved.forget_partition("other-topic", 0);
        assert_eq!(moved.remembered_count(), 1);
        moved.forget_partition("reads", 0);
        assert_eq!(moved.remembered_count(), 0);
        assert_eq!(moved.offer(first, now(1), &mut released), Offered::NewPass);
    }
}
