"""Spare processes, started ahead of time so that a replacement skips the process start.

Two kinds: the warm standbys of each `StandbyPool` (started with the pool's payload, connected, they
take a child of their stage over with `call("assign", name, payload)`), and the `ANY` spares
(`supervision.spares` empty hosts with the code imported, which `become` a child of any kind that needs
no more than `supervision.spare_num_cpus`). A used one is replaced `spare_refill_delay` seconds later,
so the new process does not compete for CPU with the replacement's catch-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import ray

from supervision.protocol import ADOPT_TIMEOUT_S, READY_TIMEOUT_S, HostFactory, until_ready
from supervision.spec import ChildSpec, TreePlan

__all__ = ["ANY", "Spare", "SparePool"]

log = logging.getLogger(__name__)

#: The key of the spares that can become a child of any kind (beside the per-stage warm standbys).
ANY = "any"


@dataclass(frozen=True)
class Spare:
    name: str
    handle: Any
    run_ref: Any
    pid: int
    node: str


class SparePool:
    def __init__(self, plan: TreePlan, hosts: HostFactory, spawn: Callable[[Coroutine[Any, Any, None]], None],
                 changed: Callable[[], None] = lambda: None) -> None:
        self._plan = plan
        self._hosts = hosts
        self._spawn = spawn
        self._changed = changed
        self._spares: dict[str, list[Spare]] = {}
        self._lock = asyncio.Lock()
        self.closed = False

    # ---- what there is ------------------------------------------------------------------------
    def standby_pids(self) -> dict[str, list[int]]:
        return {pool: [s.pid for s in spares] for pool, spares in self._spares.items() if pool != ANY}

    def spare_pids(self) -> list[int]:
        return [s.pid for s in self._spares.get(ANY, [])]

    def names(self) -> dict[str, list[str]]:
        return {pool: [s.name for s in spares] for pool, spares in self._spares.items()}

    # ---- taking one -----------------------------------------------------------------------------
    def take(self, spec: ChildSpec) -> tuple[Spare, bool] | None:
        """A spare for this child (the pool's standby first, then an ANY spare that is big enough), and
        whether it is a standby; None when there is none. A new one is started later."""
        if spec.pool is not None and self._spares.get(spec.pool):
            return self._spares[spec.pool].pop(0), True
        if self._spares.get(ANY) and spec.num_cpus <= self._plan.supervision.spare_num_cpus:
            return self._spares[ANY].pop(0), False
        return None

    async def become(self, spare: Spare, standby: bool, spec: ChildSpec) -> dict[str, Any]:
        """The spare becomes the child (it keeps its own actor name); its identity once ready. On a
        failure the spare is killed. Either way a new spare is started `spare_refill_delay` later."""
        taking = (spare.handle.call.remote("assign", spare.name, spec.payload) if standby
                  else spare.handle.become.remote(spec.payload, spare.name, READY_TIMEOUT_S))
        try:
            return await asyncio.wait_for(taking, READY_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(Exception):
                ray.kill(spare.handle, no_restart=True)
            raise
        finally:
            self._spawn(self._refill_later())

    async def _refill_later(self) -> None:
        await asyncio.sleep(self._plan.supervision.spare_refill_delay)
        await self.fill()

    # ---- keeping them -----------------------------------------------------------------------------
    def _wanted(self) -> list[tuple[str, int, float, str | None]]:
        sup = self._plan.supervision
        pools = [(p.name, p.count, p.num_cpus, p.payload) for p in self._plan.pools]
        return [*pools, (ANY, sup.spares, sup.spare_num_cpus, None)]

    async def fill(self) -> None:
        """Start spares until every pool has its count."""
        async with self._lock:
            for pool, want, num_cpus, payload in self._wanted():
                while not self.closed and len(self._spares.setdefault(pool, [])) < want:
                    spare = await self._start(pool, num_cpus, payload)
                    if spare is None:
                        await asyncio.sleep(1.0)
                    elif self.closed:
                        with contextlib.suppress(Exception):
                            ray.kill(spare.handle, no_restart=True)
                    else:
                        self._spares[pool].append(spare)
        self._changed()

    async def _start(self, pool: str, num_cpus: float, payload: str | None) -> Spare | None:
        role = "spare" if pool == ANY else "standby"
        name = f"{self._plan.system}-{pool}-{role}-{uuid.uuid4().hex[:6]}"
        handle = self._hosts.create(name, num_cpus, payload)
        run_ref = handle.run.remote()
        try:
            info = await until_ready(name, handle, run_ref)
        except Exception as exc:
            log.warning("%s %s did not start: %r", role, name, exc)
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
            return None
        return Spare(name, handle, run_ref, info["pid"], info["node"])

    async def adopt(self, saved: dict[str, list[str]], namespace: str) -> None:
        """A restarted root takes over the spares its predecessor saved (those still answering)."""
        for pool, names in saved.items():
            for name in names:
                try:
                    handle = ray.get_actor(name, namespace=namespace)
                    info = await asyncio.wait_for(handle.ready.remote(ADOPT_TIMEOUT_S), ADOPT_TIMEOUT_S)
                except Exception:
                    continue
                self._spares.setdefault(pool, []).append(
                    Spare(name, handle, handle.wait_stopped.remote(), info["pid"], info["node"]))

    async def drop(self) -> None:
        """Kill every spare; none is started until `open()`."""
        self.closed = True
        async with self._lock:
            for spares in self._spares.values():
                for spare in spares:
                    with contextlib.suppress(Exception):
                        ray.kill(spare.handle, no_restart=True)
            self._spares.clear()

    def open(self) -> None:
        self.closed = False
