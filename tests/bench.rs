#![allow(clippy::unwrap_used)]
//! `platestream bench --quick` end to end: a real broker, the real binary as ceiling consumer,
//! engine and replay, and the Python peer when `scripts/ensure-bench-peer` installed it (its row
//! then says "skipped" otherwise). Checks that every row is there and the counts agree, not speed.

use std::process::Command;

fn table_row<'a>(markdown: &'a str, starts_with: &str) -> Vec<&'a str> {
    let line = markdown
        .lines()
        .find(|line| line.starts_with(starts_with))
        .unwrap_or_else(|| panic!("no row {starts_with:?} in\n{markdown}"));
    line.split('|').map(str::trim).collect()
}

/// Runs `platestream bench --quick` in `work_dir`; the markdown it wrote, and what it printed.
fn quick_bench(work_dir: &std::path::Path, out: &std::path::Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args(["bench", "--quick", "--out"])
        .arg(out)
        .arg("--work-dir")
        .arg(work_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    (
        std::fs::read_to_string(out).unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_quick_bench_reports_every_measure_and_every_consumer_reads_what_was_produced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench-results.md");
    let (markdown, printed) = quick_bench(&dir.path().join("work"), &out);
    assert!(printed.contains("| measure |"), "the table is printed too");

    for measure in [
        "| (1a) ceiling",
        "| (1b) `platestream run`",
        "| (2a) floor",
        "| (2b) `platestream replay --threads 1`",
        "| (3) alert latency",
        "| (4) peak RSS of `platestream run` during (1b)",
        "| (4) peak RSS of `platestream run` during (3)",
        "| (4) slow archive writer (",
        "| (4) slow archive writer: consumption rate",
        "| (5) Python peer",
    ] {
        assert!(
            markdown.contains(measure),
            "no {measure:?} row in\n{markdown}"
        );
    }
    for fact in [
        "- machine: ",
        "- versions: platestream ",
        "librdkafka ",
        "- command: `",
    ] {
        assert!(markdown.contains(fact), "no {fact:?} in\n{markdown}");
    }

    // Reads consumed = reads produced, for every consumer.
    let produced = table_row(&markdown, "| produced to the topic |")[2];
    assert_eq!(produced, "20000");
    for consumer in [
        "| ceiling consumer |",
        "| platestream run |",
        "| offline floor |",
    ] {
        assert_eq!(table_row(&markdown, consumer)[2], produced, "{consumer}");
    }
    let engine = table_row(&markdown, "| platestream run |");
    // Replay on one thread and on every core (at least two): the same counts, only faster.
    let replays: Vec<Vec<&str>> = markdown
        .lines()
        .filter(|line| line.starts_with("| platestream replay --threads "))
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(replays.len(), 2, "{markdown}");
    assert!(replays[0][1].ends_with("--threads 1"));
    assert_eq!(
        replays[0][2..],
        replays[1][2..],
        "threads change nothing but speed"
    );
    assert_eq!(replays[0][2], produced);
    let replay = &replays[0];
    assert_eq!(
        engine[5], replay[5],
        "the engine and replay dead-letter the same lines"
    );
    let archived: u64 = engine[3].parse().unwrap();
    let dead: u64 = engine[5].parse().unwrap();
    assert!(dead > 0 && archived + dead <= 20_000, "{engine:?}");
    let alerts: u64 = engine[4].parse().unwrap();
    assert!(alerts > 0, "hotlisted vehicles pass: {engine:?}");
    if !markdown.contains("| (5) Python peer | skipped") {
        assert_eq!(table_row(&markdown, "| Python peer |")[2], produced);
    }
    assert!(markdown.contains("Consumed = produced for every consumer: yes"));
    let latency = table_row(&markdown, "| (3) alert latency");
    assert!(!latency[2].contains("(0 alerts)"), "{latency:?}");
    // Each alert's time is split at its `raised_at`: both parts were measured.
    for part in [
        "| (3) of which: read produced → alert raised",
        "| (3) of which: alert raised → on the alerts topic",
    ] {
        let row = table_row(&markdown, part);
        assert!(
            row.len() > 2 && !row[2].ends_with("max 0.0 ms"),
            "{part}: {row:?}"
        );
    }
}

/// `--work-dir` keeps the last bench's archives for inspection; a second bench in the same
/// directory (against a fresh broker, whose offsets start at 0 again) must not take them for its
/// own and skip the reads they hold.
#[test]
fn a_second_bench_in_the_same_work_dir_consumes_everything_again() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let out = dir.path().join("bench-results.md");
    quick_bench(&work, &out);
    assert!(work.join("engine-archive").exists(), "the archive is kept");
    let (markdown, _) = quick_bench(&work, &out);
    let produced = table_row(&markdown, "| produced to the topic |")[2];
    assert_eq!(table_row(&markdown, "| platestream run |")[2], produced);
    assert!(markdown.contains("Consumed = produced for every consumer: yes"));
}
