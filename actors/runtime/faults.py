"""Named fault points for fault tests and chaos runs (as FoundationDB/TiKV failpoints do).

A stage's loop calls `await faults.reach("before_ack")`; while that point is armed the loop parks
there, so a test can kill the process at exactly that step. Disarmed points cost one dict lookup.

`arm_error("InjectedFault", n)` makes the next n messages the loop handles fail inside their handling
with an exception of that type name (see `injected_error`), so they take the same path as a real
handler error: the decider's directive, retry or dead letter. Disarmed, `maybe_raise` costs one
attribute check.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["FAULT_POINTS", "FaultPoints", "injected_error", "skew_wall_clock"]

#: The steps of the consumer loop where a test can park a stage, and the gateway's step between the
#: venue's answer to an order and the end of its handling (the order is at the venue, nothing is acked).
FAULT_POINTS = ("during_handle", "before_publish", "before_mark", "before_ack", "after_venue_answer")

_INJECTED: dict[str, type[Exception]] = {}


def injected_error(type_name: str) -> type[Exception]:
    """The exception class named `type_name` (made once per name, then cached), so a decider keyed
    by that name matches it."""
    if not type_name.isidentifier():
        raise ValueError(f"an injected error needs a class name, got {type_name!r}")
    cls = _INJECTED.get(type_name)
    if cls is None:
        cls = _INJECTED[type_name] = type(type_name, (Exception,), {})
    return cls


class FaultPoints:
    def __init__(self) -> None:
        self._armed: dict[str, asyncio.Event] = {}
        self.reached: dict[str, int] = {}
        self._error: type[Exception] | None = None
        self._errors_left = 0
        #: Injected errors raised so far, by type name.
        self.raised: dict[str, int] = {}

    def arm(self, name: str) -> None:
        if name not in FAULT_POINTS:
            raise ValueError(f"unknown fault point {name!r}; known: {', '.join(FAULT_POINTS)}")
        self._armed.setdefault(name, asyncio.Event())

    def disarm(self, name: str) -> None:
        event = self._armed.pop(name, None)
        if event is not None:
            event.set()

    async def reach(self, name: str) -> None:
        event = self._armed.get(name)
        if event is None:
            return
        self.reached[name] = self.reached.get(name, 0) + 1
        await event.wait()

    def arm_error(self, type_name: str, count: int = 1) -> None:
        """The next `count` messages handled raise `injected_error(type_name)` (replaces an earlier arming)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        self._error = injected_error(type_name)
        self._errors_left = count

    def disarm_error(self) -> None:
        self._error, self._errors_left = None, 0

    def maybe_raise(self) -> None:
        """Called by the loop as it takes each message into its handler: raises while an error is armed."""
        if self._error is None:
            return
        error = self._error
        self._errors_left -= 1
        if self._errors_left <= 0:
            self._error = None
        self.raised[error.__name__] = self.raised.get(error.__name__, 0) + 1
        raise error(f"injected {error.__name__} (fault test)")


_REAL_TIME = time.time
_REAL_TIME_NS = time.time_ns


def skew_wall_clock(seconds: float) -> None:
    """Fault injection: from now on this process's wall clock (`time.time`, `time.time_ns`) reads
    `seconds` off, as on a host whose clock is wrong; its monotonic clock is untouched. 0 restores it."""
    offset_ns = int(seconds * 1e9)
    if offset_ns == 0:
        time.time, time.time_ns = _REAL_TIME, _REAL_TIME_NS  # type: ignore[misc]
        return
    time.time = lambda: _REAL_TIME() + seconds  # type: ignore[misc]
    time.time_ns = lambda: _REAL_TIME_NS() + offset_ns  # type: ignore[misc]
