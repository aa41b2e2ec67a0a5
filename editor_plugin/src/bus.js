// A tiny event bus: one producer, any number of listeners inside the page.

/**
 * `subscribe(fn)` returns an unsubscribe function; `publish(value)` calls every listener
 * subscribed at that moment. A listener that throws does not stop the others: its error
 * is rethrown asynchronously so it still shows in the console.
 */
export function createBus() {
  const listeners = new Set();
  return {
    subscribe(fn) {
      const entry = { fn };
      listeners.add(entry);
      return () => listeners.delete(entry);
    },
    publish(value) {
      for (const entry of [...listeners]) {
        if (listeners.has(entry)) {
          callSafely(entry.fn, value);
        }
      }
    },
    get size() {
      return listeners.size;
    },
  };
}

export function callSafely(fn, ...args) {
  if (typeof fn !== "function") {
    return;
  }
  try {
    fn(...args);
  } catch (err) {
    setTimeout(() => {
      throw err;
    });
  }
}
