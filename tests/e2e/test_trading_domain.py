"""The trading domain end to end on the order-book venue: resting orders, partial fills, cancels, the
kill switch (halt cancels working orders, reduce-only), the price collar against the venue's reference
price, and limits that survive a killed risk actor.

One stack for the module (each test uses its own accounts). The venue's reference prices do not move
during the tests (a long tick), so every price below is exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import ray
import yaml

from actors.runtime.nats_conn import connect
from actors.runtime.refprices import read_reference_prices
from actors.runtime.streams import decoded, read_stream
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig
from cluster.ops.audit import audit
from messages import OrderCanceled, OrderFilled, TradingStateChanged, subjects
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until, module_nats, running_system, small_config

pytestmark = pytest.mark.e2e

TICK = Decimal("0.01")


@pytest.fixture(scope="module")
def book_stack(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[SystemConfig]:
    with module_nats(tmp_path_factory, "book") as server:
        cfg = small_config(
            server.url, name="book",
            venues={"SIM": {"mode": "book", "symbols": ["AAPL", "MSFT"], "tick": "1h", "levels": 3,
                            "quote_qty": 500}},
            risk={"default": {"max_order_qty": 10000, "max_notional": 1000000, "collar_pct": 5},
                  "accounts": {"LIM1": {"max_position": 1000}}},
        )
        with running_system(cfg, ray_head):
            yield cfg


@pytest.fixture
async def client(book_stack: SystemConfig) -> Any:
    async with TradingClient.from_config(book_stack) as c:
        yield c


async def _reference(cfg: SystemConfig, symbol: str = "AAPL") -> Decimal:
    nc = await connect(cfg.nats.url, name="ref")
    try:
        async def priced() -> Decimal | None:
            return (await read_reference_prices(nc.jetstream())).get("SIM", symbol)

        return await async_wait_until(priced, 30, what=f"a reference price for {symbol}")
    finally:
        await nc.close()


def _trade(cfg: SystemConfig, tmp_path: Any, *args: str) -> subprocess.CompletedProcess[str]:
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    return subprocess.run([sys.executable, "-m", "cluster.ops.cli", *args, "--config", str(cfg_file)],
                          capture_output=True, text=True, timeout=60)


async def _status(client: TradingClient, order_id: str, status: str, timeout: float = 30) -> Any:
    async def reached() -> Any:
        outcome = client.outcome(order_id)
        return outcome if str(outcome.status) == status else None

    return await async_wait_until(reached, timeout, what=f"order {order_id} {status}")


async def test_an_order_rests_partially_fills_from_another_order_and_is_canceled(book_stack, client):
    ref = await _reference(book_stack)
    # Between the liquidity provider's best bid (ref - 1 tick) and best ask (ref + 1 tick): it rests.
    resting = await client.place_order("REST1", "AAPL", "BUY", 800, str(ref))
    await _status(client, resting, "accepted")
    seller = await client.place_order("REST2", "AAPL", "SELL", 300, str(ref))
    sold = await client.wait(seller, timeout=30)
    assert (str(sold.status), sold.filled_qty) == ("filled", 300)

    partial = await _status(client, resting, "partially_filled")
    assert partial.filled_qty == 300 and partial.avg_px == ref

    request = await client.cancel(resting, "REST1", "SIM")
    canceled = await client.wait_cancel(resting, request, timeout=30)
    assert str(canceled.status) == "canceled" and canceled.filled_qty == 300
    final = await client.wait(resting, timeout=30)
    assert final.allocated_qty == 300

    nc = await connect(book_stack.nats.url, name="check")
    try:
        p = subjects.partition_of("REST1", book_stack.partitions)
        events = [ev for _, _, ev in decoded(await read_stream(nc.jetstream(), "EXECUTIONS", f"executions.SIM.{p}"))
                  if ev.order_id == resting]
        report = await audit(nc.jetstream(), grace_s=0)
    finally:
        await nc.close()
    assert [type(ev).__name__ for ev in events] == ["OrderAccepted", "OrderFilled", "OrderCanceled"]
    assert isinstance(events[1], OrderFilled) and events[1].leaves_qty == 500
    assert isinstance(events[2], OrderCanceled) and events[2].cum_qty == 300
    assert report.ok, report.violations


async def test_a_cancel_of_a_filled_order_is_refused_with_the_reason(book_stack, client):
    ref = await _reference(book_stack, "MSFT")
    taker = await client.place_order("FILL1", "MSFT", "BUY", 100, str(ref + TICK))  # crosses the best ask
    assert str((await client.wait(taker, timeout=30)).status) == "filled"

    request = await client.cancel(taker, "FILL1", "SIM")
    outcome = await client.wait_cancel(taker, request, timeout=30)
    assert outcome.cancel_rejected == "order is FILLED"
    assert str(outcome.status) == "filled"


async def test_a_halt_cancels_working_orders_and_blocks_new_ones_until_resume(book_stack, client, tmp_path):
    ref = await _reference(book_stack)
    working = await client.place_order("HALT1", "AAPL", "BUY", 100, str(ref - 1))
    await _status(client, working, "accepted")

    assert _trade(book_stack, tmp_path, "halt", "--account", "HALT1", "--reason", "desk review").returncode == 0
    canceled = await client.wait(working, timeout=30)
    assert str(canceled.status) == "canceled"

    blocked = await client.wait(await client.place_order("HALT1", "AAPL", "BUY", 10, str(ref - 1)), timeout=30)
    assert str(blocked.status) == "rejected"
    assert blocked.reason == "trading_state: trading is halted for account HALT1 (desk review)"
    other = await client.place_order("HALT2", "AAPL", "BUY", 10, str(ref - 1))
    await _status(client, other, "accepted")  # another account still trades

    assert _trade(book_stack, tmp_path, "resume", "--account", "HALT1").returncode == 0
    again = await client.place_order("HALT1", "AAPL", "BUY", 10, str(ref - 1))
    await _status(client, again, "accepted")

    nc = await connect(book_stack.nats.url, name="check")
    try:
        changes = [ev for _, _, ev in decoded(await read_stream(nc.jetstream(), "CONTROL"))
                   if isinstance(ev, TradingStateChanged) and ev.account == "HALT1"]
    finally:
        await nc.close()
    assert [c.state for c in changes] == ["HALTED", "ACTIVE"]


async def test_reduce_only_lets_through_only_orders_that_reduce_the_position(book_stack, client, tmp_path):
    ref = await _reference(book_stack, "MSFT")
    bought = await client.wait(await client.place_order("RED1", "MSFT", "BUY", 200, str(ref + TICK)), timeout=30)
    assert str(bought.status) == "filled"

    assert _trade(book_stack, tmp_path, "reduce", "--account", "RED1").returncode == 0
    more = await client.wait(await client.place_order("RED1", "MSFT", "BUY", 10, str(ref + TICK)), timeout=30)
    assert str(more.status) == "rejected" and more.reason.startswith("trading_state: trading is reduce-only")
    less = await client.wait(await client.place_order("RED1", "MSFT", "SELL", 100, str(ref - TICK)), timeout=30)
    assert str(less.status) == "filled"
    too_far = await client.wait(await client.place_order("RED1", "MSFT", "SELL", 300, str(ref - TICK)), timeout=30)
    assert str(too_far.status) == "rejected", "selling 300 of a 100 long would open a short"
    assert _trade(book_stack, tmp_path, "resume", "--account", "RED1").returncode == 0


async def test_a_price_outside_the_collar_is_rejected_against_the_venues_reference_price(book_stack, client):
    ref = await _reference(book_stack)
    outcome = await client.wait(await client.place_order("COL1", "AAPL", "BUY", 10, str(ref * Decimal("1.06"))),
                                timeout=30)
    assert str(outcome.status) == "rejected"
    assert outcome.reason.startswith("collar: ") and f"from reference {ref}" in outcome.reason


async def test_position_limits_still_hold_after_the_risk_actor_is_killed(book_stack, client):
    ref = await _reference(book_stack)
    first = await client.place_order("LIM1", "AAPL", "BUY", 600, str(ref - 1))
    await _status(client, first, "accepted")  # working: counts against max_position 1000

    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=book_stack.name)
    p = subjects.partition_of("LIM1", book_stack.partitions)
    children = {c["id"]: c for c in (await supervisor.status.remote())["children"]}
    owner = f"risk-{p % book_stack.stages.risk.replicas}"
    os.kill(children[owner]["pid"], signal.SIGKILL)

    async def replaced() -> bool:
        now = {c["id"]: c for c in (await supervisor.status.remote())["children"]}[owner]
        return now["pid"] != children[owner]["pid"] and now["state"] == "running"

    await async_wait_until(replaced, 30, what=f"a replacement for {owner}")
    second = await client.wait(await client.place_order("LIM1", "AAPL", "BUY", 600, str(ref - 1)), timeout=30)
    assert str(second.status) == "rejected"
    assert second.reason.startswith("max_position: BUY 600 AAPL would make the position 1200 "
                                    "(position 0, working buy 600)")
    small = await client.place_order("LIM1", "AAPL", "BUY", 400, str(ref - 1))
    await _status(client, small, "accepted")  # exactly at the limit passes


async def test_cancel_rejections_are_not_terminal_outcomes(book_stack, client):
    """A refused cancel of an unknown order leaves no outcome for an order that does not exist."""
    request = await client.cancel("NO-SUCH-ORDER", "CXL1", "SIM")
    outcome = await client.wait_cancel("NO-SUCH-ORDER", request, timeout=30)
    assert outcome.cancel_rejected is not None and "unknown" in outcome.cancel_rejected
    assert str(outcome.status) == "pending"


async def test_a_resting_order_filled_after_its_gateway_was_killed_is_reported_once(book_stack, client):
    ref = await _reference(book_stack, "MSFT")
    resting = await client.place_order("GWK1", "MSFT", "BUY", 100, str(ref))  # the best bid: it rests
    await _status(client, resting, "accepted")

    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=book_stack.name)
    before = {c["id"]: c for c in (await supervisor.status.remote())["children"]}["gateway-SIM"]
    os.kill(before["pid"], signal.SIGKILL)
    seller = await client.place_order("GWK2", "MSFT", "SELL", 100, str(ref))  # waits for the new gateway
    assert str((await client.wait(seller, timeout=60)).status) == "filled"
    filled = await client.wait(resting, timeout=60)  # the resting side comes through the drop copy
    assert (str(filled.status), filled.filled_qty) == ("filled", 100)

    nc = await connect(book_stack.nats.url, name="check")
    try:
        p = subjects.partition_of("GWK1", book_stack.partitions)
        fills = [ev for _, _, ev in decoded(await read_stream(nc.jetstream(), "EXECUTIONS", f"executions.SIM.{p}"))
                 if isinstance(ev, OrderFilled) and ev.order_id == resting]
    finally:
        await nc.close()
    assert len(fills) == 1 and fills[0].last_qty == 100
    after = {c["id"]: c for c in (await supervisor.status.remote())["children"]}["gateway-SIM"]
    assert after["pid"] != before["pid"] and after["restarts"] == before["restarts"] + 1
