"""Hung-actor detection, pure: heartbeats tell "alive" from "hung" (silent) and "stalled" (busy, no progress).

A child beats every `heartbeat_interval` seconds with a progress counter (messages handled) and
the number of messages pending for it. The caller passes the time.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["Liveness", "Verdict"]

Verdict = Literal["alive", "hung", "stalled"]


class Liveness:
    """One child's liveness.

    - "hung": no heartbeat for `misses` x `heartbeat_interval` seconds (counted from the last beat,
      or from `started_at` before the first one; with neither there is nothing to judge yet).
    - "stalled": heartbeats arrive, work is pending, but the progress counter has not changed for
      `misses` x `heartbeat_interval` seconds. The clock starts when work became pending or the
      counter last changed, whichever is later, so an idle child that gets a message is not stalled.
      Any change of the counter is progress (a restarted child's counter starts over).
    """

    def __init__(self, heartbeat_interval: float, misses: int = 3, *, started_at: float | None = None) -> None:
        if not (math.isfinite(heartbeat_interval) and heartbeat_interval > 0):
            raise ValueError(f"heartbeat_interval must be a positive number of seconds, got {heartbeat_interval}")
        if misses < 1:
            raise ValueError(f"misses must be >= 1, got {misses}")
        self.heartbeat_interval = heartbeat_interval
        self.misses = misses
        self._last_beat: float | None = None
        self._started_at = started_at
        self._progress: int | None = None
        self._pending = 0
        self._stall_since: float | None = None

    @property
    def deadline(self) -> float:
        """Seconds without a heartbeat (or without progress while busy) before a verdict turns."""
        return self.misses * self.heartbeat_interval

    @property
    def last_beat(self) -> float | None:
        return self._last_beat

    def reset(self, now: float) -> None:
        """The child was (re)started at `now`: forget its beats; the hung clock starts now."""
        self._last_beat = None
        self._started_at = now
        self._progress = None
        self._pending = 0
        self._stall_since = None

    def beat(self, now: float, progress_counter: int, pending: int) -> None:
        """A heartbeat sent at `now`. A beat older than the last one (delivered late) is ignored."""
        if self._last_beat is not None and now < self._last_beat:
            return
        idle = pending <= 0
        progressed = progress_counter != self._progress
        became_busy = self._pending <= 0 and not idle
        if idle or progressed or became_busy or self._stall_since is None:
            self._stall_since = now
        self._last_beat = now
        self._progress = progress_counter
        self._pending = max(0, pending)

    def verdict(self, now: float) -> Verdict:
        since = self._last_beat if self._last_beat is not None else self._started_at
        if since is None:
            return "alive"
        if now - since >= self.deadline:
            return "hung"
        if self._pending > 0 and self._stall_since is not None and now - self._stall_since >= self.deadline:
            return "stalled"
        return "alive"
