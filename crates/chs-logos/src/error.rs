//! Every way a call to the node can fail.

use std::time::Duration;

/// A failed call to a Logos Storage node. `op` names the operation (`upload`, `exists`, ...).
#[derive(Debug, thiserror::Error)]
pub enum LogosError {
    /// The configured API address is unusable: fix the configuration.
    #[error("Logos Storage API {api:?} is not usable: {detail}")]
    InvalidApi {
        /// The configured address.
        api: String,
        /// What is wrong.
        detail: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// A CID that is not alphanumeric (refused before any request).
    #[error("{op}: {cid:?} is not a CID")]
    InvalidCid {
        /// Operation.
        op: &'static str,
        /// The text given (truncated).
        cid: String,
    },
    /// No TCP connection to the node: is it running, is `api` right?
    #[error("{op} {url}: cannot connect to the node")]
    Connect {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The request failed after connecting (reset, protocol error).
    #[error("{op} {url}: request failed")]
    Request {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The node did not answer in time (stalled node, or content not found on the network).
    #[error("{op} {url}: no answer within {after:?}")]
    Timeout {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// The time-out.
        after: Duration,
    },
    /// 404: the node (or the network, for network operations) does not have the CID.
    #[error("{op}: {cid} not found")]
    NotFound {
        /// Operation.
        op: &'static str,
        /// The CID.
        cid: String,
    },
    /// Another non-success status.
    #[error("{op} {url}: HTTP {status}: {body}")]
    Status {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the answer body.
        body: String,
    },
    /// The body broke off.
    #[error("{op} {url}: reading the answer failed")]
    Body {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is larger than [`crate::ClientConfig::max_body`].
    #[error("{op} {url}: answer larger than {max} bytes")]
    TooLarge {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// The limit.
        max: u64,
    },
    /// The answer is not of the documented shape.
    #[error("{op} {url}: unexpected answer: {detail}")]
    BadResponse {
        /// Operation.
        op: &'static str,
        /// Request URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// Some CIDs were still not local when the fetch wait (and its retries) ended.
    #[error("{} CID(s) still missing after waiting {after:?} per attempt", missing.len())]
    FetchTimedOut {
        /// The CIDs still missing.
        missing: Vec<String>,
        /// The bound of one wait.
        after: Duration,
    },
}

impl LogosError {
    /// Whether the node or network did not answer in time (worth a later retry).
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::FetchTimedOut { .. })
    }

    /// Whether the CID was not found.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}
