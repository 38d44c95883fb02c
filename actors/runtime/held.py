"""The messages a consumer loop holds: taken from the broker and not yet settled (acked, nak'ed or
terminated), kept "in progress" at the broker so that none is redelivered while it is being handled,
waits for its commit, or waits for the broker itself to come back.

One timer for all of them, every `interval` (a third of the consumer's ack wait): a message held, or
waiting in the pull buffer, for longer than that gets an in-progress (one small publish); a message
settled within the interval costs nothing. A loop that settles a message releases it; a second
delivery of a message still held (the broker redelivered it while it could not hear our in-progress)
is recognised by its stream sequence and left to the first.

Time is the event loop's clock (`loop.time()`, the clock its sleeps are measured in; monotonic).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence

from actors.runtime.broker import Delivered

__all__ = ["Held"]


class Held:
    def __init__(self, interval: float, also: Callable[[], Sequence[Delivered]] | None = None) -> None:
        self._interval = max(0.05, interval)
        self._also = also or (lambda: [])
        self._msgs: dict[int, tuple[Delivered, float]] = {}  # seq -> (message, when last refreshed)
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._msgs)

    def __contains__(self, seq: object) -> bool:
        return seq in self._msgs

    def add(self, msgs: Iterable[Delivered]) -> None:
        now = asyncio.get_running_loop().time()
        for msg in msgs:
            self._msgs[msg.metadata.sequence.stream] = (msg, now)

    def release(self, msgs: Iterable[Delivered]) -> None:
        for msg in msgs:
            self._msgs.pop(msg.metadata.sequence.stream, None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep(), name="held-in-progress")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _keep(self) -> None:
        buffered: dict[int, float] = {}  # what waits in the pull buffer: seq -> first seen or last refreshed
        clock = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            now = clock.time()
            due = [msg for msg, since in self._msgs.values() if now - since >= self._interval]
            for msg in due:
                self._msgs[msg.metadata.sequence.stream] = (msg, now)
            waiting = {m.metadata.sequence.stream: m for m in self._also()}
            buffered = {seq: buffered.get(seq, now) for seq in waiting if seq not in self._msgs}
            for seq, since in buffered.items():
                if now - since >= self._interval:
                    due.append(waiting[seq])
                    buffered[seq] = now
            for msg in due:
                with contextlib.suppress(Exception):  # the broker is away: the next round tries again
                    await msg.in_progress()
