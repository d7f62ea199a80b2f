//! Vehicle descriptions and appearance search, measured on one machine in one run:
//! `cargo bench -p platestream-engine --bench appearance` (a bench binary, not criterion; a name
//! argument runs one part: `hnsw`, `bolo`, `retro`).
//!
//! 1. The index (`RecentAppearanceIndex`: inverted lists under an hnsw_rs graph of centroids)
//!    against exact brute force over the same simulated embeddings (each vehicle's identity
//!    vector plus per-read noise, as `platestream simulate --embedding-dim` makes them): for each
//!    shape asked for (lists; M and ef_construction of the centroid graph), the append rate on
//!    the consuming thread, the indexing rate of the background builder (all its threads,
//!    training included), memory per vector (resident-set growth while building: meaningful for
//!    the first shape of a run only, freed memory is reused after), and for each number of lists
//!    probed: recall@10, queries/s on one thread, and the ratio to brute force (one thread, the
//!    same vectorized dot product) measured in the same run.
//! 2. Attribute BOLO matching: reads/s on one core against 100, 10k and 100k BOLOs, beside the
//!    same store holding no BOLOs.
//! 3. Retro search: 24 hourly slices (a 24-hour horizon, scaled down: see the printout), time
//!    to the answer for a new BOLO's reference vector over all of them, and for a read appended
//!    a moment before the search.
//! 4. `horizon`: a stream at 1,000 reads/s into a 24-hour horizon under a memory cap, as the
//!    engine holds it, and the time to answer over what the cap kept (`HORIZON_RATE`,
//!    `HORIZON_SLICE_SECS`, `HORIZON_MAX_POINTS`, `HORIZON_VEHICLES`). Not run by default: the
//!    whole 24 hours take about an hour and 20 GB (`HORIZON_MAX_POINTS=5000000`: 3 minutes,
//!    about 1.5 GB).
//!
//! Sizes are parameters (environment): `APPEARANCE_POINTS` (default 100000), `APPEARANCE_DIM`
//! (128), `APPEARANCE_QUERIES` (200), `APPEARANCE_LISTS` (0: automatic; a comma list runs
//! each), `APPEARANCE_M` (centroid graph degree, comma list), `APPEARANCE_EF_CONSTRUCTION`
//! (comma list), `APPEARANCE_PROBES` (lists scanned per search, comma list), `APPEARANCE_EF`
//! (centroid graph search breadth, comma list) (defaults: the index's), `APPEARANCE_BUILDER_THREADS` (0: one per core), `RETRO_POINTS_PER_SLICE` (default
//! POINTS / 24).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use platestream_engine::appearance::{
    AppearanceHit, AppearanceIndexConfig, AppearanceQuery, RecentAppearanceIndex,
};
use platestream_engine::description::{dot, Area};
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

fn env_list(name: &str, default: usize) -> Vec<usize> {
    let values: Vec<usize> = std::env::var(name)
        .ok()
        .map(|value| {
            value
                .split(',')
                .filter_map(|item| item.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if values.is_empty() {
        vec![default]
    } else {
        values
    }
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
/// one dot product per vector (the one the index's graphs use), and a bounded sorted top-k.
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

/// Appends every read, then waits for the builder: (append seconds, seconds until all indexed).
fn build(index: &RecentAppearanceIndex, reads: &[PlateRead]) -> (f64, f64) {
    let started = Instant::now();
    for read in reads {
        index
            .insert(read)
            .expect("simulated embeddings have the configured dimension");
    }
    let appended = started.elapsed().as_secs_f64();
    // Progress on stderr while the builder works through the backlog.
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last_report = Instant::now();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if last_report.elapsed().as_secs() >= 15 {
                    last_report = Instant::now();
                    let indexed = reads.len() - index.unindexed_len();
                    eprintln!(
                        "  indexed {indexed} of {} after {:.0} s ({:.0}/s)",
                        reads.len(),
                        started.elapsed().as_secs_f64(),
                        indexed as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        });
        index.wait_until_indexed();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    (appended, started.elapsed().as_secs_f64())
}

fn hnsw_against_brute_force() {
    let points = env_usize("APPEARANCE_POINTS", 100_000);
    let dim = env_usize("APPEARANCE_DIM", 128);
    let queries = env_usize("APPEARANCE_QUERIES", 200);
    let builder_threads = env_usize("APPEARANCE_BUILDER_THREADS", 0);
    let defaults = AppearanceIndexConfig::default();
    let shapes: Vec<(usize, usize, usize)> = env_list("APPEARANCE_LISTS", defaults.lists)
        .into_iter()
        .flat_map(|lists| {
            env_list("APPEARANCE_M", defaults.max_connections)
                .into_iter()
                .map(move |m| (lists, m))
        })
        .flat_map(|(lists, m)| {
            env_list("APPEARANCE_EF_CONSTRUCTION", defaults.ef_construction)
                .into_iter()
                .map(move |ef_construction| (lists, m, ef_construction))
        })
        .collect();
    let probe_counts = env_list("APPEARANCE_PROBES", defaults.probes);
    let ef_searches = env_list("APPEARANCE_EF", defaults.ef_search);
    let k = 10;
    let threads = if builder_threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        builder_threads
    };
    println!("== Appearance index vs brute force: {points} vectors of dim {dim}, {queries} queries, k={k}, builder threads {threads}");
    let start_ms = 1_795_539_600_000;
    let generated = Instant::now();
    let (reads, simulator) =
        simulated_reads(points, dim, (points / 20).max(1000), start_ms, 3_600_000);
    println!("generated in {:.1} s", generated.elapsed().as_secs_f64());

    // Queries: a fresh noisy view of vehicles seen in the data (what a BOLO photo is), drawn
    // from reads' vehicles so every query has true neighbours.
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let units: Vec<Vec<f32>> = reads
        .iter()
        .map(|read| {
            let mut unit = read.embedding.clone().unwrap_or_default();
            platestream_engine::description::normalize_vector(&mut unit);
            unit
        })
        .collect();
    let vectors: Vec<&[f32]> = units.iter().map(Vec::as_slice).collect();
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
    let brute_qps = queries as f64 / started.elapsed().as_secs_f64();
    println!("brute force: {brute_qps:.1} queries/s on one thread");
    let positions: std::collections::HashMap<&str, usize> = reads
        .iter()
        .enumerate()
        .map(|(at, read)| (read.read_id.as_str(), at))
        .collect();

    for (lists, max_connections, ef_construction) in shapes {
        let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            slice_secs: 10 * 3600,
            horizon_secs: 100 * 3600,
            max_points: usize::MAX,
            lists,
            probes: defaults.probes,
            max_connections,
            ef_construction,
            ef_search: defaults.ef_search,
            expected_points_per_slice: points,
            max_unindexed_points: usize::MAX,
            builder_threads,
        });
        println!(
            "-- {} lists, centroid graph M={max_connections}, ef_construction={ef_construction}",
            index.lists_per_slice()
        );
        let before = resident_bytes();
        let (append_seconds, indexed_seconds) = build(&index, &reads);
        let after = resident_bytes();
        println!(
            "append (consuming thread): {:.0} reads/s; indexed by the builder: {:.0} points/s ({points} in {indexed_seconds:.1} s, {threads} threads)",
            points as f64 / append_seconds,
            points as f64 / indexed_seconds,
        );
        if let (Some(before), Some(after)) = (before, after) {
            println!(
                "memory: {:.0} bytes per vector resident growth, {:.0} held by the index's points (the vector itself is {} bytes as floats; includes the kept read)",
                after.saturating_sub(before) as f64 / points as f64,
                index.heap_bytes() as f64 / points as f64,
                dim * 4
            );
        }
        let searches = probe_counts
            .iter()
            .flat_map(|probes| ef_searches.iter().map(move |ef| (*probes, *ef)));
        for (probes, ef_search) in searches {
            index.set_probes(probes);
            index.set_ef_search(ef_search);
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
            let index_qps = queries as f64 / started.elapsed().as_secs_f64();
            // Ties are judged on exact similarities: the index reports ones from 8-bit codes.
            let approximate: Vec<Vec<(String, f32)>> = approximate
                .into_iter()
                .zip(&query_vectors)
                .map(|(hits, query)| {
                    hits.into_iter()
                        .map(|(id, reported)| {
                            let exact = positions
                                .get(id.as_str())
                                .map_or(reported, |at| dot(query, vectors[*at]));
                            (id, exact)
                        })
                        .collect()
                })
                .collect();
            let recall = recall_at(k, &reads, &exact, &approximate);
            println!(
                "probes={probes} ef_search={ef_search}: recall@{k} {recall:.4}; queries/s on one thread: index {index_qps:.0}, brute force {brute_qps:.1} ({:.1}x)",
                index_qps / brute_qps
            );
        }
    }
}

/// A hit counts when it is among the exact top k, or ties the k-th similarity (repeated reads
/// of one parked vehicle can tie).
fn recall_at(
    k: usize,
    reads: &[PlateRead],
    exact: &[Vec<(usize, f32)>],
    approximate: &[Vec<(String, f32)>],
) -> f64 {
    let mut found = 0usize;
    for (exact, approximate) in exact.iter().zip(approximate) {
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
    found as f64 / (exact.len() * k) as f64
}

/// Where the simulated readers are (Washington, DC).
const READERS_CITY: (f64, f64) = (38.90, -77.03);

/// Generic descriptions, all where the readers are, none limited to an area or a time: every
/// read of a Toyota meets every "silver Toyota", so the candidates per read grow with the list.
/// The worst case, not what a list looks like.
fn generic_bolos(count: usize) -> Vec<Arc<HotlistEntry>> {
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
}

/// A national feed of descriptions: each of a vehicle on the road (make, model, color and body
/// type of a simulated vehicle; 80 % name the model, half the body type), limited to an area
/// around a point drawn evenly over the continental US (19 in 20 within 1-25 km of it, the rest
/// 100-400 km, a region), half of them to a time window around now. A larger list covers more
/// places, so about as many BOLOs apply to the readers' city at any size; the readers' city
/// is, like most cities, not where most of them are.
fn national_bolos(count: usize, simulator: &Simulator, now: Timestamp) -> Vec<Arc<HotlistEntry>> {
    let mut rng = ChaCha8Rng::seed_from_u64(count as u64 + 1);
    let now = now.millis();
    (0..count)
        .map(|index| {
            let vehicle = rng.random_range(0..simulator.vehicle_count() as u32);
            let looks = simulator
                .vehicle_looks(vehicle)
                .expect("a simulated vehicle");
            let mut fields = EntryFields {
                list: Some("local_bolo".into()),
                id: Some(format!("bolo-{index}")),
                ..EntryFields::default()
            };
            fields.set("make", looks.make);
            if rng.random_bool(0.8) {
                fields.set("model", looks.model);
            }
            fields.set("color", looks.color);
            if rng.random_bool(0.5) {
                fields.set("body_type", looks.body_type);
            }
            let radius_m = if rng.random_bool(0.95) {
                rng.random_range(1_000.0..25_000.0)
            } else {
                rng.random_range(100_000.0..400_000.0)
            };
            fields.set("lat", &format!("{:.5}", rng.random_range(25.0..49.0)));
            fields.set("lon", &format!("{:.5}", rng.random_range(-124.0..-67.0)));
            fields.set("radius_m", &format!("{radius_m:.0}"));
            if rng.random_bool(0.5) {
                let from = now - rng.random_range(0..48) * 3_600_000;
                let to = from + rng.random_range(1..72) * 3_600_000;
                fields.set("active_from", &Timestamp(from).to_string());
                fields.set("active_to", &Timestamp(to).to_string());
            }
            Arc::new(entry_from_fields(fields).expect("valid BOLO"))
        })
        .collect()
}

/// 100 BOLOs of `national_bolos`' kind, all around the readers' city (within 30 km of its
/// centre): what one city's own list holds, the part of every larger list that applies here.
fn city_bolos(simulator: &Simulator, now: Timestamp) -> Vec<Arc<HotlistEntry>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    national_bolos(100, simulator, now)
        .into_iter()
        .map(|bolo| {
            let mut bolo = (*bolo).clone();
            if let Some(description) = bolo.vehicle.as_mut() {
                description.area = Some(Area {
                    lat: READERS_CITY.0 + rng.random_range(-0.2..0.2),
                    lon: READERS_CITY.1 + rng.random_range(-0.2..0.2),
                    radius_m: rng.random_range(1_000.0..25_000.0),
                });
            }
            Arc::new(bolo)
        })
        .collect()
}

fn bolo_matching() {
    println!("== Attribute BOLO matching, one core");
    // One "now" for the reads, the BOLOs' time windows and expiry, so runs are comparable.
    let now = Timestamp::now();
    let (mut reads, simulator) =
        simulated_reads(20_000, 0, 200_000, now.millis() - 3_600_000, 3_000_000);
    for read in &mut reads {
        normalize_read(read, now).expect("simulated reads are valid");
    }
    // Matches every read at least once and for at least 2 s: (reads/s, hits per 20,000 reads).
    let measure = |store: &HotlistStore| {
        let mut matches: Vec<Match> = Vec::new();
        let mut hits = 0usize;
        let mut matched = 0usize;
        let started = Instant::now();
        'rounds: loop {
            for chunk in reads.chunks(1000) {
                for read in chunk {
                    matches.clear();
                    store.match_read(black_box(read), now, &mut matches);
                    if matched < reads.len() {
                        hits += matches.len();
                    }
                }
                matched += chunk.len();
                if matched >= reads.len() && started.elapsed().as_secs_f64() >= 2.0 {
                    break 'rounds;
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        (matched as f64 / seconds, hits)
    };
    let (baseline, _) = measure(&HotlistStore::new(MatchModes::FULL));
    println!("no BOLOs: {:.2} M reads/s", baseline / 1e6);
    let counts: Vec<usize> = std::env::var("BOLO_COUNTS")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|count| count.trim().replace('_', "").parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![100, 10_000, 100_000]);
    let city = city_bolos(&simulator, now);
    let national = |count: usize| {
        let mut bolos = city.clone();
        bolos.extend(national_bolos(
            count.saturating_sub(city.len()),
            &simulator,
            now,
        ));
        bolos
    };
    type BolosOfSize<'a> = &'a dyn Fn(usize) -> Vec<Arc<HotlistEntry>>;
    let kinds: [(&str, BolosOfSize); 2] = [
        ("the city's 100 + the rest over the US", &national),
        ("generic, all here (worst case)", &generic_bolos),
    ];
    for (kind, bolos_of) in kinds {
        for &count in &counts {
            let store = HotlistStore::from_entries(MatchModes::FULL, &[], bolos_of(count));
            let (rate, hits) = measure(&store);
            println!(
                "{kind}: {count} BOLOs: {:.3} M reads/s, {hits} hits per {} reads",
                rate / 1e6,
                reads.len()
            );
        }
    }
}

/// A new BOLO's search, as the engine runs it for a reference vector: (milliseconds, hits).
fn retro_search_of(index: &RecentAppearanceIndex, reference: &[f32]) -> (f64, Vec<AppearanceHit>) {
    let started = Instant::now();
    let hits = index.search(&AppearanceQuery {
        min_similarity: Some(0.85),
        ..AppearanceQuery::nearest(reference, 50)
    });
    (started.elapsed().as_secs_f64() * 1000.0, hits)
}

fn retro_search() {
    let dim = env_usize("APPEARANCE_DIM", 128);
    let per_slice = env_usize(
        "RETRO_POINTS_PER_SLICE",
        env_usize("APPEARANCE_POINTS", 100_000) / 24,
    )
    .max(1);
    let points = per_slice * 24;
    let builder_threads = env_usize("APPEARANCE_BUILDER_THREADS", 0);
    println!(
        "== Retro search over a 24-hour horizon in hourly slices: 24 x {per_slice} = {points} reads ({:.2} reads/s; 1,000 reads/s for 24 h would be 86.4M, 3.6M a slice)",
        points as f64 / 86_400.0
    );
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
        expected_points_per_slice: per_slice,
        max_unindexed_points: usize::MAX,
        builder_threads,
        ..AppearanceIndexConfig::default()
    });
    let before = resident_bytes();
    let (append_seconds, indexed_seconds) = build(&index, &reads);
    let after = resident_bytes();
    println!(
        "built {} slices: appended at {:.0} reads/s, all indexed after {indexed_seconds:.1} s ({:.0} points/s)",
        index.slice_count(),
        points as f64 / append_seconds,
        points as f64 / indexed_seconds
    );
    if let (Some(before), Some(after)) = (before, after) {
        let per_vector = after.saturating_sub(before) as f64 / points as f64;
        // What the horizon could be at 1,000 reads/s if 16 GiB were given to the index.
        let held = 16.0 * 1024.0 * 1024.0 * 1024.0 / per_vector.max(1.0);
        println!(
            "memory: {per_vector:.0} bytes per read; 16 GiB would hold {:.1}M reads = {:.1} hours at 1,000 reads/s",
            held / 1e6,
            held / 3.6e6
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut answers = Vec::new();
    let mut found_fresh = 0;
    let mut fresh_answers = Vec::new();
    let newest = reads
        .last()
        .map_or(start_ms, |read| read.observed_at.millis());
    for (round, template) in reads.iter().take(20).enumerate() {
        let vehicle = rng.random_range(0..simulator.vehicle_count() as u32);
        let Some(reference) = simulator.identity_vector(vehicle) else {
            continue;
        };
        let (milliseconds, hits) = retro_search_of(&index, reference);
        answers.push(milliseconds);
        black_box(hits);

        // A read of that vehicle appended a moment ago: the search must already see it.
        let mut fresh = template.clone();
        fresh.read_id = format!("fresh-{round}");
        fresh.observed_at = Timestamp(newest + 1 + round as i64);
        fresh.embedding = Some(reference.to_vec());
        index
            .insert(&fresh)
            .expect("the fresh read is within the horizon");
        let (milliseconds, hits) = retro_search_of(&index, reference);
        fresh_answers.push(milliseconds);
        if hits.iter().any(|hit| hit.read.read_id == fresh.read_id) {
            found_fresh += 1;
        }
    }
    let median_max = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], times[times.len() - 1])
    };
    let (median, max) = median_max(&mut answers);
    println!(
        "time to answer a new BOLO's reference vector (k=50, all 24 slices): median {median:.2} ms, max {max:.2} ms"
    );
    let (median, max) = median_max(&mut fresh_answers);
    println!(
        "with a read of it appended just before: found {found_fresh} of {}, median {median:.2} ms, max {max:.2} ms",
        fresh_answers.len()
    );
}

/// A stream at `HORIZON_RATE` reads/s (default 1,000) into an index with a 24-hour horizon,
/// `HORIZON_SLICE_SECS` slices (default 3600, as `run`) and a memory cap of `HORIZON_MAX_POINTS` reads
/// (default 86.4M: the whole 24 hours), as `platestream run` would hold it; then a new BOLO's search over whatever the
/// cap kept. Only the stream's last cap-plus-one-slice of reads is generated: the cap would
/// have dropped every earlier one. The reads are not kept by the bench, only the index holds
/// them. The stream runs faster than real time but never more than `HORIZON_BACKLOG` reads
/// (default 100,000) ahead of the builder: at the real rate the builder is far ahead, and an
/// unbounded backlog of unfiled reads (about 2 KB each) would not fit beside the index.
fn horizon_at_rate() {
    let dim = env_usize("APPEARANCE_DIM", 128);
    let rate = env_usize("HORIZON_RATE", 1000).max(1);
    let slice_secs = env_usize("HORIZON_SLICE_SECS", 3600).max(1);
    let max_points = env_usize("HORIZON_MAX_POINTS", 86_400_000).max(1);
    let per_slice = rate * slice_secs;
    let points = max_points + per_slice;
    println!(
        "== A stream of {rate} reads/s into a 24-hour horizon capped at {max_points} reads ({slice_secs} s slices of {per_slice}): the last {points} reads ({:.2} h)",
        points as f64 / rate as f64 / 3600.0
    );
    // Each simulated vehicle holds an identity vector and its description (about 700 bytes):
    // at most 1M of them, so the bench's own memory stays small beside 24 hours of reads.
    let vehicles = env_usize("HORIZON_VEHICLES", (points / 20).clamp(1000, 1_000_000));
    let simulator_config = SimulatorConfig {
        vehicles,
        embedding_dim: dim,
        ..SimulatorConfig::default()
    };
    let mut simulator = Simulator::new(simulator_config.clone());
    let index = RecentAppearanceIndex::new(AppearanceIndexConfig {
        dim,
        slice_secs: slice_secs as u64,
        max_points,
        expected_points_per_slice: per_slice,
        max_unindexed_points: usize::MAX,
        builder_threads: env_usize("APPEARANCE_BUILDER_THREADS", 0),
        ..AppearanceIndexConfig::default()
    });
    let start_ms = 1_795_539_600_000_i64;
    let step_ms = 1000.0 / rate as f64;
    let before = resident_bytes();
    let started = Instant::now();
    let backlog = env_usize("HORIZON_BACKLOG", 100_000).max(1);
    let mut template = None;
    let mut last_report = Instant::now();
    for number in 0..points {
        if number % 4096 == 0 {
            while index.unindexed_len() > backlog {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if last_report.elapsed().as_secs() >= 60 {
                last_report = Instant::now();
                eprintln!(
                    "  streamed {number} of {points} after {:.0} s; index holds {} reads, {:.1} GiB",
                    started.elapsed().as_secs_f64(),
                    index.len(),
                    index.heap_bytes() as f64 / (1u64 << 30) as f64
                );
            }
        }
        let (read, _) = simulator.next_read(Timestamp(start_ms + (number as f64 * step_ms) as i64));
        index
            .insert(&read)
            .expect("simulated embeddings have the configured dimension");
        if template.is_none() {
            template = Some(read);
        }
    }
    let appended = started.elapsed().as_secs_f64();
    index.wait_until_indexed();
    let indexed = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    let held = index.len();
    println!(
        "streamed {points} reads (generated and appended in {appended:.0} s), all filed after {indexed:.0} s; the cap kept {held} reads in {} slices ({:.2} h at {rate} reads/s)",
        index.slice_count(),
        held as f64 / rate as f64 / 3600.0
    );
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "resident memory grew {:.1} GiB ({:.0} bytes per read held); the index's points hold {:.1} GiB ({:.0} bytes per read)",
            after.saturating_sub(before) as f64 / (1u64 << 30) as f64,
            after.saturating_sub(before) as f64 / held.max(1) as f64,
            index.heap_bytes() as f64 / (1u64 << 30) as f64,
            index.heap_bytes() as f64 / held.max(1) as f64
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut times = Vec::new();
    let mut hits_found = 0;
    let mut searches: Vec<(Vec<f32>, Vec<String>)> = Vec::new();
    for _ in 0..20 {
        let vehicle = rng.random_range(0..simulator.vehicle_count() as u32);
        let Some(reference) = simulator.identity_vector(vehicle) else {
            continue;
        };
        let (milliseconds, hits) = retro_search_of(&index, reference);
        times.push(milliseconds);
        hits_found += hits.len();
        let mut unit = reference.to_vec();
        platestream_engine::description::normalize_vector(&mut unit);
        searches.push((unit, hits.into_iter().map(|hit| hit.read.read_id).collect()));
    }
    // The exact answers: the simulator is deterministic, so a second pass over the same stream
    // regenerates every read the index holds (the last `held`; the cap dropped the oldest) and
    // compares each with every reference vector exactly, in floats.
    let exact_started = Instant::now();
    let mut replay = Simulator::new(simulator_config);
    let mut exact: Vec<Vec<(f32, String)>> = vec![Vec::new(); searches.len()];
    for number in 0..points {
        let (read, _) = replay.next_read(Timestamp(start_ms + (number as f64 * step_ms) as i64));
        if number < points - held {
            continue;
        }
        let Some(mut unit) = read.embedding else {
            continue;
        };
        platestream_engine::description::normalize_vector(&mut unit);
        for ((query, _), best) in searches.iter().zip(&mut exact) {
            let similarity = dot(query, &unit);
            if similarity < 0.85 || (best.len() == 50 && similarity <= best[49].0) {
                continue;
            }
            let at = best.partition_point(|(other, _)| *other >= similarity);
            best.insert(at, (similarity, read.read_id.clone()));
            best.truncate(50);
        }
    }
    let (mut expected, mut found) = (0usize, 0usize);
    for ((_, hits), exact) in searches.iter().zip(&exact) {
        expected += exact.len();
        found += exact.iter().filter(|(_, id)| hits.contains(id)).count();
    }
    println!(
        "exact answers by a second pass over the stream ({:.0} s): {expected} sightings at similarity >= 0.85 (at most 50 per vehicle), of which the index found {found} (recall {:.4})",
        exact_started.elapsed().as_secs_f64(),
        found as f64 / expected.max(1) as f64
    );
    let first = times.first().copied().unwrap_or_default();
    times.sort_by(f64::total_cmp);
    println!(
        "time to answer a new BOLO's reference vector over all of it (k=50, similarity >= 0.85): median {:.1} ms, 90th percentile {:.1} ms, max {:.1} ms (the first search: {first:.1} ms); {hits_found} sightings found for 20 vehicles",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[times.len() - 1]
    );
    black_box(template);
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
    // Minutes and gigabytes: only when asked for by name.
    if filter.as_deref() == Some("horizon") {
        horizon_at_rate();
    }
}
