"""What every supervised child runs on (hosted by `actors.stages.host.ChildHost`, one per process):
the child protocol the supervisor drives, and the fault-injection hooks tests and operators use.

The protocol (every method is called by the supervisor through the host):

- `run()`: the long-running call. Starts the child (connect, build, consume or serve) and returns only
  when it is stopped (a dict of final counters, or `{"directive": ..., "error": ...}` when a decider
  asked to restart, stop or escalate). It raises when the child fails; the process dying makes the
  call fail: that is how the supervisor learns of a crash within milliseconds.
- `ready(timeout)`: returns once the child consumes (or serves), with its pid and node.
- `health()`: a heartbeat: `{"progress": counter, "pending": work waiting on this process}`.
- `stop()`: drain: stop taking input, finish and acknowledge what is in hand, then `run()` returns.
- `wait_stopped()`: for a supervisor that adopted the child (it did not make the `run()` call).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import ray

from actors.runtime.faults import skew_wall_clock
from actors.runtime.gc_tuning import gc_clock
from actors.stages.payload import ChildPayload

__all__ = ["WorkerBase", "identity"]


def identity() -> dict[str, Any]:
    ctx = ray.get_runtime_context()
    return {"pid": os.getpid(), "node": ctx.get_node_id()[:12], "actor_id": ctx.get_actor_id()}


class WorkerBase:
    def __init__(self, payload: ChildPayload, name: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        self.payload = payload
        self.name = name
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._result: dict[str, Any] = {}
        self.started_at = time.time()

    async def run(self) -> dict[str, Any]:
        """The long-running call: returns when the actor is stopped (or a decider stops it)."""
        try:
            self._result = await self._run()
            return self._result
        finally:
            self._finished.set()

    async def _run(self) -> dict[str, Any]:
        raise NotImplementedError

    async def wait_stopped(self) -> dict[str, Any]:
        """For a supervisor that adopted this actor (it did not make the `run()` call): returns when
        run() ends, and fails when the process dies, as run() would."""
        await self._finished.wait()
        return self._result

    async def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Returns once the actor consumes (or serves); with its pid and node."""
        await asyncio.wait_for(self._ready.wait(), timeout)
        return identity()

    async def pid(self) -> int:
        return os.getpid()

    async def health(self) -> dict[str, int]:
        """A heartbeat: a progress counter and how much work is pending (see supervision.health)."""
        return {"progress": 0, "pending": 0}

    def gc_stats(self) -> dict[str, Any]:
        """This process's garbage collections so far: count and seconds per generation."""
        return gc_clock().snapshot()

    async def freeze(self, seconds: float) -> None:
        """Fault injection: block this process's event loop, as a deadlock or a runaway loop would."""
        time.sleep(seconds)

    def skew_clock(self, seconds: float) -> None:
        """Fault injection: this process's wall clock reads `seconds` off from now on (0 restores it)."""
        skew_wall_clock(seconds)

    async def stop(self) -> None:
        self._stop.set()
