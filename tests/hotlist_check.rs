//! `platestream hotlist` without a broker: `check` on files an agency might send (what it says of
//! them, and its exit status, which decides whether an export is deployed), and what `put` and
//! `delete` refuse before they would send anything.

#![allow(clippy::unwrap_used)]

mod common;

use common::{platestream, text};

#[test]
fn check_names_the_rows_whose_id_a_later_row_repeats_and_counts_only_the_kept_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dup.csv"),
        "list,plate,jurisdiction,id\n\
         stolen_vehicles,AAA111,VA,case-1\n\
         stolen_vehicles,BBB222,VA,case-2\n\
         stolen_vehicles,CCC333,VA,case-1\n",
    )
    .unwrap();
    let output = platestream(&["hotlist", "check", "dup.csv"], dir.path());
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("dup.csv: 2 entries, 0 rows refused"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "line 2: id \"case-1\" of list stolen_vehicles again on line 4, which is kept"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("engine keeps both"), "{stdout}");
}

#[test]
fn a_file_holding_no_entries_fails_the_check_as_a_truncated_export() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("header.csv"), "list,plate,jurisdiction\n").unwrap();
    let output = platestream(&["hotlist", "check", "header.csv"], dir.path());
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("header.csv: CANNOT BE LOADED: it holds no entries"),
        "{stdout}"
    );
    assert!(text(&output.stderr).contains("1 file(s) cannot be loaded"));
}

#[test]
fn a_list_name_with_a_slash_is_refused_by_put_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let target = ["--brokers", "127.0.0.1:9", "--topic", "updates"];
    let put = platestream(
        &[
            &[
                "hotlist",
                "put",
                "--list",
                "amber/alert",
                "--plate",
                "AMB3R1",
                "--dry-run",
            ][..],
            &target,
        ]
        .concat(),
        dir.path(),
    );
    let stderr = text(&put.stderr);
    assert!(!put.status.success(), "{}", text(&put.stdout));
    assert!(
        stderr.contains("--list: list \"amber/alert\" contains `/`"),
        "{stderr}"
    );
    let delete = platestream(
        &[
            &["hotlist", "delete", "--list", "amber/alert", "--id", "X1"][..],
            &target,
        ]
        .concat(),
        dir.path(),
    );
    assert!(!delete.status.success());
    assert!(
        text(&delete.stderr).contains("contains `/`"),
        "{}",
        text(&delete.stderr)
    );
}

#[test]
fn check_names_columns_that_are_not_entry_fields_with_the_field_they_likely_misspell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.csv"),
        "list,plate,jurisdicton,priorty,expires,make,color,officer\n\
         stolen_vehicles,AAA111,VA,1,2030-01-01T00:00:00Z,Honda,blue,lee\n",
    )
    .unwrap();
    let output = platestream(&["hotlist", "check", "typo.csv"], dir.path());
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "kept as attributes, as documented: {stdout}"
    );
    assert!(
        stdout.contains(
            "notice: columns that are not entry fields, kept as attributes: \
             jurisdicton (did you mean jurisdiction?), priorty (did you mean priority?), \
             expires (did you mean expires_at?), officer"
        ),
        "{stdout}"
    );
}

#[test]
fn put_and_publish_refuse_a_field_name_that_misspells_an_entry_field() {
    let dir = tempfile::tempdir().unwrap();
    let target = ["--brokers", "127.0.0.1:9", "--topic", "updates"];
    let put = |set: &str| {
        platestream(
            &[
                &[
                    "hotlist",
                    "put",
                    "--list",
                    "amber",
                    "--plate",
                    "AMB3R1",
                    "--set",
                    set,
                    "--dry-run",
                ][..],
                &target,
            ]
            .concat(),
            dir.path(),
        )
    };
    let misspelt = put("Jurisdicton=VA");
    let stderr = text(&misspelt.stderr);
    assert!(!misspelt.status.success(), "{}", text(&misspelt.stdout));
    assert!(
        stderr.contains("jurisdicton is not an entry field (did you mean jurisdiction?)"),
        "{stderr}"
    );
    // A name near no field is an attribute, as documented, and so is a vehicle attribute.
    for set in ["officer=lee", "make=Honda"] {
        let kept = put(set);
        assert!(kept.status.success(), "{set}: {}", text(&kept.stderr));
        assert!(text(&kept.stdout).contains(set), "{}", text(&kept.stdout));
    }

    std::fs::write(
        dir.path().join("updates.ndjson"),
        concat!(
            r#"{"key": "amber/A-1", "value": {"plate": "AMB3R1", "jurisdiction": "VA"}}"#,
            "\n",
            r#"{"key": "amber/A-2", "value": {"plate": "AMB3R2", "priorty": "1"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let publish = platestream(
        &[&["hotlist", "publish", "updates.ndjson"][..], &target].concat(),
        dir.path(),
    );
    let stderr = text(&publish.stderr);
    assert!(!publish.status.success());
    assert!(
        stderr.contains("line 2 (amber/A-2): fields that are not entry fields")
            && stderr.contains("priorty (did you mean priority?)")
            && stderr.contains("nothing was sent"),
        "{stderr}"
    );
}

/// A state's NCIC export and a local file may both carry an entry id: the engine (and `replay`,
/// which loads files as it does) keeps the later file's entry, as a later row wins within a file,
/// instead of matching both.
#[test]
fn an_id_two_hotlist_files_hold_is_taken_from_the_later_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("state.csv"),
        "list,plate,jurisdiction,id\nstolen_vehicles,AAA111,US-VA,case-1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("local.csv"),
        "list,plate,jurisdiction,id\nstolen_vehicles,BBB222,US-VA,case-1\n",
    )
    .unwrap();
    common::write_virginia_reads(&dir.path().join("reads.ndjson"), &["AAA111", "BBB222"]);
    let output = platestream(
        &[
            "replay",
            "--input",
            "reads.ndjson",
            "--hotlist",
            "state.csv",
            "--hotlist",
            "local.csv",
            "--out",
            "out",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("the later file's entries are kept"),
        "{}",
        text(&output.stderr)
    );
    let alerts = std::fs::read_to_string(dir.path().join("out/alerts.ndjson")).unwrap();
    let plates: Vec<String> = alerts
        .lines()
        .map(|line| {
            let alert: serde_json::Value = serde_json::from_str(line).unwrap();
            alert["read_plate_norm"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(plates, ["BBB222"], "{alerts}");
}

/// A covert list spelt otherwise in a file or a hand entry gets the default policy, and so pages
/// field officers: check names it, put refuses it. A file named twice is checked once.
#[test]
fn a_list_spelt_almost_like_a_covert_policy_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hot.csv"),
        "list,plate,jurisdiction\n\
         covert_watch,CVT5555,US-VA\n\
         Covert_Watch,CVX0001,US-VA\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:9\"\n\
         [hotlists]\nfiles = [\"hot.csv\"]\nupdates_topic = \"updates\"\n\
         [[hotlists.lists]]\nname = \"covert_watch\"\nroute = \"covert\"\n",
    )
    .unwrap();
    let check = platestream(
        &["hotlist", "check", "hot.csv", "--config", "c.toml"],
        dir.path(),
    );
    let stdout = text(&check.stdout);
    assert!(
        stdout.contains(
            "list \"Covert_Watch\" is not [[hotlists.lists]] name = \"covert_watch\" (list names \
             are exact), so its entries get the default policy: its hits go to field officers"
        ),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("hot.csv: 2 entries").count(),
        1,
        "checked once: {stdout}"
    );
    assert!(!stdout.contains("repeat an id"), "{stdout}");

    let put = platestream(
        &[
            "hotlist",
            "put",
            "--config",
            "c.toml",
            "--list",
            "covert-watch",
            "--plate",
            "CVX0002",
            "--dry-run",
        ],
        dir.path(),
    );
    assert!(!put.status.success(), "{}", text(&put.stdout));
    assert!(
        text(&put.stderr).contains("names the list \"covert_watch\" (list names are exact)"),
        "{}",
        text(&put.stderr)
    );
}
