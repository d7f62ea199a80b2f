//! `platestream query` and `platestream compact` as investigators run them: an archive made by
//! `replay` of simulated reads, each answer checked against one computed here from the
//! simulator's own NDJSON.

#![allow(clippy::unwrap_used)]

mod common;

use common::{platestream, succeed, text};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use platestream_engine::misread::misread_difference;
use serde_json::Value;

fn json(args: &[&str], dir: &Path) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json", "--quiet"]);
    serde_json::from_str(&succeed(&all, dir)).unwrap()
}

/// One simulated read as the simulator wrote it, with its true plate.
#[derive(Debug, Clone)]
struct Truth {
    plate: String,
    reader_id: String,
    lat: f64,
    lon: f64,
    observed_ms: i64,
}

fn millis(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let a = ((lat2 - lat1).to_radians() / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().min(1.0).asin()
}

/// `?` one character, `*` any run: the glob the test checks the archive's answer against.
fn glob(pattern: &[u8], plate: &[u8]) -> bool {
    match pattern.split_first() {
        None => plate.is_empty(),
        Some((b'?', rest)) => !plate.is_empty() && glob(rest, &plate[1..]),
        Some((b'*', rest)) => (0..=plate.len()).any(|skip| glob(rest, &plate[skip..])),
        Some((c, rest)) => plate.first() == Some(c) && glob(rest, &plate[1..]),
    }
}

struct Archive {
    dir: tempfile::TempDir,
    truths: Vec<Truth>,
}

/// 20,000 reads at 2 reads/s (about 2.8 hours, so several hour partitions), no OCR noise, archived
/// in small segments so compaction has work.
fn archive() -> Archive {
    let dir = tempfile::tempdir().unwrap();
    succeed(
        &[
            "simulate",
            "--out",
            "reads.ndjson",
            "--count",
            "20000",
            "--rate",
            "2",
            "--seed",
            "11",
            "--vehicles",
            "2000",
            "--misread-rate",
            "0",
            "--truth-out",
            "truth.ndjson",
            "--registry-out",
            "registry.csv",
        ],
        dir.path(),
    );
    succeed(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--out",
            "archive",
            "--segment-rows",
            "2500",
            "--dedupe-window-ms",
            "0",
            "--quiet",
        ],
        dir.path(),
    );
    let reads = std::fs::read_to_string(dir.path().join("reads.ndjson")).unwrap();
    let truth = std::fs::read_to_string(dir.path().join("truth.ndjson")).unwrap();
    let truths = reads
        .lines()
        .zip(truth.lines())
        .map(|(read, truth)| {
            let read: Value = serde_json::from_str(read).unwrap();
            let truth: Value = serde_json::from_str(truth).unwrap();
            Truth {
                plate: truth["true_plate"].as_str().unwrap().to_owned(),
                reader_id: read["reader_id"].as_str().unwrap().to_owned(),
                lat: read["lat"].as_f64().unwrap(),
                lon: read["lon"].as_f64().unwrap(),
                observed_ms: millis(read["observed_at"].as_str().unwrap()),
            }
        })
        .collect();
    Archive { dir, truths }
}

fn plates_of(rows: &Value, column: &str) -> Vec<String> {
    let mut plates: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[column].as_str().unwrap().to_owned())
        .collect();
    plates.sort();
    plates
}

#[test]
fn investigative_queries_agree_with_an_independent_answer_and_survive_compaction() {
    let Archive { dir, truths } = archive();
    let dir = dir.path();
    let start = truths.iter().map(|t| t.observed_ms).min().unwrap();
    let end = truths.iter().map(|t| t.observed_ms).max().unwrap();

    // Incident: 500 m around the busiest reader, ±30 min around the middle of the traffic.
    let mut by_reader: BTreeMap<&str, usize> = BTreeMap::new();
    for truth in &truths {
        *by_reader.entry(truth.reader_id.as_str()).or_default() += 1;
    }
    let busiest = by_reader
        .iter()
        .max_by_key(|(_, count)| **count)
        .unwrap()
        .0
        .to_string();
    let site = truths
        .iter()
        .find(|t| t.reader_id == busiest)
        .unwrap()
        .clone();
    let at = (start + end) / 2;
    let window = 30 * 60_000;
    let expected: Vec<String> = {
        let mut plates: Vec<String> = truths
            .iter()
            .filter(|t| {
                t.observed_ms >= at - window
                    && t.observed_ms < at + window
                    && haversine_m(site.lat, site.lon, t.lat, t.lon) <= 500.0
            })
            .map(|t| t.plate.clone())
            .collect();
        plates.sort();
        plates
    };
    assert!(expected.len() > 10, "the test needs traffic near {busiest}");
    let (lat, lon) = (site.lat.to_string(), site.lon.to_string());
    let incident_args = |at: &str| {
        vec![
            "query",
            "incident",
            "--archive",
            "archive",
            "--lat",
            lat.as_str(),
            "--lon",
            lon.as_str(),
            "--radius",
            "500m",
            "--at",
            at,
            "--window",
            "30m",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let at_text = rfc3339(at);
    let args = incident_args(&at_text);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let incident = json(&args, dir);
    let reads = &incident["reads"];
    assert_eq!(plates_of(reads, "plate_norm"), expected);
    let distances: Vec<f64> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["distance_m"].as_f64().unwrap())
        .collect();
    assert!(
        distances.windows(2).all(|pair| pair[0] <= pair[1]),
        "nearest first"
    );
    assert!(reads[0]["direction"].is_string() && reads[0]["reader_id"].is_string());
    // Without --registry, only a registry file inside the archive directory is used: none here.
    // The table says the cameras are unknown rather than that there are none.
    assert_eq!(incident["sources"].as_array().unwrap().len(), 0);
    let without = succeed(
        &[&args[..], &["--quiet", "--format", "table"]].concat(),
        dir,
    );
    assert!(
        without.contains("Readers and cameras within 500 m: unknown, no registry loaded"),
        "{without}"
    );
    let mut with_registry = args.clone();
    with_registry.extend(["--registry", "registry.csv"]);
    let incident = json(
        &[&with_registry[..], &["--sources-out", "sources.json"]].concat(),
        dir,
    );
    let sources = incident["sources"].as_array().unwrap();
    // Asked for in a file as well, the file has them too.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sources.json")).unwrap()).unwrap();
    assert_eq!(written.as_array().unwrap(), sources);
    assert!(
        sources.iter().any(|s| s["id"] == busiest.as_str()),
        "{sources:?}"
    );
    assert!(sources
        .iter()
        .any(|s| s["kind"].as_str().unwrap().ends_with("camera")));
    assert!(sources
        .iter()
        .all(|s| s["distance_m"].as_f64().unwrap() <= 500.0));
    let table = succeed(&[&with_registry[..], &["--quiet"]].concat(), dir);
    assert!(
        table.contains("Readers and cameras within 500 m"),
        "{table}"
    );

    // Plate, exact and wildcard, over a time range.
    let mut reads_per_plate: BTreeMap<&str, usize> = BTreeMap::new();
    for truth in &truths {
        *reads_per_plate.entry(truth.plate.as_str()).or_default() += 1;
    }
    let (plate, _) = reads_per_plate
        .iter()
        .max_by_key(|(_, count)| **count)
        .unwrap();
    let plate = plate.to_string();
    let (from, to) = (rfc3339(start + 600_000), rfc3339(end - 600_000));
    let in_range = |t: &&Truth| t.observed_ms >= start + 600_000 && t.observed_ms < end - 600_000;
    // Plate lookups and their answers, asked again once the plate-ordered copy exists.
    let mut plate_lookups: Vec<(Vec<&str>, Value)> = Vec::new();
    let exact_args: Vec<&str> = vec![
        "query",
        "plate",
        &plate,
        "--archive",
        "archive",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let exact = json(&exact_args, dir);
    plate_lookups.push((exact_args, exact.clone()));
    let expected = truths
        .iter()
        .filter(in_range)
        .filter(|t| t.plate == plate)
        .count();
    assert!(expected > 1);
    assert_eq!(exact.as_array().unwrap().len(), expected);
    let pattern: String = plate
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 1 || i == 4 { '?' } else { c })
        .collect();
    let wildcard_args: Vec<&str> = vec![
        "query",
        "plate",
        &pattern,
        "--archive",
        "archive",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let wildcard = json(&wildcard_args, dir);
    plate_lookups.push((wildcard_args, wildcard.clone()));
    let expected: Vec<String> = {
        let mut plates: Vec<String> = truths
            .iter()
            .filter(in_range)
            .filter(|t| glob(pattern.as_bytes(), t.plate.as_bytes()))
            .map(|t| t.plate.clone())
            .collect();
        plates.sort();
        plates
    };
    assert_eq!(plates_of(&wildcard, "plate_norm"), expected);

    // --misreads: the plate and every plate one OCR slip away from it (look-alike swap, one
    // character more or less). The plate with the most such neighbours in the traffic, so the
    // check is not only the exact reads again.
    let distinct: Vec<&str> = reads_per_plate.keys().copied().collect();
    let neighbours = |plate: &str| {
        distinct
            .iter()
            .filter(|other| **other != plate && misread_difference(plate, other).is_some())
            .count()
    };
    let misread_plate = distinct
        .iter()
        .copied()
        .max_by_key(|plate| (neighbours(plate), std::cmp::Reverse(*plate)))
        .unwrap()
        .to_owned();
    let misreads_args: Vec<&str> = vec![
        "query",
        "plate",
        &misread_plate,
        "--misreads",
        "--archive",
        "archive",
        "--from",
        &from,
        "--to",
        &to,
    ];
    let misreads = json(&misreads_args, dir);
    plate_lookups.push((misreads_args, misreads.clone()));
    let expected: Vec<String> = {
        let mut plates: Vec<String> = truths
            .iter()
            .filter(in_range)
            .filter(|t| {
                t.plate == misread_plate || misread_difference(&misread_plate, &t.plate).is_some()
            })
            .map(|t| t.plate.clone())
            .collect();
        plates.sort();
        plates
    };
    assert_eq!(plates_of(&misreads, "plate_norm"), expected);

    // Stakeout: three readers, 150 m, whole traffic; plates at 2 of 3.
    let mut sites: Vec<Truth> = Vec::new();
    for reader in by_reader
        .keys()
        .filter(|id| id.starts_with("dc-r-"))
        .take(3)
    {
        sites.push(
            truths
                .iter()
                .find(|t| t.reader_id == *reader)
                .unwrap()
                .clone(),
        );
    }
    let places: Vec<String> = sites
        .iter()
        .map(|s| {
            format!(
                "{},{},150m,{},{}",
                s.lat,
                s.lon,
                rfc3339(start),
                rfc3339(end + 1)
            )
        })
        .collect();
    let mut args = vec![
        "query",
        "stakeout",
        "--archive",
        "archive",
        "--min-hits",
        "2",
    ];
    for place in &places {
        args.extend(["--place", place.as_str()]);
    }
    let stakeout = json(&args, dir);
    let mut places_per_plate: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut reads_at_places: BTreeMap<&str, i64> = BTreeMap::new();
    for truth in &truths {
        let mut at_a_place = false;
        for (index, site) in sites.iter().enumerate() {
            if haversine_m(site.lat, site.lon, truth.lat, truth.lon) <= 150.0 {
                places_per_plate
                    .entry(&truth.plate)
                    .or_default()
                    .insert(index);
                at_a_place = true;
            }
        }
        if at_a_place {
            *reads_at_places.entry(&truth.plate).or_default() += 1;
        }
    }
    // Each read once, even where places overlap.
    for row in stakeout.as_array().unwrap() {
        let plate = row["plate_norm"].as_str().unwrap();
        assert_eq!(row["reads"], reads_at_places[plate], "{row}");
    }
    let twice: Vec<&str> = [&args[..], &["--place", places[0].as_str()]].concat();
    let repeated = json(&twice, dir);
    for row in repeated.as_array().unwrap() {
        let plate = row["plate_norm"].as_str().unwrap();
        assert_eq!(row["reads"], reads_at_places[plate], "{row}");
    }
    let expected: Vec<String> = places_per_plate
        .iter()
        .filter(|(_, places)| places.len() >= 2)
        .map(|(plate, _)| plate.to_string())
        .collect();
    assert!(
        !expected.is_empty(),
        "the test needs plates seen at two places"
    );
    assert_eq!(plates_of(&stakeout, "plate_norm"), expected);

    // Convoy: plates at the target's readers within 2 minutes of it, at 2+ readers.
    let target_reads: Vec<&Truth> = truths.iter().filter(|t| t.plate == plate).collect();
    let mut together: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut passes_together: BTreeMap<&str, i64> = BTreeMap::new();
    for truth in &truths {
        if truth.plate == plate {
            continue;
        }
        if target_reads.iter().any(|target| {
            target.reader_id == truth.reader_id
                && (target.observed_ms - truth.observed_ms).abs() <= 120_000
        }) {
            together
                .entry(&truth.plate)
                .or_default()
                .insert(&truth.reader_id);
            *passes_together.entry(&truth.plate).or_default() += 1;
        }
    }
    let expected: Vec<String> = together
        .iter()
        .filter(|(_, readers)| readers.len() >= 2)
        .map(|(plate, _)| plate.to_string())
        .collect();
    let convoy_args: Vec<&str> = vec![
        "query",
        "convoy",
        "--plate",
        &plate,
        "--window",
        "2m",
        "--min-readers",
        "2",
        "--archive",
        "archive",
    ];
    let convoy = json(&convoy_args, dir);
    plate_lookups.push((convoy_args, convoy.clone()));
    assert_eq!(plates_of(&convoy, "plate_norm"), expected);
    // A read near two of the target's passes is one pass together, not two.
    for row in convoy.as_array().unwrap() {
        let other = row["plate_norm"].as_str().unwrap();
        assert_eq!(row["passes_together"], passes_together[other], "{row}");
    }

    // Frequency by hour of day.
    let frequency_args: Vec<&str> = vec![
        "query",
        "frequency",
        "--plate",
        &plate,
        "--archive",
        "archive",
    ];
    let frequency = json(&frequency_args, dir);
    plate_lookups.push((frequency_args, frequency.clone()));
    let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
    for truth in target_reads {
        *expected
            .entry((truth.observed_ms / 3_600_000) % 24)
            .or_default() += 1;
    }
    let found: BTreeMap<i64, i64> = frequency
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["hour_of_day"].as_i64().unwrap(),
                row["reads"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found, expected);

    // SQL with partition columns; the full scan gives the same answer as the pruned query.
    let count_sql = "SELECT count(*) AS reads, count(DISTINCT read_id) AS ids FROM reads";
    let counts = json(&["query", "sql", count_sql, "--archive", "archive"], dir);
    assert_eq!(counts[0]["reads"], truths.len() as i64);
    assert_eq!(counts[0]["ids"], truths.len() as i64);
    let full_scan = json(&[&args[..], &["--full-scan"]].concat(), dir);
    assert_eq!(
        plates_of(&full_scan, "plate_norm"),
        plates_of(&stakeout, "plate_norm")
    );

    // The bloom filters skip row groups for a plate read once, and --full-scan really reads them
    // all (DataFusion's scan metrics, e.g. "row_groups_pruned_bloom_filter=24 total → 1 matched").
    let (rare_plate, _) = reads_per_plate
        .iter()
        .find(|(_, count)| **count == 1)
        .unwrap();
    let explain =
        format!("EXPLAIN ANALYZE SELECT read_id FROM reads WHERE plate_norm = '{rare_plate}'");
    let pruned = bloom_filter_row_groups(&succeed(
        &[
            "query",
            "sql",
            &explain,
            "--archive",
            "archive",
            "--format",
            "csv",
        ],
        dir,
    ));
    assert!(
        pruned.1 < pruned.0,
        "row groups (total, matched): {pruned:?}"
    );
    let full = bloom_filter_row_groups(&succeed(
        &[
            "query",
            "sql",
            &explain,
            "--archive",
            "archive",
            "--format",
            "csv",
            "--full-scan",
        ],
        dir,
    ));
    assert_eq!(full.1, full.0, "row groups (total, matched): {full:?}");
    // The pruned query's min/max statistics may rule out row groups before their bloom filters
    // are asked, so its bloom stage can see fewer than the full scan's.
    assert!(full.0 >= pruned.0, "full {full:?}, pruned {pruned:?}");

    // Compaction: far fewer files, the same rows, the same answers.
    let files_before = count_files(&dir.join("archive/reads"));
    let ids_before = json(
        &[
            "query",
            "sql",
            "SELECT read_id FROM reads ORDER BY read_id",
            "--archive",
            "archive",
        ],
        dir,
    );
    let compacted = succeed(
        &[
            "compact",
            "--archive",
            "archive",
            "--before",
            &rfc3339(end + 3_600_000 * 2),
            "--quiet",
        ],
        dir,
    );
    assert!(compacted.contains("files merged into"), "{compacted}");
    let files_after = count_files(&dir.join("archive/reads"));
    assert!(
        files_after < files_before,
        "{files_before} -> {files_after}"
    );
    let ids_after = json(
        &[
            "query",
            "sql",
            "SELECT read_id FROM reads ORDER BY read_id",
            "--archive",
            "archive",
        ],
        dir,
    );
    assert_eq!(ids_after, ids_before);
    let args = incident_args(&at_text);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(json(&args, dir)["reads"], *reads);

    // Once the day has ended, compaction also writes its plate-ordered copy (sorting 3,000 reads
    // at a time, so in ranges of plates); plate lookups read it and answer exactly as before.
    let day_over = rfc3339(end + 2 * 86_400_000);
    let copied = succeed(
        &[
            "compact",
            "--archive",
            "archive",
            "--before",
            &day_over,
            "--max-rows",
            "3000",
            "--quiet",
        ],
        dir,
    );
    assert!(copied.contains("plate-ordered copies"), "{copied}");
    let copy_count = json(
        &[
            "query",
            "sql",
            "SELECT count(*) AS reads, count(DISTINCT read_id) AS ids FROM reads_by_plate",
            "--archive",
            "archive",
        ],
        dir,
    );
    assert_eq!(copy_count, counts);
    for (args, answer) in &plate_lookups {
        let sql = logged_sql(args, dir);
        assert!(
            sql.contains("reads_by_plate"),
            "{args:?} did not use the copy: {sql}"
        );
        assert_eq!(json(args, dir), *answer, "{args:?}");
        let without = [&args[..], &["--no-plate-copy"]].concat();
        assert!(!logged_sql(&without, dir).contains("reads_by_plate"));
        assert_eq!(json(&without, dir), *answer, "{without:?}");
    }

    // A late file for a copied day (here: a copy of one of its files under a new segment name, so
    // its reads appear twice) makes the copy stale; lookups read the day from `reads` again.
    let hour_dir = std::fs::read_dir(dir.join("archive/reads"))
        .unwrap()
        .flat_map(|date| std::fs::read_dir(date.unwrap().path()).unwrap())
        .map(|hour| hour.unwrap().path())
        .min()
        .unwrap();
    let first_file = std::fs::read_dir(&hour_dir)
        .unwrap()
        .map(|file| file.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "parquet"))
        .unwrap();
    std::fs::copy(
        &first_file,
        hour_dir.join("late-p0-900000-900001-n1.parquet"),
    )
    .unwrap();
    let (args, answer) = &plate_lookups[0];
    assert!(!logged_sql(args, dir).contains("reads_by_plate"));
    let from_reads = json(&[&args[..], &["--no-plate-copy"]].concat(), dir);
    assert_eq!(json(args, dir), from_reads);
    assert!(from_reads.as_array().unwrap().len() >= answer.as_array().unwrap().len());
}

/// The SQL `platestream` ran for a query (its debug log).
fn logged_sql(args: &[&str], dir: &Path) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args(args)
        .args(["--format", "json", "--quiet"])
        .current_dir(dir)
        .env("RUST_LOG", "platestream=debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stderr)
}

/// (row groups, row groups left by the bloom filters) from an EXPLAIN ANALYZE of the reads scan.
fn bloom_filter_row_groups(plan: &str) -> (u64, u64) {
    let key = "row_groups_pruned_bloom_filter=";
    let start = plan
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {plan}"))
        + key.len();
    let numbers: Vec<u64> = plan[start..]
        .split_whitespace()
        .take(4)
        .filter_map(|word| word.trim_end_matches(',').parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn count_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn bad_input_is_a_clear_error() {
    let Archive { dir, .. } = archive();
    let dir = dir.path();
    let archived_files = count_files(&dir.join("archive"));
    let cases: [(&[&str], &str); 16] = [
        (
            &[
                "search",
                "--archive",
                "archive",
                "--read-id",
                "x",
                "--from",
                "2026-11-24T12:00:00Z",
                "--to",
                "2026-11-24T12:00:00Z",
            ],
            "is empty: --from must be before --to",
        ),
        (
            &[
                "search",
                "--archive",
                "archive",
                "--read-id",
                "x",
                "--from",
                "1800-01-01T00:00:00Z",
            ],
            "between the years 1900 and 2199",
        ),
        (
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "38.9",
                "--lon",
                "-77",
                "--at",
                "2026-11-24T00:00:00Z",
                "--color",
                "plaid",
            ],
            "is not a color reads are archived with",
        ),
        (
            &[
                "query",
                "sql",
                "SELECT count(*) FROM reads",
                "--archive",
                "archive",
                "--from",
                "2026-11-24T01:00:00Z",
            ],
            "do not apply to sql",
        ),
        (
            &[
                "query",
                "plate",
                "ABC123",
                "--archive",
                "archive",
                "--from",
                "1600-01-01T00:00:00Z",
            ],
            "between the years 1900 and 2199",
        ),
        (
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "38.9",
                "--lon",
                "-77",
                "--at",
                "2026-11-24T00:00:00Z",
                "--window",
                "0s",
            ],
            "--window \"0s\" must be longer than zero",
        ),
        (
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "38.9",
                "--lon",
                "-77",
                "--radius",
                "-5m",
                "--at",
                "2026-11-24T00:00:00Z",
            ],
            "--radius \"-5m\" must be more than zero",
        ),
        (
            &["query", "plate", "A*", "--archive", "archive"],
            "at least 2 are needed",
        ),
        (
            &["query", "plate", "AB#12", "--archive", "archive"],
            "no plate has",
        ),
        (
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "123",
                "--lon",
                "-77",
                "--at",
                "2026-11-24T00:00:00Z",
            ],
            "not a position",
        ),
        (
            &[
                "query",
                "plate",
                "ABC123",
                "--archive",
                "archive",
                "--from",
                "2026-11-24T02:00:00Z",
                "--to",
                "2026-11-24T01:00:00Z",
            ],
            "is empty",
        ),
        (
            &[
                "query",
                "plate",
                "ABC123",
                "--archive",
                "archive",
                "--from",
                "yesterday",
            ],
            "not an RFC 3339 time",
        ),
        (
            &["query", "plate", "ABC123", "--archive", "nowhere"],
            "not a platestream archive",
        ),
        (
            &[
                "query",
                "sql",
                "SELECT nonsense FROM reads",
                "--archive",
                "archive",
            ],
            "nonsense",
        ),
        // An investigation only reads: an INSERT would put a file of copied reads in the archive.
        (
            &[
                "query",
                "sql",
                "INSERT INTO reads SELECT * FROM reads LIMIT 5",
                "--archive",
                "archive",
            ],
            "queries only read the archive",
        ),
        (
            &[
                "query",
                "sql",
                "COPY (SELECT * FROM reads) TO 'archive/reads/copied.parquet'",
                "--archive",
                "archive",
            ],
            "queries only read the archive",
        ),
    ];
    for (args, message) in cases {
        let output = platestream(args, dir);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(count_files(&dir.join("archive")), archived_files);

    // Colors and makes as officers spell them: grey is gray, chevy is chevrolet.
    let (lat, lon) = ("38.91702", "-77.03192");
    let near = |extra: &[&str]| -> usize {
        let mut args = vec![
            "query",
            "incident",
            "--archive",
            "archive",
            "--lat",
            lat,
            "--lon",
            lon,
            "--radius",
            "2km",
            "--from",
            "2026-11-24T00:00:00Z",
            "--to",
            "2026-11-25T00:00:00Z",
        ];
        args.extend_from_slice(extra);
        json(&args, dir)["reads"].as_array().unwrap().len()
    };
    let gray = near(&["--color", "gray"]);
    assert!(gray > 0);
    assert_eq!(near(&["--color", "GREY"]), gray);
    let chevrolets = near(&["--make", "Chevrolet"]);
    assert!(chevrolets > 0);
    assert_eq!(near(&["--make", "chevy"]), chevrolets);

    // A reader id typed in the wrong case reads nothing: the answer says which id it may be.
    let output = platestream(
        &[
            "query",
            "frequency",
            "--reader",
            "DC-R-001",
            "--archive",
            "archive",
        ],
        dir,
    );
    assert!(output.status.success());
    assert!(
        text(&output.stderr).contains("reader ids are case-sensitive: dc-r-001"),
        "{}",
        text(&output.stderr)
    );

    // An analyst's config names the archive; it has no [kafka] to give.
    std::fs::write(dir.join("analyst.toml"), "[archive]\ndir = \"archive\"\n").unwrap();
    let counted = json(
        &[
            "query",
            "sql",
            "SELECT count(*) AS reads FROM reads",
            "--config",
            "analyst.toml",
        ],
        dir,
    );
    assert!(counted[0]["reads"].as_i64().unwrap() > 0, "{counted}");
    // A place in the southern hemisphere is a place, not a flag.
    succeed(
        &[
            "query",
            "stakeout",
            "--archive",
            "archive",
            "--place",
            "-33.87,151.21,300m,2026-11-24T00:00:00Z,2026-11-25T00:00:00Z",
        ],
        dir,
    );
    // An archive without a hotlist hit yet has an empty `alerts` table.
    let no_alerts = dir.join("no-alerts");
    std::fs::create_dir_all(&no_alerts).unwrap();
    let copied = std::process::Command::new("cp")
        .args(["-r", "archive/reads", "no-alerts/reads"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(copied.success());
    let alerts = json(
        &[
            "query",
            "sql",
            "SELECT count(*) AS alerts FROM alerts",
            "--archive",
            "no-alerts",
        ],
        dir,
    );
    assert_eq!(alerts[0]["alerts"], 0);
    // JSON rows carry every column, null or not, so tools see one set of keys.
    let rows = json(
        &[
            "query",
            "sql",
            "SELECT read_id, plate, motion, make FROM reads LIMIT 50",
            "--archive",
            "archive",
        ],
        dir,
    );
    let key_sets: BTreeSet<Vec<&String>> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_object().unwrap().keys().collect())
        .collect();
    assert_eq!(key_sets.len(), 1, "{key_sets:?}");
    assert_eq!(
        key_sets.into_iter().next().unwrap(),
        ["make", "motion", "plate", "read_id"]
    );

    // CSV has no lists: the embedding is written as its text.
    let csv = succeed(
        &[
            "query",
            "sql",
            "SELECT read_id, embedding FROM reads LIMIT 3",
            "--archive",
            "archive",
            "--format",
            "csv",
        ],
        dir,
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // `| head`: the reader goes away after a line; that is not an error.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args([
            "query",
            "sql",
            "SELECT read_id, plate, reader_id FROM reads",
        ])
        .args(["--archive", "archive"])
        .args(["--format", "csv", "--quiet"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut header).unwrap();
    assert!(header.starts_with("read_id,"), "{header}");
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));

    // The same for a command that prints a summary after its work (`compact | head -1`).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args(["compact", "--archive", "archive", "--quiet"])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        !text(&output.stderr).contains("panicked"),
        "{}",
        text(&output.stderr)
    );
}

/// Reads on both sides of the 180th meridian, 111 m apart: a circle around it finds both.
#[test]
fn an_incident_across_the_antimeridian_finds_the_reads_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let reads: String = [("r-east", 179.9995, "EAST01"), ("r-west", -179.9995, "WEST01")]
        .iter()
        .map(|(reader, lon, plate)| {
            format!(
                "{{\"vendor\":\"acme\",\"reader_id\":\"{reader}\",\"observed_at\":\"2026-11-24T12:00:00Z\",\"plate\":\"{plate}\",\"confidence\":0.9,\"lat\":-16.5,\"lon\":{lon}}}\n"
            )
        })
        .collect();
    std::fs::write(dir.path().join("reads.ndjson"), reads).unwrap();
    succeed(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--out",
            "archive",
            "--quiet",
        ],
        dir.path(),
    );
    for lon in ["180", "-180", "179.9999", "-179.9999"] {
        let answer = json(
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "-16.5",
                "--lon",
                lon,
                "--radius",
                "1km",
                "--at",
                "2026-11-24T12:00:00Z",
            ],
            dir.path(),
        );
        assert_eq!(
            plates_of(&answer["reads"], "plate"),
            ["EAST01", "WEST01"],
            "--lon {lon}"
        );
    }
}

#[test]
fn duckdb_reads_the_archive_and_agrees_with_platestream() {
    let python = common::python_with_duckdb();
    let Archive { dir, truths } = archive();
    let dir = dir.path();
    let plate = truths[truths.len() / 2].plate.clone();

    let ours_per_reader = json(
        &[
            "query",
            "sql",
            "SELECT reader_id, count(*) AS reads FROM reads GROUP BY reader_id ORDER BY reader_id",
            "--archive",
            "archive",
        ],
        dir,
    );
    let ours_plate = json(&["query", "plate", &plate, "--archive", "archive"], dir);
    let ours_plate_ids: Vec<String> = {
        let mut ids = plates_of(&ours_plate, "read_id");
        ids.sort();
        ids
    };

    let theirs = common::duckdb_summary(&python, dir, &plate);
    assert_eq!(theirs["total"], truths.len() as i64);
    assert!(
        theirs["hours"].as_i64().unwrap() >= 2,
        "hive partitions seen"
    );
    assert_eq!(theirs["bad_geohash"], 0);
    let ours: Vec<(String, i64)> = ours_per_reader
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["reader_id"].as_str().unwrap().to_owned(),
                row["reads"].as_i64().unwrap(),
            )
        })
        .collect();
    let theirs_per_reader: Vec<(String, i64)> = theirs["per_reader"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours, theirs_per_reader);
    let theirs_ids: Vec<String> = theirs["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert!(!theirs_ids.is_empty());
    assert_eq!(ours_plate_ids, theirs_ids);
}

/// A dispatcher's query about something happening now says how fresh the archive is: reads of the
/// last half minute are still in the engine's open segments.
#[test]
fn an_incident_of_the_last_minutes_names_the_newest_archived_read() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let now = chrono::Utc::now().timestamp_millis();
    // 2,000 reads at 4 a second from 10 minutes ago: the newest about 100 s ago.
    let start = rfc3339(now - 600_000);
    succeed(
        &[
            "simulate",
            "--out",
            "reads.ndjson",
            "--count",
            "2000",
            "--rate",
            "4",
            "--start",
            &start,
        ],
        dir,
    );
    replay_into_archive(dir);
    let incident = |at: &str| {
        platestream(
            &[
                "query",
                "incident",
                "--archive",
                "archive",
                "--lat",
                "38.91702",
                "--lon",
                "-77.03192",
                "--radius",
                "2km",
                "--at",
                at,
                "--window",
                "15m",
                "--format",
                "json",
                "--quiet",
            ],
            dir,
        )
    };
    let live = incident(&rfc3339(now));
    assert!(live.status.success(), "{}", text(&live.stderr));
    let stderr = text(&live.stderr);
    assert!(
        stderr.contains("the archive's newest read was observed at"),
        "{stderr}"
    );
    // The notice goes to stderr: the answer on stdout stays the tools' JSON.
    let answer: Value = serde_json::from_slice(&live.stdout).unwrap();
    assert!(!answer["reads"].as_array().unwrap().is_empty());

    // About a window the archive covers, nothing to say.
    let past = incident(&rfc3339(now - 1_800_000));
    assert!(past.status.success(), "{}", text(&past.stderr));
    assert!(
        !text(&past.stderr).contains("newest read"),
        "{}",
        text(&past.stderr)
    );
}

/// Plate Recognizer sends no position: its fixed readers' reads stand where the registry puts the
/// reader, so an incident or stakeout there finds them. A mobile reader's do not (it moves).
#[test]
fn reads_without_a_position_are_found_at_their_fixed_readers_registered_place() {
    let dir = tempfile::tempdir().unwrap();
    let at = |minute: i64| 1_795_539_600_000i64 + minute * 60_000;
    let lines = [
        // No position, fixed reader pr-1 at 38.90,-77.00.
        format!(
            r#"{{"vendor":"pr","reader_id":"pr-1","observed_at":{},"plate":"NOPOS1","confidence":0.9}}"#,
            at(0)
        ),
        // No position, mobile reader car-1 registered nearby: not placed.
        format!(
            r#"{{"vendor":"pr","reader_id":"car-1","observed_at":{},"plate":"NOPOS2","confidence":0.9}}"#,
            at(1)
        ),
        // Its own position, 111 m north of pr-1.
        format!(
            r#"{{"vendor":"x","reader_id":"x-1","observed_at":{},"plate":"OWNPOS","confidence":0.9,"lat":38.901,"lon":-77.0}}"#,
            at(2)
        ),
        // No position, fixed reader pr-2 far away.
        format!(
            r#"{{"vendor":"pr","reader_id":"pr-2","observed_at":{},"plate":"NOPOS3","confidence":0.9}}"#,
            at(3)
        ),
    ];
    archive_of(dir.path(), &lines);
    std::fs::write(
        dir.path().join("archive/registry.csv"),
        "id,kind,lat,lon\n\
         pr-1,fixed-reader,38.90,-77.00\n\
         car-1,mobile-reader,38.90,-77.00\n\
         pr-2,fixed_reader,38.95,-77.10\n",
    )
    .unwrap();
    let incident = json(
        &[
            "query",
            "incident",
            "--archive",
            "archive",
            "--lat",
            "38.9",
            "--lon",
            "-77.0",
            "--radius",
            "500m",
            "--at",
            "2026-11-24T17:01:00Z",
            "--window",
            "10m",
        ],
        dir.path(),
    );
    let rows = incident["reads"]
        .as_array()
        .or(incident.as_array())
        .unwrap()
        .clone();
    let found: Vec<(String, f64)> = rows
        .iter()
        .map(|row| {
            (
                row["plate_norm"].as_str().unwrap().to_owned(),
                row["distance_m"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(found.len(), 2, "{incident}");
    assert_eq!(found[0], ("NOPOS1".to_owned(), 0.0));
    assert_eq!(found[1].0, "OWNPOS");
    assert!((found[1].1 - 111.2).abs() < 0.5, "{found:?}");
    let stakeout = json(
        &[
            "query",
            "stakeout",
            "--archive",
            "archive",
            "--min-hits",
            "1",
            "--place",
            "38.9,-77.0,100m,2026-11-24T17:00:00Z,2026-11-24T18:00:00Z",
        ],
        dir.path(),
    );
    assert_eq!(plates_of(&stakeout, "plate_norm"), ["NOPOS1"], "{stakeout}");
}

/// The OCR reads the target as a look-alike now and then: that "vehicle" passes every reader
/// with it, and a convoy answer that ranks it first sends an analyst after the target itself.
#[test]
fn convoy_leaves_out_the_targets_own_misreads_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for (reader, minute) in [("r-1", 0), ("r-2", 10), ("r-3", 20)] {
        let at = 1_795_539_600_000i64 + minute * 60_000;
        for (plate, offset_ms) in [("TGT123", 0), ("T6T123", 1_000), ("CMP999", 30_000)] {
            lines.push(format!(
                r#"{{"vendor":"x","reader_id":"{reader}","observed_at":{},"plate":"{plate}","confidence":0.9}}"#,
                at + offset_ms
            ));
        }
    }
    archive_of(dir.path(), &lines);
    let output = platestream(
        &[
            "query",
            "convoy",
            "--plate",
            "TGT123",
            "--archive",
            "archive",
            "--format",
            "json",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let convoy: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plates_of(&convoy, "plate_norm"), ["CMP999"], "{convoy}");
    assert!(
        text(&output.stderr).contains("left out 1 plate(s) one OCR misread from TGT123")
            && text(&output.stderr).contains("T6T123"),
        "{}",
        text(&output.stderr)
    );
}

/// Replays `lines` (canonical reads) into `dir/archive`.
fn archive_of(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("reads.ndjson"), lines.join("\n") + "\n").unwrap();
    replay_into_archive(dir);
}

/// Replays `dir/reads.ndjson` into `dir/archive`.
fn replay_into_archive(dir: &Path) {
    succeed(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--out",
            "archive",
            "--quiet",
        ],
        dir,
    );
}
