//! A small stand-in for a Logos Storage node, for tests and `chs demo` (no real node can be
//! installed here). It serves the subset of the node's HTTP API (logos-storage-nim
//! `openapi.yaml`) that the Community History Service uses, on 127.0.0.1, under a configurable
//! base path:
//!
//! `POST /data`, `GET /data`, `GET /data/{cid}`, `DELETE /data/{cid}`, `GET /data/{cid}/exists`,
//! `GET /data/{cid}/network/stream`, `POST /data/{cid}/network`,
//! `GET /data/{cid}/network/manifest`, `GET|POST /data/{cid}/advertise`.
//!
//! Content is addressed like a node's manifest CID (CIDv1, codec `codex-manifest` 0xcd01,
//! sha2-256 of the content, base58btc), so the same bytes get the same CID on every stand-in.
//! The "network" is the list of peer stand-ins given with [`StandinNode::add_peer`]: a network
//! operation asks each peer's *local* store over HTTP, checks the content against the CID and
//! keeps a copy. What it does NOT do is listed in `docs/backends.md` (no blocks, Merkle trees,
//! erasure coding, DHT, discovery, SPR, storage market, block TTL, quotas or range requests).
//!
//! Test hooks: [`StandinNode::set_stalled`] makes every request hang until unset (a stalled
//! node), [`StandinNode::requests`] counts requests, [`ExistsShape`] picks the answer shape of
//! `exists`, and a `data_dir` keeps the store across restarts.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::Digest as _;
use tokio::sync::watch;

/// Header a stand-in sets when it asks a peer: the peer answers from its local store only (so
/// that a ring of peers never loops).
const LOCAL_ONLY: &str = "x-chs-standin-local";

/// The shape of `GET /data/{cid}/exists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistsShape {
    /// `{"has": bool}` (the newest openapi).
    #[default]
    Has,
    /// `{"<cid>": bool}` (older node code).
    CidKey,
}

/// How to run a stand-in.
#[derive(Debug, Clone)]
pub struct StandinConfig {
    /// Base path of the API, e.g. `/api/storage/v1` (newest) or `/api/codex/v1` (older).
    pub base_path: String,
    /// Shape of the `exists` answer.
    pub exists_shape: ExistsShape,
    /// Where to keep the store (one file per CID); `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// Time-out of one request to a peer.
    pub peer_timeout: Duration,
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
}

impl Default for StandinConfig {
    fn default() -> Self {
        Self {
            base_path: "/api/storage/v1".to_owned(),
            exists_shape: ExistsShape::Has,
            data_dir: None,
            peer_timeout: Duration::from_secs(10),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    bytes: Bytes,
    advertise: bool,
}

#[derive(Debug)]
struct Shared {
    config: StandinConfig,
    store: Mutex<BTreeMap<String, Entry>>,
    peers: Mutex<Vec<String>>,
    stalled: watch::Sender<bool>,
    requests: AtomicU64,
    http: reqwest::Client,
}

/// A running stand-in node. Dropping it stops the server.
#[derive(Debug)]
pub struct StandinNode {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl StandinNode {
    /// Starts a stand-in (loads `data_dir` if given) and serves until stopped or dropped.
    ///
    /// # Errors
    /// Binding the socket, reading `data_dir`, or building the peer HTTP client.
    pub async fn start(config: StandinConfig) -> std::io::Result<Self> {
        let mut store = BTreeMap::new();
        if let Some(dir) = &config.data_dir {
            tokio::fs::create_dir_all(dir).await?;
            let mut entries = tokio::fs::read_dir(dir).await?;
            while let Some(file) = entries.next_entry().await? {
                let name = file.file_name().to_string_lossy().into_owned();
                let bytes = Bytes::from(tokio::fs::read(file.path()).await?);
                if cid_of(&bytes) == name {
                    store.insert(name, Entry { bytes, advertise: true });
                }
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.peer_timeout)
            .build()
            .map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let base_path = config.base_path.trim_end_matches('/').to_owned();
        let shared = Arc::new(Shared {
            config,
            store: Mutex::new(store),
            peers: Mutex::new(Vec::new()),
            stalled: watch::Sender::new(false),
            requests: AtomicU64::new(0),
            http,
        });
        let routes = Router::new()
            .route("/data", post(upload).get(list))
            .route("/data/{cid}", get(get_local).delete(delete))
            .route("/data/{cid}/exists", get(exists))
            .route("/data/{cid}/network", post(fetch_async))
            .route("/data/{cid}/network/stream", get(stream))
            .route("/data/{cid}/network/manifest", get(manifest))
            .route("/data/{cid}/advertise", get(advertise_get).post(advertise_set))
            .with_state(shared.clone());
        let app = if base_path.is_empty() { routes } else { Router::new().nest(&base_path, routes) };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "stand-in Logos Storage node stopped");
            }
        });
        tracing::info!(%addr, %base_path, "stand-in Logos Storage node listening");
        Ok(Self { shared, addr, shutdown: Some(tx), server: Some(server) })
    }

    /// The API base URL: `http://127.0.0.1:<port><base path>`.
    #[must_use]
    pub fn api(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.config.base_path.trim_end_matches('/'))
    }

    /// The listening address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a peer (its [`StandinNode::api`]) to this node's "network".
    pub fn add_peer(&self, api: &str) {
        lock(&self.shared.peers).push(api.trim_end_matches('/').to_owned());
    }

    /// While `stalled`, every request waits (accepted, never answered) until unstalled.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.send_replace(stalled);
    }

    /// Requests received so far.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Whether the local store holds `cid`.
    #[must_use]
    pub fn holds(&self, cid: &str) -> bool {
        lock(&self.shared.store).contains_key(cid)
    }

    /// The CIDs of the local store.
    #[must_use]
    pub fn cids(&self) -> Vec<String> {
        lock(&self.shared.store).keys().cloned().collect()
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        self.shared.stalled.send_replace(false);
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for StandinNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The stand-in's CID of `bytes`: CIDv1, codec 0xcd01, sha2-256, base58btc.
#[must_use]
pub fn cid_of(bytes: &[u8]) -> String {
    cid_with_codec(bytes, [0x81, 0x9a, 0x03])
}

fn cid_with_codec(bytes: &[u8], codec: [u8; 3]) -> String {
    let mut raw = vec![0x01];
    raw.extend_from_slice(&codec);
    raw.extend_from_slice(&[0x12, 0x20]);
    raw.extend_from_slice(&sha2::Sha256::digest(bytes));
    format!("z{}", bs58::encode(raw).into_string())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn enter(shared: &Shared) {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mut rx = shared.stalled.subscribe();
    let _ = rx.wait_for(|stalled| !*stalled).await;
}

fn valid_cid(cid: &str) -> bool {
    !cid.is_empty() && cid.len() <= 200 && cid.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))], body.to_owned()).into_response()
}

fn json(value: &serde_json::Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], value.to_string())
        .into_response()
}

fn octets(bytes: Bytes) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"))], bytes)
        .into_response()
}

fn manifest_json(cid: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "cid": cid,
        "manifest": {
            "treeCid": cid_with_codec(bytes, [0x82, 0x9a, 0x03]),
            "datasetSize": bytes.len(),
            "blockSize": 65536,
            "protected": false,
        }
    })
}

fn query_flag(query: Option<&str>, name: &str) -> Option<bool> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.eq_ignore_ascii_case("true"))
    })
}

fn local(shared: &Shared, cid: &str) -> Option<Entry> {
    lock(&shared.store).get(cid).cloned()
}

async fn keep(shared: &Shared, cid: &str, bytes: Bytes, advertise: bool) {
    if let Some(dir) = &shared.config.data_dir
        && let Err(error) = tokio::fs::write(dir.join(cid), &bytes).await
    {
        tracing::warn!(%error, cid, "stand-in: cannot persist");
    }
    lock(&shared.store).entry(cid.to_owned()).or_insert(Entry { bytes, advertise });
}

/// Asks each peer's local store for `cid`; keeps and returns the first copy whose content matches.
async fn from_peers(shared: &Shared, cid: &str) -> Option<Bytes> {
    let peers = lock(&shared.peers).clone();
    for peer in peers {
        let url = format!("{peer}/data/{cid}");
        let Ok(response) = shared.http.get(&url).header(LOCAL_ONLY, "1").send().await else { continue };
        if !response.status().is_success() {
            continue;
        }
        let Ok(bytes) = response.bytes().await else { continue };
        if cid_of(&bytes) == cid {
            keep(shared, cid, bytes.clone(), false).await;
            return Some(bytes);
        }
        tracing::warn!(peer, cid, "stand-in: peer sent content that does not match the CID");
    }
    None
}

/// Whether some peer holds `cid` locally.
async fn peer_has(shared: &Shared, cid: &str) -> bool {
    let peers = lock(&shared.peers).clone();
    for peer in peers {
        let url = format!("{peer}/data/{cid}/exists");
        let Ok(response) = shared.http.get(&url).send().await else { continue };
        let Ok(body) = response.bytes().await else { continue };
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else { continue };
        let object = value.as_object();
        if object.and_then(|o| o.get("has").or_else(|| o.get(cid))).and_then(serde_json::Value::as_bool) == Some(true) {
            return true;
        }
    }
    false
}

async fn upload(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    enter(&shared).await;
    let cid = cid_of(&body);
    let advertise = query_flag(query.as_deref(), "advertise").unwrap_or(true);
    keep(&shared, &cid, body, advertise).await;
    text(StatusCode::OK, &cid)
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    enter(&shared).await;
    let content: Vec<serde_json::Value> =
        lock(&shared.store).iter().map(|(cid, entry)| manifest_json(cid, &entry.bytes)).collect();
    json(&serde_json::json!({ "content": content }))
}

async fn get_local(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    match local(&shared, &cid) {
        Some(entry) => octets(entry.bytes),
        None => text(StatusCode::NOT_FOUND, "The requested data was not found"),
    }
}

async fn delete(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    lock(&shared.store).remove(&cid);
    if let Some(dir) = &shared.config.data_dir {
        let _ = tokio::fs::remove_file(dir.join(&cid)).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn exists(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    let has = local(&shared, &cid).is_some();
    match shared.config.exists_shape {
        ExistsShape::Has => json(&serde_json::json!({ "has": has })),
        ExistsShape::CidKey => json(&serde_json::json!({ cid: has })),
    }
}

async fn stream(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    if let Some(entry) = local(&shared, &cid) {
        return octets(entry.bytes);
    }
    match from_peers(&shared, &cid).await {
        Some(bytes) => octets(bytes),
        None => text(StatusCode::NOT_FOUND, "The requested data was not found"),
    }
}

async fn fetch_async(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    if let Some(entry) = local(&shared, &cid) {
        return json(&manifest_json(&cid, &entry.bytes));
    }
    if !peer_has(&shared, &cid).await {
        return text(StatusCode::NOT_FOUND, "The requested data was not found");
    }
    let task = shared.clone();
    let cid2 = cid.clone();
    tokio::spawn(async move {
        if from_peers(&task, &cid2).await.is_none() {
            tracing::debug!(cid = %cid2, "stand-in: background fetch found no copy");
        }
    });
    // The real node answers with the manifest it fetched; the stand-in has only the CID yet.
    json(&serde_json::json!({ "cid": cid, "manifest": { "treeCid": "", "datasetSize": 0, "blockSize": 65536 } }))
}

async fn manifest(State(shared): State<Arc<Shared>>, Path(cid): Path<String>, headers: HeaderMap) -> Response {
    enter(&shared).await;
    if !valid_cid(&cid) {
        return text(StatusCode::BAD_REQUEST, "Incorrect Cid");
    }
    if let Some(entry) = local(&shared, &cid) {
        return json(&manifest_json(&cid, &entry.bytes)["manifest"]);
    }
    if headers.contains_key(LOCAL_ONLY) {
        return text(StatusCode::NOT_FOUND, "not found locally");
    }
    match from_peers(&shared, &cid).await {
        Some(bytes) => json(&manifest_json(&cid, &bytes)["manifest"]),
        None => text(StatusCode::NOT_FOUND, "The requested data was not found"),
    }
}

async fn advertise_get(State(shared): State<Arc<Shared>>, Path(cid): Path<String>) -> Response {
    enter(&shared).await;
    match local(&shared, &cid) {
        Some(entry) => json(&serde_json::json!({ "cid": cid, "advertise": entry.advertise })),
        None => text(StatusCode::NOT_FOUND, "The requested data was not found"),
    }
}

async fn advertise_set(
    State(shared): State<Arc<Shared>>,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    enter(&shared).await;
    let flag = query_flag(query.as_deref(), "advertise").unwrap_or(true);
    match lock(&shared.store).get_mut(&cid) {
        Some(entry) => {
            entry.advertise = flag;
            json(&serde_json::json!({ "cid": cid, "advertise": flag }))
        }
        None => text(StatusCode::NOT_FOUND, "The requested data was not found"),
    }
}
