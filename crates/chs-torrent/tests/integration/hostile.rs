//! A real TCP peer that speaks the wire protocol but serves corrupted blocks: the piece fetcher
//! must reject its pieces by SHA-1 and still complete from an honest peer.

use std::net::SocketAddr;

use chs_torrent::{DownloadOptions, Error, InfoHash, Magnet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::util::{ARCHIVE_SIZE, CID, TEST_TIMEOUT, init_tracing, node, seeding_owner};

/// Accepts connections, claims every piece, and then either answers each request with 0xEE
/// bytes (`unchoke`) or keeps the peer choked forever (a stalled peer).
async fn spawn_liar(info_hash: InfoHash, n_pieces: usize, unchoke: bool) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_lies(stream, info_hash, n_pieces, unchoke));
        }
    });
    (addr, task)
}

async fn serve_lies(mut s: TcpStream, info_hash: InfoHash, n_pieces: usize, unchoke: bool) -> std::io::Result<()> {
    let mut hs = [0u8; 68];
    s.read_exact(&mut hs).await?;
    let mut reply = vec![19u8];
    reply.extend_from_slice(b"BitTorrent protocol");
    reply.extend_from_slice(&[0; 8]);
    reply.extend_from_slice(&info_hash.0);
    reply.extend_from_slice(b"-LIAR01-000000000000");
    let bitfield = vec![0xFFu8; n_pieces.div_ceil(8)];
    reply.extend_from_slice(&(bitfield.len() as u32 + 1).to_be_bytes());
    reply.push(5);
    reply.extend_from_slice(&bitfield);
    if unchoke {
        reply.extend_from_slice(&[0, 0, 0, 1, 1]);
    }
    s.write_all(&reply).await?;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await?;
        let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut msg).await?;
        if msg.first() == Some(&6) && msg.len() == 13 {
            let length = u32::from_be_bytes(msg[9..13].try_into().expect("4 bytes"));
            let mut piece = (9 + length).to_be_bytes().to_vec();
            piece.push(7);
            piece.extend_from_slice(&msg[1..9]);
            piece.extend(std::iter::repeat_n(0xEEu8, length as usize));
            s.write_all(&piece).await?;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_rejects_corrupt_pieces_and_uses_the_honest_peer() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (folder, meta, owner) = seeding_owner(tmp.path()).await;
        let honest = owner.local_peer_addr().expect("addr");
        let (liar, liar_task) = spawn_liar(meta.info_hash(), meta.pieces().len(), true).await;

        let member = node(&tmp.path().join("member-state")).await;
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(honest);
        let opts = DownloadOptions { max_attempts: 1, ..DownloadOptions::default() };
        let mut dl = member.download(CID, &magnet, &tmp.path().join("member-data"), opts).await.expect("metadata");
        let range = 0..ARCHIVE_SIZE;

        // The liar alone: every piece it sends fails SHA-1, nothing is written.
        dl.set_peers(vec![liar]);
        let err = dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect_err("liar only");
        assert!(matches!(&err, Error::Peer { peer, .. } if *peer == liar), "{err:?}");
        assert!(dl.read_range("data", range.clone()).await.expect("read").iter().all(|b| *b == 0));

        // Liar and honest peer together: the range completes with the right bytes.
        dl.set_peers(vec![liar, honest]);
        let stats = dl.fetch_ranges("data", std::slice::from_ref(&range)).await.expect("honest peer completes");
        assert_eq!(stats.pieces_fetched, 1);
        let want = std::fs::read(folder.join("data")).expect("owner data");
        assert_eq!(dl.read_range("data", range.clone()).await.expect("read"), want[..ARCHIVE_SIZE as usize]);
        liar_task.abort();
    })
    .await
    .expect("test timed out");
}

/// status-go-archives.md §15 item 19: status-go has no timeout on piece downloads and cannot
/// cancel them at shutdown. Ours: a peer that never unchokes fails the fetch after the stall
/// timeout, and cancellation ends a fetch at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec15_item19_stalled_range_fetch_times_out_and_cancels() {
    init_tracing();
    timeout(TEST_TIMEOUT, async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (_folder, meta, owner) = seeding_owner(tmp.path()).await;
        let (staller, staller_task) = spawn_liar(meta.info_hash(), meta.pieces().len(), false).await;
        let member = node(&tmp.path().join("member-state")).await;
        let magnet = Magnet::for_meta(&meta, &[]).with_peer(owner.local_peer_addr().expect("addr"));
        let opts = DownloadOptions {
            stall_timeout: std::time::Duration::from_millis(300),
            max_attempts: 2,
            backoff: std::time::Duration::from_millis(10),
            ..DownloadOptions::default()
        };
        let cancel = opts.cancel.clone();
        let mut dl = member.download(CID, &magnet, &tmp.path().join("member-data"), opts).await.expect("metadata");
        dl.set_peers(vec![staller]);
        let err = dl.fetch_ranges("data", std::slice::from_ref(&(0..ARCHIVE_SIZE))).await.expect_err("stalls");
        assert!(matches!(&err, Error::Peer { reason, .. } if reason.contains("stalled")), "{err:?}");

        let fetch = dl.fetch_ranges("data", std::slice::from_ref(&(ARCHIVE_SIZE..2 * ARCHIVE_SIZE)));
        let canceller = async {
            tokio::task::yield_now().await;
            cancel.cancel();
        };
        let (res, ()) = tokio::join!(fetch, canceller);
        assert!(matches!(res, Err(Error::Cancelled)), "{res:?}");
        staller_task.abort();
    })
    .await
    .expect("test timed out");
}
