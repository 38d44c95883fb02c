"""The supervisor actor: starts the stage actors from the config and replaces the ones that die.

Detection: each child's long-running `run()` call fails the moment its process dies, so the
supervisor learns of a crash from Ray within milliseconds, without polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.workers import PositionsWorker, StageWorker, VenueWorker
from cluster.config import SystemConfig
from cluster.nats_conn import connect
from messages import (
    MSG_ID_HEADER,
    ChildFailed,
    ChildRestarted,
    ChildStarted,
    GaveUp,
    SupervisionEvent,
    encode,
    subjects,
    wrap,
)
from supervision.backoff import Backoff
from supervision.health import Liveness
from supervision.intensity import RestartIntensity
from supervision.spec import ChildKind, ChildSpec, Restart, child_specs
from supervision.strategy import children_to_restart

__all__ = ["SUPERVISOR_NAME", "Supervisor"]

log = logging.getLogger(__name__)

SUPERVISOR_NAME = "supervisor"
READY_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 10.0


@dataclass
class _Child:
    spec: ChildSpec
    backoff: Backoff
    handle: Any = None
    run_ref: Any = None
    pid: int | None = None
    node: str | None = None
    state: str = "starting"
    restarts: int = 0
    last_failure: str | None = None
    last_failure_at: float | None = None
    last_restart_at: float | None = None
    liveness: Liveness | None = None
    last_beat_sent: float = 0.0
    hung_reason: str | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


@ray.remote(max_restarts=0, max_concurrency=100)
class Supervisor:
    """Root of the tree: one_for_one over the stage and venue actors."""

    def __init__(self, cfg_json: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        self.cfg = SystemConfig.model_validate_json(cfg_json)
        self.cfg_json = cfg_json
        self.path = "root"
        self.children: dict[str, _Child] = {}
        self.intensity = RestartIntensity(self.cfg.supervision.intensity, self.cfg.supervision.period)
        self.gave_up: str | None = None
        self._nc: Any = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._rng = random.Random()
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._publisher: asyncio.Task[None] | None = None
        self._restart_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._spares: dict[str, list[tuple[Any, Any, dict[str, Any]]]] = {}
        self._spare_lock = asyncio.Lock()
        self._monitor_task: asyncio.Task[None] | None = None

    # ---- public API -------------------------------------------------------------------------
    async def apply(self, cfg_json: str) -> dict[str, Any]:
        """Start the tree, or re-apply a changed config (children are replaced; consumers are durable)."""
        async with self._lock:
            if self._nc is None:
                self._nc = await connect(self.cfg.nats.url, name="supervisor")
            if cfg_json != self.cfg_json:
                await self._stop_children()
                new_cfg = SystemConfig.model_validate_json(cfg_json)
                if new_cfg.nats.url != self.cfg.nats.url:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = await connect(new_cfg.nats.url, name="supervisor")
                self.cfg = new_cfg
                self.cfg_json = cfg_json
                self.intensity = RestartIntensity(self.cfg.supervision.intensity, self.cfg.supervision.period)
            if self._monitor_task is None or self._monitor_task.done():
                self._monitor_task = asyncio.create_task(self._monitor(), name="liveness")
            if not self.children:
                self._stopping = False
                self.gave_up = None
                for spec in child_specs(self.cfg):
                    child = _Child(spec, Backoff(self.cfg.supervision.backoff, self._rng))
                    self.children[spec.id] = child
                    await self._start(child)
                    await self._emit(ChildStarted, child, "started")
                    child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{spec.id}")
            await self._fill_spares()
        return self.status()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "path": self.path,
            "strategy": self.cfg.supervision.strategy,
            "restarts_in_window": self.intensity.count(now),
            "gave_up": self.gave_up,
            "standby": {stage: [info["pid"] for _, _, info in spares] for stage, spares in self._spares.items()},
            "children": [
                {"id": c.spec.id, "state": c.state, "pid": c.pid, "node": c.node, "restarts": c.restarts,
                 "last_failure": c.last_failure, "last_failure_at": c.last_failure_at,
                 "last_restart_at": c.last_restart_at}
                for c in self.children.values()
            ],
        }

    async def stop_children(self, prefix: str) -> list[str]:
        """Operator stop (e.g. prefix "risk-"): each child drains its batch in hand and stops; its input
        waits durably in its stream until `start_children`. Not a failure: nothing is restarted."""
        async with self._lock:
            chosen = [c for c in reversed(list(self.children.values()))
                      if c.spec.id.startswith(prefix) and c.state == "running"]
            for child in chosen:
                await self._stop_child(child)
            return [c.spec.id for c in chosen]

    async def start_children(self, prefix: str) -> list[str]:
        async with self._lock:
            chosen = [c for c in self.children.values() if c.spec.id.startswith(prefix) and c.state == "stopped"]
            for child in chosen:
                await self._start(child)
                await self._emit(ChildStarted, child, "started by operator")
                child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.spec.id}")
            return [c.spec.id for c in chosen]

    async def call_child(self, child_id: str, method: str, *args: Any) -> Any:
        """Call a method of a running child (operators and fault tests: arm_fault, freeze, stats)."""
        handle = self.children[child_id].handle
        return await getattr(handle, method).remote(*args)

    async def stats(self) -> dict[str, Any]:
        """Each running child's own counters (per consumer for stages)."""
        out: dict[str, Any] = {}
        for child in self.children.values():
            if child.state == "running":
                with contextlib.suppress(Exception):
                    out[child.spec.id] = await asyncio.wait_for(child.handle.stats.remote(), 5.0)
        return out

    async def child_pid(self, child_id: str) -> int | None:
        return self.children[child_id].pid

    async def shutdown(self) -> None:
        """Stop every child, last started first, each draining its in-flight batch."""
        async with self._lock:
            await self._stop_children()
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.drain()
                self._nc = None

    # ---- internals --------------------------------------------------------------------------
    async def _start(self, child: _Child) -> None:
        spec = child.spec
        if spec.kind is ChildKind.STAGE and self._spares.get(spec.kwargs["stage"]):
            await self._start_from_spare(child)
            return
        name = f"{self.cfg.name}-{spec.id}-{uuid.uuid4().hex[:6]}"
        options = {"num_cpus": spec.num_cpus, "name": name}
        if spec.kind is ChildKind.VENUE:
            handle = VenueWorker.options(**options).remote(self.cfg_json, name, spec.kwargs["venue"])
        elif spec.kind is ChildKind.PROJECTION:
            handle = PositionsWorker.options(**options).remote(self.cfg_json, name)
        else:
            handle = StageWorker.options(**options).remote(self.cfg_json, name, spec.kwargs["stage"],
                                                           spec.kwargs["durables"], spec.kwargs.get("venue"))
        child.handle = handle
        child.run_ref = handle.run.remote()
        info = await _until_ready(spec.id, handle, child.run_ref)
        self._running(child, info)

    def _running(self, child: _Child, info: dict[str, Any]) -> None:
        child.pid, child.node = info["pid"], info["node"]
        child.liveness = None
        child.state = "running"
        child.backoff.started(time.monotonic())

    # ---- warm standbys ----------------------------------------------------------------------------
    async def _start_from_spare(self, child: _Child) -> None:
        """A warm standby takes the dead replica's consumers over; a new spare is started behind it."""
        spec = child.spec
        stage = spec.kwargs["stage"]
        handle, run_ref, _ = self._spares[stage].pop(0)
        name = f"{self.cfg.name}-{spec.id}-{uuid.uuid4().hex[:6]}"
        try:
            info = await asyncio.wait_for(handle.assign.remote(name, spec.kwargs["durables"],
                                                               spec.kwargs.get("venue")), READY_TIMEOUT_S)
        except Exception:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
            raise
        finally:
            self._spawn(self._fill_spares())
        child.handle, child.run_ref = handle, run_ref
        self._running(child, info)

    async def _fill_spares(self) -> None:
        async with self._spare_lock:
            for stage in ("risk", "gateway", "allocator"):
                want = getattr(self.cfg.stages, stage).standby
                while not self._stopping and len(self._spares.setdefault(stage, [])) < want:
                    name = f"{self.cfg.name}-{stage}-standby-{uuid.uuid4().hex[:6]}"
                    handle = StageWorker.options(num_cpus=getattr(self.cfg.stages, stage).num_cpus,
                                                 name=name).remote(self.cfg_json, name, stage, [], None, True)
                    run_ref = handle.run.remote()
                    try:
                        info = await _until_ready(name, handle, run_ref)
                    except Exception as exc:
                        log.warning("standby %s did not start: %r", name, exc)
                        with contextlib.suppress(Exception):
                            ray.kill(handle, no_restart=True)
                        await asyncio.sleep(1.0)
                        continue
                    self._spares[stage].append((handle, run_ref, info))

    async def _drop_spares(self) -> None:
        for spares in self._spares.values():
            for handle, _, _ in spares:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
        self._spares.clear()

    async def _watch(self, child: _Child) -> None:
        while not self._stopping:
            try:
                await child.run_ref
                abnormal, reason = False, "exited"
            except Exception as exc:
                abnormal, reason = True, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            if child.hung_reason:
                reason, child.hung_reason = f"hung ({child.hung_reason})", None
            if self._stopping:
                return
            child.state, child.last_failure, child.last_failure_at = "failed", reason, time.time()
            await self._emit(ChildFailed, child, reason)
            log.warning("child %s failed: %s", child.spec.id, reason)
            if child.spec.restart is Restart.TEMPORARY or (child.spec.restart is Restart.TRANSIENT and not abnormal):
                child.state = "stopped"
                return
            if not self.intensity.allow(time.monotonic()):
                self.gave_up = f"restart intensity exceeded ({self.intensity.max_restarts} in {self.intensity.period}s)"
                child.state = "gave_up"
                await self._emit(GaveUp, child, self.gave_up)
                log.error("supervisor gave up on %s: %s", child.spec.id, self.gave_up)
                return
            delay = child.backoff.next_delay(time.monotonic())
            async with self._restart_lock:
                group = [self.children[i] for i in children_to_restart(
                    self.cfg.supervision.strategy, list(self.children), child.spec.id) if i in self.children]
                siblings = [c for c in group if c is not child]
                for sibling in reversed(siblings):  # one_for_all / rest_for_one: stop the group first
                    await self._stop_child(sibling)
                await asyncio.sleep(delay)
                with contextlib.suppress(Exception):
                    ray.kill(child.handle, no_restart=True)
                try:
                    await self._start(child)
                except Exception as exc:  # the replacement failed to start: count it as another failure
                    child.run_ref = _failed_ref(exc)
                    for sibling in siblings:  # they stay stopped until the failed child is back
                        sibling.state = "waiting"
                    continue
                self._restarted(child, delay)
                for sibling in siblings:
                    await self._start(sibling)
                    self._restarted(sibling, delay, because=child.spec.id)
                    sibling.watcher = asyncio.create_task(self._watch(sibling), name=f"watch-{sibling.spec.id}")

    def _restarted(self, child: _Child, delay: float, because: str | None = None) -> None:
        child.restarts += 1
        child.last_restart_at = time.time()
        detail = f"restarted after {delay:.3f}s backoff" + (f" with {because} ({self.cfg.supervision.strategy})"
                                                             if because else "")
        self._emit_nowait(ChildRestarted, child, detail, restarts=child.restarts, backoff_s=round(delay, 6))

    # ---- liveness -----------------------------------------------------------------------------
    async def _monitor(self) -> None:
        """Ask every running child for a heartbeat each `heartbeat` seconds, and judge them four times
        as often; a child that stops answering, or that has work pending but makes no progress, is
        hung: kill it, and its watcher restarts it as a failure."""
        interval = self.cfg.supervision.heartbeat
        misses = self.cfg.supervision.heartbeat_misses
        while not self._stopping:
            await asyncio.sleep(interval / 4)
            now = time.monotonic()
            for child in list(self.children.values()):
                if child.state != "running" or child.handle is None:
                    continue
                if child.liveness is None:
                    child.liveness = Liveness(interval, misses, started_at=now)
                    child.last_beat_sent = 0.0
                verdict = child.liveness.verdict(now)
                if verdict != "alive":
                    child.hung_reason = f"{verdict}: no heartbeat or no progress for {misses} x {interval}s"
                    log.warning("child %s is %s; killing it", child.spec.id, verdict)
                    child.liveness = None
                    with contextlib.suppress(Exception):
                        ray.kill(child.handle, no_restart=True)
                    continue
                if now - child.last_beat_sent >= interval:
                    child.last_beat_sent = now
                    self._spawn(self._beat(child, child.liveness))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _beat(self, child: _Child, liveness: Liveness) -> None:
        handle = child.handle
        try:
            health = await asyncio.wait_for(handle.health.remote(), self.cfg.supervision.heartbeat * 2)
        except Exception:
            return  # a missed heartbeat; the verdict counts them
        if child.handle is handle and child.liveness is liveness:
            liveness.beat(time.monotonic(), health["progress"], health["pending"])

    async def _stop_children(self) -> None:
        self._stopping = True
        async with self._spare_lock:
            await self._drop_spares()
        for child in reversed(list(self.children.values())):
            await self._stop_child(child)
        self.children.clear()

    async def _stop_child(self, child: _Child) -> None:
        """Drain (stop fetching, finish and ack the batch in hand) within the timeout, then kill."""
        if child.watcher is not None:
            child.watcher.cancel()
            child.watcher = None
        if child.handle is not None:
            with contextlib.suppress(Exception):
                await child.handle.stop.remote()
                await asyncio.wait_for(child.run_ref, SHUTDOWN_TIMEOUT_S)
            with contextlib.suppress(Exception):
                ray.kill(child.handle, no_restart=True)
        child.state = "stopped"

    async def _emit(self, cls: type[SupervisionEvent], child: _Child, detail: str, **extra: Any) -> None:
        self._emit_nowait(cls, child, detail, **extra)

    def _emit_nowait(self, cls: type[SupervisionEvent], child: _Child, detail: str, **extra: Any) -> None:
        """Queue a supervision event; it is published in order, retried while the broker is away."""
        event = cls(path=f"{self.path}.{child.spec.id}", child=child.spec.id, detail=detail, pid=child.pid,
                    node=child.node, **extra)
        envelope = wrap(event, event_id=uuid.uuid4())
        if self._events.full():
            log.error("supervision event queue full; dropping %s for %s", envelope.type, child.spec.id)
            return
        self._events.put_nowait((subjects.supervision(f"{self.path}.{child.spec.id}"), envelope))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_events(), name="supervision-events")

    async def _publish_events(self) -> None:
        while True:
            subject, envelope = await self._events.get()
            while True:
                try:
                    await self._nc.jetstream().publish(subject, encode(envelope), timeout=2.0,
                                                       headers={MSG_ID_HEADER: str(envelope.event_id)})
                    break
                except Exception as exc:  # the broker is away: the same id again is deduplicated
                    log.warning("supervision event %s not yet published: %r", envelope.type, exc)
                    await asyncio.sleep(0.5)


async def _until_ready(what: str, handle: Any, run_ref: Any) -> dict[str, Any]:
    """The child's identity once it reports ready; fails fast if its run() ends first."""
    ready = asyncio.ensure_future(handle.ready.remote())
    running = asyncio.ensure_future(run_ref)
    done, _ = await asyncio.wait({ready, running}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    if not done:
        ready.cancel()
        raise TimeoutError(f"{what} was not ready within {READY_TIMEOUT_S:.0f}s")
    if ready not in done:  # run() ended before the child was ready: it failed to start
        ready.cancel()
        running.result()
        raise RuntimeError(f"{what} stopped before it was ready")
    return ready.result()


def _failed_ref(exc: Exception) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future
