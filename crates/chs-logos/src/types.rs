//! The JSON shapes of the node API (logos-storage-nim `openapi.yaml`), read leniently: unknown
//! fields are ignored, optional ones default.

use serde::{Deserialize, Serialize};

/// A stored dataset's manifest (`GET /data/{cid}/network/manifest`, and inside [`DataItem`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Manifest {
    /// CID of the Merkle tree of the blocks.
    pub tree_cid: String,
    /// Length of the content in bytes.
    pub dataset_size: u64,
    /// Block size in bytes (64 KiB by default).
    pub block_size: u64,
    /// Whether the dataset is erasure-coded.
    pub protected: bool,
    /// File name given at upload, if any.
    pub filename: Option<String>,
    /// MIME type given at upload, if any.
    pub mimetype: Option<String>,
}

/// One dataset: CID and manifest (`POST /data/{cid}/network`, `GET /data`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataItem {
    /// The dataset's (manifest) CID.
    pub cid: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// `GET /data`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DataList {
    pub(crate) content: Vec<DataItem>,
}

/// `GET /data/{cid}/advertise`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AdvertiseState {
    pub(crate) advertise: bool,
}

/// `{"has": bool}` (openapi) or `{"<cid>": bool}` (older node code).
pub(crate) fn exists_answer(value: &serde_json::Value, cid: &str) -> Option<bool> {
    let object = value.as_object()?;
    object.get("has").or_else(|| object.get(cid)).and_then(serde_json::Value::as_bool)
}
