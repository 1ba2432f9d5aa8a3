//! The client against stand-in nodes over real HTTP on 127.0.0.1 (and raw TCP listeners for a
//! stalled or misbehaving node).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chs_logos::{ClientConfig, LogosClient, LogosError};
use chs_logos_standin::{ExistsShape, StandinConfig, StandinNode, cid_of};
use tokio::io::AsyncWriteExt as _;

fn client(api: &str) -> LogosClient {
    client_with(api, |_| {})
}

fn client_with(api: &str, tune: impl FnOnce(&mut ClientConfig)) -> LogosClient {
    let mut config =
        ClientConfig { api: api.to_owned(), poll_interval: Duration::from_millis(20), ..Default::default() };
    tune(&mut config);
    LogosClient::new(config).expect("client")
}

async fn standin(base_path: &str, shape: ExistsShape) -> StandinNode {
    let config = StandinConfig { base_path: base_path.to_owned(), exists_shape: shape, ..Default::default() };
    StandinNode::start(config).await.expect("stand-in")
}

#[tokio::test]
async fn client_round_trip_on_both_base_paths_and_exists_shapes() {
    for (base, shape) in [("/api/storage/v1", ExistsShape::Has), ("/api/codex/v1", ExistsShape::CidKey)] {
        let node = standin(base, shape).await;
        assert!(node.api().ends_with(base));
        let c = client(&node.api());
        let cid = c.upload(b"hello archive".to_vec(), true).await.expect("upload");
        assert_eq!(cid, cid_of(b"hello archive"), "content-addressed");
        assert!(cid.starts_with('z'));
        assert_eq!(c.get_local(&cid).await.expect("get").as_ref(), b"hello archive");
        assert!(c.exists(&cid).await.expect("exists"), "{base}: exists in shape {shape:?}");
        let list = c.list().await.expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].cid.as_str(), list[0].manifest.dataset_size), (cid.as_str(), 13));
        assert_eq!(c.manifest(&cid).await.expect("manifest").block_size, 65536);
        assert!(c.advertise(&cid).await.expect("advertise"));
        c.set_advertise(&cid, false).await.expect("set advertise");
        assert!(!c.advertise(&cid).await.expect("advertise"));
        c.delete(&cid).await.expect("delete");
        assert!(!c.exists(&cid).await.expect("exists"));
        assert!(c.list().await.expect("list").is_empty());
        node.stop().await;
    }
}

#[tokio::test]
async fn client_network_of_standins_fetches_from_each_other() {
    let owner = standin("/api/storage/v1", ExistsShape::Has).await;
    let member = standin("/api/storage/v1", ExistsShape::CidKey).await;
    member.add_peer(&owner.api());
    let (o, m) = (client(&owner.api()), client(&member.api()));
    let index = o.upload(b"index bytes".to_vec(), true).await.expect("upload");
    let archives = vec![
        o.upload(b"archive 1".to_vec(), true).await.expect("upload"),
        o.upload(b"archive 2".to_vec(), true).await.expect("upload"),
    ];
    assert!(m.get_local(&index).await.expect_err("not local yet").is_not_found());
    assert_eq!(m.fetch_index(&index).await.expect("index").as_ref(), b"index bytes");
    assert!(member.holds(&index), "the network fetch keeps a copy");
    m.fetch_all_to_local(&archives).await.expect("archives");
    for cid in &archives {
        assert!(m.exists(cid).await.expect("exists"));
    }
    assert_eq!(m.get_local(&archives[1]).await.expect("get").as_ref(), b"archive 2");
    // A CID nobody has: 404 everywhere, and no retry of a fetch that is not a time-out.
    let missing = cid_of(b"never uploaded");
    let before = owner.requests();
    assert!(matches!(m.fetch_index(&missing).await, Err(LogosError::NotFound { .. })));
    assert_eq!(owner.requests() - before, 1, "asked the peer once, no retry after a 404");
    assert!(matches!(m.fetch_from_network(&missing).await, Err(LogosError::NotFound { .. })));
    assert!(matches!(m.manifest(&missing).await, Err(LogosError::NotFound { .. })));
    assert!(matches!(m.fetch_all_to_local(std::slice::from_ref(&missing)).await, Err(LogosError::NotFound { .. })));
}

#[tokio::test]
async fn client_stalled_standin_times_out_with_one_retry() {
    let node = standin("/api/storage/v1", ExistsShape::Has).await;
    let c = client_with(&node.api(), |config| {
        config.index_timeout = Duration::from_millis(500);
        config.request_timeout = Duration::from_millis(500);
    });
    let cid = c.upload(b"x".to_vec(), true).await.expect("upload");
    node.set_stalled(true);
    let before = node.requests();
    let error = c.fetch_index(&cid).await.expect_err("stalled");
    assert!(matches!(error, LogosError::Timeout { op: "stream from network", .. }), "{error}");
    assert_eq!(node.requests() - before, 2, "status-go: one retry after a time-out");
    assert!(matches!(c.exists(&cid).await, Err(LogosError::Timeout { op: "exists", .. })));
    node.set_stalled(false);
    assert!(c.exists(&cid).await.expect("answers again"));
}

/// A TCP listener that accepts and never answers: counts connections.
async fn silent_listener() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicU64::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{addr}/api/storage/v1"), accepted)
}

#[tokio::test]
async fn client_stalled_tcp_node_times_out_with_one_retry() {
    let (api, accepted) = silent_listener().await;
    let c = client_with(&api, |config| config.index_timeout = Duration::from_millis(400));
    let error = c.fetch_index(&cid_of(b"i")).await.expect_err("stalled");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "two attempts");
    let c = client_with(&api, |config| config.retries = 0);
    let c = LogosClient::new(ClientConfig { index_timeout: Duration::from_millis(200), ..c.config().clone() })
        .expect("client");
    assert!(c.fetch_index(&cid_of(b"i")).await.expect_err("stalled").is_timeout());
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "retries = 0: one attempt");
}

/// A listener that answers every request with `response` and closes.
async fn canned(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/api/storage/v1")
}

#[tokio::test]
async fn client_failures_are_typed() {
    let cid = cid_of(b"c");
    // Refused connection.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let api = format!("http://{}/api/storage/v1", closed.local_addr().expect("addr"));
    drop(closed);
    assert!(matches!(client(&api).exists(&cid).await, Err(LogosError::Connect { .. })));
    // Wrong shapes and statuses.
    let api = canned("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
    assert!(matches!(client(&api).exists(&cid).await, Err(LogosError::BadResponse { op: "exists", .. })));
    assert!(matches!(client(&api).upload(b"x".to_vec(), false).await, Err(LogosError::BadResponse { .. })));
    let api = canned("HTTP/1.1 200 OK\r\ncontent-length: 14\r\nconnection: close\r\n\r\n{\"other\":true}").await;
    assert!(matches!(client(&api).exists(&cid).await, Err(LogosError::BadResponse { .. })));
    let api = canned("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom").await;
    match client(&api).get_local(&cid).await {
        Err(LogosError::Status { status: 500, body, .. }) => assert_eq!(body, "boom"),
        other => panic!("expected a status error, got {other:?}"),
    }
    let api = canned("HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\n").await;
    let small = client_with(&api, |config| config.max_body = 10);
    assert!(matches!(small.get_local(&cid).await, Err(LogosError::TooLarge { max: 10, .. })));
    // Refused before any request.
    assert!(matches!(client(&api).get_local("../../etc").await, Err(LogosError::InvalidCid { .. })));
    assert!(matches!(
        LogosClient::new(ClientConfig { api: "ftp://x".into(), ..Default::default() }),
        Err(LogosError::InvalidApi { .. })
    ));
}
