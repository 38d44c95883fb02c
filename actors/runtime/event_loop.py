"""The event loop every process of the system runs on: uvloop where it is installed, asyncio's otherwise.

Each order crosses the broker about thirty times, and on each crossing some process wakes, reads the
socket, parses, runs a callback, resumes a task and writes. That per-wake-up cost, not the domain
logic, is most of a stage's CPU at moderate rates. uvloop (libuv, in C) does the loop's part of it
faster than asyncio's pure-Python selector loop: one publish awaited for its acknowledgement costs the
client about 120 us of CPU on uvloop against 140 us on asyncio (`bench/publish.py --batch 1`), and the
stages spend about a tenth less CPU per order at a fixed rate (`bench/throughput.py`).

Ray runs its async actors (every stage, the venue, the supervisor) on uvloop by itself when the
package is installed (`RAY_USE_UVLOOP`, default on); this module does the same for the processes the
system starts outside Ray: the `trade` CLI, `TradingClient`'s sync wrapper, the job entrypoint and the
benchmarks. `TRADE_USE_UVLOOP=0` falls back to asyncio's loop (to compare, or to debug with asyncio's
debug mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["ENV_SWITCH", "loop_factory", "new_event_loop", "run", "uses_uvloop"]

ENV_SWITCH = "TRADE_USE_UVLOOP"
T = TypeVar("T")


def uses_uvloop() -> bool:
    """True when new loops are uvloop's: the package is installed and not switched off."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    if uses_uvloop():
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop (for a background thread), of the kind `uses_uvloop` says."""
    return loop_factory()()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the system's loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
