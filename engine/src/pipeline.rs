//! The per-message path every input shares (Kafka, HTTP, NDJSON replay): decode → normalize →
//! match → alerts, with anything that fails turned into a dead letter that keeps the original bytes.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;

use crate::alert::Alert;
use crate::alert_policy::AlertPolicy;
use crate::appearance::{AppearanceQuery, RecentAppearanceIndex};
use crate::decode::{Decoded, ReadDecoder};
use crate::dedupe::{DedupeConfig, DuplicateSuppressor, Offered};
use crate::matcher::{JurisdictionAgreement, Match, MatchKind, Matcher};
use crate::normalize::normalize_read;
use crate::read::{PlateRead, SourcePosition, Timestamp};

/// A message the pipeline refused, with why and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub source: SourcePosition,
    pub reason_code: &'static str,
    pub reason: String,
    pub payload: Vec<u8>,
    pub dead_lettered_at: Timestamp,
}

/// The reason, or its first [`MAX_REASON_BYTES`] (at a character boundary) and how long it was.
fn bounded_reason(reason: String) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut cut = MAX_REASON_BYTES;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}… (reason cut, {} bytes in all)",
        &reason[..cut],
        reason.len()
    )
}

#[derive(Serialize)]
struct DeadLetterJson<'a> {
    reason_code: &'a str,
    reason: &'a str,
    source: &'a SourcePosition,
    dead_lettered_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

/// A reason longer than this is cut: reasons quote the offending value, and a 600 KB plate quoted
/// whole made a header the broker refused, which stopped the engine at that message for good.
pub const MAX_REASON_BYTES: usize = 1_024;

impl DeadLetter {
    pub fn new(
        source: SourcePosition,
        reason_code: &'static str,
        reason: String,
        payload: &[u8],
        dead_lettered_at: Timestamp,
    ) -> Self {
        Self {
            source,
            reason_code,
            reason: bounded_reason(reason),
            payload: payload.to_vec(),
            dead_lettered_at,
        }
    }

    /// The NDJSON form (`schemas/dead-letter.schema.json`): the payload as text when it is UTF-8,
    /// else base64 in `payload_base64`.
    pub fn to_json(&self) -> String {
        let text = std::str::from_utf8(&self.payload).ok();
        let record = DeadLetterJson {
            reason_code: self.reason_code,
            reason: &self.reason,
            source: &self.source,
            dead_lettered_at: self.dead_lettered_at,
            payload: text,
            payload_base64: text
                .is_none()
                .then(|| base64::engine::general_purpose::STANDARD.encode(&self.payload)),
        };
        serde_json::to_string(&record).unwrap_or_else(|error| {
            format!("{{\"reason_code\":\"unserializable\",\"reason\":\"{error}\"}}")
        })
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    /// Its reads (this many) are ready to archive.
    Reads(usize),
    /// A well-formed message that is not a read (a heartbeat); counted, not archived.
    NotARead,
    DeadLettered,
}

/// The outputs of a batch of messages, reused between batches.
#[derive(Debug, Default)]
pub struct Processed {
    pub reads: Vec<PlateRead>,
    pub alerts: Vec<Alert>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Processed {
    pub fn clear(&mut self) {
        self.reads.clear();
        self.alerts.clear();
        self.dead_letters.clear();
    }
}

/// Running totals. Invariants: `messages == messages_with_reads + not_reads + dead_lettered -
/// messages_partly_refused` (a message whose reads were only partly refused has reads and a dead
/// letter), and once held passes are released, `reads == reads released for archiving +
/// duplicates_suppressed`; `reads_refused` are the reads left out of messages with reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCounts {
    pub messages: u64,
    pub messages_with_reads: u64,
    pub reads: u64,
    pub not_reads: u64,
    /// Dead letters written: messages refused whole, and messages some of whose reads were.
    pub dead_lettered: u64,
    /// Messages whose reads went on but for some refused (each also dead-lettered).
    pub messages_partly_refused: u64,
    /// Reads refused from messages whose other reads went on.
    pub reads_refused: u64,
    pub alerts: u64,
    /// Reports folded into another read of the same vehicle pass.
    pub duplicates_suppressed: u64,
    /// Of `duplicates_suppressed`: reports archived all the same (`keep_duplicates`).
    pub duplicates_kept: u64,
    /// Embeddings removed from reads because their length is not the configured dimension (the
    /// read itself is kept).
    pub embeddings_dropped: u64,
    /// Of `alerts`: hits found in recent reads when a BOLO with reference vectors arrived.
    pub retro_alerts: u64,
}

impl PipelineCounts {
    pub fn add(&mut self, other: &PipelineCounts) {
        self.messages += other.messages;
        self.messages_with_reads += other.messages_with_reads;
        self.reads += other.reads;
        self.not_reads += other.not_reads;
        self.dead_lettered += other.dead_lettered;
        self.messages_partly_refused += other.messages_partly_refused;
        self.reads_refused += other.reads_refused;
        self.alerts += other.alerts;
        self.duplicates_suppressed += other.duplicates_suppressed;
        self.duplicates_kept += other.duplicates_kept;
        self.embeddings_dropped += other.embeddings_dropped;
        self.retro_alerts += other.retro_alerts;
    }
}

/// The stateless half of the path: decode, normalize, match. It needs no state beyond the
/// hotlist, so it can run on any thread ([`Preparer::prepare`]); [`Pipeline::finish`] does the
/// rest (alert suppression, duplicate folding, counts) in message order.
#[derive(Clone)]
pub struct Preparer {
    decoder: Arc<dyn ReadDecoder>,
    /// Topics whose format differs from `decoder`'s.
    topic_decoders: HashMap<String, Arc<dyn ReadDecoder>>,
    /// Vendors whose messages (named by the `serve` endpoint that took them) decode otherwise
    /// than their topic's: their readers' own time zone.
    vendor_decoders: HashMap<String, Arc<dyn ReadDecoder>>,
    matcher: Arc<dyn Matcher>,
    /// Appearance embeddings of any other length are removed before matching.
    embedding_dim: Option<usize>,
}

/// A read with the hotlist entries it matched.
#[derive(Debug, Clone)]
pub struct MatchedRead {
    pub read: PlateRead,
    pub matches: Vec<Match>,
    /// The read came with an embedding of the wrong dimension, which was removed.
    pub embedding_dropped: bool,
}

/// One message after [`Preparer::prepare`].
#[derive(Debug, Clone)]
pub enum Prepared {
    Reads(Vec<MatchedRead>),
    /// Some of the message's reads were refused: the others go on, and the message is
    /// dead-lettered too, its reason naming the refused reads.
    PartlyRefused {
        reads: Vec<MatchedRead>,
        dead_letter: Box<DeadLetter>,
        refused_reads: usize,
    },
    NotARead,
    DeadLetter(DeadLetter),
}

impl Prepared {
    fn reads_mut(&mut self) -> Option<&mut Vec<MatchedRead>> {
        match self {
            Self::Reads(reads) | Self::PartlyRefused { reads, .. } => Some(reads),
            Self::NotARead | Self::DeadLetter(_) => None,
        }
    }
}

/// The reads of a message that normalization refused, when it kept others.
struct RefusedReads {
    reason_code: &'static str,
    reason: String,
    count: usize,
}

enum DecodeOutcome {
    Reads(Option<RefusedReads>),
    NotARead,
    Refused {
        reason_code: &'static str,
        reason: String,
    },
}

impl Preparer {
    /// Decodes and normalizes one message into `reads` (cleared first; left empty if refused).
    fn decode_into(
        &self,
        payload: &[u8],
        topic: &str,
        vendor: Option<&str>,
        now: Timestamp,
        reads: &mut Vec<PlateRead>,
    ) -> DecodeOutcome {
        reads.clear();
        let decoder = vendor
            .and_then(|vendor| self.vendor_decoders.get(vendor))
            .or_else(|| self.topic_decoders.get(topic))
            .unwrap_or(&self.decoder);
        match decoder.decode(payload, reads) {
            Err(error) => {
                return DecodeOutcome::Refused {
                    reason_code: error.code(),
                    reason: error.to_string(),
                }
            }
            Ok(Decoded::NotARead { .. }) => return DecodeOutcome::NotARead,
            Ok(Decoded::Reads(_)) => {}
        }
        let read_count = reads.len();
        // (position in the message, code, reason) of each read normalization refuses.
        let mut refused: Vec<(usize, &'static str, String)> = Vec::new();
        for (index, read) in reads.iter_mut().enumerate() {
            if let Err(error) = normalize_read(read, now) {
                refused.push((index, error.code(), error.to_string()));
            }
        }
        let Some(&(_, reason_code, _)) = refused.first() else {
            return DecodeOutcome::Reads(None);
        };
        if read_count == 1 {
            reads.clear();
            let reason = refused
                .pop()
                .map(|(_, _, reason)| reason)
                .unwrap_or_default();
            return DecodeOutcome::Refused {
                reason_code,
                reason,
            };
        }
        // A bad read does not take its message's good reads down with it: a stolen car read
        // beside a garbled plate must still alert. The dead letter keeps the whole message and
        // says which reads went on, so a fix-and-resend can leave those out.
        let refused_count = refused.len();
        let refused_positions: Vec<usize> = refused.iter().map(|(index, ..)| *index).collect();
        let mut reason = refused
            .into_iter()
            .map(|(index, _, reason)| format!("read {} of {read_count}: {reason}", index + 1))
            .collect::<Vec<_>>()
            .join("; ");
        if refused_count == read_count {
            reads.clear();
            return DecodeOutcome::Refused {
                reason_code,
                reason,
            };
        }
        let mut kept = Vec::new();
        let mut index = 0;
        reads.retain(|_| {
            let good = !refused_positions.contains(&index);
            index += 1;
            if good {
                kept.push(index.to_string());
            }
            good
        });
        reason.push_str(&format!(
            "; the message's other reads ({}) were kept",
            kept.join(", ")
        ));
        DecodeOutcome::Reads(Some(RefusedReads {
            reason_code,
            reason,
            count: refused_count,
        }))
    }

    /// Removes an embedding whose length is not the configured dimension (the read is kept);
    /// `true` when it did.
    fn drop_wrong_embedding(&self, read: &mut PlateRead) -> bool {
        let (Some(dim), Some(embedding)) = (self.embedding_dim, &read.embedding) else {
            return false;
        };
        if embedding.len() == dim {
            return false;
        }
        read.embedding = None;
        metrics::counter!("platestream_embeddings_dropped_total", "reason" => "wrong_dimension")
            .increment(1);
        true
    }

    /// [`Self::prepare`] for several messages, with all their reads matched in one
    /// [`Matcher::match_batch`] call (which overlaps the index lookups' cache misses across
    /// reads). The same results, in the same order, as preparing each message alone.
    pub fn prepare_batch<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a [u8], SourcePosition)>,
        now: Timestamp,
    ) -> Vec<Prepared> {
        self.prepare_batch_of_vendors(
            messages
                .into_iter()
                .map(|(payload, source)| (payload, source, None)),
            now,
        )
    }

    /// [`Self::prepare_batch`] for messages that may name the vendor whose `serve` endpoint
    /// produced them (the `platestream-vendor` header).
    pub fn prepare_batch_of_vendors<'a>(
        &self,
        messages: impl IntoIterator<Item = (&'a [u8], SourcePosition, Option<&'a str>)>,
        now: Timestamp,
    ) -> Vec<Prepared> {
        let mut prepared = Vec::new();
        // (index into `prepared`, reads of that message) for the messages with reads.
        let mut read_counts: Vec<(usize, usize)> = Vec::new();
        let mut batch_reads: Vec<PlateRead> = Vec::new();
        let mut dropped: Vec<bool> = Vec::new();
        let mut reads = Vec::with_capacity(1);
        for (payload, source, vendor) in messages {
            match self.decode_into(payload, &source.topic, vendor, now, &mut reads) {
                DecodeOutcome::Refused {
                    reason_code,
                    reason,
                } => prepared.push(Prepared::DeadLetter(DeadLetter::new(
                    source,
                    reason_code,
                    reason,
                    payload,
                    now,
                ))),
                DecodeOutcome::NotARead => prepared.push(Prepared::NotARead),
                DecodeOutcome::Reads(refused) => {
                    read_counts.push((prepared.len(), reads.len()));
                    for mut read in reads.drain(..) {
                        read.source = Some(source.clone());
                        dropped.push(self.drop_wrong_embedding(&mut read));
                        batch_reads.push(read);
                    }
                    prepared.push(with_refused(Vec::new(), refused, payload, source, now));
                }
            }
        }
        let (mut matches, mut ends) = (Vec::new(), Vec::new());
        self.matcher
            .match_batch(&batch_reads, now, &mut matches, &mut ends);
        let mut matches = matches.into_iter();
        let mut read_matches = batch_reads.into_iter().zip(ends).zip(dropped).scan(
            0,
            |start, ((read, end), embedding_dropped)| {
                let taken: Vec<Match> = matches.by_ref().take(end - *start).collect();
                *start = end;
                Some(MatchedRead {
                    read,
                    matches: taken,
                    embedding_dropped,
                })
            },
        );
        for (index, count) in read_counts {
            if let Some(slot) = prepared.get_mut(index).and_then(Prepared::reads_mut) {
                slot.extend(read_matches.by_ref().take(count));
            }
        }
        prepared
    }

    /// Decode, normalize and match one message; `now` is the ingest time.
    pub fn prepare(&self, payload: &[u8], source: SourcePosition, now: Timestamp) -> Prepared {
        let mut reads = Vec::with_capacity(1);
        match self.decode_into(payload, &source.topic, None, now, &mut reads) {
            DecodeOutcome::Refused {
                reason_code,
                reason,
            } => Prepared::DeadLetter(DeadLetter::new(source, reason_code, reason, payload, now)),
            DecodeOutcome::NotARead => Prepared::NotARead,
            DecodeOutcome::Reads(refused) => {
                let matched = reads
                    .into_iter()
                    .map(|mut read| {
                        read.source = Some(source.clone());
                        let embedding_dropped = self.drop_wrong_embedding(&mut read);
                        let mut matches = Vec::new();
                        self.matcher.match_read(&read, now, &mut matches);
                        MatchedRead {
                            read,
                            matches,
                            embedding_dropped,
                        }
                    })
                    .collect();
                with_refused(matched, refused, payload, source, now)
            }
        }
    }
}

/// The prepared message: its reads, with a dead letter of the whole message when some of its
/// reads were refused.
fn with_refused(
    reads: Vec<MatchedRead>,
    refused: Option<RefusedReads>,
    payload: &[u8],
    source: SourcePosition,
    now: Timestamp,
) -> Prepared {
    match refused {
        None => Prepared::Reads(reads),
        Some(refused) => Prepared::PartlyRefused {
            reads,
            dead_letter: Box::new(DeadLetter::new(
                source,
                refused.reason_code,
                refused.reason,
                payload,
                now,
            )),
            refused_reads: refused.count,
        },
    }
}

pub struct Pipeline {
    preparer: Preparer,
    alert_policy: Option<Arc<AlertPolicy>>,
    decoded: Vec<PlateRead>,
    matches: Vec<Match>,
    dedupe: Option<DuplicateSuppressor>,
    appearance_index: Option<Arc<RecentAppearanceIndex>>,
    pub counts: PipelineCounts,
}

/// Reads a retro search reports per reference vector of a new BOLO at most.
pub const RETRO_SEARCH_K: usize = 50;

/// A BOLO's reference vectors are compared only with embeddings of their own length: one of
/// another length than the readers' (another model's photo vector, a typing slip) can never
/// alert, which its sender must hear of rather than wait for a hit.
fn warn_of_vectors_that_cannot_match(entry: &crate::hotlist::HotlistEntry, dim: usize) {
    let Some(description) = entry.vehicle.as_deref() else {
        return;
    };
    for (index, vector) in description.reference_vectors.iter().enumerate() {
        if vector.len() != dim {
            metrics::counter!("platestream_bolo_vectors_unmatchable_total").increment(1);
            tracing::warn!(
                list = %entry.list,
                id = %entry.id,
                vector = index + 1,
                numbers = vector.len(),
                reads_carry = dim,
                "a BOLO's reference vector has another length than the readers' embeddings: it can never match"
            );
        }
    }
}

impl Pipeline {
    pub fn new(decoder: Arc<dyn ReadDecoder>, matcher: Arc<dyn Matcher>) -> Self {
        Self {
            preparer: Preparer {
                decoder,
                topic_decoders: HashMap::new(),
                vendor_decoders: HashMap::new(),
                matcher,
                embedding_dim: None,
            },
            alert_policy: None,
            decoded: Vec::new(),
            matches: Vec::new(),
            dedupe: None,
            appearance_index: None,
            counts: PipelineCounts::default(),
        }
    }

    /// Embeddings of any other length are removed from their read (which is kept) and counted
    /// (`platestream_embeddings_dropped_total`): a reader sending another model's vectors must
    /// not poison appearance matching, nor lose its plate reads.
    pub fn with_embedding_dim(mut self, dim: usize) -> Self {
        self.preparer.embedding_dim = Some(dim);
        self
    }

    /// Indexes every read's embedding for retro search, and searches it when a BOLO with
    /// reference vectors arrives (alerts of kind `appearance_retro`). Share one index between
    /// pipelines.
    pub fn with_appearance_index(mut self, index: Arc<RecentAppearanceIndex>) -> Self {
        self.appearance_index = Some(index);
        self
    }

    /// Searches recent reads for BOLOs with reference vectors that arrived since the last call;
    /// their hits become `appearance_retro` alerts raised at `now`.
    pub fn search_new_appearance_bolos(&mut self, now: Timestamp, out: &mut Processed) {
        // Taken even without an index, so the queue does not grow in engines that never search.
        let new_bolos = self.preparer.matcher.take_new_appearance_bolos();
        let reads_dim = self.preparer.embedding_dim.or(self
            .appearance_index
            .as_ref()
            .map(|index| index.config().dim));
        if let Some(dim) = reads_dim {
            for (entry, _) in &new_bolos {
                warn_of_vectors_that_cannot_match(entry, dim);
            }
        }
        let Some(index) = &self.appearance_index else {
            return;
        };
        for (entry, policy) in new_bolos {
            let Some(description) = entry.vehicle.as_deref() else {
                continue;
            };
            let threshold = policy.as_ref().map_or(
                crate::alert_policy::DEFAULT_APPEARANCE_THRESHOLD,
                |policy| policy.appearance_threshold(),
            );
            let mut best: Vec<crate::appearance::AppearanceHit> = Vec::new();
            for vector in &description.reference_vectors {
                let hits = index.search(&AppearanceQuery {
                    vector,
                    k: RETRO_SEARCH_K,
                    from: description.active_from,
                    to: description.active_to,
                    near: description.area,
                    min_similarity: Some(threshold),
                });
                for hit in hits {
                    match best
                        .iter_mut()
                        .find(|seen| seen.read.read_id == hit.read.read_id)
                    {
                        Some(seen) => seen.similarity = seen.similarity.max(hit.similarity),
                        None => best.push(hit),
                    }
                }
            }
            best.sort_by_key(|hit| hit.read.observed_at);
            let started = out.alerts.len();
            for hit in best {
                let agreement = JurisdictionAgreement::between(
                    hit.read.jurisdiction.as_deref(),
                    entry.jurisdiction.as_deref(),
                );
                if agreement == JurisdictionAgreement::Differs
                    || entry.is_expired_at(hit.read.observed_at)
                {
                    continue;
                }
                // Scored as a live appearance hit is, so the two kinds rank together: the look
                // times the jurisdiction factor, combined with the description's evidence; a
                // vehicle the description contradicts only looks like the picture.
                let factor = crate::store::jurisdiction_factor(agreement);
                let look = hit.similarity.clamp(0.0, 1.0) * factor;
                let described = description.score_attributes(&hit.read);
                let score = match &described {
                    Some((attribute_score, _)) => {
                        1.0 - (1.0 - attribute_score * factor) * (1.0 - look)
                    }
                    None => look * crate::description::PATTERN_CONTRADICTED_FACTOR,
                };
                let found = Match {
                    entry: Arc::clone(&entry),
                    kind: MatchKind::AppearanceRetro,
                    score,
                    jurisdiction: agreement,
                    explanation: format!(
                        "seen before the BOLO was entered: appearance resembles its reference picture (cosine {:.3}) at {} on {}; confirm on the overview image",
                        hit.similarity, hit.read.reader_id, hit.read.observed_at
                    ),
                    differences: Vec::new(),
                    policy: policy.clone(),
                    attributes: described
                        .map(|(_, attributes)| attributes)
                        .unwrap_or_default(),
                    appearance_similarity: Some(hit.similarity),
                };
                out.alerts.push(Alert::new(&hit.read, &found, now));
            }
            let raised = (out.alerts.len() - started) as u64;
            self.counts.alerts += raised;
            self.counts.retro_alerts += raised;
            if raised > 0 {
                tracing::info!(list = %entry.list, entry = %entry.id, hits = raised, "retro appearance search found earlier sightings");
            }
        }
    }

    /// Decodes messages of `topic` with `decoder` instead of the default one.
    pub fn with_topic_decoder(
        mut self,
        topic: impl Into<String>,
        decoder: Arc<dyn ReadDecoder>,
    ) -> Self {
        self.preparer.topic_decoders.insert(topic.into(), decoder);
        self
    }

    /// Decodes messages that `vendor`'s `serve` endpoint produced (see
    /// [`Preparer::prepare_batch_of_vendors`]) with `decoder`, whatever their topic.
    pub fn with_vendor_decoder(
        mut self,
        vendor: impl Into<String>,
        decoder: Arc<dyn ReadDecoder>,
    ) -> Self {
        self.preparer.vendor_decoders.insert(vendor.into(), decoder);
        self
    }

    /// Folds repeated reports of a vehicle pass into one read (`crate::dedupe`). Reads then reach
    /// `Processed::reads` when their pass ends: callers must call `release_due` regularly and
    /// `flush_partition` before making a partition's archive durable.
    pub fn with_dedupe(mut self, config: DedupeConfig) -> Self {
        self.dedupe = Some(DuplicateSuppressor::new(config));
        self
    }

    /// Moves reads of passes that are over to `out.reads`.
    pub fn release_due(&mut self, now: Timestamp, out: &mut Processed) {
        if let Some(dedupe) = &mut self.dedupe {
            dedupe.release_due(now, &mut out.reads);
        }
    }

    /// Moves every held read of a partition to `out.reads`, ending its passes early.
    pub fn flush_partition(&mut self, topic: &str, partition: i32, out: &mut Processed) {
        if let Some(dedupe) = &mut self.dedupe {
            dedupe.flush_partition(topic, partition, &mut out.reads);
        }
    }

    /// Moves every held read to `out.reads` (end of input).
    pub fn flush_all(&mut self, out: &mut Processed) {
        if let Some(dedupe) = &mut self.dedupe {
            dedupe.flush_all(&mut out.reads);
        }
    }

    /// Drops the held reads of a partition another consumer now owns (it replays them).
    pub fn forget_partition(&mut self, topic: &str, partition: i32) {
        if let Some(dedupe) = &mut self.dedupe {
            let dropped = dedupe.forget_partition(topic, partition);
            if dropped > 0 {
                tracing::debug!(
                    topic,
                    partition,
                    dropped,
                    "dropped held passes of a revoked partition"
                );
            }
        }
    }

    /// Suppression of repeated hits (`alert_policy.rs`); share one policy between pipelines.
    pub fn with_alert_policy(mut self, policy: Arc<AlertPolicy>) -> Self {
        self.alert_policy = Some(policy);
        self
    }

    pub fn matcher(&self) -> &Arc<dyn Matcher> {
        &self.preparer.matcher
    }

    /// The stateless half, for other threads: their [`Prepared`] messages go to [`Self::finish`].
    pub fn preparer(&self) -> Preparer {
        self.preparer.clone()
    }

    /// Processes one message. `now` is the ingest time (for validation and alert times).
    pub fn process(
        &mut self,
        payload: &[u8],
        source: SourcePosition,
        now: Timestamp,
        out: &mut Processed,
    ) -> MessageOutcome {
        self.counts.messages += 1;
        // The buffers are reused from message to message: the per-message path allocates little.
        let mut decoded = std::mem::take(&mut self.decoded);
        let outcome =
            match self
                .preparer
                .decode_into(payload, &source.topic, None, now, &mut decoded)
            {
                DecodeOutcome::Refused {
                    reason_code,
                    reason,
                } => {
                    self.counts.dead_lettered += 1;
                    out.dead_letters.push(DeadLetter::new(
                        source,
                        reason_code,
                        reason,
                        payload,
                        now,
                    ));
                    MessageOutcome::DeadLettered
                }
                DecodeOutcome::NotARead => {
                    self.counts.not_reads += 1;
                    MessageOutcome::NotARead
                }
                DecodeOutcome::Reads(refused) => {
                    if let Some(refused) = refused {
                        self.count_refused_reads(refused.count);
                        out.dead_letters.push(DeadLetter::new(
                            source.clone(),
                            refused.reason_code,
                            refused.reason,
                            payload,
                            now,
                        ));
                    }
                    let read_count = decoded.len();
                    self.counts.messages_with_reads += 1;
                    self.counts.reads += read_count as u64;
                    self.search_new_appearance_bolos(now, out);
                    let mut matches = std::mem::take(&mut self.matches);
                    for mut read in decoded.drain(..) {
                        read.source = Some(source.clone());
                        let embedding_dropped = self.preparer.drop_wrong_embedding(&mut read);
                        self.remember_appearance(&read, embedding_dropped);
                        matches.clear();
                        self.preparer.matcher.match_read(&read, now, &mut matches);
                        self.alert_and_fold(read, &matches, now, out);
                    }
                    self.matches = matches;
                    MessageOutcome::Reads(read_count)
                }
            };
        self.decoded = decoded;
        outcome
    }

    /// The stateful half of [`Self::process`] for a message prepared elsewhere; call it in
    /// message order.
    pub fn finish(
        &mut self,
        prepared: Prepared,
        now: Timestamp,
        out: &mut Processed,
    ) -> MessageOutcome {
        self.counts.messages += 1;
        match prepared {
            Prepared::DeadLetter(dead_letter) => {
                self.counts.dead_lettered += 1;
                out.dead_letters.push(dead_letter);
                MessageOutcome::DeadLettered
            }
            Prepared::NotARead => {
                self.counts.not_reads += 1;
                MessageOutcome::NotARead
            }
            Prepared::PartlyRefused {
                reads,
                dead_letter,
                refused_reads,
            } => {
                self.count_refused_reads(refused_reads);
                out.dead_letters.push(*dead_letter);
                self.finish_reads(reads, now, out)
            }
            Prepared::Reads(reads) => self.finish_reads(reads, now, out),
        }
    }

    /// Counts the reads refused from a message whose other reads went on, and its dead letter.
    fn count_refused_reads(&mut self, refused_reads: usize) {
        self.counts.reads_refused += refused_reads as u64;
        self.counts.messages_partly_refused += 1;
        self.counts.dead_lettered += 1;
    }

    fn finish_reads(
        &mut self,
        reads: Vec<MatchedRead>,
        now: Timestamp,
        out: &mut Processed,
    ) -> MessageOutcome {
        let read_count = reads.len();
        self.counts.messages_with_reads += 1;
        self.counts.reads += read_count as u64;
        self.search_new_appearance_bolos(now, out);
        for MatchedRead {
            read,
            matches,
            embedding_dropped,
        } in reads
        {
            self.remember_appearance(&read, embedding_dropped);
            self.alert_and_fold(read, &matches, now, out);
        }
        MessageOutcome::Reads(read_count)
    }

    /// Counts a dropped embedding; indexes a kept one for retro search, unless the read is a
    /// frame duplicate folding will leave out of the archive (a search must name reads that
    /// analysts can look up; the pass's first frame is indexed).
    fn remember_appearance(&mut self, read: &PlateRead, embedding_dropped: bool) {
        if embedding_dropped {
            self.counts.embeddings_dropped += 1;
        }
        if let Some(index) = &self.appearance_index {
            let dropped_by_folding = || {
                self.dedupe
                    .as_ref()
                    .is_some_and(|dedupe| dedupe.would_drop(read))
            };
            if read.embedding.is_some() && !dropped_by_folding() {
                // Wrong lengths were dropped when a dimension is configured; without one the
                // index refuses them itself.
                let _ = index.insert(read);
            }
        }
    }

    /// Raises the read's alerts (suppressing repeats) and hands the read to duplicate folding.
    fn alert_and_fold(
        &mut self,
        read: PlateRead,
        matches: &[Match],
        now: Timestamp,
        out: &mut Processed,
    ) {
        // Every report is matched at once, folded or not: a later frame may read the plate's
        // state that the first frame missed, and officers must not wait for a pass to end.
        let first_alert = out.alerts.len();
        for hit in matches {
            let mut alert = Alert::new(&read, hit, now);
            if let Some(policy) = &self.alert_policy {
                let window = hit.policy.as_ref().and_then(|p| p.suppression_window_secs);
                policy.apply(window, &mut alert);
            }
            out.alerts.push(alert);
        }
        self.counts.alerts += matches.len() as u64;
        let Some(dedupe) = &mut self.dedupe else {
            out.reads.push(read);
            return;
        };
        if let Offered::Folded {
            pass_read_id,
            duplicate,
        } = dedupe.offer(read, now, &mut out.reads)
        {
            self.counts.duplicates_suppressed += 1;
            // The archive holds the pass's read, not this report's: point the alerts there.
            for alert in &mut out.alerts[first_alert..] {
                alert.read_id.clone_from(&pass_read_id);
            }
            if let Some(duplicate) = duplicate {
                self.counts.duplicates_kept += 1;
                out.reads.push(*duplicate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_reason_is_cut_at_a_character_and_says_how_long_it_was() {
        let reason = format!("plate {:?} is too long", "É".repeat(5_000));
        let cut = super::bounded_reason(reason.clone());
        assert!(cut.len() < super::MAX_REASON_BYTES + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("(reason cut, {} bytes in all)", reason.len())));
        assert_eq!(super::bounded_reason("short".to_owned()), "short");
    }

    use super::*;
    use crate::decode::CanonicalJsonDecoder;
    use crate::hotlist::load_hotlist_csv;
    use crate::matcher::ExactMatcher;

    fn pipeline() -> Pipeline {
        let hotlist = "list,plate,jurisdiction,reason\nstolen_vehicles,ABC123,DC,stolen vehicle\n";
        let entries = load_hotlist_csv("t", hotlist.as_bytes()).unwrap().entries;
        Pipeline::new(
            Arc::new(CanonicalJsonDecoder),
            Arc::new(ExactMatcher::new(entries)),
        )
    }

    fn position(offset: i64) -> SourcePosition {
        SourcePosition {
            topic: "reads".into(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn a_hotlisted_read_is_archived_and_alerted_and_bad_ones_are_dead_lettered() {
        let mut pipeline = pipeline();
        let mut out = Processed::default();
        let now = Timestamp::parse_rfc3339("2026-11-24T17:00:05Z").unwrap();
        let hit = br#"{"vendor":"v","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z",
            "plate":"abc-123","jurisdiction":"dc","confidence":0.91,"lat":38.9,"lon":-77.0,
            "images":{"plate_crop":"https://img/1.jpg"}}"#;
        let miss = br#"{"vendor":"v","reader_id":"r1","observed_at":1795539600000,
            "plate":"XYZ999","confidence":0.9}"#;
        let bad_plate = br#"{"vendor":"v","reader_id":"r1","observed_at":1795539600000,
            "plate":"A$","confidence":0.9}"#;
        assert_eq!(
            pipeline.process(hit, position(0), now, &mut out),
            MessageOutcome::Reads(1)
        );
        assert_eq!(
            pipeline.process(miss, position(1), now, &mut out),
            MessageOutcome::Reads(1)
        );
        assert_eq!(
            pipeline.process(bad_plate, position(2), now, &mut out),
            MessageOutcome::DeadLettered
        );
        assert_eq!(
            pipeline.process(b"\xff", position(3), now, &mut out),
            MessageOutcome::DeadLettered
        );

        assert_eq!(out.reads.len(), 2);
        assert_eq!(out.reads[0].source, Some(position(0)));
        assert_eq!(out.alerts.len(), 1);
        let alert = &out.alerts[0];
        assert_eq!(alert.read_id, out.reads[0].read_id);
        assert_eq!(alert.entry_plate, "ABC123");
        assert_eq!(alert.read_plate, "abc-123");
        assert_eq!(
            alert.images.plate_crop.as_deref(),
            Some("https://img/1.jpg")
        );

        assert_eq!(out.dead_letters.len(), 2);
        assert_eq!(
            out.dead_letters[0].reason_code,
            "implausible_plate_character"
        );
        assert_eq!(out.dead_letters[0].payload, bad_plate.to_vec());
        let binary = out.dead_letters[1].to_json();
        assert!(binary.contains("\"payload_base64\":\"/w==\""), "{binary}");

        let counts = pipeline.counts;
        assert_eq!(counts.messages, 4);
        assert_eq!(
            counts.messages,
            counts.messages_with_reads + counts.not_reads + counts.dead_lettered
        );
    }

    #[test]
    fn a_bolo_photo_arriving_later_finds_the_vehicles_earlier_reads_in_the_appearance_index() {
        use crate::appearance::AppearanceIndexConfig;
        use crate::hotlist::{entry_from_fields, EntryFields};
        use crate::store::{HotlistStore, MatchModes};
        use rand::{Rng, SeedableRng};

        let dim = 16;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let unit = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f32> {
            let mut vector: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            crate::description::normalize_vector(&mut vector);
            vector
        };
        let suspect = unit(&mut rng);
        let store = Arc::new(HotlistStore::new(MatchModes::FULL));
        let index = Arc::new(RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim,
            ..AppearanceIndexConfig::default()
        }));
        let mut pipeline = Pipeline::new(
            Arc::new(CanonicalJsonDecoder),
            Arc::clone(&store) as Arc<dyn Matcher>,
        )
        .with_appearance_index(Arc::clone(&index));
        let start_ms = 1_795_539_600_000_i64;
        let now = Timestamp::from_millis(start_ms + 3_000_000);
        let mut out = Processed::default();
        let mut suspect_reads = Vec::new();
        // 3,000 reads over 40 minutes, every 300th of them the suspect's car (its vector plus a
        // little noise), the rest other vehicles: enough to train the slice's lists.
        for number in 0..3000_i64 {
            let is_suspect = number % 300 == 17;
            let vector: Vec<f32> = if is_suspect {
                suspect
                    .iter()
                    .map(|value| value + rng.random_range(-0.02..0.02))
                    .collect()
            } else {
                unit(&mut rng)
            };
            let message = serde_json::json!({
                "vendor": "v", "reader_id": format!("r{}", number % 7),
                "observed_at": start_ms + number * 800, "plate": format!("P{number:05}"),
                "confidence": 0.9, "lat": 38.9, "lon": -77.0, "embedding": vector,
            })
            .to_string();
            pipeline.process(message.as_bytes(), position(number), now, &mut out);
            if is_suspect {
                suspect_reads.push(out.reads.last().unwrap().read_id.clone());
            }
        }
        index.wait_until_indexed();
        assert_eq!(index.len(), 3000);
        assert!(out.alerts.is_empty());

        // The photo BOLO arrives (as a live upsert would bring it); the next read searches.
        let mut fields = EntryFields {
            list: Some("appearance_bolo".into()),
            id: Some("photo-1".into()),
            ..EntryFields::default()
        };
        fields.set(
            "reference_vectors",
            &serde_json::to_string(&suspect).unwrap(),
        );
        store.upsert(Arc::new(entry_from_fields(fields).unwrap()));
        let next = br#"{"vendor":"v","reader_id":"r1","observed_at":1795542600000,
            "plate":"NEXT1","confidence":0.9}"#;
        pipeline.process(next, position(3000), now, &mut out);

        let mut found: Vec<String> = out
            .alerts
            .iter()
            .filter(|alert| alert.match_kind == MatchKind::AppearanceRetro)
            .map(|alert| alert.read_id.clone())
            .collect();
        found.sort();
        suspect_reads.sort();
        assert_eq!(found, suspect_reads);
        assert_eq!(pipeline.counts.retro_alerts, suspect_reads.len() as u64);
        // Scored as a live appearance hit of an entry of any state is: similarity × 0.95.
        for alert in &out.alerts {
            let similarity = alert.appearance_similarity.unwrap();
            assert!(
                (alert.score - similarity * 0.95).abs() < 1e-5,
                "score {} for similarity {similarity}",
                alert.score
            );
        }
    }

    #[test]
    fn frames_folded_out_of_the_archive_stay_out_of_the_appearance_index() {
        use crate::appearance::AppearanceIndexConfig;

        let index = Arc::new(RecentAppearanceIndex::new(AppearanceIndexConfig {
            dim: 3,
            ..AppearanceIndexConfig::default()
        }));
        let mut pipeline = pipeline()
            .with_dedupe(DedupeConfig::default())
            .with_appearance_index(Arc::clone(&index));
        let now = Timestamp::parse_rfc3339("2026-11-24T17:00:05Z").unwrap();
        let mut out = Processed::default();
        // Three frames of one pass, then another vehicle at the same reader.
        for (offset, (plate, millis)) in [
            ("XYZ100", 0),
            ("XYZ100", 400),
            ("XYZ100", 900),
            ("KLM200", 1000),
        ]
        .into_iter()
        .enumerate()
        {
            let message = serde_json::json!({
                "vendor": "v", "reader_id": "r1", "observed_at": 1_795_539_600_000_i64 + millis,
                "plate": plate, "confidence": 0.9, "embedding": [1.0, 0.5, offset as f32],
            })
            .to_string();
            pipeline.process(message.as_bytes(), position(offset as i64), now, &mut out);
        }
        pipeline.flush_all(&mut out);
        // The archive holds one read per pass, and the index holds the same two reads.
        assert_eq!(out.reads.len(), 2);
        assert_eq!(index.len(), 2);
        let mut archived: Vec<&str> = out.reads.iter().map(|read| read.read_id.as_str()).collect();
        archived.sort_unstable();
        let mut indexed: Vec<String> = index.reads().into_iter().map(|read| read.read_id).collect();
        indexed.sort_unstable();
        assert_eq!(indexed, archived);
    }

    #[test]
    fn preparing_on_another_thread_then_finishing_in_order_is_the_same_as_processing() {
        let now = Timestamp::parse_rfc3339("2026-11-24T17:00:05Z").unwrap();
        let messages: Vec<&[u8]> = vec![
            br#"{"vendor":"v","reader_id":"r1","observed_at":"2026-11-24T17:00:00Z","plate":"abc-123","jurisdiction":"dc","confidence":0.9}"#,
            br#"{"vendor":"v","reader_id":"r1","observed_at":"2026-11-24T17:00:01Z","plate":"ABC123","jurisdiction":"dc","confidence":0.9}"#,
            br#"{"vendor":"v","reader_id":"r2","observed_at":1795539600000,"plate":"XYZ999","confidence":0.9}"#,
            b"{not json",
        ];
        let mut inline = pipeline().with_dedupe(DedupeConfig::default());
        let mut inline_out = Processed::default();
        for (offset, message) in messages.iter().enumerate() {
            inline.process(message, position(offset as i64), now, &mut inline_out);
        }
        inline.flush_all(&mut inline_out);

        let mut split = pipeline().with_dedupe(DedupeConfig::default());
        let preparer = split.preparer();
        let thread_messages = messages.clone();
        let prepared: Vec<Prepared> = std::thread::spawn(move || {
            thread_messages
                .iter()
                .enumerate()
                .map(|(offset, message)| preparer.prepare(message, position(offset as i64), now))
                .collect()
        })
        .join()
        .unwrap();
        let mut split_out = Processed::default();
        for message in prepared {
            split.finish(message, now, &mut split_out);
        }
        split.flush_all(&mut split_out);

        let batched = split.preparer().prepare_batch(
            messages
                .iter()
                .enumerate()
                .map(|(offset, message)| (*message, position(offset as i64))),
            now,
        );
        let one_by_one: Vec<Prepared> = messages
            .iter()
            .enumerate()
            .map(|(offset, message)| {
                split
                    .preparer()
                    .prepare(message, position(offset as i64), now)
            })
            .collect();
        assert_eq!(format!("{batched:?}"), format!("{one_by_one:?}"));

        assert_eq!(split.counts, inline.counts);
        assert_eq!(inline.counts.duplicates_suppressed, 1);
        assert_eq!(split_out.reads, inline_out.reads);
        assert_eq!(split_out.alerts, inline_out.alerts);
        assert_eq!(split_out.dead_letters, inline_out.dead_letters);
    }
}
