"""The children's processes as the shell holds them: one `Process` per incarnation of a child that the
core wants alive, started from a spare or as a new actor, adopted by name, watched, drained, killed.
The child protocol these calls follow is in `supervision.protocol`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from supervision.protocol import ADOPT_TIMEOUT_S, HostFactory, until_ready
from supervision.spares import SparePool
from supervision.spec import ChildSpec
from supervision.tree import Identity

__all__ = ["ChildProcesses", "Ending", "Process"]

log = logging.getLogger(__name__)

#: How a process's long-running call ended: its result (a normal end) or the error it failed with.
Ending = tuple[Any, BaseException | None]


@dataclass
class Process:
    child: str
    incarnation: int
    name: str
    handle: Any
    run_ref: Any
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class ChildProcesses:
    def __init__(self, system: str, hosts: HostFactory, spares: SparePool) -> None:
        self._system = system
        self._hosts = hosts
        self._spares = spares
        self._procs: dict[tuple[str, int], Process] = {}

    def get(self, child: str, incarnation: int) -> Process | None:
        return self._procs.get((child, incarnation))

    def names(self) -> set[str]:
        """The actor names of every process held (a restarted root kills the system's other actors)."""
        return {p.name for p in self._procs.values()}

    async def start(self, spec: ChildSpec, incarnation: int) -> Identity:
        """The child's new process, once ready: a spare becomes it if one fits, else a new actor.
        On a failure nothing is left running and the error is raised."""
        taken = self._spares.take(spec)
        if taken is not None:
            spare, standby = taken
            self._hold(spec.id, incarnation, spare.name, spare.handle, spare.run_ref)
            try:
                info = await self._spares.become(spare, standby, spec)
            except BaseException:
                self._procs.pop((spec.id, incarnation), None)
                raise
            return Identity(spare.name, info["pid"], info["node"])
        name = f"{self._system}-{spec.id}-{uuid.uuid4().hex[:6]}"
        handle = self._hosts.create(name, spec.num_cpus, spec.payload)
        proc = self._hold(spec.id, incarnation, name, handle, handle.run.remote())
        try:
            info = await until_ready(spec.id, handle, proc.run_ref)
        except BaseException:
            self.kill(spec.id, incarnation)
            raise
        return Identity(name, info["pid"], info["node"])

    async def adopt(self, child: str, incarnation: int, name: str | None, namespace: str) -> Identity | None:
        """The child's running process by its actor name (its ready answer within a few seconds), or None."""
        if not name:
            return None
        try:
            handle = ray.get_actor(name, namespace=namespace)
            info = await asyncio.wait_for(handle.ready.remote(ADOPT_TIMEOUT_S), ADOPT_TIMEOUT_S)
        except Exception:
            return None
        self._hold(child, incarnation, name, handle, handle.wait_stopped.remote())
        return Identity(name, info["pid"], info["node"])

    def _hold(self, child: str, incarnation: int, name: str, handle: Any, run_ref: Any) -> Process:
        proc = Process(child, incarnation, name, handle, run_ref)
        self._procs[(child, incarnation)] = proc
        return proc

    def watch(self, child: str, incarnation: int, ended: Callable[[Ending], None]) -> None:
        """Call `ended` when the process's long-running call ends (unless it is drained or killed first)."""
        proc = self._procs.get((child, incarnation))
        if proc is None or proc.watcher is not None:
            return

        async def watching() -> None:
            try:
                ending: Ending = (await proc.run_ref, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ending = (None, exc)
            if self._procs.get((child, incarnation)) is proc:
                ended(ending)

        proc.watcher = asyncio.create_task(watching(), name=f"watch-{child}-{incarnation}")

    def _release(self, child: str, incarnation: int) -> Process | None:
        proc = self._procs.pop((child, incarnation), None)
        if proc is not None and proc.watcher is not None and proc.watcher is not asyncio.current_task():
            proc.watcher.cancel()
        return proc

    def kill(self, child: str, incarnation: int) -> None:
        proc = self._release(child, incarnation)
        if proc is not None:
            with contextlib.suppress(Exception):
                ray.kill(proc.handle, no_restart=True)

    async def drain(self, child: str, incarnation: int, shutdown: float) -> None:
        """Stop fetching, finish and ack the batch in hand, within `shutdown` seconds; then kill."""
        proc = self._release(child, incarnation)
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + shutdown
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.handle.stop.remote(), shutdown)
            await asyncio.wait_for(proc.run_ref, max(0.0, deadline - loop.time()))
        with contextlib.suppress(Exception):
            ray.kill(proc.handle, no_restart=True)

    def kill_all(self) -> None:
        for child, incarnation in list(self._procs):
            self.kill(child, incarnation)
