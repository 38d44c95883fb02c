"""`kill -9` of nats-server under load, then a restart on the same port and store: every actor
reconnects and resumes from its consumer's position, and nothing is lost or done twice."""

from __future__ import annotations

import asyncio

import pytest

from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from tests.conftest import async_wait_until

pytestmark = pytest.mark.e2e


async def test_orders_sent_across_a_broker_crash_and_restart_all_complete_exactly_once(deployed, nats_server):
    cfg = deployed
    restarted = asyncio.Event()

    async def crash_and_restart() -> None:
        nats_server.kill()
        await asyncio.sleep(1.0)  # the outage: publishes in this second fail and are retried
        await asyncio.get_running_loop().run_in_executor(None, nats_server.start)
        restarted.set()

    async with TradingClient.from_config(cfg, publish_timeout=2.0) as client:
        task: list[asyncio.Task[None]] = []
        report = await run_load(client, order_mix(600, seed=5), rate=300, timeout=90,
                                at_fraction=(0.5, lambda: task.append(asyncio.create_task(crash_and_restart()))))
        await async_wait_until(restarted.is_set, 30, what="the broker restart")
    assert report.sent == 600
    assert report.lost == 0, report.lost_order_ids[:10]
    assert report.duplicated == 0
    assert report.allocation_mismatches == 0
