//! Several engines in one consumer group share the partitions (`[kafka] group_id`): as one stops
//! or joins, the partitions move between them, and the archive they share still holds every read
//! exactly once. Real `platestream run` processes on a real broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{archived_reads, create_topics, produce_all, EngineProcess};
use platestream::broker::TansuBroker;
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::Timestamp;

type Payloads = Vec<(Option<String>, Vec<u8>)>;

/// `count` canonical reads of a small city, with their read ids.
fn reads(simulator: &mut Simulator, count: usize, start_ms: i64) -> (Payloads, Vec<String>) {
    let mut payloads = Vec::new();
    let mut ids = Vec::new();
    for index in 0..count {
        let (read, truth) = simulator.next_read(Timestamp(start_ms + index as i64 * 10));
        ids.push(read.read_id.clone());
        payloads.push((Some(truth.true_plate), serde_json::to_vec(&read).unwrap()));
    }
    (payloads, ids)
}

/// Waits until the archive holds `count` reads.
fn wait_for_archive(archive: &Path, count: usize) {
    common::eventually(
        &format!("{count} reads archived"),
        Duration::from_secs(90),
        || (archived_reads(archive).len() >= count).then_some(()),
    );
}

fn topics(broker: &TansuBroker, name: &str) -> KafkaSettings {
    let settings = common::named_settings(broker, name);
    create_topics(&settings, 3);
    settings
}

/// Engines with these settings and no hotlist, as `file` in `dir`.
fn write_config(dir: &Path, file: &str, settings: &KafkaSettings, archive_extra: &str) {
    common::write_engine_config(dir, file, settings, archive_extra, "files = []");
}

/// The archive holds exactly the reads `expected`, each once.
fn assert_archive_is(archive: &Path, expected: &[String]) {
    let archived = archived_reads(archive);
    let unique: BTreeSet<&str> = archived.iter().map(|read| read.read_id.as_str()).collect();
    assert_eq!(unique.len(), archived.len(), "a read was archived twice");
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(
        unique, expected,
        "the archive differs from what was produced"
    );
}

#[test]
fn engines_sharing_a_group_hand_partitions_over_without_losing_or_duplicating_a_read() {
    let broker = TansuBroker::start().unwrap();
    let settings = topics(&broker, "scale");
    let dir = tempfile::tempdir().unwrap();
    // Both engines read the same settings; two names keep their logs apart.
    write_config(dir.path(), "platestream.toml", &settings, "");
    write_config(dir.path(), "second.toml", &settings, "");
    let archive = dir.path().join("archive");
    let topic = settings.raw_topics[0].clone();
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 5,
        vehicles: 3_000,
        misread_rate: 0.0,
        ..SimulatorConfig::default()
    });
    let start = Timestamp::now().millis() - 120_000;
    let mut expected = Vec::new();

    // Two engines share the three partitions.
    let first = EngineProcess::start(dir.path(), "platestream.toml");
    let second = EngineProcess::start(dir.path(), "second.toml");
    let (payloads, ids) = reads(&mut simulator, 1_500, start);
    produce_all(&settings, &topic, &payloads);
    expected.extend(ids);
    wait_for_archive(&archive, expected.len());

    // One is stopped (a deploy): the other takes its partitions over.
    assert!(first.stop().success());
    let (payloads, ids) = reads(&mut simulator, 1_500, start + 20_000);
    produce_all(&settings, &topic, &payloads);
    expected.extend(ids);
    wait_for_archive(&archive, expected.len());

    // It comes back while reads flow: the partitions are shared again.
    let first = EngineProcess::start(dir.path(), "platestream.toml");
    for chunk in 0..5 {
        let (payloads, ids) = reads(&mut simulator, 300, start + 40_000 + chunk * 3_000);
        produce_all(&settings, &topic, &payloads);
        expected.extend(ids);
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_for_archive(&archive, expected.len());
    assert!(first.stop().success());
    assert!(second.stop().success());

    let archived = archived_reads(&archive);
    let unique: BTreeSet<&str> = archived.iter().map(|read| read.read_id.as_str()).collect();
    assert_eq!(unique.len(), archived.len(), "a read was archived twice");
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(
        unique, expected,
        "the archive differs from what was produced"
    );
    for log in ["platestream.toml.log", "second.toml.log"] {
        let text = std::fs::read_to_string(dir.path().join(log)).unwrap();
        assert!(
            text.contains("partition assigned"),
            "{log}: this engine never had a partition"
        );
    }
}

/// A slow disk holds the engine back (backpressure) while a second engine joins and takes
/// partitions from it mid-backlog: both keep running, and the archive holds every read once.
#[test]
fn a_second_engine_joining_a_slow_one_mid_backlog_loses_and_duplicates_nothing() {
    let broker = TansuBroker::start().unwrap();
    let settings = topics(&broker, "slow");
    let dir = tempfile::tempdir().unwrap();
    // 400 ms per 1,000 rows: each second's segment takes about as long again to write.
    write_config(dir.path(), "first.toml", &settings, "slow_sink_ms = 400");
    write_config(dir.path(), "second.toml", &settings, "slow_sink_ms = 400");
    let archive = dir.path().join("archive");
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 9,
        vehicles: 3_000,
        misread_rate: 0.0,
        ..SimulatorConfig::default()
    });
    let (payloads, expected) = reads(&mut simulator, 9_000, Timestamp::now().millis() - 300_000);
    produce_all(&settings, &settings.raw_topics[0], &payloads);

    let mut first = EngineProcess::start(dir.path(), "first.toml");
    // Once the first engine is writing, a second joins and takes partitions from it.
    wait_for_archive(&archive, 1);
    let mut second = EngineProcess::start(dir.path(), "second.toml");
    wait_for_archive(&archive, expected.len());
    assert!(first.running(), "the first engine failed");
    assert!(second.running(), "the second engine failed");
    assert!(first.stop().success());
    assert!(second.stop().success());
    assert_archive_is(&archive, &expected);
}
