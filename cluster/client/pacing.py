"""Sending at an offered rate with bounded concurrency, retrying what is safe to retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["retrying", "send_paced"]

T = TypeVar("T")
R = TypeVar("R")


async def retrying(attempt: Callable[[], Awaitable[R]], timeout: float, retry_on: tuple[type[BaseException], ...],
                   interval: float = 0.2) -> R:
    """Call `attempt` until it succeeds, retrying `retry_on` errors for up to `timeout` seconds.
    Only for idempotent attempts (an order id or a message id makes a second send the same one)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval)


async def send_paced(items: Sequence[T], send: Callable[[int, T], Awaitable[None]], rate: float = 0.0,
                     concurrency: int = 256, before: Callable[[int], Any] | None = None) -> None:
    """`send(i, item)` for every item, starting item i at i/rate seconds (rate 0: as fast as the
    sends complete), with at most `concurrency` in flight. `before(i)` runs first (may be async)."""
    gate = asyncio.Semaphore(concurrency)
    t0 = time.monotonic()

    async def _one(i: int, item: T) -> None:
        try:
            await send(i, item)
        finally:
            gate.release()

    tasks = []
    for i, item in enumerate(items):
        if rate > 0 and (delay := t0 + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        if before is not None and asyncio.iscoroutine(result := before(i)):
            await result
        await gate.acquire()
        tasks.append(asyncio.create_task(_one(i, item)))
    await asyncio.gather(*tasks)
