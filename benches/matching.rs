//! Hotlist matching on one core, beside a plain `HashMap<String, _>` (and a `DashMap`) exact lookup
//! over the same reads in the same run: `cargo bench -p platestream-engine --bench matching`.
//!
//! Lists of 10k, 100k, 1M and 3M entries: the simulator's hotlisted vehicles plus realistic random
//! registrations, and 200 witness partial plates. Also prints the store's index bytes per entry
//! and the time a 1M-entry reload takes while another thread keeps matching. The full matching
//! rows are also run with a second list of 100 vehicle-description BOLOs around the readers'
//! city (`store_full_with_bolos`): what a city that uses both pays.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use platestream_engine::hotlist::{entry_from_fields, load_hotlist_csv, EntryFields, HotlistEntry};
use platestream_engine::matcher::{Match, Matcher};
use platestream_engine::normalize::normalize_read;
use platestream_engine::simulate::{random_registration, Simulator, SimulatorConfig};
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::{PlateRead, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const READS: usize = 20_000;
const LIST: &str = "stolen_vehicles";
const PARTIAL_PATTERNS: usize = 200;
/// Reads per `match_batch` call, as the pipeline hands them over.
const PIPELINE_BATCH: usize = 512;

/// 100 BOLOs of vehicle descriptions (make, model, color; half a body type) within 1-25 km of
/// points around the simulated readers' city.
fn city_bolos() -> Vec<Arc<HotlistEntry>> {
    const VEHICLES: &[(&str, &str, &str)] = &[
        ("Toyota", "Camry", "sedan"),
        ("Toyota", "RAV4", "suv"),
        ("Honda", "Civic", "sedan"),
        ("Honda", "CR-V", "suv"),
        ("Ford", "F-150", "pickup"),
        ("Ford", "Explorer", "suv"),
        ("Chevrolet", "Silverado", "pickup"),
        ("Nissan", "Altima", "sedan"),
        ("Hyundai", "Elantra", "sedan"),
        ("Jeep", "Grand Cherokee", "suv"),
    ];
    const COLORS: &[&str] = &["white", "black", "silver", "gray", "blue", "red"];
    let mut rng = ChaCha8Rng::seed_from_u64(100);
    (0..100)
        .map(|index| {
            let (make, model, body) = VEHICLES[rng.random_range(0..VEHICLES.len())];
            let mut fields = EntryFields {
                list: Some("local_bolo".into()),
                id: Some(format!("bolo-{index}")),
                ..EntryFields::default()
            };
            fields.set("make", make);
            fields.set("model", model);
            fields.set("color", COLORS[rng.random_range(0..COLORS.len())]);
            if rng.random_bool(0.5) {
                fields.set("body_type", body);
            }
            fields.set("lat", &format!("{:.4}", 38.9 + rng.random_range(-0.2..0.2)));
            fields.set(
                "lon",
                &format!("{:.4}", -77.03 + rng.random_range(-0.2..0.2)),
            );
            fields.set(
                "radius_m",
                &format!("{:.0}", rng.random_range(1_000.0..25_000.0)),
            );
            Arc::new(entry_from_fields(fields).expect("a valid BOLO"))
        })
        .collect()
}

fn reads_and_hotlisted() -> (Vec<PlateRead>, Vec<Arc<HotlistEntry>>) {
    let mut simulator = Simulator::new(SimulatorConfig {
        vehicles: 200_000,
        hotlist_fraction: 0.01,
        ..SimulatorConfig::default()
    });
    let start = Timestamp::now().millis() - 3_600_000;
    let reads = (0..READS)
        .map(|i| {
            let (mut read, _) = simulator.next_read(Timestamp(start + i as i64));
            normalize_read(&mut read, Timestamp::now()).expect("simulated reads are valid");
            read
        })
        .collect();
    let mut csv = Vec::new();
    simulator
        .write_hotlist_csv(&mut csv)
        .expect("writing to memory");
    let hotlisted = load_hotlist_csv("bench", csv.as_slice())
        .expect("simulated hotlist")
        .entries
        .into_iter()
        .map(|entry| {
            let mut entry = (*entry).clone();
            entry.list = LIST.to_owned();
            Arc::new(entry)
        })
        .collect();
    (reads, hotlisted)
}

/// `hotlisted` plus random registrations and witness patterns up to `size` entries.
fn hotlist_of(size: usize, hotlisted: &[Arc<HotlistEntry>]) -> Vec<Arc<HotlistEntry>> {
    let mut rng = ChaCha8Rng::seed_from_u64(size as u64);
    let mut entries: Vec<Arc<HotlistEntry>> = hotlisted.to_vec();
    while entries.len() < size - PARTIAL_PATTERNS {
        let (plate, jurisdiction) = random_registration(&mut rng);
        let Ok(mut entry) = HotlistEntry::new(LIST, &plate) else {
            continue;
        };
        entry.jurisdiction = Some(jurisdiction.to_owned());
        entry.id = format!("V{:09}", entries.len());
        entry.ncic_number = Some(entry.id.clone());
        entry.reason = Some("stolen vehicle (NCIC)".to_owned());
        entry.priority = 2;
        entries.push(Arc::new(entry));
    }
    while entries.len() < size {
        let (plate, _) = random_registration(&mut rng);
        let mut witness: Vec<u8> = plate.into_bytes();
        // A witness saw most of it: one character unknown, the end uncertain.
        let unknown = rng.random_range(2..witness.len().max(3));
        if unknown < witness.len() {
            witness[unknown] = b'?';
        }
        witness.truncate(witness.len() - 1);
        witness.push(b'*');
        let Ok(mut entry) = HotlistEntry::new(LIST, &String::from_utf8_lossy(&witness)) else {
            continue;
        };
        entry.id = format!("W{}", entries.len());
        entries.push(Arc::new(entry));
    }
    entries
}

/// The list sizes to measure: all four, or those `PLATESTREAM_BENCH_SIZES` names (comma-separated),
/// since building the larger lists takes minutes whichever benchmarks the filter keeps.
fn list_sizes() -> Vec<usize> {
    let all = vec![10_000usize, 100_000, 1_000_000, 3_000_000];
    match std::env::var("PLATESTREAM_BENCH_SIZES") {
        Ok(sizes) => {
            let chosen: Vec<usize> = sizes
                .split(',')
                .filter_map(|size| size.trim().parse().ok())
                .collect();
            assert!(
                !chosen.is_empty(),
                "PLATESTREAM_BENCH_SIZES={sizes:?} names no list size"
            );
            chosen
        }
        Err(_) => all,
    }
}

fn matching(c: &mut Criterion) {
    let (reads, hotlisted) = reads_and_hotlisted();
    let now = Timestamp::now();
    let mut group = c.benchmark_group("match_per_read");
    group.throughput(Throughput::Elements(READS as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    for size in list_sizes() {
        let entries = hotlist_of(size, &hotlisted);
        let mut plain: HashMap<String, Vec<Arc<HotlistEntry>>> = HashMap::new();
        for entry in &entries {
            plain
                .entry(entry.plate_norm.clone())
                .or_default()
                .push(Arc::clone(entry));
        }
        group.bench_with_input(BenchmarkId::new("hashmap_exact", size), &size, |b, _| {
            b.iter(|| {
                let mut hits = 0usize;
                for read in &reads {
                    if let Some(found) = plain.get(&read.plate_norm) {
                        hits += found.len();
                    }
                }
                std::hint::black_box(hits)
            })
        });
        drop(plain);
        // The concurrent map the issue names, for the same exact lookup: every `get` takes a
        // shard's read lock, where the store's readers take none.
        let concurrent: DashMap<String, Vec<Arc<HotlistEntry>>> = DashMap::new();
        for entry in &entries {
            concurrent
                .entry(entry.plate_norm.clone())
                .or_default()
                .push(Arc::clone(entry));
        }
        group.bench_with_input(BenchmarkId::new("dashmap_exact", size), &size, |b, _| {
            b.iter(|| {
                let mut hits = 0usize;
                for read in &reads {
                    if let Some(found) = concurrent.get(&read.plate_norm) {
                        hits += found.len();
                    }
                }
                std::hint::black_box(hits)
            })
        });
        drop(concurrent);

        for (name, modes, bolos) in [
            ("store_exact", MatchModes::EXACT_ONLY, false),
            ("store_full", MatchModes::FULL, false),
            ("store_full_with_bolos", MatchModes::FULL, true),
        ] {
            let store = HotlistStore::new(modes);
            let build_started = Instant::now();
            store.replace_list(LIST, entries.clone()).expect("one list");
            if bolos {
                store
                    .replace_list("local_bolo", city_bolos())
                    .expect("a BOLO list");
            }
            let build = build_started.elapsed();
            if modes == MatchModes::FULL && !bolos {
                eprintln!(
                    "store: {size} entries built in {build:.2?}: {:.1} bytes per entry with all \
                     indexes ({:.1} of them indexes)",
                    store.heap_bytes() as f64 / size as f64,
                    store.index_heap_bytes() as f64 / size as f64
                );
            }
            let mut matches: Vec<Match> = Vec::new();
            let mut found = 0usize;
            for read in &reads {
                matches.clear();
                store.match_read(read, now, &mut matches);
                found += matches.len();
            }
            eprintln!("{name} {size}: {found} matches over {READS} reads");
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for read in &reads {
                        matches.clear();
                        store.match_read(read, now, &mut matches);
                        hits += matches.len();
                    }
                    std::hint::black_box(hits)
                })
            });
            // As the pipeline matches: the reads of a batch of messages together.
            let mut ends = Vec::new();
            let batch_name = format!("{name}_batched");
            group.bench_with_input(BenchmarkId::new(batch_name, size), &size, |b, _| {
                b.iter(|| {
                    let mut hits = 0usize;
                    for batch in reads.chunks(PIPELINE_BATCH) {
                        matches.clear();
                        store.match_batch(batch, now, &mut matches, &mut ends);
                        hits += matches.len();
                    }
                    std::hint::black_box(hits)
                })
            });
        }
    }
    group.finish();
}

/// Bytes of one entry as the benchmark builds them: the struct, its `Arc` header and its strings.
fn entry_payload_bytes(entry: &HotlistEntry) -> usize {
    let strings = [
        Some(&entry.list),
        Some(&entry.plate),
        Some(&entry.plate_norm),
        Some(&entry.id),
        entry.jurisdiction.as_ref(),
        entry.reason.as_ref(),
        entry.case_number.as_ref(),
        entry.description.as_ref(),
        entry.ncic_number.as_ref(),
        entry.plate_type.as_ref(),
        entry.entered_by.as_ref(),
    ];
    std::mem::size_of::<HotlistEntry>()
        + 16
        + strings
            .iter()
            .flatten()
            .map(|text| text.capacity())
            .sum::<usize>()
}

fn reload_under_load(c: &mut Criterion) {
    if !list_sizes().contains(&1_000_000) {
        return;
    }
    let (reads, hotlisted) = reads_and_hotlisted();
    let entries = hotlist_of(1_000_000, &hotlisted);
    let payload: usize = entries.iter().map(|entry| entry_payload_bytes(entry)).sum();
    eprintln!(
        "entry payload: {:.1} bytes per entry (struct {} + Arc header + strings)",
        payload as f64 / entries.len() as f64,
        std::mem::size_of::<HotlistEntry>()
    );
    let store = Arc::new(HotlistStore::new(MatchModes::FULL));
    store.replace_list(LIST, entries.clone()).expect("one list");
    let stop = Arc::new(AtomicBool::new(false));
    let matched = Arc::new(AtomicU64::new(0));
    let reader = {
        let (store, stop, matched) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&matched));
        std::thread::spawn(move || {
            let mut matches = Vec::new();
            let now = Timestamp::now();
            while !stop.load(Ordering::Relaxed) {
                for read in &reads {
                    matches.clear();
                    store.match_read(read, now, &mut matches);
                }
                matched.fetch_add(reads.len() as u64, Ordering::Relaxed);
            }
        })
    };
    let mut group = c.benchmark_group("reload");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("replace_1m_while_matching", |b| {
        b.iter(|| store.replace_list(LIST, entries.clone()).expect("one list"))
    });
    group.bench_function("upsert_one_into_1m", |b| {
        let mut next = 0u64;
        b.iter(|| {
            next += 1;
            let mut entry = HotlistEntry::new(LIST, "KID111").expect("valid plate");
            entry.id = format!("amber-{}", next % 64);
            store.upsert(Arc::new(entry));
        })
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    eprintln!(
        "reader thread matched {} reads during the reload benchmarks",
        matched.load(Ordering::Relaxed)
    );
}

criterion_group!(benches, matching, reload_under_load);
criterion_main!(benches);
