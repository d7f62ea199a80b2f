//! Hotlists kept live (#4): the compacted updates topic against a real broker, file reloads, and
//! alert webhooks against a real local HTTP server.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{create_topics, produce_all, runtime, EngineProcess};
use platestream::broker::TansuBroker;
use platestream::hotlist_sources::{FileReloader, HotlistFiles, ReloadIntervals};
use platestream_connectors::kafka::{
    ensure_compacted_topics, spawn_hotlist_updates, KafkaSettings, LiveUpdates, StopWhen,
    StreamEngine, StreamOptions,
};
use platestream_connectors::webhooks::{WebhookFanout, WebhookSettings};
use platestream_engine::alert::Alert;
use platestream_engine::alert_policy::ListPolicy;
use platestream_engine::archive::ArchiveConfig;
use platestream_engine::decode::CanonicalJsonDecoder;
use platestream_engine::matcher::{Match, Matcher};
use platestream_engine::pipeline::Pipeline;
use platestream_engine::store::{HotlistStore, MatchModes};
use platestream_engine::{PlateRead, Timestamp};

fn settings(broker: &TansuBroker, name: &str) -> KafkaSettings {
    common::named_settings(broker, name)
}

fn read_of(plate: &str, jurisdiction: &str) -> PlateRead {
    serde_json::from_value(serde_json::json!({
        "read_id": format!("read-{plate}"), "vendor": "test", "reader_id": "r1",
        "observed_at": Timestamp::now().millis(), "plate": plate,
        "plate_norm": platestream_engine::normalize::normalize_plate(plate).unwrap(),
        "jurisdiction": platestream_engine::jurisdiction::normalize_jurisdiction(jurisdiction),
        "confidence": 0.95,
    }))
    .unwrap()
}

/// The ids of the entries a read of `plate` hits now.
fn hits(store: &HotlistStore, plate: &str, jurisdiction: &str) -> Vec<String> {
    let mut matches: Vec<Match> = Vec::new();
    store.match_read(
        &read_of(plate, jurisdiction),
        Timestamp::now(),
        &mut matches,
    );
    matches
        .iter()
        .map(|hit| format!("{}/{}", hit.entry.list, hit.entry.id))
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

type Message = (Option<String>, Option<Vec<u8>>);

/// Like `common::produce_all`, but a `None` value is a real tombstone (no payload at all).
fn produce_updates(settings: &KafkaSettings, topic: &str, messages: &[Message]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = settings
        .producer_config()
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    for (key, value) in messages {
        let mut record = BaseRecord::<str, [u8]>::to(topic);
        if let Some(key) = key {
            record = record.key(key.as_str());
        }
        if let Some(value) = value {
            record = record.payload(value.as_slice());
        }
        producer.send(record).map_err(|(error, _)| error).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn upsert(key: &str, value: serde_json::Value) -> Message {
    (Some(key.to_owned()), Some(value.to_string().into_bytes()))
}

#[test]
fn updates_topic_rebuilds_then_an_amber_upsert_matches_within_seconds_and_deletes_stop_it() {
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "live");
    let topic = "live-hotlist-updates";
    runtime()
        .block_on(ensure_compacted_topics(
            &settings.producer_config(),
            &[(topic, 1)],
            Duration::from_secs(30),
        ))
        .unwrap();
    // Already on the topic before the engine starts: the rebuild must pick these up.
    produce_updates(
        &settings,
        topic,
        &[
            upsert(
                "local_bolo/bolo-1",
                serde_json::json!({"plate": "BOL 0111", "reason": "reckless driving"}),
            ),
            upsert("local_bolo/bolo-2", serde_json::json!({"plate": "BOL0222"})),
            (Some("local_bolo/bolo-2".to_owned()), None),
            (None, Some(br#"{"plate":"NOKEY1"}"#.to_vec())),
            upsert(
                "local_bolo/bolo-3",
                serde_json::json!({"plate": "BOL0333", "priority": 42}),
            ),
        ],
    );

    let store = Arc::new(HotlistStore::new(MatchModes::EXACT_ONLY));
    let stop = Arc::new(AtomicBool::new(false));
    let updates = spawn_hotlist_updates(
        &settings,
        topic,
        Arc::clone(&store),
        Arc::new(LiveUpdates::default()),
        Arc::clone(&stop),
    )
    .unwrap();
    let status = Arc::clone(&updates.status);
    wait_until("rebuild", Duration::from_secs(20), || {
        status.caught_up.load(Ordering::Relaxed)
    });
    assert_eq!(hits(&store, "BOL0111", "VA"), ["local_bolo/bolo-1"]);
    assert!(
        hits(&store, "BOL0222", "VA").is_empty(),
        "deleted by its tombstone"
    );
    assert!(
        hits(&store, "BOL0333", "VA").is_empty(),
        "refused: priority"
    );
    assert_eq!(status.rejected.load(Ordering::Relaxed), 2);

    // A dispatcher enters an AMBER alert by hand.
    produce_updates(
        &settings,
        topic,
        &[upsert(
            "amber_alert/VA-2026-0042",
            serde_json::json!({"plate": "7XK 229", "jurisdiction": "VA", "priority": 1,
                               "reason": "AMBER alert", "make": "Honda"}),
        )],
    );
    wait_until("AMBER upsert matching", Duration::from_secs(10), || {
        hits(&store, "7XK229", "VA") == ["amber_alert/VA-2026-0042"]
    });

    // The child is found: a tombstone; the BOLO is cleared with an explicit delete.
    produce_updates(
        &settings,
        topic,
        &[
            (Some("amber_alert/VA-2026-0042".to_owned()), None),
            upsert("local_bolo/bolo-1", serde_json::json!({"op": "delete"})),
        ],
    );
    wait_until("deletes applied", Duration::from_secs(10), || {
        hits(&store, "7XK229", "VA").is_empty() && hits(&store, "BOL0111", "VA").is_empty()
    });

    stop.store(true, Ordering::Relaxed);
    updates.join().unwrap();
}

fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[test]
fn changed_files_are_swapped_in_and_broken_or_vanished_files_keep_their_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.csv");
    write_atomically(
        &path,
        "list,plate,jurisdiction\nstolen_vehicles,OLD111,VA\nstolen_vehicles,OLD222,VA\n",
    );
    let files = HotlistFiles::load(std::slice::from_ref(&path), &[]).unwrap();
    let (store, _) = platestream::hotlists::build_store(files.entries(), &[], 600);
    let live = Arc::new(LiveUpdates::default());
    // A hand-entered live entry on the same list must survive the file's reloads.
    let manual = platestream_connectors::kafka::hotlist_updates::decode_update(
        Some(b"stolen_vehicles/manual-1"),
        Some(br#"{"plate":"LIVE99","jurisdiction":"VA"}"#),
    )
    .unwrap();
    live.apply(&store, &manual.list, vec![manual.update]);
    let mut reloader = FileReloader::new(files, Arc::clone(&store), Arc::clone(&live));
    assert_eq!(
        reloader.check(false).reloaded.len(),
        0,
        "unchanged: nothing to do"
    );

    write_atomically(
        &path,
        "list,plate,jurisdiction\nstolen_vehicles,NEW333,VA\nlocal_bolo,BOLO44,\n",
    );
    let report = reloader.check(false);
    assert_eq!(report.reloaded, std::slice::from_ref(&path));
    assert_eq!(report.lists_replaced, ["local_bolo", "stolen_vehicles"]);
    assert!(hits(&store, "OLD111", "VA").is_empty(), "old entries gone");
    assert_eq!(
        hits(&store, "NEW333", "VA"),
        ["stolen_vehicles/NEW333/US-VA"]
    );
    assert_eq!(hits(&store, "BOLO44", "MD"), ["local_bolo/BOLO44/*"]);
    assert_eq!(
        hits(&store, "LIVE99", "VA"),
        ["stolen_vehicles/manual-1"],
        "live upserts are laid over the reloaded file"
    );

    // A broken export (no plate column), one whose every row is refused, a header alone (a
    // truncated export), one whose missing closing quote would swallow every later row, then
    // none at all.
    for broken in [
        "list,tag\nstolen_vehicles,XYZ\n",
        "list,plate,priority\nstolen_vehicles,BAD1,urgent\nstolen_vehicles,BAD2,urgent\n",
        "list,plate,jurisdiction\n",
        "list,plate,description\nstolen_vehicles,NEW333,\"open\nstolen_vehicles,OTHER4,x\n",
    ] {
        write_atomically(&path, broken);
        let report = reloader.check(false);
        assert_eq!(report.failed.len(), 1, "{broken:?}: {report:?}");
        assert!(report.lists_replaced.is_empty(), "{broken:?}: {report:?}");
        assert_eq!(
            hits(&store, "NEW333", "VA"),
            ["stolen_vehicles/NEW333/US-VA"]
        );
    }
    std::fs::remove_file(&path).unwrap();
    assert_eq!(reloader.check(false).failed.len(), 1);
    assert_eq!(hits(&store, "BOLO44", "VA"), ["local_bolo/BOLO44/*"]);
    assert_eq!(store.list_len("stolen_vehicles"), 2);

    // The watcher thread picks the file up again when it comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = reloader
        .spawn(
            ReloadIntervals {
                check: Duration::from_millis(200),
                every: None,
            },
            Arc::clone(&stop),
        )
        .unwrap();
    write_atomically(&path, "list,plate\nstolen_vehicles,BACK55\n");
    wait_until("watcher reload", Duration::from_secs(10), || {
        !hits(&store, "BACK55", "VA").is_empty()
    });
    assert!(hits(&store, "NEW333", "VA").is_empty());
    assert!(
        hits(&store, "BOLO44", "VA").is_empty(),
        "a list the good new file no longer holds is emptied"
    );
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
}

/// A tiny HTTP/1.1 server: answers `503` to the first `failures` requests, then `200`, and
/// passes every request body on.
fn webhook_server(failures: usize) -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/alpr/alerts?token=s3cret",
        listener.local_addr().unwrap()
    );
    let (sender, received) = mpsc::channel();
    let answered = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            let mut alert_id = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "x-platestream-alert-id" => alert_id = value.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert!(request_line.starts_with("POST /alpr/alerts?token=s3cret "));
            let status = if answered.fetch_add(1, Ordering::Relaxed) < failures {
                "503 Service Unavailable"
            } else {
                sender.send((alert_id, body)).unwrap();
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, received)
}

#[test]
fn paged_alerts_of_a_list_with_webhooks_are_posted_as_json_retrying_a_failing_endpoint() {
    let (url, received) = webhook_server(1);
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "hooks");
    create_topics(&settings, 1);
    let hotlist = "list,plate,jurisdiction,reason\n\
                   amber_alert,AMB3R1,VA,child abduction\n\
                   stolen_vehicles,ST0L3N,MD,stolen\n";
    let entries = platestream_engine::hotlist::load_hotlist_csv("lists", hotlist.as_bytes())
        .unwrap()
        .entries;
    let amber = ListPolicy {
        webhooks: vec![url],
        ..ListPolicy::named("amber_alert")
    };
    let (store, policy) = platestream::hotlists::build_store(entries, &[amber], 600);
    let read = |reader: &str, plate: &str, state: &str, seconds: i64| {
        let json = serde_json::json!({
            "vendor": "t", "reader_id": reader, "plate": plate, "jurisdiction": state,
            "observed_at": 1_795_539_600_000_i64 + seconds * 1000, "confidence": 0.95,
        });
        (Some(plate.to_owned()), serde_json::to_vec(&json).unwrap())
    };
    // Two AMBER hits a minute apart (the second is suppressed: not paged, not posted) and a
    // hit on a list without webhooks.
    produce_all(
        &settings,
        &settings.raw_topics[0],
        &[
            read("r1", "AMB3R1", "VA", 0),
            read("r2", "AMB3R1", "VA", 60),
            read("r3", "ST0L3N", "MD", 90),
        ],
    );

    let webhooks = WebhookFanout::new(
        WebhookSettings {
            initial_backoff_ms: 50,
            ..WebhookSettings::default()
        },
        Arc::clone(&store),
    );
    let stats = webhooks.stats();
    let archive = tempfile::tempdir().unwrap();
    let mut pipeline =
        Pipeline::new(Arc::new(CanonicalJsonDecoder), store).with_alert_policy(policy);
    let engine = StreamEngine::new(
        settings.clone(),
        Arc::new(ArchiveConfig::new(archive.path())),
        StreamOptions {
            stop: StopWhen {
                idle: Some(Duration::from_secs(2)),
                ..StopWhen::default()
            },
            ..StreamOptions::default()
        },
    );
    let summary = engine.run(&mut pipeline, &mut &webhooks).unwrap();
    assert_eq!(summary.alerts_archived, 3);

    let (alert_id, body) = received.recv_timeout(Duration::from_secs(10)).unwrap();
    let alert: Alert = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert.list, "amber_alert");
    assert_eq!(alert.read_plate_norm, "AMB3R1");
    assert_eq!(alert.reader_id, "r1");
    assert!(!alert.suppressed);
    assert_eq!(alert_id, alert.alert_id);
    webhooks.shutdown(Duration::from_secs(5));
    assert!(
        received.try_recv().is_err(),
        "neither the suppressed repeat nor the other list's hit is posted"
    );
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 1);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 1);
    assert_eq!(stats.failed.load(Ordering::Relaxed), 0);
}

#[test]
fn a_full_webhook_queue_drops_its_oldest_alerts_and_a_dead_endpoint_counts_failures() {
    // Nothing listens here: every attempt is refused at once.
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let store = Arc::new(HotlistStore::new(MatchModes::EXACT_ONLY));
    store.set_policy(ListPolicy {
        webhooks: vec![dead],
        ..ListPolicy::named("amber_alert")
    });
    store.upsert(Arc::new(
        platestream_engine::hotlist::HotlistEntry::new("amber_alert", "AMB3R1").unwrap(),
    ));
    let webhooks = WebhookFanout::new(
        WebhookSettings {
            max_attempts: 2,
            initial_backoff_ms: 200,
            queue_capacity: 2,
            ..WebhookSettings::default()
        },
        Arc::clone(&store),
    );
    let stats = webhooks.stats();
    let mut matches = Vec::new();
    let read = read_of("AMB3R1", "VA");
    store.match_read(&read, Timestamp::now(), &mut matches);
    let alert = Alert::new(&read, &matches[0], Timestamp::now());
    for _ in 0..6 {
        webhooks.send(&alert);
    }
    webhooks.shutdown(Duration::from_secs(3));
    let (delivered, failed, dropped) = (
        stats.delivered.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
    );
    assert_eq!(delivered, 0);
    assert!(failed >= 1, "failed {failed}");
    assert!(dropped >= 1, "dropped {dropped}");
    assert_eq!(failed + dropped, 6, "every alert is accounted for");
}

/// Every alert archived so far.
fn archived_alert_records(archive: &Path) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let directory = archive.join("alerts");
    if !directory.exists() {
        return alerts;
    }
    for path in platestream::archive_stats::parquet_files(&directory).unwrap() {
        let file = std::fs::File::open(&path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let json = batch
                .column_by_name("alert_json")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            for row in 0..batch.num_rows() {
                alerts.push(serde_json::from_str(json.value(row)).unwrap());
            }
        }
    }
    alerts
}

/// The archived alerts as (reader, suppressed), once `count` are archived.
fn archived_alerts(archive: &Path, count: usize) -> Vec<(String, bool)> {
    common::eventually(
        &format!("{count} alerts archived"),
        Duration::from_secs(60),
        || {
            let mut alerts: Vec<(String, bool)> = archived_alert_records(archive)
                .into_iter()
                .map(|alert| (alert.reader_id, alert.suppressed))
                .collect();
            alerts.sort();
            (alerts.len() >= count).then_some(alerts)
        },
    )
}

/// `platestream.toml` in `dir` for an engine on `settings`' topics, with `hotlists` as its
/// `[hotlists]` section.
fn write_engine_config(dir: &Path, settings: &KafkaSettings, hotlists: &str) {
    common::write_engine_config(dir, "platestream.toml", settings, "", hotlists);
}

#[test]
fn a_restarted_engine_does_not_page_again_within_the_suppression_window() {
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "restart");
    create_topics(&settings, 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hotlist.csv"),
        "list,plate,jurisdiction,reason\nstolen_vehicles,ST0L3N,MD,stolen\n",
    )
    .unwrap();
    write_engine_config(
        dir.path(),
        &settings,
        "files = [\"hotlist.csv\"]\nsuppression_window_secs = 600",
    );
    let now = Timestamp::now().millis();
    let read = |reader: &str, minutes_ago: i64| {
        let json = serde_json::json!({
            "vendor": "t", "reader_id": reader, "plate": "ST0L3N", "jurisdiction": "MD",
            "observed_at": now - minutes_ago * 60_000, "confidence": 0.95,
        });
        (
            Some("ST0L3N".to_owned()),
            serde_json::to_vec(&json).unwrap(),
        )
    };
    let archive = dir.path().join("archive");

    // The stolen car passes a reader, officers are paged, then the engine is stopped.
    produce_all(&settings, &settings.raw_topics[0], &[read("r1", 5)]);
    let engine = EngineProcess::start(dir.path(), "platestream.toml");
    assert_eq!(archived_alerts(&archive, 1), [("r1".to_owned(), false)]);
    engine.stop();

    // Three minutes later by the car's clock it passes another reader: the restarted engine
    // records the hit but does not page again.
    produce_all(&settings, &settings.raw_topics[0], &[read("r2", 2)]);
    let _engine = EngineProcess::start(dir.path(), "platestream.toml");
    assert_eq!(
        archived_alerts(&archive, 2),
        [("r1".to_owned(), false), ("r2".to_owned(), true)]
    );
    let paged = common::drain_topic(
        &broker.bootstrap_servers(),
        &settings.alerts_topic,
        Duration::from_secs(3),
    );
    let readers: Vec<String> = paged
        .iter()
        .map(|message| {
            serde_json::from_slice::<Alert>(&message.payload)
                .unwrap()
                .reader_id
        })
        .collect();
    assert_eq!(readers, ["r1"], "one page, before the restart");
}

/// A canonical read of `plate` at `reader`, observed now, keyed by its plate.
fn read_message(plate: &str, jurisdiction: &str, reader: &str) -> (Option<String>, Vec<u8>) {
    let json = serde_json::json!({
        "vendor": "t", "reader_id": reader, "plate": plate, "jurisdiction": jurisdiction,
        "observed_at": Timestamp::now().millis(), "confidence": 0.95,
    });
    (Some(plate.to_owned()), serde_json::to_vec(&json).unwrap())
}

/// The archived alerts of `list`, once there are `count`.
fn alerts_of(archive: &Path, list: &str, count: usize) -> Vec<Alert> {
    common::eventually(
        &format!("{count} {list} alerts archived"),
        Duration::from_secs(60),
        || {
            let alerts: Vec<Alert> = archived_alert_records(archive)
                .into_iter()
                .filter(|alert| alert.list == list)
                .collect();
            (alerts.len() >= count).then_some(alerts)
        },
    )
}

#[test]
fn a_dispatcher_enters_and_removes_alerts_with_the_hotlist_command_and_the_running_engine_follows()
{
    use common::{platestream, succeed, text};
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "cli");
    create_topics(&settings, 1);
    let dir = tempfile::tempdir().unwrap();
    let reads_topic = settings.raw_topics[0].clone();
    write_engine_config(
        dir.path(),
        &settings,
        "files = []\nupdates_topic = \"cli-hotlist-updates\"",
    );
    let archive = dir.path().join("archive");

    // The topic does not exist yet: refused with the way out, nothing sent.
    let amber = [
        "hotlist",
        "put",
        "--config",
        "platestream.toml",
        "--list",
        "amber_alert",
        "--id",
        "VA-2026-0042",
        "--plate",
        "AMB 3R1",
        "--jurisdiction",
        "VA",
        "--priority",
        "1",
        "--reason",
        "AMBER alert: child abduction",
        "--set",
        "make=Honda",
        "--set",
        "color=blue",
        "--expires-in",
        "48h",
    ];
    let missing = platestream(&amber, dir.path());
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("--create-topic"),
        "{}",
        text(&missing.stderr)
    );

    // Entered before the engine starts: its rebuild from the topic holds it.
    let stdout = succeed(&[&amber[..], &["--create-topic"]].concat(), dir.path());
    assert!(
        stdout.contains("published amber_alert/VA-2026-0042 on cli-hotlist-updates"),
        "{stdout}"
    );
    assert!(
        stdout.contains("plate AMB3R1, [US-VA], priority 1"),
        "{stdout}"
    );
    let engine = EngineProcess::start(dir.path(), "platestream.toml");
    produce_all(
        &settings,
        &reads_topic,
        &[read_message("AMB3R1", "VA", "r1")],
    );
    let paged = alerts_of(&archive, "amber_alert", 1);
    assert_eq!(paged[0].read_plate_norm, "AMB3R1");
    assert_eq!(paged[0].priority, 1);
    assert_eq!(
        paged[0].entry_attributes.get("make").map(String::as_str),
        Some("Honda")
    );

    // Entered while the engine runs: it matches within seconds, without a restart. Reads keep
    // coming until one is matched after the entry arrived.
    let stdout = succeed(
        &[
            "hotlist",
            "put",
            "--config",
            "platestream.toml",
            "--list",
            "silver_alert",
            "--plate",
            "SLV 4419",
            "--jurisdiction",
            "MD",
            "--priority",
            "2",
        ],
        dir.path(),
    );
    assert!(
        stdout.contains("published silver_alert/SLV4419/US-MD"),
        "{stdout}"
    );
    let started = Instant::now();
    let mut reader = 0;
    while archived_alert_records(&archive)
        .iter()
        .all(|alert| alert.list != "silver_alert")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the live silver alert never matched"
        );
        reader += 1;
        produce_all(
            &settings,
            &reads_topic,
            &[read_message("SLV4419", "MD", &format!("live-{reader}"))],
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Removed, then the engine restarts and rebuilds from the topic: the AMBER plate passes a
    // reader before the silver one does, and only the silver one alerts.
    let stdout = succeed(
        &[
            "hotlist",
            "delete",
            "--config",
            "platestream.toml",
            "--list",
            "amber_alert",
            "--id",
            "VA-2026-0042",
        ],
        dir.path(),
    );
    assert!(
        stdout.contains("deleted amber_alert/VA-2026-0042"),
        "{stdout}"
    );
    // A delete of an id the topic holds no live entry for (deleted, or mistyped) is refused,
    // naming the live ids; nothing is sent.
    let delete_again = [
        "hotlist",
        "delete",
        "--config",
        "platestream.toml",
        "--list",
        "amber_alert",
        "--id",
        "VA-2026-0042",
    ];
    let again = platestream(&delete_again, dir.path());
    assert!(!again.status.success(), "{}", text(&again.stdout));
    assert!(
        text(&again.stderr).contains(
            "no live entry VA-2026-0042 in list amber_alert on cli-hotlist-updates; live ids: none"
        ),
        "{}",
        text(&again.stderr)
    );
    // What is live now: the silver alert, with the id `delete` takes; the AMBER alert is gone.
    let shown = succeed(
        &["hotlist", "show", "--config", "platestream.toml"],
        dir.path(),
    );
    let rows: Vec<Vec<&str>> = shown
        .lines()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| line.split_whitespace().take(5).collect())
        .collect();
    assert_eq!(
        rows,
        [["silver_alert", "SLV4419/US-MD", "SLV4419", "US-MD", "2"]],
        "{shown}"
    );
    assert!(
        shown.contains("1 live entries on cli-hotlist-updates (3 messages read)"),
        "{shown}"
    );
    let forced = succeed(&[&delete_again[..], &["--force"]].concat(), dir.path());
    assert!(
        forced.contains("deleted amber_alert/VA-2026-0042"),
        "{forced}"
    );
    engine.stop();
    let silver_before = alerts_of(&archive, "silver_alert", 1).len();
    let _engine = EngineProcess::start(dir.path(), "platestream.toml");
    produce_all(
        &settings,
        &reads_topic,
        &[
            read_message("AMB3R1", "VA", "after-delete"),
            read_message("SLV4419", "MD", "after-delete"),
        ],
    );
    let silver = alerts_of(&archive, "silver_alert", silver_before + 1);
    assert!(silver.iter().any(|alert| alert.reader_id == "after-delete"));
    let amber: Vec<String> = archived_alert_records(&archive)
        .into_iter()
        .filter(|alert| alert.list == "amber_alert")
        .map(|alert| alert.reader_id)
        .collect();
    assert_eq!(amber, ["r1"], "no AMBER alert after its deletion");

    // A file with one bad line is refused whole, each bad line named; nothing is sent.
    std::fs::write(
        dir.path().join("updates.ndjson"),
        concat!(
            r#"{"key":"local_bolo/B-1","value":{"plate":"BOL0111"}}"#,
            "\n",
            r#"{"key":"local_bolo/B-2","value":{"plate":"BOL0222","priority":42}}"#,
            "\n"
        ),
    )
    .unwrap();
    let refused = platestream(
        &[
            "hotlist",
            "publish",
            "--config",
            "platestream.toml",
            "updates.ndjson",
        ],
        dir.path(),
    );
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("line 2 (local_bolo/B-2): priority \"42\"")
            && stderr.contains("nothing was sent"),
        "{stderr}"
    );
    // The shipped example file is accepted.
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples/hotlist-updates.ndjson");
    let stdout = succeed(
        &[
            "hotlist",
            "publish",
            "--quiet",
            "--config",
            "platestream.toml",
            example.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(
        stdout.contains("published 4 updates (2 upserts, 2 deletes)"),
        "{stdout}"
    );
}

#[test]
fn hotlist_check_reports_what_the_engine_would_load_and_every_refused_row() {
    use common::{platestream, text};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("state.csv"),
        "list,plate,jurisdiction,priority,expires_at,misreads\n\
         stolen_vehicles,ABC1234,VA,1,,\n\
         stolen_vehicles,7X?2*,,2,,false\n\
         stolen_vehicles,XYZ999,MD,urgent,,\n\
         amber_alert,AMB3R1,VA,1,2020-01-01T00:00:00Z,\n",
    )
    .unwrap();
    let output = platestream(&["hotlist", "check", "state.csv"], dir.path());
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "a refused row fails the check");
    assert!(
        stdout.contains("state.csv: 3 entries, 1 rows refused"),
        "{stdout}"
    );
    assert!(stdout.contains("line 4: priority \"urgent\""), "{stdout}");
    let row = |list: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(list))
            .unwrap_or_else(|| panic!("no {list} row in {stdout}"))
            .split_whitespace()
            .skip(1)
            .map(|cell| cell.parse::<usize>().unwrap())
            .collect::<Vec<_>>()
    };
    // entries, plates, partial, BOLOs, any state, expired, exact only
    assert_eq!(row("stolen_vehicles"), [2, 1, 1, 0, 1, 0, 1]);
    assert_eq!(row("amber_alert"), [1, 1, 0, 0, 0, 1, 0]);
    assert!(text(&output.stderr).contains("1 row(s) refused"));

    let missing = platestream(&["hotlist", "check", "nope.csv"], dir.path());
    assert!(!missing.status.success());
    assert!(text(&missing.stdout).contains("nope.csv: CANNOT BE LOADED"));

    // A covert policy whose name the files spell otherwise would leave that list's hits on the
    // field topic: the check names it.
    std::fs::write(
        dir.path().join("gang.csv"),
        "list,plate,jurisdiction,priority
gang_watch,GNG1234,VA,2
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("engine.toml"),
        "[kafka]\nbootstrap_servers = \"127.0.0.1:9\"\n[hotlists]\nfiles = [\"gang.csv\"]\n\
         [[hotlists.lists]]\nname = \"gang_wacth\"\nroute = \"covert\"\n",
    )
    .unwrap();
    let policies = platestream(&["hotlist", "check", "--config", "engine.toml"], dir.path());
    let stdout = text(&policies.stdout);
    assert!(policies.status.success(), "{}", text(&policies.stderr));
    assert!(
        stdout.contains("name = \"gang_wacth\" names no loaded list (loaded: gang_watch)"),
        "{stdout}"
    );
    assert!(stdout.contains("go to field officers"), "{stdout}");
}

/// A supervisor reading `show` or `publish`'s answer must see which entries no longer match and
/// tell BOLOs apart by what they describe.
#[test]
fn show_and_publish_say_which_entries_have_expired_and_what_a_bolo_describes() {
    use common::succeed;
    let broker = TansuBroker::start().unwrap();
    let settings = settings(&broker, "shown");
    create_topics(&settings, 1);
    let dir = tempfile::tempdir().unwrap();
    write_engine_config(
        dir.path(),
        &settings,
        "files = []\nupdates_topic = \"shown-hotlist-updates\"",
    );
    std::fs::write(
        dir.path().join("updates.ndjson"),
        concat!(
            r#"{"key":"stolen_vehicles/LIVE-1","value":{"plate":"LIV111","jurisdiction":"VA"}}"#,
            "\n",
            r#"{"key":"stolen_vehicles/OLD-1","value":{"plate":"OLD111","jurisdiction":"VA","expires_at":"2020-01-01T00:00:00Z"}}"#,
            "\n",
            r#"{"key":"local_bolo/CAMRY","value":{"make":"Toyota","model":"Camry","color":"grey"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let published = succeed(
        &[
            "hotlist",
            "publish",
            "updates.ndjson",
            "--config",
            "platestream.toml",
            "--create-topic",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(
        published.contains(
            "notice: 1 of the upserts had already expired and will not match: stolen_vehicles/OLD-1"
        ),
        "{published}"
    );
    let shown = succeed(
        &["hotlist", "show", "--config", "platestream.toml"],
        dir.path(),
    );
    assert!(shown.contains("(gray toyota camry)"), "{shown}");
    assert!(
        shown.contains(
            "2 live entries on shown-hotlist-updates, and 1 expired that no longer match"
        ),
        "{shown}"
    );
}
