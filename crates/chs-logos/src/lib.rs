//! A typed client of a Logos Storage (formerly Codex) node's HTTP API, as the Community History
//! Service uses it (logos-storage-nim `openapi.yaml`; `../shared/spec/status-go-2026.md`).
//!
//! Start with [`LogosClient::new`] on a [`ClientConfig`] whose `api` is the node's base URL with
//! its base path (`http://127.0.0.1:8080/api/storage/v1` for the newest node,
//! `/api/codex/v1` for older releases). One method per endpoint ([`LogosClient::upload`],
//! [`LogosClient::get_local`], [`LogosClient::stream_from_network`],
//! [`LogosClient::fetch_from_network`], [`LogosClient::manifest`], [`LogosClient::advertise`],
//! [`LogosClient::set_advertise`], [`LogosClient::exists`], [`LogosClient::delete`],
//! [`LogosClient::list`]) and the two waits status-go's backend makes
//! ([`LogosClient::fetch_index`]: the index from the network, 20 s, one retry on time-out;
//! [`LogosClient::fetch_all_to_local`]: archives fetched to the local node, the whole wait
//! bounded by 20 s, retried once). Every failure is a [`LogosError`] naming the operation.
//!
//! This crate knows nothing of Waku, communities, archives or protobufs: it moves bytes by CID.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![deny(missing_docs)]

mod error;
mod types;

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};

pub use error::LogosError;
pub use types::{DataItem, Manifest};

/// Base path of the newest node's API (logos-storage-nim `openapi.yaml`).
pub const API_BASE_PATH: &str = "/api/storage/v1";
/// Base path of older (Codex) releases.
pub const CODEX_API_BASE_PATH: &str = "/api/codex/v1";
/// The node's default API address with the newest base path.
pub const DEFAULT_API: &str = "http://127.0.0.1:8080/api/storage/v1";

/// How to reach a node and how long to wait.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL including the base path, e.g. [`DEFAULT_API`].
    pub api: String,
    /// Time-out of one plain API request (upload, exists, delete, ...).
    pub request_timeout: Duration,
    /// Time-out of one index fetch from the network (status-go: 20 s).
    pub index_timeout: Duration,
    /// Bound of one whole "fetch these CIDs to the local node" wait (status-go: 20 s).
    pub fetch_timeout: Duration,
    /// Retries after a time-out of an index fetch or an archive wait (status-go: one).
    pub retries: u32,
    /// How often presence is polled while archives are fetched.
    pub poll_interval: Duration,
    /// Time-out of establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Largest body read from the node (status-go archives are at most ~30 MB).
    pub max_body: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            api: DEFAULT_API.to_owned(),
            request_timeout: Duration::from_secs(20),
            index_timeout: Duration::from_secs(20),
            fetch_timeout: Duration::from_secs(20),
            retries: 1,
            poll_interval: Duration::from_millis(250),
            connect_timeout: Duration::from_secs(5),
            max_body: 64 * 1024 * 1024,
        }
    }
}

/// A client of one node. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct LogosClient {
    http: reqwest::Client,
    base: String,
    config: ClientConfig,
}

/// The operations, as named in errors and logs.
mod op {
    pub(crate) const UPLOAD: &str = "upload";
    pub(crate) const GET_LOCAL: &str = "get local";
    pub(crate) const STREAM: &str = "stream from network";
    pub(crate) const FETCH: &str = "fetch from network";
    pub(crate) const MANIFEST: &str = "manifest";
    pub(crate) const ADVERTISE: &str = "advertise";
    pub(crate) const EXISTS: &str = "exists";
    pub(crate) const DELETE: &str = "delete";
    pub(crate) const LIST: &str = "list";
}

impl LogosClient {
    /// A client of the node at `config.api`.
    ///
    /// # Errors
    /// [`LogosError::InvalidApi`] if `api` is not an `http(s)://` URL, [`LogosError::Client`]
    /// if the HTTP client cannot be built.
    pub fn new(config: ClientConfig) -> Result<Self, LogosError> {
        let base = config.api.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|error| LogosError::InvalidApi { api: config.api.clone(), detail: error.to_string() })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(LogosError::InvalidApi { api: config.api.clone(), detail: "not an http(s) URL".into() });
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(LogosError::Client)?;
        Ok(Self { http, base, config })
    }

    /// The base URL in use (without a trailing `/`).
    #[must_use]
    pub fn api(&self) -> &str {
        &self.base
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `POST /data`: stores `bytes` on the node (and announces them if `advertise`); returns the
    /// CID.
    ///
    /// # Errors
    /// Any [`LogosError`]; [`LogosError::BadResponse`] if the answer is not a CID.
    pub async fn upload(&self, bytes: impl Into<Bytes>, advertise: bool) -> Result<String, LogosError> {
        let url = format!("{}/data?advertise={advertise}", self.base);
        let request =
            self.http.post(&url).header(reqwest::header::CONTENT_TYPE, "application/octet-stream").body(bytes.into());
        let body = self.send(op::UPLOAD, &url, None, request, self.config.request_timeout).await?;
        let cid = String::from_utf8_lossy(&body).trim().to_owned();
        let looks_like_cid = cid.len() >= 32 && (cid.starts_with('z') || cid.starts_with('b'));
        check_cid(op::UPLOAD, &cid).ok().filter(|()| looks_like_cid).ok_or_else(|| LogosError::BadResponse {
            op: op::UPLOAD,
            url,
            detail: format!("answer {:?} is not a CID", cid.chars().take(100).collect::<String>()),
        })?;
        Ok(cid)
    }

    /// `GET /data/{cid}`: the content if the local node holds it.
    ///
    /// # Errors
    /// [`LogosError::NotFound`] if it does not; any other [`LogosError`].
    pub async fn get_local(&self, cid: &str) -> Result<Bytes, LogosError> {
        self.get_bytes(op::GET_LOCAL, cid, "", self.config.request_timeout).await
    }

    /// `GET /data/{cid}/network/stream`: the content, from the network if the local node lacks
    /// it, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`LogosError::NotFound`], [`LogosError::Timeout`], any other [`LogosError`].
    pub async fn stream_from_network(&self, cid: &str, timeout: Duration) -> Result<Bytes, LogosError> {
        self.get_bytes(op::STREAM, cid, "/network/stream", timeout).await
    }

    /// `POST /data/{cid}/network`: starts fetching `cid` to the local node in the background.
    ///
    /// # Errors
    /// [`LogosError::NotFound`] if no manifest is found; any other [`LogosError`].
    pub async fn fetch_from_network(&self, cid: &str) -> Result<DataItem, LogosError> {
        check_cid(op::FETCH, cid)?;
        let url = format!("{}/data/{cid}/network", self.base);
        let body = self.send(op::FETCH, &url, Some(cid), self.http.post(&url), self.config.request_timeout).await?;
        parse_json(op::FETCH, &url, &body)
    }

    /// `GET /data/{cid}/network/manifest`.
    ///
    /// # Errors
    /// [`LogosError::NotFound`]; any other [`LogosError`].
    pub async fn manifest(&self, cid: &str) -> Result<Manifest, LogosError> {
        let body = self.get_bytes(op::MANIFEST, cid, "/network/manifest", self.config.request_timeout).await?;
        parse_json(op::MANIFEST, &format!("{}/data/{cid}/network/manifest", self.base), &body)
    }

    /// `GET /data/{cid}/advertise`: whether the node announces `cid`.
    ///
    /// # Errors
    /// [`LogosError::NotFound`]; any other [`LogosError`].
    pub async fn advertise(&self, cid: &str) -> Result<bool, LogosError> {
        let body = self.get_bytes(op::ADVERTISE, cid, "/advertise", self.config.request_timeout).await?;
        let url = format!("{}/data/{cid}/advertise", self.base);
        let state: types::AdvertiseState = parse_json(op::ADVERTISE, &url, &body)?;
        Ok(state.advertise)
    }

    /// `POST /data/{cid}/advertise?advertise=…`: starts or stops announcing `cid`.
    ///
    /// # Errors
    /// [`LogosError::NotFound`]; any other [`LogosError`].
    pub async fn set_advertise(&self, cid: &str, advertise: bool) -> Result<(), LogosError> {
        check_cid(op::ADVERTISE, cid)?;
        let url = format!("{}/data/{cid}/advertise?advertise={advertise}", self.base);
        self.send(op::ADVERTISE, &url, Some(cid), self.http.post(&url), self.config.request_timeout).await?;
        Ok(())
    }

    /// `GET /data/{cid}/exists`: whether the local node holds `cid`. Accepts the openapi's
    /// `{"has": bool}` and older nodes' `{"<cid>": bool}`.
    ///
    /// # Errors
    /// Any [`LogosError`]; [`LogosError::BadResponse`] for another shape.
    pub async fn exists(&self, cid: &str) -> Result<bool, LogosError> {
        check_cid(op::EXISTS, cid)?;
        let url = format!("{}/data/{cid}/exists", self.base);
        let body = self.send(op::EXISTS, &url, Some(cid), self.http.get(&url), self.config.request_timeout).await?;
        let value: serde_json::Value = parse_json(op::EXISTS, &url, &body)?;
        types::exists_answer(&value, cid).ok_or_else(|| LogosError::BadResponse {
            op: op::EXISTS,
            url,
            detail: "neither {\"has\": bool} nor {\"<cid>\": bool}".into(),
        })
    }

    /// `DELETE /data/{cid}` (the node answers 204).
    ///
    /// # Errors
    /// Any [`LogosError`].
    pub async fn delete(&self, cid: &str) -> Result<(), LogosError> {
        check_cid(op::DELETE, cid)?;
        let url = format!("{}/data/{cid}", self.base);
        let request = self.http.request(Method::DELETE, &url);
        self.send(op::DELETE, &url, Some(cid), request, self.config.request_timeout).await?;
        Ok(())
    }

    /// `GET /data`: what the local node holds.
    ///
    /// # Errors
    /// Any [`LogosError`].
    pub async fn list(&self) -> Result<Vec<DataItem>, LogosError> {
        let url = format!("{}/data", self.base);
        let body = self.send(op::LIST, &url, None, self.http.get(&url), self.config.request_timeout).await?;
        let list: types::DataList = parse_json(op::LIST, &url, &body)?;
        Ok(list.content)
    }

    /// status-go's index fetch: [`LogosClient::stream_from_network`] with
    /// [`ClientConfig::index_timeout`], retried [`ClientConfig::retries`] times after a time-out
    /// (not after another error).
    ///
    /// # Errors
    /// The last attempt's [`LogosError`].
    pub async fn fetch_index(&self, cid: &str) -> Result<Bytes, LogosError> {
        let mut attempt = 0;
        loop {
            match self.stream_from_network(cid, self.config.index_timeout).await {
                Err(error @ LogosError::Timeout { .. }) if attempt < self.config.retries => {
                    attempt += 1;
                    tracing::warn!(%cid, attempt, %error, "index fetch timed out; retrying");
                }
                other => return other,
            }
        }
    }

    /// status-go's archive download: asks the node to fetch every CID of `cids` it lacks from the
    /// network ([`LogosClient::fetch_from_network`]), then polls [`LogosClient::exists`] until all
    /// are local. One wait is bounded by [`ClientConfig::fetch_timeout`] and retried
    /// [`ClientConfig::retries`] times for what is still missing.
    ///
    /// # Errors
    /// [`LogosError::FetchTimedOut`] naming the CIDs still missing; the first other error.
    pub async fn fetch_all_to_local(&self, cids: &[String]) -> Result<(), LogosError> {
        let mut missing: Vec<String> = Vec::new();
        for cid in cids {
            if !self.exists(cid).await? {
                missing.push(cid.clone());
            }
        }
        let mut attempt = 0;
        while !missing.is_empty() {
            for cid in &missing {
                self.fetch_from_network(cid).await?;
            }
            let deadline = tokio::time::Instant::now() + self.config.fetch_timeout;
            loop {
                let mut still = Vec::new();
                for cid in &missing {
                    if !self.exists(cid).await? {
                        still.push(cid.clone());
                    }
                }
                missing = still;
                if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + self.config.poll_interval)).await;
            }
            if missing.is_empty() {
                break;
            }
            if attempt >= self.config.retries {
                return Err(LogosError::FetchTimedOut { missing, after: self.config.fetch_timeout });
            }
            attempt += 1;
            tracing::warn!(missing = missing.len(), attempt, "archive fetch timed out; retrying");
        }
        Ok(())
    }

    async fn get_bytes(
        &self,
        op: &'static str,
        cid: &str,
        suffix: &str,
        timeout: Duration,
    ) -> Result<Bytes, LogosError> {
        check_cid(op, cid)?;
        let url = format!("{}/data/{cid}{suffix}", self.base);
        self.send(op, &url, Some(cid), self.http.get(&url), timeout).await
    }

    /// Sends `request` with `timeout` over the whole exchange (headers and body), maps every
    /// failure to a [`LogosError`], and reads at most [`ClientConfig::max_body`] bytes.
    async fn send(
        &self,
        op: &'static str,
        url: &str,
        cid: Option<&str>,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<Bytes, LogosError> {
        let exchange = async {
            let response = request.send().await.map_err(|source| request_error(op, url, source))?;
            let status = response.status();
            let body = read_capped(op, url, response, self.config.max_body).await?;
            if status == StatusCode::NOT_FOUND {
                return Err(LogosError::NotFound { op, cid: cid.unwrap_or_default().to_owned() });
            }
            if !status.is_success() {
                return Err(LogosError::Status {
                    op,
                    url: url.to_owned(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&body).chars().take(300).collect(),
                });
            }
            Ok(body)
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(LogosError::Timeout { op, url: url.to_owned(), after: timeout }),
        };
        if let Err(error) = &result {
            tracing::debug!(op, url, %error, "Logos Storage request failed");
        }
        result
    }
}

async fn read_capped(
    op: &'static str,
    url: &str,
    mut response: reqwest::Response,
    max: u64,
) -> Result<Bytes, LogosError> {
    if let Some(len) = response.content_length()
        && len > max
    {
        return Err(LogosError::TooLarge { op, url: url.to_owned(), max });
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|source| LogosError::Body { op, url: url.to_owned(), source })?
    {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(LogosError::TooLarge { op, url: url.to_owned(), max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn request_error(op: &'static str, url: &str, source: reqwest::Error) -> LogosError {
    if source.is_connect() {
        LogosError::Connect { op, url: url.to_owned(), source }
    } else {
        LogosError::Request { op, url: url.to_owned(), source }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(op: &'static str, url: &str, body: &[u8]) -> Result<T, LogosError> {
    serde_json::from_slice(body).map_err(|error| LogosError::BadResponse {
        op,
        url: url.to_owned(),
        detail: format!("not the expected JSON: {error}"),
    })
}

/// A CID as the node prints it is non-empty ASCII alphanumerics (multibase base58btc or base32);
/// anything else could change the request path.
fn check_cid(op: &'static str, cid: &str) -> Result<(), LogosError> {
    if cid.is_empty() || cid.len() > 200 || !cid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(LogosError::InvalidCid { op, cid: cid.chars().take(100).collect() });
    }
    Ok(())
}
