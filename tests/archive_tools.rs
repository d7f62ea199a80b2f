//! The archive as analysts' tools see it: `platestream compact` keeps every read exactly once and
//! leaves fewer files; an independent reader (DuckDB from PyPI) opens the archive, hive partitions
//! and spatial key included, and agrees with platestream's own read-back.

#![allow(clippy::unwrap_used)]

mod common;

use common::{platestream, succeed, text};

use std::path::Path;

/// 20,000 reads at 2 reads/s (about 2.8 hours, so several hour partitions), archived by `replay`
/// in small segments so that compaction has work.
fn archive(dir: &Path) {
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
            "--registry-out",
            "registry.csv",
        ],
        dir,
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
        dir,
    );
}

fn count_files(dir: &Path) -> usize {
    platestream::archive_stats::parquet_files(dir)
        .unwrap()
        .len()
}

fn sorted_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = common::archived_reads(dir)
        .into_iter()
        .map(|read| read.read_id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn compaction_merges_closed_hours_without_losing_or_duplicating_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    archive(dir);
    let archive = dir.join("archive");
    let ids_before = sorted_ids(&archive);
    assert_eq!(ids_before.len(), 20_000);
    let files_before = count_files(&archive.join("reads"));

    let report = succeed(
        &[
            "compact",
            "--archive",
            "archive",
            "--before",
            "2030-01-01T00:00:00Z",
            "--quiet",
        ],
        dir,
    );
    assert!(report.contains("files merged into"), "{report}");
    let files_after = count_files(&archive.join("reads"));
    assert!(
        files_after < files_before,
        "{files_before} -> {files_after} files"
    );
    assert_eq!(sorted_ids(&archive), ids_before);
    for path in platestream::archive_stats::parquet_files(&archive.join("reads")).unwrap() {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(".parquet") && name.starts_with("file.reads-p0-"),
            "{name}"
        );
    }

    // Nothing left to merge: a second run changes nothing.
    succeed(
        &[
            "compact",
            "--archive",
            "archive",
            "--before",
            "2030-01-01T00:00:00Z",
            "--quiet",
        ],
        dir,
    );
    assert_eq!(count_files(&archive.join("reads")), files_after);
    assert_eq!(sorted_ids(&archive), ids_before);

    // The registry of the simulated city loads: every reader, and cameras of every kind.
    let registry = platestream_engine::registry::load(&dir.join("registry.csv")).unwrap();
    assert_eq!(
        registry
            .iter()
            .filter(|entry| entry.kind.is_reader())
            .count(),
        44
    );
    for kind in [
        "public-camera",
        "private-registered-camera",
        "live-access-camera",
    ] {
        assert!(
            registry.iter().any(|entry| entry.kind.as_str() == kind),
            "{kind}"
        );
    }
}

#[test]
fn compact_refuses_bad_input_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = platestream(&["compact", "--archive", "nowhere"], dir.path());
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not a platestream archive"),
        "{}",
        text(&output.stderr)
    );
    std::fs::create_dir_all(dir.path().join("archive/reads")).unwrap();
    let output = platestream(
        &["compact", "--archive", "archive", "--before", "soon"],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not an RFC 3339 time"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn duckdb_reads_the_archive_and_agrees_with_platestream() {
    let python = common::python_with_duckdb();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    archive(dir);
    let ours = common::archived_reads(&dir.join("archive"));
    let plate = ours[ours.len() / 2].plate_norm.clone();
    let mut ours_plate_ids: Vec<String> = ours
        .iter()
        .filter(|read| read.plate_norm == plate)
        .map(|read| read.read_id.clone())
        .collect();
    ours_plate_ids.sort();
    let mut ours_per_reader = std::collections::BTreeMap::<String, i64>::new();
    for read in &ours {
        *ours_per_reader.entry(read.reader_id.clone()).or_default() += 1;
    }

    let theirs = common::duckdb_summary(&python, dir, &plate);
    assert_eq!(theirs["total"], ours.len() as i64);
    assert!(
        theirs["hours"].as_i64().unwrap() >= 2,
        "hive partitions seen"
    );
    assert_eq!(theirs["bad_geohash"], 0);
    let theirs_per_reader: std::collections::BTreeMap<String, i64> = theirs["per_reader"]
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
    assert_eq!(ours_per_reader, theirs_per_reader);
    let theirs_ids: Vec<String> = theirs["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert!(!theirs_ids.is_empty());
    assert_eq!(ours_plate_ids, theirs_ids);
}
