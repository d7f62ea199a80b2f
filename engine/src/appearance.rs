//! Appearance search over recent reads: "has this vehicle been seen in the last day?"
//!
//! Every read with an appearance embedding belongs to the index of its time slice (one per hour
//! by default). A slice is an inverted-file index: its reads' unit vectors are kept in lists, one
//! per centroid, and the centroids (spherical k-means over the slice's first reads) form a small
//! HNSW graph (hnsw_rs). A point is added by one walk of that graph to its nearest centroid and
//! an append to the centroid's list; a search walks the graph to the `probes` centroids nearest
//! the query and scans their lists exactly, contiguous vectors one after another.
//!
//! Memory decides how much history fits: a 24-hour horizon at 1,000 reads/s is 86.4M reads. So
//! a filed vector is kept as 8-bit codes and a scale (132 bytes at dimension 128 instead of 512;
//! similarities within about 0.002 of the exact ones, recall@10 about 0.975 instead of 0.9995),
//! and the read itself, kept to say where and when the vehicle was seen, is packed with others
//! into small zstd frames with a dictionary per slice (`packed_reads`): about 220 bytes a read in
//! all, where the floats and `PlateRead` values took 1.7-1.9 KB.
//!
//! Why not one HNSW graph of all the reads, as before: hnsw_rs keeps each point and each of its
//! links behind its own allocation, so building a graph of 100k+ reads spent most of its time
//! waiting on memory, 1-6k points/s on this machine's two cores against the 20,000 reads/s a
//! city's readers send, and the recall of reads of one vehicle (tight clusters) fell with size.
//! The graph over a few thousand centroids stays in the cache.
//!
//! Adding a point still costs more than a read may spend on the consuming thread, so
//! [`RecentAppearanceIndex::insert`] only appends the read and its unit vector to its slice's
//! unindexed tail; a background builder thread trains a slice's centroids once it holds enough
//! reads and moves tails into the lists in batches (rayon, every core by default). A search scans
//! the tails exactly, so a read is findable as soon as `insert` returns.
//!
//! The consuming thread is never made to wait for the builder: hotlist alerts must not queue
//! behind the retro index. When the builder falls behind by more than
//! `max_unindexed_points`, the index reports itself behind (a warning, the
//! `platestream_appearance_behind_inserts_total` counter and the
//! `platestream_appearance_unindexed_points` gauge) and the backlog stays searchable by exact scan,
//! which makes searches slower, not blind. The memory cap counts the backlog too.
//!
//! The sliding horizon is kept by dropping whole slices once they end before the horizon, or,
//! oldest first, when the index holds more points than its memory cap. A search runs on every
//! slice overlapping the asked time range, with time and area checked on each point scanned, and
//! merges the answers; when a narrow filter leaves fewer than k reads in the probed lists, the
//! slice's other lists are scanned too, nearest centroid first, until k are found (or, for a
//! query with a `min_similarity`, until a round of lists turns up no read that reaches it).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Duration;

use hnsw_rs::prelude::{Distance, Hnsw};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::description::{dot, dot_with, normalize_vector, Area};
use crate::packed_reads::{pack, read_json, PackedReads, ReadDictionary, READS_PER_FRAME};
use crate::read::{PlateRead, Timestamp};

/// How the index is shaped; `[appearance]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppearanceIndexConfig {
    /// Length of every embedding; others are not indexed.
    pub dim: usize,
    /// How much history is searchable.
    pub horizon_secs: u64,
    /// One index per slice; a slice is dropped whole.
    pub slice_secs: u64,
    /// Memory cap: beyond this many points the oldest slices are dropped.
    pub max_points: usize,
    /// Lists (centroids) per slice; 0 chooses about 2·√n for the n reads a slice is expected to
    /// hold (see `expected_points_per_slice`).
    pub lists: usize,
    /// Lists scanned per search and slice: more is better recall, slower searches.
    pub probes: usize,
    /// Degree (M) of the HNSW graph over a slice's centroids.
    pub max_connections: usize,
    /// Candidates explored while inserting a centroid into the graph. Keep it well above 2 × M:
    /// hnsw_rs links a point to 2 × M neighbours on the bottom layer and, with no more
    /// candidates than that, links the nearest without its diversity heuristic.
    pub ef_construction: usize,
    /// Candidates explored while looking for a query's nearest centroids (at least `probes`).
    pub ef_search: usize,
    /// Expected reads per slice, at least: a slice is sized for this many or for as many as the
    /// slice before it held, whichever is more (about 2·√n lists), and trains its centroids on
    /// its first 8 reads per list.
    pub expected_points_per_slice: usize,
    /// Reads waiting for the builder beyond which the index reports itself behind. They stay
    /// searchable (by exact scan) and are indexed when the builder catches up.
    pub max_unindexed_points: usize,
    /// Threads the builder trains and assigns with; 0 uses rayon's global pool (one per core).
    pub builder_threads: usize,
}

impl Default for AppearanceIndexConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            horizon_secs: 24 * 3600,
            slice_secs: 3600,
            // About 9 GB at dim 128 (about 220 bytes a read with the read kept, measured by the
            // bench): 11 hours at 1,000 reads/s.
            max_points: 40_000_000,
            lists: 0,
            // From `benches/appearance.rs` (simulated reads, dim 128): see BENCHMARKS.md.
            probes: 16,
            max_connections: 16,
            ef_construction: 64,
            ef_search: 32,
            expected_points_per_slice: 100_000,
            max_unindexed_points: 200_000,
            builder_threads: 0,
        }
    }
}

/// The centroid graphs' distance: 1 − cosine of unit vectors, by the same vectorized dot product as the
/// exact scans. Never negative: hnsw_rs' own `DistDot` asserts that, and two unit vectors that
/// are (nearly) the same can have a rounded dot product just above 1.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosineDistance;

impl Distance<f32> for UnitCosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// Where a point is, for filtering without touching the read.
#[derive(Debug, Clone, Copy)]
struct PointPlace {
    /// Since the slice's start (slices are at most `MAX_SLICE_SECS` long).
    offset_ms: u32,
    lat: f32,
    lon: f32,
}

/// Longest slice: its points' times are kept as 32-bit offsets in milliseconds.
const MAX_SLICE_SECS: u64 = u32::MAX as u64 / 1000;

/// The vectors and ids of one centroid's points. A filed vector is kept as 8-bit codes and one
/// scale (`unit ≈ scale × codes`): a quarter of its floats' memory, which is what lets a
/// 24-hour horizon at 1,000 reads/s (86.4M reads) fit in memory; the similarity it gives is
/// within about 0.002 of the exact one for unit vectors of dimension 128.
#[derive(Default)]
struct PointList {
    ids: Vec<u32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

impl PointList {
    fn shrink_to_fit(&mut self) {
        self.ids.shrink_to_fit();
        self.codes.shrink_to_fit();
        self.scales.shrink_to_fit();
    }
}

/// Writes `unit`'s 8-bit codes into `codes` and returns their scale: the largest component
/// maps to ±127.
fn quantize(unit: &[f32], codes: &mut [i8]) -> f32 {
    let largest = unit
        .iter()
        .fold(0.0f32, |largest, value| largest.max(value.abs()));
    if largest <= 0.0 || !largest.is_finite() {
        codes.fill(0);
        return 0.0;
    }
    let scale = largest / 127.0;
    for (code, value) in codes.iter_mut().zip(unit) {
        // `as` saturates; the largest component is exactly ±127 anyway.
        *code = (value / scale).round() as i8;
    }
    scale
}

/// Frees most of a queue's capacity once a burst (a bulk load, a builder catching up) has
/// drained: the queues of every slice would otherwise each keep their largest backlog's memory.
fn give_back_burst_capacity<T>(queue: &mut Vec<T>) {
    let spare = queue.capacity() - queue.len();
    if spare > 4 * MAX_BUILD_BATCH && spare > 4 * queue.len() {
        queue.shrink_to(queue.len() * 2);
    }
}

/// A short fingerprint of a read id, to find a read by id without decoding every read.
fn id_tag(read_id: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(read_id.as_bytes()) as u32
}

/// Everything a slice holds besides its centroids, under one lock so an id names the same point
/// in every vector.
#[derive(Default)]
struct SlicePoints {
    /// By id (insertion order), indexed or not.
    places: Vec<PointPlace>,
    /// By id: `id_tag` of the read id.
    tags: Vec<u32>,
    /// The reads, without their embeddings, by id: the first ones packed (`packed_reads`), then
    /// the ones the builder is packing now, then those not handed to it yet.
    packed: PackedReads,
    packing: Arc<Vec<PlateRead>>,
    unpacked: Vec<PlateRead>,
    /// Ids below this are in `lists`.
    indexed: usize,
    /// One per centroid, once the centroids are trained.
    lists: Vec<PointList>,
    /// Unit vectors of the ids the builder is assigning now, from `indexed` on, `dim` floats each.
    building: Arc<Vec<f32>>,
    /// Unit vectors of the ids after `building`'s, not yet handed to the builder.
    waiting: Vec<f32>,
    /// Set when the slice leaves the index: the builder's work on it is moot.
    dropped: bool,
    /// Set once the builder has shrunk a finished slice's vectors to their contents.
    sealed: bool,
}

impl SlicePoints {
    /// The read with this id, decoded from its frame when packed.
    fn read(&self, id: usize, dictionary: Option<&ReadDictionary>) -> Option<PlateRead> {
        let packed = self.packed.len();
        if id < packed {
            return self.packed.get(id, dictionary);
        }
        let id = id - packed;
        if id < self.packing.len() {
            return self.packing.get(id).cloned();
        }
        self.unpacked.get(id - self.packing.len()).cloned()
    }

    fn shrink_to_fit(&mut self) {
        self.places.shrink_to_fit();
        self.tags.shrink_to_fit();
        self.packed.shrink_to_fit();
        self.unpacked.shrink_to_fit();
        self.waiting.shrink_to_fit();
        for list in &mut self.lists {
            list.shrink_to_fit();
        }
    }

    /// Bytes the slice's points hold on the heap, allocated capacity included (the reads not
    /// packed yet are counted at their struct size only).
    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let lists: usize = self
            .lists
            .iter()
            .map(|list| {
                list.ids.capacity() * size_of::<u32>()
                    + list.codes.capacity()
                    + list.scales.capacity() * size_of::<f32>()
            })
            .sum();
        self.places.capacity() * size_of::<PointPlace>()
            + self.tags.capacity() * size_of::<u32>()
            + self.packed.heap_bytes()
            + (self.packing.len() + self.unpacked.capacity()) * size_of::<PlateRead>()
            + (self.building.len() + self.waiting.capacity()) * size_of::<f32>()
            + lists
    }
}

struct Slice {
    start_ms: i64,
    end_ms: i64,
    /// Centroids to train, and the points expected, chosen when the slice began.
    lists: usize,
    expected_points: usize,
    /// Trained once, by the builder, from the slice's first points.
    centroids: OnceLock<Centroids>,
    /// Trained once, by the builder, from the first reads it packs (`None`: too few of them).
    dictionary: OnceLock<Option<ReadDictionary>>,
    points: RwLock<SlicePoints>,
}

/// Lloyd iterations of the k-means that places a slice's centroids.
const TRAIN_ITERATIONS: usize = 4;
/// Training points per centroid: the slice's first reads, this many per list.
const TRAIN_POINTS_PER_LIST: usize = 8;
/// Fewest points a slice trains on while it is still filling; until then its reads are scanned
/// exactly (a tail this short costs less than a millisecond).
const MIN_TRAIN_POINTS: usize = 1024;
/// Candidates explored when the builder looks for a point's nearest centroid. A point put in
/// its second-nearest list is still found: searches scan several.
const ASSIGN_EF: usize = 16;

/// A slice's centroids and the HNSW graph over them.
struct Centroids {
    dim: usize,
    /// Unit vectors, one after another; list `n` is the points nearest centroid `n`.
    units: Vec<f32>,
    graph: Hnsw<'static, f32, UnitCosineDistance>,
}

/// Index (into `units`, `dim` floats each) of the centroid most similar to `unit`.
fn nearest_centroid_exact(units: &[f32], dim: usize, unit: &[f32]) -> usize {
    let mut best = (f32::MIN, 0);
    for (index, centroid) in units.chunks_exact(dim).enumerate() {
        let similarity = dot(unit, centroid);
        if similarity > best.0 {
            best = (similarity, index);
        }
    }
    best.1
}

impl Centroids {
    /// Spherical k-means over `sample` (unit vectors, `dim` floats each): `lists` centroids,
    /// started from sample points spread over it. A centroid left with no point keeps its place.
    /// Call it inside the builder's thread pool.
    fn train(sample: &[f32], dim: usize, lists: usize, config: &AppearanceIndexConfig) -> Self {
        let count = sample.len() / dim;
        let lists = lists.clamp(1, count.max(1));
        let mut units: Vec<f32> = Vec::with_capacity(lists * dim);
        for list in 0..lists {
            let at = list * count / lists * dim;
            units.extend_from_slice(&sample[at..at + dim]);
        }
        for _ in 0..TRAIN_ITERATIONS {
            let assigned: Vec<usize> = sample
                .par_chunks_exact(dim)
                .map(|unit| nearest_centroid_exact(&units, dim, unit))
                .collect();
            let mut sums = vec![0.0f32; lists * dim];
            for (unit, list) in sample.chunks_exact(dim).zip(&assigned) {
                for (sum, value) in sums[list * dim..][..dim].iter_mut().zip(unit) {
                    *sum += value;
                }
            }
            for (sum, centroid) in sums.chunks_exact_mut(dim).zip(units.chunks_exact_mut(dim)) {
                if normalize_vector(sum) {
                    centroid.copy_from_slice(sum);
                }
            }
        }
        let graph = Hnsw::new(
            config.max_connections,
            lists,
            16,
            config.ef_construction.max(1),
            UnitCosineDistance,
        );
        let items: Vec<(&[f32], usize)> = units.chunks_exact(dim).zip(0..).collect();
        graph.parallel_insert_slice(&items);
        Self { dim, units, graph }
    }

    fn len(&self) -> usize {
        self.units.len() / self.dim.max(1)
    }

    /// The list a point belongs to.
    fn list_for(&self, unit: &[f32]) -> usize {
        match self.graph.search(unit, 1, ASSIGN_EF).first() {
            Some(nearest) if nearest.d_id < self.len() => nearest.d_id,
            _ => nearest_centroid_exact(&self.units, self.dim, unit),
        }
    }

    /// The `probes` lists nearest a query, nearest first (fewer when the graph has fewer).
    fn lists_to_probe(&self, unit: &[f32], probes: usize, ef: usize) -> Vec<usize> {
        if probes >= self.len() {
            return self.all_lists_by_similarity(unit);
        }
        self.graph
            .search(unit, probes, ef.max(probes))
            .into_iter()
            .map(|neighbour| neighbour.d_id)
            .filter(|list| *list < self.len())
            .collect()
    }

    /// Every list, nearest centroid first.
    fn all_lists_by_similarity(&self, unit: &[f32]) -> Vec<usize> {
        let mut lists: Vec<(f32, usize)> = self
            .units
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(list, centroid)| (dot(unit, centroid), list))
            .collect();
        lists.sort_by(|a, b| b.0.total_cmp(&a.0));
        lists.into_iter().map(|(_, list)| list).collect()
    }
}

/// What to look for.
#[derive(Debug, Clone)]
pub struct AppearanceQuery<'a> {
    pub vector: &'a [f32],
    pub k: usize,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub near: Option<Area>,
    /// Hits below this cosine similarity are left out.
    pub min_similarity: Option<f32>,
}

impl<'a> AppearanceQuery<'a> {
    pub fn nearest(vector: &'a [f32], k: usize) -> Self {
        Self {
            vector,
            k,
            from: None,
            to: None,
            near: None,
            min_similarity: None,
        }
    }
}

/// One read found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct AppearanceHit {
    /// The read as indexed (its embedding left out).
    pub read: PlateRead,
    pub similarity: f32,
}

/// Why a read was not indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotIndexed {
    NoEmbedding,
    WrongDimension,
    /// All zeros: no direction to compare.
    ZeroVector,
    /// Older than the horizon.
    TooOld,
    /// Its slice holds 2^32 - 1 points already.
    SliceFull,
}

impl NotIndexed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEmbedding => "no_embedding",
            Self::WrongDimension => "wrong_dimension",
            Self::ZeroVector => "zero_vector",
            Self::TooOld => "too_old",
            Self::SliceFull => "slice_full",
        }
    }
}

/// Most points the builder assigns in one batch: large enough to keep every
/// thread busy, small enough that the lists absorb a backlog steadily (searches scan less) and
/// that dropping the index waits at most one batch.
const MAX_BUILD_BATCH: usize = 8192;
/// The consuming thread wakes the builder every this many unindexed points; otherwise the
/// builder looks for work every `BUILDER_POLL`.
const WAKE_BUILDER_EVERY: usize = 1024;
const BUILDER_POLL: Duration = Duration::from_millis(20);

/// The index's state, shared with its builder thread.
struct Shared {
    config: AppearanceIndexConfig,
    slices: RwLock<Vec<Arc<Slice>>>,
    newest_ms: AtomicI64,
    /// Points appended but not yet in a list, over all slices.
    unindexed: AtomicUsize,
    /// Whether `unindexed` passed `max_unindexed_points` (and has not come back under half).
    behind: AtomicBool,
    /// Guards the builder's stop flag; `work` wakes the builder, `progress` wakes waiters.
    builder_stop: Mutex<bool>,
    work: Condvar,
    progress: Condvar,
    pool: Option<rayon::ThreadPool>,
    /// `config.ef_search`, changeable without rebuilding.
    ef_search: AtomicUsize,
    /// `config.probes`, changeable likewise.
    probes: AtomicUsize,
    /// Set while someone waits for every point to be indexed: slices still short of their
    /// training size train on what they have.
    finish: AtomicBool,
}

/// The time-sliced HNSW index of recent reads' embeddings. Share it as `Arc`: inserts and
/// searches take `&self` from any thread. It owns a builder thread, stopped when the index is
/// dropped.
pub struct RecentAppearanceIndex {
    shared: Arc<Shared>,
    builder: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RecentAppearanceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentAppearanceIndex")
            .field("config", &self.shared.config)
            .field("points", &self.len())
            .field("unindexed", &self.unindexed_len())
            .finish()
    }
}

fn read_guard<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-push of plain vectors.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_guard<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Time and area limits of one slice's search, checked on each point scanned.
struct PlaceFilter<'a> {
    places: &'a [PointPlace],
    slice_start_ms: i64,
    from_ms: i64,
    to_ms: i64,
    near: Option<Area>,
}

impl PlaceFilter<'_> {
    fn admits(&self, id: usize) -> bool {
        let Some(place) = self.places.get(id) else {
            return false;
        };
        let observed_at_ms = self.slice_start_ms + i64::from(place.offset_ms);
        if observed_at_ms < self.from_ms || observed_at_ms >= self.to_ms {
            return false;
        }
        match self.near {
            None => true,
            Some(area) => {
                !place.lat.is_nan() && area.contains(f64::from(place.lat), f64::from(place.lon))
            }
        }
    }
}

/// Keeps `best` the `k` most similar `(similarity, id)`, most similar first.
fn keep_best(best: &mut Vec<(f32, usize)>, k: usize, similarity: f32, id: usize) {
    if best.len() == k && best.last().is_some_and(|(worst, _)| similarity <= *worst) {
        return;
    }
    let at = best
        .iter()
        .position(|(other, _)| similarity > *other)
        .unwrap_or(best.len());
    best.insert(at, (similarity, id));
    best.truncate(k);
}

impl Shared {
    fn slice_ms(&self) -> i64 {
        i64::try_from(self.config.slice_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn horizon_ms(&self) -> i64 {
        i64::try_from(self.config.horizon_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn slices(&self) -> Vec<Arc<Slice>> {
        read_guard(&self.slices).clone()
    }

    /// Runs `work` in the builder's thread pool.
    fn in_pool<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// Lists for a slice expected to hold `expected_points`: `lists` when configured, else about
    /// 2·√n, so a list holds about √n/2 points.
    fn lists_for(&self, expected_points: usize) -> usize {
        match self.config.lists {
            0 => ((expected_points as f64).sqrt() * 2.0).round() as usize,
            lists => lists,
        }
        .clamp(1, 1 << 16)
    }

    /// Points a slice trains its centroids on.
    fn training_points(slice: &Slice) -> usize {
        (slice.lists * TRAIN_POINTS_PER_LIST)
            .max(MIN_TRAIN_POINTS)
            .min(slice.expected_points.max(MIN_TRAIN_POINTS))
    }

    /// Trains a slice's centroids from its first points once it has enough of them (or fewer,
    /// when it is no longer the newest slice or `finish` is set); false while it waits for more.
    fn train_if_ready(&self, slice: &Slice, newest: bool) -> bool {
        if slice.centroids.get().is_some() {
            return true;
        }
        let dim = self.config.dim.max(1);
        let wanted = Self::training_points(slice);
        let sample = {
            let points = read_guard(&slice.points);
            let waiting = points.waiting.len() / dim;
            let short = waiting < wanted && newest && !self.finish.load(Ordering::Relaxed);
            if points.dropped || waiting == 0 || short {
                return false;
            }
            points.waiting[..waiting.min(wanted) * dim].to_vec()
        };
        let count = sample.len() / dim;
        let lists = slice.lists.min((count / TRAIN_POINTS_PER_LIST).max(1));
        let started = std::time::Instant::now();
        let centroids = self.in_pool(|| Centroids::train(&sample, dim, lists, &self.config));
        tracing::debug!(
            lists,
            points = count,
            seconds = started.elapsed().as_secs_f64(),
            "appearance slice centroids trained"
        );
        let lists = centroids.len();
        if slice.centroids.set(centroids).is_ok() {
            write_guard(&slice.points)
                .lists
                .resize_with(lists, PointList::default);
        }
        true
    }

    /// Moves every slice's waiting points into their lists, a batch at a time; returns the
    /// points indexed.
    fn index_waiting(&self, stop: &dyn Fn() -> bool) -> usize {
        let dim = self.config.dim.max(1);
        let mut indexed = 0;
        let slices = self.slices();
        for (position, slice) in slices.iter().enumerate() {
            if !self.train_if_ready(slice, position + 1 == slices.len()) {
                continue;
            }
            let Some(centroids) = slice.centroids.get() else {
                continue;
            };
            loop {
                if stop() {
                    return indexed;
                }
                let batch = {
                    let mut points = write_guard(&slice.points);
                    if points.dropped || points.waiting.is_empty() {
                        break;
                    }
                    let take = (points.waiting.len() / dim).min(MAX_BUILD_BATCH) * dim;
                    let batch: Vec<f32> = if take == points.waiting.len() {
                        std::mem::take(&mut points.waiting)
                    } else {
                        points.waiting.drain(..take).collect()
                    };
                    give_back_burst_capacity(&mut points.waiting);
                    let batch = Arc::new(batch);
                    points.building = Arc::clone(&batch);
                    batch
                };
                let mut codes = vec![0i8; batch.len()];
                let assigned: Vec<(usize, f32)> = self.in_pool(|| {
                    batch
                        .par_chunks_exact(dim)
                        .zip(codes.par_chunks_exact_mut(dim))
                        .map(|(unit, codes)| (centroids.list_for(unit), quantize(unit, codes)))
                        .collect()
                });
                let count = assigned.len();
                {
                    let mut points = write_guard(&slice.points);
                    points.building = Arc::default();
                    if !points.dropped {
                        let first_id = points.indexed;
                        for (offset, (codes, (list, scale))) in
                            codes.chunks_exact(dim).zip(&assigned).enumerate()
                        {
                            if let Some(list) = points.lists.get_mut(*list) {
                                // Ids fit: a slice holds fewer than 2^32 points (`insert`).
                                list.ids.push((first_id + offset) as u32);
                                list.codes.extend_from_slice(codes);
                                list.scales.push(*scale);
                            }
                        }
                        points.indexed += count;
                        // Reported before the count drops, so whoever sees the backlog gone
                        // also sees the index no longer behind.
                        let left = self.unindexed.load(Ordering::Relaxed).saturating_sub(count);
                        self.report_backlog(left);
                        self.unindexed.fetch_sub(count, Ordering::Relaxed);
                    }
                }
                indexed += count;
                // Reads are packed as their vectors are filed: while a stream keeps the builder
                // busy, the reads waiting to be packed (about 1.2 KB each) must not pile up.
                self.pack_reads(slice, position + 1 == slices.len());
                self.progress.notify_all();
            }
            let newest = position + 1 == slices.len();
            while !stop() && self.pack_reads(slice, newest) > 0 {}
            self.seal_if_finished(slice, newest);
        }
        indexed
    }

    /// Packs a batch of the slice's unpacked reads into frames (whole frames only; the newest
    /// slice's are packed once its centroids are trained, so its dictionary learns from a few
    /// thousand reads); returns the reads packed.
    fn pack_reads(&self, slice: &Slice, newest: bool) -> usize {
        if newest && slice.centroids.get().is_none() {
            return 0;
        }
        let batch = {
            let mut points = write_guard(&slice.points);
            let whole = points.unpacked.len() / READS_PER_FRAME * READS_PER_FRAME;
            if points.dropped || whole == 0 {
                return 0;
            }
            let take = whole.min(MAX_BUILD_BATCH);
            let batch: Vec<PlateRead> = points.unpacked.drain(..take).collect();
            give_back_burst_capacity(&mut points.unpacked);
            let batch = Arc::new(batch);
            points.packing = Arc::clone(&batch);
            batch
        };
        let dictionary = slice.dictionary.get_or_init(|| {
            let samples: Vec<Vec<u8>> = batch.iter().map(read_json).collect();
            ReadDictionary::train(&samples)
        });
        let frames = self.in_pool(|| pack(&batch, dictionary.as_ref()));
        let mut points = write_guard(&slice.points);
        points.packing = Arc::default();
        if !points.dropped {
            for frame in &frames {
                points.packed.push_frame(frame);
            }
        }
        batch.len()
    }

    /// Gives back the slack of a slice that is no longer filled (not the newest, everything
    /// filed and packed): vectors grow by doubling, so up to half of a filling slice's memory
    /// is spare capacity.
    fn seal_if_finished(&self, slice: &Slice, newest: bool) {
        if newest || read_guard(&slice.points).sealed {
            return;
        }
        let mut points = write_guard(&slice.points);
        let finished = points.waiting.is_empty()
            && points.building.is_empty()
            && points.unpacked.len() < READS_PER_FRAME;
        if !points.sealed && !points.dropped && finished {
            points.shrink_to_fit();
            points.sealed = true;
        }
    }

    /// Publishes the backlog; says once when the builder falls behind and when it catches up.
    fn report_backlog(&self, unindexed: usize) {
        metrics::gauge!("platestream_appearance_unindexed_points").set(unindexed as f64);
        let limit = self.config.max_unindexed_points;
        if unindexed > limit {
            if !self.behind.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    unindexed,
                    limit,
                    "the appearance index builder is behind: recent reads are searched by exact scan until it catches up"
                );
            }
        } else if unindexed <= limit / 2 && self.behind.swap(false, Ordering::Relaxed) {
            tracing::info!(unindexed, "the appearance index builder caught up");
        }
    }

    fn run_builder(&self) {
        let stopped = || *lock(&self.builder_stop);
        loop {
            if stopped() {
                return;
            }
            if self.index_waiting(&stopped) == 0 {
                // Nothing to do, or only slices still short of their training size, or points
                // counted but not yet pushed (an insert between its count and its push): wait
                // for a wake-up or the next look.
                let stop = lock(&self.builder_stop);
                if *stop {
                    return;
                }
                let _ = self
                    .work
                    .wait_timeout(stop, BUILDER_POLL)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
    }
}

impl RecentAppearanceIndex {
    pub fn new(config: AppearanceIndexConfig) -> Self {
        let config = AppearanceIndexConfig {
            slice_secs: config.slice_secs.clamp(1, MAX_SLICE_SECS),
            max_connections: config.max_connections.clamp(2, 255),
            ..config
        };
        if config.ef_construction <= 2 * config.max_connections {
            tracing::warn!(
                ef_construction = config.ef_construction,
                max_connections = config.max_connections,
                "appearance index: ef_construction at most 2 x max_connections builds a poorly connected graph (low recall)"
            );
        }
        let pool = if config.builder_threads == 0 {
            None
        } else {
            rayon::ThreadPoolBuilder::new()
                .num_threads(config.builder_threads)
                .thread_name(|n| format!("appearance-build-{n}"))
                .build()
                .map_err(|error| {
                    tracing::warn!(%error, "no thread pool for the appearance index builder; using rayon's global pool")
                })
                .ok()
        };
        let shared = Arc::new(Shared {
            config: config.clone(),
            slices: RwLock::new(Vec::new()),
            newest_ms: AtomicI64::new(i64::MIN),
            unindexed: AtomicUsize::new(0),
            behind: AtomicBool::new(false),
            builder_stop: Mutex::new(false),
            work: Condvar::new(),
            progress: Condvar::new(),
            pool,
            ef_search: AtomicUsize::new(config.ef_search),
            probes: AtomicUsize::new(config.probes.max(1)),
            finish: AtomicBool::new(false),
        });
        let builder = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("appearance-index".into())
                .spawn(move || shared.run_builder())
        };
        let builder = match builder {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(%error, "no appearance index builder thread: inserts index synchronously");
                None
            }
        };
        Self { shared, builder }
    }

    pub fn config(&self) -> &AppearanceIndexConfig {
        &self.shared.config
    }

    /// Points held, indexed or waiting for the builder.
    pub fn len(&self) -> usize {
        self.shared
            .slices()
            .iter()
            .map(|slice| read_guard(&slice.points).places.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Points appended but not yet in a list (searched by exact scan meanwhile).
    pub fn unindexed_len(&self) -> usize {
        self.shared.unindexed.load(Ordering::Relaxed)
    }

    /// Whether the builder is more than `max_unindexed_points` behind.
    pub fn is_behind(&self) -> bool {
        self.shared.behind.load(Ordering::Relaxed)
    }

    /// Candidates explored per search in the centroid graphs from now on.
    pub fn set_ef_search(&self, ef_search: usize) {
        self.shared.ef_search.store(ef_search, Ordering::Relaxed);
    }

    /// Lists scanned per slice from now on: recall against speed, without rebuilding.
    pub fn set_probes(&self, probes: usize) {
        self.shared.probes.store(probes.max(1), Ordering::Relaxed);
    }

    /// Lists the newest slice trains (or, before any read, a slice of the configured size).
    pub fn lists_per_slice(&self) -> usize {
        read_guard(&self.shared.slices).last().map_or_else(
            || {
                self.shared
                    .lists_for(self.shared.config.expected_points_per_slice)
            },
            |slice| slice.lists,
        )
    }

    /// Whether some slice holds a whole frame of reads the builder has not packed yet.
    fn has_reads_to_pack(&self) -> bool {
        self.shared.slices().iter().any(|slice| {
            let points = read_guard(&slice.points);
            !points.dropped
                && (!points.packing.is_empty() || points.unpacked.len() >= READS_PER_FRAME)
        })
    }

    /// Bytes the index's points hold on the heap (vectors, places, packed reads; the centroid
    /// graphs and dictionaries, a few MB a slice, are not counted).
    pub fn heap_bytes(&self) -> usize {
        self.shared
            .slices()
            .iter()
            .map(|slice| read_guard(&slice.points).heap_bytes())
            .sum()
    }

    pub fn slice_count(&self) -> usize {
        read_guard(&self.shared.slices).len()
    }

    /// Blocks until every point appended so far is in a list (slices short of their training
    /// size train on what they have): for bulk loads that search right after (`platestream
    /// search`), and benches.
    pub fn wait_until_indexed(&self) {
        self.shared.finish.store(true, Ordering::Relaxed);
        if self.builder.is_none() {
            self.shared.index_waiting(&|| false);
            self.shared.finish.store(false, Ordering::Relaxed);
            return;
        }
        let mut stop = lock(&self.shared.builder_stop);
        while (self.unindexed_len() > 0 || self.has_reads_to_pack()) && !*stop {
            self.shared.work.notify_one();
            stop = self
                .shared
                .progress
                .wait_timeout(stop, BUILDER_POLL)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        self.shared.finish.store(false, Ordering::Relaxed);
    }

    fn slice_for(&self, observed_at_ms: i64) -> Arc<Slice> {
        let slice_ms = self.shared.slice_ms();
        let start_ms = observed_at_ms.div_euclid(slice_ms) * slice_ms;
        if let Some(slice) = read_guard(&self.shared.slices)
            .iter()
            .find(|slice| slice.start_ms == start_ms)
        {
            return Arc::clone(slice);
        }
        let mut slices = write_guard(&self.shared.slices);
        if let Some(slice) = slices.iter().find(|slice| slice.start_ms == start_ms) {
            return Arc::clone(slice);
        }
        // The slice before this one tells the real rate better than the configuration does
        // (taken as a floor: a slice the engine started in the middle of is short).
        let previous_points = slices
            .iter()
            .filter(|slice| slice.start_ms < start_ms)
            .map(|slice| read_guard(&slice.points).places.len())
            .next_back()
            .unwrap_or(0);
        let expected_points = previous_points.max(self.shared.config.expected_points_per_slice);
        let slice = Arc::new(Slice {
            start_ms,
            end_ms: start_ms.saturating_add(slice_ms),
            lists: self.shared.lists_for(expected_points),
            expected_points,
            centroids: OnceLock::new(),
            dictionary: OnceLock::new(),
            points: RwLock::new(SlicePoints::default()),
        });
        slices.push(Arc::clone(&slice));
        slices.sort_by_key(|slice| slice.start_ms);
        slice
    }

    /// Drops slices that ended before the horizon, then the oldest while over the memory cap.
    /// Returns the number of points dropped.
    pub fn expire(&self) -> usize {
        let newest = self.shared.newest_ms.load(Ordering::Relaxed);
        if newest == i64::MIN {
            return 0;
        }
        let cutoff = newest.saturating_sub(self.shared.horizon_ms());
        let mut slices = write_guard(&self.shared.slices);
        let mut dropped = 0;
        let mut leave = |slice: &Slice| {
            let mut points = write_guard(&slice.points);
            points.dropped = true;
            // The builder no longer counts this slice's backlog down; it leaves here.
            let unindexed = points.places.len() - points.indexed;
            self.shared
                .unindexed
                .fetch_sub(unindexed, Ordering::Relaxed);
            dropped += points.places.len();
            points.places.len()
        };
        slices.retain(|slice| {
            let keep = slice.end_ms > cutoff;
            if !keep {
                leave(slice);
            }
            keep
        });
        let mut total: usize = slices
            .iter()
            .map(|slice| read_guard(&slice.points).places.len())
            .sum();
        // Never drop the newest slice: it is the one being filled.
        while total > self.shared.config.max_points && slices.len() > 1 {
            let oldest = slices.remove(0);
            total -= leave(&oldest);
        }
        dropped
    }

    /// Appends a read's embedding (scaled to unit length) to its slice, searchable at once and
    /// indexed by the builder thread soon after; the read is kept, without its embedding, to
    /// report where and when it was seen. Never waits for the builder.
    pub fn insert(&self, read: &PlateRead) -> Result<(), NotIndexed> {
        let embedding = read.embedding.as_deref().ok_or(NotIndexed::NoEmbedding)?;
        if embedding.len() != self.shared.config.dim {
            return Err(NotIndexed::WrongDimension);
        }
        let observed_at_ms = read.observed_at.millis();
        let newest = self
            .shared
            .newest_ms
            .fetch_max(observed_at_ms, Ordering::Relaxed)
            .max(observed_at_ms);
        if observed_at_ms < newest.saturating_sub(self.shared.horizon_ms()) {
            return Err(NotIndexed::TooOld);
        }
        let mut vector = embedding.to_vec();
        if !normalize_vector(&mut vector) {
            return Err(NotIndexed::ZeroVector);
        }
        let slice = self.slice_for(observed_at_ms);
        let mut kept = read.clone();
        kept.embedding = None;
        let place = PointPlace {
            // Within the slice, which is shorter than `MAX_SLICE_SECS`.
            offset_ms: (observed_at_ms - slice.start_ms) as u32,
            lat: read.lat.map_or(f32::NAN, |lat| lat as f32),
            lon: read.lon.map_or(f32::NAN, |lon| lon as f32),
        };
        let tag = id_tag(&read.read_id);
        let points = {
            let mut points = write_guard(&slice.points);
            if points.dropped {
                // Expired between finding the slice and now: beyond the horizon or the cap.
                return Err(NotIndexed::TooOld);
            }
            if points.places.len() >= u32::MAX as usize {
                // Point ids are 32-bit: over four billion reads in one slice.
                return Err(NotIndexed::SliceFull);
            }
            points.places.push(place);
            points.tags.push(tag);
            points.unpacked.push(kept);
            if points.sealed {
                // A late read for a finished slice: pack it with others when there are enough.
                points.sealed = false;
            }
            points.waiting.extend_from_slice(&vector);
            // Counted under the lock, so `expire` and the builder see the same backlog.
            let unindexed = self.shared.unindexed.fetch_add(1, Ordering::Relaxed) + 1;
            if unindexed % WAKE_BUILDER_EVERY == 0 {
                self.shared.work.notify_one();
            }
            if unindexed > self.shared.config.max_unindexed_points {
                metrics::counter!("platestream_appearance_behind_inserts_total").increment(1);
                if !self.shared.behind.load(Ordering::Relaxed) {
                    self.shared.report_backlog(unindexed);
                }
            }
            points.places.len()
        };
        if self.builder.is_none() {
            self.shared.index_waiting(&|| false);
        }
        // A new slice may push an old one past the horizon; the cap is checked now and then.
        if points == 1 || points % 4096 == 0 {
            self.expire();
        }
        Ok(())
    }

    /// The `k` reads most similar to the query vector within its time range and area, most
    /// similar first. Covers every point inserted before the call: the probed lists, and by
    /// exact scan what the builder has not indexed yet.
    pub fn search(&self, query: &AppearanceQuery<'_>) -> Vec<AppearanceHit> {
        if query.vector.len() != self.shared.config.dim || query.k == 0 {
            return Vec::new();
        }
        let mut vector = query.vector.to_vec();
        if !normalize_vector(&mut vector) {
            return Vec::new();
        }
        let dim = self.shared.config.dim.max(1);
        let from_ms = query.from.map_or(i64::MIN, Timestamp::millis);
        let to_ms = query.to.map_or(i64::MAX, Timestamp::millis);
        let slices: Vec<Arc<Slice>> = read_guard(&self.shared.slices)
            .iter()
            .filter(|slice| slice.end_ms > from_ms && slice.start_ms < to_ms)
            .cloned()
            .collect();
        let ef = self.shared.ef_search.load(Ordering::Relaxed);
        let probes = self.shared.probes.load(Ordering::Relaxed);
        // Slices are searched in parallel: a 24-hour horizon is 24-96 of them.
        let per_slice = |slice: &Arc<Slice>| -> Vec<(f32, Arc<Slice>, usize)> {
            let points = read_guard(&slice.points);
            let whole_slice = from_ms <= slice.start_ms && slice.end_ms <= to_ms;
            let filter = (!whole_slice || query.near.is_some()).then_some(PlaceFilter {
                places: &points.places,
                slice_start_ms: slice.start_ms,
                from_ms,
                to_ms,
                near: query.near,
            });
            let admits = |id: usize| filter.as_ref().is_none_or(|filter| filter.admits(id));
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(query.k + 1);
            if let Some(centroids) = slice.centroids.get() {
                // Scans one list; returns how many admitted reads in it reach `min_similarity`.
                let scan = |best: &mut Vec<(f32, usize)>, list: usize| -> usize {
                    let Some(list) = points.lists.get(list) else {
                        return 0;
                    };
                    let mut qualifying = 0;
                    let points = list
                        .ids
                        .iter()
                        .zip(&list.scales)
                        .zip(list.codes.chunks_exact(dim));
                    for ((id, scale), codes) in points {
                        let id = *id as usize;
                        if admits(id) {
                            let similarity = scale * dot_with(&vector, codes);
                            if query.min_similarity.is_none_or(|min| similarity >= min) {
                                qualifying += 1;
                            }
                            keep_best(best, query.k, similarity, id);
                        }
                    }
                    qualifying
                };
                let probed = centroids.lists_to_probe(&vector, probes, ef);
                for list in &probed {
                    scan(&mut best, *list);
                }
                if best.len() < query.k && probed.len() < centroids.len() {
                    // A narrow time or area filter left fewer than k reads in the nearest lists:
                    // go on through the others, nearest centroid first, `probes` at a time, until
                    // k are found, or, with a `min_similarity` (the retro search, which runs on
                    // the consuming thread), until a round turns up no read that reaches it.
                    let rest: Vec<usize> = centroids
                        .all_lists_by_similarity(&vector)
                        .into_iter()
                        .filter(|list| !probed.contains(list))
                        .collect();
                    for round in rest.chunks(probes.max(1)) {
                        let qualifying: usize =
                            round.iter().map(|list| scan(&mut best, *list)).sum();
                        let exhausted = qualifying == 0 && query.min_similarity.is_some();
                        if exhausted || best.len() >= query.k {
                            break;
                        }
                    }
                }
            }
            let unindexed = points
                .building
                .chunks_exact(dim)
                .chain(points.waiting.chunks_exact(dim));
            for (offset, unit) in unindexed.enumerate() {
                let id = points.indexed + offset;
                if admits(id) {
                    keep_best(&mut best, query.k, dot(&vector, unit), id);
                }
            }
            drop(points);
            best.into_iter()
                .filter(|(similarity, _)| query.min_similarity.is_none_or(|min| *similarity >= min))
                .map(|(similarity, id)| (similarity, Arc::clone(slice), id))
                .collect()
        };
        let mut hits: Vec<(f32, Arc<Slice>, usize)> = self
            .shared
            .in_pool(|| slices.par_iter().flat_map_iter(per_slice).collect());
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits.truncate(query.k);
        hits.into_iter()
            .filter_map(|(similarity, slice, id)| {
                let dictionary = slice.dictionary.get().and_then(Option::as_ref);
                let read = read_guard(&slice.points).read(id, dictionary)?;
                // 8-bit codes approximate the cosine and can put a near-identical vector just
                // past 1; a cosine is never more.
                let similarity = similarity.clamp(-1.0, 1.0);
                Some(AppearanceHit { read, similarity })
            })
            .collect()
    }

    /// The unit vector of the read with this id, newest slice first; `None` when the index does
    /// not hold it (no embedding, or older than the horizon).
    pub fn unit_vector_of(&self, read_id: &str) -> Option<Vec<f32>> {
        let dim = self.shared.config.dim.max(1);
        let tag = id_tag(read_id);
        for slice in self.shared.slices().iter().rev() {
            let dictionary = slice.dictionary.get().and_then(Option::as_ref);
            let points = read_guard(&slice.points);
            let found = points
                .tags
                .iter()
                .enumerate()
                .filter(|(_, other)| **other == tag)
                .map(|(id, _)| id)
                .find(|id| {
                    points
                        .read(*id, dictionary)
                        .is_some_and(|read| read.read_id == read_id)
                });
            let Some(id) = found else {
                continue;
            };
            if id >= points.indexed {
                return points
                    .building
                    .chunks_exact(dim)
                    .chain(points.waiting.chunks_exact(dim))
                    .nth(id - points.indexed)
                    .map(<[f32]>::to_vec);
            }
            for list in &points.lists {
                if let Some(at) = list.ids.iter().position(|other| *other as usize == id) {
                    let scale = list.scales[at];
                    return list
                        .codes
                        .chunks_exact(dim)
                        .nth(at)
                        .map(|codes| codes.iter().map(|code| scale * f32::from(*code)).collect());
                }
            }
        }
        None
    }

    /// The reads (all of them, in insertion order per slice) for exact comparisons.
    pub fn reads(&self) -> Vec<PlateRead> {
        self.shared
            .slices()
            .iter()
            .flat_map(|slice| {
                let dictionary = slice.dictionary.get().and_then(Option::as_ref);
                let points = read_guard(&slice.points);
                let mut reads = points.packed.all(dictionary);
                reads.extend(points.packing.iter().cloned());
                reads.extend(points.unpacked.iter().cloned());
                reads
            })
            .collect()
    }
}

impl Drop for RecentAppearanceIndex {
    fn drop(&mut self) {
        *lock(&self.shared.builder_stop) = true;
        self.shared.work.notify_all();
        self.shared.progress.notify_all();
        if let Some(builder) = self.builder.take() {
            // The builder stops between batches; a panic there has been reported already.
            let _ = builder.join();
        }
    }
}

/// Exact nearest neighbours by cosine over `(index, vector)` pairs: what HNSW approximates, for
/// tests, benchmarks and `platestream search --exact`.
pub fn exact_nearest<'a>(
    query: &[f32],
    vectors: impl IntoIterator<Item = (usize, &'a [f32])>,
    k: usize,
) -> Vec<(usize, f32)> {
    let mut unit_query = query.to_vec();
    if !normalize_vector(&mut unit_query) || k == 0 {
        return Vec::new();
    }
    // A bounded min-heap would be faster for huge k; k is small here.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (index, vector) in vectors {
        if vector.len() != unit_query.len() {
            continue;
        }
        let similarity = crate::description::cosine(&unit_query, vector);
        if best.len() == k && similarity <= best[k - 1].1 {
            continue;
        }
        let at = best
            .iter()
            .position(|(_, other)| similarity > *other)
            .unwrap_or(best.len());
        best.insert(at, (index, similarity));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn read(id: usize, seconds: i64, lat: f64, vector: Vec<f32>) -> PlateRead {
        let mut read: PlateRead = serde_json::from_value(serde_json::json!({
            "vendor": "t", "reader_id": "r", "plate": "ABC123", "confidence": 0.9,
            "observed_at": 1_795_539_600_000_i64 + seconds * 1000, "lat": lat, "lon": -77.0,
        }))
        .unwrap();
        read.read_id = format!("read-{id}");
        read.embedding = Some(vector);
        read
    }

    fn random_unit(rng: &mut rand_chacha::ChaCha8Rng, dim: usize) -> Vec<f32> {
        let mut vector: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        normalize_vector(&mut vector);
        vector
    }

    #[test]
    fn finds_the_same_vehicle_across_slices_and_agrees_with_brute_force() {
        let dim = 32;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            slice_secs: 600,
            ..AppearanceIndexConfig::default()
        });
        let target = random_unit(&mut rng, dim);
        let mut vectors = Vec::new();
        for id in 0..3000 {
            let vector = if id % 500 == 7 {
                // The planted vehicle: its identity plus a little noise.
                let mut noisy: Vec<f32> = target
                    .iter()
                    .map(|value| value + rng.random_range(-0.02..0.02))
                    .collect();
                normalize_vector(&mut noisy);
                noisy
            } else {
                random_unit(&mut rng, dim)
            };
            vectors.push(vector.clone());
            index.insert(&read(id, id as i64, 38.9, vector)).unwrap();
        }
        assert!(index.slice_count() >= 5, "{}", index.slice_count());
        let hits = index.search(&AppearanceQuery::nearest(&target, 6));
        let exact = exact_nearest(
            &target,
            vectors.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            6,
        );
        let mut found: Vec<String> = hits.iter().map(|hit| hit.read.read_id.clone()).collect();
        let mut expected: Vec<String> = exact.iter().map(|(i, _)| format!("read-{i}")).collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
        assert!(found.iter().all(|id| id.ends_with('7')), "{found:?}");
        assert!(hits.iter().all(|hit| hit.read.embedding.is_none()));

        // A time range keeps the search to its slices, exactly.
        let from = Timestamp(1_795_539_600_000 + 1000 * 1000);
        let to = Timestamp(1_795_539_600_000 + 2000 * 1000);
        let ranged = index.search(&AppearanceQuery {
            from: Some(from),
            to: Some(to),
            ..AppearanceQuery::nearest(&target, 10)
        });
        assert!(ranged
            .iter()
            .all(|hit| hit.read.observed_at >= from && hit.read.observed_at < to));
        let mut top: Vec<&str> = ranged[..2]
            .iter()
            .map(|hit| hit.read.read_id.as_str())
            .collect();
        top.sort_unstable();
        assert_eq!(top, vec!["read-1007", "read-1507"]);
        assert!(ranged[1].similarity > 0.95);
    }

    #[test]
    fn the_horizon_and_memory_cap_drop_whole_slices() {
        let dim = 8;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            slice_secs: 100,
            horizon_secs: 300,
            ..AppearanceIndexConfig::default()
        });
        for second in 0..1000 {
            index
                .insert(&read(
                    second as usize,
                    second,
                    38.9,
                    random_unit(&mut rng, dim),
                ))
                .unwrap();
        }
        // Slices ending after 999 - 300 survive: [600,700) .. [900,1000).
        assert_eq!(index.slice_count(), 4);
        assert_eq!(
            index.insert(&read(0, 100, 38.9, random_unit(&mut rng, dim))),
            Err(NotIndexed::TooOld)
        );
        assert_eq!(
            index.insert(&read(0, 999, 38.9, vec![1.0; 3])),
            Err(NotIndexed::WrongDimension)
        );
        let capped = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            slice_secs: 100,
            max_points: 250,
            ..AppearanceIndexConfig::default()
        });
        for second in 0..500 {
            capped
                .insert(&read(
                    second as usize,
                    second,
                    38.9,
                    random_unit(&mut rng, dim),
                ))
                .unwrap();
        }
        capped.expire();
        assert!(capped.len() <= 250, "{}", capped.len());
    }

    #[test]
    fn an_area_filter_keeps_only_reads_inside_it() {
        let dim = 16;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        let target = random_unit(&mut rng, dim);
        for id in 0..400 {
            // Every other read 5 km north.
            let lat = if id % 2 == 0 { 38.9 } else { 38.945 };
            index
                .insert(&read(id, id as i64, lat, random_unit(&mut rng, dim)))
                .unwrap();
        }
        let hits = index.search(&AppearanceQuery {
            near: Some(Area {
                lat: 38.9,
                lon: -77.0,
                radius_m: 500.0,
            }),
            ..AppearanceQuery::nearest(&target, 20)
        });
        assert_eq!(hits.len(), 20);
        assert!(hits.iter().all(|hit| hit.read.lat == Some(38.9)));
    }

    #[test]
    fn a_narrow_area_finds_its_few_reads_wherever_their_lists_are() {
        let dim = 16;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        let target = random_unit(&mut rng, dim);
        let mut inside = Vec::new();
        for id in 0..4000 {
            // One read in 500 inside the area; the rest 5 km north.
            let lat = if id % 500 == 7 { 38.9 } else { 38.945 };
            let vector = random_unit(&mut rng, dim);
            if lat == 38.9 {
                inside.push((id, vector.clone()));
            }
            index.insert(&read(id, id as i64, lat, vector)).unwrap();
        }
        // A near copy of the target, inside the area.
        let copy: Vec<f32> = target.iter().map(|value| value + 0.01).collect();
        index.insert(&read(4000, 4000, 38.9, copy.clone())).unwrap();
        inside.push((4000, copy));
        index.wait_until_indexed();
        let area = Some(Area {
            lat: 38.9,
            lon: -77.0,
            radius_m: 500.0,
        });
        // Nearest k in the area: every read inside, most similar first, though most lie in
        // lists far from the target's.
        let hits = index.search(&AppearanceQuery {
            near: area,
            ..AppearanceQuery::nearest(&target, 20)
        });
        let exact: Vec<String> = exact_nearest(
            &target,
            inside.iter().map(|(id, vector)| (*id, vector.as_slice())),
            20,
        )
        .into_iter()
        .map(|(id, _)| format!("read-{id}"))
        .collect();
        let found: Vec<String> = hits.into_iter().map(|hit| hit.read.read_id).collect();
        assert_eq!(found, exact);
        // With a threshold (the retro search): the near copy, and nothing below it.
        let hits = index.search(&AppearanceQuery {
            near: area,
            min_similarity: Some(0.9),
            ..AppearanceQuery::nearest(&target, 50)
        });
        let found: Vec<&str> = hits.iter().map(|hit| hit.read.read_id.as_str()).collect();
        assert_eq!(found, ["read-4000"]);
    }

    #[test]
    fn a_slice_is_sized_by_the_reads_the_slice_before_it_held() {
        let dim = 4;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            slice_secs: 100,
            expected_points_per_slice: 400,
            ..AppearanceIndexConfig::default()
        });
        // 40 lists for 400 reads, before any read.
        assert_eq!(index.lists_per_slice(), 40);
        for id in 0..2500 {
            index
                .insert(&read(id, id as i64 / 25, 38.9, random_unit(&mut rng, dim)))
                .unwrap();
        }
        // The first slice held 2,500 reads: the next one is sized for as many.
        index
            .insert(&read(9999, 100, 38.9, random_unit(&mut rng, dim)))
            .unwrap();
        assert_eq!(index.slice_count(), 2);
        assert_eq!(index.lists_per_slice(), 100);
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
    }

    #[test]
    fn a_reads_own_vector_is_found_by_its_id_before_and_after_indexing() {
        let dim = 8;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        let vectors: Vec<Vec<f32>> = (0..1500).map(|_| random_unit(&mut rng, dim)).collect();
        for (id, vector) in vectors.iter().enumerate() {
            index
                .insert(&read(id, id as i64, 38.9, vector.clone()))
                .unwrap();
        }
        let close = |found: Option<Vec<f32>>, expected: &[f32], tolerance: f32| {
            let found = found.expect("held");
            assert!(found
                .iter()
                .zip(expected)
                .all(|(a, b)| (a - b).abs() < tolerance));
        };
        // Waiting for the builder: the floats as inserted.
        close(index.unit_vector_of("read-1499"), &vectors[1499], 1e-5);
        index.wait_until_indexed();
        // Filed: decoded from 8-bit codes, each within half a step of 1/127 of the largest.
        for id in [0, 700, 1499] {
            close(
                index.unit_vector_of(&format!("read-{id}")),
                &vectors[id],
                4e-3,
            );
        }
        assert_eq!(index.unit_vector_of("read-99999"), None);
    }

    #[test]
    fn a_read_is_found_the_moment_its_insert_returns() {
        let dim = 24;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            builder_threads: 2,
            ..AppearanceIndexConfig::default()
        });
        for id in 0..1500 {
            index
                .insert(&read(id, id as i64, 38.9, random_unit(&mut rng, dim)))
                .unwrap();
        }
        // Each new read is asked for straight after its insert, while the builder moves
        // earlier ones into the graph: wherever it is (waiting, being inserted, in the graph),
        // it is found.
        for id in 1500..1800 {
            let vector = random_unit(&mut rng, dim);
            index
                .insert(&read(id, id as i64, 38.9, vector.clone()))
                .unwrap();
            let hits = index.search(&AppearanceQuery::nearest(&vector, 1));
            assert_eq!(hits.len(), 1, "read-{id} not found");
            assert_eq!(hits[0].read.read_id, format!("read-{id}"));
            let similarity = hits[0].similarity;
            assert!((0.999..=1.0).contains(&similarity), "{similarity}");
        }
        assert_eq!(index.len(), 1800);
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
    }

    #[test]
    fn lists_and_tail_answers_equal_brute_force_when_every_list_is_probed() {
        let dim = 16;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        let mut vectors = Vec::new();
        // Filed vectors are 8-bit codes: a similarity from the lists is within `tolerance` of
        // the exact one, so near-ties may swap places; the tail is scanned in floats.
        let check =
            |index: &RecentAppearanceIndex, vectors: &[Vec<f32>], seed: u64, tolerance: f32| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                for _ in 0..20 {
                    let query = random_unit(&mut rng, dim);
                    let found: Vec<(String, f32)> = index
                        .search(&AppearanceQuery::nearest(&query, 10))
                        .into_iter()
                        .map(|hit| (hit.read.read_id, hit.similarity))
                        .collect();
                    let exact: Vec<(String, f32)> = exact_nearest(
                        &query,
                        vectors.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
                        10,
                    )
                    .into_iter()
                    .map(|(i, similarity)| (format!("read-{i}"), similarity))
                    .collect();
                    assert_eq!(found.len(), exact.len());
                    for ((_, found), (_, exact)) in found.iter().zip(&exact) {
                        assert!((found - exact).abs() < tolerance, "{found} vs {exact}");
                    }
                    for (id, similarity) in &found {
                        let number: usize = id["read-".len()..].parse().unwrap();
                        let true_similarity = crate::description::cosine(&query, &vectors[number]);
                        assert!((similarity - true_similarity).abs() < tolerance, "{id}");
                    }
                }
            };
        for id in 0..400 {
            let vector = random_unit(&mut rng, dim);
            vectors.push(vector.clone());
            index.insert(&read(id, id as i64, 38.9, vector)).unwrap();
        }
        // Right away: mostly the unindexed tail, scanned exactly.
        check(&index, &vectors, 21, 1e-4);
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
        // All in lists: probing every list is exact, so each read is in exactly one of them.
        index.set_probes(usize::MAX);
        check(&index, &vectors, 22, 1e-2);
    }

    #[test]
    fn repeated_identical_embeddings_are_indexed_and_found() {
        // A parked vehicle read again and again: unit vectors whose rounded dot product can
        // exceed 1, which hnsw_rs' own DistDot refuses with a panic.
        let dim = 128;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        // A unit vector whose dot product with itself, summed in order as DistDot sums it,
        // rounds above 1 (about a third of random ones do); normalized once more, as `insert`
        // does, so the stored copies are that vector.
        let parked = (0..)
            .map(|seed| {
                let mut unit = random_unit(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), dim);
                normalize_vector(&mut unit);
                unit
            })
            .find(|unit| unit.iter().map(|x| x * x).fold(0.0f32, |sum, x| sum + x) > 1.0)
            .unwrap();
        for id in 0..300 {
            let vector = if id % 3 == 0 {
                parked.clone()
            } else {
                random_unit(&mut rng, dim)
            };
            index.insert(&read(id, id as i64, 38.9, vector)).unwrap();
        }
        index.wait_until_indexed();
        let hits = index.search(&AppearanceQuery::nearest(&parked, 10));
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|hit| hit.similarity > 0.9999));
        assert!(hits.iter().all(|hit| hit
            .read
            .read_id
            .trim_start_matches("read-")
            .parse::<usize>()
            .unwrap()
            % 3
            == 0));
    }

    #[test]
    fn a_builder_far_behind_says_so_and_catches_up() {
        let dim = 8;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            max_unindexed_points: 50,
            builder_threads: 1,
            ..AppearanceIndexConfig::default()
        });
        // Appending takes microseconds a read, indexing far longer: the backlog passes 50.
        for id in 0..3000 {
            index
                .insert(&read(id, id as i64, 38.9, random_unit(&mut rng, dim)))
                .unwrap();
        }
        assert!(index.is_behind());
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
        assert!(!index.is_behind());
        assert_eq!(index.len(), 3000);
    }
}
