//! Reads held compactly in memory: what the appearance index keeps of each read so a search can
//! say where and when a vehicle was seen, at about a tenth of the read's size.
//!
//! A 24-hour horizon at 1,000 reads/s is 86.4M reads; kept as `PlateRead` values (about 1.2 KB
//! each with their strings) they alone would need 100 GB. Reads of one place and hour repeat
//! most of their text (vendor, reader, camera, vocabulary, image URI prefixes), so a zstd
//! dictionary trained on a slice's first reads, and frames of a few reads each, keep them at
//! 60-70 bytes (simulated reads) while any one read is a single small frame away: a search
//! decodes only the frames of its hits.
//!
//! The stored form is the read's canonical JSON, one line per read: every field, including ones
//! added later, comes back as it went in.

use rayon::prelude::*;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::read::PlateRead;

/// Reads per frame: more compress better (shared prefixes of ids and times), fewer decode faster.
/// 16 reads is about 10 KB of JSON, a few microseconds to decode.
pub(crate) const READS_PER_FRAME: usize = 16;
/// Measured on simulated reads: 32 KB dictionaries from a few thousand reads leave frames of 16
/// reads at about 67 bytes a read, against 98 without a dictionary.
const DICTIONARY_BYTES: usize = 32 * 1024;
/// Fewest sample reads worth training a dictionary on; with fewer, frames go without.
const MIN_DICTIONARY_SAMPLES: usize = 256;
const LEVEL: i32 = 3;

/// A frame's first byte: how the rest is stored.
const RAW: u8 = 0;
const ZSTD: u8 = 1;

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// A slice's compression dictionary, trained on its first reads.
pub(crate) struct ReadDictionary {
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

impl ReadDictionary {
    /// Trains on the canonical JSON of `samples`; `None` when there are too few of them or
    /// training fails (frames are then compressed without one).
    pub(crate) fn train(samples: &[Vec<u8>]) -> Option<Self> {
        if samples.len() < MIN_DICTIONARY_SAMPLES {
            return None;
        }
        match zstd::dict::from_samples(samples, DICTIONARY_BYTES) {
            Ok(dictionary) => Some(Self {
                encoder: EncoderDictionary::copy(&dictionary, LEVEL),
                decoder: DecoderDictionary::copy(&dictionary),
            }),
            Err(error) => {
                tracing::debug!(%error, "no zstd dictionary for the appearance index's reads");
                None
            }
        }
    }
}

/// The canonical JSON of a read, as stored (without its embedding, which the index keeps apart).
pub(crate) fn read_json(read: &PlateRead) -> Vec<u8> {
    // Serializing a `PlateRead` into memory cannot fail: every field is a plain value or a map
    // with string keys.
    serde_json::to_vec(read).unwrap_or_default()
}

/// Compresses `reads` into frames of `READS_PER_FRAME` (the last may be shorter), in parallel.
pub(crate) fn pack(reads: &[PlateRead], dictionary: Option<&ReadDictionary>) -> Vec<Vec<u8>> {
    reads
        .par_chunks(READS_PER_FRAME)
        .map_init(
            || compressor(dictionary),
            |compressor, group| {
                let mut lines = Vec::with_capacity(group.len() * 768);
                for read in group {
                    // Into memory: cannot fail (see `read_json`).
                    let _ = serde_json::to_writer(&mut lines, read);
                    lines.push(b'\n');
                }
                let compressed = compressor
                    .as_mut()
                    .and_then(|compressor| compressor.compress(&lines).ok());
                match compressed {
                    Some(compressed) if compressed.len() < lines.len() => {
                        let mut frame = Vec::with_capacity(compressed.len() + 1);
                        frame.push(ZSTD);
                        frame.extend_from_slice(&compressed);
                        frame
                    }
                    _ => {
                        let mut frame = Vec::with_capacity(lines.len() + 1);
                        frame.push(RAW);
                        frame.extend_from_slice(&lines);
                        frame
                    }
                }
            },
        )
        .collect()
}

fn compressor(dictionary: Option<&ReadDictionary>) -> Option<zstd::bulk::Compressor<'_>> {
    let compressor = match dictionary {
        Some(dictionary) => zstd::bulk::Compressor::with_prepared_dictionary(&dictionary.encoder),
        None => zstd::bulk::Compressor::new(LEVEL),
    };
    compressor
        .map_err(|error| tracing::warn!(%error, "no zstd compressor: the appearance index keeps its reads uncompressed"))
        .ok()
}

/// Frames of `READS_PER_FRAME` reads each, one after another.
#[derive(Default)]
pub(crate) struct PackedReads {
    bytes: Vec<u8>,
    /// Where each frame ends in `bytes`.
    frame_ends: Vec<u64>,
}

impl PackedReads {
    /// Reads held (every frame is full).
    pub(crate) fn len(&self) -> usize {
        self.frame_ends.len() * READS_PER_FRAME
    }

    pub(crate) fn push_frame(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(frame);
        self.frame_ends.push(self.bytes.len() as u64);
    }

    /// Bytes held, allocated capacity included.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.frame_ends.capacity() * std::mem::size_of::<u64>()
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.frame_ends.shrink_to_fit();
    }

    fn frame(&self, number: usize) -> Option<&[u8]> {
        let end = usize::try_from(*self.frame_ends.get(number)?).ok()?;
        let start = match number {
            0 => 0,
            _ => usize::try_from(self.frame_ends[number - 1]).ok()?,
        };
        self.bytes.get(start..end)
    }

    /// The JSON lines of one frame.
    fn lines(&self, number: usize, dictionary: Option<&ReadDictionary>) -> Option<Vec<u8>> {
        let (&tag, body) = self.frame(number)?.split_first()?;
        match tag {
            RAW => Some(body.to_vec()),
            ZSTD => {
                let capacity = zstd::zstd_safe::get_frame_content_size(body).ok()??;
                let mut lines = Vec::with_capacity(usize::try_from(capacity).ok()?);
                // A search decodes one frame per hit: a context per thread, not per frame
                // (creating one costs more than decoding 16 reads).
                DECOMPRESSOR
                    .with_borrow_mut(|context| {
                        let context = context.get_or_insert_with(zstd::zstd_safe::DCtx::create);
                        match dictionary {
                            Some(dictionary) => context.decompress_using_ddict(
                                &mut lines,
                                body,
                                dictionary.decoder.as_ddict(),
                            ),
                            None => context.decompress(&mut lines, body),
                        }
                    })
                    .ok()?;
                Some(lines)
            }
            _ => None,
        }
    }

    /// The read at `position` (in insertion order).
    pub(crate) fn get(
        &self,
        position: usize,
        dictionary: Option<&ReadDictionary>,
    ) -> Option<PlateRead> {
        let lines = self.lines(position / READS_PER_FRAME, dictionary)?;
        let line = lines
            .split(|byte| *byte == b'\n')
            .nth(position % READS_PER_FRAME)?;
        serde_json::from_slice(line).ok()
    }

    /// Every read, in insertion order.
    pub(crate) fn all(&self, dictionary: Option<&ReadDictionary>) -> Vec<PlateRead> {
        (0..self.frame_ends.len())
            .filter_map(|number| self.lines(number, dictionary))
            .flat_map(|lines| {
                lines
                    .split(|byte| *byte == b'\n')
                    .filter(|line| !line.is_empty())
                    .filter_map(|line| serde_json::from_slice(line).ok())
                    .collect::<Vec<PlateRead>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Timestamp;
    use crate::simulate::{Simulator, SimulatorConfig};

    fn simulated(count: usize) -> Vec<PlateRead> {
        let mut simulator = Simulator::new(SimulatorConfig::default());
        (0..count)
            .map(|number| {
                simulator
                    .next_read(Timestamp(1_795_539_600_000 + number as i64 * 3))
                    .0
            })
            .collect()
    }

    #[test]
    fn every_read_comes_back_as_it_went_in_with_or_without_a_dictionary() {
        let reads = simulated(2048);
        let samples: Vec<Vec<u8>> = reads.iter().map(read_json).collect();
        let dictionary = ReadDictionary::train(&samples);
        assert!(dictionary.is_some(), "2,048 reads train a dictionary");
        for dictionary in [dictionary.as_ref(), None] {
            let mut packed = PackedReads::default();
            for frame in pack(&reads, dictionary) {
                packed.push_frame(&frame);
            }
            assert_eq!(packed.len(), reads.len());
            assert_eq!(packed.get(1234, dictionary).as_ref(), Some(&reads[1234]));
            assert_eq!(packed.get(2047, dictionary).as_ref(), Some(&reads[2047]));
            assert_eq!(packed.get(2048, dictionary), None);
            assert_eq!(packed.all(dictionary), reads);
        }
    }

    #[test]
    fn a_dictionary_keeps_simulated_reads_under_a_hundred_bytes() {
        let reads = simulated(8192);
        let samples: Vec<Vec<u8>> = reads[..2048].iter().map(read_json).collect();
        let dictionary = ReadDictionary::train(&samples);
        let json: usize = reads[2048..].iter().map(|read| read_json(read).len()).sum();
        let packed: usize = pack(&reads[2048..], dictionary.as_ref())
            .iter()
            .map(Vec::len)
            .sum();
        let per_read = packed as f64 / (reads.len() - 2048) as f64;
        assert!(
            per_read < 100.0,
            "{per_read:.1} bytes a read packed, from {:.0} of JSON",
            json as f64 / (reads.len() - 2048) as f64
        );
    }

    #[test]
    fn too_few_samples_train_no_dictionary_and_frames_still_pack() {
        let reads = simulated(40);
        let samples: Vec<Vec<u8>> = reads.iter().map(read_json).collect();
        assert!(ReadDictionary::train(&samples).is_none());
        let mut packed = PackedReads::default();
        for frame in pack(&reads[..32], None) {
            packed.push_frame(&frame);
        }
        assert_eq!(packed.all(None), reads[..32]);
    }
}
