//! Writes the seed corpus `fuzz/corpus/<target>/` from real encodings: the spec vectors
//! (`/work/shared/spec/vectors` or `$CHS_SPEC_VECTORS`), `proto/golden.json`, archives built by
//! `chs_archive::Builder` at a tiny piece length, and a `.torrent` created by `chs_torrent`.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus` (the files are committed;
//! rerun only to refresh them).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chs_archive::format::{decode_archive, encode_index};
use chs_archive::{BuildOptions, Builder, MemorySource, Reader, archive_id};
use chs_proto::protobuf::{WakuMessage as ArchivedMessage, WakuMessageArchiveIndex, WakuMessageArchiveIndexMetadata};
use chs_torrent::{Magnet, TorrentFileOptions, TorrentMeta};

const TOPIC: [u8; 4] = [0xa4, 0xab, 0xdf, 0x64];
const START: u64 = 1_577_836_800;

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex vector")
}

fn main() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = fuzz_dir.parent().unwrap();
    let vectors =
        std::env::var_os("CHS_SPEC_VECTORS").map_or_else(|| PathBuf::from("/work/shared/spec/vectors"), PathBuf::from);
    let corpus = Corpus { root: fuzz_dir.join("corpus") };
    if corpus.root.exists() {
        std::fs::remove_dir_all(&corpus.root).unwrap();
    }

    // proto/golden.json: every vector goes to the targets that decode its message type.
    let golden: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(root.join("proto/golden.json")).unwrap()).unwrap();
    for (i, v) in golden.iter().enumerate() {
        let message = v["message"].as_str().unwrap();
        let bytes = hex(v["hex"].as_str().unwrap());
        let short = message.rsplit('.').next().unwrap();
        let name = format!("golden-{i:02}-{short}");
        let targets: &[&str] = match short {
            "WakuMessageArchiveIndex" | "WakuMessageArchiveIndexMetadata" => &["index"],
            "WakuMessageArchive" => &["archive"],
            "WakuMessage" if message.starts_with("protobuf.") => &["status_archived", "archive"],
            "WakuMessage" => &["waku_message", "magnetlink"],
            "ApplicationMetadataMessage" | "ProtocolMessage" | "SegmentMessage" => {
                &["status_layers", "magnetlink", "status_archived"]
            }
            "CommunityMessageArchiveMagnetlink" => &["magnetlink", "status_layers"],
            _ => &[],
        };
        for target in targets {
            corpus.put(target, &name, &bytes);
        }
    }

    // The end-to-end magnetlink vector (status-go-wire.md §4.2): every layer.
    let e2e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors.join("magnetlink-e2e.json")).unwrap()).unwrap();
    for layer in ["magnetlink_message", "amm", "protocol_message", "waku_message"] {
        let bytes = hex(e2e[layer].as_str().unwrap());
        corpus.put("magnetlink", &format!("e2e-{layer}"), &bytes);
        corpus.put("status_layers", &format!("e2e-{layer}"), &bytes);
        corpus.put("status_archived", &format!("e2e-{layer}"), &bytes);
    }
    corpus.put("waku_message", "e2e-waku_message", &hex(e2e["waku_message"].as_str().unwrap()));
    corpus.put("magnet_uri", "e2e-magnet", e2e["magnet_uri"].as_str().unwrap().as_bytes());

    // The three-window archive vector (status-go-archives.md §14): its index, each archive, and
    // its .torrent (data itself is 300 KiB of mostly padding: left out).
    let three = vectors.join("archive-three-windows");
    let cid_dir = std::fs::read_dir(&three)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("the community folder of the vector");
    let index = std::fs::read(cid_dir.join("index")).unwrap();
    corpus.put("index", "three-windows-index", &index);
    let reader = Reader::open(&cid_dir).unwrap();
    for (i, entry) in reader.entries().iter().enumerate() {
        let raw = reader.read_raw(&entry.id).unwrap();
        decode_archive(&raw).unwrap();
        corpus.put("archive", &format!("three-windows-archive-{i}"), &raw);
    }
    let torrent = std::fs::read(three.join("test.torrent")).unwrap();
    corpus.put("torrent_meta", "three-windows-torrent", &torrent);
    let meta = TorrentMeta::from_torrent_bytes(&torrent).unwrap();
    corpus.put("torrent_meta", "three-windows-info", meta.info_bytes());

    // Archives built by chs-archive at a 64-byte piece length, so a whole directory is small.
    let work = tempfile::tempdir().unwrap();
    let messages: Vec<ArchivedMessage> = (0u8..6)
        .map(|n| ArchivedMessage {
            sig: vec![0x04; 65],
            timestamp: START + u64::from(n) * 1_800,
            topic: TOPIC.to_vec(),
            payload: vec![n; usize::from(n) * 7 + 1],
            padding: Vec::new(),
            hash: vec![n; 32],
            third_party_id: String::new(),
        })
        .collect();
    let dir = work.path().join("archives");
    let mut options = BuildOptions::new(vec![TOPIC], START + 4 * 3600);
    options.from = Some(START);
    options.interval = 3600;
    options.piece_length = 64;
    let report = Builder::new(&dir, options).run(&MemorySource::new(messages)).unwrap();
    assert!(report.archives.len() >= 2, "several archives: {report:?}");
    let index = std::fs::read(dir.join("index")).unwrap();
    let data = std::fs::read(dir.join("data")).unwrap();
    corpus.put("index", "built-index", &index);
    corpus.put("archive_dir", "built-dir", &directory_input(&index, &data));
    let reader = Reader::open(&dir).unwrap();
    for (i, entry) in reader.entries().iter().enumerate() {
        corpus.put("archive", &format!("built-archive-{i}"), &reader.read_raw(&entry.id).unwrap());
    }
    // The same archives, unpadded: one compact directory whose index says padding 0.
    let mut compact_index = WakuMessageArchiveIndex { archives: BTreeMap::new() };
    let mut compact_data = Vec::new();
    for entry in reader.entries() {
        let raw = reader.read_raw(&entry.id).unwrap();
        let meta = WakuMessageArchiveIndexMetadata {
            offset: compact_data.len() as u64,
            size: raw.len() as u64,
            padding: 0,
            ..entry.metadata.clone()
        };
        compact_data.extend_from_slice(&raw);
        compact_index.archives.insert(archive_id(&meta), meta);
    }
    let compact_index = encode_index(&compact_index);
    corpus.put("archive_dir", "compact-dir", &directory_input(&compact_index, &compact_data));
    corpus.put("index", "compact-index", &compact_index);

    // A torrent of that folder, as chs-torrent creates it, and its magnet links.
    let meta = TorrentMeta::from_dir(&dir, 64).unwrap();
    corpus.put("torrent_meta", "built-torrent", &meta.torrent_file_bytes(&TorrentFileOptions::default()));
    corpus.put("torrent_meta", "built-info", meta.info_bytes());
    let magnet = Magnet::for_meta(&meta, &["udp://tracker.opentrackr.org:1337/announce".to_owned()])
        .with_peer("127.0.0.1:6881".parse().unwrap())
        .with_peer("[::1]:6882".parse().unwrap());
    corpus.put("magnet_uri", "built-magnet", magnet.to_string().as_bytes());
    corpus.put(
        "magnet_uri",
        "base32-magnet",
        b"magnet:?dn=a+b%2Fc&xt=urn:btmh:1220aa&xt=urn:btih:YKTOJUPB6LCNHOPA4X3KPOGJ2DQ7FI5U&x.pe=bad&tr=x",
    );
    println!("corpus written to {}", corpus.root.display());
}

/// The input layout of `chs_archive::fuzz::directory`: 2-byte little-endian index length, index, data.
fn directory_input(index: &[u8], data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(index.len()).expect("small index");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(index);
    out.extend_from_slice(data);
    out
}
