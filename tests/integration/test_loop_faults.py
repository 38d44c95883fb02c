"""The consumer loop against a broker that misbehaves and inputs that cannot be taken (real nats-server,
one loop, no Ray): a stream that refuses writes uses up no delivery; one input with an output too large
is dead-lettered alone; an input that breaks the msg-id contract is dead-lettered; a message the broker
itself gave up (its MAX_DELIVERIES advisory) becomes a dead letter and an alarm."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, StreamConfig

from actors.runtime.advisories import ADVISORIES_STREAM, ADVISORY_SUBJECTS, MaxDeliveriesHandler, decode_advisory
from actors.runtime.alarms import Alarms
from actors.runtime.applied import APPLIED_BUCKET
from actors.runtime.loop import ConsumerLoop
from actors.runtime.nats_conn import connect
from actors.runtime.stage import Outgoing
from actors.runtime.streams import decoded, read_stream
from cluster.config import DeliveryConfig
from messages import MSG_ID_HEADER, DeadLettered, Envelope, OrderReceived, encode, order_received_id, wrap
from tests.conftest import async_wait_until

pytestmark = pytest.mark.integration

ACK_WAIT = 1.0


class Echo:
    """One output per input; the order "O-big" gets an output larger than the broker takes."""

    stage = "echo"
    concurrent = False

    async def handle(self, envelope: Envelope, event: Any, meta: Any = None) -> list[Outgoing]:
        out = wrap(event, cause=envelope)
        if event.order_id == "O-big":
            out = out.model_copy(update={"payload": {**out.payload, "filler": "x" * 2_000_000}})
        return [Outgoing("out.0", out)]


@pytest.fixture
async def broker(nats_server: Any) -> AsyncIterator[tuple[Client, JetStreamContext]]:
    nc = await connect(nats_server.url, name="test-loop-faults")
    js = nc.jetstream()
    await js.add_stream(name="IN", subjects=["in.>"])
    await js.add_stream(name="OUT", subjects=["out.>"])
    await js.add_stream(name="DLQ", subjects=["dlq.*"])
    await js.create_key_value(bucket=APPLIED_BUCKET, history=1)
    await js.add_consumer("IN", ConsumerConfig(durable_name="echo", ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT,
                                               max_deliver=5, filter_subject="in.>"))
    yield nc, js
    await nc.close()


async def _publish(js: JetStreamContext, order_id: str, msg_id: str | None = None) -> None:
    order = OrderReceived(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=1, price="1")
    envelope = wrap(order, event_id=order_received_id(order_id))
    await js.publish("in.0", encode(envelope), headers={MSG_ID_HEADER: msg_id or str(envelope.event_id)})


async def _running(nc: Client, js: JetStreamContext, handler: Any = None) -> tuple[ConsumerLoop, asyncio.Task[None]]:
    loop = ConsumerLoop(nc, js, "IN", "echo", handler or Echo(), DeliveryConfig(ack_wait=ACK_WAIT, max_deliver=5))
    return loop, asyncio.create_task(loop.run())


async def _stop(loop: ConsumerLoop, task: asyncio.Task[None]) -> None:
    await loop.stop()
    await asyncio.wait_for(task, 10)


async def _settled(js: JetStreamContext) -> bool:
    info = await js.consumer_info("IN", "echo")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def _letters(js: JetStreamContext) -> list[DeadLettered]:
    return [ev for _, _, ev in decoded(await read_stream(js, "DLQ")) if isinstance(ev, DeadLettered)]


async def test_a_stream_that_refuses_writes_holds_the_input_and_uses_up_none_of_its_deliveries(broker) -> None:
    nc, js = broker
    out = (await js.stream_info("OUT")).config
    await js.publish("out.0", b"filler")
    await js.update_stream(dataclasses.replace(out, max_msgs=1, discard=DiscardPolicy.NEW))  # full: writes refused
    loop, task = await _running(nc, js)
    try:
        await _publish(js, "O-1")
        await async_wait_until(lambda: loop.stats.publish_failures >= 3, 10, what="refused writes")
        await asyncio.sleep(3 * ACK_WAIT)  # well past the ack wait: nothing may be redelivered meanwhile
        info = await js.consumer_info("IN", "echo")
        assert info.num_ack_pending == 1 and info.num_redelivered == 0, "held in progress, not redelivered"
        await js.update_stream(out)
        await async_wait_until(lambda: _settled(js), 10, what="the input to be acked once the stream takes it")
    finally:
        await _stop(loop, task)
    assert (await js.consumer_info("IN", "echo")).num_redelivered == 0
    assert loop.stats.dead_lettered == 0 and loop.stats.handled == 1


async def test_one_input_whose_output_is_too_large_is_dead_lettered_alone_and_its_batch_goes_on(broker) -> None:
    nc, js = broker
    for order_id in ("O-1", "O-big", "O-2"):
        await _publish(js, order_id)
    loop, task = await _running(nc, js)
    try:
        await async_wait_until(lambda: _settled(js), 10, what="every input to be settled")
    finally:
        await _stop(loop, task)
    assert (await js.stream_info("OUT")).state.messages == 2
    (letter,) = await _letters(js)
    assert (letter.order_id, letter.reason) == ("O-big", "output_too_large")


async def test_an_input_whose_msg_id_is_not_its_event_id_is_dead_lettered(broker) -> None:
    nc, js = broker
    await _publish(js, "O-1", msg_id=str(uuid.uuid4()))
    loop, task = await _running(nc, js)
    try:
        await async_wait_until(lambda: _settled(js), 10, what="the input to be settled")
    finally:
        await _stop(loop, task)
    (letter,) = await _letters(js)
    assert letter.reason == "msg_id_mismatch" and (await js.stream_info("OUT")).state.messages == 0


async def test_a_message_the_broker_gave_up_becomes_a_dead_letter_and_an_alarm(broker) -> None:
    nc, js = broker
    await js.add_stream(StreamConfig(name=ADVISORIES_STREAM, subjects=[ADVISORY_SUBJECTS]))
    await js.add_consumer(ADVISORIES_STREAM, ConsumerConfig(durable_name="dead-letters", ack_policy=AckPolicy.EXPLICIT,
                                                            ack_wait=5))
    await js.add_consumer("IN", ConsumerConfig(durable_name="dies", ack_policy=AckPolicy.EXPLICIT, ack_wait=0.5,
                                               max_deliver=1, filter_subject="in.>"))
    await _publish(js, "O-dies")
    sub = await js.pull_subscribe_bind("dies", stream="IN")
    await sub.fetch(1, timeout=5)  # taken and never settled: the process that took it "died"
    alarms = Alarms(None, "positions")
    handler = MaxDeliveriesHandler(js, {"dies": "risk"}, alarms)
    loop = ConsumerLoop(nc, js, ADVISORIES_STREAM, "dead-letters", handler, DeliveryConfig(ack_wait=5),
                        decoder=decode_advisory)
    task = asyncio.create_task(loop.run())
    try:
        await async_wait_until(lambda: _letters(js), 15, what="the advisory's dead letter")
    finally:
        await _stop(loop, task)
    (letter,) = await _letters(js)
    assert (letter.stage, letter.reason, letter.order_id) == ("risk", "max_deliveries_advisory", "O-dies")
    assert letter.original_stream == "IN" and letter.payload_b64
    assert alarms.counts["max_deliveries"] == 1
