//! 66/WAKU2-METADATA: `/vac/waku/metadata/1.0.0`, one unsigned-varint length-prefixed
//! `WakuMetadataRequest` answered by one length-prefixed `WakuMetadataResponse`
//! (nim-libp2p `writeLp`/`readLp`, go-waku `pbio` delimited streams).
//!
//! The shard list travels twice, as nwaku and go-waku write it: packed in field 3 (the only one
//! go-waku reads: a relay peer without it is disconnected with `invalid shard count`) and
//! unpacked in the deprecated field 2. We read field 3, else field 2.

use std::io;

use chs_proto::Message as _;
use chs_proto::waku::metadata::{WakuMetadataRequest, WakuMetadataResponse};
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::StreamProtocol;

/// The protocol id of 66/WAKU2-METADATA.
pub const METADATA_PROTOCOL: &str = "/vac/waku/metadata/1.0.0";

/// Largest metadata message we read (1024 shards of 3 varint bytes fit easily).
const MAX_METADATA_MESSAGE: usize = 16 * 1024;

/// What a peer told us about itself, or what we tell it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// The cluster id, absent if the peer did not say.
    pub cluster_id: Option<u32>,
    /// The shards it is on.
    pub shards: Vec<u32>,
}

/// Why a peer was disconnected after the metadata exchange (nwaku's rules).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRejection {
    /// The peer reported no cluster id.
    #[error("peer reported no cluster id")]
    NoClusterId,
    /// The peer is in another cluster.
    #[error("peer is in cluster {theirs}, we are in cluster {ours}")]
    OtherCluster {
        /// Our cluster id.
        ours: u32,
        /// The peer's cluster id.
        theirs: u32,
    },
    /// Both sides named shards and none is common.
    #[error("no shard in common (ours {ours:?}, theirs {theirs:?})")]
    NoCommonShard {
        /// Our shards.
        ours: Vec<u32>,
        /// The peer's shards.
        theirs: Vec<u32>,
    },
}

/// Decides whether a peer whose metadata is `theirs` may stay connected to us.
///
/// Like nwaku's peer manager: no cluster id or another cluster disconnects. Unlike nwaku, an
/// empty shard list on either side is tolerated (a node that has not subscribed yet).
///
/// # Errors
/// The [`PeerRejection`] that disconnects the peer.
pub fn check_peer_metadata(our_cluster: u32, our_shards: &[u32], theirs: &PeerMetadata) -> Result<(), PeerRejection> {
    let their_cluster = theirs.cluster_id.ok_or(PeerRejection::NoClusterId)?;
    if their_cluster != our_cluster {
        return Err(PeerRejection::OtherCluster { ours: our_cluster, theirs: their_cluster });
    }
    if !our_shards.is_empty() && !theirs.shards.is_empty() && !theirs.shards.iter().any(|s| our_shards.contains(s)) {
        return Err(PeerRejection::NoCommonShard { ours: our_shards.to_vec(), theirs: theirs.shards.clone() });
    }
    Ok(())
}

/// The request-response codec of the metadata protocol.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetadataCodec;

impl libp2p::request_response::Codec for MetadataCodec {
    type Protocol = StreamProtocol;
    type Request = PeerMetadata;
    type Response = PeerMetadata;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_length_prefixed(io).await?;
        let request = WakuMetadataRequest::decode(bytes.as_slice()).map_err(invalid_data)?;
        Ok(PeerMetadata { cluster_id: request.cluster_id, shards: either(request.shards, request.shards_deprecated) })
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_length_prefixed(io).await?;
        let response = WakuMetadataResponse::decode(bytes.as_slice()).map_err(invalid_data)?;
        Ok(PeerMetadata {
            cluster_id: response.cluster_id,
            shards: either(response.shards, response.shards_deprecated),
        })
    }

    async fn write_request<T>(&mut self, _: &Self::Protocol, io: &mut T, request: Self::Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let message = WakuMetadataRequest {
            cluster_id: request.cluster_id,
            shards_deprecated: request.shards.clone(),
            shards: request.shards,
        };
        write_length_prefixed(io, &message.encode_to_vec()).await
    }

    async fn write_response<T>(&mut self, _: &Self::Protocol, io: &mut T, response: Self::Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let message = WakuMetadataResponse {
            cluster_id: response.cluster_id,
            shards_deprecated: response.shards.clone(),
            shards: response.shards,
        };
        write_length_prefixed(io, &message.encode_to_vec()).await
    }
}

/// The shards of field 3, or of the deprecated field 2 when field 3 is empty (nwaku's rule).
fn either(shards: Vec<u32>, deprecated: Vec<u32>) -> Vec<u32> {
    if shards.is_empty() { deprecated } else { shards }
}

fn invalid_data(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// Encodes `len` as an unsigned LEB128 varint.
pub(crate) fn encode_varint(mut len: usize, out: &mut Vec<u8>) {
    loop {
        // The mask keeps seven bits, so the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads one unsigned-varint length prefix followed by that many bytes.
pub(crate) async fn read_length_prefixed<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len: usize = 0;
    let mut shift = 0u32;
    loop {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        len |= usize::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "metadata length prefix longer than 4 bytes"));
        }
    }
    if len > MAX_METADATA_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("metadata message of {len} bytes exceeds {MAX_METADATA_MESSAGE}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    io.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// Writes `bytes` with an unsigned-varint length prefix (the request-response handler closes the stream).
pub(crate) async fn write_length_prefixed<T: AsyncWrite + Unpin>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(bytes.len() + 4);
    encode_varint(bytes.len(), &mut frame);
    frame.extend_from_slice(bytes);
    io.write_all(&frame).await?;
    io.flush().await
}
