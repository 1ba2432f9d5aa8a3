//! Benchmark: decode + verify of 100,000 magnetlink and chat messages, against the bare cost
//! of what each message needs (AES-256-GCM decryption and two ECDSA key recoveries), measured
//! in the same run.
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
use chs_waku_payload::{NonceSource, Padding, PublicKey, SecretKey, SymmetricKey, keccak256};

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

fn main() {
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

    // The two loops run interleaved in chunks, so that load from other processes on the
    // machine hits both alike.
    let chunk = 5_000.min(total.max(1));
    let mut full = std::time::Duration::ZERO;
    let mut baseline = std::time::Duration::ZERO;
    let (mut accepted, mut recovered) = (0usize, 0usize);
    let mut done = 0usize;
    while done < total {
        let count = chunk.min(total - done);
        let range = done..done + count;

        // Full path: protobuf decode of the WakuMessage, every layer, every check.
        let start = Instant::now();
        for i in range.clone() {
            let index = i % DISTINCT;
            let message = WakuMessage::decode(black_box(encoded[index].as_slice())).unwrap();
            if index.is_multiple_of(2) {
                let verdict = parse_magnetlink(&message, PUBSUB, &community, &magnetlink_ring);
                accepted += usize::from(verdict.is_ok());
            } else {
                let ok = open_envelope(&message, &channel_ring)
                    .and_then(|opened| unwrap_status(opened.payload.data(), &opened.transport_signer))
                    .map(|status| status.amm.r#type == 1 && ChatMessage::decode(status.amm.payload.as_slice()).is_ok());
                accepted += usize::from(ok == Ok(true));
            }
        }
        full += start.elapsed();

        // Baseline: AES-256-GCM decryption plus two ECDSA recoveries per message, nothing else.
        let start = Instant::now();
        for i in range {
            let item = &bare[i % DISTINCT];
            let plaintext = chs_waku_payload::decrypt_symmetric(&item.key, black_box(&item.payload));
            let first = PublicKey::recover(&item.payload_hash, &item.payload_signature);
            let second = PublicKey::recover(&item.amm_hash, &item.amm_signature);
            recovered += usize::from(plaintext.is_ok() && first.is_ok() && second.is_ok());
        }
        baseline += start.elapsed();
        done += count;
    }
    assert_eq!(accepted, total, "every message must verify");
    assert_eq!(recovered, total);
    black_box(ApplicationMetadataMessage::default());

    let full_rate = total as f64 / full.as_secs_f64();
    let baseline_rate = total as f64 / baseline.as_secs_f64();
    let ratio = full_rate / baseline_rate;
    println!("messages: {total} ({DISTINCT} distinct, half magnetlinks, half chat messages)");
    println!(
        "decode+verify: {:.3} s, {full_rate:.0} msgs/s, {:.2} us/msg",
        full.as_secs_f64(),
        full.as_secs_f64() * 1e6 / total as f64
    );
    println!(
        "baseline (AES-GCM + 2 ECDSA recoveries): {:.3} s, {baseline_rate:.0} msgs/s, {:.2} us/msg",
        baseline.as_secs_f64(),
        baseline.as_secs_f64() * 1e6 / total as f64
    );
    println!("ratio (full rate / baseline rate): {ratio:.3} (goal >= 0.8)");
    println!(
        "BENCH_JSON {{\"bench\":\"status_decode_verify\",\"messages\":{total},\"msgs_per_s\":{full_rate:.0},\"baseline_msgs_per_s\":{baseline_rate:.0},\"ratio\":{ratio:.3},\"goal_ratio\":0.8}}"
    );
}
