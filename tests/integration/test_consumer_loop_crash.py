"""The shared consumer loop under a real crash: the actor's process is SIGKILLed between publishing
its output and acknowledging its input. The input is redelivered to the replacement, and the
downstream stream still holds exactly one copy of the output."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import ray

from actors.workers import StageWorker
from cluster.nats_conn import connect
from cluster.streams import decoded, read_stream
from cluster.topology import ensure_topology
from messages import MSG_ID_HEADER, NewOrder, OrderApproved, OrderReceived, encode, order_received_id, subjects, wrap
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration


def _order(order_id: str) -> NewOrder:
    return NewOrder(order_id=order_id, account="ACC2", symbol="AAPL", side="BUY", qty=10, price="101.25")


async def _publish_order(js: Any, order: NewOrder, partitions: int) -> None:
    env = wrap(OrderReceived(**order.model_dump()), event_id=order_received_id(order.order_id))
    subject = subjects.orders_received(subjects.partition_of(order.account, partitions))
    await js.publish(subject, encode(env), headers={MSG_ID_HEADER: str(env.event_id)})


def _risk_worker(cfg: Any, name: str, partition: int) -> Any:
    return StageWorker.options(num_cpus=0.05, name=name).remote(cfg.model_dump_json(), name, "risk",
                                                                 [f"risk-p{partition}"])


async def test_an_input_acked_after_a_crash_between_publish_and_ack_has_exactly_one_output(nats_server, ray_head):
    cfg = small_config(nats_server.url, name="crashtest")
    order = _order("CRASH-1")
    partition = subjects.partition_of(order.account, cfg.partitions)
    nc = await connect(nats_server.url, name="test")
    js = nc.jetstream()
    await ensure_topology(js, cfg)
    first = _risk_worker(cfg, "risk-crash-a", partition)
    second = None
    try:
        first.run.remote()
        await first.ready.remote()
        await first.arm_fault.remote("before_ack")
        await _publish_order(js, order, cfg.partitions)

        async def approved() -> list[Any]:
            return [e for _, _, e in decoded(await read_stream(js, "ORDERS_APPROVED"))
                    if isinstance(e, OrderApproved) and e.order_id == order.order_id]

        await async_wait_until(approved, 10, what="the output to be published")
        reached = await first.faults_reached.remote()
        assert reached.get("before_ack") == 1, "the worker should be parked between publish and ack"
        os.kill(await first.pid.remote(), signal.SIGKILL)

        second = _risk_worker(cfg, "risk-crash-b", partition)
        second.run.remote()
        await second.ready.remote()

        async def acked() -> bool:
            info = await js.consumer_info("ORDERS_RECEIVED", f"risk-p{partition}")
            return info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.stream_seq >= 1

        await async_wait_until(acked, 15, what="the redelivered input to be acknowledged")
        stats = await second.stats.remote()
        assert stats[f"risk-p{partition}"]["handled"] == 1, "the replacement handled the redelivered input"
        assert len(await approved()) == 1, "the stream dropped the republished copy (same Nats-Msg-Id)"
    finally:
        for actor in (first, second):
            if actor is not None:
                ray.kill(actor, no_restart=True)
        await nc.close()


async def test_an_input_the_crashed_actor_never_acked_is_redelivered(nats_server, ray_head):
    cfg = small_config(nats_server.url, name="crashtest2")
    order = _order("CRASH-2")
    partition = subjects.partition_of(order.account, cfg.partitions)
    nc = await connect(nats_server.url, name="test")
    js = nc.jetstream()
    await ensure_topology(js, cfg)
    first = _risk_worker(cfg, "risk-crash-c", partition)
    second = None
    try:
        first.run.remote()
        await first.ready.remote()
        await first.arm_fault.remote("before_publish")
        await _publish_order(js, order, cfg.partitions)

        async def parked() -> bool:
            return (await first.faults_reached.remote()).get("before_publish") == 1

        await async_wait_until(parked, 10, what="the worker to take the message")
        os.kill(await first.pid.remote(), signal.SIGKILL)
        assert not [e for _, _, e in decoded(await read_stream(js, "ORDERS_APPROVED"))]

        second = _risk_worker(cfg, "risk-crash-d", partition)
        second.run.remote()
        await second.ready.remote()

        async def approved_once() -> bool:
            return len(decoded(await read_stream(js, "ORDERS_APPROVED"))) == 1

        await async_wait_until(approved_once, 15, what="the redelivered order to be approved")
        assert len(decoded(await read_stream(js, "ORDERS_APPROVED"))) == 1
    finally:
        for actor in (first, second):
            if actor is not None:
                ray.kill(actor, no_restart=True)
        await nc.close()
