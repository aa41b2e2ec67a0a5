"""Time, behind a tiny interface so schedules can be driven in tests and benchmarks."""
from __future__ import annotations

import time
from datetime import datetime, timezone


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


def iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")
