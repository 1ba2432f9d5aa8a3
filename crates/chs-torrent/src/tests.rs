//! Unit tests: bencode, info dict golden bytes, piece counts, magnet links.

use std::path::{Path, PathBuf};

use crate::bencode::Value;
use crate::{
    DEFAULT_PIECE_LENGTH, Error, FileEntry, InfoHash, Magnet, MetaError, STATUS_ANNOUNCE_LIST, TorrentFileOptions,
    TorrentMeta, piece_count,
};

const CID: &str = "0x020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
const VECTOR_INFO_HASH: &str = "354fe196816674e0a5d4fbaf2d0a07d805ffa30f";
const VECTOR_MAGNET: &str = "magnet:?xt=urn:btih:354fe196816674e0a5d4fbaf2d0a07d805ffa30f&dn=0x020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20&tr=udp%3A%2F%2Ftracker.opentrackr.org%3A1337%2Fannounce&tr=udp%3A%2F%2Ftracker.openbittorrent.com%3A6969%2Fannounce";

fn vector_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(CID)
}

fn vector_torrent() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/three-windows.torrent"))
        .expect("vector .torrent is in tests/data")
}

#[test]
fn bencode_roundtrip_and_sorted_keys() {
    let mut d = std::collections::BTreeMap::new();
    d.insert(b"zz".to_vec(), Value::Int(-3));
    d.insert(b"a".to_vec(), Value::List(vec![Value::bytes("x"), Value::Int(0)]));
    let v = Value::Dict(d);
    let enc = v.encode();
    assert_eq!(enc, b"d1:al1:xi0ee2:zzi-3ee");
    assert_eq!(Value::decode(&enc).expect("decodes"), v);
}

#[test]
fn bencode_rejects_bad_input() {
    for bad in [&b"i01e"[..], b"i-0e", b"ie", b"5:abc", b"d1:bi1e1:ai2ee", b"l", b"i1ei2e", b"x", b"-1:a"] {
        assert!(Value::decode(bad).is_err(), "{:?} must be rejected", String::from_utf8_lossy(bad));
    }
    let deep = "l".repeat(100) + &"e".repeat(100);
    assert!(Value::decode(deep.as_bytes()).is_err());
}

/// Found by the `torrent_meta` fuzz target: `i+1e` decoded to 1 (Rust's `i64::from_str` takes a
/// `+`), so a strictly decoded value did not re-encode to its bytes.
#[test]
fn bencode_rejects_signs_other_than_a_single_minus() {
    for bad in [&b"i+1e"[..], b"i+0e", b"i--1e", b"i-+1e", b"i-e", b"i1-e", b"i 1e", b"d12:piece lengthi+204800ee"] {
        assert!(Value::decode(bad).is_err(), "{:?} must be rejected", String::from_utf8_lossy(bad));
    }
    for good in [&b"i0e"[..], b"i-1e", b"i1234e", b"i-9223372036854775808e"] {
        assert_eq!(Value::decode(good).expect("decodes").encode(), good);
    }
}

#[test]
fn vector_info_dict_and_torrent_bytes_match_golden() {
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    assert_eq!(meta.name(), CID);
    assert_eq!(meta.files().iter().map(FileEntry::display_path).collect::<Vec<_>>(), ["data", "index"]);
    assert_eq!(meta.pieces().len(), 4);
    assert_eq!(meta.info_bytes().len(), 264);
    assert_eq!(meta.info_hash().to_hex(), VECTOR_INFO_HASH);
    assert_eq!(hex::encode(meta.pieces()[0]), "6d4301294d5d5558d6c4cba9682bc5bd26e6ea6d");
    assert_eq!(hex::encode(meta.pieces()[3]), "85e685080209cf3953cbbf23d1e674ed5b106357");

    let golden = vector_torrent();
    let opts = TorrentFileOptions {
        created_by: Some("0x04aabb".to_owned()),
        creation_date: Some(1_700_000_000),
        ..TorrentFileOptions::default()
    };
    assert_eq!(meta.torrent_file_bytes(&opts), golden);

    // The info dict is embedded verbatim in the golden .torrent.
    let parsed = TorrentMeta::from_torrent_bytes(&golden).expect("parses");
    assert_eq!(parsed.info_bytes(), meta.info_bytes());
    assert_eq!(parsed, meta);
}

#[test]
fn vector_magnet_matches_status_go() {
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    let trackers: Vec<String> = STATUS_ANNOUNCE_LIST.iter().map(|s| (*s).to_owned()).collect();
    let magnet = Magnet::for_meta(&meta, &trackers);
    assert_eq!(magnet.to_string(), VECTOR_MAGNET);
    let parsed: Magnet = VECTOR_MAGNET.parse().expect("parses");
    assert_eq!(parsed, magnet);
}

#[test]
fn magnet_peer_hints_sorted_after_tr_and_round_trip() {
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    let magnet = Magnet::for_meta(&meta, &["http://t.example/a b".to_owned()])
        .with_peer("127.0.0.1:6881".parse().expect("addr"))
        .with_peer("[::1]:7000".parse().expect("addr"));
    let s = magnet.to_string();
    assert!(s.ends_with("&tr=http%3A%2F%2Ft.example%2Fa+b&x.pe=127.0.0.1%3A6881&x.pe=%5B%3A%3A1%5D%3A7000"), "{s}");
    assert_eq!(s.parse::<Magnet>().expect("parses"), magnet);
}

#[test]
fn magnet_parsing_variants_and_errors() {
    // base32 xt, btmh first (libtorrent hybrid links), unknown keys, unescaped values.
    let b32 = "magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:GVH6DFUBMZ2OBJOU7OXS2CQH3AC77IYP&foo=bar&dn=x";
    let m: Magnet = b32.parse().expect("parses");
    assert_eq!(m.info_hash.to_hex(), VECTOR_INFO_HASH);
    assert_eq!(m.display_name.as_deref(), Some("x"));
    for bad in [
        "http://x",
        "magnet:?dn=x",
        "magnet:?xt=urn:btih:zz",
        "magnet:?xt=urn:btih:354fe196816674e0a5d4fbaf2d0a07d805ffa30f&dn=%zz",
    ] {
        assert!(matches!(bad.parse::<Magnet>(), Err(Error::InvalidMagnet { .. })), "{bad}");
    }
}

#[test]
fn piece_count_exact_multiples() {
    let p = DEFAULT_PIECE_LENGTH;
    assert_eq!(piece_count(1, p), 1);
    assert_eq!(piece_count(u64::from(p) - 1, p), 1);
    assert_eq!(piece_count(u64::from(p), p), 1);
    assert_eq!(piece_count(u64::from(p) + 1, p), 2);
    assert_eq!(piece_count(3 * u64::from(p), p), 3);
}

#[test]
fn exact_multiple_folder_has_no_extra_piece() {
    // librqbit 9.1's create_torrent adds an empty-input hash here (deps-and-peers.md §1.3).
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("c");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("index"), vec![7u8; 16384]).expect("write");
    std::fs::write(dir.join("data"), vec![9u8; 32768]).expect("write");
    let meta = TorrentMeta::from_dir(&dir, 16384).expect("builds");
    assert_eq!(meta.pieces().len(), 3);
    let empty_sha1 = hex::decode("da39a3ee5e6b4b0d3255bfef95601890afd80709").expect("hex");
    assert!(meta.pieces().iter().all(|h| h.as_slice() != empty_sha1.as_slice()));
    assert_eq!(meta.files()[0].display_path(), "data");

    // Two archives of 100 KiB plus an index of exactly 100 KiB: 3 pieces at 102400.
    let dir2 = tmp.path().join("d");
    std::fs::create_dir(&dir2).expect("mkdir");
    std::fs::write(dir2.join("data"), vec![1u8; 2 * 102_400]).expect("write");
    std::fs::write(dir2.join("index"), vec![2u8; 102_400]).expect("write");
    assert_eq!(TorrentMeta::from_dir(&dir2, DEFAULT_PIECE_LENGTH).expect("builds").pieces().len(), 3);
}

#[test]
fn files_sorted_bytewise_including_subdirs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("n");
    std::fs::create_dir_all(dir.join("a")).expect("mkdir");
    for (p, len) in [("index", 3), ("data", 5), ("a/z", 1), ("B", 2)] {
        std::fs::write(dir.join(p), vec![0u8; len]).expect("write");
    }
    std::fs::write(dir.join("empty"), b"").expect("write");
    let meta = TorrentMeta::from_dir(&dir, 4).expect("builds");
    let names: Vec<String> = meta.files().iter().map(FileEntry::display_path).collect();
    assert_eq!(names, ["B", "a/z", "data", "empty", "index"]);
    assert_eq!(meta.pieces().len(), 3);
}

#[test]
fn creation_rejects_bad_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert!(matches!(TorrentMeta::from_dir(&empty, 16384), Err(Error::Meta(MetaError::Empty))));
    assert!(matches!(TorrentMeta::from_dir(&vector_dir(), 0), Err(Error::Meta(MetaError::ZeroPieceLength))));
    assert!(matches!(TorrentMeta::from_dir(&tmp.path().join("missing"), 16384), Err(Error::Io { .. })));
    let files = vec![FileEntry { path: vec!["data".into()], length: 10 }];
    for name in ["..", "a/b", ""] {
        let r = TorrentMeta::from_parts(name.into(), 16384, files.clone(), vec![[0; 20]]);
        assert!(matches!(r, Err(Error::Meta(MetaError::BadName(_)))), "{name:?}");
    }
    let r = TorrentMeta::from_parts("x".into(), 4, files.clone(), vec![[0; 20]; 2]);
    assert!(matches!(r, Err(Error::Meta(MetaError::PieceCount { expected: 3, actual: 2 }))));
    let evil = vec![FileEntry { path: vec!["..".into(), "etc".into()], length: 10 }];
    let r = TorrentMeta::from_parts("x".into(), 16, evil, vec![[0; 20]]);
    assert!(matches!(r, Err(Error::Meta(MetaError::BadPath(_)))));
}

#[test]
fn info_bytes_from_peer_are_kept_verbatim() {
    // An info dict with an extra key (e.g. libtorrent's `private`): the hash covers it.
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    let mut v = Value::decode(meta.info_bytes()).expect("decodes");
    if let Value::Dict(d) = &mut v {
        d.insert(b"private".to_vec(), Value::Int(0));
    }
    let bytes = v.encode();
    let parsed = TorrentMeta::from_info_bytes(&bytes).expect("parses");
    assert_eq!(parsed.info_hash(), InfoHash::of_info_bytes(&bytes));
    assert_ne!(parsed.info_hash(), meta.info_hash());
    assert!(TorrentMeta::from_info_bytes(b"d4:name1:xe").is_err());
}

#[test]
fn piece_ranges_of_file_ranges() {
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    let data = meta.file_index("data").expect("data");
    let index = meta.file_index("index").expect("index");
    assert_eq!(meta.pieces_for_file_range(data, 102_400..204_800).expect("ok"), 1..2);
    assert_eq!(meta.pieces_for_file_range(data, 0..307_200).expect("ok"), 0..3);
    assert_eq!(meta.pieces_for_file_range(data, 5..6).expect("ok"), 0..1);
    assert_eq!(meta.pieces_for_file_range(index, 0..308).expect("ok"), 3..4);
    assert_eq!(meta.piece_len(3), 308);
    assert!(matches!(meta.pieces_for_file_range(data, 0..307_201), Err(Error::RangeOutOfFile { .. })));
    assert!(meta.pieces_for_file_range(7, 0..1).is_err());
}

#[test]
fn torrent_file_written_as_name_dot_torrent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    let path = meta.write_torrent_file(&tmp.path().join("torrents"), &TorrentFileOptions::default()).expect("writes");
    assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(format!("{CID}.torrent").as_str()));
    let bytes = std::fs::read(&path).expect("read");
    assert!(bytes.starts_with(b"d13:announce-listll42:udp://tracker.opentrackr.org:1337/announceel46:"));
    assert_eq!(TorrentMeta::from_torrent_bytes(&bytes).expect("parses"), meta);
    let no_trackers = TorrentFileOptions { announce_list: vec![], ..TorrentFileOptions::default() };
    assert!(meta.torrent_file_bytes(&no_trackers).starts_with(b"d4:infod5:files"));
}

#[test]
fn piece_store_maps_pieces_across_file_boundaries() {
    use std::sync::Arc;

    use crate::wire::PieceStore;
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src").join("t");
    std::fs::create_dir_all(&src).expect("mkdir");
    // Files of 5, 3 and 9 bytes with 4-byte pieces: pieces span file boundaries.
    std::fs::write(src.join("a"), b"01234").expect("write");
    std::fs::write(src.join("b"), b"567").expect("write");
    std::fs::write(src.join("c"), b"89abcdefg").expect("write");
    let meta = Arc::new(TorrentMeta::from_dir(&src, 4).expect("builds"));
    assert_eq!(meta.pieces().len(), 5);
    let source = PieceStore::new(src.clone(), Arc::clone(&meta));
    let dest_dir = tmp.path().join("dst").join("t");
    let dest = PieceStore::new(dest_dir.clone(), Arc::clone(&meta));
    dest.prepare().expect("prepare");
    assert!((0..5).all(|p| source.has_piece(p)));
    assert!(!dest.has_piece(1));
    for p in [1u32, 4] {
        let bytes = source.read_piece(p).expect("read");
        dest.write_piece(p, &bytes).expect("write");
        assert!(dest.has_piece(p));
    }
    assert_eq!(source.read_piece(1).expect("read"), b"4567");
    assert_eq!(source.read_piece(4).expect("read"), b"g");
    assert_eq!(std::fs::read(dest_dir.join("a")).expect("a"), b"\0\0\0\x004");
    assert_eq!(std::fs::read(dest_dir.join("b")).expect("b"), b"567");
    assert_eq!(std::fs::read(dest_dir.join("c")).expect("c"), b"\0\0\0\0\0\0\0\0g");
    assert!(!dest.has_piece(0));
}

/// status-go-archives.md §15 item 5 (R): `data` is the first file whatever the directory order,
/// so torrent offsets equal `data` offsets and archive ranges map to whole pieces.
#[test]
fn spec15_item5_data_is_first_file_and_archive_ranges_are_whole_pieces() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(CID);
    std::fs::create_dir(&dir).expect("mkdir");
    // Written index first, so directory order is not the sorted order on most file systems.
    std::fs::write(dir.join("index"), vec![1u8; 10]).expect("write");
    std::fs::write(dir.join("data"), vec![2u8; 2 * 102_400]).expect("write");
    let meta = TorrentMeta::from_dir(&dir, DEFAULT_PIECE_LENGTH).expect("builds");
    assert_eq!(meta.file_index("data"), Some(0));
    assert_eq!(meta.file_offset(0), 0);
    assert_eq!(meta.pieces_for_file_range(0, 102_400..204_800).expect("range"), 1..2);
}

/// status-go-archives.md §15 item 6 (R): `info.name` is exactly the folder name (the cid string),
/// so a member's files land in `<parent>/<cid>/`.
#[test]
fn spec15_item6_name_is_the_exact_folder_name() {
    let meta = TorrentMeta::from_dir(&vector_dir(), DEFAULT_PIECE_LENGTH).expect("builds");
    assert_eq!(meta.name(), CID);
    let v = Value::decode(meta.info_bytes()).expect("decodes");
    let name = v.as_dict().and_then(|d| d.get(b"name".as_slice())).and_then(Value::as_bytes).expect("name");
    assert_eq!(name, CID.as_bytes());
}

fn folder_with(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path).expect("mkdir");
    std::fs::write(path.join("data"), content).expect("write");
}

fn content(path: &Path) -> Vec<u8> {
    std::fs::read(path.join("data")).expect("read")
}

/// Issue item 4: the swap exchanges the folders in one step (the old files end at the staging
/// path, to be deleted), and a first download simply moves the staging folder in.
#[test]
fn item4_swap_exchanges_the_staging_and_live_folders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (live, staging) = (tmp.path().join("k"), tmp.path().join(".staging").join("k.h"));
    folder_with(&staging, b"new");
    crate::node::swap_in(&staging, &live).expect("first swap");
    assert_eq!(content(&live), b"new");
    assert!(!staging.exists());
    folder_with(&staging, b"newer");
    crate::node::swap_in(&staging, &live).expect("exchange");
    assert_eq!((content(&live), content(&staging)), (b"newer".to_vec(), b"new".to_vec()));
}

/// Issue item 4: after a crash inside the two-rename swap (file systems without
/// `RENAME_EXCHANGE`), the next download finds the old folder again if the new one had not been
/// moved in (even over the empty files librqbit re-created at restart), or keeps the new one.
#[test]
fn item4_cut_short_two_rename_swap_is_repaired() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join(".staging");
    let (live, staging) = (tmp.path().join("k"), root.join("k.h"));
    let aside = crate::node::aside_folder(&staging);
    // Cut after `live` → aside: the staging folder is still there; librqbit re-created `live`.
    folder_with(&aside, b"old");
    folder_with(&staging, b"new");
    folder_with(&live, b"");
    crate::node::restore_aside(&root, "k", &live).expect("repair");
    assert_eq!(content(&live), b"old");
    assert!(!aside.exists());
    // Cut after staging → `live`: the new folder is in place, the old one is deleted.
    std::fs::rename(&live, &aside).expect("aside");
    std::fs::rename(&staging, &live).expect("in");
    crate::node::restore_aside(&root, "k", &live).expect("repair");
    assert_eq!(content(&live), b"new");
    assert!(!aside.exists());
}

/// Issue 22 item 2 (creation on all cores): the pieces hashed by 1 to 4 threads, over files that
/// end inside pieces and buffers (an empty one among them), are the SHA-1s of the folder's bytes
/// in torrent order, and the info dict is the same whatever the number of threads.
#[test]
fn issue22_item2_creation_on_threads_gives_the_same_torrent() {
    use sha1::Digest;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("0x02threads");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let mut x: u32 = 0x1234_5678;
    let mut stream = Vec::new();
    // Sorted order: data, empty, index, sub/tail.
    for (p, len) in [("data", 9_000_001usize), ("empty", 0), ("index", 102_401), ("sub/tail", 1_234_567)] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        std::fs::write(dir.join(p), &bytes).expect("write");
        stream.extend_from_slice(&bytes);
    }
    for piece_length in [16_384u32, DEFAULT_PIECE_LENGTH, 3 << 20] {
        let expected: Vec<[u8; 20]> =
            stream.chunks(piece_length as usize).map(|c| sha1::Sha1::digest(c).into()).collect();
        let one = TorrentMeta::from_dir_threads(&dir, piece_length, 1).expect("builds");
        assert_eq!(one.pieces(), expected.as_slice(), "piece length {piece_length}");
        for threads in 2..=4 {
            let many = TorrentMeta::from_dir_threads(&dir, piece_length, threads).expect("builds");
            assert_eq!(many.info_bytes(), one.info_bytes(), "piece length {piece_length}, {threads} threads");
        }
        assert_eq!(TorrentMeta::from_dir(&dir, piece_length).expect("builds"), one);
    }
}
