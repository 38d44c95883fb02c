"""The windows a circuit breaker judges its closed state by: the last N calls (a count window) or the
calls of the last S seconds (a time window, kept in buckets). Pure: the caller passes the time."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TIME_BUCKETS", "CountWindow", "TimeWindow", "WindowStats"]

TIME_BUCKETS = 20
"""A time-based window is kept as this many buckets, so a call is forgotten between
(TIME_BUCKETS - 1) / TIME_BUCKETS and 1 x window_seconds after it was recorded, and the
stored state stays small however many calls the window holds."""


@dataclass(frozen=True)
class WindowStats:
    """Calls in the closed-state window: how many, how many failed, how many were slow."""

    calls: int = 0
    failures: int = 0
    slow: int = 0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        return self.slow / self.calls if self.calls else 0.0


# ---- windows ------------------------------------------------------------------------------------
# Count window: the last `window` outcomes, one character each (compact in the KV value).
_CODES = {(False, False): "s", (False, True): "S", (True, False): "f", (True, True): "F"}
_DECODE = {code: key for key, code in _CODES.items()}


class CountWindow:
    def __init__(self, size: int) -> None:
        self._calls: deque[str] = deque(maxlen=size)
        self._failures = 0
        self._slow = 0

    def record(self, now: float, failed: bool, slow: bool) -> None:
        if len(self._calls) == self._calls.maxlen:
            self._count(self._calls[0], -1)
        code = _CODES[(failed, slow)]
        self._calls.append(code)
        self._count(code, +1)

    def _count(self, code: str, sign: int) -> None:
        failed, slow = _DECODE[code]
        self._failures += sign * failed
        self._slow += sign * slow

    def stats(self, now: float) -> WindowStats:
        return WindowStats(len(self._calls), self._failures, self._slow)

    def clear(self) -> None:
        self._calls.clear()
        self._failures = self._slow = 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": "count", "calls": "".join(self._calls)}

    def load(self, data: Mapping[str, Any]) -> None:
        if data.get("kind") != "count":
            return  # the settings changed from a time window: start over
        calls = str(data["calls"])
        if any(code not in _DECODE for code in calls):
            raise ValueError(f"bad call codes in window: {calls!r}")
        for code in calls:
            failed, slow = _DECODE[code]
            self.record(0.0, failed, slow)


class TimeWindow:
    def __init__(self, seconds: float) -> None:
        self._width = seconds / TIME_BUCKETS
        self._buckets: deque[list[int]] = deque()  # [bucket index, calls, failures, slow], oldest first

    def _index(self, now: float) -> int:
        return math.floor(now / self._width)

    def _expire(self, now: float) -> None:
        oldest_kept = self._index(now) - TIME_BUCKETS + 1
        while self._buckets and self._buckets[0][0] < oldest_kept:
            self._buckets.popleft()

    def record(self, now: float, failed: bool, slow: bool) -> None:
        self._expire(now)
        index = self._index(now)
        bucket = next((b for b in reversed(self._buckets) if b[0] == index), None)
        if bucket is None:
            bucket = [index, 0, 0, 0]
            self._buckets.append(bucket)
            if len(self._buckets) > 1 and self._buckets[-2][0] > index:  # the clock stepped back
                self._buckets = deque(sorted(self._buckets))
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow

    def stats(self, now: float) -> WindowStats:
        self._expire(now)
        return WindowStats(sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets),
                           sum(b[3] for b in self._buckets))

    def clear(self) -> None:
        self._buckets.clear()

    def to_json(self) -> dict[str, Any]:
        return {"kind": "time", "width": self._width, "buckets": [list(b) for b in self._buckets]}

    def load(self, data: Mapping[str, Any]) -> None:
        if data.get("kind") != "time" or not math.isclose(float(data["width"]), self._width):
            return  # the settings changed the window: start over
        buckets = []
        for b in data["buckets"]:
            index, calls, failures, slow = (int(x) for x in b)
            if not 0 <= failures <= calls or not 0 <= slow <= calls:
                raise ValueError(f"bad window bucket {b!r}")
            buckets.append([index, calls, failures, slow])
        self._buckets = deque(sorted(buckets))
