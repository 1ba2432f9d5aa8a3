//! Magnet links (BEP 9) printed exactly as anacrolix/torrent does for status-go and parsed leniently.
//!
//! Printing (status-go-archives.md §6.1): `magnet:?xt=urn:btih:<40 lowercase hex>` followed by
//! `&` and Go's `url.Values.Encode()` of the other parameters: keys sorted (`dn` < `tr` < `x.pe`),
//! values escaped with `url.QueryEscape` (unreserved bytes kept, space as `+`, the rest `%XX`).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crate::error::Error;
use crate::meta::{InfoHash, TorrentMeta};

/// A parsed or constructed magnet link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info hash (`xt=urn:btih:`).
    pub info_hash: InfoHash,
    /// `dn`, the display name (status-go: the community id string).
    pub display_name: Option<String>,
    /// `tr` trackers, in order.
    pub trackers: Vec<String>,
    /// `x.pe` peer hints (BEP 9), in order.
    pub peers: Vec<SocketAddr>,
}

impl Magnet {
    /// The magnet link status-go publishes for `meta`: `dn` = name and the given trackers
    /// (flattened tiers, de-duplicated, in order), no peer hints.
    pub fn for_meta(meta: &TorrentMeta, trackers: &[String]) -> Self {
        let mut distinct: Vec<String> = Vec::new();
        for t in trackers {
            if !distinct.contains(t) {
                distinct.push(t.clone());
            }
        }
        Self {
            info_hash: meta.info_hash(),
            display_name: Some(meta.name().to_owned()),
            trackers: distinct,
            peers: Vec::new(),
        }
    }

    /// The same link with `peer` added as an `x.pe` hint.
    #[must_use]
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        if !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
        self
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash.to_hex())?;
        if let Some(dn) = &self.display_name {
            write!(f, "&dn={}", query_escape(dn))?;
        }
        for tr in &self.trackers {
            write!(f, "&tr={}", query_escape(tr))?;
        }
        for pe in &self.peers {
            write!(f, "&x.pe={}", query_escape(&pe.to_string()))?;
        }
        Ok(())
    }
}

impl FromStr for Magnet {
    type Err = Error;

    /// Accepts any parameter order; the first `xt=urn:btih:` (40 hex or 32 base32 characters) is
    /// the info hash, other `xt` values (e.g. `urn:btmh:`) are ignored, unknown keys are ignored,
    /// and `x.pe` values that are not `ip:port` are skipped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &'static str| Error::InvalidMagnet { uri: s.to_owned(), reason };
        let query = s.strip_prefix("magnet:?").ok_or_else(|| bad("does not start with magnet:?"))?;
        let mut info_hash = None;
        let mut display_name = None;
        let mut trackers = Vec::new();
        let mut peers = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = query_unescape(raw).ok_or_else(|| bad("bad percent-escape"))?;
            match key {
                "xt" => {
                    if info_hash.is_none()
                        && let Some(h) = value.strip_prefix("urn:btih:")
                    {
                        info_hash = Some(parse_btih(h).ok_or_else(|| bad("xt is not 40 hex or 32 base32 chars"))?);
                    }
                }
                "dn" => display_name = Some(value),
                "tr" => trackers.push(value),
                "x.pe" => {
                    if let Ok(addr) = value.parse::<SocketAddr>() {
                        peers.push(addr);
                    }
                }
                _ => {}
            }
        }
        let info_hash = info_hash.ok_or_else(|| bad("no xt=urn:btih: parameter"))?;
        Ok(Self { info_hash, display_name, trackers, peers })
    }
}

fn parse_btih(h: &str) -> Option<InfoHash> {
    match h.len() {
        40 => h.parse().ok(),
        32 => {
            let mut out = [0u8; 20];
            let mut acc: u64 = 0;
            let mut bits = 0;
            let mut idx = 0;
            for c in h.bytes() {
                let v = match c.to_ascii_uppercase() {
                    c @ b'A'..=b'Z' => c - b'A',
                    c @ b'2'..=b'7' => c - b'2' + 26,
                    _ => return None,
                };
                acc = (acc << 5) | u64::from(v);
                bits += 5;
                if bits >= 8 {
                    bits -= 8;
                    *out.get_mut(idx)? = (acc >> bits) as u8;
                    idx += 1;
                }
            }
            (idx == 20).then_some(InfoHash(out))
        }
        _ => None,
    }
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
