//! The engine against a real Kafka-API broker (tansu): alerts, archive, dead letters, offsets,
//! and restarts that must neither lose nor duplicate a read.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::{archived_reads, create_topics, drain_topic, produce_all};
use platestream::broker::TansuBroker;
use platestream_connectors::kafka::{
    group_lag, KafkaSettings, OnStop, StopWhen, StreamEngine, StreamOptions, StreamSummary,
};
use platestream_engine::alert::Alert;
use platestream_engine::archive::ArchiveConfig;
use platestream_engine::decode::CanonicalJsonDecoder;
use platestream_engine::hotlist::load_hotlist_csv;
use platestream_engine::matcher::ExactMatcher;
use platestream_engine::pipeline::Pipeline;
use platestream_engine::simulate::{GroundTruth, Simulator, SimulatorConfig};
use platestream_engine::unarchived::{UnarchivedQuery, UnarchivedReads};
use platestream_engine::{PlateRead, Timestamp};

struct Traffic {
    payloads: Vec<(Option<String>, Vec<u8>)>,
    truths: Vec<GroundTruth>,
    reads: Vec<PlateRead>,
    hotlist_csv: Vec<u8>,
}

/// `count` clean reads (no OCR noise, so every hotlisted pass is an exact hit).
fn traffic(count: usize, seed: u64) -> Traffic {
    let mut simulator = Simulator::new(SimulatorConfig {
        seed,
        vehicles: 2_000,
        hotlist_fraction: 0.02,
        misread_rate: 0.0,
        ..SimulatorConfig::default()
    });
    let mut hotlist_csv = Vec::new();
    simulator.write_hotlist_csv(&mut hotlist_csv).unwrap();
    let start = Timestamp::now().millis() - 60_000;
    let mut traffic = Traffic {
        payloads: Vec::new(),
        truths: Vec::new(),
        reads: Vec::new(),
        hotlist_csv,
    };
    for index in 0..count {
        let (read, truth) = simulator.next_read(Timestamp(start + index as i64 * 10));
        traffic.payloads.push((
            Some(truth.true_plate.clone()),
            serde_json::to_vec(&read).unwrap(),
        ));
        traffic.truths.push(truth);
        traffic.reads.push(read);
    }
    traffic
}

fn settings(broker: &TansuBroker, name: &str) -> KafkaSettings {
    let mut settings = common::named_settings(broker, name);
    settings
        .consumer
        .insert("session.timeout.ms".into(), "6000".into());
    settings
}

fn run_engine(
    settings: &KafkaSettings,
    archive_dir: &std::path::Path,
    hotlist_csv: &[u8],
    stop: StopWhen,
    on_stop: OnStop,
) -> StreamSummary {
    let entries = load_hotlist_csv("hotlist", hotlist_csv).unwrap().entries;
    let mut pipeline = Pipeline::new(
        Arc::new(CanonicalJsonDecoder),
        Arc::new(ExactMatcher::new(entries)),
    );
    let commits_all = matches!(on_stop, OnStop::CommitAll);
    let unarchived = Arc::new(UnarchivedReads::new(usize::MAX));
    let engine = StreamEngine::new(
        settings.clone(),
        Arc::new(ArchiveConfig::new(archive_dir)),
        StreamOptions {
            segment_max_rows: 400,
            segment_max_age: Duration::from_millis(500),
            stop,
            on_stop,
            unarchived: Some(Arc::clone(&unarchived)),
        },
    );
    let summary = engine.run(&mut pipeline, &mut ()).unwrap();
    if commits_all {
        // Every segment was committed, so every read the API could list has left for the archive.
        let left = unarchived.snapshot(&UnarchivedQuery::default());
        assert_eq!(
            left.held,
            0,
            "reads still held as unarchived: {:?}",
            left.reads.first()
        );
    }
    summary
}

fn until_idle() -> StopWhen {
    StopWhen {
        idle: Some(Duration::from_secs(3)),
        ..StopWhen::default()
    }
}

#[test]
fn hotlisted_reads_alert_once_every_read_is_archived_and_bad_messages_are_dead_lettered() {
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "e2e");
    create_topics(&settings, 3);
    let traffic = traffic(3_000, 7);
    let expected_alerts = traffic.truths.iter().filter(|t| t.hotlisted).count();
    assert!(
        expected_alerts > 10,
        "the traffic must contain hotlisted passes"
    );

    let bad: Vec<(Option<String>, Vec<u8>)> = vec![
        (None, b"{\"vendor\":\"acme\",\"reader_id\":".to_vec()),
        (None, vec![0xff, 0xfe, 0x00, 0x7b]),
        (
            Some("k".into()),
            br#"{"vendor":"acme","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z","plate":"A$","confidence":0.9}"#.to_vec(),
        ),
        // A reason quoting this 600 KB time whole made a dead letter the broker refused, which
        // stopped the engine at this message on every start.
        (
            None,
            format!(
                r#"{{"vendor":"acme","reader_id":"r1","observed_at":"{}","plate":"ABC123","confidence":0.9}}"#,
                "x".repeat(600_000)
            )
            .into_bytes(),
        ),
    ];
    // Just under the producer's 1,000,000 bytes: with the reason's headers, the dead letter is
    // over them, and the engine stopped at it on every start.
    let near_limit: Vec<u8> = vec![b'#'; 999_850];
    let mut payloads = traffic.payloads.clone();
    payloads.splice(1500..1500, bad.clone());
    payloads.insert(2000, (None, near_limit.clone()));
    produce_all(&settings, &settings.raw_topics[0], &payloads);

    let archive = tempfile::tempdir().unwrap();
    let summary = run_engine(
        &settings,
        archive.path(),
        &traffic.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(summary.counts.messages, payloads.len() as u64);
    assert_eq!(summary.counts.dead_lettered, 5);
    assert_eq!(summary.reads_archived, 3_000);

    // Exactly one alert per hotlisted pass, on the alerts topic and in the archive.
    let alerts: Vec<Alert> = drain_topic(
        &settings.bootstrap_servers,
        &settings.alerts_topic,
        Duration::from_secs(2),
    )
    .into_iter()
    .map(|message| serde_json::from_slice(&message.payload).unwrap())
    .collect();
    assert_eq!(alerts.len(), expected_alerts);
    assert_eq!(summary.alerts_archived, expected_alerts as u64);
    let hotlisted_read_ids: BTreeSet<&str> = traffic
        .reads
        .iter()
        .zip(&traffic.truths)
        .filter(|(_, truth)| truth.hotlisted)
        .map(|(read, _)| read.read_id.as_str())
        .collect();
    let alerted_read_ids: BTreeSet<&str> =
        alerts.iter().map(|alert| alert.read_id.as_str()).collect();
    assert_eq!(alerted_read_ids, hotlisted_read_ids);
    let alert = &alerts[0];
    assert_eq!(alert.match_kind.as_str(), "exact");
    assert!(
        alert.images.plate_crop.is_some(),
        "the officer gets the plate crop"
    );

    // Every read archived once, with the values the simulator produced.
    let archived = archived_reads(archive.path());
    assert_eq!(archived.len(), 3_000);
    let by_id: HashMap<&str, &common::ArchivedRead> = archived
        .iter()
        .map(|read| (read.read_id.as_str(), read))
        .collect();
    assert_eq!(by_id.len(), 3_000, "no read archived twice");
    for read in &traffic.reads {
        let row = by_id[read.read_id.as_str()];
        assert_eq!(row.plate, read.plate);
        assert_eq!(row.reader_id, read.reader_id);
        assert_eq!(row.observed_at, read.observed_at.millis());
        assert_eq!(row.lat, read.lat);
        assert_eq!(
            row.plate_norm,
            platestream_engine::normalize::normalize_plate(&read.plate).unwrap()
        );
    }

    // Bad messages: original bytes and a reason on the dead-letter topic.
    let dead_letters = drain_topic(
        &settings.bootstrap_servers,
        &settings.dead_letter_topic,
        Duration::from_secs(2),
    );
    assert_eq!(dead_letters.len(), 5);
    let truncated: Vec<_> = dead_letters
        .iter()
        .filter(|m| m.headers.contains_key("platestream.payload_truncated_from"))
        .collect();
    assert_eq!(truncated.len(), 1);
    assert_eq!(
        truncated[0].headers["platestream.payload_truncated_from"],
        near_limit.len().to_string()
    );
    assert!(near_limit.starts_with(&truncated[0].payload));
    let payloads: Vec<&[u8]> = dead_letters.iter().map(|m| m.payload.as_slice()).collect();
    for (_, original) in &bad {
        assert!(
            payloads.contains(&original.as_slice()),
            "original bytes kept"
        );
    }
    let codes: BTreeSet<&str> = dead_letters
        .iter()
        .map(|m| m.headers["platestream.reason_code"].as_str())
        .collect();
    assert_eq!(
        codes,
        BTreeSet::from(["malformed", "not_utf8", "implausible_plate_character"])
    );
    assert!(dead_letters.iter().all(|m| {
        let reason = &m.headers["platestream.reason"];
        !reason.is_empty() && reason.len() < 1_200
    }));
    assert!(dead_letters
        .iter()
        .all(|m| m.headers.contains_key("platestream.source.offset")));

    // Everything consumed is committed.
    assert_eq!(
        group_lag(&settings, &settings.raw_topics[0]).unwrap(),
        Some(0)
    );
}

#[test]
fn stopping_and_crashing_mid_stream_neither_loses_nor_duplicates_a_read() {
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "restart");
    create_topics(&settings, 2);
    let traffic = traffic(2_400, 11);
    produce_all(&settings, &settings.raw_topics[0], &traffic.payloads);
    let archive = tempfile::tempdir().unwrap();
    let after = |messages| StopWhen {
        messages: Some(messages),
        ..StopWhen::default()
    };

    // A clean stop part-way.
    let first = run_engine(
        &settings,
        archive.path(),
        &traffic.hotlist_csv,
        after(700),
        OnStop::CommitAll,
    );
    assert!(first.reads_archived >= 700);
    // A crash after the archive was durable but before the Kafka commit; this run prepares
    // messages on its consuming thread, the others on preparing threads.
    let inline = KafkaSettings {
        prepare_threads: Some(0),
        ..settings.clone()
    };
    let second = run_engine(
        &inline,
        archive.path(),
        &traffic.hotlist_csv,
        after(500),
        OnStop::ArchiveWithoutCommit,
    );
    assert!(second.reads_archived > 0);
    // A crash with open segments: nothing of them survives, nothing is committed (but segments
    // that came due by age during the run, e.g. of offsets it skipped, were committed).
    let third = run_engine(
        &settings,
        archive.path(),
        &traffic.hotlist_csv,
        after(300),
        OnStop::AbandonAll,
    );
    // Then a run to the end.
    let last = run_engine(
        &settings,
        archive.path(),
        &traffic.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    // What the second run archived without committing is skipped by the run after it, and again
    // by the last one unless the third committed it.
    assert!(
        third.already_archived + last.already_archived >= second.reads_archived,
        "the restarts skipped what the crashed run had archived ({} + {} < {})",
        third.already_archived,
        last.already_archived,
        second.reads_archived
    );

    let archived = archived_reads(archive.path());
    let unique: BTreeSet<&str> = archived.iter().map(|read| read.read_id.as_str()).collect();
    assert_eq!(unique.len(), archived.len(), "a read was archived twice");
    let expected: BTreeSet<&str> = traffic
        .reads
        .iter()
        .map(|read| read.read_id.as_str())
        .collect();
    let lost: Vec<usize> = traffic
        .reads
        .iter()
        .enumerate()
        .filter(|(_, read)| !unique.contains(read.read_id.as_str()))
        .map(|(index, _)| index)
        .collect();
    assert!(
        lost.is_empty(),
        "{} reads lost, produced as #{:?}...",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert_eq!(unique.len(), expected.len());
    assert_eq!(
        group_lag(&settings, &settings.raw_topics[0]).unwrap(),
        Some(0)
    );
}

/// A second `platestream demo`, or a topic deleted and created again, meets an archive whose
/// offsets are of other messages. None of the new messages may be skipped as already archived,
/// then or after a restart, and the earlier reads stay in the archive.
#[test]
fn an_archive_of_an_earlier_broker_or_topic_skips_none_of_the_new_messages() {
    let archive = tempfile::tempdir().unwrap();
    let earlier = traffic(1_200, 21);
    archive_on_a_broker_of_its_own("incarnation", archive.path(), &earlier);

    // The same topic names on a fresh broker: its offsets start at 0 again.
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "incarnation");
    create_topics(&settings, 2);
    let fewer = traffic(300, 22);
    produce_all(&settings, &settings.raw_topics[0], &fewer.payloads);
    let second = run_engine(
        &settings,
        archive.path(),
        &fewer.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(
        (second.reads_archived, second.already_archived),
        (300, 0),
        "the earlier broker's offsets were taken for this one's"
    );

    // Restarted once the new topic has grown past the offsets the earlier one reached.
    let more = traffic(1_500, 23);
    produce_all(&settings, &settings.raw_topics[0], &more.payloads);
    let third = run_engine(
        &settings,
        archive.path(),
        &more.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!((third.reads_archived, third.already_archived), (1_500, 0));

    assert_archived_once(
        archive.path(),
        &[("earlier", &earlier), ("fewer", &fewer), ("more", &more)],
    );
}

/// Archives `traffic` from a broker started for it alone (gone when this returns), on topics
/// named after `name`, as an earlier deployment would have.
fn archive_on_a_broker_of_its_own(name: &str, archive: &std::path::Path, traffic: &Traffic) {
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, name);
    create_topics(&settings, 2);
    produce_all(&settings, &settings.raw_topics[0], &traffic.payloads);
    let summary = run_engine(
        &settings,
        archive,
        &traffic.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(summary.reads_archived as usize, traffic.reads.len());
}

/// Every read of each named traffic is in the archive, and no read is there twice.
fn assert_archived_once(archive: &std::path::Path, traffics: &[(&str, &Traffic)]) {
    let archived = archived_reads(archive);
    let unique: BTreeSet<&str> = archived.iter().map(|read| read.read_id.as_str()).collect();
    assert_eq!(unique.len(), archived.len(), "a read was archived twice");
    for (name, traffic) in traffics {
        let missing = traffic
            .reads
            .iter()
            .filter(|read| !unique.contains(read.read_id.as_str()))
            .count();
        assert_eq!(missing, 0, "{name}: {missing} reads not in the archive");
    }
}

/// A topic created again (or another broker) that already holds more messages than the archive
/// reached before the engine sees it: its end is past the archive's offsets, so the end alone
/// cannot tell it from the partition the archive was written from. Its first messages must not
/// be taken for the archived ones and skipped.
#[test]
fn a_new_topic_that_outgrew_the_archives_offsets_before_the_engine_started_loses_nothing() {
    let archive = tempfile::tempdir().unwrap();
    let earlier = traffic(300, 41);
    archive_on_a_broker_of_its_own("outgrown", archive.path(), &earlier);

    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "outgrown");
    create_topics(&settings, 2);
    let newer = traffic(1_000, 42);
    produce_all(&settings, &settings.raw_topics[0], &newer.payloads);
    let second = run_engine(
        &settings,
        archive.path(),
        &newer.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(
        (second.reads_archived, second.already_archived),
        (1_000, 0),
        "the new topic's first messages were taken for the archived ones"
    );
    assert_archived_once(archive.path(), &[("earlier", &earlier), ("newer", &newer)]);
    let retired = retired_files(archive.path());
    assert!(retired > 0, "the earlier topic's files were not retired");

    // A restart on the same topic is no new incarnation: nothing is retired or archived again.
    let later = traffic(50, 43);
    produce_all(&settings, &settings.raw_topics[0], &later.payloads);
    let third = run_engine(
        &settings,
        archive.path(),
        &later.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!((third.reads_archived, third.already_archived), (50, 0));
    let retired_after = retired_files(archive.path());
    assert_eq!(retired_after, retired, "a current archive was retired");
}

/// A reader vendor's producer batches messages (librdkafka's default). tansu 0.6 then reports a
/// partition's end as one past the first offset of its last batch, short of messages the archive
/// already holds. That must not be taken for another incarnation of the partition: an engine of a
/// new consumer group over the same archive (or one that crashed after archiving, before
/// committing) skips what is archived instead of retiring the archive and reading it all again.
#[test]
fn a_short_watermark_after_batched_produces_is_not_taken_for_a_new_topic() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    let archive = tempfile::tempdir().unwrap();
    let broker = TansuBroker::start().unwrap();
    let mut settings = settings(&broker, "batched");
    create_topics(&settings, 1);
    let reads = traffic(1_000, 31);
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .producer_config()
        .set("linger.ms", "500")
        .create()
        .unwrap();
    for (key, payload) in &reads.payloads {
        let mut record = BaseRecord::<[u8], [u8]>::to(&settings.raw_topics[0]).payload(payload);
        if let Some(key) = key {
            record = record.key(key.as_bytes());
        }
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let watermark_client: BaseConsumer = settings.consumer_config().create().unwrap();
    let (_, high) = watermark_client
        .fetch_watermarks(&settings.raw_topics[0], 0, Duration::from_secs(10))
        .unwrap();
    assert!(
        high < 1_000,
        "the precondition: tansu reports the end of the last batch's first message ({high})"
    );

    let first = run_engine(
        &settings,
        archive.path(),
        &reads.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(first.reads_archived, 1_000);

    settings.group_id = "batched-second-group".to_owned();
    let second = run_engine(
        &settings,
        archive.path(),
        &reads.hotlist_csv,
        until_idle(),
        OnStop::CommitAll,
    );
    assert_eq!(
        (second.reads_archived, second.already_archived),
        (0, 1_000),
        "the archive was taken for another incarnation's"
    );
    let retired = retired_files(archive.path());
    assert_eq!(retired, 0, "files were retired");
    let archived = archived_reads(archive.path());
    let unique: BTreeSet<&str> = archived.iter().map(|read| read.read_id.as_str()).collect();
    assert_eq!((archived.len(), unique.len()), (1_000, 1_000));
}

/// Files of the archive retired as another incarnation's.
fn retired_files(archive: &std::path::Path) -> usize {
    walk(archive)
        .into_iter()
        .filter(|path| path.contains(".retired"))
        .count()
}

/// Every file under `dir`, as strings.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn covert_hits_reach_only_the_covert_topic_and_repeat_hits_are_archived_but_not_paged() {
    use platestream_engine::alert_policy::{AlertRoute, ListPolicy};

    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "routing");
    create_topics(&settings, 1);
    let hotlist = "list,plate,jurisdiction,reason\n\
                   amber_alert,AMB3R1,VA,child abduction\n\
                   narcotics_watch,C0V3RT,MD,investigation\n";
    let entries = load_hotlist_csv("lists", hotlist.as_bytes())
        .unwrap()
        .entries;
    let covert = ListPolicy {
        route: AlertRoute::Covert,
        ..ListPolicy::named("narcotics_watch")
    };
    let (store, policy) = platestream::hotlists::build_store(entries, &[covert], 600);
    let read = |reader: &str, plate: &str, state: &str, seconds: i64| {
        let json = serde_json::json!({
            "vendor": "t", "reader_id": reader, "plate": plate, "jurisdiction": state,
            "observed_at": 1_795_539_600_000_i64 + seconds * 1000, "confidence": 0.95,
        });
        (Some(plate.to_owned()), serde_json::to_vec(&json).unwrap())
    };
    // The AMBER plate passes two readers a minute apart: officers are paged once.
    let payloads = vec![
        read("r1", "AMB3R1", "VA", 0),
        read("r2", "AMB3R1", "VA", 60),
        read("r3", "C0V3RT", "MD", 90),
        read("r3", "ZZZ999", "MD", 95),
    ];
    produce_all(&settings, &settings.raw_topics[0], &payloads);

    let archive = tempfile::tempdir().unwrap();
    let mut pipeline =
        Pipeline::new(Arc::new(CanonicalJsonDecoder), store).with_alert_policy(policy);
    let engine = StreamEngine::new(
        settings.clone(),
        Arc::new(ArchiveConfig::new(archive.path())),
        StreamOptions {
            stop: until_idle(),
            ..StreamOptions::default()
        },
    );
    let summary = engine.run(&mut pipeline, &mut ()).unwrap();
    assert_eq!(summary.reads_archived, 4);
    assert_eq!(summary.alerts_archived, 3, "every hit is recorded");

    let alerts_of = |topic: &str| -> Vec<Alert> {
        drain_topic(&settings.bootstrap_servers, topic, Duration::from_secs(2))
            .iter()
            .map(|message| serde_json::from_slice(&message.payload).unwrap())
            .collect()
    };
    let field = alerts_of(&settings.alerts_topic);
    assert_eq!(field.len(), 1, "{field:?}");
    assert_eq!(field[0].list, "amber_alert");
    assert!(!field[0].suppressed);
    let covert = alerts_of(&settings.covert_alerts_topic);
    assert_eq!(covert.len(), 1, "{covert:?}");
    assert_eq!(covert[0].list, "narcotics_watch");
    assert_eq!(covert[0].route, AlertRoute::Covert);
}

/// The broker loses the topic under a running engine (a `memory://` broker restarted; a topic
/// deleted and created again): librdkafka fetches the new partitions from the old positions
/// without a word, and the new partitions' first messages must not be taken for the archived
/// ones of the same offsets. The engine runs as its own process, as in production: librdkafka
/// 2.12 sometimes crashes (SIGSEGV in its metadata cache) when tansu comes back without the
/// topic, and a service manager then starts it again, which must lose nothing either.
#[test]
fn a_topic_recreated_under_a_running_engine_loses_none_of_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "underfoot");
    create_topics(&settings, 2);
    common::write_engine_config(dir.path(), "platestream.toml", &settings, "", "files = []");
    let archive = dir.path().join("archive");
    let wait_for = |count: usize, engine: &mut common::EngineProcess| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while archived_reads(&archive).len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {count} reads archived",
                archived_reads(&archive).len()
            );
            if !engine.running() {
                *engine = common::EngineProcess::start(dir.path(), "platestream.toml");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let earlier = traffic(600, 51);
    produce_all(&settings, &settings.raw_topics[0], &earlier.payloads);
    let mut engine = common::EngineProcess::start(dir.path(), "platestream.toml");
    wait_for(600, &mut engine);

    broker.restart_empty().unwrap();
    create_topics(&settings, 2);
    let newer = traffic(1_000, 52);
    produce_all(&settings, &settings.raw_topics[0], &newer.payloads);
    wait_for(1_600, &mut engine);
    engine.stop();
    assert_archived_once(&archive, &[("earlier", &earlier), ("newer", &newer)]);
}
