//! The running engine's search API (`[api]` in `platestream.toml`, served by `platestream run`):
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/search/appearance` | the reads in the live appearance index nearest a vector or another read, within a time range and an area |
//! | `GET /v1/reads/unarchived` | the reads consumed but not yet durable in the archive, within a time range and an area |
//! | `GET /healthz` | 200 while the engine runs |
//!
//! The index holds the last `[appearance] horizon_secs` of reads in memory, so "has this car been
//! seen since this morning?" is answered in milliseconds, before the reads' files are even
//! written; `platestream search` asks the same of the archive. Where and when a vehicle was seen
//! is sensitive: every search needs `api.token`, and the listener defaults to loopback.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics::counter;
use platestream_engine::appearance::{AppearanceQuery, RecentAppearanceIndex};
use platestream_engine::description::{normalize_vector, Area};
use platestream_engine::unarchived::{PlateSelector, UnarchivedQuery, UnarchivedReads};
use platestream_engine::{PlateRead, Timestamp};
use serde::{Deserialize, Serialize};

use super::auth::{presented_token, TokenDigest};
use super::settings::{Token, MIN_TOKEN_CHARS};

/// Most reads one search returns.
pub const MAX_SEARCH_K: usize = 1000;
/// Largest search radius, as for a BOLO's area.
pub const MAX_SEARCH_RADIUS_M: f64 = 1_000_000.0;
const MAX_BODY_BYTES: usize = 1 << 20;

/// `[api]`: where the engine answers searches, and the token they need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchApiSettings {
    /// Default `127.0.0.1:8091`: loopback, as a dispatcher's console or a proxy reaches it.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Sent as `Authorization: Bearer <token>` (or `X-Api-Key`); at least 16 characters.
    pub token: Token,
    /// Most reads held between their consumption and their segment's commit, for
    /// `GET /v1/reads/unarchived` (and so `query incident`); default 250,000.
    #[serde(default = "default_unarchived_max_reads")]
    pub unarchived_max_reads: usize,
}

fn default_unarchived_max_reads() -> usize {
    platestream_engine::unarchived::DEFAULT_MAX_READS
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8091))
}

/// Why the search API cannot start; each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum SearchSetupError {
    #[error("api.token must have at least {min} characters")]
    ShortToken { min: usize },
    #[error("api.listen {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("the search API stopped: {0}")]
    Serve(std::io::Error),
}

/// Why a search was refused: answered as `{"error": <stable code>, "reason": <explanation>}`.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(
        "no token given: send `Authorization: Bearer <token>`, an `X-Api-Key: <token>` header, or \
         a `token=<token>` query parameter"
    )]
    MissingToken,
    #[error("the token is not valid for searching")]
    WrongToken,
    #[error("the body is not a search: {0}")]
    MalformedBody(String),
    #[error("the body is over {MAX_BODY_BYTES} bytes, more than any search needs")]
    BodyTooLarge,
    #[error("give either `vector` or `read_id`, not both")]
    VectorAndReadId,
    #[error("give a `vector` (the appearance to look for) or a `read_id` (a read whose appearance to look for)")]
    NothingToSearchFor,
    #[error("`vector` has {found} numbers; the index holds vectors of {expected}")]
    WrongDimension { found: usize, expected: usize },
    #[error("`vector` is all zeros (or not finite): it has no direction to compare")]
    ZeroVector,
    #[error("`k` must be from 1 to {MAX_SEARCH_K}, not {0}")]
    BadK(usize),
    #[error("`{field}` {value:?} is not an RFC 3339 time (2026-11-24T17:00:00Z)")]
    BadTime { field: &'static str, value: String },
    #[error("`from` ({from}) is not before `to` ({to}): the range is empty")]
    EmptyRange { from: String, to: String },
    #[error("`near` must have lat from -90 to 90, lon from -180 to 180 and radius_m above 0 and at most {MAX_SEARCH_RADIUS_M}")]
    BadArea,
    #[error("`min_similarity` must be a cosine from -1 to 1, not {0}")]
    BadSimilarity(f32),
    #[error("no read {0:?} is in the appearance index (no embedding, or older than the horizon)")]
    UnknownRead(String),
    #[error("this engine keeps no appearance index: add an [appearance] section to its config")]
    NoAppearanceIndex,
    #[error("the query string is not valid: {0}")]
    MalformedQuery(String),
    #[error("give `lat`, `lon` and `radius_m` together, or none of them")]
    PartialArea,
    #[error("`plate` is neither a plate nor a partial plate: {0}")]
    BadPlate(String),
    #[error("`reader` is empty: give a reader's id, or leave `reader` out for every reader")]
    EmptyReader,
    #[error("`misreads` needs a whole `plate` (not a partial plate) to find the misreads of")]
    MisreadsNeedAPlate,
    #[error("internal error: {0}")]
    Internal(String),
}

impl SearchError {
    /// The stable label in the response's `error` field and in metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::WrongToken => "wrong_token",
            Self::MalformedBody(_) => "malformed_body",
            Self::BodyTooLarge => "body_too_large",
            Self::VectorAndReadId => "vector_and_read_id",
            Self::NothingToSearchFor => "nothing_to_search_for",
            Self::WrongDimension { .. } => "wrong_dimension",
            Self::ZeroVector => "zero_vector",
            Self::BadK(_) => "bad_k",
            Self::BadTime { .. } => "bad_time",
            Self::EmptyRange { .. } => "empty_range",
            Self::BadArea => "bad_area",
            Self::BadSimilarity(_) => "bad_similarity",
            Self::UnknownRead(_) => "unknown_read",
            Self::NoAppearanceIndex => "no_appearance_index",
            Self::MalformedQuery(_) => "malformed_query",
            Self::PartialArea => "partial_area",
            Self::BadPlate(_) => "bad_plate",
            Self::EmptyReader => "empty_reader",
            Self::MisreadsNeedAPlate => "misreads_need_a_plate",
            Self::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::WrongToken => StatusCode::UNAUTHORIZED,
            Self::UnknownRead(_) | Self::NoAppearanceIndex => StatusCode::NOT_FOUND,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for SearchError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({ "error": self.code(), "reason": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"platestream\""),
            );
        }
        if matches!(self, Self::BodyTooLarge) {
            // The rest of the body is not read and the connection closes after this answer: a
            // client must not reuse it.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A search, as `schemas/appearance-search-request.schema.json` describes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    vector: Option<Vec<f32>>,
    read_id: Option<String>,
    #[serde(default = "default_k")]
    k: usize,
    from: Option<String>,
    to: Option<String>,
    near: Option<Area>,
    min_similarity: Option<f32>,
}

fn default_k() -> usize {
    10
}

/// The answer, as `schemas/appearance-search-response.schema.json` describes it.
#[derive(Debug, Serialize)]
struct SearchResponse {
    /// Most similar first.
    hits: Vec<SearchHit>,
    /// Reads the index held when searched, and how many of them the builder had not filed yet
    /// (scanned exactly).
    indexed_reads: usize,
    unindexed_reads: usize,
}

#[derive(Debug, Serialize)]
struct SearchHit {
    similarity: f32,
    read: PlateRead,
}

struct SearchState {
    index: Option<Arc<RecentAppearanceIndex>>,
    unarchived: Arc<UnarchivedReads>,
    token: TokenDigest,
}

/// What the API serves, for a request that asks for something else.
const SEARCH_ROUTES: &str = "searches are POSTed to /v1/search/appearance; unarchived reads and \
                             /healthz are read with GET /v1/reads/unarchived and GET /healthz";

/// `GET /v1/reads/unarchived`'s query string, as `schemas/unarchived-reads-response.schema.json`
/// describes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnarchivedParams {
    from: Option<String>,
    to: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    radius_m: Option<f64>,
    /// A plate or partial plate (`?`/`_` one character, `*`/`%` any run).
    plate: Option<String>,
    /// One reader's reads (its `reader_id`).
    reader: Option<String>,
    /// With an exact `plate`: its possible misreads too.
    #[serde(default)]
    misreads: bool,
    /// Read by the token check, not here.
    #[allow(dead_code)]
    token: Option<String>,
}

/// The answer of `GET /v1/reads/unarchived`, as `schemas/unarchived-reads-response.schema.json`
/// describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnarchivedResponse {
    /// Oldest first.
    pub reads: Vec<PlateRead>,
    /// Reads the engine holds unarchived, whatever the query.
    pub held_reads: usize,
    /// Reads consumed but in neither the archive nor this answer: the engine's store of them
    /// (`[api] unarchived_max_reads`) was full.
    pub missing_reads: u64,
}

/// Why the engine's unarchived reads could not be had.
#[derive(Debug, thiserror::Error)]
pub enum UnarchivedFetchError {
    #[error("the engine at {url} did not answer: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the engine at {url} refused: {status} {body}")]
    Refused {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("the engine at {url} answered something else than reads: {source}")]
    Malformed {
        url: String,
        source: serde_json::Error,
    },
}

/// Asks a running engine's API (`base`, e.g. `http://127.0.0.1:8091`) for the reads it holds
/// unarchived within the query.
pub async fn fetch_unarchived(
    base: &str,
    token: &str,
    query: &UnarchivedQuery,
    timeout: std::time::Duration,
) -> Result<UnarchivedResponse, UnarchivedFetchError> {
    let url = format!("{}/v1/reads/unarchived", base.trim_end_matches('/'));
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(from) = query.from {
        params.push(("from", from.to_string()));
    }
    if let Some(to) = query.to {
        params.push(("to", to.to_string()));
    }
    if let Some(area) = query.near {
        params.push(("lat", area.lat.to_string()));
        params.push(("lon", area.lon.to_string()));
        params.push(("radius_m", area.radius_m.to_string()));
    }
    if let Some(plate) = &query.plate {
        params.push(("plate", plate.to_string()));
    }
    if let Some(reader) = &query.reader {
        params.push(("reader", reader.clone()));
    }
    if query.misreads {
        params.push(("misreads", "true".to_owned()));
    }
    let unreachable = |source| UnarchivedFetchError::Unreachable {
        url: url.clone(),
        source,
    };
    let response = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(unreachable)?
        .get(&url)
        .query(&params)
        .bearer_auth(token)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(UnarchivedFetchError::Refused { url, status, body });
    }
    let body = response.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|source| UnarchivedFetchError::Malformed { url, source })
}

/// The search API, configured but not yet listening.
pub struct SearchApi {
    listen: SocketAddr,
    router: Router,
}

impl SearchApi {
    pub fn new(
        settings: &SearchApiSettings,
        index: Option<Arc<RecentAppearanceIndex>>,
        unarchived: Arc<UnarchivedReads>,
    ) -> Result<Self, SearchSetupError> {
        if settings.token.as_str().trim().chars().count() < MIN_TOKEN_CHARS {
            return Err(SearchSetupError::ShortToken {
                min: MIN_TOKEN_CHARS,
            });
        }
        let state = Arc::new(SearchState {
            index,
            unarchived,
            token: TokenDigest::of(settings.token.as_str()),
        });
        let router = Router::new()
            .route("/v1/search/appearance", post(appearance))
            .route("/v1/reads/unarchived", get(unarchived_reads))
            .route("/healthz", get(|| async { "ok" }))
            .method_not_allowed_fallback(|method, uri| {
                super::wrong_method(method, uri, SEARCH_ROUTES)
            })
            .fallback(|uri| super::no_such_path(uri, SEARCH_ROUTES))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state);
        Ok(Self {
            listen: settings.listen,
            router,
        })
    }

    /// Binds `api.listen` (port 0 picks a free port; see `local_addr`).
    pub async fn bind(self) -> Result<BoundSearchApi, SearchSetupError> {
        let (listener, local_addr) =
            super::bind_listener(self.listen)
                .await
                .map_err(|source| SearchSetupError::Listen {
                    address: self.listen,
                    source,
                })?;
        Ok(BoundSearchApi {
            listener,
            local_addr,
            router: self.router,
        })
    }
}

/// The search API with its socket bound.
pub struct BoundSearchApi {
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    router: Router,
}

impl BoundSearchApi {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the searches in flight.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SearchSetupError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(SearchSetupError::Serve)
    }
}

async fn appearance(
    State(state): State<Arc<SearchState>>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let found = match body {
        Ok(body) => search(&state, &headers, &uri, &body).await,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(SearchError::BodyTooLarge)
        }
        Err(rejection) => Err(SearchError::MalformedBody(rejection.body_text())),
    };
    respond(
        found,
        "platestream_search_requests_total",
        "appearance search",
    )
}

async fn unarchived_reads(
    State(state): State<Arc<SearchState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let found = unarchived(&state, &headers, &uri).await;
    respond(
        found,
        "platestream_unarchived_requests_total",
        "unarchived reads",
    )
}

/// The answer as JSON, or the refusal with its reason; counted by status under `metric`.
fn respond<T: Serialize>(
    found: Result<T, SearchError>,
    metric: &'static str,
    what: &'static str,
) -> Response {
    let response = match found {
        Ok(found) => Json(found).into_response(),
        Err(error) => {
            tracing::debug!(code = error.code(), reason = %error, "{what} refused");
            error.into_response()
        }
    };
    counter!(metric, "status" => response.status().as_str().to_owned()).increment(1);
    response
}

async fn unarchived(
    state: &Arc<SearchState>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<UnarchivedResponse, SearchError> {
    let token = presented_token(headers, uri).ok_or(SearchError::MissingToken)?;
    if !state.token.matches(&token) {
        return Err(SearchError::WrongToken);
    }
    let Query(params) = Query::<UnarchivedParams>::try_from_uri(uri)
        .map_err(|rejection| SearchError::MalformedQuery(rejection.body_text()))?;
    let (from, to) = checked_range(params.from.as_ref(), params.to.as_ref())?;
    let near = match (params.lat, params.lon, params.radius_m) {
        (None, None, None) => None,
        (Some(lat), Some(lon), Some(radius_m)) => {
            let area = Area { lat, lon, radius_m };
            check_area(&area)?;
            Some(area)
        }
        _ => return Err(SearchError::PartialArea),
    };
    let plate = params
        .plate
        .as_deref()
        .map(PlateSelector::parse)
        .transpose()
        .map_err(SearchError::BadPlate)?;
    if params
        .reader
        .as_deref()
        .is_some_and(|reader| reader.trim().is_empty())
    {
        return Err(SearchError::EmptyReader);
    }
    if params.misreads && !matches!(plate, Some(PlateSelector::Exact(_))) {
        return Err(SearchError::MisreadsNeedAPlate);
    }
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut snapshot = state.unarchived.snapshot(&UnarchivedQuery {
            from,
            to,
            near,
            plate,
            reader: params.reader,
            misreads: params.misreads,
        });
        snapshot
            .reads
            .sort_by(|a, b| (a.observed_at, &a.read_id).cmp(&(b.observed_at, &b.read_id)));
        UnarchivedResponse {
            reads: snapshot.reads,
            held_reads: snapshot.held,
            missing_reads: snapshot.missing,
        }
    })
    .await
    .map_err(|error| SearchError::Internal(format!("the lookup failed: {error}")))
}

fn checked_range(
    from: Option<&String>,
    to: Option<&String>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), SearchError> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(SearchError::EmptyRange {
                from: from.to_string(),
                to: to.to_string(),
            });
        }
    }
    Ok((from, to))
}

fn check_area(area: &Area) -> Result<(), SearchError> {
    let valid = (-90.0..=90.0).contains(&area.lat)
        && (-180.0..=180.0).contains(&area.lon)
        && area.radius_m > 0.0
        && area.radius_m <= MAX_SEARCH_RADIUS_M;
    if valid {
        Ok(())
    } else {
        Err(SearchError::BadArea)
    }
}

fn parse_time(
    field: &'static str,
    value: Option<&String>,
) -> Result<Option<Timestamp>, SearchError> {
    value
        .map(|text| {
            Timestamp::parse_rfc3339(text).ok_or_else(|| SearchError::BadTime {
                field,
                value: text.clone(),
            })
        })
        .transpose()
}

async fn search(
    state: &Arc<SearchState>,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<SearchResponse, SearchError> {
    let token = presented_token(headers, uri).ok_or(SearchError::MissingToken)?;
    if !state.token.matches(&token) {
        return Err(SearchError::WrongToken);
    }
    let request: SearchRequest = serde_json::from_slice(body)
        .map_err(|error| SearchError::MalformedBody(error.to_string()))?;
    if request.k == 0 || request.k > MAX_SEARCH_K {
        return Err(SearchError::BadK(request.k));
    }
    let (from, to) = checked_range(request.from.as_ref(), request.to.as_ref())?;
    if let Some(area) = &request.near {
        check_area(area)?;
    }
    if let Some(similarity) = request.min_similarity {
        if !(-1.0..=1.0).contains(&similarity) {
            return Err(SearchError::BadSimilarity(similarity));
        }
    }
    let index = state.index.clone().ok_or(SearchError::NoAppearanceIndex)?;
    let expected = index.config().dim;
    // A search scans up to a few hundred thousand vectors: off the server's threads.
    tokio::task::spawn_blocking(move || {
        let vector = match (request.vector, &request.read_id) {
            (Some(_), Some(_)) => return Err(SearchError::VectorAndReadId),
            (None, None) => return Err(SearchError::NothingToSearchFor),
            (Some(mut vector), None) => {
                if vector.len() != expected {
                    return Err(SearchError::WrongDimension {
                        found: vector.len(),
                        expected,
                    });
                }
                if !normalize_vector(&mut vector) {
                    return Err(SearchError::ZeroVector);
                }
                vector
            }
            (None, Some(read_id)) => index
                .unit_vector_of(read_id)
                .ok_or_else(|| SearchError::UnknownRead(read_id.clone()))?,
        };
        // The read searched from is its own nearest: ask for one more and leave it out.
        let extra = usize::from(request.read_id.is_some());
        let hits = index.search(&AppearanceQuery {
            vector: &vector,
            k: request.k + extra,
            from,
            to,
            near: request.near,
            min_similarity: request.min_similarity,
        });
        let hits: Vec<SearchHit> = hits
            .into_iter()
            .filter(|hit| request.read_id.as_deref() != Some(hit.read.read_id.as_str()))
            .take(request.k)
            .map(|hit| SearchHit {
                similarity: hit.similarity,
                read: hit.read,
            })
            .collect();
        Ok(SearchResponse {
            hits,
            indexed_reads: index.len(),
            unindexed_reads: index.unindexed_len(),
        })
    })
    .await
    .map_err(|error| SearchError::Internal(format!("the search failed: {error}")))?
}
