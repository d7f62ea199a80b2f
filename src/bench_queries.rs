//! `platestream bench-queries` (hidden): builds an archive of simulated reads and times the
//! investigative queries as users run them (the `platestream` binary, end to end), each beside the
//! same query with pruning switched off (`--full-scan`), in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use platestream_engine::archive::{
    build_plate_copies, ArchiveConfig, PlateCopyOptions, SegmentWriter, BY_PLATE_TABLE, READS_TABLE,
};
use platestream_engine::normalize::normalize_read;
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::Timestamp;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::archive_stats::{archive_stats, column_bytes};
use crate::query::args::rfc3339;

#[derive(Debug, Args)]
pub struct BenchQueriesOptions {
    /// Archive directory; built if it holds no reads yet, reused otherwise.
    #[arg(long, default_value = "target/bench-archive")]
    pub dir: PathBuf,
    /// Reads to archive when building.
    #[arg(long, default_value_t = 10_000_000)]
    pub reads: u64,
    /// Days of traffic the reads span.
    #[arg(long, default_value_t = 7)]
    pub days: u64,
    /// Distinct vehicles in the simulated city.
    #[arg(long, default_value_t = 200_000)]
    pub vehicles: usize,
    /// Reads per archive segment (the stream's default is 500,000).
    #[arg(long, default_value_t = 500_000)]
    pub segment_rows: usize,
    /// Timed runs of each pruned query (the median is reported); the full scan runs once.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

const START: &str = "2026-11-16T00:00:00Z";

struct Built {
    reads: u64,
    raw_json_bytes: u64,
}

fn build(options: &BenchQueriesOptions) -> Result<Built> {
    let start = Timestamp::parse_rfc3339(START).context("bench start time")?;
    let span_ms = options.days as f64 * 86_400_000.0;
    let step_ms = span_ms / options.reads.max(1) as f64;
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 7,
        vehicles: options.vehicles,
        ..SimulatorConfig::default()
    });
    let config = Arc::new(ArchiveConfig::new(&options.dir));
    let bar = ProgressBar::new(options.reads);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} reads archived {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut segment = SegmentWriter::new(Arc::clone(&config), "bench", 0)?;
    let mut raw_json_bytes = 0u64;
    // Readers do not report on a metronome, nor arrive the instant they read: uneven gaps between
    // observations and 0.2-2 s of upload delay, so time columns cost on disk what real ones do.
    let mut timing = ChaCha8Rng::seed_from_u64(11);
    let mut observed_ms = start.millis() as f64;
    let end_ms = start.millis() + span_ms as i64;
    for index in 0..options.reads {
        observed_ms += step_ms * -(1.0 - timing.random::<f64>()).ln();
        let observed = Timestamp::from_millis((observed_ms as i64).min(end_ms - 1));
        let ingested = Timestamp::from_millis(observed.millis() + timing.random_range(200..2_000));
        let (mut read, _) = simulator.next_read(observed);
        // What the reader sent: the canonical JSON before platestream touched it.
        raw_json_bytes += serde_json::to_vec(&read)?.len() as u64 + 1;
        let offset = i64::try_from(index)?;
        read.source = Some(platestream_engine::SourcePosition {
            topic: "bench".to_owned(),
            partition: 0,
            offset,
        });
        normalize_read(&mut read, ingested).map_err(|error| anyhow::anyhow!("{error}"))?;
        segment.cover_offset(offset);
        segment.append_read(&read)?;
        if segment.rows() >= options.segment_rows {
            let full = std::mem::replace(
                &mut segment,
                SegmentWriter::new(Arc::clone(&config), "bench", 0)?,
            );
            full.commit()?;
        }
        if index % 65_536 == 0 {
            bar.set_position(index);
        }
    }
    segment.commit()?;
    bar.finish_and_clear();
    Ok(Built {
        reads: options.reads,
        raw_json_bytes,
    })
}

fn run_query(args: &[String]) -> Result<(Duration, usize)> {
    let exe = std::env::current_exe().context("finding the platestream binary")?;
    let started = Instant::now();
    let output = Command::new(exe)
        .args(args)
        .args(["--format", "csv", "--quiet"])
        .output()
        .context("running platestream query")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "platestream {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rows = String::from_utf8_lossy(&output.stdout)
        .lines()
        .count()
        .saturating_sub(1);
    Ok((elapsed, rows))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

pub fn bench_queries(options: &BenchQueriesOptions) -> Result<()> {
    let stats_before = archive_stats(&options.dir)?;
    let built = if stats_before.read_rows == 0 {
        println!(
            "building an archive of {} simulated reads over {} days in {} ...",
            options.reads,
            options.days,
            options.dir.display()
        );
        let started = Instant::now();
        let built = build(options)?;
        println!("built in {:.0} s", started.elapsed().as_secs_f64());
        Some(built)
    } else {
        println!(
            "reusing the archive in {} ({} reads)",
            options.dir.display(),
            stats_before.read_rows
        );
        None
    };
    let stats = archive_stats(&options.dir)?;
    let reads_bytes = table_bytes(&options.dir.join(READS_TABLE))?;
    println!(
        "archive: {} reads in {} files, {:.1} MiB of reads files: {:.1} bytes per read (zstd)",
        stats.read_rows,
        stats.files,
        reads_bytes as f64 / 1_048_576.0,
        reads_bytes as f64 / stats.read_rows.max(1) as f64
    );
    let columns = column_bytes(&options.dir.join(READS_TABLE))?;
    let per_read = |bytes: u64| bytes as f64 / stats.read_rows.max(1) as f64;
    println!(
        "bytes per read by column: {}; the other {} columns {:.1}",
        columns
            .iter()
            .take(8)
            .map(|(name, bytes)| format!("{name} {:.1}", per_read(*bytes)))
            .collect::<Vec<_>>()
            .join(", "),
        columns.len().saturating_sub(8),
        per_read(columns.iter().skip(8).map(|(_, bytes)| bytes).sum())
    );
    if let Some(built) = &built {
        println!(
            "raw canonical JSON of the same reads: {:.1} MiB, {:.1} bytes per read ({:.1}x the archive)",
            built.raw_json_bytes as f64 / 1_048_576.0,
            built.raw_json_bytes as f64 / built.reads.max(1) as f64,
            built.raw_json_bytes as f64 / reads_bytes.max(1) as f64
        );
    }

    // What `platestream compact` writes for closed days; every simulated day has ended.
    let bar = crate::compact_cmd::steps_bar(false, "days copied by plate");
    let started = Instant::now();
    let copies = build_plate_copies(
        &ArchiveConfig::new(&options.dir),
        // A simulated day (14M reads at 100M) is sorted at once: about 4.5 GB.
        &PlateCopyOptions {
            before_ms: i64::MAX,
            max_sort_rows: 16_000_000,
        },
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let copy_bytes = table_bytes(&options.dir.join(BY_PLATE_TABLE))?;
    println!(
        "plate-ordered copies: {} days written ({} rows) in {:.0} s, {} already current; \
         {:.1} MiB, {:.1} bytes per read",
        copies.days_written,
        copies.rows,
        started.elapsed().as_secs_f64(),
        copies.days_current,
        copy_bytes as f64 / 1_048_576.0,
        copy_bytes as f64 / stats.read_rows.max(1) as f64
    );

    let start = Timestamp::parse_rfc3339(START)
        .context("bench start time")?
        .millis();
    let middle = start + options.days as i64 * 43_200_000;
    let plate = typical_plate(&options.dir)?;
    let wildcard: String = plate
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 1 || i == 3 { '?' } else { c })
        .collect();
    let simulator = Simulator::new(SimulatorConfig::default());
    let readers = simulator.readers();
    let archive = options.dir.display().to_string();
    let strings = |items: &[&str]| {
        items
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<String>>()
    };
    let place = |index: usize, hours: i64| {
        let reader = &readers[index];
        let at = middle + hours * 3_600_000;
        format!(
            "{},{},300m,{},{}",
            reader.lat,
            reader.lon,
            rfc3339(at - 3_600_000),
            rfc3339(at + 3_600_000)
        )
    };
    let day_from = rfc3339(middle - 43_200_000);
    let day_to = rfc3339(middle + 43_200_000);
    let (lat, lon) = (readers[0].lat.to_string(), readers[0].lon.to_string());
    let at = rfc3339(middle);
    let exact = strings(&["query", "plate", &plate, "--archive", &archive]);
    let wildcard_all = strings(&["query", "plate", &wildcard, "--archive", &archive]);
    // The same lookup on days without a current plate-ordered copy.
    let reads_only = |args: &Vec<String>| [&args[..], &["--no-plate-copy".to_owned()]].concat();
    let queries: Vec<(&str, Vec<String>)> = vec![
        (
            "incident 500 m ±30 min",
            strings(&[
                "query",
                "incident",
                "--archive",
                &archive,
                "--lat",
                &lat,
                "--lon",
                &lon,
                "--radius",
                "500m",
                "--at",
                &at,
                "--window",
                "30m",
            ]),
        ),
        ("plate exact, whole archive", exact.clone()),
        (
            "plate exact, whole archive, `reads` only",
            reads_only(&exact),
        ),
        (
            "plate wildcard, one day",
            strings(&[
                "query",
                "plate",
                &wildcard,
                "--archive",
                &archive,
                "--from",
                &day_from,
                "--to",
                &day_to,
            ]),
        ),
        ("plate wildcard, whole archive", wildcard_all.clone()),
        (
            "plate wildcard, whole archive, `reads` only",
            reads_only(&wildcard_all),
        ),
        (
            "stakeout 3 places 300 m ±1 h",
            strings(&[
                "query",
                "stakeout",
                "--archive",
                &archive,
                "--min-hits",
                "2",
                "--place",
                &place(0, -24),
                "--place",
                &place(3, 0),
                "--place",
                &place(11, 24),
            ]),
        ),
    ];
    println!(
        "\n| query | pruned (median of {}) | rows | full scan | rows | full scan / pruned |",
        options.runs
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, args) in queries {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..options.runs.max(1) {
            let (elapsed, found) = run_query(&args)?;
            times.push(elapsed);
            rows = found;
        }
        let pruned = median(times);
        let mut full_args = args.clone();
        full_args.push("--full-scan".to_owned());
        let (full, full_rows) = run_query(&full_args)?;
        println!(
            "| {name} | {:.3} s | {rows} | {:.3} s | {full_rows} | {:.1}x |",
            pruned.as_secs_f64(),
            full.as_secs_f64(),
            full.as_secs_f64() / pruned.as_secs_f64().max(1e-9)
        );
        if rows != full_rows {
            bail!("{name}: the pruned query found {rows} rows, the full scan {full_rows}");
        }
    }
    println!("\nplate {plate}, pattern {wildcard}, incident at {at} around {lat},{lon}");
    Ok(())
}

fn table_bytes(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for path in crate::archive_stats::parquet_files(dir)? {
        bytes += std::fs::metadata(&path)?.len();
    }
    Ok(bytes)
}

/// The plate whose number of reads is nearest the mean per plate: what an investigator typically
/// looks up. (The most read plate is in every file, so no bloom filter could skip any.)
fn typical_plate(dir: &Path) -> Result<String> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .args([
            "query",
            "sql",
            "WITH counts AS (SELECT plate_norm, count(*) AS reads FROM reads GROUP BY plate_norm) \
             SELECT c.plate_norm FROM counts c CROSS JOIN (SELECT avg(reads) AS mean FROM counts) m \
             ORDER BY abs(c.reads - m.mean), c.plate_norm LIMIT 1",
            "--archive",
        ])
        .arg(dir)
        .args(["--format", "csv", "--quiet"])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.lines()
        .nth(1)
        .map(str::to_owned)
        .context("no plate found in the archive")
}
