//! `platestream hotlist check` on files an agency might send: what it says of them, and its exit
//! status, which decides whether an export is deployed.

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
    assert!(stdout.contains("dup.csv: 2 entries, 0 rows refused"), "{stdout}");
    assert!(
        stdout.contains("line 2: id \"case-1\" of list stolen_vehicles again on line 4, which is kept"),
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
