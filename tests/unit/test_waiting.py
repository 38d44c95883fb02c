"""first_of: the first of several events ends the wait, and no wait is left behind."""

from __future__ import annotations

import asyncio

from actors.runtime.waiting import first_of


async def test_the_first_event_set_ends_the_wait() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    waiting = asyncio.ensure_future(first_of(a, b))
    await asyncio.sleep(0)
    assert not waiting.done()
    b.set()
    await asyncio.wait_for(waiting, 1)
    assert not a.is_set()


async def test_no_wait_on_the_other_events_is_left_running() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    a.set()
    before = len(asyncio.all_tasks())
    await first_of(a, b)
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before
