//! The reads a running engine has consumed but not yet made durable in the archive.
//!
//! A segment becomes durable every `[archive] segment_max_age_secs` (30 s by default), so a query
//! of the archive alone misses the last half minute: exactly the minutes a dispatcher asks about
//! after a 911 call. The engine keeps those reads here, per source partition, until the segment
//! holding them is durable; its API serves them, and `query incident` adds them to the archive's
//! answer. A read leaves only after its file is in place, so a reader that asks here first and
//! lists the archive after sees every read at least once (and drops repeats by `read_id`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::description::Area;
use crate::misread::misread_difference;
use crate::normalize::normalize_plate;
use crate::pattern::{is_pattern, PlatePattern};
use crate::read::{PlateRead, SourcePosition, Timestamp};

/// Reads held by default: about 280 MB (a held read took about 1.1 KB of resident memory in a
/// measured engine, 65 MB for 58,250 reads), many minutes of a city's readers.
pub const DEFAULT_MAX_READS: usize = 250_000;

/// A plate, or a partial plate with `?`/`_` and `*`/`%`, compared with reads' `plate_norm`.
#[derive(Debug, Clone, PartialEq)]
pub enum PlateSelector {
    Exact(String),
    Pattern(PlatePattern),
}

/// As `parse` reads it back.
impl std::fmt::Display for PlateSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(plate) => f.write_str(plate),
            Self::Pattern(pattern) => pattern.fmt(f),
        }
    }
}

impl PlateSelector {
    /// Reads the text as `query plate` does; the error says why it is no plate.
    pub fn parse(text: &str) -> Result<Self, String> {
        if is_pattern(text) {
            PlatePattern::parse(text)
                .map(Self::Pattern)
                .map_err(|error| error.to_string())
        } else {
            normalize_plate(text)
                .map(Self::Exact)
                .map_err(|error| error.to_string())
        }
    }

    fn admits(&self, plate_norm: &str, misreads: bool) -> bool {
        match self {
            Self::Exact(plate) => {
                plate == plate_norm || (misreads && misread_difference(plate, plate_norm).is_some())
            }
            Self::Pattern(pattern) => pattern.matches(plate_norm.as_bytes()),
        }
    }
}

/// Which held reads to return.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnarchivedQuery {
    /// Observation time, inclusive.
    pub from: Option<Timestamp>,
    /// Observation time, exclusive.
    pub to: Option<Timestamp>,
    /// Reads without a position are outside any circle.
    pub near: Option<Area>,
    pub plate: Option<PlateSelector>,
    /// With an exact `plate`: also the reads OCR may have garbled from it (one look-alike swap,
    /// one character more or less), as `query plate --misreads` finds them in the archive.
    pub misreads: bool,
    /// Only the reads of this reader (its `reader_id`).
    pub reader: Option<String>,
}

impl UnarchivedQuery {
    pub fn with_plate(self, plate: PlateSelector) -> Self {
        Self {
            plate: Some(plate),
            ..self
        }
    }

    pub fn near(self, lat: f64, lon: f64, radius_m: f64) -> Self {
        Self {
            near: Some(Area { lat, lon, radius_m }),
            ..self
        }
    }

    /// Also the plate's possible misreads (an exact plate only).
    pub fn with_misreads(self) -> Self {
        Self {
            misreads: true,
            ..self
        }
    }

    pub fn of_reader(self, reader: String) -> Self {
        Self {
            reader: Some(reader),
            ..self
        }
    }

    fn admits(&self, read: &PlateRead) -> bool {
        let at = read.observed_at;
        if self.from.is_some_and(|from| at < from) || self.to.is_some_and(|to| at >= to) {
            return false;
        }
        if self
            .plate
            .as_ref()
            .is_some_and(|plate| !plate.admits(&read.plate_norm, self.misreads))
        {
            return false;
        }
        if self
            .reader
            .as_deref()
            .is_some_and(|reader| reader != read.reader_id)
        {
            return false;
        }
        match (self.near, read.lat, read.lon) {
            (None, _, _) => true,
            (Some(area), Some(lat), Some(lon)) => area.contains(lat, lon),
            (Some(_), _, _) => false,
        }
    }
}

/// What a look at the held reads found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnarchivedSnapshot {
    /// The held reads the query admits, in each partition's consumption order.
    pub reads: Vec<PlateRead>,
    /// Reads held in all, whatever the query.
    pub held: usize,
    /// Reads let go for room before they were archived (the store was full): until their
    /// segments are durable, neither the archive nor this answer has them.
    pub missing: u64,
}

#[derive(Default)]
struct PartitionReads {
    reads: VecDeque<PlateRead>,
    /// Reads dropped for room, with the highest offset among them: once the archive holds that
    /// offset they are in the archive and no longer missing.
    dropped: u64,
    dropped_through: i64,
}

#[derive(Default)]
struct Held {
    /// By topic, then partition: a read finds its place without allocating its topic's name.
    partitions: HashMap<String, HashMap<i32, PartitionReads>>,
    count: usize,
}

/// Reads consumed but not yet archived, shared between the consuming thread and the API.
pub struct UnarchivedReads {
    held: Mutex<Held>,
    max_reads: usize,
}

impl std::fmt::Debug for UnarchivedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnarchivedReads")
            .field("held", &self.lock().count)
            .field("max_reads", &self.max_reads)
            .finish()
    }
}

impl UnarchivedReads {
    /// Holds at most `max_reads` (at least one); beyond that the oldest of the fullest partition
    /// make room, and answers say how many are missing.
    pub fn new(max_reads: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            max_reads: max_reads.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic elsewhere while holding the lock leaves plain data behind, still consistent
        // enough to serve.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds reads just handed to their partitions' open segments (taken, not copied: the
    /// segment has what it needs). Reads without a source position are not from a partition and
    /// are never archived by one: not held.
    pub fn hold(&self, reads: impl IntoIterator<Item = PlateRead>) {
        let mut held = self.lock();
        for mut read in reads {
            let Some(SourcePosition {
                topic, partition, ..
            }) = &read.source
            else {
                continue;
            };
            let partition = *partition;
            if !held.partitions.contains_key(topic.as_str()) {
                held.partitions.insert(topic.clone(), HashMap::new());
            }
            let Some(topic_reads) = held.partitions.get_mut(topic.as_str()) else {
                continue;
            };
            let partition_reads = topic_reads.entry(partition).or_default();
            // The vector is what the appearance API is for; here it would treble the memory.
            read.embedding = None;
            partition_reads.reads.push_back(read);
            held.count += 1;
        }
        while held.count > self.max_reads {
            let Some(fullest) = held
                .partitions
                .values_mut()
                .flat_map(HashMap::values_mut)
                .max_by_key(|partition| partition.reads.len())
            else {
                break;
            };
            let Some(read) = fullest.reads.pop_front() else {
                break;
            };
            fullest.dropped += 1;
            if let Some(source) = &read.source {
                fullest.dropped_through = fullest.dropped_through.max(source.offset);
            }
            held.count -= 1;
            metrics::counter!("platestream_unarchived_reads_dropped_total").increment(1);
        }
        metrics::gauge!("platestream_unarchived_reads").set(held.count as f64);
    }

    /// The partition's messages through `last_offset` are durable in the archive: their reads
    /// leave. Reads are released in nearly offset order (duplicate folding holds a pass a few
    /// seconds), so a later read may leave with the next segment instead.
    pub fn archived_through(&self, topic: &str, partition: i32, last_offset: i64) {
        let mut held = self.lock();
        let Some(reads) = held
            .partitions
            .get_mut(topic)
            .and_then(|partitions| partitions.get_mut(&partition))
        else {
            return;
        };
        let mut released = 0;
        while reads
            .reads
            .front()
            .and_then(|read| read.source.as_ref())
            .is_some_and(|source| source.offset <= last_offset)
        {
            reads.reads.pop_front();
            released += 1;
        }
        if reads.dropped > 0 && reads.dropped_through <= last_offset {
            reads.dropped = 0;
        }
        held.count -= released;
        metrics::gauge!("platestream_unarchived_reads").set(held.count as f64);
    }

    /// The partition went to another engine (or its open segment was abandoned): its next owner
    /// consumes those messages again and holds their reads.
    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let mut held = self.lock();
        if let Some(reads) = held
            .partitions
            .get_mut(topic)
            .and_then(|partitions| partitions.remove(&partition))
        {
            held.count -= reads.reads.len();
        }
        metrics::gauge!("platestream_unarchived_reads").set(held.count as f64);
    }

    pub fn snapshot(&self, query: &UnarchivedQuery) -> UnarchivedSnapshot {
        let held = self.lock();
        let mut snapshot = UnarchivedSnapshot {
            held: held.count,
            ..UnarchivedSnapshot::default()
        };
        for partition in held.partitions.values().flat_map(HashMap::values) {
            snapshot.missing += partition.dropped;
            snapshot.reads.extend(
                partition
                    .reads
                    .iter()
                    .filter(|read| query.admits(read))
                    .cloned(),
            );
        }
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(partition: i32, offset: i64, at_ms: i64, lat: f64) -> PlateRead {
        PlateRead {
            read_id: format!("r{partition}-{offset}"),
            vendor: "test".into(),
            reader_id: "dc-r-001".into(),
            camera_id: None,
            observed_at: Timestamp(at_ms),
            ingested_at: None,
            plate: "ABC123".into(),
            plate_norm: "ABC123".into(),
            jurisdiction: None,
            confidence: 0.9,
            lat: Some(lat),
            lon: Some(-77.0),
            heading: None,
            motion: None,
            vehicle: Default::default(),
            images: Default::default(),
            embedding: Some(vec![1.0; 8]),
            source: Some(SourcePosition {
                topic: "reads".into(),
                partition,
                offset,
            }),
            frames: 1,
            last_observed_at: None,
            duplicate_of: None,
        }
    }

    fn ids(snapshot: &UnarchivedSnapshot) -> Vec<String> {
        let mut ids: Vec<String> = snapshot.reads.iter().map(|r| r.read_id.clone()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn reads_stay_until_their_offsets_are_archived() {
        let held = UnarchivedReads::new(100);
        held.hold([read(0, 10, 1_000, 38.9), read(0, 11, 2_000, 38.9)]);
        held.hold([read(1, 5, 1_500, 38.9)]);
        let all = held.snapshot(&UnarchivedQuery::default());
        assert_eq!(ids(&all), ["r0-10", "r0-11", "r1-5"]);
        assert!(all.reads.iter().all(|r| r.embedding.is_none()));

        held.archived_through("reads", 0, 10);
        assert_eq!(
            ids(&held.snapshot(&UnarchivedQuery::default())),
            ["r0-11", "r1-5"]
        );
        held.forget_partition("reads", 1);
        let left = held.snapshot(&UnarchivedQuery::default());
        assert_eq!(ids(&left), ["r0-11"]);
        assert_eq!(left.held, 1);
    }

    #[test]
    fn a_query_keeps_the_time_range_and_the_circle() {
        let held = UnarchivedReads::new(100);
        // 38.9 and 38.91 are about 1.1 km apart.
        held.hold([
            read(0, 1, 1_000, 38.9),
            read(0, 2, 2_000, 38.9),
            read(0, 3, 3_000, 38.91),
        ]);
        let query = UnarchivedQuery {
            from: Some(Timestamp(1_500)),
            to: Some(Timestamp(3_001)),
            near: Some(Area {
                lat: 38.9,
                lon: -77.0,
                radius_m: 500.0,
            }),
            ..UnarchivedQuery::default()
        };
        assert_eq!(ids(&held.snapshot(&query)), ["r0-2"]);
    }

    #[test]
    fn a_query_keeps_one_reader() {
        let held = UnarchivedReads::new(100);
        let mut elsewhere = read(0, 2, 2_000, 38.9);
        elsewhere.reader_id = "dc-r-002".into();
        held.hold([read(0, 1, 1_000, 38.9), elsewhere]);
        for (reader, expected) in [("dc-r-002", vec!["r0-2"]), ("dc-r-00", vec![])] {
            let query = UnarchivedQuery {
                reader: Some(reader.to_owned()),
                ..UnarchivedQuery::default()
            };
            assert_eq!(ids(&held.snapshot(&query)), expected, "{reader}");
        }
    }

    #[test]
    fn a_query_keeps_a_plate_or_a_partial_plate() {
        let held = UnarchivedReads::new(100);
        let mut other = read(0, 2, 2_000, 38.9);
        other.plate_norm = "XYZ789".into();
        held.hold([read(0, 1, 1_000, 38.9), other]);
        for (text, expected) in [
            ("abc-123", vec!["r0-1"]),
            ("XY?7*", vec!["r0-2"]),
            ("ABC124", vec![]),
        ] {
            let query = UnarchivedQuery {
                plate: Some(PlateSelector::parse(text).unwrap()),
                ..UnarchivedQuery::default()
            };
            assert_eq!(ids(&held.snapshot(&query)), expected, "{text}");
        }
        let mut misread = read(0, 3, 3_000, 38.9);
        misread.plate_norm = "A8C123".into();
        let mut longer = read(0, 4, 4_000, 38.9);
        longer.plate_norm = "ABC1234".into();
        held.hold([misread, longer]);
        let exact = UnarchivedQuery {
            plate: Some(PlateSelector::parse("ABC123").unwrap()),
            ..UnarchivedQuery::default()
        };
        assert_eq!(ids(&held.snapshot(&exact)), ["r0-1"]);
        assert_eq!(
            ids(&held.snapshot(&exact.with_misreads())),
            ["r0-1", "r0-3", "r0-4"]
        );
        for text in ["ABC123", "XY?7*"] {
            let selector = PlateSelector::parse(text).unwrap();
            assert_eq!(PlateSelector::parse(&selector.to_string()), Ok(selector));
        }
        assert!(PlateSelector::parse("A*").is_err());
        assert!(PlateSelector::parse("AB#1").is_err());
    }

    #[test]
    fn a_full_store_says_how_many_reads_are_missing_until_they_are_archived() {
        let held = UnarchivedReads::new(2);
        held.hold([
            read(0, 1, 1_000, 38.9),
            read(0, 2, 2_000, 38.9),
            read(0, 3, 3_000, 38.9),
        ]);
        let full = held.snapshot(&UnarchivedQuery::default());
        assert_eq!(ids(&full), ["r0-2", "r0-3"]);
        assert_eq!(full.missing, 1);
        held.archived_through("reads", 0, 1);
        let after = held.snapshot(&UnarchivedQuery::default());
        assert_eq!(after.missing, 0);
        assert_eq!(after.held, 2);
    }
}
