//! A bounded in-memory [`StoreBackend`]: what `chs waku listen --serve-store` serves, and what tests
//! serve from.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::server::{BackendError, BackendQuery, StoreBackend};
use super::{MessageHash, StoredMessage};

type Key = (i64, MessageHash);

#[derive(Debug, Default)]
struct Inner {
    ordered: BTreeMap<Key, StoredMessage>,
    timestamps: HashMap<MessageHash, i64>,
}

/// Messages kept in memory by `(timestamp, hash)`, each once; the oldest go when more than
/// `capacity` are held.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl MemoryStore {
    /// An empty store keeping at most `capacity` messages (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), capacity: capacity.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps stay consistent between statements, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `message`; `false` if a message of the same hash is already held.
    pub fn insert(&self, message: StoredMessage) -> bool {
        let mut inner = self.lock();
        if inner.timestamps.contains_key(&message.hash) {
            return false;
        }
        inner.timestamps.insert(message.hash, message.timestamp());
        inner.ordered.insert((message.timestamp(), message.hash), message);
        while inner.ordered.len() > self.capacity {
            if let Some(((_, hash), _)) = inner.ordered.pop_first() {
                inner.timestamps.remove(&hash);
            }
        }
        true
    }

    /// How many messages are held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().ordered.len()
    }

    /// Whether no message is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl StoreBackend for MemoryStore {
    fn query(&self, query: &BackendQuery) -> Result<Vec<StoredMessage>, BackendError> {
        let inner = self.lock();
        let cursor = match query.cursor {
            None => None,
            Some(hash) => Some((*inner.timestamps.get(&hash).ok_or(BackendError::UnknownCursor)?, hash)),
        };
        let wanted = |m: &&StoredMessage| query.criteria.matches(&m.pubsub_topic, &m.message);
        let page = if query.forward {
            let from = cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let range = inner.ordered.range((from, Bound::Unbounded)).map(|(_, m)| m);
            range.filter(wanted).take(query.limit).cloned().collect()
        } else {
            let to = cursor.map_or(Bound::Unbounded, Bound::Excluded);
            let range = inner.ordered.range((Bound::Unbounded, to)).rev().map(|(_, m)| m);
            range.filter(wanted).take(query.limit).cloned().collect()
        };
        Ok(page)
    }

    fn lookup(&self, hashes: &[MessageHash]) -> Result<Vec<StoredMessage>, BackendError> {
        let inner = self.lock();
        let found = hashes
            .iter()
            .filter_map(|hash| inner.timestamps.get(hash).and_then(|ts| inner.ordered.get(&(*ts, *hash))))
            .cloned()
            .collect();
        Ok(found)
    }
}
