"""The one Ray actor class every supervised child runs in: a process that hosts one worker of any kind.

A host is created either with its worker (a venue session, a stage replica, the positions projection),
or empty, as a *spare*: a process already started by Ray with this code imported, waiting for
`become()`. Starting a Ray worker process and importing pydantic, nats-py and the stages is most of a
cold replacement's time (about 0.6-0.8 s on a small machine, more under load); a spare has paid it in
advance, so a supervisor replaces a dead child of any kind by telling a spare what to become.

`run()` is the long-running call a supervisor awaits: for a spare it waits until the spare becomes a
child (or is stopped), then runs that child, so the same call reports the death of the process in
either role.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from typing import Any

import ray

from actors.runtime.gc_tuning import tune
from actors.runtime.waiting import first_of
from actors.stages.payload import ChildPayload
from actors.stages.positions_worker import PositionsWorker
from actors.stages.venue.worker import VenueWorker
from actors.stages.worker_base import WorkerBase, identity
from actors.stages.workers import StageWorker
from supervision.scheduling import own_session

__all__ = ["KINDS", "ChildHost", "make_worker"]

#: The kinds of worker a host can run, by the payload's kind.
KINDS: dict[str, type[WorkerBase]] = {"venue": VenueWorker, "stage": StageWorker, "projection": PositionsWorker}


def make_worker(payload_json: str, name: str) -> WorkerBase:
    payload = ChildPayload.model_validate_json(payload_json)
    return KINDS[payload.kind](payload, name)


@ray.remote(max_restarts=0, max_concurrency=64)
class ChildHost:
    """One supervised child's process; empty (a spare) until told what to become."""

    def __init__(self, payload_json: str | None, name: str, lead_session: bool = True) -> None:
        self.name = name
        self.worker: WorkerBase | None = None
        self._became = asyncio.Event()
        self._stopped = asyncio.Event()
        self.started_at = time.time()
        if lead_session:
            own_session()
        tune()  # start-up objects frozen, young collections rarer (see actors.runtime.gc_tuning)
        if payload_json is not None:
            self.worker = make_worker(payload_json, name)
            self._became.set()

    async def run(self) -> dict[str, Any]:
        """Runs the hosted worker until it stops; a spare first waits to become one (or to be stopped)."""
        if self.worker is None:
            await first_of(self._became, self._stopped)
            if self.worker is None:
                return {}
        return await self.worker.run()

    async def become(self, payload_json: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        """A spare becomes a child: its worker starts in this (already warm) process. Returns the
        child's identity once it consumes or serves, as `ready()` does."""
        if self.worker is not None or self._stopped.is_set():
            raise RuntimeError(f"{self.name} is not a free spare")
        self.worker = make_worker(payload_json, name)
        self._became.set()
        return await self.worker.ready(timeout)

    async def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """A spare is ready as soon as it answers; a child once it consumes or serves."""
        if self.worker is None:
            return {**identity(), "spare": True}
        return await self.worker.ready(timeout)

    async def wait_stopped(self) -> dict[str, Any]:
        """For a supervisor that adopted this actor (it did not make the `run()` call)."""
        if self.worker is None:
            await self._became.wait()
        assert self.worker is not None
        return await self.worker.wait_stopped()

    async def health(self) -> dict[str, int]:
        return await self.worker.health() if self.worker is not None else {"progress": 0, "pending": 0}

    async def stop(self) -> None:
        self._stopped.set()
        if self.worker is not None:
            await self.worker.stop()

    async def pid(self) -> int:
        return os.getpid()

    async def call(self, method: str, *args: Any) -> Any:
        """Any other method of the hosted worker (operators and fault tests: freeze, arm_fault, stats)."""
        if self.worker is None:
            raise RuntimeError(f"{self.name} is a spare: it has no {method}")
        if method.startswith("_"):
            raise AttributeError(f"{method} is not callable on a child")
        result = getattr(self.worker, method)(*args)
        if inspect.isawaitable(result):
            result = await result
        return result
