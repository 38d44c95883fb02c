"""A long-running driver's memory stays bounded: the client forgets the oldest settled orders and the
orders it only saw go by, never one it placed that is still open, one it waits on or one it retains.

A real nats-server; the stages' answers (rejections) are published to the streams as risk would."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from actors.runtime.nats_conn import connect
from cluster.client.errors import OrderForgotten
from cluster.client.outcome import OrderStatus
from cluster.client.trading import TradingClient
from cluster.topology import ensure_topology
from messages import MSG_ID_HEADER, OrderRejected, encode, subjects, wrap
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture
async def broker(nats_server):
    nc = await connect(nats_server.url, name="risk-stand-in")
    await ensure_topology(nc.jetstream(), small_config(nats_server.url, partitions=PARTITIONS))
    yield nc
    await nc.close()


async def _reject(nc, order_id: str, account: str = "ACC2") -> None:
    event = OrderRejected(order_id=order_id, account=account, symbol="AAPL", rule="max_order_qty", reason="too big")
    envelope = wrap(event, event_id=uuid.uuid4())
    await nc.jetstream().publish(subjects.orders_rejected(subjects.partition_of(account, PARTITIONS)),
                                 encode(envelope), headers={MSG_ID_HEADER: str(envelope.event_id)})


async def _place(client: TradingClient, order_id: str) -> None:
    await client.place_order("ACC2", "AAPL", "BUY", 10, "10", order_id=order_id)


def _settled_counter(client: TradingClient) -> list[str]:
    seen: list[str] = []
    client.on_settled(lambda outcome: seen.append(outcome.order_id))
    return seen


async def test_the_client_forgets_the_oldest_settled_orders_beyond_its_bound(nats_server, broker):
    async with TradingClient(nats_server.url, PARTITIONS, keep_settled=3) as client:
        settled = _settled_counter(client)
        ids = [f"OLD-{i}" for i in range(6)]
        for order_id in ids:
            await _place(client, order_id)
            await _reject(broker, order_id)
        await async_wait_until(lambda: len(settled) == 6, 10, what="six rejections")
        assert client.tracked == 3
        assert [client.outcome(o).status for o in ids[3:]] == [OrderStatus.REJECTED] * 3
        with pytest.raises(OrderForgotten, match="OLD-0"):
            client.outcome(ids[0])
        assert ids[0] not in client.placed_at and ids[0] not in client.settled_at


async def test_an_open_order_placed_here_is_kept_however_much_goes_by(nats_server, broker):
    async with TradingClient(nats_server.url, PARTITIONS, keep_settled=2) as client:
        settled = _settled_counter(client)
        await _place(client, "MINE")
        for i in range(10):
            await _reject(broker, f"OTHER-{i}")  # another driver's orders
        await async_wait_until(lambda: len(settled) == 10, 10, what="ten rejections go by")
        assert client.tracked == 3, "the open order plus the two latest others"
        assert client.outcome("MINE").status is OrderStatus.PENDING
        await _reject(broker, "MINE")
        await async_wait_until(lambda: "MINE" in settled, 10, what="the order's rejection")
        assert client.outcome("MINE").status is OrderStatus.REJECTED


async def test_a_late_event_of_a_forgotten_order_is_counted_and_ignored(nats_server, broker):
    async with TradingClient(nats_server.url, PARTITIONS, keep_settled=1) as client:
        settled = _settled_counter(client)
        for order_id in ("A", "B"):
            await _place(client, order_id)
            await _reject(broker, order_id)
        await async_wait_until(lambda: len(settled) == 2, 10, what="two rejections")
        await _reject(broker, "A")  # a late copy under a new event id
        await async_wait_until(lambda: client.late_events == 1, 10, what="the late event")
        assert client.tracked == 1
        with pytest.raises(OrderForgotten):
            client.track("A")


async def test_retained_orders_are_kept_past_the_bound_until_released(nats_server, broker):
    async with TradingClient(nats_server.url, PARTITIONS, keep_settled=2) as client:
        settled = _settled_counter(client)
        ids = [f"RUN-{i}" for i in range(5)]
        with client.retaining(ids):
            for order_id in ids:
                await _place(client, order_id)
                await _reject(broker, order_id)
            await async_wait_until(lambda: len(settled) == 5, 10, what="five rejections")
            assert {client.outcome(o).status for o in ids} == {OrderStatus.REJECTED}
            assert all(o in client.settled_at for o in ids)
        assert client.tracked == 2
        assert client.outcome(ids[-1]).status is OrderStatus.REJECTED


async def test_an_order_waited_on_is_not_forgotten_while_others_go_by(nats_server, broker):
    async with TradingClient(nats_server.url, PARTITIONS, keep_settled=1) as client:
        settled = _settled_counter(client)
        for i in range(5):
            await _reject(broker, f"OTHER-{i}")
        await async_wait_until(lambda: len(settled) == 5, 10, what="five rejections go by")
        client.track("THEIRS")  # an order another driver placed, asked about before it arrives
        task = asyncio.ensure_future(client.wait("THEIRS", timeout=10))
        await asyncio.sleep(0)
        for i in range(5, 10):
            await _reject(broker, f"OTHER-{i}")
        await _reject(broker, "THEIRS")
        outcome = await task
        assert outcome.status is OrderStatus.REJECTED


def test_a_negative_bound_is_refused():
    with pytest.raises(ValueError, match="keep_settled"):
        TradingClient("nats://127.0.0.1:1", PARTITIONS, keep_settled=-1)
