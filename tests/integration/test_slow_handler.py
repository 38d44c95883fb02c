"""A handler slower than the ack wait tells the broker it is still working: its message is not
redelivered mid-work, and it is handled once (real nats-server, one consumer loop)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from actors.runtime.applied import APPLIED_BUCKET
from actors.runtime.loop import ConsumerLoop
from actors.runtime.nats_conn import connect
from actors.runtime.stage import Outgoing
from cluster.config import DeliveryConfig
from messages import MSG_ID_HEADER, Envelope, OrderReceived, encode, wrap
from messages.ids import order_received_id
from tests.conftest import async_wait_until

pytestmark = pytest.mark.integration

ACK_WAIT_S = 1.0


class SlowHandler:
    stage = "slow"
    concurrent = False

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.handled = 0

    async def handle(self, envelope: Envelope, event: Any, meta: Any = None) -> list[Outgoing]:
        await asyncio.sleep(self.seconds)
        self.handled += 1
        return []


async def test_a_handler_slower_than_the_ack_wait_is_not_redelivered_mid_work(nats_server) -> None:
    nc = await connect(nats_server.url, name="test-slow-handler")
    js = nc.jetstream()
    await js.add_stream(name="IN", subjects=["in.>"])
    await js.create_key_value(bucket=APPLIED_BUCKET, history=1)
    await js.add_consumer("IN", ConsumerConfig(durable_name="slow", ack_policy=AckPolicy.EXPLICIT,
                                               ack_wait=ACK_WAIT_S, max_deliver=5, filter_subject="in.>"))
    order = OrderReceived(order_id="O-slow", account="ACC1", symbol="AAPL", side="BUY", qty=1, price="1")
    envelope = wrap(order, event_id=order_received_id(order.order_id))
    await js.publish("in.0", encode(envelope), headers={MSG_ID_HEADER: str(envelope.event_id)})
    handler = SlowHandler(seconds=3 * ACK_WAIT_S)
    loop = ConsumerLoop(nc, js, "IN", "slow", handler, DeliveryConfig(ack_wait=ACK_WAIT_S, batch=8))
    task = asyncio.create_task(loop.run())
    try:
        await async_wait_until(lambda: handler.handled == 1, 15, what="the slow message to be handled")

        async def settled() -> bool:
            info = await js.consumer_info("IN", "slow")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await async_wait_until(settled, 10, what="the message to be acknowledged")
        assert loop.stats.duplicates_skipped == 0, "the message was delivered again while it was handled"
        assert handler.handled == 1
    finally:
        await loop.stop()
        await asyncio.wait_for(task, 10)
        await nc.close()
