"""Group commit: the loop takes the next batch once a batch's outputs are stored; marking and acking
happen behind it, and batches finished while a commit is on the wire share the next one (real
nats-server, one consumer loop; the commit is held at its `before_mark` fault point)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from actors.runtime.applied import APPLIED_BUCKET
from actors.runtime.faults import FaultPoints
from actors.runtime.loop import ConsumerLoop
from actors.runtime.nats_conn import connect
from actors.runtime.stage import Outgoing
from cluster.config import DeliveryConfig
from messages import MSG_ID_HEADER, Envelope, OrderReceived, encode, wrap
from messages.ids import order_received_id
from tests.conftest import async_wait_until

pytestmark = pytest.mark.integration


class Echo:
    """Republishes each order to out.<n>: one output per input, so each input needs a mark."""

    stage = "echo"
    concurrent = False

    async def handle(self, envelope: Envelope, event: Any, meta: Any = None) -> list[Outgoing]:
        return [Outgoing("out.0", wrap(event, cause=envelope))]


def _order(i: int) -> bytes:
    order = OrderReceived(order_id=f"O-{i}", account="ACC1", symbol="AAPL", side="BUY", qty=1, price="1")
    return encode(wrap(order, event_id=order_received_id(order.order_id)))


def _msg_id(i: int) -> dict[str, str]:
    return {MSG_ID_HEADER: str(order_received_id(f"O-{i}"))}


@pytest.fixture
async def js(nats_server):
    nc = await connect(nats_server.url, name="test-group-commit")
    js = nc.jetstream()
    await js.add_stream(name="IN", subjects=["in.>"])
    await js.add_stream(name="OUT", subjects=["out.>"])
    await js.create_key_value(bucket=APPLIED_BUCKET, history=1)
    await js.add_consumer("IN", ConsumerConfig(durable_name="echo", ack_policy=AckPolicy.EXPLICIT, ack_wait=5,
                                               max_deliver=5, filter_subject="in.>"))
    yield nc, js
    await nc.close()


async def _stored(js, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def _stored_all(js, n: int = 4) -> bool:
    return await _stored(js, "OUT") == n


async def _all_acked(js) -> bool:  # an ack is a plain publish: the broker takes it a moment later
    info = await js.consumer_info("IN", "echo")
    return info.num_ack_pending == 0 and info.num_pending == 0


def _loop_parked_at(nc, js, point: str) -> tuple[ConsumerLoop, FaultPoints, asyncio.Task[None]]:
    """A running loop whose commits stop at the fault point `point` until it is disarmed."""
    faults = FaultPoints()
    faults.arm(point)
    loop = ConsumerLoop(nc, js, "IN", "echo", Echo(), DeliveryConfig(ack_wait=5, batch=8), faults=faults)
    return loop, faults, asyncio.create_task(loop.run())


async def test_batches_finished_during_a_commit_share_the_next_one_and_every_input_is_acked(js) -> None:
    nc, js = js
    loop, faults, task = _loop_parked_at(nc, js, "before_mark")
    try:
        await js.publish("in.0", _order(0), headers=_msg_id(0))
        await async_wait_until(lambda: faults.reached.get("before_mark") == 1, 10, what="the first commit")
        for i in (1, 2, 3):  # one at a time: three more batches while the first commit is held
            await js.publish("in.0", _order(i), headers=_msg_id(i))
            await async_wait_until(lambda n=i: loop.stats.batches == n + 1, 10, what=f"batch {i + 1}")
        # The loop went on publishing while the commit was held (stored a moment after it is sent).
        await async_wait_until(lambda: _stored_all(js), 10, what="all four outputs to be stored")
        assert (await js.consumer_info("IN", "echo")).num_ack_pending == 4, "nothing acked before its mark"

        faults.disarm("before_mark")
        await async_wait_until(lambda: _all_acked(js), 10, what="every input to be acknowledged")
        assert loop.stats.batches == 4
        assert loop.stats.commits == 2, "the three batches behind the held commit shared one"
        assert loop.stats.handled == 4
        assert await _stored(js, "OUT") == 4
    finally:
        faults.disarm("before_mark")
        await loop.stop()
        await asyncio.wait_for(task, 10)


async def test_stopping_the_loop_waits_for_the_commit_of_the_batches_it_finished(js) -> None:
    nc, js = js
    loop, faults, task = _loop_parked_at(nc, js, "before_ack")
    await js.publish("in.0", _order(0), headers=_msg_id(0))
    await async_wait_until(lambda: faults.reached.get("before_ack") == 1, 10, what="the commit to reach its acks")
    await loop.stop()
    await asyncio.wait([task], timeout=1.5)  # the loop notices a stop within its 0.5 s fetch wait
    assert not task.done(), "run() returns only once the finished batch is committed"
    faults.disarm("before_ack")
    await asyncio.wait_for(task, 10)
    await async_wait_until(lambda: _all_acked(js), 10, what="the finished batch to be acknowledged")
