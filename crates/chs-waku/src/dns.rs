//! EIP-1459 DNS discovery: an `enrtree://<key>@<domain>` URL names a Merkle tree of node
//! records in TXT records, its root signed by the key. We check the root's signature, follow
//! branches (each child's name is the hash of its text, checked), parse the `enr:` leaves as
//! Waku records and follow `enrtree://` links to other trees (each checked with its own key).
//!
//! The resolver is hickory's, pointed at a configurable nameserver (`IP:PORT`; tests use a
//! loopback server) or the system's.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::proto::rr::RData;
use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
use k256::ecdsa::{Signature, VerifyingKey};
use sha3::Digest as _;

use crate::enr::{EnrError, WakuEnr};

/// The ENR tree of Status' production fleet (status-go's `status.prod` default).
pub const STATUS_PROD_ENRTREE: &str =
    "enrtree://AMOJVZX4V6EXP7NTJPMAYJYST2QP6AJXYW76IU6VGJS7UVSNDYZG4@boot.prod.status.nodes.status.im";

/// At most this many TXT records are fetched per resolution (trees, links and all): a hostile
/// tree cannot keep us busy.
const MAX_RECORDS: usize = 2000;
/// At most this many linked trees are followed.
const MAX_TREES: usize = 16;

/// Why a tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DnsDiscoveryError {
    /// The URL is not `enrtree://<base32 compressed secp256k1 key>@<domain>`.
    #[error("invalid enrtree URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The resolver could not be set up (system configuration unreadable).
    #[error("DNS resolver: {0}")]
    Resolver(String),
    /// A TXT lookup failed.
    #[error("TXT lookup of {name}: {reason}")]
    Lookup {
        /// The name queried.
        name: String,
        /// The resolver's error.
        reason: String,
    },
    /// The root record is malformed.
    #[error("bad root record at {domain}: {reason}")]
    BadRoot {
        /// The tree's domain.
        domain: String,
        /// What is wrong.
        reason: String,
    },
    /// The root's signature is not the URL key's.
    #[error("root of {domain} is not signed by the key of its URL")]
    BadSignature {
        /// The tree's domain.
        domain: String,
    },
    /// A record's text does not hash to its name.
    #[error("record {name} does not match its hash")]
    HashMismatch {
        /// The name queried.
        name: String,
    },
    /// A record is neither a branch, an ENR nor a link (or in the wrong subtree).
    #[error("unexpected record at {name}: {text:?}")]
    BadRecord {
        /// The name queried.
        name: String,
        /// Its text (truncated).
        text: String,
    },
    /// An `enr:` leaf is invalid.
    #[error("ENR at {name}")]
    Enr {
        /// The name queried.
        name: String,
        /// The cause.
        #[source]
        source: EnrError,
    },
    /// The tree (with its links) holds more than the limits allow.
    #[error("tree too large: more than {MAX_RECORDS} records or {MAX_TREES} linked trees")]
    TooLarge,
}

/// An `enrtree://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrTreeUrl {
    key: VerifyingKey,
    /// The tree's domain.
    pub domain: String,
}

impl EnrTreeUrl {
    /// Parses `enrtree://<key>@<domain>`.
    ///
    /// # Errors
    /// [`DnsDiscoveryError::BadUrl`].
    pub fn parse(url: &str) -> Result<EnrTreeUrl, DnsDiscoveryError> {
        let bad = |reason: &str| DnsDiscoveryError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let rest = url.trim().strip_prefix("enrtree://").ok_or_else(|| bad("no enrtree:// scheme"))?;
        let (key, domain) = rest.split_once('@').ok_or_else(|| bad("no @domain"))?;
        if domain.is_empty() {
            return Err(bad("empty domain"));
        }
        let key = data_encoding::BASE32_NOPAD.decode(key.as_bytes()).map_err(|_| bad("key is not base32"))?;
        let key = VerifyingKey::from_sec1_bytes(&key).map_err(|_| bad("key is not a secp256k1 public key"))?;
        Ok(EnrTreeUrl { key, domain: domain.trim_end_matches('.').to_owned() })
    }
}

/// Where TXT queries go.
#[derive(Debug, Clone)]
pub struct DnsDiscovery {
    resolver: TokioResolver,
}

impl DnsDiscovery {
    /// A client asking `nameserver` (UDP, then TCP), or the system's resolvers when `None`.
    ///
    /// # Errors
    /// [`DnsDiscoveryError::Resolver`] when the system configuration cannot be read.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<DnsDiscovery, DnsDiscoveryError> {
        let builder = match nameserver {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().map_err(|err| DnsDiscoveryError::Resolver(err.to_string()))?,
        };
        let mut builder = builder;
        builder.options_mut().timeout = Duration::from_secs(5);
        builder.options_mut().attempts = 2;
        let resolver = builder.build().map_err(|err| DnsDiscoveryError::Resolver(err.to_string()))?;
        Ok(DnsDiscovery { resolver })
    }

    /// Every node record of the tree at `url` and of the trees it links to.
    ///
    /// # Errors
    /// [`DnsDiscoveryError`]: the first error stops the walk (a tree that lies is not half
    /// trusted).
    pub async fn resolve(&self, url: &str) -> Result<Vec<WakuEnr>, DnsDiscoveryError> {
        let mut trees = VecDeque::from([EnrTreeUrl::parse(url)?]);
        let mut seen_trees = HashSet::new();
        let mut records = 0usize;
        let mut enrs: Vec<WakuEnr> = Vec::new();
        while let Some(tree) = trees.pop_front() {
            if !seen_trees.insert(tree.domain.clone()) {
                continue;
            }
            if seen_trees.len() > MAX_TREES {
                return Err(DnsDiscoveryError::TooLarge);
            }
            let root = self.root(&tree).await?;
            records += 1;
            // The ENR subtree, then the link subtree.
            for (start, links) in [(root.enr_root, false), (root.link_root, true)] {
                let mut queue = VecDeque::from([start]);
                let mut visited = HashSet::new();
                while let Some(hash) = queue.pop_front() {
                    if !visited.insert(hash.clone()) {
                        continue;
                    }
                    records += 1;
                    if records > MAX_RECORDS {
                        return Err(DnsDiscoveryError::TooLarge);
                    }
                    let name = format!("{hash}.{}", tree.domain);
                    let text = self.txt(&name).await?;
                    check_hash(&name, &hash, &text)?;
                    if let Some(children) = text.strip_prefix("enrtree-branch:") {
                        queue.extend(children.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
                    } else if !links && text.starts_with("enr:") {
                        let enr = WakuEnr::parse(&text).map_err(|source| DnsDiscoveryError::Enr { name, source })?;
                        if !enrs.iter().any(|known| known.peer_id == enr.peer_id) {
                            enrs.push(enr);
                        }
                    } else if links && text.starts_with("enrtree://") {
                        trees.push_back(EnrTreeUrl::parse(&text)?);
                    } else {
                        return Err(DnsDiscoveryError::BadRecord { name, text: text.chars().take(80).collect() });
                    }
                }
            }
        }
        tracing::debug!(%url, nodes = enrs.len(), records, "ENR tree resolved");
        Ok(enrs)
    }

    async fn root(&self, tree: &EnrTreeUrl) -> Result<Root, DnsDiscoveryError> {
        let text = self.txt(&tree.domain).await?;
        let root = Root::parse(&tree.domain, &text)?;
        let digest = sha3::Keccak256::digest(root.signed_text.as_bytes());
        let signature = Signature::from_slice(&root.signature[..64])
            .map_err(|_| DnsDiscoveryError::BadSignature { domain: tree.domain.clone() })?;
        tree.key
            .verify_prehash(&digest, &signature)
            .map_err(|_| DnsDiscoveryError::BadSignature { domain: tree.domain.clone() })?;
        Ok(root)
    }

    /// The TXT text at `name` (the strings of the first record, concatenated).
    async fn txt(&self, name: &str) -> Result<String, DnsDiscoveryError> {
        let fqdn = format!("{name}.");
        let lookup = self
            .resolver
            .txt_lookup(fqdn.as_str())
            .await
            .map_err(|err| DnsDiscoveryError::Lookup { name: name.to_owned(), reason: err.to_string() })?;
        for record in lookup.answers() {
            if let RData::TXT(txt) = &record.data {
                let mut text = String::new();
                for part in txt.txt_data.iter() {
                    text.push_str(&String::from_utf8_lossy(part));
                }
                return Ok(text);
            }
        }
        Err(DnsDiscoveryError::Lookup { name: name.to_owned(), reason: "no TXT record".to_owned() })
    }
}

/// `enrtree-root:v1 e=<hash> l=<hash> seq=<n> sig=<base64url 65 bytes>`.
#[derive(Debug)]
struct Root {
    enr_root: String,
    link_root: String,
    signed_text: String,
    signature: Vec<u8>,
}

impl Root {
    fn parse(domain: &str, text: &str) -> Result<Root, DnsDiscoveryError> {
        let bad = |reason: &str| DnsDiscoveryError::BadRoot { domain: domain.to_owned(), reason: reason.to_owned() };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [prefix, e, l, seq, sig] = fields.as_slice() else { return Err(bad("not five fields")) };
        if *prefix != "enrtree-root:v1" {
            return Err(bad("not enrtree-root:v1"));
        }
        let enr_root = e.strip_prefix("e=").ok_or_else(|| bad("no e="))?;
        let link_root = l.strip_prefix("l=").ok_or_else(|| bad("no l="))?;
        let seq: u64 = seq.strip_prefix("seq=").and_then(|s| s.parse().ok()).ok_or_else(|| bad("no seq="))?;
        let signature = sig
            .strip_prefix("sig=")
            .and_then(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
            .ok_or_else(|| bad("sig= is not base64url"))?;
        if signature.len() != 65 {
            return Err(bad("signature is not 65 bytes"));
        }
        Ok(Root {
            enr_root: enr_root.to_owned(),
            link_root: link_root.to_owned(),
            signed_text: format!("enrtree-root:v1 e={enr_root} l={link_root} seq={seq}"),
            signature,
        })
    }
}

/// A record's name is the base32 of the first 16 bytes of the Keccak-256 of its text.
fn check_hash(name: &str, hash: &str, text: &str) -> Result<(), DnsDiscoveryError> {
    let digest = sha3::Keccak256::digest(text.as_bytes());
    let expected = data_encoding::BASE32_NOPAD.encode(&digest[..16]);
    if expected.eq_ignore_ascii_case(hash) {
        Ok(())
    } else {
        Err(DnsDiscoveryError::HashMismatch { name: name.to_owned() })
    }
}
