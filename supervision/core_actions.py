"""What the supervisor core asks its shell to do. The shell carries them out in the order given;
starts and stops report back as core events (`Started`/`StartFailed`, `Drained`)."""

from __future__ import annotations

from dataclasses import dataclass

from messages import SupervisionEvent
from supervision.spec import ChildSpec

__all__ = [
    "Action",
    "AdoptChild",
    "Escalate",
    "GiveUp",
    "KillChild",
    "Proc",
    "Publish",
    "RestartAfter",
    "SaveState",
    "StartChild",
    "StopChildren",
]


@dataclass(frozen=True)
class Proc:
    """One incarnation of a child: the process the shell holds for it, and how long it may drain."""

    child: str
    incarnation: int
    shutdown: float = 10.0


@dataclass(frozen=True)
class StartChild:
    """Start the child's process (a spare may become it); answer `Started` or `StartFailed`."""

    spec: ChildSpec
    incarnation: int


@dataclass(frozen=True)
class AdoptChild:
    """Find the child's process by its saved actor name; answer `Adopted` (identity None: not running)."""

    child: str
    incarnation: int
    name: str | None


@dataclass(frozen=True)
class RestartAfter:
    """These children restart once `delay` seconds (the backoff) have passed, at `due` on the core's
    monotonic clock, and once every one of them has stopped: tell the core (`Tick`) then."""

    children: tuple[str, ...]
    delay: float
    due: float


@dataclass(frozen=True)
class StopChildren:
    """Drain these processes one after another, in this order (each within its shutdown time, then
    killed); answer `Drained` for each."""

    procs: tuple[Proc, ...]


@dataclass(frozen=True)
class KillChild:
    """Kill this process now (it failed, hung, or ended and may live on)."""

    proc: Proc


@dataclass(frozen=True)
class Escalate:
    """A supervisor's intensity was exceeded (or a decider said escalate): its children are stopped and
    its parent decides."""

    node: str
    parent: str
    reason: str


@dataclass(frozen=True)
class GiveUp:
    """The root's intensity was exceeded: every child is stopped, nothing more is restarted."""

    reason: str


@dataclass(frozen=True)
class Publish:
    """Publish a supervision event on `supervision.<event.path>`."""

    event: SupervisionEvent


@dataclass(frozen=True)
class SaveState:
    """The tree's state changed: save `SupervisorCore.snapshot()` for the next incarnation of the root."""


Action = StartChild | AdoptChild | RestartAfter | StopChildren | KillChild | Escalate | GiveUp | Publish | SaveState
