"""The cyclic garbage collector in long-running, allocation-heavy processes: measured, and tuned.

CPython's collector runs a young collection every 700 net allocations of container objects and, as
the heap grows, full collections that walk every tracked object. A trading process allocates a few
hundred objects per message (envelopes, events, futures) and keeps many long-lived ones (its order
registry, an order's track in the client, pydantic's schemas and the imported modules), so at the
default thresholds the collector takes a large share of its CPU: measured in `trade load` at 800
orders/s, 1.65 s of 5.2 s, most of it in full collections of about 200 ms each, which also stall the
event loop; in the stages, 0.3 to 1.5 s each over 8,000 orders, with pauses of up to 230 ms in the
gateway.

`tune()` moves everything alive at start-up (modules, classes, schemas) out of the collector's reach
(`gc.freeze()`) and sets the thresholds to `THRESHOLDS`: young collections a little rarer, and full
collections over 50 times rarer (4 million net allocations apart, not 70,000). The young
threshold stays small on purpose: a young collection walks the objects allocated since the last
one, and at 50,000 they are no longer in the CPU's cache; such a collection took about 40 ms of
CPU in a stage and stalled it 100 to 230 ms on this 2-core machine, where at 2,000 one takes about
1 ms. Measured per stage over 3,000 orders at 250/s: longest pause 20 to 50 ms (gateway 100 ms),
no full collection. `GcClock` counts collections, their seconds per generation and the CPU in them
(`gc.callbacks`), for the stats and the metrics.
"""

from __future__ import annotations

import gc
import time
from typing import Any

__all__ = ["THRESHOLDS", "GcClock", "gc_clock", "tune"]

#: Young collections every 2,000 net container allocations, middle ones every 20 young ones, full ones
#: every 100 middle ones (CPython's defaults are 700, 10, 10).
THRESHOLDS = (2_000, 20, 100)


class GcClock:
    """Collections and seconds spent in them, per generation, since the clock was installed."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest_s = 0.0
        #: CPU seconds of the collecting thread (the rest of `seconds` is waiting for a core).
        self.cpu_s = 0.0
        self._started = 0.0
        self._started_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        took = time.perf_counter() - self._started
        self.cpu_s += time.thread_time() - self._started_cpu
        generation = info.get("generation", 2)
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.longest_s = max(self.longest_s, took)

    def snapshot(self) -> dict[str, Any]:
        return {"collections": list(self.collections), "seconds": [round(s, 4) for s in self.seconds],
                "total_s": round(sum(self.seconds), 4), "longest_s": round(self.longest_s, 4),
                "cpu_s": round(self.cpu_s, 4)}


_CLOCK: GcClock | None = None


def gc_clock() -> GcClock:
    """This process's clock (installed on first use)."""
    global _CLOCK
    if _CLOCK is None:
        _CLOCK = GcClock()
        gc.callbacks.append(_CLOCK)
    return _CLOCK


def tune(thresholds: tuple[int, int, int] = THRESHOLDS) -> GcClock:
    """Freeze what start-up allocated, set the thresholds, and start the clock. No collection first:
    it would cost about 50 ms on a replacement's start, to free a few dozen objects."""
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc_clock()
