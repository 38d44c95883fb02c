"""The broker's time as this process can know it, without trusting its own wall clock.

The broker stamps every message it stores (its own clock). For a message handled at our monotonic time
`m`, `m - stamp` is the offset between the two clocks plus how long the message took to reach us; the
least of it over recent messages is the offset plus the fastest delivery seen (milliseconds). So the
broker's time now is our monotonic time minus that least offset, and the age of a message is that minus
its stamp: a measure in one clock (the broker's), which a skewed or stepped wall clock on this host
does not change. A backlog only makes offsets larger, never the least one smaller.

Pure: the caller passes its monotonic time (nanoseconds).
"""

from __future__ import annotations

from collections import deque

__all__ = ["BrokerClock"]

_BUCKET_NS = 60 * 10**9


class BrokerClock:
    """The least offset over the last `window_buckets` minutes of samples."""

    def __init__(self, window_buckets: int = 10) -> None:
        self._buckets: deque[tuple[int, int]] = deque()  # (minute of our clock, least offset in it)
        self._window = window_buckets

    def observe(self, stored_ns: int, now_mono_ns: int) -> None:
        """A message stamped `stored_ns` by the broker is handled here at `now_mono_ns`."""
        if stored_ns <= 0:
            return
        offset = now_mono_ns - stored_ns
        minute = now_mono_ns // _BUCKET_NS
        if self._buckets and self._buckets[-1][0] == minute:
            if offset < self._buckets[-1][1]:
                self._buckets[-1] = (minute, offset)
        else:
            self._buckets.append((minute, offset))
        while self._buckets and self._buckets[0][0] <= minute - self._window:
            self._buckets.popleft()

    def age_s(self, stored_ns: int, now_mono_ns: int) -> float | None:
        """Seconds since the broker stored a message, in the broker's clock (None before any sample)."""
        if not self._buckets or stored_ns <= 0:
            return None
        offset = min(o for _, o in self._buckets)
        return max(0.0, (now_mono_ns - offset - stored_ns) / 1e9)
