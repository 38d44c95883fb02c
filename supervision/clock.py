"""The clock a supervisor decides by: a monotonic clock for windows, delays and deadlines, and the wall
clock for the times people read (last failure, last restart). Injected, so the supervisor core is
tested with a clock that moves only when a test moves it."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (restart intensity, backoff, due times)."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (shown to people, saved across restarts of the root)."""
        ...


class SystemClock:
    """This host's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests, simulations). The wall clock keeps a fixed offset."""

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> float:
        """Move forward `seconds` (>= 0); returns the new monotonic time."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        return self._now
