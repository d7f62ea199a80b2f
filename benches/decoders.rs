//! Each vendor decoder on one core, in messages/s and MB/s, beside plain `serde_json::from_slice`
//! into a `serde_json::Value` of the same payloads measured in the same run:
//! `cargo bench -p platestream-engine --bench decoders`.
//!
//! The payloads are the vendor examples under `schemas/examples/<format>/` that decode to reads
//! (the ones documenting errors and heartbeats are left out), so the bench measures what vendors
//! really send, inline images included.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use platestream_engine::images::MemoryImageStore;
use platestream_engine::vendor::{decoder_for, DecodeContext, GenericMapping};

const FORMATS: &[&str] = &["rekor", "plate_recognizer", "genetec", "axis", "generic"];

/// Payloads of a format that decode to at least one read, and the mapping for `generic`.
fn payloads(format: &str) -> (Vec<Vec<u8>>, Option<GenericMapping>) {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples")
        .join(format);
    let mapping = fs::read_to_string(directory.join("mapping.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let mut payloads = Vec::new();
    let Ok(entries) = fs::read_dir(&directory) else {
        return (payloads, mapping);
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".expected.json") || name == "mapping.json" || name.ends_with(".md") {
            continue;
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = fs::read_to_string(path.with_file_name(format!("{stem}.expected.json")))
            .unwrap_or_default();
        if expected.trim_start().starts_with('[') {
            if let Ok(payload) = fs::read(&path) {
                payloads.push(payload);
            }
        }
    }
    (payloads, mapping)
}

fn decoders(c: &mut Criterion) {
    let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
    for format in FORMATS {
        let (payloads, mapping) = payloads(format);
        if payloads.is_empty() {
            continue;
        }
        let Ok(decoder) = decoder_for(format, mapping.as_ref(), &context) else {
            continue;
        };
        let bytes: usize = payloads.iter().map(Vec::len).sum();
        // Repeat the examples so one iteration is long enough to time reliably.
        let rounds = (200_000 / bytes.max(1)).clamp(1, 1000);
        let json = payloads
            .iter()
            .all(|payload| serde_json::from_slice::<serde_json::Value>(payload).is_ok());

        let mut group = c.benchmark_group(format!("decode_{format}"));
        group.sample_size(20);
        for (label, throughput) in [
            (
                "messages",
                Throughput::Elements((payloads.len() * rounds) as u64),
            ),
            ("bytes", Throughput::Bytes((bytes * rounds) as u64)),
        ] {
            group.throughput(throughput);
            if json {
                group.bench_function(format!("baseline_serde_json_value_{label}"), |b| {
                    b.iter(|| {
                        for _ in 0..rounds {
                            for payload in &payloads {
                                let value: serde_json::Value =
                                    serde_json::from_slice(payload).expect("example is JSON");
                                std::hint::black_box(value);
                            }
                        }
                    })
                });
            }
            group.bench_function(format!("decoder_{label}"), |b| {
                let mut reads = Vec::new();
                b.iter(|| {
                    for _ in 0..rounds {
                        for payload in &payloads {
                            reads.clear();
                            let decoded = decoder.decode(payload, &mut reads);
                            std::hint::black_box(&decoded);
                        }
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, decoders);
criterion_main!(benches);
