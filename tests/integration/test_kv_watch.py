"""Watching a KV bucket never dies quietly (real nats-server, no Ray): a bad value is refused and the
watch goes on; a broker restart does not end it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.runtime.kv_watch import watch_bucket
from actors.runtime.nats_conn import connect_retrying
from tests.conftest import async_wait_until

pytestmark = pytest.mark.integration


class Folded:
    """Applies integer values; anything else is refused (raises)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.refused: list[str] = []

    def apply(self, key: str, value: bytes | None) -> None:
        self.values[key] = int(value or b"0")

    def refuse(self, key: str, exc: Exception) -> None:
        self.refused.append(key)


async def test_a_bad_value_is_refused_and_later_values_still_apply(nats_server: Any) -> None:
    nc = await connect_retrying(nats_server.url, name="watch")
    kv = await nc.jetstream().create_key_value(bucket="W")
    folded, ready = Folded(), asyncio.Event()
    task = asyncio.create_task(watch_bucket(nc.jetstream(), "W", folded.apply, ready=ready, on_refused=folded.refuse))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await kv.put("a", b"1")
        await kv.put("a", b"not a number")
        await kv.put("b", b"2")
        await async_wait_until(lambda: folded.values == {"a": 1, "b": 2}, 10, what="the good values")
        assert folded.refused == ["a"]
    finally:
        task.cancel()
        await nc.close()


async def test_the_watch_outlives_a_broker_restart(nats_server: Any) -> None:
    nc = await connect_retrying(nats_server.url, name="watch")
    kv = await nc.jetstream().create_key_value(bucket="W")
    folded, ready = Folded(), asyncio.Event()
    task = asyncio.create_task(watch_bucket(nc.jetstream(), "W", folded.apply, ready=ready, retry_s=0.2))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        nats_server.kill()
        await asyncio.get_running_loop().run_in_executor(None, nats_server.start)
        await async_wait_until(lambda: nc.is_connected, 15, what="the client to reconnect")
        await async_wait_until(lambda: _put(kv, "after", b"3"), 15, what="a write after the restart")
        await async_wait_until(lambda: folded.values.get("after") == 3, 15, what="the value written after the restart")
    finally:
        task.cancel()
        await nc.close()


async def _put(kv: Any, key: str, value: bytes) -> bool:
    try:
        await kv.put(key, value)
    except Exception:
        return False
    return True
