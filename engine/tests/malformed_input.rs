//! Bad input never crashes the engine and is never silently dropped: seeded mutations of every
//! example vendor message (and of simulated ones) go through the whole pipeline — sniffing,
//! decoding, normalization, full matching, folding, alert policy, the archive's column encoding —
//! and each comes out as reads, as a counted non-read, or as a dead letter that says why and
//! keeps the original bytes. Hotlist files get the same treatment. `fuzz/` runs the same inputs
//! under libFuzzer for as long as you like; this runs a fixed sample in every CI run.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use platestream_engine::alert_policy::AlertPolicy;
use platestream_engine::archive::{AlertColumns, ReadColumns, TableColumns};
use platestream_engine::decode::Decoded;
use platestream_engine::dedupe::DedupeConfig;
use platestream_engine::hotlist::load_hotlist_csv;
use platestream_engine::images::MemoryImageStore;
use platestream_engine::ncic::load_ncic_extract;
use platestream_engine::normalize::normalize_read;
use platestream_engine::pattern::PlatePattern;
use platestream_engine::pipeline::{MessageOutcome, Pipeline, Processed};
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::vendor::{
    decoder_for, encode_simulated, DecodeContext, GenericMapping, SniffingDecoder, KNOWN_FORMATS,
};
use platestream_engine::{SourcePosition, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MUTATIONS_PER_MESSAGE: usize = 400;

/// Fragments that sit on decoders' edges: numbers out of range, wrong types, broken escapes.
const TOKENS: &[&str] = &[
    "null",
    "[]",
    "{}",
    "\"\"",
    "-1",
    "1e400",
    "-0.0",
    "99999999999999999999",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "true",
    "\"1970-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"2026-13-45T25:61:61+99:00\"",
    "\"data:image/jpeg;base64,////\"",
    "\"\u{1F697}\u{0301}\"",
    ",",
    "\"",
];

fn examples() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mut found = Vec::new();
    for format in fs::read_dir(&root).unwrap() {
        let dir = format.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let is_message = name.ends_with(".json")
                && !name.ends_with(".expected.json")
                && name != "mapping.json";
            if is_message {
                let bytes = fs::read(&path).unwrap();
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    assert!(found.len() >= 20, "examples under {}", root.display());
    found
}

fn simulated_messages(count: usize) -> Vec<(PathBuf, Vec<u8>)> {
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 11,
        ..SimulatorConfig::default()
    });
    let start = Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").unwrap();
    let formats = ["rekor", "plate_recognizer", "genetec", "axis", "canonical"];
    (0..count)
        .map(|index| {
            let (read, _) = simulator.next_read(Timestamp(start.millis() + index as i64 * 1000));
            let format = formats[index % formats.len()];
            let bytes = encode_simulated(format, &read)
                .unwrap_or_else(|| serde_json::to_vec(&read).unwrap());
            (PathBuf::from(format!("simulated {format} #{index}")), bytes)
        })
        .collect()
}

fn mutate(original: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 if !bytes.is_empty() => {
                let at = at.min(bytes.len() - 1);
                bytes[at] = rng.random();
            }
            1 => bytes.truncate(at),
            2 => {
                let end = rng.random_range(at..=bytes.len().min(at + 40));
                bytes.drain(at..end);
            }
            3 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            4 => {
                // A value replaced by a token: from after a colon to the next comma or brace.
                if let Some(colon) = bytes[at..].iter().position(|&b| b == b':') {
                    let start = at + colon + 1;
                    let end = bytes[start..]
                        .iter()
                        .position(|&b| b == b',' || b == b'}')
                        .map_or(bytes.len(), |offset| start + offset);
                    let token = TOKENS[rng.random_range(0..TOKENS.len())];
                    bytes.splice(start..end, token.bytes());
                }
            }
            _ => {
                let end = rng.random_range(at..=bytes.len().min(at + 60));
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
        }
    }
    bytes
}

fn pipeline() -> Pipeline {
    let hotlist = "list,plate,jurisdiction,reason\n\
                   stolen_vehicles,ABC1234,VA,stolen\n\
                   amber_alert,7X?2*,,witness\n\
                   local_bolo,*P82*,DC,witness\n";
    let entries = load_hotlist_csv("lists", hotlist.as_bytes())
        .unwrap()
        .entries;
    let store = HotlistStore::from_entries(MatchModes::FULL, &[], entries);
    let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
    Pipeline::new(Arc::new(SniffingDecoder::new(context)), Arc::new(store))
        .with_dedupe(DedupeConfig::default())
        .with_alert_policy(Arc::new(AlertPolicy::default()))
}

#[test]
fn mutated_vendor_messages_become_reads_non_reads_or_dead_letters_with_a_reason() {
    let mut pipeline = pipeline();
    let mut reads = ReadColumns::default();
    let mut alerts = AlertColumns::default();
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let now = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
    let (mut decoded, mut not_reads, mut dead_letters, mut partly_refused) = (0, 0, 0, 0);
    let mut released = 0u64;
    let mut messages = examples();
    messages.extend(simulated_messages(50));
    for (path, original) in &messages {
        for mutation in 0..MUTATIONS_PER_MESSAGE {
            let payload = mutate(original, &mut rng);
            let what = || {
                format!(
                    "{} mutation {mutation}: {:?}",
                    path.display(),
                    String::from_utf8_lossy(&payload)
                )
            };
            let source = SourcePosition {
                topic: "plate-reads".into(),
                partition: 0,
                offset: 0,
            };
            let mut out = Processed::default();
            match pipeline.process(&payload, source, now, &mut out) {
                MessageOutcome::DeadLettered => {
                    dead_letters += 1;
                    assert_eq!(out.dead_letters.len(), 1, "{}", what());
                    let letter = &out.dead_letters[0];
                    assert!(!letter.reason.is_empty(), "{}", what());
                    assert!(!letter.reason_code.is_empty(), "{}", what());
                    assert_eq!(letter.payload, payload, "the original bytes: {}", what());
                }
                MessageOutcome::NotARead => {
                    not_reads += 1;
                    assert!(out.dead_letters.is_empty(), "{}", what());
                }
                MessageOutcome::Reads(count) => {
                    decoded += 1;
                    assert!(count > 0, "{}", what());
                    // Reads refused beside reads that went on: the message is dead-lettered
                    // whole too, its reason saying which went on.
                    assert!(out.dead_letters.len() <= 1, "{}", what());
                    for letter in &out.dead_letters {
                        partly_refused += 1;
                        assert!(letter.reason.contains("were kept"), "{}", what());
                        assert_eq!(letter.payload, payload, "the original bytes: {}", what());
                    }
                }
            }
            pipeline.flush_all(&mut out);
            released += out.reads.len() as u64;
            for read in &out.reads {
                assert!(!read.plate_norm.is_empty(), "{}", what());
                reads.push(read);
            }
            for alert in &out.alerts {
                alerts.push(alert);
            }
        }
        reads.finish().unwrap();
        alerts.finish().unwrap();
    }
    // Everything is counted: every message once, every read archived or folded into a pass.
    let counts = pipeline.counts;
    let total = messages.len() * MUTATIONS_PER_MESSAGE;
    assert_eq!(decoded + not_reads + dead_letters, total);
    assert_eq!(counts.messages, total as u64);
    assert_eq!(
        counts.messages,
        counts.messages_with_reads + counts.not_reads + counts.dead_lettered
            - counts.messages_partly_refused
    );
    assert_eq!(counts.dead_lettered, (dead_letters + partly_refused) as u64);
    assert_eq!(counts.messages_partly_refused, partly_refused as u64);
    assert_eq!(
        counts.reads,
        released + counts.duplicates_suppressed,
        "{counts:?}"
    );
    // The sample exercises every outcome: a mutation must not be rejected wholesale.
    assert!(decoded > total / 20, "{decoded} of {total} decoded");
    assert!(
        dead_letters > total / 10,
        "{dead_letters} of {total} dead-lettered"
    );
}

/// A topic configured with one format, and `serve`'s `/v1/ingest/{vendor}`, decode with that
/// format's decoder whatever the message looks like: another vendor's message, or garbage.
#[test]
fn each_vendor_decoder_decodes_or_refuses_any_mutated_message_and_appends_only_what_it_reports() {
    let examples_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mapping: GenericMapping = serde_json::from_str(
        &fs::read_to_string(examples_dir.join("generic/mapping.json")).unwrap(),
    )
    .unwrap();
    let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
    let decoders: Vec<_> = KNOWN_FORMATS
        .iter()
        .map(|format| decoder_for(format, Some(&mapping), &context).unwrap())
        .collect();
    let now = Timestamp::parse_rfc3339("2026-11-24T18:00:00Z").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut decoded_by = vec![0usize; decoders.len()];
    for (path, original) in examples() {
        for mutation in 0..MUTATIONS_PER_MESSAGE / 4 {
            let payload = mutate(&original, &mut rng);
            for (index, decoder) in decoders.iter().enumerate() {
                let what = || {
                    format!(
                        "{} by {}, mutation {mutation}: {:?}",
                        path.display(),
                        decoder.format(),
                        String::from_utf8_lossy(&payload)
                    )
                };
                let mut reads = Vec::new();
                match decoder.decode(&payload, &mut reads) {
                    Ok(Decoded::Reads(count)) => {
                        assert_eq!(reads.len(), count, "{}", what());
                        decoded_by[index] += 1;
                    }
                    Ok(Decoded::NotARead { kind }) => {
                        assert!(reads.is_empty() && !kind.is_empty(), "{}", what());
                    }
                    Err(error) => {
                        assert!(reads.is_empty(), "nothing appended on error: {}", what());
                        assert!(!error.code().is_empty() && !error.to_string().is_empty());
                    }
                }
                for mut read in reads {
                    if let Err(invalid) = normalize_read(&mut read, now) {
                        assert!(!invalid.code().is_empty() && !invalid.to_string().is_empty());
                    }
                }
            }
        }
    }
    for (index, decoder) in decoders.iter().enumerate() {
        assert!(
            decoded_by[index] > 0,
            "{} decoded nothing",
            decoder.format()
        );
    }
}

#[test]
fn mutated_hotlist_files_load_or_refuse_each_row_with_its_reason() {
    let csv =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples/hotlist.csv"))
            .unwrap();
    let ncic = b"HEADER NCIC LPR EXTRACT 20190510\n\
                 V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK\n\
                 P000000001VA0000000201905107XK229    VA2020PC\n\
                 C845996328,0H0671200,20211122,JFJ4764,0H,2022,TK,2013,CHEV,AVA,PK,CRM\n"
        .to_vec();
    let patterns: Vec<Vec<u8>> = ["7X?2*", "ABC 1_3", "*P82*", "??G463?"]
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut rows_loaded, mut rows_refused) = (0, 0);
    for _ in 0..MUTATIONS_PER_MESSAGE * 5 {
        let file = mutate(&csv, &mut rng);
        if let Ok(loaded) = load_hotlist_csv("mutated.csv", file.as_slice()) {
            rows_loaded += loaded.entries.len();
            rows_refused += loaded.rejected.len();
            for rejected in &loaded.rejected {
                assert!(rejected.line > 0);
                assert!(!rejected.reason.is_empty());
            }
        }
        let extract = mutate(&ncic, &mut rng);
        if let Ok(loaded) = load_ncic_extract("mutated.dat", extract.as_slice(), None) {
            for rejected in &loaded.rejected {
                assert!(!rejected.reason.is_empty());
            }
        }
        let pattern = mutate(&patterns[rng.random_range(0..patterns.len())], &mut rng);
        if let Ok(text) = std::str::from_utf8(&pattern) {
            if let Ok(pattern) = PlatePattern::parse(text) {
                let _ = pattern.matches(b"7XK2290");
            }
        }
    }
    assert!(
        rows_loaded > 0 && rows_refused > 0,
        "{rows_loaded} loaded, {rows_refused} refused"
    );
}
