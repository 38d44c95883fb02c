"""The rig the supervisor core's unit tests share (no tests of its own): a `SupervisorCore` on a manual
clock and a seeded random generator, a small tree, and a stand-in for the shell that answers the core's
actions (processes become ready, drain, adopt) only when a test says so. No Ray, no broker, no sleep.

    root (one_for_one)
      SIM (rest_for_one)      venue, gateway
      risk (one_for_one)      risk-0, risk-1
      positions
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from supervision.clock import ManualClock
from supervision.core import SupervisorCore
from supervision.core_actions import (
    Action,
    AdoptChild,
    KillChild,
    Proc,
    Publish,
    RestartAfter,
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
    Recover,
    Started,
    StartFailed,
    Tick,
)
from supervision.decider import Directive, FailureKind
from supervision.settings import BackoffConfig, SupervisionConfig
from supervision.spec import ChildSpec, NodeSpec, Restart
from supervision.tree import Identity

__all__ = ["Rig", "child", "node", "small_tree"]


def child(child_id: str, restart: Restart = Restart.PERMANENT) -> ChildSpec:
    return ChildSpec(id=child_id, kind=child_id.split("-")[0], num_cpus=0.1, payload="{}", restart=restart)


def node(node_id: str, strategy: str, *members: ChildSpec | NodeSpec, intensity: int = 3,
         period: float = 5.0) -> NodeSpec:
    return NodeSpec(id=node_id, strategy=strategy, intensity=intensity, period=period, members=members)


def small_tree(root_strategy: str = "one_for_one", root_intensity: int = 3, sim: str = "rest_for_one",
               risk: str = "one_for_one", risk_intensity: int = 3, period: float = 5.0,
               restart: dict[str, Restart] | None = None) -> NodeSpec:
    kinds = restart or {}

    def c(child_id: str) -> ChildSpec:
        return child(child_id, kinds.get(child_id, Restart.PERMANENT))

    return node("root", root_strategy,
                node("SIM", sim, c("venue"), c("gateway"), period=period),
                node("risk", risk, c("risk-0"), c("risk-1"), intensity=risk_intensity, period=period),
                c("positions"), intensity=root_intensity, period=period)


@dataclass
class Rig:
    """The core and what it asked for. `starts`/`stops` are the processes it asked to start or drain
    and nobody answered yet; `actions` is everything it asked, in order."""

    root: NodeSpec = field(default_factory=small_tree)
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(min=0.1, max=2.0, jitter=0.0,
                                                                         reset_after=30.0))
    seed: int = 1

    def __post_init__(self) -> None:
        self.clock = ManualClock()
        self.core = SupervisorCore(self.root, SupervisionConfig(backoff=self.backoff), self.clock,
                                   random.Random(self.seed))
        self.actions: list[Action] = []
        self.starts: dict[str, int] = {}
        self.stops: list[Proc] = []
        self.adoptions: dict[str, AdoptChild] = {}
        self._pids = itertools.count(1000)

    # ---- talking to the core ------------------------------------------------------------------
    def feed(self, event: CoreEvent) -> list[Action]:
        actions = self.core.handle(event)
        self.actions.extend(actions)
        for action in actions:
            if isinstance(action, StartChild):
                self.starts[action.spec.id] = action.incarnation
            elif isinstance(action, StopChildren):
                self.stops.extend(action.procs)
            elif isinstance(action, AdoptChild):
                self.adoptions[action.child] = action
        return actions

    def incarnation(self, child_id: str) -> int:
        return self.core.tree.children[child_id].incarnation

    def ready(self, child_id: str) -> list[Action]:
        """The process the core asked for becomes ready."""
        incarnation = self.starts.pop(child_id)
        return self.feed(Started(child_id, incarnation, Identity(f"sys-{child_id}-{incarnation}", next(self._pids),
                                                                 "node-1")))

    def start_failed(self, child_id: str, reason: str = "RuntimeError: no") -> list[Action]:
        return self.feed(StartFailed(child_id, self.starts.pop(child_id), reason))

    def all_ready(self) -> list[str]:
        """Every start asked for succeeds, also those asked for on the way; the ids in start order."""
        started = []
        while self.starts:
            child_id = next(iter(self.starts))
            started.append(child_id)
            self.ready(child_id)
        return started

    def drained(self) -> list[str]:
        """Every stop asked for is done; the ids in the order they were stopped."""
        stops, self.stops = self.stops, []
        for proc in stops:
            self.feed(Drained(proc.child, proc.incarnation))
        return [p.child for p in stops]

    def later(self, seconds: float) -> list[Action]:
        self.clock.advance(seconds)
        return self.feed(Tick())

    def after_backoff(self) -> list[Action]:
        """The clock moves to the next restart's due time."""
        due = self.core.next_due()
        assert due is not None, "no restart waits for its backoff"
        self.clock.advance(max(0.0, due - self.clock.monotonic()))
        return self.feed(Tick())

    def deploy(self) -> None:
        self.feed(Deploy())
        self.all_ready()

    # ---- a child's life -------------------------------------------------------------------------
    def fail(self, child_id: str, reason: str = "ActorDiedError: killed", kind: FailureKind = FailureKind.PROCESS_DIED,
             directive: Directive | None = None) -> list[Action]:
        return self.feed(Failed(child_id, self.incarnation(child_id), reason, kind, directive))

    def exit(self, child_id: str) -> list[Action]:
        return self.feed(Exited(child_id, self.incarnation(child_id)))

    def hang(self, child_id: str, detail: str = "hung: no heartbeat for 3 x 0.5s") -> list[Action]:
        return self.feed(Hung(child_id, self.incarnation(child_id), detail))

    def restart(self, child_id: str, **failure: Any) -> list[str]:
        """Fail the child, let its group drain and its backoff pass, start what the core asks for."""
        self.fail(child_id, **failure)
        self.drained()
        if self.core.next_due() is not None:
            self.after_backoff()
        return self.all_ready()

    def recover(self, snapshot: dict[str, Any]) -> list[Action]:
        return self.feed(Recover(snapshot))

    def adopted(self, child_id: str, found: bool = True) -> list[Action]:
        asked = self.adoptions.pop(child_id)
        identity = Identity(asked.name, next(self._pids), "node-1") if found else None
        return self.feed(Adopted(child_id, asked.incarnation, identity))

    # ---- reading ----------------------------------------------------------------------------------
    def state(self, child_id: str) -> str:
        return str(self.core.tree.children[child_id].state)

    def states(self) -> dict[str, str]:
        return {c: self.state(c) for c in self.core.tree.children}

    def row(self, child_id: str) -> dict[str, Any]:
        return next(r for r in self.core.children() if r["id"] == child_id)

    def supervisor(self, node_id: str) -> dict[str, Any]:
        path = self.core.tree.nodes[node_id].path
        return next(r for r in self.core.supervisors() if r["path"] == path)

    def published(self, path: str | None = None) -> list[tuple[str, str, str]]:
        """(type, path, detail) of every event published so far (on `path` only, when given)."""
        return [(a.event.TYPE, a.event.path, a.event.detail) for a in self.actions
                if isinstance(a, Publish) and (path is None or a.event.path == path)]

    def types(self, path: str) -> list[str]:
        return [t for t, _, _ in self.published(path)]

    def delays(self) -> list[float]:
        return [a.delay for a in self.actions if isinstance(a, RestartAfter)]

    def killed(self) -> list[str]:
        return [a.proc.child for a in self.actions if isinstance(a, KillChild)]

    def mark(self) -> int:
        """Where the actions are now: `since(mark)` gives what came after."""
        return len(self.actions)

    def since(self, mark: int) -> list[Action]:
        return self.actions[mark:]
