//! Every example payload under `schemas/examples/<format>/` decodes to the canonical reads written
//! beside it, field by field. Vendors and integrators read those files as documentation, so this
//! test keeps documentation and decoders from drifting apart.
//!
//! Layout, per format directory (`rekor`, `plate_recognizer`, `genetec`, `axis`, `generic`):
//! - `<case>.<ext>`: a message exactly as the vendor sends it (any extension);
//! - `<case>.expected.json`: either a JSON array of canonical reads after normalization (fields a
//!   read leaves out must be absent or null), or `{"not_a_read": "<kind>"}`, or
//!   `{"error": "<reason_code>"}`;
//! - `mapping.json` (generic only): the column mapping the messages are decoded with.
//!
//! Normalization runs with ingest time `2026-11-24T18:00:00Z`; `ingested_at` and `source` are
//! not compared.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use platestream_engine::decode::Decoded;
use platestream_engine::images::MemoryImageStore;
use platestream_engine::normalize::normalize_read;
use platestream_engine::vendor::{decoder_for, time::parse_zone, DecodeContext, GenericMapping};
use platestream_engine::{PlateRead, Timestamp};
use serde_json::Value;

/// How far a decoded number may be from the expected file's.
const NUMBER_TOLERANCE: f64 = 1e-6;

const FORMATS: &[&str] = &["rekor", "plate_recognizer", "genetec", "axis", "generic"];

fn examples_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples")
}

fn cases(directory: &Path) -> Vec<(PathBuf, PathBuf)> {
    let Ok(entries) = fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut cases: Vec<(PathBuf, PathBuf)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            path.is_file()
                && !name.ends_with(".expected.json")
                && name != "mapping.json"
                && !name.ends_with(".md")
        })
        .map(|input| {
            let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
            let expected = input.with_file_name(format!("{stem}.expected.json"));
            (input, expected)
        })
        .collect();
    cases.sort();
    cases
}

/// A read as JSON without the fields that depend on when and where it was ingested.
fn comparable(read: &PlateRead) -> Value {
    let mut value = serde_json::to_value(read).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("ingested_at");
    object.remove("source");
    object.retain(|_, field| !field.is_null());
    value
}

fn without_nulls(mut value: Value) -> Value {
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, field| !field.is_null());
        object.remove("ingested_at");
        object.remove("source");
    }
    value
}

fn differences(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            let mut keys: Vec<&String> = expected.keys().chain(actual.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let here = format!("{path}.{key}");
                match (expected.get(key), actual.get(key)) {
                    (Some(e), Some(a)) => differences(e, a, &here, out),
                    (Some(e), None) if !e.is_null() => {
                        out.push(format!("{here}: missing, expected {e}"))
                    }
                    (None, Some(a)) if !a.is_null() => out.push(format!("{here}: unexpected {a}")),
                    _ => {}
                }
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            // Absolute and tight: 1e-6 degrees is 11 cm, where a relative tolerance scales with
            // a longitude's size (1e-4 of 77 degrees is 850 m). It still covers f32 confidences.
            if (e - a).abs() > NUMBER_TOLERANCE {
                out.push(format!("{path}: expected {e}, got {a}"));
            }
        }
        (e, a) if e != a => out.push(format!("{path}: expected {e}, got {a}")),
        _ => {}
    }
}

#[test]
fn every_vendor_example_decodes_to_its_expected_reads() {
    let ingested_at = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for format in FORMATS {
        let directory = examples_root().join(format);
        // A format whose examples are not written yet has nothing to check (and `generic` no
        // mapping to build its decoder with).
        let format_cases = cases(&directory);
        if format_cases.is_empty() {
            continue;
        }
        let mapping: Option<GenericMapping> = fs::read_to_string(directory.join("mapping.json"))
            .ok()
            .map(|text| serde_json::from_str(&text).unwrap());
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default()))
            .with_timezone(parse_zone("America/New_York").unwrap());
        let decoder = decoder_for(format, mapping.as_ref(), &context).unwrap();
        // A topic configured `auto` must treat a vendor's message as that vendor's format does,
        // refusals and non-reads included (`generic` has no marker to be recognized by).
        let mut decoders = vec![(*format, decoder)];
        if *format != "generic" {
            decoders.push(("auto", decoder_for("auto", None, &context).unwrap()));
        }
        for (input, expected_path) in format_cases {
            for (decoded_as, decoder) in &decoders {
                let name = format!(
                    "{} (as {decoded_as})",
                    input.strip_prefix(examples_root()).unwrap().display()
                );
                let payload = fs::read(&input).unwrap();
                let expected: Value = serde_json::from_str(
                    &fs::read_to_string(&expected_path)
                        .unwrap_or_else(|_| panic!("{name} has no {}", expected_path.display())),
                )
                .unwrap_or_else(|error| panic!("{}: {error}", expected_path.display()));
                checked += 1;
                let mut reads = Vec::new();
                let outcome = decoder.decode(&payload, &mut reads);
                if let Some(code) = expected.get("error").and_then(Value::as_str) {
                    match outcome {
                        Err(error) if error.code() == code => {}
                        other => {
                            failures.push(format!("{name}: expected error {code}, got {other:?}"))
                        }
                    }
                    continue;
                }
                if let Some(kind) = expected.get("not_a_read").and_then(Value::as_str) {
                    match outcome {
                        Ok(Decoded::NotARead { kind: actual }) if actual == kind => {}
                        other => failures
                            .push(format!("{name}: expected not_a_read {kind}, got {other:?}")),
                    }
                    continue;
                }
                if let Err(error) = outcome {
                    failures.push(format!("{name}: {error}"));
                    continue;
                }
                let expected_reads = expected
                    .as_array()
                    .unwrap_or_else(|| panic!("{name}: expected file must be an array"));
                if expected_reads.len() != reads.len() {
                    failures.push(format!(
                        "{name}: expected {} reads, decoded {}",
                        expected_reads.len(),
                        reads.len()
                    ));
                    continue;
                }
                for (index, (read, expected_read)) in
                    reads.iter_mut().zip(expected_reads).enumerate()
                {
                    if let Err(error) = normalize_read(read, ingested_at) {
                        failures.push(format!(
                            "{name} read {index}: normalization refused it: {error}"
                        ));
                        continue;
                    }
                    let mut found = Vec::new();
                    differences(
                        &without_nulls(expected_read.clone()),
                        &comparable(read),
                        "",
                        &mut found,
                    );
                    for difference in found {
                        failures.push(format!("{name} read {index}: {difference}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} examples differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
