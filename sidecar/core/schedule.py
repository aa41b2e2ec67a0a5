"""When to sync: the timer with jitter, backoff after failures, and trigger coalescing."""
from __future__ import annotations

import random
from dataclasses import dataclass

MAX_JITTER = 60.0
FIRST_RETRY = 30.0

# Trigger kinds, strongest first: a stronger trigger absorbs a weaker waiting one.
TRIGGER_RANK = {"approve": 0, "retry": 1, "force": 2, "webhook": 3, "resume": 4, "startup": 5, "push": 6, "push_retry": 7, "timer": 8}


def next_check(now: float, interval: float, rng: random.Random, max_jitter: float = MAX_JITTER) -> float:
    """The next timer check: `interval` seconds plus uniform 0–`max_jitter` s of jitter."""
    return now + interval + rng.uniform(0.0, max_jitter)


def first_check(now: float, startup_jitter: float, rng: random.Random) -> float:
    """When a freshly started sidecar checks first: at once, or spread over
    `startup_jitter` seconds so a fleet restarted together does not hit Git at once."""
    return now + (rng.uniform(0.0, startup_jitter) if startup_jitter > 0 else 0.0)


def retry_delay(consecutive_failures: int, interval: float) -> float:
    """Backoff after failures: 30 s, 60 s, 120 s … never longer than the interval."""
    if consecutive_failures <= 0:
        return interval
    return min(FIRST_RETRY * (2 ** (consecutive_failures - 1)), interval)


@dataclass(frozen=True)
class Trigger:
    kind: str
    detail: str = ""  # e.g. the job id a retry refers to


class Coalescer:
    """At most one sync runs and at most one waits; later triggers merge into the waiting one.

    Not thread-safe by itself: the service calls it under its lock.
    """

    def __init__(self) -> None:
        self.running: Trigger | None = None
        self.waiting: Trigger | None = None

    def offer(self, trigger: Trigger) -> str:
        """Returns "queued" (now waiting) or "coalesced" (merged into the waiting one)."""
        if self.waiting is None:
            self.waiting = trigger
            return "queued"
        if TRIGGER_RANK.get(trigger.kind, 99) < TRIGGER_RANK.get(self.waiting.kind, 99):
            self.waiting = trigger
        return "coalesced"

    def take(self) -> Trigger | None:
        """Start the waiting trigger if nothing runs; returns it, or None."""
        if self.running is not None or self.waiting is None:
            return None
        self.running, self.waiting = self.waiting, None
        return self.running

    def done(self) -> None:
        self.running = None
