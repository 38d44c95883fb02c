"""What ended a child, from what its long-running call ended with: the failure's kind (does it count
against restart intensity?), a one-line reason for people, and the core event it makes."""

from __future__ import annotations

from typing import Any

from supervision.core_events import CoreEvent, Exited, Failed
from supervision.decider import Directive, FailureKind

__all__ = ["classify_failure", "describe", "ending_event"]

_NODE_LOST = ("nodedied", "node died", "node was dead", "node has been marked dead")


def classify_failure(exc: BaseException | None) -> FailureKind:
    """What killed a child, from the error its long-running call failed with."""
    if exc is None:
        return FailureKind.PROCESS_DIED
    text = f"{type(exc).__name__}: {exc}".lower()
    if "preempt" in text:
        return FailureKind.PREEMPTED
    if any(sign in text for sign in _NODE_LOST):
        return FailureKind.NODE_LOST
    return FailureKind.PROCESS_DIED


def describe(exc: BaseException) -> str:
    """`Type: first line of the message` (at most 300 characters of it)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def ending_event(child: str, incarnation: int, result: Any, error: BaseException | None) -> CoreEvent:
    """The core event for a `run()` (or `wait_stopped()`) call that returned `result` or raised `error`:
    a failure (its kind from the error), a decider's directive, or a normal exit."""
    if error is not None:
        return Failed(child, incarnation, describe(error), classify_failure(error))
    directive = result.get("directive") if isinstance(result, dict) else None
    if directive:
        return Failed(child, incarnation, f"{directive} (decider): {result.get('error', '')}",
                      FailureKind.HANDLER_ERROR, Directive(directive))
    return Exited(child, incarnation)
