//! 34/WAKU2-PEER-EXCHANGE (`/vac/waku/peer-exchange/2.0.0-alpha1`): a node asks a peer for up to
//! `n` node records and gets RLP-encoded ENRs back, one length-prefixed `PeerExchangeRPC` each
//! way. The server side answers from our discv5 table (as nwaku and go-waku: only a node that
//! runs discv5 has records to give).

use std::io;

use base64::Engine as _;
use chs_proto::Message as _;
use chs_proto::waku::peer_exchange::{PeerExchangeQuery, PeerExchangeResponse, PeerExchangeRpc, PeerInfo};
use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;

use crate::metadata::{read_length_prefixed_up_to, write_length_prefixed};

/// The protocol id of 34/WAKU2-PEER-EXCHANGE.
pub const PEER_EXCHANGE_PROTOCOL: &str = "/vac/waku/peer-exchange/2.0.0-alpha1";

/// Most records we ask for or give in one exchange.
pub(crate) const MAX_PEERS_PER_EXCHANGE: u64 = 30;

/// Largest exchange message we read (30 records of at most 300 bytes, and framing).
const MAX_EXCHANGE_MESSAGE: usize = 64 * 1024;

/// The request-response codec: the request is the number of records wanted, the response
/// the records (RLP bytes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerExchangeCodec;

impl libp2p::request_response::Codec for PeerExchangeCodec {
    type Protocol = StreamProtocol;
    type Request = u64;
    type Response = Vec<Vec<u8>>;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_length_prefixed_up_to(io, MAX_EXCHANGE_MESSAGE).await?;
        let rpc = PeerExchangeRpc::decode(bytes.as_slice()).map_err(invalid_data)?;
        let query = rpc.query.ok_or_else(|| invalid_data(NoQuery))?;
        Ok(query.num_peers)
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_length_prefixed_up_to(io, MAX_EXCHANGE_MESSAGE).await?;
        let rpc = PeerExchangeRpc::decode(bytes.as_slice()).map_err(invalid_data)?;
        let infos = rpc.response.map(|r| r.peer_infos).unwrap_or_default();
        Ok(infos.into_iter().map(|info| info.enr).collect())
    }

    async fn write_request<T>(&mut self, _: &Self::Protocol, io: &mut T, request: Self::Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let rpc = PeerExchangeRpc { query: Some(PeerExchangeQuery { num_peers: request }), response: None };
        write_length_prefixed(io, &rpc.encode_to_vec()).await
    }

    async fn write_response<T>(&mut self, _: &Self::Protocol, io: &mut T, response: Self::Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let peer_infos = response.into_iter().map(|enr| PeerInfo { enr }).collect();
        let rpc = PeerExchangeRpc { query: None, response: Some(PeerExchangeResponse { peer_infos }) };
        write_length_prefixed(io, &rpc.encode_to_vec()).await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("peer exchange request without a query")]
struct NoQuery;

fn invalid_data(err: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// `enr:<base64url>` → the record's RLP bytes.
pub(crate) fn enr_text_to_rlp(text: &str) -> Option<Vec<u8>> {
    let body = text.strip_prefix("enr:").unwrap_or(text);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).ok()
}

/// RLP bytes → `enr:<base64url>`.
pub(crate) fn rlp_to_enr_text(rlp: &[u8]) -> String {
    format!("enr:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rlp))
}
