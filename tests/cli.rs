//! The `platestream` command as users run it: replay over NDJSON, help, and configuration errors.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{platestream, text};

use std::path::Path;

#[test]
fn replay_archives_every_good_line_alerts_on_hotlisted_reads_and_dead_letters_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let simulate = platestream(
        &[
            "simulate",
            "--out",
            "reads.ndjson",
            "--count",
            "5000",
            "--seed",
            "3",
            "--misread-rate",
            "0",
            "--hotlist-fraction",
            "0.02",
            "--hotlist-out",
            "hotlist.csv",
            "--truth-out",
            "truth.ndjson",
        ],
        dir.path(),
    );
    assert!(simulate.status.success(), "{}", text(&simulate.stderr));
    let truths: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("truth.ndjson"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let hotlisted = truths.iter().filter(|t| t["hotlisted"] == true).count();
    assert!(hotlisted > 0);

    // Lines a vendor might really send: truncated JSON, binary, an impossible position.
    let mut input = std::fs::read(dir.path().join("reads.ndjson")).unwrap();
    input.extend_from_slice(b"{\"vendor\":\"acme\",\"plate\"\n");
    input.extend_from_slice(b"\xff\xfe\x01\n\n");
    input.extend_from_slice(
        br#"{"vendor":"acme","reader_id":"r","observed_at":"2026-11-24T12:00:00Z","plate":"ABC123","confidence":0.9,"lat":123.4,"lon":-77.0}"#,
    );
    input.push(b'\n');
    std::fs::write(dir.path().join("reads.ndjson"), input).unwrap();

    let replay = platestream(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--hotlist",
            "hotlist.csv",
            "--out",
            "out",
            "--quiet",
            // Every line is its own read here; folding is tested on its own below.
            "--dedupe-window-ms",
            "0",
        ],
        dir.path(),
    );
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let stdout = text(&replay.stdout);
    assert!(stdout.contains("reads archived      5000"), "{stdout}");
    assert!(stdout.contains("dead-lettered       3"), "{stdout}");

    let out = dir.path().join("out");
    let alerts = std::fs::read_to_string(out.join("alerts.ndjson")).unwrap();
    assert_eq!(alerts.lines().count(), hotlisted);
    for line in alerts.lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in [
            "alert_id",
            "read_id",
            "list",
            "entry_plate",
            "read_plate",
            "match_kind",
            "score",
            "observed_at",
            "reader_id",
        ] {
            assert!(!alert[field].is_null(), "alert lacks {field}: {line}");
        }
    }
    let dead_letters: Vec<serde_json::Value> =
        std::fs::read_to_string(out.join("dead-letter.ndjson"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let codes: Vec<&str> = dead_letters
        .iter()
        .map(|d| d["reason_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["malformed", "not_utf8", "latitude_out_of_range"]
    );
    assert_eq!(dead_letters[1]["payload_base64"], "//4B");
    assert!(dead_letters[2]["payload"]
        .as_str()
        .unwrap()
        .contains("123.4"));

    let archived = common::archived_reads(&out);
    assert_eq!(archived.len(), 5000);
    let input = std::fs::read(dir.path().join("reads.ndjson")).unwrap();
    let first_line: serde_json::Value =
        serde_json::from_slice(input.split(|byte| *byte == b'\n').next().unwrap()).unwrap();
    let row = archived.iter().find(|r| r.source_offset == 1).unwrap();
    assert_eq!(row.plate, first_line["plate"].as_str().unwrap());
    assert_eq!(row.reader_id, first_line["reader_id"].as_str().unwrap());

    // Replaying again into the same directory rewrites the same files: no duplicates.
    let again = platestream(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--hotlist",
            "hotlist.csv",
            "--out",
            "out",
            "--quiet",
            // Every line is its own read here; folding is tested on its own below.
            "--dedupe-window-ms",
            "0",
        ],
        dir.path(),
    );
    assert!(again.status.success());
    assert_eq!(common::archived_reads(&out).len(), 5000);
}

#[test]
fn repeated_frames_of_a_vehicle_pass_fold_into_one_read_and_every_report_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let simulate = platestream(
        &[
            "simulate",
            "--out",
            "frames.ndjson",
            "--count",
            "4000",
            "--seed",
            "11",
            "--repeat-frame-rate",
            "0.3",
        ],
        dir.path(),
    );
    assert!(simulate.status.success(), "{}", text(&simulate.stderr));
    let replay = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--input",
            "frames.ndjson",
            "--out",
            out,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        let output = platestream(&args, dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let number_after = |stdout: &str, label: &str| -> usize {
        let line = stdout.lines().find(|l| l.starts_with(label)).unwrap();
        line[label.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };

    let stdout = replay("folded", &[]);
    let archived = common::archived_reads(&dir.path().join("folded"));
    let folded = number_after(&stdout, "duplicates folded");
    assert!(
        folded > 800,
        "about 30% of 4000 reports repeat a pass: {stdout}"
    );
    assert_eq!(number_after(&stdout, "reads archived"), archived.len());
    assert_eq!(archived.len() + folded, 4000, "{stdout}");
    let frames: i64 = archived.iter().map(|read| i64::from(read.frames)).sum();
    assert_eq!(
        frames, 4000,
        "every report is one frame of an archived pass"
    );
    assert!(archived.iter().any(|read| read.frames >= 2));

    // A vendor sends its first 50 reports again after the file's last: each folds into the pass
    // already archived instead of being archived a second time under the same read id.
    let original = std::fs::read_to_string(dir.path().join("frames.ndjson")).unwrap();
    let resent: String = original
        .lines()
        .take(50)
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(
        dir.path().join("resent.ndjson"),
        format!("{original}{resent}"),
    )
    .unwrap();
    let output = platestream(
        &[
            "replay",
            "--input",
            "resent.ndjson",
            "--out",
            "resent",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let with_resends = common::archived_reads(&dir.path().join("resent"));
    let ids: std::collections::HashSet<&str> = with_resends
        .iter()
        .map(|read| read.read_id.as_str())
        .collect();
    assert_eq!(ids.len(), with_resends.len(), "a read id archived twice");
    assert_eq!(with_resends.len(), archived.len(), "{stdout}");
    assert_eq!(
        number_after(&stdout, "duplicates folded"),
        folded + 50,
        "{stdout}"
    );

    // Kept duplicates are archived too, each pointing at a pass that is in the archive.
    let stdout = replay("kept", &["--keep-duplicates"]);
    let kept = common::archived_reads(&dir.path().join("kept"));
    assert_eq!(kept.len(), 4000);
    // Counted once: archived, less those kept, plus those folded, is every report.
    assert_eq!(
        number_after(&stdout, "reads archived") - number_after(&stdout, "duplicates kept")
            + number_after(&stdout, "duplicates folded"),
        4000,
        "{stdout}"
    );
    let passes: std::collections::HashSet<&str> = kept
        .iter()
        .filter(|read| read.duplicate_of.is_none())
        .map(|read| read.read_id.as_str())
        .collect();
    assert_eq!(passes.len(), archived.len());
    for duplicate in kept.iter().filter(|read| read.duplicate_of.is_some()) {
        assert!(passes.contains(duplicate.duplicate_of.as_deref().unwrap()));
    }

    // Window 0 turns suppression off.
    let stdout = replay("all", &["--dedupe-window-ms", "0"]);
    assert_eq!(number_after(&stdout, "reads archived"), 4000, "{stdout}");
}

#[test]
fn every_subcommand_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&platestream(&["--help"], dir.path()).stdout);
    for command in [
        "demo", "run", "serve", "simulate", "replay", "compact", "hotlist",
    ] {
        assert!(help.contains(command), "{help}");
        let sub = platestream(&[command, "--help"], dir.path());
        assert!(sub.status.success());
        assert!(
            text(&sub.stdout).contains("Usage: platestream"),
            "{command}"
        );
    }
}

#[test]
fn bad_configuration_and_arguments_are_clear_errors_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[kafka]\nbootstrap_servers = \"x:9092\"\n[archive]\nsegment_max_rows = \"many\"\n",
    )
    .unwrap();
    let run = platestream(&["run", "--config", "bad.toml"], dir.path());
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(stderr.contains("segment_max_rows"), "{stderr}");

    let missing = platestream(&["run", "--config", "nope.toml"], dir.path());
    assert!(text(&missing.stderr).contains("nope.toml"));

    for (args, flag) in [
        (
            &["simulate", "--out", "x.ndjson", "--misread-rate", "3"][..],
            "--misread-rate",
        ),
        (
            &["simulate", "--out", "x.ndjson", "--vehicles", "0"],
            "--vehicles",
        ),
        (&["simulate", "--out", "x.ndjson", "--rate", "0"], "--rate"),
        (
            &[
                "simulate",
                "--out",
                "x.ndjson",
                "--hotlist-fraction",
                "0",
                "--hotlist-out",
                "h.csv",
            ],
            "--hotlist-fraction 0 of --vehicles 20000",
        ),
        (&["evaluate", "--reads", "0"], "--reads"),
        (&["demo", "--hotlist-fraction", "2"], "--hotlist-fraction"),
        (&["demo", "--partitions", "0"], "--partitions"),
        (&["bench", "--partitions", "0"], "--partitions"),
    ] {
        let refused = platestream(args, dir.path());
        assert!(!refused.status.success(), "{args:?}");
        assert!(
            text(&refused.stderr).contains(flag),
            "{args:?}: {}",
            text(&refused.stderr)
        );
    }

    let replay = platestream(
        &["replay", "--input", "absent.ndjson", "--out", "o"],
        dir.path(),
    );
    assert!(!replay.status.success());
    assert!(text(&replay.stderr).contains("absent.ndjson"));

    // A pretty-printed export is refused whole, not dead-lettered line by line.
    std::fs::write(
        dir.path().join("export.json"),
        "[\n  {\n    \"plate\": \"ABC123\"\n  }\n]\n",
    )
    .unwrap();
    let pretty = platestream(
        &["replay", "--input", "export.json", "--out", "pretty"],
        dir.path(),
    );
    assert!(!pretty.status.success());
    assert!(
        text(&pretty.stderr).contains("jq -c '.[]' export.json"),
        "{}",
        text(&pretty.stderr)
    );
    assert!(!dir.path().join("pretty").exists());

    std::fs::write(dir.path().join("h.csv"), "plate,reason\nABC123,x\n").unwrap();
    std::fs::write(dir.path().join("r.ndjson"), "").unwrap();
    let hotlist = platestream(
        &[
            "replay",
            "--input",
            "r.ndjson",
            "--hotlist",
            "h.csv",
            "--out",
            "o",
        ],
        dir.path(),
    );
    assert!(!hotlist.status.success());
    assert!(
        text(&hotlist.stderr).contains("`list`"),
        "{}",
        text(&hotlist.stderr)
    );
}

#[test]
fn the_shipped_examples_decode_and_alerts_carry_every_field_the_schema_requires() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let examples = root.join("schemas/examples/canonical");
    let mut args: Vec<String> = vec!["replay".into()];
    for name in ["full.json", "minimal.json", "unknown-jurisdiction.json"] {
        args.push("--input".into());
        args.push(examples.join(name).display().to_string());
    }
    args.extend(["--hotlist", "schemas/examples/hotlist.csv", "--out"].map(String::from));
    args.push(dir.path().join("out").display().to_string());
    args.push("--quiet".into());
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let replay = platestream(&arg_refs, root);
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert!(text(&replay.stdout).contains("dead-lettered       0"));

    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schemas/alert.schema.json")).unwrap(),
    )
    .unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let alerts = std::fs::read_to_string(dir.path().join("out/alerts.ndjson")).unwrap();
    assert_eq!(
        alerts.lines().count(),
        3,
        "each example read is on the example hotlist"
    );
    for line in alerts.lines() {
        let alert: serde_json::Value = serde_json::from_str(line).unwrap();
        for field in &required {
            assert!(alert.get(*field).is_some(), "alert lacks required {field}");
        }
        for field in alert.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "{field} is not in the schema"
            );
        }
    }
}

#[test]
fn serve_refuses_to_start_with_a_guessable_vendor_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("serve.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
         [ingest]\nlisten = \"127.0.0.1:0\"\n\
         [ingest.vendors.rekor]\nformat = \"rekor\"\ntoken = \"1234\"\n",
    )
    .unwrap();
    let serve = platestream(&["serve", "--config", "serve.toml"], dir.path());
    assert!(!serve.status.success());
    let stderr = text(&serve.stderr);
    assert!(stderr.contains("ingest.vendors.rekor.token"), "{stderr}");
}

/// `simulate --embedding-dim --bolo-out` → `replay` with those BOLOs: every appearance alert is a
/// read of the BOLO's vehicle and nearly all its reads alert; every description alert is a read
/// of a vehicle that looks like the description. Then `search` finds the vehicle's reads in the
/// archive, as exact brute force does.
#[test]
fn bolos_alert_on_the_described_vehicles_and_search_finds_the_planted_vehicle() {
    let dir = tempfile::tempdir().unwrap();
    let simulate = platestream(
        &[
            "simulate",
            "--out",
            "reads.ndjson",
            "--count",
            "20000",
            "--seed",
            "11",
            "--vehicles",
            "5000",
            "--embedding-dim",
            "48",
            "--bolo-out",
            "bolos.csv",
            "--bolo-count",
            "3",
            "--truth-out",
            "truth.ndjson",
        ],
        dir.path(),
    );
    assert!(simulate.status.success(), "{}", text(&simulate.stderr));
    let truths: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("truth.ndjson"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let read_ids: Vec<String> = std::fs::read_to_string(dir.path().join("reads.ndjson"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["read_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut bolos = csv::Reader::from_path(dir.path().join("bolos.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = bolos.records().map(Result::unwrap).collect();
    let planted: Vec<u64> = rows
        .iter()
        .filter(|row| &row[0] == "appearance_bolo")
        .map(|row| row[4].trim_start_matches("sim-").parse().unwrap())
        .collect();
    assert_eq!(planted.len(), 3);
    let reads_of = |vehicle: u64| -> Vec<usize> {
        truths
            .iter()
            .enumerate()
            .filter(|(_, truth)| truth["vehicle_id"] == vehicle)
            .map(|(index, _)| index)
            .collect()
    };
    assert!(
        planted.iter().map(|v| reads_of(*v).len()).sum::<usize>() >= 10,
        "the BOLO vehicles pass the readers"
    );

    let replay = platestream(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--hotlist",
            "bolos.csv",
            "--out",
            "out",
            "--quiet",
            "--dedupe-window-ms",
            "0",
            "--embedding-dim",
            "48",
        ],
        dir.path(),
    );
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let alerts: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("out/alerts.ndjson"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    let line_of =
        |alert: &serde_json::Value| alert["source"]["offset"].as_u64().unwrap() as usize - 1;
    let vehicle_of_entry = |alert: &serde_json::Value| -> u64 {
        alert["entry_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("sim-")
            .parse()
            .unwrap()
    };

    // Appearance: precise and (nearly) complete against the ground truth.
    for &vehicle in &planted {
        let expected = reads_of(vehicle);
        let alerted: Vec<usize> = alerts
            .iter()
            .filter(|alert| {
                alert["list"] == "appearance_bolo" && vehicle_of_entry(alert) == vehicle
            })
            .map(|alert| {
                assert_eq!(alert["match_kind"], "appearance");
                assert!(alert["appearance_similarity"].as_f64().unwrap() >= 0.85);
                line_of(alert)
            })
            .collect();
        for line in &alerted {
            assert_eq!(
                truths[*line]["vehicle_id"], vehicle,
                "appearance alert on another vehicle"
            );
        }
        assert!(
            alerted.len() as f64 >= 0.95 * expected.len() as f64,
            "vehicle {vehicle}: {} of {} reads alerted",
            alerted.len(),
            expected.len()
        );
    }

    // Descriptions: every alert is a vehicle of that make and model, of the color or a look-alike.
    let described: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|alert| alert["list"] == "description_bolo")
        .collect();
    assert!(!described.is_empty());
    for alert in &described {
        assert_eq!(alert["match_kind"], "attribute");
        let row = rows
            .iter()
            .find(|row| {
                &row[0] == "description_bolo" && row[4] == *alert["entry_id"].as_str().unwrap()
            })
            .unwrap();
        let truth = &truths[line_of(alert)];
        assert_eq!(truth["make"], row[5].to_owned());
        let matched = alert["attribute_matches"].as_array().unwrap();
        assert!(matched
            .iter()
            .any(|m| m["attribute"] == "make" && m["agreement"] == "agrees"));
        // A reader that could not classify the model still fits the description; one that did
        // saw the BOLO's model.
        let model = matched.iter().find(|m| m["attribute"] == "model").unwrap();
        if model["agreement"] == "agrees" {
            assert_eq!(truth["model"], row[6].to_owned());
        } else {
            assert_eq!(model["agreement"], "read_unknown");
        }
    }
    let planted_described = described
        .iter()
        .filter(|alert| {
            planted.contains(&vehicle_of_entry(alert))
                && truths[line_of(alert)]["vehicle_id"] == vehicle_of_entry(alert)
        })
        .count();
    let planted_reads: usize = planted.iter().map(|v| reads_of(*v).len()).sum();
    assert!(
        planted_described as f64 >= 0.6 * planted_reads as f64,
        "{planted_described} of {planted_reads} reads of the described vehicles alerted"
    );

    // Search: the reference vector of the first planted vehicle, HNSW and exact agree, and the
    // nearest reads are that vehicle's.
    let vehicle = planted[0];
    let reference = rows
        .iter()
        .find(|row| &row[0] == "appearance_bolo" && row[4] == format!("sim-{vehicle}"))
        .unwrap()[9]
        .to_owned();
    std::fs::write(dir.path().join("reference.json"), reference).unwrap();
    let k = reads_of(vehicle).len().min(10);
    let search = |exact: bool| -> Vec<String> {
        let k = k.to_string();
        let mut args = vec![
            "search",
            "--archive",
            "out",
            "--vector",
            "reference.json",
            "-k",
            &k,
            "--json",
            "--quiet",
        ];
        if exact {
            args.push("--exact");
        }
        let output = platestream(&args, dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["read_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let approximate = search(false);
    let exact = search(true);
    assert_eq!(approximate.len(), k);
    let mut sorted_approximate = approximate.clone();
    sorted_approximate.sort();
    let mut sorted_exact = exact.clone();
    sorted_exact.sort();
    assert_eq!(sorted_approximate, sorted_exact);
    let vehicle_reads: Vec<&String> = reads_of(vehicle)
        .iter()
        .map(|line| &read_ids[*line])
        .collect();
    for read_id in &approximate {
        assert!(
            vehicle_reads.contains(&read_id),
            "{read_id} is not a read of vehicle {vehicle}"
        );
    }

    // In a small area: the index is asked of that area's reads only, so it finds what the exact
    // scan finds (filtering the walk of an index of every read missed better matches).
    let in_area = |exact: bool| -> Vec<String> {
        let mut args = vec![
            "search",
            "--archive",
            "out",
            "--vector",
            "reference.json",
            "-k",
            "10",
            "--near",
            "38.9,-77.03",
            "--radius",
            "1500m",
            "--json",
            "--quiet",
        ];
        if exact {
            args.push("--exact");
        }
        let output = platestream(&args, dir.path());
        assert!(output.status.success(), "{}", text(&output.stderr));
        let mut ids: Vec<String> = text(&output.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["read_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        ids.sort();
        ids
    };
    let exact_in_area = in_area(true);
    let approximate_in_area = in_area(false);
    assert_eq!(exact_in_area.len(), 10);
    let found = exact_in_area
        .iter()
        .filter(|id| approximate_in_area.contains(id))
        .count();
    assert!(
        found >= 9,
        "{approximate_in_area:?} against {exact_in_area:?}"
    );
    for read_id in exact_in_area.iter().filter(|id| vehicle_reads.contains(id)) {
        assert!(
            approximate_in_area.contains(read_id),
            "{read_id} of the vehicle missed"
        );
    }

    // Bad input is a clear error, not a crash.
    let bad = platestream(
        &["search", "--archive", "out", "--vector", "bolos.csv"],
        dir.path(),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("reference_vectors") || text(&bad.stderr).contains("JSON"),
        "{}",
        text(&bad.stderr)
    );
    // A vector from another model (another length) matches nothing: said, not an empty answer.
    std::fs::write(dir.path().join("short.json"), "[0.5, 0.25, 0.125]").unwrap();
    for exact in [false, true] {
        let mut args = vec!["search", "--archive", "out", "--vector", "short.json"];
        if exact {
            args.push("--exact");
        }
        let other_model = platestream(&args, dir.path());
        assert!(!other_model.status.success());
        assert!(
            text(&other_model.stderr).contains("has 3 values, but the archive's embeddings have"),
            "{}",
            text(&other_model.stderr)
        );
    }
}

#[test]
fn an_engine_whose_topics_do_not_exist_refuses_to_start_and_names_them() {
    let broker = platestream::broker::TansuBroker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("platestream.toml"),
        format!(
            "[kafka]\nbootstrap_servers = \"{}\"\nraw_topics = [\"absent-reads\"]\n\
             alerts_topic = \"absent-alerts\"\ndead_letter_topic = \"absent-dead\"\n\
             [archive]\ndir = \"archive\"\n[hotlists]\nfiles = []\n[metrics]\nlisten = \"\"\n",
            broker.bootstrap_servers()
        ),
    )
    .unwrap();
    // Without the check the engine waited on the reads topic and failed half a minute later at
    // its first alert with "Message timed out".
    let run = platestream(&["run", "--config", "platestream.toml"], dir.path());
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("absent-reads ([kafka] raw_topics)")
            && stderr.contains("absent-alerts ([kafka] alerts_topic)")
            && stderr.contains("absent-dead ([kafka] dead_letter_topic)")
            && stderr.contains("--create-topics"),
        "{stderr}"
    );
    // Covert alerts go nowhere unless a list routes there: that topic is not required.
    assert!(!stderr.contains("covert"), "{stderr}");

    // --create-topics makes them, with the partitions engines of one group share.
    let refused = platestream(
        &["run", "--config", "platestream.toml", "--partitions", "3"],
        dir.path(),
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--create-topics"));
    let engine = common::EngineProcess::start_with(
        dir.path(),
        "platestream.toml",
        &["--create-topics", "--partitions", "3"],
    );
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    for topic in ["absent-reads", "absent-alerts", "absent-dead"] {
        common::eventually(
            &format!("{topic} with 3 partitions"),
            std::time::Duration::from_secs(60),
            || {
                let metadata = rdkafka::consumer::Consumer::fetch_metadata(
                    &consumer,
                    Some(topic),
                    std::time::Duration::from_secs(5),
                )
                .ok()?;
                (metadata.topics().first()?.partitions().len() == 3).then_some(())
            },
        );
    }
    assert!(engine.stop().success());
}

#[test]
fn a_cluster_that_does_not_answer_is_named_instead_of_waited_on_silently() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound once to find it free, then released.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    // Before, `simulate --brokers` said nothing for a minute and then "OperationTimedOut".
    for args in [
        vec!["simulate", "--brokers", &address, "--seconds", "1"],
        vec![
            "hotlist",
            "show",
            "--brokers",
            &address,
            "--topic",
            "updates",
        ],
    ] {
        let output = platestream(&args, dir.path());
        assert!(!output.status.success(), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("no broker at {address} answered")),
            "{args:?}: {stderr}"
        );
    }
}

/// A vendor we have no decoder for: its column mapping is tried on a sample with `replay` before
/// it goes into `[readers.generic]`, and every line is accounted for.
#[test]
fn a_generic_mapping_is_tried_on_a_sample_with_replay() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mapping.toml"),
        "syntax = \"csv\"\ncolumns = [\"cam\", \"ts\", \"plate\", \"conf\"]\nvendor = \"csvcam\"\n\
         plate = \"plate\"\nobserved_at = \"ts\"\nreader_id = \"cam\"\nconfidence = \"conf\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sample.csv"),
        "cam,ts,plate,conf\nr1,2026-11-24T12:00:00Z,ABC123,0.9\n\
         r2,2026-11-24T12:00:01Z,XYZ789,0.8\nr3,yesterday,QQQ111,0.7\n",
    )
    .unwrap();
    let replay = |format: &str, out: &str| {
        platestream(
            &[
                "replay",
                "--input",
                "sample.csv",
                "--format",
                format,
                "--generic-mapping",
                "mapping.toml",
                "--out",
                out,
                "--quiet",
            ],
            dir.path(),
        )
    };
    let output = replay("generic", "out");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // Four lines: two reads, the header, and a line whose time is no time.
    assert!(stdout.contains("lines read          4"), "{stdout}");
    assert!(stdout.contains("reads archived      2"), "{stdout}");
    assert!(stdout.contains("not reads           1"), "{stdout}");
    assert!(stdout.contains("dead-lettered       1"), "{stdout}");
    let dead = std::fs::read_to_string(dir.path().join("out/dead-letter.ndjson")).unwrap();
    assert!(dead.contains("ts is not a time"), "{dead}");
    let mut archived: Vec<(String, String)> = common::archived_reads(&dir.path().join("out"))
        .into_iter()
        .map(|read| (read.reader_id, read.plate_norm))
        .collect();
    archived.sort();
    assert_eq!(
        archived,
        [
            ("r1".to_owned(), "ABC123".to_owned()),
            ("r2".to_owned(), "XYZ789".to_owned())
        ]
    );

    let refused = replay("canonical", "other");
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--generic-mapping is for --format generic"),
        "{}",
        text(&refused.stderr)
    );
}

/// Streaming to Kafka writes the registry the incident query needs, and refuses what only a file
/// has (a line-numbered ground truth, a fixed start, a count) instead of ignoring it.
#[test]
fn simulate_to_kafka_writes_its_registry_and_refuses_what_only_files_have() {
    let broker = platestream::broker::TansuBroker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let brokers = broker.bootstrap_servers();
    let output = platestream(
        &[
            "simulate",
            "--brokers",
            &brokers,
            "--seconds",
            "1",
            "--rate",
            "50",
            "--registry-out",
            "registry.csv",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    // --seconds × --rate reads, a fractional rate included.
    assert!(
        text(&output.stdout).contains("sent 50 reads"),
        "{}",
        text(&output.stdout)
    );
    let slow = platestream(
        &[
            "simulate",
            "--brokers",
            &brokers,
            "--seconds",
            "2",
            "--rate",
            "2.5",
        ],
        dir.path(),
    );
    assert!(
        text(&slow.stdout).contains("sent 5 reads"),
        "{}{}",
        text(&slow.stdout),
        text(&slow.stderr)
    );
    let registry = std::fs::read_to_string(dir.path().join("registry.csv")).unwrap();
    assert!(registry.starts_with("id,"), "{registry}");
    assert!(registry.lines().count() > 40, "{registry}");
    for flag in [
        ["--truth-out", "truth.ndjson"],
        ["--start", "2026-11-24T12:00:00Z"],
        ["--count", "10"],
    ] {
        let output = platestream(
            &["simulate", "--brokers", &brokers, flag[0], flag[1]],
            dir.path(),
        );
        assert!(!output.status.success(), "{flag:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(flag[0]) && stderr.contains("--brokers"),
            "{flag:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("truth.ndjson").exists());
}

/// Backfills of several days, each `reads.ndjson` in its own folder: replaying the second into
/// the first's archive must not silently replace the first's reads (both name their segment files
/// `file.reads`).
#[test]
fn replay_refuses_an_input_whose_files_would_replace_another_inputs_reads() {
    let dir = tempfile::tempdir().unwrap();
    for (folder, reader) in [("d1", "a"), ("d2", "b")] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        let lines: String = (1..=3)
            .map(|i| {
                format!(
                    "{{\"vendor\":\"acme\",\"reader_id\":\"{reader}{i}\",\"observed_at\":\"2026-11-27T10:0{i}:00Z\",\"plate\":\"{reader}{reader}{reader}11{i}\",\"confidence\":0.9}}\n"
                )
            })
            .collect();
        std::fs::write(dir.path().join(folder).join("reads.ndjson"), lines).unwrap();
    }
    let replay = |input: &[&str], out: &str| {
        let mut args = vec!["replay", "--quiet", "--out", out];
        for path in input {
            args.extend(["--input", path]);
        }
        platestream(&args, dir.path())
    };
    let readers = |out: &str| -> String {
        common::succeed(
            &[
                "query",
                "sql",
                "SELECT string_agg(reader_id, ',' ORDER BY reader_id) AS readers FROM reads",
                "--archive",
                out,
                "--format",
                "csv",
                "--quiet",
            ],
            dir.path(),
        )
    };
    assert!(replay(&["d1/reads.ndjson"], "archive").status.success());
    let refused = replay(&["d2/reads.ndjson"], "archive");
    assert!(!refused.status.success());
    let reason = text(&refused.stderr);
    assert!(
        reason.contains("would replace the archived reads of"),
        "{reason}"
    );
    assert!(reason.contains("d1/reads.ndjson"), "{reason}");
    assert_eq!(readers("archive"), "readers\n\"a1,a2,a3\"\n");
    // The same input again rewrites its own files; both inputs in one run keep both.
    assert!(replay(&["d1/reads.ndjson"], "archive").status.success());
    assert_eq!(readers("archive"), "readers\n\"a1,a2,a3\"\n");
    assert!(replay(&["d1/reads.ndjson", "d2/reads.ndjson"], "both")
        .status
        .success());
    assert_eq!(readers("both"), "readers\n\"a1,a2,a3,b1,b2,b3\"\n");

    // Once compacted, the input's files have other names: a replay would archive it twice.
    let simulated = platestream(
        &[
            "simulate",
            "--out",
            "sim.ndjson",
            "--count",
            "3000",
            "--rate",
            "5",
        ],
        dir.path(),
    );
    assert!(simulated.status.success());
    let three_files = platestream(
        &[
            "replay",
            "--quiet",
            "--input",
            "sim.ndjson",
            "--out",
            "merged",
            "--segment-rows",
            "1000",
        ],
        dir.path(),
    );
    assert!(three_files.status.success());
    let compacted = platestream(&["compact", "--archive", "merged", "--quiet"], dir.path());
    assert!(compacted.status.success(), "{}", text(&compacted.stderr));
    assert!(
        text(&compacted.stdout).contains("3 files merged into 1"),
        "{}",
        text(&compacted.stdout)
    );
    let again = replay(&["sim.ndjson"], "merged");
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("would archive its reads twice"),
        "{}",
        text(&again.stderr)
    );
    let count = common::succeed(
        &[
            "query",
            "sql",
            "SELECT count(*) AS reads, count(DISTINCT read_id) AS ids FROM reads",
            "--archive",
            "merged",
            "--format",
            "csv",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(count, "reads,ids\n3000,3000\n");
}

/// A camera that reads two plates in one frame sends them in one message: a garbled second plate
/// must not cost the first its archive row or its alert (a stolen car beside a smudged plate).
#[test]
fn a_bad_plate_in_a_message_of_several_leaves_the_others_archived_and_matched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("frames.ndjson"),
        concat!(
            r#"{"camera_id": "cam-a", "timestamp": "2026-11-27T10:00:00Z", "results": [{"plate": "stol3n", "score": 0.95, "dscore": 0.9}, {"plate": "xy#12", "score": 0.6, "dscore": 0.5}]}"#,
            "\n",
            r#"{"camera_id": "cam-b", "timestamp": "2026-11-27T10:00:05Z", "results": [{"plate": "good12", "score": 0.95, "dscore": 0.9}, {"plate": "good34", "score": 0.9, "dscore": 0.9}]}"#,
            "\n\n \t\n",
            r#"{"camera_id": "cam-c", "timestamp": "2026-11-27T10:00:09Z", "results": [{"plate": "bad#1", "score": 0.95, "dscore": 0.9}, {"plate": "zz!9", "score": 0.9, "dscore": 0.9}]}"#,
            "\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hot.csv"),
        "list,plate,reason\nstolen_vehicles,STOL3N,stolen vehicle\n",
    )
    .unwrap();
    let output = platestream(
        &[
            "replay",
            "--input",
            "frames.ndjson",
            "--format",
            "plate_recognizer",
            "--hotlist",
            "hot.csv",
            "--out",
            "out",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let mut plates: Vec<String> = common::archived_reads(&dir.path().join("out"))
        .into_iter()
        .map(|read| read.plate_norm)
        .collect();
    plates.sort();
    assert_eq!(plates, ["GOOD12", "GOOD34", "STOL3N"], "{stdout}");
    let alerts = std::fs::read_to_string(dir.path().join("out/alerts.ndjson")).unwrap();
    assert_eq!(alerts.lines().count(), 1, "{alerts}");
    assert!(alerts.contains(r#""entry_plate":"STOL3N""#), "{alerts}");
    // Both messages with a refused read are dead-lettered whole, saying which reads went on.
    let dead: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("out/dead-letter.ndjson"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    assert_eq!(dead.len(), 2);
    let partly = dead[0]["reason"].as_str().unwrap();
    assert!(
        partly.starts_with("read 2 of 2: ")
            && partly.ends_with("the message's other reads (1) were kept"),
        "{partly}"
    );
    let whole = dead[1]["reason"].as_str().unwrap();
    assert!(
        whole.starts_with("read 1 of 2: ") && whole.contains("; read 2 of 2: "),
        "{whole}"
    );
    assert!(!whole.contains("were kept"), "{whole}");
    assert!(stdout.contains("dead-lettered       2"), "{stdout}");
    assert!(
        stdout.contains("reads refused       1 (in 1 of the dead-lettered lines"),
        "{stdout}"
    );
    // Blank lines are not messages, but they are counted, on one thread as on several.
    assert!(stdout.contains("lines read          3"), "{stdout}");
    assert!(stdout.contains("blank lines         2"), "{stdout}");
    let one_thread = platestream(
        &[
            "replay",
            "--input",
            "frames.ndjson",
            "--format",
            "plate_recognizer",
            "--threads",
            "1",
            "--out",
            "out1",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(
        text(&one_thread.stdout).contains("blank lines         2"),
        "{}",
        text(&one_thread.stdout)
    );
}

/// A backfill through `replay` routes and suppresses as the engine does when given its config:
/// a covert list's hits are covert in the archive and alerts.ndjson too.
#[test]
fn replay_with_a_config_applies_its_list_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hot.csv"),
        "list,plate,jurisdiction\ncovert_watch,CVT5555,US-VA\nstolen_vehicles,STL1234,US-VA\n",
    )
    .unwrap();
    // Only [hotlists] is needed: no [kafka].
    std::fs::write(
        dir.path().join("c.toml"),
        "[hotlists]\nfiles = [\"hot.csv\"]\n\
         [[hotlists.lists]]\nname = \"covert_watch\"\nroute = \"covert\"\n",
    )
    .unwrap();
    common::write_virginia_reads(&dir.path().join("reads.ndjson"), &["CVT5555", "STL1234"]);
    let routes = |extra: &[&str], out: &str| -> Vec<(String, String)> {
        let output = platestream(
            &[
                &["replay", "--input", "reads.ndjson", "--out", out, "--quiet"][..],
                extra,
            ]
            .concat(),
            dir.path(),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let mut routes: Vec<(String, String)> =
            std::fs::read_to_string(dir.path().join(out).join("alerts.ndjson"))
                .unwrap()
                .lines()
                .map(|line| {
                    let alert: serde_json::Value = serde_json::from_str(line).unwrap();
                    (
                        alert["list"].as_str().unwrap().to_owned(),
                        alert["route"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        routes.sort();
        routes
    };
    assert_eq!(
        routes(&["--config", "c.toml"], "with-config"),
        [
            ("covert_watch".to_owned(), "covert".to_owned()),
            ("stolen_vehicles".to_owned(), "field".to_owned())
        ]
    );
    // Without the config, the same file's lists are on the defaults, as the help says.
    assert_eq!(
        routes(&["--hotlist", "hot.csv"], "without")[0],
        ("covert_watch".to_owned(), "field".to_owned())
    );
}

/// What an agency's file or a dispatcher's photo BOLO gets wrong must be said where it is used,
/// not only by `hotlist check`: a row cut by an unquoted comma, a misspelt column that leaves a
/// BOLO matching every model of its make, and a reference vector of another length than the
/// readers' embeddings, which can never alert.
#[test]
fn replay_and_put_say_what_in_a_hotlist_can_never_match_as_meant() {
    let dir = tempfile::tempdir().unwrap();
    let sixteen = format!("\"[[{}]]\"", ["1"; 16].join(","));
    std::fs::write(
        dir.path().join("hot.csv"),
        format!(
            "list,plate,jurisdiction,reason,make,modle,reference_vectors\n\
             stolen_vehicles,ARM123,US-VA,stolen, armed,,,\n\
             stolen_vehicles,STL1234,US-VA,stolen,,,\n\
             photo_bolo,,,,Toyota,Corolla,{sixteen}\n"
        ),
    )
    .unwrap();
    common::write_virginia_reads(&dir.path().join("reads.ndjson"), &["ARM123", "STL1234"]);
    let replay = platestream(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--hotlist",
            "hot.csv",
            "--out",
            "out",
            "--quiet",
            "--embedding-dim",
            "8",
        ],
        dir.path(),
    );
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    let stderr = text(&replay.stderr);
    for said in [
        "the row has 8 fields where the header has 7",
        "column=modle did_you_mean=\"model\"",
        "numbers=16 reads_carry=8",
    ] {
        assert!(stderr.contains(said), "{said:?} not in:\n{stderr}");
    }
    let alerts = std::fs::read_to_string(dir.path().join("out/alerts.ndjson")).unwrap();
    assert!(
        alerts.contains("STL1234") && !alerts.contains("ARM123"),
        "{alerts}"
    );

    std::fs::write(
        dir.path().join("c.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[readers]\nembedding_dim = 8\n\
         [hotlists]\nupdates_topic = \"plate-hotlist-updates\"\n",
    )
    .unwrap();
    let put = platestream(
        &[
            "hotlist",
            "put",
            "--config",
            "c.toml",
            "--list",
            "photo_bolo",
            "--id",
            "DIM16",
            "--set",
            &format!("reference_vectors=[[{}]]", ["1"; 16].join(",")),
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(!put.status.success());
    assert!(
        text(&put.stderr).contains("vector 1 has 16 numbers but the readers' embeddings have 8"),
        "{}",
        text(&put.stderr)
    );

    // A BOLO that names too little to reach its threshold is accepted, and said to never page.
    let vague = platestream(
        &[
            "hotlist",
            "put",
            "--config",
            "c.toml",
            "--list",
            "local_bolo",
            "--id",
            "VAGUE",
            "--set",
            "color=silver",
            "--set",
            "body_type=sedan",
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(vague.status.success(), "{}", text(&vague.stderr));
    assert!(
        text(&vague.stdout).contains("matches color silver, body_type sedan")
            && text(&vague.stdout).contains("NEVER PAGES: a read can score at most 0.30"),
        "{}",
        text(&vague.stdout)
    );
    std::fs::write(
        dir.path().join("vague.csv"),
        "list,plate,id,color,body_type
local_bolo,,VAGUE,silver,sedan
",
    )
    .unwrap();
    let check = platestream(&["hotlist", "check", "vague.csv"], dir.path());
    assert!(
        text(&check.stdout).contains("1 BOLO(s) describe too little")
            && text(&check.stdout).contains("local_bolo/VAGUE"),
        "{}",
        text(&check.stdout)
    );
}
