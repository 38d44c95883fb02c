"""The shared consumer loop under real crashes: the stage's process is SIGKILLed at each step between
taking a message and acknowledging it. The input is redelivered to a replacement, and the
downstream stream always holds exactly one copy of the output."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from actors.stages.host import ChildHost
from actors.stages.payload import ChildPayload
from cluster.plan import tree_plan
from cluster.topology import consumer_specs, ensure_topology
from messages import MSG_ID_HEADER, NewOrder, OrderApproved, OrderReceived, encode, order_received_id, subjects, wrap
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration


async def _publish_order(js: Any, order: NewOrder, partitions: int) -> None:
    env = wrap(OrderReceived(**order.model_dump()), event_id=order_received_id(order.order_id))
    subject = subjects.orders_received(subjects.partition_of(order.account, partitions))
    await js.publish(subject, encode(env), headers={MSG_ID_HEADER: str(env.event_id)})


def _risk_worker(cfg: Any, name: str, partition: int) -> Any:
    """A risk replica that owns only this partition's orders (its payload as the plan writes it)."""
    spec = next(s for s in tree_plan(cfg).root.walk() if s.kind == "risk")
    consumers = tuple(c for c in consumer_specs(cfg) if c.durable == f"risk-p{partition}")
    payload = ChildPayload.model_validate_json(spec.payload).model_copy(update={"consumers": consumers})
    return ChildHost.options(num_cpus=0.05, name=name).remote(payload.model_dump_json(), name, True)


async def _crash_at(point: str, nats_url: str, order_id: str) -> dict[str, Any]:
    """Park a risk worker at `point`, SIGKILL it, start a replacement; return the replacement's stats
    and the approved copies of the order once the input is acknowledged."""
    cfg = small_config(nats_url, name=f"crash-{point.replace('_', '-')}")
    order = NewOrder(order_id=order_id, account="ACC2", symbol="AAPL", side="BUY", qty=10, price="101.25")
    partition = subjects.partition_of(order.account, cfg.partitions)
    durable = f"risk-p{partition}"
    nc = await connect(nats_url, name="test")
    js = nc.jetstream()
    await ensure_topology(js, cfg)
    actors: list[Any] = []
    try:
        first = _risk_worker(cfg, f"risk-{point}-a", partition)
        actors.append(first)
        first.run.remote()
        await first.ready.remote()
        await first.call.remote("arm_fault", point)
        await _publish_order(js, order, cfg.partitions)

        async def parked() -> bool:
            return (await first.call.remote("faults_reached")).get(point) == 1

        await async_wait_until(parked, 10, what=f"the worker to park at {point}")
        os.kill(await first.pid.remote(), signal.SIGKILL)

        second = _risk_worker(cfg, f"risk-{point}-b", partition)
        actors.append(second)
        second.run.remote()
        await second.ready.remote()

        async def acked() -> bool:
            info = await js.consumer_info("ORDERS_RECEIVED", durable)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await async_wait_until(acked, 20, what="the redelivered input to be acknowledged")
        approved = [e for _, _, e in decoded(await read_stream(js, "ORDERS_APPROVED"))
                    if isinstance(e, OrderApproved) and e.order_id == order.order_id]
        return {"stats": (await second.call.remote("stats"))[durable], "approved": approved}
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        await nc.close()


async def test_a_crash_before_publishing_redelivers_the_input_and_it_is_handled_once(nats_server, ray_head):
    result = await _crash_at("before_publish", nats_server.url, "CRASH-PUB")
    assert result["stats"]["handled"] == 1
    assert len(result["approved"]) == 1


async def test_a_crash_after_publishing_but_before_marking_republishes_and_the_stream_drops_the_copy(
        nats_server, ray_head):
    result = await _crash_at("before_mark", nats_server.url, "CRASH-MARK")
    assert result["stats"]["handled"] == 1, "the replacement handled it again"
    assert len(result["approved"]) == 1, "same Nats-Msg-Id: the stream kept one copy"


async def test_a_crash_after_marking_but_before_acking_is_recognised_as_already_applied(nats_server, ray_head):
    result = await _crash_at("before_ack", nats_server.url, "CRASH-ACK")
    assert result["stats"]["handled"] == 0
    assert result["stats"]["duplicates_skipped"] == 1, "the applied log said it was done"
    assert len(result["approved"]) == 1
