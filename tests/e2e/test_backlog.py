"""Backlog: with the risk stage stopped, orders accumulate durably; started again, it drains the
backlog in order per partition while new orders keep arriving, and nothing is lost."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from messages import OrderApproved, OrderReceived, subjects
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BACKLOG = int(os.environ.get("TRADE_TEST_BACKLOG", "20000"))


async def test_a_stopped_stage_drains_its_backlog_in_order_per_partition_while_new_orders_arrive(deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    assert await supervisor.stop_children.remote("risk-") == ["risk-1", "risk-0"]
    nc = await connect(cfg.nats.url, name="backlog")
    js = nc.jetstream()
    backlog = order_mix(BACKLOG, seed=21)
    fresh = order_mix(500, seed=22)
    async with TradingClient.from_config(cfg) as client:
        # More orders than the client keeps once settled: it holds these until the test has read them.
        with client.retaining(o.order_id for o in backlog + fresh):
            for i in range(0, len(backlog), 1000):
                await asyncio.gather(*(client.submit(o) for o in backlog[i:i + 1000]))
            stored = (await js.stream_info("ORDERS_RECEIVED")).state.messages
            assert stored == BACKLOG, "every order waits durably in its stream"
            assert (await js.stream_info("ORDERS_APPROVED")).state.messages == 0

            assert await supervisor.start_children.remote("risk-") == ["risk-0", "risk-1"]
            fresh_report = await run_load(client, fresh, rate=100, timeout=300)

            async def backlog_settled() -> bool:
                return all(client.outcome(o.order_id).settled for o in backlog)

            await async_wait_until(backlog_settled, 300, interval=0.5, what="the backlog to drain")
            approved = sum(1 for o in backlog + fresh if client.outcome(o.order_id).status != "rejected")
    assert fresh_report.lost == 0 and fresh_report.duplicated == 0

    received_seq = {ev.order_id: m.seq for m, _, ev in decoded(await read_stream(js, "ORDERS_RECEIVED"))
                    if isinstance(ev, OrderReceived)}
    approvals_by_partition: dict[int, list[int]] = defaultdict(list)
    for _, _, ev in decoded(await read_stream(js, "ORDERS_APPROVED")):
        assert isinstance(ev, OrderApproved)
        approvals_by_partition[subjects.partition_of(ev.account, cfg.partitions)].append(received_seq[ev.order_id])
    await nc.close()
    for partition, seqs in approvals_by_partition.items():
        assert seqs == sorted(seqs), f"partition {partition} was approved out of order"
    assert sum(len(s) for s in approvals_by_partition.values()) == approved
