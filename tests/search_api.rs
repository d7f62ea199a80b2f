//! The running engine's search API (`[api]`): `platestream run` against a real broker (tansu),
//! reads with appearance embeddings produced to it, then real HTTP searches of its live index.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_topics, produce_all};
use platestream::broker::TansuBroker;
use platestream_connectors::kafka::KafkaSettings;
use platestream_engine::simulate::{Simulator, SimulatorConfig};
use platestream_engine::Timestamp;
use reqwest::StatusCode;
use serde_json::{json, Value};

const TOKEN: &str = "search-token-for-tests-0001";
const DIM: usize = 32;

/// The engine process; killed when the test ends, pass or fail.
struct Engine(Child);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    fn search(&self, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let request = self
            .client
            .post(format!("{}/v1/search/appearance", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        answer_of(request, token)
    }

    fn ok(&self, body: Value) -> Value {
        let (status, answer) = self.search(Some(TOKEN), &body.to_string());
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    fn refused(&self, body: &str, status: StatusCode, code: &str) {
        let (found, answer) = self.search(Some(TOKEN), body);
        assert_eq!(found, status, "{body}: {answer}");
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert!(!answer["reason"].as_str().unwrap().is_empty());
    }
}

fn hit_ids(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["read"]["read_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_running_engine_answers_appearance_searches_of_its_recent_reads() {
    let broker = TansuBroker::start().unwrap();
    let mut settings = KafkaSettings::new(broker.bootstrap_servers());
    settings.raw_topics = vec!["search-reads".into()];
    settings.alerts_topic = "search-alerts".into();
    settings.covert_alerts_topic = "search-alerts-covert".into();
    settings.dead_letter_topic = "search-dead-letter".into();
    create_topics(&settings, 2);

    // 1,500 reads of 60 vehicles over the last 25 minutes, each with its vehicle's appearance
    // plus noise.
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 5,
        vehicles: 60,
        embedding_dim: DIM,
        ..SimulatorConfig::default()
    });
    // They must all fall in one day, the one slice configured below: across midnight UTC the new
    // day's slice stays short of its training size while it is the newest, its reads wait
    // unindexed, and the wait below never ends (it failed so in a run at 00:09 UTC).
    const DAY_MS: i64 = 86_400_000;
    const SPAN_MS: i64 = 1500 * 1000;
    let mut start = Timestamp::now().millis() - 25 * 60_000;
    if start / DAY_MS != (start + SPAN_MS) / DAY_MS {
        start = (start + SPAN_MS) / DAY_MS * DAY_MS - SPAN_MS - 1000;
    }
    let mut payloads = Vec::new();
    let mut vehicle_of: HashMap<String, u32> = HashMap::new();
    let mut reads = Vec::new();
    for index in 0..1500_i64 {
        let (read, truth) = simulator.next_read(Timestamp(start + index * 1000));
        vehicle_of.insert(read.read_id.clone(), truth.vehicle_id);
        payloads.push((
            Some(truth.true_plate.clone()),
            serde_json::to_vec(&read).unwrap(),
        ));
        reads.push(read);
    }
    produce_all(&settings, "search-reads", &payloads);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        r#"
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "search-api-test"
raw_topics = ["search-reads"]
alerts_topic = "search-alerts"
covert_alerts_topic = "search-alerts-covert"
dead_letter_topic = "search-dead-letter"

[archive]
dir = "archive"

[readers]
image_dir = "images"
dedupe_window_ms = 0

[appearance]
dim = {DIM}
# One slice, trained once it holds 1,024 reads: searches go through its lists.
slice_secs = 86400
expected_points_per_slice = 1000

[api]
listen = "127.0.0.1:{port}"
token = "{TOKEN}"
"#,
        bootstrap = broker.bootstrap_servers()
    );
    std::fs::write(dir.path().join("platestream.toml"), config).unwrap();
    let _engine = Engine(
        Command::new(env!("CARGO_BIN_EXE_platestream"))
            .args(["run", "--config", "platestream.toml"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::blocking::Client::new(),
    };

    // Without the token, nothing, not even whether a read is known.
    let deadline = Instant::now() + Duration::from_secs(60);
    let probe = json!({ "read_id": reads[0].read_id }).to_string();
    loop {
        match api
            .client
            .post(format!("{}/v1/search/appearance", api.base))
            .body(probe.clone())
            .send()
        {
            Ok(response) => {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                break;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(error) => panic!("the search API never answered: {error}"),
        }
    }
    let (status, answer) = api.search(Some("not-the-token-at-all"), &probe);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"], "wrong_token");

    // Wait until the engine has consumed every read and filed it in its lists.
    let everything = json!({ "vector": vec![1.0_f32; DIM], "k": 1 });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = api.ok(everything.clone());
        let held = answer["indexed_reads"].as_u64().unwrap();
        if held == reads.len() as u64 && answer["unindexed_reads"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the index holds {held} of {} reads",
            reads.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A read's own appearance: the nearest reads are the same vehicle's, most similar first,
    // and the read itself is left out.
    let target = &reads[700];
    let vehicle = vehicle_of[&target.read_id];
    let same_vehicle = vehicle_of.values().filter(|&&v| v == vehicle).count();
    let k = 10.min(same_vehicle - 1);
    let answer = api.ok(json!({ "read_id": target.read_id, "k": k }));
    let ids = hit_ids(&answer);
    assert_eq!(ids.len(), k);
    assert!(!ids.contains(&target.read_id));
    for id in &ids {
        assert_eq!(vehicle_of[id], vehicle, "{id} is another vehicle: {answer}");
    }
    let similarities: Vec<f64> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["similarity"].as_f64().unwrap())
        .collect();
    assert!(similarities.windows(2).all(|pair| pair[0] >= pair[1]));

    // The same by vector, limited to the last 10 minutes: only reads observed then.
    let vector = target.embedding.clone().unwrap();
    let from = Timestamp(start + 15 * 60_000);
    let answer = api.ok(json!({ "vector": vector, "k": 50, "from": from.to_string() }));
    let ids = hit_ids(&answer);
    assert!(!ids.is_empty());
    let recent: HashSet<&str> = reads
        .iter()
        .filter(|read| read.observed_at >= from)
        .map(|read| read.read_id.as_str())
        .collect();
    assert!(
        ids.iter().all(|id| recent.contains(id.as_str())),
        "{answer}"
    );

    // An area the readers are nowhere near: nothing.
    let answer = api.ok(json!({
        "vector": vector, "near": { "lat": 47.6, "lon": -122.3, "radius_m": 2000 }
    }));
    assert_eq!(answer["hits"], json!([]));

    // Bad searches get a 4xx with a reason.
    api.refused("{", StatusCode::BAD_REQUEST, "malformed_body");
    api.refused("{}", StatusCode::BAD_REQUEST, "nothing_to_search_for");
    api.refused(
        &json!({ "vector": [1.0, 2.0] }).to_string(),
        StatusCode::BAD_REQUEST,
        "wrong_dimension",
    );
    api.refused(
        &json!({ "vector": vec![0.0_f32; DIM] }).to_string(),
        StatusCode::BAD_REQUEST,
        "zero_vector",
    );
    api.refused(
        &json!({ "read_id": target.read_id, "vector": vector }).to_string(),
        StatusCode::BAD_REQUEST,
        "vector_and_read_id",
    );
    api.refused(
        &json!({ "read_id": target.read_id, "k": 0 }).to_string(),
        StatusCode::BAD_REQUEST,
        "bad_k",
    );
    api.refused(
        &json!({ "read_id": target.read_id, "from": "yesterday" }).to_string(),
        StatusCode::BAD_REQUEST,
        "bad_time",
    );
    api.refused(
        &json!({
            "read_id": target.read_id,
            "from": "2026-11-24T18:00:00Z", "to": "2026-11-24T17:00:00Z"
        })
        .to_string(),
        StatusCode::BAD_REQUEST,
        "empty_range",
    );
    api.refused(
        &json!({ "read_id": target.read_id, "near": { "lat": 95, "lon": 0, "radius_m": 10 } })
            .to_string(),
        StatusCode::BAD_REQUEST,
        "bad_area",
    );
    api.refused(
        &json!({ "read_id": "no-such-read" }).to_string(),
        StatusCode::NOT_FOUND,
        "unknown_read",
    );
}

fn get_unarchived(
    client: &reqwest::blocking::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
) -> (StatusCode, Value) {
    answer_of(
        client.get(format!("{base}/v1/reads/unarchived?{query}")),
        token,
    )
}

/// Sends the request (with the token, if any) and takes its status and JSON body.
fn answer_of(
    mut request: reqwest::blocking::RequestBuilder,
    token: Option<&str>,
) -> (StatusCode, Value) {
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

/// The `read_id`s of an array of reads (or rows), sorted.
fn sorted_read_ids(reads: &Value) -> Vec<String> {
    let mut ids: Vec<String> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|read| read["read_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn incident_ids(output: &str) -> Vec<String> {
    let answer: Value = serde_json::from_str(output).unwrap();
    sorted_read_ids(&answer["reads"])
}

/// A dispatcher asks right after a call: the reads of the last minutes are still in the engine's
/// open segments (here for 10 minutes), and `query incident` gets them from the engine's API.
#[test]
fn an_incident_of_the_last_minutes_includes_the_reads_the_engine_has_not_archived() {
    let broker = TansuBroker::start().unwrap();
    let settings = common::named_settings(&broker, "unarchived");
    create_topics(&settings, 2);
    let mut simulator = Simulator::new(SimulatorConfig {
        seed: 11,
        vehicles: 200,
        ..SimulatorConfig::default()
    });
    // 400 reads over the last 4 minutes.
    let start = Timestamp::now().millis() - 4 * 60_000;
    let mut payloads = Vec::new();
    let mut reads = Vec::new();
    for index in 0..400_i64 {
        let (read, truth) = simulator.next_read(Timestamp(start + index * 600));
        payloads.push((Some(truth.true_plate), serde_json::to_vec(&read).unwrap()));
        reads.push(read);
    }
    produce_all(&settings, &settings.raw_topics[0], &payloads);

    // The place of the incident: the busiest reader, 500 m around it, the last 10 minutes.
    let mut reads_per_reader: HashMap<&str, usize> = HashMap::new();
    for read in &reads {
        *reads_per_reader.entry(read.reader_id.as_str()).or_default() += 1;
    }
    let busiest = reads_per_reader
        .iter()
        .max_by_key(|(reader, count)| (**count, *reader))
        .map(|(reader, _)| *reader)
        .unwrap();
    let place = reads.iter().find(|read| read.reader_id == busiest).unwrap();
    let (lat, lon) = (place.lat.unwrap(), place.lon.unwrap());
    let (from, to) = (
        Timestamp(start - 6 * 60_000),
        Timestamp(Timestamp::now().millis() + 60_000),
    );
    let mut expected: Vec<String> = reads
        .iter()
        .filter(|read| {
            platestream_engine::description::haversine_m(
                lat,
                lon,
                read.lat.unwrap(),
                read.lon.unwrap(),
            ) <= 500.0
        })
        .map(|read| read.read_id.clone())
        .collect();
    expected.sort();
    assert!(
        expected.len() >= 5 && expected.len() < reads.len(),
        "{} reads near {busiest}",
        expected.len()
    );

    let dir = tempfile::tempdir().unwrap();

    let port = free_port();
    let api_section =
        |port: u16| format!("[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n");
    // Segments of 10 minutes: nothing is archived while the engine runs.
    let write_config = |dir: &std::path::Path, settings: &KafkaSettings, port: u16| {
        common::write_engine_config(dir, "platestream.toml", settings, "", "files = []");
        let config = std::fs::read_to_string(dir.join("platestream.toml"))
            .unwrap()
            .replacen(
                "segment_max_age_secs = 1\n",
                "segment_max_age_secs = 600\n",
                1,
            )
            + &api_section(port);
        std::fs::write(dir.join("platestream.toml"), config).unwrap();
    };
    write_config(dir.path(), &settings, port);
    let engine = common::EngineProcess::start(dir.path(), "platestream.toml");

    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let holds_every_read = |base: &str| {
        let response = client
            .get(format!("{base}/v1/reads/unarchived"))
            .bearer_auth(TOKEN)
            .send()
            .ok()?;
        let answer: Value = serde_json::from_str(&response.text().ok()?).ok()?;
        (answer["held_reads"] == reads.len()).then_some(())
    };
    common::eventually(
        "the engine holds every read",
        Duration::from_secs(90),
        || holds_every_read(&base),
    );

    // The API: a token, a whole circle and a real range, or a reason.
    let (status, _) = get_unarchived(&client, &base, None, "");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (query, code) in [
        ("lat=95&lon=-77&radius_m=500", "bad_area"),
        ("lat=38.9&lon=-77", "partial_area"),
        (
            "from=2026-11-24T12:00:00Z&to=2026-11-24T11:00:00Z",
            "empty_range",
        ),
        ("from=yesterday", "bad_time"),
        ("radius=5", "malformed_query"),
        ("plate=A*", "bad_plate"),
        ("plate=AB%23C", "bad_plate"),
        ("reader=", "empty_reader"),
        ("misreads=true", "misreads_need_a_plate"),
        ("plate=AB%3F1*&misreads=true", "misreads_need_a_plate"),
    ] {
        let (status, answer) = get_unarchived(&client, &base, Some(TOKEN), query);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error"], code, "{query}: {answer}");
    }
    let (status, answer) = get_unarchived(
        &client,
        &base,
        Some(TOKEN),
        &format!("lat={lat}&lon={lon}&radius_m=500&from={from}&to={to}"),
    );
    assert_eq!(status, StatusCode::OK);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("schemas/unarchived-reads-response.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut documented: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field.as_str().unwrap())
        .collect();
    let mut answered: Vec<&str> = answer
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort_unstable();
    answered.sort_unstable();
    assert_eq!(answered, documented);
    assert_eq!(answer["missing_reads"], 0);
    assert_eq!(sorted_read_ids(&answer["reads"]), expected);
    // Requests for what the API does not serve get JSON reasons too.
    for (request, status, code) in [
        (
            client.get(format!("{base}/v1/search/appearance")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            client.get(format!("{base}/v1/nothing")),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            client
                .post(format!("{base}/v1/search/appearance"))
                .body(vec![b' '; (1 << 20) + 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ] {
        let (answered, answer) = answer_of(request, Some(TOKEN));
        assert_eq!(answered, status, "{answer}");
        assert_eq!(answer["error"], code, "{answer}");
    }
    let (status, answer) =
        get_unarchived(&client, &base, Some(TOKEN), &format!("reader={busiest}"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer["reads"].as_array().unwrap().len(),
        reads_per_reader[busiest]
    );
    assert!(answer["reads"]
        .as_array()
        .unwrap()
        .iter()
        .all(|read| read["reader_id"] == busiest));
    // No appearance index is configured: the search says so instead of failing obscurely.
    let (status, answer) = Api {
        base: base.clone(),
        client: client.clone(),
    }
    .search(Some(TOKEN), r#"{"vector": [1.0], "k": 1}"#);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"], "no_appearance_index");

    // The dispatcher's query: the archive holds nothing yet, the engine everything.
    let incident = |extra: &[&str]| {
        let (lat, lon, from, to) = (
            lat.to_string(),
            lon.to_string(),
            from.to_string(),
            to.to_string(),
        );
        let mut args = vec![
            "query",
            "incident",
            "--config",
            "platestream.toml",
            "--lat",
            &lat,
            "--lon",
            &lon,
            "--radius",
            "500m",
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        common::platestream(&args, dir.path())
    };
    let live = incident(&[]);
    assert!(live.status.success(), "{}", common::text(&live.stderr));
    assert_eq!(incident_ids(&common::text(&live.stdout)), expected);
    let notes = common::text(&live.stderr);
    assert!(
        notes.contains(&format!(
            "{} read(s) not yet archived came from the engine",
            expected.len()
        )),
        "{notes}"
    );

    // A plate seen a minute ago: its reads come from the engine too, exact or as a pattern.
    let plate_norm = |read: &platestream_engine::PlateRead| {
        platestream_engine::normalize::normalize_plate(&read.plate).unwrap()
    };
    let target = &reads[reads.len() - 10];
    let target_norm = plate_norm(target);
    let mut of_plate: Vec<String> = reads
        .iter()
        .filter(|read| plate_norm(read) == target_norm)
        .map(|read| read.read_id.clone())
        .collect();
    of_plate.sort();
    let pattern = format!("{}*", &target_norm[..3]);
    let of_pattern = reads
        .iter()
        .filter(|read| plate_norm(read).starts_with(&target_norm[..3]))
        .count();
    for (plate, expected_count) in [
        (target.plate.as_str(), of_plate.len()),
        (&pattern, of_pattern),
    ] {
        let output = common::platestream(
            &[
                "query",
                "plate",
                plate,
                "--config",
                "platestream.toml",
                "--format",
                "json",
            ],
            dir.path(),
        );
        assert!(output.status.success(), "{}", common::text(&output.stderr));
        let rows: Value = serde_json::from_str(&common::text(&output.stdout)).unwrap();
        let ids = sorted_read_ids(&rows);
        assert_eq!(ids.len(), expected_count, "{plate}: {ids:?}");
        if plate == target.plate {
            assert_eq!(ids, of_plate);
        }
        assert!(
            common::text(&output.stderr).contains("came from the engine"),
            "{}",
            common::text(&output.stderr)
        );
    }
    // A vehicle one of whose reads OCR garbled: `plate --misreads` of its true plate finds it.
    let garbled_plate = payloads
        .iter()
        .zip(&reads)
        .find_map(|((truth, _), read)| {
            let truth = truth.as_deref()?;
            (plate_norm(read) != truth
                && platestream_engine::misread::misread_difference(truth, &plate_norm(read))
                    .is_some())
            .then(|| truth.to_owned())
        })
        .expect("the simulator garbled no plate into a misread");
    let investigations = Investigations {
        reads: &reads,
        target: &target_norm,
        garbled_plate: &garbled_plate,
        reader: busiest,
        place: (lat, lon),
        from,
        to,
    };
    investigations.check(dir.path(), &[], "came from the engine");

    // Once stopped, the engine has archived them: the same answer from the archive alone,
    // and the query says the engine did not answer.
    assert!(engine.stop().success());
    let archived = incident(&[]);
    assert!(
        archived.status.success(),
        "{}",
        common::text(&archived.stderr)
    );
    assert_eq!(incident_ids(&common::text(&archived.stdout)), expected);
    assert!(
        common::text(&archived.stderr).contains("did not answer"),
        "{}",
        common::text(&archived.stderr)
    );
    investigations.check(dir.path(), &[], "did not answer");

    // A second engine (another group and archive) holds the same reads unarchived while the
    // first archive has them: each read is listed once.
    let second = tempfile::tempdir().unwrap();
    let second_port = free_port();
    let mut second_settings = settings.clone();
    second_settings.group_id = "unarchived-second".into();
    write_config(second.path(), &second_settings, second_port);
    let _second_engine = common::EngineProcess::start(second.path(), "platestream.toml");
    let second_base = format!("127.0.0.1:{second_port}");
    common::eventually(
        "the second engine holds every read",
        Duration::from_secs(90),
        || holds_every_read(&format!("http://{second_base}")),
    );
    let both = incident(&["--engine", &second_base]);
    assert!(both.status.success(), "{}", common::text(&both.stderr));
    assert_eq!(incident_ids(&common::text(&both.stdout)), expected);
    investigations.check(
        dir.path(),
        &["--engine", &second_base],
        "(it holds 400 unarchived)",
    );
}

/// The other investigations of the last minutes, answered from what the test produced: a
/// stakeout of one place, how often a plate and a reader were read, and the target's convoy.
struct Investigations<'a> {
    reads: &'a [platestream_engine::PlateRead],
    target: &'a str,
    garbled_plate: &'a str,
    reader: &'a str,
    place: (f64, f64),
    from: Timestamp,
    to: Timestamp,
}

impl Investigations<'_> {
    /// Runs each with `extra` flags and checks its rows, and that its notes mention `note`.
    fn check(&self, dir: &std::path::Path, extra: &[&str], note: &str) {
        let plate_norm = |read: &platestream_engine::PlateRead| {
            platestream_engine::normalize::normalize_plate(&read.plate).unwrap()
        };
        let query = |args: &[&str]| -> Vec<Value> {
            let (from, to) = (self.from.to_string(), self.to.to_string());
            let mut all = vec!["query"];
            all.extend_from_slice(args);
            all.extend_from_slice(&[
                "--config",
                "platestream.toml",
                "--from",
                &from,
                "--to",
                &to,
                "--format",
                "json",
            ]);
            all.extend_from_slice(extra);
            let output = common::platestream(&all, dir);
            let notes = common::text(&output.stderr);
            assert!(output.status.success(), "{args:?}: {notes}");
            assert!(notes.contains(note), "{args:?}: {notes}");
            serde_json::from_str(&common::text(&output.stdout)).unwrap()
        };
        let total_reads =
            |rows: &[Value]| -> u64 { rows.iter().map(|row| row["reads"].as_u64().unwrap()).sum() };

        let misreads = query(&["plate", self.garbled_plate, "--misreads"]);
        let mut expected: Vec<String> = self
            .reads
            .iter()
            .filter(|read| {
                platestream_engine::misread::misread_difference(
                    self.garbled_plate,
                    &plate_norm(read),
                )
                .is_some()
            })
            .map(|read| read.read_id.clone())
            .collect();
        expected.sort();
        assert!(expected.len() >= 2, "{expected:?}");
        assert_eq!(sorted_read_ids(&Value::from(misreads)), expected);

        let frequency = query(&["frequency", "--reader", self.reader, "--by", "hour"]);
        let of_reader = self.reads.iter().filter(|r| r.reader_id == self.reader);
        assert_eq!(total_reads(&frequency), of_reader.count() as u64);
        let frequency = query(&["frequency", "--plate", self.target, "--by", "day"]);
        let of_target: Vec<&platestream_engine::PlateRead> = self
            .reads
            .iter()
            .filter(|read| plate_norm(read) == self.target)
            .collect();
        assert_eq!(total_reads(&frequency), of_target.len() as u64);

        let (lat, lon) = self.place;
        let place = format!("{lat},{lon},500m,{},{}", self.from, self.to);
        let stakeout = query(&["stakeout", "--place", &place]);
        let mut seen: Vec<(String, u64)> = stakeout
            .iter()
            .map(|row| {
                let plate = row["plate_norm"].as_str().unwrap().to_owned();
                (plate, row["reads"].as_u64().unwrap())
            })
            .collect();
        seen.sort();
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for read in self.reads {
            let distance = platestream_engine::description::haversine_m(
                lat,
                lon,
                read.lat.unwrap(),
                read.lon.unwrap(),
            );
            if distance <= 500.0 {
                *expected.entry(plate_norm(read)).or_default() += 1;
            }
        }
        assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());

        let convoy = query(&[
            "convoy",
            "--plate",
            self.target,
            "--window",
            "2m",
            "--min-readers",
            "1",
        ]);
        let mut together: Vec<String> = convoy
            .iter()
            .map(|row| row["plate_norm"].as_str().unwrap().to_owned())
            .collect();
        together.sort();
        let window_ms = 2 * 60_000;
        let expected: BTreeSet<String> = self
            .reads
            .iter()
            .filter(|read| {
                plate_norm(read) != self.target
                    && of_target.iter().any(|target| {
                        target.reader_id == read.reader_id
                            && (target.observed_at.millis() - read.observed_at.millis()).abs()
                                <= window_ms
                    })
            })
            .map(plate_norm)
            .collect();
        assert!(!expected.is_empty(), "the target passed no other vehicle");
        assert_eq!(together, expected.into_iter().collect::<Vec<_>>());
    }
}
