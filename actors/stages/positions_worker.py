"""The positions projection's process (`PositionsWorker`): the projection (event sourced from the
executions, with snapshots), and the watch of the broker's max-deliveries advisories, the last line of
the dead letters (see actors.runtime.advisories), on the consumer its payload names."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

from actors.domain.settings import Settings
from actors.runtime.advisories import MaxDeliveriesHandler, decode_advisory
from actors.runtime.alarms import Alarms
from actors.runtime.loop import ConsumerLoop
from actors.runtime.nats_conn import connect_retrying
from actors.runtime.waiting import first_of
from actors.stages.payload import ChildPayload
from actors.stages.positions import PositionsProjection
from actors.stages.worker_base import WorkerBase
from actors.stages.workers import ALARMS_KEY

__all__ = ["PositionsSettings", "PositionsWorker"]


class PositionsSettings(Settings):
    #: Every consumer of the system -> the stage it belongs to (whose dead letters an advisory becomes).
    stage_of: dict[str, str] = {}


class PositionsWorker(WorkerBase):
    def __init__(self, payload: ChildPayload, name: str) -> None:
        super().__init__(payload, name)
        self.settings = PositionsSettings.model_validate(payload.settings)
        self.projection: PositionsProjection | None = None
        self.advisories: ConsumerLoop | None = None
        self.alarms: Counter[str] = Counter()

    async def _run(self) -> dict[str, Any]:
        nc = await connect_retrying(self.payload.nats_url, name=self.name, on_reconnected=self._wake_advisories)
        js = nc.jetstream()
        alarms = Alarms(nc, self.name)
        self.alarms = alarms.counts
        (spec,) = self.payload.consumers
        handler = MaxDeliveriesHandler(js, self.settings.stage_of, alarms, nc.max_payload)
        self.advisories = ConsumerLoop(nc, js, spec.stream, spec.durable, handler, spec.delivery,
                                       decoder=decode_advisory, alarms=alarms)
        watch = asyncio.create_task(self.advisories.run(), name="advisories")
        try:
            self.projection = PositionsProjection(nc, js)
            await self.projection.start()
            self._ready.set()
            await first_of(self._stop, _done(watch))
            if watch.done() and watch.exception() is not None:
                raise watch.exception()  # type: ignore[misc]
            await self.projection.stop()
        finally:
            await self.advisories.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(watch, 5.0)
            with contextlib.suppress(Exception):
                await nc.drain()
        return self.stats()

    async def _wake_advisories(self) -> None:
        if self.advisories is not None:
            self.advisories.wake()

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.projection.seq if self.projection else 0, ALARMS_KEY: dict(self.alarms)}
        if self.advisories is not None:
            out[self.advisories.durable] = vars(self.advisories.stats).copy()
        return out


def _done(task: asyncio.Task[None]) -> asyncio.Event:
    """An event set when `task` ends."""
    event = asyncio.Event()
    task.add_done_callback(lambda _t: event.set())
    return event
