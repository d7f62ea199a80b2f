//! Decoding, normalizing and matching consumed messages on worker threads, in batches.
//!
//! The consuming thread owns everything stateful (duplicate folding, alert suppression, archive
//! segments, offsets), so it must see every message in partition order. What comes before that
//! state — decode, normalize, match — needs only the hotlist, and is most of a message's cost.
//! The consuming thread copies what it polls into a [`MessageBatch`] and hands the batch to the
//! pool; workers prepare batches concurrently; [`PreparePool::next_ready`] gives them back in
//! the order they were submitted, however the workers finished.
//!
//! A batch is whatever the consumer has at hand when it is collected (up to a cap), never a wait
//! for more, so a quiet topic still sees each read prepared at once: alert latency does not pay
//! for batching.

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use platestream_engine::archive;
use platestream_engine::pipeline::{Prepared, Preparer};
use platestream_engine::{SourcePosition, Timestamp};

use super::KafkaError;

/// Messages in one batch at most: enough that handing a batch over costs nothing per message.
pub(super) const MAX_BATCH_MESSAGES: usize = 512;
/// Payload bytes in one batch at most (a message larger than this is a batch of its own).
pub(super) const MAX_BATCH_BYTES: usize = 1 << 20;

/// What the consuming thread decided about a message when it polled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Decode, normalize, match, archive.
    Process,
    /// Archived by an earlier run that did not commit it: only its offset is covered.
    AlreadyArchived,
}

/// A polled message, without its bytes (they are in the batch's buffer).
#[derive(Debug)]
struct Polled {
    source: SourcePosition,
    disposition: Disposition,
    payload: Range<usize>,
    key: Option<Range<usize>>,
    /// The `platestream-vendor` header's value: the `serve` endpoint that produced the message.
    vendor: Option<Range<usize>>,
    produced_at_ms: Option<i64>,
}

/// Consumed messages copied out of the consumer, in poll order.
#[derive(Debug, Default)]
pub(super) struct MessageBatch {
    bytes: Vec<u8>,
    messages: Vec<Polled>,
    to_process: usize,
}

impl MessageBatch {
    pub(super) fn push(
        &mut self,
        source: SourcePosition,
        disposition: Disposition,
        payload: &[u8],
        key: Option<&[u8]>,
        vendor: Option<&[u8]>,
        produced_at_ms: Option<i64>,
    ) {
        let payload = self.append(payload);
        let key = key.map(|key| self.append(key));
        let vendor = vendor.map(|vendor| self.append(vendor));
        if disposition == Disposition::Process {
            self.to_process += 1;
        }
        self.messages.push(Polled {
            source,
            disposition,
            payload,
            key,
            vendor,
            produced_at_ms,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.messages.len() >= MAX_BATCH_MESSAGES || self.bytes.len() >= MAX_BATCH_BYTES
    }

    /// Messages in the batch that will be processed (not those only covered).
    pub(super) fn to_process(&self) -> usize {
        self.to_process
    }

    fn prepare(self, preparer: &Preparer) -> PreparedBatch {
        let now = Timestamp::now();
        let bytes = &self.bytes;
        let to_prepare = self
            .messages
            .iter()
            .filter(|message| message.disposition == Disposition::Process)
            .map(|message| {
                let vendor = message
                    .vendor
                    .clone()
                    .and_then(|vendor| bytes.get(vendor))
                    .and_then(|vendor| std::str::from_utf8(vendor).ok());
                (
                    bytes.get(message.payload.clone()).unwrap_or_default(),
                    message.source.clone(),
                    vendor,
                )
            });
        let mut prepared = preparer
            .prepare_batch_of_vendors(to_prepare, now)
            .into_iter();
        let messages = self
            .messages
            .into_iter()
            .map(|message| {
                let prepared = match message.disposition {
                    Disposition::Process => prepared.next(),
                    Disposition::AlreadyArchived => None,
                };
                let payload = bytes.get(message.payload.clone()).unwrap_or_default();
                PreparedMessage {
                    payload_fingerprint: archive::message_fingerprint(payload),
                    key: message
                        .key
                        .and_then(|key| bytes.get(key))
                        .map(<[u8]>::to_vec),
                    source: message.source,
                    produced_at_ms: message.produced_at_ms,
                    prepared,
                }
            })
            .collect();
        let mut spare_bytes = self.bytes;
        spare_bytes.clear();
        PreparedBatch {
            messages,
            to_process: self.to_process,
            spare_bytes,
        }
    }
}

/// A message after preparation, with what finishing it needs from the consumer.
#[derive(Debug)]
pub(super) struct PreparedMessage {
    pub source: SourcePosition,
    /// The payload's `archive::message_fingerprint`, for the segment's record of its last message.
    pub payload_fingerprint: u64,
    pub key: Option<Vec<u8>>,
    pub produced_at_ms: Option<i64>,
    /// `None` for a message archived by an earlier run.
    pub prepared: Option<Prepared>,
}

#[derive(Debug)]
pub(super) struct PreparedBatch {
    pub messages: Vec<PreparedMessage>,
    to_process: usize,
    /// The batch's byte buffer, emptied, for the consuming thread to fill again.
    spare_bytes: Vec<u8>,
}

/// A prepared batch, or why preparing it failed (a bug: decoders refuse bad input, they do not
/// panic). Without this a worker's panic would leave its batch missing and the engine waiting.
type Outcome = Result<PreparedBatch, String>;

/// Prepares batches on worker threads (or, with no workers, on the caller's thread) and returns
/// them in submission order.
pub(super) struct PreparePool {
    preparer: Preparer,
    work: Option<SyncSender<(u64, MessageBatch)>>,
    done: Receiver<(u64, Outcome)>,
    workers: Vec<JoinHandle<()>>,
    next_submitted: u64,
    next_returned: u64,
    /// Prepared batches that finished before an earlier one.
    finished: BTreeMap<u64, Outcome>,
    /// Messages to process in submitted batches not yet returned.
    pending_to_process: usize,
    max_in_flight: usize,
    /// Byte buffers of prepared batches, reused by new ones: a fresh buffer grew by doubling to
    /// about 440 KB for every batch, and its new pages were 15 % of the consuming thread's time.
    spare_bytes: Vec<Vec<u8>>,
}

impl PreparePool {
    /// `threads` workers; 0 prepares each batch on the calling thread when it is submitted.
    pub(super) fn new(preparer: Preparer, threads: usize) -> Result<Self, KafkaError> {
        let max_in_flight = (threads * 2).max(1);
        let (work_sender, work_receiver) = sync_channel::<(u64, MessageBatch)>(max_in_flight);
        let (done_sender, done) = sync_channel::<(u64, Outcome)>(max_in_flight);
        let work_receiver = Arc::new(Mutex::new(work_receiver));
        let mut workers = Vec::with_capacity(threads);
        for number in 0..threads {
            let preparer = preparer.clone();
            let work = Arc::clone(&work_receiver);
            let done = done_sender.clone();
            let worker = std::thread::Builder::new()
                .name(format!("prepare-{number}"))
                .spawn(move || prepare_batches(&preparer, &work, &done))
                .map_err(|error| KafkaError::Internal(format!("prepare thread: {error}")))?;
            workers.push(worker);
        }
        Ok(Self {
            preparer,
            work: (threads > 0).then_some(work_sender),
            done,
            workers,
            next_submitted: 0,
            next_returned: 0,
            finished: BTreeMap::new(),
            pending_to_process: 0,
            max_in_flight,
            spare_bytes: Vec::new(),
        })
    }

    /// An empty batch, with the buffer of one already prepared when there is one.
    pub(super) fn new_batch(&mut self) -> MessageBatch {
        MessageBatch {
            bytes: self.spare_bytes.pop().unwrap_or_default(),
            ..MessageBatch::default()
        }
    }

    /// Batches submitted and not yet returned.
    pub(super) fn in_flight(&self) -> usize {
        usize::try_from(self.next_submitted - self.next_returned).unwrap_or(usize::MAX)
    }

    /// Whether another batch may be submitted without waiting for a worker.
    pub(super) fn has_room(&self) -> bool {
        self.in_flight() < self.max_in_flight
    }

    /// Messages to process in batches submitted and not yet returned.
    pub(super) fn pending_to_process(&self) -> usize {
        self.pending_to_process
    }

    pub(super) fn submit(&mut self, batch: MessageBatch) -> Result<(), KafkaError> {
        if batch.is_empty() {
            return Ok(());
        }
        let sequence = self.next_submitted;
        self.next_submitted += 1;
        self.pending_to_process += batch.to_process();
        match &self.work {
            Some(work) => work.send((sequence, batch)).map_err(|_| stopped()),
            None => {
                let prepared = prepare_contained(&self.preparer, batch);
                self.finished.insert(sequence, prepared);
                Ok(())
            }
        }
    }

    /// The next batch in submission order: waits for it (up to `wait`) when it is still being
    /// prepared; `None` when nothing is in flight or the wait ran out.
    pub(super) fn next_ready(
        &mut self,
        wait: Option<Duration>,
    ) -> Result<Option<PreparedBatch>, KafkaError> {
        if self.in_flight() == 0 {
            return Ok(None);
        }
        loop {
            if let Some(outcome) = self.finished.remove(&self.next_returned) {
                self.next_returned += 1;
                let mut batch = outcome.map_err(|reason| {
                    KafkaError::Internal(format!("preparing a batch of messages failed: {reason}"))
                })?;
                self.pending_to_process = self.pending_to_process.saturating_sub(batch.to_process);
                // A buffer that one oversized message grew is let go.
                let reusable = batch.spare_bytes.capacity() <= 2 * MAX_BATCH_BYTES;
                if reusable && self.spare_bytes.len() <= self.max_in_flight {
                    self.spare_bytes
                        .push(std::mem::take(&mut batch.spare_bytes));
                }
                return Ok(Some(batch));
            }
            let received = match wait {
                None => match self.done.try_recv() {
                    Ok(received) => received,
                    Err(TryRecvError::Empty) => return Ok(None),
                    Err(TryRecvError::Disconnected) => return Err(stopped()),
                },
                Some(timeout) => match self.done.recv_timeout(timeout) {
                    Ok(received) => received,
                    Err(RecvTimeoutError::Timeout) => return Ok(None),
                    Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
                },
            };
            let (sequence, batch) = received;
            self.finished.insert(sequence, batch);
        }
    }
}

impl Drop for PreparePool {
    fn drop(&mut self) {
        // Workers stop when the work channel closes; one blocked on a full `done` channel is
        // released by dropping the receiver with `self` right after.
        self.work = None;
        while self.done.try_recv().is_ok() {}
        for worker in self.workers.drain(..) {
            // Drain while joining: a worker may be blocked sending its last batch.
            while !worker.is_finished() {
                while self.done.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = worker.join();
        }
    }
}

fn stopped() -> KafkaError {
    KafkaError::Internal("a prepare thread stopped unexpectedly".to_owned())
}

/// Prepares a batch; a panic becomes an error for the consuming thread to stop on, with the
/// offsets of the batch's messages left uncommitted.
fn prepare_contained(preparer: &Preparer, batch: MessageBatch) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| batch.prepare(preparer))).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned())
    })
}

fn prepare_batches(
    preparer: &Preparer,
    work: &Mutex<Receiver<(u64, MessageBatch)>>,
    done: &SyncSender<(u64, Outcome)>,
) {
    loop {
        let next = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok((sequence, batch)) = next else {
            return;
        };
        if done
            .send((sequence, prepare_contained(preparer, batch)))
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platestream_engine::decode::CanonicalJsonDecoder;
    use platestream_engine::pipeline::Pipeline;
    use platestream_engine::store::HotlistStore;

    use super::*;

    fn payload(plate: &str, second: i64) -> Vec<u8> {
        format!(
            r#"{{"vendor":"acme","reader_id":"cam-1","observed_at":"2026-11-24T12:00:{second:02}Z","plate":"{plate}","jurisdiction":"US-CA","confidence":0.9}}"#
        )
        .into_bytes()
    }

    fn source(offset: i64) -> SourcePosition {
        SourcePosition {
            topic: "reads".to_owned(),
            partition: 0,
            offset,
        }
    }

    /// A decoder that panics on one payload, as a bug would.
    struct PanicsOnBoom;

    impl platestream_engine::decode::ReadDecoder for PanicsOnBoom {
        fn format(&self) -> &'static str {
            "canonical"
        }

        fn decode(
            &self,
            payload: &[u8],
            reads: &mut Vec<platestream_engine::PlateRead>,
        ) -> Result<platestream_engine::decode::Decoded, platestream_engine::decode::DecodeError>
        {
            assert!(payload != b"boom", "decoder bug");
            CanonicalJsonDecoder.decode(payload, reads)
        }
    }

    /// A panic while preparing stops the engine with an error naming it, instead of leaving the
    /// consuming thread waiting for a batch that never comes; batches before it still come back.
    #[test]
    fn a_panic_while_preparing_is_an_error_not_a_hang() {
        let pipeline = Pipeline::new(Arc::new(PanicsOnBoom), Arc::new(HotlistStore::default()));
        for threads in [0, 2] {
            let mut pool = PreparePool::new(pipeline.preparer(), threads).expect("pool");
            for (offset, body) in [payload("7ABC123", 1), b"boom".to_vec()].iter().enumerate() {
                let mut batch = MessageBatch::default();
                let offset = i64::try_from(offset).unwrap_or(0);
                batch.push(source(offset), Disposition::Process, body, None, None, None);
                pool.submit(batch).expect("submit");
            }
            let first = pool
                .next_ready(Some(Duration::from_secs(10)))
                .expect("first");
            assert_eq!(first.map(|batch| batch.messages.len()), Some(1));
            let error = pool
                .next_ready(Some(Duration::from_secs(10)))
                .expect_err("the panicking batch");
            assert!(error.to_string().contains("decoder bug"), "{error}");
        }
    }

    /// Batches come back in the order they went in, whichever worker finished first, and every
    /// message keeps its place, key and disposition (new batches reuse the buffers of returned ones).
    #[test]
    fn batches_come_back_in_submission_order_with_every_message() {
        let pipeline = Pipeline::new(
            Arc::new(CanonicalJsonDecoder),
            Arc::new(HotlistStore::default()),
        );
        for threads in [0, 1, 3] {
            let mut pool = PreparePool::new(pipeline.preparer(), threads).expect("pool");
            let mut returned = Vec::new();
            let mut offset = 0;
            for batch_number in 0..40 {
                let mut batch = pool.new_batch();
                assert!(batch.is_empty() && batch.bytes.is_empty());
                // Batches of different sizes finish at different times.
                for _ in 0..(1 + batch_number % 7 * 20) {
                    let disposition = if offset % 11 == 0 {
                        Disposition::AlreadyArchived
                    } else {
                        Disposition::Process
                    };
                    let key = format!("k{offset}");
                    let body = if offset % 13 == 0 {
                        b"not json".to_vec()
                    } else {
                        payload("7ABC123", offset % 60)
                    };
                    batch.push(
                        source(offset),
                        disposition,
                        &body,
                        Some(key.as_bytes()),
                        None,
                        Some(offset),
                    );
                    offset += 1;
                }
                if !pool.has_room() {
                    let ready = pool
                        .next_ready(Some(Duration::from_secs(10)))
                        .expect("next");
                    returned.extend(ready.expect("a batch in flight").messages);
                }
                pool.submit(batch).expect("submit");
            }
            while let Some(batch) = pool
                .next_ready(Some(Duration::from_secs(10)))
                .expect("next")
            {
                returned.extend(batch.messages);
            }
            assert_eq!(pool.in_flight(), 0);
            assert_eq!(pool.pending_to_process(), 0);
            assert_eq!(returned.len(), usize::try_from(offset).unwrap_or(0));
            for (expected, message) in returned.iter().enumerate() {
                let expected = i64::try_from(expected).unwrap_or(-1);
                assert_eq!(message.source.offset, expected, "threads {threads}");
                assert_eq!(message.produced_at_ms, Some(expected));
                let key = format!("k{expected}");
                assert_eq!(message.key.as_deref(), Some(key.as_bytes()));
                match (&message.prepared, expected % 11 == 0, expected % 13 == 0) {
                    (None, true, _) => {}
                    (Some(Prepared::DeadLetter(dead)), false, true) => {
                        assert_eq!(dead.payload, b"not json");
                        assert_eq!(dead.source.offset, expected);
                    }
                    (Some(Prepared::Reads(reads)), false, false) => {
                        assert_eq!(reads.len(), 1);
                        assert_eq!(reads[0].read.plate_norm, "7ABC123");
                    }
                    (other, ..) => panic!("message {expected} prepared as {other:?}"),
                }
            }
        }
    }
}
