"""CPU seconds a set of processes spends during a benchmark step, read from /proc (Linux).

On a noisy machine a rate moves with what else runs; CPU per message moves much less, so each step
reports both. Processes that end during the step count up to their last reading. Each process has a
label (driver, nats-server, a stage's name), and the step's CPU is also reported per label, so a
benchmark shows where the time went, not only how much.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

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
    """CPU seconds of `pids()` (pid -> label; asked again at the end, so processes started meanwhile
    count from 0)."""

    def __init__(self, pids: Callable[[], Mapping[int, str]]) -> None:
        self._pids = pids
        self._start: dict[int, float] = {}
        self._labels: dict[int, str] = {}
        self.by_label: dict[str, float] = {}

    def start(self) -> None:
        self._labels = dict(self._pids())
        self._start = {pid: s for pid in self._labels if (s := cpu_seconds(pid)) is not None}

    def stop(self) -> float:
        self._labels.update(self._pids())
        by_label: dict[str, float] = {}
        for pid, label in self._labels.items():  # every pid measured at the start has a label
            now = cpu_seconds(pid)
            if now is not None:
                by_label[label] = by_label.get(label, 0.0) + now - self._start.get(pid, 0.0)
        self.by_label = {k: round(v, 3) for k, v in sorted(by_label.items(), key=lambda kv: -kv[1])}
        return round(sum(by_label.values()), 3)
