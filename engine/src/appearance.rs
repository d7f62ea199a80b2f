//! Appearance search over recent reads: "has this vehicle been seen in the last day?"
//!
//! Every read with an appearance embedding belongs to the HNSW graph (hnsw_rs) of its time slice
//! (one per hour by default). Inserting into a graph costs far more than a read may spend on the
//! consuming thread, so [`RecentAppearanceIndex::insert`] only appends the read and its unit
//! vector to its slice's unindexed tail; a background builder thread moves tails into their
//! graphs in batches with `parallel_insert_slice` (rayon, every core by default). A search walks
//! the graphs and scans the tails exactly, so a read is findable as soon as `insert` returns.
//!
//! The consuming thread is never made to wait for the builder: hotlist alerts must not queue
//! behind the retro index. When the builder falls behind by more than
//! `max_unindexed_points`, the index reports itself behind (a warning, the
//! `platestream_appearance_behind_inserts_total` counter and the
//! `platestream_appearance_unindexed_points` gauge) and the backlog stays searchable by exact scan,
//! which makes searches slower, not blind. The memory cap counts the backlog too.
//!
//! hnsw_rs cannot delete points, so the sliding horizon is kept by dropping whole slices once
//! they end before the horizon, or, oldest first, when the index holds more points than its
//! memory cap. A search runs on every slice overlapping the asked time range, with time and area
//! applied as a filter during the graph walk, and merges the answers.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use hnsw_rs::prelude::{Distance, FilterT, Hnsw};
use serde::{Deserialize, Serialize};

use crate::description::{dot, normalize_vector, Area};
use crate::read::{PlateRead, Timestamp};

/// How the index is shaped; `[appearance]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppearanceIndexConfig {
    /// Length of every embedding; others are not indexed.
    pub dim: usize,
    /// How much history is searchable.
    pub horizon_secs: u64,
    /// One graph per slice; a slice is dropped whole.
    pub slice_secs: u64,
    /// Memory cap: beyond this many points the oldest slices are dropped.
    pub max_points: usize,
    /// HNSW graph degree (M): more is better recall, more memory, slower inserts.
    pub max_connections: usize,
    /// Candidates explored while inserting. Keep it well above 2 × M: hnsw_rs links a point to
    /// 2 × M neighbours on the bottom layer and, with no more candidates than that, links the
    /// nearest without its diversity heuristic; reads of one vehicle then form islands the
    /// search cannot leave (recall@10 0.3 at M 16, ef_construction 32 in the bench).
    pub ef_construction: usize,
    /// Candidates explored while searching (at least k). A better-built graph (higher
    /// ef_construction) reaches the same recall with a smaller one.
    pub ef_search: usize,
    /// Expected reads per slice, to size the graph's tables.
    pub expected_points_per_slice: usize,
    /// Reads waiting for the builder beyond which the index reports itself behind. They stay
    /// searchable (by exact scan) and are indexed when the builder catches up.
    pub max_unindexed_points: usize,
    /// Threads the builder inserts with; 0 uses rayon's global pool (one thread per core).
    pub builder_threads: usize,
}

impl Default for AppearanceIndexConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            horizon_secs: 24 * 3600,
            slice_secs: 3600,
            max_points: 10_000_000,
            // From `benches/appearance.rs` (simulated reads, dim 128): ef_construction 64 gave
            // recall@10 0.95-0.97 at 100k points with ef_search 64; 96 builds a better graph
            // for ~35% more builder time, off the consuming thread. Recall still falls with
            // size (0.91 at 300k): raise ef_search for large slices.
            max_connections: 16,
            ef_construction: 96,
            ef_search: 64,
            expected_points_per_slice: 100_000,
            max_unindexed_points: 200_000,
            builder_threads: 0,
        }
    }
}

/// The graphs' distance: 1 − cosine of unit vectors, by the same vectorized dot product as the
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
    observed_at_ms: i64,
    lat: f32,
    lon: f32,
}

/// Everything a slice holds besides its graph, under one lock so an id names the same point in
/// every vector.
#[derive(Default)]
struct SlicePoints {
    /// By id (insertion order), indexed or not.
    places: Vec<PointPlace>,
    /// By id, without their embeddings.
    reads: Vec<PlateRead>,
    /// Ids below this are in the graph.
    indexed: usize,
    /// Unit vectors of the ids the builder is inserting now, from `indexed` on, `dim` floats each.
    building: Arc<Vec<f32>>,
    /// Unit vectors of the ids after `building`'s, not yet handed to the builder.
    waiting: Vec<f32>,
    /// Set when the slice leaves the index: the builder's work on it is moot.
    dropped: bool,
}

struct Slice {
    start_ms: i64,
    end_ms: i64,
    graph: Hnsw<'static, f32, UnitCosineDistance>,
    points: RwLock<SlicePoints>,
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
}

impl NotIndexed {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoEmbedding => "no_embedding",
            Self::WrongDimension => "wrong_dimension",
            Self::ZeroVector => "zero_vector",
            Self::TooOld => "too_old",
        }
    }
}

/// Most points the builder hands to one `parallel_insert_slice`: large enough to keep every
/// thread busy, small enough that the graph absorbs a backlog steadily (searches scan less) and
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
    /// Points appended but not yet in a graph, over all slices.
    unindexed: AtomicUsize,
    /// Whether `unindexed` passed `max_unindexed_points` (and has not come back under half).
    behind: AtomicBool,
    /// Guards the builder's stop flag; `work` wakes the builder, `progress` wakes waiters.
    builder_stop: Mutex<bool>,
    work: Condvar,
    progress: Condvar,
    pool: Option<rayon::ThreadPool>,
    /// `config.ef_search`, changeable without rebuilding the graphs.
    ef_search: AtomicUsize,
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

/// Time and area limits of one slice's search, checked on each point during the graph walk and
/// the tail scan.
struct PlaceFilter<'a> {
    places: &'a [PointPlace],
    from_ms: i64,
    to_ms: i64,
    near: Option<Area>,
}

impl FilterT for PlaceFilter<'_> {
    fn hnsw_filter(&self, id: &usize) -> bool {
        let Some(place) = self.places.get(*id) else {
            return false;
        };
        if place.observed_at_ms < self.from_ms || place.observed_at_ms >= self.to_ms {
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

    /// Inserts every slice's waiting points into its graph, a batch at a time; returns the
    /// points indexed.
    fn index_waiting(&self, stop: &dyn Fn() -> bool) -> usize {
        let dim = self.config.dim.max(1);
        let mut indexed = 0;
        for slice in self.slices() {
            loop {
                if stop() {
                    return indexed;
                }
                let (first_id, batch) = {
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
                    let batch = Arc::new(batch);
                    points.building = Arc::clone(&batch);
                    (points.indexed, batch)
                };
                let items: Vec<(&[f32], usize)> = batch
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(offset, vector)| (vector, first_id + offset))
                    .collect();
                match &self.pool {
                    Some(pool) => pool.install(|| slice.graph.parallel_insert_slice(&items)),
                    None => slice.graph.parallel_insert_slice(&items),
                }
                let count = items.len();
                {
                    let mut points = write_guard(&slice.points);
                    points.building = Arc::default();
                    if !points.dropped {
                        points.indexed += count;
                        // Reported before the count drops, so whoever sees the backlog gone
                        // also sees the index no longer behind.
                        let left = self.unindexed.load(Ordering::Relaxed).saturating_sub(count);
                        self.report_backlog(left);
                        self.unindexed.fetch_sub(count, Ordering::Relaxed);
                    }
                }
                indexed += count;
                self.progress.notify_all();
            }
        }
        indexed
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
            {
                let stop = lock(&self.builder_stop);
                if *stop {
                    return;
                }
                if self.unindexed.load(Ordering::Relaxed) == 0 {
                    let (stop, _) = self
                        .work
                        .wait_timeout(stop, BUILDER_POLL)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    if *stop {
                        return;
                    }
                }
            }
            if self.index_waiting(&stopped) == 0 {
                // Points counted but not yet pushed (an insert between its count and its
                // push), or in a slice just dropped: look again after a pause.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl RecentAppearanceIndex {
    pub fn new(config: AppearanceIndexConfig) -> Self {
        let config = AppearanceIndexConfig {
            slice_secs: config.slice_secs.max(1),
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

    /// Points appended but not yet in a graph (searched by exact scan meanwhile).
    pub fn unindexed_len(&self) -> usize {
        self.shared.unindexed.load(Ordering::Relaxed)
    }

    /// Whether the builder is more than `max_unindexed_points` behind.
    pub fn is_behind(&self) -> bool {
        self.shared.behind.load(Ordering::Relaxed)
    }

    /// Candidates explored per search from now on (at least k): recall against speed, without
    /// rebuilding the graphs.
    pub fn set_ef_search(&self, ef_search: usize) {
        self.shared.ef_search.store(ef_search, Ordering::Relaxed);
    }

    pub fn slice_count(&self) -> usize {
        read_guard(&self.shared.slices).len()
    }

    /// Blocks until every point appended so far is in a graph: for bulk loads that search
    /// right after (`platestream search`), and benches.
    pub fn wait_until_indexed(&self) {
        if self.builder.is_none() {
            self.shared.index_waiting(&|| false);
            return;
        }
        let mut stop = lock(&self.shared.builder_stop);
        while self.unindexed_len() > 0 && !*stop {
            self.shared.work.notify_one();
            stop = self
                .shared
                .progress
                .wait_timeout(stop, BUILDER_POLL)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
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
        let config = &self.shared.config;
        let slice = Arc::new(Slice {
            start_ms,
            end_ms: start_ms.saturating_add(slice_ms),
            graph: Hnsw::new(
                config.max_connections,
                config.expected_points_per_slice.max(1),
                16,
                config.ef_construction.max(1),
                UnitCosineDistance,
            ),
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
            observed_at_ms,
            lat: read.lat.map_or(f32::NAN, |lat| lat as f32),
            lon: read.lon.map_or(f32::NAN, |lon| lon as f32),
        };
        let points = {
            let mut points = write_guard(&slice.points);
            if points.dropped {
                // Expired between finding the slice and now: beyond the horizon or the cap.
                return Err(NotIndexed::TooOld);
            }
            points.places.push(place);
            points.reads.push(kept);
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
    /// similar first. Covers every point inserted before the call: the graphs, and by exact
    /// scan what the builder has not indexed yet.
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
        let ef = self.shared.ef_search.load(Ordering::Relaxed).max(query.k);
        let mut hits: Vec<(f32, Arc<Slice>, usize)> = Vec::new();
        for slice in slices {
            let points = read_guard(&slice.points);
            let whole_slice = from_ms <= slice.start_ms && slice.end_ms <= to_ms;
            let filter = (!whole_slice || query.near.is_some()).then_some(PlaceFilter {
                places: &points.places,
                from_ms,
                to_ms,
                near: query.near,
            });
            let mut best: Vec<(f32, usize)> = Vec::with_capacity(query.k + 1);
            let neighbours = match &filter {
                None => slice.graph.search(&vector, query.k, ef),
                Some(filter) => {
                    let filter: &dyn FilterT = filter;
                    slice
                        .graph
                        .search_filter(&vector, query.k, ef, Some(filter))
                }
            };
            for neighbour in neighbours {
                // Points the builder is inserting right now may already be in the graph; the
                // scan below covers them, exactly.
                if neighbour.d_id < points.indexed {
                    keep_best(&mut best, query.k, 1.0 - neighbour.distance, neighbour.d_id);
                }
            }
            let unindexed = points
                .building
                .chunks_exact(dim)
                .chain(points.waiting.chunks_exact(dim));
            for (offset, unit) in unindexed.enumerate() {
                let id = points.indexed + offset;
                if filter.as_ref().is_none_or(|filter| filter.hnsw_filter(&id)) {
                    keep_best(&mut best, query.k, dot(&vector, unit), id);
                }
            }
            drop(points);
            for (similarity, id) in best {
                if query.min_similarity.is_some_and(|min| similarity < min) {
                    continue;
                }
                hits.push((similarity, Arc::clone(&slice), id));
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits.truncate(query.k);
        hits.into_iter()
            .filter_map(|(similarity, slice, id)| {
                let points = read_guard(&slice.points);
                points.reads.get(id).map(|read| AppearanceHit {
                    read: read.clone(),
                    similarity,
                })
            })
            .collect()
    }

    /// The reads (all of them, in insertion order per slice) for exact comparisons.
    pub fn reads(&self) -> Vec<PlateRead> {
        self.shared
            .slices()
            .iter()
            .flat_map(|slice| read_guard(&slice.points).reads.clone())
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
            assert!(hits[0].similarity > 0.999, "{}", hits[0].similarity);
        }
        assert_eq!(index.len(), 1800);
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
    }

    #[test]
    fn graph_and_tail_answers_equal_brute_force_on_a_small_set() {
        let dim = 16;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        });
        let mut vectors = Vec::new();
        let check = |index: &RecentAppearanceIndex, vectors: &[Vec<f32>], seed: u64| {
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
                let ids = |hits: &[(String, f32)]| -> Vec<String> {
                    hits.iter().map(|(id, _)| id.clone()).collect()
                };
                assert_eq!(ids(&found), ids(&exact));
                for ((_, found), (_, exact)) in found.iter().zip(&exact) {
                    assert!((found - exact).abs() < 1e-4, "{found} vs {exact}");
                }
            }
        };
        for id in 0..400 {
            let vector = random_unit(&mut rng, dim);
            vectors.push(vector.clone());
            index.insert(&read(id, id as i64, 38.9, vector)).unwrap();
        }
        // Right away: mostly the unindexed tail, scanned exactly.
        check(&index, &vectors, 21);
        index.wait_until_indexed();
        assert_eq!(index.unindexed_len(), 0);
        // All in the graph: on a set this small HNSW is exact too.
        check(&index, &vectors, 22);
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
