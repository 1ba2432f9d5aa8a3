//! Piece-exact fetching over the BitTorrent peer wire protocol (BEP 3).
//!
//! librqbit 9.1 can only select whole files, and its file streams read ahead up to 32 MiB, so it
//! cannot fetch "just these pieces" the way anacrolix's `DownloadPieces` does (status-go-archives.md
//! §8.2). This module does exactly that: it connects to the given peers, requests the blocks of the
//! wanted pieces only, verifies each piece's SHA-1 against the info dict, and writes it into the
//! torrent's files. Pieces already on disk with the right hash are not fetched again.
//!
//! The receive path only copies: messages are parsed in place out of a large read buffer (one
//! `read` per [`READ_BUFFER`] of data, not three per message, and no task or allocation per
//! message), requests go out [`REQUEST_BATCH`] at a time, and a complete piece is handed to a blocking
//! task that hashes and writes it (through file handles opened once) while the session goes on
//! receiving the next pieces ([`MAX_VERIFYING`] per peer).

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::meta::{InfoHash, TorrentMeta, piece_sha1};

/// Block size of requests: 16 KiB, what every client serves.
const BLOCK: u32 = 16 * 1024;
/// Requests kept in flight per peer: 32, the request queue of status-go's anacrolix (v1.41
/// `localClientReqq`), which silently drops requests beyond it (we do not negotiate BEP 6
/// rejects or read BEP 10 `reqq`).
const PIPELINE: usize = 32;
/// While unchoked with requests in flight, blocks not received after this long are asked again
/// (a peer may drop requests without a word); the peer fails only after the stall timeout.
const REREQUEST_AFTER: Duration = Duration::from_secs(3);
/// Pieces one peer works on at once.
const MAX_ACTIVE_PIECES: usize = 8;
/// A peer that sends this many pieces failing verification is dropped for good.
const MAX_BAD_PIECES: u32 = 3;
/// Read buffer of a peer connection: a read takes everything the socket has, up to this.
const READ_BUFFER: usize = 256 * 1024;
/// Requests are sent when this many fit in the pipeline, in one write.
const REQUEST_BATCH: usize = 8;
/// Complete pieces of one peer being hashed and written at once, off the receive path; the
/// session waits for one to finish before it accepts more.
const MAX_VERIFYING: usize = 4;

/// How often the fetcher asks its [`PeerSource`] for new peers.
const DISCOVERY_POLL: Duration = Duration::from_millis(250);

/// Gives the addresses of the peers known for a torrent right now.
pub(crate) type PeerSource = Arc<dyn Fn() -> Vec<SocketAddr> + Send + Sync>;

/// The files of one torrent in one folder, addressed by piece.
#[derive(Debug)]
pub(crate) struct PieceStore {
    folder: PathBuf,
    meta: Arc<TorrentMeta>,
    /// Files opened for writing, by file index: each is opened once per store, not per piece.
    writers: Mutex<Vec<Option<Arc<std::fs::File>>>>,
}

impl PieceStore {
    pub(crate) fn new(folder: PathBuf, meta: Arc<TorrentMeta>) -> Self {
        Self { folder, meta, writers: Mutex::default() }
    }

    /// File `idx`, opened for writing on first use.
    fn writer(&self, idx: usize) -> Result<Arc<std::fs::File>, Error> {
        let mut writers = self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if writers.len() <= idx {
            writers.resize(idx + 1, None);
        }
        if let Some(f) = &writers[idx] {
            return Ok(Arc::clone(f));
        }
        let path = self.file_path(idx);
        let f = Arc::new(std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| Error::io(&path, e))?);
        writers[idx] = Some(Arc::clone(&f));
        Ok(f)
    }

    fn file_path(&self, idx: usize) -> PathBuf {
        let mut p = self.folder.clone();
        for c in &self.meta.files()[idx].path {
            p.push(c);
        }
        p
    }

    /// Creates missing files (empty) and cuts files longer than their torrent length; a file is
    /// never grown here: it grows only by the verified pieces [`PieceStore::write_piece`] writes,
    /// so a torrent that declares more than its peers send allocates nothing. Blocking.
    pub(crate) fn prepare(&self) -> Result<(), Error> {
        for (idx, file) in self.meta.files().iter().enumerate() {
            let path = self.file_path(idx);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
            if len > file.length {
                f.set_len(file.length).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// `(file index, offset in file, offset in piece, length)` of each file slice of `piece`.
    fn slices(&self, piece: u32) -> Vec<(usize, u64, usize, usize)> {
        let start = u64::from(piece) * u64::from(self.meta.piece_length());
        let end = start + self.meta.piece_len(piece);
        let mut out = Vec::new();
        let mut file_start = 0u64;
        for (idx, file) in self.meta.files().iter().enumerate() {
            let file_end = file_start + file.length;
            let lo = start.max(file_start);
            let hi = end.min(file_end);
            if lo < hi {
                out.push((idx, lo - file_start, (lo - start) as usize, (hi - lo) as usize));
            }
            file_start = file_end;
        }
        out
    }

    /// Reads `piece` from disk; `None` if a file is missing or too short. Blocking.
    pub(crate) fn read_piece(&self, piece: u32) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; usize::try_from(self.meta.piece_len(piece)).ok()?];
        for (idx, file_off, piece_off, len) in self.slices(piece) {
            let f = std::fs::File::open(self.file_path(idx)).ok()?;
            f.read_exact_at(&mut buf[piece_off..piece_off + len], file_off).ok()?;
        }
        Some(buf)
    }

    /// The length on disk of each file (0 when missing). Blocking.
    fn on_disk_lengths(&self) -> Vec<u64> {
        (0..self.meta.files().len()).map(|idx| std::fs::metadata(self.file_path(idx)).map_or(0, |m| m.len())).collect()
    }

    /// Whether the files in `lengths` are long enough to hold `piece` (else it is missing,
    /// without reading: a fresh download reads nothing).
    fn fits(&self, piece: u32, lengths: &[u64]) -> bool {
        self.slices(piece)
            .iter()
            .all(|(idx, file_off, _, len)| lengths.get(*idx).is_some_and(|l| file_off + *len as u64 <= *l))
    }

    /// Whether `piece` is on disk with the right SHA-1. Blocking.
    pub(crate) fn has_piece(&self, piece: u32) -> bool {
        let expected = self.meta.pieces().get(piece as usize);
        self.read_piece(piece).is_some_and(|buf| Some(&piece_sha1(&buf)) == expected)
    }

    /// Writes a verified piece. Blocking.
    pub(crate) fn write_piece(&self, piece: u32, data: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::FileExt;
        for (idx, file_off, piece_off, len) in self.slices(piece) {
            let f = self.writer(idx)?;
            f.write_all_at(&data[piece_off..piece_off + len], file_off)
                .map_err(|e| Error::io(&self.file_path(idx), e))?;
        }
        Ok(())
    }
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Pieces that were already on disk and verified, so not fetched.
    pub pieces_already_present: usize,
    /// Pieces fetched and verified now.
    pub pieces_fetched: usize,
    /// Payload bytes received from peers (all piece blocks, including any discarded).
    pub bytes_received: u64,
    /// Distinct peers that delivered at least one verified piece.
    pub peers_used: usize,
}

/// Settings of one fetch.
#[derive(Clone)]
pub(crate) struct FetchJob {
    pub(crate) info_hash: InfoHash,
    pub(crate) peer_id: [u8; 20],
    pub(crate) store: Arc<PieceStore>,
    pub(crate) peers: Vec<SocketAddr>,
    /// Polled for more peers while pieces are missing (DHT, trackers, PEX, incoming, through
    /// librqbit); every new address gets a peer task.
    pub(crate) discovered: Option<PeerSource>,
    /// Peers that sent bad pieces, for the whole torrent: never dialled, and added to here.
    pub(crate) banned: Arc<Mutex<HashSet<SocketAddr>>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) cancel: CancellationToken,
    /// Called with `(bytes verified so far, bytes wanted, connected peers)`.
    pub(crate) progress: Arc<dyn Fn(u64, u64, usize) + Send + Sync>,
}

impl std::fmt::Debug for FetchJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchJob").field("info_hash", &self.info_hash).field("peers", &self.peers).finish()
    }
}

struct Shared {
    queue: Mutex<VecDeque<u32>>,
    remaining: AtomicUsize,
    bytes_received: AtomicU64,
    bytes_done: AtomicU64,
    bytes_wanted: u64,
    connected: AtomicUsize,
    /// Peers that delivered a verified piece.
    delivered_by: Mutex<HashSet<SocketAddr>>,
    all_done: CancellationToken,
    work_returned: tokio::sync::Notify,
}

impl Shared {
    fn take_piece(&self, peer_has: &[bool]) -> Option<u32> {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let pos = q.iter().position(|p| peer_has.get(*p as usize).copied().unwrap_or(false))?;
        q.remove(pos)
    }

    fn give_back(&self, pieces: impl IntoIterator<Item = u32>) {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = q.len();
        q.extend(pieces);
        if q.len() > before {
            self.work_returned.notify_waiters();
        }
    }
}

/// Fetches `pieces` (deduplicated) into the store, skipping those already present.
pub(crate) async fn fetch_pieces(job: FetchJob, pieces: Vec<u32>) -> Result<FetchStats, Error> {
    let meta = Arc::clone(&job.store.meta);
    let wanted: Vec<u32> = {
        let mut seen = HashSet::new();
        pieces.into_iter().filter(|p| (*p as usize) < meta.pieces().len() && seen.insert(*p)).collect()
    };
    let store = Arc::clone(&job.store);
    let (missing, present) = tokio::task::spawn_blocking(move || {
        store.prepare()?;
        let lengths = store.on_disk_lengths();
        let (present, missing): (Vec<u32>, Vec<u32>) =
            wanted.iter().partition(|p| store.fits(**p, &lengths) && store.has_piece(**p));
        Ok::<_, Error>((missing, present))
    })
    .await
    .map_err(|_| Error::Cancelled)??;

    let bytes_wanted: u64 = missing.iter().map(|p| meta.piece_len(*p)).sum();
    let mut stats = FetchStats { pieces_already_present: present.len(), ..FetchStats::default() };
    tracing::debug!(info_hash = %job.info_hash, present = present.len(), missing = missing.len(), "fetching pieces");
    if missing.is_empty() {
        return Ok(stats);
    }
    if job.peers.is_empty() && job.discovered.is_none() {
        return Err(Error::NoPeers);
    }
    let shared = Arc::new(Shared {
        remaining: AtomicUsize::new(missing.len()),
        queue: Mutex::new(missing.iter().copied().collect()),
        bytes_received: AtomicU64::new(0),
        bytes_done: AtomicU64::new(0),
        bytes_wanted,
        connected: AtomicUsize::new(0),
        delivered_by: Mutex::default(),
        all_done: job.cancel.child_token(),
        work_returned: tokio::sync::Notify::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut dialled = HashSet::new();
    let spawn_new = |tasks: &mut tokio::task::JoinSet<_>, dialled: &mut HashSet<SocketAddr>, peers: Vec<SocketAddr>| {
        let banned = job.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for peer in peers {
            if !banned.contains(&peer) && dialled.insert(peer) {
                tracing::debug!(info_hash = %job.info_hash, %peer, "range fetcher dials a peer");
                tasks.spawn(peer_task(job.clone(), Arc::clone(&shared), peer));
            }
        }
    };
    spawn_new(&mut tasks, &mut dialled, job.peers.clone());
    let mut last_error = None;
    let mut poll = tokio::time::interval(DISCOVERY_POLL);
    // With a peer source, the fetch fails only after `stall_timeout` without any peer task.
    let mut idle_since = tokio::time::Instant::now();
    loop {
        let no_more_peers = tasks.is_empty() && job.discovered.is_none();
        if shared.remaining.load(Ordering::SeqCst) == 0 || job.cancel.is_cancelled() || no_more_peers {
            break;
        }
        tokio::select! {
            res = tasks.join_next(), if !tasks.is_empty() => {
                if let Some(Ok(Err(e))) = res {
                    last_error = Some(e);
                }
                idle_since = tokio::time::Instant::now();
            }
            _ = poll.tick(), if job.discovered.is_some() => {
                if let Some(source) = &job.discovered {
                    spawn_new(&mut tasks, &mut dialled, source());
                }
                if tasks.is_empty() && idle_since.elapsed() > job.stall_timeout {
                    break;
                }
            }
            () = job.cancel.cancelled() => break,
        }
    }
    shared.all_done.cancel();
    tasks.shutdown().await;
    stats.bytes_received = shared.bytes_received.load(Ordering::SeqCst);
    stats.peers_used = shared.delivered_by.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
    let remaining = shared.remaining.load(Ordering::SeqCst);
    stats.pieces_fetched = missing.len() - remaining;
    if job.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    if remaining > 0 {
        tracing::warn!(info_hash = %job.info_hash, remaining, error = ?last_error, "pieces left unfetched");
        return Err(last_error.unwrap_or(Error::Incomplete { missing: remaining }));
    }
    Ok(stats)
}

/// Connects to one peer, retrying with exponential backoff, until all pieces are done.
async fn peer_task(job: FetchJob, shared: Arc<Shared>, peer: SocketAddr) -> Result<(), Error> {
    let mut attempt = 0u32;
    let mut backoff = job.backoff;
    let mut bad_pieces = 0;
    loop {
        if shared.remaining.load(Ordering::SeqCst) == 0 || shared.all_done.is_cancelled() {
            return Ok(());
        }
        let before = shared.bytes_done.load(Ordering::SeqCst);
        let mut session = PeerSession::new(&job, &shared, peer);
        let result = tokio::select! {
            r = session.run() => r,
            () = shared.all_done.cancelled() => Ok(()),
        };
        let held = session.release();
        shared.give_back(held);
        bad_pieces += session.bad_pieces;
        match result {
            Ok(()) => return Ok(()),
            Err(e @ Error::Peer { .. }) if bad_pieces >= MAX_BAD_PIECES => {
                tracing::warn!(%peer, error = %e, "dropping peer that sent bad pieces, for this torrent");
                job.banned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(peer);
                return Err(e);
            }
            Err(e) => {
                if shared.bytes_done.load(Ordering::SeqCst) > before {
                    attempt = 0;
                    backoff = job.backoff;
                }
                attempt += 1;
                if attempt >= job.max_attempts {
                    tracing::debug!(%peer, error = %e, "giving up on peer");
                    return Err(e);
                }
                tracing::debug!(%peer, error = %e, attempt, ?backoff, "peer failed, retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.all_done.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

struct ActivePiece {
    index: u32,
    buf: Vec<u8>,
    requested: Vec<bool>,
    received: Vec<bool>,
}

/// A complete piece, hashed and (if good) written: `(piece, bytes, hash matched)`.
type Verified = (u32, u64, Result<bool, Error>);

struct PeerSession<'a> {
    job: &'a FetchJob,
    shared: &'a Shared,
    peer: SocketAddr,
    active: Vec<ActivePiece>,
    /// Complete pieces being hashed and written ([`MAX_VERIFYING`] at most).
    verifying: tokio::task::JoinSet<Verified>,
    /// Their indices, given back if the session ends before their result is in.
    verifying_pieces: Vec<u32>,
    bad_pieces: u32,
    connected: bool,
}

impl Drop for PeerSession<'_> {
    fn drop(&mut self) {
        if self.connected {
            self.shared.connected.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<'a> PeerSession<'a> {
    fn new(job: &'a FetchJob, shared: &'a Shared, peer: SocketAddr) -> Self {
        Self {
            job,
            shared,
            peer,
            active: Vec::new(),
            verifying: tokio::task::JoinSet::new(),
            verifying_pieces: Vec::new(),
            bad_pieces: 0,
            connected: false,
        }
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Peer { peer: self.peer, reason: reason.into() }
    }

    /// Pieces this session holds but did not finish (received pieces whose verification is still
    /// running are given back too: a late result is dropped, and the piece fetched again).
    fn release(&mut self) -> Vec<u32> {
        self.verifying.abort_all();
        self.active.drain(..).map(|a| a.index).chain(self.verifying_pieces.drain(..)).collect()
    }

    async fn run(&mut self) -> Result<(), Error> {
        let stream = tokio::time::timeout(self.job.connect_timeout, TcpStream::connect(self.peer))
            .await
            .map_err(|_| self.err("connect timed out"))?
            .map_err(|e| self.err(format!("connect: {e}")))?;
        stream.set_nodelay(true).ok();
        let (mut rd, wr) = stream.into_split();
        let mut wr = BufWriter::new(wr);
        // Reads exactly the 68 handshake bytes: what follows stays in the socket for `inbox`.
        self.handshake(&mut rd, &mut wr).await?;
        let n_pieces = self.job.store.meta.pieces().len();
        let max_msg = (n_pieces / 8 + 16).max(BLOCK as usize + 64);
        let mut inbox = Inbox::new(READ_BUFFER.max(2 * (max_msg + 4)));
        self.connected = true;
        self.shared.connected.fetch_add(1, Ordering::SeqCst);
        // interested
        wr.write_all(&[0, 0, 0, 1, 2]).await.map_err(|e| self.err(format!("write: {e}")))?;
        wr.flush().await.map_err(|e| self.err(format!("write: {e}")))?;

        let mut state = WireState { peer_has: vec![false; n_pieces], choked: true };
        let mut last_data = tokio::time::Instant::now();
        loop {
            // Every complete message in the buffer, parsed in place (no copy, no allocation).
            while let Some((id, range)) = inbox.next_message(max_msg).map_err(|e| self.err(e))? {
                self.on_message(id, &inbox.buf[range], &mut state).await?;
            }
            if self.shared.remaining.load(Ordering::SeqCst) == 0 {
                return Ok(());
            }
            if !state.choked {
                self.fill_pipeline(&mut wr, &state.peer_has).await?;
            }
            inbox.compact();
            let read = tokio::select! {
                // Cancel-safe: a read that loses the race has read nothing.
                r = tokio::time::timeout(REREQUEST_AFTER.min(self.job.stall_timeout), rd.read(inbox.spare())) => r,
                Some(done) = self.verifying.join_next(), if !self.verifying.is_empty() => {
                    self.on_verified(done)?;
                    continue;
                }
                () = self.shared.work_returned.notified(), if self.active.is_empty() && !state.choked => continue,
            };
            let Ok(read) = read else {
                if last_data.elapsed() >= self.job.stall_timeout {
                    return Err(self.err("stalled: no message within the stall timeout"));
                }
                if !state.choked {
                    tracing::debug!(peer = %self.peer, "no block for a while: asking again for the blocks in flight");
                    for a in &mut self.active {
                        a.requested.clone_from(&a.received);
                    }
                }
                continue;
            };
            match read.map_err(|e| self.err(format!("read: {e}")))? {
                0 => return Err(self.err("connection closed")),
                n => inbox.filled(n),
            }
            last_data = tokio::time::Instant::now();
        }
    }

    async fn on_message(&mut self, id: u8, payload: &[u8], state: &mut WireState) -> Result<(), Error> {
        match id {
            0 => {
                state.choked = true;
                for a in &mut self.active {
                    for (req, rec) in a.requested.iter_mut().zip(&a.received) {
                        *req = *rec;
                    }
                }
            }
            1 => state.choked = false,
            4 => {
                let idx = be_u32(payload, 0).ok_or_else(|| self.err("short have"))? as usize;
                if let Some(bit) = state.peer_has.get_mut(idx) {
                    *bit = true;
                }
            }
            5 => {
                for (i, bit) in state.peer_has.iter_mut().enumerate() {
                    *bit = payload.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
                }
            }
            7 => self.on_block(payload).await?,
            _ => {}
        }
        Ok(())
    }

    async fn handshake(&self, rd: &mut OwnedReadHalf, wr: &mut BufWriter<OwnedWriteHalf>) -> Result<(), Error> {
        let mut hs = Vec::with_capacity(68);
        hs.push(19);
        hs.extend_from_slice(b"BitTorrent protocol");
        hs.extend_from_slice(&[0; 8]);
        hs.extend_from_slice(&self.job.info_hash.0);
        hs.extend_from_slice(&self.job.peer_id);
        wr.write_all(&hs).await.map_err(|e| self.err(format!("write handshake: {e}")))?;
        wr.flush().await.map_err(|e| self.err(format!("write handshake: {e}")))?;
        let mut theirs = [0u8; 68];
        tokio::time::timeout(self.job.stall_timeout, rd.read_exact(&mut theirs))
            .await
            .map_err(|_| self.err("handshake timed out"))?
            .map_err(|e| self.err(format!("read handshake: {e}")))?;
        if theirs[0] != 19 || &theirs[1..20] != b"BitTorrent protocol" {
            return Err(self.err("not a BitTorrent handshake"));
        }
        if theirs[28..48] != self.job.info_hash.0 {
            return Err(self.err("peer answered with another info hash"));
        }
        Ok(())
    }

    async fn fill_pipeline(&mut self, wr: &mut BufWriter<OwnedWriteHalf>, peer_has: &[bool]) -> Result<(), Error> {
        let mut outstanding: usize =
            self.active.iter().map(|a| a.requested.iter().zip(&a.received).filter(|(q, r)| **q && !**r).count()).sum();
        if outstanding + REQUEST_BATCH > PIPELINE {
            // Requests go out in batches (one write for several), not one per block received.
            return Ok(());
        }
        let mut sent = false;
        while outstanding < PIPELINE {
            let next = self.active.iter_mut().find_map(|a| {
                let block = a.requested.iter().position(|q| !q)?;
                a.requested[block] = true;
                Some((a.index, block, a.buf.len()))
            });
            let (index, block, piece_len) = match next {
                Some(n) => n,
                None if self.active.len() < MAX_ACTIVE_PIECES => {
                    let Some(index) = self.shared.take_piece(peer_has) else { break };
                    let len = usize::try_from(self.job.store.meta.piece_len(index)).unwrap_or(0);
                    let n_blocks = len.div_ceil(BLOCK as usize);
                    self.active.push(ActivePiece {
                        index,
                        buf: vec![0; len],
                        requested: vec![false; n_blocks],
                        received: vec![false; n_blocks],
                    });
                    continue;
                }
                None => break,
            };
            let begin = block * BLOCK as usize;
            let length = (piece_len - begin).min(BLOCK as usize);
            let mut msg = [0u8; 17];
            msg[..4].copy_from_slice(&13u32.to_be_bytes());
            msg[4] = 6;
            msg[5..9].copy_from_slice(&index.to_be_bytes());
            msg[9..13].copy_from_slice(&(begin as u32).to_be_bytes());
            msg[13..17].copy_from_slice(&(length as u32).to_be_bytes());
            wr.write_all(&msg).await.map_err(|e| self.err(format!("write: {e}")))?;
            outstanding += 1;
            sent = true;
        }
        if sent {
            wr.flush().await.map_err(|e| self.err(format!("write: {e}")))?;
        }
        Ok(())
    }

    async fn on_block(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (Some(index), Some(begin)) = (be_u32(payload, 0), be_u32(payload, 4)) else {
            return Err(self.err("short piece message"));
        };
        let data = &payload[8..];
        self.shared.bytes_received.fetch_add(data.len() as u64, Ordering::SeqCst);
        let Some(pos) = self.active.iter().position(|a| a.index == index) else { return Ok(()) };
        let a = &mut self.active[pos];
        let begin = begin as usize;
        let block = begin / BLOCK as usize;
        let expected_len = a.buf.len().saturating_sub(begin).min(BLOCK as usize);
        if !begin.is_multiple_of(BLOCK as usize) || block >= a.received.len() || data.len() != expected_len {
            return Err(self.err("piece block with unexpected offset or length"));
        }
        if a.received[block] {
            return Ok(());
        }
        a.buf[begin..begin + data.len()].copy_from_slice(data);
        a.received[block] = true;
        if !a.received.iter().all(|r| *r) {
            return Ok(());
        }
        let done = self.active.swap_remove(pos);
        while self.verifying.len() >= MAX_VERIFYING {
            match self.verifying.join_next().await {
                Some(result) => self.on_verified(result)?,
                None => break,
            }
        }
        let expected = self.job.store.meta.pieces().get(index as usize).copied();
        let store = Arc::clone(&self.job.store);
        let buf = done.buf;
        self.verifying_pieces.push(index);
        self.verifying.spawn_blocking(move || {
            let len = buf.len() as u64;
            if Some(piece_sha1(&buf)) != expected {
                return (index, len, Ok(false));
            }
            (index, len, store.write_piece(index, &buf).map(|()| true))
        });
        Ok(())
    }

    /// Takes the result of a piece's verification: counts a good piece, gives a bad one back.
    fn on_verified(&mut self, result: Result<Verified, tokio::task::JoinError>) -> Result<(), Error> {
        let (index, len, ok) = result.map_err(|_| Error::Cancelled)?;
        self.verifying_pieces.retain(|p| *p != index);
        if !ok? {
            self.bad_pieces += 1;
            self.shared.give_back([index]);
            tracing::warn!(peer = %self.peer, piece = index, "piece failed SHA-1 verification");
            return if self.bad_pieces >= MAX_BAD_PIECES {
                Err(self.err("too many pieces failed verification"))
            } else {
                Ok(())
            };
        }
        let done_bytes = self.shared.bytes_done.fetch_add(len, Ordering::SeqCst) + len;
        self.shared.remaining.fetch_sub(1, Ordering::SeqCst);
        self.shared.delivered_by.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(self.peer);
        (self.job.progress)(done_bytes, self.shared.bytes_wanted, self.shared.connected.load(Ordering::SeqCst));
        if self.shared.remaining.load(Ordering::SeqCst) == 0 {
            self.shared.all_done.cancel();
        }
        Ok(())
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// What the wire messages of a session have told so far.
struct WireState {
    /// The peer's bitfield and `have`s.
    peer_has: Vec<bool>,
    choked: bool,
}

/// The receive buffer of a connection: bytes read from the socket, parsed in place.
struct Inbox {
    buf: Vec<u8>,
    /// Start of the bytes not yet parsed.
    start: usize,
    /// End of the bytes read.
    end: usize,
}

impl Inbox {
    fn new(capacity: usize) -> Self {
        Self { buf: vec![0; capacity], start: 0, end: 0 }
    }

    /// The next complete message: its id and the range of its payload in `buf`; `None` when the
    /// buffer holds no complete message. Keep-alives are skipped.
    fn next_message(&mut self, max_len: usize) -> Result<Option<(u8, std::ops::Range<usize>)>, String> {
        loop {
            let Some(len) = be_u32(&self.buf[self.start..self.end], 0) else { return Ok(None) };
            let len = len as usize;
            if len == 0 {
                self.start += 4;
                continue;
            }
            if len > max_len {
                return Err(format!("message of {len} bytes exceeds limit {max_len}"));
            }
            if self.end - self.start < 4 + len {
                return Ok(None);
            }
            let id = self.buf[self.start + 4];
            let payload = self.start + 5..self.start + 4 + len;
            self.start += 4 + len;
            return Ok(Some((id, payload)));
        }
    }

    /// Moves the unparsed bytes (at most one partial message) to the front.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Free space to read into.
    fn spare(&mut self) -> &mut [u8] {
        &mut self.buf[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::Inbox;

    /// Issue 22 item 2: the receive buffer yields every message whole, in order, however the
    /// stream is cut into reads (a message split over two reads, several in one read,
    /// keep-alives), and refuses a message longer than the limit.
    #[test]
    fn issue22_item2_inbox_parses_messages_in_place_across_reads() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&[0, 0, 0, 0]); // keep-alive
        stream.extend_from_slice(&[0, 0, 0, 5, 4, 0, 0, 0, 9]); // have 9
        let mut piece = vec![0, 0, 0, 9 + 100, 7, 0, 0, 0, 1, 0, 0, 0, 0];
        piece.extend((0..100u8).map(|i| i ^ 0x5a));
        stream.extend_from_slice(&piece);
        stream.extend_from_slice(&[0, 0, 0, 1, 1]); // unchoke
        for cut in [1usize, 3, 7, 50, stream.len()] {
            let mut inbox = Inbox::new(256);
            let mut got = Vec::new();
            for chunk in stream.chunks(cut) {
                inbox.compact();
                inbox.spare()[..chunk.len()].copy_from_slice(chunk);
                inbox.filled(chunk.len());
                while let Some((id, range)) = inbox.next_message(200).expect("within limit") {
                    got.push((id, inbox.buf[range].to_vec()));
                }
            }
            assert_eq!(got.len(), 3, "cut {cut}: {got:?}");
            assert_eq!(got[0], (4, vec![0, 0, 0, 9]));
            assert_eq!(got[1], (7, piece[5..].to_vec()));
            assert_eq!(got[2], (1, vec![]));
        }
        let mut inbox = Inbox::new(64);
        inbox.spare()[..4].copy_from_slice(&[0, 0, 1, 0]);
        inbox.filled(4);
        assert!(inbox.next_message(200).is_err(), "a 256-byte message is over the 200-byte limit");
    }
}
