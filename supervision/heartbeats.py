"""Heartbeats: each watched child is asked for its health every `interval` seconds and judged four
times as often (supervision.health.Liveness); a child that stops answering, or that has work pending
but makes no progress for `misses` beats, is reported once, with the verdict, and no longer watched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from supervision.health import Liveness

__all__ = ["HeartbeatMonitor"]

log = logging.getLogger(__name__)

#: Asks a child for a heartbeat: `{"progress": int, "pending": int}`.
Probe = Callable[[], Awaitable[dict[str, int]]]


@dataclass
class _Watched:
    probe: Probe
    liveness: Liveness
    last_sent: float = 0.0


class HeartbeatMonitor:
    def __init__(self, interval: float, misses: int, verdict: Callable[[Hashable, str], None]) -> None:
        self.interval = interval
        self.misses = misses
        self._verdict = verdict
        self._watched: dict[Hashable, _Watched] = {}
        self._task: asyncio.Task[None] | None = None
        self._beats: set[asyncio.Task[None]] = set()

    def watch(self, key: Hashable, probe: Probe) -> None:
        """Judge this child from now on (its first heartbeat is due within `misses` intervals)."""
        self._watched[key] = _Watched(probe, Liveness(self.interval, self.misses, started_at=time.monotonic()))

    def forget(self, key: Hashable) -> None:
        self._watched.pop(key, None)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="liveness")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 4)
            now = time.monotonic()
            for key, watched in list(self._watched.items()):
                verdict = watched.liveness.verdict(now)
                if verdict != "alive":
                    self._watched.pop(key, None)
                    detail = f"{verdict}: no heartbeat or no progress for {self.misses} x {self.interval:g}s"
                    log.warning("child %s is %s", key, verdict)
                    self._verdict(key, detail)
                elif now - watched.last_sent >= self.interval:
                    watched.last_sent = now
                    beat = asyncio.create_task(self._beat(key, watched))
                    self._beats.add(beat)
                    beat.add_done_callback(self._beats.discard)

    async def _beat(self, key: Hashable, watched: _Watched) -> None:
        try:
            health: dict[str, Any] = await asyncio.wait_for(watched.probe(), self.interval * 2)
        except Exception:
            return  # a missed heartbeat: the verdict counts them
        if self._watched.get(key) is watched:
            watched.liveness.beat(time.monotonic(), health["progress"], health["pending"])
