//! HTTP ingest end to end: vendors post to the real server, which produces to a real broker
//! (tansu); the engine then consumes the raw topic into the Parquet archive.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{archived_reads, create_topics, drain_topic};
use platestream::broker::TansuBroker;
use platestream::config::Config;
use platestream::readers::pipeline_for;
use platestream::serve::ingest_server;
use platestream_connectors::kafka::{StopWhen, StreamEngine, StreamOptions};
use platestream_engine::archive::ArchiveConfig;
use platestream_engine::images::ImageRef;
use platestream_engine::matcher::ExactMatcher;
use reqwest::{header, StatusCode};
use serde_json::Value;

const ACME_TOKEN: &str = "acme-webhook-token-0001";
const SNIFFED_TOKEN: &str = "sniffed-webhook-token-0002";
const VIEWER_TOKEN: &str = "officer-viewer-token-0003";
const BODY_LIMIT: usize = 256 * 1024;
const RAW_TOPIC: &str = "http-reads";

fn write_config(dir: &Path, bootstrap: &str) -> Config {
    let path = dir.join("platestream.toml");
    let images = dir.join("images");
    let archive = dir.join("archive");
    std::fs::write(
        &path,
        format!(
            r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "http-group"
raw_topics = ["{RAW_TOPIC}"]
raw_format = "canonical"
alerts_topic = "http-alerts"
dead_letter_topic = "http-dead-letter"
[kafka.consumer]
"session.timeout.ms" = "6000"
[kafka.producer]
# tansu serves fetches only from a batch's first offset (README, known limitations).
"batch.num.messages" = "1"

[archive]
dir = '{archive}'

[readers]
image_dir = '{images}'

[ingest]
listen = "127.0.0.1:0"
max_body_bytes = {BODY_LIMIT}
produce_timeout_ms = 2000
viewer_token = "{VIEWER_TOKEN}"

[ingest.vendors.acme]
format = "canonical"
token = "{ACME_TOKEN}"
topic = "{RAW_TOPIC}"

[ingest.vendors.sniffed]
format = "auto"
token = "{SNIFFED_TOKEN}"
topic = "{RAW_TOPIC}"
"#,
            archive = archive.display(),
            images = images.display(),
        ),
    )
    .unwrap();
    Config::load(&path).unwrap()
}

/// The server on a free loopback port, in its own runtime so blocking Kafka helpers can run on
/// the test thread meanwhile.
struct Server {
    runtime: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    fn start(config: &Config) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let bound = runtime
            .block_on(ingest_server(config).unwrap().bind())
            .unwrap();
        let base = format!("http://{}", bound.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            bound
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            runtime,
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap().to_vec();
            Reply {
                status,
                headers,
                body,
            }
        })
    }

    fn post(&self, vendor: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/ingest/{vendor}", self.base))
            .header(header::CONTENT_TYPE, "application/json")
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        if let Some(task) = self.task.take() {
            self.runtime.block_on(task).unwrap();
        }
    }
}

/// Puts a token into a request in one of the documented ways.
type Authorize = fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder;

struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn canonical_read(plate: &str, extra: &str) -> String {
    let observed = chrono::Utc::now() - chrono::Duration::seconds(30);
    format!(
        r#"{{"vendor":"acme","reader_id":"dc-http-1","observed_at":"{}","plate":"{plate}","jurisdiction":"US-VA","confidence":0.93,"lat":38.9,"lon":-77.03{extra}}}"#,
        observed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Enough of a JPEG for every sniffer: SOI, a JFIF APP0 segment, filler, EOI.
fn jpeg(fill: u8) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend(b"JFIF\0");
    bytes.extend(std::iter::repeat_n(fill, 700));
    bytes.extend([0xFF, 0xD9]);
    bytes
}

fn stored_image_path(image_dir: &Path, reference: &ImageRef) -> std::path::PathBuf {
    let hex = reference.hex();
    image_dir.join(&hex[..2]).join(format!("{hex}.jpg"))
}

#[test]
fn pushed_reads_reach_the_raw_topic_and_the_archive_and_bad_requests_get_reasons() {
    let started = Instant::now();
    let broker = TansuBroker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.bootstrap_servers());
    create_topics(&config.kafka, 1);
    let server = Server::start(&config);

    // Accepted, with the token in each of the four documented places.
    let mut accepted_bodies: Vec<String> = Vec::new();
    let token_styles: [(&str, Authorize); 4] = [
        ("HTTP001", |r| r.bearer_auth(ACME_TOKEN)),
        ("HTTP002", |r| {
            r.header(header::AUTHORIZATION, format!("Token {ACME_TOKEN}"))
        }),
        ("HTTP003", |r| r.header("X-Api-Key", ACME_TOKEN)),
        ("HTTP004", |r| r.query(&[("token", ACME_TOKEN)])),
    ];
    for (plate, authorize) in token_styles {
        let body = canonical_read(plate, "");
        let reply = server.send(authorize(server.post("acme")).body(body.clone()));
        assert_eq!(reply.status, StatusCode::OK, "{plate}: {:?}", reply.json());
        let answer = reply.json();
        assert_eq!(answer["status"], "accepted");
        assert_eq!(answer["topic"], RAW_TOPIC);
        assert_eq!(answer["reads"], 1);
        accepted_bodies.push(body);
    }
    // A vendor configured as `auto` gets its format sniffed.
    let sniffed_body = canonical_read("HTTP005", "");
    let reply = server.send(
        server
            .post("sniffed")
            .bearer_auth(SNIFFED_TOKEN)
            .body(sniffed_body.clone()),
    );
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    accepted_bodies.push(sniffed_body.clone());

    // Refused, each with its reason.
    let missing = server.send(server.post("acme").body(canonical_read("BAD001", "")));
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json()["error"], "missing_token");
    assert!(missing.headers.contains_key(header::WWW_AUTHENTICATE));
    let other_vendors_token = server.send(
        server
            .post("acme")
            .bearer_auth(SNIFFED_TOKEN)
            .body(canonical_read("BAD002", "")),
    );
    assert_eq!(other_vendors_token.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other_vendors_token.json()["error"], "wrong_token");
    let unknown_vendor = server.send(
        server
            .post("nobody")
            .bearer_auth(ACME_TOKEN)
            .body(canonical_read("BAD003", "")),
    );
    assert_eq!(unknown_vendor.status, StatusCode::NOT_FOUND);
    // A sender checking its webhook URL with GET, or posting to a wrong path, is told why.
    let wrong_method = server.send(server.get("/v1/ingest/acme").bearer_auth(ACME_TOKEN));
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json()["error"], "method_not_allowed");
    let wrong_path = server.send(server.get("/v1/ingest"));
    assert_eq!(wrong_path.status, StatusCode::NOT_FOUND);
    assert_eq!(wrong_path.json()["error"], "not_found");
    let malformed = server.send(
        server
            .post("acme")
            .bearer_auth(ACME_TOKEN)
            .body(r#"{"vendor":"acme","reader_id":"#),
    );
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let answer = malformed.json();
    assert_eq!(answer["error"], "malformed");
    assert!(
        answer["reason"].as_str().unwrap().contains("EOF"),
        "{answer}"
    );
    // `curl -d` labels any body a form: one that is no form gets the decoder's reason, and a
    // form without the `json` field says so.
    for (body, code) in [
        (&b""[..], "empty_message"),
        (&b"\xff\xfe"[..], "not_utf8"),
        (&b"plate=ABC123"[..], "missing_json_field"),
    ] {
        let reply = server.send(
            server
                .client
                .post(format!("{}/v1/ingest/acme", server.base))
                .bearer_auth(ACME_TOKEN)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.to_vec()),
        );
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert_eq!(reply.json()["error"], code, "{body:?}");
    }
    let without_plate = server.send(
        server
            .post("acme")
            .bearer_auth(ACME_TOKEN)
            .body(canonical_read("BAD004", "").replace(r#""plate":"BAD004","#, "")),
    );
    assert_eq!(without_plate.status, StatusCode::BAD_REQUEST);
    let answer = without_plate.json();
    assert!(
        answer["reason"].as_str().unwrap().contains("plate"),
        "{answer}"
    );
    let oversized = canonical_read("BAD005", &format!(r#","pad":"{}""#, "x".repeat(BODY_LIMIT)));
    let too_large = server.send(server.post("acme").bearer_auth(ACME_TOKEN).body(oversized));
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.json()["error"], "body_too_large");
    // The unread rest of the body ends the connection: the sender must not reuse it.
    assert_eq!(too_large.headers[header::CONNECTION], "close");

    // Plate Recognizer style: a form with the JSON in `json` and the frame as `upload`.
    let frame = jpeg(0x11);
    let frame_ref = ImageRef::of(&frame);
    let form = reqwest::multipart::Form::new()
        .text("json", canonical_read("HTTP006", ""))
        .part(
            "upload",
            reqwest::multipart::Part::bytes(frame.clone())
                .file_name("frame.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let reply = server.send(
        server
            .client
            .post(format!("{}/v1/ingest/acme", server.base))
            .header(header::AUTHORIZATION, format!("Token {ACME_TOKEN}"))
            .multipart(form),
    );
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.json()["images"][0], frame_ref.to_string().as_str());
    let image_dir = &config.readers.image_dir;
    assert_eq!(
        std::fs::read(stored_image_path(image_dir, &frame_ref)).unwrap(),
        frame
    );

    // An inline base64 plate crop leaves as a reference.
    let crop = jpeg(0x22);
    let crop_ref = ImageRef::of(&crop);
    let crop_base64 = base64::engine::general_purpose::STANDARD.encode(&crop);
    let inline_body = canonical_read(
        "HTTP007",
        &format!(r#","images":{{"plate_crop":"data:image/jpeg;base64,{crop_base64}"}}"#),
    );
    let reply = server.send(
        server
            .post("acme")
            .bearer_auth(ACME_TOKEN)
            .body(inline_body),
    );
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert!(stored_image_path(image_dir, &crop_ref).is_file());

    // The officer's client fetches the crop with the viewer token, and only with it.
    let image_path = format!("/v1/images/{crop_ref}");
    let image = server.send(server.get(&image_path).bearer_auth(VIEWER_TOKEN));
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.headers[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(image.body, crop);
    let with_vendor_token = server.send(server.get(&image_path).bearer_auth(ACME_TOKEN));
    assert_eq!(with_vendor_token.status, StatusCode::UNAUTHORIZED);
    let absent = ImageRef::of(b"never stored");
    let missing_image = server.send(
        server
            .get(&format!("/v1/images/{absent}"))
            .query(&[("token", VIEWER_TOKEN)]),
    );
    assert_eq!(missing_image.status, StatusCode::NOT_FOUND);
    let not_a_ref = server.send(server.get("/v1/images/cat.jpg").bearer_auth(VIEWER_TOKEN));
    assert_eq!(not_a_ref.status, StatusCode::BAD_REQUEST);
    assert_eq!(server.send(server.get("/healthz")).status, StatusCode::OK);

    // On the raw topic: exactly the accepted requests, JSON bodies byte for byte.
    let messages = drain_topic(
        &config.kafka.bootstrap_servers,
        RAW_TOPIC,
        Duration::from_secs(2),
    );
    assert_eq!(messages.len(), 7);
    // The first five were sent without images: nothing of them may change on the way.
    for (message, sent) in messages.iter().zip(&accepted_bodies) {
        assert_eq!(String::from_utf8_lossy(&message.payload), sent.as_str());
    }
    let vendors: Vec<&str> = messages
        .iter()
        .map(|message| message.headers["platestream-vendor"].as_str())
        .collect();
    assert_eq!(
        vendors,
        ["acme", "acme", "acme", "acme", "sniffed", "acme", "acme"]
    );
    let uploaded: Value = serde_json::from_slice(&messages[5].payload).unwrap();
    assert_eq!(uploaded["plate"], "HTTP006");
    assert_eq!(
        uploaded["platestream_image"],
        frame_ref.to_string().as_str()
    );
    let inline: Value = serde_json::from_slice(&messages[6].payload).unwrap();
    assert_eq!(
        inline["images"]["plate_crop"],
        crop_ref.to_string().as_str()
    );
    assert!(
        !String::from_utf8_lossy(&messages[6].payload).contains(&crop_base64[..64]),
        "no base64 travels into Kafka"
    );

    // The engine archives every accepted read; refused requests never reached the topic.
    let pipeline_config = config.clone();
    let mut pipeline = pipeline_for(
        &pipeline_config.kafka,
        &pipeline_config.readers,
        Arc::new(ExactMatcher::new(Vec::new())),
    )
    .unwrap();
    let engine = StreamEngine::new(
        config.kafka.clone(),
        Arc::new(ArchiveConfig::new(&config.archive.dir)),
        StreamOptions {
            segment_max_rows: 100,
            segment_max_age: Duration::from_millis(500),
            stop: StopWhen {
                idle: Some(Duration::from_secs(3)),
                ..StopWhen::default()
            },
            ..StreamOptions::default()
        },
    );
    let summary = engine.run(&mut pipeline, &mut ()).unwrap();
    assert_eq!(summary.counts.messages, 7);
    assert_eq!(summary.counts.dead_lettered, 0);
    let archived: BTreeSet<String> = archived_reads(&config.archive.dir)
        .into_iter()
        .map(|read| read.plate_norm)
        .collect();
    let expected: BTreeSet<String> = (1..=7).map(|n| format!("HTTP{n:03}")).collect();
    assert_eq!(archived, expected);

    // Kafka gone: the read is not acknowledged, and the vendor is told to retry.
    drop(broker);
    let asked = Instant::now();
    let unavailable = server.send(
        server
            .post("acme")
            .bearer_auth(ACME_TOKEN)
            .body(canonical_read("HTTP008", "")),
    );
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.headers[header::RETRY_AFTER], "5");
    assert_eq!(unavailable.json()["error"], "kafka_unavailable");
    assert!(
        // Not a speed check: librdkafka's default message timeout is five minutes, and the
        // vendor must hear back long before that. The margin absorbs a loaded CI machine.
        asked.elapsed() < Duration::from_secs(90),
        "a dead broker answers within produce_timeout_ms, not minutes ({:?})",
        asked.elapsed()
    );

    server.stop();
    eprintln!("http ingest test took {:?}", started.elapsed());
}

/// Each vendor's example webhooks (`schemas/examples/<format>/*.json`), posted as that vendor,
/// are archived exactly as their `.expected.json` says; the ones documented as refused get 400.
#[test]
fn every_vendors_example_webhooks_are_archived_as_documented() {
    const FORMATS: [&str; 4] = ["rekor", "plate_recognizer", "genetec", "axis"];
    let broker = TansuBroker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let images = dir.path().join("images");
    let topics: Vec<String> = FORMATS.iter().map(|f| format!("vendor-{f}")).collect();
    let mut toml = format!(
        r#"
[kafka]
bootstrap_servers = "{}"
group_id = "vendors-group"
raw_topics = [{}]
raw_format = "canonical"
alerts_topic = "vendors-alerts"
dead_letter_topic = "vendors-dead-letter"
[kafka.topic_formats]
{}
[kafka.consumer]
"session.timeout.ms" = "6000"
[kafka.producer]
"batch.num.messages" = "1"
[archive]
dir = '{}'
[readers]
image_dir = '{}'
timezone = "America/New_York"
dedupe_window_ms = 0
[ingest]
listen = "127.0.0.1:0"
"#,
        broker.bootstrap_servers(),
        topics
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        FORMATS
            .iter()
            .map(|f| format!("\"vendor-{f}\" = \"{f}\"\n"))
            .collect::<String>(),
        archive.display(),
        images.display(),
    );
    for format in FORMATS {
        toml.push_str(&format!(
            "[ingest.vendors.{format}]\nformat = \"{format}\"\ntoken = \"{format}-token-0123456789\"\ntopic = \"vendor-{format}\"\n"
        ));
    }
    // A vendor whose cameras keep Tokyo time, on a topic shared with New York's.
    toml.push_str(
        "[ingest.vendors.tokyo]\nformat = \"plate_recognizer\"\ntoken = \"tokyo-token-0123456789\"\ntopic = \"vendor-plate_recognizer\"\nreader_timezone = \"Asia/Tokyo\"\n",
    );
    let path = dir.path().join("platestream.toml");
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(&path).unwrap();
    let admin = platestream_connectors::kafka::KafkaSettings {
        raw_topics: topics.clone(),
        ..config.kafka.clone()
    };
    for topic in &topics {
        let mut one = admin.clone();
        one.raw_topics = vec![topic.clone()];
        create_topics(&one, 1);
    }
    let server = Server::start(&config);

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples");
    let mut expected_reads: Vec<Value> = Vec::new();
    let mut posted = 0;
    for format in FORMATS {
        let mut files: Vec<_> = std::fs::read_dir(examples.join(format))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                name.ends_with(".json") && !name.ends_with(".expected.json")
            })
            .collect();
        files.sort();
        for file in files {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let expected: Value = serde_json::from_str(
                &std::fs::read_to_string(file.with_file_name(format!("{stem}.expected.json")))
                    .unwrap(),
            )
            .unwrap();
            let reply = server.send(
                server
                    .post(format)
                    .bearer_auth(format!("{format}-token-0123456789"))
                    .body(std::fs::read(&file).unwrap()),
            );
            let name = file.display();
            if expected.get("error").is_some() {
                assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
                continue;
            }
            assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.json());
            posted += 1;
            if let Some(reads) = expected.as_array() {
                expected_reads.extend(reads.iter().cloned());
            }
        }
    }
    assert!(expected_reads.len() >= 10, "{}", expected_reads.len());
    // Its local 21:00 is 12:00 UTC, whatever `readers.timezone` says.
    let reply = server.send(
        server
            .post("tokyo")
            .bearer_auth("tokyo-token-0123456789")
            .body(r#"{"camera_id":"tokyo-cam","timestamp":"2026-11-27 21:00:00","results":[{"plate":"tky123","score":0.9,"dscore":0.9}]}"#),
    );
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    posted += 1;
    expected_reads.push(serde_json::json!({
        "plate_norm": "TKY123",
        "observed_at": "2026-11-27T12:00:00Z",
    }));
    // Two plates in one frame, the second unreadable: the vendor is told at once which read the
    // engine will refuse, and the first is archived.
    let reply = server.send(
        server
            .post("plate_recognizer")
            .bearer_auth("plate_recognizer-token-0123456789")
            .body(r#"{"camera_id":"cam-a","timestamp":"2026-11-27T10:00:00Z","results":[{"plate":"stol3n","score":0.95,"dscore":0.9},{"plate":"xy#12","score":0.6,"dscore":0.5}]}"#),
    );
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let answer = reply.json();
    assert_eq!(answer["reads"], 2, "{answer}");
    assert_eq!(
        answer["refused"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    assert_eq!(answer["refused"][0]["read"], 2, "{answer}");
    assert_eq!(
        answer["refused"][0]["error"], "implausible_plate_character",
        "{answer}"
    );
    posted += 1;
    expected_reads.push(serde_json::json!({
        "plate_norm": "STOL3N",
        "observed_at": "2026-11-27T10:00:00Z",
    }));

    let pipeline = pipeline_for(
        &config.kafka,
        &config.readers,
        Arc::new(ExactMatcher::new(Vec::new())),
    )
    .unwrap();
    let mut pipeline =
        platestream::readers::with_vendor_zones(pipeline, &config.ingest, &config.readers).unwrap();
    let engine = StreamEngine::new(
        config.kafka.clone(),
        Arc::new(ArchiveConfig::new(&config.archive.dir)),
        StreamOptions {
            stop: StopWhen {
                idle: Some(Duration::from_secs(3)),
                ..StopWhen::default()
            },
            ..StreamOptions::default()
        },
    );
    let summary = engine.run(&mut pipeline, &mut ()).unwrap();
    assert_eq!(summary.counts.messages, posted);
    assert_eq!(summary.counts.dead_lettered, 1, "the two-plate frame");
    assert_eq!(summary.counts.reads_refused, 1);
    let mut archived: Vec<(String, i64)> = archived_reads(&config.archive.dir)
        .into_iter()
        .map(|read| (read.plate_norm, read.observed_at))
        .collect();
    archived.sort();
    let mut expected: Vec<(String, i64)> = expected_reads
        .iter()
        .map(|read| {
            let observed =
                platestream_engine::Timestamp::parse_rfc3339(read["observed_at"].as_str().unwrap())
                    .unwrap();
            (
                read["plate_norm"].as_str().unwrap().to_owned(),
                observed.millis(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(archived, expected);
    server.stop();
}
