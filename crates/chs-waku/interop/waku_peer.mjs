// A real js-waku relay node (@waku/relay 0.0.14 on libp2p 1.9, TCP + noise + yamux) driven
// over stdin/stdout with one JSON object per line. Used by chs-waku's interop test.
//
// usage: node waku_peer.mjs <pubsub topic> <content topic>
//
// stdout events:
//   {"event":"ready","peerId":..,"addrs":[..]}
//   {"event":"peer-subscribed","peerId":..,"topic":..}
//   {"event":"gossip","topic":..,"msgId":<gossipsub id string>,"sha256Hex":..,"dataHex":..}
//   {"event":"message","pubsubTopic":..,"contentTopic":..,"payloadHex":..,"timestampNs":"..","version":..}
//   {"event":"published","recipients":n,"failures":[..],"sha256Hex":..}
//   {"event":"pong","peerId":..,"rttMs":n}   (answer to "ping": /ipfs/ping/1.0.0, as js-libp2p's keep-alive)
//   {"event":"error","message":..}
// stdin commands:
//   {"cmd":"publish","contentTopic":..,"payloadHex":..,"timestampMs":n}
//   {"cmd":"ping","peerId":..}
//   {"cmd":"quit"}
import "./polyfill.mjs";

import { createHash } from "node:crypto";
import readline from "node:readline";

import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { createDecoder, createEncoder, relay as wakuRelayModule } from "@waku/sdk";
// libp2p, noise, identify and ping are the exact versions @waku/sdk 0.0.27 depends on (see package-lock.json).
import { createLibp2p } from "libp2p";

const { wakuGossipSub, wakuRelay } = wakuRelayModule;

const PUBSUB_TOPIC = process.argv[2] ?? "/waku/2/rs/16/32";
const CONTENT_TOPIC = process.argv[3] ?? "/chs/1/interop/proto";

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const sha256Hex = (bytes) => createHash("sha256").update(bytes).digest("hex");

async function main() {
  const node = await createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    streamMuxers: [yamux()],
    connectionEncryption: [noise()],
    services: { identify: identify(), ping: ping(), pubsub: wakuGossipSub() },
  });
  const relay = wakuRelay([PUBSUB_TOPIC])(node);
  const pubsub = node.services.pubsub;

  pubsub.addEventListener("subscription-change", (event) => {
    const peerId = event.detail.peerId.toString();
    for (const { topic, subscribe } of event.detail.subscriptions) {
      if (subscribe && topic === PUBSUB_TOPIC) emit({ event: "peer-subscribed", peerId, topic });
    }
  });
  pubsub.addEventListener("gossipsub:message", (event) => {
    const { msgId, msg } = event.detail;
    emit({ event: "gossip", topic: msg.topic, msgId, sha256Hex: sha256Hex(msg.data), dataHex: hex(msg.data) });
  });
  relay.subscribe([createDecoder(CONTENT_TOPIC, PUBSUB_TOPIC)], (message) => {
    emit({
      event: "message",
      pubsubTopic: message.pubsubTopic,
      contentTopic: message.contentTopic,
      payloadHex: hex(message.payload),
      timestampNs: message._rawTimestamp === undefined ? null : message._rawTimestamp.toString(),
      version: message.version,
    });
  });

  emit({ event: "ready", peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) });

  const quit = async () => {
    await node.stop();
    process.exit(0);
  };
  const lines = readline.createInterface({ input: process.stdin });
  lines.on("close", quit);
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const command = JSON.parse(line);
      if (command.cmd === "publish") {
        const encoder = createEncoder({ pubsubTopic: PUBSUB_TOPIC, contentTopic: command.contentTopic });
        const message = {
          payload: Uint8Array.from(Buffer.from(command.payloadHex, "hex")),
          timestamp: new Date(command.timestampMs),
        };
        // The bytes relay.send puts on the wire (same encoder, same explicit timestamp).
        const wire = await encoder.toWire(message);
        const result = await relay.send(encoder, message);
        emit({
          event: "published",
          recipients: result.successes.length,
          failures: result.failures.map((f) => String(f.error)),
          sha256Hex: sha256Hex(wire),
        });
      } else if (command.cmd === "ping") {
        const peer = node.getPeers().find((p) => p.toString() === command.peerId);
        if (!peer) throw new Error(`not connected to ${command.peerId}`);
        const rttMs = await node.services.ping.ping(peer);
        emit({ event: "pong", peerId: command.peerId, rttMs });
      } else if (command.cmd === "quit") {
        await quit();
      } else {
        emit({ event: "error", message: `unknown command ${line}` });
      }
    } catch (err) {
      emit({ event: "error", message: String(err?.stack ?? err) });
    }
  }
}

main().catch((err) => {
  emit({ event: "error", message: String(err?.stack ?? err) });
  process.exit(1);
});
