// Node 20 lacks Promise.withResolvers, which it-queue and mortice (libp2p 1.x) use.
// Imported first by waku_peer.mjs, before anything from libp2p.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
