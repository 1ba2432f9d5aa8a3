//! Benchmark: canonical import of archive messages into a real SQLite file.
//!
//! Run (release, ~1-2 min): `cargo run --release -p chs-community --example bench_import`
//! Options: `-- [MESSAGES (default 1000000)] [PER_ARCHIVE (default 10000)] [DIR (default: a temp dir)]`.
//!
//! The messages are real Status chat messages (a `ChatMessage` in an `ApplicationMetadataMessage`
//! signed by one of 16 authors, wrapped in a `ProtocolMessage`), 1000 distinct payloads reused
//! with distinct hashes, timestamps and two channel topics. The baseline, measured in the same
//! run on the same rows, is a plain batched `INSERT` (one transaction per archive-sized batch,
//! one prepared statement) into a fresh store file with the same schema. The canonical import
//! (range delete, insert, history rows, bookkeeping, one transaction per archive) is measured
//! into fresh files twice: with the history decode deferred (the ratio the goal ≥ 0.7 is about;
//! the separate decode pass is timed too) and with the decode inside the import. Prints msgs/s
//! and the ratios, then `BENCH_JSON {...}`.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::error::Error;
use std::path::Path;
use std::time::Instant;

use chs_community::{ArchiveImport, Communities, DecodeMode};
use chs_proto::Message as _;
use chs_proto::encryption::ProtocolMessage;
use chs_proto::protobuf::{ChatMessage, WakuMessage as ArchivedMessage, WakuMessageArchiveMetadata};
use chs_store::{Store, StoredMessage};
use chs_waku_payload::SecretKey;

const DISTINCT_PAYLOADS: usize = 1000;
const AUTHORS: usize = 16;
const START_SECS: u64 = 1_700_000_000;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn payloads(chat_id: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = 42u64;
    let authors: Vec<SecretKey> = (0..AUTHORS)
        .map(|_| {
            loop {
                let mut b = [0u8; 32];
                for chunk in b.chunks_mut(8) {
                    chunk.copy_from_slice(&splitmix(&mut rng).to_le_bytes());
                }
                if let Ok(k) = SecretKey::from_bytes(&b) {
                    break k;
                }
            }
        })
        .collect();
    (0..DISTINCT_PAYLOADS)
        .map(|i| {
            let author = &authors[i % AUTHORS];
            let words = 5 + splitmix(&mut rng) % 30;
            let text: Vec<String> = (0..words).map(|w| format!("word{}", (w * 7919 + i as u64) % 1000)).collect();
            let chat = ChatMessage {
                clock: START_SECS * 1000 + i as u64,
                timestamp: START_SECS * 1000 + i as u64,
                text: text.join(" "),
                chat_id: chat_id.to_owned(),
                content_type: 1,
                message_type: 6,
                ..Default::default()
            };
            let amm = chs_status::amm::sign_amm(
                chat.encode_to_vec(),
                chs_proto::ApplicationMetadataMessageType::ChatMessage,
                author,
            );
            let protocol = ProtocolMessage {
                installation_id: format!("{i:08x}-0000-4000-8000-000000000001"),
                public_message: amm.encode_to_vec(),
                ..Default::default()
            };
            (protocol.encode_to_vec(), author.public_key().to_uncompressed().to_vec())
        })
        .collect()
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let per_archive: usize = args.get(2).map_or(Ok(10_000), |s| s.parse())?.max(1);
    let tmp = tempfile::tempdir()?;
    let dir = args.get(3).map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir)?;

    // The community (control node key fixed) and its two channels.
    let community_sk = "c6cbd7d76bc5baca530c875663711b947efa6a86a900a9e8645ce32e5821484e";
    let key = chs_community::parse_private_key(community_sk)?;
    let id = chs_community::CommunityId::from_public_key(&key.public_key());
    let chats =
        [format!("{id}aaaaaaaa-0000-4000-8000-000000000001"), format!("{id}bbbbbbbb-0000-4000-8000-000000000002")];
    let topics: Vec<[u8; 4]> = chats.iter().map(|c| *chs_status::Topic::from_chat_id(c).as_bytes()).collect();
    let t0 = Instant::now();
    let bodies = payloads(&chats[0]);
    println!("generated {DISTINCT_PAYLOADS} signed chat payloads in {:.2?}", t0.elapsed());

    // Archives: windows of `per_archive` messages, 1 message per second.
    let mut archives: Vec<(String, WakuMessageArchiveMetadata, Vec<ArchivedMessage>)> = Vec::new();
    let mut rng = 7u64;
    for (n, start) in (0..total).step_by(per_archive).enumerate() {
        let end = (start + per_archive).min(total);
        let from = START_SECS + start as u64;
        let to = START_SECS + end as u64;
        let msgs: Vec<ArchivedMessage> = (start..end)
            .map(|i| {
                let (payload, sig) = &bodies[i % DISTINCT_PAYLOADS];
                let mut hash = [0u8; 32];
                for chunk in hash.chunks_mut(8) {
                    chunk.copy_from_slice(&splitmix(&mut rng).to_le_bytes());
                }
                ArchivedMessage {
                    sig: sig.clone(),
                    timestamp: START_SECS + i as u64,
                    topic: topics[i % 2].to_vec(),
                    payload: payload.clone(),
                    padding: vec![0x5a; (splitmix(&mut rng) % 64) as usize],
                    hash: hash.to_vec(),
                    third_party_id: String::new(),
                }
            })
            .collect();
        let meta = WakuMessageArchiveMetadata {
            version: 1,
            from,
            to,
            content_topic: topics.iter().map(|t| t.to_vec()).collect(),
        };
        let archive_id = format!("0x{:064x}", n + 1);
        archives.push((archive_id, meta, msgs));
    }
    let payload_bytes: usize =
        archives.iter().flat_map(|a| a.2.iter()).map(|m| m.payload.len() + m.padding.len()).sum();
    println!("{total} messages in {} archives, {:.1} MB payload+padding", archives.len(), payload_bytes as f64 / 1e6);

    // Baseline: plain batched INSERT of the same rows. Run twice (before and after the deferred
    // import, into fresh files) and the faster run is used, so that machine noise can only make
    // the ratio worse.
    let rows: Vec<Vec<StoredMessage>> = archives
        .iter()
        .map(|(_, _, msgs)| {
            msgs.iter().map(|m| StoredMessage::from_archive_message("/waku/2/rs/16/32", m, 0).unwrap()).collect()
        })
        .collect();
    let baseline = |name: &str| -> Result<f64, Box<dyn Error>> {
        let path = dir.join(name);
        let mut store = Store::open(&path)?;
        let t = Instant::now();
        plain_insert(store.connection_mut(), &rows)?;
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(store.count()?, total as u64);
        drop(store);
        remove_db(&path);
        println!("baseline (plain batched INSERT): {secs:.2} s, {:.0} msgs/s", total as f64 / secs);
        Ok(secs)
    };
    let baseline_first = baseline("baseline-1.db")?;

    // Canonical import, history decoding deferred (the transaction's work), then the decode pass.
    let (deferred_secs, decode_secs, decoded, undecodable) = {
        let path = dir.join("import-deferred.db");
        let mut store = Store::open(&path)?;
        let communities = Communities::open(&mut store)?;
        communities.join(&mut store, &id, None)?;
        let t = Instant::now();
        for (archive_id, meta, msgs) in &archives {
            let report = communities.import_archive_with(
                &mut store,
                &id,
                &ArchiveImport { archive_id, metadata: meta, messages: msgs },
                DecodeMode::Deferred,
            )?;
            assert_eq!(report.pending_decode, msgs.len());
        }
        let import_secs = t.elapsed().as_secs_f64();
        assert_eq!(store.count()?, total as u64);
        println!("canonical import (decode deferred): {import_secs:.2} s, {:.0} msgs/s", total as f64 / import_secs);
        let t = Instant::now();
        let report = communities.decode_pending_history(&mut store, &id, usize::MAX)?;
        let decode_secs = t.elapsed().as_secs_f64();
        println!(
            "  deferred history decode pass: {decode_secs:.2} s, {:.0} msgs/s ({} decoded, {} undecodable)",
            total as f64 / decode_secs,
            report.decoded,
            report.undecodable
        );
        report_history(&communities, &mut store, &id, &path)?;
        drop(store);
        remove_db(&path);
        (import_secs, decode_secs, report.decoded, report.undecodable)
    };
    let baseline_secs = baseline_first.min(baseline("baseline-2.db")?);
    let baseline_rate = total as f64 / baseline_secs;
    let deferred_rate = total as f64 / deferred_secs;
    let decode_rate = total as f64 / decode_secs;
    let ratio = deferred_rate / baseline_rate;

    // Canonical import with the history decoded inside the import (one ECDSA recovery per message).
    let immediate_secs = {
        let path = dir.join("import-immediate.db");
        let mut store = Store::open(&path)?;
        let communities = Communities::open(&mut store)?;
        communities.join(&mut store, &id, None)?;
        let t = Instant::now();
        for (archive_id, meta, msgs) in &archives {
            let report = communities.import_archive(
                &mut store,
                &id,
                &ArchiveImport { archive_id, metadata: meta, messages: msgs },
            )?;
            assert_eq!(report.decoded, msgs.len());
        }
        let secs = t.elapsed().as_secs_f64();
        drop(store);
        remove_db(&path);
        secs
    };
    let immediate_rate = total as f64 / immediate_secs;
    let immediate_ratio = immediate_rate / baseline_rate;
    println!("canonical import (decode immediate): {immediate_secs:.2} s, {immediate_rate:.0} msgs/s");
    println!(
        "ratio import (deferred) / baseline: {ratio:.2} (goal >= 0.7); immediate / baseline: {immediate_ratio:.2}"
    );
    println!(
        "BENCH_JSON {{\"bench\":\"import\",\"messages\":{total},\"per_archive\":{per_archive},\"baseline_msgs_per_s\":{baseline_rate:.0},\"import_deferred_msgs_per_s\":{deferred_rate:.0},\"ratio\":{ratio:.3},\"decode_pass_msgs_per_s\":{decode_rate:.0},\"import_immediate_msgs_per_s\":{immediate_rate:.0},\"ratio_immediate\":{immediate_ratio:.3},\"decoded\":{decoded},\"undecodable\":{undecodable}}}"
    );
    Ok(())
}

fn report_history(
    communities: &Communities,
    store: &mut Store,
    id: &chs_community::CommunityId,
    path: &Path,
) -> Result<(), Box<dyn Error>> {
    let t = Instant::now();
    let history = communities.history(store, id)?;
    println!(
        "history query: {} rows in {:.2?}; db file {:.1} MB",
        history.len(),
        t.elapsed(),
        std::fs::metadata(path)?.len() as f64 / 1e6
    );
    Ok(())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

fn plain_insert(conn: &mut rusqlite::Connection, batches: &[Vec<StoredMessage>]) -> rusqlite::Result<()> {
    for batch in batches {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO messages (hash, pubsub_topic, content_topic, topic, timestamp, timestamp_ns, version, meta, \
                 raw_payload, payload, padding, sig, third_party_id, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for m in batch {
                stmt.execute(rusqlite::params![
                    &m.hash[..],
                    m.pubsub_topic,
                    m.content_topic,
                    &m.topic[..],
                    m.timestamp_secs() as i64,
                    m.timestamp_ns,
                    m.version,
                    m.meta,
                    m.raw_payload,
                    m.payload,
                    m.padding,
                    m.sig,
                    m.third_party_id,
                    m.received_at_ms,
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}
