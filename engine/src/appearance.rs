//! Appearance search over recent reads: "has this vehicle been seen in the last day?"
//!
//! Every read with an appearance embedding goes into an HNSW graph (hnsw_rs) of its time slice
//! (one per hour by default). hnsw_rs cannot delete points, so the sliding horizon is kept by
//! dropping whole slices once they end before the horizon, or, oldest first, when the index holds
//! more points than its memory cap. A search runs on every slice overlapping the asked time range,
//! with time and area applied as a filter during the graph walk, and merges the answers.

use std::sync::{Arc, RwLock};

use hnsw_rs::prelude::{DistDot, FilterT, Hnsw};
use serde::{Deserialize, Serialize};

use crate::description::{normalize_vector, Area};
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
    /// Candidates explored while inserting.
    pub ef_construction: usize,
    /// Candidates explored while searching (at least k).
    pub ef_search: usize,
    /// Expected reads per slice, to size the graph's tables.
    pub expected_points_per_slice: usize,
}

impl Default for AppearanceIndexConfig {
    fn default() -> Self {
        Self {
            dim: 128,
            horizon_secs: 24 * 3600,
            slice_secs: 3600,
            max_points: 10_000_000,
            max_connections: 16,
            ef_construction: 64,
            ef_search: 64,
            expected_points_per_slice: 100_000,
        }
    }
}

/// Where a point is, for filtering without touching the read.
#[derive(Debug, Clone, Copy)]
struct PointPlace {
    observed_at_ms: i64,
    lat: f32,
    lon: f32,
}

struct Slice {
    start_ms: i64,
    end_ms: i64,
    graph: Hnsw<'static, f32, DistDot>,
    /// By data id: the graph's points are numbered in insertion order.
    places: RwLock<Vec<PointPlace>>,
    reads: RwLock<Vec<PlateRead>>,
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

/// The time-sliced HNSW index of recent reads' embeddings. Share it as `Arc`: inserts and
/// searches take `&self` from any thread.
pub struct RecentAppearanceIndex {
    config: AppearanceIndexConfig,
    slices: RwLock<Vec<Arc<Slice>>>,
    newest_ms: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for RecentAppearanceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentAppearanceIndex")
            .field("config", &self.config)
            .field("points", &self.len())
            .finish()
    }
}

fn read_guard<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // A poisoned lock only means another thread panicked mid-push of a plain vector.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write_guard<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Time and area limits of one slice's search, checked on each point during the graph walk.
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

impl RecentAppearanceIndex {
    pub fn new(config: AppearanceIndexConfig) -> Self {
        Self {
            config: AppearanceIndexConfig {
                slice_secs: config.slice_secs.max(1),
                max_connections: config.max_connections.clamp(2, 255),
                ..config
            },
            slices: RwLock::new(Vec::new()),
            newest_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    pub fn config(&self) -> &AppearanceIndexConfig {
        &self.config
    }

    /// Points held.
    pub fn len(&self) -> usize {
        read_guard(&self.slices)
            .iter()
            .map(|slice| slice.graph.get_nb_point())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn slice_count(&self) -> usize {
        read_guard(&self.slices).len()
    }

    fn slice_ms(&self) -> i64 {
        i64::try_from(self.config.slice_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn horizon_ms(&self) -> i64 {
        i64::try_from(self.config.horizon_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn slice_for(&self, observed_at_ms: i64) -> Arc<Slice> {
        let slice_ms = self.slice_ms();
        let start_ms = observed_at_ms.div_euclid(slice_ms) * slice_ms;
        if let Some(slice) = read_guard(&self.slices)
            .iter()
            .find(|slice| slice.start_ms == start_ms)
        {
            return Arc::clone(slice);
        }
        let mut slices = write_guard(&self.slices);
        if let Some(slice) = slices.iter().find(|slice| slice.start_ms == start_ms) {
            return Arc::clone(slice);
        }
        let slice = Arc::new(Slice {
            start_ms,
            end_ms: start_ms.saturating_add(slice_ms),
            graph: Hnsw::new(
                self.config.max_connections,
                self.config.expected_points_per_slice.max(1),
                16,
                self.config.ef_construction.max(1),
                DistDot,
            ),
            places: RwLock::new(Vec::new()),
            reads: RwLock::new(Vec::new()),
        });
        slices.push(Arc::clone(&slice));
        slices.sort_by_key(|slice| slice.start_ms);
        slice
    }

    /// Drops slices that ended before the horizon, then the oldest while over the memory cap.
    /// Returns the number of points dropped.
    pub fn expire(&self) -> usize {
        let newest = self.newest_ms.load(std::sync::atomic::Ordering::Relaxed);
        if newest == i64::MIN {
            return 0;
        }
        let cutoff = newest.saturating_sub(self.horizon_ms());
        let mut slices = write_guard(&self.slices);
        let mut dropped = 0;
        slices.retain(|slice| {
            let keep = slice.end_ms > cutoff;
            if !keep {
                dropped += slice.graph.get_nb_point();
            }
            keep
        });
        let mut total: usize = slices.iter().map(|slice| slice.graph.get_nb_point()).sum();
        // Never drop the newest slice: it is the one being filled.
        while total > self.config.max_points && slices.len() > 1 {
            let oldest = slices.remove(0);
            total -= oldest.graph.get_nb_point();
            dropped += oldest.graph.get_nb_point();
        }
        dropped
    }

    /// Indexes a read's embedding (scaled to unit length); the read is kept, without its
    /// embedding, to report where and when it was seen.
    pub fn insert(&self, read: &PlateRead) -> Result<(), NotIndexed> {
        let embedding = read.embedding.as_deref().ok_or(NotIndexed::NoEmbedding)?;
        if embedding.len() != self.config.dim {
            return Err(NotIndexed::WrongDimension);
        }
        let observed_at_ms = read.observed_at.millis();
        let newest = self
            .newest_ms
            .fetch_max(observed_at_ms, std::sync::atomic::Ordering::Relaxed)
            .max(observed_at_ms);
        if observed_at_ms < newest.saturating_sub(self.horizon_ms()) {
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
        let id = {
            // Both vectors grow under the places lock, so an id names the same point in both.
            let mut places = write_guard(&slice.places);
            let mut reads = write_guard(&slice.reads);
            places.push(place);
            reads.push(kept);
            places.len() - 1
        };
        slice.graph.insert_slice((vector.as_slice(), id));
        // A new slice may push an old one past the horizon; the cap is checked now and then.
        let points = slice.graph.get_nb_point();
        if points == 1 || points % 4096 == 0 {
            self.expire();
        }
        Ok(())
    }

    /// The `k` reads most similar to the query vector within its time range and area, most
    /// similar first.
    pub fn search(&self, query: &AppearanceQuery<'_>) -> Vec<AppearanceHit> {
        if query.vector.len() != self.config.dim || query.k == 0 {
            return Vec::new();
        }
        let mut vector = query.vector.to_vec();
        if !normalize_vector(&mut vector) {
            return Vec::new();
        }
        let from_ms = query.from.map_or(i64::MIN, Timestamp::millis);
        let to_ms = query.to.map_or(i64::MAX, Timestamp::millis);
        let slices: Vec<Arc<Slice>> = read_guard(&self.slices)
            .iter()
            .filter(|slice| slice.end_ms > from_ms && slice.start_ms < to_ms)
            .cloned()
            .collect();
        let ef = self.config.ef_search.max(query.k);
        let mut hits: Vec<(f32, Arc<Slice>, usize)> = Vec::new();
        for slice in slices {
            let whole_slice = from_ms <= slice.start_ms && slice.end_ms <= to_ms;
            let neighbours = {
                let places = read_guard(&slice.places);
                if whole_slice && query.near.is_none() {
                    slice.graph.search(&vector, query.k, ef)
                } else {
                    let filter = PlaceFilter {
                        places: &places,
                        from_ms,
                        to_ms,
                        near: query.near,
                    };
                    let filter: &dyn FilterT = &filter;
                    slice
                        .graph
                        .search_filter(&vector, query.k, ef, Some(filter))
                }
            };
            for neighbour in neighbours {
                // DistDot is 1 - cosine for unit vectors.
                let similarity = 1.0 - neighbour.distance;
                if query.min_similarity.is_some_and(|min| similarity < min) {
                    continue;
                }
                hits.push((similarity, Arc::clone(&slice), neighbour.d_id));
            }
        }
        hits.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits.truncate(query.k);
        hits.into_iter()
            .filter_map(|(similarity, slice, id)| {
                let reads = read_guard(&slice.reads);
                reads.get(id).map(|read| AppearanceHit {
                    read: read.clone(),
                    similarity,
                })
            })
            .collect()
    }

    /// The reads (all of them, in insertion order per slice) for exact comparisons.
    pub fn reads(&self) -> Vec<PlateRead> {
        read_guard(&self.slices)
            .iter()
            .flat_map(|slice| read_guard(&slice.reads).clone())
            .collect()
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
}
