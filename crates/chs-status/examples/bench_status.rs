//! Benchmark: decode + verify of 100,000 magnetlink and chat messages, against the bare cost
//! of what each message needs (AES-256-GCM decryption and two ECDSA key recoveries), measured
//! in the same run.
//!
//! Then chat-key derivation (PBKDF2-HMAC-SHA256, 65,356 rounds: every chat a node follows pays
//! it once), chs against RustCrypto's `pbkdf2` crate and OpenSSL's `PKCS5_PBKDF2_HMAC` (through
//! Python's `hashlib`, timed inside Python), with SHA-256's compression rate as the limit.
//!
//! Run: `cargo run --release -p chs-status --example bench_status [N]`.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use chs_proto::Message as _;
use chs_proto::protobuf::{ApplicationMetadataMessage, ChatMessage};
use chs_proto::waku::WakuMessage;
use chs_status::envelope::{open_envelope, unwrap_status};
use chs_status::history::{ChatMessageParams, build_chat_message};
use chs_status::{
    ChatKeyCache, ChatKeyRing, CommunityId, MagnetlinkChannel, MagnetlinkParams, build_magnetlink, parse_magnetlink,
};
use chs_waku_payload::{NonceSource, PBKDF2_ITERATIONS, Padding, PublicKey, SecretKey, SymmetricKey, keccak256};

const DISTINCT: usize = 1_000;
const CHANNEL: &str = "0b8c3a52-7d2e-4f7e-9c3b-1a2b3c4d5e6f";
const PUBSUB: &str = "/waku/2/rs/16/32";

/// What the baseline needs for one message, prepared outside the timed loop.
struct Bare {
    key: SymmetricKey,
    payload: Vec<u8>,
    payload_hash: [u8; 32],
    payload_signature: Vec<u8>,
    amm_hash: [u8; 32],
    amm_signature: Vec<u8>,
}

/// Chat keys derived per measurement.
const KEYS: usize = 24;

/// Times `KEYS` derivations of distinct chat ids with chs, the `pbkdf2` crate and OpenSSL
/// (interleaved, best of 3 each), and SHA-256's raw compression rate; prints and emits
/// `BENCH_JSON` for `status_chat_key`.
fn bench_chat_keys() {
    let ids: Vec<String> = (0..KEYS).map(|i| format!("0x02{i:064x}-magnetlinks")).collect();
    let mut best = [f64::MAX; 3];
    let mut openssl_ok = true;
    for _ in 0..3 {
        let t = Instant::now();
        for id in &ids {
            black_box(SymmetricKey::from_password(black_box(id)));
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for id in &ids {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(black_box(id.as_bytes()), b"", PBKDF2_ITERATIONS, &mut out);
            black_box(out);
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        match openssl_pbkdf2_secs(&ids) {
            Some(secs) => best[2] = best[2].min(secs),
            None => openssl_ok = false,
        }
    }
    // The limit: 2 compressions per round (inner and outer HMAC), at the raw rate.
    let blocks = [[0x5au8; 64]; 64];
    let mut state = [0u32; 8];
    let rounds = 20_000;
    let t = Instant::now();
    for _ in 0..rounds {
        sha2::block_api::compress256(&mut state, black_box(&blocks));
    }
    black_box(state);
    let compress_ns = t.elapsed().as_secs_f64() * 1e9 / (rounds * blocks.len()) as f64;
    let limit_ms = 2.0 * f64::from(PBKDF2_ITERATIONS) * compress_ns / 1e6;
    let per_key = |secs: f64| secs * 1000.0 / KEYS as f64;
    let (ours, rustcrypto) = (per_key(best[0]), per_key(best[1]));
    let openssl = if openssl_ok { per_key(best[2]) } else { f64::NAN };
    // The strongest anchor: the faster of the two others.
    let anchor = if openssl.is_finite() { openssl.min(rustcrypto) } else { rustcrypto };
    println!("chat key derivation (PBKDF2-HMAC-SHA256, 65,356 rounds, {KEYS} keys, best of 3, one core):");
    println!("  chs:                         {ours:>7.2} ms/key");
    println!("  RustCrypto pbkdf2 crate:     {rustcrypto:>7.2} ms/key");
    println!("  OpenSSL (Python hashlib):    {openssl:>7.2} ms/key");
    println!("  limit (2 x 65,356 SHA-256 compressions at {compress_ns:.1} ns): {limit_ms:.2} ms/key");
    println!(
        "BENCH_JSON {{\"bench\":\"status_chat_key\",\"keys\":{KEYS},\"ms_per_key\":{ours:.3},\"rustcrypto_ms_per_key\":{rustcrypto:.3},\"openssl_ms_per_key\":{},\"anchor_ms_per_key\":{anchor:.3},\"ratio\":{:.3},\"limit_ms_per_key\":{limit_ms:.3},\"goal_ratio\":1.0}}",
        if openssl.is_finite() { format!("{openssl:.3}") } else { "null".to_owned() },
        anchor / ours,
    );
}

/// Seconds OpenSSL's PBKDF2 (Python's `hashlib.pbkdf2_hmac`) takes for `ids`, timed inside
/// Python; `None` without a `python3`.
fn openssl_pbkdf2_secs(ids: &[String]) -> Option<f64> {
    let script = "import hashlib,sys,time\nids=sys.stdin.read().split()\nt=time.perf_counter()\nfor i in ids: hashlib.pbkdf2_hmac('sha256', i.encode(), b'', 65356, 32)\nprint(time.perf_counter()-t)";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take()?;
        stdin.write_all(ids.join("\n").as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn main() {
    bench_chat_keys();
    let total: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(100_000);
    let cache = ChatKeyCache::new();
    let community_key = SecretKey::from_bytes(&keccak256(b"bench community")).unwrap();
    let identity = SecretKey::from_bytes(&keccak256(b"bench identity")).unwrap();
    let community = CommunityId::from_secret_key(&community_key);
    let authors: Vec<SecretKey> = (0u8..10).map(|i| SecretKey::from_bytes(&keccak256(&[b'm', i])).unwrap()).collect();

    // Half magnetlinks, half chat messages, all distinct.
    let mut encoded = Vec::with_capacity(DISTINCT);
    for i in 0..DISTINCT {
        let built = if i.is_multiple_of(2) {
            let magnet = format!("magnet:?xt=urn:btih:{:040x}&dn={community}", i);
            let params = MagnetlinkParams {
                community_key: &community_key,
                identity_key: &identity,
                magnet_uri: &magnet,
                clock: 1_729_728_000_000 + i as u64,
                installation_id: "b5e2ba1f-0000-4000-8000-000000000001",
                bundle: None,
                timestamp_ns: 1_729_728_000_000_000_000,
                channel: MagnetlinkChannel::Magnetlinks,
                padding: Padding::Random,
                nonce: NonceSource::Random,
            };
            build_magnetlink(&params, &cache).unwrap()
        } else {
            let text = format!("message {i}: the quick brown fox jumps over the lazy dog");
            let params = ChatMessageParams {
                author: &authors[i % authors.len()],
                community: &community,
                channel_uuid: CHANNEL,
                text: &text,
                clock: i as u64,
                timestamp_ms: 1_729_728_000_000 + i as u64,
                display_name: "",
                installation_id: "member",
                bundle: None,
                timestamp_ns: 1_729_728_000_000_000_000,
                padding: Padding::Random,
                nonce: NonceSource::Random,
            };
            build_chat_message(&params, &cache).unwrap()
        };
        encoded.push(built.encoded());
    }
    let magnetlink_ring = ChatKeyRing::for_magnetlinks(&community, &cache);
    let channel_ring = ChatKeyRing::for_channels(&community, [CHANNEL], &cache);

    // Baseline inputs: the key, the encrypted payload, both prehashes and both signatures.
    let bare: Vec<Bare> = encoded
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let message = WakuMessage::decode(bytes.as_slice()).unwrap();
            let ring = if i.is_multiple_of(2) { &magnetlink_ring } else { &channel_ring };
            let opened = open_envelope(&message, ring).unwrap();
            let plaintext = opened.payload.plaintext();
            let split = plaintext.len() - 65;
            let status = unwrap_status(opened.payload.data(), &opened.transport_signer).unwrap();
            Bare {
                key: opened.chat_key.key,
                payload: message.payload.clone(),
                payload_hash: keccak256(&plaintext[..split]),
                payload_signature: plaintext[split..].to_vec(),
                amm_hash: keccak256(&status.amm.payload),
                amm_signature: status.amm.signature.clone(),
            }
        })
        .collect();

    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // The loops run interleaved in chunks, so that load from other processes on the machine
    // hits all of them alike.
    let chunk = 5_000.min(total.max(1));
    let mut t = Times::default();
    let (mut accepted, mut recovered) = (0usize, 0usize);
    let mut done = 0usize;
    while done < total {
        let count = chunk.min(total - done);
        let range = done..done + count;

        let start = Instant::now();
        accepted += full_path(range.clone(), &encoded, &community, &magnetlink_ring, &channel_ring);
        t.full += start.elapsed();

        let start = Instant::now();
        recovered += floor_libsecp256k1(range.clone(), &bare);
        t.floor_secp += start.elapsed();

        let start = Instant::now();
        recovered += floor_k256(range.clone(), &bare);
        t.floor_k256 += start.elapsed();

        // One recovery alone, each crate (the evidence for the crate chs uses).
        let start = Instant::now();
        for i in range.clone() {
            let item = &bare[i % DISTINCT];
            recovered += usize::from(PublicKey::recover(&item.payload_hash, &item.payload_signature).is_ok());
        }
        t.recover_chs += start.elapsed();
        let start = Instant::now();
        for i in range.clone() {
            let item = &bare[i % DISTINCT];
            recovered += usize::from(PublicKey::recover_k256(&item.payload_hash, &item.payload_signature).is_ok());
        }
        t.recover_k256 += start.elapsed();

        // All cores: the same work split over `threads` scoped threads.
        let start = Instant::now();
        accepted += on_all_cores(threads, range.clone(), |r| {
            full_path(r, &encoded, &community, &magnetlink_ring, &channel_ring)
        });
        t.full_all += start.elapsed();
        let start = Instant::now();
        recovered += on_all_cores(threads, range, |r| floor_libsecp256k1(r, &bare));
        t.floor_secp_all += start.elapsed();
        done += count;
    }
    assert_eq!(accepted, 2 * total, "every message must verify");
    assert_eq!(recovered, 5 * total);
    black_box(ApplicationMetadataMessage::default());

    let rate = |d: std::time::Duration| total as f64 / d.as_secs_f64();
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / total as f64;
    let full_rate = rate(t.full);
    let secp_rate = rate(t.floor_secp);
    let k256_rate = rate(t.floor_k256);
    let ratio = full_rate / secp_rate;
    let all_ratio = rate(t.full_all) / rate(t.floor_secp_all);
    println!(
        "messages: {total} ({DISTINCT} distinct, half magnetlinks, half chat messages), {threads} cores (shared machine)"
    );
    println!("one core:");
    println!("  chs decode+verify:                         {full_rate:>8.0} msgs/s  {:>7.2} us/msg", us(t.full));
    println!(
        "  floor libsecp256k1 (AES-GCM + 2 recoveries): {secp_rate:>6.0} msgs/s  {:>7.2} us/msg",
        us(t.floor_secp)
    );
    println!("  floor k256 (AES-GCM + 2 recoveries):       {k256_rate:>8.0} msgs/s  {:>7.2} us/msg", us(t.floor_k256));
    println!(
        "  one recovery: chs (libsecp256k1) {:.2} us, k256 {:.2} us (k256 / libsecp256k1 {:.2}x)",
        us(t.recover_chs),
        us(t.recover_k256),
        t.recover_k256.as_secs_f64() / t.recover_chs.as_secs_f64()
    );
    println!("  ratio chs / libsecp256k1 floor: {ratio:.3} (goal >= 0.8)");
    println!("all {threads} cores:");
    println!("  chs decode+verify:                         {:>8.0} msgs/s", rate(t.full_all));
    println!("  floor libsecp256k1:                        {:>8.0} msgs/s", rate(t.floor_secp_all));
    println!("  ratio chs / libsecp256k1 floor: {all_ratio:.3}");
    println!(
        "BENCH_JSON {{\"bench\":\"status_decode_verify\",\"messages\":{total},\"threads\":{threads},\"msgs_per_s\":{full_rate:.0},\"baseline_msgs_per_s\":{secp_rate:.0},\"baseline\":\"libsecp256k1\",\"k256_floor_msgs_per_s\":{k256_rate:.0},\"recover_us\":{:.2},\"recover_k256_us\":{:.2},\"ratio\":{ratio:.3},\"all_cores_msgs_per_s\":{:.0},\"all_cores_baseline_msgs_per_s\":{:.0},\"all_cores_ratio\":{all_ratio:.3},\"goal_ratio\":0.8}}",
        us(t.recover_chs),
        us(t.recover_k256),
        rate(t.full_all),
        rate(t.floor_secp_all),
    );
}

#[derive(Default)]
struct Times {
    full: std::time::Duration,
    floor_secp: std::time::Duration,
    floor_k256: std::time::Duration,
    recover_chs: std::time::Duration,
    recover_k256: std::time::Duration,
    full_all: std::time::Duration,
    floor_secp_all: std::time::Duration,
}

/// Full path: protobuf decode of the WakuMessage, every layer, every check. Returns the count
/// of accepted messages.
fn full_path(
    range: std::ops::Range<usize>,
    encoded: &[Vec<u8>],
    community: &CommunityId,
    magnetlink_ring: &ChatKeyRing,
    channel_ring: &ChatKeyRing,
) -> usize {
    let mut accepted = 0;
    for i in range {
        let index = i % DISTINCT;
        let message = WakuMessage::decode(black_box(encoded[index].as_slice())).unwrap();
        if index.is_multiple_of(2) {
            let verdict = parse_magnetlink(&message, PUBSUB, community, magnetlink_ring);
            accepted += usize::from(verdict.is_ok());
        } else {
            let ok = open_envelope(&message, channel_ring)
                .and_then(|opened| unwrap_status(opened.payload.data(), &opened.transport_signer))
                .map(|status| status.amm.r#type == 1 && ChatMessage::decode(status.amm.payload.as_slice()).is_ok());
            accepted += usize::from(ok == Ok(true));
        }
    }
    accepted
}

/// The floor with Bitcoin Core's libsecp256k1 (the `secp256k1` crate called directly):
/// AES-256-GCM decryption plus two key recoveries per message, nothing else.
fn floor_libsecp256k1(range: std::ops::Range<usize>, bare: &[Bare]) -> usize {
    let recover = |hash: &[u8; 32], sig: &[u8]| {
        let id = secp256k1::ecdsa::RecoveryId::from_u8_masked(sig[64]);
        secp256k1::ecdsa::RecoverableSignature::from_compact(&sig[..64], id)
            .and_then(|s| s.recover_ecdsa(secp256k1::Message::from_digest(*hash)))
            .is_ok()
    };
    let mut ok = 0;
    for i in range {
        let item = &bare[i % DISTINCT];
        let plaintext = aes_gcm_open(&item.key, black_box(&item.payload));
        let first = recover(&item.payload_hash, &item.payload_signature);
        let second = recover(&item.amm_hash, &item.amm_signature);
        ok += usize::from(plaintext && first && second);
    }
    ok
}

/// The same floor with k256 (the crate chs used before).
fn floor_k256(range: std::ops::Range<usize>, bare: &[Bare]) -> usize {
    let mut ok = 0;
    for i in range {
        let item = &bare[i % DISTINCT];
        let plaintext = aes_gcm_open(&item.key, black_box(&item.payload));
        let first = PublicKey::recover_k256(&item.payload_hash, &item.payload_signature);
        let second = PublicKey::recover_k256(&item.amm_hash, &item.amm_signature);
        ok += usize::from(plaintext && first.is_ok() && second.is_ok());
    }
    ok
}

/// AES-256-GCM with the nonce appended (26/WAKU2-PAYLOAD), through the `aes-gcm` crate directly.
fn aes_gcm_open(key: &SymmetricKey, wire: &[u8]) -> bool {
    use aes_gcm::aead::{Aead as _, KeyInit as _};
    let (ciphertext, nonce) = wire.split_at(wire.len() - 12);
    let cipher = aes_gcm::Aes256Gcm::new(&aes_gcm::Key::<aes_gcm::Aes256Gcm>::from(*key.as_bytes()));
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    cipher.decrypt(&aes_gcm::Nonce::from(n), ciphertext).is_ok()
}

/// Splits `range` into `threads` contiguous parts run on scoped threads; sums their results.
fn on_all_cores(
    threads: usize,
    range: std::ops::Range<usize>,
    work: impl Fn(std::ops::Range<usize>) -> usize + Sync,
) -> usize {
    let per = range.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let lo = (range.start + k * per).min(range.end);
                let hi = (lo + per).min(range.end);
                let work = &work;
                scope.spawn(move || work(lo..hi))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}
