//! One message off a raw-reads topic, as the engine takes it: the vendor is sniffed, the message
//! decoded, each read normalized, matched (exact, misread, partial), folded, alerted and encoded
//! into the archive's columns. Whatever the bytes, the message is read, not a read or dead-lettered
//! with a reason; never a panic.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use platestream_engine::alert_policy::AlertPolicy;
use platestream_engine::archive::{AlertColumns, ReadColumns, TableColumns};
use platestream_engine::decode::{Decoded, ReadDecoder};
use platestream_engine::dedupe::DedupeConfig;
use platestream_engine::hotlist::load_hotlist_csv;
use platestream_engine::images::MemoryImageStore;
use platestream_engine::normalize::normalize_read;
use platestream_engine::pipeline::{MessageOutcome, Pipeline, Processed};
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::vendor::{
    decoder_for, DecodeContext, GenericMapping, SniffingDecoder, KNOWN_FORMATS,
};
use platestream_engine::{SourcePosition, Timestamp};

const HOTLIST: &str = "list,plate,jurisdiction,reason\n\
    stolen_vehicles,ABC1234,VA,stolen\n\
    stolen_vehicles,8XYZ123,MD,stolen\n\
    amber_alert,7X?2*,,witness\n\
    local_bolo,*P82*,DC,witness\n";

struct Harness {
    pipeline: Pipeline,
    /// Each format's own decoder, as a topic configured with it (or `serve`'s ingest) uses it.
    decoders: Vec<Arc<dyn ReadDecoder>>,
    reads: ReadColumns,
    alerts: AlertColumns,
    released_reads: u64,
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let entries = load_hotlist_csv("fuzz", HOTLIST.as_bytes())
            .expect("the fuzz hotlist parses")
            .entries;
        let store = HotlistStore::from_entries(MatchModes::FULL, &[], entries);
        let context = DecodeContext::new(Arc::new(MemoryImageStore::default()));
        let mapping: GenericMapping =
            serde_json::from_str(include_str!("../../schemas/examples/generic/mapping.json"))
                .expect("the example mapping parses");
        let decoders = KNOWN_FORMATS
            .iter()
            .map(|format| decoder_for(format, Some(&mapping), &context).expect("a known format"))
            .collect();
        let pipeline = Pipeline::new(Arc::new(SniffingDecoder::new(context)), Arc::new(store))
            .with_dedupe(DedupeConfig::default())
            .with_alert_policy(Arc::new(AlertPolicy::default()));
        Mutex::new(Harness {
            pipeline,
            decoders,
            reads: ReadColumns::default(),
            alerts: AlertColumns::default(),
            released_reads: 0,
        })
    })
}

fuzz_target!(|payload: &[u8]| {
    let mut harness = harness().lock().unwrap_or_else(|p| p.into_inner());
    let harness = &mut *harness;
    let now = Timestamp::parse_rfc3339("2026-11-24T17:00:00Z").expect("a valid time");
    let source = SourcePosition {
        topic: "plate-reads".into(),
        partition: 0,
        offset: 0,
    };
    let mut out = Processed::default();
    let outcome = harness.pipeline.process(payload, source, now, &mut out);
    match outcome {
        MessageOutcome::DeadLettered => {
            assert_eq!(out.dead_letters.len(), 1);
            assert!(
                !out.dead_letters[0].reason.is_empty(),
                "a dead letter says why"
            );
            assert_eq!(
                out.dead_letters[0].payload, payload,
                "with the original bytes"
            );
        }
        MessageOutcome::NotARead | MessageOutcome::Reads(_) => assert!(out.dead_letters.is_empty()),
    }
    harness.pipeline.flush_all(&mut out);
    // Everything is counted: every message once, every read archived or folded into a pass.
    harness.released_reads += out.reads.len() as u64;
    let counts = harness.pipeline.counts;
    assert_eq!(
        counts.messages,
        counts.messages_with_reads + counts.not_reads + counts.dead_lettered
    );
    assert_eq!(
        counts.reads,
        harness.released_reads + counts.duplicates_suppressed
    );
    for read in &out.reads {
        harness.reads.push(read);
    }
    for alert in &out.alerts {
        harness.alerts.push(alert);
    }
    for decoder in &harness.decoders {
        let mut reads = Vec::new();
        match decoder.decode(payload, &mut reads) {
            Ok(Decoded::Reads(count)) => assert_eq!(reads.len(), count),
            Ok(Decoded::NotARead { .. }) | Err(_) => assert!(reads.is_empty()),
        }
        for mut read in reads {
            let _ = normalize_read(&mut read, now);
        }
    }
    harness.reads.finish().expect("archived reads encode");
    harness.alerts.finish().expect("archived alerts encode");
});
