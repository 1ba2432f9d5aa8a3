//! [`AsyncStore`]: the store for async code. Every SQLite call runs on tokio's blocking pool, so the
//! executor threads never wait on disk.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::{ReplaceStats, ScanError, Store, StoreError, StoredMessage, Topic};

/// A cloneable handle to a [`Store`] usable from async code.
#[derive(Debug, Clone)]
pub struct AsyncStore {
    inner: Arc<Mutex<Store>>,
}

impl AsyncStore {
    /// Opens the store at `path` on the blocking pool.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub async fn open(path: &Path) -> Result<AsyncStore, StoreError> {
        let path = path.to_owned();
        let store = tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))??;
        Ok(AsyncStore::from_store(store))
    }

    /// Wraps an already open store.
    #[must_use]
    pub fn from_store(store: Store) -> AsyncStore {
        AsyncStore { inner: Arc::new(Mutex::new(store)) }
    }

    /// Runs `f` with exclusive access to the store on the blocking pool.
    ///
    /// # Errors
    /// What `f` returns, or [`StoreError::Worker`] if the task panicked.
    pub async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().map_err(|_| StoreError::Worker("store mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    /// [`Store::insert_batch`] off the executor.
    ///
    /// # Errors
    /// As [`Store::insert_batch`].
    pub async fn insert_batch(&self, msgs: Vec<StoredMessage>) -> Result<usize, StoreError> {
        self.with(move |s| s.insert_batch(&msgs)).await
    }

    /// [`Store::replace_range`] off the executor.
    ///
    /// # Errors
    /// As [`Store::replace_range`].
    pub async fn replace_range(
        &self,
        pubsub_topic: String,
        topics: Vec<Topic>,
        from_secs: u64,
        to_secs: u64,
        msgs: Vec<StoredMessage>,
    ) -> Result<ReplaceStats, StoreError> {
        self.with(move |s| s.replace_range(&pubsub_topic, &topics, from_secs, to_secs, &msgs)).await
    }

    /// Streams a range as batches of at most `batch` messages over a bounded channel (capacity 2),
    /// so memory stays bounded by the batch size whatever the range holds. Dropping the receiver
    /// stops the scan.
    #[must_use]
    pub fn stream_range(
        &self,
        topics: Vec<Topic>,
        from_secs: u64,
        to_secs: u64,
        batch: usize,
    ) -> mpsc::Receiver<Result<Vec<StoredMessage>, StoreError>> {
        let (tx, rx) = mpsc::channel(2);
        let inner = Arc::clone(&self.inner);
        let batch = batch.max(1);
        tokio::task::spawn_blocking(move || {
            let Ok(guard) = inner.lock() else {
                let _ = tx.blocking_send(Err(StoreError::Worker("store mutex poisoned".into())));
                return;
            };
            let mut buf = Vec::with_capacity(batch);
            let res = guard.for_each_in_range(&topics, from_secs, to_secs, |m| {
                buf.push(m);
                if buf.len() >= batch {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(batch));
                    if tx.blocking_send(Ok(full)).is_err() {
                        return Ok::<_, std::convert::Infallible>(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            });
            match res {
                Ok(()) => {
                    if !buf.is_empty() {
                        let _ = tx.blocking_send(Ok(buf));
                    }
                }
                Err(ScanError::Store(e)) => {
                    let _ = tx.blocking_send(Err(e));
                }
                Err(ScanError::Callback(never)) => match never {},
            }
        });
        rx
    }
}
