"""Named fault points for fault tests and chaos runs (as FoundationDB/TiKV failpoints do).

A stage's loop calls `await faults.reach("before_ack")`; while that point is armed the loop parks
there, so a test can kill the process at exactly that step. Disarmed points cost one dict lookup.
"""

from __future__ import annotations

import asyncio

__all__ = ["FAULT_POINTS", "FaultPoints"]

#: The steps of the consumer loop where a test can park a stage.
FAULT_POINTS = ("during_handle", "before_publish", "before_mark", "before_ack")


class FaultPoints:
    def __init__(self) -> None:
        self._armed: dict[str, asyncio.Event] = {}
        self.reached: dict[str, int] = {}

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
