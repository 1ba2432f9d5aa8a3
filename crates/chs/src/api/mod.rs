//! The node's HTTP API (`[api]` in the configuration): `GET /api/v1/...` (status, communities,
//! downloads, peers, recent events), `GET /metrics` (Prometheus), `GET /` (the status page), and
//! the calls that change state under `/api/v1/` behind a bearer token. `docs/api/openapi.yaml`
//! describes them.
//!
//! It knows nothing of chs-node's internals: the daemon feeds it the status snapshot it writes to
//! `status.json` and every signal as JSON ([`ApiState::set_snapshot`], [`ApiState::observe`]),
//! and it asks the daemon for changes through a small channel of [`Command`]s.

pub(crate) mod client;
pub(crate) mod metrics;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::util;

/// Recent events kept for `GET /api/v1/events` and the status page.
const EVENTS_KEPT: usize = 200;

/// The status page (static HTML; it reads `/api/v1/status` and `/api/v1/events`).
const PAGE: &str = include_str!("page.html");

/// A change the API asks the daemon for; the reply is the JSON body or an error.
#[derive(Debug)]
pub(crate) enum Command {
    /// Join `community` as a member.
    Join { community: String, reply: Reply },
    /// Leave `community`.
    Leave { community: String, reply: Reply },
    /// Run an archive cycle of `community` now (control node).
    Build { community: String, reply: Reply },
    /// Publish the latest magnetlink of `community` again (control node).
    Reannounce { community: String, reply: Reply },
    /// Restart the tasks of `community` from the database (a member re-opens its pending link:
    /// `chs community ratchet-key add` made a kept, unopened history pending again).
    Reopen { community: String, reply: Reply },
}

/// Where the daemon answers a [`Command`].
pub(crate) type Reply = oneshot::Sender<Result<Value, ApiError>>;

/// An error answer: HTTP status and message.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// What the API serves from, shared with the daemon's loop.
#[derive(Debug)]
pub(crate) struct ApiState {
    snapshot: RwLock<Value>,
    metrics: Mutex<metrics::Metrics>,
    events: Mutex<VecDeque<Value>>,
    token: String,
    commands: mpsc::Sender<Command>,
    local_addr: Option<std::net::SocketAddr>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ApiState {
    /// A state with an empty snapshot; `token` guards the calls that change state.
    pub(crate) fn new(
        token: String,
        commands: mpsc::Sender<Command>,
        local_addr: Option<std::net::SocketAddr>,
    ) -> Self {
        ApiState {
            snapshot: RwLock::new(json!({})),
            metrics: Mutex::new(metrics::Metrics::default()),
            events: Mutex::new(VecDeque::new()),
            token,
            commands,
            local_addr,
        }
    }

    /// Where the API listens.
    pub(crate) fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.local_addr
    }

    /// The daemon's latest status (what `status.json` holds).
    pub(crate) fn set_snapshot(&self, snapshot: Value) {
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    fn snapshot(&self) -> Value {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// One signal, as the JSON line the daemon prints.
    pub(crate) fn observe(&self, event: &Value) {
        lock(&self.metrics).observe(event);
        // Floods (live messages) stay out of the recent events; they are counted.
        if event["type"] == "messagesCaptured" {
            return;
        }
        let mut events = lock(&self.events);
        if events.len() == EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(event.clone());
    }

    /// The daemon missed `lost` signals.
    pub(crate) fn lagged(&self, lost: u64) {
        lock(&self.metrics).lagged(lost);
    }
}

/// The routes over `state`.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/status", get(status))
        .route("/api/v1/communities", get(communities).post(join))
        .route("/api/v1/communities/{id}", get(community).delete(leave))
        .route("/api/v1/communities/{id}/build", post(build))
        .route("/api/v1/communities/{id}/reannounce", post(reannounce))
        .route("/api/v1/communities/{id}/reopen", post(reopen))
        .route("/api/v1/downloads", get(downloads))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/events", get(events))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see docs/api/openapi.yaml)") })
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await {
        tracing::warn!(error = %e, "the HTTP API stopped");
    }
}

/// The token of `path`, created (32 random bytes as hex, mode 0600) if the file does not exist.
pub(crate) fn load_or_create_token(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => anyhow::bail!("the API token file {} ([api] token_file) is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("reading the API token file {} ([api] token_file)", path.display()));
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("generating the API token: {e}"))?;
    let token = hex::encode(bytes);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating the API token file {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())
        .with_context(|| format!("writing the API token file {}", path.display()))?;
    Ok(token)
}

fn authorized(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared in constant time over the token's length.
    let expected = state.token.as_bytes();
    let diff =
        given.len() ^ expected.len() | given.bytes().zip(expected).fold(0usize, |acc, (a, b)| acc | usize::from(a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this call changes the node: send `Authorization: Bearer <token>` with the token of [api] token_file",
        ))
    }
}

async fn ask(state: &ApiState, make: impl FnOnce(Reply) -> Command) -> Result<Json<Value>, ApiError> {
    let (tx, rx) = oneshot::channel();
    let stopped = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    state.commands.send(make(tx)).await.map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?.map(Json)
}

fn community_id(text: &str) -> Result<String, ApiError> {
    chs_community::CommunityId::parse(text.trim())
        .map(|id| id.to_string())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid community id {text:?}: {e}")))
}

async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE))
}

async fn metrics_text(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let text = lock(&state.metrics).render(&state.snapshot());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// `GET /api/v1/status`: node, communities, peers, downloads.
async fn status(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let s = state.snapshot();
    let started = s["started_at_ms"].as_i64().unwrap_or(0);
    let uptime = (util::now_ms() - started).max(0) / 1000;
    Json(json!({
        "node": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": s["pid"],
            "running": s["running"],
            "started_at": util::rfc3339_ms(started),
            "uptime_seconds": uptime,
            "listening": s["listening"],
            "torrent_listener": s["torrent_listener"],
            "store_server": s["store_server"],
        },
        "communities": s["communities"],
        "peers": peers_of(&s),
        "store": s["store"],
        "downloads": downloads_of(&s),
    }))
}

fn peers_of(s: &Value) -> Value {
    let bittorrent: u64 = s["communities"]
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["seeding"]["peers"].as_u64()).sum())
        .unwrap_or(0);
    json!({ "waku": connected_waku_peers(&s["waku_peers"]), "waku_list": s["waku_peers"], "bittorrent": bittorrent })
}

/// Connected Waku peers in a status snapshot's `waku_peers` (the list of known peers, or a count).
pub(crate) fn connected_waku_peers(peers: &Value) -> u64 {
    match peers.as_array() {
        Some(list) => list.iter().filter(|p| p["connected"] == true).count() as u64,
        None => peers.as_u64().unwrap_or(0),
    }
}

fn downloads_of(s: &Value) -> Value {
    let list: Vec<Value> = s["communities"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|c| c["download"].is_object())
                .map(|c| {
                    let mut d = c["download"].clone();
                    d["community_id"] = c["id"].clone();
                    d
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(list)
}

async fn communities(State(state): State<Arc<ApiState>>) -> Json<Value> {
    Json(state.snapshot()["communities"].clone())
}

async fn community(State(state): State<Arc<ApiState>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = community_id(&id)?;
    state.snapshot()["communities"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["id"] == id.as_str()).cloned())
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("community {id} is not known to this node")))
}

async fn downloads(State(state): State<Arc<ApiState>>) -> Json<Value> {
    Json(downloads_of(&state.snapshot()))
}

async fn peers(State(state): State<Arc<ApiState>>) -> Json<Value> {
    Json(peers_of(&state.snapshot()))
}

#[derive(Debug, serde::Deserialize)]
struct EventsQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/events?limit=N`: the newest N (default 50) events, oldest first.
async fn events(State(state): State<Arc<ApiState>>, Query(q): Query<EventsQuery>) -> Json<Value> {
    let events = lock(&state.events);
    let limit = q.limit.unwrap_or(50).min(EVENTS_KEPT);
    Json(Value::Array(events.iter().skip(events.len().saturating_sub(limit)).cloned().collect()))
}

#[derive(Debug, serde::Deserialize)]
struct JoinBody {
    community_id: String,
}

async fn join(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<JoinBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    authorized(&state, &headers)?;
    let Json(body) = body.map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("expected {{\"community_id\": \"0x…\"}}: {}", e.body_text()))
    })?;
    let community = community_id(&body.community_id)?;
    ask(&state, |reply| Command::Join { community, reply }).await
}

async fn leave(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorized(&state, &headers)?;
    let community = community_id(&id)?;
    ask(&state, |reply| Command::Leave { community, reply }).await
}

async fn build(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorized(&state, &headers)?;
    let community = community_id(&id)?;
    ask(&state, |reply| Command::Build { community, reply }).await
}

async fn reopen(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorized(&state, &headers)?;
    let community = community_id(&id)?;
    ask(&state, |reply| Command::Reopen { community, reply }).await
}

async fn reannounce(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorized(&state, &headers)?;
    let community = community_id(&id)?;
    ask(&state, |reply| Command::Reannounce { community, reply }).await
}
