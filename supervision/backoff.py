"""Exponential backoff between restarts, with jitter and a reset after a stable period."""

from __future__ import annotations

import random

from supervision.settings import BackoffConfig

__all__ = ["Backoff"]


class Backoff:
    """Pure: delays double from `min` to `max`; a child that ran `reset_after` seconds starts over."""

    def __init__(self, cfg: BackoffConfig, rng: random.Random | None = None) -> None:
        self._cfg = cfg
        self._rng = rng or random.Random()
        self._attempt = 0
        self._started_at: float | None = None

    @property
    def attempt(self) -> int:
        return self._attempt

    def started(self, now: float) -> None:
        """The child is (re)started at `now`."""
        self._started_at = now

    def next_delay(self, now: float) -> float:
        """The delay before the restart that follows a failure at `now`."""
        if self._started_at is not None and now - self._started_at >= self._cfg.reset_after:
            self._attempt = 0
        base = min(self._cfg.max, self._cfg.min * (2 ** min(self._attempt, 64)))
        self._attempt += 1
        spread = base * self._cfg.jitter
        return max(0.0, min(self._cfg.max, base + self._rng.uniform(-spread, spread)))
