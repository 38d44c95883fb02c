"""An asyncio event loop on a virtual clock, for tests: when nothing is ready to run, the clock jumps
to the next timer instead of waiting for it (as trio's autojump clock does). Sleeps, timeouts and
periodic tasks take no real time, and the order of events is the same on every run.

    run_virtual(main())          # like asyncio.run(main()), on a VirtualTimeLoop

Code that reads the event loop's time (`loop.time()`, `asyncio.timeout`, `asyncio.sleep`) sees the
virtual clock; `time.monotonic()` and `time.time()` stay real. Real I/O still works (it is polled
without waiting); a loop with no timer and nothing ready waits for I/O as usual.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls for I/O without waiting; when there is none, moves the loop's clock by the timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:  # nothing scheduled: only I/O (or another thread) can wake the loop
            return super().select(None)
        events = super().select(0)
        if not events and timeout > 0 and self.loop is not None:
            self.loop.advance(timeout)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose `time()` is virtual, starting at `start` seconds."""

    def __init__(self, start: float = 0.0) -> None:
        self._virtual_now = start
        selector = _JumpingSelector()
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock on by `seconds` (the loop does it by itself whenever it would wait)."""
        self._virtual_now += max(0.0, seconds)


def run_virtual(main: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run `main` to completion on a fresh `VirtualTimeLoop` (like `asyncio.run`)."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main)
