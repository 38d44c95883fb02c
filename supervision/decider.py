"""Akka-style deciders: what a supervisor does about a child's failure, by the failure's type.

A failure arrives either as the exception itself (local, or a Ray error that subclasses the
remote exception's class) or as the name of its type (a ChildFailed event, a remote report).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from enum import StrEnum

__all__ = ["Decider", "Directive", "FailureKind", "counts_against_intensity"]


class Directive(StrEnum):
    RESUME = "resume"  # keep the child and its state; drop the failed message
    RESTART = "restart"  # replace the child (its state is rebuilt from the log)
    STOP = "stop"  # stop the child for good
    ESCALATE = "escalate"  # fail the supervisor: its own parent decides


class FailureKind(StrEnum):
    PROCESS_DIED = "process_died"  # the actor's process exited or crashed
    HUNG = "hung"  # heartbeats stopped, or progress stalled with work pending
    HANDLER_ERROR = "handler_error"  # the stage's handler raised
    NODE_LOST = "node_lost"  # the node under the actor went away
    PREEMPTED = "preempted"  # the platform took the resources back (spot instance, drain)


_WRAPPED = re.compile(r"^([\w.]+)\((.+)\)$")  # Ray names a wrapped remote error "RayTaskError(Cause)"
_NOT_THE_CHILDS_FAULT = frozenset({FailureKind.NODE_LOST, FailureKind.PREEMPTED})


def counts_against_intensity(kind: FailureKind | str) -> bool:
    """Whether a failure of this kind uses up restart intensity: the infrastructure's failures do not."""
    return FailureKind(kind) not in _NOT_THE_CHILDS_FAULT


def _names(cls: type[BaseException]) -> tuple[str, ...]:
    return (cls.__name__, cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}")


class Decider:
    """Maps exception types (classes or type names) to directives; anything unmapped gets `default`.

    `decide` walks the failure's class hierarchy, most specific first, so a mapping for OSError
    covers ConnectionRefusedError unless ConnectionRefusedError has its own entry. A string key
    matches a class by its name, its qualified name or module.qualname.
    """

    def __init__(self, directives: Mapping[str | type[BaseException], Directive | str] | None = None,
                 default: Directive | str = Directive.RESTART) -> None:
        self.default = Directive(default)
        self._by_class: dict[type[BaseException], Directive] = {}
        self._by_name: dict[str, Directive] = {}
        for key, directive in (directives or {}).items():
            if isinstance(key, type) and issubclass(key, BaseException):
                self._by_class[key] = Directive(directive)
            elif isinstance(key, str) and key.strip():
                self._by_name[key.strip()] = Directive(directive)
            else:
                raise TypeError(f"a decider key must be an exception class or a type name, got {key!r}")

    def decide(self, exc: BaseException | type[BaseException] | str) -> Directive:
        """The directive for a failure: an exception, an exception class, or a type name.

        A type name may carry a message ("TimeoutError: venue did not answer") and may be dotted
        ("asyncio.TimeoutError") or Ray's "RayTaskError(TimeoutError)"; a builtin exception name
        is resolved to its class, so its base classes' entries apply too.
        """
        if isinstance(exc, str):
            return self._decide_name(exc)
        cls = exc if isinstance(exc, type) else type(exc)
        for klass in cls.__mro__:
            found = self._lookup(klass)
            if found is not None:
                return found
        return self.default

    def _lookup(self, klass: type) -> Directive | None:
        if klass in self._by_class:
            return self._by_class[klass]
        for name in _names(klass):
            if name in self._by_name:
                return self._by_name[name]
        return None

    def _decide_name(self, text: str) -> Directive:
        name = text.split(":", 1)[0].strip()
        found = self._lookup_name(name)
        wrapped = _WRAPPED.match(name)
        while found is None and wrapped:  # "RayTaskError(TimeoutError)": the wrapper, then what it wraps
            found = self._lookup_name(wrapped[1]) or self._lookup_name(wrapped[2])
            wrapped = _WRAPPED.match(wrapped[2])
        return self.default if found is None else found

    def _lookup_name(self, name: str) -> Directive | None:
        if name in self._by_name:
            return self._by_name[name]
        short = name.rsplit(".", 1)[-1]
        builtin = getattr(builtins, short, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            for klass in builtin.__mro__:
                found = self._lookup(klass)
                if found is not None:
                    return found
            return None
        for klass, directive in self._by_class.items():
            if name in _names(klass) or short == klass.__name__:
                return directive
        return self._by_name.get(short)
