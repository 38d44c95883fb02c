"""The supervision tree: the root supervisor actor and the supervisors under it.

    root (strategy, intensity from `supervision`)
      <venue>      one per venue: the venue session, then its gateway (rest_for_one by default)
      risk         the risk replicas
      allocator    the allocator replicas
      positions    the positions projection

The supervisors below the root are nodes inside the root's process (an actor is a whole process in
Ray; on a small machine a process per supervisor buys nothing): each has its own strategy, restart
intensity and backoff, and escalates to its parent when its intensity is exceeded (it stops its
children; the parent restarts the subtree under its own strategy and intensity). When the root gives
up, every child is stopped (drained): new orders wait in their streams, a GaveUp alarm is published.

Detection: each child's long-running `run()` (or, once adopted, `wait_stopped()`) call fails the
moment its process dies, so a crash is known within milliseconds; hung children are found by
heartbeats (see `_monitor`). The children are detached actors: they outlive the root. The root is
restarted by Ray and adopts the children that still run (their names and counters are in the KV
bucket SUPERVISION), killing any duplicate; it starts only what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray

from messages import (
    MSG_ID_HEADER,
    ChildFailed,
    ChildRestarted,
    ChildStarted,
    Escalated,
    GaveUp,
    SupervisionEvent,
    encode,
    subjects,
    wrap,
)
from supervision.actor_options import actor_options
from supervision.backoff import Backoff
from supervision.breaker_store import BreakerStore
from supervision.decider import FailureKind, counts_against_intensity
from supervision.health import Liveness
from supervision.intensity import RestartIntensity
from supervision.nats import connect
from supervision.scheduling import own_session
from supervision.spec import ChildSpec, NodeSpec, Restart, TreePlan, load_host
from supervision.strategy import children_to_restart

__all__ = ["STATE_BUCKET", "SUPERVISOR_NAME", "Supervisor", "classify_failure"]

log = logging.getLogger(__name__)

SUPERVISOR_NAME = "supervisor"
STATE_BUCKET = "SUPERVISION"
READY_TIMEOUT_S = 60.0
ADOPT_TIMEOUT_S = 5.0
#: The key of the spares that can become a child of any kind (beside the per-stage warm standbys).
ANY = "any"


def classify_failure(exc: BaseException | None) -> FailureKind:
    """What killed a child, from the error its long-running call failed with."""
    if exc is None:
        return FailureKind.PROCESS_DIED
    text = f"{type(exc).__name__}: {exc}".lower()
    if "preempt" in text:
        return FailureKind.PREEMPTED
    if any(sign in text for sign in ("nodedied", "node died", "node was dead", "node has been marked dead")):
        return FailureKind.NODE_LOST
    return FailureKind.PROCESS_DIED


@dataclass
class _Child:
    spec: ChildSpec
    node: _Node
    backoff: Backoff
    handle: Any = None
    run_ref: Any = None
    name: str | None = None
    pid: int | None = None
    host: str | None = None
    state: str = "starting"
    restarts: int = 0
    last_failure: str | None = None
    last_failure_at: float | None = None
    last_restart_at: float | None = None
    liveness: Liveness | None = None
    last_beat_sent: float = 0.0
    hung_reason: str | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def path(self) -> str:
        return f"{self.node.path}.{self.spec.id}"


@dataclass
class _Node:
    spec: NodeSpec
    parent: _Node | None
    intensity: RestartIntensity
    backoff: Backoff
    members: list[str] = field(default_factory=list)  # ordered ids of child and node members
    state: str = "running"
    restarts: int = 0
    last_failure: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def path(self) -> str:
        return self.spec.id if self.parent is None else f"{self.parent.path}.{self.spec.id}"


@ray.remote(max_restarts=-1, max_concurrency=100)
class Supervisor:
    """The root supervisor actor (named, detached, restarted by Ray; it adopts the running children)."""

    def __init__(self, plan_json: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        self.plan = TreePlan.model_validate_json(plan_json)
        if self.plan.supervision.own_session:
            own_session()
        self.plan_json = plan_json
        self._host: Any = None
        self.path = "root"
        self.children: dict[str, _Child] = {}
        self.nodes: dict[str, _Node] = {}
        self.root: _Node | None = None
        self.gave_up: str | None = None
        self.adopted: list[str] = []
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
        # Restarted by Ray after its process died: adopt what still runs (a fresh deploy finds nothing).
        self._spawn(self._recover())

    # ---- public API -------------------------------------------------------------------------
    async def apply(self, plan_json: str) -> dict[str, Any]:
        """Start the tree, or re-apply a changed plan (children are replaced; consumers are durable)."""
        async with self._lock:
            await self._connect()
            if plan_json != self.plan_json:
                await self._stop_children()
                new_plan = TreePlan.model_validate_json(plan_json)
                if new_plan.nats_url != self.plan.nats_url:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                self.plan = new_plan
                self.plan_json = plan_json
                self._host = None
                await self._connect()
            self._ensure_monitor()
            if not self.children or self.gave_up:
                if self.gave_up:
                    await self._stop_children()
                self._stopping = False
                self.gave_up = None
                self._build_tree()
                for child in self.children.values():
                    await self._start_and_watch(child, "started")
            await self._fill_spares()
            await self._save()
        return await self.status()

    async def status(self) -> dict[str, Any]:
        now = time.monotonic()
        root = self.root
        return {
            "path": self.path,
            "strategy": self.plan.supervision.strategy,
            "restarts_in_window": root.intensity.count(now) if root else 0,
            "gave_up": self.gave_up,
            "adopted": list(self.adopted),
            "breakers": await self._breakers(),
            "standby": {stage: [info["pid"] for _, _, info in spares] for stage, spares in self._spares.items()
                        if stage != ANY},
            "spares": [info["pid"] for _, _, info in self._spares.get(ANY, [])],
            "supervisors": [
                {"path": n.path, "strategy": n.spec.strategy, "state": n.state, "restarts": n.restarts,
                 "restarts_in_window": n.intensity.count(now), "intensity": n.spec.intensity,
                 "period": n.spec.period, "last_failure": n.last_failure}
                for n in self.nodes.values()
            ],
            "children": [
                {"id": c.id, "path": c.path, "state": c.state, "pid": c.pid, "node": c.host,
                 "restarts": c.restarts, "restarts_in_window": c.node.intensity.count(now),
                 "last_failure": c.last_failure, "last_failure_at": c.last_failure_at,
                 "last_restart_at": c.last_restart_at}
                for c in self.children.values()
            ],
        }

    async def _breakers(self) -> dict[str, str]:
        """Each venue's circuit breaker state as every gateway sees it (the BREAKERS bucket)."""
        out: dict[str, str] = {}
        if self._nc is None:
            return out
        store = BreakerStore(self._nc.jetstream())
        for key in self.plan.breakers:
            with contextlib.suppress(Exception):
                state, _ = await asyncio.wait_for(store.load(key), 2.0)
                out[key] = (state or {}).get("state", "closed") + (" (forced)" if (state or {}).get("forced") else "")
        return out

    async def stop_children(self, prefix: str) -> list[str]:
        """Operator stop (e.g. prefix "risk-"): each child drains its batch in hand and stops; its input
        waits durably in its stream until `start_children`. Not a failure: nothing is restarted."""
        async with self._lock:
            chosen = [c for c in reversed(list(self.children.values()))
                      if c.id.startswith(prefix) and c.state == "running"]
            for child in chosen:
                await self._stop_child(child)
            await self._save()
            return [c.id for c in chosen]

    async def start_children(self, prefix: str) -> list[str]:
        """Operator start. Under a one_for_one supervisor the children are independent (e.g. a stage's
        replicas): they start together, so none rebuilds its state while a sibling already drains a
        backlog into the log it reads. Elsewhere, in the supervisor's order."""
        async with self._lock:
            chosen = [c for c in self.children.values() if c.id.startswith(prefix) and c.state == "stopped"]
            together = [c for c in chosen if c.node.spec.strategy == "one_for_one"]
            await asyncio.gather(*(self._start_and_watch(c, "started by operator") for c in together))
            for child in [c for c in chosen if c not in together]:
                await self._start_and_watch(child, "started by operator")
            await self._save()
            return [c.id for c in chosen]

    async def call_child(self, child_id: str, method: str, *args: Any) -> Any:
        """Call a method of a running child (operators and fault tests: arm_fault, freeze, stats)."""
        return await self.children[child_id].handle.call.remote(method, *args)

    async def stats(self) -> dict[str, Any]:
        """Each running child's own counters (per consumer for stages)."""
        out: dict[str, Any] = {}
        for child in self.children.values():
            if child.state == "running":
                with contextlib.suppress(Exception):
                    out[child.id] = await asyncio.wait_for(child.handle.call.remote("stats"), 5.0)
        return out

    async def child_pid(self, child_id: str) -> int | None:
        return self.children[child_id].pid

    async def pid(self) -> int:
        import os

        return os.getpid()

    async def shutdown(self) -> None:
        """Stop every child, last started first, each draining its in-flight batch; forget the state."""
        async with self._lock:
            await self._stop_children()
            await self._connect()
            with contextlib.suppress(Exception):
                kv = await self._nc.jetstream().key_value(STATE_BUCKET)
                await kv.delete(self._state_key())
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.drain()
                self._nc = None

    # ---- the tree -----------------------------------------------------------------------------
    def _build_tree(self) -> None:
        self.children.clear()
        self.nodes.clear()

        def build(spec: NodeSpec, parent: _Node | None) -> _Node:
            node = _Node(spec, parent, RestartIntensity(spec.intensity, spec.period),
                         Backoff(self.plan.supervision.backoff, self._rng))
            self.nodes[spec.id] = node
            for member in spec.members:
                if isinstance(member, NodeSpec):
                    build(member, node)
                else:
                    self.children[member.id] = _Child(member, node, Backoff(self.plan.supervision.backoff, self._rng))
                node.members.append(member.id)
            return node

        self.root = build(self.plan.root, None)

    def _under(self, member_id: str) -> list[_Child]:
        """The children a member stands for, in start order (itself, or every child of a subtree)."""
        if member_id in self.children:
            return [self.children[member_id]]
        out: list[_Child] = []
        for m in self.nodes[member_id].members:
            out.extend(self._under(m))
        return out

    # ---- starting -----------------------------------------------------------------------------
    async def _start_and_watch(self, child: _Child, detail: str) -> None:
        await self._start(child)
        await self._emit(ChildStarted, child, detail)
        child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.id}")

    async def _start(self, child: _Child) -> None:
        spec = child.spec
        if spec.pool is not None and self._spares.get(spec.pool):
            await self._start_from_spare(child)
            return
        if self._spares.get(ANY) and spec.num_cpus <= self.plan.supervision.spare_num_cpus:
            await self._start_from_any_spare(child)
            return
        name = f"{self.plan.system}-{spec.id}-{uuid.uuid4().hex[:6]}"
        handle = self._new_host(name, spec.num_cpus, spec.payload)
        child.handle, child.name = handle, name
        child.run_ref = handle.run.remote()
        try:
            info = await _until_ready(spec.id, handle, child.run_ref)
        except Exception:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
            raise
        self._running(child, info)

    def _new_host(self, name: str, num_cpus: float, payload: str | None) -> Any:
        """A child's process: the plan's host actor class, told what to become (None: a spare)."""
        if self._host is None:
            self._host = load_host(self.plan.host)
        sup = self.plan.supervision
        options = actor_options(self.plan.system, name, num_cpus, sup.niceness)
        return self._host.options(**options).remote(payload, name, sup.own_session)

    def _running(self, child: _Child, info: dict[str, Any]) -> None:
        child.pid, child.host = info["pid"], info["node"]
        child.liveness = None
        child.state = "running"
        child.backoff.started(time.monotonic())
        self._spawn(self._save())

    # ---- warm standbys ----------------------------------------------------------------------------
    async def _start_from_spare(self, child: _Child) -> None:
        """A warm standby takes the dead replica's consumers over; a new spare is started behind it."""
        spec = child.spec
        assert spec.pool is not None
        handle, run_ref, spare = self._spares[spec.pool].pop(0)
        await self._take_spare(child, handle, run_ref, spare["name"], handle.call.remote(
            "assign", spare["name"], spec.payload))

    async def _start_from_any_spare(self, child: _Child) -> None:
        """A spare process (started, code imported) becomes the child: no process start, no imports on
        the recovery path; the child connects and rebuilds its state as a cold start would."""
        handle, run_ref, spare = self._spares[ANY].pop(0)
        await self._take_spare(child, handle, run_ref, spare["name"], handle.become.remote(
            child.spec.payload, spare["name"], READY_TIMEOUT_S))

    async def _take_spare(self, child: _Child, handle: Any, run_ref: Any, name: str, taking: Any) -> None:
        try:
            info = await asyncio.wait_for(taking, READY_TIMEOUT_S)
        except Exception:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
            raise
        finally:
            self._spawn(self._refill_spares_later())
        child.handle, child.run_ref, child.name = handle, run_ref, name
        self._running(child, info)

    async def _refill_spares_later(self) -> None:
        await asyncio.sleep(self.plan.supervision.spare_refill_delay)
        await self._fill_spares()

    async def _fill_spares(self) -> None:
        async with self._spare_lock:
            sup = self.plan.supervision
            wanted: list[tuple[str, int, float, str | None]] = [(p.name, p.count, p.num_cpus, p.payload)
                                                                 for p in self.plan.pools]
            wanted.append((ANY, sup.spares, sup.spare_num_cpus, None))
            for stage, want, num_cpus, payload in wanted:
                while not self._stopping and len(self._spares.setdefault(stage, [])) < want:
                    name = f"{self.plan.system}-{stage}-{'spare' if stage == ANY else 'standby'}-{uuid.uuid4().hex[:6]}"
                    handle = self._new_host(name, num_cpus, payload)
                    run_ref = handle.run.remote()
                    try:
                        info = await _until_ready(name, handle, run_ref)
                    except Exception as exc:
                        log.warning("standby %s did not start: %r", name, exc)
                        with contextlib.suppress(Exception):
                            ray.kill(handle, no_restart=True)
                        await asyncio.sleep(1.0)
                        continue
                    self._spares[stage].append((handle, run_ref, {**info, "name": name}))
            self._spawn(self._save())

    async def _drop_spares(self) -> None:
        for spares in self._spares.values():
            for handle, _, _ in spares:
                with contextlib.suppress(Exception):
                    ray.kill(handle, no_restart=True)
        self._spares.clear()

    # ---- failures -----------------------------------------------------------------------------
    async def _watch(self, child: _Child) -> None:
        while not self._stopping:
            error: BaseException | None = None
            result: Any = None
            try:
                result = await child.run_ref
                abnormal, reason = False, "exited"
            except Exception as exc:
                error = exc
                abnormal, reason = True, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            directive = result.get("directive") if isinstance(result, dict) else None
            if directive:
                abnormal, reason = True, f"{directive} (decider): {result.get('error', '')}"
            if child.hung_reason:
                reason, child.hung_reason = f"hung ({child.hung_reason})", None
            if self._stopping or child.state in ("stopped", "escalated"):
                return
            kind = classify_failure(error)
            child.state, child.last_failure, child.last_failure_at = "failed", reason, time.time()
            await self._emit(ChildFailed, child, reason)
            log.warning("child %s failed (%s): %s", child.id, kind, reason)
            if directive == "stop" or child.spec.restart is Restart.TEMPORARY or (
                    child.spec.restart is Restart.TRANSIENT and not abnormal):
                child.state = "stopped"
                with contextlib.suppress(Exception):  # its run() ended but the process may live on
                    ray.kill(child.handle, no_restart=True)
                await self._save()
                return
            node = child.node
            if directive == "escalate" or (counts_against_intensity(kind)
                                           and not node.intensity.allow(time.monotonic())):
                why = (f"{child.id} asked to escalate: {reason}" if directive == "escalate" else
                       f"restart intensity exceeded ({node.spec.intensity} in {node.spec.period:g}s), "
                       f"last: {child.id} {reason}")
                child.state = "escalated"
                self._spawn(self._escalate(node, why))
                return
            delay = child.backoff.next_delay(time.monotonic())
            async with self._restart_lock:
                if self._stopping or node.state != "running":
                    return
                group = children_to_restart(node.spec.strategy, node.members, child.id)
                others = [c for m in group for c in self._under(m) if c is not child]
                for other in reversed(others):  # one_for_all / rest_for_one: stop the group first
                    await self._stop_child(other)
                await asyncio.sleep(delay)
                with contextlib.suppress(Exception):
                    ray.kill(child.handle, no_restart=True)
                try:
                    await self._start(child)
                except Exception as exc:  # the replacement failed to start: count it as another failure
                    child.run_ref = _failed_ref(exc)
                    for other in others:  # they stay stopped until the failed child is back
                        other.state = "waiting"
                    continue
                self._restarted(child, delay)
                for other in others:
                    await self._start(other)
                    self._restarted(other, delay, because=child.id, strategy=node.spec.strategy)
                    other.watcher = asyncio.create_task(self._watch(other), name=f"watch-{other.id}")
                await self._save()

    async def _escalate(self, node: _Node, why: str) -> None:
        """`node` gives up: its children stop; its parent restarts the subtree (or escalates further)."""
        async with self._restart_lock:
            if self._stopping or node.state != "running":
                return
            node.state, node.last_failure = "escalated", why
            for child in reversed(self._under(node.id)):
                await self._stop_child(child, state="escalated")
            parent = node.parent
            if parent is None:
                self.gave_up = why
                log.error("the root supervisor gave up: %s; every stage is stopped, orders wait in their "
                          "streams", why)
                self._emit_path(GaveUp, node.path, "root", f"gave up: {why}; trading halted safely (orders are "
                                "held in their streams until an operator re-applies the config)")
                await self._save()
                return
            self._emit_path(Escalated, node.path, node.id, why)
            log.warning("supervisor %s escalates to %s: %s", node.path, parent.path, why)
        if not parent.intensity.allow(time.monotonic()):
            await self._escalate(parent, f"restart intensity exceeded ({parent.spec.intensity} in "
                                         f"{parent.spec.period:g}s), last: {node.id} escalated")
            return
        delay = parent.backoff.next_delay(time.monotonic())
        async with self._restart_lock:
            if self._stopping:
                return
            group = children_to_restart(parent.spec.strategy, parent.members, node.id)
            others = [c for m in group if m != node.id for c in self._under(m)]
            for other in reversed(others):
                await self._stop_child(other)
            await asyncio.sleep(delay)
            for member in group:
                if member in self.nodes:
                    sub = self.nodes[member]
                    sub.state = "running"
                    sub.intensity = RestartIntensity(sub.spec.intensity, sub.spec.period)
                    sub.restarts += 1
                for child in self._under(member):
                    try:
                        await self._start(child)
                    except Exception as exc:
                        child.run_ref = _failed_ref(exc)
                    self._restarted(child, delay, because=node.id, strategy=parent.spec.strategy)
                    child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.id}")
            self._emit_path(ChildRestarted, node.path, node.id, f"subtree restarted by {parent.path} after "
                            f"{delay:.3f}s backoff ({parent.spec.strategy})", restarts=self.nodes[node.id].restarts,
                            backoff_s=round(delay, 6))
            await self._save()

    def _restarted(self, child: _Child, delay: float, because: str | None = None, strategy: str = "") -> None:
        child.restarts += 1
        child.last_restart_at = time.time()
        detail = f"restarted after {delay:.3f}s backoff" + (f" with {because} ({strategy})" if because else "")
        self._emit_nowait(ChildRestarted, child, detail, restarts=child.restarts, backoff_s=round(delay, 6))

    # ---- liveness -----------------------------------------------------------------------------
    def _ensure_monitor(self) -> None:
        if self._monitor_task is None or self._monitor_task.done():
            self._monitor_task = asyncio.create_task(self._monitor(), name="liveness")

    async def _monitor(self) -> None:
        """Ask every running child for a heartbeat each `heartbeat` seconds, and judge them four times
        as often; a child that stops answering, or that has work pending but makes no progress, is
        hung: kill it, and its watcher restarts it as a failure."""
        interval = self.plan.supervision.heartbeat
        misses = self.plan.supervision.heartbeat_misses
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
                    log.warning("child %s is %s; killing it", child.id, verdict)
                    child.liveness = None
                    with contextlib.suppress(Exception):
                        ray.kill(child.handle, no_restart=True)
                    continue
                if now - child.last_beat_sent >= interval:
                    child.last_beat_sent = now
                    self._spawn(self._beat(child, child.liveness))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _beat(self, child: _Child, liveness: Liveness) -> None:
        handle = child.handle
        try:
            health = await asyncio.wait_for(handle.health.remote(), self.plan.supervision.heartbeat * 2)
        except Exception:
            return  # a missed heartbeat; the verdict counts them
        if child.handle is handle and child.liveness is liveness:
            liveness.beat(time.monotonic(), health["progress"], health["pending"])

    # ---- stopping -----------------------------------------------------------------------------
    async def _stop_children(self) -> None:
        self._stopping = True
        async with self._spare_lock:
            await self._drop_spares()
        for child in reversed(list(self.children.values())):
            await self._stop_child(child)
        self.children.clear()
        self.nodes.clear()
        self.root = None

    async def _stop_child(self, child: _Child, state: str = "stopped") -> None:
        """Drain (stop fetching, finish and ack the batch in hand) within its shutdown time, then kill."""
        child.state = state
        if child.watcher is not None and child.watcher is not asyncio.current_task():
            child.watcher.cancel()
        child.watcher = None
        if child.handle is not None:
            with contextlib.suppress(Exception):
                await child.handle.stop.remote()
                await asyncio.wait_for(child.run_ref, child.spec.shutdown)
            with contextlib.suppress(Exception):
                ray.kill(child.handle, no_restart=True)

    # ---- state in KV, adoption after a restart -------------------------------------------------
    def _state_key(self) -> str:
        return "root"

    async def _connect(self) -> None:
        if self._nc is None:
            self._nc = await connect(self.plan.nats_url, name="supervisor")

    async def _save(self) -> None:
        """The tree's state (child actor names, counters) in KV, for the next incarnation of the root."""
        if self._nc is None or self.root is None:
            return
        state = {
            "plan_json": self.plan_json, "gave_up": self.gave_up,
            "children": {c.id: {"name": c.name, "state": c.state, "restarts": c.restarts,
                                "last_failure": c.last_failure, "last_failure_at": c.last_failure_at,
                                "last_restart_at": c.last_restart_at} for c in self.children.values()},
            "spares": {stage: [info["name"] for _, _, info in spares] for stage, spares in self._spares.items()},
        }
        try:
            kv = await self._nc.jetstream().key_value(STATE_BUCKET)
            await kv.put(self._state_key(), json.dumps(state).encode())
        except Exception as exc:  # the next change saves again
            log.warning("supervision state not saved: %r", exc)

    async def _recover(self) -> None:
        """After a restart of this actor: adopt the children that still run, start what is missing."""
        try:
            async with self._lock:
                if self.children:
                    return  # apply() came first: a fresh deployment
                await self._connect()
                kv = await self._nc.jetstream().key_value(STATE_BUCKET)
                try:
                    saved = json.loads((await kv.get(self._state_key())).value or b"{}")
                except Exception:
                    return  # nothing saved: a fresh deployment, apply() starts the tree
                if not saved.get("children"):
                    return
                self.plan_json = saved["plan_json"]
                self.plan = TreePlan.model_validate_json(self.plan_json)
                self.gave_up = saved.get("gave_up")
                self._build_tree()
                namespace = self.plan.system  # every actor of the system lives in the namespace named after it
                keep: set[str] = set()
                for child in self.children.values():
                    record = saved["children"].get(child.id, {})
                    for key in ("restarts", "last_failure", "last_failure_at", "last_restart_at"):
                        setattr(child, key, record.get(key, getattr(child, key)))
                    if record.get("state") in ("stopped", "escalated") or self.gave_up:
                        child.state = record.get("state", "stopped")
                        continue
                    if await self._adopt(child, record.get("name"), namespace):
                        keep.add(child.name or "")
                        self.adopted.append(child.id)
                        await self._emit(ChildStarted, child, "adopted by a restarted root")
                        child.watcher = asyncio.create_task(self._watch(child), name=f"watch-{child.id}")
                    else:
                        await self._start_and_watch(child, "started by a restarted root (not running)")
                        keep.add(child.name or "")
                for stage, names in saved.get("spares", {}).items():
                    for name in names:
                        spare = await self._adopt_spare(name, namespace)
                        if spare is not None:
                            self._spares.setdefault(stage, []).append(spare)
                            keep.add(name)
                await self._kill_strays(namespace, keep)
                self._ensure_monitor()
                await self._fill_spares()
                await self._save()
                log.info("restarted root adopted %s", self.adopted)
        except Exception as exc:
            log.error("recovery after a restart failed: %r", exc)

    async def _adopt(self, child: _Child, name: str | None, namespace: str) -> bool:
        if not name:
            return False
        try:
            handle = ray.get_actor(name, namespace=namespace)
            info = await asyncio.wait_for(handle.ready.remote(ADOPT_TIMEOUT_S), ADOPT_TIMEOUT_S)
        except Exception:
            return False
        child.handle, child.name = handle, name
        child.run_ref = handle.wait_stopped.remote()
        child.pid, child.host = info["pid"], info["node"]
        child.liveness = None
        child.state = "running"
        child.backoff.started(time.monotonic())
        return True

    async def _adopt_spare(self, name: str, namespace: str) -> tuple[Any, Any, dict[str, Any]] | None:
        try:
            handle = ray.get_actor(name, namespace=namespace)
            info = await asyncio.wait_for(handle.ready.remote(ADOPT_TIMEOUT_S), ADOPT_TIMEOUT_S)
        except Exception:
            return None
        return handle, handle.wait_stopped.remote(), {**info, "name": name}

    async def _kill_strays(self, namespace: str, keep: set[str]) -> None:
        """Actors of this system that nobody supervises (e.g. a replacement the old root started
        but had not recorded): kill them, so no partition has two consumers."""
        from ray.util import list_named_actors

        prefix = f"{self.plan.system}-"
        for entry in list_named_actors(all_namespaces=True):
            name = entry["name"] if isinstance(entry, dict) else entry
            ns = entry.get("namespace") if isinstance(entry, dict) else namespace
            if ns == namespace and name.startswith(prefix) and name not in keep:
                with contextlib.suppress(Exception):
                    ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
                    log.warning("killed stray actor %s", name)

    # ---- supervision events -------------------------------------------------------------------
    async def _emit(self, cls: type[SupervisionEvent], child: _Child, detail: str, **extra: Any) -> None:
        self._emit_nowait(cls, child, detail, **extra)

    def _emit_nowait(self, cls: type[SupervisionEvent], child: _Child, detail: str, **extra: Any) -> None:
        self._emit_path(cls, child.path, child.id, detail, pid=child.pid, node=child.host, **extra)

    def _emit_path(self, cls: type[SupervisionEvent], path: str, child_id: str, detail: str, **extra: Any) -> None:
        """Queue a supervision event; it is published in order, retried while the broker is away."""
        event = cls(path=path, child=child_id, detail=detail, **extra)
        envelope = wrap(event, event_id=uuid.uuid4())
        if self._events.full():
            log.error("supervision event queue full; dropping %s for %s", envelope.type, child_id)
            return
        self._events.put_nowait((subjects.supervision(path), envelope))
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_events(), name="supervision-events")

    async def _publish_events(self) -> None:
        while True:
            subject, envelope = await self._events.get()
            while True:
                try:
                    await self._connect()
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
