"""One replica of a stage (`StageWorker`), as its definition says: it connects, builds the stage's
handlers (`StageDef.build`, with the stage's own settings from its payload), runs one consumer loop per
consumer it owns, and reports liveness and counters. Nothing here knows a stage by name.

A warm standby (`payload.standby`) is started and connected, then waits for `assign` to take a dead
replica's consumers over: no process start, no imports, no connect on the recovery path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from actors.runtime.alarms import Alarms
from actors.runtime.faults import FaultPoints
from actors.runtime.loop import ConsumerLoop, RecentIds
from actors.runtime.nats_conn import connect_retrying
from actors.runtime.stage import Directed
from actors.runtime.waiting import first_of
from actors.stages.definition import Built, Snapshots, StageRun, load_stage
from actors.stages.payload import ChildPayload
from actors.stages.worker_base import WorkerBase, identity
from supervision.decider import Decider, Directive

__all__ = ["ALARMS_KEY", "StageWorker"]

log = logging.getLogger(__name__)

#: The key of a child's stats beside its consumers': the alarms it raised, by kind.
ALARMS_KEY = "alarms"


class StageWorker(WorkerBase):
    """One replica of a stage, owning the consumers (partitions, or a venue's) its payload lists."""

    def __init__(self, payload: ChildPayload, name: str) -> None:
        super().__init__(payload, name)
        self._assigned = asyncio.Event()
        self._consuming = asyncio.Event()
        self.loops: list[ConsumerLoop] = []
        self.faults = FaultPoints()
        self.alarms = Alarms(None, name)
        self.built: Built | None = None

    async def _run(self) -> dict[str, Any]:
        async def _woken() -> None:
            for loop in self.loops:
                loop.wake()
            if self.built is not None and self.built.on_reconnected is not None:
                self.built.on_reconnected()

        nc = await connect_retrying(self.payload.nats_url, name=self.name, on_reconnected=_woken)
        js = nc.jetstream()
        if self.payload.standby:
            self._ready.set()  # parked: connected, owning nothing
            await first_of(self._assigned, self._stop)
            if self._stop.is_set():
                with contextlib.suppress(Exception):
                    await nc.drain()
                return {}
        payload = self.payload
        assert payload.stage is not None, "a stage worker needs its stage's definition"
        definition = load_stage(payload.stage)
        self.alarms = Alarms(nc, self.name)  # named after the child it is (a standby takes one's name)
        t_build = time.monotonic()
        run = StageRun(nc=nc, js=js, name=self.name, settings=definition.settings.model_validate(payload.settings),
                       partitions=payload.partitions, owned_partitions=payload.owned_partitions, venue=payload.venue,
                       alarms=self.alarms, faults=self.faults)
        if definition.rebuild is not None:
            run.state = await definition.rebuild(run)
        built = self.built = await definition.build(run)
        if built.snapshots is not None:
            built.tasks.append(asyncio.create_task(_snapshot_loop(self.name, built.snapshots)))
        built_s = time.monotonic() - t_build
        decider = Decider({"TransientError": Directive.RESUME, **payload.deciders}, default=Directive.RESUME)
        seen = RecentIds()
        self.loops = []
        for spec in payload.consumers:
            role = built.handlers[spec.role]
            self.loops.append(ConsumerLoop(nc, js, spec.stream, spec.durable, role.handler, spec.delivery, seen,
                                           self.faults, built.gate if role.gated else None, role.decoder, decider,
                                           spec.ack_all, self.alarms))
        tasks = [asyncio.create_task(loop.run(), name=loop.durable) for loop in self.loops]
        log.info("%s consuming %s (state rebuilt in %.3fs)", self.name, ",".join(c.durable for c in payload.consumers),
                 built_s)
        self._ready.set()
        self._consuming.set()
        try:
            directed = await self._until_stopped(tasks)
        finally:
            for task in built.tasks:
                task.cancel()
            if built.close is not None:
                with contextlib.suppress(Exception):
                    await built.close()
            with contextlib.suppress(Exception):
                await nc.drain()
        if directed is not None:
            return {"directive": directed.directive, "error": f"{type(directed.cause).__name__}: {directed.cause}"}
        return self.stats()

    async def _until_stopped(self, tasks: list[asyncio.Task[None]]) -> Directed | None:
        """Run until stopped (drain the loops, then the stage's clean-stop hook), or until a decider's
        directive ends a loop (returned); a loop's failure is raised."""
        stop = asyncio.create_task(self._stop.wait())
        directed: Directed | None = None
        done, _ = await asyncio.wait([*tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task is stop else task.exception()
            if isinstance(error, Directed):
                directed = error  # restart, stop or escalate: end normally and tell the supervisor why
            elif error is not None:
                raise error
        stop.cancel()
        if self.built is not None and self.built.on_stopping is not None:
            self.built.on_stopping()
        for loop in self.loops:
            await loop.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if directed is None and self.built is not None:
            if self.built.snapshots is not None:  # stopped cleanly: the next owner starts from here
                await _save(self.name, self.built.snapshots)
            if self.built.on_stop is not None:
                await self.built.on_stop()
        return directed

    async def assign(self, name: str, payload_json: str, timeout: float = 30.0) -> dict[str, Any]:
        """A standby takes over: it becomes the child `payload_json` describes (a dead replica's
        consumers, consumed from their positions)."""
        payload = ChildPayload.model_validate_json(payload_json)
        if not self.payload.standby or self._assigned.is_set():
            raise RuntimeError(f"{self.name} is not a free standby")
        if payload.stage != self.payload.stage:
            raise RuntimeError(f"{self.name} stands by for {self.payload.stage}, not {payload.stage}")
        self.name, self.payload = name, payload
        self._assigned.set()
        await asyncio.wait_for(self._consuming.wait(), timeout)
        return identity()

    def stats(self) -> dict[str, Any]:
        """Each consumer loop's counters, the alarms raised here by kind, and the stage's own."""
        out: dict[str, Any] = {loop.durable: vars(loop.stats).copy() for loop in self.loops}
        out[ALARMS_KEY] = dict(self.alarms.counts)
        if self.built is not None and self.built.stats is not None:
            out.update(self.built.stats())
        return out

    async def health(self) -> dict[str, int]:
        activity = sum(getattr(role.handler, "activity", 0) for role in (self.built.handlers.values()
                                                                           if self.built else ()))
        progress = sum(loop.stats.progress for loop in self.loops) + activity
        return {"progress": progress, "pending": sum(loop.pending() for loop in self.loops)}

    def arm_fault(self, name: str) -> None:
        """Park the loop at fault point `name` (see actors.runtime.faults) until disarmed or killed."""
        self.faults.arm(name)

    def arm_error(self, type_name: str, count: int = 1) -> None:
        """Make the next `count` messages this replica handles raise an exception whose class is named
        `type_name` (see actors.runtime.faults): a handler error the deciders act on."""
        self.faults.arm_error(type_name, count)

    def disarm_fault(self, name: str) -> None:
        self.faults.disarm(name)

    def faults_reached(self) -> dict[str, int]:
        return dict(self.faults.reached)


async def _save(name: str, snapshots: Snapshots) -> bool:
    try:
        await asyncio.wait_for(snapshots.save(), max(5.0, snapshots.every))
        return True
    except Exception as exc:  # the log still has everything; the next one is taken later
        log.warning("%s: snapshot failed: %r", name, exc)
        return False


async def _snapshot_loop(name: str, snapshots: Snapshots) -> None:
    """Save every `snapshots.every` seconds when the state changed since the last save."""
    saved = snapshots.version()
    while True:
        await asyncio.sleep(snapshots.every)
        version = snapshots.version()
        if version != saved and await _save(name, snapshots):
            saved = version
