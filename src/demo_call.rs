//! The demo's 911 call: two thirds of the way in, the dispatcher asks what passed a reader's
//! corner in the last ten minutes, as `platestream query incident --engine` does from another
//! terminal, and sees the reads the engine has not archived yet beside the archive's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, TimestampMillisecondType};
use platestream_connectors::http::{SearchApi, SearchApiSettings, Token};
use platestream_engine::simulate::SimReader;
use platestream_engine::unarchived::UnarchivedReads;
use platestream_engine::Timestamp;

use crate::query::output::QueryResult;
use crate::query::session::{self, Pruning};
use crate::query::unarchived::{EngineApi, TOKEN_VARIABLE};
use crate::query::{incident_answer, IncidentSpec, ARCHIVE_REGISTRY_FILES};

/// How far back the dispatcher looks, and how far around the corner.
const WINDOW_MS: i64 = 10 * 60 * 1000;
const RADIUS_M: f64 = 500.0;

/// Serves the demo engine's unarchived reads on a free loopback port until `stop_flag` is set,
/// with a token made for this run.
pub async fn serve_api(
    unarchived: Arc<UnarchivedReads>,
    stop_flag: Arc<AtomicBool>,
) -> Result<EngineApi> {
    let token = format!("demo-{:032x}", rand::random::<u128>());
    let settings = SearchApiSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: Token(token.clone()),
        unarchived_max_reads: platestream_engine::unarchived::DEFAULT_MAX_READS,
    };
    let api = SearchApi::new(&settings, None, unarchived)
        .context("the demo's API")?
        .bind()
        .await
        .context("the demo's API")?;
    let address = api.local_addr();
    tokio::spawn(async move {
        let stopped = async move {
            while !stop_flag.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if let Err(error) = api.serve(stopped).await {
            tracing::warn!(%error, "the demo's API stopped");
        }
    });
    Ok(EngineApi {
        base: format!("http://{address}"),
        token: Some(token),
    })
}

/// The command a user types in another terminal to ask what the dispatcher asks.
pub fn query_command_line(engine: &EngineApi, data_dir: &Path, place: &SimReader) -> String {
    format!(
        "{TOKEN_VARIABLE}={} platestream query incident --engine {} --archive {} --lat {} --lon {} \
         --radius {RADIUS_M}m --at \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" --window 10m",
        engine.token.as_deref().unwrap_or_default(),
        engine.base.trim_start_matches("http://"),
        data_dir.display(),
        place.lat,
        place.lon
    )
}

/// Asks, as the dispatcher, and prints what a dispatcher would read off the screen.
pub async fn answer_call(data_dir: &Path, engine: &EngineApi, place: &SimReader) -> Result<()> {
    let started = Instant::now();
    let registry_path = data_dir.join(ARCHIVE_REGISTRY_FILES[0]);
    let registry = platestream_engine::registry::load(&registry_path)
        .with_context(|| format!("reading {}", registry_path.display()))?;
    let session = session::open(data_dir, &registry, Pruning::On, true, true).await?;
    let now_ms = Timestamp::now().millis();
    let spec = IncidentSpec {
        lat: place.lat,
        lon: place.lon,
        radius_m: RADIUS_M,
        from_ms: now_ms - WINDOW_MS,
        to_ms: now_ms + 1,
        ..IncidentSpec::default()
    };
    let answer = incident_answer(&session, &spec, std::slice::from_ref(engine), true).await?;
    let elapsed = started.elapsed();
    let from_engine = answer.from_engines.map_or_else(
        || "none from the engine, which did not answer".to_owned(),
        |count| format!("{count} of them not yet archived, from the engine's API"),
    );
    println!(
        "\n[dispatcher] 911 call at {} ({}, {}): {} reads within {RADIUS_M} m in the last 10 \
         minutes ({from_engine}), answered in {} ms",
        place.name,
        place.lat,
        place.lon,
        answer.reads.rows(),
        elapsed.as_millis()
    );
    if let Some(latest) = latest_read(&answer.reads) {
        println!("[dispatcher] latest: {latest}");
    }
    println!(
        "[dispatcher] within {RADIUS_M} m: {}",
        sources_by_footage(&answer.sources)
    );
    for notice in &answer.notices {
        tracing::debug!(%notice, "the demo's incident query");
    }
    println!();
    Ok(())
}

fn string_at(result: &QueryResult, column: &str, batch: usize, row: usize) -> Option<String> {
    let array = result.batches.get(batch)?.column_by_name(column)?;
    if array.is_null(row) {
        return None;
    }
    let text = arrow::util::display::array_value_to_string(array, row).ok()?;
    (!text.is_empty()).then_some(text)
}

/// The most recent read of the answer, as one line.
fn latest_read(reads: &QueryResult) -> Option<String> {
    let mut latest: Option<(i64, usize, usize)> = None;
    for (batch_index, batch) in reads.batches.iter().enumerate() {
        let observed = batch
            .column_by_name("observed_at")?
            .as_primitive_opt::<TimestampMillisecondType>()?;
        for row in 0..batch.num_rows() {
            let at = observed.value(row);
            if latest.is_none_or(|(best, _, _)| at > best) {
                latest = Some((at, batch_index, row));
            }
        }
    }
    let (at, batch, row) = latest?;
    let field = |column: &str| string_at(reads, column, batch, row);
    let distance = reads.batches[batch]
        .column_by_name("distance_m")?
        .as_primitive_opt::<Float64Type>()?
        .value(row);
    let vehicle: Vec<String> = ["color", "make", "model"]
        .iter()
        .filter_map(|column| field(column))
        .collect();
    let travelling = field("direction").map_or(String::new(), |direction| {
        format!(", travelling {direction}")
    });
    Some(format!(
        "{} [{}] {} at {} ({distance:.0} m away){travelling}, {} s ago",
        field("plate").unwrap_or_default(),
        field("jurisdiction").unwrap_or_else(|| "state unknown".to_owned()),
        if vehicle.is_empty() {
            "vehicle not classified".to_owned()
        } else {
            vehicle.join(" ")
        },
        field("reader_id").unwrap_or_default(),
        ((Timestamp::now().millis() - at) / 1000).max(0)
    ))
}

/// "1 fixed-reader: reads in the archive; 2 private-registered-camera: request from the owner ..."
fn sources_by_footage(sources: &QueryResult) -> String {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (index, batch) in sources.batches.iter().enumerate() {
        for row in 0..batch.num_rows() {
            let kind = string_at(sources, "kind", index, row).unwrap_or_default();
            let footage = string_at(sources, "footage", index, row).unwrap_or_default();
            *counts.entry((kind, footage)).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return "no registered reader or camera".to_owned();
    }
    counts
        .iter()
        .map(|((kind, footage), count)| format!("{count} {kind}: {footage}"))
        .collect::<Vec<_>>()
        .join("; ")
}
