"""The root supervisor actor: a thin Ray shell around the supervisor core.

    root (strategy, intensity from `supervision`)
      <venue>      one per venue: the venue session, then its gateway (rest_for_one by default)
      <stage>      a partitioned stage's replicas
      positions    the positions projection

What to do is decided by `supervision.core.SupervisorCore`, a pure state machine (see there for the
strategies, restart types, intensity, backoff and escalation). This shell feeds it events and carries
its actions out with Ray: it creates each child's process (the plan's host actor class, or a spare that
becomes the child: `supervision.spares`), watches the child's long-running `run()` call, whose failure
tells of a crash within milliseconds, asks for heartbeats (`supervision.heartbeats`), drains and kills
processes (`supervision.processes`), publishes the events (`supervision.publisher`) and saves the tree's
state in the KV bucket SUPERVISION (`supervision.state_store`). The child protocol it relies on is in
`supervision.protocol`.

The supervisors below the root are nodes inside the root's process (an actor is a whole process in
Ray; on a small machine a process per supervisor buys nothing). The children are detached actors: they
outlive the root. The root is restarted by Ray and adopts the children that still run (their names and
counters are in SUPERVISION), killing any duplicate; it starts only what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
from collections.abc import Callable, Coroutine
from typing import Any

import ray

from supervision.breaker_store import BreakerStore
from supervision.clock import SystemClock
from supervision.core import SupervisorCore
from supervision.core_actions import (
    Action,
    AdoptChild,
    Escalate,
    GiveUp,
    KillChild,
    Proc,
    Publish,
    RestartAfter,
    SaveState,
    StartChild,
    StopChildren,
)
from supervision.core_events import (
    Adopted,
    CoreEvent,
    Deploy,
    Drained,
    Hung,
    OperatorStart,
    OperatorStop,
    Recover,
    Started,
    StartFailed,
    StopAll,
    Tick,
)
from supervision.failures import classify_failure, describe, ending_event
from supervision.heartbeats import HeartbeatMonitor
from supervision.nats import NatsLink
from supervision.processes import ChildProcesses, Ending
from supervision.protocol import HostFactory
from supervision.publisher import EventPublisher
from supervision.scheduling import own_session
from supervision.spares import SparePool
from supervision.spec import ChildSpec, TreePlan
from supervision.state_store import STATE_BUCKET, StateStore
from supervision.tree import ChildState

__all__ = ["STATE_BUCKET", "SUPERVISOR_NAME", "Supervisor", "classify_failure"]

log = logging.getLogger(__name__)

SUPERVISOR_NAME = "supervisor"
#: What an operator may stop: anything not already stopped.
_STOPPABLE = (ChildState.RUNNING, ChildState.STARTING, ChildState.WAITING, ChildState.FAILED)


@ray.remote(max_restarts=-1, max_concurrency=100)
class Supervisor:
    """The root supervisor actor (named, detached, restarted by Ray; it adopts the running children)."""

    def __init__(self, plan_json: str) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        self.plan = TreePlan.model_validate_json(plan_json)
        if self.plan.supervision.own_session:
            own_session()
        self.plan_json = plan_json
        self.path = "root"
        self._clock = SystemClock()
        self._rng = random.Random()
        self._incarnations = itertools.count(1)
        self._link = NatsLink(self.plan.nats_url)
        self._store = StateStore(self._link)
        self._events = EventPublisher(self._link)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._core: SupervisorCore | None = None
        self._changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._save_wanted = False
        self._saver: asyncio.Task[None] | None = None
        self._setup(self.plan)
        # Restarted by Ray after its process died: adopt what still runs (a fresh deploy finds nothing).
        self._spawn(self._recover())

    def _setup(self, plan: TreePlan) -> None:
        """The collaborators that depend on the plan."""
        hosts = HostFactory(plan)
        self._spares = SparePool(plan, hosts, self._spawn, changed=self._request_save)
        self._procs = ChildProcesses(plan.system, hosts, self._spares)
        sup = plan.supervision
        self._monitor = HeartbeatMonitor(sup.heartbeat, sup.heartbeat_misses, self._on_verdict)

    def _new_core(self) -> SupervisorCore:
        return SupervisorCore(self.plan.root, self.plan.supervision, self._clock, self._rng, self._incarnations)

    # ---- public API -------------------------------------------------------------------------
    async def apply(self, plan_json: str) -> dict[str, Any]:
        """Start the tree, or re-apply a changed plan (children are replaced; consumers are durable)."""
        async with self._lock:
            await self._link.client()
            if plan_json != self.plan_json:
                await self._stop_all()
                await self._monitor.stop()
                new_plan = TreePlan.model_validate_json(plan_json)
                await self._link.retarget(new_plan.nats_url)
                self.plan, self.plan_json = new_plan, plan_json
                self._setup(new_plan)
                await self._link.client()
            self._monitor.start()
            if self._core is None or self._core.giving_up:
                await self._stop_all()
                self._spares.open()
                core = self._core = self._new_core()
                self._feed(Deploy())
                await self._until(lambda: not core.busy())
            await self._spares.fill()
            await self._save()
        return await self.status()

    async def status(self) -> dict[str, Any]:
        core = self._core
        return {
            "path": self.path,
            "strategy": self.plan.supervision.strategy,
            "restarts_in_window": core.restarts_in_window() if core else 0,
            "gave_up": core.gave_up if core else None,
            "adopted": list(core.adopted) if core else [],
            "breakers": await self._breakers(),
            "standby": self._spares.standby_pids(),
            "spares": self._spares.spare_pids(),
            "supervisors": core.supervisors() if core else [],
            "children": core.children() if core else [],
        }

    async def _breakers(self) -> dict[str, str]:
        """Each venue's circuit breaker state as every gateway sees it (the BREAKERS bucket)."""
        out: dict[str, str] = {}
        if not self._link.connected:
            return out
        store = BreakerStore(await self._link.jetstream())
        for key in self.plan.breakers:
            with contextlib.suppress(Exception):
                state, _ = await asyncio.wait_for(store.load(key), 2.0)
                out[key] = (state or {}).get("state", "closed") + (" (forced)" if (state or {}).get("forced") else "")
        return out

    async def stop_children(self, prefix: str) -> list[str]:
        """Operator stop (e.g. prefix "risk-"): each child drains its batch in hand and stops; its input
        waits durably in its stream until `start_children`. Not a failure: nothing is restarted."""
        async with self._lock:
            if self._core is None:
                return []
            chosen = self._core.select(prefix, *_STOPPABLE)
            await asyncio.gather(*self._feed(OperatorStop(tuple(chosen))))
            await self._save()
            return list(reversed(chosen))

    async def start_children(self, prefix: str) -> list[str]:
        """Operator start. Under a one_for_one supervisor the children are independent (e.g. a stage's
        replicas): they start together, so none rebuilds its state while a sibling already drains a
        backlog into the log it reads. Elsewhere, in the supervisor's order."""
        async with self._lock:
            core = self._core
            if core is None:
                return []
            chosen = core.select(prefix, ChildState.STOPPED)
            self._feed(OperatorStart(tuple(chosen)))
            await self._until(lambda: not core.busy(chosen))
            await self._save()
            return chosen

    async def call_child(self, child_id: str, method: str, *args: Any) -> Any:
        """Call a method of a running child (operators and fault tests: arm_fault, freeze, stats)."""
        return await self._handle(child_id).call.remote(method, *args)

    async def stats(self) -> dict[str, Any]:
        """Each running child's own counters (per consumer for stages)."""
        out: dict[str, Any] = {}
        for child_id in self._core.select("", ChildState.RUNNING) if self._core else []:
            with contextlib.suppress(Exception):
                out[child_id] = await asyncio.wait_for(self._handle(child_id).call.remote("stats"), 5.0)
        return out

    async def child_pid(self, child_id: str) -> int | None:
        if self._core is None:
            raise KeyError(child_id)
        return self._core.tree.children[child_id].identity.pid

    async def pid(self) -> int:
        return os.getpid()

    async def shutdown(self) -> None:
        """Stop every child, last started first, each draining its in-flight batch; forget the state."""
        async with self._lock:
            await self._stop_all()
            await self._monitor.stop()
            await self._store.forget()
            await self._events.flush(2.0)
            await self._link.close(drain=True)

    def _handle(self, child_id: str) -> Any:
        if self._core is None:
            raise KeyError(child_id)
        child = self._core.tree.children[child_id]
        proc = self._procs.get(child_id, child.incarnation) if child.live else None
        if proc is None:
            raise RuntimeError(f"{child_id} is not running ({child.state})")
        return proc.handle

    # ---- feeding the core, carrying out its actions --------------------------------------------
    def _feed(self, event: CoreEvent, core: SupervisorCore | None = None) -> list[asyncio.Task[Any]]:
        """Hand an event to the core (when `core` is given: only if it is still the core) and carry out
        its actions. Returns the tasks of the stops and adoptions it started."""
        if self._core is None or (core is not None and core is not self._core):
            return []
        core = self._core
        tasks = self._carry_out(core, core.handle(event))
        self._changed.set()
        self._changed = asyncio.Event()
        self._arm_timer(core)
        return tasks

    def _carry_out(self, core: SupervisorCore, actions: list[Action]) -> list[asyncio.Task[Any]]:
        tasks = []
        for action in actions:
            match action:
                case StartChild(spec=spec, incarnation=incarnation):
                    self._spawn(self._start(core, spec, incarnation))
                case AdoptChild(child=child, incarnation=incarnation, name=name):
                    tasks.append(self._spawn(self._adopt(core, child, incarnation, name)))
                case StopChildren(procs=procs):
                    tasks.append(self._spawn(self._drain(core, procs)))
                case KillChild(proc=proc):
                    self._monitor.forget((proc.child, proc.incarnation))
                    self._procs.kill(proc.child, proc.incarnation)
                case RestartAfter(children=children, delay=delay):
                    log.info("restarting %s after %.3fs backoff", ", ".join(children), delay)
                case Escalate(node=node, parent=parent, reason=reason):
                    log.warning("supervisor %s escalates to %s: %s", node, parent, reason)
                case GiveUp(reason=reason):
                    log.error("the root supervisor gave up: %s; every stage is stopped, orders wait in their "
                              "streams", reason)
                case Publish(event=event):
                    self._events.publish(event)
                case SaveState():
                    self._request_save()
        return tasks

    def _arm_timer(self, core: SupervisorCore) -> None:
        """Wake the core when the next restart's backoff has passed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = core.next_due()
        if due is not None:
            delay = max(0.0, due - self._clock.monotonic()) + 0.001
            self._timer = asyncio.get_running_loop().call_later(delay, self._feed, Tick(), core)

    async def _until(self, done: Callable[[], bool]) -> None:
        while not done():
            await self._changed.wait()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- the children's processes -------------------------------------------------------------
    async def _start(self, core: SupervisorCore, spec: ChildSpec, incarnation: int) -> None:
        try:
            identity = await self._procs.start(spec, incarnation)
        except Exception as exc:
            log.warning("child %s did not start: %r", spec.id, exc)
            self._feed(StartFailed(spec.id, incarnation, describe(exc), classify_failure(exc)), core)
            return
        self._feed(Started(spec.id, incarnation, identity), core)
        self._watch(core, spec.id, incarnation)

    async def _adopt(self, core: SupervisorCore, child: str, incarnation: int, name: str | None) -> None:
        identity = await self._procs.adopt(child, incarnation, name, self.plan.system)
        self._feed(Adopted(child, incarnation, identity), core)
        if identity is not None:
            self._watch(core, child, incarnation)

    def _watch(self, core: SupervisorCore, child: str, incarnation: int) -> None:
        """Follow the process's long-running call and its heartbeats, if the core still wants it."""
        proc = self._procs.get(child, incarnation)
        if proc is None:
            return
        if core is not self._core or not core.is_current(child, incarnation):
            self._procs.kill(child, incarnation)
            return
        self._procs.watch(child, incarnation, lambda ending: self._ended(core, child, incarnation, ending))
        self._monitor.watch((child, incarnation), proc.handle.health.remote)

    def _ended(self, core: SupervisorCore, child: str, incarnation: int, ending: Ending) -> None:
        self._monitor.forget((child, incarnation))
        self._feed(ending_event(child, incarnation, *ending), core)

    def _on_verdict(self, key: Any, detail: str) -> None:
        child, incarnation = key
        self._feed(Hung(child, incarnation, detail))

    async def _drain(self, core: SupervisorCore, procs: tuple[Proc, ...]) -> None:
        for proc in procs:
            self._monitor.forget((proc.child, proc.incarnation))
            await self._procs.drain(proc.child, proc.incarnation, proc.shutdown)
            self._feed(Drained(proc.child, proc.incarnation), core)

    async def _stop_all(self) -> None:
        """Every child drained and stopped, last started first; the spares killed; no core."""
        await self._spares.drop()
        if self._core is not None:
            await asyncio.gather(*self._feed(StopAll()))
        self._procs.kill_all()
        self._core = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- state in KV, adoption after a restart -------------------------------------------------
    def _request_save(self) -> None:
        self._save_wanted = True
        if self._saver is None or self._saver.done():
            self._saver = self._spawn(self._saving())

    async def _saving(self) -> None:
        while self._save_wanted:
            self._save_wanted = False
            await self._save()

    async def _save(self) -> None:
        """The tree's state (child actor names, counters) in KV, for the next incarnation of the root."""
        if self._core is None:
            return
        await self._store.save({"plan_json": self.plan_json, **self._core.snapshot(), "spares": self._spares.names()})

    async def _recover(self) -> None:
        """After a restart of this actor: adopt the children that still run, start what is missing."""
        try:
            async with self._lock:
                if self._core is not None:
                    return  # apply() came first: a fresh deployment
                saved = await self._store.load()
                if not saved or not saved.get("children"):
                    return  # nothing saved: a fresh deployment, apply() starts the tree
                self.plan_json = saved["plan_json"]
                self.plan = TreePlan.model_validate_json(self.plan_json)
                self._setup(self.plan)
                self._core = self._new_core()
                await asyncio.gather(*self._feed(Recover(saved)))
                namespace = self.plan.system  # every actor of the system lives in the namespace named after it
                await self._spares.adopt(saved.get("spares") or {}, namespace)
                keep = self._procs.names() | {n for names in self._spares.names().values() for n in names}
                StateStore.kill_strays(self.plan.system, namespace, keep)
                self._monitor.start()
                await self._spares.fill()
                await self._save()
                log.info("restarted root adopted %s", self._core.adopted)
        except Exception as exc:
            log.error("recovery after a restart failed: %r", exc)
