//! Detection of status-go `SegmentMessage`s (reassembly is not implemented yet).

use chs_proto::Message as _;
use chs_proto::protobuf::SegmentMessage;

/// status-go segments a payload larger than `MaxMessageSize / 4 * 3` (1 MiB → 786 432 bytes).
pub const SEGMENTATION_THRESHOLD: usize = 786_432;

/// What a segment says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    /// Keccak-256 of the whole message.
    #[serde(serialize_with = "crate::serde_hex::bytes")]
    pub entire_message_hash: Vec<u8>,
    /// Data segment index.
    pub index: u32,
    /// Number of data segments (0 for parity segments).
    pub segments_count: u32,
    /// Parity segment index.
    pub parity_segment_index: u32,
    /// Number of parity segments.
    pub parity_segments_count: u32,
    /// Length of this segment's bytes.
    pub payload_len: usize,
}

/// Whether `data` (a 26/WAKU2 payload's data) is a segment.
///
/// status-go's rule is "decodes as `SegmentMessage` with `segments_count >= 2` or
/// `parity_segments_count > 0`"; with protobuf-go's leniency a bare `ApplicationMetadataMessage`
/// of type ≥ 2 also passes it (status-go-wire.md §3.4). We also require a 32-byte hash and a
/// non-empty payload, which every real segment has and no AMM or `ProtocolMessage` does.
#[must_use]
pub fn detect_segment(data: &[u8]) -> Option<SegmentInfo> {
    let segment = SegmentMessage::decode(data).ok()?;
    let counts_valid = segment.segments_count >= 2 || segment.parity_segments_count > 0;
    if !counts_valid || segment.entire_message_hash.len() != 32 || segment.payload.is_empty() {
        return None;
    }
    Some(SegmentInfo {
        entire_message_hash: segment.entire_message_hash,
        index: segment.index,
        segments_count: segment.segments_count,
        parity_segment_index: segment.parity_segment_index,
        parity_segments_count: segment.parity_segments_count,
        payload_len: segment.payload.len(),
    })
}

/// Most data segments one message may have (bounds memory; status-go's Reed–Solomon limit).
pub const MAX_SEGMENTS: u32 = 256;

/// A segment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// The data is not a valid segment (see [`detect_segment`]).
    #[error("not a segment")]
    NotASegment,
    /// More data segments than [`MAX_SEGMENTS`], or an index beyond the count.
    #[error("segment {index} of {segments_count} is out of range")]
    OutOfRange {
        /// Index.
        index: u32,
        /// Count.
        segments_count: u32,
    },
    /// The segment disagrees with earlier segments of the same message about the count.
    #[error("segment count {found} disagrees with {expected} seen before")]
    CountMismatch {
        /// Count seen first.
        expected: u32,
        /// Count of this segment.
        found: u32,
    },
    /// The reassembled bytes do not hash to `entire_message_hash`.
    #[error("reassembled message does not match its hash")]
    HashMismatch,
}

/// What adding a segment achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// More data segments are needed (parity segments are kept out: reconstruction from parity
    /// is not implemented, so a message with a lost data segment never completes).
    Incomplete {
        /// Data segments held.
        received: u32,
        /// Data segments needed.
        needed: u32,
    },
    /// All data segments arrived and hash to `entire_message_hash`: the whole payload.
    Complete(Vec<u8>),
    /// This message was already reassembled (status-go `ErrMessageSegmentsAlreadyCompleted`).
    AlreadyCompleted,
}

type GroupKey = (Vec<u8>, [u8; 33]);
/// Arrival sequence number of a group, and its data segments by index.
type Group = (u64, Vec<Option<Vec<u8>>>);

/// In-memory reassembly of segmented messages, grouped like status-go by
/// (`entire_message_hash`, payload signer). Holds at most `max_groups` incomplete messages and
/// drops the oldest beyond that.
#[derive(Debug)]
pub struct SegmentAssembler {
    groups: std::collections::HashMap<GroupKey, Group>,
    completed: std::collections::HashSet<GroupKey>,
    max_groups: usize,
    sequence: u64,
}

impl SegmentAssembler {
    /// An empty assembler holding at most `max_groups` incomplete messages.
    #[must_use]
    pub fn new(max_groups: usize) -> Self {
        Self {
            groups: std::collections::HashMap::new(),
            completed: std::collections::HashSet::new(),
            max_groups: max_groups.max(1),
            sequence: 0,
        }
    }

    /// Adds one segment (a 26/WAKU2 payload's data) signed by `signer`.
    ///
    /// # Errors
    /// A [`SegmentError`] for unusable segments.
    pub fn add(&mut self, data: &[u8], signer: &chs_waku_payload::PublicKey) -> Result<SegmentOutcome, SegmentError> {
        let segment = SegmentMessage::decode(data).map_err(|_| SegmentError::NotASegment)?;
        if detect_segment(data).is_none() {
            return Err(SegmentError::NotASegment);
        }
        let key = (segment.entire_message_hash.clone(), signer.to_compressed());
        if self.completed.contains(&key) {
            return Ok(SegmentOutcome::AlreadyCompleted);
        }
        if segment.segments_count == 0 {
            // A parity segment: only useful for Reed–Solomon reconstruction.
            let received = self
                .groups
                .get(&key)
                .map_or(0, |(_, parts)| u32::try_from(parts.iter().flatten().count()).unwrap_or(u32::MAX));
            let needed = self.groups.get(&key).map_or(0, |(_, parts)| u32::try_from(parts.len()).unwrap_or(u32::MAX));
            return Ok(SegmentOutcome::Incomplete { received, needed });
        }
        if segment.segments_count > MAX_SEGMENTS || segment.index >= segment.segments_count {
            return Err(SegmentError::OutOfRange { index: segment.index, segments_count: segment.segments_count });
        }
        let count = segment.segments_count as usize;
        if !self.groups.contains_key(&key) && self.groups.len() >= self.max_groups {
            let oldest = self.groups.iter().min_by_key(|(_, (sequence, _))| *sequence).map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.groups.remove(&oldest);
            }
        }
        self.sequence += 1;
        let sequence = self.sequence;
        let (_, parts) = self.groups.entry(key.clone()).or_insert_with(|| (sequence, vec![None; count]));
        if parts.len() != count {
            return Err(SegmentError::CountMismatch {
                expected: u32::try_from(parts.len()).unwrap_or(u32::MAX),
                found: segment.segments_count,
            });
        }
        parts[segment.index as usize] = Some(segment.payload);
        let received = parts.iter().flatten().count();
        if received < count {
            return Ok(SegmentOutcome::Incomplete {
                received: u32::try_from(received).unwrap_or(u32::MAX),
                needed: segment.segments_count,
            });
        }
        let whole: Vec<u8> = parts.iter().flatten().flatten().copied().collect();
        if chs_waku_payload::keccak256(&whole).as_slice() != key.0.as_slice() {
            self.groups.remove(&key);
            return Err(SegmentError::HashMismatch);
        }
        self.groups.remove(&key);
        self.completed.insert(key);
        Ok(SegmentOutcome::Complete(whole))
    }

    /// Incomplete messages held.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.groups.len()
    }
}

/// Splits `payload` the way status-go's `segmentMessage` does (data segments only, no parity):
/// chunks of `segment_size` bytes, each an encoded `SegmentMessage`. Returns one element, the
/// payload itself, when it fits.
#[must_use]
pub fn segment_payload(payload: &[u8], segment_size: usize) -> Vec<Vec<u8>> {
    use chs_proto::Message as _;
    let segment_size = segment_size.max(1);
    if payload.len() <= segment_size {
        return vec![payload.to_vec()];
    }
    let hash = chs_waku_payload::keccak256(payload).to_vec();
    let count = u32::try_from(payload.len().div_ceil(segment_size)).unwrap_or(u32::MAX);
    payload
        .chunks(segment_size)
        .enumerate()
        .map(|(index, chunk)| {
            SegmentMessage {
                entire_message_hash: hash.clone(),
                index: u32::try_from(index).unwrap_or(u32::MAX),
                segments_count: count,
                payload: chunk.to_vec(),
                ..SegmentMessage::default()
            }
            .encode_to_vec()
        })
        .collect()
}
