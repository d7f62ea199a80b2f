//! The engine as a Kafka consumer-group member: raw reads in; alerts and dead letters out to their
//! topics; every read into the Parquet archive; offsets committed only once the archive holds them.
//!
//! Delivery guarantees, in order of a message's life:
//! 1. a message is processed; its alerts and dead letters are produced at once (alert latency);
//! 2. its reads and alerts go into the partition's open archive segment;
//! 3. when the segment is due (rows or age), the producer is flushed (every alert and dead letter
//!    acknowledged), the segment's files are made durable, and only then is `last + 1` committed.
//!
//! A crash anywhere replays from the last commit; archive recovery skips what a crash left
//! archived but uncommitted, so the archive never holds a read twice. Alerts and dead letters are
//! at-least-once on their topics; alert ids are stable, so their consumers can drop repeats.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use platestream_engine::alert::Alert;
use platestream_engine::alert_policy::AlertRoute;
use platestream_engine::archive::{
    recover_partition, retire_partition, ArchiveConfig, ArchiveError, SegmentReport, SegmentWriter,
    ALERTS_TABLE, READS_TABLE,
};
use platestream_engine::pipeline::{DeadLetter, Pipeline, PipelineCounts, Processed};
use platestream_engine::unarchived::UnarchivedReads;
use platestream_engine::{SourcePosition, Timestamp};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::admin::{message_fingerprint_at, partition_probe};
use super::prepare::{Disposition, MessageBatch, PreparePool, PreparedBatch, PreparedMessage};
use super::{confirmed_partition_end, KafkaError, KafkaSettings};

/// When to stop, besides a Ctrl-C.
#[derive(Debug, Clone, Default)]
pub struct StopWhen {
    /// Set from anywhere (a signal handler, a timer) to stop at the next poll.
    pub flag: Arc<AtomicBool>,
    /// Stop once no message has arrived for this long (after the first one did).
    pub idle: Option<Duration>,
    /// Stop after processing this many messages.
    pub messages: Option<u64>,
}

/// What the engine does with its open segments when it stops. Anything but `CommitAll` simulates a
/// crash, so tests can prove recovery neither loses nor duplicates reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnStop {
    /// Make every open segment durable and commit its offsets: a clean stop.
    #[default]
    CommitAll,
    /// Make segments durable but commit nothing, as if the process died between the two.
    ArchiveWithoutCommit,
    /// Drop open segments and commit nothing, as if the process died mid-segment.
    AbandonAll,
}

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// A segment is committed once it holds this many rows...
    pub segment_max_rows: usize,
    /// ...or once it is this old, whichever comes first.
    pub segment_max_age: Duration,
    pub stop: StopWhen,
    pub on_stop: OnStop,
    /// Where reads wait, visible to the API, between their segment and its commit.
    pub unarchived: Option<Arc<UnarchivedReads>>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            segment_max_rows: 500_000,
            segment_max_age: Duration::from_secs(30),
            stop: StopWhen::default(),
            on_stop: OnStop::CommitAll,
            unarchived: None,
        }
    }
}

/// Called from the consumer loop; keep it fast.
pub trait StreamObserver {
    fn on_alert(&mut self, _alert: &Alert) {}
    fn on_segment(&mut self, _report: &SegmentReport) {}
}

impl StreamObserver for () {}

#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    pub counts: PipelineCounts,
    /// Messages skipped because a previous run had archived them but not committed their offsets.
    pub already_archived: u64,
    /// Messages consumed into a segment abandoned when their partition moved to another engine:
    /// that engine archives them (counted among `counts.messages` here too).
    pub handed_over: u64,
    pub reads_archived: u64,
    pub alerts_archived: u64,
    pub files_written: u64,
    pub bytes_written: u64,
    /// The next offset to read, per (topic, partition), as committed by this run.
    pub committed: BTreeMap<(String, i32), i64>,
    pub elapsed: Duration,
    /// From the first message to the last one processed: the consuming time without the group
    /// join before it or the idle wait after it (what throughput is measured over).
    pub active: Duration,
}

#[derive(Default)]
struct EngineConsumerContext {
    /// Partitions assigned or revoked during the last poll; handled by the loop after it returns.
    rebalanced: Mutex<Vec<(String, i32)>>,
    files_in_flight: Arc<FilesInFlight>,
}

/// Checkpoints handed to the checkpoint thread whose files are not yet all in place. Engines of
/// one group may share an archive directory; the next owner of a partition recovers its files as
/// soon as it is assigned, and would take a segment caught between its renames for an
/// incomplete one and delete it. So a revocation waits for these before librdkafka rejoins the
/// group.
#[derive(Default)]
struct FilesInFlight {
    count: Mutex<usize>,
    settled: Condvar,
}

impl FilesInFlight {
    fn begin(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count += 1;
        }
    }

    fn end(&self) {
        if let Ok(mut count) = self.count.lock() {
            *count = count.saturating_sub(1);
        }
        self.settled.notify_all();
    }

    /// Whether none is in flight any more, waiting up to `limit`.
    fn wait_settled(&self, limit: Duration) -> bool {
        let Ok(count) = self.count.lock() else {
            return false;
        };
        self.settled
            .wait_timeout_while(count, limit, |count| *count > 0)
            .is_ok_and(|(count, _)| *count == 0)
    }
}

/// How long a revocation waits for checkpoints' files: one checkpoint waits for its alerts'
/// acknowledgements (`DELIVERY_TIMEOUT`) before writing.
const REVOKE_WAIT: Duration = Duration::from_secs(60);

impl ClientContext for EngineConsumerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic_name, topic) in &statistics.topics {
            for (partition_id, partition) in &topic.partitions {
                if *partition_id < 0 {
                    continue;
                }
                // A partition this engine no longer fetches (it moved to another engine) is not
                // its lag: its last value would stay in the gauge and count twice in a sum.
                let fetching = partition.fetch_state == "active";
                let lag = if fetching { partition.consumer_lag } else { 0 };
                if lag >= 0 {
                    gauge!("platestream_consumer_lag", "topic" => topic_name.clone(), "partition" => partition_id.to_string())
                        .set(lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for EngineConsumerContext {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(error) = result {
            counter!("platestream_offset_commit_failures_total").increment(1);
            tracing::warn!(%error, "an offset commit failed; the next checkpoint's commit covers its reads");
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = match rebalance {
            Rebalance::Assign(list) | Rebalance::Revoke(list) => list,
            Rebalance::Error(error) => {
                tracing::warn!(%error, "consumer group rebalance failed");
                return;
            }
        };
        if let Ok(mut rebalanced) = self.rebalanced.lock() {
            for element in partitions.elements() {
                rebalanced.push((element.topic().to_owned(), element.partition()));
            }
        }
        if matches!(rebalance, Rebalance::Revoke(_))
            && !self.files_in_flight.wait_settled(REVOKE_WAIT)
        {
            tracing::warn!(
                waited_secs = REVOKE_WAIT.as_secs(),
                "partitions revoked while a checkpoint's files are still being written; their next \
                 owner may take that segment for an incomplete one and archive its reads again"
            );
        }
        tracing::info!(
            kind = if matches!(rebalance, Rebalance::Assign(_)) {
                "assign"
            } else {
                "revoke"
            },
            partitions = partitions.count(),
            "consumer group rebalance"
        );
    }
}

/// Follows every alert and dead letter from hand-over to acknowledgement, so that a checkpoint
/// waits for exactly the ones handed over before it, on the checkpoint thread: a producer flush
/// on the consuming thread held every alert behind it for as long as the broker took to
/// acknowledge the slowest one. Offsets are never committed past one the cluster did not take.
#[derive(Default)]
struct DeliveryTracker {
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
    /// Numbers of the records handed over and not yet acknowledged or failed.
    unacknowledged: Mutex<BTreeSet<usize>>,
    settled: Condvar,
    next_number: AtomicUsize,
}

impl DeliveryTracker {
    /// Numbers a record about to be handed to the producer.
    fn begin(&self) -> usize {
        let number = self.next_number.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut unacknowledged) = self.unacknowledged.lock() {
            unacknowledged.insert(number);
        }
        number
    }

    fn settle(&self, number: usize) {
        if let Ok(mut unacknowledged) = self.unacknowledged.lock() {
            unacknowledged.remove(&number);
        }
        self.settled.notify_all();
    }

    /// Everything numbered before this has been handed over.
    fn mark(&self) -> usize {
        self.next_number.load(Ordering::Relaxed)
    }

    /// Waits until every record numbered before `mark` is acknowledged; fails if any record was
    /// refused (ever: a run stops at its first undelivered alert) or `timeout` passes.
    fn wait_for(&self, mark: usize, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + timeout;
        let poisoned = || KafkaError::Internal("delivery tracker lock poisoned".to_owned());
        let mut unacknowledged = self.unacknowledged.lock().map_err(|_| poisoned())?;
        while unacknowledged.first().is_some_and(|&oldest| oldest < mark) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::DeliveryFailed(format!(
                    "alerts or dead letters not acknowledged within {timeout:?}"
                )));
            }
            unacknowledged = self
                .settled
                .wait_timeout(unacknowledged, left)
                .map_err(|_| poisoned())?
                .0;
        }
        drop(unacknowledged);
        if self.failures.load(Ordering::Relaxed) > 0 {
            let last = self
                .last_failure
                .lock()
                .ok()
                .and_then(|last| last.clone())
                .unwrap_or_default();
            return Err(KafkaError::DeliveryFailed(last));
        }
        Ok(())
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, number: usize) {
        if let Err((error, _)) = result {
            self.failures.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut last) = self.last_failure.lock() {
                *last = Some(error.to_string());
            }
        }
        self.settle(number);
    }
}

struct PartitionState {
    /// Offsets up to this one are in the archive already (from a run that did not commit them).
    archived_through: Option<i64>,
    /// After an assignment: the offset consumption must resume at, until it arrives. librdkafka
    /// may resume a re-assigned partition at its old fetch position, past the reads of a segment
    /// abandoned at the revoke; those must be read again, not skipped.
    resume_at: Option<i64>,
    last_seek: Option<Instant>,
    /// The highest offset classified since the state was made: a later message at or below it,
    /// with no seek of ours under way, means the consumer's position was reset under us.
    last_classified: Option<i64>,
    segment: Option<SegmentWriter>,
}

/// What `RunState::classify` decided about a polled message.
enum Classified {
    /// Into the batch, to be processed or only covered.
    Take(Disposition),
    /// Nothing now: the fetch position was stale and has been moved back to where the durable
    /// archive ends.
    Skip,
    /// At or below an offset the partition's state already classified, with no seek of the
    /// engine's under way: librdkafka reset the consumer's position under it.
    PositionWentBack,
}

pub struct StreamEngine {
    settings: KafkaSettings,
    archive: Arc<ArchiveConfig>,
    options: StreamOptions,
}

impl StreamEngine {
    pub fn new(
        settings: KafkaSettings,
        archive: Arc<ArchiveConfig>,
        options: StreamOptions,
    ) -> Self {
        Self {
            settings,
            archive,
            options,
        }
    }

    /// Consumes until a stop condition holds. Blocking: run it on its own thread.
    pub fn run(
        &self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
    ) -> Result<StreamSummary, KafkaError> {
        // Exported from the start, so that "none retired" reads as 0 rather than as no metric.
        counter!("platestream_archive_partitions_retired_total").increment(0);
        let files_in_flight = Arc::new(FilesInFlight::default());
        let consumer: BaseConsumer<EngineConsumerContext> = self
            .settings
            .consumer_config()
            .create_with_context(EngineConsumerContext {
                files_in_flight: Arc::clone(&files_in_flight),
                ..EngineConsumerContext::default()
            })
            .map_err(KafkaError::client("consumer"))?;
        let topics: Vec<&str> = self
            .settings
            .raw_topics
            .iter()
            .map(String::as_str)
            .collect();
        consumer
            .subscribe(&topics)
            .map_err(KafkaError::client("subscribe"))?;
        let producer: ThreadedProducer<DeliveryTracker> = self
            .settings
            .producer_config()
            .create_with_context(DeliveryTracker::default())
            .map_err(KafkaError::client("producer"))?;

        let mut run = RunState {
            engine: self,
            consumer: &consumer,
            producer: &producer,
            checkpoints: Checkpointer::spawn(Arc::clone(producer.context()), files_in_flight)?,
            partitions: HashMap::new(),
            summary: StreamSummary::default(),
            processed: Processed::default(),
            reported_counts: PipelineCounts::default(),
            committed_in_background: BTreeMap::new(),
            probe: None,
            brokers_were_lost: false,
        };
        let result = run.consume(pipeline, observer);
        let mut summary = run.summary;
        summary.counts = pipeline.counts;
        result.map(|()| summary)
    }
}

struct RunState<'a> {
    engine: &'a StreamEngine,
    consumer: &'a BaseConsumer<EngineConsumerContext>,
    producer: &'a ThreadedProducer<DeliveryTracker>,
    checkpoints: Checkpointer,
    partitions: HashMap<String, HashMap<i32, PartitionState>>,
    summary: StreamSummary,
    processed: Processed,
    reported_counts: PipelineCounts,
    /// The latest offset per partition committed without waiting (see `finish_checkpoints`).
    committed_in_background: BTreeMap<(String, i32), i64>,
    /// Reads a partition's message at the archive's last offset; made at the first need.
    probe: Option<BaseConsumer>,
    /// Every broker connection was down since the last message: the partitions are checked
    /// against the archive again at the next one.
    brokers_were_lost: bool,
}

/// How long a checkpoint (or the stop) waits for the cluster to acknowledge alerts and dead
/// letters before the run fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the loop looks at segment ages and publishes counters, in messages.
const HOUSEKEEPING_EVERY: u64 = 1024;

/// The longest the loop waits in one place (for a message, or for a batch being prepared)
/// before it looks at the stop conditions again.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

impl RunState<'_> {
    fn consume(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
    ) -> Result<(), KafkaError> {
        let started = Instant::now();
        let stop = self.engine.options.stop.clone();
        let threads = self.engine.settings.prepare_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let mut pool = PreparePool::new(pipeline.preparer(), threads)?;
        let mut first_message_at: Option<Instant> = None;
        let mut last_message_at: Option<Instant> = None;
        let mut processed_messages: u64 = 0;
        let mut processed_at_housekeeping: u64 = 0;
        loop {
            // Prepared batches first: their alerts are due.
            while let Some(batch) = pool.next_ready(None)? {
                processed_messages += self.finish_batch(pipeline, observer, batch)?;
            }
            if processed_messages - processed_at_housekeeping >= HOUSEKEEPING_EVERY {
                processed_at_housekeeping = processed_messages;
                self.housekeeping(pipeline, observer, false)?;
            }
            if stop.flag.load(Ordering::Relaxed) {
                break;
            }
            let idle = pool.in_flight() == 0;
            if let (Some(limit), Some(last)) = (stop.idle, last_message_at) {
                if idle && last.elapsed() >= limit {
                    break;
                }
            }
            // Messages that may still be taken in before the message limit.
            let allowed = stop.messages.map(|limit| {
                limit.saturating_sub(processed_messages + pool.pending_to_process() as u64)
            });
            if allowed == Some(0) || !pool.has_room() {
                if idle {
                    break;
                }
                if let Some(batch) = pool.next_ready(Some(POLL_TIMEOUT))? {
                    processed_messages += self.finish_batch(pipeline, observer, batch)?;
                }
                continue;
            }
            // Whatever the consumer has at hand, up to a batch; waiting only when nothing else
            // is under way.
            let consumer = self.consumer;
            let mut polled = consumer.poll(if idle { POLL_TIMEOUT } else { Duration::ZERO });
            let mut batch = pool.new_batch();
            let mut polled_any = false;
            loop {
                if self.rebalance_pending() {
                    // What was polled before the rebalance is finished under the old assignment.
                    pool.submit(std::mem::take(&mut batch))?;
                    while let Some(ready) = pool.next_ready(Some(POLL_TIMEOUT))? {
                        processed_messages += self.finish_batch(pipeline, observer, ready)?;
                    }
                    if pool.in_flight() > 0 {
                        continue;
                    }
                    self.handle_rebalance(pipeline, observer)?;
                }
                let message = match polled {
                    None => break,
                    Some(Err(error)) => {
                        counter!("platestream_consumer_errors_total").increment(1);
                        tracing::warn!(%error, "consumer error");
                        // A broker that comes back may have lost its topics (a `memory://` broker
                        // restarted): librdkafka then fetches the new partitions from the old
                        // positions, and nothing but the messages tells.
                        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
                            self.brokers_were_lost = true;
                        }
                        break;
                    }
                    Some(Ok(message)) => message,
                };
                polled_any = true;
                let now = Instant::now();
                first_message_at.get_or_insert(now);
                last_message_at = Some(now);
                let source = SourcePosition {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                };
                if self.brokers_were_lost {
                    self.brokers_were_lost = false;
                    let every: Vec<(String, i32)> = self
                        .partitions
                        .iter()
                        .flat_map(|(topic, states)| {
                            states.keys().map(|partition| (topic.clone(), *partition))
                        })
                        .collect();
                    processed_messages +=
                        self.finish_in_flight(&mut pool, &mut batch, pipeline, observer)?;
                    self.check_partitions_again(
                        pipeline,
                        observer,
                        every,
                        "the brokers were lost",
                    )?;
                }
                let mut classified = self.classify(&source)?;
                if matches!(classified, Classified::PositionWentBack) {
                    processed_messages +=
                        self.finish_in_flight(&mut pool, &mut batch, pipeline, observer)?;
                    let partition = vec![(source.topic.clone(), source.partition)];
                    self.check_partitions_again(
                        pipeline,
                        observer,
                        partition,
                        "the consumer's position went back without a seek of the engine's",
                    )?;
                    classified = self.classify(&source)?;
                }
                if let Classified::Take(disposition) = classified {
                    batch.push(
                        source,
                        disposition,
                        message.payload().unwrap_or_default(),
                        message.key(),
                        vendor_header(&message),
                        message.timestamp().to_millis(),
                    );
                }
                let limit_reached = allowed.is_some_and(|allowed| {
                    u64::try_from(batch.to_process()).unwrap_or(u64::MAX) >= allowed
                });
                if batch.is_full() || limit_reached {
                    break;
                }
                polled = consumer.poll(Duration::ZERO);
            }
            pool.submit(batch)?;
            if !polled_any {
                match pool.next_ready(Some(POLL_TIMEOUT))? {
                    Some(ready) => {
                        processed_messages += self.finish_batch(pipeline, observer, ready)?;
                    }
                    None if pool.in_flight() == 0 => {
                        self.housekeeping(pipeline, observer, false)?;
                    }
                    None => {}
                }
            }
        }
        // Messages already polled are finished (and archived) before the stop decides their fate.
        while pool.in_flight() > 0 {
            if let Some(batch) = pool.next_ready(Some(POLL_TIMEOUT))? {
                self.finish_batch(pipeline, observer, batch)?;
            }
        }
        self.stop(pipeline, observer)?;
        self.summary.elapsed = started.elapsed();
        if let (Some(first), Some(last)) = (first_message_at, last_message_at) {
            self.summary.active = last.duration_since(first);
        }
        Ok(())
    }

    /// What was polled before is finished under the partitions' old states, as at a rebalance.
    /// Returns the messages processed.
    fn finish_in_flight(
        &mut self,
        pool: &mut PreparePool,
        batch: &mut MessageBatch,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
    ) -> Result<u64, KafkaError> {
        pool.submit(std::mem::take(batch))?;
        let mut processed = 0;
        while pool.in_flight() > 0 {
            if let Some(ready) = pool.next_ready(Some(POLL_TIMEOUT))? {
                processed += self.finish_batch(pipeline, observer, ready)?;
            }
        }
        Ok(processed)
    }

    /// Makes the partitions' open segments durable without committing their offsets (they may
    /// be another incarnation's) and drops their states, so that each partition's next message
    /// checks it against the archive as at an assignment: another incarnation's files are retired
    /// and the partition consumed from its start. librdkafka announces no broker that lost its
    /// topics (a topic deleted and created again, a `memory://` broker restarted): it fetches the
    /// new partitions from the old positions, or resets them, and the old states would count the
    /// new partitions' first messages as the archived ones of the same offsets.
    fn check_partitions_again(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
        partitions: Vec<(String, i32)>,
        why: &str,
    ) -> Result<(), KafkaError> {
        tracing::warn!(
            partitions = partitions.len(),
            "{why}: checking the partitions against the archive again, as one may be another \
             incarnation"
        );
        counter!("platestream_partition_rechecks_total").increment(partitions.len() as u64);
        self.commit_segments(pipeline, &partitions)?;
        // Without their states, finishing those checkpoints commits no offset for them.
        for (topic, partition) in &partitions {
            if let Some(states) = self.partitions.get_mut(topic) {
                states.remove(partition);
            }
        }
        self.finish_checkpoints(observer, Waiting::ForAll, Committing::IfStillAssigned)?;
        for (topic, partition) in &partitions {
            self.forget_partition(pipeline, topic, *partition);
        }
        Ok(())
    }

    /// Drops what the run holds of a partition (its state, its passes, its unarchived reads) and
    /// returns its state.
    fn forget_partition(
        &mut self,
        pipeline: &mut Pipeline,
        topic: &str,
        partition: i32,
    ) -> Option<PartitionState> {
        pipeline.forget_partition(topic, partition);
        if let Some(unarchived) = &self.engine.options.unarchived {
            unarchived.forget_partition(topic, partition);
        }
        self.partitions
            .get_mut(topic)
            .and_then(|partitions| partitions.remove(&partition))
    }

    /// Whether the last poll assigned or revoked partitions.
    fn rebalance_pending(&self) -> bool {
        self.consumer
            .context()
            .rebalanced
            .lock()
            .is_ok_and(|rebalanced| !rebalanced.is_empty())
    }

    fn handle_rebalance(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
    ) -> Result<(), KafkaError> {
        let changed: Vec<(String, i32)> = match self.consumer.context().rebalanced.lock() {
            Ok(mut rebalanced) => rebalanced.drain(..).collect(),
            Err(_) => return Ok(()),
        };
        if changed.is_empty() {
            return Ok(());
        }
        // Checkpoints under way finish first: a partition's next owner recovers from what is
        // durable, so its files must not still be being renamed. Their offsets may no longer be
        // ours to commit; the archive already holds the reads, and recovery skips them.
        self.finish_checkpoints(observer, Waiting::ForAll, Committing::IfStillAssigned)?;
        for (topic, partition) in changed {
            let state = self.forget_partition(pipeline, &topic, partition);
            // Whoever owns the partition next starts from the last commit; finishing this
            // segment now would archive its reads a second time.
            if let Some(segment) = state.and_then(|state| state.segment) {
                // Counted, so that this engine's closing counters still add up: these messages
                // are the next owner's to archive.
                let covered = segment
                    .offsets()
                    .map_or(0, |(first, last)| (last - first + 1).max(0) as u64);
                self.summary.handed_over += covered;
                tracing::info!(
                    topic,
                    partition,
                    messages = covered,
                    "partition moved away; abandoning its open segment"
                );
                segment.abandon();
            }
        }
        Ok(())
    }

    fn partition_state(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<&mut PartitionState, KafkaError> {
        if !self.partitions.contains_key(topic) {
            // Looked up by reference first: this runs twice per message.
            self.partitions.insert(topic.to_owned(), HashMap::new());
        }
        let partitions = self
            .partitions
            .get_mut(topic)
            .ok_or_else(|| KafkaError::Internal("topic state vanished".to_owned()))?;
        if let std::collections::hash_map::Entry::Vacant(vacant) = partitions.entry(partition) {
            let root = &self.engine.archive.root;
            let mut recovery = recover_partition(root, topic, partition)?;
            for path in &recovery.removed_incomplete {
                tracing::warn!(path = %path.display(), "removed a file of an incomplete segment; its reads will be replayed");
            }
            let (low, mut high) = self
                .consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .map_err(KafkaError::client("watermarks"))?;
            let mut committed = committed_offset(self.consumer, topic, partition)?;
            if recovery
                .archived_through
                .is_some_and(|through| high <= through)
                || committed.is_some_and(|offset| offset > high)
            {
                // Before taking the archive or the commit for another incarnation's, make sure
                // the watermark is the partition's end: tansu's can be short of it.
                high =
                    confirmed_partition_end(&self.engine.settings, topic, partition, (low, high))?;
            }
            let other_incarnation = match recovery.archived_through {
                // The partition never held the offsets the archive says it archived: the topic
                // was created again, or this is another broker. Skipping up to them would lose
                // the new messages there.
                Some(through) if high <= through => Some(
                    "the archive's positions are of an earlier incarnation of this partition (it \
                     ends before them)",
                ),
                // It holds them, but perhaps as another topic's: one created again that has as
                // many messages by now. The archive's last message tells.
                Some(through) if through >= low => archived_message_replaced(
                    &mut self.probe,
                    &self.engine.settings,
                    topic,
                    partition,
                    through,
                    recovery.archived_last_message,
                )
                .then_some(
                    "the archive's positions are of an earlier incarnation of this partition (its \
                     message at the archive's last offset is another)",
                ),
                _ => None,
            };
            if let Some(why) = other_incarnation {
                let through = recovery.archived_through.unwrap_or_default();
                let retired = retire_partition(root, topic, partition, Timestamp::now().millis())?;
                counter!("platestream_archive_partitions_retired_total").increment(1);
                tracing::warn!(
                    topic,
                    partition,
                    archived_through = through,
                    high_watermark = high,
                    files = retired.len(),
                    "{why}; its files stay queryable as *.retired*.parquet and the partition is \
                     consumed from its start"
                );
                recovery.archived_through = None;
                // A commit of that incarnation is as foreign as its archive.
                committed = None;
            }
            let resume_at = resume_offset(committed, recovery.archived_through, (low, high));
            tracing::info!(topic, partition, archived_through = ?recovery.archived_through, resume_at, "partition assigned");
            vacant.insert(PartitionState {
                archived_through: recovery.archived_through,
                resume_at: Some(resume_at),
                last_seek: None,
                last_classified: None,
                segment: None,
            });
        }
        partitions
            .get_mut(&partition)
            .ok_or_else(|| KafkaError::Internal("partition state vanished".to_owned()))
    }

    /// Decides, when a message is polled, what becomes of it (see [`Classified`]).
    fn classify(&mut self, source: &SourcePosition) -> Result<Classified, KafkaError> {
        let consumer = self.consumer;
        let state = self.partition_state(&source.topic, source.partition)?;
        if state.resume_at.is_none()
            && state
                .last_classified
                .is_some_and(|last| source.offset <= last)
        {
            return Ok(Classified::PositionWentBack);
        }
        if let Some(resume_at) = state.resume_at {
            if source.offset > resume_at {
                if state
                    .last_seek
                    .is_none_or(|at| at.elapsed() > Duration::from_millis(500))
                {
                    state.last_seek = Some(Instant::now());
                    if let Err(error) = consumer.seek(
                        &source.topic,
                        source.partition,
                        Offset::Offset(resume_at),
                        Duration::from_secs(5),
                    ) {
                        tracing::debug!(%error, "seek not possible yet; will retry");
                    }
                }
                return Ok(Classified::Skip);
            }
            if source.offset == resume_at {
                state.resume_at = None;
            }
        }
        let already_archived = source.offset < state.resume_at.unwrap_or(i64::MIN)
            || state
                .archived_through
                .is_some_and(|through| source.offset <= through);
        state.last_classified = Some(
            state
                .last_classified
                .map_or(source.offset, |last| last.max(source.offset)),
        );
        Ok(Classified::Take(if already_archived {
            Disposition::AlreadyArchived
        } else {
            Disposition::Process
        }))
    }

    /// Finishes a prepared batch in message order; returns the messages processed.
    fn finish_batch(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
        batch: PreparedBatch,
    ) -> Result<u64, KafkaError> {
        let mut processed = 0;
        for message in batch.messages {
            if self.finish_message(pipeline, observer, message)? {
                processed += 1;
            }
        }
        Ok(processed)
    }

    /// Returns whether the message was processed (false: it was archived by an earlier run).
    fn finish_message(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
        message: PreparedMessage,
    ) -> Result<bool, KafkaError> {
        let PreparedMessage {
            source,
            payload_fingerprint,
            key,
            produced_at_ms,
            prepared,
        } = message;
        let archive = Arc::clone(&self.engine.archive);
        let state = self.partition_state(&source.topic, source.partition)?;
        let segment = match &mut state.segment {
            Some(segment) => segment,
            empty => empty.insert(SegmentWriter::new(
                archive,
                &source.topic,
                source.partition,
            )?),
        };
        // Covered in message order, so a checkpoint commits only offsets whose reads it holds.
        segment.cover_message(source.offset, payload_fingerprint);
        let Some(prepared) = prepared else {
            // Archived by an earlier run that did not get to commit it: committing it now keeps
            // the group's lag honest.
            self.summary.already_archived += 1;
            return Ok(false);
        };
        // Taken out for the call so that the partition's state can be borrowed beside it.
        let mut processed = std::mem::take(&mut self.processed);
        pipeline.finish(prepared, Timestamp::now(), &mut processed);
        let result = self.deliver(
            observer,
            &source,
            key.as_deref(),
            produced_at_ms,
            &mut processed,
        );
        processed.clear();
        self.processed = processed;
        result.map(|()| true)
    }

    /// Archives a finished message's reads and alerts and produces its alerts and dead letters.
    fn deliver(
        &mut self,
        observer: &mut dyn StreamObserver,
        source: &SourcePosition,
        key: Option<&[u8]>,
        produced_at_ms: Option<i64>,
        processed: &mut Processed,
    ) -> Result<(), KafkaError> {
        if let Some(segment) = self
            .partitions
            .get_mut(&source.topic)
            .and_then(|partitions| partitions.get_mut(&source.partition))
            .and_then(|state| state.segment.as_mut())
        {
            for alert in &processed.alerts {
                segment.append_alert(alert)?;
            }
        }
        // With duplicate suppression the reads that come out may be passes that began in another
        // partition: each goes to its own partition's segment.
        self.archive_reads(&mut processed.reads)?;
        let settings = &self.engine.settings;
        for alert in &processed.alerts {
            // A repeat hit within the list's suppression window is archived (above) but does not
            // page officers again.
            if alert.suppressed {
                counter!("platestream_alerts_suppressed_total").increment(1);
                continue;
            }
            let topic = match alert.route {
                AlertRoute::Field => &settings.alerts_topic,
                AlertRoute::Covert => &settings.covert_alerts_topic,
            };
            let json = serde_json::to_vec(alert)
                .map_err(|error| KafkaError::Internal(error.to_string()))?;
            send(
                self.producer,
                BaseRecord::with_opaque_to(topic, self.producer.context().begin())
                    .key(alert.read_plate_norm.as_bytes())
                    .payload(json.as_slice()),
            )?;
            if let Some(produced_at_ms) = produced_at_ms {
                // From the reader's producer to the alert's: what an operator watches for.
                let millis = (Timestamp::now().millis() - produced_at_ms).max(0);
                histogram!("platestream_alert_latency_seconds").record(millis as f64 / 1_000.0);
            }
            observer.on_alert(alert);
        }
        for dead_letter in &processed.dead_letters {
            let mut record = BaseRecord::with_opaque_to(
                &settings.dead_letter_topic,
                self.producer.context().begin(),
            )
            .payload(dead_letter.payload.as_slice())
            .headers(dead_letter_headers(dead_letter));
            if let Some(key) = key {
                record = record.key(key);
            }
            if send_unless_too_large(self.producer, record)? == Sent::TooLarge {
                // A message just under the limit is over it with the reason's headers: its
                // beginning goes, with its length, rather than the engine stopping at it for good
                // (the whole message stays in the raw topic for its retention).
                let kept = &dead_letter.payload
                    [..dead_letter.payload.len().min(TRUNCATED_DEAD_LETTER_BYTES)];
                let length = dead_letter.payload.len().to_string();
                let headers = dead_letter_headers(dead_letter).insert(Header {
                    key: "platestream.payload_truncated_from",
                    value: Some(length.as_str()),
                });
                let mut record = BaseRecord::with_opaque_to(
                    &settings.dead_letter_topic,
                    self.producer.context().begin(),
                )
                .payload(kept)
                .headers(headers);
                if let Some(key) = key {
                    record = record.key(key);
                }
                send(self.producer, record)?;
            }
        }
        Ok(())
    }
    /// Appends reads to the open segments of the partitions they came from; with an API to
    /// serve them, the reads move on to wait there until their segments are durable.
    fn archive_reads(
        &mut self,
        reads: &mut Vec<platestream_engine::PlateRead>,
    ) -> Result<(), KafkaError> {
        let mut moved_away = Vec::new();
        for read in reads.iter() {
            let Some(source) = &read.source else {
                return Err(KafkaError::Internal(format!(
                    "read {} has no source position",
                    read.read_id
                )));
            };
            let Some(state) = self
                .partitions
                .get_mut(&source.topic)
                .and_then(|partitions| partitions.get_mut(&source.partition))
            else {
                // The partition moved away while the pass was held: its next owner replays it.
                moved_away.push((source.topic.clone(), source.partition));
                continue;
            };
            let segment = match &mut state.segment {
                Some(segment) => segment,
                empty => empty.insert(SegmentWriter::new(
                    Arc::clone(&self.engine.archive),
                    &source.topic,
                    source.partition,
                )?),
            };
            segment.append_read(read)?;
        }
        if let Some(unarchived) = &self.engine.options.unarchived {
            if !reads.is_empty() {
                unarchived.hold(reads.drain(..));
            }
            for (topic, partition) in moved_away {
                unarchived.forget_partition(&topic, partition);
            }
        }
        Ok(())
    }

    /// Archives the reads of vehicle passes that are over.
    fn release_due_passes(&mut self, pipeline: &mut Pipeline) -> Result<(), KafkaError> {
        let mut processed = std::mem::take(&mut self.processed);
        pipeline.release_due(Timestamp::now(), &mut processed);
        let result = self.archive_reads(&mut processed.reads);
        processed.clear();
        self.processed = processed;
        result
    }

    /// Commits due segments and publishes counters.
    fn housekeeping(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
        everything: bool,
    ) -> Result<(), KafkaError> {
        self.release_due_passes(pipeline)?;
        self.finish_checkpoints(observer, Waiting::No, Committing::Yes)?;
        let options = &self.engine.options;
        let due: Vec<(String, i32)> = self
            .partitions
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(move |(partition, state)| {
                    let segment = state.segment.as_ref()?;
                    let is_due = everything
                        || segment.rows() >= options.segment_max_rows
                        || segment.age() >= options.segment_max_age;
                    is_due.then(|| (topic.clone(), *partition))
                })
            })
            .collect();
        if !due.is_empty() {
            self.commit_segments(pipeline, &due)?;
        }
        self.publish_counts(pipeline);
        Ok(())
    }

    fn publish_counts(&mut self, pipeline: &Pipeline) {
        let now = pipeline.counts;
        let before = self.reported_counts;
        counter!("platestream_messages_consumed_total").increment(now.messages - before.messages);
        counter!("platestream_reads_decoded_total").increment(now.reads - before.reads);
        counter!("platestream_messages_dead_lettered_total")
            .increment(now.dead_lettered - before.dead_lettered);
        counter!("platestream_messages_not_reads_total")
            .increment(now.not_reads - before.not_reads);
        counter!("platestream_reads_refused_total")
            .increment(now.reads_refused - before.reads_refused);
        counter!("platestream_alerts_total").increment(now.alerts - before.alerts);
        counter!("platestream_duplicates_suppressed_total")
            .increment(now.duplicates_suppressed - before.duplicates_suppressed);
        self.reported_counts = now;
    }

    /// The checkpoint: acknowledgements first, then durable files, then the Kafka commit. The
    /// files are finished and fsynced by the checkpoint thread while consumption goes on; their
    /// offsets are committed once it reports them durable (`finish_checkpoints`).
    fn commit_segments(
        &mut self,
        pipeline: &mut Pipeline,
        due: &[(String, i32)],
    ) -> Result<(), KafkaError> {
        let started = Instant::now();
        // A pass still held when its partition's archive becomes durable would be skipped by the
        // next run (it resumes after the archive): end those passes now.
        let mut processed = std::mem::take(&mut self.processed);
        for (topic, partition) in due {
            pipeline.flush_partition(topic, *partition, &mut processed);
        }
        let archived = self.archive_reads(&mut processed.reads);
        processed.clear();
        self.processed = processed;
        archived?;
        // Alerts and dead letters handed over so far are waited for by the checkpoint thread.
        let deliveries_before = self.producer.context().mark();
        let segments: Vec<DueSegment> = due
            .iter()
            .filter_map(|(topic, partition)| {
                let state = self.partitions.get_mut(topic)?.get_mut(partition)?;
                Some(DueSegment {
                    topic: topic.clone(),
                    partition: *partition,
                    segment: state.segment.take()?,
                })
            })
            .collect();
        if !segments.is_empty() {
            self.checkpoints.submit(Checkpoint {
                started,
                deliveries_before,
                segments,
            })?;
        }
        Ok(())
    }

    /// Takes the reports of checkpoints made durable, records them and commits their offsets.
    fn finish_checkpoints(
        &mut self,
        observer: &mut dyn StreamObserver,
        waiting: Waiting,
        committing: Committing,
    ) -> Result<(), KafkaError> {
        while let Some(finished) = self.checkpoints.next_finished(waiting)? {
            let mut offsets = TopicPartitionList::new();
            for CommittedSegment {
                topic,
                partition,
                report,
            } in finished.segments
            {
                let Some((_, last)) = report.offsets else {
                    continue;
                };
                let state = self
                    .partitions
                    .get_mut(&topic)
                    .and_then(|partitions| partitions.get_mut(&partition));
                let still_assigned = state.is_some();
                if let Some(state) = state {
                    state.archived_through = Some(last);
                }
                if let Some(unarchived) = &self.engine.options.unarchived {
                    unarchived.archived_through(&topic, partition, last);
                }
                self.summary.reads_archived += report.rows(READS_TABLE) as u64;
                self.summary.alerts_archived += report.rows(ALERTS_TABLE) as u64;
                self.summary.files_written += report.files.len() as u64;
                self.summary.bytes_written += report.bytes();
                counter!("platestream_archive_rows_total", "table" => READS_TABLE)
                    .increment(report.rows(READS_TABLE) as u64);
                counter!("platestream_archive_rows_total", "table" => ALERTS_TABLE)
                    .increment(report.rows(ALERTS_TABLE) as u64);
                counter!("platestream_archive_files_total").increment(report.files.len() as u64);
                counter!("platestream_archive_bytes_total").increment(report.bytes());
                observer.on_segment(&report);
                let commit = match committing {
                    Committing::Yes => true,
                    Committing::IfStillAssigned => still_assigned,
                    Committing::No => false,
                };
                if commit {
                    offsets
                        .add_partition_offset(&topic, partition, Offset::Offset(last + 1))
                        .map_err(KafkaError::client("offset list"))?;
                    self.summary.committed.insert((topic, partition), last + 1);
                }
            }
            if offsets.count() > 0 {
                // While consuming, the commit goes out in the background (a failure is logged by
                // the consumer context, and the next checkpoint's commit covers it); a stop or a
                // rebalance waits for it.
                let mode = match waiting {
                    Waiting::No => {
                        self.committed_in_background
                            .extend(offsets.elements().iter().filter_map(|element| {
                                match element.offset() {
                                    Offset::Offset(next) => Some((
                                        (element.topic().to_owned(), element.partition()),
                                        next,
                                    )),
                                    _ => None,
                                }
                            }));
                        CommitMode::Async
                    }
                    Waiting::ForAll => CommitMode::Sync,
                };
                let committed = self.consumer.commit(&offsets, mode);
                match (committed, committing) {
                    (Ok(()), _) => {}
                    (Err(error), Committing::IfStillAssigned) => {
                        tracing::warn!(%error, "offsets of a checkpoint finished during a rebalance not committed; the archive holds their reads");
                    }
                    (Err(error), _) => return Err(KafkaError::client("committing offsets")(error)),
                }
            }
            histogram!("platestream_checkpoint_seconds")
                .record(finished.started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn stop(
        &mut self,
        pipeline: &mut Pipeline,
        observer: &mut dyn StreamObserver,
    ) -> Result<(), KafkaError> {
        // Checkpoints begun before the stop are committed as they would have been.
        self.finish_checkpoints(observer, Waiting::ForAll, Committing::Yes)?;
        self.settle_background_commits()?;
        match self.engine.options.on_stop {
            OnStop::CommitAll => {
                self.housekeeping(pipeline, observer, true)?;
                self.finish_checkpoints(observer, Waiting::ForAll, Committing::Yes)?;
            }
            OnStop::ArchiveWithoutCommit => {
                let all: Vec<(String, i32)> = self
                    .partitions
                    .iter()
                    .flat_map(|(topic, partitions)| partitions.keys().map(|p| (topic.clone(), *p)))
                    .collect();
                self.commit_segments(pipeline, &all)?;
                self.finish_checkpoints(observer, Waiting::ForAll, Committing::No)?;
                self.summary.committed.clear();
            }
            OnStop::AbandonAll => {
                for (topic, partitions) in &mut self.partitions {
                    for (partition, state) in partitions.iter_mut() {
                        pipeline.forget_partition(topic, *partition);
                        if let Some(segment) = state.segment.take() {
                            segment.abandon();
                        }
                    }
                }
                self.summary.committed.clear();
            }
        }
        // Alerts of reads whose segments were not due are on their topics before the run ends.
        let producer = self.producer.context();
        producer.wait_for(producer.mark(), DELIVERY_TIMEOUT)?;
        self.publish_counts(pipeline);
        Ok(())
    }

    /// Commits again, and waits for, the offsets last committed in the background, so that a
    /// stop never leaves a durable checkpoint uncommitted behind an unfinished request.
    fn settle_background_commits(&mut self) -> Result<(), KafkaError> {
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in std::mem::take(&mut self.committed_in_background) {
            let still_assigned = self
                .partitions
                .get(&topic)
                .is_some_and(|partitions| partitions.contains_key(&partition));
            if still_assigned {
                offsets
                    .add_partition_offset(&topic, partition, Offset::Offset(next))
                    .map_err(KafkaError::client("offset list"))?;
            }
        }
        if offsets.count() > 0 {
            self.consumer
                .commit(&offsets, CommitMode::Sync)
                .map_err(KafkaError::client("committing offsets"))?;
        }
        Ok(())
    }
}

/// Whether `finish_checkpoints` waits for checkpoints still under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    No,
    ForAll,
}

/// Whether `finish_checkpoints` commits the offsets that became durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Committing {
    Yes,
    /// Only for partitions this member still owns (during a rebalance); a failed commit is logged.
    IfStillAssigned,
    /// A simulated crash between durable files and the commit.
    No,
}

struct DueSegment {
    topic: String,
    partition: i32,
    segment: SegmentWriter,
}

struct Checkpoint {
    started: Instant,
    /// Alerts and dead letters numbered before this must be acknowledged first.
    deliveries_before: usize,
    segments: Vec<DueSegment>,
}

struct CommittedSegment {
    topic: String,
    partition: i32,
    report: SegmentReport,
}

struct FinishedCheckpoint {
    started: Instant,
    segments: Vec<CommittedSegment>,
}

/// Finishes and fsyncs due segments on a thread of its own, in the order they were handed over,
/// so a checkpoint does not stop the consuming thread (and the alerts behind it) for the
/// hundreds of milliseconds the files take. One checkpoint may wait while one is written;
/// a slower disk then makes `submit` wait, so it slows consumption instead of filling memory.
struct Checkpointer {
    requests: Option<SyncSender<Checkpoint>>,
    finished: Receiver<Result<FinishedCheckpoint, KafkaError>>,
    in_flight: usize,
    files_in_flight: Arc<FilesInFlight>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn spawn(
        deliveries: Arc<DeliveryTracker>,
        files_in_flight: Arc<FilesInFlight>,
    ) -> Result<Self, KafkaError> {
        let (requests, incoming) = sync_channel::<Checkpoint>(1);
        let (report, finished) = channel();
        let settled = Arc::clone(&files_in_flight);
        let thread = std::thread::Builder::new()
            .name("archive-checkpoint".to_owned())
            .spawn(move || {
                for checkpoint in incoming {
                    let result = Self::make_durable(&deliveries, checkpoint);
                    settled.end();
                    if report.send(result).is_err() {
                        return;
                    }
                }
            })
            .map_err(|error| KafkaError::Internal(format!("checkpoint thread: {error}")))?;
        Ok(Self {
            requests: Some(requests),
            finished,
            in_flight: 0,
            files_in_flight,
            thread: Some(thread),
        })
    }

    /// Acknowledgements first, then the files: a segment is committed only once every alert and
    /// dead letter of its reads is on its topic.
    fn make_durable(
        deliveries: &DeliveryTracker,
        checkpoint: Checkpoint,
    ) -> Result<FinishedCheckpoint, KafkaError> {
        deliveries.wait_for(checkpoint.deliveries_before, DELIVERY_TIMEOUT)?;
        let segments = checkpoint
            .segments
            .into_iter()
            .map(|due| {
                Ok(CommittedSegment {
                    report: due.segment.commit()?,
                    topic: due.topic,
                    partition: due.partition,
                })
            })
            .collect::<Result<Vec<_>, ArchiveError>>()?;
        Ok(FinishedCheckpoint {
            started: checkpoint.started,
            segments,
        })
    }

    fn submit(&mut self, checkpoint: Checkpoint) -> Result<(), KafkaError> {
        self.files_in_flight.begin();
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send(checkpoint).is_ok());
        if !sent {
            self.files_in_flight.end();
            return Err(KafkaError::Internal(
                "the checkpoint thread has stopped".to_owned(),
            ));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// The next checkpoint made durable, if one is (or, when waiting, once one is).
    fn next_finished(
        &mut self,
        waiting: Waiting,
    ) -> Result<Option<FinishedCheckpoint>, KafkaError> {
        if self.in_flight == 0 {
            return Ok(None);
        }
        let next = match waiting {
            Waiting::No => match self.finished.try_recv() {
                Ok(next) => next,
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(Self::stopped()),
            },
            Waiting::ForAll => self.finished.recv().map_err(|_| Self::stopped())?,
        };
        self.in_flight -= 1;
        Ok(Some(next?))
    }

    fn stopped() -> KafkaError {
        KafkaError::Internal("the checkpoint thread stopped unexpectedly".to_owned())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Segments still queued are committed (their files durable) but not their offsets: the
        // next run's recovery skips their reads.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where the group committed it would resume `partition`, if it did.
fn committed_offset(
    consumer: &BaseConsumer<EngineConsumerContext>,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, KafkaError> {
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, partition);
    Ok(consumer
        .committed_offsets(list, Duration::from_secs(10))
        .map_err(KafkaError::client("committed offsets"))?
        .elements()
        .first()
        .and_then(|element| match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        }))
}

/// Whether the partition's message at `offset` is not the one the archive recorded there
/// (`expected`): then the partition is another incarnation that has grown as long. False when
/// nothing was recorded or the message cannot be read (deleted by retention, or unreachable inside
/// a tansu record batch): the archive is then taken for this partition's, as before the record.
fn archived_message_replaced(
    probe: &mut Option<BaseConsumer>,
    settings: &KafkaSettings,
    topic: &str,
    partition: i32,
    offset: i64,
    expected: Option<u64>,
) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let found = match probe {
        Some(probe) => Ok(&*probe),
        empty => partition_probe(settings).map(|made| &*empty.insert(made)),
    }
    .and_then(|probe| message_fingerprint_at(probe, topic, partition, offset));
    match found {
        Ok(Some(found)) => found != expected,
        Ok(None) => {
            tracing::debug!(
                topic,
                partition,
                offset,
                "the archive's last message could not be read back"
            );
            false
        }
        Err(error) => {
            tracing::warn!(%error, topic, partition, offset, "could not read the partition's message at the archive's last offset; taking the archive as this partition's");
            false
        }
    }
}

/// Where consumption of a newly assigned partition must resume: after what is committed and
/// after what is archived, and no earlier than the oldest offset the broker still holds.
fn resume_offset(
    committed: Option<i64>,
    archived_through: Option<i64>,
    (low, high): (i64, i64),
) -> i64 {
    // A commit beyond the end is of an earlier incarnation of the topic, like an archive's.
    let committed = committed.filter(|&offset| offset <= high);
    let after_archive = archived_through.map_or(low, |through| through + 1);
    committed.unwrap_or(low).max(after_archive).max(low)
}

fn dead_letter_headers(dead_letter: &DeadLetter) -> OwnedHeaders {
    let partition = dead_letter.source.partition.to_string();
    let offset = dead_letter.source.offset.to_string();
    let at = dead_letter.dead_lettered_at.to_string();
    [
        ("platestream.reason_code", dead_letter.reason_code),
        ("platestream.reason", dead_letter.reason.as_str()),
        (
            "platestream.source.topic",
            dead_letter.source.topic.as_str(),
        ),
        ("platestream.source.partition", partition.as_str()),
        ("platestream.source.offset", offset.as_str()),
        ("platestream.dead_lettered_at", at.as_str()),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// How much of a dead letter's payload is kept when the whole of it, with its headers, is more
/// than the producer may send.
const TRUNCATED_DEAD_LETTER_BYTES: usize = 512 * 1024;

#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Queued,
    /// Over `message.max.bytes`: refused before it left, and settled.
    TooLarge,
}

/// Sends, waiting while librdkafka's queue is full: backpressure instead of an error.
fn send(
    producer: &ThreadedProducer<DeliveryTracker>,
    record: BaseRecord<'_, [u8], [u8], usize>,
) -> Result<(), KafkaError> {
    match send_unless_too_large(producer, record)? {
        Sent::Queued => Ok(()),
        Sent::TooLarge => Err(KafkaError::client("producing")(
            RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        )),
    }
}

/// [`send`], telling a message too large to send apart from other errors.
fn send_unless_too_large(
    producer: &ThreadedProducer<DeliveryTracker>,
    mut record: BaseRecord<'_, [u8], [u8], usize>,
) -> Result<Sent, KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(Sent::Queued),
            Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((
                RdKafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                refused,
            )) => {
                producer.context().settle(refused.delivery_opaque);
                return Ok(Sent::TooLarge);
            }
            Err((error, refused)) => {
                producer.context().settle(refused.delivery_opaque);
                return Err(KafkaError::client("producing")(error));
            }
        }
    }
}

/// The vendor whose `serve` endpoint produced the message, from its `platestream-vendor` header.
fn vendor_header(message: &impl Message) -> Option<&[u8]> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == crate::http::VENDOR_HEADER)
        .and_then(|header| header.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_waits_for_checkpoint_files_in_flight_and_no_longer() {
        let in_flight = Arc::new(FilesInFlight::default());
        assert!(in_flight.wait_settled(Duration::ZERO), "none in flight");
        in_flight.begin();
        assert!(!in_flight.wait_settled(Duration::from_millis(20)));
        let writer = Arc::clone(&in_flight);
        let finishing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.end();
        });
        let started = Instant::now();
        assert!(in_flight.wait_settled(Duration::from_secs(10)));
        assert!(started.elapsed() >= Duration::from_millis(40));
        finishing.join().unwrap();
    }

    #[test]
    fn a_checkpoint_waits_for_the_deliveries_handed_over_before_it_and_no_others() {
        let tracker = Arc::new(DeliveryTracker::default());
        let before = [tracker.begin(), tracker.begin()];
        let mark = tracker.mark();
        let after = tracker.begin();
        let settler = {
            let tracker = Arc::clone(&tracker);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                for number in before {
                    tracker.settle(number);
                }
            })
        };
        tracker
            .wait_for(mark, Duration::from_secs(10))
            .expect("the two records before the mark were acknowledged");
        settler.join().expect("settler thread");
        // The record handed over after the mark is still out: a later checkpoint waits for it.
        let later = tracker.wait_for(tracker.mark(), Duration::from_millis(50));
        assert!(matches!(later, Err(KafkaError::DeliveryFailed(_))));
        tracker.settle(after);
        tracker
            .wait_for(tracker.mark(), Duration::from_millis(50))
            .expect("everything acknowledged");
    }

    #[test]
    fn a_refused_delivery_fails_every_later_checkpoint() {
        let tracker = DeliveryTracker::default();
        let number = tracker.begin();
        tracker.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = tracker.last_failure.lock() {
            *last = Some("Message timed out".to_owned());
        }
        tracker.settle(number);
        match tracker.wait_for(tracker.mark(), Duration::from_secs(1)) {
            Err(KafkaError::DeliveryFailed(reason)) => assert!(reason.contains("timed out")),
            other => panic!("expected a delivery failure, got {other:?}"),
        }
    }
}
