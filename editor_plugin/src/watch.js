// One WatchStatus stream per page, shared by every watcher in it.
//
// Browsers allow six HTTP/1.1 connections per host and each gRPC-web stream holds one,
// so the tab, the header badge and anything else in the editor listen to the same
// stream. A watcher that joins late gets the latest status as its snapshot (the server
// sends a snapshot only when a stream opens).
import { callSafely, createBus } from "./bus.js";
import { GitOpsError, toClientError } from "./errors.js";

/**
 * `open(signal)` opens a stream and returns an async iterable of WatchStatusResponse
 * as plain proto3 JSON objects. `idleMs`: with no message (heartbeats included) for this
 * long the stream is taken as dead and ends with code "unavailable" (HTTP/1.1 has no
 * ping; the server sends a heartbeat after 15 s of silence). 0 disables it.
 *
 * Returns `watch({onMessage, onError, onEnd})` → `close()`. Every watcher sees the end of
 * the shared stream (onEnd on a clean end, onError(GitOpsError) otherwise) and is then
 * dropped; the next watch() opens a new stream. close() of the last watcher aborts it.
 */
export function createWatchHub(open, { idleMs = 45000 } = {}) {
  let current = null;

  function start() {
    const stream = { bus: createBus(), controller: new AbortController(), last: null, idle: false };
    current = stream;
    pump(stream);
    return stream;
  }

  async function pump(stream) {
    let timer = null;
    const armIdle = () => {
      clearTimeout(timer);
      if (idleMs > 0) {
        timer = setTimeout(() => {
          stream.idle = true;
          stream.controller.abort();
        }, idleMs);
      }
    };
    let error = null;
    try {
      armIdle();
      for await (const message of open(stream.controller.signal)) {
        armIdle();
        const status = message.snapshot ?? message.status;
        if (status) {
          stream.last = status;
        }
        stream.bus.publish({ message });
      }
    } catch (err) {
      if (stream.idle) {
        error = new GitOpsError("unavailable", `no message from the sidecar for ${Math.round(idleMs / 1000)} s`);
      } else if (!stream.controller.signal.aborted) {
        error = toClientError(err);
      }
    } finally {
      clearTimeout(timer);
    }
    if (current === stream) {
      current = null;
    }
    stream.bus.publish(error ? { error } : { end: true });
  }

  return function watch({ onMessage, onError, onEnd } = {}) {
    const stream = current ?? start();
    let done = false;
    const unsubscribe = stream.bus.subscribe((event) => {
      if (event.message) {
        callSafely(onMessage, event.message);
        return;
      }
      done = true;
      unsubscribe();
      if (event.error) {
        callSafely(onError, event.error);
      } else {
        callSafely(onEnd);
      }
    });
    if (stream.last) {
      const snapshot = { snapshot: stream.last };
      queueMicrotask(() => {
        if (!done) {
          callSafely(onMessage, snapshot);
        }
      });
    }
    return function close() {
      if (done) {
        return;
      }
      done = true;
      unsubscribe();
      if (stream.bus.size === 0) {
        if (current === stream) {
          current = null;
        }
        stream.controller.abort();
      }
    };
  };
}
