//! Vehicle descriptions and appearance search, measured on one machine in one run:
//! `cargo bench -p platestream-engine --bench appearance`.
//!
//! 1. HNSW (hnsw_rs, through `RecentAppearanceIndex`) against exact brute force over the same
//!    simulated embeddings (each vehicle's identity vector plus per-read noise, as
//!    `platestream simulate --embedding-dim` makes them): recall@10, queries/s on one thread for
//!    both, insertion rate, and memory per vector (resident-set growth while building).
//! 2. Attribute BOLO matching: reads/s on one core against 100, 10k and 100k BOLOs, beside the
//!    same store holding no BOLOs.
//! 3. Retro search: an index of a 24-hour horizon (24 hourly slices), time to the first answer
//!    for a new BOLO's reference vector.
//!
//! Sizes are parameters (environment): `APPEARANCE_POINTS` (default 200000), `APPEARANCE_DIM`
//! (128), `APPEARANCE_QUERIES` (200), `APPEARANCE_EF` (search breadth, 64), `APPEARANCE_M`
//! (graph degree, 16), `APPEARANCE_EF_CONSTRUCTION` (64), `RETRO_POINTS` (default: POINTS).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use platestream_engine::appearance::{
    AppearanceIndexConfig, AppearanceQuery, RecentAppearanceIndex,
};
use platestream_engine::description::dot;
use platestream_engine::hotlist::{entry_from_fields, EntryFields, HotlistEntry};
use platestream_engine::matcher::{Match, Matcher};
use platestream_engine::normalize::normalize_read;
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::vendor::vocabulary::{BODY_TYPES, COLORS};
use platestream_engine::{PlateRead, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn simulated_reads(
    count: usize,
    dim: usize,
    vehicles: usize,
    start_ms: i64,
    span_ms: i64,
) -> (Vec<PlateRead>, Simulator) {
    let mut simulator = Simulator::new(SimulatorConfig {
        vehicles,
        embedding_dim: dim,
        ..SimulatorConfig::default()
    });
    let step = (span_ms / count.max(1) as i64).max(1);
    let reads = (0..count)
        .map(|index| {
            simulator
                .next_read(Timestamp(start_ms + index as i64 * step))
                .0
        })
        .collect();
    (reads, simulator)
}

/// The fairest brute force: every stored vector is unit length (as the index stores them), so
/// one dot product per vector, and a bounded sorted top-k.
fn exact_nearest_unit(query: &[f32], vectors: &[&[f32]], k: usize) -> Vec<(usize, f32)> {
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (index, vector) in vectors.iter().enumerate() {
        let similarity = dot(query, vector);
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

fn hnsw_against_brute_force() {
    let points = env_usize("APPEARANCE_POINTS", 200_000);
    let dim = env_usize("APPEARANCE_DIM", 128);
    let queries = env_usize("APPEARANCE_QUERIES", 200);
    let ef = env_usize("APPEARANCE_EF", 64);
    let max_connections = env_usize("APPEARANCE_M", 16);
    let ef_construction = env_usize("APPEARANCE_EF_CONSTRUCTION", 64);
    let k = 10;
    println!("== HNSW vs brute force: {points} vectors of dim {dim}, {queries} queries, k={k}, M={max_connections}, ef_construction={ef_construction}, ef_search={ef}");
    let start_ms = 1_795_539_600_000;
    let generated = Instant::now();
    let (reads, simulator) =
        simulated_reads(points, dim, (points / 20).max(1000), start_ms, 3_600_000);
    println!("generated in {:.1} s", generated.elapsed().as_secs_f64());

    let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
        dim,
        slice_secs: 10 * 3600,
        horizon_secs: 100 * 3600,
        max_points: usize::MAX,
        max_connections,
        ef_construction,
        ef_search: ef,
        expected_points_per_slice: points,
    });
    let before = resident_bytes();
    let started = Instant::now();
    for (done, read) in reads.iter().enumerate() {
        index
            .insert(read)
            .expect("simulated embeddings have the configured dimension");
        if done > 0 && done % 100_000 == 0 {
            eprintln!(
                "  inserted {done} ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let insert_seconds = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    println!(
        "insertion: {:.0} vectors/s on one thread ({points} in {insert_seconds:.1} s)",
        points as f64 / insert_seconds
    );
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "memory: {:.0} bytes per vector resident growth (vector itself {} bytes; includes the kept read metadata)",
            after.saturating_sub(before) as f64 / points as f64,
            dim * 4
        );
    }

    // Queries: a fresh noisy view of vehicles seen in the data (what a BOLO photo is), drawn
    // from reads' vehicles so every query has true neighbours.
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let vectors: Vec<&[f32]> = reads
        .iter()
        .map(|read| read.embedding.as_deref().unwrap_or(&[]))
        .collect();
    let query_vectors: Vec<Vec<f32>> = (0..queries)
        .map(|_| {
            let pick = rng.random_range(0..reads.len());
            let mut noisy: Vec<f32> = vectors[pick]
                .iter()
                .map(|value| value + rng.random_range(-0.03..0.03))
                .collect();
            platestream_engine::description::normalize_vector(&mut noisy);
            noisy
        })
        .collect();
    drop(simulator);

    let started = Instant::now();
    let exact: Vec<Vec<(usize, f32)>> = query_vectors
        .iter()
        .map(|query| exact_nearest_unit(query, &vectors, k))
        .collect();
    let brute_seconds = started.elapsed().as_secs_f64();
    let brute_qps = queries as f64 / brute_seconds;

    let started = Instant::now();
    let approximate: Vec<Vec<(String, f32)>> = query_vectors
        .iter()
        .map(|query| {
            index
                .search(&AppearanceQuery::nearest(query, k))
                .into_iter()
                .map(|hit| (hit.read.read_id, hit.similarity))
                .collect()
        })
        .collect();
    let hnsw_seconds = started.elapsed().as_secs_f64();
    let hnsw_qps = queries as f64 / hnsw_seconds;

    // A hit counts when it is among the exact top k, or ties the k-th similarity (repeated reads
    // of one parked vehicle can tie).
    let mut found = 0usize;
    for (exact, approximate) in exact.iter().zip(&approximate) {
        let kth = exact.last().map_or(f32::MIN, |(_, similarity)| *similarity);
        let exact_ids: Vec<&str> = exact
            .iter()
            .map(|(i, _)| reads[*i].read_id.as_str())
            .collect();
        found += approximate
            .iter()
            .filter(|(id, similarity)| {
                exact_ids.contains(&id.as_str()) || *similarity >= kth - 1e-6
            })
            .count()
            .min(k);
    }
    let recall = found as f64 / (queries * k) as f64;
    println!("recall@{k}: {recall:.4}");
    println!(
        "queries/s on one thread: HNSW {hnsw_qps:.0}, brute force {brute_qps:.1} (HNSW {:.0}x brute force)",
        hnsw_qps / brute_qps
    );
}

fn bolo_matching() {
    println!("== Attribute BOLO matching, one core");
    let (mut reads, _) = simulated_reads(
        20_000,
        0,
        200_000,
        Timestamp::now().millis() - 3_600_000,
        3_000_000,
    );
    for read in &mut reads {
        normalize_read(read, Timestamp::now()).expect("simulated reads are valid");
    }
    let makes = [
        "toyota",
        "honda",
        "ford",
        "chevrolet",
        "nissan",
        "hyundai",
        "kia",
        "subaru",
        "jeep",
        "tesla",
        "bmw",
        "mercedes-benz",
        "volkswagen",
        "mazda",
        "dodge",
        "ram",
        "gmc",
        "lexus",
    ];
    let models = [
        "camry",
        "civic",
        "f-150",
        "silverado",
        "altima",
        "rav4",
        "cr-v",
        "accord",
        "model-3",
        "outback",
    ];
    let bolos_of = |count: usize| -> Vec<Arc<HotlistEntry>> {
        let mut rng = ChaCha8Rng::seed_from_u64(count as u64);
        (0..count)
            .map(|index| {
                let mut fields = EntryFields {
                    list: Some("local_bolo".into()),
                    id: Some(format!("bolo-{index}")),
                    ..EntryFields::default()
                };
                fields.set("make", makes[rng.random_range(0..makes.len())]);
                if rng.random_bool(0.7) {
                    fields.set("model", models[rng.random_range(0..models.len())]);
                }
                fields.set("color", COLORS[rng.random_range(0..COLORS.len())]);
                if rng.random_bool(0.5) {
                    fields.set(
                        "body_type",
                        BODY_TYPES[rng.random_range(0..BODY_TYPES.len())],
                    );
                }
                Arc::new(entry_from_fields(fields).expect("valid BOLO"))
            })
            .collect()
    };
    let measure = |store: &HotlistStore| {
        let mut matches: Vec<Match> = Vec::new();
        let now = Timestamp::now();
        let mut hits = 0usize;
        let rounds = 10;
        let started = Instant::now();
        for _ in 0..rounds {
            for read in &reads {
                matches.clear();
                store.match_read(black_box(read), now, &mut matches);
                hits += matches.len();
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        ((rounds * reads.len()) as f64 / seconds, hits / rounds)
    };
    let (baseline, _) = measure(&HotlistStore::new(MatchModes::FULL));
    println!("no BOLOs: {:.2} M reads/s", baseline / 1e6);
    for count in [100, 10_000, 100_000] {
        let store = HotlistStore::from_entries(MatchModes::FULL, &[], bolos_of(count));
        let (rate, hits) = measure(&store);
        println!(
            "{count} BOLOs: {:.2} M reads/s ({:.0}% of no BOLOs), {hits} hits per {} reads",
            rate / 1e6,
            100.0 * rate / baseline,
            reads.len()
        );
    }
}

fn retro_search() {
    let points = env_usize("RETRO_POINTS", env_usize("APPEARANCE_POINTS", 200_000));
    let dim = env_usize("APPEARANCE_DIM", 128);
    println!("== Retro search over a 24-hour horizon in hourly slices: {points} reads (1,000 reads/s for 24 h would be 86.4M)");
    let start_ms = 1_795_539_600_000;
    let (reads, simulator) = simulated_reads(
        points,
        dim,
        (points / 20).max(1000),
        start_ms,
        24 * 3_600_000,
    );
    let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
        dim,
        expected_points_per_slice: points / 24 + 1,
        ..AppearanceIndexConfig::default()
    });
    let started = Instant::now();
    for read in &reads {
        let _ = index.insert(read);
    }
    println!(
        "built {} slices in {:.1} s ({:.0} reads/s)",
        index.slice_count(),
        started.elapsed().as_secs_f64(),
        points as f64 / started.elapsed().as_secs_f64()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut first_answers = Vec::new();
    for _ in 0..20 {
        let vehicle = rng.random_range(0..simulator.vehicle_count() as u32);
        let Some(reference) = simulator.identity_vector(vehicle) else {
            continue;
        };
        let started = Instant::now();
        let hits = index.search(&AppearanceQuery {
            min_similarity: Some(0.85),
            ..AppearanceQuery::nearest(reference, 50)
        });
        first_answers.push(started.elapsed().as_secs_f64() * 1000.0);
        black_box(hits);
    }
    first_answers.sort_by(f64::total_cmp);
    println!(
        "time to answer a new BOLO's reference vector (k=50, all 24 slices): median {:.2} ms, max {:.2} ms",
        first_answers[first_answers.len() / 2],
        first_answers[first_answers.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter picks one part.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|filter| name.contains(filter));
    if run("hnsw") {
        hnsw_against_brute_force();
    }
    if run("bolo") {
        bolo_matching();
    }
    if run("retro") {
        retro_search();
    }
}
