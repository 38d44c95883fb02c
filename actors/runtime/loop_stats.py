"""A consumer loop's counters (`LoopStats`) and its memory of recently applied event ids (`RecentIds`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["LoopStats", "RecentIds"]


class RecentIds:
    """A bounded set of recently applied event ids (oldest forgotten first)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


@dataclass
class LoopStats:
    handled: int = 0
    published: int = 0
    duplicates_skipped: int = 0
    dead_lettered: int = 0
    retried: int = 0
    #: Inputs handed back unfinished by a handler because its process is stopping (Released).
    released: int = 0
    #: Broker-side failures retried (a publish, an applied-log read or write).
    publish_failures: int = 0
    batches: int = 0
    commits: int = 0
    #: Seconds spent per step, summed over batches (where a batch's time goes).
    handle_s: float = 0.0
    publish_s: float = 0.0
    mark_s: float = 0.0
    ack_s: float = 0.0
    #: Bumped by everything the loop does (a fetch, a handled message, a retry): liveness evidence.
    progress: int = 0
    last_progress: float = field(default_factory=time.monotonic)

