"""CPU seconds a set of processes spends during a benchmark step, read from /proc (Linux).

On a noisy machine a rate moves with what else runs; CPU per message moves much less, so each step
reports both. Processes that end during the step count up to their last reading.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

__all__ = ["CpuMeter", "cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process so far (None when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds of `pids()` (asked again at the end, so processes started meanwhile count from 0)."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self._pids = pids
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {pid: s for pid in set(self._pids()) if (s := cpu_seconds(pid)) is not None}

    def stop(self) -> float:
        total = 0.0
        for pid in set(self._pids()) | set(self._start):
            now = cpu_seconds(pid)
            if now is not None:
                total += now - self._start.get(pid, 0.0)
        return round(total, 3)
