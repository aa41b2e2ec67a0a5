"""Fan-out of status and job events from the sync thread to asyncio stream subscribers.

The Board and the Store call `publish()` from any thread; each subscriber is an
asyncio queue on the server's event loop. A slow subscriber never blocks the
sync: its queue keeps the newest events and drops the oldest beyond a limit
(a later status event always carries the full state again).
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

MAX_QUEUED = 256


class EventHub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._subscribers: set[asyncio.Queue] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: str, payload: Any) -> None:
        """Thread-safe: hand an event to every subscriber."""
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self._deliver, (kind, payload))
        except RuntimeError:  # loop closed during shutdown
            pass

    def _deliver(self, event: tuple[str, Any]) -> None:
        for q in list(self._subscribers):
            if q.qsize() >= MAX_QUEUED:
                try:
                    q.get_nowait()
                except asyncio.QueueEmpty:
                    pass
            q.put_nowait(event)

    def open(self) -> "Subscription":
        """Register a subscriber now (so nothing published from here on is missed)."""
        sub = Subscription(self)
        self._subscribers.add(sub.queue)
        return sub

    def close(self) -> None:
        """End every stream cleanly (server shutdown)."""
        self.closed = True
        for q in list(self._subscribers):
            q.put_nowait(("_close", None))


class Subscription:
    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.queue: asyncio.Queue = asyncio.Queue()

    async def events(self, heartbeat: float) -> AsyncIterator[tuple[str, Any]]:
        """Yields (kind, payload), and ("heartbeat", None) after `heartbeat` quiet seconds;
        ends when the hub closes."""
        try:
            while True:
                if self.queue.empty():
                    try:
                        async with asyncio.timeout(heartbeat):  # cheaper than wait_for: no extra task
                            event = await self.queue.get()
                    except TimeoutError:
                        yield ("heartbeat", None)
                        continue
                else:
                    event = self.queue.get_nowait()
                if event[0] == "_close":
                    return
                yield event
        finally:
            self.close()

    def close(self) -> None:
        self.hub._subscribers.discard(self.queue)
