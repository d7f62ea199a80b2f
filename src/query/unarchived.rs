//! Reads a running engine has consumed but not yet archived, added to answers about the last
//! minutes: a dispatcher asking right after a 911 call must not miss the last half minute.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, StringBuilder};
use arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use platestream_connectors::http::{fetch_unarchived, SearchApiSettings};
use platestream_engine::archive::{ReadColumns, TableColumns};
use platestream_engine::unarchived::UnarchivedQuery;
use platestream_engine::{PlateRead, Timestamp};

use super::session::{reads_schema_with_partitions, ArchiveSession};
use super::sql::{is_open_bound, partition_of};

/// The table a query unions with `reads` for the engine's unarchived reads.
pub const UNARCHIVED_TABLE: &str = "unarchived_reads";
/// The token `query` presents to an engine named by --engine (or when the config has none).
pub const TOKEN_VARIABLE: &str = "PLATESTREAM_API_TOKEN";
/// An engine that has not answered by then is reported and left out, not waited for.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running engine's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineApi {
    pub base: String,
    pub token: Option<String>,
}

/// The engines to ask: those given with --engine, else the one of the config's `[api]`.
pub fn engines_to_ask(explicit: &[String], api: Option<&SearchApiSettings>) -> Vec<EngineApi> {
    let token_from_env = std::env::var(TOKEN_VARIABLE)
        .ok()
        .filter(|token| !token.is_empty());
    let configured_token = api.map(|api| api.token.as_str().to_owned());
    if !explicit.is_empty() {
        return explicit
            .iter()
            .map(|address| EngineApi {
                base: if address.contains("://") {
                    address.clone()
                } else {
                    format!("http://{address}")
                },
                token: token_from_env.clone().or_else(|| configured_token.clone()),
            })
            .collect();
    }
    api.map(|api| {
        let mut listen = api.listen;
        // An engine listening on every interface is reached on loopback from its own host.
        if listen.ip().is_unspecified() {
            listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        EngineApi {
            base: format!("http://{listen}"),
            token: configured_token.or(token_from_env),
        }
    })
    .into_iter()
    .collect()
}

/// What the engines answered so far, and what a user should be told about it. A query that asks
/// in rounds (convoy: the target's passes, then the other vehicles at its readers) keeps one.
#[derive(Debug, Default)]
pub struct Unarchived {
    /// Each read once, whichever engines and questions returned it.
    pub reads: Vec<PlateRead>,
    read_ids: HashSet<String>,
    /// At least one engine answered.
    pub answered: bool,
    /// Engines that did not answer: not asked again by a later round.
    unreachable: HashSet<String>,
    pub notices: Vec<String>,
}

impl Unarchived {
    /// Asks every engine every question, keeps the reads not already kept and registers them all
    /// as [`UNARCHIVED_TABLE`]; says on stderr what the engines answered.
    pub async fn ask(
        &mut self,
        session: &ArchiveSession,
        engines: &[EngineApi],
        queries: &[UnarchivedQuery],
    ) -> Result<()> {
        let notices_before = self.notices.len();
        self.ask_quietly(engines, queries).await;
        for notice in &self.notices[notices_before..] {
            eprintln!("{notice}");
        }
        register(session, &self.reads)
    }

    async fn ask_quietly(&mut self, engines: &[EngineApi], queries: &[UnarchivedQuery]) {
        for engine in engines {
            if self.unreachable.contains(&engine.base) {
                continue;
            }
            let Some(token) = &engine.token else {
                self.notices.push(format!(
                    "not asking the engine at {} for its unarchived reads: no token ([api] token \
                     in --config, or {TOKEN_VARIABLE})",
                    engine.base
                ));
                self.unreachable.insert(engine.base.clone());
                continue;
            };
            let (mut added, mut held, mut missing) = (0, 0, 0);
            for query in queries {
                match fetch_unarchived(&engine.base, token, query, ENGINE_TIMEOUT).await {
                    Ok(answer) => {
                        self.answered = true;
                        held = held.max(answer.held_reads);
                        missing = missing.max(answer.missing_reads);
                        for read in answer.reads {
                            if self.read_ids.insert(read.read_id.clone()) {
                                self.reads.push(read);
                                added += 1;
                            }
                        }
                    }
                    Err(error) => {
                        self.notices.push(format!(
                            "{error}: the reads it has not archived yet are not in this answer"
                        ));
                        self.unreachable.insert(engine.base.clone());
                        break;
                    }
                }
            }
            if self.unreachable.contains(&engine.base) {
                continue;
            }
            self.notices.push(format!(
                "{added} read(s) not yet archived came from the engine at {} (it holds {held} \
                 unarchived)",
                engine.base
            ));
            if missing > 0 {
                self.notices.push(format!(
                    "the engine at {} let {missing} unarchived read(s) go for room ([api] \
                     unarchived_max_reads): they are in this answer only once archived",
                    engine.base
                ));
            }
        }
    }

    /// How many reads came from engines; `None` when none answered (the archive alone answers).
    pub fn count(&self) -> Option<usize> {
        self.answered.then_some(self.reads.len())
    }
}

/// Asks the engines every question and registers what they hold as [`UNARCHIVED_TABLE`]. The
/// count of their reads is `None` when none answered (the query then reads the archive alone).
pub async fn ask_engines(
    session: &ArchiveSession,
    engines: &[EngineApi],
    queries: &[UnarchivedQuery],
) -> Result<(Option<usize>, Vec<String>)> {
    let mut found = Unarchived::default();
    found.ask_quietly(engines, queries).await;
    register(session, &found.reads)?;
    Ok((found.count(), found.notices))
}

/// Registers the reads as [`UNARCHIVED_TABLE`], with the archive's columns and the `date` and
/// `hour` the archive's partitions add, so the filters written for `reads` apply to it as they are.
fn register(session: &ArchiveSession, reads: &[PlateRead]) -> Result<()> {
    let mut columns = ReadColumns::default();
    let mut dates = StringBuilder::new();
    let mut hours = StringBuilder::new();
    for read in reads {
        columns.push(read);
        let (date, hour) = partition_of(read.observed_at.millis()).unzip();
        dates.append_option(date);
        hours.append_option(hour);
    }
    let batch = columns
        .finish()
        .context("encoding the engine's unarchived reads")?;
    let schema = reads_schema_with_partitions();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    arrays.push(Arc::new(dates.finish()));
    arrays.push(Arc::new(hours.finish()));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
        .context("encoding the engine's unarchived reads")?;
    // A later round of questions registers all the reads again.
    session.context.deregister_table(UNARCHIVED_TABLE)?;
    session.context.register_table(
        UNARCHIVED_TABLE,
        Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
    )?;
    Ok(())
}

/// A query's time range as the API takes it: open bounds are left out.
pub fn time_bounds(from_ms: i64, to_ms: i64) -> (Option<Timestamp>, Option<Timestamp>) {
    let bound = |millis: i64| (!is_open_bound(millis)).then_some(Timestamp(millis));
    (bound(from_ms), bound(to_ms))
}

/// The query an incident's window and circle make.
pub fn incident_query(
    from_ms: i64,
    to_ms: i64,
    lat: f64,
    lon: f64,
    radius_m: f64,
) -> UnarchivedQuery {
    let (from, to) = time_bounds(from_ms, to_ms);
    UnarchivedQuery {
        from,
        to,
        near: Some(platestream_engine::description::Area { lat, lon, radius_m }),
        ..UnarchivedQuery::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_is_named_by_its_address_or_its_url() {
        let engines = engines_to_ask(
            &[
                "127.0.0.1:8091".to_owned(),
                "https://engine.example:443".to_owned(),
            ],
            None,
        );
        let bases: Vec<&str> = engines.iter().map(|e| e.base.as_str()).collect();
        assert_eq!(
            bases,
            ["http://127.0.0.1:8091", "https://engine.example:443"]
        );
    }
}
