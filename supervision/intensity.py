"""Restart intensity (OTP's MaxR in MaxT): at most `max_restarts` restarts within `period` seconds."""

from __future__ import annotations

from collections import deque

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """Pure: the caller passes the time. `allow(now)` records a restart if one is allowed."""

    def __init__(self, max_restarts: int, period: float) -> None:
        if max_restarts < 0 or period <= 0:
            raise ValueError("max_restarts must be >= 0 and period > 0")
        self.max_restarts = max_restarts
        self.period = period
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()

    def count(self, now: float) -> int:
        """Restarts inside the window ending at `now`."""
        self._expire(now)
        return len(self._times)

    def allow(self, now: float) -> bool:
        """True (and the restart is counted) when one more restart stays within the intensity."""
        self._expire(now)
        if len(self._times) >= self.max_restarts:
            return False
        self._times.append(now)
        return True
