//! Alert fan-out to the webhooks a list's policy names (`[[hotlists.lists]] webhooks = [...]`):
//! each paged (non-suppressed) alert is POSTed as its JSON (`schemas/alert.schema.json`) to each
//! URL of its list.
//!
//! The consumer loop must never wait on a slow or dead endpoint, so [`WebhookFanout::send`] only
//! serializes the alert and queues it. Each URL has its own worker thread and bounded queue, so
//! one dead endpoint delays nobody else's alerts. When a queue is full its oldest alert is
//! dropped (counted and logged): the newest hit is the one whose vehicle is still nearby.
//! Deliveries time out and are retried with exponential backoff on connection errors,
//! timeouts, 408, 429 and 5xx; other answers are permanent failures. Every alert carries a stable
//! `alert_id` (also sent as the `X-Platestream-Alert-Id` header) so receivers can drop repeats
//! of a retried delivery.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::counter;
use platestream_engine::alert::Alert;
use platestream_engine::store::HotlistStore;
use serde::{Deserialize, Serialize};

use crate::kafka::StreamObserver;

/// How alerts are delivered to webhooks (`[webhooks]` in `platestream.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Time allowed for one delivery attempt, connecting included.
    pub timeout_ms: u64,
    /// Attempts per alert and URL, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub initial_backoff_ms: u64,
    /// Alerts waiting per URL; beyond it the oldest waiting alert is dropped.
    pub queue_capacity: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            max_attempts: 4,
            initial_backoff_ms: 500,
            queue_capacity: 1_000,
        }
    }
}

/// Delivery counters across all URLs, readable while the workers run.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    /// Deliveries given up after their last attempt or refused permanently.
    pub failed: AtomicU64,
    /// Alerts dropped from a full queue, or still waiting when the grace period at shutdown ran out.
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

struct Job {
    alert_id: Arc<str>,
    list: Arc<str>,
    body: Arc<[u8]>,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// Set at shutdown: deliver what is queued until then, then stop.
    closing_deadline: Option<Instant>,
}

struct EndpointQueue {
    url: String,
    /// The URL without query or credentials: tokens often live there, logs must not show them.
    shown_url: String,
    state: Mutex<QueueState>,
    ready: Condvar,
}

impl EndpointQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Endpoint {
    queue: Arc<EndpointQueue>,
    worker: JoinHandle<()>,
}

/// Posts alerts to their lists' webhooks from background workers.
pub struct WebhookFanout {
    settings: WebhookSettings,
    store: Arc<HotlistStore>,
    endpoints: Mutex<HashMap<String, Endpoint>>,
    stats: Arc<WebhookStats>,
}

impl WebhookFanout {
    /// Webhook URLs are looked up in `store`'s list policies when each alert is sent, so a
    /// policy change applies to the next alert.
    pub fn new(settings: WebhookSettings, store: Arc<HotlistStore>) -> Self {
        Self {
            settings,
            store,
            endpoints: Mutex::new(HashMap::new()),
            stats: Arc::new(WebhookStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<WebhookStats> {
        Arc::clone(&self.stats)
    }

    fn lock_endpoints(&self) -> MutexGuard<'_, HashMap<String, Endpoint>> {
        self.endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `alert` for every webhook of its list; returns at once. Suppressed alerts are
    /// not sent: officers were paged for that vehicle minutes ago.
    pub fn send(&self, alert: &Alert) {
        if alert.suppressed {
            return;
        }
        let Some(policy) = self.store.policy(&alert.list) else {
            return;
        };
        if policy.webhooks.is_empty() {
            return;
        }
        let body: Arc<[u8]> = match serde_json::to_vec(alert) {
            Ok(body) => body.into(),
            Err(error) => {
                tracing::error!(alert_id = %alert.alert_id, %error, "alert cannot be serialized for webhooks");
                return;
            }
        };
        let alert_id: Arc<str> = alert.alert_id.as_str().into();
        let list: Arc<str> = alert.list.as_str().into();
        let mut endpoints = self.lock_endpoints();
        for url in &policy.webhooks {
            let endpoint = endpoints
                .entry(url.clone())
                .or_insert_with(|| self.start_endpoint(url));
            let mut state = endpoint.queue.lock();
            if state.closing_deadline.is_some() {
                continue;
            }
            if state.jobs.len() >= self.settings.queue_capacity.max(1) {
                let dropped = state.jobs.pop_front();
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                counter!("platestream_webhook_deliveries_total", "outcome" => "dropped")
                    .increment(1);
                // Each one by id: it is a page that never reached its receiver, and an operator
                // must be able to say which (hits are few, so this does not flood the log).
                if let Some(dropped) = dropped {
                    tracing::warn!(url = %endpoint.queue.shown_url, capacity = self.settings.queue_capacity, alert_id = %dropped.alert_id, list = %dropped.list, "webhook queue full; dropped its oldest alert undelivered");
                }
            }
            state.jobs.push_back(Job {
                alert_id: Arc::clone(&alert_id),
                list: Arc::clone(&list),
                body: Arc::clone(&body),
            });
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
            drop(state);
            endpoint.queue.ready.notify_one();
        }
    }

    fn start_endpoint(&self, url: &str) -> Endpoint {
        let queue = Arc::new(EndpointQueue {
            url: url.to_owned(),
            shown_url: shown_url(url),
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
        });
        let worker = {
            let queue = Arc::clone(&queue);
            let settings = self.settings.clone();
            let stats = Arc::clone(&self.stats);
            std::thread::Builder::new()
                .name("webhook".to_owned())
                .spawn(move || deliver_queue(&queue, &settings, &stats))
        };
        match worker {
            Ok(worker) => Endpoint { queue, worker },
            Err(error) => {
                tracing::error!(url = %queue.shown_url, %error, "cannot start a webhook worker; alerts for this URL are dropped");
                queue.lock().closing_deadline = Some(Instant::now());
                Endpoint {
                    queue,
                    worker: std::thread::spawn(|| {}),
                }
            }
        }
    }

    /// Delivers what is queued for up to `grace`, then stops the workers (what is still queued
    /// is counted as dropped).
    pub fn shutdown(self, grace: Duration) {
        let endpoints = std::mem::take(&mut *self.lock_endpoints());
        let deadline = Instant::now() + grace;
        for endpoint in endpoints.values() {
            endpoint.queue.lock().closing_deadline = Some(deadline);
            endpoint.queue.ready.notify_all();
        }
        for (_, endpoint) in endpoints {
            if endpoint.worker.join().is_err() {
                tracing::error!(url = %endpoint.queue.shown_url, "a webhook worker panicked");
            }
        }
    }
}

impl Drop for WebhookFanout {
    fn drop(&mut self) {
        // Without `shutdown`, workers are told to stop now and left to exit on their own.
        let now = Instant::now();
        for endpoint in self.lock_endpoints().values() {
            endpoint.queue.lock().closing_deadline = Some(now);
            endpoint.queue.ready.notify_all();
        }
    }
}

impl StreamObserver for WebhookFanout {
    fn on_alert(&mut self, alert: &Alert) {
        self.send(alert);
    }
}

impl StreamObserver for &WebhookFanout {
    fn on_alert(&mut self, alert: &Alert) {
        self.send(alert);
    }
}

/// Why a configured webhook cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhookUrl {
    #[error("webhook {url:?} is not a URL: {reason}")]
    Parse { url: String, reason: String },
    #[error("webhook {0:?} must be an http or https URL")]
    Scheme(String),
}

/// Checks a webhook URL when the configuration is loaded, not at the first hit.
pub fn validate_webhook_url(url: &str) -> Result<(), InvalidWebhookUrl> {
    let parsed = reqwest::Url::parse(url).map_err(|error| InvalidWebhookUrl::Parse {
        url: url.to_owned(),
        reason: error.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(InvalidWebhookUrl::Scheme(url.to_owned()));
    }
    Ok(())
}

fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default(),
            parsed.path()
        ),
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Why one attempt failed, and whether another may succeed.
enum AttemptError {
    Retryable(String),
    Permanent(String),
}

fn deliver_queue(queue: &EndpointQueue, settings: &WebhookSettings, stats: &WebhookStats) {
    // Built here, not by the caller: a blocking client must not be created or dropped on an
    // async runtime's thread, which is where `platestream run` sets the fan-out up.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("platestream/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(url = %queue.shown_url, %error, "cannot build the webhook HTTP client");
            drop_remaining(queue, stats, true);
            return;
        }
    };
    loop {
        let job = {
            let mut state = queue.lock();
            loop {
                if let Some(deadline) = state.closing_deadline {
                    if state.jobs.is_empty() || Instant::now() >= deadline {
                        drop(state);
                        drop_remaining(queue, stats, false);
                        return;
                    }
                }
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                state = queue
                    .ready
                    .wait_timeout(state, Duration::from_millis(500))
                    .map(|(state, _)| state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        };
        deliver(&client, queue, settings, stats, &job);
    }
}

fn drop_remaining(queue: &EndpointQueue, stats: &WebhookStats, client_failed: bool) {
    let mut state = queue.lock();
    let remaining = state.jobs.len() as u64;
    let undelivered: Vec<String> = state
        .jobs
        .drain(..)
        .map(|job| job.alert_id.to_string())
        .collect();
    // New alerts for this URL are refused from now on.
    state.closing_deadline.get_or_insert_with(Instant::now);
    drop(state);
    if remaining > 0 {
        stats.dropped.fetch_add(remaining, Ordering::Relaxed);
        counter!("platestream_webhook_deliveries_total", "outcome" => "dropped")
            .increment(remaining);
        let alert_ids = undelivered.join(",");
        tracing::warn!(url = %queue.shown_url, alerts = remaining, client_failed, %alert_ids, "webhook alerts not delivered before stopping");
    }
}

fn deliver(
    client: &reqwest::blocking::Client,
    queue: &EndpointQueue,
    settings: &WebhookSettings,
    stats: &WebhookStats,
    job: &Job,
) {
    let max_attempts = settings.max_attempts.max(1);
    let mut backoff = Duration::from_millis(settings.initial_backoff_ms);
    for attempt in 1..=max_attempts {
        let outcome = attempt_once(client, &queue.url, job);
        let reason = match outcome {
            Ok(()) => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                counter!("platestream_webhook_deliveries_total", "outcome" => "delivered")
                    .increment(1);
                return;
            }
            Err(AttemptError::Permanent(reason)) => {
                tracing::warn!(url = %queue.shown_url, alert_id = %job.alert_id, list = %job.list, attempt, %reason, "webhook refused the alert; not retrying");
                break;
            }
            Err(AttemptError::Retryable(reason)) => reason,
        };
        let closing_deadline = queue.lock().closing_deadline;
        let out_of_time =
            closing_deadline.is_some_and(|deadline| Instant::now() + backoff >= deadline);
        if attempt == max_attempts || out_of_time {
            tracing::warn!(url = %queue.shown_url, alert_id = %job.alert_id, list = %job.list, attempts = attempt, %reason, "webhook delivery failed; giving up");
            break;
        }
        tracing::debug!(url = %queue.shown_url, alert_id = %job.alert_id, attempt, %reason, "webhook delivery failed; retrying");
        stats.retries.fetch_add(1, Ordering::Relaxed);
        counter!("platestream_webhook_retries_total").increment(1);
        std::thread::sleep(backoff);
        backoff = backoff.saturating_mul(2);
    }
    stats.failed.fetch_add(1, Ordering::Relaxed);
    counter!("platestream_webhook_deliveries_total", "outcome" => "failed").increment(1);
}

fn attempt_once(
    client: &reqwest::blocking::Client,
    url: &str,
    job: &Job,
) -> Result<(), AttemptError> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Platestream-Alert-Id", job.alert_id.as_ref())
        .body(job.body.to_vec())
        .send()
        .map_err(|error| {
            if error.is_builder() {
                AttemptError::Permanent(format!("invalid request: {error}"))
            } else if error.is_timeout() {
                AttemptError::Retryable(format!("no answer within the timeout: {error}"))
            } else if error.is_connect() {
                AttemptError::Retryable(format!("could not connect: {error}"))
            } else {
                AttemptError::Retryable(error.to_string())
            }
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let reason = format!("HTTP {status}");
    if status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Err(AttemptError::Retryable(reason))
    } else {
        Err(AttemptError::Permanent(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_urls_hide_credentials_and_query_tokens() {
        assert_eq!(
            shown_url("https://user:secret@hooks.example.org:8443/alpr/in?token=abc"),
            "https://hooks.example.org:8443/alpr/in"
        );
        assert_eq!(shown_url("not a url"), "<invalid url>");
        assert!(validate_webhook_url("https://hooks.example.org/a").is_ok());
        assert!(matches!(
            validate_webhook_url("ftp://hooks.example.org/a"),
            Err(InvalidWebhookUrl::Scheme(_))
        ));
        assert!(validate_webhook_url("hooks.example.org").is_err());
    }
}
