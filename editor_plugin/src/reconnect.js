// Keeps a status watch open: reconnects with exponential backoff.
import { callSafely } from "./bus.js";

/** The delay after `previous` ms: doubling from `min`, at most `max`. */
export function nextDelay(previous, { min = 1000, max = 30000 } = {}) {
  return previous ? Math.min(previous * 2, max) : min;
}

/**
 * Watches through `watch` (see createWatchHub) and reopens the stream whenever it ends or
 * fails, waiting 1 s, 2 s, 4 s … up to 30 s; any message (snapshot, status, job or
 * heartbeat) resets the wait to 1 s. `onState` gets "connecting", "open" (first message
 * of a stream, i.e. its snapshot) and "closed" (stream over; another attempt follows
 * unless close() was called). `onError` gets each failure as a GitOpsError.
 * Returns close().
 */
export function connectWatch(watch, { onMessage, onState, onError, minDelayMs = 1000, maxDelayMs = 30000 } = {}) {
  const limits = { min: minDelayMs, max: maxDelayMs };
  let closed = false;
  let stop = null;
  let timer = null;
  let delay = 0;
  let state = null;
  const setState = (next) => {
    if (next !== state) {
      state = next;
      callSafely(onState, next);
    }
  };

  function attempt() {
    timer = null;
    if (closed) {
      return;
    }
    setState("connecting");
    stop = watch({
      onMessage(message) {
        delay = 0;
        setState("open");
        callSafely(onMessage, message);
      },
      onError(err) {
        callSafely(onError, err);
        retry();
      },
      onEnd: retry,
    });
  }

  function retry() {
    stop = null;
    if (closed) {
      return;
    }
    setState("closed");
    delay = nextDelay(delay, limits);
    timer = setTimeout(attempt, delay);
  }

  attempt();
  return function close() {
    if (closed) {
      return;
    }
    closed = true;
    clearTimeout(timer);
    stop?.();
    setState("closed");
  };
}
