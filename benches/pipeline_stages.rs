//! Per-stage throughput of the engine core on one core, each beside a plain baseline measured in
//! the same run: `cargo bench -p platestream-engine --bench pipeline_stages`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use parquet::arrow::ArrowWriter;
use platestream_engine::archive::{ReadColumns, TableColumns};
use platestream_engine::decode::{CanonicalJsonDecoder, ReadDecoder};
use platestream_engine::dedupe::{DedupeConfig, DuplicateSuppressor};
use platestream_engine::hotlist::load_hotlist_csv;
use platestream_engine::images::MemoryImageStore;
use platestream_engine::matcher::ExactMatcher;
use platestream_engine::pipeline::{Pipeline, Processed};
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::vendor::{DecodeContext, SniffingDecoder};
use platestream_engine::{SourcePosition, Timestamp};

const READS: usize = 20_000;

fn simulated() -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut simulator = Simulator::new(SimulatorConfig {
        vehicles: 200_000,
        hotlist_fraction: 0.05,
        ..SimulatorConfig::default()
    });
    let start = Timestamp::now().millis() - 3_600_000;
    let messages = (0..READS)
        .map(|i| simulator.next_message(Timestamp(start + i as i64)).payload)
        .collect();
    let mut hotlist = Vec::new();
    simulator
        .write_hotlist_csv(&mut hotlist)
        .expect("writing to memory");
    (messages, hotlist)
}

fn stages(c: &mut Criterion) {
    let (messages, hotlist) = simulated();
    let entries = load_hotlist_csv("bench", hotlist.as_slice())
        .expect("simulated hotlist")
        .entries;
    let matcher = Arc::new(ExactMatcher::new(entries));
    let mut group = c.benchmark_group("per_read");
    group.throughput(Throughput::Elements(READS as u64));
    group.sample_size(20);

    group.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| {
            for message in &messages {
                let text = std::str::from_utf8(message).expect("utf-8");
                let value: serde_json::Value = serde_json::from_str(text).expect("json");
                std::hint::black_box(value);
            }
        })
    });

    group.bench_function("decode_normalize_match", |b| {
        let mut pipeline = Pipeline::new(Arc::new(CanonicalJsonDecoder), matcher.clone());
        let mut out = Processed::default();
        let now = Timestamp::now();
        b.iter(|| {
            for (offset, message) in messages.iter().enumerate() {
                let source = SourcePosition {
                    topic: "bench".into(),
                    partition: 0,
                    offset: offset as i64,
                };
                pipeline.process(message, source, now, &mut out);
            }
            out.clear();
        })
    });

    let mut pipeline = Pipeline::new(Arc::new(CanonicalJsonDecoder), matcher.clone());
    let mut processed = Processed::default();
    for (offset, message) in messages.iter().enumerate() {
        let source = SourcePosition {
            topic: "bench".into(),
            partition: 0,
            offset: offset as i64,
        };
        pipeline.process(message, source, Timestamp::now(), &mut processed);
    }
    group.throughput(Throughput::Elements(processed.reads.len() as u64));
    // As the consuming thread fills a segment: one set of builders, finished batch after batch.
    group.bench_function("archive_fill_columns", |b| {
        let mut columns = ReadColumns::default();
        b.iter(|| {
            for read in &processed.reads {
                columns.push(read);
            }
            std::hint::black_box(columns.finish().expect("batch"))
        })
    });
    group.bench_function("archive_encode_parquet_zstd", |b| {
        b.iter_batched(
            Vec::new,
            |mut sink: Vec<u8>| {
                let mut columns = ReadColumns::default();
                for read in &processed.reads {
                    columns.push(read);
                }
                let batch = columns.finish().expect("batch");
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(
                        parquet::basic::ZstdLevel::try_new(3).expect("level"),
                    ))
                    .build();
                let mut writer = ArrowWriter::try_new(&mut sink, batch.schema(), Some(properties))
                    .expect("writer");
                writer.write(&batch).expect("write");
                writer.close().expect("close");
                sink
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The consuming thread's duplicate folding, with and without remembering released passes for
    // resent reports (`readers.resend_horizon_secs`): the reads of a minute, released as the
    // engine releases them.
    let mut folding = c.benchmark_group("per_read_folding");
    folding.throughput(Throughput::Elements(processed.reads.len() as u64));
    folding.sample_size(20);
    for (name, horizon) in [
        ("window_only", std::time::Duration::ZERO),
        ("with_resend_memory", std::time::Duration::from_secs(300)),
    ] {
        folding.bench_function(name, |b| {
            b.iter_batched(
                || processed.reads.clone(),
                |reads| {
                    let mut suppressor = DuplicateSuppressor::new(DedupeConfig {
                        resend_horizon: horizon,
                        ..DedupeConfig::default()
                    });
                    let mut released = Vec::with_capacity(reads.len());
                    let start = Timestamp::now().millis();
                    for (index, read) in reads.into_iter().enumerate() {
                        let now = Timestamp(start + index as i64 * 3);
                        suppressor.offer(read, now, &mut released);
                        if index % 512 == 511 {
                            suppressor.release_due(now, &mut released);
                        }
                    }
                    suppressor.flush_all(&mut released);
                    released
                },
                BatchSize::LargeInput,
            )
        });
    }
    folding.finish();
}

/// `--format auto` on a city of several vendors' readers: the sniffing decoder, beside each
/// message handed straight to the decoder its vendor needs (chosen before the timing), so the
/// difference is what recognising the vendor costs.
fn sniffing(c: &mut Criterion) {
    let mut simulator = Simulator::new(SimulatorConfig {
        vehicles: 200_000,
        hotlist_fraction: 0.05,
        vendor_mix: true,
        ..SimulatorConfig::default()
    });
    let start = Timestamp::now().millis() - 3_600_000;
    let messages: Vec<Vec<u8>> = (0..READS)
        .map(|i| simulator.next_message(Timestamp(start + i as i64)).payload)
        .collect();
    let sniffer = SniffingDecoder::new(DecodeContext::new(Arc::new(MemoryImageStore::default())));
    let chosen: Vec<(&[u8], &dyn ReadDecoder)> = messages
        .iter()
        .filter_map(|message| Some((message.as_slice(), sniffer.sniff(message)?)))
        .collect();
    let mut group = c.benchmark_group("per_read_vendor_mix");
    group.throughput(Throughput::Elements(chosen.len() as u64));
    group.sample_size(20);
    group.bench_function("baseline_vendor_decoder_known", |b| {
        let mut reads = Vec::new();
        b.iter(|| {
            for (message, decoder) in &chosen {
                reads.clear();
                std::hint::black_box(decoder.decode(message, &mut reads).is_ok());
            }
        })
    });
    group.bench_function("sniff_only", |b| {
        b.iter(|| {
            for (message, _) in &chosen {
                std::hint::black_box(sniffer.sniff(message).is_some());
            }
        })
    });
    group.bench_function("decode_auto", |b| {
        let mut reads = Vec::new();
        b.iter(|| {
            for (message, _) in &chosen {
                reads.clear();
                std::hint::black_box(sniffer.decode(message, &mut reads).is_ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, stages, sniffing);
criterion_main!(benches);
