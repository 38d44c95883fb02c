"""What the supervisor core is told: a child's life (started, failed, exited, hung, drained, adopted),
an operator's requests, and the clock (`Tick`). Each event about a child's process names the
incarnation it is about: the core ignores events about an incarnation it has already replaced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from supervision.decider import Directive, FailureKind
from supervision.tree import Identity

__all__ = [
    "Adopted",
    "CoreEvent",
    "Deploy",
    "Drained",
    "Exited",
    "Failed",
    "Hung",
    "OperatorStart",
    "OperatorStop",
    "Recover",
    "StartFailed",
    "Started",
    "StopAll",
    "Tick",
]


@dataclass(frozen=True)
class Deploy:
    """Start the whole tree, child by child in start order."""


@dataclass(frozen=True)
class Started:
    """The child's process is ready (consumes or serves), with its identity."""

    child: str
    incarnation: int
    identity: Identity


@dataclass(frozen=True)
class StartFailed:
    """The child's process did not become ready (it died, timed out, or the host refused it)."""

    child: str
    incarnation: int
    reason: str
    kind: FailureKind = FailureKind.PROCESS_DIED


@dataclass(frozen=True)
class Failed:
    """An abnormal end: the process died or its long-running call raised (`kind` says what killed it),
    or a decider ended it with a directive (restart, stop or escalate)."""

    child: str
    incarnation: int
    reason: str
    kind: FailureKind = FailureKind.PROCESS_DIED
    directive: Directive | None = None


@dataclass(frozen=True)
class Exited:
    """A normal end: the child's long-running call returned, nobody asked it to."""

    child: str
    incarnation: int


@dataclass(frozen=True)
class Hung:
    """A liveness verdict: no heartbeat, or no progress with work pending (`detail` says which)."""

    child: str
    incarnation: int
    detail: str


@dataclass(frozen=True)
class Drained:
    """A process the core asked to stop has stopped (drained, or killed after its shutdown time)."""

    child: str
    incarnation: int


@dataclass(frozen=True)
class OperatorStop:
    """Stop these children (those running): they drain and stay stopped until an operator starts them."""

    children: tuple[str, ...]


@dataclass(frozen=True)
class OperatorStart:
    """Start these children (those stopped); a one_for_one supervisor's children start together."""

    children: tuple[str, ...]


@dataclass(frozen=True)
class Recover:
    """A restarted root: its saved state (`SupervisorCore.snapshot()`); adopt the children that should run."""

    snapshot: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Adopted:
    """The answer to `AdoptChild`: the running process's identity, or None when it is not running."""

    child: str
    incarnation: int
    identity: Identity | None


@dataclass(frozen=True)
class StopAll:
    """Stop every child, last started first (shutdown, or before a changed plan)."""


@dataclass(frozen=True)
class Tick:
    """The clock moved: restarts whose backoff has passed start."""


CoreEvent = (Deploy | Started | StartFailed | Failed | Exited | Hung | Drained | OperatorStop | OperatorStart
             | Recover | Adopted | StopAll | Tick)
