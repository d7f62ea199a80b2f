//! `platestream compact`: merges the small files of closed hours (see
//! `platestream_engine::archive::compact`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use platestream_engine::archive::{
    build_plate_copies, compact, ArchiveConfig, CompactOptions, PlateCopyOptions, READS_TABLE,
};

use crate::query::archive_dir;
use crate::query::args::{parse_time, rfc3339};

pub fn run_compact(
    archive: Option<&Path>,
    config: Option<&Path>,
    before: Option<&str>,
    max_rows: usize,
    quiet: bool,
) -> Result<()> {
    let root = archive_dir(archive, config)?;
    if !root.join(READS_TABLE).is_dir() {
        bail!(
            "{} is not a platestream archive (no {READS_TABLE}/ directory); give --archive DIR",
            root.display()
        );
    }
    if max_rows == 0 {
        bail!("--max-rows must be at least 1");
    }
    let before_ms = match before {
        Some(text) => parse_time("--before", text)?,
        None => chrono::Utc::now().timestamp_millis() - 3_600_000,
    };
    let config = ArchiveConfig::new(&root);
    let bar = steps_bar(quiet, "hour files merged");
    let report = compact(
        &config,
        &CompactOptions {
            before_ms,
            max_rows,
        },
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("compacting {}", root.display()))?;
    bar.finish_and_clear();
    println!(
        "compacted hours ending by {}: {} files merged into {} ({} rows; {:.1} MiB -> {:.1} MiB)",
        rfc3339(before_ms),
        report.input_files,
        report.output_files,
        report.rows,
        report.bytes_before as f64 / 1_048_576.0,
        report.bytes_after as f64 / 1_048_576.0
    );
    if report.left_alone_for_size > 0 {
        println!(
            "left {} files as they are: merged with a neighbour they would pass --max-rows {max_rows}",
            report.left_alone_for_size
        );
    }
    if report.leftovers_removed > 0 {
        println!(
            "removed {} files an interrupted compaction had already merged",
            report.leftovers_removed
        );
    }
    let copies_bar = steps_bar(quiet, "days copied by plate");
    let copies = build_plate_copies(
        &config,
        &PlateCopyOptions {
            before_ms,
            max_sort_rows: max_rows,
        },
        |done, total| {
            copies_bar.set_length(total as u64);
            copies_bar.set_position(done as u64);
        },
    )
    .with_context(|| format!("writing the plate-ordered copies in {}", root.display()))?;
    copies_bar.finish_and_clear();
    println!(
        "plate-ordered copies of days ending by {}: {} written ({} rows), {} already current; {:.1} MiB in all",
        rfc3339(before_ms),
        copies.days_written,
        copies.rows,
        copies.days_current,
        copies.bytes as f64 / 1_048_576.0
    );
    for (topic, partition) in &report.partitions_skipped {
        println!(
            "skipped {topic} partition {partition}: a crash left a segment incomplete; run the engine (its recovery) first"
        );
    }
    Ok(())
}

/// A bar of `done/total {what}`; its length is set once the work is counted.
pub fn steps_bar(quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
