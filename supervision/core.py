"""The supervisor core: a pure state machine that folds child events and the clock into actions.

    core = SupervisorCore(plan.root, plan.supervision, clock, random.Random())
    actions = core.handle(Deploy())          # StartChild for the first child, ...
    actions = core.handle(Started("venue-SIM", 1, identity))

It knows no Ray, no broker and no sleep: the shell (supervision.supervisor) carries the actions out
and reports back. What it decides, as OTP and Akka do:

- A child that fails is restarted with its supervisor's strategy (one_for_one: itself; one_for_all:
  every child; rest_for_one: itself and those started after it), after its own backoff; the others of
  its group are stopped first (drained, last started first) and the group starts in start order.
- Restart types: permanent children are always restarted, transient ones only after an abnormal end,
  temporary ones never. A decider's `stop` stops the child for good; `escalate` fails its supervisor.
  A child stopped for good (or by an operator) stays stopped, also when its group restarts.
- Each supervisor counts restarts in its intensity window; failures of the infrastructure (a lost node,
  preemption) do not count. Past the intensity the supervisor escalates: its children are stopped and
  its parent restarts the subtree under its own strategy, intensity and backoff, or, at the root, gives
  up: every child stopped, a GaveUp event.
- A replacement that fails to start is another failure of that child; its group waits for it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping
from typing import Any

from messages import ChildFailed, ChildRestarted, ChildStarted, Escalated, GaveUp
from supervision.clock import Clock
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
    Exited,
    Failed,
    Hung,
    OperatorStart,
    OperatorStop,
    Recover,
    Started,
    StartFailed,
    StopAll,
    Tick,
)
from supervision.core_view import child_rows, node_rows, restore, snapshot
from supervision.decider import Directive, FailureKind, counts_against_intensity
from supervision.jobs import JobKind, Jobs, StartJob
from supervision.settings import SupervisionConfig
from supervision.spec import NodeSpec, Restart
from supervision.strategy import Strategy, children_to_restart
from supervision.tree import Child, ChildState, Identity, Node, NodeState, Tree

__all__ = ["SupervisorCore"]


class SupervisorCore:
    """`incarnations` numbers the children's processes: share one counter between the cores of one shell
    (a re-applied plan gets a new core) so that a number never names two processes."""

    def __init__(self, root: NodeSpec, config: SupervisionConfig, clock: Clock, rng: random.Random,
                 incarnations: Iterator[int] | None = None) -> None:
        self.tree = Tree(root, config.backoff, rng)
        self.clock = clock
        self._incarnations = incarnations if incarnations is not None else itertools.count(1)
        #: Why the root gave up, once every child has stopped (`giving_up` from the decision on).
        self.gave_up: str | None = None
        self.giving_up: str | None = None
        self.adopted: list[str] = []
        self._jobs = Jobs()
        self._draining: set[tuple[str, int]] = set()

    # ---- the one entry point ------------------------------------------------------------------
    def handle(self, event: CoreEvent) -> list[Action]:
        """The actions that follow from `event` at the clock's current time, in the order to carry out."""
        now = self.clock.monotonic()
        out: list[Action] = []
        match event:
            case Deploy():
                self._start_job(JobKind.DEPLOY, [[c.id] for c in self.tree.children.values()], out)
            case Started():
                self._on_started(event, now, out)
            case StartFailed():
                if (child := self._current(event.child, event.incarnation, ChildState.STARTING)) is not None:
                    child.live = False  # the shell has killed what it started
                    self._fail(child, event.reason, event.kind, None, True, now, out)
            case Failed():
                if (child := self._current(event.child, event.incarnation, ChildState.RUNNING)) is not None:
                    self._fail(child, event.reason, event.kind, event.directive, True, now, out)
            case Exited():
                if (child := self._current(event.child, event.incarnation, ChildState.RUNNING)) is not None:
                    self._fail(child, "exited", FailureKind.PROCESS_DIED, None, False, now, out)
            case Hung():
                if (child := self._current(event.child, event.incarnation, ChildState.RUNNING)) is not None:
                    self._fail(child, f"hung ({event.detail})", FailureKind.HUNG, None, True, now, out)
            case Drained():
                self._draining.discard((event.child, event.incarnation))
                self._gave_up_once_stopped(out)
            case OperatorStop():
                self._operator_stop(event.children, out)
            case OperatorStart():
                self._operator_start(event.children, out)
            case Recover():
                self._recover(event.snapshot, out)
            case Adopted():
                self._on_adopted(event, now, out)
            case StopAll():
                self._jobs.clear()
                self._stop(list(self.tree.children.values()), ChildState.STOPPED, out)
            case Tick():
                pass
        self._advance(now, out)
        return out

    # ---- queries --------------------------------------------------------------------------------
    def select(self, prefix: str, *states: ChildState) -> list[str]:
        """Ids of the children whose id starts with `prefix` and whose state is one of `states`, in start order."""
        return [c.id for c in self.tree.children.values() if c.id.startswith(prefix) and c.state in states]

    def busy(self, child_ids: list[str] | None = None) -> bool:
        """Whether a start is under way or waits (for these children, or for any)."""
        members = self._jobs.members()
        return bool(members) if child_ids is None else bool(members & set(child_ids))

    def next_due(self) -> float | None:
        """When a restart waiting for its backoff may start (the shell sends `Tick` then)."""
        return self._jobs.next_due(self.clock.monotonic())

    def is_current(self, child_id: str, incarnation: int) -> bool:
        child = self.tree.children.get(child_id)
        return child is not None and child.live and child.incarnation == incarnation

    def children(self) -> list[dict[str, Any]]:
        return child_rows(self.tree, self.clock.monotonic())

    def supervisors(self) -> list[dict[str, Any]]:
        return node_rows(self.tree, self.clock.monotonic())

    def restarts_in_window(self) -> int:
        return self.tree.root.intensity.count(self.clock.monotonic())

    def snapshot(self) -> dict[str, Any]:
        """The state a restarted root needs (saved by the shell; `Recover` takes it back)."""
        return snapshot(self.tree, self.gave_up or self.giving_up)

    # ---- starting -------------------------------------------------------------------------------
    def _current(self, child_id: str, incarnation: int, state: ChildState) -> Child | None:
        """The child, if the event is about its current process in the expected state (else: stale)."""
        child = self.tree.children.get(child_id)
        if child is None or not child.live or child.incarnation != incarnation or child.state is not state:
            return None
        return child

    def _start_job(self, kind: JobKind, batches: list[list[str]], out: list[Action]) -> None:
        if not batches:
            return
        for child_id in (i for batch in batches for i in batch):
            self.tree.children[child_id].state = ChildState.WAITING
        self._jobs.add(StartJob(kind, batches))
        out.append(SaveState())

    def _advance(self, now: float, out: list[Action]) -> None:
        """Start every batch whose time has come."""
        draining = {child_id for child_id, _ in self._draining}
        for _, batch in self._jobs.next_batches(now, draining):
            for child_id in batch:
                child = self.tree.children[child_id]
                child.incarnation = next(self._incarnations)
                child.live, child.state, child.identity = True, ChildState.STARTING, Identity()
                out.append(StartChild(child.spec, child.incarnation))

    def _on_started(self, event: Started, now: float, out: list[Action]) -> None:
        child = self._current(event.child, event.incarnation, ChildState.STARTING)
        if child is None:  # not wanted any more: the shell holds a process nobody supervises
            out.append(KillChild(Proc(event.child, event.incarnation)))
            return
        child.state, child.identity = ChildState.RUNNING, event.identity
        child.backoff.started(now)
        job = self._jobs.of(child.id)
        if job is not None and child.id in job.notes:
            child.restarts += 1
            child.last_restart_at = self.clock.time()
            out.append(Publish(ChildRestarted(
                path=child.path, child=child.id, detail=job.notes[child.id], pid=child.identity.pid,
                node=child.identity.node, restarts=child.restarts, backoff_s=round(job.delay, 6))))
        else:
            detail = job.kind.value if job is not None and job.kind is not JobKind.RESTART else JobKind.DEPLOY.value
            out.append(self._child_event(ChildStarted, child, detail))
        if job is not None and self._jobs.started(job, child.id):
            self._complete(job, now, out)
        out.append(SaveState())

    def _complete(self, job: StartJob, now: float, out: list[Action]) -> None:
        """A restart finished: the supervisors it restarted whole say so."""
        for node_id, detail in job.subtrees.items():
            node = self.tree.nodes[node_id]
            node.backoff.started(now)
            out.append(Publish(ChildRestarted(path=node.path, child=node.id, detail=detail, restarts=node.restarts,
                                              backoff_s=round(job.delay, 6))))

    def _child_event(self, cls: type[ChildStarted] | type[ChildFailed], child: Child, detail: str) -> Publish:
        return Publish(cls(path=child.path, child=child.id, detail=detail, pid=child.identity.pid,
                           node=child.identity.node))

    # ---- failures ---------------------------------------------------------------------------
    def _fail(self, child: Child, reason: str, kind: FailureKind, directive: Directive | None, abnormal: bool,
              now: float, out: list[Action]) -> None:
        if child.live:  # its process may live on (it ended, or hangs): kill it
            out.append(KillChild(self._proc(child)))
        child.live = False
        child.state, child.last_failure, child.last_failure_at = ChildState.FAILED, reason, self.clock.time()
        out.append(self._child_event(ChildFailed, child, reason))
        restart = child.spec.restart
        if directive is Directive.STOP or restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT
                                                                            and not abnormal):
            child.state = ChildState.STOPPED
            self._discard_from_jobs([child.id], now, out)
            out.append(SaveState())
            return
        node = child.node
        if directive is Directive.ESCALATE:
            child.state = ChildState.ESCALATED
            self._escalate(node, f"{child.id} asked to escalate: {reason}", now, out)
            return
        if counts_against_intensity(kind) and not node.intensity.allow(now):
            child.state = ChildState.ESCALATED
            self._escalate(node, f"restart intensity exceeded ({node.spec.intensity} in {node.spec.period:g}s), "
                                 f"last: {child.id} {reason}", now, out)
            return
        delay = child.backoff.next_delay(now)
        self._restart(node, child.id, delay, now, out)

    def _escalate(self, node: Node, why: str, now: float, out: list[Action]) -> None:
        """`node` gives up: its children stop; its parent restarts the subtree, or escalates in turn."""
        if node.state is not NodeState.RUNNING:
            return
        node.state, node.last_failure = NodeState.ESCALATED, why
        under = [c for c in self.tree.under(node.id) if c.state is not ChildState.STOPPED]
        self._discard_from_jobs([c.id for c in under], now, out)
        self._stop(under, ChildState.ESCALATED, out)
        parent = node.parent
        if parent is None:
            self.giving_up = why
            self._gave_up_once_stopped(out)
            return
        out.append(Publish(Escalated(path=node.path, child=node.id, detail=why)))
        out.append(Escalate(node.id, parent.id, why))
        if not parent.intensity.allow(now):
            self._escalate(parent, f"restart intensity exceeded ({parent.spec.intensity} in "
                                   f"{parent.spec.period:g}s), last: {node.id} escalated", now, out)
            return
        self._restart(parent, node.id, parent.backoff.next_delay(now), now, out)

    def _gave_up_once_stopped(self, out: list[Action]) -> None:
        """The root has given up once every child it stopped has drained: then it says so."""
        if self.giving_up is None or self.gave_up is not None or self._draining:
            return
        self.gave_up = why = self.giving_up
        root = self.tree.root
        out.append(Publish(GaveUp(path=root.path, child=root.id, detail=(
            f"gave up: {why}; trading halted safely (orders are held in their streams until an operator "
            "re-applies the config)"))))
        out.extend([GiveUp(why), SaveState()])

    def _restart(self, node: Node, failed: str, delay: float, now: float, out: list[Action]) -> None:
        """Restart `failed` (a child or a subtree of `node`) and the rest of its group after `delay`: the
        others stop first, last started first; the group starts in start order once all have stopped."""
        strategy = Strategy(node.spec.strategy)
        group = children_to_restart(strategy, node.members, failed)
        members = [c for m in group for c in self.tree.under(m) if c.state is not ChildState.STOPPED]
        backoff = f"restarted after {delay:.3f}s backoff"
        notes = {c.id: backoff if c.id == failed else f"{backoff} with {failed} ({strategy})" for c in members
                 if c.incarnation}  # (one never started yet starts for the first time)
        subtrees: dict[str, str] = {}
        for member in group:
            for i, sub in enumerate(self.tree.nodes_under(member)):
                sub.state = NodeState.RUNNING
                sub.fresh_intensity()
                if i == 0:
                    sub.restarts += 1
                    subtrees[sub.id] = (f"subtree restarted by {node.path} after {delay:.3f}s backoff"
                                        + ("" if member == failed else f" with {failed}") + f" ({strategy})")
        self._stop(members, ChildState.WAITING, out)
        for child in members:
            child.state = ChildState.FAILED if child.id == failed else ChildState.WAITING
        ids = [c.id for c in members]
        self._jobs.add(StartJob(JobKind.RESTART, [[i] for i in ids], now + delay, delay, notes, subtrees))
        out.append(RestartAfter(tuple(ids), delay, now + delay))
        out.append(SaveState())

    # ---- stopping -------------------------------------------------------------------------------
    def _proc(self, child: Child) -> Proc:
        return Proc(child.id, child.incarnation, child.spec.shutdown)

    def _stop(self, children: list[Child], state: ChildState, out: list[Action]) -> None:
        """Drain the live ones, last started first; every one takes `state`."""
        procs = []
        for child in reversed(children):
            if child.live:
                procs.append(self._proc(child))
                self._draining.add((child.id, child.incarnation))
                child.live = False
            child.state = state
        if procs:
            out.append(StopChildren(tuple(procs)))

    def _discard_from_jobs(self, child_ids: list[str], now: float, out: list[Action]) -> None:
        for job in self._jobs.discard(child_ids):
            self._complete(job, now, out)

    def _operator_stop(self, child_ids: tuple[str, ...], out: list[Action]) -> None:
        chosen = [c for c in self.tree.children.values() if c.id in child_ids
                  and c.state not in (ChildState.STOPPED, ChildState.ESCALATED)]
        if not chosen:
            return
        for job in self._jobs.discard([c.id for c in chosen]):
            self._complete(job, self.clock.monotonic(), out)
        self._stop(chosen, ChildState.STOPPED, out)
        out.append(SaveState())

    def _operator_start(self, child_ids: tuple[str, ...], out: list[Action]) -> None:
        """Stopped children start; consecutive children of one one_for_one supervisor start together."""
        batches: list[list[str]] = []
        last: Node | None = None
        for child in self.tree.children.values():
            if child.id not in child_ids or child.state is not ChildState.STOPPED:
                continue
            together = child.node is last and child.node.spec.strategy == Strategy.ONE_FOR_ONE
            if together:
                batches[-1].append(child.id)
            else:
                batches.append([child.id])
            last = child.node
        self._start_job(JobKind.OPERATOR, batches, out)

    # ---- a restarted root -------------------------------------------------------------------------
    def _recover(self, saved: Mapping[str, Any], out: list[Action]) -> None:
        """Counters and states back from the saved state; every child that should run is adopted
        (or, if its process is gone, started)."""
        self.gave_up = self.giving_up = restore(self.tree, saved)
        names = {i: (r or {}).get("name") for i, r in (saved.get("children") or {}).items()}
        for child in self.tree.children.values():
            if self.gave_up or child.state is ChildState.STOPPED:
                continue
            child.incarnation = next(self._incarnations)
            child.live, child.state = True, ChildState.STARTING
            out.append(AdoptChild(child.id, child.incarnation, names.get(child.id)))

    def _on_adopted(self, event: Adopted, now: float, out: list[Action]) -> None:
        child = self._current(event.child, event.incarnation, ChildState.STARTING)
        if child is None:
            if event.identity is not None:
                out.append(KillChild(Proc(event.child, event.incarnation)))
            return
        if event.identity is None:
            child.live = False
            self._start_job(JobKind.RECOVER, [[child.id]], out)
            return
        child.state, child.identity = ChildState.RUNNING, event.identity
        child.backoff.started(now)
        self.adopted.append(child.id)
        out.append(self._child_event(ChildStarted, child, "adopted by a restarted root"))
        out.append(SaveState())

