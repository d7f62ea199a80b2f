//! `platestream demo`, the README's first command, run as a new user runs it: a real tansu broker,
//! simulated readers, the engine, the archive, and the demo's dispatcher entering an AMBER alert by
//! hand through the live updates topic and asking about a 911 call over the engine's API.

#![allow(clippy::unwrap_used)]

mod common;

use common::succeed;

/// The number after `label` on its line of the demo's summary.
fn figure(stdout: &str, label: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in {stdout}"));
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

/// The summary's messages archived, folded into a pass already read, dead-lettered, or no read.
fn accounted_for(stdout: &str) -> u64 {
    figure(stdout, "reads archived")
        + figure(stdout, "duplicate frames folded")
        + figure(stdout, "dead-lettered (with reasons)")
        + figure(stdout, "not reads (heartbeats)")
}

#[test]
fn the_demo_accounts_for_every_read_and_pages_on_the_alert_its_dispatcher_enters_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let demo = ["demo", "--seconds", "6", "--data-dir", "data"];
    for run in 1..=2 {
        let stdout = succeed(&demo, dir.path());
        let produced = figure(&stdout, "reads produced by simulated readers");
        let consumed = figure(&stdout, "messages consumed");
        assert!(produced > 3_000, "run {run}: {stdout}");
        assert_eq!(consumed, produced, "run {run}: {stdout}");
        // Every message is archived, folded into a pass already read, or dead-lettered; a
        // second run on the same directory (a fresh broker) skips none of them.
        assert_eq!(accounted_for(&stdout), consumed, "run {run}: {stdout}");
        assert_eq!(
            figure(&stdout, "skipped, archived by an earlier run"),
            0,
            "run {run}: {stdout}"
        );
        assert_eq!(figure(&stdout, "consumer lag after commit"), 0);

        // The dispatcher's AMBER alert, then the engine paging on the vehicle's next read.
        let entered = stdout
            .lines()
            .find_map(|line| line.strip_prefix("[dispatcher] AMBER alert entered by hand for "))
            .unwrap_or_else(|| panic!("run {run}: no dispatcher line in {stdout}"));
        let plate = entered.split_whitespace().next().unwrap();
        let after_entry = &stdout[stdout.find("[dispatcher]").unwrap()..];
        assert!(
            after_entry.contains(&format!("ALERT p1 amber_alert {plate} ")),
            "run {run}: no page for {plate} in {stdout}"
        );
        assert_eq!(figure(&stdout, "hotlist entries entered by hand"), 1);

        // The 911 call two thirds in: the reads near the corner, with the engine's own, not yet
        // archived (in the first run the archive has none yet: its first segment is 5 s away).
        let call = stdout
            .lines()
            .find_map(|line| line.strip_prefix("[dispatcher] 911 call at "))
            .unwrap_or_else(|| panic!("run {run}: no 911 call in {stdout}"));
        let reads: u64 = call
            .split("): ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("run {run}: no read count in {call:?}"));
        assert!(reads > 0, "run {run}: {call}");
        assert!(call.contains("from the engine's API"), "run {run}: {call}");
        assert!(
            stdout.contains("[dispatcher] within 500 m: ") && stdout.contains("fixed-reader: "),
            "run {run}: {stdout}"
        );
    }

    // Both runs' reads are in the archive, and the hand-entered alerts with them.
    let archived = succeed(
        &[
            "query",
            "sql",
            "SELECT count(*) AS alerts FROM alerts WHERE list = 'amber_alert' AND reason LIKE '%dispatcher%'",
            "--archive",
            "data",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    let alerts: u64 = archived.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(alerts >= 2, "{archived}");
}

/// Ctrl-C in a terminal signals the whole foreground process group: the demo's broker must not
/// die with it before the demo has committed and summarized.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_demo_with_its_summary() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_platestream"))
        .args(["demo", "--seconds", "120", "--data-dir", "data"])
        .current_dir(dir.path())
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = demo.id();
    let mut stdout = std::io::BufReader::new(demo.stdout.take().unwrap());
    let mut seen = String::new();
    // Interrupted once the engine is paging: it has read, matched and is archiving.
    while !seen.contains("ALERT p") {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the demo ended early: {seen}"
        );
        seen.push_str(&line);
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{group}")])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let output = demo.wait_with_output().unwrap();
    seen.push_str(&rest);
    assert!(
        output.status.success(),
        "{seen}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let consumed = figure(&seen, "messages consumed");
    assert!(consumed > 0, "{seen}");
    assert_eq!(accounted_for(&seen), consumed, "{seen}");
    // What was consumed is committed; what the readers sent after the stop waits in the topic.
    assert_eq!(
        figure(&seen, "consumer lag after commit"),
        figure(&seen, "reads produced by simulated readers") - consumed,
        "{seen}"
    );
}
